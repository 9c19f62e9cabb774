#!/usr/bin/env bash
# ECMP over two next-hop namespaces: a route to 10.35.9.0/24 via 10.35.2.2 and 10.35.3.2
# (each behind its own routed interface). scapy in host a sends 256 UDP flows (one datagram
# each, distinct source ports): both next hops get a fair share. Then one flow sends 64
# datagrams: all of them reach one next hop and none the other (a flow keeps its path).
# Packets are counted on the next hops' interfaces (kernel rx counters).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "35-l3-ecmp"
start_vswitchd

vs_host a 10.35.1.2/24
NSA=$VS_NS HA=$VS_HOSTIF
vs_host n1 10.35.2.2/24
N1=$VS_NS H1=$VS_HOSTIF
vs_host n2 10.35.3.2/24
N2=$VS_NS H2=$VS_HOSTIF
ip -n "$NSA" route add default via 10.35.1.1
for ifc in ra:"$HA":10.35.1.1/24 r1:"$H1":10.35.2.1/24 r2:"$H2":10.35.3.1/24; do
    IFS=: read -r name host cidr <<<"$ifc"
    run_ok "routed interface $name" vsctl iface add "$name" af_packet iface="$host"
    run_ok "$name's address" vsctl addr add "$name" "$cidr"
done
# The next hops' MACs are given (static neighbours): only the test's datagrams reach them.
mac1=$(ip -n "$N1" -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
mac2=$(ip -n "$N2" -o link show eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
run_ok "n1 as a static neighbour" vsctl neigh add r1 10.35.2.2 "$mac1"
run_ok "n2 as a static neighbour" vsctl neigh add r2 10.35.3.2 "$mac2"
run_ok "ECMP route" vsctl route add 10.35.9.0/24 via 10.35.2.2,10.35.3.2
vs_ping "$NSA" 10.35.1.1

rx() { ip -n "$1" -s -j link show eth0 | vs_json 'd[0]["stats64"]["rx"]["packets"]'; }

# send SPORTS...: one UDP datagram to 10.35.9.9:53 per source port, from a.
send() {
    ip netns exec "$NSA" "$VS_PY" - "$@" <<'PY' >/dev/null 2>&1
import sys
from scapy.all import IP, UDP, Raw, conf, send
conf.verb = 0
ports = [int(p) for p in sys.argv[1:]]
send([IP(dst="10.35.9.9") / UDP(sport=p, dport=53) / Raw(b"x" * 16) for p in ports], inter=0.001)
PY
}

B1=$(rx "$N1") B2=$(rx "$N2")
# arrived N: true once the two next hops together received N datagrams since B1, B2.
arrived() { (($(rx "$N1") - B1 + $(rx "$N2") - B2 >= $1)); }

send $(seq 20000 20255)
wait_until 15 "256 datagrams at the next hops" arrived 256
D1=$(($(rx "$N1") - B1)) D2=$(($(rx "$N2") - B2))
assert_int -eq $((D1 + D2)) 256 "datagrams delivered (256 flows)"
assert_int -ge "$D1" 64 "flows through n1 (of 256)"
assert_int -ge "$D2" 64 "flows through n2 (of 256)"
log "256 flows: $D1 via n1, $D2 via n2"
B1=$((B1 + D1)) B2=$((B2 + D2))

send $(for _ in $(seq 64); do echo 31337; done)
wait_until 15 "64 datagrams of one flow at the next hops" arrived 64
D1=$(($(rx "$N1") - B1)) D2=$(($(rx "$N2") - B2))
((D1 == 64 && D2 == 0 || D1 == 0 && D2 == 64)) ||
    fail "one flow should keep one path: $D1 via n1, $D2 via n2"
log "one flow, 64 datagrams: $D1 via n1, $D2 via n2"

vs_pass
