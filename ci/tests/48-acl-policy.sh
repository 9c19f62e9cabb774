#!/usr/bin/env bash
# ACLs on packets (issue 14):
#  1. exactness at scale: 1,000 random rules of varied shapes (IPv4, IPv6, both; prefixes,
#     port ranges, ICMP types and codes, a wildcard-heavy tail) bound `in` on a pcap port
#     cross-connected to a capturing one, and 100,000 random packets (v4 and v6, later
#     fragments, ARP): the frames that come out, in order, are exactly those a plain linear
#     first-match evaluation permits (ci/acl/exact.py, numpy, independent of the switch);
#     the per-rule hit counters, the default deny's and the acl_deny drops equal it;
#  2. NetworkPolicy semantics on a pod in a bridge and on a routed (Calico-style) pod, IPv4
#     and IPv6: ingress default-deny except TCP 80 from a CIDR (HTTP works; 8080, ping and
#     other sources do not); with an egress policy that only reflects, the pod's own
#     connections work and their replies return; with default-deny egress too, the pod's
#     connections fail except UDP 53 to one address; replies pass through sessions (the
#     rules would deny them), which `vsctl sessions` lists when it exists.
set -euo pipefail
# shellcheck source=ci/lib.sh
source "$(dirname "$0")/../lib.sh"

vs_test_init "48-acl-policy"
start_vswitchd

# ---------------------------------------------------------------------------------------
# 1. Exactness at scale.
"$VS_PY" "$VS_ROOT/ci/acl/exact.py" --rules 1000 --packets 100000 --seed 48 --out "$VS_TMP/exact" ||
    fail "ci/acl/exact.py failed"
X=$VS_TMP/exact
"$VS_PY" - "$X/empty.pcap" <<'PY'
import struct, sys
open(sys.argv[1], "wb").write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
PY
run_ok "the 1,000-rule ACL" vsctl --timeout 120 transaction "$X/acl.txt"
cat >"$X/ports.txt" <<EOF
iface add sink pcap rx=$X/empty.pcap tx=$X/out.pcap
iface add src pcap rx=$X/in.pcap
xconnect add src sink
acl bind src exact in
EOF
run_ok "pcap ports, cross-connected, the ACL bound (one transaction)" vsctl transaction "$X/ports.txt"
want_out=$(vs_json 'len(d["permitted"])' <"$X/expect.json")
rx_done() { [[ "$(iface_stat src rx_packets)" == 100000 ]]; }
wait_until 60 "the 100,000 packets received" rx_done
tx_done() { [[ "$(iface_stat sink tx_packets)" == "$want_out" ]]; }
wait_until 30 "$want_out packets sent" tx_done
vsctl --json acl show exact >"$X/show.json"
vsctl --json drops >"$X/drops.json"
run_ok "close the capture" vsctl iface del sink
"$VS_PY" - "$X" <<'PY' || fail "the switch's verdicts differ from the reference (above)"
import json, struct, sys
d = sys.argv[1]
want = json.load(open(d + "/expect.json"))
show = json.load(open(d + "/show.json"))
drops = json.load(open(d + "/drops.json"))

def frames(path):
    b = open(path, "rb").read()
    at, out = 24, []
    while at + 16 <= len(b):
        n = struct.unpack_from("<I", b, at + 8)[0]
        out.append(b[at + 16:at + 16 + n])
        at += 16 + n
    return out

inp, out = frames(d + "/in.pcap"), frames(d + "/out.pcap")
exp = [inp[i] for i in want["permitted"]]
bad = 0
if out != exp:
    print("frames out: %d, expected %d" % (len(out), len(exp)))
    for i, (a, b) in enumerate(zip(out, exp)):
        if a != b:
            print("first difference at output frame %d" % i)
            break
    bad += 1
hits = [r["hits"] for r in show["rules"]]
diff = [(i, h, w) for i, (h, w) in enumerate(zip(hits, want["hits"])) if h != w]
if diff or len(hits) != len(want["hits"]):
    print("per-rule hits differ at %d rules, e.g. (rule, switch, reference): %s" % (len(diff), diff[:5]))
    bad += 1
if show["default_hits"] != want["default"]:
    print("default deny hits %d, reference %d" % (show["default_hits"], want["default"]))
    bad += 1
if drops.get("acl_deny", 0) != want["denied"]:
    print("acl_deny drops %d, reference %d" % (drops.get("acl_deny", 0), want["denied"]))
    bad += 1
print("%d frames out as the reference says; %d rules hit; default deny %d; acl_deny %d; %d exempt (ARP)"
      % (len(out), sum(1 for h in hits if h), show["default_hits"], drops.get("acl_deny", 0), want["exempt"]))
sys.exit(1 if bad else 0)
PY
log "exactness: the switch's verdicts, per-rule hits and drops equal the linear reference"
run_ok "drop the pcap source" vsctl iface del src

# ---------------------------------------------------------------------------------------
# 2. NetworkPolicy semantics.
#
# Servers: HTTP on 80 and 8080 in each pod (python3 http.server, dual-stack), HTTP on 8000
# in each client (for the pods' own connections), a UDP echo on 53 and 54 at the DNS host.
serve_http() { # NS PORT
    mkdir -p "$VS_TMP/www"
    echo ok >"$VS_TMP/www/index.html"
    ip netns exec "$1" "$VS_PY" -m http.server "$2" --bind :: --directory "$VS_TMP/www" \
        >"$VS_TMP/http-$1-$2.log" 2>&1 &
    vs_track_pid $!
    wait_until 10 "HTTP server on $1:$2" \
        sh -c "ip netns exec '$1' ss -Hltn 'sport = :$2' | grep -q LISTEN"
}
serve_udp_echo() { # NS PORT
    ip netns exec "$1" "$VS_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
while True:
    b, a = s.recvfrom(2048)
    s.sendto(b, a)
' "$2" >/dev/null 2>&1 &
    vs_track_pid $!
    wait_until 10 "UDP echo on $1:$2" sh -c "ip netns exec '$1' ss -Hlun 'sport = :$2' | grep -q ."
}
# url HOST PORT: an HTTP URL (IPv6 hosts bracketed).
url() { if [[ $1 == *:* ]]; then echo "http://[$1]:$2/"; else echo "http://$1:$2/"; fi; }
http_ok() { # NS HOST PORT WHAT
    local code
    code=$(ip netns exec "$1" curl -s -m 5 -o /dev/null -w '%{http_code}' "$(url "$2" "$3")") || true
    [[ "$code" == 200 ]] || fail "$4: HTTP $1 -> $2:$3 should work (got ${code:-nothing})"
    log "$4: HTTP $1 -> $2:$3 works"
}
http_blocked() { # NS HOST PORT WHAT
    if ip netns exec "$1" curl -s -m 2 -o /dev/null "$(url "$2" "$3")"; then
        fail "$4: HTTP $1 -> $2:$3 should be blocked"
    fi
    log "$4: HTTP $1 -> $2:$3 blocked"
}
ping_blocked() { # NS HOST WHAT
    if ip netns exec "$1" ping -c 2 -W 1 -i 0.3 "$2" >/dev/null 2>&1; then
        fail "$3: ping $1 -> $2 should be blocked"
    fi
    log "$3: ping $1 -> $2 blocked"
}
udp_echo() { # NS HOST PORT: exit 0 if the echo answers within 2 s
    ip netns exec "$1" "$VS_PY" -c '
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(1)
for _ in range(2):
    s.sendto(b"q", (sys.argv[1], int(sys.argv[2])))
    try:
        s.recvfrom(64)
        sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
' "$2" "$3"
}
udp_ok() { udp_echo "$@" || fail "$4: UDP $1 -> $2:$3 should be answered"; log "$4: UDP $1 -> $2:$3 answered"; }
udp_blocked() {
    if udp_echo "$@"; then fail "$4: UDP $1 -> $2:$3 should be blocked"; fi
    log "$4: UDP $1 -> $2:$3 blocked"
}
# v6_host SUFFIX CIDR4 CIDR6 [GW4 GW6]: a namespace host with IPv4 and IPv6 (no DAD).
v6_host() {
    vs_host "$1" "$2"
    vs_ns_ipv6 "$VS_NS" eth0
    ip -n "$VS_NS" addr add "$3" dev eth0 nodad
    if [[ -n "${4:-}" ]]; then
        ip -n "$VS_NS" route add default via "$4"
        ip -n "$VS_NS" -6 route add default via "$5"
    fi
}

# The policies. Ingress (the pod's `out` ACL): TCP 80 from the allowed clients only.
# Egress (its `in` ACL): open but stateful (permit-reflect everything), then default-deny
# except UDP 53 to the DNS host.
policies() { # NAME ALLOWED4 ALLOWED6 DNS4 DNS6
    run_ok "$1 ingress policy" vsctl acl add "$1-in" \
        "permit-reflect proto=tcp src=$2 dport=80" "permit-reflect proto=tcp src=$3 dport=80"
    run_ok "$1 egress policy (open)" vsctl acl add "$1-out" "permit-reflect"
    DNS_RULES=("permit-reflect proto=udp dst=$4 dport=53" "permit-reflect proto=udp dst=$5 dport=53")
}

# check_pod WHAT POD_NS POD4 POD6 IFACE ALLOWED_NS ALLOWED4 ALLOWED6 OTHER_NS DNS_NS DNS4 DNS6
check_pod() {
    local what=$1 pod=$2 p4=$3 p6=$4 ifc=$5 ok=$6 ok4=$7 ok6=$8 other=$9 dns=${10} d4=${11} d6=${12}
    local h
    run_ok "$what: bind the policies" vsctl acl bind "$ifc" "$what-in" out
    run_ok "$what: bind the egress" vsctl acl bind "$ifc" "$what-out" in
    for h in "$p4" "$p6"; do
        http_ok "$ok" "$h" 80 "$what ingress"
        http_blocked "$ok" "$h" 8080 "$what ingress"
        http_blocked "$other" "$h" 80 "$what ingress"
        ping_blocked "$ok" "$h" "$what ingress"
    done
    # The pod's own connections (egress open): their replies come back through sessions.
    http_ok "$pod" "$ok4" 8000 "$what egress open"
    http_ok "$pod" "$ok6" 8000 "$what egress open"
    # Default-deny egress except DNS: replace the egress ACL's rules in place.
    run_ok "$what: egress default-deny but DNS" vsctl acl set "$what-out" "${DNS_RULES[@]}"
    for h in "$p4" "$p6"; do
        # The pod's replies to HTTP pass its egress ACL through the sessions the ingress
        # rule made: no egress rule permits TCP from port 80.
        http_ok "$ok" "$h" 80 "$what egress closed"
    done
    http_blocked "$pod" "$ok4" 8000 "$what egress closed"
    http_blocked "$pod" "$ok6" 8000 "$what egress closed"
    udp_ok "$pod" "$d4" 53 "$what egress closed"
    udp_ok "$pod" "$d6" 53 "$what egress closed"
    udp_blocked "$pod" "$d4" 54 "$what egress closed"
    udp_blocked "$pod" "$ok4" 53 "$what egress closed"
    if vsctl --json sessions >"$VS_TMP/sessions-$what.json" 2>/dev/null; then
        vs_json_true 'any(s["proto"] == "tcp" and s["dport"] == 80 for s in d)' \
            <"$VS_TMP/sessions-$what.json" || fail "$what: no TCP 80 session listed"
        log "$what: sessions listed ($(vs_json 'len(d)' <"$VS_TMP/sessions-$what.json"))"
    fi
}

# 2a. A pod in a bridge, with two clients (one allowed) and a DNS host.
run_ok "bridge" vsctl bridge add br0
v6_host bp 10.48.0.10/24 fd48::10/64
BP=$VS_NS
run_ok "pod port" vsctl iface add pod1 af_packet iface="$VS_HOSTIF"
v6_host bc 10.48.0.20/24 fd48::1:20/64
BC=$VS_NS
run_ok "client port" vsctl iface add cli1 af_packet iface="$VS_HOSTIF"
v6_host bd 10.48.0.40/24 fd48::2:40/64
BD=$VS_NS
run_ok "other client port" vsctl iface add oth1 af_packet iface="$VS_HOSTIF"
v6_host bs 10.48.0.53/24 fd48::53/64
BS=$VS_NS
run_ok "DNS host port" vsctl iface add dns1 af_packet iface="$VS_HOSTIF"
for i in pod1 cli1 oth1 dns1; do run_ok "attach $i" vsctl bridge attach br0 "$i"; done
serve_http "$BP" 80
serve_http "$BP" 8080
serve_http "$BC" 8000
serve_udp_echo "$BS" 53
serve_udp_echo "$BS" 54
# Before any policy, everything works (so that what fails later fails by policy).
http_ok "$BC" 10.48.0.10 8080 "no policy"
udp_ok "$BP" 10.48.0.53 54 "no policy"
vs_ping "$BC" 10.48.0.10
policies bp 10.48.0.16/28 fd48::1:0/112 10.48.0.53/32 fd48::53/128
check_pod bp "$BP" 10.48.0.10 fd48::10 pod1 "$BC" 10.48.0.20 fd48::1:20 "$BD" "$BS" 10.48.0.53 fd48::53

# 2b. A routed pod: the switch routes between the pod's subnet and the clients'.
v6_host rp 10.49.0.10/24 fd49::10/64 10.49.0.1 fd49::1
RP=$VS_NS
run_ok "routed pod port" vsctl iface add pod2 af_packet iface="$VS_HOSTIF"
v6_host rc 10.49.1.20/24 fd49:1::20/64 10.49.1.1 fd49:1::1
RC=$VS_NS
run_ok "routed client port" vsctl iface add cli2 af_packet iface="$VS_HOSTIF"
v6_host rd 10.49.2.40/24 fd49:2::40/64 10.49.2.1 fd49:2::1
RD=$VS_NS
run_ok "routed other client port" vsctl iface add oth2 af_packet iface="$VS_HOSTIF"
v6_host rs 10.49.3.53/24 fd49:3::53/64 10.49.3.1 fd49:3::1
RS=$VS_NS
run_ok "routed DNS host port" vsctl iface add dns2 af_packet iface="$VS_HOSTIF"
for a in "pod2 10.49.0.1/24 fd49::1/64" "cli2 10.49.1.1/24 fd49:1::1/64" \
    "oth2 10.49.2.1/24 fd49:2::1/64" "dns2 10.49.3.1/24 fd49:3::1/64"; do
    read -r i a4 a6 <<<"$a"
    run_ok "address $i" vsctl addr add "$i" "$a4"
    run_ok "address $i (IPv6)" vsctl addr add "$i" "$a6"
done
serve_http "$RP" 80
serve_http "$RP" 8080
serve_http "$RC" 8000
serve_udp_echo "$RS" 53
serve_udp_echo "$RS" 54
http_ok "$RC" 10.49.0.10 8080 "routed, no policy"
http_ok "$RC" fd49::10 8080 "routed, no policy"
policies rp 10.49.1.0/24 fd49:1::/64 10.49.3.53/32 fd49:3::53/128
check_pod rp "$RP" 10.49.0.10 fd49::10 pod2 "$RC" 10.49.1.20 fd49:1::20 "$RD" "$RS" 10.49.3.53 fd49:3::53
drops_at_least acl_deny 1 || fail "no acl_deny drop counted"
log "NetworkPolicy semantics hold on a bridged and a routed pod, IPv4 and IPv6"

vs_pass
