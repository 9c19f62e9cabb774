#!/usr/bin/env bash
# A bridge's routed interface, `bvi:BR`, where a bridge domain and the router meet:
#  - hosts a and b in bridge br0 (af_packet members) at 10.38.0.2 and .3/24, default route
#    via the BVI's 10.38.0.1; host c behind a routed interface rc in 10.38.1.0/24;
#  - the BVI answers ARP (with its MAC: 02 + 40 bits of FNV-1a of the bridge's name, as
#    `iface show bvi:br0` says) and ping; a, b <-> c ping both ways through it, TTL decremented once (63);
#  - a <-> b stays bridged: TTL 64, b's own MAC in a's ARP cache, nothing through
#    ip4-forward; the BVI's MAC is never in the bridge's MAC table; the router learned a
#    and b on bvi:br0 and routes to them through it (`route get`);
#  - iperf3 a -> c through the BVI; IPv6 the same way (ND for the BVI, ping, hop limit);
#  - a second bridge br1 with `vrf=7` and the same subnet as br0 (host d at 10.38.0.2, the
#    BVI 10.38.0.1) routes in VRF 7 to host e behind a routed interface of VRF 7, without
#    touching VRF 0 (`iface set bvi:BR vrf=ID` moves a third bridge's BVI as well);
#  - after a restart the BVIs come back with the same MACs and traffic resumes.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

vs_test_init "41-l3-bvi"
start_vswitchd

# bvi_mac BR: the MAC the switch gives bridge BR's routed interface (see
# control/src/model/bridge.rs: bvi_mac).
bvi_mac() {
    "$VS_PY" -c '
import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode():
    h = ((h ^ b) * 0x100000001b3) & (2**64 - 1)
print(":".join("%02x" % x for x in [2] + list(h.to_bytes(8, "big")[:5])))' "$1"
}

# ip4_packets: packets ip4-forward has seen, all workers.
ip4_packets() {
    vsctl --json runtime |
        vs_json 'sum(s["packets"] for w in d["workers"] for s in w["stages"] if s["stage"] == "ip4-forward")'
}

# ttl_of NS DST: the TTL of DST's echo reply, as NS sees it.
ttl_of() {
    ip netns exec "$1" ping -c 1 -W 2 "$2" | grep -o 'ttl=[0-9]*' | cut -d= -f2
}

vs_host a 10.38.0.2/24
NSA=$VS_NS HA=$VS_HOSTIF
vs_host b 10.38.0.3/24
NSB=$VS_NS HB=$VS_HOSTIF
vs_host c 10.38.1.2/24
NSC=$VS_NS HC=$VS_HOSTIF
ip -n "$NSA" route add default via 10.38.0.1
ip -n "$NSB" route add default via 10.38.0.1
ip -n "$NSC" route add default via 10.38.1.1
MACA=$(ns_mac "$NSA")
MACB=$(ns_mac "$NSB")

run_ok "bridge br0" vsctl bridge add br0
run_ok "member pa" vsctl iface add pa af_packet iface="$HA"
run_ok "member pb" vsctl iface add pb af_packet iface="$HB"
run_ok "attach pa" vsctl bridge attach br0 pa
run_ok "attach pb" vsctl bridge attach br0 pb
run_ok "the BVI's address" vsctl addr add bvi:br0 10.38.0.1/24
run_ok "routed interface rc" vsctl iface add rc af_packet iface="$HC"
run_ok "rc's address" vsctl addr add rc 10.38.1.1/24
BVI0=$(bvi_mac br0)
log "bvi:br0 should answer with $BVI0"

# The BVI answers ARP and ping.
vs_ping "$NSA" 10.38.0.1
got=$(ip -n "$NSA" neigh show 10.38.0.1 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print tolower($(i + 1)) }')
assert_eq "$got" "$BVI0" "a's ARP entry for the BVI 10.38.0.1"
log "ARP for 10.38.0.1 answered with $got"
show=$(vsctl --json iface show bvi:br0 |
    vs_json '"%s %s %s %s" % (d["type"], d["mac"].lower(), d["mtu"], ",".join(d["addresses"]))')
assert_eq "$show" "bvi $BVI0 1500 10.38.0.1/24" "iface show bvi:br0 (type, MAC, MTU, addresses)"

# Routed both ways through the BVI, TTL decremented once.
vs_ping "$NSA" 10.38.1.2
vs_ping "$NSB" 10.38.1.2
vs_ping "$NSC" 10.38.0.2
vs_ping "$NSC" 10.38.0.3
assert_eq "$(ttl_of "$NSA" 10.38.1.2)" 63 "TTL of c's reply at a (one hop through the router)"
assert_eq "$(ttl_of "$NSC" 10.38.0.3)" 63 "TTL of b's reply at c"
log "a, b <-> c through the BVI: TTL 63"
got=$(ip -n "$NSA" neigh show 10.38.1.2 | grep -c lladdr || true)
assert_eq "$got" 0 "a has no ARP entry for c (c is behind the router)"
route=$(vsctl --json route get 10.38.0.2 | vs_json '"%s %s" % (d["prefix"], d["nexthops"][0]["iface"])')
assert_eq "$route" "10.38.0.2/32 bvi:br0" "route get 10.38.0.2 (the neighbour learned on the BVI)"
neigh=$(vsctl --json neigh show bvi:br0 | vs_json '" ".join(sorted("%s=%s" % (n["ip"], n["mac"].lower()) for n in d))')
for want in "10.38.0.2=$MACA" "10.38.0.3=$MACB"; do
    grep -qw -- "$want" <<<"$neigh" || fail "neigh show bvi:br0 should list $want: $neigh"
done
log "the router learned a and b on bvi:br0: $neigh"

# a <-> b is still bridged: TTL 64, b's own MAC at a, nothing through ip4-forward.
before=$(ip4_packets)
vs_ping "$NSA" 10.38.0.3
assert_eq "$(ttl_of "$NSA" 10.38.0.3)" 64 "TTL of b's reply at a (bridged, not routed)"
got=$(ip -n "$NSA" neigh show 10.38.0.3 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print tolower($(i + 1)) }')
assert_eq "$got" "$MACB" "a's ARP entry for b (b's own MAC: bridged)"
after=$(ip4_packets)
assert_eq "$after" "$before" "ip4-forward packets while a pings b (bridged traffic stays in the bridge)"
log "a <-> b bridged: TTL 64, ip4-forward untouched ($after packets)"

# The BVI's MAC is never learned on a member; a and b are, on their members.
fdb=$(vsctl --json fdb show br0)
vs_json_true 'not any(e["mac"].lower() == m for e in d)' m="$BVI0" <<<"$fdb" ||
    fail "the BVI's MAC is in br0's MAC table: $fdb"
vs_json_true 'any(e["mac"].lower() == a and e["iface"] == "pa" for e in d) and any(e["mac"].lower() == b and e["iface"] == "pb" for e in d)' \
    a="$MACA" b="$MACB" <<<"$fdb" || fail "a and b should be learned on pa and pb: $fdb"
log "br0's MAC table: a on pa, b on pb, no BVI MAC"

vs_iperf "$NSA" "$NSC" 10.38.1.2 3

# IPv6 through the BVI: Neighbor Discovery for the BVI's address (a multicast NS flooded
# and given to the router) and for the hosts, ping both ways, hop limit 63.
for ns in "$NSA" "$NSC"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=0
done
ip -n "$NSA" addr add fd38::2/64 dev eth0 nodad
ip -n "$NSC" addr add fd38:1::2/64 dev eth0 nodad
ip -n "$NSA" route add default via fd38::1
ip -n "$NSC" route add default via fd38:1::1
run_ok "the BVI's IPv6 address" vsctl addr add bvi:br0 fd38::1/64
run_ok "rc's IPv6 address" vsctl addr add rc fd38:1::1/64
vs_ping "$NSA" fd38::1
vs_ping "$NSA" fd38:1::2
vs_ping "$NSC" fd38::2
got=$(ip -n "$NSA" -6 neigh show fd38::1 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print tolower($(i + 1)) }')
assert_eq "$got" "$BVI0" "a's neighbour entry for the BVI fd38::1"
assert_eq "$(ttl_of "$NSA" fd38:1::2)" 63 "hop limit of c's IPv6 reply at a"
log "IPv6 through the BVI: ND answered with $got, ping both ways, hop limit 63"

# A bridge whose BVI is in VRF 7: the same subnet as br0, routed in VRF 7 only.
vs_host d 10.38.0.2/24
NSD=$VS_NS HD=$VS_HOSTIF
vs_host e 10.38.2.2/24
NSE=$VS_NS HE=$VS_HOSTIF
ip -n "$NSD" route add default via 10.38.0.1
ip -n "$NSE" route add default via 10.38.2.1
MACD=$(ns_mac "$NSD")
run_ok "vrf 7" vsctl vrf add 7
run_ok "bridge br1 in vrf 7" vsctl bridge add br1 vrf=7
run_ok "member pd" vsctl iface add pd af_packet iface="$HD"
run_ok "attach pd" vsctl bridge attach br1 pd
run_ok "bvi:br1's address (br0's subnet, in vrf 7)" vsctl addr add bvi:br1 10.38.0.1/24
run_ok "routed interface re in vrf 7" vsctl iface add re af_packet iface="$HE" vrf=7
run_ok "re's address" vsctl addr add re 10.38.2.1/24
vs_ping "$NSD" 10.38.2.2
vs_ping "$NSE" 10.38.0.2
got=$(ip -n "$NSD" neigh show 10.38.0.1 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print tolower($(i + 1)) }')
assert_eq "$got" "$(bvi_mac br1)" "d's ARP entry for bvi:br1"
route=$(vsctl --json route get 10.38.0.2 vrf=7 | vs_json '"%s %s" % (d["prefix"], d["nexthops"][0]["iface"])')
assert_eq "$route" "10.38.0.2/32 bvi:br1" "route get 10.38.0.2 vrf=7"
route=$(vsctl --json route get 10.38.0.2 | vs_json 'd["nexthops"][0]["iface"]')
assert_eq "$route" "bvi:br0" "route get 10.38.0.2 in vrf 0 (still a, through br0)"
got=$(vsctl --json neigh show bvi:br1 | vs_json '" ".join(n["mac"].lower() for n in d if n["ip"] == "10.38.0.2")')
assert_eq "$got" "$MACD" "the neighbour 10.38.0.2 of bvi:br1 is d"
if ip netns exec "$NSE" ping -c 1 -W 1 10.38.1.2 >/dev/null 2>&1; then
    fail "e (vrf 7) reached c (vrf 0)"
fi
log "br1's BVI routes in vrf 7: d <-> e, no way into vrf 0"
run_ok "bridge br2" vsctl bridge add br2
run_ok "iface set bvi:br2 vrf=7" vsctl iface set bvi:br2 vrf=7
assert_eq "$(vsctl --json bridge show br2 | vs_json 'd["vrf"]')" 7 "br2's BVI's vrf"

# After a restart: same BVI MACs (a's ARP cache still right), traffic resumes.
stop_vswitchd
restart_vswitchd
vs_ping "$NSA" 10.38.1.2
vs_ping "$NSD" 10.38.2.2
got=$(ip -n "$NSA" neigh show 10.38.0.1 | awk '{ for (i = 1; i < NF; i++) if ($i == "lladdr") print tolower($(i + 1)) }')
assert_eq "$got" "$BVI0" "a's ARP entry for the BVI after a restart"
log "after a restart: BVIs back with the same MACs, traffic resumed"

vs_pass
