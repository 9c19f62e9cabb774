#!/usr/bin/env bash
# vs-test: serial
# The benchmark suite's smoke test: `perf/run.sh --quick` runs the five quick profiles
# (run.sh's QUICK_PROFILES: xconnect, l2-1k, ipv4-1k, v2v-vhost, v2v-memif; not l2-100k and
# ipv4-1M, whose set-up takes minutes, nor ipv6-10k, until the dataplane forwards IPv6) once, briefly, for vswitch, the I/O floor (dpdk-testpmd) and OVS-DPDK
# (reported as missing where it is not installed). It fails when run.sh's quick list differs
# from those five, when one of them is absent from the results, or when vswitch or the floor
# has no figure above zero in one of them; never on speed.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "12-perf-quick"
want=(xconnect l2-1k ipv4-1k v2v-vhost v2v-memif)
got=$(bash "$VS_ROOT/perf/run.sh" --quick --list-profiles | tr '\n' ' ')
[[ "$got" == "${want[*]} " ]] ||
    fail "perf/run.sh --quick runs '${got% }', this test (and its header) say '${want[*]}'"

log "perf/run.sh --quick --no-build (profiles ${want[*]})"
out=$VS_TMP/quick
rc=0
timeout 300 bash "$VS_ROOT/perf/run.sh" --quick --no-build --out "$out" >"$VS_TMP/quick.log" 2>&1 ||
    rc=$?
cat "$VS_TMP/quick.log"
((rc == 0)) || fail "perf/run.sh --quick exited $rc (output above)"
results=("$out"/*.json)
[[ -f "${results[0]}" ]] || fail "perf/run.sh --quick wrote no results JSON in $out"
"$VS_PY" - "${results[0]}" "${want[@]}" <<'EOF' || fail "the quick results do not show every quick profile forwarding (above)"
import json, sys
doc = json.load(open(sys.argv[1]))
want = sys.argv[2:]
names = [p["name"] for p in doc["profiles"]]
if names != want:
    sys.exit("profiles in the results: %s, expected %s" % (names, want))
bad = []
for p in doc["profiles"]:
    line = []
    for system in ("vswitch", "floor", "ovs"):
        e = p["systems"][system]
        mpps = (e.get("mpps") or {}).get("median")
        line.append("%s %s" % (system, "%.2f Mpps" % mpps if mpps is not None else e["status"]))
        if system != "ovs" and not (e["status"] == "ok" and mpps and mpps > 0):
            bad.append("%s/%s: %s %s" % (p["name"], system, e["status"], e.get("reason", "")))
    print("[12-perf-quick] %s: %s" % (p["name"], ", ".join(line)))
if bad:
    sys.exit("forwarded nothing: " + "; ".join(bad))
EOF
vs_pass
