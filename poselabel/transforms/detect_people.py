"""Stage: detect people (multi-person) with the configured detector backend.

The ``ultralytics`` detector is a network: it is shared as ``models.share`` says
(``transforms/shared_models.py``) behind :class:`YoloService`, whose calls take
and return plain numpy arrays.
"""
from __future__ import annotations

import functools
import threading

import numpy as np
from apache_beam.metrics import Metrics

from poselabel.models.detectors import Detection, make_detector
from poselabel.records import STATUS_NO_PERSON, ImageRecord, Person, replace
from poselabel.transforms.base import SampleStage


class YoloService:
    """A YOLO detector behind one method, callable from several threads (and, when served, processes).

    ultralytics' predictor keeps per-call state, so calls are serialised by a lock.
    """

    def __init__(self, detect_config):
        self._detector = make_detector(detect_config)
        self._lock = threading.Lock()

    def detect_boxes(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 image (H, W, 3) -> ``(boxes (N, 4) float32 xyxy px, scores (N,) float32)``, best first."""
        with self._lock:
            dets = self._detector.detect(image, {})
        boxes = np.array([d.bbox_xyxy for d in dets], np.float32).reshape(-1, 4)
        return boxes, np.array([d.score for d in dets], np.float32)


def _yolo_identity(config) -> tuple:
    from poselabel.transforms.shared_models import file_identity

    return (file_identity(config.yolo_weights), config.device, config.score_threshold, config.nms_iou,
            config.max_persons, config.min_box_px)


class DetectPeople(SampleStage):
    stage = "detect"

    def __init__(self, config):
        super().__init__(config)
        self._persons = Metrics.counter("poselabel", "persons_detected")

    def build(self):
        detect = self.config.detect
        if detect.backend == "ultralytics":
            return self.shared_network(_yolo_identity(detect), functools.partial(YoloService, detect))
        # The MediaPipe detector's masks are reused by the segment stage: same threshold.
        return make_detector(detect, mask_threshold=self.config.segment.threshold)

    def _detect(self, record: ImageRecord) -> list[Detection]:
        if self.config.detect.backend == "ultralytics":
            boxes, scores = self.backend.detect_boxes(record.image)
            return [Detection(b, float(s)) for b, s in zip(boxes, scores)]
        return self.backend.detect(record.image, record.meta)

    def apply(self, record: ImageRecord) -> ImageRecord:
        detections = self._detect(record)
        persons = tuple(
            Person(person_index=i, bbox_xyxy=d.bbox_xyxy, det_score=d.score, mask=d.mask,
                   keypoints_2d=d.keypoints_2d, keypoints_3d=d.keypoints_3d)
            for i, d in enumerate(detections))
        self._persons.inc(len(persons))
        return replace(record, persons=persons, status=record.status if persons else STATUS_NO_PERSON)
