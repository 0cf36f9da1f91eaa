"""Stage: ``RawSample`` -> ``ImageRecord`` with the decoded RGB image.

The sample's ``json`` member is parsed and carried through, its ``txt`` member
(img2dataset's caption) becomes ``ImageRecord.caption`` (UTF-8, undecodable bytes
replaced); other non-image members are counted (``non_image_members``) and kept
only where a later backend needs them (``mask.png`` for the oracle segmenter).
"""
from __future__ import annotations

import time

import apache_beam as beam
from apache_beam.metrics import Metrics

from poselabel.models.images.decode import IMAGE_EXTS, decode_image
from poselabel.models.decode.meta import InvalidJson, parse_meta
from poselabel.records import ImageRecord, RawSample, ShardEnd, replace

KEPT_MEMBERS = ("mask.png",)
CAPTION_MEMBER = "txt"


class Decode(beam.DoFn):
    """Every sample leaves as one record: decoded, or failed with ``"decode: <message>"`` whatever
    it raised (``RecursionError``, ``MemoryError``, an encoding error, ...)."""

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
            yield record.fail("read", sample.members["__error__"].decode("utf-8", "replace"))
            return
        self._non_image.inc(sum(1 for e in exts if e not in IMAGE_EXTS and e not in ("json", CAPTION_MEMBER)))
        try:
            record = with_members(record, sample.members)
            if not record.failed:
                record = with_image(record, sample.members, self.config.decode.max_pixels)
        except Exception as exc:  # one sample's failure, of any kind, is its error row
            record = record.fail(self.stage, exc)
        if record.failed:
            self._errors.inc()
            yield record
            return
        self._ok.inc()
        yield record.with_timing(self.stage, time.perf_counter() - start)


def with_members(record: ImageRecord, members: dict[str, bytes]) -> ImageRecord:
    """``record`` with the caption, the parsed json and the kept members (failed: invalid json)."""
    caption = members[CAPTION_MEMBER].decode("utf-8", "replace") if CAPTION_MEMBER in members else None
    record = replace(record, caption=caption,
                     extra_members={k: v for k, v in members.items() if k in KEPT_MEMBERS})
    try:
        meta = parse_meta(members["json"]) if "json" in members else {}
    except InvalidJson as exc:
        return record.fail(Decode.stage, f"invalid json member: {exc}")
    return replace(record, meta=meta)


def with_image(record: ImageRecord, members: dict[str, bytes], max_pixels: int) -> ImageRecord:
    """``record`` with its decoded image (failed: no image member, or one that does not decode)."""
    image_ext = next((e for e in IMAGE_EXTS if e in members), None)
    if image_ext is None:
        return record.fail(Decode.stage, f"no image member (members: {', '.join(record.member_exts) or 'none'})")
    image = decode_image(members[image_ext], max_pixels=max_pixels)
    height, width = image.shape[:2]
    return replace(record, image=image, width=width, height=height)
