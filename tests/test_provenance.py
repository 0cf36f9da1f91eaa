"""Provenance: what each done marker, the manifest and every Parquet file say about the run that
made them; a rerun that labels nothing changes nothing; absolute shard URLs; --retry-failed.
Real Beam (FnApiRunner), real MediaPipe, real Parquet."""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from poselabel.assets import demo_samples
from poselabel.config import QualityConfig, load_config
from poselabel.io.shard_writer import write_shard
from poselabel.pipelines import provenance
from poselabel.pipelines.job import run_job
from poselabel.pipelines.rejudge import filter_tables
from poselabel.report import data as report_data
from poselabel.report import write_report
from poselabel.tables import SCHEMA_VERSION, read_file_metadata

pytestmark = pytest.mark.slow


def grey_jpeg(value: int, size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (value, value, value)).save(buf, "JPEG")
    return buf.getvalue()


def _run(input_pattern: str, out, **overrides):
    return run_job(load_config(None, {"input": input_pattern, "output": str(out), "progress": False, **overrides}))


def _files(out: Path) -> dict[str, bytes]:
    """Every file under ``out`` but the run records, by relative path."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and "_runs" not in p.parts}


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Two shards given by a relative pattern from their folder: a photo with a person (the
    report needs a fit to draw) and grey images without anyone."""
    root = tmp_path_factory.mktemp("prov")
    (root / "in").mkdir()
    hopper = dict(demo_samples())["grace_hopper"]["jpg"]
    write_shard(str(root / "in" / "a-000000.tar"), [("hopper", {"jpg": hopper}), ("grey", {"jpg": grey_jpeg(200)})])
    write_shard(str(root / "in" / "a-000001.tar"), [("dark", {"jpg": grey_jpeg(20)})])
    cwd = os.getcwd()
    os.chdir(root)
    try:
        summary = _run("in/a-*.tar", "out")
    finally:
        os.chdir(cwd)
    return root, root / "out", summary


def test_markers_record_the_run_and_the_absolute_shard_url(labelled):
    root, out, _ = labelled
    manifest = json.loads((out / "manifest.json").read_text())
    run_id = manifest["run_id"]
    config = load_config(None, {"input": "in/a-*.tar", "output": "out"})
    for shard in ("a-000000", "a-000001"):
        marker = json.loads((out / "_done" / f"{shard}.json").read_text())
        assert marker["run_id"] == run_id
        assert marker["config_sha256"] == provenance.config_sha256(config)
        assert marker["url"] == (root / "in" / f"{shard}.tar").as_uri() and marker["url"].startswith("file:///")
        assert marker["read_error"] is None
        assert marker["versions"]["poselabel"] and marker["versions"]["apache-beam"]
        assert set(marker["models"]) == {"tz", "pose", "yolo", "yolo_seg"}
        body = marker["body_model"]  # the procedural model, identified by its arrays
        assert body["kind"] == "procedural" and body["sha256_of"] == "arrays"
        assert body["sha256"] == provenance.npz_arrays_sha256(Path(body["path"]).read_bytes())
    images = pq.read_table(out / "images").to_pylist()
    assert {r["url"] for r in images} == {(root / "in" / f"a-00000{i}.tar").as_uri() for i in (0, 1)}


def test_every_parquet_file_carries_the_run(labelled):
    _, out, _ = labelled
    manifest = json.loads((out / "manifest.json").read_text())
    for table in ("persons", "images"):
        for path in (out / table).glob("*.parquet"):
            meta = read_file_metadata(pq.read_schema(path))
            assert meta == {"poselabel.schema_version": SCHEMA_VERSION, "poselabel.version": manifest["versions"]["poselabel"],
                            "poselabel.run_id": manifest["run_id"], "poselabel.config_sha256": manifest["config_sha256"],
                            "poselabel.table": table}


def test_a_rerun_with_another_config_changes_nothing(labelled):
    root, out, _ = labelled
    before = _files(out)
    cwd = os.getcwd()
    os.chdir(root)
    try:
        summary = _run("in/a-*.tar", "out", detect={"score_threshold": 0.3})
    finally:
        os.chdir(cwd)
    assert summary["this_run"]["samples"] == 0 and summary["samples"] == 3
    assert _files(out) == before  # tables, markers, manifest.json and summary.json: byte for byte
    records = [json.loads(p.read_text()) for p in (out / "_runs").glob("*.json")]
    skipped = [r for r in records if r["shards"]["todo"] == 0]
    assert len(skipped) == 1 and skipped[0]["shards_made"] == []  # the run is on record, as having made nothing
    assert skipped[0]["config_sha256"] != json.loads((out / "manifest.json").read_text())["config_sha256"]


def test_report_from_another_folder_draws_the_real_images(labelled, tmp_path, caplog):
    _, out, _ = labelled
    cwd = os.getcwd()
    os.chdir(tmp_path)  # nothing of the shards is reachable relatively from here
    try:
        images = pq.read_table(out / "images").to_pylist()
        found = report_data.fetch_images([(r["url"], r["key"]) for r in images])
        assert set(k for _, k in found) == {"hopper", "grey", "dark"}
        assert found[(images[0]["url"], images[0]["key"])].dtype == np.uint8
        page = Path(write_report(str(out), str(tmp_path / "r.html"), sample=4)).read_text()
    finally:
        os.chdir(cwd)
    assert "drawn without their image" not in page and "without their image" not in caplog.text
    assert json.loads((out / "manifest.json").read_text())["run_id"] in page  # names the run


def test_filter_keeps_the_labelling_run_and_adds_its_thresholds(labelled, tmp_path):
    _, out, _ = labelled
    manifest = json.loads((out / "manifest.json").read_text())
    filter_tables(str(out), str(tmp_path / "f"), QualityConfig(min_mask_iou=0.9))
    for table in ("persons", "accepted"):
        meta = read_file_metadata(pq.read_schema(tmp_path / "f" / table / "a-000000.parquet"))
        assert meta["poselabel.run_id"] == manifest["run_id"]
        assert meta["poselabel.config_sha256"] == manifest["config_sha256"]
        assert meta["poselabel.table"] == table and len(meta["poselabel.filter_quality_sha256"]) == 64
    marker = json.loads((tmp_path / "f" / "_done" / "a-000000.json").read_text())
    assert marker["run_id"] == manifest["run_id"] and marker["url"].startswith("file:///")
    assert list(json.loads((tmp_path / "f" / "manifest.json").read_text())["runs"]) == [manifest["run_id"]]


def test_run_ids_sort_by_start_time_within_a_second():
    """The manifest's latest run is the greatest id: ids made one after the other sort in
    that order, also within one second (they once had second resolution and a random tail)."""
    ids = [provenance.new_run_id() for _ in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}", ids[0])


def test_manifest_lists_each_run_with_the_shards_it_made(tmp_path):
    write_shard(str(tmp_path / "b-000000.tar"), [("g", {"jpg": grey_jpeg(100)})])
    _run(str(tmp_path / "b-*.tar"), tmp_path / "out")
    write_shard(str(tmp_path / "b-000001.tar"), [("h", {"jpg": grey_jpeg(150)})])
    _run(str(tmp_path / "b-*.tar"), tmp_path / "out", quality={"min_mask_iou": 0.7})
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    first, second = sorted(manifest["runs"])
    assert manifest["runs"][first]["shards"] == ["b-000000"] and manifest["runs"][second]["shards"] == ["b-000001"]
    assert manifest["run_id"] == second and manifest["config"]["quality"]["min_mask_iou"] == 0.7
    assert len(manifest["config_sha256s"]) == 2 and manifest["manifest_version"] == provenance.MANIFEST_VERSION
    assert manifest["runs"][first]["config"]["quality"]["min_mask_iou"] == QualityConfig().min_mask_iou
    assert manifest["summary"]["shards"] == 2


def test_retry_failed_relabels_only_the_shards_that_could_not_be_read(tmp_path):
    write_shard(str(tmp_path / "c-000000.tar"), [("g", {"jpg": grey_jpeg(100)})])
    (tmp_path / "c-000001.tar").write_bytes(b"not a tar archive" * 40)
    out = tmp_path / "out"
    summary = _run(str(tmp_path / "c-*.tar"), out)
    assert summary["read_errors"] == 1
    bad = json.loads((out / "_done" / "c-000001.json").read_text())
    assert "ReadError" in bad["read_error"]
    good_before = (out / "_done" / "c-000000.json").read_bytes()
    write_shard(str(tmp_path / "c-000001.tar"), [("h", {"jpg": grey_jpeg(150)}), ("i", {"jpg": grey_jpeg(50)})])
    assert _run(str(tmp_path / "c-*.tar"), out)["this_run"]["samples"] == 0  # a plain rerun keeps the failure
    summary = _run(str(tmp_path / "c-*.tar"), out, retry_failed=True)
    assert summary["this_run"]["samples"] == 2 and summary["read_errors"] == 0
    assert (out / "_done" / "c-000000.json").read_bytes() == good_before
    fixed = json.loads((out / "_done" / "c-000001.json").read_text())
    assert fixed["read_error"] is None and fixed["run_id"] != bad["run_id"]
    assert sorted(r["key"] for r in pq.read_table(out / "images" / "c-000001.parquet").to_pylist()) == ["h", "i"]
    assert len(json.loads((out / "manifest.json").read_text())["runs"]) == 2


def test_procedural_identity_is_the_arrays_not_the_zip(tmp_path):
    arrays = {"v_template": np.arange(12, dtype=np.float32).reshape(4, 3), "f": np.array([[0, 1, 2]], np.int32)}
    np.savez(tmp_path / "a.npz", **arrays)
    np.savez_compressed(tmp_path / "b.npz", **arrays)
    a, b = (tmp_path / "a.npz").read_bytes(), (tmp_path / "b.npz").read_bytes()
    assert a != b and provenance.npz_arrays_sha256(a) == provenance.npz_arrays_sha256(b)
    np.savez(tmp_path / "c.npz", **{**arrays, "f": np.array([[0, 2, 1]], np.int32)})
    assert provenance.npz_arrays_sha256((tmp_path / "c.npz").read_bytes()) != provenance.npz_arrays_sha256(a)
    identity = provenance.body_model_identity(None)
    assert identity["kind"] == "procedural" and identity["generator_version"] >= 1
    assert provenance.body_model_identity(str(tmp_path / "a.npz"))["sha256"] == provenance.file_sha256(str(tmp_path / "a.npz"))


def test_config_hash_is_what_changes_labels():
    base = load_config(None, {"input": "x/*.tar", "output": "o"})
    elsewhere = load_config(None, {"input": "y/*.tar", "output": "p", "workers": 4, "progress": False})
    stricter = load_config(None, {"input": "x/*.tar", "output": "o", "quality": {"min_mask_iou": 0.9}})
    assert provenance.config_sha256(base) == provenance.config_sha256(elsewhere)
    assert provenance.config_sha256(base) != provenance.config_sha256(stricter)
