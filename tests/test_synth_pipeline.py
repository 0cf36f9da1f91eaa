"""Synthetic ground-truth shards through the real pipeline with oracle backends."""
from __future__ import annotations

import io
import json

import duckdb
import numpy as np
import pytest
from PIL import Image

from poselabel.config import load_config
from poselabel.io.shards import iter_samples, list_shards
from poselabel.models.masks import decode_rle
from poselabel.pipelines.job import run_job
from poselabel.synth.writer import write_synthetic_shards

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gt_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("gt")
    write_synthetic_shards(str(out), num=6, seed=11, max_persons=3, shard_size=3)
    return out


def test_oracle_pipeline_reproduces_ground_truth(gt_dir, tmp_path):
    config = load_config(None, {
        "input": str(gt_dir / "synth-*.tar"), "output": str(tmp_path), "progress": False,
        "detect": {"backend": "oracle"}, "segment": {"backend": "oracle"},
        "tz": {"backend": "oracle"}, "pose": {"backend": "oracle"}, "camera": {"backend": "oracle"}})
    summary = run_job(config)
    gt = {s.key: s for path in list_shards(str(gt_dir / "synth-*.tar")) for s in iter_samples(path)}
    assert summary["samples"] == len(gt) == 6
    rows = duckdb.sql(f"select * from '{tmp_path}/persons/*.parquet' order by key, person_index").fetchall()
    cols = [d[0] for d in duckdb.sql(f"select * from '{tmp_path}/persons/*.parquet' limit 0").description]
    persons = [dict(zip(cols, r)) for r in rows]
    assert len(persons) == sum(len(json.loads(s.members["json"])["persons"]) for s in gt.values())
    for p in persons:
        sample = gt[p["key"]]
        meta = json.loads(sample.members["json"])
        truth = meta["persons"][p["person_index"]]
        instances = np.asarray(Image.open(io.BytesIO(sample.members["mask.png"])))
        assert (decode_rle(p["mask_rle"]) == (instances == p["person_index"] + 1)).all()
        assert p["tz"] == pytest.approx(truth["transl"][2], rel=1e-6)
        assert p["focal_px"] == pytest.approx(meta["camera"]["focal_px"], rel=1e-6)
        np.testing.assert_allclose(p["body_pose"], truth["body_pose"], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(p["betas"], truth["betas"], rtol=1e-6, atol=1e-7)
        assert p["cx"] == pytest.approx(meta["camera"]["cx"]) and p["cy"] == pytest.approx(meta["camera"]["cy"])
