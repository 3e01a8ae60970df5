#!/usr/bin/env bash
# The benchmark's GGUF files: a checkpoint converted to BF16 by tpinfer, then
# quantized by llama.cpp's own llama-quantize to Q8_0, Q4_K_M and Q4_0, so the
# quantized files are llama.cpp's, byte for byte, and both engines are
# measured on the same files (docs/PERFORMANCE.md, "GGUF files").
#
# usage: bench/make_gguf_files.sh [MODEL_DIR [OUT_DIR]]
#   MODEL_DIR  an HF checkpoint (default /work/out/llama-1b-bf16, written by
#              `tpinfer make-model --shape llama-1b --dtype bf16 --out DIR`)
#   OUT_DIR    where the files go (default: MODEL_DIR's parent); never the repository
# environment:
#   TPINFER         the tpinfer binary (default build/tpinfer beside this script's repo)
#   LLAMA_QUANTIZE  llama.cpp's llama-quantize (default /work/llama.cpp/build/bin/llama-quantize)
#   TYPES           the llama-quantize types (default "Q8_0 Q4_K_M Q4_0")
# Writes OUT_DIR/NAME.gguf (BF16) and OUT_DIR/NAME-<type>.gguf, NAME being
# MODEL_DIR's name less a trailing "-bf16"; a file already there is kept.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-/work/out/llama-1b-bf16}
out=${2:-$(dirname "$model")}
tpinfer=${TPINFER:-$here/build/tpinfer}
quantize=${LLAMA_QUANTIZE:-/work/llama.cpp/build/bin/llama-quantize}
types=${TYPES:-Q8_0 Q4_K_M Q4_0}
[ -x "$tpinfer" ] || { echo "make_gguf_files: $tpinfer: not built (cmake --build build)" >&2; exit 1; }
[ -x "$quantize" ] || { echo "make_gguf_files: $quantize: not found (set LLAMA_QUANTIZE)" >&2; exit 1; }
[ -f "$model/config.json" ] || { echo "make_gguf_files: $model/config.json: missing" >&2; exit 1; }
case "$(cd "$out" && pwd)/" in "$here"/*) echo "make_gguf_files: $out is inside the repository" >&2; exit 1 ;; esac
name=$(basename "$model")
name=${name%-bf16}
bf16=$out/$name-bf16.gguf
if [ ! -s "$bf16" ]; then
    echo "== $tpinfer convert -m $model --type bf16 --out $bf16"
    "$tpinfer" convert -m "$model" --type bf16 --out "$bf16"
fi
for t in $types; do
    lower=$(echo "$t" | tr 'A-Z' 'a-z')
    f=$out/$name-$lower.gguf
    [ -s "$f" ] && { echo "== $f: there"; continue; }
    echo "== $quantize $bf16 $f $t"
    "$quantize" "$bf16" "$f.part" "$t" "$(nproc)" > "$f.log" 2>&1 || { tail -5 "$f.log" >&2; exit 1; }
    mv "$f.part" "$f"
done
ls -l "$bf16" $(for t in $types; do echo "$out/$name-$(echo "$t" | tr 'A-Z' 'a-z').gguf"; done)
