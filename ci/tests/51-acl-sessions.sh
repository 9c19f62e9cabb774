#!/usr/bin/env bash
# Sessions under load and over time (issue 14): a server behind a port whose `out` ACL
# admits TCP 8000 and UDP 9000 with permit-reflect and whose `in` ACL denies everything
# (its replies pass by sessions only), and a session limit of 50:
#  - a SYN flood from scapy (2,000 SYNs from spoofed sources nobody answers for, so each
#    session stays half-open) fills at most the limit: the oldest half-open sessions are
#    evicted, and counted; a TCP connection established before the flood keeps exchanging
#    messages through it, none lost;
#  - timeouts (set short for the test): a TCP session closed cleanly (FIN both ways) and an
#    idle UDP session are gone after their timeouts, the established one stays.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "51-acl-sessions"
port=$(vs_free_port)
VSWITCHD_EXTRA=(--metrics "127.0.0.1:$port")
start_vswitchd

run_ok "bridge" vsctl bridge add br0
vs_host c 10.51.0.20/24
C=$VS_NS
run_ok "client port" vsctl iface add cli af_packet iface="$VS_HOSTIF"
vs_host s 10.51.0.10/24
S=$VS_NS
run_ok "server port" vsctl iface add srv af_packet iface="$VS_HOSTIF"
run_ok "attach" vsctl bridge attach br0 cli
run_ok "attach" vsctl bridge attach br0 srv
vs_ping "$C" 10.51.0.10
S_MAC=$(ip -n "$S" -br link show eth0 | awk '{print $3}')

run_ok "server ingress" vsctl acl add srv-in "permit-reflect proto=tcp dport=8000" \
    "permit-reflect proto=udp dport=9000"
run_ok "server egress: nothing but replies" vsctl acl add srv-out deny
run_ok "bind" vsctl acl bind srv srv-in out
run_ok "bind" vsctl acl bind srv srv-out in
run_ok "a small table, short timeouts" vsctl session set limit=50 timeout-tcp-transitory=3 \
    timeout-udp=3 timeout-tcp=600
ip netns exec "$S" "$VS_PY" "$VS_ROOT/ci/acl/tcp_echo.py" serve 8000 >/dev/null 2>&1 &
vs_track_pid $!
ip netns exec "$S" "$VS_PY" "$VS_ROOT/ci/acl/udp_stream.py" echo 9000 >/dev/null 2>&1 &
vs_track_pid $!
wait_until 10 "servers listening" sh -c "ip netns exec '$S' ss -Hltn 'sport = :8000' | grep -q LISTEN &&
    ip netns exec '$S' ss -Hlun 'sport = :9000' | grep -q ."

# The established connection: messages every 0.1 s for 12 s, across the flood.
ip netns exec "$C" "$VS_PY" "$VS_ROOT/ci/acl/tcp_echo.py" talk 10.51.0.10 8000 12 \
    >"$VS_TMP/talk.json" 2>&1 &
talk=$!
vs_track_pid "$talk"
established() {
    vsctl --json sessions | vs_json_true 'any(s["dport"] == 8000 and s["state"] == "established" for s in d)'
}
wait_until 10 "the talking connection's session established" established

# The flood: 2,000 SYNs to the server from 10.51.0.100-199 (no such hosts: the server's
# SYN-ACKs wait for ARP answers that never come, so every session stays half-open).
ip netns exec "$C" "$VS_PY" - "$S_MAC" <<'PY' || fail "scapy flood failed"
import random, sys
from scapy.all import Ether, IP, TCP, sendp, conf
conf.verb = 0
pkts = [Ether(dst=sys.argv[1]) / IP(src="10.51.0.%d" % (100 + i % 100), dst="10.51.0.10") /
        TCP(sport=1024 + i, dport=8000, flags="S", seq=random.getrandbits(32))
        for i in range(2000)]
sendp(pkts, iface="eth0", inter=0.001)
PY
show=$(vsctl --json session show)
log "after the flood: $(vs_json '"%d live (limit %d), %d created, %d evicted, %d refused" % (d["live"], d["limit"], d["created"], d["evicted"], d["refused"])' <<<"$show")"
vs_json_true 'd["live"] <= 50' <<<"$show" || fail "more sessions than the limit: $show"
vs_json_true 'd["evicted"] >= 1900' <<<"$show" || fail "the flood's half-open sessions were not evicted: $show"
count=$(vsctl --json sessions | vs_json 'len(d)')
assert_int -le "$count" 50 "sessions listed after the flood"
vs_wait_exit "$talk" 30 || fail "the talking client did not finish"
talked=$(cat "$VS_TMP/talk.json")
vs_json_true 'd["sent"] >= 50 and d["answered"] == d["sent"]' <<<"$talked" ||
    fail "the established connection lost messages during the flood: $talked"
log "established connection through the flood: $(vs_json '"%d messages, %d answered" % (d["sent"], d["answered"])' <<<"$talked")"
grep -Eq '^vswitch_sessions_evicted_total [1-9]' <<<"$(vs_metrics "$port")" ||
    fail "no evictions in /metrics"

# Timeouts.
run_ok "flush" vsctl sessions flush
ip netns exec "$C" "$VS_PY" "$VS_ROOT/ci/acl/tcp_echo.py" once 10.51.0.10 8000 ||
    fail "a short TCP connection failed"
ip netns exec "$C" "$VS_PY" "$VS_ROOT/ci/acl/udp_stream.py" send 10.51.0.10 9000 10 0.1 >"$VS_TMP/udp.json"
vs_json_true 'd["echoed"] == d["sent"]' <"$VS_TMP/udp.json" || fail "UDP echo lost: $(cat "$VS_TMP/udp.json")"
listed() { vsctl --json sessions | vs_json_true "any(s[\"dport\"] == $1 and s[\"state\"] in $2 for s in d)"; }
listed 8000 '("closed", "closing")' || fail "the closed TCP session is not listed: $(vsctl sessions)"
listed 9000 '("active",)' || fail "the UDP session is not listed: $(vsctl sessions)"
gone() { ! vsctl --json sessions | vs_json_true 'len(d) > 0'; }
wait_until 15 "the closed TCP and idle UDP sessions expire (3 s timeouts)" gone
show=$(vsctl --json session show)
vs_json_true 'd["expired"] >= 2' <<<"$show" || fail "expiries not counted: $show"
log "closed TCP and idle UDP sessions expired: $(vs_json 'd["expired"]' <<<"$show") expired in all"
vs_pass
