#!/usr/bin/env bash
# Jumbo frames through native af_packet ports (the default driver), the namespaces' offloads
# left on: host ends added with mtu=9000 into one bridge, namespace ends at MTU 9000.
# 9000-byte IP packets with DF set answer both ways (each 9014-byte frame longer than a
# ring slot, so read whole from the socket, into one jumbo buffer), counted whole in the
# byte counters; TCP (TSO super-frames of a 9000-byte MTU) completes.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "55-native-jumbo"
export VS_NS_OFFLOADS=default
start_vswitchd
vs_host_pair 10.99.55
nsa=$VS_NSA nsb=$VS_NSB ha=$VS_HA hb=$VS_HB
for ns in "$nsa" "$nsb"; do
    ip -n "$ns" link set eth0 mtu 9000 || fail "cannot set MTU 9000 on eth0 in $ns"
done
run_ok "add a mtu=9000" vsctl iface add a af_packet iface="$ha" mtu=9000 >/dev/null
run_ok "add b mtu=9000" vsctl iface add b af_packet iface="$hb" mtu=9000 >/dev/null
run_ok "bridge add br0" vsctl bridge add br0 >/dev/null
run_ok "attach a" vsctl bridge attach br0 a >/dev/null
run_ok "attach b" vsctl bridge attach br0 b >/dev/null
assert_eq "$(cat "/sys/class/net/$ha/mtu")" 9000 "kernel MTU of $ha"
assert_eq "$(vsctl --json iface show a | vs_json 'd["port_id"]')" 4294967295 "a's DPDK port (none)"

vs_ping "$nsa" 10.99.55.2
rxa0=$(iface_stat a rx_bytes)
for pair in "$nsa 10.99.55.2" "$nsb 10.99.55.1"; do
    read -r ns dst <<<"$pair"
    out=$(ip netns exec "$ns" ping -M do -s 8972 -c 5 -i 0.2 -w 10 "$dst" 2>&1) ||
        fail "ping -M do -s 8972 $ns -> $dst failed: $out"
    grep -q ' 0% packet loss' <<<"$out" || fail "ping -M do -s 8972 $ns -> $dst lost packets: $out"
    grep -q '^8980 bytes from' <<<"$out" || fail "ping $ns -> $dst: no 8980-byte reply: $out"
    log "ping -M do -s 8972 $ns -> $dst: 5/5 replies of 8980 bytes"
done
wait_until 5 "a rx_bytes +10 x 9014" stat_at_least a rx_bytes $((rxa0 + 10 * 9014))
vs_iperf "$nsa" "$nsb" 10.99.55.2 2
vs_iperf "$nsb" "$nsa" 10.99.55.1 2
stop_vswitchd
vs_pass
