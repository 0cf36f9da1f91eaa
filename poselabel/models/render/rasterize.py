"""Hard triangle rasterisation in pure PyTorch (CPU and GPU), no Beam.

Conventions (docs/architecture.md): pixel coordinates ``(u, v)`` have their
origin at the top-left corner of the top-left pixel, so pixel ``(x, y)`` (column,
row) has its centre at ``(x + 0.5, y + 0.5)`` and is covered by a triangle when
that centre is inside it (edges inclusive). Depth ``z`` is the camera-frame
z of the OpenCV frame (metres, forward positive).

Design: every face is tested only against the pixels of its own bounding box.
Faces are grouped by bounding-box size into power-of-two windows (1, 2, 4, ...
pixels a side); each group is evaluated as one ``faces x window`` tensor, in
chunks of bounded size. There is no Python loop over faces and no dense
``pixels x faces`` tensor. The z-buffer is a ``scatter_reduce(..., "amin")`` of
the candidates' depths, then a second pass picks, among the candidates at the
winning depth, the smallest face index (deterministic ties).

The differentiable silhouette rasterisers built on these candidates live in
``poselabel/models/render/silhouette.py``.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from poselabel.models.render import kernels

# Largest number of (face, pixel) pairs evaluated at once.
_MAX_PAIRS = 1 << 22

_renders = [0]  # meshes rasterised by this process (one mesh at one size counts one)


def render_count() -> int:
    """How many meshes this process has rasterised so far, by any rasteriser of this package
    (hard coverage, face ids, differentiable silhouettes): a cost measure independent of the
    machine (``poselabel bench camera``'s ``renders_per_person``)."""
    return _renders[0]


def count_renders(n: int) -> None:
    """Add ``n`` rasterised meshes to :func:`render_count` (rasterisers call it)."""
    _renders[0] += int(n)


def face_pixel_candidates(
    tri_uv: torch.Tensor, height: int, width: int, margin: float = 0.0,
    max_pairs: int = _MAX_PAIRS,
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Enumerate, per face, the pixels whose centres lie in its (dilated) bounding box.

    Args:
        tri_uv: (M, 3, 2) float, the faces' vertices in pixels ``[u, v]``; all finite.
        height, width: image size in pixels.
        margin: bounding boxes are dilated by this many pixels on each side.
        max_pairs: bound on the number of pairs in one yielded chunk.

    Yields:
        ``(face, px, py)``: ``face`` (n,) long, rows of ``tri_uv``; ``px, py`` (n, s*s)
        long pixel column/row of each face's window, ``-1`` where the window
        cell is outside the face's clipped box (callers must mask those).
    """
    device = tri_uv.device
    a, b, c = tri_uv[:, 0], tri_uv[:, 1], tri_uv[:, 2]
    lo = torch.minimum(torch.minimum(a, b), c) - margin  # (M, 2)
    hi = torch.maximum(torch.maximum(a, b), c) + margin
    # Pixel x is in the box when lo <= x + 0.5 <= hi.
    x0 = torch.ceil(lo[:, 0] - 0.5).clamp(min=0)
    x1 = torch.floor(hi[:, 0] - 0.5).clamp(max=width - 1)
    y0 = torch.ceil(lo[:, 1] - 0.5).clamp(min=0)
    y1 = torch.floor(hi[:, 1] - 0.5).clamp(max=height - 1)
    ex = (x1 - x0 + 1).clamp(min=0)
    ey = (y1 - y0 + 1).clamp(min=0)
    keep = (ex > 0) & (ey > 0)
    ids = torch.nonzero(keep).squeeze(1)
    if ids.numel() == 0:
        return
    x0, y0, ex, ey = x0[ids].long(), y0[ids].long(), ex[ids].long(), ey[ids].long()
    side = torch.maximum(ex, ey)
    # Window size per face: next power of two >= side.
    bucket = torch.ceil(torch.log2(side.double())).long().clamp(min=0)
    for b in torch.unique(bucket).tolist():
        sel = torch.nonzero(bucket == b).squeeze(1)
        s = 1 << b
        grid = torch.arange(s * s, device=device)
        dx, dy = grid % s, grid // s
        step = max(1, max_pairs // (s * s))
        for start in range(0, sel.numel(), step):
            part = sel[start:start + step]
            px = x0[part, None] + dx
            py = y0[part, None] + dy
            inside = (dx < ex[part, None]) & (dy < ey[part, None])
            yield ids[part], torch.where(inside, px, -1), torch.where(inside, py, -1)


def edge_functions(tri_uv: torch.Tensor, qx: torch.Tensor, qy: torch.Tensor):
    """Barycentric edge functions of points against triangles.

    Args:
        tri_uv: (n, 3, 2) triangles in pixels.
        qx, qy: (n, k) query points in pixels.

    Returns:
        ``(w0, w1, w2, area)``: (n, k) each (area (n, 1)); ``w_i`` is twice the
        signed area of the sub-triangle opposite vertex ``i``, ``area`` twice
        the triangle's signed area, so that ``w_i / area`` are the barycentrics.
    """
    ax, ay = tri_uv[:, 0, 0:1], tri_uv[:, 0, 1:2]
    bx, by = tri_uv[:, 1, 0:1], tri_uv[:, 1, 1:2]
    cx, cy = tri_uv[:, 2, 0:1], tri_uv[:, 2, 1:2]
    w0 = (cx - bx) * (qy - by) - (cy - by) * (qx - bx)
    w1 = (ax - cx) * (qy - cy) - (ay - cy) * (qx - cx)
    w2 = (bx - ax) * (qy - ay) - (by - ay) * (qx - ax)
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    return w0, w1, w2, area


def _inside(w0, w1, w2, area) -> torch.Tensor:
    sgn = torch.sign(area)
    return (area != 0) & (w0 * sgn >= 0) & (w1 * sgn >= 0) & (w2 * sgn >= 0)


def gather_vertices(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values[:, index]`` for (N, V, C) values and a flat long index (K,) -> (N, K, C).

    A row gather on the flattened batch (``F.embedding``), several times faster on CPU
    than advanced indexing or ``index_select`` along dim 1.
    """
    n, nv, c = values.shape
    flat = (torch.arange(n, device=values.device)[:, None] * nv + index[None]).reshape(-1)
    return torch.nn.functional.embedding(flat, values.reshape(n * nv, c)).view(n, -1, c)


def _rows(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``t[index]`` for a float tensor (M, ...) via ``F.embedding`` (fast row gather)."""
    return torch.nn.functional.embedding(index, t.reshape(t.shape[0], -1)).view(-1, *t.shape[1:])


def _valid_faces(verts_px: torch.Tensor, faces: torch.Tensor, near: float):
    """Faces kept for rasterisation: finite, all vertices in front of ``near``.

    Returns ``(item (M,), face (M,), tri (M, 3, 3))`` over the flattened batch.
    """
    n, nf = verts_px.shape[0], faces.shape[0]
    tri = gather_vertices(verts_px, faces.reshape(-1)).view(n * nf, 3, 3)
    ok_v = torch.isfinite(verts_px).all(dim=2) & (verts_px[..., 2] > near)  # (N, V)
    if bool(ok_v.all()):
        item = torch.arange(n, device=faces.device).repeat_interleave(nf)
        face = torch.arange(nf, device=faces.device).repeat(n)
        return item, face, tri
    ok = ok_v[:, faces].all(dim=2)  # (N, F)
    keep = torch.nonzero(ok.view(-1)).squeeze(1)
    return keep // nf, keep % nf, _rows(tri, keep)


def rasterize_faces(verts_px: torch.Tensor, faces: torch.Tensor, height: int, width: int,
                    *, near: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Hard z-buffer rasterisation of a batch of meshes.

    Args:
        verts_px: (N, V, 3) float, vertices as ``[u, v, z]``: pixels (top-left
            corner origin) and camera-frame depth in metres.
        faces: (F, 3) long vertex indices, shared by the batch. Several people in
            one image: concatenate their meshes (offset the faces).
        height, width: output size in pixels.
        near: faces with any vertex at ``z <= near`` (metres) are dropped, as are
            faces with non-finite coordinates.

    Returns:
        ``face_index`` (N, H, W) long, the visible face per pixel centre, ``-1`` for
        background; ``depth`` (N, H, W) float (dtype of ``verts_px``), the
        perspective-correct depth (metres) there, ``+inf`` for background.
    """
    n = verts_px.shape[0]
    count_renders(n)
    device, dtype = verts_px.device, verts_px.dtype
    hw = height * width
    zbuf = torch.full((n * hw,), float("inf"), device=device, dtype=dtype)
    fbuf = torch.full((n * hw,), -1, device=device, dtype=torch.long)
    if n == 0 or faces.numel() == 0:
        return fbuf.view(n, height, width), zbuf.view(n, height, width)
    with torch.no_grad():
        item, face, tri = _valid_faces(verts_px.detach(), faces, near)
        pix_all, z_all, f_all = [], [], []
        for rows, px, py in face_pixel_candidates(tri[:, :, :2], height, width):
            t = _rows(tri, rows)
            w0, w1, w2, area = edge_functions(t[:, :, :2], px + 0.5, py + 0.5)
            ok = _inside(w0, w1, w2, area) & (px >= 0)
            inv_z = (w0 / t[:, 0, 2:3] + w1 / t[:, 1, 2:3] + w2 / t[:, 2, 2:3]) / area
            r, k = torch.nonzero(ok, as_tuple=True)
            pix_all.append(item[rows][r] * hw + py[r, k] * width + px[r, k])
            z_all.append(1.0 / inv_z[r, k])
            f_all.append(face[rows][r])
        if not pix_all:
            return fbuf.view(n, height, width), zbuf.view(n, height, width)
        pix, z, fid = torch.cat(pix_all), torch.cat(z_all), torch.cat(f_all)
        zbuf.scatter_reduce_(0, pix, z, reduce="amin")
        win = z == zbuf[pix]
        fbuf_big = torch.full((n * hw,), faces.shape[0], device=device, dtype=torch.long)
        fbuf_big.scatter_reduce_(0, pix[win], fid[win], reduce="amin")
        covered = fbuf_big < faces.shape[0]
        fbuf = torch.where(covered, fbuf_big, fbuf)
    return fbuf.view(n, height, width), zbuf.view(n, height, width)


def rasterize_depth(verts_px: torch.Tensor, faces: torch.Tensor, height: int, width: int,
                    *, near: float = 1e-3) -> torch.Tensor:
    """``rasterize_faces``' depth alone: (N, H, W) (dtype of ``verts_px``), metres, ``+inf`` for
    background. On the CPU the compiled kernel (``kernels.depth``, the same rule, in float64)
    runs: no (face, pixel) pairs are enumerated; the torch z-buffer serves CUDA."""
    if verts_px.device.type == "cpu" and kernels.available():
        count_renders(verts_px.shape[0])
        out = kernels.depth(verts_px.detach().numpy(), faces.cpu().numpy(), height, width, near)
        return torch.from_numpy(out).to(verts_px.dtype)
    return rasterize_faces(verts_px, faces, height, width, near=near)[1]


def rasterize_coverage(verts_px: torch.Tensor, faces: torch.Tensor, height: int, width: int,
                       *, near: float = 1e-3, front_orientation: int | None = None) -> torch.Tensor:
    """Hard silhouette (no depth test): which pixel centres any face covers.

    Args:
        verts_px: (N, V, 3) ``[u, v, z]`` (pixels, metres), as for ``rasterize_faces``.
        faces: (F, 3) long.
        front_orientation: for a *closed, consistently wound* mesh only: ``+1`` when its
            faces wind counter-clockwise seen from outside (positive signed volume in the
            camera frame), ``-1`` otherwise. Back-facing faces are then skipped, which
            leaves the silhouette unchanged (every ray enters a closed mesh through a
            front face) at about half the cost. ``None``: rasterise every face.

    Returns:
        (N, H, W) bool coverage. Not differentiable (see ``silhouette.py``). On the CPU the
        compiled kernel (``kernels.coverage``, same rule) runs; the torch loop serves CUDA.
    """
    n = verts_px.shape[0]
    count_renders(n)
    if verts_px.device.type == "cpu" and kernels.available():
        out = kernels.coverage(verts_px.detach().numpy(), faces.cpu().numpy(), height, width, near,
                               front_orientation)
        return torch.from_numpy(out)
    hw = height * width
    cov = torch.zeros(n * hw, dtype=torch.bool, device=verts_px.device)
    if n == 0 or faces.numel() == 0:
        return cov.view(n, height, width)
    with torch.no_grad():
        item, _, tri = _valid_faces(verts_px.detach(), faces, near)
        uv = tri[:, :, :2].contiguous()
        if front_orientation is not None:
            e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
            # In the image (y down) a face seen from outside winds with the sign of
            # det[v0, v1, v2] (= projected area * z0 z1 z2 / f^2); front: det * orientation < 0.
            area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
            front = torch.nonzero(area * front_orientation < 0).squeeze(1)
            uv, item = _rows(uv, front), item.index_select(0, front)
        for rows, px, py in face_pixel_candidates(uv, height, width):
            w0, w1, w2, area = edge_functions(_rows(uv, rows), px + 0.5, py + 0.5)
            ok = _inside(w0, w1, w2, area) & (px >= 0)
            base = (item.index_select(0, rows) * hw)[:, None] + py * width + px
            cov.index_fill_(0, base.masked_select(ok), True)
    return cov.view(n, height, width)


def project_points(verts_cam: torch.Tensor, focal: torch.Tensor, cx: torch.Tensor,
                   cy: torch.Tensor) -> torch.Tensor:
    """Pinhole projection to ``[u, v, z]``.

    Args:
        verts_cam: (B, V, 3) camera-frame points (OpenCV axes, metres).
        focal, cx, cy: (B,) intrinsics in pixels (principal point with the
            top-left-corner pixel origin).

    Returns:
        (B, V, 3): ``u = f x / z + cx``, ``v = f y / z + cy`` (pixels), ``z`` (metres).
        Differentiable w.r.t. all inputs. Points at ``z <= 0`` give meaningless
        ``u, v``; rasterisers drop their faces via ``near``.
    """
    z = verts_cam[..., 2]
    safe_z = torch.where(z.abs() > 1e-9, z, torch.full_like(z, 1e-9))
    u = focal[:, None] * verts_cam[..., 0] / safe_z + cx[:, None]
    v = focal[:, None] * verts_cam[..., 1] / safe_z + cy[:, None]
    return torch.stack([u, v, z], dim=-1)
