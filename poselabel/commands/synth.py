"""``poselabel synth``: write synthetic ground-truth shards."""
from __future__ import annotations

import argparse
import time


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth", help="write synthetic ground-truth WebDataset shards",
        description="Render random people (the body model posed in random scenes) into "
                    "synth-NNNNNN.tar shards with jpg, instance mask.png and json ground truth.")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--num", type=int, required=True, help="number of samples")
    parser.add_argument("--seed", type=int, required=True, help="dataset seed (sample i uses (seed, i))")
    parser.add_argument("--body-model", default=None,
                        help="SMPL-X .npz (local or gs://); default: the cached procedural model")
    parser.add_argument("--max-persons", type=int, default=3, help="people per image: 1..K")
    parser.add_argument("--shard-size", type=int, default=100, help="samples per shard")
    parser.add_argument("--workers", type=int, default=1, help="processes (output does not depend on it)")
    parser.add_argument("--world", default="naked", choices=("naked", "clothed", "clothed+segmenter"),
                        help="mask world (docs/synth.md): naked bodies, masks = body outlines; clothed: "
                             "garments, hair, hats and bags, and a segmask.png member with each person's "
                             "clothed mask; clothed+segmenter: that mask with measured segmenter errors")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from poselabel.synth.writer import write_synthetic_shards

    torch.set_num_threads(1)
    start = time.perf_counter()
    results = write_synthetic_shards(args.out, args.num, args.seed, body_model_path=args.body_model,
                                     max_persons=args.max_persons, shard_size=args.shard_size,
                                     workers=args.workers, world=args.world)
    seconds = time.perf_counter() - start
    samples = sum(r["samples"] for r in results)
    persons = sum(r["persons"] for r in results)
    print(f"wrote {samples} samples ({persons} persons) in {len(results)} shards to {args.out} "
          f"({args.world} world) in {seconds:.1f} s ({seconds / max(samples, 1):.3f} s/sample, {args.workers} worker(s))")
    return 0
