"""Reading a table directory back for the report: rows, manifest, and the pixels.

The persons table holds no pixels. Images come back from the input shards: the images
table's ``url`` is the absolute URL of the shard each sample was read from (``file://`` or
``gs://``; tables written before absolute URLs hold the path as given to ``run``),
and ``key`` its WebDataset key; :func:`fetch_images` streams each needed shard once with
``poselabel.io.shards.iter_samples`` and decodes only the samples asked for. A shard that
moved or is unreadable gives no image (the report then draws the mask alone).
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from poselabel.io import outputs
from poselabel.io.shards import IMAGE_EXTS, iter_samples
from poselabel.io.urls import to_path
from poselabel.models.images.decode import decode_image
from poselabel.pipelines.rejudge import list_input_shards

log = logging.getLogger(__name__)


@dataclass
class Tables:
    """``persons`` and ``images``: lists of row dicts (all shards); ``manifest``: dict or {}."""

    persons: list[dict[str, Any]]
    images: list[dict[str, Any]]
    manifest: dict[str, Any] = field(default_factory=dict)
    shards: list[str] = field(default_factory=list)


def load_tables(input_dir: str) -> Tables:
    """Rows of every shard of a labelling (or ``poselabel filter``) output directory."""
    shards = list_input_shards(input_dir)
    persons, images = [], []
    for shard in shards:
        for table, rows in ((outputs.PERSONS, persons), (outputs.IMAGES, images)):
            path = outputs.table_path(input_dir, table, shard)
            if FileSystems.exists(path):
                rows.extend(pq.read_table(io.BytesIO(outputs.read_bytes(path))).to_pylist())
    try:
        manifest = outputs.read_json(outputs.join(input_dir, "manifest.json"))
    except Exception:  # tables without a manifest still get a report
        manifest = {}
    return Tables(persons=persons, images=images, manifest=manifest, shards=shards)


def fetch_images(urls_keys: list[tuple[str, str]], max_pixels: int = 64_000_000) -> dict[tuple[str, str], np.ndarray]:
    """``{(url, key): (H, W, 3) uint8 RGB}`` for the samples asked for, read from their shards."""
    wanted: dict[str, set[str]] = {}
    for url, key in urls_keys:
        wanted.setdefault(url, set()).add(key)
    out: dict[tuple[str, str], np.ndarray] = {}
    for url, keys in wanted.items():
        try:
            for sample in iter_samples(to_path(url)):
                if sample.key not in keys:
                    continue
                ext = next((e for e in IMAGE_EXTS if e in sample.members), None)
                if ext is not None:
                    out[(url, sample.key)] = decode_image(sample.members[ext], max_pixels=max_pixels)
                if len([k for k in keys if (url, k) in out]) == len(keys):
                    break
        except Exception as exc:  # a moved or broken shard: the report shows masks only
            log.warning("cannot read images from %s: %s", url, exc)
    return out


def body_model_path(manifest: dict[str, Any]) -> str | None:
    """The run's body model file (``None``: the procedural default)."""
    path = (manifest.get("config") or {}).get("body_model")
    identity = manifest.get("body_model") or {}
    if path or identity.get("kind") == "procedural":  # the procedural model's path is a cache's
        return path or None
    return identity.get("path")
