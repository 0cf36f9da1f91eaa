"""Stage: accept or reject each person, with every reason named.

The rule itself is :func:`poselabel.models.quality.judge` (pure numpy, shared with
``poselabel filter``); this stage builds each person's :class:`PersonFacts` from its
``Person`` record, sets ``accepted`` / ``reject_reasons`` / ``fit_score``, and counts
``rejected_<reason>`` and ``accepted`` (Beam counters, namespace ``poselabel``).
Thresholds: ``QualityConfig`` (recorded in the run manifest).
"""
from __future__ import annotations

import numpy as np
from apache_beam.metrics import Metrics

from poselabel.models.quality import PersonFacts, assess_image, mask_geometry
from poselabel.records import ImageRecord, Person, replace
from poselabel.transforms.base import SampleStage


def person_facts(record: ImageRecord, p: Person) -> PersonFacts:
    """The facts :func:`judge` needs, as the persons table will hold them."""
    area = box = runs = None
    if p.mask is not None:
        area, box, runs = mask_geometry(p.mask)
    diag = {k: v for k, v in p.diagnostics.items() if not k.startswith("_")}
    vec = lambda x: None if x is None else np.asarray(x, dtype=np.float64).reshape(-1)  # noqa: E731
    return PersonFacts(
        det_score=float(p.det_score), image_width=record.width, image_height=record.height,
        bbox_xyxy=vec(p.bbox_xyxy), has_mask=p.mask is not None, mask_area=area, mask_box=box,
        border_runs=runs, tz=p.tz, focal_px=p.focal_px, transl=vec(p.transl), betas=vec(p.betas),
        body_pose=vec(p.body_pose), mask_iou=p.mask_iou, fit_loss=diag.get("fit_loss"), diagnostics=diag)


class JudgeQuality(SampleStage):
    stage = "quality"

    def apply(self, record: ImageRecord) -> ImageRecord:
        persons = []
        verdicts = assess_image([person_facts(record, p) for p in record.persons], self.config.quality)
        for p, (reasons, score) in zip(record.persons, verdicts):
            for reason in reasons:
                Metrics.counter("poselabel", f"rejected_{reason}").inc()
            if not reasons:
                Metrics.counter("poselabel", "accepted").inc()
            persons.append(replace(p, accepted=not reasons, reject_reasons=reasons, fit_score=score))
        return replace(record, persons=tuple(persons))
