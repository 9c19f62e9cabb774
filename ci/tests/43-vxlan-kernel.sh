#!/usr/bin/env bash
# VXLAN between the switch and the Linux kernel's vxlan device, the reference VTEP:
#  - the underlay: a Linux bridge in namespace u joins the switch's routed interface ul
#    (10.43.0.1/24, af_packet) and two kernel nodes k1 (10.43.0.2) and k2 (10.43.0.3);
#  - each kernel node has `vxlan id 42 ... remote 10.43.0.1 dstport 4789` addressed in
#    10.43.10.0/24 (k1 .2, k2 .3); the switch has bridge br0 = {pa (pod a, 10.43.10.1),
#    vx42 (vxlan vni=42, remote=10.43.0.2,10.43.0.3)};
#  - ping both ways a <-> k1 and a <-> k2; a's ARP for k2 reaches both kernel nodes (head-end
#    replication: k1's vxlan device receives the broadcast too); iperf3 TCP a -> k1 and
#    k1 -> a (-R), a with its default offloads (TSO: its super-frames are cut into
#    segments before encapsulation);
#  - `vsctl --json fdb show br0` lists k1's and k2's vxlan MACs on vx42 with their remotes;
#  - a second VNI (43: k1's vx43 in 10.43.11.0/24, the switch's br1 = {pb, vx43}) works and
#    stays apart: nothing of VNI 42 reaches k1's VNI 43 device, br1 never learns a VNI 42
#    MAC, br0 never a VNI 43 one;
#  - malformed VXLAN sent by scapy from k2 (a header cut short, the I flag clear, an
#    unknown VNI, a port no tunnel listens on; 5 of each) is dropped under
#    vxlan_short / vxlan_no_i_flag / vxlan_unknown_vni / udp_no_tunnel, exactly, while a
#    keeps pinging k1 without loss.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

vs_test_init "43-vxlan-kernel"
l2_need_scapy
start_vswitchd

# The underlay: namespace u with a Linux bridge; the switch's end HU in the host.
NSU=$(vs_ifname u)
vs_netns_add "$NSU"
HU=$(vs_ifname hu)
ip link add "$HU" type veth peer name sw netns "$NSU" || fail "cannot create veth $HU"
VS_LINKS+=("$HU")
vs_host_link_quiet "$HU"
ip -n "$NSU" link add name ubr type bridge
ip -n "$NSU" link set sw master ubr
ip -n "$NSU" link set sw up
ip -n "$NSU" link set ubr up

# knode N ADDR: namespace kN with eth0 at ADDR/24 on the underlay bridge; sets KNS.
knode() {
    KNS=$(vs_ifname "k$1")
    vs_netns_add "$KNS"
    ip -n "$NSU" link add "k$1" type veth peer name eth0 netns "$KNS" ||
        fail "cannot create veth k$1 <-> $KNS/eth0"
    ip -n "$NSU" link set "k$1" master ubr
    ip -n "$NSU" link set "k$1" up
    vs_ns_iface_up "$KNS" eth0 "$2/24"
}

# kvxlan NS DEV VNI ADDR: a kernel vxlan device DEV of VNI in NS, toward the switch, at ADDR.
kvxlan() {
    local ns=$1 dev=$2 vni=$3 addr=$4 src
    src=$(ip -n "$ns" -4 -o addr show dev eth0 | awk '{ split($4, a, "/"); print a[1] }')
    ip -n "$ns" link add "$dev" type vxlan id "$vni" local "$src" remote 10.43.0.1 \
        dstport 4789 dev eth0 || fail "cannot create vxlan $dev in $ns"
    ip netns exec "$ns" ethtool -K "$dev" tx off >/dev/null 2>&1 || true
    ip -n "$ns" addr add "$addr" dev "$dev"
    ip -n "$ns" link set "$dev" up
}

knode 1 10.43.0.2
NSK1=$KNS
knode 2 10.43.0.3
NSK2=$KNS
kvxlan "$NSK1" vx0 42 10.43.10.2/24
kvxlan "$NSK2" vx0 42 10.43.10.3/24
kvxlan "$NSK1" vx1 43 10.43.11.2/24
K1MAC=$(ns_mac "$NSK1" vx0)
K2MAC=$(ns_mac "$NSK2" vx0)
K1MAC43=$(ns_mac "$NSK1" vx1)
log "kernel VTEPs: k1 vx0 $K1MAC, vx1 $K1MAC43; k2 vx0 $K2MAC"

# Pods behind the switch, MTU 1450 as a CNI would give them over VXLAN. Pod a keeps its
# default offloads (TSO: its super-frames are cut before encapsulation).
VS_NS_OFFLOADS=default vs_host a 10.43.10.1/24
NSA=$VS_NS HA=$VS_HOSTIF
vs_host b 10.43.11.1/24
NSB=$VS_NS HB=$VS_HOSTIF
ip -n "$NSA" link set eth0 mtu 1450
ip -n "$NSB" link set eth0 mtu 1450
AMAC=$(ns_mac "$NSA")

run_ok "underlay interface" vsctl iface add ul af_packet iface="$HU"
run_ok "underlay address" vsctl addr add ul 10.43.0.1/24
run_ok "tunnel vx42" vsctl tunnel add vx42 vxlan vni=42 local=10.43.0.1 \
    remote=10.43.0.2,10.43.0.3 port=4789
run_ok "tunnel vx43" vsctl tunnel add vx43 vxlan vni=43 local=10.43.0.1 remote=10.43.0.2 port=4789
run_ok "bridge br0" vsctl bridge add br0
run_ok "bridge br1" vsctl bridge add br1
run_ok "pod a" vsctl iface add pa af_packet iface="$HA"
run_ok "pod b" vsctl iface add pb af_packet iface="$HB"
run_ok "attach pa" vsctl bridge attach br0 pa
run_ok "attach vx42" vsctl bridge attach br0 vx42
run_ok "attach pb" vsctl bridge attach br1 pb
run_ok "attach vx43" vsctl bridge attach br1 vx43
vsctl tunnel list

# a <-> k1 both ways (the first ARP crosses by head-end replication, the switch resolves
# the kernel nodes' underlay addresses by ARP on ul).
vs_ping "$NSA" 10.43.10.2
vs_ping "$NSK1" 10.43.10.1
got=$(ip -n "$NSA" neigh show 10.43.10.2 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print tolower($(i + 1)) }')
assert_eq "$got" "$K1MAC" "a's ARP entry for k1 (k1's vxlan device)"
got=$(ip -n "$NSK1" neigh show 10.43.10.1 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print tolower($(i + 1)) }')
assert_eq "$got" "$AMAC" "k1's ARP entry for a"
got=$(ip netns exec "$NSK1" bridge fdb show dev vx0 | grep -i "$AMAC" || true)
grep -q 'dst 10.43.0.1' <<<"$got" || fail "k1's vxlan did not learn a behind 10.43.0.1: $got"
log "k1 learned a's MAC behind the switch's VTEP: $got"

# Head-end replication: a's ARP request for k2 reaches k1's vxlan device as well.
ns_neigh_flush "$NSA"
k1rx=$(ns_counter "$NSK1" vx0 rx_packets)
CAP=$VS_TMP/k1-arp.txt
timeout 20 ip netns exec "$NSK1" tcpdump -l -n -i vx0 -c 1 'arp and arp[24:4] = 0x0a2b0a03' \
    >"$CAP" 2>/dev/null &
TCPDUMP_PID=$!
vs_track_pid "$TCPDUMP_PID"
sleep 1
vs_ping "$NSA" 10.43.10.3
vs_ping "$NSK2" 10.43.10.1
wait_until 10 "k1 saw a's ARP request for k2 (10.43.10.3)" grep -q 'who-has 10.43.10.3' "$CAP"
assert_int -gt "$(ns_counter "$NSK1" vx0 rx_packets)" "$k1rx" "k1's vx0 rx_packets while a ARPs for k2"
log "a's ARP for k2 reached k1 too (head-end replication): $(head -n 1 "$CAP")"

# The MAC table: k1's and k2's vxlan MACs on vx42, each with its VTEP.
fdb_remote() {
    local doc
    doc=$(fdb_doc br0) || return 1
    json_true 'any(mac(e["mac"]) == mac(m) and e["iface"] == "vx42" and e.get("remote") == r for e in d)' \
        m="$1" r="$2" <<<"$doc"
}
wait_until 10 "fdb show br0 lists k1's MAC behind 10.43.0.2" fdb_remote "$K1MAC" 10.43.0.2
wait_until 10 "fdb show br0 lists k2's MAC behind 10.43.0.3" fdb_remote "$K2MAC" 10.43.0.3
fdb_expect br0 "$AMAC" pa 0 false "a on pa"
log "fdb show br0: $(vsctl --json fdb show br0 | vs_json '", ".join("%s %s %s" % (e["mac"], e["iface"], e.get("remote", "")) for e in d)')"

# TCP both ways through the tunnel.
vs_iperf "$NSA" "$NSK1" 10.43.10.2 3
# Without segmentation before encapsulation every super-frame was dropped: ~90 KB in 3 s.
assert_int -gt "$(vs_json 'd["end"]["sum_received"]["bytes"]' <"$VS_IPERF_JSON")" 20000000 \
    "bytes a -> k1 with a's TSO on"
vs_iperf "$NSA" "$NSK1" 10.43.10.2 3 -R

# The second VNI works and stays apart.
vx1_before=$(ns_counter "$NSK1" vx1 rx_packets)
vs_ping "$NSB" 10.43.11.2
assert_int -gt "$(ns_counter "$NSK1" vx1 rx_packets)" "$vx1_before" "k1's vx1 (VNI 43) received b's traffic"
vx1_before=$(ns_counter "$NSK1" vx1 rx_packets)
vx0_before=$(ns_counter "$NSK1" vx0 rx_packets)
ns_neigh_flush "$NSA"
vs_ping "$NSA" 10.43.10.2
ip netns exec "$NSA" ping -c 2 -W 1 -b 10.43.10.255 >/dev/null 2>&1 || true
assert_int -gt "$(ns_counter "$NSK1" vx0 rx_packets)" "$vx0_before" "k1's vx0 received a's traffic"
assert_eq "$(ns_counter "$NSK1" vx1 rx_packets)" "$vx1_before" "k1's vx1 (VNI 43) rx_packets while a talks on VNI 42"
doc=$(vsctl --json fdb show br1)
vs_json_true 'not any(mac(e["mac"]) in (mac(x), mac(y), mac(z)) for e in d)' \
    x="$K1MAC" y="$K2MAC" z="$AMAC" <<<"$doc" || fail "br1 learned a VNI 42 MAC: $doc"
vs_json_true 'any(mac(e["mac"]) == mac(m) and e.get("remote") == "10.43.0.2" for e in d)' \
    m="$K1MAC43" <<<"$doc" || fail "br1 should have k1's VNI 43 MAC behind 10.43.0.2: $doc"
doc=$(vsctl --json fdb show br0)
vs_json_true 'not any(mac(e["mac"]) == mac(m) for e in d)' m="$K1MAC43" <<<"$doc" ||
    fail "br0 learned k1's VNI 43 MAC: $doc"
log "VNI 43 works (b <-> k1 vx1) and stays apart from VNI 42"

# Malformed VXLAN from k2 while a pings k1: each kind dropped under its name, exactly.
ULMAC=$(vsctl --json iface show ul | vs_json 'mac(d["mac"])')
K2ULMAC=$(ns_mac "$NSK2")
declare -A BEFORE
for r in vxlan_short vxlan_no_i_flag vxlan_unknown_vni udp_no_tunnel; do
    BEFORE[$r]=$(drop_count "$r")
done
PINGLOG=$VS_TMP/ping-during.txt
ip netns exec "$NSA" ping -c 20 -i 0.2 -w 30 10.43.10.2 >"$PINGLOG" 2>&1 &
PING_PID=$!
vs_track_pid "$PING_PID"
for c in short no-i vni port; do
    l2_scapy "$NSK2" 30 vxlan_bad.py --iface eth0 --src "$K2ULMAC" --dst "$ULMAC" \
        --psrc 10.43.0.3 --pdst 10.43.0.1 --vni 42 --case "$c" --count 5 >/dev/null ||
        fail "scapy could not send case $c"
done
for r in vxlan_short vxlan_no_i_flag vxlan_unknown_vni udp_no_tunnel; do
    wait_until 10 "5 more $r drops" drops_at_least "$r" $((BEFORE[$r] + 5))
    assert_eq "$(drop_count "$r")" $((BEFORE[$r] + 5)) "$r drops"
done
vs_wait_exit "$PING_PID" 40 || fail "ping during the malformed traffic did not finish"
grep -q ' 0% packet loss' "$PINGLOG" || {
    cat "$PINGLOG" >&2
    fail "a -> k1 lost packets while malformed VXLAN arrived"
}
log "malformed VXLAN dropped by name ($(vsctl --json drops | vs_json '", ".join("%s=%d" % (k, v) for k, v in sorted(d.items()) if v)')); a -> k1 20/20 meanwhile"
vs_json_true 'not any(mac(e["mac"]) == mac("02:43:00:00:00:99") for e in d)' \
    <<<"$(vsctl --json fdb show br0)" || fail "a malformed packet's inner MAC was learned"

vs_pass
