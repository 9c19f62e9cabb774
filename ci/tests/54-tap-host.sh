#!/usr/bin/env bash
# Native taps, a pod's and the node's own (the host interface), with default offloads:
# - a tap made by the switch straight inside a pod's namespace (netns=), a veth pod
#   (af_packet) and a tap left in the host's namespace and addressed there (the host
#   interface: the node's own stack reaches its pods through it) share one bridge;
# - ping and TCP between all three, with the namespaces' offloads as they are;
# - vswitchd stops: the pod's tap stays (persistent), with its address; vswitchd starts on
#   the same state file, re-attaches, and the pod answers again through it;
# - `iface del` removes the tap for good.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "54-tap-host"
export VS_NS_OFFLOADS=default
start_vswitchd
run_ok "bridge" vsctl bridge add br >/dev/null

# The veth pod.
vs_host v 10.78.0.1/24
nsv=$VS_NS hv=$VS_HOSTIF
run_ok "add veth pod" vsctl iface add v af_packet iface="$hv" >/dev/null
# The tap pod: made by the switch in the pod's namespace.
nst=$(vs_ifname t)
tap=$(vs_ifname tap)
vs_netns_add "$nst"
run_ok "add tap pod (netns=)" vsctl iface add t tap iface="$tap" netns="/run/netns/$nst" >/dev/null
ip -n "$nst" link show dev "$tap" >/dev/null || fail "tap $tap is not in $nst"
ip link show dev "$tap" >/dev/null 2>&1 && fail "tap $tap is also in the host namespace"
vs_ns_iface_up "$nst" "$tap" 10.78.0.2/24
# The host interface: a tap in the host's own namespace, addressed there.
host=$(vs_ifname host)
run_ok "add host interface" vsctl iface add host tap iface="$host" >/dev/null
VS_LINKS+=("$host")
ip addr add 10.78.0.254/24 dev "$host"
ip link set dev "$host" up
for i in v t host; do run_ok "attach $i" vsctl bridge attach br "$i" >/dev/null; done

vs_ping "$nsv" 10.78.0.2
vs_ping "$nst" 10.78.0.1
wait_until 15 "the host reaches the veth pod" ping -c 1 -W 1 10.78.0.1
ping -c 3 -i 0.2 -W 2 10.78.0.2 >/dev/null || fail "the host cannot ping the tap pod"
log "the host reaches both pods through its interface"
vs_iperf "$nsv" "$nst" 10.78.0.2 2
# The host's own stack as TCP client (iperf3 from the root namespace) to the veth pod.
vs_iperf_start_server "$nsv" 10.78.0.1
timeout 40 iperf3 -c 10.78.0.1 -t 2 -J </dev/null >"$VS_TMP/host-iperf.json" 2>&1 ||
    fail "iperf3 host -> veth pod failed: $(tail -n 5 "$VS_TMP/host-iperf.json")"
log "iperf3 host -> veth pod: $(vs_json '"%.0f Mbit/s" % (d["end"]["sum_received"]["bits_per_second"] / 1e6)' <"$VS_TMP/host-iperf.json")"
vs_stop_pid "$VS_IPERF_SERVER_PID" TERM 10

# A restart: the taps stay (with their addresses) while vswitchd is down.
stop_vswitchd
ip -n "$nst" link show dev "$tap" >/dev/null || fail "the pod's tap went with vswitchd"
ip -n "$nst" -o addr show dev "$tap" | grep -q 10.78.0.2/24 || fail "the pod's tap lost its address"
ip link show dev "$host" >/dev/null || fail "the host interface went with vswitchd"
log "vswitchd down: the pod's tap and the host interface stay"
restart_vswitchd
vs_ping "$nst" 10.78.0.1
wait_until 15 "the host reaches the tap pod after the restart" ping -c 1 -W 1 10.78.0.2
log "after the restart the tap pod answers the veth pod and the host"

run_ok "delete the tap pod's interface" vsctl iface del t >/dev/null
wait_until 10 "the tap is removed from $nst" sh -c "! ip -n '$nst' link show dev '$tap' >/dev/null 2>&1"
run_ok "delete the host interface" vsctl iface del host >/dev/null
wait_until 10 "the host interface is removed" sh -c "! ip link show dev '$host' >/dev/null 2>&1"
stop_vswitchd
vs_pass
