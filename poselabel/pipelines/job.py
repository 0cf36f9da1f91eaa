"""Running a labelling job: plan (what is done, what to redo), run, summarise.

``run_job(config)`` lists the input shards, skips those whose done marker
exists (unless ``overwrite``), runs the Beam pipeline on the rest, writes the
run manifest (with the run's Beam counters where the runner collects them) and
the summary, and returns the summary.
"""
from __future__ import annotations

import collections
import hashlib
import importlib.metadata
import logging
import platform
import sys
import threading
import time
import uuid
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter

from poselabel.config import ConfigError, RunConfig
from poselabel.io import outputs
from poselabel.io.shards import list_shards, shard_name
from poselabel.models.quality import fit_score
from poselabel.pipelines import label
from poselabel.pipelines.runners import pipeline_options

log = logging.getLogger(__name__)

VERSIONS_OF = ("poselabel", "apache-beam", "torch", "mediapipe", "smplx", "ultralytics", "pyarrow", "numpy")


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


def file_sha256(path: str) -> str | None:
    try:
        digest = hashlib.sha256()
        with beam.io.filesystems.FileSystems.open(path) as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    except Exception:  # the manifest records what it can; a missing file is reported as None
        return None


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONS_OF:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def summarise(markers: list[dict], run_samples: int, wall_s: float) -> dict[str, Any]:
    status: collections.Counter = collections.Counter()
    reasons: collections.Counter = collections.Counter()
    for m in markers:
        status.update(m.get("status", {}))
        reasons.update(m.get("reject_reasons", {}))
    return {
        "shards": len(markers),
        "samples": sum(m.get("num_samples", 0) for m in markers),
        "persons": sum(m.get("num_persons", 0) for m in markers),
        "accepted": sum(m.get("num_accepted", 0) for m in markers),
        "status": dict(sorted(status.items())),
        "reject_reasons": dict(sorted(reasons.items())),
        "this_run": {"samples": run_samples, "wall_s": round(wall_s, 3),
                     "images_per_s": round(run_samples / wall_s, 3) if wall_s > 0 else None},
    }


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


def beam_counters(result) -> dict[str, int] | None:
    """The run's ``poselabel`` counters by name (summed over steps), or None where the runner
    collects none (the Dask runner)."""
    try:
        found = result.metrics().query(MetricsFilter().with_namespace("poselabel"))["counters"]
    except NotImplementedError:
        return None
    totals: collections.Counter = collections.Counter()
    for c in found:
        totals[c.key.metric.name] += c.committed if c.committed is not None else c.attempted
    return dict(sorted(totals.items()))


def run_job(config: RunConfig) -> dict[str, Any]:
    """Run the job described by ``config``; returns the summary (also written to ``summary.json``)."""
    config.validate()
    outputs.ensure_dirs(config.output)
    shards, todo = plan(config)
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    manifest = {
        "run_id": run_id, "started_at": time.time(), "input": config.input, "output": config.output,
        "config": config.to_dict(), "versions": versions(),
        "shards": {"total": len(shards), "todo": len(todo), "skipped_done": len(shards) - len(todo)},
        "body_model": {"path": config.body_model, "sha256": file_sha256(config.body_model) if config.body_model else None},
        "models": {name: {"path": path, "sha256": file_sha256(weights) if path else None}
                   for name, path, weights in (
                       ("tz", config.tz.model, config.tz.model and outputs.join(config.tz.model, "model.safetensors")),
                       ("pose", config.pose.model, config.pose.model and outputs.join(config.pose.model, "model.safetensors")),
                       ("yolo", config.detect.yolo_weights, config.detect.yolo_weights))},
        "fit_score": fit_score.model_entry(config.quality.fit_score_model),  # which model judged
        "argv": sys.argv,
    }
    outputs.write_json(outputs.join(config.output, "_runs", f"{run_id}.json"), manifest)
    if config.overwrite and todo:
        outputs.delete_if_exists([outputs.done_path(config.output, n) for n, _ in todo])
    start = time.time()
    counters = None
    if todo:
        log.info("%d shards to do, %d already done", len(todo), len(shards) - len(todo))
        with pipeline_options(config) as options, Progress(config.output, {n for n, _ in todo},
                                                              len(shards), config.progress):
            pipeline = beam.Pipeline(options=options)
            label.build(pipeline, todo, config, run_id)
            result = pipeline.run()
            result.wait_until_finish()
            counters = beam_counters(result)
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
    summary = summarise([m for n, m in markers.items() if n in names], run_samples, wall)
    manifest.update(finished_at=time.time(), summary=summary, counters=counters)
    outputs.write_json(outputs.join(config.output, "_runs", f"{run_id}.json"), manifest)
    outputs.write_json(outputs.join(config.output, "manifest.json"), manifest)
    outputs.write_json(outputs.join(config.output, "summary.json"), summary)
    return summary
