//! `vsctl runtime`: the packet graph at work (VPP's `show runtime`): per worker and stage,
//! calls, packets, packets per call, cycles per packet; the drops of each stage by reason;
//! the slow path's rings.

use std::collections::BTreeMap;

use vswitch_proto::v1::{GetRuntimeReply, GetRuntimeRequest};

use crate::output::{self, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(ctx: &Ctx) -> anyhow::Result<String> {
    let mut r = reply(ctx.client().await?.get_runtime(GetRuntimeRequest {}).await)?;
    r.workers.sort_by_key(|w| w.worker);
    if ctx.json {
        output::json(&r)
    } else {
        Ok(text(&r))
    }
}

fn text(r: &GetRuntimeReply) -> String {
    let mut stages = Table::new(&[
        ("WORKER", Align::Right),
        ("STAGE", Align::Left),
        ("CALLS", Align::Right),
        ("PACKETS", Align::Right),
        ("VECTOR", Align::Right),
        ("CYCLES/PKT", Align::Right),
    ]);
    let mut drops = Table::new(&[
        ("WORKER", Align::Right),
        ("STAGE", Align::Left),
        ("REASON", Align::Left),
        ("PACKETS", Align::Right),
    ]);
    for w in &r.workers {
        for s in &w.stages {
            stages.row(vec![
                w.worker.to_string(),
                s.stage.clone(),
                s.calls.to_string(),
                s.packets.to_string(),
                format!("{:.1}", s.vector_size),
                format!("{:.1}", s.cycles_per_packet),
            ]);
            let sorted: BTreeMap<_, _> = s.drops.iter().collect();
            for (reason, n) in sorted {
                drops.row(vec![
                    w.worker.to_string(),
                    s.stage.clone(),
                    reason.clone(),
                    n.to_string(),
                ]);
            }
        }
    }
    let mut out = stages.render();
    out.push('\n');
    out.push_str(&drops.render());
    if let Some(s) = &r.slow_path {
        out.push_str(&format!(
            "\nslow path: punted {} received {} injected {} inject_full {} drained {} \
             (waiting: punt {}, inject {})\n",
            s.punted,
            s.received,
            s.injected,
            s.inject_full,
            s.drained,
            s.punt_depth,
            s.inject_depth
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use vswitch_proto::v1::{SlowPathRuntime, StageRuntime, WorkerRuntime};

    fn sample() -> GetRuntimeReply {
        GetRuntimeReply {
            workers: vec![WorkerRuntime {
                worker: 0,
                stages: vec![
                    StageRuntime {
                        stage: "ethernet-input".into(),
                        calls: 4,
                        packets: 128,
                        cycles: 2560,
                        timed_packets: 128,
                        cycles_per_packet: 20.0,
                        vector_size: 32.0,
                        drops: HashMap::from([("bad_header".to_owned(), 2)]),
                    },
                    StageRuntime {
                        stage: "output".into(),
                        calls: 4,
                        packets: 126,
                        cycles: 3780,
                        timed_packets: 126,
                        cycles_per_packet: 30.0,
                        vector_size: 31.5,
                        drops: HashMap::new(),
                    },
                ],
            }],
            slow_path: Some(SlowPathRuntime {
                punted: 3,
                received: 3,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn text_has_stages_drops_and_the_slow_path() {
        let t = text(&sample());
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("WORKER  STAGE"), "{t}");
        assert!(
            lines[1].contains("ethernet-input") && lines[1].ends_with("20.0"),
            "{t}"
        );
        assert!(
            lines[2].contains("output") && lines[2].contains("31.5"),
            "{t}"
        );
        assert!(
            t.contains("ethernet-input  bad_header") && t.contains("slow path: punted 3"),
            "{t}"
        );
    }

    #[test]
    fn json_shape() {
        let v = serde_json::to_value(sample()).expect("serializes");
        assert_eq!(v["workers"][0]["stages"][0]["stage"], "ethernet-input");
        assert_eq!(v["workers"][0]["stages"][0]["drops"]["bad_header"], 2);
        assert_eq!(v["workers"][0]["stages"][1]["cycles_per_packet"], 30.0);
        assert_eq!(v["slow_path"]["received"], 3);
    }
}
