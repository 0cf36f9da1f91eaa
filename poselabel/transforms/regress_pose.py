"""Stage: SMPL-X ``betas`` (10), ``global_orient`` (3) and ``body_pose`` (63), axis-angle.

Backends: ``none`` (not run), ``geometric`` (the body fitted to MediaPipe's
world landmarks; reuses the fit of a geometric Tz stage), ``oracle`` (ground
truth, for benchmarks). A person without a result keeps null parameters and a
``pose_error`` diagnostic (reject reason ``pose_failed``).
"""
from __future__ import annotations

import numpy as np

from poselabel.models.ground_truth import match_ground_truth
from poselabel.records import ImageRecord, replace
from poselabel.transforms.base import SampleStage
from poselabel.transforms.estimate_tz import GEOMETRIC_KEY, load_body_model, with_geometric_fit


class RegressPose(SampleStage):
    stage = "pose"

    def build(self):
        return load_body_model(self.config) if self.config.pose.backend == "geometric" else None

    def apply(self, record: ImageRecord) -> ImageRecord:
        backend = self.config.pose.backend
        if backend == "none" or not record.persons:
            return record
        persons = []
        if backend == "oracle":
            for p in record.persons:
                gt = match_ground_truth(p.bbox_xyxy, record.meta)
                if gt is None:
                    persons.append(replace(p, diagnostics={**p.diagnostics, "pose_error": "no matching ground truth"}))
                    continue
                persons.append(replace(p, betas=np.asarray(gt["betas"], np.float32),
                                       global_orient=np.asarray(gt["global_orient"], np.float32),
                                       body_pose=np.asarray(gt["body_pose"], np.float32)))
            return replace(record, persons=tuple(persons))
        if backend == "geometric":
            record = with_geometric_fit(record, self.backend)
            for p in record.persons:
                est = p.diagnostics.get(GEOMETRIC_KEY)
                if est is None:
                    persons.append(replace(p, diagnostics={**p.diagnostics, "pose_error": "no landmark fit"}))
                    continue
                persons.append(replace(p, betas=est.betas, global_orient=est.global_orient,
                                       body_pose=est.body_pose))
            return replace(record, persons=tuple(persons))
        raise NotImplementedError(f"pose backend {backend!r}")
