"""SMPL-X pose and shape regressor on a person crop, conditioned on Tz ControlNet-style.

Base network (``controlnet=False``, or the frozen half of a ControlNet):

    crop (B, 3, S, S) [+ perspective map (B, 2, S, S)] ──► encoder: stem, 4 stages ──► pooled (B, C)
    [pooled, MLP(crop info)] ──► 3 iterative-error-feedback steps ──► betas (10) + 22 × 6-D rotations

ControlNet (``controlnet=True``, BLADE Sec. 3.3): the base is frozen (kept in eval
mode); a trainable copy of its encoder runs beside it; Tz (metres; embedded as
``[1/Tz, log Tz]``) enters the copy through two MLPs added to its stem and middle
features; after every stage ``i`` a **zero-initialised** projection ``Z_i`` adds
the copy's features into the base's: ``h_i = stage_i(h_{i−1}) + Z_i(c_i)``. With
every ``Z_i`` at zero the network reproduces the base exactly, for any Tz.
``conditioning="none"`` is the same architecture without the Tz MLPs (the
ablation). Without ControlNet, ``conditioning="tz"`` adds the Tz MLPs to the base
encoder itself.

Outputs (``forward``): ``betas`` (B, 10); ``global_orient`` (B, 3) axis-angle
model → camera frame; ``body_pose`` (B, 63) axis-angle of the 21 SMPL-X body
joints; ``rotmats`` (B, 22, 3, 3) the same rotations as matrices (for losses).

Variants (``pose_config``): ``tiny`` (GroupNorm CNN, 112 px, widths 16–128;
trains on a CPU), ``small`` (ViT-S/14 DINOv2 config, 224 px), ``base`` (ViT-B/14).
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from poselabel.models.geometry import matrix_to_axis_angle, rotation_6d_to_matrix
from poselabel.models.nets.crops import CROP_INFO_DIM, perspective_map

ARCHITECTURE = "pose_net"
NUM_ROT = 22  # global orientation + 21 body joints
NUM_PARAMS = 10 + NUM_ROT * 6


@dataclass
class PoseNetConfig:
    """Every hyper-parameter of a pose network (stored in the checkpoint's ``config.json``).

    ``backbone``: ``"cnn"`` (``widths``: stem + 4 stages) or ``"vit"`` (``vit``: a
    ``Dinov2Config`` dict, its layers split into 4 stages); ``conditioning``: ``"tz"`` or
    ``"none"``; ``controlnet``: frozen base + trainable copy + zero projections.
    """

    variant: str
    image_size: int
    backbone: str
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 128])
    vit: dict | None = None
    head_hidden: int = 256
    iterations: int = 3
    tz_embed_dim: int = 64
    conditioning: str = "tz"
    controlnet: bool = True
    use_perspective_map: bool = True
    crop_scale: float = 1.25
    architecture: str = field(default=ARCHITECTURE)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PoseNetConfig":
        return cls(**d)


def pose_config(variant: str, **overrides) -> PoseNetConfig:
    """The named variant's config (``tiny``, ``small``, ``base``), with field overrides."""
    if variant == "tiny":
        cfg = PoseNetConfig("tiny", 112, "cnn")
    elif variant in ("small", "base"):
        from transformers import Dinov2Config

        hidden, heads = (384, 6) if variant == "small" else (768, 12)
        vit = Dinov2Config(image_size=224, patch_size=14, hidden_size=hidden, num_hidden_layers=12,
                           num_attention_heads=heads, intermediate_size=4 * hidden).to_dict()
        cfg = PoseNetConfig(variant, 224, "vit", vit=vit, head_hidden=1024, tz_embed_dim=256,
                            use_perspective_map=False)
    else:
        raise ValueError(f"unknown pose variant {variant!r} (tiny, small, base)")
    for key, value in overrides.items():
        if not hasattr(cfg, key):
            raise ValueError(f"unknown PoseNetConfig field {key!r}")
        setattr(cfg, key, value)
    if cfg.conditioning not in ("tz", "none"):
        raise ValueError(f"conditioning must be 'tz' or 'none', not {cfg.conditioning!r}")
    return cfg


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    groups = min(8, cout // 4) or 1
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU(True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.GroupNorm(groups, cout), nn.ReLU(True))


class CnnEncoder(nn.Module):
    """Feature maps: stem (B, w0, S/2, S/2), stage i (B, w_{i+1}, S/2^{i+2}, ...)."""

    kind = "map"

    def __init__(self, widths: list[int], in_channels: int) -> None:
        super().__init__()
        self.stem = _block(in_channels, widths[0], 2)
        self.stages = nn.ModuleList(_block(widths[i], widths[i + 1], 2) for i in range(4))
        self.dims = list(widths)

    def pool(self, h: Tensor) -> Tensor:
        return h.mean((2, 3))

    @property
    def out_dim(self) -> int:
        return self.dims[-1]


class _LayerGroup(nn.Module):
    def __init__(self, layers) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, h: Tensor) -> Tensor:
        for layer in self.layers:
            h = layer(h)
        return h


class VitEncoder(nn.Module):
    """DINOv2 ViT from config: tokens (B, 1 + N, C); stem = patch embedding, 4 stages of layers."""

    kind = "tokens"

    def __init__(self, vit: dict) -> None:
        super().__init__()
        from transformers import Dinov2Config, Dinov2Model

        model = Dinov2Model(Dinov2Config.from_dict(vit))
        self.stem = model.embeddings
        layers = list(model.encoder.layer)
        n = len(layers)
        bounds = [round(i * n / 4) for i in range(5)]
        self.stages = nn.ModuleList(_LayerGroup(layers[bounds[i]:bounds[i + 1]]) for i in range(4))
        self.norm = model.layernorm
        width = model.config.hidden_size
        self.dims = [width] * 5

    def pool(self, h: Tensor) -> Tensor:
        h = self.norm(h)
        return torch.cat([h[:, 0], h[:, 1:].mean(1)], 1)

    @property
    def out_dim(self) -> int:
        return 2 * self.dims[-1]


def _project(kind: str, dim: int) -> nn.Module:
    layer = nn.Conv2d(dim, dim, 1) if kind == "map" else nn.Linear(dim, dim)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


def _add(kind: str, h: Tensor, v: Tensor) -> Tensor:
    """Add a per-sample vector v (B, C) to features h (maps (B, C, H, W) or tokens (B, T, C))."""
    return h + (v[:, :, None, None] if kind == "map" else v[:, None, :])


def tz_features(tz: Tensor) -> Tensor:
    """Tz (B,) metres -> (B, 2) ``[1/Tz, log Tz]`` (Tz clamped to ≥ 0.05 m)."""
    tz = tz.clamp_min(0.05)
    return torch.stack([1.0 / tz, torch.log(tz)], 1)


class TzEmbedding(nn.Module):
    """Two MLPs (BLADE) from ``tz_features`` to the stem (dim_in) and middle (dim_mid) channels."""

    def __init__(self, hidden: int, dim_in: int, dim_mid: int) -> None:
        super().__init__()
        self.to_in = nn.Sequential(nn.Linear(2, hidden), nn.SiLU(), nn.Linear(hidden, dim_in))
        self.to_mid = nn.Sequential(nn.Linear(2, hidden), nn.SiLU(), nn.Linear(hidden, dim_mid))

    def forward(self, tz: Tensor) -> tuple[Tensor, Tensor]:
        f = tz_features(tz)
        return self.to_in(f), self.to_mid(f)


class PoseHead(nn.Module):
    """Iterative error feedback from pooled features (B, C) and crop info (B, 7) to (B, 142) params."""

    def __init__(self, feat_dim: int, hidden: int, iterations: int) -> None:
        super().__init__()
        self.iterations = iterations
        self.info = nn.Sequential(nn.Linear(CROP_INFO_DIM, 64), nn.ReLU())
        self.mlp = nn.Sequential(nn.Linear(feat_dim + 64 + NUM_PARAMS, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, NUM_PARAMS))
        nn.init.normal_(self.mlp[-1].weight, std=1e-3)
        nn.init.zeros_(self.mlp[-1].bias)
        eye6 = torch.tensor([1.0, 0, 0, 0, 1, 0])
        upright = torch.tensor([1.0, 0, 0, 0, -1, 0])  # global_orient [π, 0, 0]: upright, facing the camera
        init = torch.cat([torch.zeros(10), upright, eye6.repeat(NUM_ROT - 1)])
        self.register_buffer("init_params", init)

    def forward(self, feat: Tensor, crop_info: Tensor) -> Tensor:
        x = torch.cat([feat, self.info(crop_info)], 1)
        params = self.init_params.expand(len(feat), -1)
        for _ in range(self.iterations):
            params = params + self.mlp(torch.cat([x, params], 1))
        return params


class PoseNet(nn.Module):
    """``forward(pixels (B,3,S,S), crop_info (B,7), tz (B,) m | None) -> dict`` (module docstring)."""

    def __init__(self, config: PoseNetConfig) -> None:
        super().__init__()
        self.config = config
        in_ch = 3 + (2 if config.use_perspective_map and config.backbone == "cnn" else 0)
        if config.backbone == "cnn":
            self.encoder = CnnEncoder(config.widths, in_ch)
        elif config.backbone == "vit":
            self.encoder = VitEncoder(config.vit)
        else:
            raise ValueError(f"unknown backbone {config.backbone!r}")
        self.head = PoseHead(self.encoder.out_dim, config.head_hidden, config.iterations)
        dims, kind = self.encoder.dims, self.encoder.kind
        self.tz_embed = (TzEmbedding(config.tz_embed_dim, dims[0], dims[2])
                         if config.conditioning == "tz" else None)
        self.copy = self.zero = None
        if config.controlnet:
            self.copy = copy.deepcopy(self.encoder)
            self.zero = nn.ModuleList(_project(kind, dims[i + 1]) for i in range(4))
            for p in self.base_parameters():
                p.requires_grad_(False)

    def base_parameters(self):
        """The base network's parameters (frozen under ControlNet)."""
        yield from self.encoder.parameters()
        yield from self.head.parameters()

    def load_base(self, state: dict[str, Tensor]) -> None:
        """Load a base network's weights (an unconditioned, non-ControlNet PoseNet state dict)
        into the base and, as ControlNet prescribes, into the trainable copy."""
        enc = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
        head = {k[len("head."):]: v for k, v in state.items() if k.startswith("head.")}
        self.encoder.load_state_dict(enc)
        self.head.load_state_dict(head)
        if self.copy is not None:
            self.copy.load_state_dict(enc)

    def train(self, mode: bool = True) -> "PoseNet":
        super().train(mode)
        if self.config.controlnet:  # the frozen base never changes mode
            self.encoder.eval()
            self.head.eval()
        return self

    def _input(self, pixels: Tensor, crop_info: Tensor) -> Tensor:
        if self.config.use_perspective_map and self.config.backbone == "cnn":
            return torch.cat([pixels, perspective_map(crop_info, pixels.shape[-1]).to(pixels.dtype)], 1)
        return pixels

    def forward(self, pixels: Tensor, crop_info: Tensor, tz: Tensor | None = None) -> dict[str, Tensor]:
        if self.tz_embed is not None and tz is None:
            raise ValueError("this network is conditioned on Tz: pass tz (B,) in metres")
        x = self._input(pixels, crop_info)
        kind, enc = self.encoder.kind, self.encoder
        emb_in, emb_mid = self.tz_embed(tz) if self.tz_embed is not None else (None, None)
        h = enc.stem(x)
        if self.copy is None:
            if emb_in is not None:
                h = _add(kind, h, emb_in)
            for i, stage in enumerate(enc.stages):
                h = stage(h)
                if i == 1 and emb_mid is not None:
                    h = _add(kind, h, emb_mid)
        else:
            c = self.copy.stem(x)
            if emb_in is not None:
                c = _add(kind, c, emb_in)
            for i, (stage, stage_c, zero) in enumerate(zip(enc.stages, self.copy.stages, self.zero)):
                c = stage_c(c)
                if i == 1 and emb_mid is not None:
                    c = _add(kind, c, emb_mid)
                h = stage(h) + zero(c)
        params = self.head(enc.pool(h), crop_info)
        return decode_params(params)


def decode_params(params: Tensor) -> dict[str, Tensor]:
    """(B, 142) ``[betas, 22 × 6-D]`` -> betas (B, 10), rotmats (B, 22, 3, 3), global_orient (B, 3),
    body_pose (B, 63) axis-angle."""
    rotmats = rotation_6d_to_matrix(params[:, 10:].reshape(-1, NUM_ROT, 6))
    aa = matrix_to_axis_angle(rotmats)
    return {"betas": params[:, :10], "rotmats": rotmats, "global_orient": aa[:, 0],
            "body_pose": aa[:, 1:].reshape(-1, 63)}


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
