"""Stage: SMPL-X ``betas``, ``global_orient``, ``body_pose`` (``backend``: none, geometric, network, oracle)."""
