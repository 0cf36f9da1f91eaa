"""Shared: the SMPL-X body in the camera frame (``model``), its procedural stand-in (``procedural*``), landmarks against joints (``keypoints``) and the no-weights landmark fit (``landmark_fit``)."""
