"""Typed records that flow between the pipeline's stages.

One identity, ``(key, person_index)``, travels end to end. A sample that fails
at any stage is not dropped: it keeps flowing with ``status == "error"`` and
the stage and message in ``error``, so that the writer gives it its row.

Conventions (see docs/architecture.md): image arrays are RGB uint8 ``(H, W, 3)``
after EXIF orientation; pixel coordinates have their origin at the top-left
corner of the top-left pixel; the camera frame is OpenCV's (x right, y down,
z forward), in metres.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATUS_OK = "ok"
STATUS_NO_PERSON = "no_person"
STATUS_ERROR = "error"

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

# Reject reason carried by persons whose later stages have not run.
REASON_NOT_FITTED = "not_fitted"


@dataclass(frozen=True)
class RawSample:
    """One WebDataset sample as read from a shard: members grouped by key.

    ``members`` maps the member extension (``"jpg"``, ``"json"``, ``"mask.png"``)
    to its bytes.
    """

    key: str
    shard: str
    url: str
    members: dict[str, bytes]


@dataclass(frozen=True)
class ShardEnd:
    """Sent by the reader after a shard's last sample; every stage passes it on.

    The writer writes a shard's tables once it holds this and ``num_samples``
    rows, so a shard is written as soon as it is labelled, with no shuffle.
    """

    shard: str
    path: str
    num_samples: int


@dataclass(frozen=True)
class Person:
    """One detected person and everything later stages add to it.

    Fields of stages that have not run are ``None``.

    - ``bbox_xyxy``: (4,) float32, pixels in the image frame.
    - ``mask``: (H, W) bool, the person's segmentation mask in image coordinates.
    - ``keypoints_2d``: (K, 3) float32 ``[u, v, visibility]`` in pixels (MediaPipe's 33).
    - ``keypoints_3d``: (K, 3) float32, metric, hip-centred (MediaPipe world landmarks).
    - ``tz``: pelvis depth, metres.
    - ``betas``: (10,), ``global_orient``: (3,) axis-angle into the camera frame,
      ``body_pose``: (63,) axis-angle of the 21 SMPL-X body joints.
    - ``focal_px``: focal length in pixels; ``transl``: (3,) pelvis in the camera frame, metres.
    """

    person_index: int
    bbox_xyxy: np.ndarray
    det_score: float
    mask: np.ndarray | None = None
    seg_score: float | None = None
    keypoints_2d: np.ndarray | None = None
    keypoints_3d: np.ndarray | None = None
    tz: float | None = None
    betas: np.ndarray | None = None
    global_orient: np.ndarray | None = None
    body_pose: np.ndarray | None = None
    focal_px: float | None = None
    transl: np.ndarray | None = None
    mask_iou: float | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    accepted: bool = False
    reject_reasons: tuple[str, ...] = (REASON_NOT_FITTED,)
    fit_score: float | None = None  # quality.fit_score (0-1), None where it cannot be computed


@dataclass(frozen=True)
class ImageRecord:
    """A decoded sample on its way through the stages.

    ``image`` is ``(H, W, 3)`` uint8 RGB, or ``None`` once the sample failed
    or after the image is no longer needed. ``meta`` is the sample's parsed
    ``json`` member (or ``{}``); ``extra_members`` the other member bytes a
    backend may need (e.g. ``mask.png`` for the oracle segmenter).
    """

    key: str
    shard: str
    url: str
    width: int = 0
    height: int = 0
    image: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    extra_members: dict[str, bytes] = field(default_factory=dict)
    member_exts: tuple[str, ...] = ()
    persons: tuple[Person, ...] = ()
    status: str = STATUS_OK
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == STATUS_ERROR

    def fail(self, stage: str, exc: BaseException | str) -> "ImageRecord":
        """Return this record marked failed at ``stage``; the image is released."""
        message = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        message = _ADDRESS.sub("", message)  # object addresses would make reruns differ
        return dataclasses.replace(
            self, status=STATUS_ERROR, error=f"{stage}: {message}", image=None, persons=()
        )

    def with_timing(self, stage: str, seconds: float) -> "ImageRecord":
        return dataclasses.replace(self, timings={**self.timings, stage: seconds})


def replace(obj, **changes):
    """``dataclasses.replace`` re-exported for stage code."""
    return dataclasses.replace(obj, **changes)
