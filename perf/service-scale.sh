#!/usr/bin/env bash
# perf/service-scale.sh: programming services at scale (issue 18's goal: 10k services x 10
# backends in under 10 s), against the real daemon through vsctl:
#
#  1. a null interface `up` with 10.0.0.1/16 and a route 10.128.0.0/9 via 10.0.0.254 (the
#     backends' network: every backend must be reachable for a service to be accepted);
#  2. --services N services (default 10,000), each a VIP 10.96.x.y:80 tcp over --backends B
#     backends (default 10) in 10.128.0.0/9, written as `vsctl transaction` files of --batch
#     lines (default 1,000) and applied one file after the other: the seconds from the first
#     transaction's start to the last one's answer (files written beforehand), per batch too;
#  3. `service list` (the count), `service show` of one, and the daemon's RSS;
#  4. one `service set` of a service's backends and one `service del`: the time of each call;
#  5. a restart from the state file: the seconds to ready, and the service count after it.
#
#   perf/service-scale.sh [--services N] [--backends B] [--batch N]
#
# Binaries: target/release (VS_BIN_DIR). No traffic, no namespaces. Everything it makes (the
# daemon, its socket, state file, --file-prefix under a temp dir) is named from a per-run tag
# and removed by PID and name at exit (ci/lib.sh).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=ci/lib.sh
source "$ROOT/ci/lib.sh"

SERVICES=10000
BACKENDS=10
BATCH=1000
while (($#)); do
    case $1 in
        --services) SERVICES=$2; shift ;;
        --backends) BACKENDS=$2; shift ;;
        --batch) BATCH=$2; shift ;;
        *) echo "usage: perf/service-scale.sh [--services N] [--backends B] [--batch N]" >&2; exit 2 ;;
    esac
    shift
done
((SERVICES >= 1 && SERVICES <= 65000)) || { echo "--services is 1 to 65000" >&2; exit 2; }
((BACKENDS >= 0 && BACKENDS <= 1000)) || { echo "--backends is 0 to 1000" >&2; exit 2; }
((BATCH >= 1)) || { echo "--batch is at least 1" >&2; exit 2; }

vs_test_init "service-scale"
VS_READY_TIMEOUT=300
log "vswitchd $VSWITCHD_BIN ($(git -C "$ROOT" rev-parse --short HEAD)), load average $(cut -d' ' -f1-3 /proc/loadavg)"

rss() { awk '/^VmRSS:/ {print $2 / 1024 " MB"}' "/proc/$VSWITCHD_PID/status"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# The transaction files: service i has VIP 10.96.(i/256).(i%256):80 and backends
# 10.(128 + i/4096).((i/16)%256).((i%16)*16 + j + 1):8080 (distinct per service).
"$VS_PY" - "$VS_TMP" "$SERVICES" "$BACKENDS" "$BATCH" <<'EOF'
import sys
tmp, n, nb, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
f, k = None, 0
for i in range(n):
    if i % batch == 0:
        if f:
            f.close()
        f = open(f"{tmp}/txn{k:05d}", "w")
        k += 1
    b = ",".join(
        f"10.{128 + i // 4096}.{(i // 16) % 256}.{(i % 16) * 16 + j + 1}:8080" for j in range(nb)
    )
    f.write(f"service add s{i} 10.96.{i // 256}.{i % 256}:80 proto=tcp backends={b}\n")
f.close()
EOF
FILES=("$VS_TMP"/txn*)
log "${#FILES[@]} transaction files of up to $BATCH services x $BACKENDS backends"

start_vswitchd
run_ok "add up" vsctl iface add up null
run_ok "addr" vsctl addr add up 10.0.0.1/16
run_ok "route" vsctl route add 10.128.0.0/9 via 10.0.0.254
log "RSS before: $(rss)"

t0=$(now)
for f in "${FILES[@]}"; do
    t=$(now)
    run_ok "transaction $f" vsctl transaction "$f" >/dev/null
    echo "BATCH $(basename "$f") $(secs "$t" "$(now)") s"
done
t1=$(now)
TOTAL=$(secs "$t0" "$t1")
echo "RESULT services=$SERVICES backends=$BACKENDS batch=$BATCH seconds=$TOTAL rss=$(rss)"

count=$(vsctl --json service list | "$VS_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq "$count" "$SERVICES" "services listed"
vsctl service show s0 | head -n 3
t=$(now)
run_ok "set" vsctl service set s1 backends=10.200.0.1:80,10.200.0.2:80*2
echo "SET one service's backends: $(secs "$t" "$(now)") s"
t=$(now)
run_ok "del" vsctl service del s2
echo "DEL one service: $(secs "$t" "$(now)") s"
vsctl service show s1 | head -n 4

stop_vswitchd
t=$(now)
restart_vswitchd
echo "RESTART to ready with $((SERVICES - 1)) services: $(secs "$t" "$(now)") s, rss $(rss)"
count=$(vsctl --json service list | "$VS_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
assert_eq "$count" "$((SERVICES - 1))" "services after the restart"
stop_vswitchd
vs_pass
