#!/usr/bin/env bash
# Emulated hosts on one machine (docs/MULTIHOST.md): N network namespaces,
# each with its own address and its own hostname, joined by veth pairs to a
# bridge in a "head" namespace from which mpirun launches, through a launch
# agent that enters a namespace where Open MPI would ssh. TCP only.
#
# usage: hosts.sh up N [--rate RATE]   make hosts 1..N (RATE: tc tbf rate, e.g. 1gbit)
#        hosts.sh down                  remove everything `up` made
#        hosts.sh exec H CMD...         run CMD on host H (0: the head)
#        hosts.sh mpirun N [--rate RATE] -- MPIRUN-ARGS...
#                                       up, mpirun across the N hosts, down (also on failure)
#        hosts.sh flags                 the mpirun flags of a cross-host launch
# Environment: TPI_HOSTS_PREFIX (default tpih): names of namespaces and links;
#   TPI_HOSTS_NET (default 10.231.7): the /24 used, only inside those namespaces;
#   TPI_HOSTS_DIR (default /tmp/tpinfer-hosts-PREFIX): hostfile and agent.
# Exit status 77: namespaces cannot be made here (not root, no ip netns).
set -u
P=${TPI_HOSTS_PREFIX:-tpih}
NET=${TPI_HOSTS_NET:-10.231.7}
DIR=${TPI_HOSTS_DIR:-/tmp/tpinfer-hosts-$P}
HEAD=${P}0
BR=${P}br

ns_of() { echo "$P$1"; }
addr_of() { echo "$NET.$((10 + $1))"; }

die() { echo "hosts.sh: $*" >&2; exit 1; }

can_make() {
    [ "$(id -u)" = 0 ] || { echo "hosts.sh: skipped: not root, cannot make network namespaces" >&2; return 1; }
    command -v ip >/dev/null && command -v unshare >/dev/null ||
        { echo "hosts.sh: skipped: ip or unshare missing" >&2; return 1; }
    ip netns add "${P}probe" 2>/dev/null || { echo "hosts.sh: skipped: ip netns add fails here" >&2; return 1; }
    ip netns del "${P}probe"
}

# The bucket holds 200 us of traffic at the rate, and at least 128 KB: veth
# hands tbf GSO segments of up to 64 KB, and a bucket near that size stalls
# TCP (a 16 KB bucket gave a third of 1 Gbit/s). Long transfers (a
# prefill's all-reduces) run at the rate, while a message that fits the
# bucket (one decoded token's 8 KB) leaves at once, as it does on a switch
# port that is idle between messages.
shape() { # NS DEV RATE
    local bits
    bits=$(numfmt --from=si "$(echo "${3%bit}" | tr a-z A-Z)" 2>/dev/null) || die "--rate: expected e.g. 1gbit, 10gbit, found $3"
    local burst=$((bits / 8 / 5000))
    [ "$burst" -lt 131072 ] && burst=131072
    ip netns exec "$1" tc qdisc replace dev "$2" root tbf rate "$3" burst "$burst" latency 20ms ||
        die "tc tbf on $1/$2 failed"
}

# A host whose link is gone: mpirun's message to its daemon (end the job)
# would be retransmitted for ~15 minutes (tcp_retries2 = 15) before mpirun
# gives up; 3 retries give up after ~3 s. Per namespace: only ours change.
give_up_fast() {
    ip netns exec "$1" sysctl -qw net.ipv4.tcp_retries2=3 2>/dev/null || true
}

up() {
    local n=$1 rate=${2:-}
    [[ "$n" =~ ^[1-9][0-9]?$ ]] && [ "$n" -le 64 ] || die "up: expected 1 to 64 hosts, found '$n'"
    can_make || exit 77
    down_quiet
    mkdir -p "$DIR"
    ip netns add "$HEAD" || die "ip netns add $HEAD"
    ip -n "$HEAD" link set lo up
    give_up_fast "$HEAD"
    ip -n "$HEAD" link add "$BR" type bridge
    ip -n "$HEAD" addr add "$NET.1/24" dev "$BR"
    ip -n "$HEAD" link set "$BR" up
    : >"$DIR/hostfile"
    : >"$DIR/hosts"
    echo "$NET.1 $HEAD" >>"$DIR/hosts"
    for h in $(seq 1 "$n"); do
        local ns=$(ns_of "$h") a=$(addr_of "$h")
        ip netns add "$ns" || die "ip netns add $ns"
        ip -n "$ns" link set lo up
        give_up_fast "$ns"
        ip link add "${P}p$h" netns "$HEAD" type veth peer name eth0 netns "$ns" || die "veth for $ns"
        ip -n "$HEAD" link set "${P}p$h" master "$BR" up
        ip -n "$ns" addr add "$a/24" dev eth0
        ip -n "$ns" link set eth0 up
        if [ -n "$rate" ]; then # both directions of the host's link
            shape "$ns" eth0 "$rate"
            shape "$HEAD" "${P}p$h" "$rate"
        fi
        echo "$a slots=1" >>"$DIR/hostfile"
        echo "$a $ns" >>"$DIR/hosts"
    done
    write_agent
    echo "$n" >"$DIR/n"
}

# Open MPI runs `AGENT [ssh options] HOST COMMAND...` and expects a shell
# on HOST to run COMMAND; this one maps HOST (address or namespace name) to
# its namespace and gives the command a hostname of its own there (a UTS
# namespace), so that Open MPI sees distinct nodes, as on real machines.
write_agent() {
    cat >"$DIR/agent" <<EOF
#!/bin/sh
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
ns=\$(awk -v h="\$host" '\$1 == h || \$2 == h { print \$2; exit }' "$DIR/hosts")
[ -n "\$ns" ] || { echo "agent: unknown host \$host" >&2; exit 255; }
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$ns && \$*"
EOF
    chmod +x "$DIR/agent"
}

flags() {
    # No shared memory transport (vader) between hosts, only the bridge's
    # network for data and control, and no binding: every emulated host
    # reports the same cores, so mpirun would bind all ranks to core 0.
    echo "--hostfile $DIR/hostfile --mca plm_rsh_agent $DIR/agent --mca btl tcp,self" \
        "--mca btl_tcp_if_include $NET.0/24 --mca oob_tcp_if_include $NET.0/24 --bind-to none" \
        "--mca oob_tcp_keepalive_time 1 --mca oob_tcp_keepalive_intvl 1 --mca oob_tcp_keepalive_probes 3"
}

down_quiet() {
    local ns
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${P}[0-9]+$"); do
        # processes left in a namespace would keep it alive: end them
        local pids=$(ip netns pids "$ns" 2>/dev/null)
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf "$DIR"
}

host_exec() {
    local h=$1
    shift
    [[ "$h" =~ ^[0-9]+$ ]] || die "exec: expected a host number, found '$h'"
    ip netns list | grep -q "^$(ns_of "$h")\b" || die "exec: no host $h (run: hosts.sh up N)"
    exec ip netns exec "$(ns_of "$h")" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$(ns_of "$h")" "$@"
}

# mpirun from the head namespace, as a user on a login node runs it.
run_mpirun() {
    local n=$1 rate=""
    shift
    [ "${1:-}" = --rate ] && { rate=$2; shift 2; }
    [ "${1:-}" = -- ] && shift
    trap down_quiet EXIT
    trap 'exit 130' INT TERM
    up "$n" "$rate"
    ip netns exec "$HEAD" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$HEAD" \
        mpirun --allow-run-as-root -np "$n" $(flags) "$@"
}

cmd=${1:-}
shift || true
case "$cmd" in
up) if [ "${2:-}" = --rate ]; then up "$1" "$3"; else up "${1:-}"; fi ;;
down) down_quiet ;;
exec) host_exec "$@" ;;
flags) flags ;;
mpirun) run_mpirun "$@" ;;
*) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
