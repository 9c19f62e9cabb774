//! The per-lcore poll loop: for each assigned rx queue, receive a burst and send it where
//! the plan's `Output` says (out of a cross-connected port's tx queue, into the bridge
//! stage, or dropped), counting every packet that does not leave.
//!
//! Reads: the current [`ForwardingPlan`] (once per poll). Writes: this worker's
//! [`WorkerCounters`] only. Never blocks, allocates or takes a lock; sleeps only when
//! idle in adaptive mode.

use std::sync::atomic::Ordering::{Relaxed, Release};

use dpdk::{rdtsc, Burst, PortQueue};

use crate::counters::{bump, DropReason, WorkerCounters};
use crate::engine::Shared;
use crate::l2::bridge;
use crate::plan::Output;
use crate::poll::Backoff;

/// Packets taken from one rx queue per poll.
pub const RX_BURST: usize = 32;
/// Tx attempts for one burst while the device keeps taking packets.
const TX_TRIES: usize = 8;

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
    let mut burst = Burst::new();
    let mut l2w = bridge::L2Worker::new(id);
    let mut backoff = Backoff::default();
    let start = rdtsc();
    counters.start_tsc.store(start, Relaxed);
    while !shared.stop.load(Relaxed) {
        let plan = plan_cache.load();
        // One TSC read at the start of the poll and one after each forwarded burst (a read
        // costs ~30 cycles here): latency is poll start -> tx done, busy time is poll start
        // -> last tx.
        let t0 = rdtsc();
        let mut t_last = t0;
        let mut moved = 0;
        if let Some(mine) = plan.workers.get(id) {
            for a in &mine.rx {
                // SAFETY: a.rxq is in this worker's own part of a published plan. By the
                // contract of Engine::publish (the only way a plan reaches a worker; see
                // plan.rs, "Queue ownership"), no other worker's plan, current or one a
                // worker may still be using, names this rx queue, and its port stays open
                // until every worker has finished a poll with a plan without it.
                let n = unsafe { burst.rx(a.rxq, RX_BURST) };
                if n == 0 {
                    continue;
                }
                moved += n;
                let bytes = burst.bytes();
                counters.port_rx(a.rxq.port(), n, bytes);
                match a.out {
                    // SAFETY: txq is this worker's own tx queue of the output port, open
                    // as long as this plan is in use (Engine::publish's contract).
                    Output::Port(txq) => unsafe { transmit(&mut burst, txq, bytes, counters) },
                    Output::Bridge => {
                        bridge::switch_burst(
                            &mut burst,
                            a.rxq.port(),
                            plan,
                            &shared.l2,
                            &mut l2w,
                            counters,
                        );
                        // SAFETY: mine.tx holds this worker's own tx queue of each port,
                        // open as long as this plan is in use (Engine::publish's contract).
                        unsafe { bridge::flush(&mut l2w, &mine.tx, counters) };
                    }
                    Output::Drop(reason) => {
                        counters.drop_packets(reason, a.rxq.port(), n as u64);
                        burst.clear();
                    }
                }
                t_last = rdtsc();
                counters.latency.record(t_last.wrapping_sub(t0), n as u64);
            }
        }
        if moved > 0 {
            bump(&counters.rx_packets, moved as u64);
            bump(&counters.busy_cycles, t_last.wrapping_sub(t0));
        }
        counters.last_tsc.store(t_last, Relaxed);
        // Past this point the worker holds nothing from older plans (see Engine::publish).
        counters.seen_version.store(plan.version, Release);
        if let Some(d) = backoff.after_poll(shared.poll, moved) {
            std::thread::sleep(d);
        }
    }
}

/// Sends the whole burst out of `txq`, retrying while the device makes progress; what it
/// will not take is freed and counted as tx_full.
///
/// # Safety
/// As for [`Burst::tx`]: no other thread uses `txq` meanwhile and its port is open.
#[inline]
pub(crate) unsafe fn transmit(
    burst: &mut Burst,
    txq: PortQueue,
    offered: u64,
    counters: &WorkerCounters,
) {
    let mut sent = 0;
    for _ in 0..TX_TRIES {
        // SAFETY: the caller's contract is Burst::tx's.
        let n = unsafe { burst.tx(txq) };
        sent += n;
        if burst.is_empty() || n == 0 {
            break;
        }
    }
    bump(&counters.tx_packets, sent as u64);
    if burst.is_empty() {
        counters.port_tx(txq.port(), sent, offered);
    } else {
        counters.port_tx(txq.port(), sent, offered - burst.bytes());
        counters.drop_packets(DropReason::TxFull, txq.port(), burst.len() as u64);
        burst.clear();
    }
}
