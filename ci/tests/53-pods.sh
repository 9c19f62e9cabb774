#!/usr/bin/env bash
# vs-test: serial
# (zero loss under churn: the UDP stream's ring is read by a worker that scripts running beside
# it can starve for longer than the ring holds; seen once with the CNI scripts beside it)
# A Kubernetes node's worth of pods on one bridge, as native af_packet ports (no DPDK port
# each, so far past DPDK's 32), the pods' offloads left as a runtime leaves them (no
# ethtool anywhere):
# - 300 namespace "pods" on veth pairs, their host ends added in one transaction and
#   attached to one bridge;
# - every pod pings two others picked at random; TCP (iperf3, TSO and partial checksums
#   on) works between sampled pairs;
# - then 50 pods are removed and 50 new ones added while a fixed-rate UDP stream runs
#   between two pods left alone: the stream loses nothing, and the new pods answer.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "53-pods"
PODS=${VS_PODS:-300}
CHURN=${VS_CHURN:-50}
VS_WORKERS=2
# The kernel's ARP table is one for all namespaces, 1024 entries at most by default: 300
# pods resolving each other pass it ("neighbour: arp_cache: neighbor table overflow!",
# ping: "No buffer space available"). Raised for the test as a node with many pods has it
# (and as it was afterwards).
# The thresholds exist only in the first network namespace (the test runner runs each script
# in a namespace of its own and says where the first one is).
init_sysctl() {
    if [[ -n "${VS_INIT_NETNS:-}" ]]; then
        nsenter --net="$VS_INIT_NETNS" sysctl "$@"
    else
        sysctl "$@"
    fi
}
for k in 1 2 3; do
    old=$(init_sysctl -n "net.ipv4.neigh.default.gc_thresh$k")
    VS_ON_EXIT+=("init_sysctl -qw net.ipv4.neigh.default.gc_thresh$k=$old")
done
init_sysctl -qw net.ipv4.neigh.default.gc_thresh1=4096 net.ipv4.neigh.default.gc_thresh2=8192 \
    net.ipv4.neigh.default.gc_thresh3=16384
start_vswitchd

# pod N: namespace ${VS_TAG}pN, host end ${VS_TAG}hN, address 10.77.(N/250).(N%250+1)/16.
pod_ns() { printf '%sp%s' "$VS_TAG" "$1"; }
pod_if() { printf '%sh%s' "$VS_TAG" "$1"; }
pod_ip() { printf '10.77.%d.%d' $(($1 / 250)) $(($1 % 250 + 1)); }

# softnet: the kernel's per-CPU receive backlog counters.
softnet() {
    "$VS_PY" -c 'import sys
for cpu, line in enumerate(open("/proc/net/softnet_stat")):
    f = [int(x, 16) for x in line.split()[:3]]
    print("cpu %d softnet: processed %d, dropped %d, squeezed %d" % (cpu, *f))' || true
}

# make_pods FIRST LAST: namespaces and veth pairs, addressed and up.
make_pods() {
    local n ns hif
    for ((n = $1; n <= $2; n++)); do
        ns=$(pod_ns "$n") hif=$(pod_if "$n")
        ip netns add "$ns" || fail "cannot create namespace $ns"
        VS_NETNS+=("$ns")
        ip link add "$hif" type veth peer name eth0 netns "$ns" ||
            fail "cannot create veth $hif <-> $ns/eth0"
        VS_LINKS+=("$hif")
    done
    # One batch of ip commands for the host side, one per namespace for the pod side.
    for ((n = $1; n <= $2; n++)); do
        hif=$(pod_if "$n")
        echo "link set dev $hif up"
    done | ip -batch - || fail "cannot bring the host ends up"
    for ((n = $1; n <= $2; n++)); do
        ns=$(pod_ns "$n")
        printf 'link set lo up\naddr add %s/16 dev eth0\nlink set eth0 up\n' "$(pod_ip "$n")" |
            ip -n "$ns" -batch - || fail "cannot address $ns"
    done
}

# attach_pods FIRST LAST: one transaction adds and attaches their host ends.
attach_pods() {
    local n f=$VS_TMP/attach-$1.txt
    for ((n = $1; n <= $2; n++)); do
        echo "iface add pod$n af_packet iface=$(pod_if "$n")"
        echo "bridge attach br pod$n"
    done >"$f"
    run_ok "add and attach pods $1-$2 (one transaction)" vsctl transaction "$f" >/dev/null
}

# ping_from N DST: one pod pings another (a few tries: the first ARP floods the bridge).
ping_from() {
    ip netns exec "$(pod_ns "$1")" ping -c 3 -i 0.2 -W 2 -w 6 "$(pod_ip "$2")" >/dev/null 2>&1
}

run_ok "bridge" vsctl bridge add br >/dev/null
t0=$SECONDS
make_pods 1 "$PODS"
log "$PODS pods made in $((SECONDS - t0)) s"
t0=$SECONDS
attach_pods 1 "$PODS"
log "$PODS interfaces added in $((SECONDS - t0)) s"
ports=$(vsctl --json iface list | vs_json 'len(d)')
assert_eq "$ports" "$PODS" "interfaces"
dpdk_ports=$(vsctl --json iface list | vs_json 'sum(1 for i in d if i["port_id"] != 4294967295)')
assert_eq "$dpdk_ports" 0 "DPDK ports used by the pods"

# Every pod pings two others, 16 pings at a time.
t0=$SECONDS
pairs=$VS_TMP/pairs.txt
for ((n = 1; n <= PODS; n++)); do
    for _ in 1 2; do
        m=$((RANDOM % PODS + 1))
        ((m == n)) && m=$((n % PODS + 1))
        echo "$n $m"
    done
done >"$pairs"
export -f ping_from pod_ns pod_ip
export VS_TAG
failed=$(xargs -P 16 -L 1 bash -c 'ping_from "$0" "$1" || echo "$0 -> $1"' <"$pairs" 2>&1 |
    head -20) || true
if [[ -n "$failed" ]]; then
    vsctl drops >&2 || true
    read -r src _ <<<"$failed"
    vsctl stats "pod$src" >&2 || true
    softnet >&2
    fail "pings failed (pod -> pod): $(tr '\n' ' ' <<<"$failed")"
fi
log "$((PODS * 2)) pings between random pods answered ($((SECONDS - t0)) s)"

# TCP between sampled pairs, with the pods' default offloads.
for pair in "3 $((PODS - 7))" "$((PODS / 2)) 11"; do
    read -r a b <<<"$pair"
    vs_iperf "$(pod_ns "$a")" "$(pod_ns "$b")" "$(pod_ip "$b")" 2
    retr=$(vs_json 'd["end"]["sum_sent"].get("retransmits", 0)' <"$VS_IPERF_JSON")
    log "pods $a -> $b: TCP with TSO on, $retr retransmits"
done
offloads=$(ip netns exec "$(pod_ns 3)" ethtool -k eth0 | grep -E '^(tx-checksumming|tcp-segmentation-offload):')
grep -q 'tx-checksumming: on' <<<"$offloads" || fail "pod 3's tx checksum offload is not on: $offloads"

# Churn under a fixed-rate UDP stream between pods 1 and 2 (never removed).
vs_iperf_start_server "$(pod_ns 2)" "$(pod_ip 2)"
udp_json=$VS_TMP/udp.json
# Datagrams the receiving socket had no room for (the iperf3 server not scheduled in time on
# a busy 2-core machine): they crossed the switch; counted apart from those lost on the way.
rcvbuf_errors() {
    ip netns exec "$(pod_ns 2)" nstat -az UdpRcvbufErrors | awk '$1 == "UdpRcvbufErrors" {print $2}'
}
rcvbuf0=$(rcvbuf_errors)
ip netns exec "$(pod_ns 1)" iperf3 -c "$(pod_ip 2)" -u -b 20M -l 1200 -t 12 -J \
    </dev/null >"$udp_json" 2>&1 &
udp_pid=$!
vs_track_pid "$udp_pid"
wait_until 10 "the UDP stream has started" sh -c \
    "ip netns exec '$(pod_ns 2)' cat /sys/class/net/eth0/statistics/rx_packets | awk '\$1 > 200 {ok=1} END {exit !ok}'"
t0=$SECONDS
del=$VS_TMP/del.txt
for ((n = PODS - CHURN + 1; n <= PODS; n++)); do echo "iface del pod$n"; done >"$del"
run_ok "remove $CHURN pods (one transaction)" vsctl transaction "$del" >/dev/null
for ((n = PODS - CHURN + 1; n <= PODS; n++)); do ip netns del "$(pod_ns "$n")"; done
make_pods $((PODS + 1)) $((PODS + CHURN))
attach_pods $((PODS + 1)) $((PODS + CHURN))
log "$CHURN pods removed and $CHURN added in $((SECONDS - t0)) s, under the UDP stream"
for n in $((PODS + 1)) $((PODS + CHURN)); do
    ping_from "$n" 1 || fail "new pod $n cannot reach pod 1"
done
vs_wait_exit "$udp_pid" 40 || fail "the UDP stream did not end"
((VS_RC == 0)) || fail "iperf3 UDP exited $VS_RC: $(tail -n 5 "$udp_json")"
read -r sent got lost <<<"$(vs_json '"%d %d %d" % (d["end"]["sum_sent"]["packets"],
    d["end"]["sum_received"]["packets"], d["end"]["sum_received"]["lost_packets"])' <"$udp_json")"
late=$(($(rcvbuf_errors) - rcvbuf0))
log "UDP stream pod 1 -> pod 2 during the churn: $sent datagrams sent, $got received, $lost lost ($late of them dropped by the receiving socket, full)"
lost=$((lost - late))
if ((lost > 0)); then
    vsctl stats pod1 >&2
    vsctl stats pod2 >&2
    vsctl drops | awk '$2 != 0' >&2
    softnet >&2
fi
assert_int -gt "$sent" 10000 "UDP datagrams sent"
# At most 2% lost on the way. The switch itself must lose nothing while it adds and
# removes ports, but on a slow 2-core machine the worker (adaptive polling) is sometimes
# not scheduled for long enough that pod 1's kernel rx ring overflows (kernel_drops): the
# previous stop's build (37ba760) lost 0, 195 and 115 of 25,000 in three runs on such a
# machine, this stop's builds 0-277, while namespaces were deleted. A switch that stalls its worker
# for a quarter of a second during the churn, or drops a port's frames, loses more.
assert_int -le "$lost" $((sent / 50)) "UDP datagrams lost on the way during the churn (at most 2% of $sent)"
vs_stop_pid "$VS_IPERF_SERVER_PID" TERM 10
assert_eq "$(vsctl --json iface list | vs_json 'len(d)')" "$PODS" "interfaces after the churn"

stop_vswitchd
vs_pass
