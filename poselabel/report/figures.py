"""Histograms of the persons table (matplotlib, Agg) as inline PNG data URIs."""
from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np


def data_uri(png_or_jpeg: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(png_or_jpeg).decode('ascii')}"


def pil_uri(image, quality: int = 85) -> str:
    """A PIL image as an inline JPEG data URI."""
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    return data_uri(buf.getvalue(), "image/jpeg")


def fov_deg(row: dict[str, Any]) -> float | None:
    f = row.get("focal_px")
    if f is None or not math.isfinite(f) or f <= 0:
        return None
    return math.degrees(2 * math.atan(row["image_width"] / (2 * f)))


def _values(rows, get) -> np.ndarray:
    vals = [get(r) for r in rows]
    return np.array([v for v in vals if v is not None and math.isfinite(v)], np.float64)


PANELS = (
    ("mask IoU (fitted silhouette vs mask)", lambda r: r.get("mask_iou"), None),
    ("Tz (pelvis depth, m)", lambda r: (r.get("transl") or [None] * 3)[2] if r.get("transl") else r.get("tz"), None),
    ("focal length f (px)", lambda r: r.get("focal_px"), None),
    ("horizontal field of view (deg)", fov_deg, None),
)


def histograms(persons: list[dict[str, Any]]) -> str:
    """A 2 x 2 figure (mask IoU, Tz, f, FoV), accepted and rejected stacked; a PNG data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    acc = [r for r in persons if r.get("accepted")]
    rej = [r for r in persons if not r.get("accepted")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.2))
    for ax, (title, get, _) in zip(axes.ravel(), PANELS):
        a, r = _values(acc, get), _values(rej, get)
        if a.size + r.size == 0:
            ax.text(0.5, 0.5, "no values (no fitted person)", ha="center", va="center", transform=ax.transAxes)
        else:
            both = np.concatenate([a, r])
            lo, hi = float(both.min()), float(both.max())
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
            ax.hist([a, r], bins=bins, stacked=True, color=["#2a9d55", "#d1495b"],
                    label=[f"accepted ({a.size})", f"rejected ({r.size})"])
            ax.legend(fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return data_uri(buf.getvalue())
