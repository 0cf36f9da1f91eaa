"""What the accept rule looks at, built from a pipeline ``Person`` or a persons-table row.

The pipeline (``transforms/judge_quality.py``) and ``poselabel filter`` both build
:class:`PersonFacts` first, so that one rule judges both alike; a table written by an older
run (no ``keypoint_count``, no ``fit_score`` column) still gives the same facts.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from poselabel.models.masks import decode_rle, mask_geometry
from poselabel.records import CameraFit, ImageRecord, Person

# CameraFit.keypoint_error without a keypoint_count (tables written before the count was
# recorded): the error was recorded only when at least this many keypoints were seen
LEGACY_KEYPOINTS = 4


@dataclass(frozen=True)
class PersonFacts:
    """What the rule looks at, from a ``Person`` or a table row.

    Pixels for sizes and boxes (``bbox_xyxy`` (4,) image frame), metres for ``tz`` and
    ``transl`` (3,), radians for ``body_pose`` (63,), px for ``focal_px``. ``border_runs``:
    per image edge (left, top, right, bottom) the number of mask pixels lying on it;
    ``mask_box``: the mask's tight box (4,) or None. ``camera``: the camera stage's
    measures (all None where it did not run); ``tz_error`` / ``pose_error``: why those
    stages gave nothing; ``fitted_to_landmarks``: which of ``tz`` and ``pose`` were fitted to
    the detector's own keypoints; ``converged``: False where a solver said so (older tables).
    """

    det_score: float
    image_width: int
    image_height: int
    bbox_xyxy: np.ndarray
    has_mask: bool
    mask_area: int | None = None
    mask_box: np.ndarray | None = None
    border_runs: tuple[int, int, int, int] | None = None
    tz: float | None = None
    focal_px: float | None = None
    transl: np.ndarray | None = None
    betas: np.ndarray | None = None
    body_pose: np.ndarray | None = None
    mask_iou: float | None = None
    camera: CameraFit = field(default_factory=CameraFit)
    tz_error: str | None = None
    pose_error: str | None = None
    fitted_to_landmarks: tuple[str, ...] = ()
    converged: bool | None = None
    # (focal_px, mask_iou, focal_margin or nan) of the other fitted people of the same image
    # (set by evidence.with_peers; a 2-tuple reads as a peer without a focal margin)
    peers: tuple[tuple[float, ...], ...] = ()

    @property
    def fit_loss(self) -> float | None:
        return self.camera.fit_loss

    @property
    def objective_iou(self) -> float | None:
        """The fit's IoU as its own solve measured it: ``camera.solo_iou`` where the image's
        shared camera replaced it, else ``camera.fit_iou`` where the solve had its own objective
        (segmenter masks: uncovered mask down-weighted, keypoints), else ``mask_iou``. What the
        accept rule reads; the probes are in its terms."""
        if finite(self.camera.solo_iou):
            return self.camera.solo_iou
        return self.camera.fit_iou if finite(self.camera.fit_iou) else self.mask_iou

    @property
    def solo_focal_px(self) -> float | None:
        """The focal length (px) of the person's own solve: ``camera.solo_focal_px`` where the
        image's shared camera replaced it, else ``focal_px``. Its vote among its peers."""
        return self.camera.solo_focal_px if finite(self.camera.solo_focal_px) else self.focal_px


def finite(x) -> bool:
    """Whether ``x`` is given and every value of it is finite."""
    return x is not None and bool(np.all(np.isfinite(np.asarray(x, dtype=np.float64))))


def _vec(x) -> np.ndarray | None:
    return None if x is None else np.asarray(x, dtype=np.float64).reshape(-1)


def is_fitted(f: PersonFacts) -> bool:
    """Whether the camera stage gave the person a finite, positive ``focal_px`` and a ``transl``."""
    return finite(f.focal_px) and finite(f.transl) and f.focal_px > 0


def row_diagnostics(row: dict[str, Any]) -> dict[str, Any]:
    """A persons-table row's ``diagnostics`` column (a JSON string, or None) as a dict."""
    diag = row.get("diagnostics")
    return json.loads(diag) if isinstance(diag, str) and diag else (diag or {})


def facts_from_row(row: dict[str, Any]) -> PersonFacts:
    """Facts of a persons-table row (a dict of its columns); decodes ``mask_rle`` (pycocotools)."""
    rle = row.get("mask_rle")
    area, box, runs = (None, None, None)
    if rle is not None:
        area, box, runs = mask_geometry(decode_rle(rle))
    diag = row_diagnostics(row)
    camera = CameraFit.from_diagnostics(diag, cx=row.get("cx"), cy=row.get("cy"), fit_loss=row.get("fit_loss"),
                                        fit_iters=row.get("fit_iters"))
    return PersonFacts(
        det_score=float(row["det_score"]), image_width=int(row["image_width"]),
        image_height=int(row["image_height"]), bbox_xyxy=_vec(row["bbox_xyxy"]), has_mask=rle is not None,
        mask_area=area, mask_box=box, border_runs=runs, tz=row.get("tz"), focal_px=row.get("focal_px"),
        transl=_vec(row.get("transl")), betas=_vec(row.get("betas")), body_pose=_vec(row.get("body_pose")),
        mask_iou=row.get("mask_iou"), camera=camera, tz_error=diag.get("tz_error"),
        pose_error=diag.get("pose_error"), fitted_to_landmarks=tuple(diag.get("landmark_fit") or ()),
        converged=diag.get("converged"))


def person_facts(record: ImageRecord, p: Person) -> PersonFacts:
    """Facts of a pipeline ``Person`` of ``record``, as its persons-table row will give them."""
    area = box = runs = None
    if p.mask is not None:
        area, box, runs = mask_geometry(p.mask)
    return PersonFacts(
        det_score=float(p.det_score), image_width=record.width, image_height=record.height,
        bbox_xyxy=_vec(p.bbox_xyxy), has_mask=p.mask is not None, mask_area=area, mask_box=box,
        border_runs=runs, tz=p.tz, focal_px=p.focal_px, transl=_vec(p.transl), betas=_vec(p.betas),
        body_pose=_vec(p.body_pose), mask_iou=p.mask_iou, camera=p.camera or CameraFit(),
        tz_error=p.tz_error, pose_error=p.pose_error, fitted_to_landmarks=tuple(p.fitted_to_landmarks))
