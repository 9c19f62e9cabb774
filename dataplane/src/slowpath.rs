//! The slow path's rings: packets workers punt to the control side, and packets the control
//! side injects for workers to send.
//!
//! Each worker has two bounded rings: a punt ring (worker -> slow-path thread: packets the
//! fast path does not handle, e.g. ARP/ND for the router, ICMP errors to generate) and an
//! inject ring (slow-path thread -> worker: replies, requests, errors the slow path built),
//! which the worker drains into its own tx queues once per poll. Neither side ever waits
//! for the other: a full ring refuses the packet and hands it back.
//!
//! Thread safety (who writes and reads what):
//! - punt ring of worker `w`: pushed only by worker `w` ([`SlowPath::punt`]); popped only by
//!   the slow-path thread ([`SlowPath::receive`]).
//! - inject ring of worker `w`: pushed only by the slow-path thread ([`SlowPath::inject`]);
//!   popped only by worker `w` ([`SlowPath::drain_injected`]).
//! - counters of worker `w`, side "worker" (`punted` per reason, `drained`): written only by
//!   worker `w`; side "control" (`received`, `injected`, `inject_full`): written only by the
//!   slow-path thread. Each side's block is cache-line aligned, so neither side writes a
//!   line the other writes. Writes are single-writer relaxed load + store (no locked
//!   instruction, as `cell::bump`); [`SlowPath::stats`] reads them with relaxed loads
//!   from any thread.
//! - the round-robin cursor of [`SlowPath::receive`]: slow-path thread only.
//!
//! The rings are `crossbeam_queue::ArrayQueue`s (bounded, lock-free, no allocation after
//! creation); they are multi-producer / multi-consumer, so breaking the one-writer rules
//! above is still memory-safe: it can only lose counts and reorder packets. A hand-written
//! single-producer ring measured faster per packet (push + pop ~1-2.5 ns against ~11-20 ns,
//! one thread; ArrayQueue pays a CAS per push and pop), but punts are exceptions, not line
//! rate, and the cost a worker pays on every poll, looking at an empty inject ring, is the
//! same for both (~0.6 ns, see `drain_injected`); so no unsafe ring of our own for now.
//!
//! Shutdown: whatever the rings still hold is freed when the `SlowPath` drops, so it must
//! drop before the mempools its mbufs came from.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crossbeam_queue::ArrayQueue;
use dpdk::Mbuf;

use crate::cell::bump;

/// Default depth of each worker's punt ring.
pub const DEFAULT_PUNT_RING: usize = 1024;
/// Default depth of each worker's inject ring.
pub const DEFAULT_INJECT_RING: usize = 1024;

/// Why a worker handed a packet to the slow path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PuntReason {
    /// Punted by tests and bring-up tools (the control side's `Reflect` handler echoes
    /// it).
    Test = 0,
    /// An ARP packet on a routed interface.
    Arp = 1,
    /// An IP packet for the router itself (its addresses, broadcast, multicast).
    Local = 2,
    /// An IP packet whose next hop is not resolved yet (ARP / ND needed).
    Resolve = 3,
    /// An IP packet whose TTL / hop limit ran out here (ICMP time exceeded).
    TtlExceeded = 4,
    /// An IP packet over the output MTU that may not be fragmented (ICMP fragmentation
    /// needed, ICMPv6 packet too big).
    FragNeeded = 5,
    /// A new flow to a service that has no backend taking new flows (ICMP port
    /// unreachable, as kube-proxy's reject rule answers).
    NoBackend = 6,
}

impl PuntReason {
    /// Every reason, in counter order.
    pub const ALL: [PuntReason; 7] = [
        PuntReason::Test,
        PuntReason::Arp,
        PuntReason::Local,
        PuntReason::Resolve,
        PuntReason::TtlExceeded,
        PuntReason::FragNeeded,
        PuntReason::NoBackend,
    ];

    /// The name shown in stats and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            PuntReason::Test => "test",
            PuntReason::Arp => "arp",
            PuntReason::Local => "local",
            PuntReason::Resolve => "resolve",
            PuntReason::TtlExceeded => "ttl_exceeded",
            PuntReason::FragNeeded => "frag_needed",
            PuntReason::NoBackend => "no_backend",
        }
    }
}

const N_REASONS: usize = PuntReason::ALL.len();

/// A packet a worker handed to the slow path.
#[derive(Debug)]
pub struct Punted {
    pub mbuf: Mbuf,
    /// Logical index of the interface it arrived on.
    pub iface: u16,
    pub reason: PuntReason,
}

/// A packet for a worker to send.
#[derive(Debug)]
pub struct Injected {
    pub mbuf: Mbuf,
    /// Logical index of the interface to send it out of, or (`as_received`) that it is
    /// handled as if received on: it then enters the graph at ethernet-input.
    pub iface: u16,
    pub as_received: bool,
}

/// Counters only worker `w` writes.
#[repr(align(128))]
#[derive(Debug, Default)]
struct WorkerSide {
    punted: [AtomicU64; N_REASONS],
    /// Injected packets the worker took off its inject ring.
    drained: AtomicU64,
}

/// Counters only the slow-path thread writes, about worker `w`'s rings.
#[repr(align(128))]
#[derive(Debug, Default)]
struct ControlSide {
    received: AtomicU64,
    injected: AtomicU64,
    inject_full: AtomicU64,
}

#[derive(Debug)]
struct Rings {
    punt: ArrayQueue<Punted>,
    inject: ArrayQueue<Injected>,
    worker: WorkerSide,
    control: ControlSide,
    /// Rung after an inject, so a sleeping worker sends it at once.
    bell: crate::poll::Doorbell,
}

/// Every worker's punt and inject rings, shared (in an `Arc`) by the workers and the
/// slow-path thread. See the module documentation for who may call what.
#[derive(Debug)]
pub struct SlowPath {
    rings: Box<[Rings]>,
    /// The worker `receive` starts from next (slow-path thread only).
    next: AtomicUsize,
}

impl SlowPath {
    /// Rings for `workers` workers, each punt ring `punt` deep and each inject ring
    /// `inject` deep (at least 1). The only allocation the slow path makes.
    pub fn new(workers: usize, punt: usize, inject: usize) -> SlowPath {
        SlowPath {
            rings: (0..workers)
                .map(|_| Rings {
                    punt: ArrayQueue::new(punt.max(1)),
                    inject: ArrayQueue::new(inject.max(1)),
                    worker: WorkerSide::default(),
                    control: ControlSide::default(),
                    bell: crate::poll::Doorbell::default(),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    // ---- worker side: worker `w` only ----

    /// Hands `p` to the slow path; never blocks. `Err(p)` when worker `w`'s punt ring is full
    /// (or `w` is out of range): the caller frees it (drops it) and counts it under its own
    /// `punt_full` drop reason.
    #[inline]
    pub fn punt(&self, w: usize, p: Punted) -> Result<(), Punted> {
        let Some(r) = self.rings.get(w) else {
            return Err(p);
        };
        let reason = p.reason as usize;
        r.punt.push(p)?;
        bump(&r.worker.punted[reason], 1);
        Ok(())
    }

    /// Takes up to `max` packets off worker `w`'s inject ring, oldest first, handing each to
    /// `f` (which queues it for tx, or drops and counts it). Returns how many it took.
    #[inline]
    pub fn drain_injected(&self, w: usize, max: usize, mut f: impl FnMut(Injected)) -> usize {
        let Some(r) = self.rings.get(w) else {
            return 0;
        };
        // The common case, every poll: an empty ring. is_empty is two plain loads; an empty
        // pop also runs a SeqCst fence (measured ~3 ns against ~0.6 ns).
        if r.inject.is_empty() {
            return 0;
        }
        let mut n = 0;
        while n < max {
            let Some(i) = r.inject.pop() else { break };
            n += 1;
            f(i);
        }
        if n > 0 {
            bump(&r.worker.drained, n as u64);
        }
        n
    }

    /// Worker `w`'s doorbell (the worker sleeps on it; see [`crate::poll::Sleeper`]).
    pub fn doorbell(&self, w: usize) -> Option<&crate::poll::Doorbell> {
        self.rings.get(w).map(|r| &r.bell)
    }

    /// Whether worker `w` has injected packets to send (two plain loads).
    pub fn inject_pending(&self, w: usize) -> bool {
        self.rings.get(w).is_some_and(|r| !r.inject.is_empty())
    }

    /// Wakes every sleeping worker (a new plan, a stop).
    pub fn wake_workers(&self) {
        for r in self.rings.iter() {
            r.bell.ring();
        }
    }

    // ---- control side: the slow-path thread only ----

    /// Takes up to `max` punted packets, one worker at a time in turn (a worker with a
    /// backlog cannot starve the others, and each call starts where the last one stopped),
    /// handing each to `f` with the index of the worker that punted it. Packets from one
    /// worker arrive in the order it punted them. Returns how many it took.
    pub fn receive(&self, max: usize, mut f: impl FnMut(usize, Punted)) -> usize {
        let n = self.rings.len();
        if n == 0 {
            return 0;
        }
        let mut w = self.next.load(Relaxed) % n;
        let (mut got, mut empty) = (0, 0);
        // Stop after a full turn of empty rings.
        while got < max && empty < n {
            let r = &self.rings[w];
            match r.punt.pop() {
                Some(p) => {
                    got += 1;
                    empty = 0;
                    bump(&r.control.received, 1);
                    f(w, p);
                }
                None => empty += 1,
            }
            w = (w + 1) % n;
        }
        self.next.store(w, Relaxed);
        got
    }

    /// Queues `i` for worker `w` to send. `Err(i)` when its inject ring is full (counted
    /// under that worker's `inject_full`) or `w` is out of range (not counted); the packet
    /// comes back to the caller, which may try another worker or drop it (dropping frees
    /// the mbuf).
    ///
    /// Which worker: a reply goes back through the worker that punted its request (it polls
    /// that interface and has a tx queue there). For packets the slow path originates, the
    /// caller picks a worker that has a tx queue on `i.iface` in the current plan (every
    /// worker has one on most ports; a pcap file has one queue in all).
    pub fn inject(&self, w: usize, i: Injected) -> Result<(), Injected> {
        let Some(r) = self.rings.get(w) else {
            return Err(i);
        };
        match r.inject.push(i) {
            Ok(()) => {
                bump(&r.control.injected, 1);
                r.bell.ring();
                Ok(())
            }
            Err(i) => {
                bump(&r.control.inject_full, 1);
                Err(i)
            }
        }
    }

    /// A copy of the counters and ring depths of every worker (any thread).
    pub fn stats(&self) -> SlowPathStats {
        SlowPathStats {
            workers: self
                .rings
                .iter()
                .map(|r| RingStats {
                    punted: std::array::from_fn(|i| r.worker.punted[i].load(Relaxed)),
                    received: r.control.received.load(Relaxed),
                    injected: r.control.injected.load(Relaxed),
                    inject_full: r.control.inject_full.load(Relaxed),
                    drained: r.worker.drained.load(Relaxed),
                    punt_depth: r.punt.len(),
                    inject_depth: r.inject.len(),
                })
                .collect(),
        }
    }
}

/// One worker's slow-path rings, as counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Packets the worker punted (accepted by its ring), per [`PuntReason`]. Punts refused
    /// by a full ring are the worker's `punt_full` drops.
    pub punted: [u64; N_REASONS],
    /// Punted packets the slow-path thread took.
    pub received: u64,
    /// Packets the slow-path thread queued for the worker.
    pub injected: u64,
    /// Packets refused because the worker's inject ring was full.
    pub inject_full: u64,
    /// Injected packets the worker took to send.
    pub drained: u64,
    /// Packets waiting in the punt ring.
    pub punt_depth: usize,
    /// Packets waiting in the inject ring.
    pub inject_depth: usize,
}

impl RingStats {
    /// Punted packets, all reasons.
    pub fn punted_total(&self) -> u64 {
        self.punted.iter().sum()
    }

    /// Field-wise sum.
    pub fn plus(self, o: RingStats) -> RingStats {
        RingStats {
            punted: std::array::from_fn(|i| self.punted[i] + o.punted[i]),
            received: self.received + o.received,
            injected: self.injected + o.injected,
            inject_full: self.inject_full + o.inject_full,
            drained: self.drained + o.drained,
            punt_depth: self.punt_depth + o.punt_depth,
            inject_depth: self.inject_depth + o.inject_depth,
        }
    }
}

/// The slow path's counters, per worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowPathStats {
    pub workers: Vec<RingStats>,
}

impl SlowPathStats {
    /// All workers together.
    pub fn total(&self) -> RingStats {
        self.workers
            .iter()
            .fold(RingStats::default(), |a, &b| a.plus(b))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dpdk::Mempool;

    use super::*;

    /// The test process's shared EAL's pool, or None when the test is to be skipped.
    fn pool(name: &str, n: u32) -> Option<Arc<Mempool>> {
        dpdk::test_eal::try_pool(name, n)
    }

    /// A 60-byte packet whose first 8 bytes are `seq`.
    fn pkt(pool: &Mempool, seq: u64) -> Mbuf {
        let mut b = [0u8; 60];
        b[..8].copy_from_slice(&seq.to_le_bytes());
        Mbuf::from_bytes(pool, &b).unwrap()
    }

    fn seq(m: &Mbuf) -> u64 {
        u64::from_le_bytes(m.data()[..8].try_into().unwrap())
    }

    fn punted(pool: &Mempool, seq: u64, iface: u16) -> Punted {
        Punted {
            mbuf: pkt(pool, seq),
            iface,
            reason: PuntReason::Test,
        }
    }

    #[test]
    fn reason_names_are_unique_snake_case() {
        let mut names: Vec<_> = PuntReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), PuntReason::ALL.len());
        for (i, r) in PuntReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
        assert_eq!(std::mem::align_of::<WorkerSide>(), 128);
        assert_eq!(std::mem::align_of::<ControlSide>(), 128);
    }

    #[test]
    fn punts_arrive_in_order_and_a_full_ring_refuses() {
        let Some(pool) = pool("sp_punt", 64) else {
            return;
        };
        let base = pool.in_use();
        let sp = SlowPath::new(1, 4, 4);
        for s in 0..4 {
            sp.punt(0, punted(&pool, s, 7)).unwrap();
        }
        let back = sp.punt(0, punted(&pool, 4, 7)).unwrap_err();
        assert_eq!(seq(&back.mbuf), 4);
        drop(back);
        assert!(sp.punt(1, punted(&pool, 5, 7)).is_err()); // no such worker
        let t = sp.stats().total();
        assert_eq!((t.punted_total(), t.punt_depth), (4, 4));

        let mut got = Vec::new();
        assert_eq!(
            sp.receive(3, |w, p| got.push((w, p.iface, seq(&p.mbuf)))),
            3
        );
        assert_eq!(
            sp.receive(10, |w, p| got.push((w, p.iface, seq(&p.mbuf)))),
            1
        );
        assert_eq!(got, [(0, 7, 0), (0, 7, 1), (0, 7, 2), (0, 7, 3)]);
        assert_eq!(sp.receive(10, |_, _| unreachable!()), 0);
        let t = sp.stats().total();
        assert_eq!((t.received, t.punt_depth), (4, 0));
        assert_eq!(pool.in_use(), base);
    }

    #[test]
    fn receive_takes_workers_in_turn() {
        let Some(pool) = pool("sp_fair", 64) else {
            return;
        };
        let sp = SlowPath::new(3, 16, 1);
        for s in 0..6 {
            sp.punt(0, punted(&pool, s, 0)).unwrap();
        }
        sp.punt(2, punted(&pool, 100, 2)).unwrap();
        let mut got = Vec::new();
        sp.receive(4, |w, p| got.push((w, seq(&p.mbuf))));
        // Worker 0's backlog does not hold back worker 2's packet.
        assert_eq!(got, [(0, 0), (2, 100), (0, 1), (0, 2)]);
        got.clear();
        sp.receive(usize::MAX, |w, p| got.push((w, seq(&p.mbuf))));
        assert_eq!(got, [(0, 3), (0, 4), (0, 5)]);
        assert_eq!(sp.stats().workers[2].received, 1);
    }

    #[test]
    fn injects_drain_in_order_bounded_by_max_and_a_full_ring_is_counted() {
        let Some(pool) = pool("sp_inject", 64) else {
            return;
        };
        let base = pool.in_use();
        let sp = SlowPath::new(2, 1, 3);
        for s in 0..3 {
            let i = Injected {
                mbuf: pkt(&pool, s),
                iface: 5,
                as_received: false,
            };
            sp.inject(1, i).unwrap();
        }
        let full = sp
            .inject(
                1,
                Injected {
                    mbuf: pkt(&pool, 3),
                    iface: 5,
                    as_received: false,
                },
            )
            .unwrap_err();
        assert_eq!(seq(&full.mbuf), 3);
        drop(full);
        let s = sp.stats().workers[1];
        assert_eq!((s.injected, s.inject_full, s.inject_depth), (3, 1, 3));

        let mut got = Vec::new();
        assert_eq!(sp.drain_injected(0, 10, |_| unreachable!()), 0);
        assert_eq!(
            sp.drain_injected(1, 2, |i| got.push((i.iface, seq(&i.mbuf)))),
            2
        );
        assert_eq!(got, [(5, 0), (5, 1)]);
        assert_eq!(sp.drain_injected(1, 0, |_| unreachable!()), 0);
        // Whatever is left in a ring is freed with the SlowPath.
        drop(sp);
        assert_eq!(pool.in_use(), base);
    }

    /// Two worker threads punt as fast as the rings take them while this thread receives:
    /// every packet arrives exactly once, in its worker's order.
    #[test]
    fn concurrent_punts_are_received_once_in_order() {
        const N: u64 = 50_000;
        let Some(pool) = pool("sp_stress", 2048) else {
            return;
        };
        let base = pool.in_use();
        let sp = Arc::new(SlowPath::new(2, 256, 1));
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (sp, pool) = (sp.clone(), pool.clone());
                std::thread::spawn(move || {
                    let mut refused = 0u64;
                    for s in 0..N {
                        let mut p = punted(&pool, s, w as u16);
                        while let Err(back) = sp.punt(w, p) {
                            refused += 1;
                            p = back;
                            std::thread::yield_now();
                        }
                    }
                    refused
                })
            })
            .collect();
        let mut next = [0u64; 2];
        while next.iter().sum::<u64>() < 2 * N {
            let n = sp.receive(64, |w, p| {
                assert_eq!(p.iface as usize, w);
                assert_eq!(seq(&p.mbuf), next[w], "worker {w} out of order");
                next[w] += 1;
            });
            if n == 0 {
                std::thread::yield_now();
            }
        }
        for w in workers {
            w.join().unwrap();
        }
        let s = sp.stats();
        for r in &s.workers {
            assert_eq!((r.punted_total(), r.received, r.punt_depth), (N, N, 0));
        }
        assert_eq!(pool.in_use(), base);
    }
}
