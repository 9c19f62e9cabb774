//! `vsctl workers`: each worker's lcore, the rx queues it polls, its packets and cycles.

use serde::Serialize;
use vswitch_proto::v1::{ListWorkersRequest, Worker};

use crate::output::{self, or_dash, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(ctx: &Ctx) -> anyhow::Result<String> {
    let request = ListWorkersRequest {};
    let mut workers = reply(ctx.client().await?.list_workers(request).await)?.workers;
    workers.sort_by_key(|w| w.id);
    if ctx.json {
        output::json(&workers.iter().map(WorkerJson::from).collect::<Vec<_>>())
    } else {
        Ok(table(&workers))
    }
}

/// One worker in `--json` output.
#[derive(Debug, Serialize)]
struct WorkerJson<'a> {
    id: u32,
    lcore: u32,
    rx_queues: Vec<RxQueueJson<'a>>,
    packets: u64,
    tx_packets: u64,
    cycles_per_packet: f64,
    busy_pct: f64,
    busy_cycles: u64,
    total_cycles: u64,
    latency: LatencyJson,
    sleeps: u64,
    wakeups: u64,
}

/// rx -> tx latency inside the switch, in nanoseconds.
#[derive(Debug, Default, Serialize)]
struct LatencyJson {
    samples: u64,
    p50_ns: f64,
    p99_ns: f64,
    p999_ns: f64,
    max_ns: f64,
}

#[derive(Debug, Serialize)]
struct RxQueueJson<'a> {
    iface: &'a str,
    queue: u32,
}

impl<'a> From<&'a Worker> for WorkerJson<'a> {
    fn from(w: &'a Worker) -> Self {
        WorkerJson {
            id: w.id,
            lcore: w.lcore,
            rx_queues: w
                .rx_queues
                .iter()
                .map(|q| RxQueueJson {
                    iface: &q.iface,
                    queue: q.queue,
                })
                .collect(),
            packets: w.packets,
            tx_packets: w.tx_packets,
            cycles_per_packet: w.cycles_per_packet,
            busy_pct: w.busy_pct,
            busy_cycles: w.busy_cycles,
            total_cycles: w.total_cycles,
            latency: w
                .latency
                .as_ref()
                .map(|l| LatencyJson {
                    samples: l.samples,
                    p50_ns: l.p50_ns,
                    p99_ns: l.p99_ns,
                    p999_ns: l.p999_ns,
                    max_ns: l.max_ns,
                })
                .unwrap_or_default(),
            sleeps: w.sleeps,
            wakeups: w.wakeups,
        }
    }
}

/// A latency quantile in ns, or '-' before the first forwarded packet.
fn latency_cell(w: &Worker, q: fn(&vswitch_proto::v1::Latency) -> f64) -> String {
    match &w.latency {
        Some(l) if l.samples > 0 => decimal(q(l)),
        _ => "-".to_string(),
    }
}

fn table(workers: &[Worker]) -> String {
    let mut table = Table::new(&[
        ("ID", Align::Right),
        ("LCORE", Align::Right),
        ("PACKETS", Align::Right),
        ("TX_PACKETS", Align::Right),
        ("CYCLES/PKT", Align::Right),
        ("BUSY%", Align::Right),
        ("P50_NS", Align::Right),
        ("P99_NS", Align::Right),
        ("SLEEPS", Align::Right),
        ("WAKEUPS", Align::Right),
        ("RX_QUEUES", Align::Left),
    ]);
    for w in workers {
        let queues: Vec<String> = w
            .rx_queues
            .iter()
            .map(|q| format!("{}:{}", q.iface, q.queue))
            .collect();
        table.row(vec![
            w.id.to_string(),
            w.lcore.to_string(),
            w.packets.to_string(),
            w.tx_packets.to_string(),
            decimal(w.cycles_per_packet),
            decimal(w.busy_pct),
            latency_cell(w, |l| l.p50_ns),
            latency_cell(w, |l| l.p99_ns),
            w.sleeps.to_string(),
            w.wakeups.to_string(),
            or_dash(&queues.join(",")),
        ]);
    }
    table.render()
}

/// One decimal place, or `-` for a value that is not a number.
fn decimal(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "-".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use vswitch_proto::v1::RxQueue;

    use super::*;

    fn sample() -> Worker {
        Worker {
            id: 0,
            lcore: 1,
            rx_queues: vec![
                RxQueue {
                    iface: "vm1".into(),
                    queue: 0,
                },
                RxQueue {
                    iface: "uplink0".into(),
                    queue: 1,
                },
            ],
            packets: 1000,
            cycles_per_packet: 87.25,
            busy_pct: 12.5,
            busy_cycles: 87250,
            total_cycles: 698000,
            tx_packets: 999,
            latency: Some(vswitch_proto::v1::Latency {
                samples: 1000,
                p50_ns: 120.0,
                p99_ns: 900.5,
                p999_ns: 2000.0,
                max_ns: 5000.0,
            }),
            sleeps: 40,
            wakeups: 31,
        }
    }

    #[test]
    fn json_shape() {
        let w = sample();
        let value = serde_json::to_value(WorkerJson::from(&w)).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({
                "id": 0,
                "lcore": 1,
                "rx_queues": [{"iface": "vm1", "queue": 0}, {"iface": "uplink0", "queue": 1}],
                "packets": 1000,
                "tx_packets": 999,
                "cycles_per_packet": 87.25,
                "busy_pct": 12.5,
                "busy_cycles": 87250,
                "total_cycles": 698000,
                "latency": {"samples": 1000, "p50_ns": 120.0, "p99_ns": 900.5, "p999_ns": 2000.0, "max_ns": 5000.0},
                "sleeps": 40,
                "wakeups": 31,
            })
        );
    }

    #[test]
    fn table_rows() {
        let idle = Worker {
            id: 1,
            lcore: 2,
            cycles_per_packet: f64::NAN,
            ..Default::default()
        };
        assert_eq!(
            table(&[sample(), idle]),
            "ID  LCORE  PACKETS  TX_PACKETS  CYCLES/PKT  BUSY%  P50_NS  P99_NS  SLEEPS  WAKEUPS  RX_QUEUES\n\
             \x200      1     1000         999        87.2   12.5   120.0   900.5      40       31  vm1:0,uplink0:1\n\
             \x201      2        0           0           -    0.0       -       -       0        0  -\n"
        );
    }
}
