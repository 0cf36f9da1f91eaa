"""2D keypoints as a landmark detector gives them, from the true ones (numpy only).

The noise model is the one measured by running MediaPipe's landmarker on renders
(``benchmarks/keypoint_noise.py``, ``benchmarks/results/keypoint_noise_2026-12-04.json``;
docs/quality.md): per coordinate a Gaussian spread of about 4 % of the person's box side,
and a share of gross outliers (points farther than 20 % of the side from the truth: 15 % of
the detector's points), here thrown 20-60 % of the side in a random direction. The
camera bench (``poselabel bench camera --keypoint-noise``) and the quality benchmark
(``benchmarks/quality_inputs.py``) draw their detector keypoints here.
"""
from __future__ import annotations

import numpy as np

KEYPOINT_NOISE = 0.04  # Gaussian spread, fraction of the box's longer side
KEYPOINT_OUTLIERS = 0.15  # share of gross outliers
OUTLIER_REACH = (0.2, 0.6)  # how far an outlier lands, fraction of the side


def detector_keypoints(uv: np.ndarray, depth: np.ndarray, side: np.ndarray, size: np.ndarray,
                       rng: np.random.Generator, sigma: float = KEYPOINT_NOISE,
                       outliers: float = KEYPOINT_OUTLIERS) -> tuple[np.ndarray, np.ndarray]:
    """Noisy detections of true keypoints.

    Args:
        uv: (N, K, 2) true keypoints, image px (u right, v down).
        depth: (N, K) their camera-frame depth, m (a point behind the camera is not seen).
        side: (N,) each person's box side, px (the noise scales with it).
        size: (N, 2) each image's ``(W, H)``, px.
        rng: the random generator; ``sigma``, ``outliers``: the noise model (module docstring).

    Returns:
        ``(uv_detected (N, K, 2) px, seen (N, K) bool)``: ``seen`` where the *true* point is in
        front of the camera and inside the image (what a detector can find at all).
    """
    uv = np.asarray(uv, np.float64)
    side = np.asarray(side, np.float64)[:, None, None]
    out = uv + rng.normal(0.0, 1.0, uv.shape) * sigma * side
    if outliers > 0:
        gross = rng.random(uv.shape[:2]) < outliers
        angle = rng.uniform(0.0, 2.0 * np.pi, uv.shape[:2])
        reach = rng.uniform(*OUTLIER_REACH, uv.shape[:2])[..., None] * side
        throw = np.stack([np.cos(angle), np.sin(angle)], axis=-1) * reach
        out = np.where(gross[..., None], uv + throw, out)
    size = np.asarray(size, np.float64)[:, None, :]
    seen = (np.asarray(depth) > 0) & (uv >= 0).all(-1) & (uv < size).all(-1)
    return out, seen
