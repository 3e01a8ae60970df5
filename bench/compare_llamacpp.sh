#!/usr/bin/env bash
# llama.cpp and tpinfer on the same GGUF files and cores, back to back:
# llama-bench -p 512 -n 128 -t 1,2, then tpinfer-bench -m FILE (pp512 and
# tg128 at 1x1, 1x2 and 2x1, ranks x threads), then one table with the
# ratios tpinfer / llama.cpp: 1x1 against 1 thread, 1x2 and 2x1 against 2.
# A BF16 file (its name holds "bf16") is run by tpinfer both ways: fp32
# activations (tpinfer's default), and --bf16-activations 1 (the bf16 dot
# product, as llama.cpp computes BF16 files), one table row each.
#
# usage: bench/compare_llamacpp.sh FILE.gguf [FILE.gguf ...]
# environment:
#   LLAMA_BENCH     llama.cpp's llama-bench (default /work/llama.cpp/build/bin/llama-bench)
#   TPINFER_BENCH   default build/tpinfer-bench of this repository
#   REPS            llama-bench repetitions (-r, default 3); tpinfer-bench --reps (default 2)
#   OUT             directory for the raw outputs (default a temporary one, printed)
# Measure on a quiet machine: the script prints the load average before each
# run, and a busy machine moves both engines' figures.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
lb=${LLAMA_BENCH:-/work/llama.cpp/build/bin/llama-bench}
tb=${TPINFER_BENCH:-$here/build/tpinfer-bench}
reps=${REPS:-3}
[ $# -ge 1 ] || { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ -x "$lb" ] || { echo "compare_llamacpp: $lb: not found (set LLAMA_BENCH)" >&2; exit 1; }
[ -x "$tb" ] || { echo "compare_llamacpp: $tb: not built" >&2; exit 1; }
out=${OUT:-$(mktemp -d /tmp/compare-llamacpp-XXXXXX)}
mkdir -p "$out"
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo "CPU: $cpu ($(nproc) cores); raw outputs in $out"
for f in "$@"; do
    [ -s "$f" ] || { echo "compare_llamacpp: $f: not found" >&2; exit 1; }
    b=$(basename "$f" .gguf)
    echo "== $b: load average $(cut -d' ' -f1-3 /proc/loadavg); llama-bench"
    "$lb" -m "$f" -p 512 -n 128 -t 1,2 -r "$reps" -o csv > "$out/$b.llama.csv" 2> "$out/$b.llama.log" ||
        { tail -5 "$out/$b.llama.log" >&2; exit 1; }
    echo "== $b: load average $(cut -d' ' -f1-3 /proc/loadavg); tpinfer-bench"
    "$tb" -m "$f" --reps "${REPS:-2}" > "$out/$b.tpinfer.txt" 2> "$out/$b.tpinfer.log" ||
        { tail -5 "$out/$b.tpinfer.log" >&2; exit 1; }
    case "${b,,}" in
    *bf16*)
        echo "== $b: load average $(cut -d' ' -f1-3 /proc/loadavg); tpinfer-bench --bf16-activations 1"
        "$tb" -m "$f" --reps "${REPS:-2}" --bf16-activations 1 > "$out/$b.tpinfer-bf16act.txt" \
            2> "$out/$b.tpinfer-bf16act.log" || { tail -5 "$out/$b.tpinfer-bf16act.log" >&2; exit 1; } ;;
    esac
done
python3 - "$out" "$@" <<'PY'
import csv, os, sys
out, files = sys.argv[1], sys.argv[2:]
print()
print("| file | test | llama.cpp 1T | tpinfer 1x1 | ratio | llama.cpp 2T | tpinfer 1x2 | ratio | tpinfer 2x1 | ratio |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for f in files:
    b = os.path.basename(f)[:-5] if f.endswith(".gguf") else os.path.basename(f)
    lc = {}
    with open(os.path.join(out, b + ".llama.csv")) as h:
        for r in csv.DictReader(h):
            test = "pp%s" % r["n_prompt"] if int(r["n_gen"]) == 0 else "tg%s" % r["n_gen"]
            lc[(test, int(r["n_threads"]))] = float(r["avg_ts"])
    def cell(x): return "%.2f" % x if x is not None else "-"
    def ratio(a, b): return "%.2fx" % (a / b) if a is not None and b else "-"
    # tpinfer's runs of this file: fp32 activations, then bf16 ones where run
    for suffix, label in ((".tpinfer.txt", b), (".tpinfer-bf16act.txt", b + " (bf16 activations)")):
        path = os.path.join(out, b + suffix)
        if not os.path.exists(path):
            continue
        tp = {}
        with open(path) as h:
            for line in h:
                p = line.split()
                if len(p) == 5 and p[0] == "RESULT":
                    tp[(p[3], int(p[1]), int(p[2]))] = float(p[4])
        for test in ("pp512", "tg128"):
            l1, l2 = lc.get((test, 1)), lc.get((test, 2))
            t11, t12, t21 = tp.get((test, 1, 1)), tp.get((test, 1, 2)), tp.get((test, 2, 1))
            print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (label, test, cell(l1), cell(t11),
                  ratio(t11, l1), cell(l2), cell(t12), ratio(t12, l2), cell(t21), ratio(t21, l2)))
print("\ntpinfer's decode against the read bandwidth (from tpinfer-bench), and the kernels that ran:")
for f in files:
    b = os.path.basename(f)[:-5] if f.endswith(".gguf") else os.path.basename(f)
    for suffix in (".tpinfer.txt", ".tpinfer-bf16act.txt"):
        path = os.path.join(out, b + suffix)
        if not os.path.exists(path):
            continue
        with open(path) as h:
            for line in h:
                if "| tg128 |" in line or line.startswith("kernels:"):
                    print(line.rstrip())
PY
