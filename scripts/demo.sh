#!/usr/bin/env bash
# The main job on the built-in default: installs what is missing, builds, and
# generates text split over 2 ranks. With the shared data beside the checkout
# ($TPI_SHARED, default ../shared) the model is stories260K, a real 260K-parameter
# Llama trained on TinyStories; without it, the `tiny` model make-model writes
# (random weights, so its words are noise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target tpinfer_cli >/dev/null
stories=${TPI_SHARED:-../shared}/models/stories260K-hf
if [ -f "$stories/model.safetensors" ] && [ -f "$stories/tokenizer.json" ]; then
    model=$(cd "$stories" && pwd)
    echo "demo: stories260K (a real 260K-parameter Llama) from $model, greedy, split over 2 ranks" >&2
    args=(-n 128)
else
    model=out/tiny
    echo "demo: the random 'tiny' model that make-model writes to $model (no $stories; random weights," \
        "so the words are noise), sampled, split over 2 ranks" >&2
    mkdir -p out
    build/tpinfer make-model --shape tiny --out "$model" >/dev/null
    args=(-n 48 --temp 0.8 --seed 2)
fi
build/tpinfer -n 2 generate -m "$model" -p "Once upon a time" "${args[@]}"
