#!/usr/bin/env bash
# vs-test: serial
# (serial: two busy-polling testpmds pinned to CPU 0 plus the switch's worker take both
# cores for the whole run; tests running beside it would miss their own time limits.)
# dpdk-testpmd as the real peer on both sides of a cross-connect:
#   testpmd "tx" (virtio-user, txonly) -> switch vhost-user "vh" (server)
#   switch memif "mf" (server) -> testpmd "rx" (memif client, rxonly)
# Packets sent by one testpmd are received by the other, and every count along the way
# agrees within the in-flight window of the two rings involved.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

# In-flight windows (packets that one side has counted and the next has not, when the
# counters are read):
# - VRING: virtio-user's default virtqueue size. testpmd counts a packet as sent once it
#   is in the virtqueue; if it closes the device before the switch dequeues the rest of the
#   ring, at most one ring's worth is counted as sent but never reaches the switch.
# - MEMIF_RING: net_memif's default ring size (log2-ring-size=10). The switch counts a
#   packet as transmitted once it is in the memif ring; at most one ring's worth can still
#   be there, unread by the rxonly testpmd, when that one stops.
# Inside the switch nothing is in flight once both peers are idle, so there the books must
# balance exactly: everything received on vh was either sent on mf or counted as a drop.
VRING=256
MEMIF_RING=1024
# Packets forwarded vh -> mf before the sender is stopped (a few 10 ms of txonly traffic).
MIN_FORWARDED=100000

vs_test_init "03-testpmd-peers"
start_vswitchd

vh_sock=$VS_TMP/vh.sock
mf_sock=$VS_TMP/mf.sock
run_ok "add vhost-user vh" vsctl iface add vh vhost-user socket="$vh_sock" mode=server
run_ok "add memif mf" vsctl iface add mf memif socket="$mf_sock" role=server id=0
run_ok "cross-connect vh mf" vsctl xconnect add vh mf
wait_until 10 "vhost-user socket $vh_sock" test -S "$vh_sock"
wait_until 10 "memif socket $mf_sock" test -S "$mf_sock"

link_up() { [[ "$(iface_stat "$1" link_up)" == true ]]; }
link_down() { [[ "$(iface_stat "$1" link_up)" == false ]]; }
# stat_ge IFACE FIELD N: status only: `vsctl --json stats IFACE`[FIELD] >= N.
stat_ge() {
    local doc
    doc=$(vsctl --json stats "$1" 2>/dev/null) || return 1
    vs_json_true 'd[field] >= n' field="$2" n:="$3" <<<"$doc" 2>/dev/null
}
# books_balance: status only (polled by wait_until, 0.2 s apart): everything the switch
# received on vh was sent on mf or counted as a drop (nothing inside the switch in flight),
# with the same numbers as at the previous poll (nothing arriving either). Leaves
# "vh_rx mf_tx drops" in BOOKS.
BOOKS=""
books_balance() {
    local stats drops now
    local -a b
    stats=$(vsctl --json stats 2>/dev/null) || return 1
    drops=$(vsctl --json drops 2>/dev/null) || return 1
    now=$(vs_json '"%d %d %d" % (first(i["rx_packets"] for i in d if i["name"] == "vh"),
                                 first(i["tx_packets"] for i in d if i["name"] == "mf"),
                                 sum(drops.values()))' drops:="$drops" <<<"$stats") || return 1
    [[ "$now" == "$BOOKS" ]] || {
        BOOKS=$now
        return 1
    }
    read -r -a b <<<"$BOOKS"
    ((b[0] == b[1] + b[2]))
}

# Receiver first, so nothing the sender sends finds the memif ring without a reader.
# Both testpmds share CPU 0; the switch's worker has CPU 1.
start_testpmd rx 0 rxonly "net_memif0,role=client,socket=$mf_sock,socket-abstract=no,id=0"
rx_pid=$TESTPMD_PID
rx_log=$TESTPMD_LOG
wait_until 15 "memif mf link up (rxonly testpmd connected)" link_up mf
start_testpmd tx 0 txonly "net_virtio_user0,path=$vh_sock"
tx_pid=$TESTPMD_PID
tx_log=$TESTPMD_LOG
wait_until 15 "vhost-user vh link up (virtio-user testpmd connected)" link_up vh

# Traffic flows: the switch has forwarded a good number of packets vh -> mf.
wait_until 30 "switch mf tx_packets >= $MIN_FORWARDED (both testpmds running)" \
    stat_ge mf tx_packets $MIN_FORWARDED
log "switch mf tx_packets while both testpmds run: $(iface_stat mf tx_packets)"

# Stop the sender, wait until the switch has drained (its books balance), then read them
# while the receiver is still polling.
stop_testpmd "$tx_pid"
# (In a subshell so that a failure can show the numbers: BOOKS stays in the subshell, so
# the numbers are read again here.)
drained=1
(wait_until 10 "books balance" books_balance) 2>/dev/null || drained=0
books_balance || true
((drained)) || fail "switch not drained 10 s after the sender stopped: vh rx_packets," \
    "mf tx_packets, drops = $BOOKS (must be steady, vh rx_packets == mf tx_packets + drops)"
read -r sw_vh_rx sw_mf_tx sw_drops <<<"$BOOKS"
drops_json=$(vsctl --json drops | vs_json 'd')
# The thing tested: with the sender gone, nothing moves any more (1 s of quiet).
sleep 1
again=$(iface_stat mf tx_packets)
assert_eq "$again" "$sw_mf_tx" "switch mf tx_packets still moving 1 s after the switch drained"
stop_testpmd "$rx_pid"
# Counters never go backwards, also when a peer goes away (read once the switch has seen
# the memif peer leave).
wait_until 10 "memif mf link down after the rxonly testpmd stopped" link_down mf
mf_tx_after=$(iface_stat mf tx_packets)

sent=$(testpmd_fwd_stat "$tx_log" 0 TX-packets)
got=$(testpmd_fwd_stat "$rx_log" 0 RX-packets)
log "testpmd tx sent:        $sent"
log "switch vh rx_packets:   $sw_vh_rx"
log "switch mf tx_packets:   $sw_mf_tx"
log "switch drops:           $sw_drops $drops_json"
log "testpmd rx received:    $got"
vsctl stats

assert_int -gt "$got" 0 "packets received by the rxonly testpmd"
assert_int -ge "$mf_tx_after" "$sw_mf_tx" "switch mf tx_packets after the memif peer disconnected (was $sw_mf_tx; counters must not go backwards)"
# Sender -> switch: the switch never counts more than was sent, nor misses more than a ring.
assert_int -le "$sw_vh_rx" "$sent" "switch vh rx_packets <= testpmd tx TX-packets"
assert_int -le "$((sent - sw_vh_rx))" "$VRING" "testpmd tx TX-packets - switch vh rx_packets (in-flight window $VRING)"
# Inside the switch: exact.
assert_int -eq "$sw_vh_rx" "$((sw_mf_tx + sw_drops))" "switch vh rx_packets == mf tx_packets + drops"
# Switch -> receiver.
assert_int -le "$got" "$sw_mf_tx" "testpmd rx RX-packets <= switch mf tx_packets"
assert_int -le "$((sw_mf_tx - got))" "$MEMIF_RING" "switch mf tx_packets - testpmd rx RX-packets (in-flight window $MEMIF_RING)"

stop_vswitchd
vs_pass
