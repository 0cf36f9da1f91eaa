"""Faults on the output side (issue #22): one writer per output, writes that cannot race,
user files that cannot run code, a fast credentials error, a clean stop on SIGINT.

Real file systems, real numpy/smplx loading, a real subprocess for the stop; no mocks."""
from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from poselabel.cli import main
from poselabel.commands.supervise import run_supervised
from poselabel.config import InputError
from poselabel.io import outputs
from poselabel.io.files import check_credentials
from poselabel.io.lease import Lease, LeaseHeld, LeaseRecord, _write, lease_path, read_lease
from poselabel.io.shard_writer import write_shard
from poselabel.models.body.model import BodyModel
from poselabel.models.body.model_file import check_body_model
from poselabel.models.body.procedural import default_body_model_path
from poselabel.pipelines.user_files import check_yolo_weights
from poselabel.transforms import shared_models


@pytest.fixture
def shards(tmp_path):
    write_shard(str(tmp_path / "shards" / "s-000000.tar"), [("k", {"txt": b"x"})])
    return tmp_path / "shards"


def test_second_run_refused_in_one_line_while_a_live_lease_exists(tmp_path, shards, capsys):
    out = tmp_path / "out"
    (out / "persons").mkdir(parents=True)
    (out / "persons" / "s-000000.parquet").write_bytes(b"the first run's table")
    with Lease(str(out), "run-a"):
        assert main(["run", "--input", str(shards), "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is in use by run run-a" in err and "--take-over" in err
        assert read_lease(str(out)).run_id == "run-a"  # the holder's lease untouched
    assert (out / "persons" / "s-000000.parquet").read_bytes() == b"the first run's table"
    assert not os.path.exists(lease_path(str(out)))  # released when the holder ended


def test_lease_on_gcs_refuses_a_second_claim(gcs_bucket):
    out = f"{gcs_bucket}/faults-lease"
    assert read_lease(out) is None  # a missing object reads as no lease
    with Lease(out, "run-a"):
        with pytest.raises(LeaseHeld, match="is in use by run run-a"):
            Lease(out, "run-b").claim()
    assert read_lease(out) is None


def test_stale_lease_is_taken_over_and_a_live_one_only_when_asked(tmp_path):
    out = str(tmp_path / "out")
    old = time.time() - 1000
    _write(out, LeaseRecord("run-dead", "someone", "elsewhere", 1, old, old))
    with Lease(out, "run-b", stale_s=600):  # 1000 s without a heartbeat: stale
        assert read_lease(out).run_id == "run-b"
        with pytest.raises(LeaseHeld, match="run run-b"):
            Lease(out, "run-c", stale_s=600).claim()
        with Lease(out, "run-d", take_over=True):
            assert read_lease(out).run_id == "run-d"
    assert read_lease(out) is None or read_lease(out).run_id == "run-d"  # b did not remove d's lease


def test_lease_of_a_dead_process_on_this_host_is_taken_at_once(tmp_path):
    out = str(tmp_path / "out")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    now = time.time()
    _write(out, LeaseRecord("run-killed", "me", socket.gethostname(), gone.pid, now, now))
    with Lease(out, "run-next"):  # a fresh heartbeat, but its process is gone (SIGKILL)
        assert read_lease(out).run_id == "run-next"


def test_heartbeat_renews_and_notices_a_takeover(tmp_path):
    out = str(tmp_path / "out")
    held = Lease(out, "run-a", stale_s=0.5)  # heartbeat every 0.05 s
    with held:
        first = read_lease(out).heartbeat_at
        time.sleep(0.3)
        assert read_lease(out).heartbeat_at > first
        now = time.time()
        _write(out, LeaseRecord("run-b", "other", "host", 2, now, now))
        assert held.lost.wait(2)
    assert read_lease(out).run_id == "run-b"  # the taker's lease survives the loser's end


def test_concurrent_writes_never_leave_a_reader_without_the_file(tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "faults_output", Path(__file__).resolve().parents[1] / "benchmarks" / "faults_output.py")
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    counts = harness.concurrent_writes(outputs.write_atomic, str(tmp_path / "t" / "table.parquet"), writers=3, each=150)
    assert counts["opens"] > 0
    assert counts["failed"] == 0 and counts["missing"] == 0 and counts["torn"] == 0
    assert sorted(os.listdir(tmp_path / "t")) == ["table.parquet"]  # no temporary left behind


def test_gcs_writes_replace_the_object_whole(gcs_bucket):
    path = f"{gcs_bucket}/faults/table.parquet"
    outputs.write_atomic(path, b"old")
    seen = []
    done = threading.Event()

    def reader():
        while not done.is_set():
            seen.append(outputs.read_bytes(path))  # raises if the object were ever missing

    t = threading.Thread(target=reader)
    t.start()
    for i in range(5):
        outputs.write_atomic(path, b"new%d" % i)
    done.set()
    t.join()
    assert set(seen) <= {b"old"} | {b"new%d" % i for i in range(5)} and outputs.read_bytes(path) == b"new4"


class _Touch:
    """Pickles as ``os.system("touch MARKER")``: what a malicious body model could hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _model_arrays():
    with np.load(default_body_model_path(), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _evil(marker) -> np.ndarray:
    arr = np.empty(1, dtype=object)
    arr[0] = _Touch(marker)
    return arr


def test_malicious_body_model_refused_and_nothing_runs(tmp_path, shards, capsys):
    marker = tmp_path / "PWNED"
    arrays = _model_arrays()
    arrays["f"] = _evil(marker)
    path = str(tmp_path / "SMPLX_NEUTRAL.npz")
    np.savez(path, **arrays)
    with pytest.raises(InputError, match="array 'f' holds Python objects"):
        BodyModel(path)
    assert main(["run", "--input", str(shards), "--output", str(tmp_path / "out"), "--body-model", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds Python objects (a pickle, which can run code): refused" in err
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_unused_object_members_are_left_out_unread(tmp_path):
    """The real SMPLX_NEUTRAL.npz holds object members smplx does not use (joint2num, part2num)."""
    marker = tmp_path / "PWNED"
    arrays = _model_arrays()
    arrays["joint2num"] = _evil(marker)
    path = str(tmp_path / "SMPLX_NEUTRAL.npz")
    np.savez(path, **arrays)
    model = BodyModel(path)
    assert model.num_vertices == arrays["v_template"].shape[0] and not marker.exists()


def test_malicious_yolo_checkpoint_refused_and_nothing_runs(tmp_path, person_everywhere_yolo):
    import torch

    marker = tmp_path / "PWNED"
    checkpoint = torch.load(person_everywhere_yolo, weights_only=False)  # the test's own file
    checkpoint["extra"] = _Touch(marker)
    evil = str(tmp_path / "evil.pt")
    torch.save(checkpoint, evil)
    with pytest.raises(InputError, match="--yolo-weights .*evil.pt: not loadable with torch.load"):
        check_yolo_weights(evil)
    assert not marker.exists()
    check_yolo_weights(person_everywhere_yolo)  # an Ultralytics checkpoint passes


@pytest.mark.parametrize("name, value, message", [
    ("v_template", np.zeros((10, 2), np.float32), r"'v_template' has shape \(10, 2\), expected \(10, 3\)"),
    ("weights", np.zeros((5, 55), np.float32), "'weights' has shape"),
    ("f", np.zeros((4, 3), np.float32), "'f' has dtype float32, expected integers"),
    ("kintree_table", None, "lacks kintree_table"),
])
def test_body_model_arrays_are_checked(tmp_path, name, value, message):
    arrays = _model_arrays()
    if value is None:
        del arrays[name]
    else:
        arrays[name] = value
    path = str(tmp_path / "SMPLX_NEUTRAL.npz")
    np.savez(path, **arrays)
    with pytest.raises(InputError, match=message):
        check_body_model(path)


def test_gs_without_credentials_fails_fast_naming_the_fix(tmp_path, monkeypatch, capsys):
    for var in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # no gcloud login here
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")  # nor a metadata server
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    start = time.time()
    assert main(["run", "--input", "gs://some-bucket/in/*.tar", "--output", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert time.time() - start < 10
    assert err == ("poselabel run: gs://some-bucket: no Google Cloud credentials found; run `gcloud auth "
                   "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file\n")
    check_credentials([str(tmp_path)])  # local paths need none
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")
    check_credentials(["gs://some-bucket/x"])  # an emulator needs none


def test_machine_sharing_server_refuses_beams_fixed_key(monkeypatch):
    from multiprocessing.connection import Client
    from multiprocessing import AuthenticationError

    monkeypatch.setenv(shared_models.AUTHKEY_ENV, os.urandom(32).hex())
    key = shared_models.share_key("faults-test", time.time())
    served = shared_models.acquire("machine", key, lambda: {"x": 1})
    assert served.get("x") == 1
    authkey = shared_models.share_authkey()
    assert os.stat(shared_models.share_folder()).st_mode & 0o077 == 0
    folder = os.path.join(shared_models.share_folder(), hashlib.sha256(authkey).hexdigest()[:16])
    (address_file,) = [f for f in os.listdir(folder) if f.startswith(key) and f.endswith(".address")]
    host, port = open(os.path.join(folder, address_file)).read().split(":")
    with pytest.raises(AuthenticationError):
        Client((host, int(port)), authkey=b"mps")  # apache_beam.utils.multi_process_shared.AUTH_KEY
    Client((host, int(port)), authkey=authkey).close()


@pytest.mark.slow
def test_sigint_stops_the_run_in_one_line_and_frees_the_output(tmp_path, shards):
    """A real ``poselabel run`` process, sent SIGINT once it holds the output's lease and has
    recorded its run (the case with workers and shards done: ``benchmarks/faults_output.py sigint``)."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    job = subprocess.Popen([sys.executable, "-m", "poselabel.cli", "run", "--no-progress", "--input", str(shards),
                            "--output", str(out)], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not (out / "_runs").is_dir() or not os.listdir(out / "_runs"):
        assert job.poll() is None and time.time() < deadline
        time.sleep(0.02)
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=60)
    assert job.returncode == 130
    lines = [ln for ln in err.splitlines() if ln.startswith("poselabel") or "Traceback" in ln]
    assert lines == ["poselabel run: interrupted after 0 of 1 shards; rerun the same command to resume"], err[-2000:]
    assert not os.path.exists(lease_path(str(out)))  # a rerun is not refused


def test_supervised_job_that_raises_prints_its_traceback(tmp_path, capfd):
    def work():
        raise ValueError("Unexpected keyword arguments: ['runner']")

    assert run_supervised(work, str(tmp_path)) == 1
    err = capfd.readouterr().err
    assert "Traceback" in err and "ValueError: Unexpected keyword arguments: ['runner']" in err
