#!/usr/bin/env bash
# SIGTERM stops vswitchd cleanly (exit 0; its gRPC socket and its vhost-user and memif
# socket files are removed), and traffic leaks no mbuf: once traffic has stopped, every
# mempool's in_use count is back to what it was before the traffic (both read while idle).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "06-sigterm-no-leak"
start_vswitchd

# af_packet pair between two namespaces.
vs_host_pair 10.99.6
nsa=$VS_NSA nsb=$VS_NSB ha=$VS_HA hb=$VS_HB
run_ok "add af_packet a" vsctl iface add a af_packet iface="$ha" >/dev/null
run_ok "add af_packet b" vsctl iface add b af_packet iface="$hb" >/dev/null
run_ok "cross-connect a b" vsctl xconnect add a b >/dev/null

# vhost-user and memif servers: one pair with absolute socket paths (traffic from testpmd),
# one pair with relative names, which go under vswitchd's --run-dir.
vh_sock=$VS_TMP/vh.sock
mf_sock=$VS_TMP/mf.sock
run_ok "add vhost-user vh" vsctl iface add vh vhost-user socket="$vh_sock" mode=server >/dev/null
run_ok "add memif mf" vsctl iface add mf memif socket="$mf_sock" role=server id=0 >/dev/null
run_ok "cross-connect vh mf" vsctl xconnect add vh mf >/dev/null
run_ok "add vhost-user vr" vsctl iface add vr vhost-user socket=vr.sock mode=server >/dev/null
run_ok "add memif mr" vsctl iface add mr memif socket=mr.sock role=server id=0 >/dev/null
sockets=("$VS_SOCK" "$vh_sock" "$mf_sock" "$VS_RUN/vr.sock" "$VS_RUN/mr.sock")
for s in "${sockets[@]}"; do
    wait_until 10 "socket $s" test -S "$s"
done
# Modes from the contract: the gRPC socket 0660, the socket directory 0770.
mode=$(stat -c %a "$VS_SOCK")
assert_eq "$mode" 660 "mode of the gRPC socket $VS_SOCK"
mode=$(stat -c %a "$VS_RUN")
assert_eq "$mode" 770 "mode of the run directory $VS_RUN"

# in_use: {pool name: in_use} of every mempool, as JSON.
in_use() { vsctl --json mempools | vs_json '{p["name"]: p["in_use"] for p in d}'; }
# wait_idle_in_use: read in_use until two reads 1 s apart agree; leaves it in IN_USE.
IN_USE=""
wait_idle_in_use() {
    local one deadline=$((SECONDS + 15))
    one=$(in_use)
    while :; do
        sleep 1
        IN_USE=$(in_use)
        [[ "$IN_USE" == "$one" ]] && return 0
        ((SECONDS < deadline)) || fail "mempool in_use still moving while idle: $IN_USE"
        one=$IN_USE
    done
}
vsctl mempools
wait_idle_in_use
before=$IN_USE
log "mempools in_use before traffic: $before"
[[ "$before" != "{}" ]] || fail "vsctl mempools lists no mempool"

# Traffic: kernel TCP over af_packet, testpmd over vhost-user -> memif.
vs_ping "$nsa" 10.99.6.2
vs_iperf "$nsa" "$nsb" 10.99.6.2 3
start_testpmd rx 0 rxonly "net_memif0,role=client,socket=$mf_sock,socket-abstract=no,id=0"
rx_pid=$TESTPMD_PID
start_testpmd tx 0 txonly "net_virtio_user0,path=$vh_sock"
tx_pid=$TESTPMD_PID
sleep 3
stop_testpmd "$tx_pid"
sleep 1
# Read while the memif peer is still there (this test is about mbufs, not counters).
for name in a b vh mf; do
    rx=$(iface_stat "$name" rx_packets)
    tx=$(iface_stat "$name" tx_packets)
    log "$name: rx_packets=$rx tx_packets=$tx"
done
moved=$(iface_stat mf tx_packets)
assert_int -gt "$moved" 0 "packets forwarded vh -> mf"
stop_testpmd "$rx_pid"

# Back to the start value once idle (a few seconds for anything in flight).
deadline=$((SECONDS + 10))
while :; do
    wait_idle_in_use
    [[ "$IN_USE" == "$before" ]] && break
    ((SECONDS < deadline)) || fail "mbuf leak: mempool in_use $IN_USE after traffic, $before before"
done
log "mempools in_use after traffic: $IN_USE (same as before)"
vsctl mempools

# SIGTERM: exit 0, and every socket file it made is gone.
stop_vswitchd
for s in "${sockets[@]}"; do
    assert_file_absent "$s" "socket left behind after SIGTERM"
done
if [[ -e "$VS_STATE" ]]; then
    log "state file written: $VS_STATE"
else
    log "note: no state file at $VS_STATE after SIGTERM"
fi
vs_pass
