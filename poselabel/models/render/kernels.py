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


def _jit(fn, inline: str = "never", fastmath: bool = False):
    return numba.njit(cache=True, nogil=True, inline=inline, fastmath=fastmath)(fn) if numba is not None else fn


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
def _coverage_contour(verts_px, sel, offset, v0, v1, opp_a, opp_b, dir_a, near, orientation, ids, rows, cnt, acc,
                      out):  # pragma: no cover - compiled
    h, w = out.shape[1], out.shape[2]
    first = np.empty(h, np.int64)  # per row, the first and last columns a crossing was counted at
    last = np.empty(h, np.int64)
    for k in range(out.shape[0]):
        vpx = verts_px[sel[k]]
        first[:] = w
        last[:] = -1
        n = cnt[k] if cnt[k] >= 0 else v0.shape[0]
        for j in range(n):
            e = ids[rows[k], j] if cnt[k] >= 0 else j
            a, b, c, d = v0[e], v1[e], opp_a[e], opp_b[e]
            if not (vpx[a, 2] > near and vpx[b, 2] > near):
                continue
            ax, ay = vpx[a, 0], vpx[a, 1]
            ex, ey = vpx[b, 0] - ax, vpx[b, 1] - ay
            if ey == 0.0:
                continue  # crosses no row centre (half-open rows)
            total = 0
            # Each front face adds +1 right of the crossing when it lies on the +x side of the
            # edge (its third vertex), else -1: the face's winding along the row.
            if vpx[c, 2] > near:
                sc = ex * (vpx[c, 1] - ay) - ey * (vpx[c, 0] - ax)
                area = sc * dir_a[e]
                if math.isfinite(area) and area * orientation < 0:
                    total += 1 if sc * ey < 0 else -1
            if d >= 0 and vpx[d, 2] > near:
                sd = ex * (vpx[d, 1] - ay) - ey * (vpx[d, 0] - ax)
                area = -sd * dir_a[e]
                if math.isfinite(area) and area * orientation < 0:
                    total += 1 if sd * ey < 0 else -1
            if total == 0:
                continue
            ax, ay = ax - offset[k, 0], ay - offset[k, 1]  # the render's pixel grid
            by = ay + ey  # rows py whose centre py + 0.5 lies in [min(ay, by), max(ay, by))
            r0 = int(math.ceil(max(min(ay, by) - 0.5, -1.0)))
            r1 = int(math.ceil(min(max(ay, by) - 0.5, h + 1.0))) - 1
            for py in range(max(r0, 0), min(r1, h - 1) + 1):
                xs = ax + (py + 0.5 - ay) * ex / ey - 0.5  # first column right of the crossing: ceil(xs)
                if xs <= w - 1:
                    col = int(math.ceil(xs)) if xs > 0 else 0
                    acc[py, col] += total
                    first[py] = min(first[py], col)
                    last[py] = max(last[py], col)
        # Each row's running sum between its first and last crossings (``out`` is zero before,
        # and on rows without one; after the last, the sum holds); ``acc`` is zeroed behind the
        # sum for the next mesh.
        for py in range(h):
            run = 0
            for px in range(first[py], last[py] + 1):
                run += acc[py, px]
                acc[py, px] = 0
                out[k, py, px] = 1 if run > 0 else 0
            if run > 0:
                out[k, py, last[py] + 1:] = 1


def coverage_contour(verts_px: np.ndarray, v0: np.ndarray, v1: np.ndarray, opp_a: np.ndarray, opp_b: np.ndarray,
                     dir_a: np.ndarray, height: int, width: int, near: float, orientation: int,
                     edge_lists=None, sel: np.ndarray | None = None, offset: np.ndarray | None = None) -> np.ndarray:
    """(N, H, W) bool: :func:`coverage` of a closed, consistently wound mesh with back faces
    culled (``orientation`` +1 / -1), from its edges (``edges.MeshEdges``: ends ``v0 <
    v1``, third vertices ``opp_a``, ``opp_b``, ``dir_a`` +1 where the first face runs
    ``v0 -> v1``) instead of its faces: along each row of pixel centres, the number of front
    faces covering a pixel is the sum of the signed crossings of the edges with one front face
    (an edge shared by two front faces cancels), so only the silhouette's contour and folds
    are scanned. The same coverage as :func:`coverage` up to pixel centres lying exactly on a
    contour (half-open rows and columns here, closed triangles there). ``edge_lists``: optional
    ``(ids (B, E), rows (N,), cnt (N,))``: mesh ``k`` scans only the edges ``ids[rows[k],
    :cnt[k]]`` (all where ``cnt[k] < 0``), those that are not shared by two faces both front or
    both back (``ActiveEdges`` in ``render/rigid.py``). ``sel`` (N,): the meshes are
    ``verts_px[sel]`` (default all); ``offset`` (N, 2) px: each is drawn moved by ``-offset``."""
    n = verts_px.shape[0] if sel is None else sel.shape[0]
    out = np.zeros((n, height, width), np.uint8)
    if n and v0.shape[0]:
        acc = np.zeros((height, width), np.int32)
        ids, rows, cnt = edge_lists or _all_edges(n)
        sel = np.arange(n, dtype=np.int64) if sel is None else np.ascontiguousarray(sel, np.int64)
        offset = np.zeros((n, 2)) if offset is None else np.ascontiguousarray(offset, np.float64)
        _coverage_contour(np.ascontiguousarray(verts_px, np.float64), sel, offset, v0, v1, opp_a, opp_b, dir_a,
                          float(near), int(orientation), ids, rows, cnt, acc, out)
    return out.view(bool)


def _all_edges(n: int):
    """``edge_lists`` that scan every edge of ``n`` meshes."""
    return np.zeros((1, 0), np.int32), np.zeros(n, np.int64), np.full(n, -1, np.int64)


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


@_inlined
def _clip(a, e, lo, hi, t_lo, t_hi):  # pragma: no cover - compiled
    """``[t_lo, t_hi]`` narrowed to where ``a + t e`` lies in ``[lo, hi]`` (empty: t_lo > t_hi)."""
    if e == 0.0:
        return (t_lo, t_hi) if lo <= a <= hi else (1.0, 0.0)
    t1, t2 = (lo - a) / e, (hi - a) / e
    return max(t_lo, min(t1, t2)), min(t_hi, max(t1, t2))


@_jit
def _edge_gradient(uv, z, v0, v1, opp_a, opp_b, cov, grad_out, near, probe, spacing, max_samples,
                   grad, rigid, cam, pgrad, ids, rows, cnt):  # pragma: no cover - compiled
    h, w = cov.shape[1], cov.shape[2]
    for k in range(uv.shape[0]):
        n = cnt[k] if cnt[k] >= 0 else v0.shape[0]
        for j in range(n):
            e = ids[rows[k], j] if cnt[k] >= 0 else j
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
            # Only samples within a pixel of the image can weigh anything (bilinear, zero outside):
            # the edge's part inside [-1, w + 1] x [-1, h + 1] (Liang-Barsky), same samples there.
            t_lo, t_hi = _clip(ax, ex, -1.0, w + 1.0, 0.0, 1.0)
            t_lo, t_hi = _clip(ay, ey, -1.0, h + 1.0, t_lo, t_hi)
            if t_lo > t_hi:
                continue
            for s in range(max(int(math.ceil(t_lo * n_s - 0.5)), 0), min(int(math.floor(t_hi * n_s - 0.5)), n_s - 1) + 1):
                t = (s + 0.5) / n_s
                sx, sy = ax + t * ex, ay + t * ey
                qx, qy = int(math.floor(sx + probe * nx)), int(math.floor(sy + probe * ny))
                if 0 <= qx < w and 0 <= qy < h and cov[k, qy, qx]:
                    continue  # the pixel just outside is covered: not on the silhouette
                g = _bilinear(grad_out, k, sx, sy) * piece
                if rigid:
                    _chain(pgrad, k, g * (1.0 - t) * nx, g * (1.0 - t) * ny, uv[k, a, 0], uv[k, a, 1], z[k, a], cam)
                    _chain(pgrad, k, g * t * nx, g * t * ny, uv[k, b, 0], uv[k, b, 1], z[k, b], cam)
                else:
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
                       float(probe), float(spacing), int(max_samples), grad, False, _NO_CAM, _NO_PGRAD,
                       *_all_edges(uv.shape[0]))
    return grad


# empty placeholders for the other output mode of _edge_gradient
_NO_CAM = np.zeros((0, 3), np.float64)
_NO_PGRAD = np.zeros((0, 6), np.float64)
_NO_GRAD = np.zeros((0, 0, 2), np.float64)


@_inlined
def _chain(pgrad, k, gu, gv, u, v, z, cam):  # pragma: no cover - compiled
    """Add a vertex's ``(dL/du, dL/dv)`` to mesh ``k``'s ``[Tx, Ty, Tz, f, cx, cy]`` gradient
    (``u = f (X + Tx) / (Z + Tz) + cx``, likewise ``v``; ``cam[k]`` is ``(f, cx, cy)``)."""
    f, cx, cy = cam[k, 0], cam[k, 1], cam[k, 2]
    inv = 1.0 / (z if abs(z) > 1e-9 else 1e-9)
    radial = gu * (u - cx) + gv * (v - cy)
    pgrad[k, 0] += gu * f * inv
    pgrad[k, 1] += gv * f * inv
    pgrad[k, 2] -= radial * inv
    if f != 0.0:
        pgrad[k, 3] += radial / f
    pgrad[k, 4] += gu
    pgrad[k, 5] += gv


@_jit
def _project_rigid(verts, rows, transl, cam, out):  # pragma: no cover - compiled
    for k in range(rows.shape[0]):
        r = rows[k]
        tx, ty, tz = transl[k, 0], transl[k, 1], transl[k, 2]
        f, cx, cy = cam[k, 0], cam[k, 1], cam[k, 2]
        for i in range(verts.shape[1]):
            z = float(verts[r, i, 2]) + tz
            inv = 1.0 / (z if abs(z) > 1e-9 else 1e-9)
            out[k, i, 0] = f * (float(verts[r, i, 0]) + tx) * inv + cx
            out[k, i, 1] = f * (float(verts[r, i, 1]) + ty) * inv + cy
            out[k, i, 2] = z


@_jit
def _bounds(px, out):  # pragma: no cover - compiled
    for k in range(px.shape[0]):
        lo_u, lo_v, hi_u, hi_v = math.inf, math.inf, -math.inf, -math.inf
        for i in range(px.shape[1]):
            u, v = px[k, i, 0], px[k, i, 1]
            if u != u or v != v:  # NaN: as torch's amin / amax, the bound is NaN
                lo_u = lo_v = hi_u = hi_v = math.nan
                break
            lo_u, hi_u = min(lo_u, u), max(hi_u, u)
            lo_v, hi_v = min(lo_v, v), max(hi_v, v)
        out[k, 0], out[k, 1], out[k, 2], out[k, 3] = lo_u, lo_v, hi_u, hi_v


def bounds(px: np.ndarray) -> np.ndarray:
    """(b, 4) ``[u_min, v_min, u_max, v_max]`` of projected points ``px`` (b, V, >= 2), NaN
    where any point is NaN (``px[..., :2].amin(1)``, ``.amax(1)`` of torch, 5x faster)."""
    out = np.empty((px.shape[0], 4), np.float64)
    _bounds(np.ascontiguousarray(px, np.float64), out)
    return out


def project_rigid(verts: np.ndarray, rows: np.ndarray, transl: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """(b, V, 3) float64 ``[u, v, z]`` (px, m) of the meshes ``verts[rows]`` (verts (B, V, 3), m)
    moved by ``transl`` (b, 3) m and seen through ``cam`` (b, 3) ``(f, cx, cy)`` px
    (``rasterize.project_points`` of ``verts[rows] + transl[:, None]``)."""
    out = np.empty((rows.shape[0], verts.shape[1], 3), np.float64)
    if rows.shape[0]:
        _project_rigid(np.ascontiguousarray(verts), np.ascontiguousarray(rows, np.int64),
                       np.ascontiguousarray(transl, np.float64), np.ascontiguousarray(cam, np.float64), out)
    return out


def edge_gradient_rigid(verts_px: np.ndarray, cam: np.ndarray, v0: np.ndarray, v1: np.ndarray, opp_a: np.ndarray,
                        opp_b: np.ndarray, cov: np.ndarray, grad_out: np.ndarray, near: float, probe: float,
                        spacing: float, max_samples: int, edge_lists=None) -> np.ndarray:
    """(b, 6) float64: :func:`edge_gradient` for ``verts_px`` (b, V, 3) ``[u, v, z]`` of rigidly
    moved meshes (:func:`project_rigid`), chained to each mesh's ``[Tx, Ty, Tz, f, cx, cy]``
    (``cam`` (b, 3) ``(f, cx, cy)``) without the (b, V, 2) per-vertex gradient; ``edge_lists``
    as :func:`coverage_contour` (every silhouette edge is in them)."""
    pgrad = np.zeros((verts_px.shape[0], 6), np.float64)
    if verts_px.shape[0] and v0.shape[0]:
        _edge_gradient(verts_px, verts_px[:, :, 2], v0, v1, opp_a, opp_b, np.ascontiguousarray(cov),
                       np.ascontiguousarray(grad_out, np.float64), float(near), float(probe), float(spacing),
                       int(max_samples), _NO_GRAD, True, np.ascontiguousarray(cam, np.float64), pgrad,
                       *(edge_lists or _all_edges(verts_px.shape[0])))
    return pgrad


_PLANE_SLACK = 1.0 + 1e-4  # the margin test's reach, widened past the float32 planes' rounding


@_jit
def _active_edges(verts, rows, transl, faces, face_a, face_b, rel_margin, near, t_ref, margin, ids, count,
                  status, planes, ready):  # pragma: no cover - compiled
    for k in range(rows.shape[0]):
        r = rows[k]
        tx, ty, tz = transl[k, 0], transl[k, 1], transl[k, 2]
        dx, dy, dz = tx - t_ref[r, 0], ty - t_ref[r, 1], tz - t_ref[r, 2]
        if dx * dx + dy * dy + dz * dz < margin[r] * margin[r]:
            continue  # (NaN: refreshed) the lists of mesh r hold for this translation
        m = rel_margin * math.sqrt(tx * tx + ty * ty + tz * tz)
        t_ref[r, 0], t_ref[r, 1], t_ref[r, 2], margin[r] = tx, ty, tz, m
        zmin = math.inf
        for i in range(verts.shape[1]):
            zmin = min(zmin, float(verts[r, i, 2]) + tz)
        if not (zmin > near + m and m > 0):
            count[r] = -1  # a vertex may reach the near plane (or no finite margin): every edge
            continue
        if not ready[r]:  # the faces' planes in the mesh's frame, once: a translation moves the centre alone
            for f in range(faces.shape[0]):
                i0, i1, i2 = faces[f, 0], faces[f, 1], faces[f, 2]
                x0, y0, z0 = float(verts[r, i0, 0]), float(verts[r, i0, 1]), float(verts[r, i0, 2])
                ax, ay, az = float(verts[r, i1, 0]) - x0, float(verts[r, i1, 1]) - y0, float(verts[r, i1, 2]) - z0
                bx, by, bz = float(verts[r, i2, 0]) - x0, float(verts[r, i2, 1]) - y0, float(verts[r, i2, 2]) - z0
                nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
                planes[r, f, 0], planes[r, f, 1], planes[r, f, 2] = nx, ny, nz
                planes[r, f, 3] = x0 * nx + y0 * ny + z0 * nz
                planes[r, f, 4] = math.sqrt(nx * nx + ny * ny + nz * nz)
            ready[r] = True
        for f in range(faces.shape[0]):
            pl = planes[r, f]
            # which side of the face's plane the camera centre is on: (v0 + T) . n
            side = float(pl[3]) + tx * float(pl[0]) + ty * float(pl[1]) + tz * float(pl[2])
            reach = m * float(pl[4]) * _PLANE_SLACK
            status[f] = 1 if side > reach else (-1 if side < -reach else 0)
        c = 0
        for e in range(face_a.shape[0]):
            sa = status[face_a[e]]
            sb = status[face_b[e]] if face_b[e] >= 0 else 0
            if sa == 0 or sb == 0 or sa != sb:
                ids[r, c] = e
                c += 1
        count[r] = c


def active_edges(verts: np.ndarray, rows: np.ndarray, transl: np.ndarray, faces: np.ndarray, face_a: np.ndarray,
                 face_b: np.ndarray, rel_margin: float, near: float, t_ref: np.ndarray, margin: np.ndarray,
                 ids: np.ndarray, count: np.ndarray, planes: np.ndarray, ready: np.ndarray) -> None:
    """Refresh, in place, the edge lists of the meshes ``verts[rows]`` (verts (B, V, 3) m) moved by
    ``transl`` (b, 3) m where it lies ``margin[r]`` or more from the ``t_ref[r]`` they were made
    for: the edges whose two faces (``face_a``, ``face_b``; -1: none) are not both seen from the
    same side by every camera centre within ``rel_margin * |transl|`` of the origin (each face's
    plane is farther than that from it) go to ``ids[r, :count[r]]``; ``count[r]`` -1 where a
    vertex may reach ``near``. Any translation within ``margin[r]`` of ``t_ref[r]`` sees every
    other edge's two faces both front or both back: on no contour, and the front pairs' row
    crossings cancel (``coverage_contour``). ``planes`` (B, F, 5) float32 ``[n, v0 . n, |n|]``
    of each mesh's faces in its own frame, made where ``ready`` (B,) bool is False (then set):
    a refresh reads them instead of the vertices (4x faster; their rounding, about 1e-6 of the
    margin, is covered by ``_PLANE_SLACK``)."""
    status = np.empty(faces.shape[0], np.int8)
    _active_edges(np.ascontiguousarray(verts), np.ascontiguousarray(rows, np.int64),
                  np.ascontiguousarray(transl, np.float64), np.ascontiguousarray(faces, np.int64), face_a, face_b,
                  float(rel_margin), float(near), t_ref, margin, ids, count, status, planes, ready)

