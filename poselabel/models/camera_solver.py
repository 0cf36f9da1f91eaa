"""BLADE-style camera solve: focal length and translation from a person's mask (pure torch).

Given a posed body mesh with its pelvis at the origin (``V_model − J_model[0]``, camera
axes), a pelvis depth ``Tz`` and the person's mask, find ``f, Tx, Ty`` (and optionally refine
``Tz`` under a prior) so that the mesh rendered with ``V_cam = V + [Tx, Ty, Tz]`` through the
pinhole ``(f, cx, cy)`` (principal point at the image centre) matches the mask: maximise the
soft IoU of Gaussian-blurred masks. The people of one image: ``camera_scene.py``.

Schedule (per batch of persons, all steps batched):
1. Start as BLADE does (``f = image height``, ``T = [0, 0, Tz]``), refine it with
   ``init_rounds`` closed-form rounds from mask moments (``f`` scaled by the square root of
   the area ratio, ``Tx, Ty`` by the centroid offset back-projected at ``Tz``), then a global
   search (``camera_init.py``): that start and a grid of focal hypotheses
   (``init_fovs_deg``), each with every image shift scored at once by FFT
   cross-correlation; the best hard IoU wins. That IoU is predicted by a 2D shift; where
   the winner's full-resolution IoU is below ``init_verified_below``, the best state whose
   IoU was measured on its own render starts instead, if better.
2. Coarse to fine stages in a square crop around the target mask (``crop_scale`` times
   its longer side, kept over the image), resampled to ``res x res`` with exact area
   averaging, intrinsics adjusted (``camera_crops.py``): Adam on ``(log f, Tx/Tz, Ty/Tz,
   log Tz)`` in crop-pixel units, blur and step size shrinking stage by stage; loss
   ``1 − softIoU`` of the blurred masks (Tanimoto form, see ``camera_crops.soft_iou``),
   both masks cut to the evidence (image, not-ignored pixels) before blurring. Each
   person keeps its best iterate of each stage; the next stage starts there.
3. The final mesh is rasterised hard over the whole image at full resolution and compared
   with the mask (ignored pixels excluded): ``mask_iou``. If the descent lowered it below
   the start's (it sees only its crop), the start is kept.
4. Second chance: persons whose ``mask_iou`` is below ``retry_below_iou`` run 1-3 again
   with a denser focal grid (``retry_fovs_deg``) and more passes; the better result is
   kept (``iterations`` counts both descents).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from poselabel.models import camera_crops as cc
from poselabel.models import camera_init
from poselabel.models.rasterize import rasterize_coverage, project_points
from poselabel.models.silhouette import front_orientation, make_silhouette_rasterizer

REJECT_EMPTY_MASK = "empty_mask"
REJECT_SMALL_MASK = "small_mask"
REJECT_BEHIND_CAMERA = "behind_camera"
REJECT_NAN = "nan"
REJECT_NO_OVERLAP = "no_overlap"

_REF_RES = 128.0  # parameter units: 1 = one pixel of the crop sampled at 128 px
_LOG_SCALE = 100.0  # 1 unit of log-f / log-Tz = 1 % (about one crop pixel of body size)


@dataclass(frozen=True)
class SolverStage:
    """One coarse-to-fine stage: working size ``res`` (px), Gaussian ``blur`` sigma (working
    px), ``iters`` Adam steps with step size ``lr`` (crop pixels at 128 px, cosine-decayed
    to ``lr * lr_floor``)."""

    res: int
    blur: float
    iters: int
    lr: float


@dataclass(frozen=True)
class CameraSolverConfig:
    stages: tuple[SolverStage, ...] = (
        SolverStage(res=64, blur=2.0, iters=30, lr=1.0),
        SolverStage(res=128, blur=1.5, iters=30, lr=0.3),
        SolverStage(res=192, blur=1.0, iters=20, lr=0.1),
    )
    lr_floor: float = 0.1
    init_rounds: int = 3  # closed-form moment rounds giving one start candidate (0: BLADE start)
    init_res: int = 128  # global start: search window size (px)
    init_passes: int = 3  # global start: render-and-shift passes per focal hypothesis
    # Global start: the best hypothesis' focal length is then tried scaled by each of these.
    init_refine_scales: tuple[float, ...] = (0.9, 1.11, 0.95, 1.05, 0.975, 1.025)
    # Global start: below this full-resolution IoU the predicted best is replaced by the best
    # measured state, when better (close-ups; _moment_init).
    init_verified_below: float = 0.5
    # Focal hypotheses (FoV of the longer image side, degrees) beside the moment estimate, each
    # after a global shift search (camera_init.py); guards against the moments' failures.
    init_fovs_deg: tuple[float, ...] = (20.0, 28.0, 38.0, 50.0, 65.0, 80.0, 95.0, 110.0, 125.0)
    crop_scale: float = 1.25  # crop side / longer side of the mask's box (clipped to the image)
    crop_to_person: bool = True  # False: the window is the whole image (padded square)
    optimize_focal: bool = True
    refine_tz: bool = False
    tz_prior_sigma: float = 0.05  # relative std of the Tz prior (log-Tz, when refine_tz)
    focal_range: tuple[float, float] = (10.0, 1e4)  # px
    tz_range: tuple[float, float] = (0.3, 50.0)  # m
    min_mask_px: int = 16  # smaller visible masks are rejected (small_mask)
    batch_size: int = 64  # persons per optimisation batch
    backend: str = "auto"  # silhouette rasteriser: auto | torch | nvdiffrast
    near: float = 0.01  # m; any vertex nearer than this: behind_camera
    soft_iou_form: str = "tanimoto"  # tanimoto (unbiased on blurred masks) | blade
    # occlusion.py: another's pixels carry no evidence if they may be in front: Tz_j < Tz_i (1 + margin).
    occluder_depth_margin: float = 0.1
    # camera_scene.solve_scene: re-solve by the depth order of fits of IoU >= depth_order_min_iou;
    # persons below retry_below_iou restart at their image's focal from fits of IoU >= peer_min_iou.
    depth_order: bool = True
    depth_order_min_iou: float = 0.8
    peer_min_iou: float = 0.95
    # Second chance: persons below this full-resolution IoU are solved again with a denser
    # focal grid and more passes; the better of the two is kept. 0 disables.
    retry_below_iou: float = 0.9
    retry_fovs_deg: tuple[float, ...] = (12.0, 14.3, 16.9, 20.0, 23.7, 28.1, 33.3, 39.4, 46.7, 55.3, 65.5,
                                         77.6, 91.9, 108.8, 128.9, 140.0)
    retry_passes: int = 4

    def __post_init__(self):
        if not self.stages or any(s.res < 8 or s.iters < 0 or s.lr < 0 or s.blur < 0 for s in self.stages):
            raise ValueError("camera solver stages need res >= 8, iters >= 0, lr >= 0, blur >= 0")
        if not (0 < self.focal_range[0] < self.focal_range[1]) or not (0 < self.tz_range[0] < self.tz_range[1]):
            raise ValueError("focal_range and tz_range must be increasing positive pairs")
        if self.crop_scale < 1.0 or self.batch_size < 1 or self.init_rounds < 0:
            raise ValueError("crop_scale >= 1, batch_size >= 1, init_rounds >= 0 required")
        if self.soft_iou_form not in ("tanimoto", "blade"):
            raise ValueError(f"unknown soft_iou_form {self.soft_iou_form!r}")
        if self.backend not in ("auto", "torch", "nvdiffrast"):
            raise ValueError(f"unknown backend {self.backend!r}")


@dataclass
class CameraSolution:
    """Per-person results (B = number of persons), on CPU.

    - ``focal_px`` (B,) float64 px; ``transl`` (B, 3) float64 m, pelvis in the camera frame.
    - ``mask_iou`` (B,) hard IoU of the final mesh vs the mask at full resolution.
    - ``iterations`` (B,) long, descent steps run; ``final_loss`` (B,) ``1 − soft IoU`` of the
      best iterate in the last stage (plus the Tz prior term when refining Tz).
    - ``reject_reasons``: per person None or a reason (``empty_mask``, ``small_mask``,
      ``behind_camera``, ``nan``, ``no_overlap``). Rejected persons carry NaN results.
    """

    focal_px: torch.Tensor
    transl: torch.Tensor
    mask_iou: torch.Tensor
    iterations: torch.Tensor
    final_loss: torch.Tensor
    reject_reasons: list[str | None] = field(default_factory=list)


@dataclass
class _Batch:
    """Tensors of one optimisation batch (b persons)."""

    verts: torch.Tensor  # (b, V, 3) pelvis-centred, camera axes, m
    masks: list[torch.Tensor]  # b x (H_i, W_i) bool
    ignore: list[torch.Tensor | None]  # b x (H_i, W_i) bool or None: pixels without evidence
    cx: torch.Tensor  # (b,) principal point, px
    cy: torch.Tensor
    f0: torch.Tensor  # (b,) focal at the start of the descent, px
    a0: torch.Tensor  # (b,) Tx/Tz at the start of the descent
    b0: torch.Tensor  # (b,) Ty/Tz
    tz0: torch.Tensor  # (b,) given Tz (prior centre), m
    boxes: list[tuple[float, float, float, float]]  # target mask boxes (pixel corners)
    orientation: int | None = None  # front_orientation of the mesh (back-face culling)


def _check_inputs(vertices, tz, masks, cfg: CameraSolverConfig) -> list[str | None]:
    reasons: list[str | None] = []
    finite_v = torch.isfinite(vertices).all(dim=(1, 2))
    zmin = vertices[..., 2].amin(dim=1) + tz
    for i, m in enumerate(masks):
        n = int(m.sum())
        if n == 0:
            reasons.append(REJECT_EMPTY_MASK)
        elif n < cfg.min_mask_px:
            reasons.append(REJECT_SMALL_MASK)
        elif not bool(finite_v[i]) or not math.isfinite(float(tz[i])):
            reasons.append(REJECT_NAN)
        elif float(tz[i]) <= 0 or float(zmin[i]) <= cfg.near:
            reasons.append(REJECT_BEHIND_CAMERA)
        else:
            reasons.append(None)
    return reasons


def _decode(batch: _Batch, th_f, th_uv, th_z, windows_side):
    """Parameters (crop-pixel units) -> (f (b,), transl (b, 3))."""
    f = batch.f0 * torch.exp(th_f / _LOG_SCALE)
    unit = windows_side / _REF_RES / batch.f0  # Tx/Tz change per unit
    tz = batch.tz0 * torch.exp(th_z / _LOG_SCALE)
    a = batch.a0 + th_uv[:, 0] * unit
    b = batch.b0 + th_uv[:, 1] * unit
    return f, torch.stack([a * tz, b * tz, tz], dim=1)


def _targets(batch: _Batch, windows, res: int, device, dtype):
    """Targets and evidence weights (b, res, res): inside the image, not ignored."""
    tg, vd = [], []
    for m, ign, w in zip(batch.masks, batch.ignore, windows):
        t, v = cc.sample_mask_crop(m, *w, res)
        if ign is not None:
            v = (v - cc.sample_mask_crop(ign, *w, res)[0]).clamp(min=0)
        tg.append(t)
        vd.append(v)
    return torch.stack(tg).to(device, dtype), torch.stack(vd).to(device, dtype)


def _render_hard(batch, focal, transl, windows, res, faces):
    x0 = torch.tensor([w[0] for w in windows], dtype=focal.dtype, device=focal.device)
    y0 = torch.tensor([w[1] for w in windows], dtype=focal.dtype, device=focal.device)
    side = torch.tensor([w[2] for w in windows], dtype=focal.dtype, device=focal.device)
    fw, cxw, cyw = cc.crop_intrinsics(focal, batch.cx, batch.cy, x0, y0, side, res)
    px = project_points(batch.verts + transl[:, None], fw, cxw, cyw)
    return rasterize_coverage(px, faces, res, res, front_orientation=batch.orientation).to(focal.dtype)


def _transl(tz, a, b):
    """(b, 3) translation from Tz (b,) m and a = Tx/Tz, b = Ty/Tz (b,)."""
    return torch.stack([a * tz, b * tz, tz], dim=1)


def _tensor(values, like):
    return torch.tensor(values, dtype=like.dtype, device=like.device)


def _moment_round(batch: _Batch, faces, cfg, focal, a, b, scale_focal: bool):
    """One closed-form round from (focal, a = Tx/Tz, b = Ty/Tz), all (b,).

    Renders in a window holding the target and the current mesh; the focal length is
    scaled by sqrt(target area / rendered area) (when ``scale_focal``), then Tx, Ty move
    the rendered centroid onto the target's. Returns (focal, a, b, hard IoU before the update).
    """
    res = cfg.init_res
    transl = torch.stack([a * batch.tz0, b * batch.tz0, batch.tz0], dim=1)
    px = project_points(batch.verts + transl[:, None], focal, batch.cx, batch.cy)
    lo, hi = px[..., :2].amin(dim=1).tolist(), px[..., :2].amax(dim=1).tolist()
    windows = [cc.square_around((min(box[0], l[0]), min(box[1], l[1]), max(box[2], h[0]), max(box[3], h[1])), 1.1)
               for box, l, h in zip(batch.boxes, lo, hi)]
    target, valid = _targets(batch, windows, res, focal.device, focal.dtype)
    render = _render_hard(batch, focal, transl, windows, res, faces)
    iou = cc.soft_iou(render, target, valid)
    at, cut, cvt, _ = cc.moments(target, valid)
    ar, cur, cvr, _ = cc.moments(render, valid)
    k = _tensor([w[2] / res for w in windows], focal)
    x0, y0 = _tensor([w[0] for w in windows], focal), _tensor([w[1] for w in windows], focal)
    ok = (ar > 0) & (at > 0)
    s = torch.where(ok, torch.sqrt(at / ar.clamp(min=1e-9)), torch.ones_like(ar)).clamp(0.25, 4.0)
    if not scale_focal:
        s = torch.ones_like(s)
    f_new = (focal * s).clamp(*cfg.focal_range)
    s = f_new / focal
    # Rendered centroid after the focal change (scaling about the principal point).
    ur = batch.cx + s * (x0 + cur * k - batch.cx)
    vr = batch.cy + s * (y0 + cvr * k - batch.cy)
    du = torch.where(ok, x0 + cut * k - ur, torch.zeros_like(ur))
    dv = torch.where(ok, y0 + cvt * k - vr, torch.zeros_like(vr))
    return f_new, a + du / f_new, b + dv / f_new, iou


def _moment_init(batch: _Batch, faces, cfg: CameraSolverConfig, fixed: bool):
    """Start of the descent (module docstring, step 1); updates ``batch.f0/a0/b0`` in place
    and returns its full-resolution IoU (b,).

    Candidates: the BLADE start refined by ``init_rounds`` moment rounds, and (unless the
    focal length is fixed) each ``init_fovs_deg`` hypothesis. Each candidate's image shift
    is searched globally (``camera_init.global_start``); each person keeps the candidate
    of highest hard IoU.
    """
    f, a, b = batch.f0, batch.a0, batch.b0
    for _ in range(cfg.init_rounds):
        f, a, b, _ = _moment_round(batch, faces, cfg, f, a, b, not fixed)
    candidates = [(f, a, b)]
    if not fixed:
        longer = 2 * torch.maximum(batch.cx, batch.cy)  # about the longer image side
        zero = torch.zeros_like(a)
        candidates += [(fh, zero, zero) for fh in camera_init.fov_focals(longer, cfg.init_fovs_deg)]
    f, a, b, _, verified = camera_init.global_start(
        batch.verts, faces, batch.tz0, batch.cx, batch.cy, batch.masks, batch.ignore, batch.boxes, candidates,
        cfg.focal_range, cfg.init_res, passes=cfg.init_passes,
        refine_scales=cfg.init_refine_scales if not fixed else (), orientation=batch.orientation)
    # The search ranks by the IoU its shift *predicts*; in close-ups the 2D-shift model can
    # be far off (an IoU of 0.88 predicted, 0 realised, measured). Where the predicted
    # start barely overlaps at full resolution, its best *measured* state starts instead
    # if that is better. Not always: a measured state of higher start IoU but another
    # basin descended to worse fits than the predicted start did (measured).
    start = _transl(batch.tz0, a, b)
    iou = _full_res_iou(batch, f, start, faces, cfg)
    low = [i for i in range(iou.shape[0]) if bool(iou[i] < cfg.init_verified_below)]
    if low:  # render the measured states only where the predicted start barely overlaps
        sub = dataclasses.replace(batch, verts=batch.verts[low], masks=[batch.masks[i] for i in low],
                                  ignore=[batch.ignore[i] for i in low], cx=batch.cx[low], cy=batch.cy[low])
        fv, av, bv = verified[0][low], verified[1][low], verified[2][low]
        iou_v = _full_res_iou(sub, fv, _transl(batch.tz0[low], av, bv), faces, cfg)
        for k, i in enumerate(low):
            if bool(iou_v[k] > iou[i]):
                f[i], a[i], b[i], iou[i] = fv[k], av[k], bv[k], iou_v[k]
    batch.f0, batch.a0, batch.b0 = f, a, b
    return iou


def _descend(batch: _Batch, faces, cfg: CameraSolverConfig, fixed: bool, render_fn):
    """Coarse-to-fine Adam stages; returns (th_f, th_uv, th_z, best_loss, iterations, windows side)."""
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
    lo_f, hi_f = (_LOG_SCALE * torch.log(torch.tensor(r, dtype=dt, device=dev) / batch.f0) for r in cfg.focal_range)
    lo_z, hi_z = (_LOG_SCALE * torch.log(torch.tensor(r, dtype=dt, device=dev) / batch.tz0) for r in cfg.tz_range)
    best_loss = torch.full((b,), float("inf"), dtype=dt, device=dev)
    iters = 0
    for stage in cfg.stages:
        target, valid = _targets(batch, windows, stage.res, dev, dt)
        # Both masks are cut to the evidence before blurring (image border, ignored pixels
        # such as occluders), so that at the true camera they blur identically.
        target = cc.gaussian_blur(target * valid, stage.blur)
        ones = torch.ones_like(valid)
        params = [t.clone().requires_grad_(True) for t in th]
        active = [p for p, on in zip(params, (not fixed, True, cfg.refine_tz)) if on]
        opt = torch.optim.Adam(active, lr=stage.lr)
        best = [t.clone() for t in th]
        best_loss = torch.full((b,), float("inf"), dtype=dt, device=dev)
        for it in range(stage.iters + 1):  # the extra pass scores the last step
            f, transl = _decode(batch, params[0], params[1], params[2], side)
            fw, cxw, cyw = cc.crop_intrinsics(f, batch.cx, batch.cy, x0, y0, side, stage.res)
            sil = render_fn(batch.verts + transl[:, None], faces, fw, cxw, cyw, (stage.res, stage.res))
            pred = cc.gaussian_blur(sil * valid, stage.blur)
            loss = 1.0 - cc.soft_iou(pred, target, ones, cfg.soft_iou_form)
            if cfg.refine_tz:
                loss = loss + 0.5 * (params[2] / _LOG_SCALE / cfg.tz_prior_sigma) ** 2
            with torch.no_grad():
                better = torch.isfinite(loss) & (loss < best_loss)
                best_loss = torch.where(better, loss, best_loss)
                for bt, p in zip(best, params):
                    sel = better.view(-1, *([1] * (p.dim() - 1)))
                    bt.copy_(torch.where(sel, p, bt))
            if it == stage.iters:
                break
            for group in opt.param_groups:
                group["lr"] = stage.lr * (cfg.lr_floor + (1 - cfg.lr_floor) * 0.5 * (1 + math.cos(math.pi * it / max(1, stage.iters))))
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            for p in params:  # NaN-safe: a person with a broken gradient does not move
                if p.grad is not None:
                    p.grad.nan_to_num_(0.0, 0.0, 0.0)
            opt.step()
            iters += 1
            with torch.no_grad():
                params[0].copy_(torch.maximum(torch.minimum(params[0], hi_f), lo_f))
                params[2].copy_(torch.maximum(torch.minimum(params[2], hi_z), lo_z))
        th = best
    return th, best_loss, iters, side


def _full_res_iou(batch: _Batch, focal, transl, faces, cfg: CameraSolverConfig) -> torch.Tensor:
    """Hard IoU with the mask over the whole image at full resolution, ignored pixels excluded."""
    b = focal.shape[0]
    out = torch.zeros(b, dtype=torch.float64)
    boxes = [(0, 0, m.shape[1], m.shape[0]) for m in batch.masks]
    hmax = max(by1 - by0 for _, by0, _, by1 in boxes)
    wmax = max(bx1 - bx0 for bx0, _, bx1, _ in boxes)
    step = max(1, (1 << 23) // max(1, hmax * wmax))
    for s in range(0, b, step):
        idx = list(range(s, min(b, s + step)))
        bx0 = torch.tensor([boxes[i][0] for i in idx], dtype=focal.dtype, device=focal.device)
        by0 = torch.tensor([boxes[i][1] for i in idx], dtype=focal.dtype, device=focal.device)
        px = project_points(batch.verts[idx] + transl[idx, None], focal[idx],
                            batch.cx[idx] - bx0, batch.cy[idx] - by0)
        cov = rasterize_coverage(px, faces, hmax, wmax, front_orientation=batch.orientation).cpu()
        for j, i in enumerate(idx):
            x0, y0, x1, y1 = boxes[i]
            r = cov[j, : y1 - y0, : x1 - x0]
            if batch.ignore[i] is not None:
                r = r & ~batch.ignore[i][y0:y1, x0:x1].cpu()
            g = batch.masks[i][y0:y1, x0:x1].cpu()
            inter = float((r & g).sum())
            union = float(r.sum()) + float(batch.masks[i].sum()) - inter
            out[i] = inter / union if union > 0 else 0.0
    return out


def _solve_batch(verts, masks, ignore, f_start, pp, tz, faces, config: CameraSolverConfig, fixed: bool,
                 render_fn, orientation, warm=None):
    """Start, descent and full-resolution check of one batch (b persons); see ``solve_camera``.

    ``warm``: optional ``(Tx/Tz, Ty/Tz)`` (b,) each: start the descent at ``f_start`` and
    that translation instead of the global search.
    Returns ``(focal (b,), transl (b, 3), mask_iou (b,), best_loss (b,), iterations int)``.
    """
    dev, dt = verts.device, verts.dtype
    zero = torch.zeros(len(masks), dtype=dt, device=dev)
    batch = _Batch(verts=verts, masks=masks, ignore=ignore, cx=pp[:, 0], cy=pp[:, 1],
                   f0=f_start.clamp(*config.focal_range), a0=zero if warm is None else warm[0],
                   b0=zero if warm is None else warm[1],
                   tz0=tz.clamp(*config.tz_range), boxes=[cc.mask_bbox(m) for m in masks],
                   orientation=orientation)
    with torch.no_grad():
        if warm is None:
            start_iou = _moment_init(batch, faces, config, fixed)
        else:
            start_iou = _full_res_iou(batch, batch.f0, _transl(batch.tz0, batch.a0, batch.b0), faces, config)
        start_f = batch.f0.clone()
        start_t = _transl(batch.tz0, batch.a0, batch.b0)
    th, best_loss, n_it, side = _descend(batch, faces, config, fixed, render_fn)
    with torch.no_grad():
        f_b, t_b = _decode(batch, th[0], th[1], th[2], side)
        iou_b = _full_res_iou(batch, f_b, t_b, faces, config)
        # The descent only sees its crop: where it lost full-resolution IoU (e.g. it
        # moved mesh into image areas outside the crop), keep the start.
        worse = ~(iou_b >= start_iou)
        f_b = torch.where(worse, start_f, f_b)
        t_b = torch.where(worse[:, None].to(t_b.device), start_t, t_b)
        iou_b = torch.where(worse, start_iou, iou_b)
    return f_b, t_b, iou_b, best_loss, n_it


def solve_camera(vertices: torch.Tensor, faces: torch.Tensor, tz: torch.Tensor,
                 masks: Sequence[torch.Tensor], config: CameraSolverConfig = CameraSolverConfig(),
                 *, fixed_focal: torch.Tensor | None = None, principal_point: torch.Tensor | None = None,
                 ignore: Sequence[torch.Tensor | None] | None = None, render_fn=None,
                 start: tuple[torch.Tensor, torch.Tensor] | None = None) -> CameraSolution:
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
    masks = [torch.as_tensor(m).bool() for m in masks]
    if len(masks) != n:
        raise ValueError(f"{n} meshes but {len(masks)} masks")
    reasons = _check_inputs(vertices, tz, masks, config)
    render_fn = render_fn or make_silhouette_rasterizer(config.backend, dev, near=1e-3)
    todo = [i for i in range(n) if reasons[i] is None]
    orientation = front_orientation(vertices[todo[0]], faces) if todo else None
    fixed = fixed_focal is not None or not config.optimize_focal
    retry_cfg = None
    if config.retry_below_iou > 0 and not fixed and start is None:
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
        f_b, t_b, iou_b, best_loss, n_it = _solve_batch(*args, faces, config, fixed, render_fn, orientation, warm)
        n_it = torch.full((len(idx),), n_it, dtype=torch.long)
        again = [j for j in range(len(idx)) if retry_cfg is not None and not bool(iou_b[j] >= config.retry_below_iou)]
        if again:
            sub = [[a[j] for j in again] if isinstance(a, list) else a[again] for a in args]
            r = _solve_batch(*sub, faces, retry_cfg, fixed, render_fn, orientation)
            for k, j in enumerate(again):
                n_it[j] += r[4]
                if bool(r[2][k] > iou_b[j]):
                    f_b[j], t_b[j], iou_b[j], best_loss[j] = r[0][k], r[1][k], r[2][k], r[3][k]
        for j, i in enumerate(idx):
            if not (torch.isfinite(f_b[j]) and torch.isfinite(t_b[j]).all()):
                reasons[i] = REJECT_NAN
                continue
            focal[i], transl[i], iou[i] = float(f_b[j]), t_b[j].double().cpu(), iou_b[j]
            loss[i], iters[i] = float(best_loss[j]), int(n_it[j])
            if iou_b[j] <= 0:
                reasons[i] = REJECT_NO_OVERLAP
    return CameraSolution(focal_px=focal, transl=transl, mask_iou=iou, iterations=iters,
                          final_loss=loss, reject_reasons=reasons)
