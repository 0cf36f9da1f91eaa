"""Per-person segmentation behind one interface.

A segmenter takes the image ``(H, W, 3)`` uint8, the sample's extra members
(for the oracle) and the person boxes ``(N, 4)`` xyxy pixels, and returns, per
box, ``(mask (H, W) bool, keypoints_2d | None, keypoints_3d | None)``, or None
for a box it could not segment. Masks are in image coordinates.

- ``mediapipe``: MediaPipe ``Pose`` with segmentation on a square region around
  the box (BLADE uses MediaPipe's mask > 0.2).
- ``oracle``: the instance mask member ``mask.png`` (0 background, ``i+1`` for
  person ``i``); each box takes the instance whose box matches it best.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from poselabel.models.blazepose.people import MediaPipePeople
from poselabel.models.decode.guard import MAX_DERIVED_PIXELS
from poselabel.models.decode.image import decode_png
from poselabel.models.masks import box_iou, mask_bbox

SegmentResult = tuple[np.ndarray, np.ndarray | None, np.ndarray | None]


class Segmenter(Protocol):
    def segment(self, image: np.ndarray, members: dict[str, bytes],
                boxes: np.ndarray) -> list[SegmentResult | None]: ...


class MediaPipeSegmenter:
    def __init__(self, *, threshold: float, model_complexity: int, crop_scale: float):
        self._people = MediaPipePeople(mask_threshold=threshold, model_complexity=model_complexity)
        self._crop_scale = crop_scale

    def segment(self, image, members, boxes):
        out: list[SegmentResult | None] = []
        for x0, y0, x1, y1 in np.asarray(boxes, np.float64).reshape(-1, 4):
            side = self._crop_scale * max(x1 - x0, y1 - y0)
            out.append(self._people.estimate_in_region(image, ((x0 + x1) / 2, (y0 + y1) / 2), side))
        return out


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
                                  crop_scale=config.crop_scale)
    if config.backend == "oracle":
        return OracleSegmenter()
    raise ValueError(f"unknown segmenter backend {config.backend!r}")
