"""One optimisation batch of the camera solve: its tensors, parameters and measures (pure torch).

Parameters are in crop-pixel units (:data:`REF_RES`, :data:`LOG_SCALE`): ``th_f`` and
``th_z`` are 100 x log-ratios of ``f`` and ``Tz`` to the start, ``th_uv`` moves ``Tx/Tz``,
``Ty/Tz`` by one pixel of a 128 px crop per unit (:func:`decode_params`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from poselabel.models.camera import windows as cc
from poselabel.models.camera.config import (
    REJECT_BEHIND_CAMERA,
    REJECT_EMPTY_MASK,
    REJECT_NAN,
    REJECT_SMALL_MASK,
    CameraSolverConfig,
)
from poselabel.models.kept import Kept
from poselabel.models.render.rigid import hard_coverage, project_rigid

REF_RES = 128.0  # parameter units: 1 = one pixel of the crop sampled at 128 px
LOG_SCALE = 100.0  # 1 unit of log-f / log-Tz = 1 % (about one crop pixel of body size)


@dataclass(frozen=True)
class Keypoints:
    """2D keypoints of B persons and the body points they see (optional evidence of a solve).

    - ``points`` (B, K, 3): the body points in the meshes' frame (pelvis at the origin,
      camera axes, m), e.g. the posed joints paired with the detector's landmarks;
    - ``uv`` (B, K, 2): where the detector saw them, full-image px;
    - ``weight`` (B, K) >= 0: 0 where not seen.
    """

    points: torch.Tensor
    uv: torch.Tensor
    weight: torch.Tensor

    def __getitem__(self, idx) -> "Keypoints":
        return Keypoints(self.points[idx], self.uv[idx], self.weight[idx])

    def to(self, device, dtype) -> "Keypoints":
        return Keypoints(*(t.to(device=device, dtype=dtype) for t in (self.points, self.uv, self.weight)))


@dataclass
class SolveBatch:
    """Tensors of one optimisation batch (b persons)."""

    verts: torch.Tensor  # (b, V, 3) pelvis-centred, camera axes, m
    masks: list[torch.Tensor]  # b x (H_i, W_i) bool
    ignore: list[torch.Tensor | None]  # b x (H_i, W_i) bool or None: pixels without evidence
    cx: torch.Tensor  # (b,) principal point, px
    cy: torch.Tensor
    f0: torch.Tensor  # (b,) focal at the start of the descent, px
    a0: torch.Tensor  # (b,) Tx/Tz at the start of the descent
    b0: torch.Tensor  # (b,) Ty/Tz
    tz0: torch.Tensor  # (b,) given Tz (prior centre), m
    boxes: list[tuple[float, float, float, float]]  # target mask boxes (pixel corners)
    orientation: int | None = None  # front_orientation of the mesh (back-face culling)
    keypoints: Keypoints | None = None  # on the batch's device and dtype

    @functools.cached_property
    def box_side(self) -> torch.Tensor:
        """(b,) longer side of each mask's box, px (the keypoint term's unit)."""
        return torch.tensor([max(1.0, bx[2] - bx[0], bx[3] - bx[1]) if bx else 1.0 for bx in self.boxes],
                            dtype=self.verts.dtype, device=self.verts.device)

    @functools.cached_property
    def tables(self) -> tuple[cc.MaskTables, cc.MaskTables | None, torch.Tensor]:
        """Integral tables of the masks and of the ignore masks (None if none), and the
        image sizes (b, 2) ``(H, W)``, on the solve's device; built once per batch."""
        return mask_tables(self.masks, self.ignore, self.verts.device, self.boxes)


def check_inputs(vertices, tz, masks, cfg: CameraSolverConfig) -> list[str | None]:
    reasons: list[str | None] = []
    finite_v = torch.isfinite(vertices).all(dim=(1, 2))
    zmin = vertices[..., 2].amin(dim=1) + tz
    for i, m in enumerate(masks):
        n = int(m.sum())
        if n == 0:
            reasons.append(REJECT_EMPTY_MASK)
        elif n < cfg.min_mask_px:
            reasons.append(REJECT_SMALL_MASK)
        elif not bool(finite_v[i]) or not math.isfinite(float(tz[i])):
            reasons.append(REJECT_NAN)
        elif float(tz[i]) <= 0 or float(zmin[i]) <= cfg.near:
            reasons.append(REJECT_BEHIND_CAMERA)
        else:
            reasons.append(None)
    return reasons


def decode_params(batch: SolveBatch, th_f, th_uv, th_z, windows_side):
    """Parameters (crop-pixel units) -> (f (b,), transl (b, 3))."""
    f = batch.f0 * torch.exp(th_f / LOG_SCALE)
    unit = windows_side / REF_RES / batch.f0  # Tx/Tz change per unit
    tz = batch.tz0 * torch.exp(th_z / LOG_SCALE)
    a = batch.a0 + th_uv[:, 0] * unit
    b = batch.b0 + th_uv[:, 1] * unit
    return f, torch.stack([a * tz, b * tz, tz], dim=1)


def mask_tables(masks, ignore, device, boxes=None):
    """``(MaskTables of masks, MaskTables of ignore masks or None, image sizes (b, 2) (H, W))``;
    ``boxes``: the masks' ``mask_bbox`` when the caller has them."""
    hw = torch.tensor([list(m.shape) for m in masks], dtype=torch.float64, device=device).view(-1, 2)
    ign = cc.MaskTables(ignore, device) if any(i is not None for i in ignore) else None
    return cc.MaskTables(masks, device, boxes), ign, hw


def window_tensors(windows, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windows ``[(x0, y0, side), ...]`` -> three (b,) float64 tensors."""
    w = torch.tensor([list(v) for v in windows], dtype=torch.float64, device=device).view(-1, 3)
    return w[:, 0], w[:, 1], w[:, 2]


def crop_targets(batch: SolveBatch, windows, res: int, device, dtype, keep: bool = False):
    """Targets and evidence weights (b, res, res): inside the image, not ignored.

    ``windows``: per person ``(x0, y0, side)`` in full-image px. ``keep``: each person's crops
    are kept while its mask (and ignore mask) tensors live unmodified, and found again for the
    same window and size: the descents of one scene (first pass, second chance, depth order,
    peers, the four probes) crop the same windows of the same masks at each stage's size."""
    if not keep:
        tables, ign, hw = batch.tables
        x0, y0, side = window_tensors(windows, tables.device)
        target, valid = cc.crop_evidence(tables, ign, hw, x0, y0, side, res)
        return target.to(device, dtype), valid.to(device, dtype)
    keys = [(tuple(w), res, str(device), dtype) for w in windows]
    got = [_CROPS.get(m, key, (ig,)) for m, ig, key in zip(batch.masks, batch.ignore, keys)]
    miss = [i for i, g in enumerate(got) if g is None]
    if miss:
        tables, ign, hw = batch.tables
        rows = torch.tensor(miss, device=tables.device)
        x0, y0, side = window_tensors([windows[i] for i in miss], tables.device)
        target, valid = (t.to(device, dtype) for t in cc.crop_evidence(tables, ign, hw, x0, y0, side, res, rows))
        for k, i in enumerate(miss):
            got[i] = (target[k].clone(), valid[k].clone())
            _CROPS.put(batch.masks[i], got[i], keys[i], (batch.ignore[i],))
    return torch.stack([g[0] for g in got]), torch.stack([g[1] for g in got])


_CROPS = Kept(per_tensor=32)  # per mask: (target, valid) per window, size, device, dtype (and its ignore mask)


def render_hard(batch, focal, transl, windows, res, faces):
    x0 = torch.tensor([w[0] for w in windows], dtype=focal.dtype, device=focal.device)
    y0 = torch.tensor([w[1] for w in windows], dtype=focal.dtype, device=focal.device)
    side = torch.tensor([w[2] for w in windows], dtype=focal.dtype, device=focal.device)
    fw, cxw, cyw = cc.crop_intrinsics(focal, batch.cx, batch.cy, x0, y0, side, res)
    rows = torch.arange(focal.shape[0], device=batch.verts.device)
    px = project_rigid(batch.verts, rows, transl, fw, cxw, cyw)
    return hard_coverage(px, batch.verts, rows, faces, transl, batch.orientation, res, res).to(focal.dtype)


def transl_from_ratios(tz, a, b):
    """(b, 3) translation from Tz (b,) m and a = Tx/Tz, b = Ty/Tz (b,)."""
    return torch.stack([a * tz, b * tz, tz], dim=1)


def tensor_like(values, like):
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def keypoint_residuals(kp: Keypoints, focal, transl, cx, cy) -> torch.Tensor:
    """Projected body points minus their keypoints -> (B, K, 2) px; ``focal, cx, cy`` (B,) px,
    ``transl`` (B, 3) m (depths clamped at 1 mm)."""
    pts = kp.points + transl[:, None]
    z = pts[..., 2].clamp(min=1e-3)
    return torch.stack([focal[:, None] * pts[..., 0] / z + cx[:, None] - kp.uv[..., 0],
                        focal[:, None] * pts[..., 1] / z + cy[:, None] - kp.uv[..., 1]], dim=-1)


def keypoint_term(batch: SolveBatch, focal, transl, rows=None) -> torch.Tensor | None:
    """Weighted mean distance (px) of the projected body points to their keypoints over the
    longer side of the mask's box -> (b,) (0 where no keypoint is weighted), or None without
    keypoints. ``focal`` (b,) px, ``transl`` (b, 3) m; ``rows``: a subset of the batch."""
    if batch.keypoints is None:
        return None
    rows = slice(None) if rows is None else rows
    kp = batch.keypoints[rows]
    r = keypoint_residuals(kp, focal[rows], transl[rows], batch.cx[rows], batch.cy[rows])
    dist = torch.sqrt((r ** 2).sum(dim=-1) + 1e-6)
    return (kp.weight * dist).sum(dim=1) / kp.weight.sum(dim=1).clamp(min=1e-9) / batch.box_side[rows]


def counts_iou(counts: torch.Tensor, cover_weight: float = 1.0) -> torch.Tensor:
    """Hard IoU from ``full_res_counts``' (b, 3), uncovered mask weighted ``cover_weight``
    (``windows.soft_iou``); 0 where the union is empty."""
    inter, rendered, mask = counts.unbind(1)
    union = rendered + cover_weight * (mask - inter)
    return torch.where(union > 0, inter / union.clamp(min=1e-9), torch.zeros_like(inter))


def fit_objective(batch: SolveBatch, focal, transl, counts, cfg: CameraSolverConfig) -> torch.Tensor:
    """What the descent minimises, scored hard at full resolution -> (b,) CPU float64:
    ``1 − hard IoU`` with the ``cover_weight`` of uncovered mask, plus the keypoint term.
    ``counts``: ``full_res_counts``' (b, 3)."""
    out = 1.0 - counts_iou(counts, cfg.cover_weight)
    term = keypoint_term(batch, focal, transl)
    if term is not None and cfg.keypoint_weight > 0:
        out = out + cfg.keypoint_weight * term.detach().double().cpu()
    return out


def full_res_iou(batch: SolveBatch, focal, transl, faces, cfg: CameraSolverConfig) -> torch.Tensor:
    """Hard IoU with the mask over the whole image at full resolution, ignored pixels excluded."""
    return counts_iou(full_res_counts(batch, focal, transl, faces))


def full_res_counts(batch: SolveBatch, focal, transl, faces) -> torch.Tensor:
    """Pixel counts at full resolution, ignored pixels excluded -> (b, 3) CPU float64:
    rendered ∩ mask, rendered, mask (the whole mask: ignored pixels are not the person's)."""
    b = focal.shape[0]
    out = torch.zeros(b, 3, dtype=torch.float64)
    boxes = [(0, 0, m.shape[1], m.shape[0]) for m in batch.masks]
    hmax = max(by1 - by0 for _, by0, _, by1 in boxes)
    wmax = max(bx1 - bx0 for bx0, _, bx1, _ in boxes)
    step = max(1, (1 << 23) // max(1, hmax * wmax))
    for s in range(0, b, step):
        idx = list(range(s, min(b, s + step)))
        bx0 = torch.tensor([boxes[i][0] for i in idx], dtype=focal.dtype, device=focal.device)
        by0 = torch.tensor([boxes[i][1] for i in idx], dtype=focal.dtype, device=focal.device)
        rows = torch.tensor(idx, device=batch.verts.device)
        px = project_rigid(batch.verts, rows, transl[idx], focal[idx], batch.cx[idx] - bx0, batch.cy[idx] - by0)
        cov = hard_coverage(px, batch.verts, rows, faces, transl[idx], batch.orientation, hmax, wmax).cpu()
        for j, i in enumerate(idx):
            x0, y0, x1, y1 = boxes[i]
            r = cov[j, : y1 - y0, : x1 - x0]
            if batch.ignore[i] is not None:
                r = r & ~batch.ignore[i][y0:y1, x0:x1].cpu()
            g = batch.masks[i][y0:y1, x0:x1].cpu()
            out[i, 0], out[i, 1], out[i, 2] = float((r & g).sum()), float(r.sum()), float(batch.masks[i].sum())
    return out
