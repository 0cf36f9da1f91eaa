"""The sample's own metadata as columns of the images table: ``source_url``, ``caption`` and
``meta_<key>`` beside ``meta_json``, with one schema for every shard of a job."""
from __future__ import annotations

import io
import json

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from poselabel import tables
from poselabel.config import ConfigError, load_config
from poselabel.io.shard_writer import write_shard
from poselabel.pipelines.job import run_job
from poselabel.records import ImageRecord, RawSample
from poselabel.transforms.decode import Decode

# An img2dataset sample's json (its writer's fields, compute_hash=sha256, one additional column).
IMG2DATASET_JSON = {
    "url": "https://example.com/a.jpg", "caption": "a caption from the json", "key": "000000003",
    "status": "success", "error_message": None, "width": 64, "height": 48, "original_width": 640,
    "original_height": 480, "exif": "{\"Image Make\": \"Canon\"}", "sha256": "ab" * 32,
    "similarity": 0.31, "LICENSE": "cc-by", "nsfw": False, "tags": ["a", "b"],
}


def grey_jpeg(value: int = 128) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (value, value, value)).save(buf, "JPEG")
    return buf.getvalue()


def _record(meta, caption=None):
    return ImageRecord(key="k", shard="s", url="file:///x/s.tar", meta=meta, caption=caption)


def test_img2dataset_fields_become_typed_columns():
    row = tables.image_row(_record(IMG2DATASET_JSON))
    assert row["source_url"] == "https://example.com/a.jpg"
    assert row["caption"] == "a caption from the json"
    assert row["meta_key"] == "000000003" and row["meta_status"] == "success" and row["meta_error_message"] is None
    assert (row["meta_width"], row["meta_height"], row["meta_original_width"]) == (64, 48, 640)
    assert row["meta_sha256"] == "ab" * 32 and row["meta_md5"] is None and "Canon" in row["meta_exif"]
    assert json.loads(row["meta_json"]) == IMG2DATASET_JSON  # the whole json, as before
    assert "meta_similarity" not in row  # only the configured keys beyond img2dataset's own
    pa.Table.from_pylist([row], schema=tables.IMAGES_SCHEMA)  # fits the schema


def test_configured_keys_are_text_columns_and_wrong_types_are_null():
    keys = ("similarity", "LICENSE", "nsfw", "tags", "absent", "width", "url")
    row = tables.image_row(_record({**IMG2DATASET_JSON, "width": "64", "height": 48.0}), keys)
    assert (row["meta_similarity"], row["meta_LICENSE"], row["meta_nsfw"]) == ("0.31", "cc-by", "false")
    assert row["meta_tags"] is None and row["meta_absent"] is None  # lists stay in meta_json only
    assert row["meta_width"] is None and row["meta_height"] == 48  # a string width is not a width
    schema = tables.images_schema(keys)
    names = schema.names
    assert names.count("meta_width") == 1 and "meta_url" not in names  # known and promoted keys: no second column
    assert schema.field("meta_similarity").type == pa.string() and schema.field("meta_width").type == pa.int64()
    pa.Table.from_pylist([row], schema=schema)


def test_txt_caption_wins_over_the_json_and_no_metadata_gives_nulls():
    assert tables.image_row(_record(IMG2DATASET_JSON, caption="from the txt"))["caption"] == "from the txt"
    row = tables.image_row(_record({}))
    assert row["source_url"] is None and row["caption"] is None and row["meta_json"] is None
    assert all(row[f"meta_{k}"] is None for k in tables.META_KNOWN)


def test_decode_reads_the_txt_member():
    decode = Decode(load_config(None, {}))
    sample = RawSample(key="k", shard="s", url="file:///x/s.tar",
                       members={"jpg": grey_jpeg(), "txt": "un chat \xe9".encode() + b"\xff", "json": b"{}"})
    (record,) = decode.process(sample)
    assert record.status == "ok" and record.caption == "un chat \xe9\ufffd"  # undecodable bytes replaced
    bad_json = RawSample(key="k", shard="s", url="u", members={"jpg": grey_jpeg(), "txt": b"c", "json": b"{"})
    (record,) = decode.process(bad_json)
    assert record.failed and record.caption == "c"  # an error row keeps its caption
    (record,) = decode.process(RawSample(key="k", shard="s", url="u", members={"txt": b"only text"}))
    assert record.failed and record.caption == "only text"


def test_meta_columns_must_be_names():
    with pytest.raises(ConfigError, match="meta_columns"):
        load_config(None, {"input": "x", "output": "y", "decode": {"meta_columns": ["a b"]}}).validate()
    assert load_config(None, {"decode": {"meta_columns": "similarity LICENSE"}}).decode.meta_columns == (
        "similarity", "LICENSE")


@pytest.mark.slow
def test_every_shard_of_a_job_has_one_schema(tmp_path):
    """An img2dataset-style shard (jpg + json + txt) and a bare one (jpg only): the same columns,
    read together by pyarrow and DuckDB."""
    write_shard(str(tmp_path / "00000.tar"), [
        ("000000003", {"jpg": grey_jpeg(), "json": json.dumps(IMG2DATASET_JSON).encode(), "txt": b"a grey square"}),
        ("000000004", {"jpg": grey_jpeg(90), "json": json.dumps({"url": "https://example.com/b.jpg"}).encode()}),
    ])
    write_shard(str(tmp_path / "00001.tar"), [("x", {"jpg": grey_jpeg(30)})])
    out = tmp_path / "out"
    run_job(load_config(None, {"input": str(tmp_path / "*.tar"), "output": str(out), "progress": False,
                               "decode": {"meta_columns": ["similarity", "LICENSE"]}}))
    schemas = [pq.read_schema(p).remove_metadata() for p in sorted((out / "images").glob("*.parquet"))]
    assert len(schemas) == 2 and schemas[0].equals(schemas[1])
    assert schemas[0].equals(tables.images_schema(("similarity", "LICENSE")))
    rows = duckdb.sql(f"SELECT key, url, source_url, caption, meta_width, meta_similarity "
                      f"FROM '{out}/images/*.parquet' ORDER BY key").fetchall()
    shard0 = (tmp_path / "00000.tar").as_uri()
    assert rows == [
        ("000000003", shard0, "https://example.com/a.jpg", "a grey square", 64, "0.31"),
        ("000000004", shard0, "https://example.com/b.jpg", None, None, None),
        ("x", (tmp_path / "00001.tar").as_uri(), None, None, None, None),
    ]
