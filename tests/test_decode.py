import io

import numpy as np
import pytest
from PIL import Image

from poselabel.models.images.decode import DecodeError, ImageTooLarge, decode_image

BIG = 10**9


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_exif_orientation_is_applied():
    # A 40x20 landscape image tagged "rotate 90 CW" (orientation 6) decodes as 20x40 portrait.
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue left band
    exif = Image.Exif()
    exif[0x0112] = 6
    out = decode_image(_encode(img, "JPEG", exif=exif.tobytes(), quality=95), max_pixels=BIG)
    assert out.shape == (40, 20, 3)
    # The blue band that was on the left is now on top.
    assert out[:8, :, 2].mean() > 200 and out[-8:, :, 0].mean() > 200


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I;16", "1"])
def test_modes_become_rgb8(mode):
    base = Image.new("RGB", (16, 12), (10, 200, 30))
    if mode == "I;16":
        img = Image.fromarray(np.full((12, 16), 65535, np.uint16))
        assert img.mode.startswith("I;16")
    else:
        img = base.convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"  # CMYK: Adobe's CMYK JPEG
    out = decode_image(_encode(img, fmt), max_pixels=BIG)
    assert out.dtype == np.uint8 and out.shape == (12, 16, 3)
    if mode == "I;16":
        assert out.min() == 255  # full-scale 16-bit -> full-scale 8-bit


def test_rgba_is_composited_on_white():
    img = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    out = decode_image(_encode(img, "PNG"), max_pixels=BIG)
    assert (out == 255).all()


def test_decompression_bomb_guard():
    data = _encode(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(ImageTooLarge, match="max_pixels"):
        decode_image(data, max_pixels=1_000_000)
    assert decode_image(data, max_pixels=10_000_000).shape == (3000, 3000, 3)


@pytest.mark.parametrize("data, match", [(b"", "0 bytes"), (b"\xff\xd8\xff\xe0garbage", "cannot decode")])
def test_broken_bytes_raise_decode_error(data, match):
    with pytest.raises(DecodeError, match=match):
        decode_image(data, max_pixels=BIG)
