"""Stage: person detection (``detectors``: mediapipe, ultralytics, oracle; ``backend``: the stage's factory)."""
