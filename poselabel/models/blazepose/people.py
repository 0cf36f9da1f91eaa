"""MediaPipe's bundled BlazePose models: multi-person detection, landmarks, segmentation.

``mediapipe==0.10.21`` carries the BlazePose person detector
(``pose_detection.tflite``) and the full landmark model with its segmentation
head (``pose_landmark_full.tflite``); nothing is downloaded. MediaPipe's
``Pose`` solution tracks one person; we use its parts for many:

1. The detector graph (``PoseDetectionCpu``) runs on the whole image and on
   overlapping square tiles (the detector sees a 224×224 letterbox, so small
   or off-square people need tiles). Each detection gives a score, the hip
   centre and a body-enclosing circle (BlazePose's alignment keypoints).
2. Candidates are merged by non-maximum suppression on their circle boxes.
3. Each candidate is verified by running ``Pose`` (landmarks and segmentation)
   on a square region around its circle. A candidate whose region yields no
   pose is dropped. Two candidates whose landmarks coincide are one person seen twice
   (:func:`same_person`); masks cannot tell, as they are class-level (below).
4. MediaPipe's mask marks every person in the region, so people who touch share pixels:
   the pixels several survivors' masks claim are split among them by their landmarks
   (``models/blazepose/split.py``; ``split_masks=False`` keeps the region masks). A person
   whose region held others is posed again alone, the others greyed out, and the masks are
   split again with the new landmarks. Boxes come from each person's mask and visible landmarks.

Coordinates: pixels, image frame, origin at the top-left corner.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from poselabel.models.images.guard import MAX_DERIVED_PIXELS, square_region
from poselabel.models.blazepose.split import split_by_landmarks
from poselabel.models.masks import box_iou, mask_bbox, nms

log = logging.getLogger(__name__)

NUM_LANDMARKS = 33
# People re-posed alone (MediaPipePeople._repose): whose region mask shares this much of itself
# with the others' (more than a touching outline: MediaPipe saw two people), the others' pixels
# greyed out with this margin (px; beyond the mask's soft edge).
REPOSE_SHARED = 0.05
REPOSE_MARGIN_PX = 5


@dataclass(frozen=True)
class PoseEstimate:
    """One person found by MediaPipe.

    - ``bbox_xyxy`` (4,) float32, pixels.
    - ``score``: the detector's confidence in [0, 1].
    - ``mask`` (H, W) bool in image coordinates (segmentation > threshold).
    - ``keypoints_2d`` (33, 3) float32: ``[u, v, visibility]``, pixels.
    - ``keypoints_3d`` (33, 3) float32: metric world landmarks, hip-centred,
      MediaPipe's axes (x right, y down, z towards the viewer is negative).
    """

    bbox_xyxy: np.ndarray
    score: float
    mask: np.ndarray
    keypoints_2d: np.ndarray
    keypoints_3d: np.ndarray


def _detector_graph():
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2

    return text_format.Parse(
        'input_stream: "image"\n'
        'output_stream: "detections"\n'
        'node { calculator: "PoseDetectionCpu" input_stream: "IMAGE:image" '
        'output_stream: "DETECTIONS:detections" }\n',
        calculator_pb2.CalculatorGraphConfig(),
    )


def square_tiles(height: int, width: int) -> list[tuple[int, int, int]]:
    """Detector windows ``(x0, y0, side)``: the whole image, then squares of the
    shorter side (if the image is not square) and of half of it, overlapping by half."""
    tiles = [(0, 0, max(height, width))]
    short = min(height, width)
    for side, needed in ((short, abs(height - width) > 0.1 * max(height, width)), (short // 2, short >= 256)):
        if not needed or side < 64:
            continue
        step = side // 2
        ys = sorted({*range(0, height - side + 1, step), height - side})
        xs = sorted({*range(0, width - side + 1, step), width - side})
        tiles += [(x, y, side) for y in ys for x in xs]
    return tiles


class MediaPipePeople:
    """Find people, their landmarks and masks with MediaPipe's bundled models.

    Not thread-safe (MediaPipe graphs hold state): make one per thread/DoFn.
    """

    def __init__(self, *, candidate_score: float = 0.5, score_threshold: float = 0.6,
                 nms_iou: float = 0.5, max_persons: int = 8, mask_threshold: float = 0.2,
                 model_complexity: int = 1, region_scale: float = 1.25,
                 max_region_pixels: int = MAX_DERIVED_PIXELS, split_masks: bool = True):
        import mediapipe as mp
        from mediapipe.python.solution_base import SolutionBase

        if model_complexity != 1:
            # Only the "full" landmark model is in the wheel; lite/heavy are downloaded at run time.
            raise ValueError("only model_complexity=1 is bundled with mediapipe 0.10.21 (lite and heavy need a download)")
        self.candidate_score = candidate_score
        self.score_threshold = score_threshold
        self.nms_iou = nms_iou
        self.max_persons = max_persons
        self.mask_threshold = mask_threshold
        self.region_scale = region_scale
        self.max_region_pixels = max_region_pixels
        self.split_masks = split_masks
        self._detector = SolutionBase(graph_config=_detector_graph(), outputs=["detections"])
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=model_complexity, enable_segmentation=True,
            min_detection_confidence=0.3)

    def close(self) -> None:
        self._detector.close()
        self._pose.close()

    # -- stage 1: candidates -------------------------------------------------
    def candidates(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Body circles of candidate people: ``(N, 3)`` ``[cx, cy, radius]`` px and ``(N,)`` scores."""
        height, width = image.shape[:2]
        circles, scores = [], []
        for x0, y0, side in square_tiles(height, width):
            tile = image[y0:y0 + side, x0:x0 + side]
            th, tw = tile.shape[:2]
            result = self._detector.process({"image": np.ascontiguousarray(tile)})
            for det in result.detections or []:
                score = float(det.score[0])
                if score < self.candidate_score:
                    continue
                kp = det.location_data.relative_keypoints
                cx, cy = x0 + kp[0].x * tw, y0 + kp[0].y * th
                radius = float(np.hypot((kp[1].x - kp[0].x) * tw, (kp[1].y - kp[0].y) * th))
                if radius > 4:
                    circles.append((cx, cy, radius))
                    scores.append(score)
        if not circles:
            return np.zeros((0, 3), np.float32), np.zeros((0,), np.float32)
        circles = np.asarray(circles, np.float32)
        scores = np.asarray(scores, np.float32)
        boxes = np.concatenate([circles[:, :2] - circles[:, 2:], circles[:, :2] + circles[:, 2:]], axis=1)
        keep = nms(boxes, scores, self.nms_iou)
        return circles[keep], scores[keep]

    # -- stage 2: landmarks and mask in a region -------------------------------
    def estimate_in_region(self, image: np.ndarray, center: tuple[float, float], side: float):
        """Run ``Pose`` on the square region ``center ± side/2`` (padded with grey outside the image;
        downsampled where larger than ``max_region_pixels``: ``models/images/guard.py``).

        Returns ``(mask (H, W) bool, keypoints_2d (33, 3), keypoints_3d (33, 3))``
        in image coordinates, or None when no pose is found.
        """
        region = square_region(image, center, side, max_pixels=self.max_region_pixels)  # the pixel guard
        if region is None:
            return None
        result = self._pose.process(region.pixels)
        if result.pose_landmarks is None or result.segmentation_mask is None:
            return None
        side, x0, y0 = region.side, region.x0, region.y0
        lm = result.pose_landmarks.landmark
        kp2d = np.array([[p.x * side + x0, p.y * side + y0, p.visibility] for p in lm], np.float32)
        world = result.pose_world_landmarks.landmark
        kp3d = np.array([[p.x, p.y, p.z] for p in world], np.float32)
        mask = region.paste_mask(result.segmentation_mask > self.mask_threshold, image.shape[:2])
        return mask, kp2d, kp3d

    # -- the whole thing -------------------------------------------------------
    def find_people(self, image: np.ndarray) -> list[PoseEstimate]:
        """All people in ``image`` (H, W, 3) uint8 RGB, best score first."""
        circles, scores = self.candidates(image)
        found: list[PoseEstimate] = []
        for (cx, cy, radius), score in zip(circles, scores):
            if score < self.score_threshold:
                continue
            estimate = self.estimate_in_region(image, (cx, cy), 2 * radius * self.region_scale)
            if estimate is None:
                continue
            mask, kp2d, kp3d = estimate
            box = _person_box(mask, kp2d, image.shape[:2])
            if box is None:
                continue
            candidate = PoseEstimate(bbox_xyxy=box, score=float(score), mask=mask,
                                     keypoints_2d=kp2d, keypoints_3d=kp3d)
            twin = next((i for i, other in enumerate(found) if same_person(candidate, other)), None)
            if twin is None:
                found.append(candidate)
            elif mask.sum() > found[twin].mask.sum():
                # Two regions found the same person: keep the more complete view.
                found[twin] = replace(candidate, score=max(candidate.score, found[twin].score))
            if len(found) >= self.max_persons:
                break
        if not self.split_masks or len(found) < 2:
            return found
        first = split_by_landmarks([p.mask for p in found], [p.keypoints_2d for p in found],
                                   np.stack([p.bbox_xyxy for p in found]))
        found = self._repose(image, found, first)
        masks = split_by_landmarks([p.mask for p in found], [p.keypoints_2d for p in found],
                                   np.stack([p.bbox_xyxy for p in found]))
        out = []
        for person, mask in zip(found, masks):
            box = _person_box(mask, person.keypoints_2d, image.shape[:2])
            if box is not None:  # a person left without pixels or visible landmarks is no person
                out.append(replace(person, mask=mask, bbox_xyxy=box))
        return out

    def _repose(self, image: np.ndarray, found: list[PoseEstimate], split: list[np.ndarray]) -> list[PoseEstimate]:
        """Pose again, alone, each person whose region held others: MediaPipe's ``Pose`` is a
        one-person model, and with two people in view it can put one's head on the other's body.

        ``found``: the people with their region masks; ``split``: those masks split once. A
        person whose region mask shares at least ``REPOSE_SHARED`` of itself with the others'
        is posed again on its region (``region_scale`` × the longer side of the box of its
        split mask and landmarks) with the others' split masks, grown by ``REPOSE_MARGIN_PX``,
        painted grey; its landmarks and region mask become the new ones (no pose found: as it
        was). Returns the estimates to split again.
        """
        out = []
        for i, person in enumerate(found):
            others = np.logical_or.reduce([p.mask for j, p in enumerate(found) if j != i])
            box = _person_box(split[i], person.keypoints_2d, image.shape[:2])
            if box is None or (person.mask & others).sum() < REPOSE_SHARED * max(person.mask.sum(), 1):
                out.append(person)
                continue
            others_split = np.logical_or.reduce([m for j, m in enumerate(split) if j != i])
            alone = image.copy()
            alone[ndimage.binary_dilation(others_split, iterations=REPOSE_MARGIN_PX) & ~split[i]] = 127
            x0, y0, x1, y1 = box
            estimate = self.estimate_in_region(alone, ((x0 + x1) / 2, (y0 + y1) / 2),
                                               self.region_scale * max(x1 - x0, y1 - y0))
            if estimate is None:
                out.append(person)
                continue
            mask, kp2d, kp3d = estimate
            out.append(replace(person, mask=mask, keypoints_2d=kp2d, keypoints_3d=kp3d))
        return out


def _person_box(mask: np.ndarray, kp2d: np.ndarray, shape: tuple[int, int]) -> np.ndarray | None:
    """Box around the mask and the visible landmarks, clipped to the image."""
    height, width = shape
    box = mask_bbox(mask)
    visible = kp2d[kp2d[:, 2] > 0.5, :2]
    if len(visible):
        lo = visible.min(axis=0)
        hi = visible.max(axis=0)
        kp_box = np.array([lo[0], lo[1], hi[0], hi[1]], np.float32)
        box = kp_box if box is None else np.concatenate([np.minimum(box[:2], kp_box[:2]),
                                                         np.maximum(box[2:], kp_box[2:])])
    if box is None:
        return None
    box = np.clip(box, [0, 0, 0, 0], [width, height, width, height]).astype(np.float32)
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        return None
    return box


# Landmarks compared by same_person: the nose, shoulders to wrists, hips to ankles.
BODY_LANDMARKS = (0, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)
SAME_PERSON_DISTANCE = 0.15  # median landmark distance / body size; a head is about 0.13 of a body
NESTED_SIZE = 0.5  # a skeleton under half another's size, inside its mask, is a part of that person


def same_person(a: PoseEstimate, b: PoseEstimate, min_visibility: float = 0.5) -> bool:
    """Whether two estimates are one person. Masks alone do not decide: MediaPipe's mark every
    person in the region, so two people who touch share most of their pixels. One person if

    - their body landmarks visible in both lie within ``SAME_PERSON_DISTANCE`` of the larger
      body's size (its visible landmarks' longer side) of each other (median, >= 3 landmarks);
    - or one skeleton is under ``NESTED_SIZE`` of the other's size with 90 % of its visible
      landmarks inside the other's mask (a body part taken for a small person);
    - or, with fewer than 3 landmarks visible in both, their boxes nearly coincide (IoU > 0.7).
    """
    size_a, size_b = _landmark_size(a.keypoints_2d, min_visibility), _landmark_size(b.keypoints_2d, min_visibility)
    small, large = (a, b) if size_a < size_b else (b, a)
    if min(size_a, size_b) < NESTED_SIZE * max(size_a, size_b) and _inside_fraction(small, large.mask, min_visibility) >= 0.9:
        return True
    ka, kb = a.keypoints_2d[list(BODY_LANDMARKS)], b.keypoints_2d[list(BODY_LANDMARKS)]
    both = (ka[:, 2] > min_visibility) & (kb[:, 2] > min_visibility)
    if both.sum() < 3:
        return bool(box_iou(a.bbox_xyxy, b.bbox_xyxy)[0, 0] > 0.7)
    distance = float(np.median(np.linalg.norm(ka[both, :2] - kb[both, :2], axis=1)))
    return distance < SAME_PERSON_DISTANCE * max(size_a, size_b)


def _inside_fraction(person: PoseEstimate, mask: np.ndarray, min_visibility: float) -> float:
    """Fraction of ``person``'s visible landmarks on pixels of the (H, W) bool ``mask`` (0 if none)."""
    pts = person.keypoints_2d[person.keypoints_2d[:, 2] > min_visibility, :2]
    if not len(pts):
        return 0.0
    h, w = mask.shape
    u = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
    v = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
    on = mask[v, u] & (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    return float(on.mean())


def _landmark_size(kp2d: np.ndarray, min_visibility: float) -> float:
    """Longer side (px) of the box of the visible landmarks of (33, 3) ``kp2d``."""
    pts = kp2d[kp2d[:, 2] > min_visibility, :2]
    return float(max(np.ptp(pts[:, 0]), np.ptp(pts[:, 1]))) if len(pts) else 0.0
