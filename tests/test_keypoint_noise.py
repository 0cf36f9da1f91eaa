"""``benchmarks/keypoint_noise.py``: MediaPipe's landmark error against the true joints of clothed renders."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("keypoint_noise", ROOT / "benchmarks" / "keypoint_noise.py")
kn = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(kn)

SEED = 2026
INDICES = (22, 24, 26)  # clothed samples of seed 2026 in which the MediaPipe detector finds people


def test_landmark_points_pair_like_the_solver():
    kp = np.zeros((33, 3))
    kp[:, 0], kp[:, 1], kp[:, 2] = np.arange(33), 100 + np.arange(33), 0.9
    kp[7], kp[8] = (10, 20, 0.8), (30, 40, 0.3)  # ears
    uv, vis = kn.landmark_points(kp)
    assert uv.shape == (15, 2) and vis.shape == (15,)
    assert np.allclose(uv[14], (20, 30)) and vis[14] == 0.3  # head: ears' midpoint, the lower visibility
    assert np.allclose(uv[6], (23, 123))  # l_hip is MediaPipe's 23
    assert [kn.NAMES[k] for k in kn.GROUPS["feet"]] == ["l_foot", "r_foot"]


def test_summary_recovers_a_known_bias_and_spread():
    rng = np.random.default_rng(0)
    bias, sigma = np.array([0.03, -0.02]), 0.04
    records = [{"path": "detector", "err": bias + rng.normal(0, sigma, (15, 2)), "vis": np.full(15, 0.9),
                "valid": np.ones(15, bool), "outward": np.zeros((15, 2)), "lr_swapped": False} for _ in range(400)]
    s = kn.summarise(records)["detector"]
    assert s["persons"] == 400 and s["lr_swapped"] == 0 and s["failed_persons"] == 0
    assert abs(s["bias"]["l_hip"]["u"] - 0.03) < 0.01 and abs(s["bias"]["l_hip"]["v"] + 0.02) < 0.01
    assert abs(s["visible"]["all"]["spread_rms"] - sigma) < 0.004  # bias removed: the noise alone
    assert s["all"]["all"]["rms"] > s["all"]["all"]["spread_rms"]
    assert s["hidden"]["all"]["n"] == 0 and s["all"]["all"]["outliers"] < 0.01
    assert "hips" in kn.format_table({"detector": s})
    wrong = dict(records[0], err=np.full((15, 2), 0.5))  # a whole person's landmarks far off
    assert kn.summarise(records + [wrong])["detector"]["failed_persons"] == 1


def test_measured_error_on_real_mediapipe_is_finite_for_found_people():
    torch.set_num_threads(1)
    records = kn.run(INDICES, SEED)
    found = [r for r in records if r["path"] == "detector"]
    if not found:
        pytest.skip("MediaPipe found nobody in these renders")
    for r in records:
        assert 0.0 < r["side"] and r["iou"] >= kn.MATCH_IOU
        assert r["valid"].any() and np.isfinite(r["err"][r["valid"]]).all()
        assert ((r["vis"] >= 0) & (r["vis"] <= 1)).all()
    summary = kn.summarise(records)
    for path in kn.PATHS:
        e = summary[path]
        if not e["persons"]:
            continue
        figures = e["all"]["all"]
        assert figures["n"] > 0
        for key in ("median_abs", "rms", "outliers", "spread_rms"):
            assert math.isfinite(figures[key]), (path, key)
        assert 0 <= e["failed_persons"] <= e["persons"]
    # the default path's visible landmarks land near the true joints (here 2.6 % of the box in the median)
    visible = summary["detector"]["visible"]["all"]
    assert visible["n"] > 0 and visible["median_abs"] < 0.1 and visible["outliers"] < 0.5
    assert summary["detector"]["persons"] == len(found)
