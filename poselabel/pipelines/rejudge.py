"""Re-judging persons tables with new quality thresholds, no model run (``poselabel filter``).

Reads ``INPUT/persons/<shard>.parquet`` (shards with a done marker; every visible table
when the input has no markers), re-runs the accept rule (``models/quality/rule.py``) on each
image's rows together with the thresholds given, and writes (local or ``gs://``,
atomically):

```
OUT/persons/<shard>.parquet    the full table, accepted / reject_reasons / fit_score rewritten
OUT/accepted/<shard>.parquet   the accepted rows only, same schema (one file per shard)
OUT/images/<shard>.parquet     copied, so that OUT is a complete table directory (report)
OUT/_done/<shard>.json         per shard counts and the labelling run of its rows, written last
OUT/manifest.json              command, input, thresholds used, totals, the labelling runs
OUT/summary.json               counts by reject reason, before and after
```
The persons and accepted tables keep the input file's Parquet metadata (the labelling run's
``poselabel.run_id`` and ``poselabel.config_sha256``) and add ``poselabel.filter_quality_sha256``
(the thresholds applied) and ``poselabel.filter_version``.
Only numpy, pyarrow, pycocotools and Beam's file systems are imported on this path: no
model (no torch, no MediaPipe).
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import io
import json
import logging
import time

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from poselabel.config import ConfigError, QualityConfig, load_config, manifest_quality, parse_dotted, read_config_file
from poselabel.io import outputs
from poselabel.models.quality.facts import facts_from_row
from poselabel.models.quality.fit_score import model_entries
from poselabel.models.quality.rule import assess_image
from poselabel.tables import package_version, read_file_metadata, table_to_parquet_bytes

log = logging.getLogger(__name__)

ACCEPTED = "accepted"
_FACT_COLUMNS = ("det_score", "image_width", "image_height", "bbox_xyxy", "mask_rle", "tz", "focal_px", "cx",
                 "cy", "transl", "betas", "body_pose", "mask_iou", "fit_loss", "fit_iters", "diagnostics")


def resolve_quality(input_dir: str, base: str = "manifest", config_file: str | None = None,
                    sets: list[str] | None = None, flags: dict | None = None) -> QualityConfig:
    """The ``QualityConfig`` to apply: ``base`` (the input run's thresholds, ``INPUT/manifest.json``'s
    ``config.quality``, or "defaults"), then ``config_file``'s ``quality`` section, then ``sets``
    (``quality.KEY=VALUE``), then ``flags`` (validated)."""
    layers: list[dict] = []
    if base == "manifest":
        try:
            layers.append(manifest_quality(outputs.read_json(outputs.join(input_dir, "manifest.json"))))
        except Exception as exc:  # no manifest (tables from elsewhere): start from the defaults
            log.warning("no thresholds in %s/manifest.json (%s); starting from the defaults", input_dir, exc)
    if config_file:
        layers.append(dict(read_config_file(config_file).get("quality") or {}))
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
    """Shard names of a table directory: those with a done marker, else every visible persons table."""
    markers = outputs.done_shards(input_dir)
    if markers:
        return sorted(markers)
    pattern = outputs.join(input_dir, outputs.PERSONS, "*.parquet")
    matches = FileSystems.match([pattern])[0].metadata_list
    names = [m.path.rsplit("/", 1)[-1][: -len(".parquet")] for m in matches]
    return sorted(n for n in names if not n.startswith((".", "_")))


def rejudge_table(table: pa.Table, quality: QualityConfig) -> tuple[pa.Table, list[tuple[str, ...]]]:
    """A persons ``pyarrow.Table`` with ``accepted`` / ``reject_reasons`` / ``fit_score``
    recomputed (``fit_score`` added before ``diagnostics`` to tables written before it
    existed); also the per-row reasons."""
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


def quality_sha256(quality: QualityConfig) -> str:
    """sha256 of the canonical JSON of the thresholds applied."""
    return hashlib.sha256(json.dumps(dataclasses.asdict(quality), sort_keys=True, default=str).encode()).hexdigest()


def filter_tables(input_dir: str, output_dir: str, quality: QualityConfig) -> dict:
    """Re-judge every shard of ``input_dir`` into ``output_dir``; returns the summary."""
    if input_dir.rstrip("/") == output_dir.rstrip("/"):
        raise ValueError("--output must differ from --input (the input tables are kept as they are)")
    outputs.ensure_dirs(output_dir)
    acc_dir = outputs.join(output_dir, ACCEPTED)
    if not FileSystems.exists(acc_dir):
        FileSystems.mkdirs(acc_dir)
    shards = list_input_shards(input_dir)
    in_markers = outputs.done_shards(input_dir)
    filtered = {"poselabel.filter_quality_sha256": quality_sha256(quality),
                "poselabel.filter_version": package_version() or ""}
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
        labelled_by = read_file_metadata(table.schema)
        outputs.write_atomic(outputs.table_path(output_dir, outputs.PERSONS, shard),
                             table_to_parquet_bytes(table, {**filtered, "poselabel.table": outputs.PERSONS}))
        outputs.write_atomic(outputs.table_path(output_dir, ACCEPTED, shard),
                             table_to_parquet_bytes(table.filter(table.column("accepted")),
                                                    {**filtered, "poselabel.table": ACCEPTED}))
        images = outputs.table_path(input_dir, outputs.IMAGES, shard)
        if FileSystems.exists(images):
            outputs.write_atomic(outputs.table_path(output_dir, outputs.IMAGES, shard), outputs.read_bytes(images))
        source = in_markers.get(shard) or {}
        marker = {"shard": shard, "url": source.get("url"), "finished_at": time.time(),
                  "run_id": source.get("run_id") or labelled_by.get("poselabel.run_id"),
                  "config_sha256": source.get("config_sha256") or labelled_by.get("poselabel.config_sha256"),
                  "filter_quality_sha256": filtered["poselabel.filter_quality_sha256"], "num_persons": table.num_rows,
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
    if len(run.get("config_sha256s") or []) > 1:
        log.warning("%s was labelled by runs of %d configurations; thresholds start from the latest run's",
                    input_dir, len(run["config_sha256s"]))
    model = model_entries(quality)
    judged_by = run.get("fit_score") or {}
    if "sha256" in judged_by:  # manifests before the segmenter-mask model: one model
        judged_by = {"exact": judged_by}
    for kind, entry in model.items():
        before = (judged_by.get(kind) or {}).get("sha256")
        if quality.accept_rule == "score" and before and before != entry["sha256"]:
            log.warning("the %s-mask fit-score model differs from the one that judged %s (sha256 %s..., now %s...): "
                        "verdicts may change at the same thresholds", kind, input_dir, before[:12], entry["sha256"][:12])
    manifest = {"command": "filter", "input": input_dir, "output": output_dir, "finished_at": time.time(),
                "config": {"quality": dataclasses.asdict(quality), "body_model": (run.get("config") or {}).get("body_model")},
                "fit_score": model, "quality_sha256": filtered["poselabel.filter_quality_sha256"],
                "runs": run.get("runs") or ({run["run_id"]: {"run_id": run["run_id"]}} if run.get("run_id") else {}),
                "summary": summary}
    outputs.write_json(outputs.join(output_dir, "manifest.json"), manifest)
    outputs.write_json(outputs.join(output_dir, "summary.json"), summary)
    return summary
