#!/usr/bin/env bash
# perf/idle.sh: what an idle or lightly used switch costs in adaptive mode (--poll adaptive,
# the mode for shared machines), and what it adds to the latency of sporadic traffic.
#
# Topology per run: namespaces A and B, each a veth pair whose host end is a native
# af_packet port of bridge br0; MEMIFS memif server ports, each with a connected memif_peer
# client that sends nothing (ffi/memif's example, `count` mode); VHOSTS vhost-user server
# ports, each with a connected, well-formed frontend that sends nothing
# (ci/vhost/bad_frontend.py --mode good). One worker.
#
# Metrics per system and run, systems interleaved run by run:
#   idle_cpu_pct   vswitchd's CPU use (utime + stime from /proc/PID/stat) over --window
#                  seconds with no traffic, in percent of one core
#   ping_*_us      ICMP round trips A -> B through the switch, --pings of them 200 ms apart
#                  (each finds the worker asleep): p50, p90, max, in microseconds
#   sleeps/s, wakeups/s   the worker's sleeps and the sleeps a queue or the doorbell ended
#                  early, per second of the idle window (builds that count them)
#
# Systems: `vswitch` (the build in CARGO_TARGET_DIR, default target/release) and, with
# --baseline-bin DIR, `baseline` (vswitchd and vsctl in DIR, e.g. target/perf-baseline/release
# as perf/run.sh --baseline left it).
#
#   perf/idle.sh [--runs N] [--window S] [--pings N] [--memifs N] [--vhosts N]
#                [--baseline-bin DIR] [--out DIR] [--quick]
#
# Writes <YYYY-MM-DD>-idle.md and .json to --out (default perf/results; --quick: a temporary
# dir unless --out is given). Needs root; run it on an otherwise idle machine.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
REL=${CARGO_TARGET_DIR:-$ROOT/target}/release
RUNS=3 WINDOW=10 PINGS=20 MEMIFS=4 VHOSTS=2 BASE_BIN="" OUT="" QUICK=0

usage() { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
        --runs | --window | --pings | --memifs | --vhosts | --baseline-bin | --out)
            [ $# -ge 2 ] || { echo "idle.sh: $1 needs a value" >&2; exit 2; }
            case $1 in
                --runs) RUNS=$2 ;; --window) WINDOW=$2 ;; --pings) PINGS=$2 ;;
                --memifs) MEMIFS=$2 ;; --vhosts) VHOSTS=$2 ;;
                --baseline-bin) BASE_BIN=$2 ;; --out) OUT=$2 ;;
            esac
            shift ;;
        --quick) QUICK=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "idle.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
for v in RUNS WINDOW PINGS MEMIFS VHOSTS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "idle.sh: --${v,,} must be a whole number" >&2; exit 2; }
done
((RUNS >= 1 && WINDOW >= 1 && PINGS >= 2)) || { echo "idle.sh: --runs, --window >= 1, --pings >= 2" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "idle.sh: needs root (namespaces, veth)" >&2; exit 2; }
((QUICK)) && RUNS=1 WINDOW=3 PINGS=5
PEER=$REL/examples/memif_peer
SYSTEMS=(vswitch)
declare -A BIN=([vswitch]=$REL)
if [ -n "$BASE_BIN" ]; then
    [ -x "$BASE_BIN/vswitchd" ] || { echo "idle.sh: no vswitchd in $BASE_BIN" >&2; exit 2; }
    SYSTEMS+=(baseline)
    BIN[baseline]=$BASE_BIN
fi
for f in "$REL/vswitchd" "$REL/vsctl" "$PEER"; do
    [ -x "$f" ] || { echo "idle.sh: $f missing (cargo build --release --workspace --examples)" >&2; exit 2; }
done

TAG="vsidle$$"
WORK=$(mktemp -d "/tmp/$TAG.XXXXXX")
[ -n "$OUT" ] || { ((QUICK)) && OUT=$WORK || OUT=$ROOT/perf/results; }
mkdir -p "$OUT"
NSA="${TAG}a" NSB="${TAG}b" HA="${TAG}A" HB="${TAG}B"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ip netns del "$NSA" 2>/dev/null || true
    ip netns del "$NSB" 2>/dev/null || true
    ip link del "$HA" 2>/dev/null || true
    ip link del "$HB" 2>/dev/null || true
    rm -f /dev/shm/"${TAG}"* /dev/hugepages/"${TAG}"* 2>/dev/null || true
}
trap cleanup EXIT
log() { echo "[idle] $*" >&2; }

ip netns add "$NSA"
ip netns add "$NSB"
ip link add "$HA" type veth peer name eth0 netns "$NSA"
ip link add "$HB" type veth peer name eth0 netns "$NSB"
for n in "$NSA:10.77.0.1" "$NSB:10.77.0.2"; do
    ip -n "${n%%:*}" addr add "${n#*:}/24" dev eth0
    ip -n "${n%%:*}" link set eth0 up
    ip -n "${n%%:*}" link set lo up
done
ip link set "$HA" up
ip link set "$HB" up

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# measure SYSTEM RUN: one measurement; prints one JSON object.
measure() {
    local sys=$1 run=$2 bin=${BIN[$1]} d="$WORK/$1-$2" pid i t0 t1 c0 c1 w0 w1 pids=()
    mkdir -p "$d/run"
    local sock="$d/vswitchd.sock"
    "$bin/vswitchd" --socket "$sock" --state-file "$d/state.json" --run-dir "$d/run" \
        --file-prefix "${TAG}$sys$run" --no-huge --poll adaptive --lcores 0,1 --workers 1 \
        </dev/null >"$d/vswitchd.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    vs() { timeout 30 "$bin/vsctl" --socket "$sock" "$@"; }
    for _ in $(seq 300); do vs health >/dev/null 2>&1 && break; sleep 0.1; done
    {
        echo "iface add a af_packet iface=$HA driver=native"
        echo "iface add b af_packet iface=$HB driver=native"
        echo "bridge add br0"
        echo "bridge attach br0 a"
        echo "bridge attach br0 b"
        for ((i = 0; i < MEMIFS; i++)); do echo "iface add m$i memif socket=$d/m$i.sock role=server id=0"; done
        for ((i = 0; i < VHOSTS; i++)); do echo "iface add v$i vhost-user socket=$d/v$i.sock mode=server"; done
    } >"$d/batch"
    while read -r line; do
        # shellcheck disable=SC2086
        vs $line >>"$d/setup.log" 2>&1 || { log "$sys: vsctl $line failed: $(tail -n 1 "$d/setup.log")"; return 1; }
    done <"$d/batch"
    local hold=$((WINDOW + PINGS + 30))
    for ((i = 0; i < MEMIFS; i++)); do
        "$PEER" client "$d/m$i.sock" 0 1 count --for "$hold" >"$d/peer$i.log" 2>&1 &
        pids+=($!)
    done
    for ((i = 0; i < VHOSTS; i++)); do
        "$PY" "$ROOT/ci/vhost/bad_frontend.py" --mode good --hold "$hold" --socket "$d/v$i.sock" \
            >"$d/frontend$i.log" 2>&1 &
        pids+=($!)
    done
    PIDS+=("${pids[@]}")
    # Every port up, and the path A -> B learned, before the window.
    for _ in $(seq 300); do
        [ "$(vs --json iface list | "$PY" -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin) if i.get("link_up")))' 2>/dev/null)" = $((2 + MEMIFS + VHOSTS)) ] && break
        sleep 0.1
    done
    ip netns exec "$NSA" ping -c 3 -i 0.2 -W 1 10.77.0.2 >/dev/null || { log "$sys: A cannot reach B"; return 1; }
    sleep 1
    w0=$(vs --json workers 2>/dev/null || echo '[]')
    c0=$(ticks "$pid") t0=$(date +%s.%N)
    sleep "$WINDOW"
    c1=$(ticks "$pid") t1=$(date +%s.%N)
    w1=$(vs --json workers 2>/dev/null || echo '[]')
    ip netns exec "$NSA" ping -c "$PINGS" -i 0.2 -W 1 10.77.0.2 >"$d/ping.log" || true
    local up
    up=$(vs --json iface list | "$PY" -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin) if i.get("link_up")))')
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    kill -TERM "$pid"
    wait "$pid" || true
    "$PY" - "$sys" "$run" "$c0" "$c1" "$t0" "$t1" "$HZ" "$d/ping.log" "$up" "$w0" "$w1" <<'EOF'
import json, re, sys
sys_, run, c0, c1, t0, t1, hz, ping, up, w0, w1 = sys.argv[1:]
secs = float(t1) - float(t0)
rtts = sorted(float(m) * 1000 for m in re.findall(r"time=([0-9.]+) ms", open(ping).read()))
def pct(p):
    return round(rtts[min(len(rtts) - 1, int(p * len(rtts)))], 1) if rtts else None
def total(doc, key):
    ws = json.loads(doc)
    return sum(w.get(key, 0) for w in ws) if ws and all(key in w for w in ws) else None
out = {"system": sys_, "run": int(run), "window_s": round(secs, 2),
       "idle_cpu_pct": round(100.0 * (int(c1) - int(c0)) / int(hz) / secs, 2),
       "ports_up": int(up), "pings": len(rtts),
       "ping_p50_us": pct(0.5), "ping_p90_us": pct(0.9), "ping_max_us": round(rtts[-1], 1) if rtts else None}
for k in ("sleeps", "wakeups"):
    a, b = total(w0, k), total(w1, k)
    out[k + "_per_s"] = round((b - a) / secs, 1) if a is not None and b is not None else None
print(json.dumps(out))
EOF
}

RESULTS="$WORK/samples.jsonl"
: >"$RESULTS"
for ((r = 1; r <= RUNS; r++)); do
    order=("${SYSTEMS[@]}")
    ((r % 2 == 0)) && [ ${#order[@]} -eq 2 ] && order=("${order[1]}" "${order[0]}")
    for s in "${order[@]}"; do
        log "run $r: $s"
        measure "$s" "$r" >>"$RESULTS" || log "run $r: $s failed (logs: $WORK/$s-$r)"
    done
done

STAMP=$(date -u +%Y-%m-%d)
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
"$PY" - "$RESULTS" "$OUT/$STAMP-idle" "$COMMIT" "$BASE_BIN" "$*" "$RUNS" "$WINDOW" "$PINGS" "$MEMIFS" "$VHOSTS" <<'EOF'
import json, statistics, sys
path, out, commit, base, args, runs, window, pings, memifs, vhosts = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if l.strip()]
systems = sorted({r["system"] for r in rows}, key=lambda s: s != "vswitch")
keys = ["idle_cpu_pct", "ping_p50_us", "ping_p90_us", "ping_max_us", "sleeps_per_s", "wakeups_per_s"]
med = {}
for s in systems:
    med[s] = {}
    for k in keys:
        v = [r[k] for r in rows if r["system"] == s and r.get(k) is not None]
        med[s][k] = round(statistics.median(v), 2) if v else None
doc = {"commit": commit, "baseline_bin": base or None, "runs": int(runs), "window_s": int(window),
       "pings": int(pings), "memifs": int(memifs), "vhosts": int(vhosts), "samples": rows, "medians": med}
json.dump(doc, open(out + ".json", "w"), indent=1)
with open(out + ".md", "w") as f:
    f.write(f"# Idle cost in adaptive mode (perf/idle.sh)\n\nCommit {commit}")
    if base:
        f.write(f"; baseline binaries {base}")
    f.write(f". {runs} run(s); idle window {window} s; {pings} pings 200 ms apart; "
            f"2 veth ports, {memifs} memif and {vhosts} vhost-user ports with idle peers; one worker.\n\n")
    f.write("Medians:\n\n| system | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1) + "\n")
    for s in systems:
        f.write(f"| {s} | " + " | ".join("-" if med[s][k] is None else str(med[s][k]) for k in keys) + " |\n")
    f.write("\nSamples:\n\n| system | run | ports up | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 3) + "\n")
    for r in rows:
        f.write(f"| {r['system']} | {r['run']} | {r['ports_up']} | " + " | ".join("-" if r.get(k) is None else str(r[k]) for k in keys) + " |\n")
print(out + ".md")
EOF
cat "$OUT/$STAMP-idle.md"
