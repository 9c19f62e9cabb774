//! The per-lcore poll loop: for each assigned rx queue, receive a burst into the graph's
//! input vector, run the graph ([`crate::graph`]) and transmit what it queued; then take
//! what the slow path injected for this worker. Counts cycles per stage.
//!
//! Reads: the current [`ForwardingPlan`](crate::ForwardingPlan) (once per poll). Writes:
//! this worker's [`WorkerCounters`](crate::counters::WorkerCounters) only. Never blocks,
//! allocates or takes a lock; sleeps only when idle in adaptive mode, until one of its
//! queues has a frame or the control plane rings it ([`crate::poll::Sleeper`]).

use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::Arc;

use arc_swap::ArcSwap;
use dpdk::rdtsc;

use crate::counters::{bump, WorkerCounters, TIMED_EVERY};
use crate::graph::{Ctx, Graph, Lap, Stage};
use crate::l2::bridge::L2Shared;
use crate::plan::{ForwardingPlan, Rx};
use crate::poll::{Backoff, PollMode, Sleeper, Slept};
use crate::slowpath::SlowPath;

/// What the workers share with the control thread (made and owned by the
/// [`Engine`](crate::Engine)).
pub(crate) struct Shared {
    pub(crate) plan: ArcSwap<ForwardingPlan>,
    pub(crate) stop: AtomicBool,
    pub(crate) poll: PollMode,
    pub(crate) counters: Box<[WorkerCounters]>,
    pub(crate) l2: L2Shared,
    pub(crate) slow: Arc<SlowPath>,
}

/// Packets taken from one rx queue per poll.
pub const RX_BURST: usize = 32;

/// Runs worker `id` until the engine says stop.
pub(crate) fn run(id: usize, shared: &Shared) {
    let Some(counters) = shared.counters.get(id) else {
        return;
    };
    // Sleeps in adaptive mode should be short: ask the kernel for 1 us timer slack.
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000u64, 0u64, 0u64, 0u64);
    }
    let mut plan_cache = arc_swap::Cache::new(&shared.plan);
    let mut graph = Graph::new(id);
    let mut backoff = Backoff::default();
    let mut sleeper = Sleeper::default();
    // Bursts handled, to time one in TIMED_EVERY.
    let mut bursts: u64 = 0;
    let start = rdtsc();
    counters.start_tsc.store(start, Relaxed);
    while !shared.stop.load(Relaxed) {
        let plan = plan_cache.load();
        let ctx = Ctx {
            worker: id,
            plan,
            l2: &shared.l2,
            slow: &shared.slow,
            counters,
        };
        // TSC reads: one at the start of the poll and one after each burst (a read costs
        // ~30 cycles here), plus one after each stage in a timed burst (one in
        // TIMED_EVERY). Latency is poll start -> tx done; busy time is poll start -> last tx.
        let t0 = rdtsc();
        let mut t = t0;
        let mut moved = 0;
        if let Some(mine) = plan.workers.get(id) {
            for a in &mine.rx {
                let burst = graph.input().burst_mut();
                let n = match &a.rxq {
                    // SAFETY: a.rxq is in this worker's own part of a published plan. By
                    // the contract of Engine::publish (the only way a plan reaches a
                    // worker; see plan.rs, "Queue ownership"), no other worker's plan,
                    // current or one a worker may still be using, names this rx queue, and
                    // its port stays open until every worker has finished a poll with a
                    // plan without it.
                    Rx::Dpdk(q) => unsafe { burst.rx(*q, RX_BURST) },
                    // SAFETY: this thread is worker `id`'s, the only one the engine runs
                    // with that id.
                    Rx::Native(p) => unsafe { p.rx(id, burst, RX_BURST) },
                    // SAFETY: as for Native; and queue pair q is in this worker's part of
                    // the plan alone (queue ownership, as for DPDK rx queues).
                    Rx::Vhost(p, q) => unsafe { p.rx(id, *q, burst, RX_BURST) },
                    Rx::Memif(p, q) => p.rx(usize::from(*q), burst, RX_BURST),
                };
                if n == 0 {
                    continue;
                }
                moved += n;
                bursts += 1;
                let summary = graph.input().burst_mut().summary();
                counters.iface_rx(a.iface, n, summary.bytes);
                let mut lap = Lap::new(bursts % TIMED_EVERY == 0, t);
                lap.done(counters, Stage::Rx, n);
                graph.run(&ctx, Some((a.iface, summary)), &mut lap);
                let queued = graph.queued();
                if queued > 0 {
                    graph.flush(&ctx);
                    lap.done(counters, Stage::Output, queued);
                }
                t = lap.last().unwrap_or_else(rdtsc);
                counters.latency.record(t.wrapping_sub(t0), n as u64);
            }
        }
        let injected = crate::punt::inject(&ctx, &mut graph);
        if injected > 0 {
            moved += injected;
            bursts += 1;
            let mut lap = Lap::new(bursts % TIMED_EVERY == 0, t);
            lap.done(counters, Stage::Inject, injected);
            graph.run(&ctx, None, &mut lap);
            let queued = graph.queued();
            if queued > 0 {
                graph.flush(&ctx);
                lap.done(counters, Stage::Output, queued);
            }
            t = lap.last().unwrap_or_else(rdtsc);
        }
        if moved > 0 {
            bump(&counters.rx_packets, moved as u64);
            bump(&counters.busy_cycles, t.wrapping_sub(t0));
        }
        counters.last_tsc.store(t, Relaxed);
        // Past this point the worker holds nothing from older plans (see Engine::publish).
        counters.seen_version.store(plan.version, Release);
        if let Some(d) = backoff.after_poll(shared.poll, moved) {
            let rx = plan.workers.get(id).map_or(&[][..], |w| &w.rx[..]);
            let bell = shared.slow.doorbell(id);
            let work = || {
                shared.slow.inject_pending(id)
                    || shared.plan.load().version != plan.version
                    || shared.stop.load(Relaxed)
            };
            match sleeper.sleep(rx, id, bell, d, work) {
                Slept::Skipped => {}
                Slept::TimedOut => bump(&counters.sleeps, 1),
                Slept::Woken => {
                    bump(&counters.sleeps, 1);
                    bump(&counters.wakeups, 1);
                }
            }
        }
    }
    graph.output_mut().clear();
    graph.input().clear();
}
