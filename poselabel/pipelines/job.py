"""Running a labelling job: plan (what is done, what to redo), run, summarise.

``run_job(config)`` lists the input shards, skips those whose done marker
exists (unless ``overwrite``; with ``retry_failed``, shards whose marker has a
read error are redone), runs the Beam pipeline on the rest, writes the run's
record, the manifest and the summary (``pipelines/provenance.py``), and returns
the summary.
"""
from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from typing import Any

import apache_beam as beam

from poselabel.config import ConfigError, RunConfig
from poselabel.io import outputs
from poselabel.io.shards import list_shards, shard_name
from poselabel.io.urls import to_url
from poselabel.pipelines import label, provenance
from poselabel.pipelines.runners import pipeline_options

log = logging.getLogger(__name__)


def plan(config: RunConfig) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(all_shards, todo)`` as ``[(name, path)]``; refuses two shards with one name."""
    paths = list_shards(config.input)
    shards = [(shard_name(p), p) for p in paths]
    names = collections.Counter(name for name, _ in shards)
    clashes = sorted(n for n, c in names.items() if c > 1)
    if clashes:
        raise ConfigError(f"input shards share names, their outputs would collide: {', '.join(clashes[:5])}")
    done = {} if config.overwrite else outputs.done_shards(config.output)
    todo = [(n, p) for n, p in shards if n not in done]
    return shards, todo


class Progress:
    """A live line on stderr: shards done of total and images/s, from the done markers."""

    def __init__(self, out: str, todo: set[str], total: int, enabled: bool, interval: float = 2.0):
        self.out, self.todo, self.total, self.interval = out, todo, total, interval
        self.enabled = enabled and sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._start = time.time()

    def __enter__(self):
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.enabled:
            self._thread.join(timeout=5)
            sys.stderr.write("\n")

    def _loop(self):
        while not self._stop.wait(self.interval):
            markers = outputs.done_shards(self.out)
            now_done = [m for n, m in markers.items() if n in self.todo and m.get("finished_at", 0) >= self._start]
            images = sum(m.get("num_samples", 0) for m in now_done)
            rate = images / max(time.time() - self._start, 1e-9)
            done_total = self.total - len(self.todo) + len(now_done)
            sys.stderr.write(f"\rshards {done_total}/{self.total} · {images} images this run · {rate:.1f} images/s   ")
            sys.stderr.flush()


def run_job(config: RunConfig) -> dict[str, Any]:
    """Run the job described by ``config``; returns the summary (also written to ``summary.json``
    when the run labelled a shard; what is recorded where: ``pipelines/provenance.py``)."""
    config.validate()
    outputs.ensure_dirs(config.output)
    shards, todo = plan(config)
    redo = config.overwrite
    if config.retry_failed:
        queued = {n for n, _ in todo}
        retry = [s for s in provenance.read_failed(outputs.done_shards(config.output), shards) if s[0] not in queued]
        log.info("%d done shards had a read error: redone", len(retry))
        todo, redo = todo + retry, redo or bool(retry)
    run_id = provenance.new_run_id()
    run = provenance.run_record(config, run_id, shards, todo)
    outputs.write_json(provenance.run_path(config.output, run_id), run)
    if redo and todo:
        outputs.delete_if_exists([outputs.done_path(config.output, n) for n, _ in todo])
    start = time.time()
    counters = None
    if todo:
        log.info("%d shards to do, %d already done", len(todo), len(shards) - len(todo))
        with pipeline_options(config) as options, Progress(config.output, {n for n, _ in todo},
                                                              len(shards), config.progress):
            pipeline = beam.Pipeline(options=options)
            label.build(pipeline, [(n, to_url(p)) for n, p in todo], config, provenance.marker_fields(run))
            result = pipeline.run()
            result.wait_until_finish()
            counters = provenance.beam_counters(result)
            client = getattr(result, "client", None)  # DaskRunner's client: close before its cluster
            if client is not None:
                client.close()
    wall = time.time() - start
    markers = outputs.done_shards(config.output)
    names = {n for n, _ in shards}
    missing = sorted(n for n, _ in shards if n not in markers)
    if missing:
        raise RuntimeError(f"{len(missing)} shards have no done marker after the run: {missing[:5]}")
    run_samples = sum(markers[n].get("num_samples", 0) for n, _ in todo)
    summary = provenance.summarise([m for n, m in markers.items() if n in names], run_samples, wall)
    provenance.finish(config.output, run, markers, summary, counters, labelled=bool(todo))
    return summary
