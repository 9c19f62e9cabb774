#!/usr/bin/env bash
# vs-test: serial
# (serial: the aging checks need a host pinging every 0.2 s to keep its entry through an
# age of 3 s, and quiet hosts to be gone within age + 3 s; on 2 shared cores a parallel test
# could stall the pings or the switch's aging scan long enough to fail them.)
# L2 bridging: four namespaces (veth, host ends af_packet interfaces) on one bridge.
#   - every pair pings, iperf3 runs between two of them;
#   - `fdb show` lists each host's MAC (read inside its namespace) on its own interface;
#   - flush per interface and per bridge, detach removes the interface's entries;
#   - unknown unicast floods to every other member and not back to its sender (flood=on,
#     the default);
#   - a station moving to another port is followed (host a's MAC put on host d);
# then on a second bridge with age=3 and flood=off:
#   - a static entry is not moved by a frame with its MAC from another port, and unicast
#     to it goes to its port only;
#   - unknown unicast is not flooded (flood=off), ARP still is (pings work);
#   - entries of hosts that keep talking stay, quiet hosts' entries age out (age + 3 s),
#     then every learned entry is gone and the static entry is still there.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

vs_test_init "07-l2-bridge"
l2_need_scapy
start_vswitchd

hosts=(a b c d)
declare -A NS IP MAC PORT
i=1
for h in "${hosts[@]}"; do
    NS[$h]=$(vs_ifname "$h")
    IP[$h]=10.98.7.$i
    PORT[$h]=p$h
    l2_host "${NS[$h]}" "${PORT[$h]}" "${IP[$h]}/24"
    MAC[$h]=$(ns_mac "${NS[$h]}")
    log "host $h: namespace ${NS[$h]}, ${IP[$h]}, MAC ${MAC[$h]}, switch port ${PORT[$h]}"
    i=$((i + 1))
done

# bridge_lists EXPR [NAME=VALUE ...]: status only: EXPR holds for `vsctl --json bridge list`.
bridge_lists() { vsctl --json bridge list | json_true "$@"; }
LISTS_BR='any((b if isinstance(b, str) else b["name"]) == br for b in d)'

# ---------------------------------------------------------------------------------------
# Bridge br0: defaults (learning on, age 300 s, flooding on), four untagged members.
run_ok "bridge add br0" vsctl bridge add br0 >/dev/null
show=$(vsctl --json bridge show br0)
log "bridge show br0 (empty): $show"
assert_eq "$(vs_json 'd["name"]' <<<"$show")" br0 "bridge show br0: name"
assert_eq "$(vs_json 'd["learn"]' <<<"$show")" true "bridge show br0: learn (default)"
assert_eq "$(vs_json 'd["age"]' <<<"$show")" 300 "bridge show br0: age (default)"
assert_eq "$(vs_json 'd.get("flood", True)' <<<"$show")" true "bridge show br0: flood (default)"
assert_eq "$(vs_json 'len(d["members"])' <<<"$show")" 0 "bridge show br0: members"
bridge_lists "$LISTS_BR" br=br0 ||
    fail "bridge list does not list br0: $(vsctl --json bridge list)"

for h in "${hosts[@]}"; do
    run_ok "attach ${PORT[$h]}" vsctl bridge attach br0 "${PORT[$h]}" >/dev/null
done
show=$(vsctl --json bridge show br0)
log "bridge show br0: $show"
assert_eq "$(vs_json 'sorted(m["iface"] for m in d["members"])' <<<"$show")" \
    '["pa", "pb", "pc", "pd"]' "bridge show br0: members"
assert_eq "$(vs_json 'all(not m.get("vlan") and not m.get("trunk") for m in d["members"])' \
    <<<"$show")" true "bridge show br0: every member untagged (no vlan, no trunk)"
vsctl bridge show br0

# Every pair pings (each vs_ping waits for the first reply, then needs 5 of 5).
for ((x = 0; x < ${#hosts[@]}; x++)); do
    for ((y = x + 1; y < ${#hosts[@]}; y++)); do
        vs_ping "${NS[${hosts[x]}]}" "${IP[${hosts[y]}]}"
    done
done
vs_iperf "${NS[a]}" "${NS[b]}" "${IP[b]}" 3

# Each host's MAC on its own port, learned, and nothing else in the table.
for h in "${hosts[@]}"; do
    wait_until 5 "fdb br0: ${MAC[$h]} on ${PORT[$h]}" \
        fdb_has br0 "${MAC[$h]}" "${PORT[$h]}" 0 false
done
vsctl fdb show br0
assert_int -eq "$(fdb_count br0)" 4 "fdb br0: entries (four hosts, nothing else)"
fdb=$(vsctl --json fdb show br0)
assert_eq "$(vs_json 'all(isinstance(e["age_seconds"], int) and 0 <= e["age_seconds"] <= 300
    for e in d)' <<<"$fdb")" true "fdb br0: age_seconds of every entry within 0..300"
log "fdb br0 lists the four hosts' MACs on their own ports"

# Flush one interface's entries, then the bridge's.
run_ok "fdb flush br0 pa" vsctl fdb flush br0 pa >/dev/null
fdb_lacks br0 "${MAC[a]}" || fail "fdb flush br0 pa: ${MAC[a]} still listed"
assert_int -eq "$(fdb_count br0)" 3 "fdb br0 after flushing pa: entries"
run_ok "fdb flush br0" vsctl fdb flush br0 >/dev/null
assert_int -eq "$(fdb_count br0)" 0 "fdb br0 after flushing the bridge: entries"
log "fdb flush per interface and per bridge"

# Unknown unicast floods to every other member (flood=on): a frame from a to a MAC nobody
# has reaches b, c and d, and is not sent back to a (a's capture sees only what arrives).
unknown=02:98:07:00:00:ee
for h in "${hosts[@]}"; do sniff_start "$h-uu" "${NS[$h]}"; done
sniff_ready a-uu b-uu c-uu d-uu
for h in "${hosts[@]}"; do sniff_mark "$h-uu" "${PORT[$h]}"; done
run_ok "send unknown unicast from a" \
    l2_scapy "${NS[a]}" 30 send.py --src "${MAC[a]}" --dst "$unknown" --count 5 \
    --text unknown-unicast-br0 >/dev/null
for h in b c d; do
    wait_until 5 "unknown unicast flooded to $h" \
        sniff_seen "$h-uu" 5 'f["dst"] == m' m="$unknown"
done
sniff_settle a-uu b-uu c-uu d-uu
sniff_stop a-uu b-uu c-uu d-uu
for h in b c d; do
    sniff_expect "$h-uu" -eq 5 'f["dst"] == m' "unknown unicast flooded to $h (exactly once)" \
        m="$unknown"
done
sniff_expect a-uu -eq 0 'f["dst"] == m' "unknown unicast sent back to its sender a" m="$unknown"
log "unknown unicast flooded to b, c and d (flood=on), not back to a"
wait_until 5 "fdb br0: ${MAC[a]} learned on pa from the flooded frames" \
    fdb_has br0 "${MAC[a]}" pa 0 false
fdb_lacks br0 "$unknown" any || fail "fdb br0 holds the destination MAC $unknown"

# A station moving: a's MAC appears on d's port. Host a goes down (its port stops talking),
# host d takes a's MAC and talks to b; the entry must follow to pd, and b's replies with it.
vs_ping "${NS[a]}" "${IP[d]}"
wait_until 5 "fdb br0: ${MAC[a]} on pa before the move" fdb_has br0 "${MAC[a]}" pa
ip -n "${NS[a]}" link set eth0 down
ns_set_mac "${NS[d]}" "${MAC[a]}"
ns_neigh_flush "${NS[@]}"
vs_ping "${NS[d]}" "${IP[b]}"
wait_until 5 "fdb br0: ${MAC[a]} moved to pd" fdb_has br0 "${MAC[a]}" pd 0 false
vsctl fdb show br0
log "station move followed: ${MAC[a]} now on pd"
# And back: d takes its own MAC again, a comes back up; a's MAC returns to pa.
ns_set_mac "${NS[d]}" "${MAC[d]}"
ip -n "${NS[a]}" link set eth0 up
ns_neigh_flush "${NS[@]}"
vs_ping "${NS[a]}" "${IP[d]}"
wait_until 5 "fdb br0: ${MAC[a]} moved back to pa" fdb_has br0 "${MAC[a]}" pa 0 false
wait_until 5 "fdb br0: ${MAC[d]} on pd" fdb_has br0 "${MAC[d]}" pd 0 false
log "station moved back: ${MAC[a]} on pa, ${MAC[d]} on pd"

# Detaching an interface removes its entries; detach the rest, delete the bridge.
run_ok "detach pa" vsctl bridge detach br0 pa >/dev/null
fdb_lacks br0 "${MAC[a]}" any || fail "detach br0 pa: ${MAC[a]} still in fdb br0"
fdb_has br0 "${MAC[d]}" pd || fail "detach br0 pa removed pd's entry ${MAC[d]}"
assert_eq "$(vsctl --json bridge show br0 | vs_json 'sorted(m["iface"] for m in d["members"])')" \
    '["pb", "pc", "pd"]' "bridge show br0 after detaching pa: members"
for p in pb pc pd; do
    run_ok "detach $p" vsctl bridge detach br0 "$p" >/dev/null
done
assert_int -eq "$(fdb_count br0)" 0 "fdb br0 with no members: entries"
run_ok "bridge del br0" vsctl bridge del br0 >/dev/null
! bridge_lists "$LISTS_BR" br=br0 ||
    fail "bridge list still lists br0 after bridge del: $(vsctl --json bridge list)"
log "detach removes entries; br0 deleted"

# ---------------------------------------------------------------------------------------
# Bridge br1: age 3 s, no flooding of unknown unicast, the same four hosts.
age=3
run_ok "bridge add br1" vsctl bridge add br1 age=$age flood=off >/dev/null
show=$(vsctl --json bridge show br1)
assert_eq "$(vs_json 'd["age"]' <<<"$show")" $age "bridge show br1: age"
assert_eq "$(vs_json 'd.get("flood", False)' <<<"$show")" false "bridge show br1: flood"
for h in "${hosts[@]}"; do
    run_ok "attach ${PORT[$h]} to br1" vsctl bridge attach br1 "${PORT[$h]}" >/dev/null
done
# ARP (broadcast) still floods with flood=off: fresh neighbour caches, and pings work.
ns_neigh_flush "${NS[@]}"
vs_ping "${NS[a]}" "${IP[b]}"
vs_ping "${NS[c]}" "${IP[d]}"

# A static entry for a MAC no host has, on pc.
static=02:98:07:00:00:5a
run_ok "fdb add br1 $static pc" vsctl fdb add br1 "$static" pc >/dev/null
fdb_expect br1 "$static" pc 0 true "fdb add br1 $static pc"
vsctl fdb show br1
fdb=$(vsctl --json fdb show br1)
assert_eq "$(l2_json '[e for e in d if not {"mac", "vlan", "iface", "static", "age_seconds"} <= set(e)]' \
    <<<"$fdb")" "[]" "fdb show br1 --json: entries without one of mac, vlan, iface, static, age_seconds"

# Frames with the static MAC as source arrive from d's port: the entry must not move.
rx0=$(iface_stat pd rx_packets)
run_ok "send 20 frames from d with source $static" \
    l2_scapy "${NS[d]}" 30 send.py --src "$static" --count 20 --text static-src >/dev/null
wait_until 5 "pd received the 20 frames" stat_at_least pd rx_packets $((rx0 + 20))
fdb_expect br1 "$static" pc 0 true "static entry after 20 frames with its MAC from pd"
log "static entry $static stayed on pc after frames with its MAC arrived on pd"

# Unicast to the static MAC goes to pc only; unknown unicast goes nowhere (flood=off).
for h in b c d; do sniff_start "$h-st" "${NS[$h]}"; done
sniff_ready b-st c-st d-st
for h in b c d; do sniff_mark "$h-st" "${PORT[$h]}"; done
run_ok "send 5 frames from a to $static" \
    l2_scapy "${NS[a]}" 30 send.py --src "${MAC[a]}" --dst "$static" --count 5 \
    --text to-static >/dev/null
fo0=$(drop_count flood_off)
run_ok "send 5 frames from a to unknown $unknown" \
    l2_scapy "${NS[a]}" 30 send.py --src "${MAC[a]}" --dst "$unknown" --count 5 \
    --text unknown-unicast-br1 >/dev/null
wait_until 5 "frames to $static at c" sniff_seen c-st 5 'f["dst"] == m' m="$static"
wait_until 5 "drops flood_off +5 (from $fo0)" drops_at_least flood_off $((fo0 + 5))
# Both sends are dealt with (delivered, dropped); everything sent to b, c, d is captured.
sniff_settle b-st c-st d-st
sniff_stop b-st c-st d-st
sniff_expect b-st -eq 0 'f["dst"] == m' "frames to static $static at b" m="$static"
sniff_expect d-st -eq 0 'f["dst"] == m' "frames to static $static at d (its source port)" \
    m="$static"
for h in b c d; do
    sniff_expect "$h-st" -eq 0 'f["dst"] == m' "unknown unicast at $h with flood=off" \
        m="$unknown"
done
log "unknown unicast not flooded with flood=off (drops flood_off: $fo0 -> $(drop_count flood_off))"

# Aging. a keeps pinging b for 8 s (longer than age + the 1 s scan + margin): their entries
# must be there at every look; c and d are quiet: their entries go within age + 3 s.
# Fresh neighbour caches first: with flood=off, an echo to a MAC that has aged out would
# be dropped (unknown unicast) until the kernel re-ARPs.
ns_neigh_flush "${NS[a]}" "${NS[b]}"
plog=$VS_TMP/ping-aging.log
ip netns exec "${NS[a]}" ping -c 40 -i 0.2 -W 1 "${IP[b]}" </dev/null >"$plog" 2>&1 &
ping_pid=$!
vs_track_pid "$ping_pid"
ab_learned() { fdb_has br1 "${MAC[a]}" pa && fdb_has br1 "${MAC[b]}" pb; }
cd_gone() { fdb_lacks br1 "${MAC[c]}" && fdb_lacks br1 "${MAC[d]}"; }
wait_until 5 "fdb br1: a and b learned while pinging" ab_learned
t0=$SECONDS
looks=0
quiet_gone=""
# look: one reading of the table (on stdin): "bad: ..." if a, b or the static entry is not
# where it belongs, else "quiet-gone" once c's and d's entries are gone, else "ok".
LOOK='(lambda where: next(
          ("bad: %s is on %s, expected [%s]" % (m, where(m), p)
           for m, p in ((a, "pa"), (b, "pb"), (s, "pc")) if where(m) != [p]),
          "quiet-gone" if not where(c) and not where(dd) else "ok"))(
      lambda m: [e["iface"] for e in d if mac(e["mac"]) == mac(m)])'
look() {
    vs_json "$LOOK" a="${MAC[a]}" b="${MAC[b]}" s="$static" c="${MAC[c]}" dd="${MAC[d]}"
}
while vs_alive "$ping_pid"; do
    doc=$(vsctl --json fdb show br1) || fail "vsctl fdb show br1 failed"
    verdict=$(look <<<"$doc") || fail "cannot read fdb br1 (see above): $doc"
    [[ "$verdict" != bad* ]] ||
        fail "fdb br1 while a pings b (entries must stay, the static one too): $verdict; $doc"
    if [[ -z "$quiet_gone" && "$verdict" == quiet-gone ]]; then
        quiet_gone=$((SECONDS - t0))
    fi
    looks=$((looks + 1))
    ((SECONDS - t0 < 20)) || fail "ping a -> b still running after 20 s"
    sleep 0.2 # the sampling interval of the looks (this loop is the check, not a wait)
done
vs_wait_exit "$ping_pid" 1 || true
log "fdb br1: a and b present in all $looks looks during 8 s of pinging; $(grep -E 'packets transmitted' "$plog")"
if [[ -z "$quiet_gone" ]]; then
    wait_until $((age + 3)) "fdb br1: quiet hosts c and d aged out" cd_gone
fi
log "quiet hosts c and d aged out${quiet_gone:+ (gone ${quiet_gone}s into the ping)}"

# Everybody quiet: every learned entry goes within age + 3 s; the static one stays.
wait_until $((age + 3)) "fdb br1: every learned entry aged out" fdb_count_is br1 0 learned
fdb_expect br1 "$static" pc 0 true "static entry after aging"
assert_int -eq "$(fdb_count br1)" 1 "fdb br1 after aging: entries (the static one)"
vsctl fdb show br1
log "learned entries aged out within ${age}+3 s; the static entry stayed"

run_ok "fdb del br1 $static" vsctl fdb del br1 "$static" >/dev/null
assert_int -eq "$(fdb_count br1)" 0 "fdb br1 after fdb del: entries"

stop_vswitchd
vs_pass
