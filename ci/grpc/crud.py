#!/usr/bin/env python3
"""The whole vswitch.v1 API driven by an independent client (grpcio, code generated from
proto/ at test time). Run by ci/tests/13-grpc-client.sh:

    crud.py --gen DIR --target unix:SOCK crud --afp IF --afp-peer PEER --tap TAP --dir DIR
        every resource kind created, read, listed, changed and deleted; every error code;
        a failed call changes nothing; grpc.health.v1 and server reflection
    crud.py ... txn --missing-if IF
        Transaction: all or nothing, in order, applied == number of changes
    crud.py ... configure --afp IF --tap TAP --dir DIR
        a configuration of every kind, left in place for the restart check
    crud.py ... snapshot --out FILE
    crud.py ... compare --before FILE --dir DIR
        after a restart: every List result (configuration, not counters) is identical
"""

import argparse
import json
import os
import subprocess
import time

import vsgrpc
from vsgrpc import Fail, check, log

IFACE_FIELDS = ("name", "type", "args", "admin_up", "mac", "mtu", "xconnect", "rx_queues",
                "tx_queues")
KNOWN_DROPS = ("tx_full", "unconnected", "vlan_mismatch", "fdb_limit")


class Client:
    def __init__(self, gen, target):
        self.api = vsgrpc.load(gen)
        self.grpc = self.api.grpc
        self.pb = self.api.pb
        self.C = self.grpc.StatusCode
        self.ch = vsgrpc.open_channel(target, ready_timeout=20)
        self.s = self.api.stub(self.ch)
        self.checks = 0

    # -- calls ---------------------------------------------------------------------------

    def ok(self, method, what=None, **fields):
        """Calls Vswitch.METHOD with a request built from fields; must succeed."""
        fn = getattr(self.s, method)
        req = self.request(method, **fields)
        return vsgrpc.ok(fn, req, what or "%s(%s)" % (method, short(fields)))

    def request(self, method, **fields):
        name = self.api.pb.DESCRIPTOR.services_by_name["Vswitch"].methods_by_name[method] \
            .input_type.name
        return getattr(self.pb, name)(**fields)

    def refused(self, code, method, **fields):
        """METHOD(fields) must fail with code, and change nothing. Returns the message."""
        before = self.snapshot()
        got, detail = vsgrpc.outcome(getattr(self.s, method), self.request(method, **fields))
        after = self.snapshot()
        what = "%s(%s)" % (method, short(fields))
        check(got != self.C.OK, "%s succeeded; expected %s" % (what, code.name))
        check(got == code, "%s: expected %s, got %s: %s" % (what, code.name, got.name, detail))
        check(detail, "%s: %s without a message" % (what, got.name))
        check(after == before, "%s failed but changed the configuration:\n%s"
              % (what, diff(before, after)))
        self.checks += 1
        log("  %-58s -> %s: %s" % (what[:58], got.name, detail))
        return detail

    def refused_any(self, method, **fields):
        """METHOD(fields) must fail (any code) and change nothing; returns 'CODE: message'."""
        before = self.snapshot()
        got, detail = vsgrpc.outcome(getattr(self.s, method), self.request(method, **fields))
        check(got != self.C.OK, "%s(%s) succeeded; it must fail" % (method, short(fields)))
        check(self.snapshot() == before, "%s(%s) failed but changed the configuration"
              % (method, short(fields)))
        self.checks += 1
        return "%s: %s" % (got.name, detail)

    # -- state ---------------------------------------------------------------------------

    def snapshot(self, persistent=False):
        """Every List result, configuration only (no counters, ages or link state). With
        persistent, only what a restart must keep: static MAC entries, and the MAC of an
        interface only when it was configured (mac=) or is the Linux interface's (af_packet);
        a PMD picks a MAC of its own for the others on every start."""
        ifaces = []
        for i in self.ok("ListInterfaces").interfaces:
            d = vsgrpc.to_dict(i)
            d = {k: d[k] for k in IFACE_FIELDS}
            if persistent and "mac" not in d["args"] and d["type"] != "af_packet":
                d.pop("mac")
            ifaces.append(d)
        bridges, fdb = [], {}
        for b in self.ok("ListBridges").bridges:
            d = vsgrpc.to_dict(b)
            d.pop("learned")
            for m in d["members"]:
                m["trunk"] = sorted(m["trunk"])
            d["members"].sort(key=lambda m: m["iface"])
            bridges.append(d)
            fdb[b.name] = sorted(
                [e.mac.lower(), e.vlan, e.iface, e.static]
                for e in self.ok("ListFdb", bridge=b.name).entries
                if e.static or not persistent)
        xcs = sorted([x.iface_a, x.iface_b] for x in self.ok("ListXconnects").xconnects)
        return {"interfaces": sorted(ifaces, key=lambda d: d["name"]),
                "bridges": sorted(bridges, key=lambda d: d["name"]),
                "xconnects": xcs, "fdb": fdb}

    def iface(self, name):
        return self.ok("GetInterface", name=name)

    def names(self):
        return sorted(i.name for i in self.ok("ListInterfaces").interfaces)

    def bridge_names(self):
        return sorted(b.name for b in self.ok("ListBridges").bridges)

    def fdb(self, bridge):
        return sorted((e.mac.lower(), e.vlan, e.iface, e.static)
                      for e in self.ok("ListFdb", bridge=bridge).entries)

    def members(self, bridge):
        b = self.ok("GetBridge", name=bridge)
        return {m.iface: (m.vlan, sorted(m.trunk)) for m in b.members}

    def change(self, kind, **fields):
        """A Change of a Transaction: kind is the oneof field (add_interface, ...)."""
        field = self.pb.Change.DESCRIPTOR.fields_by_name[kind]
        return self.pb.Change(**{kind: getattr(self.pb, field.message_type.name)(**fields)})


def short(fields):
    s = ", ".join("%s=%s" % (k, v if not isinstance(v, dict) else dict(v))
                  for k, v in fields.items())
    return s if len(s) < 90 else s[:87] + "..."


def diff(a, b):
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append("  %s before: %s\n  %s after:  %s"
                       % (k, json.dumps(a.get(k), sort_keys=True),
                          k, json.dumps(b.get(k), sort_keys=True)))
    return "\n".join(out) or "  (no difference)"


def wait_for(secs, what, fn):
    deadline = time.monotonic() + secs
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise Fail("timed out after %ss waiting for %s" % (secs, what))
        time.sleep(0.1)


def eq(got, want, what):
    check(got == want, "%s: expected %r, got %r" % (what, want, got))


# ---------------------------------------------------------------------------------------
# crud: single calls


def health_and_reflection(c):
    api = c.api
    h = c.ok("Health")
    check(h.version, "Health.version is empty")
    eq(h.workers, 1, "Health.workers (vswitchd --workers 1)")
    eq(h.interfaces, len(c.names()), "Health.interfaces vs ListInterfaces")
    log("Health: version %s, %d worker(s), %d interface(s), up %ss"
        % (h.version, h.workers, h.interfaces, h.uptime_seconds))

    check(api.health is not None, "grpc.health.v1 proto not found (package grpc-proto; "
          "bash ci/setup.sh)")
    hs = api.health_rpc.HealthStub(c.ch)
    serving = api.health.HealthCheckResponse.SERVING
    for svc in ("", "vswitch.v1.Vswitch"):
        r = vsgrpc.ok(hs.Check, api.health.HealthCheckRequest(service=svc),
                      "grpc.health.v1.Health/Check(%r)" % svc)
        eq(r.status, serving, "grpc.health.v1 Check(%r) status" % svc)
    code, detail = vsgrpc.outcome(hs.Check, api.health.HealthCheckRequest(service="no.such.Svc"))
    eq(code, c.C.NOT_FOUND, "grpc.health.v1 Check('no.such.Svc') code")
    log("grpc.health.v1 Check: '' and vswitch.v1.Vswitch SERVING, unknown service NOT_FOUND")

    # Every reflection version the server offers (grpcurl uses v1 or v1alpha): the service
    # list, and the descriptor of vswitch.v1.Vswitch with exactly the methods of proto/.
    check(api.reflection, "grpc.reflection protos not found (package grpc-proto)")
    from google.protobuf import descriptor_pb2
    want = sorted(m.name for m in api.pb.DESCRIPTOR.services_by_name["Vswitch"].methods)
    answered = []
    for ver, (rpb, rrpc) in sorted(api.reflection.items()):
        stub = rrpc.ServerReflectionStub(c.ch)
        try:
            replies = list(stub.ServerReflectionInfo(
                iter([rpb.ServerReflectionRequest(list_services=""),
                      rpb.ServerReflectionRequest(file_containing_symbol="vswitch.v1.Vswitch")]),
                timeout=10))
        except c.grpc.RpcError as e:
            if e.code() == c.C.UNIMPLEMENTED:
                log("reflection %s: not offered (UNIMPLEMENTED)" % ver)
                continue
            raise Fail("reflection %s: %s: %s" % (ver, e.code().name, e.details()))
        eq(len(replies), 2, "reflection %s: replies to 2 requests" % ver)
        check(replies[0].HasField("list_services_response"),
              "reflection %s list_services: no list_services_response: %s" % (ver, replies[0]))
        services = sorted(s.name for s in replies[0].list_services_response.service)
        for svc in ("vswitch.v1.Vswitch", "grpc.health.v1.Health"):
            check(svc in services, "reflection %s list_services lacks %s: %s"
                  % (ver, svc, services))
        check(replies[1].HasField("file_descriptor_response"),
              "reflection %s file_containing_symbol vswitch.v1.Vswitch: %s" % (ver, replies[1]))
        methods = None
        for raw in replies[1].file_descriptor_response.file_descriptor_proto:
            fd = descriptor_pb2.FileDescriptorProto.FromString(raw)
            for s in fd.service:
                if fd.package == "vswitch.v1" and s.name == "Vswitch":
                    methods = sorted(m.name for m in s.method)
        eq(methods, want, "reflection %s: methods of vswitch.v1.Vswitch vs proto/" % ver)
        answered.append(ver)
        log("reflection %s: services %s; vswitch.v1.Vswitch has the %d methods of proto/"
            % (ver, ", ".join(services), len(want)))
    check(answered, "no reflection version answered")


def introspection(c, names):
    ws = c.ok("ListWorkers").workers
    eq(len(ws), 1, "ListWorkers: workers")
    polled = {(q.iface, q.queue) for w in ws for q in w.rx_queues}
    want = set()
    for n in names:
        i = c.iface(n)
        check(i.rx_queues >= 1, "interface %s has %d rx queues" % (n, i.rx_queues))
        want |= {(n, q) for q in range(i.rx_queues)}
    check(want <= polled, "ListWorkers: rx queues not polled by any worker: %s"
          % sorted(want - polled))
    log("ListWorkers: 1 worker (lcore %d) polls all %d rx queues of %s"
        % (ws[0].lcore, len(want), ", ".join(names)))
    drops = dict(c.ok("GetDrops").drops)
    for r in KNOWN_DROPS:
        check(r in drops, "GetDrops lacks reason %s: %s" % (r, drops))
    log("GetDrops: %d reasons (%s)" % (len(drops), ", ".join(sorted(drops))))
    pools = c.ok("ListMempools").mempools
    check(pools, "ListMempools: no mempool")
    for p in pools:
        check(p.capacity > 0, "mempool %s: capacity 0" % p.name)
        eq(p.in_use + p.available, p.capacity,
           "mempool %s: in_use + available vs capacity" % p.name)
    log("ListMempools: %s" % ", ".join("%s %d/%d in use" % (p.name, p.in_use, p.capacity)
                                        for p in pools))


def cmd_crud(c, a):
    C = c.C
    start = c.snapshot()
    eq(start, {"interfaces": [], "bridges": [], "xconnects": [], "fdb": {}},
       "configuration of a fresh vswitchd")
    health_and_reflection(c)

    # Interfaces of every type that needs no hardware.
    vh_sock = os.path.join(a.dir, "g-vhost.sock")
    mf_sock = os.path.join(a.dir, "g-memif.sock")
    specs = [
        ("g-null", "null", {"mac": "02:00:00:00:00:99"}),
        ("g-afp", "af_packet", {"iface": a.afp}),
        ("g-tap", "tap", {"iface": a.tap}),
        ("g-vhost", "vhost-user", {"socket": vh_sock, "mode": "server"}),
        ("g-memif", "memif", {"socket": mf_sock, "role": "server"}),
    ]
    log("interfaces:")
    for name, typ, args in specs:
        r = c.ok("AddInterface", name=name, type=typ, args=args)
        eq(r.name, name, "AddInterface reply name")
        eq(r.type, typ, "AddInterface %s reply type" % name)
        # A type whose driver makes its MAC up (null, memif, vhost-user) records the MAC it got
        # as mac=, so that a restart makes the same interface; the others echo args (a native
        # tap, the default, keeps the MAC the kernel gave it: it outlives vswitchd).
        want = dict(args)
        if typ in ("null", "memif", "vhost-user") and "mac" not in args:
            eq(r.args.get("mac"), r.mac, "AddInterface %s reply: recorded mac= vs mac" % name)
            want["mac"] = r.mac
        eq(dict(r.args), want, "AddInterface %s reply args" % name)
        check(r.admin_up, "AddInterface %s: admin_up false" % name)
        g = c.iface(name)
        eq({k: vsgrpc.to_dict(g)[k] for k in IFACE_FIELDS},
           {k: vsgrpc.to_dict(r)[k] for k in IFACE_FIELDS},
           "GetInterface %s vs the AddInterface reply" % name)
        check(name in c.names(), "ListInterfaces lacks %s" % name)
        log("  added %-8s %-10s mac %s mtu %d port %d devargs %s"
            % (name, typ, g.mac, g.mtu, g.port_id, g.devargs))
    eq(c.iface("g-null").mac, "02:00:00:00:00:99", "g-null mac (mac= given)")
    names = [s[0] for s in specs]
    eq(c.names(), sorted(names), "ListInterfaces names")
    eq(c.ok("Health").interfaces, len(names), "Health.interfaces")
    check(os.path.isdir("/sys/class/net/" + a.tap), "tap device %s not in the kernel" % a.tap)
    for p in (vh_sock, mf_sock):
        wait_for(5, "server socket %s" % p, lambda p=p: os.path.exists(p))
    log("  tap device %s exists; vhost-user and memif server sockets exist" % a.tap)
    introspection(c, names)

    log("interface errors (each must change nothing):")
    c.refused(C.ALREADY_EXISTS, "AddInterface", name="g-null", type="null")
    c.refused(C.INVALID_ARGUMENT, "AddInterface", name="bad name!", type="null")
    c.refused(C.INVALID_ARGUMENT, "AddInterface", name="x" * 32, type="null")
    c.refused(C.INVALID_ARGUMENT, "AddInterface", name="", type="null")
    c.refused(C.INVALID_ARGUMENT, "AddInterface", name="g-x", type="null",
              args={"mac": "02:00:00:00:00:zz"})
    c.refused(C.INVALID_ARGUMENT, "AddInterface", name="g-x", type="null",
              args={"mac": "01:00:5e:00:00:01"})
    c.refused(C.INVALID_ARGUMENT, "AddInterface", name="g-x", type="null",
              args={"mtu": "20"})
    c.refused(C.INVALID_ARGUMENT, "AddInterface", name="g-x", type="bogus")
    c.refused(C.INVALID_ARGUMENT, "AddInterface", name="g-x", type="null",
              args={"colour": "red"})
    c.refused(C.INVALID_ARGUMENT, "AddInterface", name="g-x", type="af_packet")
    c.refused(C.FAILED_PRECONDITION, "AddInterface", name="g-x", type="af_packet",
              args={"iface": a.afp})
    c.refused(C.FAILED_PRECONDITION, "AddInterface", name="g-x", type="memif",
              args={"socket": mf_sock, "role": "server"})
    c.refused(C.NOT_FOUND, "GetInterface", name="nosuch")
    c.refused(C.NOT_FOUND, "DeleteInterface", name="nosuch")
    c.refused(C.NOT_FOUND, "SetInterface", name="nosuch", admin_up=False)
    c.refused(C.INVALID_ARGUMENT, "SetInterface", name="g-afp", mtu=20)
    c.refused(C.INVALID_ARGUMENT, "SetInterface", name="g-afp", mtu=70000)

    log("SetInterface:")
    r = c.ok("SetInterface", name="g-afp", admin_up=False)
    check(not r.admin_up and not c.iface("g-afp").admin_up, "g-afp still admin up after down")
    mtu0 = c.iface("g-afp").mtu
    r = c.ok("SetInterface", name="g-afp", mtu=1400)
    eq(r.mtu, 1400, "SetInterface g-afp mtu=1400: reply mtu")
    check(not c.iface("g-afp").admin_up, "SetInterface with only mtu set changed admin_up")
    with open("/sys/class/net/%s/mtu" % a.afp) as f:
        eq(int(f.read()), 1400, "kernel MTU of %s after SetInterface mtu=1400" % a.afp)
    r = c.ok("SetInterface", name="g-afp", admin_up=True)
    check(r.admin_up, "g-afp admin down after SetInterface admin_up=true")
    eq(c.iface("g-afp").mtu, 1400, "mtu after SetInterface with only admin_up set")
    log("  g-afp: admin down; mtu %d -> 1400 (kernel too; admin stays down); admin up "
        "(mtu stays)" % mtu0)

    log("cross-connects:")
    x = c.ok("AddXconnect", iface_a="g-null", iface_b="g-afp")
    eq((x.iface_a, x.iface_b), ("g-null", "g-afp"), "AddXconnect reply")
    # A cross-connect works both ways: either order of the pair is the same one.
    eq([sorted([x.iface_a, x.iface_b]) for x in c.ok("ListXconnects").xconnects],
       [["g-afp", "g-null"]], "ListXconnects")
    eq((c.iface("g-null").xconnect, c.iface("g-afp").xconnect), ("g-afp", "g-null"),
       "Interface.xconnect of g-null, g-afp")
    x = c.ok("GetXconnect", iface="g-afp")
    eq((x.iface_a, x.iface_b), ("g-afp", "g-null"), "GetXconnect(g-afp): named side first")
    c.refused(C.NOT_FOUND, "GetXconnect", iface="g-tap")
    c.refused(C.NOT_FOUND, "GetXconnect", iface="nosuch")
    c.refused(C.INVALID_ARGUMENT, "GetXconnect", iface="")
    c.refused(C.FAILED_PRECONDITION, "AddXconnect", iface_a="g-tap", iface_b="g-null")
    c.refused(C.INVALID_ARGUMENT, "AddXconnect", iface_a="g-tap", iface_b="g-tap")
    c.refused(C.NOT_FOUND, "AddXconnect", iface_a="g-tap", iface_b="nosuch")
    c.refused(C.NOT_FOUND, "DeleteXconnect", iface_a="nosuch")
    detail = c.refused_any("DeleteXconnect", iface_a="g-tap")
    log("  DeleteXconnect(g-tap) (not cross-connected) -> %s" % detail)
    c.ok("DeleteXconnect", iface_a="g-afp")  # either side may be named
    eq(list(c.ok("ListXconnects").xconnects), [], "ListXconnects after DeleteXconnect g-afp")
    eq((c.iface("g-null").xconnect, c.iface("g-afp").xconnect), ("", ""),
       "Interface.xconnect after DeleteXconnect")
    log("  g-null <-> g-afp added, listed, on both interfaces, deleted by naming g-afp")

    log("bridges:")
    b = c.ok("AddBridge", name="gbr")
    eq((b.name, b.learn, b.age, b.flood, list(b.members)), ("gbr", True, 300, True, []),
       "AddBridge gbr defaults (name, learn, age, flood, members)")
    check(b.learn_limit > 0, "AddBridge gbr: learn_limit 0")
    b2 = c.ok("AddBridge", name="gbr2", learn=False, age=60, learn_limit=100, flood=False)
    eq((b2.learn, b2.age, b2.learn_limit, b2.flood), (False, 60, 100, False),
       "AddBridge gbr2 (learn, age, learn_limit, flood)")
    eq(vsgrpc.to_dict(c.ok("GetBridge", name="gbr2")), vsgrpc.to_dict(b2),
       "GetBridge gbr2 vs the AddBridge reply")
    eq(c.bridge_names(), ["gbr", "gbr2"], "ListBridges")
    c.refused(C.ALREADY_EXISTS, "AddBridge", name="gbr")
    c.refused(C.INVALID_ARGUMENT, "AddBridge", name="bad/name")
    c.refused(C.INVALID_ARGUMENT, "AddBridge", name="gbr3", age=0)
    c.refused(C.NOT_FOUND, "GetBridge", name="nosuch")
    c.refused(C.NOT_FOUND, "DeleteBridge", name="nosuch")

    c.ok("AttachBridge", bridge="gbr", iface="g-afp")
    c.ok("AttachBridge", bridge="gbr", iface="g-vhost", vlan=10)
    r = c.ok("AttachBridge", bridge="gbr", iface="g-memif", trunk=[20, 10])
    eq({m.iface: (m.vlan, sorted(m.trunk)) for m in r.members},
       {"g-afp": (0, []), "g-vhost": (10, []), "g-memif": (0, [10, 20])},
       "AttachBridge reply members")
    eq(c.members("gbr"), {"g-afp": (0, []), "g-vhost": (10, []), "g-memif": (0, [10, 20])},
       "GetBridge gbr members")
    log("  gbr: g-afp untagged, g-vhost access vlan 10, g-memif trunk 10,20")
    c.refused(C.INVALID_ARGUMENT, "AttachBridge", bridge="gbr", iface="g-tap", vlan=5000)
    c.refused(C.INVALID_ARGUMENT, "AttachBridge", bridge="gbr", iface="g-tap", vlan=0)
    c.refused(C.INVALID_ARGUMENT, "AttachBridge", bridge="gbr", iface="g-tap", trunk=[10, 4095])
    c.refused(C.INVALID_ARGUMENT, "AttachBridge", bridge="gbr", iface="g-tap", trunk=[10, 10])
    c.refused(C.INVALID_ARGUMENT, "AttachBridge", bridge="gbr", iface="g-tap", vlan=10,
              trunk=[20])
    c.refused(C.NOT_FOUND, "AttachBridge", bridge="nosuch", iface="g-tap")
    c.refused(C.NOT_FOUND, "AttachBridge", bridge="gbr", iface="nosuch")
    c.refused(C.FAILED_PRECONDITION, "AttachBridge", bridge="gbr2", iface="g-afp")
    c.refused(C.NOT_FOUND, "DetachBridge", bridge="gbr", iface="g-tap")
    c.refused(C.NOT_FOUND, "DetachBridge", bridge="nosuch", iface="g-afp")
    r = c.ok("DetachBridge", bridge="gbr", iface="g-memif")
    eq(sorted(m.iface for m in r.members), ["g-afp", "g-vhost"], "members after detach g-memif")
    c.ok("AttachBridge", bridge="gbr", iface="g-memif", trunk=[10, 20])
    log("  detach g-memif and attach it again")

    log("fdb:")
    statics = [("02:00:00:00:01:01", 0, "g-afp"), ("02:00:00:00:01:02", 10, "g-vhost"),
               ("02:00:00:00:01:03", 20, "g-memif")]
    for mac, vlan, ifc in statics:
        e = c.ok("AddFdb", bridge="gbr", mac=mac, iface=ifc, vlan=vlan)
        eq((e.mac.lower(), e.vlan, e.iface, e.static), (mac, vlan, ifc, True),
           "AddFdb reply")
    eq(c.fdb("gbr"), sorted((m, v, i, True) for m, v, i in statics), "ListFdb gbr")
    for mac, vlan, ifc in statics:
        e = c.ok("GetFdb", bridge="gbr", mac=mac.upper(), vlan=vlan)
        eq((e.mac, e.vlan, e.iface, e.static, e.age_seconds), (mac, vlan, ifc, True, 0),
           "GetFdb(%s, vlan %d)" % (mac, vlan))
    c.refused(C.NOT_FOUND, "GetFdb", bridge="gbr", mac="02:00:00:00:01:02", vlan=20)
    c.refused(C.NOT_FOUND, "GetFdb", bridge="nosuch", mac="02:00:00:00:01:02")
    c.refused(C.INVALID_ARGUMENT, "GetFdb", bridge="gbr", mac="02:00:00:00:01")
    c.refused(C.INVALID_ARGUMENT, "GetFdb", bridge="gbr", mac="02:00:00:00:01:02", vlan=5000)
    e = c.ok("AddFdb", bridge="gbr", mac="02:00:00:00:01:0A", iface="g-afp")
    eq(e.mac.lower(), "02:00:00:00:01:0a", "AddFdb with an upper-case MAC: reply mac")
    c.ok("DeleteFdb", bridge="gbr", mac="02:00:00:00:01:0a")
    log("  3 static entries (untagged, vlan 10, vlan 20) added and listed")
    c.refused(C.INVALID_ARGUMENT, "AddFdb", bridge="gbr", mac="02:00:00:00:01", iface="g-afp")
    c.refused(C.INVALID_ARGUMENT, "AddFdb", bridge="gbr", mac="02:00:00:00:01:zz",
              iface="g-afp")
    c.refused(C.INVALID_ARGUMENT, "AddFdb", bridge="gbr", mac="01:00:5e:00:00:01",
              iface="g-afp")
    c.refused(C.INVALID_ARGUMENT, "AddFdb", bridge="gbr", mac="02:00:00:00:01:04",
              iface="g-memif", vlan=5000)
    c.refused(C.INVALID_ARGUMENT, "AddFdb", bridge="gbr", mac="02:00:00:00:01:04",
              iface="g-memif", vlan=30)
    c.refused(C.NOT_FOUND, "AddFdb", bridge="nosuch", mac="02:00:00:00:01:04", iface="g-afp")
    c.refused(C.NOT_FOUND, "AddFdb", bridge="gbr", mac="02:00:00:00:01:04", iface="nosuch")
    c.refused(C.FAILED_PRECONDITION, "AddFdb", bridge="gbr", mac="02:00:00:00:01:04",
              iface="g-tap")
    c.refused(C.NOT_FOUND, "ListFdb", bridge="nosuch")
    c.refused(C.NOT_FOUND, "DeleteFdb", bridge="gbr", mac="02:00:00:00:09:09")
    c.refused(C.NOT_FOUND, "DeleteFdb", bridge="gbr", mac="02:00:00:00:01:02", vlan=20)
    c.refused(C.INVALID_ARGUMENT, "DeleteFdb", bridge="gbr", mac="nonsense")
    c.refused(C.NOT_FOUND, "FlushFdb", bridge="nosuch")
    c.refused(C.NOT_FOUND, "FlushFdb", bridge="gbr", iface="g-tap")
    c.ok("DeleteFdb", bridge="gbr", mac="02:00:00:00:01:03", vlan=20)
    eq(c.fdb("gbr"), sorted((m, v, i, True) for m, v, i in statics[:2]),
       "ListFdb gbr after DeleteFdb 02:00:00:00:01:03 vlan 20")
    log("  DeleteFdb removed exactly its entry")

    # Learned entries (frames into g-afp through its veth peer), then flush.
    subprocess.run(["ip", "link", "set", "dev", a.afp_peer, "up"], check=True)
    srcs = ["02:00:00:00:02:%02x" % i for i in (1, 2, 3)]
    learned = sorted((m, 0, "g-afp", False) for m in srcs)
    static_left = sorted((m, v, i, True) for m, v, i in statics[:2])

    def learn():
        # Resent every 0.3 s: the dataplane may hold back a learn request for a MAC it
        # reported a moment ago (after a flush it learns it again within ~2 s).
        def seen():
            vsgrpc.send_frames(a.afp_peer, srcs)
            time.sleep(0.3)
            return [e for e in c.fdb("gbr") if not e[3]] == learned
        return wait_for(5, "3 learned entries on g-afp", seen)

    learn()
    eq(c.ok("GetBridge", name="gbr").learned, 3, "Bridge.learned with 3 learned MACs")
    log("  3 MACs learned on g-afp from frames sent into %s" % a.afp_peer)
    r = c.ok("FlushFdb", bridge="gbr", iface="g-afp")
    eq(r.removed, 3, "FlushFdb gbr iface=g-afp: removed")
    eq(c.fdb("gbr"), static_left, "ListFdb gbr after FlushFdb g-afp (static entries stay)")
    learn()
    r = c.ok("FlushFdb", bridge="gbr")
    eq(r.removed, 3, "FlushFdb gbr: removed")
    eq(c.fdb("gbr"), static_left, "ListFdb gbr after FlushFdb gbr (static entries stay)")
    log("  FlushFdb per interface and per bridge: removed 3 learned each, statics stay")

    log("deletes:")
    c.ok("DetachBridge", bridge="gbr", iface="g-vhost")
    eq(c.fdb("gbr"), static_left[:1], "ListFdb gbr after detaching g-vhost (its static goes)")
    c.ok("DeleteBridge", name="gbr2")
    c.refused(C.NOT_FOUND, "GetBridge", name="gbr2")
    c.ok("DeleteBridge", name="gbr")
    eq(c.bridge_names(), [], "ListBridges after deleting gbr and gbr2")
    c.ok("AddBridge", name="gbr3")
    c.ok("AttachBridge", bridge="gbr3", iface="g-afp")  # free again after its bridge went
    eq(c.fdb("gbr3"), [], "ListFdb of a new bridge (no entries of the deleted gbr)")
    c.ok("DeleteBridge", name="gbr3")
    log("  bridges deleted with members attached; their members are free again")
    for name in names:
        c.ok("DeleteInterface", name=name)
        c.refused(C.NOT_FOUND, "GetInterface", name=name)
    eq(c.names(), [], "ListInterfaces after deleting all")
    wait_for(5, "tap device %s removed" % a.tap,
             lambda: not os.path.exists("/sys/class/net/" + a.tap))
    for p in (vh_sock, mf_sock):
        wait_for(5, "socket %s removed" % p, lambda p=p: not os.path.exists(p))
    eq(c.ok("Health").interfaces, 0, "Health.interfaces after deleting all")
    eq(c.snapshot(), start, "configuration after deleting everything")
    log("  all interfaces deleted: tap device and socket files gone, configuration empty")
    log("crud: %d refused calls checked (code and nothing changed)" % c.checks)


# ---------------------------------------------------------------------------------------
# txn: Transaction


def txn_refused(c, what, changes, code, mention=None):
    """Transaction(changes) must fail with code (naming `mention`) and change nothing."""
    before = c.snapshot()
    got, detail = vsgrpc.outcome(c.s.Transaction, c.pb.TransactionRequest(changes=changes))
    after = c.snapshot()
    check(got != c.C.OK, "Transaction %s succeeded; expected %s" % (what, code.name))
    eq(got, code, "Transaction %s: code (message: %s)" % (what, detail))
    if mention:
        check(mention in (detail or ""), "Transaction %s: message does not name %r: %s"
              % (what, mention, detail))
    check(after == before, "Transaction %s failed but changed the configuration:\n%s"
          % (what, diff(before, after)))
    log("  %s -> %s: %s" % (what, got.name, detail))


def txn_ok(c, what, changes):
    r = vsgrpc.ok(c.s.Transaction, c.pb.TransactionRequest(changes=changes),
                  "Transaction %s" % what)
    eq(r.applied, len(changes), "Transaction %s: applied" % what)
    return r


def cmd_txn(c, a):
    C, ch = c.C, c.change
    # Something of every kind first, so "nothing changed" covers all of them.
    c.ok("AddInterface", name="t-a", type="null")
    c.ok("AddInterface", name="t-b", type="null")
    c.ok("AddInterface", name="t-c", type="null")
    c.ok("AddInterface", name="t-d", type="null")
    c.ok("AddBridge", name="tbr")
    c.ok("AttachBridge", bridge="tbr", iface="t-a")
    c.ok("AddFdb", bridge="tbr", mac="02:00:00:00:03:01", iface="t-a")
    c.ok("AddXconnect", iface_a="t-c", iface_b="t-d")
    c.ok("AddBridge", name="tbr2", age=30)
    log("before: interfaces t-a..t-d, bridge tbr (t-a, one static MAC), tbr2, xconnect t-c t-d")

    # The code each bad item gets as a single call; the batch must fail with the same.
    code_missing = vsgrpc.outcome(c.s.DeleteInterface,
                                  c.pb.DeleteInterfaceRequest(name="nosuch"))[0]
    eq(code_missing, C.NOT_FOUND, "DeleteInterface(nosuch) as a single call")
    afp_missing = {"iface": a.missing_if}
    code_afp, detail_afp = vsgrpc.outcome(
        c.s.AddInterface, c.pb.AddInterfaceRequest(name="tx-afp", type="af_packet",
                                                   args=afp_missing))
    check(code_afp != C.OK, "AddInterface af_packet iface=%s (no such Linux interface) "
          "succeeded" % a.missing_if)
    check("tx-afp" not in c.names(), "failed AddInterface tx-afp left tx-afp behind")
    log("single call AddInterface af_packet iface=%s -> %s: %s"
        % (a.missing_if, code_afp.name, detail_afp))

    log("batches with one bad change (each must change nothing):")
    valid3 = [ch("add_interface", name="tx1", type="null"),
              ch("add_bridge", name="txbr"),
              ch("attach_bridge", bridge="txbr", iface="tx1")]
    txn_refused(c, "[add tx1, add txbr, attach, delete_interface nosuch]",
                valid3 + [ch("delete_interface", name="nosuch")], C.NOT_FOUND, "nosuch")
    txn_refused(c, "[add tx1, add txbr, attach, add af_packet iface=%s]" % a.missing_if,
                valid3 + [ch("add_interface", name="tx-afp", type="af_packet",
                             args=afp_missing)], code_afp)
    txn_refused(c, "[3 valid, add_fdb 100 MACs..., attach vlan=5000]",
                valid3 + [ch("add_fdb", bridge="txbr", mac="02:00:00:00:04:%02x" % i,
                             iface="tx1") for i in range(100)]
                + [ch("attach_bridge", bridge="tbr", iface="t-b", vlan=5000)],
                C.INVALID_ARGUMENT)
    txn_refused(c, "[delete_fdb tbr static, delete_xconnect t-c, flush, add_interface t-a]",
                [ch("delete_fdb", bridge="tbr", mac="02:00:00:00:03:01"),
                 ch("delete_xconnect", iface_a="t-c"),
                 ch("flush_fdb", bridge="tbr"),
                 ch("set_interface", name="t-b", admin_up=False, mtu=1400),
                 ch("add_interface", name="t-a", type="null")], C.ALREADY_EXISTS, "t-a")
    txn_refused(c, "[delete_bridge tbr, delete_interface t-a, add_bridge tx2, add_bridge tx2]",
                [ch("delete_bridge", name="tbr"), ch("delete_interface", name="t-a"),
                 ch("add_bridge", name="tx2"), ch("add_bridge", name="tx2")],
                C.ALREADY_EXISTS, "tx2")
    txn_refused(c, "[add_bridge txbr, delete_bridge txbr, add_fdb txbr ...]",
                [ch("add_bridge", name="txbr"), ch("delete_bridge", name="txbr"),
                 ch("add_fdb", bridge="txbr", mac="02:00:00:00:04:01", iface="t-a")],
                C.NOT_FOUND, "txbr")
    txn_refused(c, "[add_bridge 'bad name']", [ch("add_bridge", name="bad name")],
                C.INVALID_ARGUMENT)
    for n in ("tx1", "tx-afp"):
        c.refused(C.NOT_FOUND, "GetInterface", name=n)
    c.refused(C.NOT_FOUND, "GetBridge", name="txbr")

    log("valid batches:")
    before = c.snapshot()
    macs = ["02:00:00:10:%02x:%02x" % (i // 256, i % 256) for i in range(100)]
    changes = [ch("add_interface", name="tv1", type="null"),
               ch("add_interface", name="tv2", type="null"),
               ch("add_bridge", name="tvbr", age=600),
               ch("attach_bridge", bridge="tvbr", iface="tv1"),
               ch("attach_bridge", bridge="tvbr", iface="tv2", vlan=7)]
    want_fdb = []
    for i, m in enumerate(macs):
        ifc, vlan = ("tv1", 0) if i % 2 == 0 else ("tv2", 7)
        changes.append(ch("add_fdb", bridge="tvbr", mac=m, iface=ifc, vlan=vlan))
        want_fdb.append((m, vlan, ifc, True))
    r = txn_ok(c, "[2 interfaces, bridge, 2 attaches, 100 static MACs]", changes)
    eq(sorted(set(c.names()) - {i["name"] for i in before["interfaces"]}), ["tv1", "tv2"],
       "interfaces added by the batch")
    b = c.ok("GetBridge", name="tvbr")
    eq(b.age, 600, "tvbr age")
    eq(c.members("tvbr"), {"tv1": (0, []), "tv2": (7, [])}, "tvbr members")
    eq(c.fdb("tvbr"), sorted(want_fdb), "tvbr static entries")
    after = c.snapshot()
    for k in ("xconnects",):
        eq(after[k], before[k], "%s after the batch" % k)
    eq({n: f for n, f in after["fdb"].items() if n != "tvbr"}, before["fdb"],
       "fdb of the other bridges after the batch")
    log("  105 changes applied (reply.applied %d): tv1, tv2, tvbr with both, 100 MACs"
        % r.applied)

    before = c.snapshot()
    txn_ok(c, "[add_interface ttmp, delete_interface ttmp]",
           [ch("add_interface", name="ttmp", type="null"),
            ch("delete_interface", name="ttmp")])
    eq(c.snapshot(), before, "configuration after adding and deleting ttmp in one batch")
    c.refused(C.NOT_FOUND, "GetInterface", name="ttmp")
    log("  [add ttmp, delete ttmp]: applied 2, nothing left")

    txn_ok(c, "[delete_bridge tbr2, add_bridge tbr2 age=77]",
           [ch("delete_bridge", name="tbr2"), ch("add_bridge", name="tbr2", age=77)])
    eq(c.ok("GetBridge", name="tbr2").age, 77, "tbr2 age after delete + re-add")
    log("  [delete tbr2, add tbr2 age=77]: applied 2, tbr2 has age 77")

    txn_ok(c, "[delete_bridge tvbr, add_bridge tvbr]",
           [ch("delete_bridge", name="tvbr"), ch("add_bridge", name="tvbr")])
    eq(c.members("tvbr"), {}, "tvbr members after delete + re-add")
    eq(c.fdb("tvbr"), [], "tvbr MAC table after delete + re-add (no stale entries)")
    c.ok("AttachBridge", bridge="tvbr", iface="tv1")
    c.ok("AddFdb", bridge="tvbr", mac=macs[0], iface="tv1")
    eq(c.fdb("tvbr"), [(macs[0], 0, "tv1", True)], "tvbr after attach + one static")
    log("  [delete tvbr (2 members, 100 MACs), add tvbr]: empty new bridge, members free")

    txn_ok(c, "[set_interface t-b down mtu 1400, delete_xconnect t-c, flush_fdb tbr, "
              "delete_fdb, detach]",
           [ch("set_interface", name="t-b", admin_up=False, mtu=1400),
            ch("delete_xconnect", iface_a="t-d"),
            ch("flush_fdb", bridge="tbr"),
            ch("delete_fdb", bridge="tbr", mac="02:00:00:00:03:01"),
            ch("detach_bridge", bridge="tbr", iface="t-a")])
    i = c.iface("t-b")
    eq((i.admin_up, i.mtu), (False, 1400), "t-b (admin_up, mtu) after the batch")
    eq(list(c.ok("ListXconnects").xconnects), [], "xconnects after the batch")
    eq(c.fdb("tbr"), [], "tbr MAC table after the batch")
    eq(c.members("tbr"), {}, "tbr members after the batch")
    log("  set_interface, delete_xconnect, flush_fdb, delete_fdb, detach_bridge in one batch")


# ---------------------------------------------------------------------------------------
# configure / snapshot / compare: the restart check


def cmd_configure(c, a):
    ch = c.change
    vh = os.path.join(a.dir, "r-vhost.sock")
    mf = os.path.join(a.dir, "r-memif.sock")
    c.ok("AddInterface", name="r-afp", type="af_packet", args={"iface": a.afp})
    c.ok("AddInterface", name="r-tap", type="tap",
         args={"iface": a.tap, "mac": "02:00:00:00:05:01"})
    c.ok("AddInterface", name="r-vhost", type="vhost-user",
         args={"socket": vh, "mode": "server", "queues": "1"})
    c.ok("AddInterface", name="r-memif", type="memif",
         args={"socket": mf, "role": "server", "id": "3"})
    c.ok("AddInterface", name="r-null", type="null", args={"mac": "02:00:00:00:05:02"})
    c.ok("AddInterface", name="r-null2", type="null", args={"mtu": "1600"})
    c.ok("SetInterface", name="r-afp", mtu=1450)
    c.ok("SetInterface", name="r-null2", admin_up=False)
    c.ok("AddXconnect", iface_a="r-null", iface_b="r-afp")
    c.ok("AddBridge", name="rbr", learn=False, age=120, learn_limit=500, flood=False)
    c.ok("AttachBridge", bridge="rbr", iface="r-tap")
    c.ok("AttachBridge", bridge="rbr", iface="r-vhost", vlan=10)
    c.ok("AttachBridge", bridge="rbr", iface="r-memif", trunk=[30, 10, 20])
    c.ok("AddFdb", bridge="rbr", mac="02:00:00:00:06:01", iface="r-tap")
    c.ok("AddFdb", bridge="rbr", mac="02:00:00:00:06:02", iface="r-vhost", vlan=10)
    c.ok("AddFdb", bridge="rbr", mac="02:00:00:00:06:03", iface="r-memif", vlan=20)
    c.ok("AddFdb", bridge="rbr", mac="02:00:00:00:06:03", iface="r-memif", vlan=30)
    txn_ok(c, "restart config batch",
           [ch("add_interface", name="r-null3", type="null"),
            ch("add_bridge", name="rbr2"),
            ch("attach_bridge", bridge="rbr2", iface="r-null3", vlan=99),
            ch("add_fdb", bridge="rbr2", mac="02:00:00:00:06:04", iface="r-null3", vlan=99)])
    s = c.snapshot(persistent=True)
    log("configured: %d interfaces (af_packet, tap, vhost-user, memif, null x3; one admin "
        "down, two with mtu), %d xconnect, %d bridges, %d static MACs"
        % (len(s["interfaces"]), len(s["xconnects"]), len(s["bridges"]),
           sum(len(v) for v in s["fdb"].values())))


def cmd_wait(c, a):
    """Health answers (the channel itself waited for the socket)."""
    h = wait_for(a.seconds, "Health", lambda: vsgrpc.outcome(c.s.Health, c.pb.HealthRequest(),
                                                            timeout=5)[0] == c.C.OK)
    check(h, "Health")


def cmd_snapshot(c, a):
    s = c.snapshot(persistent=True)
    with open(a.out, "w") as f:
        json.dump(s, f, indent=1, sort_keys=True)
    log("snapshot: %d interfaces, %d bridges, %d xconnects, %d static MACs -> %s"
        % (len(s["interfaces"]), len(s["bridges"]), len(s["xconnects"]),
           sum(len(v) for v in s["fdb"].values()), a.out))


def cmd_compare(c, a):
    with open(a.before) as f:
        before = json.load(f)
    check(before["interfaces"], "the snapshot from before the restart is empty")
    now = c.snapshot(persistent=True)
    check(now == before, "configuration after the restart differs:\n" + diff(before, now))
    for i in before["interfaces"]:
        for k in ("socket",):
            p = i["args"].get(k)
            if p:
                wait_for(5, "socket %s after the restart" % p, lambda p=p: os.path.exists(p))
    eq(c.ok("Health").interfaces, len(before["interfaces"]), "Health.interfaces after restart")
    log("after the restart every List result is identical: %d interfaces (%s), %d bridges, "
        "%d xconnects, %d static MACs; server sockets back"
        % (len(now["interfaces"]), ", ".join(i["name"] for i in now["interfaces"]),
           len(now["bridges"]), len(now["xconnects"]),
           sum(len(v) for v in now["fdb"].values())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gen", required=True, help="directory of the generated code")
    ap.add_argument("--target", required=True, help="unix:PATH")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("crud")
    p.add_argument("--afp", required=True)
    p.add_argument("--afp-peer", required=True)
    p.add_argument("--tap", required=True)
    p.add_argument("--dir", required=True)
    p = sub.add_parser("txn")
    p.add_argument("--missing-if", required=True)
    p = sub.add_parser("configure")
    p.add_argument("--afp", required=True)
    p.add_argument("--tap", required=True)
    p.add_argument("--dir", required=True)
    p = sub.add_parser("wait")
    p.add_argument("--seconds", type=float, default=20)
    p = sub.add_parser("snapshot")
    p.add_argument("--out", required=True)
    p = sub.add_parser("compare")
    p.add_argument("--before", required=True)
    a = ap.parse_args()
    c = Client(a.gen, a.target)
    {"crud": cmd_crud, "txn": cmd_txn, "configure": cmd_configure,
     "wait": cmd_wait, "snapshot": cmd_snapshot, "compare": cmd_compare}[a.cmd](c, a)


if __name__ == "__main__":
    vsgrpc.run_main(main)
