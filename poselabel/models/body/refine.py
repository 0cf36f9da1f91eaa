"""The pose refined against the detector's 2D keypoints under the solved camera.

BLADE's solver descends the global orientation and the body pose too, with a keypoint term
and priors that keep them near the regressor's. Here that is a step after the camera solve:
with ``f`` and ``T`` fixed (the pelvis stays where the camera solve put it), Adam moves
``(global_orient, body_pose)`` to bring the projected joints onto the detector's keypoints,
under a robust loss (a keypoint the detector threw far away costs at most 1) and a Gaussian
prior around the starting pose (the regressor's, or the landmark fit's). Only the
:class:`~poselabel.models.body.landmark_fit.SkeletonModel`'s joints are posed (forward
kinematics, no vertices): a step costs microseconds per person.

Frames: camera axes (OpenCV: x right, y down, z forward), metres; joints pelvis-centred in
the camera's orientation, as the body model gives them; keypoints in full-image pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from poselabel.models.body.landmark_fit import SkeletonModel


@dataclass(frozen=True)
class RefineConfig:
    """``iterations`` Adam steps at ``lr`` (radians); ``robust_scale``: the keypoint distance,
    in box sides, at which the Geman-McClure loss reaches half its ceiling; ``pose_sigma`` /
    ``orient_sigma``: the prior's spread around the starting body pose / global orientation,
    radians per axis-angle component; ``prior_weight``: its weight against the keypoint term."""

    iterations: int = 60
    lr: float = 0.02
    robust_scale: float = 0.1
    # chosen on seed 501 of the clothed+segmenter world (benchmarks/pose_refine.py, 2026-12-06):
    # a loose orientation, a body pose held near its start (2D keypoints say little of depth)
    pose_sigma: float = 0.1
    orient_sigma: float = 0.5
    prior_weight: float = 1.0


@dataclass(frozen=True)
class RefinedPose:
    """Per person (B): ``global_orient`` (B, 3), ``body_pose`` (B, 63) axis-angle; the mean
    robust keypoint loss before and after (B,) (0 best, 1 all keypoints far off)."""

    global_orient: torch.Tensor
    body_pose: torch.Tensor
    loss_before: torch.Tensor
    loss_after: torch.Tensor


def _keypoint_loss(joints, transl, focal, pp, uv, weight, side, scale):
    """(B,) weighted mean Geman-McClure loss of the projected joints (B, K, 3) + transl (B, 3)."""
    cam = joints + transl[:, None]
    z = cam[..., 2:].clamp(min=1e-3)
    proj = focal[:, None, None] * cam[..., :2] / z + pp[:, None]
    d2 = ((proj - uv) ** 2).sum(-1) / side[:, None] ** 2
    rho = d2 / (d2 + scale ** 2)
    return (weight * rho).sum(1) / weight.sum(1).clamp(min=1e-6)


def refine_pose(skeleton: SkeletonModel, betas, global_orient, body_pose, focal, transl, pp, joint_ids, uv, weight,
                side, config: RefineConfig = RefineConfig()) -> RefinedPose:
    """Refine B persons' poses against their keypoints.

    Args:
        skeleton: the body model's joints by forward kinematics.
        betas (B, 10); global_orient (B, 3), body_pose (B, 63): the starting pose, axis-angle.
        focal (B,) px; transl (B, 3) m, pelvis in the camera frame; pp (B, 2) px principal point.
        joint_ids (K,) long: the skeleton joints the keypoints see.
        uv (B, K, 2) px detected keypoints; weight (B, K) >= 0 (0: not seen); side (B,) px,
        the person's box side (the loss's unit).
    Persons with fewer than 4 weighted keypoints keep their pose.
    """
    dt = skeleton.j_template.dtype
    as_t = lambda x: torch.as_tensor(x, dtype=dt)  # noqa: E731
    betas, orient0, pose0 = as_t(betas), as_t(global_orient), as_t(body_pose)
    focal, transl, pp, uv, weight, side = map(as_t, (focal, transl, pp, uv, weight, side))
    ids = torch.as_tensor(joint_ids, dtype=torch.long)
    enough = ((weight > 0).sum(1) >= 4).to(dt)
    orient = orient0.clone().requires_grad_(True)
    pose = pose0.clone().requires_grad_(True)
    opt = torch.optim.Adam([orient, pose], lr=config.lr)

    def losses():
        data = _keypoint_loss(skeleton(betas, orient, pose)[:, ids], transl, focal, pp, uv, weight, side,
                              config.robust_scale)
        prior = (((pose - pose0) / config.pose_sigma) ** 2).mean(1) + (((orient - orient0) / config.orient_sigma) ** 2).mean(1)
        return data, prior

    with torch.no_grad():
        before = losses()[0]
    for _ in range(config.iterations):
        opt.zero_grad()
        data, prior = losses()
        ((data + config.prior_weight * prior) * enough).sum().backward()
        opt.step()
    with torch.no_grad():
        after = losses()[0]
        keep = enough[:, None] > 0
        orient = torch.where(keep, orient, orient0)
        pose = torch.where(keep, pose, pose0)
    return RefinedPose(global_orient=orient.detach(), body_pose=pose.detach(), loss_before=before,
                       loss_after=torch.where(enough > 0, after, before))
