#!/usr/bin/env python3
"""Send COUNT identical test frames out of an interface, optionally 802.1Q-tagged.

    send.py --iface eth0 --src MAC [--dst MAC] [--vlan ID] [--count N] [--inter SECONDS]
            [--kind raw|arp|icmp] [--psrc IP --pdst IP] [--text TEXT] [--truncate BYTES]

kind raw (default): EtherType 0x88b5 (local experimental) with TEXT as payload, which no
kernel answers; arp: an ARP who-has PDST from PSRC (dst defaults to broadcast); icmp: an
ICMP echo request PSRC -> PDST. Frames are padded to 60 bytes, unless --truncate cuts them
to BYTES (14 or more, no padding: a deliberately broken frame, e.g. an ARP or IPv4 header
cut short, for showing that the captures' checks fail on it). Prints the number sent; exit
1 on error.
"""

import argparse
import time

from l2common import (ARP, BROADCAST, ETH_P_EXPERIMENTAL, ICMP, IP, Raw, die, frame,
                      open_socket)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--src", required=True)
    ap.add_argument("--dst", default=BROADCAST)
    ap.add_argument("--vlan", type=int, default=None)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--inter", type=float, default=0.01)
    ap.add_argument("--kind", choices=("raw", "arp", "icmp"), default="raw")
    ap.add_argument("--psrc", default="0.0.0.0")
    ap.add_argument("--pdst", default="0.0.0.0")
    ap.add_argument("--text", default="vswitch-l2-test")
    ap.add_argument("--truncate", type=int, default=None)
    args = ap.parse_args()
    if not 1 <= args.count <= 100000:
        die("--count must be 1..100000")
    if args.truncate is not None and args.truncate < 14:
        die("--truncate must be at least 14 (an Ethernet header)")

    if args.kind == "raw":
        payload = Raw(load=args.text.encode())
        pkt = frame(args.src, args.dst, args.vlan, payload)
        # The EtherType of the innermost header: Ether's, or the tag's.
        pkt.lastlayer().underlayer.type = ETH_P_EXPERIMENTAL
    elif args.kind == "arp":
        payload = ARP(op=1, hwsrc=args.src, psrc=args.psrc, pdst=args.pdst)
        pkt = frame(args.src, args.dst, args.vlan, payload)
    else:
        payload = IP(src=args.psrc, dst=args.pdst) / ICMP(type=8, id=0x5654, seq=1) / \
            Raw(load=args.text.encode())
        pkt = frame(args.src, args.dst, args.vlan, payload)
    data = bytes(pkt)
    if args.truncate is not None:
        data = data[:args.truncate]
    elif len(data) < 60:
        data += b"\0" * (60 - len(data))

    sock = open_socket(args.iface)
    sent = 0
    for i in range(args.count):
        if i:
            time.sleep(args.inter)
        sock.outs.send(data)
        sent += 1
    sock.close()
    print("sent %d frames on %s" % (sent, args.iface))


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        die(str(e))
