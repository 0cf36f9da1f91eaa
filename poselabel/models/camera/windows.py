"""Crops, mask resampling and mask statistics for the camera solver (pure torch).

A *crop* is a square window of the full image, given per person by its
top-left corner ``(x0, y0)`` and side ``side`` in full-image pixels (real
numbers; the window may extend past the image). Sampling it at ``R x R``
working pixels scales by ``k = R / side``: a camera with intrinsics
``(f, cx, cy)`` becomes ``(k f, k (cx - x0), k (cy - y0))`` in the crop, with the
same pixel conventions (origin at the top-left corner of the top-left pixel).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from poselabel.models.camera import kernels
from poselabel.models.kept import Kept


def crop_intrinsics(focal, cx, cy, x0, y0, side, res: int):
    """Full-image intrinsics (B,) each -> crop intrinsics at ``res x res`` (B,) each."""
    k = res / side
    return focal * k, (cx - x0) * k, (cy - y0) * k


def _overlap_1d(lo: torch.Tensor, hi: torch.Tensor, limit: int) -> torch.Tensor:
    """Length of ``[lo, hi] ∩ [0, limit]`` (elementwise)."""
    return (torch.minimum(hi, torch.tensor(float(limit))) - lo.clamp(min=0)).clamp(min=0)


def sample_mask_crop(mask: torch.Tensor, x0: float, y0: float, side: float, res: int):
    """Exact area-averaged resampling of one binary mask into a square crop.

    Args:
        mask: (H, W) bool or float, the full-image mask.
        x0, y0, side: the crop window in full-image pixels (real numbers).
        res: output size.

    Returns:
        ``(target, valid)``, both (res, res) float64 on ``mask``'s device: ``target`` the
        fraction of each crop cell covered by the mask, ``valid`` the fraction of the
        cell that lies inside the image (cells outside the image carry no evidence).
    """
    h, w = mask.shape
    edges = torch.arange(res + 1, dtype=torch.float64) * (side / res)
    ex, ey = x0 + edges, y0 + edges
    # Integral image of the part of the mask the crop touches (+1 margin).
    ix0, iy0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    ix1, iy1 = min(w, math.ceil(x0 + side)), min(h, math.ceil(y0 + side))
    area = torch.outer(_overlap_1d(ey[:-1], ey[1:], h), _overlap_1d(ex[:-1], ex[1:], w))
    valid = area / (side / res) ** 2
    if ix1 <= ix0 or iy1 <= iy0:
        zeros = torch.zeros(res, res, dtype=torch.float64)
        return zeros.to(mask.device), valid.to(mask.device)
    sub = mask[iy0:iy1, ix0:ix1].to(torch.float64).cpu()
    table = F.pad(sub.cumsum(0).cumsum(1), (1, 0, 1, 0))  # (h'+1, w'+1), I at integer corners
    # The integral of a pixel-constant image is bilinear inside each pixel: interpolate.
    gx = (ex - ix0).clamp(0, ix1 - ix0)
    gy = (ey - iy0).clamp(0, iy1 - iy0)
    integ = _bilinear_table(table, gx, gy)  # (res+1, res+1)
    cell = integ[1:, 1:] - integ[:-1, 1:] - integ[1:, :-1] + integ[:-1, :-1]
    target = (cell / (side / res) ** 2).clamp(0, 1)
    return target.to(mask.device), valid.to(mask.device)


def _bilinear_table(table: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of ``table`` (Hy, Hx) at the grid ``gy x gx`` -> (len(gy), len(gx))."""
    hy, hx = table.shape
    x0 = gx.floor().long().clamp(0, hx - 2) if hx > 1 else gx.floor().long() * 0
    y0 = gy.floor().long().clamp(0, hy - 2) if hy > 1 else gy.floor().long() * 0
    fx = (gx - x0).clamp(0, 1)[None, :]
    fy = (gy - y0).clamp(0, 1)[:, None]
    x1, y1 = (x0 + 1).clamp(max=hx - 1), (y0 + 1).clamp(max=hy - 1)
    t00 = table[y0][:, x0]
    t01 = table[y0][:, x1]
    t10 = table[y1][:, x0]
    t11 = table[y1][:, x1]
    return (t00 * (1 - fx) * (1 - fy) + t01 * fx * (1 - fy) + t10 * (1 - fx) * fy + t11 * fx * fy)


_INTEGRALS = Kept()  # per mask: its integral table (of one box, on one device)


def _integral(mask: torch.Tensor, box: tuple[int, int, int, int], device) -> torch.Tensor:
    """(y1 - y0 + 1, x1 - x0 + 1) int32 cumulative pixel counts of ``mask`` (H, W) over its
    ``box`` ``(x0, y0, x1, y1)``, a zero first row and column, kept while the mask tensor lives
    unmodified: the solves of one scene (first pass, second chance, depth order, peers, probes,
    the shared camera) crop the same masks again."""
    def make():
        x0, y0, x1, y1 = box
        out = torch.zeros(y1 - y0 + 1, x1 - x0 + 1, dtype=torch.int32, device=device)
        counts = mask[y0:y1, x0:x1].to(device=device, dtype=torch.int32).cumsum(0, dtype=torch.int32)
        torch.cumsum(counts, 1, dtype=torch.int32, out=out[1:, 1:])
        return out

    return _INTEGRALS(mask, make, key=(box, str(device)))


class MaskTables:
    """Integral images of b masks, for exact area-averaged crops of any windows in one batch.

    The batched form of :func:`sample_mask_crop` (same values up to float64 rounding):
    each mask is cut to its tight box (its integral is constant beyond it), integrated once
    (pixel counts in int32, exact; kept per mask tensor across tables: ``_integral``) on
    ``device``, and the b tables are laid end to end in one flat tensor (memory: the boxes'
    areas x 4 bytes; a ``(b, Hb + 1, Wb + 1)`` block padded to the largest box cost more to
    zero than the crops took: 2026-12-07); each crop is then four gathers, with no Python loop
    over persons. A ``None`` mask is an empty one.

    Args:
        masks: b x (H_i, W_i) bool full-image masks, or None.
        device: where the tables live and the crops are computed.
        boxes: the masks' ``mask_bbox`` (None for an empty one), when the caller has them.
    """

    def __init__(self, masks: list[torch.Tensor | None], device, boxes=None):
        if boxes is None:
            boxes = [None if m is None else kept_bbox(m) for m in masks]
        boxes = [tuple(int(v) for v in bx) if bx is not None else (0, 0, 0, 0) for bx in boxes]
        self.device = torch.device(device)
        # Pixel counts, exact in int32 (a mask has fewer than 2^31 pixels); gathers turn float64.
        parts = [_integral(m, bx, device) if bx[2] > bx[0] else torch.zeros(1, 1, dtype=torch.int32, device=device)
                 for m, bx in zip(masks, boxes)]
        self.flat = torch.cat([t.reshape(-1) for t in parts]) if parts else torch.zeros(0, dtype=torch.int32)
        sizes = [t.numel() for t in parts]
        self.base = torch.tensor([sum(sizes[:i]) for i in range(len(sizes))], dtype=torch.long,
                                 device=device)  # (b,) where each table starts in ``flat``
        self.stride = torch.tensor([t.shape[1] for t in parts], dtype=torch.long, device=device)  # (b,) its row length
        self.origin = torch.tensor([[bx[0], bx[1]] for bx in boxes], dtype=torch.float64, device=device).view(-1, 2)
        self.size = torch.tensor([[bx[2] - bx[0], bx[3] - bx[1]] for bx in boxes], dtype=torch.long,
                                 device=device).view(-1, 2)  # (b, 2) box width, height

    def crops(self, x0: torch.Tensor, y0: torch.Tensor, side: torch.Tensor, res: int,
              rows: torch.Tensor | None = None) -> torch.Tensor:
        """Fraction of each cell of the ``res x res`` crops ``(x0, y0, side)`` (each (b,),
        full-image px) covered by the masks (or by the masks ``rows`` (b,) long) -> (b, res, res) float64."""
        base, stride, origin, size = self.base, self.stride, self.origin, self.size
        if rows is not None:
            base, stride, origin, size = (t.index_select(0, rows) for t in (base, stride, origin, size))
        if self.device.type == "cpu" and kernels.available():  # the same values in one compiled pass
            return kernels.mask_crops(self.flat, base, stride, origin, size, x0, y0, side, res)
        return self._crops(base, stride, origin, size, x0, y0, side, res)

    def _crops(self, base, stride, origin, size, x0, y0, side, res: int) -> torch.Tensor:
        """``crops`` in torch (CUDA, or where numba is missing), of the tables' rows given."""
        b = base.shape[0]
        step = (side.to(torch.float64) / res)[:, None]
        edges = torch.arange(res + 1, dtype=torch.float64, device=self.device)[None] * step  # (b, res+1)
        gx, ix, ix1, fx = self._axis(x0[:, None].to(torch.float64) + edges - origin[:, :1], size[:, :1])
        gy, iy, iy1, fy = self._axis(y0[:, None].to(torch.float64) + edges - origin[:, 1:], size[:, 1:])
        base, stride = base[:, None, None], stride[:, None, None]

        def at(yy, xx):
            return self.flat[(base + yy[:, :, None] * stride + xx[:, None, :]).view(b, -1)].view(b, res + 1, res + 1).double()

        fx, fy = fx[:, None, :], fy[:, :, None]
        integ = (at(iy, ix) * (1 - fx) * (1 - fy) + at(iy, ix1) * fx * (1 - fy)
                 + at(iy1, ix) * (1 - fx) * fy + at(iy1, ix1) * fx * fy)
        cell = integ[:, 1:, 1:] - integ[:, :-1, 1:] - integ[:, 1:, :-1] + integ[:, :-1, :-1]
        return (cell / (step[:, :, None] ** 2)).clamp(0, 1)

    @staticmethod
    def _axis(g: torch.Tensor, size: torch.Tensor):
        """Box-local grid coordinates (b, n) -> clamped coordinate, corner index, next corner, fraction."""
        g = torch.minimum(g.clamp(min=0), size.to(g.dtype))
        i = torch.minimum(g.floor().long(), (size - 1).clamp(min=0))
        return g, i, torch.minimum(i + 1, size), (g - i).clamp(0, 1)


def cells_inside(hw: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, side: torch.Tensor, res: int) -> torch.Tensor:
    """Fraction of each cell of the ``res x res`` crops ``(x0, y0, side)`` (each (b,), full-image
    px) inside images of sizes ``hw`` (b, 2) ``(H, W)`` px -> (b, res, res) float64."""
    step = (side.to(torch.float64) / res)[:, None]
    edges = torch.arange(res + 1, dtype=torch.float64, device=side.device)[None] * step
    ex, ey = x0.to(torch.float64)[:, None] + edges, y0.to(torch.float64)[:, None] + edges
    hw = hw.to(device=side.device, dtype=torch.float64)
    ox = (torch.minimum(ex[:, 1:], hw[:, 1:]) - ex[:, :-1].clamp(min=0)).clamp(min=0)
    oy = (torch.minimum(ey[:, 1:], hw[:, :1]) - ey[:, :-1].clamp(min=0)).clamp(min=0)
    return oy[:, :, None] * ox[:, None, :] / (step[:, :, None] ** 2)


def crop_evidence(tables: MaskTables, ignore: MaskTables | None, hw: torch.Tensor, x0, y0, side, res: int,
                  rows: torch.Tensor | None = None):
    """Targets and evidence weights of b crops, both (b, res, res) float64: the fraction of
    each cell covered by the mask, and the fraction inside the image and not ignored
    (``rows`` (b,) long: of these masks of the tables, default all)."""
    valid = cells_inside(hw if rows is None else hw.index_select(0, rows), x0, y0, side, res)
    if ignore is not None:
        valid = (valid - ignore.crops(x0, y0, side, res, rows)).clamp(min=0)
    return tables.crops(x0, y0, side, res, rows), valid


_BOXES = Kept()  # per mask: (its mask_bbox,)


def kept_bbox(mask: torch.Tensor) -> tuple[float, float, float, float] | None:
    """``mask_bbox(mask)``, kept while the mask tensor lives unmodified (the scene's solves ask
    for the same masks' boxes again: 0.24 of 15 CPU-s for 60 people, 2026-12-07)."""
    return _BOXES(mask, lambda: (mask_bbox(mask),))[0]


def mask_bbox(mask: torch.Tensor) -> tuple[float, float, float, float] | None:
    """Tight box ``(x0, y0, x1, y1)`` (pixel corners) of a (H, W) mask, or None if empty."""
    rows = torch.nonzero(mask.any(dim=1)).squeeze(1)
    cols = torch.nonzero(mask.any(dim=0)).squeeze(1)
    if rows.numel() == 0:
        return None
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def square_around(box, scale: float, min_side: float = 8.0):
    """Square window ``(x0, y0, side)`` centred on ``box`` with side ``scale * longer side``."""
    x0, y0, x1, y1 = box
    side = max(min_side, scale * max(x1 - x0, y1 - y0))
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    return cx - side / 2, cy - side / 2, side


def square_in_image(box, scale: float, height: int, width: int, min_side: float = 8.0):
    """Like ``square_around``, but no larger than the image's longer side and shifted to
    stay over the image where possible (pixels outside the image carry no evidence, so
    window area there only costs resolution). Always contains ``box`` if ``box`` lies in
    the image."""
    x0, y0, side = square_around(box, scale, min_side)
    side = min(side, float(max(height, width)))
    side = max(side, box[2] - box[0], box[3] - box[1])
    cx, cy = 0.5 * (box[0] + box[2]), 0.5 * (box[1] + box[3])

    def place(c, lo_box, hi_box, extent):
        start = c - side / 2
        lo, hi = min(0.0, extent - side), max(0.0, extent - side)
        start = min(max(start, lo), hi)
        return min(max(start, hi_box - side), lo_box)  # keep the box inside

    return place(cx, box[0], box[2], width), place(cy, box[1], box[3], height), side


def moments(img: torch.Tensor, weight: torch.Tensor | None = None):
    """Area, centroid and RMS radius of (B, R, R) soft masks (pixel centres at +0.5).

    Returns ``(area (B,), cu (B,), cv (B,), spread (B,))`` in crop pixels; centroid and
    spread are NaN where the area is 0.
    """
    if weight is not None:
        img = img * weight
    _, h, w = img.shape
    ys = torch.arange(h, dtype=img.dtype, device=img.device)[None, :, None] + 0.5
    xs = torch.arange(w, dtype=img.dtype, device=img.device)[None, None, :] + 0.5
    area = img.sum(dim=(1, 2))
    a = torch.where(area > 0, area, torch.full_like(area, float("nan")))
    cu = (img * xs).sum(dim=(1, 2)) / a
    cv = (img * ys).sum(dim=(1, 2)) / a
    var = (img * ((xs - cu[:, None, None]) ** 2 + (ys - cv[:, None, None]) ** 2)).sum(dim=(1, 2)) / a
    return area, cu, cv, torch.sqrt(var)


@functools.lru_cache(maxsize=64)
def _blur_band(n: int, sigma: float, dtype: torch.dtype, device: str) -> torch.Tensor:
    """(n, n) matrix of a 1-D Gaussian blur with zero padding: ``out = M @ in``."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    i = torch.arange(n, device=device)
    offset = i[None, :] - i[:, None]  # input index - output index
    near = offset.abs() <= radius
    band = torch.zeros(n, n, dtype=dtype, device=device)
    band[near] = k[(offset + radius)[near]]
    return band


def gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, H, W), zero padding; ``sigma`` in pixels (0: identity).

    Two matrix products with banded (H, H) and (W, W) matrices: on the CPU a single-channel
    ``conv2d`` and its backward cost 15-25x more at 64-192 px (docs/camera_solver.md)."""
    if sigma <= 0:
        return img
    h, w = img.shape[-2:]
    rows = _blur_band(h, float(sigma), img.dtype, str(img.device))
    cols = rows if w == h else _blur_band(w, float(sigma), img.dtype, str(img.device))
    return rows @ img @ cols.T


def blurred_iou_loss(sil: torch.Tensor, valid: torch.Tensor, target: torch.Tensor, sigma: float,
                     form: str = "tanimoto", cover_weight: float = 1.0) -> torch.Tensor:
    """The descent's loss ``1 - soft_iou(gaussian_blur(sil * valid, sigma), target, 1, form,
    cover_weight)``: compiled on the CPU for the Tanimoto form (``kernels.blurred_tanimoto``, the
    same values and gradient), these torch operations otherwise.

    Args:
        sil: (B, H, W) silhouettes in [0, 1] (differentiable); valid: (B, H, W) evidence weights;
        target: (B, H, W) the blurred, evidence-cut target; sigma: blur (px of this grid).

    Returns:
        (B,) loss, differentiable w.r.t. ``sil``.
    """
    if kernels.usable(sil, form, sigma):
        return kernels.blurred_tanimoto(sil, valid, target, sigma, cover_weight)
    pred = gaussian_blur(sil * valid, sigma)
    return 1.0 - soft_iou(pred, target, torch.ones_like(pred), form, cover_weight)


def soft_iou(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor,
             form: str = "tanimoto", cover_weight: float = 1.0) -> torch.Tensor:
    """Soft IoU of (B, H, W) maps in [0, 1] with per-pixel weights -> (B,).

    ``form="tanimoto"`` (default): ``Σ w p g / Σ w (p² + g² − p g)``, the extended
    Jaccard index. ``form="blade"``: ``Σ w p g / Σ w (p + g − p g)`` (BLADE). Both equal
    the IoU on binary masks. On blurred (soft) masks only the Tanimoto form is maximal
    exactly at ``p = g`` (it is ``1 − ‖p − g‖² / Σ(p² + g² − pg)``); BLADE's form rewards
    sharpening, which biases the optimum (measured: about +1.5 % on f at 64 px, σ = 2).

    ``cover_weight`` (Tanimoto only) weighs the mask the body leaves uncovered against the
    body outside the mask: ``Σ w p g / Σ w (p g + (p − g)₊² + cover_weight (g − p)₊²)``
    (``p² + g² − p g = p g + (p − g)²``, so 1 is the symmetric form). Below 1 the mask is
    read as a bound from outside (clothes and hair widen it, they never narrow it); the
    score stays at most 1 and is still maximal at ``p = g``.
    """
    inter = (weight * pred * target).sum(dim=(1, 2))
    if form == "tanimoto" and cover_weight != 1.0:
        d = pred - target
        union = (weight * (pred * target + d.clamp(min=0) ** 2 + cover_weight * d.clamp(max=0) ** 2)).sum(dim=(1, 2))
    elif form == "tanimoto":
        union = (weight * (pred * pred + target * target - pred * target)).sum(dim=(1, 2))
    elif form == "blade":
        union = (weight * (pred + target - pred * target)).sum(dim=(1, 2))
    else:
        raise ValueError(f"unknown soft IoU form {form!r}")
    return inter / union.clamp(min=1e-9)
