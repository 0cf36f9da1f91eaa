"""Stage: accept or reject each person, with every reason named.

Reasons so far: ``not_fitted`` (the camera stage has not produced a fit),
``no_mask``, ``low_det_score``, ``tz_failed``, ``pose_failed``, ``low_mask_iou``. A counter per reason.
Issue 6 extends the checks; thresholds live in ``QualityConfig``.
"""
from __future__ import annotations

from apache_beam.metrics import Metrics

from poselabel.records import REASON_NOT_FITTED, ImageRecord, Person, replace
from poselabel.transforms.base import SampleStage


def judge(person: Person, config) -> tuple[str, ...]:
    """The reject reasons of one person under a :class:`QualityConfig` (empty: accepted)."""
    reasons = []
    if person.mask is None and "mask_rle" not in person.diagnostics:
        reasons.append("no_mask")
    if person.det_score < config.min_det_score:
        reasons.append("low_det_score")
    if "tz_error" in person.diagnostics:
        reasons.append("tz_failed")
    if "pose_error" in person.diagnostics:
        reasons.append("pose_failed")
    if person.focal_px is None or person.transl is None:
        reasons.append(REASON_NOT_FITTED)
    elif person.mask_iou is not None and person.mask_iou < config.min_mask_iou:
        reasons.append("low_mask_iou")
    return tuple(reasons)


class JudgeQuality(SampleStage):
    stage = "quality"

    def apply(self, record: ImageRecord) -> ImageRecord:
        persons = []
        for p in record.persons:
            reasons = judge(p, self.config.quality)
            for reason in reasons:
                Metrics.counter("poselabel", f"rejected_{reason}").inc()
            if not reasons:
                Metrics.counter("poselabel", "accepted").inc()
            persons.append(replace(p, accepted=not reasons, reject_reasons=reasons))
        return replace(record, persons=tuple(persons))
