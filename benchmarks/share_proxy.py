"""What ``models.share=machine``'s proxy costs: the same Tz batch called directly and through it.

Builds the tiny Tz network (random weights), then times ``predict_batch`` on
``--batch`` random RGB images of ``--size`` (W x H) with two boxes each, ``--reps``
times, once on the predictor itself and once through Beam's ``MultiProcessShared``
proxy served from this process (``always_proxy``, as the pipeline does: the
arguments and results are pickled over a local socket). Prints both times, the
difference per batch and per MB of images, and checks the outputs are identical.

    .venv/bin/python benchmarks/share_proxy.py --batch 8 --size 640x480 --reps 20
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def _items(batch: int, width: int, height: int):
    rng = np.random.default_rng(0)
    boxes = np.array([[0.15 * width, 0.1 * height, 0.45 * width, 0.95 * height],
                      [0.55 * width, 0.1 * height, 0.95 * width, 0.95 * height]], np.float32)
    return [(rng.integers(0, 256, (height, width, 3), np.uint8), boxes) for _ in range(batch)]


def _time(predictor, items, reps: int):
    predictor.predict_batch(items)  # warm-up
    start = time.perf_counter()
    for _ in range(reps):
        out = predictor.predict_batch(items)
    return (time.perf_counter() - start) / reps, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="images per call")
    parser.add_argument("--size", default="640x480", help="image size WxH")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    import torch

    from poselabel.models.nets.checkpoints import load_tz_predictor, save_checkpoint
    from poselabel.models.nets.tz_net import build_tz_net, tz_config
    from poselabel.transforms import shared_models

    torch.set_num_threads(1)
    directory = tempfile.mkdtemp()
    torch.manual_seed(0)
    save_checkpoint(directory, build_tz_net(tz_config("tiny")))
    items = _items(args.batch, width, height)
    direct_s, direct_out = _time(load_tz_predictor(directory), items, args.reps)
    served = shared_models.acquire("machine", f"poselabel-bench-{os.getpid()}", lambda: load_tz_predictor(directory))
    proxy_s, proxy_out = _time(served, items, args.reps)
    if not all(np.array_equal(a, b) for a, b in zip(direct_out, proxy_out)):
        raise SystemExit("the proxy's outputs differ from the direct call's")
    mb = sum(image.nbytes for image, _ in items) / 1e6
    extra_ms = (proxy_s - direct_s) * 1e3
    print(f"{args.batch} images {width}x{height} ({mb:.1f} MB) per call: direct {direct_s * 1e3:.1f} ms, "
          f"through the proxy {proxy_s * 1e3:.1f} ms; +{extra_ms:.1f} ms per call, {extra_ms / mb:.2f} ms per MB")


if __name__ == "__main__":
    main()
