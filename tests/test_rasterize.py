"""Tests of the hard rasteriser and the differentiable silhouette rasterisers."""
from __future__ import annotations

import math

import pytest
import torch

from poselabel.models.render.rasterize import edge_functions, project_points, rasterize_coverage, rasterize_faces

torch.set_num_threads(1)


def ellipsoid_mesh(radii=(0.2, 0.5, 0.15), center=(0.0, 0.0, 0.0), n_lat=12, n_lon=16):
    """A closed UV ellipsoid, outward winding: (V, 3) float64 vertices, (F, 3) long faces."""
    verts = [(0.0, -1.0, 0.0)]
    for i in range(1, n_lat):
        th = math.pi * i / n_lat
        for j in range(n_lon):
            ph = 2 * math.pi * j / n_lon
            verts.append((math.sin(th) * math.cos(ph), -math.cos(th), math.sin(th) * math.sin(ph)))
    verts.append((0.0, 1.0, 0.0))
    v = torch.tensor(verts, dtype=torch.float64) * torch.tensor(radii, dtype=torch.float64)
    v = v + torch.tensor(center, dtype=torch.float64)
    faces = []
    ring = lambda i, j: 1 + (i - 1) * n_lon + (j % n_lon)
    for j in range(n_lon):
        faces.append((0, ring(1, j + 1), ring(1, j)))
    for i in range(1, n_lat - 1):
        for j in range(n_lon):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j), ring(i + 1, j + 1)
            faces.append((a, b, d))
            faces.append((a, d, c))
    last = len(verts) - 1
    for j in range(n_lon):
        faces.append((last, ring(n_lat - 1, j), ring(n_lat - 1, j + 1)))
    return v, torch.tensor(faces, dtype=torch.long)


def brute_force(verts_px, faces, h, w, near=1e-3):
    """Dense reference: every pixel against every face, same inside/tie rules."""
    n = verts_px.shape[0]
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    qx = (xs.reshape(1, -1) + 0.5).to(verts_px.dtype)
    qy = (ys.reshape(1, -1) + 0.5).to(verts_px.dtype)
    fidx = torch.full((n, h * w), -1, dtype=torch.long)
    depth = torch.full((n, h * w), float("inf"), dtype=verts_px.dtype)
    for b in range(n):
        for f in range(faces.shape[0]):
            t = verts_px[b, faces[f]][None]
            if not torch.isfinite(t).all() or (t[0, :, 2] <= near).any():
                continue
            w0, w1, w2, area = edge_functions(t[:, :, :2], qx, qy)
            s = torch.sign(area)
            ok = ((area != 0) & (w0 * s >= 0) & (w1 * s >= 0) & (w2 * s >= 0))[0]
            z = (1.0 / ((w0 / t[:, 0, 2:3] + w1 / t[:, 1, 2:3] + w2 / t[:, 2, 2:3]) / area))[0]
            better = ok & (z < depth[b])
            depth[b] = torch.where(better, z, depth[b])
            fidx[b] = torch.where(better, torch.full_like(fidx[b], f), fidx[b])
    return fidx.view(n, h, w), depth.view(n, h, w)


def test_hard_rasteriser_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    v1, f1 = ellipsoid_mesh((0.3, 0.5, 0.2), (0.05, 0.0, 2.0), 6, 8)
    v2, f2 = ellipsoid_mesh((0.2, 0.2, 0.2), (-0.1, 0.1, 1.6), 5, 7)
    verts = torch.cat([v1, v2])[None].repeat(2, 1, 1)
    verts[1] += torch.tensor([0.1, -0.05, 0.3], dtype=torch.float64)
    verts += 0.01 * torch.randn(verts.shape, generator=g, dtype=torch.float64)
    faces = torch.cat([f1, f2 + v1.shape[0]])
    f = torch.tensor([60.0, 75.0], dtype=torch.float64)
    px = project_points(verts, f, torch.tensor([24.0, 20.0], dtype=torch.float64),
                        torch.tensor([20.0, 22.0], dtype=torch.float64))
    h, w = 41, 47
    fi, dep = rasterize_faces(px, faces, h, w)
    rf, rd = brute_force(px, faces, h, w)
    assert fi.shape == (2, h, w) and fi.dtype == torch.long
    assert (fi >= 0).sum() > 300  # the test mesh covers a good part of the image
    assert torch.equal(fi, rf)
    assert torch.equal(torch.isinf(dep), torch.isinf(rd))
    assert torch.allclose(dep[~torch.isinf(dep)], rd[~torch.isinf(rd)])
    cov = rasterize_coverage(px, faces, h, w)
    assert torch.equal(cov, rf >= 0)


def test_hard_rasteriser_large_faces_and_near_plane():
    # Two big triangles (fallback windows up to 64 px) and one crossing the near plane.
    verts = torch.tensor([[[1.0, 1.0, 2.0], [60.0, 3.0, 2.0], [5.0, 50.0, 2.0],
                           [10.0, 10.0, 1.0], [40.0, 12.0, 3.0], [20.0, 45.0, 1.5],
                           [0.0, 0.0, -1.0]]])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [0, 1, 6]])
    fi, dep = rasterize_faces(verts, faces, 52, 63)
    rf, rd = brute_force(verts, faces, 52, 63)
    assert torch.equal(fi, rf)
    assert (fi == 2).sum() == 0 and (fi == 0).sum() > 100 and (fi == 1).sum() > 100
    assert torch.allclose(dep[fi >= 0], rd[rf >= 0])


def test_empty_and_nan_inputs():
    verts = torch.full((1, 3, 3), float("nan"))
    fi, dep = rasterize_faces(verts, torch.tensor([[0, 1, 2]]), 8, 8)
    assert (fi == -1).all() and torch.isinf(dep).all()
    fi, dep = rasterize_faces(torch.zeros(0, 3, 3), torch.tensor([[0, 1, 2]]), 8, 8)
    assert fi.shape == (0, 8, 8)


# ---- differentiable silhouette -------------------------------------------------------

import torch.nn.functional as F  # noqa: E402

from poselabel.models.camera.windows import gaussian_blur, soft_iou  # noqa: E402
from poselabel.models.render.silhouette import MeshEdges, TorchSilhouetteRasterizer, make_silhouette_rasterizer


def _cam(b, f, c, dtype=torch.float64):
    full = lambda x: torch.full((b,), float(x), dtype=dtype)
    return full(f), full(c), full(c)


def test_silhouette_values_inside_outside():
    v, f = ellipsoid_mesh((0.3, 0.5, 0.2), (0.0, 0.0, 3.0), 10, 14)
    render = make_silhouette_rasterizer("torch", "cpu")
    foc, cx, cy = _cam(1, 100.0, 32.0)
    m = render(v[None], f, foc, cx, cy, (64, 64))
    assert m.shape == (1, 64, 64) and m.dtype == torch.float64
    assert m[0, 32, 32] == 1.0 and m[0, 0, 0] == 0.0 and m[0, 32, 2] == 0.0
    assert ((m == 0) | (m == 1)).all()
    expected = rasterize_coverage(project_points(v[None], foc, cx, cy), f, 64, 64)
    assert torch.equal(m.bool(), expected)
    # Silhouette area close to the analytic ellipse area (pi * a * b * f^2 / z^2).
    assert abs(m.sum().item() / (math.pi * 0.3 * 0.5 * (100 / 3) ** 2) - 1) < 0.05


def test_mesh_edges_and_back_face_culling():
    v, f = ellipsoid_mesh((0.3, 0.5, 0.2), (0.0, 0.0, 2.5), 8, 12)
    edges = MeshEdges(f)
    assert edges.closed_oriented and (edges.opp_b >= 0).all()
    assert edges.v0.numel() == f.shape[0] * 3 // 2
    assert not MeshEdges(f[:-1]).closed_oriented  # an open mesh is never culled
    render = TorchSilhouetteRasterizer()
    foc, cx, cy = _cam(1, 90.0, 24.0)
    render(v[None], f, foc, cx, cy, (48, 48))
    orient = render._mesh_edges(f).orientation
    vol = torch.linalg.det(v[f]).sum()
    assert orient == (1 if vol > 0 else -1)
    flipped = f[:, [0, 2, 1]].contiguous()
    render(v[None], flipped, foc, cx, cy, (48, 48))
    assert render._mesh_edges(flipped).orientation == -orient
    px = project_points(v[None], foc, cx, cy)
    assert torch.equal(rasterize_coverage(px, f, 48, 48, front_orientation=orient),
                       rasterize_coverage(px, f, 48, 48))
    # Two overlapping closed meshes (one in front of the other): culling keeps the union.
    v2, f2 = ellipsoid_mesh((0.1, 0.1, 0.1), (0.0, 0.0, 2.2), 6, 8)
    both_v = torch.cat([v, v2])[None]
    both_f = torch.cat([f, f2 + v.shape[0]])
    pxb = project_points(both_v, foc, cx, cy)
    full = rasterize_coverage(pxb, both_f, 48, 48)
    assert torch.equal(rasterize_coverage(pxb, both_f, 48, 48, front_orientation=orient), full)


def test_edge_sampling_gradient_matches_finite_differences_of_area_coverage():
    """d/d(f, Tx) of a smooth functional of the mask vs central differences of the
    8x-supersampled (area) coverage."""
    v, faces = ellipsoid_mesh((0.25, 0.6, 0.15), (0.0, 0.0, 0.0), 16, 24)
    render = make_silhouette_rasterizer("torch")
    h = w = 48
    yy, xx = torch.meshgrid(torch.arange(h * 8), torch.arange(w * 8), indexing="ij")
    wt = F.avg_pool2d(torch.exp(-((xx / 8.0 - 30) ** 2 + (yy / 8.0 - 22) ** 2) / 200.0)
                      .double()[None, None], 8)[0, 0]

    def loss(foc, tx, ss=1):
        t = torch.stack([tx, torch.tensor(0.02, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)])
        c = torch.tensor([w * ss / 2.0], dtype=torch.float64)
        m = render((v + t)[None], faces, (foc * ss)[None], c, c, (h * ss, w * ss))
        if ss > 1:
            m = F.avg_pool2d(m[:, None], ss)[:, 0]
        return (m[0] * wt).sum()

    foc = torch.tensor(75.0, dtype=torch.float64, requires_grad=True)
    tx = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    loss(foc, tx).backward()
    with torch.no_grad():
        gf = (loss(foc + 1.0, tx, 8) - loss(foc - 1.0, tx, 8)) / 2.0
        gt = (loss(foc, tx + 0.01, 8) - loss(foc, tx - 0.01, 8)) / 0.02
    assert abs(gf) > 0.5 and abs(gt) > 50
    assert abs(foc.grad.item() - gf.item()) < 0.06 * abs(gf.item())
    assert abs(tx.grad.item() - gt.item()) < 0.06 * abs(gt.item())


def test_silhouette_gradient_signs():
    """Moving the mesh toward a target on its right, or enlarging it toward a bigger
    target, must decrease 1 - soft IoU."""
    v, faces = ellipsoid_mesh((0.2, 0.45, 0.15), (0.0, 0.0, 0.0), 12, 16)
    render = make_silhouette_rasterizer("auto", "cpu")
    assert isinstance(render, TorchSilhouetteRasterizer)
    h = w = 64
    c = torch.tensor([32.0], dtype=torch.float64)
    tgt_t = torch.tensor([0.12, 0.0, 3.0], dtype=torch.float64)
    target = render((v + tgt_t)[None], faces, torch.tensor([110.0], dtype=torch.float64), c, c, (h, w))
    target = gaussian_blur(target, 2.0)
    valid = torch.ones_like(target)
    foc = torch.tensor([100.0], dtype=torch.float64, requires_grad=True)
    tx = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    t = torch.stack([tx, torch.tensor(0.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64)])
    m = render((v + t)[None], faces, foc, c, c, (h, w))
    loss = 1 - soft_iou(gaussian_blur(m, 2.0), target, valid)
    loss.sum().backward()
    assert tx.grad.item() < 0 and foc.grad.item() < 0


def test_make_silhouette_rasterizer_rejects_bad_backends():
    with pytest.raises(ValueError):
        make_silhouette_rasterizer("pytorch3d")
    with pytest.raises(ValueError):
        make_silhouette_rasterizer("nvdiffrast", "cpu")


def _has_nvdiffrast_cuda() -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        import nvdiffrast.torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _has_nvdiffrast_cuda(), reason="needs nvdiffrast and a CUDA device")
def test_nvdiffrast_backend_agrees_with_torch_backend():
    dev = torch.device("cuda")
    v, faces = ellipsoid_mesh((0.3, 0.5, 0.2), (0.05, -0.02, 3.0), 16, 24)
    v, faces = v.float().to(dev), faces.to(dev)
    foc, cx, cy = (t.float().to(dev) for t in _cam(1, 100.0, 32.0))
    nv = make_silhouette_rasterizer("nvdiffrast", dev)
    th = make_silhouette_rasterizer("torch", dev)
    a = nv(v[None], faces, foc, cx, cy, (64, 64))
    b = th(v[None], faces, foc, cx, cy, (64, 64))
    inter = (a.round() * b).sum()
    assert inter / (a.round() + b - a.round() * b).sum() > 0.98
    # Same pixel convention: the silhouettes' centroids agree within a tenth of a pixel.
    ys = torch.arange(64, device=dev, dtype=torch.float32)[:, None]
    assert abs(float((a[0] * ys).sum() / a.sum() - (b[0] * ys).sum() / b.sum())) < 0.1
    foc.requires_grad_(True)
    nv(v[None], faces, foc, cx, cy, (64, 64)).sum().backward()
    assert foc.grad.item() > 0  # a larger focal length covers more pixels


def _random_people(n=4, seed=0):
    """(n, V, 3) camera-frame ellipsoid meshes of random size and place, and their faces."""
    g = torch.Generator().manual_seed(seed)
    v, f = ellipsoid_mesh(n_lat=20, n_lon=28)
    scale = 0.6 + 0.8 * torch.rand(n, 1, 3, generator=g, dtype=torch.float64)
    shift = torch.cat([0.3 * torch.randn(n, 1, 2, generator=g, dtype=torch.float64),
                       2.0 + torch.rand(n, 1, 1, generator=g, dtype=torch.float64)], dim=2)
    return v[None] * scale + shift, f


@pytest.mark.parametrize("res", [24, 64, 160])
def test_compiled_coverage_equals_the_torch_loop(res, monkeypatch):
    from poselabel.models.render import kernels
    from poselabel.models.render.silhouette import front_orientation

    if not kernels.available():
        pytest.skip("numba is not importable")
    verts, faces = _random_people()
    for dtype in (torch.float32, torch.float64):
        px = project_points(verts.to(dtype), torch.full((4,), 1.5 * res, dtype=dtype),
                            torch.full((4,), res / 2, dtype=dtype), torch.full((4,), res / 2, dtype=dtype))
        px[1, :5] = float("nan")  # broken vertices drop their faces
        px[2, 7, 2] = 1e-4  # a vertex behind the near plane
        for orient in (None, front_orientation(verts[0], faces)):
            fast = rasterize_coverage(px, faces, res, res, front_orientation=orient)
            with monkeypatch.context() as m:
                m.setattr(kernels, "available", lambda: False)
                slow = rasterize_coverage(px, faces, res, res, front_orientation=orient)
            assert fast.dtype == torch.bool and fast.shape == (4, res, res)
            assert torch.equal(fast, slow), f"{int((fast ^ slow).sum())} pixels differ at {res} px, {dtype}"
            assert fast.any()


@pytest.mark.parametrize("res", [24, 96])
def test_compiled_depth_equals_the_torch_z_buffer(res, monkeypatch):
    from poselabel.models.render import kernels
    from poselabel.models.render.rasterize import rasterize_depth

    if not kernels.available():
        pytest.skip("numba is not importable")
    verts, faces = _random_people(n=2, seed=5)
    behind = verts + torch.tensor([0.2, 0.0, 0.5], dtype=verts.dtype)  # a second body, partly hidden
    verts, faces = torch.cat([verts, behind], dim=1), torch.cat([faces, faces + verts.shape[1]])
    for dtype in (torch.float32, torch.float64):
        px = project_points(verts.to(dtype), torch.full((2,), 1.5 * res, dtype=dtype),
                            torch.full((2,), res / 2, dtype=dtype), torch.full((2,), res / 2, dtype=dtype))
        px[1, :5] = float("nan")  # broken vertices drop their faces
        px[1, 40, 2] = 1e-4  # a vertex behind the near plane
        fast = rasterize_depth(px, faces, res, res)
        slow = rasterize_faces(px, faces, res, res)[1]
        assert fast.dtype == dtype and fast.shape == (2, res, res)
        assert torch.equal(torch.isinf(fast), torch.isinf(slow)) and bool(torch.isfinite(fast).any())
        fin = torch.isfinite(fast)
        torch.testing.assert_close(fast[fin], slow[fin], rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0)
        with monkeypatch.context() as m:  # without numba: the torch z-buffer itself
            m.setattr(kernels, "available", lambda: False)
            assert torch.equal(rasterize_depth(px, faces, res, res), slow)


def test_compiled_edge_gradient_equals_the_torch_loop(monkeypatch):
    from poselabel.models.render import kernels
    from poselabel.models.render.silhouette import TorchSilhouetteRasterizer

    if not kernels.available():
        pytest.skip("numba is not importable")
    verts, faces = _random_people(seed=3)
    res = 64
    target = torch.rand(4, res, res, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def grads():
        v = verts.clone().requires_grad_(True)
        focal = torch.full((4,), 1.5 * res, dtype=torch.float64, requires_grad=True)
        c = torch.full((4,), res / 2, dtype=torch.float64)
        sil = TorchSilhouetteRasterizer()(v, faces, focal, c, c, (res, res))
        ((sil - target) ** 2).sum().backward()
        return sil.detach(), v.grad, focal.grad

    fast = grads()
    with monkeypatch.context() as m:
        m.setattr(kernels, "available", lambda: False)
        slow = grads()
    assert torch.equal(fast[0], slow[0])
    assert fast[1].abs().sum() > 0
    torch.testing.assert_close(fast[1], slow[1], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(fast[2], slow[2], rtol=1e-9, atol=1e-9)


def test_contour_coverage_equals_the_face_kernel():
    """``kernels.coverage_contour`` (signed row crossings of the edges with one front face)
    covers the pixels the face loop covers, broken and near-plane vertices included."""
    from poselabel.models.render import kernels
    from poselabel.models.render.silhouette import MeshEdges, front_orientation

    if not kernels.available():
        pytest.skip("numba is not importable")
    verts, faces = _random_people(seed=7)
    edges = MeshEdges(faces)
    orient = front_orientation(verts[0], faces, edges)
    assert orient is not None
    for res, focal in ((24, 36.0), (96, 150.0), (96, 600.0)):  # the last: bodies far over the border
        px = project_points(verts, torch.full((4,), focal, dtype=torch.float64), torch.full((4,), res / 2.0,
                            dtype=torch.float64), torch.full((4,), res / 2.0, dtype=torch.float64))
        px[1, :5] = float("nan")
        px[2, 7, 2] = 1e-4
        faces_cov = kernels.coverage(px.numpy(), faces.numpy(), res, res, 1e-3, orient)
        edge_cov = kernels.coverage_contour(px.numpy(), *edges.numpy(), edges.dir_a_np, res, res, 1e-3, orient)
        assert faces_cov.any() and not faces_cov.all()
        assert (faces_cov == edge_cov).all(), f"{int((faces_cov != edge_cov).sum())} pixels differ at {res} px"


def test_rigid_silhouettes_equal_the_general_path():
    """The descents' path (``render_rigid``: projection and chain rule in the kernels, coverage
    from the edges that can be on a contour) gives the general path's silhouettes and gradients
    w.r.t. ``T, f, cx, cy``, while the mesh moves within its edge lists' margin and beyond it,
    and for a body cut by the image border."""
    from poselabel.models.render import kernels
    from poselabel.models.render.rigid import active_edges_for, render_rigid
    from poselabel.models.render.silhouette import TorchSilhouetteRasterizer

    if not kernels.available():
        pytest.skip("numba is not importable")
    verts, faces = _random_people(seed=11)
    verts = verts - verts.mean(dim=1, keepdim=True)  # pelvis-like origin; the translation places them
    res = 64
    weights = torch.randn(3, res, res, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    rows = torch.tensor([3, 0, 2])
    rigid_fn, general_fn = TorchSilhouetteRasterizer(), TorchSilhouetteRasterizer()

    def run(fn, transl, focal, rigid):
        params = [t.clone().requires_grad_(True) for t in (transl, focal, torch.full((3,), 30.0, dtype=torch.float64),
                                                           torch.full((3,), 33.0, dtype=torch.float64))]
        if rigid:
            sil = render_rigid(fn, verts, rows, faces, *params, (res, res))
        else:
            sil = fn(verts[rows] + params[0][:, None], faces, *params[1:], (res, res))
        (sil * weights).sum().backward()
        return sil.detach(), [p.grad for p in params]

    base = torch.tensor([[0.05, -0.1, 2.5], [0.3, 0.2, 3.0], [-0.2, 0.0, 2.2]], dtype=torch.float64)
    steps = [(0.0, 100.0), (0.02, 100.0), (0.05, 110.0), (0.5, 100.0), (0.0, 260.0)]  # the last: cut by the border
    for shift, focal in steps:
        transl, f = base + shift, torch.full((3,), focal, dtype=torch.float64)
        fast, slow = run(rigid_fn, transl, f, True), run(general_fn, transl, f, False)
        assert torch.equal(fast[0], slow[0]) and fast[0].any()
        for g_fast, g_slow in zip(fast[1], slow[1]):
            assert g_slow.abs().sum() > 0
            torch.testing.assert_close(g_fast, g_slow, rtol=1e-7, atol=1e-7)
    active = active_edges_for(verts, faces, rigid_fn._mesh_edges(faces))  # the lists the renders kept
    assert 0 < active.count.max() < 0.5 * active.ids.shape[1]  # the lists hold a fraction of the edges


def test_hard_rigid_coverage_equals_rasterize_coverage(monkeypatch):
    """``rigid.hard_coverage`` (the camera start's and full-resolution renders) covers what
    ``rasterize_coverage`` covers for meshes moved by translations near and far from the ones
    their edge lists were made for, for a subset of the meshes, and without culling."""
    from poselabel.models.render import kernels
    from poselabel.models.render.rigid import hard_coverage, project_rigid
    from poselabel.models.render.silhouette import front_orientation

    if not kernels.available():
        pytest.skip("numba is not importable")
    verts, faces = _random_people(seed=13)
    verts = (verts - verts.mean(dim=1, keepdim=True)).float()
    orient = front_orientation(verts[0], faces)
    rows = torch.tensor([1, 3])
    for shift in (0.0, 0.03, 0.8):
        transl = torch.tensor([[0.1, 0.0, 2.5], [-0.2, 0.1, 3.0]]) + shift
        focal, c = torch.tensor([90.0, 140.0]), torch.tensor([40.0, 40.0])
        px = project_rigid(verts, rows, transl, focal, c, c)
        ref_px = project_points(verts[rows] + transl[:, None], focal, c, c)
        assert px.dtype == torch.float64 and torch.allclose(px.float(), ref_px, atol=1e-3)
        for o in (orient, None):
            got = hard_coverage(px, verts, rows, faces, transl, o, 80, 72)
            want = rasterize_coverage(px, faces, 80, 72, front_orientation=o)
            assert got.any() and torch.equal(got, want)
    # a selection of a projected batch, drawn moved (the shift search's crops), with and
    # without the kernels (the torch path serves CUDA tensors)
    every = torch.arange(4)
    transl = torch.tensor([[0.1, 0.0, 2.5]]).repeat(4, 1)
    px = project_rigid(verts, every, transl, torch.full((4,), 120.0), torch.full((4,), 40.0), torch.full((4,), 40.0))
    sel, offset = torch.tensor([2, 0]), torch.tensor([[10.0, 4.0], [3.0, 12.0]])
    moved = px[sel].clone()
    moved[..., :2] -= offset[:, None].double()
    want = rasterize_coverage(moved, faces, 64, 60, front_orientation=orient)
    assert want.any() and torch.equal(hard_coverage(px, verts, sel, faces, transl[sel], orient, 64, 60, sel=sel,
                                                    offset=offset), want)
    with monkeypatch.context() as m:
        m.setattr(kernels, "available", lambda: False)
        assert torch.equal(hard_coverage(px, verts, sel, faces, transl[sel], orient, 64, 60, sel=sel, offset=offset),
                           want)
