"""Tests of the camera solver (f, Tx, Ty from a mask), its heuristics and the bench command."""
from __future__ import annotations

import dataclasses
import importlib.util
import json

import pytest
import torch
from test_rasterize import ellipsoid_mesh

from poselabel.models.camera.config import (
    REJECT_BEHIND_CAMERA,
    REJECT_EMPTY_MASK,
    REJECT_NAN,
    REJECT_SMALL_MASK,
    CameraSolverConfig,
    SolverStage,
)
from poselabel.models.camera.focal_heuristics import cliff_focal, hmr2_focal, nlf_focal
from poselabel.models.camera.occlusion import occluder_masks
from poselabel.models.camera.solver import solve_camera
from poselabel.models.render.rasterize import project_points, rasterize_coverage

torch.set_num_threads(1)

SMALL = CameraSolverConfig(
    stages=(SolverStage(res=64, blur=2.0, iters=15, lr=1.0), SolverStage(res=128, blur=1.0, iters=15, lr=0.2)),
    init_res=64, init_fovs_deg=(25.0, 40.0, 60.0, 85.0, 110.0),
)


def person_mesh():
    """A closed, person-like union of ellipsoids (m, pelvis near the origin, y down)."""
    parts = [((0.16, 0.27, 0.1), (0.0, -0.22, 0.0)), ((0.09, 0.11, 0.1), (0.0, -0.62, 0.0)),
             ((0.07, 0.4, 0.07), (-0.1, 0.4, 0.02)), ((0.07, 0.4, 0.07), (0.11, 0.38, -0.03)),
             ((0.05, 0.28, 0.05), (-0.26, -0.15, 0.05)), ((0.05, 0.28, 0.05), (0.3, -0.3, 0.0))]
    return ellipsoid_union(parts)


def ellipsoid_union(parts):
    """One mesh of the ellipsoids ``[(radii, centre), ...]`` (m): (V, 3) float, (F, 3) long."""
    vs, fs, off = [], [], 0
    for r, c in parts:
        v, f = ellipsoid_mesh(r, c, 10, 14)
        vs.append(v)
        fs.append(f + off)
        off += v.shape[0]
    return torch.cat(vs).float(), torch.cat(fs)


def make_targets(verts, faces, focal, transl, h, w):
    """Render GT masks: (B,) focal, (B, 3) transl -> list of (h, w) bool masks."""
    b = focal.shape[0]
    px = project_points(verts + transl[:, None], focal, torch.full((b,), w / 2), torch.full((b,), h / 2))
    return list(rasterize_coverage(px, faces, h, w))


def test_solver_recovers_focal_and_translation():
    v, f = person_mesh()
    focal = torch.tensor([150.0, 260.0, 420.0])
    transl = torch.tensor([[0.1, 0.05, 3.0], [-0.2, 0.1, 2.2], [0.05, -0.1, 4.5]])
    masks = make_targets(v[None], f, focal, transl, 120, 160)
    sol = solve_camera(v[None].repeat(3, 1, 1), f, transl[:, 2], masks, SMALL)
    assert sol.reject_reasons == [None, None, None]
    e_f = (sol.focal_px - focal.double()).abs() / focal.double()
    e_txy = (sol.transl[:, :2] - transl[:, :2].double()).norm(dim=1)
    assert e_f.max() < 0.01, e_f
    assert e_txy.max() < 0.005, e_txy
    assert torch.allclose(sol.transl[:, 2], transl[:, 2].double())  # Tz not refined by default
    assert sol.mask_iou.min() > 0.97
    # Early stop: each person stops when its loss no longer falls, within the schedule.
    assert ((sol.iterations > 0) & (sol.iterations <= 30)).all() and torch.isfinite(sol.final_loss).all()
    full = solve_camera(v[None].repeat(3, 1, 1), f, transl[:, 2], masks, dataclasses.replace(SMALL, stop_window=0))
    assert (full.iterations == 30).all()
    assert (full.iterations >= sol.iterations).all()
    assert ((full.focal_px - focal.double()).abs() / focal.double()).max() < 0.01


def test_solver_beats_the_blade_start_and_a_frozen_focal():
    v, f = person_mesh()
    focal, transl = torch.tensor([300.0]), torch.tensor([[0.3, 0.1, 3.0]])
    masks = make_targets(v[None], f, focal, transl, 120, 160)
    blade_start = dataclasses.replace(SMALL, init_rounds=0, init_fovs_deg=(), stages=(SolverStage(64, 2.0, 0, 1.0),),
                                      retry_below_iou=0.0)
    start = solve_camera(v[None], f, transl[:, 2], masks, blade_start)
    frozen = solve_camera(v[None], f, transl[:, 2], masks, SMALL, fixed_focal=torch.tensor([160.0]))
    solved = solve_camera(v[None], f, transl[:, 2], masks, SMALL)
    assert frozen.focal_px.item() == pytest.approx(160.0)
    assert solved.mask_iou.item() > max(start.mask_iou.item(), frozen.mask_iou.item()) + 0.1


def test_second_chance_only_where_the_first_solve_failed():
    """A start that cannot succeed (no focal hypotheses, one descent step) is retried with
    the dense grid, and only there; the retry is kept where it is better."""
    v, f = person_mesh()
    focal = torch.tensor([120.0, 300.0])
    transl = torch.tensor([[0.3, 0.1, 3.0], [0.0, 0.0, 2.0]])
    masks = make_targets(v[None], f, focal, transl, 120, 160)
    weak = dataclasses.replace(SMALL, init_rounds=0, init_fovs_deg=(), stages=(SolverStage(64, 2.0, 1, 1.0),))
    once = solve_camera(v[None].repeat(2, 1, 1), f, transl[:, 2], masks, dataclasses.replace(weak, retry_below_iou=0.0))
    twice = solve_camera(v[None].repeat(2, 1, 1), f, transl[:, 2], masks, weak)
    retried = twice.iterations > once.iterations
    assert retried.any() and torch.equal(retried, once.mask_iou < 0.9)
    assert (twice.mask_iou >= once.mask_iou).all()
    assert (twice.mask_iou[retried] - once.mask_iou[retried]).max() > 0.5
    assert torch.equal(twice.focal_px[~retried], once.focal_px[~retried])


def test_no_second_chance_for_an_own_objective_unless_asked():
    """Fits with their own objective (here: uncovered mask weighted 0.3, as for segmenter masks)
    get no second chance by default (``retry_own_objective``); asked for, the same weak first
    solves are retried and improved."""
    v, f = person_mesh()
    focal = torch.tensor([120.0, 300.0])
    transl = torch.tensor([[0.3, 0.1, 3.0], [0.0, 0.0, 2.0]])
    masks = make_targets(v[None], f, focal, transl, 120, 160)
    weak = dataclasses.replace(SMALL, init_rounds=0, init_fovs_deg=(), stages=(SolverStage(64, 2.0, 1, 1.0),),
                               cover_weight=0.3)
    once = solve_camera(v[None].repeat(2, 1, 1), f, transl[:, 2], masks, dataclasses.replace(weak, retry_below_iou=0.0))
    default = solve_camera(v[None].repeat(2, 1, 1), f, transl[:, 2], masks, weak)
    asked = solve_camera(v[None].repeat(2, 1, 1), f, transl[:, 2], masks,
                         dataclasses.replace(weak, retry_own_objective=True))
    assert torch.equal(default.iterations, once.iterations) and torch.equal(default.focal_px, once.focal_px)
    retried = asked.iterations > once.iterations
    assert retried.any() and (asked.fit_iou[retried] - once.fit_iou[retried]).max() > 0.3


def test_reported_iou_is_the_iou_of_the_returned_camera():
    """Whichever start the solver took (predicted or measured, ``init_verified_below``) and
    whether or not the descent's result was kept, ``mask_iou`` belongs to the returned
    ``focal_px, transl``."""
    v, f = person_mesh()
    focal = torch.tensor([120.0, 300.0, 200.0])
    transl = torch.tensor([[0.3, 0.1, 3.0], [0.0, 0.0, 2.0], [-0.2, 0.05, 1.2]])
    masks = make_targets(v[None], f, focal, transl, 120, 160)
    short = (SolverStage(64, 2.0, 2, 1.0),)
    for cfg in (dataclasses.replace(SMALL, stages=short, init_verified_below=1.0, retry_below_iou=0.0),
                dataclasses.replace(SMALL, stages=short, init_verified_below=0.0)):
        sol = solve_camera(v[None].repeat(3, 1, 1), f, transl[:, 2], masks, cfg)
        fits = make_targets(v[None], f, sol.focal_px.float(), sol.transl.float(), 120, 160)
        direct = torch.tensor([float((a & b).sum()) / float((a | b).sum()) for a, b in zip(fits, masks)])
        assert torch.allclose(sol.mask_iou.float(), direct, atol=1e-4), (sol.mask_iou, direct)


def test_degenerate_inputs_give_reasons_not_exceptions():
    v, f = person_mesh()
    h, w = 96, 128
    focal, transl = torch.tensor([200.0]), torch.tensor([[0.0, 0.0, 3.0]])
    good = make_targets(v[None], f, focal, transl, h, w)[0]
    verts = v[None].repeat(5, 1, 1)
    verts[3, 10, 0] = float("nan")
    tz = torch.tensor([3.0, 3.0, 3.0, 3.0, -1.0])
    tiny = torch.zeros(h, w, dtype=torch.bool)
    tiny[5, 5] = True
    masks = [good, torch.zeros(h, w, dtype=torch.bool), tiny, good, good]
    sol = solve_camera(verts, f, tz, masks, SMALL)
    assert sol.reject_reasons == [None, REJECT_EMPTY_MASK, REJECT_SMALL_MASK, REJECT_NAN, REJECT_BEHIND_CAMERA]
    assert torch.isnan(sol.focal_px[1:]).all() and torch.isnan(sol.mask_iou[1:]).all()
    assert abs(sol.focal_px[0].item() / 200.0 - 1) < 0.01
    # A mesh partly behind the camera is rejected as well.
    near = solve_camera(v[None], f, torch.tensor([0.1]), [good], SMALL)
    assert near.reject_reasons == [REJECT_BEHIND_CAMERA]


def test_crop_solve_matches_full_image_solve():
    v, f = person_mesh()
    h = w = 128
    focal, transl = torch.tensor([180.0]), torch.tensor([[0.15, -0.05, 3.2]])
    masks = make_targets(v[None], f, focal, transl, h, w)
    full_cfg = dataclasses.replace(SMALL, crop_to_person=False, stages=tuple(
        dataclasses.replace(s, res=w) for s in SMALL.stages))
    crop = solve_camera(v[None], f, transl[:, 2], masks, SMALL)
    full = solve_camera(v[None], f, transl[:, 2], masks, full_cfg)
    assert abs(crop.focal_px.item() / full.focal_px.item() - 1) < 0.01
    assert (crop.transl - full.transl).norm() < 0.005
    assert abs(crop.mask_iou.item() - full.mask_iou.item()) < 0.02


def test_occluders_are_ignored():
    """Half the person hidden by another's mask: with the occluder as ``ignore`` the solve
    still recovers the camera."""
    v, f = person_mesh()
    h, w = 120, 160
    focal, transl = torch.tensor([260.0]), torch.tensor([[0.0, 0.0, 2.5]])
    mask = make_targets(v[None], f, focal, transl, h, w)[0]
    occluder = torch.zeros(h, w, dtype=torch.bool)
    occluder[:, 80:] = True
    sol = solve_camera(v[None], f, transl[:, 2], [mask & ~occluder], SMALL, ignore=[occluder])
    assert abs(sol.focal_px.item() / 260.0 - 1) < 0.02
    assert (sol.transl[0, :2] - transl[0, :2].double()).norm() < 0.01


def test_occluders_are_the_people_in_front():
    """Only people nearer the camera (within the margin) are no-evidence regions for a
    person; people behind are evidence of absence; other images never count."""
    h, w = 20, 30
    a = torch.zeros(h, w, dtype=torch.bool)
    a[:, :12] = True
    b = torch.zeros(h, w, dtype=torch.bool)
    b[:, 10:20] = True
    c = torch.zeros(h, w, dtype=torch.bool)
    c[:, 25:] = True
    occ = occluder_masks([a, b, c, b], [2.0, 4.0, 4.5, 1.0], ["img1", "img1", "img1", "img2"], 0.1)
    assert not occ[0].any()  # b and c stand behind a
    assert torch.equal(occ[1], a & ~b)  # a is in front of b
    assert torch.equal(occ[2], (a | b) & ~c)  # a and b stand in front of c
    assert not occ[3].any()  # alone in its image
    # Within the margin either may occlude the other.
    near = occluder_masks([a, b], [2.0, 2.1], [0, 0], 0.1)
    assert torch.equal(near[0], b & ~a) and torch.equal(near[1], a & ~b)


def test_config_validation_and_heuristics():
    with pytest.raises(ValueError):
        CameraSolverConfig(stages=())
    with pytest.raises(ValueError):
        CameraSolverConfig(tz_range=(5.0, 1.0))
    with pytest.raises(ValueError):
        CameraSolverConfig(soft_iou_form="dice")
    w, h = torch.tensor([640.0]), torch.tensor([480.0])
    assert hmr2_focal(w, h).item() == pytest.approx(12500.0)
    assert cliff_focal(w, h).item() == pytest.approx(800.0)
    assert nlf_focal(w, h).item() == pytest.approx(640 / (2 * 0.520567), rel=1e-5)


_HAS_SYNTH = importlib.util.find_spec("poselabel.synth.writer") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _HAS_SYNTH, reason="poselabel.synth.writer not present yet")
def test_bench_camera_end_to_end(tmp_path):
    import argparse

    from poselabel.commands import bench
    from poselabel.synth.writer import write_synthetic_shards

    write_synthetic_shards(str(tmp_path / "gt"), 2, seed=3, max_persons=2)
    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers())
    out = tmp_path / "bench.json"
    args = parser.parse_args(["bench", "camera", "--gt", str(tmp_path / "gt" / "synth-*.tar"),
                              "--limit", "2", "--iters", "8", "--json", str(out), "--tz-noise", "0.05"])
    assert args.func(args) == 0
    result = json.loads(out.read_text())
    assert set(result) == {"num_persons", "mask", "objective", "methods"} and result["mask"] == "body"
    # body silhouettes: symmetric; estimated depths (Tz noise): one camera per image
    assert result["objective"] == {"cover_weight": 1.0, "keypoint_weight": 0.0, "share_camera": True}
    assert 1 <= result["num_persons"] <= 2
    assert set(result["methods"]) == {"solver", "hmr2", "cliff", "nlf"}
    for entry in result["methods"].values():
        assert set(entry) == {"E_f", "E_Txy", "E_Tz", "E_inv_Tz", "mIoU", "mIoU_body", "persons_per_s", "cpu_s_per_person",
                              "renders_per_person", "probes", "shared_camera", "unoccluded"}
        assert 0 <= entry["shared_camera"] <= result["num_persons"]
        assert entry["persons_per_s"] > 0 and entry["cpu_s_per_person"] > 0
        assert entry["renders_per_person"] >= 8  # at least the descent's steps
        assert 0.0 <= entry["mIoU"]["mean"] <= 1.0
    # The solver runs what the camera stage runs: the depth probe on every solved person.
    solver = result["methods"]["solver"]
    assert solver["probes"]["depth_gain"] == result["num_persons"]
    assert result["methods"]["hmr2"]["probes"] == {"focal_margin": 0, "depth_gain": 0}
    assert solver["renders_per_person"] > result["methods"]["hmr2"]["renders_per_person"]
    # With 5 % Tz noise the given Tz is off, and E_Tz reports it.
    assert result["methods"]["solver"]["E_Tz"]["mean"] > 0
    # The HMR 2.0 focal (5000 px per 256 px) is far off on synthetic web-like cameras.
    assert result["methods"]["hmr2"]["E_f"]["median"] > 1.0



def test_bench_camera_solves_segmenter_masks_as_the_camera_stage_does(tmp_path):
    """Clothed+segmenter shards are fitted with the clothed objective the camera stage uses for
    segmenter masks (a user benching them must not get the symmetric IoU's 20 %+ focal errors),
    and ``--solver`` still overrides it."""
    import argparse

    from poselabel.commands import bench
    from poselabel.config import SEGMENTER_MASK_WEIGHTS
    from poselabel.synth.writer import write_synthetic_shards

    write_synthetic_shards(str(tmp_path / "gt"), 1, seed=5, max_persons=1, world="clothed+segmenter")
    parser = argparse.ArgumentParser()
    bench.register(parser.add_subparsers())
    out = tmp_path / "bench.json"
    rows = tmp_path / "persons.csv"
    args = parser.parse_args(["bench", "camera", "--gt", str(tmp_path / "gt" / "synth-*.tar"), "--limit", "1",
                              "--iters", "8", "--methods", "solver", "--no-probes", "--json", str(out),
                              "--per-person", str(rows)])
    assert args.func(args) == 0
    result = json.loads(out.read_text())
    assert result["mask"] == "segmenter"
    import csv

    person = next(csv.DictReader(rows.open()))  # the signed focal error beside the absolute one
    assert abs(abs(float(person["f_ratio"]) - 1.0) - float(person["E_f"])) < 1e-4
    cover, keypoint = SEGMENTER_MASK_WEIGHTS
    # ground-truth depths (no --tz-noise): each person keeps its own camera, as the stage with oracle Tz
    assert result["objective"] == {"cover_weight": cover, "keypoint_weight": keypoint, "share_camera": False}

    assert bench.mask_objective("segmenter") == {"cover_weight": cover, "keypoint_weight": keypoint, "share_camera": False}
    assert bench.mask_objective("body", tz_noise=0.1) == {"cover_weight": 1.0, "keypoint_weight": 0.0, "share_camera": True}
    assert bench.mask_objective("mixed")["cover_weight"] == 1.0
    assert bench.mask_objective("segmenter", {"cover_weight": 0.3, "share_camera": True}) == {
        "cover_weight": 0.3, "keypoint_weight": keypoint, "share_camera": True}


def test_camera_cost_benchmark_runs_the_stage_on_saved_people(tmp_path, monkeypatch, capsys):
    """benchmarks/camera_cost.py: the inputs saved once (safe load), the stage's calls on them,
    and a person-by-person comparison of two runs."""
    import importlib.util
    import sys
    from pathlib import Path

    from poselabel.synth.writer import write_synthetic_shards

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("camera_cost", root / "benchmarks" / "camera_cost.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    write_synthetic_shards(str(tmp_path / "gt"), 1, seed=5, max_persons=1)
    monkeypatch.chdir(root)

    def call(*argv):
        monkeypatch.setattr(sys, "argv", ["camera_cost.py", *argv])
        mod.main()

    inputs, a, b = (str(tmp_path / n) for n in ("in.pt", "a.pt", "b.pt"))
    call("dump", "--gt", str(tmp_path / "gt" / "synth-*.tar"), "--limit", "1", "--out", inputs)
    call("run", inputs, "--out", a)
    call("run", inputs, "--out", b, "--set", "init_passes=1")
    call("compare", a, b)
    out = capsys.readouterr().out
    assert "1 persons:" in out and "CPU-s per person" in out and "gain: " not in out  # one person: no correlation
    res = torch.load(a, weights_only=True)
    assert res["n"] == 1 and res["renders"] > 20 and res["cpu_s"] > 0
    assert torch.isfinite(res["focal"]).all() and 0.5 < float(res["iou"][0]) <= 1.0
    assert torch.isfinite(res["gain"]).all()  # the depth probe ran


def test_warm_schedule_is_the_finer_stages_shortened():
    cfg = CameraSolverConfig()
    warm = cfg.warm_schedule()
    assert [s.res for s in warm] == [s.res for s in cfg.stages[1:]]
    assert [s.iters for s in warm] == [max(1, round(0.4 * s.iters)) for s in cfg.stages[1:]]
    one = dataclasses.replace(cfg, stages=cfg.stages[:1])
    assert one.warm_schedule()[0].res == cfg.stages[0].res  # a single stage is kept
    assert dataclasses.replace(cfg, warm_stages=cfg.stages).warm_schedule() == cfg.stages


def clothed_person():
    """``person_mesh`` and a loose "coat and hair" mesh around it (m), and the centres of its
    parts (K, 3) standing in for joints a keypoint detector sees."""
    v, f = person_mesh()
    parts = [((0.22, 0.33, 0.15), (0.0, -0.18, 0.0)), ((0.2, 0.3, 0.14), (0.0, 0.25, 0.0)),  # coat
             ((0.12, 0.09, 0.12), (0.0, -0.72, 0.0))]  # hair
    gv, gf = ellipsoid_union(parts)
    joints = torch.tensor([(0.0, -0.22, 0.0), (0.0, -0.62, 0.0), (-0.1, 0.4, 0.02), (0.11, 0.38, -0.03),
                           (-0.26, -0.15, 0.05), (0.3, -0.3, 0.0), (-0.1, 0.75, 0.02), (0.11, 0.73, -0.03)])
    return v, f, gv, gf, joints


def test_clothed_masks_need_the_outside_bound_and_keypoints():
    """A mask widened by a coat and hair (the body is 74-75 % of it) inflates the symmetric
    fit's focal length; read as a bound from outside (cover_weight) with the keypoint term,
    the fit recovers it."""
    from poselabel.models.camera.batch import Keypoints

    v, f, gv, gf, joints = clothed_person()
    focal = torch.tensor([180.0, 300.0, 240.0])
    transl = torch.tensor([[0.1, 0.05, 3.0], [-0.15, 0.1, 2.4], [0.0, 0.0, 3.5]])
    body = make_targets(v[None], f, focal, transl, 120, 160)
    masks = [b | c for b, c in zip(body, make_targets(gv[None], gf, focal, transl, 120, 160))]
    cam = joints[None] + transl[:, None]
    uv = focal[:, None, None] * cam[..., :2] / cam[..., 2:] + torch.tensor([80.0, 60.0])
    kp = Keypoints(points=joints[None].repeat(3, 1, 1), uv=uv, weight=torch.ones(3, joints.shape[0]))
    verts = v[None].repeat(3, 1, 1)

    def e_f(cfg, keypoints=None):
        sol = solve_camera(verts, f, transl[:, 2], masks, cfg, keypoints=keypoints)
        return ((sol.focal_px - focal.double()).abs() / focal.double()).mean()

    symmetric = e_f(SMALL)
    assert symmetric > 0.03  # the coat is read as body
    assert e_f(dataclasses.replace(SMALL, cover_weight=0.3, keypoint_weight=0.5), kp) < 0.4 * symmetric
    assert e_f(dataclasses.replace(SMALL, keypoint_weight=0.5), kp) < symmetric  # keypoints alone help too


def test_probe_schedule_drops_the_finest_stage():
    """The probes descend the coarse stages (their start is a perturbed solution); one stage
    is kept whatever the drop, and an explicit ``probe_stages`` wins."""
    import dataclasses

    from poselabel.models.camera.config import CameraSolverConfig, SolverStage

    cfg = CameraSolverConfig()
    assert cfg.probe_schedule() == cfg.stages[:-1]
    assert dataclasses.replace(cfg, probe_drop_fine=0).probe_schedule() == cfg.stages
    one = dataclasses.replace(cfg, stages=cfg.stages[:1])
    assert one.probe_schedule() == cfg.stages[:1]
    own = (SolverStage(res=32, blur=1.0, iters=3, lr=0.5),)
    assert dataclasses.replace(cfg, probe_stages=own).probe_schedule() == own


@pytest.mark.parametrize("cover_weight", [1.0, 0.6])
def test_compiled_loss_equals_blur_and_soft_iou(cover_weight):
    """``windows.blurred_iou_loss`` (the descent's loss, compiled on the CPU) gives the torch
    operations' loss and gradient w.r.t. the silhouettes, at each stage's blur and size,
    an empty silhouette and evidence cut by the border included."""
    from poselabel.models.camera import kernels as ck
    from poselabel.models.camera import windows as cc

    g = torch.Generator().manual_seed(5)
    for res, sigma in ((64, 2.0), (40, 1.5), (33, 1.0)):
        sil = (torch.rand(3, res, res, generator=g) > 0.6).float() * torch.rand(3, res, res, generator=g)
        sil[2] = 0  # nothing rendered: IoU 0, a gradient that only pulls toward the target
        valid = torch.ones(3, res, res)
        valid[:, :, : res // 4] = 0  # outside the image
        target = cc.gaussian_blur((torch.rand(3, res, res, generator=g) > 0.5).float() * valid, sigma)
        weights = torch.tensor([1.0, -0.5, 2.0])
        got_sil, want_sil = sil.clone().requires_grad_(True), sil.clone().requires_grad_(True)
        assert ck.usable(got_sil, "tanimoto", sigma)
        got = cc.blurred_iou_loss(got_sil, valid, target, sigma, "tanimoto", cover_weight)
        pred = cc.gaussian_blur(want_sil * valid, sigma)
        want = 1 - cc.soft_iou(pred, target, torch.ones_like(pred), "tanimoto", cover_weight)
        (got * weights).sum().backward()
        (want * weights).sum().backward()
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
        assert float(got[2].detach()) == pytest.approx(1.0) and float(want_sil.grad[2].abs().max()) > 0
        torch.testing.assert_close(got_sil.grad, want_sil.grad, rtol=1e-4, atol=1e-9)
        assert float(got_sil.grad[:, :, : res // 4].abs().max()) == 0.0  # no gradient where no evidence
    assert not ck.usable(sil, "blade", 1.0)  # BLADE's form: the torch operations
