"""Ground-truth shards -> an in-memory set of person crops and targets, and batches of it.

Each person of each sample of the shards (``synth`` format, see ARCHITECTURE.md)
becomes one row. Instead of full images the set keeps a **context crop**: the
person's crop window (``models/crops.py``) enlarged by ``context`` (1.3) and
resampled to ``round(size · context)`` px, uint8. A training batch cuts the
(jittered) crop window out of it with one bilinear ``grid_sample`` — about 1:1,
so an unjittered crop matches what inference cuts from the full image.

Targets per person: ``tz`` (m, ``transl[2]``), ``transl`` (3) m camera frame,
``betas`` (10), ``global_orient`` (3) and ``body_pose`` (63) axis-angle,
``focal`` px, ``image_wh`` (2) px, ``box`` (4) px, and optionally ``tz_pred``
(m) from a Tz network run on the full image (``tz_predictor``).
"""
from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from poselabel.io.shards import iter_samples, list_shards
from poselabel.models.nets.crops import (
    Jitter,
    color_jitter,
    crop_info,
    crop_window,
    cut_window,
    jitter_windows,
    normalise,
)

log = logging.getLogger(__name__)
CONTEXT = 1.3
ARRAYS = ("context", "ctx_window", "window", "box", "image_wh", "focal", "tz", "transl", "betas",
          "global_orient", "body_pose", "tz_pred")


@dataclass
class PersonSet:
    """Rows of people (N). ``context`` (N, 3, R, R) uint8; ``ctx_window``/``window`` (N, 3)
    ``[x0, y0, side]`` px of the context crop / the un-jittered network crop in the full image."""

    context: np.ndarray
    ctx_window: np.ndarray
    window: np.ndarray
    box: np.ndarray
    image_wh: np.ndarray
    focal: np.ndarray
    tz: np.ndarray
    transl: np.ndarray
    betas: np.ndarray
    global_orient: np.ndarray
    body_pose: np.ndarray
    tz_pred: np.ndarray
    keys: np.ndarray
    size: int
    crop_scale: float
    body_model: str | None = None

    def __len__(self) -> int:
        return len(self.tz)

    def subset(self, index: np.ndarray) -> "PersonSet":
        kept = {k: getattr(self, k)[index] for k in ARRAYS + ("keys",)}
        return PersonSet(**kept, size=self.size, crop_scale=self.crop_scale, body_model=self.body_model)

    def save(self, path: str) -> None:
        """Cache as a plain ``.npz`` (no pickled objects)."""
        np.savez(path, **{k: getattr(self, k) for k in ARRAYS}, keys=self.keys.astype(str),
                 meta=np.array(json.dumps({"size": self.size, "crop_scale": self.crop_scale,
                                           "body_model": self.body_model})))

    @classmethod
    def load(cls, path: str) -> "PersonSet":
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return cls(**{k: z[k] for k in ARRAYS}, keys=z["keys"], **meta)


def decode_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def iter_gt_images(pattern: str):
    """Yield ``(key, image (H, W, 3) uint8, meta dict, shard path)`` of every GT sample."""
    for path in list_shards(pattern):
        for sample in iter_samples(path):
            image_ext = next((e for e in ("jpg", "jpeg", "png", "webp") if e in sample.members), None)
            if image_ext is None or "json" not in sample.members:
                continue
            meta = json.loads(sample.members["json"])
            yield f"{sample.shard}/{sample.key}", decode_rgb(sample.members[image_ext]), meta, path


def load_persons(pattern: str, size: int, crop_scale: float = 1.25, max_tz: float | None = None,
                 tz_predictor=None, limit: int | None = None) -> PersonSet:
    """Read every person of the GT shards matching ``pattern`` (local or ``gs://``).

    ``max_tz`` (m) keeps only people nearer than that; ``tz_predictor`` (a
    ``TzPredictor``) fills ``tz_pred`` (else NaN); ``limit`` caps the number of people.
    """
    rows: dict[str, list] = {k: [] for k in ARRAYS + ("keys",)}
    rc = int(round(size * CONTEXT))
    body_model = None
    for key, image, meta, path in iter_gt_images(pattern):
        height, width = image.shape[:2]
        persons = meta["persons"]
        if body_model is None and meta.get("body_model"):
            candidate = os.path.join(os.path.dirname(path), meta["body_model"])
            body_model = candidate if "://" in candidate or os.path.exists(candidate) else None
        boxes = np.array([p["bbox_xyxy"] for p in persons], np.float64).reshape(-1, 4)
        preds = (tz_predictor.predict(image, boxes) if tz_predictor is not None and len(boxes)
                 else np.full(len(boxes), np.nan, np.float32))
        for i, p in enumerate(persons):
            tz = float(p["transl"][2])
            if max_tz is not None and tz > max_tz:
                continue
            window = crop_window(boxes[i], width, height, crop_scale)
            centre, side = window[:2] + window[2] / 2, window[2] * CONTEXT
            ctx = np.round(np.array([centre[0] - side / 2, centre[1] - side / 2, side]))
            rows["context"].append(cut_window(image, ctx, rc).transpose(2, 0, 1))
            rows["ctx_window"].append(ctx)
            rows["window"].append(window)
            rows["box"].append(boxes[i])
            rows["image_wh"].append([width, height])
            rows["focal"].append(meta["camera"]["focal_px"])
            rows["tz"].append(tz)
            rows["transl"].append(p["transl"])
            rows["betas"].append(p["betas"])
            rows["global_orient"].append(p["global_orient"])
            rows["body_pose"].append(p["body_pose"])
            rows["tz_pred"].append(preds[i])
            rows["keys"].append(f"{key}/{i}")
        if limit is not None and len(rows["tz"]) >= limit:
            break
    if not rows["tz"]:
        raise ValueError(f"no people in {pattern!r}")
    f32 = lambda k: np.asarray(rows[k], np.float32)  # noqa: E731
    return PersonSet(context=np.stack(rows["context"]).astype(np.uint8),
                     ctx_window=np.asarray(rows["ctx_window"], np.float64), window=np.asarray(rows["window"]),
                     box=np.asarray(rows["box"]), image_wh=np.asarray(rows["image_wh"], np.int32),
                     focal=f32("focal"), tz=f32("tz"), transl=f32("transl"), betas=f32("betas"),
                     global_orient=f32("global_orient"), body_pose=f32("body_pose"), tz_pred=f32("tz_pred"),
                     keys=np.asarray(rows["keys"]), size=size, crop_scale=crop_scale, body_model=body_model)


def make_batch(data: PersonSet, index: np.ndarray, jitter: Jitter | None = None,
               rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
    """Network inputs and targets for rows ``index`` (B,).

    Returns ``pixels`` (B, 3, S, S) float32 ImageNet-normalised, ``crop_info`` (B, 7) and the
    targets as float32 tensors (``tz`` (B,), ``tz_pred`` (B,), ``betas`` (B, 10),
    ``global_orient`` (B, 3), ``body_pose`` (B, 63), ``transl`` (B, 3)).
    Deterministic for a given ``rng`` state.
    """
    index = np.asarray(index)
    win = data.window[index]
    if jitter is not None:
        win = jitter_windows(win, jitter, rng)
    win = np.round(win)  # whole pixels, as inference crops (models/crops.extract_crops)
    win[:, 2] = np.maximum(win[:, 2], 1)
    ctx = data.ctx_window[index]
    a = win[:, 2] / ctx[:, 2]  # crop side in context-crop normalised units
    centre = win[:, :2] + win[:, 2:] / 2
    b = 2 * (centre - ctx[:, :2]) / ctx[:, 2:] - 1
    theta = np.zeros((len(index), 2, 3), np.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = a
    theta[:, :, 2] = b
    src = torch.from_numpy(data.context[index]).float()
    grid = torch.nn.functional.affine_grid(torch.from_numpy(theta), [len(index), 3, data.size, data.size],
                                           align_corners=False)
    pix = torch.nn.functional.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    pix = pix.round().clamp(0, 255).permute(0, 2, 3, 1).to(torch.uint8).numpy()
    if jitter is not None and jitter.color > 0:
        pix = color_jitter(pix, jitter.color, rng)
    info = np.concatenate([crop_info(w[None], bx[None], int(wh[0]), int(wh[1]))
                           for w, bx, wh in zip(win, data.box[index], data.image_wh[index])])
    out = {"pixels": normalise(pix), "crop_info": torch.from_numpy(info)}
    for k in ("tz", "tz_pred", "betas", "global_orient", "body_pose", "transl"):
        out[k] = torch.from_numpy(getattr(data, k)[index])
    return out
