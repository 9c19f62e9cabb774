#!/usr/bin/env bash
# --metrics ADDR:PORT serves Prometheus text at /metrics: it parses as the text exposition
# format (every sample line NAME{LABELS} VALUE, each family announced by # TYPE), and holds
# per-interface counters that move with traffic, per-worker cycles, and every drop reason.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "11-metrics"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
VSWITCHD_EXTRA=(--metrics "127.0.0.1:$port")
start_vswitchd

# Traffic: a looping pcap cross-connected to a null sink.
pcap=$VS_TMP/src.pcap
"$VS_BIN_DIR/vswitch-pktgen" --profile xconnect --count 64 --flows 64 --out "$pcap" >/dev/null 2>&1 ||
    fail "vswitch-pktgen could not write $pcap"
run_ok "add pcap src" vsctl iface add src pcap rx="$pcap" loop=on >/dev/null
run_ok "add null sink" vsctl iface add sink null >/dev/null
run_ok "cross-connect" vsctl xconnect add src sink >/dev/null
sleep 1

fetch() {
    python3 - "$port" "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://127.0.0.1:%s%s" % (sys.argv[1], sys.argv[2]), timeout=5)
    print(r.status)
    print(r.headers.get("Content-Type"))
    sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code)
PY
}

out=$(fetch /metrics)
status=$(sed -n 1p <<<"$out")
ctype=$(sed -n 2p <<<"$out")
assert_eq "$status" 200 "GET /metrics status"
[[ "$ctype" == text/plain* ]] || fail "Content-Type is '$ctype', expected text/plain"
VS_METRICS=$(tail -n +3 <<<"$out") python3 - <<'PY' || fail "/metrics is not valid Prometheus text or lacks counters (see above)"
import os, re, sys
text = os.environ["VS_METRICS"]
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? (-?[0-9.]+(e[+-]?[0-9]+)?|NaN|\+Inf|-Inf)$')
typed, values = set(), {}
for n, line in enumerate(text.splitlines(), 1):
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ", 3)
        assert kind in ("counter", "gauge", "summary", "histogram", "untyped"), line
        typed.add(name)
        continue
    if line.startswith("#") or not line:
        continue
    m = sample.match(line)
    if not m:
        sys.exit("line %d is not a sample: %r" % (n, line))
    name = m.group(1)
    base = re.sub(r'_(count|sum)$', '', name)
    if name not in typed and base not in typed:
        sys.exit("line %d: %s has no # TYPE before it" % (n, name))
    values[name + (m.group(2) or "")] = float(m.group(5))
def get(key):
    if key not in values:
        sys.exit("missing sample %s" % key)
    return values[key]
assert get('vswitch_interface_rx_packets_total{iface="src",type="pcap"}') > 0, "src rx did not move"
assert get('vswitch_interface_tx_packets_total{iface="sink",type="null"}') > 0, "sink tx did not move"
assert get('vswitch_worker_packets_total{worker="0",lcore="1"}') > 0
get('vswitch_worker_cycles_per_packet{worker="0"}')
for reason in ("tx_full", "unconnected", "vlan_mismatch", "fdb_limit"):
    get('vswitch_drops_total{reason="%s"}' % reason)
get('vswitch_mempool_in_use{pool="vs_mbufs"}')
print("metrics: %d samples, %d families" % (len(values), len(typed)))
PY
# The reference parser (the Prometheus project's Python client) reads it too.
VS_METRICS=$(tail -n +3 <<<"$out") /usr/bin/python3 - <<'PY' || fail "prometheus_client cannot parse /metrics (see above)"
import os, sys
from prometheus_client.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(os.environ["VS_METRICS"]))
names = {f.name for f in families}
for want in ("vswitch_interface_rx_packets", "vswitch_drops", "vswitch_worker_cycles_per_packet"):
    if want not in names:
        sys.exit("prometheus_client: no family %s in %s" % (want, sorted(names)))
samples = sum(len(f.samples) for f in families)
print("[11-metrics] prometheus_client parsed %d families, %d samples" % (len(families), samples))
PY
log "/metrics parses and its counters move"

assert_eq "$(fetch /nope | sed -n 1p)" 404 "GET /nope status"
stop_vswitchd
vs_pass
