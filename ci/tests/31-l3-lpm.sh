#!/usr/bin/env bash
# LPM exactness against the Linux kernel: the same random prefixes (10,000 IPv4 of mixed
# lengths, /1 to /32, and 2,000 IPv6, /16 to /128, plus a default route of each family)
# are installed in a network namespace's kernel FIB (ip -batch) and in the switch (one vsctl
# transaction); for 10,000 random IPv4 and 2,000 IPv6 addresses, `vsctl route get` (the
# dataplane's FIB, the lookup the workers do) must name the same prefix as the kernel's
# `ip route get fibmatch`, every time. Then half the routes are deleted from both and the
# addresses are looked up again (deletes uncover the shorter prefixes below them).
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "31-l3-lpm"
start_vswitchd

NS=$(vs_ifname lpm)
vs_netns_add "$NS"
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=0
ip netns exec "$NS" sysctl -qw net.ipv6.conf.default.disable_ipv6=0
# The kernel's routes go out of a veth inside the namespace, through a gateway in its
# subnet: 10.255.0.2 and fd00:255::2 (nothing else is in 10.255.0.0/24 or fd00:255::/64).
ip -n "$NS" link add v0 type veth peer name v1
ip -n "$NS" addr add 10.255.0.1/24 dev v0
ip -n "$NS" addr add fd00:255::1/64 dev v0 nodad
ip -n "$NS" link set v0 up
ip -n "$NS" link set v1 up

# The switch: the same subnets on a null interface.
run_ok "the switch's uplink" vsctl iface add up0 null
run_ok "its IPv4 address" vsctl addr add up0 10.255.0.1/24
run_ok "its IPv6 address" vsctl addr add up0 fd00:255::1/64

# The routes, their deletes and the probes (ci/lpm_routes.py; 39-l3-lpm-packets uses it too).
"$VS_PY" "$VS_ROOT/ci/lpm_routes.py" "$VS_TMP" --seed 31 --v4 10000 --v6 2000 \
    --gw4 10.255.0.2 --gw6 fd00:255::2 --exclude 10.255.0.0/24 --exclude fd00:255::/64 \
    --probes4 10000 --probes6 2000 || fail "ci/lpm_routes.py failed"

# compare FAMILY: the kernel's fibmatch and the switch's route get of every probe.
compare() {
    local fam=$1 probes=$VS_TMP/probes$1
    sed 's/^/route get fibmatch /' "$probes" | ip -n "$NS" -batch - >"$VS_TMP/kernel.out" 2>&1 ||
        fail "ip route get fibmatch failed: $(head -3 "$VS_TMP/kernel.out")"
    # A few thousand addresses per call (one argument may not pass 128 KiB).
    rm -f "$VS_TMP"/chunk.* "$VS_TMP/switch.jsonl"
    split -l 2000 "$probes" "$VS_TMP/chunk."
    local c
    for c in "$VS_TMP"/chunk.*; do
        vsctl --json route get "$(paste -sd, "$c")" >>"$VS_TMP/switch.jsonl" ||
            fail "vsctl route get failed"
        echo >>"$VS_TMP/switch.jsonl"
    done
    "$VS_PY" - "$probes" "$VS_TMP/kernel.out" "$VS_TMP/switch.jsonl" "$fam" <<'PY'
import ipaddress, json, sys
probes = open(sys.argv[1]).read().split()
kernel = [l.split()[0] for l in open(sys.argv[2]) if l.strip()]
# One JSON document per call: an array (or one object for a single address).
dec, text, switch = json.JSONDecoder(), open(sys.argv[3]).read(), []
i = 0
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i == len(text):
        break
    doc, i = dec.raw_decode(text, i)
    switch += [r["prefix"] for r in (doc if isinstance(doc, list) else [doc])]
fam = sys.argv[4]
def norm(p):
    if p == "default":
        return "0.0.0.0/0" if fam == "4" else "::/0"
    return str(ipaddress.ip_network(p))
assert len(kernel) == len(probes) == len(switch), (len(kernel), len(probes), len(switch))
bad = [(a, k, s) for a, k, s in zip(probes, map(norm, kernel), switch) if k != s]
for a, k, s in bad[:5]:
    print(f"  {a}: kernel {k}, switch {s}")
print(f"{len(probes) - len(bad)} of {len(probes)} equal")
sys.exit(1 if bad else 0)
PY
}

# check FAMILY WHEN: compare, and fail with the differences shown.
check() {
    local out
    out=$(compare "$1") || fail "IPv$1 lookups $2 differ from the kernel's:"$'\n'"$out"
    log "IPv$1 $2: $out"
}

ip -n "$NS" -batch "$VS_TMP/kernel.batch" || fail "the kernel refused a route"
run_ok "12,002 routes in one transaction" vsctl transaction "$VS_TMP/switch.txt"
check 4 "with every route"
check 6 "with every route"

ip -n "$NS" -batch "$VS_TMP/kernel-del.batch" || fail "the kernel refused a route delete"
run_ok "6,000 route deletes in one transaction" vsctl transaction "$VS_TMP/switch-del.txt"
check 4 "after the deletes"
check 6 "after the deletes"

vs_pass
