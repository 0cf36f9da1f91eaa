"""gs:// in and out through Beam's GCS file system, against a local emulator.

The emulator (``gcp-storage-emulator``) serves the real Cloud Storage JSON API
on loopback; Beam's client connects to it anonymously when
``STORAGE_EMULATOR_HOST`` is set.
"""
from __future__ import annotations

import logging
import os
import socket

import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems

from conftest import mixed_samples
from poselabel.config import load_config
from poselabel.io.outputs import read_bytes
from poselabel.io.shard_writer import write_shard
from poselabel.pipelines.job import run_job

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def gcs_bucket():
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="poselabel-test")
    server.start()
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    yield "gs://poselabel-test"
    server.stop()
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


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
    # A rerun finds the done markers in the bucket and does nothing.
    assert run_job(config)["this_run"]["samples"] == 0
