"""Stage: bytes to RGB uint8 (``image``: EXIF, modes, pixel guard)."""
