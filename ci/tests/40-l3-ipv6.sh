#!/usr/bin/env bash
# The router with IPv6, against Linux hosts (af_packet interfaces, nothing static: Neighbor
# Discovery both ways). Topology:
#
#   a fd00:41::2 --[ra fd00:41::1]== switch ==[rb fd00:42::1]-- b fd00:42::2 (a Linux
#   router, forwarding=1) --eth1 fd00:43::1, fd00:44::1-- c fd00:43::2, fd00:44::2
#
# Required:
#  - the hosts resolve their gateway (the switch answers NS for its addresses) and the
#    switch resolves them (NS to the solicited-node group, the waiting packet released);
#    ping -6 both ways, the replies' hop limit decremented exactly once (63), ping of the
#    switch's global address and of its link-local one (EUI-64 of ra's MAC, fe80::X%eth0);
#  - a's unicast neighbour probes (as Linux sends them for a stale entry, from its
#    link-local address) for the switch's global and link-local addresses are answered;
#  - ping -t 1 gets ICMPv6 time exceeded from fd00:41::1; iperf3 (TCP) a -> b; a 3000-byte
#    ping, fragmented by a, crosses as fragments;
#  - `iface set rb mtu=1400`: ping -s 1450 -M do gets packet too big with mtu 1400; with
#    a's path MTU cache flushed, TCP both ways moves data (a learns the MTU from the
#    switch's packet too big);
#  - fd00:43::/64 via fd00:42::2 (b's global address) and fd00:44::/64 via b's link-local
#    address dev rb: c answers on both, with hop limit 62; a -t 2 probe gets time exceeded
#    from b;
#  - a route via an address nobody has: ping gets address unreachable from the switch
#    after the switch's 3 neighbour solicitations;
#  - `neigh show` lists a, b and b's link-local address, learned; with `neigh set age=1`
#    a 4 s ping through b's link-local address loses nothing (resolved again each time);
#    `route get` names the connected, local, static and learned host routes;
#  - after a restart the routes (the link-local gateway too) carry traffic again.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "40-l3-ipv6"
start_vswitchd

# v6_host SUFFIX CIDR GW: a host (vs_host, no IPv4) with eth0 at CIDR, default via GW.
v6_host() {
    vs_host "$1" ""
    vs_ns_ipv6 "$VS_NS" eth0
    ip -n "$VS_NS" addr add "$2" dev eth0 nodad
    [[ -z "$3" ]] || ip -n "$VS_NS" -6 route add default via "$3"
}

# link_local NS [IF]: IF's (default eth0) link-local address in NS.
link_local() {
    local a
    a=$(ip -n "$1" -6 -o addr show dev "${2:-eth0}" scope link | awk '{ print $4 }' | cut -d/ -f1)
    [[ "$a" == fe80:* ]] || fail "no link-local address on ${2:-eth0} in $1"
    printf '%s\n' "$a"
}

# eui64 MAC: the modified EUI-64 link-local address of MAC (RFC 4291 appendix A).
eui64() {
    local m
    IFS=: read -ra m <<<"$1"
    printf 'fe80::%x:%x:%x:%x\n' $(((0x${m[0]} ^ 2) << 8 | 0x${m[1]})) \
        $((0x${m[2]} << 8 | 0xff)) $((0xfe << 8 | 0x${m[3]})) $((0x${m[4]} << 8 | 0x${m[5]}))
}

v6_host a fd00:41::2/64 fd00:41::1
NSA=$VS_NS HA=$VS_HOSTIF
v6_host b fd00:42::2/64 fd00:42::1
NSB=$VS_NS HB=$VS_HOSTIF
NSC=$(vs_ifname c)
vs_netns_add "$NSC"
ip -n "$NSB" link add eth1 type veth peer name eth0 netns "$NSC" ||
    fail "cannot create veth $NSB/eth1 <-> $NSC/eth0"
vs_ns_ipv6 "$NSC" eth0
vs_ns_ipv6 "$NSB" eth1
for ifc in "$NSB eth1 fd00:43::1/64" "$NSB eth1 fd00:44::1/64" \
    "$NSC eth0 fd00:43::2/64" "$NSC eth0 fd00:44::2/64"; do
    read -r ns dev cidr <<<"$ifc"
    ip netns exec "$ns" ethtool -K "$dev" tx off >/dev/null 2>&1 || fail "ethtool -K $dev tx off in $ns"
    ip -n "$ns" addr add "$cidr" dev "$dev" nodad
    ip -n "$ns" link set "$dev" up
done
ip netns exec "$NSB" sysctl -qw net.ipv6.conf.all.forwarding=1
ip -n "$NSC" -6 route add default via fd00:43::1

run_ok "routed interface ra" vsctl iface add ra af_packet iface="$HA" >/dev/null
run_ok "routed interface rb" vsctl iface add rb af_packet iface="$HB" >/dev/null
run_ok "ra's address" vsctl addr add ra fd00:41::1/64
run_ok "rb's address" vsctl addr add rb fd00:42::1/64
RA_MAC=$(vsctl --json iface list | vs_json 'first(i["mac"] for i in d if i["name"] == "ra")')
RA_LL=$(eui64 "$RA_MAC")
B_LL=$(link_local "$NSB")
log "ra's MAC $RA_MAC, link-local $RA_LL; b's link-local $B_LL"

vs_ping "$NSA" fd00:42::2
vs_ping "$NSB" fd00:41::2
vs_ping "$NSA" fd00:41::1
vs_ping "$NSA" "$RA_LL%eth0"
vs_ping "$NSA" fd00:42::1
RB_LL=$(eui64 "$(vsctl --json iface list | vs_json 'first(i["mac"] for i in d if i["name"] == "rb")')")
vs_ping "$NSB" "$RB_LL%eth0"
ip -n "$NSA" -6 neigh show fd00:41::1 | grep -q "lladdr $RA_MAC" ||
    fail "a should know its gateway fd00:41::1 at $RA_MAC: $(ip -n "$NSA" -6 neigh show)"
ip -n "$NSA" -6 neigh show fd00:42::2 | grep -q lladdr &&
    fail "a should not know b's MAC (b is behind the router)"

# a re-checks its gateway as Linux does once its entry goes stale: unicast solicitations
# from its link-local address to the switch's global and link-local ones (kernel probes).
for gw in fd00:41::1 "$RA_LL"; do
    ip -n "$NSA" -6 neigh replace "$gw" dev eth0 lladdr "$RA_MAC" nud probe
done
# a_confirmed: status only: both of a's gateway entries are reachable again.
a_confirmed() {
    [[ $(ip -n "$NSA" -6 neigh show dev eth0 nud reachable | grep -c -e "^fd00:41::1 " -e "^$RA_LL ") == 2 ]]
}
wait_until 10 "a's unicast neighbour probes answered" a_confirmed
log "unicast neighbour probes for fd00:41::1 and $RA_LL answered"

out=$(ip netns exec "$NSA" ping -c 1 -W 2 fd00:42::2 2>&1) || fail "ping a -> b: $out"
grep -Eq '(ttl|hlim)=63' <<<"$out" || fail "the reply from b should arrive with hop limit 63: $out"
out=$(ip netns exec "$NSA" ping -c 1 -W 2 fd00:41::1 2>&1) || fail "ping a -> fd00:41::1: $out"
grep -Eq '(ttl|hlim)=64' <<<"$out" || fail "the router's own reply should arrive with hop limit 64: $out"
log "hop limit decremented once (63 from b, 64 from the router itself)"

out=$(ip netns exec "$NSA" ping -c 1 -W 2 -t 1 fd00:42::2 2>&1 || true)
grep -q 'From fd00:41::1 .*Time exceeded' <<<"$out" ||
    fail "ping -t 1: time exceeded should come from fd00:41::1: $out"
log "ping -t 1: time exceeded from fd00:41::1"

vs_iperf "$NSA" "$NSB" fd00:42::2 2
# 3000 bytes of ICMPv6: a fragments (IPv6 fragment headers), the switch forwards the
# fragments as they are (af_packet's defragmentation is IPv4's only), b reassembles.
out=$(ip netns exec "$NSA" ping -c 2 -W 2 -s 3000 fd00:42::2 2>&1) || fail "ping -s 3000 a -> b: $out"
log "ping -s 3000 (fragmented by a): $(grep -o '[0-9]* received' <<<"$out")"

# Packet too big: rb's MTU lowered while it runs.
run_ok "rb's MTU to 1400" vsctl iface set rb mtu=1400
out=$(ip netns exec "$NSA" ping -c 1 -W 2 -M "do" -s 1450 fd00:42::2 2>&1 || true)
grep -q 'From fd00:41::1 .*Packet too big: mtu=1400' <<<"$out" ||
    fail "1498-byte packet over rb's MTU 1400: no packet too big (mtu 1400) from fd00:41::1: $out"
log "1498-byte packet: packet too big from fd00:41::1, mtu 1400"
ip netns exec "$NSA" ping -c 1 -W 2 -M "do" -s 1352 fd00:42::2 >/dev/null ||
    fail "a 1400-byte packet should pass rb's MTU 1400"
# a forgets what the ping taught it: TCP must meet the packet too big itself.
ip -n "$NSA" -6 route flush cache
vs_iperf "$NSA" "$NSB" fd00:42::2 1
vs_iperf "$NSB" "$NSA" fd00:41::2 1
log "TCP both ways with rb at MTU 1400 (path MTU discovery on the switch's packet too big)"

# Routes through b: via its global address, and via its link-local address.
run_ok "fd00:43::/64 via b" vsctl route add fd00:43::/64 via fd00:42::2
run_ok "fd00:44::/64 via b's link-local address" vsctl route add fd00:44::/64 via "$B_LL" dev rb
ip -n "$NSB" -6 route add fd00:41::/64 via fd00:42::1
vs_ping "$NSA" fd00:43::2
vs_ping "$NSA" fd00:44::2
vs_ping "$NSC" fd00:41::2
for dst in fd00:43::2 fd00:44::2; do
    out=$(ip netns exec "$NSA" ping -c 1 -W 2 "$dst" 2>&1) || fail "ping a -> $dst: $out"
    grep -Eq '(ttl|hlim)=62' <<<"$out" ||
        fail "the reply from $dst should arrive with hop limit 62 (64 - b - switch): $out"
done
out=$(ip netns exec "$NSA" ping -c 1 -W 2 -t 2 fd00:44::2 2>&1 || true)
grep -q 'From fd00:42::2 .*Time exceeded' <<<"$out" ||
    fail "ping -t 2 via b's link-local address: time exceeded should come from b: $out"
log "c answers through b's global and link-local addresses, hop limit 62; -t 2 expires at b"

# A gateway nobody has: address unreachable once the switch gives up on it.
run_ok "a route via a gateway that never answers" vsctl route add fd00:49::/64 via fd00:42::99
t0=$SECONDS
out=$(ip netns exec "$NSA" ping -c 1 -W 8 fd00:49::1 2>&1 || true)
grep -q 'From fd00:41::1 .*Destination unreachable: Address unreachable' <<<"$out" ||
    fail "unresolvable gateway: no address unreachable from fd00:41::1: $out"
log "unresolvable gateway: address unreachable from the router after $((SECONDS - t0)) s"

neigh=$(vsctl --json neigh show)
for n in "ra fd00:41::2" "rb fd00:42::2" "rb $B_LL"; do
    read -r ifc ip <<<"$n"
    vs_json_true 'any(n["iface"] == i and n["ip"] == ip and n["state"] != "static" for n in d)' \
        i="$ifc" ip="$ip" <<<"$neigh" || fail "neigh show should list $ip on $ifc, learned: $neigh"
done
vs_json_true 'not any(n["ip"] == "fd00:42::99" for n in d)' <<<"$neigh" ||
    fail "fd00:42::99 never answered: it must not be a neighbour: $neigh"
log "neigh show: a, b and b's link-local address learned"
vsctl neigh show

# route_get ADDR: "prefix via" of `vsctl --json route get ADDR` (via empty if none).
route_get() {
    vsctl --json route get "$1" |
        vs_json '"%s %s" % (d["prefix"], ",".join(h.get("via") or "-" for h in d["nexthops"]))'
}
assert_eq "$(route_get fd00:43::7)" "fd00:43::/64 fd00:42::2" "route get fd00:43::7"
assert_eq "$(route_get fd00:44::7)" "fd00:44::/64 $B_LL" "route get fd00:44::7"
assert_eq "$(route_get fd00:42::77)" "fd00:42::/64 -" "route get fd00:42::77 (connected)"
assert_eq "$(route_get fd00:42::2)" "fd00:42::2/128 -" "route get fd00:42::2 (learned host)"
assert_eq "$(route_get fd00:41::1)" "fd00:41::1/128 -" "route get fd00:41::1 (local)"
vsctl route get fd00:41::1,fd00:42::2,fd00:43::7,fd00:44::7

# Learned neighbours aged out every second: traffic resolves them again without a loss.
# b_ns_in: neighbour solicitations b has received on eth0 (the kernel's ICMPv6 counters).
b_ns_in() { ip netns exec "$NSB" cat /proc/net/dev_snmp6/eth0 | awk '$1 == "Icmp6InNeighborSolicits" { print $2 }'; }
run_ok "neighbour age 1 s" vsctl neigh set age=1
ns0=$(b_ns_in)
out=$(ip netns exec "$NSA" ping -c 20 -i 0.2 -w 10 fd00:44::2 2>&1) || fail "ping while neighbours age: $out"
grep -q ' 0% packet loss' <<<"$out" || fail "ping while neighbours age lost packets: $out"
ns1=$(b_ns_in)
assert_int -ge $((ns1 - ns0)) 2 "solicitations from the switch to b while its entry aged"
run_ok "neighbour age back to 300 s" vsctl neigh set age=300
log "neighbours aged every second under a 4 s ping: 20/20 replies; b solicited $((ns1 - ns0)) times"
fwd=$(vsctl --json runtime | vs_json 'sum(s["packets"] for w in d["workers"] for s in w["stages"] if s["stage"] == "ip6-forward")')
assert_int -gt "$fwd" 100 "packets through ip6-forward"
log "ip6-forward: $fwd packets"
vsctl drops

stop_vswitchd
restart_vswitchd
vs_ping "$NSA" fd00:44::2
vs_ping "$NSA" fd00:43::2
log "after a restart: addresses and routes (the link-local gateway too) back, traffic resumed"

vs_pass
