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
import io
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

import numpy as np  # noqa: E402
import torch  # noqa: E402

NVDR_SOURCES = (
    "csrc/common/antialias.cu", "csrc/common/common.cpp", "csrc/common/cudaraster/impl/Buffer.cpp",
    "csrc/common/cudaraster/impl/CudaRaster.cpp", "csrc/common/cudaraster/impl/RasterImpl.cpp",
    "csrc/common/cudaraster/impl/RasterImpl_kernel.cu", "csrc/common/interpolate.cu", "csrc/common/rasterize.cu",
    "csrc/common/texture.cpp", "csrc/common/texture_kernel.cu", "csrc/torch/torch_antialias.cpp",
    "csrc/torch/torch_bindings.cpp", "csrc/torch/torch_interpolate.cpp", "csrc/torch/torch_rasterize.cpp",
    "csrc/torch/torch_texture.cpp",
)

# Sizes per mode. Full: what the issue asks for; dry: seconds on a CPU.
FULL = dict(device="cuda", camera_batches=(64, 256, 1024), camera_image=(480, 640), nets_batches=(64, 256),
            nets_variants=("small", "base"), yolo_models=("yolo11s-seg", "yolo11m-seg"), yolo_batches=(16, 64, 128),
            yolo_size=640, e2e_images=256, e2e_batch=128, e2e_workers=8, iters_scale=1.0, timed_iters=5)
DRY = dict(device="cpu", camera_batches=(2, 4), camera_image=(96, 128), nets_batches=(2,), nets_variants=("tiny",),
           yolo_models=("yolo11n-seg",), yolo_batches=(2,), yolo_size=128, e2e_images=4, e2e_batch=2,
           e2e_workers=1, iters_scale=0.1, timed_iters=1)


class Clock:
    """The run's deadline and each section's share of it."""

    def __init__(self, budget_s: float):
        self.start = time.perf_counter()
        self.deadline = self.start + budget_s

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, warmup: int = 1, iters: int = 5) -> float:
    """Median wall seconds of ``fn()`` over ``iters`` calls after ``warmup`` calls (synchronised)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


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


# --------------------------------------------------------------------------- synthetic people

def make_people(n: int, image_hw: tuple[int, int], device, seed: int = 0) -> dict:
    """``n`` synthetic people, one per image (``image_hw`` px, landscape or portrait), each fully
    or mostly in frame: ground-truth mesh (pelvis at the origin, (n, V, 3) m, camera axes),
    focal (n,) px, principal point (n, 2) px, translation (n, 3) m and exact mask (CPU bool)."""
    from poselabel.models.body.model import BodyModel
    from poselabel.models.render.rasterize import project_points, rasterize_coverage
    from poselabel.synth.poses import sample_betas, sample_body_pose, sample_global_orient
    from poselabel.synth.scene import FOV_DEG, sample_depth

    rng = np.random.default_rng(seed)
    body = BodyModel(None, device=device)
    betas = np.stack([sample_betas(rng) for _ in range(n)])
    pose = np.stack([sample_body_pose(rng) for _ in range(n)])
    orient = np.stack([sample_global_orient(rng) for _ in range(n)])
    t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)  # noqa: E731
    with torch.no_grad():
        out = body(t(betas), t(orient), t(pose))
    verts = out.vertices  # pelvis at the origin
    portrait = rng.random(n) < 0.5
    hw = np.where(portrait[:, None], np.array(image_hw[::-1])[None], np.array(image_hw)[None])  # (n, 2) H, W
    fov = np.radians(rng.uniform(*FOV_DEG, n))
    focal = (hw.max(1) / 2) / np.tan(fov / 2)
    tz = np.array([sample_depth(rng) for _ in range(n)])
    zmin = verts[..., 2].amin(1).cpu().numpy()
    tz = np.maximum(tz, 0.1 - zmin)  # every vertex in front of the camera
    # The pelvis projects in the middle 60 % of the image: most people whole, some cut.
    u = rng.uniform(0.2, 0.8, n) * hw[:, 1]
    v = rng.uniform(0.2, 0.8, n) * hw[:, 0]
    pp = np.stack([hw[:, 1] / 2, hw[:, 0] / 2], 1)
    transl = np.stack([(u - pp[:, 0]) * tz / focal, (v - pp[:, 1]) * tz / focal, tz], 1)
    masks = []
    for i in range(n):
        px = project_points(verts[i:i + 1] + t(transl[i:i + 1])[:, None], t(focal[i:i + 1]), t(pp[i:i + 1, 0]),
                            t(pp[i:i + 1, 1]))
        masks.append(rasterize_coverage(px, body.faces, int(hw[i, 0]), int(hw[i, 1]))[0].cpu())
    return dict(body=body, verts=verts, faces=body.faces, focal=torch.as_tensor(focal),
                pp=torch.as_tensor(pp), transl=torch.as_tensor(transl), masks=masks, hw=hw,
                betas=betas, pose=pose, orient=orient)


def solver_config(batch: int, backend: str, iters_scale: float):
    import dataclasses

    from poselabel.models.camera.config import CameraSolverConfig

    cfg = CameraSolverConfig(batch_size=batch, backend=backend)
    stages = tuple(dataclasses.replace(s, iters=max(1, round(s.iters * iters_scale))) for s in cfg.stages)
    return dataclasses.replace(cfg, stages=stages)


def solve_people(people: dict, idx: list[int], backend: str, device, iters_scale: float, render=None) -> dict:
    """The camera stage's solve (scene passes, both probes) of ``people[idx]`` in one batch."""
    from poselabel.models.camera.scene import solve_scene_with_probes
    from poselabel.models.render.rasterize import render_count
    from poselabel.models.render.silhouette import make_silhouette_rasterizer

    cfg = solver_config(len(idx), backend, iters_scale)
    render = render or make_silhouette_rasterizer(backend, device)
    tz = people["transl"][idx, 2].float()
    renders0, t0 = render_count(), time.perf_counter()
    sol, _, margin, gain = solve_scene_with_probes(
        people["verts"][idx], people["faces"], tz, [people["masks"][i] for i in idx], list(range(len(idx))), cfg,
        principal_point=people["pp"][idx].float(), render_fn=render)
    sync(device)
    seconds = time.perf_counter() - t0
    e_f = (sol.focal_px - people["focal"][idx]).abs() / people["focal"][idx]
    e_txy = (sol.transl[:, :2] - people["transl"][idx, :2]).norm(dim=1)
    ok = torch.isfinite(e_f)
    return dict(persons=len(idx), seconds=seconds, persons_per_s=len(idx) / seconds,
                renders_per_person=(render_count() - renders0) / len(idx),
                median_E_f=float(e_f[ok].median()) if ok.any() else float("nan"),
                median_E_Txy_mm=1000 * float(e_txy[ok].median()) if ok.any() else float("nan"),
                mean_mIoU=float(sol.mask_iou[ok].mean()) if ok.any() else float("nan"),
                rejected=int((~ok).sum()), probes=int(torch.isfinite(gain).sum() + torch.isfinite(margin).sum()))


# --------------------------------------------------------------------------- sections

def section_nvdiffrast_check(ctx: dict) -> list[dict]:
    """nvdiffrast against the torch backend on the same meshes: silhouettes and gradients."""
    from poselabel.models.camera import windows as cc
    from poselabel.models.render.silhouette import NvdiffrastSilhouetteRasterizer, TorchSilhouetteRasterizer

    people, dev = ctx["people"], ctx["device"]
    idx = list(range(min(32, people["verts"].shape[0])))
    res = 128
    rows = []
    outs, target = {}, None
    for name, render in (("torch", TorchSilhouetteRasterizer()), ("nvdiffrast", NvdiffrastSilhouetteRasterizer(dev))):
        # A window around each person: the whole image scaled to res x res.
        scale = res / torch.as_tensor(people["hw"][idx].max(1), dtype=torch.float32, device=dev)
        f = (people["focal"][idx].float().to(dev) * scale).requires_grad_(True)
        cx = (people["pp"][idx, 0].float().to(dev) * scale).requires_grad_(True)
        cy = (people["pp"][idx, 1].float().to(dev) * scale).requires_grad_(True)
        vcam = people["verts"][idx] + people["transl"][idx].float().to(dev)[:, None]
        sil = render(vcam, people["faces"], f, cx, cy, (res, res))
        if target is None:  # the torch silhouette shifted by 2 px: one target for both backends
            target = cc.gaussian_blur((sil.detach() > 0.5).float().roll(2, dims=2), 1.0)
        loss = (1 - cc.soft_iou(cc.gaussian_blur(sil, 1.0), target, torch.ones_like(target))).sum()
        loss.backward()
        outs[name] = (sil.detach() > 0.5, torch.stack([f.grad, cx.grad, cy.grad], 1))
        t = timed(lambda: render(vcam.detach(), people["faces"], f.detach(), cx.detach(), cy.detach(), (res, res)),
                  dev, 1, 5)
        rows.append(dict(section="nvdiffrast", case=f"{name} render {len(idx)} meshes at {res} px",
                         value=len(idx) / t, unit="meshes/s"))
    (m_t, g_t), (m_n, g_n) = outs["torch"], outs["nvdiffrast"]
    iou = ((m_t & m_n).sum((1, 2)).float() / (m_t | m_n).sum((1, 2)).clamp(min=1).float())
    cos = torch.nn.functional.cosine_similarity(g_t, g_n, dim=0)  # per parameter over the meshes
    ratio = (g_n.norm(dim=0) / g_t.norm(dim=0).clamp(min=1e-12))
    rows.append(dict(section="nvdiffrast", case="silhouette IoU nvdiffrast vs torch (min / mean)",
                     value=float(iou.mean()), unit="IoU", note=f"min {float(iou.min()):.4f}"))
    rows.append(dict(section="nvdiffrast", case="gradient cosine f / cx / cy (over 32 meshes)",
                     value=float(cos.min()), unit="min cos",
                     note=" / ".join(f"{float(c):.3f}" for c in cos) + "; norm ratio "
                     + " / ".join(f"{float(r):.2f}" for r in ratio)))
    return rows


def section_camera(ctx: dict, backends: list[str], share_s: float) -> list[dict]:
    people, dev, mode = ctx["people"], ctx["device"], ctx["mode"]
    n_all = people["verts"].shape[0]
    rows = []
    end = time.perf_counter() + share_s
    for backend in backends:
        prev = None
        for b in mode["camera_batches"]:
            b = min(b, n_all)
            left = end - time.perf_counter()
            if prev is not None and prev[1] * b / prev[0] > left:
                rows.append(dict(section="camera", case=f"{backend} batch {b}", value=float("nan"), unit="persons/s",
                                 note=f"skipped: predicted {prev[1] * b / prev[0]:.0f} s > {left:.0f} s left"))
                continue
            r = solve_people(people, list(range(b)), backend, dev, mode["iters_scale"])
            prev = (b, r["seconds"])
            rows.append(dict(section="camera", case=f"{backend} batch {b}", value=r["persons_per_s"],
                             unit="persons/s",
                             note=(f"renders/person {r['renders_per_person']:.0f}, median E_f {100 * r['median_E_f']:.2f} %, "
                                   f"E_Txy {r['median_E_Txy_mm']:.1f} mm, mIoU {r['mean_mIoU']:.4f}, "
                                   f"rejected {r['rejected']}, {r['seconds']:.1f} s")))
        end += 0  # each backend shares the same deadline
    return rows


def section_nets(ctx: dict, share_s: float) -> list[dict]:
    from poselabel.models.nets.pose_net import PoseNet, pose_config
    from poselabel.models.nets.tz_net import TzNet, tz_config

    dev, mode = ctx["device"], ctx["mode"]
    rows = []
    end = time.perf_counter() + share_s
    for kind in ("tz", "pose"):
        for variant in mode["nets_variants"]:
            cfg = tz_config(variant) if kind == "tz" else pose_config(variant)
            net = (TzNet(cfg) if kind == "tz" else PoseNet(cfg)).to(dev).eval()
            s = cfg.image_size
            for dtype in ("fp32", "bf16"):
                for b in mode["nets_batches"]:
                    if time.perf_counter() > end:
                        rows.append(dict(section="nets", case=f"{kind} {variant} {dtype} batch {b}",
                                         value=float("nan"), unit="crops/s", note="skipped: section budget spent"))
                        continue
                    x = torch.randn(b, 3, s, s, device=dev)
                    info = torch.rand(b, 7, device=dev) * 0.5 + 0.1
                    tz = torch.rand(b, device=dev) * 5 + 0.5

                    def run():
                        with torch.inference_mode(), torch.autocast(torch.device(dev).type, dtype=torch.bfloat16,
                                                                    enabled=dtype == "bf16"):
                            return net(x, info) if kind == "tz" else net(x, info, tz)

                    t = timed(run, dev, 1, mode["timed_iters"])
                    rows.append(dict(section="nets", case=f"{kind} {variant} ({s} px) {dtype} batch {b}",
                                     value=b / t, unit="crops/s"))
            del net
            if torch.device(dev).type == "cuda":
                torch.cuda.empty_cache()
    return rows


def _nms():
    try:
        from ultralytics.utils.nms import non_max_suppression
    except ImportError:  # older ultralytics
        from ultralytics.utils.ops import non_max_suppression
    return non_max_suppression


def build_yolo(name: str, dev):
    """A YOLO segmentation model from its ``ultralytics`` yaml (random weights, no download)."""
    from ultralytics.nn.tasks import SegmentationModel

    model = SegmentationModel(f"{name}.yaml", verbose=False)
    return model.to(dev).eval()


def yolo_detect(model, images: torch.Tensor, dev):
    """Forward and NMS (person class only) on (B, 3, S, S) float images in [0, 1]."""
    nms = _nms()
    with torch.inference_mode(), torch.autocast(torch.device(dev).type, dtype=torch.float16,
                                                enabled=torch.device(dev).type == "cuda"):
        out = model(images)
    pred, proto = out[0] if isinstance(out[0], (list, tuple)) else out  # ((B, 4+80+32, A), (B, 32, h, w))
    dets = nms(pred.float(), 0.25, 0.7, classes=[0], max_det=100, nc=80)
    from ultralytics.utils.ops import process_mask

    # Instance masks at the input size for what was found: (n, S, S) per image.
    return [(d, process_mask(proto[i].float(), d[:, 6:], d[:, :4], images.shape[2:], upsample=True) if len(d) else None)
            for i, d in enumerate(dets)]


def section_detect(ctx: dict, share_s: float) -> list[dict]:
    dev, mode = ctx["device"], ctx["mode"]
    rows = []
    end = time.perf_counter() + share_s
    s = mode["yolo_size"]
    for name in mode["yolo_models"]:
        model = build_yolo(name, dev)
        for b in mode["yolo_batches"]:
            if time.perf_counter() > end:
                rows.append(dict(section="detect", case=f"{name} batch {b}", value=float("nan"), unit="images/s",
                                 note="skipped: section budget spent"))
                continue
            x = torch.rand(b, 3, s, s, device=dev)
            t = timed(lambda: yolo_detect(model, x, dev), dev, 1, mode["timed_iters"])
            rows.append(dict(section="detect", case=f"{name} ({s} px) fp16 batch {b}", value=b / t, unit="images/s",
                             note="forward + NMS; random weights find few boxes"))
    return rows


class JpegImages(torch.utils.data.Dataset):
    """In-memory JPEGs decoded and letterboxed to ``size`` (what a shard reader hands on)."""

    def __init__(self, blobs: list[bytes], size: int):
        self.blobs, self.size = blobs, size

    def __len__(self):
        return len(self.blobs)

    def __getitem__(self, i):
        from PIL import Image

        im = Image.open(io.BytesIO(self.blobs[i])).convert("RGB")
        w, h = im.size
        k = self.size / max(w, h)
        im = im.resize((max(1, round(w * k)), max(1, round(h * k))), Image.BILINEAR)
        canvas = np.zeros((self.size, self.size, 3), np.uint8)
        canvas[: im.size[1], : im.size[0]] = np.asarray(im)
        return torch.from_numpy(canvas).permute(2, 0, 1), torch.tensor([w, h]), i


def _jpegs(people: dict, n: int, seed: int = 0) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        m = people["masks"][i % len(people["masks"])].numpy()
        img = rng.integers(0, 255, (*m.shape, 3), dtype=np.uint8) // 2
        img[m] = rng.integers(100, 255, 3, dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def section_e2e(ctx: dict, share_s: float) -> list[dict]:
    """Decode -> detect -> crops -> Tz -> pose -> body -> camera, per batch; shares of the time.
    Stops after the batch that crosses ``share_s`` seconds (images/s is over the batches run)."""
    from torchvision.ops import roi_align

    from poselabel.models.nets.pose_net import PoseNet, pose_config
    from poselabel.models.nets.tz_net import TzNet, tz_config
    from poselabel.models.render.silhouette import make_silhouette_rasterizer

    people, dev, mode = ctx["people"], ctx["device"], ctx["mode"]
    n = min(mode["e2e_images"], people["verts"].shape[0])
    variant = "tiny" if mode is DRY else "small"
    tz_net = TzNet(tz_config(variant)).to(dev).eval()
    pose_net = PoseNet(pose_config(variant)).to(dev).eval()
    yolo = build_yolo(mode["yolo_models"][0], dev)
    body = people["body"]
    backend = ctx.get("e2e_backend", "torch")
    render = make_silhouette_rasterizer(backend, dev)
    loader = torch.utils.data.DataLoader(JpegImages(_jpegs(people, n), mode["yolo_size"]), batch_size=mode["e2e_batch"],
                                         num_workers=mode["e2e_workers"], pin_memory=torch.device(dev).type == "cuda")
    spent = dict(decode=0.0, detect=0.0, crops=0.0, tz=0.0, pose=0.0, body=0.0, camera=0.0)
    amp = dict(device_type=torch.device(dev).type, dtype=torch.bfloat16)
    t_all = time.perf_counter()
    t = time.perf_counter()
    done = 0
    for pix, wh, idx in loader:
        if time.perf_counter() - t_all > share_s:
            break
        done += len(idx)
        x = pix.to(dev, non_blocking=True).float().div_(255)
        sync(dev)
        spent["decode"] += time.perf_counter() - t
        t = time.perf_counter()
        yolo_detect(yolo, x, dev)
        sync(dev)
        spent["detect"] += time.perf_counter() - t
        t = time.perf_counter()
        # Oracle boxes (the ground-truth mask's box, in letterboxed pixels): random YOLO weights find none.
        k = mode["yolo_size"] / wh.max(1).values.to(dev).float()
        boxes = []
        for j, i in enumerate(idx.tolist()):
            ys, xs = torch.nonzero(people["masks"][i], as_tuple=True)
            side = 1.25 * max(int(xs.max() - xs.min()), int(ys.max() - ys.min()), 1)
            ccx, ccy = float(xs.min() + xs.max()) / 2, float(ys.min() + ys.max()) / 2
            boxes.append([j, ccx - side / 2, ccy - side / 2, ccx + side / 2, ccy + side / 2])
        rois = torch.tensor(boxes, dtype=torch.float32, device=dev)
        rois[:, 1:] *= k[:, None]
        info = torch.rand(len(boxes), 7, device=dev) * 0.5 + 0.1
        crops_tz = roi_align(x, rois, tz_net.config.image_size, aligned=True)
        crops_pose = roi_align(x, rois, pose_net.config.image_size, aligned=True)
        sync(dev)
        spent["crops"] += time.perf_counter() - t
        t = time.perf_counter()
        with torch.inference_mode(), torch.autocast(**amp):
            tz = tz_net(crops_tz, info).float()
        sync(dev)
        spent["tz"] += time.perf_counter() - t
        t = time.perf_counter()
        with torch.inference_mode(), torch.autocast(**amp):
            pose = pose_net(crops_pose, info, tz)
        sync(dev)
        spent["pose"] += time.perf_counter() - t
        t = time.perf_counter()
        with torch.no_grad():
            body(pose["betas"].float(), pose["global_orient"].float(), pose["body_pose"].float())
        sync(dev)
        spent["body"] += time.perf_counter() - t
        t = time.perf_counter()
        # The camera solve of the ground-truth bodies at their true Tz (see the module docstring).
        solve_people(people, idx.tolist(), backend, dev, mode["iters_scale"], render=render)
        spent["camera"] += time.perf_counter() - t
        t = time.perf_counter()
    total = sum(spent.values())
    rows = [dict(section="e2e", case=f"{done} images, batch {mode['e2e_batch']}, camera on {backend}",
                 value=done / total, unit="images/s", note=f"goal 1000; {total:.1f} s")]
    for stage, s in spent.items():
        rows.append(dict(section="e2e", case=f"  {stage}", value=100 * s / total, unit="% of time",
                         note=f"{done / s:.0f} images/s alone" if s > 0 else ""))
    return rows


# --------------------------------------------------------------------------- driver

def format_table(rows: list[dict]) -> str:
    width = max([len(r["case"]) for r in rows] + [10])
    lines = [f"{'section':11s} {'case':{width}s} {'value':>12s}  {'unit':12s} note"]
    for r in rows:
        v = r["value"]
        vs = "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:12.4g}"
        lines.append(f"{r['section']:11s} {r['case']:{width}s} {vs:>12s}  {r['unit']:12s} {r.get('note', '')}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (CI)")
    ap.add_argument("--json", default=None, help="write every row here (after each section)")
    ap.add_argument("--nvdiffrast-src", default=str(ROOT / ".nvdiffrast"),
                    help="nvdiffrast's source folder (csrc/, nvdiffrast/); skipped when absent")
    ap.add_argument("--build-dir", default="/tmp/poselabel-nvdiffrast-build")
    ap.add_argument("--budget-s", type=float, default=460.0, help="wall-time budget of all sections")
    ap.add_argument("--sections", default="nets,detect,camera,nvdiffrast,e2e")
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
