"""Person crops: a square window around the person's box, resampled to ``size x size`` (numpy, PIL).

Frames: image pixels with the origin at the top-left corner of the top-left pixel
(docs/architecture.md). The window is the square ``[x0, x0 + side] x [y0, y0 + side]`` centred on
the box with ``side = context * max(box w, box h)``; the crop maps it onto ``[0, size]^2``:

    u_crop = (u - x0) * s,  v_crop = (v - y0) * s,  s = size / side

so a pinhole camera ``K`` of the image becomes ``K_crop = [[s f, 0, s (cx - x0)], [0, s f, s (cy - y0)],
[0, 0, 1]]`` for the crop, with the 3D labels (camera frame) unchanged. Pixels of the window outside
the image are black (HMR2's ``cv2.BORDER_CONSTANT``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class CropWindow:
    """The crop's square window in image pixels and its output size."""

    x0: float
    y0: float
    side: float  # pixels of the image
    size: int  # pixels of the crop

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return self.size / self.side

    @property
    def box_xyxy(self) -> np.ndarray:
        """The window ``[x0, y0, x1, y1]`` (4,) in image pixels."""
        return np.array([self.x0, self.y0, self.x0 + self.side, self.y0 + self.side], np.float64)

    def to_crop(self, uv: np.ndarray) -> np.ndarray:
        """Image pixels ``(..., 2)`` -> crop pixels ``(..., 2)``."""
        return (np.asarray(uv, np.float64) - (self.x0, self.y0)) * self.scale

    def intrinsics(self, focal_px: float, cx: float, cy: float) -> np.ndarray:
        """The crop's pinhole ``K`` (3, 3) from the image's focal length and principal point (pixels)."""
        s = self.scale
        return np.array([[s * focal_px, 0.0, s * (cx - self.x0)],
                         [0.0, s * focal_px, s * (cy - self.y0)],
                         [0.0, 0.0, 1.0]], np.float64)


def window_for_box(bbox_xyxy, size: int, context: float) -> CropWindow:
    """The square window of ``context`` times the box's longer side, centred on the box (4,) xyxy."""
    x0, y0, x1, y1 = (float(v) for v in bbox_xyxy)
    side = max(context * max(x1 - x0, y1 - y0), 1.0)
    return CropWindow(x0=(x0 + x1) / 2 - side / 2, y0=(y0 + y1) / 2 - side / 2, side=side, size=int(size))


def _resample(image: Image.Image, window: CropWindow, resample: int) -> Image.Image:
    """``image`` inside ``window``, scaled to ``size x size``; outside the image is 0."""
    ix0, iy0 = math.floor(window.x0), math.floor(window.y0)
    ix1, iy1 = math.ceil(window.x0 + window.side), math.ceil(window.y0 + window.side)
    region = image.crop((ix0, iy0, ix1, iy1))  # PIL pads outside the image with 0
    box = (window.x0 - ix0, window.y0 - iy0, window.x0 - ix0 + window.side, window.y0 - iy0 + window.side)
    return region.resize((window.size, window.size), resample=resample, box=box)


def crop_image(rgb: np.ndarray, window: CropWindow) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB -> ``(size, size, 3)`` uint8 crop (bilinear, antialiased when shrinking)."""
    return np.asarray(_resample(Image.fromarray(rgb), window, Image.BILINEAR))


def crop_mask(mask: np.ndarray, window: CropWindow) -> np.ndarray:
    """``(H, W)`` bool mask -> ``(size, size)`` bool crop (bilinear coverage >= 0.5)."""
    grey = _resample(Image.fromarray(mask.astype(np.uint8) * 255), window, Image.BILINEAR)
    return np.asarray(grey) >= 128
