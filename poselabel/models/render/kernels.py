"""Compiled CPU kernels (numba) for the rasterisers' hot loops, the same rules as their torch
versions (``rasterize.rasterize_coverage``, ``rasterize.rasterize_depth``,
``silhouette.edge_sample_gradient``).

The torch versions enumerate (face, pixel) pairs in tensors; a mesh of 25,000 faces at
64-192 px is mostly sub-pixel faces, where that enumeration's overhead dominates. These
loops visit each face once and each pixel of its box, in float64. They run where the
tensors are on the CPU and numba imports (``available()``); the torch versions serve CUDA
tensors and remain the reference (``tests/test_rasterize.py`` holds the two equal).

Conventions: ``verts_px`` (N, V, 3) ``[u, v, z]`` pixels (origin at the top-left corner of
the top-left pixel; pixel ``(x, y)`` sampled at its centre ``(x + 0.5, y + 0.5)``) and
metres; ``faces`` (F, 3) int64.
"""
from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError:  # the torch rasterisers serve instead
    numba = None


def available() -> bool:
    """Whether the compiled kernels can run (numba importable)."""
    return numba is not None


def _jit(fn, inline: str = "never"):
    return numba.njit(cache=True, nogil=True, inline=inline)(fn) if numba is not None else fn


def _inlined(fn):
    """A helper of the loops below, inlined into them (called per face, the coverage loop took 1.66x as long)."""
    return _jit(fn, "always")


@_inlined
def _face(vpx, k, faces, m, near, orientation, h, w):  # pragma: no cover - compiled
    """Face ``m`` of mesh ``k``: ``(ok, ax, ay, az, bx, by, bz, cx, cy, cz, area, x0, x1, y0, y1)``,
    ``ok`` False for a face with a vertex at ``z <= near``, a non-finite corner or no area, or,
    with ``orientation`` (+1 / -1, 0: none), a back face of a closed mesh; ``area`` twice the
    signed projected area, ``x0..y1`` the pixel box its centres may cover."""
    i0, i1, i2 = faces[m, 0], faces[m, 1], faces[m, 2]
    az, bz, cz = float(vpx[k, i0, 2]), float(vpx[k, i1, 2]), float(vpx[k, i2, 2])
    if not (az > near and bz > near and cz > near):
        return False, 0.0, 0.0, az, 0.0, 0.0, bz, 0.0, 0.0, cz, 0.0, 0, -1, 0, -1
    ax, ay = float(vpx[k, i0, 0]), float(vpx[k, i0, 1])
    bx, by = float(vpx[k, i1, 0]), float(vpx[k, i1, 1])
    cx, cy = float(vpx[k, i2, 0]), float(vpx[k, i2, 1])
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    if not math.isfinite(area) or area == 0.0 or (orientation != 0 and area * orientation >= 0):
        return False, ax, ay, az, bx, by, bz, cx, cy, cz, area, 0, -1, 0, -1
    x0 = max(int(math.ceil(min(ax, bx, cx) - 0.5)), 0)
    x1 = min(int(math.floor(max(ax, bx, cx) - 0.5)), w - 1)
    y0 = max(int(math.ceil(min(ay, by, cy) - 0.5)), 0)
    y1 = min(int(math.floor(max(ay, by, cy) - 0.5)), h - 1)
    return True, ax, ay, az, bx, by, bz, cx, cy, cz, area, x0, x1, y0, y1


@_jit
def _coverage(vpx, faces, near, orientation, out):  # pragma: no cover - compiled
    h, w = out.shape[1], out.shape[2]
    for k in range(vpx.shape[0]):
        for m in range(faces.shape[0]):
            ok, ax, ay, _, bx, by, _, cx, cy, _, area, x0, x1, y0, y1 = _face(vpx, k, faces, m, near, orientation,
                                                                              h, w)
            if not ok:
                continue
            s = 1.0 if area > 0 else -1.0
            for py in range(y0, y1 + 1):
                qy = py + 0.5
                for px in range(x0, x1 + 1):
                    qx = px + 0.5
                    if ((cx - bx) * (qy - by) - (cy - by) * (qx - bx)) * s >= 0 \
                            and ((ax - cx) * (qy - cy) - (ay - cy) * (qx - cx)) * s >= 0 \
                            and ((bx - ax) * (qy - ay) - (by - ay) * (qx - ax)) * s >= 0:
                        out[k, py, px] = 1


def coverage(verts_px: np.ndarray, faces: np.ndarray, height: int, width: int, near: float,
             orientation: int | None) -> np.ndarray:
    """(N, H, W) bool: which pixel centres a face of each mesh covers (faces with a vertex at
    ``z <= near`` or a non-finite corner skipped; with ``orientation`` (+1 / -1) the back
    faces of a closed mesh too, ``rasterize.rasterize_coverage``)."""
    out = np.zeros((verts_px.shape[0], height, width), np.uint8)
    if verts_px.shape[0] and faces.shape[0]:
        _coverage(np.ascontiguousarray(verts_px), np.ascontiguousarray(faces, np.int64), float(near),
                  int(orientation or 0), out)
    return out.view(bool)


@_jit
def _depth(vpx, faces, near, out):  # pragma: no cover - compiled
    h, w = out.shape[1], out.shape[2]
    for k in range(vpx.shape[0]):
        for m in range(faces.shape[0]):
            ok, ax, ay, az, bx, by, bz, cx, cy, cz, area, x0, x1, y0, y1 = _face(vpx, k, faces, m, near, 0, h, w)
            if not ok:
                continue
            s = 1.0 if area > 0 else -1.0
            for py in range(y0, y1 + 1):
                qy = py + 0.5
                for px in range(x0, x1 + 1):
                    qx = px + 0.5
                    w0 = (cx - bx) * (qy - by) - (cy - by) * (qx - bx)
                    w1 = (ax - cx) * (qy - cy) - (ay - cy) * (qx - cx)
                    w2 = (bx - ax) * (qy - ay) - (by - ay) * (qx - ax)
                    if w0 * s >= 0 and w1 * s >= 0 and w2 * s >= 0:
                        z = area / (w0 / az + w1 / bz + w2 / cz)  # perspective-correct depth
                        if z < out[k, py, px]:
                            out[k, py, px] = z


def depth(verts_px: np.ndarray, faces: np.ndarray, height: int, width: int, near: float) -> np.ndarray:
    """(N, H, W) float64: the nearest face's perspective-correct depth (m) at each pixel centre,
    ``+inf`` where none covers it (``rasterize.rasterize_faces``' depth; faces with a vertex at
    ``z <= near`` or a non-finite corner skipped)."""
    out = np.full((verts_px.shape[0], height, width), np.inf, np.float64)
    if verts_px.shape[0] and faces.shape[0]:
        _depth(np.ascontiguousarray(verts_px), np.ascontiguousarray(faces, np.int64), float(near), out)
    return out


@_jit
def _bilinear(img, k, x, y):  # pragma: no cover - compiled
    h, w = img.shape[1], img.shape[2]
    gx, gy = x - 0.5, y - 0.5
    fx0, fy0 = math.floor(gx), math.floor(gy)
    fx, fy = gx - fx0, gy - fy0
    x0, y0 = int(fx0), int(fy0)
    total = 0.0
    for dx in range(2):
        for dy in range(2):
            xi, yi = x0 + dx, y0 + dy
            if 0 <= xi < w and 0 <= yi < h:
                wgt = (fx if dx else 1.0 - fx) * (fy if dy else 1.0 - fy)
                total += img[k, yi, xi] * wgt
    return total


@_jit
def _edge_gradient(uv, z, v0, v1, opp_a, opp_b, cov, grad_out, near, probe, spacing, max_samples,
                   grad):  # pragma: no cover - compiled
    h, w = cov.shape[1], cov.shape[2]
    for k in range(uv.shape[0]):
        for e in range(v0.shape[0]):
            a, b, c, d = v0[e], v1[e], opp_a[e], opp_b[e]
            if not (z[k, a] > near and z[k, b] > near and z[k, c] > near):
                continue
            ax, ay = float(uv[k, a, 0]), float(uv[k, a, 1])
            ex, ey = float(uv[k, b, 0]) - ax, float(uv[k, b, 1]) - ay
            cx, cy = float(uv[k, c, 0]), float(uv[k, c, 1])
            side_c = ex * (cy - ay) - ey * (cx - ax)
            if side_c == 0.0 or not (math.isfinite(ex) and math.isfinite(ey)):
                continue
            if d >= 0:  # an inner edge is on the contour where its two faces fold onto one side
                if not z[k, d] > near:
                    continue
                side_d = ex * (float(uv[k, d, 1]) - ay) - ey * (float(uv[k, d, 0]) - ax)
                if not side_c * side_d > 0:
                    continue
            length = max(math.sqrt(ex * ex + ey * ey), 1e-12)
            nx, ny = ey / length, -ex / length  # outward: away from the face(s) on this edge
            if nx * (cx - ax) + ny * (cy - ay) > 0:
                nx, ny = -nx, -ny
            n_s = min(max(int(math.ceil(length / spacing)), 1), max_samples)
            piece = length / n_s
            for s in range(n_s):
                t = (s + 0.5) / n_s
                sx, sy = ax + t * ex, ay + t * ey
                qx, qy = int(math.floor(sx + probe * nx)), int(math.floor(sy + probe * ny))
                if 0 <= qx < w and 0 <= qy < h and cov[k, qy, qx]:
                    continue  # the pixel just outside is covered: not on the silhouette
                g = _bilinear(grad_out, k, sx, sy) * piece
                grad[k, a, 0] += g * (1.0 - t) * nx
                grad[k, a, 1] += g * (1.0 - t) * ny
                grad[k, b, 0] += g * t * nx
                grad[k, b, 1] += g * t * ny


def edge_gradient(uv: np.ndarray, z: np.ndarray, v0: np.ndarray, v1: np.ndarray, opp_a: np.ndarray,
                  opp_b: np.ndarray, cov: np.ndarray, grad_out: np.ndarray, near: float, probe: float,
                  spacing: float, max_samples: int) -> np.ndarray:
    """(B, V, 2) float64: ``silhouette.edge_sample_gradient`` for ``uv`` (B, V, 2) px, ``z``
    (B, V) m, the mesh's edges (E,) each (``opp_b`` -1 on boundary edges), the forward
    coverage (B, H, W) bool and the upstream gradient (B, H, W)."""
    grad = np.zeros((uv.shape[0], uv.shape[1], 2), np.float64)
    if uv.shape[0] and v0.shape[0]:
        _edge_gradient(np.ascontiguousarray(uv), np.ascontiguousarray(z), v0, v1, opp_a, opp_b,
                       np.ascontiguousarray(cov), np.ascontiguousarray(grad_out, np.float64), float(near),
                       float(probe), float(spacing), int(max_samples), grad)
    return grad
