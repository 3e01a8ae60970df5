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
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

"$tpinfer" make-model --shape tiny --out "$tmp/model0" 2>/dev/null || { echo "FAIL: make-model"; exit 1; }
mkdir -p "$tmp/model1"
cp "$tmp/model0"/*.json "$tmp/model1/"
head -c 5000 "$tmp/model0/model.safetensors" > "$tmp/model1/model.safetensors" # truncated copy

# 1. rank 1's shard is corrupt
start=$(date +%s.%N)
timeout 60 "$mpiexec" -np 2 "$@" "$here/rank_exec.sh" "$tpinfer" logits -m "$tmp/model{rank}" --ids 1,2,3 \
    >"$tmp/out1" 2>&1
rc=$?
secs=$(echo "$(date +%s.%N) - $start" | bc)
echo "corrupt shard on rank 1: exit $rc after ${secs}s"
sed 's/^/  | /' "$tmp/out1" | head -8
[ "$rc" -ne 0 ] || fail "exit code 0"
[ "$rc" -ne 124 ] || fail "job hung"
grep -q "rank 1: .*model1/model.safetensors" "$tmp/out1" || fail "no message naming rank 1 and its file"
(( $(echo "$secs < 10" | bc) )) || fail "took ${secs}s (limit 10s)"

# 2. rank 1 is killed mid-run
timeout 60 "$mpiexec" -np 2 "$@" "$spin" "$tmp" "$tmp/model0" >"$tmp/out2" 2>&1 &
job=$!
for _ in $(seq 100); do [ -s "$tmp/rank1.pid" ] && [ -s "$tmp/rank0.pid" ] && break; sleep 0.1; done
sleep 0.5
start=$(date +%s.%N)
kill -9 "$(cat "$tmp/rank1.pid")"
wait $job
rc=$?
secs=$(echo "$(date +%s.%N) - $start" | bc)
echo "rank 1 killed: exit $rc after ${secs}s"
sed 's/^/  | /' "$tmp/out2" | head -8
[ "$rc" -ne 0 ] || fail "exit code 0"
[ "$rc" -ne 124 ] || fail "job hung"
grep -qiE "rank 1|killed|signal 9" "$tmp/out2" || fail "no message naming the killed rank"
(( $(echo "$secs < 10" | bc) )) || fail "took ${secs}s (limit 10s)"
# The launcher ends the surviving ranks as it exits; allow it a moment to reap them.
for _ in $(seq 30); do kill -0 "$(cat "$tmp/rank0.pid")" 2>/dev/null || break; sleep 0.1; done
kill -0 "$(cat "$tmp/rank0.pid")" 2>/dev/null && { fail "rank 0 still running"; kill -9 "$(cat "$tmp/rank0.pid")"; }

echo "$((2 - (fails > 2 ? 2 : fails))) passed, $fails failed"
[ "$fails" -eq 0 ]
