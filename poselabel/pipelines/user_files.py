"""Checks, at start-up, of the model files a user passes, before any worker loads them.

- ``--body-model``: read with ``np.load(allow_pickle=False)`` and its arrays checked
  (``models/body/model_file.py``); workers hand smplx a copy of its plain arrays.
- ``--yolo-weights``: a YOLO ``.pt`` is a pickle of Ultralytics classes, which ultralytics
  loads with ``torch.load(weights_only=False)`` (a pickle that can run code). It is first
  loaded here with ultralytics' own ``weights_only=True`` allow-list (``torch_safe_load(...,
  safe_only=True)``): a checkpoint referring to anything outside the known Ultralytics and
  torch classes is refused, nothing of it run. Workers then load it with ultralytics'
  default loader; ``ULTRALYTICS_SAFE_LOAD=1`` (set by the command line and ``pipelines/runners.py``
  for the processes they start) makes those loads safe-only too. On remote workers (Dataflow,
  Flink) the file checked here is the one they load.
- ``--tz-model``, ``--pose-model``: safetensors (never pickle), ``models/nets/checkpoints.py``;
  ``quality.fit_score_model``: JSON.
"""
from __future__ import annotations

import shutil
import tempfile

from poselabel.config import InputError, RunConfig
from poselabel.io import files
from poselabel.models.body.model_file import check_body_model


def check_yolo_weights(path: str | None) -> None:
    """Refuse (``InputError``) a YOLO checkpoint that is not plain Ultralytics/torch classes."""
    if not path:
        return
    from ultralytics.nn.tasks import torch_safe_load  # heavy, and only for --detector ultralytics

    folder = tempfile.mkdtemp(prefix="poselabel-yolo-")
    try:
        local = path if not files.is_remote(path) else files.copy_to_local(path, folder)
        torch_safe_load(local, safe_only=True)
    except (TypeError, ValueError, RuntimeError, OSError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputError(f"--yolo-weights {path}: not loadable with torch.load(weights_only=True) and the "
                         f"Ultralytics allow-list ({reason}); give an Ultralytics .pt checkpoint") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_user_files(config: RunConfig) -> None:
    """The body model and YOLO weights ``config`` names, read safely and checked (``InputError``)."""
    check_body_model(config.body_model)
    if config.detect.backend == "ultralytics":
        check_yolo_weights(config.detect.yolo_weights)

