"""Stage: detect people (multi-person) with the configured detector backend."""
from __future__ import annotations

from apache_beam.metrics import Metrics

from poselabel.models.detectors import make_detector
from poselabel.records import STATUS_NO_PERSON, ImageRecord, Person, replace
from poselabel.transforms.base import SampleStage


class DetectPeople(SampleStage):
    stage = "detect"

    def __init__(self, config):
        super().__init__(config)
        self._persons = Metrics.counter("poselabel", "persons_detected")

    def build(self):
        # The MediaPipe detector's masks are reused by the segment stage: same threshold.
        return make_detector(self.config.detect, mask_threshold=self.config.segment.threshold)

    def apply(self, record: ImageRecord) -> ImageRecord:
        detections = self.backend.detect(record.image, record.meta)
        persons = tuple(
            Person(person_index=i, bbox_xyxy=d.bbox_xyxy, det_score=d.score, mask=d.mask,
                   keypoints_2d=d.keypoints_2d, keypoints_3d=d.keypoints_3d)
            for i, d in enumerate(detections))
        self._persons.inc(len(persons))
        return replace(record, persons=persons, status=record.status if persons else STATUS_NO_PERSON)
