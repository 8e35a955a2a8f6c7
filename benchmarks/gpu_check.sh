#!/usr/bin/env bash
# The prepared GPU check: one command on a machine with a CUDA GPU, its own Python and torch (no network needed).
#   bash benchmarks/gpu_check.sh              on the GPU machine (sized for 8 minutes); the table goes to
#                                             benchmarks/results/gpu_check.md (and $OUT/gpu_check.md when OUT is set)
#   bash benchmarks/gpu_check.sh --dry-run    the same parts at small sizes on the CPU (CI runs this)
# What that machine's Python lacks travels as wheels in .whl/ (bash benchmarks/gpu_wheels.sh builds it here); they are
# installed into a folder of their own, never into that Python. A part that still lacks something says so and is
# skipped; the others run.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
prefix=$("$PY" -c 'import sys; print(sys.prefix)' 2>/dev/null || true)
if [ "$prefix" != "$PWD/.venv" ] && compgen -G ".whl/*.whl" >/dev/null; then  # the project's venv has them all
  site=${TMPDIR:-/tmp}/iseg_gpu_check_site
  for wheel in .whl/*.whl; do  # one by one: a wheel that does not fit this Python loses only its own package
    "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" "$wheel" 2>/dev/null || echo "warning: $wheel does not install here; what needs it is skipped" >&2
  done
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
exec "$PY" benchmarks/gpu_check.py "$@"
