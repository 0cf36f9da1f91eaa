"""What made the tables: run records, each done marker's provenance, the manifest, the summary.

```
OUT/_runs/<run>.json   one per invocation of `run` (written at its start, completed at its end):
                       argv, input, full config, config hash, versions, body model, checkpoints,
                       fit-score model, the shards it was to do and those it made, Beam counters
OUT/_done/<shard>.json the shard's counts and the run that made it (``marker_fields``)
OUT/_unread/<shard>.json a shard not done because its storage failed: the error, the runs that
                       failed it (``record_unread``); deleted once the shard is done
OUT/manifest.json      derived from the markers and the run records: per run that made a shard
                       still in the tables, that run's record and its shards (``build_manifest``)
OUT/summary.json       counts over all done shards; the labelling run's throughput
```
A run that labels nothing (every shard already done) writes its own ``_runs`` record only:
``manifest.json`` and ``summary.json`` keep describing the runs that made the tables.

Identities (docs/architecture.md, "Provenance"): ``config_sha256`` hashes the configuration
keys that change labels (``LABEL_CONFIG_KEYS``), not where or how the job runs; checkpoints are
hashed as files; the body model as a file, or, for the procedural stand-in (no file
configured), by its arrays (``arrays_sha256``), which do not depend on how the ``.npz`` was
zipped, with its generator version and seed.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import importlib.metadata
import io
import json
import logging
import os
import platform
import sys
import time
import uuid
from typing import Any

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter

from poselabel.config import RunConfig
from poselabel.io import outputs
from poselabel.models.body.procedural import GENERATOR_VERSION, default_body_model_path
from poselabel.models.quality import fit_score

log = logging.getLogger(__name__)

VERSIONS_OF = ("poselabel", "apache-beam", "torch", "mediapipe", "smplx", "ultralytics", "pyarrow", "numpy")
# The configuration that decides the labels; input, output, runner, workers, progress and the
# like say where and how a job runs and are left out of the hash (they stay in the run record).
LABEL_CONFIG_KEYS = ("body_model", "decode", "detect", "segment", "tz", "pose", "camera", "quality")
# What a done marker records of the run that made it.
MARKER_FIELDS = ("run_id", "config_sha256", "versions", "models", "body_model", "fit_score")
# What the manifest keeps of each run's record.
RUN_FIELDS = ("run_id", "started_at", "finished_at", "input", "argv", "config", "config_sha256", "versions",
              "models", "body_model", "fit_score", "counters")
MANIFEST_VERSION = 2
RUNS = "_runs"
UNREAD = "_unread"


_last_run_ms = 0


def new_run_id() -> str:
    """A sortable unique run id: UTC start time to the millisecond (one past this process's
    last id where two fall in one millisecond) and 6 random hex digits
    (``20261207T010512.345Z-1a2b3c``). Seconds alone left two runs of one second in random
    order, and the manifest's latest run is the greatest id."""
    global _last_run_ms
    now = _last_run_ms = max(time.time_ns() // 1_000_000, _last_run_ms + 1)  # increasing within a process
    return (time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1000)) + f".{now % 1000:03d}Z-"
            + uuid.uuid4().hex[:6])


def file_sha256(path: str) -> str | None:
    try:
        digest = hashlib.sha256()
        with FileSystems.open(path) as f:
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


def config_sha256(config: RunConfig) -> str:
    """sha256 of the canonical JSON (sorted keys) of the config's ``LABEL_CONFIG_KEYS``."""
    data = config.to_dict()
    label = {k: data.get(k) for k in LABEL_CONFIG_KEYS}
    return hashlib.sha256(json.dumps(label, sort_keys=True, default=str).encode()).hexdigest()


def npz_arrays_sha256(data: bytes) -> str:
    """sha256 over an ``.npz``'s arrays, by name: name, dtype, shape, then the C-order bytes of
    each. Independent of compression and zip timestamps; nothing is unpickled."""
    digest = hashlib.sha256()
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        for name in sorted(z.files):
            a = np.ascontiguousarray(z[name])
            digest.update(f"{name}\0{a.dtype.str}\0{a.shape}\0".encode())
            digest.update(a.tobytes())
    return digest.hexdigest()


@functools.lru_cache(maxsize=4)
def _procedural_identity(path: str, mtime: float, size: int) -> str:
    with open(path, "rb") as f:
        return npz_arrays_sha256(f.read())


def body_model_identity(path: str | None) -> dict[str, Any]:
    """What body model labels the run.

    A configured file: ``{"kind": "file", "path", "sha256"}`` (the file's bytes). None (the
    procedural stand-in, ``models/body/procedural.py``): ``{"kind": "procedural", "path"
    (this machine's cached file), "generator_version", "seed", "sha256"}`` where ``sha256`` is
    the arrays' hash (``npz_arrays_sha256``), the same wherever the generator gives the same
    arrays, and changed by any change to them (generator, seed, numpy/scipy numerics).
    """
    if path:
        return {"kind": "file", "path": path, "sha256": file_sha256(path), "sha256_of": "file"}
    local = default_body_model_path()
    stat = os.stat(local)
    return {"kind": "procedural", "path": local, "generator_version": GENERATOR_VERSION, "seed": 0,
            "sha256": _procedural_identity(local, stat.st_mtime, stat.st_size), "sha256_of": "arrays"}


def checkpoints(config: RunConfig) -> dict[str, dict[str, str | None]]:
    """``{name: {"path", "sha256"}}`` of the networks' checkpoint files (None: not configured)."""
    found = (("tz", config.tz.model, config.tz.model and outputs.join(config.tz.model, "model.safetensors")),
             ("pose", config.pose.model, config.pose.model and outputs.join(config.pose.model, "model.safetensors")),
             ("yolo", config.detect.yolo_weights, config.detect.yolo_weights),
             ("yolo_seg", config.segment.yolo_weights, config.segment.yolo_weights))
    return {name: {"path": path, "sha256": file_sha256(weights) if path else None} for name, path, weights in found}


def run_record(config: RunConfig, run_id: str, shards: list, todo: list) -> dict[str, Any]:
    """The ``_runs/<run>.json`` record written as a run starts."""
    return {
        "run_id": run_id, "started_at": time.time(), "input": config.input, "output": config.output,
        "config": config.to_dict(), "config_sha256": config_sha256(config), "versions": versions(),
        "shards": {"total": len(shards), "todo": len(todo), "skipped_done": len(shards) - len(todo)},
        "body_model": body_model_identity(config.body_model),
        "models": checkpoints(config),
        "fit_score": fit_score.model_entries(config.quality),  # which models judged (by the masks' kind)
        "argv": sys.argv,
    }


def marker_fields(run: dict[str, Any]) -> dict[str, Any]:
    """What each done marker of ``run`` records of it (``MARKER_FIELDS``)."""
    return {k: run.get(k) for k in MARKER_FIELDS}


def run_path(out: str, run_id: str) -> str:
    return outputs.join(out, RUNS, f"{run_id}.json")


def read_failed(markers: dict[str, dict], shards: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The shards ``[(name, path)]`` whose done marker says reading them failed (``read_error``):
    what ``--retry-failed`` labels again. Samples that failed later (decode, a stage) are data,
    not retried; markers written before ``read_error`` existed are not retried."""
    return [(n, p) for n, p in shards if (markers.get(n) or {}).get("read_error")]


def unread_path(out: str, shard: str) -> str:
    return outputs.join(out, UNREAD, f"{shard}.json")


def record_unread(out: str, end, run_id: str | None) -> dict[str, Any]:
    """Write (and return) ``_unread/<shard>.json`` for a ``ShardEnd`` whose storage failed:
    ``failures`` counts the runs that failed it in a row (a bundle retried within one run counts
    once), ``errors`` their last 5 messages."""
    path = unread_path(out, end.shard)
    try:
        previous = outputs.read_json(path) if FileSystems.exists(path) else {}
    except Exception:  # an unreadable record counts from zero
        previous = {}
    same_run = previous.get("run_id") == run_id
    errors = previous.get("errors", [])[: -1 if same_run else None][-4:] + [
        {"run_id": run_id, "error": end.unread, "attempts": end.attempts, "at": time.time()}]
    record = {"shard": end.shard, "url": end.path, "unread": end.unread, "run_id": run_id,
              "failures": previous.get("failures", 0) + (0 if same_run else 1), "errors": errors}
    outputs.write_json(path, record)
    return record


def unread_shards(out: str) -> dict[str, dict]:
    """The ``_unread`` records in ``out``: shard name -> record (unreadable records are left out)."""
    try:
        found = FileSystems.match([outputs.join(out, UNREAD, "*.json")])[0].metadata_list
    except Exception:
        return {}
    records = {}
    for m in found:
        try:
            records[m.path.rsplit("/", 1)[-1][: -len(".json")]] = outputs.read_json(m.path)
        except Exception:
            continue
    return records


def summarise(markers: list[dict], run_samples: int, wall_s: float) -> dict[str, Any]:
    status: collections.Counter = collections.Counter()
    reasons: collections.Counter = collections.Counter()
    skipped: collections.Counter = collections.Counter()
    for m in markers:
        status.update(m.get("status", {}))
        reasons.update(m.get("reject_reasons", {}))
        skipped.update(m.get("members_skipped", {}))
    return {
        "shards": len(markers),
        "samples": sum(m.get("num_samples", 0) for m in markers),
        "persons": sum(m.get("num_persons", 0) for m in markers),
        "accepted": sum(m.get("num_accepted", 0) for m in markers),
        "read_errors": sum(1 for m in markers if m.get("read_error")),
        "status": dict(sorted(status.items())),
        "reject_reasons": dict(sorted(reasons.items())),
        "members_skipped": dict(sorted(skipped.items())),
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


def _read_run(out: str, run_id: str) -> dict[str, Any]:
    try:
        return outputs.read_json(run_path(out, run_id))
    except Exception:  # a marker of a run whose record is gone (or tables made elsewhere)
        return {}


def build_manifest(out: str, markers: dict[str, dict], summary: dict[str, Any]) -> dict[str, Any]:
    """``manifest.json`` from the done markers and the ``_runs`` records: every run that made a
    shard now in the tables, with its record (``RUN_FIELDS``) and its shards; at the top, the
    latest of those runs' fields (``run_id``, ``config``, ``versions``, ...), read by ``filter``
    (thresholds) and ``report`` (body model), and ``config_sha256s``: the distinct configs."""
    by_run: dict[str, list[str]] = collections.defaultdict(list)
    for name, marker in markers.items():
        by_run[str(marker.get("run_id"))].append(name)
    runs = {}
    for run_id in sorted(by_run):  # run ids sort by start time
        record = _read_run(out, run_id)
        first = markers[min(by_run[run_id])]
        entry = {k: record.get(k, first.get(k)) for k in RUN_FIELDS}
        entry.update(run_id=run_id, record_found=bool(record), shards=sorted(by_run[run_id]))
        runs[run_id] = entry
    latest = runs[max(runs)] if runs else {}
    return {
        "manifest_version": MANIFEST_VERSION, "output": out, "written_at": time.time(),
        **{k: latest.get(k) for k in RUN_FIELDS},
        "config_sha256s": sorted({r["config_sha256"] for r in runs.values() if r.get("config_sha256")}),
        "runs": runs, "summary": summary,
    }


def finish(out: str, run: dict[str, Any], markers: dict[str, dict], summary: dict[str, Any],
           counters: dict[str, int] | None, labelled: bool) -> None:
    """Complete the run's record; rewrite ``manifest.json`` and ``summary.json`` when the run
    labelled a shard (or when they are missing), else leave them describing the tables."""
    made = sorted(n for n, m in markers.items() if m.get("run_id") == run["run_id"])
    run.update(finished_at=time.time(), summary=summary, counters=counters, shards_made=made)
    outputs.write_json(run_path(out, run["run_id"]), run)
    manifest_path = outputs.join(out, "manifest.json")
    if labelled or not FileSystems.exists(manifest_path):
        outputs.write_json(manifest_path, build_manifest(out, markers, summary))
    else:
        log.info("every shard was done already: %s left as it was", manifest_path)
    summary_path = outputs.join(out, "summary.json")
    if labelled or not FileSystems.exists(summary_path):
        outputs.write_json(summary_path, summary)
