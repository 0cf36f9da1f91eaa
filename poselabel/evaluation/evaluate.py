"""A labelling output's persons against ground-truth images (``poselabel eval``; docs/eval.md).

Per image labelled by the run: the predicted people (persons-table rows) are matched to the
true people by mask IoU (``match.match_masks``; the prediction's ``mask_rle``, the mask the
camera was fitted to, else its box filled; the truth's ``ground_truth.person_masks``: by
default, in clothed worlds, the larger of the IoUs with the segmenter-like mask and with the
visible body silhouette, since a segmenter's mask resembles the first and an exact one the
second, and merged segmenter-like masks of two people are told apart by the bodies).
Matched people get BLADE's errors
(``metrics.label_errors``); unmatched true people are misses, unmatched predictions false
positives. A matched label is **good** when ``GoodLabel`` says so; the accept rule's
precision and recall are those of the table's ``accepted`` against it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from poselabel.evaluation import MATCH_MASKS
from poselabel.evaluation.match import match_masks
from poselabel.evaluation.metrics import BODY_METRICS, CAMERA_METRICS, Labels, label_errors, summarise
from poselabel.models.body.model import BodyModel
from poselabel.models.ground_truth import person_masks
from poselabel.models.masks import decode_rle

# metric -> (JSON key, table label, factor from metrics' units): E_f and mIoU in %, lengths in m / mm
DISPLAY = {
    "E_f": ("E_f_pct", "E_f %", 100.0), "E_Tz": ("E_Tz_m", "E_Tz m", 1.0),
    "E_inv_Tz": ("E_inv_Tz_per_m", "E_1/Tz 1/m", 1.0), "E_Txy": ("E_Txy_m", "E_Txy m", 1.0),
    "PVE": ("PVE_mm", "PVE mm", 1.0), "MPJPE": ("MPJPE_mm", "MPJPE mm", 1.0),
    "PA_MPJPE": ("PA_MPJPE_mm", "PA-MPJPE mm", 1.0), "mIoU": ("mIoU_pct", "mIoU %", 100.0),
    "PVE_cam": ("PVE_cam_mm", "PVE_cam mm", 1.0),
}
ORDER = CAMERA_METRICS + tuple(m for m in BODY_METRICS if m != "PVE_cam") + ("PVE_cam",)


@dataclass(frozen=True)
class GTImage:
    """One ground-truth sample: ``camera`` ``(focal, cx, cy)`` px; ``persons`` the json's
    people (``betas``, ``global_orient``, ``body_pose``, ``transl`` m); per person (H, W) bool
    masks that people are matched on (``match_masks``): one list, or two (segmenter-like and
    body) whose better IoU counts; ``mask_kind`` says which."""

    shard: str
    key: str
    width: int
    height: int
    camera: tuple[float, float, float]
    persons: tuple[dict, ...]
    match_masks: tuple[tuple[np.ndarray, ...], ...]
    mask_kind: str
    body_model: str | None = None  # the json's body model file name (beside the shards)


def gt_image(shard: str, key: str, members: dict[str, bytes], mask: str = "best") -> GTImage:
    """A ``poselabel synth`` sample's ground truth, matched on ``mask`` (``MATCH_MASKS``;
    ``best`` and ``segmenter`` fall back to the body mask in naked-world shards);
    ``ValueError`` when it has none (no json with ``camera`` and ``persons``, no ``mask.png``)."""
    if "json" not in members or "mask.png" not in members:
        raise ValueError(f"sample {key!r} has no json and mask.png members")
    meta = json.loads(members["json"])
    if not isinstance(meta, dict) or "camera" not in meta or "persons" not in meta:
        raise ValueError(f"sample {key!r}: its json holds no 'camera' and 'persons'")
    if mask not in MATCH_MASKS:
        raise ValueError(f"mask must be one of {MATCH_MASKS}, not {mask!r}")
    body, _ = person_masks(members, meta, "body")
    seg, kind = person_masks(members, meta, "auto") if mask != "body" else (body, "body")
    sets = (tuple(seg), tuple(body)) if mask == "best" and kind == "segmenter" else (tuple(seg),)
    cam = meta["camera"]
    return GTImage(shard=shard, key=key, width=int(meta["width"]), height=int(meta["height"]),
                   camera=(float(cam["focal_px"]), float(cam["cx"]), float(cam["cy"])),
                   persons=tuple(meta["persons"]), match_masks=sets,
                   mask_kind="segmenter or body" if len(sets) == 2 else kind, body_model=meta.get("body_model"))


@dataclass(frozen=True)
class GoodLabel:
    """A label is good when ``PVE_cam <= max_pve_cam_frac · Tz`` (mean camera-frame vertex
    distance, translation included, against the true pelvis depth) and ``E_f <= max_e_f``:
    the definition the accept rule was built and measured against (docs/quality.md)."""

    max_pve_cam_frac: float = 0.10
    max_e_f: float = 0.25

    def is_good(self, pve_cam_mm: float, tz_gt: float, e_f: float) -> bool:
        ok = math.isfinite(pve_cam_mm) and math.isfinite(e_f)
        return bool(ok and pve_cam_mm / 1000 <= self.max_pve_cam_frac * tz_gt and e_f <= self.max_e_f)

    def describe(self) -> str:
        return (f"PVE_cam <= {100 * self.max_pve_cam_frac:g} % of the true Tz and "
                f"E_f <= {100 * self.max_e_f:g} %")


def predicted_mask(row: dict, height: int, width: int) -> np.ndarray:
    """The (H, W) bool mask a persons row is matched with: its ``mask_rle``, else its box."""
    rle = row.get("mask_rle")
    if rle is not None:
        m = decode_rle(rle)
        if m.shape == (height, width):
            return m
    out = np.zeros((height, width), bool)
    box = row.get("bbox_xyxy")
    if box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        out[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)] = True
    return out


def _vec(value, n: int) -> list[float]:
    return [float("nan")] * n if value is None else [float("nan") if v is None else float(v) for v in value]


def _num(value) -> float:
    return float("nan") if value is None else float(value)


def _labels(items: list[tuple[list, list, list, list, float, list]]) -> Labels:
    t = lambda i: torch.tensor([x[i] for x in items], dtype=torch.float64).reshape(len(items), -1)  # noqa: E731
    return Labels(betas=t(0), global_orient=t(1), body_pose=t(2), transl=t(3), focal=t(4).reshape(-1), pp=t(5))


def pred_labels(rows: list[dict]) -> Labels:
    """The labels of persons-table rows (NaN where a stage gave nothing)."""
    return _labels([(_vec(r.get("betas"), 10), _vec(r.get("global_orient"), 3), _vec(r.get("body_pose"), 63),
                     _vec(r.get("transl"), 3), _num(r.get("focal_px")), [_num(r.get("cx")), _num(r.get("cy"))])
                    for r in rows])


def true_labels(people: list[tuple[GTImage, int]]) -> Labels:
    """The true labels of ``(image, person index)`` pairs."""
    return _labels([(list(img.persons[i]["betas"]), list(img.persons[i]["global_orient"]),
                     list(img.persons[i]["body_pose"]), list(img.persons[i]["transl"]), img.camera[0],
                     [img.camera[1], img.camera[2]]) for img, i in people])


def evaluate(images: Iterable[GTImage], persons: dict[tuple[str, str], list[dict]],
             labelled: set[tuple[str, str]], body: BodyModel, min_iou: float = 0.3,
             good: GoodLabel = GoodLabel()) -> dict:
    """Match, measure and count (module docstring). ``persons``: persons-table rows by
    ``(shard, key)``; ``labelled``: the ``(shard, key)`` of the run's images table (a true image
    the run never saw is counted, not judged). Returns the JSON-ready report."""
    counts = dict(gt_images=0, gt_images_not_labelled=0, gt_people=0, predicted=0, matched=0, missed=0,
                  false_positives=0, accepted=0, accepted_false_positives=0)
    pairs: list[tuple[dict, GTImage, int, float]] = []
    kinds = set()
    for img in images:
        if (img.shard, img.key) not in labelled:
            counts["gt_images_not_labelled"] += 1
            continue
        kinds.add(img.mask_kind)
        rows = sorted(persons.get((img.shard, img.key), []), key=lambda r: r["person_index"])
        m = match_masks([predicted_mask(r, img.height, img.width) for r in rows], list(img.match_masks), min_iou)
        counts["gt_images"] += 1
        counts["gt_people"] += len(img.persons)
        counts["predicted"] += len(rows)
        counts["missed"] += len(m.missed)
        counts["false_positives"] += len(m.false_positives)
        counts["accepted"] += sum(bool(r["accepted"]) for r in rows)
        counts["accepted_false_positives"] += sum(bool(rows[i]["accepted"]) for i in m.false_positives)
        light = replace(img, match_masks=())  # the masks are not needed past matching
        pairs += [(rows[p], light, g, iou) for p, g, iou in m.pairs]
    counts["matched"] = len(pairs)
    counts["detection_recall"] = len(pairs) / counts["gt_people"] if counts["gt_people"] else float("nan")
    people = []
    if pairs:
        sizes = torch.tensor([[img.width, img.height] for _, img, _, _ in pairs])
        errors = label_errors(body, pred_labels([r for r, _, _, _ in pairs]),
                              true_labels([(img, g) for _, img, g, _ in pairs]), sizes)
        for k, (row, img, g, iou) in enumerate(pairs):
            values = {DISPLAY[name][0]: float(errors[name][k]) * DISPLAY[name][2] for name in ORDER}
            tz = float(img.persons[g]["transl"][2])
            people.append({"shard": img.shard, "key": img.key, "gt_index": g, "person_index": int(row["person_index"]),
                           "match_iou": iou, "accepted": bool(row["accepted"]), "tz_gt": tz,
                           "good": good.is_good(values["PVE_cam_mm"], tz, float(errors["E_f"][k])), **values})
    counts["match_iou_mean"] = float(np.mean([p["match_iou"] for p in people])) if people else float("nan")
    counts["fitted"] = sum(math.isfinite(p["PVE_cam_mm"]) for p in people)
    counts["accepted_matched"] = sum(p["accepted"] for p in people)
    metrics = {subset: {DISPLAY[name][0]: summarise([p[DISPLAY[name][0]] for p in chosen]) for name in ORDER}
               for subset, chosen in (("all", people), ("accepted", [p for p in people if p["accepted"]]))}
    return {"match": {"min_iou": min_iou, "gt_mask": ", ".join(sorted(kinds)) or None, "pred_mask": "mask_rle"},
            "counts": counts, "metrics": metrics, "accept_rule": accept_rule(people, counts, good),
            "per_person": people}


def accept_rule(people: list[dict], counts: dict, good: GoodLabel) -> dict:
    """The table's ``accepted`` against ``good`` over the matched people: precision (good among
    accepted), recall (accepted among good), and precision counting accepted false positives
    as bad labels."""
    n_good = sum(p["good"] for p in people)
    acc = sum(p["accepted"] for p in people)
    tp = sum(p["good"] and p["accepted"] for p in people)
    with_fp = acc + counts["accepted_false_positives"]
    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    return {"good_label": good.describe(), **asdict(good), "matched": len(people), "good": n_good,
            "accepted": acc, "accepted_good": tp, "precision": ratio(tp, acc), "recall": ratio(tp, n_good),
            "precision_with_false_positives": ratio(tp, with_fp)}


def _pct(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{100 * x:.1f} %"


def format_report(report: dict) -> str:
    """The report for a person: counts, the metrics table (all matched people vs accepted
    ones, mean and median), the accept rule's precision and recall."""
    c, a = report["counts"], report["accept_rule"]
    lines = [f"ground truth: {c['gt_people']} people in {c['gt_images']} images"
             + (f" ({c['gt_images_not_labelled']} more images not in --pred)" if c["gt_images_not_labelled"] else ""),
             f"predicted {c['predicted']}, matched {c['matched']} (mask IoU >= {report['match']['min_iou']:g} against "
             f"the {report['match']['gt_mask']} mask, mean {c['match_iou_mean']:.3f}), missed {c['missed']} "
             f"(detection recall {_pct(c['detection_recall'])}), false positives {c['false_positives']}",
             f"accepted {c['accepted']} ({c['accepted_matched']} matched, {c['accepted_false_positives']} false "
             f"positives); fitted (camera and body) {c['fitted']} of {c['matched']} matched", ""]
    m = report["metrics"]
    lines.append(f"{'':12s}{'all matched (' + str(c['matched']) + ')':>28s}"
                 f"{'accepted (' + str(c['accepted_matched']) + ')':>28s}")
    lines.append(f"{'metric':12s}" + f"{'n':>6s}{'mean':>11s}{'median':>11s}" * 2)
    for name in ORDER:
        key, label, _ = DISPLAY[name]
        digits = 3 if name in ("E_Tz", "E_inv_Tz", "E_Txy") else 1
        cells = ""
        for subset in ("all", "accepted"):
            s = m[subset][key]
            cells += f"{s['n']:6d}" + "".join(f"{v:11.{digits}f}" if math.isfinite(v) else f"{'-':>11s}"
                                              for v in (s["mean"], s["median"]))
        lines.append(f"{label:12s}{cells}")
    lines += ["", f"good label: {a['good_label']}: {a['good']} of {a['matched']} matched",
              f"accept rule: precision {_pct(a['precision'])} ({a['accepted_good']} of {a['accepted']} accepted "
              f"matched are good), recall {_pct(a['recall'])} ({a['accepted_good']} of {a['good']} good accepted); "
              f"precision with accepted false positives as bad {_pct(a['precision_with_false_positives'])}"]
    return "\n".join(lines)
