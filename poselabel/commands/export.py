"""``poselabel export``: labelled tables -> training data (4D-Humans tars or SAM 3D Body tables).

What is written and why: ``poselabel/export/`` and docs/export.md.
"""
from __future__ import annotations

import json
import sys

from poselabel.export.writer import FORMATS, ExportOptions


def register(subparsers) -> None:
    defaults = ExportOptions()
    parser = subparsers.add_parser(
        "export", help="write training data from labelled tables (4D-Humans tars, SAM 3D Body tables)",
        description="Read a labelling (or filter) output's persons and images tables and write training data: "
                    "--format 4dhumans gives WebDataset tars in HMR2.0's layout, one person crop per sample; "
                    "--format sam3d gives per-person Parquet tables with SAM 3D Body's field names. "
                    "Accepted persons only unless --all. A rerun resumes; its files are identical.")
    parser.add_argument("--input", required=True, help="a labelling or filter output directory (local or gs://)")
    parser.add_argument("--output", required=True, help="where to write the export (local or gs://)")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS))
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--only-accepted", dest="include_rejected", action="store_false",
                       help="accepted persons only (default)")
    which.add_argument("--all", dest="include_rejected", action="store_true",
                       help="rejected persons too, with their verdict (4dhumans: has_body_pose = has_betas = 0)")
    parser.set_defaults(include_rejected=False)
    parser.add_argument("--crop-size", type=int, default=defaults.crop_size, help="crop side in pixels (4dhumans)")
    parser.add_argument("--context", type=float, default=defaults.context,
                        help="crop side over the person box's longer side (4dhumans)")
    parser.add_argument("--shard-size", type=int, default=defaults.shard_size, help="persons per output shard")
    parser.add_argument("--jpeg-quality", type=int, default=defaults.jpeg_quality, help="crop JPEG quality (4dhumans)")
    parser.add_argument("--dataset", default=defaults.dataset, help="the dataset column (sam3d)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in --output")
    parser.set_defaults(func=main)


def main(args) -> int:
    # imported when the command runs (Beam's file systems, pyarrow): --help stays fast
    from poselabel.export.source import ExportError
    from poselabel.export.writer import export

    options = ExportOptions(format=args.format, include_rejected=args.include_rejected, crop_size=args.crop_size,
                            context=args.context, shard_size=args.shard_size, jpeg_quality=args.jpeg_quality,
                            dataset=args.dataset)
    try:
        record = export(args.input, args.output, options, overwrite=args.overwrite)
    except ExportError as exc:
        print(f"poselabel export: {exc}", file=sys.stderr)
        return 2
    counts = record["counts"]
    print(json.dumps({"format": record["format"], "exported": record["persons"], "shards": record["shards"],
                      "written_now": record["written_now"], "skipped_existing": record["skipped_existing"],
                      "input_persons": counts["persons"], "input_accepted": counts["accepted"]}, indent=2))
    print(f"export: {args.output.rstrip('/')}/ (record: export.json)", file=sys.stderr)
    return 0
