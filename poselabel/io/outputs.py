"""The output directory's layout, atomic writes and done markers (local or ``gs://``).

```
OUT/persons/<shard>.parquet   one row per detected person
OUT/images/<shard>.parquet    one row per input sample
OUT/_done/<shard>.json        written last, atomically: the shard is complete (and who made it)
OUT/_runs/<run>.json          one record per run
OUT/manifest.json             what made the tables: the runs of the done shards
OUT/summary.json              counts over all done shards
```
Every file is replaced whole (``write_atomic``), so a killed worker or a reader
racing a writer finds either the previous file or the new one, never half of one
and never none; the done marker comes after the tables, so a shard without a
marker is redone. One run writes to an output at a time (``OUT/_lease.json``,
``poselabel/io/lease.py``). What the
markers, run records and manifest hold: ``poselabel/pipelines/provenance.py``.
"""
from __future__ import annotations

import json
from typing import Any

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems

from poselabel.io import files

files.anonymous_for_emulator()  # a local emulator needs no credentials: no 30 s of retries

PERSONS = "persons"
IMAGES = "images"
DONE = "_done"


def join(*parts: str) -> str:
    return FileSystems.join(*parts)


def table_path(out: str, table: str, shard: str) -> str:
    return join(out, table, f"{shard}.parquet")


def done_path(out: str, shard: str) -> str:
    return join(out, DONE, f"{shard}.json")


def ensure_dirs(out: str) -> None:
    for sub in ("", PERSONS, IMAGES, DONE, "_runs"):
        path = join(out, sub) if sub else out
        if not FileSystems.exists(path):
            try:
                FileSystems.mkdirs(path)
            except (BeamIOError, OSError):
                pass  # object stores have no directories; a concurrent mkdir is fine


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data`` whole (``files.write_file``: a reader sees the old bytes
    or the new, never none)."""
    files.write_file(path, data)


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as f:
        return f.read()


def read_json(path: str) -> Any:
    return json.loads(read_bytes(path))


def write_json(path: str, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())


def done_shards(out: str) -> dict[str, dict]:
    """Markers of the shards already complete in ``out``: shard name -> marker."""
    pattern = join(out, DONE, "*.json")
    try:
        matches = FileSystems.match([pattern])[0].metadata_list
    except (BeamIOError, OSError):
        return {}
    markers = {}
    for m in matches:
        name = m.path.rsplit("/", 1)[-1][: -len(".json")]
        try:
            markers[name] = read_json(m.path)
        except (ValueError, OSError, BeamIOError):
            continue  # an unreadable marker means the shard is redone
    return markers


def delete_if_exists(paths: list[str]) -> None:
    existing = [p for p in paths if FileSystems.exists(p)]
    if existing:
        FileSystems.delete(existing)
