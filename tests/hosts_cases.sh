#!/usr/bin/env bash
# Tensor parallelism across emulated hosts (scripts/hosts.sh: network
# namespaces with their own addresses and hostnames, TCP only, launched by
# mpirun --hostfile through a launch agent). Exit 77 ("skipped") where
# namespaces cannot be made (not root).
# usage: hosts_cases.sh CASE BUILD_DIR
#   golden-N  the golden cases (logits at every position, greedy text) at N
#             hosts equal one rank, and the all-reduce is the network's (mpi)
#   kill      rank 1's process on host 2 killed mid-run: the job ends in
#             < 10 s, and the output names rank 1
#   linkdown  host 2's link taken down mid-run (--comm-timeout 3): the job
#             ends within the watchdog's time naming rank 1
set -u
case=$1 build=$(cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
hosts=$here/../scripts/hosts.sh
# Each case its own namespaces and network, so that cases can run at once.
export TPI_HOSTS_PREFIX=tpit${case//[^0-9a-z]/}
export TPI_HOSTS_NET=10.231.$((100 + $(printf '%s' "$case" | cksum | cut -d' ' -f1) % 100))
export TPI_HOSTS_DIR=$(mktemp -d)/hosts
export OMP_NUM_THREADS=1 TPI_SHARED=${TPI_SHARED:-$here/../../shared}
tmp=$(mktemp -d)
job=""
cleanup() {
    [ -n "$job" ] && kill -9 "$job" 2>/dev/null
    bash "$hosts" down
    rm -rf "$tmp" "$(dirname "$TPI_HOSTS_DIR")"
}
trap cleanup EXIT
trap "exit 130" INT TERM
failed=0
fail() { echo "FAIL: $*"; failed=1; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }

bash "$hosts" up 2 >/dev/null 2>"$tmp/up.err"
rc=$?
[ "$rc" -eq 77 ] && { echo "skipped: $(cat "$tmp/up.err")"; exit 77; }
[ "$rc" -eq 0 ] || { echo "FAIL: hosts.sh up: $(cat "$tmp/up.err")"; exit 1; }

# mpirun from the head namespace across hosts 1..N, in the background.
launch() { # N OUT CMD...
    local n=$1 out=$2
    shift 2
    bash "$hosts" up "$n" >/dev/null || { fail "hosts.sh up $n"; return 1; }
    bash "$hosts" exec 0 mpirun --allow-run-as-root -np "$n" $(bash "$hosts" flags) -x OMP_NUM_THREADS \
        -x TPI_SHARED "$@" >"$out" 2>&1 &
    job=$!
}

# tp_spin across 2 hosts; waits until both ranks run forward passes and
# sets rank1 to rank 1's pid (as this machine sees it).
spin() { # TIMEOUT_S
    "$build/tpinfer" make-model --shape tiny --out "$tmp/model" >/dev/null 2>&1 || { fail "make-model"; return 1; }
    launch 2 "$tmp/out" "$build/tests/tp_spin" "$tmp" "$tmp/model" "$1"
    for _ in $(seq 300); do [ -s "$tmp/rank1.pid" ] && [ -s "$tmp/rank0.pid" ] && break; sleep 0.1; done
    rank1=$(cat "$tmp/rank1.pid" 2>/dev/null)
    [ -n "$rank1" ] || { fail "tp_spin did not start: $(head -5 "$tmp/out")"; return 1; }
    # rank 1 must be on host 2: its own network namespace
    [ "$(ip netns identify "$rank1")" = "${TPI_HOSTS_PREFIX}2" ] || fail "rank 1 is not in host 2's namespace"
    sleep 0.5
}

ended() { # WHAT START LIMIT REGEX
    local rc secs
    # a job that does not end is killed after a minute (and fails below)
    (sleep 60 && kill -9 "$job") >/dev/null 2>&1 &
    local guard=$!
    wait "$job"
    rc=$? job=""
    secs=$(since "$2")
    kill "$guard" 2>/dev/null
    echo "$1: exit $rc after ${secs}s"
    grep -E "rank|node|signal" "$tmp/out" | sed 's/^/  | /' | head -10
    [ "$rc" -ne 0 ] || fail "exit 0"
    (($(echo "$secs < $3" | bc))) || fail "took ${secs}s (limit $3 s)"
    grep -qE "$4" "$tmp/out" || fail "no message matching '$4'"
}

case "$case" in
golden-*)
    n=${case#golden-}
    launch "$n" "$tmp/out" "$build/tests/test_golden" --expect-allreduce mpi
    wait "$job"
    rc=$? job=""
    grep -E "^(ok: the all-reduce|FAIL|\[  (PASSED|FAILED))" "$tmp/out" | sort | uniq -c
    grep -q "^skipped" "$tmp/out" && { grep "^skipped" "$tmp/out" | head -1; exit 77; }
    [ "$rc" -eq 0 ] || { tail -20 "$tmp/out"; fail "test_golden across $n hosts: exit $rc"; }
    grep -q "ok: the all-reduce in use is mpi" "$tmp/out" || fail "the all-reduce was not checked"
    ;;
kill)
    spin 0 || exit 1
    start=$(now)
    kill -9 "$rank1"
    # mpirun names the rank and its host: "process rank 1 with PID ... on node tpit...2"
    ended kill "$start" 10 "rank 1 .*on node ($TPI_HOSTS_NET.12|${TPI_HOSTS_PREFIX}2) exited on signal 9"
    ;;
linkdown)
    spin 3 || exit 1
    start=$(now)
    ip -n "${TPI_HOSTS_PREFIX}2" link set eth0 down
    # the watchdog (3 s) plus its census (up to 1.5 s) print the message;
    # mpirun's abort then waits on the daemon behind the dead link (TCP
    # keepalive, 3 retries): 4.3-10.5 s in all was measured, so 15 s
    ended linkdown "$start" 15 "tp_spin rank 0: rank 1 did not reach collective #[0-9]+ \([a-z ]+\) within 3 s"
    ;;
*) echo "unknown case $case"; exit 2 ;;
esac
[ "$failed" -eq 0 ] && echo "passed"
exit "$failed"
