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
    "Raw", "UDP", "die", "frame", "open_socket", "summary",
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


def summary(pkt):
    """One received frame as a dict (what sniff.py records, what the tests query):
    src, dst (lowercase MACs), vlans (outer first), vlan (outer tag or None), ethertype
    (after the tags), kind ("arp", "icmp", "ipv4", "raw" for ETH_P_EXPERIMENTAL, "other"),
    and for ARP op/psrc/pdst/hwsrc, for IPv4 ip_src/ip_dst/proto, for ICMP icmp_type/
    icmp_id, for raw the payload text."""
    f = {"src": str(pkt.src).lower(), "dst": str(pkt.dst).lower(), "vlans": [],
         "kind": "other", "len": len(pkt)}
    layer = pkt.payload
    ethertype = pkt.type
    while isinstance(layer, Dot1Q):
        f["vlans"].append(int(layer.vlan))
        ethertype = layer.type
        layer = layer.payload
    f["vlan"] = f["vlans"][0] if f["vlans"] else None
    f["ethertype"] = int(ethertype)
    if isinstance(layer, ARP):
        f.update(kind="arp", op=int(layer.op), psrc=layer.psrc, pdst=layer.pdst,
                 hwsrc=str(layer.hwsrc).lower())
    elif isinstance(layer, IP):
        f.update(kind="ipv4", ip_src=layer.src, ip_dst=layer.dst, proto=int(layer.proto))
        if isinstance(layer.payload, ICMP):
            f.update(kind="icmp", icmp_type=int(layer.payload.type),
                     icmp_id=int(layer.payload.id))
    elif ethertype == ETH_P_EXPERIMENTAL:
        f["kind"] = "raw"
        f["payload"] = bytes(layer).rstrip(b"\0").decode("ascii", "replace")
    return f
