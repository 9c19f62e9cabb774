#!/usr/bin/env bash
# LPM by packets: 10,000 random IPv4 prefixes of mixed lengths (ci/lpm_routes.py, as in
# 31-l3-lpm) spread at random over four gateways, 10.255.1.2 to 10.255.4.2 (next-hop
# namespaces n1-n4, each behind its own routed af_packet interface, resolved by ARP), plus a
# default route via n1, in the switch and in a network namespace's kernel FIB alike. scapy
# in host s sends one UDP datagram to each of 200 random destinations (80% inside the
# prefixes); every datagram must arrive, once, at the next-hop namespace whose gateway the
# kernel's `ip route get fibmatch` names (n1-n4 capture with scapy), and nowhere else.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=ci/l2lib.sh
source "$(dirname "$0")/../l2lib.sh"

N=200
vs_test_init "39-l3-lpm-packets"
l2_need_scapy
start_vswitchd

vs_host s 10.255.0.2/24
NSS=$VS_NS
ip -n "$NSS" route add default via 10.255.0.1
run_ok "routed interface rs" vsctl iface add rs af_packet iface="$VS_HOSTIF"
run_ok "rs's address" vsctl addr add rs 10.255.0.1/24
declare -A NH=()
for k in 1 2 3 4; do
    vs_host "n$k" "10.255.$k.2/24"
    NH[$k]=$VS_NS
    ip -n "$VS_NS" route add default via "10.255.$k.1"
    run_ok "routed interface r$k" vsctl iface add "r$k" af_packet iface="$VS_HOSTIF"
    run_ok "r$k's address" vsctl addr add "r$k" "10.255.$k.1/24"
done

# The kernel's FIB: the same connected subnets (on one veth inside the namespace).
ORACLE=$(vs_ifname fib)
vs_netns_add "$ORACLE"
ip -n "$ORACLE" link add v0 type veth peer name v1
for k in 0 1 2 3 4; do ip -n "$ORACLE" addr add "10.255.$k.1/24" dev v0; done
ip -n "$ORACLE" link set v0 up
ip -n "$ORACLE" link set v1 up

"$VS_PY" "$VS_ROOT/ci/lpm_routes.py" "$VS_TMP" --seed 39 --v4 10000 --v6 0 \
    --gw4 10.255.1.2,10.255.2.2,10.255.3.2,10.255.4.2 --exclude 10.255.0.0/16 \
    --probes4 "$N" --probes6 0 --unique-probes || fail "ci/lpm_routes.py failed"
ip -n "$ORACLE" -batch "$VS_TMP/kernel.batch" || fail "the kernel refused a route"
run_ok "10,001 routes in one transaction" vsctl transaction "$VS_TMP/switch.txt"
for k in 1 2 3 4; do
    log "routes via n$k: $(grep -c " via 10.255.$k.2$" "$VS_TMP/switch.txt")"
done

# Where the kernel sends each probe: "ADDR K" (K: the gateway 10.255.K.2).
sed 's/^/route get fibmatch /' "$VS_TMP/probes4" | ip -n "$ORACLE" -batch - >"$VS_TMP/kernel.out" 2>&1 ||
    fail "ip route get fibmatch failed: $(head -3 "$VS_TMP/kernel.out")"
paste -d' ' "$VS_TMP/probes4" <(sed -n 's/.* via 10\.255\.\([1-4]\)\.2 .*/\1/p' "$VS_TMP/kernel.out") \
    >"$VS_TMP/oracle"
assert_int -eq "$(awk 'NF == 2' "$VS_TMP/oracle" | wc -l)" "$N" "probes with a gateway from the kernel"

# The switch resolves the four gateways (ARP) before the datagrams need them.
for k in 1 2 3 4; do
    wait_until 15 "ping s -> n$k" ip netns exec "$NSS" ping -c 1 -W 1 "10.255.$k.2"
done
for k in 1 2 3 4; do
    sniff_start "n$k" "${NH[$k]}"
done
for k in 1 2 3 4; do
    sniff_ready "n$k"
    sniff_mark "n$k" "r$k"
done

MAC_RS=$(vsctl --json iface show rs | vs_json 'mac(d["mac"])')
ip netns exec "$NSS" env PYTHONPATH="$VS_SCAPY_DIR" "$VS_PY" - "$MAC_RS" "$VS_TMP/probes4" <<'PY' ||
import sys, time
from l2common import IP, UDP, Ether, Raw, open_socket
smac = open("/sys/class/net/eth0/address").read().strip()
sock = open_socket("eth0")
for i, dst in enumerate(open(sys.argv[2]).read().split()):
    sock.outs.send(bytes(Ether(src=smac, dst=sys.argv[1]) / IP(src="10.255.0.2", dst=dst) /
                         UDP(sport=39000, dport=39) / Raw(b"lpm-%04d" % i)))
    time.sleep(0.002)
PY
    fail "the sender in s failed"

# probes_at_next_hops N: status only: the captures hold N datagrams from s in all.
probes_at_next_hops() {
    local k n total=0
    for k in 1 2 3 4; do
        n=$(sniff_count "n$k" 'f.get("proto") == 17 and f.get("ip_src") == "10.255.0.2"') || return 1
        total=$((total + n))
    done
    ((total >= $1))
}
wait_until 15 "$N datagrams at the next hops" probes_at_next_hops "$N"
sniff_settle n1 n2 n3 n4
sniff_stop n1 n2 n3 n4

# Every probe once, at the namespace the kernel named.
out=$("$VS_PY" - "$VS_TMP" <<'PY' 2>&1
import collections, json, sys
d = sys.argv[1]
want = dict(line.split() for line in open(f"{d}/oracle"))
seen = collections.defaultdict(list)
for k in "1234":
    for line in open(f"{d}/sniff-n{k}.jsonl"):
        f = json.loads(line)
        if "error" in f:
            sys.exit(f"n{k} captured a frame it could not parse: {f['error']}")
        if f.get("proto") == 17 and f.get("ip_src") == "10.255.0.2":
            seen[f["ip_dst"]].append(k)
bad = []
for a, k in want.items():
    if seen.get(a) != [k]:
        bad.append(f"{a}: the kernel says n{k}, it arrived at {['n' + x for x in seen.get(a, [])] or 'none'}")
bad += [f"{a}: not a probe, arrived at n{seen[a]}" for a in seen if a not in want]
per = collections.Counter(want.values())
print("the kernel's next hops: " + ", ".join(
    f"n{k} {per[k]}" for k in sorted(per)) + f"; {len(want) - len(bad)} of {len(want)} right")
for b in bad[:10]:
    print("  " + b)
sys.exit(1 if bad else 0)
PY
) || {
    # What the switch's FIB says for the first misses, beside the kernel's answer.
    miss=$(grep -o '^  [0-9.]*' <<<"$out" | head -5 | tr -d ' ' | paste -sd,)
    [[ -z "$miss" ]] || out+=$'\n'"switch route get: $(vsctl --json route get "$miss" 2>&1 | head -c 1500)"
    fail "datagrams did not leave where the kernel's FIB sends them:"$'\n'"$out"
}
log "$N datagrams to random destinations: $out"
for k in 1 2 3 4; do
    grep -q " $k\$" "$VS_TMP/oracle" || fail "no probe goes via n$k: the sample does not cover every next hop"
done

vs_pass
