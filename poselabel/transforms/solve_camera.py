"""Stage: focal length (pixels) and pelvis translation (metres, camera frame) per person.

Backends: ``none`` (not run yet), ``oracle`` (the sample's ground-truth
camera and translation, for benchmarks), ``solver`` (differentiable
rasterisation against the person's mask; issue 4).
"""
from __future__ import annotations

import numpy as np

from poselabel.models.ground_truth import match_ground_truth
from poselabel.records import ImageRecord, replace
from poselabel.transforms.base import SampleStage


class SolveCamera(SampleStage):
    stage = "camera"

    def apply(self, record: ImageRecord) -> ImageRecord:
        backend = self.config.camera.backend
        if backend == "none" or not record.persons:
            return record
        if backend == "oracle":
            camera = record.meta.get("camera") or {}
            persons = []
            for p in record.persons:
                gt = match_ground_truth(p.bbox_xyxy, record.meta)
                if gt is None or "focal_px" not in camera:
                    persons.append(p)
                    continue
                persons.append(replace(p, focal_px=float(camera["focal_px"]),
                                       transl=np.asarray(gt["transl"], np.float32),
                                       diagnostics={**p.diagnostics, "cx": float(camera["cx"]),
                                                    "cy": float(camera["cy"])}))
            return replace(record, persons=tuple(persons))
        raise NotImplementedError(f"camera backend {backend!r}")
