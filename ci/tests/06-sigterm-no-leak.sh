#!/usr/bin/env bash
# vs-test: serial
# (serial: two busy-polling testpmds pinned to CPU 0 plus the switch's worker take both
# cores while they run; tests running beside it would miss their own time limits.)
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

# (in_use, in_use_steady, in_use_is: ci/lib.sh.)
# stat_ge IFACE FIELD N: status only: `vsctl --json stats IFACE`[FIELD] >= N.
stat_ge() {
    local doc
    doc=$(vsctl --json stats "$1" 2>/dev/null) || return 1
    vs_json_true 'd[field] >= n' field="$2" n:="$3" <<<"$doc" 2>/dev/null
}
# vh_rx_steady: status only: vh rx_packets the same in 3 reads in a row (0.4 s: the
# txonly testpmd is gone and the switch has taken what it left in the ring).
VH_RX=""
VH_SAME=0
vh_rx_steady() {
    local now
    now=$(iface_stat vh rx_packets) || return 1
    if [[ "$now" == "$VH_RX" ]]; then VH_SAME=$((VH_SAME + 1)); else VH_SAME=1; fi
    VH_RX=$now
    ((VH_SAME >= 3))
}
vsctl mempools
wait_until 15 "mempool in_use steady for 1 s before traffic" in_use_steady
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
wait_until 30 "switch mf tx_packets >= 100000 (testpmd traffic vh -> mf)" \
    stat_ge mf tx_packets 100000
stop_testpmd "$tx_pid"
wait_until 10 "vh rx_packets steady after the sender stopped" vh_rx_steady
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
# (In a subshell so that the failure can say what in_use is instead.)
if ! (wait_until 15 "mempool in_use back to $before" in_use_is "$before") 2>/dev/null; then
    fail "mbuf leak: mempool in_use $(in_use) 15 s after traffic, $before before"
fi
log "mempools in_use after traffic: $(in_use) (same as before)"
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
