"""Stage: focal length (pixels) and pelvis translation (metres, camera frame) per person.

Backends:
- ``none``: not run;
- ``oracle``: the sample's ground-truth camera and translation (benchmarks);
- ``solver``: BLADE's camera solve (``poselabel/models/camera_solver.py``): the
  posed body (from the pose stage) rendered as a silhouette and aligned with the
  person's mask by differentiable rasterisation, starting from the Tz stage's
  depth. The people of an image are solved together (``camera_scene.solve_scene``):
  the pixels of others who may stand in front are "no evidence" (the person may be
  hidden there), first by pelvis depth, then per pixel from the fitted meshes' depth
  order, with a second descent where that changed; a person still poorly fitted
  restarts at the focal length of its image's well-fitted people. People cut by the
  image border get ``diagnostics["focal_margin"]`` (``camera_scene.focal_margin``,
  ``camera.focal_margin``). Every solved person gets ``diagnostics["depth_gain"]``: the IoU
  gained by placing it at ``Tz`` × 0.8 or × 1.25 with ``f`` refitted (``camera_scene.depth_gain``,
  ``camera.depth_gain``). People with the detector's 2D keypoints get
  ``diagnostics["keypoint_error"]`` (the fitted joints projected by the solved camera
  against them, ``quality.keypoint_residual``) and ``diagnostics["keypoint_count"]`` (how many
  landmarks it averages). The hard mask IoU at full resolution, the fit loss
  and the iteration count land in the tables; a solver reject (``empty_mask``,
  ``behind_camera``, ``nan``, ...) lands in ``diagnostics["camera_reject"]``.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from poselabel.models.ground_truth import match_ground_truth
from poselabel.records import ImageRecord, replace
from poselabel.transforms.base import BatchedSampleStage
from poselabel.transforms.estimate_tz import load_body_model


def solver_config(camera_config):
    """``CameraSolverConfig`` from the run's ``CameraConfig``."""
    from poselabel.models.camera_solver import CameraSolverConfig

    base = CameraSolverConfig()
    stages = tuple(dataclasses.replace(s, iters=max(1, round(s.iters * camera_config.iterations_scale)))
                   for s in base.stages)
    return dataclasses.replace(base, stages=stages, backend=camera_config.rasterizer,
                               refine_tz=camera_config.refine_tz, tz_prior_sigma=camera_config.tz_prior_sigma,
                               batch_size=camera_config.batch_size,
                               retry_below_iou=camera_config.retry_below_iou,
                               depth_order=camera_config.depth_order)


def _keypoint_residual(person, joints_cam: np.ndarray, focal_px: float, cx: float,
                       cy: float) -> tuple[float | None, int]:
    """The fit's keypoint error and count (``quality.keypoint_residual``) against the person's
    MediaPipe landmarks ``keypoints_2d`` (33, 3 = u, v, visibility); ``joints_cam`` (55, 3)
    camera frame, m. ``(None, 0)`` without landmarks."""
    if person.keypoints_2d is None:
        return None, 0
    from poselabel.models.geometric_fit import body_points_for_landmarks
    from poselabel.models.quality import keypoint_residual

    p3, p2, w = body_points_for_landmarks(joints_cam[None], np.asarray(person.keypoints_2d, np.float64)[None])
    return keypoint_residual(p3[0], p2[0], w[0], focal_px, cx, cy, person.bbox_xyxy)


class SolveCamera(BatchedSampleStage):
    """Persons of several images are solved in one batch (``camera.batch_size``)."""

    stage = "camera"

    def setup(self):
        super().setup()
        self.batch_persons = self.config.camera.batch_size

    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        if self.config.camera.backend != "solver":
            return [self.apply(r) for r in records]
        return self._solve(records)

    def build(self):
        if self.config.camera.backend != "solver":
            return None
        import torch

        from poselabel.models.silhouette import make_silhouette_rasterizer

        cfg = solver_config(self.config.camera)
        body = load_body_model(self.config)
        render = make_silhouette_rasterizer(cfg.backend, torch.device(self.config.camera.device), near=1e-3)
        return body, cfg, render

    def apply(self, record: ImageRecord) -> ImageRecord:
        backend = self.config.camera.backend
        if backend == "none" or not record.persons:
            return record
        if backend == "oracle":
            return self._oracle(record)
        if backend == "solver":
            return self._solve([record])[0]
        raise NotImplementedError(f"camera backend {backend!r}")

    def _oracle(self, record: ImageRecord) -> ImageRecord:
        camera = record.meta.get("camera") or {}
        persons = []
        for p in record.persons:
            gt = match_ground_truth(p.bbox_xyxy, record.meta)
            if gt is None or "focal_px" not in camera:
                persons.append(p)
                continue
            persons.append(replace(p, focal_px=float(camera["focal_px"]), transl=np.asarray(gt["transl"], np.float32),
                                   diagnostics={**p.diagnostics, "cx": float(camera["cx"]), "cy": float(camera["cy"])}))
        return replace(record, persons=tuple(persons))

    def _solve(self, records: list[ImageRecord]) -> list[ImageRecord]:
        """One solver call for all ready persons of ``records``."""
        import torch

        from poselabel.models.camera_scene import depth_gain, focal_margin, solve_scene_with_evidence
        from poselabel.models.quality import mask_geometry

        body, cfg, render = self.backend
        ready = [(r, p) for r in records for p in r.persons
                 if p.mask is not None and p.tz is not None and p.betas is not None]
        if not ready:
            return records
        dev = body.device
        with torch.no_grad():
            posed = body(torch.as_tensor(np.stack([p.betas for _, p in ready]), device=dev),
                         torch.as_tensor(np.stack([p.global_orient for _, p in ready]), device=dev),
                         torch.as_tensor(np.stack([p.body_pose for _, p in ready]), device=dev))
        verts, joints = posed.vertices, posed.joints.cpu().numpy()  # (N, V, 3), (N, 55, 3): pelvis at 0
        masks = [torch.from_numpy(p.mask) for _, p in ready]
        tz = torch.tensor([p.tz for _, p in ready], dtype=verts.dtype)
        # A masked person who is not solved (no Tz or pose) may stand in front of anyone.
        unsolved = {}
        for r in records:
            for p in r.persons:
                if p.mask is not None and (p.tz is None or p.betas is None):
                    m = torch.from_numpy(p.mask)
                    unsolved[id(r)] = unsolved[id(r)] | m if id(r) in unsolved else m
        extra = [unsolved.get(id(r)) for r, _ in ready]
        sol, ignore = solve_scene_with_evidence(verts, body.faces, tz, masks, [id(r) for r, _ in ready], cfg,
                                                extra_ignore=extra, render_fn=render)
        margin = [None] * len(ready)
        if self.config.camera.focal_margin:  # cut by the border: does the visible part pin f?
            cut = [any(mask_geometry(p.mask)[2]) for _, p in ready]  # mask pixels on an image edge
            if any(cut):
                margin = focal_margin(verts, body.faces, tz, masks, sol, cfg, ignore, render_fn=render,
                                      wanted=cut).tolist()
        gain = [None] * len(ready)
        if self.config.camera.depth_gain:  # would another depth explain the mask better?
            gain = depth_gain(verts, body.faces, masks, sol, cfg, ignore, render_fn=render).tolist()
        solved = {}
        for j, (r, p) in enumerate(ready):
            diag = {**p.diagnostics, "cx": r.width / 2.0, "cy": r.height / 2.0}
            reason = sol.reject_reasons[j]
            if reason is not None:
                diag["camera_reject"] = reason
                solved[(id(r), p.person_index)] = replace(p, diagnostics=diag)
                continue
            diag.update(fit_loss=float(sol.final_loss[j]), fit_iters=int(sol.iterations[j]))
            if margin[j] is not None and np.isfinite(margin[j]):
                diag["focal_margin"] = float(margin[j])
            if gain[j] is not None and np.isfinite(gain[j]):
                diag["depth_gain"] = float(gain[j])
            transl = sol.transl[j].numpy().astype(np.float32)
            kp_error, kp_count = _keypoint_residual(p, joints[j] + transl, float(sol.focal_px[j]), r.width / 2.0,
                                                    r.height / 2.0)
            if kp_error is not None:
                diag.update(keypoint_error=round(kp_error, 5), keypoint_count=kp_count)
            solved[(id(r), p.person_index)] = replace(p, focal_px=float(sol.focal_px[j]), transl=transl,
                                                      tz=float(transl[2]), mask_iou=float(sol.mask_iou[j]),
                                                      diagnostics=diag)
        return [replace(r, persons=tuple(solved.get((id(r), p.person_index), p) for p in r.persons))
                for r in records]
