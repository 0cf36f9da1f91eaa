"""A user's mistakes: one line on stderr that names the fix, a non-zero exit, nothing created.

Each case runs ``poselabel.cli.main`` in-process (real argument parsing, real file systems);
one runs the installed command line in a subprocess, as a user would."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from poselabel.cli import main
from poselabel.io.shard_writer import write_shard


@pytest.fixture
def ws(tmp_path):
    """A working folder: a shard in shards/, a file, a bad YAML, a bad JSON, a config with an unknown key."""
    write_shard(str(tmp_path / "shards" / "s-000000.tar"), [("k", {"txt": b"x"})])
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "bad.yaml").write_text("detect:\n  score_threshold: [0.5\n")
    (tmp_path / "bad.json").write_text('{"workers": 2,}')
    (tmp_path / "unknown.yaml").write_text("detect:\n  scor_threshold: 0.3\n")
    (tmp_path / "list.yaml").write_text("- workers\n")
    (tmp_path / "sidecars").mkdir()
    (tmp_path / "sidecars" / "00000.parquet").write_bytes(b"PAR1")
    (tmp_path / "dir.tar").mkdir()
    return tmp_path


RUN = ["run", "--input", "{ws}/shards", "--output", "{ws}/out"]
# (command, a fragment the one line must hold, what must not exist afterwards)
MISTAKES = {
    "pattern matching nothing": (["run", "--input", "{ws}/nope/*.tar", "--output", "{ws}/out"], "matches no .tar", "out"),
    "missing input path": (["run", "--input", "{ws}/nope.tar", "--output", "{ws}/out"], "no such file or folder", "out"),
    "folder without shards": (["run", "--input", "{ws}/sidecars", "--output", "{ws}/out"], "holds no .tar", "out"),
    "glob matching a folder": (["run", "--input", "{ws}/*.tar", "--output", "{ws}/out"], "matches folders", "out"),
    "unbalanced braces": (["run", "--input", "{ws}/s-{000..009.tar", "--output", "{ws}/out"], "unbalanced braces", "out"),
    "malformed YAML": (RUN + ["--config", "{ws}/bad.yaml"], "not valid YAML at line 3", "out"),
    "malformed JSON": (RUN + ["--config", "{ws}/bad.json"], "not valid JSON at line 1", "out"),
    "config not a mapping": (RUN + ["--config", "{ws}/list.yaml"], "must be a mapping", "out"),
    "missing config": (RUN + ["--config", "{ws}/nope.yaml"], "no such file", "out"),
    "unknown config key": (RUN + ["--config", "{ws}/unknown.yaml"], "unknown configuration key 'detect.scor_threshold'", "out"),
    "output is a file": (["run", "--input", "{ws}/shards", "--output", "{ws}/file.txt"], "is a file; give a folder", None),
    "missing body model": (RUN + ["--body-model", "{ws}/SMPLX_NEUTRAL.npz"], "--body-model", "out"),
    "missing tz model": (RUN + ["--tz", "network", "--tz-model", "{ws}/tz-ckpt"], "--tz-model", "out"),
    "network without a model": (RUN + ["--tz", "network"], "tz.model", "out"),
    "--set without =": (RUN + ["--set", "detect.score_threshold"], "--set expects SECTION.KEY=VALUE", "out"),
    "--set bad YAML value": (RUN + ["--set", "detect.score_threshold=[0.5"], "not valid YAML", "out"),
    "--set unknown key": (RUN + ["--set", "detect.treshold=0.5"], "unknown configuration key", "out"),
    "--set out of range": (RUN + ["--set", "detect.score_threshold=2"], "must be in [0, 1]", "out"),
    "bad flag value": (RUN + ["--workers", "two"], "invalid int value", "out"),
    "missing --input": (["run", "--output", "{ws}/out"], "required: --input", "out"),
    "filter on a missing input": (["filter", "--input", "{ws}/nope", "--output", "{ws}/out"], "no such folder", "out"),
    "filter on shards, not tables": (["filter", "--input", "{ws}/shards", "--output", "{ws}/out"], "holds no persons", "out"),
    "filter into its input": (["filter", "--input", "{ws}/shards", "--output", "{ws}/shards/"], "must differ", None),
    "report on a missing input": (["report", "--input", "{ws}/nope", "--out", "{ws}/out/r.html"], "no such folder", "out"),
    "report into a folder": (["report", "--input", "{ws}/shards", "--out", "{ws}/shards"], "is a folder", None),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_mistake_is_one_line_and_creates_nothing(ws, capsys, name):
    argv, fragment, created = MISTAKES[name]
    before = sorted(os.listdir(ws))
    assert _status([a.replace("{ws}", str(ws)) for a in argv]) not in (0, None)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert fragment in lines[0] and lines[0].startswith("poselabel"), lines[0]
    assert captured.out == ""
    assert sorted(os.listdir(ws)) == before  # nothing created (no out/, no _runs/)
    if created:
        assert not (ws / created).exists()


def _status(argv: list[str]):
    """The exit status of ``poselabel ARGV``: returned, or argparse's ``SystemExit``."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_a_mistake_in_a_real_process_is_one_line(ws):
    proc = subprocess.run([sys.executable, "-m", "poselabel.cli", "run", "--input", str(ws / "nope" / "*.tar"),
                           "--output", str(ws / "out")], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"poselabel run: --input {str(ws / 'nope' / '*.tar')!r} matches no .tar or .tar.gz shard; "
        "check the path and the quotes around the glob"]
    assert proc.stdout == "" and not (ws / "out").exists()
