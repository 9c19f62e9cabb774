# shellcheck shell=bash
# ci/lib.sh: helpers sourced by ci/tests/*.sh and ci/demo.sh.
#
# Every object a test makes (network namespace, link, process, DPDK file prefix, temp dir)
# is named from one short per-run tag (VS_TAG, "vst" + the shell's PID) and registered here;
# the EXIT trap removes exactly those objects, by name and by PID, and nothing else.
#
# Usage in a test:
#   source "$(dirname "$0")/../lib.sh"
#   vs_test_init "af_packet"        # temp dir, cleanup trap, root and binary checks
#   start_vswitchd                  # own socket, state file, run dir and --file-prefix
#   vsctl iface add a af_packet iface="$(vs_ifname ha)"
#   ...
#   vs_pass                         # last line of a passing test

# ---------------------------------------------------------------------------------------
# Paths and per-run names

VS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VS_BIN_DIR=${VS_BIN_DIR:-$VS_ROOT/target/release}
VSWITCHD_BIN=$VS_BIN_DIR/vswitchd
VSCTL_BIN=$VS_BIN_DIR/vsctl

# Short unique tag: interface names are built from it and must stay <= 15 characters.
VS_TAG="vst$$"
VS_TEST_NAME=${VS_TEST_NAME:-$(basename "$0" .sh)}
VS_TMP=""

# Registries consumed by vs_cleanup.
VS_PIDS=()      # processes we started (stopped newest first)
VS_NETNS=()     # network namespaces we created
VS_LINKS=()     # host-side links we created
VS_PREFIXES=()  # DPDK --file-prefix values we used (/var/run/dpdk/<prefix>)
VS_LOGS=()      # log files shown when the test fails

# Set by start_vswitchd.
VS_SOCK=""
VS_STATE=""
VS_RUN=""
VS_PREFIX=""
VSWITCHD_PID=""
VSWITCHD_LOG=""
VS_DAEMONS=0

# ---------------------------------------------------------------------------------------
# Messages and assertions

log() { printf '[%s] %s\n' "$VS_TEST_NAME" "$*"; }

# fail MSG...: print a clear failure message and exit 1 (the EXIT trap cleans up).
fail() {
    printf '[%s] FAIL: %s\n' "$VS_TEST_NAME" "$*" >&2
    exit 1
}

vs_pass() { log "PASS"; }

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() {
    [[ "$1" == "$2" ]] || fail "$3: expected '$2', got '$1'"
}

# assert_int OP A B WHAT: integer comparison, OP one of -eq -ne -lt -le -gt -ge.
assert_int() {
    local op=$1 a=$2 b=$3 what=$4
    [[ "$a" =~ ^-?[0-9]+$ ]] || fail "$what: '$a' is not an integer"
    [[ "$b" =~ ^-?[0-9]+$ ]] || fail "$what: '$b' is not an integer"
    test "$a" "$op" "$b" || fail "$what: expected $a $op $b"
}

# assert_file_absent PATH WHAT
assert_file_absent() {
    [[ ! -e "$1" ]] || fail "$2: $1 still exists"
}

# run_ok WHAT CMD...: run CMD; on failure show its output and fail.
run_ok() {
    local what=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if ((rc != 0)); then
        printf '%s\n' "$out" >&2
        fail "$what: '$*' exited $rc"
    fi
    if [[ -n "$out" ]]; then printf '%s\n' "$out"; fi
}

# wait_until SECONDS WHAT CMD...: poll CMD every 0.2 s until it succeeds. On a time-out the
# last attempt's output is shown, so a condition that failed for a reason (a broken capture,
# an unreadable document) says so instead of looking like "not yet".
wait_until() {
    local secs=$1 what=$2 deadline out=/dev/null
    shift 2
    deadline=$((SECONDS + secs))
    # In this shell, not a $(...): a condition may keep state between tries.
    [[ -z "$VS_TMP" ]] || out=$VS_TMP/wait_until.out
    until "$@" >"$out" 2>&1; do
        if ((SECONDS >= deadline)); then
            if [[ -s "$out" ]]; then
                printf '%s\n' "--- last try of: $*" >&2
                tail -n 20 "$out" >&2
            fi
            fail "timed out after ${secs}s waiting for: $what"
        fi
        sleep 0.2
    done
}

# VS_PY: the one Python of the tests: Debian's (it has scapy, grpcio, yaml and
# prometheus_client from ci/setup.sh, and starts faster than a pyenv shim earlier on PATH).
VS_PY=/usr/bin/python3
VS_CHECK=$VS_ROOT/ci/check.py

# vs_json EXPR [NAME=VALUE | NAME:=JSON ...]: read one JSON document on stdin and print the
# Python expression EXPR evaluated with the document bound to `d` (lists, dicts, booleans and
# None as JSON). Shell values go in as NAME=VALUE (a string) or NAME:=JSON, never into EXPR.
# A document that is not JSON or an expression that raises fails the test (ci/check.py).
vs_json() {
    "$VS_PY" -B "$VS_CHECK" get "$@" || fail "JSON check '$1' failed (see above)"
}

# vs_json_true EXPR [NAME=VALUE ...]: status only (for wait_until and if): 0 if EXPR is true
# for the document on stdin, 1 if false, 2 if the document or EXPR is broken (said on stderr).
vs_json_true() {
    "$VS_PY" -B "$VS_CHECK" test "$@"
}

# ---------------------------------------------------------------------------------------
# Set-up and cleanup

# vs_find_cargo: put cargo on PATH (sudo drops ~/.cargo/bin from PATH).
vs_find_cargo() {
    command -v cargo >/dev/null 2>&1 && return 0
    local dir
    for dir in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do
        if [[ -x "$dir/cargo" ]]; then
            PATH="$dir:$PATH"
            export PATH
            return 0
        fi
    done
    return 1
}

# vs_test_init [NAME]: root check, binaries present, temp dir, cleanup trap.
vs_test_init() {
    VS_TEST_NAME=${1:-$VS_TEST_NAME}
    ((EUID == 0)) || fail "must run as root (network namespaces, DPDK)"
    [[ -x "$VS_PY" ]] || fail "$VS_PY missing (apt-get install python3, or bash ci/setup.sh)"
    [[ -x "$VSWITCHD_BIN" ]] || fail "$VSWITCHD_BIN missing: run 'bash ci/setup.sh' first"
    [[ -x "$VSCTL_BIN" ]] || fail "$VSCTL_BIN missing: run 'bash ci/setup.sh' first"
    vs_test_tmp
}

# vs_test_tmp: the temp dir and the cleanup trap (vs_test_init's part that a test without
# a vswitchd needs too).
vs_test_tmp() {
    VS_TMP=$(mktemp -d "/tmp/${VS_TAG}.XXXXXX")
    trap vs_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    log "tag $VS_TAG, temp dir $VS_TMP"
}

# vs_alive PID: true while PID runs (a zombie counts as gone).
vs_alive() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n "$st" && "$st" != Z* ]]
}

# vs_track_pid PID: register a process for cleanup.
vs_track_pid() { VS_PIDS+=("$1"); }

# vs_wait_exit PID SECONDS: wait for PID (a child of this shell) to exit and set VS_RC to
# its exit code. Returns 1 if it is still running after SECONDS. (Results go through VS_RC,
# not stdout: `wait` only works in the shell that started the process, not in a $(...).)
VS_RC=""
vs_wait_exit() {
    local pid=$1 deadline=$((SECONDS + $2))
    while vs_alive "$pid"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
    VS_RC=0
    wait "$pid" 2>/dev/null || VS_RC=$?
}

# vs_stop_pid PID [SIGNAL] [SECONDS]: signal PID and wait; SIGKILL after SECONDS.
# Sets VS_RC to its exit code (137 when it had to be killed).
vs_stop_pid() {
    local pid=$1 sig=${2:-TERM} secs=${3:-15}
    if vs_alive "$pid"; then
        kill "-$sig" "$pid" 2>/dev/null || true
    fi
    if ! vs_wait_exit "$pid" "$secs"; then
        printf '[%s] pid %s ignored SIG%s for %ss; killing it\n' \
            "$VS_TEST_NAME" "$pid" "$sig" "$secs" >&2
        kill -KILL "$pid" 2>/dev/null || true
        vs_wait_exit "$pid" 5 || VS_RC=137
    fi
}

vs_cleanup() {
    local rc=$? i f link deadline
    set +e
    trap - EXIT INT TERM HUP
    # Commands a test registered to undo what it changed on the machine (sysctls).
    for f in "${VS_ON_EXIT[@]}"; do
        eval "$f"
    done
    # Processes first (newest first), so nothing holds the namespaces or links.
    for ((i = ${#VS_PIDS[@]} - 1; i >= 0; i--)); do
        vs_stop_pid "${VS_PIDS[i]}" TERM 10
    done
    for f in "${VS_NETNS[@]}"; do
        ip netns del "$f" 2>/dev/null
    done
    # Deleting a namespace deletes the veth ends in it, and their host peers shortly after.
    for link in "${VS_LINKS[@]}"; do
        deadline=$((SECONDS + 3))
        while ip link show dev "$link" >/dev/null 2>&1 && ((SECONDS < deadline)); do
            sleep 0.1
        done
        ip link del dev "$link" 2>/dev/null
    done
    for f in "${VS_PREFIXES[@]}"; do
        [[ -n "$f" ]] && rm -rf "/var/run/dpdk/$f"
    done
    if ((rc != 0)); then
        for f in "${VS_LOGS[@]}"; do
            [[ -s "$f" ]] || continue
            printf '\n----- %s (last 80 lines) -----\n' "$f" >&2
            tail -n 80 "$f" >&2
        done
        [[ -n "$VS_TMP" ]] && printf '[%s] exit %s; files kept in %s\n' \
            "$VS_TEST_NAME" "$rc" "$VS_TMP" >&2
    elif [[ -n "$VS_TMP" ]]; then
        rm -rf "$VS_TMP"
    fi
    exit "$rc"
}

# ---------------------------------------------------------------------------------------
# vswitchd and vsctl

# vsctl ARGS...: vsctl against this test's daemon, bounded in time.
vsctl() { timeout 30 "$VSCTL_BIN" --socket "$VS_SOCK" "$@"; }

# start_vswitchd: start a daemon with its own socket, state file, run dir
# and DPDK file prefix under VS_TMP; wait (max VS_READY_TIMEOUT, 20 s) until `vsctl health`
# exits 0.
# VSWITCHD_EXTRA (array): more vswitchd options, e.g. (--metrics 127.0.0.1:9000).
# VS_WORKERS: poll-mode workers (default 1; more share CPU 1).
VSWITCHD_EXTRA=()
start_vswitchd() {
    VS_DAEMONS=$((VS_DAEMONS + 1))
    local n=$VS_DAEMONS
    VS_SOCK=$VS_TMP/vswitchd$n.sock
    VS_STATE=$VS_TMP/state$n.json
    VS_RUN=$VS_TMP/run$n
    VS_PREFIX=${VS_TAG}d$n
    VSWITCHD_LOG=$VS_TMP/vswitchd$n.log
    VS_PREFIXES+=("$VS_PREFIX")
    VS_LOGS+=("$VSWITCHD_LOG")
    launch_vswitchd
}

# restart_vswitchd: starts vswitchd again on the last daemon's socket, state file, run
# dir and file prefix (stop it first); its log is appended to.
restart_vswitchd() {
    launch_vswitchd
}

launch_vswitchd() {
    local deadline
    "$VSWITCHD_BIN" --socket "$VS_SOCK" --state-file "$VS_STATE" --run-dir "$VS_RUN" \
        --file-prefix "$VS_PREFIX" --no-huge --poll adaptive --lcores 0,1 \
        --workers "${VS_WORKERS:-1}" "${VSWITCHD_EXTRA[@]}" </dev/null >>"$VSWITCHD_LOG" 2>&1 &
    VSWITCHD_PID=$!
    vs_track_pid "$VSWITCHD_PID"
    deadline=$((SECONDS + ${VS_READY_TIMEOUT:-20}))
    until timeout 5 "$VSCTL_BIN" --socket "$VS_SOCK" health >/dev/null 2>&1; do
        if ! vs_alive "$VSWITCHD_PID"; then
            vs_wait_exit "$VSWITCHD_PID" 1 || true
            fail "vswitchd exited with code $VS_RC before it was ready (log: $VSWITCHD_LOG)"
        fi
        ((SECONDS < deadline)) ||
            fail "vswitchd not healthy after ${VS_READY_TIMEOUT:-20} s (log: $VSWITCHD_LOG)"
        sleep 0.05
    done
    log "vswitchd pid $VSWITCHD_PID ready (socket $VS_SOCK, prefix $VS_PREFIX)"
}

stop_vswitchd() {
    vs_stop_pid "$VSWITCHD_PID" TERM 20
    assert_eq "$VS_RC" 0 "vswitchd exit code after SIGTERM"
    log "vswitchd stopped (exit 0)"
}

# vs_free_port: a free TCP port on 127.0.0.1 (for --metrics).
vs_free_port() {
    "$VS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# vs_metrics PORT: the Prometheus text vswitchd serves at 127.0.0.1:PORT/metrics.
vs_metrics() {
    curl -sf "http://127.0.0.1:$1/metrics" 2>/dev/null ||
        "$VS_PY" -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' \
            "http://127.0.0.1:$1/metrics"
}

# vs_watch_config: follows `vsctl watch config` (lines "SEQ config CHANGE OBJECT") into
# VS_WATCH_LOG from now on, VS_WATCH_PID its process; returns once the stream is open (a
# change shows up in it: neigh set, which is idempotent).
VS_WATCH_LOG="" VS_WATCH_PID=""
vs_watch_config() {
    VS_WATCH_LOG=$VS_TMP/watch.log
    timeout 300 "$VSCTL_BIN" --socket "$VS_SOCK" watch config >"$VS_WATCH_LOG" 2>&1 &
    VS_WATCH_PID=$!
    vs_track_pid "$VS_WATCH_PID"
    wait_until 10 "the watch stream to open" vs_watch_open
}
vs_watch_open() {
    vsctl neigh set age=300 >/dev/null && grep -q 'config set_neighbor_config' "$VS_WATCH_LOG"
}

# vs_restart_same STATEFN TERM|KILL: stops vswitchd (TERM: a graceful stop; KILL: a crash,
# whose DPDK runtime files and socket are removed as a dead process leaves them), starts it
# again on the same state file, and fails unless STATEFN prints the same before and after.
vs_restart_same() {
    local statefn=$1 sig=$2 before after
    before=$("$statefn")
    if [[ "$sig" == TERM ]]; then
        stop_vswitchd
    else
        vs_stop_pid "$VSWITCHD_PID" KILL 5
        rm -rf "/var/run/dpdk/$VS_PREFIX" "$VS_SOCK"
    fi
    restart_vswitchd
    after=$("$statefn")
    if [[ "$before" != "$after" ]]; then
        diff <(echo "$before") <(echo "$after") >&2 || true
        fail "$statefn differs after SIG$sig and a restart"
    fi
    log "SIG$sig and a restart: $statefn the same ($(wc -c <<<"$after") bytes compared)"
}

# in_use: {pool name: in_use} of every mempool, as JSON.
in_use() { vsctl --json mempools | vs_json '{p["name"]: p["in_use"] for p in d}'; }
# in_use_steady: status only (polled by wait_until, 0.2 s apart): the same in_use in 6
# reads in a row (1 s). Leaves the last read in IN_USE.
IN_USE="" STEADY=0
in_use_steady() {
    local now
    now=$(in_use) || return 1
    if [[ "$now" == "$IN_USE" ]]; then STEADY=$((STEADY + 1)); else STEADY=1; fi
    IN_USE=$now
    ((STEADY >= 6))
}
# in_use_is JSON: status only: in_use reads JSON now.
in_use_is() { [[ "$(in_use)" == "$1" ]]; }

# iface_stat NAME FIELD: one field of `vsctl --json stats NAME`.
iface_stat() {
    vsctl --json stats "$1" | vs_json 'd[field]' field="$2"
}

# iface_counter DOC NAME FIELD: FIELD of interface NAME in DOC, a `vsctl --json stats` array.
iface_counter() {
    vs_json 'first(i[field] for i in d if i["name"] == name)' name="$2" field="$3" <<<"$1"
}

# drop_count REASON: `vsctl --json drops`[REASON], 0 when the reason is not listed.
drop_count() {
    vsctl --json drops | vs_json 'd.get(reason, 0)' reason="$1"
}

# drops_at_least REASON N: status only.
drops_at_least() {
    local doc
    doc=$(vsctl --json drops 2>/dev/null) || return 1
    vs_json_true 'd.get(reason, 0) >= n' reason="$1" n:="$2" <<<"$doc"
}

# stat_at_least IFACE FIELD N: status only (`vsctl --json stats IFACE`[FIELD] >= N).
stat_at_least() {
    local doc
    doc=$(vsctl --json stats "$1" 2>/dev/null) || return 1
    vs_json_true 'd[field] >= n' field="$2" n:="$3" <<<"$doc"
}

# ---------------------------------------------------------------------------------------
# Bad input

# vs_refused STATEFN REGEX ARGS...: `vsctl ARGS` must fail (not time out) with exactly one
# stderr line, "vsctl: ..." matching REGEX (extended, case-insensitive: the field and what
# was wrong, not just the echoed value), and the output of the function STATEFN must still
# be VS_BEFORE. A message that does not match is recorded in VS_UNCLEAR, so that one run
# lists every one of them (vs_refused_report fails the test then); anything else fails at
# once. VS_REFUSED counts the refusals checked.
VS_BEFORE="" VS_REFUSED=0
VS_UNCLEAR=()
vs_refused() {
    local statefn=$1 regex=$2 rc=0 out err lines after
    shift 2
    out=$(vsctl "$@" 2>"$VS_TMP/err") || rc=$?
    err=$(cat "$VS_TMP/err")
    lines=$(grep -c '' "$VS_TMP/err" || true)
    log "vsctl $* -> exit $rc, stderr: $err"
    ((rc != 0)) || fail "vsctl $* succeeded (stdout: $out)"
    ((rc != 124)) || fail "vsctl $* timed out"
    [[ "$lines" == 1 ]] || fail "vsctl $*: expected exactly one stderr line, got $lines: $err"
    [[ "$err" == "vsctl: "* ]] || fail "vsctl $*: stderr does not start with 'vsctl: ': $err"
    if ! grep -Eqi -- "$regex" <<<"$err"; then
        log "  ^ does not say what is wrong: expected /$regex/"
        VS_UNCLEAR+=("vsctl $*: expected /$regex/, got: $err")
    fi
    after=$("$statefn")
    [[ "$after" == "$VS_BEFORE" ]] || fail "vsctl $* changed the configuration:
before: $VS_BEFORE
after:  $after"
    VS_REFUSED=$((VS_REFUSED + 1))
}

# vs_refused_report: fail if any refusal checked by vs_refused did not say what was wrong.
vs_refused_report() {
    if ((${#VS_UNCLEAR[@]} > 0)); then
        printf '  %s\n' "${VS_UNCLEAR[@]}" >&2
        fail "${#VS_UNCLEAR[@]} of $VS_REFUSED refusals do not say what is wrong (listed above)"
    fi
}

# ---------------------------------------------------------------------------------------
# Network namespaces and links

# vs_ifname SUFFIX: a per-run interface name; fails if it would exceed 15 characters.
vs_ifname() {
    local name="${VS_TAG}$1"
    ((${#name} <= 15)) || fail "interface name $name is longer than 15 characters"
    printf '%s\n' "$name"
}

# vs_netns_add NS: create namespace NS (a vs_ifname name), IPv6 off so nothing chatters, lo up.
vs_netns_add() {
    local ns=$1
    ip netns add "$ns" || fail "cannot create network namespace $ns"
    VS_NETNS+=("$ns")
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
}

# vs_host_link_quiet IF: keep the host stack off a host-side link (no IPv6 chatter), up.
vs_host_link_quiet() {
    sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1"
    ip link set dev "$1" up
}

# vs_ns_iface_up NS IF CIDR: address IF inside NS, turn tx checksum offload off (frames
# crossing an af_packet switch must carry real checksums), bring it up.
vs_ns_iface_up() {
    local ns=$1 ifc=$2 cidr=$3
    # DPDK's af_packet driver passes partial checksums on as they are: its namespaces
    # compute them themselves. Native ports carry them (VS_NS_OFFLOADS=default keeps the
    # namespace's offloads as a pod has them).
    if [[ "${VS_NS_OFFLOADS:-off}" != default ]]; then
        ip netns exec "$ns" ethtool -K "$ifc" tx off >/dev/null 2>&1 ||
            fail "ethtool -K $ifc tx off failed in $ns"
    fi
    ip -n "$ns" addr add "$cidr" dev "$ifc"
    ip -n "$ns" link set "$ifc" up
}

# vs_ns_ipv6 NS IF...: IPv6 back on in NS (vs_netns_add turns it off) for IF, without
# duplicate address detection (addresses usable at once: add them with `nodad` too) and
# without router solicitations; IF gets its link-local address.
vs_ns_ipv6() {
    local ns=$1 ifc
    shift
    for ifc in all default "$@"; do
        ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$ifc.accept_dad=0" \
            "net.ipv6.conf.$ifc.router_solicitations=0" "net.ipv6.conf.$ifc.disable_ipv6=0" ||
            fail "cannot turn IPv6 on for $ifc in $ns"
    done
}

# vs_host SUFFIX CIDR: a host for the switch to serve: namespace $(vs_ifname SUFFIX) with
# eth0 at CIDR (no address if CIDR is empty) on a veth pair whose other end,
# $(vs_ifname hSUFFIX), stays in the host namespace for an af_packet interface. Sets VS_NS
# and VS_HOSTIF. Every test and the demo make their namespace hosts with this.
VS_NS="" VS_HOSTIF=""
vs_host() {
    local suffix=$1 cidr=$2
    VS_NS=$(vs_ifname "$suffix")
    VS_HOSTIF=$(vs_ifname "h$suffix")
    vs_netns_add "$VS_NS"
    ip link add "$VS_HOSTIF" type veth peer name eth0 netns "$VS_NS" ||
        fail "cannot create veth $VS_HOSTIF <-> $VS_NS/eth0"
    VS_LINKS+=("$VS_HOSTIF")
    vs_host_link_quiet "$VS_HOSTIF"
    if [[ -n "$cidr" ]]; then
        vs_ns_iface_up "$VS_NS" eth0 "$cidr"
    else
        ip netns exec "$VS_NS" ethtool -K eth0 tx off >/dev/null 2>&1 ||
            fail "ethtool -K eth0 tx off failed in $VS_NS"
        ip -n "$VS_NS" link set eth0 up
    fi
}

# vs_tap_host SUFFIX IFACE CIDR: a host on a tap: the switch makes interface IFACE, a tap
# named $(vs_ifname tSUFFIX), which is then moved into namespace $(vs_ifname SUFFIX) and
# given CIDR there. Sets VS_NS and VS_HOSTIF (the tap's name).
vs_tap_host() {
    local suffix=$1 iface=$2 cidr=$3
    VS_NS=$(vs_ifname "$suffix")
    VS_HOSTIF=$(vs_ifname "t$suffix")
    vs_netns_add "$VS_NS"
    run_ok "add tap $iface" vsctl iface add "$iface" tap iface="$VS_HOSTIF" >/dev/null
    # The tap is the switch's (it vanishes when the switch closes it); registered anyway so
    # that a failed run that leaves it behind still removes it.
    VS_LINKS+=("$VS_HOSTIF")
    wait_until 10 "tap $VS_HOSTIF in the host namespace" ip link show dev "$VS_HOSTIF"
    ip link set dev "$VS_HOSTIF" netns "$VS_NS" || fail "cannot move $VS_HOSTIF into $VS_NS"
    vs_ns_iface_up "$VS_NS" "$VS_HOSTIF" "$cidr"
}

# vs_host_pair NET: two hosts (vs_host a and b) at NET.1/24 and NET.2/24. Sets VS_NSA,
# VS_NSB (namespaces), VS_HA, VS_HB (host ends). Example: vs_host_pair 10.99.7
vs_host_pair() {
    vs_host a "$1.1/24"
    VS_NSA=$VS_NS VS_HA=$VS_HOSTIF
    vs_host b "$1.2/24"
    VS_NSB=$VS_NS VS_HB=$VS_HOSTIF
}

# vs_cni_init: for tests that run vswitch-cni as a runtime does: checks host-local (the
# IPAM plugin it delegates to) and the built plugin, and makes a plugin directory,
# $PLUGINS, holding vswitch-cni (CNI_PATH="$PLUGINS:/usr/lib/cni"). Sets CNI_BIN.
CNI_BIN="" PLUGINS=""
vs_cni_init() {
    [[ -x /usr/lib/cni/host-local ]] ||
        fail "/usr/lib/cni/host-local missing (apt-get install containernetworking-plugins)"
    CNI_BIN=$VS_BIN_DIR/vswitch-cni
    [[ -x "$CNI_BIN" ]] || fail "$CNI_BIN missing: build it (cargo build --release)"
    PLUGINS=$VS_TMP/plugins
    mkdir -p "$PLUGINS"
    ln -s "$CNI_BIN" "$PLUGINS/vswitch-cni"
}

# vs_grpc_init: for tests that drive vswitchd through Python grpcio (ci/grpc/*.py): checks
# Debian's python3 has grpcio and protobuf, and generates the client code from proto/ into
# $GEN. Then `grpc_py SECONDS SCRIPT ARGS...` runs ci/grpc/SCRIPT, bounded in time.
GEN=""
vs_grpc_init() {
    export VS_TEST_NAME
    GEN=$VS_TMP/gen
    "$VS_PY" -c 'import grpc, google.protobuf' 2>/dev/null ||
        fail "python3-grpcio / python3-protobuf missing (bash ci/setup.sh)"
    grpc_py 60 vsgrpc.py gen --out "$GEN" || fail "cannot generate the gRPC client code (see above)"
}

# grpc_py SECONDS SCRIPT ARGS...: Debian's python (-B: no __pycache__ in the source tree).
grpc_py() {
    local secs=$1 script=$2
    shift 2
    timeout -k 5 "$secs" "$VS_PY" -B "$VS_ROOT/ci/grpc/$script" "$@"
}

# vs_veth_pair A B: a veth pair with both ends in the host, both quiet; only A is brought
# up, so nothing flows (for tests that need idle af_packet interfaces).
vs_veth_pair() {
    ip link add "$1" type veth peer name "$2" || fail "cannot create veth $1 <-> $2"
    VS_LINKS+=("$1")
    sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1"
    sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
    ip link set dev "$1" up
}

# ns_counter NS IF FIELD: a kernel interface counter (rx_packets, tx_packets, ...) in NS.
ns_counter() {
    ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"
}

# ---------------------------------------------------------------------------------------
# Traffic

# vs_ping NS DST: wait (max 15 s) until DST answers from NS, then 5 pings must all answer.
# -w 10: ping waits up to 10 s in all for the 5 replies (with -c alone it gives up on the
# last ones ~2 RTTs after sending them, which counts a late reply on a loaded machine as
# lost); a lost packet still fails.
vs_ping() {
    local ns=$1 dst=$2 out
    wait_until 15 "first ping reply $ns -> $dst" ip netns exec "$ns" ping -c 1 -W 1 "$dst"
    out=$(ip netns exec "$ns" ping -c 5 -i 0.2 -w 10 "$dst" 2>&1) || {
        printf '%s\n' "$out" >&2
        fail "ping $ns -> $dst failed"
    }
    grep -q ' 0% packet loss' <<<"$out" || {
        printf '%s\n' "$out" >&2
        fail "ping $ns -> $dst lost packets"
    }
    log "ping $ns -> $dst: 5/5 replies"
}

# vs_iperf_start_server NS IP: one-shot iperf3 server bound to IP in NS; waits until it
# listens. Sets VS_IPERF_SERVER_PID.
VS_IPERF_SERVER_PID=""
vs_iperf_start_server() {
    local ns=$1 ip=$2 slog
    slog=$VS_TMP/iperf3-server-$ns.log
    VS_LOGS+=("$slog")
    ip netns exec "$ns" iperf3 -s -1 -B "$ip" </dev/null >"$slog" 2>&1 &
    VS_IPERF_SERVER_PID=$!
    vs_track_pid "$VS_IPERF_SERVER_PID"
    wait_until 10 "iperf3 server listening in $ns" \
        sh -c "ip netns exec '$ns' ss -Hltn 'sport = :5201' | grep -q LISTEN"
}

# vs_iperf CLIENT_NS SERVER_NS SERVER_IP SECONDS [IPERF3_ARGS...]: a bounded TCP transfer
# CLIENT_NS -> SERVER_IP. Fails unless it completes with bytes received. Leaves the client's
# JSON report in VS_IPERF_JSON.
VS_IPERF_JSON=""
vs_iperf() {
    local cns=$1 sns=$2 sip=$3 secs=$4 rc=0 summary bytes
    shift 4
    vs_iperf_start_server "$sns" "$sip"
    VS_IPERF_JSON=$VS_TMP/iperf3-$cns.json
    timeout $((secs + 30)) ip netns exec "$cns" iperf3 -c "$sip" -t "$secs" -J "$@" \
        </dev/null >"$VS_IPERF_JSON" 2>&1 || rc=$?
    if ((rc != 0)); then
        tail -n 5 "$VS_IPERF_JSON" >&2
        fail "iperf3 $cns -> $sip exited $rc (report: $VS_IPERF_JSON)"
    fi
    summary=$(vs_json '"%.0f Mbit/s, %d bytes received, %d retransmits" % (
        d["end"]["sum_received"]["bits_per_second"] / 1e6,
        d["end"]["sum_received"]["bytes"], d["end"]["sum_sent"].get("retransmits", 0))' \
        <"$VS_IPERF_JSON")
    log "iperf3 $cns -> $sip (${secs}s): $summary"
    bytes=$(vs_json 'd["end"]["sum_received"]["bytes"]' <"$VS_IPERF_JSON")
    assert_int -gt "$bytes" 0 "iperf3 bytes received"
    vs_stop_pid "$VS_IPERF_SERVER_PID" TERM 10
}

# ---------------------------------------------------------------------------------------
# dpdk-testpmd as a peer

# start_testpmd NAME CPU MODE VDEV: testpmd in MODE (txonly, rxonly, io, ...) on one CPU.
# testpmd needs a main lcore plus a forwarding lcore, so both lcores map onto CPU
# (--lcores 0@CPU,1@CPU). --stats-period keeps it running without a terminal; stdbuf keeps
# its stdout line-buffered so the final statistics survive the signal that stops it.
# Sets TESTPMD_PID and TESTPMD_LOG.
TESTPMD_PID=""
TESTPMD_LOG=""
# TESTPMD_EXTRA (array): more testpmd application options, e.g. (--rxq=2 --txq=2).
TESTPMD_EXTRA=()
start_testpmd() {
    launch_testpmd "$@"
    wait_testpmd "$1" "$3"
}

# launch_testpmd NAME CPU MODE VDEV: start_testpmd without the wait (a virtio-user server,
# server=1, waits in its start-up until a backend connects); wait_testpmd NAME MODE later.
launch_testpmd() {
    local name=$1 cpu=$2 mode=$3 vdev=$4 prefix="${VS_TAG}$1"
    TESTPMD_LOG=$VS_TMP/testpmd-$name.log
    VS_PREFIXES+=("$prefix")
    VS_LOGS+=("$TESTPMD_LOG")
    stdbuf -oL -eL dpdk-testpmd --no-huge -m 512 --no-pci --file-prefix "$prefix" \
        --lcores "0@$cpu,1@$cpu" --vdev "$vdev" -- \
        --forward-mode="$mode" --stats-period 1 --total-num-mbufs 8192 "${TESTPMD_EXTRA[@]}" \
        </dev/null >"$TESTPMD_LOG" 2>&1 &
    TESTPMD_PID=$!
    vs_track_pid "$TESTPMD_PID"
}

# wait_testpmd NAME MODE: waits until the last launched testpmd forwards.
wait_testpmd() {
    wait_until 20 "testpmd $1 forwarding" grep -q 'Port statistics' "$TESTPMD_LOG"
    vs_alive "$TESTPMD_PID" || fail "testpmd $1 exited early"
    log "testpmd $1 ($2) pid $TESTPMD_PID"
}

# stop_testpmd PID: SIGINT (testpmd stops forwarding, prints its final forward statistics,
# then re-raises the signal, so its exit code is not checked).
stop_testpmd() {
    vs_stop_pid "$1" INT 20
}

# testpmd_fwd_stat LOG PORT KEY: KEY (RX-packets, TX-packets, TX-dropped, ...) from the last
# "Forward statistics for port PORT" block testpmd printed when it stopped.
testpmd_fwd_stat() {
    local v
    v=$(awk -v port="$2" -v key="$3:" '
        /Forward statistics for port/ { inblk = ($0 ~ ("port " port "[^0-9]")); next }
        inblk && /^ *-+ *$/ { inblk = 0; next }
        inblk { for (i = 1; i < NF; i++) if ($i == key) v = $(i + 1) }
        END { print v }' "$1")
    [[ "$v" =~ ^[0-9]+$ ]] || fail "no $3 for port $2 in the final statistics of $1"
    printf '%s\n' "$v"
}

# ---------------------------------------------------------------------------------------
# Files

# vs_write_pcap FILE COUNT: a classic pcap of COUNT small broadcast UDP frames.
vs_write_pcap() {
    "$VS_PY" - "$1" "$2" <<'EOF'
import struct, sys
path, count = sys.argv[1], int(sys.argv[2])
eth = bytes.fromhex("ffffffffffff" "020000000099" "0800")
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i in range(count):
        payload = b"vswitch-ci-%04d" % i
        udp = struct.pack("!HHHH", 9999, 9999, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                         bytes([10, 99, 250, 1]), bytes([10, 99, 250, 255]))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        frame = eth + ip + udp
        frame += b"\0" * max(0, 60 - len(frame))
        f.write(struct.pack("<IIII", 1, i, len(frame), len(frame)) + frame)
EOF
}
