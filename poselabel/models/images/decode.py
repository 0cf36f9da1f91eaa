"""Image decoding: bytes -> RGB uint8 ``(H, W, 3)`` after EXIF orientation.

Only JPEG (MPO, cameras' multi-picture JPEG, included), PNG and WebP are opened
(``FORMATS``): Pillow would otherwise open any format it knows from the bytes alone, whatever
the member's name, and an EPS/PS file named ``.jpg`` would start Ghostscript. Other bytes raise
:class:`DecodeError` naming what was expected and the first bytes seen.
Grayscale, palette, CMYK, RGBA (composited on white), 16-bit and float images
all become 8-bit RGB. Images over ``max_pixels`` raise
:class:`ImageTooLarge` before any pixel is decoded.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp")
FORMATS = ("JPEG", "PNG", "WEBP")  # Pillow's names of the formats opened (its JPEG opener reads MPO too)


# Each format's signature (its first bytes): checked before Pillow sees the bytes, so that no
# plugin another library registered with Pillow (ultralytics registers a HEIF opener that
# imports pi_heif) is ever tried on them.
_SIGNATURES = {"JPEG": (b"\xff\xd8\xff",), "PNG": (b"\x89PNG\r\n\x1a\n",)}


def sniff_format(data: bytes) -> str | None:
    """``"JPEG"``, ``"PNG"`` or ``"WEBP"`` from the first bytes of ``data``, else None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((f for f, sigs in _SIGNATURES.items() if data.startswith(sigs)), None)


class DecodeError(ValueError):
    """The bytes are not a usable image."""


class ImageTooLarge(DecodeError):
    """The image has more pixels than allowed (a decompression-bomb guard)."""


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode ``data`` to an ``(H, W, 3)`` uint8 RGB array (EXIF orientation applied)."""
    if not data:
        raise DecodeError("empty image member (0 bytes)")
    kind = sniff_format(data)
    if kind is None:
        raise DecodeError(f"not a JPEG, PNG or WebP image (the formats decoded); it starts with {data[:16]!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=(kind,))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(f"image of {width}x{height} = {width * height} pixels exceeds max_pixels={max_pixels}")
            image.load()
    except ImageTooLarge:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(str(exc)) from None
    except UnidentifiedImageError:
        raise DecodeError(f"not a JPEG, PNG or WebP image (the formats decoded); it starts with {data[:16]!r}") from None
    except Exception as exc:  # PIL raises many types for corrupt data
        raise DecodeError(f"cannot decode image: {type(exc).__name__}: {exc}") from None
    image = ImageOps.exif_transpose(image)
    return to_rgb8(image)


def to_rgb8(image: Image.Image) -> np.ndarray:
    """Any PIL image mode -> ``(H, W, 3)`` uint8 RGB."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        if mode == "F" and arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        elif mode != "F":
            arr = arr / 257.0  # 16-bit -> 8-bit
        gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(arr)


def decode_png(data: bytes, *, max_pixels: int) -> np.ndarray:
    """A PNG member that is not the sample's image (an instance mask: ``mask.png``) -> its array
    as stored (``(H, W)`` or ``(H, W, C)``), PNG only and at most ``max_pixels`` (checked before
    the pixels are decoded); raises :class:`DecodeError` / :class:`ImageTooLarge`."""
    if sniff_format(data) != "PNG":
        raise DecodeError(f"not a PNG image; it starts with {data[:16]!r}")
    try:
        image = Image.open(io.BytesIO(data), formats=("PNG",))
    except UnidentifiedImageError:
        raise DecodeError(f"not a PNG image; it starts with {data[:16]!r}") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"PNG of {width}x{height} = {width * height} pixels exceeds max_pixels={max_pixels}")
    return np.asarray(image)
