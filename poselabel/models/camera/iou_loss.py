"""The descent's loss, ``1 - soft_iou(blur(silhouette * valid), target)``, as one compiled pass.

``solver._descend`` scores every step's silhouettes by the Tanimoto soft IoU of the blurred,
evidence-cut render against the blurred target (``windows.gaussian_blur``, ``windows.soft_iou``).
In torch that is two dense (n, n) matrix products for a blur whose kernel has 7-13 taps, each
way, and a dozen elementwise operations whose backward autograd records: per person and step
more than the silhouette's own render at 128-192 px (2026-12-07). Here the blur runs its taps
(separable, zero padding, the same normalised kernel as ``windows._blur_band``) and the IoU and
its gradient are summed in the same loops; the backward pass blurs the IoU's gradient (the blur
is its own adjoint: a symmetric kernel with zero padding) and cuts it to the evidence.

Runs where the tensors are on the CPU, numba imports and the form is Tanimoto (``usable``);
``blurred_iou_loss`` falls back to the torch operations otherwise, and they remain the
reference (``tests/test_camera_solver.py`` holds the two equal, values and gradients).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from poselabel.models.camera import windows as cc
from poselabel.models.render import kernels


@functools.lru_cache(maxsize=16)
def _taps(sigma: float) -> np.ndarray:
    """The 1-D Gaussian of ``windows._blur_band``: (2 r + 1,) float32, ``r = ceil(3 sigma)``."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / np.float32(sigma)) ** 2).astype(np.float32)
    return k / k.sum(dtype=np.float32)


def _jit(fn, inline: str = "never"):
    # fastmath: the taps' and the sums' loops vectorise (reassociated: last-bit differences)
    return kernels.numba.njit(cache=True, nogil=True, fastmath=True, inline=inline)(fn) if kernels.available() else fn


def _blur(src, g, tmp, out):  # pragma: no cover - compiled
    """``out = blur(src)`` for one (H, W) image: rows, then columns (``tmp`` (H, W) scratch).
    Each tap adds a shifted row in place, through slices: loops over a range from 0, which the
    compiler vectorises (a computed index ``x + off`` may be negative, and did not: 6x slower)."""
    h, w = src.shape
    r = (g.shape[0] - 1) // 2
    for y in range(h):
        row = tmp[y]
        row[:] = 0.0
        line = src[y]
        for t in range(2 * r + 1):
            off = t - r
            gt = g[t]
            lo, hi = max(0, -off), min(w, w - off)
            acc, add = row[lo:hi], line[lo + off:hi + off]
            for i in range(hi - lo):
                acc[i] += gt * add[i]
    for y in range(h):
        row = out[y]
        row[:] = 0.0
        for t in range(max(0, y - r), min(h - 1, y + r) + 1):
            gt = g[t - y + r]
            add = tmp[t]
            for i in range(w):
                row[i] += gt * add[i]


_blur = _jit(_blur, "always")


@_jit
def _forward(sil, valid, target, g, cover_weight, pred):  # pragma: no cover - compiled
    """Per person: ``pred = blur(sil * valid)`` (written), and ``(inter, union)`` (N, 2) float64."""
    n, h, w = sil.shape
    sums = np.zeros((n, 2))
    cut = np.empty((h, w), dtype=np.float32)
    tmp = np.empty((h, w), dtype=np.float32)
    for k in range(n):
        for y in range(h):
            for x in range(w):
                cut[y, x] = sil[k, y, x] * valid[k, y, x]
        _blur(cut, g, tmp, pred[k])
        inter = 0.0
        union = 0.0
        for y in range(h):
            for x in range(w):
                p = float(pred[k, y, x])
                q = float(target[k, y, x])
                d = p - q
                inter += p * q
                union += p * q + (d * d if d > 0 else cover_weight * d * d)
        sums[k, 0] = inter
        sums[k, 1] = union
    return sums


@_jit
def _backward(pred, valid, target, sums, grad_loss, cover_weight, g, out):  # pragma: no cover - compiled
    """``out = valid * blur(d loss / d pred)`` per person, ``loss = 1 - inter / max(union, 1e-9)``."""
    n, h, w = pred.shape
    dp = np.empty((h, w), dtype=np.float32)
    tmp = np.empty((h, w), dtype=np.float32)
    for k in range(n):
        inter, union = sums[k, 0], sums[k, 1]
        clamped = union < 1e-9
        u = max(union, 1e-9)
        # d(1 - I / U) = -(dI U - I dU) / U^2; U's gradient is zero where the clamp holds.
        a = -float(grad_loss[k]) / u
        c = 0.0 if clamped else float(grad_loss[k]) * inter / (u * u)
        for y in range(h):
            for x in range(w):
                p = float(pred[k, y, x])
                q = float(target[k, y, x])
                d = p - q
                du = q + (2.0 * d if d > 0 else 2.0 * cover_weight * d)
                dp[y, x] = a * q + c * du
        _blur(dp, g, tmp, out[k])
        for y in range(h):
            for x in range(w):
                out[k, y, x] *= valid[k, y, x]


class _BlurredTanimoto(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sil, valid, target, sigma, cover_weight):
        s, v, t = (np.ascontiguousarray(a.detach().numpy(), dtype=np.float32) for a in (sil, valid, target))
        g = _taps(float(sigma))
        pred = np.empty_like(s)
        sums = _forward(s, v, t, g, float(cover_weight), pred)
        ctx.state = (pred, v, t, sums, g, float(cover_weight))
        iou = sums[:, 0] / np.maximum(sums[:, 1], 1e-9)
        return torch.from_numpy((1.0 - iou).astype(np.float32)).to(sil.dtype)

    @staticmethod
    def backward(ctx, grad_loss):
        pred, v, t, sums, g, cw = ctx.state
        out = np.empty_like(pred)
        _backward(pred, v, t, sums, np.ascontiguousarray(grad_loss.numpy(), dtype=np.float64), cw, g, out)
        return torch.from_numpy(out).to(grad_loss.dtype), None, None, None, None


def usable(sil: torch.Tensor, form: str, sigma: float) -> bool:
    """Whether the compiled loss serves these operands (else the torch operations do)."""
    return kernels.available() and sil.device.type == "cpu" and form == "tanimoto" and sigma > 0


def blurred_iou_loss(sil: torch.Tensor, valid: torch.Tensor, target: torch.Tensor, sigma: float,
                     form: str = "tanimoto", cover_weight: float = 1.0) -> torch.Tensor:
    """``1 - windows.soft_iou(windows.gaussian_blur(sil * valid, sigma), target, 1, form, cover_weight)``.

    Args:
        sil: (B, H, W) silhouettes in [0, 1] (differentiable); valid: (B, H, W) evidence weights;
        target: (B, H, W) the blurred, evidence-cut target; sigma: blur (px of this grid).

    Returns:
        (B,) loss, differentiable w.r.t. ``sil``.
    """
    if usable(sil, form, sigma):
        return _BlurredTanimoto.apply(sil, valid, target, sigma, cover_weight)
    pred = cc.gaussian_blur(sil * valid, sigma)
    return 1.0 - cc.soft_iou(pred, target, torch.ones_like(pred), form, cover_weight)
