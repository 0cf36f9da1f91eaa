"""Reproduce the output-side faults of issue #22 against a poselabel source tree (this one, or
an older commit's, e.g. ``git archive bccc1b8 | tar -x -C /tmp/base``) and print what happens.

    python benchmarks/faults_output.py --root /tmp/base --shards DIR --work /tmp/w writes body-model \
        two-runs overwrite-kill sigint gs

``--shards``: a folder of a few small shards (``poselabel synth --out DIR --num 8 --seed 1
--shard-size 2``); ``overwrite-kill`` needs ``two-runs`` before it. Each case prints one ``case: ...`` line; the results of 2026-12-06 are in
``docs/errors.md`` ("Faults").
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np


def concurrent_writes(write_atomic, path: str, writers: int = 4, each: int = 500, readers: int = 2) -> dict:
    """``writers`` threads replace the file ``path`` ``each`` times with ``write_atomic(path, data)``
    while ``readers`` threads read it in a loop -> counts: ``failed`` writes (any exception),
    reader ``opens``, opens that found no file (``missing``), reads of a ``torn`` file (not one
    writer's 1,000 bytes). Also the test of ``io.outputs.write_atomic`` (tests/test_faults_output.py)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_atomic(path, b"x" * 1000)
    counts = {"failed": 0, "opens": 0, "missing": 0, "torn": 0}
    stop = threading.Event()

    def writer(i):
        for _ in range(each):
            try:
                write_atomic(path, bytes([65 + i]) * 1000)
            except Exception:  # noqa: BLE001 - counted: what the fault is
                counts["failed"] += 1

    def reader():
        while not stop.is_set():
            counts["opens"] += 1
            try:
                with open(path, "rb") as f:
                    data = f.read()
                counts["torn"] += len(data) != 1000 or len(set(data)) != 1
            except FileNotFoundError:
                counts["missing"] += 1

    reading = [threading.Thread(target=reader) for _ in range(readers)]
    writing = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for t in reading + writing:
        t.start()
    for t in writing:
        t.join()
    stop.set()
    for t in reading:
        t.join()
    return counts


def writes(root: str, work: str) -> str:
    """4 threads replace one file 500 times each while 2 threads read it."""
    from poselabel.io import outputs

    c = concurrent_writes(outputs.write_atomic, os.path.join(work, "race", "table.parquet"))
    return (f"writes: {c['failed']} of 2000 writes failed; readers found no file on {c['missing']} of {c['opens']} "
            f"opens ({100 * c['missing'] / max(1, c['opens']):.1f} %), a torn file on {c['torn']}")


class _Touch:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def body_model(root: str, work: str) -> str:
    """A procedural body model whose faces array is an object array that pickles ``os.system``."""
    from poselabel.models.body.model import BodyModel
    from poselabel.models.body.procedural import default_body_model_path

    marker = os.path.join(work, "PWNED")
    with np.load(default_body_model_path()) as z:
        arrays = {k: z[k] for k in z.files}
    evil = np.empty(1, dtype=object)
    evil[0] = _Touch(marker)
    arrays["f"] = evil
    path = os.path.join(work, "SMPLX_EVIL.npz")
    np.savez(path, **arrays)
    try:
        BodyModel(path)
        outcome = "loaded"
    except Exception as exc:  # noqa: BLE001 - reported
        outcome = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return f"body-model: code ran (marker created): {os.path.exists(marker)}; {outcome}"


def _run(root: str, shards: str, out: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "poselabel.cli", "run", "--no-progress", "--input", shards, "--output", out, *extra]
    env = {**os.environ, "PYTHONPATH": root}
    # A session of its own: the SIGINT case signals its whole process group, as a terminal's Ctrl-C does.
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for(pattern: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not glob.glob(pattern):
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"gave up waiting for {pattern}")
        time.sleep(0.05)


def _useful(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "Warning" not in ln and "warnings.warn" not in ln]


def two_runs(root: str, work: str, shards: str) -> str:
    """Run B starts on run A's output once A has started labelling (its run record exists)."""
    import pyarrow.parquet as pq

    out = os.path.join(work, "two")
    a = _run(root, shards, out)
    _wait_for(os.path.join(out, "_runs", "*.json"), a)
    t0 = time.time()
    b = _run(root, shards, out)
    _, b_err = b.communicate()
    b_s = time.time() - t0
    _, a_err = a.communicate()
    markers = [json.load(open(p)) for p in glob.glob(os.path.join(out, "_done", "*.json"))]
    runs = {m.get("run_id") for m in markers}
    rows = sum(pq.read_table(p).num_rows for p in glob.glob(os.path.join(out, "images", "*.parquet")))
    b_lines = _useful(b_err)
    return (f"two-runs: A exit {a.returncode}, B exit {b.returncode} after {b_s:.1f} s, B printed "
            f"{len(b_lines)} lines, last: {b_lines[-1] if b_lines else ''!r}; {len(markers)} done shards from "
            f"{len(runs)} run(s), {rows} image rows, {len(glob.glob(os.path.join(out, '_runs', '*.json')))} run records")


def overwrite_kill(root: str, work: str, shards: str) -> str:
    """``--overwrite`` on the done output of ``two-runs``, SIGKILLed once its run record is written."""
    import pyarrow.parquet as pq

    out = os.path.join(work, "two")
    before = len(glob.glob(os.path.join(out, "_runs", "*.json")))
    job = _run(root, shards, out, "--overwrite")
    deadline = time.time() + 300
    while len(glob.glob(os.path.join(out, "_runs", "*.json"))) <= before and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    markers = glob.glob(os.path.join(out, "_done", "*.json"))
    tables = [p for t in ("images", "persons") for p in glob.glob(os.path.join(out, t, "*.parquet"))]
    readable = sum(pq.read_table(p) is not None for p in tables)
    return f"overwrite-kill: after SIGKILL {len(markers)} of 4 shards still done, {readable} of {len(tables)} tables readable"


def sigint(root: str, work: str, shards: str) -> str:
    """SIGINT to the process group of ``poselabel run --workers 2`` once its first shard is done
    (what a terminal's Ctrl-C does: every process of the foreground group gets it)."""
    out = os.path.join(work, "sigint")
    job = _run(root, shards, out, "--workers", "2")
    stamped: list[tuple[float, str]] = []
    drain = threading.Thread(target=lambda: stamped.extend((time.time(), ln) for ln in job.stderr))
    drain.start()
    _wait_for(os.path.join(out, "_done", "*.json"), job)
    t0 = time.time()
    os.killpg(job.pid, signal.SIGINT)
    try:
        job.wait(timeout=120)
    except subprocess.TimeoutExpired:
        job.kill()
    drain.join()
    after = _useful("".join(ln for t, ln in stamped if t >= t0))
    text = "".join(ln for _, ln in stamped)
    with open(os.path.join(work, "sigint.stderr"), "w") as f:
        f.writelines(f"{t - t0:+8.2f} {ln}" for t, ln in stamped)
    return (f"sigint: exit {job.returncode} {time.time() - t0:.1f} s after SIGINT; {len(after)} stderr lines after "
            f"it, {text.count('Traceback')} tracebacks, 'terminate called' {'terminate called' in text}, "
            f"'Aborted' {'Aborted' in text}; last: {after[-1].strip() if after else ''!r}")


def gs(root: str, work: str, shards: str) -> str:
    """``gs://`` input without credentials (no emulator, no key file, no gcloud config)."""
    env = {k: v for k, v in os.environ.items() if k not in ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS")}
    env.update(PYTHONPATH=root, CLOUDSDK_CONFIG=os.path.join(work, "no-gcloud"))
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "poselabel.cli", "run", "--no-progress", "--input",
                        "gs://poselabel-no-such-bucket/in/*.tar", "--output", os.path.join(work, "gs-out")],
                       cwd=root, env=env, capture_output=True, text=True, timeout=600)
    lines = _useful(p.stderr)
    return (f"gs: exit {p.returncode} after {time.time() - t0:.1f} s, {len(lines)} stderr lines, "
            f"last: {lines[-1] if lines else ''!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the poselabel source tree to test")
    parser.add_argument("--shards", required=True)
    parser.add_argument("--work", required=True, help="an empty scratch folder")
    parser.add_argument("cases", nargs="+",
                        choices=["writes", "body-model", "two-runs", "overwrite-kill", "sigint", "gs"])
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.root))
    os.makedirs(args.work, exist_ok=True)
    for case in args.cases:
        if case in ("writes", "body-model"):
            line = {"writes": writes, "body-model": body_model}[case](args.root, args.work)
        else:
            line = {"two-runs": two_runs, "overwrite-kill": overwrite_kill, "sigint": sigint,
                    "gs": gs}[case](args.root, args.work, args.shards)
        print(line, flush=True)


if __name__ == "__main__":
    main()
