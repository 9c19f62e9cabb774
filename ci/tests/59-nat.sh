#!/usr/bin/env bash
# NAT and service load balancing (issue 18), through the router with real kernels at
# every end (native af_packet ports; the clients keep their checksum offloads, so partial
# checksums cross the translation):
#  - ClusterIP 10.96.0.10:80 over three backend namespaces: 300 TCP connections from two
#    client namespaces each land on one backend, every backend gets a fair share, and the
#    backends see the clients' own addresses; removing one backend sends new connections
#    to the other two only while 200 held connections to those two still answer (by the
#    same backend); adding it back takes about a third of new connections;
#  - client-IP affinity keeps a client on one backend;
#  - a UDP (DNS-like) service answers from the VIP's address and port; an IPv6 TCP and UDP
#    service over two backends;
#  - NodePort from an "outside" namespace through the uplink; masquerade: the outside sees
#    the node's address for pod traffic (TCP, UDP, ping) and the replies come back, and
#    an ICMP port unreachable from the outside reaches the client translated; the
#    checksums of what leaves are verified by scapy on a capture; a Docker-style port
#    mapping; hairpin (a backend reaching a service that picks itself sees the VIP as its
#    peer); a service with no backend taking flows refuses at once (ICMP port unreachable);
#  - the session limit holds under a flood of new connections to a service, and an
#    established connection keeps working;
#  - bad input is refused with a clear error and changes nothing;
#  - services, masquerade and port mappings come back after a restart, and connections
#    held across it through a service and through masquerade go on.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "59-nat"
start_vswitchd
WHO="$VS_ROOT/ci/nat/who.py"

# Clients keep their offloads (partial checksums); backends and outside compute theirs.
VS_NS_OFFLOADS=default vs_host c1 10.59.1.2/24
C1=$VS_NS
run_ok "client 1 port" vsctl iface add rc1 af_packet iface="$VS_HOSTIF"
VS_NS_OFFLOADS=default vs_host c2 10.59.2.2/24
C2=$VS_NS
run_ok "client 2 port" vsctl iface add rc2 af_packet iface="$VS_HOSTIF"
BK=()
for i in 1 2 3; do
    vs_host "b$i" "10.59.1$i.2/24"
    BK+=("$VS_NS")
    run_ok "backend $i port" vsctl iface add "rb$i" af_packet iface="$VS_HOSTIF"
    run_ok "backend $i gateway" vsctl addr add "rb$i" "10.59.1$i.1/24"
    ip -n "$VS_NS" route add default via "10.59.1$i.1"
done
vs_host o 192.0.2.2/24
OUT=$VS_NS
run_ok "uplink" vsctl iface add up af_packet iface="$VS_HOSTIF"
run_ok "uplink address" vsctl addr add up 192.0.2.1/24
run_ok "client 1 gateway" vsctl addr add rc1 10.59.1.1/24
run_ok "client 2 gateway" vsctl addr add rc2 10.59.2.1/24
ip -n "$C1" route add default via 10.59.1.1
ip -n "$C2" route add default via 10.59.2.1
# The outside knows nothing of the pods' networks: only the node's address answers it.

for i in 1 2 3; do
    ip netns exec "${BK[i - 1]}" "$VS_PY" "$WHO" serve "b$i" 8080 >/dev/null 2>&1 &
    vs_track_pid $!
    ip netns exec "${BK[i - 1]}" "$VS_PY" "$WHO" udp "b$i" 5353 >/dev/null 2>&1 &
    vs_track_pid $!
done
ip netns exec "$OUT" "$VS_PY" "$WHO" serve outside 9000 >/dev/null 2>&1 &
vs_track_pid $!
ip netns exec "$OUT" "$VS_PY" "$WHO" udp outside 9001 >/dev/null 2>&1 &
vs_track_pid $!
listening() {
    local ns
    for ns in "${BK[@]}"; do
        ip netns exec "$ns" ss -Hltn 'sport = :8080' | grep -q LISTEN || return 1
    done
    ip netns exec "$OUT" ss -Hltn 'sport = :9000' | grep -q LISTEN
}
wait_until 10 "servers listening" listening
vs_ping "$C1" 10.59.11.2
vs_ping "$C2" 10.59.13.2

B="10.59.11.2:8080,10.59.12.2:8080,10.59.13.2:8080"
run_ok "ClusterIP service" vsctl service add web 10.96.0.10:80 proto=tcp backends="$B"
show=$(vsctl --json service show web)
vs_json_true 'd["vip"] == "10.96.0.10" and d["port"] == 80 and d["proto"] == "tcp" and len(d["backends"]) == 3' \
    <<<"$show" || fail "service show: $show"

# 300 connections, held: 150 from each client.
hold() { # NS FILE OUT
    ip netns exec "$1" "$VS_PY" "$WHO" hold 10.96.0.10 80 150 "$2" >"$3" 2>&1 &
    vs_track_pid $!
}
hold "$C1" "$VS_TMP/go1" "$VS_TMP/hold1.json"
h1=$!
hold "$C2" "$VS_TMP/go1" "$VS_TMP/hold2.json"
h2=$!
both_first() { grep -q first "$VS_TMP/hold1.json" && grep -q first "$VS_TMP/hold2.json"; }
wait_until 60 "300 connections through the service" both_first
first=$("$VS_PY" -c '
import json, sys
t = {}
for f in sys.argv[1:]:
    for k, v in json.loads(open(f).readline())["first"].items():
        t[k] = t.get(k, 0) + v
print(json.dumps(t))' "$VS_TMP/hold1.json" "$VS_TMP/hold2.json")
log "300 connections by backend: $first"
vs_json_true 'sum(d.values()) == 300 and set(d) == {"b1", "b2", "b3"} and min(d.values()) >= 60' \
    <<<"$first" || fail "connections not spread fairly over the three backends: $first"
nat_sessions=$(vsctl --json sessions --max 1000 | vs_json 'len([s for s in d if s.get("nat")])')
assert_int -ge "$nat_sessions" 300 "NAT sessions listed"
vsctl --json sessions --max 1000 | vs_json_true 'all(s["nat"]["dst"].startswith("10.59.1") and s["nat"]["dport"] == 8080 for s in d if s.get("nat") and s["dst"] == "10.96.0.10")' ||
    fail "sessions do not show their backends: $(vsctl sessions --max 5)"
# The backends saw the clients' own addresses (no source NAT inside the cluster).
out=$(ip netns exec "$C1" "$VS_PY" "$WHO" many 10.96.0.10 80 6)
vs_json_true 'd["peers"] == ["10.59.1.2"]' <<<"$out" || fail "backends saw another source: $out"

# Remove b3: new connections avoid it, the 200-odd held ones to b1 and b2 stay.
run_ok "remove backend 3" vsctl service set web backends=10.59.11.2:8080,10.59.12.2:8080
out=$(ip netns exec "$C1" "$VS_PY" "$WHO" many 10.96.0.10 80 60)
vs_json_true '"b3" not in d["names"] and sum(d["names"].values()) == 60' <<<"$out" ||
    fail "new connections still reach the removed backend: $out"
touch "$VS_TMP/go1"
vs_wait_exit "$h1" 60 || fail "client 1's held connections did not finish"
vs_wait_exit "$h2" 60 || fail "client 2's held connections did not finish"
again=$("$VS_PY" -c '
import json, sys
same = broken = kept = 0
for f in sys.argv[1:]:
    lines = open(f).read().splitlines()
    first = json.loads(lines[0])["first"]
    a = json.loads(lines[1])
    same += a["same"]; broken += a["broken"]
    kept += first.get("b1", 0) + first.get("b2", 0)
print(json.dumps({"same": same, "broken": broken, "to_b1_b2": kept}))' "$VS_TMP/hold1.json" "$VS_TMP/hold2.json")
log "held connections after the removal: $again"
vs_json_true 'd["same"] == 300 and d["broken"] == 0' <<<"$again" ||
    fail "established connections moved or broke when a backend was removed: $again"
run_ok "add backend 3 back" vsctl service set web backends="$B"
out=$(ip netns exec "$C2" "$VS_PY" "$WHO" many 10.96.0.10 80 150)
log "150 new connections after adding b3 back: $out"
vs_json_true '0.18 <= d["names"].get("b3", 0) / 150 <= 0.5' <<<"$out" ||
    fail "adding a backend back should move about a third of new flows to it: $out"

# UDP service.
run_ok "DNS-like UDP service" vsctl service add dns 10.96.0.53:53 proto=udp \
    backends=10.59.11.2:5353,10.59.12.2:5353,10.59.13.2:5353
out=$(ip netns exec "$C1" "$VS_PY" "$WHO" query 10.96.0.53 53 20)
vs_json_true 'd["answered"] == 20 and d["sources"] == ["10.96.0.53:53"]' <<<"$out" ||
    fail "UDP service: answers lost or from another source: $out"
log "UDP service: $out"

# Client-IP affinity: every new connection of one client goes to one backend.
run_ok "a service with client-IP affinity" vsctl service add sticky 10.96.0.11:80 proto=tcp \
    backends="$B" affinity=client-ip
for ns in "$C1" "$C2"; do
    out=$(ip netns exec "$ns" "$VS_PY" "$WHO" many 10.96.0.11 80 20)
    vs_json_true 'len(d["names"]) == 1 and sum(d["names"].values()) == 20' <<<"$out" ||
        fail "affinity: one client's connections went to several backends: $out"
    log "client-IP affinity: $out"
done

# IPv6: a TCP and a UDP service over two backends.
vs_ns_ipv6 "$C1" eth0
ip -n "$C1" addr add fd59:1::2/64 dev eth0 nodad
ip -n "$C1" -6 route add default via fd59:1::1
run_ok "client 1's IPv6 gateway" vsctl addr add rc1 fd59:1::1/64
for i in 1 2; do
    vs_ns_ipv6 "${BK[i - 1]}" eth0
    ip -n "${BK[i - 1]}" addr add "fd59:1$i::2/64" dev eth0 nodad
    ip -n "${BK[i - 1]}" -6 route add default via "fd59:1$i::1"
    run_ok "backend $i's IPv6 gateway" vsctl addr add "rb$i" "fd59:1$i::1/64"
done
B6="[fd59:11::2]:8080,[fd59:12::2]:8080"
run_ok "IPv6 service" vsctl service add web6 "[fd96::10]:80" proto=tcp backends="$B6"
run_ok "IPv6 UDP service" vsctl service add dns6 "[fd96::53]:53" proto=udp \
    backends="[fd59:11::2]:5353,[fd59:12::2]:5353"
v6_ready() {
    ip netns exec "$C1" "$VS_PY" "$WHO" many fd96::10 80 1 >/dev/null 2>&1
}
wait_until 20 "IPv6 service reachable (neighbours resolved)" v6_ready
out=$(ip netns exec "$C1" "$VS_PY" "$WHO" many fd96::10 80 40)
vs_json_true 'sum(d["names"].values()) == 40 and set(d["names"]) == {"b1", "b2"} and d["peers"] == ["fd59:1::2"]' \
    <<<"$out" || fail "IPv6 service: $out"
log "IPv6 service [fd96::10]:80: $out"
out=$(ip netns exec "$C1" "$VS_PY" "$WHO" query fd96::53 53 10)
vs_json_true 'd["answered"] == 10 and d["sources"] == ["[fd96::53]:53"]' <<<"$out" ||
    fail "IPv6 UDP service: $out"

# NodePort, from outside through the uplink (to the node's address).
run_ok "a NodePort service" vsctl service add np 10.96.0.20:80 proto=tcp backends="$B" nodeport=30080
out=$(ip netns exec "$OUT" "$VS_PY" "$WHO" many 192.0.2.1 30080 30)
vs_json_true 'sum(d["names"].values()) == 30 and len(d["names"]) >= 2' <<<"$out" ||
    fail "NodePort from outside: $out"
log "NodePort 192.0.2.1:30080 from outside: $out"

# Masquerade: pods' traffic leaves with the node's address; replies come back.
run_ok "masquerade on the uplink" vsctl nat masquerade up on
out=$(ip netns exec "$C1" "$VS_PY" "$WHO" many 192.0.2.2 9000 5)
vs_json_true 'd["peers"] == ["192.0.2.1"] and d["names"] == {"outside": 5}' <<<"$out" ||
    fail "masqueraded TCP: the outside should see 192.0.2.1: $out"
out=$(ip netns exec "$C2" "$VS_PY" "$WHO" query 192.0.2.2 9001 5)
vs_json_true 'd["answered"] == 5 and d["names"] == {"outside": 5}' <<<"$out" ||
    fail "masqueraded UDP: $out"
vs_ping "$C1" 192.0.2.2
vs_ping "$C2" 192.0.2.2
log "masquerade: TCP, UDP and ping from both clients reach the outside as 192.0.2.1"
# A connection from the outside to a pod (the outside given a route to client 1's subnet)
# is not masqueraded on its way back: the pod sees the outside's address, and its replies
# leave with its own.
ip netns exec "$C1" "$VS_PY" "$WHO" serve c1 7000 >/dev/null 2>&1 &
vs_track_pid $!
wait_until 10 "client 1's server listening" sh -c "ip netns exec '$C1' ss -Hltn 'sport = :7000' | grep -q LISTEN"
ip -n "$OUT" route add 10.59.1.0/24 via 192.0.2.1
out=$(ip netns exec "$OUT" "$VS_PY" "$WHO" many 10.59.1.2 7000 3)
vs_json_true 'd["names"] == {"c1": 3} and d["peers"] == ["192.0.2.2"]' <<<"$out" ||
    fail "a connection from the outside to a pod: $out"
log "outside -> pod through the masquerading uplink, replies untranslated: $out"
# An ICMP error about a masqueraded packet goes back to its sender, translated: UDP to a
# closed port of the outside is refused at the client.
out=$(ip netns exec "$C1" "$VS_PY" "$WHO" udp-refused 192.0.2.2 9999)
vs_json_true 'd["refused"]' <<<"$out" ||
    fail "the outside's port unreachable did not reach the masqueraded client: $out"
log "ICMP port unreachable from the outside translated back to the client"
# Checksums of what leaves, by scapy on a capture at the outside: UDP from a backend
# (whose kernel computed the whole checksum, updated by the switch) and pings. (The
# clients' UDP leaves partial, as it came: the outside's kernel completes and checks it,
# as it did above; a capture shows its pseudo-header sum.)
ip netns exec "$OUT" tcpdump -i eth0 -U -w "$VS_TMP/out.pcap" 'udp port 9001 or icmp' \
    >/dev/null 2>"$VS_TMP/tcpdump.log" &
dump=$!
vs_track_pid "$dump"
wait_until 10 "tcpdump listening" grep -q "listening on" "$VS_TMP/tcpdump.log"
out=$(ip netns exec "${BK[1]}" "$VS_PY" "$WHO" query 192.0.2.2 9001 5)
vs_json_true 'd["answered"] == 5 and d["names"] == {"outside": 5}' <<<"$out" ||
    fail "masqueraded UDP from backend 2: $out"
vs_ping "$C1" 192.0.2.2
vs_ping "${BK[1]}" 192.0.2.2
count_dumped() { [[ -s "$VS_TMP/out.pcap" ]] && (($(tcpdump -r "$VS_TMP/out.pcap" 2>/dev/null | wc -l) >= 30)); }
wait_until 10 "the capture holds the packets" count_dumped
vs_stop_pid "$dump"
ip netns exec "$OUT" "$VS_PY" - "$VS_TMP/out.pcap" <<'PY' || fail "checksums of masqueraded packets"
import sys
from scapy.all import rdpcap, IP, UDP, ICMP
pkts = [p for p in rdpcap(sys.argv[1]) if IP in p and p[IP].src == "192.0.2.1"]
assert len(pkts) >= 15, "too few masqueraded packets captured: %d" % len(pkts)
for p in pkts:
    ip = p[IP]
    for layer in (IP, UDP, ICMP):
        if layer in p:
            got = p[layer].chksum
            q = IP(bytes(ip))
            del q[layer].chksum
            want = IP(bytes(q))[layer].chksum
            assert got == want, "%s checksum %#x, should be %#x: %r" % (layer.__name__, got, want, p.summary())
print("%d masqueraded packets (UDP, ICMP echo), checksums right" % len(pkts))
PY

# A Docker-style port mapping: the node's 8081 to backend 1's 8080.
run_ok "port mapping" vsctl nat portmap add up tcp 8081 10.59.11.2:8080
out=$(ip netns exec "$OUT" "$VS_PY" "$WHO" many 192.0.2.1 8081 3)
vs_json_true 'd["names"] == {"b1": 3} and d["peers"] == ["192.0.2.2"]' <<<"$out" ||
    fail "port mapping: $out"
vsctl --json nat show | vs_json_true 'len(d["portmaps"]) == 1' ||
    fail "nat show: $(vsctl --json nat show)"

# Hairpin: backend 1 reaches a service that picks itself.
run_ok "a service of backend 1 only" vsctl service add solo 10.96.0.30:80 proto=tcp     backends=10.59.11.2:8080
out=$(ip netns exec "${BK[0]}" "$VS_PY" "$WHO" many 10.96.0.30 80 3)
vs_json_true 'd["names"] == {"b1": 3} and d["peers"] == ["10.96.0.30"]' <<<"$out" ||
    fail "hairpin: $out"
log "hairpin: b1 -> 10.96.0.30 -> b1, seen from the VIP: $out"

# No backend taking new flows: refused at once, not black-holed.
run_ok "a drained service" vsctl service add none 10.96.0.40:80 proto=tcp     backends=10.59.11.2:8080*0
out=$(ip netns exec "$C1" "$VS_PY" "$WHO" refused 10.96.0.40 80)
vs_json_true 'd["refused"] is True and d["seconds"] < 3' <<<"$out" ||
    fail "a service without backends should refuse: $out"
log "no backends: $out"

# Bad input: a clear error, nothing changed.
nat_state() { vsctl --json service list; vsctl --json nat show; }
VS_BEFORE=$(nat_state)
refused() { vs_refused nat_state "$@"; }
refused "outside every network|reach" service add bad 10.96.0.50:80 proto=tcp backends=172.31.9.9:80
refused "port" service add bad 10.96.0.50:0 proto=tcp backends=10.59.11.2:8080
refused "port" service add bad 10.96.0.50:65536 proto=tcp backends=10.59.11.2:8080
refused "port" service add bad 10.96.0.50:80 proto=tcp backends=10.59.11.2:0
refused "already" service add bad 10.96.0.10:80 proto=tcp backends=10.59.11.2:8080
refused "proto" service add bad 10.96.0.50:80 proto=sctp backends=10.59.11.2:8080
refused "family|IPv4|IPv6" service add bad 10.96.0.50:80 proto=tcp backends="[fd00::1]:80"
refused "nodeport" service add bad 10.96.0.50:80 proto=tcp backends=10.59.11.2:8080 nodeport=30080
refused "nope|interface" nat masquerade nope on
refused "outside every network" nat portmap add up tcp 8082 172.31.9.9:80
refused "already" nat portmap add up tcp 8081 10.59.12.2:8080
vs_refused_report

# The session limit under a flood of new connections to a service: 3,000 SYNs from
# spoofed sources (nobody answers the backends' SYN-ACKs, so each stays half-open) while
# an established connection keeps talking.
run_ok "no sessions yet" vsctl sessions flush
run_ok "a small session table" vsctl session set limit=400
ip netns exec "$C1" "$VS_PY" "$WHO" talk 10.96.0.10 80 10 \
    >"$VS_TMP/talk.json" 2>&1 &
talk=$!
vs_track_pid "$talk"
C2_GW=$(ip -n "$C2" neigh show 10.59.2.1 | awk '{print $5}')
ip netns exec "$C2" "$VS_PY" - "$C2_GW" <<'PY' || fail "scapy flood failed"
import random, sys
from scapy.all import Ether, IP, TCP, sendp, conf
conf.verb = 0
pkts = [Ether(dst=sys.argv[1]) / IP(src="10.59.2.%d" % (100 + i % 100), dst="10.96.0.10") /
        TCP(sport=1024 + i, dport=80, flags="S", seq=random.getrandbits(32))
        for i in range(3000)]
sendp(pkts, iface="eth0", inter=0.0005)
PY
show=$(vsctl --json session show)
log "after the flood: $(vs_json '"%d live entries (limit %d), %d evicted, %d refused" % (d["live"], d["limit"], d["evicted"], d["refused"])' <<<"$show")"
vs_json_true 'd["live"] <= 400 and d["evicted"] >= 1000' <<<"$show" ||
    fail "the session limit did not hold: $show"
vs_wait_exit "$talk" 30 || fail "the talking client did not finish"
talked=$(cat "$VS_TMP/talk.json")
vs_json_true 'd["sent"] >= 50 and d["answered"] == d["sent"] and len(d["names"]) == 1' <<<"$talked" ||
    fail "the established connection through the service lost messages during the flood: $talked"
log "established connection through the flood: $talked"
run_ok "default limit" vsctl session set limit=262144
run_ok "flush" vsctl sessions flush

# A restart keeps services, masquerade and port mappings; connections held across it
# through a service and through masquerade go on (their sessions are not saved, but the
# first packet after the restart picks the same backend and the same port again: both are
# hashes of the flow).
ip netns exec "$C1" "$VS_PY" "$WHO" hold 10.96.0.10 80 20 "$VS_TMP/go2" >"$VS_TMP/hold3.json" 2>&1 &
h3=$!
vs_track_pid "$h3"
ip netns exec "$C2" "$VS_PY" "$WHO" hold 192.0.2.2 9000 5 "$VS_TMP/go2" >"$VS_TMP/hold4.json" 2>&1 &
h4=$!
vs_track_pid "$h4"
held() { grep -q first "$VS_TMP/hold3.json" && grep -q first "$VS_TMP/hold4.json"; }
wait_until 20 "connections held through the service and the masquerade" held
stop_vswitchd
restart_vswitchd
vsctl --json service list | vs_json_true 'len(d) == 8' || fail "services after restart: $(vsctl service list)"
vsctl --json nat show | vs_json_true 'len(d["portmaps"]) == 1 and len(d["masquerade"]) == 1' ||
    fail "nat after restart: $(vsctl --json nat show)"
again() {
    ip netns exec "$C1" "$VS_PY" "$WHO" many 10.96.0.10 80 3 >"$VS_TMP/again.json" 2>/dev/null &&
        vs_json_true 'sum(d["names"].values()) == 3' <"$VS_TMP/again.json"
}
wait_until 20 "the service answers after the restart" again
out=$(ip netns exec "$C1" "$VS_PY" "$WHO" many 192.0.2.2 9000 2)
vs_json_true 'd["peers"] == ["192.0.2.1"]' <<<"$out" || fail "masquerade after restart: $out"
log "after a restart: services, masquerade and port mapping back"
touch "$VS_TMP/go2"
vs_wait_exit "$h3" 60 || fail "the connections held through the service did not finish"
vs_wait_exit "$h4" 60 || fail "the connections held through the masquerade did not finish"
for f in hold3 hold4; do
    r=$(sed -n 2p "$VS_TMP/$f.json")
    log "held across the restart ($f): $r"
    vs_json_true 'd["broken"] == 0 and d["same"] == sum(d["again"].values())' <<<"$r" ||
        fail "connections held across the restart broke or moved: $(cat "$VS_TMP/$f.json")"
done

vs_pass
