"""The camera solve of all the people of a set of images, with depth-ordered occlusion.

``solve_camera`` aligns one person at a time with its mask; the people of one image hide
each other, and the solver must know which of another person's pixels carry no evidence
about this one (``occlusion.py``). Before any fit only the pelvis depths order people; a
person behind can still reach in front (an arm across another body), and there the pelvis
rule counts the arm as evidence that this person is absent: even the true camera then
scores an IoU below 1. So, per image:

1. solve everyone with the pelvis rule (``occluder_masks``);
2. render every fitted mesh's depth map at full resolution (``rasterize_depth``);
3. add the pixels where a trusted fit (``depth_order_min_iou``) of another person is
   nearer than the person's own fitted surface (``depth_ordered_occluders``) and, for each
   person who gained such pixels, descend again from its first solution with the new
   evidence (no global search), keeping the first solution where the descent does not beat
   its full-resolution IoU under the new evidence;
4. the people of one image share one camera: a person still below ``retry_below_iou``
   whose image has fits of IoU >= ``peer_min_iou`` is solved again at their median focal
   length (translation by the global shift search), then with the focal length free from
   there; the better of its results is kept;
5. (``share_camera``, after the probes, which read each person's own solve) one camera per
   image: the well-fitted people vote on the image's focal length, and everyone whose own
   focal length is near it takes it, its depth scaled to keep its image
   (each person's ``Tz`` comes with its own error; their focal lengths absorbed it, the
   image's median averages it out).

Every person's reported ``mask_iou`` is measured under the evidence it was last solved
with. The gates and comparisons (trusted fits, "still below", "better") and the probes read
``CameraSolution.objective_iou``: the symmetric IoU, or with a clothed-mask objective
(``cover_weight`` < 1, keypoints) that objective's own score, so that a body correctly inside
a bigger clothed mask is not taken for a poor fit. Pure torch, no Beam.
"""
from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Sequence

import torch

from poselabel.models.camera.config import REJECT_NO_OVERLAP, CameraSolution, CameraSolverConfig
from poselabel.models.camera.occlusion import depth_ordered_occluders, occluder_masks
from poselabel.models.camera.solver import solve_camera
from poselabel.models.render.rasterize import project_points, rasterize_depth


def fitted_depths(vertices: torch.Tensor, faces: torch.Tensor, focal: torch.Tensor, transl: torch.Tensor,
                  principal_point: torch.Tensor, sizes: Sequence[tuple[int, int]],
                  wanted: Sequence[bool] | None = None) -> list:
    """Depth maps of fitted meshes over their whole images.

    Args:
        vertices: (B, V, 3) pelvis-centred meshes, camera axes, m.
        faces: (F, 3) long.
        focal: (B,) px; transl: (B, 3) m; principal_point: (B, 2) ``[cx, cy]`` px.
        sizes: B ``(H, W)`` image sizes, px.
        wanted: optional B flags; persons not wanted (or without a finite camera) get None.

    Returns:
        B CPU tensors (H, W) float32: depth (m) of the nearest surface of the person's own
        mesh at each pixel centre, ``+inf`` where it does not cover the pixel; or None.
    """
    out: list = []
    for i in range(vertices.shape[0]):
        f, t = float(focal[i]), transl[i]
        if (wanted is not None and not wanted[i]) or not math.isfinite(f) or not bool(torch.isfinite(t).all()):
            out.append(None)
            continue
        dev, dt = vertices.device, vertices.dtype
        px = project_points(vertices[i:i + 1] + t.to(dev, dt), torch.tensor([f], dtype=dt, device=dev),
                            principal_point[i:i + 1, 0].to(dev, dt), principal_point[i:i + 1, 1].to(dev, dt))
        h, w = sizes[i]
        out.append(rasterize_depth(px, faces, int(h), int(w))[0].float().cpu())
    return out


def solve_scene(vertices: torch.Tensor, faces: torch.Tensor, tz: torch.Tensor, masks: Sequence,
                groups: Sequence, config: CameraSolverConfig = CameraSolverConfig(), *,
                fixed_focal: torch.Tensor | None = None, principal_point: torch.Tensor | None = None,
                extra_ignore: Sequence | None = None, render_fn=None, keypoints=None) -> CameraSolution:
    """``solve_camera`` for persons of several images, their mutual occlusion handled.

    Args:
        vertices, faces, tz, masks, fixed_focal, principal_point, render_fn: as
            ``solve_camera`` (B persons).
        groups: B image ids (any hashable): persons with equal ids share an image.
        extra_ignore: optional B masks (H, W) bool (or None): pixels that never carry
            evidence about the person (e.g. the masks of the image's people who are not
            solved and may stand in front).
        keypoints: optional ``batch.Keypoints`` of the B persons (as ``solve_camera``).

    Returns:
        ``CameraSolution`` for the B persons (tensors on CPU); ``iterations`` counts every
        descent of a person. ``config.depth_order`` False skips step 3; ``peer_min_iou`` 0
        (or a fixed focal length) skips step 4; ``share_camera`` False (or a fixed focal
        length) skips step 5.
    """
    masks = [torch.as_tensor(m).bool() for m in masks]
    kw = dict(principal_point=principal_point, render_fn=render_fn, keypoints=keypoints)
    sol, ignore = solve_scene_with_evidence(vertices, faces, tz, masks, groups, config, fixed_focal=fixed_focal,
                                            extra_ignore=extra_ignore, **kw)
    if fixed_focal is None:
        sol = share_camera(sol, vertices, faces, masks, groups, config, ignore, **kw)
    return sol


def solve_scene_with_evidence(vertices, faces, tz, masks, groups, config=CameraSolverConfig(), *, fixed_focal=None,
                              principal_point=None, extra_ignore=None, render_fn=None, keypoints=None):
    """``solve_scene``, also returning each person's no-evidence pixels (B masks (H, W) bool):
    those its ``mask_iou`` was measured with."""
    masks = [torch.as_tensor(m).bool() for m in masks]
    tz_list = [float(t) for t in tz]
    extra = [None] * len(masks) if extra_ignore is None else list(extra_ignore)

    def with_extra(ign):
        return [o if e is None else o | (torch.as_tensor(e).bool() & ~m) for o, e, m in zip(ign, extra, masks)]

    ignore = with_extra(occluder_masks(masks, tz_list, groups, config.occluder_depth_margin))
    kw = dict(principal_point=principal_point, render_fn=render_fn, keypoints=keypoints)
    sol = solve_camera(vertices, faces, tz, masks, config, ignore=ignore, fixed_focal=fixed_focal, **kw)
    if len(set(groups)) == len(groups):
        return sol, ignore
    if config.depth_order:
        sol, ignore = depth_order_pass(sol, vertices, faces, tz, masks, groups, config, ignore, with_extra,
                                       fixed_focal=fixed_focal, **kw)
    if fixed_focal is None and config.peer_min_iou > 0 and config.retry_below_iou > 0:
        sol = peer_focal_pass(sol, vertices, faces, tz, masks, groups, config, ignore, **kw)
    return sol, ignore


def _subset(principal_point, idx):
    return None if principal_point is None else principal_point[idx]


def _merge(sol: CameraSolution, idx: list[int], sub: CameraSolution, keep) -> CameraSolution:
    """``sol`` with person ``idx[k]`` replaced by ``sub``'s ``k``-th where ``keep(k, i)``;
    ``sub``'s iterations are added either way."""
    own = sol.fit_iou is not None or sub.fit_iou is not None
    out = dataclasses.replace(sol, focal_px=sol.focal_px.clone(), transl=sol.transl.clone(),
                              mask_iou=sol.mask_iou.clone(), iterations=sol.iterations.clone(),
                              final_loss=sol.final_loss.clone(), reject_reasons=list(sol.reject_reasons),
                              fit_iou=sol.objective_iou.clone() if own else None)
    for k, i in enumerate(idx):
        out.iterations[i] += sub.iterations[k]
        if keep(k, i):
            out.focal_px[i], out.transl[i], out.mask_iou[i] = sub.focal_px[k], sub.transl[k], sub.mask_iou[k]
            out.final_loss[i], out.reject_reasons[i] = sub.final_loss[k], sub.reject_reasons[k]
            if own:
                out.fit_iou[i] = sub.objective_iou[k]
    return out


def depth_order_pass(sol: CameraSolution, vertices, faces, tz, masks, groups, config, ignore0, with_extra, *,
                     fixed_focal=None, principal_point=None, render_fn=None, movable=None, keypoints=None):
    """Steps 2-3 of the module docstring on a first solution ``sol`` solved with ``ignore0``;
    ``with_extra`` adds the never-evidence pixels to a list of no-evidence masks; ``movable``
    (optional B flags): only these persons are solved again, the others are context. Returns
    the new solution and each person's no-evidence pixels (those its result was measured with)."""
    count = collections.Counter(groups)
    shared = [count[g] > 1 and r is None and (movable is None or movable[i])
              for i, (g, r) in enumerate(zip(groups, sol.reject_reasons))]
    if not any(shared):
        return sol, ignore0
    pp = (torch.tensor([[m.shape[1] / 2, m.shape[0] / 2] for m in masks], dtype=torch.float64)
          if principal_point is None else principal_point.double().cpu())
    depths = fitted_depths(vertices, faces, sol.focal_px, sol.transl, pp, [m.shape for m in masks],
                           [count[g] > 1 for g in groups])
    trusted = [bool(iou >= config.depth_order_min_iou) for iou in sol.objective_iou]
    ignore1 = with_extra(depth_ordered_occluders(masks, depths, [float(t) for t in tz], groups,
                                                 config.occluder_depth_margin, trusted))
    redo = [i for i, s in enumerate(shared) if s and not torch.equal(ignore0[i], ignore1[i])]
    if not redo:
        return sol, ignore0
    sub = solve_camera(vertices[redo], faces, tz[redo], [masks[i] for i in redo], config,
                       ignore=[ignore1[i] for i in redo], fixed_focal=None if fixed_focal is None else fixed_focal[redo],
                       principal_point=_subset(principal_point, redo), render_fn=render_fn,
                       start=(sol.focal_px[redo], sol.transl[redo]), short_descent=True,
                       keypoints=_subset(keypoints, redo))
    # The warm start is kept where the descent does not beat it, so sub is never worse.
    again = set(redo)
    ignore = [ignore1[i] if i in again else o for i, o in enumerate(ignore0)]
    return _merge(sol, redo, sub, lambda k, i: True), ignore


def peer_focal_pass(sol: CameraSolution, vertices, faces, tz, masks, groups, config, ignore, *,
                    principal_point=None, render_fn=None, movable=None, keypoints=None) -> CameraSolution:
    """Step 4 of the module docstring; ``ignore``: each person's no-evidence pixels;
    ``movable`` as ``depth_order_pass``."""
    ok = [r is None for r in sol.reject_reasons]
    poor, f_peer = [], []
    for i, g in enumerate(groups):
        if movable is not None and not movable[i]:
            continue
        if not (ok[i] or sol.reject_reasons[i] == REJECT_NO_OVERLAP) or bool(sol.objective_iou[i] >= config.retry_below_iou):
            continue
        peers = [float(sol.focal_px[j]) for j, h in enumerate(groups)
                 if j != i and h == g and ok[j] and bool(sol.objective_iou[j] >= config.peer_min_iou)]
        if peers:
            poor.append(i)
            f_peer.append(float(torch.tensor(peers).median()))
    if not poor:
        return sol
    at_peer = solve_camera(vertices[poor], faces, tz[poor], [masks[i] for i in poor], config,
                           fixed_focal=torch.tensor(f_peer, dtype=torch.float64), ignore=[ignore[i] for i in poor],
                           principal_point=_subset(principal_point, poor), render_fn=render_fn,
                           keypoints=_subset(keypoints, poor))
    solved = [k for k, r in enumerate(at_peer.reject_reasons) if r is None]
    if not solved:
        return sol
    idx = [poor[k] for k in solved]
    # Focal length free from there (the full schedule: the peers' focal length may be some way
    # off this person's own); the warm start is kept where the descent does not beat it.
    free = solve_camera(vertices[idx], faces, tz[idx], [masks[i] for i in idx], config,
                        ignore=[ignore[i] for i in idx], principal_point=_subset(principal_point, idx),
                        render_fn=render_fn, start=(at_peer.focal_px[solved], at_peer.transl[solved]),
                        keypoints=_subset(keypoints, idx))
    free.iterations += at_peer.iterations[solved]
    return _merge(sol, idx, free, lambda k, i: free.reject_reasons[k] is None
                  and not bool(free.objective_iou[k] <= sol.objective_iou[i]))


def _best_probe(vertices, faces, masks, sol: CameraSolution, config, ignore, principal_point, render_fn, wanted,
                probes, keypoints=None) -> tuple[list[int], torch.Tensor]:
    """The solved persons wanted (``idx``) and, per person, the best full-resolution IoU of
    the warm-started re-solves ``probes`` (``objective_iou``): callables ``idx -> (tz (b,), start, fixed_focal)``."""
    idx = [i for i in range(vertices.shape[0]) if (wanted is None or wanted[i]) and sol.reject_reasons[i] is None]
    best = torch.full((len(idx),), float("-inf"), dtype=torch.float64)
    config = dataclasses.replace(config, stages=config.probe_schedule())
    for probe in probes if idx else ():
        tz, start, fixed = probe(idx)
        alt = solve_camera(vertices[idx], faces, tz, [masks[i] for i in idx], config,
                           ignore=None if ignore is None else [ignore[i] for i in idx], fixed_focal=fixed,
                           principal_point=_subset(principal_point, idx), render_fn=render_fn, start=start,
                           keypoints=_subset(keypoints, idx))
        best = torch.maximum(best, torch.nan_to_num(alt.objective_iou, nan=0.0).double())
    return idx, best


def focal_margin(vertices: torch.Tensor, faces: torch.Tensor, tz: torch.Tensor, masks: Sequence,
                 sol: CameraSolution, config: CameraSolverConfig, ignore: Sequence | None = None, *,
                 scales: tuple[float, ...] = (0.85, 1.18), principal_point: torch.Tensor | None = None,
                 render_fn=None, wanted: Sequence[bool] | None = None, keypoints=None) -> torch.Tensor:
    """How firmly the mask pins the focal length: ``objective_iou`` minus the best one reached with
    ``f`` fixed at each ``f · scale`` (``Tx, Ty`` descended again from the solution).

    A person cut by the border may show a part that fits many cameras (a torso filling the
    frame): there the margin is near 0; where the visible outline fixes the body's size it
    is large. Args as ``solve_camera``, ``sol`` the persons' solution; ``wanted`` (B flags):
    whom to measure. Returns (B,) float64, NaN where not measured or not solved.
    """
    def probe(scale):
        def at(idx):
            f = sol.focal_px[idx] * scale
            return tz[idx], (f, sol.transl[idx]), f
        return at

    out = torch.full((vertices.shape[0],), float("nan"), dtype=torch.float64)
    idx, best = _best_probe(vertices, faces, masks, sol, config, ignore, principal_point, render_fn, wanted,
                            [probe(s) for s in scales], keypoints)
    if idx:
        out[idx] = sol.objective_iou[idx].double() - best
    return out


def depth_gain(vertices: torch.Tensor, faces: torch.Tensor, masks: Sequence, sol: CameraSolution,
               config: CameraSolverConfig, ignore: Sequence | None = None, *, scales: tuple[float, ...] = (0.8, 1.25),
               principal_point: torch.Tensor | None = None, render_fn=None,
               wanted: Sequence[bool] | None = None, keypoints=None) -> torch.Tensor:
    """Whether another pelvis depth explains the mask better than the given one.

    For each ``scale`` the person is placed at ``Tz · scale`` and the solver descends again,
    ``f, Tx, Ty`` free, from ``f · scale`` and the same ``Tx, Ty`` (the pelvis projects to the
    same pixel and the body keeps its size: the same silhouette under weak perspective).
    Returns the best such ``objective_iou`` minus the solution's, (B,) float64, NaN where not measured or not
    solved. Far away the silhouette barely changes with depth at a fixed size, so the gain
    is about 0. Close up, a wrong ``Tz`` is absorbed into ``f`` only up to perspective:
    moving toward the true depth gains IoU. Args as :func:`focal_margin`; ``Tz`` is the
    solution's ``transl[:, 2]``.
    """
    def probe(scale):
        def at(idx):
            transl = sol.transl[idx].clone()
            transl[:, 2] *= scale
            return transl[:, 2], (sol.focal_px[idx] * scale, transl), None
        return at

    out = torch.full((vertices.shape[0],), float("nan"), dtype=torch.float64)
    idx, best = _best_probe(vertices, faces, masks, sol, config, ignore, principal_point, render_fn, wanted,
                            [probe(s) for s in scales], keypoints)
    if idx:
        out[idx] = best - sol.objective_iou[idx].double()
    return out


def touches_border(mask: torch.Tensor) -> bool:
    """Whether a (H, W) bool mask has pixels on an image edge (the person may be cut there)."""
    return bool(mask[:, 0].any() or mask[0, :].any() or mask[:, -1].any() or mask[-1, :].any())


def solve_scene_with_probes(vertices, faces, tz, masks, groups, config=CameraSolverConfig(), *, principal_point=None,
                            extra_ignore=None, render_fn=None, with_focal_margin: bool = True,
                            with_depth_gain: bool = True, keypoints=None):
    """What the camera stage runs: :func:`solve_scene_with_evidence`, then the probes the accept
    rule reads: :func:`focal_margin` for the people whose mask touches the image border and
    :func:`depth_gain` for everyone (each switched off by its flag). Args as
    :func:`solve_scene`. Returns ``(solution, no-evidence masks, focal_margin (B,),
    depth_gain (B,))``, the probes float64 with NaN where not measured."""
    masks = [torch.as_tensor(m).bool() for m in masks]
    sol, ignore = solve_scene_with_evidence(vertices, faces, tz, masks, groups, config,
                                            principal_point=principal_point, extra_ignore=extra_ignore,
                                            render_fn=render_fn, keypoints=keypoints)
    n = vertices.shape[0]
    margin = torch.full((n,), float("nan"), dtype=torch.float64)
    gain = torch.full((n,), float("nan"), dtype=torch.float64)
    kw = dict(principal_point=principal_point, render_fn=render_fn, keypoints=keypoints)
    if with_focal_margin:  # cut by the border: does the visible part pin f?
        cut = [touches_border(m) for m in masks]
        if any(cut):
            margin = focal_margin(vertices, faces, tz, masks, sol, config, ignore, wanted=cut, **kw)
    if with_depth_gain:  # would another depth explain the mask better?
        gain = depth_gain(vertices, faces, masks, sol, config, ignore, **kw)
    sol = share_camera(sol, vertices, faces, masks, groups, config, ignore, **kw)
    return sol, ignore, margin, gain


def share_camera(sol: CameraSolution, vertices, faces, masks, groups, config: CameraSolverConfig, ignore, *,
                 principal_point=None, render_fn=None, keypoints=None) -> CameraSolution:
    """Step 5 of the module docstring: the people of one image share one camera.

    Each person's solve takes its ``Tz`` as given, and a ``Tz`` off by some per cent is
    absorbed by ``f`` (the same image, weak perspective): the people of one image then
    disagree on ``f`` by their depths' errors. Per image, the solved people of
    ``objective_iou >= config.share_min_iou`` vote (two at least): ``f_c``, the median of
    their log focal lengths. Every solved person whose own ``f`` lies within a factor
    ``config.share_focal_band`` of ``f_c`` is solved again with ``f`` fixed at ``f_c``,
    warm-started at its depth scaled by ``f_c / f`` (``Tx, Ty`` kept: the same silhouette,
    up to perspective) on the short schedule, under its own no-evidence pixels
    ``ignore``; it keeps the result unless its ``objective_iou`` falls by more than
    ``config.share_max_loss`` (a close-up's perspective may pin its own ``f``). Others keep
    their own camera. ``final_loss`` stays the own solve's; ``solo_focal_px`` and ``solo_iou``
    record the replaced focal length and score. ``config.share_camera`` False: ``sol`` as is.
    Args as :func:`solve_scene`; returns the solution (tensors on CPU).
    """
    if not config.share_camera:
        return sol
    score = sol.objective_iou
    members = collections.defaultdict(list)
    for i, (g, r) in enumerate(zip(groups, sol.reject_reasons)):
        if r is None and bool(torch.isfinite(sol.focal_px[i])):
            members[g].append(i)
    follow, f_c = [], []
    band = math.log(config.share_focal_band)
    for g, people in members.items():
        voters = [i for i in people if bool(score[i] >= config.share_min_iou)]
        if len(people) < 2 or len(voters) < 2:
            continue
        logs = torch.log(sol.focal_px[voters].double()).sort().values
        c = float(torch.exp((logs[(len(logs) - 1) // 2] + logs[len(logs) // 2]) / 2))
        # (the median voter of an odd count has the image's f already: it keeps its solve)
        follow += [i for i in people if 1e-9 < abs(math.log(float(sol.focal_px[i]) / c)) <= band]
        f_c += [c] * (len(follow) - len(f_c))
    if not follow:
        return sol
    focal = torch.tensor(f_c, dtype=torch.float64)
    transl = sol.transl[follow].double().clone()
    transl[:, 2] *= focal / sol.focal_px[follow].double()  # f / Tz, hence the image, kept; Tx, Ty as they were
    sub = solve_camera(vertices[follow], faces, transl[:, 2].to(vertices.dtype), [masks[i] for i in follow], config,
                       ignore=[ignore[i] for i in follow], fixed_focal=focal, principal_point=_subset(principal_point, follow),
                       render_fn=render_fn, start=(focal, transl), short_descent=True,
                       keypoints=_subset(keypoints, follow))
    def keep(k, i):
        return sub.reject_reasons[k] is None and bool(sub.objective_iou[k] >= score[i] - config.share_max_loss)

    solo_f, solo_iou = sol.solo("solo_focal_px").clone(), sol.solo("solo_iou").clone()
    for k, i in enumerate(follow):
        if keep(k, i):
            solo_f[i], solo_iou[i] = sol.focal_px[i], score[i]
    # the own solve's final loss stays: it is evidence, like solo_focal_px and solo_iou
    return dataclasses.replace(_merge(sol, follow, sub, keep), final_loss=sol.final_loss,
                               solo_focal_px=solo_f, solo_iou=solo_iou)
