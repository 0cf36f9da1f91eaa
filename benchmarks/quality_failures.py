"""Failure benchmark of the accept rule: can ``judge quality`` tell good fits from bad ones?

Ground truth: synthetic shards (``write_synthetic_shards``). Every person is fitted twice by
the camera solver (``poselabel.models.camera.solver.solve_camera``, the pipeline's solver),
from oracle inputs (GT mesh, GT Tz, GT visible mask, GT box):

- ``clean``: the oracle inputs as they are;
- one injected error, cycling over persons:
  ``tz_x0.6`` / ``tz_x1.5`` (Tz scaled), ``pose_noise`` (N(0, 0.2 rad) on every body_pose
  component), ``mask_swap`` (another person's mask, from another image, at its own place),
  ``mask_shift`` (the mask moved by 25 % of its box), ``mask_erode`` (eroded by 8 % of
  the box's shorter side), ``box_shift`` (the box moved by 30 % of its size and the mask
  cut to it, as a segmenter run on a wrong box would give).

Each fit also gets what the pipeline's camera stage records: ``focal_margin`` (border-touching
people), ``depth_gain`` (``camera.scene.depth_gain``) and ``keypoint_error`` / ``keypoint_count``
against simulated detector keypoints (``attach_keypoints``).

Every fit is labelled **bad** when its true error is large:
``PVE_cam > PVE_MAX_FRAC · Tz_gt`` (mean vertex distance in the camera frame, translation
included, relative to the distance) **or** ``E_f = |f̂ − f| / f > EF_MAX`` (see docs/quality.md).
Then precision (good among accepted) and recall (accepted among good) of the accept rule,
sweeping ``min_fit_score`` with every other check at its default, beside the checks rule
(``config.CHECKS_RULE``) sweeping ``min_mask_iou``. The fit score itself is fitted on these
result files by ``benchmarks/fit_score.py``.

``--world clothed|clothed+segmenter`` dresses the people (``poselabel synth --world``) and fits
the segmenter-like mask (``segmask.png``), ``--mask body`` the body silhouette instead; the
saved ``args`` record both.

Usage (default size, 30 images / 114 fits: about 4-5 minutes on one idle CPU core; 16 minutes
measured on 2 cores shared with 7 other busy processes)::

    .venv/bin/python benchmarks/quality_failures.py
    .venv/bin/python benchmarks/quality_failures.py --from-json benchmarks/results/quality_failures*.json

Writes ``benchmarks/results/quality_failures.json`` (every fit, re-analysable with
``--from-json``) and the curve ``docs/figures/quality_pr.png``.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from quality_inputs import (INJECTIONS, KEYPOINT_NOISE, KEYPOINT_OUTLIERS, add_keypoints, attach_keypoints,  # noqa: E402
                            detect_keypoints, inject, load_persons, unlisted)

from poselabel.config import CHECKS_RULE, CameraConfig, QualityConfig  # noqa: E402
from poselabel.models.masks import mask_geometry  # noqa: E402
from poselabel.models.quality.facts import PersonFacts  # noqa: E402
from poselabel.models.quality.rule import judge  # noqa: E402
from poselabel.records import CameraFit  # noqa: E402

PVE_MAX_FRAC = 0.10  # bad: mean camera-frame vertex error above 10 % of the true distance
EF_MAX = 0.25  # bad: focal length off by more than 25 %
# second definition (reported beside the first): also bad when the fitted joints, projected by
# the solved camera, miss the true ones by more than this fraction of the box's longer side
JOINT_2D_MAX = 0.1


def run_fits(persons: list[dict], seed: int, iters: int | None, batch_size: int = 32,
             solver: dict | None = None) -> list[dict]:
    """Solve every (person, variant) as the pipeline does; one record per fit with its true errors.

    Clean fits: ``camera.scene.solve_scene`` over each image's clean people (what
    ``transforms/solve_camera.py`` runs). An injected fit is solved in its image with the
    other people *clean* (their clean solutions as context, never re-solved): a first
    solve with the pelvis occlusion rule, then the depth-order and one-camera passes
    (``depth_order_pass``, ``peer_focal_pass`` with ``movable`` set on it alone). Every fit
    touching the image border also gets its ``focal_margin``.
    """
    import torch

    from poselabel.models.body.model import BodyModel
    from poselabel.models.camera import scene as cs
    from poselabel.models.body.keypoints import KEYPOINT_JOINTS
    from poselabel.models.camera.batch import Keypoints
    from poselabel.models.camera.config import CameraSolution, CameraSolverConfig
    from poselabel.models.camera.occlusion import occluder_masks
    from poselabel.models.camera.solver import solve_camera

    rng = np.random.default_rng(seed)
    cfg = CameraSolverConfig(batch_size=batch_size, **(solver or {}))
    total = sum(s.iters for s in cfg.stages)
    if iters is not None:
        cfg = dataclasses.replace(cfg, stages=tuple(dataclasses.replace(s, iters=max(1, round(iters * s.iters / total)))
                                                    for s in cfg.stages))
    jobs = []
    for n, p in enumerate(persons):
        jobs.append((p, "clean", inject(p, "clean", rng, persons)))
        kind = INJECTIONS[n % len(INJECTIONS)]
        jobs.append((p, kind, inject(p, kind, rng, persons)))
    body = BodyModel(persons[0]["body_model_path"])
    t = lambda key, src: torch.tensor(np.stack([src(j) for j in jobs]), dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        fit_in = body(t("b", lambda j: j[0]["betas"]), t("g", lambda j: j[0]["global_orient"]),
                      t("p", lambda j: j[2]["body_pose"]))
        gt = body(t("b", lambda j: j[0]["betas"]), t("g", lambda j: j[0]["global_orient"]),
                  t("p", lambda j: j[0]["body_pose"]), t("t", lambda j: j[0]["transl"]))
    verts = fit_in.vertices - fit_in.joints[:, :1]
    faces = body.faces
    # the detector's keypoints (detect_keypoints) against the joints of the body the solver is given
    kp = Keypoints(points=(fit_in.joints[:, list(KEYPOINT_JOINTS)] - fit_in.joints[:, :1]).double(),
                   uv=torch.tensor(np.stack([j[0]["kp_uv"] for j in jobs])),
                   weight=torch.tensor(np.stack([j[0]["kp_seen"] for j in jobs]), dtype=torch.float64))
    kp = kp if cfg.keypoint_weight > 0 else None
    sub = lambda rows: None if kp is None else kp[rows]  # noqa: E731
    tz = torch.tensor([j[2]["tz"] for j in jobs])
    masks = [torch.from_numpy(j[2]["mask"]) for j in jobs]
    extra = [torch.from_numpy(unlisted(j[0], persons)) for j in jobs]
    clean = [k for k, j in enumerate(jobs) if j[1] == "clean"]
    injected = [k for k, j in enumerate(jobs) if j[1] != "clean"]
    start = time.perf_counter()
    sc, sc_ign = cs.solve_scene_with_evidence(verts[clean], faces, tz[clean], [masks[k] for k in clean],
                                              [jobs[k][0]["key"] for k in clean], cfg,
                                              extra_ignore=[extra[k] for k in clean], keypoints=sub(clean))
    pos = {(jobs[k][0]["key"], jobs[k][0]["index"]): c for c, k in enumerate(clean)}
    # Injected fits: each in a scene of its own with its image's other people as clean context.
    entries, groups, movable = [], [], []  # entries: ("inj", job) or ("ctx", clean position)
    for k in injected:
        p = jobs[k][0]
        entries.append(("inj", k))
        groups.append(k)
        movable.append(True)
        for q in persons:
            if q["key"] == p["key"] and q["index"] != p["index"]:
                entries.append(("ctx", pos[(q["key"], q["index"])]))
                groups.append(k)
                movable.append(False)
    job_of = [e[1] if e[0] == "inj" else clean[e[1]] for e in entries]
    e_verts, e_tz, e_masks = verts[job_of], tz[job_of], [masks[k] for k in job_of]
    e_extra = [extra[k] for k in job_of]

    def with_extra(ign):
        return [o | (x & ~m) for o, x, m in zip(ign, e_extra, e_masks)]

    ignore0 = with_extra(occluder_masks(e_masks, e_tz.tolist(), groups, cfg.occluder_depth_margin))
    inj_rows = [i for i, e in enumerate(entries) if e[0] == "inj"]
    e_kp = sub(job_of)
    first = solve_camera(e_verts[inj_rows], faces, e_tz[inj_rows], [e_masks[i] for i in inj_rows], cfg,
                         ignore=[ignore0[i] for i in inj_rows], keypoints=None if kp is None else e_kp[inj_rows])
    # The scenes' solution: the injected fits' first solve, the context's clean solution.
    row_of = {i: r for r, i in enumerate(inj_rows)}
    rows = [row_of.get(i) for i in range(len(entries))]

    scene = CameraSolution.cat([first.take([r]) if r is not None else sc.take([e[1]]) for r, e in zip(rows, entries)])
    scene, ign = cs.depth_order_pass(scene, e_verts, faces, e_tz, e_masks, groups, cfg, ignore0, with_extra,
                                     movable=movable, keypoints=e_kp)
    scene = cs.peer_focal_pass(scene, e_verts, faces, e_tz, e_masks, groups, cfg, ign, movable=movable, keypoints=e_kp)
    seconds = time.perf_counter() - start
    # Per job: its solution and the no-evidence pixels it was measured with.
    result = {}
    for c, k in enumerate(clean):
        result[k] = (sc, c, sc_ign[c])
    for i in inj_rows:
        result[entries[i][1]] = (scene, i, ign[i])
    order = list(range(len(jobs)))
    border = [bool(np.asarray(mask_geometry(jobs[k][2]["mask"])[2]).any()) for k in order]
    sol_all = CameraSolution.cat([result[k][0].take([result[k][1]]) for k in order])
    t1 = time.perf_counter()
    margin = cs.focal_margin(verts, faces, tz, masks, sol_all, cfg, [result[k][2] for k in order], wanted=border,
                             keypoints=kp)
    t2 = time.perf_counter()
    gain = cs.depth_gain(verts, faces, masks, sol_all, cfg, [result[k][2] for k in order], keypoints=kp)
    print(f"{len(jobs)} fits in {seconds:.0f} s; focal margins of {sum(border)} in {t2 - t1:.0f} s; "
          f"depth gains in {time.perf_counter() - t2:.0f} s", flush=True)
    sol = sol_all
    out = []
    for k, (p, kind, v) in enumerate(jobs):
        transl = sol.transl[k].numpy()
        ok = bool(np.isfinite(transl).all())
        pve = float((verts[k].double() + torch.from_numpy(transl) - gt.vertices[k].double()).norm(dim=1).mean()) if ok else math.inf
        area, mbox, runs = mask_geometry(v["mask"])
        out.append({"key": p["key"], "index": p["index"], "injection": kind, "W": p["W"], "H": p["H"],
                    "tz_gt": float(p["transl"][2]), "tz_in": v["tz"], "focal_gt": p["focal"],
                    "focal": float(sol.focal_px[k]), "transl": transl.tolist(), "mask_iou": float(sol.mask_iou[k]),
                    "fit_iou": None if sol.fit_iou is None else float(sol.fit_iou[k]),
                    "fit_loss": float(sol.final_loss[k]), "camera_reject": sol.reject_reasons[k],
                    "focal_margin": float(margin[k]), "depth_gain": float(gain[k]),
                    "pve_mm": pve * 1000, "e_f": abs(float(sol.focal_px[k]) - p["focal"]) / p["focal"] if ok else math.inf,
                    "bbox": np.asarray(v["bbox"]).tolist(), "mask_area": area,
                    "mask_box": None if mbox is None else mbox.tolist(), "border_runs": list(runs),
                    "betas": p["betas"].tolist(), "body_pose": np.asarray(v["body_pose"]).tolist()})
    return out


def mark_landmark_fitted(records: list[dict], share: float) -> None:
    """Mark a share of the people (both fits of each, chosen by a hash of its key and index) as
    if their ``Tz`` and pose had been fitted to the keypoints (``landmark_fit``), as the embedded
    default fits them: their keypoint residual then does not count for the score (it has no
    value there), so that the score learns both kinds of fits the pipeline makes."""
    for r in records:
        h = int(hashlib.sha256(f"{r['key']}/{r['index']}".encode()).hexdigest()[:8], 16) / 16 ** 8
        r["landmark_fit"] = ["pose", "tz"] if h < share else []


def attach_peers(records: list[dict]) -> None:
    """Set each fit's ``peers``: ``(focal, mask_iou, focal_margin)`` of the *clean* fits of the other people
    of its image (what ``judge_image`` sees in the pipeline: one fit per person, the others
    uncorrupted; an injected fit is judged against its image's clean fits)."""
    clean: dict = {}
    for r in records:
        if r["injection"] == "clean" and not r["camera_reject"]:
            clean.setdefault(r["key"], []).append(r)
    for r in records:
        r["peers"] = [[o["focal"], o["mask_iou"], o.get("focal_margin", math.nan)] for o in clean.get(r["key"], []) if o["index"] != r["index"]]


def is_bad(r: dict, joint_2d_max: float | None = None) -> bool:
    """Bad by the true 3D error; with ``joint_2d_max``, also when the fit's true 2D joint
    error (``joint_error_2d``, noise-free ``attach_keypoints``) exceeds it."""
    if not (r["pve_mm"] / 1000 <= PVE_MAX_FRAC * r["tz_gt"] and r["e_f"] <= EF_MAX):
        return True
    e2d = r.get("joint_error_2d")
    return bool(joint_2d_max is not None and e2d is not None and e2d > joint_2d_max)


# What the camera stage records per fit; absent in fits saved before the stage measured them
# (focal_margin first, then depth_gain and keypoint_error, then keypoint_count), as a table from an older
# run would lack them.
MEASURES = ("focal_margin", "depth_gain", "keypoint_error", "keypoint_count", "fit_iou")


def _camera(r: dict) -> CameraFit:
    """The camera stage's record of a fit (reject reason, ``MEASURES``, fit loss)."""
    measures = {k: r[k] for k in MEASURES if r.get(k) is not None and math.isfinite(r[k])}
    return CameraFit(reject=r["camera_reject"] or None, fit_loss=r["fit_loss"], **measures)


def facts_of(r: dict) -> PersonFacts:
    """A fit record as the accept rule sees it (a persons-table row's facts, peers included)."""
    return PersonFacts(det_score=1.0, image_width=r["W"], image_height=r["H"], bbox_xyxy=np.asarray(r["bbox"]),
                       has_mask=True, mask_area=r["mask_area"],
                       mask_box=None if r["mask_box"] is None else np.asarray(r["mask_box"]),
                       border_runs=tuple(r["border_runs"]), tz=r["tz_in"],
                       focal_px=None if r["camera_reject"] else r["focal"],
                       transl=None if r["camera_reject"] else np.asarray(r["transl"]),
                       betas=np.asarray(r["betas"]), body_pose=np.asarray(r["body_pose"]),
                       mask_iou=r["mask_iou"], camera=_camera(r),
                       peers=tuple(tuple(x) for x in r.get("peers", ())),
                       fitted_to_landmarks=tuple(r.get("landmark_fit") or ()))


def reasons_of(r: dict, quality: QualityConfig) -> tuple[str, ...]:
    return judge(facts_of(r), quality)


def precision_recall(records: list[dict], quality: QualityConfig, joint_2d_max: float | None = None) -> dict:
    bad = np.array([is_bad(r, joint_2d_max) for r in records])
    acc = np.array([not reasons_of(r, quality) for r in records])
    tp = int((acc & ~bad).sum())
    return {"accepted": int(acc.sum()), "good": int((~bad).sum()), "n": len(records),
            "precision": tp / max(int(acc.sum()), 1), "recall": tp / max(int((~bad).sum()), 1)}


def sweep(records, base: QualityConfig, field: str, values) -> list[dict]:
    return [{field: float(x), **precision_recall(records, dataclasses.replace(base, **{field: float(x)}))}
            for x in values]


def by_injection(records, quality) -> dict:
    out = {}
    for kind in ("clean",) + INJECTIONS:
        rs = [r for r in records if r["injection"] == kind]
        if not rs:
            continue
        bad = [is_bad(r) for r in rs]
        acc = [not reasons_of(r, quality) for r in rs]
        out[kind] = {"n": len(rs), "bad": sum(bad), "accepted": sum(acc),
                     "bad_accepted": sum(a and b for a, b in zip(acc, bad)),
                     "good_rejected": sum((not a) and (not b) for a, b in zip(acc, bad)),
                     "median_iou": float(np.nanmedian([r["mask_iou"] for r in rs])),
                     "median_pve_mm": float(np.median([r["pve_mm"] for r in rs])),
                     "median_e_f": float(np.median([r["e_f"] for r in rs]))}
    return out


def plot(records, base: QualityConfig, png: str) -> None:
    """Left: precision against recall of the fit-score rule (``min_fit_score`` swept) and of the
    checks rule (``min_mask_iou`` swept, ``CHECKS_RULE``), the defaults starred. Right: the
    fit-score rule's precision and recall against ``min_fit_score``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ious = np.round(np.arange(0.0, 0.97, 0.025), 3)
    scores = np.round(np.arange(0.05, 0.99, 0.02), 3)
    checks = dataclasses.replace(base, **CHECKS_RULE)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    field = score_field(records)
    s = sweep(records, base, field, scores)
    axes[0].plot([x["recall"] for x in s], [x["precision"] for x in s], "o-", ms=3, label=f"fit score: {field} sweep")
    for label, cfg in (("checks rule", checks),
                       ("mask IoU alone", dataclasses.replace(checks, disabled_checks=tuple(
                           c for c in _all_checks() if c != "low_mask_iou")))):
        s = sweep(records, cfg, "min_mask_iou", ious)
        axes[0].plot([x["recall"] for x in s], [x["precision"] for x in s], "s-", ms=3, label=f"{label}: min_mask_iou sweep")
    d = precision_recall(records, base)
    axes[0].plot([d["recall"]], [d["precision"]], "r*", ms=16, label=f"defaults (fit score ≥ {getattr(base, field):g})")
    d = precision_recall(records, checks)
    axes[0].plot([d["recall"]], [d["precision"]], "k*", ms=12, label=f"checks rule (IoU ≥ {checks.min_mask_iou:g})")
    axes[0].axhline(0.95, color="grey", ls=":", lw=1)
    axes[0].axvline(0.90, color="grey", ls=":", lw=1)
    axes[0].set_xlabel("recall (good fits accepted)")
    axes[0].set_ylabel("precision (accepted fits that are good)")
    axes[0].set_title("accept rules on clean + injected fits")
    axes[0].legend(fontsize=8, loc="lower left")
    axes[0].grid(alpha=0.3)
    s = sweep(records, base, field, scores)
    axes[1].plot(scores, [x["precision"] for x in s], label="precision")
    axes[1].plot(scores, [x["recall"] for x in s], label="recall")
    axes[1].axvline(getattr(base, field), color="r", ls="--", lw=1, label="default")
    axes[1].set_xlabel(f"{field} (other checks at defaults)")
    axes[1].set_ylim(0, 1.02)
    axes[1].grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    n_bad = sum(is_bad(r) for r in records)
    fig.suptitle(f"{len(records)} fits, {n_bad} bad (PVE_cam > {PVE_MAX_FRAC:.0%} of Tz or E_f > {EF_MAX:.0%})", fontsize=10)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    print(f"wrote {png}")


def _all_checks():
    from poselabel.models.quality.checks import QUALITY_CHECKS

    return QUALITY_CHECKS


def report(records, base: QualityConfig) -> dict:
    d = precision_recall(records, base)
    print(f"\ndefaults: precision {d['precision']:.3f}  recall {d['recall']:.3f}  "
          f"({d['accepted']} accepted of {d['n']}, {d['good']} good)")
    if any(r.get("joint_error_2d") is not None for r in records):
        d2 = precision_recall(records, base, JOINT_2D_MAX)
        print(f"defaults, also bad when the true 2D joint error > {JOINT_2D_MAX:g} of the box: precision "
              f"{d2['precision']:.3f}  recall {d2['recall']:.3f}  ({d2['good']} good)")
        d["with_2d_bound"] = d2
    checks = dataclasses.replace(base, **CHECKS_RULE)
    dc = precision_recall(records, checks)
    print(f"checks rule (accept_rule checks, min_mask_iou {checks.min_mask_iou:g}): precision {dc['precision']:.3f}  "
          f"recall {dc['recall']:.3f}  ({dc['accepted']} accepted)")
    d["checks_rule"] = dc
    field = score_field(records)
    print(f"\n{field:>13s} {'precision':>9s} {'recall':>7s} {'accepted':>8s}")
    for x in sweep(records, base, field, np.round(np.arange(0.3, 0.96, 0.05), 2)):
        print(f"{x[field]:13.2f} {x['precision']:9.3f} {x['recall']:7.3f} {x['accepted']:8d}")
    table = by_injection(records, base)
    print(f"\n{'injection':>11s} {'n':>4s} {'bad':>4s} {'acc':>4s} {'bad acc':>7s} {'good rej':>8s} {'med IoU':>7s} "
          f"{'med PVE mm':>10s} {'med E_f':>7s}")
    for k, e in table.items():
        print(f"{k:>11s} {e['n']:4d} {e['bad']:4d} {e['accepted']:4d} {e['bad_accepted']:7d} {e['good_rejected']:8d} "
              f"{e['median_iou']:7.3f} {e['median_pve_mm']:10.0f} {e['median_e_f']:7.3f}")
    return {"defaults": d, "by_injection": table}


def score_field(records) -> str:
    """The threshold that judges these fits: ``min_fit_score_segmenter`` for fits of segmenter
    masks (their solve's own objective: ``fit_iou``), else ``min_fit_score``."""
    return "min_fit_score_segmenter" if any(r.get("fit_iou") is not None for r in records) else "min_fit_score"


def _solver_option(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    return key, json.loads(value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=30, help="synthetic images (about 1.9 persons each)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--iters", type=int, default=None,
                        help="solver descent steps (default: the pipeline's schedule, 80)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--solver", action="append", type=_solver_option, metavar="KEY=JSON",
                        help="a CameraSolverConfig field for this run, e.g. stop_window=0 (repeatable)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/quality_failures.json"))
    parser.add_argument("--png", default=str(ROOT / "docs/figures/quality_pr.png"))
    parser.add_argument("--world", default="naked", choices=("naked", "clothed", "clothed+segmenter"),
                        help="mask world of the synthetic people (poselabel synth --world)")
    parser.add_argument("--mask", default="auto", choices=("auto", "body"),
                        help="mask fitted: auto = the segmenter-like mask in clothed worlds, else the body "
                             "silhouette; body = always the body silhouette, for comparison")
    parser.add_argument("--from-json", nargs="+", help="re-analyse saved fits instead of solving (several files: pooled)")
    parser.add_argument("--keypoint-noise", type=float, default=KEYPOINT_NOISE,
                        help="simulated keypoint noise, fraction of the box's longer side")
    parser.add_argument("--keypoint-outliers", type=float, default=KEYPOINT_OUTLIERS,
                        help="share of the simulated keypoints that are gross outliers")
    parser.add_argument("--landmark-fitted-share", type=float, default=None, metavar="SHARE",
                        help="with --from-json: judge this share of the people as landmark-fitted (keypoints "
                             "not counted, as the embedded default's fits); default: as saved")
    parser.add_argument("--add-keypoints", action="store_true",
                        help="with --from-json: remake each file's GT from its args, (re)compute the fits' "
                             "keypoint errors and write the file back (no solving)")
    args = parser.parse_args(argv)
    base = QualityConfig()
    if args.from_json:
        records = []
        for path in args.from_json:  # peers per file: keys repeat across runs
            saved = json.loads(Path(path).read_text())
            fits = saved["fits"]
            if args.add_keypoints:
                add_keypoints(saved, args.keypoint_noise, args.keypoint_outliers)
                Path(path).write_text(json.dumps(saved, default=float))
                print(f"keypoint errors added to {path}")
            if args.landmark_fitted_share is not None:
                mark_landmark_fitted(fits, args.landmark_fitted_share)
            attach_peers(fits)
            records += fits
    else:
        import torch

        from poselabel.synth.writer import write_synthetic_shards

        torch.set_num_threads(args.threads)
        with tempfile.TemporaryDirectory() as gt_dir:
            t0 = time.perf_counter()
            write_synthetic_shards(gt_dir, num=args.num, seed=args.seed, max_persons=3, shard_size=args.num,
                                   world=args.world)
            persons = load_persons(gt_dir, args.mask)
            for p in persons:
                p["body_model_path"] = os.path.join(gt_dir, p["body_model"])
            kinds = sorted({p["mask_kind"] for p in persons})
            print(f"{args.num} images ({args.world} world), {len(persons)} persons in {time.perf_counter() - t0:.0f} s; "
                  f"fitted to the {'/'.join(kinds)} mask (--mask {args.mask})", flush=True)
            detect_keypoints(persons, args.seed, args.keypoint_noise, args.keypoint_outliers)
            # the pipeline's solve for these masks (CameraConfig.mask_weights), then --solver
            cover, keypoint = CameraConfig().mask_weights(exact_masks=kinds != ["segmenter"])
            solver = {"cover_weight": cover, "keypoint_weight": keypoint, **dict(args.solver or ())}
            print(f"solver: {solver}", flush=True)
            records = run_fits(persons, args.seed, args.iters, solver=solver)
            attach_keypoints(records, persons)
            attach_peers(records)
    summary = report(records, base)
    if not args.from_json:  # the fits first: a failure below loses no solving
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "pve_max_frac": PVE_MAX_FRAC, "ef_max": EF_MAX,
                                               "quality": dataclasses.asdict(base), "summary": summary,
                                               "fits": records}, default=float))
        print(f"wrote {args.json}")
    plot(records, base, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
