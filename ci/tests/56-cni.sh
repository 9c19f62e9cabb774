#!/usr/bin/env bash
# vswitch-cni driven as a runtime drives it (CNI_* environment, config on stdin), with the
# standard host-local IPAM plugin, against a running vswitchd:
# - VERSION; ADD at 0.4.0, 1.0.0 and 1.1.0 (veth), tap, memif and vhost-user; results
#   checked field by field against what was made (names, MACs, sandbox, addresses, gateway,
#   routes, socketPath, the device-info file); the attachments shown by `vsctl iface show`;
# - the pods ping each other and the host interface, TCP with default offloads;
# - first in a chain: the standard tuning plugin takes the result as prevResult, changes
#   the interface it names and passes the result on;
# - two networks per pod (as Multus makes them): net1 on a dual-stack network beside eth0,
#   IPv4 and IPv6 pings over it, each DEL taking only its own;
# - CHECK passes, and fails once the pod's address is gone;
# - a vswitchd restart between ADD and DEL: the pods keep interfaces and connectivity;
# - the host interface: bridge mode gives it the pods' gateway address, routed mode the
#   node's route to each pod (hostInterface); MACs asked for by CNI_ARGS and runtimeConfig;
# - routed mode: two /32 pods reach each other and a routed subnet through 169.254.1.1;
# - 20 ADDs at once, then 20 DELs at once; GC with a list omitting two of five removes
#   exactly those two and their leases; DEL is idempotent (twice, unknown container,
#   missing netns);
# - STATUS: 0, 51 without vswitchd, 50 at the interface limit;
# - bad input (malformed JSON, unknown interface type or mode, missing bridge, unsupported
#   cniVersion, missing IPAM plugin, a CNI_NETNS that does not exist, a refused MTU): the
#   spec's error JSON with its code, and nothing left behind (no switch interface, no
#   veth, no lease, no socket directory).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "56-cni"
vs_cni_init
IPAM_DIR=$VS_TMP/ipam
SOCKDIR=$VS_TMP/sockets
VS_WORKERS=2
start_vswitchd
run_ok "bridge" vsctl bridge add br >/dev/null
# The host interface: the node reaches its pods through it, at the pods' gateway address.
host=$(vs_ifname host)
run_ok "host interface" vsctl iface add host tap iface="$host" >/dev/null
VS_LINKS+=("$host")
vs_host_link_quiet "$host"
run_ok "attach host" vsctl bridge attach br host >/dev/null

# conf VERSION [KEY=JSON ...]: the network config, with keys replaced or added.
conf() {
    local version=$1
    shift
    "$VS_PY" - "$version" "$VS_SOCK" "$IPAM_DIR" "$SOCKDIR" "$host" "$@" <<'PYEOF'
import json, sys
version, sock, ipam_dir, sockdir, host = sys.argv[1:6]
c = {"cniVersion": version, "name": "pods", "type": "vswitch-cni", "bridge": "br",
     "socket": sock, "socketDir": sockdir, "hostInterface": host,
     "ipam": {"type": "host-local", "subnet": "10.56.0.0/24", "gateway": "10.56.0.1",
              "dataDir": ipam_dir, "routes": [{"dst": "0.0.0.0/0"}]}}
for kv in sys.argv[6:]:
    k, v = kv.split("=", 1)
    c[k] = json.loads(v)
    if c[k] is None:
        del c[k]
print(json.dumps(c))
PYEOF
}

# cni COMMAND ID NETNS IFNAME CONFIG: runs the plugin as a runtime does; its stdout in
# $VS_TMP/out, its exit code in CNI_RC. CNI_EXTRA_ARGS: more CNI_ARGS (K=V;...).
CNI_RC=0
cni() {
    local cmd=$1 id=$2 ns=$3 ifname=$4 config=$5
    CNI_RC=0
    CNI_COMMAND=$cmd CNI_CONTAINERID=$id CNI_NETNS=$ns CNI_IFNAME=$ifname \
        CNI_PATH="$PLUGINS:/usr/lib/cni" CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=$id${CNI_EXTRA_ARGS:+;$CNI_EXTRA_ARGS}" \
        timeout 60 "$PLUGINS/vswitch-cni" <<<"$config" >"$VS_TMP/out" 2>"$VS_TMP/err" ||
        CNI_RC=$?
}
cni_ok() {
    cni "$@"
    ((CNI_RC == 0)) || {
        cat "$VS_TMP/out" "$VS_TMP/err" >&2
        fail "$1 $2 failed with exit $CNI_RC"
    }
}
# cni_err CODE TEXT COMMAND ...: the call fails with the spec's error JSON, code CODE,
# a message containing TEXT.
cni_err() {
    local code=$1 text=$2
    shift 2
    cni "$@"
    ((CNI_RC != 0)) || fail "$1 $2 succeeded; expected error $code ($text)"
    vs_json_true 'd["code"] == code and text in d["msg"] and set(d) <= {"cniVersion", "code", "msg", "details"}' \
        code:="$code" text="$text" <"$VS_TMP/out" || {
        cat "$VS_TMP/out" >&2
        fail "$1 $2: expected error code $code with '$text'"
    }
    log "$1 $2: error $code ($(vs_json 'd["msg"]' <"$VS_TMP/out"))"
}

# attached: the switch interfaces carrying an attachment, "container/ifname" each.
attached() {
    vsctl --json iface list |
        vs_json '" ".join(sorted(i["attachment"]["container_id"] + "/" + i["attachment"]["ifname"] for i in d if i["attachment"]))'
}
leases() { find "$IPAM_DIR/pods" -maxdepth 1 -name '10.*' -printf '%f\n' 2>/dev/null | sort | tr '\n' ' '; }
# HOSTS: the host veth ends ADD results named (other tests' pods may run beside these).
HOSTS=()
hosts_from() {
    local h
    h=$(vs_json '" ".join(i["name"] for i in d["interfaces"] if "sandbox" not in i and "socketPath" not in i)' <"$1")
    [[ -z "$h" ]] || HOSTS+=("$h")
}
vs_links() {
    local h n=0
    for h in $(printf '%s\n' "${HOSTS[@]}" | sort -u); do
        ! ip link show dev "$h" >/dev/null 2>&1 || n=$((n + 1))
    done
    echo "$n"
}
# nothing_left: no attachment in the switch, no veth, no lease, no socket directory.
nothing_left() {
    assert_eq "$(attached)" "" "attachments left in the switch"
    assert_eq "$(vs_links)" 0 "host veth ends left"
    assert_eq "$(leases)" "" "leases left"
    assert_eq "$(find "$SOCKDIR" -mindepth 1 -not -path "$SOCKDIR/.ipam-versions*" 2>/dev/null | wc -l)" 0 \
        "socket directories left"
}

# --- VERSION
cni_ok VERSION x "" "" '{"cniVersion":"1.0.0"}'
vs_json_true 'd["supportedVersions"] == ["0.4.0", "1.0.0", "1.1.0"] and d["cniVersion"] == "1.1.0"' \
    <"$VS_TMP/out" || fail "VERSION: $(cat "$VS_TMP/out")"
"$CNI_BIN" --version | grep -q '^vswitch-cni ' || fail "--version"
"$CNI_BIN" --help | grep -q 'CNI_COMMAND' || fail "--help"

# --- ADD, veth, in each version: results checked against the pod as made.
declare -A NS
n=0
for v in 0.4.0 1.0.0 1.1.0; do
    n=$((n + 1))
    id=pod$n
    NS[$id]=$(vs_ifname "p$n")
    ip netns add "${NS[$id]}"
    VS_NETNS+=("${NS[$id]}")
    case $v in
        # The MAC a runtime asks for: podman's --mac-address (CNI_ARGS), the "mac" capability.
        1.0.0) CNI_EXTRA_ARGS="MAC=02:56:00:00:00:02" cni_ok ADD "$id" "/run/netns/${NS[$id]}" eth0 "$(conf "$v" mtu=1400)" ;;
        1.1.0) cni_ok ADD "$id" "/run/netns/${NS[$id]}" eth0 "$(conf "$v" mtu=1400 runtimeConfig='{"mac":"02:56:00:00:00:03"}')" ;;
        *) cni_ok ADD "$id" "/run/netns/${NS[$id]}" eth0 "$(conf "$v" mtu=1400)" ;;
    esac
    cp "$VS_TMP/out" "$VS_TMP/result-$id.json"
    hosts_from "$VS_TMP/out"
    ns=${NS[$id]}
    podmac=$(ip -n "$ns" -j link show dev eth0 | vs_json 'd[0]["address"]')
    podmtu=$(ip -n "$ns" -j link show dev eth0 | vs_json 'd[0]["mtu"]')
    podaddr=$(ip -n "$ns" -j addr show dev eth0 | vs_json '[a["local"] + "/" + str(a["prefixlen"]) for a in d[0]["addr_info"] if a["family"] == "inet"][0]')
    hostname=$(vsctl --json iface list |
        vs_json '[i["name"] for i in d if i["attachment"] and i["attachment"]["container_id"] == id][0]' id="$id")
    hostmac=$(ip -j link show dev "$hostname" | vs_json 'd[0]["address"]')
    assert_eq "$podmtu" 1400 "pod MTU"
    case $v in
        1.0.0) assert_eq "$podmac" 02:56:00:00:00:02 "pod MAC from CNI_ARGS" ;;
        1.1.0) assert_eq "$podmac" 02:56:00:00:00:03 "pod MAC from runtimeConfig" ;;
    esac
    ip -n "$ns" route show default | grep -q 'via 10.56.0.1 dev eth0' || fail "$id: no default route via 10.56.0.1"
    vs_json_true '(
d["cniVersion"] == v
and [i["name"] for i in d["interfaces"]] == [host, "eth0"]
and d["interfaces"][0]["mac"] == hostmac and "sandbox" not in d["interfaces"][0]
and d["interfaces"][1]["mac"] == podmac
and d["interfaces"][1]["sandbox"] == "/run/netns/" + ns
and (d["interfaces"][1].get("mtu") == 1400 if v == "1.1.0" else "mtu" not in d["interfaces"][1])
and len(d["ips"]) == 1 and d["ips"][0]["address"] == podaddr
and d["ips"][0]["gateway"] == "10.56.0.1" and d["ips"][0]["interface"] == 1
and (d["ips"][0].get("version") == "4" if v == "0.4.0" else "version" not in d["ips"][0])
and d["routes"] == [{"dst": "0.0.0.0/0"}] and "dns" in d)' \
        v="$v" host="$hostname" hostmac="$hostmac" podmac="$podmac" ns="$ns" podaddr="$podaddr" \
        <"$VS_TMP/out" || {
        cat "$VS_TMP/out" >&2
        fail "ADD $v: result does not match the pod ($hostname $hostmac, $podmac, $podaddr)"
    }
    vsctl iface show "$hostname" | grep -q "^attachment: container=$id ifname=eth0 netns=/run/netns/$ns network=pods$" ||
        fail "iface show $hostname lacks the attachment"
    log "ADD $v: $id -> $hostname, eth0 $podaddr $podmac (result checked field by field)"
done
pod_ip() { ip -n "${NS[$1]}" -j addr show dev eth0 | vs_json '[a["local"] for a in d[0]["addr_info"] if a["family"] == "inet"][0]'; }
vs_ping "${NS[pod1]}" "$(pod_ip pod2)"
vs_ping "${NS[pod3]}" "$(pod_ip pod1)"
# The host interface got the pods' gateway address from the plugin (hostInterface).
ip -br addr show dev "$host" | grep -q ' 10.56.0.1/24' || fail "hostInterface $host lacks 10.56.0.1/24: $(ip -br addr show dev "$host")"
wait_until 15 "host reaches pod2" ping -c 1 -W 1 "$(pod_ip pod2)"
log "host -> pod2 $(pod_ip pod2): reply"
# TCP with the pods' default offloads (TSO, partial checksums).
vs_iperf "${NS[pod1]}" "${NS[pod2]}" "$(pod_ip pod2)" 2

# --- First in a chain: the standard tuning plugin takes this plugin's result as its
# prevResult and changes the pod's interface it names (MTU and a sysctl).
cat >"$VS_TMP/tuning.json" <<EOF
{"cniVersion":"1.0.0","name":"pods","type":"tuning","mtu":1300,
 "sysctl":{"net.ipv4.conf.eth0.arp_announce":"2"},
 "prevResult":$(cat "$VS_TMP/result-pod2.json")}
EOF
CNI_COMMAND=ADD CNI_CONTAINERID=pod2 CNI_NETNS=/run/netns/${NS[pod2]} CNI_IFNAME=eth0 \
    CNI_PATH=/usr/lib/cni /usr/lib/cni/tuning <"$VS_TMP/tuning.json" >"$VS_TMP/tuned.json" ||
    fail "tuning chained after vswitch-cni failed: $(cat "$VS_TMP/tuned.json")"
assert_eq "$(ip -n "${NS[pod2]}" -j link show dev eth0 | vs_json 'd[0]["mtu"]')" 1300 "MTU set by tuning"
assert_eq "$(ip netns exec "${NS[pod2]}" sysctl -n net.ipv4.conf.eth0.arp_announce)" 2 "sysctl set by tuning"
vs_json_true 'd["ips"] == p["ips"] and d["interfaces"] == p["interfaces"]' p:="$(cat "$VS_TMP/result-pod2.json")" \
    <"$VS_TMP/tuned.json" || fail "tuning did not pass the result on: $(cat "$VS_TMP/tuned.json")"
ip -n "${NS[pod2]}" link set eth0 mtu 1400
log "chain: tuning used this plugin's result (MTU 1300, sysctl) and passed it on"

# --- Several networks per pod, as a meta plugin (Multus) makes them: pod1 and pod2 also
# get net1 on a second, dual-stack network (IPv4 and IPv6 from host-local).
dual() {
    conf 1.0.0 name='"pods-b"' hostInterface=null ipam='{"type":"host-local","dataDir":"'"$IPAM_DIR"'",
        "ranges":[[{"subnet":"10.60.0.0/24"}],[{"subnet":"fd56::/64"}]]}'
}
for id in pod1 pod2; do
    cni_ok ADD "$id" "/run/netns/${NS[$id]}" net1 "$(dual)"
    hosts_from "$VS_TMP/out"
    vs_json_true '(len(d["ips"]) == 2 and d["ips"][1]["address"].startswith("fd56::")
        and all(i["interface"] == 1 for i in d["ips"]))' <"$VS_TMP/out" ||
        fail "dual-stack result: $(cat "$VS_TMP/out")"
done
v6=$(ip -n "${NS[pod2]}" -j addr show dev net1 | vs_json '[a["local"] for a in d[0]["addr_info"] if a["family"] == "inet6" and a["local"].startswith("fd56")][0]')
wait_until 15 "pod1 -> pod2 over IPv6 on net1" ip netns exec "${NS[pod1]}" ping -6 -c 1 -W 1 "$v6"
ip netns exec "${NS[pod1]}" ping -c 1 -W 2 -I net1 \
    "$(ip -n "${NS[pod2]}" -j addr show dev net1 | vs_json '[a["local"] for a in d[0]["addr_info"] if a["family"] == "inet"][0]')" >/dev/null ||
    fail "pod1 -> pod2 over IPv4 on net1"
assert_eq "$(attached)" "pod1/eth0 pod1/net1 pod2/eth0 pod2/net1 pod3/eth0" "attachments with two networks"
for id in pod1 pod2; do cni_ok DEL "$id" "/run/netns/${NS[$id]}" net1 "$(dual)"; done
log "two networks per pod: net1 dual-stack (IPv4 and IPv6 pings), each DEL takes its own"

# --- CHECK: passes as made; fails once the address is gone.
prev=$(cat "$VS_TMP/result-pod2.json")
cni_ok CHECK pod2 "/run/netns/${NS[pod2]}" eth0 "$(conf 1.0.0 mtu=1400 prevResult="$prev")"
cni_err 7 "prevResult" CHECK pod2 "/run/netns/${NS[pod2]}" eth0 "$(conf 1.0.0 mtu=1400)"
ip -n "${NS[pod2]}" addr flush dev eth0
cni CHECK pod2 "/run/netns/${NS[pod2]}" eth0 "$(conf 1.0.0 mtu=1400 prevResult="$prev")"
((CNI_RC != 0)) || fail "CHECK passed with the pod's address gone"
grep -q 'lacks its address' "$VS_TMP/out" || fail "CHECK: $(cat "$VS_TMP/out")"
log "CHECK: passes as made, fails without the address"
ip -n "${NS[pod2]}" addr add "$(vs_json 'd["ips"][0]["address"]' <<<"$prev")" dev eth0

# --- tap, memif, vhost-user.
NS[tap1]=$(vs_ifname ptap)
ip netns add "${NS[tap1]}"
VS_NETNS+=("${NS[tap1]}")
cni_ok ADD tap1 "/run/netns/${NS[tap1]}" eth0 "$(conf 1.1.0 interface='"tap"')"
vs_json_true '([i["name"] for i in d["interfaces"]] == ["eth0"] and d["ips"][0]["interface"] == 0
and d["interfaces"][0]["sandbox"] == sb)' sb="/run/netns/${NS[tap1]}" <"$VS_TMP/out" ||
    fail "tap ADD result: $(cat "$VS_TMP/out")"
ip -n "${NS[tap1]}" -d link show dev eth0 | grep -q 'tun type tap' || fail "eth0 in the tap pod is no tap"
vs_ping "${NS[tap1]}" "$(pod_ip pod1)"
for t in memif vhost-user; do
    info=$VS_TMP/devinfo-$t.json
    cni_ok ADD "dpdk-$t" "/run/netns/${NS[pod1]}" net1 \
        "$(conf 1.1.0 interface="\"$t\"" runtimeConfig="{\"CNIDeviceInfoFile\":\"$info\"}")"
    sock=$SOCKDIR/dpdk-$t/net1.sock
    vs_json_true 'd["interfaces"] == [{"name": "net1", "socketPath": sock}] and d["ips"][0]["interface"] == 0' \
        sock="$sock" <"$VS_TMP/out" || fail "$t ADD result: $(cat "$VS_TMP/out")"
    wait_until 10 "$t socket $sock" test -S "$sock"
    vs_json_true 'd["type"] == t and d["version"] == "1.1.0" and d[t]["path"] == sock' t="$t" sock="$sock" <"$info" ||
        fail "device-info file: $(cat "$info")"
    log "ADD $t: socket $sock, device-info file written"
done

# --- vswitchd restarts between ADD and DEL: the pods keep interfaces and connectivity.
stop_vswitchd
restart_vswitchd
assert_eq "$(attached)" "dpdk-memif/net1 dpdk-vhost-user/net1 pod1/eth0 pod2/eth0 pod3/eth0 tap1/eth0" \
    "attachments after a restart"
vs_ping "${NS[pod1]}" "$(pod_ip pod2)"
vs_ping "${NS[tap1]}" "$(pod_ip pod3)"

# --- DEL: everything goes; again, and for unknown containers and gone namespaces: success.
cni_ok DEL pod1 "/run/netns/${NS[pod1]}" eth0 "$(conf 0.4.0)"
cni_ok DEL pod1 "/run/netns/${NS[pod1]}" eth0 "$(conf 0.4.0)"
ip netns del "${NS[pod3]}"
cni_ok DEL pod3 "/run/netns/${NS[pod3]}" eth0 "$(conf 1.1.0)"
cni_ok DEL nosuchpod "" eth0 "$(conf 1.1.0)"
for id in pod2 tap1; do cni_ok DEL "$id" "/run/netns/${NS[$id]}" eth0 "$(conf 1.0.0)"; done
for t in memif vhost-user; do cni_ok DEL "dpdk-$t" "/run/netns/${NS[pod1]}" net1 "$(conf 1.1.0 interface="\"$t\"")"; done
ip -n "${NS[tap1]}" link show dev eth0 >/dev/null 2>&1 && fail "the tap outlived its DEL"
nothing_left
log "DEL: nothing left (switch, veths, leases, sockets); repeated and unknown DELs succeed"

# --- 20 ADDs at once, then 20 DELs at once.
for i in $(seq 1 20); do
    ip netns add "$(vs_ifname "c$i")"
    VS_NETNS+=("$(vs_ifname "c$i")")
done
c10=$(conf 1.0.0)
# all_at_once COMMAND: the command for containers c1..c20 at once; each one's output in
# $VS_TMP/<command>N; any failure fails the test.
all_at_once() {
    local cmd=$1 i pids=()
    for i in $(seq 1 20); do
        (
            CNI_COMMAND=$cmd CNI_CONTAINERID=c$i CNI_NETNS=/run/netns/$(vs_ifname "c$i") CNI_IFNAME=eth0 \
                CNI_PATH="$PLUGINS:/usr/lib/cni" "$PLUGINS/vswitch-cni" <<<"$c10" >"$VS_TMP/$cmd$i" 2>&1
        ) &
        pids+=($!)
    done
    for i in "${!pids[@]}"; do
        wait "${pids[i]}" || fail "concurrent $cmd c$((i + 1)): $(cat "$VS_TMP/$cmd$((i + 1))")"
    done
}
all_at_once ADD
for i in $(seq 1 20); do hosts_from "$VS_TMP/ADD$i"; done
assert_eq "$(attached | wc -w)" 20 "attachments after 20 concurrent ADDs"
assert_eq "$(leases | wc -w)" 20 "leases after 20 concurrent ADDs"
vs_ping "$(vs_ifname c1)" "$(ip -n "$(vs_ifname c20)" -j addr show dev eth0 | vs_json '[a["local"] for a in d[0]["addr_info"] if a["family"] == "inet"][0]')"
all_at_once DEL
nothing_left
log "20 concurrent ADDs, then 20 concurrent DELs: all succeeded, nothing left"

# --- GC: five attachments, a list that omits two.
for i in 1 2 3 4 5; do
    cni_ok ADD "c$i" "/run/netns/$(vs_ifname "c$i")" eth0 "$c10"
    hosts_from "$VS_TMP/out"
done
keep='[{"containerID":"c1","ifname":"eth0"},{"containerID":"c3","ifname":"eth0"}]'
cni_ok GC "" "" "" "$(conf 1.1.0 "cni.dev/valid-attachments=$keep" 'cni.dev/attachments=[{"containerID":"c5","ifname":"eth0"}]')"
assert_eq "$(attached)" "c1/eth0 c3/eth0 c5/eth0" "attachments after GC"
assert_eq "$(leases | wc -w)" 3 "leases after GC"
assert_eq "$(vs_links)" 3 "host veth ends after GC"
log "GC: c2 and c4 removed with their leases; c1, c3, c5 kept"
for i in 1 3 5; do cni_ok DEL "c$i" "/run/netns/$(vs_ifname "c$i")" eth0 "$c10"; done
nothing_left

# --- Routed mode: /32 pods through 169.254.1.1, and a routed subnet.
# The node reaches routed pods through its own interface (hostr: a tap of the switch in
# the host namespace, proxy-ARP on in the switch, the node's address routed to it): the
# plugin adds the node's route to each pod (hostInterface) and takes it away on DEL.
hostr=$(vs_ifname hostr)
run_ok "routed host interface" vsctl iface add hostr tap iface="$hostr" >/dev/null
VS_LINKS+=("$hostr")
vs_host_link_quiet "$hostr"
ip addr add 10.57.255.1/32 dev "$hostr"
run_ok "proxy-arp hostr" vsctl proxy-arp hostr on >/dev/null
run_ok "route to the node" vsctl route add 10.57.255.1/32 dev hostr >/dev/null
routed() { conf 1.0.0 mode='"routed"' bridge=null hostInterface="\"$hostr\"" ipam='{"type":"host-local","subnet":"10.57.0.0/24","dataDir":"'"$IPAM_DIR"'","routes":[{"dst":"0.0.0.0/0"}]}'; }
vs_host up 10.58.0.1/24
run_ok "uplink" vsctl iface add up af_packet iface="$VS_HOSTIF" >/dev/null
run_ok "uplink address" vsctl addr add up 10.58.0.254/24 >/dev/null
ip -n "$VS_NS" route add 10.57.0.0/24 via 10.58.0.254
upns=$VS_NS
for i in 1 2; do
    cni_ok ADD "r$i" "/run/netns/$(vs_ifname "c$i")" eth0 "$(routed)"
    hosts_from "$VS_TMP/out"
done
vs_json_true 'd["ips"][0]["address"].endswith("/32") and d["ips"][0]["gateway"] == "169.254.1.1"' <"$VS_TMP/out" ||
    fail "routed result: $(cat "$VS_TMP/out")"
r1=$(ip -n "$(vs_ifname c1)" -j addr show dev eth0 | vs_json '[a["local"] + "/" + str(a["prefixlen"]) for a in d[0]["addr_info"] if a["family"] == "inet"][0]')
r2=$(ip -n "$(vs_ifname c2)" -j addr show dev eth0 | vs_json '[a["local"] for a in d[0]["addr_info"] if a["family"] == "inet"][0]')
[[ "$r1" == */32 ]] || fail "routed pod address $r1 is not a /32"
ip -n "$(vs_ifname c1)" route show default | grep -q 'via 169.254.1.1 dev eth0' || fail "routed pod: no default via 169.254.1.1"
vs_ping "$(vs_ifname c1)" "$r2"
vs_ping "$(vs_ifname c2)" 10.58.0.1
vs_ping "$upns" "${r1%/32}"
ip route show "${r1%/32}" | grep -q "dev $hostr" || fail "no node route to ${r1%/32} via $hostr: $(ip route show "${r1%/32}")"
wait_until 15 "the node reaches routed pod ${r1%/32}" ping -c 1 -W 1 "${r1%/32}"
log "the node reaches the routed pod through $hostr (route added by the plugin)"
for i in 1 2; do cni_ok DEL "r$i" "/run/netns/$(vs_ifname "c$i")" eth0 "$(routed)"; done
[[ -z "$(ip route show "${r1%/32}")" ]] || fail "the node's route to ${r1%/32} outlived DEL"
nothing_left
vsctl --json route show | vs_json_true 'not any(r["prefix"].startswith("10.57.0.") for r in d)' ||
    fail "routed pods' routes left in the switch"
log "routed mode: /32 pods reach each other and 10.58.0.0/24 through 169.254.1.1; DEL removes their routes"

# --- Bad input: the spec's error, nothing left behind.
ns1=/run/netns/$(vs_ifname c1)
cni_err 6 "not valid JSON" ADD bad "$ns1" eth0 '{"cniVersion": "1.0.0",'
cni_err 2 'interface "macvlan"' ADD bad "$ns1" eth0 "$(conf 1.0.0 interface='"macvlan"')"
cni_err 2 'mode "l3"' ADD bad "$ns1" eth0 "$(conf 1.0.0 mode='"l3"')"
cni_err 7 'bridge "nosuchbr" does not exist' ADD bad "$ns1" eth0 "$(conf 1.0.0 bridge='"nosuchbr"')"
cni_err 1 "0.3.1" ADD bad "$ns1" eth0 "$(conf 0.3.1)"
cni_err 7 'IPAM plugin "nosuchipam"' ADD bad "$ns1" eth0 "$(conf 1.0.0 ipam='{"type":"nosuchipam"}')"
cni_err 3 "CNI_NETNS" ADD bad /run/netns/nosuchns-$$ eth0 "$(conf 1.0.0)"
cni_err 4 "CNI_IFNAME" ADD bad "$ns1" "eth0/x" "$(conf 1.0.0)"
cni_err 4 "CNI_COMMAND" FOO bad "$ns1" eth0 "$(conf 1.0.0)"
# Refused by the switch after the veth and the lease were made: both undone.
cni_err 7 "vswitchd refused" ADD bad "$ns1" eth0 "$(conf 1.0.0 mtu=65000)"
ip -n "$(vs_ifname c1)" link show dev eth0 >/dev/null 2>&1 && fail "failed ADD left eth0 in the pod"
nothing_left
log "bad input: each refused with its code; nothing left behind"

# --- STATUS: 0; 50 at the interface limit; 51 without vswitchd.
cni_ok STATUS "" "" "" "$(conf 1.1.0)"
stop_vswitchd
cni_err 51 "does not answer" STATUS "" "" "" "$(conf 1.1.0)"
VSWITCHD_EXTRA=(--max-interfaces 2)
restart_vswitchd
cni_err 50 "limit of 2 interfaces" STATUS "" "" "" "$(conf 1.1.0)"
vs_pass
