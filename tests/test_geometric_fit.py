"""The no-weights default: body fit to landmarks, perspective solve from 2D–3D pairs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from poselabel.models.body.keypoints import MP_EARS, MP_TO_SMPLX, SMPLX_HEAD, body_points_for_landmarks
from poselabel.models.body.landmark_fit import SkeletonModel, fit_body_to_landmarks, solve_perspective
from poselabel.models.body.model import BodyModel


@pytest.fixture(scope="module")
def body():
    return BodyModel()


def _random_bodies(body, n, seed):
    rng = np.random.default_rng(seed)
    betas = rng.normal(0, 1, (n, 10)).astype(np.float32)
    orient = (np.tile([np.pi, 0, 0], (n, 1)) + rng.normal(0, 0.3, (n, 3))).astype(np.float32)
    pose = rng.normal(0, 0.2, (n, 63)).astype(np.float32)
    with torch.no_grad():
        joints = body(torch.tensor(betas), torch.tensor(orient), torch.tensor(pose)).joints.numpy()
    return betas, orient, pose, joints


def test_skeleton_matches_the_full_body_model(body):
    betas, orient, pose, joints = _random_bodies(body, 3, 0)
    skeleton = SkeletonModel(body)
    with torch.no_grad():
        fast = skeleton(torch.tensor(betas), torch.tensor(orient), torch.tensor(pose)).numpy()
    np.testing.assert_allclose(fast[:, :22], joints[:, :22], atol=1e-5)


def test_fit_recovers_joints_from_landmarks(body):
    _, _, _, joints = _random_bodies(body, 4, 1)
    kp3d = np.zeros((4, 33, 3), np.float32)
    for m, s in MP_TO_SMPLX:
        kp3d[:, m] = joints[:, s]
    kp3d[:, list(MP_EARS)] = joints[:, SMPLX_HEAD][:, None]
    fit = fit_body_to_landmarks(body, kp3d + 0.03, np.full((4, 33), 0.9, np.float32))  # hip-centre offset
    assert (fit.error_m < 0.05).all(), fit.error_m
    limbs = [s for _, s in MP_TO_SMPLX]
    err = np.linalg.norm(fit.joints[:, limbs] - joints[:, limbs], axis=-1).mean()
    assert err < 0.06


def test_images_fitted_in_one_batch_get_their_own_fits(body):
    """The Tz and pose stages fit the persons of a batch of images in one descent: each image's
    fits must be those it gets alone (another image's landmarks must not move them)."""
    _, _, _, joints = _random_bodies(body, 3, 4)
    kp3d = np.zeros((3, 33, 3), np.float32)
    for m, s in MP_TO_SMPLX:
        kp3d[:, m] = joints[:, s]
    kp3d[:, list(MP_EARS)] = joints[:, SMPLX_HEAD][:, None]
    vis = np.full((3, 33), 0.9, np.float32)
    vis[1, 20:] = 0.0  # persons see different shares of their landmarks
    images = np.array([7, 3, 7])  # persons 0 and 2 share an image
    together = fit_body_to_landmarks(body, kp3d, vis, images=images)
    for rows in ([0, 2], [1]):
        alone = fit_body_to_landmarks(body, kp3d[rows], vis[rows])
        np.testing.assert_allclose(together.body_pose[rows], alone.body_pose, atol=1e-4)
        np.testing.assert_allclose(together.joints[rows], alone.joints, atol=1e-4)
    pooled = fit_body_to_landmarks(body, kp3d, vis)  # one image of three: the persons share the priors
    assert np.abs(pooled.body_pose[1] - together.body_pose[1]).max() > 1e-3


def test_perspective_solve_recovers_focal_and_translation_at_close_range(body):
    _, _, _, joints = _random_bodies(body, 3, 2)
    width, height = 640, 480
    focal = np.array([350.0, 600.0, 900.0])
    transl = np.array([[0.1, 0.05, 0.7], [-0.2, 0.1, 1.2], [0.05, -0.1, 2.0]])
    cam = joints + transl[:, None]
    uv = focal[:, None, None] * cam[..., :2] / cam[..., 2:] + np.array([width / 2, height / 2])
    kp2d = np.zeros((3, 33, 3), np.float32)
    for m, s in MP_TO_SMPLX:
        kp2d[:, m, :2], kp2d[:, m, 2] = uv[:, s], 0.9
    kp2d[:, list(MP_EARS), :2] = uv[:, SMPLX_HEAD][:, None]
    kp2d[:, list(MP_EARS), 2] = 0.9
    p3, p2, w = body_points_for_landmarks(joints, kp2d)
    rng = np.random.default_rng(0)
    sol = solve_perspective(p3, p2 + rng.normal(0, 0.5, p2.shape), w, width=width, height=height)
    # Close up, perspective pins f and Tz down separately ...
    np.testing.assert_allclose(sol.focal_px[:2], focal[:2], rtol=0.08)
    np.testing.assert_allclose(sol.transl[:2, 2], transl[:2, 2], rtol=0.08)
    np.testing.assert_allclose(sol.transl[:2, :2], transl[:2, :2], atol=0.03)
    # ... further away only their ratio (the image scale) is determined; the prior decides the rest.
    np.testing.assert_allclose(sol.focal_px[2] / sol.transl[2, 2], focal[2] / transl[2, 2], rtol=0.05)
    # Too few visible landmarks: no answer rather than a made-up one.
    none = solve_perspective(p3[:1], p2[:1], np.zeros_like(w[:1]), width=width, height=height)
    assert np.isnan(none.focal_px[0])
