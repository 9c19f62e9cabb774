#!/usr/bin/env bash
# Calico's IPIP mode on two switches (two vswitchd, nodes A and B):
#  - the underlay: a veth pair between them, A's ul 192.168.46.1/24, B's ul 192.168.46.2/24;
#  - each node a point-to-multipoint tunl0 (`tunnel add tunl0 ipip local=NODE_IP`, no
#    remote) and a route to the other node's pod block through it, Calico's way:
#    `route add 10.46.1.0/24 via 192.168.46.2 dev tunl0 onlink` on A (10.46.0.0/24 via .1
#    on B): the outer destination is the route's next hop;
#  - pods as in 33-l3-calico.sh: /32 addresses, `default via 169.254.1.1`, the switch's
#    pod link without an address, proxy-ARP on, a /32 route to the pod. A: a1 10.46.0.5
#    and a2 10.46.0.6; B: b1 10.46.1.5. Pod MTU 1480 (tunl0's, as Calico sets it), but a2's
#    1500 (a DF packet over tunl0's MTU gets fragmentation needed with it);
#  - a1 <-> b1 ping both ways, iperf3 TCP a1 -> b1 and b1 -> a1 (-R); a2 learns the path
#    MTU 1480 from A and sends 1480-byte DF pings and iperf3 to b1; a1 <-> a2 stay on A
#    (tunl0's counters do not move); 20 pings a1 -> b1 are 20 packets into A's tunl0 and
#    20 out of B's; none dropped as tunnel_no_remote or tunnel_unknown.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "46-ipip-calico"

# The underlay link: both ends in the host, one per switch.
ULA=$(vs_ifname ula)
ULB=$(vs_ifname ulb)
ip link add "$ULA" type veth peer name "$ULB" || fail "cannot create veth $ULA <-> $ULB"
VS_LINKS+=("$ULA")
vs_host_link_quiet "$ULA"
vs_host_link_quiet "$ULB"

start_vswitchd
SOCK_A=$VS_SOCK
start_vswitchd
SOCK_B=$VS_SOCK
va() { VS_SOCK=$SOCK_A vsctl "$@"; }
vb() { VS_SOCK=$SOCK_B vsctl "$@"; }

# node CTL UL NODE_IP OTHER_IP OTHER_BLOCK: the underlay, tunl0 and the route to the other
# node's pods, through `CTL` (va or vb).
node() {
    local ctl=$1 ul=$2 ip=$3 other=$4 block=$5
    run_ok "$ctl underlay" "$ctl" iface add ul af_packet iface="$ul"
    run_ok "$ctl underlay address" "$ctl" addr add ul "$ip/24"
    run_ok "$ctl tunl0" "$ctl" tunnel add tunl0 ipip local="$ip"
    run_ok "$ctl route to $block" "$ctl" route add "$block" via "$other" dev tunl0 onlink
}
node va "$ULA" 192.168.46.1 192.168.46.2 10.46.1.0/24
node vb "$ULB" 192.168.46.2 192.168.46.1 10.46.0.0/24

# pod CTL SUFFIX IFACE IP MTU: a Calico pod on the switch `CTL`. Sets VS_NS.
pod() {
    local ctl=$1 suffix=$2 iface=$3 ip=$4 mtu=$5
    vs_host "$suffix" ""
    ip -n "$VS_NS" link set eth0 mtu "$mtu"
    ip -n "$VS_NS" addr add "$ip/32" dev eth0
    ip -n "$VS_NS" route add 169.254.1.1 dev eth0 scope link
    ip -n "$VS_NS" route add default via 169.254.1.1 dev eth0
    run_ok "pod interface $iface" "$ctl" iface add "$iface" af_packet iface="$VS_HOSTIF"
    run_ok "proxy-ARP on $iface" "$ctl" proxy-arp "$iface" on
    run_ok "/32 route to $ip" "$ctl" route add "$ip/32" dev "$iface"
}
pod va a1 pa1 10.46.0.5 1480
A1=$VS_NS
pod va a2 pa2 10.46.0.6 1500
A2=$VS_NS
pod vb b1 pb1 10.46.1.5 1480
B1=$VS_NS
va tunnel list
va --json route get 10.46.1.5

vs_ping "$A1" 10.46.1.5
vs_ping "$B1" 10.46.0.5
vs_iperf "$A1" "$B1" 10.46.1.5 3
vs_iperf "$A1" "$B1" 10.46.1.5 3 -R
# a2 (MTU 1500): a 1500-byte DF packet does not fit tunl0 (1480): A answers fragmentation
# needed with tunl0's MTU, which a2 takes as its path MTU; 1480 bytes then go through.
ip netns exec "$A2" ping -c 1 -W 2 -M "do" -s 1472 10.46.1.5 >/dev/null 2>&1 || true
out=$(ip netns exec "$A2" ip route get 10.46.1.5)
grep -q 'mtu 1480' <<<"$out" || fail "a2 did not learn the path MTU 1480: $out"
log "a2's path MTU to b1: $(tr -s ' \n' ' ' <<<"$out")"
out=$(ip netns exec "$A2" ping -c 3 -i 0.2 -W 2 -M "do" -s 1452 10.46.1.5 2>&1) || {
    printf '%s\n' "$out" >&2
    fail "a2 -> b1 with 1480-byte DF packets failed"
}
vs_iperf "$A2" "$B1" 10.46.1.5 3

# Pods of one node do not go through the tunnel.
sent=$(VS_SOCK=$SOCK_A iface_stat tunl0 tx_packets)
vs_ping "$A1" 10.46.0.6
assert_eq "$(VS_SOCK=$SOCK_A iface_stat tunl0 tx_packets)" "$sent" "A's tunl0 tx_packets while a1 pings a2"

# What A sends into tunl0 arrives in B's: 20 pings a1 -> b1, each request counted once on
# each side (and each reply the other way).
a_tx=$(VS_SOCK=$SOCK_A iface_stat tunl0 tx_packets)
b_rx=$(VS_SOCK=$SOCK_B iface_stat tunl0 rx_packets)
out=$(ip netns exec "$A1" ping -c 20 -i 0.05 -w 10 10.46.1.5 2>&1) || {
    printf '%s\n' "$out" >&2
    fail "20 pings a1 -> b1 failed"
}
assert_eq "$(VS_SOCK=$SOCK_A iface_stat tunl0 tx_packets)" $((a_tx + 20)) "A's tunl0 tx_packets after 20 pings"
assert_eq "$(VS_SOCK=$SOCK_B iface_stat tunl0 rx_packets)" $((b_rx + 20)) "B's tunl0 rx_packets after 20 pings"
log "20 pings a1 -> b1: 20 more packets sent into A's tunl0, 20 more out of B's"
for s in "$SOCK_A" "$SOCK_B"; do
    for r in tunnel_no_remote tunnel_unknown; do
        assert_eq "$(VS_SOCK=$s drop_count "$r")" 0 "$r drops ($s)"
    done
done
vs_pass
