"""MediaPipe's 33 landmarks in HMR2.0's 44-keypoint layout (numpy only).

HMR2.0 (4D-Humans) trains on 44 2D keypoints: OpenPose BODY_25 (0-24) followed by 19 "extra"
dataset joints (25-43: LSP's 14, neck, head top, pelvis, thorax, spine, jaw, head). MediaPipe
gives 21 of the 25 OpenPose points directly or as a midpoint (neck = the shoulders' midpoint,
mid-hip = the hips'); the two small toes and every extra joint have no MediaPipe counterpart and
get confidence 0, which HMR2's keypoint loss ignores.
"""
from __future__ import annotations

import numpy as np

NUM_HMR2_KEYPOINTS = 44
NUM_MEDIAPIPE = 33

# OpenPose BODY_25 index -> MediaPipe landmark index (the person's left is "left" in both).
BODY25_FROM_MEDIAPIPE = {
    0: 0,  # nose
    2: 12, 3: 14, 4: 16,  # right shoulder, elbow, wrist
    5: 11, 6: 13, 7: 15,  # left shoulder, elbow, wrist
    9: 24, 10: 26, 11: 28,  # right hip, knee, ankle
    12: 23, 13: 25, 14: 27,  # left hip, knee, ankle
    15: 5, 16: 2, 17: 8, 18: 7,  # right eye, left eye, right ear, left ear
    19: 31, 21: 29,  # left big toe (foot index), left heel
    22: 32, 24: 30,  # right big toe (foot index), right heel
}
BODY25_MIDPOINTS = {1: (11, 12), 8: (23, 24)}  # neck, mid-hip


def hmr2_keypoints_2d(mediapipe: np.ndarray | None) -> np.ndarray:
    """MediaPipe ``(33, 3)`` [u, v, visibility] -> HMR2's ``(44, 3)`` [u, v, confidence], same pixels.

    ``None`` (no landmarks) gives all zeros: no keypoint supervision.
    """
    out = np.zeros((NUM_HMR2_KEYPOINTS, 3), np.float32)
    if mediapipe is None:
        return out
    mp = np.asarray(mediapipe, np.float32).reshape(NUM_MEDIAPIPE, 3)
    for dst, src in BODY25_FROM_MEDIAPIPE.items():
        out[dst] = mp[src]
    for dst, (a, b) in BODY25_MIDPOINTS.items():
        out[dst, :2] = (mp[a, :2] + mp[b, :2]) / 2
        out[dst, 2] = min(mp[a, 2], mp[b, 2])
    return out
