"""Overlays: the fitted body's shaded silhouette and the person's mask on the image (torch).

The body is posed with :class:`BodyModel` from a row's ``betas``, ``global_orient``,
``body_pose`` and ``transl`` (camera frame, metres), projected with ``focal_px, cx, cy``
(pixels) and rasterised with the hard z-buffer (``rasterize_faces``) in a window around
the person only (the principal point is shifted into the window). Shading: ``|n_z|`` of
each visible face's camera-frame normal. The mask's outline is drawn in green, the
fitted silhouette's in orange, the detection box in white.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from poselabel.models.masks import decode_rle

FIT_RGB = np.array([255, 140, 0], np.float32)
MASK_RGB = np.array([40, 220, 90], np.float32)


def _outline(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: mask pixels with a 4-neighbour outside the mask."""
    m = np.pad(mask, 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask & ~inner


def window(row: dict[str, Any], margin: float = 0.2) -> tuple[int, int, int, int]:
    """Crop ``(x0, y0, x1, y1)`` px around the person's box, ``margin`` of its size per side."""
    x0, y0, x1, y1 = row["bbox_xyxy"]
    w, h = x1 - x0, y1 - y0
    W, H = row["image_width"], row["image_height"]
    wx0, wy0 = int(min(max(0, x0 - margin * w), W - 1)), int(min(max(0, y0 - margin * h), H - 1))
    wx1, wy1 = int(min(W, np.ceil(x1 + margin * w))), int(min(H, np.ceil(y1 + margin * h)))
    return wx0, wy0, max(wx1, wx0 + 1), max(wy1, wy0 + 1)


def has_fit(row: dict[str, Any]) -> bool:
    vals = [row.get(k) for k in ("focal_px", "cx", "cy", "transl", "global_orient", "body_pose", "betas")]
    return all(v is not None for v in vals) and bool(np.isfinite(np.concatenate(
        [np.ravel(np.asarray(v, np.float64)) for v in vals])).all())


def render_fit(body, row: dict[str, Any], win: tuple[int, int, int, int]) -> np.ndarray | None:
    """Shading (h, w) float32 in [0, 1] of the fitted body in ``win``, NaN where empty; None
    without a fit. ``body``: a ``BodyModel``."""
    import torch

    from poselabel.models.render.rasterize import project_points, rasterize_faces

    if not has_fit(row):
        return None
    x0, y0, x1, y1 = win
    t = lambda k, n: torch.tensor(np.asarray(row[k], np.float32).reshape(1, n))  # noqa: E731
    with torch.no_grad():
        out = body(t("betas", 10), t("global_orient", 3), t("body_pose", 63), t("transl", 3))
        verts = out.vertices.to(torch.float32)
        px = project_points(verts, torch.tensor([row["focal_px"]]), torch.tensor([row["cx"] - x0]),
                            torch.tensor([row["cy"] - y0]))
        faces = body.faces.long()
        face_idx, _ = rasterize_faces(px, faces, y1 - y0, x1 - x0)
        tri = verts[0][faces]
        normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        shade = (normal[:, 2].abs() / normal.norm(dim=1).clamp(min=1e-12)).numpy()
    idx = face_idx[0].numpy()
    return np.where(idx >= 0, shade[np.clip(idx, 0, None)], np.nan).astype(np.float32)


def overlay(row: dict[str, Any], image: np.ndarray | None, body, max_side: int = 260) -> Image.Image:
    """The card picture of one person: image crop (grey when the image is missing), mask
    tint and outline, fitted silhouette (shaded, translucent) and outline, box."""
    win = window(row)
    x0, y0, x1, y1 = win
    if image is not None and image.shape[:2] == (row["image_height"], row["image_width"]):
        base = image[y0:y1, x0:x1].astype(np.float32)
    else:
        base = np.full((y1 - y0, x1 - x0, 3), 96.0, np.float32)
    out = base.copy()
    mask = None
    if row.get("mask_rle") is not None:
        mask = decode_rle(row["mask_rle"])[y0:y1, x0:x1]
        if image is None:
            out[mask] = 0.5 * out[mask] + 0.5 * MASK_RGB
    shade = render_fit(body, row, win) if body is not None else None
    if shade is not None:
        fit = np.isfinite(shade)
        col = FIT_RGB[None] * (0.35 + 0.65 * shade[fit][:, None])
        out[fit] = 0.45 * out[fit] + 0.55 * col
        out[_outline(fit)] = FIT_RGB
    if mask is not None:
        out[_outline(mask)] = MASK_RGB
    pic = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    bx0, by0, bx1, by1 = row["bbox_xyxy"]
    ImageDraw.Draw(pic).rectangle([bx0 - x0, by0 - y0, bx1 - x0 - 1, by1 - y0 - 1], outline=(255, 255, 255))
    scale = max_side / max(pic.size)
    if scale < 1:
        pic = pic.resize((max(1, round(pic.width * scale)), max(1, round(pic.height * scale))), Image.LANCZOS)
    return pic
