"""Stage: focal length and translation by differentiable rasterisation.

``config`` (solver schedule, result type), ``batch`` (one optimisation batch's tensors and
measures), ``start`` (moment rounds and the global shift search), ``windows`` (crops,
blur, soft IoU), ``solver`` (the descent), ``occlusion`` (who may hide whom), ``scene``
(an image's people together, focal margin and depth probes), ``focal_heuristics``
(baselines), ``backend`` (the stage's factory: none, oracle, solver; records in, records out).
"""
