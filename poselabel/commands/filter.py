"""``poselabel filter``: re-judge existing persons tables with new thresholds, no model run.

Thresholds start from the input run's (``INPUT/manifest.json``'s ``config.quality``, or
``QualityConfig``'s defaults with ``--base defaults``), then ``--config`` (its ``quality``
section), ``--set quality.KEY=VALUE`` and the flags. What is written: ``pipelines/rejudge.py``.
"""
from __future__ import annotations

import dataclasses
import json

from poselabel.config import QualityConfig


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
    parser.set_defaults(func=main)


def main(args) -> int:
    # the library is imported when the command runs (Beam's file systems, pyarrow): --help stays fast
    from poselabel.pipelines.rejudge import ACCEPTED, filter_tables, resolve_quality

    flags = {name: getattr(args, f"q_{name}") for name in quality_fields()}
    quality = resolve_quality(args.input, args.base, args.config, args.set, flags)
    summary = filter_tables(args.input, args.output, quality)
    print(json.dumps({k: v for k, v in summary.items() if k != "per_shard"}, indent=2))
    out = args.output.rstrip("/")
    print(f"accepted: {out}/{ACCEPTED}/  (one file per shard, persons schema)")
    print(f"re-judged tables: {out}/persons/, manifest: {out}/manifest.json")
    return 0
