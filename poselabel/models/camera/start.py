"""Global start for the camera solve: focal hypotheses x all image shifts, by FFT (pure torch).

With ``Tz`` fixed, the image of the body is, to first order, the template silhouette
scaled by ``f / Tz`` and shifted by ``(f Tx / Tz, f Ty / Tz)``. For each focal hypothesis
we render the mesh once (hard) and score *every* shift at once: the intersection with
the target and the rendered area seen by the evidence weights are cross-correlations,
computed with FFTs. The hard IoU at the best shift scores the hypothesis; a second pass
re-renders each hypothesis at its best shift (perspective changes the shape off-axis)
and searches again, a few times. Moment-based starts fail on truncated or occluded people;
this does not.

Frames: the search window is a square of the full image around the target's box
(``window_scale`` times its longer side) sampled at ``res x res``; the render canvas is a
same-scale square centred on the window, on the window's pixel grid, ``canvas_factor``
times larger: every part of the body that can be shifted onto the target is on it. (It
was centred on the projected pelvis: in close-ups the pelvis projects far outside the
image and the visible part fell off the canvas.) Offsets are in window pixels.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np
import scipy.fft
import torch

from poselabel.models.camera import kernels as camera_kernels
from poselabel.models.camera import windows as cc
from poselabel.models.camera.batch import (
    SolveBatch,
    crop_targets,
    full_res_iou,
    keypoint_residuals,
    mask_tables,
    render_hard,
    tensor_like,
    transl_from_ratios,
    window_tensors,
)
from poselabel.models.camera.config import CameraSolverConfig
from poselabel.models.render import kernels as render_kernels
from poselabel.models.render.rasterize import project_points
from poselabel.models.render.rigid import hard_coverage, project_rigid


def _rfft2(x: torch.Tensor, pad: int) -> torch.Tensor:
    """``torch.fft.rfft2(x, s=(pad, pad))``; on the CPU scipy's (pocketfft in single precision:
    0.3-0.75x the time of torch's at the sizes searched here, measured 2026-12-07)."""
    if x.device.type != "cpu":
        return torch.fft.rfft2(x, s=(pad, pad))
    if 2 * x.shape[-2] <= pad:  # mostly zero rows: transform the image's rows alone, then the columns (2x faster)
        rows = scipy.fft.rfft(x.numpy(), n=pad, axis=-1)
        return torch.from_numpy(scipy.fft.fft(rows, n=pad, axis=-2, overwrite_x=True))
    return torch.from_numpy(scipy.fft.rfft2(x.numpy(), s=(pad, pad)))


def _xcorr(kernel_f: torch.Tensor, images_f: torch.Tensor, pad: int, rows: torch.Tensor | None = None) -> torch.Tensor:
    """``out[..., o] = Σ_y kernel[y] image[y + o]`` from the operands' ``rfft2`` at size (P, P):
    ``kernel_f`` (b, P, P // 2 + 1), ``images_f`` (B, K, P, P // 2 + 1) of which the ``rows`` (b,)
    (default: all, B = b) -> (b, K, P, P), offset ``o`` stored at ``o mod P`` (no aliasing when
    P >= n_kernel + n_image - 1). On the CPU the inverse is scipy's (0.4x the time of torch's
    ``irfft2`` at 256-512, measured 2026-12-07), the rows taken straight into its input."""
    if kernel_f.device.type != "cpu":
        sel = images_f if rows is None else images_f.index_select(0, rows)
        return torch.fft.irfft2(kernel_f.conj()[:, None] * sel, s=(pad, pad))
    spectra = images_f.numpy()
    if rows is None:
        prod = spectra * np.conj(kernel_f.numpy())[:, None]
    else:
        prod = np.take(spectra, rows.numpy(), axis=0)
        prod *= np.conj(kernel_f.numpy())[:, None]
    return torch.from_numpy(scipy.fft.irfft2(prod, s=(pad, pad), overwrite_x=True))


class WindowEvidence:
    """What ``shift_search`` scores against: per person the window's (res x res) target
    (area fractions) times the evidence weights and the weights, and their ``rfft2`` at each
    FFT size asked for, made for the persons asked for (cached: the searches of one start
    share them; a person's body size picks its FFT size, so most sizes serve a few persons)."""

    def __init__(self, target_valid: torch.Tensor, valid: torch.Tensor):
        self.images = torch.stack([target_valid, valid], dim=1)  # (B, 2, res, res)
        self._spectra: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def spectra(self, pad: int, rows: torch.Tensor | None = None) -> torch.Tensor:
        """rfft2 of (target * valid, valid) at size (pad, pad): (B, 2, pad, pad // 2 + 1), of
        which the ``rows`` (default: all) are made; the others are not to be read."""
        n = self.images.shape[0]
        if pad not in self._spectra:
            if rows is None or rows.numel() == n:
                self._spectra[pad] = (_rfft2(self.images, pad), torch.ones(n, dtype=torch.bool))
                return self._spectra[pad][0]
            # Not zeroed: the pages of rows never made are never touched.
            empty = torch.empty(n, 2, pad, pad // 2 + 1, dtype=torch.complex64 if self.images.dtype == torch.float32
                                else torch.complex128, device=self.images.device)
            self._spectra[pad] = (empty, torch.zeros(n, dtype=torch.bool))
        spectra, made = self._spectra[pad]
        want = torch.ones(n, dtype=torch.bool) if rows is None else torch.zeros(n, dtype=torch.bool).index_fill_(0, rows.cpu(), True)
        missing = torch.nonzero(want & ~made).squeeze(1)
        if missing.numel():
            spectra[missing.to(spectra.device)] = _rfft2(self.images[missing.to(self.images.device)], pad)
            made[missing] = True
        return spectra


@functools.lru_cache(maxsize=32)
def _fft_sides(res: int, canvas: int, step: float = 1.15) -> tuple[int, ...]:
    """The render sides a search may crop to (ascending, the canvas last): ``side = pad - res``
    for FFT sizes ``pad`` of the form 2^i 3^j 5^k (pocketfft's fast sizes), each about ``step``
    times the one before, from ``res + canvas / 8`` up; then the canvas (its pad as it is)."""
    lo, hi = res + max(1, canvas // 8), res + canvas
    smooth = sorted(n for n in range(lo, hi) if n % 2 == 0 and _is_smooth(n))
    pads = []
    for n in smooth:
        if not pads or n >= pads[-1] * step:
            pads.append(n)
    return tuple(p - res for p in pads) + (canvas,)


def _is_smooth(n: int) -> bool:
    for q in (2, 3, 5):
        while n % q == 0:
            n //= q
    return n == 1


def shift_search(verts, faces, tz, focal, a, b, cx, cy, evidence, area_t, window, res: int,
                 canvas: int, orientation: int | None = None, cover_weight: float = 1.0, keypoints=None,
                 persons: torch.Tensor | None = None):
    """Best image shift of the mesh rendered at (focal, a, b) against the window's target.

    Args:
        verts: (B, V, 3) pelvis-centred mesh (m). tz, focal, a, b, cx, cy: (B,) each
            (``a = Tx / Tz``, ``b = Ty / Tz``; px for the others).
        evidence: ``WindowEvidence`` of the B windows (``window_evidence``).
        area_t: (B,) target area seen by the weights (window px).
        window: (x0 (B,), y0 (B,), side (B,)) the window in full-image px.
        canvas: side of the render canvas (window px), centred on the window: what of the
            body lies outside it is not seen.
        orientation: ``front_orientation`` of the mesh (back-face culling) or None.
        cover_weight: the weight of uncovered target in the union (``windows.soft_iou``).
        keypoints: optional ``(Keypoints, box_side (B,) px, weight)``: each shift's score
            loses ``weight`` x the RMS distance of the shifted projected points to their
            keypoints over ``box_side`` (closed form over all shifts: a shift ``s`` moves
            every residual by ``s``).
        persons: (n,) long, ascending: search only these of the B (default all); the others'
            scores are -inf and their pose is returned as given.

    Each person is rendered only on the part of the canvas its projected vertices span (a
    square of a side in ``_fft_sides``, or the canvas); every shift is
    then scored by FFTs of size ``res + side`` instead of ``res + canvas``: the same scores
    (the render is empty elsewhere) at a fraction of the cost for bodies smaller than the canvas.

    Returns:
        ``(iou (B,), a (B,), b (B,), iou0 (B,))``: the best score (hard IoU, less the
        keypoint penalty) over shifts and the shifted pose, and the score of the unshifted
        render (exact: what was rendered).
    """
    batch_a, batch_b = a, b
    if persons is not None:  # the persons' own rows of every per-person input; verts and evidence by ``every``
        tz, focal, a, b, cx, cy, area_t = (t.index_select(0, persons) for t in (tz, focal, a, b, cx, cy, area_t))
        window = tuple(t.index_select(0, persons) for t in window)
        if keypoints is not None:
            keypoints = (keypoints[0][persons], keypoints[1].index_select(0, persons), keypoints[2])
    every = torch.arange(verts.shape[0], device=verts.device) if persons is None else persons
    x0, y0, side = window
    k = side / res  # full px per window px
    transl = torch.stack([a * tz, b * tz, tz], dim=1)
    # Canvas origin on the window grid, canvas centred on the window: whatever part of the
    # body is near the target is on it, however far the pelvis projects (close-ups).
    origin = float((res - canvas) // 2)
    fw, cxw, cyw = cc.crop_intrinsics(focal, cx, cy, x0 + origin * k, y0 + origin * k, side, res)
    px = project_rigid(verts, every, transl, fw, cxw, cyw)  # canvas px
    # Each person's body on the canvas: the pixel centres its vertices' box holds.
    lo, hi = _bounds(px)
    lo = torch.nan_to_num(lo.to(a.dtype), nan=0.0).clamp(0, canvas)
    hi = torch.nan_to_num(hi.to(a.dtype), nan=float(canvas)).clamp(0, canvas)
    c0 = torch.floor(lo - 0.5).clamp(min=0)  # (B, 2) first column, row that may be covered
    extent = (torch.ceil(hi - 0.5) - c0 + 1).clamp(min=1).amax(dim=1)  # (B,)
    sides = _fft_sides(res, canvas)
    side_t = torch.tensor(sides, dtype=extent.dtype, device=extent.device)
    size = side_t[torch.searchsorted(side_t, extent).clamp(max=len(sides) - 1)]  # smallest side >= extent
    c0 = torch.minimum(c0, (canvas - size)[:, None])  # the crop stays on the canvas
    nx, ny = origin + c0[:, 0], origin + c0[:, 1]  # (B,) crop origin on the window grid
    score = torch.empty_like(a)
    iou0 = torch.empty_like(a)
    du, dv = torch.zeros_like(a), torch.zeros_like(a)
    for s_ in sides:
        rows = torch.nonzero(size == s_).squeeze(1)
        if rows.numel() == 0:
            continue
        render = hard_coverage(px, verts, every[rows], faces, transl[rows], orientation, s_, s_, sel=rows,
                               offset=c0[rows]).to(area_t.dtype)
        pad = res + s_
        render_f = _rfft2(render, pad)
        # the batch's rows (ascending: all of them are 0..B-1)
        ev_rows = None if rows.numel() == evidence.images.shape[0] else every[rows]
        corr = _xcorr(render_f, evidence.spectra(pad, ev_rows), pad, ev_rows)  # (b, 2, P, P) inter, area
        # Crop offsets o in [-(s_ - 1), res - 1]: index i holds o = i (i < res) or i - pad.
        idx = torch.arange(pad, device=corr.device)
        off = torch.where(idx < res, idx, idx - pad)
        nxr, nyr = nx[rows], ny[rows]
        penalty = None
        if keypoints is not None:
            kp, box_side, weight = keypoints
            on, mean, msq = _keypoint_stats(kp[rows], focal[rows], transl[rows], cx[rows], cy[rows])
            # full px of each index along either axis (rows: y, columns: x), and where the points were projected
            penalty = (on, off.to(k.dtype)[None] * k[rows, None], nxr * k[rows], nyr * k[rows], mean, msq, weight,
                       box_side[rows])
        # the render where it was drawn: offset (nx, ny), at index nx mod pad
        zero = (nyr.long() % pad) * pad + nxr.long() % pad
        if corr.device.type == "cpu" and camera_kernels.available() and corr.dtype == torch.float32:
            best, score[rows], iou0[rows] = camera_kernels.best_shifts(corr, area_t[rows], cover_weight, zero, penalty)
        else:
            best, score[rows], iou0[rows] = _best_shifts(corr, area_t[rows], cover_weight, zero, penalty)
        oy, ox = off[best // pad].to(a.dtype), off[best % pad].to(a.dtype)
        seen = render.flatten(1).any(dim=1)  # a body off the canvas scores 0 everywhere: it stays
        du[rows] = torch.where(seen, (ox - nxr) * k[rows], torch.zeros_like(ox))  # full px the render moves by
        dv[rows] = torch.where(seen, (oy - nyr) * k[rows], torch.zeros_like(oy))
    a, b = a + du / focal, b + dv / focal
    if persons is None:
        return score, a, b, iou0
    out = [torch.full_like(batch_a, float("-inf")), batch_a.clone(), batch_b.clone(), torch.full_like(batch_a, float("-inf"))]
    for o, v in zip(out, (score, a, b, iou0)):
        o.index_copy_(0, persons, v)
    return tuple(out)


def window_evidence(masks, ignore, boxes, res: int, window_scale: float, device, dtype, tables=None):
    """The search windows and what ``shift_search`` scores against.

    Returns ``(evidence, area_t, window)`` as ``shift_search`` takes them: the
    ``WindowEvidence`` of the windows' (res x res) target and evidence weights, the target
    area seen by the weights (B,) and the windows ``(x0, y0, side)`` (each (B,), full-image px);
    any canvas side may search them.
    ``tables``: ``mask_tables(masks, ignore, device)`` when the caller has them already.
    """
    wins = [cc.square_in_image(bx, window_scale, *m.shape) for bx, m in zip(boxes, masks)]
    tables, ign, hw = tables or mask_tables(masks, ignore, device)
    x0, y0, side = window_tensors(wins, tables.device)
    target, valid = (t.to(device, dtype) for t in cc.crop_evidence(tables, ign, hw, x0, y0, side, res))
    window = tuple(w.to(device, dtype) for w in (x0, y0, side))
    return WindowEvidence(target * valid, valid), (target * valid).sum(dim=(1, 2)), window


def _bounds(px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(px[..., :2].amin(1), px[..., :2].amax(1))``, (b, 2) each (compiled on the CPU)."""
    if px.device.type == "cpu" and render_kernels.available():
        box = torch.from_numpy(render_kernels.bounds(px.numpy()))
        return box[:, :2], box[:, 2:]
    return px[..., :2].amin(dim=1), px[..., :2].amax(dim=1)


def _keypoint_stats(kp, focal, transl, cx, cy):
    """What the keypoint penalty of every shift needs (``kernels.best_shifts``): per person
    ``(on (b,) bool: any weighted point, mean (b, 2) px: weighted mean residual, msq (b,) px²:
    weighted mean squared residual)`` at the rendered pose."""
    r = keypoint_residuals(kp, focal, transl, cx, cy)  # (b, K, 2)
    w = kp.weight / kp.weight.sum(dim=1, keepdim=True).clamp(min=1e-9)
    return (kp.weight.sum(dim=1) > 0), (w[..., None] * r).sum(dim=1), (w * (r ** 2).sum(dim=-1)).sum(dim=1)


def _best_shifts(corr, area_t, cover_weight, zero, penalty=None):
    """``kernels.best_shifts`` in torch (CUDA, or where numba is missing): the same arguments,
    the same scores (hard IoU less the keypoint penalty) and argmax."""
    inter, area_r = corr.unbind(1)
    at = area_t[:, None, None]
    if cover_weight == 1.0:
        iou = inter / (area_r + at - inter).clamp(min=1e-6)
    else:
        iou = inter / (area_r + cover_weight * (at - inter)).clamp(min=1e-6)
    if penalty is not None:
        on, offk, oxk, oyk, mean, msq, weight, box_side = penalty
        sx, sy = (offk - oxk[:, None])[:, None, :], (offk - oyk[:, None])[:, :, None]
        sq = msq[:, None, None] + 2 * (sx * mean[:, 0, None, None] + sy * mean[:, 1, None, None]) + sx ** 2 + sy ** 2
        pen = weight * torch.sqrt(sq.clamp(min=0)) / box_side[:, None, None]
        iou = iou - torch.where(on[:, None, None], pen, torch.zeros_like(pen))
    flat = iou.flatten(1)
    best = flat.argmax(dim=1)
    return best, flat.gather(1, best[:, None])[:, 0], flat.gather(1, zero[:, None])[:, 0]


def keypoint_start(batch: SolveBatch, focal_range, min_points: int = 4):
    """Closed-form ``(f, a = Tx / Tz, b = Ty / Tz)`` (b,) each from the keypoints at the given
    ``Tz`` (NaN where fewer than ``min_points`` are weighted): with ``d_k = Z_k + Tz``,
    ``u_k − cx = f X_k / d_k + (f Tx) / d_k`` and likewise for ``v``: weighted linear least
    squares in ``(f, f Tx, f Ty)`` (BLADE's start uses keypoints too)."""
    kp = batch.keypoints
    tz = batch.tz0[:, None]
    d = (kp.points[..., 2] + tz).clamp(min=1e-3)  # (b, K)
    w = kp.weight * (kp.points[..., 2] + tz > 1e-3)
    zero = torch.zeros_like(d)
    # Rows: u equations then v equations; columns: f, f Tx, f Ty.
    a_u = torch.stack([kp.points[..., 0] / d, 1 / d, zero], dim=-1)
    a_v = torch.stack([kp.points[..., 1] / d, zero, 1 / d], dim=-1)
    mat = torch.cat([a_u, a_v], dim=1) * torch.cat([w, w], dim=1).sqrt()[..., None]  # (b, 2K, 3)
    rhs = torch.cat([kp.uv[..., 0] - batch.cx[:, None], kp.uv[..., 1] - batch.cy[:, None]], dim=1)
    rhs = rhs * torch.cat([w, w], dim=1).sqrt()
    mat, rhs = mat.double(), rhs.double()
    eye = torch.eye(3, dtype=mat.dtype, device=mat.device)
    gram = mat.transpose(1, 2) @ mat
    enough = (w > 0).sum(dim=1) >= min_points
    # A ridge relative to the scale keeps degenerate layouts solvable; too few points: identity.
    ridge = 1e-9 * gram.diagonal(dim1=1, dim2=2).sum(dim=1).clamp(min=1e-12)
    gram = torch.where(enough[:, None, None], gram + ridge[:, None, None] * eye, eye)
    sol = torch.linalg.solve(gram, mat.transpose(1, 2) @ rhs[..., None])[..., 0].to(batch.tz0.dtype)  # (b, 3)
    f = sol[:, 0]
    ok = enough & torch.isfinite(f) & (f > 0)
    f_safe = torch.where(ok, f, torch.ones_like(f))
    nan = torch.full_like(f, float("nan"))
    return (torch.where(ok, f.clamp(*focal_range), nan), torch.where(ok, sol[:, 1] / f_safe / batch.tz0, nan),
            torch.where(ok, sol[:, 2] / f_safe / batch.tz0, nan))


def global_start(verts, faces, tz, cx, cy, masks, ignore, boxes, candidates, focal_range,
                 res: int = 128, window_scale: float = 2.5, canvas_factor: float = 4, passes: int = 3,
                 refine_scales=(0.9, 1.11, 0.95, 1.05, 0.975, 1.025), orientation: int | None = None,
                 search_res: int | None = None, tables=None, cover_weight: float = 1.0, keypoints=None,
                 settle_canvas_factor: float | None = 2.0, refine_canvas_factor: float | None = None):
    """Pick, per person, the best focal hypothesis after shift searches, then refine it.

    Every hypothesis gets ``passes`` shift searches, each re-rendered at the previous
    pass's shift: the 2D-shift model is only first order (off-axis the view of the body
    changes, strongly so at close range), so the fixed point of render-and-shift is what
    a hypothesis is scored by. Scoring a hypothesis after one pass picked wrong focal
    lengths on close-ups (measured: the GT focal length among the hypotheses, yet the
    wrong one won). Then the best focal length is scaled by each of ``refine_scales`` in
    turn (two passes each), keeping any improvement: a local search finer than the grid.

    The hypotheses are searched at ``search_res`` (default ``res``), the refinement at ``res``:
    a coarser search costs a quarter at half the size, and the refinement restores the
    finer window's precision.

    Canvas: the hypotheses may place the body anywhere, so they render on a canvas
    ``canvas_factor`` times the window; the winner's settling and refinement (which scales
    ``f`` about the pelvis' pixel) start with the body on the target and render on
    ``settle_canvas_factor`` times the window (None: ``canvas_factor``), the refinement on
    ``refine_canvas_factor`` times it (None: the settling's): the FFTs' cost goes
    with the square of ``res + canvas``, 0.36 at 2 against 4. (A canvas of 1.5-2.5 for the
    hypotheses' later passes too lost IoU on close-ups, whose bodies overflow it: 60 people
    of the 500-person set, 2026-12-06.)

    Args:
        verts: (B, V, 3) pelvis-centred meshes (m); faces (F, 3); tz, cx, cy: (B,).
        candidates: list of ``(focal (B,), a (B,), b (B,))`` starting hypotheses.
        masks, ignore, boxes: per person target mask (H, W) bool, ignore mask or None,
            target box ``(x0, y0, x1, y1)``.

    Returns:
        ``(focal, a, b, iou, verified)``: the best hypothesis, each (B,), and its hard IoU
        (window res) as the shift search predicts it; ``verified`` (4, B) rows
        ``(focal, a, b, iou)``: the best state whose IoU was measured on its own render.
    """
    dev, dt = verts.device, verts.dtype
    tables = tables or mask_tables(masks, ignore, dev)
    near = settle_canvas_factor or canvas_factor
    levels = {}  # per window size: the windows' evidence, whatever canvas searches it (spectra cached per FFT size)

    def level(r, factor):
        if r not in levels:
            levels[r] = window_evidence(masks, ignore, boxes, r, window_scale, dev, dt, tables)
        return (*levels[r], int(round(factor * r)))

    verified = None  # best state whose IoU was measured on its own render (not predicted)

    def settle(focal, a, b, n, r=res, factor=near):
        nonlocal verified
        best = None
        persons = None  # a person whose best shift was zero would render and score the same again: it stops
        for _ in range(max(1, n)):
            if persons is not None and persons.numel() == 0:
                break
            evidence, area_t, window, canvas = level(r, factor)
            iou, a1, b1, iou0 = shift_search(verts, faces, tz, focal, a, b, cx, cy, evidence, area_t, window,
                                             r, canvas, orientation, cover_weight, keypoints, persons)
            seen = torch.stack([focal, a, b, iou0])
            verified = seen if verified is None else torch.where((iou0 > verified[3])[None], seen, verified)
            new = torch.stack([focal, a1, b1, iou])
            # Close-ups can oscillate between passes: keep each person's best pass.
            best = new if best is None else torch.where((iou > best[3])[None], new, best)
            persons = torch.nonzero((a1 != a) | (b1 != b)).squeeze(1)
            a, b = a1, b1
        return best

    found = torch.stack([settle(focal.clamp(*focal_range), a, b, passes, search_res or res, canvas_factor)
                         for focal, a, b in candidates])
    best = found.gather(0, found[:, 3].argmax(dim=0)[None, None].expand(1, 4, -1))[0]  # (4, B)
    if search_res and search_res != res:  # the winner settles again in the finer window
        best = settle(best[0], best[1], best[2], passes)
    for s in refine_scales:
        f_s = (best[0] * s).clamp(*focal_range)
        # a / s, b / s keep the pelvis on its pixel (u = f a + cx): the body scales in place
        a_s, b_s = best[1] * best[0] / f_s, best[2] * best[0] / f_s
        new = settle(f_s, a_s, b_s, 2, factor=refine_canvas_factor or near)
        best = torch.where((new[3] > best[3])[None], new, best)
    return best[0], best[1], best[2], best[3], verified


def fov_focals(longer_side: torch.Tensor, fovs_deg) -> list[torch.Tensor]:
    """Focal lengths (px) giving each field of view (degrees) on the longer image side."""
    return [longer_side / (2 * math.tan(math.radians(f) / 2)) for f in fovs_deg]


def moment_round(batch: SolveBatch, faces, cfg, focal, a, b, scale_focal: bool):
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
    target, valid = crop_targets(batch, windows, res, focal.device, focal.dtype)
    render = render_hard(batch, focal, transl, windows, res, faces)
    iou = cc.soft_iou(render, target, valid)
    at, cut, cvt, _ = cc.moments(target, valid)
    ar, cur, cvr, _ = cc.moments(render, valid)
    k = tensor_like([w[2] / res for w in windows], focal)
    x0, y0 = tensor_like([w[0] for w in windows], focal), tensor_like([w[1] for w in windows], focal)
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


def moment_start(batch: SolveBatch, faces, cfg: CameraSolverConfig, fixed: bool):
    """Start of the descent (module docstring, step 1); updates ``batch.f0/a0/b0`` in place
    and returns its full-resolution IoU (b,).

    Candidates: the BLADE start refined by ``init_rounds`` moment rounds, and (unless the
    focal length is fixed) each ``init_fovs_deg`` hypothesis. Each candidate's image shift
    is searched globally (``global_start``); each person keeps the candidate
    of highest hard IoU.
    """
    f, a, b = batch.f0, batch.a0, batch.b0
    for _ in range(cfg.init_rounds):
        f, a, b, _ = moment_round(batch, faces, cfg, f, a, b, not fixed)
    candidates = [(f, a, b)]
    kp_search = None
    if batch.keypoints is not None and cfg.keypoint_weight > 0:
        kp_search = (batch.keypoints, batch.box_side, cfg.keypoint_weight)
        fk, ak, bk = keypoint_start(batch, cfg.focal_range)
        if fixed:
            fk = f
        ok = torch.isfinite(ak)
        candidates.append((torch.where(ok, fk, f), torch.where(ok, ak, a), torch.where(ok, bk, b)))
    if not fixed:
        longer = 2 * torch.maximum(batch.cx, batch.cy)  # about the longer image side
        zero = torch.zeros_like(a)
        candidates += [(fh, zero, zero) for fh in fov_focals(longer, cfg.init_fovs_deg)]
    f, a, b, _, verified = global_start(
        batch.verts, faces, batch.tz0, batch.cx, batch.cy, batch.masks, batch.ignore, batch.boxes, candidates,
        cfg.focal_range, cfg.init_res, passes=cfg.init_passes, search_res=cfg.init_search_res,
        refine_scales=cfg.init_refine_scales if not fixed else (), orientation=batch.orientation,
        tables=batch.tables, cover_weight=cfg.cover_weight, keypoints=kp_search, canvas_factor=cfg.init_canvas,
        settle_canvas_factor=cfg.init_settle_canvas, refine_canvas_factor=cfg.init_refine_canvas)
    # The search ranks by the IoU its shift *predicts*; in close-ups the 2D-shift model can
    # be far off (an IoU of 0.88 predicted, 0 realised, measured). Where the predicted
    # start barely overlaps at full resolution, its best *measured* state starts instead
    # if that is better. Not always: a measured state of higher start IoU but another
    # basin descended to worse fits than the predicted start did (measured).
    start = transl_from_ratios(batch.tz0, a, b)
    iou = full_res_iou(batch, f, start, faces, cfg)
    low = [i for i in range(iou.shape[0]) if bool(iou[i] < cfg.init_verified_below)]
    if low:  # render the measured states only where the predicted start barely overlaps
        sub = dataclasses.replace(batch, verts=batch.verts[low], masks=[batch.masks[i] for i in low],
                                  ignore=[batch.ignore[i] for i in low], cx=batch.cx[low], cy=batch.cy[low],
                                  boxes=[batch.boxes[i] for i in low],
                                  keypoints=None if batch.keypoints is None else batch.keypoints[low])
        fv, av, bv = verified[0][low], verified[1][low], verified[2][low]
        iou_v = full_res_iou(sub, fv, transl_from_ratios(batch.tz0[low], av, bv), faces, cfg)
        for k, i in enumerate(low):
            if bool(iou_v[k] > iou[i]):
                f[i], a[i], b[i], iou[i] = fv[k], av[k], bv[k], iou_v[k]
    batch.f0, batch.a0, batch.b0 = f, a, b
    return iou
