"""Throughput of the main job on this machine: images/s, 1 vs 2 workers, time share per stage.

Writes ``--shards`` shards of ``--per-shard`` real photos (bus, zidane,
grace_hopper and the photo without people, repeated), runs the job with the
embedded default (MediaPipe detection + segmentation) once per worker count
(fresh output each time; ``--repeat N``: N times, interleaved, the median run reported)
and prints images/s and persons/s, the ratio of each worker count against the first measured
in the same run, and the share of
stage time per stage (from the images tables' per-sample timings).

    .venv/bin/python benchmarks/spine_throughput.py --shards 4 --per-shard 16 --workers 1 2

Another commit's figures: its own copy of this script, from its checkout, with
``PYTHONPATH=<checkout>`` (its worker processes import the package of the directory they start in).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GLOG_minloglevel", "2")


def stage_totals(out: Path) -> dict[str, float]:
    """Milliseconds per stage summed over every image of a run's images tables."""
    import pyarrow.parquet as pq

    totals: dict[str, float] = {}
    for row in pq.read_table(str(out / "images"), columns=["timings_ms"]).to_pylist():
        for stage, ms in json.loads(row["timings_ms"] or "{}").items():
            totals[stage] = totals.get(stage, 0.0) + ms
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--per-shard", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runner", default="direct", choices=["direct", "dask"])
    parser.add_argument("--repeat", type=int, default=1,
                        help="run every worker count this many times, interleaved; the median run is reported (the lower middle one for an even count)")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="configuration overrides, e.g. --set camera.backend=none")
    args = parser.parse_args()
    if args.json:
        args.json = os.path.abspath(args.json)
    # The direct runner starts its worker processes with ``python -m`` in the current directory,
    # which comes first on their sys.path: run from another checkout, they would import that
    # checkout's package while this process imports this one's. Run from this script's checkout.
    os.chdir(Path(__file__).resolve().parents[1])

    from poselabel.assets import demo_samples
    from poselabel.config import load_config, parse_dotted
    from poselabel.io.shard_writer import write_shard
    from poselabel.pipelines.job import run_job

    photos = demo_samples()
    root = Path(tempfile.mkdtemp(prefix="poselabel-bench-"))
    for s in range(args.shards):
        samples = [(f"{photos[i % len(photos)][0]}-{s}-{i}", photos[i % len(photos)][1])
                   for i in range(args.per_shard)]
        write_shard(str(root / f"bench-{s:06d}.tar"), samples)
    runs: dict[int, list[dict]] = {w: [] for w in args.workers}
    for r in range(args.repeat):  # interleaved: the shared machine's drift falls on every count alike
        for workers in args.workers:
            out = root / f"out-{args.runner}-{workers}-{r}"
            config = load_config(None, {**parse_dotted(args.set), "input": str(root / "bench-*.tar"), "output": str(out),
                                        "runner": args.runner, "workers": workers, "progress": False})
            start = time.perf_counter()
            summary = run_job(config)
            wall = time.perf_counter() - start
            runs[workers].append({"images": summary["samples"], "persons": summary["persons"],
                                  "pipeline_s": summary["this_run"]["wall_s"], "job_s": round(wall, 3),
                                  "images_per_s": summary["this_run"]["images_per_s"],
                                  "persons_per_s": round(summary["persons"] / summary["this_run"]["wall_s"], 3),
                                  "stage_ms": stage_totals(out)})
    results = {}
    for workers, rs in runs.items():
        ranked = sorted(rs, key=lambda x: x["images_per_s"])
        results[workers] = {**ranked[(len(ranked) - 1) // 2],
                            "images_per_s_runs": [x["images_per_s"] for x in rs]}
    base = results[args.workers[0]]["images_per_s"]
    print(f"runner={args.runner} shards={args.shards} images/shard={args.per_shard} cpus={os.cpu_count()}")
    print(f"{'workers':>8} {'images':>7} {'persons':>8} {'wall_s':>8} {'images/s':>9} {'persons/s':>10} {'ratio':>6}")
    for workers, r in results.items():
        print(f"{workers:>8} {r['images']:>7} {r['persons']:>8} {r['pipeline_s']:>8.2f} {r['images_per_s']:>9.2f} "
              f"{r['persons_per_s']:>10.2f} {r['images_per_s'] / base:>6.2f}"
              + (f"   runs: {' '.join(f'{x:.2f}' for x in r['images_per_s_runs'])} images/s" if args.repeat > 1 else ""))
    stages = results[args.workers[0]]["stage_ms"]
    total = sum(stages.values()) or 1.0
    print("time per stage (first worker count, summed over images):")
    for stage, ms in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {stage:>8} {ms / 1000:>8.2f} s {100 * ms / total:>6.1f} %")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
