"""The accept rule's checks: one function per reject reason (numpy only).

Each check is ``check(f, ev, config) -> reason or None``: ``f`` the person's
:class:`~poselabel.models.quality.facts.PersonFacts`, ``ev`` the :class:`Evidence` that
several checks share (computed once per person), ``config`` a ``QualityConfig``. The rule
(``rule.judge``) is a loop over :data:`CHECKS`, in the order reasons are reported; a person
gets every reason that fires. A new check is one function here, one entry in
:data:`CHECKS` and one threshold in ``QualityConfig``. The thresholds and how the defaults
were chosen: ``poselabel/config.py``, docs/quality.md.

Roles (:class:`Check`):
- ``failure``: a stage gave nothing to judge (``no_mask``, ``tz_failed``, ``pose_failed``,
  the solver's own reject, ``not_fitted``); always on, always rejects;
- ``scored``: an evidence check the fit score weighs (``accept_rule`` "score"): where the
  person has a score, it is reported only after ``low_fit_score`` and never rejects alone;
- otherwise a check rejects alone; any but the failures can be switched off by name
  (``quality.disabled_checks``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from poselabel.models.masks import box_iou
from poselabel.models.quality.evidence import (
    depth_inconsistent,
    focal_disagreement,
    focal_pinned,
    horizontal_fov_deg,
    truncation,
)
from poselabel.models.quality.facts import LEGACY_KEYPOINTS, PersonFacts, finite, is_fitted
from poselabel.models.quality.joint_limits import joint_limit_violations
from poselabel.records import REASON_NOT_FITTED

REASON_NO_MASK = "no_mask"
REASON_LOW_FIT_SCORE = "low_fit_score"


@dataclass(frozen=True)
class Evidence:
    """What several checks of one person read: ``fitted`` (``facts.is_fitted``), ``scored``
    (judged by the fit score: ``accept_rule`` "score" and a score), ``disagrees``
    (``evidence.focal_disagreement``; None: no peer to ask), ``kp_error`` / ``kp_count`` (the
    keypoint residual, None / 0 without one) and ``independent`` (``Tz`` and pose were not
    fitted to those keypoints)."""

    fitted: bool
    scored: bool
    disagrees: bool | None
    kp_error: float | None
    kp_count: int
    independent: bool

    @classmethod
    def of(cls, f: PersonFacts, config, scored: bool) -> "Evidence":
        fitted = is_fitted(f)
        kp_error = float(f.camera.keypoint_error) if finite(f.camera.keypoint_error) else None
        count = f.camera.keypoint_count
        kp_count = (LEGACY_KEYPOINTS if count is None else int(count)) if kp_error is not None else 0
        return cls(fitted=fitted, scored=scored, disagrees=focal_disagreement(f, config) if fitted else None,
                   kp_error=kp_error, kp_count=kp_count, independent=not f.fitted_to_landmarks)


Reason = str | None


def no_mask(f: PersonFacts, ev: Evidence, config) -> Reason:
    return REASON_NO_MASK if not f.has_mask else None


def tz_failed(f: PersonFacts, ev: Evidence, config) -> Reason:
    return "tz_failed" if f.tz_error is not None else None


def pose_failed(f: PersonFacts, ev: Evidence, config) -> Reason:
    return "pose_failed" if f.pose_error is not None else None


def not_fitted(f: PersonFacts, ev: Evidence, config) -> Reason:
    """The camera solver's own reject reason (``empty_mask``, ``small_mask``,
    ``behind_camera``, ``nan``, ``no_overlap``), else ``not_fitted`` without a finite
    ``focal_px`` / ``transl``."""
    if f.camera.reject:
        return str(f.camera.reject)
    return REASON_NOT_FITTED if not ev.fitted else None


def low_det_score(f: PersonFacts, ev: Evidence, config) -> Reason:
    return "low_det_score" if f.det_score < config.min_det_score else None


def mask_box_mismatch(f: PersonFacts, ev: Evidence, config) -> Reason:
    """The detection box against the mask's tight box: IoU below ``min_mask_box_iou`` (a mask
    that belongs to someone else, or is shifted)."""
    if f.mask_box is None:
        return None
    iou = float(box_iou(f.bbox_xyxy[None], f.mask_box[None])[0, 0])
    return "mask_box_mismatch" if iou < config.min_mask_box_iou else None


def too_small(f: PersonFacts, ev: Evidence, config) -> Reason:
    """``mask_area < min_mask_area_px`` or the box's longer side ``< min_box_side_px``."""
    bw, bh = f.bbox_xyxy[2] - f.bbox_xyxy[0], f.bbox_xyxy[3] - f.bbox_xyxy[1]
    small_mask = f.mask_area is not None and f.mask_area < config.min_mask_area_px
    return "too_small" if small_mask or max(bw, bh) < config.min_box_side_px else None


def truncated(f: PersonFacts, ev: Evidence, config) -> Reason:
    """The box touches (within ``border_margin_px``) ``>= max_border_sides`` image sides, or on
    one edge the mask spans ``>= max_border_cut`` of its box along it (a body cut across, not
    a foot touching the edge). The visible part then fits many cameras; not when peers who
    agree on the focal length vouch (``truncated_ok_with_peers``) or the mask pins ``f``
    (``evidence.focal_pinned``)."""
    sides, cut = truncation(f, config)
    vouched = config.truncated_ok_with_peers and ev.disagrees is False
    vouched = vouched or (ev.fitted and bool(focal_pinned(f.camera.focal_margin, f.objective_iou, config)))
    cut_off = sides >= config.max_border_sides or cut >= config.max_border_cut
    return "truncated" if cut_off and not vouched else None


def low_mask_iou(f: PersonFacts, ev: Evidence, config) -> Reason:
    """Fitted silhouette vs mask IoU below ``min_mask_iou`` (raised to ``min_mask_iou_unscored``
    for a person the score cannot judge; skipped without an IoU, e.g. the oracle camera). Where
    independent keypoints agree with the fit (``keypoint_vouch_error`` on at least
    ``min_keypoints_vouch``), the bound is ``min_mask_iou_vouched``: the body is placed well and
    the mask is what is wrong."""
    if not ev.fitted:
        return None
    floor = config.min_mask_iou
    if config.accept_rule == "score" and not ev.scored:
        floor = max(floor, config.min_mask_iou_unscored)
    if (ev.independent and ev.kp_count >= config.min_keypoints_vouch and ev.kp_error is not None
            and ev.kp_error <= config.keypoint_vouch_error):
        floor = min(floor, config.min_mask_iou_vouched)
    return "low_mask_iou" if finite(f.objective_iou) and f.objective_iou < floor else None


def _keypoints_missed(ev: Evidence, config) -> bool:
    return (ev.fitted and ev.kp_count >= config.min_keypoints_mismatch and ev.kp_error is not None
            and ev.kp_error > config.max_keypoint_error)


def keypoint_mismatch(f: PersonFacts, ev: Evidence, config) -> Reason:
    """The fitted joints, projected by the solved camera, miss the detector's independent 2D
    keypoints by more than ``max_keypoint_error`` (box sides) on at least
    ``min_keypoints_mismatch``. One keypoint suffices to refute a fit: a close-up of head and
    shoulders fitted with the legs in view misses them by far more than the bound."""
    return "keypoint_mismatch" if ev.independent and _keypoints_missed(ev, config) else None


def own_keypoint_mismatch(f: PersonFacts, ev: Evidence, config) -> Reason:
    """:func:`keypoint_mismatch` on keypoints that ``Tz`` or the pose was fitted to (the
    geometric default): the score does not see them, so a miss rejects alone."""
    return "keypoint_mismatch" if not ev.independent and _keypoints_missed(ev, config) else None


def depth_inconsistent_check(f: PersonFacts, ev: Evidence, config) -> Reason:
    """Placed at another depth (``Tz`` x 0.8 or x 1.25, ``f`` refitted) the body explains its mask
    better (``evidence.depth_inconsistent``): a wrong ``Tz`` that ``f`` absorbed only up to
    perspective."""
    if not ev.fitted:
        return None
    bad = depth_inconsistent(f.camera.depth_gain, f.objective_iou, config, f.camera.focal_margin)
    return "depth_inconsistent" if bad else None


def not_converged(f: PersonFacts, ev: Evidence, config) -> Reason:
    """A solver that said it did not converge, or ``fit_loss > max_fit_loss``."""
    if not ev.fitted:
        return None
    bad = f.converged is False or (finite(f.fit_loss) and f.fit_loss > config.max_fit_loss)
    return "not_converged" if bad else None


def fov_out_of_range(f: PersonFacts, ev: Evidence, config) -> Reason:
    """Horizontal field of view ``2 atan(W / 2f)`` outside ``[min_fov_deg, max_fov_deg]``."""
    if not ev.fitted:
        return None
    fov = horizontal_fov_deg(f.image_width, f.focal_px)
    return None if config.min_fov_deg <= fov <= config.max_fov_deg else "fov_out_of_range"


def focal_disagreement_check(f: PersonFacts, ev: Evidence, config) -> Reason:
    """Fewer of the image's peers agree with the person's focal length than disagree
    (``evidence.focal_votes``): a wrong ``Tz`` absorbed into a wrong ``f`` leaves a clean
    silhouette that no mask check sees. Needs the whole image (``rule.judge_image``)."""
    return "focal_disagreement" if ev.fitted and ev.disagrees else None


def tz_out_of_range(f: PersonFacts, ev: Evidence, config) -> Reason:
    """Pelvis depth (``transl[2]``, else ``tz``) outside ``[min_tz_m, max_tz_m]``."""
    depth = f.transl[2] if ev.fitted else f.tz
    if not finite(depth):
        return None
    return None if config.min_tz_m <= float(depth) <= config.max_tz_m else "tz_out_of_range"


def extreme_shape(f: PersonFacts, ev: Evidence, config) -> Reason:
    """Any ``|beta| > max_abs_beta`` (4D-Humans drops betas beyond 3)."""
    return "extreme_shape" if finite(f.betas) and np.abs(f.betas).max() > config.max_abs_beta else None


def joint_limits(f: PersonFacts, ev: Evidence, config) -> Reason:
    """A body joint's axis-angle outside ``joint_limits.JOINT_LIMITS_DEG``."""
    if not (finite(f.body_pose) and f.body_pose.size == 63):
        return None
    return "joint_limits" if joint_limit_violations(f.body_pose, config.joint_limit_slack_deg) else None


@dataclass(frozen=True)
class Check:
    """One entry of the rule: ``name`` (what ``disabled_checks`` names), its function, and its
    role: ``failure`` (always on, always rejects) or ``scored`` (weighed by the fit score)."""

    name: str
    fn: Callable[[PersonFacts, Evidence, object], Reason]
    failure: bool = False
    scored: bool = False


CHECKS: tuple[Check, ...] = (
    Check(REASON_NO_MASK, no_mask, failure=True),
    Check("tz_failed", tz_failed, failure=True),
    Check("pose_failed", pose_failed, failure=True),
    Check(REASON_NOT_FITTED, not_fitted, failure=True),
    Check("low_det_score", low_det_score),
    Check("mask_box_mismatch", mask_box_mismatch),
    Check("too_small", too_small),
    Check("truncated", truncated, scored=True),
    Check("low_mask_iou", low_mask_iou),
    Check("keypoint_mismatch", keypoint_mismatch, scored=True),
    Check("keypoint_mismatch", own_keypoint_mismatch),
    Check("depth_inconsistent", depth_inconsistent_check, scored=True),
    Check("not_converged", not_converged),
    Check("fov_out_of_range", fov_out_of_range),
    Check("focal_disagreement", focal_disagreement_check, scored=True),
    Check("tz_out_of_range", tz_out_of_range),
    Check("extreme_shape", extreme_shape),
    Check("joint_limits", joint_limits),
)

# The names ``quality.disabled_checks`` takes, and the evidence checks the fit score weighs
# together (accept_rule "score", docs/quality.md).
QUALITY_CHECKS: tuple[str, ...] = (*dict.fromkeys(c.name for c in CHECKS if not c.failure), REASON_LOW_FIT_SCORE)
SCORED_CHECKS: tuple[str, ...] = tuple(dict.fromkeys(c.name for c in CHECKS if c.scored))


def run_checks(f: PersonFacts, ev: Evidence, config) -> tuple[list[str], list[str]]:
    """``(reasons, evidence)``: the reasons that reject alone, and the scored checks that fired
    for a person judged by its fit score (reported only after ``low_fit_score``)."""
    off = set(config.disabled_checks)
    reasons: list[str] = []
    evidence: list[str] = []
    for check in CHECKS:
        if not check.failure and check.name in off:
            continue
        reason = check.fn(f, ev, config)
        if reason is not None:
            (evidence if check.scored and ev.scored else reasons).append(reason)
    return reasons, evidence

