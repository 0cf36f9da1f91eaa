"""The accept rule's thresholds: ``quality.*`` of a run's configuration (``poselabel.config``
re-exports them; ``poselabel/models/quality/``, docs/quality.md)."""
from __future__ import annotations

from dataclasses import dataclass

from poselabel.config_errors import check as _check
from poselabel.models.quality.checks import QUALITY_CHECKS

ACCEPT_RULES = ("score", "checks")
# the checks rule, the accept rule before the fit score (docs/quality.md): quality.* overrides
CHECKS_RULE = {"accept_rule": "checks", "min_mask_iou": 0.8, "min_mask_area_px": 400}


@dataclass(frozen=True)
class QualityConfig:
    """Thresholds of the accept rule (``poselabel/models/quality/``, docs/quality.md)."""

    # "score": the evidence checks (models/quality/checks.py SCORED_CHECKS) reject only together, through the fit score
    # (poselabel/models/quality/fit_score.py) below min_fit_score; "checks": each rejects alone (the
    # rule of runs made before the fit score, tuned with min_mask_iou 0.8: CHECKS_RULE)
    accept_rule: str = "score"
    min_fit_score: float = 0.52  # lower 90 % bound of out-of-fold precision 0.95 on the benchmark: benchmarks/fit_score.py
    fit_score_model: str = ""  # local or gs:// JSON; "": the packaged poselabel/models/quality/fit_score.json
    # Fits of segmenter masks (solved with their own objective: diagnostics fit_iou) have their
    # own model, fitted on the clothed+segmenter world, and threshold: out-of-fold precision 0.95
    # (its point estimate: on that world's weak evidence no threshold reaches the 90 % bound);
    # held out it accepts few, precisely (docs/quality.md, "Segmenter masks")
    min_fit_score_segmenter: float = 0.87
    fit_score_model_segmenter: str = ""  # "": the packaged fit_score_segmenter.json
    # hard IoU of the fitted silhouette with the mask, under either rule: below it no score or
    # keypoint saves a fit (0.5: the fit score's floor; the checks rule wants 0.8, CHECKS_RULE)
    min_mask_iou: float = 0.5
    min_peer_mask_iou: float = 0.8  # focal_disagreement: only peers fitted this well vote
    # a fitted person the score cannot judge (no depth probe, fit_score.REQUIRED) is judged by
    # the checks rule, at this IoU floor (or min_mask_iou, the higher)
    min_mask_iou_unscored: float = 0.8
    # keypoint_mismatch: diagnostics["keypoint_error"] (the fitted joints projected vs the detector's
    # 2D keypoints, mean distance / the box's longer side; camera stage) above this
    # (0.1: precision first; at 6 % detector noise instead of the benchmark's 3 % it costs 10 points
    # of recall, and 0.2 keeps them at 1-4 points of precision: docs/quality.md)
    max_keypoint_error: float = 0.1
    # a fit whose keypoint error is at most keypoint_vouch_error needs only min_mask_iou_vouched
    # (the keypoints say the body is placed well: the mask is what is wrong)
    keypoint_vouch_error: float = 0.08
    min_mask_iou_vouched: float = 0.7  # below 0.7 half the vouched benchmark fits were bad (docs/quality.md)
    # keypoints needed (diagnostics["keypoint_count"]): to vouch for a fit, and to refute one
    min_keypoints_vouch: int = 4
    min_keypoints_mismatch: int = 1
    # depth_inconsistent: diagnostics["depth_gain"] (the mask IoU gained by placing the person at
    # Tz x0.8 or x1.25 with f refitted; camera stage) above this: the given Tz is not the mask's
    max_depth_gain: float = 0.01
    # ... or at least this share of the fit's own residual 1 - mask_iou (and depth_gain_floor); 0: off
    max_depth_gain_ratio: float = 0.3
    depth_gain_floor: float = 0.002
    min_det_score: float = 0.5
    min_mask_box_iou: float = 0.4  # IoU of the detection box with the mask's tight box
    # too_small below this many mask pixels (200: the fit score, trained with smaller masks in,
    # gains 1.6 points of benchmark recall over 400 at the same precision; below 200 nothing more,
    # docs/quality.md) or a box side under min_box_side_px (a usefulness floor: a person under
    # 32 px is no training label for an HMR model, however well its camera fits)
    min_mask_area_px: int = 200
    min_box_side_px: float = 32.0  # longer side of the detection box
    border_margin_px: float = 1.0  # a box edge this close to the image edge touches it
    max_border_sides: int = 4  # truncated: the box touches >= this many image sides
    max_border_cut: float = 0.9  # truncated: the mask's run on one image edge / the mask box's extent
    min_tz_m: float = 0.3
    max_tz_m: float = 50.0
    min_fov_deg: float = 20.0  # horizontal field of view 2 atan(W / 2f)
    max_fov_deg: float = 120.0
    # focal_disagreement: fewer than half of the image's other well-fitted people have f within x(1 + this)
    max_focal_disagreement: float = 0.2
    # truncated people are accepted when their focal length agrees with their peers' (who pin the camera)
    truncated_ok_with_peers: bool = True
    # ... and when their mask pins the focal length: diagnostics["focal_margin"] (the mask IoU lost
    # with f fixed 15 % off, camera.focal_margin) at least this; 0 disables
    min_focal_margin: float = 0.05
    # ... or at least this many times the fit's own residual 1 - mask_iou (and min_focal_margin_floor)
    min_focal_margin_ratio: float = 3.0
    min_focal_margin_floor: float = 0.005
    # focal_disagreement: a person whose mask pins its f (quality.focal_pinned) is outvoted only by
    # peers whose masks pin theirs
    pinned_hears_pinned: bool = True
    max_abs_beta: float = 3.0
    joint_limit_slack_deg: float = 0.0  # added to every bound of the joint-limit table
    max_fit_loss: float = 1.0  # camera solver's final 1 - soft IoU; 1.0: off
    disabled_checks: tuple[str, ...] = ()  # names from QUALITY_CHECKS

    def validate(self) -> None:
        _check(all(0.0 <= x <= 1.0 for x in (self.min_mask_iou, self.min_peer_mask_iou, self.min_mask_iou_unscored)),
               "quality.min_mask_iou, min_peer_mask_iou and min_mask_iou_unscored must be in [0, 1]")
        _check(0.0 <= self.min_det_score <= 1.0, "quality.min_det_score must be in [0, 1]")
        _check(0.0 <= self.min_mask_box_iou <= 1.0, "quality.min_mask_box_iou must be in [0, 1]")
        _check(self.min_mask_area_px >= 0 and self.min_box_side_px >= 0, "quality size thresholds must be >= 0")
        _check(1 <= self.max_border_sides <= 5, "quality.max_border_sides must be in [1, 5] (5: off)")
        _check(0.0 < self.max_border_cut, "quality.max_border_cut must be > 0 (above 1: off)")
        _check(0.0 < self.min_tz_m < self.max_tz_m, "quality needs 0 < min_tz_m < max_tz_m")
        _check(0.0 <= self.min_fov_deg < self.max_fov_deg <= 180.0, "quality needs 0 <= min_fov_deg < max_fov_deg <= 180")
        _check(self.max_abs_beta > 0, "quality.max_abs_beta must be > 0")
        _check(self.max_focal_disagreement > 0, "quality.max_focal_disagreement must be > 0")
        _check(self.min_focal_margin >= 0 and self.min_focal_margin_ratio >= 0 and self.min_focal_margin_floor >= 0,
               "quality focal-margin thresholds must be >= 0")
        _check(self.max_depth_gain_ratio >= 0 and self.depth_gain_floor >= 0, "quality depth-gain thresholds must be >= 0")
        _check(self.max_fit_loss > 0, "quality.max_fit_loss must be > 0")
        _check(0.0 <= self.keypoint_vouch_error <= self.max_keypoint_error,
               "quality needs 0 <= keypoint_vouch_error <= max_keypoint_error")
        _check(0.0 <= self.min_mask_iou_vouched <= 1.0, "quality.min_mask_iou_vouched must be in [0, 1]")
        _check(self.min_keypoints_vouch >= 1 and self.min_keypoints_mismatch >= 1,
               "quality keypoint counts (min_keypoints_vouch, min_keypoints_mismatch) must be >= 1")
        _check(self.accept_rule in ACCEPT_RULES, f"quality.accept_rule must be one of {ACCEPT_RULES}")
        _check(0.0 <= self.min_fit_score <= 1.0, "quality.min_fit_score must be in [0, 1]")
        _check(0.0 <= self.min_fit_score_segmenter <= 1.0, "quality.min_fit_score_segmenter must be in [0, 1]")
        unknown = [c for c in self.disabled_checks if c not in QUALITY_CHECKS]
        _check(not unknown, f"quality.disabled_checks: unknown {unknown} (known: {', '.join(QUALITY_CHECKS)})")
