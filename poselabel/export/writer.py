"""Running an export: the plan, the shards (atomic, resumable, deterministic) and its record.

```
OUT/_export_plan.json     written first: format, options, input, and a digest of the persons
OUT/NNNNNN.tar            --format 4dhumans: --shard-size persons each, in (shard, key, person_index) order
OUT/NNNNNN.parquet        --format sam3d: the same split, one table each
OUT/export.json           written last: counts, shards and their persons
```
The persons are sorted and split by count before anything is written, so output shard ``i``
holds the same persons on every run; each shard is written under a hidden name and renamed. A
rerun into the same ``OUT`` with the same plan skips the shards already there (a killed export
resumes), a different plan is refused unless ``--overwrite``. Nothing in the files depends on
the time or the machine: a rerun gives identical bytes.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
from dataclasses import asdict, dataclass
from typing import Any

from apache_beam.io.filesystems import FileSystems

from poselabel.export import hmr2, sam3d
from poselabel.export.source import ExportError, Selected, iter_images, select_persons
from poselabel.io import outputs
from poselabel.io.shard_writer import shard_bytes
from poselabel.tables import table_to_parquet_bytes

log = logging.getLogger(__name__)

FORMATS = {"4dhumans": "tar", "sam3d": "parquet"}
PLAN = "_export_plan.json"
RECORD = "export.json"


@dataclass(frozen=True)
class ExportOptions:
    """What an export writes; every field is recorded in the plan."""

    format: str = "4dhumans"
    include_rejected: bool = False  # False: accepted persons only
    crop_size: int = 256  # crop pixels (4dhumans)
    context: float = 1.5  # crop side / the box's longer side (4dhumans)
    shard_size: int = 1000  # persons per output shard
    jpeg_quality: int = 95  # crops (4dhumans)
    dataset: str = "poselabel"  # the sam3d table's dataset column
    max_pixels: int = 64_000_000  # larger source images are refused (decompression bombs)

    def validate(self) -> None:
        checks = [(self.format in FORMATS, f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}"),
                  (self.crop_size >= 8, f"--crop-size must be at least 8 pixels, got {self.crop_size}"),
                  (self.context >= 1.0, f"--context must be at least 1 (the whole box), got {self.context}"),
                  (self.shard_size >= 1, f"--shard-size must be positive, got {self.shard_size}"),
                  (1 <= self.jpeg_quality <= 100, f"--jpeg-quality must be 1-100, got {self.jpeg_quality}")]
        for ok, message in checks:
            if not ok:
                raise ExportError(message)


def plan_of(input_dir: str, persons: list[Selected], options: ExportOptions) -> dict[str, Any]:
    """The plan: options, input and a digest of every exported row (so a changed input is a new plan)."""
    digest = hashlib.sha256()
    for p in persons:
        digest.update(json.dumps([p.row, p.url], sort_keys=True, default=str).encode())
    n = len(persons)
    return {"format": options.format, "options": asdict(options), "input": input_dir.rstrip("/"),
            "persons": n, "shards": -(-n // options.shard_size), "persons_sha256": digest.hexdigest()}


def shard_path(out: str, index: int, fmt: str) -> str:
    return outputs.join(out, f"{index:06d}.{FORMATS[fmt]}")


def shard_data(persons: list[Selected], options: ExportOptions) -> bytes:
    """One output shard's bytes."""
    if options.format == "sam3d":
        return table_to_parquet_bytes(sam3d.table(persons, options.dataset))
    by_image: dict[tuple[str, str], list[Selected]] = {}
    for p in persons:
        by_image.setdefault((p.url, p.row["key"]), []).append(p)
    samples: dict[tuple[str, str, int], tuple[str, dict[str, bytes]]] = {}
    for url, key, rgb in iter_images(persons, options.max_pixels):
        for p in by_image[(url, key)]:
            samples[p.ident] = hmr2.person_sample(p, rgb, options.crop_size, options.context, options.jpeg_quality)
    return shard_bytes([samples[p.ident] for p in persons])


def check_output(input_dir: str, output_dir: str) -> None:
    if output_dir.rstrip("/") == input_dir.rstrip("/"):
        raise ExportError("--output must differ from --input (the export writes its own files)")
    if "://" not in output_dir and os.path.exists(output_dir):  # object stores have no file-vs-folder clash
        if not os.path.isdir(output_dir):
            raise ExportError(f"--output {output_dir} is a file, not a directory")


def export(input_dir: str, output_dir: str, options: ExportOptions, overwrite: bool = False) -> dict[str, Any]:
    """Export ``input_dir``'s persons into ``output_dir``; returns the record written to ``export.json``.

    Raises :class:`ExportError` (nothing created) on bad options, a missing or empty input, or an
    output holding a different export.
    """
    options.validate()
    check_output(input_dir, output_dir)
    persons, counts = select_persons(input_dir, options.include_rejected)
    plan = plan_of(input_dir, persons, options)
    plan_path = outputs.join(output_dir, PLAN)
    if FileSystems.exists(plan_path) and not overwrite:
        previous = outputs.read_json(plan_path)
        if previous != plan:
            raise ExportError(f"{output_dir} holds another export (other options or input tables); "
                              "pass --overwrite to replace it or choose another --output")
    if not FileSystems.exists(output_dir):
        FileSystems.mkdirs(output_dir)
    outputs.write_json(plan_path, plan)
    size = options.shard_size
    shards, written = [], 0
    for index in range(plan["shards"]):
        chunk = persons[index * size:(index + 1) * size]
        path = shard_path(output_dir, index, options.format)
        if overwrite or not FileSystems.exists(path):
            outputs.write_atomic(path, shard_data(chunk, options))
            written += 1
            log.info("export: wrote %s (%d persons)", path, len(chunk))
        shards.append({"file": path.rsplit("/", 1)[-1], "persons": len(chunk),
                       "first": list(chunk[0].ident), "last": list(chunk[-1].ident)})
    if overwrite:
        _delete_stale(output_dir, options.format, plan["shards"])
    record = {**plan, "poselabel_version": _version(), "counts": counts, "shard_files": shards, "input_run": _input_run(input_dir)}
    outputs.write_json(outputs.join(output_dir, RECORD), record)
    return {**record, "written_now": written, "skipped_existing": plan["shards"] - written}


def _delete_stale(output_dir: str, fmt: str, keep: int) -> None:
    """Shards of an earlier, larger export beyond this one's last index."""
    matches = FileSystems.match([outputs.join(output_dir, f"[0-9]*.{FORMATS[fmt]}")])[0].metadata_list
    stale = [m.path for m in matches if m.path.rsplit("/", 1)[-1].split(".")[0].isdigit()
             and int(m.path.rsplit("/", 1)[-1].split(".")[0]) >= keep]
    outputs.delete_if_exists(stale)


def _input_run(input_dir: str) -> dict[str, Any]:
    """What the input manifest says made the tables (run id, command), when there is one."""
    try:
        manifest = outputs.read_json(outputs.join(input_dir, "manifest.json"))
    except Exception:  # tables without a manifest still export
        return {}
    return {k: manifest[k] for k in ("run_id", "command", "config_sha256") if k in manifest}


def _version() -> str | None:
    try:
        return importlib.metadata.version("poselabel")
    except importlib.metadata.PackageNotFoundError:
        return None
