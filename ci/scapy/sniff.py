#!/usr/bin/env python3
"""Record every frame that arrives on an interface, one JSON object per line.

    sniff.py --iface eth0 --out FILE --ready FILE --stop FILE [--timeout SECONDS] [--raw]

Frames the namespace itself sends are left out. Each line is l2common.summary() of one
frame (src, dst, vlan, vlans, kind, ARP/IP/ICMP fields), flushed at once so a test can poll
the file while the capture runs. A frame summary() cannot describe completely (cut short,
or not the header its EtherType says) is recorded as {"error": why, "len": bytes, "hex":
the frame}: never left out, and ci/check.py fails every check on a capture holding one.
With --raw every line also carries the whole frame as "hex" (for byte-exact checks).
READY is created once the socket is capturing (frames from then on are kept); the capture
ends when STOP exists or after TIMEOUT seconds (a bound, default 120). Exit 0, or 1 if
the socket cannot be opened.
"""

import argparse
import json
import os
import select
import time

from l2common import die, open_socket, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--iface", default="eth0")
    ap.add_argument("--out", required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--raw", action="store_true")
    args = ap.parse_args()

    sock = open_socket(args.iface)
    deadline = time.monotonic() + args.timeout
    n = 0
    with open(args.out, "w", encoding="utf-8") as out:
        with open(args.ready, "w", encoding="utf-8") as ready:
            ready.write("%d\n" % os.getpid())
        while time.monotonic() < deadline and not os.path.exists(args.stop):
            readable, _, _ = select.select([sock.ins], [], [], 0.1)
            if not readable:
                continue
            cls, data, _ = sock.recv_raw()
            if data is None:  # a frame this namespace sent
                continue
            try:
                f = summary(data)
                if args.raw:
                    f["hex"] = bytes(data).hex()
            except Exception as e:  # noqa: BLE001 - recorded as an error, never dropped
                f = {"error": "%s: %s" % (type(e).__name__, e), "len": len(data),
                     "hex": bytes(data).hex()}
            out.write(json.dumps(f, sort_keys=True) + "\n")
            out.flush()
            n += 1
    sock.close()
    print("%s: %d frames" % (args.iface, n))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    except OSError as e:
        die(str(e))
