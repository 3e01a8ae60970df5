#!/usr/bin/env bash
# The main job on the built-in default: installs what is missing, builds,
# writes the `tiny` model (random weights, so the text is noise) and generates
# from it split over 2 ranks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target tpinfer_cli >/dev/null
[ -f out/tiny/model.safetensors ] || { mkdir -p out; build/tpinfer make-model --shape tiny --out out/tiny; }
build/tpinfer -n 2 generate -m out/tiny -p "Can I help" -n 32 --temp 0.8 --seed 1
