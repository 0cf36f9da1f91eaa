"""BLADE's Table 3 in miniature: the pose network with and without Tz conditioning.

    python benchmarks/pose_conditioning.py --train '/tmp/nt/train/synth-*.tar' \
        --heldout '/tmp/nt/heldout/synth-*.tar' --tz /tmp/nt/tz_tiny --out /tmp/nt/pose

1. a plain, unconditioned tiny base network is trained on all training people
   (BLADE's base, AiOS, is trained on mostly distant people);
2. two ControlNets around that frozen base are trained identically (same seed,
   steps, batches) on close-range people only (Tz ≤ ``--max-tz``, 1.2 m): one
   conditioned on Tz (ground truth during training), one without Tz (``none``);
3. all are evaluated on held-out close-range people through the inference API
   (full images): the conditioned one with ground-truth Tz and with the Tz
   network's prediction. PVE and MPJPE (SMPL-X joints 0–21) in mm, pelvis-aligned.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from poselabel.models.body.model import BodyModel  # noqa: E402
from poselabel.models.nets.checkpoints import load_pose_predictor, load_tz_predictor  # noqa: E402
from poselabel.training.data import PersonSet, iter_gt_images, load_persons  # noqa: E402
from poselabel.training.loop import TrainSettings  # noqa: E402
from poselabel.training.pose import pose_errors, train_pose  # noqa: E402


def heldout_people(pattern: str, max_tz: float, tz_predictor) -> list[tuple]:
    """[(image, boxes (n, 4), gt dict of (n, …) arrays, tz_pred (n,))] of held-out close-range people."""
    items = []
    for _, image, meta, _ in iter_gt_images(pattern):
        persons = meta["persons"]
        boxes = np.array([p["bbox_xyxy"] for p in persons], np.float64).reshape(-1, 4)
        tz_pred = tz_predictor.predict(image, boxes) if tz_predictor else np.full(len(boxes), np.nan, np.float32)
        keep = [i for i, p in enumerate(persons) if p["transl"][2] <= max_tz]
        if keep:
            gt = {k: np.array([persons[i][k] for i in keep], np.float32)
                  for k in ("betas", "global_orient", "body_pose", "transl")}
            items.append((image, boxes[keep], gt, tz_pred[keep]))
    return items


def evaluate(checkpoint: str, items: list[tuple], body: BodyModel, tz_mode: str) -> dict:
    predictor = load_pose_predictor(checkpoint)
    preds, gts = [], []
    for image, boxes, gt, tz_pred in items:
        tz = {"gt": gt["transl"][:, 2], "pred": tz_pred, "none": None}[tz_mode]
        preds.append(predictor.predict(image, boxes, tz if predictor.conditioned else None))
        gts.append(gt)
    cat = lambda ds, k: np.concatenate([d[k] for d in ds])  # noqa: E731
    keys = ("betas", "global_orient", "body_pose")
    err = pose_errors(body, {k: cat(preds, k) for k in keys}, {k: cat(gts, k) for k in keys})
    return {"people": int(len(err["pve_mm"])), "PVE_mm": float(err["pve_mm"].mean()),
            "MPJPE_mm": float(err["mpjpe_mm"].mean()), "per_person": err}


def paired_ci(a: np.ndarray, b: np.ndarray, seed: int = 0, n: int = 2000) -> tuple[float, float, float]:
    """Mean of a − b (per person) and its 95 % bootstrap interval."""
    d = a - b
    rng = np.random.default_rng(seed)
    means = np.array([d[rng.integers(0, len(d), len(d))].mean() for _ in range(n)])
    return float(d.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--tz", default=None, help="trained Tz checkpoint (for the predicted-Tz row)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-tz", type=float, default=1.2)
    ap.add_argument("--base-steps", type=int, default=1500)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=None, help=".npz cache of the training crops (112 px)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.cache and os.path.exists(args.cache):
        data = PersonSet.load(args.cache)
    else:
        data = load_persons(args.train, 112)
        if args.cache:
            data.save(args.cache)
    close = data.subset(np.nonzero(data.tz <= args.max_tz)[0])
    print(f"training people: {len(data)}, close-range (Tz <= {args.max_tz} m): {len(close)}", flush=True)
    settings = TrainSettings(steps=args.base_steps, batch=args.batch, lr=args.lr, seed=args.seed,
                             threads=args.threads, log_every=100, save_every=500)
    base = os.path.join(args.out, "base")
    train_pose(data, base, "tiny", settings, resume=True, conditioning="none")
    t1 = time.perf_counter()
    ft = TrainSettings(**{**settings.__dict__, "steps": args.steps})
    runs = {}
    for cond in ("tz", "none"):
        runs[cond] = os.path.join(args.out, f"ctrl_{cond}")
        train_pose(close, runs[cond], "tiny", ft, resume=True, conditioning=cond, base=base)
    t2 = time.perf_counter()
    body = BodyModel(data.body_model)
    items = heldout_people(args.heldout, args.max_tz, load_tz_predictor(args.tz) if args.tz else None)
    table = [("base (no fine-tuning)", evaluate(base, items, body, "none")),
             ("ControlNet, no Tz", evaluate(runs["none"], items, body, "none")),
             ("ControlNet + Tz (GT Tz)", evaluate(runs["tz"], items, body, "gt"))]
    if args.tz:
        table.append(("ControlNet + Tz (predicted Tz)", evaluate(runs["tz"], items, body, "pred")))
    print(f"\nheld-out close-range people (Tz <= {args.max_tz} m): {table[0][1]['people']}")
    print(f"{'model':34s} {'PVE (mm)':>9s} {'MPJPE (mm)':>11s}")
    for name, row in table:
        print(f"{name:34s} {row['PVE_mm']:9.1f} {row['MPJPE_mm']:11.1f}")
    rows = dict(table)
    none = rows["ControlNet, no Tz"]["per_person"]
    for name in [n for n in rows if n.startswith("ControlNet + Tz")]:
        for metric in ("pve_mm", "mpjpe_mm"):
            mean, lo, hi = paired_ci(rows[name]["per_person"][metric], none[metric])
            print(f"{name} minus no-Tz, {metric}: {mean:+.1f} (95 % CI {lo:+.1f} .. {hi:+.1f})")
    for row in rows.values():
        row.pop("per_person")
    print(json.dumps({"table": rows, "base_train_s": round(t1 - t0, 1), "finetune_s": round(t2 - t1, 1),
                      "eval_s": round(time.perf_counter() - t2, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
