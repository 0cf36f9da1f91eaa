"""``poselabel filter``: re-judge existing persons tables with new thresholds, no model run.

Reads ``INPUT/persons/<shard>.parquet`` (shards with a done marker; every visible table
when the input has no markers), applies :func:`poselabel.models.quality.judge` to each
row with the thresholds given, and writes (local or ``gs://``, atomically):

```
OUT/persons/<shard>.parquet    the full table, accepted / reject_reasons rewritten
OUT/accepted/<shard>.parquet   the accepted rows only, same schema (one file per shard)
OUT/images/<shard>.parquet     copied, so that OUT is a complete table directory (report)
OUT/_done/<shard>.json         per shard counts, written last
OUT/manifest.json              command, input, thresholds used, totals
OUT/summary.json               counts by reject reason, before and after
```
Thresholds start from the input run's (``INPUT/manifest.json``'s ``config.quality``, or
``QualityConfig``'s defaults with ``--base defaults``), then ``--config`` (its ``quality``
section), ``--set quality.KEY=VALUE`` and the flags. Only numpy, pyarrow, pycocotools and
Beam's file systems are imported on this path: no model (no torch, no MediaPipe).
"""
from __future__ import annotations

import collections
import dataclasses
import json
import logging
import time

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
_FACT_COLUMNS = ("det_score", "image_width", "image_height", "bbox_xyxy", "mask_rle", "tz", "focal_px",
                 "transl", "betas", "body_pose", "mask_iou", "fit_loss", "diagnostics")


def _quality_fields():
    from poselabel.config import QualityConfig

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
    for name in _quality_fields():
        parser.add_argument("--" + name.replace("_", "-"), dest=f"q_{name}", metavar="VALUE",
                            help=f"quality.{name}" + (" (space-separated names)" if name == "disabled_checks" else ""))
    parser.set_defaults(func=main)


def resolve_quality(input_dir: str, base: str = "manifest", config_file: str | None = None,
                    sets: list[str] | None = None, flags: dict | None = None):
    """The ``QualityConfig`` to apply: base, then file, then ``--set``, then flags (validated)."""
    from poselabel.config import ConfigError, load_config, manifest_quality, parse_dotted
    from poselabel.io import outputs

    layers: list[dict] = []
    if base == "manifest":
        try:
            layers.append(manifest_quality(outputs.read_json(outputs.join(input_dir, "manifest.json"))))
        except Exception as exc:  # no manifest (tables from elsewhere): start from the defaults
            log.warning("no thresholds in %s/manifest.json (%s); starting from the defaults", input_dir, exc)
    if config_file:
        from pathlib import Path

        import yaml

        text = Path(config_file).read_text()
        data = (json.loads(text) if config_file.endswith(".json") else yaml.safe_load(text)) or {}
        layers.append(dict(data.get("quality") or {}))
    dotted = parse_dotted(sets or [])
    if set(dotted) - {"quality"}:
        raise ConfigError(f"filter only takes quality.* keys, got {sorted(set(dotted) - {'quality'})}")
    layers.append(dotted.get("quality", {}))
    layers.append({k: v for k, v in (flags or {}).items() if v is not None})
    merged: dict = {}
    for layer in layers:
        merged.update(layer)
    quality = load_config(None, {"quality": merged}).quality
    quality.validate()
    return quality


def list_input_shards(input_dir: str) -> list[str]:
    """Shard names to filter: those with a done marker, else every visible persons table."""
    from apache_beam.io.filesystems import FileSystems

    from poselabel.io import outputs

    markers = outputs.done_shards(input_dir)
    if markers:
        return sorted(markers)
    pattern = outputs.join(input_dir, outputs.PERSONS, "*.parquet")
    matches = FileSystems.match([pattern])[0].metadata_list
    names = [m.path.rsplit("/", 1)[-1][: -len(".parquet")] for m in matches]
    return sorted(n for n in names if not n.startswith((".", "_")))


def rejudge_table(table, quality):
    """A persons ``pyarrow.Table`` with ``accepted`` / ``reject_reasons`` / ``fit_score``
    recomputed (``fit_score`` added before ``diagnostics`` to tables written before it
    existed); also the per-row reasons (list of tuples)."""
    import pyarrow as pa

    from poselabel.models.quality import assess_image, facts_from_row

    cols = {c: table.column(c).to_pylist() for c in _FACT_COLUMNS if c in table.column_names}
    images: dict = {}  # image key -> row indices: the image-level checks see the whole image
    for i, k in enumerate(table.column("key").to_pylist()):
        images.setdefault(k, []).append(i)
    reasons: list = [()] * table.num_rows
    scores: list = [None] * table.num_rows
    for rows in images.values():
        facts = [facts_from_row({c: v[i] for c, v in cols.items()}) for i in rows]
        for i, (r, s) in zip(rows, assess_image(facts, quality)):
            reasons[i], scores[i] = r, s
    accepted = pa.array([not r for r in reasons], pa.bool_())
    lists = pa.array([list(r) for r in reasons], pa.list_(pa.string()))
    table = table.set_column(table.schema.get_field_index("accepted"), "accepted", accepted)
    table = table.set_column(table.schema.get_field_index("reject_reasons"), "reject_reasons", lists)
    column = pa.array(scores, pa.float32())
    if "fit_score" in table.column_names:
        table = table.set_column(table.schema.get_field_index("fit_score"), "fit_score", column)
    else:
        at = table.schema.get_field_index("diagnostics")
        table = table.add_column(at if at >= 0 else table.num_columns, "fit_score", column)
    return table, reasons


def _parquet(table) -> bytes:
    import io

    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def filter_tables(input_dir: str, output_dir: str, quality) -> dict:
    """Re-judge every shard of ``input_dir`` into ``output_dir``; returns the summary."""
    import io

    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    from poselabel.io import outputs

    if input_dir.rstrip("/") == output_dir.rstrip("/"):
        raise ValueError("--output must differ from --input (the input tables are kept as they are)")
    outputs.ensure_dirs(output_dir)
    acc_dir = outputs.join(output_dir, ACCEPTED)
    if not FileSystems.exists(acc_dir):
        FileSystems.mkdirs(acc_dir)
    shards = list_input_shards(input_dir)
    before, after = collections.Counter(), collections.Counter()
    totals = {"persons": 0, "accepted_before": 0, "accepted": 0}
    per_shard = {}
    for shard in shards:
        data = outputs.read_bytes(outputs.table_path(input_dir, outputs.PERSONS, shard))
        table = pq.read_table(io.BytesIO(data))
        before.update(r for rs in table.column("reject_reasons").to_pylist() for r in rs)
        n_before = sum(table.column("accepted").to_pylist())
        table, reasons = rejudge_table(table, quality)
        after.update(r for rs in reasons for r in rs)
        n_acc = sum(1 for r in reasons if not r)
        outputs.write_atomic(outputs.table_path(output_dir, outputs.PERSONS, shard), _parquet(table))
        outputs.write_atomic(outputs.table_path(output_dir, ACCEPTED, shard),
                             _parquet(table.filter(table.column("accepted"))))
        images = outputs.table_path(input_dir, outputs.IMAGES, shard)
        if FileSystems.exists(images):
            outputs.write_atomic(outputs.table_path(output_dir, outputs.IMAGES, shard), outputs.read_bytes(images))
        marker = {"shard": shard, "finished_at": time.time(), "num_persons": table.num_rows,
                  "num_accepted": n_acc, "num_accepted_before": n_before,
                  "reject_reasons": dict(sorted(collections.Counter(r for rs in reasons for r in rs).items()))}
        outputs.write_json(outputs.done_path(output_dir, shard), marker)
        per_shard[shard] = {k: marker[k] for k in ("num_persons", "num_accepted", "num_accepted_before")}
        totals["persons"] += table.num_rows
        totals["accepted_before"] += n_before
        totals["accepted"] += n_acc
    summary = {"shards": len(shards), **totals,
               "reject_reasons": dict(sorted(after.items())),
               "reject_reasons_before": dict(sorted(before.items())), "per_shard": per_shard}
    try:  # the overlays of `poselabel report` need the run's body model
        run = outputs.read_json(outputs.join(input_dir, "manifest.json"))
    except Exception:
        run = {}
    from poselabel.models.fit_score import model_entry

    model = model_entry(quality.fit_score_model)
    before = (run.get("fit_score") or {}).get("sha256")
    if quality.accept_rule == "score" and before and before != model["sha256"]:
        log.warning("the fit-score model differs from the one that judged %s (sha256 %s..., now %s...): "
                    "verdicts may change at the same thresholds", input_dir, before[:12], model["sha256"][:12])
    manifest = {"command": "filter", "input": input_dir, "output": output_dir, "finished_at": time.time(),
                "config": {"quality": dataclasses.asdict(quality), "body_model": (run.get("config") or {}).get("body_model")},
                "fit_score": model, "summary": summary}
    outputs.write_json(outputs.join(output_dir, "manifest.json"), manifest)
    outputs.write_json(outputs.join(output_dir, "summary.json"), summary)
    return summary


def main(args) -> int:
    flags = {name: getattr(args, f"q_{name}") for name in _quality_fields()}
    quality = resolve_quality(args.input, args.base, args.config, args.set, flags)
    summary = filter_tables(args.input, args.output, quality)
    print(json.dumps({k: v for k, v in summary.items() if k != "per_shard"}, indent=2))
    out = args.output.rstrip("/")
    print(f"accepted: {out}/{ACCEPTED}/  (one file per shard, persons schema)")
    print(f"re-judged tables: {out}/persons/, manifest: {out}/manifest.json")
    return 0
