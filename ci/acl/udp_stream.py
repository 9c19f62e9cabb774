#!/usr/bin/python3
"""A fixed-rate UDP stream with echoes, to show that no packet is lost.

    udp_stream.py echo PORT                     answer every datagram (IPv4 and IPv6)
    udp_stream.py send HOST PORT RATE SECONDS   send RATE numbered datagrams a second for
                                                SECONDS, count the echoes; print a JSON
                                                line {sent, echoed, missing: [first 10]}
"""
import json
import socket
import sys
import time


def echo(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind(("::", port))
    while True:
        b, a = s.recvfrom(2048)
        s.sendto(b, a)


def send(host, port, rate, seconds):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.setblocking(False)
    total = int(rate * seconds)
    seen = set()
    start = time.monotonic()

    def drain():
        while True:
            try:
                b, _ = s.recvfrom(64)
            except BlockingIOError:
                return
            seen.add(int(b[:10]))

    for i in range(total):
        due = start + i / rate
        while time.monotonic() < due:
            drain()
            time.sleep(min(0.0005, max(0.0, due - time.monotonic())))
        s.sendto(b"%010d" % i + b"x" * 54, (host, port))
    end = time.monotonic() + 2.0
    while time.monotonic() < end and len(seen) < total:
        drain()
        time.sleep(0.01)
    missing = [i for i in range(total) if i not in seen]
    print(json.dumps({"sent": total, "echoed": len(seen), "missing": missing[:10]}))


if __name__ == "__main__":
    if sys.argv[1] == "echo":
        echo(int(sys.argv[2]))
    else:
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
