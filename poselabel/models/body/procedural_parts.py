"""Skeleton and surface parts of the procedural SMPL-X-format body.

Frame: SMPL-X's model frame, metres: y up, x towards the body's left, z
forward; the pelvis joint is at the origin; the rest pose is a T-pose with the
arms along ±x and the palms down. A neutral adult of about 1.70 m.

The surface is a union of closed, outward-oriented tubes ("parts"), one per
body segment (torso, neck, head, nose, upper/lower arms and legs, palms, 10
fingers, feet). Each tube is swept along a straight axis with an elliptical
cross-section whose radii follow a profile, and closed by elliptical caps, so
every part is a closed surface and the union renders as a solid silhouette.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

# SMPL-X's 55 joints, in SMPL-X's order.
_FINGERS = ("index", "middle", "pinky", "ring", "thumb")
JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw",
    "left_eye_smplhf", "right_eye_smplhf",
) + tuple(f"left_{f}{k}" for f in _FINGERS for k in (1, 2, 3)) \
  + tuple(f"right_{f}{k}" for f in _FINGERS for k in (1, 2, 3))
NUM_JOINTS = len(JOINT_NAMES)  # 55
J = {name: i for i, name in enumerate(JOINT_NAMES)}

# SMPL-X's kinematic tree: parent of each joint (-1 for the pelvis).
PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15]
    + [p for base in (20,) for f in range(5) for p in (base, 25 + 3 * f, 26 + 3 * f)]
    + [p for base in (21,) for f in range(5) for p in (base, 40 + 3 * f, 41 + 3 * f)],
    dtype=np.int64)

# Left-side joint positions (x > 0) and the midline; the right side mirrors x.
_MID = {
    "pelvis": (0.0, 0.0, 0.0), "spine1": (0.0, 0.10, -0.012), "spine2": (0.0, 0.23, -0.005),
    "spine3": (0.0, 0.29, 0.0), "neck": (0.0, 0.50, -0.015), "head": (0.0, 0.60, 0.0),
    "jaw": (0.0, 0.625, 0.03), "eye_smplhf": (0.032, 0.675, 0.085),
}
_LEFT = {
    "hip": (0.088, -0.085, -0.005), "knee": (0.100, -0.475, 0.0), "ankle": (0.108, -0.865, -0.035),
    "foot": (0.118, -0.915, 0.095), "collar": (0.075, 0.425, -0.01), "shoulder": (0.185, 0.42, -0.015),
    "elbow": (0.455, 0.42, -0.025), "wrist": (0.705, 0.42, -0.015),
}
# Hand (left, palm down, fingers along +x, thumb towards +z): knuckle (joint 1) offsets
# from the wrist and the lengths of the three phalanges plus the tip.
_KNUCKLES = {"index": (0.090, 0.0, 0.027), "middle": (0.094, 0.0, 0.006),
             "ring": (0.088, 0.0, -0.014), "pinky": (0.078, -0.002, -0.032),
             "thumb": (0.020, -0.012, 0.030)}
_PHALANGES = {"index": (0.040, 0.024, 0.022), "middle": (0.044, 0.028, 0.023),
              "ring": (0.041, 0.026, 0.022), "pinky": (0.032, 0.020, 0.020),
              "thumb": (0.035, 0.032, 0.027)}
_THUMB_DIR = np.array([0.62, -0.12, 0.77]) / np.linalg.norm([0.62, -0.12, 0.77])
_FINGER_RADIUS = {"index": 0.0095, "middle": 0.0098, "ring": 0.0092, "pinky": 0.0082, "thumb": 0.0115}


def _mirror(p) -> np.ndarray:
    return np.array([-p[0], p[1], p[2]], dtype=np.float64)


def _finger_dir(finger: str, sign: float) -> np.ndarray:
    d = _THUMB_DIR if finger == "thumb" else np.array([1.0, 0.0, 0.0])
    return np.array([sign * d[0], d[1], d[2]])


def rest_joints() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The rest-pose joints (55, 3) and extra named points (finger tips, toe tips, head top)."""
    out = np.zeros((NUM_JOINTS, 3))
    extra: dict[str, np.ndarray] = {}
    for name, p in _MID.items():
        if name == "eye_smplhf":
            out[J["left_eye_smplhf"]] = p
            out[J["right_eye_smplhf"]] = _mirror(p)
        else:
            out[J[name]] = p
    for side, sign in (("left", 1.0), ("right", -1.0)):
        for name, p in _LEFT.items():
            out[J[f"{side}_{name}"]] = p if sign > 0 else _mirror(p)
        wrist = out[J[f"{side}_wrist"]]
        for finger in _FINGERS:
            k = np.array(_KNUCKLES[finger]) * [sign, 1, 1]
            d = _finger_dir(finger, sign)
            p = wrist + k
            for i in range(3):
                out[J[f"{side}_{finger}{i + 1}"]] = p
                p = p + d * _PHALANGES[finger][i]
            extra[f"{side}_{finger}_tip"] = p
        extra[f"{side}_toe_tip"] = out[J[f"{side}_foot"]] + np.array([0.006 * sign, -0.008, 0.085])
        extra[f"{side}_heel"] = np.array([0.105 * sign, -0.905, -0.075])
    extra["head_top"] = np.array([0.0, 0.77, 0.01])
    extra["chin"] = np.array([0.0, 0.57, 0.085])
    return out, extra


@dataclass(frozen=True)
class PartSpec:
    """One closed tube: axis ``a -> b``; cross-section axes ``e1`` (radius ``rx``) and
    ``e2`` (radius ``rz``); ``profile`` rows ``(t, rx, rz, offset_e2)`` for t in [0, 1];
    caps of depth ``cap0``/``cap1`` (metres) beyond ``a``/``b``; ``joints``: joints whose
    bones may skin it, with a distance penalty (m) each; ``group``: shape-space role."""

    name: str
    a: np.ndarray
    b: np.ndarray
    e1: np.ndarray
    profile: np.ndarray
    cap0: float
    cap1: float
    joints: dict[int, float]
    group: str
    n_around: int
    n_mid: int
    n_cap: int
    tau: float


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def part_specs(resolution: float = 1.0) -> list[PartSpec]:
    """The body's parts, at a tessellation density scaled by ``resolution`` (1.0: ~12.9k vertices)."""
    jt, extra = rest_joints()

    def res(n: int, lo: int = 3) -> int:
        return max(lo, int(round(n * resolution)))

    def spec(name, a, b, e1, profile, cap0, cap1, joints, group, around, mid, cap, tau):
        return PartSpec(name, np.asarray(a, float), np.asarray(b, float), _unit(e1),
                        np.asarray(profile, float), cap0, cap1, joints, group,
                        res(around, 6), res(mid, 2), res(cap, 2), tau)

    parts = [
        spec("torso", (0, -0.11, 0), (0, 0.455, 0), (-1, 0, 0),
             [(0.00, 0.150, 0.100, -0.012), (0.10, 0.168, 0.110, -0.015), (0.22, 0.160, 0.105, -0.008),
              (0.38, 0.135, 0.092, 0.0), (0.55, 0.150, 0.100, 0.006), (0.70, 0.165, 0.108, 0.012),
              (0.86, 0.178, 0.098, 0.004), (0.95, 0.180, 0.085, -0.008), (1.00, 0.170, 0.075, -0.012)],
             0.06, 0.045, {0: 0.0, 3: 0.0, 6: 0.0, 9: 0.0, 13: 0.02, 14: 0.02, 1: 0.035, 2: 0.035},
             "torso", 48, 40, 8, 0.02),
        spec("neck", (0, 0.43, -0.02), (0, 0.60, 0.0), (1, 0, 0),
             [(0.0, 0.062, 0.060, 0.0), (0.5, 0.054, 0.056, 0.0), (1.0, 0.052, 0.054, 0.0)],
             0.03, 0.03, {9: 0.0, 12: 0.0, 15: 0.0}, "neck", 24, 10, 4, 0.015),
        spec("head", (0, 0.615, 0.012), (0, 0.705, 0.012), (-1, 0, 0),
             [(0.0, 0.070, 0.090, 0.0), (0.5, 0.078, 0.098, 0.0), (1.0, 0.076, 0.096, -0.004)],
             0.065, 0.068, {12: 0.02, 15: 0.0, 22: 0.03}, "head", 36, 10, 12, 0.015),
        spec("nose", (0, 0.655, 0.095), (0, 0.655, 0.112), (1, 0, 0),
             [(0.0, 0.013, 0.012, 0.0), (1.0, 0.010, 0.009, 0.0)],
             0.01, 0.008, {15: 0.0}, "head", 12, 3, 3, 0.01),
    ]
    for side, s in (("left", 1.0), ("right", -1.0)):
        def j(n):
            return jt[J[f"{side}_{n}"]]

        def ji(n):
            return J[f"{side}_{n}"]

        parts += [
            spec(f"{side}_thigh", j("hip"), j("knee"), (1, 0, 0),
                 [(0.0, 0.082, 0.088, 0.0), (0.3, 0.076, 0.080, 0.003), (0.75, 0.060, 0.062, 0.0),
                  (1.0, 0.054, 0.056, 0.0)],
                 0.05, 0.045, {0: 0.03, ji("hip"): 0.0, ji("knee"): 0.0}, "leg", 28, 20, 6, 0.014),
            spec(f"{side}_calf", j("knee"), j("ankle"), (1, 0, 0),
                 [(0.0, 0.052, 0.054, 0.0), (0.25, 0.053, 0.058, -0.008), (0.6, 0.042, 0.044, -0.004),
                  (1.0, 0.033, 0.036, 0.0)],
                 0.045, 0.03, {ji("hip"): 0.0, ji("knee"): 0.0, ji("ankle"): 0.0}, "leg", 24, 20, 6, 0.012),
            spec(f"{side}_foot", extra[f"{side}_heel"] + (0, 0.03, 0.035), j("foot") + (0, 0.01, 0.045),
                 (1, 0, 0), [(0.0, 0.036, 0.040, 0.0), (0.5, 0.043, 0.036, 0.0), (1.0, 0.048, 0.024, 0.0)],
                 0.035, 0.04, {ji("knee"): 0.02, ji("ankle"): 0.0, ji("foot"): 0.0}, "foot", 20, 10, 5, 0.012),
            spec(f"{side}_upperarm", j("shoulder"), j("elbow"), (0, 1, 0),
                 [(0.0, 0.052, 0.054, 0.0), (0.35, 0.047, 0.047, 0.0), (1.0, 0.040, 0.040, 0.0)],
                 0.05, 0.04, {ji("collar"): 0.0, ji("shoulder"): 0.0, ji("elbow"): 0.0}, "arm", 24, 16, 6, 0.012),
            spec(f"{side}_forearm", j("elbow"), j("wrist"), (0, 1, 0),
                 [(0.0, 0.038, 0.042, 0.0), (0.3, 0.038, 0.044, 0.0), (1.0, 0.025, 0.034, 0.0)],
                 0.035, 0.02, {ji("shoulder"): 0.0, ji("elbow"): 0.0, ji("wrist"): 0.0}, "arm", 20, 16, 5, 0.01),
            spec(f"{side}_palm", j("wrist") + (0.008 * s, -0.002, 0.0), j("middle1") + (-0.006 * s, 0, -0.004),
                 (0, 1, 0), [(0.0, 0.018, 0.036, 0.0), (0.5, 0.017, 0.044, 0.0), (1.0, 0.014, 0.046, 0.0)],
                 0.012, 0.012, {ji("elbow"): 0.01, ji("wrist"): 0.0, **{ji(f"{f}1"): 0.01 for f in _FINGERS}},
                 "hand", 20, 8, 5, 0.006),
        ]
        for f in _FINGERS:
            r = _FINGER_RADIUS[f]
            tip = extra[f"{side}_{f}_tip"]
            parts.append(spec(
                f"{side}_{f}", j(f"{f}1"), tip - _finger_dir(f, s) * r * 0.7, (0, 1, 0),
                [(0.0, r * 0.95, r * 1.05, 0.0), (1.0, r * 0.75, r * 0.8, 0.0)],
                r * 0.9, r * 0.7, {ji("wrist"): 0.004, ji(f"{f}1"): 0.0, ji(f"{f}2"): 0.0, ji(f"{f}3"): 0.0},
                "hand", 10, 8, 3, 0.003))
    return parts


def tessellate(part: PartSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices (N, 3), outward triangles (F, 3) and axis points (N, 3) of one closed part.

    The axis point of a vertex is the centre of its cross-section ring (radial
    directions for girth changes are ``vertex - axis_point``).
    """
    a, b = part.a, part.b
    axis = b - a
    length = np.linalg.norm(axis)
    ax = axis / length
    e1 = part.e1 - ax * (part.e1 @ ax)
    e1 = e1 / np.linalg.norm(e1)
    e2 = np.cross(ax, e1)
    t_p, rx_p, rz_p, off_p = part.profile.T

    # Shape-preserving cubic (PCHIP) profiles: smooth radii, no shading bands at control points.
    curves = [PchipInterpolator(t_p, c) if len(t_p) > 2 else (lambda t, c=c: np.interp(t, t_p, c))
              for c in (rx_p, rz_p, off_p)]

    def radii(t):
        return tuple(float(c(t)) for c in curves)

    # Rings from the pole at a's cap to the pole at b's cap: (axial position, rx, rz, offset).
    rings = []
    for k in range(1, part.n_cap):  # cap at a: polar angle from near 0 to just below pi/2
        phi = 0.5 * np.pi * k / part.n_cap
        rx, rz, off = radii(0.0)
        rings.append((-part.cap0 * np.cos(phi), rx * np.sin(phi), rz * np.sin(phi), off))
    for k in range(part.n_mid + 1):
        t = k / part.n_mid
        rx, rz, off = radii(t)
        rings.append((t * length, rx, rz, off))
    for k in range(part.n_cap - 1, 0, -1):
        phi = 0.5 * np.pi * k / part.n_cap
        rx, rz, off = radii(1.0)
        rings.append((length + part.cap1 * np.cos(phi), rx * np.sin(phi), rz * np.sin(phi), off))
    rings = np.array(rings)
    n = part.n_around
    theta = 2 * np.pi * np.arange(n) / n
    centres = a + rings[:, :1] * ax + rings[:, 3:4] * e2  # (R, 3)
    ring_v = (centres[:, None, :]
              + rings[:, 1, None, None] * np.cos(theta)[None, :, None] * e1
              + rings[:, 2, None, None] * np.sin(theta)[None, :, None] * e2)  # (R, n, 3)
    pole0 = a - part.cap0 * ax + radii(0.0)[2] * e2
    pole1 = b + part.cap1 * ax + radii(1.0)[2] * e2
    verts = np.concatenate([pole0[None], ring_v.reshape(-1, 3), pole1[None]])
    axis_pts = np.concatenate([pole0[None], np.repeat(centres, n, axis=0), pole1[None]])
    n_rings = len(rings)
    idx = 1 + np.arange(n_rings * n).reshape(n_rings, n)
    nxt = np.roll(idx, -1, axis=1)
    faces = [np.stack([np.zeros(n, int), nxt[0], idx[0]], 1)]  # fan at pole0
    q0, q1, q2, q3 = idx[:-1], nxt[:-1], nxt[1:], idx[1:]
    faces.append(np.stack([q0, q1, q2], -1).reshape(-1, 3))
    faces.append(np.stack([q0, q2, q3], -1).reshape(-1, 3))
    last = len(verts) - 1
    faces.append(np.stack([idx[-1], nxt[-1], np.full(n, last)], 1))
    faces = np.concatenate(faces)
    # Orient outward: the signed volume of a closed surface is positive when outward.
    tri = verts[faces]
    volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    if volume < 0:
        faces = faces[:, ::-1]
    return verts, np.ascontiguousarray(faces), axis_pts
