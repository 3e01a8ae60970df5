#!/usr/bin/env bash
# `tpinfer-bench --scaling` splits each N x 1 vs 1 x 1 ratio into factors
# (work x balance x outside collectives): they must multiply back to the
# ratio, the balance must follow from the per-rank work it prints, the
# timed communicator must have seen the ranks' collectives, and the CPU time
# other tasks took during the run must be there.
# usage: bench_split.sh TPINFER_BENCH MODEL_DIR
set -u
out=$("$1" -m "$2" --batches 1 --ranks 1,2 --seq 32 --decode-ctx none --reps 1 --scaling --png /dev/null 2>&1)
rc=$?
echo "$out" | grep -A1 "ranks x 1 thread vs 1 x 1"
[ $rc -eq 0 ] || { echo "FAIL: tpinfer-bench exited $rc"; exit 1; }
echo "$out" | awk '
    /ranks x 1 thread vs 1 x 1:/ { ratio = $12 + 0; ranks = $3 + 0 }
    /^  split: / {
        for (i = 1; i < NF; i++) {
            if ($i == "work" && work == "") work = $(i + 1)
            if ($i == "balance") balance = $(i + 1)
            if ($i == "outside") outside = $(i + 1) + 0
        }
        split($0, half, "ms:")
        n = split(half[2], pairs, ",")
        sum = 0; max = 0; coll = 0
        for (i = 1; i <= n; i++) {
            split(pairs[i], f, "+")
            sum += f[1]; coll += f[2]
            if (f[1] + 0 > max) max = f[1] + 0
        }
        product = $2 * work * balance * outside
        others = index($0, "other tasks\047 CPU ms during the run: ") > 0
    }
    function off(a, b) { return (a > b ? a - b : b - a) / b }
    END {
        if (!ratio || !product || n != ranks) { print "FAIL: no ratio, no split line, or not one pair per rank"; exit 1 }
        # the ratio is printed to two decimals: allow its rounding too
        if (product - ratio > 0.02 * ratio + 0.005 || ratio - product > 0.02 * ratio + 0.005) { printf "FAIL: factors multiply to %.3f, ratio %.3f\n", product, ratio; exit 1 }
        if (off(balance, sum / n / max) > 0.02) { printf "FAIL: balance %.3f, per-rank work gives %.3f\n", balance, sum / n / max; exit 1 }
        if (coll <= 0) { print "FAIL: no time in collectives"; exit 1 }
        if (!others) { print "FAIL: no CPU time of other tasks"; exit 1 }
        print "ok"
    }'
