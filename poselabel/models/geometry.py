"""Batched rotation helpers (torch), any leading batch shape ``...``.

- axis-angle: ``(..., 3)``, the rotation axis times the angle in radians;
- rotation matrix: ``(..., 3, 3)``, acting on column vectors (``x' = R @ x``);
- 6D: ``(..., 6)``, the first two columns of the matrix, ``[R[:, 0], R[:, 1]]``
  (Zhou et al., "On the Continuity of Rotation Representations", CVPR 2019).
"""
from __future__ import annotations

import torch
from torch import Tensor


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rodrigues' formula: ``(..., 3)`` -> ``(..., 3, 3)``; exact at angle 0 (Taylor terms)."""
    angle2 = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    angle = torch.sqrt(angle2.clamp_min(1e-24))
    small = angle2 < 1e-8
    # sin(a)/a and (1 - cos a)/a^2, with their series near 0.
    a = torch.where(small, 1.0 - angle2 / 6.0, torch.sin(angle) / angle)
    b = torch.where(small, 0.5 - angle2 / 24.0, (1.0 - torch.cos(angle)) / angle2.clamp_min(1e-24))
    k = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand(k.shape)
    return eye + a * k + b * (k @ k)


def matrix_to_axis_angle(matrix: Tensor) -> Tensor:
    """``(..., 3, 3)`` -> ``(..., 3)`` with angle in [0, pi]; stable near 0 and pi."""
    m = matrix
    cos = ((m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2] - 1.0) * 0.5).clamp(-1.0, 1.0)
    vee = torch.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1)
    sin = 0.5 * vee.norm(dim=-1)
    angle = torch.atan2(sin, cos)
    # Generic case: axis from the antisymmetric part.
    factor = torch.where(sin.abs() > 1e-4, angle / (2.0 * sin.clamp_min(1e-12)), 0.5 + angle ** 2 / 12.0)
    out = vee * factor[..., None]
    # Near pi: axis from the symmetric part (largest diagonal of (R + I) / 2), sign from vee.
    near_pi = angle > 2.5
    if bool(near_pi.any()):
        eye = torch.eye(3, dtype=m.dtype, device=m.device)
        # Symmetric part = cos I + (1 - cos) n n^T.
        sym = ((m + m.transpose(-1, -2)) * 0.5 - cos[..., None, None] * eye) / (1.0 - cos[..., None, None]).clamp_min(1e-12)
        col = torch.argmax(torch.diagonal(sym, dim1=-2, dim2=-1), -1)
        axis = torch.gather(sym, -1, col[..., None, None].expand(*col.shape, 3, 1)).squeeze(-1)
        axis = axis / axis.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        sign = torch.where((axis * vee).sum(-1, keepdim=True) < 0, -1.0, 1.0)
        out = torch.where(near_pi[..., None], axis * sign * angle[..., None], out)
    return out


def rotation_6d_to_matrix(d6: Tensor) -> Tensor:
    """``(..., 6)`` -> ``(..., 3, 3)`` by Gram-Schmidt on the two columns."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(matrix: Tensor) -> Tensor:
    """``(..., 3, 3)`` -> ``(..., 6)``: the first two columns."""
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


def skew(v: Tensor) -> Tensor:
    """``(..., 3)`` -> ``(..., 3, 3)`` cross-product matrix: ``skew(v) @ x == cross(v, x)``."""
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape[:-1], 3, 3)
