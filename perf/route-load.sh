#!/usr/bin/env bash
# perf/route-load.sh: how fast routes go in through the API, end to end (issue 12), and the
# Linux kernel's figure for the same routes.
#
#  1. route-gen writes N distinct random routes of mixed lengths (perf::routes, shaped like
#     a BGP table), `route add PREFIX via GW` with the gateway in the connected subnet of a
#     null interface (10.255.0.1/24, or fd00:255::1/64 with --v6), the same routes as
#     `route del PREFIX` in another order, and probe addresses with their longest prefix;
#  2. vswitchd (own socket, state file and --file-prefix, --poll adaptive, ci/lib.sh):
#     `vsctl transaction add.txt` timed from vsctl's start to its exit (vsctl parses the
#     file, one Transaction RPC, the daemon stages, journals (fsync), and installs every
#     route in the dataplane FIB before it answers); then `vsctl route get` of the probes
#     (answered from the dataplane's FIB) must name the expected prefixes, and `vsctl vrf
#     list` must count N more routes. Then `vsctl transaction del.txt`, timed the same way,
#     and the probes must have no route or a connected one;
#  3. the kernel: the same files through `ip -batch` into a network namespace whose veth
#     end has the gateway's subnet (dummy devices do not exist on this kernel), timed, and
#     `ip route show` counted.
#
#   perf/route-load.sh [--routes N] [--v6] [--seed S] [--no-kernel] [--restart]
#                      [--results FILE]
#
# --restart also times a restart of the daemon with the N routes in its state (snapshot
# load, replay, FIB install) before the deletes. Prints one line
#   ROUTE_LOAD routes=N family=v4 add_secs=... per_sec=... del_secs=... del_per_sec=...
# (and KERNEL_LOAD ... for the kernel), and with --results appends them to FILE with the
# command line and the machine's load. Binaries: target/release (VS_BIN_DIR), route-gen
# included: `cargo build --release -p vswitch-control -p perf --bin vswitchd --bin vsctl
# --bin route-gen`. Run as root on an otherwise idle machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=ci/lib.sh
source "$ROOT/ci/lib.sh"

ROUTES=1000000
V6=""
SEED=1
KERNEL=1
RESTART=""
RESULTS=""
ARGS="$*"
while (($#)); do
    case $1 in
        --routes) ROUTES=$2; shift ;;
        --v6) V6=1 ;;
        --seed) SEED=$2; shift ;;
        --no-kernel) KERNEL="" ;;
        --restart) RESTART=1 ;;
        --results) RESULTS=$2; shift ;;
        *) echo "usage: perf/route-load.sh [--routes N] [--v6] [--seed S] [--no-kernel] [--restart] [--results FILE]" >&2
           exit 2 ;;
    esac
    shift
done

GEN_BIN=$VS_BIN_DIR/route-gen
vs_test_init "route-load"
[[ -x "$GEN_BIN" ]] || fail "$GEN_BIN missing: cargo build --release -p perf --bin route-gen"
VS_READY_TIMEOUT=600
if [[ -n "$V6" ]]; then
    FAMILY=v6 ADDR=fd00:255::1/64 COUNT_FIELD=routes_v6
else
    FAMILY=v4 ADDR=10.255.0.1/24 COUNT_FIELD=routes_v4
fi
log "vswitchd $VSWITCHD_BIN ($(git -C "$ROOT" rev-parse --short HEAD)), $ROUTES $FAMILY routes, load average $(cut -d' ' -f1-3 /proc/loadavg)"

now() { date +%s.%N; }
secs() { printf '%.3f' "$(echo "$2 - $1" | bc)"; }
per_sec() { printf '%.0f' "$(echo "$ROUTES / $1" | bc -l)"; }
rss() { awk '/^VmRSS:/ {printf "%d MB", $2 / 1024}' "/proc/$VSWITCHD_PID/status"; }
# Unbounded in time, unlike ci/lib.sh's vsctl (a million routes take longer than 30 s on a
# slow build).
vsctl_long() { "$VSCTL_BIN" --socket "$VS_SOCK" --timeout 3600 "$@"; }

t0=$(now)
"$GEN_BIN" --count "$ROUTES" --seed "$SEED" --out "$VS_TMP" ${V6:+--v6} ||
    fail "route-gen failed"
log "route-gen: $(wc -l <"$VS_TMP/add.txt") routes, $(du -h "$VS_TMP/add.txt" | cut -f1) in $(secs "$t0" "$(now)") s"

# vsctl route get of every probe (one call) must name its expected prefix.
check_probes() {
    local got
    got=$(vsctl_long --json route get "$(cut -d' ' -f1 "$VS_TMP/probes.txt" | paste -sd,)" |
        "$VS_PY" -c '
import json, sys
probes = [l.split() for l in open(sys.argv[1])]
got = json.load(sys.stdin)
if not isinstance(got, list):
    got = [got]
bad = []
for (a, p), r in zip(probes, got):
    have = r.get("prefix")
    if have != p:
        bad.append(f"{a}: {have} instead of {p}")
print("; ".join(bad[:5]) if bad or len(got) != len(probes) else "ok")
' "$VS_TMP/probes.txt")
    [[ "$got" == ok ]] || fail "route get after the adds: $got"
    log "route get of $(wc -l <"$VS_TMP/probes.txt") probes: every answer the expected prefix"
}
# After the deletes, no probe may have a static route: each of the first 20 has no route
# (route get fails: "no route to ...") or a connected or local one.
check_gone() {
    local a out
    for a in $(head -n 20 "$VS_TMP/probes.txt" | cut -d' ' -f1); do
        if out=$(vsctl_long --json route get "$a" 2>&1); then
            [[ $(vs_json 'd["origin"]' <<<"$out") != static ]] ||
                fail "route get $a after the deletes: $out"
        else
            grep -q "no route to $a" <<<"$out" || fail "route get $a after the deletes: $out"
        fi
    done
    log "route get of 20 probes after the deletes: no static route"
}
routes_in_vrf0() {
    vsctl_long --json vrf list | vs_json "first(v['$COUNT_FIELD'] for v in d if v['id'] == 0)"
}

start_vswitchd
run_ok "add up" vsctl iface add up null
run_ok "addr add" vsctl addr add up "$ADDR"
base=$(routes_in_vrf0)
log "RSS before: $(rss)"

t0=$(now)
vsctl_long transaction "$VS_TMP/add.txt" >/dev/null || fail "the add transaction failed"
t1=$(now)
add_secs=$(secs "$t0" "$t1")
log "add: $ROUTES routes in $add_secs s ($(per_sec "$add_secs")/s), RSS $(rss)"
assert_eq "$(routes_in_vrf0)" $((base + ROUTES)) "$FAMILY routes in vrf 0 after the adds"
check_probes

if [[ -n "$RESTART" ]]; then
    stop_vswitchd
    t0=$(now)
    restart_vswitchd
    restart_secs=$(secs "$t0" "$(now)")
    log "restart with $ROUTES routes: ready in $restart_secs s, RSS $(rss)"
    assert_eq "$(routes_in_vrf0)" $((base + ROUTES)) "$FAMILY routes in vrf 0 after the restart"
    check_probes
fi

t0=$(now)
vsctl_long transaction "$VS_TMP/del.txt" >/dev/null || fail "the delete transaction failed"
t1=$(now)
del_secs=$(secs "$t0" "$t1")
log "delete: $ROUTES routes in $del_secs s ($(per_sec "$del_secs")/s), RSS $(rss)"
assert_eq "$(routes_in_vrf0)" "$base" "$FAMILY routes in vrf 0 after the deletes"
check_gone
stop_vswitchd

line="ROUTE_LOAD routes=$ROUTES family=$FAMILY add_secs=$add_secs per_sec=$(per_sec "$add_secs") del_secs=$del_secs del_per_sec=$(per_sec "$del_secs")${RESTART:+ restart_secs=$restart_secs}"
echo "$line"
lines=("$line")

if [[ -n "$KERNEL" ]]; then
    ns=$(vs_ifname k)
    vs_netns_add "$ns"
    ip -n "$ns" link add ka type veth peer name kb || fail "cannot create a veth pair in $ns"
    ip -n "$ns" link set ka up
    ip -n "$ns" link set kb up
    [[ -n "$V6" ]] && ip netns exec "$ns" sysctl -qw net.ipv6.conf.ka.disable_ipv6=0
    ip -n "$ns" addr add "$ADDR" dev ka ${V6:+nodad}
    t0=$(now)
    ip -n "$ns" -batch "$VS_TMP/add.txt" || fail "the kernel refused a route"
    t1=$(now)
    kadd=$(secs "$t0" "$t1")
    n=$(ip -n "$ns" ${V6:+-6} route show proto boot | wc -l)
    assert_eq "$n" "$ROUTES" "routes in the namespace's FIB"
    t0=$(now)
    ip -n "$ns" -batch "$VS_TMP/del.txt" || fail "the kernel refused a route delete"
    t1=$(now)
    kdel=$(secs "$t0" "$t1")
    line="KERNEL_LOAD routes=$ROUTES family=$FAMILY add_secs=$kadd per_sec=$(per_sec "$kadd") del_secs=$kdel del_per_sec=$(per_sec "$kdel")"
    echo "$line"
    lines+=("$line")
fi

if [[ -n "$RESULTS" ]]; then
    {
        echo
        echo "\`perf/route-load.sh $ARGS\` at $(git -C "$ROOT" rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg):"
        echo
        echo '```'
        printf '%s\n' "${lines[@]}"
        echo '```'
    } >>"$RESULTS"
fi
vs_pass
