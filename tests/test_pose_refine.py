"""The pose refined against 2D keypoints under a fixed camera (models/body/refine.py)."""
from __future__ import annotations

import numpy as np
import torch

from poselabel.models.body.keypoints import KEYPOINT_JOINTS
from poselabel.models.body.landmark_fit import SkeletonModel
from poselabel.models.body.model import BodyModel
from poselabel.models.body.procedural import default_body_model_path
from poselabel.models.body.refine import RefineConfig, refine_pose


def _people(n=6, seed=0):
    rng = np.random.default_rng(seed)
    body = BodyModel(default_body_model_path())
    skeleton = SkeletonModel(body)
    betas = torch.zeros(n, 10)
    orient = torch.tensor([[np.pi, 0.0, 0.0]] * n, dtype=torch.float32)  # upright in camera axes (y down)
    pose = torch.from_numpy(rng.normal(0, 0.3, (n, 63))).float()
    transl = torch.tensor([[0.1, 0.0, 3.0]] * n)
    focal, pp = torch.full((n,), 800.0), torch.tensor([[320.0, 240.0]] * n)
    with torch.no_grad():
        cam = skeleton(betas, orient, pose)[:, KEYPOINT_JOINTS] + transl[:, None]
    uv = focal[:, None, None] * cam[..., :2] / cam[..., 2:] + pp[:, None]
    return skeleton, betas, orient, pose, transl, focal, pp, uv, rng


def _mpjpe(skeleton, betas, orient, pose, true_orient, true_pose):
    with torch.no_grad():
        return float((skeleton(betas, orient, pose) - skeleton(betas, true_orient, true_pose)).norm(dim=-1).mean())


def test_refinement_moves_a_perturbed_pose_back_toward_the_keypoints():
    skeleton, betas, orient, pose, transl, focal, pp, uv, rng = _people()
    n = betas.shape[0]
    orient0 = orient + torch.from_numpy(rng.normal(0, 0.15, (n, 3))).float()
    pose0 = pose + torch.from_numpy(rng.normal(0, 0.1, (n, 63))).float()
    weight, side = torch.ones(n, len(KEYPOINT_JOINTS)), torch.full((n,), 400.0)
    out = refine_pose(skeleton, betas, orient0, pose0, focal, transl, pp, KEYPOINT_JOINTS, uv, weight, side)
    assert out.global_orient.shape == (n, 3) and out.body_pose.shape == (n, 63)
    assert bool((out.loss_after < 0.5 * out.loss_before).all())
    assert _mpjpe(skeleton, betas, out.global_orient, out.body_pose, orient, pose) < \
        0.7 * _mpjpe(skeleton, betas, orient0, pose0, orient, pose)


def test_too_few_keypoints_keep_the_start_and_the_prior_holds_the_pose():
    skeleton, betas, orient, pose, transl, focal, pp, uv, rng = _people(n=2)
    weight = torch.zeros(2, len(KEYPOINT_JOINTS))
    weight[0, :3] = 1.0  # three points: not enough
    weight[1] = 1.0
    far = uv + 1000.0  # every keypoint far off: the robust loss is flat, the prior keeps the pose
    out = refine_pose(skeleton, betas, orient, pose, focal, transl, pp, KEYPOINT_JOINTS, far, weight,
                      torch.full((2,), 400.0), RefineConfig())
    assert torch.equal(out.global_orient[0], orient[0]) and torch.equal(out.body_pose[0], pose[0])
    assert float((out.body_pose[1] - pose[1]).abs().max()) < 0.05
