#!/usr/bin/env python3
"""Programming rate of static MAC entries, through an independent gRPC client (grpcio).
Run by ci/tests/18-fdb-rate.sh while traffic crosses the bridge:

    fdb_rate.py --gen DIR --target unix:SOCK --bridge BR --iface IF --count N --mode txn|single
        [--batch B] [--first K] [--expect-refused]

txn: N entries as Transactions of B AddFdb changes each (B = N: one transaction).
single: N AddFdb calls, one after the other, each answered (journaled and fsync'd) before
the next is sent. MACs are 02:fd:xx:xx:xx:xx from --first (distinct per run). Prints one
line `RATE mode=... entries=N seconds=S per_second=R` and checks, with ListFdb, that every
entry is in the bridge's table afterwards. --expect-refused (txn): the one transaction must be
refused; prints `REFUSED seconds=S code=CODE message=...` instead, and checks that none of
its entries is in the table.
"""

import argparse
import time

import grpc

import vsgrpc
from vsgrpc import check, log

MAX_MESSAGE = 256 << 20


def mac(n):
    b = n.to_bytes(4, "big")
    return "02:fd:%02x:%02x:%02x:%02x" % tuple(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gen", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--iface", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--mode", choices=("txn", "single"), required=True)
    ap.add_argument("--batch", type=int, default=0)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--expect-refused", action="store_true")
    a = ap.parse_args()
    api = vsgrpc.load(a.gen)
    pb = api.pb
    ch = vsgrpc.open_channel(a.target, ready_timeout=20, options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE)])
    stub = api.stub(ch)
    macs = [mac(a.first + i) for i in range(a.count)]

    def req(m):
        return pb.AddFdbRequest(bridge=a.bridge, mac=m, iface=a.iface)

    t0 = time.monotonic()
    if a.expect_refused:
        check(a.mode == "txn", "--expect-refused needs --mode txn")
        changes = [pb.Change(add_fdb=req(m)) for m in macs]
        try:
            stub.Transaction(pb.TransactionRequest(changes=changes), timeout=600)
        except grpc.RpcError as e:
            secs = time.monotonic() - t0
            entries = stub.ListFdb(pb.ListFdbRequest(bridge=a.bridge), timeout=60).entries
            mine = set(macs)
            applied = sum(1 for e2 in entries if e2.mac in mine)
            check(applied == 0, "%d entries of the refused transaction are in the table"
                  % applied)
            print("REFUSED seconds=%.3f code=%s message=%s"
                  % (secs, e.code().name, e.details()), flush=True)
            return
        check(False, "the transaction of %d changes was applied, not refused" % a.count)
    if a.mode == "single":
        for m in macs:
            stub.AddFdb(req(m), timeout=30)
    else:
        batch = a.batch or a.count
        for i in range(0, a.count, batch):
            changes = [pb.Change(add_fdb=req(m)) for m in macs[i:i + batch]]
            reply = stub.Transaction(pb.TransactionRequest(changes=changes), timeout=300)
            check(reply.applied == len(changes),
                  "Transaction applied %d of %d" % (reply.applied, len(changes)))
    secs = time.monotonic() - t0

    entries = stub.ListFdb(pb.ListFdbRequest(bridge=a.bridge), timeout=60).entries
    have = {e.mac for e in entries if e.static and e.iface == a.iface}
    missing = [m for m in macs if m not in have]
    check(not missing, "%d of %d entries missing from ListFdb after programming (first: %s)"
          % (len(missing), len(macs), missing[:3]))
    log("all %d entries are in %s's table (%d entries in all)" % (len(macs), a.bridge,
                                                                   len(entries)))
    print("RATE mode=%s entries=%d batch=%d seconds=%.3f per_second=%.0f"
          % (a.mode, a.count, a.batch or (a.count if a.mode == "txn" else 1), secs,
             a.count / secs), flush=True)


if __name__ == "__main__":
    vsgrpc.run_main(main)
