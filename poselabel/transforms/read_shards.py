"""Stage: shard URL -> its samples (``RawSample``), streamed, never extracted.

Samples and the ``ShardEnd`` carry the shard's absolute URL (``file:///...`` or
``gs://...``, ``poselabel.io.urls``): the job passes URLs made absolute on the
driver, and a relative path given here is made absolute against this process's folder.

The last element of every shard is a ``ShardEnd`` with its sample count. What a failure
gives (``read_shard``; docs/errors.md):

- the archive breaks off (truncated, corrupt, not a tar: permanent): the samples read whole,
  an error row for the sample it broke off in, and one error sample named ``__shard__``;
  ``ShardEnd.read_error`` holds the message and the shard is done (``run --retry-failed``
  redoes it);
- the storage fails (permission, I/O, network, a folder where the shard was): the shard is
  read again, up to ``ReadOptions.attempts`` tries, ``backoff_s * 4**k`` s apart, resuming
  after the samples already sent; a permission, not-found or is-a-folder error is not tried
  again within the run. If it still fails, ``ShardEnd.unread`` holds the error and the writer
  drops the shard's rows and writes no done marker: the next run reads it again. Once one
  shard has used its tries, a process gives the next shards one try each, with a retry
  deadline of ``OUTAGE_TRY_S``, until a shard is read or ``OUTAGE_S`` s have passed (an
  outage does not cost every shard its back-off and deadline).
"""
from __future__ import annotations

import collections
import dataclasses
import errno
import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics

from poselabel.io.shards import ReadOptions, iter_samples, shard_name
from poselabel.io.tar_stream import TarBreak, error_sample
from poselabel.io.urls import to_path, to_url
from poselabel.records import SHARD_ERROR_KEY, RawSample, ShardEnd, replace

log = logging.getLogger(__name__)

OUTAGE_S = 60.0
OUTAGE_TRY_S = 2.0
_NOT_NOW = (errno.EACCES, errno.EPERM, errno.ENOENT, errno.EISDIR, errno.ENOTDIR)
_outage = {"until": 0.0}  # this process's last storage outage: until when shards get one try


def retry_now(exc: BaseException) -> bool:
    """Whether another try within this run may help: not for a permission, a missing object
    or a folder (the user fixes those; the next run reads the shard again)."""
    if isinstance(exc, OSError) and exc.errno in _NOT_NOW:
        return False
    return getattr(exc, "code", None) not in (401, 403, 404)  # google.api_core's HTTP errors


def read_shard(url: str, options: ReadOptions = ReadOptions(), sleep=time.sleep):
    """The samples of the shard at ``url`` (absolute), each once, then its ``ShardEnd``
    (see the module's docstring for failures)."""
    shard = shard_name(url)
    sent = 0
    for attempt in range(1, options.attempts + 1):
        counts: collections.Counter = collections.Counter()
        seen = 0
        outage = time.monotonic() < _outage["until"]
        try_options = dataclasses.replace(options, storage_timeout_s=min(options.storage_timeout_s, OUTAGE_TRY_S)) \
            if outage else options
        try:
            for sample in iter_samples(to_path(url), try_options, counts):
                seen += 1
                if seen > sent:  # a retry resumes after the samples already sent
                    sent += 1
                    yield replace(sample, url=url)
        except TarBreak as exc:
            message = str(exc)
            if exc.corrupt:
                log.warning("reading %s broke off: %s", url, message)
                if exc.key is not None:
                    sent += 1
                    yield error_sample(exc.key, shard, url, f"the tar breaks off in this sample: {message}")
                yield error_sample(SHARD_ERROR_KEY, shard, url, message)
                yield ShardEnd(shard=shard, path=url, num_samples=sent + 1, read_error=message, attempts=attempt,
                               members_skipped=dict(counts))
                return
            last = attempt == options.attempts or not retry_now(exc.cause) or outage
            log.warning("reading %s failed (try %d of %d): %s", url, attempt, options.attempts, message)
            if last:
                if retry_now(exc.cause):
                    _outage["until"] = time.monotonic() + OUTAGE_S
                yield ShardEnd(shard=shard, path=url, num_samples=sent, unread=message, attempts=attempt,
                               members_skipped=dict(counts))
                return
            sleep(options.backoff_s * 4 ** (attempt - 1))
            continue
        _outage["until"] = 0.0
        yield ShardEnd(shard=shard, path=url, num_samples=sent, attempts=attempt, members_skipped=dict(counts))
        return


class ReadShard(beam.DoFn):
    def __init__(self, options: ReadOptions = ReadOptions()):
        self.options = options
        self._samples = Metrics.counter("poselabel", "samples_read")
        self._shard_errors = Metrics.counter("poselabel", "shard_read_errors")
        self._unread = Metrics.counter("poselabel", "shards_unread")

    def process(self, path: str):
        for element in read_shard(to_url(path), self.options):
            if isinstance(element, RawSample):
                self._samples.inc()
            elif element.unread:
                self._unread.inc()
            elif element.read_error:
                self._shard_errors.inc()
            yield element
