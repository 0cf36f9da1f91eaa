"""No sample stops a job: hostile samples become their own error rows (issue #22, sample level).

Stages are called directly on tiny samples; one small pipeline run checks the rows end to end.
The 64 MP portrait of ``benchmarks/hostile_inputs.py`` is tested here at a small size against a
lowered pixel guard.
"""
from __future__ import annotations

import io

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from poselabel import tables
from poselabel.assets import no_person_photo, photo_path
from poselabel.config import load_config
from poselabel.io.shard_writer import write_shard
from poselabel.models.images.guard import square_region, window_pixels
from poselabel.models.decode.meta import MAX_JSON_DEPTH
from poselabel.pipelines.job import run_job
from poselabel.records import MAX_ERROR_CHARS, ImageRecord, Person, RawSample, ShardEnd
from poselabel.transforms.base import BatchedSampleStage, SampleStage
from poselabel.transforms.decode import Decode
from poselabel.transforms.write_tables import ToRows

FACADE = no_person_photo()
SURROGATE_JSON = b'{"url": "http://x/\\ud800", "caption": "a\\udc00b", "\\udfff": 1, "ok": "\\ud83d\\ude00"}'


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _eps() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 30, 30)).save(buf, format="EPS")
    return buf.getvalue()


def _decode(members: dict[str, bytes], key: str = "k") -> ImageRecord:
    config = load_config(None, {"input": "x", "output": "y"})
    out = list(Decode(config).process(RawSample(key=key, shard="s", url="file:///s.tar", members=members)))
    assert len(out) == 1  # one record per sample, whatever it holds
    return out[0]


@pytest.mark.parametrize("depth", [100_000, 990, MAX_JSON_DEPTH + 1])
def test_deep_json_is_the_samples_error(depth):
    record = _decode({"jpg": FACADE, "json": _nested(depth)})
    assert record.failed and record.error == f"decode: invalid json member: nested deeper than {MAX_JSON_DEPTH} levels"


def test_json_at_the_depth_limit_decodes():
    record = _decode({"jpg": FACADE, "json": b'{"a": ' + _nested(MAX_JSON_DEPTH - 1) + b"}"})
    assert not record.failed and record.image is not None


def test_lone_surrogates_in_json_are_replaced_and_the_row_writes():
    record = _decode({"jpg": FACADE, "json": SURROGATE_JSON})
    assert not record.failed
    assert record.meta == {"url": "http://x/\ufffd", "caption": "a\ufffdb", "\ufffd": 1, "ok": "\U0001F600"}
    [(row, persons)] = list(ToRows().process(record))
    assert row["source_url"] == "http://x/\ufffd" and row["caption"] == "a\ufffdb"
    pq.read_table(io.BytesIO(tables.to_parquet_bytes([row], tables.images_schema())))  # Arrow takes it


def test_rows_escape_text_utf8_cannot_hold():
    record = ImageRecord(key="bad\udcff", shard="s", url="file:///s.tar", member_exts=("jpg\udcff",),
                         caption="c\ud800").fail("detect", "x\udc80")
    [(row, _)] = list(ToRows().process(record))
    assert (row["key"], row["caption"], row["members"]) == ("bad\\udcff", "c\\ud800", ["jpg\\udcff"])
    assert row["error"] == "detect: x\\udc80"
    pq.read_table(io.BytesIO(tables.to_parquet_bytes([row], tables.images_schema())))


@pytest.mark.parametrize("members, match", [
    ({"jpg": _eps()}, "decode: DecodeError: not a JPEG, PNG or WebP image (the formats decoded); it starts with b'%!PS-Adobe"),
    ({"png": b"GIF89a" + bytes(32)}, "decode: DecodeError: not a JPEG, PNG or WebP image"),
    ({"__error__": b"OSError: \xff\xfe truncated"}, "read: OSError: \ufffd\ufffd truncated"),
])
def test_formats_we_do_not_decode_and_undecodable_messages(members, match):
    record = _decode(members)
    assert record.failed and record.error.startswith(match)


def test_an_instance_mask_member_is_png_only():
    from poselabel.models.segment.segmenters import OracleSegmenter

    image = np.zeros((12, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="not a PNG image; it starts with b'%!PS-Adobe"):
        OracleSegmenter().segment(image, {"mask.png": _eps()}, np.array([[0, 0, 8, 8]], np.float32))


def _recurse(n):
    return _recurse(n + 1) + 1


class Boom(Exception):
    def __str__(self):
        raise RuntimeError("no message")


class Hostile(SampleStage):
    """A stage whose backend fails one sample in the way its key names."""

    stage = "hostile"

    def apply(self, record):
        if record.key == "recursion":
            _recurse(0)
        if record.key == "memory":
            np.empty(1 << 62, np.uint8)  # a real MemoryError: numpy cannot allocate 4 EiB
        if record.key == "unprintable":
            raise Boom()
        if record.key == "long":
            raise ValueError("\udc80" + "x" * 100_000)
        if record.key == "none":
            return None
        return record


@pytest.mark.parametrize("key, error", [
    ("recursion", "hostile: RecursionError: maximum recursion depth exceeded"),
    ("memory", "hostile: MemoryError: Unable to allocate"),
    ("unprintable", "hostile: Boom"),
    ("long", "hostile: ValueError: \\udc80xxx"),
    ("none", "hostile: AttributeError: 'NoneType' object has no attribute 'with_timing'"),
])
def test_any_exception_of_a_stage_is_the_samples_error_row(key, error):
    stage = Hostile(config=load_config(None, {"input": "x", "output": "y"}))
    stage.setup()
    out = list(stage.process(ImageRecord(key=key, shard="s", url="u", image=np.zeros((2, 2, 3), np.uint8))))
    assert len(out) == 1 and out[0].failed and out[0].error.startswith(error)
    assert len(out[0].error) <= len("hostile: ") + MAX_ERROR_CHARS
    out[0].error.encode("utf-8")


class DropsOne(BatchedSampleStage):
    """A batched backend that returns one result too few for a batch (and fails ``bad`` alone)."""

    stage = "drops"

    def apply_batch(self, records):
        if any(r.key == "bad" for r in records):
            raise MemoryError()
        return list(records)[: max(1, len(records) - 1)]


def test_a_batch_that_loses_a_result_retries_one_by_one():
    stage = DropsOne(config=load_config(None, {"input": "x", "output": "y"}))
    stage.setup()
    stage.start_bundle()
    person = Person(person_index=0, bbox_xyxy=np.zeros(4, np.float32), det_score=1.0)
    records = [ImageRecord(key=k, shard="s", url="u", persons=(person,)) for k in ("a", "bad", "c")]
    out = [o for r in records for o in stage.process(r)]
    out += list(stage.process(ShardEnd(shard="s", path="u", num_samples=3)))
    rows = {o.key: o for o in out if isinstance(o, ImageRecord)}
    assert len(out) == 4 and isinstance(out[-1], ShardEnd) and set(rows) == {"a", "bad", "c"}
    assert not rows["a"].failed and not rows["c"].failed and rows["bad"].error == "drops: MemoryError"


def test_square_region_is_downsampled_to_the_guard_and_masks_map_back():
    image = np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8)
    whole = square_region(image, (40.0, 30.0), 200.0)  # 200^2 px, mostly padding
    small = square_region(image, (40.0, 30.0), 200.0, max_pixels=50 * 50)
    assert whole.pixels.shape == (200, 200, 3) and whole.scale == 1.0
    assert small.pixels.shape == (50, 50, 3) and small.scale == 0.25 and (small.side, small.x0, small.y0) == (200, -60, -70)
    assert small.pixels[0, 0].tolist() == [127, 127, 127]  # the grey padding
    # The image sits at the same place in both, at a quarter of the resolution.
    assert np.abs(small.pixels[18:32, 15:35].astype(int).mean() - image.mean()) < 8
    # A mask of the whole region maps back to the whole image; a mask of its left half to x < 40.
    assert whole.paste_mask(np.ones((200, 200), bool), (60, 80)).all()
    assert small.paste_mask(np.ones((50, 50), bool), (60, 80)).all()
    left = np.zeros((50, 50), bool)
    left[:, :25] = True
    pasted = small.paste_mask(left, (60, 80))
    assert pasted[:, :40].all() and not pasted[:, 40:].any()
    assert square_region(image, (500.0, 500.0), 100.0, max_pixels=50 * 50) is None  # off the image


def test_crop_window_over_the_guard_matches_the_whole_window():
    image = np.asarray(Image.open(photo_path("grace_hopper.jpg")).convert("RGB"))
    window = (-100.0, -50.0, 800.0)  # padded past three borders
    whole = window_pixels(image, window, 64)
    guarded = window_pixels(image, window, 64, max_pixels=100 * 100)
    assert guarded.shape == whole.shape == (64, 64, 3)
    assert np.abs(guarded.astype(int) - whole.astype(int)).mean() < 3  # same crop, up to a pixel's shift
    assert (guarded[:, :4] == 0).all() and (guarded[:4] == 0).all()  # black outside the image


def test_a_person_filling_the_image_is_found_under_a_lowered_guard():
    from poselabel.models.blazepose.people import MediaPipePeople

    image = np.asarray(Image.open(photo_path("grace_hopper.jpg")).convert("RGB"))  # (600, 512): a close-up
    people = MediaPipePeople()
    try:
        [ref] = people.find_people(image)  # its region: about 1,000^2 px, under the default guard
        people.max_region_pixels = 160 * 160
        [person] = people.find_people(image)
    finally:
        people.close()
    assert person.mask.shape == image.shape[:2]
    iou = (person.mask & ref.mask).sum() / (person.mask | ref.mask).sum()
    assert iou > 0.9
    assert np.abs(person.keypoints_2d[:11, :2] - ref.keypoints_2d[:11, :2]).max() < 20  # the face's landmarks, px


def test_hostile_samples_end_as_one_row_each_in_a_run(tmp_path):
    """A real (small) job: the hostile samples fail alone; every sample has exactly one row."""
    shard = tmp_path / "hostile-000000.tar"
    write_shard(str(shard), [
        ("deep", {"jpg": FACADE, "json": _nested(100_000)}),
        ("eps", {"jpg": _eps()}),
        ("surrogates", {"jpg": FACADE, "json": SURROGATE_JSON[:-1] + b', "persons": []}'}),
        ("facade", {"jpg": FACADE, "json": b'{"persons": []}'}),
    ])
    config = load_config(None, {"input": str(shard), "output": str(tmp_path / "out"), "progress": False,
                                "detect": {"backend": "oracle"}, "segment": {"backend": "oracle"}})
    summary = run_job(config)
    rows = pq.read_table(str(tmp_path / "out" / "images")).to_pylist()
    assert sorted(r["key"] for r in rows) == ["deep", "eps", "facade", "surrogates"]
    expected = {"deep": ("error", "decode: invalid json member: nested deeper"),
                "eps": ("error", "decode: DecodeError: not a JPEG, PNG or WebP"),
                "surrogates": ("no_person", ""), "facade": ("no_person", "")}
    assert {r["key"]: (r["status"], (r["error"] or "")[:len(expected[r["key"]][1])]) for r in rows} == expected
    assert summary["status"] == {"error": 2, "no_person": 2}
