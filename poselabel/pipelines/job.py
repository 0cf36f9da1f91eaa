"""Running a labelling job: plan (what is done, what to redo), run, summarise.

``run_job(config)`` lists the input shards, skips those whose done marker
exists (unless ``overwrite``; with ``retry_failed``, shards whose marker has a
read error are redone) and those whose storage failed in ``read_failures_max``
runs (``_unread/``, "failed"; ``retry_failed`` reads them again), runs the Beam
pipeline on the rest, writes the run's record, the manifest and the summary
(``pipelines/provenance.py``), and returns the summary. The summary's ``unread``
names the input shards left without a done marker (read again by the next run;
``failed`` those skipped until ``--retry-failed``); ``poselabel run`` then exits
with status 3.
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
from poselabel.io.lease import Lease
from poselabel.io.shards import find_shards, shard_name
from poselabel.io.urls import to_url
from poselabel.pipelines import label, provenance
from poselabel.pipelines.progress import Progress
from poselabel.pipelines.runners import pipeline_options
from poselabel.pipelines.user_files import check_user_files

log = logging.getLogger(__name__)


class Plan(NamedTuple):
    shards: list[tuple[str, str]]  # every input shard, [(name, path)]
    todo: list[tuple[str, str]]  # those to label this run
    ignored: dict[str, int]  # files found beside the shards and not read, by extension
    failed: list[tuple[str, str]] = []  # not done, their storage failed read_failures_max runs


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
    unread = provenance.unread_shards(config.output)
    failed = [(n, p) for n, p in shards
              if n not in done and unread.get(n, {}).get("failures", 0) >= config.read_failures_max]
    skip = set(done) | (set() if config.retry_failed or config.overwrite else {n for n, _ in failed})
    todo = [(n, p) for n, p in shards if n not in skip]
    return Plan(shards, todo, listing.ignored, failed)


def run_job(config: RunConfig) -> dict[str, Any]:
    """Run the job described by ``config``; returns the summary (also written to ``summary.json``
    when the run labelled a shard; what is recorded where: ``pipelines/provenance.py``).

    The run holds the output's lease (``io/lease.py``) from after its plan to its end: a second
    run on the same output is refused (``LeaseHeld``) while this one lives."""
    config.validate()
    planned = plan(config)  # checks every input and path before anything is created
    check_user_files(config)  # model files read without unpickling, before any worker meets them
    run_id = provenance.new_run_id()
    with Lease(config.output, run_id, stale_s=config.lease_stale_s, take_over=config.take_over):
        return _run_planned(config, planned, run_id)


def _run_planned(config: RunConfig, planned: Plan, run_id: str) -> dict[str, Any]:
    shards, todo, ignored, failed = planned
    if failed and not (config.retry_failed or config.overwrite):
        log.warning("%d shards could not be read in %d runs and are skipped (--retry-failed reads them again): %s",
                    len(failed), config.read_failures_max, ", ".join(n for n, _ in failed[:5]))
    outputs.ensure_dirs(config.output)
    if config.retry_failed:
        queued = {n for n, _ in todo}
        retry = [s for s in provenance.read_failed(outputs.done_shards(config.output), shards) if s[0] not in queued]
        log.info("%d done shards had a read error: redone", len(retry))
        todo = todo + retry
    run = provenance.run_record(config, run_id, shards, todo)
    outputs.write_json(provenance.run_path(config.output, run_id), run)
    # Shards redone keep their tables and markers until replaced (each file whole, tables before
    # the marker): an interrupted --overwrite leaves every shard's old files or its new ones.
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
    unread = provenance.unread_shards(config.output)
    outputs.delete_if_exists([provenance.unread_path(config.output, n) for n in unread if n in markers])
    queued = {n for n, _ in todo}
    missing = sorted(n for n, _ in shards if n not in markers)
    # a shard read this run has its record of this run; one skipped as failed, an earlier one
    lost = [n for n in missing if (unread.get(n, {}).get("run_id") != run_id if n in queued else n not in unread)]
    if lost:
        raise RuntimeError(f"{len(lost)} shards have no done marker after the run: {lost[:5]}")
    run_samples = sum(markers[n].get("num_samples", 0) for n, _ in todo if n in markers)
    summary = provenance.summarise([m for n, m in markers.items() if n in names], run_samples, wall)
    summary["ignored_files"] = ignored  # beside the shards, not read (img2dataset's .parquet, _stats.json)
    summary["unread"] = {n: unread[n].get("unread") for n in missing}  # not done: the next run reads them
    summary["failed"] = [n for n in missing if unread[n].get("failures", 0) >= config.read_failures_max]
    provenance.finish(config.output, run, markers, summary, counters, labelled=bool(todo))
    return summary
