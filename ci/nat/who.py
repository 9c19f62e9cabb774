#!/usr/bin/python3
"""Servers that say who they are and who they see, and clients that count who answered.

    who.py serve NAME PORT          TCP: to every connection, and to every line it sends,
                                    answer "NAME PEER_IP PEER_PORT\\n" (threads)
    who.py udp NAME PORT            UDP: answer every datagram with "NAME PEER_IP PEER_PORT"
    who.py hold HOST PORT N FILE    open N connections (from this namespace), read each
                                    one's first answer; print {"first": {NAME: count}} as a
                                    line; then wait until FILE exists and ask every
                                    connection again: print {"again": {NAME: count},
                                    "same": K, "broken": B} (K: answered by the same backend)
    who.py many HOST PORT N         N short connections one after another; print
                                    {"names": {NAME: count}, "peers": [PEER_IP...]}
    who.py query HOST PORT N        N UDP queries from one socket (unconnected: every
                                    answer's source must be HOST:PORT); print
                                    {"names": {...}, "sources": [...], "answered": A}
    who.py refused HOST PORT        connect once; print {"refused": true, "seconds": S}, or
                                    the error or false in place of true
    who.py udp-refused HOST PORT    a connected UDP socket sends once: print {"refused": bool}
                                    (an ICMP port unreachable came back to it)
    who.py talk HOST PORT SECONDS   one connection, a line every 0.1 s for SECONDS, each
                                    answered within 2 s; print {"sent": N, "answered": A,
                                    "names": {...}}
"""
import json
import os
import socket
import sys
import threading
import time


def serve(name, port):
    # Both families (a dual-stack socket: IPv4 peers appear as IPv4 addresses below).
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(1024)

    def one(c, peer):
        with c:
            ip = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
            msg = ("%s %s %d\n" % (name, ip, peer[1])).encode()
            try:
                c.sendall(msg)
                while True:
                    b = c.recv(4096)
                    if not b:
                        return
                    c.sendall(msg)
            except OSError:
                return

    while True:
        c, peer = s.accept()
        threading.Thread(target=one, args=(c, peer), daemon=True).start()


def udp(name, port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    while True:
        _, peer = s.recvfrom(2048)
        ip = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
        s.sendto(("%s %s %d" % (name, ip, peer[1])).encode(), peer)


def line(f):
    b = b""
    while not b.endswith(b"\n"):
        x = f.recv(4096)
        if not x:
            raise OSError("closed")
        b += x
    return b.decode().split()


def count(names):
    out = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return out


def hold(host, port, n, path):
    conns, first = [], []
    for _ in range(n):
        c = socket.create_connection((host, port), timeout=10)
        conns.append(c)
        first.append(line(c)[0])
    print(json.dumps({"first": count(first)}), flush=True)
    deadline = time.time() + 120
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.1)
    again, same, broken = [], 0, 0
    for c, f in zip(conns, first):
        try:
            c.sendall(b"again\n")
            name = line(c)[0]
            again.append(name)
            same += name == f
        except OSError:
            broken += 1
    print(json.dumps({"again": count(again), "same": same, "broken": broken}), flush=True)


def many(host, port, n):
    names, peers = [], set()
    for _ in range(n):
        with socket.create_connection((host, port), timeout=10) as c:
            w = line(c)
            names.append(w[0])
            peers.add(w[1])
    print(json.dumps({"names": count(names), "peers": sorted(peers)}))


def query(host, port, n):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    names, sources, answered = [], set(), 0
    for i in range(n):
        s.sendto(b"q%d" % i, (host, port))
        try:
            b, src = s.recvfrom(2048)
        except socket.timeout:
            continue
        answered += 1
        names.append(b.decode().split()[0])
        sources.add("[%s]:%d" % src[:2] if ":" in src[0] else "%s:%d" % src)
    print(json.dumps({"names": count(names), "sources": sorted(sources), "answered": answered}))


def refused(host, port):
    t = time.time()
    try:
        socket.create_connection((host, port), timeout=10).close()
        r = False
    except ConnectionRefusedError:
        r = True
    except OSError as e:
        r = str(e)
    print(json.dumps({"refused": r, "seconds": round(time.time() - t, 3)}))


def udp_refused(host, port):
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect((host, port))
    r = False
    for _ in range(3):
        try:
            s.send(b"anyone?")
            s.recv(2048)
        except ConnectionRefusedError:
            r = True
            break
        except socket.timeout:
            pass
    print(json.dumps({"refused": r}))


def talk(host, port, seconds):
    c = socket.create_connection((host, port), timeout=10)
    c.settimeout(2)
    names = [line(c)[0]]
    sent = answered = 0
    end = time.time() + seconds
    while time.time() < end:
        sent += 1
        try:
            c.sendall(b"hello\n")
            names.append(line(c)[0])
            answered += 1
        except OSError:
            pass
        time.sleep(0.1)
    print(json.dumps({"sent": sent, "answered": answered, "names": count(names)}))


if __name__ == "__main__":
    a = sys.argv[1:]
    cmd = a[0]
    if cmd == "serve":
        serve(a[1], int(a[2]))
    elif cmd == "udp":
        udp(a[1], int(a[2]))
    elif cmd == "hold":
        hold(a[1], int(a[2]), int(a[3]), a[4])
    elif cmd == "many":
        many(a[1], int(a[2]), int(a[3]))
    elif cmd == "query":
        query(a[1], int(a[2]), int(a[3]))
    elif cmd == "udp-refused":
        udp_refused(a[1], int(a[2]))
    elif cmd == "talk":
        talk(a[1], int(a[2]), float(a[3]))
    elif cmd == "refused":
        refused(a[1], int(a[2]))
    else:
        sys.exit(__doc__)
