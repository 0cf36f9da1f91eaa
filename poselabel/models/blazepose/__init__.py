"""Shared: multi-person BlazePose from the mediapipe wheel's bundled models (``people``), used by detect and segment."""
