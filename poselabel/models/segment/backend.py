"""The segment stage's backend: a mask (image coordinates) for every detected person.

Persons whose detector already produced a mask with the same model (the MediaPipe detector
verifies each person with MediaPipe's segmentation) keep it when the segmenter is MediaPipe
too (split among the image's people there already, ``segment.split``); otherwise the
segmenter runs on all the image's boxes together, so that its masks do not overlap. A person
that cannot be segmented keeps ``mask=None`` and is rejected later (``no_mask``), never dropped.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from poselabel.models.segment.segmenters import Segmenter, make_segmenter
from poselabel.records import ImageRecord, map_persons, replace


class SegmentBackend:
    """``segmenter``: the ``Segmenter``, or None with ``build``, which makes it when a person
    first needs it (the bundled MediaPipe segmenter behind the MediaPipe detector, whose masks
    every person found usually has: its graph is then never built)."""

    def __init__(self, segmenter: Segmenter | None, reuse_detector_masks: bool,
                 build: Callable[[], Segmenter] | None = None):
        self._segmenter, self.reuse, self._build = segmenter, reuse_detector_masks, build

    @property
    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            self._segmenter = self._build()
        return self._segmenter

    def apply(self, record: ImageRecord) -> ImageRecord:
        if not record.persons:
            return record
        todo = [p for p in record.persons if not (self.reuse and p.mask is not None)]
        results = {}
        if todo:
            boxes = np.stack([p.bbox_xyxy for p in todo])
            for person, result in zip(todo, self.segmenter.segment(record.image, record.extra_members, boxes)):
                results[person.person_index] = result

        def merge(p):
            if p.person_index not in results:
                return p
            result = results[p.person_index]
            if result is None:
                return replace(p, mask=None)
            mask, kp2d, kp3d = result
            return replace(p, mask=mask, keypoints_2d=kp2d if kp2d is not None else p.keypoints_2d,
                           keypoints_3d=kp3d if kp3d is not None else p.keypoints_3d)

        return map_persons(record, merge)


def make_backend(config) -> SegmentBackend:
    """The segment stage of a ``RunConfig`` (``segment.backend``)."""
    reuse = config.segment.backend == "mediapipe" and config.detect.backend == "mediapipe"
    # Built at once where it may fail on the user's files (a checkpoint by path: refused at
    # start-up, not sample by sample); the bundled MediaPipe one only if a person lacks a mask.
    if reuse:
        return SegmentBackend(None, reuse, build=functools.partial(make_segmenter, config.segment))
    return SegmentBackend(make_segmenter(config.segment), reuse)
