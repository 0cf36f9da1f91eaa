"""Stage: SMPL-X ``betas`` (10), ``global_orient`` (3) and ``body_pose`` (63), axis-angle.

Backends: ``none`` (not run yet), ``oracle`` (ground truth, for benchmarks).
``network`` (Tz-conditioned regressor) and ``geometric`` arrive with issue 5.
"""
from __future__ import annotations

import numpy as np

from poselabel.models.ground_truth import match_ground_truth
from poselabel.records import ImageRecord, replace
from poselabel.transforms.base import SampleStage


class RegressPose(SampleStage):
    stage = "pose"

    def apply(self, record: ImageRecord) -> ImageRecord:
        backend = self.config.pose.backend
        if backend == "none" or not record.persons:
            return record
        if backend == "oracle":
            persons = []
            for p in record.persons:
                gt = match_ground_truth(p.bbox_xyxy, record.meta)
                if gt is None:
                    persons.append(p)
                    continue
                persons.append(replace(p, betas=np.asarray(gt["betas"], np.float32),
                                       global_orient=np.asarray(gt["global_orient"], np.float32),
                                       body_pose=np.asarray(gt["body_pose"], np.float32)))
            return replace(record, persons=tuple(persons))
        raise NotImplementedError(f"pose backend {backend!r}")
