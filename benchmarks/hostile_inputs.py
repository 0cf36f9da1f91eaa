"""Hostile samples against ``poselabel run``: does every sample end as one row, and what does it cost?

Each case is a one-shard job in a temporary folder: the hostile sample, then an ordinary photo
without people (``facade``), so a job that dies shows the samples it lost. Each job runs
``python -m poselabel.cli run`` in a subprocess with its working folder at ``--repo`` (the code
measured), and the table gives its exit status, the images table's rows by status, the rows
lost, and the job's peak resident memory (``os.wait4``'s ``ru_maxrss``: the job process and the
processes it waited for).

```
nice python benchmarks/hostile_inputs.py                      # this checkout, every case (~3 min, 2 cores)
nice python benchmarks/hostile_inputs.py --repo /tmp/base     # another checkout (e.g. a worktree of an older commit)
python benchmarks/hostile_inputs.py --cases deep_json,eps_as_jpg
```

Cases: ``deep_json`` (a json member nested 100,000 deep), ``json_990_deep`` (nested 990 deep:
parses, but is too deep to serialise again inside the pipeline), ``surrogate_json`` (a json
member whose strings hold lone UTF-16 surrogates, ``"\\ud800"``), ``portrait_64mp`` (a real
portrait, matplotlib's ``grace_hopper.jpg``, upscaled to 6,928 x 9,237 = 64.0 MP: the person
fills the image), ``eps_as_jpg`` (a PostScript file named ``.jpg``), ``memory_error`` (a 40 MP
PNG, 120 MB once decoded, in a job whose data segment (``RLIMIT_DATA``) is limited to the least
that a job of the ordinary photo alone needs, in steps of 0.5 GiB: decoding it raises
``MemoryError``, as in a worker short of memory).
"""
from __future__ import annotations

import argparse
import collections
import glob
import io
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

import pyarrow.parquet as pq
from PIL import Image

from poselabel.assets import no_person_photo, photo_path
from poselabel.io.shard_writer import write_shard

PORTRAIT_SIZE = (6928, 9237)  # 63,993,936 px: just under decode.max_pixels' default of 64,000,000
BIG_PNG_SIZE = (8000, 5000)  # 40 MP: 120 MB of RGB once decoded


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _eps() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="EPS")
    return buf.getvalue()


def _portrait() -> bytes:
    with Image.open(photo_path("grace_hopper.jpg")) as im:
        return _jpeg(im.convert("RGB").resize(PORTRAIT_SIZE, Image.BILINEAR), quality=85)


def _big_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", BIG_PNG_SIZE, (90, 120, 150)).save(buf, format="PNG")
    return buf.getvalue()


def hostile_samples(case: str) -> list[tuple[str, dict[str, bytes]]]:
    """The case's samples: its hostile one, then an ordinary photo without people."""
    facade = no_person_photo()
    hostile = {
        "deep_json": lambda: {"jpg": facade, "json": _nested(100_000)},
        "json_990_deep": lambda: {"jpg": facade, "json": _nested(990)},
        "surrogate_json": lambda: {"jpg": facade, "json": b'{"url": "http://x/\\ud800", "caption": "a\\udc00b", '
                                                          b'"\\udfff": 1}'},
        "portrait_64mp": lambda: {"jpg": _portrait()},
        "eps_as_jpg": lambda: {"jpg": _eps()},
        "memory_error": lambda: {"png": _big_png()},
    }[case]()
    return [("hostile", hostile), ("facade", {"jpg": facade, "json": b'{"source": "bus.jpg, top rows"}'})]


CASES = ("deep_json", "json_990_deep", "surrogate_json", "portrait_64mp", "eps_as_jpg", "memory_error")


def run_job(repo: str, shard: str, out: str, timeout: float, data_limit: int | None = None) -> dict:
    """``poselabel run`` on one shard in a subprocess; exit status, wall time, peak RSS, stderr tail."""
    env = {**os.environ, "PYTHONPATH": repo, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    cmd = [sys.executable, "-m", "poselabel.cli", "run", "--input", shard, "--output", out, "--no-progress"]

    def limit():
        if data_limit is not None:
            resource.setrlimit(resource.RLIMIT_DATA, (data_limit, data_limit))

    start = time.perf_counter()
    with open(out + ".stderr", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                status = None
                break
            time.sleep(0.2)
    proc.returncode = 0  # reaped by wait4; keep Popen from waiting again
    if status is None:
        code = "timeout"
    elif os.WIFSIGNALED(status):
        code = f"signal {os.WTERMSIG(status)}"
    else:
        code = str(os.WEXITSTATUS(status))
    with open(out + ".stderr", "rb") as f:
        tail = f.read()[-4000:].decode("utf-8", "replace")
    return {"exit": code, "wall_s": time.perf_counter() - start, "rss_mb": usage.ru_maxrss / 1024, "stderr": tail}


def _last_exception(stderr: str) -> str:
    """The last ``SomeError: message`` line of a traceback in ``stderr``."""
    found = [ln.strip() for ln in stderr.splitlines() if re.match(r"^\s*[\w.]*(Error|Exception|Fault)\b", ln)]
    return found[-1] if found else "(no exception on stderr)"


def read_rows(out: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(os.path.join(out, "images", "*.parquet"))):
        rows += pq.read_table(path, columns=["key", "status", "error"]).to_pylist()
    return rows


def data_segment_limit(repo: str, work: str, timeout: float) -> int:
    """``RLIMIT_DATA`` for the memory_error case: the smallest, in steps of 0.5 GiB, under which a
    job of the ordinary photo alone runs (measured, not guessed: the data segment also counts
    reservations never touched, which RSS does not show)."""
    shard = os.path.join(work, "calibrate-000000.tar")
    write_shard(shard, hostile_samples("memory_error")[1:])
    for half_gib in range(3, 33):
        out = os.path.join(work, f"calibrate-{half_gib}")
        result = run_job(repo, shard, out, timeout, data_limit=half_gib << 29)
        if result["exit"] == "0" and len(read_rows(out)) == 1:
            print(f"memory_error: RLIMIT_DATA {half_gib / 2:g} GiB", file=sys.stderr)
            return half_gib << 29
    raise RuntimeError("no data-segment limit under 16 GiB lets an ordinary job run")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="checkout whose poselabel is run (default: this one)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per job")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args(argv)
    repo = os.path.abspath(args.repo)
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="hostile-")
    print(f"repo {repo} at {commit}; {time.strftime('%Y-%m-%d')}; work folder {work}", file=sys.stderr)
    lines = ["| case | exit status | rows by status | rows lost | peak RSS (MB) | wall (s) | the hostile sample's error |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        samples = hostile_samples(case)
        shard = os.path.join(work, f"{case}-000000.tar")
        write_shard(shard, samples)
        limit = data_segment_limit(repo, work, args.timeout) if case == "memory_error" else None
        result = run_job(repo, shard, os.path.join(work, case), args.timeout, data_limit=limit)
        rows = read_rows(os.path.join(work, case))
        counts = collections.Counter(r["status"] for r in rows)
        error = next((r["error"] for r in rows if r["key"] == "hostile"), None)
        if error is None and result["exit"] != "0":
            error = "job died: " + _last_exception(result["stderr"])
        error = (error or "").replace("|", "/")[:110]
        by_status = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
        lines.append(f"| {case} | {result['exit']} | {by_status} | {len(samples) - len(rows)} | "
                     f"{result['rss_mb']:,.0f} | {result['wall_s']:.0f} | {error} |")
        print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))
    if not args.keep:
        subprocess.run(["rm", "-rf", work], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
