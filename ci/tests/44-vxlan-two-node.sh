#!/usr/bin/env bash
# VXLAN between two switches, node A and node B (two vswitchd), over a veth underlay:
#  - the underlay: a veth pair uA <-> uB in the host; A's routed af_packet interface ul
#    (10.44.0.1/24) on uA, B's (10.44.0.2/24) on uB;
#  - bridged pods: on each node br0 = {pod, vx42 (vxlan vni=42 toward the other node)} and
#    br1 = {pod, vx43 (vni=43)}, all four pods in 10.42.0.0/24 (a1 .1 and b1 .2 on VNI 42,
#    a2 .3 and b2 .4 on VNI 43): a1 <-> b1 ping and iperf3 TCP both ways; a1's first ARP
#    for b1 is seen on the underlay as a broadcast inside VXLAN vni 42 (head-end
#    replication, captured), and B's br0 learns a1 behind A's VTEP from it; `fdb show br0`
#    on each node lists the other node's pod on vx42 with `remote` = the other VTEP;
#  - VNI 43 works (a2 <-> b2) and stays apart: no ping across VNIs in the one subnet, no
#    MAC of one VNI in the other's bridge on either node;
#  - flannel's layout: per node an addressed VXLAN tunnel with no remotes (vni=1,
#    port=8472, a /32 from 10.244.N.0), the node's pod subnet 10.244.N.0/24 routed on a pod
#    port, `route add 10.244.M.0/24 via 10.244.M.0 dev flannel onlink`, a static
#    neighbour for the other node's flannel address (outside every subnet of the tunnel)
#    and its MAC -> VTEP entry: pods f1 (10.244.0.2) and f2 (10.244.1.2) ping and iperf3
#    across, TTL decremented by each node's router; f1's packets are seen on the underlay
#    as VXLAN to port 8472, vni 1, to B's flannel MAC.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

vs_test_init "44-vxlan-two-node"
start_vswitchd
SOCK_A=$VS_SOCK
start_vswitchd
SOCK_B=$VS_SOCK

# vsa / vsb ARGS...: vsctl against node A / node B.
vsa() { VS_SOCK=$SOCK_A vsctl "$@"; }
vsb() { VS_SOCK=$SOCK_B vsctl "$@"; }

# The underlay: one veth pair, both ends in the host, one per node.
UA=$(vs_ifname ua)
UB=$(vs_ifname ub)
vs_veth_pair "$UA" "$UB"
vs_host_link_quiet "$UB"
run_ok "A: underlay" vsa iface add ul af_packet iface="$UA"
run_ok "A: underlay address" vsa addr add ul 10.44.0.1/24
run_ok "B: underlay" vsb iface add ul af_packet iface="$UB"
run_ok "B: underlay address" vsb addr add ul 10.44.0.2/24

# pod NODE SUFFIX PORT CIDR: a namespace host on node NODE's switch port PORT (af_packet),
# MTU 1450 as a CNI gives pods over VXLAN. Sets POD_NS and POD_MAC.
pod() {
    local node=$1 suffix=$2 port=$3 cidr=$4
    vs_host "$suffix" "$cidr"
    POD_NS=$VS_NS
    ip -n "$POD_NS" link set eth0 mtu 1450
    POD_MAC=$(ns_mac "$POD_NS")
    run_ok "$node: pod port $port" "vs$node" iface add "$port" af_packet iface="$VS_HOSTIF"
}

# Bridged pods, VNI 42 and VNI 43 in one IP subnet.
pod a a1 pa1 10.42.0.1/24
NA1=$POD_NS MA1=$POD_MAC
pod a a2 pa2 10.42.0.3/24
NA2=$POD_NS MA2=$POD_MAC
pod b b1 pb1 10.42.0.2/24
NB1=$POD_NS MB1=$POD_MAC
pod b b2 pb2 10.42.0.4/24
NB2=$POD_NS MB2=$POD_MAC
for n in a b; do
    case $n in
    a) local_ip=10.44.0.1 remote_ip=10.44.0.2 ;;
    b) local_ip=10.44.0.2 remote_ip=10.44.0.1 ;;
    esac
    run_ok "$n: tunnel vx42" "vs$n" tunnel add vx42 vxlan vni=42 local="$local_ip" remote="$remote_ip"
    run_ok "$n: tunnel vx43" "vs$n" tunnel add vx43 vxlan vni=43 local="$local_ip" remote="$remote_ip"
    run_ok "$n: bridge br0" "vs$n" bridge add br0
    run_ok "$n: bridge br1" "vs$n" bridge add br1
    run_ok "$n: attach p${n}1" "vs$n" bridge attach br0 "p${n}1"
    run_ok "$n: attach vx42" "vs$n" bridge attach br0 vx42
    run_ok "$n: attach p${n}2" "vs$n" bridge attach br1 "p${n}2"
    run_ok "$n: attach vx43" "vs$n" bridge attach br1 vx43
done
log "node A: $(vsa tunnel list | tr -s ' \n' ' ')"

# a1's first ARP for b1: a broadcast inside VXLAN vni 42 on the underlay (inner destination
# ff:ff:ff:ff:ff:ff, ethertype ARP, the request for 10.42.0.2), before any unicast. Captured
# as it arrives at B's end: A's af_packet port sends past the qdisc, where a capture on A's
# end would look.
CAP=$VS_TMP/underlay-arp.txt
timeout 30 tcpdump -l -n -i "$UB" -c 1 \
    'udp dst port 4789 and udp[16:4] = 0xffffffff and udp[20:2] = 0xffff and udp[28:2] = 0x0806' \
    >"$CAP" 2>"$VS_TMP/tcpdump.err" &
TCPDUMP_PID=$!
vs_track_pid "$TCPDUMP_PID"
wait_until 10 "tcpdump on $UB listening" grep -q 'listening on' "$VS_TMP/tcpdump.err"
vs_ping "$NA1" 10.42.0.2
vs_wait_exit "$TCPDUMP_PID" 10 || fail "no broadcast ARP inside VXLAN on the underlay"
grep -q 'vni 42.*Request who-has 10.42.0.2 tell 10.42.0.1' <<<"$(tr -s ' \n' ' ' <"$CAP")" ||
    fail "the underlay's first VXLAN broadcast is not a1's ARP for b1 in vni 42: $(cat "$CAP")"
log "a1's ARP crossed by head-end replication: $(tr -s ' \n' ' ' <"$CAP")"
vs_ping "$NB1" 10.42.0.1

# fdb_remote BR SOCK MAC IFACE REMOTE: status only: BR of the node at SOCK has MAC on IFACE
# behind REMOTE.
fdb_remote() {
    local doc
    doc=$(VS_SOCK=$2 vsctl --json fdb show "$1" 2>/dev/null) || return 1
    json_true 'any(mac(e["mac"]) == mac(m) and e["iface"] == i and e.get("remote") == r for e in d)' \
        m="$3" i="$4" r="$5" <<<"$doc"
}
wait_until 10 "A's br0 has b1 on vx42 behind 10.44.0.2" fdb_remote br0 "$SOCK_A" "$MB1" vx42 10.44.0.2
wait_until 10 "B's br0 has a1 on vx42 behind 10.44.0.1" fdb_remote br0 "$SOCK_B" "$MA1" vx42 10.44.0.1
log "A fdb br0: $(vsa --json fdb show br0 | vs_json '", ".join("%s %s %s" % (e["mac"], e["iface"], e.get("remote", "-")) for e in d)')"
log "B fdb br0: $(vsb --json fdb show br0 | vs_json '", ".join("%s %s %s" % (e["mac"], e["iface"], e.get("remote", "-")) for e in d)')"

vs_iperf "$NA1" "$NB1" 10.42.0.2 3
vs_iperf "$NA1" "$NB1" 10.42.0.2 3 -R

# VNI 43 in the same subnet: works, and stays apart from VNI 42.
vs_ping "$NA2" 10.42.0.4
wait_until 10 "A's br1 has b2 on vx43 behind 10.44.0.2" fdb_remote br1 "$SOCK_A" "$MB2" vx43 10.44.0.2
wait_until 10 "B's br1 has a2 on vx43 behind 10.44.0.1" fdb_remote br1 "$SOCK_B" "$MA2" vx43 10.44.0.1
ns_neigh_flush "$NA1" "$NA2" "$NB1" "$NB2"
ping_fails "$NA1" 10.42.0.4
ping_fails "$NB2" 10.42.0.1
# Those ARPs were flooded into their VNI's tunnel (A's VNI 42, B's VNI 43); none may have
# come out of the other VNI on either node.
# fdb_only SOCK BR MAC...: BR holds none but the given MACs.
fdb_only() {
    local doc sock=$1 br=$2
    shift 2
    doc=$(VS_SOCK=$sock vsctl --json fdb show "$br") || fail "fdb show $br failed"
    vs_json_true 'all(mac(e["mac"]) in [mac(x) for x in allowed.split()] for e in d)' \
        allowed="$*" <<<"$doc" || fail "$br learned a MAC of the other VNI: $doc"
}
for s in "$SOCK_A" "$SOCK_B"; do
    fdb_only "$s" br0 "$MA1" "$MB1"
    fdb_only "$s" br1 "$MA2" "$MB2"
done
vs_ping "$NA1" 10.42.0.2
vs_ping "$NA2" 10.42.0.4
log "VNI 43 works and stays apart from VNI 42 in the same subnet"

# flannel: node A's pods are 10.244.0.0/24, node B's 10.244.1.0/24.
for n in a b; do
    case $n in
    a) local_ip=10.44.0.1 i=0 mac=02:f1:00:00:00:0a ;;
    b) local_ip=10.44.0.2 i=1 mac=02:f1:00:00:00:0b ;;
    esac
    run_ok "$n: tunnel flannel" "vs$n" tunnel add flannel vxlan vni=1 local="$local_ip" port=8472 \
        mac="$mac"
    run_ok "$n: flannel address" "vs$n" addr add flannel "10.244.$i.0/32"
    pod "$n" "f$n" "pf$n" "10.244.$i.2/24"
    ip -n "$POD_NS" route add default via "10.244.$i.1"
    run_ok "$n: pod gateway" "vs$n" addr add "pf$n" "10.244.$i.1/24"
done
NFA=$(vs_ifname fa)
NFB=$(vs_ifname fb)
FMAC_A=$(vsa --json iface show flannel | vs_json 'mac(d["mac"])')
FMAC_B=$(vsb --json iface show flannel | vs_json 'mac(d["mac"])')
[[ "$FMAC_A" != "$FMAC_B" ]] || fail "both flannel tunnels have MAC $FMAC_A"
# What flanneld writes on each node for the other one.
run_ok "A: route to B's pods" vsa route add 10.244.1.0/24 via 10.244.1.0 dev flannel onlink
run_ok "A: B's flannel neighbour" vsa neigh add flannel 10.244.1.0 "$FMAC_B"
run_ok "A: B's flannel VTEP" vsa tunnel fdb add flannel "$FMAC_B" remote=10.44.0.2
run_ok "B: route to A's pods" vsb route add 10.244.0.0/24 via 10.244.0.0 dev flannel onlink
run_ok "B: A's flannel neighbour" vsb neigh add flannel 10.244.0.0 "$FMAC_A"
run_ok "B: A's flannel VTEP" vsb tunnel fdb add flannel "$FMAC_A" remote=10.44.0.1
doc=$(vsa --json route get 10.244.1.2)
vs_json_true '[d["prefix"]] + [(h["via"], h["iface"]) for h in d["nexthops"]] == [p, (v, i)]' \
    p=10.244.1.0/24 v=10.244.1.0 i=flannel <<<"$doc" || fail "A's FIB does not send 10.244.1.2 via 10.244.1.0 on flannel: $doc"
log "A: route get 10.244.1.2: $(tr -s ' \n' ' ' <<<"$doc")"
log "A: neigh show flannel: $(vsa neigh show flannel | tr -s ' \n' ' ')"

# f1's packets for f2 leave A as VXLAN to port 8472, VNI 1, inner destination B's flannel
# MAC (captured at B's end of the underlay).
FCAP=$VS_TMP/underlay-flannel.txt
hex=${FMAC_B//:/}
timeout 30 tcpdump -l -n -e -i "$UB" -c 1 -T vxlan \
    "udp dst port 8472 and udp[12:4] = 0x100 and udp[16:4] = 0x${hex:0:8} and udp[20:2] = 0x${hex:8:4}" \
    >"$FCAP" 2>"$VS_TMP/tcpdump-flannel.err" &
TCPDUMP_PID=$!
vs_track_pid "$TCPDUMP_PID"
wait_until 10 "tcpdump on $UB listening" grep -q 'listening on' "$VS_TMP/tcpdump-flannel.err"
vs_ping "$NFA" 10.244.1.2
vs_wait_exit "$TCPDUMP_PID" 10 || fail "no VXLAN to port 8472 vni 1 for B's flannel MAC on the underlay"
log "f1 -> f2 on the underlay: $(tr -s ' \n' ' ' <"$FCAP")"
vs_ping "$NFB" 10.244.0.2
# Routed by both nodes: TTL 64 less 2.
ttl=$(ip netns exec "$NFA" ping -c 1 -W 2 10.244.1.2 | sed -n 's/.*ttl=\([0-9]*\).*/\1/p')
assert_eq "$ttl" 62 "TTL of f2's reply at f1 (routed by both nodes)"
vs_iperf "$NFA" "$NFB" 10.244.1.2 3
vs_iperf "$NFA" "$NFB" 10.244.1.2 3 -R
log "flannel: f1 <-> f2 ping and iperf3 over addressed VXLAN tunnels without remotes"

vs_pass
