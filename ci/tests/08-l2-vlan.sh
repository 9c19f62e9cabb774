#!/usr/bin/env bash
# Bridge isolation and VLANs.
#   - Two bridges, two namespaces each, all four in one IP subnet: each pair pings; across
#     the bridges pings fail, and captures (scapy) in the other bridge's namespaces see none
#     of the frames (ARP broadcasts, unknown unicast to a MAC the other bridge knows).
#   - One bridge with VLAN 10 access members v1 v2, VLAN 20 access members w1 w2, an
#     untagged member u and a trunk member t (trunk=10,20) whose namespace runs scapy (the
#     kernel here has no 802.1Q devices). Same-VLAN members ping, the others do not; v1's
#     and w2's frames reach t tagged 10 and 20 and nobody outside their VLAN; scapy on t
#     resolves and pings v1 with VLAN 10 tags and w1 with VLAN 20 tags (replies tagged
#     likewise) and its frames reach only that VLAN's access members, untagged; frames
#     with a VLAN a member does not carry (VLAN 30 or untagged on the trunk, VLAN 20 on a
#     VLAN 10 access member, VLAN 10 on the untagged member) are dropped and counted
#     (vlan_mismatch), reach nobody and teach the MAC table nothing.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

vs_test_init "08-l2-vlan"
l2_need_scapy
start_vswitchd

declare -A NS MAC
# host NAME CIDR: namespace + veth + switch port pNAME (l2lib.sh).
host() { l2_named_host "$@"; }

# ---------------------------------------------------------------------------------------
# Two bridges do not leak into each other.
host a1 10.98.8.1/24
host a2 10.98.8.2/24
host b1 10.98.8.3/24
host b2 10.98.8.4/24
run_ok "bridge add bra" vsctl bridge add bra >/dev/null
run_ok "bridge add brb" vsctl bridge add brb >/dev/null
for h in a1 a2; do run_ok "attach p$h" vsctl bridge attach bra "p$h" >/dev/null; done
for h in b1 b2; do run_ok "attach p$h" vsctl bridge attach brb "p$h" >/dev/null; done

vs_ping "${NS[a1]}" 10.98.8.2
vs_ping "${NS[b1]}" 10.98.8.4
wait_until 5 "fdb bra: a1 a2" fdb_has bra "${MAC[a1]}" pa1
wait_until 5 "fdb bra: a2" fdb_has bra "${MAC[a2]}" pa2
wait_until 5 "fdb brb: b1" fdb_has brb "${MAC[b1]}" pb1
wait_until 5 "fdb brb: b2" fdb_has brb "${MAC[b2]}" pb2

for h in a1 a2 b1 b2; do sniff_start "$h" "${NS[$h]}"; done
sniff_ready a1 a2 b1 b2
for h in a1 a2 b1 b2; do sniff_mark "$h" "p$h"; done
ns_neigh_flush "${NS[a1]}" "${NS[b1]}"
# a1 -> b1's address, b1 -> a1's address: ARP broadcasts that must stay in their bridge.
ping_fails "${NS[a1]}" 10.98.8.3
ping_fails "${NS[b1]}" 10.98.8.1
# Unknown unicast in bra to a MAC brb has learned, and the reverse.
run_ok "send from a1 to b1's MAC" l2_scapy "${NS[a1]}" 30 send.py --src "${MAC[a1]}" \
    --dst "${MAC[b1]}" --count 5 --text a1-to-b1 >/dev/null
run_ok "send from b2 to a2's MAC" l2_scapy "${NS[b2]}" 30 send.py --src "${MAC[b2]}" \
    --dst "${MAC[a2]}" --count 5 --text b2-to-a2 >/dev/null
# Positive controls: each bridge flooded them to its other member.
ARP_FROM='mac(f["src"]) == mac(m) and f.get("pdst") == ip'
FROM_TO='mac(f["src"]) == mac(m) and mac(f["dst"]) == mac(to)'
wait_until 5 "a1's ARP for 10.98.8.3 at a2" sniff_seen a2 1 "$ARP_FROM" m="${MAC[a1]}" ip=10.98.8.3
wait_until 5 "a1's frames to b1's MAC at a2" sniff_seen a2 5 "$FROM_TO" m="${MAC[a1]}" to="${MAC[b1]}"
wait_until 5 "b1's ARP for 10.98.8.1 at b2" sniff_seen b2 1 "$ARP_FROM" m="${MAC[b1]}" ip=10.98.8.1
wait_until 5 "b2's frames to a2's MAC at b1" sniff_seen b1 5 "$FROM_TO" m="${MAC[b2]}" to="${MAC[a2]}"
sniff_settle a1 a2 b1 b2
sniff_stop a1 a2 b1 b2
FROM_ANY='mac(f["src"]) in macs.split()'
for h in b1 b2; do
    sniff_expect "$h" -eq 0 "$FROM_ANY" "frames from bra's hosts at $h" macs="${MAC[a1]} ${MAC[a2]}"
done
for h in a1 a2; do
    sniff_expect "$h" -eq 0 "$FROM_ANY" "frames from brb's hosts at $h" macs="${MAC[b1]} ${MAC[b2]}"
done
for m in "${MAC[b1]}" "${MAC[b2]}"; do
    fdb_lacks bra "$m" any || fail "fdb bra holds brb's MAC $m"
done
for m in "${MAC[a1]}" "${MAC[a2]}"; do
    fdb_lacks brb "$m" any || fail "fdb brb holds bra's MAC $m"
done
log "bridges bra and brb are isolated"

# ---------------------------------------------------------------------------------------
# VLANs on one bridge.
host v1 10.98.9.1/24
host v2 10.98.9.2/24
host w1 10.98.9.3/24
host w2 10.98.9.4/24
host u 10.98.9.5/24
host t ""
# scapy's frames from t use their own MAC, not the veth's.
T=02:98:09:00:00:74
run_ok "bridge add brv" vsctl bridge add brv >/dev/null
run_ok "attach pv1 vlan=10" vsctl bridge attach brv pv1 vlan=10 >/dev/null
run_ok "attach pv2 vlan=10" vsctl bridge attach brv pv2 vlan=10 >/dev/null
run_ok "attach pw1 vlan=20" vsctl bridge attach brv pw1 vlan=20 >/dev/null
run_ok "attach pw2 vlan=20" vsctl bridge attach brv pw2 vlan=20 >/dev/null
run_ok "attach pu" vsctl bridge attach brv pu >/dev/null
run_ok "attach pt trunk=10,20" vsctl bridge attach brv pt trunk=10,20 >/dev/null
show=$(vsctl --json bridge show brv)
log "bridge show brv: $show"
assert_eq "$(vs_json 'sorted((m["iface"], m["vlan"] or 0, sorted(m["trunk"] or []))
    for m in d["members"] if m["iface"] != "pt")' <<<"$show")" \
    '[["pu", 0, []], ["pv1", 10, []], ["pv2", 10, []], ["pw1", 20, []], ["pw2", 20, []]]' \
    "bridge show brv: access and untagged members"
assert_eq "$(vs_json '[sorted(m["trunk"]) for m in d["members"] if m["iface"] == "pt"]' \
    <<<"$show")" '[[10, 20]]' "bridge show brv: trunk member pt"
vsctl bridge show brv

all=(v1 v2 w1 w2 u t)
for h in "${all[@]}"; do sniff_start "$h" "${NS[$h]}"; done
sniff_ready "${all[@]}"
for h in "${all[@]}"; do sniff_mark "$h" "p$h"; done

# Same VLAN talks.
vs_ping "${NS[v1]}" 10.98.9.2
vs_ping "${NS[w1]}" 10.98.9.4
wait_until 5 "fdb brv: v1 in VLAN 10 on pv1" fdb_has brv "${MAC[v1]}" pv1 10 false
wait_until 5 "fdb brv: w1 in VLAN 20 on pw1" fdb_has brv "${MAC[w1]}" pw1 20 false
# Other VLANs (and the untagged member) do not.
ns_neigh_flush "${NS[@]}"
ping_fails "${NS[v1]}" 10.98.9.3
ping_fails "${NS[w2]}" 10.98.9.2
ping_fails "${NS[u]}" 10.98.9.1
ping_fails "${NS[v2]}" 10.98.9.5

# v1's and w2's ARP broadcasts: at their VLAN's other access member untagged, at the
# trunk with their VLAN's tag (one tag), nowhere else.
ARP_TAGGED='mac(f["src"]) == mac(m) and f["vlans"] == tags and f.get("pdst") == ip'
wait_until 5 "v1's ARP at t tagged 10" sniff_seen t 1 "$ARP_TAGGED" \
    m="${MAC[v1]}" tags:='[10]' ip=10.98.9.3
wait_until 5 "w2's ARP at t tagged 20" sniff_seen t 1 "$ARP_TAGGED" \
    m="${MAC[w2]}" tags:='[20]' ip=10.98.9.2
wait_until 5 "v1's ARP at v2 untagged" sniff_seen v2 1 "$ARP_TAGGED" \
    m="${MAC[v1]}" tags:='[]' ip=10.98.9.3
wait_until 5 "w2's ARP at w1 untagged" sniff_seen w1 1 "$ARP_TAGGED" \
    m="${MAC[w2]}" tags:='[]' ip=10.98.9.2
sniff_settle "${all[@]}"
log "VLAN 10 and 20 frames reach the trunk tagged with their VLAN"
V10="${MAC[v1]} ${MAC[v2]}"
V20="${MAC[w1]} ${MAC[w2]}"
for h in w1 w2 u; do
    sniff_expect "$h" -eq 0 "$FROM_ANY" "frames from VLAN 10 hosts at $h" macs="$V10"
done
for h in v1 v2 u; do
    sniff_expect "$h" -eq 0 "$FROM_ANY" "frames from VLAN 20 hosts at $h" macs="$V20"
done
for h in v1 v2 w1 w2 t; do
    sniff_expect "$h" -eq 0 "$FROM_ANY" "frames from the untagged member u at $h" macs="${MAC[u]}"
done
sniff_expect t -eq 0 "$FROM_ANY"' and f["vlans"] != tags' \
    "frames from VLAN 10 hosts at the trunk not tagged exactly [10]" macs="$V10" tags:='[10]'
sniff_expect t -eq 0 "$FROM_ANY"' and f["vlans"] != tags' \
    "frames from VLAN 20 hosts at the trunk not tagged exactly [20]" macs="$V20" tags:='[20]'

# Tagged frames from scapy on the trunk: ARP then ICMP echo to w1 in VLAN 20 and to v1 in
# VLAN 10; every reply must come back with the same single tag.
# The trunk's own addresses in each VLAN (scapy answers nothing: they only mark its frames).
T20=10.98.9.50
T10=10.98.9.60
out=$(l2_scapy "${NS[t]}" 60 probe.py --src "$T" --psrc $T20 --pdst 10.98.9.3 \
    --vlan 20 --icmp) || fail "probe from the trunk to w1 (10.98.9.3) in VLAN 20 failed: $out"
log "trunk -> w1 in VLAN 20: $out"
out=$(l2_scapy "${NS[t]}" 60 probe.py --src "$T" --psrc $T10 --pdst 10.98.9.1 \
    --vlan 10 --icmp) || fail "probe from the trunk to v1 (10.98.9.1) in VLAN 10 failed: $out"
log "trunk -> v1 in VLAN 10: $out"
ARP_UNTAGGED='mac(f["src"]) == mac(m) and f.get("psrc") == ip and f["vlans"] == []'
for h in w1 w2; do
    wait_until 5 "trunk's VLAN 20 ARP at $h untagged" sniff_seen "$h" 1 "$ARP_UNTAGGED" \
        m="$T" ip=$T20
done
for h in v1 v2; do
    wait_until 5 "trunk's VLAN 10 ARP at $h untagged" sniff_seen "$h" 1 "$ARP_UNTAGGED" \
        m="$T" ip=$T10
done
sniff_settle "${all[@]}"
FROM_IP='ip in (f.get("psrc"), f.get("ip_src"))'
for h in v1 v2 u; do
    sniff_expect "$h" -eq 0 "$FROM_IP" "trunk's VLAN 20 frames at $h" ip=$T20
done
for h in w1 w2 u; do
    sniff_expect "$h" -eq 0 "$FROM_IP" "trunk's VLAN 10 frames at $h" ip=$T10
done
# One MAC in two VLANs: two entries, keyed by VLAN.
fdb_expect brv "$T" pt 20 false "scapy's MAC in VLAN 20"
fdb_expect brv "$T" pt 10 false "scapy's MAC in VLAN 10"
vsctl fdb show brv
log "tagged frames from the trunk reach their VLAN's access members only, untagged"

# Frames with a VLAN the member does not carry: dropped, counted, seen by nobody.
mm0=$(drop_count vlan_mismatch)
tdrops0=$(iface_stat pt drops)
run_ok "VLAN 30 on the trunk" l2_scapy "${NS[t]}" 30 send.py --kind arp --src "$T" \
    --vlan 30 --psrc 10.98.9.70 --pdst 10.98.9.1 --count 20 >/dev/null
run_ok "untagged on the trunk" l2_scapy "${NS[t]}" 30 send.py --kind arp --src "$T" \
    --psrc 10.98.9.71 --pdst 10.98.9.1 --count 20 >/dev/null
run_ok "VLAN 20 on VLAN 10 access member v1" l2_scapy "${NS[v1]}" 30 send.py --kind arp \
    --src "${MAC[v1]}" --vlan 20 --psrc 10.98.9.72 --pdst 10.98.9.3 --count 10 >/dev/null
run_ok "VLAN 10 on the untagged member u" l2_scapy "${NS[u]}" 30 send.py --kind arp \
    --src "${MAC[u]}" --vlan 10 --psrc 10.98.9.73 --pdst 10.98.9.1 --count 10 >/dev/null
wait_until 5 "vlan_mismatch drops +60 (from $mm0)" drops_at_least vlan_mismatch $((mm0 + 60))
mm1=$(drop_count vlan_mismatch)
log "drops vlan_mismatch: $mm0 -> $mm1"
wait_until 5 "stats pt: drops +40 (from $tdrops0)" stat_at_least pt drops $((tdrops0 + 40))
sniff_settle "${all[@]}"
sniff_stop "${all[@]}"
for h in "${all[@]}"; do
    sniff_expect "$h" -eq 0 'f.get("psrc") in ips.split()' \
        "frames of a VLAN the sender's port does not carry, at $h" \
        ips="10.98.9.70 10.98.9.71 10.98.9.72 10.98.9.73"
done
# Access and untagged members never receive tagged frames.
for h in v1 v2 w1 w2 u; do
    sniff_expect "$h" -eq 0 'f["vlans"] != []' "tagged frames at access/untagged member $h"
done
# The MAC table learned nothing from the dropped frames: every entry's VLAN is one its
# interface carries.
fdb=$(vsctl --json fdb show brv)
bad=$(vs_json '[e for e in d if vl(e.get("vlan")) not in
    {"pv1": (10,), "pv2": (10,), "pw1": (20,), "pw2": (20,), "pu": (0,),
     "pt": (10, 20)}.get(e["iface"], ())]' <<<"$fdb")
assert_eq "$bad" "[]" "fdb brv entries in a VLAN their interface does not carry"
log "frames of VLANs a member does not carry: dropped, counted, not learned"

stop_vswitchd
vs_pass
