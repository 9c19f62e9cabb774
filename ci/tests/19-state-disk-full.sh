#!/usr/bin/env bash
# The state file on a full disk (a 64 KiB tmpfs), as an operator would meet it:
#  - `vsctl fdb add` calls until the journal has no room: a call that cannot be journaled
#    fails (exit 1, one line: the journal's path, "No space left on device", "nothing was
#    applied") and its entry is not in the switch; every call that returned 0 is;
#  - a crash (SIGKILL) and a graceful stop (SIGTERM, whose snapshot cannot be written) with
#    the disk still full: after each restart the entries are exactly the acknowledged ones,
#    and no temp file is left beside the state file;
#  - with room again, changes are accepted and a stop folds the journal into the snapshot.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "19-state-disk-full"

# The tmpfs is unmounted on the way out, after the daemon (which writes to it) has stopped,
# then lib.sh cleans up as usual. On failure its files are copied next to the logs.
STATE_FS=$VS_TMP/statefs
t19_cleanup() {
    local rc=$?
    set +e
    [[ -z "$VSWITCHD_PID" ]] || vs_stop_pid "$VSWITCHD_PID" TERM 20
    if mountpoint -q "$STATE_FS"; then
        ((rc == 0)) || cp -a "$STATE_FS/." "$VS_TMP/statefs-copy"
        umount "$STATE_FS" || printf '[%s] cannot unmount %s\n' "$VS_TEST_NAME" "$STATE_FS" >&2
    fi
    (exit "$rc")
    vs_cleanup
}
trap t19_cleanup EXIT
mkdir "$STATE_FS"
mount -t tmpfs -o size=64k,mode=0700 "${VS_TAG}statefs" "$STATE_FS" ||
    fail "cannot mount a tmpfs on $STATE_FS"

# The daemon's own files stay in VS_TMP; only its state file moves onto the small disk.
start_vswitchd
stop_vswitchd
VS_STATE=$STATE_FS/state.json
restart_vswitchd
run_ok "add n1" vsctl iface add n1 null >/dev/null
run_ok "add br0" vsctl bridge add br0 >/dev/null
run_ok "attach n1" vsctl bridge attach br0 n1 >/dev/null

# Fill the disk, then give 4 KiB back: the journal grows into that, then has no room.
dd if=/dev/zero of="$STATE_FS/filler" bs=1k 2>/dev/null || true
truncate -s -4K "$STATE_FS/filler"
log "tmpfs: $(df -k --output=used,avail "$STATE_FS" | tail -n 1 | awk '{print $1 " KiB used, " $2 " KiB free"}')"

# Add entries until the first refusal, then 20 more (all refused: nothing frees room).
acked=() refused=() first_err=""
for ((i = 0; i < 2000; i++)); do
    mac=$(printf '02:00:00:19:%02x:%02x' $((i >> 8)) $((i & 255)))
    rc=0
    vsctl fdb add br0 "$mac" n1 >/dev/null 2>"$VS_TMP/err" || rc=$?
    if ((rc == 0)); then
        acked+=("$mac")
        continue
    fi
    refused+=("$mac")
    err=$(<"$VS_TMP/err")
    assert_eq "$rc" 1 "vsctl exit code of a refused fdb add"
    [[ $(grep -c '' <<<"$err") == 1 ]] ||
        { printf '%s\n' "$err" >&2; fail "a refused fdb add printed more than one line"; }
    grep -qF "$VS_STATE.journal" <<<"$err" || fail "the refusal does not name $VS_STATE.journal: $err"
    grep -qF "No space left on device" <<<"$err" || fail "the refusal does not say the disk is full: $err"
    grep -qF "nothing was applied" <<<"$err" || fail "the refusal does not say nothing was applied: $err"
    [[ -n "$first_err" ]] || first_err=$err
    ((${#refused[@]} < 21)) || break
done
log "fdb add: ${#acked[@]} acknowledged, ${#refused[@]} refused"
log "refusal: $first_err"
assert_int -gt "${#acked[@]}" 0 "fdb adds acknowledged before the disk was full"
assert_int -gt "${#refused[@]}" 0 "fdb adds refused on a full disk (of $i)"

expected=$(printf '%s\n' "${acked[@]}" | LC_ALL=C sort | tr '\n' ' ')
expected=${expected% }
# check_entries WHEN: the static entries are exactly the acknowledged ones, no temp file.
check_entries() {
    local got tmp
    got=$(vsctl --json fdb show br0 |
        vs_json "' '.join(sorted(e['mac'] for e in d if e['static']))")
    if [[ "$got" != "$expected" ]]; then
        diff <(tr ' ' '\n' <<<"$expected") <(tr ' ' '\n' <<<"$got") >&2 || true
        fail "$1: static MAC entries differ from the ${#acked[@]} acknowledged (< missing, > refused but present)"
    fi
    tmp=$(find "$STATE_FS" -name '*.tmp')
    [[ -z "$tmp" ]] || fail "$1: temp file left beside the state file: $tmp"
    log "$1: the ${#acked[@]} acknowledged entries and none of the ${#refused[@]} refused; no temp file"
}
check_entries "running"

# (a) A crash with the disk full: snapshot + journal hold every acknowledged entry.
vs_stop_pid "$VSWITCHD_PID" KILL 5
rm -rf "/var/run/dpdk/$VS_PREFIX" "$VS_SOCK"
restart_vswitchd
check_entries "after SIGKILL and restart (disk full)"

# (b) A graceful stop with the disk full: its snapshot fails, the old files are kept.
kept_line="No space left on device (os error 28); kept the previous snapshot and its journal"
kept_before=$(grep -c -- "$kept_line" "$VSWITCHD_LOG" || true)
stop_vswitchd
kept_after=$(grep -c -- "$kept_line" "$VSWITCHD_LOG" || true)
assert_eq "$kept_after" "$((kept_before + 1))" "log lines saying a snapshot failed and the old files were kept, after the stop"
[[ -s "$VS_STATE.journal" ]] || fail "the journal beside $VS_STATE is gone after a failed snapshot"
restart_vswitchd
check_entries "after SIGTERM and restart (disk full)"

# (c) Room again: changes are accepted, a stop folds the journal into the snapshot.
rm "$STATE_FS/filler"
mac=02:00:00:19:ff:ff
run_ok "fdb add with room again" vsctl fdb add br0 "$mac" n1 >/dev/null
acked+=("$mac")
expected="$expected $mac"
stop_vswitchd
[[ ! -e "$VS_STATE.journal" ]] || fail "a stop with room should fold the journal into the state file"
restart_vswitchd
check_entries "after freeing the disk, SIGTERM and restart"
stop_vswitchd
vs_pass
