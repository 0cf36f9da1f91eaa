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
   pose is dropped; the survivors' boxes come from their segmentation mask and
   visible landmarks, and duplicates are suppressed by mask overlap.

Coordinates: pixels, image frame, origin at the top-left corner.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from poselabel.models.decode.guard import MAX_DERIVED_PIXELS, square_region
from poselabel.models.masks import box_iou, mask_bbox, nms

log = logging.getLogger(__name__)

NUM_LANDMARKS = 33


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
                 max_region_pixels: int = MAX_DERIVED_PIXELS):
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
        downsampled where larger than ``max_region_pixels``: ``models/decode/guard.py``).

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
            twin = next((i for i, other in enumerate(found) if _same_person(candidate, other)), None)
            if twin is None:
                found.append(candidate)
            elif mask.sum() > found[twin].mask.sum():
                # Two regions found the same person: keep the more complete view.
                found[twin] = replace(candidate, score=max(candidate.score, found[twin].score))
            if len(found) >= self.max_persons:
                break
        return found


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


def _same_person(a: PoseEstimate, b: PoseEstimate) -> bool:
    """Masks that mostly overlap (intersection over the smaller one), or near-identical boxes."""
    inter = np.logical_and(a.mask, b.mask).sum()
    smaller = min(a.mask.sum(), b.mask.sum())
    return bool(smaller and inter / smaller > 0.6) or box_iou(a.bbox_xyxy, b.bbox_xyxy)[0, 0] > 0.7
