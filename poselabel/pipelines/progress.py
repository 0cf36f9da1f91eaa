"""Progress of a running job, by samples, on stderr.

Source of truth, the same for every runner (in-process, multi-processing, Dask, Dataflow,
Flink): the output folder. A shard finished this run counts its done marker's
``num_samples``; a shard in flight counts ``_progress/<shard>.json``, which the
``CountProgress`` stage rewrites at most every few seconds (``transforms/count_progress.py``).
The driver polls both: one listing of each folder per poll, and only markers it has not read
yet are opened, so a poll costs two listings plus the files that changed.

The total is not known before the tars are read; it is estimated as the mean samples per
shard (of the shards this run finished, else of earlier runs' done markers) times the shards
to do, so the ETA appears once one shard is done.

On a terminal: a ``tqdm`` bar (samples, rate, ETA), refreshed every ``TERMINAL_POLL_S``
seconds. Otherwise (piped, a log file): one plain line every ``interval`` seconds, e.g.
``progress: 120/~400 samples (30 %), 3/10 shards, 0.52 samples/s, ETA 9m`` .
"""
from __future__ import annotations

import os
import sys
import threading
import time

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from tqdm import tqdm

from poselabel.io import outputs
from poselabel.transforms.count_progress import PROGRESS

TERMINAL_POLL_S = 2.0


def _names(out: str, folder: str) -> dict[str, str]:
    """``{name: path}`` of the ``*.json`` files in ``OUT/folder`` (empty when there is none)."""
    try:
        found = FileSystems.match([outputs.join(out, folder, "*.json")])[0].metadata_list
    except (BeamIOError, OSError):
        return {}
    return {m.path.rsplit("/", 1)[-1][: -len(".json")]: m.path for m in found}


def _read(path: str) -> dict:
    try:
        return outputs.read_json(path)
    except (ValueError, OSError, BeamIOError):
        return {}  # being replaced, or gone: the next poll reads it


def format_eta(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Counts:
    """Samples labelled so far this run over ``todo`` (shard names), from the output folder."""

    def __init__(self, out: str, todo: set[str], earlier: dict[str, dict], start: float):
        self.out, self.todo, self.start = out, todo, start
        self.finished: dict[str, int] = {}  # shard -> num_samples, done this run
        self._seen: set[str] = set()  # marker names already read (or of earlier runs)
        done_before = [m.get("num_samples", 0) for n, m in earlier.items() if n not in todo]
        self._prior_mean = sum(done_before) / len(done_before) if done_before else None

    def poll(self) -> tuple[int, float | None]:
        """``(samples labelled this run, estimated total this run or None)``."""
        for name, path in _names(self.out, outputs.DONE).items():
            if name in self.todo and name not in self._seen:
                marker = _read(path)
                if marker and marker.get("finished_at", 0) >= self.start:
                    self._seen.add(name)
                    self.finished[name] = int(marker.get("num_samples", 0))
        in_flight = 0
        for name, path in _names(self.out, PROGRESS).items():
            if name in self.todo and name not in self.finished:
                in_flight += int(_read(path).get("samples", 0))
        samples = sum(self.finished.values()) + in_flight
        mean = sum(self.finished.values()) / len(self.finished) if self.finished else self._prior_mean
        total = max(samples, mean * len(self.todo)) if mean else None
        return samples, total


def progress_line(samples: int, total: float | None, shards_done: int, shards: int, elapsed: float) -> str:
    rate = samples / elapsed if elapsed > 0 else 0.0
    parts = [f"progress: {samples}" + (f"/~{total:.0f} samples ({100 * samples / total:.0f} %)" if total else " samples"),
             f"{shards_done}/{shards} shards", f"{rate:.2f} samples/s"]
    if total and rate > 0 and samples < total:
        parts.append(f"ETA {format_eta((total - samples) / rate)}")
    return ", ".join(parts)


class Progress:
    """A context manager around the pipeline run: the bar or the log lines while it runs; on
    exit, removes ``OUT/_progress/``. ``enabled`` False: nothing is shown (files still cleaned)."""

    def __init__(self, out: str, todo: set[str], earlier: dict[str, dict], enabled: bool,
                 interval: float = 30.0, stream=None):
        self.out, self.enabled, self.interval = out, enabled, interval
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self.counts = Counts(out, todo, earlier, time.time())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="poselabel-progress", daemon=True)

    def __enter__(self):
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.enabled:
            self._thread.join(timeout=10)
        self.cleanup()

    def cleanup(self) -> None:
        """Remove ``OUT/_progress/`` (a local folder whole; on object stores, its files)."""
        folder = outputs.join(self.out, PROGRESS)
        paths = [folder] if "://" not in folder and os.path.isdir(folder) else list(_names(self.out, PROGRESS).values())
        if paths:
            try:
                FileSystems.delete(paths)
            except (BeamIOError, OSError):
                pass  # a progress file left behind is read by no one but a live run

    def _loop(self):
        if self.terminal:
            self._bar()
        else:
            self._log_lines()

    def _log_lines(self):
        while not self._stop.wait(self.interval):
            samples, total = self.counts.poll()
            self.stream.write(progress_line(samples, total, len(self.counts.finished), len(self.counts.todo),
                                            time.time() - self.counts.start) + "\n")
            self.stream.flush()

    def _bar(self):
        # smoothing=0: the rate is the run's average (counts arrive a camera batch at a time, so
        # the rate between two polls says little)
        with tqdm(total=None, unit="img", desc="labelling", file=self.stream, dynamic_ncols=True,
                  smoothing=0) as bar:
            while True:
                stop = self._stop.wait(TERMINAL_POLL_S)
                samples, total = self.counts.poll()
                if total is not None and (bar.total is None or round(total) != bar.total):
                    bar.total = round(total)
                bar.set_postfix_str(f"{len(self.counts.finished)}/{len(self.counts.todo)} shards", refresh=False)
                bar.update(samples - bar.n)
                bar.refresh()  # elapsed time and ETA move between counts too
                if stop:
                    break
