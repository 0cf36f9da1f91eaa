"""The pose stage's backends: SMPL-X ``betas`` (10), ``global_orient`` (3) and ``body_pose``
(63, axis-angle, camera frame) per person, over batches of records.

- ``none``: not run;
- ``geometric`` (the no-weights default): the body fitted to MediaPipe's world landmarks
  (``Person.landmark_fit``, made once: by the Tz stage when it is geometric too);
- ``network``: the Tz-conditioned regressor (``pose.model``), batched across images, shared
  as ``models.share`` says behind :class:`PoseService`; a conditioned network gives persons
  without a Tz a ``pose_error``;
- ``oracle``: ground truth, for benchmarks.

A person without a result keeps null parameters and a ``pose_error`` (reason ``pose_failed``).
"""
from __future__ import annotations

import functools

import numpy as np

from poselabel.models.body.landmark_fit import fitted_to_landmarks, landmark_fit_error, with_landmark_fits
from poselabel.models.body.model import BodyModel, shared_body_model
from poselabel.models.ground_truth import match_ground_truth
from poselabel.models.nets.checkpoints import load_pose_predictor, network_identity
from poselabel.models.nets.share import Share, no_sharing
from poselabel.records import ImageRecord, Person, map_persons, replace

POSE_KEYS = ("betas", "global_orient", "body_pose")


class PoseService:
    """The pose network behind methods only, so that a ``MultiProcessShared`` proxy can serve it.

    ``predict_batch([(image (H, W, 3) uint8, boxes (N_i, 4) px, tz (N_i,) m or None)])`` ->
    per image ``dict(betas (N_i, 10), global_orient (N_i, 3), body_pose (N_i, 63))`` float32
    (``PosePredictor.predict_batch``); ``conditioned()``: whether it needs Tz.
    """

    def __init__(self, path: str, device: str):
        self._predictor = load_pose_predictor(path, device=device)

    def conditioned(self) -> bool:
        return self._predictor.conditioned

    def predict_batch(self, items):
        return self._predictor.predict_batch(items)


class NoPose:
    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        return records


class OraclePose:
    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        def pose(p: Person, meta) -> Person:
            gt = match_ground_truth(p.bbox_xyxy, meta)
            if gt is None:
                return replace(p, pose_error="no matching ground truth")
            return replace(p, **{k: np.asarray(gt[k], np.float32) for k in POSE_KEYS})

        return [map_persons(r, lambda p, m=r.meta: pose(p, m)) for r in records]


class GeometricPose:
    def __init__(self, body: BodyModel):
        self.body = body

    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        def pose(p: Person) -> Person:
            if landmark_fit_error(p) is not None:
                return replace(p, pose_error="no landmark fit")
            fit = p.landmark_fit
            return replace(p, betas=fit.betas, global_orient=fit.global_orient, body_pose=fit.body_pose,
                           fitted_to_landmarks=fitted_to_landmarks(p, "pose"))

        return [map_persons(r, pose) for r in with_landmark_fits(records, self.body)]


class NetworkPose:
    def __init__(self, service):
        self.service = service
        self.conditioned = service.conditioned()  # asked once (a round trip when served)

    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        items, kept = [], []
        for r in records:
            persons = [p for p in r.persons if p.tz is not None or not self.conditioned]
            kept.append(persons)
            if persons:
                tz = np.array([p.tz for p in persons], np.float32) if self.conditioned else None
                items.append((r.image, np.stack([p.bbox_xyxy for p in persons]), tz))
        results = iter(self.service.predict_batch(items))
        out = []
        for r, persons in zip(records, kept):
            done = {}
            if persons:
                res = next(results)
                done = {p.person_index: replace(p, **{k: res[k][i] for k in POSE_KEYS}) for i, p in enumerate(persons)}
            out.append(map_persons(r, lambda p: done.get(p.person_index) or replace(p, pose_error="no Tz")))
        return out


def make_backend(config, share: Share = no_sharing):
    """The pose stage of a ``RunConfig`` (``pose.backend``)."""
    backend, path, device = config.pose.backend, config.pose.model, config.camera.device
    if backend == "none":
        return NoPose()
    if backend == "oracle":
        return OraclePose()
    if backend == "geometric":
        return GeometricPose(shared_body_model(config.body_model, device=device))
    if backend == "network":
        return NetworkPose(share(network_identity(path, device), functools.partial(PoseService, path, device)))
    raise ValueError(f"unknown pose backend {backend!r}")
