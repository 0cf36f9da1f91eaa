"""Stage: pelvis depth ``Tz`` (``backend``: none, geometric, network, oracle)."""
