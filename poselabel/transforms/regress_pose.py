"""Stage: SMPL-X ``betas`` (10), ``global_orient`` (3) and ``body_pose`` (63), axis-angle.

Backends: ``none`` (not run), ``network`` (the Tz-conditioned regressor,
``--pose-model DIR``, batched across images, one copy per process or machine
(``models.share``, behind :class:`PoseService`); persons without a Tz get
``pose_error`` when the network is conditioned), ``geometric`` (the body fitted to MediaPipe's
world landmarks; reuses the fit of a geometric Tz stage), ``oracle`` (ground
truth, for benchmarks). A person without a result keeps null parameters and a
``pose_error`` diagnostic (reject reason ``pose_failed``).
"""
from __future__ import annotations

import functools

import numpy as np

from poselabel.models.ground_truth import match_ground_truth
from poselabel.records import ImageRecord, replace
from poselabel.transforms.base import BatchedSampleStage, map_persons, with_error
from poselabel.transforms.estimate_tz import (GEOMETRIC_KEY, load_body_model, network_identity, with_geometric_fit,
                                              with_landmark_fit)


class PoseService:
    """The pose network behind methods only, so that a ``MultiProcessShared`` proxy can serve it.

    ``predict_batch([(image (H, W, 3) uint8, boxes (N_i, 4) px, tz (N_i,) m or None)])`` ->
    per image ``dict(betas (N_i, 10), global_orient (N_i, 3), body_pose (N_i, 63))`` float32
    (``PosePredictor.predict_batch``); ``conditioned()``: whether it needs Tz.
    """

    def __init__(self, path: str, device: str):
        from poselabel.models.checkpoints import load_pose_predictor

        self._predictor = load_pose_predictor(path, device=device)

    def conditioned(self) -> bool:
        return self._predictor.conditioned

    def predict_batch(self, items):
        return self._predictor.predict_batch(items)


def _oracle_pose(p, meta):
    gt = match_ground_truth(p.bbox_xyxy, meta)
    if gt is None:
        return with_error(p, "pose_error", "no matching ground truth")
    return replace(p, **{k: np.asarray(gt[k], np.float32) for k in ("betas", "global_orient", "body_pose")})


def _geometric_pose(p):
    est = p.diagnostics.get(GEOMETRIC_KEY)
    if est is None:
        return with_error(p, "pose_error", "no landmark fit")
    return replace(p, betas=est.betas, global_orient=est.global_orient, body_pose=est.body_pose,
                   diagnostics=with_landmark_fit(p.diagnostics, "pose"))


class RegressPose(BatchedSampleStage):
    stage = "pose"

    def build(self):
        backend, path, device = self.config.pose.backend, self.config.pose.model, self.config.camera.device
        if backend == "geometric":
            return load_body_model(self.config)
        if backend == "network":
            service = self.shared_network(network_identity(path, device),
                                          functools.partial(PoseService, path, device))
            self._conditioned = service.conditioned()  # asked once (a round trip when served)
            return service
        return None

    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        if self.config.pose.backend != "network":
            return [self.apply(r) for r in records]
        conditioned = self._conditioned
        items, kept = [], []
        for r in records:
            persons = [p for p in r.persons if p.tz is not None or not conditioned]
            kept.append(persons)
            if persons:
                tz = np.array([p.tz for p in persons], np.float32) if conditioned else None
                items.append((r.image, np.stack([p.bbox_xyxy for p in persons]), tz))
        results = iter(self.backend.predict_batch(items))
        out = []
        for r, persons in zip(records, kept):
            done = {}
            if persons:
                res = next(results)
                for i, p in enumerate(persons):
                    done[p.person_index] = replace(p, betas=res["betas"][i], global_orient=res["global_orient"][i],
                                                   body_pose=res["body_pose"][i])
            out.append(map_persons(r, lambda p: done.get(p.person_index) or with_error(p, "pose_error", "no Tz")))
        return out

    def apply(self, record: ImageRecord) -> ImageRecord:
        backend = self.config.pose.backend
        if backend == "none" or not record.persons:
            return record
        if backend == "oracle":
            return map_persons(record, lambda p: _oracle_pose(p, record.meta))
        if backend == "geometric":
            return map_persons(with_geometric_fit(record, self.backend), _geometric_pose)
        if backend == "network":
            return self.apply_batch([record])[0]
        raise NotImplementedError(f"pose backend {backend!r}")
