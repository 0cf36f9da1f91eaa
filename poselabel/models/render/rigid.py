"""Silhouettes of meshes moved rigidly (the camera solve), on the compiled CPU kernels.

A descent renders the same posed mesh hundreds of times, moved only by a translation ``T``
(and seen through new intrinsics). Two shortcuts follow, neither changing a value (beyond
float rounding: the kernels project in float64):

- the projection and the chain rule from the per-vertex gradient to ``[Tx, Ty, Tz, f, cx,
  cy]`` run inside the kernels (``kernels.project_rigid``, ``kernels.edge_gradient_rigid``):
  no (b, V) tensor enters the autograd graph;
- coverage comes from the mesh's edges (``kernels.coverage_contour``: along each row the
  signed crossings of the edges with one front face count the front faces over a pixel), and
  only the edges that can be on a contour are scanned (``ActiveEdges``): a face is front or
  back by which side of its plane the camera centre is on, and moving the mesh by ``ΔT`` moves
  the centre by ``ΔT`` relative to it; so for every face whose plane lies farther than a
  margin ``m`` from the centre, the side is fixed while ``|ΔT| < m``, and an edge between two
  such faces on the same side is either inside the silhouette (both front: its crossings
  cancel) or behind it (both back). The lists are made for one ``T`` and hold within ``m``
  of it (``m`` = ``REL_MARGIN`` x the distance, 5 % by default); farther, they are made again.
  The backward pass scans the same lists (every silhouette edge is in them).

The coverage equals ``rasterize_coverage``'s up to pixel centres exactly on a contour.
"""
from __future__ import annotations

import numpy as np
import torch

from poselabel.models.render import kernels
from poselabel.models.render.edges import MAX_SAMPLES_PER_EDGE, PROBE_PX, SAMPLE_SPACING_PX, MeshEdges, mesh_edges
from poselabel.models.render.rasterize import count_renders

REL_MARGIN = 0.05  # the lists' margin m / the distance |T| of the mesh's origin (pelvis)



class ActiveEdges:
    """Per mesh of one (B, V, 3) vertex tensor: the edges that can be on its contour for
    translations near the one they were made for (module docstring). State in numpy arrays:
    ``t_ref`` (B, 3), ``margin`` (B,) m, ``ids`` (B, E) int32 edge indices, ``count`` (B,) (-1: every edge),
    ``planes`` (B, F, 5) the faces' planes (``kernels.active_edges``), ``ready`` (B,) which are made."""

    def __init__(self, verts: torch.Tensor, faces: torch.Tensor, edges, rel_margin: float = REL_MARGIN):
        self.verts, self.faces = verts, faces
        self._version = verts._version
        b, e = verts.shape[0], edges.v0.numel()
        self.t_ref = np.full((b, 3), np.nan)
        self.margin = np.zeros(b)
        self.ids = np.zeros((b, e), np.int32)
        self.count = np.full(b, -1, np.int64)
        self.rel_margin = rel_margin
        self._faces_np = np.ascontiguousarray(faces.cpu().numpy(), np.int64)
        self._face_ab = edges.face_ab
        self.planes = np.empty((b, self._faces_np.shape[0], 5), np.float32)  # made per mesh at its first refresh
        self.ready = np.zeros(b, np.bool_)

    def serves(self, verts: torch.Tensor, faces: torch.Tensor) -> bool:
        """Whether these lists belong to ``verts`` (the same tensor, unmodified) and ``faces``."""
        return verts is self.verts and faces is self.faces and verts._version == self._version

    def lists(self, rows: np.ndarray, transl: np.ndarray, near: float):
        """``edge_lists`` for the meshes ``rows`` (b,) at ``transl`` (b, 3) m, made again where stale."""
        kernels.active_edges(self.verts.detach().numpy(), rows, transl, self._faces_np, *self._face_ab,
                             self.rel_margin, near, self.t_ref, self.margin, self.ids, self.count, self.planes,
                             self.ready)
        return self.ids, rows, self.count[rows].copy()

    def still(self, rows: np.ndarray, transl: np.ndarray) -> np.ndarray:
        """The lists' lengths for ``rows`` where they hold at ``transl`` (b, 3) (lists made again
        since hold too: any valid list holds every contour edge), -1 (every edge) elsewhere."""
        held = ((transl - self.t_ref[rows]) ** 2).sum(axis=1) < self.margin[rows] ** 2
        return np.where(held, self.count[rows], -1)


class RigidSilhouette(torch.autograd.Function):
    """(b, H, W) coverage of the meshes ``verts[rows]`` moved by ``transl`` (b, 3) m, intrinsics
    ``focal, cx, cy`` (b,) px; differentiable w.r.t. those four (edge sampling, as
    ``silhouette._EdgeSampledSilhouette``). Also takes ``verts`` (B, V, 3), ``rows`` (b,) long,
    ``faces``, ``edges`` (``MeshEdges`` with its ``orientation``), ``active`` (``ActiveEdges``
    of ``verts``), ``height``, ``width``, ``near``."""

    @staticmethod
    def forward(ctx, transl, focal, cx, cy, verts, rows, faces, edges, active, height, width, near):
        cam = torch.stack([focal, cx, cy], dim=1).detach().double().numpy()
        t = transl.detach().double().numpy()
        r = rows.numpy()
        vpx = kernels.project_rigid(verts.detach().numpy(), r, t, cam)
        count_renders(vpx.shape[0])
        lists = active.lists(r, t, near) if edges.orientation is not None else None
        if lists is None:
            cov = kernels.coverage(vpx, faces.cpu().numpy(), height, width, near, None)
        else:
            cov = kernels.coverage_contour(vpx, *edges.numpy(), edges.dir_a_np, height, width, near,
                                           edges.orientation, lists)
        ctx.vpx, ctx.cam, ctx.cov, ctx.edges, ctx.near = vpx, cam, cov, edges, near
        ctx.lists = None if lists is None else (active, r, t)
        return torch.from_numpy(cov).to(transl.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        lists = None
        if ctx.lists is not None:
            active, r, t = ctx.lists
            lists = (active.ids, r, active.still(r, t))
        g = kernels.edge_gradient_rigid(ctx.vpx, ctx.cam, *ctx.edges.numpy(), ctx.cov, grad_out.detach().numpy(),
                                        ctx.near, PROBE_PX, SAMPLE_SPACING_PX, MAX_SAMPLES_PER_EDGE, lists)
        g = torch.from_numpy(g).to(grad_out.dtype)
        return g[:, :3], g[:, 3], g[:, 4], g[:, 5], *([None] * 8)


def render_rigid(render_fn, verts: torch.Tensor, rows: torch.Tensor, faces: torch.Tensor,
                 transl: torch.Tensor, focal: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor,
                 size: tuple[int, int]) -> torch.Tensor:
    """``render_fn(verts[rows] + transl[:, None], faces, focal, cx, cy, size)``: (b, H, W)
    silhouettes of the meshes ``verts[rows]`` (verts (B, V, 3) m, camera axes; rows (b,) long)
    moved by ``transl`` (b, 3) m, intrinsics (b,) px; differentiable w.r.t. ``transl``,
    ``focal``, ``cx``, ``cy``. The torch backend on the CPU takes this module's shorter path
    (``TorchSilhouetteRasterizer.rigid``); any other renderer is called as above."""
    fast = getattr(render_fn, "rigid", None)
    if fast is not None:
        return fast(verts, rows, faces, transl, focal, cx, cy, size)
    return render_fn(verts.index_select(0, rows) + transl[:, None], faces, focal, cx, cy, size)


_cache: dict = {}  # the edge lists of the last vertex tensor rendered


def active_edges_for(verts: torch.Tensor, faces: torch.Tensor, edges: MeshEdges) -> ActiveEdges:
    """The edge lists of ``verts`` (B, V, 3), kept across calls while the same (unmodified)
    tensor is rendered: a solve's start, descents and checks share them."""
    active = _cache.get("active")
    if active is None or not active.serves(verts, faces):
        active = _cache["active"] = ActiveEdges(verts, faces, edges)
    return active


def _hard_lists(verts: torch.Tensor, faces: torch.Tensor):
    edges = mesh_edges(faces)
    return edges, active_edges_for(verts, faces, edges)


def project_rigid(verts: torch.Tensor, rows: torch.Tensor, transl: torch.Tensor, focal: torch.Tensor,
                  cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """``rasterize.project_points(verts[rows] + transl[:, None], focal, cx, cy)`` (b, V, 3)
    ``[u, v, z]`` px, m; float64 from the compiled kernel on the CPU (not differentiable)."""
    if verts.device.type != "cpu" or not kernels.available():
        from poselabel.models.render.rasterize import project_points
        return project_points(verts.index_select(0, rows) + transl[:, None], focal, cx, cy)
    cam = torch.stack([focal, cx, cy], dim=1).detach().double().numpy()
    return torch.from_numpy(kernels.project_rigid(verts.detach().numpy(), rows.numpy(),
                                                  transl.detach().double().numpy(), cam))


def hard_coverage(verts_px: torch.Tensor, verts: torch.Tensor, rows: torch.Tensor, faces: torch.Tensor,
                  transl: torch.Tensor, orientation: int | None, height: int, width: int,
                  near: float = 1e-3, *, sel: torch.Tensor | None = None,
                  offset: torch.Tensor | None = None) -> torch.Tensor:
    """``rasterize.rasterize_coverage(verts_px[sel] - [offset, 0], faces, height, width,
    front_orientation=orientation)`` (b, H, W) bool, where ``verts_px[sel]`` (b, V, 3) are the
    meshes ``verts[rows]`` (verts (B, V, 3) m) moved by ``transl`` (b, 3) m and projected by any
    pinhole (``sel`` (b,) long, default all of ``verts_px``; ``offset`` (b, 2) px, default 0): on
    the CPU, from the edges that can be on their contours (this module's docstring; lists kept
    per ``verts`` tensor), without copying ``verts_px``."""
    from poselabel.models.render.rasterize import rasterize_coverage

    if verts_px.device.type != "cpu" or not kernels.available() or orientation is None:
        px = verts_px if sel is None else verts_px.index_select(0, sel)
        if offset is not None:
            px = torch.cat([px[..., :2] - offset[:, None].to(px.dtype), px[..., 2:]], dim=-1)
        return rasterize_coverage(px, faces, height, width, near=near, front_orientation=orientation)
    edges, active = _hard_lists(verts, faces)
    count_renders(rows.shape[0])
    lists = active.lists(rows.numpy(), transl.detach().double().numpy(), near)
    return torch.from_numpy(kernels.coverage_contour(
        verts_px.detach().double().numpy(), *edges.numpy(), edges.dir_a_np, height, width, near, orientation, lists,
        sel=None if sel is None else sel.numpy(), offset=None if offset is None else offset.double().numpy()))
