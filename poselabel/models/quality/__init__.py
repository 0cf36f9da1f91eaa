"""Stage: the accept rule (numpy only: ``poselabel filter`` runs it without torch).

``facts`` (what the rule reads, from a ``Person`` or a table row), ``evidence`` (truncation,
pinned focal lengths, depth probes, peers' votes), ``joint_limits``, ``checks`` (one function
per reject reason), ``fit_score`` (+ ``fit_score.json``: the evidence weighed together),
``rule`` (the rule: a loop over the checks).
"""
