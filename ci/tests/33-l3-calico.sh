#!/usr/bin/env bash
# Calico's routed pod networking through the switch: each pod has a /32 address and
# `default via 169.254.1.1 dev eth0` (an address nobody has); the switch's side of each pod
# link has no address, proxy-ARP on (it answers for 169.254.1.1 and anything else) and a /32
# route to the pod. Pods reach each other and a routed subnet (a host at 10.33.9.2 behind
# an addressed interface), and the router resolves the pods itself (ARP from an interface
# without an address of its own).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "33-l3-calico"
start_vswitchd

# calico_pod SUFFIX IFACE IP: a pod namespace with IP/32 and the 169.254.1.1 default route;
# the switch's interface IFACE on its host end, proxy-ARP on, a /32 route to the pod.
calico_pod() {
    local suffix=$1 iface=$2 ip=$3
    vs_host "$suffix" ""
    ip -n "$VS_NS" addr add "$ip/32" dev eth0
    ip -n "$VS_NS" route add 169.254.1.1 dev eth0 scope link
    ip -n "$VS_NS" route add default via 169.254.1.1 dev eth0
    run_ok "pod interface $iface" vsctl iface add "$iface" af_packet iface="$VS_HOSTIF"
    run_ok "proxy-ARP on $iface" vsctl proxy-arp "$iface" on
    run_ok "/32 route to $ip" vsctl route add "$ip/32" dev "$iface"
}

calico_pod p1 pod1 10.33.0.5
P1=$VS_NS
calico_pod p2 pod2 10.33.0.6
P2=$VS_NS
vs_host r 10.33.9.2/24
R=$VS_NS
ip -n "$R" route add default via 10.33.9.1
run_ok "routed subnet's interface" vsctl iface add up0 af_packet iface="$VS_HOSTIF"
run_ok "its address" vsctl addr add up0 10.33.9.1/24

vs_ping "$P1" 10.33.0.6
vs_ping "$P2" 10.33.0.5
vs_ping "$P1" 10.33.9.2
vs_ping "$R" 10.33.0.6
mac=$(ip -n "$P1" neigh show 169.254.1.1 | grep -o 'lladdr [0-9a-f:]*' | cut -d' ' -f2)
want=$(vsctl --json iface list | vs_json '[i["mac"] for i in d if i["name"] == "pod1"][0]')
assert_eq "$mac" "$want" "pod1 resolved 169.254.1.1 to the switch's pod1 MAC (proxy-ARP)"
log "169.254.1.1 answered by proxy-ARP with $mac"

vs_pass
