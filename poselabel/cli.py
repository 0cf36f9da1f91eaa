"""The ``poselabel`` command line.

Each subcommand lives in ``poselabel/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func``. Heavy
imports happen inside the command's function, so ``--help`` stays fast.

A user's mistake (a bad option, a pattern that finds nothing, a malformed config: every
``ConfigError``, and argparse's own errors) ends in one line on stderr that names the fix,
and exit status 2; commands check their inputs and options before they create anything.
stdout is for what a program reads (``--json``); people read stderr.

``poselabel run`` started from a shell runs its job in a child process
(``commands/supervise.py``): Ctrl-C ends it and its workers with one line saying what was
done and how to resume (status 130), never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from poselabel.commands.supervise import run_supervised
from poselabel.config import ConfigError

COMMANDS = ("run", "demo", "body_model", "synth", "train", "filter", "report", "export", "bench", "eval")


class OneLineParser(argparse.ArgumentParser):
    """argparse's errors in one line (no usage block), pointing at ``--help``; the subcommands'
    parsers are of this class too."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="poselabel",
        description="Label images with SMPL-X bodies and perspective cameras, at scale.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"poselabel.commands.{name}").register(subparsers)
    return parser


def quiet_third_party() -> None:
    """Silence start-up chatter that says nothing about the job, and load YOLO checkpoints safely
    (inherited by worker processes)."""
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe / absl C++ logs
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PYTHONWARNINGS", "ignore::FutureWarning")
    os.environ.setdefault("ULTRALYTICS_SAFE_LOAD", "1")  # YOLO .pt: weights_only=True (pipelines/user_files.py)
    warnings.filterwarnings("ignore", category=FutureWarning)


def main(argv: list[str] | None = None) -> int:
    quiet_third_party()
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if argv is None and args.command == "run" and hasattr(os, "fork"):  # a shell's command, not a test's call
        return run_supervised(lambda: _call(args), args.output)
    return _call(args)


def _call(args) -> int:
    """The command's exit status; a ``ConfigError`` printed as one line (status 2)."""
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:  # InputError too
        message = " ".join(str(exc).split())  # one line, whatever the message held
        print(f"poselabel {args.command.replace('_', '-')}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"poselabel {args.command.replace('_', '-')}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
