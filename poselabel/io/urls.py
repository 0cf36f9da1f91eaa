"""Shard locations as absolute URLs, and back to what Beam's file systems open.

Tables and done markers store where each sample came from as an absolute URL, so that a
table directory means the same thing from any working folder (``poselabel report`` run
elsewhere, ``poselabel export``): a local file becomes ``file:///abs/path.tar``
(percent-encoded, RFC 8089, as ``pathlib.Path.as_uri`` writes it); ``gs://`` and other
URLs are kept as they are. Beam's file systems do not open ``file://`` URLs, so readers
go through :func:`to_path` first. Relative paths in tables written before absolute URLs
are returned unchanged by :func:`to_path` (resolved against the current folder).
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

FILE_SCHEME = "file://"


def to_url(path: str) -> str:
    """``path`` as an absolute URL: ``gs://...`` unchanged, a local path as ``file:///abs``."""
    if "://" in path:
        return path
    return Path(os.path.abspath(path)).as_uri()


def to_path(url: str) -> str:
    """What ``FileSystems.open`` takes for ``url``: a ``file://`` URL's local path, else ``url``."""
    if url.startswith(FILE_SCHEME):
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"file URL names another host: {url!r}")
        return unquote(parsed.path)
    return url
