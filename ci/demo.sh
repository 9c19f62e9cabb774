#!/usr/bin/env bash
# ci/demo.sh: vswitch in one minute. Builds if needed (ci/setup.sh), starts vswitchd, and
# wires this built-in topology of network namespaces:
#
#   red1 10.99.10.1 --veth-- [af_packet red1] ==xconnect== [af_packet red2] --veth-- red2 10.99.10.2
#   blue1 10.99.20.1 -- [tap blue1 (moved into the namespace)] ==xconnect== [tap blue2] -- blue2 10.99.20.2
#   green1..green4 10.99.30.1-4 --veth-- [af_packet green1..4] == bridge br0 (MAC learning)
#
# then pings across both pairs, runs a short iperf3 over each, shows what vsctl shows
# (iface list, stats, workers, drops) and removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

if ((EUID != 0)); then
    echo "ci/demo.sh: run as root (sudo bash ci/demo.sh)" >&2
    exit 1
fi
step "set-up and build (ci/setup.sh)"
bash ci/setup.sh

# shellcheck source=ci/lib.sh
source ci/lib.sh
vs_test_init "demo"

step "start vswitchd (1 worker, adaptive polling, no hugepages)"
start_vswitchd
# Interactive users want `vsctl` without --socket: show them the line to paste.
log "try it yourself while this runs: $VSCTL_BIN --socket $VS_SOCK iface list"

step "red pair: two namespaces on veth pairs, host ends as af_packet interfaces"
red1=$(vs_ifname r1)
red2=$(vs_ifname r2)
hr1=$(vs_ifname hr1)
hr2=$(vs_ifname hr2)
vs_netns_add "$red1"
vs_netns_add "$red2"
vs_veth_to_ns "$hr1" "$red1" 10.99.10.1/24
vs_veth_to_ns "$hr2" "$red2" 10.99.10.2/24
vsctl iface add red1 af_packet iface="$hr1"
vsctl iface add red2 af_packet iface="$hr2"
vsctl xconnect add red1 red2

step "blue pair: two taps made by the switch, each moved into its namespace"
blue1=$(vs_ifname b1)
blue2=$(vs_ifname b2)
tb1=$(vs_ifname tb1)
tb2=$(vs_ifname tb2)
vs_netns_add "$blue1"
vs_netns_add "$blue2"
vsctl iface add blue1 tap iface="$tb1"
vsctl iface add blue2 tap iface="$tb2"
VS_LINKS+=("$tb1" "$tb2")
vsctl xconnect add blue1 blue2
wait_until 10 "tap $tb1" ip link show dev "$tb1"
wait_until 10 "tap $tb2" ip link show dev "$tb2"
ip link set dev "$tb1" netns "$blue1"
ip link set dev "$tb2" netns "$blue2"
vs_ns_iface_up "$blue1" "$tb1" 10.99.20.1/24
vs_ns_iface_up "$blue2" "$tb2" 10.99.20.2/24

step "green bridge: four namespaces on one bridge domain, MACs learned as they talk"
vsctl bridge add br0
for i in 1 2 3 4; do
    ns=$(vs_ifname g$i)
    host=$(vs_ifname hg$i)
    vs_netns_add "$ns"
    vs_veth_to_ns "$host" "$ns" "10.99.30.$i/24"
    vsctl iface add "green$i" af_packet iface="$host"
    vsctl bridge attach br0 "green$i"
done

step "vsctl iface list"
vsctl iface list
step "vsctl xconnect list"
vsctl xconnect list

step "ping across both pairs"
vs_ping "$red1" 10.99.10.2
vs_ping "$red2" 10.99.10.1
vs_ping "$blue1" 10.99.20.2
vs_ping "$blue2" 10.99.20.1

step "ping every pair on the green bridge"
for i in 1 2 3 4; do
    for j in 1 2 3 4; do
        ((i == j)) || vs_ping "$(vs_ifname g$i)" "10.99.30.$j"
    done
done
step "vsctl bridge show br0"
vsctl bridge show br0
step "vsctl fdb show br0 (each host's MAC on its own interface)"
vsctl fdb show br0

step "iperf3, 3 s over each pair"
vs_iperf "$red1" "$red2" 10.99.10.2 3
vs_iperf "$blue1" "$blue2" 10.99.20.2 3
vs_iperf "$(vs_ifname g1)" "$(vs_ifname g4)" 10.99.30.4 3

step "vsctl stats"
vsctl stats
step "vsctl workers"
vsctl workers
step "vsctl drops"
vsctl drops

step "stop vswitchd (SIGTERM) and clean up"
stop_vswitchd
log "done"
