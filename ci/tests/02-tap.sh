#!/usr/bin/env bash
# Two tap interfaces created by the switch in the host namespace, each then moved into its
# own namespace and addressed there; cross-connected. Ping both ways, a bounded iperf3 TCP
# transfer, and `vsctl --json stats` counts packets on both interfaces.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "02-tap"
start_vswitchd

nsa=$(vs_ifname a)
nsb=$(vs_ifname b)
ta=$(vs_ifname ta)
tb=$(vs_ifname tb)
vs_netns_add "$nsa"
vs_netns_add "$nsb"

run_ok "add tap t1" vsctl iface add t1 tap iface="$ta"
run_ok "add tap t2" vsctl iface add t2 tap iface="$tb"
# The taps are the switch's (they vanish when it closes them); register them anyway so a
# failed run that leaves one behind still removes it.
VS_LINKS+=("$ta" "$tb")
wait_until 10 "tap $ta in the host namespace" ip link show dev "$ta"
wait_until 10 "tap $tb in the host namespace" ip link show dev "$tb"
run_ok "cross-connect t1 t2" vsctl xconnect add t1 t2

ip link set dev "$ta" netns "$nsa"
ip link set dev "$tb" netns "$nsb"
vs_ns_iface_up "$nsa" "$ta" 10.99.2.1/24
vs_ns_iface_up "$nsb" "$tb" 10.99.2.2/24

vs_ping "$nsa" 10.99.2.2
vs_ping "$nsb" 10.99.2.1
vs_iperf "$nsa" "$nsb" 10.99.2.2 3

stats=$(vsctl --json stats)
for name in t1 t2; do
    rx=$(vs_json "[i for i in d if i['name'] == '$name'][0]['rx_packets']" <<<"$stats")
    tx=$(vs_json "[i for i in d if i['name'] == '$name'][0]['tx_packets']" <<<"$stats")
    log "stats $name: rx_packets=$rx tx_packets=$tx"
    assert_int -gt "$rx" 1000 "vsctl stats: rx_packets of $name"
    assert_int -gt "$tx" 1000 "vsctl stats: tx_packets of $name"
done
vsctl stats

stop_vswitchd
vs_pass
