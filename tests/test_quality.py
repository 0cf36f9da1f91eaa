"""The accept rule (poselabel/models/quality/): each reason fires on a constructed row, not on a good one.

Most tests here judge under the checks rule (``CHECKS_RULE``: every check rejects alone), the
ground of both rules; the fit-score rule (the default) is tested in tests/test_fit_score.py."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from poselabel.config import CHECKS_RULE, ConfigError, QualityConfig, RunConfig
from poselabel.models.body.keypoints import keypoint_error, keypoint_residual
from poselabel.models.masks import encode_rle
from poselabel.models.quality.evidence import depth_inconsistent, focal_pinned, horizontal_fov_deg
from poselabel.models.quality.facts import facts_from_row
from poselabel.models.quality.joint_limits import joint_limit_violations
from poselabel.models.quality.rule import judge_image, judge_row
from poselabel.records import CameraFit, ImageRecord, Person
from poselabel.tables import person_row
from poselabel.transforms.judge_quality import JudgeQuality

W, H = 300, 400
Q = QualityConfig(**CHECKS_RULE)


def ellipse(cx=150, cy=200, rx=50, ry=120) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1


def box_of(mask) -> list[float]:
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def good_row(**changes) -> dict:
    mask = changes.pop("mask", ellipse())
    focal = (W / 2) / np.tan(np.radians(30))  # 60° horizontal field of view
    row = {"key": "k", "shard": "s", "person_index": 0, "image_width": W, "image_height": H,
           "bbox_xyxy": box_of(mask), "det_score": 0.9, "mask_rle": encode_rle(mask), "mask_area": int(mask.sum()),
           "tz": 3.0, "focal_px": float(focal), "cx": W / 2, "cy": H / 2, "transl": [0.0, 0.1, 3.0],
           "global_orient": [np.pi, 0.0, 0.0], "body_pose": [0.0] * 63, "betas": [0.5] * 10,
           "mask_iou": 0.97, "fit_loss": 0.2, "fit_iters": 80, "diagnostics": None}
    row.update(changes)
    return row


def pose_with(slot: int, xyz) -> list[float]:
    pose = np.zeros((21, 3))
    pose[slot] = xyz
    return pose.reshape(-1).tolist()


def test_good_row_is_accepted():
    assert judge_row(good_row(), Q) == ()
    assert horizontal_fov_deg(W, good_row()["focal_px"]) == pytest.approx(60.0)


CASES = {
    "no_mask": dict(mask_rle=None, mask_area=None),
    "not_fitted": dict(focal_px=None, transl=None, mask_iou=None, fit_loss=None),
    "tz_failed": dict(diagnostics=json.dumps({"tz_error": "no landmarks"})),
    "pose_failed": dict(diagnostics=json.dumps({"pose_error": "no landmark fit"})),
    "behind_camera": dict(focal_px=float("nan"), transl=[float("nan")] * 3,
                          diagnostics=json.dumps({"camera_reject": "behind_camera"})),
    "low_det_score": dict(det_score=0.3),
    "mask_box_mismatch": dict(bbox_xyxy=[150.0, 0.0, 300.0, 150.0]),
    "low_mask_iou": dict(mask_iou=0.3),
    "not_converged": dict(diagnostics=json.dumps({"converged": False})),
    "tz_out_of_range": dict(transl=[0.0, 0.0, 80.0]),
    "fov_out_of_range": dict(focal_px=40.0),  # 150°
    "extreme_shape": dict(betas=[0.0, 0.0, 3.5] + [0.0] * 7),
    "joint_limits": dict(body_pose=pose_with(3, (-0.6, 0, 0))),  # left knee bent forwards
    "keypoint_mismatch": dict(diagnostics=json.dumps({"keypoint_error": 0.25})),
    "depth_inconsistent": dict(diagnostics=json.dumps({"depth_gain": 0.05})),
}


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_reason_fires_alone(reason):
    assert judge_row(good_row(**CASES[reason]), Q) == (reason,)


def test_size_and_truncation():
    small = ellipse(rx=6, ry=12)
    assert judge_row(good_row(mask=small), Q) == ("too_small",)
    assert judge_row(good_row(mask=ellipse(rx=8, ry=30)), Q) == ()  # 60 px tall, 750 px: big enough
    cut = ellipse(cy=390, ry=200)  # cut across by the bottom edge: its run there spans the body
    assert judge_row(good_row(mask=cut), Q) == ("truncated",)
    foot = ellipse(cy=280, ry=120.3)  # only the tip touches the bottom edge
    assert judge_row(good_row(mask=foot), Q) == ()
    huge = np.zeros((H, W), bool)
    huge[:, 20:] = True  # touches top, right and bottom
    assert "truncated" in judge_row(good_row(mask=huge), Q)


def test_thresholds_move_the_verdict():
    assert judge_row(good_row(fit_loss=0.6), dataclasses.replace(Q, max_fit_loss=0.5)) == ("not_converged",)
    poor = Q.min_mask_iou - 0.05
    assert judge_row(good_row(mask_iou=poor), Q) == ("low_mask_iou",)
    assert judge_row(good_row(mask_iou=poor), dataclasses.replace(Q, min_mask_iou=poor - 0.05)) == ()
    assert judge_row(good_row(mask_iou=0.3), dataclasses.replace(Q, disabled_checks=("low_mask_iou",))) == ()
    assert judge_row(good_row(focal_px=2000.0), Q) == ("fov_out_of_range",)  # 8.6°
    with pytest.raises(ConfigError):
        dataclasses.replace(Q, disabled_checks=("no_such_check",)).validate()
    with pytest.raises(ConfigError):
        dataclasses.replace(Q, min_tz_m=5.0, max_tz_m=1.0).validate()


def test_focal_disagreement_needs_well_fitted_peers_of_the_same_image():
    f = good_row()["focal_px"]
    facts = lambda *rows: [facts_from_row(good_row(**r)) for r in rows]  # noqa: E731
    # Three people, one camera: the one at 1.3 f is out (> 10 %), the others agree.
    assert judge_image(facts({}, dict(focal_px=1.05 * f), dict(focal_px=1.3 * f)), Q) == [(), (), ("focal_disagreement",)]
    # Two people who disagree: each is judged against the other (neither can be trusted).
    assert judge_image(facts({}, dict(focal_px=0.7 * f)), Q) == [("focal_disagreement",)] * 2
    # A peer below min_mask_iou is no evidence (but is judged against the good one); an
    # unfitted one is no evidence either; alone: no check.
    low = dict(focal_px=0.7 * f, mask_iou=0.5)
    assert judge_image(facts({}, low), Q) == [(), ("low_mask_iou", "focal_disagreement")]
    assert judge_image(facts({}, CASES["not_fitted"]), Q)[0] == ()
    assert judge_image(facts(dict(focal_px=0.7 * f)), Q) == [()]
    # The threshold and the switch.
    wide = dataclasses.replace(Q, max_focal_disagreement=0.5)
    assert judge_image(facts({}, dict(focal_px=1.3 * f)), wide) == [(), ()]
    off = dataclasses.replace(Q, disabled_checks=("focal_disagreement",))
    assert judge_image(facts({}, dict(focal_px=1.3 * f)), off) == [(), ()]
    # judge_row sees one row alone: no peers, no image-level check.
    assert judge_row(good_row(focal_px=1.3 * f), Q) == ()


def test_the_votes_are_the_own_solves_not_the_images_shared_camera():
    """After the image's shared camera (camera.scene.share_camera) both people carry one focal
    length; the accept rule still hears what each own solve found (``solo_focal_px``,
    ``solo_iou`` in ``diagnostics``), as it did before the sharing; the range checks read the
    label (the shared camera)."""
    f = good_row()["focal_px"]
    shared = lambda own_f, iou=0.97: json.dumps({"solo_focal_px": own_f, "solo_iou": iou})  # noqa: E731
    rows = [good_row(focal_px=1.1 * f, diagnostics=shared(f)), good_row(focal_px=1.1 * f, diagnostics=shared(1.3 * f))]
    facts = [facts_from_row(r) for r in rows]
    assert facts[1].solo_focal_px == 1.3 * f and facts[1].focal_px == 1.1 * f
    assert judge_image(facts, Q) == [("focal_disagreement",)] * 2
    unshared = [facts_from_row(good_row(focal_px=f)), facts_from_row(good_row(focal_px=1.3 * f))]
    assert judge_image(unshared, Q) == judge_image(facts, Q)
    # the fit's IoU the rule reads is its own solve's
    poor = facts_from_row(good_row(mask_iou=0.97, diagnostics=shared(f, 0.3)))
    assert poor.objective_iou == 0.3 and "low_mask_iou" in judge_image([poor], Q)[0]
    # the field of view is the label's: a shared focal length out of range is rejected
    narrow = facts_from_row(good_row(focal_px=50 * f, diagnostics=shared(f)))
    assert "fov_out_of_range" in judge_image([narrow], Q)[0]


def test_peers_who_agree_vouch_for_a_truncated_person():
    f = good_row()["focal_px"]
    cut = dict(mask=ellipse(cy=390, ry=200))  # truncated alone (test_size_and_truncation)
    facts = lambda *rows: [facts_from_row(good_row(**r)) for r in rows]  # noqa: E731
    assert judge_image(facts(cut), Q) == [("truncated",)]
    assert judge_image(facts(cut, dict(focal_px=1.05 * f)), Q) == [(), ()]
    assert judge_image(facts(dict(cut, focal_px=1.3 * f), {}), Q) == [("truncated", "focal_disagreement"),
                                                                       ("focal_disagreement",)]
    assert judge_image(facts(cut, dict(focal_px=1.05 * f, mask_iou=0.5)), Q)[0] == ("truncated",)  # no evidence
    strict = dataclasses.replace(Q, truncated_ok_with_peers=False)
    assert judge_image(facts(cut, dict(focal_px=1.05 * f)), strict) == [("truncated",), ()]


def test_joint_limits_hinges_and_mirroring():
    assert joint_limit_violations(pose_with(3, (2.0, 0, 0))) == []  # knee flexed 115°
    assert joint_limit_violations(pose_with(17, (0, -2.0, 0))) == []  # left elbow flexes with -y
    assert joint_limit_violations(pose_with(18, (0, 2.0, 0))) == []  # right elbow mirrored: +y
    assert joint_limit_violations(pose_with(17, (0, 1.0, 0))) == ["left_elbow"]
    assert joint_limit_violations(pose_with(12, (0, 0, 1.5))) == ["left_collar"]
    assert joint_limit_violations(pose_with(12, (0, 0, 1.5)), slack_deg=30) == []


def test_stage_and_table_rows_agree():
    """The pipeline stage on a Person and judge_row on its table row give the same reasons."""
    mask = ellipse(cy=390, ry=200)
    variants = [dict(), dict(mask_iou=0.2), dict(det_score=0.1, body_pose=pose_with(4, (-0.5, 0, 0)))]
    for quality, v in [(q, v) for q in (QualityConfig(), Q) for v in variants]:
        config = RunConfig(input="x", output="y", quality=quality)
        stage = JudgeQuality(config)
        row = good_row(mask=mask, **v)
        person = Person(person_index=0, bbox_xyxy=np.asarray(row["bbox_xyxy"], np.float32), det_score=row["det_score"],
                        mask=mask, tz=row["tz"], betas=np.asarray(row["betas"]),
                        global_orient=np.asarray(row["global_orient"]), body_pose=np.asarray(row["body_pose"]),
                        focal_px=row["focal_px"], transl=np.asarray(row["transl"]), mask_iou=row["mask_iou"],
                        camera=CameraFit(fit_loss=row["fit_loss"], cx=W / 2, cy=H / 2))
        record = ImageRecord(key="k", shard="s", url="u", width=W, height=H, persons=(person,))
        judged = stage.apply(record).persons[0]
        table_row = person_row(record, judged)
        assert judged.reject_reasons == judge_row(table_row, config.quality) == judge_row(row, config.quality)
        assert judged.accepted == (judged.reject_reasons == ())
        assert facts_from_row(table_row).mask_area == int(mask.sum())
        assert "joint_limits" in judged.reject_reasons or v.get("det_score") is None
    assert "truncated" in judged.reject_reasons  # the checks rule: truncation rejects alone


def test_stage_and_table_rows_agree_on_an_image_with_a_pinned_and_an_unpinned_person():
    """The image-level rule reads the peers' focal margins from the stage's Person
    diagnostics and from the table rows alike."""
    f = good_row()["focal_px"]
    config = RunConfig(input="x", output="y", quality=Q)
    people = [(ellipse(cx=200), f, {}),  # whole outline: pins f
              (ellipse(cx=60, cy=390, rx=40, ry=200), 1.5 * f, {"focal_margin": 0.0})]  # truncated, f free
    persons = []
    for i, (mask, focal, diag) in enumerate(people):
        row = good_row(mask=mask, focal_px=focal)
        persons.append(Person(person_index=i, bbox_xyxy=np.asarray(row["bbox_xyxy"], np.float32), det_score=0.9,
                              mask=mask, tz=3.0, betas=np.asarray(row["betas"]),
                              global_orient=np.asarray(row["global_orient"]), body_pose=np.asarray(row["body_pose"]),
                              focal_px=focal, transl=np.asarray(row["transl"]), mask_iou=row["mask_iou"],
                              camera=CameraFit.from_diagnostics(diag, fit_loss=0.2, cx=W / 2, cy=H / 2)))
    record = ImageRecord(key="k", shard="s", url="u", width=W, height=H, persons=tuple(persons))
    judged = JudgeQuality(config).apply(record).persons
    assert [p.reject_reasons for p in judged] == [(), ("truncated", "focal_disagreement")]
    rows = [person_row(record, p) for p in judged]
    assert judge_image([facts_from_row(r) for r in rows], config.quality) == [p.reject_reasons for p in judged]
    scored = RunConfig(input="x", output="y")  # the fit-score rule reads the same peers from both
    judged = JudgeQuality(scored).apply(record).persons
    assert judge_image([facts_from_row(person_row(record, p)) for p in judged], scored.quality) == [
        p.reject_reasons for p in judged]


def test_stage_in_a_pipeline_counts_reasons():
    import apache_beam as beam
    from apache_beam.testing.test_pipeline import TestPipeline
    from apache_beam.testing.util import assert_that, equal_to

    config = RunConfig(input="x", output="y")
    mask = ellipse()
    persons = tuple(Person(person_index=i, bbox_xyxy=np.asarray(box_of(mask), np.float32), det_score=s, mask=mask,
                           focal_px=300.0, transl=np.array([0.0, 0.0, 3.0]), mask_iou=iou)
                    for i, (s, iou) in enumerate(((0.9, 0.96), (0.9, 0.2), (0.1, 0.96))))
    record = ImageRecord(key="k", shard="s", url="u", width=W, height=H, persons=persons)
    pipeline = TestPipeline()
    out = (pipeline | beam.Create([record]) | beam.ParDo(JudgeQuality(config))
           | beam.FlatMap(lambda r: [p.reject_reasons for p in r.persons]))
    assert_that(out, equal_to([(), ("low_mask_iou",), ("low_det_score",)]))
    result = pipeline.run()
    result.wait_until_finish()
    counters = {m.key.metric.name: m.committed for m in result.metrics().query()["counters"]}
    assert counters["rejected_low_mask_iou"] == 1 and counters["rejected_low_det_score"] == 1
    assert counters["accepted"] == 1


def test_filter_judges_people_of_one_image_together():
    """``poselabel filter`` groups a table's rows by image: the image-level check gives the
    same verdicts as the pipeline stage does on the image's persons."""
    import pyarrow as pa

    from poselabel.pipelines.rejudge import rejudge_table
    from poselabel.tables import PERSONS_SCHEMA

    f = good_row()["focal_px"]
    rows = [good_row(key="a", person_index=0), good_row(key="b", person_index=0, focal_px=0.6 * f),
            good_row(key="a", person_index=1, focal_px=1.5 * f), good_row(key="a", person_index=2, focal_px=1.02 * f)]
    table = pa.Table.from_pylist(rows, schema=PERSONS_SCHEMA)
    out, reasons = rejudge_table(table, Q)
    assert reasons == [(), (), ("focal_disagreement",), ()]  # "b" is alone in its image: not checked
    assert out.column("accepted").to_pylist() == [True, True, False, True]
    assert out.column("reject_reasons").to_pylist()[2] == ["focal_disagreement"]


def test_a_mask_that_pins_the_focal_length_vouches_for_a_truncated_person():
    """diagnostics["focal_margin"] (camera.scene.focal_margin) at or above min_focal_margin
    lifts the truncation doubt, alone in its image, through judge_row (table rows) too."""
    import json

    cut = ellipse(cy=390, ry=200)
    row = lambda margin: good_row(mask=cut, diagnostics=None if margin is None  # noqa: E731
                                  else json.dumps({"focal_margin": margin}))
    assert judge_row(row(None), Q) == ("truncated",)
    assert judge_row(row(Q.min_focal_margin - 0.01), Q) == ("truncated",)
    assert judge_row(row(Q.min_focal_margin), Q) == ()
    assert judge_row(row(float("nan")), Q) == ("truncated",)
    off = dataclasses.replace(Q, min_focal_margin=0.0)
    assert judge_row(row(0.5), off) == ("truncated",)
    # Not a waiver for anything else: a poor fit stays rejected.
    assert judge_row(dict(row(0.5), mask_iou=0.5), Q) == ("low_mask_iou",)


def test_a_margin_large_against_the_fits_own_residual_pins_the_focal_length():
    """focal_pinned: below min_focal_margin, a margin of at least min_focal_margin_ratio x
    (1 - mask_iou) (and min_focal_margin_floor) still pins f: the alternative cameras explain
    the mask clearly worse than the fit's own mismatch."""
    cut = ellipse(cy=390, ry=200)
    row = lambda margin, iou: good_row(mask=cut, mask_iou=iou,  # noqa: E731
                                       diagnostics=json.dumps({"focal_margin": margin}))
    small = Q.min_focal_margin / 2
    near_perfect = 1.0 - small / (2 * Q.min_focal_margin_ratio)  # residual: half what the ratio allows
    assert focal_pinned(small, near_perfect, Q) and judge_row(row(small, near_perfect), Q) == ()
    plain = 1.0 - 2 * small / Q.min_focal_margin_ratio  # residual: twice what the ratio allows
    assert plain >= Q.min_mask_iou and focal_pinned(small, plain, Q) is False
    assert judge_row(row(small, plain), Q) == ("truncated",)
    tiny = Q.min_focal_margin_floor / 2  # below the probes' noise, however good the fit
    assert judge_row(row(tiny, 1.0 - tiny / (4 * Q.min_focal_margin_ratio)), Q) == ("truncated",)
    assert judge_row(row(small, near_perfect), dataclasses.replace(Q, min_focal_margin_ratio=0.0)) == ("truncated",)
    assert judge_row(row(small, near_perfect), dataclasses.replace(Q, min_focal_margin=0.0)) == ("truncated",)
    assert focal_pinned(None, 0.99, Q) is None and focal_pinned(float("nan"), 0.99, Q) is None


def test_another_depth_that_takes_a_share_of_a_near_perfect_fits_residual_is_inconsistent():
    """depth_inconsistent: above max_depth_gain, or at least max_depth_gain_ratio of 1 - mask_iou
    (and depth_gain_floor)."""
    row = lambda gain, iou: good_row(mask_iou=iou, diagnostics=json.dumps({"depth_gain": gain}))  # noqa: E731
    small = Q.max_depth_gain / 2
    near_perfect = 1.0 - small / (2 * Q.max_depth_gain_ratio)  # the gain is twice the share allowed
    assert judge_row(row(small, near_perfect), Q) == ("depth_inconsistent",)
    assert depth_inconsistent(small, near_perfect, Q)
    plain = 1.0 - 2 * small / Q.max_depth_gain_ratio  # the gain is half the share allowed
    assert plain >= Q.min_mask_iou and judge_row(row(small, plain), Q) == ()
    tiny = Q.depth_gain_floor / 2  # probe noise, however good the fit
    assert judge_row(row(tiny, 1.0 - tiny / (4 * Q.max_depth_gain_ratio)), Q) == ()
    assert judge_row(row(small, near_perfect), dataclasses.replace(Q, max_depth_gain_ratio=0.0)) == ()
    assert judge_row(row(2 * Q.max_depth_gain, 0.5), dataclasses.replace(Q, min_mask_iou=0.4)) == ("depth_inconsistent",)
    assert not depth_inconsistent(None, 0.99, Q) and not depth_inconsistent(-0.05, 0.999, Q)
    # Where the mask does not pin f (a measured focal margin, too small), the ratio does not apply.
    assert depth_inconsistent(small, near_perfect, Q, margin=Q.min_focal_margin)
    assert not depth_inconsistent(small, near_perfect, Q, margin=0.0)
    assert depth_inconsistent(2 * Q.max_depth_gain, near_perfect, Q, margin=0.0)  # the absolute bound does


def test_a_person_whose_mask_pins_f_is_outvoted_only_by_peers_whose_masks_pin_theirs():
    f = good_row()["focal_px"]
    cut = ellipse(cx=60, cy=390, rx=40, ry=200)  # cut by the bottom edge: truncated alone
    margin = lambda m: json.dumps({"focal_margin": m})  # noqa: E731
    whole = dict(mask=ellipse(cx=200))  # touches no border: its whole outline pins f
    unpinned = dict(mask=cut, focal_px=1.5 * f, diagnostics=margin(0.0))
    facts = lambda *rows: [facts_from_row(good_row(**r)) for r in rows]  # noqa: E731
    assert judge_image(facts(whole, unpinned), Q) == [(), ("truncated", "focal_disagreement")]
    equal = dataclasses.replace(Q, pinned_hears_pinned=False)
    assert judge_image(facts(whole, unpinned), equal) == [("focal_disagreement",), ("truncated", "focal_disagreement")]
    pinned = dict(unpinned, diagnostics=margin(Q.min_focal_margin))  # both pinned: no telling which is wrong
    assert judge_image(facts(whole, pinned), Q) == [("focal_disagreement",)] * 2
    # Two unpinned people hear each other, as before.
    assert judge_image(facts(dict(unpinned, focal_px=f), unpinned), Q) == [("truncated", "focal_disagreement")] * 2


def test_keypoint_error_is_the_mean_miss_over_the_box_side():
    rng = np.random.default_rng(0)
    joints = np.c_[rng.uniform(-0.4, 0.4, (15, 2)), rng.uniform(2.5, 3.5, 15)]  # camera frame, m
    f, cx, cy = 500.0, 160.0, 120.0
    uv = f * joints[:, :2] / joints[:, 2:] + [cx, cy]
    box = [0.0, 0.0, 100.0, 200.0]  # longer side 200 px
    seen = np.ones(15)
    assert keypoint_error(joints, uv, seen, f, cx, cy, box) == pytest.approx(0.0, abs=1e-9)
    assert keypoint_error(joints, uv + [6.0, 8.0], seen, f, cx, cy, box) == pytest.approx(10 / 200)
    far = uv.copy()
    far[:5] += 1000.0  # unseen keypoints do not count ...
    assert keypoint_error(joints, far, np.r_[np.zeros(5), np.ones(10)], f, cx, cy, box) == pytest.approx(0.0, abs=1e-9)
    assert keypoint_error(joints, uv, np.r_[np.ones(3), np.zeros(12)], f, cx, cy, box) is None  # ... too few seen
    three = np.r_[np.ones(3), np.zeros(12)]
    assert keypoint_residual(joints, uv + [6.0, 8.0], three, f, cx, cy, box) == (pytest.approx(10 / 200), 3)
    assert keypoint_residual(joints, uv, np.zeros(15), f, cx, cy, box) == (None, 0)
    behind = joints.copy()
    behind[:, 2] = -1.0
    assert keypoint_error(behind, uv, seen, f, cx, cy, box) is None


def test_keypoints_that_agree_vouch_for_a_fit_against_a_poor_mask():
    agree = json.dumps({"keypoint_error": 0.03})
    poor = (Q.min_mask_iou + Q.min_mask_iou_vouched) / 2  # between the vouched and the plain bound
    assert judge_row(good_row(mask_iou=poor), Q) == ("low_mask_iou",)
    assert judge_row(good_row(mask_iou=poor, diagnostics=agree), Q) == ()  # the mask is wrong, not the body
    own = json.dumps({"keypoint_error": 0.03, "landmark_fit": ["pose", "tz"]})  # fitted to those keypoints
    assert judge_row(good_row(mask_iou=poor, diagnostics=own), Q) == ("low_mask_iou",)
    assert judge_row(good_row(mask_iou=Q.min_mask_iou_vouched - 0.1, diagnostics=agree), Q) == ("low_mask_iou",)  # below the vouched floor
    loose = json.dumps({"keypoint_error": 0.09})  # fits the keypoints too loosely to vouch, not badly enough to reject
    assert judge_row(good_row(mask_iou=poor, diagnostics=loose), Q) == ("low_mask_iou",)
    assert judge_row(good_row(diagnostics=loose), Q) == ()
    assert judge_row(good_row(diagnostics=loose), dataclasses.replace(Q, max_keypoint_error=0.085)) == (
        "keypoint_mismatch",)
    with pytest.raises(ConfigError):
        dataclasses.replace(Q, keypoint_vouch_error=Q.max_keypoint_error + 0.1).validate()


def test_one_keypoint_refutes_a_fit_but_only_several_vouch_for_one():
    # A close-up fitted with the wrong part of the body in view: the one landmark seen (the
    # head) is far from where the fit puts it.
    def kp(error, count):
        return json.dumps({"keypoint_error": error, "keypoint_count": count})

    assert judge_row(good_row(diagnostics=kp(0.9, 1)), Q) == ("keypoint_mismatch",)
    assert judge_row(good_row(diagnostics=kp(0.9, 1)), dataclasses.replace(Q, min_keypoints_mismatch=4)) == ()
    assert judge_row(good_row(diagnostics=kp(0.03, 1)), Q) == ()
    poor = (Q.min_mask_iou + Q.min_mask_iou_vouched) / 2
    assert judge_row(good_row(mask_iou=poor, diagnostics=kp(0.03, Q.min_keypoints_vouch - 1)), Q) == ("low_mask_iou",)
    assert judge_row(good_row(mask_iou=poor, diagnostics=kp(0.03, Q.min_keypoints_vouch)), Q) == ()
    # Tables written before the count was recorded held errors from 4 keypoints up: they vouch as before.
    assert judge_row(good_row(mask_iou=poor, diagnostics=json.dumps({"keypoint_error": 0.03})), Q) == ()
    with pytest.raises(ConfigError):
        dataclasses.replace(Q, min_keypoints_mismatch=0).validate()
