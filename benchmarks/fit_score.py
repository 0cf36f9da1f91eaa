"""Fit the fit score (``poselabel/models/quality/fit_score.py``) on the failure benchmark's fits, and choose its threshold.

Input: result files of ``benchmarks/quality_failures.py`` (every fit with its measures and its
true error). Each file is one synthetic seed; files are grouped in pairs of seeds, in the
order given. Only fits that pass the checks the score does not replace (pipeline failures,
``too_small``, ``low_mask_iou`` at ``min_mask_iou``, physical ranges, shape, joint
limits...) are trained on and scored: the others are rejected whatever their score. The
checks rule beside it is ``config.CHECKS_RULE``.

1. **Leave one pair out**: for each pair, the model is fitted on the other pairs and its
   threshold chosen on them alone (the lowest score at which a one-sided lower confidence
   bound, ``--confidence``, of their pooled out-of-fold precision, itself leave-one-pair-out,
   reaches ``--target-precision``: the goal's 95 %, not a point estimate of it); then precision and
   recall of the whole rule are measured on the pair left out, beside the checks rule's.
2. **The model**: fitted on all pairs; its threshold chosen the same way on their pooled
   out-of-fold scores. Written to ``--out`` (default ``poselabel/models/quality/fit_score.json``)
   with the table of step 1 in its ``meta``; ``QualityConfig.min_fit_score`` is set to the
   threshold printed (by hand: the model file does not change the config).

Usage::

    R=benchmarks/results
    .venv/bin/python benchmarks/fit_score.py $R/quality_failures_seed7.json $R/quality_failures.json \\
        $R/quality_failures_seed{23,31,41,53,61,73,83,97,101,113,127,139,151,163}.json

Seeds 7 + 11 are ``quality_failures_seed7.json`` + ``quality_failures.json``; the packaged model
is fitted on these sixteen (commit d022111), seeds 173-199 are held out. Takes about 30 s.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality_failures import attach_peers, facts_of, is_bad, mark_landmark_fitted  # noqa: E402

from poselabel.config import CHECKS_RULE, QualityConfig  # noqa: E402
from poselabel.models.quality import fit_score as fs  # noqa: E402
from poselabel.models.quality.checks import SCORED_CHECKS  # noqa: E402
from poselabel.models.quality.rule import judge  # noqa: E402

ROUNDS, LEARNING_RATE, L2, MAX_BINS, MIN_LEAF = 300, 0.05, 1.0, 32, 20


def dataset(paths: list[str], quality: QualityConfig, landmark_fitted: float | None = None) -> list[dict]:
    """Per file: ``{"seed", "x" (N, F), "good" (N,), "passes" (N,) bool: no reason but the scored
    checks', "checks" (N,) bool: accepted by the checks rule}``."""
    rest = dataclasses.replace(quality, disabled_checks=tuple({*quality.disabled_checks, *SCORED_CHECKS, "low_fit_score"}))
    checks = dataclasses.replace(quality, **CHECKS_RULE)
    out = []
    for path in paths:
        saved = json.loads(Path(path).read_text())
        fits = saved["fits"]
        if landmark_fitted is not None:
            mark_landmark_fitted(fits, landmark_fitted)
        attach_peers(fits)
        facts = [facts_of(r) for r in fits]
        out.append({"seed": saved["args"]["seed"], "path": path,
                    "x": np.array([fs.features(f, quality) for f in facts]),
                    "good": np.array([not is_bad(r) for r in fits]),
                    "passes": np.array([not judge(f, rest) for f in facts]),
                    "checks": np.array([not judge(f, checks) for f in facts])})
    return out


def _cat(parts: list[dict], key: str) -> np.ndarray:
    return np.concatenate([p[key] for p in parts])


def fit(parts: list[dict], meta: dict | None = None) -> fs.FitScoreModel:
    m = _cat(parts, "passes")
    return fs.fit_stumps(_cat(parts, "x")[m], _cat(parts, "good")[m], rounds=ROUNDS, learning_rate=LEARNING_RATE,
                         l2=L2, max_bins=MAX_BINS, min_leaf=MIN_LEAF, meta=meta)


def precision_recall(accepted: np.ndarray, good: np.ndarray) -> tuple[float, float]:
    tp = int((accepted & good).sum())
    return tp / max(int(accepted.sum()), 1), tp / max(int(good.sum()), 1)


def out_of_fold(groups: list[list[dict]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores of every fit of ``groups`` by a model fitted on the other groups; with good, passes."""
    scores = []
    for k, held in enumerate(groups):
        model = fit([p for j, g in enumerate(groups) if j != k for p in g])
        scores.append(model.score(_cat(held, "x")))
    parts = [p for g in groups for p in g]
    return np.concatenate(scores), _cat(parts, "good"), _cat(parts, "passes")


def wilson_lower(k: int, n: int, confidence: float) -> float:
    """One-sided lower bound at ``confidence`` of a proportion, ``k`` of ``n`` (Wilson score
    interval; 0 for ``n`` = 0). The fits are not independent draws (people of one image share
    it), so the bound is a margin stated in numbers, not an exact guarantee."""
    if n == 0:
        return 0.0
    from statistics import NormalDist

    z = NormalDist().inv_cdf(confidence)
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n)


def threshold(scores: np.ndarray, good: np.ndarray, passes: np.ndarray, target: float,
              confidence: float = 0.5) -> float:
    """The lowest score threshold (0.01 steps) at which the lower ``confidence`` bound of the
    precision reaches ``target`` (``confidence`` 0.5: the precision itself)."""
    for t in np.round(np.arange(0.01, 1.0, 0.01), 2):
        accepted = passes & (scores >= t)
        if wilson_lower(int((accepted & good).sum()), int(accepted.sum()), confidence) >= target:
            return float(t)
    return 0.99


def plot_curves(model: fs.FitScoreModel, parts: list[dict], png: str) -> None:
    """One panel per feature: its step function (logit contribution) over the range of the
    training fits, the value of a missing measure as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = _cat(parts, "x")[_cat(parts, "passes")]
    fig, axes = plt.subplots(3, 5, figsize=(15, 8))
    for j, (ax, name) in enumerate(zip(axes.flat, model.names)):
        col = x[:, j][~np.isnan(x[:, j])]
        lo, hi = (np.quantile(col, [0.01, 0.99]) if col.size else (0.0, 1.0))
        grid = np.linspace(lo, hi, 400)
        probe = np.zeros((grid.size, len(model.names)))
        probe[:, j] = grid
        ax.plot(grid, model.contributions(probe)[:, j], "-", lw=1.5)
        ax.axhline(model.nan_values[j], color="grey", ls="--", lw=1)
        arrow = {1: " (↑)", -1: " (↓)"}.get(fs.MONOTONE[name], "")
        ax.set_title(name + arrow, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(model.names):]:
        ax.axis("off")
    fig.suptitle(f"fit score: logit contribution per feature (bias {model.bias:.2f}; dashed: measure missing)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    print(f"wrote {png}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", help="quality_failures result files, pairs of seeds in order")
    parser.add_argument("--target-precision", type=float, default=0.95, help="the goal's precision (issue #6)")
    parser.add_argument("--confidence", type=float, default=0.9,
                        help="one-sided confidence of the bound on out-of-fold precision that must reach the target")
    parser.add_argument("--group-size", type=int, default=2,
                        help="seeds per left-out group (2: pairs; 1: leave one seed out, for few seeds)")
    parser.add_argument("--landmark-fitted-share", type=float, default=None, metavar="SHARE",
                        help="train with this share of the people as landmark-fitted (keypoint residual not "
                             "counted), so the model knows the embedded default's fits too")
    parser.add_argument("--out", default=fs.DEFAULT_MODEL)
    parser.add_argument("--png", default=str(ROOT / "docs/figures/fit_score_curves.png"))
    args = parser.parse_args(argv)
    size = args.group_size
    if size < 1 or len(args.results) % size or len(args.results) // size < 3:
        parser.error(f"give at least three groups of {size} result files")
    quality = QualityConfig()
    data = dataset(args.results, quality, args.landmark_fitted_share)
    groups = [data[i:i + size] for i in range(0, len(data), size)]
    rows = []
    print(f"leave one pair out (threshold: lower {args.confidence:g} bound of out-of-fold precision "
          f"{args.target_precision:g} on the other pairs):")
    print(f"{'seeds':>9s} {'fits':>5s} {'threshold':>9s} {'score P':>8s} {'score R':>8s} {'checks P':>8s} {'checks R':>8s}")
    for k, held in enumerate(groups):
        rest = [g for j, g in enumerate(groups) if j != k]
        t = threshold(*out_of_fold(rest), args.target_precision, args.confidence)
        model = fit([p for g in rest for p in g])
        good = _cat(held, "good")
        p, r = precision_recall(_cat(held, "passes") & (model.score(_cat(held, "x")) >= t), good)
        pc, rc = precision_recall(_cat(held, "checks"), good)
        seeds = "+".join(str(h["seed"]) for h in held)
        rows.append({"seeds": seeds, "fits": int(good.size), "threshold": t, "score": [p, r], "checks": [pc, rc]})
        print(f"{seeds:>9s} {good.size:5d} {t:9.2f} {p:8.3f} {r:8.3f} {pc:8.3f} {rc:8.3f}")
    mean = np.mean([[*x["score"], *x["checks"]] for x in rows], axis=0)
    print(f"{'mean':>9s} {'':5s} {'':9s} {mean[0]:8.3f} {mean[1]:8.3f} {mean[2]:8.3f} {mean[3]:8.3f}")
    t = threshold(*out_of_fold(groups), args.target_precision, args.confidence)
    model = fit(data, meta={"trained_on_seeds": [d["seed"] for d in data], "min_fit_score": t,
                            "target_precision": args.target_precision, "confidence": args.confidence,
                            "landmark_fitted_share": args.landmark_fitted_share,
                            "leave_one_pair_out": rows,
                            # the checks the training fits passed (the size floor, min_mask_iou...)
                            "quality": dataclasses.asdict(quality),
                            "rounds": ROUNDS, "learning_rate": LEARNING_RATE, "l2": L2, "max_bins": MAX_BINS,
                            "min_leaf": MIN_LEAF})
    Path(args.out).write_text(model.to_json() + "\n")
    print(f"model on all {len(data)} seeds: threshold {t:.2f} (set QualityConfig.min_fit_score); wrote {args.out}")
    plot_curves(model, data, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
