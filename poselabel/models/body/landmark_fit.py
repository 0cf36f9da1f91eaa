"""The no-weights default: SMPL-X and the camera from MediaPipe's landmarks.

Two steps, both batched over persons:

1. :func:`fit_body_to_landmarks`: fit ``(betas, global_orient, body_pose)`` so
   that the body model's joints match MediaPipe's metric *world landmarks*
   (33 points, metres, hip-centred, axes aligned with the camera: x right,
   y down, z away from the camera). Orientation starts from a Kabsch fit of the
   torso, then Adam refines everything under pose and shape priors.
2. :func:`solve_perspective`: from the fitted joints (pelvis-centred, camera
   orientation) and the 2D landmarks, solve ``f`` and ``T = [Tx, Ty, Tz]``
   under full perspective. For a fixed ``Tz`` the projection is linear in
   ``(f, f·Tx, f·Ty)``; a log-spaced sweep of ``Tz`` with a weak prior on the
   field of view picks the best, then the camera solver refines against the mask.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from smplx.lbs import batch_rigid_transform

from poselabel.models.body.keypoints import TORSO, body_points_for_landmarks, landmark_targets
from poselabel.models.geometry import axis_angle_to_matrix, matrix_to_axis_angle
from poselabel.records import ImageRecord, LandmarkFit, Person, replace

NO_LANDMARKS = "no MediaPipe landmarks"
SOLVE_FAILED = "perspective solve failed"

@dataclass(frozen=True)
class BodyFit:
    """Per person (N): betas (N, 10), global_orient (N, 3), body_pose (N, 63),
    joints (N, 55, 3) pelvis-centred in the camera's orientation (metres), and
    the fit's final mean joint error in metres (N,)."""

    betas: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    joints: np.ndarray
    error_m: np.ndarray


def _kabsch(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Rotations R (N, 3, 3) minimising ``|R src_i − dst_i|`` for centred point sets (N, K, 3)."""
    src = src - src.mean(1, keepdim=True)
    dst = dst - dst.mean(1, keepdim=True)
    u, _, vh = torch.linalg.svd(dst.transpose(1, 2) @ src)
    d = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    return u @ fix @ vh


class SkeletonModel(torch.nn.Module):
    """The body model's 55 joints only, by forward kinematics (no vertices: fast).

    Rest joints are linear in the betas (``J_regressor @ (v_template +
    shapedirs β)``), so they are precomputed; posing applies SMPL-X's kinematic
    chain. ``forward(betas (B, 10), global_orient (B, 3), body_pose (B, 63))``
    -> joints (B, 55, 3), pelvis at the origin, camera orientation, metres.
    Hands, jaw and eyes stay at rest (flat hands, as labels are defined).
    """

    def __init__(self, body_model):
        super().__init__()
        self._rigid = batch_rigid_transform
        m = body_model.smplx
        jreg = m.J_regressor
        self.register_buffer("j_template", jreg @ m.v_template)
        self.register_buffer("j_dirs", torch.einsum("jv,vcb->jcb", jreg, m.shapedirs[:, :, :10]))
        self.register_buffer("parents", m.parents.clone())

    def forward(self, betas, global_orient, body_pose):
        batch = betas.shape[0]
        rest = self.j_template[None] + torch.einsum("jcb,nb->njc", self.j_dirs, betas)
        rot = axis_angle_to_matrix(torch.cat([global_orient, body_pose], 1).reshape(batch, 22, 3))
        eye = torch.eye(3, dtype=rot.dtype, device=rot.device).expand(batch, 55 - 22, 3, 3)
        posed, _ = self._rigid(torch.cat([rot, eye], 1), rest, self.parents, dtype=rest.dtype)
        return posed - posed[:, :1]


def fit_body_to_landmarks(body_model, kp3d: np.ndarray, visibility: np.ndarray, *, iterations: int = 120,
                          lr: float = 0.05, pose_prior: float = 2e-3, shape_prior: float = 1e-3,
                          images: np.ndarray | None = None) -> BodyFit:
    """Fit the body to MediaPipe world landmarks ``kp3d`` (N, 33, 3) metres with ``visibility`` (N, 33).

    ``images`` (N,) ints: which image each person is in (None: all in one). The loss of one
    image is its persons' landmark error weighted by visibility over the image's total weight,
    plus the priors over its person count; the descent minimises the sum over images, one
    descent for any number of images, each image's fits the same as with it alone."""
    device, dtype = body_model.device, body_model.dtype
    skeleton = SkeletonModel(body_model).to(device)
    n = kp3d.shape[0]
    ids, targets, weights = landmark_targets(kp3d, visibility)
    ids_t = torch.as_tensor(ids, device=device)
    tgt = torch.as_tensor(targets, device=device, dtype=dtype)
    w = torch.as_tensor(weights, device=device, dtype=dtype)
    group = torch.as_tensor(np.zeros(n, np.int64) if images is None else np.unique(images, return_inverse=True)[1],
                            device=device)
    inv_w = 1.0 / torch.zeros(n, dtype=dtype, device=device).index_add_(0, group, w.sum(1))[group].clamp(min=1e-9)
    inv_n = 1.0 / torch.bincount(group).to(dtype)[group]  # (N,) 1 / persons in the person's image
    zeros = torch.zeros
    with torch.no_grad():  # orientation from the torso, rest pose
        rest = skeleton(zeros(n, 10, dtype=dtype, device=device), zeros(n, 3, dtype=dtype, device=device),
                        zeros(n, 63, dtype=dtype, device=device))[:, ids_t]
        torso = list(TORSO)
        rot = _kabsch(rest[:, torso], tgt[:, torso])
    orient = matrix_to_axis_angle(rot).clone().requires_grad_(True)
    pose = zeros(n, 63, dtype=dtype, device=device, requires_grad=True)
    betas = zeros(n, 10, dtype=dtype, device=device, requires_grad=True)
    offset = zeros(n, 1, 3, dtype=dtype, device=device, requires_grad=True)  # MediaPipe's hip centre vs pelvis
    opt = torch.optim.Adam([orient, pose, betas, offset], lr=lr)
    for _ in range(iterations):
        opt.zero_grad()
        joints = skeleton(betas, orient, pose)[:, ids_t] + offset
        err = ((joints - tgt) ** 2).sum(-1)
        # A sum of per-image losses: Adam's steps are elementwise, so each image's fits are
        # what they are with that image alone in the batch.
        priors = pose_prior * (pose ** 2).sum(1) + shape_prior * (betas ** 2).sum(1)
        loss = ((w * err).sum(1) * inv_w + priors * inv_n).sum()
        loss.backward()
        opt.step()
        with torch.no_grad():
            betas.clamp_(-3, 3)
    with torch.no_grad():
        full = skeleton(betas, orient, pose)
        err = ((full[:, ids_t] + offset - tgt).norm(dim=-1) * w).sum(1) / w.sum(1)
    return BodyFit(betas=betas.detach().cpu().numpy(), global_orient=orient.detach().cpu().numpy(),
                   body_pose=pose.detach().cpu().numpy(), joints=full.cpu().numpy(), error_m=err.cpu().numpy())


@dataclass(frozen=True)
class PerspectiveFit:
    """Per person (N): focal_px (N,), transl (N, 3) metres, rms reprojection error (N,) pixels."""

    focal_px: np.ndarray
    transl: np.ndarray
    rms_px: np.ndarray


def solve_perspective(points3d: np.ndarray, points2d: np.ndarray, weights: np.ndarray, *, width: int,
                      height: int, fov_prior_deg: float = 55.0, fov_sigma_log: float = 0.5,
                      tz_range: tuple[float, float] = (0.3, 30.0), steps: int = 240) -> PerspectiveFit:
    """Solve ``f`` and ``T`` from 2D–3D correspondences, principal point at the image centre.

    ``points3d`` (N, K, 3): pelvis-centred, camera orientation, metres;
    ``points2d`` (N, K, 2): pixels; ``weights`` (N, K) >= 0. The projection is
    ``u = f (X + Tx) / (Z + Tz) + cx``. For each ``Tz`` on a log grid the
    weighted least squares in ``(f, f·Tx, f·Ty)`` is exact; the cost adds a
    prior ``((log f − log f0) / fov_sigma_log)²`` with ``f0`` from a horizontal
    field of view of ``fov_prior_deg``, residuals measured in units of 1 % of
    the person's 2D extent.
    """
    cx, cy = width / 2.0, height / 2.0
    f0 = max(width, height) / (2.0 * np.tan(np.radians(fov_prior_deg) / 2.0))
    tz_grid = np.geomspace(*tz_range, steps)
    n = points3d.shape[0]
    focal = np.full(n, np.nan, np.float64)
    transl = np.full((n, 3), np.nan, np.float64)
    rms = np.full(n, np.nan, np.float64)
    for i in range(n):
        P, p, w = points3d[i].astype(np.float64), points2d[i].astype(np.float64), weights[i].astype(np.float64)
        keep = w > 0
        if keep.sum() < 4:
            continue
        P, p, w = P[keep], p[keep], w[keep]
        extent = max(np.ptp(p[:, 0]), np.ptp(p[:, 1]), 1.0)
        sw = np.sqrt(w)[None, :, None]
        z = P[None, :, 2] + tz_grid[:, None]  # (T, K)
        valid = (z > 0.05).all(axis=1)
        inv = 1.0 / np.where(z > 0.05, z, np.inf)
        zero = np.zeros_like(inv)
        # Rows for u and v; unknowns (f, a = f Tx, b = f Ty).
        A = np.concatenate([np.stack([P[None, :, 0] * inv, inv, zero], -1),
                            np.stack([P[None, :, 1] * inv, zero, inv], -1)], axis=1)  # (T, 2K, 3)
        y = np.concatenate([p[:, 0] - cx, p[:, 1] - cy])[None, :].repeat(len(tz_grid), 0)  # (T, 2K)
        W = np.concatenate([sw, sw], axis=1)
        Aw, yw = A * W, y * W[..., 0]
        ata = Aw.transpose(0, 2, 1) @ Aw + 1e-9 * np.eye(3)
        x = np.linalg.solve(ata, (Aw.transpose(0, 2, 1) @ yw[..., None]))[..., 0]  # (T, 3)
        resid = ((A @ x[..., None])[..., 0] - y) / (0.01 * extent)
        data = (W[..., 0] ** 2 * resid ** 2).sum(1) / w.sum()
        f = x[:, 0]
        prior = np.where(f > 1.0, ((np.log(np.maximum(f, 1.0)) - np.log(f0)) / fov_sigma_log) ** 2, np.inf)
        cost = np.where(valid & (f > 1.0), data + prior, np.inf)
        best = int(np.argmin(cost))
        if not np.isfinite(cost[best]):
            continue
        fb, ab, bb = x[best]
        focal[i] = fb
        transl[i] = (ab / fb, bb / fb, tz_grid[best])
        rms[i] = np.sqrt((((A[best] @ x[best]) - y[best]) ** 2 * np.concatenate([w, w])).sum() / (2 * w.sum()))
    return PerspectiveFit(focal_px=focal.astype(np.float32), transl=transl.astype(np.float32),
                          rms_px=rms.astype(np.float32))


def estimate_from_landmarks(body_model, kp2d: np.ndarray, kp3d: np.ndarray, *, width, height,
                            images: np.ndarray | None = None) -> list[LandmarkFit]:
    """Batched no-weights estimate for N persons of one image or of several.

    ``kp2d`` (N, 33, 3) ``[u, v, visibility]`` pixels; ``kp3d`` (N, 33, 3)
    MediaPipe world landmarks, metres; ``width``, ``height``: the image's size in pixels,
    or (N,) sequences, each person's image's; ``images`` (N,) which image each person is in
    (None: one image; ``fit_body_to_landmarks``). A person whose perspective solve finds
    no valid answer (too few visible landmarks) gets a ``LandmarkFit`` with ``error`` set.
    """
    n = kp2d.shape[0]
    if n == 0:
        return []
    widths = np.broadcast_to(np.asarray(width), (n,))
    heights = np.broadcast_to(np.asarray(height), (n,))
    sizes = list(zip(widths.tolist(), heights.tolist()))
    fit = fit_body_to_landmarks(body_model, kp3d, kp2d[..., 2], images=images)
    p3, p2, w = body_points_for_landmarks(fit.joints, kp2d)
    focal = np.full(n, np.nan, np.float32)
    transl = np.full((n, 3), np.nan, np.float32)
    rms = np.full(n, np.nan, np.float32)
    for size in sorted(set(sizes)):  # the perspective solve per image size
        rows = np.nonzero((widths == size[0]) & (heights == size[1]))[0]
        cam = solve_perspective(p3[rows], p2[rows], w[rows], width=int(size[0]), height=int(size[1]))
        focal[rows], transl[rows], rms[rows] = cam.focal_px, cam.transl, cam.rms_px
    out: list[LandmarkFit] = []
    for i in range(n):
        if not np.isfinite(focal[i]):
            out.append(LandmarkFit(error=SOLVE_FAILED))
            continue
        out.append(LandmarkFit(
            betas=fit.betas[i], global_orient=fit.global_orient[i], body_pose=fit.body_pose[i],
            tz=float(transl[i, 2]), focal_px=float(focal[i]), transl=transl[i],
            landmark_error_m=float(fit.error_m[i]), reprojection_rms_px=float(rms[i])))
    return out


def _needs_fit(p: Person) -> bool:
    return p.landmark_fit is None and p.keypoints_2d is not None and p.keypoints_3d is not None


def with_landmark_fits(records: list[ImageRecord], body_model) -> list[ImageRecord]:
    """``records`` with a :class:`LandmarkFit` on each person that has MediaPipe landmarks
    (2D and 3D) and none yet: made once, whichever of the Tz and pose stages asks first, for
    the persons of all the records in one batch (one descent, not one per image). The
    estimate's focal length and fit errors also go to the write-only diagnostics
    (``geo_focal_px``, ``geo_landmark_error_m``, ``geo_reprojection_rms_px``)."""
    todo = [(r, p) for r in records for p in r.persons if _needs_fit(p)]
    if not todo:
        return list(records)
    fits = estimate_from_landmarks(body_model, np.stack([p.keypoints_2d for _, p in todo]),
                                   np.stack([p.keypoints_3d for _, p in todo]),
                                   width=[r.width for r, _ in todo], height=[r.height for r, _ in todo],
                                   images=np.array([id(r) for r, _ in todo]))
    by_person = {(id(r), p.person_index): fit for (r, p), fit in zip(todo, fits)}

    def attach(r: ImageRecord, p: Person) -> Person:
        fit = by_person.get((id(r), p.person_index))
        if fit is None:
            return p
        diag = p.diagnostics
        if fit.error is None:
            diag = {**diag, "geo_focal_px": fit.focal_px, "geo_landmark_error_m": round(fit.landmark_error_m, 5),
                    "geo_reprojection_rms_px": round(fit.reprojection_rms_px, 3)}
        return replace(p, landmark_fit=fit, diagnostics=diag)

    fitted = {id(r) for r, _ in todo}
    return [replace(r, persons=tuple(attach(r, p) for p in r.persons)) if id(r) in fitted else r for r in records]


def landmark_fit_error(p: Person) -> str | None:
    """Why ``p`` has no usable landmark fit (None: it has one)."""
    if p.landmark_fit is None:
        return NO_LANDMARKS if p.keypoints_2d is None else SOLVE_FAILED
    return p.landmark_fit.error


def fitted_to_landmarks(p: Person, what: str) -> tuple[str, ...]:
    """``p.fitted_to_landmarks`` with ``what`` (``tz``, ``pose``) added: that stage's result was
    fitted to the person's own 2D landmarks, which are then no independent check of the fit
    (the accept rule skips their vouching, docs/quality.md)."""
    return tuple(sorted({*p.fitted_to_landmarks, what}))
