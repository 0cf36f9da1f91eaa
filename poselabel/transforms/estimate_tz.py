"""Stage: pelvis depth ``Tz`` (metres) per person, batched across images (``models/tz/backend.py``)."""
from __future__ import annotations

from poselabel.models.tz.backend import make_backend
from poselabel.transforms.base import BatchedSampleStage


class EstimateTz(BatchedSampleStage):
    stage = "tz"

    def build(self):
        return make_backend(self.config, self.share)
