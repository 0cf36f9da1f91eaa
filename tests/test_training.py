"""Training on real synthetic GT shards: data, loss decrease, exact resume, ControlNet, the CLI."""
from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np
import pytest
import torch

from poselabel.models.nets.checkpoints import load_checkpoint, load_pose_predictor, load_tz_predictor
from poselabel.models.nets.crops import TRAIN_JITTER, extract_crops
from poselabel.models.nets.pose_net import PoseNet, pose_config
from poselabel.models.nets.tz_net import TzNet, tz_config
from poselabel.training.data import PersonSet, iter_gt_images, load_persons, make_batch
from poselabel.training.loop import TrainSettings
from poselabel.training.pose import geodesic, pose_losses, train_pose
from poselabel.training.tz import train_tz

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from poselabel.synth.writer import write_synthetic_shards

    out = tmp_path_factory.mktemp("gt")
    write_synthetic_shards(str(out), 4, seed=11, max_persons=2, shard_size=2)
    return f"{out}/synth-{{000000..000001}}.tar"


@pytest.fixture(scope="module")
def persons(shards):
    return load_persons(shards, 112)


@pytest.fixture(scope="module")
def persons64(shards):
    """Crops at 64 px: the tiny Tz network at a quarter of the cost (its ViT interpolates positions)."""
    return load_persons(shards, 64)


def test_person_set_matches_shards(shards, persons, tmp_path):
    metas = [m for _, _, m, _ in iter_gt_images(shards)]
    gt = [p for m in metas for p in m["persons"]]
    assert len(persons) == len(gt) >= 4
    np.testing.assert_allclose(persons.tz, [p["transl"][2] for p in gt], rtol=1e-6)
    np.testing.assert_allclose(persons.body_pose, [p["body_pose"] for p in gt], rtol=1e-6)
    assert persons.body_model and persons.body_model.endswith(".npz")
    # An un-jittered batch is (nearly) the crop inference cuts from the full image.
    _, image, meta, _ = next(iter_gt_images(shards))
    n = len(meta["persons"])
    px, info, _ = extract_crops(image, [p["bbox_xyxy"] for p in meta["persons"]], 112)
    batch = make_batch(persons, np.arange(n))
    assert batch["pixels"].shape == (n, 3, 112, 112)
    assert (batch["pixels"] - px).abs().mean() < 0.05
    np.testing.assert_allclose(batch["crop_info"].numpy(), info, atol=1e-4)
    a = make_batch(persons, np.arange(n), TRAIN_JITTER, np.random.default_rng(1))
    b = make_batch(persons, np.arange(n), TRAIN_JITTER, np.random.default_rng(1))
    assert torch.equal(a["pixels"], b["pixels"]) and not torch.equal(a["pixels"], batch["pixels"])
    persons.save(str(tmp_path / "p.npz"))
    again = PersonSet.load(str(tmp_path / "p.npz"))
    assert np.array_equal(again.context, persons.context) and list(again.keys) == list(persons.keys)
    assert len(load_persons(shards, 112, max_tz=float(np.median(persons.tz)))) < len(persons)


def _tz_loss_all(model: TzNet, data: PersonSet) -> float:
    batch = make_batch(data, np.arange(len(data)))
    with torch.no_grad():
        return float(((model.eval()(batch["pixels"], batch["crop_info"]) - batch["tz"]).abs() / batch["tz"]).mean())


def test_tz_training_reduces_loss_and_resumes_exactly(persons64, tmp_path):
    persons = persons64
    settings = TrainSettings(steps=20, batch=8, lr=3e-3, seed=7, log_every=5, save_every=10, threads=1)
    torch.manual_seed(settings.seed)
    before = _tz_loss_all(TzNet(tz_config("tiny", image_size=64)), persons)
    train_tz(persons, str(tmp_path / "a"), "tiny", settings, min_tz=0.0, image_size=64)
    model, meta, sha_a = load_checkpoint(str(tmp_path / "a"))
    assert meta["training"]["step"] == 20 and meta["training"]["settings"]["seed"] == 7
    after = _tz_loss_all(model, persons)
    assert after < 0.7 * before, (before, after)
    # Interrupted at step 10 (after its checkpoint), then resumed: bit-identical to the straight run.
    train_tz(persons, str(tmp_path / "b"), "tiny", settings, min_tz=0.0, stop_at=10, image_size=64)
    assert json.loads((tmp_path / "b" / "train_state" / "state.json").read_text())["step"] == 10
    train_tz(persons, str(tmp_path / "b"), "tiny", settings, min_tz=0.0, resume=True, image_size=64)
    sha_b = hashlib.sha256((tmp_path / "b" / "model.safetensors").read_bytes()).hexdigest()
    assert sha_b == sha_a
    log_a = [json.loads(x) for x in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log_b] == [5, 10, 15, 20]
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]
    # A different seed gives a different run.
    train_tz(persons, str(tmp_path / "c"), "tiny", TrainSettings(**{**settings.__dict__, "seed": 8, "steps": 2}),
             min_tz=0.0, image_size=64)
    assert hashlib.sha256((tmp_path / "c" / "model.safetensors").read_bytes()).hexdigest() != sha_a


def test_geodesic():
    from poselabel.models.geometry import axis_angle_to_matrix

    r = axis_angle_to_matrix(torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.5], [2.0, 0.0, 0.0]]))
    angles = geodesic(r, torch.eye(3).expand(3, 3, 3))
    torch.testing.assert_close(angles, torch.tensor([0.0, 0.5, 2.0]), atol=2e-4, rtol=0)


def _pose_loss_all(model, data: PersonSet) -> float:
    from poselabel.models.body.model import BodyModel

    with torch.no_grad():
        return float(pose_losses(model.eval(), BodyModel(data.body_model), make_batch(data, np.arange(len(data))))[0])


def test_pose_training_base_then_controlnet(persons, tmp_path):
    settings = TrainSettings(steps=20, batch=4, lr=3e-3, seed=3, log_every=5, save_every=20, threads=1)
    torch.manual_seed(settings.seed)
    before = _pose_loss_all(PoseNet(pose_config("tiny", conditioning="none", controlnet=False)), persons)
    last = train_pose(persons, str(tmp_path / "base"), "tiny", settings, conditioning="none")
    assert last["step"] == 20 and {"shape", "pose", "joint", "vert"} <= set(last)
    base, _, base_sha = load_checkpoint(str(tmp_path / "base"))
    after = _pose_loss_all(base, persons)
    assert after < 0.9 * before, (before, after)
    train_pose(persons, str(tmp_path / "ctrl"), "tiny", TrainSettings(**{**settings.__dict__, "steps": 2}),
               conditioning="tz", base=str(tmp_path / "base"))
    ctrl, meta, _ = load_checkpoint(str(tmp_path / "ctrl"))
    assert meta["model"]["controlnet"] and meta["training"]["base_sha256"] == base_sha
    state = ctrl.state_dict()
    for k, v in base.state_dict().items():  # the frozen base is untouched by ControlNet training
        assert torch.equal(state[k], v), k
    assert any(p.abs().sum() > 0 for p in ctrl.zero.parameters())


def test_cli_train_tz_then_pose_on_predicted_tz(shards, tmp_path):
    from poselabel.commands import train as train_cmd

    parser = argparse.ArgumentParser()
    train_cmd.register(parser.add_subparsers(dest="command"))
    tz_dir, pose_dir = str(tmp_path / "tz"), str(tmp_path / "pose")
    args = parser.parse_args(["train", "tz", "--data", shards, "--out", tz_dir, "--steps", "2", "--batch", "4",
                              "--min-tz", "0", "--seed", "1", "--log-every", "1"])
    assert args.func(args) == 0
    assert len((tmp_path / "tz" / "train_log.jsonl").read_text().splitlines()) == 2
    tz = load_tz_predictor(tz_dir)
    args = parser.parse_args(["train", "pose", "--data", shards, "--out", pose_dir, "--steps", "2", "--batch", "4",
                              "--tz-source", tz_dir, "--conditioning", "tz"])
    assert args.func(args) == 0
    pose = load_pose_predictor(pose_dir)
    assert pose.config["training"]["tz_source"] == tz_dir and pose.conditioned
    _, image, meta, _ = next(iter_gt_images(shards))
    boxes = np.array([p["bbox_xyxy"] for p in meta["persons"]])
    out = pose.predict(image, boxes, tz.predict(image, boxes))
    assert out["body_pose"].shape == (len(boxes), 63) and np.isfinite(out["body_pose"]).all()
