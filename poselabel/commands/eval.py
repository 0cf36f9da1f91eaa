"""``poselabel eval``: a labelling output against ground-truth shards (docs/eval.md).

Reads ``--pred`` (a ``run`` or ``filter`` output: ``persons/*.parquet``, ``images/*.parquet``)
and ``--gt`` (``poselabel synth`` shards), matches people by mask, and prints BLADE's metrics
over all matched people and over the accepted ones, the counts, and the accept rule's
precision and recall against a good-label definition (``evaluation/evaluate.py``).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import posixpath
import sys
from collections.abc import Iterator

from poselabel.config import InputError
from poselabel.evaluation import MATCH_MASKS

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval", help="a labelling output against ground-truth shards (BLADE's metrics, accept precision/recall)",
        description="Match the people of a poselabel run (or filter) output to the ground truth of the shards it "
                    "labelled (poselabel synth's) by mask IoU, and report E_f, E_Tz, E_1/Tz, E_Txy, PVE, MPJPE, "
                    "PA-MPJPE and mIoU over all matched people and over the accepted ones, detection recall, "
                    "false positives, and the accept rule's precision and recall against a good-label definition.")
    parser.add_argument("--pred", required=True, help="the --output folder of poselabel run or filter (local or gs://)")
    parser.add_argument("--gt", required=True, help="ground-truth shards: a folder, glob, {a..b} range, gs://")
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the report as JSON here")
    parser.add_argument("--body-model", default=None,
                        help="SMPL-X .npz both labels and truth are posed with (default: the run's, from its "
                             "manifest; else the procedural model)")
    parser.add_argument("--min-iou", type=float, default=0.3, help="least mask IoU of a match (default 0.3)")
    parser.add_argument("--mask", default="best", choices=MATCH_MASKS,
                        help="true mask people are matched on: best = the better IoU of the segmenter-like mask "
                             "(segmask.png, clothed worlds) and the visible body silhouette (mask.png); segmenter "
                             "= the first (the body's in naked-world shards); body = the second")
    parser.add_argument("--good-pve-frac", type=float, default=0.10, metavar="FRAC",
                        help="good label: PVE_cam at most FRAC x the true Tz (default 0.10)")
    parser.add_argument("--good-ef", type=float, default=0.25, metavar="FRAC",
                        help="good label: E_f at most FRAC (default 0.25)")
    parser.set_defaults(func=main)


def gt_shards(pattern: str) -> list[str]:
    """The ``--gt`` shards (``InputError`` naming ``--gt`` when the pattern finds none)."""
    from poselabel.io.shards import list_shards

    try:
        return list_shards(pattern)
    except InputError as exc:
        raise InputError(str(exc).replace("--input", "--gt")) from None


def iter_ground_truth(shards: list[str], mask: str, body_models: set) -> Iterator:
    """Every sample of ``shards`` as an ``evaluate.GTImage``, streamed (one image's masks in
    memory at a time); the body model files the samples name are added to ``body_models``.
    ``InputError`` at the first sample that carries no ground truth."""
    from poselabel.evaluation.evaluate import gt_image
    from poselabel.io.shards import iter_samples

    for shard in shards:
        for sample in iter_samples(shard):
            try:
                image = gt_image(sample.shard, sample.key, sample.members, mask)
            except (ValueError, KeyError) as exc:
                raise InputError(f"--gt {shard}: {exc}; give shards that poselabel synth wrote") from None
            body_models.add(image.body_model)
            yield image


def finite_or_null(value):
    """``value`` with every NaN or infinite float replaced by None (strict JSON)."""
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def main(args: argparse.Namespace) -> int:
    import torch

    from poselabel.commands.filter import require_tables
    from poselabel.evaluation.evaluate import GoodLabel, evaluate, format_report
    from poselabel.io.shards import shard_name
    from poselabel.io.urls import to_url
    from poselabel.models.body.model import BodyModel
    from poselabel.report.data import body_model_path, load_tables

    if not 0 < args.min_iou <= 1:
        raise InputError(f"--min-iou must be in (0, 1], not {args.min_iou}")
    if args.good_pve_frac <= 0 or args.good_ef <= 0:
        raise InputError("--good-pve-frac and --good-ef must be positive")
    require_tables(args.pred, "--pred")
    shards = gt_shards(args.gt)
    tables = load_tables(args.pred)
    labelled = {(r["shard"], r["key"]) for r in tables.images}
    persons: dict = {}
    for row in tables.persons:
        persons.setdefault((row["shard"], row["key"]), []).append(row)
    body_path = args.body_model or body_model_path(tables.manifest)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    body = BodyModel(body_path)
    labelled_urls = {r["shard"]: r["url"] for r in tables.images}
    for path in shards:
        url = labelled_urls.get(shard_name(path))
        if url is not None and url != to_url(path):
            log.warning("--gt %s is not the shard --pred labelled (%s): people are matched by shard name and key",
                        path, url)
    named: set = set()
    report = evaluate(iter_ground_truth(shards, args.mask, named), persons, labelled, body, args.min_iou,
                      GoodLabel(max_pve_cam_frac=args.good_pve_frac, max_e_f=args.good_ef))
    if not report["counts"]["gt_images"]:
        what = "hold no sample" if not report["counts"]["gt_images_not_labelled"] else "were not labelled by --pred"
        raise InputError(f"--gt {args.gt}: the shards {what} (--pred {args.pred} holds "
                         f"{sorted({s for s, _ in labelled})[:3]}); give the output of a run over those shards")
    named.discard(None)
    if body_path and named and posixpath.basename(body_path) not in named:
        log.warning("the ground truth names body model(s) %s; evaluated with %s", sorted(named), body_path)
    report = {"pred": args.pred, "gt": args.gt, "body_model": body_path or "procedural", **report}
    print(format_report(report), flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(finite_or_null(report), fh, indent=2)
        print(f"report: {args.json}", file=sys.stderr)
    return 0
