"""Mask worlds of ``poselabel synth``: garments and hair in the image and the segmenter-like mask,
the body mask kept beside it, the segmenter-error model, and the readers' mask selection."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from poselabel.cli import main as cli_main
from poselabel.commands.bench import load_gt_persons
from poselabel.io.shards import iter_samples, list_shards
from poselabel.models.body.procedural import write_procedural_body_model
from poselabel.models.ground_truth import decode_person_masks, encode_person_masks, person_masks
from poselabel.synth.segmenter_errors import SegmenterErrors, apply_errors
from poselabel.synth.writer import write_synthetic_shards

NUM = 6
SEED = 5


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    return write_procedural_body_model(str(tmp_path_factory.mktemp("bm") / "SMPLX_NEUTRAL_PROCEDURAL.npz"))


def _write(root: Path, world: str, model_path: str, **kw) -> Path:
    torch.set_num_threads(1)
    out = root / world.replace("+", "_")
    write_synthetic_shards(str(out), NUM, seed=SEED, body_model_path=model_path, max_persons=3, world=world, **kw)
    return out


@pytest.fixture(scope="module")
def worlds(tmp_path_factory, model_path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("worlds")
    return {w: _write(root, w, model_path, shard_size=NUM) for w in ("naked", "clothed", "clothed+segmenter")}


def _samples(out: Path) -> dict[str, dict[str, bytes]]:
    return {s.key: s.members for path in list_shards(str(out / "synth-*.tar")) for s in iter_samples(path)}


def _body(members) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(members["mask.png"])))


def test_world_is_recorded_and_clothed_worlds_carry_a_segmenter_mask(worlds):
    for world, out in worlds.items():
        for members in _samples(out).values():
            meta = json.loads(members["json"])
            assert meta["world"] == world
            if world == "naked":
                assert set(members) == {"jpg", "mask.png", "json"}
                assert person_masks(members, meta)[1] == "body"
                continue
            assert set(members) == {"jpg", "mask.png", "segmask.png", "json"}
            masks, kind = person_masks(members, meta)
            assert kind == "segmenter" and len(masks) == len(meta["persons"])
            for p, m in zip(meta["persons"], masks):
                assert isinstance(p["outfit"], list)
                if m.any():
                    ys, xs = np.nonzero(m)
                    assert p["segmenter_bbox_xyxy"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]


def test_same_seed_same_people_and_cameras_in_every_world(worlds):
    naked = _samples(worlds["naked"])
    for world in ("clothed", "clothed+segmenter"):
        for key, members in _samples(worlds[world]).items():
            a, b = json.loads(naked[key]["json"]), json.loads(members["json"])
            assert a["camera"] == b["camera"] and (a["width"], a["height"]) == (b["width"], b["height"])
            assert [[p[k] for k in ("transl", "betas", "body_pose", "global_orient")] for p in a["persons"]] == \
                [[p[k] for k in ("transl", "betas", "body_pose", "global_orient")] for p in b["persons"]]
            # the clothed world's body mask is the naked one minus what other people's garments hide
            nk, cl = _body(naked[key]), _body(members)
            assert ((cl == 0) | (cl == nk)).all()
            assert (cl > 0).sum() >= 0.8 * (nk > 0).sum()


def test_clothed_mask_contains_the_body_mask_and_garments_add_a_plausible_area(worlds):
    ratios, changed = [], 0
    for key, members in _samples(worlds["clothed"]).items():
        meta = json.loads(members["json"])
        masks, _ = person_masks(members, meta)
        body = _body(members)
        for i, m in enumerate(masks):
            b = body == i + 1
            assert not (b & ~m).any(), (key, i)  # body (after occlusion) inside the clothed mask
            for j in range(i):
                assert not (m & masks[j]).any()  # no segmenter errors: people do not overlap
            if b.sum() >= 500:
                ratios.append(m.sum() / b.sum())
        img_changed = (np.asarray(Image.open(io.BytesIO(members["jpg"]))) !=
                       np.asarray(Image.open(io.BytesIO(_samples(worlds["naked"])[key]["jpg"])))).any()
        changed += bool(img_changed)
    assert len(ratios) >= 4
    assert 1.05 <= float(np.median(ratios)) <= 1.8, ratios
    assert max(ratios) <= 3.0
    assert changed == NUM  # garments are drawn in the image


def test_segmenter_world_differs_from_the_clothed_masks_by_a_bounded_amount(worlds):
    clothed, seg = _samples(worlds["clothed"]), _samples(worlds["clothed+segmenter"])
    ious = []
    for key in clothed:
        meta = json.loads(clothed[key]["json"])
        for a, b in zip(person_masks(clothed[key], meta)[0], person_masks(seg[key], meta)[0]):
            if a.sum() >= 500:
                ious.append((a & b).sum() / (a | b).sum())
    assert 0.6 <= float(np.median(ious)) < 1.0, ious


def test_same_seed_gives_identical_bytes_in_the_segmenter_world(tmp_path, worlds, model_path):
    again = _samples(_write(tmp_path, "clothed+segmenter", model_path, shard_size=2, workers=2))
    first = _samples(worlds["clothed+segmenter"])
    assert again.keys() == first.keys()
    for key, members in again.items():
        for ext in ("json", "mask.png", "segmask.png", "jpg"):
            assert members[ext] == first[key][ext], (key, ext)


def test_person_masks_round_trip_and_old_shards(tmp_path):
    rng = np.random.default_rng(0)
    for count in (3, 11):  # 8-bit and 16-bit PNGs; masks overlap
        masks = [rng.random((17, 23)) < 0.4 for _ in range(count)]
        back = decode_person_masks(encode_person_masks(masks), count)
        assert all((a == b).all() for a, b in zip(masks, back))
    inst = np.zeros((10, 12), np.uint8)
    inst[2:5, 3:7], inst[6:9, 1:4] = 1, 2
    png = io.BytesIO()
    Image.fromarray(inst).save(png, format="PNG")
    members = {"mask.png": png.getvalue()}
    meta = {"persons": [{}, {}]}  # a shard written before mask worlds: no world, no segmask
    masks, kind = person_masks(members, meta)
    assert kind == "body" and [int(m.sum()) for m in masks] == [12, 9]
    assert person_masks(members, meta, "body")[1] == "body"
    with pytest.raises(ValueError, match="segmask.png"):
        person_masks(members, meta, "segmenter")
    with pytest.raises(ValueError, match="mask must be one of"):
        person_masks(members, meta, "clothes")


def test_error_model_merges_drops_hands_grows_and_holes():
    clothed = np.zeros((120, 160), np.uint8)
    clothed[20:100, 30:80] = 1
    clothed[20:100, 80:130] = 2  # touching person 1
    joint = np.full(clothed.shape, -1, np.int16)
    joint[20:30, 30:40] = 20  # person 1's left hand
    base = dict(boundary_offset_rel=0.0, boundary_noise_rel=0.0, p_miss_hand=0.0, p_miss_forearm=0.0,
                p_hole=0.0, hole_area_frac=0.0, p_merge=0.0)
    rng = np.random.default_rng(0)
    same = apply_errors(rng, clothed, joint, 2, SegmenterErrors(**base))
    assert all((m == (clothed == i + 1)).all() for i, m in enumerate(same))
    merged = apply_errors(rng, clothed, joint, 2, SegmenterErrors(**{**base, "p_merge": 1.0}))
    assert (merged[0] & (clothed == 2)).sum() > 1000 and (merged[1] & (clothed == 1)).sum() > 1000
    no_hand = apply_errors(rng, clothed, joint, 2, SegmenterErrors(**{**base, "p_miss_hand": 1.0}))
    assert not no_hand[0][20:30, 30:40].any() and no_hand[0][50:60, 50:60].all()
    grown = apply_errors(rng, clothed, joint, 2, SegmenterErrors(**{**base, "boundary_offset_rel": 0.05}))
    assert grown[0].sum() > (clothed == 1).sum() + 200  # 4 px out around an 80 px tall person
    holed = apply_errors(rng, clothed, joint, 2, SegmenterErrors(**{**base, "p_hole": 1.0, "hole_area_frac": 0.1}))
    lost = (clothed == 1).sum() - holed[0].sum()
    assert 0.03 * 4000 < lost < 0.15 * 4000


def test_cli_world_and_bench_mask_selection(tmp_path, model_path):
    out = tmp_path / "cli"
    assert cli_main(["synth", "--out", str(out), "--num", "2", "--seed", "3", "--body-model", model_path,
                     "--world", "clothed+segmenter"]) == 0
    assert all(json.loads(m["json"])["world"] == "clothed+segmenter" for m in _samples(out).values())
    pattern = str(out / "synth-*.tar")
    auto, body = load_gt_persons(pattern, mask="auto"), load_gt_persons(pattern, mask="body")
    assert auto.mask_used == "segmenter" and body.mask_used == "body"
    assert len(auto.body_masks) == len(auto.keys)
    assert any(not torch.equal(a, b) for a, b in zip(auto.masks, auto.body_masks))
    for m, b in zip(body.masks, body.body_masks):
        assert torch.equal(m, b)
