"""``--format 4dhumans``: one training sample per person in 4D-Humans' (HMR2.0's) tar layout.

HMR2.0 reads its training tars with ``ImageDataset.load_tars_as_webdataset``
(4D-Humans, ``hmr2/datasets/image_dataset.py``): per sample a ``jpg`` and a ``data.pyd`` holding a
list of per-person dicts (``center``, ``scale`` = box (w, h) / 200, ``keypoints_2d`` (44, 3),
``keypoints_3d`` (44, 4), ``body_pose`` (72: global orient + 23 SMPL joints), ``betas`` (10),
``has_body_pose``, ``has_betas``, ``extra_info`` with ``fitting_loss``), and optionally a
``detection.npz`` whose ``masks[extra_info['detection_npz_idx']]`` is the person's mask. Here each
sample is one person: ``jpg`` is the person's crop (``crop.py``) and every 2D label is in the crop's
pixels, so HMR2's loader crops it again around ``center`` / ``scale`` as it does full images.

Departures (docs/export.md): the body is SMPL-X, not SMPL (``betas`` are SMPL-X's; ``body_pose``
packs SMPL-X's 21 body joints then 6 zeros where SMPL has its two hand joints; ``smplx_params`` holds
them unpacked); keypoints are MediaPipe's, mapped to OpenPose BODY_25 (``keypoints.py``); the
3D keypoints are not labelled (confidence 0); ``has_body_pose`` / ``has_betas`` are 1 only for
accepted, fitted persons. Extra fields carry the camera, the verdict and the source identity.
A ``json`` member holds the same labels without pickle.
"""
from __future__ import annotations

import io
import json
import pickle
import zipfile
from typing import Any

import numpy as np
from PIL import Image

from poselabel.export.crop import CropWindow, crop_image, crop_mask, window_for_box
from poselabel.export.keypoints import NUM_HMR2_KEYPOINTS, hmr2_keypoints_2d
from poselabel.export.source import Selected
from poselabel.models.masks import decode_rle

SMPL_BODY_POSE = 72  # HMR2's body_pose: global orient (3) + 23 SMPL joints (69)
PICKLE_PROTOCOL = 4
MEMBERS = ("jpg", "data.pyd", "detection.npz", "json")  # the order in every sample


def sample_key(row: dict[str, Any]) -> str:
    """The sample's ``__key__``: ``<shard>/<key>_p<person_index>`` (no dots, WebDataset splits there)."""
    shard, key = (str(row[k]).replace(".", "_") for k in ("shard", "key"))
    return f"{shard}/{key}_p{int(row['person_index'])}"


def _vec(row: dict, name: str, n: int) -> np.ndarray | None:
    v = row.get(name)
    return None if v is None else np.asarray(v, np.float32).reshape(n)


def labels(sel: Selected, window: CropWindow) -> dict[str, Any]:
    """The person's HMR2 data dict (numpy arrays; 2D quantities in crop pixels)."""
    row = sel.row
    x0, y0, x1, y1 = (float(v) for v in row["bbox_xyxy"])
    box_crop = np.concatenate([window.to_crop([x0, y0]), window.to_crop([x1, y1])]).astype(np.float32)
    mp = _vec(row, "keypoints_2d", 99)
    mp_crop = None
    if mp is not None:
        mp_crop = mp.reshape(33, 3).copy()
        mp_crop[:, :2] = window.to_crop(mp_crop[:, :2])
    betas, orient, pose = (_vec(row, n, k) for n, k in (("betas", 10), ("global_orient", 3), ("body_pose", 63)))
    fitted = betas is not None and orient is not None and pose is not None
    trusted = np.array(float(fitted and bool(row["accepted"])), np.float32)
    body_pose = np.zeros(SMPL_BODY_POSE, np.float32)
    if fitted:
        body_pose[:3], body_pose[3:66] = orient, pose
    has_camera = row.get("focal_px") is not None and row.get("transl") is not None
    losses = {k: float(row[c]) for k, c in (("silhouette_loss", "fit_loss"),) if row.get(c) is not None}
    return {
        # HMR2.0's fields
        "center": ((box_crop[:2] + box_crop[2:]) / 2).astype(np.float32),
        "scale": ((box_crop[2:] - box_crop[:2]) / 200.0).astype(np.float32),
        "keypoints_2d": hmr2_keypoints_2d(mp_crop),
        "keypoints_3d": np.zeros((NUM_HMR2_KEYPOINTS, 4), np.float32),
        "body_pose": body_pose,
        "betas": betas if fitted else np.zeros(10, np.float32),
        "has_body_pose": trusted,
        "has_betas": trusted.copy(),
        "extra_info": {"fitting_loss": np.array(losses, dtype=object), "detection_npz_idx": 0},
        # poselabel's additions
        "body_model": "smplx",
        "smplx_params": {"global_orient": orient if fitted else np.zeros(3, np.float32),
                         "body_pose": pose if fitted else np.zeros(63, np.float32),
                         "betas": betas if fitted else np.zeros(10, np.float32)},
        "has_smplx_params": np.array(float(fitted), np.float32),
        "transl": _vec(row, "transl", 3) if has_camera else np.zeros(3, np.float32),
        "cam_int": (window.intrinsics(row["focal_px"], row["cx"], row["cy"]) if has_camera
                    else np.zeros((3, 3))).astype(np.float32),
        "has_camera": np.array(float(has_camera), np.float32),
        "bbox_xyxy": box_crop,
        "mediapipe_keypoints_2d": mp_crop if mp_crop is not None else np.zeros((33, 3), np.float32),
        "orig_bbox_xyxy": np.array([x0, y0, x1, y1], np.float32),
        "crop_box_xyxy": window.box_xyxy.astype(np.float32),
        "orig_image_size": np.array([row["image_height"], row["image_width"]], np.int32),
        "accepted": bool(row["accepted"]),
        "reject_reasons": list(row["reject_reasons"] or []),
        "det_score": float(row["det_score"]),
        "mask_iou": None if row.get("mask_iou") is None else float(row["mask_iou"]),
        "fit_score": None if row.get("fit_score") is None else float(row["fit_score"]),
        "source": {"shard": row["shard"], "key": row["key"], "person_index": int(row["person_index"]), "url": sel.url},
    }


def to_jsonable(value: Any) -> Any:
    """numpy arrays (0-d object arrays included) -> lists / scalars, recursively."""
    if isinstance(value, np.ndarray):
        return to_jsonable(value.item()) if value.dtype == object else value.tolist()
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An ``.npz`` (what ``np.load`` reads, no pickle) with fixed zip timestamps: the same bytes every time."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    return buf.getvalue()


def jpeg_bytes(rgb: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def person_sample(sel: Selected, rgb: np.ndarray, size: int, context: float,
                  jpeg_quality: int) -> tuple[str, dict[str, bytes]]:
    """``(key, {member: bytes})`` for one person of the ``(H, W, 3)`` uint8 image ``rgb``."""
    window = window_for_box(sel.row["bbox_xyxy"], size, context)
    data = labels(sel, window)
    rle = sel.row.get("mask_rle")
    mask = crop_mask(decode_rle(rle), window) if rle else np.ones((size, size), bool)
    members = {
        "jpg": jpeg_bytes(crop_image(rgb, window), jpeg_quality),
        "data.pyd": pickle.dumps([data], protocol=PICKLE_PROTOCOL),
        "detection.npz": npz_bytes({"masks": mask[None]}),
        "json": json.dumps(to_jsonable(data), sort_keys=True).encode(),
    }
    return sample_key(sel.row), members
