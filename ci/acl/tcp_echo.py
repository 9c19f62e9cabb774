#!/usr/bin/python3
"""A long-lived TCP connection that keeps exchanging messages.

    tcp_echo.py serve PORT              echo every connection's bytes (threads)
    tcp_echo.py talk HOST PORT SECONDS  one connection; a message and its echo every 0.1 s
                                        for SECONDS; print JSON {sent, answered, late}
    tcp_echo.py once HOST PORT          connect, one echo, close cleanly (FIN both ways)
    tcp_echo.py hold HOST PORT FILE     connect, one echo; wait until FILE exists, then one
                                        more echo (up to 20 s: TCP retransmits what a
                                        switch restart lost); print JSON {before, after}
"""
import os
import json
import socket
import sys
import threading
import time


def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)

    def one(c):
        with c:
            while True:
                b = c.recv(4096)
                if not b:
                    return
                c.sendall(b)

    while True:
        c, _ = s.accept()
        threading.Thread(target=one, args=(c,), daemon=True).start()


def echo(c, msg):
    """Sends msg on connection c; whether the same bytes come back (within c's timeout)."""
    c.sendall(msg)
    got = b""
    try:
        while len(got) < len(msg):
            b = c.recv(64)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    return got == msg


def talk(host, port, seconds):
    c = socket.create_connection((host, port), timeout=5)
    c.settimeout(2)
    sent = answered = late = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        ok = echo(c, b"%08d\n" % sent)
        sent += 1
        if ok:
            answered += 1
            late += time.monotonic() - t > 1.0
        time.sleep(0.1)
    c.close()
    print(json.dumps({"sent": sent, "answered": answered, "late": late}))


def once(host, port):
    c = socket.create_connection((host, port), timeout=5)
    c.sendall(b"x")
    assert c.recv(1) == b"x"
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
    c.close()


def hold(host, port, flag):
    c = socket.create_connection((host, port), timeout=5)
    c.settimeout(20)
    before = echo(c, b"before\n")
    print(json.dumps({"connected": True}), flush=True)
    while not os.path.exists(flag):
        time.sleep(0.1)
    after = echo(c, b"after\n")
    c.close()
    print(json.dumps({"before": before, "after": after}), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "serve":
        serve(int(sys.argv[2]))
    elif mode == "hold":
        hold(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif mode == "talk":
        talk(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        once(sys.argv[2], int(sys.argv[3]))
