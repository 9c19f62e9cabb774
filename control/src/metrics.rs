//! `--metrics ADDR:PORT`: Prometheus text exposition (format 0.0.4) at `/metrics`, served
//! by a minimal HTTP/1.1 responder (GET only, one response per connection).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vswitch_proto::v1 as pb;

use crate::switch::Switch;

/// Everything exported, copied out of the switch under its lock.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub interfaces: Vec<pb::Interface>,
    pub workers: Vec<pb::Worker>,
    pub drops: Vec<(String, u64)>,
    pub bridges: Vec<pb::Bridge>,
    pub mempools: Vec<pb::Mempool>,
    /// The packet graph's stages per worker, and the slow path.
    pub runtime: pb::GetRuntimeReply,
    /// MAC learning events since start: (learned, moved, aged).
    pub fdb_events: (u64, u64, u64),
    pub router: crate::router::RouterStats,
    /// Tunnels by kind.
    pub tunnels: std::collections::BTreeMap<String, u64>,
    /// ACLs with their hits and bindings.
    pub acls: Vec<pb::Acl>,
    /// Services with their backends' counters, and the NAT settings.
    pub services: Vec<pb::Service>,
    pub nat: pb::Nat,
    /// The session table's settings and counters, and its live sessions by state.
    pub sessions: pb::SessionConfig,
    pub session_states: Vec<(String, u64)>,
}

impl Snapshot {
    /// Takes a snapshot of `sw`.
    pub fn of(sw: &Switch) -> Snapshot {
        Snapshot {
            interfaces: sw.list_ifaces(),
            workers: sw.workers(),
            drops: sw.drops().into_iter().collect(),
            bridges: sw.list_bridges(),
            mempools: sw.mempools(),
            runtime: sw.runtime(),
            fdb_events: {
                let l = sw.learn_stats();
                (l.learned, l.moved, l.aged)
            },
            router: sw.router_stats(),
            tunnels: sw.list_tunnels().into_iter().fold(
                std::collections::BTreeMap::new(),
                |mut m, t| {
                    *m.entry(t.kind).or_default() += 1;
                    m
                },
            ),
            acls: sw.list_acls(),
            services: sw.list_services(),
            nat: sw.get_nat(),
            sessions: sw.session_config(),
            session_states: sw.session_states(),
        }
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders a snapshot as Prometheus text. Label values are object names, which are
/// restricted to `[A-Za-z0-9_.-]` and so need no escaping.
pub fn render(s: &Snapshot) -> String {
    let mut o = String::new();
    type IfaceField = fn(&pb::Interface) -> u64;
    let iface_counters: [(&str, &str, IfaceField); 5] = [
        (
            "vswitch_interface_rx_packets_total",
            "Packets received on the interface.",
            |i| i.rx_packets,
        ),
        (
            "vswitch_interface_tx_packets_total",
            "Packets sent on the interface.",
            |i| i.tx_packets,
        ),
        (
            "vswitch_interface_rx_bytes_total",
            "Bytes received on the interface.",
            |i| i.rx_bytes,
        ),
        (
            "vswitch_interface_tx_bytes_total",
            "Bytes sent on the interface.",
            |i| i.tx_bytes,
        ),
        (
            "vswitch_interface_drops_total",
            "Packets lost on the interface (device and dataplane).",
            |i| i.drops,
        ),
    ];
    for (name, help, f) in iface_counters {
        family(&mut o, name, "counter", help);
        for i in &s.interfaces {
            let _ = writeln!(
                o,
                "{name}{{iface=\"{}\",type=\"{}\"}} {}",
                i.name,
                i.r#type,
                f(i)
            );
        }
    }
    family(
        &mut o,
        "vswitch_port_counter_total",
        "counter",
        "The port's own counters by name (vhost-user connects and refusals, memif ring \
         counters and refusals by reason, kernel drops of af_packet and tap, a DPDK \
         port's errors), since the port opened.",
    );
    for i in &s.interfaces {
        let mut counters: Vec<_> = i.port_counters.iter().collect();
        counters.sort();
        for (counter, n) in counters {
            let _ = writeln!(
                o,
                "vswitch_port_counter_total{{iface=\"{}\",counter=\"{counter}\"}} {n}",
                i.name
            );
        }
    }
    family(
        &mut o,
        "vswitch_interface_up",
        "gauge",
        "1 when the interface is admin and link up.",
    );
    for i in &s.interfaces {
        let _ = writeln!(
            o,
            "vswitch_interface_up{{iface=\"{}\"}} {}",
            i.name,
            u8::from(i.link_up)
        );
    }
    family(
        &mut o,
        "vswitch_worker_packets_total",
        "counter",
        "Packets received by the worker.",
    );
    for w in &s.workers {
        let _ = writeln!(
            o,
            "vswitch_worker_packets_total{{worker=\"{}\",lcore=\"{}\"}} {}",
            w.id, w.lcore, w.packets
        );
    }
    family(
        &mut o,
        "vswitch_worker_cycles_per_packet",
        "gauge",
        "TSC cycles per packet on busy polls.",
    );
    for w in &s.workers {
        let _ = writeln!(
            o,
            "vswitch_worker_cycles_per_packet{{worker=\"{}\"}} {}",
            w.id, w.cycles_per_packet
        );
    }
    family(
        &mut o,
        "vswitch_worker_busy_ratio",
        "gauge",
        "Share of cycles spent on polls that found packets.",
    );
    for w in &s.workers {
        let _ = writeln!(
            o,
            "vswitch_worker_busy_ratio{{worker=\"{}\"}} {}",
            w.id,
            w.busy_pct / 100.0
        );
    }
    family(
        &mut o,
        "vswitch_worker_sleeps_total",
        "counter",
        "Idle sleeps of the worker (--poll adaptive).",
    );
    for w in &s.workers {
        let _ = writeln!(
            o,
            "vswitch_worker_sleeps_total{{worker=\"{}\"}} {}",
            w.id, w.sleeps
        );
    }
    family(
        &mut o,
        "vswitch_worker_wakeups_total",
        "counter",
        "Idle sleeps ended by a frame or the control plane before their time-out.",
    );
    for w in &s.workers {
        let _ = writeln!(
            o,
            "vswitch_worker_wakeups_total{{worker=\"{}\"}} {}",
            w.id, w.wakeups
        );
    }
    family(
        &mut o,
        "vswitch_worker_latency_seconds",
        "summary",
        "rx -> tx latency inside the switch since start.",
    );
    for w in &s.workers {
        let Some(l) = &w.latency else { continue };
        for (q, v) in [("0.5", l.p50_ns), ("0.99", l.p99_ns), ("0.999", l.p999_ns)] {
            let _ = writeln!(
                o,
                "vswitch_worker_latency_seconds{{worker=\"{}\",quantile=\"{q}\"}} {}",
                w.id,
                v / 1e9
            );
        }
        let _ = writeln!(
            o,
            "vswitch_worker_latency_seconds_count{{worker=\"{}\"}} {}",
            w.id, l.samples
        );
    }
    family(
        &mut o,
        "vswitch_drops_total",
        "counter",
        "Packets dropped (and learning refused) by reason.",
    );
    for (reason, n) in &s.drops {
        let _ = writeln!(o, "vswitch_drops_total{{reason=\"{reason}\"}} {n}");
    }
    type StageField = fn(&pb::StageRuntime) -> u64;
    let stage_counters: [(&str, &str, StageField); 3] = [
        (
            "vswitch_stage_packets_total",
            "Packets through the stage of the packet graph.",
            |st| st.packets,
        ),
        (
            "vswitch_stage_calls_total",
            "Vectors the stage was called with.",
            |st| st.calls,
        ),
        (
            "vswitch_stage_cycles_total",
            "TSC cycles spent in the stage.",
            |st| st.cycles,
        ),
    ];
    for (name, help, field) in stage_counters {
        family(&mut o, name, "counter", help);
        for w in &s.runtime.workers {
            for st in &w.stages {
                let _ = writeln!(
                    o,
                    "{name}{{worker=\"{}\",stage=\"{}\"}} {}",
                    w.worker,
                    st.stage,
                    field(st)
                );
            }
        }
    }
    family(
        &mut o,
        "vswitch_stage_drops_total",
        "counter",
        "Packets dropped by the stage, by reason.",
    );
    for w in &s.runtime.workers {
        for st in &w.stages {
            let mut drops: Vec<_> = st.drops.iter().collect();
            drops.sort();
            for (reason, n) in drops {
                let _ = writeln!(
                    o,
                    "vswitch_stage_drops_total{{worker=\"{}\",stage=\"{}\",reason=\"{reason}\"}} {n}",
                    w.worker, st.stage
                );
            }
        }
    }
    if let Some(sp) = &s.runtime.slow_path {
        for (name, help, v) in [
            (
                "vswitch_slowpath_punted_total",
                "Packets workers punted to the slow path.",
                sp.punted,
            ),
            (
                "vswitch_slowpath_injected_total",
                "Packets the slow path queued for workers to send.",
                sp.injected,
            ),
            (
                "vswitch_slowpath_inject_full_total",
                "Packets the slow path could not queue (inject ring full).",
                sp.inject_full,
            ),
        ] {
            family(&mut o, name, "counter", help);
            let _ = writeln!(o, "{name} {v}");
        }
    }
    family(
        &mut o,
        "vswitch_fdb_learned",
        "gauge",
        "Learned MAC entries of the bridge.",
    );
    for b in &s.bridges {
        let _ = writeln!(
            o,
            "vswitch_fdb_learned{{bridge=\"{}\"}} {}",
            b.name, b.learned
        );
    }
    family(
        &mut o,
        "vswitch_fdb_learn_limit",
        "gauge",
        "Most learned MAC entries the bridge may hold.",
    );
    for b in &s.bridges {
        let _ = writeln!(
            o,
            "vswitch_fdb_learn_limit{{bridge=\"{}\"}} {}",
            b.name, b.learn_limit
        );
    }
    let (learned, moved, aged) = s.fdb_events;
    for (name, help, v) in [
        (
            "vswitch_fdb_learned_total",
            "MAC entries learned, all bridges.",
            learned,
        ),
        (
            "vswitch_fdb_moves_total",
            "Learned MACs that moved to another port.",
            moved,
        ),
        (
            "vswitch_fdb_aged_total",
            "Learned MACs removed by aging.",
            aged,
        ),
    ] {
        family(&mut o, name, "counter", help);
        let _ = writeln!(o, "{name} {v}");
    }
    router(&mut o, &s.router);
    family(
        &mut o,
        "vswitch_tunnels",
        "gauge",
        "Tunnels configured, by kind (every kind listed).",
    );
    for kind in crate::model::tunnel::KINDS {
        let n = s.tunnels.get(kind).copied().unwrap_or(0);
        let _ = writeln!(o, "vswitch_tunnels{{kind=\"{kind}\"}} {n}");
    }
    acls(&mut o, &s.acls);
    services(&mut o, &s.services, &s.nat);
    sessions(&mut o, &s.sessions, &s.session_states);
    family(
        &mut o,
        "vswitch_mempool_in_use",
        "gauge",
        "Packet buffers allocated.",
    );
    for m in &s.mempools {
        let _ = writeln!(
            o,
            "vswitch_mempool_in_use{{pool=\"{}\"}} {}",
            m.name, m.in_use
        );
    }
    family(
        &mut o,
        "vswitch_mempool_capacity",
        "gauge",
        "Packet buffers in the pool.",
    );
    for m in &s.mempools {
        let _ = writeln!(
            o,
            "vswitch_mempool_capacity{{pool=\"{}\"}} {}",
            m.name, m.capacity
        );
    }
    o
}

/// ACLs: how many and how many bindings, and each rule's hits (rules numbered from 1, as
/// `vsctl acl show` does; the default deny is rule "default"). Hits start at 0 when an
/// ACL's rules are set.
fn acls(o: &mut String, acls: &[pb::Acl]) {
    family(o, "vswitch_acls", "gauge", "ACLs configured.");
    let _ = writeln!(o, "vswitch_acls {}", acls.len());
    family(
        o,
        "vswitch_acl_bindings",
        "gauge",
        "ACL bindings (interface and direction).",
    );
    let bound: usize = acls.iter().map(|a| a.bindings.len()).sum();
    let _ = writeln!(o, "vswitch_acl_bindings {bound}");
    family(
        o,
        "vswitch_acl_rule_hits_total",
        "counter",
        "Packets each ACL rule matched, since the ACL's rules were set.",
    );
    for a in acls {
        for (i, (r, hits)) in a.rules.iter().zip(&a.hits).enumerate() {
            let _ = writeln!(
                o,
                "vswitch_acl_rule_hits_total{{acl=\"{}\",rule=\"{}\",action=\"{}\"}} {hits}",
                a.name,
                i + 1,
                r.action
            );
        }
        let _ = writeln!(
            o,
            "vswitch_acl_rule_hits_total{{acl=\"{}\",rule=\"default\",action=\"deny\"}} {}",
            a.name, a.default_hits
        );
    }
}

/// The session table of stateful ACLs: live sessions by state (every state), in all, the
/// limit, and its counters since start.
fn sessions(o: &mut String, c: &pb::SessionConfig, states: &[(String, u64)]) {
    family(
        o,
        "vswitch_sessions",
        "gauge",
        "Live sessions of stateful ACLs, by state.",
    );
    for (state, n) in states {
        let _ = writeln!(o, "vswitch_sessions{{state=\"{state}\"}} {n}");
    }
    for (name, kind, help, v) in [
        (
            "vswitch_sessions_live",
            "gauge",
            "Live sessions of stateful ACLs in all.",
            c.live,
        ),
        (
            "vswitch_session_limit",
            "gauge",
            "Most sessions in all (session set limit=N).",
            u64::from(c.limit),
        ),
        (
            "vswitch_session_iface_limit",
            "gauge",
            "Most sessions on one interface.",
            u64::from(c.iface_limit),
        ),
        (
            "vswitch_sessions_created_total",
            "counter",
            "Sessions created.",
            c.created,
        ),
        (
            "vswitch_sessions_evicted_total",
            "counter",
            "Half-open sessions evicted at a limit.",
            c.evicted,
        ),
        (
            "vswitch_sessions_refused_total",
            "counter",
            "New flows refused a session (limit with none to evict, or a full bucket).",
            c.refused,
        ),
        (
            "vswitch_sessions_expired_total",
            "counter",
            "Sessions removed idle past their timeout.",
            c.expired,
        ),
    ] {
        family(o, name, kind, help);
        let _ = writeln!(o, "{name} {v}");
    }
}

/// Services (how many), each backend's new flows (since the service's backends
/// were last set to something else; backend `ip:port`, `[ip]:port` for IPv6), and the NAT
/// settings (masquerading interfaces, port mappings).
fn services(o: &mut String, services: &[pb::Service], nat: &pb::Nat) {
    family(o, "vswitch_services", "gauge", "Services configured.");
    let _ = writeln!(o, "vswitch_services {}", services.len());
    family(
        o,
        "vswitch_service_backends",
        "gauge",
        "Backends of each service.",
    );
    for sv in services {
        let _ = writeln!(
            o,
            "vswitch_service_backends{{service=\"{}\"}} {}",
            sv.name,
            sv.backends.len()
        );
    }
    family(
        o,
        "vswitch_service_backends_live",
        "gauge",
        "Backends of each service that take new flows (weight above 0).",
    );
    for sv in services {
        let live = sv.backends.iter().filter(|b| b.weight > 0).count();
        let _ = writeln!(
            o,
            "vswitch_service_backends_live{{service=\"{}\"}} {live}",
            sv.name
        );
    }
    for (metric, help, field) in [(
        "vswitch_service_backend_flows_total",
        "New flows each service gave each backend.",
        (|b: &pb::ServiceBackend| b.flows) as fn(&pb::ServiceBackend) -> u64,
    )] {
        family(o, metric, "counter", help);
        for sv in services {
            for b in &sv.backends {
                let ep = match b.ip.contains(':') {
                    true => format!("[{}]:{}", b.ip, b.port),
                    false => format!("{}:{}", b.ip, b.port),
                };
                let _ = writeln!(
                    o,
                    "{metric}{{service=\"{}\",backend=\"{ep}\"}} {}",
                    sv.name,
                    field(b)
                );
            }
        }
    }
    family(
        o,
        "vswitch_nat_masquerade_ifaces",
        "gauge",
        "Interfaces whose egress traffic is masqueraded.",
    );
    let _ = writeln!(o, "vswitch_nat_masquerade_ifaces {}", nat.masquerade.len());
    family(
        o,
        "vswitch_nat_portmaps",
        "gauge",
        "Port mappings configured.",
    );
    let _ = writeln!(o, "vswitch_nat_portmaps {}", nat.portmaps.len());
}

/// The router's FIB sizes, neighbours and next hops.
fn router(o: &mut String, r: &crate::router::RouterStats) {
    family(
        o,
        "vswitch_fib_routes",
        "gauge",
        "FIB entries per VRF and family (static, connected, local and learned host routes).",
    );
    for (vrf, fam, n, _) in &r.fibs {
        let _ = writeln!(
            o,
            "vswitch_fib_routes{{vrf=\"{vrf}\",family=\"{fam}\"}} {n}"
        );
    }
    family(
        o,
        "vswitch_fib_groups",
        "gauge",
        "FIB second-level groups in use per VRF and family (1 KiB each).",
    );
    for (vrf, fam, _, g) in &r.fibs {
        let _ = writeln!(
            o,
            "vswitch_fib_groups{{vrf=\"{vrf}\",family=\"{fam}\"}} {g}"
        );
    }
    family(
        o,
        "vswitch_neighbors",
        "gauge",
        "Neighbours, static and learned.",
    );
    let _ = writeln!(
        o,
        "vswitch_neighbors{{kind=\"static\"}} {}",
        r.neighbors_static
    );
    let _ = writeln!(
        o,
        "vswitch_neighbors{{kind=\"learned\"}} {}",
        r.neighbors_learned
    );
    family(
        o,
        "vswitch_neighbors_refused_total",
        "counter",
        "Neighbours not learned because the table was full (neigh set limit=).",
    );
    let _ = writeln!(o, "vswitch_neighbors_refused_total {}", r.neighbors_refused);
    family(o, "vswitch_nexthops", "gauge", "Next-hop ids in use.");
    let _ = writeln!(o, "vswitch_nexthops {}", r.nexthops);
}

/// Binds `addr` (so a bad address fails at start) and returns the server future.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("--metrics {addr}: cannot listen: {e}"))
}

/// Serves `/metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, switch: Arc<Mutex<Option<Switch>>>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let switch = switch.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 8192];
            let mut len = 0;
            // Read the request head (bounded): enough to see the request line.
            while len < buf.len() {
                match tokio::time::timeout(
                    std::time::Duration::from_secs(5),
                    conn.read(&mut buf[len..]),
                )
                .await
                {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => len += n,
                }
                if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf[..len]);
            let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
            let (method, path) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            let (status, body) = if method != "GET" {
                ("405 Method Not Allowed", "only GET\n".to_string())
            } else if path != "/metrics" {
                ("404 Not Found", "see /metrics\n".to_string())
            } else {
                let text = tokio::task::spawn_blocking(move || {
                    let guard = switch.lock().unwrap_or_else(|p| p.into_inner());
                    guard.as_ref().map(|sw| render(&Snapshot::of(sw)))
                })
                .await;
                match text {
                    Ok(Some(t)) => ("200 OK", t),
                    _ => ("503 Service Unavailable", "shutting down\n".to_string()),
                }
            };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let s = Snapshot {
            interfaces: vec![pb::Interface {
                name: "a".into(),
                r#type: "null".into(),
                rx_packets: 5,
                tx_packets: 7,
                link_up: true,
                port_counters: [("refused".to_owned(), 2), ("connects".to_owned(), 0)].into(),
                ..Default::default()
            }],
            workers: vec![pb::Worker {
                id: 0,
                lcore: 1,
                packets: 9,
                cycles_per_packet: 100.5,
                busy_pct: 50.0,
                latency: Some(pb::Latency {
                    samples: 9,
                    p50_ns: 1000.0,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            drops: vec![("tx_full".into(), 3)],
            bridges: vec![pb::Bridge {
                name: "br0".into(),
                learned: 4,
                learn_limit: 10,
                ..Default::default()
            }],
            mempools: vec![pb::Mempool {
                name: "p".into(),
                capacity: 100,
                in_use: 2,
                available: 98,
            }],
            runtime: pb::GetRuntimeReply {
                workers: vec![pb::WorkerRuntime {
                    worker: 0,
                    stages: vec![pb::StageRuntime {
                        stage: "l2-bridge".into(),
                        calls: 2,
                        packets: 40,
                        cycles: 4000,
                        drops: [("flood_off".to_owned(), 1)].into(),
                        ..Default::default()
                    }],
                }],
                slow_path: Some(pb::SlowPathRuntime {
                    punted: 6,
                    ..Default::default()
                }),
            },
            fdb_events: (5, 1, 2),
            router: crate::router::RouterStats {
                fibs: vec![(0, "ipv4", 12, 1), (0, "ipv6", 3, 0)],
                neighbors_static: 2,
                neighbors_learned: 5,
                neighbors_refused: 9,
                nexthops: 4,
            },
            tunnels: [("vxlan".to_string(), 2)].into_iter().collect(),
            acls: vec![pb::Acl {
                name: "web".into(),
                rules: vec![pb::AclRule {
                    action: "permit".into(),
                    ..Default::default()
                }],
                hits: vec![11],
                default_hits: 3,
                bindings: vec![pb::AclBinding::default()],
            }],
            sessions: pb::SessionConfig {
                limit: 1000,
                live: 3,
                created: 9,
                evicted: 2,
                refused: 1,
                expired: 4,
                ..Default::default()
            },
            session_states: vec![("established".into(), 2), ("new".into(), 1)],
            services: vec![pb::Service {
                name: "web".into(),
                backends: vec![
                    pb::ServiceBackend {
                        ip: "10.1.0.5".into(),
                        port: 8080,
                        weight: 1,
                        flows: 7,
                    },
                    pb::ServiceBackend {
                        ip: "2001:db8::5".into(),
                        port: 80,
                        weight: 0,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            nat: pb::Nat {
                masquerade: vec![pb::Masquerade::default()],
                portmaps: vec![],
            },
        };
        let t = render(&s);
        for line in [
            "# TYPE vswitch_interface_rx_packets_total counter",
            "vswitch_interface_rx_packets_total{iface=\"a\",type=\"null\"} 5",
            "vswitch_interface_tx_packets_total{iface=\"a\",type=\"null\"} 7",
            "vswitch_interface_up{iface=\"a\"} 1",
            "# TYPE vswitch_port_counter_total counter",
            "vswitch_port_counter_total{iface=\"a\",counter=\"connects\"} 0",
            "vswitch_port_counter_total{iface=\"a\",counter=\"refused\"} 2",
            "vswitch_worker_cycles_per_packet{worker=\"0\"} 100.5",
            "vswitch_worker_busy_ratio{worker=\"0\"} 0.5",
            "vswitch_worker_latency_seconds{worker=\"0\",quantile=\"0.5\"} 0.000001",
            "vswitch_drops_total{reason=\"tx_full\"} 3",
            "vswitch_fdb_learned{bridge=\"br0\"} 4",
            "vswitch_mempool_in_use{pool=\"p\"} 2",
            "vswitch_fdb_moves_total 1",
            "vswitch_stage_packets_total{worker=\"0\",stage=\"l2-bridge\"} 40",
            "vswitch_stage_cycles_total{worker=\"0\",stage=\"l2-bridge\"} 4000",
            "vswitch_stage_drops_total{worker=\"0\",stage=\"l2-bridge\",reason=\"flood_off\"} 1",
            "vswitch_slowpath_punted_total 6",
            "vswitch_fib_routes{vrf=\"0\",family=\"ipv4\"} 12",
            "vswitch_fib_groups{vrf=\"0\",family=\"ipv4\"} 1",
            "vswitch_neighbors{kind=\"learned\"} 5",
            "vswitch_neighbors_refused_total 9",
            "vswitch_nexthops 4",
            "vswitch_tunnels{kind=\"vxlan\"} 2",
            "vswitch_tunnels{kind=\"ipip\"} 0",
            "vswitch_acls 1",
            "vswitch_acl_bindings 1",
            "vswitch_acl_rule_hits_total{acl=\"web\",rule=\"1\",action=\"permit\"} 11",
            "vswitch_acl_rule_hits_total{acl=\"web\",rule=\"default\",action=\"deny\"} 3",
            "vswitch_sessions{state=\"established\"} 2",
            "vswitch_sessions{state=\"new\"} 1",
            "vswitch_sessions_live 3",
            "vswitch_session_limit 1000",
            "vswitch_sessions_created_total 9",
            "vswitch_sessions_evicted_total 2",
            "vswitch_sessions_refused_total 1",
            "vswitch_sessions_expired_total 4",
            "vswitch_services 1",
            "vswitch_service_backends{service=\"web\"} 2",
            "vswitch_service_backends_live{service=\"web\"} 1",
            "vswitch_service_backend_flows_total{service=\"web\",backend=\"10.1.0.5:8080\"} 7",
            "vswitch_service_backend_flows_total{service=\"web\",backend=\"[2001:db8::5]:80\"} 0",
            "vswitch_nat_masquerade_ifaces 1",
            "vswitch_nat_portmaps 0",
        ] {
            assert!(t.lines().any(|l| l == line), "missing {line:?} in\n{t}");
        }
        // Every sample line is NAME{labels} VALUE with a numeric value.
        for l in t.lines().filter(|l| !l.starts_with('#')) {
            let v = l.rsplit(' ').next().unwrap();
            assert!(v.parse::<f64>().is_ok(), "{l}");
        }
    }
}
