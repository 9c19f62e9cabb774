#!/usr/bin/env python3
"""ci/lpm_routes.py: random route sets for the LPM tests (ci/tests/31-l3-lpm.sh, 39-l3-lpm-packets.sh).

    lpm_routes.py DIR [--seed N] [--v4 N] [--v6 N] --gw4 IP[,IP...] [--gw6 IP]
                  [--exclude CIDR ...] [--probes4 N] [--probes6 N] [--unique-probes]

Writes into DIR:
  kernel.batch      `ip -batch` lines: every route, and a default route of each family
  switch.txt        the same routes as a `vsctl transaction` file
  kernel-del.batch  half of the routes, deleted (ip -batch)
  switch-del.txt    the same deletes (vsctl transaction)
  probes4, probes6  addresses to look up, one a line: 80% inside the routes' prefixes (10%
                    of those at or just past a prefix's broadcast address), 20% anywhere

IPv4 prefixes are /1 to /32, weighted like a real table (mostly /16 to /24), in 10/8,
100/8, 172/8 and 198/8 so that they nest; IPv6 ones /16 to /128 in 2001:db8::/32 and
2a00::/16. Each IPv4 route goes via one of the --gw4 gateways (picked at random, from a
generator of its own, so the prefixes and probes depend on --seed alone); the default route
goes via the first. Left out of routes and probes: loopback, multicast, reserved and
unspecified space, and every prefix inside an --exclude subnet (the routers' own connected
subnets: a longer route there would take their addresses away). --unique-probes: no
address twice.
"""

import argparse
import ipaddress
import random

RESERVED4 = [ipaddress.ip_network(x) for x in ("0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3")]
RESERVED6 = [ipaddress.ip_network(x) for x in ("::/8", "fe80::/10", "ff00::/8")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--v4", type=int, default=10000)
    ap.add_argument("--v6", type=int, default=2000)
    ap.add_argument("--gw4", required=True)
    ap.add_argument("--gw6")
    ap.add_argument("--exclude", action="append", default=[])
    ap.add_argument("--probes4", type=int, default=10000)
    ap.add_argument("--probes6", type=int, default=2000)
    ap.add_argument("--unique-probes", action="store_true")
    args = ap.parse_args()
    d = args.dir
    gw4 = args.gw4.split(",")
    if args.v6 and not args.gw6:
        ap.error("IPv6 routes need --gw6")
    excl = [ipaddress.ip_network(x) for x in args.exclude]
    rnd = random.Random(args.seed)
    gwrnd = random.Random(args.seed + 1)

    def ok(n, reserved):
        if any(n.version == x.version and n.overlaps(x) and n.prefixlen >= x.prefixlen
               for x in excl):
            return False
        return not any(n.subnet_of(x) for x in reserved)

    def ok4(n):
        return ok(n, RESERVED4)

    def ok6(n):
        return ok(n, RESERVED6)

    v4 = set()
    lens4 = [8] * 2 + list(range(9, 16)) * 2 + list(range(16, 25)) * 12 + list(range(25, 33)) * 4
    while len(v4) < args.v4:
        length = rnd.choice(lens4)
        a = rnd.choice([10, 100, 172, 198]) << 24 | rnd.getrandbits(24)
        n = ipaddress.ip_network((a, length), strict=False)
        if ok4(n):
            v4.add(n)
    v6 = set()
    lens6 = [16, 24, 28, 32, 32, 40, 44, 48, 48, 48, 56, 60, 64, 64, 64, 80, 96, 112, 127, 128]
    while len(v6) < args.v6:
        length = rnd.choice(lens6)
        a = (0x2001_0db8 << 96 | rnd.getrandbits(96)) if rnd.random() < 0.7 \
            else (0x2a00 << 112 | rnd.getrandbits(112))
        n = ipaddress.ip_network((a, length), strict=False)
        if ok6(n):
            v6.add(n)
    v4, v6 = sorted(v4), sorted(v6)
    with open(f"{d}/kernel.batch", "w") as k, open(f"{d}/switch.txt", "w") as s:
        for n in v4:
            gw = gwrnd.choice(gw4) if len(gw4) > 1 else gw4[0]
            k.write(f"route add {n} via {gw}\n")
            s.write(f"route add {n} via {gw}\n")
        for n in v6:
            k.write(f"route add {n} via {args.gw6}\n")
            s.write(f"route add {n} via {args.gw6}\n")
        k.write(f"route add default via {gw4[0]}\n")
        s.write(f"route add 0.0.0.0/0 via {gw4[0]}\n")
        if args.gw6:
            k.write(f"route add default via {args.gw6}\n")
            s.write(f"route add ::/0 via {args.gw6}\n")
    gone4, gone6 = rnd.sample(v4, len(v4) // 2), rnd.sample(v6, len(v6) // 2)
    with open(f"{d}/kernel-del.batch", "w") as k, open(f"{d}/switch-del.txt", "w") as s:
        for n in gone4 + gone6:
            k.write(f"route del {n}\n")
            s.write(f"route del {n}\n")

    def probes(nets, count, bits, good):
        out, seen = [], set()
        while len(out) < count:
            if rnd.random() < 0.8:
                n = rnd.choice(nets)
                a = int(n.network_address) | rnd.getrandbits(bits - n.prefixlen) \
                    if n.prefixlen < bits else int(n.network_address)
                if rnd.random() < 0.1:
                    a = int(n.broadcast_address) + rnd.choice([0, 1])
            else:
                a = rnd.getrandbits(bits)
            a &= (1 << bits) - 1
            ip = ipaddress.ip_address(a)
            if good(ipaddress.ip_network((a, bits))) and not (args.unique_probes and ip in seen):
                out.append(ip)
                seen.add(ip)
        return out

    for fam, nets, count, bits, good in ((4, v4, args.probes4, 32, ok4),
                                         (6, v6, args.probes6, 128, ok6)):
        p = probes(nets, count, bits, good) if count else []
        with open(f"{d}/probes{fam}", "w") as f:
            f.write("".join(f"{ip}\n" for ip in p))


if __name__ == "__main__":
    main()
