#!/usr/bin/env python3
"""GRE, IPIP and Geneve from and to the switch (ci/tests/45-tunnel-scapy.sh).

    tunnel_cases.py send --spec FILE --iface eth0 --count N
    tunnel_cases.py check --spec FILE --count N --underlay PCAP --routed PCAP --bridged PCAP

The spec (JSON, written by the test) names the switch's underlay address and MAC ("local",
"ul_mac"), the underlay namespace's MAC ("u_mac"), the routed pod ("pod") and the bridged
pod ("br_pod", "br_pod_mac"), and the tunnels: each {name, kind (gre | teb | ipip |
geneve), remote, key, vni, ttl, df} and either "net" (an L3 tunnel: the routed /24 behind
it, its far host NET.7) or "mac" and "ip" (an L2 tunnel: the host behind it in the
bridge). A point-to-multipoint ipip tunnel is listed once per route, "remote" being that
route's next hop.

send: from the underlay, COUNT good packets through each tunnel (an ICMP echo request with
TTL 30 and ICMP id 0x4510 + the tunnel's index, from the far host to the pod), interleaved
with COUNT of each malformed kind (ICMP id 0x45ff): a GRE header cut short (gre_short), a
GRE payload shorter than an IPv4 header (inner_too_short), an IPIP packet whose inner Total
Length runs past it (bad_header), a wrong GRE checksum (gre_checksum), a GRE key no tunnel
has (tunnel_unknown), a Geneve critical option (geneve_critical_option). Geneve also goes
once more with a non-critical option, which is skipped (its id + 0x20).

check: every frame the switch sent into the underlay (PCAP) must be one of its tunnels'
with every outer field as configured (Ethernet addresses, IPv4 header checksum, version,
length, source, destination, TTL, DF, protocol; GRE version, flags and key; UDP port,
length and checksum; Geneve version, flags, Protocol Type, VNI) and a valid inner packet;
the pod's pings (TTL 50 sent, 49 inside: routed once) and echo replies (TTL 63), the bridged
pod's flooded ping (TTL 40, to 02:45:00:00:00:99) and its echo replies (to the MAC entered
behind the tunnel, only through that tunnel) in the counts expected. The routed pod must
have received COUNT echo requests of each L3 tunnel with TTL 29 (decapsulated, routed
once), the bridged pod COUNT of each L2 tunnel with TTL 30 (bridged), none malformed.
Prints what it saw; exit 1 with every problem listed.
"""

import argparse
import json
import sys
import time

from l2common import ICMP, IP, UDP, Ether, Raw, die, open_socket
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.layers.l2 import GRE
from scapy.utils import checksum, rdpcap

BAD_ID = 0x45FF
FLOOD_MAC = "02:45:00:00:00:99"
PROTO_GRE, PROTO_IPIP, PROTO_UDP = 47, 4, 17
TEB = 0x6558
GENEVE_PORT = 6081


def ident(i):
    return 0x4510 + i


def inner_ip(t, i, seq, bad=False):
    """The echo request far host -> pod of tunnel T (index I)."""
    src = t["net"] + ".7" if "net" in t else t["ip"]
    return IP(src=src, dst=SPEC["pod"] if "net" in t else SPEC["br_pod"], ttl=30) / \
        ICMP(type=8, id=BAD_ID if bad else ident(i), seq=seq) / Raw(b"vswitch-45")


def payload(t, i, seq, bad=False):
    """What tunnel T carries for that request: the IP packet, or a frame to the pod."""
    ip = inner_ip(t, i, seq, bad)
    if "net" in t:
        return ip
    return Ether(src=t["mac"], dst=SPEC["br_pod_mac"]) / ip


def outer(t, proto=None):
    return Ether(src=SPEC["u_mac"], dst=SPEC["ul_mac"]) / \
        IP(src=t["remote"], dst=SPEC["local"], ttl=64, **({"proto": proto} if proto else {}))


def gre(t, **kw):
    key = t.get("key")
    fields = {"key_present": 1, "key": key} if key is not None else {}
    fields.update(kw)
    return GRE(**fields)


def good(t, i, seq):
    p = payload(t, i, seq)
    if t["kind"] == "ipip":
        return outer(t) / p
    if t["kind"] in ("gre", "teb"):
        return outer(t) / gre(t, proto=TEB if t["kind"] == "teb" else 0x0800) / p
    return outer(t) / UDP(sport=50000 + seq, dport=GENEVE_PORT) / \
        GENEVE(vni=t["vni"], proto=TEB) / p


def malformed(seq):
    """(reason, frame) of each malformed kind."""
    by = {}
    for i, t in enumerate(SPEC["tunnels"]):
        by.setdefault(t["kind"], (i, t))
    (gi, g), (ii, ip), (vi, gv) = by["gre"], by["ipip"], by["geneve"]
    # The K flag set and the key missing: 4 bytes where 8 are announced.
    short = outer(g, PROTO_GRE) / Raw(bytes([0x20, 0, 0x08, 0]))
    inner_short = outer(g) / gre(g, proto=0x0800) / Raw(b"\x45" + bytes(9))
    long_inner = outer(ip) / IP(bytes(inner_ip(ip, ii, seq, True)))
    long_inner[IP].payload.len = 400
    del long_inner[IP].payload.chksum
    bad_sum = outer(g) / gre(g, proto=0x0800, chksum_present=1, chksum=0x1234) / \
        inner_ip(g, gi, seq, True)
    no_key = outer(g) / GRE(key_present=1, key=0x0BAD, proto=0x0800) / inner_ip(g, gi, seq, True)
    critical = outer(gv) / UDP(sport=50000, dport=GENEVE_PORT) / \
        GENEVE(vni=gv["vni"], proto=TEB, critical=1,
               options=GeneveOptions(classid=0x0102, type=0x80, data=b"crit")) / \
        payload(gv, vi, seq, True)
    return [("gre_short", short), ("inner_too_short", inner_short), ("bad_header", long_inner),
            ("gre_checksum", bad_sum), ("tunnel_unknown", no_key),
            ("geneve_critical_option", critical)]


def send(args):
    frames = []
    for seq in range(1, args.count + 1):
        for i, t in enumerate(SPEC["tunnels"]):
            frames.append(bytes(good(t, i, seq)))
        frames.extend(bytes(f) for _, f in malformed(seq))
    # A Geneve option that is not critical is skipped.
    for i, t in enumerate(SPEC["tunnels"]):
        if t["kind"] == "geneve":
            p = good(t, i, 1)
            p[GENEVE].options = GeneveOptions(classid=0x0102, type=0x01, data=b"skip")
            p[GENEVE].optionlen = None
            p[ICMP].id = ident(i) + 0x20
            frames.append(bytes(p))
    sock = open_socket(args.iface)
    for f in frames:
        sock.outs.send(f)
        time.sleep(0.002)
    sock.close()
    print("sent %d frames (%d good and %d malformed per round, %d rounds)"
          % (len(frames), len(SPEC["tunnels"]), len(malformed(1)), args.count))


class Problems(list):
    def __call__(self, cond, what):
        if not cond:
            self.append(what)
        return cond


def ip_ok(raw, p):
    """The IPv4 header checksum, version, IHL and Total Length of raw IPv4 bytes."""
    hl = (raw[0] & 0x0F) * 4
    p(raw[0] >> 4 == 4 and hl == 20, "IPv4 version/IHL %02x" % raw[0])
    p(checksum(raw[:hl]) == 0, "IPv4 header checksum wrong")
    return int.from_bytes(raw[2:4], "big")


def icmp_ok(ip, p, what, exact=True):
    """The inner packet's header checksum and ICMP checksum, its Total Length the bytes
    there (`exact`; else padding may follow); returns it."""
    raw = bytes(ip)
    n = ip_ok(raw, p)
    p(n == len(raw) if exact else n <= len(raw),
      "%s: inner Total Length %d, %d bytes" % (what, n, len(raw)))
    p(ICMP in ip and checksum(raw[20:n]) == 0, "%s: inner ICMP checksum wrong" % what)
    return ip


def which_tunnel(dst, proto, key, vni):
    """Index of the spec's tunnel an outer packet belongs to."""
    for i, t in enumerate(SPEC["tunnels"]):
        if t["remote"] != dst:
            continue
        if proto == PROTO_IPIP and t["kind"] == "ipip":
            return i
        if proto == PROTO_GRE and t["kind"] in ("gre", "teb") and t.get("key") == key:
            return i
        if proto == PROTO_UDP and t["kind"] == "geneve" and t["vni"] == vni:
            return i
    return None


def check_outer(frame, p, seen):
    """One frame the switch sent into the underlay."""
    eth = Ether(frame)
    what = "frame %s" % eth.summary()
    if not p(eth.type == 0x0800 and IP in eth, "%s: not IPv4" % what):
        return
    raw = bytes(eth[IP])
    n = ip_ok(raw, p)
    raw = raw[:n]
    o = IP(raw)
    what = "%s -> %s proto %d" % (o.src, o.dst, o.proto)
    p(eth.src == SPEC["ul_mac"] and eth.dst == SPEC["u_mac"],
      "%s: Ethernet %s -> %s" % (what, eth.src, eth.dst))
    p(o.src == SPEC["local"], "%s: outer source" % what)
    p(o.frag == 0 and not o.flags.MF, "%s: a fragment" % what)
    key = vni = None
    if o.proto == PROTO_GRE:
        g = GRE(raw[20:])
        p(g.version == 0 and g.chksum_present == 0 and g.routing_present == 0
          and g.seqnum_present == 0 and g.strict_route_source == 0
          and g.recursion_control == 0 and g.flags == 0, "%s: GRE flags %r" % (what, g))
        key = g.key if g.key_present else None
        glen = 8 if g.key_present else 4
        inner = raw[20 + glen:]
        teb = g.proto == TEB
        p(g.proto in (0x0800, TEB), "%s: GRE protocol %#x" % (what, g.proto))
    elif o.proto == PROTO_IPIP:
        inner, teb = raw[20:], False
    elif o.proto == PROTO_UDP:
        u = UDP(raw[20:28])
        p(u.dport == GENEVE_PORT and 32768 <= u.sport <= 60998, "%s: UDP ports %d -> %d"
          % (what, u.sport, u.dport))
        p(u.len == n - 20, "%s: UDP Length %d" % (what, u.len))
        seg = raw[20:]
        pseudo = raw[12:20] + bytes([0, PROTO_UDP]) + len(seg).to_bytes(2, "big")
        p(u.chksum == 0 or checksum(pseudo + seg) == 0, "%s: UDP checksum wrong" % what)
        gv = GENEVE(raw[28:])
        p(gv.version == 0 and gv.optionlen == 0 and gv.oam == 0 and gv.critical == 0
          and gv.proto == TEB, "%s: Geneve header %r" % (what, gv))
        vni, inner, teb = gv.vni, raw[36:], True
    else:
        p(False, "%s: not a tunnel's" % what)
        return
    i = which_tunnel(o.dst, o.proto, key, vni)
    if not p(i is not None, "%s: no tunnel sends there like that (key %s, vni %s)"
             % (what, key, vni)):
        return
    t = SPEC["tunnels"][i]
    what = "%s (%s)" % (what, t["name"])
    p(teb == (t["kind"] in ("teb", "geneve")), "%s: carries the wrong kind" % what)
    p(bool(o.flags.DF) == t["df"], "%s: DF %s" % (what, bool(o.flags.DF)))
    if teb:
        e = Ether(inner)
        p(IP in e, "%s: inner frame not IPv4" % what)
        ip = icmp_ok(e[IP], p, what, exact=False)
        p(o.ttl == (t["ttl"] or ip.ttl), "%s: outer TTL %d" % (what, o.ttl))
        if e.src == SPEC["br_pod_mac"] and e.dst == FLOOD_MAC and ip[ICMP].type == 8:
            p(ip.ttl == 40, "%s: flooded ping's TTL %d, not 40" % (what, ip.ttl))
            seen[(i, "flood")] = seen.get((i, "flood"), 0) + 1
        elif e.src == SPEC["br_pod_mac"] and e.dst == t["mac"] and ip[ICMP].type == 0:
            p(ip.ttl == 64 and ip.dst == t["ip"], "%s: reply TTL %d to %s" % (what, ip.ttl, ip.dst))
            seen[(i, "reply", ip[ICMP].id)] = seen.get((i, "reply", ip[ICMP].id), 0) + 1
        else:
            p(False, "%s: unexpected inner frame %s" % (what, e.summary()))
        return
    ip = icmp_ok(IP(inner), p, what)
    p(o.ttl == (t["ttl"] or ip.ttl), "%s: outer TTL %d" % (what, o.ttl))
    p(ip.dst.rsplit(".", 1)[0] == t["net"], "%s: inner destination %s" % (what, ip.dst))
    if ip[ICMP].type == 8 and ip.src == SPEC["pod"]:
        p(ip.ttl == 49, "%s: the pod's ping with inner TTL %d, not 49" % (what, ip.ttl))
        seen[(i, "ping")] = seen.get((i, "ping"), 0) + 1
    elif ip[ICMP].type == 0 and ip.src == SPEC["pod"]:
        p(ip.ttl == 63, "%s: the pod's reply with inner TTL %d, not 63" % (what, ip.ttl))
        seen[(i, "reply", ip[ICMP].id)] = seen.get((i, "reply", ip[ICMP].id), 0) + 1
    else:
        p(False, "%s: unexpected inner packet %s" % (what, ip.summary()))


def check_delivered(pcap, p, routed, count):
    """What a pod received: COUNT echo requests of each tunnel of its kind."""
    got = {}
    for f in rdpcap(pcap):
        e = Ether(bytes(f))
        if IP not in e or ICMP not in e or e[ICMP].type != 8:
            continue
        ip = icmp_ok(e[IP], p, "delivered %s" % e.summary(), exact=False)
        p(ip[ICMP].id != BAD_ID, "a malformed packet was delivered: %s" % e.summary())
        got[ip[ICMP].id] = got.get(ip[ICMP].id, 0) + 1
        p(ip.ttl == (29 if routed else 30), "delivered %s with TTL %d" % (e.summary(), ip.ttl))
        for i, t in enumerate(SPEC["tunnels"]):
            if ip[ICMP].id in (ident(i), ident(i) + 0x20) and "mac" in t:
                p(e.src == t["mac"], "bridged %s from %s" % (e.summary(), e.src))
    want = {}
    for i, t in enumerate(SPEC["tunnels"]):
        if ("net" in t) == routed:
            want[ident(i)] = count
            if t["kind"] == "geneve":
                want[ident(i) + 0x20] = 1
    p(got == want, "%s pod received %s, expected %s" % ("routed" if routed else "bridged",
                                                        hexkeys(got), hexkeys(want)))
    return sum(got.values())


def hexkeys(d):
    return {"%#x" % k: v for k, v in sorted(d.items())}


def names(seen):
    """Counts by (tunnel index, what[, ICMP id]) as {"NAME what id": count}, for messages."""
    def key(k):
        return " ".join([SPEC["tunnels"][k[0]]["name"]] +
                        [x if isinstance(x, str) else "%#x" % x for x in k[1:]])
    return {key(k): v for k, v in sorted(seen.items())}


def check(args):
    p = Problems()
    seen = {}
    frames = rdpcap(args.underlay)
    for f in frames:
        check_outer(bytes(f), p, seen)
    want = {}
    for i, t in enumerate(SPEC["tunnels"]):
        if "net" in t:
            want[(i, "ping")] = 1
        else:
            want[(i, "flood")] = 1
        want[(i, "reply", ident(i))] = args.count
        if t["kind"] == "geneve":
            want[(i, "reply", ident(i) + 0x20)] = 1
    p(seen == want, "underlay: saw %s, expected %s" % (names(seen), names(want)))
    routed = check_delivered(args.routed, p, True, args.count)
    bridged = check_delivered(args.bridged, p, False, args.count)
    if p:
        for what in p:
            print("PROBLEM: " + what, file=sys.stderr)
        sys.exit(1)
    print("underlay: %d frames from the switch, every field as configured; pods received "
          "%d routed and %d bridged echo requests" % (len(frames), routed, bridged))


def main():
    global SPEC
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("mode", choices=("send", "check"))
    ap.add_argument("--spec", required=True)
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--underlay")
    ap.add_argument("--routed")
    ap.add_argument("--bridged")
    args = ap.parse_args()
    with open(args.spec, encoding="utf-8") as f:
        SPEC = json.load(f)
    if args.mode == "send":
        send(args)
    else:
        if not (args.underlay and args.routed and args.bridged):
            die("check needs --underlay, --routed and --bridged")
        check(args)


SPEC = {}

if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        die(str(e))
