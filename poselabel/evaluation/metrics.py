"""BLADE's per-person errors of labels against true ones (ANCHORS "Metric definitions").

Camera (``camera_errors``): ``E_f = |f̂ − f| / f`` (fraction), ``E_Tz = |T̂z − Tz|`` (m),
``E_inv_Tz = |1/T̂z − 1/Tz|`` (1/m), ``E_Txy = ‖T̂xy − Txy‖`` (m), where ``T`` is the pelvis
position in the camera frame (OpenCV axes: x right, y down, z forward).

Body (``label_errors``, both bodies through the same ``BodyModel``): ``PVE`` mean vertex
distance and ``MPJPE`` mean distance of SMPL-X joints 0..21 with both pelvises at the origin
(global orientation counts), ``PA_MPJPE`` the same joints after a similarity Procrustes
alignment, ``PVE_cam`` the mean vertex distance in the camera frame (translation counts),
all in mm; ``mIoU`` the IoU (fraction) of the predicted body rendered with the predicted
camera and the true body rendered with the true camera, whole (amodal: no occluder), in
the image.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from poselabel.models.body.model import BodyModel
from poselabel.models.render.rasterize import project_points, rasterize_coverage

MPJPE_JOINTS = 22  # SMPL-X joints 0..21: pelvis and the 21 body joints
CAMERA_METRICS = ("E_f", "E_Tz", "E_inv_Tz", "E_Txy")
BODY_METRICS = ("PVE", "MPJPE", "PA_MPJPE", "PVE_cam", "mIoU")


@dataclass(frozen=True)
class Labels:
    """N people's labels, float64 CPU tensors; NaN rows where a stage gave nothing.

    ``betas`` (N, 10); ``global_orient`` (N, 3) and ``body_pose`` (N, 63) axis-angle (rad);
    ``transl`` (N, 3) pelvis in the camera frame (m); ``focal`` (N,) px; ``pp`` (N, 2)
    principal point ``[cx, cy]`` px (top-left-corner pixel origin).
    """

    betas: torch.Tensor
    global_orient: torch.Tensor
    body_pose: torch.Tensor
    transl: torch.Tensor
    focal: torch.Tensor
    pp: torch.Tensor

    def __len__(self) -> int:
        return int(self.focal.shape[0])


def camera_errors(focal: torch.Tensor, transl: torch.Tensor, focal_gt: torch.Tensor,
                  transl_gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """``CAMERA_METRICS`` per person, (N,) each: ``focal`` (N,) px, ``transl`` (N, 3) m, and
    their true values; NaN where an input is."""
    return {"E_f": (focal - focal_gt).abs() / focal_gt,
            "E_Tz": (transl[:, 2] - transl_gt[:, 2]).abs(),
            "E_inv_Tz": (1.0 / transl[:, 2] - 1.0 / transl_gt[:, 2]).abs(),
            "E_Txy": (transl[:, :2] - transl_gt[:, :2]).norm(dim=1)}


def procrustes_align(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``x`` (N, J, 3) moved onto ``y`` (N, J, 3) by the scale, rotation and translation that
    minimise the squared distances (Umeyama 1991; no reflection)."""
    mx, my = x.mean(1, keepdim=True), y.mean(1, keepdim=True)
    x0, y0 = x - mx, y - my
    u, s, vt = torch.linalg.svd(y0.transpose(1, 2) @ x0)  # (N, 3, 3): y0ᵀ x0 = U S Vᵀ
    d = torch.ones_like(s)
    d[:, 2] = torch.sign(torch.linalg.det(u @ vt))
    rot = u @ torch.diag_embed(d) @ vt  # rotation taking x0 onto y0
    scale = (s * d).sum(1) / (x0 ** 2).sum((1, 2)).clamp(min=1e-12)
    return scale[:, None, None] * x0 @ rot.transpose(1, 2) + my


def aligned_errors(verts: torch.Tensor, joints: torch.Tensor, verts_gt: torch.Tensor,
                   joints_gt: torch.Tensor) -> dict[str, torch.Tensor]:
    """``PVE``, ``MPJPE`` and ``PA_MPJPE`` (mm), (N,) each, of posed bodies with their pelvises
    at the origin: ``verts*`` (N, V, 3), ``joints*`` (N, 55, 3) m (``BodyModel`` without
    ``transl``); MPJPE over joints 0..21 (``MPJPE_JOINTS``), PA after ``procrustes_align``."""
    j = slice(0, MPJPE_JOINTS)
    return {"PVE": (verts - verts_gt).norm(dim=-1).mean(1) * 1000,
            "MPJPE": (joints[:, j] - joints_gt[:, j]).norm(dim=-1).mean(1) * 1000,
            "PA_MPJPE": (procrustes_align(joints[:, j], joints_gt[:, j]) - joints_gt[:, j]).norm(dim=-1).mean(1) * 1000}


def silhouette_iou(verts_a: torch.Tensor, cam_a: tuple, verts_b: torch.Tensor, cam_b: tuple, faces: torch.Tensor,
                   width: int, height: int) -> float:
    """IoU of two meshes' hard silhouettes in one ``width`` x ``height`` image: ``verts_*``
    (V, 3) camera frame (m), ``cam_*`` ``(focal, cx, cy)`` px. 0 when both are empty."""
    px = torch.cat([project_points(v[None].float(), torch.tensor([float(c[0])]), torch.tensor([float(c[1])]),
                                   torch.tensor([float(c[2])]))
                    for v, c in ((verts_a, cam_a), (verts_b, cam_b))])
    cover = rasterize_coverage(px, faces, int(height), int(width))
    union = float((cover[0] | cover[1]).sum())
    return float((cover[0] & cover[1]).sum()) / union if union else 0.0


def _posed(body: BodyModel, labels: Labels, rows: torch.Tensor):
    with torch.no_grad():
        out = body(labels.betas[rows].to(body.dtype), labels.global_orient[rows].to(body.dtype),
                   labels.body_pose[rows].to(body.dtype))
    return out.vertices.double(), out.joints.double()  # pelvis at the origin


def label_errors(body: BodyModel, pred: Labels, gt: Labels, sizes: torch.Tensor,
                 chunk: int = 32) -> dict[str, torch.Tensor]:
    """``CAMERA_METRICS`` + ``BODY_METRICS`` of ``pred`` against ``gt`` (N people each),
    (N,) float64 tensors (module docstring: units). ``sizes`` (N, 2) ``[W, H]`` px of each
    person's image. Body metrics are NaN where ``pred`` has no body (NaN betas or pose);
    ``PVE_cam`` and ``mIoU`` also where it has no camera (NaN focal or translation)."""
    n = len(gt)
    out = camera_errors(pred.focal, pred.transl, gt.focal, gt.transl)
    for name in BODY_METRICS:
        out[name] = torch.full((n,), float("nan"), dtype=torch.float64)
    has_body = torch.isfinite(torch.cat([pred.betas, pred.global_orient, pred.body_pose], 1)).all(1)
    has_camera = torch.isfinite(pred.focal) & torch.isfinite(pred.transl).all(1) & (pred.transl[:, 2] > 0)
    rows_all = torch.nonzero(has_body).squeeze(1)
    faces = body.faces.cpu()
    for start in range(0, rows_all.numel(), chunk):
        rows = rows_all[start:start + chunk]
        vp, jp = _posed(body, pred, rows)
        vg, jg = _posed(body, gt, rows)
        for name, value in aligned_errors(vp, jp, vg, jg).items():
            out[name][rows] = value
        for k, r in enumerate(rows.tolist()):
            if not has_camera[r]:
                continue
            va, vb = vp[k] + pred.transl[r], vg[k] + gt.transl[r]
            out["PVE_cam"][r] = float((va - vb).norm(dim=-1).mean()) * 1000
            out["mIoU"][r] = silhouette_iou(va, (pred.focal[r], *pred.pp[r].tolist()), vb,
                                            (gt.focal[r], *gt.pp[r].tolist()), faces, int(sizes[r, 0]),
                                            int(sizes[r, 1]))
    return out


def summarise(values: torch.Tensor | np.ndarray) -> dict[str, float | int]:
    """``{"mean", "median", "n"}`` over the finite values (NaN mean and median when none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "n": int(v.size)}
