#!/usr/bin/env python3
"""A malformed memif client, for ci/tests/66-memif-interop.sh.

usage: memif_bad_peer.py SOCKET ID CASE
  bad-region  ADD_REGION announcing more bytes than the memfd holds
  bad-ring    ADD_RING at an offset outside the region
  bad-desc    a correct handshake, then a descriptor outside the region (the server must
              drop that frame and receive the next), then a head moved by more than the
              ring size (the server must disconnect)

Speaks memif 2.0 from its message layouts (128-byte frames on a SOCK_SEQPACKET socket,
descriptors as SCM_RIGHTS). Prints what the server answered; exits 0 when the server
refused as it should, 1 otherwise.
"""
import fcntl
import mmap
import os
import socket
import struct
import sys
import time

MSG_LEN = 128
ACK, HELLO, INIT, ADD_REGION, ADD_RING, CONNECT, CONNECTED, DISCONNECT = range(1, 9)
VERSION = 0x0200
COOKIE = 0x3E31F20
LOG2 = 4
RING_BYTES = 128 + 16 * (1 << LOG2)
BUF = 2048
SIZE = 2 * RING_BYTES + 2 * (1 << LOG2) * BUF


def frame(kind, body=b""):
    return (struct.pack("<H", kind) + body).ljust(MSG_LEN, b"\0")


def recv(sock, timeout=5.0):
    sock.settimeout(timeout)
    data = sock.recv(MSG_LEN)
    if not data:
        return None, b""
    return struct.unpack_from("<H", data)[0], data


def reason_of(data):
    return data[6:102].split(b"\0")[0].decode(errors="replace")


def expect(sock, kind, what):
    k, data = recv(sock)
    if k == kind:
        return data
    if k == DISCONNECT:
        print(f"{what}: server disconnected: {reason_of(data)}")
    else:
        print(f"{what}: expected message {kind}, got {k}")
    sys.exit(1)


def expect_refusal(sock, words):
    k, data = recv(sock)
    if k != DISCONNECT:
        print(f"expected DISCONNECT, got {k}")
        return 1
    reason = reason_of(data)
    print(f"server refused: {reason}")
    return 0 if words in reason else 1


def region():
    fd = os.memfd_create("bad_peer", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, SIZE)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
    mem = mmap.mmap(fd, SIZE)
    for off in (0, RING_BYTES):
        struct.pack_into("<IHH", mem, off, COOKIE, 0, 0)
    return fd, mem


def add_ring(c2s, offset):
    return frame(ADD_RING, struct.pack("<HHHIBH", 1 if c2s else 0, 0, 0, offset, LOG2, 0))


def main():
    path, iface_id, case = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(path)
    expect(sock, HELLO, "hello")
    init = struct.pack("<HIB24s32s", VERSION, iface_id, 0, b"", b"memif_bad_peer")
    sock.send(frame(INIT, init))
    expect(sock, ACK, "init")
    fd, mem = region()
    if case == "bad-region":
        socket.send_fds(sock, [frame(ADD_REGION, struct.pack("<HQ", 0, SIZE * 4))], [fd])
        return expect_refusal(sock, "file holds")
    socket.send_fds(sock, [frame(ADD_REGION, struct.pack("<HQ", 0, SIZE))], [fd])
    expect(sock, ACK, "add region")
    efd = os.eventfd(0, os.EFD_NONBLOCK)
    if case == "bad-ring":
        socket.send_fds(sock, [add_ring(True, SIZE - 64)], [efd])
        return expect_refusal(sock, "outside region")
    socket.send_fds(sock, [add_ring(True, 0)], [efd])
    expect(sock, ACK, "add ring c2s")
    socket.send_fds(sock, [add_ring(False, RING_BYTES)], [efd])
    expect(sock, ACK, "add ring s2c")
    sock.send(frame(CONNECT, b"memif_bad_peer".ljust(32, b"\0")))
    expect(sock, CONNECTED, "connect")
    # Two frames on the client-to-server ring: one outside the region, one fine.
    desc = 128
    buf0 = 2 * RING_BYTES
    struct.pack_into("<HHIII", mem, desc, 0, 0, 60, SIZE + 4096, 0)
    struct.pack_into("<HHIII", mem, desc + 16, 0, 0, 60, buf0, 0)
    struct.pack_into("<H", mem, 6, 2)
    deadline = time.monotonic() + 5
    while struct.unpack_from("<H", mem, 64)[0] != 2:
        if time.monotonic() > deadline:
            print("the server did not consume the two descriptors")
            return 1
        time.sleep(0.01)
    print("server consumed both descriptors (tail=2)")
    # A head that ran more than a ring ahead.
    struct.pack_into("<H", mem, 6, 2 + (1 << LOG2) + 5)
    return expect_refusal(sock, "ring broken")


if __name__ == "__main__":
    sys.exit(main())
