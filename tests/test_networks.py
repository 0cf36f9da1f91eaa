"""Crops, the Tz and pose networks (every variant), ControlNet zero-init, checkpoints local and gs://."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
import torch

from poselabel.models.nets.checkpoints import load_checkpoint, load_pose_predictor, load_tz_predictor, save_checkpoint
from poselabel.models.nets.crops import (
    CROP_INFO_DIM,
    TRAIN_JITTER,
    crop_info,
    crop_window,
    extract_crops,
    perspective_map,
)
from poselabel.models.nets.pose_net import PoseNet, count_parameters, pose_config
from poselabel.models.nets.tz_net import TzNet, build_tz_net, tz_config

torch.set_num_threads(1)


def _image(h=120, w=160, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


BOXES = np.array([[10.0, 20.0, 50.0, 100.0], [100.0, 5.0, 158.0, 119.0]])


# ---------------------------------------------------------------- crops
def test_crop_window_square_scaled_and_shifted_inside():
    w = crop_window([60, 40, 100, 80], 200, 100)  # 40 px box -> 50 px crop centred at (80, 60)
    np.testing.assert_allclose(w, [55, 35, 50])
    w = crop_window([0, 0, 40, 20], 200, 100)  # shifted right/down into the image
    np.testing.assert_allclose(w, [0, 0, 50])
    w = crop_window([0, 0, 200, 100], 200, 100)  # larger than the image: stays centred on the box
    np.testing.assert_allclose(w, [100 - 125, 50 - 125, 250])
    np.testing.assert_allclose(crop_window([0, 0, 80, 20], 200, 50), [0, -40, 100])  # fits in x only


def test_crop_info_and_perspective_map():
    info = crop_info([[55, 35, 50]], [[60, 40, 100, 80]], 200, 100)
    s = np.hypot(200, 100)
    np.testing.assert_allclose(info[0], [(80 - 100) / s, (60 - 50) / s, 50 / s, 40 / s, 40 / s, 200 / s, 100 / s],
                               rtol=1e-6)
    pm = perspective_map(torch.from_numpy(info), 10)
    assert pm.shape == (1, 2, 10, 10)
    # Left column's x is the crop's left edge plus half a pixel; rows share x; columns share y.
    assert pm[0, 0, 3, 0] == pytest.approx((55 + 2.5 - 100) / s, rel=1e-5)
    assert torch.equal(pm[0, 0, 0], pm[0, 0, 7]) and torch.equal(pm[0, 1, :, 0], pm[0, 1, :, 9])


def test_extract_crops_shapes_and_deterministic_jitter():
    image = _image()
    px, info, win = extract_crops(image, BOXES, 56)
    assert px.shape == (2, 3, 56, 56) and info.shape == (2, CROP_INFO_DIM) and win.shape == (2, 3)
    # A crop of a constant white image is white inside the image, black (zero-filled) outside.
    white = np.full((120, 160, 3), 255, np.uint8)
    p, _, w = extract_crops(white, BOXES[1:], 56)
    assert w[0, 2] > 120 and p[0, 0, 0, 28] < p[0, 0, 28, 28]
    a = extract_crops(image, BOXES, 56, jitter=TRAIN_JITTER, rng=np.random.default_rng(3))
    b = extract_crops(image, BOXES, 56, jitter=TRAIN_JITTER, rng=np.random.default_rng(3))
    c = extract_crops(image, BOXES, 56, jitter=TRAIN_JITTER, rng=np.random.default_rng(4))
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])


# ---------------------------------------------------------------- Tz network
def test_tz_tiny_forward_bounded():
    torch.manual_seed(0)
    net = TzNet(tz_config("tiny")).eval()
    tz = net(torch.randn(3, 3, 112, 112), torch.randn(3, CROP_INFO_DIM))
    assert tz.shape == (3,)
    torch.testing.assert_close(tz, torch.full((3,), 0.8), atol=1e-5, rtol=0)  # zero-init output layer: init_tz
    with torch.no_grad():
        net.out.weight.fill_(100.0)
    tz = net(torch.randn(3, 3, 112, 112), torch.randn(3, CROP_INFO_DIM))
    assert ((tz >= 0) & (tz <= 10)).all()


def test_tz_small_and_base_sizes():
    small = TzNet(tz_config("small"))
    n_backbone = count_parameters(small.backbone)
    assert 21e6 < n_backbone < 23e6  # ViT-S/14
    assert count_parameters(small, trainable_only=True) < count_parameters(small) - n_backbone + 1  # frozen
    cfg = tz_config("base")
    assert cfg.encoder["backbone_config"]["hidden_size"] == 768 and cfg.decoder_dim == 256


def test_tz_loads_dav2_encoder_from_hf_directory(tmp_path):
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    torch.manual_seed(1)
    pretrained = DepthAnythingForDepthEstimation(DepthAnythingConfig.from_dict(tz_config("tiny").encoder))
    pretrained.save_pretrained(tmp_path / "dav2")
    assert (tmp_path / "dav2" / "model.safetensors").exists()
    torch.manual_seed(2)
    net = build_tz_net(tz_config("tiny"), encoder_path=str(tmp_path / "dav2"))
    fresh = TzNet(tz_config("tiny"))
    ref = pretrained.backbone.state_dict()
    for k, v in net.backbone.state_dict().items():
        assert torch.equal(v, ref[k]), k
    assert not torch.equal(fresh.backbone.embeddings.patch_embeddings.projection.weight,
                           net.backbone.embeddings.patch_embeddings.projection.weight)
    assert torch.equal(net.neck.convs[0].weight, pretrained.neck.convs[0].weight)


# ---------------------------------------------------------------- pose network
@pytest.mark.parametrize("conditioning,controlnet", [("tz", True), ("none", True), ("tz", False), ("none", False)])
def test_pose_tiny_forward_shapes(conditioning, controlnet):
    net = PoseNet(pose_config("tiny", conditioning=conditioning, controlnet=controlnet)).eval()
    out = net(torch.randn(2, 3, 112, 112), torch.randn(2, CROP_INFO_DIM), torch.tensor([0.4, 3.0]))
    assert out["betas"].shape == (2, 10) and out["global_orient"].shape == (2, 3)
    assert out["body_pose"].shape == (2, 63) and out["rotmats"].shape == (2, 22, 3, 3)
    if controlnet:  # the base is frozen; only the copy, the Tz MLPs and the projections train
        trainable = {n.split(".")[0] for n, p in net.named_parameters() if p.requires_grad}
        assert trainable == ({"copy", "zero", "tz_embed"} if conditioning == "tz" else {"copy", "zero"})


def test_pose_small_vit_forward():
    net = PoseNet(pose_config("small")).eval()
    assert 21e6 < count_parameters(net.encoder) < 23e6  # ViT-S/14
    with torch.no_grad():
        out = net(torch.randn(1, 3, 224, 224), torch.randn(1, CROP_INFO_DIM), torch.tensor([1.0]))
    assert out["body_pose"].shape == (1, 63)
    assert pose_config("base").vit["hidden_size"] == 768


def _tiny_vit():
    from transformers import Dinov2Config

    return Dinov2Config(image_size=56, patch_size=14, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64).to_dict()


@pytest.mark.parametrize("backbone", ["cnn", "vit"])
def test_controlnet_zero_init_equivalence(backbone):
    """Zero projections: the ControlNet equals its base exactly, for any Tz; one step later it does not."""
    torch.manual_seed(0)
    over = {"backbone": "vit", "vit": _tiny_vit(), "image_size": 56, "use_perspective_map": False} \
        if backbone == "vit" else {}
    base = PoseNet(pose_config("tiny", conditioning="none", controlnet=False, **over)).eval()
    with torch.no_grad():  # a non-trivial base, not the near-zero initial head
        for p in base.head.mlp[-1].parameters():
            p.normal_(0, 0.05)
    net = PoseNet(pose_config("tiny", conditioning="tz", controlnet=True, **over))
    net.load_base(base.state_dict())
    net.eval()
    size = over.get("image_size", 112)
    x, info = torch.randn(4, 3, size, size), torch.randn(4, CROP_INFO_DIM)
    with torch.no_grad():
        ref = base(x, info)
        for tz in (torch.tensor([0.3, 0.7, 2.0, 9.0]), torch.full((4,), 1.0)):
            out = net(x, info, tz)
            for k in ("betas", "global_orient", "body_pose", "rotmats"):
                assert torch.equal(out[k], ref[k]), k
    net.train()
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    loss = net(x, info, torch.tensor([0.3, 0.7, 2.0, 9.0]))["betas"].square().sum()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.zero.parameters() if p.dim() > 1)
    opt.step()
    net.eval()
    with torch.no_grad():
        out_a = net(x, info, torch.tensor([0.3, 0.7, 2.0, 9.0]))
        out_b = net(x, info, torch.tensor([5.0, 5.0, 5.0, 5.0]))
    assert not torch.equal(out_a["betas"], ref["betas"])
    base_now = {k: v for k, v in net.state_dict().items() if k.startswith(("encoder.", "head."))}
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in base_now.items())  # base untouched
    if backbone == "cnn":  # Tz now matters (the copy's Tz MLPs got gradients through the projections)
        opt.zero_grad()
        net.train()
        net(x, info, torch.tensor([0.3, 0.7, 2.0, 9.0]))["betas"].square().sum().backward()
        opt.step()
        net.eval()
        with torch.no_grad():
            assert not torch.equal(net(x, info, torch.full((4,), 0.5))["betas"],
                                   net(x, info, torch.full((4,), 5.0))["betas"])
    assert out_a["betas"].shape == out_b["betas"].shape


# ---------------------------------------------------------------- checkpoints and predictors
def _trained_like(net):
    torch.manual_seed(5)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return net.eval()


def _check_roundtrip(directory: str, tz_net, pose_net):
    image = _image()
    sha_t = save_checkpoint(f"{directory}/tz", tz_net, {"steps": 1})
    sha_p = save_checkpoint(f"{directory}/pose", pose_net, {"steps": 1})
    tz_pred = load_tz_predictor(f"{directory}/tz")
    pose_pred = load_pose_predictor(f"{directory}/pose")
    assert tz_pred.sha256 == sha_t and pose_pred.sha256 == sha_p
    assert tz_pred.config["architecture"] == "tz_net" and tz_pred.config["training"]["steps"] == 1
    px, info, _ = extract_crops(image, BOXES, 112)
    with torch.no_grad():
        want_tz = tz_net(px, torch.from_numpy(info)).numpy()
        want_pose = pose_net(px, torch.from_numpy(info), torch.tensor([0.6, 2.5]))
    got_tz = tz_pred.predict(image, BOXES)
    assert got_tz.dtype == np.float32 and got_tz.shape == (2,)
    np.testing.assert_array_equal(got_tz, want_tz)
    got = pose_pred.predict(image, BOXES, np.array([0.6, 2.5]))
    for k, shape in (("betas", (2, 10)), ("global_orient", (2, 3)), ("body_pose", (2, 63))):
        assert got[k].shape == shape and got[k].dtype == np.float32
        np.testing.assert_array_equal(got[k], want_pose[k].numpy())
    # Batched across images: same values, split per image (an image without people gives empty arrays).
    other = _image(seed=1)
    batch = tz_pred.predict_batch([(image, BOXES), (other, np.zeros((0, 4))), (other, BOXES[:1])])
    assert [len(b) for b in batch] == [2, 0, 1]
    np.testing.assert_allclose(batch[0], got_tz, atol=1e-6)
    np.testing.assert_allclose(batch[2], tz_pred.predict(other, BOXES[:1]), atol=1e-6)
    pb = pose_pred.predict_batch([(image, BOXES, [0.6, 2.5]), (other, BOXES[:1], [1.0])])
    np.testing.assert_allclose(pb[0]["body_pose"], got["body_pose"], atol=1e-5)
    if pose_pred.conditioned:
        with pytest.raises(ValueError):
            pose_pred.predict(image, BOXES, None)
    else:
        np.testing.assert_array_equal(pose_pred.predict(image, BOXES, None)["betas"], got["betas"])
    return sha_t


def test_checkpoint_roundtrip_local(tmp_path):
    tz_net = _trained_like(TzNet(tz_config("tiny")))
    pose_net = _trained_like(PoseNet(pose_config("tiny")))
    sha = _check_roundtrip(str(tmp_path), tz_net, pose_net)
    data = (tmp_path / "tz" / "model.safetensors").read_bytes()
    assert hashlib.sha256(data).hexdigest() == sha
    model, meta, digest = load_checkpoint(str(tmp_path / "tz"))
    assert meta["variant"] == "tiny" and digest == sha
    # A changed weights file is refused.
    (tmp_path / "tz" / "model.safetensors").write_bytes(data[:-4] + b"\x00\x00\x80\x3f")
    with pytest.raises(ValueError, match="sha256"):
        load_checkpoint(str(tmp_path / "tz"))


def test_checkpoint_roundtrip_gcs(gcs_bucket, tmp_path):
    gcs_bucket = f"{gcs_bucket}/networks"
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    from poselabel.io.files import read_file, write_file

    tz_net = _trained_like(TzNet(tz_config("tiny")))
    pose_net = _trained_like(PoseNet(pose_config("tiny", conditioning="none")))
    _check_roundtrip(f"{gcs_bucket}/ckpt", tz_net, pose_net)
    # A DAv2 encoder directory on gs:// loads through a temporary local copy.
    pretrained = DepthAnythingForDepthEstimation(DepthAnythingConfig.from_dict(tz_config("tiny").encoder))
    pretrained.save_pretrained(tmp_path / "dav2")
    for name in os.listdir(tmp_path / "dav2"):
        write_file(f"{gcs_bucket}/dav2/{name}", (tmp_path / "dav2" / name).read_bytes())
    assert read_file(f"{gcs_bucket}/dav2/config.json") == (tmp_path / "dav2" / "config.json").read_bytes()
    net = build_tz_net(tz_config("tiny"), encoder_path=f"{gcs_bucket}/dav2")
    assert torch.equal(net.backbone.encoder.layer[0].mlp.fc1.weight, pretrained.backbone.encoder.layer[0].mlp.fc1.weight)
