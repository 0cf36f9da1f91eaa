"""The detect stage's backend: the configured detector over records (``make_backend``).

``apply(record) -> record`` gives the record its ``Person``s (best score first, each with
the box, score and whatever the detector gives for free: mask, landmarks), or
``no_person``. The ``ultralytics`` detector is a network, shared as ``models.share`` says
(``nets/share.py``) behind :class:`YoloService`, whose calls take
and return plain numpy arrays.
"""
from __future__ import annotations

import functools
import threading
from collections.abc import Callable

import numpy as np

from poselabel.io.files import file_identity
from poselabel.models.detect.detectors import Detection, make_detector
from poselabel.models.nets.share import Share, no_sharing
from poselabel.records import STATUS_NO_PERSON, ImageRecord, Person, replace


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


def yolo_identity(detect_config) -> tuple:
    """What names a shared YOLO network: its file, device and the options that change its output."""
    c = detect_config
    return (file_identity(c.yolo_weights), c.device, c.score_threshold, c.nms_iou, c.max_persons, c.min_box_px)


class DetectBackend:
    """``detect(image, meta) -> [Detection]`` over records."""

    def __init__(self, detect: Callable[[np.ndarray, dict], list[Detection]]):
        self._detect = detect

    def apply(self, record: ImageRecord) -> ImageRecord:
        detections = self._detect(record.image, record.meta)
        persons = tuple(
            Person(person_index=i, bbox_xyxy=d.bbox_xyxy, det_score=d.score, mask=d.mask,
                   keypoints_2d=d.keypoints_2d, keypoints_3d=d.keypoints_3d)
            for i, d in enumerate(detections))
        return replace(record, persons=persons, status=record.status if persons else STATUS_NO_PERSON)


def make_backend(config, share: Share = no_sharing) -> DetectBackend:
    """The detect stage of a ``RunConfig``; the MediaPipe detector's masks are reused by the
    segment stage, so they use its threshold and split (``segment.threshold``, ``segment.split``)."""
    detect = config.detect
    if detect.backend == "ultralytics":
        service = share(yolo_identity(detect), functools.partial(YoloService, detect))

        def yolo(image: np.ndarray, meta: dict) -> list[Detection]:
            boxes, scores = service.detect_boxes(image)
            return [Detection(b, float(s)) for b, s in zip(boxes, scores)]

        return DetectBackend(yolo)
    return DetectBackend(make_detector(detect, mask_threshold=config.segment.threshold,
                                       split_masks=config.segment.split).detect)
