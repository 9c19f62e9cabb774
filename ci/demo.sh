#!/usr/bin/env bash
# ci/demo.sh: vswitch in one minute. Builds if needed (ci/setup.sh), starts vswitchd, and
# wires this built-in topology of network namespaces:
#
#   red1 10.99.10.1 --veth-- [af_packet red1] ==xconnect== [af_packet red2] --veth-- red2 10.99.10.2
#   blue1 10.99.20.1 -- [tap blue1 (moved into the namespace)] ==xconnect== [tap blue2] -- blue2 10.99.20.2
#   green1..green4 10.99.30.1-4 --veth-- [af_packet green1..4] == bridge br0 (MAC learning)
#   yellow1 10.99.41.2 --veth-- [af_packet yellow1 10.99.41.1] == router == [af_packet
#     yellow2 10.99.42.1] --veth-- yellow2 10.99.42.2   (two IPv4 subnets, routed; ARP)
#     and fd00:99:41::2 ... [fd00:99:41::1] == router == [fd00:99:42::1] ... fd00:99:42::2
#     (two IPv6 subnets on the same links; Neighbor Discovery)
#   node B: a second vswitchd with green5 10.99.30.5 and green6 10.99.30.6 on its own
#     bridge br0, joined to node A's br0 by a VXLAN tunnel (vni 99) over a veth underlay
#     (node A's af_packet ul 10.99.50.1 <--veth--> node B's ul 10.99.50.2)
#
#   purple1..3 10.99.61-63.2 --veth-- [af_packet purple1..3, routed]: backends of the service
#     10.96.99.10:80; world 203.0.113.2 --veth-- [af_packet up 203.0.113.1, masquerade on]
#
# then pings across both pairs, across the bridge, across the router (IPv4 and IPv6) and
# across the tunnel, runs a short iperf3 over each, puts a network policy (ACLs with
# sessions) on yellow2 and shows that what it permits still works and what it does not is
# stopped, balances connections to a service over three backends and masquerades traffic
# to the outside, shows what vsctl shows (iface list,
# route show, route get, neigh show, tunnel list, fdb show with the remote VTEPs, stats,
# workers, drops, runtime) and removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if ((EUID != 0)); then
    echo "ci/demo.sh: run as root (sudo bash ci/demo.sh)" >&2
    exit 1
fi
step "set-up and build (ci/setup.sh)"
bash ci/setup.sh

# shellcheck source=ci/lib.sh
source ci/lib.sh
vs_test_init "demo"

step "start vswitchd (1 worker, adaptive polling, no hugepages)"
start_vswitchd
SOCK_A=$VS_SOCK PID_A=$VSWITCHD_PID
# Interactive users want `vsctl` without --socket: show them the line to paste.
log "try it yourself while this runs: $VSCTL_BIN --socket $VS_SOCK iface list"

step "red pair: two namespaces on veth pairs, host ends as af_packet interfaces"
vs_host r1 10.99.10.1/24
red1=$VS_NS
vsctl iface add red1 af_packet iface="$VS_HOSTIF"
vs_host r2 10.99.10.2/24
red2=$VS_NS
vsctl iface add red2 af_packet iface="$VS_HOSTIF"
vsctl xconnect add red1 red2

step "blue pair: two taps made by the switch, each moved into its namespace"
vs_tap_host b1 blue1 10.99.20.1/24
blue1=$VS_NS
vs_tap_host b2 blue2 10.99.20.2/24
blue2=$VS_NS
vsctl xconnect add blue1 blue2

step "green bridge: four namespaces on one bridge domain, MACs learned as they talk"
vsctl bridge add br0
for i in 1 2 3 4; do
    vs_host "g$i" "10.99.30.$i/24"
    # 1450: room for the VXLAN header when the bridge crosses to node B (below).
    ip -n "$VS_NS" link set eth0 mtu 1450
    vsctl iface add "green$i" af_packet iface="$VS_HOSTIF"
    vsctl bridge attach br0 "green$i"
done

step "yellow subnets: two namespaces in different IPv4 and IPv6 subnets, routed by the switch"
vs_host y1 10.99.41.2/24
yellow1=$VS_NS
vs_ns_ipv6 "$yellow1" eth0
ip -n "$yellow1" addr add fd00:99:41::2/64 dev eth0 nodad
ip -n "$yellow1" route add default via 10.99.41.1
ip -n "$yellow1" -6 route add default via fd00:99:41::1
vsctl iface add yellow1 af_packet iface="$VS_HOSTIF"
vsctl addr add yellow1 10.99.41.1/24
vsctl addr add yellow1 fd00:99:41::1/64
vs_host y2 10.99.42.2/24
yellow2=$VS_NS
vs_ns_ipv6 "$yellow2" eth0
ip -n "$yellow2" addr add fd00:99:42::2/64 dev eth0 nodad
ip -n "$yellow2" route add default via 10.99.42.1
ip -n "$yellow2" -6 route add default via fd00:99:42::1
vsctl iface add yellow2 af_packet iface="$VS_HOSTIF"
vsctl addr add yellow2 10.99.42.1/24
vsctl addr add yellow2 fd00:99:42::1/64

step "node B: a second vswitchd; green5 and green6 on its br0, joined to node A's br0 by VXLAN"
start_vswitchd
SOCK_B=$VS_SOCK PID_B=$VSWITCHD_PID
VS_SOCK=$SOCK_A
# vsb ARGS...: vsctl against node B (plain vsctl talks to node A).
vsb() { VS_SOCK=$SOCK_B vsctl "$@"; }
log "node B: $VSCTL_BIN --socket $SOCK_B tunnel list"
UA=$(vs_ifname ua)
UB=$(vs_ifname ub)
vs_veth_pair "$UA" "$UB"
vs_host_link_quiet "$UB"
vsctl iface add ul af_packet iface="$UA"
vsctl addr add ul 10.99.50.1/24
vsb iface add ul af_packet iface="$UB"
vsb addr add ul 10.99.50.2/24
vsctl tunnel add vx99 vxlan vni=99 local=10.99.50.1 remote=10.99.50.2
vsctl bridge attach br0 vx99
vsb tunnel add vx99 vxlan vni=99 local=10.99.50.2 remote=10.99.50.1
vsb bridge add br0
vsb bridge attach br0 vx99
for i in 5 6; do
    vs_host "g$i" "10.99.30.$i/24"
    ip -n "$VS_NS" link set eth0 mtu 1450
    vsb iface add "green$i" af_packet iface="$VS_HOSTIF"
    vsb bridge attach br0 "green$i"
done

step "vsctl iface list"
vsctl iface list
step "vsctl xconnect list"
vsctl xconnect list
step "vsctl tunnel list (node A)"
vsctl tunnel list

step "ping across both pairs"
vs_ping "$red1" 10.99.10.2
vs_ping "$red2" 10.99.10.1
vs_ping "$blue1" 10.99.20.2
vs_ping "$blue2" 10.99.20.1

step "ping every pair on the green bridge"
for i in 1 2 3 4; do
    for j in 1 2 3 4; do
        ((i == j)) || vs_ping "$(vs_ifname g$i)" "10.99.30.$j"
    done
done
step "ping across the VXLAN tunnel (green1, green4 on node A <-> green5, green6 on node B)"
vs_ping "$(vs_ifname g1)" 10.99.30.5
vs_ping "$(vs_ifname g4)" 10.99.30.6
vs_ping "$(vs_ifname g6)" 10.99.30.1
step "ping across the router (yellow1 <-> yellow2, and the router's own address)"
vs_ping "$yellow1" 10.99.42.2
vs_ping "$yellow2" 10.99.41.2
vs_ping "$yellow1" 10.99.41.1
step "ping -6 across the router (yellow1 <-> yellow2, and the router's own address)"
vs_ping "$yellow1" fd00:99:42::2
vs_ping "$yellow2" fd00:99:41::2
vs_ping "$yellow1" fd00:99:41::1
ip netns exec "$yellow1" ping -c 1 fd00:99:42::2
step "vsctl route show; vsctl route get (the dataplane's FIB); vsctl neigh show"
vsctl route show
vsctl route get 10.99.42.2,10.99.41.1,10.99.42.77,fd00:99:42::2,fd00:99:41::1,fd00:99:42::77
vsctl neigh show

step "vsctl bridge show br0"
vsctl bridge show br0
step "vsctl fdb show br0 (each host's MAC on its own interface; node B's behind vx99, REMOTE its VTEP)"
vsctl fdb show br0
step "node B: vsctl tunnel list; vsctl fdb show br0 (node A's hosts behind vx99, remote 10.99.50.1)"
vsb tunnel list
vsb fdb show br0

step "iperf3, 3 s over each pair"
vs_iperf "$red1" "$red2" 10.99.10.2 3
vs_iperf "$blue1" "$blue2" 10.99.20.2 3
vs_iperf "$(vs_ifname g1)" "$(vs_ifname g4)" 10.99.30.4 3
vs_iperf "$(vs_ifname g1)" "$(vs_ifname g5)" 10.99.30.5 3
vs_iperf "$yellow1" "$yellow2" 10.99.42.2 3

step "a network policy on yellow2: in, only ping and iperf3 (TCP 5201) from yellow1's subnets;
out, nothing but DNS: yellow2's replies go back through the sessions its permits made"
vsctl acl add yellow2-ingress "permit-reflect proto=icmp src=10.99.41.0/24 icmp-type=8" \
    "permit-reflect proto=tcp src=10.99.41.0/24 dport=5201" \
    "permit-reflect proto=tcp src=fd00:99:41::/64 dport=5201"
vsctl acl add yellow2-egress "permit-reflect proto=udp dport=53"
vsctl acl bind yellow2 yellow2-ingress out
vsctl acl bind yellow2 yellow2-egress in
vs_ping "$yellow1" 10.99.42.2
vs_iperf "$yellow1" "$yellow2" 10.99.42.2 2
vs_iperf "$yellow1" "$yellow2" fd00:99:42::2 2
if ip netns exec "$yellow2" ping -c 2 -W 1 10.99.41.2 >/dev/null 2>&1; then
    fail "yellow2's own ping to yellow1 went out: its egress policy should stop it"
fi
log "yellow2 -> yellow1 ping: blocked by yellow2's egress policy, as it should be"
vsctl acl show yellow2-ingress
vsctl acl show yellow2-egress

step "services: a ClusterIP service 10.96.99.10:80 over three backend namespaces (purple1..3,
routed), and a masqueraded uplink to an outside namespace (world 203.0.113.2)"
WHO=ci/nat/who.py
for i in 1 2 3; do
    vs_host "p$i" "10.99.6$i.2/24"
    ip -n "$VS_NS" route add default via "10.99.6$i.1"
    vsctl iface add "purple$i" af_packet iface="$VS_HOSTIF"
    vsctl addr add "purple$i" "10.99.6$i.1/24"
    ip netns exec "$VS_NS" "$VS_PY" "$WHO" serve "purple$i" 8080 >/dev/null 2>&1 &
    vs_track_pid $!
done
vs_host w 203.0.113.2/24
world=$VS_NS
ip netns exec "$world" "$VS_PY" "$WHO" serve world 9000 >/dev/null 2>&1 &
vs_track_pid $!
vsctl iface add up af_packet iface="$VS_HOSTIF"
vsctl addr add up 203.0.113.1/24
vsctl service add web 10.96.99.10:80 proto=tcp \
    backends=10.99.61.2:8080,10.99.62.2:8080,10.99.63.2:8080
vsctl nat masquerade up on
serving() { ip netns exec "$yellow1" "$VS_PY" "$WHO" many 10.96.99.10 80 1 >/dev/null 2>&1; }
wait_until 20 "the service answers" serving
log "30 connections from yellow1 to 10.96.99.10:80, by backend (and the client address they saw):"
ip netns exec "$yellow1" "$VS_PY" "$WHO" many 10.96.99.10 80 30
outside() { ip netns exec "$yellow1" "$VS_PY" "$WHO" many 203.0.113.2 9000 1 >/dev/null 2>&1; }
wait_until 20 "the outside answers" outside
log "yellow1 -> world 203.0.113.2:9000 (the world sees the uplink's address, 203.0.113.1):"
ip netns exec "$yellow1" "$VS_PY" "$WHO" many 203.0.113.2 9000 3
step "vsctl service show web; vsctl nat show; vsctl sessions (NAT sessions with their translation)"
vsctl service show web
vsctl nat show
vsctl sessions --max 8

step "vsctl stats"
vsctl stats
step "vsctl workers"
vsctl workers
step "vsctl drops"
vsctl drops
step "vsctl runtime (the packet graph: per-stage packets, cycles and drops)"
vsctl runtime

step "stop both vswitchd (SIGTERM) and clean up"
VSWITCHD_PID=$PID_B
stop_vswitchd
VSWITCHD_PID=$PID_A
stop_vswitchd
log "done"
