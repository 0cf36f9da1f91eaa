"""--input as users have it: folders (img2dataset's layout), brace lists and ranges, several
patterns; and the run's progress by samples. Real Beam file systems, real pipeline."""
from __future__ import annotations

import io
import json
import os

import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems

from poselabel.cli import build_parser
from poselabel.commands.run import config_from_args
from poselabel.config import InputError, load_config, split_patterns
from poselabel.io.shard_writer import write_shard
from poselabel.io.shards import find_shards, list_shards, shard_name
from poselabel.pipelines.job import run_job
from poselabel.pipelines.progress import Counts, progress_line
from poselabel.transforms.count_progress import PROGRESS, progress_path


def img2dataset_folder(root, shards=2, per_shard=3):
    """img2dataset's output layout: 00000.tar + 00000.parquet + 00000_stats.json per shard.
    Samples hold a caption and a json but no image (each becomes an error row at once)."""
    root.mkdir(parents=True, exist_ok=True)
    keys = []
    for s in range(shards):
        samples = [(f"{s:05d}{i:04d}", {"txt": b"a caption", "json": json.dumps({"url": f"http://x/{s}/{i}"}).encode()})
                   for i in range(per_shard)]
        keys += [k for k, _ in samples]
        write_shard(str(root / f"{s:05d}.tar"), samples)
        (root / f"{s:05d}.parquet").write_bytes(b"PAR1 not a tar")
        (root / f"{s:05d}_stats.json").write_text(json.dumps({"successes": per_shard}))
    return keys


def test_a_folder_means_its_tars_with_or_without_slash(tmp_path):
    img2dataset_folder(tmp_path / "i2d")
    for pattern in (str(tmp_path / "i2d"), str(tmp_path / "i2d") + "/"):
        listing = find_shards(pattern)
        assert [shard_name(p) for p in listing.paths] == ["00000", "00001"]
        assert listing.ignored == {".json": 2, ".parquet": 2}


def test_a_folder_takes_tar_gz_and_skips_subfolders(tmp_path):
    import gzip

    write_shard(str(tmp_path / "a.tar"), [("k", {"txt": b"x"})])
    (tmp_path / "b.tar.gz").write_bytes(gzip.compress((tmp_path / "a.tar").read_bytes()))
    (tmp_path / "sub").mkdir()
    listing = find_shards(str(tmp_path))
    assert [os.path.basename(p) for p in listing.paths] == ["a.tar", "b.tar.gz"]
    assert listing.ignored == {"(folder)": 1}


def test_a_glob_keeps_the_shards_and_counts_the_rest(tmp_path):
    img2dataset_folder(tmp_path)
    listing = find_shards(str(tmp_path / "0000*"))
    assert len(listing.paths) == 2 and listing.ignored == {".json": 2, ".parquet": 2}


def test_brace_lists_and_ranges(tmp_path):
    for name in ("s-008", "s-009", "s-010", "s-011", "a", "b"):
        write_shard(str(tmp_path / f"{name}.tar"), [("k", {"txt": b"x"})])
    assert [shard_name(p) for p in list_shards(str(tmp_path / "s-{009..011}.tar"))] == ["s-009", "s-010", "s-011"]
    assert [shard_name(p) for p in list_shards(str(tmp_path / "{a,b}.tar"))] == ["a", "b"]
    assert [shard_name(p) for p in list_shards(str(tmp_path / "{a,s-{008..009}}.tar"))] == ["a", "s-008", "s-009"]


def test_commas_split_patterns_only_outside_braces():
    assert split_patterns("a/*.tar, b/{x,y}.tar") == ["a/*.tar", "b/{x,y}.tar"]
    assert split_patterns("s-{000..009}.tar") == ["s-{000..009}.tar"]
    assert load_config(None, {"input": "a/{1,2}.tar,c.tar"}).input == ("a/{1,2}.tar", "c.tar")


def test_repeated_input_flags(tmp_path):
    for name in ("a", "b", "c"):
        write_shard(str(tmp_path / f"{name}.tar"), [("k", {"txt": b"x"})])
    args = build_parser().parse_args(["run", "--input", str(tmp_path / "{a,b}.tar"), "--input",
                                      str(tmp_path / "c.tar"), "--output", str(tmp_path / "out")])
    config = config_from_args(args)
    assert config.input == (str(tmp_path / "{a,b}.tar"), str(tmp_path / "c.tar"))
    assert [shard_name(p) for p in list_shards(config.input)] == ["a", "b", "c"]


@pytest.mark.parametrize("make, pattern, message", [
    (lambda d: None, "nope-*.tar", "matches no .tar or .tar.gz shard"),
    (lambda d: (d / "x.json").write_text("{}"), "", "holds no .tar or .tar.gz shard (it holds 1 .json)"),
    (lambda d: (d / "dir.tar").mkdir(), "*.tar", "matches folders, not shards"),
    (lambda d: None, "s-{000..001", "unbalanced braces"),
    (lambda d: None, "missing.tar", "no such file or folder"),
])
def test_inputs_that_find_nothing_are_one_line_errors(tmp_path, make, pattern, message):
    make(tmp_path)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        find_shards(str(tmp_path / pattern) if pattern else str(tmp_path))
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_gs_folder_means_its_tars(gcs_bucket):
    root = f"{gcs_bucket}/i2d"
    for s in range(2):
        write_shard(f"{root}/{s:05d}.tar", [(f"k{s}", {"txt": b"x"})])
        with FileSystems.create(f"{root}/{s:05d}_stats.json") as f:
            f.write(b"{}")
    write_shard(f"{root}/nested/deep.tar", [("k", {"txt": b"x"})])  # not a direct child: not read
    for pattern in (root, root + "/"):
        listing = find_shards(pattern)
        assert [shard_name(p) for p in listing.paths] == ["00000", "00001"], pattern
        assert listing.ignored == {".json": 2}


@pytest.mark.slow
def test_img2dataset_folder_reads_every_sample_once_with_progress(tmp_path, capsys):
    keys = img2dataset_folder(tmp_path / "i2d")
    out = tmp_path / "out"
    config = load_config(None, {"input": str(tmp_path / "i2d"), "output": str(out), "progress": True,
                                "progress_interval": 0.2})
    summary = run_job(config)
    images = pq.read_table(str(out / "images")).to_pylist()
    assert sorted(r["key"] for r in images) == sorted(keys)  # every sample once, no sidecar read
    assert summary["ignored_files"] == {".json": 2, ".parquet": 2}
    assert summary["status"] == {"error": len(keys)}
    assert all("no image member" in r["error"] for r in images)
    err = capsys.readouterr().err
    assert "progress: " in err  # stderr is not a terminal under pytest: plain lines
    assert not (out / PROGRESS).exists()  # removed at the end of the run


def test_counts_from_markers_and_progress_files(tmp_path):
    out = str(tmp_path)
    counts = Counts(out, {"a", "b", "c"}, earlier={}, start=0.0)
    assert counts.poll() == (0, None)  # nothing yet, no estimate
    from poselabel.io import outputs

    outputs.write_json(progress_path(out, "a"), {"shard": "a", "samples": 7})
    outputs.write_json(progress_path(out, "b"), {"shard": "b", "samples": 4})
    outputs.write_json(outputs.done_path(out, "b"), {"num_samples": 10, "finished_at": 1.0})
    samples, total = counts.poll()
    assert samples == 7 + 10  # b's marker replaces its progress file
    assert total == pytest.approx(30.0)  # 10 a shard x 3 shards
    line = progress_line(samples, total, 1, 3, elapsed=17.0)
    assert line == "progress: 17/~30 samples (57 %), 1/3 shards, 1.00 samples/s, ETA 13s"


def test_count_progress_stage_writes_counts(tmp_path):
    import apache_beam as beam

    from apache_beam.testing.util import assert_that, equal_to

    from poselabel.records import ShardEnd
    from poselabel.transforms.count_progress import CountProgress

    samples = [({"shard": "s", "key": str(i)}, []) for i in range(5)]  # ToRows' (image_row, person_rows)
    with beam.Pipeline() as p:
        counted = p | beam.Create([samples], reshuffle=False) | beam.FlatMap(lambda r: r) \
            | beam.ParDo(CountProgress(str(tmp_path), write_every_s=3600.0))
        assert_that(counted | beam.Map(lambda s: s[0]["key"]), equal_to([str(i) for i in range(5)]))
    data = json.load(io.open(progress_path(str(tmp_path), "s")))
    assert data["samples"] == 1  # the first sample wrote; the next four fell within write_every_s
    with beam.Pipeline() as p:
        _ = p | beam.Create([samples + [ShardEnd(shard="s", path="s.tar", num_samples=5)]], reshuffle=False) \
            | beam.FlatMap(lambda r: r) | beam.ParDo(CountProgress(str(tmp_path), write_every_s=3600.0))
    data = json.load(io.open(progress_path(str(tmp_path), "s")))
    assert data["samples"] == 5 and data["shard"] == "s"  # the shard's end writes its full count
