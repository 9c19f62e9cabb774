#!/usr/bin/env bash
# perf/cni-add.sh: CNI ADD and DEL latency of vswitch-cni next to the standard bridge plugin
# (containernetworking-plugins' /usr/lib/cni/bridge), both with host-local IPAM, on the same
# machine in the same run. Each plugin is driven as a runtime drives it: CNI_* environment,
# the network config on stdin, one process per call, timed from its start to its exit (bash's
# EPOCHREALTIME around the call alone; the network namespaces are made beforehand, untimed):
#
#   vswitch-cni   veth, bridge mode, into bridge "br" of a vswitchd of the run's own
#                 (--poll adaptive --workers 1); config {"type": "vswitch-cni", "bridge": "br",
#                 "socket": ..., "ipam": {"type": "host-local", "subnet": "10.61.0.0/16"}}
#   bridge        a Linux bridge of the run's own (made by the plugin's first ADD, removed at
#                 the end); {"type": "bridge", "isGateway": false, "ipam": {"type":
#                 "host-local", "subnet": "10.62.0.0/16"}}
#
# Sequential: per run, N pods ADDed one after the other, then DELed one after the other; the
# two systems take turns (the order alternates run by run), each in namespaces of its own.
# Concurrent: N more pods per system ADDed in batches of --batch concurrent calls (each batch
# waited for), then DELed the same way; every call's own latency and each batch's wall time.
# After the ADDs: every pod has its address, pod 1 pings pod N; after the DELs: no
# attachment, veth or lease is left. Any vswitch-cni call that fails fails the run (exit 1);
# a bridge plugin failure is reported.
#
# Writes <YYYY-MM-DD>-cni-add.md and .json to --out DIR (default perf/results; --quick: the
# work dir, printed, unless --out is given).
# The EXIT trap's function looks unreachable to the linter:
# shellcheck disable=SC2317
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REL="${CARGO_TARGET_DIR:-$ROOT/target}/release"
PY=${PYTHON:-python3}
CARGO=${CARGO:-cargo}
CNI_DIR=${CNI_DIR:-/usr/lib/cni}
ARGS="$*"

usage() {
    cat <<EOF
usage: perf/cni-add.sh [--pods N] [--runs N] [--batch N] [--quick] [--no-concurrent]
                       [--no-build] [--out DIR] [--keep]

  --pods N         pods per system and run (default 100)
  --runs N         sequential runs per system, the order alternating (default 3)
  --batch N        concurrent calls per batch in the concurrent part (default 20)
  --quick          --pods 20 --runs 1; results to the work dir (printed) unless --out is given
  --no-concurrent  leave the concurrent part out
  --no-build       use the vswitchd/vsctl/vswitch-cni already built (recorded in the results)
  --out DIR        where to write <date>-cni-add.md/.json (default perf/results)
  --keep           keep the work dir (vswitchd log, every call's output, raw samples)

Needs root, iproute2, python3, containernetworking-plugins (bridge, host-local in
\$CNI_DIR, default /usr/lib/cni). Environment: CARGO (default cargo), PYTHON (default python3),
CARGO_TARGET_DIR, CNI_DIR.
EOF
}

PODS=100 RUNS=3 BATCH=20 QUICK=0 BUILD=1 CONC=1 OUT="" KEEP=0 PODS_SET=0 RUNS_SET=0
while [ $# -gt 0 ]; do
    case $1 in
        --pods|--runs|--batch|--out)
            [ $# -ge 2 ] || { echo "perf/cni-add.sh: $1 needs a value" >&2; exit 2; }
            case $1 in
                --pods) PODS=$2 PODS_SET=1 ;;
                --runs) RUNS=$2 RUNS_SET=1 ;;
                --batch) BATCH=$2 ;;
                --out) OUT=$2 ;;
            esac
            shift ;;
        --quick) QUICK=1 ;;
        --no-concurrent) CONC=0 ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "perf/cni-add.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ]; then
    [ "$PODS_SET" = 1 ] || PODS=20
    [ "$RUNS_SET" = 1 ] || RUNS=1
fi
for n in "$PODS" "$RUNS" "$BATCH"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "perf/cni-add.sh: --pods/--runs/--batch need integers >= 1" >&2; exit 2; }
done
((PODS <= 999)) || { echo "perf/cni-add.sh: --pods is at most 999 (namespace names)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "perf/cni-add.sh: needs root (network namespaces, DPDK)" >&2; exit 2; }
for t in ip ping "$PY"; do
    command -v "$t" >/dev/null || { echo "perf/cni-add.sh: $t not found" >&2; exit 2; }
done
for p in bridge host-local; do
    [ -x "$CNI_DIR/$p" ] ||
        { echo "perf/cni-add.sh: $CNI_DIR/$p missing (apt-get install containernetworking-plugins)" >&2; exit 2; }
done

# ---------------------------------------------------------------------------------------------
# Hygiene: everything this run makes is named from TAG (namespaces, the Linux bridge, the DPDK
# file prefix, the container ids) or lives in the work dir (socket, state, run dir, IPAM data
# dirs); the EXIT trap stops vswitchd by its PID and removes the rest by name, nothing else.

TAG="vc$$"
WORK=$(mktemp -d "/tmp/vswitch-cni-add.XXXXXX")
PREFIX="${TAG}d"
LBR="${TAG}br"
VS_SOCK=$WORK/vswitchd.sock
VS_PID="" NETNSES=() LBR_MADE=0
SYSTEMS=(vswitch-cni bridge)

log() { echo "cni-add: $*" >&2; }
die() { echo "perf/cni-add.sh: $*" >&2; exit 1; }

# shellcheck source=perf/proc.sh
source "$ROOT/perf/proc.sh"

cleanup() {
    local rc=$? ns
    set +e
    trap - EXIT INT TERM HUP
    [ -z "$VS_PID" ] || stop_pid "$VS_PID" TERM 30
    # A namespace takes its pod end with it, and so the host end of the veth pair.
    for ns in "${NETNSES[@]}"; do ip netns del "$ns" 2>/dev/null; done
    [ "$LBR_MADE" = 0 ] || ip link del dev "$LBR" 2>/dev/null
    rm -rf "/var/run/dpdk/$PREFIX"
    if [ "$KEEP" = 1 ] || [ "$rc" != 0 ] || [ "$OUT" = "$WORK" ]; then
        log "work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

vsctl() { timeout 60 "$REL/vsctl" --socket "$VS_SOCK" "$@"; }

# wait_until SECONDS CMD...: poll CMD every 0.1 s; 1 on time-out.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# contenders: processes this run did not start that skew the figures (another benchmark, a
# CI test, a build): "comm(pid)" each.
contenders() {
    local pid comm args
    # shellcheck disable=SC2009
    ps -eo pid=,comm=,args= | while read -r pid comm args; do
        case $comm in
            cargo|rustc|vswitchd|ovs-vswitchd*|dpdk-testpmd|iperf3|sockperf|cc1*|ld|lld|podman|runc|qemu*) ;;
            bash|sh)
                case $args in *ci/tests/*|*ci/test.sh*|*perf/*.sh*) ;; *) continue ;; esac
                comm=${args##* } ;;
            *) continue ;;
        esac
        if [ "$pid" = "$VS_PID" ] || [ "$pid" = "$$" ]; then continue; fi
        [[ "$args" != *"perf/cni-add.sh"* ]] || continue
        echo "$comm($pid)"
    done | sort -u | tr '\n' ' '
}

# cpu_snap: "busy total" jiffies of the whole machine (/proc/stat).
cpu_snap() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }

# ---------------------------------------------------------------------------------------------
# The plugins and their network configs.

PLUGINS=$WORK/plugins
mkdir -p "$PLUGINS" "$WORK/out" "$WORK/err"
CNI_PATH_VAL="$PLUGINS:$CNI_DIR"

write_confs() {
    "$PY" - "$VS_SOCK" "$WORK" "$LBR" <<'EOF'
import json, sys
sock, work, lbr = sys.argv[1:]
vs = {"cniVersion": "1.0.0", "name": "bench", "type": "vswitch-cni", "bridge": "br",
      "socket": sock,
      "ipam": {"type": "host-local", "subnet": "10.61.0.0/16", "dataDir": f"{work}/ipam-vs"}}
br = {"cniVersion": "1.0.0", "name": "bbench", "type": "bridge", "bridge": lbr,
      "isGateway": False,
      "ipam": {"type": "host-local", "subnet": "10.62.0.0/16", "dataDir": f"{work}/ipam-br"}}
json.dump(vs, open(f"{work}/conf-vswitch-cni.json", "w"))
json.dump(br, open(f"{work}/conf-bridge.json", "w"))
EOF
}

plugin_of() { case $1 in vswitch-cni) echo "$PLUGINS/vswitch-cni" ;; bridge) echo "$CNI_DIR/bridge" ;; esac; }
ipam_dir_of() { case $1 in vswitch-cni) echo "$WORK/ipam-vs/bench" ;; bridge) echo "$WORK/ipam-br/bbench" ;; esac; }
# ns_name SYSTEM PHASE I: the pod's namespace (s: sequential, c: concurrent).
ns_name() { printf '%s%s%s%d' "$TAG" "${1:0:1}" "$2" "$3"; }

# cni_call SYSTEM OP PHASE RUN BATCH I: one plugin call, timed around the call alone; one line
# in $WORK/calls-<phase>.tsv. The call's stdout and stderr are kept when it fails.
cni_call() {
    local sys=$1 op=$2 phase=$3 run=$4 batch=$5 i=$6 ns plugin conf t0 t1 rc=0 o
    ns=$(ns_name "$sys" "$phase" "$i")
    plugin=$(plugin_of "$sys")
    conf=$WORK/conf-$sys.json
    o=$WORK/out/$sys-$op-$phase-$run-$i
    t0=$EPOCHREALTIME
    CNI_COMMAND=$op CNI_CONTAINERID=$TAG$sys$phase$i CNI_NETNS=/run/netns/$ns CNI_IFNAME=eth0 \
        CNI_PATH=$CNI_PATH_VAL CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAME=pod$i" \
        "$plugin" <"$conf" >"$o.out" 2>"$o.err" || rc=$?
    t1=$EPOCHREALTIME
    printf '%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%d\n' "$phase" "$sys" "$op" "$run" "$batch" "$i" \
        "$t0" "$t1" "$rc" >>"$WORK/calls-$phase-$sys-$op-$run-$i.tsv"
    if ((rc == 0)); then
        [ "$op" = ADD ] || rm -f "$o.out" "$o.err"
    else
        cat "$o.out" "$o.err" >"$WORK/err/$sys-$op-$phase-$run-$i.txt"
    fi
    return 0
}

# pod_ip SYSTEM PHASE I: the pod's IPv4 address on eth0 (empty if none).
pod_ip() {
    ip -n "$(ns_name "$1" "$2" "$3")" -4 -o addr show dev eth0 2>/dev/null | awk '{sub("/.*", "", $4); print $4; exit}'
}
leases() { find "$(ipam_dir_of "$1")" -maxdepth 1 -name '10.*' 2>/dev/null | wc -l; }
# vs_attached: switch interfaces carrying an attachment.
vs_attached() {
    vsctl --json iface list | "$PY" -c 'import json, sys; print(sum(1 for i in json.load(sys.stdin) if i.get("attachment")))'
}
# host_ends SYSTEM PHASE: links of the host side left (vswitch-cni: the veths its ADD results
# named on the host side; bridge: ports of the Linux bridge).
host_ends() {
    if [ "$1" = bridge ]; then
        ip -o link show master "$LBR" 2>/dev/null | wc -l
        return
    fi
    "$PY" - "$WORK/out" "vswitch-cni-ADD-$2-" <<'PYEOF'
import glob, json, os, sys
names = set()
for f in glob.glob(f"{sys.argv[1]}/{sys.argv[2]}*.out"):
    try: names |= {i["name"] for i in json.load(open(f)).get("interfaces", []) if "sandbox" not in i}
    except (OSError, ValueError, KeyError): pass
print(sum(1 for n in names if os.path.exists(f"/sys/class/net/{n}")))
PYEOF
}

# check_added SYSTEM PHASE RUN: every pod has an address; pod 1 pings pod N (10 s).
# One line in $WORK/checks.tsv.
check_added() {
    local sys=$1 phase=$2 run=$3 i with=0 ping=skipped last att=-
    for ((i = 1; i <= PODS; i++)); do [ -z "$(pod_ip "$sys" "$phase" "$i")" ] || with=$((with + 1)); done
    if ((PODS > 1)); then
        last=$(pod_ip "$sys" "$phase" "$PODS")
        ping=failed
        [ -z "$last" ] || ! wait_until 10 ip netns exec "$(ns_name "$sys" "$phase" 1)" ping -c 1 -W 1 "$last" ||
            ping=ok
    fi
    [ "$sys" != vswitch-cni ] || att=$(vs_attached)
    printf '%s\t%s\t%d\tadded\t%d\t%s\t%s\t%s\n' "$phase" "$sys" "$run" "$with" "$att" "$(leases "$sys")" "$ping" \
        >>"$WORK/checks.tsv"
}
# check_deleted SYSTEM PHASE RUN: nothing left (attachments, host ends, leases).
check_deleted() {
    local sys=$1 phase=$2 run=$3 att=-
    [ "$sys" != vswitch-cni ] || att=$(vs_attached)
    printf '%s\t%s\t%d\tdeleted\t%s\t%s\t%s\t%s\n' "$phase" "$sys" "$run" "$(host_ends "$sys" "$phase")" "$att" \
        "$(leases "$sys")" - >>"$WORK/checks.tsv"
}

# phase_mark NAME: the machine's CPU and the contenders at a phase's start or end.
phase_mark() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$(cpu_snap)" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(contenders)" >>"$WORK/marks.tsv"
}

sequential() { # SYSTEM RUN
    local sys=$1 run=$2 op i
    for op in ADD DEL; do
        phase_mark "s $sys $op $run start"
        for ((i = 1; i <= PODS; i++)); do cni_call "$sys" "$op" s "$run" 0 "$i"; done
        phase_mark "s $sys $op $run end"
        if [ "$op" = ADD ]; then
            [ "$sys" != bridge ] || ! ip link show dev "$LBR" >/dev/null 2>&1 || LBR_MADE=1
            check_added "$sys" s "$run"
        else
            check_deleted "$sys" s "$run"
        fi
    done
}

concurrent() { # SYSTEM
    local sys=$1 op i b first last bt0 bt1 pids
    for op in ADD DEL; do
        phase_mark "c $sys $op 1 start"
        for ((b = 1, first = 1; first <= PODS; b++, first += BATCH)); do
            last=$((first + BATCH - 1))
            ((last <= PODS)) || last=$PODS
            pids=()
            bt0=$EPOCHREALTIME
            for ((i = first; i <= last; i++)); do
                cni_call "$sys" "$op" c 1 "$b" "$i" &
                pids+=($!)
            done
            for i in "${pids[@]}"; do wait "$i" || true; done
            bt1=$EPOCHREALTIME
            printf '%s\t%s\t%d\t%d\t%s\t%s\n' "$sys" "$op" "$b" "$((last - first + 1))" "$bt0" "$bt1" >>"$WORK/batches.tsv"
        done
        phase_mark "c $sys $op 1 end"
        if [ "$op" = ADD ]; then
            [ "$sys" != bridge ] || ! ip link show dev "$LBR" >/dev/null 2>&1 || LBR_MADE=1
            check_added "$sys" c 1
        else
            check_deleted "$sys" c 1
        fi
    done
}

# ---------------------------------------------------------------------------------------------
# Build, start, measure, report.

if [ "$BUILD" = 1 ]; then
    log "building vswitchd, vsctl and vswitch-cni (nice -n 19 $CARGO build --release -p vswitch-control -p vswitch-cni)"
    (cd "$ROOT" && nice -n 19 "$CARGO" build --release -p vswitch-control -p vswitch-cni) ||
        die "build failed: nothing measured"
fi
for b in vswitchd vsctl vswitch-cni; do
    [ -x "$REL/$b" ] || die "$REL/$b missing (build with cargo build --release -p vswitch-control -p vswitch-cni)"
done
ip link show dev "$LBR" >/dev/null 2>&1 && die "$LBR exists already; refusing"
ln -s "$REL/vswitch-cni" "$PLUGINS/vswitch-cni"
write_confs
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
CONTENDERS_START=$(contenders)
START=$SECONDS
log "tag $TAG, work dir $WORK, $PODS pods x $RUNS run(s) per system, concurrent: $CONC (batches of $BATCH)"
[ -z "$CONTENDERS_START" ] || log "not alone on the machine: $CONTENDERS_START(load $LOAD_START)"

"$REL/vswitchd" --socket "$VS_SOCK" --state-file "$WORK/state.json" --run-dir "$WORK/run" \
    --file-prefix "$PREFIX" --no-huge --poll adaptive --lcores 0,1 --workers 1 \
    </dev/null >"$WORK/vswitchd.log" 2>&1 &
VS_PID=$!
deadline=$((SECONDS + 30))
until timeout 5 "$REL/vsctl" --socket "$VS_SOCK" health >/dev/null 2>&1; do
    alive "$VS_PID" || die "vswitchd exited before it was ready: $(tail -n 3 "$WORK/vswitchd.log")"
    ((SECONDS < deadline)) || die "vswitchd not healthy after 30 s (log: $WORK/vswitchd.log)"
    sleep 0.05
done
vsctl bridge add br >/dev/null || die "vsctl bridge add br failed"
log "vswitchd pid $VS_PID ready, bridge br"

# The namespaces, untimed: one set per system and phase, reused run after run (each DEL
# leaves its namespace empty again).
PHASES=(s)
[ "$CONC" = 0 ] || PHASES+=(c)
for sys in "${SYSTEMS[@]}"; do
    for ph in "${PHASES[@]}"; do
        for ((i = 1; i <= PODS; i++)); do
            ns=$(ns_name "$sys" "$ph" "$i")
            ip netns add "$ns" || die "cannot create network namespace $ns"
            NETNSES+=("$ns")
        done
    done
done
log "${#NETNSES[@]} network namespaces made"
: >"$WORK/checks.tsv"
: >"$WORK/marks.tsv"
: >"$WORK/batches.tsv"

for ((run = 1; run <= RUNS; run++)); do
    for ((k = 0; k < ${#SYSTEMS[@]}; k++)); do
        sys=${SYSTEMS[$(((k + run - 1) % ${#SYSTEMS[@]}))]}
        log "run $run: $sys, $PODS sequential ADDs then DELs"
        sequential "$sys" "$run"
    done
done
if [ "$CONC" = 1 ]; then
    for sys in "${SYSTEMS[@]}"; do
        log "$sys: $PODS ADDs then DELs, $BATCH at a time"
        concurrent "$sys"
    done
fi
alive "$VS_PID" || die "vswitchd exited during the measurements: $(tail -n 3 "$WORK/vswitchd.log")"
cat "$WORK"/calls-*.tsv >"$WORK/calls.tsv"
rm -f "$WORK"/calls-*.tsv
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
CONTENDERS_END=$(contenders)
stop_pid "$VS_PID" TERM 30
VS_RC=$STOP_RC
VS_PID=""
if [ "$LBR_MADE" = 1 ]; then
    ip link del dev "$LBR" || log "cannot remove $LBR"
    LBR_MADE=0
fi

DATE=$(date +%F)
OUT=${OUT%/}
if [ -z "$OUT" ]; then
    if [ "$QUICK" = 1 ]; then OUT=$WORK; else OUT=$ROOT/perf/results; fi
fi
mkdir -p "$OUT"
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=false
[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] || DIRTY=true
export WORK DATE REV DIRTY PODS RUNS BATCH CONC BUILD LOAD_START LOAD_END VS_RC CNI_DIR
export CONTENDERS_START CONTENDERS_END CMD="perf/cni-add.sh $ARGS" ELAPSED=$((SECONDS - START))
CNI_PKG=$(dpkg-query -W -f '${Version}' containernetworking-plugins 2>/dev/null || echo unknown)
export CNI_PKG
rc=0
"$PY" - "$OUT/$DATE-cni-add.md" "$OUT/$DATE-cni-add.json" <<'EOF' || rc=$?
import json, math, os, platform, statistics, sys

E = os.environ
work, out_md, out_json = E["WORK"], sys.argv[1], sys.argv[2]
pods, runs, batch = int(E["PODS"]), int(E["RUNS"]), int(E["BATCH"])
SYSTEMS = ["vswitch-cni", "bridge"]

calls = []
with open(f"{work}/calls.tsv") as f:
    for line in f:
        ph, sysn, op, run, b, i, t0, t1, rc = line.rstrip("\n").split("\t")
        calls.append({"phase": ph, "system": sysn, "op": op, "run": int(run), "batch": int(b),
                      "pod": int(i), "t0": float(t0), "ms": (float(t1) - float(t0)) * 1e3, "rc": int(rc)})
calls.sort(key=lambda c: c["t0"])

def pct(s, q):  # nearest rank
    return s[max(0, math.ceil(q * len(s)) - 1)]

def stats(cs):
    if not cs: return None
    ok = [c["ms"] for c in cs if c["rc"] == 0]
    r = {"calls": len(cs), "failures": sum(1 for c in cs if c["rc"] != 0)}
    if ok:
        s = sorted(ok)
        k = min(10, len(ok))
        r.update({"median_ms": round(statistics.median(s), 2), "p90_ms": round(pct(s, 0.9), 2),
                  "max_ms": round(s[-1], 2), "min_ms": round(s[0], 2), "mean_ms": round(statistics.mean(s), 2),
                  "first_ms": round(ok[0], 2), f"mean_first_{k}_ms": round(statistics.mean(ok[:k]), 2),
                  f"mean_last_{k}_ms": round(statistics.mean(ok[-k:]), 2)})
    return r

def sel(ph, sysn, op, run=None):
    return [c for c in calls if c["phase"] == ph and c["system"] == sysn and c["op"] == op
            and (run is None or c["run"] == run)]

seq = {s: {op: stats(sel("s", s, op)) for op in ("ADD", "DEL")} for s in SYSTEMS}
per_run = {s: {op: [stats(sel("s", s, op, r)) for r in range(1, runs + 1)] for op in ("ADD", "DEL")} for s in SYSTEMS}
conc = {}
batches = []
with open(f"{work}/batches.tsv") as f:
    for line in f:
        sysn, op, b, n, t0, t1 = line.split()
        batches.append({"system": sysn, "op": op, "batch": int(b), "calls": int(n),
                        "wall_ms": round((float(t1) - float(t0)) * 1e3, 1)})
if E["CONC"] == "1":
    for s in SYSTEMS:
        conc[s] = {}
        for op in ("ADD", "DEL"):
            st = stats(sel("c", s, op))
            bw = [b["wall_ms"] for b in batches if b["system"] == s and b["op"] == op]
            if st:
                st["batch_wall_ms"] = bw
                st["batch_wall_median_ms"] = round(statistics.median(bw), 1) if bw else None
                st["pods_per_s"] = round(sum(b["calls"] for b in batches if b["system"] == s and b["op"] == op)
                                         / (sum(bw) / 1e3), 1) if bw else None
            conc[s][op] = st

def ratio(a, b, op, m, d=seq):
    x, y = (d.get(a, {}).get(op) or {}).get(m), (d.get(b, {}).get(op) or {}).get(m)
    return round(x / y, 2) if x and y else None
ratios = {op: {m: ratio("vswitch-cni", "bridge", op, m) for m in ("median_ms", "p90_ms", "max_ms")}
          for op in ("ADD", "DEL")}
conc_ratios = {op: {m: ratio("vswitch-cni", "bridge", op, m, conc) for m in ("median_ms", "p90_ms")}
               for op in ("ADD", "DEL")} if conc else {}

checks = []
with open(f"{work}/checks.tsv") as f:
    for line in f:
        ph, sysn, run, what, a, att, leases, ping = line.rstrip("\n").split("\t")
        checks.append({"phase": ph, "system": sysn, "run": int(run), "after": what,
                       ("pods_with_address" if what == "added" else "host_ends_left"): int(a),
                       "switch_attachments": None if att == "-" else int(att), "leases": int(leases),
                       "ping_pod1_podN": None if ping == "-" else ping})
marks = {}
with open(f"{work}/marks.tsv") as f:
    for line in f:
        name, cpu, load, cont = (line.rstrip("\n").split("\t") + [""])[:4]
        busy, total = map(int, cpu.split())
        marks[name] = (busy, total, load, cont.split())
phases = []
for name in marks:
    if not name.endswith(" start"): continue
    base = name[:-6]
    if base + " end" not in marks: continue
    a, b = marks[name], marks[base + " end"]
    ph, sysn, op, run = base.split()
    phases.append({"phase": {"s": "sequential", "c": "concurrent"}[ph], "system": sysn, "op": op, "run": int(run),
                   "machine_cpu_busy_pct": round(100.0 * (b[0] - a[0]) / max(1, b[1] - a[1]), 1),
                   "load_end": b[2], "contended_by": sorted(set(a[3]) | set(b[3]))})
errors = {}
for fn in sorted(os.listdir(f"{work}/err")):
    errors[fn[:-4]] = open(f"{work}/err/{fn}").read().strip()[-2000:]

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
settings = {"date": E["DATE"], "command": E["CMD"], "git_revision": E["REV"], "git_dirty": E["DIRTY"] == "true",
            "pods": pods, "runs": runs, "batch": batch, "concurrent": E["CONC"] == "1",
            "built": E["BUILD"] == "1", "elapsed_s": int(E["ELAPSED"]), "cpu": cpu, "ncpu": os.cpu_count(),
            "kernel": platform.release(), "load_start": E["LOAD_START"], "load_end": E["LOAD_END"],
            "contended_by_start": E["CONTENDERS_START"].split(), "contended_by_end": E["CONTENDERS_END"].split(),
            "containernetworking_plugins": E["CNI_PKG"], "cni_dir": E["CNI_DIR"],
            "vswitchd": "--no-huge --poll adaptive --lcores 0,1 --workers 1",
            "timing": "bash EPOCHREALTIME around each plugin process, its start to its exit"}
vs_fail = sum((seq["vswitch-cni"][op] or {}).get("failures", 0) for op in ("ADD", "DEL")) + \
          sum(((conc.get("vswitch-cni") or {}).get(op) or {}).get("failures", 0) for op in ("ADD", "DEL"))
left = [c for c in checks if c["after"] == "deleted" and (c["host_ends_left"] or c["leases"] or c["switch_attachments"])]
short = [c for c in checks if c["after"] == "added" and c["pods_with_address"] != pods]
goal = ratios["ADD"]["median_ms"]
doc = {"profile": "cni-add", "settings": settings, "sequential": seq, "sequential_per_run": per_run,
       "concurrent": conc, "batches": batches, "ratios_vswitch_cni_over_bridge": ratios,
       "concurrent_ratios_vswitch_cni_over_bridge": conc_ratios,
       "goal_add_median_within_2x": (goal <= 2.0) if goal else None,
       "checks": checks, "phases": phases, "errors": errors, "vswitchd_exit_status": int(E["VS_RC"])}
with open(out_json, "w") as f: json.dump(doc, f, indent=1)

def fmt(v, nd=1): return "-" if v is None else f"{v:.{nd}f}"
L = [f"# CNI ADD/DEL latency, {E['DATE']}\n",
     f"`{E['CMD']}` at {E['REV']}{' (uncommitted changes)' if settings['git_dirty'] else ''}"
     f"{'' if settings['built'] else ' (binaries not rebuilt: --no-build)'}. Machine: {cpu}, {os.cpu_count()} CPUs, "
     f"kernel {settings['kernel']}; load average {E['LOAD_START']} at the start, {E['LOAD_END']} at the end; "
     f"{settings['elapsed_s']} s.\n",
     f"Each plugin is run as a runtime runs it (CNI_* environment, the config on stdin, cniVersion 1.0.0, "
     f"CNI_IFNAME=eth0, CNI_PATH=<symlink to vswitch-cni>:{E['CNI_DIR']}), one process per call, timed from its "
     f"start to its exit; the network namespaces are made beforehand and not timed. **vswitch-cni**: veth, bridge "
     f"mode, bridge `br` of vswitchd ({settings['vswitchd']}), host-local IPAM 10.61.0.0/16. **bridge**: "
     f"containernetworking-plugins {E['CNI_PKG']} `bridge` (a Linux bridge of its own, isGateway false), host-local "
     f"IPAM 10.62.0.0/16. Sequential: {pods} pods ADDed one after the other, then DELed, {runs} run(s) per system "
     f"(order alternating), every call pooled.\n",
     "| system | mode | op | calls | median ms | p90 ms | max ms | failures | mean first 10 / last 10 ms |",
     "|---|---|---|---|---|---|---|---|---|"]
def row(s, mode, op, st):
    if not st: return f"| {s} | {mode} | {op} | - | - | - | - | - | - |"
    k = [x for x in st if x.startswith("mean_first_")]
    fl = f"{st[k[0]]:.1f} / {st[k[0].replace('first', 'last')]:.1f}" if k else "-"
    return (f"| {s} | {mode} | {op} | {st['calls']} | {fmt(st.get('median_ms'))} | {fmt(st.get('p90_ms'))} | "
            f"{fmt(st.get('max_ms'))} | {st['failures']} | {fl} |")
for s in SYSTEMS:
    for op in ("ADD", "DEL"): L.append(row(s, "sequential", op, seq[s][op]))
for s in conc:
    for op in ("ADD", "DEL"): L.append(row(s, f"{batch} at a time", op, conc[s][op]))
L.append("")
L.append(f"- **vswitch-cni / bridge, sequential**: ADD median {fmt(ratios['ADD']['median_ms'], 2)}x "
         f"(p90 {fmt(ratios['ADD']['p90_ms'], 2)}x), DEL median {fmt(ratios['DEL']['median_ms'], 2)}x "
         f"(p90 {fmt(ratios['DEL']['p90_ms'], 2)}x). Goal, ADD median within 2x of the bridge plugin's: "
         f"{'met' if doc['goal_add_median_within_2x'] else 'NOT met' if goal else 'no figure'}.")
if conc_ratios:
    L.append(f"- **vswitch-cni / bridge, {batch} at a time**: ADD median {fmt(conc_ratios['ADD']['median_ms'], 2)}x, "
             f"DEL median {fmt(conc_ratios['DEL']['median_ms'], 2)}x.")
if runs > 1:
    for s in SYSTEMS:
        L.append(f"- {s}, median per run: ADD " + ", ".join(fmt((x or {}).get("median_ms")) for x in per_run[s]["ADD"])
                 + "; DEL " + ", ".join(fmt((x or {}).get("median_ms")) for x in per_run[s]["DEL"]) + " ms")
L.append("")
if conc:
    L.append(f"Concurrent: {pods} more pods per system, ADDed {batch} at a time (a batch's calls started together, "
             f"the next batch once all returned), then DELed the same way; latency per call as above, under that "
             f"concurrency.\n")
    L.append("| system | op | failures | wall ms per batch | median batch ms | pods/s |")
    L.append("|---|---|---|---|---|---|")
    for s in conc:
        for op in ("ADD", "DEL"):
            st = conc[s][op] or {}
            L.append(f"| {s} | {op} | {st.get('failures', '-')} | {', '.join(fmt(x, 0) for x in st.get('batch_wall_ms', []))} | "
                     f"{fmt(st.get('batch_wall_median_ms'))} | {fmt(st.get('pods_per_s'))} |")
    L.append("")
    st = conc.get("vswitch-cni", {})
    nf = sum((st.get(op) or {}).get("failures", 0) for op in ("ADD", "DEL"))
    L.append(f"vswitch-cni, {pods} pods attached {batch} at a time: "
             f"{'no failure' if nf == 0 else f'**{nf} failure(s)**'} (ADD and DEL).\n")
L.append("Checks: after the ADDs every pod has its IPv4 address on eth0 and pod 1 pings pod N; after the DELs no "
         "switch attachment, host veth end (bridge: port of the Linux bridge) or host-local lease is left.\n")
L.append("| phase | system | run | after | pods with address / host ends left | switch attachments | leases | ping pod 1 -> pod N |")
L.append("|---|---|---|---|---|---|---|---|")
for c in checks:
    a = c.get("pods_with_address", c.get("host_ends_left"))
    L.append(f"| {'sequential' if c['phase'] == 's' else 'concurrent'} | {c['system']} | {c['run']} | {c['after']} | {a} | "
             f"{'-' if c['switch_attachments'] is None else c['switch_attachments']} | {c['leases']} | {c['ping_pod1_podN'] or '-'} |")
L.append("")
notes = []
cont = sorted({x for p in phases for x in p["contended_by"]} | set(settings["contended_by_start"]) | set(settings["contended_by_end"]))
if cont:
    notes.append("**Not alone on the machine** (processes this run did not start, seen at a phase's start or end): "
                 + " ".join(cont) + ". The figures are skewed by them; compare the two systems, measured side by side, "
                 "rather than the absolute times.")
for p in phases:
    notes.append(f"{p['phase']} {p['system']} {p['op']} run {p['run']}: machine CPU busy {p['machine_cpu_busy_pct']}% "
                 f"(all CPUs, this run included), load {p['load_end']}"
                 + (f", contended by {' '.join(p['contended_by'])}" if p["contended_by"] else ""))
for k, v in list(errors.items())[:5]:
    notes.append(f"failed call {k}: `{v.splitlines()[-1] if v else '(no output)'}`")
if len(errors) > 5: notes.append(f"... {len(errors) - 5} more failed calls (see the json)")
if left: notes.append(f"**leftovers after DEL**: {left}")
if short: notes.append(f"**pods without an address after ADD**: {short}")
notes.append(f"vswitchd exit status after SIGTERM: {E['VS_RC']}.")
L.append("Notes:\n")
L += [f"- {n}" for n in notes]
with open(out_md, "w") as f: f.write("\n".join(L) + "\n")
print("\n".join(L))
sys.exit(1 if vs_fail or left or short or not seq["vswitch-cni"]["ADD"] else 0)
EOF
log "results: $OUT/$DATE-cni-add.md, $OUT/$DATE-cni-add.json"
exit "$rc"
