"""Stage: focal length and pelvis translation per person by the camera solve, the persons of
several images in one batch (``camera.batch_size``; ``models/camera/backend.py``)."""
from __future__ import annotations

from poselabel.models.camera.backend import make_backend
from poselabel.transforms.base import BatchedSampleStage


class SolveCamera(BatchedSampleStage):
    stage = "camera"

    def setup(self):
        super().setup()
        self.batch_persons = self.config.camera.batch_size

    def build(self):
        return make_backend(self.config)
