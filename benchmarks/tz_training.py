"""Train the tiny Tz network on synthetic GT shards and measure E_Tz on held-out people.

    python benchmarks/tz_training.py --train '/tmp/nt/train/synth-*.tar' --heldout '/tmp/nt/heldout/synth-*.tar' \
        --out /tmp/nt/tz_tiny --steps 2400

Prints the held-out mean E_Tz = |T̂z − Tz| (m) of the network (run through the
inference API on full images) and of always predicting the training set's mean
Tz, their ratio, E_Tz by depth range, and the wall time.
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

from poselabel.models.nets.checkpoints import load_tz_predictor  # noqa: E402
from poselabel.models.nets.tz_net import tz_config  # noqa: E402
from poselabel.training.data import PersonSet, iter_gt_images, load_persons  # noqa: E402
from poselabel.training.loop import TrainSettings  # noqa: E402
from poselabel.training.tz import train_tz  # noqa: E402


def cached_persons(pattern: str, size: int, cache: str | None) -> PersonSet:
    if cache and os.path.exists(cache):
        return PersonSet.load(cache)
    data = load_persons(pattern, size)
    if cache:
        data.save(cache)
    return data


def evaluate(checkpoint: str, pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """Held-out (Tz_gt, Tz_pred) over every person, through ``TzPredictor`` on full images."""
    predictor = load_tz_predictor(checkpoint)
    gts, preds, batch = [], [], []
    for _, image, meta, _ in iter_gt_images(pattern):
        boxes = np.array([p["bbox_xyxy"] for p in meta["persons"]], np.float64).reshape(-1, 4)
        batch.append((image, boxes))
        gts.extend(p["transl"][2] for p in meta["persons"])
        if len(batch) == 16:
            preds.extend(np.concatenate(predictor.predict_batch(batch)))
            batch = []
    if batch:
        preds.extend(np.concatenate(predictor.predict_batch(batch)))
    return np.asarray(gts, np.float32), np.asarray(preds, np.float32)


def report(gt: np.ndarray, pred: np.ndarray, train_mean: float) -> dict:
    e = np.abs(pred - gt)
    e0 = np.abs(train_mean - gt)
    rows = {"people": int(len(gt)), "e_tz_network_m": float(e.mean()), "e_tz_mean_baseline_m": float(e0.mean()),
            "ratio": float(e0.mean() / e.mean()), "median_rel_err": float(np.median(e / gt)),
            "train_mean_tz_m": train_mean}
    for lo, hi in ((0.0, 0.5), (0.5, 1.2), (1.2, 3.0), (3.0, 100.0)):
        m = (gt > lo) & (gt <= hi)
        if m.any():
            rows[f"e_tz_{lo}-{hi}m"] = [int(m.sum()), float(e[m].mean()), float(e0[m].mean())]
    return rows


def crop_info_mlp(train: PersonSet, heldout: PersonSet, min_tz: float, seed: int = 0, steps: int = 4000) -> dict:
    """The no-image reference: a 2-layer MLP (128 wide) on the crop-info vector and its log sizes
    (what the network's query embedding sees), log-Tz output, BLADE's loss (and plain L1), on
    the un-jittered crops. Returns the held-out mean E_Tz (m) of each loss."""
    from poselabel.training.data import make_batch

    def features(d: PersonSet):
        info = make_batch(d, np.arange(len(d)))["crop_info"]
        return torch.cat([info, torch.log(info[:, 2:5].clamp_min(1e-4))], 1), torch.from_numpy(d.tz)

    x, y = features(train.subset(np.nonzero(train.tz > min_tz)[0]))
    xh, yh = features(heldout)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    out = {}
    for name in ("blade", "l1"):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 128), torch.nn.ReLU(), torch.nn.Linear(128, 128),
                                  torch.nn.ReLU(), torch.nn.Linear(128, 1))
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            i = torch.randint(0, len(y), (256,), generator=gen)
            err = (torch.exp(net((x[i] - mu) / sd)[:, 0]) - y[i]).abs()
            loss = (err / y[i]).mean() if name == "blade" else err.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            out[f"e_tz_crop_info_mlp_{name}_m"] = float((torch.exp(net((xh - mu) / sd)[:, 0]) - yh).abs().mean())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", default="tiny")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-tz", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default=None, help=".npz cache of the training crops")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--crop-info-mlp", action="store_true",
                    help="also fit the no-image reference (crop-info vector only, seconds)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    data = cached_persons(args.train, tz_config(args.variant).image_size, args.cache)
    loaded = time.perf_counter()
    print(f"training people: {len(data)} (loaded in {loaded - start:.0f} s)", flush=True)
    if not args.eval_only:
        settings = TrainSettings(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                                 threads=args.threads, log_every=100, save_every=500)
        train_tz(data, args.out, args.variant, settings, resume=True, min_tz=args.min_tz)
    trained = time.perf_counter()
    gt, pred = evaluate(args.out, args.heldout)
    rows = report(gt, pred, float(data.tz.mean()))
    if args.crop_info_mlp:
        ref = crop_info_mlp(data, load_persons(args.heldout, data.size, data.crop_scale), args.min_tz, args.seed)
        rows.update({k: v for k, v in ref.items()},
                    **{k.replace("e_tz", "ratio"): rows["e_tz_mean_baseline_m"] / v for k, v in ref.items()})
    rows.update({"load_s": round(loaded - start, 1), "train_s": round(trained - loaded, 1),
                 "eval_s": round(time.perf_counter() - trained, 1), "steps": args.steps, "batch": args.batch})
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
