"""Writing WebDataset tar shards from in-memory members (no temporary files)."""
from __future__ import annotations

import io
import tarfile

from apache_beam.io.filesystems import FileSystems


def shard_bytes(samples: list[tuple[str, dict[str, bytes]]]) -> bytes:
    """A tar holding ``<key>.<ext>`` members for each ``(key, {ext: bytes})``, in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                info.mtime = 0  # deterministic bytes
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_shard(path: str, samples: list[tuple[str, dict[str, bytes]]]) -> str:
    """Write a shard to ``path`` (local or ``gs://``); returns ``path``."""
    with FileSystems.create(path) as f:
        f.write(shard_bytes(samples))
    return path
