#!/usr/bin/env bash
# vs-test: serial
# (two busy-polling testpmds share CPU 0 with the pods; the switch's worker has CPU 1)
# DPDK pods through vswitch-cni: a dpdk-testpmd "pod" attached by memif and one attached by
# vhost-user (sockets made by the plugin under socketDir/<container id>/, the switch as
# server, as the results' socketPath say) and a veth pod, all on one bridge. Both testpmds
# answer ARP and ping (forward mode icmpecho): the veth pod pings each of them at the
# address IPAM gave its attachment, and the switch counts the packets both ways on their
# interfaces. DEL takes both sockets away.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "58-cni-dpdk-pods"
vs_cni_init
start_vswitchd
run_ok "bridge" vsctl bridge add br >/dev/null

# cni COMMAND ID IFNAME INTERFACE: the plugin as a runtime runs it; the result in $VS_TMP/ID.json.
cni() {
    local cmd=$1 id=$2 ifname=$3 type=$4 ns
    ns=$(vs_ifname "$id")
    [[ "$cmd" != ADD ]] || vs_netns_add "$ns"
    CNI_COMMAND=$cmd CNI_CONTAINERID=$id CNI_NETNS=/run/netns/$ns CNI_IFNAME=$ifname \
        CNI_PATH="$PLUGINS:/usr/lib/cni" timeout 60 "$PLUGINS/vswitch-cni" >"$VS_TMP/$id.json" <<EOF ||
{"cniVersion":"1.1.0","name":"dpdk","type":"vswitch-cni","bridge":"br","interface":"$type",
 "socket":"$VS_SOCK","socketDir":"$VS_TMP/sockets",
 "ipam":{"type":"host-local","subnet":"10.59.0.0/24","dataDir":"$VS_TMP/ipam"}}
EOF
        fail "$cmd $id ($type): $(cat "$VS_TMP/$id.json")"
}
result() { vs_json "$1" <"$VS_TMP/$2.json"; }

cni ADD vpod eth0 veth
cni ADD mpod net1 memif
cni ADD hpod net1 vhost-user
vethns=$(vs_ifname vpod)
mf_sock=$(result 'd["interfaces"][0]["socketPath"]' mpod)
vh_sock=$(result 'd["interfaces"][0]["socketPath"]' hpod)
mf_ip=$(result 'd["ips"][0]["address"].split("/")[0]' mpod)
vh_ip=$(result 'd["ips"][0]["address"].split("/")[0]' hpod)
assert_eq "$mf_sock" "$VS_TMP/sockets/mpod/net1.sock" "memif socketPath"
assert_eq "$vh_sock" "$VS_TMP/sockets/hpod/net1.sock" "vhost-user socketPath"
wait_until 10 "memif socket" test -S "$mf_sock"
wait_until 10 "vhost-user socket" test -S "$vh_sock"
mf=$(vsctl --json iface list | vs_json '[i["name"] for i in d if i["attachment"] and i["attachment"]["container_id"] == "mpod"][0]')
vh=$(vsctl --json iface list | vs_json '[i["name"] for i in d if i["attachment"] and i["attachment"]["container_id"] == "hpod"][0]')
log "memif pod: $mf at $mf_sock ($mf_ip); vhost-user pod: $vh at $vh_sock ($vh_ip)"

# The DPDK pods: testpmd answering ARP and ICMP echo on the sockets it was given. icmpecho
# answers ARP for any address, so each pod's MAC is fixed and the veth pod's neighbours are
# static: each ping goes to the pod it names.
mf_mac=02:00:00:00:58:01 vh_mac=02:00:00:00:58:02
start_testpmd memif 0 icmpecho "net_memif0,role=client,socket=$mf_sock,socket-abstract=no,id=0,mac=$mf_mac"
mf_pid=$TESTPMD_PID
start_testpmd vhost 0 icmpecho "net_virtio_user0,path=$vh_sock,mac=$vh_mac"
vh_pid=$TESTPMD_PID
# icmpecho also answers frames addressed to another MAC (it swaps the addresses): the
# bridge's entries for the two pods are static, so a flooded request never teaches it a
# pod's MAC behind the other pod's port.
run_ok "static MAC of the memif pod" vsctl fdb add br "$mf_mac" "$mf" >/dev/null
run_ok "static MAC of the vhost-user pod" vsctl fdb add br "$vh_mac" "$vh" >/dev/null
ip -n "$vethns" neigh replace "$mf_ip" lladdr "$mf_mac" dev eth0 nud permanent
ip -n "$vethns" neigh replace "$vh_ip" lladdr "$vh_mac" dev eth0 nud permanent
link_up() { vsctl --json stats "$1" | vs_json_true 'd["link_up"]'; }
wait_until 15 "memif $mf link up" link_up "$mf"
wait_until 15 "vhost-user $vh link up" link_up "$vh"

for p in "$mf $mf_ip" "$vh $vh_ip"; do
    read -r i ip <<<"$p"
    rx0=$(iface_stat "$i" rx_packets)
    vs_ping "$vethns" "$ip"
    # The echo requests went out of that pod's interface and its replies came in on it.
    stat_at_least "$i" tx_packets 6 || fail "$i sent fewer than 6 packets: $(vsctl stats "$i")"
    stat_at_least "$i" rx_packets $((rx0 + 6)) ||
        fail "$i received fewer than 6 replies: $(vsctl stats "$i")"
done
log "both DPDK pods answered the veth pod through the bridge (counted on $mf and $vh both ways)"
stop_testpmd "$mf_pid"
stop_testpmd "$vh_pid"

for p in "vpod eth0 veth" "mpod net1 memif" "hpod net1 vhost-user"; do
    # shellcheck disable=SC2086
    cni DEL $p
done
[[ ! -e "$VS_TMP/sockets/mpod" && ! -e "$VS_TMP/sockets/hpod" ]] ||
    fail "socket directories left after DEL: $(ls -R "$VS_TMP/sockets")"
assert_eq "$(vsctl --json iface list | vs_json 'len([i for i in d if i["attachment"]])')" 0 \
    "attachments after DEL"
vs_pass
