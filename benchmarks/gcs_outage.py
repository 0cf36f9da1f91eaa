"""A storage outage in the middle of a run, against the Cloud Storage emulator; then the rerun.

    python benchmarks/gcs_outage.py --work /tmp/outage [--tree /tmp/before] [--shards 8]

Shards of the 4 demo samples (keys suffixed by shard) are put in a bucket of
``gcp-storage-emulator`` (its own process, stored on disk under ``--work``); ``poselabel run``
(``--tree``'s package, default this checkout; MediaPipe detection and segmentation, later
stages off; output local) starts, the emulator is killed once the first done marker appears,
and the run is timed to its end. The emulator is started again on the same data and the run
repeated without --overwrite; the images tables must then hold every sample exactly once.
Results: docs/faults.md.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(work: Path, port: int) -> subprocess.Popen:
    exe = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
    log = open(work / "emulator.log", "a")
    proc = subprocess.Popen([exe, "start", "--host", "127.0.0.1", "--port", str(port), "--default-bucket", "outage",
                             "-q"], cwd=work, stdout=log, stderr=log, start_new_session=True)
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if time.time() > deadline:
                raise RuntimeError("the emulator did not start")
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--tree", type=Path, default=REPO, help="a tree holding the poselabel package to run")
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    sys.path.insert(0, str(REPO))
    from apache_beam.internal.gcp.auth import _Credentials

    _Credentials._credentials_init, _Credentials._credentials = True, None  # anonymous (tests/conftest.py)
    import pyarrow.parquet as pq

    from poselabel.assets import demo_samples
    from poselabel.io.shard_writer import write_shard

    emulator = start_emulator(args.work, port)
    samples = demo_samples()
    for i in range(args.shards):
        write_shard(f"gs://outage/in/o-{i:06d}.tar", [(f"{k}-{i}", m) for k, m in samples])
    out = args.work / "out"
    cmd = [sys.executable, "-m", "poselabel.cli", "run", "--input", "gs://outage/in/", "--output", str(out),
           "--no-progress", "--tz", "none", "--pose", "none", "--camera", "none"]
    env = {**os.environ, "PYTHONPATH": str(args.tree), "PYTHONWARNINGS": "ignore"}
    result = {"tree": str(args.tree), "shards": args.shards, "samples": args.shards * len(samples)}
    start = time.time()
    job = subprocess.Popen(cmd, env=env, cwd=args.tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not glob.glob(str(out / "_done" / "*.json")):
        if job.poll() is not None:
            raise RuntimeError("the run ended before a shard was done: " + job.stderr.read()[-2000:])
        time.sleep(0.1)
    os.killpg(emulator.pid, signal.SIGKILL)
    emulator.wait()
    killed = time.time()
    stdout, stderr = job.communicate(timeout=3600)
    result["first run"] = {"exit": job.returncode, "s_after_kill": round(time.time() - killed, 1),
                           "s_total": round(time.time() - start, 1),
                           "done": len(glob.glob(str(out / "_done" / "*.json"))),
                           "stderr": [line for line in stderr.splitlines() if "NOT DONE" in line or "Error" in line][-2:]}
    emulator = start_emulator(args.work, port)
    try:
        start = time.time()
        rerun = subprocess.run(cmd, env=env, cwd=args.tree, capture_output=True, text=True, timeout=3600)
        rows = [(r["shard"], r["key"], r["status"]) for f in sorted((out / "images").glob("*.parquet"))
                for r in pq.read_table(f).to_pylist()]
        keys = [(s, k) for s, k, _ in rows]
        result["rerun"] = {"exit": rerun.returncode, "s": round(time.time() - start, 1), "rows": len(rows),
                           "distinct": len(set(keys)), "errors": sum(1 for *_, st in rows if st == "error"),
                           "done": len(glob.glob(str(out / "_done" / "*.json")))}
    finally:
        os.killpg(emulator.pid, signal.SIGKILL)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
