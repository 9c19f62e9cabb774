#!/usr/bin/env bash
# Jumbo frames: two namespaces on veth pairs, their host ends DPDK af_packet interfaces
# (driver=dpdk; native ports' jumbo frames: 55-native-jumbo.sh) added with mtu=9000 and attached to a bridge, the namespace ends at MTU 9000 (tx checksum offload
# off, for TCP through af_packet).
#   - the switch makes its jumbo buffer pool only then (`vsctl mempools`), gives the ports
#     jumbo af_packet ring frames (devargs framesz=9728) and the host ends MTU 9000;
#   - `ping -M do -s 8972` (9000-byte IP packets, never fragmented) answers both ways, and
#     the 9014-byte frames are counted whole in rx_bytes / tx_bytes;
#   - iperf3 (3 s) both ways completes; its MSS and throughput are logged;
#   - refused in one stderr line, non-zero exit, nothing changed (interfaces, kernel MTUs):
#     `iface add ... mtu=9601` (past what the jumbo buffers carry), `iface set` past it,
#     and `iface set` of an interface added with standard buffers to mtu=9000; a
#     transaction failing after it opened a jumbo port and set a jumbo MTU (both undone);
#   - `iface set` within the jumbo class (9600, back to 9000) reaches the host end's MTU.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "20-jumbo"
start_vswitchd

pools() { vsctl --json mempools | vs_json '{p["name"]: p["capacity"] for p in d}'; }
log "mempools before any jumbo interface: $(pools)"
assert_eq "$(vsctl --json mempools | vs_json '[p["name"] for p in d if p["name"] == "vs_jumbo"]')" \
    "[]" "jumbo pool made before an interface needs it"

vs_host_pair 10.99.20
nsa=$VS_NSA nsb=$VS_NSB ha=$VS_HA hb=$VS_HB
for ns in "$nsa" "$nsb"; do
    ip -n "$ns" link set eth0 mtu 9000 || fail "cannot set MTU 9000 on eth0 in $ns"
done
run_ok "add a mtu=9000" vsctl iface add a af_packet iface="$ha" mtu=9000 driver=dpdk >/dev/null
run_ok "add b mtu=9000" vsctl iface add b af_packet iface="$hb" mtu=9000 driver=dpdk >/dev/null
run_ok "bridge add br0" vsctl bridge add br0 >/dev/null
run_ok "attach a" vsctl bridge attach br0 a >/dev/null
run_ok "attach b" vsctl bridge attach br0 b >/dev/null
vsctl iface list

# The jumbo pool now exists; ports have jumbo ring frames; host ends carry MTU 9000.
log "mempools: $(pools)"
vsctl mempools
assert_eq "$(vsctl --json mempools | vs_json 'len([p for p in d if p["name"] == "vs_jumbo"])')" \
    1 "vs_jumbo in vsctl mempools after adding a jumbo interface"
for i in a b; do
    show=$(vsctl --json iface show "$i")
    devargs=$(vs_json 'd["devargs"]' <<<"$show")
    log "iface $i: devargs $devargs"
    [[ "$devargs" == *",framesz=9728,blocksz=77824,framecnt=512" ]] ||
        fail "iface $i: devargs without the jumbo af_packet ring: $devargs"
    assert_eq "$(vs_json 'd["mtu"]' <<<"$show")" 9000 "iface show $i: mtu"
done
assert_eq "$(cat "/sys/class/net/$ha/mtu")" 9000 "kernel MTU of $ha (host end of a)"
assert_eq "$(cat "/sys/class/net/$hb/mtu")" 9000 "kernel MTU of $hb (host end of b)"

# Standard-sized pings first (neighbours resolved, MACs learned), then jumbo ones.
vs_ping "$nsa" 10.99.20.2
# jumbo_ping NS DST: 5 echo requests of 9000-byte IP packets with DF set, all answered.
jumbo_ping() {
    local out
    out=$(ip netns exec "$1" ping -M "do" -s 8972 -c 5 -i 0.2 -w 10 "$2" 2>&1) || {
        printf '%s\n' "$out" >&2
        fail "ping -M do -s 8972 $1 -> $2 failed"
    }
    grep -q ' 0% packet loss' <<<"$out" || {
        printf '%s\n' "$out" >&2
        fail "ping -M do -s 8972 $1 -> $2 lost packets"
    }
    grep -q '^8980 bytes from' <<<"$out" || {
        printf '%s\n' "$out" >&2
        fail "ping -M do -s 8972 $1 -> $2: no 8980-byte reply"
    }
    log "ping -M do -s 8972 $1 -> $2: 5/5 replies of 8980 bytes ($(grep -o 'rtt.*' <<<"$out"))"
}

# A 9000-byte IP packet is a 9014-byte frame: five of them each way must show in the byte
# counters whole (a frame cut at the standard 2048-byte buffers could not add this much).
rxa0=$(iface_stat a rx_bytes) txb0=$(iface_stat b tx_bytes)
jumbo_ping "$nsa" 10.99.20.2
wait_until 5 "a rx_bytes +5 x 9014" stat_at_least a rx_bytes $((rxa0 + 5 * 9014))
wait_until 5 "b tx_bytes +5 x 9014" stat_at_least b tx_bytes $((txb0 + 5 * 9014))
log "a rx_bytes $rxa0 -> $(iface_stat a rx_bytes), b tx_bytes $txb0 -> $(iface_stat b tx_bytes)"
rxb0=$(iface_stat b rx_bytes)
jumbo_ping "$nsb" 10.99.20.1
wait_until 5 "b rx_bytes +5 x 9014" stat_at_least b rx_bytes $((rxb0 + 5 * 9014))

# TCP at MTU 9000, both ways.
for dir in "$nsa $nsb 10.99.20.2" "$nsb $nsa 10.99.20.1"; do
    read -r cns sns sip <<<"$dir"
    vs_iperf "$cns" "$sns" "$sip" 3
    log "iperf3 $cns -> $sip: MSS $(vs_json 'd["start"].get("tcp_mss_default", "?")' \
        <"$VS_IPERF_JSON"), $(vs_json '"%.0f Mbit/s" % (d["end"]["sum_received"]["bits_per_second"] / 1e6)' \
        <"$VS_IPERF_JSON")"
done
mss=$(vs_json 'd["start"].get("tcp_mss_default", 0)' <"$VS_IPERF_JSON")
assert_int -gt "$mss" 8000 "iperf3 MSS at MTU 9000"
vsctl stats
vsctl drops | grep -v ' 0$' || true

# ---------------------------------------------------------------------------------------
# Refusals. s: a third interface, added without mtu= (standard buffers).
hs=$(vs_ifname s)
vs_veth_pair "$hs" "$(vs_ifname sp)"
hn=$(vs_ifname n)
vs_veth_pair "$hn" "$(vs_ifname np)"
run_ok "add s" vsctl iface add s af_packet iface="$hs" driver=dpdk >/dev/null
state() {
    vsctl --json iface list |
        vs_json "[{k: i[k] for k in ('name','type','admin_up','mtu','mac','devargs')} for i in d]"
    for l in "$ha" "$hb" "$hs" "$hn"; do printf '%s=%s\n' "$l" "$(cat "/sys/class/net/$l/mtu")"; done
    vsctl --json mempools | vs_json '[(p["name"], p["capacity"]) for p in d]'
}
VS_BEFORE=$(state)
vs_refused state 'mtu must be a number from 68 to 9600' iface add big af_packet iface="$hn" mtu=9601
vs_refused state 'mtu must be a number from 68 to 9600' iface add big null mtu=65000
vs_refused state 'mtu must be a number from 68 to 9600' iface set a mtu=9700
vs_refused state 'standard buffers.*add it again with mtu=9000' iface set s mtu=9000
vs_refused state 'standard buffers.*add it again with mtu=1961' iface set s up mtu=1961
# A transaction whose last change fails at its port, after a jumbo port was opened and a
# jumbo MTU set: the port is closed, both host ends' MTUs are put back.
printf 'iface add big af_packet iface=%s mtu=9000\niface set a mtu=9600\niface add bogus dpdk devargs=net_bogus0\n' \
    "$hn" >"$VS_TMP/undo.txt"
vs_refused state 'change 3 of 3.*no DPDK driver takes' transaction "$VS_TMP/undo.txt"
vs_refused_report
log "$VS_REFUSED refusals, each one line, nothing changed"

# Within the class: up to 9600 and back, on the host end too.
run_ok "iface set a mtu=9600" vsctl iface set a mtu=9600 >/dev/null
assert_eq "$(cat "/sys/class/net/$ha/mtu")" 9600 "kernel MTU of $ha after iface set a mtu=9600"
assert_eq "$(iface_stat a mtu)" 9600 "stats a: mtu after iface set a mtu=9600"
run_ok "iface set a mtu=9000" vsctl iface set a mtu=9000 >/dev/null
assert_eq "$(cat "/sys/class/net/$ha/mtu")" 9000 "kernel MTU of $ha after iface set a mtu=9000"
jumbo_ping "$nsa" 10.99.20.2

stop_vswitchd
vs_pass
