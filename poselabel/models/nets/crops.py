"""Person crops shared by training and inference (pure numpy / torch / PIL).

A *crop window* is a square of the full image, ``(x0, y0, side)`` in full-image
pixels (origin at the top-left corner of the top-left pixel), made as BLADE
does: ``side = scale · max(box width, box height)`` (``scale`` 1.25) around the
box centre, then shifted inside the image along each axis where it fits
(``side ≤ W``, resp. ``H``); where it does not fit it stays centred on the box
and the outside is zero-filled (black before normalisation).

The network sees the crop resized to ``size × size`` and ImageNet-normalised,
plus a **crop-info vector** (``CROP_INFO_DIM`` = 7 floats, unitless) telling it
where the crop sits in the full image, CLIFF/PersPose style, with
``s = √(W² + H²)`` (CLIFF's focal-length guess; the true focal is unknown):

``[(ccx − W/2)/s, (ccy − H/2)/s, side/s, bw/s, bh/s, W/s, H/s]``

(``ccx, ccy``: crop centre, px; ``bw, bh``: person box size, px). Box and
image sizes let a network see truncation at the image border.
``perspective_map`` turns it into PersPose's per-pixel map ``M^xy`` under the
same focal guess ``f = s``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from poselabel.models.images.guard import window_pixels

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
CROP_INFO_DIM = 7
DEFAULT_SCALE = 1.25


@dataclass(frozen=True)
class Jitter:
    """Training augmentation ranges (all zero: no augmentation).

    ``scale``: crop side × U[1 − scale, 1 + scale]; ``shift``: centre moved by
    U[−shift, shift] · side per axis; ``color``: per-channel gain U[1 − c, 1 + c]
    and brightness offset U[−c/2, c/2] (on [0, 1] pixel values).
    """

    scale: float = 0.0
    shift: float = 0.0
    color: float = 0.0


TRAIN_JITTER = Jitter(scale=0.1, shift=0.05, color=0.2)


def crop_window(box_xyxy, width: int, height: int, scale: float = DEFAULT_SCALE) -> np.ndarray:
    """Square crop window(s) for person box(es).

    Args:
        box_xyxy: (N, 4) or (4,) ``[x0, y0, x1, y1]`` px in the full image.
        width, height: full image size, px.
    Returns:
        (N, 3) or (3,) float64 ``[x0, y0, side]`` px.
    """
    box = np.asarray(box_xyxy, np.float64)
    single = box.ndim == 1
    box = box.reshape(-1, 4)
    side = scale * np.maximum(np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]), 1.0)
    x0 = _shift_inside(0.5 * (box[:, 0] + box[:, 2]) - side / 2, side, width)
    y0 = _shift_inside(0.5 * (box[:, 1] + box[:, 3]) - side / 2, side, height)
    out = np.stack([x0, y0, side], 1)
    return out[0] if single else out


def _shift_inside(lo: np.ndarray, side: np.ndarray, limit: int) -> np.ndarray:
    fits = side <= limit
    return np.where(fits, np.clip(lo, 0.0, np.maximum(limit - side, 0.0)), lo)


def crop_info(window, box_xyxy, width: int, height: int) -> np.ndarray:
    """Crop-info vectors (module docstring): window (N, 3) px, boxes (N, 4) px -> (N, 7) float32."""
    w = np.asarray(window, np.float64).reshape(-1, 3)
    b = np.asarray(box_xyxy, np.float64).reshape(-1, 4)
    s = float(np.hypot(width, height))
    ccx, ccy = w[:, 0] + w[:, 2] / 2, w[:, 1] + w[:, 2] / 2
    info = np.stack([(ccx - width / 2) / s, (ccy - height / 2) / s, w[:, 2] / s,
                     (b[:, 2] - b[:, 0]) / s, (b[:, 3] - b[:, 1]) / s,
                     np.full(len(w), width / s), np.full(len(w), height / s)], 1)
    return info.astype(np.float32)


def jitter_windows(window: np.ndarray, jitter: Jitter, rng: np.random.Generator) -> np.ndarray:
    """Randomly rescale and shift windows (N, 3) ``[x0, y0, side]`` px (centre-preserving scale)."""
    w = np.asarray(window, np.float64).reshape(-1, 3).copy()
    n = len(w)
    centre = w[:, :2] + w[:, 2:] / 2
    side = w[:, 2] * rng.uniform(1 - jitter.scale, 1 + jitter.scale, n)
    centre = centre + rng.uniform(-jitter.shift, jitter.shift, (n, 2)) * w[:, 2:]
    return np.concatenate([centre - side[:, None] / 2, side[:, None]], 1)


def cut_window(image: np.ndarray, window, size: int) -> np.ndarray:
    """Resample one window of an RGB uint8 (H, W, 3) image to (size, size, 3) uint8.

    The window is rounded to whole pixels (``x0, y0`` and ``side``, at most half a
    pixel each); outside the image is black. Downscaling is antialiased (PIL). A window
    over the pixel guard is never built whole (``models/images/guard.py``).
    """
    return window_pixels(image, window, size)


def normalise(pixels: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, S, S, 3) RGB -> float32 (N, 3, S, S), ImageNet-normalised."""
    x = torch.as_tensor(np.asarray(pixels)).float().div_(255.0)
    x = (x - torch.from_numpy(IMAGENET_MEAN)) / torch.from_numpy(IMAGENET_STD)
    return x.permute(0, 3, 1, 2).contiguous()


def extract_crops(image: np.ndarray, boxes_xyxy, size: int, scale: float = DEFAULT_SCALE,
                  jitter: Jitter | None = None, rng: np.random.Generator | None = None):
    """Crops of every person of one image.

    Args:
        image: (H, W, 3) uint8 RGB.
        boxes_xyxy: (N, 4) px.
        size: network input side, px.
        jitter, rng: training augmentation (``None``: none); deterministic for a given ``rng`` state.
    Returns:
        ``(pixels, info, windows)``: (N, 3, size, size) float32 normalised, (N, 7) float32
        crop info, (N, 3) float64 windows ``[x0, y0, side]`` px (after jitter and rounding).
    """
    height, width = image.shape[:2]
    boxes = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
    windows = crop_window(boxes, width, height, scale)
    if jitter is not None:
        windows = jitter_windows(windows, jitter, rng)
    windows = np.round(windows)
    windows[:, 2] = np.maximum(windows[:, 2], 1)
    if len(boxes) == 0:
        return torch.zeros(0, 3, size, size), np.zeros((0, CROP_INFO_DIM), np.float32), windows
    cuts = np.stack([cut_window(image, w, size) for w in windows])
    if jitter is not None and jitter.color > 0:
        cuts = color_jitter(cuts, jitter.color, rng)
    return normalise(cuts), crop_info(windows, boxes, width, height), windows


def color_jitter(pixels: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Per-crop channel gains and brightness offset on uint8 (N, S, S, 3); returns uint8."""
    n = len(pixels)
    gain = rng.uniform(1 - amount, 1 + amount, (n, 1, 1, 3))
    offset = rng.uniform(-amount / 2, amount / 2, (n, 1, 1, 1)) * 255
    return np.clip(pixels * gain + offset, 0, 255).astype(np.uint8)


def perspective_map(info: torch.Tensor, size: int) -> torch.Tensor:
    """PersPose's perspective-encoding map under the focal guess ``f = s``.

    Args:
        info: (N, 7) crop-info vectors.
    Returns:
        (N, 2, size, size): for every crop pixel centre, ``((u − W/2)/s, (v − H/2)/s)``,
        i.e. the ray's ``(x, y)`` on the plane ``z = 1`` if ``f = s``, principal point centred.
    """
    steps = (torch.arange(size, dtype=info.dtype, device=info.device) + 0.5) / size - 0.5  # (S,)
    side = info[:, 2, None]
    xs = info[:, 0, None] + steps[None] * side  # (N, S)
    ys = info[:, 1, None] + steps[None] * side
    return torch.stack([xs[:, None, :].expand(-1, size, -1), ys[:, :, None].expand(-1, -1, size)], 1)
