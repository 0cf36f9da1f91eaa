"""Differentiable silhouette rasterisers: one interface, two backends.

``make_silhouette_rasterizer(backend, device)`` returns a callable

    render(verts_cam (B, V, 3), faces (F, 3), focal (B,), cx (B,), cy (B,), (H, W)) -> (B, H, W)

- ``verts_cam``: camera-frame vertices, OpenCV axes (x right, y down, z forward), metres.
- ``faces``: long vertex indices shared by the batch.
- ``focal, cx, cy``: per-item pinhole intrinsics in pixels; ``u = f x / z + cx`` with the
  pixel origin at the top-left corner of the top-left pixel (pixel ``(x, y)`` is sampled
  at its centre ``(x + 0.5, y + 0.5)``).
- output: coverage in ``[0, 1]``, differentiable w.r.t. ``verts_cam``, ``focal``, ``cx``, ``cy``.

Backends
- ``torch`` (CPU and GPU): the forward value is the hard coverage of each pixel centre
  (``rasterize_coverage``). The backward pass is *edge sampling* (Li et al. 2018,
  "Differentiable Monte Carlo ray tracing through edge sampling"): the mask is treated as
  area coverage, whose derivative w.r.t. the geometry lives only on the silhouette
  boundary. Silhouette edges are the mesh's contour edges (boundary edges, or edges whose
  two faces fold onto the same side in the image); an edge sample counts when the pixel
  just outside it is uncovered (so contours hidden inside the silhouette give nothing).
  Moving a boundary point by ``δ`` along its outward normal adds ``δ · dl`` of area, so the
  upstream gradient image, bilinearly sampled on the edge, times the normal velocity and
  the sample's length is the gradient. No smoothing bias: the forward mask is exact at
  pixel centres, the gradient is that of the exact area coverage.
- ``nvdiffrast`` (CUDA only): ``RasterizeCudaContext`` in instanced mode, coverage
  from the triangle-id channel, then ``dr.antialias`` for analytic edge gradients.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from poselabel.models.render import kernels, rigid
from poselabel.models.render.edges import MAX_SAMPLES_PER_EDGE, PROBE_PX, SAMPLE_SPACING_PX, MeshEdges, mesh_edges
from poselabel.models.render.rasterize import count_renders, gather_vertices, rasterize_coverage

log = logging.getLogger(__name__)

SilhouetteFn = Callable[..., torch.Tensor]



def front_orientation(verts: torch.Tensor, faces: torch.Tensor, edges: MeshEdges | None = None) -> int | None:
    """``front_orientation`` for ``rasterize_coverage``: the sign of the mesh's signed volume
    when it is closed and consistently wound, else None (no culling).

    Args:
        verts: (V, 3) any posed instance of the mesh (the sign is pose- and rigid-invariant).
        faces: (F, 3) long.
    """
    edges = edges or mesh_edges(faces)
    if not edges.closed_oriented:
        return None
    vol = torch.linalg.det(verts.detach().double()[faces]).sum()  # 6 x signed volume
    if not torch.isfinite(vol) or vol == 0:
        return None
    return 1 if vol > 0 else -1


def _cross2(ax, ay, bx, by):
    return ax * by - ay * bx


def _bilinear(img: torch.Tensor, item: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
    """Sample ``img`` (B, H, W) at pixel coordinates ``(x, y)`` (pixel centres at +0.5), zero outside."""
    _, h, w = img.shape
    gx, gy = x - 0.5, y - 0.5
    x0, y0 = torch.floor(gx), torch.floor(gy)
    fx, fy = gx - x0, gy - y0
    x0, y0 = x0.long(), y0.long()
    out = torch.zeros_like(x)
    flat = img.reshape(-1)
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                        (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        idx = item * (h * w) + yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)
        out = out + torch.where(ok, flat[idx], torch.zeros_like(x)) * wgt
    return out


def edge_sample_gradient(uv: torch.Tensor, z: torch.Tensor, edges: MeshEdges,
                         coverage: torch.Tensor, grad_out: torch.Tensor,
                         near: float) -> torch.Tensor:
    """Gradient of ``sum(grad_out * coverage)`` w.r.t. the projected vertices.

    Args:
        uv: (B, V, 2) projected vertices (pixels). z: (B, V) depths (metres).
        coverage: (B, H, W) bool forward mask. grad_out: (B, H, W) upstream gradient.

    Returns:
        (B, V, 2) gradient w.r.t. ``uv`` (zero for vertices not on the silhouette).
    """
    bsz, nv, _ = uv.shape
    _, h, w = coverage.shape
    if uv.device.type == "cpu" and kernels.available():  # the compiled loop, same rule
        g = kernels.edge_gradient(uv.detach().numpy(), z.detach().numpy(), *edges.numpy(), coverage.numpy(),
                                  grad_out.detach().numpy(), near, PROBE_PX, SAMPLE_SPACING_PX,
                                  MAX_SAMPLES_PER_EDGE)
        return torch.from_numpy(g).to(uv.dtype)
    grad = torch.zeros(bsz * nv, 2, dtype=uv.dtype, device=uv.device)
    ne = edges.v0.numel()
    quad = gather_vertices(uv, torch.cat([edges.v0, edges.v1, edges.opp_a, edges.opp_b.clamp(min=0)]))
    pa, pb, pc, pd = quad[:, :ne], quad[:, ne:2 * ne], quad[:, 2 * ne:3 * ne], quad[:, 3 * ne:]  # (B, E, 2)
    boundary = edges.opp_b < 0
    ex, ey = pb[..., 0] - pa[..., 0], pb[..., 1] - pa[..., 1]
    side_c = _cross2(ex, ey, pc[..., 0] - pa[..., 0], pc[..., 1] - pa[..., 1])
    side_d = _cross2(ex, ey, pd[..., 0] - pa[..., 0], pd[..., 1] - pa[..., 1])
    zok = z > near
    in_front = (zok.index_select(1, edges.v0) & zok.index_select(1, edges.v1) & zok.index_select(1, edges.opp_a)
                & (zok.index_select(1, edges.opp_b.clamp(min=0)) | boundary))
    contour = (boundary | (side_c * side_d > 0)) & (side_c != 0) & in_front
    contour &= torch.isfinite(ex) & torch.isfinite(ey)
    item, e = torch.nonzero(contour, as_tuple=True)
    if item.numel() == 0:
        return grad.view(bsz, nv, 2)
    ax, ay = pa[item, e, 0], pa[item, e, 1]
    dx, dy = ex[item, e], ey[item, e]
    length = torch.sqrt(dx * dx + dy * dy).clamp(min=1e-12)
    # Outward normal: away from the face(s) on this edge.
    nx, ny = dy / length, -dx / length
    flip = (nx * (pc[item, e, 0] - ax) + ny * (pc[item, e, 1] - ay)) > 0
    nx, ny = torch.where(flip, -nx, nx), torch.where(flip, -ny, ny)
    k = torch.ceil(length / SAMPLE_SPACING_PX).clamp(1, MAX_SAMPLES_PER_EDGE).long()
    rep = torch.repeat_interleave(torch.arange(k.numel(), device=uv.device), k)
    offs = torch.arange(rep.numel(), device=uv.device) - torch.repeat_interleave(torch.cumsum(k, 0) - k, k)
    t = (offs.to(uv.dtype) + 0.5) / k[rep].to(uv.dtype)
    sx, sy = ax[rep] + t * dx[rep], ay[rep] + t * dy[rep]
    # Visibility: the pixel just outside the sample must be uncovered.
    qx = torch.floor(sx + PROBE_PX * nx[rep]).long()
    qy = torch.floor(sy + PROBE_PX * ny[rep]).long()
    inside_img = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h)
    covered = coverage.reshape(-1)[item[rep] * (h * w) + qy.clamp(0, h - 1) * w + qx.clamp(0, w - 1)]
    visible = ~(inside_img & covered)
    g = _bilinear(grad_out.to(uv.dtype), item[rep], sx, sy) * (length[rep] / k[rep]) * visible
    wa, wb = g * (1 - t), g * t
    va = item[rep] * nv + edges.v0[e[rep]]
    vb = item[rep] * nv + edges.v1[e[rep]]
    n2 = torch.stack([nx[rep], ny[rep]], dim=1)
    grad.index_add_(0, va, wa[:, None] * n2)
    grad.index_add_(0, vb, wb[:, None] * n2)
    return grad.view(bsz, nv, 2)


class _EdgeSampledSilhouette(torch.autograd.Function):
    """(u, v) (B, V) pixels, z (B, V) metres -> (B, H, W) coverage; see the module docstring."""

    @staticmethod
    def forward(ctx, u, v, z, faces, edges, height, width, near):
        uv = torch.stack([u, v], dim=-1)
        verts_px = torch.cat([uv, z[..., None]], dim=-1)
        cov = rasterize_coverage(verts_px, faces, height, width, near=near,
                                 front_orientation=edges.orientation)
        ctx.save_for_backward(uv, z, cov)
        ctx.edges, ctx.near = edges, near
        return cov.to(u.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        uv, z, cov = ctx.saved_tensors
        g = edge_sample_gradient(uv, z, ctx.edges, cov, grad_out, ctx.near)
        return g[..., 0], g[..., 1], None, None, None, None, None, None


class TorchSilhouetteRasterizer:
    """Pure-PyTorch silhouette renderer (hard forward, edge-sampling backward).

    Mesh topology (edges) is computed once per distinct ``faces`` tensor and cached.
    """

    name = "torch"

    def __init__(self, near: float = 1e-3):
        self.near = near

    @staticmethod
    def _mesh_edges(faces: torch.Tensor) -> MeshEdges:
        return mesh_edges(faces)

    def __call__(self, verts_cam, faces, focal, cx, cy, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        edges = self._mesh_edges(faces)
        if edges.closed_oriented and edges.orientation is None and verts_cam.shape[0] > 0:
            edges.orientation = front_orientation(verts_cam[0], faces, edges)
        x, y, z = verts_cam.unbind(-1)
        inv_z = 1.0 / torch.where(z.abs() > 1e-9, z, torch.full_like(z, 1e-9))
        u = focal[:, None] * (x * inv_z) + cx[:, None]
        v = focal[:, None] * (y * inv_z) + cy[:, None]
        return _EdgeSampledSilhouette.apply(u, v, z.detach(), faces, edges, h, w, self.near)

    def rigid(self, verts, rows, faces, transl, focal, cx, cy, size: tuple[int, int]) -> torch.Tensor:
        """:func:`render_rigid`: on the CPU with the compiled kernels, projection, coverage and the
        edge-sampled gradient of the moved meshes in one pass each (``rigid.RigidSilhouette``)."""
        if verts.device.type != "cpu" or not kernels.available():
            return self(verts.index_select(0, rows) + transl[:, None], faces, focal, cx, cy, size)
        edges = self._mesh_edges(faces)
        if edges.closed_oriented and edges.orientation is None and rows.numel() > 0:
            edges.orientation = front_orientation(verts[int(rows[0])], faces, edges)
        return rigid.RigidSilhouette.apply(transl, focal, cx, cy, verts, rows, faces, edges,
                                           rigid.active_edges_for(verts, faces, edges), size[0], size[1], self.near)


def clip_space_positions(verts_cam, focal, cx, cy, size, near=1e-3, far=100.0):
    """OpenCV camera frame + pixel intrinsics -> nvdiffrast clip space (B, V, 4).

    nvdiffrast samples pixel ``(x, y)`` of its output (row ``y``) at
    ``ndc = (2 (x + 0.5) / W - 1, 2 (y + 0.5) / H - 1)`` (its image row 0 is at
    ``ndc_y = -1``), so with ``ndc = (2u/W - 1, 2v/H - 1)`` the output rows are
    already top-to-bottom image rows: no flip. ``w_clip = z``; depth maps
    ``[near, far]`` to ``[-1, 1]``.
    """
    h, w = size
    x, y, z = verts_cam[..., 0], verts_cam[..., 1], verts_cam[..., 2]
    xc = (2.0 * focal[:, None] / w) * x + (2.0 * cx[:, None] / w - 1.0) * z
    yc = (2.0 * focal[:, None] / h) * y + (2.0 * cy[:, None] / h - 1.0) * z
    zc = (far + near) / (far - near) * z - 2.0 * far * near / (far - near)
    return torch.stack([xc, yc, zc, z], dim=-1)


class NvdiffrastSilhouetteRasterizer:
    """CUDA silhouette renderer on nvdiffrast (instanced mode + antialias)."""

    name = "nvdiffrast"

    def __init__(self, device: torch.device, near: float = 1e-3, far: float = 100.0):
        import nvdiffrast.torch as dr  # optional dependency, CUDA only

        self._dr = dr
        self._ctx = dr.RasterizeCudaContext(device=device)
        self.near, self.far = near, far

    def __call__(self, verts_cam, faces, focal, cx, cy, size: tuple[int, int]) -> torch.Tensor:
        dr = self._dr
        pos = clip_space_positions(verts_cam, focal, cx, cy, size, self.near, self.far)
        pos = pos.float().contiguous()
        count_renders(pos.shape[0])
        tri = faces.to(device=pos.device, dtype=torch.int32).contiguous()
        rast, _ = dr.rasterize(self._ctx, pos, tri, resolution=[int(size[0]), int(size[1])])
        cov = (rast[..., 3:4] > 0).float()
        cov = dr.antialias(cov, rast, pos, tri)
        return cov[..., 0].to(verts_cam.dtype)


def make_silhouette_rasterizer(backend: str = "auto", device: str | torch.device = "cpu",
                               near: float = 1e-3) -> SilhouetteFn:
    """Build a silhouette renderer (see the module docstring for the call signature).

    ``backend``: ``"torch"``, ``"nvdiffrast"`` (CUDA; raises ImportError when missing), or
    ``"auto"``: nvdiffrast when importable and ``device`` is CUDA, torch otherwise.
    """
    device = torch.device(device)
    if backend not in ("auto", "torch", "nvdiffrast"):
        raise ValueError(f"unknown silhouette backend {backend!r} (auto, torch, nvdiffrast)")
    if backend == "torch" or (backend == "auto" and device.type != "cuda"):
        return TorchSilhouetteRasterizer(near=near)
    if backend == "nvdiffrast" and device.type != "cuda":
        raise ValueError("the nvdiffrast backend needs a CUDA device")
    try:
        return NvdiffrastSilhouetteRasterizer(device, near=near)
    except ImportError:
        if backend == "nvdiffrast":
            raise
        log.info("nvdiffrast is not importable; using the torch silhouette rasteriser")
        return TorchSilhouetteRasterizer(near=near)
