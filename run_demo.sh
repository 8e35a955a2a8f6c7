#!/usr/bin/env bash
# The Quick-start main job: segment the demo hammer with the original's three demo cases — one positive click, two
# positive clicks, a positive and a negative click — using decoder.py --mode test, as the original's README does.
# Outputs (.npy, .ply, .png) go to demo/hammer/decoder/, and demo/hammer/decoder/quickstart.png shows all three.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
[ -f demo/hammer/clicks.json ] || bash download_demo_data.sh --bundled
while read -r clicks; do
  echo "--- decoder.py --mode test ... --select_vertices $clicks"
  # shellcheck disable=SC2086  # the clicks are separate arguments
  "$PY" decoder.py --mode test --save_dir ./demo/hammer/decoder/ --model_name decoder_checkpoint.pth \
    --encoder_f_path ./demo/hammer/encoder/pred_f.pth --obj_path ./meshes/hammer.obj --show_spheres 1 \
    --select_vertices $clicks "$@"
done < <("$PY" -m utils.app.demo cases)
"$PY" -m utils.app.demo summary
