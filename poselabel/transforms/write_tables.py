"""Stage: per input shard, its two Parquet tables and then its done marker.

No shuffle sits between reading and writing: the reader sends a ``ShardEnd``
after a shard's samples, every stage passes it on, and the writer writes the
shard once it holds the ``ShardEnd`` and that many rows. A shard is thus on
disk as soon as it is labelled, and a killed job loses only the shards in
flight. A bundle that ends with a shard still incomplete fails (the runner
retries it) rather than writing part of a shard.

The done marker records the shard's counts and the run that made it (run id, config
hash, versions, checkpoints, body model: ``pipelines/provenance.py``), the shard's
absolute URL, the tar members not read by kind (``members_skipped``, ``io/tar_stream.py``),
and ``read_error`` when the archive broke off (what ``run --retry-failed`` redoes). A shard
whose storage failed (``ShardEnd.unread``) gets neither tables nor a done marker: its rows
are dropped and ``_unread/<shard>.json`` records the failure (``provenance.record_unread``). Both tables carry the run id and config hash as
Parquet key-value metadata (``tables.file_metadata``).
"""
from __future__ import annotations

import collections
import time

import apache_beam as beam
from apache_beam.metrics import Metrics

from poselabel import tables
from poselabel.io import outputs
from poselabel.pipelines import provenance
from poselabel.records import SHARD_ERROR_KEY, ImageRecord, ShardEnd, replace


class ToRows(beam.DoFn):
    """``ImageRecord`` -> ``(image_row, person_rows)``; the image is dropped here.
    ``meta_columns``: the json keys given ``meta_<key>`` columns (``decode.meta_columns``).

    A record whose rows cannot be made becomes its error row (``rows: <message>``, no persons),
    and text that UTF-8 cannot hold (lone surrogates) is escaped (``\\udc80``): the shard's
    Parquet write must not fail for one sample."""

    def __init__(self, meta_columns: tuple[str, ...] = ()):
        self.meta_columns = tuple(meta_columns)

    def process(self, record: ImageRecord | ShardEnd):
        if isinstance(record, ShardEnd):
            yield record
            return
        start = time.perf_counter()
        try:
            person_rows = [tables.person_row(record, p) for p in record.persons]
            record = record.with_timing("rows", time.perf_counter() - start)
            image_row = tables.image_row(record, self.meta_columns)
        except Exception as exc:  # a sample's failure is its row, never the shard's
            record = replace(record.fail("rows", exc), meta={}, caption=None)
            person_rows, image_row = [], tables.image_row(record, self.meta_columns)
        yield _utf8(image_row), [_utf8(row) for row in person_rows]


def _utf8(row: dict) -> dict:
    """``row`` with each text cell (and text in list cells) UTF-8 can encode (lone surrogates
    backslash-escaped)."""
    return {k: _escaped(v) if isinstance(v, str) else [_escaped(x) if isinstance(x, str) else x for x in v]
            if isinstance(v, list) else v for k, v in row.items()}


def _escaped(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class WriteShards(beam.DoFn):
    """Rows and ``ShardEnd``s -> per-shard tables + marker; yields each marker.

    ``run``: what each marker records of the run (``provenance.marker_fields``: ``run_id``,
    ``config_sha256``, ...); ``meta_columns`` as for ``ToRows``."""

    def __init__(self, out: str, run: dict, meta_columns: tuple[str, ...] = ()):
        self.out = out
        self.run = dict(run)
        self.images_schema = tables.images_schema(tuple(meta_columns))
        self._shards = Metrics.counter("poselabel", "shards_written")

    def start_bundle(self):
        self._rows: dict[str, list] = collections.defaultdict(list)
        self._ends: dict[str, ShardEnd] = {}

    def process(self, element):
        if isinstance(element, ShardEnd):
            self._ends[element.shard] = element
            shard = element.shard
        else:
            shard = element[0]["shard"]
            self._rows[shard].append(element)
        end = self._ends.get(shard)
        if end is not None and len(self._rows[shard]) == end.num_samples:
            rows = self._rows.pop(shard, [])
            del self._ends[shard]
            if end.unread:  # not done: nothing written but the failure, read again by the next run
                yield provenance.record_unread(self.out, end, self.run.get("run_id"))
            else:
                yield self._write(end, rows)

    def finish_bundle(self):
        pending = sorted(set(self._rows) | set(self._ends))
        if pending:
            raise RuntimeError(f"bundle ended with shards incomplete (not written): {pending[:5]}")

    def _write(self, end: ShardEnd, rows: list) -> dict:
        image_rows = tables.sort_rows([image_row for image_row, _ in rows])
        person_rows = tables.sort_rows([p for _, persons in rows for p in persons])
        run_id, config_hash = self.run.get("run_id"), self.run.get("config_sha256")
        outputs.write_atomic(outputs.table_path(self.out, outputs.PERSONS, end.shard),
                             tables.to_parquet_bytes(person_rows, tables.PERSONS_SCHEMA,
                                                     tables.file_metadata(run_id, config_hash, outputs.PERSONS)))
        outputs.write_atomic(outputs.table_path(self.out, outputs.IMAGES, end.shard),
                             tables.to_parquet_bytes(image_rows, self.images_schema,
                                                     tables.file_metadata(run_id, config_hash, outputs.IMAGES)))
        marker = shard_marker(end, image_rows, person_rows, self.run)
        outputs.write_json(outputs.done_path(self.out, end.shard), marker)
        self._shards.inc()
        return marker


def shard_marker(end: ShardEnd, image_rows, person_rows, run: dict) -> dict:
    """The done marker of one shard: ``run``'s fields (``provenance.marker_fields``), the shard's
    name and absolute ``url``, counts by status and reject reason, ``members_skipped`` (tar
    members not read, by kind), ``read_attempts``, and ``read_error`` (the message of the
    archive's break, None when it was read whole)."""
    status = collections.Counter(r["status"] for r in image_rows)
    reasons = collections.Counter(reason for r in person_rows for reason in r["reject_reasons"])
    keys = collections.Counter(r["key"] for r in image_rows)
    read_error = end.read_error or next((r["error"] for r in image_rows if r["key"] == SHARD_ERROR_KEY), None)
    return {
        **run, "shard": end.shard, "url": end.path, "finished_at": time.time(), "read_error": read_error,
        "num_samples": len(image_rows), "num_persons": len(person_rows),
        "num_accepted": sum(1 for r in person_rows if r["accepted"]),
        "status": dict(sorted(status.items())), "reject_reasons": dict(sorted(reasons.items())),
        "duplicate_keys": sorted(k for k, n in keys.items() if n > 1),
        "members_skipped": dict(sorted(end.members_skipped.items())), "read_attempts": end.attempts,
    }
