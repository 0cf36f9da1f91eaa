"""``poselabel filter``: re-judge existing persons tables with new thresholds, no model run.

Thresholds start from the input run's (``INPUT/manifest.json``'s ``config.quality``, or
``QualityConfig``'s defaults with ``--base defaults``), then ``--config`` (its ``quality``
section), ``--set quality.KEY=VALUE`` and the flags. What is written: ``pipelines/rejudge.py``.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys

from poselabel.config import InputError, QualityConfig


def quality_fields() -> list[str]:
    """The names of ``QualityConfig``'s thresholds (one flag each)."""
    return [f.name for f in dataclasses.fields(QualityConfig)]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "filter", help="re-judge persons tables with new quality thresholds (no model run)",
        description="Rewrite accepted / reject_reasons of existing persons tables under new thresholds "
                    "and write the accepted people as training-ready tables, one per shard.")
    parser.add_argument("--input", required=True, help="a labelling output directory (local or gs://)")
    parser.add_argument("--output", required=True, help="where to write the re-judged tables (not the input)")
    parser.add_argument("--base", choices=["manifest", "defaults"], default="manifest",
                        help="start from the input run's thresholds (manifest) or QualityConfig's defaults")
    parser.add_argument("--config", help="YAML or JSON file; its 'quality' section is used")
    parser.add_argument("--set", action="append", default=[], metavar="quality.KEY=VALUE",
                        help="any quality threshold, e.g. --set quality.min_mask_iou=0.7 (repeatable)")
    for name in quality_fields():
        parser.add_argument("--" + name.replace("_", "-"), dest=f"q_{name}", metavar="VALUE",
                            help=f"quality.{name}" + (" (space-separated names)" if name == "disabled_checks" else ""))
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout (nothing else)")
    parser.set_defaults(func=main)


def require_tables(input_dir: str, flag: str = "--input") -> list[str]:
    """The shard names of the table folder ``input_dir``; ``InputError`` (one line) when it holds
    no persons table (a missing folder, a typo, the shards' folder instead of the labels')."""
    from poselabel.pipelines.rejudge import list_input_shards  # Beam's file systems

    shards = list_input_shards(input_dir)
    if not shards:
        what = "no such folder" if "://" not in input_dir and not os.path.isdir(input_dir) else "holds no persons/*.parquet"
        raise InputError(f"{flag} {input_dir}: {what}; give the --output folder of a poselabel run (or filter)")
    return shards


def require_not_a_file(path: str, flag: str) -> None:
    if "://" not in path and os.path.exists(path) and not os.path.isdir(path):
        raise InputError(f"{flag} {path}: is a file; give a folder (it is created if missing)")


def main(args) -> int:
    # the library is imported when the command runs (Beam's file systems, pyarrow): --help stays fast
    from poselabel.pipelines.rejudge import ACCEPTED, filter_tables, resolve_quality

    flags = {name: getattr(args, f"q_{name}") for name in quality_fields()}
    # every check before anything is written
    if args.input.rstrip("/") == args.output.rstrip("/"):
        raise InputError("--output must differ from --input (the input tables are kept as they are)")
    require_not_a_file(args.output, "--output")
    require_tables(args.input)
    quality = resolve_quality(args.input, args.base, args.config, args.set, flags)
    summary = filter_tables(args.input, args.output, quality)
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "per_shard"}, indent=2))
    out = args.output.rstrip("/")
    print(f"{summary['accepted']} of {summary['persons']} persons accepted (before: {summary['accepted_before']}) "
          f"in {summary['shards']} shards", file=sys.stderr)
    print(f"accepted: {out}/{ACCEPTED}/  (one file per shard, persons schema)", file=sys.stderr)
    print(f"re-judged tables: {out}/persons/, manifest: {out}/manifest.json", file=sys.stderr)
    return 0
