//! Starts workers on lcores, publishes forwarding plans to them, stops them.
//!
//! Thread safety: the engine is owned by the control thread (behind the switch's lock).
//! Workers share [`Shared`] read-only apart from their own counters.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use dpdk::Eal;

use crate::counters::{WorkerCounters, WorkerStats};
use crate::l2::bridge::L2Shared;
use crate::plan::{ForwardingPlan, IfIndex};
use crate::poll::PollMode;
use crate::slowpath::SlowPath;
use crate::worker::Shared;

/// The running workers.
pub struct Engine {
    shared: Arc<Shared>,
    lcores: Vec<u32>,
    version: u64,
    running: bool,
}

/// How long `publish` waits for every worker to pass a quiescent point.
const QUIESCE_TIMEOUT: Duration = Duration::from_secs(2);

impl Engine {
    /// Launches one worker on each of `lcores` (worker lcores of `eal`). `slow` must have
    /// a punt and an inject ring for each of them.
    pub fn start(
        eal: &Eal,
        lcores: &[u32],
        poll: PollMode,
        l2: L2Shared,
        slow: Arc<SlowPath>,
    ) -> Result<Engine, dpdk::LaunchError> {
        let shared = Arc::new(Shared {
            plan: ArcSwap::from_pointee(ForwardingPlan::default()),
            stop: AtomicBool::new(false),
            poll,
            counters: (0..lcores.len())
                .map(|_| WorkerCounters::default())
                .collect(),
            l2,
            slow,
        });
        let mut engine = Engine {
            shared,
            lcores: Vec::new(),
            version: 0,
            running: true,
        };
        for (id, &lcore) in lcores.iter().enumerate() {
            let shared = engine.shared.clone();
            if let Err(e) = dpdk::launch(eal, lcore, move || crate::worker::run(id, &shared)) {
                engine.stop(eal);
                return Err(e);
            }
            engine.lcores.push(lcore);
        }
        Ok(engine)
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.lcores.len()
    }

    /// The lcore of each worker, by worker id.
    pub fn lcores(&self) -> &[u32] {
        &self.lcores
    }

    /// The plan workers use now.
    pub fn plan(&self) -> Arc<ForwardingPlan> {
        self.shared.plan.load_full()
    }

    /// Makes `plan` the one workers use, and returns once every worker has finished a poll
    /// with it: from then on nothing that only older plans named (a removed port's queues)
    /// is touched by any worker. Returns false if a worker did not get there in time.
    ///
    /// # Safety
    /// Workers call the unsafe `Burst::rx` / `tx` on the queues `plan` gives them, so
    /// `plan` must keep the queue ownership rules of [`crate::plan`] with every plan
    /// published before it that a worker may still use: each rx queue polled by one worker
    /// (the same one as before), worker `w` transmitting only on tx queues `w`, every port
    /// named open until a later `publish` without it has returned true (a port is never
    /// closed if that never happens), and no other thread using the workers' queues.
    pub unsafe fn publish(&mut self, mut plan: ForwardingPlan) -> bool {
        self.version += 1;
        plan.version = self.version;
        self.shared.plan.store(Arc::new(plan));
        if !self.running {
            return true;
        }
        self.shared.slow.wake_workers();
        let deadline = Instant::now() + QUIESCE_TIMEOUT;
        loop {
            let behind = self
                .shared
                .counters
                .iter()
                .any(|c| c.seen_version.load(Ordering::Acquire) < self.version);
            if !behind {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Counters of worker `id`.
    pub fn stats(&self, id: usize) -> Option<WorkerStats> {
        self.shared.counters.get(id).map(WorkerCounters::snapshot)
    }

    /// rx -> tx latency of worker `id`.
    pub fn latency(&self, id: usize) -> Option<crate::latency::LatencySnapshot> {
        self.shared.counters.get(id).map(|c| c.latency.snapshot())
    }

    /// Traffic on interface `iface`, summed over workers.
    pub fn iface_totals(&self, iface: IfIndex) -> crate::PortTotals {
        self.shared
            .counters
            .iter()
            .fold(crate::PortTotals::default(), |acc, c| {
                acc.plus(c.iface(iface))
            })
    }

    /// Tells every worker to stop and waits for them.
    pub fn stop(&mut self, eal: &Eal) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.slow.wake_workers();
        for &l in &self.lcores {
            dpdk::wait_lcore(eal, l);
        }
        self.running = false;
    }
}
