"""Stage: a segmentation mask for every detected person (``models/segment/backend.py``)."""
from __future__ import annotations

from apache_beam.metrics import Metrics

from poselabel.models.segment.backend import make_backend
from poselabel.records import ImageRecord
from poselabel.transforms.base import SampleStage


class Segment(SampleStage):
    stage = "segment"

    def __init__(self, config):
        super().__init__(config)
        self._missing = Metrics.counter("poselabel", "persons_without_mask")

    def build(self):
        return make_backend(self.config)

    def apply(self, record: ImageRecord) -> ImageRecord:
        out = self.backend.apply(record)
        self._missing.inc(sum(p.mask is None for p in out.persons))
        return out
