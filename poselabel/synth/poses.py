"""Random plausible body poses, shapes and global orientations (numpy only).

Axis-angles are in SMPL-X's joint frames, which in the rest pose are aligned
with the model frame (y up, x to the body's left, z forward). Signs used
below (left side; the right side mirrors y and z rotations):

- hip: -x flexes the thigh forward, +z abducts (left leg out to +x);
- knee: +x bends the shin backward (the only way a knee bends);
- shoulder (arm along +x in the T-pose): -z lowers the arm, -y brings it forward;
- elbow: -y bends the forearm forward;
- spine, neck, head: +x bends forward, z bends sideways, y twists.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

# Body-pose slots (SMPL-X joint index - 1).
L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = 0, 1, 2, 3, 4, 5, 6, 7, 8
L_FOOT, R_FOOT, NECK, L_COLLAR, R_COLLAR, HEAD = 9, 10, 11, 12, 13, 14
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 15, 16, 17, 18, 19, 20

# Per-slot (x, y, z) ranges for small random variation around any posture (radians).
_JITTER = np.zeros((21, 3))
_JITTER[[SPINE1, SPINE2, SPINE3]] = (0.15, 0.12, 0.08)
_JITTER[[NECK, HEAD]] = (0.2, 0.3, 0.12)
_JITTER[[L_COLLAR, R_COLLAR]] = (0.05, 0.1, 0.1)
_JITTER[[L_ANKLE, R_ANKLE]] = (0.2, 0.1, 0.1)
_JITTER[[L_FOOT, R_FOOT]] = (0.1, 0.05, 0.05)
_JITTER[[L_WRIST, R_WRIST]] = (0.2, 0.3, 0.4)
_JITTER[[L_HIP, R_HIP]] = (0.1, 0.1, 0.05)

LOWER_BODY_MODES = ("stand", "walk", "sit", "crouch", "kneel", "free")
_MODE_P = (0.3, 0.25, 0.2, 0.1, 0.05, 0.1)


def _set(pose: np.ndarray, slot: int, x=0.0, y=0.0, z=0.0, right: bool = False) -> None:
    """Add a left-side rotation to ``pose[slot]``, mirrored (y, z negated) for the right."""
    s = -1.0 if right else 1.0
    pose[slot] += (x, s * y, s * z)


def sample_body_pose(rng: np.random.Generator) -> np.ndarray:
    """(63,) axis-angle body pose: a lower-body posture, two independent arms, jitter."""
    pose = np.zeros((21, 3))
    mode = LOWER_BODY_MODES[rng.choice(len(LOWER_BODY_MODES), p=_MODE_P)]
    u = rng.uniform
    for right, hip, knee in ((False, L_HIP, L_KNEE), (True, R_HIP, R_KNEE)):
        if mode == "stand":
            _set(pose, hip, x=u(-0.2, 0.1), z=u(-0.05, 0.25), right=right)
            _set(pose, knee, x=u(0.0, 0.25))
        elif mode == "walk":
            swing = u(0.2, 0.6) * (1 if right else -1) * (1 if rng.random() < 0.5 else -1)
            _set(pose, hip, x=-swing, z=u(0.0, 0.1), right=right)
            _set(pose, knee, x=u(0.05, 0.9))
        elif mode == "sit":
            _set(pose, hip, x=u(-1.8, -1.2), y=u(-0.2, 0.3), z=u(0.0, 0.35), right=right)
            _set(pose, knee, x=u(1.1, 1.9))
        elif mode == "crouch":
            _set(pose, hip, x=u(-2.2, -1.6), z=u(0.1, 0.5), right=right)
            _set(pose, knee, x=u(1.9, 2.4))
        elif mode == "kneel":
            _set(pose, hip, x=u(-0.3, 0.1), z=u(0.0, 0.2), right=right)
            _set(pose, knee, x=u(1.5, 2.2))
        else:
            _set(pose, hip, x=u(-1.6, 0.5), y=u(-0.4, 0.4), z=u(-0.2, 0.8), right=right)
            _set(pose, knee, x=u(0.0, 2.2))
    for right, shoulder, elbow in ((False, L_SHOULDER, L_ELBOW), (True, R_SHOULDER, R_ELBOW)):
        lower = u(-1.45, 1.2) if rng.random() < 0.8 else u(-1.45, -0.9)
        _set(pose, shoulder, x=u(-0.6, 0.6), y=u(-1.3, 0.5), z=lower, right=right)
        _set(pose, elbow, y=-u(0.0, 2.3) * (rng.random() < 0.8), x=u(-0.5, 0.5), right=right)
    if mode in ("sit", "crouch"):
        pose[SPINE1, 0] += u(0.0, 0.4)
    pose += rng.uniform(-1.0, 1.0, size=(21, 3)) * _JITTER
    return pose.reshape(63).astype(np.float32)


def sample_betas(rng: np.random.Generator) -> np.ndarray:
    """(10,) shape coefficients ~ N(0, 1) clipped to ±3."""
    return np.clip(rng.normal(size=10), -3.0, 3.0).astype(np.float32)


def sample_global_orient(rng: np.random.Generator) -> np.ndarray:
    """(3,) axis-angle, model frame -> camera frame, as a photographer would see a person.

    Upright (rotation by π about x) then: any heading (yaw about the body's
    up axis), a camera pitch (seen from above or below), an in-image roll
    (leaning); 12 % lie down (on back, front or side) seen mostly from above.
    """
    upright = Rotation.from_rotvec([np.pi, 0.0, 0.0])
    yaw = Rotation.from_rotvec([0.0, rng.uniform(-np.pi, np.pi), 0.0])
    body = yaw
    pitch_sd, roll_sd = 0.3, 0.15  # radians
    if rng.random() < 0.12:
        lie = [(-np.pi / 2, 0.0, 0.0), (np.pi / 2, 0.0, 0.0), (0.0, 0.0, np.pi / 2), (0.0, 0.0, -np.pi / 2)]
        body = yaw * Rotation.from_rotvec(lie[rng.integers(4)])  # lie down, then any heading
        camera = Rotation.from_rotvec([rng.uniform(0.3, 1.3), 0.0, 0.0])  # looking down
    else:
        camera = Rotation.from_rotvec([np.clip(rng.normal(0.0, pitch_sd), -1.0, 1.0), 0.0, 0.0]) \
            * Rotation.from_rotvec([0.0, 0.0, np.clip(rng.normal(0.0, roll_sd), -0.6, 0.6)])
    return (camera * upright * body).as_rotvec().astype(np.float32)
