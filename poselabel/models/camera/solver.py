"""BLADE-style camera solve: focal length and translation from a person's mask (pure torch).

Given a posed body mesh with its pelvis at the origin (``V_model − J_model[0]``, camera
axes), a pelvis depth ``Tz`` and the person's mask, find ``f, Tx, Ty`` (and optionally refine
``Tz`` under a prior) so that the mesh rendered with ``V_cam = V + [Tx, Ty, Tz]`` through the
pinhole ``(f, cx, cy)`` (principal point at the image centre) matches the mask: maximise the
soft IoU of Gaussian-blurred masks. The people of one image: ``scene.py``; the configuration and result types: ``config.py``.

Schedule (per batch of persons, all steps batched):
1. Start as BLADE does (``f = image height``, ``T = [0, 0, Tz]``), refine it with
   ``init_rounds`` closed-form rounds from mask moments (``f`` scaled by the square root of
   the area ratio, ``Tx, Ty`` by the centroid offset back-projected at ``Tz``), then a global
   search (``start.py``): that start and a grid of focal hypotheses
   (``init_fovs_deg``), each with every image shift scored at once by FFT
   cross-correlation; the best hard IoU wins. That IoU is predicted by a 2D shift; where
   the winner's full-resolution IoU is below ``init_verified_below``, the best state whose
   IoU was measured on its own render starts instead, if better.
2. Coarse to fine stages in a square crop around the target mask (``crop_scale`` times
   its longer side, kept over the image), resampled to ``res x res`` with exact area
   averaging, intrinsics adjusted (``windows.py``): Adam on ``(log f, Tx/Tz, Ty/Tz,
   log Tz)`` in crop-pixel units, blur and step size shrinking stage by stage; loss
   ``1 − softIoU`` of the blurred masks (Tanimoto form, see ``windows.soft_iou``),
   both masks cut to the evidence (image, not-ignored pixels) before blurring. Each
   person keeps its best iterate of each stage; the next stage starts there.
3. The final mesh is rasterised hard over the whole image at full resolution and compared
   with the mask (ignored pixels excluded): ``mask_iou``. If the descent lowered it below
   the start's (it sees only its crop), the start is kept.
4. Second chance: persons whose score (``CameraSolution.objective_iou``: ``mask_iou`` with the
   symmetric objective; fits with their own objective only with ``retry_own_objective``) is
   below ``retry_below_iou`` run 1-3 again with a denser focal grid (``retry_fovs_deg``) and more passes; the better result is
   kept (``iterations`` counts both descents).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from poselabel.models.camera import windows as cc
from poselabel.models.camera.batch import (
    LOG_SCALE,
    SolveBatch,
    check_inputs,
    crop_targets,
    decode_params,
    full_res_iou,
    Keypoints,
    counts_iou,
    fit_objective,
    full_res_counts,
    keypoint_term,
    transl_from_ratios,
)
from poselabel.models.camera.config import REJECT_NAN, REJECT_NO_OVERLAP, CameraSolution, CameraSolverConfig
from poselabel.models.camera.start import moment_start
from poselabel.models.render.rigid import render_rigid
from poselabel.models.render.silhouette import front_orientation, make_silhouette_rasterizer


class _Adam:
    """``torch.optim.Adam`` (betas 0.9, 0.999, eps 1e-8, bias-corrected; the same operations,
    so the same steps) for the descent's few small tensors, without the optimiser's machinery:
    ``torch.optim`` costs a process 1.6 CPU-s on its first use (its lazy imports)."""

    def __init__(self, params, betas=(0.9, 0.999), eps=1e-8):
        self.params, self.betas, self.eps, self.t = params, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, lr: float) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.lerp_(p.grad, 1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad.conj(), value=1 - b2)
            p.addcdiv_(m, (v.sqrt() / math.sqrt(c2)).add_(self.eps), value=-lr / c1)


def _descend(batch: SolveBatch, faces, cfg: CameraSolverConfig, fixed: bool, render_fn):
    """Coarse-to-fine Adam stages; returns (th_f, th_uv, th_z, best_loss, iterations (b,) long CPU, windows side)."""
    b = batch.verts.shape[0]
    dev, dt = batch.verts.device, batch.verts.dtype
    if cfg.crop_to_person:
        windows = [cc.square_in_image(box, cfg.crop_scale, *m.shape) for box, m in zip(batch.boxes, batch.masks)]
    else:
        windows = [(0.0, 0.0, float(max(m.shape))) for m in batch.masks]
    x0 = torch.tensor([w[0] for w in windows], dtype=dt, device=dev)
    y0 = torch.tensor([w[1] for w in windows], dtype=dt, device=dev)
    side = torch.tensor([w[2] for w in windows], dtype=dt, device=dev)
    th = [torch.zeros(b, dtype=dt, device=dev), torch.zeros(b, 2, dtype=dt, device=dev),
          torch.zeros(b, dtype=dt, device=dev)]
    lo_f, hi_f = (LOG_SCALE * torch.log(torch.tensor(r, dtype=dt, device=dev) / batch.f0) for r in cfg.focal_range)
    lo_z, hi_z = (LOG_SCALE * torch.log(torch.tensor(r, dtype=dt, device=dev) / batch.tz0) for r in cfg.tz_range)
    best_loss = torch.full((b,), float("inf"), dtype=dt, device=dev)
    iters = torch.zeros(b, dtype=torch.long, device=dev)
    use_kp = batch.keypoints is not None and cfg.keypoint_weight > 0
    for stage in cfg.stages:
        target, valid = crop_targets(batch, windows, stage.res, dev, dt, keep=True)
        # Both masks are cut to the evidence before blurring (image border, ignored pixels
        # such as occluders), so that at the true camera they blur identically.
        target = cc.gaussian_blur(target * valid, stage.blur)
        params = [t.clone().requires_grad_(True) for t in th]
        free = [p for p, on in zip(params, (not fixed, True, cfg.refine_tz)) if on]
        opt = _Adam(free)
        best = [t.clone() for t in th]
        best_loss = torch.full((b,), float("inf"), dtype=dt, device=dev)
        # Persons still descending; one whose best loss stopped improving (``stop_window``)
        # is frozen at its best and no longer rendered. Each person's path depends on its
        # own data alone, as without the stop.
        moving = torch.ones(b, dtype=torch.bool, device=dev)
        rows = torch.arange(b, device=dev)
        checkpoint = best_loss.clone()
        for it in range(stage.iters + 1):  # the extra pass scores the last step
            f, transl = decode_params(batch, params[0], params[1], params[2], side)
            fw, cxw, cyw = cc.crop_intrinsics(f, batch.cx, batch.cy, x0, y0, side, stage.res)
            sil = render_rigid(render_fn, batch.verts, rows, faces, transl[rows], fw[rows], cxw[rows], cyw[rows],
                               (stage.res, stage.res))
            loss = cc.blurred_iou_loss(sil, valid[rows], target[rows], stage.blur, cfg.soft_iou_form, cfg.cover_weight)
            if use_kp:
                loss = loss + cfg.keypoint_weight * keypoint_term(batch, f, transl, rows)
            if cfg.refine_tz:
                loss = loss + 0.5 * (params[2][rows] / LOG_SCALE / cfg.tz_prior_sigma) ** 2
            with torch.no_grad():
                better = torch.zeros(b, dtype=torch.bool, device=dev)
                better[rows] = torch.isfinite(loss) & (loss < best_loss[rows])
                best_loss[rows] = torch.where(better[rows], loss, best_loss[rows])
                for bt, p in zip(best, params):
                    sel = better.view(-1, *([1] * (p.dim() - 1)))
                    bt.copy_(torch.where(sel, p, bt))
            if it == stage.iters:
                break
            if cfg.stop_window and it > 0 and it % cfg.stop_window == 0:
                moving &= (checkpoint - best_loss) > cfg.stop_tol
                checkpoint = best_loss.clone()
                if not bool(moving.any()):
                    break
                if not bool(moving.all()):
                    loss = loss[moving[rows]]
                    rows = torch.nonzero(moving).squeeze(1)
            lr = stage.lr * (cfg.lr_floor + (1 - cfg.lr_floor) * 0.5 * (1 + math.cos(math.pi * it / max(1, stage.iters))))
            for p in free:
                p.grad = None
            loss.sum().backward()
            held = [p.detach().clone() for p in params]
            for p in params:  # NaN-safe: a person with a broken gradient does not move
                if p.grad is not None:
                    p.grad.nan_to_num_(0.0, 0.0, 0.0)
            opt.step(lr)
            iters += moving.long()
            with torch.no_grad():
                params[0].copy_(torch.maximum(torch.minimum(params[0], hi_f), lo_f))
                params[2].copy_(torch.maximum(torch.minimum(params[2], hi_z), lo_z))
                for p, h in zip(params, held):  # frozen persons stay where they are (Adam's momentum)
                    p.copy_(torch.where(moving.view(-1, *([1] * (p.dim() - 1))), p, h))
        th = best
    return th, best_loss, iters.cpu(), side


def _solve_batch(verts, masks, ignore, f_start, pp, tz, faces, config: CameraSolverConfig, fixed: bool,
                 render_fn, orientation, warm=None, short_descent: bool = False, keypoints=None):
    """Start, descent and full-resolution check of one batch (b persons); see ``solve_camera``.

    ``warm``: optional ``(Tx/Tz, Ty/Tz)`` (b,) each: start the descent at ``f_start`` and
    that translation instead of the global search; ``short_descent``: from there on
    ``config.warm_schedule()``.
    Returns ``(focal (b,), transl (b, 3), mask_iou (b,), best_loss (b,), iterations (b,) long,
    score (b,))``, ``score`` higher for the better fit: ``1 − fit_objective`` with an own
    objective (``CameraSolution.fit_iou``), else the symmetric IoU.
    """
    dev, dt = verts.device, verts.dtype
    zero = torch.zeros(len(masks), dtype=dt, device=dev)
    batch = SolveBatch(verts=verts, masks=masks, ignore=ignore, cx=pp[:, 0], cy=pp[:, 1],
                   f0=f_start.clamp(*config.focal_range), a0=zero if warm is None else warm[0],
                   b0=zero if warm is None else warm[1],
                   tz0=tz.clamp(*config.tz_range), boxes=[cc.kept_bbox(m) for m in masks],
                   orientation=orientation, keypoints=None if keypoints is None else keypoints.to(dev, dt))
    # The descent's own objective (asymmetric IoU, keypoint term) decides whether it beat its
    # start; with neither, the symmetric full-resolution IoU does (bit-identical).
    own_objective = config.own_objective(batch.keypoints)
    if warm is not None and short_descent:
        config = dataclasses.replace(config, stages=config.warm_schedule())
    with torch.no_grad():
        if warm is None:
            start_iou = moment_start(batch, faces, config, fixed)
        else:
            start_iou = full_res_iou(batch, batch.f0, transl_from_ratios(batch.tz0, batch.a0, batch.b0), faces, config)
        start_f = batch.f0.clone()
        start_t = transl_from_ratios(batch.tz0, batch.a0, batch.b0)
        if own_objective:
            start_obj = fit_objective(batch, start_f, start_t, full_res_counts(batch, start_f, start_t, faces), config)
    th, best_loss, n_it, side = _descend(batch, faces, config, fixed, render_fn)
    with torch.no_grad():
        f_b, t_b = decode_params(batch, th[0], th[1], th[2], side)
        counts = full_res_counts(batch, f_b, t_b, faces)
        iou_b = counts_iou(counts)
        # The descent only sees its crop: where it lost full-resolution IoU (e.g. it
        # moved mesh into image areas outside the crop), keep the start.
        if own_objective:
            end_obj = fit_objective(batch, f_b, t_b, counts, config)
            worse = ~(end_obj <= start_obj)
        else:
            worse = ~(iou_b >= start_iou)  # on the CPU, as the IoUs are
        on_dev = worse.to(f_b.device)
        f_b = torch.where(on_dev, start_f, f_b)
        t_b = torch.where(on_dev[:, None], start_t, t_b)
        iou_b = torch.where(worse, start_iou, iou_b)
        # What a second chance must beat: the descent's own objective where it has one.
        score = 1.0 - torch.where(worse, start_obj, end_obj) if own_objective else iou_b
    return f_b, t_b, iou_b, best_loss, n_it, score


def solve_camera(vertices: torch.Tensor, faces: torch.Tensor, tz: torch.Tensor,
                 masks: Sequence[torch.Tensor], config: CameraSolverConfig = CameraSolverConfig(),
                 *, fixed_focal: torch.Tensor | None = None, principal_point: torch.Tensor | None = None,
                 ignore: Sequence[torch.Tensor | None] | None = None, render_fn=None,
                 start: tuple[torch.Tensor, torch.Tensor] | None = None,
                 short_descent: bool = False, keypoints: Keypoints | None = None) -> CameraSolution:
    """Solve ``f, Tx, Ty`` (and optionally ``Tz``) for a batch of persons.

    Args:
        vertices: (B, V, 3) posed mesh, pelvis at the origin (``V_model − J_model[0]``),
            camera axes (OpenCV), metres; on the solve device.
        faces: (F, 3) long, on the same device.
        tz: (B,) given pelvis depth, metres.
        masks: B full-image person masks, each (H_i, W_i) bool (any device).
        config: schedule and ranges.
        fixed_focal: (B,) px, optional: freeze ``f`` (heuristic baselines), fit only Tx, Ty.
        principal_point: (B, 2) ``[cx, cy]`` px, optional; default the image centre
            ``(W_i / 2, H_i / 2)`` (BLADE; what the pipeline uses on web images).
        ignore: optional B masks (H_i, W_i) bool (or None) of pixels carrying no evidence
            about this person, e.g. other people's masks (the person may be hidden behind
            them): excluded from the losses and from ``mask_iou``.
        render_fn: a silhouette rasteriser (``make_silhouette_rasterizer``); built from
            ``config.backend`` when None.
        start: optional warm start ``(focal (B,) px, transl (B, 3) m)`` (an earlier solve's
            result): the descent starts there, no global search and no second chance; the
            start is kept where the descent does not beat its full-resolution IoU.
        short_descent: with ``start``, descend on ``config.warm_schedule()`` (the finer stages,
            fewer steps) instead of ``config.stages``: for a start that is already a solution
            of nearly the same problem (the scene's depth-order pass). The peer pass keeps the
            full schedule; the probes run ``config.probe_schedule()`` (``scene._best_probe``).
        keypoints: optional ``Keypoints`` of the B persons (body points in the vertices'
            frame, detected px, weights): with ``config.keypoint_weight > 0`` the descent
            also pulls the projected points onto them (BLADE's keypoint term).

    Returns:
        ``CameraSolution`` (see its docstring), tensors on CPU.
    """
    n = vertices.shape[0]
    dev, dt = vertices.device, vertices.dtype
    tz = tz.to(dev, dt)
    focal = torch.full((n,), float("nan"), dtype=torch.float64)
    transl = torch.full((n, 3), float("nan"), dtype=torch.float64)
    iou = torch.full((n,), float("nan"), dtype=torch.float64)
    loss = torch.full((n,), float("nan"), dtype=torch.float64)
    iters = torch.zeros(n, dtype=torch.long)
    fit = torch.full((n,), float("nan"), dtype=torch.float64)
    own_objective = config.own_objective(keypoints)
    masks = [torch.as_tensor(m).bool() for m in masks]
    if len(masks) != n:
        raise ValueError(f"{n} meshes but {len(masks)} masks")
    reasons = check_inputs(vertices, tz, masks, config)
    render_fn = render_fn or make_silhouette_rasterizer(config.backend, dev, near=1e-3)
    todo = [i for i in range(n) if reasons[i] is None]
    orientation = front_orientation(vertices[todo[0]], faces) if todo else None
    fixed = fixed_focal is not None or not config.optimize_focal
    retry_cfg = None
    if config.retry_below_iou > 0 and not fixed and start is None and (config.retry_own_objective or not own_objective):
        retry_cfg = dataclasses.replace(config, init_fovs_deg=config.retry_fovs_deg,
                                        init_passes=config.retry_passes, retry_below_iou=0.0)
    for s in range(0, len(todo), config.batch_size):
        idx = todo[s:s + config.batch_size]
        ms = [masks[i] for i in idx]
        hw = torch.tensor([m.shape for m in ms], dtype=dt, device=dev)
        f_start = hw[:, 0].clone() if fixed_focal is None else fixed_focal[idx].to(dev, dt)
        warm = None
        if start is not None:
            f_start = start[0][idx].to(dev, dt) if fixed_focal is None else f_start
            t0 = start[1][idx].to(dev, dt)
            warm = (t0[:, 0] / t0[:, 2], t0[:, 1] / t0[:, 2])
        pp = hw.flip(1) / 2 if principal_point is None else principal_point[idx].to(dev, dt)
        ign = [None if ignore is None or ignore[i] is None else torch.as_tensor(ignore[i]).bool() for i in idx]
        args = (vertices[idx], ms, ign, f_start, pp, tz[idx])
        kp = None if keypoints is None else keypoints[idx]
        f_b, t_b, iou_b, best_loss, n_it, score = _solve_batch(*args, faces, config, fixed, render_fn, orientation,
                                                         warm, short_descent, kp)
        again = [j for j in range(len(idx)) if retry_cfg is not None and not bool(score[j] >= config.retry_below_iou)]
        if again:
            sub = [[a[j] for j in again] if isinstance(a, list) else a[again] for a in args]
            r = _solve_batch(*sub, faces, retry_cfg, fixed, render_fn, orientation,
                             keypoints=None if kp is None else kp[again])
            for k, j in enumerate(again):
                n_it[j] += r[4][k]
                if bool(r[5][k] > score[j]):
                    f_b[j], t_b[j], iou_b[j], best_loss[j], score[j] = r[0][k], r[1][k], r[2][k], r[3][k], r[5][k]
        for j, i in enumerate(idx):
            if not (torch.isfinite(f_b[j]) and torch.isfinite(t_b[j]).all()):
                reasons[i] = REJECT_NAN
                continue
            focal[i], transl[i], iou[i], fit[i] = float(f_b[j]), t_b[j].double().cpu(), iou_b[j], float(score[j])
            loss[i], iters[i] = float(best_loss[j]), int(n_it[j])
            if iou_b[j] <= 0:
                reasons[i] = REJECT_NO_OVERLAP
    return CameraSolution(focal_px=focal, transl=transl, mask_iou=iou, iterations=iters,
                          final_loss=loss, reject_reasons=reasons, fit_iou=fit if own_objective else None)
