"""Stage: count each shard's labelled samples into ``OUT/_progress/<shard>.json`` (progress only).

It sits after ``ToRows`` (a row per labelled sample) and passes every element on unchanged.
A worker rewrites a shard's progress file (``{"shard", "samples", "at"}``) at most once every
``WRITE_EVERY_S`` seconds while the shard is in flight: a small atomic write, so the driver,
in any process or on any machine, reads live sample counts from the output folder it can
already see. The file of a finished shard is not updated: its done marker's ``num_samples``
takes over, and the driver removes ``_progress/`` at the end of the run. A retried shard
starts again from zero, as its rows do.
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

    def process(self, element):
        if isinstance(element, ShardEnd):
            self._counts.pop(element.shard, None)
            self._written.pop(element.shard, None)
        else:
            shard = element[0]["shard"]
            self._counts[shard] = count = self._counts.get(shard, 0) + 1
            now = time.time()
            if now - self._written.setdefault(shard, 0.0) >= self.write_every_s:
                self._written[shard] = now
                try:
                    outputs.write_json(progress_path(self.out, shard), {"shard": shard, "samples": count, "at": now})
                except Exception as exc:  # progress is a display: a failed write must not fail the shard
                    log.debug("progress of %s not written: %s", shard, exc)
        yield element
