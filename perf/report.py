#!/usr/bin/env python3
"""perf/report.py: the parsing and reporting half of perf/run.sh (Python 3 standard library
only). Every function that reads another program's output is here, next to a self-test on
output captured from that program (perf/testdata/), so a format change shows up in
`python3 perf/report.py selftest` rather than as a silent zero in a results file.

Subcommands (run.sh calls them; each prints one JSON object or writes files):
  testpmd LOG [--sink-port P[,P]] --skip N --take M
                                    Mpps and cycles/packet of a dpdk-testpmd io run
  ovs PERF_SHOW                     Mpps and cycles/packet from ovs-appctl dpif-netdev/pmd-perf-show
  vswitch W0 S0 T0 W1 S1 T1         Mpps and cycles/packet from two `vsctl --json workers` and
                                    `vsctl --json stats sink` (topology B: `vsctl --json
                                    stats`, all ports) samples taken at times T0, T1
  write --samples F --meta F --profiles F --md OUT --json OUT
                                    the results files (median/min/max, ratios, goals)
  check --samples F                 exit 1 if vswitch or the floor forwarded nothing in a profile
  selftest                          the parsers against perf/testdata/
"""

import argparse
import json
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Systems in report order. "floor" is dpdk-testpmd io over the same virtual devices.
SYSTEMS = ["vswitch", "floor", "ovs"]
SYSTEM_LABEL = {
    "vswitch": "vswitch",
    "floor": "I/O floor (dpdk-testpmd io)",
    "ovs": "OVS-DPDK",
}

# Targets from issue 3 the suite reports against (never pass/fail). Key: profile name.
# A profile without an entry has no stated goal.
GOALS = {
    "l2-1k": {"vswitch/floor": 0.6, "vswitch/ovs": 2.0},
    "l2-100k": {"vswitch/floor": 0.6, "vswitch/ovs": 2.0},
}

LATENCY_FIELDS = ["p50_ns", "p99_ns", "p999_ns", "max_ns"]
LATENCY_LABEL = {"p50_ns": "p50", "p99_ns": "p99", "p999_ns": "p99.9", "max_ns": "max"}

# Written next to every topology B table (perf/README.md, "Topology B").
TOPOLOGY_B_TRAFFIC = (
    "Traffic: one peer dpdk-testpmd is both VMs (ports 0 and 1 on the switch's a and b), "
    "`--forward-mode=flowgen --txpkts=60 --flowgen-flows=1024`: on each port it frees what "
    "arrives and sends 64 B (with FCS) IPv4/UDP frames of 1024 flows as fast as the ring takes "
    "them, so both directions load the switch; what leaves the switch through a and b is "
    "counted. No pcap."
)
TOPOLOGY_B_CAVEAT = (
    "**Caveat (2 cores):** the peer has one core (core 0) for both VMs, and shares it with the "
    "EAL main and control threads of the switch under test (vswitchd's control thread, "
    "testpmd's main lcore, OVS's main/handler/revalidator threads, the vhost-user and memif "
    "control threads); only the switch's forwarding core (1) is its own. These are port costs "
    "on that split, not what a host with dedicated VM cores would show; where the forwarding "
    "core below is not close to 100% busy, the peer was the limit, not the switch."
)


class ParseError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# dpdk-testpmd (22.11)

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def parse_testpmd(text, sink_ports=(1,), skip=1, take=None):
    """Parses a `dpdk-testpmd --stats-period 1 --record-core-cycles` log.

    Every period testpmd prints, per port, "NIC statistics for port P" followed by
    "Tx-pps: N" (packets/s since the previous print, measured with the TSC). Per period the
    Tx-pps of the sink ports are summed (topology A: the null port; B: both ports, traffic goes
    both ways); the periods after `skip` (warm-up; the first period is partial), `take` of
    them, are averaged. At exit (SIGINT) testpmd prints
      "CPU cycles/packet=82.38 (total cycles=7592967096 / total io packets=92171168) at 2600 MHz Clock"
    where total cycles are the TSC cycles spent in forwarding calls that received packets
    (empty polls are not counted) over the whole run, and the clock is rte_get_tsc_hz().
    """
    if isinstance(sink_ports, int):
        sink_ports = (sink_ports,)
    text = ANSI.sub("", text)
    per_port = {p: [] for p in sink_ports}
    port = None
    for line in text.splitlines():
        m = re.search(r"NIC statistics for port (\d+)", line)
        if m:
            port = int(m.group(1))
            continue
        m = re.search(r"Tx-pps:\s+(\d+)", line)
        if m and port in per_port:
            per_port[port].append(int(m.group(1)))
            port = None
    periods = min(len(v) for v in per_port.values())
    samples = [sum(per_port[p][i] for p in sink_ports) for i in range(periods)]
    window = samples[skip:] if take is None else samples[skip : skip + take]
    if not window:
        raise ParseError(
            "testpmd printed %d Tx-pps samples for port(s) %s, none after the %d skipped period(s)"
            % (len(samples), ",".join(map(str, sink_ports)), skip)
        )
    out = {
        "mpps": statistics.fmean(window) / 1e6,
        "pps_samples": window,
        "cycles_per_packet": None,
        "tsc_hz": None,
    }
    m = re.search(
        r"CPU cycles/packet=([0-9.]+) \(total cycles=(\d+) / total io packets=(\d+)\) at (\d+) MHz Clock",
        text,
    )
    if m:
        out["cycles_per_packet"] = float(m.group(1))
        out["tsc_hz"] = int(m.group(4)) * 1_000_000
        # Share of the forwarding core in calls that received packets, approximately: the
        # cycles/packet cover the whole run, the rate only the window.
        out["busy_pct"] = min(100.0, 100.0 * out["cycles_per_packet"] * out["mpps"] * 1e6
                              / out["tsc_hz"])
    return out


# ---------------------------------------------------------------------------------------------
# OVS-DPDK (3.1) `ovs-appctl dpif-netdev/pmd-perf-show`


def parse_ovs_perf_show(text):
    """Parses pmd-perf-show for the (single) PMD thread.

    After `dpif-netdev/pmd-stats-clear` it reports over "Measurement duration: D s":
      "Used TSC cycles: C (u % of total cycles)"
      "Rx packets: N (K Kpps, X cycles/pkt)"  X = used TSC cycles / rx packets
      "Tx packets: N (K Kpps)"
    Used cycles include idle polls, so with a busy PMD X is TSC time per forwarded packet.
    """
    dur = re.search(r"Measurement duration:\s+([0-9.]+)\s*s", text)
    rx = re.search(r"Rx packets:\s+(\d+)\s+\(\s*(\d+)\s+Kpps,\s+(\d+)\s+cycles/pkt\)", text)
    tx = re.search(r"Tx packets:\s+(\d+)\s+\(\s*(\d+)\s+Kpps\)", text)
    used = re.search(r"Used TSC cycles:\s+(\d+)\s+\(\s*([0-9.]+)\s*% of total", text)
    busy = re.search(r"busy iterations:\s+\d+\s+\(\s*([0-9.]+)\s*% of used cycles\)", text)
    if not (dur and rx and tx):
        if re.search(r"Rx packets:\s+0\b", text) or "Iterations:" in text and not rx:
            return {"mpps": 0.0, "cycles_per_packet": None, "tx_packets": 0}
        raise ParseError("pmd-perf-show output has no measurement duration / Rx / Tx lines")
    seconds = float(dur.group(1))
    tx_packets = int(tx.group(1))
    if seconds <= 0:
        raise ParseError("pmd-perf-show measurement duration is zero")
    out = {
        "mpps": tx_packets / seconds / 1e6,
        "cycles_per_packet": float(rx.group(3)) if int(rx.group(1)) else None,
        "tx_packets": tx_packets,
        "duration_s": seconds,
    }
    if used and seconds > 0:
        out["tsc_hz_estimate"] = int(used.group(1)) / seconds
    if used and busy:
        # Busy iterations (that received packets), as a share of all the PMD's cycles.
        out["busy_pct"] = float(busy.group(1)) * float(used.group(2)) / 100.0
    return out


# ---------------------------------------------------------------------------------------------
# vswitch: `vsctl --json workers` and `vsctl --json stats sink`

# Raw cumulative counters a worker may expose besides the contract's fields; when one is
# there, cycles/packet is computed over the window instead of read as a lifetime average.
RAW_CYCLE_FIELDS = ["busy_cycles", "cycles"]


def parse_vswitch(w0, s0, t0, w1, s1, t1):
    """Mpps over [t0, t1] from the sink's tx_packets (what left the switch; a list of
    interfaces, as `vsctl --json stats` gives in topology B: their sum) and from the workers'
    packets; cycles/packet from the worker (TSC, busy cycles per packet)."""
    dt = t1 - t0
    if dt <= 0:
        raise ParseError("sampling window is empty")

    def tx(s):
        return sum(i["tx_packets"] for i in s) if isinstance(s, list) else s["tx_packets"]

    sink_tx = tx(s1) - tx(s0)
    workers0 = {w["id"]: w for w in w0}
    pkts = 0
    cycles = 0
    have_raw = None
    cpp_last = []
    busy = []
    total = 0
    for w in w1:
        prev = workers0.get(w["id"], {})
        d = w.get("packets", 0) - prev.get("packets", 0)
        pkts += d
        raw = next((f for f in RAW_CYCLE_FIELDS if f in w and f in prev), None)
        if raw is not None:
            have_raw = raw
            cycles += w[raw] - prev[raw]
        if "total_cycles" in w and "total_cycles" in prev:
            total += w["total_cycles"] - prev["total_cycles"]
        if w.get("packets", 0) > 0 and w.get("cycles_per_packet") is not None:
            cpp_last.append((w["packets"], w["cycles_per_packet"]))
        if w.get("busy_pct") is not None:
            busy.append(w["busy_pct"])
    if have_raw and pkts > 0:
        cpp = cycles / pkts
        source = "delta of %s / delta of packets over the window" % have_raw
    elif cpp_last:
        # Weighted by packets over the workers that forwarded (a single one in topology A).
        total = sum(p for p, _ in cpp_last)
        cpp = sum(p * c for p, c in cpp_last) / total
        source = "cycles_per_packet reported at the end of the window"
    else:
        cpp = None
        source = "not reported"
    out = {
        "mpps": sink_tx / dt / 1e6,
        "mpps_worker": pkts / dt / 1e6,
        "cycles_per_packet": cpp,
        "cycles_source": source,
        "busy_pct": max(busy) if busy else None,
        "window_s": dt,
    }
    # rx->tx latency histogram of the busiest worker: cumulative since daemon start, read at
    # the end of the window (so it includes the warm-up and the configuration phase).
    lat = [w for w in w1 if isinstance(w.get("latency"), dict) and w["latency"].get("samples")]
    if lat:
        w = max(lat, key=lambda w: w.get("packets", 0))
        out["latency"] = {k: w["latency"].get(k) for k in ["samples"] + LATENCY_FIELDS}
    if total > 0 and pkts > 0:
        # All TSC cycles of the worker (busy and idle polls) per packet: what OVS reports.
        out["cycles_per_packet_all_polls"] = total / pkts
        if have_raw == "busy_cycles":
            out["busy_pct"] = 100.0 * cycles / total
    return out


# ---------------------------------------------------------------------------------------------
# Results


def load_samples(path):
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def load_tsv(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                rows.append(line.split("\t"))
    return rows


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def summarise(samples, profiles, meta):
    tsc_values = [s["tsc_hz"] for s in samples if s.get("tsc_hz")]
    tsc_hz = statistics.median(tsc_values) if tsc_values else meta.get("tsc_hz_fallback")
    tsc_hz = float(tsc_hz) if tsc_hz else None
    out_profiles = []
    for name, topology, description, gen_args, packets in profiles:
        systems = {}
        for system in SYSTEMS:
            mine = [s for s in samples if s["profile"] == name and s["system"] == system]
            ok = [s for s in mine if s["status"] == "ok"]
            missing = [s for s in mine if s["status"] == "missing"]
            if not mine:
                systems[system] = {"status": "not run"}
                continue
            if missing and not ok:
                systems[system] = {"status": "missing", "reason": missing[0].get("note", "")}
                continue
            failed = [s for s in mine if s["status"] != "ok"]
            mpps = [s["mpps"] for s in ok]
            entry = {
                "status": "ok" if ok else "failed",
                "runs": len(mine),
                "failed_runs": len(failed),
                "mpps": spread(mpps),
                "mpps_runs": mpps,
                "cycles_per_packet": spread([s.get("cycles_per_packet") for s in ok]),
                "cycles_per_packet_runs": [s.get("cycles_per_packet") for s in ok],
                "cycles_per_packet_tsc_over_pps": spread(
                    [tsc_hz / (m * 1e6) if tsc_hz and m > 0 else None for m in mpps]
                ),
                "busy_pct": spread([s.get("busy_pct") for s in ok]),
            }
            lats = [s["latency"] for s in ok if isinstance(s.get("latency"), dict)]
            if lats:
                entry["latency_ns"] = {k: spread([l.get(k) for l in lats]) for k in LATENCY_FIELDS}
            notes = sorted({s["note"] for s in mine if s.get("note")})
            contended = [s for s in mine if s.get("contended_by")]
            if contended:
                who = sorted({p for s in contended for p in s["contended_by"]})
                notes.append("%d of %d runs overlapped other work on the machine (%s); "
                              "their figures are skewed" % (len(contended), len(mine), " ".join(who)))
            if notes:
                entry["notes"] = notes
            systems[system] = entry
        ratios = {}
        v = systems.get("vswitch", {})
        for peer in ("floor", "ovs"):
            p = systems.get(peer, {})
            key = "vswitch/" + peer
            if v.get("status") == "ok" and p.get("status") == "ok" and p["mpps"]["median"] > 0:
                ratios[key] = v["mpps"]["median"] / p["mpps"]["median"]
            else:
                ratios[key] = None
        goals = {}
        for key, target in GOALS.get(name, {}).items():
            got = ratios.get(key)
            goals[key] = {
                "target": target,
                "measured": got,
                "met": None if got is None else got >= target,
            }
        out_profiles.append(
            {
                "name": name,
                "topology": topology,
                "description": description,
                # Topology B has no pcap: the peer generates the traffic.
                "pcap": {"generator_args": gen_args, "packets": int(packets)} if gen_args else None,
                "systems": systems,
                "ratios": ratios,
                "goals": goals,
            }
        )
    return {"tsc_hz": tsc_hz, "profiles": out_profiles}


def fmt(x, digits=2):
    return "-" if x is None else ("%.*f" % (digits, x))


def render_md(doc):
    m = doc["machine"]
    s = doc["settings"]
    lines = []
    lines.append("# vswitch benchmark results, %s" % doc["date"])
    lines.append("")
    lines.append("Written by `perf/run.sh%s`; see perf/README.md for what each number means." %
                 (" --quick" if s["quick"] else ""))
    lines.append("")
    lines.append("| | |")
    lines.append("|---|---|")
    rows = [
        ("git revision", doc["git"]["revision"]),
        ("CPU", m["cpu_model"]),
        ("cores (nproc)", m["nproc"]),
        ("TSC", "%s GHz" % fmt(doc["tsc_hz"] / 1e9 if doc["tsc_hz"] else None, 3)),
        ("kernel", m["kernel"]),
        ("DPDK", m["dpdk"]),
        ("OVS", m["ovs"]),
        ("rustc", m["rustc"]),
        ("quiet machine", m["quiet"]),
        ("runs per system", "%s (order rotated each run), %s s warm-up, %s s window" %
         (s["runs"], s["warmup_s"], s["window_s"])),
        ("burst", s["burst"]),
    ]
    for k, v in rows:
        lines.append("| %s | %s |" % (k, v))
    for p in doc["profiles"]:
        lines.append("")
        lines.append("## %s (topology %s)" % (p["name"], p["topology"]))
        lines.append("")
        if p["pcap"]:
            lines.append("%s. pcap: `vswitch-pktgen %s` (%d packets)." %
                         (p["description"], p["pcap"]["generator_args"], p["pcap"]["packets"]))
        else:
            lines.append("%s. %s" % (p["description"], TOPOLOGY_B_TRAFFIC))
        if p["topology"] == "B":
            lines.append("")
            lines.append(TOPOLOGY_B_CAVEAT)
        lines.append("")
        lines.append("| system | Mpps median | min | max | cycles/pkt (own counter) | "
                     "cycles/pkt (TSC/pps) | runs |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for name in SYSTEMS:
            e = p["systems"].get(name, {"status": "not run"})
            label = SYSTEM_LABEL[name]
            if e["status"] in ("missing", "not run"):
                why = e.get("reason", "")
                lines.append("| %s | %s%s | | | | | |" %
                             (label, e["status"], (": " + why) if why else ""))
                continue
            mp = e["mpps"] or {}
            cpp = e["cycles_per_packet"] or {}
            cw = e["cycles_per_packet_tsc_over_pps"] or {}
            runs = "%d" % e["runs"] + (" (%d failed)" % e["failed_runs"] if e["failed_runs"] else "")
            lines.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                label, fmt(mp.get("median")), fmt(mp.get("min")), fmt(mp.get("max")),
                fmt(cpp.get("median"), 1), fmt(cw.get("median"), 1), runs))
        lines.append("")
        r = p["ratios"]
        ovs_status = p["systems"].get("ovs", {}).get("status", "not run")
        vs_ovs = fmt(r.get("vswitch/ovs"))
        if r.get("vswitch/ovs") is None and ovs_status != "ok":
            vs_ovs = "n/a (OVS %s)" % ovs_status
        lines.append("Ratios of medians: vswitch/floor **%s**, vswitch/OVS **%s**." % (
            fmt(r.get("vswitch/floor")), vs_ovs))
        for key, g in p["goals"].items():
            state = "not measured" if g["met"] is None else ("met" if g["met"] else "short")
            lines.append("Goal %s >= %s: %s (%s)." % (key, g["target"], fmt(g["measured"]), state))
        if p["topology"] == "B":
            busy = []
            for name in SYSTEMS:
                b = (p["systems"].get(name, {}).get("busy_pct") or {}).get("median")
                if b is not None:
                    busy.append("%s %s%%" % (name, fmt(b, 0)))
            lines.append("")
            lines.append("Forwarding core busy (share of its cycles in polls that received "
                         "packets, median; the floor's is approximate): %s." %
                         (", ".join(busy) if busy else "not measured"))
        lat = p["systems"].get("vswitch", {}).get("latency_ns")
        lines.append("")
        if lat:
            def us(k, f):
                v = (lat.get(k) or {}).get(f)
                return fmt(None if v is None else v / 1000.0, 2)
            lines.append("vswitch rx->tx latency (worker histogram since daemon start, warm-up "
                         "included; µs, median over runs [min-max]): " + ", ".join(
                             "%s %s [%s-%s]" % (LATENCY_LABEL[k], us(k, "median"), us(k, "min"),
                                                us(k, "max"))
                             for k in LATENCY_FIELDS) + ".")
        else:
            lines.append("vswitch rx->tx latency: not measured.")
        notes = [(n, e.get("notes")) for n, e in p["systems"].items() if e.get("notes")]
        for n, ns in notes:
            for note in ns:
                lines.append("")
                lines.append("Note (%s): %s" % (n, note))
    lines.append("")
    return "\n".join(lines)


def cmd_write(a):
    samples = load_samples(a.samples)
    meta = dict(load_tsv(a.meta))
    profiles = load_tsv(a.profiles)
    summary = summarise(samples, profiles, meta)
    doc = {
        "date": meta["date"],
        "git": {"revision": meta.get("git_revision", "unknown")},
        "machine": {
            "cpu_model": meta.get("cpu_model"),
            "nproc": int(meta.get("nproc", "0")),
            "tsc_ghz": summary["tsc_hz"] / 1e9 if summary["tsc_hz"] else None,
            "kernel": meta.get("kernel"),
            "dpdk": meta.get("dpdk"),
            "ovs": meta.get("ovs"),
            "rustc": meta.get("rustc"),
            "quiet": meta.get("quiet", "unknown"),
        },
        "settings": {
            "quick": meta.get("quick") == "1",
            "runs": int(meta.get("runs", "0")),
            "warmup_s": float(meta.get("warmup_s", "0")),
            "window_s": float(meta.get("window_s", "0")),
            "burst": int(meta.get("burst", "32")),
            "worker_core": int(meta.get("worker_core", "1")),
        },
        "tsc_hz": summary["tsc_hz"],
        "profiles": summary["profiles"],
        "samples": samples,
    }
    md = render_md(doc)
    with open(a.json, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    with open(a.md, "w") as f:
        f.write(md)
    sys.stdout.write(md)


def cmd_check(a):
    samples = load_samples(a.samples)
    bad = []
    for (profile, system) in sorted({(s["profile"], s["system"]) for s in samples}):
        if system not in ("vswitch", "floor"):
            continue
        mine = [s for s in samples if s["profile"] == profile and s["system"] == system]
        if all(s["status"] == "missing" for s in mine):
            # Cannot run this profile, with the reason in the results (not a forwarding failure).
            continue
        if not any(s["status"] == "ok" and s["mpps"] > 0 for s in mine):
            notes = "; ".join(sorted({s.get("note", "") for s in mine if s.get("note")}))
            bad.append("%s/%s forwarded nothing%s" % (profile, system, (": " + notes) if notes else ""))
    for b in bad:
        print("perf: FAIL: " + b, file=sys.stderr)
    sys.exit(1 if bad else 0)


# ---------------------------------------------------------------------------------------------
# Self-test against captured output


def selftest():
    td = os.path.join(HERE, "testdata")
    with open(os.path.join(td, "testpmd-22.11.txt")) as f:
        t = parse_testpmd(f.read(), skip=1)
    assert t["pps_samples"] == [31643079], t
    assert abs(t["cycles_per_packet"] - 82.38) < 1e-9, t
    assert t["tsc_hz"] == 2_600_000_000, t
    try:
        parse_testpmd("no stats here")
        raise AssertionError("expected ParseError")
    except ParseError:
        pass
    with open(os.path.join(td, "ovs-3.1-pmd-perf-show.txt")) as f:
        o = parse_ovs_perf_show(f.read())
    assert o["tx_packets"] == 34126624, o
    assert abs(o["mpps"] - 34126624 / 3.008 / 1e6) < 1e-9, o
    assert o["cycles_per_packet"] == 229.0, o
    assert abs(o["busy_pct"] - 99.9) < 1e-9, o
    w0 = [{"id": 0, "lcore": 1, "packets": 100, "cycles_per_packet": 90.0, "busy_pct": 100.0}]
    w1 = [{"id": 0, "lcore": 1, "packets": 2_000_100, "cycles_per_packet": 80.0, "busy_pct": 99.0}]
    v = parse_vswitch(w0, {"tx_packets": 50}, 10.0, w1, {"tx_packets": 2_000_050}, 12.0)
    assert abs(v["mpps"] - 1.0) < 1e-9 and abs(v["mpps_worker"] - 1.0) < 1e-9, v
    assert v["cycles_per_packet"] == 80.0, v
    w0[0]["busy_cycles"] = 1000
    w1[0]["busy_cycles"] = 1000 + 150_000_000
    w0[0]["total_cycles"] = 5000
    w1[0]["total_cycles"] = 5000 + 200_000_000
    v = parse_vswitch(w0, {"tx_packets": 50}, 10.0, w1, {"tx_packets": 2_000_050}, 12.0)
    assert v["cycles_per_packet"] == 75.0, v
    assert v["cycles_per_packet_all_polls"] == 100.0 and v["busy_pct"] == 75.0, v
    assert "latency" not in v, v
    w1[0]["latency"] = {"samples": 5, "p50_ns": 2000.0, "p99_ns": 3000.0, "p999_ns": 4000.0,
                        "max_ns": 9000.0}
    v = parse_vswitch(w0, {"tx_packets": 50}, 10.0, w1, {"tx_packets": 2_000_050}, 12.0)
    assert v["latency"]["p99_ns"] == 3000.0 and v["latency"]["samples"] == 5, v
    # Topology B: `vsctl --json stats` lists every interface; a and b's tx are summed.
    v = parse_vswitch(w0, [{"name": "a", "tx_packets": 10}, {"name": "b", "tx_packets": 40}], 10.0,
                      w1, [{"name": "a", "tx_packets": 1_000_010},
                           {"name": "b", "tx_packets": 1_000_040}], 12.0)
    assert abs(v["mpps"] - 1.0) < 1e-9, v
    # testpmd as switch in topology B: both ports' Tx-pps per period are summed.
    with open(os.path.join(td, "testpmd-22.11-vhost.txt")) as f:
        t = parse_testpmd(f.read(), sink_ports=(0, 1), skip=2, take=2)
    assert t["pps_samples"] == [2401968 + 2401904, 1055996 + 1055961], t
    assert abs(t["cycles_per_packet"] - 520.82) < 1e-9, t
    assert 0 < t["busy_pct"] <= 100.0, t
    print("report.py selftest: ok")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("testpmd")
    p.add_argument("log")
    p.add_argument("--sink-port", default="1", help="port number(s), comma-separated")
    p.add_argument("--skip", type=int, default=1)
    p.add_argument("--take", type=int)
    p = sub.add_parser("ovs")
    p.add_argument("perf_show")
    p = sub.add_parser("vswitch")
    for n in ("w0", "s0", "t0", "w1", "s1", "t1"):
        p.add_argument(n)
    p = sub.add_parser("write")
    for n in ("samples", "meta", "profiles", "md", "json"):
        p.add_argument("--" + n, required=True)
    p = sub.add_parser("check")
    p.add_argument("--samples", required=True)
    sub.add_parser("selftest")
    a = ap.parse_args()
    try:
        if a.cmd == "testpmd":
            with open(a.log, errors="replace") as f:
                sinks = tuple(int(x) for x in a.sink_port.split(","))
                print(json.dumps(parse_testpmd(f.read(), sinks, a.skip, a.take)))
        elif a.cmd == "ovs":
            with open(a.perf_show) as f:
                print(json.dumps(parse_ovs_perf_show(f.read())))
        elif a.cmd == "vswitch":
            def load(path):
                with open(path) as f:
                    return json.load(f)
            print(json.dumps(parse_vswitch(load(a.w0), load(a.s0), float(a.t0),
                                           load(a.w1), load(a.s1), float(a.t1))))
        elif a.cmd == "write":
            cmd_write(a)
        elif a.cmd == "check":
            cmd_check(a)
        elif a.cmd == "selftest":
            selftest()
    except (ParseError, KeyError, ValueError, OSError) as e:
        print("report.py %s: %s: %s" % (a.cmd, type(e).__name__, e), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
