#!/usr/bin/env bash
# Route changes never stall or drop forwarding of unaffected prefixes: a fixed-rate UDP
# stream (iperf3 -u, counted at the receiver) runs from a to b through the router while
# 10,000 routes (mixed lengths, /12 to /30, so groups below /24 are made and folded back)
# are added and deleted, twice. Every datagram must arrive.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "34-l3-churn"
start_vswitchd

vs_host a 10.34.1.2/24
NSA=$VS_NS HA=$VS_HOSTIF
vs_host b 10.34.2.2/24
NSB=$VS_NS HB=$VS_HOSTIF
ip -n "$NSA" route add default via 10.34.1.1
ip -n "$NSB" route add default via 10.34.2.1
run_ok "ra" vsctl iface add ra af_packet iface="$HA"
run_ok "rb" vsctl iface add rb af_packet iface="$HB"
run_ok "ra's address" vsctl addr add ra 10.34.1.1/24
run_ok "rb's address" vsctl addr add rb 10.34.2.1/24
vs_ping "$NSA" 10.34.2.2

"$VS_PY" - "$VS_TMP" <<'PY'
import ipaddress, random, sys
d = sys.argv[1]
rnd = random.Random(34)
nets = set()
while len(nets) < 10000:
    l = rnd.choice([12, 16, 20, 22, 24, 24, 24, 26, 28, 30])
    nets.add(ipaddress.ip_network(((100 << 24) | rnd.getrandbits(24), l), strict=False))
with open(f"{d}/add.txt", "w") as f:
    f.writelines(f"route add {n} via 10.34.2.99\n" for n in sorted(nets))
with open(f"{d}/del.txt", "w") as f:
    f.writelines(f"route del {n}\n" for n in sorted(nets))
PY

vs_iperf_start_server "$NSB" 10.34.2.2
json=$VS_TMP/udp.json
timeout 60 ip netns exec "$NSA" iperf3 -c 10.34.2.2 -u -b 2M -l 200 -t 8 -J </dev/null >"$json" 2>&1 &
client=$!
vs_track_pid "$client"
for round in 1 2; do
    run_ok "round $round: 10,000 routes added" vsctl transaction "$VS_TMP/add.txt"
    run_ok "round $round: and deleted" vsctl transaction "$VS_TMP/del.txt"
done
wait "$client" || fail "iperf3 -u failed: $(tail -5 "$json")"
read -r sent lost <<<"$(vs_json '"%d %d" % (d["end"]["sum"]["packets"], d["end"]["sum"]["lost_packets"])' <"$json")"
assert_int -gt "$sent" 1000 "datagrams sent"
assert_int -eq "$lost" 0 "datagrams lost while routes changed"
log "UDP stream through 2 x 10,000 route adds and deletes: $sent datagrams, $lost lost"
vs_stop_pid "$VS_IPERF_SERVER_PID" TERM 10

vs_pass
