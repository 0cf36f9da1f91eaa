"""Shared fixtures: small real shards written in tmp_path."""
from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

from poselabel.assets import demo_samples
from poselabel.io.shard_writer import write_shard

# Expected status of each sample of the mixed shard.
MIXED_STATUS = {
    "bus": "ok", "zidane": "ok", "grace_hopper": "ok", "facade": "no_person",
    "corrupt": "error", "empty": "error", "notes": "error",
}


def mixed_samples():
    """The three photos, a photo without people, a corrupt JPEG, a zero-byte image and a text-only sample."""
    samples = demo_samples()
    bus = dict(samples)["bus"]["jpg"]
    samples += [
        ("corrupt", {"jpg": bus[:200] + b"\x00" * 64}),
        ("empty", {"png": b""}),
        ("notes", {"txt": b"a text member without an image"}),
    ]
    return samples


@pytest.fixture(scope="session")
def mixed_shard(tmp_path_factory):
    path = tmp_path_factory.mktemp("shards") / "mixed-000000.tar"
    write_shard(str(path), mixed_samples())
    return path
