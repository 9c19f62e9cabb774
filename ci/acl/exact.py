#!/usr/bin/python3
"""ACL exactness at scale (issue 14): random rules of varied shapes and random packets
(IPv4 and IPv6), with the verdicts and per-rule hits a plain linear first-match evaluation
gives, computed here independently of the switch (numpy, rule by rule over all packets).

    exact.py --rules N --packets M --seed S --out DIR

writes DIR/acl.txt (a `vsctl transaction` file: `acl add exact "RULE" ...`), DIR/in.pcap
(the packets, Ethernet frames), DIR/expect.json: {"hits": [per rule], "default": n,
"permitted": [frame indices that pass, in order], "denied": n, "exempt": n}.

Rule semantics (CONTRACT `acl add`): first match wins, no match denies; a rule matches a
family (its prefixes', icmp: IPv4, icmp6: IPv6, else both), a protocol or any, source and
destination prefixes, port ranges (tcp/udp) or ICMP type (and code); a rule with ports or
an ICMP type does not match a later fragment. ARP is not subject to ACLs (it passes).
"""
import argparse
import json
import os
import random
import struct

import numpy as np

TCP, UDP, ICMP, ICMP6, GRE = 6, 17, 1, 58, 47


def v4_nets(rng):
    """Prefix pools that rules and packets share, so that packets hit rules."""
    return [(0x0A000000 | (rng.randrange(64) << 16), 16) for _ in range(16)] + \
           [(0xC6120000 | (rng.randrange(256) << 8), 24) for _ in range(64)]


def v6_nets(rng):
    return [((0x20010DB8 << 96) | (rng.randrange(64) << 80), 48) for _ in range(16)] + \
           [((0xFD000000 << 96) | (rng.randrange(256) << 64), 64) for _ in range(64)]


def rand_prefix(rng, pool, bits):
    base, blen = rng.choice(pool)
    r = rng.random()
    if r < 0.1:
        return None
    if r < 0.5:
        length = blen
    elif r < 0.9:
        length = rng.randrange(blen, bits + 1)
    else:
        length = rng.randrange(max(1, blen - 8), blen + 1)
    addr = base | (rng.getrandbits(bits - blen) if length > blen else 0)
    mask = ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1) if length else 0
    return (addr & mask, length)


def fmt_addr(a, v6):
    if not v6:
        return ".".join(str((a >> s) & 255) for s in (24, 16, 8, 0))
    import ipaddress
    return str(ipaddress.IPv6Address(a))


def rand_ports(rng):
    r = rng.random()
    if r < 0.4:
        return None
    if r < 0.7:
        p = rng.choice([53, 80, 443, 8080, 22, 123, 5000 + rng.randrange(200)])
        return (p, p)
    if r < 0.85:
        return (1024, 65535)
    lo = rng.randrange(0, 60000)
    return (lo, lo + rng.randrange(1, 3000))


def make_rules(rng, n, p4, p6):
    rules = []
    for i in range(n):
        # Specific rules first, a wildcard-heavy tail (as ClassBench's sets have).
        tail = i >= n - max(1, n // 50)
        fam = "any" if tail and rng.random() < 0.5 else rng.choice(["v4", "v6"])
        v6 = fam == "v6"
        if fam == "any":
            proto = rng.choice([TCP, UDP, GRE])
        else:
            proto = rng.choice([None, TCP, TCP, UDP, UDP, ICMP6 if v6 else ICMP, GRE])
        src = dst = None
        if fam != "any":
            bits = 128 if v6 else 32
            src = rand_prefix(rng, p6 if v6 else p4, bits)
            dst = rand_prefix(rng, p6 if v6 else p4, bits)
            if src is None and dst is None and proto not in (ICMP, ICMP6):
                # Keep the family: a rule with neither prefix would match both.
                dst = rand_prefix(rng, p6 if v6 else p4, bits) or ((p6 if v6 else p4)[0])
        sport = dport = itype = icode = None
        if proto in (TCP, UDP):
            sport = rand_ports(rng) if rng.random() < 0.3 else None
            dport = rand_ports(rng)
        elif proto in (ICMP, ICMP6) and rng.random() < 0.7:
            itype = rng.choice([0, 8, 3, 11] if proto == ICMP else [128, 129, 1, 3])
            if rng.random() < 0.3:
                icode = rng.randrange(0, 4)
        action = rng.choice(["permit", "permit", "deny"])
        rules.append(dict(action=action, v6=v6 if fam != "any" else None, proto=proto,
                          src=src, dst=dst, sport=sport, dport=dport, itype=itype, icode=icode))
    return rules


def rule_text(r):
    words = [r["action"]]
    if r["proto"] is not None:
        names = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMP6: "icmp6"}
        words.append("proto=%s" % names.get(r["proto"], str(r["proto"])))
    for k in ("src", "dst"):
        if r[k] is not None:
            words.append("%s=%s/%d" % (k, fmt_addr(r[k][0], r["v6"]), r[k][1]))
    for k in ("sport", "dport"):
        if r[k] is not None:
            lo, hi = r[k]
            words.append("%s=%d" % (k, lo) if lo == hi else "%s=%d-%d" % (k, lo, hi))
    if r["itype"] is not None:
        words.append("icmp-type=%d" % r["itype"])
    if r["icode"] is not None:
        words.append("icmp-code=%d" % r["icode"])
    return " ".join(words)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


ETH = bytes.fromhex("020000000002" "020000000001")


def frame(p):
    """An Ethernet frame of packet `p` (its L4 checksums are not checked by anyone)."""
    v6, proto, frag = p["v6"], p["proto"], p["frag"]
    if proto in (TCP, UDP):
        l4 = struct.pack("!HH", p["sport"], p["dport"]) + b"\0" * (16 if proto == TCP else 4)
    elif proto in (ICMP, ICMP6):
        l4 = struct.pack("!BBHHH", p["sport"], p["dport"], 0, 7, 1)
    else:
        l4 = b"\0" * 8
    if not v6:
        off = (185 if frag else 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, off, 64, proto, 0,
                         p["src"].to_bytes(4, "big"), p["dst"].to_bytes(4, "big"))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        f = ETH + b"\x08\x00" + ip + l4
    else:
        nh = proto
        ext = b""
        if frag:
            ext = struct.pack("!BBHI", proto, 0, (185 << 3), 9)
            nh = 44
        ip = struct.pack("!IHBB", 6 << 28, len(ext) + len(l4), nh, 64) + \
            p["src"].to_bytes(16, "big") + p["dst"].to_bytes(16, "big")
        f = ETH + b"\x86\xdd" + ip + ext + l4
    return f + b"\0" * max(0, 60 - len(f))


ARP = ETH[:6] + ETH[6:] + b"\x08\x06" + bytes.fromhex("0001080006040001") + b"\0" * 20


def make_packets(rng, m, rules, p4, p6):
    pk = []
    for _ in range(m):
        if rng.random() < 0.01:
            pk.append(None)  # ARP: exempt
            continue
        # Half the packets start from a rule (inside its prefixes and ports), half random.
        r = rng.choice(rules) if rng.random() < 0.5 else None
        v6 = r["v6"] if r and r["v6"] is not None else rng.random() < 0.5
        bits = 128 if v6 else 32
        pool = p6 if v6 else p4

        def addr(pref):
            if pref is not None and rng.random() < 0.9:
                a, length = pref
                return a | (rng.getrandbits(bits - length) if length < bits else 0)
            base, blen = rng.choice(pool)
            return base | rng.getrandbits(bits - blen)

        proto = (r["proto"] if r and r["proto"] is not None else
                 rng.choice([TCP, UDP, ICMP6 if v6 else ICMP, GRE]))
        if proto == (ICMP if v6 else ICMP6):
            proto = ICMP6 if v6 else ICMP

        def port(rng_range):
            if rng_range is not None and rng.random() < 0.9:
                return rng.randrange(rng_range[0], rng_range[1] + 1)
            return rng.choice([53, 80, 443, 8080, 22, 1024 + rng.randrange(64000)])
        if proto in (TCP, UDP):
            sport = port(r["sport"] if r else None)
            dport = port(r["dport"] if r else None)
        elif proto in (ICMP, ICMP6):
            sport = (r["itype"] if r and r["itype"] is not None and rng.random() < 0.9 else
                     rng.choice([0, 8, 3, 11] if proto == ICMP else [128, 129, 1, 3]))
            dport = (r["icode"] if r and r["icode"] is not None and rng.random() < 0.9 else
                     rng.randrange(0, 4))
        else:
            sport = dport = 0
        frag = rng.random() < 0.03
        if frag:
            sport = dport = 0
        pk.append(dict(v6=v6, proto=proto, src=addr(r["src"] if r else None),
                       dst=addr(r["dst"] if r else None), sport=sport, dport=dport, frag=frag))
    return pk


def reference(rules, packets):
    """First match per packet (-1: none; -2: exempt), rule by rule over all packets."""
    ip = [p for p in packets if p is not None]
    n = len(ip)
    fam6 = np.array([p["v6"] for p in ip], dtype=bool)
    proto = np.array([p["proto"] for p in ip], dtype=np.int64)
    hi = lambda k: np.array([(p[k] >> 64) if p["v6"] else 0 for p in ip], dtype=np.uint64)
    lo = lambda k: np.array([(p[k] & ((1 << 64) - 1)) for p in ip], dtype=np.uint64)
    s_hi, s_lo, d_hi, d_lo = hi("src"), lo("src"), hi("dst"), lo("dst")
    sport = np.array([p["sport"] for p in ip], dtype=np.int64)
    dport = np.array([p["dport"] for p in ip], dtype=np.int64)
    frag = np.array([p["frag"] for p in ip], dtype=bool)
    first = np.full(n, -1, dtype=np.int64)
    open_ = np.ones(n, dtype=bool)
    M64 = (1 << 64) - 1

    def in_prefix(pref, v6, a_hi, a_lo):
        a, length = pref
        if not v6:
            mask = (0xFFFFFFFF ^ ((1 << (32 - length)) - 1)) if length else 0
            return (a_lo & np.uint64(mask)) == np.uint64(a & mask)
        if length <= 64:
            mask = (M64 ^ ((1 << (64 - length)) - 1)) if length else 0
            return (a_hi & np.uint64(mask)) == np.uint64((a >> 64) & mask)
        mask = M64 ^ ((1 << (128 - length)) - 1)
        return (a_hi == np.uint64(a >> 64)) & ((a_lo & np.uint64(mask)) == np.uint64(a & mask))

    for i, r in enumerate(rules):
        m = open_.copy()
        fam_v6 = r["v6"]
        if r["proto"] in (ICMP, ICMP6) and fam_v6 is None:
            fam_v6 = r["proto"] == ICMP6
        if fam_v6 is not None:
            m &= fam6 if fam_v6 else ~fam6
        if r["proto"] is not None:
            m &= proto == r["proto"]
        for k, (a_hi, a_lo) in (("src", (s_hi, s_lo)), ("dst", (d_hi, d_lo))):
            if r[k] is not None:
                m &= in_prefix(r[k], fam_v6, a_hi, a_lo)
        l4 = False
        for k, arr in (("sport", sport), ("dport", dport)):
            if r[k] is not None:
                l4 = True
                m &= (arr >= r[k][0]) & (arr <= r[k][1])
        if r["itype"] is not None:
            l4 = True
            m &= sport == r["itype"]
            if r["icode"] is not None:
                m &= dport == r["icode"]
        if l4:
            m &= ~frag
        first[m] = i
        open_ &= ~m
    out = []
    it = iter(first.tolist())
    for p in packets:
        out.append(-2 if p is None else next(it))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=1000)
    ap.add_argument("--packets", type=int, default=100000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    p4, p6 = v4_nets(rng), v6_nets(rng)
    rules = make_rules(rng, a.rules, p4, p6)
    packets = make_packets(rng, a.packets, rules, p4, p6)
    first = reference(rules, packets)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "acl.txt"), "w") as f:
        f.write("acl add exact " + " ".join('"%s"' % rule_text(r) for r in rules) + "\n")
    with open(os.path.join(a.out, "in.pcap"), "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, p in enumerate(packets):
            fr = ARP if p is None else frame(p)
            f.write(struct.pack("<IIII", 1, i, len(fr), len(fr)) + fr)
    hits = [0] * len(rules)
    default = denied = exempt = 0
    permitted = []
    for i, x in enumerate(first):
        if x == -2:
            exempt += 1
            permitted.append(i)
        elif x == -1:
            default += 1
            denied += 1
        else:
            hits[x] += 1
            if rules[x]["action"] == "deny":
                denied += 1
            else:
                permitted.append(i)
    with open(os.path.join(a.out, "expect.json"), "w") as f:
        json.dump(dict(hits=hits, default=default, permitted=permitted, denied=denied,
                       exempt=exempt), f)
    print("%d rules, %d packets: %d permitted, %d denied (%d by no rule), %d exempt; "
          "%d rules hit" % (len(rules), len(packets), len(permitted), denied, default, exempt,
                            sum(1 for h in hits if h)))


if __name__ == "__main__":
    main()
