"""Inputs of the failure benchmark (``quality_failures.py``): ground-truth persons, the
injected errors, and simulated detector keypoints.

``load_persons`` reads synthetic GT shards; ``inject`` gives a person's solver inputs with one
error (``INJECTIONS``); ``unlisted`` the pixels of people too small to be listed;
``detect_keypoints`` simulates a landmark detector's keypoints per person (the solver's
keypoint term and the accept rule's keypoint check read the same ones);
``attach_keypoints`` / ``add_keypoints`` give saved or fresh fits their ``keypoint_error``
and ``keypoint_count``.
"""
from __future__ import annotations

import json
import math
import os
import tempfile

import numpy as np

from poselabel.synth.detector_noise import KEYPOINT_NOISE, KEYPOINT_OUTLIERS, detector_keypoints

INJECTIONS = ("tz_x0.6", "tz_x1.5", "pose_noise", "mask_swap", "mask_shift", "mask_erode", "box_shift")
MIN_MASK_PX = 64
# Simulated keypoint detector (synth/detector_noise.py): the spread and gross outliers of
# MediaPipe's visible landmarks measured on clothed renders (benchmarks/keypoint_noise.py,
# docs/quality.md "Keypoint noise"). Whole-person failures (5 of 23 found people) and the
# per-joint bias are not simulated.


def load_persons(gt_dir: str, mask: str = "auto"):
    """GT persons of every sample: dicts with image size, camera, params, masks (bool (H, W)).

    ``mask`` (``ground_truth.person_masks``): the mask fitted, ``auto`` the segmenter-like
    ``segmask.png`` of clothed-world shards when present, else the body silhouette; with the
    segmenter mask the person's box is its ``segmenter_bbox_xyxy`` (what a detector boxes:
    clothes included). Each dict's ``mask_kind`` says which mask it got."""
    from poselabel.io.shards import iter_samples, list_shards
    from poselabel.models.ground_truth import person_masks

    persons = []
    for shard in list_shards(os.path.join(gt_dir, "synth-*.tar")):
        for s in iter_samples(shard):
            meta = json.loads(s.members["json"])
            masks, kind = person_masks(s.members, meta, mask)
            union = np.logical_or.reduce(masks)
            for i, p in enumerate(meta["persons"]):
                m = masks[i]
                if m.sum() < MIN_MASK_PX:
                    continue
                box = p["segmenter_bbox_xyxy"] if kind == "segmenter" else p["bbox_xyxy"]
                persons.append({"key": f"{s.shard}/{s.key}", "index": i, "W": meta["width"], "H": meta["height"],
                                "focal": meta["camera"]["focal_px"], "cx": meta["camera"]["cx"],
                                "cy": meta["camera"]["cy"], "bbox": np.asarray(box, np.float64),
                                "transl": np.asarray(p["transl"]), "global_orient": np.asarray(p["global_orient"]),
                                "body_pose": np.asarray(p["body_pose"]), "betas": np.asarray(p["betas"]),
                                "mask": m, "others": union & ~m, "body_model": meta["body_model"],
                                "mask_kind": kind})
    return persons


def _shift(mask: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    src = mask[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def inject(p: dict, kind: str, rng: np.random.Generator, pool: list[dict]) -> dict:
    """The solver inputs of person ``p`` with error ``kind``: tz, body_pose, mask, bbox."""
    from scipy import ndimage

    v = {"tz": float(p["transl"][2]), "body_pose": p["body_pose"].copy(), "mask": p["mask"], "bbox": p["bbox"]}
    x0, y0, x1, y1 = p["bbox"]
    bw, bh = x1 - x0, y1 - y0
    angle = rng.uniform(0, 2 * math.pi)
    if kind == "tz_x0.6":
        v["tz"] *= 0.6
    elif kind == "tz_x1.5":
        v["tz"] *= 1.5
    elif kind == "pose_noise":
        v["body_pose"] = p["body_pose"] + rng.normal(0.0, 0.2, 63)
    elif kind == "mask_swap":
        others = [q for q in pool if q["key"] != p["key"]]
        q = others[int(rng.integers(len(others)))]
        m = np.zeros_like(p["mask"])
        h, w = min(m.shape[0], q["mask"].shape[0]), min(m.shape[1], q["mask"].shape[1])
        m[:h, :w] = q["mask"][:h, :w]
        v["mask"] = m if m.sum() >= MIN_MASK_PX else _shift(p["mask"], int(bw * 0.5), 0)
    elif kind == "mask_shift":
        v["mask"] = _shift(p["mask"], int(round(0.25 * bw * math.cos(angle))), int(round(0.25 * bh * math.sin(angle))))
    elif kind == "mask_erode":
        k = max(1, int(round(0.08 * min(bw, bh))))
        v["mask"] = ndimage.binary_erosion(p["mask"], iterations=k)
    elif kind == "box_shift":
        dx, dy = 0.3 * bw * math.cos(angle), 0.3 * bh * math.sin(angle)
        box = np.array([x0 + dx, y0 + dy, x1 + dx, y1 + dy])
        box = np.clip(box, 0, [p["W"], p["H"], p["W"], p["H"]])
        m = np.zeros_like(p["mask"])
        bx0, by0, bx1, by1 = int(math.floor(box[0])), int(math.floor(box[1])), int(math.ceil(box[2])), int(math.ceil(box[3]))
        m[by0:by1, bx0:bx1] = p["mask"][by0:by1, bx0:bx1]
        v["mask"], v["bbox"] = m, box
    if v["mask"].sum() < MIN_MASK_PX:  # nothing left to fit: keep the error but on a sliver
        v["mask"] = p["mask"] & _shift(p["mask"], 2, 2)
    return v  # mask_* keep the GT box: the detector was right, the segmentation wrong


def unlisted(p: dict, persons: list[dict]) -> np.ndarray:
    """Pixels of ``p``'s image's people too small to be listed: possible occluders, never evidence."""
    out = p["others"].copy()
    for q in persons:
        if q["key"] == p["key"]:
            out &= ~q["mask"]
    return out


def detect_keypoints(persons: list[dict], seed: int, sigma: float = KEYPOINT_NOISE,
                     outliers: float = KEYPOINT_OUTLIERS) -> None:
    """Give each person what a landmark detector would find: ``kp_true`` (K, 2) px, the true
    body's joints that MediaPipe's landmarks stand for (``body.keypoints.MP_TO_SMPLX`` and the
    head) projected by the true camera; ``kp_uv`` (K, 2) px, those detected
    (``synth.detector_noise.detector_keypoints``: N(0, ``sigma`` × the box's longer side), a
    share ``outliers`` of gross outliers); ``kp_seen`` (K,) bool, in front of the camera and in
    the image. Independent of the injected mask, box and Tz errors, as a detector's output
    would be. ``body_model_path`` must be set on the persons."""
    import torch

    from poselabel.models.body.keypoints import KEYPOINT_JOINTS
    from poselabel.models.body.model import BodyModel

    ids = list(KEYPOINT_JOINTS)
    body = BodyModel(persons[0]["body_model_path"])
    t = lambda rows: torch.tensor(np.stack(rows), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        true = body(t([p["betas"] for p in persons]), t([p["global_orient"] for p in persons]),
                    t([p["body_pose"] for p in persons]), t([p["transl"] for p in persons])).joints[:, ids].double().numpy()
    focal = np.array([p["focal"] for p in persons])[:, None, None]
    uv = focal * true[..., :2] / true[..., 2:] + np.array([[p["cx"], p["cy"]] for p in persons])[:, None]
    side = np.array([max(p["bbox"][2] - p["bbox"][0], p["bbox"][3] - p["bbox"][1]) for p in persons])
    size = np.array([[p["W"], p["H"]] for p in persons], np.float64)
    detected, seen = detector_keypoints(uv, true[..., 2], side, size, np.random.default_rng([seed, 1]), sigma, outliers)
    for p, u, d, s in zip(persons, uv, detected, seen):
        p["kp_true"], p["kp_uv"], p["kp_seen"] = u, d, s


def attach_keypoints(records: list[dict], persons: list[dict]) -> None:
    """Set each fit's ``keypoint_error`` and ``keypoint_count`` (``quality.keypoint_residual``)
    against its person's detected keypoints (``detect_keypoints``), and ``joint_error_2d``: the
    same measure against the noise-free keypoints (the fit's true 2D error, for labelling).
    The fitted joints are the solver's inputs (betas, possibly noised body_pose, true global
    orientation) placed at the solved translation."""
    import torch

    from poselabel.models.body.keypoints import KEYPOINT_JOINTS, keypoint_error, keypoint_residual
    from poselabel.models.body.model import BodyModel
    from poselabel.models.quality.facts import LEGACY_KEYPOINTS

    ids = list(KEYPOINT_JOINTS)
    by_id = {(p["key"], p["index"]): p for p in persons}
    ps = [by_id[(r["key"], r["index"])] for r in records]
    body = BodyModel(persons[0]["body_model_path"])
    t = lambda rows: torch.tensor(np.stack(rows), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        fitted = body(t([np.asarray(r["betas"]) for r in records]), t([p["global_orient"] for p in ps]),
                      t([np.asarray(r["body_pose"]) for r in records])).joints[:, ids].double().numpy()
    for r, p, j in zip(records, ps, fitted):
        seen = p["kp_seen"].astype(float)
        ok = not r["camera_reject"] and np.isfinite(r["transl"]).all()
        r["keypoint_error"], r["keypoint_count"] = (
            keypoint_residual(j + np.asarray(r["transl"]), p["kp_uv"], seen, r["focal"], r["W"] / 2, r["H"] / 2,
                              r["bbox"]) if ok else (None, 0))
        # the same, against the noise-free keypoints: the fit's true 2D joint error (a label: kept
        # on at least LEGACY_KEYPOINTS keypoints, as it was defined)
        r["joint_error_2d"] = (keypoint_error(j + np.asarray(r["transl"]), p["kp_true"], seen, r["focal"],
                                              r["W"] / 2, r["H"] / 2, r["bbox"], min_points=LEGACY_KEYPOINTS)
                               if ok else None)


def add_keypoints(saved: dict, sigma: float, outliers: float = KEYPOINT_OUTLIERS) -> None:
    """``attach_keypoints`` on a saved run: its GT shards made again from its own arguments."""
    from poselabel.synth.writer import write_synthetic_shards

    num, seed = saved["args"]["num"], saved["args"]["seed"]
    world, mask = saved["args"].get("world", "naked"), saved["args"].get("mask", "auto")
    with tempfile.TemporaryDirectory() as gt_dir:
        write_synthetic_shards(gt_dir, num=num, seed=seed, max_persons=3, shard_size=num, world=world)
        persons = load_persons(gt_dir, mask)
        for p in persons:
            p["body_model_path"] = os.path.join(gt_dir, p["body_model"])
        detect_keypoints(persons, seed, sigma, outliers)
        attach_keypoints(saved["fits"], persons)
    saved["keypoint_noise"], saved["keypoint_outliers"] = sigma, outliers
