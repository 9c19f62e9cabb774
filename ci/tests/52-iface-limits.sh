#!/usr/bin/env bash
# The interface limit and DPDK's own limits, as an operator meets them:
# - vswitchd --max-interfaces 3: the fourth interface (a port, a bridge's routed interface
#   or a tunnel) is refused in one line that names the limit, and nothing changes; after a
#   delete there is room again;
# - DPDK's ethdev port table (RTE_MAX_ETHPORTS, 32 in Debian's build): with it full, the next
#   DPDK-backed interface is refused in one line that says so, nothing changes;
# - a looping pcap too big for the buffer pool is refused with DPDK's real reason (the
#   driver's log: "At least N mbufs per queue is required"), not a bare "Invalid argument".
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "52-iface-limits"

state() {
    vsctl --json iface list | vs_json 'sorted(i["name"] for i in d)'
    vsctl --json bridge list | vs_json 'sorted(b["name"] for b in d)'
}
refused() { vs_refused state "$@"; }

# --- A configured limit of 3 --------------------------------------------------------------
VSWITCHD_EXTRA=(--max-interfaces 3)
start_vswitchd
run_ok "add n1" vsctl iface add n1 null >/dev/null
run_ok "add n2" vsctl iface add n2 null >/dev/null
run_ok "add br (its routed interface is the third)" vsctl bridge add br >/dev/null
VS_BEFORE=$(state)
refused 'at its limit of 3 interfaces.*--max-interfaces' iface add n3 null
refused 'bridge "br2".*limit of 3 interfaces' bridge add br2
# A transaction that would pass the limit changes nothing, not even its first command's.
printf 'iface del n2\niface add n3 null\niface add n4 null\n' >"$VS_TMP/over.txt"
refused 'limit of 3 interfaces' transaction "$VS_TMP/over.txt"
run_ok "delete n2" vsctl iface del n2 >/dev/null
run_ok "add n3 in its place" vsctl iface add n3 null >/dev/null
assert_eq "$(vsctl --json iface list | vs_json 'len(d)')" 2 "ports after the swap"
stop_vswitchd
if "$VSWITCHD_BIN" --max-interfaces 0 --file-prefix "${VS_TAG}bad" --no-huge \
    --socket "$VS_TMP/bad.sock" >"$VS_TMP/bad.log" 2>&1; then
    fail "vswitchd --max-interfaces 0 started"
fi
grep -q -- '--max-interfaces must be from 1 to 1024, not 0' "$VS_TMP/bad.log" ||
    fail "vswitchd --max-interfaces 0: unclear error: $(cat "$VS_TMP/bad.log")"

# --- DPDK's port table and a pcap too big for the pool ------------------------------------
VSWITCHD_EXTRA=(--mbufs 4096)
start_vswitchd
# Fill DPDK's port table with null ports (sinks), in one transaction.
max=$(grep -hs '^#define RTE_MAX_ETHPORTS' /usr/include/*/dpdk/rte_build_config.h \
    /usr/include/dpdk/rte_build_config.h | awk '{print $3; exit}' || true)
[[ "$max" =~ ^[0-9]+$ ]] || fail "RTE_MAX_ETHPORTS not found in DPDK's rte_build_config.h"
for ((i = 0; i < max; i++)); do echo "iface add p$i null"; done >"$VS_TMP/fill.txt"
run_ok "add $max null ports" vsctl transaction "$VS_TMP/fill.txt" >/dev/null
assert_eq "$(vsctl --json iface list | vs_json 'len(d)')" "$max" "ports"
VS_BEFORE=$(state)
refused "port table is full.*holds $max ethdev ports" iface add one-more null

# A looping pcap of 6000 frames needs more mbufs than the 4096 in the pool (net_pcap keeps
# the whole file in mbufs). Room first: one port less.
run_ok "delete p0" vsctl iface del p0 >/dev/null
"$VS_PY" - "$VS_TMP/big.pcap" <<'ZZEOF'
import struct, sys
frame = bytes.fromhex("ffffffffffff020000000001") + b"\x08\x00" + bytes(46)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for i in range(6000):
        f.write(struct.pack("<IIII", i, 0, len(frame), len(frame)) + frame)
ZZEOF
VS_BEFORE=$(state)
refused 'rx queue 0.*Invalid argument.*At least [0-9]+ mbufs per queue is required' \
    iface add big pcap rx="$VS_TMP/big.pcap" loop=on
vs_refused_report
stop_vswitchd
vs_pass
