#!/usr/bin/env bash
# Set up the iSeg toolkit: a virtual environment in .venv with the pinned requirements.
# No CUDA toolkit and no compiler are needed; the same environment runs on CPU and on CUDA GPUs.
# Usage: bash install_environment.sh        (re-running it is safe and quick)
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
  echo "error: Python >= 3.9 is needed (found: $("$PYTHON" --version 2>&1))" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --disable-pip-version-check --progress-bar off -r requirements.txt
# interactive.py's page draws with three.js, installed from the npm registry (pinned in web/package-lock.json)
if command -v npm >/dev/null 2>&1; then
  npm ci --prefix web --no-audit --no-fund --loglevel=error
else
  echo "warning: npm not found: interactive.py's page needs it (install Node.js, then rerun this script)" >&2
fi
.venv/bin/python -c 'import torch, torchvision, segment_anything, trimesh; print(f"ready: torch {torch.__version__}, torchvision {torchvision.__version__}, CUDA available: {torch.cuda.is_available()}")'
