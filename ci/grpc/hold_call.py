"""A gRPC client that never finishes its call: on the unix socket given (or, with --tls,
a TCP address over mutual TLS with ALPN h2), it opens an HTTP/2 connection and starts a unary call (HEADERS without END_STREAM, so the request body never
comes), prints "holding", then keeps the connection open, printing "closed by the server"
when the server closes it. Stops when killed. Raw HTTP/2 (RFC 9113) and HPACK literals
(RFC 7541 §6.2.2), so that nothing but the standard library is needed.

usage: hold_call.py SOCKET /package.Service/Method
       hold_call.py --tls PKI_DIR HOST:PORT /package.Service/Method
         (PKI_DIR: ca.pem, client.pem, client.key)
"""
import os
import socket
import ssl
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
    if sys.argv[1] == "--tls":
        pki, addr, rpc = sys.argv[2], sys.argv[3], sys.argv[4]
        host, port = addr.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.pem"))
        ctx.load_cert_chain(os.path.join(pki, "client.pem"), os.path.join(pki, "client.key"))
        ctx.set_alpn_protocols(["h2"])
        s = ctx.wrap_socket(socket.create_connection((host, int(port))), server_hostname=host)
    else:
        path, rpc = sys.argv[1], sys.argv[2]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
    headers = (
        bytes([0x83, 0x86])  # :method POST, :scheme http (static table 3 and 6)
        + indexed_name(4, rpc)  # :path
        + indexed_name(1, "localhost")  # :authority
        + new_name("content-type", "application/grpc")
        + new_name("te", "trailers")
    )
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
