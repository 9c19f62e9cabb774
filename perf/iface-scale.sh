#!/usr/bin/env bash
# perf/iface-scale.sh: af_packet interfaces at scale. One vswitchd (--workers 1); N veth pairs
# (host ends in this namespace, peer ends in a namespace of the run's own); each host end added
# as `vsctl iface add NAME af_packet iface=HOST` (driver=native, the default) one at a time,
# each call timed from vsctl's start to its exit; vswitchd's memory (VmRSS and its parts from
# /proc/PID/status, the packet-ring mappings from /proc/PID/maps) and open file descriptors
# before, during and after; then every interface removed (`vsctl iface del`), timed the same
# way, and the memory and descriptors again.
#
# An add that fails stops the adds: its error text is reported verbatim (the switch is not
# worked around), the interfaces added so far are measured and removed as above.
#
# Writes <YYYY-MM-DD>-iface-scale.md and .json to --out DIR (default perf/results; --quick:
# the work dir, printed, unless --out is given). See perf/README.md, "Interfaces at scale".
# The EXIT trap's function looks unreachable to the linter:
# shellcheck disable=SC2317
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REL="${CARGO_TARGET_DIR:-$ROOT/target}/release"
PY=${PYTHON:-python3}
CARGO=${CARGO:-cargo}
ARGS="$*"

usage() {
    cat <<EOF
usage: perf/iface-scale.sh [--count N] [--quick] [--poll MODE] [--nofile N] [--no-build]
                          [--out DIR] [--keep]

  --count N    veth pairs / af_packet interfaces (default 500; vswitchd holds at most
               --max-interfaces, default 1024)
  --quick      --count 50; results to the work dir (printed) unless --out is given
  --poll MODE  vswitchd --poll (default adaptive, as the CI tests run it)
  --nofile N   start vswitchd with RLIMIT_NOFILE N (soft and hard; default: this shell's,
               \`ulimit -n\`); e.g. 1024, systemd's default soft limit for a service
  --no-build   use the vswitchd/vsctl already built (recorded in the results)
  --out DIR    where to write <date>-iface-scale.md/.json (default perf/results)
  --keep       keep the work dir (vswitchd log, raw samples)

Needs root, iproute2, python3. Environment: CARGO (default cargo), PYTHON (default python3),
CARGO_TARGET_DIR.
EOF
}

COUNT=500 QUICK=0 BUILD=1 POLL=adaptive OUT="" KEEP=0 COUNT_SET=0 NOFILE_SET=""
while [ $# -gt 0 ]; do
    case $1 in
        --count|--poll|--out|--nofile)
            [ $# -ge 2 ] || { echo "perf/iface-scale.sh: $1 needs a value" >&2; exit 2; }
            case $1 in
                --count) COUNT=$2 COUNT_SET=1 ;;
                --poll) POLL=$2 ;;
                --out) OUT=$2 ;;
                --nofile) NOFILE_SET=$2 ;;
            esac
            shift ;;
        --quick) QUICK=1 ;;
        --no-build) BUILD=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "perf/iface-scale.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$QUICK" = 1 ] && [ "$COUNT_SET" = 0 ]; then COUNT=50; fi
[[ "$COUNT" =~ ^[1-9][0-9]*$ ]] || { echo "perf/iface-scale.sh: --count needs an integer >= 1" >&2; exit 2; }
((COUNT <= 9999)) || { echo "perf/iface-scale.sh: --count is at most 9999 (interface names)" >&2; exit 2; }
case $POLL in busy|adaptive) ;; *) echo "perf/iface-scale.sh: --poll is busy or adaptive" >&2; exit 2 ;; esac
[ -z "$NOFILE_SET" ] || [[ "$NOFILE_SET" =~ ^[1-9][0-9]*$ ]] ||
    { echo "perf/iface-scale.sh: --nofile needs an integer >= 1" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "perf/iface-scale.sh: needs root (veth pairs, DPDK)" >&2; exit 2; }
for t in ip "$PY"; do
    command -v "$t" >/dev/null || { echo "perf/iface-scale.sh: $t not found" >&2; exit 2; }
done

# ---------------------------------------------------------------------------------------------
# Hygiene: the namespace (holding every peer end), the host ends, vswitchd and its DPDK
# runtime dir are named from TAG and removed by name and PID at exit; nothing else.

TAG="vi$$"
WORK=$(mktemp -d "/tmp/vswitch-iface-scale.XXXXXX")
NS="${TAG}p"
PREFIX="${TAG}d"
VS_SOCK=$WORK/vswitchd.sock
VS_PID="" NS_MADE=0 LINKS_MADE=0

log() { echo "iface-scale: $*" >&2; }
die() { echo "perf/iface-scale.sh: $*" >&2; exit 1; }
host_if() { printf '%sh%d' "$TAG" "$1"; }

# shellcheck source=perf/proc.sh
source "$ROOT/perf/proc.sh"

cleanup() {
    local rc=$? i
    set +e
    trap - EXIT INT TERM HUP
    [ -z "$VS_PID" ] || stop_pid "$VS_PID" TERM 30
    # The namespace takes the peer ends with it, and so the host ends; any host end left
    # (the namespace was not made) is removed by its name.
    [ "$NS_MADE" = 0 ] || ip netns del "$NS" 2>/dev/null
    if [ "$LINKS_MADE" = 1 ]; then
        for ((i = 1; i <= COUNT; i++)); do
            ip link del dev "$(host_if "$i")" 2>/dev/null
        done
    fi
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

# ---------------------------------------------------------------------------------------------
# Samples of vswitchd: sample LABEL COUNT -> one line in $WORK/samples.tsv:
# label, interfaces, VmRSS, RssAnon, RssFile, RssShmem (kB), fds, threads, packet-ring
# mappings (kB: /proc/PID/maps lines of AF_PACKET sockets, "socket:[...]").

sample() {
    local label=$1 n=$2 st fds ring
    st=$(awk '/^(VmRSS|RssAnon|RssFile|RssShmem|Threads):/ {v[$1] = $2}
        END {printf "%s\t%s\t%s\t%s\t%s", v["VmRSS:"], v["RssAnon:"], v["RssFile:"], v["RssShmem:"], v["Threads:"]}' \
        "/proc/$VS_PID/status")
    fds=$(find "/proc/$VS_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    # One grep over the maps (bash's read takes a /proc file a byte per system call).
    ring=0
    while read -r range _; do
        [ -n "$range" ] || continue
        ring=$((ring + (16#${range#*-} - 16#${range%-*}) / 1024))
    done <<<"$(grep -F ' socket:[' "/proc/$VS_PID/maps" || true)"
    printf '%s\t%s\t%s\t%s\t%s\n' "$label" "$n" "$st" "$fds" "$ring" >>"$WORK/samples.tsv"
}

# ---------------------------------------------------------------------------------------------
# Build, start, add, remove, report.

if [ "$BUILD" = 1 ]; then
    log "building vswitchd and vsctl (nice -n 19 $CARGO build --release -p vswitch-control)"
    (cd "$ROOT" && nice -n 19 "$CARGO" build --release -p vswitch-control) ||
        die "build failed: nothing measured"
fi
for b in vswitchd vsctl; do
    [ -x "$REL/$b" ] || die "$REL/$b missing (build with cargo build --release -p vswitch-control)"
done
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
START=$SECONDS
log "tag $TAG, work dir $WORK, $COUNT interfaces"

# The veth pairs, in one ip -batch: host end up (IPv6 off first, so it says nothing), peer
# end down in the namespace.
ip netns add "$NS" || die "cannot create network namespace $NS"
NS_MADE=1
LINKS_MADE=1
for ((i = 1; i <= COUNT; i++)); do
    printf 'link add %s type veth peer name p%d netns %s\n' "$(host_if "$i")" "$i" "$NS"
done >"$WORK/links.batch"
t0=$EPOCHREALTIME
ip -batch "$WORK/links.batch" || die "cannot create the veth pairs (ip -batch $WORK/links.batch)"
for ((i = 1; i <= COUNT; i++)); do
    echo 1 >"/proc/sys/net/ipv6/conf/$(host_if "$i")/disable_ipv6"
    printf 'link set dev %s up\n' "$(host_if "$i")"
done >"$WORK/up.batch"
ip -batch "$WORK/up.batch" || die "cannot bring the host ends up"
VETH_SECS=$("$PY" -c 'import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 3))' "$t0" "$EPOCHREALTIME")
log "$COUNT veth pairs in ${VETH_SECS}s"

# A subshell that sets the limit and execs vswitchd: $! is vswitchd's PID.
(
    [ -z "$NOFILE_SET" ] || ulimit -n "$NOFILE_SET"
    exec "$REL/vswitchd" --socket "$VS_SOCK" --state-file "$WORK/state.json" --run-dir "$WORK/run" \
        --file-prefix "$PREFIX" --no-huge --poll "$POLL" --lcores 0,1 --workers 1
) </dev/null >"$WORK/vswitchd.log" 2>&1 &
VS_PID=$!
deadline=$((SECONDS + 30))
until timeout 5 "$REL/vsctl" --socket "$VS_SOCK" health >/dev/null 2>&1; do
    alive "$VS_PID" || die "vswitchd exited before it was ready: $(tail -n 3 "$WORK/vswitchd.log")"
    ((SECONDS < deadline)) || die "vswitchd not healthy after 30 s (log: $WORK/vswitchd.log)"
    sleep 0.05
done
NOFILE=$(awk '/^Max open files/ {print $4 " soft, " $5 " hard"}' "/proc/$VS_PID/limits")
log "vswitchd pid $VS_PID ready; RLIMIT_NOFILE $NOFILE"
sample start 0

# Adds: one vsctl per interface, timed around the call alone; a sample after each.
ADDED=0 ADD_ERR="" ADD_ERR_AT=""
: >"$WORK/add.tsv"
for ((i = 1; i <= COUNT; i++)); do
    h=$(host_if "$i")
    t0=$EPOCHREALTIME
    if out=$(vsctl iface add "v$i" af_packet iface="$h" 2>&1); then
        t1=$EPOCHREALTIME
        printf '%d\t%s\t%s\n' "$i" "$t0" "$t1" >>"$WORK/add.tsv"
        ADDED=$i
        sample add "$i"
    else
        ADD_ERR=$out ADD_ERR_AT=$i
        log "iface add v$i (iface=$h) failed after $ADDED interfaces: $out"
        break
    fi
    ((i % 100 != 0)) || log "$i added"
done
alive "$VS_PID" || die "vswitchd exited during the adds: $(tail -n 3 "$WORK/vswitchd.log")"
vsctl iface show v1 >"$WORK/iface-show-v1.txt" 2>&1 || true
vsctl --json iface list >"$WORK/iface-list.json" 2>/dev/null || true
vsctl --json workers >"$WORK/workers.json" 2>/dev/null || true
sample after-adds "$ADDED"

# Removal, in the order added.
DEL_ERR="" DEL_ERR_AT=""
: >"$WORK/del.tsv"
for ((i = 1; i <= ADDED; i++)); do
    t0=$EPOCHREALTIME
    if out=$(vsctl iface del "v$i" 2>&1); then
        t1=$EPOCHREALTIME
        printf '%d\t%s\t%s\n' "$i" "$t0" "$t1" >>"$WORK/del.tsv"
        sample del "$((ADDED - i))"
    else
        DEL_ERR=$out DEL_ERR_AT=$i
        log "iface del v$i failed: $out"
        break
    fi
done
alive "$VS_PID" || die "vswitchd exited during the removals: $(tail -n 3 "$WORK/vswitchd.log")"
sample after-removal "$((ADDED - ${DEL_ERR_AT:-$((ADDED + 1))} + 1))"
stop_pid "$VS_PID" TERM 30
VS_RC=$STOP_RC
VS_PID=""

DATE=$(date +%F)
if [ -z "$OUT" ]; then
    if [ "$QUICK" = 1 ]; then OUT=$WORK; else OUT=$ROOT/perf/results; fi
fi
mkdir -p "$OUT"
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=false
[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] || DIRTY=true
export WORK DATE REV DIRTY COUNT ADDED ADD_ERR ADD_ERR_AT DEL_ERR DEL_ERR_AT NOFILE LOAD_START
export POLL VETH_SECS VS_RC BUILD
export CMD="perf/iface-scale.sh $ARGS" ELAPSED=$((SECONDS - START))
rc=0
"$PY" - "$OUT/$DATE-iface-scale.md" "$OUT/$DATE-iface-scale.json" <<'EOF' || rc=$?
import json, os, statistics, sys

E = os.environ
work, out_md, out_json = E["WORK"], sys.argv[1], sys.argv[2]

def times(name):
    rows = []
    with open(f"{work}/{name}.tsv") as f:
        for line in f:
            i, a, b = line.split()
            rows.append((int(i), (float(b) - float(a)) * 1e3))
    return rows

def stats(rows):
    if not rows: return None
    v = [ms for _, ms in rows]
    s = sorted(v)
    k = min(10, len(v))
    return {"n": len(v), "first_ms": round(v[0], 2), "median_ms": round(statistics.median(v), 2),
            "p99_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))], 2), "max_ms": round(s[-1], 2),
            "last_ms": round(v[-1], 2), "last_over_first": round(v[-1] / v[0], 2) if v[0] else None,
            f"mean_first_{k}_ms": round(statistics.mean(v[:k]), 2),
            f"mean_last_{k}_ms": round(statistics.mean(v[-k:]), 2),
            "total_s": round(sum(v) / 1e3, 2)}

samples = []
with open(f"{work}/samples.tsv") as f:
    for line in f:
        lab, n, rss, anon, file_, shmem, thr, fds, ring = line.rstrip("\n").split("\t")
        samples.append({"label": lab, "interfaces": int(n), "vm_rss_kb": int(rss or 0),
                        "rss_anon_kb": int(anon or 0), "rss_file_kb": int(file_ or 0),
                        "rss_shmem_kb": int(shmem or 0), "threads": int(thr or 0),
                        "fds": int(fds), "packet_ring_maps_kb": int(ring)})
first = lambda lab: next(s for s in samples if s["label"] == lab)
start, full, end = first("start"), first("after-adds"), first("after-removal")
added = int(E["ADDED"])
per = lambda k: round((full[k] - start[k]) / added, 1) if added else None
# The rings of a native port (control/src/switch/txn.rs, NATIVE_RINGS): rx ring 256 x 2 KiB
# + tx ring 128 x 2 KiB, and a 65,549-byte copy buffer on the heap (ffi/kport).
RING_KB, COPYBUF_B = (256 * 2048 + 128 * 2048) // 1024, 65549
add, dele = stats(times("add")), stats(times("del"))
# Growth along the way (every tenth of the adds).
step = max(1, added // 10)
curve = [s for s in samples if s["label"] == "add" and (s["interfaces"] % step == 0 or s["interfaces"] == 1)]
show = ""
try: show = open(f"{work}/iface-show-v1.txt").read().strip()
except OSError: pass
doc = {"profile": "iface-scale",
       "settings": {"date": E["DATE"], "command": E["CMD"], "git_revision": E["REV"],
                    "git_dirty": E["DIRTY"] == "true", "count": int(E["COUNT"]), "poll": E["POLL"],
                    "workers": 1, "rlimit_nofile": E["NOFILE"], "load_start": E["LOAD_START"],
                    "built": E["BUILD"] == "1", "elapsed_s": int(E["ELAPSED"]),
                    "veth_setup_s": float(E["VETH_SECS"]), "cpus": os.cpu_count()},
       "added": added, "add_error": E["ADD_ERR"] or None,
       "add_error_at": int(E["ADD_ERR_AT"]) if E["ADD_ERR_AT"] else None,
       "del_error": E["DEL_ERR"] or None, "del_error_at": int(E["DEL_ERR_AT"]) if E["DEL_ERR_AT"] else None,
       "vswitchd_exit_status": int(E["VS_RC"]),
       "add_ms": add, "del_ms": dele,
       "memory": {"start": start, "after_adds": full, "after_removal": end,
                  "per_interface": {k: per(k) for k in ("vm_rss_kb", "rss_anon_kb", "rss_file_kb",
                                                         "rss_shmem_kb", "fds", "packet_ring_maps_kb", "threads")},
                  "documented_ring_kb_per_port": RING_KB, "documented_copy_buffer_bytes": COPYBUF_B,
                  "iface_show_v1": show},
       "curve": curve}
with open(out_json, "w") as f: json.dump(doc, f, indent=1)

L = [f"# af_packet interfaces at scale, {E['DATE']}\n",
     f"`{E['CMD']}` at {E['REV']}{' (uncommitted changes)' if E['DIRTY'] == 'true' else ''}: one vswitchd "
     f"(`--workers 1 --poll {E['POLL']} --lcores 0,1 --no-huge`), {E['COUNT']} veth pairs (host ends here, peers in "
     f"one namespace, made in {E['VETH_SECS']} s), each host end added as `vsctl iface add vN af_packet iface=HOST` "
     f"(driver=native) one call at a time, then each removed with `vsctl iface del vN`. Times are per vsctl call, "
     f"its start to its exit (process start, gRPC, the switch's work, the state file written). "
     f"RLIMIT_NOFILE of vswitchd: {E['NOFILE']}. Load average at the start: {E['LOAD_START']}.\n"]
if E["ADD_ERR"]:
    L.append(f"**Add {E['ADD_ERR_AT']} failed** after {added} interfaces; vsctl said, verbatim:\n")
    L.append("```\n" + E["ADD_ERR"] + "\n```\n")
else:
    L.append(f"All {added} interfaces added.\n")
def trow(name, s):
    if not s: return f"| {name} | - | - | - | - | - | - | - | - |"
    k = [x for x in s if x.startswith("mean_first_")][0]; kl = k.replace("first", "last")
    return (f"| {name} | {s['n']} | {s['first_ms']:.1f} | {s['median_ms']:.1f} | {s['p99_ms']:.1f} | "
            f"{s['last_ms']:.1f} | {s['last_over_first']}x | {s[k]:.1f} / {s[kl]:.1f} | {s['total_s']:.1f} |")
L.append("| vsctl call | calls | first ms | median ms | p99 ms | last ms | last / first | mean of first 10 / last 10 ms | total s |")
L.append("|---|---|---|---|---|---|---|---|---|")
L.append(trow("iface add", add))
L.append(trow("iface del", dele))
L.append("")
if E["DEL_ERR"]:
    L.append(f"**Removal {E['DEL_ERR_AT']} failed**, verbatim:\n\n```\n{E['DEL_ERR']}\n```\n")
mrow = lambda name, s: (f"| {name} | {s['interfaces']} | {s['vm_rss_kb'] / 1024:.1f} | {s['rss_anon_kb'] / 1024:.1f} | "
                        f"{s['rss_file_kb'] / 1024:.1f} | {s['rss_shmem_kb'] / 1024:.1f} | {s['packet_ring_maps_kb'] / 1024:.1f} | "
                        f"{s['fds']} | {s['threads']} |")
L.append("| vswitchd | interfaces | VmRSS MiB | RssAnon MiB | RssFile MiB | RssShmem MiB | packet-ring maps MiB | fds | threads |")
L.append("|---|---|---|---|---|---|---|---|---|")
L.append(mrow("started", start))
L.append(mrow("after the adds", full))
L.append(mrow("after the removals", end))
if added:
    p = doc["memory"]["per_interface"]
    L.append(f"| per interface added | 1 | {p['vm_rss_kb'] / 1024:.3f} | {p['rss_anon_kb'] / 1024:.3f} | "
             f"{p['rss_file_kb'] / 1024:.3f} | {p['rss_shmem_kb'] / 1024:.3f} | {p['packet_ring_maps_kb'] / 1024:.3f} | "
             f"{p['fds']} | {p['threads']} |")
L.append("")
L.append(f"Packet-ring maps: the AF_PACKET ring mappings in /proc/PID/maps (`socket:[...]`), the kernel memory "
         f"the rings pin; `vsctl iface show` does not print a port's ring size, so the documented default is "
         f"given next to it: {RING_KB} KiB of rings per port (rx 256 x 2 KiB + tx 128 x 2 KiB, "
         f"control/src/switch/txn.rs NATIVE_RINGS) and a {COPYBUF_B}-byte copy buffer on the heap per port; "
         f"{added} ports x {RING_KB / 1024:.1f} MiB = {added * RING_KB / 1024:.0f} MiB of rings. The kernel maps a "
         f"ring's pages when the port opens it, so they are in VmRSS (as RssFile) from the add on, traffic or not.\n")
if curve:
    L.append("Growth along the adds:\n")
    L.append("| interfaces | add ms | VmRSS MiB | fds |")
    L.append("|---|---|---|---|")
    addt = dict(times("add"))
    for s in curve:
        L.append(f"| {s['interfaces']} | {addt.get(s['interfaces'], 0):.1f} | {s['vm_rss_kb'] / 1024:.1f} | {s['fds']} |")
    L.append("")
if show:
    L.append("`vsctl iface show v1` with every interface added:\n\n```\n" + show + "\n```\n")
L.append(f"vswitchd exit status after SIGTERM: {E['VS_RC']}.")
with open(out_md, "w") as f: f.write("\n".join(L) + "\n")
print("\n".join(L))
sys.exit(1 if added == 0 else 0)
EOF
log "results: $OUT/$DATE-iface-scale.md, $OUT/$DATE-iface-scale.json"
exit "$rc"
