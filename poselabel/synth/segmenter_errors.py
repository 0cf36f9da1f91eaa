"""A segmenter-error model on top of the clothed masks (the ``clothed+segmenter`` world; numpy).

What a real per-person segmenter (MediaPipe Pose's mask > 0.2 on a square crop around the
person's box, ``models/segment/segmenters.py``) does to the ideal clothed mask, in order:

1. **soft boundary**: the outline moves out (or in) by ``boundary_offset_rel`` of the
   person's height, plus a smooth random wobble of ``boundary_noise_rel``;
2. **missed thin parts**: each visible hand / forearm is dropped with its own probability;
3. **holes**: with ``p_hole`` an elliptical hole of ``hole_area_frac`` of the mask;
4. **merges**: two people whose clothed masks touch are merged with ``p_merge``: each one's
   mask takes the other's pixels inside its own crop (``crop_scale`` × the box's longer
   side, square), as a segmenter run on that crop would give.

The defaults are MEASURED by ``benchmarks/segmenter_errors.py`` (MediaPipe on clothed renders
where it finds the person): ``benchmarks/results/segmenter_errors_2026-12-04.json``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from poselabel.synth.textures import value_noise

# Measured: benchmarks/results/segmenter_errors_2026-12-04.json (benchmarks/segmenter_errors.py, 160 clothed
# images, seed 2026: MediaPipe found 46 of 297 people; supports in that file's summary).
BOUNDARY_OFFSET_REL = -0.0033  # median signed distance of MediaPipe's outline from the clothed one / height (+ out)
BOUNDARY_NOISE_REL = 0.0202  # its spread within a person (half the inter-quartile range) / height
P_MISS_HAND = 0.158  # a visible hand is mostly (> 50 %) missing
P_MISS_FOREARM = 0.061  # a visible bare forearm is mostly missing
P_HOLE = 0.304  # a person's mask has a hole (>= 0.5 % of its area)
HOLE_AREA_FRAC = 0.0183  # median hole area / mask area
P_MERGE = 0.739  # a touching neighbour's pixels (in the crop) mostly taken into the mask
CROP_SCALE = 1.25  # MediaPipeSegmenter's default crop (config.SegmentConfig.crop_scale)

HAND_JOINTS = ((20,) + tuple(range(25, 40)), (21,) + tuple(range(40, 55)))  # left, right (SMPL-X)
FOREARM_JOINTS = ((18,), (19,))


@dataclass(frozen=True)
class SegmenterErrors:
    """Parameters of the error model (fractions and probabilities; see the module docstring)."""

    boundary_offset_rel: float = BOUNDARY_OFFSET_REL
    boundary_noise_rel: float = BOUNDARY_NOISE_REL
    p_miss_hand: float = P_MISS_HAND
    p_miss_forearm: float = P_MISS_FOREARM
    p_hole: float = P_HOLE
    hole_area_frac: float = HOLE_AREA_FRAC
    p_merge: float = P_MERGE
    crop_scale: float = CROP_SCALE


def box_of(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """``(x0, y0, x1, y1)`` px of an (H, W) bool mask, exclusive right/bottom; None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def crop_region(box, scale: float, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool square of side ``scale`` × the box's longer side around its centre."""
    x0, y0, x1, y1 = box
    side = scale * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    out = np.zeros(shape, bool)
    out[max(0, int(round(cy - side / 2))):max(0, int(round(cy + side / 2))),
        max(0, int(round(cx - side / 2))):max(0, int(round(cx + side / 2)))] = True
    return out


def touching(a: np.ndarray, b: np.ndarray, gap_px: int = 2) -> bool:
    """Whether two (H, W) bool masks come within ``gap_px`` pixels of each other."""
    return bool((ndimage.binary_dilation(a, iterations=gap_px) & b).any())


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """(H, W) px: distance to the outline, positive inside ``mask``, negative outside."""
    return ndimage.distance_transform_edt(mask) - ndimage.distance_transform_edt(~mask)


def apply_errors(rng: np.random.Generator, clothed: np.ndarray, joint: np.ndarray, count: int,
                 params: SegmenterErrors = SegmenterErrors()) -> list[np.ndarray]:
    """Per person a segmenter-like (H, W) bool mask (they may overlap where people merge).

    ``clothed`` (H, W) uint8: nearest person (0 background, ``i + 1`` person i, garments
    included); ``joint`` (H, W): the dominant skinning joint of the visible body face
    (``clothed.GARMENT`` / ``BACKGROUND`` elsewhere); ``count`` people.
    """
    h, w = clothed.shape
    ideal = [clothed == i + 1 for i in range(count)]
    noise = 2.0 * value_noise(rng, h, w, octaves=3) - 1.0  # smooth, in [-1, 1]
    out = []
    for m in ideal:
        box = box_of(m)
        if box is None:
            out.append(m.copy())
            continue
        height = box[3] - box[1]
        offset = params.boundary_offset_rel * height + params.boundary_noise_rel * height * noise
        s = _signed_distance(m) + offset  # > 0: kept
        grown = s > 0
        grow_px = max(1, int(np.ceil(abs(params.boundary_offset_rel) * height + params.boundary_noise_rel * height)))
        for parts, p_miss in ((HAND_JOINTS, params.p_miss_hand), (FOREARM_JOINTS, params.p_miss_forearm)):
            for joints in parts:
                part = m & np.isin(joint, joints)
                if part.any() and rng.random() < p_miss:
                    grown &= ~ndimage.binary_dilation(part, iterations=grow_px)
        if rng.random() < params.p_hole and grown.sum() > 50:
            grown &= ~_ellipse(rng, grown, params.hole_area_frac)
        out.append(grown)
    merged = [m.copy() for m in out]
    for i in range(count):
        for j in range(i + 1, count):
            if touching(ideal[i], ideal[j]) and rng.random() < params.p_merge:
                for a, b in ((i, j), (j, i)):
                    box = box_of(ideal[a])
                    if box is not None:
                        merged[a] |= out[b] & crop_region(box, params.crop_scale, (h, w))
    return merged


def _ellipse(rng: np.random.Generator, mask: np.ndarray, area_frac: float) -> np.ndarray:
    """(H, W) bool ellipse of ``area_frac`` of ``mask``'s area centred on one of its pixels."""
    ys, xs = np.nonzero(mask)
    k = int(rng.integers(len(xs)))
    area = area_frac * len(xs)
    aspect = rng.uniform(0.5, 2.0)
    a = np.sqrt(area * aspect / np.pi)
    b = area / (np.pi * max(a, 1e-6))
    yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    return ((xx + 0.5 - xs[k] - 0.5) / max(a, 0.5)) ** 2 + ((yy + 0.5 - ys[k] - 0.5) / max(b, 0.5)) ** 2 <= 1.0
