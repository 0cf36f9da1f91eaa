"""Train the Tz network (BLADE Sec. 3.2) on ground-truth shards.

Loss (BLADE Eq. 3): ``mean(|T̂z − Tz| / Tz)`` over people with ``Tz > min_tz``
(BLADE: 0.5 m; such people are never sampled). Crops are jittered in scale,
position and colour (``models/crops.TRAIN_JITTER``).
"""
from __future__ import annotations

import numpy as np
import torch

from poselabel.models.nets.crops import TRAIN_JITTER
from poselabel.models.nets.tz_net import TzNet, build_tz_net, tz_config
from poselabel.training.data import PersonSet, load_persons, make_batch
from poselabel.training.loop import TrainSettings, step_rng, train


def tz_loss(model: TzNet, batch: dict) -> tuple[torch.Tensor, dict]:
    """BLADE's 1/Tz-weighted L1; parts: ``e_tz`` the batch's mean |error| (m)."""
    pred = model(batch["pixels"], batch["crop_info"])
    err = (pred - batch["tz"]).abs()
    return (err / batch["tz"]).mean(), {"e_tz": err.mean().detach()}


def eligible_rows(data: PersonSet, min_tz: float) -> np.ndarray:
    rows = np.nonzero(data.tz > min_tz)[0]
    if len(rows) == 0:
        raise ValueError(f"no person with Tz > {min_tz} m")
    return rows


def train_tz(data: str | PersonSet, out: str, variant: str = "tiny", settings: TrainSettings = TrainSettings(),
             resume: bool = False, min_tz: float = 0.5, encoder_path: str | None = None,
             jitter=TRAIN_JITTER, stop_at: int | None = None, **config_overrides) -> dict:
    """Train (or resume) a Tz network into ``out``; returns the last log record.

    ``data``: a shard pattern or a loaded ``PersonSet`` (crops at the variant's input size).
    ``encoder_path``: pretrained DAv2 weights (HF directory, local or ``gs://``).
    """
    torch.manual_seed(settings.seed)
    config = tz_config(variant, **config_overrides)
    model = build_tz_net(config, encoder_path)
    if isinstance(data, str):
        pattern = data
        data = load_persons(pattern, config.image_size, config.crop_scale)
    else:
        pattern = "<in-memory>"
        if data.size != config.image_size or data.crop_scale != config.crop_scale:
            raise ValueError(f"data crops are {data.size} px / ×{data.crop_scale}, the network needs "
                             f"{config.image_size} px / ×{config.crop_scale}")
    rows = eligible_rows(data, min_tz)

    def batch_fn(step: int) -> dict:
        rng = step_rng(settings.seed, step)
        return make_batch(data, rng.choice(rows, settings.batch, replace=len(rows) < settings.batch), jitter, rng)

    info = {"data": pattern, "people": int(len(data)), "people_used": int(len(rows)), "min_tz": min_tz,
            "loss": "mean(|Tz_pred - Tz| / Tz), Tz > min_tz", "jitter": vars(jitter) if jitter else None,
            "encoder_path": encoder_path, "train_tz_mean": float(data.tz[rows].mean())}
    return train(model, out, settings, batch_fn, tz_loss, info, resume, stop_at)
