"""Stage: shard URL -> its samples (``RawSample``), streamed, never extracted.

Samples and the ``ShardEnd`` carry the shard's absolute URL (``file:///...`` or
``gs://...``, ``poselabel.io.urls``): the job passes URLs made absolute on the
driver, and a relative path given here is made absolute against this process's folder.

A shard that cannot be opened, or a tar that breaks off, yields one error
sample named ``__shard__`` (after the samples that were read whole), so the
problem appears in the images table instead of killing the job. The last
element of every shard is a ``ShardEnd`` with its sample count.
"""
from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.metrics import Metrics

from poselabel.io.shards import iter_samples, shard_name
from poselabel.io.urls import to_path, to_url
from poselabel.records import SHARD_ERROR_KEY, RawSample, ShardEnd, replace

log = logging.getLogger(__name__)


class ReadShard(beam.DoFn):
    def __init__(self):
        self._samples = Metrics.counter("poselabel", "samples_read")
        self._shard_errors = Metrics.counter("poselabel", "shard_read_errors")

    def process(self, path: str):
        url = to_url(path)
        count = 0
        try:
            for sample in iter_samples(to_path(url)):
                self._samples.inc()
                count += 1
                yield replace(sample, url=url)
        except Exception as exc:
            log.warning("reading %s failed: %s", url, exc)
            self._shard_errors.inc()
            count += 1
            yield RawSample(key=SHARD_ERROR_KEY, shard=shard_name(url), url=url,
                            members={"__error__": f"{type(exc).__name__}: {exc}".encode()})
        yield ShardEnd(shard=shard_name(url), path=url, num_samples=count)
