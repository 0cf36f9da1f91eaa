"""The training loop shared by the Tz and pose networks: optimiser, schedule, logging, resume.

Determinism: the batch of step ``k`` (rows and augmentation) comes from
``numpy.random.default_rng([seed, k])`` and the learning rate is a pure function
of ``k``, so a run resumed from its checkpoint at step ``k`` continues exactly as
the uninterrupted run (same thread count, same device).

Output directory (local or ``gs://``)::

    OUT/model.safetensors, OUT/config.json   the latest checkpoint (models/checkpoints.py)
    OUT/train_state/optimizer.pt             AdamW state dict (torch.save; loaded with weights_only=True)
    OUT/train_state/state.json               {"step", "sha256"}: written last
    OUT/train_log.jsonl                      one JSON line per logged step
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from torch import nn

from poselabel.io.files import exists, read_file, write_file
from poselabel.io.files import join as _join
from poselabel.models.nets.checkpoints import WEIGHTS, save_checkpoint

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    """``steps`` optimiser steps of ``batch`` rows; AdamW (``lr``, ``weight_decay``) with linear
    warm-up over ``warmup`` of the steps then cosine decay to ``lr · final_lr``."""

    steps: int = 1000
    batch: int = 32
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup: float = 0.05
    final_lr: float = 0.02
    seed: int = 0
    device: str = "cpu"
    threads: int = 1
    log_every: int = 50
    save_every: int = 500
    grad_clip: float = 1.0

    def lr_at(self, step: int) -> float:
        warm = max(int(self.warmup * self.steps), 1)
        if step < warm:
            return self.lr * (step + 1) / warm
        t = (step - warm) / max(self.steps - warm, 1)
        return self.lr * (self.final_lr + (1 - self.final_lr) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0))))


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def _state_path(out: str, name: str) -> str:
    return _join(_join(out, "train_state"), name)


def save_state(out: str, model: nn.Module, optimizer: torch.optim.Optimizer, step: int, info: dict) -> None:
    sha = save_checkpoint(out, model, {**info, "step": step})
    buf = io.BytesIO()
    torch.save(optimizer.state_dict(), buf)
    write_file(_state_path(out, "optimizer.pt"), buf.getvalue())
    write_file(_state_path(out, "state.json"), json.dumps({"step": step, "sha256": sha}).encode())


def load_state(out: str, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Restore model and optimiser from ``out``; returns the step to continue from (0 if none)."""
    path = _state_path(out, "state.json")
    if not exists(path):
        return 0
    state = json.loads(read_file(path))
    data = read_file(_join(out, WEIGHTS))
    if hashlib.sha256(data).hexdigest() != state["sha256"]:
        raise ValueError(f"{out}: weights do not match train_state/state.json (interrupted save?)")
    model.load_state_dict(load_safetensors(data), strict=True)
    optimizer.load_state_dict(torch.load(io.BytesIO(read_file(_state_path(out, "optimizer.pt"))),
                                         weights_only=True, map_location="cpu"))
    return int(state["step"])


def train(model: nn.Module, out: str, settings: TrainSettings, batch_fn: Callable[[int], dict],
          loss_fn: Callable[[nn.Module, dict], tuple[torch.Tensor, dict]], info: dict,
          resume: bool = False, stop_at: int | None = None) -> dict:
    """Run ``settings.steps`` steps of ``loss_fn(model, batch_fn(step))``; returns the last log record.

    ``stop_at`` ends this call early at that step (after its checkpoint, if one is due), as a
    killed job would; the schedule is still the one of ``settings.steps``.

    ``info`` (data, losses, ...) is stored in the checkpoint's ``config.json``
    ``training`` section with the settings. ``resume`` continues from ``out``'s
    last checkpoint (weights, optimiser state, step).
    """
    torch.set_num_threads(settings.threads)
    device = torch.device(settings.device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    info = {**info, "settings": asdict(settings)}
    start = load_state(out, model, optimizer) if resume else 0
    log_path = _join(out, "train_log.jsonl")
    lines = []
    if start and exists(log_path):  # keep the log up to the checkpoint
        lines = [ln for ln in read_file(log_path).decode().splitlines() if ln and json.loads(ln)["step"] <= start]
    if start:
        log.info("resumed %s at step %d", out, start)
    model.train()
    sums: dict[str, float] = {}
    count, t0, record = 0, time.perf_counter(), {}
    for step in range(start, settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = settings.lr_at(step)
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch_fn(step).items()}
        loss, parts = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        optimizer.step()
        for k, v in {"loss": float(loss.detach()), **{k: float(v) for k, v in parts.items()}}.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        done = step + 1
        if done % settings.log_every == 0 or done == settings.steps:
            record = {"step": done, **{k: v / count for k, v in sums.items()}, "lr": settings.lr_at(step),
                      "seconds": round(time.perf_counter() - t0, 2)}
            print(json.dumps(record), flush=True)
            lines.append(json.dumps(record))
            sums, count = {}, 0
        if done % settings.save_every == 0 or done == settings.steps:
            save_state(out, model, optimizer, done, info)
            write_file(log_path, ("\n".join(lines) + "\n").encode())
        if stop_at is not None and done >= stop_at:
            break
    model.eval()
    return record
