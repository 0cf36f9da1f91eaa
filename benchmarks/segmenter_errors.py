"""Measure the real MediaPipe segmenter's errors against the clothed masks of synthetic renders.

Renders ``--num`` clothed samples (``poselabel.synth.writer.make_sample``, world
``clothed``), runs the pipeline's MediaPipe segmenter (``models/segment/segmenters.py``:
Pose on a square crop of 1.25 × the box's longer side around each person's clothed box,
mask > 0.2) on every person, and keeps the people it *finds* (a mask whose IoU with the
clothed people inside the crop is ≥ ``FOUND_IOU``). On those it measures what
``poselabel/synth/segmenter_errors.py`` models:

- **boundary offset**: signed distance (px, + outside) of MediaPipe's outline from the
  clothed people's outline, near the person (within 30 % of its height), away from the crop
  and image borders; per person the median (offset) and half the inter-quartile range
  (wobble), both divided by the person's clothed box height;
- **thin parts**: each visible bare hand / forearm (≥ 15 px, from the renderer's part map)
  counts as missed when MediaPipe covers less than half of it (torso and head beside it);
- **holes**: background enclosed by MediaPipe's mask, ≥ 0.5 % of the person's clothed area;
- **merges**: a neighbour whose clothed mask touches the person's (2 px): merged when
  MediaPipe's mask covers at least half of the neighbour's pixels inside the crop.

Usage (about 2 minutes on one core; 40 images take 30 s)::

    .venv/bin/python benchmarks/segmenter_errors.py [--num 160] [--seed 2026]

Prints a table and writes ``benchmarks/results/segmenter_errors_2026-12-04.json``.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poselabel.synth.segmenter_errors import (FOREARM_JOINTS, HAND_JOINTS, box_of, crop_region,  # noqa: E402
                                              touching)

FOUND_IOU = 0.5
THIN_MIN_PX = 15
HOLE_MIN_FRAC = 0.005
TORSO_JOINTS = (0, 3, 6, 9)


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def measure_person(i: int, mp: np.ndarray, clothed: np.ndarray, joint: np.ndarray, crop_scale: float) -> dict | None:
    """One person's errors (see the module docstring); None when MediaPipe did not find it."""
    h, w = clothed.shape
    mine = clothed == i + 1
    box = box_of(mine)
    crop = crop_region(box, crop_scale, (h, w))
    union = (clothed > 0) & crop
    mp = mp & crop
    iou = float((mp & union).sum() / max(1, (mp | union).sum()))
    rec = {"iou_crop": iou, "height_px": box[3] - box[1], "area_px": int(mine.sum())}
    if iou < FOUND_IOU:
        return None
    height = rec["height_px"]
    inner = ndimage.binary_erosion(crop, iterations=3)
    inner[:2], inner[-2:], inner[:, :2], inner[:, -2:] = False, False, False, False
    near = ndimage.distance_transform_edt(~mine) <= 0.3 * height
    edge = _boundary(mp) & inner & near
    sd = ndimage.distance_transform_edt(~union) - ndimage.distance_transform_edt(union)  # + outside
    if edge.sum() >= 10:
        d = sd[edge]
        q1, med, q3 = np.percentile(d, [25, 50, 75])
        rec.update(offset_rel=float(med / height), wobble_rel=float((q3 - q1) / 2 / height))
    parts = {}
    for name, groups in (("hand", HAND_JOINTS), ("forearm", FOREARM_JOINTS), ("torso", (TORSO_JOINTS,))):
        for k, joints in enumerate(groups):
            part = mine & np.isin(joint, joints)
            if part.sum() >= THIN_MIN_PX:
                parts[f"{name}{k}"] = float(1.0 - (mp & part).sum() / part.sum())
    rec["part_missed_frac"] = parts
    holes, n = ndimage.label(ndimage.binary_fill_holes(mp) & ~mp)
    sizes = np.bincount(holes.ravel(), minlength=n + 1)[1:]
    big = sizes[sizes >= HOLE_MIN_FRAC * rec["area_px"]]
    rec["holes"] = [float(s / max(1, mp.sum())) for s in big]
    merges = []
    for j in range(1, int(clothed.max()) + 1):
        other = (clothed == j) & crop
        if j != i + 1 and touching(mine, clothed == j) and other.sum() >= 20:
            merges.append(float((mp & other).sum() / other.sum()))
    rec["merge_cover"] = merges
    return rec


def summarise(records: list[dict]) -> dict:
    """The error model's parameters and their supports from the found people's records."""
    def rate(prefix):
        vals = [v for r in records for k, v in r["part_missed_frac"].items() if k.startswith(prefix)]
        return (float(np.mean([v > 0.5 for v in vals])) if vals else float("nan")), len(vals), \
            (float(np.mean(vals)) if vals else float("nan"))
    off = [r["offset_rel"] for r in records if "offset_rel" in r]
    wob = [r["wobble_rel"] for r in records if "wobble_rel" in r]
    holes = [h for r in records for h in r["holes"]]
    merges = [m for r in records for m in r["merge_cover"]]
    out = {"people_found": len(records),
           "boundary_offset_rel": float(np.median(off)) if off else float("nan"),
           "boundary_offset_rel_iqr": [float(x) for x in np.percentile(off, [25, 75])] if off else None,
           "boundary_noise_rel": float(np.median(wob)) if wob else float("nan"), "boundary_people": len(off),
           "p_hole": float(np.mean([len(r["holes"]) > 0 for r in records])) if records else float("nan"),
           "hole_area_frac": float(np.median(holes)) if holes else 0.0, "holes": len(holes),
           "p_merge": float(np.mean([m >= 0.5 for m in merges])) if merges else float("nan"),
           "touching_pairs": len(merges),
           "mean_iou_crop": float(np.mean([r["iou_crop"] for r in records])) if records else float("nan")}
    for name in ("hand", "forearm", "torso"):
        p, n, mean = rate(name)
        out[f"p_miss_{name}"], out[f"{name}_parts"], out[f"{name}_mean_missed_frac"] = p, n, mean
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=160, help="clothed images rendered")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/segmenter_errors_2026-12-04.json"))
    args = parser.parse_args(argv)

    import torch

    from poselabel.config import SegmentConfig
    from poselabel.models.body.model import BodyModel
    from poselabel.models.segment.segmenters import MediaPipeSegmenter
    from poselabel.synth.writer import make_sample

    torch.set_num_threads(1)
    cfg = SegmentConfig()
    segmenter = MediaPipeSegmenter(threshold=cfg.threshold, model_complexity=cfg.model_complexity,
                                   crop_scale=cfg.crop_scale)
    body = BodyModel()
    t0 = time.perf_counter()
    records, people = [], 0
    for index in range(args.num):
        s = make_sample(body, index, args.seed, "procedural", 3, "clothed")
        image = np.asarray(Image.open(io.BytesIO(s.jpg)).convert("RGB"))
        clothed, joint = s.layers["clothed"], s.layers["joint"]
        boxes = [p["segmenter_bbox_xyxy"] for p in s.meta["persons"]]
        live = [k for k, b in enumerate(boxes) if b is not None]
        results = segmenter.segment(image, {}, np.asarray([boxes[k] for k in live], np.float64))
        for k, res in zip(live, results):
            people += 1
            if res is None:
                continue
            rec = measure_person(k, res[0], clothed, joint, cfg.crop_scale)
            if rec is not None:
                rec.update(key=s.key, person=k, outfit=s.meta["persons"][k]["outfit"])
                records.append(rec)
    summary = summarise(records)
    summary.update(people_tried=people, images=args.num, seed=args.seed, seconds=time.perf_counter() - t0,
                   threshold=cfg.threshold, crop_scale=cfg.crop_scale, found_iou=FOUND_IOU)
    print(f"{args.num} clothed images, {people} people, MediaPipe found {len(records)} "
          f"(crop IoU >= {FOUND_IOU}; mean crop IoU {summary['mean_iou_crop']:.3f}) in {summary['seconds']:.0f} s")
    rows = [("boundary offset / height (median, + out)", summary["boundary_offset_rel"], summary["boundary_people"]),
            ("boundary wobble / height (median half-IQR)", summary["boundary_noise_rel"], summary["boundary_people"]),
            ("P(hand mostly missed)", summary["p_miss_hand"], summary["hand_parts"]),
            ("P(bare forearm mostly missed)", summary["p_miss_forearm"], summary["forearm_parts"]),
            ("P(torso part mostly missed), reference", summary["p_miss_torso"], summary["torso_parts"]),
            ("P(person mask has a hole)", summary["p_hole"], summary["people_found"]),
            ("hole area / mask area (median)", summary["hole_area_frac"], summary["holes"]),
            ("P(touching neighbour merged)", summary["p_merge"], summary["touching_pairs"])]
    print(f"{'quantity':44s}{'value':>10s}{'n':>6s}")
    for name, value, n in rows:
        print(f"{name:44s}{value:10.4f}{n:6d}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"summary": summary, "people": records}, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
