"""Measure MediaPipe's 2D landmark error against the true joints of synthetic clothed renders.

The camera solver takes 2D keypoints: MediaPipe's landmarks paired with SMPL-X joints
(``poselabel/models/body/keypoints.py``: ``MP_TO_SMPLX``, the ears' midpoint for the head).
The benchmarks simulate them as the true joints projected by the true camera plus Gaussian
noise (``benchmarks/quality_inputs.py`` ``KEYPOINT_NOISE``); this script measures that noise.

Renders ``--num`` clothed samples (``poselabel.synth.writer.make_sample``, world
``clothed``: the images of ``poselabel synth --world clothed``), and gets each person's
``keypoints_2d`` (33 × ``[u, v, visibility]`` px) the two ways the pipeline does:

- ``detector``: the default pipeline, the MediaPipe detector (``models/detect``: BlazePose
  detection on tiles, then Pose on each candidate's region) followed by the MediaPipe
  segment stage, which keeps the detector's masks and landmarks;
- ``segmenter``: a box detector's boxes (here the true clothed boxes ``segmenter_bbox_xyxy``,
  a perfect box detector) and the MediaPipe segment stage (``models/segment``: Pose on a
  square crop of 1.25 × the box's longer side), whose landmarks replace the detector's;
  the pipeline's path with ``detect.backend=ultralytics``.

A found person is matched to the true person whose clothed box has the highest IoU with its
box (≥ ``MATCH_IOU``). Each paired landmark's ``(u, v)`` is compared with the true joint
projected by the true camera, on the joints that project inside the image, in units of the
longer side of the person's true **body-mask** box (``bbox_xyxy``). Per joint group the report
gives the median |error| and RMS error per coordinate (all points), the fraction of gross
outliers (distance > ``OUTLIER`` of the side), the per-joint **bias** (mean error of the
inliers, in image axes and, for left/right joints, along the outward line from the partner
joint: SMPL-X joints are not MediaPipe's anatomical points) and the **spread**: the RMS per
coordinate of the inliers' errors once each joint's bias is removed, the noise. Errors are
split by MediaPipe's visibility (> 0.5: the points the camera solver weights, ``body.
keypoints.body_points_for_landmarks``) and ``lr_swapped`` counts persons whose landmarks fit
better with left and right exchanged.

Usage (about 2.5 minutes on one core, most of it rendering)::

    .venv/bin/python benchmarks/keypoint_noise.py [--num 160] [--seed 2026]

Prints a table and writes ``benchmarks/results/keypoint_noise_2026-12-04.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poselabel.models.body.keypoints import MP_EARS, MP_TO_SMPLX, SMPLX_HEAD  # noqa: E402
from poselabel.models.masks import box_iou, mask_bbox  # noqa: E402

MATCH_IOU = 0.5
OUTLIER = 0.2  # gross outlier: farther than 20 % of the box's longer side
VISIBLE = 0.5  # the camera solver weights landmarks above this visibility
PATHS = ("detector", "segmenter")
# The paired points: MP_TO_SMPLX's rows in order (left, right per group), then the head.
NAMES = ("l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip",
         "l_knee", "r_knee", "l_ankle", "r_ankle", "l_foot", "r_foot", "head")
GROUPS = {"head": (14,), "shoulders": (0, 1), "elbows": (2, 3), "wrists": (4, 5), "hips": (6, 7),
          "knees": (8, 9), "ankles": (10, 11), "feet": (12, 13)}
PARTNER = {k: k ^ 1 for k in range(14)}  # the same joint on the other side
SMPLX_IDS = [j for _, j in MP_TO_SMPLX] + [SMPLX_HEAD]


def landmark_points(kp2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's (33, 3) ``[u, v, visibility]`` -> the paired points' ``(uv (15, 2), visibility (15,))``
    in ``NAMES`` order: the head is the ears' midpoint with the lower ear visibility (as the solver pairs them)."""
    rows = [m for m, _ in MP_TO_SMPLX]
    uv = np.concatenate([kp2d[rows, :2], kp2d[list(MP_EARS), :2].mean(0, keepdims=True)])
    vis = np.concatenate([kp2d[rows, 2], kp2d[list(MP_EARS), 2].min(keepdims=True)])
    return uv.astype(np.float64), vis.astype(np.float64)


def true_points(body, persons: list[dict], camera: dict) -> tuple[np.ndarray, np.ndarray]:
    """The true paired joints of the json ``persons`` projected by ``camera``:
    ``(uv (P, 15, 2) px, depth (P, 15) m)``."""
    import torch

    t = lambda key: torch.tensor(np.array([p[key] for p in persons]), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        joints = body(t("betas"), t("global_orient"), t("body_pose"), t("transl")).joints[:, SMPLX_IDS].double().numpy()
    z = joints[..., 2]
    pp = np.array([camera["cx"], camera["cy"]])
    uv = camera["focal_px"] * joints[..., :2] / np.where(z > 1e-6, z, 1.0)[..., None] + pp
    return uv, z


def _result_box(mask: np.ndarray, kp2d: np.ndarray) -> np.ndarray | None:
    """Box of a segment result: its mask, else its visible landmarks (xyxy px)."""
    box = mask_bbox(mask)
    if box is None:
        seen = kp2d[kp2d[:, 2] > VISIBLE, :2]
        box = None if not len(seen) else np.concatenate([seen.min(0), seen.max(0)])
    return box


def found_people(image: np.ndarray, meta: dict, stages: dict) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Per path, the ``(box (4,), keypoints_2d (33, 3))`` of every person MediaPipe finds in ``image``
    (H, W, 3) RGB, through the pipeline's own backends in ``stages`` (``make_stages``)."""
    from poselabel.records import ImageRecord

    out = {}
    record = ImageRecord(key="", shard="", url="", width=image.shape[1], height=image.shape[0], image=image, meta=meta)
    record = stages["segment"].apply(stages["detect"].apply(record))
    out["detector"] = [(p.bbox_xyxy, p.keypoints_2d) for p in record.persons if p.keypoints_2d is not None]
    boxes = [p["segmenter_bbox_xyxy"] or p["bbox_xyxy"] for p in meta["persons"]]
    found = []
    for res in stages["segmenter"].segment(image, {}, np.asarray(boxes, np.float64)):
        if res is not None and res[1] is not None:
            box = _result_box(res[0], res[1])
            if box is not None:
                found.append((np.asarray(box, np.float64), res[1]))
    out["segmenter"] = found
    return out


def make_stages() -> dict:
    """The pipeline's default detect and segment backends, and its MediaPipe segmenter (for boxes)."""
    from poselabel.config import RunConfig
    from poselabel.models.detect.backend import make_backend as detect_backend
    from poselabel.models.segment.backend import make_backend as segment_backend
    from poselabel.models.segment.segmenters import make_segmenter

    cfg = RunConfig()
    return {"detect": detect_backend(cfg), "segment": segment_backend(cfg), "segmenter": make_segmenter(cfg.segment)}


def measure_image(image: np.ndarray, meta: dict, body, stages: dict, key: str = "") -> list[dict]:
    """One record per (path, found and matched person): its paired points' errors.

    Each record: ``path``, ``key``, ``person`` (json index), ``iou``, ``side`` px (longer side of
    the true body-mask box), ``err`` (15, 2) (landmark − true joint) / side, ``vis`` (15,),
    ``valid`` (15,) (true joint in front of the camera and inside the image), ``outward`` (15, 2)
    unit vector from the partner's true point (zeros for the head or when the two nearly meet),
    ``lr_swapped``: the landmarks fit the true points better with left and right exchanged."""
    persons = meta["persons"]
    truth, depth = true_points(body, persons, meta["camera"])
    gt_boxes = np.asarray([p["segmenter_bbox_xyxy"] or p["bbox_xyxy"] for p in persons], np.float64)
    records = []
    for path, found in found_people(image, meta, stages).items():
        taken: set[int] = set()
        for box, kp2d in found:
            ious = box_iou(box, gt_boxes)[0]
            ious[list(taken)] = -1.0
            i = int(np.argmax(ious))
            if ious[i] < MATCH_IOU:
                continue
            taken.add(i)
            x0, y0, x1, y1 = persons[i]["bbox_xyxy"]
            side = max(float(x1 - x0), float(y1 - y0), 1.0)
            uv, vis = landmark_points(np.asarray(kp2d, np.float64))
            gt = truth[i]
            valid = ((depth[i] > 1e-6) & (gt[:, 0] >= 0) & (gt[:, 0] < meta["width"])
                     & (gt[:, 1] >= 0) & (gt[:, 1] < meta["height"]))
            outward = np.zeros((15, 2))
            for k, q in PARTNER.items():
                d = gt[k] - gt[q]
                if np.linalg.norm(d) > 0.02 * side:
                    outward[k] = d / np.linalg.norm(d)
            swap = [PARTNER.get(k, k) for k in range(15)]
            both = valid & valid[swap]
            direct = np.linalg.norm(uv - gt, axis=1)[both].sum()
            swapped = np.linalg.norm(uv[swap] - gt, axis=1)[both].sum()
            records.append({"path": path, "key": key, "person": i, "iou": float(ious[i]), "side": side,
                            "err": (uv - gt) / side, "vis": vis, "valid": valid, "outward": outward,
                            "lr_swapped": bool(both.sum() >= 4 and swapped < 0.5 * direct)})
    return records


def _stats(err: np.ndarray, bias: np.ndarray) -> dict:
    """Figures of errors ``err`` (n, 2) with per-point joint biases ``bias`` (n, 2), fractions of the side."""
    n = len(err)
    if n == 0:
        return {"n": 0}
    dist = np.linalg.norm(err, axis=1)
    inlier = dist <= OUTLIER
    resid = (err - bias)[inlier]
    return {"n": int(n), "median_abs": float(np.median(np.abs(err))), "rms": float(np.sqrt(np.mean(err ** 2))),
            "outliers": float(1.0 - inlier.mean()),
            "spread_rms": float(np.sqrt(np.mean(resid ** 2))) if len(resid) else float("nan"),
            "spread_sigma": float(1.4826 * np.median(np.abs(resid))) if len(resid) else float("nan")}


def _failed(record: dict) -> bool:
    """A whole-person failure: more than half of its seen, visible points are gross outliers."""
    seen = record["valid"] & (record["vis"] > VISIBLE)
    far = np.linalg.norm(record["err"], axis=1) > OUTLIER
    return bool(seen.any() and far[seen].mean() > 0.5)


def summarise(records: list[dict]) -> dict:
    """Per path: per joint bias, per group (and ``all``) figures of every valid point, by visibility
    (``visible``: the points the solver weights, visibility > ``VISIBLE``), and the number of
    persons whose landmarks failed as a whole (``failed_persons``)."""
    out = {}
    for path in PATHS:
        recs = [r for r in records if r["path"] == path]
        entry = {"persons": len(recs), "lr_swapped": int(sum(r["lr_swapped"] for r in recs)),
                 "failed_persons": int(sum(_failed(r) for r in recs))}
        if not recs:
            out[path] = entry
            continue
        err = np.stack([r["err"] for r in recs])  # (P, 15, 2)
        vis = np.stack([r["vis"] for r in recs])
        valid = np.stack([r["valid"] for r in recs])
        outward = np.stack([r["outward"] for r in recs])
        inlier = valid & (np.linalg.norm(err, axis=2) <= OUTLIER)
        bias = np.zeros((15, 2))
        entry["bias"] = {}
        for k, name in enumerate(NAMES):
            m = inlier[:, k]
            if m.any():
                bias[k] = err[m, k].mean(0)
            has_out = m & (np.abs(outward[:, k]).sum(1) > 0)
            entry["bias"][name] = {"n": int(m.sum()), "u": float(bias[k, 0]) if m.any() else float("nan"),
                                   "v": float(bias[k, 1]) if m.any() else float("nan"),
                                   "outward": float((err[has_out, k] * outward[has_out, k]).sum(1).mean())
                                   if has_out.any() else float("nan")}
        biases = np.broadcast_to(bias, err.shape)
        for label, keep in (("all", valid), ("visible", valid & (vis > VISIBLE)), ("hidden", valid & (vis <= VISIBLE))):
            groups = {g: _stats(err[:, ks][keep[:, ks]], biases[:, ks][keep[:, ks]]) for g, ks in GROUPS.items()}
            groups["all"] = _stats(err[keep], biases[keep])
            entry[label] = groups
        out[path] = entry
    return out


def _mean(values) -> float:
    """Mean of the finite ``values``; NaN when none is."""
    finite = [v for v in values if v == v]
    return float(np.mean(finite)) if finite else float("nan")


def format_table(summary: dict) -> str:
    """One block per path: a row per joint group, figures as % of the body box's longer side."""
    lines = []
    for path, e in summary.items():
        lines.append(f"\n[{path}] {e['persons']} persons matched, {e['lr_swapped']} with left/right swapped, "
                     f"{e['failed_persons']} failed (over half their visible points > {OUTLIER:.0%} off)")
        if not e["persons"]:
            continue
        lines.append(f"{'group':10s}{'n':>5s}{'med|e|':>8s}{'rms':>7s}{'out>20%':>8s}{'spread':>8s}"
                     f"{'n vis':>7s}{'med vis':>8s}{'out vis':>8s}{'spr vis':>8s}{'n hid':>7s}{'med hid':>8s}{'out hid':>8s}"
                     f"{'bias u':>8s}{'bias v':>8s}{'outwd':>7s}")
        for g in (*GROUPS, "all"):
            a, v, h = e["all"][g], e["visible"][g], e["hidden"][g]
            names = [NAMES[k] for k in GROUPS.get(g, ())]
            b = [e["bias"][nm] for nm in names]
            pct = lambda x: f"{100 * x:8.1f}" if x == x else f"{'-':>8s}"  # noqa: E731
            bias_cols = ("".join(pct(_mean([x[c] for x in b])) for c in ("u", "v"))
                         + pct(_mean([x["outward"] for x in b]))[1:]) if b else ""
            lines.append(f"{g:10s}{a.get('n', 0):5d}" + (pct(a["median_abs"]) + pct(a["rms"])[1:] + pct(a["outliers"])
                                                         + pct(a["spread_rms"]) if a["n"] else "")
                         + f"{v.get('n', 0):7d}"
                         + (pct(v["median_abs"]) + pct(v["outliers"]) + pct(v["spread_rms"]) if v["n"] else " " * 24)
                         + f"{h.get('n', 0):7d}" + (pct(h["median_abs"]) + pct(h["outliers"]) if h["n"] else " " * 16)
                         + bias_cols)
    lines.append("\nall figures in % of the true body-mask box's longer side, per coordinate; spread: RMS of the "
                 "inliers after each joint's bias; bias: inliers' mean (u right, v down, outwd: away from the "
                 "partner joint; a group's left and right averaged)")
    return "\n".join(lines)


def run(indices, seed: int, body=None, stages=None) -> list[dict]:
    """Render clothed samples ``indices`` of ``seed`` and measure every found person (``measure_image``)."""
    import io

    from PIL import Image

    from poselabel.models.body.model import BodyModel
    from poselabel.synth.writer import make_sample

    body = body or BodyModel()
    stages = stages or make_stages()
    records = []
    for index in indices:
        s = make_sample(body, index, seed, "procedural", 3, "clothed")
        image = np.asarray(Image.open(io.BytesIO(s.jpg)).convert("RGB"))
        records += measure_image(image, s.meta, body, stages, key=s.key)
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=160, help="clothed images rendered")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/keypoint_noise_2026-12-04.json"))
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    records = run(range(args.num), args.seed)
    summary = summarise(records)
    seconds = time.perf_counter() - t0
    print(f"{args.num} clothed images (seed {args.seed}) in {seconds:.0f} s")
    print(format_table(summary))
    people = [{"path": r["path"], "key": r["key"], "person": r["person"], "iou": r["iou"], "side": r["side"],
               "lr_swapped": r["lr_swapped"],
               "points": {n: {"err": [float(x) for x in r["err"][k]], "vis": float(r["vis"][k]),
                              "valid": bool(r["valid"][k])}
                          for k, n in enumerate(NAMES)}} for r in records]
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"images": args.num, "seed": args.seed, "seconds": seconds,
                                           "match_iou": MATCH_IOU, "outlier": OUTLIER, "visible": VISIBLE,
                                           "summary": summary, "people": people}, indent=1))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
