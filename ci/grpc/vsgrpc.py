#!/usr/bin/env python3
"""Shared helpers of the gRPC client tests (ci/tests/13-15): an independent Python client of
vswitchd, with its code generated from proto/ at test time (never committed).

    vsgrpc.py gen --out DIR                  generate the stubs into DIR, print what made them
    vsgrpc.py send --iface IF --src MAC ...  send raw Ethernet frames out of IF (run it in a
                                             namespace with `ip netns exec`); prints the
                                             CLOCK_MONOTONIC time right after the last send

As a module: load(DIR) imports the generated code (generating it first if needed) and returns
an Api with pb (vswitch.v1 messages), stub(channel), health / reflection modules;
open_channel("unix:PATH" | "HOST:PORT", ca=, cert=, key=) opens a channel.

Stubs are made by Debian's protoc (protobuf-compiler) with grpc_python_plugin
(protobuf-compiler-grpc), which match python3-protobuf and python3-grpcio. Debian 12's
python3-grpc-tools (1.14.1) bundles libprotoc 3.5.1, which rejects proto3 `optional`, so
grpc_tools.protoc is only the fallback (e.g. a newer grpcio-tools from PyPI). The health and
reflection protos come from Debian's grpc-proto package (/usr/share/grpc-proto).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import types

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROTO_ROOT = os.path.join(ROOT, "proto", "proto")
VSWITCH_PROTO = "vswitch/v1/vswitch.proto"
GRPC_PROTO_DIRS = ("/usr/share/grpc-proto",)
# grpc.health.v1 / grpc.reflection.* protos, copied under a package of our own: generated
# code for a proto at grpc/health/v1/... would import `grpc.health.v1`, which the grpc
# library package shadows. The proto packages (and so the service names) stay the same.
EXTRA_PROTOS = {
    "grpc/health/v1/health.proto": "vsci_grpc/health_v1.proto",
    "grpc/reflection/v1/reflection.proto": "vsci_grpc/reflection_v1.proto",
    "grpc/reflection/v1alpha/reflection.proto": "vsci_grpc/reflection_v1alpha.proto",
}
DONE_MARK = "GENERATED_BY"

# ---------------------------------------------------------------------------------------
# Logging and checks


def test_name():
    return os.environ.get("VS_TEST_NAME") or os.path.basename(sys.argv[0])


def log(msg):
    print("[%s] %s" % (test_name(), msg), flush=True)


class Fail(Exception):
    """A failed check: main() prints it as one FAIL line and exits 1."""


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def run_main(fn):
    """Runs fn(); a Fail or an unexpected gRPC error becomes a FAIL line and exit 1."""
    try:
        fn()
    except Fail as e:
        print("[%s] FAIL: %s" % (test_name(), e), file=sys.stderr, flush=True)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - any crash of a check is a failure
        import traceback
        traceback.print_exc()
        print("[%s] FAIL: unexpected %s: %s" % (test_name(), type(e).__name__, e),
              file=sys.stderr, flush=True)
        sys.exit(1)


# ---------------------------------------------------------------------------------------
# Code generation


def _generator():
    """(argv prefix, description) of the protoc to run."""
    protoc = shutil.which("protoc")
    plugin = shutil.which("grpc_python_plugin")
    if protoc and plugin:
        ver = subprocess.run([protoc, "--version"], capture_output=True, text=True).stdout
        return ([protoc, "--plugin=protoc-gen-grpc_python=" + plugin],
                "%s (%s) + %s" % (protoc, ver.strip(), plugin))
    try:
        import grpc_tools  # noqa: F401
        from grpc_tools import protoc as _p  # noqa: F401
    except ImportError:
        raise Fail("no protoc: install protobuf-compiler and protobuf-compiler-grpc "
                   "(bash ci/setup.sh), or grpcio-tools")
    inc = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    return ([sys.executable, "-m", "grpc_tools.protoc", "-I" + inc],
            "grpc_tools.protoc (%s)" % grpc_tools.__file__)


def generate(out):
    """Generates the Python code of vswitch.proto (and health / reflection) into out."""
    os.makedirs(out, exist_ok=True)
    src = os.path.join(out, "proto-src")
    os.makedirs(os.path.join(src, "vsci_grpc"), exist_ok=True)
    files = [VSWITCH_PROTO]
    missing = []
    for orig, copy in EXTRA_PROTOS.items():
        for d in GRPC_PROTO_DIRS:
            p = os.path.join(d, orig)
            if os.path.exists(p):
                shutil.copyfile(p, os.path.join(src, copy))
                files.append(copy)
                break
        else:
            missing.append(orig)
    argv, desc = _generator()
    cmd = argv + ["-I" + PROTO_ROOT, "-I" + src, "--python_out=" + out,
                  "--grpc_python_out=" + out] + files
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise Fail("code generation failed (%s):\n%s%s" % (" ".join(cmd), r.stdout, r.stderr))
    with open(os.path.join(out, DONE_MARK), "w") as f:
        f.write(desc + "\n")
        for m in missing:
            f.write("missing: %s\n" % m)
    return desc, missing


def load(out):
    """Imports the generated code from out (generating it first if needed)."""
    if not os.path.exists(os.path.join(out, DONE_MARK)):
        generate(out)
    if out not in sys.path:
        sys.path.insert(0, out)
    import grpc
    from vswitch.v1 import vswitch_pb2, vswitch_pb2_grpc
    api = types.SimpleNamespace(grpc=grpc, pb=vswitch_pb2, rpc=vswitch_pb2_grpc,
                                health=None, health_rpc=None, reflection={})
    api.stub = vswitch_pb2_grpc.VswitchStub
    try:
        from vsci_grpc import health_v1_pb2, health_v1_pb2_grpc
        api.health, api.health_rpc = health_v1_pb2, health_v1_pb2_grpc
    except ImportError:
        pass
    for ver in ("v1", "v1alpha"):
        try:
            mod = __import__("vsci_grpc.reflection_%s_pb2" % ver, fromlist=["x"])
            rpc = __import__("vsci_grpc.reflection_%s_pb2_grpc" % ver, fromlist=["x"])
            api.reflection[ver] = (mod, rpc)
        except ImportError:
            pass
    return api


# ---------------------------------------------------------------------------------------
# Channels and calls


def open_channel(target, ca=None, cert=None, key=None, ready_timeout=None, options=None):
    """A channel to "unix:PATH" (plain) or "HOST:PORT" (TLS when ca is given, with a client
    certificate when cert and key are given; plain text otherwise), with grpc channel
    options (a list of (name, value)). With ready_timeout, waits until it connects (raises
    Fail if it does not)."""
    import grpc

    def read(p):
        with open(p, "rb") as f:
            return f.read()

    if ca is not None:
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(ca),
            private_key=read(key) if key else None,
            certificate_chain=read(cert) if cert else None)
        ch = grpc.secure_channel(target, creds, options=options)
    else:
        ch = grpc.insecure_channel(target, options=options)
    if ready_timeout is not None:
        try:
            grpc.channel_ready_future(ch).result(timeout=ready_timeout)
        except grpc.FutureTimeoutError:
            raise Fail("no connection to %s within %ss" % (target, ready_timeout))
    return ch


def outcome(fn, req, timeout=15):
    """Calls fn(req): (grpc.StatusCode.OK, reply) or (code, details) of the error."""
    import grpc
    try:
        return grpc.StatusCode.OK, fn(req, timeout=timeout)
    except grpc.RpcError as e:
        return e.code(), e.details()


def ok(fn, req, what, timeout=15):
    """Calls fn(req); a gRPC error fails the test with what."""
    import grpc
    try:
        return fn(req, timeout=timeout)
    except grpc.RpcError as e:
        raise Fail("%s: %s: %s" % (what, e.code().name, e.details()))


def to_dict(msg):
    """A message as a plain dict (field names as in the proto, defaults included)."""
    from google.protobuf import json_format
    return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                     including_default_value_fields=True)


# ---------------------------------------------------------------------------------------
# Raw frames

ETH_P_ALL = 0x0003
ETH_P_EXPERIMENTAL = 0x88B5


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def raw_frame(src, dst="ff:ff:ff:ff:ff:ff", text=b"vswitch-grpc-test"):
    """An untagged frame of EtherType 0x88b5 (local experimental: no stack answers it)."""
    f = mac_bytes(dst) + mac_bytes(src) + ETH_P_EXPERIMENTAL.to_bytes(2, "big") + text
    return f + b"\0" * max(0, 60 - len(f))


def send_frames(ifname, srcs, dst="ff:ff:ff:ff:ff:ff"):
    """Sends one frame per source MAC out of ifname; returns CLOCK_MONOTONIC after the last."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    try:
        s.bind((ifname, 0))
        for src in srcs:
            s.send(raw_frame(src, dst))
        return time.clock_gettime(time.CLOCK_MONOTONIC)
    finally:
        s.close()


# ---------------------------------------------------------------------------------------
# Command line


def _main():
    ap = argparse.ArgumentParser(description="helpers of the gRPC client tests")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen", help="generate the client code into --out")
    g.add_argument("--out", required=True)
    s = sub.add_parser("send", help="send raw frames, print the monotonic time after sending")
    s.add_argument("--iface", required=True)
    s.add_argument("--src", required=True, action="append")
    s.add_argument("--dst", default="ff:ff:ff:ff:ff:ff")
    a = ap.parse_args()
    if a.cmd == "gen":
        desc, missing = generate(a.out)
        load(a.out)  # the generated code must import
        import grpc
        from google import protobuf
        log("client code generated into %s by %s; grpcio %s, protobuf %s"
            % (a.out, desc, grpc.__version__, protobuf.__version__))
        for m in missing:
            log("note: %s not found in %s" % (m, ", ".join(GRPC_PROTO_DIRS)))
    else:
        print("%.6f" % send_frames(a.iface, a.src, a.dst))


if __name__ == "__main__":
    run_main(_main)
