"""What the fit score costs the accept rule: time per person of ``quality.judge`` under the
fit-score rule (the default) against the checks rule, on the failure benchmark's fits.

Usage::

    .venv/bin/python benchmarks/judge_cost.py benchmarks/results/quality_failures*.json

Prints microseconds per person for both rules and their ratio (median of ``--reps`` passes
over all fits, measured in the same run). The checks rule is the baseline.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality_failures import attach_peers, facts_of  # noqa: E402

from poselabel.config import CHECKS_RULE, QualityConfig  # noqa: E402
from poselabel.models.quality.rule import judge  # noqa: E402


def per_person_us(facts, quality: QualityConfig, reps: int) -> float:
    judge(facts[0], quality)  # loads the model once
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for f in facts:
            judge(f, quality)
        times.append((time.perf_counter() - t0) / len(facts) * 1e6)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args(argv)
    facts = []
    for path in args.results:
        fits = json.loads(Path(path).read_text())["fits"]
        attach_peers(fits)
        facts += [facts_of(r) for r in fits]
    base = per_person_us(facts, QualityConfig(**CHECKS_RULE), args.reps)
    score = per_person_us(facts, QualityConfig(), args.reps)
    print(f"{len(facts)} persons: checks rule {base:.0f} us, fit-score rule {score:.0f} us per person "
          f"(ratio {score / base:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
