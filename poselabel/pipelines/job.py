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
import os
import time
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from poselabel.config import ConfigError, InputError, RunConfig
from poselabel.io import files, outputs
from poselabel.io.shards import find_shards, shard_name
from poselabel.io.urls import to_url
from poselabel.pipelines import label, provenance
from poselabel.pipelines.progress import Progress
from poselabel.pipelines.runners import pipeline_options

log = logging.getLogger(__name__)


class Plan(NamedTuple):
    shards: list[tuple[str, str]]  # every input shard, [(name, path)]
    todo: list[tuple[str, str]]  # those to label this run
    ignored: dict[str, int]  # files found beside the shards and not read, by extension


def check_paths(config: RunConfig) -> None:
    """Refuse (``InputError``, one line) an output that is a file and model paths that do not exist."""
    if _is_file(config.output):
        raise InputError(f"--output {config.output}: is a file; give a folder (it is created if missing)")
    given = (("--body-model", config.body_model), ("--tz-model", config.tz.model), ("--pose-model", config.pose.model),
             ("--yolo-weights", config.detect.yolo_weights), ("--segment-weights", config.segment.yolo_weights),
             ("quality.fit_score_model", config.quality.fit_score_model))
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


def run_job(config: RunConfig) -> dict[str, Any]:
    """Run the job described by ``config``; returns the summary (also written to ``summary.json``
    when the run labelled a shard; what is recorded where: ``pipelines/provenance.py``)."""
    config.validate()
    shards, todo, ignored = plan(config)  # checks every input and path before anything is created
    outputs.ensure_dirs(config.output)
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
        with pipeline_options(config) as options, Progress(
                config.output, {n for n, _ in todo}, outputs.done_shards(config.output), config.progress,
                config.progress_interval):
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
    summary["ignored_files"] = ignored  # beside the shards, not read (img2dataset's .parquet, _stats.json)
    provenance.finish(config.output, run, markers, summary, counters, labelled=bool(todo))
    return summary
