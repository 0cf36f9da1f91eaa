"""Stage: pelvis depth ``Tz`` (metres) per person.

Backends: ``none`` (not run yet: ``tz`` stays null), ``oracle`` (ground truth
from the sample's json, for benchmarks). ``network`` and ``geometric`` arrive
with the networks (issue 5) and are refused at start-up until then.
"""
from __future__ import annotations

from poselabel.models.ground_truth import match_ground_truth
from poselabel.records import ImageRecord, replace
from poselabel.transforms.base import SampleStage


class EstimateTz(SampleStage):
    stage = "tz"

    def apply(self, record: ImageRecord) -> ImageRecord:
        backend = self.config.tz.backend
        if backend == "none" or not record.persons:
            return record
        if backend == "oracle":
            persons = []
            for p in record.persons:
                gt = match_ground_truth(p.bbox_xyxy, record.meta)
                persons.append(replace(p, tz=float(gt["transl"][2])) if gt else p)
            return replace(record, persons=tuple(persons))
        raise NotImplementedError(f"tz backend {backend!r}")
