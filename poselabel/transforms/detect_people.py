"""Stage: detect people (multi-person) with the configured detector (``models/detect/backend.py``)."""
from __future__ import annotations

from apache_beam.metrics import Metrics

from poselabel.models.detect.backend import make_backend
from poselabel.records import ImageRecord
from poselabel.transforms.base import SampleStage


class DetectPeople(SampleStage):
    stage = "detect"

    def __init__(self, config):
        super().__init__(config)
        self._persons = Metrics.counter("poselabel", "persons_detected")

    def build(self):
        return make_backend(self.config, self.share)

    def apply(self, record: ImageRecord) -> ImageRecord:
        out = self.backend.apply(record)
        self._persons.inc(len(out.persons))
        return out
