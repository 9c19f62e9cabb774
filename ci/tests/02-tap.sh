#!/usr/bin/env bash
# Two tap interfaces created by the switch in the host namespace, each then moved into its
# own namespace and addressed there; cross-connected. Ping both ways, a bounded iperf3 TCP
# transfer, and `vsctl --json stats` counts packets on both interfaces. Then the same with
# two workers (net_tap wants as many rx queues as tx queues: one pair per worker, every rx
# queue polled).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "02-tap"

# tap_pair WORKERS SUFFIX NET: a daemon with WORKERS workers, two taps into namespaces at
# NET.1 and NET.2, cross-connected; ping both ways, iperf3, counters.
tap_pair() {
    local workers=$1 sfx=$2 net=$3 nsa nsb stats rx tx
    VS_WORKERS=$workers start_vswitchd
    vs_tap_host "a$sfx" t1 "$net.1/24"
    nsa=$VS_NS
    vs_tap_host "b$sfx" t2 "$net.2/24"
    nsb=$VS_NS
    run_ok "cross-connect t1 t2" vsctl xconnect add t1 t2

    vs_ping "$nsa" "$net.2"
    vs_ping "$nsb" "$net.1"
    vs_iperf "$nsa" "$nsb" "$net.2" 3

    stats=$(vsctl --json stats)
    for name in t1 t2; do
        rx=$(iface_counter "$stats" "$name" rx_packets)
        tx=$(iface_counter "$stats" "$name" tx_packets)
        log "stats ($workers workers) $name: rx_packets=$rx tx_packets=$tx"
        assert_int -gt "$rx" 1000 "vsctl stats: rx_packets of $name"
        assert_int -gt "$tx" 1000 "vsctl stats: tx_packets of $name"
    done
    vsctl stats
    stop_vswitchd
}

tap_pair 1 "" 10.99.2
tap_pair 2 2 10.99.12
vs_pass
