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
import os
import sys
import time
import uuid
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from poselabel.config import ConfigError, InputError, RunConfig
from poselabel.io import files, outputs
from poselabel.io.shards import find_shards, shard_name
from poselabel.models.quality import fit_score
from poselabel.pipelines import label
from poselabel.pipelines.progress import Progress
from poselabel.pipelines.runners import pipeline_options

log = logging.getLogger(__name__)

VERSIONS_OF = ("poselabel", "apache-beam", "torch", "mediapipe", "smplx", "ultralytics", "pyarrow", "numpy")


class Plan(NamedTuple):
    shards: list[tuple[str, str]]  # every input shard, [(name, path)]
    todo: list[tuple[str, str]]  # those to label this run
    ignored: dict[str, int]  # files found beside the shards and not read, by extension


def check_paths(config: RunConfig) -> None:
    """Refuse (``InputError``, one line) an output that is a file and model paths that do not exist."""
    if _is_file(config.output):
        raise InputError(f"--output {config.output}: is a file; give a folder (it is created if missing)")
    given = (("--body-model", config.body_model), ("--tz-model", config.tz.model), ("--pose-model", config.pose.model),
             ("--yolo-weights", config.detect.yolo_weights), ("quality.fit_score_model", config.quality.fit_score_model))
    for flag, path in given:
        if path and not files.exists(path):
            raise InputError(f"{flag} {path}: no such file or folder; check the path or leave the option out")


def _is_file(path: str) -> bool:
    if files.is_remote(path):  # an object of that exact name (a folder is a prefix, never an object)
        return path.rstrip("/").count("/") > 2 and FileSystems.exists(path.rstrip("/"))
    return os.path.exists(path) and not os.path.isdir(path)


def plan(config: RunConfig) -> Plan:
    """The input shards, those to do, and the files ignored beside them; refuses two shards with
    one name, unusable paths (``check_paths``) and patterns that find nothing. Creates nothing."""
    check_paths(config)
    listing = find_shards(config.input)
    shards = [(shard_name(p), p) for p in listing.paths]
    names = collections.Counter(name for name, _ in shards)
    clashes = sorted(n for n, c in names.items() if c > 1)
    if clashes:
        raise ConfigError(f"input shards share names, their outputs would collide: {', '.join(clashes[:5])}; "
                          "label them into separate --output folders")
    done = {} if config.overwrite else outputs.done_shards(config.output)
    todo = [(n, p) for n, p in shards if n not in done]
    return Plan(shards, todo, listing.ignored)


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
    shards, todo, ignored = plan(config)  # checks every input and path before anything is created
    outputs.ensure_dirs(config.output)
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
        with pipeline_options(config) as options, Progress(
                config.output, {n for n, _ in todo}, outputs.done_shards(config.output), config.progress,
                config.progress_interval):
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
    summary["ignored_files"] = ignored  # beside the shards, not read (img2dataset's .parquet, _stats.json)
    manifest.update(finished_at=time.time(), summary=summary, counters=counters)
    outputs.write_json(outputs.join(config.output, "_runs", f"{run_id}.json"), manifest)
    outputs.write_json(outputs.join(config.output, "manifest.json"), manifest)
    outputs.write_json(outputs.join(config.output, "summary.json"), summary)
    return summary
