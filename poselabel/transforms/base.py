"""The common shape of a per-sample stage: a DoFn that never drops a sample.

A stage builds its backend in ``setup()`` (once per worker), passes failed
samples through untouched, and turns an exception into a failed sample
(``status="error"``, ``error="<stage>: <message>"``, ``records.error_message``: bounded,
UTF-8) that still reaches the writer. Any ``Exception`` counts, ``RecursionError`` and
``MemoryError`` included; a crash of native code is prevented upstream (the pixel guard of
derived buffers, ``models/images/guard.py``), not caught. Counters: ``<stage>_ok``, ``<stage>_errors``, and ``<stage>_model_loads`` for
stages whose network is shared (``share``; ``transforms/shared_models.py``).
"""
from __future__ import annotations

import atexit
import functools
import gc
import logging
import os
import sys
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from poselabel.records import ImageRecord, ShardEnd
from poselabel.transforms import shared_models

log = logging.getLogger(__name__)


def torch_threads(config) -> int:
    """Intra-op threads per worker process: ``config.torch_threads``, or cores / workers."""
    return config.torch_threads or max(1, (os.cpu_count() or 1) // max(1, config.workers))


@functools.cache  # once per process
def freeze_heap_at_exit() -> None:
    """Let this process exit without the interpreter's last collections over its whole heap.

    A worker that has imported torch, MediaPipe and Beam holds millions of objects; the
    collections that ``Py_FinalizeEx`` runs over them took 1-1.5 s per worker, and the direct
    runner closes its workers one after the other, so a job's end waited for each in turn.
    ``gc.freeze()`` at exit (an ``atexit`` hook, run before those collections) moves every object
    to the permanent generation; reference counting still frees them, only cycles are left to
    the operating system, as at any exit. Nothing is written at that point: a stage's outputs
    are committed before the runner closes its workers.
    """
    atexit.register(gc.freeze)


class SampleStage(beam.DoFn):
    """Subclasses set ``stage`` and implement ``build()``, which returns the stage's backend
    (``models/<stage>``: ``apply(record) -> record``); ``apply`` may add to it."""

    stage = "stage"
    share_key: str | None = None  # set by shared_network()

    def __init__(self, config):
        self.config = config
        self._ok = Metrics.counter("poselabel", f"{self.stage}_ok")
        self._errors = Metrics.counter("poselabel", f"{self.stage}_errors")
        self._loads = Metrics.counter("poselabel", f"{self.stage}_model_loads")

    def build(self):
        """The stage's backend (models are loaded here); called once per worker in ``setup()``."""
        return None

    def share(self, identity: tuple, build):
        """``build()``'s network, shared as ``models.share`` says; ``identity`` names its weights
        and options (a ``models.nets.share.Share``, handed to the backend factories)."""
        self.share_key = shared_models.share_key(self.stage, *identity)
        return shared_models.acquire(self.config.models.share, self.share_key, build)

    def start_bundle(self):
        if self.share_key is not None:  # loads happen in setup(), outside any bundle's metrics
            self._loads.inc(shared_models.take_loads(self.share_key))

    def setup(self):
        freeze_heap_at_exit()
        self.backend = self.build()
        if "torch" in sys.modules:  # worker processes must not oversubscribe the cores (only if a backend uses torch)
            import torch

            torch.set_num_threads(torch_threads(self.config))

    def apply(self, record: ImageRecord) -> ImageRecord:
        return self.backend.apply(record)

    def process(self, record: ImageRecord | ShardEnd):
        if isinstance(record, ShardEnd) or record.failed:
            yield record
            return
        start = time.perf_counter()
        try:
            out = self.apply(record).with_timing(self.stage, time.perf_counter() - start)
        except Exception as exc:  # a sample's failure is data, never a crash (RecursionError, MemoryError too)
            failed = record.fail(self.stage, exc)
            log.warning("%s failed on %s/%s: %s", self.stage, record.shard, record.key, failed.error)
            self._errors.inc()
            yield failed
            return
        self._ok.inc()
        yield out


class BatchedSampleStage(SampleStage):
    """A stage that works on several samples at once (GPU stages batch persons across images).

    Records are buffered until ``batch_persons`` persons (or ``batch_records``
    records) are waiting, then ``apply_batch(records)`` runs once. A
    ``ShardEnd`` flushes the buffer first, so it still follows its shard's
    samples; the bundle's end flushes the rest. If a batch raises, its records
    are retried one by one so that only the failing sample becomes an error row.
    """

    batch_persons = 64
    batch_records = 32

    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        return self.backend.apply_batch(records)

    def apply(self, record: ImageRecord) -> ImageRecord:
        return self.apply_batch([record])[0]

    def start_bundle(self):
        super().start_bundle()
        self._buffer: list[ImageRecord] = []
        self._buffered_persons = 0

    def process(self, record: ImageRecord | ShardEnd):
        if isinstance(record, ShardEnd):
            yield from self._flush()
            yield record
            return
        if record.failed or not record.persons:
            yield record
            return
        self._buffer.append(record)
        self._buffered_persons += len(record.persons)
        if self._buffered_persons >= self.batch_persons or len(self._buffer) >= self.batch_records:
            yield from self._flush()

    def finish_bundle(self):
        for out in self._flush():
            yield WindowedValue(out, MIN_TIMESTAMP, [GlobalWindow()])

    def _flush(self):
        records, self._buffer, self._buffered_persons = self._buffer, [], 0
        if not records:
            return
        start = time.perf_counter()
        try:
            outs = list(self.apply_batch(records))
            if len(outs) != len(records):
                raise RuntimeError(f"{len(outs)} results for a batch of {len(records)} samples")
            share = (time.perf_counter() - start) / len(records)
            outs = [out.with_timing(self.stage, share) for out in outs]
        except Exception as exc:  # isolate the culprit
            log.warning("%s batch of %d failed (%s); retrying one by one", self.stage, len(records), exc)
            for record in records:
                yield from super().process(record)
            return
        for out in outs:
            self._ok.inc()
            yield out
