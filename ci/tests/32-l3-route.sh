#!/usr/bin/env bash
# The router between two namespaces in different IPv4 subnets (af_packet interfaces with
# addresses, nothing static on either side: ARP both ways):
#  - the hosts resolve their gateway (the router answers ARP for its addresses) and the
#    router resolves them (ARP requests from the slow path, the waiting packet released);
#  - ping both ways, TTL decremented exactly once (63 at the far end's reply), and ping
#    of the router's own address; iperf3 (TCP) through it;
#  - ping -t 1 gets time exceeded from the router; a DF packet over the egress MTU gets
#    fragmentation needed (with the MTU), one without DF is fragmented (a UDP datagram reassembled at b); a
#    route through a gateway that never answers ARP gets host unreachable after the
#    retries;
#  - the router's counters: ip4-forward saw the packets, the slow path answered;
#  - a flannel-style onlink route (the gateway outside every subnet of the router, on the
#    link of dev): a third namespace answers for it and the route carries traffic;
#  - restart (SIGTERM): addresses, routes and the onlink route come back from the state
#    file and traffic resumes (neighbours are resolved again by ARP).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "32-l3-route"
start_vswitchd

vs_host a 10.32.1.2/24
NSA=$VS_NS HA=$VS_HOSTIF
vs_host b 10.32.2.2/24
NSB=$VS_NS HB=$VS_HOSTIF
ip -n "$NSA" route add default via 10.32.1.1
ip -n "$NSB" route add default via 10.32.2.1

run_ok "routed interface ra" vsctl iface add ra af_packet iface="$HA"
run_ok "routed interface rb (MTU 1400)" vsctl iface add rb af_packet iface="$HB" mtu=1400
run_ok "ra's address" vsctl addr add ra 10.32.1.1/24
run_ok "rb's address" vsctl addr add rb 10.32.2.1/24
run_ok "a route through a gateway that never answers" \
    vsctl route add 10.32.9.0/24 via 10.32.2.99

vs_ping "$NSA" 10.32.2.2
vs_ping "$NSB" 10.32.1.2
vs_ping "$NSA" 10.32.1.1

out=$(ip netns exec "$NSA" ping -c 1 -W 2 10.32.2.2)
grep -q 'ttl=63' <<<"$out" || fail "the reply from b should arrive with TTL 63 (64 - 1): $out"
log "TTL decremented once: $(grep -o 'ttl=[0-9]*' <<<"$out")"
grep -q "10.32.2.2 dev eth0 lladdr" <(ip -n "$NSA" neigh show 10.32.2.2) &&
    fail "a should not know b's MAC (b is behind the router)"
ip -n "$NSA" neigh show 10.32.1.1 | grep -q lladdr ||
    fail "a did not resolve its gateway 10.32.1.1"
vsctl route get 10.32.2.2 | grep -q '10.32.2.2/32' ||
    fail "the router should have a host route to b once resolved: $(vsctl route get 10.32.2.2)"

out=$(ip netns exec "$NSA" ping -c 1 -W 2 -t 1 10.32.2.2 2>&1 || true)
grep -qi 'Time to live exceeded' <<<"$out" || fail "ping -t 1: no time exceeded: $out"
grep -q 'From 10.32.1.1' <<<"$out" || fail "time exceeded should come from 10.32.1.1: $out"
log "ping -t 1: time exceeded from 10.32.1.1"

out=$(ip netns exec "$NSA" ping -c 1 -W 2 -M do -s 1450 10.32.2.2 2>&1 || true)
grep -qi 'mtu = 1400\|mtu=1400' <<<"$out" || fail "DF over MTU: no fragmentation needed (mtu 1400): $out"
log "DF 1478-byte packet: fragmentation needed, mtu 1400"
# Without DF the router fragments it (a's fragments reach the switch reassembled: DPDK's
# af_packet has the kernel defragment, so the 1478-byte packet is the switch's to split;
# and b's link, MTU 1400 now, would not carry it whole). One way, UDP: b's replies could
# not leave b whole either.
ip netns exec "$NSB" python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("10.32.2.2", 3232)); s.settimeout(8)
n = len(s.recv(4096))
print(n)' >"$VS_TMP/frag.out" 2>&1 &
rcv=$!
wait_until 5 "b listens on udp 3232" bash -c "ip netns exec $NSB ss -uln | grep -q 10.32.2.2:3232"
ip netns exec "$NSA" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER: IP_PMTUDISC_DONT (no DF)
for _ in range(5):
    s.sendto(bytes(1450), ("10.32.2.2", 3232)); time.sleep(0.2)'
wait "$rcv" || fail "b received no datagram: the 1478-byte packet without DF was not fragmented: $(cat "$VS_TMP/frag.out")"
[[ $(cat "$VS_TMP/frag.out") == 1450 ]] || fail "b received $(cat "$VS_TMP/frag.out") bytes, not 1450"
log "1478-byte UDP packet without DF: fragmented by the router, 1450 bytes reassembled at b"

out=$(ip netns exec "$NSA" ping -c 1 -W 6 10.32.9.1 2>&1 || true)
grep -qi 'Destination Host Unreachable' <<<"$out" ||
    fail "unresolvable next hop: no host unreachable: $out"
log "unresolvable gateway: host unreachable from the router"

vs_iperf "$NSA" "$NSB" 10.32.2.2 2

fwd=$(vsctl --json runtime | vs_json 'sum(s["packets"] for w in d["workers"] for s in w["stages"] if s["stage"] == "ip4-forward")')
assert_int -gt "$fwd" 20 "packets through ip4-forward"
log "ip4-forward: $fwd packets"

# flannel's form: `via 10.244.1.0 dev IFACE onlink`, the gateway in no subnet of ours.
vs_host c 10.244.1.0/24
NSC=$VS_NS HC=$VS_HOSTIF
ip -n "$NSC" route add 10.32.1.0/24 via 10.32.3.1 onlink dev eth0 2>/dev/null ||
    ip -n "$NSC" route add default dev eth0
run_ok "interface toward c" vsctl iface add rc af_packet iface="$HC"
run_ok "its address (another subnet)" vsctl addr add rc 10.32.3.1/24
run_ok "onlink route via c" vsctl route add 10.244.1.0/24 via 10.244.1.0 dev rc onlink
vs_ping "$NSA" 10.244.1.0
got=$(vsctl --json route get 10.244.1.7 | vs_json '"%s %s %s" % (d["prefix"], d["origin"], d["onlink"])')
assert_eq "$got" "10.244.1.0/24 static True" "route get 10.244.1.7 (the onlink route)"

stop_vswitchd
restart_vswitchd
vsctl route get 10.32.2.2,10.244.1.7 >/dev/null || fail "routes not restored"
vs_ping "$NSA" 10.32.2.2
vs_ping "$NSA" 10.244.1.0
log "after a restart: addresses and routes restored, traffic resumed"

vs_pass
