"""Stage: count each shard's samples into ``OUT/_progress/<shard>.json`` (progress only).

It sits after ``ToRows`` (one row per labelled sample) and passes every element on
unchanged, so it counts samples labelled, not read: the camera stage batches persons
(``camera.batch_size``, flushed when full and at each shard's end), so counts move a batch
at a time, and a shard smaller than a batch at its end. A worker rewrites a shard's progress file (``{"shard",
"samples", "at"}``) at most once every ``WRITE_EVERY_S`` seconds, and once at the shard's
end: a small atomic write, so the driver, in any process or on any machine, reads live
counts from the output folder it already sees. Once a shard's done marker exists its
``num_samples`` takes over, and the driver removes ``_progress/`` at the end of the run. A
retried shard counts again from zero.
"""
from __future__ import annotations

import logging
import time

import apache_beam as beam

from poselabel.io import outputs
from poselabel.records import ShardEnd

log = logging.getLogger(__name__)

PROGRESS = "_progress"
WRITE_EVERY_S = 5.0


def progress_path(out: str, shard: str) -> str:
    return outputs.join(out, PROGRESS, f"{shard}.json")


class CountProgress(beam.DoFn):
    def __init__(self, out: str, write_every_s: float = WRITE_EVERY_S):
        self.out, self.write_every_s = out, write_every_s

    def setup(self):
        self._written: dict[str, float] = {}

    def start_bundle(self):
        self._counts: dict[str, int] = {}  # a shard is read within one bundle; a retry counts afresh

    def process(self, element: tuple[dict, list] | ShardEnd):
        """``element``: ``ToRows``' ``(image_row, person_rows)`` or a ``ShardEnd``."""
        shard = element.shard if isinstance(element, ShardEnd) else element[0]["shard"]
        now = time.time()
        if isinstance(element, ShardEnd):
            self._write(shard, self._counts.pop(shard, 0), now)
            self._written.pop(shard, None)
        else:
            self._counts[shard] = self._counts.get(shard, 0) + 1
            if now - self._written.setdefault(shard, 0.0) >= self.write_every_s:
                self._written[shard] = now
                self._write(shard, self._counts[shard], now)
        yield element

    def _write(self, shard: str, count: int, now: float) -> None:
        try:
            outputs.write_json(progress_path(self.out, shard), {"shard": shard, "samples": count, "at": now})
        except Exception as exc:  # progress is a display: a failed write must not fail the shard
            log.debug("progress of %s not written: %s", shard, exc)
