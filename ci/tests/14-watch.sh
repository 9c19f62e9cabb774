#!/usr/bin/env bash
# vs-test: serial
# Watch, through an independent grpcio client (ci/grpc/watch.py): with a Watch stream open,
#   - every configuration change arrives as a ConfigEvent (change, name) in order, failed
#     calls send none, and a kinds=[config] watch gets the same and nothing else;
#   - one frame from a new host (two namespaces on af_packet members of a bridge): an
#     FdbEvent learned for its MAC within 100 ms of the frame (the figure is printed);
#     moved, within 100 ms too, when it shows up on the other port; aged after the
#     bridge's age;
#   - the veth peer down / up in its namespace: LinkEvent {iface, up} within 3 s;
#   - seq goes up by one, nothing lost.
# Serial (not run beside other tests): the learned / moved latencies are timings.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "14-watch"
vs_grpc_init

# Two namespaces, each with eth0 (no address: the test sends raw frames) whose veth peer
# stays in the host for the switch.
declare -A NS HOST
for h in a b; do
    NS[$h]=$(vs_ifname "w$h")
    HOST[$h]=${NS[$h]}h
    vs_netns_add "${NS[$h]}"
    ip link add "${HOST[$h]}" type veth peer name eth0 netns "${NS[$h]}" ||
        fail "cannot create veth ${HOST[$h]} <-> ${NS[$h]}/eth0"
    VS_LINKS+=("${HOST[$h]}")
    vs_host_link_quiet "${HOST[$h]}"
    ip -n "${NS[$h]}" link set eth0 up
done

start_vswitchd
grpc_py 120 watch.py --gen "$GEN" --target "unix:$VS_SOCK" \
    --ns-a "${NS[a]}" --host-a "${HOST[a]}" --ns-b "${NS[b]}" --host-b "${HOST[b]}" ||
    fail "Watch checks failed (see above)"

stop_vswitchd
vs_pass
