"""The evidence the accept rule weighs: truncation, pinned focal lengths, depth probes and the
votes of an image's other people (numpy only).

Each function reads :class:`~poselabel.models.quality.facts.PersonFacts` (or one measure of
it) under a ``QualityConfig``; the checks (``checks.py``) and the fit score's features
(``fit_score.py``) both use them, so the two rules read the evidence alike.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from poselabel.models.quality.facts import PersonFacts, finite, is_fitted


def horizontal_fov_deg(width: float, focal_px: float) -> float:
    """``2 atan(W / 2f)`` in degrees."""
    return math.degrees(2.0 * math.atan(width / (2.0 * focal_px)))


def truncation(f: PersonFacts, config) -> tuple[int, float]:
    """``(image sides the box touches, largest border cut)``; the cut is the mask's run on an
    image edge over the mask box's extent along that edge (0 without a mask)."""
    x0, y0, x1, y1 = f.bbox_xyxy
    m = config.border_margin_px
    sides = int(x0 <= m) + int(y0 <= m) + int(x1 >= f.image_width - m) + int(y1 >= f.image_height - m)
    cut = 0.0
    if f.border_runs is not None and f.mask_box is not None:
        bw = max(float(f.mask_box[2] - f.mask_box[0]), 1.0)
        bh = max(float(f.mask_box[3] - f.mask_box[1]), 1.0)
        left, top, right, bottom = f.border_runs
        cut = max(left / bh, right / bh, top / bw, bottom / bw)
    return sides, cut


def depth_inconsistent(gain: Any, mask_iou: Any, config, margin: Any = None) -> bool:
    """Whether another depth explains the mask better than the fit's ``Tz``.

    ``gain`` is ``camera.depth_gain`` (the mask IoU gained at ``Tz`` × 0.8 or × 1.25
    with ``f`` refitted, ``camera.scene.depth_gain``). Inconsistent above ``max_depth_gain``,
    or when it is at least ``max_depth_gain_ratio`` of the fit's own residual ``1 - mask_iou``
    (and ``depth_gain_floor``): a near-perfect fit has little IoU left to gain, and another
    depth that takes a good share of it is evidence against the given ``Tz`` all the same.
    The ratio route needs a pinned focal length (``focal_pinned(margin, ...)`` not False,
    ``margin`` the fit's ``focal_margin``): each probe refits ``f``, and where the mask does
    not pin ``f`` its small gains are noise."""
    if not finite(gain):
        return False
    gain = float(gain)
    if gain > config.max_depth_gain:
        return True
    ratio = config.max_depth_gain_ratio
    if ratio <= 0 or not finite(mask_iou) or gain < config.depth_gain_floor:
        return False
    # f free: the probes' refits are noise
    return gain >= ratio * (1.0 - float(mask_iou)) and focal_pinned(margin, mask_iou, config) is not False


def focal_pinned(margin: Any, mask_iou: Any, config) -> bool | None:
    """Whether a person's mask pins its focal length (None: no focal margin was measured).

    ``margin`` is ``camera.focal_margin`` (the mask IoU lost with ``f`` fixed 15 %
    off, ``camera.scene.focal_margin``). Pinned when it is at least ``min_focal_margin``, or
    at least ``min_focal_margin_ratio`` times the fit's own residual ``1 - mask_iou``: an
    alternative camera that explains the mask that much worse than the fit's own mismatch is
    ruled out even when the absolute loss is small (a near-perfect fit); never below
    ``min_focal_margin_floor``, the probes' own noise. ``min_focal_margin`` 0: never pinned."""
    if not finite(margin):
        return None
    margin = float(margin)
    if config.min_focal_margin <= 0:  # the focal-margin evidence is switched off
        return False
    if margin >= config.min_focal_margin:
        return True
    ratio = config.min_focal_margin_ratio
    return bool(ratio > 0 and finite(mask_iou) and margin > 0
                and margin >= max(ratio * (1.0 - float(mask_iou)), config.min_focal_margin_floor))


def focal_votes(f: PersonFacts, config) -> tuple[int, int] | None:
    """``(agree, disagree)``: how many of this person's peers (``f.peers`` with ``mask_iou >=
    config.min_peer_mask_iou``) have a focal length within a factor ``1 + config.max_focal_disagreement``
    of its own, and how many outside. A person whose own mask pins its focal length
    (:func:`focal_pinned`) hears only peers whose masks pin theirs: a truncated peer's focal
    length is whatever its solver stopped at. None: not fitted, or no peer to ask."""
    own_f = f.solo_focal_px
    if not (finite(own_f) and own_f > 0):
        return None
    peers = [(p[0], p[1], p[2] if len(p) > 2 else math.nan) for p in f.peers]  # (focal, iou, margin)
    peers = [p for p in peers if finite(p[0]) and p[0] > 0 and finite(p[1]) and p[1] >= config.min_peer_mask_iou]
    own = focal_pinned(f.camera.focal_margin, f.objective_iou, config)
    if config.pinned_hears_pinned and config.min_focal_margin > 0 and own is not False:
        peers = [p for p in peers if focal_pinned(p[2], p[1], config) is not False]
    if not peers:
        return None
    tol = math.log1p(config.max_focal_disagreement)
    agree = sum(abs(math.log(float(own_f) / p[0])) <= tol for p in peers)
    return agree, len(peers) - agree


def focal_disagreement(f: PersonFacts, config) -> bool | None:
    """Whether this person's focal length disagrees with its image's other people: fewer of
    its peers agree than disagree (:func:`focal_votes`). A vote, not a distance to a mean, so
    that one bad peer does not take the others down with it. Two people on an equal footing
    who disagree are both out (there is no telling which is wrong). None: no peer to ask."""
    votes = focal_votes(f, config)
    return None if votes is None else votes[0] < votes[1]


def with_peers(facts: list[PersonFacts]) -> list[PersonFacts]:
    """The facts of one image's people, each with the others' ``(focal_px, mask_iou,
    focal_margin)`` as ``peers`` (fitted people only; nan: not measured), the focal lengths and
    IoUs of their own solves (``solo_focal_px``, ``objective_iou``): the votes of independent
    fits, not of the image's shared camera."""
    def peer(f: PersonFacts):
        if not is_fitted(f):
            return None
        margin = f.camera.focal_margin
        return (float(f.solo_focal_px), float(f.objective_iou) if finite(f.objective_iou) else math.nan,
                float(margin) if finite(margin) else math.nan)

    fitted = [peer(f) for f in facts]
    return [dataclasses.replace(f, peers=tuple(p for j, p in enumerate(fitted) if j != i and p is not None))
            for i, f in enumerate(facts)]
