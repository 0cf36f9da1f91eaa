"""Typed, validated configuration of a labelling run.

A run's configuration is a tree of frozen dataclasses. It is built from the
defaults below, then a YAML/JSON file (``--config``), then command-line options,
each later source overriding the earlier; the resolved tree goes verbatim into
the run manifest. Unknown keys and values of the wrong type are errors at
start-up, never silently ignored.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from poselabel.config_errors import ConfigError, InputError, check as _check  # noqa: F401 (re-exported)
from poselabel.quality_config import ACCEPT_RULES, CHECKS_RULE, QualityConfig  # noqa: F401 (re-exported)


def split_patterns(value: str) -> list[str]:
    """``"a/*.tar,b/s-{1,2}.tar"`` -> ``["a/*.tar", "b/s-{1,2}.tar"]``: commas split patterns
    only outside braces (inside they are brace lists)."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(value):
        depth += (c == "{") - (c == "}")
        if c == "," and depth == 0:
            parts.append(value[start:i])
            start = i + 1
    parts.append(value[start:])
    return [p.strip() for p in parts if p.strip()]


@dataclass(frozen=True)
class DecodeConfig:
    max_pixels: int = 64_000_000  # larger images become error rows (decompression bombs)
    # json member keys given a text column meta_<key> in the images table, beyond img2dataset's
    # own (always there, poselabel/tables.py META_COLUMNS); the whole json stays in meta_json
    meta_columns: tuple[str, ...] = ()

    def validate(self) -> None:
        _check(self.max_pixels > 0, "decode.max_pixels must be positive")
        bad = [k for k in self.meta_columns if not k.isidentifier()]
        _check(not bad, f"decode.meta_columns must be names of letters, digits and _ (column meta_<key>): {bad}")


@dataclass(frozen=True)
class DetectConfig:
    backend: str = "mediapipe"  # mediapipe | ultralytics | oracle
    score_threshold: float = 0.6
    nms_iou: float = 0.5
    max_persons: int = 8
    min_box_px: float = 16.0  # boxes smaller than this on their longer side are dropped
    yolo_weights: str | None = None  # path to any YOLO checkpoint (ultralytics backend)
    device: str = "cpu"

    def validate(self) -> None:
        _check(self.backend in ("mediapipe", "ultralytics", "oracle"),
               f"detect.backend must be mediapipe, ultralytics or oracle, not {self.backend!r}")
        _check(0.0 <= self.score_threshold <= 1.0, "detect.score_threshold must be in [0, 1]")
        _check(0.0 < self.nms_iou <= 1.0, "detect.nms_iou must be in (0, 1]")
        _check(self.max_persons >= 1, "detect.max_persons must be >= 1")
        _check(self.backend != "ultralytics" or bool(self.yolo_weights),
               "detect.backend=ultralytics needs detect.yolo_weights (a checkpoint path)")


@dataclass(frozen=True)
class SegmentConfig:
    backend: str = "mediapipe"  # mediapipe | ultralytics | oracle
    threshold: float = 0.2  # BLADE: segmentation_mask > 0.2
    model_complexity: int = 1  # MediaPipe pose model; only 1 (full) ships in the wheel
    crop_scale: float = 1.25  # crop side = scale * longer box side
    # mediapipe: divide the class-level mask among the people by their landmarks (models/blazepose/split.py)
    split: bool = True
    yolo_weights: str | None = None  # ultralytics: a YOLO instance-segmentation (-seg) checkpoint path
    score_threshold: float = 0.25  # ultralytics: instances less confident than this are ignored
    match_iou: float = 0.3  # ultralytics: least IoU of a person's box with the box of the instance it gets
    device: str = "cpu"  # ultralytics: torch device

    def validate(self) -> None:
        _check(self.backend in ("mediapipe", "ultralytics", "oracle"),
               f"segment.backend must be mediapipe, ultralytics or oracle, not {self.backend!r}")
        _check(0.0 < self.threshold < 1.0, "segment.threshold must be in (0, 1)")
        _check(self.model_complexity == 1,
               "segment.model_complexity must be 1: only MediaPipe's full pose model is bundled (lite/heavy need a download)")
        _check(self.crop_scale >= 1.0, "segment.crop_scale must be >= 1")
        _check(self.backend != "ultralytics" or bool(self.yolo_weights),
               "segment.backend=ultralytics needs segment.yolo_weights (a -seg checkpoint path, --segment-weights)")
        _check(0.0 <= self.score_threshold <= 1.0, "segment.score_threshold must be in [0, 1]")
        _check(0.0 < self.match_iou <= 1.0, "segment.match_iou must be in (0, 1]")


@dataclass(frozen=True)
class TzConfig:
    backend: str = "geometric"  # none | geometric (no weights: MediaPipe landmarks) | network | oracle
    model: str | None = None
    # With backend=oracle: the true depth times (1 + N(0, oracle_noise)), drawn per person from its
    # key and index (the same on every run): a depth estimate of known error, for benchmarks.
    oracle_noise: float = 0.0

    @property
    def exact(self) -> bool:
        """Whether the depths are the ground truth's: the oracle without noise."""
        return self.backend == "oracle" and self.oracle_noise == 0

    def validate(self) -> None:
        _check(self.backend in ("none", "geometric", "network", "oracle"),
               f"tz.backend must be none, geometric, network or oracle, not {self.backend!r}")
        _check(0 <= self.oracle_noise < 1, f"tz.oracle_noise must be in [0, 1), not {self.oracle_noise!r}")
        _check(self.backend != "network" or bool(self.model), "tz.backend=network needs tz.model (--tz-model DIR)")


@dataclass(frozen=True)
class PoseConfig:
    backend: str = "geometric"  # none | geometric | network | oracle
    model: str | None = None

    def validate(self) -> None:
        _check(self.backend in ("none", "geometric", "network", "oracle"),
               f"pose.backend must be none, geometric, network or oracle, not {self.backend!r}")
        _check(self.backend != "network" or bool(self.model), "pose.backend=network needs pose.model (--pose-model DIR)")


# (cover_weight, keypoint_weight) by the masks' kind (docs/camera_solver.md, "Clothed masks")
SEGMENTER_MASK_WEIGHTS = (0.1, 2.0)
EXACT_MASK_WEIGHTS = (1.0, 0.0)


@dataclass(frozen=True)
class CameraConfig:
    backend: str = "solver"  # none | solver | oracle
    rasterizer: str = "auto"  # auto | torch | nvdiffrast
    device: str = "cpu"  # torch device of the body model and the solver
    refine_tz: bool = False  # let the solver move Tz around its estimate (log-normal prior)
    tz_prior_sigma: float = 0.05  # relative std of that prior
    iterations_scale: float = 1.0  # multiplies every solver stage's iteration count
    batch_size: int = 64  # persons per solver batch
    # Persons whose fit's mask IoU is below this are solved again with a wider start search
    # (costs about 2x for them; 0 disables). It fixes failed starts, not poor poses.
    retry_below_iou: float = 0.9
    # The people of an image are re-solved where the per-pixel depth order of their fitted
    # meshes changes who hides whom (docs/camera_solver.md); False: pelvis depth only.
    depth_order: bool = True
    # Persons whose mask touches the image border: measure how firmly the mask pins f
    # (diagnostics["focal_margin"], two more descents each; quality.min_focal_margin uses it).
    focal_margin: bool = True
    # Every solved person: does another pelvis depth (Tz x0.8, x1.25, f refitted) explain the
    # mask better? (diagnostics["depth_gain"], two more descents each; quality.max_depth_gain)
    depth_gain: bool = True
    # Real masks cover clothes and hair (docs/camera_solver.md, "Clothed masks"): the weight of
    # mask pixels the body leaves uncovered (1: symmetric IoU; below 1 the mask bounds the body
    # from outside), and of the keypoint term against the detector's 2D landmarks (0: none).
    # None: chosen by the masks (``mask_weights``): a segmenter's masks (clothes, hair) get
    # SEGMENTER_MASK_WEIGHTS, the oracle segmenter's exact body silhouettes EXACT_MASK_WEIGHTS.
    cover_weight: float | None = None
    keypoint_weight: float | None = None
    refine_pose: bool = True  # the pose refined on the landmarks after the solve (models/body/refine.py)
    # The people of an image share one camera (camera.scene.share_camera, docs/camera_solver.md
    # "One camera per image"): their focal lengths, each of which absorbed its own Tz's error,
    # are pooled and every depth is rescaled to the image's. None: on unless the depths are the
    # ground truth's (TzConfig.exact: they carry no error to pool).
    share_camera: bool | None = None

    def shares_camera(self, oracle_tz: bool) -> bool:
        """Whether the solve shares one camera per image: ``share_camera``, else not with
        ground-truth depths (``oracle_tz``: ``TzConfig.exact``) and yes otherwise."""
        return (not oracle_tz) if self.share_camera is None else self.share_camera

    def mask_weights(self, exact_masks: bool) -> tuple[float, float]:
        """``(cover_weight, keypoint_weight)`` of the solve: the given ones, else the defaults of
        the masks' kind (``exact_masks``: body silhouettes, e.g. ``segment.backend=oracle``)."""
        cover, keypoint = EXACT_MASK_WEIGHTS if exact_masks else SEGMENTER_MASK_WEIGHTS
        return (cover if self.cover_weight is None else self.cover_weight,
                keypoint if self.keypoint_weight is None else self.keypoint_weight)

    def validate(self) -> None:
        cover, keypoint = self.mask_weights(False)
        _check(0 < cover <= 1, f"camera.cover_weight must be in (0, 1], not {cover!r}")
        _check(keypoint >= 0, f"camera.keypoint_weight must be >= 0, not {keypoint!r}")
        _check(self.backend in ("none", "solver", "oracle"),
               f"camera.backend must be none, solver or oracle, not {self.backend!r}")
        _check(self.rasterizer in ("auto", "torch", "nvdiffrast"),
               f"camera.rasterizer must be auto, torch or nvdiffrast, not {self.rasterizer!r}")


MODEL_SHARE_MODES = ("none", "process", "machine")


@dataclass(frozen=True)
class ModelsConfig:
    """How the networks (ultralytics detector, Tz and pose networks) are shared on a worker machine.

    ``share``: ``none`` (a copy per DoFn instance), ``process`` (one per worker process, shared by
    its threads) or ``machine`` (one per machine, served by one process to the others through Beam's
    ``MultiProcessShared``); ``poselabel/transforms/shared_models.py``.
    """

    share: str = "process"

    def validate(self) -> None:
        _check(self.share in MODEL_SHARE_MODES,
               f"models.share must be one of {', '.join(MODEL_SHARE_MODES)}, not {self.share!r}")


RUNNERS = ("direct", "dask", "dataflow", "flink")


@dataclass(frozen=True)
class RunConfig:
    # shard patterns (folders, globs, brace ranges and lists, gs://); a string is split at
    # commas outside braces
    input: tuple[str, ...] = field(default=(), metadata={"split": split_patterns})
    output: str = ""
    runner: str = "direct"  # direct | dask | dataflow | flink
    workers: int = 1
    overwrite: bool = False
    retry_failed: bool = False  # also redo done shards whose marker has a read_error, and failed shards
    # Reading (docs/errors.md, "Shards that cannot be read"): a member larger than max_member_mb is
    # not read (its sample is an error row); a shard whose storage fails is tried read_attempts
    # times (read_backoff_s * 4**k s apart; read_timeout_s: one gs:// request's retry deadline),
    # then left not done for the next run; after read_failures_max runs it is "failed" and
    # skipped until --retry-failed.
    max_member_mb: float = 256.0
    read_attempts: int = 3
    read_backoff_s: float = 2.0
    read_timeout_s: float = 20.0
    read_failures_max: int = 3
    # one run writes to an output at a time (OUT/_lease.json, poselabel/io/lease.py): a lease whose
    # heartbeat is older than lease_stale_s is taken over; take_over takes a live one (--take-over)
    lease_stale_s: float = 600.0
    take_over: bool = False
    body_model: str | None = None  # SMPL-X format file; None: the procedural default
    dask_address: str | None = None
    flink_master: str | None = None  # HOST:PORT of the Flink REST endpoint (runner flink)
    progress: bool = True  # a bar on a terminal, else a log line every progress_interval seconds (stderr)
    progress_interval: float = 30.0
    torch_threads: int = 1  # per worker process (fixed: results do not depend on the worker count); 0: cores / workers
    pipeline_args: tuple[str, ...] = ()  # passed through to Beam (e.g. Dataflow options)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    tz: TzConfig = field(default_factory=TzConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)

    def validate(self) -> "RunConfig":
        _check(bool(self.input), "input is required (a path, glob, brace range or gs:// URL)")
        _check(bool(self.output), "output is required (a directory, local or gs://)")
        _check(self.runner in RUNNERS, f"runner must be one of {', '.join(RUNNERS)}, not {self.runner!r}")
        if self.runner == "flink":
            _check(bool(self.flink_master), "runner flink needs flink_master (--flink-master HOST:PORT)")
            # Without one, Beam starts its stock SDK image, which has no poselabel: fail here, not on the cluster.
            _check(any(a.startswith("--environment_type") for a in self.pipeline_args),
                   "runner flink needs the SDK harness environment after '--': --environment_type=DOCKER "
                   "--environment_config=IMAGE (the worker image), or --environment_type=EXTERNAL "
                   "--environment_config=localhost:50000 (worker-pool sidecars); see infra/README.md")
        _check(self.workers >= 1, "workers must be >= 1")
        _check(self.progress_interval > 0, "progress_interval must be > 0 seconds (--log-every)")
        _check(self.max_member_mb > 0, "max_member_mb must be > 0")
        _check(self.read_attempts >= 1 and self.read_failures_max >= 1, "read_attempts and read_failures_max must be >= 1")
        _check(self.read_backoff_s >= 0 and self.read_timeout_s > 0, "read_backoff_s must be >= 0, read_timeout_s > 0")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, annotation: Any, where: str, split=None) -> Any:
    """Coerce a YAML/CLI value to the field's declared type, or raise ConfigError. ``split``:
    how a string becomes a tuple (default: at whitespace)."""
    if isinstance(annotation, str):
        annotation = eval(annotation, {**typing.__dict__, **globals()})  # annotations are strings here
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where, split)
    if origin is tuple:
        if isinstance(value, str):
            value = split(value) if split else value.split()
        elif not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return tuple(str(v) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected a boolean, got {value!r}")
    if annotation in (int, float, str):
        try:
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            return annotation(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected {annotation.__name__}, got {value!r}") from None
    return value


def _merge(obj: Any, updates: dict[str, Any], prefix: str = "") -> Any:
    fields = {f.name: f for f in dataclasses.fields(obj)}
    changes: dict[str, Any] = {}
    for name, value in updates.items():
        where = f"{prefix}{name}"
        if name not in fields:
            raise ConfigError(f"unknown configuration key {where!r} (known: {', '.join(sorted(fields))})")
        current = getattr(obj, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: expected a mapping")
            changes[name] = _merge(current, value, prefix=f"{where}.")
        else:
            changes[name] = _coerce(value, fields[name].type, where, fields[name].metadata.get("split"))
    return dataclasses.replace(obj, **changes)


def parse_dotted(assignments: list[str]) -> dict[str, Any]:
    """``["detect.score_threshold=0.3"]`` -> ``{"detect": {"score_threshold": "0.3"}}``."""
    tree: dict[str, Any] = {}
    for item in assignments:
        dotted, eq, value = item.partition("=")
        parts = dotted.strip().split(".")
        if not eq or not all(parts):
            raise ConfigError(f"--set expects SECTION.KEY=VALUE (e.g. --set detect.score_threshold=0.5), got {item!r}")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is set twice, once as a value")
        try:
            node[parts[-1]] = yaml.safe_load(value) if value else value
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML; quote it "
                              f"(--set '{dotted}=\"...\"')") from None
    return tree


def read_config_file(path: str) -> dict[str, Any]:
    """The mapping in a YAML or JSON file (``.json``: JSON); ``ConfigError`` (one line, with the
    line and column) when it is missing, malformed or not a mapping."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise InputError(f"--config {path}: no such file") from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise ConfigError(f"--config {path}: cannot be read as text ({type(exc).__name__})") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed"
        raise ConfigError(f"--config {path}: not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: the configuration must be a mapping of keys (e.g. 'workers: 2'), "
                          f"not a {type(data).__name__}")
    return data


def load_config(path: str | None, overrides: dict[str, Any] | None = None) -> RunConfig:
    """Defaults, then the file at ``path`` (YAML or JSON), then ``overrides``."""
    config = RunConfig()
    if path:
        config = _merge(config, read_config_file(path))
    if overrides:
        config = _merge(config, overrides)
    return config


def manifest_quality(manifest: dict) -> dict:
    """The ``quality.*`` settings a run's manifest (``manifest.json``) recorded, as they were
    applied: runs from before the fit score (commit 112eae2) were judged by the checks rule, their
    peers voting at ``min_mask_iou``. Fields this version does not know are dropped. Raises
    KeyError without them."""
    known = {f.name for f in dataclasses.fields(QualityConfig)}
    layer = {k: v for k, v in manifest["config"]["quality"].items() if k in known}
    layer.setdefault("accept_rule", "checks")
    layer.setdefault("min_peer_mask_iou", layer.get("min_mask_iou", 0.8))
    return layer
