"""BLADE's pelvis-depth (Tz) network on a person crop (pure PyTorch + transformers).

    crop (B, 3, S, S) ──► Depth-Anything-V2 encoder (DINOv2 ViT + DPT neck, ``transformers``)
                      ──► finest DPT fusion map (B, F, 4S/p·2, ...) ──► 2 × [conv 3×3 stride 2, BN, ReLU] → d
                      ──► tokens + 2-D sine positions = memory
    learned query (+ MLP(crop info)) ──► 2-layer transformer decoder ──► linear ──► sigmoid(z) · max_depth

Output: Tz in metres, (B,), bounded to (0, max_depth) (BLADE: 10 m). The crop
is the person's square crop (``models/crops.py``) and the crop-info vector
(B, 7) tells the network where the crop sits in the full image (BLADE itself
does not use it; ``use_crop_info=False`` turns it off).

Variants (``tz_config``): ``tiny`` (ViT hidden 64, 2 layers, patch 8, 112 px, a
2-level DPT neck at 1× and ½× the patch grid, d = 64: trains on a CPU), ``small`` (DAv2-Small: ViT-S/14, 384 hidden, 12 layers,
518 px, d = 256), ``base`` (DAv2-Base: ViT-B/14, 768 hidden, 518 px, d = 256).
Pretrained DAv2 weights (a HF-format directory with ``config.json`` and
``model.safetensors``, local or ``gs://``) load through ``from_pretrained``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from poselabel.io.files import local_dir
from poselabel.models.nets.crops import CROP_INFO_DIM

ARCHITECTURE = "tz_net"


def _dav2_config(image_size: int, patch: int, hidden: int, layers: int, heads: int, out_indices: list[int],
                 neck: list[int], fusion: int, reassemble: list[float]) -> dict:
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(image_size=image_size, patch_size=patch, hidden_size=hidden,
                            num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=4 * hidden,
                            out_indices=out_indices, reshape_hidden_states=False)
    return DepthAnythingConfig(backbone_config=backbone, patch_size=patch, reassemble_hidden_size=hidden,
                               reassemble_factors=reassemble, neck_hidden_sizes=neck,
                               fusion_hidden_size=fusion, head_hidden_size=max(fusion // 2, 8)).to_dict()


@dataclass
class TzNetConfig:
    """Every hyper-parameter of a Tz network (stored in the checkpoint's ``config.json``).

    ``encoder``: a ``DepthAnythingConfig.to_dict()``; ``image_size``: crop side, px;
    ``decoder_*``: the query decoder; ``max_depth``: output bound, m; ``init_tz``: the
    output at initialisation, m; ``crop_scale``: crop side / max box side.
    """

    variant: str
    image_size: int
    encoder: dict
    decoder_dim: int
    decoder_heads: int
    decoder_layers: int = 2
    max_depth: float = 10.0
    init_tz: float = 0.8
    use_crop_info: bool = True
    freeze_backbone: bool = False
    freeze_neck: bool = False
    crop_scale: float = 1.25
    architecture: str = field(default=ARCHITECTURE)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TzNetConfig":
        return cls(**d)


def tz_config(variant: str, **overrides) -> TzNetConfig:
    """The named variant's config (``tiny``, ``small``, ``base``), with field overrides."""
    if variant == "tiny":
        cfg = TzNetConfig("tiny", 112, _dav2_config(112, 8, 64, 2, 4, [1, 2], [32, 64], 32, [1, 0.5]),
                          decoder_dim=64, decoder_heads=4)
    elif variant == "small":
        cfg = TzNetConfig("small", 518, _dav2_config(518, 14, 384, 12, 6, [3, 6, 9, 12], [48, 96, 192, 384], 64,
                                                     [4, 2, 1, 0.5]),
                          decoder_dim=256, decoder_heads=8, freeze_backbone=True, freeze_neck=True)
    elif variant == "base":
        cfg = TzNetConfig("base", 518, _dav2_config(518, 14, 768, 12, 12, [3, 6, 9, 12], [96, 192, 384, 768], 128,
                                                    [4, 2, 1, 0.5]),
                          decoder_dim=256, decoder_heads=8, freeze_backbone=True, freeze_neck=True)
    else:
        raise ValueError(f"unknown Tz variant {variant!r} (tiny, small, base)")
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise ValueError(f"unknown TzNetConfig field {key!r}")
        setattr(cfg, key, value)
    return cfg


def sine_positions(height: int, width: int, dim: int, device=None, dtype=torch.float32) -> Tensor:
    """(height·width, dim) fixed 2-D sine/cosine positional encoding (half the channels per axis)."""
    quarter = dim // 4
    freqs = torch.exp(-math.log(10000.0) * torch.arange(quarter, device=device, dtype=dtype) / max(quarter, 1))
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=dtype),
                            torch.arange(width, device=device, dtype=dtype), indexing="ij")
    parts = [f(c.reshape(-1, 1) * freqs) for c in (ys, xs) for f in (torch.sin, torch.cos)]
    out = torch.cat(parts, 1)
    return nn.functional.pad(out, (0, dim - out.shape[1]))


class TzNet(nn.Module):
    """Tz (m) from crops ``pixels`` (B, 3, S, S) ImageNet-normalised and ``crop_info`` (B, 7)."""

    def __init__(self, config: TzNetConfig, encoder: nn.Module | None = None) -> None:
        """``encoder``: a ``DepthAnythingForDepthEstimation`` (e.g. pretrained); default: built from config."""
        super().__init__()
        from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

        self.config = config
        if encoder is None:
            encoder = DepthAnythingForDepthEstimation(DepthAnythingConfig.from_dict(config.encoder))
        enc_cfg = encoder.config
        self.patch_size = int(enc_cfg.patch_size)
        self.backbone, self.neck = encoder.backbone, encoder.neck  # the depth head is not used
        fusion, d = int(enc_cfg.fusion_hidden_size), config.decoder_dim
        self.down = nn.Sequential(
            nn.Conv2d(fusion, d, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(d), nn.ReLU(inplace=True),
            nn.Conv2d(d, d, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(d), nn.ReLU(inplace=True))
        self.query = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.normal_(self.query, std=0.02)
        self.info_embed = nn.Sequential(nn.Linear(CROP_INFO_DIM + 3, d), nn.ReLU(), nn.Linear(d, d))
        layer = nn.TransformerDecoderLayer(d, config.decoder_heads, dim_feedforward=4 * d, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, config.decoder_layers, norm=nn.LayerNorm(d))
        self.out = nn.Linear(d, 1)
        nn.init.zeros_(self.out.weight)
        p = min(max(config.init_tz / config.max_depth, 1e-4), 1 - 1e-4)
        nn.init.constant_(self.out.bias, math.log(p / (1 - p)))  # sigmoid⁻¹(init_tz / max_depth)
        self.set_frozen(config.freeze_backbone, config.freeze_neck)

    def set_frozen(self, backbone: bool, neck: bool) -> None:
        for module, frozen in ((self.backbone, backbone), (self.neck, neck)):
            for p in module.parameters():
                p.requires_grad_(not frozen)

    def features(self, pixels: Tensor) -> Tensor:
        """(B, 3, S, S) -> finest DPT fusion map (B, F, h, w); S must be a multiple of the patch size."""
        maps = self.backbone.forward_with_filtered_kwargs(pixels).feature_maps
        ph, pw = pixels.shape[2] // self.patch_size, pixels.shape[3] // self.patch_size
        return self.neck(list(maps), ph, pw)[-1]

    def forward(self, pixels: Tensor, crop_info: Tensor) -> Tensor:
        """Returns Tz (B,), metres, in (0, max_depth)."""
        x = self.down(self.features(pixels))  # (B, d, h, w)
        b, d, h, w = x.shape
        memory = x.flatten(2).transpose(1, 2) + sine_positions(h, w, d, x.device, x.dtype)[None]
        query = self.query.expand(b, -1, -1)
        if self.config.use_crop_info:  # sizes also as logs: Tz ∝ 1/size at a given focal length
            sizes = torch.log(crop_info[:, 2:5].clamp_min(1e-4))
            query = query + self.info_embed(torch.cat([crop_info, sizes], 1))[:, None]
        z = self.out(self.decoder(query, memory))[:, 0, 0]
        return torch.sigmoid(z) * self.config.max_depth


def build_tz_net(config: TzNetConfig, encoder_path: str | None = None) -> TzNet:
    """A Tz network; ``encoder_path`` (local or ``gs://`` HF directory) gives pretrained DAv2 weights.

    With ``encoder_path`` the encoder's architecture comes from that directory's
    ``config.json`` (stored into ``config.encoder``, so the checkpoint rebuilds alone).
    """
    if encoder_path is None:
        return TzNet(config)
    from transformers import DepthAnythingForDepthEstimation  # optional, heavy

    with local_dir(encoder_path) as path:
        encoder = DepthAnythingForDepthEstimation.from_pretrained(path)
    config.encoder = encoder.config.to_dict()
    config.image_size = config.image_size - config.image_size % int(encoder.config.patch_size)
    return TzNet(config, encoder)
