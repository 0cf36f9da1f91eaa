"""Network checkpoints (safetensors + JSON, local or ``gs://``) and the inference API.

A checkpoint is a directory holding

- ``model.safetensors``: the network's full state dict (float tensors), never pickle;
- ``config.json``: ``{"architecture": "tz_net" | "pose_net", "model": {all
  hyper-parameters}, "training": {data, steps, seed, losses, ...}, "format": 1}``.

``gs://`` (and any other Beam file system) works through
``poselabel.io.files``, which imports Beam's file systems only for remote
paths, so the model code does not depend on Beam. ``sha256`` is the hex digest of the
weights file, for the run manifest.

Inference: ``load_tz_predictor(path)`` and ``load_pose_predictor(path)`` build
predictors that take full RGB uint8 images (H, W, 3) and person boxes
(N, 4) ``[x0, y0, x1, y1]`` px, crop them the way training did
(``models/crops.py``) and batch crops across images.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from poselabel.io.files import join as _join
from poselabel.io.files import read_file, write_file
from poselabel.models.nets.crops import extract_crops
from poselabel.models.nets.pose_net import PoseNet, PoseNetConfig
from poselabel.models.nets.tz_net import TzNet, TzNetConfig

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT = 1



def save_checkpoint(directory: str, model: nn.Module, training: dict | None = None) -> str:
    """Write ``model`` (whose ``.config`` has ``to_dict()``) to ``directory``; returns the weights' sha256.

    The weights are written first and ``config.json`` last, so a directory with a
    config always has its weights.
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = save_safetensors(state, metadata={"format": "pt"})
    cfg = model.config.to_dict()
    meta = {"architecture": cfg["architecture"], "variant": cfg["variant"], "model": cfg,
            "training": training or {}, "format": FORMAT, "sha256": hashlib.sha256(data).hexdigest()}
    write_file(_join(directory, WEIGHTS), data)
    write_file(_join(directory, CONFIG), json.dumps(meta, indent=2, sort_keys=True).encode())
    return meta["sha256"]


def build_model(meta: dict) -> nn.Module:
    """An uninitialised network of the architecture described by a checkpoint's ``config.json``."""
    arch = meta["architecture"]
    if arch == "tz_net":
        return TzNet(TzNetConfig.from_dict(meta["model"]))
    if arch == "pose_net":
        return PoseNet(PoseNetConfig.from_dict(meta["model"]))
    raise ValueError(f"unknown architecture {arch!r}")


def load_checkpoint(directory: str, device: str = "cpu") -> tuple[nn.Module, dict, str]:
    """``(model in eval mode on device, config.json dict, sha256 of the weights)``.

    Raises ``ValueError`` when the weights do not match the recorded hash or the architecture.
    """
    meta = json.loads(read_file(_join(directory, CONFIG)))
    data = read_file(_join(directory, WEIGHTS))
    digest = hashlib.sha256(data).hexdigest()
    if meta.get("sha256") not in (None, digest):
        raise ValueError(f"{directory}: weights sha256 {digest} does not match config.json's {meta['sha256']}")
    model = build_model(meta)
    model.load_state_dict(load_safetensors(data), strict=True)
    return model.to(device).eval(), meta, digest


class _Predictor:
    """Shared crop batching; ``config`` is the checkpoint's config.json, ``sha256`` its weights' hash."""

    def __init__(self, model: nn.Module, meta: dict, sha256: str, device: str, max_batch: int) -> None:
        self.model, self.config, self.sha256 = model, meta, sha256
        self.device, self.max_batch = torch.device(device), max_batch
        self.size, self.scale = int(meta["model"]["image_size"]), float(meta["model"]["crop_scale"])

    def _crops(self, items: Sequence[tuple[np.ndarray, np.ndarray]]):
        pixels, infos, counts = [], [], []
        for image, boxes in items:
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
            px, info, _ = extract_crops(image, np.asarray(boxes, np.float64).reshape(-1, 4), self.size, self.scale)
            pixels.append(px)
            infos.append(torch.from_numpy(info))
            counts.append(len(info))
        return torch.cat(pixels), torch.cat(infos), counts

    def _chunks(self, n: int):
        return [slice(i, min(i + self.max_batch, n)) for i in range(0, n, self.max_batch)]


class TzPredictor(_Predictor):
    """Pelvis depth Tz (m) of people in full images."""

    @torch.no_grad()
    def predict_batch(self, items: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """``[(image (H, W, 3) uint8, boxes (N_i, 4) px)]`` -> ``[(N_i,) float32 metres]``."""
        pixels, info, counts = self._crops(items)
        out = [self.model(pixels[s].to(self.device), info[s].to(self.device)).float().cpu()
               for s in self._chunks(len(info))]
        tz = torch.cat(out).numpy() if out else np.zeros(0, np.float32)
        return list(np.split(tz.astype(np.float32), np.cumsum(counts)[:-1]))

    def predict(self, image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(N,) float32 Tz in metres for the N boxes (N, 4) ``xyxy`` px of one image."""
        return self.predict_batch([(image, boxes)])[0]


class PosePredictor(_Predictor):
    """SMPL-X betas, global orientation and body pose of people in full images (given their Tz)."""

    @property
    def conditioned(self) -> bool:
        return self.config["model"]["conditioning"] == "tz"

    @torch.no_grad()
    def predict_batch(self, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> list[dict]:
        """``[(image, boxes (N_i, 4) px, tz (N_i,) m)]`` -> per image ``dict(betas (N_i, 10),
        global_orient (N_i, 3), body_pose (N_i, 63))`` float32 (axis-angle, camera frame).
        ``tz`` may be ``None`` for an unconditioned network."""
        pixels, info, counts = self._crops([(im, bx) for im, bx, _ in items])
        if self.conditioned:
            if any(t is None for _, _, t in items):
                raise ValueError("this pose network is conditioned on Tz: pass tz for every image")
            tz = torch.from_numpy(np.concatenate([np.asarray(t, np.float32).reshape(-1) for _, _, t in items]))
            if len(tz) != len(info):
                raise ValueError(f"{len(tz)} Tz values for {len(info)} boxes")
        keys = ("betas", "global_orient", "body_pose")
        parts = {k: [] for k in keys}
        for s in self._chunks(len(info)):
            t = tz[s].to(self.device) if self.conditioned else None
            out = self.model(pixels[s].to(self.device), info[s].to(self.device), t)
            for k in keys:
                parts[k].append(out[k].float().cpu())
        widths = {"betas": 10, "global_orient": 3, "body_pose": 63}
        full = {k: (torch.cat(v).numpy() if v else np.zeros((0, widths[k]), np.float32)).astype(np.float32)
                for k, v in parts.items()}
        splits = np.cumsum(counts)[:-1]
        per_key = {k: np.split(v, splits) for k, v in full.items()}
        return [{k: per_key[k][i] for k in keys} for i in range(len(items))]

    def predict(self, image: np.ndarray, boxes: np.ndarray, tz: np.ndarray | None) -> dict:
        """One image: boxes (N, 4) px, tz (N,) m -> dict(betas (N,10), global_orient (N,3), body_pose (N,63))."""
        return self.predict_batch([(image, boxes, tz)])[0]


def load_tz_predictor(path: str, device: str = "cpu", max_batch: int = 64) -> TzPredictor:
    """A ``TzPredictor`` from a checkpoint directory (local or ``gs://``)."""
    model, meta, digest = load_checkpoint(path, device)
    if meta["architecture"] != "tz_net":
        raise ValueError(f"{path} holds a {meta['architecture']}, not a tz_net")
    return TzPredictor(model, meta, digest, device, max_batch)


def load_pose_predictor(path: str, device: str = "cpu", max_batch: int = 64) -> PosePredictor:
    """A ``PosePredictor`` from a checkpoint directory (local or ``gs://``)."""
    model, meta, digest = load_checkpoint(path, device)
    if meta["architecture"] != "pose_net":
        raise ValueError(f"{path} holds a {meta['architecture']}, not a pose_net")
    return PosePredictor(model, meta, digest, device, max_batch)


def checkpoint_identity(directory: str) -> str:
    """The weights' sha256 recorded in a checkpoint directory's ``config.json`` (local or gs://)."""
    meta = json.loads(read_file(_join(directory, CONFIG)))
    sha = meta.get("sha256")
    if not sha:  # an old checkpoint without a recorded hash: hash the weights themselves
        sha = hashlib.sha256(read_file(_join(directory, WEIGHTS))).hexdigest()
    return sha


def network_identity(path: str, device: str) -> tuple:
    """What names a shared checkpoint network (``nets/share.py``): its path, device and the
    weights' recorded sha256."""
    return (path, device, checkpoint_identity(path))
