"""Shared: the Tz and pose networks (``tz_net``, ``pose_net``), their crops (``crops``) and safetensors checkpoints (``checkpoints``)."""
