"""Train the Tz-conditioned pose network (BLADE Sec. 3.3) on ground-truth shards.

Losses (BLADE Eqs. 5–8), with weights 1, 1, 5, 5:

- ``shape``: L1 of betas (mean over the 10);
- ``pose``: geodesic angle (rad) between predicted and true rotation matrices of
  the 22 rotations (global orientation + 21 body joints), mean;
- ``joint``: L1 (m) of the 55 SMPL-X joints, pelvis at the origin (``BodyModel``
  with ``transl=None``);
- ``vert``: L1 (m) of the vertices, pelvis at the origin.

Tz for the conditioning comes from the ground truth (``tz_source="gt"``) or from
a trained Tz network's prediction on the full image (``tz_source=<checkpoint dir>``).
ControlNet training (``base=<checkpoint of a plain network>``) freezes that base.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from poselabel.evaluation.metrics import aligned_errors
from poselabel.models.body.model import BodyModel
from poselabel.models.geometry import axis_angle_to_matrix
from poselabel.models.nets.checkpoints import load_checkpoint, load_tz_predictor
from poselabel.models.nets.crops import TRAIN_JITTER
from poselabel.models.nets.pose_net import PoseNet, pose_config
from poselabel.training.data import PersonSet, load_persons, make_batch
from poselabel.training.loop import TrainSettings, step_rng, train

LOSS_WEIGHTS = {"shape": 1.0, "pose": 1.0, "joint": 5.0, "vert": 5.0}


def gt_rotmats(global_orient: torch.Tensor, body_pose: torch.Tensor) -> torch.Tensor:
    """(B, 3), (B, 63) axis-angle -> (B, 22, 3, 3)."""
    return axis_angle_to_matrix(torch.cat([global_orient[:, None], body_pose.reshape(-1, 21, 3)], 1))


def geodesic(r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
    """Angle (rad) between rotation matrices (..., 3, 3): ``2 asin(‖R1 − R2‖_F / (2√2))``
    (smooth gradients away from 0 and π, unlike acos of the trace)."""
    fro = torch.sqrt(((r1 - r2) ** 2).sum((-1, -2)) + 1e-10)
    return 2 * torch.asin((fro / (2 * math.sqrt(2))).clamp(max=1.0))


def pose_losses(model: PoseNet, body: BodyModel, batch: dict, tz_key: str = "tz") -> tuple[torch.Tensor, dict]:
    """Weighted BLADE pose loss and its parts for one batch (see ``make_batch``)."""
    tz = batch[tz_key] if model.config.conditioning == "tz" else None
    pred = model(batch["pixels"], batch["crop_info"], tz)
    with torch.no_grad():
        gt = body(batch["betas"], batch["global_orient"], batch["body_pose"])
        gt_rot = gt_rotmats(batch["global_orient"], batch["body_pose"])
    out = body(pred["betas"], pred["global_orient"], pred["body_pose"])
    parts = {"shape": (pred["betas"] - batch["betas"]).abs().mean(),
             "pose": geodesic(pred["rotmats"], gt_rot).mean(),
             "joint": (out.joints - gt.joints).abs().mean(),
             "vert": (out.vertices - gt.vertices).abs().mean()}
    loss = sum(LOSS_WEIGHTS[k] * v for k, v in parts.items())
    return loss, {k: v.detach() for k, v in parts.items()}


@torch.no_grad()
def pose_errors(body: BodyModel, pred: dict, gt: dict) -> dict[str, np.ndarray]:
    """Per-person PVE and MPJPE (mm), both pelvis-aligned (pelvis at the origin).

    ``pred``/``gt``: ``betas`` (N, 10), ``global_orient`` (N, 3), ``body_pose`` (N, 63).
    MPJPE is over SMPL-X joints 0..21 (``evaluation.metrics.aligned_errors``). Returns (N,)
    arrays ``pve_mm``, ``mpjpe_mm``.
    """
    t = lambda d, k: torch.as_tensor(np.asarray(d[k]), dtype=torch.float32)  # noqa: E731
    pves, mpjpes = [], []
    n = len(np.asarray(gt["betas"]))
    for s in range(0, n, 64):
        sl = slice(s, min(s + 64, n))
        a = body(t(pred, "betas")[sl], t(pred, "global_orient")[sl], t(pred, "body_pose")[sl])
        b = body(t(gt, "betas")[sl], t(gt, "global_orient")[sl], t(gt, "body_pose")[sl])
        err = aligned_errors(a.vertices, a.joints, b.vertices, b.joints)
        pves.append(err["PVE"])
        mpjpes.append(err["MPJPE"])
    return {"pve_mm": torch.cat(pves).numpy(), "mpjpe_mm": torch.cat(mpjpes).numpy()}


def build_pose_net(variant: str, conditioning: str, base: str | None, **overrides) -> tuple[PoseNet, dict]:
    """A pose network; with ``base`` (checkpoint dir of a plain network) a ControlNet around it."""
    if base is None:
        return PoseNet(pose_config(variant, conditioning=conditioning, controlnet=False, **overrides)), {}
    base_model, meta, digest = load_checkpoint(base)
    if meta["architecture"] != "pose_net" or meta["model"]["controlnet"] or meta["model"]["conditioning"] != "none":
        raise ValueError(f"{base}: the base must be a plain, unconditioned pose_net")
    cfg = {**meta["model"], "conditioning": conditioning, "controlnet": True, **overrides}
    model = PoseNet(pose_config(meta["model"]["variant"], **{k: v for k, v in cfg.items() if k != "variant"}))
    model.load_base(base_model.state_dict())
    return model, {"base": base, "base_sha256": digest}


def train_pose(data: str | PersonSet, out: str, variant: str = "tiny", settings: TrainSettings = TrainSettings(),
               resume: bool = False, conditioning: str = "tz", base: str | None = None, tz_source: str = "gt",
               max_tz: float | None = None, body_model: str | None = None, jitter=TRAIN_JITTER,
               stop_at: int | None = None,
               **config_overrides) -> dict:
    """Train (or resume) a pose network into ``out``; returns the last log record.

    ``data``: shard pattern or loaded ``PersonSet`` (its ``tz_pred`` filled when
    ``tz_source`` is a Tz checkpoint). ``max_tz`` (m) keeps only nearer people.
    """
    torch.manual_seed(settings.seed)
    model, base_info = build_pose_net(variant, conditioning, base, **config_overrides)
    cfg = model.config
    if isinstance(data, str):
        pattern = data
        predictor = load_tz_predictor(tz_source) if tz_source != "gt" and conditioning == "tz" else None
        data = load_persons(pattern, cfg.image_size, cfg.crop_scale, max_tz=max_tz, tz_predictor=predictor)
    else:
        pattern = "<in-memory>"
        if max_tz is not None:
            data = data.subset(np.nonzero(data.tz <= max_tz)[0])
    tz_key = "tz" if tz_source == "gt" else "tz_pred"
    if conditioning == "tz" and tz_key == "tz_pred" and np.isnan(data.tz_pred).any():
        raise ValueError("tz_source is a Tz network but the data has no Tz predictions")
    body = BodyModel(body_model or data.body_model, device=settings.device)
    rows = np.arange(len(data))

    def batch_fn(step: int) -> dict:
        rng = step_rng(settings.seed, step)
        return make_batch(data, rng.choice(rows, settings.batch, replace=len(rows) < settings.batch), jitter, rng)

    info = {"data": pattern, "people": int(len(data)), "max_tz": max_tz, "tz_source": tz_source,
            "loss_weights": LOSS_WEIGHTS, "body_model": body.path, **base_info,
            "jitter": vars(jitter) if jitter else None}
    return train(model, out, settings, batch_fn, lambda m, b: pose_losses(m, body, b, tz_key), info, resume,
                 stop_at)
