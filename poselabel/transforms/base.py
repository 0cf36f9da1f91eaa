"""The common shape of a per-sample stage: a DoFn that never drops a sample.

A stage builds its backend in ``setup()`` (once per worker), passes failed
samples through untouched, and turns an exception into a failed sample
(``status="error"``, ``error="<stage>: <message>"``) that still reaches the
writer. Counters: ``<stage>_ok``, ``<stage>_errors``.
"""
from __future__ import annotations

import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics

from poselabel.records import ImageRecord, ShardEnd

log = logging.getLogger(__name__)


class SampleStage(beam.DoFn):
    """Subclasses set ``stage`` and implement ``build()`` and ``apply(record)``."""

    stage = "stage"

    def __init__(self, config):
        self.config = config
        self._ok = Metrics.counter("poselabel", f"{self.stage}_ok")
        self._errors = Metrics.counter("poselabel", f"{self.stage}_errors")

    def build(self):
        """Load models/backends; called once per worker in ``setup()``."""
        return None

    def setup(self):
        self.backend = self.build()

    def apply(self, record: ImageRecord) -> ImageRecord:
        raise NotImplementedError

    def process(self, record: ImageRecord | ShardEnd):
        if isinstance(record, ShardEnd) or record.failed:
            yield record
            return
        start = time.perf_counter()
        try:
            out = self.apply(record)
        except Exception as exc:  # a sample's failure is data, never a crash
            log.warning("%s failed on %s/%s: %s", self.stage, record.shard, record.key, exc)
            self._errors.inc()
            yield record.fail(self.stage, exc)
            return
        self._ok.inc()
        yield out.with_timing(self.stage, time.perf_counter() - start)
