#!/usr/bin/env bash
# GRE (l3 and teb, with and without a key), IPIP (point-to-point and point-to-multipoint)
# and Geneve against scapy, since the kernel here has no gre, ipip or geneve devices:
#  - the underlay: namespace u (192.168.45.2-.6/24 on eth0) on the switch's routed
#    interface ul (192.168.45.1/24);
#  - routed pod p (10.45.1.2/24, gateway the switch's pp 10.45.1.1) and routes out of L3
#    tunnels: 10.45.101/24 dev gre1 (gre l3 to .2), 10.45.102/24 via 10.45.12.2 dev gre2
#    onlink (gre l3 key=7 ttl=0 df=on to .2), 10.45.103/24 dev ipip1 (ipip to .3, ttl=33),
#    10.45.104/24 and 10.45.105/24 via 192.168.45.4 and .6 dev tunl0 onlink (ipip without
#    a remote: the outer destination is the route's next hop);
#  - bridged pod b (10.45.2.2/24) in br0 with gtap0 (gre teb to .4), gtap1 (gre teb key=9
#    ttl=20 to .4) and gnv0 (geneve vni=45 df=on to .5);
#  - out: p pings a far host of each routed /24 with TTL 50 (routed at once: no neighbour
#    to resolve on an L3 tunnel), b pings an unknown MAC with TTL 40 (flooded into the three
#    L2 tunnels); what the switch sends into the underlay, captured there, is checked field
#    by field with scapy (ci/scapy/tunnel_cases.py check: outer addresses, TTL, DF, IPv4 and
#    inner checksums, GRE flags and key, UDP port and length, Geneve VNI, inner TTL);
#  - in: scapy in u sends 5 echo requests through each tunnel (p2mp: from .4 and .6, any
#    remote) interleaved with 5 of each malformed kind; p receives each tunnel's 5 with TTL
#    29 (routed once), b each L2 tunnel's with TTL 30, nothing malformed; their echo replies
#    go back through the tunnel each came from (b's by the static MAC entries); the
#    malformed ones are counted exactly under gre_short, inner_too_short, bad_header (an
#    inner Total Length past the packet), gre_checksum, tunnel_unknown and
#    geneve_critical_option.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

vs_test_init "45-tunnel-scapy"
l2_need_scapy
start_vswitchd
N=5

vs_host u 192.168.45.2/24
NSU=$VS_NS HU=$VS_HOSTIF
for a in 3 4 5 6; do
    ip -n "$NSU" addr add "192.168.45.$a/24" dev eth0
done
vs_host p 10.45.1.2/24
NSP=$VS_NS HP=$VS_HOSTIF
ip -n "$NSP" route add default via 10.45.1.1
vs_host b 10.45.2.2/24
NSB=$VS_NS HB=$VS_HOSTIF

run_ok "underlay" vsctl iface add ul af_packet iface="$HU"
run_ok "underlay address" vsctl addr add ul 192.168.45.1/24
run_ok "routed pod" vsctl iface add pp af_packet iface="$HP"
run_ok "its gateway" vsctl addr add pp 10.45.1.1/24
run_ok "bridged pod" vsctl iface add pb af_packet iface="$HB"
run_ok "bridge" vsctl bridge add br0
run_ok "attach pb" vsctl bridge attach br0 pb
L=local=192.168.45.1
run_ok "gre1" vsctl tunnel add gre1 gre $L remote=192.168.45.2
run_ok "gre2" vsctl tunnel add gre2 gre $L remote=192.168.45.2 key=7 ttl=0 df=on
run_ok "ipip1" vsctl tunnel add ipip1 ipip $L remote=192.168.45.3 ttl=33
run_ok "tunl0" vsctl tunnel add tunl0 ipip $L
run_ok "gtap0" vsctl tunnel add gtap0 gre $L remote=192.168.45.4 mode=teb
run_ok "gtap1" vsctl tunnel add gtap1 gre $L remote=192.168.45.4 key=9 mode=teb ttl=20
run_ok "gnv0" vsctl tunnel add gnv0 geneve vni=45 $L remote=192.168.45.5 df=on
for t in gtap0 gtap1 gnv0; do run_ok "attach $t" vsctl bridge attach br0 "$t"; done
# The hosts behind them, static (learning takes a moment: b's first replies would flood).
run_ok "fdb gtap0" vsctl fdb add br0 02:45:00:00:01:01 gtap0
run_ok "fdb gtap1" vsctl fdb add br0 02:45:00:00:01:02 gtap1
run_ok "fdb gnv0" vsctl fdb add br0 02:45:00:00:01:03 gnv0 remote=192.168.45.5
run_ok "route dev gre1" vsctl route add 10.45.101.0/24 dev gre1
run_ok "route via gre2" vsctl route add 10.45.102.0/24 via 10.45.12.2 dev gre2 onlink
run_ok "route dev ipip1" vsctl route add 10.45.103.0/24 dev ipip1
run_ok "route via tunl0 (.4)" vsctl route add 10.45.104.0/24 via 192.168.45.4 dev tunl0 onlink
run_ok "route via tunl0 (.6)" vsctl route add 10.45.105.0/24 via 192.168.45.6 dev tunl0 onlink
vsctl tunnel list

ULMAC=$(vsctl --json iface show ul | vs_json 'mac(d["mac"])')
UMAC=$(ns_mac "$NSU")
BMAC=$(ns_mac "$NSB")
SPEC=$VS_TMP/spec.json
cat >"$SPEC" <<EOF
{"local": "192.168.45.1", "ul_mac": "$ULMAC", "u_mac": "$UMAC",
 "pod": "10.45.1.2", "br_pod": "10.45.2.2", "br_pod_mac": "$BMAC",
 "tunnels": [
  {"name": "gre1", "kind": "gre", "remote": "192.168.45.2", "key": null, "ttl": 64, "df": false, "net": "10.45.101"},
  {"name": "gre2", "kind": "gre", "remote": "192.168.45.2", "key": 7, "ttl": 0, "df": true, "net": "10.45.102"},
  {"name": "ipip1", "kind": "ipip", "remote": "192.168.45.3", "ttl": 33, "df": false, "net": "10.45.103"},
  {"name": "tunl0 via .4", "kind": "ipip", "remote": "192.168.45.4", "ttl": 64, "df": false, "net": "10.45.104"},
  {"name": "tunl0 via .6", "kind": "ipip", "remote": "192.168.45.6", "ttl": 64, "df": false, "net": "10.45.105"},
  {"name": "gtap0", "kind": "teb", "remote": "192.168.45.4", "key": null, "ttl": 64, "df": false,
   "mac": "02:45:00:00:01:01", "ip": "10.45.2.51"},
  {"name": "gtap1", "kind": "teb", "remote": "192.168.45.4", "key": 9, "ttl": 20, "df": false,
   "mac": "02:45:00:00:01:02", "ip": "10.45.2.52"},
  {"name": "gnv0", "kind": "geneve", "remote": "192.168.45.5", "vni": 45, "ttl": 64, "df": true,
   "mac": "02:45:00:00:01:03", "ip": "10.45.2.53"}]}
EOF
# b answers the hosts behind the L2 tunnels without asking (no ARP flooded into them), and
# sends its probe to a MAC nobody has.
for x in 1 2 3; do
    ip -n "$NSB" neigh replace "10.45.2.5$x" lladdr "02:45:00:00:01:0$x" dev eth0 nud permanent
done
ip -n "$NSB" neigh replace 10.45.2.99 lladdr 02:45:00:00:00:99 dev eth0 nud permanent

# capture NS FILE: tcpdump of what arrives on NS's eth0 (IPv4 only) into FILE; waits until
# it listens. Sets CAP_PID.
capture() {
    ip netns exec "$1" tcpdump -Z root -U -n -i eth0 -Q in -w "$2" ip 2>"$2.log" &
    CAP_PID=$!
    vs_track_pid "$CAP_PID"
    wait_until 10 "tcpdump listening in $1" grep -q 'listening on' "$2.log"
}
capture "$NSU" "$VS_TMP/underlay.pcap"
CAPU=$CAP_PID
capture "$NSP" "$VS_TMP/routed.pcap"
CAPP=$CAP_PID
capture "$NSB" "$VS_TMP/bridged.pcap"
CAPB=$CAP_PID

# Out: one probe per routed /24 (TTL 50) and b's flooded one (TTL 40); nobody answers them.
pids=()
for n in 101 102 103 104 105; do
    ip netns exec "$NSP" ping -c 1 -W 2 -t 50 "10.45.$n.7" >/dev/null 2>&1 &
    pids+=($!)
done
ip netns exec "$NSB" ping -c 1 -W 2 -t 40 10.45.2.99 >/dev/null 2>&1 &
pids+=($!)

# In: good and malformed tunnel traffic from u.
declare -A BEFORE
REASONS="gre_short inner_too_short bad_header gre_checksum tunnel_unknown geneve_critical_option"
for r in $REASONS; do BEFORE[$r]=$(drop_count "$r"); done
l2_scapy "$NSU" 30 tunnel_cases.py send --spec "$SPEC" --count "$N" ||
    fail "scapy could not send the tunnel cases"
for r in $REASONS; do
    wait_until 10 "$N more $r drops" drops_at_least "$r" $((BEFORE[$r] + N))
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
# b's echo replies: one per request, through the tunnel each came from.
wait_until 10 "b's echo replies went out" stat_at_least gnv0 tx_packets $((N + 2))
sleep 0.5
for pid in $CAPU $CAPP $CAPB; do vs_stop_pid "$pid" INT 5; done
for r in $REASONS; do
    assert_eq "$(drop_count "$r")" $((BEFORE[$r] + N)) "$r drops"
done
log "malformed: $(vsctl --json drops | vs_json '", ".join("%s=%d" % (k, v) for k, v in sorted(d.items()) if v)')"

"$VS_PY" -B "$VS_SCAPY_DIR/tunnel_cases.py" check --spec "$SPEC" --count "$N" \
    --underlay "$VS_TMP/underlay.pcap" --routed "$VS_TMP/routed.pcap" \
    --bridged "$VS_TMP/bridged.pcap" || fail "the tunnel traffic is not as configured (see above)"

# Nothing waited for a neighbour on an L3 tunnel, nothing went out of one unencapsulated.
for r in tunnel_no_remote not_ip no_route; do
    assert_eq "$(drop_count "$r")" 0 "$r drops"
done
vs_pass
