#!/usr/bin/env bash
# vs-test: serial
# Programming rate: static MAC entries through Transaction and through single AddFdb calls
# (an independent grpcio client), while traffic crosses the same bridge. Prints entries per
# second; fails only if an entry is missing afterwards or forwarding broke, never on speed.
# VS_RATE_TXN / VS_RATE_SINGLE: how many entries (default 100000 and 10000).
# Serial (not run beside other tests): the rates it prints and the ping loss it bounds depend
# on having the CPUs to itself.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "18-fdb-rate"
TXN=${VS_RATE_TXN:-100000}
SINGLE=${VS_RATE_SINGLE:-10000}
vs_grpc_init

VSWITCHD_EXTRA=(--fdb-size 1048576)
start_vswitchd
vs_host_pair 10.99.8
nsa=$VS_NSA ha=$VS_HA hb=$VS_HB
run_ok "add a" vsctl iface add a af_packet iface="$ha"
run_ok "add b" vsctl iface add b af_packet iface="$hb"
run_ok "add br0" vsctl bridge add br0
run_ok "attach a" vsctl bridge attach br0 a
run_ok "attach b" vsctl bridge attach br0 b
vs_ping "$nsa" 10.99.8.2

# Traffic during programming: a ping every 10 ms, counted at the end.
ping_log=$VS_TMP/ping.log
ip netns exec "$nsa" ping -i 0.01 -W 1 10.99.8.2 >"$ping_log" 2>&1 &
ping_pid=$!
vs_track_pid "$ping_pid"

rate() {
    grpc_py 1200 fdb_rate.py --gen "$GEN" \
        --target "unix:$VS_SOCK" --bridge br0 --iface b "$@" | tee -a "$VS_TMP/rates"
}
rate --mode txn --count "$TXN" --first 0
rate --mode txn --count "$TXN" --batch 1000 --first 1000000
rate --mode single --count "$SINGLE" --first 2000000

vs_stop_pid "$ping_pid" INT 5
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' "$ping_log")
got=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$ping_log")
log "ping during programming: $got of $sent replies"
assert_int -gt "$sent" 100 "pings sent during programming"
# A reply may be lost while an entry for the pinging hosts is rewritten; not more than 1%.
assert_int -ge "$((got * 100))" "$((sent * 99))" "ping replies x100 (of $sent sent)"

total=$((TXN * 2 + SINGLE))
static_count() {
    vsctl --json fdb show br0 | vs_json 'sum(1 for e in d if e["static"])'
}
n=$(static_count)
assert_eq "$n" "$total" "static entries in br0"
# Forwarding through the bridge still works with the full table.
vs_ping "$nsa" 10.99.8.2
# And the whole table survives a restart (snapshot + journal).
stop_vswitchd
t0=$(date +%s.%N)
restart_vswitchd
t1=$(date +%s.%N)
ready=$("$VS_PY" -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t1")
log "restart with $total static entries: ready in $ready s"
n=$(static_count)
assert_eq "$n" "$total" "static entries in br0 after the restart"
stop_vswitchd
log "rates:"
cat "$VS_TMP/rates"
vs_pass
