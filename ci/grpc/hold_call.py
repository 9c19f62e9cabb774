"""A gRPC client that never finishes its call: on the unix socket given, it opens an HTTP/2
connection and starts a unary call (HEADERS without END_STREAM, so the request body never
comes), prints "holding", then keeps the connection open, printing "closed by the server"
when the server closes it. Stops when killed. Raw HTTP/2 (RFC 9113) and HPACK literals
(RFC 7541 §6.2.2), so that nothing but the standard library is needed.

usage: hold_call.py SOCKET /package.Service/Method
"""
import socket
import sys
import time


def frame(kind, flags, stream, payload):
    """An HTTP/2 frame (RFC 9113 §4.1)."""
    n = len(payload)
    head = bytes([n >> 16, (n >> 8) & 255, n & 255, kind, flags])
    return head + stream.to_bytes(4, "big") + payload


def indexed_name(index, value):
    """A literal header field without indexing, its name from the static table."""
    v = value.encode()
    assert index < 15 and len(v) < 127
    return bytes([index, len(v)]) + v


def new_name(name, value):
    """A literal header field without indexing, with a new name."""
    n, v = name.encode(), value.encode()
    return bytes([0, len(n)]) + n + bytes([len(v)]) + v


def main():
    path, rpc = sys.argv[1], sys.argv[2]
    headers = (
        bytes([0x83, 0x86])  # :method POST, :scheme http (static table 3 and 6)
        + indexed_name(4, rpc)  # :path
        + indexed_name(1, "localhost")  # :authority
        + new_name("content-type", "application/grpc")
        + new_name("te", "trailers")
    )
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    # The preface, empty SETTINGS, then HEADERS on stream 1 with END_HEADERS only.
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
    s.sendall(frame(1, 0x4, 1, headers))
    print("holding", flush=True)
    s.settimeout(1.0)
    while True:
        try:
            if not s.recv(4096):
                print("closed by the server", flush=True)
                break
        except socket.timeout:
            pass
    while True:
        time.sleep(60)


if __name__ == "__main__":
    main()
