"""Instance masks (an instance-segmentation network's) given to the detected people, exclusive (numpy).

Masks ``(H, W)`` bool and boxes ``[x0, y0, x1, y1]`` are in image coordinates (pixels, origin
top-left).
"""
from __future__ import annotations

import numpy as np

from poselabel.models.masks import box_iou, mask_bbox


def exclusive_instances(person_boxes: np.ndarray, instance_masks: np.ndarray, instance_scores: np.ndarray,
                        *, min_iou: float) -> list[np.ndarray | None]:
    """Per person box the instance mask that matches it, no pixel in two masks.

    ``person_boxes`` (N, 4) px; ``instance_masks`` (M, H, W) bool; ``instance_scores`` (M,).
    A pixel several instances claim belongs to the best-scored one. Pairs (person, instance)
    are matched greedily by the IoU of the person's box with the instance mask's box, highest
    first, each instance at most once; a person whose best IoU is below ``min_iou`` gets None.
    """
    person_boxes = np.asarray(person_boxes, np.float32).reshape(-1, 4)
    masks = np.asarray(instance_masks, bool)
    out: list[np.ndarray | None] = [None] * len(person_boxes)
    if len(masks) == 0 or len(person_boxes) == 0:
        return out
    order = np.argsort(-np.asarray(instance_scores), kind="stable")
    taken = np.zeros(masks.shape[1:], bool)
    exclusive = np.zeros_like(masks)
    for k in order:
        exclusive[k] = masks[k] & ~taken
        taken |= masks[k]
    inst_boxes = [mask_bbox(m) for m in exclusive]
    iou = np.zeros((len(person_boxes), len(masks)))
    for k, b in enumerate(inst_boxes):
        if b is not None:
            iou[:, k] = box_iou(person_boxes, b)[:, 0]
    while iou.size and iou.max() >= min_iou:
        i, k = np.unravel_index(int(np.argmax(iou)), iou.shape)
        out[i] = exclusive[k]
        iou[i, :], iou[:, k] = -1.0, -1.0
    return out
