#!/usr/bin/env bash
# Tunnels through vsctl against a running vswitchd (the control plane's part: no packet is
# encapsulated yet; null interfaces carry the underlay addresses):
#  - one tunnel of each kind (vxlan with remotes, geneve, gre with a key, ipip
#    point-to-multipoint), and one gre mode=teb in a bridge;
#  - `tunnel list --json` has CONTRACT's fields {name, kind, local, remote, vni, key, vrf};
#    `iface list` shows the tunnels with their kind as type; `tunnel show`;
#  - a tunnel addressed and routed into, its MAC -> VTEP entries (tunnel fdb), a bridge's
#    MAC entry behind a tunnel member carrying `remote` in `fdb show --json`;
#  - `iface set` on a tunnel (MTU, down, up);
#  - every bad input: exit non-zero, one "vsctl: ..." line saying what is wrong, nothing
#    changed (tunnel list, tunnel fdb, iface list, addresses and routes compared);
#  - watch: tunnel add/del are config events;
#  - /metrics: vswitch_tunnels by kind;
#  - restart (SIGTERM) and crash (SIGKILL, the journal) restore the tunnels and their
#    entries; tunnel del refused while a route goes through it, then accepted.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "42-tunnel-control"
port=$("$VS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
VSWITCHD_EXTRA=(--metrics "127.0.0.1:$port")
start_vswitchd

watch_log=$VS_TMP/watch.log
timeout 300 "$VSCTL_BIN" --socket "$VS_SOCK" watch config >"$watch_log" 2>&1 &
watch_pid=$!
vs_track_pid "$watch_pid"
watching() {
    vsctl neigh set age=300 >/dev/null && grep -q 'config set_neighbor_config' "$watch_log"
}
wait_until 10 "the watch stream to open" watching

cat >"$VS_TMP/underlay.txt" <<EOF
vrf add 5
iface add up0 null
iface add up5 null vrf=5
iface add m null
bridge add br0
bridge attach br0 m
addr add up0 192.0.2.1/24
addr add up0 2001:db8::1/64
addr add up5 198.51.100.1/24
EOF
run_ok "underlay (one transaction)" vsctl transaction "$VS_TMP/underlay.txt"
run_ok "vxlan" vsctl tunnel add vx0 vxlan vni=42 local=192.0.2.1 remote=192.0.2.2,192.0.2.3
run_ok "geneve over IPv6" vsctl tunnel add gnv0 geneve vni=7 local=2001:db8::1 remote=2001:db8::2
run_ok "gre with a key, in vrf 5" vsctl tunnel add gre0 gre local=198.51.100.1 remote=198.51.100.2 key=100 vrf=5 ttl=0 df=on
run_ok "ipip, point-to-multipoint" vsctl tunnel add tunl0 ipip local=192.0.2.1
run_ok "gre mode=teb" vsctl tunnel add gtap0 gre local=192.0.2.1 remote=192.0.2.9 mode=teb
run_ok "vxlan on Linux's port, flannel-style" vsctl tunnel add flannel.1 vxlan vni=1 local=192.0.2.1 port=8472
log "tunnels added"

# The reply of tunnel add --json.
reply=$(vsctl --json tunnel add vx9 vxlan vni=9 local=192.0.2.1)
vs_json_true '(d["name"] == "vx9" and d["vni"] == 9 and d["port"] == 4789 and d["mtu"] == 1450
    and d["key"] is None and d["remote"] == "")' <<<"$reply" || fail "tunnel add --json: $reply"
run_ok "tunnel del" vsctl tunnel del vx9

# tunnel list --json: CONTRACT's fields, and the defaults.
tl=$(vsctl --json tunnel list)
vs_json_true 'all(set(t) >= {"name", "kind", "local", "remote", "vni", "key", "vrf"} for t in d)' \
    <<<"$tl" || fail "tunnel list --json lacks fields: $tl"
row() { vs_json 'first([t[k] for k in keys] for t in d if t["name"] == n)' n="$1" keys:="$2" <<<"$tl"; }
K='["kind", "local", "remote", "vni", "key", "vrf", "mtu", "ttl", "df"]'
assert_eq "$(row vx0 "$K")" '["vxlan", "192.0.2.1", "192.0.2.2,192.0.2.3", 42, null, 0, 1450, 64, false]' "vx0"
assert_eq "$(row gnv0 "$K")" '["geneve", "2001:db8::1", "2001:db8::2", 7, null, 0, 1430, 64, false]' "gnv0"
assert_eq "$(row gre0 "$K")" '["gre", "198.51.100.1", "198.51.100.2", null, 100, 5, 1472, 0, true]' "gre0"
assert_eq "$(row tunl0 "$K")" '["ipip", "192.0.2.1", "", null, null, 0, 1480, 64, false]' "tunl0"
assert_eq "$(row gtap0 '["kind", "mode", "mtu"]')" '["gre", "teb", 1462]' "gtap0"
assert_eq "$(row flannel.1 '["port", "vni"]')" '[8472, 1]' "flannel.1"
vsctl tunnel list | grep -Eq '^vx0 +vxlan +192\.0\.2\.1 +192\.0\.2\.2,192\.0\.2\.3 +vni 42:4789 +0 +1450 +64 +off$' ||
    fail "tunnel list table: $(vsctl tunnel list)"
assert_eq "$(vsctl --json tunnel show gre0 | vs_json 'd["key"]')" 100 "tunnel show gre0"

# A tunnel is an interface.
il=$(vsctl --json iface list)
assert_eq "$(vs_json 'sorted((i["name"], i["type"]) for i in d if i["type"] in ("vxlan", "geneve", "gre", "ipip"))' <<<"$il")" \
    '[["flannel.1", "vxlan"], ["gnv0", "geneve"], ["gre0", "gre"], ["gtap0", "gre"], ["tunl0", "ipip"], ["vx0", "vxlan"]]' \
    "iface list: the tunnels"
vs_json_true 'all(i["mtu"] > 0 and i["admin_up"] for i in d if i["type"] == "vxlan")' <<<"$il" ||
    fail "iface list: vxlan tunnels' MTU and state: $il"

# Routed into (flannel's way), attached to a bridge, set.
run_ok "address on the vxlan tunnel" vsctl addr add flannel.1 10.244.0.0/32
run_ok "onlink route through it" vsctl route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
run_ok "MAC -> VTEP entry" vsctl tunnel fdb add flannel.1 02:42:0a:f4:01:00 remote=192.0.2.20
run_ok "route into the ipip tunnel" vsctl route add 10.9.0.0/16 dev tunl0
run_ok "gre address in vrf 0 (the overlay)" vsctl addr add gre0 10.8.0.1/30
run_ok "gre mode=teb joins a bridge" vsctl bridge attach br0 gtap0
run_ok "vxlan joins a bridge" vsctl bridge attach br0 vx0
run_ok "bridge MAC entry behind the vxlan member" vsctl fdb add br0 02:00:00:00:42:05 vx0 remote=192.0.2.7
run_ok "bridge MAC entry behind the gre member" vsctl fdb add br0 02:00:00:00:42:07 gtap0
run_ok "iface set on a tunnel" vsctl iface set gnv0 mtu=1400 down
assert_eq "$(vsctl --json iface show gnv0 | vs_json '[d["mtu"], d["admin_up"]]')" '[1400, false]' "gnv0 after iface set"
run_ok "iface set up" vsctl iface set gnv0 up
vt=$(vsctl --json tunnel fdb show flannel.1)
assert_eq "$(vs_json '[(e["mac"], e["remote"]) for e in d]' <<<"$vt")" '[["02:42:0a:f4:01:00", "192.0.2.20"]]' \
    "tunnel fdb show flannel.1"
fdb=$(vsctl --json fdb show br0)
assert_eq "$(vs_json 'first([e["iface"], e["static"], e.get("remote")] for e in d if e["mac"] == "02:00:00:00:42:05")' <<<"$fdb")" \
    '["vx0", true, "192.0.2.7"]' "fdb show br0: the entry behind vx0 carries remote"
assert_eq "$(vs_json 'first([e["iface"], e.get("remote")] for e in d if e["mac"] == "02:00:00:00:42:07")' <<<"$fdb")" \
    '["gtap0", "192.0.2.9"]' "fdb show br0: the entry behind gtap0 carries the gre tunnel's remote"
vs_json_true 'all("remote" not in e for e in d if e["iface"] == "m")' <<<"$fdb" ||
    fail "fdb show br0: an entry on a port carries remote: $fdb"
vs_json_true 'sorted(d["members"], key=lambda m: m["iface"])[0]["iface"] == "gtap0"' \
    <<<"$(vsctl --json bridge show br0)" || fail "bridge show br0: $(vsctl --json bridge show br0)"
log "routed, attached and set"

for e in "add_tunnel vx0" "add_tunnel gre0" "delete_tunnel vx9" "add_tunnel_fdb flannel.1/02:42:0a:f4:01:00"; do
    wait_until 10 "config event '$e'" grep -q "config $e\$" "$watch_log"
done
vs_stop_pid "$watch_pid" TERM 5

metrics=$(curl -sf "http://127.0.0.1:$port/metrics" 2>/dev/null ||
    "$VS_PY" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
        "http://127.0.0.1:$port/metrics")
grep -q '^vswitch_tunnels{kind="gre"} 2$' <<<"$metrics" || fail "/metrics: vswitch_tunnels{kind=\"gre\"} 2 missing"
grep -q '^vswitch_tunnels{kind="vxlan"} 2$' <<<"$metrics" || fail "/metrics: vswitch_tunnels{kind=\"vxlan\"} 2 missing"
grep -q '^vswitch_drops_total{reason="no_encap"} ' <<<"$metrics" || fail "/metrics: the no_encap drop reason is missing"

# ---------------------------------------------------------------------------------------
# Bad input: one line, says what is wrong, nothing changed.

# state: the tunnels and what hangs on them (not the logical indices, which a restart
# gives out again).
state() {
    {
        vsctl --json tunnel list | vs_json '[{k: v for k, v in t.items() if k != "index"} for t in d]'
        vsctl --json tunnel fdb show flannel.1
        vsctl --json fdb show br0 | vs_json 'sorted((e["mac"], e["iface"], e.get("remote")) for e in d if e["static"])'
        vsctl --json iface list | vs_json '[(i["name"], i["type"], i["mtu"], i["admin_up"], i["vrf"], i["addresses"]) for i in d]'
        vsctl --json route show
        vsctl --json bridge show br0
    } 2>&1
}
VS_BEFORE=$(state)
refused() { vs_refused state "$@"; }

refused 'vni must be from 0 to 16777215 \(24 bits\), not 16777216' tunnel add t1 vxlan vni=16777216 local=192.0.2.1
refused 'a vxlan tunnel needs vni=N' tunnel add t1 vxlan local=192.0.2.1
refused 'local 192\.0\.2\.99 is not an address of the switch in vrf 0' tunnel add t1 vxlan vni=1 local=192.0.2.99
refused 'local 192\.0\.2\.1 is not an address of the switch in vrf 5' tunnel add t1 vxlan vni=1 local=192.0.2.1 vrf=5
refused 'vrf 9 not found' tunnel add t1 vxlan vni=1 local=192.0.2.1 vrf=9
refused 'remote 192\.0\.2\.1 is the tunnel.s local address' tunnel add t1 gre local=192.0.2.1 remote=192.0.2.1
refused 'remote 2001:db8::9 is IPv6 but local 192\.0\.2\.1 is IPv4' tunnel add t1 gre local=192.0.2.1 remote=2001:db8::9
refused 'interface "vx0" exists already' tunnel add vx0 vxlan vni=5 local=192.0.2.1
refused 'interface "up0" exists already' tunnel add up0 vxlan vni=5 local=192.0.2.1
refused 'tunnel "vx0" already has vni 42 on 192\.0\.2\.1 in vrf 0, UDP port 4789' tunnel add t1 vxlan vni=42 local=192.0.2.1
refused 'gre tunnel "gre0" already joins 198\.51\.100\.1 in vrf 5 to 198\.51\.100\.2 with key 100' \
    tunnel add t1 gre local=198.51.100.1 remote=198.51.100.2 key=100 vrf=5
refused 'UDP port 8472 on 192\.0\.2\.1 in vrf 0 is vxlan tunnel "flannel\.1".s' tunnel add t1 geneve vni=1 local=192.0.2.1 port=8472
refused 'ipip tunnel "tunl0" is already the point-to-multipoint tunnel' tunnel add t1 ipip local=192.0.2.1
refused 'key must be a number from 0 to 4294967295 \(32 bits\)' tunnel add t1 gre local=192.0.2.1 remote=192.0.2.5 key=4294967296
refused 'kind "mpls" is unknown; kinds: vxlan, geneve, gre, ipip' tunnel add t1 mpls local=192.0.2.1
refused 'a gre tunnel has exactly one remote=IP' tunnel add t1 gre local=192.0.2.1
refused 'mode must be l3 or teb' tunnel add t1 gre local=192.0.2.1 remote=192.0.2.5 mode=eth
refused 'ttl must be from 0 \(inherit\) to 255, not 300' tunnel add t1 ipip local=192.0.2.1 remote=192.0.2.5 ttl=300
refused 'df must be on or off' tunnel add t1 ipip local=192.0.2.1 remote=192.0.2.5 df=maybe
refused 'address 192\.0\.2\.1/24 of interface "up0" is the local address of tunnel' addr del up0 192.0.2.1/24
refused 'is the local address of tunnel' iface del up0
refused 'interface "vx0" is a tunnel: tunnel del vx0 deletes it' iface del vx0
refused 'interface "flannel\.1" is used by route 10\.244\.1\.0/24 \(vrf 0\); delete the route first' tunnel del flannel.1
refused 'interface "tunl0" is used by route 10\.9\.0\.0/16' tunnel del tunl0
refused 'tunnel "nope" not found' tunnel del nope
refused 'interface "up0" is not a tunnel' tunnel del up0
refused 'tunnel "gre0" \(gre mode=l3\) carries IP packets: a bridge takes tunnels that carry Ethernet' bridge attach br0 gre0
refused 'tunnel "tunl0" \(ipip\) carries IP packets' bridge attach br0 tunl0
refused 'interface "gtap0" is a tunnel: tunnels are not cross-connected' xconnect add gtap0 up5
refused 'tunnel "gre0" is a gre tunnel \(mode l3\): MAC -> VTEP entries are for vxlan and geneve tunnels' \
    tunnel fdb add gre0 02:00:00:00:00:01 remote=198.51.100.9
refused 'tunnel "vx0" is a member of bridge "br0": its entries are the bridge.s' \
    tunnel fdb add vx0 02:00:00:00:00:01 remote=192.0.2.9
refused 'mac ff:ff:ff:ff:ff:ff is a multicast address' tunnel fdb add flannel.1 ff:ff:ff:ff:ff:ff remote=192.0.2.9
refused 'is not a MAC address' tunnel fdb add flannel.1 02:00:00:00:00 remote=192.0.2.9
refused 'tunnel fdb add needs remote=IP' tunnel fdb add flannel.1 02:00:00:00:00:01
refused 'tunnel "flannel\.1" has no entry for 02:00:00:00:00:09' tunnel fdb del flannel.1 02:00:00:00:00:09
refused 'remote is for entries behind a vxlan or geneve tunnel, and "m" is not one' \
    fdb add br0 02:00:00:00:42:06 m remote=192.0.2.7
refused 'remote 2001:db8::7 is IPv6 but local 192\.0\.2\.1 is IPv4' fdb add br0 02:00:00:00:42:06 vx0 remote=2001:db8::7
printf 'tunnel add t2 vxlan vni=77 local=192.0.2.1\ntunnel add t3 vxlan vni=77 local=192.0.2.1\n' >"$VS_TMP/bad.txt"
refused 'change 2 of 2 \(add_tunnel\): tunnel "t2" already has vni 77 .*; nothing was applied' \
    transaction "$VS_TMP/bad.txt"
log "$VS_REFUSED bad commands refused, configuration unchanged"
vs_refused_report

# ---------------------------------------------------------------------------------------
# Restart and crash restore tunnels, their settings, members and entries.

before=$(state)
stop_vswitchd
restart_vswitchd
after=$(state)
if [[ "$before" != "$after" ]]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail "the tunnels differ after a restart"
fi
log "restart: tunnels restored ($(wc -c <<<"$after") bytes of JSON compared)"

run_ok "tunnel added just before a crash" vsctl tunnel add vx7 vxlan vni=7 local=2001:db8::1
run_ok "entry added just before a crash" vsctl tunnel fdb add flannel.1 02:42:0a:f4:02:00 remote=192.0.2.21
before=$(state)
vs_stop_pid "$VSWITCHD_PID" KILL 5
rm -rf "/var/run/dpdk/$VS_PREFIX" "$VS_SOCK"
restart_vswitchd
after=$(state)
if [[ "$before" != "$after" ]]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail "the tunnels differ after a crash"
fi
log "crash: the journal brought back the tunnel changes made just before it"

# tunnel del: refused while a route goes through it, then it goes with its address and
# entries, and its local address can go.
VS_BEFORE=$(state)
refused 'is used by route 10\.244\.1\.0/24' tunnel del flannel.1
run_ok "route del" vsctl route del 10.244.1.0/24
run_ok "tunnel del flannel.1" vsctl tunnel del flannel.1
run_ok "tunnel del vx0 (a bridge member)" vsctl tunnel del vx0
vs_json_true '"vx0" not in [m["iface"] for m in d["members"]]' <<<"$(vsctl --json bridge show br0)" ||
    fail "vx0 is still a member of br0"
vs_json_true 'not any(e["iface"] == "vx0" for e in d)' <<<"$(vsctl --json fdb show br0)" ||
    fail "br0's entry behind vx0 is still there"
run_ok "route del" vsctl route del 10.9.0.0/16
for t in tunl0 gtap0 vx7; do
    run_ok "tunnel del $t" vsctl tunnel del "$t"
done
run_ok "the local address is free" vsctl addr del up0 192.0.2.1/24
assert_eq "$(vsctl --json tunnel list | vs_json '[t["name"] for t in d]')" '["gnv0", "gre0"]' "tunnels left"
stop_vswitchd
vs_pass
