"""Shard-level faults (issue #22), before and after: what the reader gives for each fault, and
what a run, a fix and a rerun leave in the tables.

    git archive bccc1b8 poselabel | tar -x -C /tmp/before     # the code before (any commit)
    python benchmarks/shard_faults.py --work /tmp/sf --before /tmp/before [--big-gib 1]

Each reader case runs in its own process (``PYTHONPATH`` = the tree under test) under an
8 GiB address-space limit (``RLIMIT_AS``, as in the issue) and prints the rows the reader
gives (key, error), its ``ShardEnd`` and the peak RSS (``ru_maxrss``). The run cases call
``python -m poselabel.cli run`` (oracle detector and segmenter, later stages off: the reader
and the writer are what is measured), then fix the fault and run again without --overwrite.
Root reads any file: as root, give ``--as-nobody`` and every reader and run is started as
``nobody`` (``setpriv``), the work folder handed to it, so that chmod 000 means permission denied.
Results: docs/faults.md.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AS_NOBODY: list[str] = []  # the command prefix that drops root (--as-nobody)
READER = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))
from poselabel.transforms.read_shards import ReadShard
from poselabel.records import ShardEnd
rows, end, exc = [], None, None
try:
    for e in ReadShard().process(sys.argv[1]):
        if isinstance(e, ShardEnd):
            end = {k: v for k, v in vars(e).items() if k not in ("shard", "path")}
        else:
            try:
                e.key.encode("utf-8")  # what Beam's str coder does with the key
                key = e.key
            except UnicodeEncodeError as x:
                key = "UnicodeEncodeError in Beam's coder: " + ascii(e.key)
            error = e.members.get("__error__", b"").decode()[:90] or None
            rows.append([key, error])
except BaseException as x:
    exc = f"{type(x).__name__}: {x}"[:160]
print(json.dumps({"rows": rows, "end": end, "raised": exc,
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}, default=str))
"""


def _add(tar, name, data=b"x", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _tar(path: Path, members, mode="w") -> Path:
    with tarfile.open(path, mode, format=tarfile.GNU_FORMAT, encoding="utf-8", errors="surrogateescape") as tar:
        for m in members:
            _add(tar, *m)
    return path


class _Zeros(io.RawIOBase):
    def __init__(self, n):
        self.left = n

    def readinto(self, b):
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n


def reader_cases(work: Path, big_gib: float) -> dict[str, Path]:
    cases = {}
    d = work / "reader"
    d.mkdir(parents=True, exist_ok=True)
    cases["non-UTF-8 member name"] = _tar(d / "utf8.tar", [("ok.jpg", b"1"), ("caf\udce9.jpg", b"2")])
    cases["sample named __shard__"] = _tar(d / "reserved.tar", [("a.jpg", b"1"), ("__shard__.jpg", b"2")])
    cases["adjacent duplicate a.jpg a.jpg"] = _tar(d / "dup.tar", [("a.jpg", b"1"), ("a.jpg", b"1"), ("c.jpg", b"3")])
    cases["b.jpg + b.JPG"] = _tar(d / "case.tar", [("a.jpg", b"1"), ("b.jpg", b"2"), ("b.JPG", b"2"), ("c.jpg", b"3")])
    cases["hardlink, symlink, fifo, device"] = _tar(d / "links.tar", [
        ("a.jpg", b"1"), ("h.jpg", b"", tarfile.LNKTYPE, "a.jpg"), ("s.jpg", b"", tarfile.SYMTYPE, "a.jpg"),
        ("f.jpg", b"", tarfile.FIFOTYPE), ("c.jpg", b"", tarfile.CHRTYPE)])
    cases["README and .jpg members"] = _tar(d / "names.tar", [("a.jpg", b"1"), ("README", b"r"), (".jpg", b"2")])
    trunc = _tar(d / "trunc.tar", [("a.jpg", b"1" * 4000), ("b.jpg", b"2" * 4000), ("c.jpg", b"3" * 4000)])
    trunc.write_bytes(trunc.read_bytes()[: 512 * 12])
    cases["truncated tar"] = trunc
    (d / "dir.tar").mkdir(exist_ok=True)
    cases["a folder as a shard"] = d / "dir.tar"
    perm = _tar(d / "perm.tar", [("a.jpg", b"1")])
    os.chmod(perm, 0)
    cases["permission denied" + (" (root: reads it)" if os.geteuid() == 0 and not AS_NOBODY else "")] = perm
    big = d / "big.tar.gz"
    if not big.exists():
        with tarfile.open(big, "w:gz") as tar:
            _add(tar, "a.jpg", b"1")
            info = tarfile.TarInfo("big.jpg")
            info.size = int(big_gib * (1 << 30))
            tar.addfile(info, _Zeros(info.size))
            _add(tar, "c.jpg", b"3")
    cases[f"{big_gib:g} GiB member ({big.stat().st_size / 1e6:.1f} MB .tar.gz)"] = big
    return cases


def read_with(tree: Path, shard: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(AS_NOBODY + [sys.executable, "-c", READER, str(shard)], env=env, capture_output=True, text=True,
                          cwd=tree, timeout=900)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"raised": f"exit {done.returncode}: {done.stderr.strip()[-160:]}"}


def run_case(tree: Path, work: Path) -> dict:
    """An unreadable shard beside a good one: run, fix, rerun (no --overwrite)."""
    from PIL import Image

    sys.path.insert(0, str(REPO))
    from poselabel.io.shard_writer import write_shard

    def jpeg(v):
        buf = io.BytesIO()
        Image.new("RGB", (32, 24), (v, v, v)).save(buf, "JPEG")
        return buf.getvalue()

    shards, out = work / "shards", work / "out"
    shards.mkdir(parents=True)
    none = {"json": b'{"persons": []}'}
    write_shard(str(shards / "s-000000.tar"), [("g", {"jpg": jpeg(100), **none})])
    bad = Path(write_shard(str(shards / "s-000001.tar"), [("h", {"jpg": jpeg(150), **none}),
                                                         ("i", {"jpg": jpeg(50), **none})]))
    root = os.geteuid() == 0 and not AS_NOBODY
    _give(work)
    if root:  # root reads any file: the shard becomes a link to a file moved away
        os.replace(bad, f"{bad}.away")
        os.symlink(f"{bad}.away.missing", bad)
    else:
        os.chmod(bad, 0)
    cmd = [sys.executable, "-m", "poselabel.cli", "run", "--input", str(shards), "--output", str(out), "--json",
           "--no-progress", "--detector", "oracle", "--segmenter", "oracle", "--tz", "none", "--pose", "none",
           "--camera", "none"]
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONWARNINGS": "ignore"}
    result = {"fault": "missing target (root)" if root else "chmod 000"}
    for step in ("first run", "fixed, rerun"):
        done = subprocess.run(AS_NOBODY + cmd, env=env, cwd=tree, capture_output=True, text=True, timeout=900)
        summary = json.loads(done.stdout) if done.stdout.strip() else {}
        result[step] = {"exit": done.returncode, "done": sorted(p.stem for p in (out / "_done").glob("*.json")),
                        "samples": summary.get("samples"), "this_run": summary.get("this_run", {}).get("samples"),
                        "unread": summary.get("unread")}
        if root:
            os.remove(bad) if os.path.islink(bad) else None
            if os.path.exists(f"{bad}.away"):
                os.replace(f"{bad}.away", bad)
        else:
            os.chmod(bad, 0o644)
    import pyarrow.parquet as pq

    result["rows"] = sorted(f"{r['shard']}/{r['key']}:{r['status']}" for f in (out / "images").glob("*.parquet")
                            for r in pq.read_table(f).to_pylist())
    return result


def _give(folder: Path) -> None:
    """Hand ``folder`` to nobody (with --as-nobody)."""
    if AS_NOBODY:
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, 65534, 65534, follow_symlinks=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--before", type=Path, help="a tree holding the poselabel package before the change")
    parser.add_argument("--big-gib", type=float, default=1.0)
    parser.add_argument("--skip-reader", action="store_true")
    parser.add_argument("--as-nobody", action="store_true", help="as root: read and run as nobody (setpriv)")
    args = parser.parse_args()
    if args.as_nobody:
        AS_NOBODY[:] = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    trees = {"after": REPO, **({"before": args.before} if args.before else {})}
    report = {}
    if not args.skip_reader:
        cases = reader_cases(args.work, args.big_gib)
        _give(args.work)
        for case, shard in cases.items():
            report[case] = {name: read_with(tree, shard) for name, tree in trees.items()}
            print(json.dumps({case: report[case]}), flush=True)
    for name, tree in trees.items():
        report[f"run: {name}"] = run_case(tree, args.work / f"run-{name}")
        print(json.dumps({f"run: {name}": report[f"run: {name}"]}), flush=True)


if __name__ == "__main__":
    main()
