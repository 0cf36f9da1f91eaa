"""Synthetic ground-truth shards: format, geometry (mask = reprojected mesh), determinism, distributions."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from poselabel.io.shards import iter_samples, list_shards
from poselabel.models.body.model import BodyModel
from poselabel.models.body.procedural import write_procedural_body_model
from poselabel.synth.scene import CLOSE_RANGE, FAR_RANGE, NEAR, sample_depth, sample_scene
from poselabel.synth.writer import write_synthetic_shards

NUM = 8


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    return write_procedural_body_model(str(tmp_path_factory.mktemp("bm") / "SMPLX_NEUTRAL_PROCEDURAL.npz"))


@pytest.fixture(scope="module")
def shards(tmp_path_factory, model_path) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("synth")
    write_synthetic_shards(str(out), NUM, seed=7, body_model_path=model_path, max_persons=3, shard_size=3)
    return out


def _samples(out: Path) -> dict[str, dict[str, bytes]]:
    return {s.key: s.members for path in list_shards(str(out / "synth-*.tar")) for s in iter_samples(path)}


def test_shards_follow_the_ground_truth_format(shards):
    assert [Path(p).name for p in list_shards(str(shards / "synth-*.tar"))] == \
        ["synth-000000.tar", "synth-000001.tar", "synth-000002.tar"]
    samples = _samples(shards)
    assert len(samples) == NUM
    for key, members in samples.items():
        assert set(members) == {"jpg", "mask.png", "json"}
        meta = json.loads(members["json"])
        image = Image.open(io.BytesIO(members["jpg"]))
        mask = np.asarray(Image.open(io.BytesIO(members["mask.png"])))
        assert image.size == (meta["width"], meta["height"]) and mask.shape == (meta["height"], meta["width"])
        assert mask.dtype == np.uint8
        assert (shards / meta["body_model"]).is_file()
        assert set(meta["camera"]) == {"focal_px", "cx", "cy"}
        persons = meta["persons"]
        assert 1 <= len(persons) <= 3
        assert set(np.unique(mask)) - {0} == set(range(1, len(persons) + 1))
        for i, p in enumerate(persons):
            assert len(p["transl"]) == 3 and len(p["global_orient"]) == 3
            assert len(p["body_pose"]) == 63 and len(p["betas"]) == 10
            ys, xs = np.nonzero(mask == i + 1)  # bbox = box of the visible mask, exclusive max
            assert p["bbox_xyxy"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def _silhouette(uv: np.ndarray, faces: np.ndarray, height: int, width: int) -> np.ndarray:
    """Independent rasteriser: PIL polygon fill at 3x, sampled at the original pixel centres."""
    big = Image.new("L", (3 * width, 3 * height), 0)
    draw = ImageDraw.Draw(big)
    # In the 3x image pixel X has its centre at (X + 0.5) / 3; X = 3x + 1 is centred on pixel x.
    tri = uv[faces] * 3.0 - 0.5
    for t in tri:
        draw.polygon([tuple(p) for p in t], fill=1)
    return np.asarray(big)[1::3, 1::3].astype(bool)


def test_reprojected_meshes_reproduce_the_masks(shards):
    checked = 0
    bodies: dict[str, BodyModel] = {}
    for key, members in _samples(shards).items():
        meta = json.loads(members["json"])
        mask = np.asarray(Image.open(io.BytesIO(members["mask.png"])))
        name = meta["body_model"]
        body = bodies.setdefault(name, BodyModel(str(shards / name)))
        t = lambda k: torch.tensor([p[k] for p in meta["persons"]], dtype=torch.float32)  # noqa: E731
        verts = body(t("betas"), t("global_orient"), t("body_pose"), t("transl")).vertices.numpy()
        cam = meta["camera"]
        assert verts[..., 2].min() > NEAR * 0.99
        uv = np.stack([cam["focal_px"] * verts[..., 0] / verts[..., 2] + cam["cx"],
                       cam["focal_px"] * verts[..., 1] / verts[..., 2] + cam["cy"]], -1)
        faces = body.faces.numpy()
        sil = [_silhouette(uv[i], faces, meta["height"], meta["width"]) for i in range(len(verts))]
        for i, s in enumerate(sil):
            others = np.zeros_like(s)
            for j, o in enumerate(sil):
                if j != i:
                    others |= o
            visible = mask == i + 1
            assert not (visible & ~s).any() or (visible & ~s).sum() <= 0.01 * visible.sum()
            if (s & others).any() or s.sum() < 300:
                continue  # occluded or occluding: the mask is only part of the silhouette
            iou = (s & visible).sum() / (s | visible).sum()
            assert iou >= 0.99, (key, i, iou)
            checked += 1
    assert checked >= 3


def test_same_seed_gives_identical_bytes(tmp_path, shards, model_path):
    # Other shard size and two worker processes: per-sample seeds make the bytes identical.
    write_synthetic_shards(str(tmp_path), 4, seed=7, body_model_path=model_path, shard_size=1, workers=2)
    again, first = _samples(tmp_path), _samples(shards)
    assert len(again) == 4
    for key, members in again.items():
        for ext in ("json", "mask.png", "jpg"):
            assert members[ext] == first[key][ext], (key, ext)
    other = tmp_path / "other"
    write_synthetic_shards(str(other), 1, seed=8, body_model_path=model_path)
    assert _samples(other)["00000000"]["json"] != first["00000000"]["json"]


def test_depth_distribution():
    rng = np.random.default_rng(0)
    tz = np.array([sample_depth(rng) for _ in range(20000)])
    close = (tz >= CLOSE_RANGE[0]) & (tz <= CLOSE_RANGE[1])
    assert abs(close.mean() - 0.8) < 0.02
    assert tz.min() >= CLOSE_RANGE[0] and tz.max() <= FAR_RANGE[1]
    inv = 1.0 / tz[close]  # uniform in inverse depth
    lo, hi = 1.0 / CLOSE_RANGE[1], 1.0 / CLOSE_RANGE[0]
    hist = np.histogram(inv, bins=5, range=(lo, hi))[0] / close.sum()
    np.testing.assert_allclose(hist, 0.2, atol=0.02)


def test_scene_parameters(model_path):
    torch.set_num_threads(1)
    body = BodyModel(model_path)
    rng = np.random.default_rng(1)
    tz, fov, counts = [], [], []
    for _ in range(80):
        scene = sample_scene(rng, body, max_persons=3)
        counts.append(len(scene.persons))
        fov.append(scene.camera.hfov_deg)
        tz += [float(p.transl[2]) for p in scene.persons]
    tz = np.array(tz)
    assert min(counts) >= 1 and max(counts) <= 3 and len(set(counts)) == 3
    assert 29.9 <= min(fov) and max(fov) <= 100.1
    assert tz.min() >= CLOSE_RANGE[0] - 1e-6 and tz.max() <= FAR_RANGE[1] + 1.0
    assert 0.65 < np.mean(tz <= CLOSE_RANGE[1]) < 0.95
