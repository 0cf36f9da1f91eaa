"""Procedural garments, hair, hats and bags as 3D meshes on a posed SMPL-X-format body (numpy).

Works with any SMPL-X file: regions are chosen from the skinning weights' dominant joint
and from coordinates in the person's *shaped rest pose* (T-pose, model frame: metres, y up,
x to the body's left, z forward, pelvis at the origin), so a cut such as "sleeves to
mid-forearm" or "trousers to the ankle" is a threshold on a rest coordinate.

Two kinds of geometry:

- **offset surfaces**: a region of the posed body surface pushed out along its vertex
  normals by a few centimetres (loose tops and sleeves, trousers wider than the legs,
  short hair, a cap); they follow the limbs;
- **hanging tubes and boxes** built in the rest frame of one body part and moved with
  that part's rigid motion (a Kabsch fit of the part's rest vertices to its posed ones):
  skirts and coat tails hang from the pelvis and do not follow the legs, long hair hangs
  from the head, a hat brim rings the head, a backpack sits on the back, a bag at the hip.

Every mesh is in the camera frame (metres) like the posed body it dresses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poselabel.synth.textures import random_color

# SMPL-X joint ids.
PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = range(10)
NECK, L_COLLAR, R_COLLAR, HEAD = 12, 13, 14, 15
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 16, 17, 18, 19, 20, 21
HEAD_JOINTS = (HEAD, 22, 23, 24)  # head, jaw, eyes
TORSO_JOINTS = (PELVIS, SPINE1, SPINE2, SPINE3, L_COLLAR, R_COLLAR)
ARM_JOINTS = (L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW)
LEG_JOINTS = (L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE)

# Outfit distribution (probabilities; see docs/synth.md).
P_TOP = 0.92
SLEEVES = (("none", 0.15), ("short", 0.35), ("long", 0.5))
BOTTOMS = (("trousers", 0.45), ("shorts", 0.17), ("skirt", 0.18), ("none", 0.2))
P_COAT = 0.15
HAIR = (("none", 0.12), ("short", 0.5), ("long", 0.38))
P_HAT = 0.2
P_BACKPACK = 0.15
P_SIDE_BAG = 0.12
TUBE_SIDES = 24


@dataclass(frozen=True)
class Garment:
    """One piece: ``verts`` (n, 3) camera frame (m), ``faces`` (m, 3) outward triangles,
    ``color`` (3,) albedo in [0, 1], ``kind`` a short name recorded in the json."""

    kind: str
    verts: np.ndarray
    faces: np.ndarray
    color: np.ndarray


@dataclass(frozen=True)
class BodyGeometry:
    """One person's body, as the garment builders need it (numpy, float64).

    ``rest`` (V, 3) shaped rest-pose vertices, model frame, pelvis at the origin;
    ``rest_joints`` (55, 3) likewise; ``posed`` (V, 3) camera-frame vertices; ``normals``
    (V, 3) their outward unit normals; ``faces`` (F, 3); ``dominant`` (V,) each vertex's
    dominant skinning joint.
    """

    rest: np.ndarray
    rest_joints: np.ndarray
    posed: np.ndarray
    normals: np.ndarray
    faces: np.ndarray
    dominant: np.ndarray


def _pick(rng: np.random.Generator, options) -> str:
    names, p = zip(*options)
    return names[int(rng.choice(len(names), p=np.asarray(p) / sum(p)))]


def _hair_color(rng: np.random.Generator) -> np.ndarray:
    base = [(0.08, 0.06, 0.05), (0.25, 0.15, 0.08), (0.55, 0.4, 0.2), (0.85, 0.7, 0.45), (0.6, 0.6, 0.6),
            (0.5, 0.15, 0.05)][int(rng.integers(6))]
    return np.clip(np.asarray(base) * rng.uniform(0.8, 1.2), 0.0, 1.0)


def sample_outfit(rng: np.random.Generator, body: BodyGeometry) -> list[Garment]:
    """A random outfit for ``body``: top, bottom, maybe a coat, hair, hat and bags."""
    j = body.rest_joints
    out: list[Garment] = []
    sleeves = _pick(rng, SLEEVES)
    coat = rng.random() < P_COAT
    if coat:
        sleeves = "long"
    top_color = random_color(rng)
    if coat or rng.random() < P_TOP:
        loose = rng.uniform(0.008, 0.045)
        hem = j[PELVIS, 1] + rng.uniform(-0.12, 0.06)
        shoulder_x, wrist_x = j[L_SHOULDER, 0], j[L_WRIST, 0]
        frac = {"none": rng.uniform(-0.05, 0.05), "short": rng.uniform(0.2, 0.55),
                "long": rng.uniform(0.85, 0.98)}[sleeves]
        cut = shoulder_x + frac * (wrist_x - shoulder_x)
        region = (np.isin(body.dominant, TORSO_JOINTS + (L_HIP, R_HIP)) & (body.rest[:, 1] >= hem)) | \
            (np.isin(body.dominant, ARM_JOINTS) & (np.abs(body.rest[:, 0]) <= cut))
        depth = np.clip((j[SPINE3, 1] - body.rest[:, 1]) / 0.5, 0.0, 1.0)  # looser towards the hem
        out.append(offset_surface(f"{'coat' if coat else 'top'}:{sleeves}", body, region,
                                  loose * (0.6 + 0.6 * depth) + 0.004, top_color))
    bottom = _pick(rng, BOTTOMS)
    if bottom in ("trousers", "shorts"):
        waist = j[PELVIS, 1] + 0.05
        cut = j[L_ANKLE, 1] + rng.uniform(-0.01, 0.06) if bottom == "trousers" else \
            j[L_KNEE, 1] + rng.uniform(0.03, 0.2)
        region = (np.isin(body.dominant, LEG_JOINTS + (PELVIS,)) & (body.rest[:, 1] <= waist)
                  & (body.rest[:, 1] >= cut))
        t = np.clip((j[L_HIP, 1] - body.rest[:, 1]) / max(j[L_HIP, 1] - cut, 1e-3), 0.0, 1.0)
        width, flare = rng.uniform(0.008, 0.035), rng.uniform(0.0, 0.035)
        out.append(offset_surface(bottom, body, region, width + flare * t + 0.003, random_color(rng)))
    elif bottom == "skirt" and not coat:
        length = rng.uniform(0.3, 0.75)
        out.append(hanging_skirt("skirt", body, length, rng.uniform(1.0, 1.6), random_color(rng)))
    if coat:
        length = rng.uniform(0.45, 0.85)
        out.append(hanging_skirt("coat_tail", body, length, rng.uniform(1.05, 1.35), top_color))
    hair = _pick(rng, HAIR)
    color = _hair_color(rng)
    if hair != "none":
        out.append(hair_cap(f"hair:{hair}", body, rng.uniform(0.006, 0.03), 0.55, color))
    if hair == "long":
        out.append(long_hair(body, rng.uniform(0.08, 0.4), color))
    if rng.random() < P_HAT:
        out += hat(rng, body)
    if rng.random() < P_BACKPACK:
        out.append(backpack(rng, body))
    if rng.random() < P_SIDE_BAG:
        out.append(side_bag(rng, body))
    return out


def offset_surface(kind: str, body: BodyGeometry, region: np.ndarray, offset: np.ndarray | float,
                   color: np.ndarray) -> Garment:
    """The faces of ``region`` (V,) bool whose three vertices are in it, pushed out along the
    posed normals by ``offset`` (m; scalar or (V,))."""
    faces = body.faces[region[body.faces].all(1)]
    used = np.unique(faces)
    remap = np.full(len(region), -1, np.int64)
    remap[used] = np.arange(len(used))
    d = np.broadcast_to(np.asarray(offset, np.float64), (len(region),))[used]
    verts = body.posed[used] + body.normals[used] * d[:, None]
    return Garment(kind, verts, remap[faces], np.asarray(color, np.float64))


def part_frame(body: BodyGeometry, joints: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rigid motion of the vertices dominated by ``joints``: ``(R (3, 3), rest_c (3,), posed_c (3,))``
    with ``posed ≈ R (rest − rest_c) + posed_c`` (Kabsch)."""
    sel = np.isin(body.dominant, joints)
    a, b = body.rest[sel], body.posed[sel]
    ca, cb = a.mean(0), b.mean(0)
    u, _, vt = np.linalg.svd((a - ca).T @ (b - cb))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, ca, cb


def _to_camera(body: BodyGeometry, joints: tuple[int, ...], rest_pts: np.ndarray) -> np.ndarray:
    r, ca, cb = part_frame(body, joints)
    return (rest_pts - ca) @ r.T + cb


def tube(centres: np.ndarray, rx: np.ndarray, rz: np.ndarray, sides: int = TUBE_SIDES,
         caps: bool = False, phase: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Rest-frame tube along -y: rings (in the x-z plane) at ``centres`` (m, 3) with radii
    ``rx, rz`` (m,); outward triangles; ``caps`` closes both ends."""
    theta = phase + np.arange(sides) * 2 * np.pi / sides
    ring = np.stack([np.cos(theta), np.zeros(sides), np.sin(theta)], 1)
    verts = (centres[:, None] + ring[None] * np.stack([rx, np.ones_like(rx), rz], 1)[:, None]).reshape(-1, 3)
    faces = []
    for i in range(len(centres) - 1):
        for k in range(sides):
            a, b = i * sides + k, i * sides + (k + 1) % sides
            c, d = a + sides, b + sides
            faces += [(a, b, c), (b, d, c)]
    if caps:
        n = len(verts)
        verts = np.concatenate([verts, centres[[0, -1]]])
        last = (len(centres) - 1) * sides
        for k in range(sides):
            faces += [(n, (k + 1) % sides, k), (n + 1, last + k, last + (k + 1) % sides)]
    return verts, np.asarray(faces, np.int64)


def _extent(body: BodyGeometry, sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pts = body.rest[sel]
    return pts.min(0), pts.max(0)


def hanging_skirt(kind: str, body: BodyGeometry, length: float, flare: float, color) -> Garment:
    """A flared elliptical tube from the waist down ``length`` m in the pelvis's frame."""
    j = body.rest_joints
    top = j[PELVIS, 1] + 0.06
    band = np.isin(body.dominant, TORSO_JOINTS + LEG_JOINTS) & (np.abs(body.rest[:, 1] - (j[PELVIS, 1] - 0.06)) < 0.08)
    lo, hi = _extent(body, band)
    cx, cz = (lo[0] + hi[0]) / 2, (lo[2] + hi[2]) / 2
    rx0, rz0 = (hi[0] - lo[0]) / 2 + 0.015, (hi[2] - lo[2]) / 2 + 0.015
    t = np.linspace(0.0, 1.0, 7)
    centres = np.stack([np.full_like(t, cx), top - length * t, np.full_like(t, cz)], 1)
    scale = 1.0 + (flare - 1.0) * t
    verts, faces = tube(centres, rx0 * scale, rz0 * scale)
    return Garment(kind, _to_camera(body, (PELVIS, SPINE1), verts), faces, np.asarray(color, np.float64))


def _head_box(body: BodyGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    sel = np.isin(body.dominant, HEAD_JOINTS)
    return sel, *_extent(body, sel)


def hair_cap(kind: str, body: BodyGeometry, thickness: float, above: float, color) -> Garment:
    """Head vertices above ``above`` of the head's height, and the back of the head, pushed out."""
    sel, lo, hi = _head_box(body)
    h = (body.rest[:, 1] - lo[1]) / max(hi[1] - lo[1], 1e-6)
    back = (body.rest[:, 2] - lo[2]) / max(hi[2] - lo[2], 1e-6) < 0.45
    region = sel & ((h >= above) | (back & (h >= 0.2)))
    return offset_surface(kind, body, region, thickness, color)


def long_hair(body: BodyGeometry, length: float, color) -> Garment:
    """A flattened tube hanging from the back of the head, ``length`` m below the head."""
    _, lo, hi = _head_box(body)
    width, depth = hi[0] - lo[0], hi[2] - lo[2]
    top = lo[1] + 0.6 * (hi[1] - lo[1])
    t = np.linspace(0.0, 1.0, 6)
    centres = np.stack([np.full_like(t, (lo[0] + hi[0]) / 2), top - (top - lo[1] + length) * t,
                        np.full_like(t, lo[2] + 0.3 * depth - 0.01 * t)], 1)
    rx = (0.5 * width + 0.012) * (1.0 - 0.3 * t)
    rz = (0.3 * depth + 0.01) * (1.0 - 0.5 * t)
    verts, faces = tube(centres, rx, rz, caps=True)
    return Garment("hair_tail", _to_camera(body, (HEAD,), verts), faces, np.asarray(color, np.float64))


def hat(rng: np.random.Generator, body: BodyGeometry) -> list[Garment]:
    """A crown (the top of the head pushed out) and, mostly, a brim in the head's frame."""
    color = random_color(rng)
    out = [hair_cap("hat", body, rng.uniform(0.02, 0.045), 0.62, color)]
    if rng.random() < 0.65:
        _, lo, hi = _head_box(body)
        y = lo[1] + 0.66 * (hi[1] - lo[1])
        c = np.array([(lo[0] + hi[0]) / 2, y, (lo[2] + hi[2]) / 2])
        brim = rng.uniform(0.025, 0.08)
        rx, rz = (hi[0] - lo[0]) / 2 + 0.03, (hi[2] - lo[2]) / 2 + 0.03
        verts, faces = tube(np.stack([c, c - [0, 0.012, 0]]), np.array([rx, rx + brim]), np.array([rz, rz + brim]))
        out.append(Garment("hat_brim", _to_camera(body, (HEAD,), verts), faces, color))
    return out


def _box(centre: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A closed box (``size`` = width x, height y, depth z) as a 4-sided capped tube."""
    centres = np.stack([centre + [0, size[1] / 2, 0], centre - [0, size[1] / 2, 0]])
    s = np.sqrt(2.0)
    return tube(centres, np.full(2, size[0] / s), np.full(2, size[2] / s), sides=4, caps=True, phase=np.pi / 4)


def backpack(rng: np.random.Generator, body: BodyGeometry) -> Garment:
    j = body.rest_joints
    size = np.array([rng.uniform(0.24, 0.34), rng.uniform(0.3, 0.45), rng.uniform(0.1, 0.18)])
    y = (j[SPINE2, 1] + j[SPINE3, 1]) / 2
    back = np.isin(body.dominant, (SPINE2, SPINE3)) & (np.abs(body.rest[:, 0]) < 0.1)
    z = body.rest[back, 2].min() - size[2] / 2 - 0.015
    verts, faces = _box(np.array([0.0, y, z]), size)
    return Garment("backpack", _to_camera(body, (SPINE2, SPINE3), verts), faces, random_color(rng))


def side_bag(rng: np.random.Generator, body: BodyGeometry) -> Garment:
    j = body.rest_joints
    side = 1.0 if rng.random() < 0.5 else -1.0
    size = np.array([rng.uniform(0.06, 0.1), rng.uniform(0.2, 0.32), rng.uniform(0.22, 0.34)])
    hips = np.isin(body.dominant, (PELVIS, L_HIP, R_HIP)) & (np.abs(body.rest[:, 1] - j[PELVIS, 1]) < 0.05)
    x = side * (np.abs(body.rest[hips, 0]).max() + size[0] / 2 + 0.02)
    verts, faces = _box(np.array([x, j[PELVIS, 1] - 0.02, 0.0]), size)
    return Garment("bag", _to_camera(body, (PELVIS, SPINE1), verts), faces, random_color(rng))
