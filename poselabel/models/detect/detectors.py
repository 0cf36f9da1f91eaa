"""Person detectors behind one interface.

A detector maps an RGB uint8 image ``(H, W, 3)`` (and the sample's metadata,
for the oracle) to a list of :class:`Detection`, best score first. Backends:

- ``mediapipe``: MediaPipe's bundled BlazePose models (the embedded default);
  also returns each person's mask and landmarks.
- ``ultralytics``: any YOLO checkpoint by path (COCO class 0, ``person``).
- ``oracle``: the boxes of a ground-truth ``json`` member.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from poselabel.models.blazepose.people import MediaPipePeople
from poselabel.models.masks import nms


@dataclass(frozen=True)
class Detection:
    """A person box ``bbox_xyxy`` (4,) float32 in pixels, its score, and
    optional per-person outputs some detectors give for free (mask (H, W) bool,
    keypoints_2d (33, 3), keypoints_3d (33, 3))."""

    bbox_xyxy: np.ndarray
    score: float
    mask: np.ndarray | None = None
    keypoints_2d: np.ndarray | None = None
    keypoints_3d: np.ndarray | None = None


class PersonDetector(Protocol):
    def detect(self, image: np.ndarray, meta: dict[str, Any]) -> list[Detection]: ...


def _finish(dets: list[Detection], *, score_threshold: float, nms_iou: float,
            max_persons: int, min_box_px: float) -> list[Detection]:
    dets = [d for d in dets if d.score >= score_threshold
            and max(d.bbox_xyxy[2] - d.bbox_xyxy[0], d.bbox_xyxy[3] - d.bbox_xyxy[1]) >= min_box_px]
    if not dets:
        return []
    keep = nms(np.stack([d.bbox_xyxy for d in dets]), np.array([d.score for d in dets]), nms_iou)
    return [dets[i] for i in keep][:max_persons]


class MediaPipeDetector:
    def __init__(self, *, score_threshold: float, nms_iou: float, max_persons: int, min_box_px: float,
                 mask_threshold: float = 0.2, model_complexity: int = 1, split_masks: bool = True):
        self._people = MediaPipePeople(score_threshold=score_threshold, nms_iou=nms_iou,
                                       max_persons=max_persons, mask_threshold=mask_threshold,
                                       model_complexity=model_complexity, split_masks=split_masks)
        self._finish = dict(score_threshold=score_threshold, nms_iou=nms_iou,
                            max_persons=max_persons, min_box_px=min_box_px)

    def detect(self, image: np.ndarray, meta: dict[str, Any]) -> list[Detection]:
        found = self._people.find_people(image)
        dets = [Detection(p.bbox_xyxy, p.score, p.mask, p.keypoints_2d, p.keypoints_3d) for p in found]
        return _finish(dets, **self._finish)


class UltralyticsDetector:
    """Any YOLO checkpoint (``.pt`` of a detection model) loaded from a local path."""

    PERSON_CLASS = 0

    def __init__(self, weights: str, *, score_threshold: float, nms_iou: float, max_persons: int,
                 min_box_px: float, device: str = "cpu", imgsz: int = 640):
        from ultralytics import YOLO

        self._model = YOLO(weights, task="detect")
        self._device = device
        self._imgsz = imgsz
        self._finish = dict(score_threshold=score_threshold, nms_iou=nms_iou,
                            max_persons=max_persons, min_box_px=min_box_px)

    def detect(self, image: np.ndarray, meta: dict[str, Any]) -> list[Detection]:
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        # ultralytics expects BGR numpy arrays.
        results = self._model.predict([im[..., ::-1] for im in images], classes=[self.PERSON_CLASS],
                                      conf=self._finish["score_threshold"], iou=self._finish["nms_iou"],
                                      imgsz=self._imgsz, device=self._device, verbose=False)
        out = []
        for res in results:
            boxes = res.boxes
            xyxy = boxes.xyxy.cpu().numpy().astype(np.float32)
            conf = boxes.conf.cpu().numpy()
            dets = [Detection(xyxy[i], float(conf[i])) for i in range(len(conf))]
            out.append(_finish(dets, **self._finish))
        return out


class OracleDetector:
    """Boxes from the sample's ground-truth ``json`` (``persons[i].bbox_xyxy``), score 1.

    The order of the ground truth is kept so that ``person_index`` matches it.
    """

    def detect(self, image: np.ndarray, meta: dict[str, Any]) -> list[Detection]:
        if "persons" not in meta:
            raise ValueError("oracle detector needs a json member with 'persons'")
        return [Detection(np.asarray(p["bbox_xyxy"], np.float32), 1.0) for p in meta["persons"]]


def make_detector(config, *, mask_threshold: float = 0.2, split_masks: bool = True) -> PersonDetector:
    """Build the detector named by a :class:`poselabel.config.DetectConfig`.

    ``mask_threshold``: the segmentation threshold of the masks the MediaPipe
    detector produces on the way (the run's ``segment.threshold``); ``split_masks``:
    whether it divides MediaPipe's class-level mask among the people (``segment.split``).
    """
    common = dict(score_threshold=config.score_threshold, nms_iou=config.nms_iou,
                  max_persons=config.max_persons, min_box_px=config.min_box_px)
    if config.backend == "mediapipe":
        return MediaPipeDetector(mask_threshold=mask_threshold, split_masks=split_masks, **common)
    if config.backend == "ultralytics":
        return UltralyticsDetector(config.yolo_weights, device=config.device, **common)
    if config.backend == "oracle":
        return OracleDetector()
    raise ValueError(f"unknown detector backend {config.backend!r}")
