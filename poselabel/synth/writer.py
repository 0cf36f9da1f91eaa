"""Synthetic ground-truth WebDataset shards (ARCHITECTURE.md's format).

Per sample ``<key>.jpg``, ``<key>.mask.png`` (uint8 instance mask: 0
background, ``i + 1`` for person ``i``, nearest surface wins) and
``<key>.json`` (``width, height, camera, body_model, persons``). A person's
``bbox_xyxy`` is the box of its *visible* instance mask, in pixels
``[x0, y0, x1, y1]`` with exclusive right/bottom edges (``x1 = max column + 1``).
People that end up with fewer than ``MIN_VISIBLE_PX`` visible pixels are
removed from the scene and the image is rendered again without them.

Mask worlds (``WORLDS``, ``json.world``): in ``clothed`` and ``clothed+segmenter`` people
wear procedural garments and hair (``garments.py``, drawn in the image); ``mask.png`` stays
the visible *body* silhouettes (hidden where another person's body or garment is in front),
and ``<key>.segmask.png`` holds each person's segmenter-like mask (bit ``i`` = person
``i``, ``models.ground_truth.encode_person_masks``): the visible clothed person, plus the
segmenter-error model (``segmenter_errors.py``) in ``clothed+segmenter``. Each person's json
gains ``outfit`` (garment names) and ``segmenter_bbox_xyxy`` (null when the mask is empty).

Every sample is generated from its own RNG seeded by ``(seed, index)``, so the
bytes do not depend on ``workers`` or ``shard_size``; shards are written whole
to a temp file and renamed.
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import tarfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from apache_beam.io.filesystems import FileSystems
from PIL import Image

from poselabel.io.files import atomic_local_file
from poselabel.models.body.model import BodyModel
from poselabel.models.body.procedural import default_body_model_path
from poselabel.models.ground_truth import MAX_SEGMASK_PERSONS, SEGMENTER_MEMBER, encode_person_masks
from poselabel.synth import textures
from poselabel.synth.clothed import body_visible, dress, render_clothed
from poselabel.synth.render import render_people, shade
from poselabel.synth.scene import Scene, pose_persons, sample_scene
from poselabel.synth.segmenter_errors import apply_errors

log = logging.getLogger(__name__)
MIN_VISIBLE_PX = 30
SHARD_PATTERN = "synth-{:06d}.tar"
WORLDS = ("naked", "clothed", "clothed+segmenter")  # docs/synth.md, "Mask worlds"


@dataclass(frozen=True)
class Sample:
    """One generated sample: ``key``, encoded members, and its scene (for statistics)."""

    key: str
    jpg: bytes
    mask_png: bytes
    meta: dict
    scene: Scene
    members: dict = field(default_factory=dict)  # extra members: {"segmask.png": bytes} in clothed worlds
    layers: dict = field(default_factory=dict)  # clothed worlds: "clothed", "joint" (H, W), "segmenter" masks


def sample_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def make_sample(body: BodyModel, index: int, seed: int, body_model_name: str, max_persons: int,
                world: str = "naked") -> Sample:
    """Generate sample ``index`` of the dataset with ``seed`` in mask world ``world`` (``WORLDS``).

    The scene, the people's body colours, the light and the background come from the same
    draws in every world, so one seed gives the same people and cameras naked or clothed.
    """
    if world not in WORLDS:
        raise ValueError(f"world must be one of {WORLDS}, not {world!r}")
    rng = sample_rng(seed, index)
    dominant = body.smplx.lbs_weights.argmax(1).cpu().numpy()  # (V,) clothing regions
    while True:
        scene = sample_scene(rng, body, max_persons)
        persons = list(scene.persons)
        while persons:
            verts = pose_persons(body, tuple(persons))
            colors = torch.as_tensor(np.stack([textures.person_colors(np.random.default_rng([seed, index, k]),
                                                                      dominant) for k in range(len(persons))]),
                                     dtype=verts.dtype, device=verts.device)
            rendered = render_people(scene.camera, verts, body.faces, colors)
            area = np.bincount(rendered.instance.reshape(-1), minlength=len(persons) + 1)[1:]
            keep = area >= MIN_VISIBLE_PX
            if keep.all():
                break
            persons = [p for p, k in zip(persons, keep) if k]
        if persons:
            break
    scene = Scene(scene.camera, tuple(persons))
    cam = scene.camera
    body_mask, layers, outfits = rendered.instance, {}, None
    shown = rendered
    if world != "naked":
        outfits = dress(body, scene.persons, verts, seed, index)
        clothed = render_clothed(cam, verts, body.faces, colors, outfits, dominant)
        shown = clothed.rendered
        body_mask = body_visible(rendered.instance, shown.instance)
        seg = [shown.instance == i + 1 for i in range(len(persons))]
        if world == "clothed+segmenter":
            seg = apply_errors(np.random.default_rng([seed, index, 2]), shown.instance, clothed.joint, len(persons))
        layers = {"clothed": shown.instance, "joint": clothed.joint, "segmenter": seg}
    light_dir, ambient = textures.light(rng)
    people = shade(shown, light_dir, ambient, textures.albedo_texture(rng, cam.height, cam.width))
    image = textures.background(rng, cam.height, cam.width)
    fg = shown.instance > 0
    image[fg] = people[fg]
    image = np.clip(image + rng.normal(0, 0.01, image.shape), 0, 1)
    jpg = io.BytesIO()
    Image.fromarray((image * 255 + 0.5).astype(np.uint8)).save(jpg, format="JPEG", quality=int(rng.integers(80, 96)))
    png = io.BytesIO()
    Image.fromarray(body_mask).save(png, format="PNG")
    meta = {
        "width": cam.width, "height": cam.height,
        "camera": {"focal_px": cam.focal_px, "cx": cam.cx, "cy": cam.cy},
        "body_model": body_model_name, "world": world,
        "persons": [{"bbox_xyxy": mask_box(body_mask == i + 1) or mask_box(shown.instance == i + 1)
                     or mask_box(rendered.instance == i + 1),
                     "transl": p.transl.tolist(), "global_orient": p.global_orient.tolist(),
                     "body_pose": p.body_pose.tolist(), "betas": p.betas.tolist()}
                    for i, p in enumerate(persons)],
    }
    extra = {}
    if world != "naked":
        for i, p in enumerate(meta["persons"]):
            p["outfit"] = [g.kind for g in outfits[i]]
            p["segmenter_bbox_xyxy"] = mask_box(layers["segmenter"][i])
        extra[SEGMENTER_MEMBER] = encode_person_masks(layers["segmenter"])
    return Sample(f"{index:08d}", jpg.getvalue(), png.getvalue(), meta, scene, extra, layers)


def mask_box(mask: np.ndarray) -> list[float] | None:
    """``[x0, y0, x1, y1]`` (px) of a boolean (H, W) mask; x1, y1 exclusive; None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shard(path: Path, body: BodyModel, indices: range, seed: int, body_model_name: str,
                max_persons: int, world: str = "naked") -> dict:
    """Write samples ``indices`` to the tar at ``path`` (atomically); returns counts."""
    persons = 0
    with atomic_local_file(path) as fh, tarfile.open(fileobj=fh, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for index in indices:
            s = make_sample(body, index, seed, body_model_name, max_persons, world)
            _add(tar, f"{s.key}.jpg", s.jpg)
            _add(tar, f"{s.key}.mask.png", s.mask_png)
            for name, data in s.members.items():
                _add(tar, f"{s.key}.{name}", data)
            _add(tar, f"{s.key}.json", json.dumps(s.meta, sort_keys=True).encode())
            persons += len(s.meta["persons"])
    return {"shard": path.name, "samples": len(indices), "persons": persons}


_WORKER_BODY: BodyModel | None = None


def _init_worker(body_model_path: str) -> None:
    global _WORKER_BODY
    torch.set_num_threads(1)
    _WORKER_BODY = BodyModel(body_model_path)


def _worker_shard(args) -> dict:
    path, indices, seed, name, max_persons, world = args
    return write_shard(Path(path), _WORKER_BODY, indices, seed, name, max_persons, world)


def write_synthetic_shards(out_dir: str, num: int, seed: int, body_model_path: str | None = None,
                           max_persons: int = 3, shard_size: int = 100, workers: int = 1,
                           world: str = "naked") -> list[dict]:
    """Write ``num`` samples as ``synth-000000.tar``... in ``out_dir``; returns per-shard counts.

    The body model file used (``None``: the cached procedural one) is copied into
    ``out_dir``; each sample's ``body_model`` is its file name. ``workers > 1``
    generates shards in a process pool; the output is identical either way. ``world``
    (``WORLDS``): ``naked`` masks are the bodies' outlines; ``clothed`` people wear procedural
    garments and hair and each sample gets a ``segmask.png`` of the clothed masks;
    ``clothed+segmenter`` adds the measured segmenter errors to that member.
    """
    if world not in WORLDS:
        raise ValueError(f"world must be one of {WORLDS}, not {world!r}")
    if world != "naked" and max_persons > MAX_SEGMASK_PERSONS:
        raise ValueError(f"clothed worlds take at most {MAX_SEGMASK_PERSONS} persons per image")
    if num < 0 or shard_size < 1 or workers < 1 or max_persons < 1:
        raise ValueError("num >= 0, shard_size >= 1, workers >= 1 and max_persons >= 1 are required")
    if body_model_path is None:
        body_model_path = default_body_model_path()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = os.path.basename(body_model_path.rstrip("/"))
    local = out / name
    if "://" in body_model_path:
        with FileSystems.open(body_model_path) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst)
    elif Path(body_model_path).resolve() != local.resolve():
        shutil.copyfile(body_model_path, local)
    jobs = [(str(out / SHARD_PATTERN.format(k)), range(start, min(start + shard_size, num)), seed, name, max_persons,
             world)
            for k, start in enumerate(range(0, num, shard_size))]
    if workers == 1 or len(jobs) == 1:
        body = BodyModel(str(local))
        results = [write_shard(Path(j[0]), body, *j[1:]) for j in jobs]
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(str(local),)) as pool:
            results = list(pool.map(_worker_shard, jobs))
    for r in results:
        log.info("wrote %s: %d samples, %d persons", r["shard"], r["samples"], r["persons"])
    return results
