"""Ground truth carried by synthetic samples (``json`` member, see docs/architecture.md)."""
from __future__ import annotations

from typing import Any

import numpy as np

from poselabel.models.masks import box_iou


def match_ground_truth(bbox_xyxy: np.ndarray, meta: dict[str, Any], min_iou: float = 0.3) -> dict[str, Any] | None:
    """The ground-truth person whose ``bbox_xyxy`` overlaps ``bbox_xyxy`` (4,) most, or None."""
    persons = meta.get("persons") or []
    if not persons:
        return None
    ious = box_iou(np.asarray(bbox_xyxy)[None], np.asarray([p["bbox_xyxy"] for p in persons]))[0]
    best = int(np.argmax(ious))
    return persons[best] if ious[best] >= min_iou else None
