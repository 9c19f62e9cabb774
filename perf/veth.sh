#!/usr/bin/env bash
# perf/veth.sh: the veth profile. Two network namespaces, A and B, each with a veth pair whose
# host end is attached to the system under test, measured the same way for every system in
# the same run, interleaved run by run (the order rotates every run):
#
#   linux-bridge    the kernel's bridge device, host ends enslaved; namespaces keep their
#                   default offloads
#   vswitch-native  vswitchd, af_packet driver=native ports (the switch's own TPACKET_V2
#                   ring + PACKET_VNET_HDR), bridge br0; default offloads
#   vswitch-dpdk    vswitchd, af_packet driver=dpdk ports (DPDK's net_af_packet); tx offload
#                   off in the namespaces (`ethtool -K eth0 tx off`: the driver passes
#                   partial checksums on as they are, which breaks TCP)
#   ovs-dpdk        OVS-DPDK (ovs-vswitchd-dpdk, run as DESIGN.md §4 says) with two type=dpdk
#                   ports on net_af_packet, bridge br0 with the NORMAL action; tx offload off
#
# Metrics per system and run: iperf3 TCP single stream A -> B (Gbit/s); TCP request/response
# latency A <-> B (sockperf ping-pong --tcp, else a python3 ping-pong of 1-byte messages:
# round trips per second, p50/p99 round-trip time in µs); 64-byte UDP frames per second from
# dpdk-testpmd --forward-mode=txonly on a net_af_packet vdev on A's eth0, counted as received
# by B's eth0 (/sys/class/net/eth0/statistics/rx_packets over the window) next to what A's
# eth0 sent; per window the switch worker's busy share (vswitch: `vsctl workers`; OVS:
# pmd-stats-show) and the whole machine's CPU use (/proc/stat).
#
# Writes <YYYY-MM-DD>-veth.md and .json to --out DIR (default perf/results; --quick: the work
# dir, printed, unless --out is given). See perf/README.md, "The veth profile".
# Functions called indirectly (setup_<system>, the EXIT trap, wait_until's conditions) look
# unreachable to shellcheck.
# shellcheck disable=SC2317
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REL="${CARGO_TARGET_DIR:-$ROOT/target}/release"
PY=${PYTHON:-python3}
CARGO=${CARGO:-cargo}
ARGS="$*"

ALL_SYSTEMS=(linux-bridge vswitch-native vswitch-dpdk ovs-dpdk)

usage() {
    cat <<EOF
usage: perf/veth.sh [--quick] [--runs N] [--tcp-time S] [--rr-time S] [--window S]
                    [--warmup S] [--systems A,B] [--no-ovs] [--poll MODE] [--app-cpu N]
                    [--rr-tool T] [--cpu-latency US] [--no-build] [--out DIR] [--keep]

Two namespaces on veth pairs, each system in ${ALL_SYSTEMS[*]} measured
the same way, interleaved over the runs (order rotated every run).

  --quick        1 run, 3 s iperf3, 3 s request/response, 1 s warm-up and 3 s UDP window;
                 results to the work dir (printed) unless --out is given
  --runs N       runs per system (default 3)
  --tcp-time S   iperf3 duration (default 10)
  --rr-time S    request/response duration (default 10)
  --window S     UDP packet-rate window (default 10)
  --warmup S     UDP traffic before the window (default 2)
  --systems L    comma-separated subset of: ${ALL_SYSTEMS[*]}
  --no-ovs       leave ovs-dpdk out (reported as missing: skipped by --no-ovs)
  --poll MODE    vswitchd --poll (default busy)
  --app-cpu N    CPU of iperf3, the latency client/server and the UDP generator (default 0;
                 the switches' workers run on CPU 1)
  --rr-tool T    request/response client and server: sockperf (default when installed) or
                 python3 (a ping-pong of 1-byte messages)
  --cpu-latency US  hold a PM QoS request of US µs on /dev/cpu_dma_latency for the whole run
                 (every system alike; 0: idle CPUs poll instead of halting) and start vswitchd
                 with --cpu-latency US
  --no-build     use the vswitchd/vsctl already built (recorded in the results)
  --out DIR      where to write <date>-veth.md/.json (default perf/results)
  --keep         keep the work dir (logs, raw samples)

Needs root, iperf3, ethtool, dpdk-testpmd (dpdk-dev), python3; sockperf if installed (else a
python3 ping-pong); OVS from openvswitch-switch-dpdk (else ovs-dpdk is reported missing).
Environment: CARGO (default cargo), PYTHON (default python3), CARGO_TARGET_DIR.
EOF
}

RUNS=3 TCP_TIME=10 RR_TIME=10 WINDOW=10 WARMUP=2 QUICK=0 BUILD=1 OVS=1 POLL=busy APP_CPU=0
OUT="" KEEP=0 SELECTED="" RR_TOOL="" CPU_LATENCY=""
while [ $# -gt 0 ]; do
    case $1 in
        --quick) QUICK=1 ;;
        --runs|--tcp-time|--rr-time|--window|--warmup|--systems|--poll|--app-cpu|--out|--rr-tool|--cpu-latency)
            [ $# -ge 2 ] || { echo "perf/veth.sh: $1 needs a value" >&2; exit 2; }
            case $1 in
                --runs) RUNS=$2 ;;
                --tcp-time) TCP_TIME=$2 ;;
                --rr-time) RR_TIME=$2 ;;
                --window) WINDOW=$2 ;;
                --warmup) WARMUP=$2 ;;
                --systems) SELECTED=$2 ;;
                --poll) POLL=$2 ;;
                --app-cpu) APP_CPU=$2 ;;
                --out) OUT=$2 ;;
                --rr-tool) RR_TOOL=$2 ;;
                --cpu-latency) CPU_LATENCY=$2 ;;
            esac
            shift ;;
        --no-ovs) OVS=0 ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "perf/veth.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then RUNS=1 TCP_TIME=3 RR_TIME=3 WARMUP=1 WINDOW=3; fi
for n in "$RUNS" "$TCP_TIME" "$RR_TIME" "$WINDOW" "$WARMUP"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] ||
        { echo "perf/veth.sh: --runs/--tcp-time/--rr-time/--window/--warmup need integers >= 1" >&2; exit 2; }
done
[[ "$APP_CPU" =~ ^[0-9]+$ ]] || { echo "perf/veth.sh: --app-cpu needs a CPU number" >&2; exit 2; }
case $POLL in busy|adaptive) ;; *) echo "perf/veth.sh: --poll is busy or adaptive" >&2; exit 2 ;; esac
case ${RR_TOOL:-sockperf} in
    sockperf) command -v sockperf >/dev/null || [ -z "$RR_TOOL" ] ||
        { echo "perf/veth.sh: sockperf not found (apt-get install sockperf)" >&2; exit 2; } ;;
    python3) ;;
    *) echo "perf/veth.sh: --rr-tool is sockperf or python3" >&2; exit 2 ;;
esac
SYSTEMS=("${ALL_SYSTEMS[@]}")
if [ -n "$SELECTED" ]; then
    IFS=, read -r -a SYSTEMS <<<"$SELECTED"
    for s in "${SYSTEMS[@]}"; do
        [[ " ${ALL_SYSTEMS[*]} " == *" $s "* ]] || { echo "perf/veth.sh: unknown system $s" >&2; exit 2; }
    done
fi
[ "$(id -u)" = 0 ] || { echo "perf/veth.sh: needs root (network namespaces, DPDK)" >&2; exit 2; }
for t in ip iperf3 ethtool dpdk-testpmd taskset "$PY"; do
    command -v "$t" >/dev/null || { echo "perf/veth.sh: $t not found" >&2; exit 2; }
done

# ---------------------------------------------------------------------------------------------
# Process and object hygiene: everything this run makes is named from TAG and registered here;
# the EXIT trap stops the processes by PID and removes the namespaces, links, DPDK runtime dirs
# and the work dir by name, and nothing else.

TAG="vv$$"
WORK=$(mktemp -d "/tmp/vswitch-veth.XXXXXX")
TRACKED=() NETNSES=() LINKS=() PREFIXES=()
NSA="${TAG}a" NSB="${TAG}b" HA="${TAG}ha" HB="${TAG}hb" LBR="${TAG}br"
IPA=10.201.0.1 IPB=10.201.0.2

log() { echo "veth: $*" >&2; }
die() { echo "perf/veth.sh: $*" >&2; exit 1; }

untrack() {
    local i
    for i in "${!TRACKED[@]}"; do
        [ "${TRACKED[$i]}" = "$1" ] && unset 'TRACKED[i]'
    done
    return 0
}
# shellcheck source=perf/proc.sh
source "$ROOT/perf/proc.sh"

# The machine-wide idle-latency request, held from here to the end of the run.
VS_LATENCY=()
if [ -n "$CPU_LATENCY" ]; then
    hold_cpu_latency "$CPU_LATENCY" perf/veth.sh
    VS_LATENCY=(--cpu-latency "$CPU_LATENCY")
fi

# stop_tracked PID SIGNAL SECONDS: stop_pid, and forget PID.
stop_tracked() {
    stop_pid "$@"
    untrack "$1"
}
# wait_until SECONDS WHAT CMD...: poll CMD every 0.1 s; 1 (and a log line) on time-out.
wait_until() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${secs}s waiting for: $what"
            return 1
        fi
        sleep 0.1
    done
}

cleanup() {
    local rc=$? i p
    set +e
    trap - EXIT INT TERM HUP
    for ((i = ${#TRACKED[@]} - 1; i >= 0; i--)); do
        [ -n "${TRACKED[i]:-}" ] && stop_tracked "${TRACKED[i]}" TERM 10
    done
    teardown_hosts
    for p in "${PREFIXES[@]}"; do rm -rf "/var/run/dpdk/$p"; done
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ] || [ "$OUT" = "$WORK" ]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# ---------------------------------------------------------------------------------------------
# The two hosts: namespaces A and B, eth0 in each, the host ends HA and HB in this namespace.

# setup_hosts OFFLOADS: OFFLOADS "default" keeps the namespaces' offloads, "tx-off" turns tx
# checksum offload (and with it TSO) off on both eth0.
setup_hosts() {
    local offloads=$1 ns h ip
    for ns in "$NSA" "$NSB"; do
        ip netns add "$ns" || return 1
        NETNSES+=("$ns")
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
            net.ipv6.conf.default.disable_ipv6=1
        ip -n "$ns" link set lo up
    done
    for h in "$NSA:$HA:$IPA" "$NSB:$HB:$IPB"; do
        IFS=: read -r ns h ip <<<"$h"
        ip link add "$h" type veth peer name eth0 netns "$ns" || return 1
        LINKS+=("$h")
        sysctl -qw "net.ipv6.conf.$h.disable_ipv6=1"
        ip link set dev "$h" up
        if [ "$offloads" = tx-off ]; then
            ip netns exec "$ns" ethtool -K eth0 tx off >/dev/null || return 1
        fi
        ip -n "$ns" addr add "$ip/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
}

# teardown_hosts: namespaces (their eth0 go with them, and so the host ends), then any link
# left, the Linux bridge included. By name.
teardown_hosts() {
    local ns link deadline
    for ns in "${NETNSES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    NETNSES=()
    for link in "${LINKS[@]}"; do
        deadline=$((SECONDS + 3))
        while ip link show dev "$link" >/dev/null 2>&1 && ((SECONDS < deadline)); do
            [ "$link" = "$LBR" ] && break
            sleep 0.1
        done
        ip link del dev "$link" 2>/dev/null || true
    done
    LINKS=()
    return 0
}

ns_counter() { ip netns exec "$1" cat "/sys/class/net/eth0/statistics/$2"; }
ns_mac() { ip netns exec "$1" cat /sys/class/net/eth0/address; }
ns_listens() { ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q LISTEN; }
ping_ok() { ip netns exec "$NSA" ping -c 1 -W 1 "$IPB"; }

# ---------------------------------------------------------------------------------------------
# Systems. setup_<system> attaches HA and HB and returns once the switch is configured
# (SWITCH_PID: its process, empty for the Linux bridge); WHY says what failed.

WHY="" SWITCH_PID="" VS_SOCK="" OVS_D="" OVS_DBPID=""
vsctl() { timeout 30 "$REL/vsctl" --socket "$VS_SOCK" "$@"; }

setup_linux-bridge() {
    local nf
    ip link add "$LBR" type bridge stp_state 0 forward_delay 0 ||
        { WHY="cannot create bridge $LBR"; return 1; }
    LINKS+=("$LBR")
    sysctl -qw "net.ipv6.conf.$LBR.disable_ipv6=1"
    if ! { ip link set "$HA" master "$LBR" && ip link set "$HB" master "$LBR" &&
        ip link set "$LBR" up; }; then
        WHY="cannot enslave $HA/$HB to $LBR"
        return 1
    fi
    nf=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo "n/a (br_netfilter not loaded)")
    NOTE="bridge-nf-call-iptables: $nf"
}

# start_vswitchd DIR DRIVER
start_vswitchd() {
    local d=$1 driver=$2 prefix="${TAG}d$MEAS_NO" deadline
    VS_SOCK=$d/vswitchd.sock
    PREFIXES+=("$prefix")
    "$REL/vswitchd" --socket "$VS_SOCK" --state-file "$d/state.json" --run-dir "$d/run" \
        --file-prefix "$prefix" --no-huge --poll "$POLL" --lcores 0,1 --workers 1 "${VS_LATENCY[@]}" \
        </dev/null >"$d/vswitchd.log" 2>&1 &
    SWITCH_PID=$!
    TRACKED+=("$SWITCH_PID")
    deadline=$((SECONDS + 30))
    until timeout 5 "$REL/vsctl" --socket "$VS_SOCK" health >/dev/null 2>&1; do
        alive "$SWITCH_PID" || { WHY="vswitchd exited: $(tail -n 1 "$d/vswitchd.log")"; return 1; }
        ((SECONDS < deadline)) || { WHY="vswitchd not healthy after 30 s"; return 1; }
        sleep 0.05
    done
    { vsctl iface add a af_packet iface="$HA" driver="$driver" &&
        vsctl iface add b af_packet iface="$HB" driver="$driver" &&
        vsctl bridge add br0 && vsctl bridge attach br0 a && vsctl bridge attach br0 b; } \
        >>"$d/setup.log" 2>&1 || { WHY="vsctl: $(tail -n 1 "$d/setup.log")"; return 1; }
}
setup_vswitch-native() { start_vswitchd "$1" native; }
setup_vswitch-dpdk() { start_vswitchd "$1" dpdk; }

OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
OVS_SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
ovs_missing_reason() {
    [ "$OVS" = 1 ] || { echo "skipped by --no-ovs"; return; }
    [ -x "$OVS_VSWITCHD" ] || { echo "openvswitch-switch-dpdk not installed ($OVS_VSWITCHD absent)"; return; }
    local t
    for t in ovsdb-tool ovsdb-server ovs-vsctl ovs-appctl; do
        command -v "$t" >/dev/null || { echo "$t not found (openvswitch-switch)"; return; }
    done
    [ -f "$OVS_SCHEMA" ] || echo "$OVS_SCHEMA absent (openvswitch-common)"
}
ovs_vsctl() { ovs-vsctl --db="unix:$OVS_D/db.sock" --timeout=30 "$@"; }
ovs_appctl() { ovs-appctl -t "$OVS_D/ovs-vswitchd.ctl" "$@"; }
ovs_port_ready() {
    local p err
    for p in a b; do
        [ "$(ovs_vsctl get Interface "$p" link_state 2>/dev/null)" = up ] || return 1
        err=$(ovs_vsctl get Interface "$p" error 2>/dev/null) || return 1
        [ "$err" = '[]' ] || return 1
    done
}
setup_ovs-dpdk() {
    local d=$1 prefix="${TAG}o$MEAS_NO" p err
    OVS_D=$d
    PREFIXES+=("$prefix")
    # OVS_*DIR keep every socket, pid and log file of this instance inside $d.
    export OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d
    ovsdb-tool create "$d/conf.db" "$OVS_SCHEMA"
    ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --unixctl="$d/ovsdb-server.ctl" \
        --log-file="$d/ovsdb-server.log" >"$d/ovsdb-server.out" 2>&1 &
    OVS_DBPID=$!
    TRACKED+=("$OVS_DBPID")
    wait_until 10 "ovsdb-server socket" test -S "$d/db.sock" ||
        { WHY="ovsdb-server did not start: $(tail -n 1 "$d/ovsdb-server.log" 2>/dev/null)"; return 1; }
    ovs_vsctl --no-wait init >>"$d/setup.log" 2>&1 || { WHY="ovs-vsctl init failed"; return 1; }
    ovs_vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
        "other_config:dpdk-extra=--no-huge --legacy-mem --iova-mode=va -m 1024 --no-pci --file-prefix=$prefix" \
        other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2 \
        other_config:emc-insert-inv-prob=1 >>"$d/setup.log" 2>&1
    "$OVS_VSWITCHD" "unix:$d/db.sock" --unixctl="$d/ovs-vswitchd.ctl" \
        --log-file="$d/ovs-vswitchd.log" >"$d/ovs-vswitchd.out" 2>&1 &
    SWITCH_PID=$!
    TRACKED+=("$SWITCH_PID")
    if ! { ovs_vsctl add-br br0 -- set bridge br0 datapath_type=netdev &&
        ovs_vsctl add-port br0 a -- set Interface a type=dpdk \
            "options:dpdk-devargs=net_af_packet0,iface=$HA,qpairs=1" &&
        ovs_vsctl add-port br0 b -- set Interface b type=dpdk \
            "options:dpdk-devargs=net_af_packet1,iface=$HB,qpairs=1"; } >>"$d/setup.log" 2>&1; then
        WHY="setup failed: $(tail -n 1 "$d/setup.log")"
        return 1
    fi
    if ! wait_until 30 "OVS ports a and b up without error" ovs_port_ready; then
        for p in a b; do
            err=$(ovs_vsctl get Interface "$p" error 2>/dev/null || true)
            [ -z "$err" ] || [ "$err" = '[]' ] || { WHY="port $p: $err"; return 1; }
        done
        WHY="ports not up after 30 s: $(grep -i 'err\|warn' "$d/ovs-vswitchd.log" | tail -n 1)"
        return 1
    fi
    alive "$SWITCH_PID" || { WHY="ovs-vswitchd-dpdk exited: $(tail -n 1 "$d/ovs-vswitchd.log")"; return 1; }
}
ovs_stop() {
    [ -n "$OVS_D" ] || return 0
    # ovs-vswitchd re-raises SIGTERM after its clean-up: its exit status is not checked.
    [ -z "$SWITCH_PID" ] || stop_tracked "$SWITCH_PID" TERM 15
    [ -z "$OVS_DBPID" ] || stop_tracked "$OVS_DBPID" TERM 5
    unset OVS_RUNDIR OVS_DBDIR OVS_LOGDIR OVS_SYSCONFDIR
    OVS_D=""
}

# ---------------------------------------------------------------------------------------------
# CPU and worker snapshots around each measurement window: snap DIR NAME

snap() {
    local d=$1 n=$2
    head -n 1 /proc/stat >"$d/$n.stat"
    if [ -n "$SWITCH_PID" ]; then cat "/proc/$SWITCH_PID/stat" >"$d/$n.pstat" 2>/dev/null || true; fi
    case $SYSTEM in
        vswitch-*) vsctl --json workers >"$d/$n.workers" 2>>"$d/setup.log" || true ;;
        ovs-dpdk)
            # pmd-stats-show counts from the last clear: clear at the start, read at the end.
            if [[ "$n" == *-0 ]]; then
                ovs_appctl dpif-netdev/pmd-stats-clear >>"$d/setup.log" 2>&1 || true
            else
                ovs_appctl dpif-netdev/pmd-stats-show >"$d/$n.pmd" 2>>"$d/setup.log" || true
            fi ;;
    esac
}

# ---------------------------------------------------------------------------------------------
# Metrics. Each writes its raw output into the measurement dir; failures are recorded there
# (DIR/<metric>.why) and the other metrics still run.

# Servers are started as simple commands in the background (not through a function, which
# would put a subshell between $! and the server): ip netns exec and taskset exec, so $! is the
# server's own PID.
measure_tcp() {
    local d=$1 spid rc=0
    ip netns exec "$NSB" taskset -c "$APP_CPU" iperf3 -s -1 -B "$IPB" </dev/null >"$d/iperf3-server.log" 2>&1 &
    spid=$!
    TRACKED+=("$spid")
    if ! wait_until 10 "iperf3 server in $NSB" ns_listens "$NSB" 5201; then
        echo "iperf3 server did not listen" >"$d/tcp.why"
    else
        snap "$d" tcp-0
        timeout $((TCP_TIME + 30)) ip netns exec "$NSA" taskset -c "$APP_CPU" \
            iperf3 -c "$IPB" -t "$TCP_TIME" -J </dev/null >"$d/iperf3.json" 2>&1 || rc=$?
        snap "$d" tcp-1
        ((rc == 0)) || echo "iperf3 exited $rc: $(grep -m1 '"error"' "$d/iperf3.json" || tail -n 1 "$d/iperf3.json")" >"$d/tcp.why"
    fi
    stop_tracked "$spid" TERM 5
}

# The python3 ping-pong (when sockperf is not installed): 1-byte messages over one TCP
# connection with TCP_NODELAY, one outstanding; prints count, seconds, p50 and p99 in µs.
write_pingpong() {
    cat >"$WORK/pingpong.py" <<'EOF'
import socket, sys, time
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "server":
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port)); ls.listen(1)
    c, _ = ls.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(1)
        if not b: break
        c.sendall(b)
    sys.exit(0)
secs = float(sys.argv[4])
s = socket.create_connection((host, port)); s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
clock, lat = time.perf_counter_ns, []
for _ in range(1000):  # warm-up
    s.sendall(b"x"); s.recv(1)
start = clock(); end = start + int(secs * 1e9); t = start
while t < end:
    s.sendall(b"x")
    if not s.recv(1): sys.exit("server closed the connection")
    now = clock(); lat.append(now - t); t = now
s.close(); lat.sort(); n = len(lat)
print("count=%d seconds=%.6f p50_us=%.3f p99_us=%.3f" % (n, (t - start) / 1e9,
      lat[n // 2] / 1e3, lat[min(n - 1, int(n * 0.99))] / 1e3))
EOF
}
if [ -z "$RR_TOOL" ]; then
    RR_TOOL=python3
    if command -v sockperf >/dev/null; then RR_TOOL=sockperf; fi
fi

measure_rr() {
    local d=$1 spid rc=0 port=11111
    if [ "$RR_TOOL" = sockperf ]; then
        ip netns exec "$NSB" taskset -c "$APP_CPU" sockperf server --tcp -i "$IPB" -p "$port" </dev/null >"$d/rr-server.log" 2>&1 &
    else
        ip netns exec "$NSB" taskset -c "$APP_CPU" "$PY" "$WORK/pingpong.py" server "$IPB" "$port" </dev/null >"$d/rr-server.log" 2>&1 &
    fi
    spid=$!
    TRACKED+=("$spid")
    if ! wait_until 10 "$RR_TOOL server in $NSB" ns_listens "$NSB" "$port"; then
        echo "$RR_TOOL server did not listen" >"$d/rr.why"
    else
        snap "$d" rr-0
        if [ "$RR_TOOL" = sockperf ]; then
            # -m 14: sockperf's smallest message (its header). --full-rtt: round trips.
            timeout $((RR_TIME + 30)) ip netns exec "$NSA" taskset -c "$APP_CPU" sockperf \
                ping-pong --tcp -i "$IPB" -p "$port" -t "$RR_TIME" -m 14 --full-rtt \
                </dev/null >"$d/rr.log" 2>&1 || rc=$?
        else
            timeout $((RR_TIME + 30)) ip netns exec "$NSA" taskset -c "$APP_CPU" "$PY" \
                "$WORK/pingpong.py" client "$IPB" "$port" "$RR_TIME" </dev/null >"$d/rr.log" 2>&1 || rc=$?
        fi
        snap "$d" rr-1
        ((rc == 0)) || echo "$RR_TOOL exited $rc: $(tail -n 1 "$d/rr.log")" >"$d/rr.why"
    fi
    stop_tracked "$spid" TERM 5
}

# tx_moving: A's eth0 sent something since the last call (TX_LAST).
TX_LAST=0
tx_moving() {
    local now
    now=$(ns_counter "$NSA" tx_packets) || return 1
    if ((now > TX_LAST + 1000)); then TX_LAST=$now; return 0; fi
    TX_LAST=$now
    return 1
}

measure_udp() {
    local d=$1 gpid prefix="${TAG}g$MEAS_NO" mac c
    mac=$(ns_mac "$NSB")
    PREFIXES+=("$prefix")
    # testpmd needs a main lcore and a forwarding lcore: both on APP_CPU. Its txonly frames are
    # 64 bytes (without FCS), IPv4/UDP 198.18.0.1 -> 198.18.0.2, to B's MAC.
    ip netns exec "$NSA" stdbuf -oL -eL dpdk-testpmd --no-huge -m 256 --no-pci \
        --file-prefix "$prefix" --lcores "0@$APP_CPU,1@$APP_CPU" \
        --vdev "net_af_packet0,iface=eth0,qpairs=1" -- \
        --forward-mode=txonly --eth-peer="0,$mac" --stats-period 1 --total-num-mbufs 8192 \
        </dev/null >"$d/testpmd.log" 2>&1 &
    gpid=$!
    TRACKED+=("$gpid")
    TX_LAST=$(ns_counter "$NSA" tx_packets)
    if ! wait_until 30 "testpmd sending on $NSA/eth0" tx_moving; then
        echo "testpmd did not send: $(grep -m1 -i 'error\|fail\|cause' "$d/testpmd.log" || tail -n 1 "$d/testpmd.log")" >"$d/udp.why"
    else
        sleep "$WARMUP"
        for c in tx_packets tx_dropped; do ns_counter "$NSA" "$c" >"$d/udp-0.a.$c"; done
        ns_counter "$NSB" rx_packets >"$d/udp-0.b.rx_packets"
        snap "$d" udp-0
        date +%s.%N >"$d/udp-0.time"
        sleep "$WINDOW"
        date +%s.%N >"$d/udp-1.time"
        for c in tx_packets tx_dropped; do ns_counter "$NSA" "$c" >"$d/udp-1.a.$c"; done
        ns_counter "$NSB" rx_packets >"$d/udp-1.b.rx_packets"
        snap "$d" udp-1
        alive "$gpid" || echo "testpmd exited during the window" >"$d/udp.why"
    fi
    stop_tracked "$gpid" INT 20
}

# contenders: processes this run did not start that skew the figures.
contenders() {
    local pid comm
    # shellcheck disable=SC2009
    ps -eo pid=,comm= | while read -r pid comm; do
        case $comm in
            cargo|rustc|vswitchd|ovs-vswitchd*|dpdk-testpmd|iperf3|sockperf|cc1*|ld|lld) ;;
            *) continue ;;
        esac
        [[ " ${TRACKED[*]} " == *" $pid "* ]] || echo "$comm($pid)"
    done | sort -u | tr '\n' ' '
}

# ---------------------------------------------------------------------------------------------
# One measurement: fresh namespaces and a fresh switch, then the three metrics.

SYSTEM="" MEAS_NO=0 NOTE=""
measure() {
    local sys=$1 run=$2 d="$WORK/$1-$2" offloads=default status=ok why
    SYSTEM=$sys WHY="" SWITCH_PID="" NOTE="" VS_SOCK="" OVS_D="" OVS_DBPID=""
    MEAS_NO=$((MEAS_NO + 1))
    mkdir -p "$d"
    case $sys in vswitch-dpdk|ovs-dpdk) offloads=tx-off ;; esac
    echo "$offloads" >"$d/offloads"
    if [ "$sys" = ovs-dpdk ]; then
        why=$(ovs_missing_reason)
        if [ -n "$why" ]; then
            log "$sys run $run: missing: $why"
            printf 'missing\n%s\n' "$why" >"$d/status"
            return
        fi
    fi
    log "$sys run $run: set-up (offloads: $offloads)"
    if ! setup_hosts "$offloads" >>"$d/setup.log" 2>&1; then
        status=failed WHY="cannot make the namespaces: $(tail -n 1 "$d/setup.log")"
    elif ! "setup_$sys" "$d"; then
        status=failed
    elif ! wait_until 30 "ping $NSA -> $IPB through $sys" ping_ok; then
        status=failed WHY="no ping reply $IPA -> $IPB within 30 s"
    else
        # Request/response first: vswitchd's rx -> tx latency histogram counts from its start,
        # so read after this window it holds the ping and the round trips only.
        log "$sys run $run: request/response ($RR_TOOL) ${RR_TIME}s"
        measure_rr "$d"
        log "$sys run $run: tcp ${TCP_TIME}s"
        measure_tcp "$d"
        log "$sys run $run: udp 64 B, ${WARMUP}s warm-up + ${WINDOW}s window"
        measure_udp "$d"
        contenders >"$d/contended_by"
        if [ "$sys" = ovs-dpdk ] || [[ "$sys" == vswitch-* ]]; then
            alive "$SWITCH_PID" || { status=failed WHY="$sys exited during the measurement"; }
        fi
    fi
    [ -z "$NOTE" ] || echo "$NOTE" >"$d/note"
    case $sys in
        vswitch-*) [ -z "$SWITCH_PID" ] || stop_tracked "$SWITCH_PID" TERM 20 ;;
        ovs-dpdk) ovs_stop ;;
    esac
    teardown_hosts
    printf '%s\n%s\n' "$status" "$WHY" >"$d/status"
    [ "$status" = ok ] || log "$sys run $run: FAILED: $WHY"
}

# ---------------------------------------------------------------------------------------------
# Report: every measurement dir -> samples -> <date>-veth.md/.json.

write_report_py() {
    cat >"$WORK/report.py" <<'EOF'
import json, os, re, statistics, sys, glob

work, out_md, out_json, meta = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
hz = os.sysconf("SC_CLK_TCK")

def rd(p, default=None):
    try:
        with open(p) as f: return f.read().strip()
    except OSError: return default

def cpu_pct(d, w, secs):
    """Machine CPU busy over the window (% of one CPU) and the switch process CPU (%)."""
    r = {}
    a, b = rd(f"{d}/{w}-0.stat"), rd(f"{d}/{w}-1.stat")
    if a and b:
        fa, fb = [list(map(int, x.split()[1:])) for x in (a, b)]
        dt = [y - x for x, y in zip(fa, fb)]
        total, idle = sum(dt[:8]), dt[3] + dt[4]
        ncpu = os.cpu_count() or 1
        if total > 0: r["host_cpu_pct"] = round(100.0 * ncpu * (total - idle) / total, 1)
    a, b = rd(f"{d}/{w}-0.pstat"), rd(f"{d}/{w}-1.pstat")
    if a and b and secs:
        fa, fb = [x[x.rindex(")") + 2:].split() for x in (a, b)]
        used = (int(fb[11]) + int(fb[12]) - int(fa[11]) - int(fa[12])) / hz
        r["switch_process_cpu_pct"] = round(100.0 * used / secs, 1)
    a, b = rd(f"{d}/{w}-0.workers"), rd(f"{d}/{w}-1.workers")
    if a and b:
        try:
            wa, wb = json.loads(a), json.loads(b)
            busy = sum(x["busy_cycles"] for x in wb) - sum(x["busy_cycles"] for x in wa)
            tot = sum(x["total_cycles"] for x in wb) - sum(x["total_cycles"] for x in wa)
            pk = sum(x["packets"] for x in wb) - sum(x["packets"] for x in wa)
            if tot > 0: r["worker_busy_pct"] = round(100.0 * busy / tot, 1)
            if pk > 0: r["worker_cycles_per_packet"] = round(busy / pk, 1)
            if w == "rr":
                lat = [x.get("latency", {}) for x in wb]
                if lat and lat[0].get("samples"):
                    r["switch_latency_p50_us"] = round(lat[0]["p50_ns"] / 1e3, 2)
                    r["switch_latency_p99_us"] = round(lat[0]["p99_ns"] / 1e3, 2)
        except (ValueError, KeyError): pass
    p = rd(f"{d}/{w}-1.pmd")
    if p:
        m = re.search(r"processing cycles:\s*\d+\s*\(([\d.]+)\s*%\)", p)
        if m: r["worker_busy_pct"] = float(m.group(1))
        m = re.search(r"avg processing cycles per packet:\s*([\d.]+)", p)
        if m: r["worker_cycles_per_packet"] = float(m.group(1))
    return r

samples = []
for d in sorted(glob.glob(f"{work}/*-[0-9]*")):
    if not os.path.isdir(d) or not os.path.exists(f"{d}/status"): continue
    sysname, run = os.path.basename(d).rsplit("-", 1)
    st = (rd(f"{d}/status") + "\n").split("\n")
    s = {"system": sysname, "run": int(run), "status": st[0], "why": st[1] or None,
         "offloads": rd(f"{d}/offloads"), "note": rd(f"{d}/note"),
         "contended_by": (rd(f"{d}/contended_by") or "").split(), "errors": {}}
    if s["status"] == "ok":
        # TCP
        why = rd(f"{d}/tcp.why")
        try:
            if why: raise ValueError(why)
            j = json.load(open(f"{d}/iperf3.json"))
            if "error" in j: raise ValueError("iperf3: " + j["error"])
            s["tcp_gbps"] = round(j["end"]["sum_received"]["bits_per_second"] / 1e9, 3)
            s["tcp_retransmits"] = j["end"]["sum_sent"].get("retransmits")
            s["tcp_cpu"] = cpu_pct(d, "tcp", j["end"]["sum_received"]["seconds"])
        except (OSError, ValueError, KeyError) as e:
            s["errors"]["tcp"] = str(e)
        # Request/response
        why = rd(f"{d}/rr.why")
        try:
            if why: raise ValueError(why)
            t = rd(f"{d}/rr.log") or ""
            if "observations" in t:  # sockperf
                m = re.search(r"\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=\d+; ReceivedMessages=(\d+)", t)
                p50 = re.search(r"percentile 50\.000 =\s*([\d.]+)", t)
                p99 = re.search(r"percentile 99\.000 =\s*([\d.]+)", t)
                if not (m and p50 and p99): raise ValueError("cannot read sockperf output")
                secs, n = float(m.group(1)), int(m.group(2))
                p50, p99 = float(p50.group(1)), float(p99.group(1))
                s["rr_tool"] = "sockperf ping-pong --tcp -m 14 --full-rtt"
            else:
                m = re.search(r"count=(\d+) seconds=([\d.]+) p50_us=([\d.]+) p99_us=([\d.]+)", t)
                if not m: raise ValueError("cannot read the ping-pong output: " + t[-200:])
                n, secs = int(m.group(1)), float(m.group(2))
                p50, p99 = float(m.group(3)), float(m.group(4))
                s["rr_tool"] = "python3 ping-pong, 1-byte messages"
            if n == 0: raise ValueError("no round trip completed")
            s["rr_tps"] = round(n / secs, 1)
            s["rr_p50_us"], s["rr_p99_us"] = p50, p99
            s["rr_cpu"] = cpu_pct(d, "rr", secs)
        except (OSError, ValueError) as e:
            s["errors"]["rr"] = str(e)
        # UDP
        why = rd(f"{d}/udp.why")
        try:
            if why: raise ValueError(why)
            secs = float(rd(f"{d}/udp-1.time")) - float(rd(f"{d}/udp-0.time"))
            delta = lambda n: int(rd(f"{d}/udp-1.{n}")) - int(rd(f"{d}/udp-0.{n}"))
            tx, rx = delta("a.tx_packets"), delta("b.rx_packets")
            s["udp_offered_mpps"] = round(tx / secs / 1e6, 4)
            s["udp_rx_mpps"] = round(rx / secs / 1e6, 4)
            s["udp_tx_dropped_in_a"] = delta("a.tx_dropped")
            s["udp_window_s"] = round(secs, 3)
            s["udp_cpu"] = cpu_pct(d, "udp", secs)
            if rx <= 0: raise ValueError("nothing received in B (%d sent by A)" % tx)
        except (OSError, ValueError, TypeError) as e:
            s["errors"]["udp"] = str(e)
    samples.append(s)

systems = meta["systems"]
METRICS = ["tcp_gbps", "rr_tps", "rr_p50_us", "rr_p99_us", "udp_rx_mpps", "udp_offered_mpps"]
def med(vals): return round(statistics.median(vals), 4) if vals else None
summary = {}
for name in systems:
    ss = [s for s in samples if s["system"] == name]
    ok = [s for s in ss if s["status"] == "ok"]
    row = {"runs": len(ss), "ok_runs": len(ok), "offloads": ss[0]["offloads"] if ss else None}
    if ss and not ok:
        row["status"] = ss[0]["status"]; row["why"] = ss[0]["why"]
    for m in METRICS:
        v = [s[m] for s in ok if s.get(m) is not None]
        row[m] = med(v); row[m + "_range"] = [min(v), max(v)] if v else None
    for w in ("tcp", "rr", "udp"):
        for k in ("worker_busy_pct", "switch_process_cpu_pct", "host_cpu_pct", "worker_cycles_per_packet",
                  "switch_latency_p50_us", "switch_latency_p99_us"):
            v = [s[w + "_cpu"][k] for s in ok if k in s.get(w + "_cpu", {})]
            if v: row[f"{w}_{k}"] = med(v)
    summary[name] = row

def ratio(a, b, m):
    x, y = summary.get(a, {}).get(m), summary.get(b, {}).get(m)
    return round(x / y, 3) if x and y else None
ratios = {}
for other in ("linux-bridge", "vswitch-dpdk", "ovs-dpdk"):
    if "vswitch-native" in summary and other in summary:
        ratios[f"vswitch-native/{other}"] = {m: ratio("vswitch-native", other, m)
                                             for m in ("tcp_gbps", "rr_tps", "rr_p50_us", "rr_p99_us", "udp_rx_mpps")}

doc = {"profile": "veth", "settings": meta, "summary": summary, "ratios": ratios, "samples": samples}
with open(out_json, "w") as f: json.dump(doc, f, indent=1)

def fmt(v, nd=2):
    return "-" if v is None else (f"{v:.{nd}f}")
def cell(row, m, nd=2):
    v, r = row.get(m), row.get(m + "_range")
    if v is None: return "-"
    if r and row["ok_runs"] > 1 and r[0] != r[1]: return f"{v:.{nd}f} ({r[0]:.{nd}f}-{r[1]:.{nd}f})"
    return f"{v:.{nd}f}"
L = []
L.append(f"# veth profile, {meta['date']}\n")
L.append(f"`{meta['command']}` at {meta['git_revision']}{' (uncommitted changes)' if meta.get('git_dirty') else ''}, "
         f"{meta['runs']} run(s) per system, interleaved (order rotated every run). Machine: {meta['cpu']}, "
         f"{meta['ncpu']} CPUs, kernel {meta['kernel']}; load average at the start {meta['load_start']}.\n")
L.append("Two network namespaces A (10.201.0.1) and B (10.201.0.2), each eth0 on a veth pair whose host end is "
         "the system under test's port. iperf3, the latency client/server and the UDP generator run on CPU "
         f"{meta['app_cpu']}; vswitchd (`--workers 1 --poll {meta['poll']} --lcores 0,1 --no-huge`) and OVS "
         "(pmd-cpu-mask=0x2) poll on CPU 1; the Linux bridge forwards in the kernel, in the softirq of the CPU "
         "that sends. Each measurement starts from fresh namespaces and a fresh switch."
         + ("" if meta.get("cpu_latency") is None else
            f" For the whole run a PM QoS request of {meta['cpu_latency']} µs was held on /dev/cpu_dma_latency "
            f"(every system alike; vswitchd also got `--cpu-latency {meta['cpu_latency']}`).")
         + "\n")
L.append("| system | offloads in A, B | TCP Gbit/s | RR trans/s | RR p50 µs | RR p99 µs | UDP 64 B Mpps: rx in B / offered by A | worker busy % tcp/rr/udp | worker cycles/packet rr/udp | in-switch rx->tx p50/p99 µs | host CPU % tcp/udp |")
L.append("|---|---|---|---|---|---|---|---|---|---|---|")
for name in systems:
    r = summary[name]
    if r["ok_runs"] == 0:
        L.append(f"| {name} | {r.get('offloads') or '-'} | {r.get('status', 'missing')}: {r.get('why') or 'no sample'} | | | | | | | | |")
        continue
    busy = "/".join(fmt(r.get(f"{w}_worker_busy_pct"), 0) for w in ("tcp", "rr", "udp"))
    host = "/".join(fmt(r.get(f"{w}_host_cpu_pct"), 0) for w in ("tcp", "udp"))
    cpp = "/".join(fmt(r.get(f"{w}_worker_cycles_per_packet"), 0) for w in ("rr", "udp"))
    lat = "/".join(fmt(r.get(f"rr_switch_latency_{q}_us"), 1) for q in ("p50", "p99"))
    off = "default" if r["offloads"] == "default" else "tx off (ethtool -K eth0 tx off)"
    L.append(f"| {name} | {off} | {cell(r, 'tcp_gbps')} | {cell(r, 'rr_tps', 0)} | {cell(r, 'rr_p50_us', 1)} | "
             f"{cell(r, 'rr_p99_us', 1)} | {cell(r, 'udp_rx_mpps', 3)} / {fmt(r.get('udp_offered_mpps'), 3)} | {busy} | {cpp} | {lat} | {host} |")
L.append("")
L.append("Medians over the runs, (min-max) when they differ. TCP: iperf3 single stream A -> B, "
         f"{meta['tcp_time']} s. RR: {meta['rr_tool']}, A -> B, one transaction outstanding, {meta['rr_time']} s; "
         "p50/p99 are round-trip times. UDP: dpdk-testpmd txonly (64-byte frames without FCS, to B's MAC) on a "
         "net_af_packet vdev on A's eth0 on CPU " f"{meta['app_cpu']}" "; received = B's eth0 rx_packets, offered = A's eth0 "
         f"tx_packets, over a {meta['window']} s window after {meta['warmup']} s of traffic. Worker busy: the switch "
         "worker's cycles spent on packets over all its cycles in the window (vswitch: `vsctl workers`; OVS: "
         "pmd-stats-show processing cycles), and those cycles per packet it handled (TSC; a packet through the bridge "
         "counts once); in-switch rx->tx: vswitchd's own latency histogram (`vsctl workers`, from its start to the end "
         "of the request/response window, which runs first: the ping and the round trips); "
         "host CPU: the whole machine's busy time in % of one CPU (/proc/stat).\n")
if "vswitch-dpdk" in systems or "ovs-dpdk" in systems:
    L.append("vswitch-dpdk and ovs-dpdk run with tx checksum offload (and so TSO) off in both namespaces: "
             "DPDK's net_af_packet passes partial checksums on as they are, so TCP breaks without it. "
             "linux-bridge and vswitch-native keep the namespaces' default offloads.\n")
for k, v in ratios.items():
    L.append(f"- **{k}**: TCP {fmt(v['tcp_gbps'], 2)}x, RR trans/s {fmt(v['rr_tps'], 2)}x, "
             f"RR p50 {fmt(v['rr_p50_us'], 2)}x, p99 {fmt(v['rr_p99_us'], 2)}x (latency: lower is better), "
             f"UDP Mpps {fmt(v['udp_rx_mpps'], 2)}x")
L.append("")
notes = []
for s in samples:
    tag = f"{s['system']} run {s['run']}"
    if s["status"] != "ok": notes.append(f"{tag}: {s['status']}: {s['why']}")
    for k, e in s["errors"].items(): notes.append(f"{tag}: {k} failed: {e}")
    if s.get("contended_by"): notes.append(f"{tag}: not alone on the machine: {' '.join(s['contended_by'])}")
    if s.get("note"): notes.append(f"{tag}: {s['note']}")
    if s.get("tcp_retransmits"): notes.append(f"{tag}: iperf3 retransmits {s['tcp_retransmits']}")
if notes:
    L.append("Notes:\n")
    L += [f"- {n}" for n in notes]
    L.append("")
with open(out_md, "w") as f: f.write("\n".join(L) + "\n")
print("\n".join(L))
bad = [n for n in ("linux-bridge", "vswitch-native", "vswitch-dpdk") if n in summary and summary[n]["ok_runs"] > 0
       and not (summary[n]["tcp_gbps"] and summary[n]["udp_rx_mpps"])]
bad += [n for n in ("linux-bridge", "vswitch-native", "vswitch-dpdk") if n in summary and summary[n]["ok_runs"] == 0]
if bad:
    print("no TCP or UDP figure for: " + ", ".join(bad), file=sys.stderr); sys.exit(3)
EOF
}

# ---------------------------------------------------------------------------------------------
# Build, measure, report.

if [ "$BUILD" = 1 ]; then
    log "building vswitchd and vsctl (nice -n 19 $CARGO build --release -p vswitch-control)"
    (cd "$ROOT" && nice -n 19 "$CARGO" build --release -p vswitch-control) ||
        die "build failed: nothing measured"
fi
for b in vswitchd vsctl; do
    [ -x "$REL/$b" ] || die "$REL/$b missing (build with cargo build --release -p vswitch-control)"
done
write_pingpong
write_report_py
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START=$SECONDS
log "tag $TAG, work dir $WORK, systems ${SYSTEMS[*]}, $RUNS run(s), latency tool $RR_TOOL"
for ((run = 1; run <= RUNS; run++)); do
    n=${#SYSTEMS[@]}
    for ((i = 0; i < n; i++)); do
        measure "${SYSTEMS[$(((i + run - 1) % n))]}" "$run"
    done
done

DATE=$(date +%F)
if [ -z "$OUT" ]; then
    if [ "$QUICK" = 1 ]; then OUT=$WORK; else OUT=$ROOT/perf/results; fi
fi
mkdir -p "$OUT"
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=false
[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] || DIRTY=true
META=$("$PY" - "$DATE" "perf/veth.sh $ARGS" "$REV" "$DIRTY" "$RUNS" "$TCP_TIME" "$RR_TIME" "$WINDOW" \
    "$WARMUP" "$POLL" "$APP_CPU" "$RR_TOOL" "$LOAD_START" "$BUILD" "$((SECONDS - START))" \
    "${SYSTEMS[*]}" "${CPU_LATENCY:-none}" <<'EOF'
import json, os, platform, sys
a = sys.argv[1:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(json.dumps({"date": a[0], "command": a[1], "git_revision": a[2], "git_dirty": a[3] == "true",
    "runs": int(a[4]), "tcp_time": int(a[5]), "rr_time": int(a[6]), "window": int(a[7]),
    "warmup": int(a[8]), "poll": a[9], "app_cpu": int(a[10]),
    "rr_tool": {"sockperf": "sockperf ping-pong --tcp (14-byte messages, its smallest)",
                "python3": "python3 ping-pong of 1-byte messages"}[a[11]],
    "load_start": a[12], "built": a[13] == "1", "elapsed_s": int(a[14]), "systems": a[15].split(),
    "cpu_latency": None if a[16] == "none" else int(a[16]),
    "cpu": cpu, "ncpu": os.cpu_count(), "kernel": platform.release()}))
EOF
)
rc=0
"$PY" "$WORK/report.py" "$WORK" "$OUT/$DATE-veth.md" "$OUT/$DATE-veth.json" "$META" || rc=$?
log "results: $OUT/$DATE-veth.md, $OUT/$DATE-veth.json"
exit "$rc"
