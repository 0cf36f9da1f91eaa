"""Stage: ``RawSample`` -> ``ImageRecord`` with the decoded RGB image.

The sample's ``json`` member is parsed and carried through, its ``txt`` member
(img2dataset's caption) becomes ``ImageRecord.caption`` (UTF-8, undecodable bytes
replaced); other non-image members are counted (``non_image_members``) and kept
only where a later backend needs them (``mask.png`` for the oracle segmenter).
"""
from __future__ import annotations

import json
import time

import apache_beam as beam
from apache_beam.metrics import Metrics

from poselabel.models.decode.image import IMAGE_EXTS, decode_image
from poselabel.records import ImageRecord, RawSample, ShardEnd, replace

KEPT_MEMBERS = ("mask.png",)
CAPTION_MEMBER = "txt"


class Decode(beam.DoFn):
    stage = "decode"

    def __init__(self, config):
        self.config = config
        self._ok = Metrics.counter("poselabel", "decode_ok")
        self._errors = Metrics.counter("poselabel", "decode_errors")
        self._non_image = Metrics.counter("poselabel", "non_image_members")

    def process(self, sample: RawSample | ShardEnd):
        if isinstance(sample, ShardEnd):
            yield sample
            return
        start = time.perf_counter()
        exts = tuple(sorted(sample.members))
        record = ImageRecord(key=sample.key, shard=sample.shard, url=sample.url, member_exts=exts)
        if "__error__" in sample.members:
            self._errors.inc()
            yield record.fail("read", sample.members["__error__"].decode())
            return
        image_ext = next((e for e in IMAGE_EXTS if e in sample.members), None)
        self._non_image.inc(sum(1 for e in exts if e not in IMAGE_EXTS and e not in ("json", CAPTION_MEMBER)))
        caption = sample.members[CAPTION_MEMBER].decode("utf-8", "replace") if CAPTION_MEMBER in sample.members else None
        try:
            meta = json.loads(sample.members["json"]) if "json" in sample.members else {}
            if not isinstance(meta, dict):
                meta = {"value": meta}
        except (ValueError, UnicodeDecodeError) as exc:
            meta = {}
            record = replace(record, caption=caption).fail(self.stage, f"invalid json member: {exc}")
        if record.failed:
            self._errors.inc()
            yield record
            return
        record = ImageRecord(key=sample.key, shard=sample.shard, url=sample.url, member_exts=exts, meta=meta,
                             caption=caption, extra_members={k: v for k, v in sample.members.items() if k in KEPT_MEMBERS})
        if image_ext is None:
            self._errors.inc()
            yield record.fail(self.stage, f"no image member (members: {', '.join(exts) or 'none'})")
            return
        try:
            image = decode_image(sample.members[image_ext], max_pixels=self.config.decode.max_pixels)
        except Exception as exc:
            self._errors.inc()
            yield record.fail(self.stage, exc if str(exc) else type(exc).__name__)
            return
        self._ok.inc()
        height, width = image.shape[:2]
        yield ImageRecord(key=sample.key, shard=sample.shard, url=sample.url, width=width, height=height,
                          image=image, meta=meta, caption=caption, extra_members=record.extra_members, member_exts=exts,
                          timings={self.stage: time.perf_counter() - start})
