"""What one label costs in the camera stage, on the same people at any commit.

The camera stage's calls (``solve_scene_with_evidence``, then ``focal_margin`` for the
people whose mask touches the image border and ``depth_gain`` for everyone), timed in one
process with one torch thread: CPU seconds per person (scene passes + probes), silhouette
renders per person (``render_count``, where the commit has it), median ``E_f`` and mean IoU.
The inputs are saved once by this commit (``dump``) and read by any commit's package
(``run`` from that commit's checkout), so old and new solve the same people::

    python benchmarks/camera_cost.py dump --gt "gt500/synth-*.tar" --limit 60 --out in60.pt
    (cd OLD_CHECKOUT && python /path/to/benchmarks/camera_cost.py run in60.pt --out old.pt)
    python benchmarks/camera_cost.py run in60.pt --out new.pt [--set FIELD=JSON ...]
    python benchmarks/camera_cost.py compare old.pt new.pt

``--set FIELD=JSON`` overrides a ``CameraSolverConfig`` field (e.g. ``init_passes=2``). ``compare``
prints the people whose IoU moved by more than 0.01 and how the probes' readings agree.
Results of 2026-12-06: docs/camera_solver.md, "Cost".
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch


def dump(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from poselabel.commands.bench import load_gt_persons, unbenched

    gt = load_gt_persons(args.gt, limit=args.limit)
    torch.save(dict(verts=gt.verts, faces=gt.faces, tz=gt.transl[:, 2].float(), masks=gt.masks,
                    groups=list(gt.images), extra=unbenched(gt), pp=gt.pp, focal=gt.focal, transl=gt.transl), args.out)
    print(f"{gt.verts.shape[0]} persons -> {args.out}")


def run(args) -> None:
    sys.path.insert(0, ".")  # the checkout this runs from
    from poselabel.models.camera import scene as sc
    from poselabel.models.camera.config import CameraSolverConfig, SolverStage
    try:
        from poselabel.models.render.rasterize import render_count
    except ImportError:  # commits before the counter
        def render_count():
            return 0

    torch.set_num_threads(1)
    d = torch.load(args.inputs, weights_only=True)
    cfg = CameraSolverConfig()
    for kv in args.fields:
        key, value = kv.split("=", 1)
        value = json.loads(value)
        if key.endswith("stages") and value is not None:  # [[res, blur, iters, lr], ...]
            value = tuple(SolverStage(*s) for s in value)
        cfg = dataclasses.replace(cfg, **{key: value})
    n = d["verts"].shape[0]
    r0, c0 = render_count(), time.process_time()
    sol, ign = sc.solve_scene_with_evidence(d["verts"], d["faces"], d["tz"], d["masks"], d["groups"], cfg,
                                            principal_point=d["pp"], extra_ignore=d["extra"])
    scene_s = time.process_time() - c0
    # scene.touches_border, written out: commits before 2026-12-04 lack it
    cut = [bool(m[:, 0].any() or m[0, :].any() or m[:, -1].any() or m[-1, :].any()) for m in d["masks"]]
    margin = sc.focal_margin(d["verts"], d["faces"], d["tz"], d["masks"], sol, cfg, ign, wanted=cut,
                             principal_point=d["pp"])
    gain = sc.depth_gain(d["verts"], d["faces"], d["masks"], sol, cfg, ign, principal_point=d["pp"])
    cpu, renders = time.process_time() - c0, render_count() - r0
    e_f = (sol.focal_px - d["focal"]).abs() / d["focal"]
    print(f"{n} persons: {cpu / n:.3f} CPU-s per person ({scene_s / n:.3f} scene + {(cpu - scene_s) / n:.3f} probes), "
          f"{renders / n:.1f} renders per person, median E_f {float(e_f.median()) * 100:.3f} %, "
          f"mean IoU {float(sol.mask_iou.mean()):.4f}")
    if args.out:
        torch.save({"focal": sol.focal_px, "transl": sol.transl, "iou": sol.mask_iou, "margin": margin,
                    "gain": gain, "true_focal": d["focal"], "cpu_s": cpu, "renders": renders, "n": n}, args.out)


def compare(args) -> None:
    a, b = torch.load(args.a, weights_only=True), torch.load(args.b, weights_only=True)
    e_a, e_b = ((o["focal"] - o["true_focal"]).abs() / o["true_focal"] for o in (a, b))
    diff = b["iou"] - a["iou"]
    print(f"CPU-s per person {a['cpu_s'] / a['n']:.3f} -> {b['cpu_s'] / b['n']:.3f} "
          f"({a['cpu_s'] / max(b['cpu_s'], 1e-9):.2f}x); mean IoU {float(a['iou'].mean()):.4f} -> "
          f"{float(b['iou'].mean()):.4f}; median E_f {float(e_a.median()) * 100:.3f} -> {float(e_b.median()) * 100:.3f} %")
    print(f"IoU worse by > 0.01: {int((diff < -0.01).sum())}, better: {int((diff > 0.01).sum())}")
    for i in torch.nonzero(diff.abs() > 0.01).flatten().tolist():
        print(f"  person {i}: IoU {float(a['iou'][i]):.3f} -> {float(b['iou'][i]):.3f}, "
              f"E_f {float(e_a[i]):.3f} -> {float(e_b[i]):.3f}")
    for key in ("margin", "gain"):
        x, y = a[key], b[key]
        ok = torch.isfinite(x) & torch.isfinite(y)
        if int(ok.sum()) > 2:
            r = float(torch.corrcoef(torch.stack([x[ok], y[ok]]))[0, 1])
            print(f"{key}: {int(ok.sum())} people, correlation {r:.3f}, mean |difference| "
                  f"{float((x[ok] - y[ok]).abs().mean()):.4f}, median {float(x[ok].median()):.4f} -> {float(y[ok].median()):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("dump", help="save GT people as the solve's inputs")
    p.add_argument("--gt", required=True)
    p.add_argument("--limit", type=int, default=60)
    p.add_argument("--out", required=True)
    p = sub.add_parser("run", help="the camera stage's calls on saved inputs, from the current directory's package")
    p.add_argument("inputs")
    p.add_argument("--out")
    p.add_argument("--set", dest="fields", action="append", default=[], metavar="FIELD=JSON",
                   help="a CameraSolverConfig field, e.g. --set init_passes=2 (repeatable)")
    p = sub.add_parser("compare", help="two runs' results, person by person")
    p.add_argument("a")
    p.add_argument("b")
    args = parser.parse_args()
    {"dump": dump, "run": run, "compare": compare}[args.cmd](args)


if __name__ == "__main__":
    main()
