"""The Tz stage's backends: pelvis depth ``Tz`` (metres) per person, over batches of records.

- ``none``: not run (``tz`` stays null);
- ``geometric`` (the no-weights default): SMPL-X fitted to MediaPipe's world landmarks, then
  ``Tz`` and ``f`` from the 2D–3D correspondences (``body/landmark_fit.py``); the fit stays
  on the person (``Person.landmark_fit``) for the pose stage;
- ``network``: BLADE's Tz network (``tz.model``, a checkpoint directory, local or gs://),
  batched across images and shared as ``models.share`` says;
- ``oracle``: ground truth from the sample's json, for benchmarks (``tz.oracle_noise``: with a
  seeded relative error, a depth estimate of known quality).

``make_backend(config, share)`` builds one; its ``apply_batch(records)`` returns the records
with ``tz`` set. A person the backend cannot handle keeps ``tz = None`` and a ``tz_error``
(reject reason ``tz_failed``).
"""
from __future__ import annotations

import functools
import hashlib

import numpy as np

from poselabel.models.body.landmark_fit import fitted_to_landmarks, landmark_fit_error, with_landmark_fits
from poselabel.models.body.model import BodyModel, shared_body_model
from poselabel.models.ground_truth import match_ground_truth
from poselabel.models.nets.checkpoints import load_tz_predictor, network_identity
from poselabel.models.nets.share import Share, no_sharing
from poselabel.records import ImageRecord, Person, map_persons, replace


class NoTz:
    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        return records


class OracleTz:
    """The ground truth's pelvis depth; with ``noise`` > 0 times ``1 + N(0, noise)``, drawn from
    a hash of the sample's key and the person's index (a rerun draws the same)."""

    def __init__(self, noise: float = 0.0):
        self.noise = noise

    def _factor(self, key: str, index: int) -> float:
        if self.noise <= 0:
            return 1.0
        seed = int.from_bytes(hashlib.sha256(f"{key}/{index}".encode()).digest()[:8], "little")
        return max(0.05, 1.0 + self.noise * float(np.random.default_rng(seed).standard_normal()))

    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        def tz(p: Person, r: ImageRecord) -> Person:
            gt = match_ground_truth(p.bbox_xyxy, r.meta)
            if not gt:
                return replace(p, tz_error="no matching ground truth")
            return replace(p, tz=float(gt["transl"][2]) * self._factor(r.key, p.person_index))

        return [map_persons(r, lambda p, rec=r: tz(p, rec)) for r in records]


class GeometricTz:
    def __init__(self, body: BodyModel):
        self.body = body

    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        def tz(p: Person) -> Person:
            error = landmark_fit_error(p)
            if error is not None:
                return replace(p, tz_error=error)
            return replace(p, tz=p.landmark_fit.tz, fitted_to_landmarks=fitted_to_landmarks(p, "tz"))

        return [map_persons(r, tz) for r in with_landmark_fits(records, self.body)]


class NetworkTz:
    def __init__(self, predictor):
        self.predictor = predictor  # a TzPredictor, or in models.share=machine a proxy of one

    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        depths = self.predictor.predict_batch([(r.image, np.stack([p.bbox_xyxy for p in r.persons]))
                                               for r in records])
        return [replace(r, persons=tuple(replace(p, tz=float(t)) for p, t in zip(r.persons, tz)))
                for r, tz in zip(records, depths)]


def make_backend(config, share: Share = no_sharing):
    """The Tz stage of a ``RunConfig`` (``tz.backend``)."""
    backend, path, device = config.tz.backend, config.tz.model, config.camera.device
    if backend == "none":
        return NoTz()
    if backend == "oracle":
        return OracleTz(config.tz.oracle_noise)
    if backend == "geometric":
        return GeometricTz(shared_body_model(config.body_model, device=device))
    if backend == "network":
        return NetworkTz(share(network_identity(path, device),
                               functools.partial(load_tz_predictor, path, device=device)))
    raise ValueError(f"unknown tz backend {backend!r}")
