"""Shard-level faults (issue #22): every tar member accounted for, every sample one row, read
failures not marked done and read again. Tiny tars built in tmp_path; the reader is called
directly; one small real pipeline (Beam, Parquet) for the permission-denied shard's reruns,
and the real Cloud Storage client against a stopped and restarted emulator."""
from __future__ import annotations

import io
import json
import logging
import os
import socket
import tarfile
import time

import pyarrow.parquet as pq
import pytest
from PIL import Image

from poselabel.cli import main as cli_main
from poselabel.config import load_config
from poselabel.io import tar_stream
from poselabel.io.shard_writer import write_shard
from poselabel.io.shards import ReadOptions
from poselabel.pipelines import provenance
from poselabel.pipelines.job import plan
from poselabel.records import SHARD_ERROR_KEY, RawSample, ShardEnd
from poselabel.transforms import read_shards
from poselabel.transforms.read_shards import read_shard

FAST = ReadOptions(backoff_s=0.0, storage_timeout_s=1.0)


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE, link: str = ""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _tar(path, members, mode="w") -> str:
    """``members``: ``(name, data)`` or ``(name, b"", kind, linkname)``; names may hold surrogates
    (bytes that are not UTF-8)."""
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
        for member in members:
            _add(tar, *member)
    return str(path)


def _read(path, options=FAST):
    """Everything ``read_shard`` yields: ``(samples, end)``; asserts the end comes last, once."""
    out = list(read_shard(f"file://{path}", options, sleep=lambda s: None))
    assert isinstance(out[-1], ShardEnd) and all(isinstance(s, RawSample) for s in out[:-1])
    samples, end = out[:-1], out[-1]
    assert end.num_samples == len(samples)
    keys = [s.key for s in samples]
    assert len(keys) == len(set(keys)), keys  # one row per key, never two
    return samples, end


def _errors(samples) -> dict[str, str]:
    return {s.key: s.members[tar_stream.ERROR_MEMBER].decode() for s in samples if tar_stream.ERROR_MEMBER in s.members}


def test_names_that_are_not_utf8_are_escaped_and_reserved_keys_stay_reserved(tmp_path):
    path = _tar(tmp_path / "n.tar", [("caf\udce9.jpg", b"1"), ("caf\udce9.json", b"{}"), ("__shard__.jpg", b"2"),
                                     ("a.__error__", b"not an error"), ("line\nbreak.jpg", b"3")])
    samples, end = _read(path)
    assert [s.key for s in samples] == ["caf\\xe9", "\\x5f_shard__", "a", "line\\x0abreak"]
    assert set(samples[0].members) == {"jpg", "json"} and set(samples[2].members) == {"\\x5f_error__"}
    assert not _errors(samples) and end.read_error is None and end.unread is None
    for s in samples:  # what Beam's coders and Parquet need
        s.key.encode("utf-8")


def test_duplicates_are_error_rows_of_their_own_and_the_rest_is_read(tmp_path):
    path = _tar(tmp_path / "d.tar", [("a.jpg", b"1"), ("a.jpg", b"1bis"), ("b.jpg", b"2"), ("b.JPG", b"2bis"),
                                     ("c.jpg", b"3"), ("a.json", b"{}"), ("d.jpg", b"4")])
    samples, end = _read(path)
    assert sorted(s.key for s in samples) == ["a", "a.dup2", "a.dup3", "b", "b.dup2", "c", "d"]
    errors = _errors(samples)
    assert set(errors) == {"a.dup2", "a.dup3", "b.dup2"} and "b.JPG" in errors["b.dup2"]
    assert {s.key: s.members.get("jpg") for s in samples if s.key in "abcd"} == {
        "a": b"1", "b": b"2", "c": b"3", "d": b"4"}  # the first is labelled
    assert end.members_skipped == {"duplicate": 3} and end.read_error is None


def test_links_devices_fifos_and_nameless_members_are_counted(tmp_path):
    path = _tar(tmp_path / "l.tar", [
        ("a.jpg", b"1"), ("h.jpg", b"", tarfile.LNKTYPE, "a.jpg"), ("s.jpg", b"", tarfile.SYMTYPE, "a.jpg"),
        ("f.jpg", b"", tarfile.FIFOTYPE), ("c.jpg", b"", tarfile.CHRTYPE), ("dir", b"", tarfile.DIRTYPE),
        ("README", b"read me"), (".DS_Store", b"junk"), ("z.jpg", b"2"), ("z.json", b"", tarfile.SYMTYPE, "x.json")])
    samples, end = _read(path)
    assert sorted(s.key for s in samples) == ["a", "c", "f", "h", "s", "z"]
    errors = _errors(samples)
    assert set(errors) == {"c", "f", "h", "s", "z"} and "hardlink to a.jpg" in errors["h"]
    assert "--hard-dereference" in errors["h"] and "symlink" in errors["z"]
    assert end.members_skipped == {"device": 1, "directory": 1, "fifo": 1, "hardlink": 1, "no_extension": 1,
                                   "no_key": 1, "symlink": 2}


def test_an_over_size_member_is_an_error_row_and_the_rest_is_read(tmp_path):
    big = os.urandom(1 << 20)  # incompressible: the cap is checked before the bytes are read
    path = _tar(tmp_path / "o.tar.gz", [("a.jpg", b"1"), ("big.jpg", big), ("big.json", b"{}"), ("c.jpg", b"3")],
                mode="w:gz")
    samples, end = _read(path, ReadOptions(max_member_bytes=512 << 10))
    assert [s.key for s in samples] == ["a", "big", "c"] and samples[2].members == {"jpg": b"3"}
    assert "big.jpg is 1.0 MiB, over max_member_mb (0.5)" in _errors(samples)["big"]
    assert end.members_skipped == {"over_size": 1} and end.read_error is None


def test_a_truncated_tar_keeps_its_whole_samples_and_is_done_with_its_error(tmp_path):
    path = _tar(tmp_path / "t.tar", [("a.jpg", b"1" * 4000), ("b.jpg", b"2" * 4000), ("b.json", b"{}" * 3000)])
    data = open(path, "rb").read()
    (tmp_path / "t.tar").write_bytes(data[: 512 * 12])  # breaks off inside b.json
    samples, end = _read(tmp_path / "t.tar")
    assert [s.key for s in samples] == ["a", "b", SHARD_ERROR_KEY]
    assert samples[0].members["jpg"] == b"1" * 4000
    assert "breaks off in this sample" in _errors(samples)["b"]
    assert end.read_error and "ReadError" in end.read_error and end.unread is None
    gz = _tar(tmp_path / "t.tar.gz", [(f"k{i}.bin", os.urandom(30000)) for i in range(3)], mode="w:gz")
    data = open(gz, "rb").read()
    (tmp_path / "t.tar.gz").write_bytes(data[: len(data) * 3 // 4])  # breaks off inside k2
    samples, end = _read(tmp_path / "t.tar.gz")
    assert [s.key for s in samples] == ["k0", "k1", "k2", SHARD_ERROR_KEY] and "k2" in _errors(samples)
    assert "EOFError" in end.read_error


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_permission_denied_shard_is_not_done_and_not_tried_again_in_the_run(tmp_path):
    path = _tar(tmp_path / "p.tar", [("a.jpg", b"1")])
    os.chmod(path, 0)
    samples, end = _read(path, ReadOptions(backoff_s=60.0))  # no back-off sleep: it would fail the same way
    assert samples == [] and "PermissionError" in end.unread and end.attempts == 1 and end.read_error is None


def test_a_folder_given_as_a_shard_is_not_done(tmp_path):
    (tmp_path / "f.tar").mkdir()
    samples, end = _read(tmp_path / "f.tar")
    assert samples == [] and "IsADirectoryError" in end.unread


def _jpeg(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), (value, value, value)).save(buf, "JPEG")
    return buf.getvalue()


def _make_unreadable(path) -> None:
    """chmod 000; as root (which reads any file) the shard becomes a link to a file moved away."""
    if os.geteuid() != 0:
        os.chmod(path, 0)
        return
    os.replace(path, f"{path}.away")
    os.symlink(f"{path}.away.missing", path)


def _make_readable(path) -> None:
    if os.geteuid() != 0:
        os.chmod(path, 0o644)
        return
    os.remove(path)
    os.replace(f"{path}.away", path)


@pytest.mark.slow
def test_unreadable_shard_is_not_done_and_a_plain_rerun_labels_it_once_fixed(tmp_path):
    """Exit 3 and no done marker while the shard cannot be read; fixed, a rerun without
    --overwrite labels it; every sample exactly once, the good shard never redone."""
    shards = tmp_path / "shards"
    shards.mkdir()
    none = {"json": b'{"persons": []}'}
    write_shard(str(shards / "s-000000.tar"), [("g", {"jpg": _jpeg(100), **none})])
    bad = write_shard(str(shards / "s-000001.tar"), [("h", {"jpg": _jpeg(150), **none}), ("i", {"jpg": _jpeg(50), **none})])
    out = tmp_path / "out"
    args = ["run", "--input", str(shards), "--output", str(out), "--no-progress", "--detector", "oracle",
            "--segmenter", "oracle", "--tz", "none", "--pose", "none", "--camera", "none"]
    _make_unreadable(bad)
    try:
        assert cli_main(args) == 3
        assert sorted(p.name for p in (out / "_done").iterdir()) == ["s-000000.json"]
        assert not (out / "images" / "s-000001.parquet").exists()
        record = json.loads((out / "_unread" / "s-000001.json").read_text())
        assert record["failures"] == 1 and ("PermissionError" in record["unread"] or "FileNotFound" in record["unread"])
        summary = json.loads((out / "summary.json").read_text())
        assert list(summary["unread"]) == ["s-000001"] and summary["failed"] == [] and summary["samples"] == 1
    finally:
        _make_readable(bad)
    good = (out / "_done" / "s-000000.json").read_bytes()
    assert cli_main(args) == 0
    assert (out / "_done" / "s-000000.json").read_bytes() == good
    keys = [(r["shard"], r["key"], r["status"]) for f in sorted((out / "images").glob("*.parquet"))
            for r in pq.read_table(f).to_pylist()]
    assert sorted(keys) == [("s-000000", "g", "no_person"), ("s-000001", "h", "no_person"), ("s-000001", "i", "no_person")]
    assert not list((out / "_unread").glob("*.json"))
    assert json.loads((out / "summary.json").read_text())["unread"] == {}


def test_a_shard_unread_in_read_failures_max_runs_is_failed_until_retry_failed(tmp_path):
    """The plan (no pipeline): records of runs that failed a shard count up; at
    read_failures_max the shard is skipped and listed as failed; --retry-failed takes it."""
    for i in range(2):
        write_shard(str(tmp_path / f"f-{i:06d}.tar"), [("k", {"txt": b"x"})])
    out = str(tmp_path / "out")
    end = ShardEnd(shard="f-000001", path=f"file://{tmp_path}/f-000001.tar", num_samples=0, unread="OSError: EIO")
    config = load_config(None, {"input": str(tmp_path / "f-*.tar"), "output": out, "read_failures_max": 2})
    for run in ("r1", "r1", "r2"):  # a bundle retried within run r1 counts once
        record = provenance.record_unread(out, end, run)
        assert [n for n, _ in plan(config).todo] == ["f-000000"] + (["f-000001"] if record["failures"] < 2 else [])
    assert record["failures"] == 2 and [e["run_id"] for e in record["errors"]] == ["r1", "r2"]
    assert [n for n, _ in plan(config).failed] == ["f-000001"]
    retry = load_config(None, {"input": str(tmp_path / "f-*.tar"), "output": out, "read_failures_max": 2,
                               "retry_failed": True})
    assert [n for n, _ in plan(retry).todo] == ["f-000000", "f-000001"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_storage_outage_mid_shard_resumes_and_later_shards_wait_once(tmp_path, monkeypatch):
    """The real Cloud Storage client against the emulator: stopped mid-shard, restarted during the
    back-off; the shard resumes after the samples it sent (each once). Stopped for good, a shard
    is not done after its tries, and the next shard gets one try of ``storage_timeout_s``."""
    from apache_beam.internal.gcp.auth import _Credentials
    from apache_beam.io.filesystems import FileSystems
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    port = _free_port()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(_Credentials, "_credentials_init", True)  # anonymous at once (tests/conftest.py)
    monkeypatch.setattr(_Credentials, "_credentials", None)
    monkeypatch.setattr(read_shards, "_outage", {"until": 0.0})
    local = _tar(tmp_path / "g.tar", [(f"k{i}.bin", os.urandom(5 << 20)) for i in range(4)])  # > one 8 MiB chunk

    def start():
        server = create_server("127.0.0.1", port, in_memory=True, default_bucket="outage")
        server.start()
        with FileSystems.create("gs://outage/g.tar") as f, open(local, "rb") as src:
            f.write(src.read())
        return server

    servers = [start()]

    def restart(seconds):  # the back-off: the storage comes back
        servers.append(start())

    options = ReadOptions(attempts=3, backoff_s=0.0, storage_timeout_s=1.0)
    out, stopped = [], False
    for element in read_shard("gs://outage/g.tar", options, sleep=restart):
        out.append(element)
        if not stopped:
            servers[-1].stop()
            stopped = True
    assert [s.key for s in out[:-1]] == ["k0", "k1", "k2", "k3"] and out[-1].unread is None and out[-1].attempts == 2
    servers[-1].stop()
    start_s = time.monotonic()
    first = list(read_shard("gs://outage/g.tar", options, sleep=lambda s: None))
    second = list(read_shard("gs://outage/g.tar", options, sleep=lambda s: None))
    assert first[-1].unread and first[-1].attempts == 3 and len(first) == 1
    assert second[-1].unread and second[-1].attempts == 1
    assert time.monotonic() - start_s < 15
