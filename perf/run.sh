#!/usr/bin/env bash
# perf/run.sh: side-by-side benchmark of vswitch, the I/O floor (dpdk-testpmd io) and OVS-DPDK
# over the same virtual devices, on the same worker core, in the same run. See perf/README.md.
# Topology A (CPU cost): pcap -> switch -> null. Topology B (port cost, VM to VM): a peer
# dpdk-testpmd on core 0 plays both VMs over vhost-user or memif, the switch cross-connects.
#
#   perf/run.sh                 full run: 5 runs per system and profile, writes
#                               perf/results/<YYYY-MM-DD>.md and .json
#   perf/run.sh --quick         one short run of each quick profile (QUICK_PROFILES below: all
#                               but l2-100k); exits non-zero only when vswitch or the floor
#                               forwards nothing in some profile (never on speed)
#   perf/run.sh --baseline REV  also measures vswitch built from REV (a separate git work tree),
#                               interleaved with the others, and reports current/baseline
#
# A build that fails fails the run (exit 1, no results written). CARGO (default cargo)
# is the cargo command, so a test can substitute one (ci/tests/00-perf-harness.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PERF="$ROOT/perf"
# Where cargo puts the binaries: CARGO_TARGET_DIR if set (as cargo itself), else target/.
REL="${CARGO_TARGET_DIR:-$ROOT/target}/release"
PY=${PYTHON:-python3}
CARGO=${CARGO:-cargo}
ARGS="$*"

usage() {
    cat <<EOF
usage: perf/run.sh [--quick] [--runs N] [--warmup S] [--window S] [--profiles A,B]
                   [--baseline REV] [--no-build] [--no-ovs] [--no-huge] [--out DIR]
                   [--keep] [--list-profiles]

  --quick        1 run per system, 1 s warm-up, 2 s window, results only in the work dir
                 (printed), profiles ${QUICK_PROFILES[*]};
                 fails only if a profile forwards nothing
  --runs N       runs per system and profile (default 5; order rotated every run)
  --warmup S     seconds of traffic before the measurement window (default 3)
  --window S     measurement window in seconds (default 10)
  --profiles L   comma-separated subset of: ${PROFILES[*]}
  --baseline REV also measure vswitch built from git revision REV ("baseline"), in a
                 separate work tree with its own target dir (target/perf-baseline), run by run
                 beside the current tree's; the report gives current/baseline per profile.
                 Always built (also with --no-build); a failed build fails the run
  --no-build     use the binaries already in target/release (recorded in the results)
  --no-ovs       skip OVS-DPDK (reported as missing: skipped by --no-ovs)
  --no-huge      run the three systems on 4 KiB pages (DPDK --no-huge) instead of 2 MiB
                 hugepages (the default when the machine can reserve them; see below)
  --out DIR      where to write <date>.md/.json (default perf/results; --quick: work dir)
  --keep         keep the work dir (pcaps, logs, raw samples)
  --list-profiles  print the profiles these options would run, one per line, and exit

Environment: CARGO (default cargo), PYTHON (default python3), BASELINE_TARGET_DIR (default
target/perf-baseline).
EOF
}

# ---------------------------------------------------------------------------------------------
# Profiles. Each one is: its topology, its traffic (topology A: the pcap's vswitch-pktgen
# arguments; topology B: the port type the peer connects over), and per system a function
# that configures the forwarding once the two ports exist. A new profile adds a line to each
# table and its setup_* functions.

PROFILES=(xconnect l2-1k l2-100k ipv4-1k ipv4-1M ipv6-10k vxlan-encap vxlan-decap v2v-vhost
    v2v-vhost-ethdev v2v-memif-ethdev
    v2v-memif v2v-memif-cni v2v-memif-zc ipv4-acl-1 ipv4-acl-100 ipv4-acl-1k acl-stateful-10k acl-conn-rate
    nat-dnat-10 nat-dnat-10k nat-snat nat-conn-rate)
# Profiles --quick runs (l2-100k and ipv4-1M take minutes to set up; ipv6-10k waits for the
# dataplane's IPv6 forwarding).
QUICK_PROFILES=(xconnect l2-1k ipv4-1k v2v-vhost v2v-memif)
declare -A PROFILE_TOPO=([xconnect]=A [l2-1k]=A [l2-100k]=A [ipv4-1k]=A [ipv4-1M]=A [ipv6-10k]=A
    [vxlan-encap]=A [vxlan-decap]=A
    [ipv4-acl-1]=A [ipv4-acl-100]=A [ipv4-acl-1k]=A [acl-stateful-10k]=A [acl-conn-rate]=A
    [nat-dnat-10]=A [nat-dnat-10k]=A [nat-snat]=A [nat-conn-rate]=A
    [v2v-vhost]=B [v2v-vhost-ethdev]=B [v2v-memif]=B [v2v-memif-ethdev]=B [v2v-memif-cni]=B
    [v2v-memif-zc]=B)
# The MAC of the first net_pcap port a DPDK process opens: the pcap PMD names its ports
# 02:70:63:61:70:NN ("pcap" and a per-process counter) and cannot change it (set MAC:
# ENOTSUP), so the routed profiles' frames are addressed to it (the switch checks).
PCAP_MAC=02:70:63:61:70:00
# The vxlan-* profiles' tunnel: its VNI, and in vxlan-decap the VTEPs the pcap's outer headers
# carry (vswitch-pktgen --profile vxlan: from 192.0.2.2 to 192.0.2.1, perf/src/profile/vxlan.rs).
VXLAN_VNI=100
VXLAN_DECAP_LOCAL=192.0.2.1/24
VXLAN_DECAP_REMOTE=192.0.2.2
# Topology A: the pcap the switch replays.
declare -A PROFILE_GEN=(
    [xconnect]="--profile xconnect --size 64 --flows 1024 --macs 1 --count 4096 --seed 1"
    [l2-1k]="--profile l2 --size 64 --flows 1024 --macs 1024 --count 4096 --seed 1"
    [l2-100k]="--profile l2 --size 64 --flows 1024 --macs 100000 --count 100000 --seed 1"
    [ipv4-1k]="--profile routes --size 64 --routes 1000 --flows 131072 --count 131072 --seed 1 --router-mac $PCAP_MAC"
    [ipv4-1M]="--profile routes --size 64 --routes 1000000 --flows 131072 --count 131072 --seed 1 --router-mac $PCAP_MAC"
    [ipv6-10k]="--profile routes6 --size 64 --routes 10000 --flows 131072 --count 131072 --seed 1 --router-mac $PCAP_MAC"
    # l2-1k's pcap, into the tunnel.
    [vxlan-encap]="--profile l2 --size 64 --flows 1024 --macs 1024 --count 4096 --seed 1"
    # l2-1k's frames (64 B) inside VXLAN: 114 B outer frames, to src's MAC.
    [vxlan-decap]="--profile vxlan --size 114 --flows 1024 --macs 1024 --count 4096 --seed 1 --vni $VXLAN_VNI --router-mac $PCAP_MAC"
    # ACL profiles (issue 14): ipv4-1k's traffic and table, plus an ACL on src.
    [ipv4-acl-1]="--profile routes --size 64 --routes 1000 --flows 131072 --count 131072 --seed 1 --router-mac $PCAP_MAC"
    [ipv4-acl-100]="--profile routes --size 64 --routes 1000 --flows 131072 --count 131072 --seed 1 --router-mac $PCAP_MAC"
    [ipv4-acl-1k]="--profile routes --size 64 --routes 1000 --flows 131072 --count 131072 --seed 1 --router-mac $PCAP_MAC"
    # 10,000 UDP flows (13 packets each in the file), over ipv4-1k's table.
    [acl-stateful-10k]="--profile routes --size 64 --routes 1000 --flows 10000 --count 130000 --seed 1 --router-mac $PCAP_MAC"
    # 131,072 TCP SYNs, each its own 5-tuple, over ipv4-1k's table: 4x the session limit the
    # set-up gives (SESSION_LIMIT), so each SYN finds its earlier session evicted.
    [acl-conn-rate]="--profile routes-syn --size 64 --routes 1000 --flows 131072 --count 131072 --seed 1 --router-mac $PCAP_MAC"
    # NAT profiles (issue 18). 10,000 UDP flows (13 packets each in the file) to the VIPs of
    # 10 and of 10,000 services (10 backends each; flow j to service j mod N).
    [nat-dnat-10]="--profile services --size 64 --services 10 --backends 10 --flows 10000 --count 130000 --seed 1 --router-mac $PCAP_MAC"
    [nat-dnat-10k]="--profile services --size 64 --services 10000 --backends 10 --flows 10000 --count 130000 --seed 1 --router-mac $PCAP_MAC"
    # acl-stateful-10k's pcap: 10,000 UDP flows from 10.0.0.0/8 over ipv4-1k's table.
    [nat-snat]="--profile routes --size 64 --routes 1000 --flows 10000 --count 130000 --seed 1 --router-mac $PCAP_MAC"
    # 131,072 TCP SYNs, each its own 5-tuple, to one service (10 backends).
    [nat-conn-rate]="--profile services-syn --size 64 --services 1 --backends 10 --flows 131072 --count 131072 --seed 1 --router-mac $PCAP_MAC"
)
# Profiles whose pcap comes with a table to install (vswitch-pktgen --table-out): $TABLE.
declare -A PROFILE_TABLE=([ipv4-1k]=1 [ipv4-1M]=1 [ipv6-10k]=1 [ipv4-acl-1]=1 [ipv4-acl-100]=1
    [ipv4-acl-1k]=1 [acl-stateful-10k]=1 [acl-conn-rate]=1 [nat-dnat-10]=1 [nat-dnat-10k]=1
    [nat-snat]=1 [nat-conn-rate]=1)
# Topology B: the type of the switch's two ports a and b (the peer's two "VMs").
declare -A PROFILE_PORT=([v2v-vhost]=vhost [v2v-vhost-ethdev]=vhost [v2v-memif]=memif
    [v2v-memif-ethdev]=memif [v2v-memif-cni]=memif [v2v-memif-zc]=memif)
# Topology B: profiles where the switch (and the floor, and OVS) is the client of sockets the
# peer serves; the peer starts first (a DPDK net_memif client does not retry a socket that is
# not there yet).
declare -A PROFILE_CLIENT=([v2v-memif-zc]=1)
# Topology B: the switch's driver for its two ports where the default is not the one meant.
declare -A PROFILE_DRIVER=([v2v-vhost-ethdev]=dpdk [v2v-memif-ethdev]=dpdk)
# Topology B: how the peer makes its traffic ("Topology B peer" below): flowgen (the default)
# or loop (two VMs forwarding a fixed set of frames round, each port with its own MAC).
declare -A PROFILE_PEER=([v2v-memif]=loop [v2v-memif-ethdev]=loop [v2v-memif-cni]=loop
    [v2v-vhost]=loop [v2v-vhost-ethdev]=loop)
declare -A PROFILE_DESC=(
    [xconnect]="L2 cross-connect src -> sink, 64 B frames, 1k IPv4/UDP flows"
    [v2v-vhost]="VM to VM over vhost-user: the peer's net_virtio_user0/1 <-> the switch's vhost-user ports a, b (switch = vhost-user server; driver=native: librte_vhost's API), L2 cross-connect a <-> b, 64 B frames, the peer's loop (512 frames circulating each way, 256 IPv4/UDP flows, each port its own MAC), both ways"
    [v2v-vhost-ethdev]="v2v-vhost with the switch's ports on DPDK's net_vhost ethdev (driver=dpdk), as before issue 16"
    [v2v-memif-ethdev]="v2v-memif with the switch's ports on DPDK's net_memif ethdev (driver=dpdk), as before issue 16"
    [v2v-memif]="VM to VM over memif: the peer's net_memif0/1 (client) <-> the switch's memif ports a, b (server; driver=native: the switch's own memif), L2 cross-connect a <-> b, 64 B frames, the peer's loop (512 frames circulating each way, 256 IPv4/UDP flows, each port its own MAC), both ways"
    [v2v-memif-zc]="VM to VM over zero-copy memif: the switch's memif ports a, b are clients with zero-copy=on (its own buffers, shared with the peer) of the peer's net_memif0/1 (server), L2 cross-connect a <-> b, 64 B frames, 1k IPv4/UDP flows, both ways. Floor: testpmd io with DPDK's zero-copy memif clients (zero-copy=yes, --single-file-segments); OVS: not measured (see PROFILE_MISSING)"
    [v2v-memif-cni]="Two memif pods attached by vswitch-cni: the peer's net_memif0/1 (client) <-> the memif sockets the plugin made (socketDir/<container id>/net1.sock; the switch is the server) of two attachments to bridge br0 (learning on), 64 B frames, the peer's loop (512 frames circulating each way, 256 IPv4/UDP flows, each port its own MAC), both ways. Floor: testpmd io between two memif ports as in v2v-memif; OVS: br0 with actions=NORMAL (MAC learning, as the switch's bridge)"
    [l2-1k]="Bridge br0 (src, sink; learning on), 1024 source MACs (learned) x 1024 destination MACs (static on sink), 64 B frames, 1k flows"
    [l2-100k]="Bridge br0 (src, sink; learning on), 100k source MACs (learned) x 100k destination MACs (static on sink), 64 B frames, 1k flows"
    [ipv4-1k]="IPv4 router src -> sink: 1,000 routes of mixed lengths (/8-/32, BGP-shaped) via one static neighbour on sink; 64 B frames to 131,072 random destinations covered by the routes (as ipv4-1M: the two differ only in the table); TTL decremented, MACs rewritten"
    [ipv4-1M]="IPv4 router src -> sink: 1,000,000 routes (62% /24, /8-/23, 3.5% /25-/32: second-level groups used) via one static neighbour on sink; 64 B frames to 131,072 random destinations covered by the routes; TTL decremented, MACs rewritten"
    [vxlan-encap]="VXLAN encapsulation: bridge br0 (src, vx0; learning on), vx0 a VXLAN tunnel (VNI $VXLAN_VNI, local 10.0.1.1, remote 10.0.1.2) routed out of sink (L3, 10.0.1.1/24, static neighbour 10.0.1.2); l2-1k's traffic: 1024 source MACs (learned on src) x 1024 destination MACs (static on vx0, remote 10.0.1.2), 64 B frames leave sink as 114 B VXLAN/UDP/IPv4 frames. OVS: br0 (src, vxlan port vx0) with actions=NORMAL and every destination fdb/add on vx0, underlay bridge br-phy (sink; its internal port holds 10.0.1.1 in a network namespace of its own), tnl/arp/set for 10.0.1.2: datapath tnl_push"
    [vxlan-decap]="VXLAN decapsulation: src an L3 interface holding the VTEP address 192.0.2.1/24, vx0 a VXLAN tunnel (VNI $VXLAN_VNI, local 192.0.2.1, remote 192.0.2.2), bridge br0 (vx0, sink; learning on); 114 B VXLAN frames from 192.0.2.2 carrying l2-1k's 64 B frames: 1024 inner source MACs (learned on vx0) x 1024 inner destination MACs (static on sink), which leave sink decapsulated. OVS: underlay bridge br-phy (src, hwaddr src's MAC; its internal port holds 192.0.2.1 in a network namespace of its own), br0 (vxlan port vx0, sink) with actions=NORMAL and every inner destination fdb/add on sink: datapath tnl_pop, then a second pass (recirculation) for the inner frame"
    [ipv4-acl-1]="ipv4-1k (same pcap, routes, neighbour) with an in ACL on src of 1 rule, a catch-all permit (the classifier's decision tree)"
    [ipv4-acl-100]="ipv4-1k (same pcap, routes, neighbour) with an in ACL on src of 100 rules: 99 ClassBench-like rules of varied shapes (acl-gen --rules 100: prefixes, protocols, ports and port ranges, ICMP types), all permit, then a catch-all permit, so every packet is permitted after a full search (rte_acl above 10 rules); OVS: the rules as OpenFlow flows in table 0 (ranges as value/mask pairs), actions=resubmit(,1), the routes in table 1"
    [ipv4-acl-1k]="ipv4-1k (same pcap, routes, neighbour) with an in ACL on src of 1,000 rules: 999 ClassBench-like rules (acl-gen --rules 1000), all permit, then a catch-all permit (rte_acl); OVS: the rules as OpenFlow flows in table 0 (ranges as value/mask pairs), actions=resubmit(,1), the routes in table 1"
    [acl-stateful-10k]="Stateful ACL: ipv4-1k's router and table, 10,000 distinct UDP flows (130,000-packet pcap) through an in ACL on src 'permit-reflect proto=udp': each flow's first packet creates a session, every later packet is a session hit (no rule search). OVS: table 0 ip,ct_state=-trk actions=ct(table=1); table 1 udp,ct_state=+trk+new actions=ct(commit),resubmit(,2) and udp,ct_state=+trk+est actions=resubmit(,2); table 2 the routes"
    [acl-conn-rate]="New connections: ipv4-1k's router and table, TCP SYNs of 131,072 distinct 5-tuples replayed in a loop through an in ACL on src 'permit-reflect proto=tcp' with 'session set limit=32768' (a quarter of the SYNs in the file), so a SYN creates a session by evicting the oldest half-open one. vswitch's Mpps counts SYNs forwarded; the sessions created per second are in the notes ('session show' created over the window). OVS: the conntrack flows of acl-stateful-10k for tcp, dpctl/ct-set-maxconns 32768: OVS's conntrack does not evict, so once full a quarter of the SYNs find the connection their first pass created and three quarters are conntrack misses whose commit is refused (conntrack_full): no connection is created in the window, and its Mpps bounds its connection rate from above"
    [nat-dnat-10]="Service DNAT: ipv4-1k's router (src 10.0.0.1/24, sink 10.0.1.1/24, static neighbour 10.0.1.2 on sink) without its table, a route 100.64.0.0/10 (the backends) via the neighbour, and 10 services (vsctl service add, UDP, VIPs 172.16.0.x:80, 10 backends each in 100.64.0.0/10, port 8080); 10,000 UDP flows (130,000-packet pcap) to the VIPs: each flow's first packet picks a backend (Maglev) and creates a NAT session, every later packet is a session hit, rewritten to its backend (destination address, port, checksums) and routed out of sink. OVS: table 0 ip,ct_state=-trk actions=ct(table=1,nat); table 1 +trk+dnat (a known connection's packet, translated by that ct) and +trk+est routed (table 2), +trk+new to the VIP's select group (10 buckets, one per backend: ct(commit,table=2,nat(dst=BACKEND:8080))); table 2 the route to 100.64.0.0/10"
    [nat-dnat-10k]="Service DNAT at scale: nat-dnat-10's set-up with 10,000 services (10 backends each, added in vsctl transactions of 1,000), nat-dnat-10's 10,000 UDP flows spread over their VIPs (one flow per service; 130,000-packet pcap). OVS: nat-dnat-10's pipeline with 10,000 select groups of 10 buckets and 10,000 VIP flows"
    [nat-snat]="Masquerade: ipv4-1k's router and table with 'nat masquerade sink on'; acl-stateful-10k's 10,000 UDP flows from 10.0.0.0/8 (130,000-packet pcap): each flow's first packet creates a NAT session (source rewritten to sink's address 10.0.1.1 and a port of the worker's), every later packet is a session hit. OVS: table 0 ip,ct_state=-trk actions=ct(table=1,nat); table 1 +trk+snat and +trk+est routed, udp +trk+new ct(commit,table=2,nat(src=10.0.1.1)); table 2 the routes"
    [nat-conn-rate]="New connections through a service: nat-dnat-10's set-up with one service (TCP, 10 backends), TCP SYNs of 131,072 distinct 5-tuples to its VIP replayed in a loop, 'session set limit=65536' entries (a NAT session is two: 32,768 connections, a quarter of the SYNs), so a SYN creates a NAT session by evicting the oldest half-open one. vswitch's Mpps counts SYNs forwarded; the sessions created per second are in the notes. OVS: nat-dnat-10's pipeline for tcp, dpctl/ct-set-maxconns 32768 (its conntrack does not evict: once full, SYNs that are not the connection their first pass created are refused, conntrack_full)"
    [ipv6-10k]="IPv6 router src -> sink: 10,000 routes of mixed lengths (mostly /32-/48, some /64, /128) via one static neighbour on sink; 66 B frames (the smallest IPv6/UDP) to 131,072 random destinations covered by the routes; hop limit decremented, MACs rewritten"
)
# Mbufs and DPDK memory (MB) per profile, the same for all three systems: net_pcap's
# infinite_rx holds the whole pcap in mbufs. Unlisted profiles: DPDK/vswitchd defaults, 1024 MB.
declare -A PROFILE_MBUFS=([l2-100k]=262143 [ipv4-1k]=262143 [ipv4-1M]=262143 [ipv6-10k]=262143
    [ipv4-acl-1]=262143 [ipv4-acl-100]=262143 [ipv4-acl-1k]=262143 [acl-stateful-10k]=262143
    [acl-conn-rate]=262143 [nat-dnat-10]=262143 [nat-dnat-10k]=262143 [nat-snat]=262143
    [nat-conn-rate]=262143)
declare -A PROFILE_MEM=([l2-100k]=2048 [ipv4-1k]=2048 [ipv4-1M]=2048 [ipv6-10k]=2048
    [ipv4-acl-1]=2048 [ipv4-acl-100]=2048 [ipv4-acl-1k]=2048 [acl-stateful-10k]=2048
    [acl-conn-rate]=2048 [nat-dnat-10]=2048 [nat-dnat-10k]=2048 [nat-snat]=2048
    [nat-conn-rate]=2048)
# OVS only, where it needs more: in v2v-vhost it creates a second 262144-mbuf mempool when a
# vhost device attaches (its NUMA socket is known only then), which fails in 1024 MB and leaves
# port a unconfigured. (Giving all three 2048 MB instead makes testpmd take ~7-15 s to exit.)
declare -A PROFILE_MEM_OVS=([v2v-vhost]=2048 [v2v-vhost-ethdev]=2048)
# At most this many runs per system when OVS is measured (the OVS setup of l2-100k takes ~2
# min per run); --no-ovs makes every run asked for.
declare -A PROFILE_MAX_RUNS=([l2-100k]=2 [ipv4-1M]=3)
# A system that cannot run a profile, with the reason (reported as missing, never as zero).
declare -A PROFILE_MISSING=(
    [v2v-memif-zc/ovs]="OVS-DPDK's net_memif client ports (type=dpdk) ask for 2 tx rings (one per PMD thread plus one) where the peer's one-queue net_memif server offers 1, and DPDK's memif client does not settle for fewer: the server disconnects it (Invalid ring index; seen by hand 2026-12-04), so OVS has no figure here; v2v-memif measures it as the server")
# OVS: profiles whose OpenFlow rules are loaded before the ports are added (no traffic yet:
# a million rules load while the PMD and the handlers are idle, not against an upcall storm).
declare -A PROFILE_OVS_RULES_FIRST=([ipv4-1k]=1 [ipv4-1M]=1 [ipv6-10k]=1 [ipv4-acl-1]=1
    [ipv4-acl-100]=1 [ipv4-acl-1k]=1 [acl-stateful-10k]=1 [acl-conn-rate]=1 [nat-dnat-10]=1
    [nat-dnat-10k]=1 [nat-snat]=1 [nat-conn-rate]=1)
# OVS: profiles whose ovs-vswitchd runs in a network namespace of its own, made for the
# measurement and removed after it. OVS's userspace tunnelling takes the VTEP address (the
# tunnel ports it listens on, the source of its tunnel routes) from the addresses of the
# underlay bridge's internal port, a tap device in the kernel: that address is set there
# (`ip -n NS addr add`), never in the host's own namespace.
declare -A PROFILE_OVS_NETNS=([vxlan-encap]=1 [vxlan-decap]=1)
# Profiles whose work must be seen done, not only packets counted out of sink (a switch that
# drops, floods or passes the frames unchanged must not show up as a figure): `report.py
# work` checks each measurement and a measurement that does not show it is a failed sample,
# with what was seen. vswitch: the packet graph's stage every packet passes
# (PROFILE_STAGE: `vsctl runtime` over the window saw as many packets as sink sent), the
# size of every frame sink sent (PROFILE_TX_BYTES, captured bytes without the FCS: its
# tx_bytes over tx_packets in the window), no packet dropped in the window. OVS: the
# datapath action (PROFILE_OVS_ACTION, a regular expression) of the flows that carried the
# packets from src (`dpctl/dump-flows` at the end of the window), and as many packets sent as
# received over the window (pmd-perf-show; net_null counts no bytes, so OVS's frame sizes
# cannot be read at sink).
declare -A PROFILE_STAGE=([vxlan-encap]=tunnel-encap [vxlan-decap]=tunnel-decap)
# The NAT profiles' translations leave the frames' size alone: 60 checks that sink sent and
# that no packet was dropped in the window (nat-conn-rate's session_limit drops are its
# check's business: a note, not a failed sample).
declare -A PROFILE_TX_BYTES=([vxlan-encap]=110 [vxlan-decap]=60 [nat-dnat-10]=60
    [nat-dnat-10k]=60 [nat-snat]=60)
declare -A PROFILE_OVS_ACTION=(
    [vxlan-encap]="tnl_push\\(.*vxlan\\(flags=0x8000000,vni=$(printf '%#x' "$VXLAN_VNI")\\)"
    [vxlan-decap]="tnl_pop\\("
)

# vswitch: ports src (pcap) and sink (null) exist (topology B: a and b); "$@" is the vsctl
# command prefix.
setup_vswitch_xconnect() { "$@" xconnect add src sink; }
setup_vswitch_v2v-vhost() { "$@" xconnect add a b; }
setup_vswitch_v2v-vhost-ethdev() { "$@" xconnect add a b; }
setup_vswitch_v2v-memif() { "$@" xconnect add a b; }
setup_vswitch_v2v-memif-zc() { "$@" xconnect add a b; }
setup_vswitch_v2v-memif-ethdev() { "$@" xconnect add a b; }
# v2v-memif-cni: the plugin put both ports in br0 (ports_vswitch).
setup_vswitch_v2v-memif-cni() { :; }
# OVS: ports src and sink (a and b) exist on bridge br0; "$@" is `ovs-ofctl add-flow <br0's
# socket>`.
setup_ovs_xconnect() { "$@" "in_port=src,actions=output:sink"; }
setup_ovs_v2v() { "$@" "in_port=a,actions=output:b" && "$@" "in_port=b,actions=output:a"; }
setup_ovs_v2v-vhost() { setup_ovs_v2v "$@"; }
setup_ovs_v2v-vhost-ethdev() { setup_ovs_v2v "$@"; }
setup_ovs_v2v-memif() { setup_ovs_v2v "$@"; }
setup_ovs_v2v-memif-zc() { setup_ovs_v2v "$@"; }
setup_ovs_v2v-memif-ethdev() { setup_ovs_v2v "$@"; }
setup_ovs_v2v-memif-cni() { "$@" "actions=NORMAL"; }

# l2-*: vswitchd starts from a configuration file (--config: the state-file format) with
# the ports, bridge br0 (learning on) and every destination MAC ($DST_MACS, written by
# vswitch-pktgen) static on sink: 100k entries load in under a second this way, where 100k
# `vsctl fdb add` calls would each write the state file. $1 is the pcap.
config_vswitch_l2() {
    "$PY" - "$1" "$DST_MACS" <<'PY'
import json, sys
pcap, macs = sys.argv[1], [l.strip() for l in open(sys.argv[2]) if l.strip()]
json.dump({"version": 1,
           "interfaces": [{"name": "src", "type": "pcap", "args": {"rx": pcap, "loop": "on"}},
                          {"name": "sink", "type": "null", "args": {}}],
           "bridges": [{"name": "br0", "learn": True, "age": 300, "learn_limit": 131072,
                        "flood": True,
                        "members": [{"iface": "src"}, {"iface": "sink"}],
                        "static_macs": [{"mac": m, "vlan": 0, "iface": "sink"} for m in macs]}]},
          sys.stdout)
PY
}
config_vswitch_l2-1k() { config_vswitch_l2 "$@"; }
config_vswitch_l2-100k() { config_vswitch_l2 "$@"; }
# OVS l2-1k: actions=NORMAL (MAC learning, as vswitch's bridge) with every destination
# pre-learned as a static entry on sink (ovs-appctl fdb/add, one call per MAC).
# setup_ovs_fdb IFACE OFCTL...: that, with the destinations on IFACE.
setup_ovs_fdb() {
    local iface=$1 mac
    shift
    "$@" "actions=NORMAL" || return 1
    while read -r mac; do
        "${OVS_APPCTL[@]}" fdb/add br0 "$iface" 0 "$mac" >/dev/null || return 1
    done <"$DST_MACS"
}
setup_ovs_l2-1k() { setup_ovs_fdb sink "$@"; }
# OVS l2-100k: 100k fdb/add calls take too long, so the equivalent OpenFlow table, one
# dl_dst=MAC,actions=output:sink rule per destination, loaded in one add-flows call.
setup_ovs_l2-100k() {
    sed 's/.*/dl_dst=&,actions=output:sink/' "$DST_MACS" >"$OVS_DIR/l2-flows.txt"
    "${@/add-flow/add-flows}" "$OVS_DIR/l2-flows.txt"
}

# Routed profiles (ipv4-*, ipv6-*): src and sink are L3 interfaces with addresses, sink has a
# static neighbour (GW) that is every route's gateway; the per-packet work is the same for
# all three systems' routers: a longest-prefix match, TTL (hop limit) decremented, MACs
# rewritten (source: sink's MAC, destination: the gateway's), out through sink. $TABLE is
# the route list (vswitch-pktgen --table-out, one PREFIX/LEN per line); SETUP_DIR is the
# measurement's directory, where the set-up leaves load_s (seconds to load the table).
SINK_MAC=02:00:00:00:01:01
GW_MAC=02:00:00:00:01:02
declare -A L3_ADDR=([4-src]=10.0.0.1/24 [4-sink]=10.0.1.1/24 [4-gw]=10.0.1.2
    [6-src]=fd00::1/64 [6-sink]=fd00:1::1/64 [6-gw]=fd00:1::2)
SETUP_DIR=""
# vsctl's wait for one answer (s): a million routes take about a minute on this machine.
VSCTL_TABLE_TIMEOUT=1800

# src_mac_is MAC VSCTL...: the pcap's frames are addressed to MAC (the routed profiles' and
# vxlan-decap's to src's, PCAP_MAC): check that src has it.
src_mac_is() {
    local want=$1 mac
    shift
    mac=$("$@" --json iface list | "$PY" -c 'import json, sys
print([i["mac"] for i in json.load(sys.stdin) if i["name"] == "src"][0])') || return 1
    [ "$mac" = "$want" ] || { echo "src has MAC $mac, the pcap's frames are for $want"; return 1; }
}

# setup_vswitch_routed FAMILY VSCTL...: addresses, the neighbour, then every route in one
# `vsctl transaction` (timed).
setup_vswitch_routed() {
    local fam=$1 t0 t1
    shift
    src_mac_is "$(head -n 1 "$DST_MACS")" "$@" || return 1
    "$@" addr add src "${L3_ADDR[$fam-src]}" && "$@" addr add sink "${L3_ADDR[$fam-sink]}" &&
        "$@" neigh add sink "${L3_ADDR[$fam-gw]}" "$GW_MAC" || return 1
    sed "s|.*|route add & via ${L3_ADDR[$fam-gw]}|" "$TABLE" >"$SETUP_DIR/routes.txt"
    t0=$(now)
    "$@" --timeout "$VSCTL_TABLE_TIMEOUT" transaction "$SETUP_DIR/routes.txt" || return 1
    t1=$(now)
    awk "BEGIN{printf \"%.3f\n\", $t1 - $t0}" >"$SETUP_DIR/load_s"
}
setup_vswitch_ipv4-1k() { setup_vswitch_routed 4 "$@"; }
setup_vswitch_ipv4-1M() { setup_vswitch_routed 4 "$@"; }
setup_vswitch_ipv6-10k() { setup_vswitch_routed 6 "$@"; }

# setup_ovs_routed FAMILY OFCTL...: one rule per route, priority = prefix length (so the
# longest match wins), loaded with one `ovs-ofctl --bundle add-flows` (timed), before the
# ports exist (PROFILE_OVS_RULES_FIRST): the rules output to sink by its OpenFlow port number,
# 2 (ports_ovs asks for it). dec_ttl also decrements an IPv6 hop limit.
# OVS_ROUTE_TABLE: the OpenFlow table of the rules (default 0; the ACL profiles put an ACL or
# conntrack in front of them).
OVS_ROUTE_TABLE=0
setup_ovs_routed() {
    local fam=$1 t0 t1 match=ip,nw_dst
    shift
    if [ "$fam" = 6 ]; then
        match=ipv6,ipv6_dst
        # Prefix tracking (megaflows wildcarded to the rules' prefixes) is on by default for
        # IPv4 addresses only; without it every IPv6 destination is an exact-match megaflow.
        "${OVS_VSCTL[@]}" -- --id=@ft create Flow_Table name=t0 prefixes=ipv6_dst,ipv6_src \
            -- set Bridge br0 flow_tables:0=@ft || return 1
    fi
    awk -F/ -v m="$match" -v a="dec_ttl,mod_dl_src:$SINK_MAC,mod_dl_dst:$GW_MAC,output:2" \
        -v t="$OVS_ROUTE_TABLE" \
        '{ printf "table=%s,priority=%s,%s=%s,actions=%s\n", t, $2, m, $0, a }' "$TABLE" >"$SETUP_DIR/flows.txt"
    local ofctl=("$@")
    ofctl=("${ofctl[@]/add-flow/add-flows}")
    t0=$(now)
    "${ofctl[0]}" --bundle "${ofctl[@]:1}" "$SETUP_DIR/flows.txt" || return 1
    t1=$(now)
    awk "BEGIN{printf \"%.3f\n\", $t1 - $t0}" >"$SETUP_DIR/load_s"
}
setup_ovs_ipv4-1k() { setup_ovs_routed 4 "$@"; }
setup_ovs_ipv4-1M() { setup_ovs_routed 4 "$@"; }
setup_ovs_ipv6-10k() { setup_ovs_routed 6 "$@"; }

# ACL profiles (issue 14): ipv4-1k's router (setup_*_routed) with an ACL on src, in front of
# the routes. The ACL is named bench.
ACL_NAME=bench
ACL_SEED=1
# acl-conn-rate: vswitch's session limit (`session set limit=`) and OVS's conntrack limit
# (dpctl/ct-set-maxconns): a quarter of the pcap's 131,072 SYNs.
SESSION_LIMIT=32768
declare -A ACL_RULES=([ipv4-acl-1]=1 [ipv4-acl-100]=100 [ipv4-acl-1k]=1000)
# What the stateful profiles' ACL permits (and reflects), and what their check looks at
# (report.py aclcheck --mode; the stateless ones: stateless).
declare -A ACL_REFLECT=([acl-stateful-10k]=udp [acl-conn-rate]=tcp)
declare -A ACL_CHECK=([acl-stateful-10k]=stateful [acl-conn-rate]=connrate)

# acl_transaction FILE: the `vsctl transaction` lines that add ACL_NAME with FILE's rules (one
# per line, each one quoted word) and bind it to src, in.
acl_transaction() {
    awk -v n="$ACL_NAME" 'BEGIN { printf "acl add %s", n } { printf " \"%s\"", $0 }
        END { printf "\nacl bind src %s in\n", n }' "$1"
}
# setup_vswitch_acl PROFILE VSCTL...: the routes, then the ACL (one transaction, timed:
# SETUP_DIR/acl_load_s).
setup_vswitch_acl() {
    local profile=$1 t0 t1
    shift
    setup_vswitch_routed 4 "$@" || return 1
    if [ -n "${ACL_RULES[$profile]:-}" ]; then
        "$REL/acl-gen" --rules "${ACL_RULES[$profile]}" --seed "$ACL_SEED" \
            --vsctl-out "$SETUP_DIR/acl-rules.txt" 2>"$SETUP_DIR/acl-gen.log" || return 1
    else
        echo "permit-reflect proto=${ACL_REFLECT[$profile]}" >"$SETUP_DIR/acl-rules.txt"
    fi
    if [ "${ACL_CHECK[$profile]:-}" = connrate ]; then
        "$@" session set "limit=$SESSION_LIMIT" || return 1
    fi
    acl_transaction "$SETUP_DIR/acl-rules.txt" >"$SETUP_DIR/acl.txt"
    t0=$(now)
    "$@" --timeout "$VSCTL_TABLE_TIMEOUT" transaction "$SETUP_DIR/acl.txt" || return 1
    t1=$(now)
    awk "BEGIN{printf \"%.3f\n\", $t1 - $t0}" >"$SETUP_DIR/acl_load_s"
}
setup_vswitch_ipv4-acl-1() { setup_vswitch_acl ipv4-acl-1 "$@"; }
setup_vswitch_ipv4-acl-100() { setup_vswitch_acl ipv4-acl-100 "$@"; }
setup_vswitch_ipv4-acl-1k() { setup_vswitch_acl ipv4-acl-1k "$@"; }
setup_vswitch_acl-stateful-10k() { setup_vswitch_acl acl-stateful-10k "$@"; }
setup_vswitch_acl-conn-rate() { setup_vswitch_acl acl-conn-rate "$@"; }

# OVS, stateless: the routes in table 1, the ACL's flows (acl-gen --openflow-out: descending
# priorities, actions=resubmit(,1)) in table 0, loaded with one --bundle add-flows. The flow
# count is left in SETUP_DIR/acl_flows.
setup_ovs_acl_stateless() {
    local rules=$1
    shift
    OVS_ROUTE_TABLE=1 setup_ovs_routed 4 "$@" || return 1
    "$REL/acl-gen" --rules "$rules" --seed "$ACL_SEED" --table 0 --actions "resubmit(,1)" \
        --openflow-out "$SETUP_DIR/acl-flows.txt" 2>"$SETUP_DIR/acl-gen.log" || return 1
    wc -l <"$SETUP_DIR/acl-flows.txt" >"$SETUP_DIR/acl_flows"
    local ofctl=("$@")
    ofctl=("${ofctl[@]/add-flow/add-flows}")
    "${ofctl[0]}" --bundle "${ofctl[@]:1}" "$SETUP_DIR/acl-flows.txt"
}
setup_ovs_ipv4-acl-1() { setup_ovs_acl_stateless 1 "$@"; }
setup_ovs_ipv4-acl-100() { setup_ovs_acl_stateless 100 "$@"; }
setup_ovs_ipv4-acl-1k() { setup_ovs_acl_stateless 1000 "$@"; }

# OVS, stateful (PROTO tcp or udp): conntrack in front of the routes (table 2). Untracked IP
# goes through conntrack (ct(table=1)); a new connection of PROTO is committed and routed, an
# established one routed; anything else is dropped (no rule), as the ACL's default deny.
setup_ovs_acl_stateful() {
    local proto=$1
    shift
    OVS_ROUTE_TABLE=2 setup_ovs_routed 4 "$@" || return 1
    "$@" "table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1)" &&
        "$@" "table=1,priority=10,$proto,ct_state=+trk+new,actions=ct(commit),resubmit(,2)" &&
        "$@" "table=1,priority=10,$proto,ct_state=+trk+est,actions=resubmit(,2)"
}
setup_ovs_acl-stateful-10k() { setup_ovs_acl_stateful udp "$@"; }
setup_ovs_acl-conn-rate() {
    setup_ovs_acl_stateful tcp "$@" &&
        "${OVS_APPCTL[@]}" dpctl/ct-set-maxconns "$SESSION_LIMIT"
}

# Around the measurement window (IDX 0 at its start, 1 at its end): snap_<system>_<profile>
# IDX DIR [VSCTL...] records what check_<system>_<profile> DIR turns into the sample's note
# (and DIR/check.json's fields into the sample). vswitch: the ACL's per-rule hits, src's
# counters, the drops; OVS: the conntrack's connection count and its conntrack_full counter.
# src's counters are read just before and just after the ACL's (srcIa, srcIb): the packets
# received when the hits were read lie between the two.
snap_vswitch_acl() {
    local i=$1 d=$2
    shift 2
    "$@" --json stats src >"$d/src${i}a.json" && "$@" --json acl show "$ACL_NAME" >"$d/acl$i.json" &&
        "$@" --json stats src >"$d/src${i}b.json" && "$@" --json drops >"$d/drops$i.json" &&
        "$@" --json session show >"$d/sess$i.json" || return 1
    # The sessions themselves, once, at the end (10,000 or the limit's 32,768 entries).
    [ "$i" = 0 ] || "$@" --json sessions >"$d/sessions.json"
}
check_vswitch_acl() {
    local d=$1 profile=$2 flows load=()
    flows=$(sed -n 's/^vswitch-pktgen: .* flows=\([0-9]*\) .*/\1/p' "$WORK/$profile.gen.log")
    [ ! -f "$d/acl_load_s" ] || load=(--load-s "$(cat "$d/acl_load_s")")
    "$PY" "$PERF/report.py" aclcheck "$d" --mode "${ACL_CHECK[$profile]:-stateless}" \
        --flows "${flows:-0}" "${load[@]}"
}
snap_ovs_ct() {
    local i=$1 d=$2
    "${OVS_APPCTL[@]}" dpctl/ct-get-nconns >"$d/nconns$i.txt" 2>&1
    "${OVS_APPCTL[@]}" coverage/read-counter conntrack_full >"$d/ctfull$i.txt" 2>&1
    "${OVS_APPCTL[@]}" dpctl/ct-get-maxconns >"$d/maxconns$i.txt" 2>&1
    now >"$d/t$i.txt"
}
check_ovs_acl() { "$PY" "$PERF/report.py" ovscheck "$1"; }
snap_vswitch_ipv4-acl-1() { snap_vswitch_acl "$@"; }
snap_vswitch_ipv4-acl-100() { snap_vswitch_acl "$@"; }
snap_vswitch_ipv4-acl-1k() { snap_vswitch_acl "$@"; }
snap_vswitch_acl-stateful-10k() { snap_vswitch_acl "$@"; }
snap_vswitch_acl-conn-rate() { snap_vswitch_acl "$@"; }
check_vswitch_ipv4-acl-1() { check_vswitch_acl "$1" ipv4-acl-1; }
check_vswitch_ipv4-acl-100() { check_vswitch_acl "$1" ipv4-acl-100; }
check_vswitch_ipv4-acl-1k() { check_vswitch_acl "$1" ipv4-acl-1k; }
check_vswitch_acl-stateful-10k() { check_vswitch_acl "$1" acl-stateful-10k; }
check_vswitch_acl-conn-rate() { check_vswitch_acl "$1" acl-conn-rate; }
check_ovs_ipv4-acl-1() { check_ovs_acl "$@"; }
check_ovs_ipv4-acl-100() { check_ovs_acl "$@"; }
check_ovs_ipv4-acl-1k() { check_ovs_acl "$@"; }
snap_ovs_acl-stateful-10k() { snap_ovs_ct "$@"; }
snap_ovs_acl-conn-rate() { snap_ovs_ct "$@"; }
check_ovs_acl-stateful-10k() { check_ovs_acl "$@"; }
check_ovs_acl-conn-rate() { check_ovs_acl "$@"; }

# NAT profiles (issue 18): ipv4-1k's router topology (src 10.0.0.1/24, sink 10.0.1.1/24, the
# static neighbour GW on sink), translation in front of the routing. DNAT (nat-dnat-*,
# nat-conn-rate): the pcap's flows go to services' virtual IPs (vswitch-pktgen --profile
# services: 172.16.0.0/14, port 80), each of 10 backends in NAT_BACKENDS (port 8080), which
# sink routes via GW; $TABLE holds the `service add` lines. SNAT (nat-snat): acl-stateful-10k's
# pcap and ipv4-1k's routes, sink masquerades (sources become sink's address).
NAT_BACKENDS=100.64.0.0/10
# nat-conn-rate: vswitch's session limit counts entries, and a NAT session is two (its flow and
# its reply's): 65,536 entries are 32,768 connections, a quarter of the pcap's 131,072 SYNs, as
# acl-conn-rate's SESSION_LIMIT (OVS's maxconns, which counts connections, is that).
NAT_SESSION_LIMIT=$((2 * SESSION_LIMIT))
# What check_*_<profile> looks for (report.py natcheck/ovsnatcheck --mode).
declare -A NAT_CHECK=([nat-dnat-10]=dnat [nat-dnat-10k]=dnat [nat-snat]=snat
    [nat-conn-rate]=connrate)
# The pcap's L4 protocol per NAT profile (the services' proto, OVS's ct matches).
declare -A NAT_PROTO=([nat-dnat-10]=udp [nat-dnat-10k]=udp [nat-snat]=udp [nat-conn-rate]=tcp)

# setup_vswitch_nat_dnat PROFILE VSCTL...: the addresses, the neighbour, the route to the
# backends, then every service in `vsctl transaction`s of at most 1,000 (as
# perf/service-scale.sh; timed: SETUP_DIR/nat_load_s). nat-conn-rate: the session limit first.
setup_vswitch_nat_dnat() {
    local profile=$1 t0 t1 f
    shift
    src_mac_is "$(head -n 1 "$DST_MACS")" "$@" || return 1
    "$@" addr add src "${L3_ADDR[4-src]}" && "$@" addr add sink "${L3_ADDR[4-sink]}" &&
        "$@" neigh add sink "${L3_ADDR[4-gw]}" "$GW_MAC" &&
        "$@" route add "$NAT_BACKENDS" via "${L3_ADDR[4-gw]}" || return 1
    if [ "${NAT_CHECK[$profile]}" = connrate ]; then
        "$@" session set "limit=$NAT_SESSION_LIMIT" || return 1
    fi
    split -l 1000 -d -a 5 "$TABLE" "$SETUP_DIR/services." || return 1
    t0=$(now)
    for f in "$SETUP_DIR"/services.*; do
        "$@" --timeout "$VSCTL_TABLE_TIMEOUT" transaction "$f" >/dev/null || return 1
    done
    t1=$(now)
    awk "BEGIN{printf \"%.3f\n\", $t1 - $t0}" >"$SETUP_DIR/nat_load_s"
}
setup_vswitch_nat-dnat-10() { setup_vswitch_nat_dnat nat-dnat-10 "$@"; }
setup_vswitch_nat-dnat-10k() { setup_vswitch_nat_dnat nat-dnat-10k "$@"; }
setup_vswitch_nat-conn-rate() { setup_vswitch_nat_dnat nat-conn-rate "$@"; }
# nat-snat: ipv4-1k's set-up, then masquerade on sink.
setup_vswitch_nat-snat() { setup_vswitch_routed 4 "$@" && "$@" nat masquerade sink on; }

# OVS: conntrack with NAT in front of the routes (table 2). Untracked IP goes through
# conntrack with nat (ct(table=1,nat): a packet of a known connection comes back translated);
# in table 1 a translated one (ct_state +dnat or +snat) or an established one is routed, a
# new one of the profile's protocol translated and committed: DNAT, to the VIP's select group (ovs_nat_groups), whose buckets (one per backend,
# equal weights: OVS's default selection hashes the flow's fields) each
# ct(commit,table=2,nat(dst=BACKEND:PORT)); SNAT, ct(commit,table=2,nat(src=sink's address)).
# Anything else is dropped (no rule). The groups are loaded before the flows naming them, each
# kind in one ovs-ofctl call (timed: SETUP_DIR/nat_load_s).
OVS_OF=(-O OpenFlow13)
ovs_nat_flows() {
    local proto=$1 new=$2 sock="unix:$OVS_DIR/br0.mgmt"
    shift 2
    # A connection's later packets come out of ct(table=1,nat) translated (+dnat or +snat):
    # routed, whatever their state. Without replies they can stay +new (seen here: with the
    # +est rule alone OVS forwarded nothing in nat-dnat-10: the translated packets matched no
    # VIP), so the +new rules below see a connection's first packet only.
    "$@" "table=0,priority=10,ip,ct_state=-trk,actions=ct(table=1,nat)" &&
        "$@" "table=1,priority=20,ip,ct_state=+trk+$new,actions=resubmit(,2)" &&
        "$@" "table=1,priority=10,ip,ct_state=+trk+est,actions=resubmit(,2)" || return 1
    if [ "$new" = snat ]; then
        "$@" "table=1,priority=10,$proto,ct_state=+trk+new,actions=ct(commit,table=2,nat(src=${L3_ADDR[4-sink]%/*}))"
        return
    fi
    # DNAT: $TABLE's `service add sI VIP:PORT proto=P backends=B:P,...` lines: service I is
    # group I+1.
    awk -v p="$proto" '{
            split($4, v, ":"); sub(/^backends=/, "", $6); n = split($6, b, ",")
            g = "group_id=" NR ",type=select"
            for (i = 1; i <= n; i++) g = g ",bucket=actions=ct(commit,table=2,nat(dst=" b[i] "))"
            print g > (d "/groups.txt")
            printf "table=1,priority=10,%s,ct_state=+trk+new,nw_dst=%s,tp_dst=%s,actions=group:%d\n",
                p, v[1], v[2], NR > (d "/nat-flows.txt")
        }' d="$SETUP_DIR" "$TABLE" || return 1
    local t0 t1
    t0=$(now)
    ovs-ofctl "${OVS_OF[@]}" add-groups "$sock" "$SETUP_DIR/groups.txt" &&
        ovs-ofctl "${OVS_OF[@]}" --bundle add-flows "$sock" "$SETUP_DIR/nat-flows.txt" || return 1
    t1=$(now)
    awk "BEGIN{printf \"%.3f\n\", $t1 - $t0}" >"$SETUP_DIR/nat_load_s"
}
# The route to the backends, table 2.
ovs_nat_backend_route() {
    "$@" "table=2,priority=10,ip,nw_dst=$NAT_BACKENDS,actions=dec_ttl,mod_dl_src:$SINK_MAC,mod_dl_dst:$GW_MAC,output:2"
}
setup_ovs_nat_dnat() {
    local profile=$1
    shift
    ovs_nat_backend_route "$@" && ovs_nat_flows "${NAT_PROTO[$profile]}" dnat "$@"
}
setup_ovs_nat-dnat-10() { setup_ovs_nat_dnat nat-dnat-10 "$@"; }
setup_ovs_nat-dnat-10k() { setup_ovs_nat_dnat nat-dnat-10k "$@"; }
setup_ovs_nat-conn-rate() {
    setup_ovs_nat_dnat nat-conn-rate "$@" &&
        "${OVS_APPCTL[@]}" dpctl/ct-set-maxconns "$SESSION_LIMIT"
}
setup_ovs_nat-snat() {
    OVS_ROUTE_TABLE=2 setup_ovs_routed 4 "$@" && ovs_nat_flows udp snat "$@"
}

# Checks (report.py natcheck, ovsnatcheck). vswitch: src's counters, `session show` and the
# drops at both ends of the window; at its end the sessions (their translations) and the
# services (new flows per backend; nat-conn-rate also at the start: the window's share).
snap_vswitch_nat() {
    local profile=$1 i=$2 d=$3
    shift 3
    "$@" --json stats src >"$d/src$i.json" && "$@" --json session show >"$d/sess$i.json" &&
        "$@" --json drops >"$d/drops$i.json" || return 1
    if [ "${NAT_CHECK[$profile]}" = connrate ] || [ "$i" = 1 ]; then
        [ "${NAT_CHECK[$profile]}" = snat ] || "$@" --json service list >"$d/services$i.json" || return 1
    fi
    [ "$i" = 0 ] || "$@" --json sessions --max 262144 >"$d/sessions.json"
}
check_vswitch_nat() {
    local d=$1 profile=$2 flows load=()
    flows=$(sed -n 's/^vswitch-pktgen: .* flows=\([0-9]*\) .*/\1/p' "$WORK/$profile.gen.log")
    [ ! -f "$d/nat_load_s" ] || load=(--load-s "$(cat "$d/nat_load_s")")
    "$PY" "$PERF/report.py" natcheck "$d" --mode "${NAT_CHECK[$profile]}" --flows "${flows:-0}" \
        --masquerade "${L3_ADDR[4-sink]%/*}" "${load[@]}"
}
# OVS: snap_ovs_ct's counters, and at the window's end every conntrack entry (their NAT).
snap_ovs_nat() {
    snap_ovs_ct "$@"
    [ "$1" = 0 ] || "${OVS_APPCTL[@]}" dpctl/dump-conntrack >"$2/conntrack.txt" 2>&1
}
check_ovs_nat() {
    local d=$1 profile=$2 flows
    flows=$(sed -n 's/^vswitch-pktgen: .* flows=\([0-9]*\) .*/\1/p' "$WORK/$profile.gen.log")
    "$PY" "$PERF/report.py" ovsnatcheck "$d" --mode "${NAT_CHECK[$profile]}" \
        --flows "${flows:-0}" --masquerade "${L3_ADDR[4-sink]%/*}"
}
snap_vswitch_nat-dnat-10() { snap_vswitch_nat nat-dnat-10 "$@"; }
snap_vswitch_nat-dnat-10k() { snap_vswitch_nat nat-dnat-10k "$@"; }
snap_vswitch_nat-snat() { snap_vswitch_nat nat-snat "$@"; }
snap_vswitch_nat-conn-rate() { snap_vswitch_nat nat-conn-rate "$@"; }
check_vswitch_nat-dnat-10() { check_vswitch_nat "$1" nat-dnat-10; }
check_vswitch_nat-dnat-10k() { check_vswitch_nat "$1" nat-dnat-10k; }
check_vswitch_nat-snat() { check_vswitch_nat "$1" nat-snat; }
check_vswitch_nat-conn-rate() { check_vswitch_nat "$1" nat-conn-rate; }
snap_ovs_nat-dnat-10() { snap_ovs_nat "$@"; }
snap_ovs_nat-dnat-10k() { snap_ovs_nat "$@"; }
snap_ovs_nat-snat() { snap_ovs_nat "$@"; }
snap_ovs_nat-conn-rate() { snap_ovs_nat "$@"; }
check_ovs_nat-dnat-10() { check_ovs_nat "$1" nat-dnat-10; }
check_ovs_nat-dnat-10k() { check_ovs_nat "$1" nat-dnat-10k; }
check_ovs_nat-snat() { check_ovs_nat "$1" nat-snat; }
check_ovs_nat-conn-rate() { check_ovs_nat "$1" nat-conn-rate; }

# VXLAN profiles (vxlan-encap, vxlan-decap): a bridge with a VXLAN tunnel member, the tunnel's
# outer packets routed through an L3 interface. vswitchd starts from a configuration file (the
# state file's format, version 2: a section per kind of change, tunnels and what is theirs in
# the tunnel_* sections) with all of it, the 1024 static MACs included, as the l2 profiles do.
#
# vxlan-encap: br0 = {src, vx0}, vx0 from sink's address 10.0.1.1 to 10.0.1.2 (sink's static
# neighbour, so the outer packet is routed out of sink without ARP), every destination MAC
# static on vx0 with its VTEP (`fdb add br0 MAC vx0 remote=10.0.1.2`). $1 is the pcap.
config_vswitch_vxlan-encap() {
    "$PY" - "$1" "$DST_MACS" "$VXLAN_VNI" "$SINK_MAC" "${L3_ADDR[4-sink]}" "${L3_ADDR[4-gw]}" \
        "$GW_MAC" <<'PY'
import json, sys
pcap, macs, vni, sink_mac, sink_addr, gw, gw_mac = sys.argv[1:]
macs = [l.strip() for l in open(macs) if l.strip()]
json.dump({"version": 2,
           "interfaces": [{"name": "src", "type": "pcap", "args": {"rx": pcap, "loop": "on"}},
                          {"name": "sink", "type": "null", "args": {"mac": sink_mac}}],
           "bridges": [{"name": "br0", "learn": True, "age": 300, "learn_limit": 131072,
                        "flood": True}],
           "bridge_members": [{"bridge": "br0", "iface": "src"}],
           "addresses": [{"iface": "sink", "address": sink_addr}],
           "tunnels": [{"name": "vx0", "kind": "vxlan", "local": sink_addr.split("/")[0],
                        "remotes": [gw], "vni": int(vni)}],
           "tunnel_members": [{"bridge": "br0", "iface": "vx0"}],
           "tunnel_static_macs": [{"bridge": "br0", "mac": m, "iface": "vx0", "remote": gw}
                                  for m in macs],
           "neighbors": [{"iface": "sink", "ip": gw, "mac": gw_mac}]},
          sys.stdout)
PY
}
# vxlan-decap: src holds the VTEP address the pcap's outer headers are for (VXLAN_DECAP_LOCAL),
# vx0 from it to the pcap's outer source, br0 = {vx0, sink}, every inner destination MAC static
# on sink (the inner sources are learned on vx0). $1 is the pcap.
config_vswitch_vxlan-decap() {
    "$PY" - "$1" "$DST_MACS" "$VXLAN_VNI" "$VXLAN_DECAP_LOCAL" "$VXLAN_DECAP_REMOTE" <<'PY'
import json, sys
pcap, macs, vni, local, remote = sys.argv[1:]
macs = [l.strip() for l in open(macs) if l.strip()]
json.dump({"version": 2,
           "interfaces": [{"name": "src", "type": "pcap", "args": {"rx": pcap, "loop": "on"}},
                          {"name": "sink", "type": "null", "args": {}}],
           "bridges": [{"name": "br0", "learn": True, "age": 300, "learn_limit": 131072,
                        "flood": True}],
           "bridge_members": [{"bridge": "br0", "iface": "sink"}],
           "static_macs": [{"bridge": "br0", "mac": m, "iface": "sink"} for m in macs],
           "addresses": [{"iface": "src", "address": local}],
           "tunnels": [{"name": "vx0", "kind": "vxlan", "local": local.split("/")[0],
                        "remotes": [remote], "vni": int(vni)}],
           "tunnel_members": [{"bridge": "br0", "iface": "vx0"}]},
          sys.stdout)
PY
}
# The outer frames are addressed to src's MAC.
setup_vswitch_vxlan-decap() { src_mac_is "$PCAP_MAC" "$@"; }

# OVS, userspace tunnelling (its documented set-up, "Connecting VMs Using Tunnels
# (Userspace)"): br0 holds the overlay's port and the vxlan port vx0 (options remote_ip,
# local_ip, key), with actions=NORMAL and every destination MAC as a static entry (fdb/add),
# as in l2-1k; the underlay bridge br-phy holds the underlay's port and, on its internal port
# (a tap device in OVS's own namespace, PROFILE_OVS_NETNS), the VTEP address. OVS routes the
# outer packet by that address (ovs/route/add; tnl/arp/set for the neighbour) and pops what
# its internal port receives for it (tnl_pop). br-phy's one rule sends what comes from its
# port to LOCAL (decap) or from LOCAL to its port (encap). These replace ports_ovs's src and
# sink on br0 (ports_ovs_<profile>); "$@" is ovs-vsctl.

# ovs_retry CMD...: CMD, up to 5 s until it succeeds (OVS learns an address of its internal
# port from the kernel's notification, not at once).
ovs_retry() {
    local i
    for ((i = 0; i < 50; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}
# ovs_listens IP: OVS has a tunnel port listening on IP (`tnl/ports/show -v`).
ovs_listens() { "${OVS_APPCTL[@]}" tnl/ports/show -v | grep -qF "ipv4(dst=$1,"; }

# ovs_underlay MAC CIDR VSCTL...: br-phy with MAC, CIDR on its internal port, no rules.
ovs_underlay() {
    local mac=$1 cidr=$2
    shift 2
    "$@" add-br br-phy -- set bridge br-phy datapath_type=netdev "other_config:hwaddr=$mac" &&
        ip -n "$OVS_NETNS" addr add "$cidr" dev br-phy &&
        ip -n "$OVS_NETNS" link set br-phy up &&
        ovs-ofctl del-flows "unix:$OVS_DIR/br-phy.mgmt"
}
ports_ovs_vxlan-encap() {
    local local_ip=${L3_ADDR[4-sink]%/*} gw=${L3_ADDR[4-gw]}
    ovs_underlay "$SINK_MAC" "${L3_ADDR[4-sink]}" "$@" &&
        "$@" add-port br-phy sink -- set Interface sink type=dpdk \
            "options:dpdk-devargs=${DEVARGS[1]}" ofport_request=1 &&
        ovs-ofctl add-flow "unix:$OVS_DIR/br-phy.mgmt" "in_port=LOCAL,actions=output:1" &&
        ovs_retry "${OVS_APPCTL[@]}" ovs/route/add "$gw/32" br-phy &&
        "${OVS_APPCTL[@]}" tnl/arp/set br-phy "$gw" "$GW_MAC" &&
        "$@" add-port br0 vx0 -- set Interface vx0 type=vxlan "options:remote_ip=$gw" \
            "options:local_ip=$local_ip" "options:key=$VXLAN_VNI" ofport_request=2 &&
        ovs_retry ovs_listens "$local_ip" &&
        "$@" add-port br0 src -- set Interface src type=dpdk \
            "options:dpdk-devargs=${DEVARGS[0]}" ofport_request=1 || return 1
    PORTS+=(vx0)
}
ports_ovs_vxlan-decap() {
    local local_ip=${VXLAN_DECAP_LOCAL%/*}
    ovs_underlay "$PCAP_MAC" "$VXLAN_DECAP_LOCAL" "$@" &&
        ovs-ofctl add-flow "unix:$OVS_DIR/br-phy.mgmt" "in_port=1,actions=LOCAL" &&
        "$@" add-port br0 vx0 -- set Interface vx0 type=vxlan \
            "options:remote_ip=$VXLAN_DECAP_REMOTE" "options:local_ip=$local_ip" \
            "options:key=$VXLAN_VNI" ofport_request=1 &&
        "$@" add-port br0 sink -- set Interface sink type=dpdk \
            "options:dpdk-devargs=${DEVARGS[1]}" ofport_request=2 &&
        ovs_retry ovs_listens "$local_ip" &&
        "$@" add-port br-phy src -- set Interface src type=dpdk \
            "options:dpdk-devargs=${DEVARGS[0]}" ofport_request=1 || return 1
    PORTS+=(vx0)
}
setup_ovs_vxlan-encap() { setup_ovs_fdb vx0 "$@"; }
setup_ovs_vxlan-decap() { setup_ovs_fdb sink "$@"; }

SYSTEMS=(vswitch floor ovs)
BURST=32         # testpmd --burst; OVS's NETDEV_MAX_BURST; vswitch's burst
MAIN_CORE=0      # EAL main lcore / OVS dpdk-lcore-mask 0x1; topology B: also the peer
WORKER_CORE=1    # the one forwarding core: vswitch worker, testpmd fwd lcore, OVS PMD
MEM_MB=1024
PEER_MEM_MB=512  # topology B peer: DPDK memory (memfd-backed with --no-huge: vhost maps it)
PEER_MBUFS=16384

# ---------------------------------------------------------------------------------------------
# Options

QUICK=0 RUNS=5 WARMUP=3 WINDOW=10 BUILD=1 OVS=1 KEEP=0 OUT="" SELECTED="" BASELINE="" LIST=0
HUGE=1
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --runs) RUNS=$2; shift ;;
        --warmup) WARMUP=$2; shift ;;
        --window) WINDOW=$2; shift ;;
        --profiles) SELECTED=$2; shift ;;
        --baseline) BASELINE=$2; shift ;;
        --list-profiles) LIST=1 ;;
        --no-build) BUILD=0 ;;
        --no-ovs) OVS=0 ;;
        --no-huge) HUGE=0 ;;
        --out) OUT=$2; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "perf/run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then RUNS=1 WARMUP=1 WINDOW=2; PROFILES=("${QUICK_PROFILES[@]}"); fi
if [ -n "$SELECTED" ]; then
    IFS=, read -r -a want <<<"$SELECTED"
    for p in "${want[@]}"; do
        [ -n "${PROFILE_TOPO[$p]:-}" ] || { echo "perf/run.sh: unknown profile $p" >&2; exit 2; }
    done
    PROFILES=("${want[@]}")
fi
for n in "$RUNS" "$WARMUP" "$WINDOW"; do
    if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
        echo "perf/run.sh: --runs/--warmup/--window need integers >= 1" >&2
        exit 2
    fi
done
if [ "$LIST" = 1 ]; then printf '%s\n' "${PROFILES[@]}"; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "perf/run.sh: needs root (DPDK runtime dirs, OVS)" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------
# Process hygiene: every process we start is tracked by PID and stopped by PID; every DPDK
# process gets its own --file-prefix, whose runtime dir we remove afterwards.

WORK=$(mktemp -d /tmp/vswitch-perf.XXXXXX)
TAG="vsperf$$"
TRACKED=()
PREFIXES=()
# Network namespaces this run made (PROFILE_OVS_NETNS), removed by name.
NETNSES=()

log() { echo "perf: $*" >&2; }
die() { echo "perf/run.sh: $*" >&2; exit 1; }

# --baseline: the work tree (git worktree add --detach, under BASE_DIR) and where its
# vswitchd/vsctl are built; removed by path at exit.
BASE_DIR="" BASE_TREE="" BASE_REV="" BASE_REL=""

# stop_pid PID SIGNAL TIMEOUT_S [STACKS]: signal, wait, SIGKILL after the timeout, reap.
# Sets STOP_RC to the exit status and STOP_KILLED=1 if SIGKILL was needed. With STACKS, a
# process that outlived the timeout has every thread's stack written there first (gdb),
# and each thread's innermost frames logged. (Not run in $(...): only this shell can reap
# its children.)
STOP_RC=0 STOP_KILLED=0

# thread_states PID: each of its threads' state and wait channel, then its kernel stack.
thread_states() {
    local pid=$1 t
    ps -L -o tid=,stat=,wchan:32=,comm= -p "$pid"
    for t in /proc/"$pid"/task/*; do
        echo "== kernel stack of task ${t##*/} ($(cat "$t/comm" 2>/dev/null))"
        cat "$t/stack" 2>/dev/null
    done
}

stop_pid() {
    local pid=$1 sig=$2 timeout=$3 stacks=${4:-} i
    STOP_RC=0 STOP_KILLED=0
    if kill -0 "$pid" 2>/dev/null; then
        kill "-$sig" "$pid" 2>/dev/null || true
        for ((i = 0; i < timeout * 10; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            # A zombie answers kill -0; stop polling once it has exited.
            [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]] || break
            # A process slow to go, seen while it is still there (at the timeout it had
            # always just gone: its last log line says "stopped", then exit takes ~15 s):
            # each thread's state, kernel stack and the process's memory at 5 s.
            if [ -n "$stacks" ] && [ "$i" = 50 ]; then
                {
                    date +%T.%N
                    grep -E '^(State|Threads|VmRSS|VmHWM|RssAnon|RssFile|RssShmem|HugetlbPages)' \
                        /proc/"$pid"/status
                    thread_states "$pid"
                } >"$stacks.5s" 2>&1 || true
                log "pid $pid still there 5 s after SIG$sig: its threads in $stacks.5s:"
                head -n 40 "$stacks.5s" | cut -c1-200 >&2
            fi
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null && [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]]; then
            log "pid $pid ignored SIG$sig for ${timeout}s; sending SIGKILL"
            if [ -n "$stacks" ]; then
                # Each thread's state and kernel stack first (a process stuck on its way out,
                # after its own last log line, waits in the kernel where gdb cannot attach).
                thread_states "$pid" >"$stacks.kernel" 2>&1 || true
                log "pid $pid: threads and kernel stacks in $stacks.kernel:"
                head -n 40 "$stacks.kernel" | cut -c1-200 >&2
            fi
            if [ -n "$stacks" ] && command -v gdb >/dev/null; then
                timeout 30 gdb -p "$pid" -batch -nx -ex "thread apply all bt 12" \
                    >"$stacks" 2>&1 || true
                log "pid $pid: stacks in $stacks; the innermost frames of each thread:"
                awk '/^Thread /{t=$0; n=0; next} /^#[0-9]/ && n<3 && t!="" {
                        if (n==0) print "  " t; print "    " $0; n++ }' "$stacks" |
                    cut -c1-200 >&2
            fi
            kill -KILL "$pid" 2>/dev/null || true
            STOP_KILLED=1
        fi
    fi
    wait "$pid" 2>/dev/null || STOP_RC=$?
    untrack "$pid"
}

# netns_add NAME: a network namespace for OVS (PROFILE_OVS_NETNS), without IPv6 (its kernel
# would otherwise send router solicitations out of the tap devices, into OVS's bridges).
netns_add() {
    ip netns add "$1" || return 1
    NETNSES+=("$1")
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
        net.ipv6.conf.default.disable_ipv6=1
}
netns_del() {
    local i
    ip netns del "$1" || log "could not remove network namespace $1"
    for i in "${!NETNSES[@]}"; do
        [ "${NETNSES[$i]}" = "$1" ] && unset 'NETNSES[i]'
    done
    return 0
}

untrack() {
    local pid=$1 i
    for i in "${!TRACKED[@]}"; do
        [ "${TRACKED[$i]}" = "$pid" ] && unset 'TRACKED[i]'
    done
    return 0
}

cleanup() {
    local pid p
    for pid in "${TRACKED[@]}"; do
        stop_pid "$pid" TERM 5
    done
    for p in "${NETNSES[@]}"; do
        ip netns del "$p" 2>/dev/null || true
    done
    for p in "${PREFIXES[@]}"; do
        rm -rf "/var/run/dpdk/$p"
        # Hugepage files a process that was killed left behind (they hold the pages).
        [ "$HUGE" = 0 ] || rm -f "$HUGE_DIR/${p}map_"*
    done
    [ -z "$HUGE_PAGES_BEFORE" ] || echo "$HUGE_PAGES_BEFORE" >/proc/sys/vm/nr_hugepages ||
        log "could not give back the hugepages (vm.nr_hugepages was $HUGE_PAGES_BEFORE)"
    if [ -n "$BASE_TREE" ] && [ -d "$BASE_TREE" ]; then
        git -C "$ROOT" worktree remove --force "$BASE_TREE" ||
            log "could not remove the baseline work tree $BASE_TREE (git worktree list)"
    fi
    [ -z "$BASE_DIR" ] || rm -rf "$BASE_DIR"
    if [ "$KEEP" = 1 ]; then log "work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# DPDK memory: 2 MiB hugepages for the switch, the floor and OVS alike (what DPDK is deployed
# on, and a like-for-like buffer layout: with 4 KiB pages, DPDK's rte_pktmbuf_pool_create
# keeps each mbuf within one page, one per page, while vswitchd packs its pools (ffi/dpdk
# mempool.rs), so the three would not be measured on the same layout). The run reserves what
# the largest system of its profiles asks for (-m) plus room, and gives the pages back at exit.
# --no-huge, or a machine that cannot reserve them: 4 KiB pages for all three (recorded).
HUGE_DIR=/dev/hugepages
# OVS on hugepages asks for a 262,144-mbuf pool, which 1024 MB does not hold (and, failing
# with an errno other than ENOMEM, it does not retry with fewer): it gets at least this much.
OVS_HUGE_MB=2048
HUGE_PAGES_BEFORE=""
MEMORY_NOTE="4 KiB pages (--no-huge)"
EAL_MEM=(--no-huge)
# ovs_mem PROFILE: OVS's DPDK memory (MB).
ovs_mem() {
    local mb=${PROFILE_MEM_OVS[$1]:-${PROFILE_MEM[$1]:-$MEM_MB}}
    [ "$HUGE" = 0 ] || [ "$mb" -ge "$OVS_HUGE_MB" ] || mb=$OVS_HUGE_MB
    echo "$mb"
}
setup_hugepages() {
    local mb=$MEM_MB p m need free
    for p in "${PROFILES[@]}"; do
        for m in "${PROFILE_MEM[$p]:-0}" "${PROFILE_MEM_OVS[$p]:-0}"; do
            [ "$m" -le "$mb" ] || mb=$m
        done
    done
    [ "$OVS" = 0 ] || [ "$mb" -ge "$OVS_HUGE_MB" ] || mb=$OVS_HUGE_MB
    need=$((mb / 2 + 256))
    if ! mountpoint -q "$HUGE_DIR"; then
        mkdir -p "$HUGE_DIR" && mount -t hugetlbfs nodev "$HUGE_DIR" ||
            { MEMORY_NOTE+="; hugepages: cannot mount hugetlbfs on $HUGE_DIR"; return 1; }
    fi
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
    if [ "${free:-0}" -lt "$need" ]; then
        HUGE_PAGES_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
        echo $((HUGE_PAGES_BEFORE + need - ${free:-0})) >/proc/sys/vm/nr_hugepages 2>/dev/null
        free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
        if [ "${free:-0}" -lt "$need" ]; then
            MEMORY_NOTE+="; hugepages: only ${free:-0} of $need 2 MiB pages could be reserved"
            return 1
        fi
    fi
    MEMORY_NOTE="2 MiB hugepages ($need reserved for the run)"
    EAL_MEM=()
}
if [ "$HUGE" = 1 ] && ! setup_hugepages; then
    log "${MEMORY_NOTE#*; }: running on 4 KiB pages"
    HUGE=0
fi

# sample PROFILE SYSTEM RUN STATUS NOTE [JSON-FIELDS]: appends one line to samples.jsonl
# (report.py sample: a failed or missing sample has "mpps": null and its reason), with the
# other processes seen before ($BUSY_BEFORE) and after the measurement, and prints it.
BUSY_BEFORE=""
sample() {
    local busy probe=()
    busy=$(others)
    # The probe's samples in the window (SPAN, set by the system's run just before), for
    # topology B (the probe runs through topology A's profiles too when both are selected).
    [ -z "$SPAN" ] || [ ! -s "$WORK/xcpu.txt" ] || [ "${PROFILE_TOPO[$1]:-}" != B ] ||
        probe=(--probe "$WORK/xcpu.txt" --span "$SPAN")
    SPAN=""
    "$PY" "$PERF/report.py" sample --out "$WORK/samples.jsonl" --busy "$BUSY_BEFORE $busy" \
        "${probe[@]}" "$@"
}

# The measurement window of the run about to be sampled, "T0 T1" (UNIX seconds), for the
# cross-CPU probe's figures (start_probe).
SPAN=""

# start_probe: topology B's figures follow how far apart the host put this VM's two vCPUs (a
# cache line's round trip between CPU 0 and the worker's is about 60-65 ns, or 300-335 ns, flipping
# within seconds). When a topology B profile is selected, xcpu-probe samples that round trip
# every 250 ms through the whole run (up to a third of a millisecond of each CPU per sample, at
# SCHED_FIFO priority so that it runs between the pollers at once) into WORK/xcpu.txt; each
# window's samples go with its figures (report.py: xcpu_ns, xcpu_far_pct) and goals are also
# judged over the windows run in the near state.
start_probe() {
    local p b=0
    for p in "${PROFILES[@]}"; do [ "${PROFILE_TOPO[$p]}" = B ] && b=1; done
    [ "$b" = 1 ] || return 0
    if [ ! -x "$REL/xcpu-probe" ]; then
        log "no $REL/xcpu-probe (drop --no-build): topology B runs without the cross-CPU probe"
        return 0
    fi
    "$REL/xcpu-probe" --cpus "0,$WORKER_CORE" --interval-ms 250 >"$WORK/xcpu.txt" 2>"$WORK/xcpu.log" &
    local pid=$! i
    TRACKED+=("$pid")
    # A probe that cannot run (no SCHED_FIFO, a CPU missing) exits at once: say so, rather
    # than leave topology B's figures without their state and nobody told.
    for ((i = 0; i < 50; i++)); do
        [ ! -s "$WORK/xcpu.txt" ] || return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    log "xcpu-probe gave no sample: $(tail -n 1 "$WORK/xcpu.log" 2>/dev/null); topology B runs without the cross-CPU probe"
}

now() { date +%s.%N; }

# ---------------------------------------------------------------------------------------------
# The switch's two ports, per topology
#
# A: src (net_pcap, replaying the pcap) and sink (net_null); what leaves through sink counts.
# B: a and b, vhost-user or memif ports the switch serves; the peer (below) is both VMs and
#    sends into both; what leaves through a and b counts.

# port_devargs PROFILE PCAP DIR: sets PORTS (names) and DEVARGS (DPDK devargs, as the floor
# opens them with --vdev and OVS with options:dpdk-devargs) of the switch's two ports, and
# OUT_PORTS, the indexes of the ports whose tx is counted. Sockets go in DIR.
PORTS=() DEVARGS=() OUT_PORTS=""
port_devargs() {
    local profile=$1 pcap=$2 d=$3
    case "${PROFILE_TOPO[$profile]}/${PROFILE_PORT[$profile]:-}" in
        A/)
            PORTS=(src sink) OUT_PORTS=1
            DEVARGS=("net_pcap0,rx_pcap=$pcap,infinite_rx=1" "net_null0,no-rx=1") ;;
        B/vhost)
            PORTS=(a b) OUT_PORTS=0,1
            DEVARGS=("net_vhost0,iface=$d/a.sock,queues=1" "net_vhost1,iface=$d/b.sock,queues=1") ;;
        B/memif)
            PORTS=(a b) OUT_PORTS=0,1
            if [ -n "${PROFILE_CLIENT[$profile]:-}" ]; then
                DEVARGS=("net_memif0,role=client,id=0,socket=$d/a.sock,socket-abstract=no,zero-copy=yes"
                    "net_memif1,role=client,id=0,socket=$d/b.sock,socket-abstract=no,zero-copy=yes")
            else
                DEVARGS=("net_memif0,role=server,id=0,socket=$d/a.sock,socket-abstract=no"
                    "net_memif1,role=server,id=0,socket=$d/b.sock,socket-abstract=no")
            fi ;;
        *) echo "perf/run.sh: profile $profile has no port set-up" >&2; return 1 ;;
    esac
}

# config_vswitch_ports PROFILE PCAP: topology A's two ports as a start-up configuration
# (--config). vswitchd opens them at start, on its main lcore, as testpmd opens the floor's
# at EAL init. In ad hoc runs (no results file) a net_pcap port opened later, through the
# API (a tokio thread, no mempool cache), cost the worker more in rx on the
# 131,072-packet pcaps. net_pcap's
# infinite_rx replays packets it stored in the pool's own mbufs, taken one by one by the
# opening thread: from a cache in 256-mbuf blocks on an lcore, straight off the pool's ring
# otherwise, so the two store the packets in a different order of pages. Only this replay
# source has stored packets: a real port receives into the worker's cache either way.
config_vswitch_ports() {
    local profile=$1 pcap=$2 sink_mac=""
    # Routed profiles: sink's MAC is the one OVS's rules write as the source.
    [ -z "${PROFILE_TABLE[$profile]:-}" ] || sink_mac=$SINK_MAC
    "$PY" - "$pcap" "$sink_mac" <<'PY'
import json, sys
pcap, sink_mac = sys.argv[1], sys.argv[2]
json.dump({"version": 1,
           "interfaces": [{"name": "src", "type": "pcap", "args": {"rx": pcap, "loop": "on"}},
                          {"name": "sink", "type": "null",
                           "args": {"mac": sink_mac} if sink_mac else {}}]},
          sys.stdout)
PY
}

# ports_vswitch PROFILE PCAP DIR VSCTL...: creates the two ports in vswitchd (its own types);
# topology B only (A's come from config_vswitch_ports).
ports_vswitch() {
    local profile=$1 pcap=$2 d=$3
    shift 3
    case "${PROFILE_TOPO[$profile]}/${PROFILE_PORT[$profile]:-}" in
        B/vhost)
            local drv=()
            [ -z "${PROFILE_DRIVER[$profile]:-}" ] || drv=("driver=${PROFILE_DRIVER[$profile]}")
            "$@" iface add a vhost-user "socket=$d/a.sock" mode=server "${drv[@]}" &&
                "$@" iface add b vhost-user "socket=$d/b.sock" mode=server "${drv[@]}" ;;
        B/memif)
            if [ "$profile" = v2v-memif-cni ]; then
                ports_vswitch_cni "$d" "$@"
                return
            fi
            local mdrv=(role=server)
            [ -z "${PROFILE_DRIVER[$profile]:-}" ] || mdrv+=("driver=${PROFILE_DRIVER[$profile]}")
            [ -z "${PROFILE_CLIENT[$profile]:-}" ] || mdrv=(role=client zero-copy=on)
            "$@" iface add a memif "socket=$d/a.sock" id=0 "${mdrv[@]}" &&
                "$@" iface add b memif "socket=$d/b.sock" id=0 "${mdrv[@]}" ;;
    esac
}

# ports_vswitch_cni DIR VSCTL...: bridge br0, and two memif pods ("a", "b", ifname net1)
# attached to it by vswitch-cni as a runtime runs it (ADD; socketDir DIR/cni); the peer
# connects to their sockets through DIR/a.sock and DIR/b.sock (symbolic links).
ports_vswitch_cni() {
    local d=$1 sock="" i c
    shift
    local args=("$@")
    for ((i = 0; i < ${#args[@]}; i++)); do
        [ "${args[i]}" != --socket ] || sock=${args[i + 1]}
    done
    # This tree's plugin (a client of the switch under test, also for a --baseline switch,
    # which may predate it).
    local cni=$REL/vswitch-cni
    "$@" bridge add br0 || return 1
    for c in a b; do
        CNI_COMMAND=ADD CNI_CONTAINERID=$c CNI_NETNS=/proc/self/ns/net CNI_IFNAME=net1 \
            CNI_PATH=/usr/lib/cni "$cni" <<EOF || return 1
{"cniVersion": "1.0.0", "name": "perf", "type": "vswitch-cni", "bridge": "br0",
 "interface": "memif", "socket": "$sock", "socketDir": "$d/cni"}
EOF
        ln -sf "$d/cni/$c/net1.sock" "$d/$c.sock" || return 1
    done
}

# ports_ovs PROFILE PCAP DIR OVS-VSCTL...: adds the two ports to br0. vhost-user: OVS's own
# dpdkvhostuser type (OVS is the server, as vswitch and the floor; the socket is
# $OVS_RUNDIR/<port>); the others: type=dpdk with the floor's devargs. A profile with a
# ports_ovs_<profile> function (the ports' DEVARGS set, OVS-VSCTL... its arguments) places
# them itself.
ports_ovs() {
    local profile=$1 pcap=$2 d=$3 i
    shift 3
    port_devargs "$profile" "$pcap" "$d" || return 1
    if declare -F "ports_ovs_$profile" >/dev/null; then
        "ports_ovs_$profile" "$@"
        return
    fi
    for i in 0 1; do
        # OpenFlow port numbers 1 and 2 (rules loaded before the ports exist name them so).
        if [ "${PROFILE_PORT[$profile]:-}" = vhost ]; then
            "$@" add-port br0 "${PORTS[i]}" -- set Interface "${PORTS[i]}" type=dpdkvhostuser \
                "ofport_request=$((i + 1))"
        else
            # memif served to the peer: 2 rx queues, as the peer's 2 queue pairs (ovs_peer).
            local rxq=()
            ! ovs_memif_server "$profile" || rxq=(options:n_rxq=2)
            "$@" add-port br0 "${PORTS[i]}" -- set Interface "${PORTS[i]}" type=dpdk \
                "options:dpdk-devargs=${DEVARGS[i]}" "${rxq[@]}" "ofport_request=$((i + 1))"
        fi || return 1
    done
}

# ---------------------------------------------------------------------------------------------
# Topology B peer: one dpdk-testpmd, started fresh for every measurement once the switch's
# sockets exist, is both VMs: ports 0 and 1 (net_virtio_user or net_memif client) connect to
# the switch's a and b. Its forwarding lcore shares core 0 with its own main lcore and with
# the switch's main/control threads (lcores 0@0,1@0); the switch's worker has core 1.
#
# --forward-mode=flowgen: on each port it drains what arrives (and frees it) and sends a new
# burst of IPv4/UDP frames, 1024 flows, as fast as the ring takes them; --txpkts=60 makes them
# 64 B on the wire with the FCS, as vswitch-pktgen's --size 64. That is open loop, both
# directions: the switch's rx rings stay full whenever the switch is the slower side. But
# flowgen writes the same two MAC addresses into the frames of both ports, so a learning
# bridge sees one station moving between its ports and floods every frame (perf/README.md,
# "The peer's MAC addresses").
#
# PROFILE_PEER loop: two VMs that forward what they receive (--forward-mode=io, port 0's
# receive to port 1's transmit and back), as a VM running testpmd io does. At start
# (`start tx_first`, start_loop_peer) each port sends PEER_LOOP_BURSTS bursts of 64 B
# IPv4/UDP frames from its own MAC to the other port's (--eth-peer), 256 source addresses
# (--txonly-multi-flow); io leaves the frames as they are, so each frame goes round the same
# way for ever: out of port 0, through the switch from a to b, into port 1, out of port 0
# again. Every station stays on its port, as two pods' would. With 16 bursts, 512 frames
# circulate each way, half a memif ring (1024 slots): no ring can fill, so no frame is lost
# and the loop does not decay (a switch that drops frames shows it in its own figure).
# `tx_first 1` (--tx-first) was tried first: 32 frames a way make the loop latency-bound
# at about 2 Mpps with near-empty bursts.
PEER_LOOP_BURSTS=16

PEER_PID="" PEER_WHY=""
# The peer's queue pairs per port. OVS-DPDK sends from its PMD thread on tx queue 1 of every
# dpdk port (queue 0 is its main thread's), and its memif ports are configured with 2 tx
# queues; with a peer of one queue pair the memif has no ring for queue 1, and OVS drops every
# frame it sends (seen: `dpctl/show -s` tx_packets 0, all tx dropped, while pmd-perf-show
# counted them as Tx packets). So for OVS's memif ports the peer has 2 queue pairs and OVS
# polls both rx queues (ports_ovs: n_rxq=2); its frames then come back on queue 1.
PEER_QUEUES=1
# start_peer PROFILE NAME DIR SOCK_A SOCK_B: returns non-zero with PEER_WHY set on failure.
start_peer() {
    local profile=$1 name=$2 d=$3 sa=$4 sb=$5 i vdevs=()
    local prefix="$TAG-peer-$name" log="$d/peer.log"
    PEER_PID="" PEER_WHY=""
    local role=client
    if [ -n "${PROFILE_CLIENT[$profile]:-}" ]; then
        # The peer serves the sockets (started before the switch: peer_first).
        role=server
        rm -f "$sa" "$sb"
    else
        for ((i = 0; i < 200; i++)); do
            [ -S "$sa" ] && [ -S "$sb" ] && break
            sleep 0.1
        done
        if [ ! -S "$sa" ] || [ ! -S "$sb" ]; then
            PEER_WHY="the switch did not create its sockets $sa and $sb within 20 s"
            return 1
        fi
    fi
    # The loop peer's virtqueues hold its 512 frames a way (virtio-user's default is 256).
    local qs=""
    [ "${PROFILE_PEER[$profile]:-}" != loop ] || qs=",queue_size=1024"
    case "${PROFILE_PORT[$profile]}" in
        vhost) vdevs=(--vdev "net_virtio_user0,path=$sa,queues=1$qs,mac=02:00:00:00:00:01"
                   --vdev "net_virtio_user1,path=$sb,queues=1$qs,mac=02:00:00:00:00:00") ;;
        # The ports' own addresses: the loop's sources (and, crossed, its --eth-peer
        # destinations). flowgen does not use them: it writes the fixed source
        # 00:01:02:03:04:00 and destination 00:01:02:03:04:01 into every frame of both ports
        # (perf/README.md, "The peer's MAC addresses").
        memif) vdevs=(--vdev "net_memif0,role=$role,id=0,socket=$sa,socket-abstract=no,mac=02:00:00:00:00:01"
                   --vdev "net_memif1,role=$role,id=0,socket=$sb,socket-abstract=no,mac=02:00:00:00:00:00") ;;
    esac
    PREFIXES+=("$prefix")
    local queues=()
    [ "$PEER_QUEUES" = 1 ] || queues=("--rxq=$PEER_QUEUES" "--txq=$PEER_QUEUES")
    if [ "${PROFILE_PEER[$profile]:-}" = loop ]; then
        start_loop_peer "$prefix" "$d" "$log" "${vdevs[@]}" -- "${queues[@]}"
        return
    fi
    dpdk-testpmd --lcores "0@$MAIN_CORE,1@$MAIN_CORE" --no-huge -m "$PEER_MEM_MB" --no-pci \
        --file-prefix "$prefix" "${vdevs[@]}" \
        -- "${queues[@]}" --forward-mode=flowgen --txpkts=60 --flowgen-flows=1024 --burst="$BURST" \
        --total-num-mbufs="$PEER_MBUFS" --stats-period 1 </dev/null >"$log" 2>&1 &
    PEER_PID=$!
    TRACKED+=("$PEER_PID")
    for ((i = 0; i < 300; i++)); do
        grep -q "start packet forwarding" "$log" 2>/dev/null && return 0
        kill -0 "$PEER_PID" 2>/dev/null || break
        sleep 0.1
    done
    PEER_WHY="peer testpmd did not start forwarding: $(grep -v '^\s*$' "$log" | tail -n 1)"
    return 1
}

# start_loop_peer PREFIX DIR LOG VDEV-ARGS... -- APP-ARGS...: the loop peer (PROFILE_PEER
# loop), driven at its prompt through a FIFO that run.sh holds open (PEER_FD), so that it is told when to
# fill the loop and can be asked whether frames come back. A switch may lose the first
# frames while its port settles (OVS's memif ports did: the peer sent its 512 frames a way
# and none came back), so the loop is filled again, up to 3 times, while no frame comes back.
PEER_FD=""
start_loop_peer() {
    local prefix=$1 d=$2 log=$3 i try rx eal=() app=()
    shift 3
    while [ $# -gt 0 ] && [ "$1" != -- ]; do eal+=("$1"); shift; done
    [ $# -eq 0 ] || { shift; app=("$@"); }
    # PEER_LOOP_BURSTS a way in all: tx_first sends its bursts on every queue.
    local bursts=$((PEER_LOOP_BURSTS / PEER_QUEUES))
    rm -f "$d/peer.in"
    mkfifo "$d/peer.in" || { PEER_WHY="cannot make the FIFO $d/peer.in"; return 1; }
    exec {PEER_FD}<>"$d/peer.in"
    # --no-lsc-interrupt: testpmd then waits (up to 9 s) for both links to be up before its
    # prompt; with link-state interrupts it checks once and goes on. stdbuf: its answers are
    # printed through stdio, which holds 4 KiB of them back when writing to a file.
    stdbuf -oL dpdk-testpmd --lcores "0@$MAIN_CORE,1@$MAIN_CORE" --no-huge -m "$PEER_MEM_MB" --no-pci \
        --file-prefix "$prefix" "${eal[@]}" \
        -- "${app[@]}" -i --forward-mode=io --eth-peer=0,02:00:00:00:00:00 --eth-peer=1,02:00:00:00:00:01 \
        --txpkts=60 --txonly-multi-flow --no-lsc-interrupt --burst="$BURST" \
        --total-num-mbufs="$PEER_MBUFS" <"$d/peer.in" >"$log" 2>&1 &
    PEER_PID=$!
    TRACKED+=("$PEER_PID")
    for ((i = 0; i < 300; i++)); do
        grep -q "testpmd> " "$log" 2>/dev/null && break
        kill -0 "$PEER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q "testpmd> " "$log" 2>/dev/null; then
        PEER_WHY="peer testpmd did not come to its prompt: $(grep -v '^\s*$' "$log" | tail -n 1)"
        return 1
    fi
    for ((try = 1; try <= 3; try++)); do
        echo "start tx_first $bursts" >&"$PEER_FD"
        for ((i = 0; i < 10; i++)); do
            sleep 0.2
            rx=$(peer_rx "$log") || break
            [ "$rx" = 0 ] || return 0
        done
        echo "stop" >&"$PEER_FD"
    done
    PEER_WHY="the peer's loop did not start: no frame came back after 3 fills ($(grep -v '^\s*$' "$log" | tail -n 1))"
    return 1
}

# peer_rx LOG: the frames the loop peer (its prompt's FIFO PEER_FD, its output LOG) has
# received on both ports, from `show port stats all`; fails if it does not answer in 2 s.
peer_rx() {
    local log=$1 before i
    before=$(grep -ac "Tx-pps:" "$log" || true)
    echo "show port stats all" >&"$PEER_FD"
    for ((i = 0; i < 40; i++)); do
        if [ "$(grep -ac "Tx-pps:" "$log" || true)" -ge $((before + 2)) ]; then
            grep -a "RX-packets:" "$log" | tail -n 2 | awk '{n += $2} END {print n + 0}'
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# ovs_memif_server PROFILE: whether OVS serves memif sockets to the peer in PROFILE (its
# ports then poll 2 rx queues, and the peer has 2 queue pairs: PEER_QUEUES).
ovs_memif_server() { [ "${PROFILE_PORT[$1]:-}" = memif ] && [ -z "${PROFILE_CLIENT[$1]:-}" ]; }

# ovs_peer PROFILE RUN DIR SOCK_A SOCK_B: peer_after for OVS (PEER_QUEUES 2 where
# ovs_memif_server).
ovs_peer() {
    local rc=0
    ! ovs_memif_server "$1" || PEER_QUEUES=2
    peer_after "$1" "ovs-$2" "$3" "$4" "$5" || rc=1
    PEER_QUEUES=1
    return "$rc"
}

# peer_first PROFILE NAME DIR: for a PROFILE_CLIENT profile, starts the peer (the server)
# before the system under test; peer_after PROFILE NAME DIR: for the others, once the
# system's sockets exist. Both return non-zero with PEER_WHY set on failure.
peer_first() {
    [ -z "${PROFILE_CLIENT[$1]:-}" ] || start_peer "$1" "$2" "$3" "$3/a.sock" "$3/b.sock"
}
peer_after() {
    [ -n "${PROFILE_CLIENT[$1]:-}" ] || start_peer "$1" "$2" "$3" "${4:-$3/a.sock}" "${5:-$3/b.sock}"
}

# stop_peer: after the switch (a memif port reads zero statistics once its peer has gone,
# and testpmd-as-switch prints its counts at exit).
stop_peer() {
    [ -z "$PEER_PID" ] || stop_pid "$PEER_PID" INT 10
    PEER_PID=""
    # The loop peer's FIFO, once the peer is gone.
    if [ -n "$PEER_FD" ]; then
        exec {PEER_FD}>&-
        PEER_FD=""
    fi
}

# ---------------------------------------------------------------------------------------------
# vswitch

# measure_vswitch PROFILE RUN PCAP [SYSTEM BIN-DIR]: SYSTEM "vswitch" (the default: this
# tree's target/release) or "baseline" (--baseline: BASE_REL).
measure_vswitch() {
    local profile=$1 run=$2 pcap=$3 system=${4:-vswitch} bin=${5:-$REL}
    local short=vs
    [ "$system" = vswitch ] || short=bl
    local d="$WORK/$system-$profile-$run" prefix="$TAG-$short-$run"
    mkdir -p "$d"
    if [ -n "${PROFILE_MISSING[$profile/$system]:-}" ]; then
        sample "$profile" "$system" "$run" missing "${PROFILE_MISSING[$profile/$system]}"
        return
    fi
    if [ ! -x "$bin/vswitchd" ] || [ ! -x "$bin/vsctl" ]; then
        sample "$profile" "$system" "$run" failed "$bin/vswitchd or vsctl not built"
        return
    fi
    PREFIXES+=("$prefix")
    local sock="$d/s.sock"
    local vsctl=("$bin/vsctl" --socket "$sock")
    local mbufs=()
    [ -z "${PROFILE_MBUFS[$profile]:-}" ] || mbufs=(--mbufs "${PROFILE_MBUFS[$profile]}")
    # cfg: a start-up configuration; setup: what vsctl does after start (the ports unless
    # the configuration has them, then the profile's set-up, if it has one).
    local cfg=() setup=()
    if declare -F "config_vswitch_$profile" >/dev/null; then
        "config_vswitch_$profile" "$pcap" >"$d/config.json"
        cfg=(--config "$d/config.json")
    elif [ "${PROFILE_TOPO[$profile]}" = A ]; then
        config_vswitch_ports "$profile" "$pcap" >"$d/config.json"
        cfg=(--config "$d/config.json")
    else
        setup=(ports_vswitch "$profile" "$pcap" "$d")
    fi
    if ! peer_first "$profile" "$short-$run" "$d"; then
        sample "$profile" "$system" "$run" failed "$PEER_WHY"
        stop_peer
        return
    fi
    "$bin/vswitchd" "${EAL_MEM[@]}" --mem "${PROFILE_MEM[$profile]:-$MEM_MB}" "${mbufs[@]}" --lcores "$MAIN_CORE,$WORKER_CORE" --workers 1 \
        --poll busy --file-prefix "$prefix" --socket "$sock" --state-file "$d/state.json" \
        "${cfg[@]}" >"$d/vswitchd.log" 2>&1 &
    local pid=$!
    TRACKED+=("$pid")
    local i ready=0
    for ((i = 0; i < 200; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        if "${vsctl[@]}" health >/dev/null 2>&1; then ready=1; break; fi
        sleep 0.1
    done
    # What is counted: topology A the sink's tx (`stats sink`, one object); B the tx of a and
    # b (`stats`, every interface: there are only these two).
    local out=(stats sink)
    [ "${PROFILE_TOPO[$profile]}" = A ] || out=(stats)
    local why=""
    SETUP_DIR=$d
    if [ "$ready" != 1 ]; then
        why="vswitchd not ready after 20 s: $(tail -n 1 "$d/vswitchd.log" 2>/dev/null)"
    elif ! { { [ ${#setup[@]} -eq 0 ] || "${setup[@]}" "${vsctl[@]}"; } &&
            { ! declare -F "setup_vswitch_$profile" >/dev/null ||
                "setup_vswitch_$profile" "${vsctl[@]}"; }; } >"$d/vsctl.log" 2>&1; then
        why="configuration failed: $(tail -n 1 "$d/vsctl.log")"
    elif [ "${PROFILE_TOPO[$profile]}" = B ] && ! peer_after "$profile" "$short-$run" "$d"; then
        why=$PEER_WHY
    else
        sleep "$WARMUP"
        local t0 t1
        t0=$(now)
        "${vsctl[@]}" --json workers >"$d/w0.json" 2>>"$d/vsctl.log" &&
            "${vsctl[@]}" --json "${out[@]}" >"$d/s0.json" 2>>"$d/vsctl.log" || why="vsctl sample failed"
        # Per-stage counters, where the build has them (a baseline may predate the graph).
        local stages=()
        "${vsctl[@]}" --json runtime >"$d/r0.json" 2>/dev/null && stages=("$d/r0.json" "$d/r1.json")
        snap "$system" "$profile" 0 "$d" "${vsctl[@]}" || why="snapshot at the window's start failed"
        sleep "$WINDOW"
        t1=$(now)
        SPAN="$t0 $t1"
        "${vsctl[@]}" --json workers >"$d/w1.json" 2>>"$d/vsctl.log" &&
            "${vsctl[@]}" --json "${out[@]}" >"$d/s1.json" 2>>"$d/vsctl.log" || why="vsctl sample failed"
        snap "$system" "$profile" 1 "$d" "${vsctl[@]}" || why="snapshot at the window's end failed"
        if [ ${#stages[@]} -gt 0 ] && ! "${vsctl[@]}" --json runtime >"$d/r1.json" 2>>"$d/vsctl.log"; then
            why="vsctl runtime failed"
        fi
        if [ -z "$why" ]; then
            if ! "$PY" "$PERF/report.py" vswitch "$d/w0.json" "$d/s0.json" "$t0" \
                "$d/w1.json" "$d/s1.json" "$t1" "${stages[@]}" >"$d/result.json" 2>"$d/parse.log"; then
                why="could not read vsctl output: $(tail -n 1 "$d/parse.log")"
            elif ! work_done "$system" "$profile" "$d"; then
                why=$WORK_WHY
            fi
        fi
    fi
    stop_pid "$pid" TERM 15 "$d/stop-stacks.txt"
    local rc=$STOP_RC killed=$STOP_KILLED
    stop_peer
    if [ -n "$why" ]; then
        log "$system run $run: $why (log: $d/vswitchd.log)"
        sample "$profile" "$system" "$run" failed "$why"
        return
    fi
    local note=""
    # CONTRACT.md: SIGTERM is a graceful stop with exit status 0.
    [ "$rc" = 0 ] || note="vswitchd exited with status $rc on SIGTERM"
    [ "$killed" = 0 ] || note="vswitchd did not stop within 15 s of SIGTERM (killed)"
    check "$system" "$profile" "$d"
    sample "$profile" "$system" "$run" ok "$(join_notes "$note" "$CHECK_NOTE")" "$(with_load_s "$d")"
}

# with_load_s DIR: DIR/result.json, plus "load_s" (the table's load time, left by a routed
# profile's set-up) where DIR/load_s exists, plus the fields of DIR/check.json (check), less
# its note.
with_load_s() {
    "$PY" -c 'import json, os, sys
d = json.load(open(os.path.join(sys.argv[1], "result.json")))
p = os.path.join(sys.argv[1], "load_s")
if os.path.exists(p):
    d["load_s"] = float(open(p).read())
c = os.path.join(sys.argv[1], "check.json")
if os.path.exists(c):
    d.update({k: v for k, v in json.load(open(c)).items() if k != "note"})
print(json.dumps(d))' "$1"
}

# snap SYSTEM PROFILE IDX DIR [VSCTL...]: snap_<system>_<profile>, where the profile has one
# (a record of counters at the window's start, IDX 0, and end, 1, for its check).
snap() {
    local system=$1 profile=$2
    shift 2
    [ "$system" != baseline ] || system=vswitch
    ! declare -F "snap_${system}_$profile" >/dev/null || "snap_${system}_$profile" "$@"
}
# check SYSTEM PROFILE DIR: check_<system>_<profile> DIR, where the profile has one: its JSON
# object (stdout) goes to DIR/check.json, its "note" to CHECK_NOTE (a check that cannot run
# says so in the note: the figure stays, the note tells).
CHECK_NOTE=""
check() {
    local system=$1 profile=$2 d=$3
    CHECK_NOTE=""
    [ "$system" != baseline ] || system=vswitch
    declare -F "check_${system}_$profile" >/dev/null || return 0
    if "check_${system}_$profile" "$d" >"$d/check.json" 2>"$d/check.log" && [ -s "$d/check.json" ]; then
        CHECK_NOTE=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("note", ""))' \
            "$d/check.json")
    else
        rm -f "$d/check.json"
        [ ! -s "$d/check.log" ] || CHECK_NOTE="check failed: $(tail -n 1 "$d/check.log")"
    fi
}
join_notes() {
    local a=$1 b=$2
    if [ -n "$a" ] && [ -n "$b" ]; then echo "$a; $b"; else echo "$a$b"; fi
}

# work_done SYSTEM PROFILE DIR: for a profile whose work is checked (PROFILE_STAGE,
# PROFILE_TX_BYTES for vswitch and the baseline, PROFILE_OVS_ACTION for OVS), `report.py work`
# on the measurement's DIR/result.json (OVS: and DIR/dp-flows.txt). Non-zero, with the reason
# in WORK_WHY, when the measurement does not show the work done.
WORK_WHY=""
work_done() {
    local system=$1 profile=$2 d=$3 args=()
    WORK_WHY=""
    if [ "$system" = ovs ]; then
        [ -n "${PROFILE_OVS_ACTION[$profile]:-}" ] || return 0
        args=(--flows "$d/dp-flows.txt" --in-port src --action "${PROFILE_OVS_ACTION[$profile]}")
    else
        [ -z "${PROFILE_STAGE[$profile]:-}" ] || args+=(--stage "${PROFILE_STAGE[$profile]}")
        [ -z "${PROFILE_TX_BYTES[$profile]:-}" ] || args+=(--tx-bytes "${PROFILE_TX_BYTES[$profile]}")
        [ ${#args[@]} -gt 0 ] || return 0
    fi
    "$PY" "$PERF/report.py" work "$d/result.json" "${args[@]}" >"$d/work.log" 2>&1 && return 0
    WORK_WHY="the profile's work was not seen done: $(tail -n 1 "$d/work.log")"
    return 1
}

# The baseline: vswitchd and vsctl built from --baseline REV, measured exactly as vswitch.
measure_baseline() { measure_vswitch "$1" "$2" "$3" baseline "$BASE_REL"; }

# ---------------------------------------------------------------------------------------------
# Floor: dpdk-testpmd io over the same vdevs (topology A: port 0 = pcap source, port 1 = null
# sink; B: ports 0 and 1 = a and b, served to the peer)

measure_floor() {
    local profile=$1 run=$2 pcap=$3
    local d="$WORK/floor-$profile-$run" prefix="$TAG-tp-$run"
    mkdir -p "$d"
    if ! command -v dpdk-testpmd >/dev/null; then
        sample "$profile" floor "$run" failed "dpdk-testpmd not installed (apt-get install dpdk-dev)"
        return
    fi
    PREFIXES+=("$prefix")
    port_devargs "$profile" "$pcap" "$d"
    local mbufs=() eal=()
    [ -z "${PROFILE_MBUFS[$profile]:-}" ] || mbufs=(--total-num-mbufs="${PROFILE_MBUFS[$profile]}")
    # DPDK's zero-copy memif client shares its memory one file per segment list.
    [ -z "${PROFILE_CLIENT[$profile]:-}" ] || eal=(--single-file-segments)
    if ! peer_first "$profile" "tp-$run" "$d"; then
        sample "$profile" floor "$run" failed "$PEER_WHY"
        stop_peer
        return
    fi
    dpdk-testpmd -l "$MAIN_CORE,$WORKER_CORE" "${EAL_MEM[@]}" "${eal[@]}" -m "${PROFILE_MEM[$profile]:-$MEM_MB}" --no-pci \
        --file-prefix "$prefix" --vdev "${DEVARGS[0]}" --vdev "${DEVARGS[1]}" \
        -- "${mbufs[@]}" --forward-mode=io --burst="$BURST" --stats-period 1 --record-core-cycles \
        </dev/null >"$d/testpmd.log" 2>&1 &
    local pid=$!
    TRACKED+=("$pid")
    # testpmd prints statistics every --stats-period from when forwarding starts, which takes
    # seconds with a big pcap / mbuf pool. The periods printed before the traffic starts
    # (topology B: before the peer forwards) and WARMUP more (the first is partial) are
    # skipped; WINDOW periods are measured, and testpmd is stopped once they have been
    # printed. A period is not one second: testpmd's main loop sleeps 1 s and prints when at
    # least 1 s has passed since the last print, so it often prints every other loop (~2 s
    # seen here; each Tx-pps is measured over its own period with the TSC). So the wait is
    # bounded by wall time, generously, not by a count of 1 s steps.
    local i why="" sinks=$OUT_PORTS base=0 n deadline
    for ((i = 0; i < 600; i++)); do
        grep -q "start packet forwarding" "$d/testpmd.log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ "${PROFILE_TOPO[$profile]}" = B ] && ! peer_after "$profile" "tp-$run" "$d"; then
        why=$PEER_WHY
    else
        base=$(grep -ac "NIC statistics for port ${sinks%%,*}" "$d/testpmd.log" || true)
        deadline=$((SECONDS + 3 * (WARMUP + WINDOW) + 15))
        local w0=""
        while ((SECONDS < deadline)); do
            sleep 0.1
            n=$(grep -ac "NIC statistics for port ${sinks##*,}" "$d/testpmd.log" || true)
            # The measured periods start after the skipped ones (to a tenth of a second).
            [ -n "$w0" ] || [ "$n" -lt $((base + WARMUP)) ] || w0=$(now)
            [ "$n" -lt $((base + WARMUP + WINDOW)) ] || break
            kill -0 "$pid" 2>/dev/null || break
        done
        [ -z "$w0" ] || SPAN="$w0 $(now)"
    fi
    # testpmd prints its forward statistics (with cycles/packet) on SIGINT, then re-raises it.
    stop_pid "$pid" INT 15
    local rc=$STOP_RC
    stop_peer
    if [ -z "$why" ] && "$PY" "$PERF/report.py" testpmd "$d/testpmd.log" --sink-port "$sinks" \
        --skip $((base + WARMUP)) --take "$WINDOW" >"$d/result.json" 2>"$d/parse.log"; then
        sample "$profile" floor "$run" ok "" "$(cat "$d/result.json")"
        return
    fi
    [ -n "$why" ] ||
        why="testpmd (exit $rc): $(tail -n 1 "$d/parse.log"); last log line: $(grep -v '^\s*$' "$d/testpmd.log" | tail -n 1)"
    log "floor run $run: $why"
    sample "$profile" floor "$run" failed "$why"
}

# ---------------------------------------------------------------------------------------------
# OVS-DPDK, run as DESIGN.md §4 says: ovs-vswitchd-dpdk directly, private db and run dir.

OVS_VSWITCHD=/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk
OVS_SCHEMA=/usr/share/openvswitch/vswitch.ovsschema

ovs_missing_reason() {
    [ "$OVS" = 1 ] || { echo "skipped by --no-ovs"; return; }
    [ -x "$OVS_VSWITCHD" ] || { echo "openvswitch-switch-dpdk not installed ($OVS_VSWITCHD absent; apt-get install openvswitch-switch-dpdk)"; return; }
    local t
    for t in ovsdb-tool ovsdb-server ovs-vsctl ovs-ofctl ovs-appctl; do
        command -v "$t" >/dev/null || { echo "$t not found (openvswitch-switch)"; return; }
    done
    [ -f "$OVS_SCHEMA" ] || echo "$OVS_SCHEMA absent (openvswitch-common)"
}

measure_ovs() {
    local profile=$1 run=$2 pcap=$3
    # why: OVS cannot run this here (set-up failed): "missing" with the reason, as where it is
    # not installed. failed: OVS ran but its measurement could not be read: a failed sample.
    local d="$WORK/ovs-$profile-$run" prefix="$TAG-ovs-$run" why failed=""
    why=$(ovs_missing_reason)
    [ -n "$why" ] || why=${PROFILE_MISSING[$profile/ovs]:-}
    if [ -n "$why" ]; then
        sample "$profile" ovs "$run" missing "$why"
        return
    fi
    mkdir -p "$d"
    PREFIXES+=("$prefix")
    # OVS_*DIR keep every socket, pid and log file of this instance inside $d.
    export OVS_RUNDIR=$d OVS_DBDIR=$d OVS_LOGDIR=$d OVS_SYSCONFDIR=$d
    local db="unix:$d/db.sock"
    local vsctl=(ovs-vsctl --db="$db" --timeout=30)
    local appctl=(ovs-appctl -t "$d/ovs-vswitchd.ctl")
    OVS_APPCTL=("${appctl[@]}") OVS_VSCTL=("${vsctl[@]}") OVS_DIR=$d
    ovsdb-tool create "$d/conf.db" "$OVS_SCHEMA"
    ovsdb-server "$d/conf.db" --remote="punix:$d/db.sock" --unixctl="$d/ovsdb-server.ctl" \
        --log-file="$d/ovsdb-server.log" >"$d/ovsdb-server.out" 2>&1 &
    local dbpid=$!
    TRACKED+=("$dbpid")
    local i
    for ((i = 0; i < 100; i++)); do
        [ -S "$d/db.sock" ] && break
        sleep 0.1
    done
    local pid="" ns=()
    OVS_NETNS=""
    [ -z "${PROFILE_OVS_NETNS[$profile]:-}" ] || OVS_NETNS="$TAG-ovs-$run"
    if ! "${vsctl[@]}" --no-wait init >"$d/setup.log" 2>&1; then
        why="ovsdb-server did not start: $(tail -n 1 "$d/setup.log")"
    elif [ -n "$OVS_NETNS" ] && ! netns_add "$OVS_NETNS" >>"$d/setup.log" 2>&1; then
        why="cannot make network namespace $OVS_NETNS: $(tail -n 1 "$d/setup.log")"
    elif ! peer_first "$profile" "ovs-$run" "$d"; then
        why=$PEER_WHY
    else
        [ -z "$OVS_NETNS" ] || ns=(ip netns exec "$OVS_NETNS")
        "${vsctl[@]}" --no-wait set Open_vSwitch . other_config:dpdk-init=true \
            "other_config:dpdk-extra=${EAL_MEM[*]/%/ }--legacy-mem --iova-mode=va -m $(ovs_mem "$profile") --no-pci --file-prefix=$prefix" \
            "other_config:dpdk-lcore-mask=0x$(printf %x $((1 << MAIN_CORE)))" \
            "other_config:pmd-cpu-mask=0x$(printf %x $((1 << WORKER_CORE)))" \
            other_config:emc-insert-inv-prob=1 >>"$d/setup.log" 2>&1
        # In a namespace: `ip netns exec` execs OVS (no fork), so $! is OVS's PID.
        "${ns[@]}" "$OVS_VSWITCHD" "$db" --unixctl="$d/ovs-vswitchd.ctl" \
            --log-file="$d/ovs-vswitchd.log" >"$d/ovs-vswitchd.out" 2>&1 &
        pid=$!
        TRACKED+=("$pid")
        SETUP_DIR=$d
        local of=(ovs-ofctl add-flow "unix:$d/br0.mgmt") setup_ok=1
        if [ -n "${PROFILE_OVS_RULES_FIRST[$profile]:-}" ]; then
            { "${vsctl[@]}" add-br br0 -- set bridge br0 datapath_type=netdev \
                    other_config:mac-table-size=262144 &&
                ovs-ofctl del-flows "unix:$d/br0.mgmt" &&
                "setup_ovs_$profile" "${of[@]}" &&
                ports_ovs "$profile" "$pcap" "$d" "${vsctl[@]}"; } >>"$d/setup.log" 2>&1 || setup_ok=0
        else
            { "${vsctl[@]}" add-br br0 -- set bridge br0 datapath_type=netdev \
                    other_config:mac-table-size=262144 &&
                ports_ovs "$profile" "$pcap" "$d" "${vsctl[@]}" &&
                ovs-ofctl del-flows "unix:$d/br0.mgmt" &&
                "setup_ovs_$profile" "${of[@]}"; } >>"$d/setup.log" 2>&1 || setup_ok=0
        fi
        if [ "$setup_ok" = 0 ]; then
            why="setup failed: $(tail -n 1 "$d/setup.log")"
        elif ! kill -0 "$pid" 2>/dev/null; then
            why="ovs-vswitchd-dpdk exited: $(tail -n 1 "$d/ovs-vswitchd.log")"
        else
            local err port
            for port in "${PORTS[@]}"; do
                err=$("${vsctl[@]}" get Interface "$port" error 2>/dev/null || true)
                if [ -n "$err" ] && [ "$err" != '[]' ]; then
                    why="port $port: $err"
                    break
                fi
            done
            # Topology B: dpdkvhostuser sockets are $OVS_RUNDIR/<port>, memif ones as the floor's.
            local sa="$d/a.sock" sb="$d/b.sock"
            [ "${PROFILE_PORT[$profile]:-}" != vhost ] || sa="$d/a" sb="$d/b"
            if [ -n "$why" ]; then
                :
            elif [ "${PROFILE_TOPO[$profile]}" = B ] && ! ovs_peer "$profile" "$run" "$d" "$sa" "$sb"; then
                why=$PEER_WHY
            else
                sleep "$WARMUP"
                # The ports' own counters at both ends of the window: the rate is what the
                # counted ports sent (report.py ovs_delivered), not what the PMD handed them.
                "${appctl[@]}" dpif-netdev/pmd-stats-clear >>"$d/setup.log" 2>&1
                "${appctl[@]}" dpctl/show -s >"$d/dp0.txt" 2>>"$d/setup.log" ||
                    failed="dpctl/show failed: $(tail -n 1 "$d/setup.log")"
                snap ovs "$profile" 0 "$d"
                local w0
                w0=$(now)
                sleep "$WINDOW"
                SPAN="$w0 $(now)"
                "${appctl[@]}" dpif-netdev/pmd-perf-show >"$d/pmd-perf-show.txt" 2>>"$d/setup.log" ||
                    failed="pmd-perf-show failed: $(tail -n 1 "$d/setup.log")"
                "${appctl[@]}" dpctl/show -s >"$d/dp1.txt" 2>>"$d/setup.log" ||
                    failed="dpctl/show failed: $(tail -n 1 "$d/setup.log")"
                snap ovs "$profile" 1 "$d"
                # The datapath flows that did the work (work_done).
                if [ -z "$failed" ] && [ -n "${PROFILE_OVS_ACTION[$profile]:-}" ] &&
                    ! "${appctl[@]}" dpctl/dump-flows --names >"$d/dp-flows.txt" 2>>"$d/setup.log"; then
                    failed="dpctl/dump-flows failed: $(tail -n 1 "$d/setup.log")"
                fi
            fi
        fi
    fi
    local killed=0
    if [ -n "$pid" ]; then
        # OVS re-raises SIGTERM after its cleanup, so a non-zero status is normal here.
        stop_pid "$pid" TERM 15
        killed=$STOP_KILLED
    fi
    stop_peer
    stop_pid "$dbpid" TERM 5
    unset OVS_RUNDIR OVS_DBDIR OVS_LOGDIR OVS_SYSCONFDIR
    [ -z "$OVS_NETNS" ] || netns_del "$OVS_NETNS"
    if [ -n "$why" ]; then
        log "ovs run $run: $why"
        # OVS that is installed but cannot start on this machine is "missing" with the reason.
        sample "$profile" ovs "$run" missing "$why"
        return
    fi
    local outs=() i
    for i in ${OUT_PORTS//,/ }; do outs+=("${PORTS[i]}"); done
    if [ -z "$failed" ] && ! "$PY" "$PERF/report.py" ovs "$d/pmd-perf-show.txt" \
        --dp "$d/dp0.txt" "$d/dp1.txt" --out-ports "$(IFS=,; echo "${outs[*]}")" \
        >"$d/result.json" 2>"$d/parse.log"; then
        failed="could not read pmd-perf-show: $(tail -n 1 "$d/parse.log")"
    fi
    if [ -z "$failed" ] && ! work_done ovs "$profile" "$d"; then
        failed=$WORK_WHY
    fi
    if [ -n "$failed" ]; then
        log "ovs run $run: $failed"
        sample "$profile" ovs "$run" failed "$failed"
        return
    fi
    local note=""
    [ "$killed" = 0 ] || note="ovs-vswitchd-dpdk did not stop within 15 s of SIGTERM (killed)"
    note=$(join_notes "$note" "$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("ovs_note", ""))' "$d/result.json")")
    check ovs "$profile" "$d"
    sample "$profile" ovs "$run" ok "$(join_notes "$note" "$CHECK_NOTE")" "$(with_load_s "$d")"
}

# ---------------------------------------------------------------------------------------------
# Machine and versions (no git command: HEAD is read from .git directly)

git_revision() {
    local g="$ROOT/.git" head ref common
    [ -f "$g" ] && g=$(sed -n 's/^gitdir: //p' "$g")
    [ -f "$g/HEAD" ] || { echo unknown; return; }
    # A linked work tree (git worktree add) keeps HEAD in its own git dir and the branches in
    # the main repository's, which its commondir names (relative to the git dir).
    common=$g
    if [ -f "$g/commondir" ]; then
        common=$(sed -n 1p "$g/commondir")
        [[ "$common" == /* ]] || common="$g/$common"
    fi
    head=$(cat "$g/HEAD")
    case "$head" in
        ref:*)
            ref=${head#ref: }
            if [ -f "$g/$ref" ]; then cat "$g/$ref"
            elif [ -f "$common/$ref" ]; then cat "$common/$ref"
            elif [ -f "$common/packed-refs" ] && grep -q " $ref\$" "$common/packed-refs"; then
                grep " $ref\$" "$common/packed-refs" | cut -d' ' -f1
            else echo "unknown (no commit on ${ref#refs/heads/} yet)"; fi ;;
        *) echo "$head" ;;
    esac
}

# Other forwarding processes, builds or load on this 2-core machine skew every number: record
# them at the start and around every measurement.
others() {
    local mine=" ${TRACKED[*]} "
    ps -eo pid=,comm= | awk -v mine="$mine" '
        $2 ~ /^(vswitchd|dpdk-testpmd|ovs-vswitchd|ovs-vswitchd-dpdk|cargo|rustc|cc1|ld)$/ &&
        index(mine, " " $1 " ") == 0 { printf "%s%s(%s)", sep, $2, $1; sep = " " }'
}

QUIET=""
check_quiet() {
    local load busy
    load=$(cut -d' ' -f1 /proc/loadavg)
    busy=$(others)
    QUIET="load average $load at start"
    if [ -n "$busy" ]; then
        QUIET="NO: also running: $busy; $QUIET"
        log "warning: the machine is not quiet ($busy): the figures will be skewed"
    elif awk "BEGIN{exit !($load > 1.0)}"; then
        QUIET="NO: $QUIET"
        log "warning: load average $load: the figures may be skewed"
    else
        QUIET="yes: $QUIET"
    fi
}

write_meta() {
    local tsc_fallback
    # DPDK's TSC rate comes from testpmd's exit line; this is only used if no floor run succeeded.
    tsc_fallback=$(dmesg 2>/dev/null | sed -n 's/.*tsc: Refined TSC clocksource calibration: \([0-9.]*\) MHz.*/\1/p;s/.*tsc: Detected \([0-9.]*\) MHz processor.*/\1/p' | tail -n 1)
    [ -n "$tsc_fallback" ] && tsc_fallback=$(awk "BEGIN{print $tsc_fallback * 1e6}")
    {
        printf 'date\t%s\n' "$(date +%F)"
        printf 'git_revision\t%s\n' "$(git_revision)"
        printf 'build\t%s\n' "$BUILT"
        printf 'args\t%s\n' "$ARGS"
        if [ -n "$BASELINE" ]; then
            # git is used anyway with --baseline: record whether the measured tree is HEAD.
            if [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
                printf 'git_dirty\t1\n'
            else
                printf 'git_dirty\t0\n'
            fi
            printf 'baseline_arg\t%s\nbaseline_revision\t%s\n' "$BASELINE" "$BASE_REV"
        fi
        printf 'cpu_model\t%s\n' "$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
        printf 'nproc\t%s\n' "$(nproc)"
        printf 'kernel\t%s\n' "$(uname -r)"
        printf 'dpdk\t%s\n' "$(pkg-config --modversion libdpdk 2>/dev/null ||
            dpkg-query -W -f '${Version}' dpdk 2>/dev/null || echo unknown)"
        printf 'ovs\t%s\n' "$([ -x "$OVS_VSWITCHD" ] && "$OVS_VSWITCHD" --version | head -n 1 || echo "not installed")"
        printf 'rustc\t%s\n' "$(rustc --version 2>/dev/null || echo unknown)"
        printf 'quiet\t%s\n' "$QUIET"
        printf 'memory\t%s\n' "$MEMORY_NOTE"
        # Wall time of the whole run so far (builds included), in seconds.
        printf 'elapsed_s\t%s\n' "$SECONDS"
        printf 'quick\t%s\nruns\t%s\nwarmup_s\t%s\nwindow_s\t%s\nburst\t%s\nworker_core\t%s\n' \
            "$QUICK" "$RUNS" "$WARMUP" "$WINDOW" "$BURST" "$WORKER_CORE"
        [ -z "$tsc_fallback" ] || printf 'tsc_hz_fallback\t%s\n' "$tsc_fallback"
    } >"$WORK/meta.tsv"
}

# ---------------------------------------------------------------------------------------------
# Main

cd "$ROOT"
# sudo drops ~/.cargo/bin from PATH.
if [ "$CARGO" = cargo ] && ! command -v cargo >/dev/null; then
    for c in "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" /root/.cargo/bin/cargo; do
        [ -x "$c" ] && { CARGO=$c; break; }
    done
fi
# A build that fails fails the run, before anything is measured: never benchmark whatever
# binaries target/ holds under this tree's revision.
if [ "$BUILD" = 1 ]; then
    log "building release binaries (vswitchd, vsctl, vswitch-cni, vswitch-pktgen) with $CARGO"
    rc=0
    "$CARGO" build --release -p perf || rc=$?
    [ "$rc" = 0 ] || die "'$CARGO build --release -p perf' failed (exit $rc); nothing measured, no results written"
    "$CARGO" build --release -p vswitch-control -p vswitch-cni || rc=$?
    [ "$rc" = 0 ] || die "'$CARGO build --release -p vswitch-control -p vswitch-cni' failed (exit $rc); nothing measured, no results written"
    BUILT="built by this run from the work tree ($CARGO build --release)"
else
    BUILT="--no-build: target/release as found (vswitchd modified $(date -r "$REL/vswitchd" '+%F %T' 2>/dev/null || echo '?'))"
fi
if [ -n "$BASELINE" ]; then
    command -v git >/dev/null || die "--baseline needs git"
    BASE_REV=$(git -C "$ROOT" rev-parse --verify --quiet "$BASELINE^{commit}") ||
        die "--baseline $BASELINE: not a commit in $ROOT"
    BASE_DIR=$(mktemp -d /tmp/vswitch-perf-baseline.XXXXXX)
    BASE_TREE="$BASE_DIR/tree"
    log "baseline $BASELINE = $BASE_REV: work tree $BASE_TREE"
    git -C "$ROOT" worktree add --detach "$BASE_TREE" "$BASE_REV" >"$WORK/worktree.log" 2>&1 ||
        die "git worktree add $BASE_TREE $BASE_REV failed: $(tail -n 1 "$WORK/worktree.log")"
    # Its own target dir, kept between runs (dependencies are not rebuilt every time); a
    # failed build exits here, so a previous revision's binaries in it are never measured.
    BASE_TARGET=${BASELINE_TARGET_DIR:-$ROOT/target/perf-baseline}
    log "building the baseline's vswitchd and vsctl (target dir $BASE_TARGET)"
    rc=0
    (cd "$BASE_TREE" && CARGO_TARGET_DIR="$BASE_TARGET" "$CARGO" build --release -p vswitch-control) || rc=$?
    [ "$rc" = 0 ] || die "baseline build ($BASELINE = $BASE_REV, '$CARGO build --release -p vswitch-control') failed (exit $rc); nothing measured, no results written"
    BASE_REL="$BASE_TARGET/release"
    SYSTEMS=(vswitch baseline floor ovs)
fi
[ -x "$REL/vswitch-pktgen" ] || { echo "perf/run.sh: $REL/vswitch-pktgen missing (drop --no-build)" >&2; exit 2; }
"$PY" "$PERF/report.py" selftest >/dev/null
check_quiet
start_probe

: >"$WORK/samples.jsonl"
: >"$WORK/profiles.tsv"
for profile in "${PROFILES[@]}"; do
    pcap="" packets=0
    DST_MACS="$WORK/$profile.dst-macs"
    TABLE="$WORK/$profile.table"
    if [ "${PROFILE_TOPO[$profile]}" = A ]; then
        pcap="$WORK/$profile.pcap"
        table=()
        [ -z "${PROFILE_TABLE[$profile]:-}" ] || table=(--table-out "$TABLE")
        # shellcheck disable=SC2086 # the generator arguments are words
        "$REL/vswitch-pktgen" ${PROFILE_GEN[$profile]} --out "$pcap" --dst-macs-out "$DST_MACS" \
            "${table[@]}" 2>"$WORK/$profile.gen.log"
        packets=$(sed -n 's/^vswitch-pktgen: \([0-9]*\) packets.*/\1/p' "$WORK/$profile.gen.log")
    fi

    peer=""
    [ "${PROFILE_TOPO[$profile]}" != B ] || peer=${PROFILE_PEER[$profile]:-flowgen}
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$profile" "${PROFILE_TOPO[$profile]}" \
        "${PROFILE_DESC[$profile]}" "${PROFILE_GEN[$profile]:-}" "$packets" "$peer" >>"$WORK/profiles.tsv"
    runs=$RUNS
    # The cap is for OVS's set-up time: without OVS, every run asked for is made.
    [ "$OVS" = 0 ] || [ -z "${PROFILE_MAX_RUNS[$profile]:-}" ] ||
        [ "$runs" -le "${PROFILE_MAX_RUNS[$profile]}" ] || runs=${PROFILE_MAX_RUNS[$profile]}
    for ((run = 1; run <= runs; run++)); do
        # Rotate the order every run so no system always runs first (or after the same one).
        for ((k = 0; k < ${#SYSTEMS[@]}; k++)); do
            system=${SYSTEMS[$(((run - 1 + k) % ${#SYSTEMS[@]}))]}
            log "$profile run $run/$runs: $system"
            BUSY_BEFORE=$(others)
            "measure_$system" "$profile" "$run" "$pcap"
        done
    done
done

write_meta
if [ -z "$OUT" ]; then
    if [ "$QUICK" = 1 ]; then OUT="$WORK"; else OUT="$PERF/results"; fi
fi
mkdir -p "$OUT"
date=$(date +%F)
"$PY" "$PERF/report.py" write --samples "$WORK/samples.jsonl" --meta "$WORK/meta.tsv" \
    --profiles "$WORK/profiles.tsv" --md "$OUT/$date.md" --json "$OUT/$date.json"
if [ "$OUT" != "$WORK" ] || [ "$KEEP" = 1 ]; then log "wrote $OUT/$date.md and $OUT/$date.json"; fi
"$PY" "$PERF/report.py" check --samples "$WORK/samples.jsonl"
