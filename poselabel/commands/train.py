"""``poselabel train tz|pose``: train the Tz or the pose network on ground-truth shards."""
from __future__ import annotations

import argparse
import json
import logging
import time


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train the Tz or pose network on ground-truth shards",
        description="Train BLADE's Tz network or the Tz-conditioned pose network on synthetic ground-truth "
                    "shards (poselabel synth). Checkpoints (model.safetensors + config.json) go to --out, "
                    "local or gs://; --resume continues from the last one.")
    sub = parser.add_subparsers(dest="network", required=True)
    for name in ("tz", "pose"):
        p = sub.add_parser(name, help=f"train the {name} network")
        p.add_argument("--data", required=True, help="GT shard pattern (paths, globs, {a..b}, gs://)")
        p.add_argument("--out", required=True, help="checkpoint directory (local or gs://)")
        p.add_argument("--variant", choices=("tiny", "small", "base"), default="tiny")
        p.add_argument("--steps", type=int, default=2000)
        p.add_argument("--batch", type=int, default=32)
        p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
        p.add_argument("--resume", action="store_true", help="continue from --out's last checkpoint")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--lr", type=float, default=None, help="peak learning rate (tz 1e-3, pose 3e-4)")
        p.add_argument("--threads", type=int, default=1,
                       help="torch CPU threads (more than the free cores slows training down a lot)")
        p.add_argument("--log-every", type=int, default=50)
        p.add_argument("--save-every", type=int, default=500)
        if name == "tz":
            p.add_argument("--min-tz", type=float, default=0.5,
                           help="people with Tz <= this (m) are left out of training (BLADE: 0.5)")
            p.add_argument("--encoder", default=None,
                           help="pretrained Depth-Anything-V2 HF directory (local or gs://)")
        else:
            p.add_argument("--conditioning", choices=("tz", "none"), default="tz")
            p.add_argument("--tz-source", default="gt",
                           help="'gt' or a Tz checkpoint directory whose predictions condition the network")
            p.add_argument("--base", default=None,
                           help="checkpoint of a plain unconditioned pose network: train a ControlNet around it")
            p.add_argument("--max-tz", type=float, default=None, help="train only on people nearer than this (m)")
            p.add_argument("--body-model", default=None, help="SMPL-X .npz (default: the shards' own)")
        p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from poselabel.training.loop import TrainSettings

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    lr = args.lr if args.lr is not None else (1e-3 if args.network == "tz" else 3e-4)
    settings = TrainSettings(steps=args.steps, batch=args.batch, lr=lr, seed=args.seed, device=args.device,
                             threads=args.threads, log_every=args.log_every, save_every=args.save_every)
    start = time.perf_counter()
    if args.network == "tz":
        from poselabel.training.tz import train_tz

        record = train_tz(args.data, args.out, args.variant, settings, resume=args.resume, min_tz=args.min_tz,
                          encoder_path=args.encoder)
    else:
        from poselabel.training.pose import train_pose

        record = train_pose(args.data, args.out, args.variant, settings, resume=args.resume,
                            conditioning=args.conditioning, base=args.base, tz_source=args.tz_source,
                            max_tz=args.max_tz, body_model=args.body_model)
    print(json.dumps({"out": args.out, "seconds": round(time.perf_counter() - start, 1), "last": record}))
    return 0
