#!/usr/bin/env python3
"""Malformed and unusual IPv4 packets for a router under test (ci/tests/37-l3-malformed.sh).

    ip4_cases.py list
    ip4_cases.py send --case NAME --iface eth0 --dmac MAC --psrc IP --pdst IP --gw IP
                      --expected FILE
    ip4_cases.py verify --expected FILE --capture FILE --smac MAC --dmac MAC --pdst IP

list: one line per case, "NAME OUTCOME FRAMES PORT": OUTCOME is drop:REASON (the router
must drop every frame under that reason of `vsctl drops`), forward (every frame must reach
the far side, TTL one less, header checksum right, nothing else changed, Ethernet padding
and trailing bytes gone) or time-exceeded (the router answers with ICMP time exceeded).
PORT is "any", or "tap" for fragments: they must enter the router through a port that hands
frames over as they are. DPDK's af_packet driver joins its socket to a PACKET_FANOUT group
with PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles IPv4 fragments before the router
sees them (and holds a lone fragment until its reassembly times out).

send: sends the frames of one case from IFACE (its own MAC as source) to the router's MAC
DMAC, UDP from PSRC to PDST (a destination the router routes to the far side). A forward
case appends each IPv4 packet as sent (up to its Total Length) to EXPECTED, one JSON line
{"case", "ip"} per frame; a time-exceeded case waits (5 s at most) for the router's
ICMP time exceeded from GW to PSRC that quotes the packet, and fails without it.

verify: the IPv4 frames to PDST in CAPTURE (sniff.py --raw at the far side, in order) must
be exactly the packets of EXPECTED, each as a router forwards it: Ethernet SMAC -> DMAC,
length 14 + Total Length, TTL one less and the header checksum computed afresh (and valid
as scapy reads it), every other byte (options, fragment fields, payload) unchanged.

Exit 0 when all holds, 1 otherwise (one line per problem on stderr).
"""

import argparse
import json
import select
import struct
import sys
import time

from l2common import IP, UDP, Raw, die, open_socket, summary

from scapy.layers.inet import (IPOption_EOL, IPOption_NOP, IPOption_Router_Alert,
                               IPOption_Stream_Id)

DROP_COPIES = 3


def csum(b):
    """RFC 1071 Internet checksum of B."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def refill(ip, hdr_len=None):
    """IP with its header checksum recomputed over the first HDR_LEN bytes (default: the
    header length IHL gives, or as much of it as there is)."""
    ip = bytearray(ip)
    n = hdr_len if hdr_len is not None else min((ip[0] & 0x0F) * 4, len(ip))
    ip[10:12] = b"\0\0"
    ip[10:12] = struct.pack("!H", csum(bytes(ip[:n])))
    return bytes(ip)


def udp(a, ident, ttl=64, options=None, size=32, **kw):
    """A valid UDP packet A.psrc -> A.pdst as bytes (scapy fills lengths and checksums)."""
    p = IP(src=kw.pop("src", a.psrc), dst=kw.pop("dst", a.pdst), ttl=ttl, id=ident,
           options=options or [], **kw)
    return bytes(p / UDP(sport=40000 + ident % 1000, dport=9) /
                 Raw(bytes((ident + i) & 0xFF for i in range(size))))


def setlen(ip, n):
    return ip[:2] + struct.pack("!H", n) + ip[4:]


# ---------------------------------------------------------------------------------------
# The cases: name -> (outcome, builder). A builder returns the list of frames' IPv4 parts
# and the Ethernet padding to append to each ("" for none). Idents are unique per case, so
# a captured packet names its case.

def c_truncated_header(a):
    return [udp(a, 101)[:12]], b""


def c_ihl_below_5(a):
    ip = udp(a, 102)
    return [refill(bytes([0x44]) + ip[1:], 20)], b""


def c_ihl_past_end(a):
    # IHL 15 (60 bytes) in a frame padded to 60 bytes: 46 bytes of IPv4 at most.
    ip = udp(a, 103, size=4)
    ip = bytes([0x4F]) + setlen(ip, 60)[1:]
    return [refill(ip, 20)], b"\0" * (46 - len(ip))


def c_total_length_past_end(a):
    ip = udp(a, 104, size=36)
    return [refill(setlen(ip, len(ip) + 100))], b""


def c_total_length_below_header(a):
    return [refill(setlen(udp(a, 105), 19))], b""


def c_total_length_below_options(a):
    ip = udp(a, 106, options=[IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_EOL()])
    return [refill(setlen(ip, 22))], b""


def c_bad_version(a):
    ip = udp(a, 107)
    return [refill(bytes([0x65]) + ip[1:])], b""


def c_bad_checksum(a):
    ip = bytearray(udp(a, 108))
    ip[11] ^= 0x01
    return [bytes(ip)], b""


def c_bad_checksum_in_options(a):
    # The checksum covers the options: one changed after it was computed.
    ip = bytearray(udp(a, 109, options=[IPOption_Router_Alert()]))
    ip[22] ^= 0x40
    return [bytes(ip)], b""


def c_martian_src_loopback(a):
    return [udp(a, 110, src="127.0.0.1")], b""


def c_martian_src_multicast(a):
    return [udp(a, 111, src="224.0.0.9")], b""


def c_martian_src_broadcast(a):
    return [udp(a, 112, src="255.255.255.255")], b""


def c_martian_dst_loopback(a):
    return [udp(a, 113, dst="127.0.0.2")], b""


def c_no_route(a):
    return [udp(a, 114, dst="198.51.100.7")], b""


def c_plain(a):
    return [udp(a, 201)], b""


def c_options_nop(a):
    return [udp(a, 202, options=[IPOption_NOP(), IPOption_NOP(), IPOption_NOP(),
                                 IPOption_EOL()])], b""


def c_options_router_alert(a):
    return [udp(a, 203, options=[IPOption_Router_Alert()])], b""


def c_options_40_bytes(a):
    # IHL 15: router alert, stream id, 31 NOPs, end of list.
    opts = [IPOption_Router_Alert(), IPOption_Stream_Id(security=0x1234)] + \
        [IPOption_NOP()] * 31 + [IPOption_EOL()]
    ip = udp(a, 204, options=opts)
    assert ip[0] == 0x4F, ip[:1].hex()
    return [ip], b""


def c_fragments(a):
    # First (MF, offset 0, with the UDP header), middle and last fragment of one datagram.
    data = bytes(IP(src=a.psrc, dst=a.pdst) / UDP(sport=40205, dport=9) /
                 Raw(bytes(range(112))))[20:]
    first = IP(src=a.psrc, dst=a.pdst, id=205, flags="MF", frag=0, proto=17) / Raw(data[:40])
    mid = IP(src=a.psrc, dst=a.pdst, id=205, flags="MF", frag=5, proto=17) / Raw(data[40:80])
    last = IP(src=a.psrc, dst=a.pdst, id=205, flags=0, frag=10, proto=17) / Raw(data[80:])
    return [bytes(first), bytes(mid), bytes(last)], b""


def c_fragment_alone(a):
    # A later fragment whose others never come (a router forwards it all the same).
    return [bytes(IP(src=a.psrc, dst=a.pdst, id=210, flags="MF", frag=185, proto=17) /
                  Raw(bytes(range(64))))], b""


def c_dont_fragment(a):
    return [udp(a, 206, flags="DF")], b""


def c_ethernet_padding(a):
    # 28 bytes of IPv4 in a 60-byte frame: 18 bytes of (non-zero) padding.
    return [udp(a, 207, size=0)], b"\xa5" * 18


def c_trailing_bytes(a):
    return [udp(a, 208, size=40)], bytes(range(200))


def c_ttl_2(a):
    return [udp(a, 209, ttl=2)], b""


def c_ttl_1(a):
    return [udp(a, 301, ttl=1)], b""


def c_ttl_0(a):
    return [udp(a, 302, ttl=0)], b""


# Cases that must not enter through an af_packet port (see the module's doc).
TAP_ONLY = {"fragments", "fragment-alone"}

CASES = [
    ("truncated-header", "drop:bad_header", c_truncated_header),
    ("ihl-below-5", "drop:bad_header", c_ihl_below_5),
    ("ihl-past-end", "drop:bad_header", c_ihl_past_end),
    ("total-length-past-end", "drop:bad_header", c_total_length_past_end),
    ("total-length-below-header", "drop:bad_header", c_total_length_below_header),
    ("total-length-below-options", "drop:bad_header", c_total_length_below_options),
    ("bad-version", "drop:bad_header", c_bad_version),
    ("bad-checksum", "drop:bad_checksum", c_bad_checksum),
    ("bad-checksum-in-options", "drop:bad_checksum", c_bad_checksum_in_options),
    ("martian-src-loopback", "drop:martian", c_martian_src_loopback),
    ("martian-src-multicast", "drop:martian", c_martian_src_multicast),
    ("martian-src-broadcast", "drop:martian", c_martian_src_broadcast),
    ("martian-dst-loopback", "drop:martian", c_martian_dst_loopback),
    ("no-route", "drop:no_route", c_no_route),
    ("plain", "forward", c_plain),
    ("options-nop", "forward", c_options_nop),
    ("options-router-alert", "forward", c_options_router_alert),
    ("options-40-bytes", "forward", c_options_40_bytes),
    ("fragments", "forward", c_fragments),
    ("fragment-alone", "forward", c_fragment_alone),
    ("dont-fragment", "forward", c_dont_fragment),
    ("ethernet-padding", "forward", c_ethernet_padding),
    ("trailing-bytes", "forward", c_trailing_bytes),
    ("ttl-2", "forward", c_ttl_2),
    ("ttl-1", "time-exceeded", c_ttl_1),
    ("ttl-0", "time-exceeded", c_ttl_0),
]


class Addrs:
    def __init__(self, psrc, pdst):
        self.psrc, self.pdst = psrc, pdst


def frames_of(outcome, builder, a):
    ips, pad = builder(a)
    copies = DROP_COPIES if outcome.startswith("drop:") else 1
    return [ip for ip in ips for _ in range(copies)], pad


def mac_bytes(m):
    return bytes.fromhex(m.replace(":", ""))


def cmd_list(_args):
    a = Addrs("10.0.0.1", "10.0.1.1")
    for name, outcome, builder in CASES:
        ips, _ = frames_of(outcome, builder, a)
        print(name, outcome, len(ips), "tap" if name in TAP_ONLY else "any")


def wait_time_exceeded(sock, args, sent, timeout=5.0):
    """The router's ICMP time exceeded about SENT (an IPv4 packet), or a reason it is not."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock.ins], [], [], 0.1)
        if not readable:
            continue
        _, data, _ = sock.recv_raw()
        if data is None:
            continue
        data = bytes(data)
        try:
            f = summary(data)
        except Exception as e:  # noqa: BLE001 - a cut-short reply is a failure, not noise
            return "unparsable frame from the router: %s" % e
        if f.get("kind") != "icmp" or f.get("icmp_type") != 11:
            seen.append(f.get("kind"))
            continue
        ip = data[14:]
        ihl = (ip[0] & 0x0F) * 4
        tot = struct.unpack("!H", ip[2:4])[0]
        icmp = ip[ihl:tot]
        quote = icmp[8:]
        hl = (sent[0] & 0x0F) * 4
        if quote[4:6] != sent[4:6]:
            seen.append("time exceeded about another packet")
            continue
        problems = []
        if f["ip_src"] != args.gw or f["ip_dst"] != args.psrc:
            problems.append("from %s to %s, not %s to %s"
                            % (f["ip_src"], f["ip_dst"], args.gw, args.psrc))
        if icmp[1] != 0:
            problems.append("code %d, not 0 (TTL exceeded in transit)" % icmp[1])
        if csum(ip[:ihl]) != 0:
            problems.append("bad IPv4 header checksum")
        if csum(icmp) != 0:
            problems.append("bad ICMP checksum")
        if quote[:hl + 8] != sent[:hl + 8]:
            problems.append("quotes %s, not the packet's header and 8 bytes %s"
                            % (quote[:hl + 8].hex(), sent[:hl + 8].hex()))
        if problems:
            return "time exceeded: " + "; ".join(problems)
        return None
    return "no ICMP time exceeded from %s within %.0f s (other frames: %s)" % (
        args.gw, timeout, seen or "none")


def cmd_send(args):
    cases = {name: (outcome, builder) for name, outcome, builder in CASES}
    if args.case not in cases:
        die("unknown case %r" % args.case)
    outcome, builder = cases[args.case]
    ips, pad = frames_of(outcome, builder, Addrs(args.psrc, args.pdst))
    sock = open_socket(args.iface)
    with open("/sys/class/net/%s/address" % args.iface) as fh:
        smac = fh.read().strip()
    eth = mac_bytes(args.dmac) + mac_bytes(smac) + b"\x08\x00"
    for ip in ips:
        sock.outs.send(eth + ip + pad)
        time.sleep(0.002)
    if outcome == "forward":
        with open(args.expected, "a", encoding="utf-8") as fh:
            for ip in ips:
                n = struct.unpack("!H", ip[2:4])[0]
                fh.write(json.dumps({"case": args.case, "ip": ip[:n].hex()}) + "\n")
    if outcome == "time-exceeded":
        why = wait_time_exceeded(sock, args, ips[0])
        if why:
            die("%s: %s" % (args.case, why))
    sock.close()
    print("%s: %d frames sent (%s)" % (args.case, len(ips), outcome))


def forwarded(sent):
    """SENT as a router forwards it: TTL one less, header checksum computed afresh."""
    ip = bytearray(sent)
    ip[8] -= 1
    return refill(bytes(ip))


def diff(got, want):
    """Which parts of two IPv4 packets differ."""
    if len(got) != len(want):
        return "length %d, not %d" % (len(got), len(want))
    names = {0: "version/IHL", 1: "TOS", 2: "total length", 3: "total length",
             4: "ident", 5: "ident", 6: "flags/offset", 7: "flags/offset", 8: "TTL",
             9: "protocol", 10: "checksum", 11: "checksum"}
    hl = (want[0] & 0x0F) * 4
    where = sorted({names.get(i, "address" if i < 20 else "options" if i < hl else "payload")
                    for i in range(len(got)) if got[i] != want[i]})
    return "differs in " + ", ".join(where)


def cmd_verify(args):
    with open(args.expected, encoding="utf-8") as fh:
        expected = [json.loads(line) for line in fh if line.strip()]
    got = []
    with open(args.capture, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            f = json.loads(line)
            if "error" in f:
                print("capture line %d: a frame sniff.py could not parse: %s (%s)"
                      % (i, f["error"], f.get("hex", "")[:120]), file=sys.stderr)
                return 1
            if f.get("ip_dst") == args.pdst:
                got.append(bytes.fromhex(f["hex"]))
    bad = []
    for k in range(max(len(got), len(expected))):
        if k >= len(expected):
            bad.append("frame %d: not sent as a forward case: %s" % (k, got[k].hex()))
            continue
        case, sent = expected[k]["case"], bytes.fromhex(expected[k]["ip"])
        if k >= len(got):
            bad.append("%s: frame %d never arrived" % (case, k))
            continue
        frame = got[k]
        ip, want = frame[14:], forwarded(sent)
        problems = []
        if frame[:6] != mac_bytes(args.dmac) or frame[6:12] != mac_bytes(args.smac):
            problems.append("MACs %s -> %s, not %s -> %s" % (
                frame[6:12].hex(":"), frame[:6].hex(":"), args.smac, args.dmac))
        if frame[12:14] != b"\x08\x00":
            problems.append("EtherType %s" % frame[12:14].hex())
        if len(frame) != 14 + len(sent):
            problems.append("frame of %d bytes, not 14 + Total Length %d (padding or "
                            "trailing bytes not removed?)" % (len(frame), len(sent)))
        if ip[8] != sent[8] - 1:
            problems.append("TTL %d, sent %d" % (ip[8], sent[8]))
        # scapy's reading of the header checksum, independent of ours.
        p = IP(ip)
        c = p.chksum
        p.chksum = None
        if IP(bytes(p)).chksum != c:
            problems.append("header checksum %04x is wrong (scapy computes %04x)"
                            % (c, IP(bytes(p)).chksum))
        if ip[:len(want)] != want:
            problems.append("the packet " + diff(ip[:len(want)], want))
        if problems:
            bad.append("%s: frame %d: %s\n  got  %s\n  want %s" % (
                case, k, "; ".join(problems), ip.hex(), want.hex()))
    for b in bad:
        print(b, file=sys.stderr)
    cases = sorted({e["case"] for e in expected})
    print("%d forwarded frames checked (%d cases: %s): %s" % (
        len(expected), len(cases), " ".join(cases), "all right" if not bad else
        "%d wrong" % len(bad)))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    s = sub.add_parser("send")
    s.add_argument("--case", required=True)
    s.add_argument("--iface", default="eth0")
    s.add_argument("--dmac", required=True)
    s.add_argument("--psrc", required=True)
    s.add_argument("--pdst", required=True)
    s.add_argument("--gw", required=True)
    s.add_argument("--expected", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--expected", required=True)
    v.add_argument("--capture", required=True)
    v.add_argument("--smac", required=True)
    v.add_argument("--dmac", required=True)
    v.add_argument("--pdst", required=True)
    args = ap.parse_args()
    if args.cmd == "list":
        return cmd_list(args)
    if args.cmd == "send":
        return cmd_send(args)
    return cmd_verify(args)


if __name__ == "__main__":
    try:
        sys.exit(main() or 0)
    except OSError as e:
        die(str(e))
