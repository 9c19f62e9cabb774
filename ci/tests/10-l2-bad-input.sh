#!/usr/bin/env bash
# Bad bridge and fdb input is refused: vsctl exits non-zero with exactly one stderr line,
# "vsctl: ...", that names the field (or object) and what is wrong with it (each refusal is
# matched against a regex for that reason, not just the echoed value), and nothing changes
# (bridge list, bridge show and fdb show of every bridge, the cross-connects and the
# interfaces are identical afterwards).
# Covered: VLAN ids outside 1-4094 or not numbers (vlan= and trunk=), vlan= with trunk=,
# a member attached twice or to two bridges, a cross-connected interface attached (and a
# bridged one cross-connected), unknown bridges and interfaces, malformed MACs, static
# entries on non-members or in VLANs the member does not carry, duplicate and bad bridge
# names, bad age / learn-limit / learn / flood values. The boundaries (VLAN 1 and 4094,
# a 31-character name) are accepted.
# A message that does not name the field and the problem is recorded; every mismatch is
# listed at the end, and the test fails.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

vs_test_init "10-l2-bad-input"
start_vswitchd

# Idle af_packet interfaces (the veth peers stay down: no traffic, nothing learned).
for n in m1 m2 m3 m4 x1 x2; do
    vs_veth_pair "$(vs_ifname "$n")" "$(vs_ifname "${n}p")"
    run_ok "iface add $n" vsctl iface add "$n" af_packet iface="$(vs_ifname "$n")" >/dev/null
done
# br1: m1 untagged, m2 access VLAN 10, m4 trunk 10,20, two static entries.
# br2: empty, non-default settings. x1 <-> x2 cross-connected. m3 is spare.
run_ok "bridge add br1" vsctl bridge add br1 >/dev/null
run_ok "bridge add br2" vsctl bridge add br2 age=60 learn-limit=10 flood=off >/dev/null
run_ok "attach m1" vsctl bridge attach br1 m1 >/dev/null
run_ok "attach m2 vlan=10" vsctl bridge attach br1 m2 vlan=10 >/dev/null
run_ok "attach m4 trunk=10,20" vsctl bridge attach br1 m4 trunk=10,20 >/dev/null
run_ok "xconnect x1 x2" vsctl xconnect add x1 x2 >/dev/null
S1=02:98:0a:00:00:01
S2=02:98:0a:00:00:02
NEW=02:98:0a:00:00:09
run_ok "fdb add br1 $S1 m1" vsctl fdb add br1 $S1 m1 >/dev/null
run_ok "fdb add br1 $S2 m2 vlan=10" vsctl fdb add br1 $S2 m2 vlan=10 >/dev/null

# state: the configuration as one JSON document: bridge list, bridge show and fdb show of
# each bridge, cross-connects, interfaces. The learned-entry count, age_seconds, counters
# and link state are left out: they are not configuration (and stay still here anyway).
state() {
    local docs=() br
    docs+=("$(vsctl --json bridge list)")
    for br in br1 br2; do
        docs+=("$(vsctl --json bridge show "$br")" "$(vsctl --json fdb show "$br")")
    done
    docs+=("$(vsctl --json xconnect list)" "$(vsctl --json iface list)")
    "$VS_PY" -c '
import json, sys
blist, show1, fdb1, show2, fdb2, xc, ifaces = (json.loads(a) for a in sys.argv[1:])
nolearned = lambda b: {k: v for k, v in b.items() if k != "learned"} if isinstance(b, dict) else b
fdb = lambda d: sorted(({k: v for k, v in e.items() if k != "age_seconds"} for e in d),
                       key=lambda e: json.dumps(e, sort_keys=True))
iface = lambda i: {k: v for k, v in i.items() if not (k.endswith("_packets")
                   or k.endswith("_bytes") or k in ("drops", "link_up"))}
print(json.dumps({"bridge list": [nolearned(b) for b in blist],
                  "br1": nolearned(show1), "fdb br1": fdb(fdb1),
                  "br2": nolearned(show2), "fdb br2": fdb(fdb2), "xconnect list": xc,
                  "iface list": sorted((iface(i) for i in ifaces), key=lambda i: i["name"])},
                 sort_keys=True))
' "${docs[@]}" || fail "cannot read the configuration"
}
VS_BEFORE=$(state)
log "configuration before: $VS_BEFORE"
[[ "$VS_BEFORE" == *'"m4"'* && "$VS_BEFORE" == *"$S2"* ]] ||
    fail "the starting configuration does not show m4 and $S2: $VS_BEFORE"

# refused REGEX ARGS...: vs_refused (lib.sh) against the configuration before.
refused() { vs_refused state "$@"; }

# VLAN ids: 1-4094 only, numbers only.
for v in 0 4095 4096; do
    refused "vlan must be from 1 to 4094, not $v" bridge attach br2 m3 "vlan=$v"
done
# Not a number at all: vsctl refuses it, naming vlan's range (not u32's).
for v in -1 x 10x ''; do
    refused "vlan=$v\": vlan must be a number from 1 to 4094" \
        bridge attach br2 m3 "vlan=$v"
done
for t in 0 4095 10,4095; do
    refused "trunk VLAN must be from 1 to 4094, not ${t##*,}" bridge attach br2 m3 "trunk=$t"
done
refused 'trunk VLAN must be from 1 to 4094, not 0' bridge attach br2 m3 trunk=0,10
for t in x 10,x; do
    refused "\"trunk=$t\": VLAN \"x\" is not a number" bridge attach br2 m3 "trunk=$t"
done
refused '"trunk=": empty VLAN list' bridge attach br2 m3 trunk=
refused '"trunk=10,,20": empty VLAN ID in the list' bridge attach br2 m3 trunk=10,,20
refused 'vlan= and trunk= exclude each other' bridge attach br2 m3 vlan=10 trunk=20
refused 'unknown key "colour"' bridge attach br2 m3 colour=red

# Membership: once, in one bridge, never both bridged and cross-connected.
refused 'interface "m1" is already a member of bridge "br1"' bridge attach br1 m1
refused 'interface "m1" is already a member of bridge "br1"' bridge attach br1 m1 vlan=20
refused 'interface "m2" is already a member of bridge "br1"' bridge attach br1 m2 vlan=10
refused 'interface "m1" is already a member of bridge "br1"' bridge attach br2 m1
refused 'interface "m2" is already a member of bridge "br1"' bridge attach br2 m2 vlan=10
refused 'interface "m4" is already a member of bridge "br1"' bridge attach br2 m4 trunk=10,20
refused 'interface "x1" is cross-connected to "x2"' bridge attach br2 x1
refused 'interface "x2" is cross-connected to "x1"' bridge attach br1 x2 vlan=10
refused 'interface "m1" is a member of bridge "br1"' xconnect add m1 m3
refused 'interface "m4" is a member of bridge "br1"' xconnect add m3 m4
refused 'interface "ghost0" not found' bridge attach br2 ghost0
refused 'interface "m3" is not a member of bridge "br1"' bridge detach br1 m3
refused 'interface "m1" is not a member of bridge "br2"' bridge detach br2 m1
refused 'interface "ghost0" not found' bridge detach br1 ghost0

# Unknown bridge.
refused 'bridge "nobr" not found' bridge attach nobr m3
refused 'bridge "nobr" not found' bridge show nobr
refused 'bridge "nobr" not found' --json bridge show nobr
refused 'bridge "nobr" not found' bridge del nobr
refused 'bridge "nobr" not found' bridge detach nobr m1
refused 'bridge "nobr" not found' fdb show nobr
refused 'bridge "nobr" not found' --json fdb show nobr
refused 'bridge "nobr" not found' fdb add nobr $NEW m1
refused 'bridge "nobr" not found' fdb del nobr $S1
refused 'bridge "nobr" not found' fdb flush nobr

# Malformed MACs (and addresses that cannot be a station's).
for m in zz:00:00:00:00:01 02:00:00:00:00 02:00:00:00:00:00:01 02-00-00-00-00-0g \
    not-a-mac 2:0:0:0:0:1::; do
    refused "mac \"$m\" is not a MAC address" fdb add br1 "$m" m1
done
refused 'mac is required' fdb add br1 '' m1
refused 'mac ff:ff:ff:ff:ff:ff is a (multicast|broadcast|group) address' fdb add br1 ff:ff:ff:ff:ff:ff m1
refused 'mac 01:00:5e:00:00:01 is a multicast address' fdb add br1 01:00:5e:00:00:01 m1
refused 'mac 00:00:00:00:00:00 is the all-zero address' fdb add br1 00:00:00:00:00:00 m1
refused 'mac "zz:00:00:00:00:01" is not a MAC address' fdb del br1 zz:00:00:00:00:01
# Static entries on an interface that is not a member, or in a VLAN it does not carry.
refused 'interface "m3" is not a member of bridge "br1"' fdb add br1 $NEW m3
refused 'interface "x1" is not a member of bridge "br1"' fdb add br1 $NEW x1
refused 'interface "ghost0" not found' fdb add br1 $NEW ghost0
refused 'interface "m1" is not a member of bridge "br2"' fdb add br2 $NEW m1
refused 'vlan must be from 1 to 4094, not 4095' fdb add br1 $NEW m1 vlan=4095
refused 'vlan=x": vlan must be a number from 1 to 4094' fdb add br1 $NEW m1 vlan=x
refused 'interface "m2" does not carry VLAN 20 in bridge "br1"' fdb add br1 $NEW m2 vlan=20
refused 'interface "m4" does not carry VLAN 30 in bridge "br1"' fdb add br1 $NEW m4 vlan=30
refused 'interface "m1" does not carry VLAN 10 in bridge "br1"' fdb add br1 $NEW m1 vlan=10
# Deleting what is not there.
refused "$NEW \\(VLAN 0\\) is not in bridge \"br1\"" fdb del br1 $NEW
refused "$S2 \\(VLAN 20\\) is not in bridge \"br1\"" fdb del br1 $S2 vlan=20
refused 'interface "ghost0" (is not a member of bridge "br1"|not found)' fdb flush br1 ghost0

# Bridge names and settings.
refused 'bridge "br1" exists already' bridge add br1
refused 'bridge "br2" exists already' bridge add br2 age=30
long=$(printf 'b%.0s' {1..32})
refused "bridge name \"$long\" is longer than 31 characters" bridge add "$long"
refused "bridge name \"bad/name\" contains '/'" bridge add 'bad/name'
refused "bridge name \"bad name\" contains ' '" bridge add 'bad name'
refused "bridge name \"br!\" contains '!'" bridge add 'br!'
refused 'bridge name must not be empty' bridge add ''
for a in x -1 '' 1.5 99999999999999999999; do
    refused "\"age=$a\": age must be an integer from 0 to 4294967295" bridge add br9 "age=$a"
done
for l in x -1 '' 99999999999999999999; do
    refused "\"learn-limit=$l\": learn-limit must be an integer from 0 to 4294967295" \
        bridge add br9 "learn-limit=$l"
done
refused '"learn=maybe": learn must be on or off' bridge add br9 learn=maybe
refused '"flood=sometimes": flood must be on or off' bridge add br9 flood=sometimes
refused 'unknown key "colour"' bridge add br9 colour=blue
refused 'key "age" given twice' bridge add br9 age=5 age=6
log "$VS_REFUSED bad commands refused, configuration unchanged; ${#VS_UNCLEAR[@]} messages do not say what is wrong"

# The boundaries are accepted (and undone), and the daemon is still well.
name31=$(printf 'b%.0s' {1..31})
run_ok "bridge add (31-character name)" vsctl bridge add "$name31" >/dev/null
run_ok "bridge del (31-character name)" vsctl bridge del "$name31" >/dev/null
for spec in vlan=1 vlan=4094 trunk=1,4094 trunk=4094; do
    run_ok "attach m3 $spec" vsctl bridge attach br2 m3 "$spec" >/dev/null
    run_ok "detach m3" vsctl bridge detach br2 m3 >/dev/null
done
run_ok "health after bad input" vsctl health >/dev/null
after=$(state)
assert_eq "$after" "$VS_BEFORE" "configuration after the accepted boundary commands were undone"

stop_vswitchd
vs_refused_report
vs_pass
