#!/usr/bin/env bash
# --metrics ADDR:PORT serves Prometheus text at /metrics:
#   - it parses as the text exposition format (every sample line NAME{LABELS} VALUE, each
#     family announced by # TYPE), and the Prometheus project's own parser (prometheus_client)
#     reads the same samples;
#   - every drop reason the switch has (the nine of the dataplane's DropReason and the three
#     refused-learning counters of Switch::drops) is in /metrics and in `vsctl --json drops`,
#     and no other; all are 0 before any traffic;
#   - counters move by exactly what the test sends: pcap files of known frames (no loop) are
#     played into the switch, each set of interfaces configured in one transaction (the
#     workers see it whole), and each counter is checked against the frames sent:
#       a cross-connect pcap -> null: rx/tx packets and bytes both ends, no drops;
#       a pcap with no peer: unconnected; a cross-connect to a null that is down: iface_down;
#       a bridge (access VLAN 10, flooding off, learn-limit 1): too-short frames bad_header,
#       frames tagged 20 vlan_mismatch, frames to a MAC on their own port same_port, unknown
#       unicast flood_off, frames to a static MAC forwarded, two new sources fdb_limit;
#     the reasons nothing here can cause (tx_full: a null device takes everything; no_mbuf,
#     no_tx_queue: one worker has a tx queue on every port; fdb_full, learn_queue_full)
#     stay 0;
#   - the worker: packets equal every frame sent; busy and total cycles increase with
#     traffic; cycles_per_packet is busy_cycles / packets and in 1..1e6; busy_pct in 0..100
#     (busy_ratio in /metrics in 0..1);
#   - /metrics and vsctl agree on every interface counter, drop reason and worker packet
#     count once the traffic is over; a path other than /metrics is 404.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "11-metrics"
"$VS_PY" -c 'import prometheus_client' 2>/dev/null ||
    fail "python3-prometheus-client missing (bash ci/setup.sh)"
port=$("$VS_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
VSWITCHD_EXTRA=(--metrics "127.0.0.1:$port")
start_vswitchd

# Every drop reason: dataplane/src/counters.rs (DropReason::ALL) and the learning refusals
# added by control/src/switch/mod.rs (Switch::drops).
REASONS='["tx_full", "unconnected", "iface_down", "no_tx_queue", "bad_header",
          "vlan_mismatch", "same_port", "flood_off", "no_mbuf",
          "punt_full", "offload_unsupported", "graph_loop", "mtu_exceeded",
          "no_route", "bad_checksum", "martian", "not_ip", "no_encap",
          "outer_bad_header", "outer_fragment", "udp_bad_length", "vxlan_short",
          "vxlan_no_i_flag", "geneve_short", "geneve_version", "geneve_control",
          "geneve_critical_option", "geneve_proto", "gre_short", "gre_version",
          "gre_reserved_bits", "gre_checksum", "gre_proto", "inner_too_short",
          "vxlan_unknown_vni", "udp_no_tunnel", "tunnel_mtu_exceeded", "tunnel_no_remote",
          "geneve_unknown_vni", "tunnel_unknown", "acl_deny", "session_limit",
          "fdb_limit", "fdb_full", "learn_queue_full"]'

# metrics_doc [PATH]: GET PATH (default /metrics) and print one JSON document: {status,
# ctype, samples: {"NAME{LABELS}": value}, families}. The text must be valid exposition
# format (checked line by line here) and prometheus_client must read the same samples.
metrics_doc() {
    "$VS_PY" - "$port" "${1:-/metrics}" <<'PY'
import json, re, sys, urllib.error, urllib.request
from prometheus_client.parser import text_string_to_metric_families
port, path = sys.argv[1], sys.argv[2]
try:
    r = urllib.request.urlopen("http://127.0.0.1:%s%s" % (port, path), timeout=5)
    status, ctype, text = r.status, r.headers.get("Content-Type"), r.read().decode()
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code}))
    sys.exit()
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*")*)?\})? '
                    r'(-?[0-9.]+(e[+-]?[0-9]+)?|NaN|\+Inf|-Inf)$')
typed, values = set(), {}
for n, line in enumerate(text.splitlines(), 1):
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ", 3)
        if kind not in ("counter", "gauge", "summary", "histogram", "untyped"):
            sys.exit("line %d: unknown metric type: %r" % (n, line))
        typed.add(name)
        continue
    if line.startswith("#") or not line:
        continue
    m = sample.match(line)
    if not m:
        sys.exit("line %d is not a sample: %r" % (n, line))
    name = m.group(1)
    if name not in typed and re.sub(r"_(count|sum)$", "", name) not in typed:
        sys.exit("line %d: %s has no # TYPE before it" % (n, name))
    key = name + (m.group(2) or "")
    if key in values:
        sys.exit("line %d: sample %s twice" % (n, key))
    values[key] = float(m.group(5))
# The reference parser must see the same samples with the same values.
ref = {}
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        labels = ",".join('%s="%s"' % kv for kv in s.labels.items())
        ref[s.name + ("{%s}" % labels if labels else "")] = float(s.value)
if ref != values:
    diff = sorted(set(ref.items()) ^ set(values.items()))[:10]
    sys.exit("prometheus_client reads other samples than the text has: %s" % diff)
print(json.dumps({"status": status, "ctype": ctype, "samples": values,
                  "families": sorted(typed)}))
PY
}

# mkpcap FILE GROUPS: a classic pcap whose frames are given by GROUPS, a JSON list of
# {"n": COUNT, "dst": MAC, "src": MAC, "vlan": ID (optional), "len": BYTES (default 60)};
# a len below 14 gives a frame that short (no complete Ethernet header). Prints the total
# number of bytes of the frames.
mkpcap() {
    "$VS_PY" - "$1" "$2" <<'PY'
import json, struct, sys
path, groups = sys.argv[1], json.loads(sys.argv[2])
total = 0
with open(path, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    i = 0
    for g in groups:
        length = g.get("len", 60)
        for _ in range(g["n"]):
            hdr = bytes.fromhex(g["dst"].replace(":", "")) + bytes.fromhex(g["src"].replace(":", ""))
            if g.get("vlan") is not None:
                hdr += struct.pack("!HH", 0x8100, g["vlan"])
            hdr += struct.pack("!H", 0x88B5)  # local experimental ethertype
            frame = (hdr + b"vswitch-ci-11-%06d" % i).ljust(length, b"\0")[:length]
            f.write(struct.pack("<IIII", 1, i, len(frame), len(frame)) + frame)
            total += len(frame)
            i += 1
print(total)
PY
}

# txn LINES...: one vsctl transaction of these commands.
TXNS=0
txn() {
    TXNS=$((TXNS + 1))
    printf '%s\n' "$@" >"$VS_TMP/txn$TXNS.txt"
    run_ok "transaction $TXNS ($*)" vsctl transaction "$VS_TMP/txn$TXNS.txt" >/dev/null
}

# Frames sent so far (all through worker 0), and the worker's packet count is waited for
# after each step so that every counter delta belongs to that step.
SENT=0
worker_packets_are() {
    local doc
    doc=$(vsctl --json workers 2>/dev/null) || return 1
    vs_json_true 'sum(w["packets"] for w in d) == n' n:="$1" <<<"$doc"
}
played() {
    SENT=$((SENT + $1))
    wait_until 20 "the worker received all $SENT frames sent so far" worker_packets_are "$SENT"
}

# drops_are JSON: `vsctl --json drops` equals {every reason: 0} updated with JSON.
drops_are() {
    local doc
    doc=$(vsctl --json drops) || fail "vsctl --json drops failed"
    vs_json_true 'd == dict({r: 0 for r in reasons}, **want)' reasons:="$REASONS" \
        want:="$1" <<<"$doc" || fail "drops: expected every reason 0 except $1, got $doc"
}

# iface_is NAME JSON: `vsctl --json stats NAME` has the fields and values of JSON.
iface_is() {
    local doc
    doc=$(vsctl --json stats "$1") || fail "vsctl --json stats $1 failed"
    vs_json_true 'all(d.get(k) == v for k, v in want.items())' want:="$2" <<<"$doc" ||
        fail "interface $1: expected $2, got $doc"
}

# ---------------------------------------------------------------------------------------
# Before any traffic: the format, every reason present and 0, on both sides.
doc=$(metrics_doc) || fail "/metrics is not valid Prometheus text (see above)"
assert_eq "$(vs_json 'd["status"]' <<<"$doc")" 200 "GET /metrics status"
vs_json_true 'd["ctype"].startswith("text/plain")' <<<"$doc" ||
    fail "Content-Type is $(vs_json 'd["ctype"]' <<<"$doc"), expected text/plain"
vs_json_true 'sorted(k[len(p):-2] for k in d["samples"] if k.startswith(p)) == sorted(reasons)' \
    p='vswitch_drops_total{reason="' reasons:="$REASONS" <<<"$doc" ||
    fail "/metrics drop reasons: $(vs_json '[k for k in d["samples"] if "drops_total" in k]' <<<"$doc"), expected $REASONS"
vs_json_true 'all(v == 0 for k, v in d["samples"].items() if k.startswith("vswitch_drops_total"))' \
    <<<"$doc" || fail "/metrics: drops before any traffic"
drops_are '{}'
log "before traffic: $(vs_json 'len(d["samples"])' <<<"$doc") samples; the 20 drop reasons in /metrics and vsctl, all 0"
w0=$(vsctl --json workers)
assert_eq "$(vs_json 'len(d)' <<<"$w0")" 1 "workers"
lcore=$(vs_json 'd[0]["lcore"]' <<<"$w0")

# 1. A cross-connect, pcap -> null: 20000 frames of 60 bytes (enough busy polls for the
#    cycle counters), counted exactly at both ends.
N=20000
bytes=$(mkpcap "$VS_TMP/xc.pcap" "[{\"n\": $N, \"dst\": \"02:00:00:00:11:02\", \"src\": \"02:00:00:00:11:01\"}]")
txn "iface add xsink null" "iface add xsrc pcap rx=$VS_TMP/xc.pcap" "xconnect add xsrc xsink"
played "$N"
iface_is xsrc "{\"rx_packets\": $N, \"rx_bytes\": $bytes, \"tx_packets\": 0, \"drops\": 0}"
iface_is xsink "{\"tx_packets\": $N, \"tx_bytes\": $bytes, \"rx_packets\": 0, \"drops\": 0}"
drops_are '{}'
log "cross-connect: $N frames ($bytes bytes) in on xsrc and out on xsink, no drops"
w1=$(vsctl --json workers)

# The worker's cycles: they moved with the traffic and are plausible.
vs_json_true 'w1[0]["busy_cycles"] > w0[0]["busy_cycles"] and w1[0]["total_cycles"] > w0[0]["total_cycles"]' \
    w0:="$w0" w1:="$w1" <<<'null' || fail "worker cycles did not increase with traffic: before $w0, after $w1"
vs_json_true 'abs(d[0]["cycles_per_packet"] - d[0]["busy_cycles"] / d[0]["packets"]) <= 0.01 * d[0]["cycles_per_packet"]' \
    <<<"$w1" || fail "cycles_per_packet is not busy_cycles / packets: $w1"
vs_json_true '1 <= d[0]["cycles_per_packet"] <= 1e6 and 0 <= d[0]["busy_pct"] <= 100' <<<"$w1" ||
    fail "worker figures out of range (cycles_per_packet 1..1e6, busy_pct 0..100): $w1"
log "worker 0 (lcore $lcore): $(vs_json '"%d packets, %.1f cycles/packet, busy %.2f%%, busy cycles +%d, total cycles +%d" % (
    d[0]["packets"], d[0]["cycles_per_packet"], d[0]["busy_pct"], d[0]["busy_cycles"] - w0[0]["busy_cycles"],
    d[0]["total_cycles"] - w0[0]["total_cycles"])' w0:="$w0" <<<"$w1")"

# 2. A pcap with no peer: every frame dropped as unconnected, counted on that interface.
bytes=$(mkpcap "$VS_TMP/lone.pcap" '[{"n": 7, "dst": "02:00:00:00:11:04", "src": "02:00:00:00:11:03"}]')
txn "iface add lone pcap rx=$VS_TMP/lone.pcap"
played 7
iface_is lone "{\"rx_packets\": 7, \"rx_bytes\": $bytes, \"drops\": 7}"
drops_are '{"unconnected": 7}'
log "no peer: 7 frames, unconnected 7"

# 3. A cross-connect to a null interface that is down: iface_down, on the output.
mkpcap "$VS_TMP/down.pcap" '[{"n": 5, "dst": "02:00:00:00:11:06", "src": "02:00:00:00:11:05"}]' >/dev/null
txn "iface add dsink null" "iface set dsink down" "iface add dsrc pcap rx=$VS_TMP/down.pcap" \
    "xconnect add dsrc dsink"
played 5
iface_is dsrc '{"rx_packets": 5}'
iface_is dsink '{"tx_packets": 0}'
drops_are '{"unconnected": 7, "iface_down": 5}'
log "peer down: 5 frames, iface_down 5"

# 4. A bridge: bsrc and bsink access members of VLAN 10, flooding off, learn-limit 1, a
#    static MAC on each member. The frames, in this order:
#      3 of 10 bytes                       bad_header
#      4 tagged with VLAN 20               vlan_mismatch (tagged on an access member)
#      5 to the static MAC on bsrc itself  same_port       (source S1: learned)
#      6 to an unknown unicast MAC         flood_off       (source S1)
#      2 to the static MAC on bsink        forwarded       (source S1)
#      1 from S2 and 1 from S3 to bsink    forwarded, not learned: fdb_limit 2
SAME=02:00:00:00:12:0a K=02:00:00:00:12:0b S1=02:00:00:00:12:01
bgroups=$("$VS_PY" -c 'import json, sys; same, k, s1 = sys.argv[1:]; print(json.dumps([
    {"n": 3, "dst": k, "src": s1, "len": 10},
    {"n": 4, "dst": k, "src": s1, "vlan": 20},
    {"n": 5, "dst": same, "src": s1},
    {"n": 6, "dst": "02:00:00:00:12:ff", "src": s1},
    {"n": 2, "dst": k, "src": s1},
    {"n": 1, "dst": k, "src": "02:00:00:00:12:02"},
    {"n": 1, "dst": k, "src": "02:00:00:00:12:03"}]))' "$SAME" "$K" "$S1")
mkpcap "$VS_TMP/bridge.pcap" "$bgroups" >/dev/null
txn "bridge add bx flood=off learn-limit=1" "iface add bsink null" \
    "iface add bsrc pcap rx=$VS_TMP/bridge.pcap" "bridge attach bx bsrc vlan=10" \
    "bridge attach bx bsink vlan=10" "fdb add bx $SAME bsrc vlan=10" "fdb add bx $K bsink vlan=10"
played 22
wait_until 10 "fdb_limit counts the two sources over bx's learn limit" drops_at_least fdb_limit 2
drops_are '{"unconnected": 7, "iface_down": 5, "bad_header": 3, "vlan_mismatch": 4,
            "same_port": 5, "flood_off": 6, "fdb_limit": 2}'
iface_is bsrc '{"rx_packets": 22, "drops": 18}'
iface_is bsink '{"tx_packets": 4, "drops": 0}'
learned=$(vsctl --json fdb show bx | vs_json '[e["mac"] for e in d if not e["static"]]')
assert_eq "$learned" "[\"$S1\"]" "learned entries of bx (learn-limit 1)"
log "bridge: 22 frames: bad_header 3, vlan_mismatch 4, same_port 5, flood_off 6, 4 forwarded, fdb_limit 2; $S1 learned"

# ---------------------------------------------------------------------------------------
# /metrics now, against vsctl: every interface counter, every drop reason, the worker.
doc=$(metrics_doc) || fail "/metrics is not valid Prometheus text (see above)"
ifaces=$(vsctl --json iface list)
drops=$(vsctl --json drops)
workers=$(vsctl --json workers)
vs_json_true 'all(m["vswitch_interface_%s_total{iface=\"%s\",type=\"%s\"}" % (f, i["name"], i["type"])]
                  == i[f] for i in ifaces
                  for f in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "drops"))' \
    m:="$(vs_json 'd["samples"]' <<<"$doc")" ifaces:="$ifaces" <<<'null' ||
    fail "/metrics interface counters differ from vsctl --json iface list: $ifaces"
vs_json_true 'all(m["vswitch_drops_total{reason=\"%s\"}" % r] == n for r, n in drops.items())' \
    m:="$(vs_json 'd["samples"]' <<<"$doc")" drops:="$drops" <<<'null' ||
    fail "/metrics drops differ from vsctl --json drops: $drops"
vs_json_true 'all(m["vswitch_worker_packets_total{worker=\"%d\",lcore=\"%d\"}" % (w["id"], w["lcore"])] == w["packets"] == n
                  and 1 <= m["vswitch_worker_cycles_per_packet{worker=\"%d\"}" % w["id"]] <= 1e6
                  and 0 <= m["vswitch_worker_busy_ratio{worker=\"%d\"}" % w["id"]] <= 1 for w in workers)' \
    m:="$(vs_json 'd["samples"]' <<<"$doc")" workers:="$workers" n:="$SENT" <<<'null' ||
    fail "/metrics worker samples differ from vsctl --json workers ($workers) or are out of range"
vs_json_true 'd["samples"]["vswitch_fdb_learned{bridge=\"bx\"}"] == 1 and d["samples"]["vswitch_fdb_learn_limit{bridge=\"bx\"}"] == 1' \
    <<<"$doc" || fail "/metrics: bx should have 1 learned entry of a limit of 1"
vs_json_true 'd["samples"]["vswitch_mempool_in_use{pool=\"vs_mbufs\"}"] >= 0' <<<"$doc" ||
    fail "/metrics: no vswitch_mempool_in_use of vs_mbufs"
log "/metrics: $(vs_json 'len(d["samples"])' <<<"$doc") samples in $(vs_json 'len(d["families"])' <<<"$doc") families; interface counters, the 20 drop reasons and worker $SENT packets equal vsctl's"

assert_eq "$(metrics_doc /nope | vs_json 'd["status"]')" 404 "GET /nope status"
stop_vswitchd
vs_pass
