#!/usr/bin/env bash
# The session table of stateful ACLs through vsctl against a running vswitchd (the control
# plane's part: no packet makes a session here; ci/tests/48 drives packets):
#  - session set (each key, iface-limit following the limit until set), session show
#    (table and --json: the settings and the counters), --json replies;
#  - every bad input: exit non-zero, one "vsctl: ..." line naming the key, nothing changed;
#  - sessions --json on a fresh switch: an empty array; sessions IFACE, sessions flush
#    [IFACE] -> 0 (and an unknown interface refused);
#  - watch: set_session_config and flush_sessions are config events; /metrics lines;
#  - restart (SIGTERM) and crash (SIGKILL, the journal) keep the settings; a graceful stop
#    with no session leaves no sessions file; a damaged sessions file is logged, removed
#    and ignored (vswitchd starts all the same);
#  - a session a packet made (a pcap interface behind a permit-reflect ACL) survives a
#    graceful restart (saved, put back, not created again) and is flushed.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "49-session-control"
port=$(vs_free_port)
VSWITCHD_EXTRA=(--metrics "127.0.0.1:$port")
start_vswitchd
vs_watch_config

run_ok "interfaces" vsctl iface add a null
run_ok "interface b" vsctl iface add b null

# Defaults, as session show --json prints them.
show=$(vsctl --json session show)
vs_json_true 'set(d) >= {"limit", "iface_limit", "timeout_tcp", "timeout_tcp_transitory",
    "timeout_udp", "timeout_icmp", "live", "created", "evicted", "refused", "expired"}' \
    <<<"$show" || fail "session show --json lacks fields: $show"
K='["limit", "iface_limit", "timeout_tcp", "timeout_tcp_transitory", "timeout_udp", "timeout_icmp"]'
settings() { vsctl --json session show | vs_json '[d[k] for k in keys]' keys:="$K"; }
counters() { vsctl --json session show | vs_json '[d[k] for k in ["live", "created", "evicted", "refused", "expired"]]'; }
assert_eq "$(settings)" '[262144, 262144, 7200, 240, 600, 30]' "default settings"
assert_eq "$(counters)" '[0, 0, 0, 0, 0]' "counters of a fresh switch"

# session set: --json prints the table's settings after it; the rest stays.
reply=$(vsctl --json session set timeout-udp=60 timeout-icmp=10)
assert_eq "$(vs_json '[d["timeout_udp"], d["timeout_icmp"], d["timeout_tcp"]]' <<<"$reply")" \
    '[60, 10, 7200]' "session set --json"
run_ok "session set limit (iface-limit follows it)" vsctl session set limit=100000
assert_eq "$(settings)" '[100000, 100000, 7200, 240, 60, 10]' "limit set, iface-limit following"
run_ok "session set iface-limit and the tcp timeouts" \
    vsctl session set iface-limit=5000 timeout-tcp=3600 timeout-tcp-transitory=120
assert_eq "$(settings)" '[100000, 5000, 3600, 120, 60, 10]' "every key set"
vsctl session show | grep -Eq '^iface-limit: +5000$' || fail "session show table: $(vsctl session show)"
vsctl session show | grep -Eq '^timeout-udp: +60s$' || fail "session show table: $(vsctl session show)"
vsctl session show | grep -Eq '^live: +0$' || fail "session show table: $(vsctl session show)"
log "session set and show"

# sessions: empty on a fresh switch, in JSON and as a table; per interface; flush.
assert_eq "$(vsctl --json sessions)" '[]' "sessions --json on a fresh switch"
assert_eq "$(vsctl --json sessions a)" '[]' "sessions --json a"
assert_eq "$(vsctl --json sessions --max 5)" '[]' "sessions --json --max 5"
vsctl sessions | head -1 | grep -Eq '^IFACE +DIR +PROTO +SRC +SPORT +DST +DPORT +STATE +AGE +IDLE +TRANSLATED$' ||
    fail "sessions table header: $(vsctl sessions)"
assert_eq "$(vsctl sessions flush)" "0 sessions removed" "sessions flush"
assert_eq "$(vsctl --json sessions flush a | vs_json 'd["removed"]')" 0 "sessions flush a --json"
printf 'session set timeout-icmp=11\nsessions flush b\n' >"$VS_TMP/txn.txt"
run_ok "a transaction with session set and sessions flush" vsctl transaction "$VS_TMP/txn.txt"
assert_eq "$(vsctl --json session show | vs_json 'd["timeout_icmp"]')" 11 "timeout-icmp from the transaction"

for e in "set_session_config sessions" "flush_sessions all" "flush_sessions a" "flush_sessions b"; do
    wait_until 10 "config event '$e'" grep -q "config $e\$" "$VS_WATCH_LOG"
done
vs_stop_pid "$VS_WATCH_PID" TERM 5
log "watch: set_session_config and flush_sessions events"

metrics=$(vs_metrics "$port")
for line in 'vswitch_sessions{state="established"} 0' 'vswitch_sessions{state="new"} 0' \
    'vswitch_sessions_live 0' 'vswitch_session_limit 100000' 'vswitch_session_iface_limit 5000' \
    'vswitch_sessions_created_total 0' 'vswitch_sessions_evicted_total 0' \
    'vswitch_sessions_refused_total 0' 'vswitch_sessions_expired_total 0'; do
    grep -qxF "$line" <<<"$metrics" || fail "/metrics: '$line' missing: $(grep session <<<"$metrics")"
done
log "/metrics: session gauges and counters"

# ---------------------------------------------------------------------------------------
# Bad input: one line naming the key, nothing changed.

VS_BEFORE=$(settings)
refused() { vs_refused settings "$@"; }
refused 'nothing to set' session set
refused 'limit must be from 1 to 458752, not 0' session set limit=0
refused 'limit must be from 1 to 458752, not 458753' session set limit=458753
refused 'limit must be an integer' session set limit=many
refused 'limit must be an integer' session set limit=-1
refused 'iface-limit must be from 1 to the limit \(100000\), not 100001' session set iface-limit=100001
refused 'limit 100 is below iface-limit 5000: lower iface-limit too' session set limit=100
refused 'limit 100 is below iface-limit 5000' session set limit=100 timeout-udp=5
refused 'iface-limit must be from 1' session set iface-limit=0
refused 'timeout-tcp must be from 1 to 604800 seconds, not 0' session set timeout-tcp=0
refused 'timeout-tcp-transitory must be from 1 to 604800 seconds, not 604801' session set timeout-tcp-transitory=604801
refused 'timeout-udp must be from 1 to 604800 seconds' session set timeout-udp=0 limit=5
refused 'timeout-icmp must be from 1 to 604800 seconds' session set timeout-icmp=9999999
refused 'timeout-icmp must be an integer' session set timeout-icmp=1s
refused 'unknown key "timeout"' session set timeout=5
refused 'unknown key "timeout_tcp"' session set timeout_tcp=5
refused 'invalid argument "limit5": expected KEY=VALUE' session set limit5
refused 'interface "ghost" not found' sessions flush ghost
refused 'interface "ghost" not found' sessions ghost
refused 'unexpected argument' sessions a b
printf 'session set timeout-udp=99\nsession set timeout-tcp=0\n' >"$VS_TMP/bad.txt"
refused 'change 2 of 2 \(set_session_config\): timeout-tcp must be.*; nothing was applied' \
    transaction "$VS_TMP/bad.txt"
log "$VS_REFUSED bad commands refused, settings unchanged"
vs_refused_report

# ---------------------------------------------------------------------------------------
# Restarts keep the settings (state file on SIGTERM, journal on SIGKILL).

vs_restart_same settings TERM
assert_file_absent "$VS_STATE.sessions" "sessions file after a stop with no session"
grep -q '"session_config"' "$VS_STATE" || fail "state file lacks session_config: $(cat "$VS_STATE")"
run_ok "session set just before a crash" vsctl session set timeout-tcp=1800
vs_restart_same settings KILL
assert_eq "$(settings)" '[100000, 5000, 1800, 120, 60, 11]' "settings after the crash"

# A damaged sessions file: logged, removed, ignored.
stop_vswitchd
printf 'vssess\0\ncut short' >"$VS_STATE.sessions"
restart_vswitchd
assert_file_absent "$VS_STATE.sessions" "the damaged sessions file"
grep -q 'not a valid sessions file' "$VSWITCHD_LOG" || fail "the damaged sessions file was not logged"
assert_eq "$(vsctl --json sessions)" '[]' "no session from a damaged file"
assert_eq "$(settings)" '[100000, 5000, 1800, 120, 60, 11]' "settings after a damaged sessions file"
log "a damaged sessions file is logged and ignored"

# ---------------------------------------------------------------------------------------
# A session made by a packet (a pcap interface's, behind a permit-reflect ACL) survives a
# graceful restart: saved on SIGTERM, put back at start (not created again: the pcap is
# empty then), then flushed.

vs_write_pcap "$VS_TMP/rx.pcap" 4
cat >"$VS_TMP/pcap.txt" <<TXN
acl add reflect permit-reflect
iface add p pcap rx=$VS_TMP/rx.pcap
bridge add br0
bridge attach br0 p
acl bind p reflect in
TXN
run_ok "a pcap interface behind a permit-reflect ACL" vsctl transaction "$VS_TMP/pcap.txt"
one_session() { [[ "$(vsctl --json sessions p | vs_json 'len(d)')" == 1 ]]; }
wait_until 10 "the pcap's flow to have a session" one_session
flow='[d[0][k] for k in ["iface", "direction", "proto", "src", "dst", "sport", "dport", "state"]]'
want='["p", "in", "udp", "10.99.250.1", "10.99.250.255", 9999, 9999, "new"]'
assert_eq "$(vsctl --json sessions | vs_json "$flow")" "$want" "the pcap's session"
assert_eq "$(counters)" '[1, 1, 0, 0, 0]' "counters with one session"
grep -qxF 'vswitch_sessions{state="new"} 1' <<<"$(vs_metrics "$port")" || fail "/metrics: no new session"
vsctl sessions | grep -Eq '^p +in +udp +10\.99\.250\.1 +9999 +10\.99\.250\.255 +9999 +new ' ||
    fail "sessions table: $(vsctl sessions)"
stop_vswitchd
[[ -s "$VS_STATE.sessions" ]] || fail "no sessions file after a graceful stop"
vs_write_pcap "$VS_TMP/rx.pcap" 0
sleep 1
restart_vswitchd
assert_file_absent "$VS_STATE.sessions" "the sessions file, once read"
assert_eq "$(vsctl --json sessions | vs_json "$flow")" "$want" "the session after a restart"
assert_eq "$(counters)" '[1, 0, 0, 0, 0]' "restored, not created"
vs_json_true 'd[0]["age_seconds"] >= 1' <<<"$(vsctl --json sessions)" ||
    fail "the downtime is not in the session's age: $(vsctl --json sessions)"
grep -q 'sessions restored restored=1' "$VSWITCHD_LOG" || fail "no 'sessions restored' log line"
assert_eq "$(vsctl sessions flush p)" "1 sessions removed" "sessions flush p"
assert_eq "$(vsctl --json sessions)" '[]' "sessions after the flush"
log "a session survives SIGTERM and a restart, and is flushed"
stop_vswitchd
assert_file_absent "$VS_STATE.sessions" "a sessions file with no session to save"
vs_pass
