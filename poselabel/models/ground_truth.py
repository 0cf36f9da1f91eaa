"""Ground truth carried by synthetic samples (``json`` member, see docs/architecture.md)."""
from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from poselabel.models.images.guard import MAX_DERIVED_PIXELS
from poselabel.models.images.decode import decode_png
from poselabel.models.masks import box_iou


def match_ground_truth(bbox_xyxy: np.ndarray, meta: dict[str, Any], min_iou: float = 0.3) -> dict[str, Any] | None:
    """The ground-truth person whose ``bbox_xyxy`` overlaps ``bbox_xyxy`` (4,) most, or None."""
    persons = meta.get("persons") or []
    if not persons:
        return None
    ious = box_iou(np.asarray(bbox_xyxy)[None], np.asarray([p["bbox_xyxy"] for p in persons]))[0]
    best = int(np.argmax(ious))
    return persons[best] if ious[best] >= min_iou else None


# Per-person masks of a ground-truth sample (docs/synth.md, "Mask worlds").
BODY_MEMBER = "mask.png"  # uint8 instance mask of the visible bodies: 0 background, i + 1 person i
SEGMENTER_MEMBER = "segmask.png"  # bit i of a pixel set: the pixel is in person i's segmenter-like mask
MASK_CHOICES = ("auto", "segmenter", "body")
MAX_SEGMASK_PERSONS = 16


def encode_person_masks(masks: list[np.ndarray]) -> bytes:
    """PNG bytes of per-person (H, W) bool masks that may overlap: bit ``i`` of a pixel is
    person ``i``; 8-bit greyscale for up to 8 people, 16-bit up to ``MAX_SEGMASK_PERSONS``."""
    if len(masks) > MAX_SEGMASK_PERSONS:
        raise ValueError(f"at most {MAX_SEGMASK_PERSONS} people per image have a segmenter mask, not {len(masks)}")
    bits = np.zeros(masks[0].shape, np.uint16)
    for i, m in enumerate(masks):
        bits |= (np.asarray(m, bool).astype(np.uint16) << i)
    # a little-endian uint16 array is Pillow's "I;16" (Pillow 13 refuses the mode argument)
    img = Image.fromarray(bits.astype(np.uint8)) if len(masks) <= 8 else Image.fromarray(bits.astype("<u2"))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def decode_person_masks(png: bytes, count: int) -> list[np.ndarray]:
    """The ``count`` (H, W) bool masks of :func:`encode_person_masks`'s PNG."""
    bits = decode_png(png, max_pixels=MAX_DERIVED_PIXELS).astype(np.int64)
    return [(bits >> i) & 1 == 1 for i in range(count)]


def decode_instances(png: bytes) -> np.ndarray:
    """(H, W) uint8 instance mask of a ``mask.png`` member (first channel if it has several)."""
    inst = decode_png(png, max_pixels=MAX_DERIVED_PIXELS)
    return inst[..., 0] if inst.ndim == 3 else inst


def person_masks(members: dict[str, bytes], meta: dict[str, Any], which: str = "auto") -> tuple[list[np.ndarray], str]:
    """Per person of ``meta["persons"]`` an (H, W) bool mask, and which mask it is.

    ``which``: ``"body"`` the visible body silhouette (``mask.png``); ``"segmenter"`` the mask
    a segmenter should give (``segmask.png``: body, garments, hair, in the
    ``clothed+segmenter`` world with segmenter errors); ``"auto"`` the segmenter mask when
    the sample has one, else the body mask (shards written before mask worlds existed).
    Returns ``(masks, "body" | "segmenter")``.
    """
    if which not in MASK_CHOICES:
        raise ValueError(f"mask must be one of {MASK_CHOICES}, not {which!r}")
    count = len(meta.get("persons") or [])
    if which != "body" and SEGMENTER_MEMBER in members:
        return decode_person_masks(members[SEGMENTER_MEMBER], count), "segmenter"
    if which == "segmenter":
        raise ValueError(f"sample has no '{SEGMENTER_MEMBER}' member (a naked-world shard); use the body mask")
    inst = decode_instances(members[BODY_MEMBER])
    return [inst == i + 1 for i in range(count)], "body"
