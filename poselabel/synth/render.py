"""Render people: z-buffered instance mask and Lambertian shading (torch, CPU or GPU).

Uses the project's hard z-buffer ``poselabel.models.render.rasterize.rasterize_faces``:
all people of an image are concatenated into one mesh, so that the nearest
surface wins at every pixel centre, whoever it belongs to.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from poselabel.models.render.rasterize import edge_functions, project_points, rasterize_faces
from poselabel.synth.scene import NEAR, Camera


@dataclass(frozen=True)
class Rendered:
    """``instance`` (H, W) uint8: 0 background, ``i + 1`` for person i (nearest wins);
    ``normal`` (H, W, 3) camera-frame unit normals, ``vertex_rgb`` (H, W, 3) interpolated
    vertex colours in [0, 1] (both zero on background)."""

    instance: np.ndarray
    normal: np.ndarray
    vertex_rgb: np.ndarray


def project(cam: Camera, verts_cam: torch.Tensor) -> torch.Tensor:
    """(P, V, 3) camera-frame points (m) -> (P, V, 3) ``[u, v, z]`` (px, px, m)."""
    p = verts_cam.shape[0]
    full = lambda x: torch.full((p,), x, dtype=verts_cam.dtype, device=verts_cam.device)  # noqa: E731
    return project_points(verts_cam, full(cam.focal_px), full(cam.cx), full(cam.cy))


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(P, V, 3) area-weighted unit vertex normals of (P, V, 3) vertices, outward faces (F, 3)."""
    tri = verts[:, faces]  # (P, F, 3, 3)
    fn = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    vn = torch.zeros_like(verts)
    for k in range(3):
        vn.index_add_(1, faces[:, k], fn)
    return torch.nn.functional.normalize(vn, dim=-1)


@torch.no_grad()
def render_people(cam: Camera, verts_cam: torch.Tensor, faces: torch.Tensor,
                  colors: torch.Tensor) -> Rendered:
    """Rasterise P people seen by ``cam``.

    - ``verts_cam`` (P, V, 3): camera-frame vertices, metres (every z > ``NEAR``);
    - ``faces`` (F, 3) long, outward triangles shared by all people;
    - ``colors`` (P, V, 3) per-vertex albedo in [0, 1].
    """
    p, v = verts_cam.shape[:2]
    f = faces.shape[0]
    h, w = cam.height, cam.width
    uvz = project(cam, verts_cam).reshape(1, p * v, 3)
    offsets = (torch.arange(p, device=faces.device) * v)[:, None, None]
    all_faces = (faces[None] + offsets).reshape(-1, 3)
    face_index, _ = rasterize_faces(uvz, all_faces, h, w, near=NEAR * 0.5)
    face_index = face_index[0].reshape(-1)
    hit = torch.nonzero(face_index >= 0).squeeze(1)
    instance = torch.zeros(h * w, dtype=torch.uint8, device=verts_cam.device)
    normal = torch.zeros(h * w, 3, dtype=verts_cam.dtype, device=verts_cam.device)
    rgb = torch.zeros_like(normal)
    if hit.numel():
        fid = face_index[hit]
        instance[hit] = (fid // f + 1).to(torch.uint8)
        corners = all_faces[fid]  # (n, 3) global vertex ids
        tri = uvz[0, corners]  # (n, 3, 3)
        qx = (hit % w).to(uvz.dtype)[:, None] + 0.5
        qy = (hit // w).to(uvz.dtype)[:, None] + 0.5
        w0, w1, w2, area = edge_functions(tri[:, :, :2], qx, qy)
        # Perspective-correct barycentrics (weights divided by depth, renormalised).
        bary = torch.cat([w0, w1, w2], 1) / tri[:, :, 2]
        bary = bary / bary.sum(1, keepdim=True)
        vn = vertex_normals(verts_cam, faces).reshape(-1, 3)
        normal[hit] = torch.nn.functional.normalize((bary[:, :, None] * vn[corners]).sum(1), dim=-1)
        rgb[hit] = (bary[:, :, None] * colors.reshape(-1, 3)[corners]).sum(1)
    return Rendered(instance.reshape(h, w).cpu().numpy(), normal.reshape(h, w, 3).cpu().numpy(),
                    rgb.reshape(h, w, 3).cpu().numpy())


def shade(rendered: Rendered, light_dir: np.ndarray, ambient: float, texture: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB of the people (zero elsewhere): Lambertian, one directional light.

    ``light_dir`` (3,): unit vector from the surface towards the light, camera frame;
    ``texture`` (H, W) multiplicative albedo noise around 1.
    """
    lambert = np.clip(rendered.normal @ light_dir, 0.0, None)
    light = ambient + (1.0 - ambient) * lambert
    return rendered.vertex_rgb * (light * texture)[..., None]
