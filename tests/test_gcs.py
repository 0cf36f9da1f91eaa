"""gs:// in and out through Beam's GCS file system, against a local emulator.

The emulator (``gcp-storage-emulator``) serves the real Cloud Storage JSON API
on loopback; Beam's client connects to it anonymously when
``STORAGE_EMULATOR_HOST`` is set.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems
from conftest import mixed_samples

from poselabel.config import load_config
from poselabel.io import files
from poselabel.io.outputs import read_bytes, read_json
from poselabel.io.shard_writer import write_shard
from poselabel.pipelines.job import run_job

pytestmark = pytest.mark.slow


def test_job_reads_and_writes_gs(gcs_bucket):
    samples = mixed_samples()
    write_shard(f"{gcs_bucket}/in/g-000000.tar", samples[:4])
    write_shard(f"{gcs_bucket}/in/g-000001.tar", samples[4:])
    out = f"{gcs_bucket}/out"
    config = load_config(None, {"input": f"{gcs_bucket}/in/g-{{000000..000001}}.tar", "output": out,
                                "progress": False})
    summary = run_job(config)
    assert summary["samples"] == len(samples) and summary["shards"] == 2
    import io

    images = pq.read_table(io.BytesIO(read_bytes(f"{out}/images/g-000000.parquet"))).to_pylist()
    assert sorted(r["key"] for r in images) == sorted(k for k, _ in samples[:4])
    assert FileSystems.exists(f"{out}/_done/g-000001.json")
    assert {r["url"] for r in images} == {f"{gcs_bucket}/in/g-000000.tar"}  # gs:// URLs are kept as they are
    assert read_json(f"{out}/_done/g-000001.json")["url"] == f"{gcs_bucket}/in/g-000001.tar"
    # A rerun finds the done markers in the bucket and does nothing.
    assert run_job(config)["this_run"]["samples"] == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gs_job_killed_then_resumed_has_every_sample_once(tmp_path):
    """The emulator runs in its own process so that the job can be SIGKILLed without it."""
    import duckdb

    port = _free_port()
    log = open(tmp_path / "emulator.log", "w")
    emulator = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator"), "start",
                                 "--host", "127.0.0.1", "--port", str(port), "--in-memory",
                                 "--default-bucket", "resume", "-q"], stdout=log, stderr=log)
    env = {**os.environ, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{port}"}
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = env["STORAGE_EMULATOR_HOST"]
    files.anonymous_for_emulator()  # this process writes the shards: no credential look-up either
    try:
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.time() < deadline, "emulator did not start"
                time.sleep(0.2)
        samples = [s for s in mixed_samples() if s[0] in ("grace_hopper", "facade", "corrupt")]  # one person a shard
        for i in range(6):
            write_shard(f"gs://resume/in/r-{i:06d}.tar", [(f"{k}-{i}", m) for k, m in samples])
        # resuming is what is tested, not labelling: the camera stage (most of a label's cost) is off
        cmd = [sys.executable, "-m", "poselabel.cli", "run", "--no-progress",
               "--input", "gs://resume/in/r-*.tar", "--output", "gs://resume/out", "--set", "camera.backend=none"]
        job = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        deadline = time.time() + 300
        while not FileSystems.match(["gs://resume/out/_done/*.json"])[0].metadata_list:
            assert job.poll() is None, "the job ended before a shard was done"
            assert time.time() < deadline
            time.sleep(0.1)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        done = len(FileSystems.match(["gs://resume/out/_done/*.json"])[0].metadata_list)
        assert 1 <= done < 6
        rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        local = tmp_path / "images"
        local.mkdir()
        for m in FileSystems.match(["gs://resume/out/images/*.parquet"])[0].metadata_list:
            (local / m.path.rsplit("/", 1)[-1]).write_bytes(read_bytes(m.path))
        rows = duckdb.sql(f"select shard, key, count(*) n from '{local}/*.parquet' group by all").fetchall()
        assert len(rows) == 6 * len(samples) and all(n == 1 for *_, n in rows)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


def test_fit_score_model_loads_from_gs(gcs_bucket):
    """``quality.fit_score_model`` may name a model in a bucket (JSON, never pickle)."""
    import numpy as np

    from poselabel.models.quality import fit_score as fs

    path = f"{gcs_bucket}/models/fit_score.json"
    with FileSystems.create(path) as f:
        f.write(fs.load_model().to_json().encode())
    x = np.random.default_rng(1).uniform(0, 1, (20, len(fs.FEATURES)))
    np.testing.assert_array_equal(fs.load_model(path).score(x), fs.load_model().score(x))
