#!/usr/bin/env bash
# Malformed and unusual IPv4 packets through the router (RFC 1812 §5.2.2, §5.3.7). scapy in
# host a sends, case by case (ci/scapy/ip4_cases.py), to 10.37.9.9, which the switch routes
# via host b (b's kernel does not forward and drops them silently):
#  - dropped, 3 frames each, and each counted under its reason with the exact count, every
#    other reason unchanged (`vsctl drops`): bad_header (IPv4 header cut short, IHL < 5, IHL
#    past the end of the frame, Total Length past the end of the frame, Total Length below
#    the header, below the header with options, version 6), bad_checksum (a wrong checksum,
#    an option changed after the checksum), martian (source 127.0.0.1, 224.0.0.9,
#    255.255.255.255; destination 127.0.0.2), no_route (198.51.100.7);
#  - forwarded and checked byte by byte where b captures them (scapy): IPv4 options (NOPs,
#    router alert, 40 bytes of them), a first, a middle and a last fragment, DF, a frame with
#    18 bytes of Ethernet padding and one with 200 trailing bytes (both leave without them),
#    TTL 2: TTL one less, the header checksum right, every other byte as sent;
#  - TTL 1 and TTL 0: ICMP time exceeded from the router to a, quoting the packet, and
#    nothing forwarded or dropped;
#  - afterwards a still pings b, and no mbuf leaked (every mempool's in_use, read while
#    idle, as before the packets).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

vs_test_init "37-l3-malformed"
l2_need_scapy
start_vswitchd

vs_host a 10.37.1.2/24
NSA=$VS_NS HA=$VS_HOSTIF
vs_host b 10.37.2.2/24
NSB=$VS_NS HB=$VS_HOSTIF
ip -n "$NSA" route add default via 10.37.1.1
ip -n "$NSB" route add default via 10.37.2.1
run_ok "routed interface ra" vsctl iface add ra af_packet iface="$HA"
run_ok "routed interface rb" vsctl iface add rb af_packet iface="$HB"
run_ok "ra's address" vsctl addr add ra 10.37.1.1/24
run_ok "rb's address" vsctl addr add rb 10.37.2.1/24
# Host f on a tap, for the fragments: DPDK's af_packet driver has the kernel reassemble
# IPv4 fragments before the switch sees them (PACKET_FANOUT_FLAG_DEFRAG), its tap does not.
vs_tap_host f rf 10.37.3.2/24
NSF=$VS_NS TAPF=$VS_HOSTIF
ip -n "$NSF" route add default via 10.37.3.1
run_ok "rf's address" vsctl addr add rf 10.37.3.1/24
run_ok "a route via b" vsctl route add 10.37.9.0/24 via 10.37.2.2
# a and f resolve their gateways, the switch resolves b (ARP both ways).
vs_ping "$NSA" 10.37.2.2
vs_ping "$NSF" 10.37.2.2

imac() { vsctl --json iface show "$1" | vs_json 'mac(d["mac"])'; }
MAC_RA=$(imac ra) MAC_RB=$(imac rb) MAC_RF=$(imac rf)
MAC_B=$(ns_mac "$NSB")
DST=10.37.9.9
EXPECTED=$VS_TMP/expected.jsonl
: >"$EXPECTED"

# in_use: {pool: in_use} of every mempool; mempools_steady (status only, polled 0.2 s
# apart): the same in 6 reads in a row (1 s), the last read left in IN_USE.
in_use() { vsctl --json mempools | vs_json '{p["name"]: p["in_use"] for p in d}'; }
IN_USE="" STEADY=0
mempools_steady() {
    local now
    now=$(in_use) || return 1
    if [[ "$now" == "$IN_USE" ]]; then STEADY=$((STEADY + 1)); else STEADY=1; fi
    IN_USE=$now
    ((STEADY >= 6))
}
wait_until 15 "mempool in_use steady before the packets" mempools_steady
before=$IN_USE
log "mempools in_use before: $before"

sniff_start b "$NSB" eth0 --raw
sniff_ready b
sniff_mark b rb

# drops_delta BEFORE: {reason: increase} of `vsctl drops` since BEFORE (a drops document),
# reasons that did not change left out.
drops_delta() {
    vsctl --json drops | vs_json '{r: n - b.get(r, 0) for r, n in sorted(d.items()) if n != b.get(r, 0)}' \
        b:="$1"
}
# drops_reached BEFORE REASON N: status only: REASON grew by N or more since BEFORE.
drops_reached() {
    local doc
    doc=$(vsctl --json drops 2>/dev/null) || return 1
    vs_json_true 'd.get(r, 0) - b.get(r, 0) >= n' b:="$1" r="$2" n:="$3" <<<"$doc" 2>/dev/null
}
at_b() { sniff_seen b "$1" 'f.get("ip_dst") == dst' dst="$DST"; }

forwarded=0 ndrop=0 nfwd=0 nttl=0
declare -A TOTAL=()
while read -r name outcome frames port <&3; do
    d0=$(vsctl --json drops)
    if [[ "$port" == tap ]]; then
        from=(--iface "$TAPF" --dmac "$MAC_RF" --psrc 10.37.3.2 --gw 10.37.3.1) ns=$NSF
    else
        from=(--iface eth0 --dmac "$MAC_RA" --psrc 10.37.1.2 --gw 10.37.1.1) ns=$NSA
    fi
    l2_scapy "$ns" 20 ip4_cases.py send --case "$name" "${from[@]}" --pdst "$DST" \
        --expected "$EXPECTED" >/dev/null ||
        fail "case $name: sending (or its check at the sender) failed (see above)"
    case $outcome in
    drop:*)
        reason=${outcome#drop:}
        wait_until 10 "case $name: $frames drops under $reason" drops_reached "$d0" "$reason" "$frames"
        got=$(drops_delta "$d0")
        assert_eq "$got" "{\"$reason\": $frames}" "case $name: drops counted"
        TOTAL[$reason]=$((${TOTAL[$reason]:-0} + frames))
        ndrop=$((ndrop + 1))
        log "$name: $frames dropped, $reason +$frames"
        ;;
    forward)
        forwarded=$((forwarded + frames))
        wait_until 10 "case $name: $frames frames at b" at_b "$forwarded"
        assert_eq "$(drops_delta "$d0")" "{}" "case $name: drops counted"
        nfwd=$((nfwd + 1))
        log "$name: $frames frames forwarded to b (from ${ns#"$VS_TAG"})"
        ;;
    time-exceeded)
        # ip4_cases.py send waited for the time exceeded and checked it.
        assert_eq "$(drops_delta "$d0")" "{}" "case $name: drops counted"
        nttl=$((nttl + 1))
        log "$name: ICMP time exceeded back from the router, quoting the packet"
        ;;
    *) fail "ip4_cases.py list: unknown outcome $outcome" ;;
    esac
done 3< <("$VS_PY" "$VS_SCAPY_DIR/ip4_cases.py" list)
((ndrop >= 14 && nfwd >= 10 && nttl >= 2)) ||
    fail "ip4_cases.py list gave $ndrop drop, $nfwd forward, $nttl time-exceeded cases"

# Everything the switch sent b is captured: exactly the forwarded packets, each right.
sniff_settle b
sniff_stop b
sniff_expect b -eq "$forwarded" 'f.get("ip_dst") == dst' "frames to $DST at b" dst="$DST"
out=$("$VS_PY" "$VS_SCAPY_DIR/ip4_cases.py" verify --expected "$EXPECTED" \
    --capture "$VS_TMP/sniff-b.jsonl" --smac "$MAC_RB" --dmac "$MAC_B" --pdst "$DST" 2>&1) ||
    fail "forwarded packets are not what a router sends:"$'\n'"$out"
log "$out"
log "drops by reason: $(vsctl --json drops | vs_json '{r: d[r] for r in sorted(d) if d[r]}')"
for reason in "${!TOTAL[@]}"; do
    assert_int -eq "$(drop_count "$reason")" "${TOTAL[$reason]}" "drops under $reason in all"
done

vs_ping "$NSA" 10.37.2.2
IN_USE="" STEADY=0
wait_until 15 "mempool in_use steady after the packets" mempools_steady
[[ "$IN_USE" == "$before" ]] || fail "mbuf leak: mempool in_use $IN_USE after the packets, $before before"
log "mempools in_use after: $IN_USE (as before)"

vs_pass
