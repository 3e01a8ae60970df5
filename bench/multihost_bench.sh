#!/usr/bin/env bash
# Prefill (pp512) and decode (ctx 128) tokens/s of 2 ranks on one machine
# (shared-memory all-reduce; labelled single-RATE, run just before) and
# across 2 emulated hosts (scripts/hosts.sh; cross-RATE-WIRE) at each link
# rate, side by side in every repeat, then the cost model's
# prediction beside each cross-host figure (bench/multihost_model.py).
# Root only. Run from the repository root after building into build/.
# usage: bench/multihost_bench.sh [-m MODEL] [--rates "none 25gbit 10gbit 1gbit"]
#        [--wires "bf16 q8"] [--repeat 2] [--seq 512] [--out DIR]
#   --wires: also at the slowest rate, the all-reduce sent as these encodings
set -u
model=out/llama-1b-bf16 rates="none 25gbit 10gbit 1gbit" wires="bf16 q8" repeat=2 seq=512 out=docs/bench/multihost
while [ $# -gt 0 ]; do
    case "$1" in
    -m) model=$2; shift 2 ;;
    --rates) rates=$2; shift 2 ;;
    --wires) wires=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --seq) seq=$2; shift 2 ;;
    *) sed -n '2,10p' "$0" >&2; exit 2 ;;
    esac
done
here=$(cd "$(dirname "$0")" && pwd)
hosts=$here/../scripts/hosts.sh
bench=$(pwd)/build/tpinfer-bench
[ -x "$bench" ] || { echo "build/tpinfer-bench missing: build first" >&2; exit 1; }
[ -d "$model" ] || { echo "no model at $model (tpinfer make-model --shape llama-1b --out $model)" >&2; exit 1; }
model=$(cd "$model" && pwd)
mkdir -p "$out"
log=$out/runs.log
: >"$log"
export TPI_HOSTS_PREFIX=tpib TPI_HOSTS_NET=10.231.250 TPI_HOSTS_DIR=/tmp/tpinfer-bench-hosts
trap 'bash "$hosts" down' EXIT
trap 'exit 130' INT TERM
# one thread per rank: the two ranks take the machine's two cores in both layouts
args=(worker -m "$model" --batches 1 --seq "$seq" --decode-ctx 128 --reps 1 -t 1)
env=(-x OMP_NUM_THREADS=1 -x GOMP_SPINCOUNT=2000)

run() { # LABEL REP CMD...: the worker's lines, tagged
    local label=$1 rep=$2
    shift 2
    echo "== $label rep $rep $(date -u +%H:%M:%S)" >&2
    "$@" 2>&1 | sed "s/^/$label $rep /" >>"$log"
}

cross() { # RATE WIRE
    bash "$hosts" up 2 $([ "$1" != none ] && echo --rate "$1") >/dev/null || exit 1
    bash "$hosts" exec 0 mpirun --allow-run-as-root -np 2 $(bash "$hosts" flags) "${env[@]}" \
        -x TPI_ALLREDUCE_WIRE="$2" "$bench" "${args[@]}"
}

for rep in $(seq "$repeat"); do
    for rate in $rates; do # one machine just before each cross-host run
        run "single-$rate" "$rep" mpirun --allow-run-as-root -np 2 --bind-to none "${env[@]}" "$bench" "${args[@]}"
        run "cross-$rate-f32" "$rep" cross "$rate" f32
    done
    slow=${rates##* }
    for w in $wires; do
        run "cross-$slow-$w" "$rep" cross "$slow" "$w"
    done
done
bash "$hosts" down
python3 "$here/multihost_model.py" "$log" "$model/config.json" | tee "$out/table.md"
