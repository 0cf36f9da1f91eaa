"""The camera solver's configuration (its schedule) and its result (pure dataclasses, torch tensors).

``CameraSolverConfig``: the descent's stages, the start's hypotheses, ranges and the scene
passes (``solver.py`` says what each step does); ``CameraSolution``: per-person results;
``REJECT_*``: the solver's own reject reasons, as the persons table names them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

REJECT_EMPTY_MASK = "empty_mask"
REJECT_SMALL_MASK = "small_mask"
REJECT_BEHIND_CAMERA = "behind_camera"
REJECT_NAN = "nan"
REJECT_NO_OVERLAP = "no_overlap"


@dataclass(frozen=True)
class SolverStage:
    """One coarse-to-fine stage: working size ``res`` (px), Gaussian ``blur`` sigma (working
    px), ``iters`` Adam steps with step size ``lr`` (crop pixels at 128 px, cosine-decayed
    to ``lr * lr_floor``)."""

    res: int
    blur: float
    iters: int
    lr: float


@dataclass(frozen=True)
class CameraSolverConfig:
    stages: tuple[SolverStage, ...] = (
        SolverStage(res=64, blur=2.0, iters=30, lr=1.0),
        SolverStage(res=128, blur=1.5, iters=30, lr=0.3),
        SolverStage(res=192, blur=1.0, iters=20, lr=0.1),
    )
    lr_floor: float = 0.1
    # Early stop of a stage: every ``stop_window`` steps, stop when no person's best loss
    # (1 - soft IoU) fell by more than ``stop_tol`` since the last check (0: run every step).
    stop_window: int = 5
    stop_tol: float = 1e-4
    # The short schedule of a descent warm-started from a solution of nearly the same problem
    # (``solve_camera(short_descent=True)``: the depth-order pass): ``stages`` less the
    # ``warm_skip`` coarsest, each with ``iters`` scaled by ``warm_iters_scale``
    # (``warm_schedule()``); ``warm_stages`` set explicitly overrides that (docs/camera_solver.md).
    warm_stages: tuple[SolverStage, ...] | None = None
    warm_skip: int = 1
    warm_iters_scale: float = 0.4
    # The probes' descents (scene.focal_margin, scene.depth_gain): ``stages`` less the finest
    # ``probe_drop_fine`` (``probe_schedule()``); their start is a perturbed solution, whose
    # basin the coarse stages find. ``probe_stages`` set explicitly overrides that.
    probe_stages: tuple[SolverStage, ...] | None = None
    probe_drop_fine: int = 1
    init_rounds: int = 3  # closed-form moment rounds giving one start candidate (0: BLADE start)
    init_res: int = 128  # global start: search window size (px) of the refinement and moment rounds
    init_search_res: int | None = 64  # ... and of the focal hypotheses' search (None: init_res)
    init_passes: int = 3  # global start: render-and-shift passes per focal hypothesis
    # Global start: render canvas side / search window side, for the focal hypotheses' passes (the
    # body may be anywhere) and for the winner's settling and refinement (it is on the target;
    # start.global_start; None: init_canvas).
    init_canvas: float = 4.0
    init_settle_canvas: float | None = 2.0
    # ... and for the focal refinement (None: init_settle_canvas); 1.5: its FFTs 0.69 as large,
    # the 500-set's first 180 people as well fitted (docs/camera_solver.md, "Cost", 13.)
    init_refine_canvas: float | None = 1.5
    # Global start: the best hypothesis' focal length is then tried scaled by each of these.
    init_refine_scales: tuple[float, ...] = (0.9, 1.11, 0.95, 1.05, 0.975, 1.025)
    # Global start: below this full-resolution IoU the predicted best is replaced by the best
    # measured state, when better (close-ups; _moment_init).
    init_verified_below: float = 0.5
    # Focal hypotheses (FoV of the longer image side, degrees) beside the moment estimate, each
    # after a global shift search (start.py); guards against the moments' failures.
    init_fovs_deg: tuple[float, ...] = (20.0, 28.0, 38.0, 50.0, 65.0, 80.0, 95.0, 110.0, 125.0)
    crop_scale: float = 1.25  # crop side / longer side of the mask's box (clipped to the image)
    crop_to_person: bool = True  # False: the window is the whole image (padded square)
    optimize_focal: bool = True
    refine_tz: bool = False
    tz_prior_sigma: float = 0.05  # relative std of the Tz prior (log-Tz, when refine_tz)
    focal_range: tuple[float, float] = (10.0, 1e4)  # px
    tz_range: tuple[float, float] = (0.3, 50.0)  # m
    min_mask_px: int = 16  # smaller visible masks are rejected (small_mask)
    batch_size: int = 64  # persons per optimisation batch
    backend: str = "auto"  # silhouette rasteriser: auto | torch | nvdiffrast
    near: float = 0.01  # m; any vertex nearer than this: behind_camera
    soft_iou_form: str = "tanimoto"  # tanimoto (unbiased on blurred masks) | blade
    # Weight of mask pixels the body leaves uncovered vs body pixels outside the mask
    # (windows.soft_iou): 1 symmetric; below 1 the mask bounds the body from outside.
    cover_weight: float = 1.0
    # Keypoint term of the descent (when the solve is given 2D keypoints): weight of the
    # weighted mean keypoint distance / the mask box's longer side (BLADE: 0.5, L1).
    keypoint_weight: float = 0.0
    # occlusion.py: another's pixels carry no evidence if they may be in front: Tz_j < Tz_i (1 + margin).
    occluder_depth_margin: float = 0.1
    # camera.scene.solve_scene: re-solve by the depth order of fits of IoU >= depth_order_min_iou;
    # persons below retry_below_iou restart at their image's focal from fits of IoU >= peer_min_iou.
    depth_order: bool = True
    depth_order_min_iou: float = 0.8
    peer_min_iou: float = 0.95
    # camera.scene.share_camera: the people of one image share one camera. Fits of objective
    # IoU >= share_min_iou vote (the median of their log focal lengths, two voters at least);
    # every solved person whose own focal length lies within a factor share_focal_band of it
    # is solved again at it, its depth Tz scaled by the ratio (the same image under weak
    # perspective), and keeps that camera unless its objective IoU falls by more than
    # share_max_loss. False: each person keeps its own focal length.
    share_camera: bool = True
    share_min_iou: float = 0.8
    share_focal_band: float = 1.5
    share_max_loss: float = 0.01
    # Second chance: persons below this full-resolution IoU are solved again with a denser
    # focal grid and more passes; the better of the two is kept. 0 disables.
    retry_below_iou: float = 0.9
    retry_fovs_deg: tuple[float, ...] = (12.0, 14.3, 16.9, 20.0, 23.7, 28.1, 33.3, 39.4, 46.7, 55.3, 65.5,
                                         77.6, 91.9, 108.8, 128.9, 140.0)
    retry_passes: int = 4
    # The second chance for fits with their own objective (``own_objective``: segmenter masks,
    # keypoints). Off: on clothed synthetic people (2026-12-06, seeds 21 + 41, 266 people with
    # MediaPipe-like keypoints) it ran for 80 % of them at the cost of a second solve (CPU per
    # person 1.17 -> 0.68 s without it, probes included) and found the same fits within noise:
    # good labels (E_f <= 5 %, E_Txy <= 3 cm) 130 with, 129 without; the two solves' scores
    # differed by about 0.001 where the retry won, its focal lengths better or worse alike.
    # docs/camera_solver.md, "Cost".
    retry_own_objective: bool = False

    def warm_schedule(self) -> tuple[SolverStage, ...]:
        """The stages of a warm-started descent (see ``warm_stages``)."""
        if self.warm_stages is not None:
            return self.warm_stages
        kept = self.stages[min(self.warm_skip, len(self.stages) - 1):]
        return tuple(replace(s, iters=max(1, round(s.iters * self.warm_iters_scale))) for s in kept)

    def probe_schedule(self) -> tuple[SolverStage, ...]:
        """The stages of a probe's descent (see ``probe_stages``)."""
        if self.probe_stages is not None:
            return self.probe_stages
        return self.stages[:max(1, len(self.stages) - self.probe_drop_fine)]

    def own_objective(self, keypoints) -> bool:
        """Whether the solve's objective differs from ``1 −`` the symmetric IoU: an uncovered-mask
        weight below 1, or the keypoint term with ``keypoints`` given (see ``CameraSolution.fit_iou``)."""
        return self.cover_weight != 1.0 or (keypoints is not None and self.keypoint_weight > 0)

    def __post_init__(self):
        if not self.stages or any(s.res < 8 or s.iters < 0 or s.lr < 0 or s.blur < 0 for s in self.stages):
            raise ValueError("camera solver stages need res >= 8, iters >= 0, lr >= 0, blur >= 0")
        if not (0 < self.focal_range[0] < self.focal_range[1]) or not (0 < self.tz_range[0] < self.tz_range[1]):
            raise ValueError("focal_range and tz_range must be increasing positive pairs")
        if self.crop_scale < 1.0 or self.batch_size < 1 or self.init_rounds < 0:
            raise ValueError("crop_scale >= 1, batch_size >= 1, init_rounds >= 0 required")
        if not 0 < self.cover_weight <= 1 or self.keypoint_weight < 0:
            raise ValueError("cover_weight must be in (0, 1], keypoint_weight >= 0")
        if self.soft_iou_form not in ("tanimoto", "blade"):
            raise ValueError(f"unknown soft_iou_form {self.soft_iou_form!r}")
        if self.share_focal_band < 1 or self.share_max_loss < 0:
            raise ValueError("share_focal_band >= 1 and share_max_loss >= 0 required")
        if self.backend not in ("auto", "torch", "nvdiffrast"):
            raise ValueError(f"unknown backend {self.backend!r}")


@dataclass
class CameraSolution:
    """Per-person results (B = number of persons), on CPU.

    - ``focal_px`` (B,) float64 px; ``transl`` (B, 3) float64 m, pelvis in the camera frame.
    - ``mask_iou`` (B,) hard IoU of the final mesh vs the mask at full resolution.
    - ``iterations`` (B,) long, descent steps run; ``final_loss`` (B,) ``1 − soft IoU`` of the
      best iterate in the last stage (plus the Tz prior term when refining Tz).
    - ``reject_reasons``: per person None or a reason (``empty_mask``, ``small_mask``,
      ``behind_camera``, ``nan``, ``no_overlap``). Rejected persons carry NaN results.
    - ``fit_iou`` (B,) float64 or None: the solve's own objective as a score, ``1 −
      fit_objective`` at full resolution (the IoU with uncovered mask weighted
      ``cover_weight``, minus ``keypoint_weight`` × the keypoint term); None where it is the
      symmetric ``mask_iou`` (no ``cover_weight``, no keypoints). Read it as
      :attr:`objective_iou`: what the scene passes and the probes compare.
    - ``solo_focal_px``, ``solo_iou`` (B,) float64 or None: where the image's shared camera
      (``scene.share_camera``) replaced a person's own, the focal length (px) and the
      ``objective_iou`` of the person's own solve (the evidence the accept rule weighs), NaN
      elsewhere; None where no camera was shared.
    """

    focal_px: torch.Tensor
    transl: torch.Tensor
    mask_iou: torch.Tensor
    iterations: torch.Tensor
    final_loss: torch.Tensor
    reject_reasons: list[str | None] = field(default_factory=list)
    fit_iou: torch.Tensor | None = None
    solo_focal_px: torch.Tensor | None = None
    solo_iou: torch.Tensor | None = None

    @property
    def objective_iou(self) -> torch.Tensor:
        """(B,) float64: ``fit_iou`` where the solve had its own objective, else ``mask_iou``."""
        return self.mask_iou if self.fit_iou is None else self.fit_iou

    def solo(self, name: str) -> torch.Tensor:
        """(B,) float64 ``solo_focal_px`` or ``solo_iou`` (``name``), NaN where none."""
        value = getattr(self, name)
        return torch.full((self.focal_px.shape[0],), float("nan"), dtype=torch.float64) if value is None else value

    @classmethod
    def cat(cls, sols: list["CameraSolution"]) -> "CameraSolution":
        """The persons of several solutions, in order."""
        fit = None if all(s.fit_iou is None for s in sols) else torch.cat([s.objective_iou for s in sols])
        shared = any(s.solo_focal_px is not None for s in sols)
        return cls(focal_px=torch.cat([s.focal_px for s in sols]), transl=torch.cat([s.transl for s in sols]),
                   mask_iou=torch.cat([s.mask_iou for s in sols]), iterations=torch.cat([s.iterations for s in sols]),
                   final_loss=torch.cat([s.final_loss for s in sols]),
                   reject_reasons=[r for s in sols for r in s.reject_reasons], fit_iou=fit,
                   solo_focal_px=torch.cat([s.solo("solo_focal_px") for s in sols]) if shared else None,
                   solo_iou=torch.cat([s.solo("solo_iou") for s in sols]) if shared else None)

    def take(self, rows: list[int]) -> "CameraSolution":
        """The persons ``rows`` (indices into this solution), in that order."""
        return CameraSolution(focal_px=self.focal_px[rows], transl=self.transl[rows], mask_iou=self.mask_iou[rows],
                              iterations=self.iterations[rows], final_loss=self.final_loss[rows],
                              reject_reasons=[self.reject_reasons[r] for r in rows],
                              fit_iou=None if self.fit_iou is None else self.fit_iou[rows],
                              solo_focal_px=None if self.solo_focal_px is None else self.solo_focal_px[rows],
                              solo_iou=None if self.solo_iou is None else self.solo_iou[rows])
