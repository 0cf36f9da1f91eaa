"""Stage: accept or reject each person, with every reason named (``models/quality/rule.py``,
shared with ``poselabel filter``); counts ``rejected_<reason>`` and ``accepted`` (Beam
counters, namespace ``poselabel``). Thresholds: ``QualityConfig`` (in the run manifest).
"""
from __future__ import annotations

from apache_beam.metrics import Metrics

from poselabel.models.quality.rule import judge_record
from poselabel.records import ImageRecord
from poselabel.transforms.base import SampleStage


class JudgeQuality(SampleStage):
    stage = "quality"

    def apply(self, record: ImageRecord) -> ImageRecord:
        out = judge_record(record, self.config.quality)
        for p in out.persons:
            for reason in p.reject_reasons:
                Metrics.counter("poselabel", f"rejected_{reason}").inc()
            if p.accepted:
                Metrics.counter("poselabel", "accepted").inc()
        return out
