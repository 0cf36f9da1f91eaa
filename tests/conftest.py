"""Shared fixtures: small real shards written in tmp_path."""
from __future__ import annotations

import logging
import os
import socket

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


@pytest.fixture(scope="session")
def gcs_bucket():
    """A ``gs://`` bucket on a local Cloud Storage emulator (real JSON API, loopback only).

    Beam's GCS client connects to it anonymously because ``STORAGE_EMULATOR_HOST``
    is set. Tests use their own prefixes under the bucket.
    """
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="poselabel-test")
    server.start()
    # The emulator needs no credentials: connect anonymously at once (files.anonymous_for_emulator
    # sets Beam's private credentials cache, restored below).
    from apache_beam.internal.gcp.auth import _Credentials

    from poselabel.io.files import anonymous_for_emulator

    saved = (_Credentials._credentials_init, _Credentials._credentials)
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    _Credentials._credentials_init = False
    anonymous_for_emulator()
    yield "gs://poselabel-test"
    server.stop()
    _Credentials._credentials_init, _Credentials._credentials = saved
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


@pytest.fixture(scope="session")
def person_everywhere_yolo(tmp_path_factory):
    """A YOLOv8n built from its bundled config (no download), with the class
    logits hand-set so that every anchor says 'person' with confidence ~1."""
    import torch
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml")
    head = model.model.model[-1]
    with torch.no_grad():
        for branch in head.cv3:
            bias = branch[-1].bias
            bias.fill_(-20.0)
            bias[0] = 20.0  # class 0 = person
    path = tmp_path_factory.mktemp("yolo") / "person-everywhere.pt"
    model.save(str(path))
    return str(path)
