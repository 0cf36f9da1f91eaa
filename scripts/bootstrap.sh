#!/usr/bin/env bash
# Create (or update) the project's virtual environment at .venv and install
# poselabel into it with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
.venv/bin/poselabel --help >/dev/null
echo "poselabel is installed in .venv (.venv/bin/poselabel)"
