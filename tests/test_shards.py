import pytest

from poselabel.io.shard_writer import write_shard
from poselabel.io.shards import expand_braces, iter_samples, list_shards, shard_name


def test_expand_braces_keeps_padding():
    assert expand_braces("s-{008..011}.tar") == ["s-008.tar", "s-009.tar", "s-010.tar", "s-011.tar"]
    assert expand_braces("a{0..1}/b{1..2}") == ["a0/b1", "a0/b2", "a1/b1", "a1/b2"]


def test_list_shards_globs_braces_and_missing(tmp_path):
    for i in range(3):
        write_shard(str(tmp_path / f"s-{i:06d}.tar"), [(f"k{i}", {"txt": b"x"})])
    assert [shard_name(p) for p in list_shards(str(tmp_path / "s-{000000..000001}.tar"))] == ["s-000000", "s-000001"]
    assert len(list_shards(str(tmp_path / "*.tar"))) == 3
    with pytest.raises(FileNotFoundError):
        list_shards(str(tmp_path / "nope-*.tar"))


def test_members_grouped_by_key(tmp_path):
    path = write_shard(str(tmp_path / "g.tar"), [
        ("dir/a", {"jpg": b"1", "json": b"{}", "mask.png": b"m"}),
        ("dir/b.c", {"png": b"2"}),  # key is up to the first dot of the basename
    ])
    samples = list(iter_samples(path))
    assert [s.key for s in samples] == ["dir/a", "dir/b"]
    assert set(samples[0].members) == {"jpg", "json", "mask.png"}
    assert set(samples[1].members) == {"c.png"}
    assert samples[0].shard == "g"
