#!/usr/bin/env bash
# vswitch-cni driven by a real CNI runtime: podman 4.3 (Debian 12, CNI backend, libcni at
# spec 1.0.0) runs two busybox containers on a network whose only plugin is vswitch-cni:
# - everything podman uses is private to the test (CONTAINERS_CONF with the CNI backend, a
#   conflist directory, the plugin directory, image storage, host-local's dataDir), so
#   nothing is written to /etc/cni/net.d or to the machine's podman store;
# - each container has eth0 with an address of the subnet and a default route via the
#   gateway, which is the node's own interface on the bridge (a tap in the test's
#   namespace): the containers ping each other, TCP (HTTP, 1 MiB) works between them with
#   the offloads a runtime leaves, and the node pings both and fetches the file too;
# - the switch records each attachment (the container's full id, eth0, podman's
#   /run/netns path, the network);
# - `podman rm` (CNI DEL) removes the switch interfaces, the veth pairs and the leases.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "57-cni-podman"

CNI_BIN=$VS_BIN_DIR/vswitch-cni
command -v podman >/dev/null ||
    fail "podman missing (ci/setup.sh installs podman runc containernetworking-plugins busybox-static)"
command -v runc >/dev/null || fail "runc missing (ci/setup.sh installs it)"
[[ -x /usr/lib/cni/host-local ]] ||
    fail "/usr/lib/cni/host-local missing (ci/setup.sh installs containernetworking-plugins)"
if ! [[ -x /bin/busybox ]] || ! /bin/busybox --list | grep -x httpd >/dev/null; then
    fail "/bin/busybox missing or without httpd (ci/setup.sh installs busybox-static)"
fi
[[ -x "$CNI_BIN" ]] || fail "$CNI_BIN missing: run 'bash ci/setup.sh' first"

SUBNET=10.88.57.0/24 GW=10.88.57.1
NET=${VS_TAG}net
IMAGE=localhost/vs-busybox:latest
C1=${VS_TAG}-a C2=${VS_TAG}-b

# Private podman: config, conflist dir, plugin dir, IPAM data, storage (vfs: plain
# directories, nothing to unmount but the containers' /dev/shm, which `podman rm` does).
PODDIR=$VS_TMP/podman
mkdir -p "$PODDIR"/{net.d,bin,ipam,storage,runroot,tmp}
ln -s "$CNI_BIN" "$PODDIR/bin/vswitch-cni"
cat >"$PODDIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[network]
network_backend = "cni"
network_config_dir = "$PODDIR/net.d"
cni_plugin_dirs = ["$PODDIR/bin", "/usr/lib/cni"]
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
tmp_dir = "$PODDIR/tmp"
EOF
cat >"$PODDIR/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$PODDIR/storage"
runroot = "$PODDIR/runroot"
EOF
# CONTAINERS_CONF: podman reads its built-in defaults and this file only; conmon inherits
# both variables, so the exit clean-up of a container uses the same private set-up.
export CONTAINERS_CONF=$PODDIR/containers.conf
export CONTAINERS_STORAGE_CONF=$PODDIR/storage.conf
PODMAN=(timeout 60 podman --cgroup-manager=cgroupfs --runtime runc)

# runc needs the cgroup file systems. ci/runner.sh runs the test under `ip netns exec`,
# which gives it a mount namespace of its own with a fresh /sys (for the new network
# namespace) and so without /sys/fs/cgroup. The runner's cgroup mounts are then made
# again here, as they are there (same hierarchies, same places, same links); this mount
# namespace is the test's alone, so they go with it.
vs_cgroups() {
    local src=/proc/1 mp fstype opts l
    grep -Eq ' - cgroup2? ' /proc/self/mountinfo && return 0
    if [[ "${VS_INIT_NETNS:-}" =~ ^/proc/([0-9]+)/ ]]; then src=/proc/${BASH_REMATCH[1]}; fi
    while read -r mp fstype opts; do
        mkdir -p "$mp"
        case $fstype in
            tmpfs) mount -t tmpfs -o "$opts" tmpfs "$mp" ;;
            cgroup | cgroup2) mount -t "$fstype" -o "$opts" "$fstype" "$mp" ;;
            *) continue ;;
        esac || fail "cannot mount $fstype ($opts) on $mp for runc"
    done < <(awk '{ for (i = 7; i < NF; i++) if ($i == "-") { print $5, $(i + 1), $(i + 3); break } }' \
        "$src/mountinfo" | awk '$1 ~ "^/sys/fs/cgroup(/|$)"' | sort)
    for l in "$src"/root/sys/fs/cgroup/*; do
        if [[ -L "$l" ]]; then ln -sfn "$(readlink "$l")" "/sys/fs/cgroup/${l##*/}"; fi
    done
    grep -Eq ' - cgroup2? ' /proc/self/mountinfo || fail "no cgroup file system for runc (none in $src)"
    log "cgroup file systems mounted in the test's mount namespace (as in $src)"
}
vs_cgroups
pm() { "${PODMAN[@]}" "$@"; }

# On exit (pass or fail), while vswitchd still runs: the containers go (CNI DEL), then
# every file podman made for this test. The store is the test's own, so `rm -a` takes
# exactly this test's containers (also when only one was made); one that podman could not
# remove is stopped through runc by its id, so that nothing runs on from a deleted store.
pod_cleanup() {
    local m id left
    pm rm -a -f -t 0 >/dev/null 2>&1
    left=$(pm ps -a -q --no-trunc 2>/dev/null)
    if [[ -n "$left" ]]; then
        log "podman rm left containers: ${left//$'\n'/ }; stopping them through runc"
        for id in $left; do
            runc delete -f "$id" 2>/dev/null # SIGKILL, then its state goes
        done
        pm rm -a -f -t 0 >/dev/null 2>&1
    fi
    # Nothing should be mounted under PODDIR any more; a failed run may leave a /dev/shm.
    awk -v d="$PODDIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m"; done
    rm -rf "$PODDIR"
}
VS_ON_EXIT+=("pod_cleanup")

start_vswitchd
run_ok "bridge" vsctl bridge add br >/dev/null
# The node's own interface on the bridge, at the pods' gateway address.
host=$(vs_ifname host)
run_ok "add host interface" vsctl iface add host tap iface="$host" >/dev/null
VS_LINKS+=("$host")
wait_until 10 "tap $host in the test's namespace" ip link show dev "$host"
sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
ip addr add "$GW/24" dev "$host"
ip link set dev "$host" up
run_ok "attach host" vsctl bridge attach br host >/dev/null

# The conflist: vswitch-cni alone, at libcni's highest version.
cat >"$PODDIR/net.d/$NET.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "$NET",
  "plugins": [
    {
      "type": "vswitch-cni",
      "mode": "bridge",
      "bridge": "br",
      "interface": "veth",
      "socket": "$VS_SOCK",
      "ipam": {
        "type": "host-local",
        "dataDir": "$PODDIR/ipam",
        "ranges": [[{"subnet": "$SUBNET", "gateway": "$GW"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
# podman drops a network whose plugins fail VERSION with only a warning on stderr.
err=$(pm network ls 2>&1 >/dev/null) || fail "podman network ls failed: $err"
[[ -z "$err" ]] || fail "podman does not take the conflist: $err"
pm network inspect "$NET" >/dev/null || fail "podman does not know network $NET"
log "podman takes network $NET (vswitch-cni, socket $VS_SOCK)"

# The image: busybox-static and its applets, imported (no registry).
t0=$SECONDS
rootfs=$PODDIR/rootfs
mkdir -p "$rootfs"/{bin,etc,tmp,www,root}
cp /bin/busybox "$rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
    [[ "$a" == busybox ]] || ln -s busybox "$rootfs/bin/$a"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
tar -C "$rootfs" -c . | pm import -q --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' - "$IMAGE" \
    >/dev/null || fail "podman import of the busybox image failed"
rm -rf "$rootfs"
log "image $IMAGE imported ($((SECONDS - t0)) s)"

# The CNI plugin's host ends: vs + 12 hex digits, veths in this namespace.
vs_veths() {
    ip -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^vs[0-9a-f]{12}$' || true
}
veths_before=$(vs_veths)

# Two containers. NET_RAW: busybox ping (not in podman's default capabilities).
for c in "$C1" "$C2"; do
    pm run -d --name "$c" --network "$NET" --cap-add NET_RAW \
        --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$IMAGE" sleep 600 >/dev/null ||
        fail "podman run $c failed (see above)"
done
declare -A ID IP NS HOSTIF
for c in "$C1" "$C2"; do
    ID[$c]=$(pm inspect -f '{{.Id}}' "$c")
    NS[$c]=$(pm inspect -f '{{.NetworkSettings.SandboxKey}}' "$c")
    IP[$c]=$(pm inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "$c")
    [[ "${ID[$c]}" =~ ^[0-9a-f]{64}$ ]] || fail "$c: unexpected container id '${ID[$c]}'"
    [[ "${NS[$c]}" == /run/netns/* ]] || fail "$c: netns '${NS[$c]}' is not under /run/netns"
    [[ "${IP[$c]}" =~ ^10\.88\.57\.[0-9]+$ && "${IP[$c]}" != "$GW" ]] ||
        fail "$c: podman reports address '${IP[$c]}', not one of $SUBNET"
    # What the container itself has: eth0 up with that address, the default route via GW.
    addrs=$(pm exec "$c" ip -4 -o addr show dev eth0) || fail "$c: no eth0"
    grep -q "inet ${IP[$c]}/24 " <<<"$addrs" || fail "$c: eth0 lacks ${IP[$c]}/24: $addrs"
    routes=$(pm exec "$c" ip -4 route show)
    grep -q "^default via $GW dev eth0" <<<"$routes" ||
        fail "$c: no default route via $GW on eth0: $routes"
    log "$c: ${IP[$c]}/24 on eth0, default via $GW, id ${ID[$c]:0:12}, netns ${NS[$c]}"
done
[[ "${IP[$C1]}" != "${IP[$C2]}" ]] || fail "both containers got ${IP[$C1]}"

# The switch: one interface per container, with its attachment record.
ifaces=$(vsctl --json iface list) || fail "vsctl iface list failed"
for c in "$C1" "$C2"; do
    HOSTIF[$c]=$(vs_json 'first(i["name"] for i in d if (i.get("attachment") or {}).get("container_id") == cid)' \
        cid="${ID[$c]}" <<<"$ifaces")
    VS_LINKS+=("${HOSTIF[$c]}")
    vs_json_true 'first(i["attachment"] for i in d if i["name"] == n) == {"container_id": cid,
        "ifname": "eth0", "netns": ns, "network": net}' \
        n="${HOSTIF[$c]}" cid="${ID[$c]}" ns="${NS[$c]}" net="$NET" <<<"$ifaces" ||
        fail "$c: attachment of switch interface ${HOSTIF[$c]} is not {${ID[$c]}, eth0, ${NS[$c]}, $NET}: $ifaces"
    [[ "${HOSTIF[$c]}" =~ ^vs[0-9a-f]{12}$ ]] || fail "$c: switch interface name ${HOSTIF[$c]}"
    ip -d link show dev "${HOSTIF[$c]}" | grep -qw veth ||
        fail "$c: ${HOSTIF[$c]} is not a veth in the host namespace"
    vsctl --json bridge show br | vs_json_true 'any(m["iface"] == n for m in d["members"])' \
        n="${HOSTIF[$c]}" || fail "$c: ${HOSTIF[$c]} is not a member of br"
done
vs_json_true 'len([i for i in d if i.get("attachment")]) == 2' <<<"$ifaces" ||
    fail "expected exactly 2 attached switch interfaces: $ifaces"
log "switch interfaces ${HOSTIF[$C1]} and ${HOSTIF[$C2]} record the containers' ids and netns"

# Ping both ways, then the node to both.
cping() {
    local c=$1 dst=$2 out
    wait_until 15 "first ping reply $c -> $dst" pm exec "$c" ping -c 1 -W 1 "$dst"
    out=$(pm exec "$c" ping -c 5 -i 0.2 -w 10 "$dst" 2>&1) || fail "ping $c -> $dst failed: $out"
    grep -q ' 0% packet loss' <<<"$out" || fail "ping $c -> $dst lost packets: $out"
    log "ping $c -> $dst: 5/5 replies"
}
cping "$C1" "${IP[$C2]}"
cping "$C2" "${IP[$C1]}"
for c in "$C1" "$C2"; do
    wait_until 15 "the node reaches $c" ping -c 1 -W 1 "${IP[$c]}"
    out=$(ping -c 5 -i 0.2 -w 10 "${IP[$c]}" 2>&1) || fail "ping node -> $c failed: $out"
    grep -q ' 0% packet loss' <<<"$out" || fail "ping node -> $c lost packets: $out"
done
log "the node pings both containers through its interface"

# TCP with the containers' offloads as podman leaves them: busybox httpd in C2 serves 1 MiB
# of random data; C1 and the node fetch it (busybox wget -T segfaults: timeout instead).
pm exec "$C2" sh -c 'dd if=/dev/urandom of=/www/blob bs=1024 count=1024 2>/dev/null && httpd -p 8080 -h /www' ||
    fail "cannot start httpd in $C2"
want=$(pm exec "$C2" md5sum /www/blob | cut -d' ' -f1)
httpd_listens() { pm exec "$C2" netstat -ltn | grep -q ':8080 '; }
wait_until 10 "httpd listening in $C2" httpd_listens
pm exec "$C1" sh -c "timeout 20 wget -q -O /tmp/blob http://${IP[$C2]}:8080/blob" ||
    fail "wget $C1 <- $C2 failed"
size=$(pm exec "$C1" wc -c /tmp/blob | awk '{print $1}')
got=$(pm exec "$C1" md5sum /tmp/blob | cut -d' ' -f1)
assert_eq "$size" 1048576 "size of the file $C1 fetched from $C2"
assert_eq "$got" "$want" "md5 of the file $C1 fetched from $C2"
log "TCP $C1 <- $C2: 1 MiB, md5 $got"
timeout 20 /bin/busybox wget -q -O "$VS_TMP/blob" "http://${IP[$C2]}:8080/blob" ||
    fail "wget node <- $C2 failed"
assert_eq "$(stat -c %s "$VS_TMP/blob")" 1048576 "size of the file the node fetched from $C2"
assert_eq "$(md5sum <"$VS_TMP/blob" | cut -d' ' -f1)" "$want" "md5 of the file the node fetched from $C2"
log "TCP node <- $C2: 1 MiB, md5 matches"

# podman rm: CNI DEL for both.
pm rm -f -t 0 "$C1" "$C2" >/dev/null || fail "podman rm -f -t 0 failed"
for c in "$C1" "$C2"; do
    ! pm container exists "$c" || fail "container $c still exists after podman rm"
    [[ ! -e "${NS[$c]}" ]] || fail "netns ${NS[$c]} of $c still exists after podman rm"
done
ifaces=$(vsctl --json iface list) || fail "vsctl iface list failed"
vs_json_true 'not any(i.get("attachment") for i in d)' <<<"$ifaces" ||
    fail "switch interfaces with an attachment remain after podman rm: $ifaces"
vs_json_true 'sorted(i["name"] for i in d) == ["host"]' <<<"$ifaces" ||
    fail "expected only the host interface in the switch after podman rm: $ifaces"
for c in "$C1" "$C2"; do
    ! ip link show dev "${HOSTIF[$c]}" >/dev/null 2>&1 ||
        fail "host veth ${HOSTIF[$c]} of $c remains after podman rm"
done
# Under ci/runner.sh the namespace is the test's own: no vs* veth at all may remain. Run
# directly, in the machine's namespace, other CNI users' veths (other tests' pods) come and
# go, so only this test's two (checked above by name) are required gone; others are shown.
if [[ -n "${VS_INIT_NETNS:-}" ]]; then
    left=$(vs_veths)
    [[ -z "$left" ]] || fail "vs* veths remain in the test's namespace: ${left//$'\n'/ }"
else
    left=$(comm -13 <(sort <<<"$veths_before") <(vs_veths | sort))
    [[ -z "$left" ]] || log "note: vs* veths not made by this test came meanwhile: ${left//$'\n'/ }"
fi
leases=$(find "$PODDIR/ipam" -type f ! -name lock ! -name 'last_reserved_ip*')
[[ -z "$leases" ]] || fail "host-local leases remain after podman rm: $leases"
log "after podman rm: no attachment, no veth, no lease left"

stop_vswitchd
vs_pass
