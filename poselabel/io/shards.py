"""WebDataset shards: finding, reading and naming, over Beam's file systems.

Finding (``find_shards``): each ``--input`` pattern is brace-expanded (``braceexpand``, as
webdataset does: ``{000..099}`` ranges and ``{a,b}`` lists), then

- a folder (local or ``gs://``, with or without a trailing ``/``) means its ``*.tar``,
  ``*.tar.gz`` and ``*.tgz`` files; the other files beside them (img2dataset's
  ``00000.parquet`` and ``00000_stats.json``) are ignored and counted by extension;
- a glob keeps the shards it matches and counts the other files it matches as ignored;
- a plain path is taken as it is (whatever its name).

A pattern that finds no shard, a malformed brace pattern or a shard path that is a
directory raises ``InputError`` (one line naming the pattern and the fix).

Reading (``iter_samples``) streams each tar through ``io/tar_stream.py`` (WebDataset's keys,
every member accounted for, a size cap per member), fed from Beam's file systems with no
decompression of their own (``tarfile`` tells gzip, bzip2, xz by their bytes), so local paths
and ``gs://`` URLs behave the same. ``gs://`` objects are read through the Cloud Storage
client with its retry deadline capped at ``ReadOptions.storage_timeout_s`` (the client's own
default, and Beam's, is 120 s of retries per request: a stopped storage cost 120 s per shard).
Nothing is ever extracted to disk.
"""
from __future__ import annotations

import collections
import glob
import os
import posixpath
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from apache_beam.io.filesystem import BeamIOError
from apache_beam.io.filesystems import FileSystems
from braceexpand import UnbalancedBracesError, braceexpand
from apache_beam.io.filesystem import CompressionTypes

from poselabel.config import InputError, RunConfig, split_patterns
from poselabel.io.tar_stream import MemberCounts, TarBreak, iter_tar
from poselabel.records import RawSample
from poselabel.io.urls import to_path
from poselabel.io.files import anonymous_for_emulator

anonymous_for_emulator()  # a local emulator needs no credentials: no 30 s of retries

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
SHARD_SUFFIXES = (".tar.gz", ".tgz", ".tar")
_GLOB_CHARS = set("*?[")


@dataclass
class ShardListing:
    """What the input patterns found: the shard paths (sorted, unique) and, by extension, the
    files that were beside them and are not shards (``{".parquet": 3, ".json": 3}``)."""

    paths: list[str] = field(default_factory=list)
    ignored: dict[str, int] = field(default_factory=dict)


def expand_braces(pattern: str) -> list[str]:
    """WebDataset brace expansion: ``s-{000..002}.tar`` -> three names, ``{a,b}.tar`` -> two.

    Zero padding follows the range's bounds. Raises ``InputError`` on unbalanced braces.
    """
    try:
        return list(braceexpand(pattern))
    except UnbalancedBracesError:
        raise InputError(f"--input {pattern!r}: unbalanced braces; write ranges as {{000..099}} "
                         "and lists as {a,b}") from None


def is_shard(path: str) -> bool:
    return path.rstrip("/").endswith(SHARD_SUFFIXES)


def _extension(path: str) -> str:
    name = posixpath.basename(path.rstrip("/"))
    stem, dot, ext = name.rpartition(".")
    return f".{ext}" if dot and stem else "(none)"


def _is_dir(path: str) -> bool:
    return os.path.isdir(path) if "://" not in path else False


def _match(pattern: str) -> list[str]:
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except (BeamIOError, OSError):
        return []


def _folder(path: str) -> list[str] | None:
    """The files directly in ``path`` when it is a folder (local, or a ``gs://`` prefix), else None."""
    if "://" not in path:
        return sorted(os.path.join(path, n) for n in os.listdir(path)) if os.path.isdir(path) else None
    if not path.endswith("/") and _match(path):
        return None  # an object of that exact name
    found = _match(path.rstrip("/") + "/*")  # Beam's "*" stops at "/": direct children only
    return found or None


def _find_one(pattern: str, listing: ShardListing, ignored: collections.Counter) -> None:
    files = _folder(pattern)
    if files is not None:  # a folder: its shards; sub-folders and other files are counted
        shards = [f for f in files if is_shard(f) and not _is_dir(f)]
        ignored.update(_extension(f) if not _is_dir(f) else "(folder)" for f in files if f not in shards)
        if not shards:
            held = ", ".join(f"{n} {e}" for e, n in collections.Counter(
                "(folder)" if _is_dir(f) else _extension(f) for f in files).most_common(4)) or "nothing"
            raise InputError(f"--input {pattern!r}: the folder holds no .tar or .tar.gz shard (it holds {held}); "
                             "point --input at the shards' folder or a glob such as DIR/*.tar")
        listing.paths.extend(shards)
        return
    if not _GLOB_CHARS & set(pattern):  # a plain path: read it as it is
        if not _match(pattern):
            raise InputError(f"--input {pattern!r}: no such file or folder; check the path "
                             "(a folder, a glob such as DIR/*.tar, a brace range DIR/s-{000..009}.tar, gs://...)")
        listing.paths.append(pattern)
        return
    matched = _match(pattern)  # files only: Beam's match leaves folders out
    shards = [f for f in matched if is_shard(f)]
    folders = [f for f in glob.glob(pattern) if os.path.isdir(f)] if "://" not in pattern else []
    if not shards and folders:
        raise InputError(f"--input {pattern!r} matches folders, not shards ({folders[0]}); give the shard "
                         "files, or one folder that holds them")
    ignored.update(_extension(f) for f in matched if f not in shards)
    if not shards:
        raise InputError(f"--input {pattern!r} matches no .tar or .tar.gz shard"
                         + (f" ({len(matched)} other files)" if matched else "")
                         + "; check the path and the quotes around the glob")
    listing.paths.extend(shards)


def find_shards(patterns: str | Iterable[str]) -> ShardListing:
    """The shards of ``patterns`` (one string, comma-separated outside braces, or several).

    Raises ``InputError`` when a pattern finds no shard.
    """
    if isinstance(patterns, str):
        patterns = split_patterns(patterns)
    listing, ignored = ShardListing(), collections.Counter()
    for pattern in patterns:
        for expanded in expand_braces(pattern):
            _find_one(expanded, listing, ignored)
    listing.paths = sorted(set(listing.paths))
    listing.ignored = dict(sorted(ignored.items()))
    return listing


def list_shards(patterns: str | Iterable[str]) -> list[str]:
    """All shard paths of ``patterns`` (see ``find_shards``), sorted. Raises ``InputError``
    (a ``FileNotFoundError`` too) when a pattern finds no shard."""
    return find_shards(patterns).paths


def shard_name(path: str) -> str:
    """A shard's name: its basename without ``.tar`` (or ``.tar.gz``, ``.tgz``)."""
    name = posixpath.basename(path.rstrip("/"))
    for suffix in SHARD_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class ReadOptions:
    """How shards are read: ``max_member_bytes`` (a larger member is not read: its sample is an
    error row), ``attempts`` and ``backoff_s`` (tries of a shard whose storage fails, within a
    run, with ``backoff_s * 4**k`` s between), ``storage_timeout_s`` (the retry deadline of one
    ``gs://`` request, and its HTTP timeout)."""

    max_member_bytes: int = 256 << 20
    attempts: int = 3
    backoff_s: float = 2.0
    storage_timeout_s: float = 20.0

    @classmethod
    def from_config(cls, config: RunConfig) -> "ReadOptions":
        return cls(int(config.max_member_mb * 2**20), config.read_attempts, config.read_backoff_s,
                   config.read_timeout_s)


def open_shard(path: str, storage_timeout_s: float = ReadOptions.storage_timeout_s):
    """A binary stream of the shard's bytes as stored. ``path``: as Beam opens it (not a ``file://`` URL)."""
    if path.startswith("gs://"):
        return _open_gcs(path, storage_timeout_s)
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _open_gcs(path: str, timeout_s: float):
    from apache_beam.io.gcp import gcsio
    from google.cloud.storage.fileio import BlobReader
    from google.cloud.storage.retry import DEFAULT_RETRY

    bucket, name = gcsio.parse_gcs_path(path)
    client = FileSystems.get_filesystem(path)._gcsIO().client  # Beam's client: its credentials and options
    return BlobReader(client.bucket(bucket).blob(name), chunk_size=8 << 20, retry=DEFAULT_RETRY.with_timeout(timeout_s),
                      raw_download=True, timeout=timeout_s)


def iter_samples(path: str, options: ReadOptions = ReadOptions(),
                 counts: MemberCounts | None = None) -> Iterator[RawSample]:
    """Yield the samples of one shard, in tar order, each once (``io/tar_stream.py``: keys,
    duplicates, members not read, counted by kind into ``counts``).

    Raises ``tar_stream.TarBreak`` where reading stops, after the samples read whole: its
    ``corrupt`` tells a bad archive (permanent) from a storage failure (read it again).
    ``path``: a path Beam opens, or a ``file://`` URL as the tables record it.
    """
    shard = shard_name(path)
    try:
        stream = open_shard(to_path(path), options.storage_timeout_s)
    except Exception as exc:
        raise TarBreak(exc, None) from exc
    with stream:
        yield from iter_tar(stream, shard, path, options.max_member_bytes, counts)
