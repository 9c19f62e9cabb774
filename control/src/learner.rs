//! The learner thread: applies the workers' learn requests every millisecond and ages the
//! MAC tables every second. It is the MAC table's writer between control operations (the
//! learner's mutex serialises the two).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vswitch_dataplane::l2::learn::FdbEvent;

use crate::events::Events;
use crate::names::format_mac;
use crate::switch::L2;

/// How often queued learn requests are applied.
const DRAIN_EVERY: Duration = Duration::from_millis(1);

/// Starts the learner; it runs until `stop` is set. Its events go to the log and to
/// watchers.
pub fn spawn(
    l2: L2,
    events: Arc<Events>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("vs-learner".into())
        .spawn(move || {
            let mut next_tick = Instant::now() + Duration::from_secs(1);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(DRAIN_EVERY);
                let new = {
                    let mut learner = l2.learner.lock().unwrap_or_else(|p| p.into_inner());
                    learner.drain(&l2.shared.learn);
                    if Instant::now() >= next_tick {
                        next_tick += Duration::from_secs(1);
                        learner.tick();
                    }
                    learner.take_events()
                };
                for e in &new {
                    log(e);
                }
                events.fdb(&new);
            }
        })
}

fn log(e: &FdbEvent) {
    match e {
        FdbEvent::Learned { key, port } => {
            tracing::debug!(bridge = key.bridge, vlan = key.vlan, mac = %format_mac(key.mac), port, "MAC learned")
        }
        FdbEvent::Moved { key, from, to } => {
            tracing::info!(bridge = key.bridge, vlan = key.vlan, mac = %format_mac(key.mac), from, to, "MAC moved")
        }
        FdbEvent::Aged { key, port } => {
            tracing::debug!(bridge = key.bridge, vlan = key.vlan, mac = %format_mac(key.mac), port, "MAC aged out")
        }
    }
}
