#!/usr/bin/env python3
"""MAC flood: COUNT frames, each from a new random source MAC, at a bounded rate.

    mac_flood.py --iface eth0 --count N [--rate PPS] [--seed S]

Source MACs are random locally administered unicast addresses (all distinct); destination
MACs are random too (unknown unicast, so a switch floods them). Frames are built once with
scapy (Ether / IPv4 / UDP) and only their MACs are rewritten per frame. The rate is held by
sending in batches of at most 10 and sleeping until each batch's due time. Prints the count
and the achieved rate as JSON; exit 1 on error.
"""

import argparse
import json
import random
import time

from l2common import IP, UDP, Ether, Raw, die, open_socket


def random_macs(rng, n):
    """N distinct random locally administered unicast MACs, as 6-byte strings."""
    seen = set()
    while len(seen) < n:
        b = bytearray(rng.getrandbits(8) for _ in range(6))
        b[0] = (b[0] & 0xFC) | 0x02  # unicast, locally administered
        seen.add(bytes(b))
    out = list(seen)
    rng.shuffle(out)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--rate", type=float, default=1000.0, help="frames per second")
    ap.add_argument("--seed", type=int, default=4)
    args = ap.parse_args()
    if not 1 <= args.count <= 200000:
        die("--count must be 1..200000")
    if not 1 <= args.rate <= 100000:
        die("--rate must be 1..100000")

    rng = random.Random(args.seed)
    srcs = random_macs(rng, args.count)
    dsts = random_macs(rng, args.count)
    template = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                     IP(src="10.98.250.1", dst="10.98.250.2") /
                     UDP(sport=4000, dport=4001) / Raw(load=b"vswitch-mac-flood"))
    body = template[12:]
    sock = open_socket(args.iface)
    start = time.monotonic()
    batch = 10
    for i in range(0, args.count, batch):
        due = start + i / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        for j in range(i, min(i + batch, args.count)):
            sock.outs.send(dsts[j] + srcs[j] + body)
    elapsed = time.monotonic() - start
    sock.close()
    print(json.dumps({"sent": args.count, "seconds": round(elapsed, 3),
                      "pps": round(args.count / max(elapsed, 1e-6))}))


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        die(str(e))
