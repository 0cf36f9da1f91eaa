"""Compiled CPU kernels (numba) of the camera solve's hot loops, beside their torch versions.

**The descent's loss** (``blurred_tanimoto``, through ``windows.blurred_iou_loss``):
``solver._descend`` scores every step's
silhouettes by the Tanimoto soft IoU of the blurred, evidence-cut render against the blurred
target (``windows.gaussian_blur``, ``windows.soft_iou``). In torch that is two dense (n, n)
matrix products for a blur whose kernel has 7-13 taps, each way, and a dozen elementwise
operations whose backward autograd records: per person and step more than the silhouette's own
render at 128-192 px (2026-12-07). Here the blur runs its taps (separable, zero padding, the
same normalised kernel as ``windows._blur_band``) and the IoU and its gradient are summed in the
same loops; the backward pass blurs the IoU's gradient (the blur is its own adjoint: a
symmetric kernel with zero padding) and cuts it to the evidence.

**The shift search's scores** (``best_shifts``): ``start.shift_search`` turns its two
correlations into the IoU of every shift, less the keypoint penalty, and takes the best: in
torch a dozen passes over (b, P, P) arrays; here one, in float32 and the torch path's order of
operations (the same argmax).

Both run where the tensors are on the CPU and numba imports; the torch operations serve CUDA
(and the BLADE form of the loss) and remain the reference (``tests/test_camera_solver.py``,
``tests/test_camera_start.py`` hold the two equal).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from poselabel.models.render import kernels


def available() -> bool:
    """Whether the compiled kernels can run (numba importable)."""
    return kernels.available()


@functools.lru_cache(maxsize=16)
def _taps(sigma: float) -> np.ndarray:
    """The 1-D Gaussian of ``windows._blur_band``: (2 r + 1,) float32, ``r = ceil(3 sigma)``."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    k = np.exp(-0.5 * (x / np.float32(sigma)) ** 2).astype(np.float32)
    return k / k.sum(dtype=np.float32)


def _fast(fn, inline: str = "never"):
    # fastmath: the taps' and the sums' loops vectorise (reassociated: last-bit differences)
    return kernels._jit(fn, inline, fastmath=True)


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


_blur = _fast(_blur, "always")


@_fast
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


@_fast
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


def blurred_tanimoto(sil: torch.Tensor, valid: torch.Tensor, target: torch.Tensor, sigma: float,
                     cover_weight: float = 1.0) -> torch.Tensor:
    """``1 -`` the Tanimoto soft IoU of ``blur(sil * valid, sigma)`` and ``target``, compiled
    (where ``usable``; ``windows.blurred_iou_loss`` dispatches): sil, valid, target (B, H, W)
    -> (B,), differentiable w.r.t. ``sil``."""
    return _BlurredTanimoto.apply(sil, valid, target, sigma, cover_weight)


@kernels._jit  # no fastmath: float32 operations in the torch path's order (the same argmax)
def _best_shifts(corr, area_t, cover_weight, zero, kp_on, offk, oxk, oyk, mean, msq, kp_weight, box_side,
                 best, score, score0):  # pragma: no cover - compiled
    n, _, p, _ = corr.shape
    eps, two, nil = np.float32(1e-6), np.float32(2.0), np.float32(0.0)
    cw = np.float32(cover_weight)
    row = np.empty(p, dtype=np.float32)
    for k in range(n):
        at = area_t[k]
        zy, zx = zero[k] // p, zero[k] % p
        bi, bv = -1, nil
        for y in range(p):
            inter, area = corr[k, 0, y], corr[k, 1, y]
            if cover_weight == 1.0:
                for x in range(p):
                    den = area[x] + at - inter[x]
                    row[x] = inter[x] / (den if den > eps else eps)
            else:
                for x in range(p):
                    den = area[x] + cw * (at - inter[x])
                    row[x] = inter[x] / (den if den > eps else eps)
            if kp_on[k]:
                sy = offk[k, y] - oyk[k]
                for x in range(p):
                    sx = offk[k, x] - oxk[k]
                    sq = msq[k] + two * (sx * mean[k, 0] + sy * mean[k, 1]) + sx * sx + sy * sy
                    row[x] = row[x] - kp_weight * np.sqrt(sq if sq > nil else nil) / box_side[k]
            for x in range(p):
                v = row[x]
                if bi < 0 or v > bv or (v != v and bv == bv):  # torch.argmax: the first maximum, NaN above all
                    bi, bv = y * p + x, v
            if y == zy:
                score0[k] = row[zx]
        best[k] = bi
        score[k] = bv


def best_shifts(corr: torch.Tensor, area_t: torch.Tensor, cover_weight: float, zero: torch.Tensor, penalty=None):
    """The best shift of each of b searches, as ``start.shift_search`` scores them.

    Args:
        corr: (b, 2, P, P) float32 correlations of each render with the window's target
            (``inter``) and with its evidence weights (``area``), every shift's index ``y P + x``.
        area_t: (b,) the target's area seen by the weights; ``cover_weight`` as ``windows.soft_iou``.
        zero: (b,) long, the index of the shift the render was drawn at.
        penalty: None, or the keypoint penalty's ``(on (b,) bool, offk (b, P), oxk (b,), oyk (b,),
            mean (b, 2), msq (b,), weight (float), box_side (b,))``: the score at index ``(y, x)``
            loses ``weight sqrt(msq + 2 (sx mean_x + sy mean_y) + sx^2 + sy^2) / box_side`` with
            ``sx = offk[x] - oxk``, ``sy = offk[y] - oyk`` (px) where ``on``.

    Returns:
        ``(best (b,) long index, score (b,), score at ``zero`` (b,))``, float32 scores.
    """
    b, _, p, _ = corr.shape
    best, score, score0 = np.empty(b, dtype=np.int64), np.empty(b, dtype=np.float32), np.empty(b, dtype=np.float32)
    f32 = np.float32
    if penalty is None:
        on, offk, oxk, oyk = np.zeros(b, dtype=np.bool_), np.zeros((b, p), f32), np.zeros(b, f32), np.zeros(b, f32)
        mean, msq, weight, box_side = np.zeros((b, 2), f32), np.zeros(b, f32), 0.0, np.ones(b, f32)
    else:
        on, offk, oxk, oyk, mean, msq, weight, box_side = penalty
        on = on.numpy()
        offk, oxk, oyk, mean, msq, box_side = (np.ascontiguousarray(t.detach().numpy(), dtype=f32)
                                               for t in (offk, oxk, oyk, mean, msq, box_side))
    _best_shifts(np.ascontiguousarray(corr.numpy()), area_t.detach().numpy().astype(f32), float(cover_weight),
                 zero.numpy(), on, offk, oxk, oyk, mean, msq, f32(weight), box_side, best, score, score0)
    return torch.from_numpy(best), torch.from_numpy(score), torch.from_numpy(score0)


@kernels._inlined
def _axis(g, size):  # pragma: no cover - compiled
    """``windows.MaskTables._axis`` for one coordinate: (corner index, next corner, fraction)."""
    g = min(max(g, 0.0), float(size))
    i = min(int(math.floor(g)), max(size - 1, 0))
    f = g - i
    return i, min(i + 1, size), min(max(f, 0.0), 1.0)


@kernels._jit  # no fastmath: float64 operations in the torch path's order (the same values)
def _mask_crops(flat, base, stride, origin, size, x0, y0, side, res, out):  # pragma: no cover - compiled
    n = res + 1
    ix, ix1, iy, iy1 = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)
    fx, fy = np.empty(n), np.empty(n)
    integ = np.empty((n, n))
    for k in range(out.shape[0]):
        step = side[k] / res
        for i in range(n):
            edge = i * step
            ix[i], ix1[i], fx[i] = _axis(x0[k] + edge - origin[k, 0], size[k, 0])
            iy[i], iy1[i], fy[i] = _axis(y0[k] + edge - origin[k, 1], size[k, 1])
        b0, st = base[k], stride[k]
        for j in range(n):
            r0, r1 = b0 + iy[j] * st, b0 + iy1[j] * st
            gy, hy = 1 - fy[j], fy[j]
            for i in range(n):
                gx, hx = 1 - fx[i], fx[i]
                integ[j, i] = (float(flat[r0 + ix[i]]) * gx * gy + float(flat[r0 + ix1[i]]) * hx * gy
                               + float(flat[r1 + ix[i]]) * gx * hy + float(flat[r1 + ix1[i]]) * hx * hy)
        area = step ** 2
        for j in range(res):
            for i in range(res):
                cell = integ[j + 1, i + 1] - integ[j, i + 1] - integ[j + 1, i] + integ[j, i]
                out[k, j, i] = min(max(cell / area, 0.0), 1.0)


def mask_crops(flat, base, stride, origin, size, x0, y0, side, res: int) -> torch.Tensor:
    """``windows.MaskTables.crops`` on the CPU (its tables' tensors and the crops' ``x0, y0,
    side`` (b,) px): (b, res, res) float64, the same values, one pass with no (b, res + 1,
    res + 1) index or gather tensors."""
    out = np.empty((x0.shape[0], res, res))
    _mask_crops(flat.numpy(), base.numpy(), stride.numpy(), origin.numpy(), size.numpy(),
                *(np.ascontiguousarray(t.detach().numpy(), np.float64) for t in (x0, y0, side)), int(res), out)
    return torch.from_numpy(out)
