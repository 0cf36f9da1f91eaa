"""A small labelled table directory built from synthetic ground truth (shared by the quality tests).

Persons carry their ground-truth fit, scaled in depth by 1.0, 1.3 or 1.08 in turn (transl
times the factor, focal length unchanged), so that some silhouettes match and some do not. ``mask_iou`` is the
real hard IoU of the rendered fit with the visible mask (``rasterize_faces``), so the
tables hold a spread of IoUs as a solver would leave them; ``depth_gain`` and
``focal_margin`` are measured by the camera stage's own probes (``with_evidence``). Rows, markers and manifest are
written with the pipeline's own ``tables`` / ``outputs`` / ``shard_marker``.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from poselabel import tables
from poselabel.config import RunConfig
from poselabel.io import outputs
from poselabel.io.shards import iter_samples, list_shards
from poselabel.io.urls import to_url
from poselabel.models.body.model import BodyModel
from poselabel.models.masks import mask_iou
from poselabel.models.render.rasterize import project_points, rasterize_faces
from poselabel.records import CameraFit, ImageRecord, Person, ShardEnd
from poselabel.synth.writer import write_synthetic_shards
from poselabel.transforms.judge_quality import JudgeQuality
from poselabel.transforms.write_tables import shard_marker


def with_evidence(body: BodyModel, persons: list[Person], cam: dict) -> list[Person]:
    """The persons with the measures the camera stage records of a fit (its own functions, at
    a short schedule): ``depth_gain`` for everyone, ``focal_margin`` for masks on the border."""
    from dataclasses import replace

    from poselabel.models.camera.config import CameraSolution, CameraSolverConfig, SolverStage
    from poselabel.models.camera.scene import depth_gain, focal_margin
    from poselabel.models.masks import mask_geometry

    if not persons:
        return persons
    with torch.no_grad():
        verts = body(*(torch.tensor(np.stack([getattr(p, k) for p in persons]), dtype=torch.float32)
                       for k in ("betas", "global_orient", "body_pose"))).vertices  # pelvis at 0
    n = len(persons)
    sol = CameraSolution(focal_px=torch.full((n,), float(cam["focal_px"]), dtype=torch.float64),
                         transl=torch.tensor(np.stack([p.transl for p in persons]), dtype=torch.float64),
                         mask_iou=torch.tensor([p.mask_iou for p in persons], dtype=torch.float64),
                         iterations=torch.zeros(n, dtype=torch.long), final_loss=torch.zeros(n),
                         reject_reasons=[None] * n)
    cfg = CameraSolverConfig(stages=(SolverStage(res=64, blur=2.0, iters=15, lr=1.0),
                                     SolverStage(res=128, blur=1.0, iters=10, lr=0.2)))
    masks = [torch.from_numpy(p.mask) for p in persons]
    pp = torch.tensor([[cam["cx"], cam["cy"]]] * n, dtype=torch.float64)
    gain = depth_gain(verts, body.faces, masks, sol, cfg, principal_point=pp).tolist()
    cut = [any(mask_geometry(p.mask)[2]) for p in persons]
    margin = (focal_margin(verts, body.faces, sol.transl[:, 2], masks, sol, cfg, principal_point=pp,
                           wanted=cut).tolist() if any(cut) else [float("nan")] * n)
    out = []
    for p, g, m in zip(persons, gain, margin):
        out.append(replace(p, camera=replace(p.camera, depth_gain=g if np.isfinite(g) else None,
                                             focal_margin=m if np.isfinite(m) else None)))
    return out


def build(root: Path, num: int = 3, seed: int = 5) -> Path:
    """Shards in ``root/gt``, tables in ``root/labels`` (returned); reused when already there."""
    out = root / "labels"
    if (out / "manifest.json").exists():
        return out
    gt = root / "gt"
    write_synthetic_shards(str(gt), num=num, seed=seed, max_persons=3, shard_size=2)
    body_path = next(str(p) for p in gt.iterdir() if p.suffix == ".npz")
    body = BodyModel(body_path)
    config = RunConfig(input=str(gt / "synth-*.tar"), output=str(out), body_model=body_path)
    judge = JudgeQuality(config)
    outputs.ensure_dirs(str(out))
    n = 0
    for path in list_shards(config.input):
        image_rows, person_rows, count = [], [], 0
        for s in iter_samples(path):
            meta = json.loads(s.members["json"])
            inst = np.asarray(Image.open(io.BytesIO(s.members["mask.png"])))
            cam, H, W = meta["camera"], meta["height"], meta["width"]
            persons = []
            for i, p in enumerate(meta["persons"]):
                transl = np.asarray(p["transl"], np.float32) * (1.0, 1.3, 1.08)[n % 3]
                n += 1
                with torch.no_grad():
                    v = body(torch.tensor([p["betas"]]), torch.tensor([p["global_orient"]]),
                             torch.tensor([p["body_pose"]]), torch.tensor(transl[None])).vertices
                    px = project_points(v, torch.tensor([cam["focal_px"]]), torch.tensor([cam["cx"]]),
                                        torch.tensor([cam["cy"]]))
                    sil = rasterize_faces(px, body.faces.long(), H, W)[0][0].numpy() >= 0
                mask = inst == i + 1
                persons.append(Person(
                    person_index=i, bbox_xyxy=np.asarray(p["bbox_xyxy"], np.float32), det_score=0.9, mask=mask,
                    tz=float(transl[2]), betas=np.asarray(p["betas"]), global_orient=np.asarray(p["global_orient"]),
                    body_pose=np.asarray(p["body_pose"]), focal_px=float(cam["focal_px"]), transl=transl,
                    mask_iou=mask_iou(sil, mask),
                    camera=CameraFit(cx=cam["cx"], cy=cam["cy"], fit_loss=1.0 - mask_iou(sil, mask), fit_iters=80)))
            persons = with_evidence(body, persons, cam)
            record = ImageRecord(key=s.key, shard=s.shard, url=to_url(path), width=W, height=H, meta=meta,
                                 member_exts=tuple(sorted(s.members)), persons=tuple(persons))
            record = judge.apply(record)
            image_rows.append(tables.image_row(record))
            person_rows.extend(tables.person_row(record, p) for p in record.persons)
            count += 1
        shard = os.path.basename(path)[: -len(".tar")]
        outputs.write_atomic(outputs.table_path(str(out), "persons", shard),
                             tables.to_parquet_bytes(tables.sort_rows(person_rows), tables.PERSONS_SCHEMA,
                                                     tables.file_metadata("test", None, "persons")))
        outputs.write_atomic(outputs.table_path(str(out), "images", shard),
                             tables.to_parquet_bytes(tables.sort_rows(image_rows), tables.IMAGES_SCHEMA,
                                                     tables.file_metadata("test", None, "images")))
        outputs.write_json(outputs.done_path(str(out), shard),
                           shard_marker(ShardEnd(shard, to_url(path), count), image_rows, person_rows, {"run_id": "test"}))
    outputs.write_json(str(out / "manifest.json"), {"run_id": "test", "config": config.to_dict()})
    return out
