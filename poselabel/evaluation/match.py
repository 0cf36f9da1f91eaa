"""Predicted people to ground-truth people of one image, by mask IoU (Hungarian)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Matching:
    """``pairs``: ``(pred, gt, iou)`` (indices into the lists given); ``false_positives``: the
    predictions left unmatched; ``missed``: the ground-truth people left unmatched."""

    pairs: tuple[tuple[int, int, float], ...]
    false_positives: tuple[int, ...]
    missed: tuple[int, ...]


def mask_iou_matrix(pred: list[np.ndarray], gt: list[np.ndarray]) -> np.ndarray:
    """(P, G) IoU of every predicted (H, W) bool mask with every true one (same size)."""
    if not pred or not gt:
        return np.zeros((len(pred), len(gt)))
    a = np.stack([m.reshape(-1) for m in pred]).astype(np.float32)
    b = np.stack([m.reshape(-1) for m in gt]).astype(np.float32)
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float64)


def match_masks(pred: list[np.ndarray], gt: list[list[np.ndarray]], min_iou: float = 0.3) -> Matching:
    """The one-to-one assignment of predictions to true people with the largest total mask
    IoU (``scipy.optimize.linear_sum_assignment``); a pair below ``min_iou`` is no match.
    ``gt``: one or more lists of the true people's masks (e.g. segmenter-like and body);
    a pair's IoU is the largest over them."""
    if len({len(masks) for masks in gt}) != 1:
        raise ValueError("every list of true masks must hold one mask per person")
    iou = np.maximum.reduce([mask_iou_matrix(pred, list(masks)) for masks in gt])
    pairs = []
    if iou.size:
        rows, cols = linear_sum_assignment(iou, maximize=True)
        pairs = [(int(r), int(c), float(iou[r, c])) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]
    matched_pred, matched_gt = {p for p, _, _ in pairs}, {g for _, g, _ in pairs}
    return Matching(pairs=tuple(pairs), false_positives=tuple(i for i in range(len(pred)) if i not in matched_pred),
                    missed=tuple(i for i in range(len(gt[0])) if i not in matched_gt))
