"""Network sharing (``models.share``): real Beam runners, real processes, tiny real networks."""
from __future__ import annotations

import json
import multiprocessing
import uuid

import duckdb
import pytest
import sharing_helpers
import torch

from poselabel.config import ConfigError, load_config
from poselabel.models.nets.checkpoints import network_identity, save_checkpoint
from poselabel.models.nets.pose_net import PoseNet, pose_config
from poselabel.models.nets.tz_net import build_tz_net, tz_config
from poselabel.pipelines.job import run_job
from poselabel.synth.writer import write_synthetic_shards
from poselabel.transforms import shared_models


@pytest.mark.parametrize("mode, builders", [("machine", 1), ("process", 2), ("none", 2)])
def test_two_processes_share_one_copy_only_in_machine_mode(tmp_path, mode, builders):
    ctx = multiprocessing.get_context("spawn")
    key = f"poselabel-test-{uuid.uuid4().hex[:12]}"
    log_path = str(tmp_path / "built.txt")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=sharing_helpers.client, args=(mode, key, log_path, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    got = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    built = open(log_path).read().split()
    assert len(built) == builders
    assert all(doubled == 42 for *_, doubled, _ in got)
    assert sum(loads for *_, loads in got) == builders  # each load counted once, where it happened
    callers, servers = {c for c, *_ in got}, {s for _, s, *_ in got}
    if mode == "machine":
        assert servers == {int(built[0])} and servers < callers  # one of the two serves both
    else:
        assert servers == callers  # each process calls its own copy


def test_process_mode_reuses_one_copy_and_counts_one_load():
    key = f"poselabel-test-{uuid.uuid4().hex[:12]}"
    a = shared_models.acquire("process", key, lambda: object.__new__(sharing_helpers.PidEcho))
    b = shared_models.acquire("process", key, lambda: pytest.fail("loaded twice"))
    assert a is b and shared_models.take_loads(key) == 1 and shared_models.take_loads(key) == 0


def test_share_mode_is_validated():
    with pytest.raises(ConfigError, match="models.share must be one of none, process, machine"):
        load_config(None, {"input": "x", "output": "y", "models": {"share": "gpu"}}).validate()
    with pytest.raises(ValueError, match="models.share"):
        shared_models.acquire("gpu", "k", object)


def test_share_key_follows_the_weights(tmp_path):
    torch.manual_seed(0)
    save_checkpoint(str(tmp_path / "a"), build_tz_net(tz_config("tiny")))
    first = shared_models.share_key("tz", *network_identity(str(tmp_path / "a"), "cpu"))
    assert first == shared_models.share_key("tz", *network_identity(str(tmp_path / "a"), "cpu"))
    save_checkpoint(str(tmp_path / "a"), build_tz_net(tz_config("tiny")))  # retrained in place
    assert shared_models.share_key("tz", *network_identity(str(tmp_path / "a"), "cpu")) != first


@pytest.fixture(scope="module")
def network_job(tmp_path_factory):
    """Tiny Tz and pose checkpoints and 4 synthetic shards; ``run(out, **overrides)`` labels them."""
    root = tmp_path_factory.mktemp("shared")
    torch.manual_seed(0)
    save_checkpoint(str(root / "tz"), build_tz_net(tz_config("tiny")))
    save_checkpoint(str(root / "pose"), PoseNet(pose_config("tiny", conditioning="tz", controlnet=True)))
    write_synthetic_shards(str(root / "gt"), num=8, seed=5, max_persons=2, shard_size=2)

    def run(out, **overrides):
        config = load_config(None, {
            "input": str(root / "gt" / "synth-*.tar"), "output": str(out), "progress": False,
            "detect": {"backend": "oracle"}, "segment": {"backend": "oracle"},
            "tz": {"backend": "network", "model": str(root / "tz")},
            "pose": {"backend": "network", "model": str(root / "pose")}, "camera": {"backend": "none"},
            **overrides})
        run_job(config)
        return json.loads((out / "manifest.json").read_text())

    run.keys = {stage: shared_models.share_key(stage, *network_identity(str(root / stage), "cpu"))
                for stage in ("tz", "pose")}
    return run


def _rows(out):
    persons = duckdb.sql(f"select * from '{out}/persons/*.parquet' order by all").fetchall()
    images = duckdb.sql(f"select * exclude (timings_ms, url) from '{out}/images/*.parquet' order by all").fetchall()
    return persons, images


@pytest.fixture(scope="module")
def unshared_rows(network_job, tmp_path_factory):
    out = tmp_path_factory.mktemp("none")
    manifest = network_job(out, models={"share": "none"})
    assert manifest["counters"]["tz_model_loads"] >= 1
    return _rows(out)


@pytest.mark.slow
@pytest.mark.parametrize("share", ["process", "machine"])
def test_direct_multiprocessing_shared_rows_match_unshared(network_job, unshared_rows, tmp_path, share):
    manifest = network_job(tmp_path, models={"share": share}, workers=2)
    persons, images = _rows(tmp_path)
    assert len(persons) >= 8 and persons == unshared_rows[0] and images == unshared_rows[1]
    counters = manifest["counters"]
    assert counters["tz_ok"] == counters["pose_ok"] == 8
    if share == "machine":  # one copy on the machine, whichever of the 2 worker processes ran the stage
        assert counters["tz_model_loads"] == 1 and counters["pose_model_loads"] == 1
    else:
        assert 1 <= counters["tz_model_loads"] <= 2 and 1 <= counters["pose_model_loads"] <= 2


@pytest.mark.slow
@pytest.mark.parametrize("share", ["process", "machine"])
def test_dask_shared_rows_match_unshared(network_job, unshared_rows, tmp_path, share):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        manifest = network_job(tmp_path, models={"share": share}, runner="dask",
                               dask_address=cluster.scheduler_address)
        def held_networks(keys):  # runs on each worker (nested: pickled by value)
            if share == "machine":
                from apache_beam.utils.multi_process_shared import _process_level_singleton_manager as served

                return [k for k in keys if served.has_singleton(k)]
            from poselabel.transforms import shared_models as sm

            return [k for k in keys if k in sm._process_models]

        with Client(cluster) as client:
            held = client.run(held_networks, sorted(network_job.keys.values()))
    assert _rows(tmp_path) == unshared_rows
    assert manifest["counters"] is None  # Beam's Dask runner collects no metrics
    for key in network_job.keys.values():
        holders = [w for w, keys in held.items() if key in keys]
        # machine: exactly one worker process holds the network; process: each that ran it does.
        assert len(holders) == 1 if share == "machine" else 1 <= len(holders) <= 2


@pytest.mark.slow
def test_served_yolo_detector_gives_the_same_rows(person_everywhere_yolo, tmp_path):
    gt = tmp_path / "gt"
    write_synthetic_shards(str(gt), num=4, seed=7, max_persons=2, shard_size=2)

    def run(share, workers):
        out = tmp_path / share
        run_job(load_config(None, {
            "input": str(gt / "synth-*.tar"), "output": str(out), "progress": False, "workers": workers,
            "detect": {"backend": "ultralytics", "yolo_weights": person_everywhere_yolo, "max_persons": 3},
            "segment": {"backend": "oracle"}, "tz": {"backend": "none"}, "pose": {"backend": "none"},
            "camera": {"backend": "none"}, "models": {"share": share}}))
        return _rows(out), json.loads((out / "manifest.json").read_text())["counters"]

    (persons, images), _ = run("none", 1)
    (served_persons, served_images), counters = run("machine", 2)
    assert len(persons) >= 4 and served_persons == persons and served_images == images
    assert counters["detect_model_loads"] == 1 and counters["persons_detected"] == len(persons)


def test_machine_mode_survives_the_death_of_its_serving_process(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    key = f"poselabel-test-{uuid.uuid4().hex[:12]}"
    log_path = str(tmp_path / "built.txt")
    results, b_called, a_gone = ctx.Queue(), ctx.Event(), ctx.Event()
    a = ctx.Process(target=sharing_helpers.first_server, args=(key, log_path, results, b_called))
    a.start()
    tag, a_pid, (served_by, _) = results.get(timeout=120)
    assert tag == "a" and served_by == a_pid
    b = ctx.Process(target=sharing_helpers.survivor, args=(key, log_path, results, b_called, a_gone))
    b.start()
    tag, b_pid, (served_by, doubled) = results.get(timeout=120)
    assert tag == "b1" and served_by == a_pid and doubled == 2
    a.join(timeout=60)
    assert a.exitcode == 0
    a_gone.set()
    tag, _, (served_by, doubled) = results.get(timeout=120)
    b.join(timeout=60)
    assert tag == "b2" and served_by == b_pid and doubled == 4
    assert [int(p) for p in open(log_path).read().split()] == [a_pid, b_pid]
