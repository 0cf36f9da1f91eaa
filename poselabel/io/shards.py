"""WebDataset shards: listing, reading and naming, over Beam's file systems.

Reading streams each tar through ``webdataset``'s own tar iteration and key
grouping (the key is the member's basename up to its first dot), fed from
``apache_beam.io.filesystems.FileSystems.open``, so local paths and ``gs://``
URLs behave the same. Nothing is ever extracted to disk.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from apache_beam.io.filesystems import FileSystems
from webdataset.tariterators import group_by_keys, tar_file_iterator

from poselabel.records import RawSample

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
_BRACE = re.compile(r"\{(\d+)\.\.(\d+)\}")


def expand_braces(pattern: str) -> list[str]:
    """Expand WebDataset brace ranges: ``shard-{000..002}.tar`` -> three names.

    Zero padding follows the width of the range's first bound.
    """
    match = _BRACE.search(pattern)
    if not match:
        return [pattern]
    lo, hi = match.group(1), match.group(2)
    if int(hi) < int(lo):
        raise ValueError(f"empty brace range in {pattern!r}")
    width = len(lo)
    out: list[str] = []
    for i in range(int(lo), int(hi) + 1):
        out.extend(expand_braces(pattern[: match.start()] + str(i).zfill(width) + pattern[match.end():]))
    return out


def list_shards(pattern: str) -> list[str]:
    """All shard paths matching ``pattern`` (paths, globs, brace ranges, ``gs://``), sorted.

    Raises ``FileNotFoundError`` when a pattern matches nothing.
    """
    patterns = [p for part in pattern.split(",") if part.strip() for p in expand_braces(part.strip())]
    found: set[str] = set()
    for result in FileSystems.match(patterns):
        if not result.metadata_list:
            raise FileNotFoundError(f"no shard matches {result.pattern!r}")
        found.update(m.path for m in result.metadata_list)
    return sorted(found)


def shard_name(path: str) -> str:
    """A shard's name: its basename without ``.tar`` (or ``.tar.gz``, ``.tgz``)."""
    name = posixpath.basename(path.rstrip("/"))
    for suffix in (".tar.gz", ".tgz", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def iter_samples(path: str) -> Iterator[RawSample]:
    """Yield the samples of one shard, in tar order, grouped by WebDataset key.

    A truncated or corrupt tar raises after yielding the samples that were
    read whole; the caller turns that into an error row for the shard.
    """
    shard = shard_name(path)
    with FileSystems.open(path) as stream:
        members = tar_file_iterator(stream)
        for sample in group_by_keys(_with_url(members, path)):
            key = sample.pop("__key__")
            url = sample.pop("__url__", path)
            sample.pop("__local_path__", None)
            yield RawSample(key=key, shard=shard, url=url,
                            members={k: v for k, v in sample.items() if not k.startswith("__")})


def _with_url(members, url: str):
    for member in members:
        member["__url__"] = url
        yield member
