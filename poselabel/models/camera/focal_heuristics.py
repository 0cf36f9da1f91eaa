"""Focal-length heuristics of other methods (the baselines BLADE's solve is compared with).

Each maps an image size ``(width, height)`` in pixels to a focal length in pixels
(see /work/shared/ANCHORS.md): HMR 2.0 / TokenHMR ``5000 · max(W, H) / 256``,
CLIFF ``√(W² + H²)``, NLF ``max(W, H) / (2 · tan 27.5°)``.
"""
from __future__ import annotations

import math

import torch


def hmr2_focal(width: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
    """HMR 2.0: ``5000 · max(W, H) / 256`` px; (B,) sizes -> (B,)."""
    return 5000.0 * torch.maximum(width, height) / 256.0


def cliff_focal(width: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
    """CLIFF: the image diagonal ``√(W² + H²)`` px (about a 53° diagonal FoV)."""
    return torch.sqrt(width * width + height * height)


def nlf_focal(width: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
    """NLF: a 55° field of view on the longer side, ``max(W, H) / (2 · tan 27.5°)`` px."""
    return torch.maximum(width, height) / (2.0 * math.tan(math.radians(27.5)))


HEURISTICS = {"hmr2": hmr2_focal, "cliff": cliff_focal, "nlf": nlf_focal}
