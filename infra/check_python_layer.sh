#!/usr/bin/env bash
# Rebuild the worker image's Python layer (infra/worker/Dockerfile) without Docker, in a
# throwaway virtual environment, and check that it imports and runs:
#   pip install -r infra/worker/requirements-gpu.txt   (CUDA torch/torchvision pins)
#   pip install .                                       (poselabel, non-editable, as the image)
#   python -c "import poselabel.cli, torch, ..."; poselabel --help
# Not done here (say so when quoting it): the CUDA and Beam base images, and compiling
# nvdiffrast (needs nvcc, a GPU toolchain and its GitHub source).
#
# Usage: bash infra/check_python_layer.sh [VENV_DIR]   (default: a temporary folder, removed)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
DIR=${1:-}
if [ -z "$DIR" ]; then
  DIR=$(mktemp -d)
  trap 'rm -rf "$DIR"' EXIT
fi
"$PY" -m venv "$DIR/venv"
V="$DIR/venv/bin"
"$V/python" -m pip install --quiet --upgrade pip wheel setuptools
# The image's torch index may be unreachable (offline builders): pip then falls back to
# the configured index, which must carry the same pinned versions.
"$V/python" -m pip install --quiet --retries 1 --timeout 10 -r infra/worker/requirements-gpu.txt
"$V/python" -m pip install --quiet .
"$V/python" - <<'PY'
import importlib.metadata as md

import torch

import poselabel.cli  # noqa: F401
from poselabel.models.camera.solver import CameraSolverConfig, solve_camera  # noqa: F401
from poselabel.models.render.silhouette import make_silhouette_rasterizer

pins = {line.split("==")[0]: line.split("==")[1].strip()
        for line in open("infra/worker/requirements-gpu.txt") if "==" in line}
for name, version in pins.items():
    got = md.version(name)
    assert got.split("+")[0] == version, f"{name}: {got} installed, {version} pinned"
print("torch", torch.__version__, "CUDA build", torch.version.cuda, "| cuda available:", torch.cuda.is_available())
render = make_silhouette_rasterizer("auto", torch.device("cpu"))  # torch backend without CUDA
print("silhouette rasteriser (cpu):", getattr(render, "__name__", type(render).__name__))
PY
"$V/poselabel" --help >/dev/null
echo "python layer OK in $DIR/venv (nvdiffrast not built: needs CUDA and its source)"
