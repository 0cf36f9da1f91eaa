"""Per-person segmentation behind one interface.

A segmenter takes the image ``(H, W, 3)`` uint8, the sample's extra members
(for the oracle) and the person boxes ``(N, 4)`` xyxy pixels, and returns, per
box, ``(mask (H, W) bool, keypoints_2d | None, keypoints_3d | None)``, or None
for a box it could not segment. Masks are in image coordinates.

- ``mediapipe``: MediaPipe ``Pose`` with segmentation on a square region around
  the box (BLADE uses MediaPipe's mask > 0.2). The mask is class-level (it marks every
  person in the region), so with ``split`` the union of the image's masks is divided among
  the boxes by their landmarks (``blazepose/split.py``): the masks never overlap.
- ``ultralytics``: a YOLO instance-segmentation checkpoint (``yolo11n-seg.pt`` and the like)
  by path; its person instances, made exclusive (a pixel to the most confident instance),
  are matched to the boxes (``instances.py``). ultralytics loads the file with
  its own loader (``torch.load`` of a pickle): pass only checkpoints you trust.
- ``oracle``: the instance mask member ``mask.png`` (0 background, ``i+1`` for
  person ``i``); each box takes the instance whose box matches it best.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from poselabel.models.blazepose.people import MediaPipePeople
from poselabel.models.images.guard import MAX_DERIVED_PIXELS
from poselabel.models.images.decode import decode_png
from poselabel.models.blazepose.split import split_by_landmarks
from poselabel.models.masks import box_iou, mask_bbox
from poselabel.models.segment.instances import exclusive_instances

SegmentResult = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


class Segmenter(Protocol):
    def segment(self, image: np.ndarray, members: dict[str, bytes],
                boxes: np.ndarray) -> list[SegmentResult | None]: ...


class MediaPipeSegmenter:
    def __init__(self, *, threshold: float, model_complexity: int, crop_scale: float, split: bool = True):
        self._people = MediaPipePeople(mask_threshold=threshold, model_complexity=model_complexity)
        self._crop_scale = crop_scale
        self._split = split

    def segment(self, image, members, boxes):
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        out: list[SegmentResult | None] = []
        for x0, y0, x1, y1 in boxes:
            side = self._crop_scale * max(x1 - x0, y1 - y0)
            out.append(self._people.estimate_in_region(image, ((x0 + x1) / 2, (y0 + y1) / 2), side))
        if not self._split:
            return out
        masks = split_by_landmarks([None if r is None else r[0] for r in out],
                                   [None if r is None else r[1] for r in out], boxes)
        return [None if r is None else (m, r[1], r[2]) for r, m in zip(out, masks)]


class UltralyticsSegmenter:
    """Person instances of a YOLO ``-seg`` checkpoint (COCO class 0), one per box, exclusive."""

    PERSON_CLASS = 0

    def __init__(self, weights: str, *, score_threshold: float, match_iou: float, device: str = "cpu",
                 imgsz: int = 640):
        from ultralytics import YOLO  # heavy optional backend

        self._model = YOLO(weights, task="segment")
        self._score, self._match_iou, self._device, self._imgsz = score_threshold, match_iou, device, imgsz

    def instances(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB uint8 (H, W, 3) -> its person instances: ``masks (M, H, W) bool`` in image
        coordinates, ``boxes (M, 4) float32`` xyxy px and ``scores (M,) float32``."""
        result = self._model.predict(image[..., ::-1], classes=[self.PERSON_CLASS], conf=self._score,
                                     imgsz=self._imgsz, device=self._device, retina_masks=True, verbose=False)[0]
        h, w = image.shape[:2]
        if result.masks is None or len(result.boxes) == 0:
            return np.zeros((0, h, w), bool), np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        masks = result.masks.data.cpu().numpy() > 0.5
        if masks.shape[1:] != (h, w):
            raise ValueError(f"segmentation masks are {masks.shape[1:]}, the image is {(h, w)}")
        boxes = result.boxes.xyxy.cpu().numpy().astype(np.float32)
        return masks, boxes, result.boxes.conf.cpu().numpy().astype(np.float32)

    def segment(self, image, members, boxes):
        masks, _, scores = self.instances(image)
        matched = exclusive_instances(boxes, masks, scores, min_iou=self._match_iou)
        return [None if m is None else (m, None, None) for m in matched]


class OracleSegmenter:
    MEMBER = "mask.png"

    def segment(self, image, members, boxes):
        if self.MEMBER not in members:
            raise ValueError(f"oracle segmenter needs a '{self.MEMBER}' member")
        instances = decode_png(members[self.MEMBER], max_pixels=MAX_DERIVED_PIXELS)
        if instances.ndim == 3:
            instances = instances[..., 0]
        if instances.shape != image.shape[:2]:
            raise ValueError(f"mask member is {instances.shape}, image is {image.shape[:2]}")
        ids = [int(i) for i in np.unique(instances) if i != 0]
        inst_boxes = {i: mask_bbox(instances == i) for i in ids}
        out: list[SegmentResult | None] = []
        for box in np.asarray(boxes, np.float64).reshape(-1, 4):
            if not ids:
                out.append(None)
                continue
            ious = [box_iou(box, inst_boxes[i])[0, 0] for i in ids]
            best = int(np.argmax(ious))
            out.append((instances == ids[best], None, None) if ious[best] > 0 else None)
        return out


def make_segmenter(config) -> Segmenter:
    """Build the segmenter named by a :class:`poselabel.config.SegmentConfig`."""
    if config.backend == "mediapipe":
        return MediaPipeSegmenter(threshold=config.threshold, model_complexity=config.model_complexity,
                                  crop_scale=config.crop_scale, split=config.split)
    if config.backend == "ultralytics":
        return UltralyticsSegmenter(config.yolo_weights, score_threshold=config.score_threshold,
                                    match_iou=config.match_iou, device=config.device)
    if config.backend == "oracle":
        return OracleSegmenter()
    raise ValueError(f"unknown segmenter backend {config.backend!r}")
