#!/usr/bin/env bash
# A rank that cannot load, or that dies mid-run, must end the whole job with
# a non-zero exit and the failing rank's message within 10 seconds.
# usage: failure.sh TPINFER TP_SPIN MPIEXEC [mpi flags...]
set -u
tpinfer=$1 spin=$2 mpiexec=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
fail() { echo "FAIL: $*"; ok=0; }

# check_ended WHAT RC START OUTFILE REGEX: the job that started at START
# ended with RC; it must be non-zero, not a time-out, within 10 s, and its
# output must match REGEX (the failing rank's message).
check_ended() {
    local what=$1 rc=$2 start=$3 out=$4 regex=$5 secs
    secs=$(echo "$(date +%s.%N) - $start" | bc)
    echo "$what: exit $rc after ${secs}s"
    sed 's/^/  | /' "$out" | head -8
    [ "$rc" -ne 0 ] || fail "exit code 0"
    [ "$rc" -ne 124 ] || fail "job hung"
    grep -qE "$regex" "$out" || fail "no message matching '$regex'"
    (( $(echo "$secs < 10" | bc) )) || fail "took ${secs}s (limit 10s)"
}
tally() { if [ "$ok" -eq 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi; }

"$tpinfer" make-model --shape tiny --out "$tmp/model0" 2>/dev/null || { echo "FAIL: make-model"; exit 1; }
mkdir -p "$tmp/model1"
cp "$tmp/model0"/*.json "$tmp/model1/"
head -c 5000 "$tmp/model0/model.safetensors" > "$tmp/model1/model.safetensors" # truncated copy

# 1. rank 1's shard is corrupt
ok=1
start=$(date +%s.%N)
timeout 60 "$mpiexec" -np 2 "$@" "$here/rank_exec.sh" "$tpinfer" logits -m "$tmp/model{rank}" --ids 1,2,3 \
    >"$tmp/out1" 2>&1
check_ended "corrupt shard on rank 1" $? "$start" "$tmp/out1" "rank 1: .*model1/model.safetensors"
tally

# 2. rank 1 is killed mid-run
ok=1
timeout 60 "$mpiexec" -np 2 "$@" "$spin" "$tmp" "$tmp/model0" >"$tmp/out2" 2>&1 &
job=$!
for _ in $(seq 100); do [ -s "$tmp/rank1.pid" ] && [ -s "$tmp/rank0.pid" ] && break; sleep 0.1; done
sleep 0.5
start=$(date +%s.%N)
kill -9 "$(cat "$tmp/rank1.pid")"
wait $job
check_ended "rank 1 killed" $? "$start" "$tmp/out2" "rank 1|[Kk]illed|signal 9"
# The launcher ends the surviving ranks as it exits; allow it a moment to reap them.
for _ in $(seq 30); do kill -0 "$(cat "$tmp/rank0.pid")" 2>/dev/null || break; sleep 0.1; done
kill -0 "$(cat "$tmp/rank0.pid")" 2>/dev/null && { fail "rank 0 still running"; kill -9 "$(cat "$tmp/rank0.pid")"; }
tally

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
