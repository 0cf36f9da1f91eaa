"""Dress the people of a scene and render bodies and garments together (torch, CPU or GPU).

All meshes of an image (every body and every garment) go through one hard z-buffer
(``rasterize_faces``), so the nearest surface wins whoever owns it: a person's clothed mask
is the pixels where their body or one of their garments is nearest, and their *body* mask
in a clothed world is the part of their naked silhouette that no other person's body or
garment hides (own garments do not hide: it is the body's outline the solver should fit).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from poselabel.models.body.model import BodyModel
from poselabel.models.render.rasterize import edge_functions, rasterize_faces
from poselabel.synth.garments import BodyGeometry, Garment, sample_outfit
from poselabel.synth.render import Rendered, project, vertex_normals
from poselabel.synth.scene import NEAR, Camera, PersonParams

GARMENT = -1  # ``ClothedRender.joint`` value where a garment is nearest
BACKGROUND = -2


@dataclass(frozen=True)
class ClothedRender:
    """``rendered``: nearest person per pixel (``instance``, 0 background, ``i + 1`` person i),
    normals and albedo, as ``render.Rendered``; ``joint`` (H, W) int16: the dominant skinning
    joint of the visible body face, ``GARMENT`` where a garment is nearest, ``BACKGROUND``."""

    rendered: Rendered
    joint: np.ndarray


@torch.no_grad()
def body_geometries(body: BodyModel, persons: tuple[PersonParams, ...], verts: torch.Tensor) -> list[BodyGeometry]:
    """Per person the rest-pose and posed geometry the garment builders need; ``verts``
    (P, V, 3) camera-frame posed vertices (``scene.pose_persons``)."""
    t = lambda a: torch.as_tensor(np.stack(a), dtype=body.dtype, device=body.device)  # noqa: E731
    zeros = [np.zeros(3, np.float32)] * len(persons)
    rest = body(t([p.betas for p in persons]), t(zeros), t([np.zeros(63, np.float32)] * len(persons)))
    faces = body.faces
    normals = vertex_normals(verts, faces)
    dominant = body.smplx.lbs_weights.argmax(1).cpu().numpy()
    f = faces.cpu().numpy()
    return [BodyGeometry(rest=rest.vertices[k].double().cpu().numpy(), rest_joints=rest.joints[k].double().cpu().numpy(),
                         posed=verts[k].double().cpu().numpy(), normals=normals[k].double().cpu().numpy(),
                         faces=f, dominant=dominant) for k in range(len(persons))]


def dress(body: BodyModel, persons: tuple[PersonParams, ...], verts: torch.Tensor, seed: int,
          index: int) -> list[list[Garment]]:
    """A random outfit per person; person k's draws come from ``default_rng([seed, index, k, 1])``
    (independent of the scene's draws, so a naked and a clothed world share people and cameras)."""
    return [sample_outfit(np.random.default_rng([seed, index, k, 1]), g)
            for k, g in enumerate(body_geometries(body, persons, verts))]


@torch.no_grad()
def render_clothed(cam: Camera, verts: torch.Tensor, faces: torch.Tensor, colors: torch.Tensor,
                   outfits: list[list[Garment]], dominant: np.ndarray) -> ClothedRender:
    """Rasterise P bodies and their garments together.

    - ``verts`` (P, V, 3) camera-frame body vertices (m), ``faces`` (F, 3) long, ``colors``
      (P, V, 3) body albedo in [0, 1];
    - ``outfits``: per person, garments in the camera frame (``garments.Garment``);
    - ``dominant`` (V,) the body's dominant skinning joint per vertex.
    """
    device, dtype = verts.device, verts.dtype
    h, w = cam.height, cam.width
    mesh_v, mesh_f, mesh_c, mesh_n, owner, fjoint = [], [], [], [], [], []
    start = 0
    dom = torch.as_tensor(dominant, device=device)
    for k in range(verts.shape[0]):
        pieces = [(verts[k], faces, colors[k], dom[faces[:, 0]])]
        for g in outfits[k]:
            gv = torch.as_tensor(g.verts, dtype=dtype, device=device)
            gf = torch.as_tensor(g.faces, dtype=torch.long, device=device)
            gc = torch.as_tensor(g.color, dtype=dtype, device=device).expand(len(gv), 3)
            pieces.append((gv, gf, gc, torch.full((len(gf),), GARMENT, dtype=torch.long, device=device)))
        for v, f, c, j in pieces:
            mesh_v.append(v)
            mesh_f.append(f + start)
            mesh_c.append(c)
            mesh_n.append(vertex_normals(v[None], f)[0])
            owner.append(torch.full((len(f),), k + 1, dtype=torch.long, device=device))
            fjoint.append(j)
            start += len(v)
    all_v, all_f = torch.cat(mesh_v), torch.cat(mesh_f)
    uvz = project(cam, all_v[None])
    face_index, _ = rasterize_faces(uvz, all_f, h, w, near=NEAR * 0.5)
    face_index = face_index[0].reshape(-1)
    hit = torch.nonzero(face_index >= 0).squeeze(1)
    instance = torch.zeros(h * w, dtype=torch.uint8, device=device)
    joint = torch.full((h * w,), BACKGROUND, dtype=torch.int16, device=device)
    normal = torch.zeros(h * w, 3, dtype=dtype, device=device)
    rgb = torch.zeros_like(normal)
    if hit.numel():
        fid = face_index[hit]
        instance[hit] = torch.cat(owner)[fid].to(torch.uint8)
        joint[hit] = torch.cat(fjoint)[fid].to(torch.int16)
        corners = all_f[fid]
        tri = uvz[0, corners]
        qx = (hit % w).to(dtype)[:, None] + 0.5
        qy = (hit // w).to(dtype)[:, None] + 0.5
        w0, w1, w2, _ = edge_functions(tri[:, :, :2], qx, qy)
        bary = torch.cat([w0, w1, w2], 1) / tri[:, :, 2]
        bary = bary / bary.sum(1, keepdim=True)
        normal[hit] = torch.nn.functional.normalize((bary[:, :, None] * torch.cat(mesh_n)[corners]).sum(1), dim=-1)
        rgb[hit] = (bary[:, :, None] * torch.cat(mesh_c)[corners]).sum(1)
    rendered = Rendered(instance.reshape(h, w).cpu().numpy(), normal.reshape(h, w, 3).cpu().numpy(),
                        rgb.reshape(h, w, 3).cpu().numpy())
    return ClothedRender(rendered, joint.reshape(h, w).cpu().numpy())


def body_visible(naked_instance: np.ndarray, clothed_instance: np.ndarray) -> np.ndarray:
    """(H, W) uint8 instance mask of the bodies as seen in the clothed world: person i's naked
    nearest-body pixels (``naked_instance == i + 1``) that no other person's body or garment
    hides (``clothed_instance == i + 1``)."""
    return np.where(naked_instance == clothed_instance, naked_instance, 0).astype(np.uint8)
