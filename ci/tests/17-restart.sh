#!/usr/bin/env bash
# vs-test: serial
# Restart = the same switch, and traffic comes back fast:
#  - two namespaces on a bridge (af_packet members, a static MAC, a VLAN member, a
#    cross-connect of two null interfaces, an interface set down with its own MTU);
#  - ping every 50 ms across the bridge while vswitchd is stopped (SIGTERM) and started
#    again on the same state file: the configuration read back is identical and the
#    longest gap between ping replies is under 2 s;
#    (MACs included: null interfaces, whose driver makes a MAC up, keep theirs);
#  - the state file and its journal are not world-readable (0640), and a 0644 file of an
#    older vswitchd is replaced by a 0640 one at start;
#  - a crash (SIGKILL) right after changes: the journal brings them back (an interface
#    added without mac= with the MAC it had);
#  - a state file of an older vswitchd, with no MAC recorded: the MAC the driver gives is
#    recorded at start and kept from then on;
#  - an interface that cannot be restored is reported and kept in a copy of the old state;
#  - a corrupt state file, and a damaged journal, are refused at start with a one-line
#    message naming the file, and left byte for byte as they were.
# Serial (not run beside other tests): the ping gap is a timing.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "17-restart"
start_vswitchd

vs_host_pair 10.99.7
nsa=$VS_NSA ha=$VS_HA hb=$VS_HB

cat >"$VS_TMP/config.txt" <<EOF
iface add a af_packet iface=$ha
iface add b af_packet iface=$hb
iface add n1 null
iface add n2 null mtu=9000
iface add n3 null
bridge add br0 age=120 learn-limit=1000
bridge attach br0 a
bridge attach br0 b
bridge attach br0 n3 vlan=20
fdb add br0 02:00:00:00:07:01 b
fdb add br0 02:00:00:00:07:02 n3 vlan=20
xconnect add n1 n2
iface set n2 down
EOF
run_ok "configure (one transaction)" vsctl transaction "$VS_TMP/config.txt"
vs_ping "$nsa" 10.99.7.2

# The configuration as the API reports it (counters and learned entries left out).
snapshot() {
    {
        vsctl --json iface list | vs_json "[{k: i[k] for k in ('name','type','admin_up','mtu','mac')} for i in d]"
        vsctl --json xconnect list
        vsctl --json bridge list | vs_json "[{k: b[k] for k in ('name','learn','age','learn_limit','members')} for b in d]"
        vsctl --json fdb show br0 | vs_json "[e for e in d if e['static']]"
    } 2>&1
}
before=$(snapshot)
mac_before=$(iface_stat n1 mac)
# As if written by an older vswitchd, which left its files world-readable.
chmod 0644 "$VS_STATE"

# ping_replies_since LOG T N: status only: LOG (ping -D output) has at least N replies
# stamped after T (seconds since the epoch).
ping_replies_since() {
    "$VS_PY" - "$@" <<'PY'
import re, sys
log, t, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
with open(log) as f:
    times = [float(x) for x in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", f.read(), re.M)]
sys.exit(0 if sum(1 for x in times if x > t) >= n else 1)
PY
}
# elapsed T0 T1: T1 - T0 (seconds since the epoch, as date +%s.%N prints them), 2 decimals.
elapsed() {
    "$VS_PY" -c 'import sys; print("%.2f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "$2"
}

# Ping every 50 ms with timestamps during the restart: 20 replies (1 s) before the stop and
# 20 after the restart.
ping_log=$VS_TMP/ping.log
t_ping=$(date +%s.%N)
ip netns exec "$nsa" ping -D -i 0.05 -W 1 10.99.7.2 >"$ping_log" 2>&1 &
ping_pid=$!
vs_track_pid "$ping_pid"
wait_until 10 "20 ping replies before the restart" ping_replies_since "$ping_log" "$t_ping" 20
t0=$(date +%s.%N)
stop_vswitchd
restart_vswitchd
t1=$(date +%s.%N)
log "stop + start took $(elapsed "$t0" "$t1") s"
wait_until 10 "20 ping replies after the restart" ping_replies_since "$ping_log" "$t1" 20
vs_stop_pid "$ping_pid" INT 5

after=$(snapshot)
if [[ "$before" != "$after" ]]; then
    diff <(echo "$before") <(echo "$after") >&2 || true
    fail "configuration differs after the restart"
fi
log "configuration identical after the restart ($(wc -c <<<"$after") bytes of JSON compared)"
assert_eq "$(iface_stat n1 mac)" "$mac_before" "MAC of null interface n1 after the restart"
log "null interface n1: MAC $mac_before before the restart, $(iface_stat n1 mac) after"
assert_eq "$(stat -c %a "$VS_STATE")" 640 "mode of the state file (0644 before the restart)"
log "state file mode after the restart: $(stat -c '%a %n' "$VS_STATE")"

# The longest time without a reply, around the restart.
gap=$("$VS_PY" - "$ping_log" "$t0" <<'PY'
import re, sys
times = [float(m.group(1)) for m in re.finditer(r'^\[(\d+\.\d+)\] \d+ bytes from', open(sys.argv[1]).read(), re.M)]
t0 = float(sys.argv[2])
if not any(t < t0 for t in times) or not any(t > t0 for t in times):
    print("none"); sys.exit()
print(f"{max(b - a for a, b in zip(times, times[1:])):.3f}")
PY
)
[[ "$gap" != none ]] || fail "no ping replies on one side of the restart (log: $ping_log)"
log "longest gap between two ping replies (50 ms apart when all is well): $gap s"
GAP_LIMIT=2.0
vs_json_true 'd < limit' limit:="$GAP_LIMIT" <<<"$gap" || fail "ping resumed after $gap s (limit $GAP_LIMIT s)"
replies=$(grep -c 'bytes from' "$ping_log" || true)
log "$replies ping replies in all"

# A crash right after changes: they were journaled (fsync'd) before vsctl returned.
run_ok "add static MAC" vsctl fdb add br0 02:00:00:00:07:03 a
run_ok "set n3 down" vsctl iface set n3 down
run_ok "add null interface n4" vsctl iface add n4 null
mac_n4=$(iface_stat n4 mac)
vs_stop_pid "$VSWITCHD_PID" KILL 5
rm -rf "/var/run/dpdk/$VS_PREFIX" "$VS_SOCK"
[[ -s "$VS_STATE.journal" ]] || fail "no journal next to $VS_STATE after changes"
assert_eq "$(stat -c %a "$VS_STATE.journal")" 640 "mode of the journal"
restart_vswitchd
vsctl --json fdb show br0 | vs_json "[e for e in d if e['mac'] == '02:00:00:00:07:03' and e['static']]" |
    grep -q 02:00:00:00:07:03 || fail "static MAC added before the crash is missing after it"
assert_eq "$(iface_stat n3 admin_up)" false "n3 admin state after the crash"
assert_eq "$(iface_stat n4 mac)" "$mac_n4" "MAC of n4 (added just before the crash) after it"
log "n4, added without mac= just before SIGKILL: MAC $mac_n4 before, $(iface_stat n4 mac) after"
run_ok "delete n4" vsctl iface del n4
log "changes made just before SIGKILL were restored from the journal"
vs_ping "$nsa" 10.99.7.2
stop_vswitchd
[[ ! -e "$VS_STATE.journal" ]] || fail "a graceful stop should fold the journal into the state file"

# An interface that cannot be restored (its Linux interface is gone) is reported, the rest
# is restored, and the state as it was is kept beside the state file.
ip link del dev "$hb"
restart_vswitchd
names=$(vsctl --json iface list | vs_json "' '.join(sorted(i['name'] for i in d))")
assert_eq "$names" "a n1 n2 n3" "interfaces restored without b's Linux interface"
grep -q "could not be restored" "$VSWITCHD_LOG" || fail "no log line about what was not restored"
vs_json "[i['name'] for i in d['interfaces']]" <"$VS_STATE.unrestored" | grep -q '"b"' ||
    fail "$VS_STATE.unrestored should keep interface b"
log "b (its veth deleted) not restored, reported, and kept in $(basename "$VS_STATE").unrestored"
stop_vswitchd

# A corrupt state file: refused, left as it is.
# refuse WHAT FILE PROBLEM: vswitchd must refuse to start on FILE (the state file or its
# journal), with one line that names FILE and matches PROBLEM, and leave FILE as it was.
refuse() {
    local what=$1 file=$2 problem=$3 sum_before sum_after rc=0 out
    sum_before=$(sha256sum "$file")
    out=$("$VSWITCHD_BIN" --socket "$VS_SOCK" --state-file "$VS_STATE" --run-dir "$VS_RUN" \
        --file-prefix "$VS_PREFIX" --no-huge --lcores 0,1 --workers 1 2>&1 </dev/null) || rc=$?
    rm -rf "/var/run/dpdk/$VS_PREFIX"
    ((rc != 0)) || fail "vswitchd started with $what"
    # One line (README: "stops it with a one-line message"), vswitchd's, naming the file and
    # what is wrong with it.
    [[ -n "$out" && $(grep -c '' <<<"$out") == 1 ]] ||
        { printf '%s\n' "$out" >&2; fail "$what: expected a one-line message, got the lines above"; }
    [[ "$out" == "vswitchd: "* ]] || fail "$what: the message is not vswitchd's: $out"
    grep -qF -- "$file" <<<"$out" || fail "$what: the message does not name $file: $out"
    grep -Eqi -- "$problem" <<<"$out" || fail "$what: the message does not say what is wrong (/$problem/): $out"
    sum_after=$(sha256sum "$file")
    assert_eq "$sum_after" "$sum_before" "$what: file changed"
    log "$what refused (exit $rc): $out"
}
cp "$VS_STATE" "$VS_TMP/good-state.json"
head -c 100 "$VS_TMP/good-state.json" >"$VS_STATE"
refuse "a truncated state file" "$VS_STATE" "is not a valid state file: "
"$VS_PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); d["version"] = 99; json.dump(d, open(sys.argv[2], "w"))' \
    "$VS_TMP/good-state.json" "$VS_STATE"
refuse "a state file of another version" "$VS_STATE" "has state version 99, this vswitchd reads version [0-9]+"

# A damaged journal (a flipped byte in its first record): refused, left as it is.
cp "$VS_TMP/good-state.json" "$VS_STATE"
restart_vswitchd
run_ok "add static MAC" vsctl fdb add br0 02:00:00:00:07:04 a
run_ok "add static MAC" vsctl fdb add br0 02:00:00:00:07:05 a
vs_stop_pid "$VSWITCHD_PID" KILL 5
rm -rf "/var/run/dpdk/$VS_PREFIX" "$VS_SOCK"
"$VS_PY" -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[12] ^= 0x40; open(p, "wb").write(b)' \
    "$VS_STATE.journal"
refuse "a damaged journal" "$VS_STATE.journal" "is damaged at byte [0-9]+: checksum mismatch"

# A state file of an older vswitchd: a null interface with no MAC recorded, world-readable.
# It gets the MAC its driver gives, which is recorded (mac=) and kept by the next restart.
rm -f "$VS_STATE.journal"
echo '{"version": 1, "interfaces": [{"name": "o1", "type": "null"}]}' >"$VS_STATE"
chmod 0644 "$VS_STATE"
restart_vswitchd
mac_o1=$(iface_stat o1 mac)
vs_json "[i['args'].get('mac') for i in d['interfaces'] if i['name'] == 'o1'][0]" <"$VS_STATE" |
    grep -qi "$mac_o1" || fail "the MAC o1 got ($mac_o1) is not recorded in $VS_STATE"
assert_eq "$(stat -c %a "$VS_STATE")" 640 "mode of an older state file after a start"
stop_vswitchd
restart_vswitchd
assert_eq "$(iface_stat o1 mac)" "$mac_o1" "MAC of o1 (from an older state file) after a restart"
log "older state file: o1 got $mac_o1, recorded, and kept it after a restart"
stop_vswitchd

# --reset-state starts empty, whatever the files hold.
VSWITCHD_EXTRA=(--reset-state)
restart_vswitchd
assert_eq "$(vsctl --json iface list)" "[]" "interfaces after --reset-state"
stop_vswitchd
vs_pass
