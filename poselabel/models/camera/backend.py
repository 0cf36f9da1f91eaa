"""The camera stage's backends: focal length (px) and pelvis translation (m, camera frame)
per person, over batches of records, with what the solve measured (``records.CameraFit``).

- ``none``: not run;
- ``oracle``: the sample's ground-truth camera and translation (benchmarks);
- ``solver``: BLADE's camera solve (``solver.py``): the posed body (from the pose stage)
  rendered as a silhouette and aligned with the person's mask by differentiable
  rasterisation, starting from the Tz stage's depth. The people of an image are solved
  together (``scene.solve_scene_with_evidence``): the pixels of others who may stand in front
  are "no evidence", first by pelvis depth, then per pixel from the fitted meshes' depth
  order; a person still poorly fitted restarts at the focal length of its image's
  well-fitted people. Then the probes the accept rule reads: ``focal_margin`` for people cut
  by the image border (``scene.focal_margin``, ``camera.focal_margin``), ``depth_gain`` for
  every solved person (``scene.depth_gain``, ``camera.depth_gain``), and the keypoint
  residual against the detector's 2D landmarks (``body.keypoints.keypoint_residual``).
  Then, unless the depths are the ground truth's, one camera per image
  (``scene.share_camera``): a person whose focal length the image's was given keeps its
  own solve's focal length and score as ``camera.solo_focal_px`` and ``camera.solo_iou``,
  the evidence the accept rule weighs (its focal length is its vote among its peers); its
  ``focal_px``, ``transl``, ``tz``, ``mask_iou`` and keypoint residual are the shared camera's
  (the same image under weak perspective), the probes its own solve's.
  Last, with ``camera.refine_pose``, the pose of each solved person with landmarks is
  refined against them under the solved camera (``body.refine``); the camera's measures
  (``mask_iou``, the probes, the keypoint residual) are those of the solve, before it.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from poselabel.models.body.keypoints import KEYPOINT_JOINTS, body_points_for_landmarks, keypoint_residual
from poselabel.models.body.landmark_fit import SkeletonModel
from poselabel.models.body.model import BodyModel, shared_body_model
from poselabel.models.body.refine import RefineConfig, refine_pose
from poselabel.models.camera.batch import Keypoints
from poselabel.models.camera.config import CameraSolverConfig
from poselabel.models.camera.scene import solve_scene_with_probes
from poselabel.models.ground_truth import match_ground_truth
from poselabel.models.render.silhouette import make_silhouette_rasterizer
from poselabel.records import CameraFit, ImageRecord, Person, replace



def solver_config(camera_config, exact_masks: bool = False, oracle_tz: bool = False) -> CameraSolverConfig:
    """``CameraSolverConfig`` from the run's ``CameraConfig``; ``exact_masks``: the masks are
    body silhouettes (the oracle segmenter), not a segmenter's (``CameraConfig.mask_weights``);
    ``oracle_tz``: the depths are the ground truth's (``CameraConfig.shares_camera``)."""
    base = CameraSolverConfig()
    cover_weight, keypoint_weight = camera_config.mask_weights(exact_masks)

    def scaled(stages):
        return tuple(dataclasses.replace(s, iters=max(1, round(s.iters * camera_config.iterations_scale)))
                     for s in stages)

    return dataclasses.replace(base, stages=scaled(base.stages), backend=camera_config.rasterizer,
                               refine_tz=camera_config.refine_tz, tz_prior_sigma=camera_config.tz_prior_sigma,
                               batch_size=camera_config.batch_size,
                               retry_below_iou=camera_config.retry_below_iou,
                               depth_order=camera_config.depth_order, cover_weight=cover_weight,
                               keypoint_weight=keypoint_weight, share_camera=camera_config.shares_camera(oracle_tz))


def person_keypoint_residual(person: Person, joints_cam: np.ndarray, focal_px: float, cx: float,
                             cy: float) -> tuple[float | None, int]:
    """The fit's keypoint error and count (``keypoint_residual``) against the person's
    MediaPipe landmarks ``keypoints_2d`` (33, 3 = u, v, visibility); ``joints_cam`` (55, 3)
    camera frame, m. ``(None, 0)`` without landmarks."""
    if person.keypoints_2d is None:
        return None, 0
    p3, p2, w = body_points_for_landmarks(joints_cam[None], np.asarray(person.keypoints_2d, np.float64)[None])
    return keypoint_residual(p3[0], p2[0], w[0], focal_px, cx, cy, person.bbox_xyxy)


def landmark_keypoints(persons: list[Person], joints: np.ndarray):
    """The solve's ``Keypoints`` from the persons' MediaPipe landmarks ``keypoints_2d``
    (33, 3 = u, v, visibility; None: no keypoints, weight 0) and their posed joints
    ``joints`` (N, 55, 3), pelvis at the origin (m)."""
    kp2d = np.stack([np.zeros((33, 3)) if p.keypoints_2d is None else np.asarray(p.keypoints_2d, np.float64)
                     for p in persons])
    p3, p2, w = body_points_for_landmarks(np.asarray(joints, np.float64), kp2d)
    return Keypoints(*(torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64) for a in (p3, p2, w)))


class NoCamera:
    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        return records


class OracleCamera:
    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        return [self._one(r) for r in records]

    @staticmethod
    def _one(record: ImageRecord) -> ImageRecord:
        camera = record.meta.get("camera") or {}
        persons = []
        for p in record.persons:
            gt = match_ground_truth(p.bbox_xyxy, record.meta)
            if gt is None or "focal_px" not in camera:
                persons.append(p)
                continue
            persons.append(replace(p, focal_px=float(camera["focal_px"]), transl=np.asarray(gt["transl"], np.float32),
                                   camera=CameraFit(cx=float(camera["cx"]), cy=float(camera["cy"]))))
        return replace(record, persons=tuple(persons))


class SolverCamera:
    """All ready persons (mask, Tz and pose) of a batch of records in one solver call."""

    def __init__(self, body: BodyModel, config: CameraSolverConfig, render, *, with_focal_margin: bool,
                 with_depth_gain: bool, refine: RefineConfig | None = None):
        self.body, self.config, self.render = body, config, render
        self.with_focal_margin, self.with_depth_gain = with_focal_margin, with_depth_gain
        self.refine = refine
        self.skeleton = SkeletonModel(body).to(body.device) if refine is not None else None

    def refined_poses(self, ready, sol, landmarks: Keypoints) -> dict[int, tuple[np.ndarray, np.ndarray, float, float]]:
        """Row ``j`` of ``ready`` -> ``(global_orient (3,), body_pose (63,), keypoint loss before,
        after)`` for the solved persons with MediaPipe landmarks (``models/body/refine.py``);
        ``landmarks``: ``landmark_keypoints`` of ``ready``."""
        rows = [j for j, (_, p) in enumerate(ready) if sol.reject_reasons[j] is None and p.keypoints_2d is not None]
        if self.refine is None or not rows:
            return {}
        uv, weight = landmarks.uv[rows], landmarks.weight[rows]
        ps = [ready[j] for j in rows]
        side = [max(float(p.bbox_xyxy[2] - p.bbox_xyxy[0]), float(p.bbox_xyxy[3] - p.bbox_xyxy[1]), 1.0) for _, p in ps]
        out = refine_pose(self.skeleton, np.stack([p.betas for _, p in ps]), np.stack([p.global_orient for _, p in ps]),
                          np.stack([p.body_pose for _, p in ps]), sol.focal_px[rows], sol.transl[rows],
                          np.array([[r.width / 2.0, r.height / 2.0] for r, _ in ps]), KEYPOINT_JOINTS, uv, weight,
                          np.asarray(side), self.refine)
        return {j: (out.global_orient[k].numpy().astype(np.float32), out.body_pose[k].numpy().astype(np.float32),
                    float(out.loss_before[k]), float(out.loss_after[k])) for k, j in enumerate(rows)}

    def apply_batch(self, records: list[ImageRecord]) -> list[ImageRecord]:
        body, cfg, render = self.body, self.config, self.render
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
        landmarks = landmark_keypoints([p for _, p in ready], joints)  # the solve's keypoint term, the refinement
        kp = landmarks if cfg.keypoint_weight > 0 else None
        sol, _, margin, gain = solve_scene_with_probes(
            verts, body.faces, tz, masks, [id(r) for r, _ in ready], cfg, extra_ignore=extra, render_fn=render,
            with_focal_margin=self.with_focal_margin, with_depth_gain=self.with_depth_gain, keypoints=kp)
        margin, gain = margin.tolist(), gain.tolist()
        solo_f, solo_iou = sol.solo("solo_focal_px"), sol.solo("solo_iou")
        refined = self.refined_poses(ready, sol, landmarks)
        solved = {}
        for j, (r, p) in enumerate(ready):
            cx, cy = r.width / 2.0, r.height / 2.0
            reason = sol.reject_reasons[j]
            if reason is not None:
                solved[(id(r), p.person_index)] = replace(p, camera=CameraFit(cx=cx, cy=cy, reject=reason))
                continue
            transl = sol.transl[j].numpy().astype(np.float32)
            kp_error, kp_count = person_keypoint_residual(p, joints[j] + transl, float(sol.focal_px[j]), cx, cy)
            fit = CameraFit(cx=cx, cy=cy, fit_loss=float(sol.final_loss[j]), fit_iters=int(sol.iterations[j]),
                            focal_margin=_finite_or_none(margin[j]), depth_gain=_finite_or_none(gain[j]),
                            keypoint_error=None if kp_error is None else round(kp_error, 5),
                            keypoint_count=None if kp_error is None else kp_count,
                            fit_iou=None if sol.fit_iou is None else _finite_or_none(round(float(sol.fit_iou[j]), 5)),
                            solo_focal_px=_finite_or_none(float(solo_f[j])),
                            solo_iou=_finite_or_none(round(float(solo_iou[j]), 5)))
            pose = {}
            if j in refined:  # the keypoint residual above is the solve's, before the refinement
                orient, body_pose, before, after = refined[j]
                pose = {"global_orient": orient, "body_pose": body_pose,
                        "diagnostics": {**p.diagnostics, "pose_refine_loss": [round(before, 5), round(after, 5)]}}
            solved[(id(r), p.person_index)] = replace(p, focal_px=float(sol.focal_px[j]), transl=transl,
                                                      tz=float(transl[2]), mask_iou=float(sol.mask_iou[j]),
                                                      camera=fit, **pose)
        return [replace(r, persons=tuple(solved.get((id(r), p.person_index), p) for p in r.persons))
                for r in records]


def _finite_or_none(x) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def make_backend(config):
    """The camera stage of a ``RunConfig`` (``camera.backend``)."""
    camera = config.camera
    if camera.backend == "none":
        return NoCamera()
    if camera.backend == "oracle":
        return OracleCamera()
    if camera.backend == "solver":
        cfg = solver_config(camera, exact_masks=config.segment.backend == "oracle", oracle_tz=config.tz.exact)
        body = shared_body_model(config.body_model, device=camera.device)
        render = make_silhouette_rasterizer(cfg.backend, torch.device(camera.device), near=1e-3)
        return SolverCamera(body, cfg, render, with_focal_margin=camera.focal_margin,
                            with_depth_gain=camera.depth_gain, refine=RefineConfig() if camera.refine_pose else None)
    raise ValueError(f"unknown camera backend {camera.backend!r}")
