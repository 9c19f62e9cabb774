#!/usr/bin/env python3
"""ci/vhost/bad_frontend.py: a vhost-user frontend (the role QEMU / virtio-user plays)
that plays a malformed peer against a backend's unix socket, so a test can show the
backend refuses it, says why, and survives.

    bad_frontend.py --socket PATH --mode MODE [--hold SECONDS] [--seed N]

Modes:
  short-file        a 1 MiB memfd announced as a 16 MiB memory region, then a complete
                    set-up of vrings 0 and 1 (the backend's new_device sees a region longer
                    than its file); held --hold seconds, then closed.
  too-many-regions  SET_MEM_TABLE with 9 regions (the protocol's limit is 8), each a small
                    memfd, then a GET_FEATURES probe to see whether the backend still talks.
  garbage           three connections: random bytes; a header whose size is larger than
                    any payload; a header whose size is larger than the bytes that follow.
  good              a complete, well-formed set-up (memfd as large as its region); held
                    --hold seconds, then closed.
  used-past-file    short-file with vring 0's used ring past the file's end (read while
                    the ring is set up, before any device exists).
  shrink-after-up   good, then after --hold seconds the memfd is shrunk to 0 bytes under
                    the running device; held --hold seconds more.
  send              good (not misbehaving: a guest sending), then once --go-file exists,
                    --count broadcast frames --interval seconds apart on vring 1 (the
                    guest's tx), each kicked only if the backend's used ring does not say
                    VRING_USED_F_NO_NOTIFY; prints how many were kicked and suppressed;
                    then held --hold seconds.

One line per step on stdout. Exit 0 when the script made all its sends (a backend that
closes the connection early is reported, not an error), 1 when the socket cannot be
reached or a reply is malformed, 2 on bad arguments.

The protocol: QEMU's docs/interop/vhost-user.rst. Each message is a header (u32 request,
u32 flags, u32 size) and `size` bytes of payload; descriptors travel with SCM_RIGHTS.
"""

import argparse
import os
import random
import socket
import struct
import sys
import time

# Requests (frontend to backend).
GET_FEATURES = 1
SET_FEATURES = 2
SET_OWNER = 3
SET_MEM_TABLE = 5
SET_VRING_NUM = 8
SET_VRING_ADDR = 9
SET_VRING_BASE = 10
SET_VRING_KICK = 12
SET_VRING_CALL = 13

NAMES = {
    GET_FEATURES: "GET_FEATURES",
    SET_FEATURES: "SET_FEATURES",
    SET_OWNER: "SET_OWNER",
    SET_MEM_TABLE: "SET_MEM_TABLE",
    SET_VRING_NUM: "SET_VRING_NUM",
    SET_VRING_ADDR: "SET_VRING_ADDR",
    SET_VRING_BASE: "SET_VRING_BASE",
    SET_VRING_KICK: "SET_VRING_KICK",
    SET_VRING_CALL: "SET_VRING_CALL",
}

VERSION_1 = 0x1  # header flags: protocol version 1
REPLY = 0x4  # header flags: this is a reply

HEADER = struct.Struct("<III")
REGION = struct.Struct("<QQQQ")  # guest_phys_addr, memory_size, userspace_addr, mmap_offset

MIB = 1 << 20
USER_BASE = 0x7F0000000000  # where this "frontend" claims its guest memory is mapped
RING_NUM = 256

# Features this frontend accepts when the backend offers them. Never
# VHOST_USER_F_PROTOCOL_FEATURES (bit 30): without it the backend enables a ring when it
# gets its kick descriptor, so the set-up below is complete without SET_VRING_ENABLE.
F_MRG_RXBUF = 1 << 15  # VIRTIO_NET_F_MRG_RXBUF
F_VERSION_1 = 1 << 32  # VIRTIO_F_VERSION_1
ACCEPTED = F_VERSION_1 | F_MRG_RXBUF


class PeerClosed(Exception):
    """The backend closed the connection (EOF, EPIPE or ECONNRESET)."""


def step(msg):
    print(msg, flush=True)


class Conn:
    """One vhost-user connection to the backend."""

    def __init__(self, path, timeout):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def close(self):
        self.sock.close()

    def raw(self, data, what):
        """Sends bytes as they are."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise PeerClosed(f"{what}: {e.__class__.__name__}") from e

    def send(self, request, payload=b"", fds=(), size=None, flags=VERSION_1):
        """Sends one message; `size` overrides the header's size field."""
        hdr = HEADER.pack(request, flags, len(payload) if size is None else size)
        name = NAMES.get(request, str(request))
        try:
            if fds:
                n = socket.send_fds(self.sock, [hdr + payload], list(fds))
                if n < len(hdr) + len(payload):
                    self.sock.sendall((hdr + payload)[n:])
            else:
                self.sock.sendall(hdr + payload)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise PeerClosed(f"sending {name}: {e.__class__.__name__}") from e

    def recv_exact(self, n, what):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError as e:
                raise PeerClosed(f"{what}: ConnectionResetError") from e
            except socket.timeout as e:
                raise PeerClosed(f"{what}: no answer within {self.sock.gettimeout()}s") from e
            if not chunk:
                raise PeerClosed(f"{what}: end of file after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def reply(self, request):
        """Reads the reply to `request` and returns its payload."""
        name = NAMES.get(request, str(request))
        req, flags, size = HEADER.unpack(self.recv_exact(HEADER.size, f"reply to {name}"))
        if req != request or not flags & REPLY:
            raise ValueError(f"reply to {name}: request {req}, flags {flags:#x}")
        return self.recv_exact(size, f"payload of the reply to {name}")

    def get_features(self):
        self.send(GET_FEATURES)
        payload = self.reply(GET_FEATURES)
        if len(payload) != 8:
            raise ValueError(f"GET_FEATURES reply of {len(payload)} bytes, not 8")
        return struct.unpack("<Q", payload)[0]


def memfd(name, size):
    fd = os.memfd_create(name)
    os.ftruncate(fd, size)
    return fd


def ring_layout(index, used_at=None):
    """Offsets of vring `index`'s desc, avail and used areas: distinct pages in the first
    1 MiB of guest memory (desc 16*256, avail 6+2*256, used 6+8*256 bytes each fit one);
    `used_at` moves vring 0's used area there."""
    base = 0x1000 + index * 0x3000
    used = used_at if (used_at is not None and index == 0) else base + 0x2000
    return base, base + 0x1000, used


def negotiate(c):
    offered = c.get_features()
    step(f"GET_FEATURES: backend offers {offered:#x}")
    c.send(SET_OWNER)
    step("SET_OWNER sent")
    acked = offered & ACCEPTED
    c.send(SET_FEATURES, struct.pack("<Q", acked))
    step(f"SET_FEATURES {acked:#x} sent")


def set_mem_table(c, regions, fds):
    payload = struct.pack("<II", len(regions), 0)
    for r in regions:
        payload += REGION.pack(*r)
    c.send(SET_MEM_TABLE, payload, fds)
    desc = ", ".join(
        f"gpa {g:#x} size {s} uaddr {u:#x} offset {o}" for g, s, u, o in regions
    )
    step(f"SET_MEM_TABLE sent: {len(regions)} region(s) [{desc}], {len(fds)} fd(s)")


def set_up_vrings(c, eventfds, used_at=None):
    for i in (0, 1):
        desc, avail, used = ring_layout(i, used_at)
        c.send(SET_VRING_NUM, struct.pack("<II", i, RING_NUM))
        step(f"SET_VRING_NUM vring {i} num {RING_NUM} sent")
        c.send(SET_VRING_BASE, struct.pack("<II", i, 0))
        step(f"SET_VRING_BASE vring {i} base 0 sent")
        # index, flags, desc, used, avail, log (the order of struct vhost_vring_addr)
        c.send(
            SET_VRING_ADDR,
            struct.pack(
                "<IIQQQQ", i, 0, USER_BASE + desc, USER_BASE + used, USER_BASE + avail, 0
            ),
        )
        step(
            f"SET_VRING_ADDR vring {i} desc {USER_BASE + desc:#x} "
            f"avail {USER_BASE + avail:#x} used {USER_BASE + used:#x} sent"
        )
        call = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        kick = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        eventfds += [call, kick]
        c.send(SET_VRING_CALL, struct.pack("<Q", i), [call])
        step(f"SET_VRING_CALL vring {i} sent (eventfd)")
        c.send(SET_VRING_KICK, struct.pack("<Q", i), [kick])
        step(f"SET_VRING_KICK vring {i} sent (eventfd)")


def hold(c, seconds):
    """Keeps the connection open `seconds`, noting an early close by the backend."""
    step(f"holding the connection {seconds}s")
    deadline = time.monotonic() + seconds
    c.sock.settimeout(0.1)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            data = c.sock.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            step("backend reset the connection while held")
            return
        if not data:
            step("backend closed the connection while held")
            return
        step(f"backend sent {len(data)} unexpected byte(s) while held")
    step("hold over")


def full_setup(c, mem_size, file_size, hold_s, used_at=None, shrink_after=None, then=None):
    fds = []
    try:
        negotiate(c)
        fd = memfd("bad-frontend-guest", file_size)
        fds.append(fd)
        step(f"memfd of {file_size} bytes for a region of {mem_size} bytes")
        set_mem_table(c, [(0, mem_size, USER_BASE, 0)], [fd])
        set_up_vrings(c, fds, used_at)
        step("set-up complete")
        if then is not None:
            then(fd, fds)
        if shrink_after is not None:
            hold(c, shrink_after)
            os.ftruncate(fd, 0)
            step("memfd shrunk to 0 bytes under the backend")
        hold(c, hold_s)
    finally:
        for fd in fds:
            os.close(fd)


def mode_short_file(path, args):
    c = Conn(path, args.timeout)
    step(f"connected to {path}")
    try:
        full_setup(c, 16 * MIB, 1 * MIB, args.hold)
    finally:
        c.close()
        step("closed")


def mode_used_past_file(path, args):
    """short-file with vring 0's used ring past the file's end (librte_vhost reads it while
    setting the ring up, before the device exists)."""
    c = Conn(path, args.timeout)
    step(f"connected to {path}")
    try:
        full_setup(c, 16 * MIB, 1 * MIB, args.hold, used_at=2 * MIB)
    finally:
        c.close()
        step("closed")


def mode_shrink_after_up(path, args):
    """A good set-up whose memory file is then shrunk to nothing while the device runs."""
    c = Conn(path, args.timeout)
    step(f"connected to {path}")
    try:
        full_setup(c, 16 * MIB, 16 * MIB, args.hold, shrink_after=args.hold)
    finally:
        c.close()
        step("closed")


def mode_good(path, args):
    c = Conn(path, args.timeout)
    step(f"connected to {path}")
    try:
        full_setup(c, 16 * MIB, 16 * MIB, args.hold)
    finally:
        c.close()
        step("closed")


USED_F_NO_NOTIFY = 1  # used ring flags: the backend polls, no kicks wanted
DESC = struct.Struct("<QIHH")  # addr, len, flags, next
NET_HDR = 12  # virtio_net_hdr with num_buffers (VERSION_1 / MRG_RXBUF accepted)


def send_frames(args, mem_fd, fds):
    """Sends args.count frames on vring 1 (set_up_vrings left its kick eventfd last in
    fds), kicking only when the backend asks for kicks."""
    import mmap

    kick = fds[-1]
    mem = mmap.mmap(mem_fd, 1 * MIB)
    desc, avail, used = ring_layout(1)
    deadline = time.monotonic() + args.timeout
    while not os.path.exists(args.go_file):
        if time.monotonic() > deadline:
            raise ValueError(f"--go-file {args.go_file} not made within {args.timeout}s")
        time.sleep(0.01)
    kicked = suppressed = 0
    src = bytes.fromhex("020000006099")
    for k in range(args.count):
        buf = 0x80000 + (k % RING_NUM) * 2048
        frame = b"\xff" * 6 + src + b"\x88\xb5" + k.to_bytes(4, "big") + bytes(46)
        mem[buf:buf + NET_HDR + len(frame)] = bytes(NET_HDR) + frame
        d = k % RING_NUM
        mem[desc + d * DESC.size:desc + (d + 1) * DESC.size] = DESC.pack(
            buf, NET_HDR + len(frame), 0, 0)
        mem[avail + 4 + 2 * d:avail + 6 + 2 * d] = struct.pack("<H", d)
        mem[avail + 2:avail + 4] = struct.pack("<H", (k + 1) & 0xFFFF)
        if struct.unpack_from("<H", mem, used)[0] & USED_F_NO_NOTIFY:
            suppressed += 1
        else:
            os.eventfd_write(kick, 1)
            kicked += 1
        time.sleep(args.interval)
    step(f"sent {args.count} frames on vring 1: {kicked} kicked, {suppressed} with kicks "
         "suppressed by the backend")
    mem.close()


def mode_send(path, args):
    if not args.go_file:
        raise ValueError("--mode send needs --go-file")
    if not 0 < args.count <= RING_NUM:
        raise ValueError(f"--count must be 1..{RING_NUM}")
    c = Conn(path, args.timeout)
    step(f"connected to {path}")
    try:
        full_setup(c, 16 * MIB, 16 * MIB, args.hold,
                   then=lambda fd, fds: send_frames(args, fd, fds))
    finally:
        c.close()
        step("closed")


def mode_too_many_regions(path, args):
    c = Conn(path, args.timeout)
    step(f"connected to {path}")
    fds = []
    try:
        negotiate(c)
        regions = []
        for i in range(9):
            fds.append(memfd(f"bad-frontend-region{i}", MIB))
            regions.append((i * MIB, MIB, USER_BASE + i * MIB, 0))
        set_mem_table(c, regions, fds)
        # A probe: does the backend still answer on this connection?
        try:
            f = c.get_features()
            step(f"probe GET_FEATURES answered {f:#x}: the connection survived")
        except PeerClosed as e:
            step(f"probe GET_FEATURES: backend closed the connection ({e})")
    finally:
        for fd in fds:
            os.close(fd)
        c.close()
        step("closed")


def mode_garbage(path, args):
    rng = random.Random(args.seed)
    # 1: random bytes.
    c = Conn(path, args.timeout)
    step(f"connected to {path} (random bytes)")
    try:
        data = rng.randbytes(64)
        c.raw(data, "sending random bytes")
        step(f"sent 64 random bytes (seed {args.seed}): {data[:12].hex()}...")
    finally:
        c.close()
        step("closed")
    # 2: a header claiming a payload larger than any message the protocol has.
    c = Conn(path, args.timeout)
    step(f"connected to {path} (oversized header)")
    try:
        c.send(SET_FEATURES, struct.pack("<Q", 0), size=0x10000)
        step("sent SET_FEATURES with size 65536 and 8 bytes of payload")
    finally:
        c.close()
        step("closed")
    # 3: a header claiming more bytes than follow it, then end of file.
    c = Conn(path, args.timeout)
    step(f"connected to {path} (short payload)")
    try:
        c.send(SET_MEM_TABLE, struct.pack("<II", 1, 0), size=8 + REGION.size)
        step(f"sent SET_MEM_TABLE with size {8 + REGION.size} and 8 bytes of payload")
    finally:
        c.close()
        step("closed")


MODES = {
    "short-file": mode_short_file,
    "too-many-regions": mode_too_many_regions,
    "garbage": mode_garbage,
    "good": mode_good,
    "used-past-file": mode_used_past_file,
    "shrink-after-up": mode_shrink_after_up,
    "send": mode_send,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", required=True, help="the backend's vhost-user socket")
    p.add_argument("--mode", required=True, choices=sorted(MODES))
    p.add_argument("--hold", type=float, default=2.0,
                   help="seconds to keep a complete set-up open (default 2)")
    p.add_argument("--seed", type=int, default=1, help="seed of garbage's random bytes")
    p.add_argument("--go-file", help="send: start sending once this file exists")
    p.add_argument("--count", type=int, default=30, help="send: frames (default 30)")
    p.add_argument("--interval", type=float, default=0.05,
                   help="send: seconds between frames (default 0.05)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="seconds to wait for a reply (default 5)")
    args = p.parse_args()
    if args.hold < 0 or args.timeout <= 0:
        p.error("--hold must be >= 0 and --timeout > 0")
    try:
        MODES[args.mode](args.socket, args)
    except PeerClosed as e:
        step(f"backend closed the connection early: {e}")
    except (BrokenPipeError, ConnectionResetError) as e:
        step(f"backend closed the connection early: {e.__class__.__name__}")
    except (FileNotFoundError, ConnectionRefusedError) as e:
        print(f"bad_frontend: cannot connect to {args.socket}: {e}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"bad_frontend: {e}", file=sys.stderr)
        return 1
    step(f"mode {args.mode} done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
