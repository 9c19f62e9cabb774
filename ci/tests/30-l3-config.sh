#!/usr/bin/env bash
# L3 configuration through vsctl against a running vswitchd (null interfaces: the control
# plane's part; 31-l3-lpm checks the FIB the routes go into):
#  - a VRF; interfaces in it at add (vrf=) and by iface set; a bridge's routed interface
#    bvi:BR moved into it;
#  - IPv4, IPv6 and link-local addresses, each with its connected and local routes;
#  - routes via a gateway, ECMP, onlink with dev, straight out of dev, through an IPv6
#    link-local gateway, in a VRF, replaced by a second add, deleted;
#  - static neighbours (replaced by a second add), the neighbour table's settings,
#    proxy-ARP;
#  - the --json forms (route show: {prefix, vrf, nexthops: [{via, iface}]}, neigh show:
#    {iface, ip, mac, state}, addr list, vrf list, iface show) and the tables;
#  - watch: every L3 change is a config event;
#  - every bad input: exit non-zero, one "vsctl: ..." line on stderr that says what is
#    wrong, nothing changed (a bad line in a transaction file changes nothing either);
#  - 20,000 routes in one transaction;
#  - restart (SIGTERM) and crash (SIGKILL, the journal) restore all of it.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "30-l3-config"
start_vswitchd

# Watch config events from the start (text lines "SEQ config CHANGE OBJECT").
watch_log=$VS_TMP/watch.log
timeout 300 "$VSCTL_BIN" --socket "$VS_SOCK" watch config >"$watch_log" 2>&1 &
watch_pid=$!
vs_track_pid "$watch_pid"
# The stream is open once a change shows up in it (neigh set is idempotent).
watching() {
    vsctl neigh set age=300 >/dev/null && grep -q 'config set_neighbor_config' "$watch_log"
}
wait_until 10 "the watch stream to open" watching

MAC2=02:00:00:00:30:02
MAC7=02:00:00:00:30:07
MAC9=02:00:00:00:30:09
cat >"$VS_TMP/l3.txt" <<EOF
vrf add 10
iface add up0 null
iface add up1 null
iface add pod null
iface add red null vrf=10
iface add blue null
iface set blue vrf=10
iface add m null
bridge add br0
bridge attach br0 m
iface set bvi:br0 vrf=10
addr add up0 10.0.0.1/24
addr add up0 2001:db8::1/64
addr add up0 fe80::1/64
addr add up1 10.0.1.1/24
addr add red 10.0.0.1/24
addr add bvi:br0 10.9.0.1/24
EOF
run_ok "vrf, interfaces and addresses (one transaction)" vsctl transaction "$VS_TMP/l3.txt"
run_ok "route via a gateway" vsctl route add 10.2.0.0/16 via 10.0.0.254
run_ok "ECMP default route" vsctl route add 0.0.0.0/0 via 10.0.0.254,10.0.1.254
run_ok "onlink route" vsctl route add 10.244.1.0/24 via 10.244.1.0 dev pod onlink
run_ok "route out of dev" vsctl route add 10.1.1.5/32 dev pod
run_ok "IPv6 route via link-local" vsctl route add 2001:db8:5::/48 via fe80::9 dev up0
run_ok "route in vrf 10 via bvi:br0" vsctl route add 10.3.0.0/16 via 10.9.0.7 vrf=10
run_ok "default route in vrf 10" vsctl route add 0.0.0.0/0 via 10.0.0.9 vrf=10
run_ok "neighbour" vsctl neigh add up0 10.0.0.2 02:00:00:00:30:01
run_ok "neighbour replaced" vsctl neigh add up0 10.0.0.2 $MAC2
run_ok "neighbour on bvi:br0" vsctl neigh add bvi:br0 10.9.0.7 $MAC7
run_ok "IPv6 link-local neighbour" vsctl neigh add up0 fe80::9 $MAC9
run_ok "neighbour table settings" vsctl neigh set limit=1000 age=60
run_ok "proxy-arp" vsctl proxy-arp pod on
log "configured"

# The route add reply, and a replace.
reply=$(vsctl --json route add 10.2.0.0/16 via 10.0.1.254)
vs_json_true '(d["prefix"] == "10.2.0.0/16" and d["origin"] == "static" and
    d["nexthops"] == [{"via": "10.0.1.254", "iface": "up1"}])' <<<"$reply" ||
    fail "route add --json (replace): $reply"

# --json forms.
routes=$(vsctl --json route show)
log "route show --json: $(vs_json 'len(d)' <<<"$routes") routes"
# route R [VRF]: the route of prefix R in VRF (default 0), as {via, iface} pairs + origin.
route_of() {
    vs_json 'first([r["origin"], [(h["via"], h["iface"]) for h in r["nexthops"]]]
                    for r in d if r["prefix"] == p and r["vrf"] == v)' p="$1" v:="${2:-0}" \
        <<<"$routes"
}
expect_route() {
    local got
    got=$(route_of "$1" "$2")
    assert_eq "$got" "$3" "route $1 vrf $2"
}
expect_route 0.0.0.0/0 0 '["static", [["10.0.0.254", "up0"], ["10.0.1.254", "up1"]]]'
expect_route 10.2.0.0/16 0 '["static", [["10.0.1.254", "up1"]]]'
expect_route 10.244.1.0/24 0 '["static", [["10.244.1.0", "pod"]]]'
expect_route 10.1.1.5/32 0 '["static", [[null, "pod"]]]'
expect_route 2001:db8:5::/48 0 '["static", [["fe80::9", "up0"]]]'
expect_route 10.0.0.0/24 0 '["connected", [[null, "up0"]]]'
expect_route 10.0.0.1/32 0 '["local", [[null, "up0"]]]'
expect_route 2001:db8::/64 0 '["connected", [[null, "up0"]]]'
expect_route 2001:db8::1/128 0 '["local", [[null, "up0"]]]'
expect_route 10.0.0.0/24 10 '["connected", [[null, "red"]]]'
expect_route 10.9.0.0/24 10 '["connected", [[null, "bvi:br0"]]]'
expect_route 10.3.0.0/16 10 '["static", [["10.9.0.7", "bvi:br0"]]]'
expect_route 0.0.0.0/0 10 '["static", [["10.0.0.9", "red"]]]'
vs_json_true 'all(set(r) >= {"prefix", "vrf", "nexthops", "onlink", "origin"} and
    all(set(h) == {"via", "iface"} for h in r["nexthops"]) for r in d)' <<<"$routes" ||
    fail "route show --json lacks fields: $routes"
vs_json_true 'first(r for r in d if r["prefix"] == "10.244.1.0/24")["onlink"]' <<<"$routes" ||
    fail "the onlink route is not marked onlink"
vs_json_true 'not any(r["prefix"].startswith("fe80") for r in d)' <<<"$routes" ||
    fail "a link-local address made a route: $routes"
vrf10=$(vsctl --json route show vrf=10)
vs_json_true 'len(d) == 6 and all(r["vrf"] == 10 for r in d)' <<<"$vrf10" ||
    fail "route show vrf=10: $vrf10"
vsctl route show | grep -Eq '^ +0 +0\.0\.0\.0/0 +static +via 10\.0\.0\.254 dev up0, via 10\.0\.1\.254 dev up1$' ||
    fail "route show table: $(vsctl route show)"

neighs=$(vsctl --json neigh show)
vs_json_true 'sorted((n["iface"], n["ip"], n["mac"], n["state"]) for n in d) == [
    ("bvi:br0", "10.9.0.7", m7, "permanent"), ("up0", "10.0.0.2", m2, "permanent"),
    ("up0", "fe80::9", m9, "permanent")]' m2=$MAC2 m7=$MAC7 m9=$MAC9 <<<"$neighs" ||
    fail "neigh show --json: $neighs"
assert_eq "$(vsctl --json neigh show bvi:br0 | vs_json 'len(d)')" 1 "neigh show bvi:br0"
vsctl neigh show | grep -Eq "^up0 +10\.0\.0\.2 +$MAC2 +permanent$" || fail "neigh show table"
assert_eq "$(vsctl --json neigh config)" "$(printf '{\n  "limit": 1000,\n  "age": 60\n}')" \
    "neigh config --json"

addrs=$(vsctl --json addr list)
vs_json_true 'sorted((a["iface"], a["address"], a["vrf"]) for a in d) == [
    ("bvi:br0", "10.9.0.1/24", 10), ("red", "10.0.0.1/24", 10), ("up0", "10.0.0.1/24", 0),
    ("up0", "2001:db8::1/64", 0), ("up0", "fe80::1/64", 0), ("up1", "10.0.1.1/24", 0)]' \
    <<<"$addrs" || fail "addr list --json: $addrs"
assert_eq "$(vsctl --json addr list up0 | vs_json 'len(d)')" 3 "addr list up0"
vrfs=$(vsctl --json vrf list)
vs_json_true '[(v["id"], v["interfaces"], v["routes_v4"], v["routes_v6"]) for v in d] == [
    (0, ["m", "pod", "up0", "up1"], 8, 3), (10, ["blue", "red", "bvi:br0"], 6, 0)]' \
    <<<"$vrfs" || fail "vrf list --json: $vrfs"
vs_json_true 'd["vrf"] == 10 and d["addresses"] == ["10.0.0.1/24"]' \
    <<<"$(vsctl --json iface show red)" || fail "iface show red --json"
assert_eq "$(iface_stat pod proxy_arp)" true "pod's proxy_arp"
vs_json_true 'd["vrf"] == 10' <<<"$(vsctl --json bridge show br0)" || fail "bridge br0's vrf"

# Every change above was a config event.
for e in "add_vrf 10" "add_address up0/10.0.0.1/24" "add_route 0/0.0.0.0/0" \
    "add_route 10/10.3.0.0/16" "add_neighbor bvi:br0/10.9.0.7" "set_proxy_arp pod" \
    "set_interface bvi:br0"; do
    wait_until 10 "config event '$e'" grep -q "config $e\$" "$watch_log"
done
log "watch: $(grep -c ' config ' "$watch_log") config events"
# (An open Watch stream holds vswitchd's graceful stop: the watcher goes first.)
vs_stop_pid "$watch_pid" TERM 5

# ---------------------------------------------------------------------------------------
# Bad input: one line, says what is wrong, nothing changed.

# state: the L3 configuration as one document.
state() {
    {
        vsctl --json vrf list
        vsctl --json addr list
        vsctl --json route show
        vsctl --json neigh show
        vsctl --json neigh config
        vsctl --json iface list | vs_json '[(i["name"], i["vrf"], i["proxy_arp"], i["addresses"]) for i in d]'
        vsctl --json bridge list | vs_json '[(b["name"], b["vrf"], b["members"]) for b in d]'
    } 2>&1
}
VS_BEFORE=$(state)
refused() { vs_refused state "$@"; }

refused 'vrf must be from 0 to 4095, not 4096' vrf add 4096
refused 'vrf 0 always exists' vrf add 0
refused 'vrf 10 exists already' vrf add 10
refused 'invalid VRF id "blue": a VRF id is a number from 0 to 4095' vrf add blue
refused 'vrf 0 cannot be deleted' vrf del 0
refused 'vrf 10 is used by route 0\.0\.0\.0/0' vrf del 10
refused 'vrf 11 not found' vrf del 11
refused 'interface "up0" has address 10\.0\.0\.1/24: delete its addresses, neighbours and routes before moving it to vrf 10' \
    iface set up0 vrf=10
refused 'interface "pod" has route 10\.1\.1\.5/32 \(vrf 0\) through it' iface set pod vrf=10
refused '"vrf=x": vrf must be a number from 0 to 4095' iface set up0 vrf=x
refused 'vrf 99 not found' iface add x9 null vrf=99
refused 'bvi:br0 is bridge "br0".s routed interface: vrf= is the one setting it takes' \
    iface set bvi:br0 down
refused 'interface "m" is a member of bridge "br0", which makes it L2 only \(bvi:br0 is' \
    addr add m 10.5.0.1/24
refused 'address "10\.5\.0\.1" is not ADDRESS/LENGTH' addr add up0 10.5.0.1
refused 'address 10\.5\.0\.1/33: the length of an IPv4 prefix is 0 to 32' addr add up0 10.5.0.1/33
refused 'address 10\.0\.0\.1 is already on interface "up0" in vrf 0' addr add up1 10.0.0.1/24
refused 'subnet 10\.0\.0\.0/24 is already connected to interface "up0" in vrf 0' \
    addr add up1 10.0.0.5/24
refused 'bridge "nobr" not found \(bvi:nobr is its routed interface\)' addr add bvi:nobr 10.5.0.1/24
refused 'address 10\.0\.1\.1/24 of interface "up1" is needed by route 0\.0\.0\.0/0 \(vrf 0, via 10\.0\.1\.254\)' \
    addr del up1 10.0.1.1/24
refused 'address 10\.0\.0\.9/24 is not on interface "up0" \(it has 10\.0\.0\.1/24' addr del up0 10.0.0.9/24
refused 'prefix 10\.0\.0\.1/24 has host bits set: did you mean 10\.0\.0\.0/24\?' \
    route add 10.0.0.1/24 via 10.0.0.254
refused 'next-hop 10\.7\.0\.1 is not in a connected subnet of vrf 0' route add 10.5.0.0/16 via 10.7.0.1
refused 'next-hop 10\.7\.0\.1 is not in a connected subnet of interface "up0"' \
    route add 10.5.0.0/16 via 10.7.0.1 dev up0
refused 'vrf 99 not found' route add 10.5.0.0/16 via 10.0.0.254 vrf=99
refused 'onlink next-hop 10\.7\.0\.1 needs dev IFACE' route add 10.5.0.0/16 via 10.7.0.1 onlink
refused 'next-hop fe80::9 is IPv6 link-local: give dev IFACE' route add 2001:db8:6::/48 via fe80::9
refused 'interface "red" is in vrf 10, not vrf 0' route add 10.5.0.0/16 dev red
refused 'next-hop 2001:db8::fe is IPv6 but prefix 10\.5\.0\.0/16 is IPv4' \
    route add 10.5.0.0/16 via 2001:db8::fe
refused 'next-hop 10\.0\.0\.1 is the router.s own address \(on interface "up0"\)' \
    route add 10.5.0.0/16 via 10.0.0.1
hops17=$(seq -s, -f '10.0.0.%g' 100 116)
refused 'a route has at most 16 next-hops \(ECMP\), not 17' route add 10.5.0.0/16 via "$hops17"
refused 'give via NH\[,NH...\] and/or dev IFACE' route add 10.5.0.0/16
refused '"gw": expected via NH\[,NH...\], dev IFACE, onlink or vrf=ID' route add 10.5.0.0/16 gw 10.0.0.254
refused '10\.0\.0\.0/24 in vrf 0 is the connected route of an address of interface "up0"; a static route cannot replace it' \
    route add 10.0.0.0/24 via 10.0.1.254
refused 'route 10\.7\.0\.0/16 not found in vrf 0' route del 10.7.0.0/16
refused '10\.0\.0\.0/24 in vrf 0 is the connected route .*: delete the address instead' route del 10.0.0.0/24
refused 'vrf 99 not found' route show vrf=99
refused 'ip 255\.255\.255\.255 is the broadcast address' \
    neigh add up0 255.255.255.255 02:00:00:00:30:03
refused 'mac 01:00:5e:00:00:01 is a multicast address' neigh add up0 10.0.0.3 01:00:5e:00:00:01
refused 'interface "m" is a member of bridge "br0"' neigh add m 10.0.0.3 02:00:00:00:30:03
refused 'neighbour 10\.0\.0\.99 not found on interface "up0"' neigh del up0 10.0.0.99
refused 'limit must be from 1 to 1000000, not 0' neigh set limit=0
refused 'age must be from 1 to 86400 seconds, not 86401' neigh set age=86401
refused 'nothing to set: expected limit=N and/or age=SECONDS' neigh set
refused 'interface "m" is a member of bridge "br0"' proxy-arp m on
refused '"maybe": proxy-arp is on or off' proxy-arp up0 maybe
refused 'interface "pod" is used by route 10\.1\.1\.5/32 \(vrf 0\); delete the route first' iface del pod
refused 'interface "bvi:br0" is used by route 10\.3\.0\.0/16 \(vrf 10\); delete the route first' bridge del br0
refused 'interface "up1" has address 10\.0\.1\.1/24: a bridge member is L2 only' bridge attach br0 up1
refused 'interface "pod" has route .* through it: a cross-connected interface is L2 only' \
    xconnect add pod up1
printf 'route add 10.6.0.0/16 via 10.0.0.254\nroute add 10.7.0.0/16 via 10.8.0.1\n' >"$VS_TMP/bad.txt"
refused 'change 2 of 2 \(add_route\): next-hop 10\.8\.0\.1 is not in a connected subnet of vrf 0 .*; nothing was applied' \
    transaction "$VS_TMP/bad.txt"
log "$VS_REFUSED bad commands refused, configuration unchanged"
vs_refused_report

# ---------------------------------------------------------------------------------------
# Deletes, and a bulk load.

run_ok "route del" vsctl route del 10.2.0.0/16
run_ok "neigh del" vsctl neigh del up0 fe80::9
run_ok "addr del (link-local)" vsctl addr del up0 fe80::1/64
run_ok "route del vrf=10" vsctl route del 0.0.0.0/0 vrf=10
run_ok "addr add and del" vsctl addr add up1 10.0.2.1/24
run_ok "addr del" vsctl addr del up1 10.0.2.1/24
assert_eq "$(vsctl --json route show | vs_json '[r["prefix"] for r in d if r["prefix"].startswith("10.0.2.") or r["prefix"] == "10.2.0.0/16"]')" \
    "[]" "routes gone with their address and by route del"

n=20000
"$VS_PY" - "$VS_TMP/bulk.txt" "$n" <<'EOF'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        a = (20 << 24) + (i << 8)
        f.write("route add %d.%d.%d.0/24 via 10.0.0.254\n" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255))
EOF
t0=$(date +%s%N)
run_ok "$n routes in one transaction" vsctl transaction "$VS_TMP/bulk.txt" >/dev/null
t1=$(date +%s%N)
log "$n routes in one transaction (vsctl parse, gRPC, stage, journal): $(((t1 - t0) / 1000000)) ms"
v4=$(vsctl --json vrf list | vs_json 'first(v["routes_v4"] for v in d if v["id"] == 0)')
assert_eq "$v4" $((7 + n)) "IPv4 routes in vrf 0 after the bulk load"

# ---------------------------------------------------------------------------------------
# Restart and crash.

before=$(state)
stop_vswitchd
restart_vswitchd
after=$(state)
if [[ "$before" != "$after" ]]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail "the L3 configuration differs after a restart"
fi
log "restart: the L3 configuration is the same ($(wc -c <<<"$after") bytes of JSON compared)"

run_ok "route added just before a crash" vsctl route add 10.99.0.0/16 via 10.0.1.254,10.0.0.254
run_ok "vrf added just before a crash" vsctl vrf add 20
run_ok "interface moved just before a crash" vsctl iface set blue vrf=20
run_ok "proxy-arp off just before a crash" vsctl proxy-arp pod off
before=$(state)
vs_stop_pid "$VSWITCHD_PID" KILL 5
rm -rf "/var/run/dpdk/$VS_PREFIX" "$VS_SOCK"
[[ -s "$VS_STATE.journal" ]] || fail "no journal after the changes"
restart_vswitchd
after=$(state)
if [[ "$before" != "$after" ]]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail "the L3 configuration differs after a crash"
fi
log "crash: the journal brought back the changes made just before it"
stop_vswitchd
vs_pass
