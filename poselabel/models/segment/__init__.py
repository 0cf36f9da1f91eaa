"""Stage: a mask per person (``segmenters``: mediapipe, oracle; ``backend``: the stage's factory)."""
