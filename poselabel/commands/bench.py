"""``poselabel bench camera``: the camera solver against focal heuristics on ground truth.

Reads synthetic ground-truth shards (ARCHITECTURE.md: ``<key>.json``, ``<key>.mask.png``
with value ``i + 1`` for person ``i``), poses each person's GT body with the pelvis at the
origin, and solves ``f, Tx, Ty`` from the GT visible mask at the GT (or noised) ``Tz``:

- ``solver``: the BLADE-style solve (``poselabel/models/camera/solver.py``);
- ``hmr2``, ``cliff``, ``nlf``: ``f`` fixed by the heuristic, ``Tx, Ty`` fitted to the same
  mask by the same solver with ``f`` frozen.

Metrics (BLADE's): ``E_f = |f̂ − f| / f``, ``E_Txy = ‖T̂xy − Txy‖`` (m), ``E_Tz`` (m),
``E_inv_Tz = |1/T̂z − 1/Tz|`` (1/m), ``mIoU`` (fraction): hard IoU of the rendered mesh with
the GT mask at full resolution.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import posixpath
import time

log = logging.getLogger(__name__)

METHODS = ("solver", "hmr2", "cliff", "nlf")
METRICS = ("E_f", "E_Txy", "E_Tz", "E_inv_Tz", "mIoU")


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks on ground-truth shards")
    sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    cam = sub.add_parser(
        "camera", help="camera solver (f, Tx, Ty) vs focal heuristics on GT mesh, Tz and mask",
        description="Solve f, Tx, Ty per person from the GT visible mask, GT mesh and GT (or "
                    "noised) Tz; compare with the HMR 2.0, CLIFF and NLF focal heuristics.")
    cam.add_argument("--gt", required=True, help="GT shard pattern (paths, globs, {a..b}, gs://)")
    cam.add_argument("--body-model", default=None,
                     help="SMPL-X .npz; default: each sample's json body_model, next to its shard")
    cam.add_argument("--tz-noise", type=float, default=0.0,
                     help="relative std of multiplicative Tz noise: Tz (1 + N(0, REL))")
    cam.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    cam.add_argument("--json", default=None, help="write the results as JSON here")
    cam.add_argument("--limit", type=int, default=None, help="at most N persons")
    cam.add_argument("--iters", type=int, default=None,
                     help="total descent steps, spread over the stages like the default schedule")
    cam.add_argument("--seed", type=int, default=0, help="seed of the Tz noise")
    cam.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ",".join(METHODS))
    cam.add_argument("--min-mask-px", type=int, default=64, help="skip persons with fewer visible pixels")
    cam.add_argument("--principal-point", default="gt", choices=("gt", "center"),
                     help="principal point given to every method: the GT camera's or the image centre")
    cam.add_argument("--batch-size", type=int, default=64, help="persons per solver batch")
    cam.add_argument("--per-person", default=None, help="write every person's errors per method here (CSV)")
    cam.add_argument("--one-pass", action="store_true",
                     help="solve each person once, occluders by pelvis depth only (no depth-ordered "
                          "re-solve, no focal length shared within an image)")
    cam.add_argument("--no-probes", action="store_true",
                     help="solver without the focal-margin and depth-gain probes (the camera stage runs them)")
    cam.add_argument("--keypoint-noise", type=float, default=None, metavar="REL",
                     help="give the solver 2D keypoints: the GT joints paired with MediaPipe's landmarks, "
                          "projected by the GT camera, plus Gaussian noise of REL x the mask box's longer side "
                          "(default: no keypoints)")
    cam.add_argument("--keypoint-outliers", type=float, default=0.0, metavar="SHARE",
                     help="with --keypoint-noise, this share of the keypoints are gross outliers, thrown "
                          "20-60 %% of the box side (MediaPipe on renders: 0.15, synth/detector_noise.py)")
    cam.add_argument("--solver", action="append", default=[], metavar="KEY=JSON",
                     help="override a CameraSolverConfig field, e.g. --solver cover_weight=0.3 (repeatable)")
    cam.add_argument("--mask", default="auto", choices=("auto", "segmenter", "body"),
                     help="mask fitted: auto = the segmenter-like mask of clothed-world shards (segmask.png) "
                          "when present, else the body silhouette (mask.png); body = always the body "
                          "silhouette, for comparison")
    cam.add_argument("--workers", type=int, default=1,
                     help="solver processes (one torch thread each); persons/s is for all of them")
    cam.set_defaults(func=run_camera)


@dataclasses.dataclass
class GTPersons:
    """Ground-truth persons (N of them), CPU tensors.

    ``verts`` (N, V, 3) pelvis-centred camera-axes mesh (m); ``faces`` (F, 3);
    ``focal`` (N,) px; ``pp`` (N, 2) principal point px; ``size`` (N, 2) ``[W, H]`` px;
    ``transl`` (N, 3) m; ``masks`` N x (H, W) bool; ``others`` N x (H, W) bool, the other
    people's pixels (the person may be hidden there: no evidence); ``occluded`` (N,) bool,
    the GT mesh rendered with the GT camera is hidden by others somewhere (GT IoU < 0.99);
    ``keys`` N ``(key, person_index)``; ``images`` N ints, persons with equal values share
    an image; ``joints`` (N, J, 3) the GT joints in ``verts``' frame (m).
    """

    verts: object
    faces: object
    focal: object
    pp: object
    size: object
    transl: object
    masks: list
    others: list
    occluded: object
    keys: list
    skipped: int
    images: list = dataclasses.field(default_factory=list)
    joints: object = None
    mask_used: str = "body"  # "body" (mask.png) or "segmenter" (segmask.png), or "mixed"
    body_masks: list = dataclasses.field(default_factory=list)  # N x (H, W) bool visible body silhouettes


def load_gt_persons(pattern: str, body_model: str | None = None, limit: int | None = None,
                    min_mask_px: int = 64, mask: str = "auto") -> GTPersons:
    """Read GT shards and pose every person (pelvis at the origin) with the GT body model.

    ``mask`` (``ground_truth.person_masks``): the mask each person is fitted to, ``auto``
    the segmenter-like ``segmask.png`` when a sample has one, else the body ``mask.png``.
    ``occluded`` is always judged on the body mask (is the GT mesh fully visible)."""
    import numpy as np
    import torch
    from poselabel.io.shards import iter_samples, list_shards
    from poselabel.models.body.model import BodyModel
    from poselabel.models.ground_truth import decode_instances, person_masks

    models: dict[str, BodyModel] = {}
    from poselabel.models.render.rasterize import project_points, rasterize_coverage

    verts, focal, pp, size, transl, masks, others, occluded, keys, joints = [], [], [], [], [], [], [], [], [], []
    body_masks = []
    faces, skipped, images, n_images, used = None, 0, [], 0, set()
    for shard in list_shards(pattern):
        for sample in iter_samples(shard):
            if limit is not None and len(keys) >= limit:
                break
            meta = json.loads(sample.members["json"])
            inst = decode_instances(sample.members["mask.png"])
            fit_masks, kind = person_masks(sample.members, meta, mask)
            used.add(kind)
            union = np.logical_or.reduce(fit_masks) if kind == "segmenter" else inst > 0
            path = body_model or posixpath.join(posixpath.dirname(shard), meta["body_model"])
            if path not in models:
                models[path] = BodyModel(path)
            model = models[path]
            persons = meta["persons"]
            todo = []
            for i, p in enumerate(persons):
                m = fit_masks[i]
                if int(m.sum()) < min_mask_px:
                    skipped += 1
                    continue
                todo.append((i, p, m))
            if not todo:
                continue
            if limit is not None:
                todo = todo[: limit - len(keys)]
            cam = meta["camera"]
            with torch.no_grad():
                out = model(torch.tensor([p["betas"] for _, p, _ in todo], dtype=torch.float32),
                            torch.tensor([p["global_orient"] for _, p, _ in todo], dtype=torch.float32),
                            torch.tensor([p["body_pose"] for _, p, _ in todo], dtype=torch.float32), None)
            v = out.vertices - out.joints[:, :1]
            if faces is None:
                faces = model.faces.cpu()
            elif not torch.equal(faces, model.faces.cpu()):
                raise ValueError("all GT persons must share one body model topology")
            t_gt = torch.tensor([p["transl"] for _, p, _ in todo], dtype=torch.float32)
            n = len(todo)
            px = project_points(v + t_gt[:, None], torch.full((n,), float(cam["focal_px"])),
                                torch.full((n,), float(cam["cx"])), torch.full((n,), float(cam["cy"])))
            full = rasterize_coverage(px, model.faces.cpu(), inst.shape[0], inst.shape[1])
            for j, (i, p, m) in enumerate(todo):
                mt, body_m = torch.from_numpy(m), torch.from_numpy(inst == i + 1)
                gt_iou = float((full[j] & body_m).sum()) / max(1.0, float((full[j] | body_m).sum()))
                occluded.append(gt_iou < 0.99)
                others.append(torch.from_numpy(union & ~m))
                body_masks.append(body_m)
                verts.append(v[j])
                joints.append(out.joints[j] - out.joints[j, :1])
                focal.append(cam["focal_px"])
                pp.append((cam["cx"], cam["cy"]))
                size.append((meta["width"], meta["height"]))
                transl.append(p["transl"])
                masks.append(mt)
                keys.append((f"{sample.shard}/{sample.key}", i))
                images.append(n_images)
            n_images += 1
    if not keys:
        raise ValueError(f"no usable person in {pattern!r} ({skipped} skipped)")
    return GTPersons(verts=torch.stack(verts), faces=faces, focal=torch.tensor(focal, dtype=torch.float64),
                     pp=torch.tensor(pp, dtype=torch.float64), size=torch.tensor(size, dtype=torch.float64),
                     transl=torch.tensor(transl, dtype=torch.float64), masks=masks, others=others,
                     occluded=torch.tensor(occluded), keys=keys, skipped=skipped, images=images,
                     joints=torch.stack(joints), mask_used=used.pop() if len(used) == 1 else "mixed", body_masks=body_masks)


def scaled_config(iters: int | None, batch_size: int):
    """The default solver config, with ``iters`` descent steps spread over its stages."""
    from poselabel.models.camera.config import CameraSolverConfig

    cfg = CameraSolverConfig(batch_size=batch_size)
    if iters is None:
        return cfg
    total = sum(s.iters for s in cfg.stages)
    stages = tuple(dataclasses.replace(s, iters=max(1, round(iters * s.iters / total))) for s in cfg.stages)
    return dataclasses.replace(cfg, stages=stages)


def _summary(values) -> dict[str, float]:
    import torch

    v = values[torch.isfinite(values)]
    if v.numel() == 0:
        return {"mean": float("nan"), "median": float("nan")}
    return {"mean": float(v.mean()), "median": float(v.median())}


def unbenched(gt: GTPersons) -> list:
    """Per person, the pixels of its image's people left out of the bench (tiny visible
    masks): they may stand in front and are never evidence (``solve_scene``'s
    ``extra_ignore``); the benched people's mutual occlusion is ``solve_scene``'s."""
    kept = {}
    for g, m in zip(gt.images, gt.masks):
        kept[g] = kept[g] | m if g in kept else m.clone()
    return [o & ~kept[g] for o, g in zip(gt.others, gt.images)]


def _solve_chunk(args):
    """One chunk of whole images: ``(solution, focal_margin (b,), depth_gain (b,), renders,
    CPU seconds)``. The solver (``fixed`` None) runs what the camera stage runs, the scene
    passes and both probes (``probes``); a fixed focal length, the scene passes alone."""
    import torch

    from poselabel.models.camera.scene import solve_scene, solve_scene_with_probes
    from poselabel.models.render.rasterize import render_count

    torch.set_num_threads(1)
    verts, faces, tz, masks, groups, cfg, fixed, pp, extra, probes, kp = args
    renders, cpu = render_count(), time.process_time()
    nan = torch.full((verts.shape[0],), float("nan"), dtype=torch.float64)
    if fixed is None and probes:
        sol, _, margin, gain = solve_scene_with_probes(verts, faces, tz, masks, groups, cfg, principal_point=pp,
                                                       extra_ignore=extra, keypoints=kp)
    else:
        sol = solve_scene(verts, faces, tz, masks, groups, cfg, fixed_focal=fixed, principal_point=pp,
                          extra_ignore=extra, keypoints=kp)
        margin = gain = nan
    return sol, margin, gain, render_count() - renders, time.process_time() - cpu


def _chunks(groups: list, size: int) -> list:
    """Slices of about ``size`` persons that never split an image (``groups`` sorted by image)."""
    out, start = [], 0
    for i in range(1, len(groups) + 1):
        if i == len(groups) or (i - start >= size and groups[i] != groups[i - 1]):
            out.append(slice(start, i))
            start = i
    return out


def _solve_all(verts, faces, tz, masks, groups, cfg, fixed, pp, extra, workers: int, probes: bool = True,
               keypoints=None):
    """``_solve_chunk`` over all persons, in ``workers`` processes by chunks of whole images of
    about ``cfg.batch_size`` persons (the same chunks, hence the same results, for any count).
    Returns ``(solution, focal_margin (N,), depth_gain (N,), renders, CPU seconds)``."""
    import multiprocessing

    import torch

    from poselabel.models.camera.config import CameraSolution

    chunks = _chunks(list(groups), cfg.batch_size)
    jobs = [(verts[c], faces, tz[c], masks[c], groups[c], cfg, None if fixed is None else fixed[c], pp[c], extra[c],
             probes, None if keypoints is None else keypoints[c]) for c in chunks]
    if workers <= 1 or len(jobs) == 1 or verts.device.type != "cpu":
        parts = [_solve_chunk(j) for j in jobs]
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_solve_chunk, jobs, chunksize=1)
    sols = [p[0] for p in parts]
    sol = CameraSolution.cat(sols)
    return (sol, torch.cat([p[1] for p in parts]), torch.cat([p[2] for p in parts]), sum(p[3] for p in parts),
            sum(p[4] for p in parts))


def body_iou(gt: GTPersons, focal, transl, pp) -> "torch.Tensor":
    """(N,) IoU of each solved mesh (``focal`` (N,) px, ``transl`` (N, 3) m, ``pp`` (N, 2) px)
    with the person's visible *body* silhouette, other people's pixels left out (they may
    hide the body): the fit judged against the body whatever mask it was fitted to."""
    import torch

    from poselabel.models.render.rasterize import project_points, rasterize_coverage

    out = torch.full((len(gt.keys),), float("nan"), dtype=torch.float64)
    for i, (body_m, other) in enumerate(zip(gt.body_masks, gt.others)):
        if not torch.isfinite(focal[i]) or not torch.isfinite(transl[i]).all():
            continue
        px = project_points((gt.verts[i] + transl[i].to(gt.verts.dtype))[None], focal[i:i + 1].float(),
                            pp[i:i + 1, 0].float(), pp[i:i + 1, 1].float())
        cover = rasterize_coverage(px, gt.faces, body_m.shape[0], body_m.shape[1])[0]
        keep = ~(other & ~body_m)
        out[i] = float((cover & body_m & keep).sum()) / max(1.0, float(((cover | body_m) & keep).sum()))
    return out


def mask_objective(mask_used: str, solver: dict | None = None, tz_noise: float = 0.0) -> dict:
    """The solver's config overrides: ``solver``, over the camera stage's choices for the
    masks' kind (``config.CameraConfig.mask_weights``: segmenter-like masks (clothes, hair)
    get ``SEGMENTER_MASK_WEIGHTS``, body silhouettes the symmetric IoU without keypoints) and
    for the depths (``CameraConfig.shares_camera``: one camera per image unless the depths are
    the ground truth's, ``tz_noise`` 0)."""
    from poselabel.config import EXACT_MASK_WEIGHTS, SEGMENTER_MASK_WEIGHTS

    cover, keypoint = SEGMENTER_MASK_WEIGHTS if mask_used == "segmenter" else EXACT_MASK_WEIGHTS
    return {"cover_weight": cover, "keypoint_weight": keypoint, "share_camera": tz_noise > 0, **(solver or {})}


def bench_camera(gt: GTPersons, methods=METHODS, tz_noise: float = 0.0, seed: int = 0,
                 device: str = "cpu", iters: int | None = None, batch_size: int = 64,
                 principal_point: str = "gt", workers: int = 1, scene: bool = True, probes: bool = True,
                 keypoint_noise: float | None = None, solver: dict | None = None,
                 keypoint_outliers: float = 0.0) -> dict:
    """Run the methods on ``gt``; returns the JSON-ready results (see the module docstring).

    ``workers > 1`` solves batches of ``batch_size`` persons in that many forked processes
    (CPU; the result is the same as with one). ``scene`` False: one pass per person, the
    pelvis occlusion rule only (``depth_order`` off, ``peer_min_iou`` 0). ``probes`` False: the
    solver without the focal-margin and depth-gain probes the camera stage runs.
    ``keypoint_noise``, ``keypoint_outliers``: give every method 2D keypoints (``gt_keypoints``); ``solver``:
    ``CameraSolverConfig`` fields to override. The objective is the camera stage's for the masks
    fitted (``mask_objective``; ``results["objective"]``): segmenter-like masks get the clothed
    objective, whose keypoint term needs ``keypoint_noise`` (without keypoints: the outside bound only).

    Cost per method: ``persons_per_s`` (wall), ``cpu_s_per_person`` (CPU time of the solving
    processes over persons) and ``renders_per_person`` (meshes rasterised, counted by the
    rasterisers: ``render.rasterize.render_count``); ``shared_camera``: the persons whose result
    is their image's shared camera (``results["objective"]["share_camera"]``)."""
    import torch

    from poselabel.evaluation.metrics import camera_errors
    from poselabel.models.camera.focal_heuristics import HEURISTICS

    n = gt.verts.shape[0]
    gen = torch.Generator().manual_seed(seed)
    tz_in = gt.transl[:, 2] * (1.0 + tz_noise * torch.randn(n, generator=gen, dtype=torch.float64))
    cfg = dataclasses.replace(scaled_config(iters, batch_size), **mask_objective(gt.mask_used, solver, tz_noise))
    kp = None if keypoint_noise is None else gt_keypoints(gt, keypoint_noise, seed, keypoint_outliers)
    if not scene:
        cfg = dataclasses.replace(cfg, depth_order=False, peer_min_iou=0.0, share_camera=False)
    pp = gt.pp if principal_point == "gt" else gt.size / 2
    extra = unbenched(gt)
    verts, faces = gt.verts.to(device), gt.faces.to(device)
    results: dict = {"num_persons": n, "skipped_persons": gt.skipped, "tz_noise": tz_noise, "workers": workers,
                     "keypoint_noise": keypoint_noise, "keypoint_outliers": keypoint_outliers, "solver": solver or {}, "mask": gt.mask_used,
                     "objective": {"cover_weight": cfg.cover_weight, "keypoint_weight": cfg.keypoint_weight,
                                   "share_camera": cfg.share_camera}, "methods": {}}
    for name in methods:
        fixed = None if name == "solver" else HEURISTICS[name](gt.size[:, 0], gt.size[:, 1])
        start = time.perf_counter()
        sol, margin, gain, renders, cpu = _solve_all(verts, faces, tz_in, gt.masks, gt.images, cfg, fixed, pp,
                                                     extra, workers, probes, kp)
        seconds = time.perf_counter() - start
        t_hat = sol.transl
        errors = camera_errors(sol.focal_px, t_hat, gt.focal, gt.transl)
        metrics = {**{m: errors[m] for m in ("E_f", "E_Txy", "E_Tz", "E_inv_Tz")}, "mIoU": sol.mask_iou}
        if gt.body_masks:
            metrics["mIoU_body"] = body_iou(gt, sol.focal_px, t_hat, pp)
        entry = {k: _summary(v) for k, v in metrics.items()}
        entry["persons_per_s"] = n / seconds
        entry["cpu_s_per_person"] = cpu / n
        entry["renders_per_person"] = renders / n
        entry["probes"] = {"focal_margin": int(torch.isfinite(margin).sum()), "depth_gain": int(torch.isfinite(gain).sum())}
        clear = ~gt.occluded
        entry["unoccluded"] = {k: _summary(v[clear]) for k, v in metrics.items()}
        entry["unoccluded"]["count"] = int(clear.sum())
        entry["rejected"] = sum(r is not None for r in sol.reject_reasons)
        # persons whose label is their image's shared camera (camera.scene.share_camera)
        entry["shared_camera"] = int(torch.isfinite(sol.solo("solo_focal_px")).sum())
        entry["per_person"] = {k: v.tolist() for k, v in metrics.items()}
        entry["per_person"]["reject"] = list(sol.reject_reasons)
        entry["per_person"]["f_ratio"] = (sol.focal_px.double() / gt.focal).tolist()  # signed: < 1 too short
        entry["per_person"]["focal_margin"] = margin.tolist()
        entry["per_person"]["depth_gain"] = gain.tolist()
        results["methods"][name] = entry
        log.info("%s: %d persons in %.1f s", name, n, seconds)
    return results


def gt_keypoints(gt: GTPersons, noise: float, seed: int = 0, outliers: float = 0.0):
    """2D keypoints as a detector would give them (``camera.batch.Keypoints``): the GT joints
    paired with MediaPipe's landmarks (``body.keypoints``), projected by the GT camera, through
    ``synth.detector_noise.detector_keypoints`` (Gaussian noise of ``noise`` x the longer side of
    the person's mask box per coordinate, a share ``outliers`` of gross outliers); weight 1
    where the true point lies in the image, else 0."""
    import numpy as np
    import torch

    from poselabel.models.body.keypoints import KEYPOINT_JOINTS
    from poselabel.models.camera.batch import Keypoints
    from poselabel.synth.detector_noise import detector_keypoints

    pts = gt.joints[:, list(KEYPOINT_JOINTS)].double()  # (N, K, 3), the meshes' frame
    cam = pts + gt.transl[:, None]
    uv = gt.focal[:, None, None] * cam[..., :2] / cam[..., 2:].clamp(min=1e-3) + gt.pp[:, None]
    side = [max(1.0, float(r.max() - r.min() + 1), float(c.max() - c.min() + 1))
            for r, c in (torch.nonzero(m, as_tuple=True) for m in gt.masks)]
    uv, seen = detector_keypoints(uv.numpy(), cam[..., 2].numpy(), np.asarray(side), gt.size.double().numpy(),
                                  np.random.default_rng([10_000, seed]), noise, outliers)
    return Keypoints(points=pts, uv=torch.from_numpy(uv), weight=torch.from_numpy(seen.astype(np.float64)))


def format_table(results: dict, subset: str | None = None) -> str:
    """One row per method: mean and median of each metric (``subset="unoccluded"``: those only)."""
    head = (f"{'method':8s}" + "".join(f"{m + ' mean':>14s}{m + ' med':>13s}" for m in METRICS)
            + f"{'persons/s':>11s}{'cpu s/pers':>12s}{'renders/pers':>14s}")
    lines = [head]
    for name, e in results["methods"].items():
        stats = e if subset is None else e[subset]
        row = f"{name:8s}"
        for m in METRICS:
            row += f"{stats[m]['mean']:14.4f}{stats[m]['median']:13.4f}"
        lines.append(row + f"{e['persons_per_s']:11.2f}{e['cpu_s_per_person']:12.3f}{e['renders_per_person']:14.1f}")
    if results.get("mask", "body") != "body":
        lines.append("mIoU against the body silhouette (mean / median): " + ", ".join(
            f"{name} {(e if subset is None else e[subset])['mIoU_body']['mean']:.4f} / "
            f"{(e if subset is None else e[subset])['mIoU_body']['median']:.4f}" for name, e in results["methods"].items()))
    return "\n".join(lines)


def write_per_person(path: str, gt: GTPersons, results: dict) -> None:
    """One CSV row per person and method: sample, person index, occluded, visible px, errors, and
    ``f_ratio`` (solved / true focal length: the sign of the focal error)."""
    import csv

    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["sample", "person", "method", "occluded", "mask_px", *METRICS, "f_ratio", "reject"])
        for name, e in results["methods"].items():
            pp = e["per_person"]
            for i, (sample, person) in enumerate(gt.keys):
                out.writerow([sample, person, name, int(gt.occluded[i]), int(gt.masks[i].sum()),
                              *(f"{pp[m][i]:.6g}" for m in METRICS + ("f_ratio",)), pp["reject"][i] or ""])


def run_camera(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {unknown}; choose from {METHODS}")
    gt = load_gt_persons(args.gt, args.body_model, args.limit, args.min_mask_px, args.mask)
    print(f"{len(gt.keys)} persons ({gt.skipped} skipped: visible mask < {args.min_mask_px} px); "
          f"fitted to the {gt.mask_used} mask{'s' if gt.mask_used == 'mixed' else ''} (--mask {args.mask}); "
          f"Tz noise {args.tz_noise:g}; principal point {args.principal_point}; {args.workers} worker(s)")
    solver = {}
    for item in args.solver:
        key, _, value = item.partition("=")
        solver[key.strip()] = json.loads(value)
    objective = mask_objective(gt.mask_used, solver, args.tz_noise)
    share = objective["share_camera"] and not args.one_pass
    print(f"solver objective: cover_weight {objective['cover_weight']:g}, keypoint_weight "
          f"{objective['keypoint_weight']:g} (the camera stage's for {gt.mask_used} masks unless --solver sets them)"
          + ("; no keypoints (--keypoint-noise): the keypoint term is off" if args.keypoint_noise is None
             and objective["keypoint_weight"] > 0 else ""))
    print(f"one camera per image: {'yes' if share else 'no'} (the camera stage's "
          f"{'with estimated depths' if args.tz_noise > 0 else 'with ground-truth depths'} unless --solver share_camera=... sets it)")
    results = bench_camera(gt, methods, args.tz_noise, args.seed, args.device, args.iters,
                           args.batch_size, args.principal_point, args.workers, not args.one_pass, not args.no_probes,
                           args.keypoint_noise, solver, args.keypoint_outliers)
    print(format_table(results))
    count = next(iter(results["methods"].values()))["unoccluded"]["count"]
    print(f"\nunoccluded persons only ({count}; GT mesh fully visible):")
    print(format_table(results, "unoccluded"))
    for name, e in results["methods"].items():
        if e["rejected"]:
            print(f"{name}: {e['rejected']} person(s) rejected by the solver (excluded from the metrics)")
        if e["shared_camera"]:
            print(f"{name}: {e['shared_camera']} person(s) took their image's camera (one camera per image)")
    if args.per_person:
        write_per_person(args.per_person, gt, results)
    if args.json:
        out = {"num_persons": results["num_persons"], "mask": results["mask"], "objective": results["objective"],
               "methods": {k: {**{m: v[m] for m in METRICS + ("mIoU_body",) if m in v},
                               **{c: v[c] for c in ("persons_per_s", "cpu_s_per_person", "renders_per_person", "probes",
                                                    "shared_camera")},
                               "unoccluded": v["unoccluded"]}
                           for k, v in results["methods"].items()}}
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0
