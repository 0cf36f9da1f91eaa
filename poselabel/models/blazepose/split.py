"""Split MediaPipe's class-level person masks among the people found, by their landmarks (numpy).

MediaPipe's segmentation is class-level: run on one person's region it marks *every* person
in that region, so two people who touch each get a mask covering both. :func:`split_by_landmarks`
gives every pixel that several people's masks claim to one of them: the one whose landmark
skeleton is nearest, in units of that person's size. A pixel only one mask claims stays in it
(splitting the whole union among everyone instead gave a pooled IoU of 0.710 against 0.770 on
held-out synthetic touching people, 2026-12-06: docs/architecture.md, "People told apart").

1. Each person's *seed* is rasterised: the filled torso quadrilateral (shoulders, hips),
   the limbs' and head's segments between landmarks with visibility > ``min_visibility``,
   the landmarks themselves. A person with fewer than ``MIN_SKELETON_POINTS`` such landmarks
   is seeded by the pixels only its own mask claims (surely its own) as well. A person with
   none is *unposed*: seeded by those pixels, or, with none, by the vertical centre line of
   its box, and it takes a contested pixel only where no posed person claims it (its box,
   from a mask that took in its neighbours, is no evidence of where it is; a person without
   visible landmarks is mostly hidden, by those in front of it).
2. Its Euclidean distance transform, divided by the person's *scale* (the longer side of its
   visible landmarks' box with 3 or more, else of its box): 0.1 is a tenth of a body away.
3. Every pixel goes to the person, among those whose masks claim it, with the smallest
   scaled distance (ties: the earlier, i.e. better-scored, person). The masks that come out
   never overlap, and together they are the union of the masks given.

All arrays are in image coordinates (pixels, origin top-left): masks ``(H, W)`` bool,
boxes ``(4,)`` ``[x0, y0, x1, y1]``, landmarks ``(33, 3)`` ``[u, v, visibility]`` (MediaPipe's).
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from poselabel.models.masks import mask_bbox

MIN_SKELETON_POINTS = 3  # fewer visible landmarks than this: its uncontested pixels seed it too
UNPOSED_PENALTY = 1e3  # body sizes added to the distances of a person without visible landmarks
TORSO = (11, 12, 24, 23)  # shoulders, hips (a quadrilateral, in order round it)
BONES = ((11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (12, 14), (14, 16), (16, 18), (16, 20), (16, 22),
         (23, 25), (25, 27), (27, 29), (27, 31), (24, 26), (26, 28), (28, 30), (28, 32),
         (0, 11), (0, 12), (0, 7), (0, 8), (7, 8))


def _skeleton(keypoints_2d: np.ndarray | None, box: np.ndarray, own: np.ndarray, origin: tuple[int, int],
              min_visibility: float) -> tuple[np.ndarray, float, bool]:
    """``(seed (h, w) bool, scale px, unposed)`` of one person in the window at ``origin``
    (x0, y0) px; ``own`` (h, w) bool: the window's pixels that only this person's mask claims."""
    shape = own.shape
    x0, y0 = origin
    canvas = Image.new("1", (shape[1], shape[0]), 0)
    draw = ImageDraw.Draw(canvas)
    visible = np.zeros(33, bool) if keypoints_2d is None else keypoints_2d[:, 2] > min_visibility
    bx0, by0, bx1, by1 = np.asarray(box, np.float64)
    scale = float(max(bx1 - bx0, by1 - by0))
    if visible.any():
        uv = keypoints_2d[:, :2] - np.array([x0, y0], np.float32)
        if visible[list(TORSO)].all():
            draw.polygon([tuple(uv[i]) for i in TORSO], fill=1, outline=1)
        for a, b in BONES:
            if visible[a] and visible[b]:
                draw.line([tuple(uv[a]), tuple(uv[b])], fill=1, width=1)
        for u, v in uv[visible]:
            draw.point((float(u), float(v)), fill=1)
    if visible.sum() >= MIN_SKELETON_POINTS:
        pts = keypoints_2d[visible, :2]
        scale = float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1])))
    elif not visible.any() and not own.any():
        draw.line([(bx0 + bx1) / 2 - x0, by0 - y0, (bx0 + bx1) / 2 - x0, by1 - y0], fill=1, width=1)
    seed = np.array(canvas, bool)
    if visible.sum() < MIN_SKELETON_POINTS:  # few landmarks: the pixels that are surely its own help
        seed |= own
    if not seed.any():  # the seeds lie outside the window: its pixel nearest the box centre
        seed[int(np.clip((by0 + by1) / 2 - y0, 0, shape[0] - 1)), int(np.clip((bx0 + bx1) / 2 - x0, 0, shape[1] - 1))] = True
    return seed, max(scale, 1.0), not visible.any()


def split_by_landmarks(masks: list[np.ndarray | None], keypoints_2d: list[np.ndarray | None],
                       boxes: np.ndarray, *, min_visibility: float = 0.5) -> list[np.ndarray | None]:
    """Give each pixel several ``masks`` claim to one of them (see the module docstring).

    ``masks``: per person an (H, W) bool mask or None (not segmented: it takes no pixels and
    stays None); ``keypoints_2d``: per person (33, 3) landmarks or None; ``boxes`` (N, 4) px.
    Returns per person an (H, W) bool mask (possibly empty), None where ``masks`` had None;
    the masks are pairwise disjoint.
    """
    present = [i for i, m in enumerate(masks) if m is not None]
    if len(present) < 2:
        return list(masks)
    union = np.logical_or.reduce([masks[i] for i in present])
    window = mask_bbox(union)
    out: list[np.ndarray | None] = [None if m is None else np.zeros_like(m, bool) for m in masks]
    if window is None:
        return out
    x0, y0, x1, y1 = (int(v) for v in window)
    inside = union[y0:y1, x0:x1]
    claims = np.sum([masks[i][y0:y1, x0:x1] for i in present], axis=0)
    best = np.full(inside.shape, np.inf, np.float32)
    owner = np.full(inside.shape, -1, np.int32)
    for i in present:
        own = masks[i][y0:y1, x0:x1] & (claims == 1)
        seed, scale, unposed = _skeleton(keypoints_2d[i], boxes[i], own, (x0, y0), min_visibility)
        dist = ndimage.distance_transform_edt(~seed).astype(np.float32) / scale
        if unposed:  # no evidence of where its body is: it takes contested pixels only from its likes
            dist += UNPOSED_PENALTY
        closer = (dist < best) & masks[i][y0:y1, x0:x1]  # strict: ties stay with the earlier (better-scored) person
        best[closer], owner[closer] = dist[closer], i
    for i in present:
        out[i][y0:y1, x0:x1] = inside & (owner == i)
    return out
