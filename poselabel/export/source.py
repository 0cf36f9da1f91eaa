"""What an export reads: the persons to export, in order, and their images from the source shards.

A table directory (``poselabel run`` or ``poselabel filter`` output, local or ``gs://``) holds
``persons/<shard>.parquet`` and ``images/<shard>.parquet``; the images table's ``url`` names the
shard each sample was read from and ``key`` its WebDataset key. Images are streamed from those
shards with :func:`poselabel.io.shards.iter_samples` (nothing extracted to disk) and decoded with
EXIF orientation, the frame the tables' pixel coordinates are in.
"""
from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from poselabel.io import outputs
from poselabel.io.shards import IMAGE_EXTS, iter_samples
from poselabel.io.urls import to_path
from poselabel.models.images.decode import decode_image
from poselabel.pipelines.rejudge import list_input_shards


class ExportError(Exception):
    """A mistake in the export's input or options (one line, for the user)."""


@dataclass(frozen=True)
class Selected:
    """One person to export: its persons-table row, where its image is, and its place in its image."""

    row: dict[str, Any]
    url: str  # the source shard (local path or gs://)
    subject_idx: int  # index among the exported persons of its image
    subject_cnt: int  # exported persons of its image

    @property
    def ident(self) -> tuple[str, str, int]:
        return (self.row["shard"], self.row["key"], int(self.row["person_index"]))


def _read_table(path: str) -> list[dict[str, Any]]:
    return pq.read_table(io.BytesIO(outputs.read_bytes(path))).to_pylist()


def resolve_url(url: str) -> str:
    """What the shard reader opens for a recorded shard URL: a ``file://`` URL's local path
    (``io.urls.to_path``), ``gs://`` as it is; a relative path (tables written before URLs
    were absolute) is taken from the working directory."""
    url = to_path(url)
    if "://" in url or os.path.isabs(url):
        return url
    return os.path.abspath(url)


def select_persons(input_dir: str, include_rejected: bool) -> tuple[list[Selected], dict[str, int]]:
    """The persons to export, sorted by ``(shard, key, person_index)``, and counts.

    Raises :class:`ExportError` when ``input_dir`` holds no persons tables, a shard has no images
    table, or nothing is left to export.
    """
    try:
        shards = list_input_shards(input_dir)
    except Exception as exc:  # a missing directory or bucket
        raise ExportError(f"cannot list {input_dir}: {exc}") from None
    if not shards:
        raise ExportError(f"no labelled tables in {input_dir} (expected {outputs.join(input_dir, 'persons')}/"
                          "<shard>.parquet, as `poselabel run` or `poselabel filter` write)")
    chosen: list[tuple[dict, str]] = []
    counts = {"shards": len(shards), "persons": 0, "accepted": 0}
    for shard in shards:
        persons_path = outputs.table_path(input_dir, outputs.PERSONS, shard)
        images_path = outputs.table_path(input_dir, outputs.IMAGES, shard)
        for path in (persons_path, images_path):
            if not FileSystems.exists(path):
                raise ExportError(f"{path} is missing: export needs both tables of every shard")
        urls = {r["key"]: r["url"] for r in _read_table(images_path)}
        for row in _read_table(persons_path):
            counts["persons"] += 1
            counts["accepted"] += bool(row["accepted"])
            if not (row["accepted"] or include_rejected):
                continue
            if row["key"] not in urls or not urls[row["key"]]:
                raise ExportError(f"{images_path} has no url for key {row['key']!r} (person {row['person_index']})")
            chosen.append((row, resolve_url(urls[row["key"]])))
    if not chosen:
        raise ExportError(f"nothing to export from {input_dir}: {counts['persons']} persons, "
                          f"{counts['accepted']} accepted" + ("" if include_rejected else " (--all exports rejected ones too)"))
    chosen.sort(key=lambda rc: (rc[0]["shard"], rc[0]["key"], int(rc[0]["person_index"])))
    per_image: dict[tuple[str, str], int] = {}
    for row, _ in chosen:
        per_image[(row["shard"], row["key"])] = per_image.get((row["shard"], row["key"]), 0) + 1
    out, seen = [], {}
    for row, url in chosen:
        image = (row["shard"], row["key"])
        out.append(Selected(row=row, url=url, subject_idx=seen.get(image, 0), subject_cnt=per_image[image]))
        seen[image] = seen.get(image, 0) + 1
    counts["exported"] = len(out)
    return out, counts


def iter_images(persons: list[Selected], max_pixels: int) -> Iterator[tuple[str, str, np.ndarray]]:
    """``(url, key, (H, W, 3) uint8 RGB)`` for every image the persons need, each source shard
    streamed once (in the persons' order of first use) and left as soon as its keys are found.

    Raises :class:`ExportError` naming the shard when one cannot be read or lacks a key.
    """
    wanted: dict[str, set[str]] = {}
    for p in persons:
        wanted.setdefault(p.url, set()).add(p.row["key"])
    for url, keys in wanted.items():
        left = set(keys)
        try:
            for sample in iter_samples(url):
                if sample.key not in left:
                    continue
                ext = next((e for e in IMAGE_EXTS if e in sample.members), None)
                if ext is None:
                    raise ExportError(f"{url}: sample {sample.key!r} has no image member")
                left.discard(sample.key)
                yield url, sample.key, decode_image(sample.members[ext], max_pixels=max_pixels)
                if not left:
                    break
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(f"cannot read source shard {url}: {type(exc).__name__}: {exc}") from None
        if left:
            raise ExportError(f"source shard {url} lacks {len(left)} labelled sample(s), e.g. {sorted(left)[0]!r}: "
                              "was it changed after labelling?")
