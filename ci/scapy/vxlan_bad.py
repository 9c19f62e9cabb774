#!/usr/bin/env python3
"""Send COUNT VXLAN packets of one malformed kind (or a good one) to a VTEP.

    vxlan_bad.py --iface eth0 --src MAC --dst MAC --psrc IP --pdst IP --vni N
                 --case short|no-i|vni|port|good [--port P] [--count N] [--inner-dst MAC]

The outer packet goes from PSRC to PDST (UDP from port 40000 to --port, default 4789) in an
Ethernet frame from SRC to DST (the VTEP's underlay MAC). The inner frame is an ARP who-has
from a locally administered MAC. Cases: short: a UDP payload of 4 bytes (a VXLAN header cut
short); no-i: the VXLAN I flag clear; vni: VNI+1000 (no tunnel has it); port: to --port + 1
(no tunnel listens there); good: a well-formed packet. Prints the number sent; exit 1 on
error.
"""

import argparse
import time

from l2common import ARP, UDP, IP, Ether, Raw, die, open_socket
from scapy.layers.vxlan import VXLAN

INNER_SRC = "02:43:00:00:00:99"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", required=True)
    ap.add_argument("--psrc", required=True)
    ap.add_argument("--pdst", required=True)
    ap.add_argument("--vni", type=int, required=True)
    ap.add_argument("--port", type=int, default=4789)
    ap.add_argument("--case", choices=("short", "no-i", "vni", "port", "good"), required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--inner-dst", default="ff:ff:ff:ff:ff:ff")
    args = ap.parse_args()
    if not 1 <= args.count <= 10000:
        die("--count must be 1..10000")

    port, vni, flags = args.port, args.vni, 0x08
    if args.case == "vni":
        vni += 1000
    elif args.case == "port":
        port += 1
    elif args.case == "no-i":
        flags = 0x00
    inner = Ether(src=INNER_SRC, dst=args.inner_dst) / \
        ARP(op=1, hwsrc=INNER_SRC, psrc="10.43.99.9", pdst="10.43.99.1")
    outer = Ether(src=args.src, dst=args.dst) / IP(src=args.psrc, dst=args.pdst) / \
        UDP(sport=40000, dport=port, chksum=0)
    if args.case == "short":
        pkt = outer / Raw(load=b"\x08\x00\x00\x00")
    else:
        pkt = outer / VXLAN(flags=flags, vni=vni) / inner
    data = bytes(pkt)

    sock = open_socket(args.iface)
    for i in range(args.count):
        if i:
            time.sleep(0.01)
        sock.outs.send(data)
    sock.close()
    print("sent %d %s packets on %s" % (args.count, args.case, args.iface))


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        die(str(e))
