#!/usr/bin/env python3
"""Act as a host on a (possibly tagged) segment: resolve PDST with ARP, then ping it.

    probe.py --iface eth0 --src MAC --psrc IP --pdst IP [--vlan ID] [--icmp]
             [--timeout SECONDS] [--tries N]

Sends an ARP who-has PDST (broadcast, tagged with VLAN when given) and waits for the
is-at reply addressed to SRC; with --icmp then sends an ICMP echo request to the MAC that
answered and waits for the echo reply. Every reply must carry exactly the tag the request
had (VLAN ID, or none): a reply with another tag, or untagged when a tag was expected, is
a failure. Prints one JSON line with what was received. Exit 0 on success, 1 otherwise.
"""

import argparse
import json
import select
import sys
import time

from l2common import (ARP, BROADCAST, ICMP, IP, Raw, Unparsable, die, frame, open_socket,
                      summary)


def wait_for(sock, match, timeout, unparsable):
    """Receive until MATCH(summary) is true or TIMEOUT passes; return (hit, others) where
    others are frames seen that came from the peer's IP but did not match (wrong tag).
    Frames summary() cannot describe are appended to UNPARSABLE (the probe then fails)."""
    deadline = time.monotonic() + timeout
    others = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None, others
        readable, _, _ = select.select([sock.ins], [], [], min(left, 0.1))
        if not readable:
            continue
        _, data, _ = sock.recv_raw()
        if data is None:
            continue
        try:
            f = summary(data)
        except Unparsable as e:
            # It may be the very reply this waits for, cut short: never skipped silently.
            unparsable.append(str(e))
            continue
        verdict = match(f)
        if verdict is True:
            return f, others
        if verdict == "wrong":
            others.append(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--src", required=True)
    ap.add_argument("--psrc", required=True)
    ap.add_argument("--pdst", required=True)
    ap.add_argument("--vlan", type=int, default=None)
    ap.add_argument("--icmp", action="store_true")
    ap.add_argument("--timeout", type=float, default=2.0, help="per try")
    ap.add_argument("--tries", type=int, default=3)
    args = ap.parse_args()
    src = args.src.lower()
    want = args.vlan
    sock = open_socket(args.iface)
    result = {"vlan": want, "pdst": args.pdst}
    unparsable = []

    def check_tag(f):
        return f["vlan"] == want and len(f["vlans"]) == (0 if want is None else 1)

    def is_arp_reply(f):
        if f["kind"] != "arp" or f.get("op") != 2 or f.get("psrc") != args.pdst:
            return False
        if f["dst"] != src:
            return False
        return True if check_tag(f) else "wrong"

    arp = None
    wrong = []
    request = bytes(frame(src, BROADCAST, want,
                          ARP(op=1, hwsrc=src, psrc=args.psrc, pdst=args.pdst)))
    for _ in range(args.tries):
        sock.outs.send(request + b"\0" * max(0, 60 - len(request)))
        arp, others = wait_for(sock, is_arp_reply, args.timeout, unparsable)
        wrong += others
        if arp:
            break
    result["arp_reply"] = arp
    result["wrong_tag"] = wrong
    result["unparsable"] = unparsable
    if not arp:
        print(json.dumps(result, sort_keys=True))
        die("no ARP reply from %s with vlan %s (wrongly tagged replies: %d)"
            % (args.pdst, want, len(wrong)))

    if args.icmp:
        peer = arp["hwsrc"]

        def is_echo_reply(f):
            if f["kind"] != "icmp" or f.get("icmp_type") != 0:
                return False
            if f.get("ip_src") != args.pdst or f.get("icmp_id") != 0x5654:
                return False
            return True if check_tag(f) else "wrong"

        echo = None
        request = bytes(frame(src, peer, want,
                              IP(src=args.psrc, dst=args.pdst) /
                              ICMP(type=8, id=0x5654, seq=7) / Raw(load=b"vswitch-probe")))
        for _ in range(args.tries):
            sock.outs.send(request)
            echo, others = wait_for(sock, is_echo_reply, args.timeout, unparsable)
            wrong += others
            if echo:
                break
        result["echo_reply"] = echo
        if not echo:
            print(json.dumps(result, sort_keys=True))
            die("no ICMP echo reply from %s with vlan %s (wrongly tagged replies: %d)"
                % (args.pdst, want, len(wrong)))
    sock.close()
    print(json.dumps(result, sort_keys=True))
    if unparsable:
        die("%d frames could not be parsed: %s" % (len(unparsable), json.dumps(unparsable)))
    if wrong:
        die("%d replies carried the wrong tag: %s" % (len(wrong), json.dumps(wrong)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as e:
        die(str(e))
