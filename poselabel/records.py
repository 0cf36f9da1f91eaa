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
MAX_ERROR_CHARS = 2000  # an error row's message, characters (longer ones are cut, ending in "…")

# Key of the error sample a shard that cannot be read (whole) gives, after its samples read whole.
SHARD_ERROR_KEY = "__shard__"
# Keys and member names of the form ``__name__`` are the pipeline's (``__shard__``, ``__error__``,
# WebDataset's ``__key__``); the reader escapes data that takes that form (``io/tar_stream.py``).
_RESERVED = re.compile(r"^__[^/]*__$")


def is_reserved_name(name: str) -> bool:
    """True for a key or member extension of the reserved ``__name__`` form."""
    return bool(_RESERVED.match(name))

# Reject reason carried by persons whose later stages have not run.
REASON_NOT_FITTED = "not_fitted"

# What the camera stage measures, under the keys the persons table's ``diagnostics`` JSON
# holds them by (``CameraFit.to_diagnostics`` / ``from_diagnostics``).
CAMERA_MEASURES = ("focal_margin", "depth_gain", "keypoint_error", "keypoint_count", "fit_iou", "solo_focal_px",
                   "solo_iou")


@dataclass(frozen=True)
class RawSample:
    """One WebDataset sample as read from a shard: members grouped by key.

    ``url``: the shard's absolute URL (``poselabel.io.urls.to_url``). ``members`` maps the member extension (``"jpg"``, ``"json"``, ``"mask.png"``)
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
    path: str  # the shard's absolute URL
    num_samples: int
    # the archive broke off (truncated, corrupt: permanent); its samples read whole have rows
    read_error: str | None = None
    # the storage failed (permission, I/O, network) after ``attempts`` tries: the shard is not
    # done; its ``num_samples`` rows so far are dropped and the next run reads it again
    unread: str | None = None
    attempts: int = 1
    members_skipped: dict[str, int] = field(default_factory=dict)  # io/tar_stream.py's kinds


@dataclass(frozen=True)
class LandmarkFit:
    """The no-weights estimate of one person from its MediaPipe landmarks
    (``models/body/landmark_fit.py``), made once and read by the Tz and pose stages.

    - ``betas`` (10,), ``global_orient`` (3,) axis-angle into the camera frame, ``body_pose``
      (63,) axis-angle; ``tz`` m, ``focal_px`` px, ``transl`` (3,) pelvis, camera frame, m;
    - ``landmark_error_m``: mean 3D joint error of the body fit, m; ``reprojection_rms_px``: the
      perspective solve's residual, px;
    - ``error``: why there is no estimate (the other fields are then None).
    """

    betas: np.ndarray | None = None
    global_orient: np.ndarray | None = None
    body_pose: np.ndarray | None = None
    tz: float | None = None
    focal_px: float | None = None
    transl: np.ndarray | None = None
    landmark_error_m: float | None = None
    reprojection_rms_px: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class CameraFit:
    """What the camera stage measured for one person (``models/camera/backend.py``).

    - ``cx, cy``: principal point, px; ``fit_loss``: the solver's final ``1 - soft IoU``;
      ``fit_iters``: descent steps;
    - ``reject``: the solver's reject reason (``empty_mask``, ``behind_camera``, ...), or None;
    - ``focal_margin``: mask IoU lost with ``f`` fixed 15 % off (people cut by the border);
    - ``depth_gain``: mask IoU gained at ``Tz`` x 0.8 or x 1.25 with ``f`` refitted;
    - ``keypoint_error`` (unitless, box sides) and ``keypoint_count``: the fitted joints,
      projected by the solved camera, against the detector's 2D keypoints;
    - ``fit_iou``: the solve's own objective as a score (``CameraSolution.fit_iou``: the IoU
      with uncovered mask down-weighted, less the keypoint term), where it is not the
      symmetric ``mask_iou`` (segmenter masks); the probes above are in its terms;
    - ``solo_focal_px`` (px) and ``solo_iou``: where the image's shared camera replaced the
      person's own (``camera.scene.share_camera``), the focal length and the score
      (``fit_iou``, else ``mask_iou``) of the person's own solve: what the accept rule weighs;
      the person's ``focal_px``, ``transl``, ``tz``, ``mask_iou`` and ``fit_iou`` are the shared camera's.
    None: not measured. In the persons table ``cx, cy, fit_loss, fit_iters`` are columns, the
    rest keys of ``diagnostics`` (``camera_reject`` for ``reject``).
    """

    cx: float | None = None
    cy: float | None = None
    fit_loss: float | None = None
    fit_iters: int | None = None
    reject: str | None = None
    focal_margin: float | None = None
    depth_gain: float | None = None
    keypoint_error: float | None = None
    keypoint_count: int | None = None
    fit_iou: float | None = None
    solo_focal_px: float | None = None
    solo_iou: float | None = None

    def to_diagnostics(self) -> dict[str, Any]:
        """The measures the ``diagnostics`` JSON holds (absent: not measured)."""
        out: dict[str, Any] = {"camera_reject": self.reject} if self.reject else {}
        out.update({k: getattr(self, k) for k in CAMERA_MEASURES if getattr(self, k) is not None})
        return out

    @classmethod
    def from_diagnostics(cls, diagnostics: dict[str, Any], **columns) -> "CameraFit":
        """From a persons-table row's ``diagnostics`` dict and its columns (``cx``, ``cy``,
        ``fit_loss``, ``fit_iters``); keys it does not know are ignored."""
        measures = {k: diagnostics[k] for k in CAMERA_MEASURES if diagnostics.get(k) is not None}
        return cls(reject=diagnostics.get("camera_reject") or None, **measures, **columns)


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
    - ``landmark_fit``: the estimate from the person's landmarks (None: not made);
      ``fitted_to_landmarks``: which of ``tz``, ``pose`` were fitted to those same landmarks
      (they are then no independent check of the fit); ``tz_error`` / ``pose_error``: why
      that stage gave no result; ``camera``: what the camera stage measured.
    - ``diagnostics``: write-only extras for the persons table's ``diagnostics`` JSON.
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
    landmark_fit: LandmarkFit | None = None
    fitted_to_landmarks: tuple[str, ...] = ()
    tz_error: str | None = None
    pose_error: str | None = None
    camera: CameraFit | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    accepted: bool = False
    reject_reasons: tuple[str, ...] = (REASON_NOT_FITTED,)
    fit_score: float | None = None  # quality.fit_score (0-1), None where it cannot be computed


@dataclass(frozen=True)
class ImageRecord:
    """A decoded sample on its way through the stages.

    ``image`` is ``(H, W, 3)`` uint8 RGB, or ``None`` once the sample failed
    or after the image is no longer needed. ``url`` is the absolute URL of the
    shard the sample was read from (``file:///...`` or ``gs://...``, not the
    sample's source URL: that is ``meta["url"]`` for img2dataset shards).
    ``meta`` is the sample's parsed ``json`` member (or ``{}``); ``caption`` its
    ``txt`` member (UTF-8, None without one); ``extra_members`` the other member
    bytes a backend may need (e.g. ``mask.png`` for the oracle segmenter).
    """

    key: str
    shard: str
    url: str
    width: int = 0
    height: int = 0
    image: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    caption: str | None = None
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
        """Return this record marked failed at ``stage``; the image is released. The message
        is ``error_message(exc)``: at most ``MAX_ERROR_CHARS`` characters, always UTF-8."""
        return dataclasses.replace(
            self, status=STATUS_ERROR, error=f"{stage}: {error_message(exc)}", image=None, persons=()
        )

    def with_timing(self, stage: str, seconds: float) -> "ImageRecord":
        return dataclasses.replace(self, timings={**self.timings, stage: seconds})


def error_message(exc: BaseException | str) -> str:
    """An exception (or a message) as the text of an error row: ``"<Type>: <message>"`` (the
    type alone when the message is empty or cannot be rendered), object addresses removed (they
    would make reruns differ), characters UTF-8 cannot hold (lone surrogates) escaped, and at
    most ``MAX_ERROR_CHARS`` characters (a message can quote a whole input)."""
    if isinstance(exc, str):
        message = exc
    else:
        try:
            text = str(exc)
        except Exception:  # an exception whose __str__ fails still gets its row
            text = ""
        message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    message = _ADDRESS.sub("", message[:4 * MAX_ERROR_CHARS])
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return message if len(message) <= MAX_ERROR_CHARS else message[:MAX_ERROR_CHARS - 1] + "\u2026"


def replace(obj, **changes):
    """``dataclasses.replace`` re-exported for stage code."""
    return dataclasses.replace(obj, **changes)


def map_persons(record: ImageRecord, fn) -> ImageRecord:
    """``record`` with each person ``p`` replaced by ``fn(p)`` (which may return ``p`` unchanged)."""
    return dataclasses.replace(record, persons=tuple(fn(p) for p in record.persons))
