#!/usr/bin/env bash
# perf/bridge-rr-cpus.sh: what crossing CPUs costs a TCP request/response on this machine,
# with no switch of ours in the path: two veth namespaces on a Linux bridge, sockperf
# ping-pong (--tcp -m 14 --full-rtt, as perf/veth.sh) with server and client pinned to the same CPU, then to different
# CPUs, then unpinned, --runs times each. A poll-mode switch on a core of its own wakes the
# receiving pod from another CPU at every hop, as the "different CPUs" case does twice per
# round trip; perf/veth.sh's Linux bridge row is whatever placement the scheduler chose.
#
# Writes <YYYY-MM-DD>-bridge-rr-cpus.md to --out DIR (default perf/results). Needs root and
# sockperf. Cleans up its namespaces and bridge by name.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/perf/results RUNS=3 SECS=4 CPU_LATENCY=""
while (($#)); do
    case $1 in
        --out) OUT=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --seconds) SECS=$2; shift 2 ;;
        --cpu-latency) CPU_LATENCY=$2; shift 2 ;;
        -h | --help)
            sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
            echo "usage: perf/bridge-rr-cpus.sh [--runs N] [--seconds S] [--cpu-latency US] [--out DIR]"
            echo "  --cpu-latency US: hold a PM QoS request of US µs on /dev/cpu_dma_latency for the run"
            echo "                    (0: idle CPUs poll instead of halting, as vswitchd --cpu-latency 0)"
            exit 0 ;;
        *) echo "perf/bridge-rr-cpus.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
((EUID == 0)) || { echo "perf/bridge-rr-cpus.sh: run as root" >&2; exit 1; }
command -v sockperf >/dev/null || { echo "perf/bridge-rr-cpus.sh: sockperf missing" >&2; exit 1; }
log() { echo "bridge-rr-cpus: $*"; }
# shellcheck source=perf/proc.sh
source "$ROOT/perf/proc.sh"
LATENCY_NOTE=""
if [[ -n "$CPU_LATENCY" ]]; then
    hold_cpu_latency "$CPU_LATENCY" perf/bridge-rr-cpus.sh
    LATENCY_NOTE=" A PM QoS request of $CPU_LATENCY µs was held on /dev/cpu_dma_latency for the whole run (idle CPUs $( ((CPU_LATENCY == 0)) && echo poll || echo 'stay in shallow states'))."
fi
TAG=brr$$ BR=brr$$br A=brr$$a B=brr$$b
SERVER=""
cleanup() {
    set +e
    [[ -z "$SERVER" ]] || { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; }
    ip netns del "$A" 2>/dev/null
    ip netns del "$B" 2>/dev/null
    ip link del "$BR" 2>/dev/null
}
trap cleanup EXIT
ip link add "$BR" type bridge
ip link set "$BR" up
i=1
for n in "$A" "$B"; do
    ip netns add "$n"
    ip link add "${TAG}h$i" type veth peer name eth0 netns "$n"
    ip link set "${TAG}h$i" master "$BR" up
    ip -n "$n" addr add "10.99.9.$i/24" dev eth0
    ip -n "$n" link set eth0 up
    ip -n "$n" link set lo up
    i=$((i + 1))
done
ip netns exec "$A" ping -c 1 -W 5 10.99.9.2 >/dev/null

# rr SERVER_CPUS CLIENT_CPUS: sockperf's p50 and average latency (µs), "p50 avg".
rr() {
    local out
    ip netns exec "$B" taskset -c "$1" sockperf server --tcp -i 10.99.9.2 -p 11111 >/dev/null 2>&1 &
    SERVER=$!
    sleep 0.5
    out=$(ip netns exec "$A" taskset -c "$2" sockperf ping-pong --tcp -i 10.99.9.2 -p 11111 \
        -t "$SECS" -m 14 --full-rtt 2>&1)
    kill "$SERVER" 2>/dev/null
    wait "$SERVER" 2>/dev/null || true
    SERVER=""
    awk '/percentile 50.000/ { p = $NF } /avg-(latency|rtt)=/ { sub(/.*avg-(latency|rtt)=/, ""); a = $1 }
        END { print p, a }' <<<"$out"
}
mkdir -p "$OUT"
md=$OUT/$(date +%F)-bridge-rr-cpus.md
{
    echo "# TCP request/response through a Linux bridge, by CPU placement, $(date +%F)"
    echo
    echo "\`perf/bridge-rr-cpus.sh --runs $RUNS --seconds $SECS${CPU_LATENCY:+ --cpu-latency $CPU_LATENCY}\` at $(git -C "$ROOT" rev-parse --short HEAD); $(nproc) CPUs, kernel $(uname -r); sockperf ping-pong --tcp -m 14 --full-rtt (round trips, as perf/veth.sh), $SECS s per run. Idle CPUs: $(idle_state).$LATENCY_NOTE"
    echo
    echo "| placement | server CPU | client CPU | run | p50 µs | avg µs |"
    echo "|---|---|---|---|---:|---:|"
} >"$md"
for case in "same CPU|0|0" "different CPUs|1|0" "unpinned|0-$(($(nproc) - 1))|0-$(($(nproc) - 1))"; do
    IFS='|' read -r name s c <<<"$case"
    for ((r = 1; r <= RUNS; r++)); do
        read -r p50 avg <<<"$(rr "$s" "$c")"
        echo "| $name | $s | $c | $r | $p50 | $avg |" >>"$md"
        echo "bridge-rr-cpus: $name run $r: p50 $p50 µs, avg $avg µs"
    done
done
echo "bridge-rr-cpus: results: $md"
