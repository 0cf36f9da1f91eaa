"""Make the figures of docs/synth.md.

    python docs/figures/make_figures.py body              # body_model_sheet.png
    python docs/figures/make_figures.py synth DIR         # synth_sheet.png and synth_stats.png from shards in DIR
"""
from __future__ import annotations

import glob
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from poselabel.models.body.model import BodyModel
from poselabel.synth.render import render_people, shade
from poselabel.synth.scene import Camera

HERE = Path(__file__).parent


def _render_body(body: BodyModel, betas, pose, yaw: float, size=(220, 240)) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    orient = (Rotation.from_rotvec([np.pi, 0, 0]) * Rotation.from_rotvec([0, yaw, 0])).as_rotvec()
    cam = Camera(size[0], size[1], focal_px=size[1] * 2.1, cx=size[0] / 2, cy=size[1] / 2)
    t = lambda a: torch.as_tensor(np.asarray(a, np.float32))[None]  # noqa: E731
    verts = body(t(betas), t(orient), t(pose), t([0.0, 0.0, 4.2])).vertices
    verts[..., 1] -= 0.5 * (verts[..., 1].amax() + verts[..., 1].amin())  # centre vertically in the frame
    colors = torch.full_like(verts, 0.8)
    r = render_people(cam, verts, body.faces, colors)
    light = np.array([0.4, -0.5, -0.75])
    img = shade(r, light / np.linalg.norm(light), 0.3, np.ones(r.instance.shape))
    img[r.instance == 0] = (0.96, 0.96, 0.98)
    return (img * 255).astype(np.uint8)


def body_sheet(out: Path) -> None:
    body = BodyModel()
    names = ["size", "weight", "legs", "arms"]
    rows = []
    for k in range(4):
        panels = []
        for value in (-2, 0, 2):
            betas = np.zeros(10)
            betas[k] = value
            for yaw in (0.0, np.pi / 2):
                im = Image.fromarray(_render_body(body, betas, np.zeros(63), yaw))
                ImageDraw.Draw(im).text((4, 4), f"b{k} {names[k]} {value:+d}", fill=(0, 0, 0))
                panels.append(np.asarray(im))
        rows.append(np.concatenate(panels, 1))
    from poselabel.synth.poses import sample_body_pose

    rng = np.random.default_rng(3)
    poses = [sample_body_pose(rng) for _ in range(6)]
    for yaw in (0.0, np.pi / 2):
        rows.append(np.concatenate([_render_body(body, np.zeros(10), p, yaw) for p in poses], 1))
    Image.fromarray(np.concatenate(rows, 0)).save(out, optimize=True)


def synth_sheet(shard_dir: str, out_sheet: Path, out_stats: Path) -> None:
    from poselabel.io.shards import iter_samples

    shards = sorted(glob.glob(f"{shard_dir}/synth-*.tar"))
    tiles, tz, fov, count = [], [], [], []
    rng = np.random.default_rng(0)
    palette = (rng.random((256, 3)) * 255).astype(np.uint8)
    for path in shards:
        for s in iter_samples(path):
            meta = json.loads(s.members["json"])
            tz += [p["transl"][2] for p in meta["persons"]]
            fov.append(np.degrees(2 * np.arctan(meta["width"] / (2 * meta["camera"]["focal_px"]))))
            count.append(len(meta["persons"]))
            if len(tiles) < 16:
                img = np.asarray(Image.open(io.BytesIO(s.members["jpg"])).convert("RGB")).astype(float)
                mask = np.asarray(Image.open(io.BytesIO(s.members["mask.png"])))
                over = img.copy()
                over[mask > 0] = 0.55 * img[mask > 0] + 0.45 * palette[mask[mask > 0]]
                tile = Image.fromarray(np.concatenate([img, over], 1).astype(np.uint8))
                draw = ImageDraw.Draw(tile)
                for p in meta["persons"]:
                    x0, y0, x1, y1 = p["bbox_xyxy"]
                    draw.rectangle([x0 + img.shape[1], y0, x1 + img.shape[1] - 1, y1 - 1], outline=(255, 255, 0))
                tile.thumbnail((320, 160))
                canvas = Image.new("RGB", (320, 160), (30, 30, 30))
                canvas.paste(tile, (0, 0))
                tiles.append(np.asarray(canvas))
    grid = np.concatenate([np.concatenate(tiles[r * 4:(r + 1) * 4], 1) for r in range(4)], 0)
    Image.fromarray(grid).quantize(256, dither=Image.Dither.NONE).save(out_sheet, optimize=True)

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(12, 3.2))
    ax[0].hist(tz, bins=np.geomspace(0.3, 10, 40))
    ax[0].set_xscale("log")
    ax[0].set_title(f"pelvis Tz (m), {len(tz)} persons; {np.mean(np.array(tz) <= 1.2):.0%} <= 1.2 m")
    ax[1].hist(fov, bins=35)
    ax[1].set_title(f"horizontal FoV (deg), {len(fov)} images")
    ax[2].hist(count, bins=np.arange(0.5, max(count) + 1.5))
    ax[2].set_title("persons per image")
    fig.tight_layout()
    fig.savefig(out_stats, dpi=80)


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "body":
        body_sheet(HERE / "body_model_sheet.png")
    else:
        synth_sheet(sys.argv[2], HERE / "synth_sheet.png", HERE / "synth_stats.png")
