"""``poselabel report``: one self-contained HTML file with counts, histograms and overlays."""
from __future__ import annotations

import base64
import io
import json
import re

import labelled_tables
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from poselabel.report import overlay, write_report


@pytest.fixture(scope="session")
def labelled(tmp_path_factory):
    return labelled_tables.build(tmp_path_factory.getbasetemp() / "labelled")


def test_report_is_one_self_contained_file(labelled, tmp_path):
    out = tmp_path / "r" / "report.html"
    write_report(str(labelled), str(out), sample=3)
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]
    page = out.read_text()
    for section in ("id='counts'", "id='histograms'", "id='accepted'", "id='rejected'", "id='thresholds'"):
        assert section in page
    assert "src=\"http" not in page and "src='http" not in page and "href=" not in page
    assert "<script" not in page and "<link" not in page and "url(" not in page
    pngs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    jpegs = re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", page)
    assert len(pngs) == 1  # the histograms
    persons = [r for f in (labelled / "persons").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    n_acc = sum(r["accepted"] for r in persons)
    assert len(jpegs) == min(3, n_acc) + min(3, len(persons) - n_acc)
    for reason in {x for r in persons for x in r["reject_reasons"]}:
        assert f">{reason}</td>" in page  # counts by reason
    # The overlays show the fitted body: orange fit pixels in the first card.
    pic = np.asarray(Image.open(io.BytesIO(base64.b64decode(jpegs[0]))).convert("RGB")).astype(int)
    orange = (pic[..., 0] > 180) & (pic[..., 1] > 80) & (pic[..., 1] < 190) & (pic[..., 2] < 80)
    assert orange.sum() > 50


def test_person_without_fit_shows_its_mask_only(labelled):
    row = next(r for f in sorted((labelled / "persons").glob("*.parquet")) for r in pq.read_table(f).to_pylist())
    row = {**row, "focal_px": None, "transl": None}
    assert not overlay.has_fit(row)
    pic = np.asarray(overlay.overlay(row, None, body=None)).astype(int)
    green = (pic[..., 1] > 150) & (pic[..., 0] < 120)
    orange = (pic[..., 0] > 180) & (pic[..., 2] < 60) & (pic[..., 1] < 190) & (pic[..., 1] > 80)
    assert green.sum() > 20 and orange.sum() == 0


def test_card_shows_the_keypoint_error_when_the_fit_has_one():
    from poselabel.report.html import card

    row = {"key": "k", "shard": "s", "person_index": 0, "accepted": False, "reject_reasons": ["keypoint_mismatch"],
           "transl": [0.0, 0.0, 3.0], "focal_px": 500.0, "mask_iou": 0.9, "det_score": 0.8, "fit_loss": 0.1}
    c = {"row": row, "uri": "data:image/jpeg;base64,", "has_image": True, "fov": 60.0}
    assert "kp" not in card(c)
    shown = card({**c, "row": {**row, "diagnostics": json.dumps({"keypoint_error": 0.1234})}})
    assert "kp 0.123" in shown and "keypoint_mismatch" in shown
    counted = card({**c, "row": {**row, "diagnostics": json.dumps({"keypoint_error": 0.1234, "keypoint_count": 3})}})
    assert "kp 0.123 on 3" in counted
    # a focal length the image's people share says so, with the person's own solve's
    assert "own" not in card(c)
    shared = card({**c, "row": {**row, "diagnostics": json.dumps({"solo_focal_px": 561.7, "solo_iou": 0.9})}})
    assert "f 500 px (image's; own 562)" in shared


def test_cards_show_the_fit_score_of_the_runs_rule(labelled, tmp_path):
    """Each fitted person's card shows its fit score, judged with its image's other people,
    under the thresholds of the run's manifest; the score agrees with the rule's verdict."""
    from poselabel.config import load_config, manifest_quality
    from poselabel.models.quality.evidence import with_peers
    from poselabel.models.quality.facts import facts_from_row
    from poselabel.models.quality.rule import fit_score
    from poselabel.report import fit_scores

    persons = [r for f in sorted((labelled / "persons").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    manifest = json.loads((labelled / "manifest.json").read_text())
    quality = load_config(None, {"quality": manifest_quality(manifest)}).quality
    scores = fit_scores(persons, persons, manifest)
    fitted = [r for r in persons if r["focal_px"] is not None and r["mask_iou"] is not None]
    assert fitted and sorted(map(id, fitted)) == sorted(scores)
    for r in fitted:
        image = [p for p in persons if (p["shard"], p["key"]) == (r["shard"], r["key"])]
        f = with_peers([facts_from_row(p) for p in image])[image.index(r)]
        assert scores[id(r)][0] == fit_score(f, quality) == pytest.approx(r["fit_score"], rel=1e-6)
        assert ("low_fit_score" in r["reject_reasons"]) == (scores[id(r)][0] < quality.min_fit_score)
    out = tmp_path / "report.html"
    write_report(str(labelled), str(out), sample=50)
    page = out.read_text()
    shown = re.findall(r"fit score (\d\.\d\d)", page)
    assert sorted(shown) == sorted(f"{r['fit_score']:.2f}" for r in fitted)
    # a rejected card says what its score lost most on
    low = [s for s in scores.values() if s[0] < quality.min_fit_score]
    assert low and all(s[1] for s in low)
    assert "depth probe" in page or "peers agreeing" in page or "keypoint error" in page  # readable names
    assert page.count("lost most on") == sum(1 for r in fitted if not r["accepted"] and scores[id(r)][1])
