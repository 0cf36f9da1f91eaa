"""Per-person masks of touching people, before and after the landmark split, on synthetic truth.

Renders ``clothed+segmenter`` samples (``poselabel.synth.writer.make_sample``) until ``--num``
images hold at least one pair of people whose clothed masks touch (2 px). Their
segmenter-like masks (``segmask``: MediaPipe's measured errors, including merges, where a
person's mask takes its touching neighbour's pixels inside its crop) are the *before*; the
*after* is ``models.blazepose.split.split_by_landmarks`` of those masks, seeded by each
person's ground-truth joints projected into the image as MediaPipe's landmarks
(``MP_TO_SMPLX``, the head joint as the nose and ears; visible where the joint lands on the
person's own clothed mask), with and without Gaussian landmark noise of ``--noise`` × the
person's box height (MediaPipe's measured spread on clothed renders is 3.9 %, docs/quality.md).
A third column splits the *union* of the masks among all the people (every person claims
every pixel of it), the alternative to the default, which divides only the pixels several
masks claim and leaves every other pixel in the mask it was in.

Truth: each person's ideal visible clothed mask (``layers["clothed"] == i + 1``). Reported:
the mean per-person IoU with it (all people of those images; people in a touching pair;
people whose mask had merged a neighbour), the pooled IoU (all intersections over all
unions: slivers of hidden people weigh by their area) and the mean pixels shared by two
people's masks.

Usage (about 3 minutes on one core)::

    nice .venv/bin/python benchmarks/people_masks.py [--num 20] [--seed 2027]

Prints a table and writes ``benchmarks/results/people_masks_2026-12-06.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poselabel.models.body.keypoints import MP_TO_SMPLX, SMPLX_HEAD  # noqa: E402
from poselabel.models.masks import mask_bbox, mask_iou  # noqa: E402
from poselabel.models.blazepose.split import split_by_landmarks  # noqa: E402
from poselabel.synth.segmenter_errors import touching  # noqa: E402

HEAD_LANDMARKS = (0, 7, 8)  # nose and ears: the head joint stands in for all three


def landmarks(joints_2d: np.ndarray, own: np.ndarray) -> np.ndarray:
    """(33, 3) MediaPipe-style landmarks from (55, 2) projected SMPL-X joints px; visible (1)
    where the joint lands on ``own`` (H, W) bool, the person's clothed mask, else 0."""
    kp = np.zeros((33, 3), np.float32)
    pairs = list(MP_TO_SMPLX) + [(m, SMPLX_HEAD) for m in HEAD_LANDMARKS]
    h, w = own.shape
    for m, s in pairs:
        u, v = joints_2d[s]
        inside = 0 <= u < w and 0 <= v < h and own[int(v), int(u)]
        kp[m] = (u, v, 1.0 if inside else 0.0)
    return kp


def project(body, person, camera) -> np.ndarray:
    """(55, 2) px: the person's SMPL-X joints through the sample's pinhole camera."""
    import torch

    t = lambda a: torch.as_tensor(np.asarray(a)[None], dtype=body.dtype, device=body.device)  # noqa: E731
    with torch.no_grad():
        joints = body(t(person.betas), t(person.global_orient), t(person.body_pose), t(person.transl)).joints[0]
    joints = joints.cpu().numpy()
    return np.stack([camera.focal_px * joints[:, 0] / joints[:, 2] + camera.cx,
                     camera.focal_px * joints[:, 1] / joints[:, 2] + camera.cy], axis=1)


def overlap_px(masks: list[np.ndarray]) -> int:
    return int((np.sum(masks, axis=0) > 1).sum())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num", type=int, default=20, help="images with touching people")
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument("--max-persons", type=int, default=4)
    parser.add_argument("--noise", type=float, default=0.039, help="landmark noise / box height")
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/people_masks_2026-12-06.json"))
    args = parser.parse_args(argv)

    import torch

    from poselabel.models.body.model import BodyModel
    from poselabel.synth.writer import make_sample

    torch.set_num_threads(1)
    body = BodyModel()
    rng = np.random.default_rng(args.seed)
    rows, overlaps, images, index, t0 = [], [], 0, 0, time.time()
    while images < args.num:
        s = make_sample(body, index, args.seed, "procedural", args.max_persons, "clothed+segmenter")
        index += 1
        clothed, before = s.layers["clothed"], s.layers["segmenter"]
        n = len(before)
        truth = [clothed == i + 1 for i in range(n)]
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if touching(truth[i], truth[j])]
        if not pairs:
            continue
        images += 1
        kps = [landmarks(project(body, p, s.scene.camera), truth[i]) for i, p in enumerate(s.scene.persons)]
        boxes = np.stack([mask_bbox(m) if m.any() else np.asarray(p["bbox_xyxy"], np.float32)
                          for m, p in zip(before, s.meta["persons"])])
        noisy = []
        for kp, box in zip(kps, boxes):
            k = kp.copy()
            k[:, :2] += rng.normal(0, args.noise * (box[3] - box[1]), (33, 2))
            noisy.append(k)
        after = split_by_landmarks(before, kps, boxes)
        after_noisy = split_by_landmarks(before, noisy, boxes)
        union = np.logical_or.reduce(before)
        whole = split_by_landmarks([union] * n, kps, boxes)
        in_pair = {i for pair in pairs for i in pair}
        for i in range(n):
            merged = bool(any((before[i] & truth[j]).sum() > 0.2 * truth[j].sum() for j in range(n) if j != i))
            inter_union = lambda m: [int((m & truth[i]).sum()), int((m | truth[i]).sum())]  # noqa: E731
            rows.append({"image": s.key, "person": i, "area": int(truth[i].sum()),
                         "px": {"before": inter_union(before[i]), "split": inter_union(after[i]),
                                "split_noisy": inter_union(after_noisy[i]), "union_split": inter_union(whole[i])},
                         "in_touching_pair": i in in_pair, "merged_neighbour": merged,
                         "iou_before": mask_iou(before[i], truth[i]), "iou_split": mask_iou(after[i], truth[i]),
                         "iou_split_noisy": mask_iou(after_noisy[i], truth[i]),
                         "iou_union_split": mask_iou(whole[i], truth[i])})
        overlaps.append({"image": s.key, "before": overlap_px(before), "split": overlap_px(after)})
    cols = ("iou_before", "iou_split", "iou_split_noisy", "iou_union_split")
    groups = {"all people": rows, "in a touching pair": [r for r in rows if r["in_touching_pair"]],
              "mask merged a neighbour": [r for r in rows if r["merged_neighbour"]]}
    summary = {name: {"n": len(g), **{c: round(float(np.mean([r[c] for r in g])), 4) if g else None for c in cols}}
               for name, g in groups.items()}
    for name, g in groups.items():
        pooled = {c: np.sum([r["px"][c[4:]] for r in g], axis=0) for c in cols}
        summary[name + ", pooled"] = {"n": len(g), **{c: round(float(v[0] / max(v[1], 1)), 4) for c, v in pooled.items()}}
    print(f"{images} images with touching people (of {index} rendered, seed {args.seed}), {time.time() - t0:.0f} s")
    print(f"{'people':26s} {'n':>4s} " + " ".join(f"{c:>19s}" for c in cols))
    for name, row in summary.items():
        print(f"{name:26s} {row['n']:4d} " + " ".join(f"{row[c]:19.4f}" if row[c] is not None else f"{'-':>19s}"
                                                    for c in cols))
    Path(args.json).write_text(json.dumps({"date": "2026-12-06", "args": vars(args), "images": images,
                                           "rendered": index, "summary": summary,
                                           "overlap_px": overlaps, "rows": rows}, indent=1))
    print("pixels in two people's masks, mean per image: before %.0f, split %.0f"
          % (np.mean([o["before"] for o in overlaps]), np.mean([o["split"] for o in overlaps])))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
