import subprocess
import sys

import pytest

from poselabel.cli import COMMANDS, build_parser
from poselabel.commands.run import config_from_args
from poselabel.config import ConfigError, load_config


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_every_subcommand_has_help():
    names = _subcommands()
    assert len(names) == len(COMMANDS)
    for name in names:
        proc = subprocess.run([sys.executable, "-m", "poselabel.cli", name, "--help"],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (name, proc.stderr[-2000:])
        assert "usage:" in proc.stdout


def test_flags_override_config_file(tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text("runner: dask\nworkers: 3\ndetect:\n  score_threshold: 0.3\n  backend: oracle\n")
    args = build_parser().parse_args(["run", "--input", "in.tar", "--output", "out", "--config", str(cfg),
                                      "--workers", "2", "--set", "detect.score_threshold=0.7"])
    config = config_from_args(args)
    assert config.runner == "dask"  # from the file
    assert config.workers == 2  # the flag wins
    assert config.detect.score_threshold == 0.7 and config.detect.backend == "oracle"
    assert config.validate() is config


@pytest.mark.parametrize("text, match", [
    ("detect:\n  scor_threshold: 0.3\n", "unknown configuration key 'detect.scor_threshold'"),
    ("workers: many\n", "workers: expected int"),
    ("detect:\n  backend: sam\n", "detect.backend must be"),
])
def test_bad_config_is_a_clear_error(tmp_path, text, match):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(str(cfg), {"input": "x", "output": "y"}).validate()


def test_cli_reports_config_errors_with_exit_code_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "poselabel.cli", "run", "--input", "x.tar", "--output",
                           str(tmp_path), "--detector", "ultralytics"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "yolo_weights" in proc.stderr
