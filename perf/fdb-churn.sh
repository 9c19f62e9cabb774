#!/usr/bin/env bash
# perf/fdb-churn.sh: the MAC-table churn of issue 10 against the real daemon. A new source MAC
# per frame for --seconds (default 300) into a learning bridge with age=5, at a rate that keeps
# ~150k-200k live entries in the daemon's 262,144-slot table; every --interval seconds (10)
# it prints the learning drops (fdb_full, fdb_limit, learn_queue_full), the bridge's learned
# count and the switch's rx counters, then a summary. Exit 1 if fdb_full grew (or the run
# broke); a slower rate than asked is reported, not failed.
#
#   perf/fdb-churn.sh [--seconds N] [--pps N] [--macs N] [--fdb-size N] [--age S]
#                     [--interval S] [--mac-pattern pktgen|scattered]
#
# Topology: namespace G (eth0) --veth-- host end -> af_packet interface g of the switch; a
# second member s (a veth into namespace S, which drops what it gets) so the bridge has
# somewhere to flood. Bridge br0: age=S, learn-limit = the table's slots (the default limit,
# 65536, would refuse most of the churn as fdb_limit instead of testing the table).
#
# Traffic: tcpreplay --pps in namespace G, looping a pcap of --macs (1M) frames from as many
# distinct source MACs (vswitch-pktgen --profile l2: 64 B UDP frames to as many unknown
# destination MACs, so every frame is flooded to s). A MAC comes round again only after
# macs / pps seconds (30 s at the defaults), long after it aged, so every frame is a new MAC
# to the switch. The rate achieved is taken from the switch's own rx counter of g.
# --mac-pattern scattered: the pcap is written by a few lines of python instead, source MACs
# 02:xx:xx:xx:xx:xx with 40 well-mixed bits (pktgen's are 02:00 + a 32-bit affine scatter,
# which the MAC table's hash before commit 0db62c5 piled into few home slots: see
# perf/results/2026-12-01-fdb-hash-keys.log and perf/examples/fdb_churn.rs --keys pktgen).
#
# Binaries: $VSWITCHD (default target/release/vswitchd), $VSCTL and $PKTGEN (default: vsctl
# and vswitch-pktgen next to $VSWITCHD). Build them with `cargo build --release -p
# vswitch-control -p perf`. Needs root, tcpreplay, python3. Every object it makes (namespaces,
# veths, the daemon with its own socket, state file and --file-prefix under a temp dir) is
# named from a per-run tag and removed by name and PID at exit (ci/lib.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=ci/lib.sh
source "$ROOT/ci/lib.sh"

SECONDS_RUN=300
PPS=33000
MACS=1000000
FDB_SIZE=262144
AGE=5
INTERVAL=10
PATTERN=pktgen

usage() {
    sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

while (($# > 0)); do
    case $1 in
    --seconds) SECONDS_RUN=$2 ;;
    --pps) PPS=$2 ;;
    --macs) MACS=$2 ;;
    --fdb-size) FDB_SIZE=$2 ;;
    --age) AGE=$2 ;;
    --interval) INTERVAL=$2 ;;
    --mac-pattern)
        [[ "${2:-}" == pktgen || "${2:-}" == scattered ]] || {
            echo "fdb-churn.sh: --mac-pattern pktgen or scattered, not '${2:-}'" >&2
            exit 2
        }
        PATTERN=$2
        shift 2
        continue
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        echo "fdb-churn.sh: unknown option $1" >&2
        exit 2
        ;;
    esac
    [[ "${2:-}" =~ ^[0-9]+$ && "$2" -gt 0 ]] || {
        echo "fdb-churn.sh: $1 needs a positive integer, not '${2:-}'" >&2
        exit 2
    }
    shift 2
done
# Every MAC must have aged before it comes round again (aging removes entries unseen for
# more than AGE s, at a 1 s tick): else it is refreshed, not learned anew.
((MACS > PPS * (AGE + 2))) || {
    echo "fdb-churn.sh: --macs $MACS comes round in $((MACS / PPS)) s at $PPS pps; needs > age + 2 = $((AGE + 2)) s" >&2
    exit 2
}

VSWITCHD_BIN=${VSWITCHD:-$ROOT/target/release/vswitchd}
BIN_DIR=$(dirname "$VSWITCHD_BIN")
VSCTL_BIN=${VSCTL:-$BIN_DIR/vsctl}
PKTGEN_BIN=${PKTGEN:-$BIN_DIR/vswitch-pktgen}
# Own tag (not the tests' vst): this script's namespaces, links and prefixes are vsc<PID>*.
VS_TAG="vsc$$"

vs_test_init "fdb-churn"
[[ -x "$PKTGEN_BIN" ]] || fail "$PKTGEN_BIN missing: cargo build --release -p perf"
command -v tcpreplay >/dev/null || fail "tcpreplay missing (apt-get install tcpreplay)"

log "vswitchd $VSWITCHD_BIN ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ', dirty tree'))"
log "settings: $SECONDS_RUN s at $PPS pps asked, $MACS source MACs ($PATTERN) looped ($((MACS / PPS)) s a loop), fdb-size $FDB_SIZE, age $AGE s, sample every $INTERVAL s"
log "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg); $(uname -r); $(tcpreplay --version 2>&1 | head -n 1)"

# The traffic: one frame per source MAC.
pcap=$VS_TMP/churn.pcap
if [[ $PATTERN == pktgen ]]; then
    "$PKTGEN_BIN" --profile l2 --size 64 --flows 1024 --macs "$MACS" --count "$MACS" --seed 1 \
        --out "$pcap" >"$VS_TMP/pktgen.log" 2>&1 || fail "vswitch-pktgen failed: $(cat "$VS_TMP/pktgen.log")"
else
    # 60 B frames (64 with FCS): to an unknown unicast MAC (flooded), from MAC n = 02 + a
    # 40-bit bijective mix of n, IPv4/UDP with a valid header checksum.
    "$VS_PY" - "$pcap" "$MACS" >"$VS_TMP/pktgen.log" 2>&1 <<'EOF' || fail "pcap writer failed: $(cat "$VS_TMP/pktgen.log")"
import struct, sys
path, count = sys.argv[1], int(sys.argv[2])
M = (1 << 40) - 1
def mix40(x):
    x = (x * 0x9E3779B97F4B) & M
    x ^= x >> 19
    x = (x * 0xC2B2AE3D27D5) & M
    return x ^ (x >> 23)
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF
dst = bytes.fromhex("02ff00000001")
payload = bytes(18)
udp = struct.pack("!HHHH", 1024, 1024, 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                 bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
body = b"\x08\x00" + ip + udp
rec = struct.pack("<IIII", 0, 0, 14 + len(ip) + len(udp), 14 + len(ip) + len(udp))
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for n in range(count):
        src = b"\x02" + mix40(n).to_bytes(5, "big")
        f.write(rec + dst + src + body)
print("%d frames of %d B from %d scattered source MACs to %s" % (count, 14 + len(ip) + len(udp), count, dst.hex(":")))
EOF
fi
log "pcap ($PATTERN): $(cat "$VS_TMP/pktgen.log")"

VSWITCHD_EXTRA=(--fdb-size "$FDB_SIZE")
start_vswitchd
vs_host g ""
nsg=$VS_NS hg=$VS_HOSTIF
vs_host s ""
hs=$VS_HOSTIF
run_ok "iface add g" vsctl iface add g af_packet iface="$hg" >/dev/null
run_ok "iface add s" vsctl iface add s af_packet iface="$hs" >/dev/null
# The table's slots: --fdb-size rounded up to a power of two, as vswitchd does.
slots=1
while ((slots < FDB_SIZE)); do slots=$((slots * 2)); done
run_ok "bridge add br0" vsctl bridge add br0 age="$AGE" learn-limit="$slots" >/dev/null
run_ok "attach g" vsctl bridge attach br0 g >/dev/null
run_ok "attach s" vsctl bridge attach br0 s >/dev/null
log "bridge br0: $(vsctl --json bridge show br0)"

# sample: one line of "rx_g tx_s learned fdb_full fdb_limit learn_queue_full busy_pct" from
# the switch (one python for the four documents).
sample() {
    local drops br sg ss wk
    drops=$(vsctl --json drops) && br=$(vsctl --json bridge show br0) &&
        sg=$(vsctl --json stats g) && ss=$(vsctl --json stats s) &&
        wk=$(vsctl --json workers) || return 1
    "$VS_PY" -c '
import json, sys
d, b, g, s, w = (json.loads(a) for a in sys.argv[1:6])
busy = max((x.get("busy_pct", 0) for x in w), default=0)
print(g["rx_packets"], s["tx_packets"], b["learned"], d.get("fdb_full", 0),
      d.get("fdb_limit", 0), d.get("learn_queue_full", 0), "%.0f" % busy)
' "$drops" "$br" "$sg" "$ss" "$wk"
}

out=$(sample) || fail "cannot read the switch's counters"
read -r rx0 tx0 learned0 full0 limit0 qfull0 _ <<<"$out"
log "before: rx g $rx0, learned $learned0, fdb_full $full0, fdb_limit $limit0, learn_queue_full $qfull0"
log "stats g before: $(vsctl --json stats g)"
kern_tx0=$(ns_counter "$nsg" eth0 tx_packets)

# tcpreplay bounded by --duration as a safety net; stopped with SIGINT after the last sample.
tlog=$VS_TMP/tcpreplay.log
VS_LOGS+=("$tlog")
ip netns exec "$nsg" tcpreplay -i eth0 --pps="$PPS" --loop=0 --preload-pcap \
    --duration=$((SECONDS_RUN + 60)) --stats=60 "$pcap" </dev/null >"$tlog" 2>&1 &
treplay=$!
vs_track_pid "$treplay"
# The clock starts when the switch sees the first frame (tcpreplay preloads the pcap first).
wait_until 60 "first frame on g" stat_at_least g rx_packets $((rx0 + 1))
t0=$(date +%s.%N)
log "traffic started (tcpreplay pid $treplay)"

printf '%7s %11s %9s %8s %8s %6s %9s %9s %9s %6s\n' t_s rx_g rx_pps tx_s_pps learned used% \
    fdb_full fdb_limit q_full busy%
min_l="" max_l=0 n=0 prev_rx=$rx0 prev_tx=$tx0 prev_t=$t0 last_rx=$rx0 last_t=$t0
while :; do
    n=$((n + 1))
    due=$("$VS_PY" -c 'import sys; print(float(sys.argv[1]) + float(sys.argv[2]))' "$t0" $((n * INTERVAL)))
    now=$(date +%s.%N)
    sleep "$("$VS_PY" -c 'import sys; print(max(0.0, float(sys.argv[1]) - float(sys.argv[2])))' "$due" "$now")"
    vs_alive "$VSWITCHD_PID" || fail "vswitchd died during the churn"
    vs_alive "$treplay" || fail "tcpreplay ended early: $(tail -n 20 "$tlog")"
    out=$(sample) || fail "cannot read the switch's counters"
    read -r rx tx learned full limit qfull busy <<<"$out"
    t=$(date +%s.%N)
    "$VS_PY" -c '
import sys
t0, t, pt, rx, prx, tx, ptx, learned, slots = map(float, sys.argv[1:10])
full, limit, q, busy = sys.argv[10:14]
dt = t - pt
print("%7.1f %11d %9.0f %8.0f %8d %6.1f %9s %9s %9s %6s" % (t - t0, rx, (rx - prx) / dt,
      (tx - ptx) / dt, learned, 100 * learned / slots, full, limit, q, busy))
' "$t0" "$t" "$prev_t" "$rx" "$prev_rx" "$tx" "$prev_tx" "$learned" "$slots" \
        "$((full - full0))" "$((limit - limit0))" "$((qfull - qfull0))" "$busy"
    prev_rx=$rx prev_tx=$tx prev_t=$t last_rx=$rx last_t=$t
    if [[ -z "$min_l" ]] || ((learned < min_l)); then min_l=$learned; fi
    if ((learned > max_l)); then max_l=$learned; fi
    ((n * INTERVAL < SECONDS_RUN)) || break
done

vs_stop_pid "$treplay" INT 10
kern_tx=$(ns_counter "$nsg" eth0 tx_packets)
log "tcpreplay (stopped with SIGINT after the last sample):"
grep -E 'Actual|Rated|Statistics|Attempted|Successful|Failed|Truncated|Retried' "$tlog" | tail -n 8 | sed 's/^/    /'

# After the traffic: the queue drained, fdb_full final; then every entry ages out.
sleep 1
out=$(sample) || fail "cannot read the switch's counters"
read -r rx_end _ learned_end full_end limit_end qfull_end _ <<<"$out"
log "stats g after: $(vsctl --json stats g)"
log "drops after: $(vsctl --json drops)"
wait_s=$((AGE + 4))
sleep "$wait_s"
out=$(sample) || fail "cannot read the switch's counters"
read -r _ _ learned_aged _ _ _ _ <<<"$out"
vs_alive "$VSWITCHD_PID" || fail "vswitchd died"

summary=$("$VS_PY" -c '
import sys
(t0, lt, rx0, lrx, rxe, ktx0, ktx, slots, mn, mx) = map(float, sys.argv[1:11])
print("elapsed %.1f s; switch rx on g %d frames = %.0f frames/s achieved (asked %s; "
      "tcpreplay put %d on the wire, the switch received %.2f%% of them); "
      "learned min %d max %d of %d slots: usable share %.1f%%-%.1f%%"
      % (lt - t0, lrx - rx0, (lrx - rx0) / (lt - t0), sys.argv[11], ktx - ktx0,
         100 * (rxe - rx0) / max(1, ktx - ktx0), mn, mx, slots, 100 * mn / slots,
         100 * mx / slots))
' "$t0" "$last_t" "$rx0" "$last_rx" "$rx_end" "$kern_tx0" "$kern_tx" "$slots" "$min_l" "$max_l" "$PPS")
log "summary: $summary"
log "summary: fdb_full +$((full_end - full0)) (expected 0), fdb_limit +$((limit_end - limit0)), learn_queue_full +$((qfull_end - qfull0)); learned $learned_end when the traffic stopped, $learned_aged ${wait_s} s later"
stop_vswitchd
if ((full_end != full0)); then
    fail "fdb_full grew by $((full_end - full0)) during the churn"
fi
((limit_end == limit0)) || log "WARNING: fdb_limit grew by $((limit_end - limit0)): the learn limit refused MACs"
((qfull_end == qfull0)) || log "WARNING: learn_queue_full grew by $((qfull_end - qfull0)): learn requests were dropped"
((learned_aged == 0)) || log "WARNING: $learned_aged entries still learned ${wait_s} s after the traffic stopped (age $AGE)"
vs_pass
