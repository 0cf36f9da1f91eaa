"""Random synthetic scenes: a pinhole camera and people in front of it.

Distributions (see docs/synth.md):

- image: longer side in {320, 384, ..., 640} px, aspect 1:1, 4:3, 3:2 or 16:9,
  landscape or portrait; horizontal field of view uniform in [30°, 100°];
  principal point at the centre, or (30 %) up to 3 % of the size off it;
- people: 1..``max_persons`` (uniform); pelvis depth Tz uniform in inverse depth,
  80 % in [0.3, 1.2] m and 20 % in [1.2, 10] m; one body joint (head 25 %,
  pelvis 20 %, chest 15 %, ...; ``ANCHOR_JOINTS``) projects anywhere in the
  image enlarged by 10 % a side, so close-ups frame faces and upper bodies
  and some people are cut by the border;
- every vertex at least ``NEAR`` in front of the camera (pose and orientation are
  resampled up to 12 times, then the person is pushed back just enough) and
  pelvises at least 0.45 m apart (no two bodies in the same place; a person
  that cannot be placed is left out).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from poselabel.models.body.model import BodyModel
from poselabel.synth.poses import sample_betas, sample_body_pose, sample_global_orient

NEAR = 0.05  # metres: every vertex of every person lies beyond this depth
CLOSE_RANGE = (0.3, 1.2)
FAR_RANGE = (1.2, 10.0)
P_CLOSE = 0.8
LONG_SIDES = (320, 384, 448, 512, 576, 640)
ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9)
FOV_DEG = (30.0, 100.0)
MIN_PELVIS_GAP = 0.45


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: image ``width`` x ``height`` px, ``focal_px``, principal point ``(cx, cy)`` px."""

    width: int
    height: int
    focal_px: float
    cx: float
    cy: float

    @property
    def hfov_deg(self) -> float:
        return float(np.degrees(2 * np.arctan(self.width / (2 * self.focal_px))))


@dataclass(frozen=True)
class PersonParams:
    """One person: ``betas`` (10,), ``global_orient`` (3,) axis-angle into the camera frame,
    ``body_pose`` (63,), ``transl`` (3,) pelvis in the camera frame (m); float32."""

    betas: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    transl: np.ndarray


@dataclass(frozen=True)
class Scene:
    camera: Camera
    persons: tuple[PersonParams, ...]


def sample_camera(rng: np.random.Generator) -> Camera:
    long_side = int(rng.choice(LONG_SIDES))
    aspect = float(rng.choice(ASPECTS))
    short = int(round(long_side / aspect / 8)) * 8
    width, height = (long_side, short) if rng.random() < 0.5 else (short, long_side)
    fov = np.radians(rng.uniform(*FOV_DEG))
    focal = (width / 2) / np.tan(fov / 2)
    cx, cy = width / 2, height / 2
    if rng.random() < 0.3:
        cx += rng.uniform(-0.03, 0.03) * width
        cy += rng.uniform(-0.03, 0.03) * height
    return Camera(width, height, float(focal), float(cx), float(cy))


def sample_depth(rng: np.random.Generator) -> float:
    """Pelvis depth Tz (m): uniform in inverse depth, 80 % close range, 20 % far."""
    lo, hi = CLOSE_RANGE if rng.random() < P_CLOSE else FAR_RANGE
    return float(1.0 / rng.uniform(1.0 / hi, 1.0 / lo))


# Body joints a photographer frames (SMPL-X ids) and how often: head, neck, chest,
# belly, pelvis, knees, hands. The chosen joint projects inside the image
# enlarged by 10 % a side; the pelvis itself may be out of frame (close-ups).
ANCHOR_JOINTS = (15, 12, 9, 6, 0, 4, 5, 20, 21)
ANCHOR_P = (0.25, 0.1, 0.15, 0.1, 0.2, 0.05, 0.05, 0.05, 0.05)


def sample_scene(rng: np.random.Generator, body: BodyModel, max_persons: int = 3,
                 max_tries: int = 12) -> Scene:
    """A random scene; ``body`` is used to frame people and keep every vertex in front of the camera."""
    cam = sample_camera(rng)
    count = int(rng.integers(1, max_persons + 1))
    persons: list[PersonParams] = []
    for _ in range(count):
        tz = sample_depth(rng)
        for attempt in range(max_tries):
            betas, pose, orient = sample_betas(rng), sample_body_pose(rng), sample_global_orient(rng)
            verts, joints = _pose_at_origin(body, betas, orient, pose)  # pelvis at the origin
            anchor = joints[int(rng.choice(ANCHOR_JOINTS, p=ANCHOR_P))]
            last = attempt == max_tries - 1
            if tz + verts[:, 2].min() < NEAR or tz + anchor[2] < NEAR:
                if not last:
                    continue
                tz = NEAR - verts[:, 2].min() + 0.01  # push back just enough
            u, v = rng.uniform(-0.1, 1.1) * cam.width, rng.uniform(-0.1, 1.1) * cam.height
            za = tz + anchor[2]
            transl = np.array([(u - cam.cx) * za / cam.focal_px - anchor[0],
                               (v - cam.cy) * za / cam.focal_px - anchor[1], tz], np.float32)
            if all(np.linalg.norm(transl - p.transl) >= MIN_PELVIS_GAP for p in persons):
                persons.append(PersonParams(betas, orient, pose, transl))
                break
    return Scene(cam, tuple(persons))


@torch.no_grad()
def _pose_at_origin(body: BodyModel, betas, orient, pose) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and joints (55, 3) in the camera's axes with the pelvis at the origin."""
    t = lambda a: torch.as_tensor(a, dtype=body.dtype, device=body.device)[None]  # noqa: E731
    out = body(t(betas), t(orient), t(pose))
    return out.vertices[0].cpu().numpy(), out.joints[0].cpu().numpy()


@torch.no_grad()
def pose_persons(body: BodyModel, persons: tuple[PersonParams, ...]) -> torch.Tensor:
    """(P, V, 3) camera-frame vertices (m) of the scene's people."""
    stack = lambda name: torch.as_tensor(np.stack([getattr(p, name) for p in persons]),  # noqa: E731
                                         dtype=body.dtype, device=body.device)
    return body(stack("betas"), stack("global_orient"), stack("body_pose"), stack("transl")).vertices
