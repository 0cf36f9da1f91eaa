"""Who may hide whom: per person, the pixels of the people of its image who may stand in front.

The camera solver treats those pixels as "no evidence" (the person may continue behind
them); pixels of people standing behind are evidence of absence. Two rules:

- ``occluder_masks``: by pelvis depth alone (before any fit): all of person ``j``'s pixels
  hide ``i`` when ``Tz_j < Tz_i (1 + margin)``;
- ``depth_ordered_occluders``: per pixel, from the fitted meshes' depth maps (after a first
  fit): ``j``'s pixel hides ``i`` where ``j``'s surface is nearer than ``i``'s. A person
  standing behind by pelvis depth can still reach in front (an arm across another body):
  the pelvis rule then counts that arm as evidence that ``i`` is absent there, and even the
  true camera scores below IoU 1.

Used by the pipeline's camera stage, ``poselabel bench camera`` and the quality benchmark
alike (through ``camera.scene.solve_scene``).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch


def occluder_masks(masks: Sequence, tz: Sequence[float], groups: Sequence, depth_margin: float = 0.1) -> list:
    """Per person, the pixels where another person of the same image may hide it.

    Args:
        masks: N person masks, each (H, W) bool (numpy or torch; one image's share a size).
        tz: N pelvis depths (m), the ones the solver is given.
        groups: N image ids (any hashable): persons with equal ids share an image.
        depth_margin: person ``j`` may occlude ``i`` when ``tz[j] < tz[i] * (1 + depth_margin)``.

    Returns:
        N bool tensors (H, W) (all False where no one may occlude): the union of the masks
        of the possible occluders, minus the person's own mask. Ignoring every other person
        instead let the solver hide a too-large body behind people standing *behind* it
        (measured on synthetic scenes: near-perfect mask IoU at 2x the true focal length).
    """
    ts = [torch.as_tensor(m).bool() for m in masks]
    out = []
    for i, m in enumerate(ts):
        acc = torch.zeros_like(m)
        for j, o in enumerate(ts):
            if j != i and groups[j] == groups[i] and float(tz[j]) < float(tz[i]) * (1.0 + depth_margin):
                if o.shape != m.shape:
                    raise ValueError(f"persons {i} and {j} share an image but their masks are "
                                     f"{tuple(m.shape)} and {tuple(o.shape)}")
                acc |= o
        out.append(acc & ~m)
    return out


def depth_ordered_occluders(masks: Sequence, depths: Sequence, tz: Sequence[float], groups: Sequence,
                            depth_margin: float = 0.1, trusted: Sequence[bool] | None = None) -> list:
    """``occluder_masks`` plus the pixels where another person's *fitted* surface is nearer.

    Args:
        masks: N person masks, each (H, W) bool (torch or numpy; one image's share a size).
        depths: N depth maps (H, W) float, metres along the optical axis, ``+inf`` where the
            person's fitted mesh does not cover the pixel (``rasterize_faces``' depth), or
            None where the person has no fit to trust.
        tz: N pelvis depths (m); groups: N image ids (equal ids share an image);
        depth_margin: as ``occluder_masks``.
        trusted: optional N flags: only trusted persons' surfaces may hide others (a poor
            fit's surface is not where the person is); any person's own surface is used.

    Returns:
        N bool tensors (H, W): ``occluder_masks``' pixels, and every pixel ``p`` of another
        person ``j``'s mask where both fitted surfaces cover ``p`` and ``d_j(p) < d_i(p)``
        (``j`` stands behind by pelvis depth but reaches in front there). Only ever adds
        no-evidence pixels: where a fit is missing or does not cover a pixel, the pelvis
        rule stands (a person's fit rarely covers the parts of its mask it got wrong, and
        a close-up's pelvis depth says little about the hand in front of the camera).
    """
    ms = [torch.as_tensor(m).bool() for m in masks]
    out = occluder_masks(ms, tz, groups, depth_margin)
    ds = [None if d is None else torch.as_tensor(d).to(torch.float64) for d in depths]
    for i, m in enumerate(ms):
        if ds[i] is None:
            continue
        covered = torch.isfinite(ds[i])
        for j, o in enumerate(ms):
            if j != i and groups[j] == groups[i] and ds[j] is not None and (trusted is None or trusted[j]):
                out[i] |= o & ~m & covered & (ds[j] < ds[i])  # an uncovered j (+inf) is never nearer
    return out
