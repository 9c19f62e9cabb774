#!/usr/bin/env bash
# A route through a next-hop router: host a -- switch -- namespace r (a Linux router,
# ip_forward=1, two veths) -- host c. The switch has `route add 10.38.3.0/24 via 10.38.2.2`
# (r, resolved by ARP); r routes back via the switch. Required:
#  - a pings c and c pings a, 5/5, the replies arriving with TTL 62 (64, less one at the
#    switch and one at r); the switch knows r as a neighbour on rr;
#  - ping -t 1 gets time exceeded from the switch (10.38.1.1), ping -t 2 from r (10.38.2.2:
#    the switch passed TTL 1 on to r), ping -t 3 reaches c;
#  - a UDP stream a -> c (500 datagrams, 1 ms apart) arrives whole at a socket in c, every
#    datagram with TTL 62 (IP_RECVTTL);
#  - an interface without addresses routed by a `dev` route alone: routed from that
#    transaction on (a pings x behind it), unrouted once its last route goes.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "38-l3-nexthop"
start_vswitchd

vs_host a 10.38.1.2/24
NSA=$VS_NS HA=$VS_HOSTIF
vs_host r 10.38.2.2/24
NSR=$VS_NS HR=$VS_HOSTIF
NSC=$(vs_ifname c)
vs_netns_add "$NSC"
ip -n "$NSR" link add eth1 type veth peer name eth0 netns "$NSC" ||
    fail "cannot create veth $NSR/eth1 <-> $NSC/eth0"
vs_ns_iface_up "$NSR" eth1 10.38.3.1/24
vs_ns_iface_up "$NSC" eth0 10.38.3.2/24
ip netns exec "$NSR" sysctl -qw net.ipv4.ip_forward=1
ip -n "$NSA" route add default via 10.38.1.1
ip -n "$NSR" route add 10.38.1.0/24 via 10.38.2.1
ip -n "$NSC" route add default via 10.38.3.1

run_ok "routed interface ra" vsctl iface add ra af_packet iface="$HA"
run_ok "routed interface rr" vsctl iface add rr af_packet iface="$HR"
run_ok "ra's address" vsctl addr add ra 10.38.1.1/24
run_ok "rr's address" vsctl addr add rr 10.38.2.1/24
run_ok "c's subnet via r" vsctl route add 10.38.3.0/24 via 10.38.2.2
got=$(vsctl --json route get 10.38.3.2 | vs_json '"%s via %s" % (d["prefix"], d["nexthops"][0]["via"])')
assert_eq "$got" "10.38.3.0/24 via 10.38.2.2" "route get 10.38.3.2"

vs_ping "$NSA" 10.38.3.2
vs_ping "$NSC" 10.38.1.2
vsctl --json neigh show | vs_json_true 'any(n["ip"] == "10.38.2.2" and n["iface"] == "rr" for n in d)' ||
    fail "the switch should have resolved r (10.38.2.2) on rr: $(vsctl neigh show)"
for dir in "$NSA 10.38.3.2" "$NSC 10.38.1.2"; do
    read -r ns dst <<<"$dir"
    out=$(ip netns exec "$ns" ping -c 1 -W 2 "$dst" 2>&1) || fail "ping $ns -> $dst: $out"
    grep -q 'ttl=62' <<<"$out" || fail "the reply from $dst should arrive with TTL 62 (64 - switch - r): $out"
done
log "replies both ways with TTL 62 (decremented by the switch and by r)"

# ttl_probe TTL: one ping a -> c with TTL; prints its output.
ttl_probe() { ip netns exec "$NSA" ping -c 1 -W 2 -t "$1" 10.38.3.2 2>&1 || true; }
out=$(ttl_probe 1)
grep -qi 'From 10.38.1.1 .*Time to live exceeded' <<<"$out" ||
    fail "ping -t 1: time exceeded should come from the switch (10.38.1.1): $out"
out=$(ttl_probe 2)
grep -qi 'From 10.38.2.2 .*Time to live exceeded' <<<"$out" ||
    fail "ping -t 2: time exceeded should come from r (10.38.2.2): $out"
out=$(ttl_probe 3)
grep -q '1 received' <<<"$out" || fail "ping -t 3 should reach c: $out"
log "ping -t 1: time exceeded from the switch; -t 2: from r; -t 3: reaches c"

# UDP: a socket in c counts datagrams and their TTLs (IP_RECVTTL).
N=500
report=$VS_TMP/udp-rx.json
ip netns exec "$NSC" "$VS_PY" - "$N" "$report" <<'PY' >"$VS_TMP/udp-rx.log" 2>&1 &
import json, socket, sys
n, path = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)  # <linux/in.h>; Python 3.11 lacks the name
s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
s.bind(("10.38.3.2", 5038))
s.settimeout(10)  # 10 s without a datagram ends the count
seqs, ttls = set(), {}
try:
    while len(seqs) < n:
        data, anc, _, _ = s.recvmsg(2048, socket.CMSG_SPACE(4))
        seqs.add(int.from_bytes(data[:4], "big"))
        for level, kind, val in anc:
            if level == socket.IPPROTO_IP and kind == socket.IP_TTL:
                t = int.from_bytes(val[:4], sys.byteorder)
                ttls[t] = ttls.get(t, 0) + 1
except socket.timeout:
    pass
json.dump({"received": len(seqs), "ttls": ttls}, open(path, "w"))
PY
rx_pid=$!
vs_track_pid "$rx_pid"
VS_LOGS+=("$VS_TMP/udp-rx.log")
# rx_listening: status only; fails the test at once if the receiver is gone.
rx_listening() {
    vs_alive "$rx_pid" || fail "the UDP receiver in c exited: $(cat "$VS_TMP/udp-rx.log")"
    ip netns exec "$NSC" ss -Hlun 'sport = :5038' | grep -q 5038
}
wait_until 10 "UDP receiver in c" rx_listening
ip netns exec "$NSA" "$VS_PY" - "$N" <<'PY' || fail "the UDP sender in a failed"
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[1])):
    s.sendto(i.to_bytes(4, "big") + b"vswitch-38" * 10, ("10.38.3.2", 5038))
    time.sleep(0.001)
PY
vs_wait_exit "$rx_pid" 20 || fail "the UDP receiver in c did not finish"
[[ "$VS_RC" == 0 ]] || fail "the UDP receiver in c failed: $(cat "$VS_TMP/udp-rx.log")"
got=$(vs_json '"%d %s" % (d["received"], sorted(d["ttls"].items()))' <"$report")
assert_eq "$got" "$N [('62', $N)]" "UDP a -> c: datagrams received and their TTLs"
log "UDP a -> c: $N of $N datagrams, all with TTL 62"

# An interface with no address, routed by a `dev` route alone (an unnumbered link, as a
# pod's): it routes from the transaction that adds the route, and stops with the last one.
vs_host x 10.77.0.2/24
NSX=$VS_NS HX=$VS_HOSTIF
run_ok "interface toward x, no address" vsctl iface add rx af_packet iface="$HX"
rx_mac=$(vsctl --json iface show rx | vs_json 'd["mac"]')
ip -n "$NSX" neigh add 10.77.0.1 lladdr "$rx_mac" dev eth0
ip -n "$NSX" route add default via 10.77.0.1
run_ok "a route out of it alone" vsctl route add 10.77.0.0/24 dev rx
vs_ping "$NSA" 10.77.0.2
unconnected() { vsctl --json drops | vs_json 'd["unconnected"]'; }
before=$(unconnected)
run_ok "its last route deleted" vsctl route del 10.77.0.0/24
# x's frames were dropped as unconnected before the route too: the count must grow now.
wait_until 10 "rx unrouted (its frames dropped as unconnected)" bash -c \
    "ip netns exec $NSX ping -c 1 -W 1 10.38.1.2 >/dev/null; (( \$($VSCTL_BIN --socket $VS_SOCK --json drops | $VS_PY -c 'import json,sys; print(json.load(sys.stdin)[\"unconnected\"])') > $before ))"
log "an unnumbered interface routes with its first dev route and stops with its last"

vs_pass
