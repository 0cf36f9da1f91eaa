"""The output tables: Arrow schemas and record -> row conversion (no Beam).

``persons/<shard>.parquet``: one row per detected person; ``images/<shard>.parquet``:
one row per input sample. Floats are float32, arrays fixed-size lists, rows
sorted by ``(key, person_index)`` so that reruns and runners agree.

The sample's own metadata (img2dataset's ``json`` and ``txt`` members) becomes columns of
the images table: ``source_url`` (the json's ``url``), ``caption`` (the ``txt`` member, else
the json's ``caption``), and scalar json fields as ``meta_<key>``: img2dataset's known keys
(``META_COLUMNS``, typed) always, and the keys listed in ``decode.meta_columns`` (text).
The schema is therefore fixed by the job's configuration, the same for every shard of the
job whatever each shard's samples hold (a shard is written alone, with no global pass over
the keys); the whole json stays in ``meta_json``.

Every Parquet file carries key-value metadata (``file_metadata``): schema version, poselabel
version, run id and config hash.
"""
from __future__ import annotations

import functools
import importlib.metadata
import io
import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from poselabel.models.masks import encode_rle
from poselabel.records import CameraFit, ImageRecord, Person


def _vec(n: int) -> pa.DataType:
    """A float32 array of length ``n`` (checked when rows are built).

    Stored as a variable-length list, not ``fixed_size_list``: pyarrow (23)
    cannot read back a Parquet column of fixed-size lists that holds nulls,
    and unfitted persons have null arrays.
    """
    return pa.list_(pa.float32())


PERSONS_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("shard", pa.string()),
    ("person_index", pa.int32()),
    ("image_width", pa.int32()),
    ("image_height", pa.int32()),
    ("bbox_xyxy", _vec(4)),
    ("det_score", pa.float32()),
    ("mask_rle", pa.struct([("size", pa.list_(pa.int32())), ("counts", pa.string())])),
    ("mask_area", pa.int64()),
    ("keypoints_2d", _vec(99)),  # MediaPipe's 33 landmarks, [u, v, visibility] px, flattened
    ("keypoints_3d", _vec(99)),  # MediaPipe world landmarks, metres, hip-centred
    ("tz", pa.float32()),
    ("focal_px", pa.float32()),
    ("cx", pa.float32()),
    ("cy", pa.float32()),
    ("transl", _vec(3)),
    ("global_orient", _vec(3)),
    ("body_pose", _vec(63)),
    ("betas", _vec(10)),
    ("mask_iou", pa.float32()),
    ("fit_loss", pa.float32()),
    ("fit_iters", pa.int32()),
    ("accepted", pa.bool_()),
    ("reject_reasons", pa.list_(pa.string())),
    ("fit_score", pa.float32()),  # quality.fit_score: the evidence weighed together, 0-1; null: not scorable
    ("diagnostics", pa.string()),  # JSON: per-stage extras
])

# Version of the tables' layout, in every file's metadata. 2: images gained source_url, caption
# and meta_* (2026-12-04); url became the shard's absolute URL.
SCHEMA_VERSION = "2"
META_PREFIX = "meta_"
# img2dataset's json keys (its writers' fields; ``compute_hash`` adds sha256 or md5), typed.
META_COLUMNS = (
    ("key", pa.string()), ("status", pa.string()), ("error_message", pa.string()),
    ("width", pa.int64()), ("height", pa.int64()),
    ("original_width", pa.int64()), ("original_height", pa.int64()),
    ("sha256", pa.string()), ("md5", pa.string()), ("exif", pa.string()),
)
META_KNOWN = tuple(k for k, _ in META_COLUMNS)
# json keys with columns of their own (``source_url``, ``caption``): no ``meta_`` column.
META_PROMOTED = ("url", "caption")


def extra_meta_columns(meta_columns: tuple[str, ...]) -> tuple[str, ...]:
    """The configured json keys that get a text column: those without one already, once each."""
    return tuple(dict.fromkeys(k for k in meta_columns if k not in META_KNOWN + META_PROMOTED))


def images_schema(meta_columns: tuple[str, ...] = ()) -> pa.Schema:
    """The images table's schema; ``meta_columns``: further json keys, each a ``meta_<key>``
    text column (``decode.meta_columns``)."""
    return pa.schema([
        ("key", pa.string()),
        ("shard", pa.string()),
        ("url", pa.string()),  # the shard's absolute URL (file:///... or gs://...), not the image's
        ("status", pa.string()),
        ("error", pa.string()),
        ("num_persons", pa.int32()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("members", pa.list_(pa.string())),
        ("timings_ms", pa.string()),  # JSON: stage -> milliseconds
        ("source_url", pa.string()),  # the image's own URL: the json member's "url" (img2dataset)
        ("caption", pa.string()),  # the txt member, else the json member's "caption"
        ("meta_json", pa.string()),  # the sample's json member, whole
        *[(META_PREFIX + k, t) for k, t in META_COLUMNS],
        *[(META_PREFIX + k, pa.string()) for k in extra_meta_columns(meta_columns)],
    ])


IMAGES_SCHEMA = images_schema()


def _f32(x) -> float | None:
    return None if x is None else float(x)


def _arr(x, n: int) -> list[float] | None:
    if x is None:
        return None
    a = np.asarray(x, dtype=np.float32).reshape(-1)
    if a.size != n:
        raise ValueError(f"expected {n} values, got {a.size}")
    return a.tolist()


def person_diagnostics(p: Person) -> dict[str, Any]:
    """The ``diagnostics`` JSON of a person: its write-only extras, the stages' failures, which
    stages were fitted to its landmarks, and the camera stage's measures (``CameraFit``)."""
    diag = dict(p.diagnostics)
    if p.tz_error is not None:
        diag["tz_error"] = p.tz_error
    if p.pose_error is not None:
        diag["pose_error"] = p.pose_error
    if p.fitted_to_landmarks:
        diag["landmark_fit"] = sorted(p.fitted_to_landmarks)
    if p.camera is not None:
        diag.update(p.camera.to_diagnostics())
    return diag


def person_row(record: ImageRecord, p: Person) -> dict[str, Any]:
    diag = person_diagnostics(p)
    cam = p.camera or CameraFit()
    centre = p.focal_px is not None
    cx = cam.cx if cam.cx is not None else (record.width / 2 if centre else None)
    cy = cam.cy if cam.cy is not None else (record.height / 2 if centre else None)
    fit_loss, fit_iters = cam.fit_loss, cam.fit_iters
    return {
        "key": record.key, "shard": record.shard, "person_index": p.person_index,
        "image_width": record.width, "image_height": record.height,
        "bbox_xyxy": _arr(p.bbox_xyxy, 4), "det_score": float(p.det_score),
        "mask_rle": encode_rle(p.mask) if p.mask is not None else None,
        "mask_area": int(p.mask.sum()) if p.mask is not None else None,
        "keypoints_2d": _arr(p.keypoints_2d, 99), "keypoints_3d": _arr(p.keypoints_3d, 99),
        "tz": _f32(p.tz), "focal_px": _f32(p.focal_px), "cx": _f32(cx), "cy": _f32(cy),
        "transl": _arr(p.transl, 3), "global_orient": _arr(p.global_orient, 3),
        "body_pose": _arr(p.body_pose, 63), "betas": _arr(p.betas, 10),
        "mask_iou": _f32(p.mask_iou), "fit_loss": _f32(fit_loss),
        "fit_iters": None if fit_iters is None else int(fit_iters),
        "accepted": bool(p.accepted), "reject_reasons": list(p.reject_reasons), "fit_score": _f32(p.fit_score),
        "diagnostics": json.dumps(diag, sort_keys=True, default=float) if diag else None,
    }


def _text(value: Any) -> str | None:
    """A scalar json value as text (strings unchanged, numbers and booleans as JSON); None
    for null, lists and objects (those stay in ``meta_json`` only)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value)):
        return json.dumps(value)
    return None


def _int(value: Any) -> int | None:
    """An integral json number as int; None for anything else (a wrong type is not an error)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -(2 ** 63) <= value < 2 ** 63 else None
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 63:
        return int(value)
    return None


def meta_values(meta: dict[str, Any], meta_columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """The ``meta_<key>`` cells of one sample's parsed json member."""
    cells = {META_PREFIX + k: (_int if t == pa.int64() else _text)(meta.get(k)) for k, t in META_COLUMNS}
    cells.update({META_PREFIX + k: _text(meta.get(k)) for k in extra_meta_columns(meta_columns)})
    return cells


def image_row(record: ImageRecord, meta_columns: tuple[str, ...] = ()) -> dict[str, Any]:
    meta = record.meta
    caption = record.caption if record.caption is not None else meta.get("caption")
    return {
        "key": record.key, "shard": record.shard, "url": record.url, "status": record.status,
        "error": record.error, "num_persons": len(record.persons),
        "width": record.width or None, "height": record.height or None,
        "members": list(record.member_exts),
        "timings_ms": json.dumps({k: round(v * 1000, 3) for k, v in sorted(record.timings.items())}),
        "source_url": meta.get("url") if isinstance(meta.get("url"), str) else None,
        "caption": caption if isinstance(caption, str) else None,
        "meta_json": json.dumps(meta, sort_keys=True) if meta else None,
        **meta_values(meta, meta_columns),
    }


@functools.lru_cache(maxsize=1)
def package_version() -> str | None:
    try:
        return importlib.metadata.version("poselabel")
    except importlib.metadata.PackageNotFoundError:
        return None


def file_metadata(run_id: str | None, config_sha256: str | None, table: str) -> dict[str, str]:
    """The key-value metadata of a Parquet file this package writes: ``poselabel.schema_version``,
    ``poselabel.version`` (of the writer), ``poselabel.run_id`` and ``poselabel.config_sha256``
    (of the run that labelled the rows), ``poselabel.table`` (persons, images, accepted)."""
    return {"poselabel.schema_version": SCHEMA_VERSION, "poselabel.version": package_version() or "",
            "poselabel.run_id": run_id or "", "poselabel.config_sha256": config_sha256 or "",
            "poselabel.table": table}


def read_file_metadata(schema: pa.Schema) -> dict[str, str]:
    """The ``poselabel.*`` key-value metadata of a table's schema (``{}``: none)."""
    return {k.decode(): v.decode() for k, v in (schema.metadata or {}).items() if k.startswith(b"poselabel.")}


def to_parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema, metadata: dict[str, str] | None = None) -> bytes:
    """Rows -> zstd Parquet bytes (schema enforced), with ``metadata`` as key-value metadata."""
    return table_to_parquet_bytes(pa.Table.from_pylist(rows, schema=schema), metadata)


def table_to_parquet_bytes(table: pa.Table, metadata: dict[str, str] | None = None) -> bytes:
    """A table -> zstd Parquet bytes: the one writer of every table this package writes.
    ``metadata`` is merged into the schema's key-value metadata (keys it names are replaced)."""
    if metadata:
        merged = {**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in metadata.items()}}
        table = table.replace_schema_metadata(merged)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["key"], r.get("person_index", 0)))
