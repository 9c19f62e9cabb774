#!/usr/bin/env bash
# The packet graph at work, seen through `vsctl runtime` (and the logical interface index):
#   - two hosts bridged and two hosts cross-connected: pings through both; the per-stage
#     packet counts move as the frames pass: rx and ethernet-input see every frame,
#     l2-bridge the bridged ones, output what left; each stage that ran has cycles > 0 and
#     vectors of at least one packet;
#   - a frame tagged with a VLAN an untagged member does not carry is dropped by
#     ethernet-input as vlan_mismatch (the drop shows under that stage and in `drops`);
#     one sent to the bridge with an unknown destination and flood=off is l2-bridge's
#     flood_off;
#   - every interface has its own logical index; `vsctl runtime` prints its tables.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

vs_test_init "21-graph-runtime"
l2_need_scapy
start_vswitchd

declare -A NS MAC
host() { l2_named_host "$@"; }
host a 10.98.21.1/24
host b 10.98.21.2/24
host x 10.98.22.1/24
host y 10.98.22.2/24
run_ok "bridge add br0 flood=off" vsctl bridge add br0 flood=off >/dev/null
run_ok "attach pa" vsctl bridge attach br0 pa >/dev/null
run_ok "attach pb" vsctl bridge attach br0 pb >/dev/null
run_ok "xconnect px py" vsctl xconnect add px py >/dev/null

# stage_sum DOC STAGE FIELD: FIELD of STAGE summed over workers in a `vsctl --json runtime`.
stage_sum() {
    vs_json 'sum(s.get(field, 0) for w in d["workers"] for s in w["stages"] if s["stage"] == st)' \
        st="$2" field="$3" <<<"$1"
}
# stage_drop DOC STAGE REASON: drops of STAGE for REASON, summed over workers.
stage_drop() {
    vs_json 'sum(s.get("drops", {}).get(r, 0) for w in d["workers"] for s in w["stages"] if s["stage"] == st)' \
        st="$2" r="$3" <<<"$1"
}
# stage_grew STAGE FIELD BEFORE N: status only: the stage's FIELD is at least BEFORE + N.
stage_grew() {
    local doc
    doc=$(vsctl --json runtime 2>/dev/null) || return 1
    (($(stage_sum "$doc" "$1" "$2") >= $3 + $4))
}

before=$(vsctl --json runtime)
log "runtime before: $before"
for st in rx ethernet-input l2-bridge punt inject output; do
    [[ $(vs_json '[s["stage"] for s in d["workers"][0]["stages"]].count(st)' st=$st <<<"$before") == 1 ]] ||
        fail "vsctl --json runtime lists no stage $st: $before"
done
declare -A B
for st in rx ethernet-input l2-bridge output; do
    B[$st]=$(stage_sum "$before" "$st" packets)
done

vs_ping "${NS[a]}" 10.98.21.2
vs_ping "${NS[x]}" 10.98.22.2
# Each ping run: >= 6 requests and 6 replies (plus ARP) per pair: >= 12 frames through the
# bridge and >= 12 through the cross-connect (one burst each, mostly).
wait_until 10 "ethernet-input counted the pings" stage_grew ethernet-input packets "${B[ethernet-input]}" 24
wait_until 10 "rx counted the pings" stage_grew rx packets "${B[rx]}" 24
wait_until 10 "l2-bridge counted the bridged pings" stage_grew l2-bridge packets "${B[l2-bridge]}" 12
wait_until 10 "output counted what left" stage_grew output packets "${B[output]}" 24
after=$(vsctl --json runtime)
for st in rx ethernet-input l2-bridge output; do
    # Cycles are measured on one burst in 8: a stage that saw packets in a timed burst has
    # them.
    vs_json_true 'all(s["calls"] > 0 and s["vector_size"] >= 1
        and (s["timed_packets"] == 0 or (s["cycles"] > 0 and s["cycles_per_packet"] > 0))
        for w in d["workers"] for s in w["stages"] if s["stage"] == st and s["packets"] > 0)' \
        st=$st <<<"$after" || fail "stage $st: calls, cycles or vector size missing: $after"
    log "stage $st: packets $(stage_sum "$after" "$st" packets) (was ${B[$st]}), cycles/packet $(
        vs_json 'round(sum(s["cycles"] for w in d["workers"] for s in w["stages"] if s["stage"] == st)
            / max(1, sum(s["timed_packets"] for w in d["workers"] for s in w["stages"] if s["stage"] == st)), 1)' \
            st=$st <<<"$after")"
done
vs_json_true 'sum(s["timed_packets"] for w in d["workers"] for s in w["stages"]
    if s["stage"] == "rx") > 0' <<<"$after" || fail "no rx burst was timed: $after"
# The bridge saw none of the cross-connected frames: its count grew by the bridged ones
# only (well below everything ethernet-input saw).
eth=$(($(stage_sum "$after" ethernet-input packets) - B[ethernet-input]))
br=$(($(stage_sum "$after" l2-bridge packets) - B[l2-bridge]))
((br < eth)) || fail "l2-bridge counted $br frames of the $eth ethernet-input saw: cross-connected frames went through the bridge"

# Drops, by stage and reason.
mm0=$(stage_drop "$after" ethernet-input vlan_mismatch)
fo0=$(stage_drop "$after" l2-bridge flood_off)
total0=$(drop_count vlan_mismatch)
run_ok "VLAN 30 tagged frames on untagged pa" l2_scapy "${NS[a]}" 30 send.py --src "${MAC[a]}" \
    --dst "${MAC[b]}" --vlan 30 --count 3 --text vlan30 >/dev/null
run_ok "unknown unicast with flood=off" l2_scapy "${NS[a]}" 30 send.py --src "${MAC[a]}" \
    --dst 02:98:21:00:00:99 --count 2 --text unknown >/dev/null
stage_drop_at_least() {
    local doc
    doc=$(vsctl --json runtime 2>/dev/null) || return 1
    (($(stage_drop "$doc" "$1" "$2") >= $3))
}
wait_until 10 "ethernet-input's vlan_mismatch drops" stage_drop_at_least ethernet-input vlan_mismatch $((mm0 + 3))
wait_until 10 "l2-bridge's flood_off drops" stage_drop_at_least l2-bridge flood_off $((fo0 + 2))
wait_until 10 "vsctl drops sums the stages" drops_at_least vlan_mismatch $((total0 + 3))
final=$(vsctl --json runtime)
assert_eq "$(stage_drop "$final" l2-bridge vlan_mismatch)" 0 "l2-bridge has no vlan_mismatch (ethernet-input classifies)"

# Logical indices: one per interface, all different.
assert_eq "$(vsctl --json iface list | vs_json 'len(set(i["index"] for i in d)) == len(d) == 4')" \
    true "four interfaces, four distinct logical indices"
text=$(vsctl runtime)
printf '%s\n' "$text"
grep -q '^WORKER  STAGE' <<<"$text" || fail "vsctl runtime prints no stage table"
grep -q 'ethernet-input  vlan_mismatch' <<<"$text" || fail "vsctl runtime prints no drops by stage"
grep -q '^slow path: punted' <<<"$text" || fail "vsctl runtime prints no slow path line"
vs_pass
