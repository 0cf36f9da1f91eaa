"""The fit score (poselabel/models/quality/fit_score.py) and the accept rule that uses it (the default)."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from test_quality import ellipse, good_row

from poselabel.config import CHECKS_RULE, ConfigError, QualityConfig
from poselabel.models.quality import fit_score as fs
from poselabel.models.quality.checks import SCORED_CHECKS
from poselabel.models.quality.facts import facts_from_row
from poselabel.models.quality.rule import fit_score, judge_row

Q = QualityConfig()  # the fit-score rule
CHECKS = QualityConfig(**CHECKS_RULE)


def diag(**d) -> str:
    return json.dumps(d)


@pytest.mark.parametrize("path,threshold", [(fs.DEFAULT_MODEL, Q.min_fit_score),
                                            (fs.SEGMENTER_MODEL, Q.min_fit_score_segmenter)])
def test_packaged_models_are_monotone_and_carry_their_thresholds(path, threshold):
    model = fs.load_model(path)
    assert model.names == fs.FEATURES and set(fs.LABELS) == set(fs.FEATURES)
    assert 0.0 < threshold < 1.0 and model.meta["min_fit_score"] == threshold
    # fitted on the fits that the defaults' hard checks admit (the score knows nothing of the others)
    for floor in ("min_mask_area_px", "min_box_side_px", "min_mask_iou", "min_mask_box_iou"):
        assert model.meta["quality"][floor] == getattr(Q, floor), floor
    for name, t, v in zip(model.names, model.thresholds, model.values):
        assert v.shape == (t.size + 1,) and np.all(np.diff(t) > 0)
        if fs.MONOTONE[name]:
            assert np.all(fs.MONOTONE[name] * np.diff(v) >= 0), name


def test_the_exact_mask_model_scores_these_rows():
    model = fs.load_model()
    # the evidence moves the score the way it should
    x = fs.features(facts_from_row(good_row(diagnostics=diag(depth_gain=-0.01, keypoint_error=0.03,
                                                             keypoint_count=8))), Q)
    worse = x.copy()
    worse[fs.FEATURES.index("keypoint_error")] = 1.0
    lower_iou = x.copy()
    lower_iou[fs.FEATURES.index("mask_iou")] = 0.6
    s, s_kp, s_iou = model.score(np.stack([x, worse, lower_iou]))
    assert s > Q.min_fit_score and s_kp < s and s_iou < s


def test_a_low_score_is_explained_by_what_it_lost():
    model = fs.load_model()
    f = facts_from_row(good_row(mask_iou=0.9, diagnostics=diag(keypoint_error=2.0, keypoint_count=8, depth_gain=0.1)))
    x = fs.features(f, Q)
    loss = model.shortfalls(x)  # against a typical good fit of the benchmark
    assert loss.shape == (len(fs.FEATURES),) and model.reference is not None
    worst = model.explain(x)
    assert {n for n, _ in worst} == {"depth_gain_ratio", "keypoint_error"} and worst[0][1] >= worst[1][1] > 1.0
    assert model.logit(x) + loss.sum() == pytest.approx(model.bias + model.reference.sum())
    # a good fit loses little on any measure
    fine = fs.features(facts_from_row(good_row(diagnostics=diag(depth_gain=-0.05, keypoint_error=0.03,
                                                                keypoint_count=8))), Q)
    assert model.explain(fine, min_loss=1.0) == []
    # a model without reference values measures against each feature's best
    bare = dataclasses.replace(model, reference=None)
    assert np.all(bare.shortfalls(x) >= 0)
    assert fs.FitScoreModel.from_json(bare.to_json()).reference is None


def test_features_read_the_measures_and_mark_the_missing_ones():
    f = facts_from_row(good_row(mask_iou=0.9, diagnostics=diag(depth_gain=0.01, keypoint_error=0.2, keypoint_count=3)))
    x = dict(zip(fs.FEATURES, fs.features(f, Q)))
    assert x["mask_iou"] == pytest.approx(0.9) and x["depth_gain_ratio"] == pytest.approx(0.01 / 0.1)
    assert x["keypoint_error"] == pytest.approx(0.2) and x["keypoint_count"] == 3
    assert x["focal_margin"] == fs.PINNED_MARGIN  # the mask touches no border: its outline pins f
    assert x["peers_agree"] == x["peers_disagree"] == 0
    bare = dict(zip(fs.FEATURES, fs.features(facts_from_row(good_row()), Q)))
    assert np.isnan(bare["depth_gain"]) and np.isnan(bare["keypoint_error"]) and bare["keypoint_count"] == 0
    # keypoints that Tz / the pose were fitted to are no evidence for the score
    own = facts_from_row(good_row(diagnostics=diag(keypoint_error=0.01, keypoint_count=9, landmark_fit=["tz"])))
    assert np.isnan(fs.features(own, Q)[fs.FEATURES.index("keypoint_error")])
    # no keypoints: the model's own value for them; no depth probe: no score at all
    assert 0.0 < fit_score(facts_from_row(good_row(diagnostics=diag(depth_gain=0.0))), Q) < 1.0
    assert fit_score(facts_from_row(good_row()), Q) is None


def test_evidence_rejects_only_through_the_score():
    # A strong case against: missing the keypoints by a box, and a better depth elsewhere.
    against = good_row(mask_iou=0.9, diagnostics=diag(keypoint_error=2.0, keypoint_count=8, depth_gain=0.1))
    assert fit_score(facts_from_row(against), Q) < Q.min_fit_score
    assert judge_row(against, Q) == ("low_fit_score", "keypoint_mismatch", "depth_inconsistent")
    assert judge_row(against, CHECKS) == ("keypoint_mismatch", "depth_inconsistent")
    # A near miss on two keypoints of an otherwise clean fit: alone it rejects under the checks
    # rule, weighed with the rest it does not.
    near = good_row(diagnostics=diag(keypoint_error=0.12, keypoint_count=2, depth_gain=-0.02))  # probed
    assert fit_score(facts_from_row(near), Q) >= Q.min_fit_score
    assert judge_row(near, Q) == () and judge_row(near, CHECKS) == ("keypoint_mismatch",)
    # low_fit_score switched off: the evidence checks do not reject at all
    assert judge_row(against, dataclasses.replace(Q, disabled_checks=("low_fit_score",))) == ()
    # the threshold moves the verdict
    assert judge_row(near, dataclasses.replace(Q, min_fit_score=0.99))[0] == "low_fit_score"
    # what the score does not see still rejects alone
    own = good_row(diagnostics=diag(keypoint_error=0.5, keypoint_count=8, landmark_fit=["pose"], depth_gain=0.0))
    assert "keypoint_mismatch" in judge_row(own, Q)
    probed = diag(depth_gain=-0.01)
    assert judge_row(good_row(mask_iou=Q.min_mask_iou - 0.05, diagnostics=probed), Q)[0] == "low_mask_iou"  # a floor
    assert judge_row(good_row(det_score=0.1, diagnostics=probed), Q) == ("low_det_score",)
    assert "low_mask_iou" not in SCORED_CHECKS


def test_a_person_the_score_cannot_judge_is_judged_by_the_checks_rule():
    """No depth probe (``camera.depth_gain`` off, tables from elsewhere), or no focal margin
    for a mask on the border: the model never saw such fits, so the checks rule judges them,
    its IoU floor raised to ``min_mask_iou_unscored``."""
    fair = good_row(mask_iou=0.75, diagnostics=diag(depth_gain=-0.1))
    assert fit_score(facts_from_row(fair), Q) >= Q.min_fit_score and judge_row(fair, Q) == ()
    unprobed = good_row(mask_iou=0.75)
    assert fit_score(facts_from_row(unprobed), Q) is None
    assert judge_row(unprobed, Q) == ("low_mask_iou",) == judge_row(unprobed, CHECKS)
    assert judge_row(unprobed, dataclasses.replace(Q, min_mask_iou_unscored=0.6)) == ()
    assert judge_row(good_row(diagnostics=diag(keypoint_error=0.12, keypoint_count=2)), Q) == ("keypoint_mismatch",)
    cut = good_row(mask=ellipse(cy=390, ry=200), diagnostics=diag(depth_gain=-0.01))  # on the border, no margin
    assert fit_score(facts_from_row(cut), Q) is None and judge_row(cut, Q) == ("truncated",)


def test_config_validation():
    for bad in (dict(accept_rule="vote"), dict(min_fit_score=1.5), dict(min_peer_mask_iou=-0.1)):
        with pytest.raises(ConfigError):
            dataclasses.replace(Q, **bad).validate()


def test_model_file_round_trips_and_refuses_what_it_is_not(tmp_path):
    model = fs.load_model()
    again = fs.FitScoreModel.from_json(model.to_json())
    x = np.random.default_rng(0).uniform(0, 1, (50, len(fs.FEATURES)))
    x[::7, 5] = np.nan
    np.testing.assert_array_equal(again.score(x), model.score(x))
    path = tmp_path / "m.json"
    path.write_text(model.to_json())
    np.testing.assert_array_equal(fs.load_model(str(path)).score(x), model.score(x))
    text = json.loads(model.to_json())
    with pytest.raises(ValueError, match="format"):
        fs.FitScoreModel.from_json(json.dumps({**text, "format": "pickle"}))
    with pytest.raises(ValueError, match="features"):
        fs.FitScoreModel.from_json(json.dumps({**text, "features": text["features"][:-1]}))
    broken = json.loads(model.to_json())
    broken["features"][0]["values"] = broken["features"][0]["values"][:-1]
    with pytest.raises(ValueError, match="ascending"):
        fs.FitScoreModel.from_json(json.dumps(broken))
    with pytest.raises(ValueError, match="expected 13 features"):
        model.score(np.zeros((2, 3)))


def test_boosted_stumps_learn_a_monotone_rule_and_keep_the_directions():
    """On made data where goodness rises with the IoU feature and falls with the keypoint
    error, the fitted curves rise and fall, separate the classes, and a feature whose data
    run against its declared direction is left flat."""
    rng = np.random.default_rng(3)
    n = 2000
    x = np.full((n, len(fs.FEATURES)), np.nan)
    iou, kp, gain = rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 1.0, n), rng.uniform(-0.05, 0.05, n)
    x[:, fs.FEATURES.index("mask_iou")] = iou
    x[:, fs.FEATURES.index("keypoint_error")] = np.where(rng.uniform(size=n) < 0.2, np.nan, kp)
    x[:, fs.FEATURES.index("depth_gain")] = gain
    logit = 12 * (iou - 0.75) - 6 * (np.nan_to_num(kp, nan=0.3) - 0.3) + 40 * gain  # gain "helps": against its sign
    y = rng.uniform(size=n) < 1 / (1 + np.exp(-logit))
    model = fs.fit_stumps(x, y, rounds=200)
    p = model.score(x)
    oracle = np.mean((logit - 40 * gain > 0) == y)  # the best rule that may not use the gain
    assert np.mean((p > 0.5) == y) > oracle - 0.03
    v = dict(zip(model.names, model.values))
    assert v["mask_iou"][-1] - v["mask_iou"][0] > 1.0 and v["keypoint_error"][-1] - v["keypoint_error"][0] < -0.5
    assert np.all(np.diff(v["depth_gain"]) <= 0)  # declared -1: the opposite trend is not learnt
    # never-seen missing values get the mean contribution, not one side's
    iou_j = fs.FEATURES.index("mask_iou")
    assert min(v["mask_iou"]) < model.nan_values[iou_j] < max(v["mask_iou"])


def test_the_stage_and_filter_write_the_score_in_its_column():
    """``fit_score`` is a persons-table column: set by the quality stage with the image's
    peers heard, rewritten by ``poselabel filter``, and added to tables written without it."""
    import pyarrow as pa
    from test_quality import ellipse

    from poselabel.config import RunConfig
    from poselabel.models.quality.evidence import with_peers
    from poselabel.models.quality.rule import assess_image, judge_image
    from poselabel.pipelines.rejudge import rejudge_table
    from poselabel.records import CameraFit, ImageRecord, Person
    from poselabel.tables import PERSONS_SCHEMA, person_row
    from poselabel.transforms.judge_quality import JudgeQuality

    rows = [good_row(person_index=0, diagnostics=diag(depth_gain=-0.05)),
            good_row(person_index=1, mask_iou=0.85, diagnostics=diag(depth_gain=0.02)),
            good_row(person_index=2)]  # no depth probe: no score
    persons = tuple(Person(person_index=r["person_index"], bbox_xyxy=np.asarray(r["bbox_xyxy"], np.float32),
                           det_score=0.9, mask=ellipse(), tz=3.0, betas=np.asarray(r["betas"]),
                           global_orient=np.asarray(r["global_orient"]), body_pose=np.asarray(r["body_pose"]),
                           focal_px=r["focal_px"], transl=np.asarray(r["transl"]), mask_iou=r["mask_iou"],
                           camera=CameraFit.from_diagnostics(json.loads(r["diagnostics"] or "{}"), fit_loss=0.2, cx=150, cy=200))
                    for r in rows)
    record = ImageRecord(key="k", shard="s", url="u", width=300, height=400, persons=persons)
    judged = JudgeQuality(RunConfig(input="x", output="y")).apply(record).persons
    facts = [facts_from_row(person_row(record, p)) for p in judged]
    expected = [fit_score(f, Q) for f in with_peers(facts)]
    assert [p.fit_score for p in judged] == expected == [s for _, s in assess_image(facts, Q)]
    assert [r for r, _ in assess_image(facts, Q)] == judge_image(facts, Q) == [p.reject_reasons for p in judged]
    assert expected[0] > expected[1] and expected[2] is None
    table = pa.Table.from_pylist([person_row(record, p) for p in judged], schema=PERSONS_SCHEMA)
    def same(column):  # float32 in the table
        values = column.to_pylist()
        return values[2] is None and values[:2] == pytest.approx(expected[:2], rel=1e-6)

    assert same(table.column("fit_score"))
    strict = dataclasses.replace(Q, min_fit_score=0.999)
    out, reasons = rejudge_table(table, strict)
    assert same(out.column("fit_score"))
    assert "low_fit_score" in reasons[1]
    old = table.drop_columns(["fit_score"])  # a table from before the column
    again, _ = rejudge_table(old, Q)
    assert again.schema.equals(PERSONS_SCHEMA)
    assert same(again.column("fit_score"))


def test_size_floor_the_score_was_fitted_with_and_the_checks_rules():
    thin = ellipse(rx=4, ry=24)  # about 300 px of mask in a 48 px tall box
    assert Q.min_mask_area_px <= int(thin.sum()) < CHECKS.min_mask_area_px
    row = good_row(mask=thin, diagnostics=diag(depth_gain=-0.05, keypoint_error=0.03, keypoint_count=8))
    assert "too_small" not in judge_row(row, Q)
    assert judge_row(row, CHECKS) == ("too_small",)
    tiny = ellipse(rx=3, ry=9)  # under 200 px, and a box under 32 px
    assert "too_small" in judge_row(good_row(mask=tiny, diagnostics=row["diagnostics"]), Q)
    # a large box whose visible mask is tiny (an occluded person) is too small as well
    occluded = good_row(mask=ellipse(rx=4, ry=8), bbox_xyxy=[100.0, 80.0, 200.0, 320.0], diagnostics=row["diagnostics"])
    assert "too_small" in judge_row(occluded, Q)
