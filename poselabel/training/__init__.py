"""Training of the Tz and pose networks on ground-truth shards (``poselabel train``)."""
