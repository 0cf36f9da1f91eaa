"""``poselabel demo``: label the real photos the installed packages carry."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from poselabel.commands.filter import require_not_a_file


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="pack bus.jpg, zidane.jpg, grace_hopper.jpg and a photo without people into a shard and label it",
        description="Runs the main job on the embedded default (MediaPipe's bundled models) on real photos.")
    parser.add_argument("--out", default="poselabel-demo", help="demo directory (default: ./poselabel-demo)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the run's summary as JSON on stdout (nothing else)")
    parser.set_defaults(func=main)


def main(args) -> int:
    from poselabel.assets import demo_samples
    from poselabel.commands.run import human_summary
    from poselabel.config import load_config
    from poselabel.io.shard_writer import write_shard
    from poselabel.pipelines.job import run_job

    require_not_a_file(args.out, "--out")
    out = Path(args.out).resolve()
    (out / "shards").mkdir(parents=True, exist_ok=True)
    shard = write_shard(str(out / "shards" / "demo-000000.tar"), demo_samples())
    config = load_config(None, {"input": shard, "output": str(out / "labels"), "workers": args.workers,
                                "overwrite": True}).validate()
    summary = run_job(config)
    from poselabel.report import write_report

    write_report(str(out / "labels"), str(out / "report.html"), sample=12)
    if args.json:
        print(json.dumps(summary, indent=2))
    print(human_summary(summary, str(out / "labels")), file=sys.stderr)
    print(f"shard:    {shard}", file=sys.stderr)
    print(f"report:   {out / 'report.html'}", file=sys.stderr)
    return 0
