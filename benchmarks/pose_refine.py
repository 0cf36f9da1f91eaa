"""The pose refined in the solve (``models/body/refine.py``): PVE and MPJPE before and after.

Synthetic people of a world (default ``clothed+segmenter``: segmenter-like masks over clothes
and hair), oracle body shape and ``Tz``, a noisy starting pose (N(0, ``--pose-noise``) rad on
every body-pose component, N(0, ``--orient-noise``) on the global orientation: a regressor's
error), detector keypoints simulated with the noise measured from MediaPipe
(``synth/detector_noise.py``). The camera is solved as the pipeline does for these masks
(``solve_scene`` with the keypoints, ``CameraConfig.mask_weights``), then the pose is refined
against the same keypoints under that camera. Errors, mm: MPJPE over SMPL-X joints 0-21 and
PVE, pelvis-aligned, and PA-MPJPE (Procrustes-aligned); the 2D joint error against the true
joints' projections (box sides). Several ``--prior-weight`` values are compared on the same
people and camera solves.

Usage::

    .venv/bin/python benchmarks/pose_refine.py --num 30 --seed 501 --prior-weight 0.005 0.02 0.08
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality_inputs import detect_keypoints, load_persons, unlisted  # noqa: E402

from poselabel.config import CameraConfig  # noqa: E402
from poselabel.models.body.keypoints import KEYPOINT_JOINTS  # noqa: E402
from poselabel.models.body.landmark_fit import SkeletonModel  # noqa: E402
from poselabel.models.body.model import BodyModel  # noqa: E402
from poselabel.models.body.refine import RefineConfig, refine_pose  # noqa: E402
from poselabel.models.camera.batch import Keypoints  # noqa: E402
from poselabel.models.camera.config import CameraSolverConfig  # noqa: E402
from poselabel.models.camera.scene import solve_scene  # noqa: E402
from poselabel.synth.writer import write_synthetic_shards  # noqa: E402

KP_IDS = list(KEYPOINT_JOINTS)


def procrustes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` (N, K, 3) similarity-aligned to ``b`` (N, K, 3)."""
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        ma, mb = a[i].mean(0), b[i].mean(0)
        x, y = a[i] - ma, b[i] - mb
        u, s, vt = np.linalg.svd(x.T @ y)
        d = np.sign(np.linalg.det(u @ vt))
        s[-1] *= d
        u[:, -1] *= d
        r = u @ vt
        out[i] = (x @ r) * (s.sum() / (x ** 2).sum()) + mb
    return out


def errors(body: BodyModel, betas, orient, pose, gt) -> dict:
    """Per person MPJPE / PA-MPJPE / PVE (mm, pelvis-aligned) of ``(orient, pose)`` against ``gt``."""
    with torch.no_grad():
        out = body(betas, orient.float(), pose.float())
    j, v = out.joints[:, :22].double().numpy(), out.vertices.double().numpy()
    return {"mpjpe": 1000 * np.linalg.norm(j - gt["joints"], axis=-1).mean(1),
            "pa_mpjpe": 1000 * np.linalg.norm(procrustes(j, gt["joints"]) - gt["joints"], axis=-1).mean(1),
            "pve": 1000 * np.linalg.norm(v - gt["verts"], axis=-1).mean(1)}


def error_2d(skeleton, betas, orient, pose, transl, focal, pp, true_uv, seen, side) -> np.ndarray:
    with torch.no_grad():
        cam = skeleton(betas.double(), orient.double(), pose.double())[:, KP_IDS] + transl[:, None]
    uv = focal[:, None, None] * cam[..., :2] / cam[..., 2:].clamp(min=1e-3) + pp[:, None]
    d = (uv - true_uv).norm(dim=-1) / side[:, None]
    return ((d * seen).sum(1) / seen.sum(1).clamp(min=1)).numpy()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=30)
    parser.add_argument("--seed", type=int, default=501)
    parser.add_argument("--world", default="clothed+segmenter", choices=("naked", "clothed", "clothed+segmenter"))
    parser.add_argument("--pose-noise", type=float, default=0.15)
    parser.add_argument("--orient-noise", type=float, default=0.1)
    parser.add_argument("--prior-weight", type=float, nargs="+", default=[RefineConfig().prior_weight])
    parser.add_argument("--pose-sigma", type=float, default=RefineConfig().pose_sigma)
    parser.add_argument("--orient-sigma", type=float, default=RefineConfig().orient_sigma)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as gt_dir:
        write_synthetic_shards(gt_dir, num=args.num, seed=args.seed, max_persons=3, shard_size=args.num, world=args.world)
        persons = load_persons(gt_dir)
        for p in persons:
            p["body_model_path"] = os.path.join(gt_dir, p["body_model"])
        detect_keypoints(persons, args.seed)
        body = BodyModel(persons[0]["body_model_path"])
    skeleton = SkeletonModel(body).double()
    n = len(persons)
    t = lambda key: torch.tensor(np.stack([p[key] for p in persons]), dtype=torch.float32)  # noqa: E731
    betas, orient_gt, pose_gt = t("betas"), t("global_orient"), t("body_pose")
    orient0 = orient_gt + args.orient_noise * torch.from_numpy(rng.normal(size=(n, 3))).float()
    pose0 = pose_gt + args.pose_noise * torch.from_numpy(rng.normal(size=(n, 63))).float()
    with torch.no_grad():
        gt_out = body(betas, orient_gt, pose_gt)
        start = body(betas, orient0, pose0)
    gt = {"joints": (gt_out.joints[:, :22]).double().numpy(), "verts": gt_out.vertices.double().numpy()}
    verts = start.vertices - start.joints[:, :1]
    kp_points = (start.joints[:, KP_IDS] - start.joints[:, :1]).double()
    uv = torch.tensor(np.stack([p["kp_uv"] for p in persons]))
    seen = torch.tensor(np.stack([p["kp_seen"] for p in persons]), dtype=torch.float64)
    true_uv = torch.tensor(np.stack([p["kp_true"] for p in persons]))
    cover, kp_weight = CameraConfig().mask_weights(exact_masks=persons[0]["mask_kind"] != "segmenter")
    # the true depths: each person keeps its own camera, as the camera stage with oracle Tz
    cfg = CameraSolverConfig(cover_weight=cover, keypoint_weight=kp_weight,
                             share_camera=CameraConfig().shares_camera(oracle_tz=True))
    tz = torch.tensor([float(p["transl"][2]) for p in persons])
    t0 = time.process_time()
    sol = solve_scene(verts, body.faces, tz, [torch.from_numpy(p["mask"]) for p in persons],
                      [p["key"] for p in persons], cfg, extra_ignore=[torch.from_numpy(unlisted(p, persons)) for p in persons],
                      keypoints=Keypoints(kp_points, uv, seen))
    solve_s = time.process_time() - t0
    ok = torch.tensor([r is None for r in sol.reject_reasons])
    focal, transl = sol.focal_px, sol.transl
    pp = torch.tensor([[p["cx"], p["cy"]] for p in persons], dtype=torch.float64)
    side = torch.tensor([max(p["bbox"][2] - p["bbox"][0], p["bbox"][3] - p["bbox"][1]) for p in persons], dtype=torch.float64)
    e_f = ((focal - torch.tensor([p["focal"] for p in persons])).abs() / torch.tensor([p["focal"] for p in persons]))[ok]
    rows = {"start": (errors(body, betas, orient0, pose0, gt),
                      error_2d(skeleton, betas, orient0, pose0, transl, focal, pp, true_uv, seen, side))}
    for w in args.prior_weight:
        rc = dataclasses.replace(RefineConfig(), prior_weight=w, pose_sigma=args.pose_sigma,
                                 orient_sigma=args.orient_sigma)
        t0 = time.process_time()
        ref = refine_pose(skeleton, betas[ok], orient0[ok], pose0[ok], focal[ok], transl[ok], pp[ok], KP_IDS,
                          uv[ok], seen[ok], side[ok], rc)
        refine_s = time.process_time() - t0
        orient, pose = orient0.clone().double(), pose0.clone().double()
        orient[ok], pose[ok] = ref.global_orient, ref.body_pose
        rows[f"refined w={w:g}"] = (errors(body, betas, orient, pose, gt),
                                    error_2d(skeleton, betas, orient, pose, transl, focal, pp, true_uv, seen, side))
        print(f"refinement w={w:g}: {refine_s / max(1, int(ok.sum())) * 1000:.1f} ms CPU per person", flush=True)
    okn = ok.numpy()
    print(f"\n{args.world} world, seed {args.seed}: {int(ok.sum())} of {n} people solved "
          f"(camera: median E_f {100 * float(e_f.median()):.1f} %, {solve_s / n:.2f} CPU-s/person); pose noise "
          f"{args.pose_noise} rad, orientation {args.orient_noise} rad; keypoints: 4 % spread, 15 % outliers")
    print(f"{'':18s}{'MPJPE mm':>10s}{'PA-MPJPE':>10s}{'PVE mm':>9s}{'2D err':>8s}   (means over solved people; medians)")
    table = {}
    for name, (e, e2) in rows.items():
        m = {k: float(np.mean(v[okn])) for k, v in e.items()}
        md = {k: float(np.median(v[okn])) for k, v in e.items()}
        table[name] = {"mean": m, "median": md, "err_2d_mean": float(np.mean(e2[okn]))}
        print(f"{name:18s}{m['mpjpe']:10.1f}{m['pa_mpjpe']:10.1f}{m['pve']:9.1f}{np.mean(e2[okn]):8.3f}   "
              f"({md['mpjpe']:.1f} / {md['pa_mpjpe']:.1f} / {md['pve']:.1f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "persons": n, "solved": int(ok.sum()),
                                               "median_e_f": float(e_f.median()), "table": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
