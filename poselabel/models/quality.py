"""The accept rule: named reject reasons of one person (numpy only, no Beam, no torch).

The same rule runs in the pipeline (``transforms/judge_quality.py``, on ``Person``
records) and in ``poselabel filter`` (on persons-table rows): both first build
:class:`PersonFacts`, then call :func:`judge`. Thresholds are ``QualityConfig``'s
(``poselabel/config.py``); docs/quality.md says how the defaults were chosen.

Reasons, in the order they are reported (a person gets every reason that fires):

- pipeline failures (cannot be disabled): ``no_mask``, ``tz_failed``, ``pose_failed``,
  the camera solver's own reject reason (``diagnostics["camera_reject"]``, e.g.
  ``empty_mask``, ``small_mask``, ``behind_camera``, ``nan``, ``no_overlap``), else
  ``not_fitted`` when there is no finite ``focal_px``/``transl``;
- ``low_det_score``: ``det_score < min_det_score``;
- ``mask_box_mismatch``: IoU of the detection box with the mask's tight box below
  ``min_mask_box_iou`` (a mask that belongs to someone else, or is shifted);
- ``too_small``: ``mask_area < min_mask_area_px`` or the box's longer side
  ``< min_box_side_px``;
- ``truncated``: the box touches (within ``border_margin_px``) ``>= max_border_sides``
  image sides, or on one image edge the mask's pixels span ``>= max_border_cut`` of the
  mask box's extent along that edge (a body cut across, not a foot touching the edge);
  unless (``truncated_ok_with_peers``) the person's focal length agrees with its peers'
  (see ``focal_disagreement``), or its mask pins the focal length (:func:`focal_pinned`):
  ``diagnostics["focal_margin"]`` (the mask IoU lost when ``f`` is fixed 15 % off and the
  translation refitted; ``camera_scene.focal_margin``) ``>= min_focal_margin``, or
  ``>= min_focal_margin_ratio`` × the fit's own residual ``1 - mask_iou``;
- ``low_mask_iou``: fitted silhouette vs mask IoU ``< min_mask_iou`` (skipped when the
  camera stage gives no IoU, e.g. the oracle camera); when the detector's 2D keypoints
  agree with the fit (``diagnostics["keypoint_error"] <= keypoint_vouch_error``, on at least
  ``min_keypoints_vouch`` keypoints, ``diagnostics["keypoint_count"]``) the bound is
  ``min_mask_iou_vouched``: the body is placed well and the mask is what is wrong. Not
  when ``Tz`` or the pose was fitted to those same keypoints (``diagnostics["landmark_fit"]``,
  the geometric default): agreeing with its own input proves nothing;
- ``depth_inconsistent``: ``diagnostics["depth_gain"] > max_depth_gain``, or at least
  ``max_depth_gain_ratio`` of the fit's residual ``1 - mask_iou`` (:func:`depth_inconsistent`):
  placed at another depth (``Tz`` × 0.8 or × 1.25, ``f`` refitted) the body explains its mask
  better (``camera_scene.depth_gain``): a wrong ``Tz`` that ``f`` absorbed only up to perspective;
- ``keypoint_mismatch``: ``diagnostics["keypoint_error"] > max_keypoint_error`` on at least
  ``min_keypoints_mismatch`` keypoints (default 1): the fitted joints, projected by the solved
  camera, miss the detector's 2D keypoints (:func:`keypoint_residual`; skipped without
  keypoints). One keypoint suffices to refute a fit: a close-up showing only the head and
  shoulders, fitted with the legs in view, misses them by far more than the bound;
- ``not_converged``: ``diagnostics["converged"] is False`` or ``fit_loss > max_fit_loss``;
- ``tz_out_of_range``: pelvis depth (``transl[2]``, else ``tz``) outside
  ``[min_tz_m, max_tz_m]``;
- ``fov_out_of_range``: horizontal field of view ``2 atan(W / 2f)`` outside
  ``[min_fov_deg, max_fov_deg]``;
- ``focal_disagreement``: the other people of the image share its camera; when some of
  them are fitted with ``mask_iou >= min_peer_mask_iou`` (its *peers*), at least half of them
  must have a focal length within a factor ``1 + max_focal_disagreement`` of its own; a
  person whose mask pins its ``f`` hears only peers whose masks pin theirs
  (``pinned_hears_pinned``). An independent second estimate: a wrong ``Tz`` is absorbed
  into a wrong ``f`` with a clean silhouette, which no mask check sees (docs/quality.md).
  Needs the whole image: :func:`judge_image`;
- ``extreme_shape``: any ``|beta| > max_abs_beta`` (4D-Humans drops betas beyond 3);
- ``joint_limits``: a body joint's axis-angle outside :data:`JOINT_LIMITS_DEG`;
- ``low_fit_score`` (``accept_rule`` "score", the default): the fit score
  (``poselabel.models.fit_score``, all the evidence of a fitted person weighed together) is
  below ``min_fit_score``; then the evidence checks of ``config.SCORED_CHECKS`` that fired
  follow it, and they reject only so (:func:`judge`). Under ``accept_rule`` "checks" each
  rejects alone and ``low_fit_score`` never fires.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from poselabel.models.masks import box_iou, decode_rle, mask_bbox

REASON_NO_MASK = "no_mask"
REASON_NOT_FITTED = "not_fitted"
# diagnostics["keypoint_error"] without a "keypoint_count" (tables written before the count was
# recorded): the error was recorded only when at least this many keypoints were seen
LEGACY_KEYPOINTS = 4

# Per body joint (SMPL-X joints 1..21 = body_pose slots 0..20): (max |θ| deg, hinge) where
# hinge = (axis, sign_left, max_off_axis_deg): the rotation's component about ``axis``
# times the side's sign must be >= -10° (no hyperextension) and the other two components
# stay within max_off_axis_deg. Right-side slots mirror the y and z signs. Signs follow
# poselabel/synth/poses.py: knee +x flexes, left elbow -y flexes.
HYPEREXTENSION_DEG = 10.0
JOINT_LIMITS_DEG: tuple[tuple[str, float, tuple[int, float, float] | None], ...] = (
    ("left_hip", 160, None), ("right_hip", 160, None), ("spine1", 70, None),
    ("left_knee", 165, (0, 1.0, 45)), ("right_knee", 165, (0, 1.0, 45)), ("spine2", 70, None),
    ("left_ankle", 90, None), ("right_ankle", 90, None), ("spine3", 70, None),
    ("left_foot", 60, None), ("right_foot", 60, None), ("neck", 90, None),
    ("left_collar", 60, None), ("right_collar", 60, None), ("head", 90, None),
    ("left_shoulder", 170, None), ("right_shoulder", 170, None),
    ("left_elbow", 165, (1, -1.0, 60)), ("right_elbow", 165, (1, -1.0, 60)),
    ("left_wrist", 120, None), ("right_wrist", 120, None),
)


@dataclass(frozen=True)
class PersonFacts:
    """What the rule looks at, from a ``Person`` or a table row.

    Pixels for sizes and boxes (``bbox_xyxy`` (4,) image frame), metres for ``tz`` and
    ``transl`` (3,), radians for ``body_pose`` (63,), px for ``focal_px``. ``border_runs``:
    per image edge (left, top, right, bottom) the number of mask pixels lying on it;
    ``mask_box``: the mask's tight box (4,) or None.
    """

    det_score: float
    image_width: int
    image_height: int
    bbox_xyxy: np.ndarray
    has_mask: bool
    mask_area: int | None = None
    mask_box: np.ndarray | None = None
    border_runs: tuple[int, int, int, int] | None = None
    tz: float | None = None
    focal_px: float | None = None
    transl: np.ndarray | None = None
    betas: np.ndarray | None = None
    body_pose: np.ndarray | None = None
    mask_iou: float | None = None
    fit_loss: float | None = None
    diagnostics: dict[str, Any] = field(default_factory=dict)
    # (focal_px, mask_iou, focal_margin or nan) of the other fitted people of the same image
    # (set by judge_image; a 2-tuple reads as a peer without a focal margin)
    peers: tuple[tuple[float, ...], ...] = ()


def mask_geometry(mask: np.ndarray) -> tuple[int, np.ndarray | None, tuple[int, int, int, int]]:
    """``(area px, tight box (4,) or None, border runs (left, top, right, bottom))`` of a (H, W) bool mask."""
    mask = np.asarray(mask, dtype=bool)
    runs = (int(mask[:, 0].sum()), int(mask[0, :].sum()), int(mask[:, -1].sum()), int(mask[-1, :].sum()))
    return int(mask.sum()), mask_bbox(mask), runs


def _finite(x) -> bool:
    return x is not None and bool(np.all(np.isfinite(np.asarray(x, dtype=np.float64))))


def _arr(x) -> np.ndarray | None:
    return None if x is None else np.asarray(x, dtype=np.float64).reshape(-1)


def is_fitted(f: PersonFacts) -> bool:
    """Whether the camera stage gave the person a finite, positive ``focal_px`` and a ``transl``."""
    return _finite(f.focal_px) and _finite(f.transl) and f.focal_px > 0


def row_diagnostics(row: dict[str, Any]) -> dict[str, Any]:
    """A persons-table row's ``diagnostics`` column (a JSON string, or None) as a dict."""
    diag = row.get("diagnostics")
    return json.loads(diag) if isinstance(diag, str) and diag else (diag or {})


def facts_from_row(row: dict[str, Any]) -> PersonFacts:
    """Facts of a persons-table row (a dict of its columns); decodes ``mask_rle`` (pycocotools)."""
    rle = row.get("mask_rle")
    area, box, runs = (None, None, None)
    if rle is not None:
        area, box, runs = mask_geometry(decode_rle(rle))
    diag = row_diagnostics(row)
    return PersonFacts(
        det_score=float(row["det_score"]), image_width=int(row["image_width"]),
        image_height=int(row["image_height"]), bbox_xyxy=_arr(row["bbox_xyxy"]), has_mask=rle is not None,
        mask_area=area, mask_box=box, border_runs=runs, tz=row.get("tz"), focal_px=row.get("focal_px"),
        transl=_arr(row.get("transl")), betas=_arr(row.get("betas")), body_pose=_arr(row.get("body_pose")),
        mask_iou=row.get("mask_iou"), fit_loss=row.get("fit_loss"), diagnostics=diag)


def keypoint_residual(joints_cam: np.ndarray, keypoints_2d: np.ndarray, weights: np.ndarray, focal_px: float,
                      cx: float, cy: float, bbox_xyxy: np.ndarray) -> tuple[float | None, int]:
    """How far the fitted joints land from the detector's 2D keypoints, and on how many.

    ``joints_cam`` (K, 3) fitted joints in the camera frame (m), paired with ``keypoints_2d``
    (K, 2) image px and ``weights`` (K,) (0: not seen); projected with ``focal_px`` and the
    principal point ``(cx, cy)`` px. Returns ``(error, count)``: the weighted mean distance
    divided by the longer side of ``bbox_xyxy`` (4,) px (unitless; None when no weighted
    keypoint lies in front of the camera), and the number of weighted keypoints it averages.
    """
    j = np.asarray(joints_cam, np.float64).reshape(-1, 3)
    kp = np.asarray(keypoints_2d, np.float64).reshape(-1, 2)
    w = np.asarray(weights, np.float64).reshape(-1)
    w = np.where(np.isfinite(kp).all(1) & np.isfinite(j).all(1) & (j[:, 2] > 1e-6), np.clip(w, 0, None), 0.0)
    count = int((w > 0).sum())
    if count == 0:
        return None, 0
    z = np.where(w > 0, j[:, 2], 1.0)
    uv = np.stack([focal_px * j[:, 0] / z + cx, focal_px * j[:, 1] / z + cy], 1)
    dist = np.linalg.norm(np.where(w[:, None] > 0, uv - kp, 0.0), axis=1)
    box = np.asarray(bbox_xyxy, np.float64)
    side = max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0)
    return float((dist * w).sum() / w.sum() / side), count


def keypoint_error(joints_cam: np.ndarray, keypoints_2d: np.ndarray, weights: np.ndarray, focal_px: float,
                   cx: float, cy: float, bbox_xyxy: np.ndarray, min_points: int = 4) -> float | None:
    """:func:`keypoint_residual`'s error, or None with fewer than ``min_points`` keypoints."""
    error, count = keypoint_residual(joints_cam, keypoints_2d, weights, focal_px, cx, cy, bbox_xyxy)
    return error if count >= min_points else None  # error is None at count 0


def horizontal_fov_deg(width: float, focal_px: float) -> float:
    """``2 atan(W / 2f)`` in degrees."""
    return math.degrees(2.0 * math.atan(width / (2.0 * focal_px)))


def joint_limit_violations(body_pose: np.ndarray, slack_deg: float = 0.0) -> list[str]:
    """Names of the joints of a (63,) axis-angle body pose outside :data:`JOINT_LIMITS_DEG`."""
    pose = np.degrees(np.asarray(body_pose, dtype=np.float64).reshape(21, 3))
    bad = []
    for slot, (name, max_deg, hinge) in enumerate(JOINT_LIMITS_DEG):
        aa = pose[slot]
        if np.linalg.norm(aa) > max_deg + slack_deg:
            bad.append(name)
            continue
        if hinge is not None:
            axis, sign, off_deg = hinge
            side = -1.0 if name.startswith("right_") and axis != 0 else 1.0
            flex = aa[axis] * sign * side
            off = np.delete(aa, axis)
            if flex < -HYPEREXTENSION_DEG - slack_deg or np.abs(off).max() > off_deg + slack_deg:
                bad.append(name)
    return bad


def truncation(f: PersonFacts, config) -> tuple[int, float]:
    """``(image sides the box touches, largest border cut)``; the cut is the mask's run on an
    image edge over the mask box's extent along that edge (0 without a mask)."""
    x0, y0, x1, y1 = f.bbox_xyxy
    m = config.border_margin_px
    sides = int(x0 <= m) + int(y0 <= m) + int(x1 >= f.image_width - m) + int(y1 >= f.image_height - m)
    cut = 0.0
    if f.border_runs is not None and f.mask_box is not None:
        bw = max(float(f.mask_box[2] - f.mask_box[0]), 1.0)
        bh = max(float(f.mask_box[3] - f.mask_box[1]), 1.0)
        left, top, right, bottom = f.border_runs
        cut = max(left / bh, right / bh, top / bw, bottom / bw)
    return sides, cut


_UNSET = object()


def judge(f: PersonFacts, config, *, score: Any = _UNSET) -> tuple[str, ...]:
    """The reject reasons of one person under a ``QualityConfig`` (empty: accepted).

    With ``accept_rule == "score"`` the evidence checks (``config.SCORED_CHECKS``) of a fitted
    person are reported only when its fit score (:func:`fit_score`) is below
    ``min_fit_score``, after ``low_fit_score``: they say why the score is low, and none
    rejects alone. A fitted person without a score (a measure missing) is judged by the
    checks rule, its IoU floor raised to ``min_mask_iou_unscored``. A ``keypoint_mismatch``
    on keypoints that ``Tz`` or the pose was fitted to (``diagnostics["landmark_fit"]``)
    still rejects alone: the score does not see them. ``score``: the person's
    :func:`fit_score` when the caller has it already (:func:`assess_image`)."""
    from poselabel.config import SCORED_CHECKS

    off = set(config.disabled_checks)
    reasons: list[str] = []
    evidence: list[str] = []  # scored checks that fired (accept_rule "score")
    fitted = is_fitted(f)
    if score is _UNSET:
        score = fit_score(f, config) if config.accept_rule == "score" and fitted else None
    scored = config.accept_rule == "score" and fitted and score is not None

    def check(name: str, fails: bool) -> None:
        if fails and name not in off:
            (evidence if scored and name in SCORED_CHECKS else reasons).append(name)

    diag = f.diagnostics or {}
    if not f.has_mask:
        reasons.append(REASON_NO_MASK)
    if "tz_error" in diag:
        reasons.append("tz_failed")
    if "pose_error" in diag:
        reasons.append("pose_failed")
    if diag.get("camera_reject"):
        reasons.append(str(diag["camera_reject"]))
    elif not fitted:
        reasons.append(REASON_NOT_FITTED)
    check("low_det_score", f.det_score < config.min_det_score)
    if f.mask_box is not None:
        iou = float(box_iou(f.bbox_xyxy[None], f.mask_box[None])[0, 0])
        check("mask_box_mismatch", iou < config.min_mask_box_iou)
    bw, bh = f.bbox_xyxy[2] - f.bbox_xyxy[0], f.bbox_xyxy[3] - f.bbox_xyxy[1]
    small_mask = f.mask_area is not None and f.mask_area < config.min_mask_area_px
    check("too_small", small_mask or max(bw, bh) < config.min_box_side_px)
    sides, cut = truncation(f, config)
    # A truncated person is rejected because the visible part fits many cameras; peers who
    # pin the camera and agree with its focal length lift that doubt (docs/quality.md).
    disagrees = focal_disagreement(f, config) if fitted else None  # None: no peer to ask
    vouched = config.truncated_ok_with_peers and disagrees is False
    vouched = vouched or (fitted and bool(focal_pinned(diag.get("focal_margin"), f.mask_iou, config)))
    check("truncated", (sides >= config.max_border_sides or cut >= config.max_border_cut) and not vouched)
    kp_error = diag.get("keypoint_error")
    kp_error = float(kp_error) if _finite(kp_error) else None
    # tables written before keypoint_count was recorded have an error only from LEGACY_KEYPOINTS up
    kp_count = int(diag.get("keypoint_count", LEGACY_KEYPOINTS)) if kp_error is not None else 0
    if fitted:
        floor = config.min_mask_iou
        if config.accept_rule == "score" and not scored:  # no score: the checks rule's floor
            floor = max(floor, config.min_mask_iou_unscored)
        independent = not diag.get("landmark_fit")  # Tz / pose not fitted to these very keypoints
        if (independent and kp_count >= config.min_keypoints_vouch and kp_error is not None
                and kp_error <= config.keypoint_vouch_error):
            floor = min(floor, config.min_mask_iou_vouched)
        check("low_mask_iou", _finite(f.mask_iou) and f.mask_iou < floor)
        mismatch = kp_count >= config.min_keypoints_mismatch and kp_error is not None and kp_error > config.max_keypoint_error
        if independent:
            check("keypoint_mismatch", mismatch)
        elif mismatch and "keypoint_mismatch" not in off:
            reasons.append("keypoint_mismatch")
        check("depth_inconsistent", depth_inconsistent(diag.get("depth_gain"), f.mask_iou, config,
                                                          diag.get("focal_margin")))
        check("not_converged", diag.get("converged") is False
              or (_finite(f.fit_loss) and f.fit_loss > config.max_fit_loss))
        fov = horizontal_fov_deg(f.image_width, f.focal_px)
        check("fov_out_of_range", not config.min_fov_deg <= fov <= config.max_fov_deg)
        check("focal_disagreement", bool(disagrees))
    depth = f.transl[2] if fitted else f.tz
    if _finite(depth):
        check("tz_out_of_range", not config.min_tz_m <= float(depth) <= config.max_tz_m)
    if _finite(f.betas):
        check("extreme_shape", bool(np.abs(f.betas).max() > config.max_abs_beta))
    if _finite(f.body_pose) and f.body_pose.size == 63:
        check("joint_limits", bool(joint_limit_violations(f.body_pose, config.joint_limit_slack_deg)))
    if scored and "low_fit_score" not in off and score < config.min_fit_score:
        reasons += ["low_fit_score", *evidence]
    return tuple(reasons)


def fit_score(f: PersonFacts, config) -> float | None:
    """The fit score of one person (``poselabel.models.fit_score``; model
    ``config.fit_score_model``), in (0, 1): the benchmark's share of good fits among fits with
    this evidence. None when a measure the score needs is missing (``fit_score.scorable``:
    no mask IoU, no depth probe, or no focal margin for a mask on the border). Set ``f.peers``
    first (:func:`with_peers`) where the image is known."""
    scored = _score_inputs(f, config)
    return None if scored is None else float(scored[0].score(scored[1]))


def explained_fit_score(f: PersonFacts, config) -> tuple[float, list[tuple[str, float]]] | None:
    """:func:`fit_score` and the measures it lost most on against a typical good fit
    (``FitScoreModel.explain``: ``(feature, logit lost)``, largest first); None where there
    is no score. For report cards."""
    scored = _score_inputs(f, config)
    if scored is None:
        return None
    model, x = scored
    return float(model.score(x)), model.explain(x)


def _score_inputs(f: PersonFacts, config):
    """``(model, features (F,))`` of one person, or None when it is not scorable."""
    from poselabel.models import fit_score as fs

    x = fs.features(f, config)
    return (fs.load_model(config.fit_score_model), x) if fs.scorable(x) else None


def depth_inconsistent(gain: Any, mask_iou: Any, config, margin: Any = None) -> bool:
    """Whether another depth explains the mask better than the fit's ``Tz``.

    ``gain`` is ``diagnostics["depth_gain"]`` (the mask IoU gained at ``Tz`` × 0.8 or × 1.25
    with ``f`` refitted, ``camera_scene.depth_gain``). Inconsistent above ``max_depth_gain``,
    or when it is at least ``max_depth_gain_ratio`` of the fit's own residual ``1 - mask_iou``
    (and ``depth_gain_floor``): a near-perfect fit has little IoU left to gain, and another
    depth that takes a good share of it is evidence against the given ``Tz`` all the same.
    The ratio route needs a pinned focal length (``focal_pinned(margin, ...)`` not False,
    ``margin`` the fit's ``focal_margin``): each probe refits ``f``, and where the mask does
    not pin ``f`` its small gains are noise."""
    if not _finite(gain):
        return False
    gain = float(gain)
    if gain > config.max_depth_gain:
        return True
    ratio = config.max_depth_gain_ratio
    if ratio <= 0 or not _finite(mask_iou) or gain < config.depth_gain_floor:
        return False
    # f free: the probes' refits are noise
    return gain >= ratio * (1.0 - float(mask_iou)) and focal_pinned(margin, mask_iou, config) is not False


def focal_pinned(margin: Any, mask_iou: Any, config) -> bool | None:
    """Whether a person's mask pins its focal length (None: no focal margin was measured).

    ``margin`` is ``diagnostics["focal_margin"]`` (the mask IoU lost with ``f`` fixed 15 %
    off, ``camera_scene.focal_margin``). Pinned when it is at least ``min_focal_margin``, or
    at least ``min_focal_margin_ratio`` times the fit's own residual ``1 - mask_iou``: an
    alternative camera that explains the mask that much worse than the fit's own mismatch is
    ruled out even when the absolute loss is small (a near-perfect fit); never below
    ``min_focal_margin_floor``, the probes' own noise. ``min_focal_margin`` 0: never pinned."""
    if not _finite(margin):
        return None
    margin = float(margin)
    if config.min_focal_margin <= 0:  # the focal-margin evidence is switched off
        return False
    if margin >= config.min_focal_margin:
        return True
    ratio = config.min_focal_margin_ratio
    return bool(ratio > 0 and _finite(mask_iou) and margin > 0
                and margin >= max(ratio * (1.0 - float(mask_iou)), config.min_focal_margin_floor))


def focal_votes(f: PersonFacts, config) -> tuple[int, int] | None:
    """``(agree, disagree)``: how many of this person's peers (``f.peers`` with ``mask_iou >=
    config.min_peer_mask_iou``) have a focal length within a factor ``1 + config.max_focal_disagreement``
    of its own, and how many outside. A person whose own mask pins its focal length
    (:func:`focal_pinned`) hears only peers whose masks pin theirs: a truncated peer's focal
    length is whatever its solver stopped at. None: not fitted, or no peer to ask."""
    if not (_finite(f.focal_px) and f.focal_px > 0):
        return None
    peers = [(p[0], p[1], p[2] if len(p) > 2 else math.nan) for p in f.peers]  # (focal, iou, margin)
    peers = [p for p in peers if _finite(p[0]) and p[0] > 0 and _finite(p[1]) and p[1] >= config.min_peer_mask_iou]
    own = focal_pinned((f.diagnostics or {}).get("focal_margin"), f.mask_iou, config)
    if config.pinned_hears_pinned and config.min_focal_margin > 0 and own is not False:
        peers = [p for p in peers if focal_pinned(p[2], p[1], config) is not False]
    if not peers:
        return None
    tol = math.log1p(config.max_focal_disagreement)
    agree = sum(abs(math.log(float(f.focal_px) / p[0])) <= tol for p in peers)
    return agree, len(peers) - agree


def focal_disagreement(f: PersonFacts, config) -> bool | None:
    """Whether this person's focal length disagrees with its image's other people: fewer of
    its peers agree than disagree (:func:`focal_votes`). A vote, not a distance to a mean, so
    that one bad peer does not take the others down with it. Two people on an equal footing
    who disagree are both out (there is no telling which is wrong). None: no peer to ask."""
    votes = focal_votes(f, config)
    return None if votes is None else votes[0] < votes[1]


def with_peers(facts: list[PersonFacts]) -> list[PersonFacts]:
    """The facts of one image's people, each with the others' ``(focal_px, mask_iou,
    focal_margin)`` as ``peers`` (fitted people only; nan: not measured)."""
    def peer(f: PersonFacts):
        if not is_fitted(f):
            return None
        margin = (f.diagnostics or {}).get("focal_margin")
        return (float(f.focal_px), float(f.mask_iou) if _finite(f.mask_iou) else math.nan,
                float(margin) if _finite(margin) else math.nan)

    fitted = [peer(f) for f in facts]
    return [dataclasses.replace(f, peers=tuple(p for j, p in enumerate(fitted) if j != i and p is not None))
            for i, f in enumerate(facts)]


def judge_image(facts: list[PersonFacts], config) -> list[tuple[str, ...]]:
    """:func:`judge` on every person of one image, with the image-level checks
    (``focal_disagreement``): use this, not :func:`judge`, wherever the image is known."""
    return [judge(f, config) for f in with_peers(facts)]


def assess_image(facts: list[PersonFacts], config) -> list[tuple[tuple[str, ...], float | None]]:
    """``(reasons, fit_score)`` of every person of one image: :func:`judge_image`'s reasons and
    the column ``fit_score`` (:func:`fit_score` with the peers heard, under either
    ``accept_rule``; None: not fitted, or not scorable), each score computed once."""
    out = []
    for f in with_peers(facts):
        score = fit_score(f, config) if is_fitted(f) else None
        out.append((judge(f, config, score=score), score))
    return out


def judge_row(row: dict[str, Any], config) -> tuple[str, ...]:
    """:func:`judge` on one persons-table row alone (no image-level check)."""
    return judge(facts_from_row(row), config)
