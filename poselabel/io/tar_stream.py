"""One WebDataset tar, streamed: its samples, and an account of every member.

The tar is read with Python's ``tarfile`` in stream mode (``"r|"``), one pass, nothing
extracted to disk, nothing seeked. A gzip, bzip2 or xz shard (told by its first bytes) is
decompressed by ``gzip``/``bz2``/``lzma``'s file readers, which give at most the bytes asked
for (``tarfile``'s own ``"r|*"`` decompresses whatever one read returns: a 1 MiB read of a
member of zeros became 1 GiB at once, 3.3 GB peak RSS for a 1 GiB member). A sample is
a run of adjacent members sharing a key (the member's path up to the first dot of its
basename, WebDataset's rule); its members are keyed by the rest of the name, lower-cased
(``jpg``, ``json``, ``mask.png``).

Every member is accounted for (``MemberCounts`` by kind, in the done marker):

- a regular file no larger than ``max_member_bytes`` is read into its sample;
- a larger one is not read (its size is in the header; its bytes are streamed past) and
  makes its sample an error (``over_size``);
- a symlink, hardlink, character or block device, fifo (``symlink``, ``hardlink``,
  ``device``, ``fifo``) is not read and makes its sample an error: only regular files hold
  data here (GNU tar stores a file met twice as a hardlink: ``tar --hard-dereference``);
- a folder entry (``directory``) is counted;
- a name without an extension (``README``, ``no_extension``) or without a key (``.jpg``,
  ``.DS_Store``, ``no_key``) is counted; it is no sample;
- a second member of a sample with the same extension (``b.jpg`` then ``b.JPG``), or a key
  met again after other samples, is a ``duplicate``: it becomes its own error row, keyed
  ``<key>.dup<n>`` (n = 2, 3, ...: the occurrence; a key from data never has a dot in its
  basename, so this one cannot collide), and the first sample of that key is labelled as usual.

Names are made safe before they become keys (``safe_name``): bytes that are not UTF-8 and
control characters become ``\\xNN`` escapes; a key or extension of the reserved form
``__name__`` (``__shard__``, ``__error__``, ``__key__``) gets its first ``_`` escaped
(``\\x5f_shard__``), so data never takes a key or member name the pipeline reserves.

A read that fails raises ``TarBreak`` after the samples read whole; it carries the key of the
sample it broke off in (None between samples) and whether the failure is the file's own
(``corrupt``: a truncated or invalid archive, permanent) or the storage's (anything else:
permission, I/O, network; the shard is read again).
"""
from __future__ import annotations

import bz2
import collections
import gzip
import io
import lzma
import re
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from poselabel.records import RawSample, is_reserved_name

MemberCounts = collections.Counter  # kind -> members (see the module's docstring)
ERROR_MEMBER = "__error__"  # the member of an error sample that holds its message (decode reads it)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_BUFSIZE = 1 << 20  # tarfile's read size in stream mode (its default, 10 KiB, is slow on big members)
# The archive itself is bad: reading it again gives the same result.
CORRUPT = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError, UnicodeError)


class TarBreak(Exception):
    """Reading stopped: ``cause`` (the exception), ``key`` (the sample it broke off in, or None),
    ``corrupt`` (True: the archive is bad; False: the storage failed, read it again)."""

    def __init__(self, cause: BaseException, key: str | None):
        self.cause, self.key = cause, key
        self.corrupt = is_corrupt(cause)
        super().__init__(f"{type(cause).__name__}: {cause}")


def is_corrupt(exc: BaseException) -> bool:
    """True when ``exc`` says the archive itself is bad (truncated, not a tar, bad compression)."""
    if isinstance(exc, OSError) and not isinstance(exc, gzip.BadGzipFile):
        # bz2 reports bad data as a bare OSError; everything else of OSError is the storage's
        return isinstance(exc.__context__, CORRUPT) or "Invalid data stream" in str(exc)
    return isinstance(exc, CORRUPT)


def safe_name(name: str) -> str:
    """``tarfile``'s name (undecodable bytes as surrogates) -> printable text: bytes that are not
    UTF-8, and control characters, as ``\\xNN``."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def unreserve(part: str) -> str:
    """A key or extension of the reserved ``__name__`` form with its first ``_`` escaped."""
    return "\\x5f" + part[1:] if is_reserved_name(part) else part


def split_name(name: str) -> tuple[str | None, str | None]:
    """``dir/a.mask.png`` -> ``("dir/a", "mask.png")``; ``(None, None)`` without a key or an extension."""
    match = re.match(r"^((?:.*/|)[^.]+)[.]([^/]*)$", name)
    if not match or not match.group(2):
        return None, None
    return match.group(1), match.group(2)


def member_kind(info: tarfile.TarInfo) -> str:
    if info.isreg():
        return "file"
    if info.isdir():
        return "directory"
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    if info.ischr() or info.isblk():
        return "device"
    if info.isfifo():
        return "fifo"
    return "other"


class _Prefixed(io.RawIOBase):
    """``head`` then the rest of ``stream``: the bytes read to tell the compression, given back."""

    def __init__(self, head: bytes, stream):
        self.head, self.stream = head, stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.head:
            n = min(len(buffer), len(self.head))
            buffer[:n], self.head = self.head[:n], self.head[n:]
            return n
        data = self.stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _ReadOne:
    """``read(n)`` as one ``read1(n)`` of a decompressing reader: what one step gives, at most
    ``n`` bytes, so that the bytes before a truncation reach ``tarfile`` before the error."""

    def __init__(self, reader):
        self.reader = reader

    def read(self, size: int = -1) -> bytes:
        return self.reader.read1(size if size >= 0 else _BUFSIZE)


def decompressed(stream):
    """``stream``'s tar bytes: gzip, bzip2 and xz (told by their first bytes) decompressed
    by readers that return at most the size asked; anything else as it is."""
    head = stream.read(6)
    raw = io.BufferedReader(_Prefixed(head, stream), _BUFSIZE)
    if head.startswith(b"\x1f\x8b"):
        return _ReadOne(gzip.GzipFile(fileobj=raw, mode="rb"))
    if head.startswith(b"BZh"):
        return _ReadOne(bz2.BZ2File(raw))
    if head.startswith(b"\xfd7zXZ\x00"):
        return _ReadOne(lzma.LZMAFile(raw))
    return raw


@dataclass
class _Sample:
    base: str  # the key in the tar
    key: str  # the row's key: ``base``, or ``base.dup<n>`` for a duplicate
    duplicate: bool = False  # a key met again after other samples: its members are not read
    members: dict[str, bytes] = field(default_factory=dict)
    exts: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def raw(self, shard: str, url: str) -> RawSample:
        if self.errors:
            return error_sample(self.key, shard, url, "; ".join(self.errors))
        return RawSample(key=self.key, shard=shard, url=url, members=self.members)


def error_sample(key: str, shard: str, url: str, message: str) -> RawSample:
    """The sample that stands for ``key`` when it cannot be labelled: decode makes it an error row."""
    return RawSample(key=key, shard=shard, url=url, members={ERROR_MEMBER: message.encode()})


def iter_tar(stream, shard: str, url: str, max_member_bytes: int,
             counts: MemberCounts | None = None) -> Iterator[RawSample]:
    """The samples of the tar read from ``stream`` (a binary file object), in tar order, each
    once; duplicates and members not read are counted by kind into ``counts``. Raises
    ``TarBreak`` where reading stops (after the samples read whole)."""
    counts = collections.Counter() if counts is None else counts
    seen: collections.Counter = collections.Counter()  # key -> occurrences (samples and duplicate members)
    current: _Sample | None = None
    extra: list[_Sample] = []  # the current sample's duplicate members, each its own error row
    try:
        tar = tarfile.open(fileobj=decompressed(stream), mode="r|", bufsize=_BUFSIZE, encoding="utf-8",
                           errors="surrogateescape")
        for info in tar:
            name, kind = safe_name(info.name), member_kind(info)
            if kind == "directory":
                counts["directory"] += 1
                continue
            base, ext = split_name(name)
            if base is None:
                counts["no_key" if name.rsplit("/", 1)[-1].startswith(".") else "no_extension"] += 1
                continue
            base, ext = unreserve(base), unreserve(ext.lower())
            if current is None or base != current.base:
                if current is not None:
                    yield current.raw(shard, url)
                    yield from (s.raw(shard, url) for s in extra)
                    extra = []
                seen[base] += 1
                n = seen[base]
                current = _Sample(base, base if n == 1 else f"{base}.dup{n}", duplicate=n > 1)
                if current.duplicate:
                    current.errors.append(f"duplicate: key {base} met again after other samples (occurrence {n}); "
                                          "only its first run of members is labelled")
            if current.duplicate:
                counts["duplicate"] += 1
                continue
            if ext in current.exts:
                seen[base] += 1
                counts["duplicate"] += 1
                extra.append(_Sample(base, f"{base}.dup{seen[base]}", errors=[
                    f"duplicate: {name} repeats member .{ext} of sample {base} (extensions compare "
                    "lower-case); the first is labelled"]))
                continue
            current.exts.add(ext)
            if kind != "file":
                counts[kind] += 1
                target = f" to {safe_name(info.linkname)}" if info.linkname else ""
                current.errors.append(f"{name} is a {kind}{target}, not a regular file; only regular files are read"
                                      + (" (tar --hard-dereference stores the file itself)" if kind == "hardlink" else ""))
            elif info.size > max_member_bytes:
                counts["over_size"] += 1
                current.errors.append(f"{name} is {info.size / 2**20:.1f} MiB, over max_member_mb "
                                      f"({max_member_bytes / 2**20:g}); not read")
            else:
                current.members[ext] = tar.extractfile(info).read()
        tar.close()
    except Exception as exc:
        raise TarBreak(exc, current.key if current is not None else None) from exc
    if current is not None:
        yield current.raw(shard, url)
        yield from (s.raw(shard, url) for s in extra)
