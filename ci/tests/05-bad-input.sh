#!/usr/bin/env bash
# Bad input is refused: vsctl exits non-zero with exactly one stderr line that names the
# problem, and nothing changes (the interface list and the cross-connects are identical
# afterwards). vswitchd started with an EAL it cannot initialise exits non-zero with a clear
# message, and leaves the running daemon alone.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "05-bad-input"
start_vswitchd

# Three idle af_packet interfaces (veth peers stay down: no traffic, counters stay still),
# two of them cross-connected.
hl=$(vs_ifname l)
hr=$(vs_ifname r)
hs=$(vs_ifname s)
vs_veth_pair "$hl" "$(vs_ifname lp)"
vs_veth_pair "$hr" "$(vs_ifname rp)"
vs_veth_pair "$hs" "$(vs_ifname sp)"
run_ok "add left" vsctl iface add left af_packet iface="$hl" >/dev/null
run_ok "add right" vsctl iface add right af_packet iface="$hr" >/dev/null
run_ok "add spare" vsctl iface add spare af_packet iface="$hs" >/dev/null
run_ok "cross-connect left right" vsctl xconnect add left right >/dev/null

# state: the configuration as JSON (interfaces and cross-connects). Counters and link state
# are left out: they are not configuration (they stay still here anyway).
state() {
    local ifaces xc
    ifaces=$(vsctl --json iface list)
    xc=$(vsctl --json xconnect list)
    printf '%s\n' "$ifaces" | vs_json 'sorted(({k: v for k, v in i.items()
        if not (k.endswith("_packets") or k.endswith("_bytes") or k in ("drops", "link_up"))}
        for i in d), key=lambda i: i["name"])'
    printf '%s\n' "$xc" | vs_json 'd'
}
before=$(state)
log "configuration before: $before"

checked=0
# refused REGEX ARGS...: `vsctl ARGS` must fail with one stderr line matching REGEX
# (case-insensitive), and the configuration must be unchanged.
refused() {
    local regex=$1 rc=0 out err lines after
    shift
    out=$(vsctl "$@" 2>"$VS_TMP/err") || rc=$?
    err=$(cat "$VS_TMP/err")
    lines=$(grep -c '' "$VS_TMP/err" || true)
    log "vsctl $* -> exit $rc, stderr: $err"
    ((rc != 0)) || fail "vsctl $* succeeded (stdout: $out)"
    ((rc != 124)) || fail "vsctl $* timed out"
    [[ "$lines" == 1 ]] || fail "vsctl $*: expected exactly one stderr line, got $lines: $err"
    grep -Eqi -- "$regex" <<<"$err" || fail "vsctl $*: error does not name the problem (/$regex/): $err"
    after=$(state)
    [[ "$after" == "$before" ]] || fail "vsctl $* changed the configuration:
before: $before
after:  $after"
    checked=$((checked + 1))
}

# Unknown type.
refused 'frobnicate' iface add u1 frobnicate
# Missing required key.
refused 'iface' iface add u2 af_packet
refused 'socket' iface add u2 vhost-user mode=server
# Bad MAC, bad MTU.
refused 'mac' iface add u3 af_packet iface="$(vs_ifname sp)" mac=zz:00:00:00:00:01
refused 'mac' iface add u3 null mac=02:00:00:00:00
refused 'mtu' iface add u3 null mtu=lots
# Name too long (32 characters) and names with bad characters.
refused 'name' iface add "$(printf 'n%.0s' {1..32})" null
refused 'name' iface add 'bad/name' null
refused 'name' iface add 'bad name' null
refused 'name' iface add '' null
# Duplicate name (same type and another type).
refused 'left' iface add left af_packet iface="$(vs_ifname sp)"
refused 'left' iface add left null
# Cross-connect to a missing interface (either side).
refused 'ghost0' xconnect add spare ghost0
refused 'ghost0' xconnect add ghost0 spare
# An interface already cross-connected.
refused 'left' xconnect add left spare
refused 'right' xconnect add spare right
# A vdev DPDK refuses.
refused 'doesnotexist0|u9' iface add u9 af_packet iface=doesnotexist0
refused 'net_bogus0|bogus' iface add u9 dpdk devargs=net_bogus0
refused 'doesnotexist0' iface add u9 dpdk devargs=net_af_packet9,iface=doesnotexist0
refused 'nosuchkey' iface add u9 dpdk devargs=net_null9,nosuchkey=1
# Deleting what does not exist.
refused 'ghost0' iface del ghost0
log "$checked bad commands refused, configuration unchanged"

# The daemon still works after all that.
run_ok "health after bad input" vsctl health >/dev/null
run_ok "add after bad input" vsctl iface add u9 null >/dev/null
run_ok "del after bad input" vsctl iface del u9 >/dev/null

# eal_refused WHAT REGEX ARGS...: a second vswitchd (own socket and state file) must exit
# non-zero within 30 s with a message matching REGEX (case-insensitive).
eal_refused() {
    local what=$1 regex=$2 rc=0 elog
    shift 2
    elog=$VS_TMP/vswitchd-$what.log
    VS_LOGS+=("$elog")
    timeout -k 5 30 "$VSWITCHD_BIN" --socket "$VS_TMP/$what.sock" \
        --state-file "$VS_TMP/$what.json" --run-dir "$VS_TMP/run-$what" \
        --no-huge --poll adaptive --workers 1 "$@" </dev/null >"$elog" 2>&1 || rc=$?
    log "vswitchd $* -> exit $rc; last line: $(tail -n 1 "$elog")"
    ((rc != 0)) || fail "vswitchd $* started (exit 0)"
    ((rc != 124)) || fail "vswitchd $* did not refuse to start (still running after 30 s)"
    grep -Eqi -- "$regex" "$elog" || fail "vswitchd $*: no clear message (/$regex/) in $elog"
}

# The same --file-prefix as the running daemon: DPDK's config lock is taken.
eal_refused same-prefix 'EAL|DPDK|prefix' --file-prefix "$VS_PREFIX" --lcores 0,1
# A CPU that does not exist.
VS_PREFIXES+=("${VS_TAG}cpu")
eal_refused no-such-cpu 'EAL|DPDK|lcore|core|cpu' --file-prefix "${VS_TAG}cpu" \
    --lcores "0,$(($(nproc --all) + 63))"

# The running daemon did not notice.
run_ok "health after refused daemons" vsctl health >/dev/null
after=$(state)
assert_eq "$after" "$before" "configuration after the refused daemons"

stop_vswitchd
vs_pass
