"""Shape and expression spaces of the procedural body model.

Each shape direction is a per-vertex displacement field (metres per unit of
beta) in the model frame (y up, x to the body's left, z forward, pelvis at the
origin, T-pose). ``beta_k = ±1`` is meant as a plausible one-sigma change of
an adult, ``±3`` stays human:

====  =============================================================
beta  effect (for +1)
====  =============================================================
0     overall size: +5 % in every dimension (about +8.5 cm height)
1     weight: girth of torso (+12 %), neck and limbs (+5 %)
2     leg length: +7 % below the hip joints
3     arm length: +7 % beyond the shoulders
4     shoulder width: +8 % across the upper torso; arms move out
5     hip width: +10 % across the pelvis; legs move out
6     torso length: +8 % between pelvis and neck; everything above rises
7     head size: +7 % about the base of the skull
8     belly: up to +3 cm forward at the waist
9     limb thickness (muscle): +10 % radius of arms and legs
====  =============================================================

Joints follow shape because the body model's ``J_regressor`` regresses them
from the shaped vertices.
"""
from __future__ import annotations

import numpy as np

SHAPE_NAMES = ("size", "weight", "leg_length", "arm_length", "shoulder_width",
               "hip_width", "torso_length", "head_size", "belly", "limb_thickness")

_Y_HIP = -0.085       # hip joint height
_X_SHOULDER = 0.185   # shoulder joint |x|
_X_HIP = 0.088        # hip joint |x|
_Y_NECK = 0.455       # top of the torso tube
_SKULL_BASE = np.array([0.0, 0.56, 0.0])


def _smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def shape_space(verts: np.ndarray, axis_pts: np.ndarray, groups: np.ndarray, names: np.ndarray) -> np.ndarray:
    """(V, 3, 10) shape directions for vertices ``verts`` (V, 3).

    ``axis_pts`` (V, 3): centre of each vertex's cross-section ring (radial
    direction = vertex - axis point); ``groups`` (V,): the part's role
    (torso, neck, head, arm, hand, leg, foot); ``names`` (V,): the part's name.
    """
    v = verts
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    sign = np.sign(x) + (x == 0)
    radial = v - axis_pts
    dirs = np.zeros((len(v), 3, 10))
    torso, neck, head = groups == "torso", groups == "neck", groups == "head"
    arm, hand = groups == "arm", groups == "hand"
    leg, foot = groups == "leg", groups == "foot"
    upper_limb = arm | hand
    lower_limb = leg | foot
    above = neck | head | upper_limb

    dirs[:, :, 0] = 0.05 * v
    girth = np.select([torso, neck, arm | leg], [0.12, 0.06, 0.05], 0.0)
    dirs[:, :, 1] = girth[:, None] * radial
    dirs[:, 1, 2] = np.where(lower_limb | torso, -0.07 * np.maximum(0.0, _Y_HIP - y), 0.0)
    dirs[:, 0, 3] = np.where(upper_limb, 0.07 * sign * np.maximum(0.0, np.abs(x) - _X_SHOULDER), 0.0)
    dirs[:, 0, 4] = np.where(torso, 0.08 * x * _smoothstep(0.18, 0.40, y), 0.0)
    dirs[:, 0, 4] += np.where(upper_limb, 0.08 * sign * _X_SHOULDER, 0.0)
    dirs[:, 0, 5] = np.where(torso, 0.10 * x * (1.0 - _smoothstep(0.0, 0.20, y)), 0.0)
    dirs[:, 0, 5] += np.where(lower_limb, 0.10 * sign * _X_HIP, 0.0)
    dirs[:, 1, 6] = np.where(torso, 0.08 * np.clip(y, 0.0, _Y_NECK), 0.0)
    dirs[:, 1, 6] += np.where(above, 0.08 * _Y_NECK, 0.0)
    dirs[:, :, 7] = np.where(head[:, None], 0.07 * (v - _SKULL_BASE), 0.0)
    r_hat = radial / np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-9)
    belly = np.exp(-0.5 * ((y - 0.10) / 0.09) ** 2) * np.maximum(r_hat[:, 2], 0.0) ** 2
    dirs[:, :, 8] = np.where(torso[:, None], 0.03 * belly[:, None] * r_hat, 0.0)
    dirs[:, :, 9] = np.where((arm | leg)[:, None], 0.10 * radial, 0.0)
    return dirs.astype(np.float32)


def expression_space(verts: np.ndarray, head_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(V, 3, 10) small expression directions: smooth bumps of a few millimetres on the face."""
    dirs = np.zeros((len(verts), 3, 10), dtype=np.float32)
    face = head_idx[verts[head_idx, 2] > 0.06]
    for k in range(10):
        centre = verts[face[rng.integers(len(face))]]
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        bump = np.exp(-0.5 * (np.linalg.norm(verts[face] - centre, axis=1) / 0.02) ** 2)
        dirs[face, :, k] = 0.004 * bump[:, None] * direction
    return dirs
