"""``--format sam3d``: a per-person Parquet table with SAM 3D Body's annotation field names.

SAM 3D Body's annotations (facebookresearch/sam-3d-body, ``data/scripts/create_webdataset.py``)
are Parquet files ``NNNNNN.parquet`` with one row per person, an image's persons consecutive
(``subject_idx`` 0 .. ``subject_cnt`` - 1): ``dataset``, ``image``, ``person_id``, ``bbox`` with
``bbox_format`` and ``bbox_score``, ``bbox_center`` / ``bbox_scale`` (pixels, MMPose's (w, h),
``core/data/transforms/bbox_utils.py``), ``keypoints_2d`` / ``keypoints_3d``, ``cam_int`` (the 3x3
intrinsics ``K`` as rows), ``global_trans``, ``loss``, ``mask_size`` / ``mask_cnts`` (COCO RLE;
``[-1, -1]`` and ``b""`` when absent), and MHR body parameters with ``proto_valid``.

Here the body is SMPL-X, not MHR: its parameters are ``smplx_global_orient``, ``smplx_body_pose``,
``smplx_betas`` with ``smplx_valid`` (accepted and fitted) instead of the ``proto_*`` columns;
``global_trans`` is SMPL-X's pelvis in the camera frame (metres); keypoints are MediaPipe's 33
(``keypoint_format``), not MHR's 70; ``image`` is the WebDataset key, ``source_url`` its shard.
No pixels are written: images stay in the source shards.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from poselabel.export.source import Selected

_F = pa.float32()
_VEC = pa.list_(_F)
_MAT = pa.list_(pa.list_(_F))

SCHEMA = pa.schema([
    ("dataset", pa.string()),
    ("image", pa.string()),  # the WebDataset key of the image in source_url
    ("person_id", pa.int32()),
    ("subject_idx", pa.int32()),
    ("subject_cnt", pa.int32()),
    ("image_width", pa.int32()),
    ("image_height", pa.int32()),
    ("bbox", _VEC),  # (4) pixels, bbox_format
    ("bbox_format", pa.string()),
    ("bbox_score", _F),
    ("bbox_center", _VEC),  # (2) pixels
    ("bbox_scale", _VEC),  # (2) box (w, h), pixels
    ("keypoints_2d", _MAT),  # (33, 3) [u, v, visibility], pixels
    ("keypoints_3d", _MAT),  # (33, 3) metres, hip-centred (MediaPipe world landmarks)
    ("keypoint_format", pa.string()),
    ("cam_int", _MAT),  # (3, 3) K = [[f, 0, cx], [0, f, cy], [0, 0, 1]], pixels
    ("global_trans", _VEC),  # (3) metres, camera frame (SMPL-X pelvis)
    ("loss", _F),  # the camera solver's final loss
    ("mask_size", pa.list_(pa.int32())),  # [H, W]; [-1, -1] without a mask
    ("mask_cnts", pa.binary()),  # COCO RLE counts; b"" without a mask
    ("smplx_global_orient", _VEC),  # (3) axis-angle, camera frame
    ("smplx_body_pose", _VEC),  # (63) 21 SMPL-X body joints, axis-angle
    ("smplx_betas", _VEC),  # (10)
    ("smplx_valid", pa.bool_()),  # accepted and fitted
    ("accepted", pa.bool_()),
    ("reject_reasons", pa.list_(pa.string())),
    ("mask_iou", _F),
    ("fit_score", _F),
    ("shard", pa.string()),
    ("key", pa.string()),
    ("source_url", pa.string()),
])


def _rows_of(flat, width: int) -> list[list[float]] | None:
    return None if flat is None else np.asarray(flat, np.float32).reshape(-1, width).tolist()


def person_row(sel: Selected, dataset: str) -> dict[str, Any]:
    """One SAM 3D Body-style row for a selected person."""
    row = sel.row
    x0, y0, x1, y1 = (float(v) for v in row["bbox_xyxy"])
    fitted = all(row.get(k) is not None for k in ("betas", "global_orient", "body_pose"))
    has_camera = row.get("focal_px") is not None
    f, cx, cy = (row.get(k) for k in ("focal_px", "cx", "cy"))
    rle = row.get("mask_rle")
    return {
        "dataset": dataset, "image": row["key"], "person_id": int(row["person_index"]),
        "subject_idx": sel.subject_idx, "subject_cnt": sel.subject_cnt,
        "image_width": row["image_width"], "image_height": row["image_height"],
        "bbox": [x0, y0, x1, y1], "bbox_format": "xyxy", "bbox_score": row["det_score"],
        "bbox_center": [(x0 + x1) / 2, (y0 + y1) / 2], "bbox_scale": [x1 - x0, y1 - y0],
        "keypoints_2d": _rows_of(row.get("keypoints_2d"), 3), "keypoints_3d": _rows_of(row.get("keypoints_3d"), 3),
        "keypoint_format": "mediapipe33",
        "cam_int": [[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]] if has_camera else None,
        "global_trans": row.get("transl"), "loss": row.get("fit_loss"),
        "mask_size": list(rle["size"]) if rle else [-1, -1],
        "mask_cnts": rle["counts"].encode("ascii") if rle else b"",
        "smplx_global_orient": row.get("global_orient"), "smplx_body_pose": row.get("body_pose"),
        "smplx_betas": row.get("betas"), "smplx_valid": bool(fitted and row["accepted"]),
        "accepted": bool(row["accepted"]), "reject_reasons": list(row["reject_reasons"] or []),
        "mask_iou": row.get("mask_iou"), "fit_score": row.get("fit_score"),
        "shard": row["shard"], "key": row["key"], "source_url": sel.url,
    }


def table(persons: list[Selected], dataset: str) -> pa.Table:
    return pa.Table.from_pylist([person_row(p, dataset) for p in persons], schema=SCHEMA)
