"""The same job on other engines, and a job killed mid-way then resumed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import mixed_samples

from poselabel.io.shard_writer import write_shard

pytestmark = pytest.mark.slow
POSELABEL = [sys.executable, "-m", "poselabel.cli"]


@pytest.fixture(scope="module")
def three_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("three")
    samples = mixed_samples()
    for i, chunk in enumerate((samples[0:3], samples[3:5], samples[5:7])):
        write_shard(str(root / f"part-{i:06d}.tar"), [(f"{key}-{i}", m) for key, m in chunk])
    return root


def _table(out: Path, table: str):
    exclude = " exclude (timings_ms, url)" if table == "images" else ""
    return duckdb.sql(f"select *{exclude} from '{out}/{table}/*.parquet' order by all").fetchall()


def _run_cli(*args, **kw):
    return subprocess.run([*POSELABEL, "run", "--no-progress", *args], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def direct_out(three_shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("direct")
    proc = _run_cli("--input", str(three_shards / "part-{000000..000002}.tar"), "--output", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_dask_runner_gives_the_same_rows(three_shards, direct_out, tmp_path):
    proc = _run_cli("--input", str(three_shards / "part-*.tar"), "--output", str(tmp_path),
                    "--runner", "dask", "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for table in ("images", "persons"):
        assert _table(tmp_path, table) == _table(direct_out, table)
    assert len(_table(tmp_path, "images")) == 7


def test_direct_multiprocessing_gives_the_same_rows(three_shards, direct_out, tmp_path):
    proc = _run_cli("--input", str(three_shards / "part-*.tar"), "--output", str(tmp_path), "--workers", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for table in ("images", "persons"):
        assert _table(tmp_path, table) == _table(direct_out, table)


def test_sigkill_after_first_shard_then_rerun(three_shards, direct_out, tmp_path):
    # More shards than the others so the job is still running when the first is done.
    root = tmp_path / "in"
    root.mkdir()
    samples = mixed_samples()
    for i in range(6):
        write_shard(str(root / f"k-{i:06d}.tar"), [(f"{key}-{i}", m) for key, m in samples[:4]])
    out = tmp_path / "out"
    proc = subprocess.Popen([*POSELABEL, "run", "--no-progress", "--input", str(root / "k-*.tar"),
                             "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "_done").glob("*.json")):
        assert proc.poll() is None, "the job ended before a shard was done"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_at_kill = len(list((out / "_done").glob("*.json")))
    assert 1 <= done_at_kill < 6, f"{done_at_kill} shards were done when killed"
    rerun = _run_cli("--input", str(root / "k-*.tar"), "--output", str(out))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    rows = duckdb.sql(f"select shard, key, count(*) n from '{out}/images/*.parquet' group by all").fetchall()
    assert len(rows) == 6 * 4 and all(n == 1 for _, _, n in rows)
    # A write cut by the kill leaves at most a hidden temporary file, which dataset readers skip.
    assert all(p.name.startswith(".") for p in out.rglob("*.tmp-*"))
    import pyarrow.parquet as pq

    assert pq.read_table(str(out / "images")).num_rows == 6 * 4
    persons = duckdb.sql(f"select key, person_index, count(*) n from '{out}/persons/*.parquet' group by all").fetchall()
    assert all(n == 1 for *_, n in persons)


def test_a_stage_worker_exits_with_its_heap_frozen(tmp_path):
    """A process that set a stage up freezes its heap at exit (``base.freeze_heap_at_exit``), so the
    interpreter's last collections skip the millions of objects torch and MediaPipe leave: the
    direct runner closes its workers one after the other and waited about 1.5 s for each."""
    probe = tmp_path / "frozen.txt"
    code = (
        "import atexit, gc, sys\n"
        # registered first, so it runs after the stage's hook (atexit runs last-in, first-out)
        f"atexit.register(lambda: open({str(probe)!r}, 'w').write(str(gc.get_freeze_count())))\n"
        "from poselabel.config import load_config\n"
        "from poselabel.transforms.judge_quality import JudgeQuality\n"
        f"stage = JudgeQuality(load_config(None, {{'input': 'x', 'output': {str(tmp_path / 'out')!r}}}))\n"
        "stage.setup(); stage.setup()\n"  # once per process, however many stages
        "print(gc.get_freeze_count())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout.split()[-1]) == 0  # nothing frozen while the worker runs
    assert int(probe.read_text()) > 10_000  # and the whole heap at exit
