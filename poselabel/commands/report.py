"""``poselabel report``: one self-contained HTML page about a table directory."""
from __future__ import annotations

import os
import sys

from poselabel.commands.filter import require_tables
from poselabel.config import InputError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="an HTML report (counts, histograms, overlays) of a labelling output",
        description="Counts by status and reason, histograms of mask IoU, Tz, f and field of view, and "
                    "the fitted bodies of sampled accepted and rejected people drawn over their images "
                    "(read back from the input shards). One self-contained HTML file.")
    parser.add_argument("--input", required=True, help="a labelling (or filter) output directory, local or gs://")
    parser.add_argument("--out", required=True, help="the HTML file to write")
    parser.add_argument("--sample", type=int, default=12, help="accepted and rejected people shown (each)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling")
    parser.set_defaults(func=main)


def main(args) -> int:
    if "://" not in args.out and os.path.isdir(args.out):
        raise InputError(f"--out {args.out}: is a folder; give the HTML file to write, e.g. {args.out.rstrip('/')}/report.html")
    require_tables(args.input)
    from poselabel.report import write_report

    path = write_report(args.input, args.out, sample=args.sample, seed=args.seed)
    print(f"report: {path}", file=sys.stderr)
    return 0
