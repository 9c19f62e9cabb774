#!/usr/bin/env bash
# vs-test: serial
# Replacing, editing and rebinding ACLs under traffic, with two workers (issue 14): a
# server behind a port whose ACLs admit only a UDP echo service and iperf3 (`out`,
# permit-reflect) and deny everything it sends (`in`: its replies pass only through
# sessions). Each flow's replies arrive on another worker than its requests (see the queue
# placement below), so every reply is checked by the other worker than the one that
# created its session. While a
# fixed-rate UDP stream (each datagram echoed) and an iperf3 transfer run, the `out` ACL's
# rules are replaced several times (acl set) and it is rebound to another ACL with the same
# permits (unbind + bind in one transaction): every datagram and every echo arrives, iperf3
# completes, and nothing is denied. iperf3 is capped at 300 Mbit/s: uncapped it filled the
# kernel's af_packet rings (300 of 12,000 datagrams lost with every switch drop counter at 0).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "50-acl-replace"
VS_WORKERS=2
start_vswitchd

# The ports' queues: a DPDK af_packet port (driver=dpdk) has a queue per worker, and the kernel's fanout
# hash is symmetric (the flow dissector orders the endpoints), so a flow and its replies
# land on the same queue index of each port. A one-queue port added between the two makes
# the second port's queues go to the workers in the other order (queues go to the least
# loaded worker): queue q of the client's port and queue q of the server's are polled by
# different workers, so every reply is checked by the other worker.
vs_host c 10.50.1.20/24
C=$VS_NS
ip -n "$C" route add default via 10.50.1.1
run_ok "client port" vsctl iface add cli af_packet iface="$VS_HOSTIF" driver=dpdk
run_ok "a one-queue port" vsctl iface add pad null
vs_host s 10.50.0.10/24
S=$VS_NS
ip -n "$S" route add default via 10.50.0.1
run_ok "server port" vsctl iface add srv af_packet iface="$VS_HOSTIF" driver=dpdk
run_ok "client subnet" vsctl addr add cli 10.50.1.1/24
run_ok "server subnet" vsctl addr add srv 10.50.0.1/24
vs_ping "$C" 10.50.0.10

placement=$(vsctl --json workers)
w_of() { # IFACE QUEUE: the worker polling that queue
    vs_json 'first(w["id"] for w in d for q in w["rx_queues"] if q["iface"] == i and q["queue"] == n)' \
        i="$1" n:="$2" <<<"$placement"
}
for q in 0 1; do
    [[ "$(w_of cli $q)" != "$(w_of srv $q)" ]] ||
        fail "queue $q of cli and of srv are polled by one worker: $placement"
done
log "cli's queues on workers $(w_of cli 0),$(w_of cli 1); srv's on $(w_of srv 0),$(w_of srv 1)"

run_ok "server ingress ACL" vsctl acl add srv-in "permit-reflect proto=udp dport=9000" \
    "permit-reflect proto=tcp dport=5201"
run_ok "the same permits, another ACL" vsctl acl add srv-in2 "permit-reflect proto=tcp dport=5201" \
    "permit-reflect proto=udp dport=9000" "deny proto=udp dport=9001"
run_ok "server egress ACL (deny all: replies pass by sessions only)" vsctl acl add srv-out deny
run_ok "bind ingress" vsctl acl bind srv srv-in out
run_ok "bind egress" vsctl acl bind srv srv-out in

ip netns exec "$S" "$VS_PY" "$VS_ROOT/ci/acl/udp_stream.py" echo 9000 >/dev/null 2>&1 &
vs_track_pid $!
wait_until 10 "UDP echo listening" sh -c "ip netns exec '$S' ss -Hlun 'sport = :9000' | grep -q ."
# The stream: 1,000 datagrams a second for 12 s, each echoed.
ip netns exec "$C" "$VS_PY" "$VS_ROOT/ci/acl/udp_stream.py" send 10.50.0.10 9000 1000 12 \
    >"$VS_TMP/stream.json" 2>&1 &
stream=$!
vs_track_pid "$stream"
vs_iperf_start_server "$S" 10.50.0.10
timeout 60 ip netns exec "$C" iperf3 -c 10.50.0.10 -t 10 -b 300M -J </dev/null >"$VS_TMP/iperf.json" 2>&1 &
iperf=$!
vs_track_pid "$iperf"

# Meanwhile: replace the rules (the same permits, written differently), then rebind.
sleep 1
for i in 1 2 3 4 5; do
    if ((i % 2)); then
        run_ok "replace srv-in's rules ($i)" vsctl acl set srv-in "deny proto=udp dport=9001" \
            "permit-reflect proto=udp dport=9000" "permit-reflect proto=tcp dport=5201"
    else
        run_ok "replace srv-in's rules ($i)" vsctl acl set srv-in \
            "permit-reflect proto=tcp dport=5201" "permit-reflect proto=udp dport=9000"
    fi
    sleep 0.7
done
cat >"$VS_TMP/rebind.txt" <<EOF
acl unbind srv out
acl bind srv srv-in2 out
EOF
run_ok "rebind to srv-in2 (one transaction)" vsctl transaction "$VS_TMP/rebind.txt"
sleep 1
run_ok "and back" vsctl transaction <(printf 'acl unbind srv out\nacl bind srv srv-in out\n')

vs_wait_exit "$iperf" 60 || fail "iperf3 did not finish"
[[ "$VS_RC" == 0 ]] || { tail -5 "$VS_TMP/iperf.json" >&2; fail "iperf3 failed ($VS_RC)"; }
bytes=$(vs_json 'd["end"]["sum_received"]["bytes"]' <"$VS_TMP/iperf.json")
assert_int -gt "$bytes" 0 "iperf3 bytes received"
log "iperf3 through the replacements: $bytes bytes"
vs_wait_exit "$stream" 60 || fail "the UDP stream did not finish"
result=$(cat "$VS_TMP/stream.json")
vs_json_true 'd["sent"] == 12000 and d["echoed"] == d["sent"]' <<<"$result" ||
    fail "UDP datagrams or echoes lost across the ACL changes: $result (drops: $(vsctl --json drops))"
log "UDP stream: $(vs_json '"%d sent, %d echoed" % (d["sent"], d["echoed"])' <<<"$result")"
assert_eq "$(drop_count acl_deny)" 0 "acl_deny drops"
assert_eq "$(drop_count session_limit)" 0 "session_limit drops"
hits=$(vsctl --json acl show srv-out | vs_json 'd["default_hits"] + sum(r["hits"] for r in d["rules"])')
log "the server's egress ACL searched its rules for $hits packets (all its replies went by sessions)"
vs_pass
