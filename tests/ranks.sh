#!/usr/bin/env bash
# Ranks that stop or are signalled (docs/BAD_INPUT.md, "Ranks"): the job ends
# within the watchdog's time naming the rank, or with 130/143 and one line,
# and leaves no process behind; a rank waiting for input longer than the
# time-out is not a hung rank.
# usage: ranks.sh CASE TPINFER TP_SPIN MPIEXEC [mpi flags...]
#   CASE: stop-chat, stop-shm, stop-mpi, signals or idle
set -u
case=$1 tpinfer=$2 spin=$3 mpiexec=$4
shift 4
tmp=$(mktemp -d)
pids=""
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap "" PIPE # a job that ended early must not kill the script writing to it
failed=0
fail() { echo "FAIL: $*"; failed=1; }
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
between() { (( $(echo "$1 >= $2 && $1 <= $3" | bc) )); }

# A tiny model with a chat template, so `chat` can keep ranks waiting for input.
"$tpinfer" make-model --shape tiny --out "$tmp/model" >/dev/null 2>&1 || { echo "FAIL: make-model"; exit 1; }
cat >"$tmp/model/tokenizer_config.json" <<'EOF'
{"add_bos_token": true, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
 "chat_template": "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}{{ '[INST] ' + m['content'] + ' [/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}{% endfor %}"}
EOF

# The processes of a job: none may be left running (a zombie has ended).
check_gone() {
    local p state
    for _ in $(seq 50); do
        local alive=""
        for p in "$@"; do
            state=$(ps -o stat= -p "$p" 2>/dev/null)
            [ -n "$state" ] && [ "${state:0:1}" != Z ] && alive="$alive $p"
        done
        [ -z "$alive" ] && return 0
        sleep 0.1
    done
    fail "processes left running:$alive"
}

# The lines the job printed besides the launcher's "starting" line: exactly
# one, matching REGEX.
check_one_line() {
    local out=$1 regex=$2 lines
    lines=$(grep -v '^tpinfer: starting ' "$out")
    sed 's/^/  | /' "$out"
    [ "$(printf '%s\n' "$lines" | grep -c .)" -eq 1 ] || fail "expected one line, got the above"
    printf '%s\n' "$lines" | grep -qE "$regex" || fail "no line matching '$regex'"
}

# start_chat TIMEOUT: `tpinfer -n 2 chat` reading the fifo $tmp/in (kept
# open on fd 3); sets launcher, mpirun, rank0, rank1 once the first reply
# is out (both ranks loaded and back waiting for input).
start_chat() {
    rm -f "$tmp/in" "$tmp/out" "$tmp/err"
    mkfifo "$tmp/in"
    "$tpinfer" -n 2 chat -m "$tmp/model" -n 8 --comm-timeout "$1" <"$tmp/in" >"$tmp/out" 2>"$tmp/err" &
    launcher=$!
    exec 3>"$tmp/in"
    echo hello >&3
    for _ in $(seq 300); do [ -s "$tmp/out" ] && break; sleep 0.1; done
    mpirun=$(pgrep -P "$launcher")
    rank0="" rank1=""
    for p in $(pgrep -P "$mpirun"); do
        if tr '\0' '\n' <"/proc/$p/environ" | grep -qx OMPI_COMM_WORLD_RANK=1; then rank1=$p; else rank0=$p; fi
    done
    pids="$launcher $mpirun $rank0 $rank1"
    [ -n "$rank0" ] && [ -n "$rank1" ] || fail "the chat's ranks did not start: $(cat "$tmp/err")"
}

# 1. Rank 1 stops (SIGSTOP) while the chat waits for input; the next line
# makes rank 0 wait for it in a collective: the job ends after the time-out
# (3 s) plus the census (at most 1.5 s), naming rank 1, exit 1.
stop_chat() {
    start_chat 3
    kill -STOP "$rank1"
    local start
    start=$(now)
    echo again >&3
    wait "$launcher"
    local rc=$? secs
    secs=$(since "$start")
    echo "stop-chat: exit $rc after ${secs}s"
    check_one_line "$tmp/err" "^tpinfer chat: rank 1 did not reach collective #[0-9]+ \([a-z ]+\) within 3 s; ending the job$"
    [ "$rc" -eq 1 ] || fail "exit $rc, expected 1"
    between "$secs" 3 5.5 || fail "ended after ${secs}s, expected 3 to 5.5"
    kill -CONT "$rank1" 2>/dev/null
    check_gone $pids
}

# 2. Rank 1 stops in the middle of forward passes (tp_spin): the other rank
# is waiting in a collective of the forward (shared-memory or MPI
# all-reduce, gatherv) and names it after 2 s.
stop_spin() {
    local kind=$1
    shift
    "$mpiexec" -np 2 "$@" "$spin" "$tmp" "$tmp/model" 2 ${kind#shm} >"$tmp/out" 2>&1 &
    local job=$!
    pids=$job
    for _ in $(seq 300); do [ -s "$tmp/rank1.pid" ] && [ -s "$tmp/rank0.pid" ] && break; sleep 0.1; done
    pids="$job $(cat "$tmp/rank0.pid") $(cat "$tmp/rank1.pid")"
    sleep 0.3
    local start
    start=$(now)
    kill -STOP "$(cat "$tmp/rank1.pid")"
    wait "$job"
    local rc=$? secs
    secs=$(since "$start")
    echo "stop-$kind: exit $rc after ${secs}s"
    sed 's/^/  | /' "$tmp/out" | head -5
    grep -qE "^tp_spin rank 0: rank 1 did not reach collective #[0-9]+ \((allreduce|gatherv|allreduce max)\) within 2 s$" \
        "$tmp/out" || fail "no message naming rank 1"
    [ "$rc" -ne 0 ] || fail "exit 0"
    between "$secs" 1.9 4.5 || fail "ended after ${secs}s, expected 2 to 4.5"
    check_gone $pids
}

# 3. SIGTERM and SIGINT to a rank and to the launcher: exit 143 or 130 and
# one line naming where the signal came from.
signals() {
    local sig target code rc regex
    for target in rank1 launcher; do
        for sig in TERM INT; do
            start_chat 30
            code=$((128 + $(kill -l "$sig")))
            kill -"$sig" "${!target}"
            wait "$launcher"
            rc=$?
            echo "SIG$sig to $target: exit $rc"
            if [ "$target" = launcher ]; then
                regex="^tpinfer: SIG$sig from pid [0-9]+ to the launcher; ending the 2 ranks$"
            else
                regex="^tpinfer chat: rank 1: SIG$sig from pid [0-9]+; ending the job$"
            fi
            check_one_line "$tmp/err" "$regex"
            [ "$rc" -eq "$code" ] || fail "exit $rc, expected $code"
            check_gone $pids
        done
    done
}

# 4. A chat whose user takes 5 s over a line, with a 1 s time-out: the
# ranks wait in the idle broadcast, which the watchdog leaves alone.
idle() {
    start_chat 1
    sleep 5
    echo again >&3
    exec 3>&-
    wait "$launcher"
    local rc=$?
    echo "idle: exit $rc"
    sed 's/^/  | /' "$tmp/err" "$tmp/out"
    [ "$rc" -eq 0 ] || fail "exit $rc, expected 0"
    [ "$(grep -vc '^tpinfer: starting ' "$tmp/err")" -eq 0 ] || fail "messages on stderr"
    [ "$(grep -c . "$tmp/out")" -eq 2 ] || fail "expected two replies"
}

case $case in
stop-chat) stop_chat ;;
stop-shm) stop_spin shm "$@" ;;
stop-mpi) stop_spin mpi "$@" ;;
signals) signals ;;
idle) idle ;;
*) echo "unknown case $case"; exit 2 ;;
esac
[ "$failed" -eq 0 ] && echo "passed"
exit "$failed"
