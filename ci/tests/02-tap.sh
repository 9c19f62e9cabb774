#!/usr/bin/env bash
# Two tap interfaces created by the switch in the host namespace, each then moved into its
# own namespace and addressed there; cross-connected. Ping both ways, a bounded iperf3 TCP
# transfer, and `vsctl --json stats` counts packets on both interfaces.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "02-tap"
start_vswitchd

vs_tap_host a t1 10.99.2.1/24
nsa=$VS_NS
vs_tap_host b t2 10.99.2.2/24
nsb=$VS_NS
run_ok "cross-connect t1 t2" vsctl xconnect add t1 t2

vs_ping "$nsa" 10.99.2.2
vs_ping "$nsb" 10.99.2.1
vs_iperf "$nsa" "$nsb" 10.99.2.2 3

stats=$(vsctl --json stats)
for name in t1 t2; do
    rx=$(iface_counter "$stats" "$name" rx_packets)
    tx=$(iface_counter "$stats" "$name" tx_packets)
    log "stats $name: rx_packets=$rx tx_packets=$tx"
    assert_int -gt "$rx" 1000 "vsctl stats: rx_packets of $name"
    assert_int -gt "$tx" 1000 "vsctl stats: tx_packets of $name"
done
vsctl stats

stop_vswitchd
vs_pass
