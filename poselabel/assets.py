"""Real photos that installed packages carry, for the demo and the tests.

``bus.jpg`` and ``zidane.jpg`` ship with ultralytics, ``grace_hopper.jpg`` with
matplotlib. The photo without people is the top of ``bus.jpg`` (a building
facade above the people), cut without re-encoding artefacts that matter.
"""
from __future__ import annotations

import importlib.util
import io
from pathlib import Path

from PIL import Image

# Rows of bus.jpg (1080 high) above every person in it.
NO_PERSON_ROWS = 360


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # does not import the package
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {name!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def photo_path(name: str) -> Path:
    if name in ("bus.jpg", "zidane.jpg"):
        return _package_dir("ultralytics") / "assets" / name
    if name == "grace_hopper.jpg":
        return _package_dir("matplotlib") / "mpl-data" / "sample_data" / name
    raise KeyError(name)


def no_person_photo() -> bytes:
    """JPEG bytes of a real photo without people (the top of bus.jpg)."""
    with Image.open(photo_path("bus.jpg")) as im:
        crop = im.convert("RGB").crop((0, 0, im.width, NO_PERSON_ROWS))
    buf = io.BytesIO()
    crop.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def demo_samples() -> list[tuple[str, dict[str, bytes]]]:
    """``[(key, {"jpg": bytes, "json": bytes})]`` for the three photos and the one without people."""
    samples = []
    for name in ("bus.jpg", "zidane.jpg", "grace_hopper.jpg"):
        key = name.split(".")[0]
        samples.append((key, {"jpg": photo_path(name).read_bytes(),
                              "json": f'{{"source": "{name}"}}'.encode()}))
    samples.append(("facade", {"jpg": no_person_photo(), "json": b'{"source": "bus.jpg, top rows"}'}))
    return samples
