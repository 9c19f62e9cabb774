//! The session reaper: a thread that moves the session table's clock and expires idle
//! sessions (the table itself, and what creates and reads sessions, are the dataplane's:
//! `vswitch_dataplane::acl::session`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vswitch_dataplane::acl::Sessions;

/// How often the clock moves (sessions are stamped to the second).
const TICK: Duration = Duration::from_millis(250);

/// Slots of the session table (a power of two): each an entry of 128 bytes in its pool
/// (64 MiB, touched as entries are first used), 8 bytes of its index (4 MiB) and 4 of
/// its free list.
pub const SLOTS: usize = 1 << 19;
const _: () = assert!(SLOTS <= vswitch_dataplane::acl::session::MAX_SLOTS);
/// The default limit: half the slots (buckets stay roomy), conntrack's usual maximum.
pub const DEFAULT_LIMIT: u32 = 1 << 18;
/// The highest limit `session set` takes: seven eighths of the slots.
pub const MAX_LIMIT: u32 = (SLOTS as u32 / 8) * 7;

/// The clock's first second: past the longest timeout, so that a session restored at
/// start with any idle time a live one can have (session_file.rs) is stamped within the
/// clock's range.
pub const EPOCH: u32 = crate::model::session::MAX_TIMEOUT + 1;

/// The running reaper; stopped (and joined) on drop.
pub struct Reaper {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Reaper {
    /// Starts the reaper of `table`: its clock counts seconds from now, starting at
    /// [`EPOCH`].
    pub fn spawn(table: Arc<Sessions>) -> std::io::Result<Reaper> {
        table.set_clock(EPOCH);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vs-sessions".into())
            .spawn(move || {
                let start = Instant::now();
                let mut last = 0;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    let now = EPOCH.saturating_add(start.elapsed().as_secs() as u32);
                    table.set_clock(now);
                    if now != last {
                        last = now;
                        let gone = table.expire(now);
                        if gone > 0 {
                            tracing::debug!(sessions = gone, "sessions expired");
                        }
                    }
                }
            })?;
        Ok(Reaper {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
