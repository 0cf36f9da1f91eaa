"""Stage: pelvis depth ``Tz`` (metres) per person.

Backends:
- ``none``: not run (``tz`` stays null);
- ``geometric`` (the no-weights default): SMPL-X fitted to MediaPipe's world
  landmarks, then ``Tz`` and ``f`` solved from the 2D–3D correspondences
  (``poselabel/models/geometric_fit.py``); the fit is kept for the pose stage;
- ``network``: BLADE's Tz network (``--tz-model DIR``, local or gs://),
  batched across images, one copy per process or machine (``models.share``);
- ``oracle``: ground truth from the sample's json, for benchmarks.
A person the backend cannot handle keeps ``tz = None`` and a ``tz_error``
diagnostic (reject reason ``tz_failed``).
"""
from __future__ import annotations

import functools

import numpy as np

from poselabel.models.ground_truth import match_ground_truth
from poselabel.records import ImageRecord, Person, replace
from poselabel.transforms.base import BatchedSampleStage, map_persons, with_error

GEOMETRIC_KEY = "_geometric"  # transient diagnostics key (not written to the tables)


def with_geometric_fit(record: ImageRecord, body_model) -> ImageRecord:
    """Attach the geometric estimate to each person that has MediaPipe landmarks (once)."""
    from poselabel.models.geometric_fit import estimate_from_landmarks

    todo = [p for p in record.persons if GEOMETRIC_KEY not in p.diagnostics and p.keypoints_2d is not None
            and p.keypoints_3d is not None]
    if not todo:
        return record
    estimates = estimate_from_landmarks(body_model, np.stack([p.keypoints_2d for p in todo]),
                                        np.stack([p.keypoints_3d for p in todo]),
                                        width=record.width, height=record.height)
    by_index = {p.person_index: e for p, e in zip(todo, estimates)}

    def attach(p: Person) -> Person:
        if p.person_index not in by_index:
            return p
        est = by_index[p.person_index]
        diag = {**p.diagnostics, GEOMETRIC_KEY: est}
        if est is not None:
            diag.update(geo_focal_px=est.focal_px, geo_landmark_error_m=round(est.landmark_error_m, 5),
                        geo_reprojection_rms_px=round(est.reprojection_rms_px, 3))
        return replace(p, diagnostics=diag)

    return map_persons(record, attach)


def load_body_model(config):
    from poselabel.models.body_model import BodyModel

    return BodyModel(config.body_model, device=config.camera.device)


def network_identity(path: str, device: str) -> tuple:
    """What names a shared checkpoint network: its path, device and weights' recorded sha256."""
    from poselabel.transforms.shared_models import checkpoint_identity

    return (path, device, checkpoint_identity(path))


def _oracle_tz(p: Person, meta) -> Person:
    gt = match_ground_truth(p.bbox_xyxy, meta)
    return replace(p, tz=float(gt["transl"][2])) if gt else with_error(p, "tz_error", "no matching ground truth")


def _geometric_tz(p: Person) -> Person:
    est = p.diagnostics.get(GEOMETRIC_KEY)
    if est is None:
        reason = "no MediaPipe landmarks" if p.keypoints_2d is None else "perspective solve failed"
        return with_error(p, "tz_error", reason)
    return replace(p, tz=est.tz, diagnostics=with_landmark_fit(p.diagnostics, "tz"))


def with_landmark_fit(diagnostics: dict, what: str) -> dict:
    """``diagnostics`` noting that ``what`` (``tz``, ``pose``) was fitted to the person's own 2D
    landmarks: those landmarks are then no independent check of the fit (quality's keypoint
    vouching is skipped, docs/quality.md)."""
    return {**diagnostics, "landmark_fit": sorted({*diagnostics.get("landmark_fit", ()), what})}


class EstimateTz(BatchedSampleStage):
    stage = "tz"

    def build(self):
        backend, path, device = self.config.tz.backend, self.config.tz.model, self.config.camera.device
        if backend == "geometric":
            return load_body_model(self.config)
        if backend == "network":
            from poselabel.models.checkpoints import load_tz_predictor

            # A TzPredictor, or in models.share=machine a proxy of one (predict_batch only).
            return self.shared_network(network_identity(path, device),
                                       functools.partial(load_tz_predictor, path, device=device))
        return None

    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        if self.config.tz.backend != "network":
            return [self.apply(r) for r in records]
        depths = self.backend.predict_batch([(r.image, np.stack([p.bbox_xyxy for p in r.persons]))
                                             for r in records])
        return [replace(r, persons=tuple(replace(p, tz=float(t)) for p, t in zip(r.persons, tz)))
                for r, tz in zip(records, depths)]

    def apply(self, record: ImageRecord) -> ImageRecord:
        backend = self.config.tz.backend
        if backend == "none" or not record.persons:
            return record
        if backend == "oracle":
            return map_persons(record, lambda p: _oracle_tz(p, record.meta))
        if backend == "geometric":
            return map_persons(with_geometric_fit(record, self.backend), _geometric_tz)
        if backend == "network":
            return self.apply_batch([record])[0]
        raise NotImplementedError(f"tz backend {backend!r}")
