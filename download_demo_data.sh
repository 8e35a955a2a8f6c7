#!/usr/bin/env bash
# Put the hammer demo in place at the original's paths — meshes/hammer.obj, demo/hammer/encoder/pred_f.pth,
# demo/hammer/decoder/decoder_checkpoint.pth — and say which demo it installed:
#   * the authors' files, if their addresses are given (ISEG_DEMO_MESH_URL, ISEG_DEMO_FEATURES_URL,
#     ISEG_DEMO_DECODER_URL: the Google Drive links of the original release's download_demo_data.sh) and all three
#     download within the time-out and load and agree (feature rows = mesh vertices);
#   * otherwise — offline, no addresses, a failed check, or with --bundled — the project's bundled demo (a hammer
#     made by meshes/make_hammer.py, features and decoder trained by demo/make_demo.py with the label teacher).
# Downloads go to a temporary folder first: a half-downloaded file is never left in place.
# Usage: bash download_demo_data.sh [--bundled]
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
BACKUP=demo/bundled   # the bundled files, kept here while the authors' are installed
FILES=("meshes/hammer.obj" "demo/hammer/encoder/pred_f.pth" "demo/hammer/decoder/decoder_checkpoint.pth")
BUNDLED_CASES=$(cat demo/hammer/bundled_cases.txt)

install_bundled() {
  if [ -d "$BACKUP" ]; then
    for file in "${FILES[@]}"; do cp "$BACKUP/$(basename "$file")" "$file.tmp" && mv "$file.tmp" "$file"; done
    rm -rf "$BACKUP"
  fi
  mapfile -t cases <<< "$BUNDLED_CASES"
  "$PY" -m utils.app.demo write-clicks bundled "${cases[@]}"
  echo "installed the bundled demo ($("$PY" -m utils.app.demo check))"
}

fetch() {  # url destination: Google Drive links need the confirmation cookie dance of the original script
  curl -fsSL --max-time "${ISEG_DEMO_TIMEOUT:-60}" -c "$tmp/cookies" -b "$tmp/cookies" -o "$2" "$1"
}

if [ "${1:-}" != "--bundled" ] && [ -n "${ISEG_DEMO_MESH_URL:-}" ] && [ -n "${ISEG_DEMO_FEATURES_URL:-}" ] \
   && [ -n "${ISEG_DEMO_DECODER_URL:-}" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if fetch "$ISEG_DEMO_MESH_URL" "$tmp/hammer.obj" && fetch "$ISEG_DEMO_FEATURES_URL" "$tmp/pred_f.pth" \
     && fetch "$ISEG_DEMO_DECODER_URL" "$tmp/decoder_checkpoint.pth" && summary=$("$PY" -m utils.app.demo check "$tmp"); then
    if [ ! -d "$BACKUP" ]; then
      mkdir -p "$BACKUP"
      for file in "${FILES[@]}"; do cp "$file" "$BACKUP/"; done
    fi
    for file in "${FILES[@]}"; do cp "$tmp/$(basename "$file")" "$file.tmp" && mv "$file.tmp" "$file"; done
    "$PY" -m utils.app.demo write-clicks authors "5141" "5141 61" "5141 -10795"
    echo "installed the authors' demo ($summary); 'bash download_demo_data.sh --bundled' brings back the bundled one"
    exit 0
  fi
  echo "could not fetch and check the authors' demo files; installing the bundled demo instead" >&2
elif [ "${1:-}" != "--bundled" ]; then
  echo "the authors' demo addresses are not set (ISEG_DEMO_*_URL); installing the bundled demo" >&2
fi
install_bundled
