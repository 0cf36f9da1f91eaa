"""MediaPipe's 33 landmarks against the body's joints (numpy only).

The pairing of MediaPipe landmarks with SMPL-X joints (:data:`MP_TO_SMPLX`, the ears'
midpoint standing in for the head), and :func:`keypoint_residual`: how far fitted joints,
projected by a camera, land from the detector's 2D keypoints (the camera stage measures
it; the accept rule reads it).
"""
from __future__ import annotations

import numpy as np

# MediaPipe landmark index -> SMPL-X joint index (person's left is "left" in both).
MP_TO_SMPLX = (
    (11, 16), (12, 17),  # shoulders
    (13, 18), (14, 19),  # elbows
    (15, 20), (16, 21),  # wrists
    (23, 1), (24, 2),  # hips
    (25, 4), (26, 5),  # knees
    (27, 7), (28, 8),  # ankles
    (31, 10), (32, 11),  # foot index -> feet
)
MP_EARS = (7, 8)  # their midpoint stands in for SMPL-X's head joint (15)
SMPLX_HEAD = 15
TORSO = (0, 1, 6, 7)  # rows of MP_TO_SMPLX: shoulders and hips
# the SMPL-X joints the landmarks stand for, in the order of landmark_targets' rows
KEYPOINT_JOINTS = tuple(s for _, s in MP_TO_SMPLX) + (SMPLX_HEAD,)


def landmark_targets(kp3d: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe (N, 33, 3) world landmarks + (N, 33) visibility -> SMPL-X targets.

    Returns ``(joint_ids (K,), targets (N, K, 3), weights (N, K))`` with the
    head target the ears' midpoint.
    """
    ids = list(KEYPOINT_JOINTS)
    targets = np.concatenate([kp3d[:, [m for m, _ in MP_TO_SMPLX]],
                              kp3d[:, list(MP_EARS)].mean(axis=1, keepdims=True)], axis=1)
    weights = np.concatenate([visibility[:, [m for m, _ in MP_TO_SMPLX]],
                              visibility[:, list(MP_EARS)].min(axis=1, keepdims=True)], axis=1)
    return np.asarray(ids), targets.astype(np.float32), np.clip(weights, 0.05, 1.0).astype(np.float32)


def body_points_for_landmarks(joints: np.ndarray, kp2d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair fitted joints (N, 55, 3) with MediaPipe 2D landmarks (N, 33, 3 = u, v, vis).

    Returns ``(points3d (N, K, 3), points2d (N, K, 2), weights (N, K))`` on the
    joints of :data:`MP_TO_SMPLX` and the head.
    """
    ids, _, _ = landmark_targets(np.zeros((kp2d.shape[0], 33, 3), np.float32), kp2d[..., 2])
    p2d = np.concatenate([kp2d[:, [m for m, _ in MP_TO_SMPLX], :2],
                          kp2d[:, list(MP_EARS), :2].mean(axis=1, keepdims=True)], axis=1)
    vis = np.concatenate([kp2d[:, [m for m, _ in MP_TO_SMPLX], 2],
                          kp2d[:, list(MP_EARS), 2].min(axis=1, keepdims=True)], axis=1)
    weights = np.where(vis > 0.5, vis, 0.0)
    return joints[:, ids], p2d, weights


def keypoint_residual(joints_cam: np.ndarray, keypoints_2d: np.ndarray, weights: np.ndarray, focal_px: float,
                      cx: float, cy: float, bbox_xyxy: np.ndarray) -> tuple[float | None, int]:
    """How far the fitted joints land from the detector's 2D keypoints, and on how many.

    ``joints_cam`` (K, 3) fitted joints in the camera frame (m), paired with ``keypoints_2d``
    (K, 2) image px and ``weights`` (K,) (0: not seen); projected with ``focal_px`` and the
    principal point ``(cx, cy)`` px. Returns ``(error, count)``: the weighted mean distance
    divided by the longer side of ``bbox_xyxy`` (4,) px (unitless; None when no weighted
    keypoint lies in front of the camera), and the number of weighted keypoints it averages.
    """
    j = np.asarray(joints_cam, np.float64).reshape(-1, 3)
    kp = np.asarray(keypoints_2d, np.float64).reshape(-1, 2)
    w = np.asarray(weights, np.float64).reshape(-1)
    w = np.where(np.isfinite(kp).all(1) & np.isfinite(j).all(1) & (j[:, 2] > 1e-6), np.clip(w, 0, None), 0.0)
    count = int((w > 0).sum())
    if count == 0:
        return None, 0
    z = np.where(w > 0, j[:, 2], 1.0)
    uv = np.stack([focal_px * j[:, 0] / z + cx, focal_px * j[:, 1] / z + cy], 1)
    dist = np.linalg.norm(np.where(w[:, None] > 0, uv - kp, 0.0), axis=1)
    box = np.asarray(bbox_xyxy, np.float64)
    side = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0)
    return float((dist * w).sum() / w.sum() / side), count


def keypoint_error(joints_cam: np.ndarray, keypoints_2d: np.ndarray, weights: np.ndarray, focal_px: float,
                   cx: float, cy: float, bbox_xyxy: np.ndarray, min_points: int = 4) -> float | None:
    """:func:`keypoint_residual`'s error, or None with fewer than ``min_points`` keypoints."""
    error, count = keypoint_residual(joints_cam, keypoints_2d, weights, focal_px, cx, cy, bbox_xyxy)
    return error if count >= min_points else None  # error is None at count 0
