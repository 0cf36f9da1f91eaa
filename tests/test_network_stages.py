"""The Tz and pose networks inside the pipeline (``--tz network --pose network``)."""
from __future__ import annotations

import json

import duckdb
import pytest
import torch

from poselabel.config import load_config
from poselabel.models.nets.checkpoints import save_checkpoint
from poselabel.models.nets.pose_net import PoseNet, pose_config
from poselabel.models.nets.tz_net import build_tz_net, tz_config
from poselabel.pipelines.job import run_job
from poselabel.synth.writer import write_synthetic_shards

pytestmark = pytest.mark.slow


def test_network_backends_label_every_person(tmp_path):
    torch.manual_seed(0)
    tz_dir, pose_dir = tmp_path / "tz", tmp_path / "pose"
    tz_sha = save_checkpoint(str(tz_dir), build_tz_net(tz_config("tiny")))
    pose_sha = save_checkpoint(str(pose_dir), PoseNet(pose_config("tiny", conditioning="tz", controlnet=True)))
    gt = tmp_path / "gt"
    write_synthetic_shards(str(gt), num=3, seed=3, max_persons=2, shard_size=3)
    out = tmp_path / "out"
    config = load_config(None, {
        "input": str(gt / "synth-*.tar"), "output": str(out), "progress": False,
        "detect": {"backend": "oracle"}, "segment": {"backend": "oracle"},
        "tz": {"backend": "network", "model": str(tz_dir)}, "pose": {"backend": "network", "model": str(pose_dir)},
        "camera": {"backend": "none"}})
    run_job(config)
    rows = duckdb.sql(f"select tz, betas, global_orient, body_pose, reject_reasons from '{out}/persons/*.parquet'").fetchall()
    assert rows
    for tz, betas, orient, pose, reasons in rows:
        assert 0.0 < tz < 10.0  # the head's bounded output, metres
        assert len(betas) == 10 and len(orient) == 3 and len(pose) == 63
        assert "tz_failed" not in reasons and "pose_failed" not in reasons and "not_fitted" in reasons
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["tz"]["sha256"] == tz_sha
    assert manifest["models"]["pose"]["sha256"] == pose_sha
