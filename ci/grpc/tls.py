#!/usr/bin/env python3
"""vswitchd over TLS TCP (--listen, --tls-cert, --tls-key, --tls-client-ca), through grpcio.
Run by ci/tests/15-tls.sh:

    tls.py --gen DIR --addr 127.0.0.1:PORT --pki DIR [--unix SOCK]

PKI DIR holds ca.pem (signs server.pem and client.pem), other.pem (another CA) and
rogue.pem/.key (a client certificate that other CA signed). Checks:
  - a client with a certificate of ca.pem gets Health (and ListInterfaces);
  - refused: no client certificate; a client certificate of another CA; plain-text TCP;
  - a client that trusts only the other CA refuses the server (it presents server.pem);
  - the unix socket still answers (plain, as before).
"""

import argparse
import os

import vsgrpc
from vsgrpc import check, log


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gen", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--unix")
    a = ap.parse_args()
    api = vsgrpc.load(a.gen)
    OK = api.grpc.StatusCode.OK

    def pki(name):
        return os.path.join(a.pki, name)

    def health(what, **creds):
        ch = vsgrpc.open_channel(a.addr, **creds)
        try:
            stub = api.stub(ch)
            code, reply = vsgrpc.outcome(stub.Health, api.pb.HealthRequest(), timeout=5)
            if code == OK:
                n = len(vsgrpc.ok(stub.ListInterfaces, api.pb.ListInterfacesRequest(),
                                  "%s: ListInterfaces" % what, timeout=5).interfaces)
                return code, "version %s, %d interfaces listed" % (reply.version, n)
            return code, reply
        finally:
            ch.close()

    good = dict(ca=pki("ca.pem"), cert=pki("client.pem"), key=pki("client.key"))

    def accepted(what):
        code, detail = health(what, **good)
        check(code == OK, "%s: Health over TLS with a valid client certificate failed: %s: %s"
              % (what, code.name, detail))
        log("%s: Health over TLS at %s with a client certificate of the CA: OK (%s)"
            % (what, a.addr, detail))

    accepted("first")
    refusals = [
        ("no client certificate", dict(ca=pki("ca.pem"))),
        ("client certificate of another CA",
         dict(ca=pki("ca.pem"), cert=pki("rogue.pem"), key=pki("rogue.key"))),
        ("client trusting only another CA (server certificate not trusted)",
         dict(ca=pki("other.pem"), cert=pki("client.pem"), key=pki("client.key"))),
        ("plain-text TCP (no TLS)", dict()),
    ]
    for what, creds in refusals:
        code, detail = health(what, **creds)
        check(code != OK, "%s: Health succeeded (%s); it must be refused" % (what, detail))
        log("refused as required: %s -> %s: %s" % (what, code.name, detail))
    accepted("again after the refusals")

    if a.unix:
        ch = vsgrpc.open_channel("unix:" + a.unix, ready_timeout=10)
        r = vsgrpc.ok(api.stub(ch).Health, api.pb.HealthRequest(), "Health on the unix socket")
        ch.close()
        log("the unix socket %s answers Health too (version %s)" % (a.unix, r.version))


if __name__ == "__main__":
    vsgrpc.run_main(main)
