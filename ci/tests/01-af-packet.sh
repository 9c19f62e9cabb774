#!/usr/bin/env bash
# Two namespaces on veth pairs; the host ends are af_packet interfaces of the switch,
# cross-connected. Ping both ways, a bounded iperf3 TCP transfer, and `vsctl --json stats`
# must count packets in both directions on both interfaces.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "01-af-packet"
start_vswitchd

vs_host_pair 10.99.1
nsa=$VS_NSA nsb=$VS_NSB ha=$VS_HA hb=$VS_HB

run_ok "add af_packet a" vsctl iface add a af_packet iface="$ha"
run_ok "add af_packet b" vsctl iface add b af_packet iface="$hb"
run_ok "cross-connect a b" vsctl xconnect add a b
vsctl xconnect list

vs_ping "$nsa" 10.99.1.2
vs_ping "$nsb" 10.99.1.1
vs_iperf "$nsa" "$nsb" 10.99.1.2 3

# Every interface's counters, from the all-interfaces view and per interface.
stats=$(vsctl --json stats)
for name in a b; do
    rx=$(iface_counter "$stats" "$name" rx_packets)
    tx=$(iface_counter "$stats" "$name" tx_packets)
    log "stats $name: rx_packets=$rx tx_packets=$tx"
    # Ten pings each way plus an iperf3 transfer: far more than a thousand frames each way.
    assert_int -gt "$rx" 1000 "vsctl stats: rx_packets of $name"
    assert_int -gt "$tx" 1000 "vsctl stats: tx_packets of $name"
    one=$(iface_stat "$name" rx_packets)
    assert_int -ge "$one" "$rx" "vsctl stats $name: rx_packets (per-interface view)"
done
vsctl stats

stop_vswitchd
vs_pass
