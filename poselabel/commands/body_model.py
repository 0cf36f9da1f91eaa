"""``poselabel body-model``: write the procedural SMPL-X-format body model."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "body-model", help="write the procedural body model (SMPL-X .npz format)",
        description="Write the procedural stand-in for SMPLX_NEUTRAL.npz, loadable by smplx.create. "
                    "Name the file SMPLX_*.npz (smplx reads the model type from the name).")
    parser.add_argument("--out", required=True, help="output .npz path, e.g. SMPLX_NEUTRAL_PROCEDURAL.npz")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random parts (hand PCA, expressions)")
    parser.add_argument("--resolution", type=float, default=1.0,
                        help="tessellation density (1.0: about 12.6k vertices; smplx needs >= 9,930)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from poselabel.models.body.procedural import write_procedural_body_model

    path = write_procedural_body_model(args.out, seed=args.seed, resolution=args.resolution)
    print(f"wrote {path}")
    return 0
