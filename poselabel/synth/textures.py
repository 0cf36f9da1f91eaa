"""Procedural backgrounds, clothing colours and lighting for synthetic images (numpy, PIL).

Backgrounds mix two layers chosen among colour gradients, multi-octave value
noise, rotated stripes/checkers and random blurred shapes, then add sensor
noise, so that people stand out but not trivially (backgrounds share the
people's colour distribution).
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Region of each SMPL-X joint for clothing: 0 torso, 1 legs, 2 skin (head, neck,
# forearms, hands), 3 upper arms, 4 feet. Any SMPL-X file's skinning weights work.
_REGION = np.zeros(55, dtype=np.int64)
_REGION[[1, 2, 4, 5]] = 1
_REGION[[12, 15, 22, 23, 24, 18, 19, 20, 21] + list(range(25, 55))] = 2
_REGION[[16, 17]] = 3
_REGION[[7, 8, 10, 11]] = 4


def random_color(rng: np.random.Generator) -> np.ndarray:
    """(3,) RGB in [0, 1], saturated or muted."""
    hsv = np.array([rng.random(), rng.uniform(0.0, 0.9), rng.uniform(0.15, 1.0)])
    return np.array(_hsv_to_rgb(*hsv))


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def person_colors(rng: np.random.Generator, dominant_joint: np.ndarray) -> np.ndarray:
    """(V, 3) albedo per vertex: shirt, trousers, skin, sleeves, shoes by dominant joint (V,)."""
    skin_tone = rng.uniform(0.15, 1.0)
    skin = np.array([0.95, 0.75, 0.6]) * skin_tone + np.array([0.05, 0.02, 0.0])
    shirt = random_color(rng)
    sleeves = shirt if rng.random() < 0.6 else skin
    palette = np.stack([shirt, random_color(rng), skin, sleeves, random_color(rng) * 0.6])
    return palette[_REGION[dominant_joint]].clip(0.0, 1.0)


def light(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A directional light (unit vector towards it, camera frame; mostly from the camera's
    side) and an ambient level in [0.2, 0.55]."""
    d = np.array([rng.normal(0, 0.7), rng.normal(-0.4, 0.6), -rng.uniform(0.3, 1.0)])
    return d / np.linalg.norm(d), float(rng.uniform(0.2, 0.55))


def value_noise(rng: np.random.Generator, height: int, width: int, octaves: int = 4) -> np.ndarray:
    """(H, W) smooth noise in [0, 1]: bilinearly upsampled random grids, halving amplitude."""
    out = np.zeros((height, width))
    amp, total = 1.0, 0.0
    for k in range(octaves):
        cells = 2 ** (k + 1) + 1
        grid = rng.random((cells, cells)).astype(np.float32)
        img = Image.fromarray(grid).resize((width, height), Image.BILINEAR)
        out += amp * np.asarray(img)
        total += amp
        amp *= 0.5
    out /= total
    return (out - out.min()) / max(out.max() - out.min(), 1e-6)


def _layer(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    kind = rng.integers(4)
    c0, c1 = random_color(rng), random_color(rng)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    if kind == 0:  # linear gradient
        a = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(a) + yy * np.sin(a)
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
    elif kind == 1:  # value noise
        t = value_noise(rng, height, width, octaves=int(rng.integers(2, 6)))
    elif kind == 2:  # stripes or checker
        a = rng.uniform(0, np.pi)
        freq = rng.uniform(4, 30)
        u = xx * np.cos(a) + yy * np.sin(a)
        w = -xx * np.sin(a) + yy * np.cos(a)
        t = (np.sin(u * freq * np.pi) > 0).astype(float)
        if rng.random() < 0.5:
            t = np.abs(t - (np.sin(w * freq * np.pi) > 0))
    else:  # random blurred shapes
        img = Image.new("RGB", (width, height), tuple(int(c * 255) for c in c0))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(5, 25))):
            x0, y0 = rng.uniform(-0.2, 1.0) * width, rng.uniform(-0.2, 1.0) * height
            x1, y1 = x0 + rng.uniform(0.05, 0.5) * width, y0 + rng.uniform(0.05, 0.5) * height
            fill = tuple(int(c * 255) for c in random_color(rng))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=fill)
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 4)))
        return np.asarray(img, dtype=np.float64) / 255.0
    return c0 * (1 - t[..., None]) + c1 * t[..., None]


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1]."""
    base = _layer(rng, height, width)
    top = _layer(rng, height, width)
    mix = value_noise(rng, height, width, octaves=3)[..., None] * rng.uniform(0.0, 1.0)
    img = base * (1 - mix) + top * mix
    return np.clip(img + rng.normal(0, rng.uniform(0.0, 0.04), img.shape), 0.0, 1.0)


def albedo_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H, W) multiplicative albedo variation around 1 (cloth-like noise)."""
    return 1.0 + (value_noise(rng, height, width, octaves=5) - 0.5) * rng.uniform(0.0, 0.5)
