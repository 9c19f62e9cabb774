#!/usr/bin/env bash
# The learned neighbour table's limit holds under an ARP flood while known hosts keep
# talking: with `neigh set limit=50`, a namespace on a /16 sends 2,000 gratuitous ARPs from
# random addresses and MACs (scapy) while a pings b through the router; no ping is lost,
# the router learns at most 50 neighbours (`neigh show`, state reachable) and a and b are
# among them.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "36-l3-arp-flood"
start_vswitchd

vs_host a 10.36.1.2/24
NSA=$VS_NS HA=$VS_HOSTIF
vs_host b 10.36.2.2/24
NSB=$VS_NS HB=$VS_HOSTIF
vs_host f 10.37.0.1/16
NSF=$VS_NS HF=$VS_HOSTIF
ip -n "$NSA" route add default via 10.36.1.1
ip -n "$NSB" route add default via 10.36.2.1
for ifc in ra:"$HA":10.36.1.1/24 rb:"$HB":10.36.2.1/24 rf:"$HF":10.37.255.254/16; do
    IFS=: read -r name host cidr <<<"$ifc"
    run_ok "routed interface $name" vsctl iface add "$name" af_packet iface="$host"
    run_ok "$name's address" vsctl addr add "$name" "$cidr"
done
run_ok "neighbour limit 50" vsctl neigh set limit=50
vs_ping "$NSA" 10.36.2.2

pinglog=$VS_TMP/ping.log
ip netns exec "$NSA" ping -c 100 -i 0.05 -W 1 10.36.2.2 >"$pinglog" 2>&1 &
pinger=$!
vs_track_pid "$pinger"
ip netns exec "$NSF" "$VS_PY" - <<'PY' >/dev/null 2>&1
import random
from scapy.all import ARP, Ether, conf, sendp
conf.verb = 0
rnd = random.Random(36)
frames = []
for _ in range(2000):
    ip = "10.37.%d.%d" % (rnd.randrange(0, 255), rnd.randrange(1, 254))
    mac = "02:37:%02x:%02x:%02x:%02x" % tuple(rnd.randrange(256) for _ in range(4))
    frames.append(Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") /
                  ARP(op=1, hwsrc=mac, psrc=ip, hwdst="00:00:00:00:00:00", pdst=ip))
sendp(frames, iface="eth0", inter=0.0005)
PY
wait "$pinger" || true
grep -q ' 0% packet loss' "$pinglog" || fail "pings lost during the ARP flood: $(tail -2 "$pinglog")"
log "a -> b during the flood: $(grep -o '[0-9]* received' "$pinglog") of 100"
vsctl --json neigh show >"$VS_TMP/neigh.json"
learned=$(vs_json 'len([n for n in d if n["state"] == "reachable"])' <"$VS_TMP/neigh.json")
assert_int -le "$learned" 50 "learned neighbours (limit 50)"
assert_int -ge "$learned" 40 "learned neighbours (the flood filled the table)"
for ip in 10.36.1.2 10.36.2.2; do
    vs_json_true 'any(n["ip"] == ip for n in d)' ip="$ip" <"$VS_TMP/neigh.json" ||
        fail "$ip should still be a neighbour"
done
log "after 2,000 gratuitous ARPs: $learned neighbours learned (limit 50), a and b kept"

vs_pass
