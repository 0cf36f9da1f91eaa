"""The SMPL-X body in the camera frame, batched, through the real ``smplx`` library.

Any SMPL-X ``.npz`` works: the real ``SMPLX_NEUTRAL.npz`` or the project's
procedural stand-in (``procedural.py``, the default). Labels use the
neutral body with 10 betas, flat hands and zero jaw, eyes and expression
(see ARCHITECTURE.md).

Frames. The model frame is SMPL-X's: y up, x to the body's left, z forward
(the way the body faces), pelvis near the origin. The camera frame is
OpenCV's: x right, y down, z forward (into the scene), metres.
``global_orient`` is the rotation from the model frame into the camera frame,
and ``V_cam = R(global_orient) (V_rest − J_rest[0]) + transl`` for the posed
body: the pelvis (joint 0) lands exactly at ``transl``. Examples:

- ``global_orient = [π, 0, 0]`` (π about x): model y-up becomes camera y-down
  and z-forward becomes −z, i.e. a person standing upright in the image and
  facing the camera;
- ``global_orient = [0, 0, π]`` (π about z): upright, but seen from behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass

import smplx
import torch
from torch import Tensor

from poselabel.models.body.model_file import safe_copy
from poselabel.models.body.procedural import default_body_model_path


@dataclass(frozen=True)
class BodyOutput:
    """``vertices`` (B, V, 3) and ``joints`` (B, 55, 3): camera frame, metres."""

    vertices: Tensor
    joints: Tensor


NUM_BETAS = 10
NUM_BODY_JOINTS = 21
NUM_JOINTS = 55  # SMPL-X's skeleton; smplx appends extra keypoints after these


class BodyModel(torch.nn.Module):
    """Batched SMPL-X (neutral, 10 betas, flat hands) posed in the camera frame.

    ``path``: a local or ``gs://`` SMPL-X ``.npz`` (``None``: the cached
    procedural model). A user's file is read without unpickling and checked, and smplx
    loads a private copy of its plain arrays (``model_file.py``); ``InputError`` otherwise.
    Buffers live on ``device`` with ``dtype``; call ``.to()`` as for any module.
    """

    def __init__(self, path: str | None = None, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.path = default_body_model_path() if path is None else path
        folder = None if path is None else tempfile.mkdtemp(prefix="poselabel-body-")
        try:
            # the default is written by poselabel itself (plain arrays only); a user's file is checked
            local = self.path if folder is None else safe_copy(path, folder)
            self.smplx = smplx.create(local, model_type="smplx", gender="neutral", use_pca=False,
                                      flat_hand_mean=True, num_betas=NUM_BETAS,
                                      num_expression_coeffs=10, ext="npz", dtype=dtype)
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
        for name, param in list(self.smplx.named_parameters()):  # we pass every input explicitly
            param.requires_grad_(False)
        self.register_buffer("faces", self.smplx.faces_tensor.clone(), persistent=False)
        self.to(device=device)

    @property
    def num_vertices(self) -> int:
        return int(self.smplx.v_template.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        return self.smplx.v_template.dtype

    @property
    def device(self) -> torch.device:
        return self.smplx.v_template.device

    def forward(self, betas: Tensor, global_orient: Tensor, body_pose: Tensor,
                transl: Tensor | None = None) -> BodyOutput:
        """Pose bodies in the camera frame.

        - ``betas`` (B, 10) shape coefficients;
        - ``global_orient`` (B, 3) axis-angle, model frame -> camera frame;
        - ``body_pose`` (B, 63) axis-angles of SMPL-X's 21 body joints;
        - ``transl`` (B, 3) pelvis position in the camera frame, metres (None: zero).

        Returns ``BodyOutput`` with vertices (B, V, 3) and the 55 SMPL-X joints
        (B, 55, 3), camera frame, metres; ``joints[:, 0] == transl``.
        """
        batch = betas.shape[0]
        zeros = betas.new_zeros
        out = self.smplx(betas=betas, global_orient=global_orient, body_pose=body_pose,
                         left_hand_pose=zeros(batch, 45), right_hand_pose=zeros(batch, 45),
                         jaw_pose=zeros(batch, 3), leye_pose=zeros(batch, 3), reye_pose=zeros(batch, 3),
                         expression=zeros(batch, self.smplx.num_expression_coeffs),
                         transl=zeros(batch, 3), return_full_pose=False)
        pelvis = out.joints[:, :1]
        offset = -pelvis if transl is None else transl[:, None, :] - pelvis
        return BodyOutput(vertices=out.vertices + offset, joints=out.joints[:, :NUM_JOINTS] + offset)


_SHARED: dict[tuple, BodyModel] = {}
_SHARED_LOCK = threading.Lock()


def shared_body_model(path: str | None = None, device: str | torch.device = "cpu") -> BodyModel:
    """One ``BodyModel(path, device)`` per process for the stages that only read it (Tz, pose,
    camera): each would otherwise load its own copy (85 MB of buffers and about 0.5 s each, in
    every worker process). Keyed by the path (a local file also by its size and modification
    time, so a file rewritten in place is loaded again) and the device. Callers must not
    modify it (``.to()``, its buffers)."""
    key: tuple = (path, str(torch.device(device)))
    if path is not None and "://" not in path and os.path.exists(path):
        st = os.stat(path)
        key += (st.st_size, st.st_mtime_ns)
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = BodyModel(path, device=device)
        return _SHARED[key]
