"""The camera solve's global start (``models/camera/start.py``) and the mask crops it searches
(``windows.MaskTables``): shift searches, their FFT correlations, the keypoint start."""
from __future__ import annotations

import torch
from test_camera_solver import clothed_person, make_targets, person_mesh

from poselabel.models.render.rasterize import project_points, rasterize_coverage

torch.set_num_threads(1)


def test_shift_search_measures_the_state_it_rendered():
    """``iou0`` of the shift search is the hard IoU of the render where it was drawn (the
    solver's fallback when a predicted shift does not come true), not a prediction."""
    from poselabel.models.camera import windows as cc
    from poselabel.models.camera.start import shift_search, window_evidence

    v, f = person_mesh()
    focal, transl = torch.tensor([200.0, 300.0]), torch.tensor([[0.1, 0.05, 3.0], [-0.3, 0.2, 2.5]])
    masks = make_targets(v[None], f, focal, transl, 120, 160)
    boxes = [cc.mask_bbox(m) for m in masks]
    res = 48
    ev, area_t, window = window_evidence(masks, [None, None], boxes, res, 2.5, "cpu", torch.float32)
    canvas = 4 * res
    cx, cy = torch.full((2,), 80.0), torch.full((2,), 60.0)
    a, b = torch.tensor([0.0, -0.05]), torch.tensor([0.0, 0.1])  # off the truth: IoU well below 1
    score, a1, b1, iou0 = shift_search(v[None].repeat(2, 1, 1), f, transl[:, 2], focal * 1.1, a, b, cx, cy, ev,
                                       area_t, window, res, canvas)
    # Direct: render the same state in the window, compare with the window's target.
    x0, y0, side = window
    fw, cxw, cyw = cc.crop_intrinsics(focal * 1.1, cx, cy, x0, y0, side, res)
    px = project_points(v[None] + torch.stack([a * transl[:, 2], b * transl[:, 2], transl[:, 2]], 1)[:, None], fw, cxw, cyw)
    render = rasterize_coverage(px, f, res, res).float()
    crops = [cc.sample_mask_crop(m, float(x0[i]), float(y0[i]), float(side[i]), res) for i, m in enumerate(masks)]
    target, valid = (torch.stack([c[k] for c in crops]).float() for k in (0, 1))  # valid: inside the image
    inter = (render * target * valid).sum(dim=(1, 2))
    direct = inter / ((render * valid).sum(dim=(1, 2)) + (target * valid).sum(dim=(1, 2)) - inter)
    assert torch.allclose(iou0, direct, atol=1e-3), (iou0, direct)
    assert (direct < 0.9).all() and (score > iou0).all()  # the shift predicts an improvement
    # Some persons alone (start.settle stops a person whose shift was zero): their rows of
    # the full search, bit for bit, from fresh evidence (spectra made for those rows only);
    # the others score -inf and keep their pose.
    ev2 = window_evidence(masks, [None, None], boxes, res, 2.5, "cpu", torch.float32)[0]
    one = torch.tensor([1])
    s1, a2, b2, z1 = shift_search(v[None].repeat(2, 1, 1), f, transl[:, 2], focal * 1.1, a, b, cx, cy, ev2,
                                  area_t, window, res, canvas, persons=one)
    assert s1[1] == score[1] and a2[1] == a1[1] and b2[1] == b1[1] and z1[1] == iou0[1]
    assert s1[0] == float("-inf") == z1[0] and a2[0] == a[0] and b2[0] == b[0]
    pad = next(iter(ev2._spectra))
    assert bool(ev2._spectra[pad][1][1]) and not bool(ev2._spectra[pad][1][0])  # made: row 1 only


def test_shift_search_correlations_equal_torchs_ffts():
    """On the CPU the start's FFTs are scipy's (``start._rfft2``, ``start._xcorr``): the same
    correlations as ``torch.fft`` gives, every offset, whether the padding is most of the
    transform (rows, then columns) or not (one ``rfft2``)."""
    from poselabel.models.camera.start import _rfft2, _xcorr

    g = torch.Generator().manual_seed(4)
    kernel = (torch.rand(3, 20, 20, generator=g) > 0.5).float()
    images = torch.rand(3, 2, 24, 24, generator=g)
    for pad in (44, 64):
        got = _xcorr(_rfft2(kernel, pad), _rfft2(images, pad), pad)
        want = torch.fft.irfft2(torch.fft.rfft2(kernel, s=(pad, pad)).conj()[:, None]
                                * torch.fft.rfft2(images, s=(pad, pad)), s=(pad, pad))
        assert got.shape == (3, 2, pad, pad) and got.dtype == torch.float32
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)
        direct = (kernel[1] * images[1, 0, 2:22, 3:23]).sum()  # offset (2, 3): kernel[y] image[y + o]
        assert abs(float(got[1, 0, 2, 3]) - float(direct)) < 1e-3
        rows = torch.tensor([2, 0])  # some persons' images of the batch's spectra
        some = _xcorr(_rfft2(kernel[rows], pad), _rfft2(images, pad), pad, rows)
        torch.testing.assert_close(some, want[rows], rtol=1e-4, atol=1e-3)


def test_batched_mask_crops_equal_the_per_mask_resampling():
    """MaskTables (one gather for the whole batch) gives sample_mask_crop's values, windows
    inside, across and outside the image, with an ignore mask and an empty mask."""
    from poselabel.models.camera import windows as cc
    from poselabel.models.camera.batch import mask_tables

    g = torch.Generator().manual_seed(3)
    masks = [torch.rand(60, 80, generator=g) > 0.6, torch.zeros(50, 40, dtype=torch.bool),
             torch.rand(70, 30, generator=g) > 0.3, torch.rand(45, 90, generator=g) > 0.5]
    masks[0][:10] = False  # a box that does not start at the image corner
    ignore = [None, None, torch.rand(70, 30, generator=g) > 0.8, None]
    windows = [(-12.3, 5.7, 41.9), (3.0, 3.0, 20.0), (10.5, -30.2, 95.1), (200.0, 10.0, 30.0)]
    tables, ign, hw = mask_tables(masks, ignore, "cpu")
    x0, y0, side = (torch.tensor([w[k] for w in windows], dtype=torch.float64) for k in range(3))
    for res in (8, 33):
        target, valid = cc.crop_evidence(tables, ign, hw, x0, y0, side, res)
        # the compiled crops (CPU) give the torch path's values, bit for bit
        assert torch.equal(target, tables._crops(tables.base, tables.stride, tables.origin, tables.size, x0, y0,
                                                 side, res))
        for i, (m, w) in enumerate(zip(masks, windows)):
            t_ref, v_ref = cc.sample_mask_crop(m, *w, res)
            if ignore[i] is not None:
                v_ref = (v_ref - cc.sample_mask_crop(ignore[i], *w, res)[0]).clamp(min=0)
            assert torch.allclose(target[i], t_ref, atol=1e-9), (i, res)
            assert torch.allclose(valid[i], v_ref, atol=1e-9), (i, res)
        assert target[0].sum() > 1 and target[1].sum() == 0 and target[3].sum() == 0
        assert valid[3].sum() == 0 and (valid[2] < cells_in(hw[2], windows[2], res)).any()
    # each mask's integral (and box) is kept for the next tables of the same mask, not past a change of it
    assert cc.kept_bbox(masks[0]) == cc.mask_bbox(masks[0]) == cc.kept_bbox(masks[0])
    masks[0][20:30, 10:50] = ~masks[0][20:30, 10:50]
    masks[0][59, 79] = True
    assert cc.kept_bbox(masks[0]) == cc.mask_bbox(masks[0]) and cc.kept_bbox(masks[0])[2:] == (80.0, 60.0)
    again = cc.crop_evidence(mask_tables(masks, ignore, "cpu")[0], ign, hw, x0, y0, side, 33)[0]
    assert torch.allclose(again[0], cc.sample_mask_crop(masks[0], *windows[0], 33)[0], atol=1e-9)
    assert torch.equal(again[2], cc.crop_evidence(tables, ign, hw, x0, y0, side, 33)[0][2])
    # The descents' kept crops: the same values as cropping afresh, found again for the same
    # mask, ignore mask, window and size, not after a change of either, nor for another size.
    from poselabel.models.camera.batch import _CROPS, SolveBatch, crop_targets

    def batch(ms, ig):
        z = torch.zeros(len(ms))
        return SolveBatch(torch.zeros(len(ms), 1, 3), ms, ig, z, z, z, z, z, z, [cc.mask_bbox(m) for m in ms])

    kept = crop_targets(batch(masks, ignore), windows, 33, "cpu", torch.float32, keep=True)
    fresh = crop_targets(batch(masks, ignore), windows, 33, "cpu", torch.float32)
    assert all(torch.equal(k, f) for k, f in zip(kept, fresh))
    some = [2, 0]  # a probe's subset of the persons: found again
    again = crop_targets(batch([masks[i] for i in some], [ignore[i] for i in some]), [windows[i] for i in some],
                         33, "cpu", torch.float32, keep=True)
    assert again[0].data_ptr() != kept[0].data_ptr() and torch.equal(again[0], kept[0][some])
    assert [_CROPS.count(m) for m in masks] == [1, 1, 1, 1]  # found, not cropped again
    ignore[2][:35] = ~ignore[2][:35]
    changed = crop_targets(batch(masks, ignore), windows, 33, "cpu", torch.float32, keep=True)[1]
    assert [_CROPS.count(m) for m in masks] == [1, 1, 1, 1]  # the stale crops replaced
    assert not torch.equal(changed[2], kept[1][2]) and torch.equal(changed[0], kept[1][0])
    assert torch.equal(changed, crop_targets(batch(masks, ignore), windows, 33, "cpu", torch.float32)[1])
    other = crop_targets(batch(masks, ignore), windows, 8, "cpu", torch.float32, keep=True)[0]
    assert other.shape == (4, 8, 8)


def cells_in(hw, w, res):
    from poselabel.models.camera import windows as cc
    return cc.cells_inside(hw[None], *(torch.tensor([v], dtype=torch.float64) for v in w), res)[0]


def test_keypoint_start_recovers_the_camera_and_survives_too_few_points():
    """The closed-form keypoint start is exact on exact keypoints, NaN (not an error) where
    fewer than 4 points are weighted or all lie on one spot."""
    from poselabel.models.camera.batch import Keypoints, SolveBatch
    from poselabel.models.camera.start import keypoint_start

    _, _, _, _, joints = clothed_person()
    focal = torch.tensor([180.0, 300.0, 240.0])
    transl = torch.tensor([[0.1, 0.05, 3.0], [-0.15, 0.1, 2.4], [0.0, 0.0, 3.5]])
    cam = joints[None] + transl[:, None]
    uv = focal[:, None, None] * cam[..., :2] / cam[..., 2:] + torch.tensor([80.0, 60.0])
    weight = torch.ones(3, joints.shape[0])
    weight[1, 2:] = 0  # two points only
    pts = joints[None].repeat(3, 1, 1)
    pts[2] = 0.0  # every point on the pelvis: no scale
    n = 3
    batch = SolveBatch(verts=torch.zeros(n, 4, 3), masks=[torch.zeros(4, 4, dtype=torch.bool)] * n,
                       ignore=[None] * n, cx=torch.full((n,), 80.0), cy=torch.full((n,), 60.0), f0=focal.clone(),
                       a0=torch.zeros(n), b0=torch.zeros(n), tz0=transl[:, 2], boxes=[(0, 0, 4, 4)] * n,
                       keypoints=Keypoints(pts, uv, weight))
    f, a, b = keypoint_start(batch, (10.0, 1e4))
    assert abs(float(f[0]) - 180.0) < 0.1 and abs(float(a[0]) * 3.0 - 0.1) < 1e-3 and abs(float(b[0]) * 3.0 - 0.05) < 1e-3
    assert torch.isnan(f[1]) and torch.isnan(f[2])


def test_compiled_shift_scores_equal_the_torch_path():
    """``camera.kernels.best_shifts`` (the shift search's scores, compiled on the CPU) picks
    the shift ``start._best_shifts`` picks, with the same scores, with and without the
    keypoint penalty and an uncovered-target weight below 1, bit for bit."""
    from poselabel.models.camera import kernels as ck
    from poselabel.models.camera.start import _best_shifts

    g = torch.Generator().manual_seed(6)
    b, pad = 4, 37
    inter = torch.rand(b, pad, pad, generator=g) * 50
    corr = torch.stack([inter, inter + torch.rand(b, pad, pad, generator=g) * 80], dim=1)
    corr[3] = 0  # a render that covers nothing: every score 0, the first index wins
    area_t = torch.rand(b, generator=g) * 100 + 1
    zero = torch.tensor([0, 5, 700, pad * pad - 1])
    off = torch.arange(pad, dtype=torch.float32)
    penalty = (torch.tensor([True, False, True, True]), off[None].repeat(b, 1) * 1.7, torch.rand(b, generator=g) * 30,
               torch.rand(b, generator=g) * 30, torch.randn(b, 2, generator=g) * 5, torch.rand(b, generator=g) * 40,
               0.3, torch.rand(b, generator=g) * 50 + 20)
    for cover_weight in (1.0, 0.5):
        for pen in (None, penalty):
            got = ck.best_shifts(corr, area_t, cover_weight, zero, pen)
            want = _best_shifts(corr, area_t, cover_weight, zero, pen)
            assert torch.equal(got[0], want[0]), (got[0], want[0])
            assert torch.equal(got[1], want[1]) and torch.equal(got[2], want[2])  # float32, the same order
            assert got[0][3] == (0 if pen is None else want[0][3])


def test_compiled_bounds_equal_torchs_reductions():
    """``start._bounds`` (compiled on the CPU) is ``amin`` / ``amax`` over the points, NaN
    where a point is NaN (the shift search then crops the whole canvas)."""
    from poselabel.models.camera.start import _bounds

    px = torch.randn(3, 50, 3, dtype=torch.float64) * 40
    px[1, 7, 1] = float("nan")
    lo, hi = _bounds(px)
    want_lo, want_hi = px[..., :2].amin(dim=1), px[..., :2].amax(dim=1)
    assert torch.equal(lo[[0, 2]], want_lo[[0, 2]]) and torch.equal(hi[[0, 2]], want_hi[[0, 2]])
    assert lo[1].isnan().all() and hi[1].isnan().all() and want_lo[1].isnan().any()
