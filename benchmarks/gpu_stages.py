"""The sections of ``benchmarks/gpu.py`` (one per GPU stage) and the synthetic people they share.

Each section takes the run's context (``device``, ``mode``: the sizes of ``FULL`` or ``DRY``,
``people``: ``make_people``'s dict) and its share of the time budget, and returns table rows
``{section, case, value, unit, note}``.
"""
from __future__ import annotations

import dataclasses
import io
import time

import numpy as np
import torch

# Sizes per mode. Full: what the issue asks for; dry: seconds on a CPU.
FULL = dict(device="cuda", camera_batches=(64, 256, 1024), camera_image=(480, 640), nets_batches=(64, 256),
            nets_variants=("small", "base"), yolo_models=("yolo11s-seg", "yolo11m-seg"), yolo_batches=(16, 64, 128),
            yolo_size=640, e2e_images=256, e2e_batch=128, e2e_workers=8, iters_scale=1.0, timed_iters=5)
DRY = dict(device="cpu", camera_batches=(2, 4), camera_image=(96, 128), nets_batches=(2,), nets_variants=("tiny",),
           yolo_models=("yolo11n-seg",), yolo_batches=(2,), yolo_size=128, e2e_images=4, e2e_batch=2,
           e2e_workers=1, iters_scale=0.1, timed_iters=1)



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
    """The default solver config (``bench camera``'s), its descent steps scaled by ``iters_scale``."""
    from poselabel.commands.bench import scaled_config
    from poselabel.models.camera.config import CameraSolverConfig

    total = sum(s.iters for s in CameraSolverConfig().stages)
    cfg = scaled_config(None if iters_scale == 1 else max(1, round(total * iters_scale)), batch)
    return dataclasses.replace(cfg, backend=backend)


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

                    amp = torch.autocast(torch.device(dev).type, dtype=torch.bfloat16, enabled=dtype == "bf16")
                    args = (x, info) if kind == "tz" else (x, info, tz)

                    def run(net=net, amp=amp, args=args):
                        with torch.inference_mode(), amp:
                            return net(*args)

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


