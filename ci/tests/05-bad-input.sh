#!/usr/bin/env bash
# Bad input is refused: vsctl exits non-zero with exactly one stderr line, "vsctl: ...",
# that names the field (or object) and what is wrong with it, and nothing changes (the
# interface list and the cross-connects are identical afterwards). Each refusal is matched
# against a regex for the reason (the field and the problem, not just the echoed value).
# vswitchd started with an EAL it cannot initialise exits non-zero with a message that says
# why, and leaves the running daemon alone.
# A message that does not name the field and the problem is recorded; every mismatch is
# listed at the end, and the test fails.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "05-bad-input"
# The daemon holds a CPU idle-latency request of 0 µs while it runs (--cpu-latency): the
# kernel's enforced value (the smallest held) reads 0 then, and what it was after the stop.
cpu_latency() { od -An -t d4 -N4 /dev/cpu_dma_latency | tr -d ' '; }
latency_before=$(cpu_latency)
VSWITCHD_EXTRA=(--cpu-latency 0)
start_vswitchd
assert_eq "$(cpu_latency)" 0 "/dev/cpu_dma_latency while vswitchd --cpu-latency 0 runs"

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

# refused REGEX ARGS...: vs_refused (lib.sh) against the configuration before.
VS_BEFORE=$before
refused() { vs_refused state "$@"; }

# Unknown type.
refused 'type "frobnicate" is unknown' iface add u1 frobnicate
# Missing required key.
refused 'af_packet needs iface=' iface add u2 af_packet
refused 'vhost-user needs socket=' iface add u2 vhost-user mode=server
# Bad MAC, bad MTU.
refused 'mac "zz:00:00:00:00:01" is not a MAC address' \
    iface add u3 af_packet iface="$(vs_ifname sp)" mac=zz:00:00:00:00:01
refused 'mac "02:00:00:00:00" is not a MAC address' iface add u3 null mac=02:00:00:00:00
refused 'mtu must be a number from 68 to 9600' iface add u3 null mtu=lots
# Name too long (32 characters) and names with bad characters.
long=$(printf 'n%.0s' {1..32})
refused "name \"$long\" is longer than 31 characters" iface add "$long" null
refused "name \"bad/name\" contains '/'" iface add 'bad/name' null
refused "name \"bad name\" contains ' '" iface add 'bad name' null
refused 'name is required' iface add '' null
# Duplicate name (same type and another type).
refused 'interface "left" exists already' iface add left af_packet iface="$(vs_ifname sp)"
refused 'interface "left" exists already' iface add left null
# Cross-connect to a missing interface (either side).
refused 'interface "ghost0" not found' xconnect add spare ghost0
refused 'interface "ghost0" not found' xconnect add ghost0 spare
# An interface already cross-connected.
refused 'interface "left" is already cross-connected to "right"' xconnect add left spare
refused 'interface "right" is already cross-connected to "left"' xconnect add spare right
# A Linux interface that does not exist.
refused 'iface "doesnotexist0": no such network interface' iface add u9 af_packet iface=doesnotexist0
# Devices DPDK refuses (the raw `dpdk devargs=` escape hatch): drivers mostly fail with a
# bare -1 and say why only in DPDK's log, so vswitchd keeps the log of the probe and answers
# with what DPDK said about the device. The net_null driver says nothing beyond "cannot
# attach" for a key it does not know, so that message can only name the device and that
# its driver refused the arguments.
refused 'probe "net_bogus0": no DPDK driver takes a device named "net_bogus0"' \
    iface add u9 dpdk devargs=net_bogus0
refused 'probe "net_af_packet9,iface=doesnotexist0": .*net_af_packet9: ioctl failed \(SIOCGIFINDEX\): ?No such device' \
    iface add u9 dpdk devargs=net_af_packet9,iface=doesnotexist0
refused 'probe "net_null9,nosuchkey=1": the driver refused the device: .*cannot attach the device \(net_null9\)' \
    iface add u9 dpdk devargs=net_null9,nosuchkey=1
# Deleting what does not exist.
refused 'interface "ghost0" not found' iface del ghost0
log "$VS_REFUSED bad commands refused, configuration unchanged; ${#VS_UNCLEAR[@]} messages do not say what is wrong"

# The daemon still works after all that.
run_ok "health after bad input" vsctl health >/dev/null
run_ok "add after bad input" vsctl iface add u9 null >/dev/null
run_ok "del after bad input" vsctl iface del u9 >/dev/null

# eal_refused WHAT REGEX LAST_REGEX ARGS...: a second vswitchd (own socket and state file)
# must exit non-zero within 30 s; its output (DPDK's log and vswitchd's) must match REGEX
# and its last line, vswitchd's own message, LAST_REGEX (both extended, case-insensitive).
eal_refused() {
    local what=$1 regex=$2 last_regex=$3 rc=0 elog
    shift 3
    elog=$VS_TMP/vswitchd-$what.log
    VS_LOGS+=("$elog")
    timeout -k 5 30 "$VSWITCHD_BIN" --socket "$VS_TMP/$what.sock" \
        --state-file "$VS_TMP/$what.json" --run-dir "$VS_TMP/run-$what" \
        --no-huge --poll adaptive --workers 1 "$@" </dev/null >"$elog" 2>&1 || rc=$?
    log "vswitchd $* -> exit $rc; last line: $(tail -n 1 "$elog")"
    ((rc != 0)) || fail "vswitchd $* started (exit 0)"
    ((rc != 124)) || fail "vswitchd $* did not refuse to start (still running after 30 s)"
    grep -Eqi -- "$regex" "$elog" || fail "vswitchd $*: the log does not say why (/$regex/): $(cat "$elog")"
    tail -n 1 "$elog" | grep -Eqi -- "$last_regex" ||
        fail "vswitchd $*: its last line does not say what is wrong (/$last_regex/): $(tail -n 1 "$elog")"
}

# The same --file-prefix as the running daemon: DPDK's config lock is taken.
# (DPDK says why; vswitchd's own line says only "rte_eal_init: failed" and lists what to
# check, --file-prefix among them.)
eal_refused same-prefix \
    "Cannot create lock on '/var/run/dpdk/$VS_PREFIX/config'\. Is another primary process running" \
    "^vswitchd: cannot initialise DPDK's EAL: .*--file-prefix $VS_PREFIX" \
    --file-prefix "$VS_PREFIX" --lcores 0,1
# An idle-latency request out of range: refused before DPDK starts.
eal_refused bad-cpu-latency "cpu-latency" \
    "^vswitchd: --cpu-latency must be from 0 to 1000000 µs, not 1000001" \
    --file-prefix "${VS_TAG}lat" --cpu-latency 1000001
# A CPU that does not exist.
VS_PREFIXES+=("${VS_TAG}cpu")
cpu=$(($(nproc --all) + 63))
eal_refused no-such-cpu "--lcores: CPU $cpu is not available" \
    "^vswitchd: --lcores: CPU $cpu is not available \(usable CPUs: " \
    --file-prefix "${VS_TAG}cpu" --lcores "0,$cpu"

# The running daemon did not notice.
run_ok "health after refused daemons" vsctl health >/dev/null
after=$(state)
assert_eq "$after" "$before" "configuration after the refused daemons"

stop_vswitchd
assert_eq "$(cpu_latency)" "$latency_before" "/dev/cpu_dma_latency after vswitchd stopped"
vs_refused_report
vs_pass
