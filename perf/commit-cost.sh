#!/usr/bin/env bash
# perf/commit-cost.sh: what one change costs as the state grows (issue 10), against the real
# daemon, through an independent gRPC client (ci/grpc/fdb_rate.py, grpcio):
#
#  1. one AddFdb call at a time (each journaled and fsync'd before its answer), with 10 static
#     entries in the model, then again with --entries (default 1,000,000): calls per second and
#     microseconds per call, and the daemon's RSS at each point;
#  2. a restart with that state: the time to ready;
#  3. a transaction of --refused (default 1,000,000) AddFdb changes that the MAC table has no
#     room for (a daemon with the default 262,144-slot table): the time to the refusal, its
#     error, that nothing of it was applied, and the daemon's RSS before and after.
#
#   perf/commit-cost.sh [--entries N] [--calls N] [--refused N]
#
# Binaries: target/release (VS_BIN_DIR). No traffic, no namespaces: null interfaces in a
# bridge. Everything it makes (the daemon, its socket, state file and --file-prefix under a
# temp dir) is named from a per-run tag and removed by PID and name at exit (ci/lib.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=ci/lib.sh
source "$ROOT/ci/lib.sh"

ENTRIES=1000000
CALLS=2000
REFUSED=1000000
while (($#)); do
    case $1 in
        --entries) ENTRIES=$2; shift ;;
        --calls) CALLS=$2; shift ;;
        --refused) REFUSED=$2; shift ;;
        *) echo "usage: perf/commit-cost.sh [--entries N] [--calls N] [--refused N]" >&2; exit 2 ;;
    esac
    shift
done

vs_test_init "commit-cost"
VS_READY_TIMEOUT=300
vs_grpc_init
log "vswitchd $VSWITCHD_BIN ($(git -C "$ROOT" rev-parse --short HEAD)), load average $(cut -d' ' -f1-3 /proc/loadavg)"

rss() { awk '/^VmRSS:/ {print $2 / 1024 " MB"}' "/proc/$VSWITCHD_PID/status"; }
rate() {
    grpc_py 1800 fdb_rate.py --gen "$GEN" --target "unix:$VS_SOCK" --bridge br0 --iface a "$@"
}
single() {
    local out per
    out=$(rate --mode single --count "$CALLS" --first "$1" | tail -n 1)
    per=$(sed -n 's/.*per_second=\([0-9]*\).*/\1/p' <<<"$out")
    [[ -n "$per" ]] || fail "no rate from: $out"
    echo "COST statics=$2 calls=$CALLS per_second=$per us_per_call=$((1000000 / per)) rss=$(rss)"
}

# 1. One change with 10, then with ENTRIES entries in the model.
VSWITCHD_EXTRA=(--fdb-size $((ENTRIES * 4)))
start_vswitchd
run_ok "add a" vsctl iface add a null
run_ok "add br0" vsctl bridge add br0
run_ok "attach a" vsctl bridge attach br0 a
rate --mode txn --count 10 --first 0 >/dev/null
single 100000000 10
rate --mode txn --count "$ENTRIES" --batch 100000 --first 200000000 | grep RATE
single 300000000 "$((ENTRIES + CALLS + 10))"

# 2. Restart with that state.
stop_vswitchd
t0=$(date +%s.%N)
restart_vswitchd
echo "RESTART statics=$((ENTRIES + 2 * CALLS + 10)) seconds=$(echo "$(date +%s.%N) - $t0" | bc) rss=$(rss)"
stop_vswitchd

# 3. A refused transaction of REFUSED entries, on the default table.
VSWITCHD_EXTRA=()
start_vswitchd
run_ok "add a" vsctl iface add a null
run_ok "add br0" vsctl bridge add br0
run_ok "attach a" vsctl bridge attach br0 a
echo "RSS before the refused transaction: $(rss)"
rate --mode txn --count "$REFUSED" --first 400000000 --expect-refused
echo "RSS after the refused transaction: $(rss)"
run_ok "add one entry after it" vsctl fdb add br0 02:00:00:00:00:01 a
stop_vswitchd
vs_pass
