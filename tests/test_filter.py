"""``poselabel filter``: re-judging tables with new thresholds, without any model."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import labelled_tables
import pyarrow.parquet as pq
import pytest

from poselabel.commands import filter as filter_cmd
from poselabel.config import QualityConfig
from poselabel.pipelines import rejudge
from poselabel.tables import PERSONS_SCHEMA

LOOSE = ["--base", "defaults", "--disabled-checks", "truncated too_small", "--min-mask-iou", "0.3"]


@pytest.fixture(scope="session")
def labelled(tmp_path_factory):
    return labelled_tables.build(tmp_path_factory.getbasetemp() / "labelled")


def run_filter(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    filter_cmd.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["filter", *argv])
    return args.func(args)


def rows(directory: Path, table: str = "persons") -> dict:
    out = {}
    for f in sorted((directory / table).glob("*.parquet")):
        for r in pq.read_table(f).to_pylist():
            out[(r["shard"], r["key"], r["person_index"])] = r
    return out


def test_stricter_iou_keeps_a_subset(labelled, tmp_path):
    loose, strict = tmp_path / "loose", tmp_path / "strict"
    assert run_filter(["--input", str(labelled), "--output", str(loose), *LOOSE]) == 0
    assert run_filter(["--input", str(labelled), "--output", str(strict), *LOOSE[:-1], "0.98"]) == 0
    before, after = rows(loose), rows(strict)
    kept_before = {k for k, r in before.items() if r["accepted"]}
    kept_after = {k for k, r in after.items() if r["accepted"]}
    assert kept_after < kept_before  # a strict subset
    for k in kept_before - kept_after:
        assert after[k]["reject_reasons"] == ["low_mask_iou"] and after[k]["mask_iou"] < 0.98
    assert all(after[k]["mask_iou"] >= 0.98 for k in kept_after)
    original = rows(labelled)
    for k, r in after.items():  # only the verdict columns change
        assert {c: v for c, v in r.items() if c not in ("accepted", "reject_reasons")} == \
               {c: v for c, v in original[k].items() if c not in ("accepted", "reject_reasons")}
    # One accepted file per shard, the persons schema, exactly the accepted rows.
    shards = sorted(p.stem for p in (labelled / "persons").glob("*.parquet"))
    assert sorted(p.stem for p in (strict / "accepted").glob("*.parquet")) == shards
    for shard in shards:
        table = pq.read_table(strict / "accepted" / f"{shard}.parquet")
        assert table.schema.remove_metadata().equals(PERSONS_SCHEMA)
    assert set(rows(strict, "accepted")) == kept_after
    summary = json.loads((strict / "summary.json").read_text())
    manifest = json.loads((strict / "manifest.json").read_text())
    assert manifest["config"]["quality"]["min_mask_iou"] == 0.98
    assert summary["accepted"] == len(kept_after) and summary["persons"] == len(after)
    assert summary["reject_reasons"]["low_mask_iou"] == sum("low_mask_iou" in r["reject_reasons"] for r in after.values())
    assert sorted(p.stem for p in (strict / "images").glob("*.parquet")) == shards
    assert sorted(p.stem for p in (strict / "_done").glob("*.json")) == shards


def test_base_thresholds_come_from_the_run_manifest(labelled, tmp_path):
    assert run_filter(["--input", str(labelled), "--output", str(tmp_path / "same")]) == 0
    same = rows(tmp_path / "same")
    assert {k: (r["accepted"], r["reject_reasons"]) for k, r in same.items()} == \
           {k: (r["accepted"], r["reject_reasons"]) for k, r in rows(labelled).items()}
    with pytest.raises(ValueError):
        rejudge.filter_tables(str(labelled), str(labelled) + "/", rejudge.resolve_quality(str(labelled)))


def test_filter_imports_no_model(labelled, tmp_path):
    code = (
        "import sys, argparse\n"
        "from poselabel.commands import filter as f\n"
        "p = argparse.ArgumentParser(); f.register(p.add_subparsers())\n"
        f"a = p.parse_args(['filter', '--input', {str(labelled)!r}, '--output', {str(tmp_path / 'o')!r},"
        " '--min-mask-iou', '0.9'])\n"
        "assert a.func(a) == 0\n"
        "heavy = sorted(m for m in ('torch', 'mediapipe', 'smplx', 'ultralytics') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout
    assert (tmp_path / "o" / "accepted").is_dir()


def test_runs_from_before_the_fit_score_are_rejudged_by_their_own_rule(labelled, tmp_path):
    """A manifest without ``accept_rule`` (runs before the fit score, commit 112eae2) is read as the checks rule,
    its peers voting at its ``min_mask_iou``; the rule can be chosen on the command line."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(labelled, old)
    manifest = json.loads((old / "manifest.json").read_text())
    for k in ("accept_rule", "min_fit_score", "fit_score_model", "min_peer_mask_iou"):
        manifest["config"]["quality"].pop(k)
    manifest["config"]["quality"]["min_mask_iou"] = 0.8
    (old / "manifest.json").write_text(json.dumps(manifest))
    quality = rejudge.resolve_quality(str(old))
    assert (quality.accept_rule, quality.min_mask_iou, quality.min_peer_mask_iou) == ("checks", 0.8, 0.8)
    assert rejudge.resolve_quality(str(labelled)).accept_rule == "score"  # recorded by this run
    assert run_filter(["--input", str(old), "--output", str(tmp_path / "c")]) == 0
    assert all("low_fit_score" not in r["reject_reasons"] for r in rows(tmp_path / "c").values())
    assert run_filter(["--input", str(old), "--output", str(tmp_path / "s"), "--accept-rule", "score"]) == 0
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert json.loads((tmp_path / "s" / "manifest.json").read_text())["config"]["quality"]["accept_rule"] == "score"
    assert summary["persons"] == len(rows(labelled))


def test_manifests_name_the_fit_score_model_and_filter_says_when_it_changed(labelled, tmp_path, caplog):
    import logging
    import shutil

    from poselabel.models.quality import fit_score

    packaged = fit_score.model_entries(QualityConfig())
    assert len(packaged["exact"]["sha256"]) == 64 and packaged["segmenter"]["sha256"] != packaged["exact"]["sha256"]
    assert run_filter(["--input", str(labelled), "--output", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["fit_score"] == packaged
    other = tmp_path / "other.json"  # the same model, with one step moved
    model = json.loads(Path(fit_score.DEFAULT_MODEL).read_text())
    model["bias"] += 0.5
    other.write_text(json.dumps(model))
    run = tmp_path / "run"
    shutil.copytree(labelled, run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["fit_score"] = packaged
    (run / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING):
        assert run_filter(["--input", str(run), "--output", str(tmp_path / "b"), "--fit-score-model", str(other)]) == 0
    assert "exact-mask fit-score model differs" in caplog.text
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["fit_score"]["exact"]["path"] == str(other)
