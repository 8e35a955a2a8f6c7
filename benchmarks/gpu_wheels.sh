#!/usr/bin/env bash
# Build .whl/: the packages benchmarks/gpu_check.sh needs beyond what a GPU machine's own Python has (numpy, scipy,
# scikit-image, matplotlib, Pillow, tqdm, pytest, torch, tokenizers, safetensors, huggingface_hub there), as wheels for
# CPython 3.12 on x86-64 Linux, with no dependencies (about 34 MB; .whl/ is git-ignored). Needs pip's access to PyPI.
#   bash benchmarks/gpu_wheels.sh            then carry .whl/ to the GPU machine with the working tree
# Override the target Python with PYTHON_VERSION=3.11 (a machine whose python3 is 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && [ -z "${PYTHON:-}" ] && PY=.venv/bin/python
rm -rf .whl
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
# the versions the install script's requirements.txt resolves to here (pure Python, except embreex and regex)
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --python-version "${PYTHON_VERSION:-3.12}" --implementation cp "${platforms[@]}" -d .whl \
  trimesh==4.12.2 segment-anything==1.0 segment-anything-hq==0.3 transformers==5.24.0 timm==1.0.31 \
  embreex==2.17.7.post7 regex==2026.11.19
du -sh .whl
