"""One command for a GPU machine: what every GPU stage of a label costs, in one table.

    python benchmarks/gpu.py [--json OUT.json] [--nvdiffrast-src DIR] [--budget-s 460]
    python benchmarks/gpu.py --dry-run        # tiny sizes on the CPU (CI runs this)

Needs only PyTorch, ``smplx``, ``safetensors``, ``transformers``, ``ultralytics`` and this
package's ``models/`` (no Beam, no MediaPipe); it runs from a checkout (no install). Sections,
each under its share of ``--budget-s`` (a case predicted to overrun is skipped, and says so):

- ``nvdiffrast``: built from its source (``--nvdiffrast-src``, default ``.nvdiffrast`` in the
  checkout; never committed, ``infra/README.md`` says how to bring it) in a background process
  started first, so the compile overlaps the other sections; its silhouettes and gradients
  checked against the ``torch`` backend on the same meshes;
- ``camera``: the camera solve as the camera stage runs it (``solve_scene_with_probes``: the
  solve and both probes) on synthetic people with exact masks, ground-truth mesh and ``Tz``,
  for each silhouette backend and batches of 64 to 1,024 persons, fp32: persons/s, renders per
  person and the accuracy of the same people (median ``E_f``, mean mask IoU);
- ``nets``: the Tz and pose networks (``small`` and ``base``, random weights), crops/s in fp32
  and bf16 (autocast), batches 64 to 512;
- ``detect``: YOLO detection with instance masks built from ``ultralytics``' yaml (random
  weights), images/s at 640 px, batches 16 to 128 (fp16 autocast, forward and NMS);
- ``e2e``: JPEG decode in a ``DataLoader`` with workers, then detection, crops, Tz, pose, body
  and camera on the GPU, images/s and each stage's share of the time, against the goal of
  1,000 images/s per GPU. The camera stage is fed the ground-truth mesh and ``Tz`` (random
  networks would give meaningless bodies to fit), so its cost is that of real fits.

The table goes to stdout; ``--json`` keeps every row (written after each section, so a run cut
short still leaves what it measured).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import traceback
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: the package need not be installed
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from gpu_stages import (  # noqa: E402
    DRY, FULL, make_people, section_camera, section_detect, section_e2e, section_nets,
    section_nvdiffrast_check, solve_people,
)

NVDR_SOURCES = (
    "csrc/common/antialias.cu", "csrc/common/common.cpp", "csrc/common/cudaraster/impl/Buffer.cpp",
    "csrc/common/cudaraster/impl/CudaRaster.cpp", "csrc/common/cudaraster/impl/RasterImpl.cpp",
    "csrc/common/cudaraster/impl/RasterImpl_kernel.cu", "csrc/common/interpolate.cu", "csrc/common/rasterize.cu",
    "csrc/common/texture.cpp", "csrc/common/texture_kernel.cu", "csrc/torch/torch_antialias.cpp",
    "csrc/torch/torch_bindings.cpp", "csrc/torch/torch_interpolate.cpp", "csrc/torch/torch_rasterize.cpp",
    "csrc/torch/torch_texture.cpp",
)


class Clock:
    """The run's deadline and each section's share of it."""

    def __init__(self, budget_s: float):
        self.start = time.perf_counter()
        self.deadline = self.start + budget_s

    def left(self) -> float:
        return self.deadline - time.perf_counter()


# --------------------------------------------------------------------------- nvdiffrast

def build_nvdiffrast(src: str, build_dir: str):
    """Compile (or reuse) nvdiffrast's CUDA extension from its source folder and import
    ``nvdiffrast.torch`` from there. Returns the module."""
    from torch.utils.cpp_extension import load

    os.makedirs(build_dir, exist_ok=True)
    mod = load("_nvdiffrast_c", [os.path.join(src, f) for f in NVDR_SOURCES], extra_cflags=["-DNVDR_TORCH"],
               extra_cuda_cflags=["-DNVDR_TORCH", "-lineinfo"], build_directory=build_dir, verbose=False)
    sys.modules["_nvdiffrast_c"] = mod
    # nvdiffrast/__init__.py reads its installed version, and it is not installed: the package
    # is given its folder directly, and nvdiffrast.torch imports from there.
    pkg = types.ModuleType("nvdiffrast")
    pkg.__path__ = [os.path.join(src, "nvdiffrast")]
    sys.modules.setdefault("nvdiffrast", pkg)
    import nvdiffrast.torch as dr

    return dr


def start_nvdiffrast_build(src: str, build_dir: str, log_path: str):
    """The compile in a background process (it takes minutes; the other sections run meanwhile)."""
    env = dict(os.environ)
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        env.setdefault("TORCH_CUDA_ARCH_LIST", f"{major}.{minor}")
    env.setdefault("MAX_JOBS", str(max(1, (os.cpu_count() or 4) - 2)))  # two cores left to the sections
    log = open(log_path, "w")
    return subprocess.Popen([sys.executable, __file__, "--build-nvdiffrast", src, build_dir], stdout=log,
                            stderr=subprocess.STDOUT, env=env)

# --------------------------------------------------------------------------- driver

def format_table(rows: list[dict]) -> str:
    width = max([len(r["case"]) for r in rows] + [10])
    lines = [f"{'section':11s} {'case':{width}s} {'value':>12s}  {'unit':12s} note"]
    for r in rows:
        v = r["value"]
        vs = "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:12.4g}"
        lines.append(f"{r['section']:11s} {r['case']:{width}s} {vs:>12s}  {r['unit']:12s} {r.get('note', '')}")
    return "\n".join(lines)


def profile_camera(batch: int, dev, mode: dict) -> int:
    """Where one camera solve's time goes: cProfile's top functions by own and cumulative time."""
    import cProfile
    import pstats

    people = make_people(batch, mode["camera_image"], dev)
    solve_people(people, list(range(min(batch, 8))), "torch", dev, mode["iters_scale"])  # warm-up
    prof = cProfile.Profile()
    prof.enable()
    r = solve_people(people, list(range(batch)), "torch", dev, mode["iters_scale"])
    prof.disable()
    print(f"{batch} persons: {r['persons_per_s']:.2f} persons/s, {r['renders_per_person']:.0f} renders/person")
    st = pstats.Stats(prof).strip_dirs()
    st.sort_stats("tottime").print_stats(45)
    st.sort_stats("cumulative").print_stats(45)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (CI)")
    ap.add_argument("--json", default=None, help="write every row here (after each section)")
    ap.add_argument("--nvdiffrast-src", default=str(ROOT / ".nvdiffrast"),
                    help="nvdiffrast's source folder (csrc/, nvdiffrast/); skipped when absent")
    ap.add_argument("--build-dir", default="/tmp/poselabel-nvdiffrast-build")
    ap.add_argument("--budget-s", type=float, default=460.0, help="wall-time budget of all sections")
    ap.add_argument("--sections", default="nets,detect,camera,nvdiffrast,e2e")
    ap.add_argument("--profile", type=int, metavar="BATCH", default=None,
                    help="only profile one camera solve of BATCH people (torch backend): cProfile's top functions")
    ap.add_argument("--build-nvdiffrast", nargs=2, metavar=("SRC", "BUILD"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build_nvdiffrast:  # the background compile (start_nvdiffrast_build)
        build_nvdiffrast(*args.build_nvdiffrast)
        print("nvdiffrast built")
        return 0

    mode = DRY if args.dry_run else FULL
    if mode["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --dry-run, or on a GPU machine")
    dev = torch.device(mode["device"])
    clock = Clock(args.budget_s)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    rows: list[dict] = []

    def save():
        if args.json:
            Path(args.json).write_text(json.dumps({"device": device_name, "rows": rows}, indent=1, default=str))

    device_name = torch.cuda.get_device_name() if dev.type == "cuda" else "cpu"
    rows.append(dict(section="env", case=f"{device_name}, torch {torch.__version__}", value=None, unit="",
                     note=f"cuda {torch.version.cuda}" if dev.type == "cuda" else "dry run"))
    build = None
    have_src = Path(args.nvdiffrast_src, "csrc").is_dir()
    if "nvdiffrast" in sections and dev.type == "cuda" and have_src:
        build = start_nvdiffrast_build(args.nvdiffrast_src, args.build_dir, "/tmp/poselabel-nvdiffrast-build.log")
    if args.profile:
        return profile_camera(args.profile, dev, mode)
    t0 = time.perf_counter()
    n_people = max(mode["camera_batches"] + (mode["e2e_images"],))
    ctx = dict(device=dev, mode=mode, people=make_people(n_people, mode["camera_image"], dev))
    rows.append(dict(section="env", case=f"{n_people} synthetic people made", value=time.perf_counter() - t0,
                     unit="s"))
    print(format_table(rows[-1:]), flush=True)

    def run(name, fn, *a):
        if name not in sections:
            return
        t = time.perf_counter()
        try:
            new = fn(*a)
        except Exception as exc:  # a failed section is a row, the others still run
            traceback.print_exc()
            new = [dict(section=name, case="failed", value=None, unit="", note=f"{type(exc).__name__}: {exc}"[:300])]
        rows.extend(new)
        rows.append(dict(section=name, case="(section wall time)", value=time.perf_counter() - t, unit="s"))
        print(format_table(new), flush=True)
        save()

    # Shares of what is left when each section starts.
    run("nets", section_nets, ctx, 0.2 * clock.left())
    run("detect", section_detect, ctx, 0.12 * clock.left())
    run("camera", section_camera, ctx, ["torch"], 0.35 * clock.left())
    nvdr_ok = False
    if "nvdiffrast" in sections:
        if build is None:
            why = "no CUDA device" if dev.type != "cuda" else f"no source at {args.nvdiffrast_src}"
            rows.append(dict(section="nvdiffrast", case="skipped", value=None, unit="", note=why))
        else:
            try:
                build.wait(timeout=max(1.0, 0.3 * clock.left()))
                build_nvdiffrast(args.nvdiffrast_src, args.build_dir)
                nvdr_ok = True
            except Exception as exc:
                tail = Path("/tmp/poselabel-nvdiffrast-build.log").read_text()[-600:]
                rows.append(dict(section="nvdiffrast", case="build failed", value=None, unit="",
                                 note=f"{type(exc).__name__}: {exc}; {tail}"[:900]))
                print(tail, flush=True)
            if nvdr_ok:
                run("nvdiffrast", section_nvdiffrast_check, ctx)
                sections.append("camera-nvdiffrast")
                run("camera-nvdiffrast", section_camera, ctx, ["nvdiffrast"], 0.55 * clock.left())
    if nvdr_ok:
        ctx["e2e_backend"] = "nvdiffrast"
    run("e2e", section_e2e, ctx, 0.9 * clock.left())
    rows.append(dict(section="env", case="total wall time", value=time.perf_counter() - clock.start, unit="s"))
    save()
    print("\n" + format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
