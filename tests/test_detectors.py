"""Detector backends, called directly (the pipeline tests run them inside Beam)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from poselabel.assets import no_person_photo, photo_path
from poselabel.config import DetectConfig
from poselabel.models.detect.detectors import OracleDetector, make_detector


def _photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(photo_path(name)).convert("RGB"))


@pytest.fixture(scope="module")
def mediapipe_detector():
    return make_detector(DetectConfig(backend="mediapipe"))


@pytest.mark.parametrize("name, low, high", [("bus.jpg", 2, 8), ("zidane.jpg", 2, 2), ("grace_hopper.jpg", 1, 1)])
def test_mediapipe_finds_the_people_in_real_photos(mediapipe_detector, name, low, high):
    image = _photo(name)
    dets = mediapipe_detector.detect(image, {})
    assert low <= len(dets) <= high
    for d in dets:
        x0, y0, x1, y1 = d.bbox_xyxy
        assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
        assert 0.6 <= d.score <= 1.0
        assert d.mask.shape == image.shape[:2] and d.mask.any()
        assert d.keypoints_2d.shape == (33, 3) and d.keypoints_3d.shape == (33, 3)
    assert [d.score for d in dets] == sorted((d.score for d in dets), reverse=True)
    # MediaPipe's class-level mask is split among the people: no pixel in two masks.
    assert all(not (a.mask & b.mask).any() for i, a in enumerate(dets) for b in dets[i + 1:])


def test_mediapipe_finds_nobody_without_people(mediapipe_detector):
    image = np.asarray(Image.open(io.BytesIO(no_person_photo())).convert("RGB"))
    assert mediapipe_detector.detect(image, {}) == []


def test_ultralytics_detector_loads_a_checkpoint_and_filters(person_everywhere_yolo):
    config = DetectConfig(backend="ultralytics", yolo_weights=person_everywhere_yolo, max_persons=5,
                          score_threshold=0.9)
    detector = make_detector(config)
    image = _photo("bus.jpg")
    dets = detector.detect(image, {})
    assert 1 <= len(dets) <= 5
    for d in dets:
        assert d.score >= 0.9
        x0, y0, x1, y1 = d.bbox_xyxy
        assert -1 <= x0 < x1 <= image.shape[1] + 1 and -1 <= y0 < y1 <= image.shape[0] + 1
    # Raising the threshold above the hand-set confidence leaves nothing.
    strict = make_detector(DetectConfig(backend="ultralytics", yolo_weights=person_everywhere_yolo,
                                        score_threshold=1.0))
    assert strict.detect(image, {}) == []


def test_oracle_detector_keeps_ground_truth_order():
    meta = {"persons": [{"bbox_xyxy": [5, 5, 50, 90]}, {"bbox_xyxy": [0, 0, 10, 10]}]}
    dets = OracleDetector().detect(np.zeros((100, 100, 3), np.uint8), meta)
    assert [d.bbox_xyxy.tolist() for d in dets] == [[5, 5, 50, 90], [0, 0, 10, 10]]
    with pytest.raises(ValueError, match="persons"):
        OracleDetector().detect(np.zeros((4, 4, 3), np.uint8), {})
