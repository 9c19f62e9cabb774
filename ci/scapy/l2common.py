"""Shared pieces of the L2 test peers (ci/scapy/*.py): imports, frame building, summaries.

Only the scapy modules needed are imported (``scapy.all`` takes a second longer to load).
Every script runs inside a test's network namespace, on that namespace's veth end, as
``ip netns exec NS python3 ci/scapy/SCRIPT.py ...``; each exits non-zero on failure.
"""

import sys

from scapy.config import conf

conf.verb = 0
conf.ipv6_enabled = False

from scapy.arch.linux import L2Socket  # noqa: E402
from scapy.layers.inet import ICMP, IP, UDP  # noqa: E402
from scapy.layers.l2 import ARP, Dot1Q, Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402

# IEEE 802 local experimental EtherType: nothing in a namespace's kernel answers it.
ETH_P_EXPERIMENTAL = 0x88B5
BROADCAST = "ff:ff:ff:ff:ff:ff"

__all__ = [
    "ARP", "BROADCAST", "Dot1Q", "ETH_P_EXPERIMENTAL", "Ether", "ICMP", "IP", "L2Socket",
    "Raw", "UDP", "Unparsable", "die", "frame", "open_socket", "summary",
]


def die(msg):
    """Print one line on stderr and exit 1."""
    print("%s: %s" % (sys.argv[0].rsplit("/", 1)[-1], msg), file=sys.stderr)
    sys.exit(1)


def open_socket(iface):
    """A packet socket on IFACE that sends, and receives what arrives (not what it sent:
    scapy's L2Socket drops PACKET_OUTGOING frames), VLAN tags put back from the kernel's
    auxiliary data, promiscuous so unknown unicast is seen too."""
    try:
        return L2Socket(iface=iface, promisc=True)
    except OSError as e:
        die("cannot open a packet socket on %s: %s" % (iface, e))


def frame(src, dst, vlan, payload):
    """Ether(src, dst) [/ Dot1Q(vlan)] / payload, EtherTypes set from the payload."""
    eth = Ether(src=src, dst=dst)
    if vlan is not None:
        return eth / Dot1Q(vlan=vlan) / payload
    return eth / payload


class Unparsable(ValueError):
    """A frame summary() cannot describe completely (truncated or not what its EtherType or
    IP protocol says)."""


# EtherTypes of the VLAN tags scapy parses as Dot1Q (802.1Q, 802.1ad).
TAG_TYPES = (0x8100, 0x88A8)
ETH_P_ARP = 0x0806
ETH_P_IP = 0x0800


def summary(data):
    """One received frame (bytes, as read from the socket, VLAN tags inline) as a dict (what
    sniff.py records, what the tests query): src, dst (lowercase MACs), vlans (outer first),
    vlan (outer tag or None), ethertype (after the tags), kind ("arp", "icmp", "ipv4", "raw"
    for ETH_P_EXPERIMENTAL, "other"), len, and for ARP op/psrc/pdst/hwsrc, for IPv4
    ip_src/ip_dst/proto, for ICMP icmp_type/icmp_id (icmp_id None but for echo request and
    reply), for raw the payload text.

    Raises Unparsable for a frame it cannot describe completely: scapy never fails on a
    short header, it fills the missing fields with its defaults (a 10-byte IPv4 header reads
    as 127.0.0.1 -> 127.0.0.1) or turns the layer into Raw (a cut ARP becomes kind "other"),
    so every header's length is checked against the bytes there, and every EtherType or IP
    protocol summary() reports on must have been dissected as that layer."""
    data = bytes(data)
    size = len(data)

    def need(off, n, what):
        if size < off + n:
            raise Unparsable("%s cut short: needs bytes %d..%d, the frame has %d: %s"
                             % (what, off, off + n, size, data[:128].hex()))

    def expect(layer, cls, what):
        if not isinstance(layer, cls):
            raise Unparsable("%s dissected as %s, not %s: %s"
                             % (what, type(layer).__name__, cls.__name__, data[:128].hex()))

    need(0, 14, "Ethernet header")
    pkt = Ether(data)
    f = {"src": str(pkt.src).lower(), "dst": str(pkt.dst).lower(), "vlans": [],
         "kind": "other", "len": size}
    off = 14
    layer = pkt.payload
    ethertype = int(pkt.type)
    while ethertype in TAG_TYPES:
        need(off, 4, "VLAN tag (EtherType 0x%04x)" % ethertype)
        expect(layer, Dot1Q, "VLAN tag at byte %d" % off)
        f["vlans"].append(int(layer.vlan))
        ethertype = int(layer.type)
        layer = layer.payload
        off += 4
    f["vlan"] = f["vlans"][0] if f["vlans"] else None
    f["ethertype"] = ethertype
    if ethertype == ETH_P_ARP:
        need(off, 8, "ARP header")
        need(off, 8 + 2 * (data[off + 4] + data[off + 5]), "ARP addresses")
        expect(layer, ARP, "ARP at byte %d" % off)
        if (layer.hwtype, layer.ptype, layer.hwlen, layer.plen) != (1, ETH_P_IP, 6, 4):
            raise Unparsable("ARP not for Ethernet/IPv4 (hwtype %s ptype 0x%04x hwlen %s plen %s)"
                             ": %s" % (layer.hwtype, layer.ptype, layer.hwlen, layer.plen,
                                       data[:128].hex()))
        f.update(kind="arp", op=int(layer.op), psrc=layer.psrc, pdst=layer.pdst,
                 hwsrc=str(layer.hwsrc).lower())
    elif ethertype == ETH_P_IP:
        need(off, 20, "IPv4 header")
        expect(layer, IP, "IPv4 at byte %d" % off)
        ihl = int(layer.ihl) * 4
        if layer.version != 4 or ihl < 20:
            raise Unparsable("IPv4 header with version %s, header length %d: %s"
                             % (layer.version, ihl, data[:128].hex()))
        need(off, ihl, "IPv4 header (with options)")
        need(off, int(layer.len), "IPv4 packet (total length %d)" % layer.len)
        f.update(kind="ipv4", ip_src=layer.src, ip_dst=layer.dst, proto=int(layer.proto))
        if layer.proto == 1 and layer.frag == 0:
            need(off + ihl, 8, "ICMP header")
            expect(layer.payload, ICMP, "ICMP at byte %d" % (off + ihl))
            icmp = layer.payload
            # id and seq exist only in echo requests and replies (types 8 and 0).
            f.update(kind="icmp", icmp_type=int(icmp.type),
                     icmp_id=int(icmp.id) if icmp.type in (0, 8) else None)
    elif ethertype == ETH_P_EXPERIMENTAL:
        f["kind"] = "raw"
        f["payload"] = bytes(layer).rstrip(b"\0").decode("ascii", "replace")
    return f
