"""The spine end to end on real photos, with real Beam, MediaPipe and Parquet."""
from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from conftest import MIXED_STATUS

from poselabel.config import load_config
from poselabel.models.body.keypoints import MP_TO_SMPLX
from poselabel.models.masks import decode_rle
from poselabel.pipelines.job import run_job

pytestmark = pytest.mark.slow


def _run(shards: str, out, **overrides):
    config = load_config(None, {"input": shards, "output": str(out), "progress": False, **overrides})
    return run_job(config)


def _rows(out, table):
    return pq.read_table(str(out / table)).to_pylist()


def _comparable(rows):
    drop = {"timings_ms", "url"}
    return sorted((tuple((k, str(v)) for k, v in sorted(r.items()) if k not in drop) for r in rows))


@pytest.fixture(scope="module")
def mixed_run(mixed_shard, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed-out")
    summary = _run(str(mixed_shard), out)
    return out, summary


def test_one_image_row_per_sample_with_status(mixed_run):
    out, summary = mixed_run
    images = {r["key"]: r for r in _rows(out, "images")}
    assert {k: r["status"] for k, r in images.items()} == MIXED_STATUS
    assert "cannot decode" in images["corrupt"]["error"]
    assert "0 bytes" in images["empty"]["error"]
    assert "no image member" in images["notes"]["error"] and "txt" in images["notes"]["error"]
    assert images["bus"]["error"] is None and images["bus"]["meta_json"] == '{"source": "bus.jpg"}'
    assert summary["samples"] == len(MIXED_STATUS)
    assert summary["status"] == {"error": 3, "no_person": 1, "ok": 3}


def test_detection_counts_on_real_photos(mixed_run):
    out, _ = mixed_run
    persons = _rows(out, "persons")
    count = {k: sum(1 for p in persons if p["key"] == k) for k in MIXED_STATUS}
    assert count["bus"] >= 2
    assert count["zidane"] >= 1
    assert count["grace_hopper"] == 1
    assert count["facade"] == 0
    images = {r["key"]: r for r in _rows(out, "images")}
    assert all(images[k]["num_persons"] == n for k, n in count.items())


def test_masks_have_image_size_and_cover_their_person(mixed_run):
    out, _ = mixed_run
    images = {r["key"]: r for r in _rows(out, "images")}
    for p in _rows(out, "persons"):
        mask = decode_rle(p["mask_rle"])
        assert mask.shape == (images[p["key"]]["height"], images[p["key"]]["width"])
        x0, y0, x1, y1 = (int(round(v)) for v in p["bbox_xyxy"])
        inside = mask[y0:y1, x0:x1].sum()
        assert inside / mask.sum() > 0.95, "the mask lies within its person's box"
        assert inside / ((x1 - x0) * (y1 - y0)) > 0.2, "the mask fills a fair part of the box"


def test_embedded_default_fits_every_detected_person(mixed_run):
    """The no-weights default (MediaPipe landmarks -> geometric Tz and pose -> camera solver)
    gives every detected person a Tz, a focal length and a mask IoU."""
    out, _ = mixed_run
    persons = _rows(out, "persons")
    assert persons
    for p in persons:
        assert 0.3 <= p["tz"] <= 50, p
        assert 10 <= p["focal_px"] <= 1e4 and p["cx"] == p["image_width"] / 2
        assert 0 < p["mask_iou"] <= 1 and p["fit_iters"] > 0
        assert len(p["betas"]) == 10 and len(p["body_pose"]) == 63 and len(p["transl"]) == 3
        assert p["transl"][2] == pytest.approx(p["tz"])
        assert "not_fitted" not in p["reject_reasons"]
        assert p["accepted"] == (p["reject_reasons"] == [])
    assert sum(p["mask_iou"] for p in persons) / len(persons) > 0.4
    # MediaPipe's landmarks check the fit: the solved camera projects the fitted joints onto them.
    diags = [json.loads(p["diagnostics"]) for p in persons]
    errors = [d["keypoint_error"] for d in diags]
    assert all(1 <= d["keypoint_count"] <= len(MP_TO_SMPLX) + 1 for d in diags)  # the body landmarks and the head seen
    # ... but those landmarks are the geometric fit's own input: they cannot vouch for it.
    assert all(d["landmark_fit"] == ["pose", "tz"] for d in diags)
    # 0.04-0.18 seen: the geometric fits are loose, not misplaced; but for one person, zidane.jpg's
    # bent-over man cut at the hips (1.48 on 2026-12-06: his body far too large, its hips below
    # the frame), and the check rejects that fit.
    assert all(e >= 0 for e in errors) and sum(e >= 0.3 for e in errors) <= 1
    assert all("keypoint_mismatch" in p["reject_reasons"] for p, e in zip(persons, errors) if e >= 0.3)
    # Every fit here carries the depth probe (and the focal margin where it touches the border):
    # each has a fit score, and it alone decides low_fit_score.
    from poselabel.config import QualityConfig

    q = QualityConfig()
    for p, d in zip(persons, diags):
        assert "depth_gain" in d and 0 < p["fit_score"] < 1
        floor = q.min_fit_score_segmenter if "fit_iou" in d else q.min_fit_score  # segmenter masks: their own model
        assert ("low_fit_score" in p["reject_reasons"]) == (p["fit_score"] < floor)


def test_rerun_changes_nothing(mixed_shard, mixed_run):
    out, _ = mixed_run
    before = {t: _comparable(_rows(out, t)) for t in ("images", "persons")}
    marker_before = (out / "_done" / "mixed-000000.json").read_text()
    manifest_before = (out / "manifest.json").read_text()
    summary = _run(str(mixed_shard), out)
    assert summary["this_run"]["samples"] == 0  # the done shard was skipped
    assert {t: _comparable(_rows(out, t)) for t in ("images", "persons")} == before
    assert (out / "_done" / "mixed-000000.json").read_text() == marker_before
    assert (out / "manifest.json").read_text() == manifest_before  # still the run that labelled


def test_overwrite_redoes_and_gives_same_rows(mixed_shard, mixed_run):
    out, _ = mixed_run
    before = {t: _comparable(_rows(out, t)) for t in ("images", "persons")}
    summary = _run(str(mixed_shard), out, overwrite=True)
    assert summary["this_run"]["samples"] == len(MIXED_STATUS)
    assert {t: _comparable(_rows(out, t)) for t in ("images", "persons")} == before


def test_manifest_records_config_and_versions(mixed_run):
    import json

    out, _ = mixed_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["detect"]["backend"] == "mediapipe"
    assert manifest["config"]["decode"]["max_pixels"] > 0
    assert manifest["versions"]["apache-beam"]
    assert manifest["summary"]["samples"] == len(MIXED_STATUS)
    from poselabel.models.quality.fit_score import model_entries

    assert manifest["config"]["quality"]["accept_rule"] == "score"
    from poselabel.config import QualityConfig

    assert manifest["fit_score"] == model_entries(QualityConfig())  # which models judged the run
