"""The pixel guard of buffers derived from an image (person regions, crops).

``decode.max_pixels`` bounds the decoded image, but a backend may build a larger buffer from
it: MediaPipe's person region is a square of 2.5 times the person's body radius, padded with
grey where it leaves the image, so a person filling a 64 MP close-up portrait gave a region of
about 32,000^2 px (3.1 GB of RGB, and a float mask of the same size: MediaPipe crashed the
worker). A derived buffer of more than ``MAX_DERIVED_PIXELS`` is built at a lower resolution
instead (the same square, sampled at ``scale < 1``), and what comes back (a mask) is mapped to
the image's own pixels. The networks see far fewer pixels anyway (MediaPipe's landmark model
256^2), so the result is the same person at a coarser mask edge (1/scale px steps).

Coordinates: pixels of the image, origin at the top-left corner of the top-left pixel.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

# The largest buffer derived from one image, px: decode.max_pixels' default (a region at most
# as large as the largest image admitted). Not tied to the configured decode.max_pixels: a
# lower image guard leaves this one as it is, a higher one does not raise it.
MAX_DERIVED_PIXELS = 64_000_000


@dataclass(frozen=True)
class Region:
    """A square of the image, ``[x0, x0 + side) x [y0, y0 + side)`` image px, as an array.

    - ``pixels`` (s, s, 3) uint8 RGB, ``s = round(side * scale)``; outside the image: ``fill``.
    - ``x0, y0, side``: the square in image px (``side`` px wide at full resolution).
    - ``scale``: region px per image px (1: full resolution, < 1: downsampled by the guard).
    """

    pixels: np.ndarray
    x0: int
    y0: int
    side: int
    scale: float

    def paste_mask(self, mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
        """A mask of the region ``(s, s)`` (bool, or values > 0) -> ``(H, W)`` bool in image px,
        False outside the region (nearest region pixel where it was downsampled)."""
        height, width = shape
        out = np.zeros((height, width), bool)
        sx0, sy0 = max(self.x0, 0), max(self.y0, 0)
        sx1, sy1 = min(self.x0 + self.side, width), min(self.y0 + self.side, height)
        if sx1 <= sx0 or sy1 <= sy0:
            return out
        mask = np.asarray(mask) > 0
        if self.scale == 1.0:
            out[sy0:sy1, sx0:sx1] = mask[sy0 - self.y0:sy1 - self.y0, sx0 - self.x0:sx1 - self.x0]
            return out
        s = mask.shape[0]
        rows = np.minimum(((np.arange(sy0, sy1) - self.y0 + 0.5) * self.scale).astype(np.int64), s - 1)
        cols = np.minimum(((np.arange(sx0, sx1) - self.x0 + 0.5) * self.scale).astype(np.int64), s - 1)
        out[sy0:sy1, sx0:sx1] = mask[rows[:, None], cols[None, :]]
        return out


def square_region(image: np.ndarray, center: tuple[float, float], side: float, *,
                  max_pixels: int = MAX_DERIVED_PIXELS, fill: int = 127) -> Region | None:
    """The square ``center ± side/2`` of ``image`` (H, W, 3) uint8, padded with ``fill``, at most
    ``max_pixels`` px (downsampled, antialiased, where larger). None: the square misses the image."""
    height, width = image.shape[:2]
    side = int(max(round(side), 32))
    x0 = int(round(center[0] - side / 2))
    y0 = int(round(center[1] - side / 2))
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, width), min(y0 + side, height)
    if sx1 <= sx0 or sy1 <= sy0:
        return None
    s = min(side, max(1, math.isqrt(max_pixels)))
    scale = s / side if s < side else 1.0
    pixels = np.full((s, s, 3), fill, np.uint8)
    if scale == 1.0:
        pixels[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = image[sy0:sy1, sx0:sx1]
    else:  # the part inside the image, resampled into its place in the smaller square
        px0, py0 = int(round((sx0 - x0) * scale)), int(round((sy0 - y0) * scale))
        px1, py1 = min(s, max(px0 + 1, int(round((sx1 - x0) * scale)))), min(s, max(py0 + 1, int(round((sy1 - y0) * scale))))
        pil = Image.fromarray(np.ascontiguousarray(image))
        pixels[py0:py1, px0:px1] = np.asarray(pil.resize((px1 - px0, py1 - py0), Image.BILINEAR,
                                                         box=(sx0, sy0, sx1, sy1)))
    return Region(pixels=pixels, x0=x0, y0=y0, side=side, scale=scale)


def window_pixels(image: np.ndarray, window, size: int, *, max_pixels: int = MAX_DERIVED_PIXELS) -> np.ndarray:
    """One square window ``(x0, y0, side)`` image px of an RGB uint8 (H, W, 3) image resampled to
    (size, size, 3) uint8, black outside the image (``nets.crops.cut_window``'s pixels).

    A window of at most ``max_pixels`` is cut whole and resized (Pillow, antialiased); a larger
    one (a person filling a huge image, the window padded past its border) is never built: the
    part inside the image is resized straight into its place in the output.
    """
    x0, y0, side = (int(round(v)) for v in window)
    side = max(side, 1)
    pil = Image.fromarray(np.ascontiguousarray(image))
    if side * side <= max_pixels:
        return np.asarray(pil.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.BILINEAR))
    height, width = image.shape[:2]
    out = np.zeros((size, size, 3), np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, width), min(y0 + side, height)
    if sx1 <= sx0 or sy1 <= sy0:
        return out
    scale = size / side
    px0, py0 = int(round((sx0 - x0) * scale)), int(round((sy0 - y0) * scale))
    px1 = min(size, max(px0 + 1, int(round((sx1 - x0) * scale))))
    py1 = min(size, max(py0 + 1, int(round((sy1 - y0) * scale))))
    out[py0:py1, px0:px1] = np.asarray(pil.resize((px1 - px0, py1 - py0), Image.BILINEAR, box=(sx0, sy0, sx1, sy1)))
    return out
