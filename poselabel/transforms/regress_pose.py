"""Stage: SMPL-X ``betas``, ``global_orient`` and ``body_pose`` per person, conditioned on ``Tz``
where the network is, batched across images (``models/pose/backend.py``)."""
from __future__ import annotations

from poselabel.models.pose.backend import make_backend
from poselabel.transforms.base import BatchedSampleStage


class RegressPose(BatchedSampleStage):
    stage = "pose"

    def build(self):
        return make_backend(self.config, self.share)
