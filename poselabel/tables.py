"""The output tables: Arrow schemas and record -> row conversion (no Beam).

``persons/<shard>.parquet``: one row per detected person; ``images/<shard>.parquet``:
one row per input sample. Floats are float32, arrays fixed-size lists, rows
sorted by ``(key, person_index)`` so that reruns and runners agree.
"""
from __future__ import annotations

import io
import json
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

IMAGES_SCHEMA = pa.schema([
    ("key", pa.string()),
    ("shard", pa.string()),
    ("url", pa.string()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("num_persons", pa.int32()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("members", pa.list_(pa.string())),
    ("meta_json", pa.string()),  # the sample's json member, carried through
    ("timings_ms", pa.string()),  # JSON: stage -> milliseconds
])


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


def image_row(record: ImageRecord) -> dict[str, Any]:
    return {
        "key": record.key, "shard": record.shard, "url": record.url, "status": record.status,
        "error": record.error, "num_persons": len(record.persons),
        "width": record.width or None, "height": record.height or None,
        "members": list(record.member_exts),
        "meta_json": json.dumps(record.meta, sort_keys=True) if record.meta else None,
        "timings_ms": json.dumps({k: round(v * 1000, 3) for k, v in sorted(record.timings.items())}),
    }


def to_parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema) -> bytes:
    """Rows -> zstd Parquet bytes (schema enforced)."""
    return table_to_parquet_bytes(pa.Table.from_pylist(rows, schema=schema))


def table_to_parquet_bytes(table: pa.Table) -> bytes:
    """A table -> zstd Parquet bytes: the one writer of every table this package writes."""
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def sort_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["key"], r.get("person_index", 0)))
