//! What the dataplane's integration tests share: the EAL, and a rig that runs the packet
//! graph on real mbufs as a worker does, without ports (frames go in as received on an
//! interface; what the output queued, dropped or punted is read back).

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use dpdk::{Eal, Mbuf, Mempool};
use vswitch_dataplane::counters::WorkerCounters;
use vswitch_dataplane::graph::{Ctx, Graph, Lap, Meta};
use vswitch_dataplane::l2::bridge::L2Shared;
use vswitch_dataplane::l2::fdb::Fdb;
use vswitch_dataplane::l2::learn::{Clock, LearnPolicy, LearnQueues, Learner};
use vswitch_dataplane::plan::ForwardingPlan;
use vswitch_dataplane::slowpath::{PuntReason, SlowPath};
use vswitch_dataplane::{DropReason, Stage};

/// The EAL, or None when it did not start and the process is not root (DPDK's EAL may
/// need root): the test is then skipped, saying so. As root, a failure fails the test.
pub fn try_eal(args: &[String]) -> Option<Eal> {
    match Eal::init(args) {
        Ok(eal) => Some(eal),
        // SAFETY: geteuid has no preconditions and cannot fail.
        Err(e) if unsafe { libc::geteuid() } != 0 => {
            eprintln!("skipped: needs root for DPDK's EAL (as uid != 0 it failed: {e})");
            None
        }
        Err(e) => panic!("EAL init: {e}"),
    }
}

/// Worker 0's context on `plan` (a free function: the graph is borrowed apart from it).
fn ctx<'a>(
    plan: &'a ForwardingPlan,
    l2: &'a L2Shared,
    slow: &'a SlowPath,
    counters: &'a WorkerCounters,
) -> Ctx<'a> {
    Ctx {
        worker: 0,
        plan,
        l2,
        slow,
        counters,
    }
}

/// One worker's graph with its MAC table, learner, slow path and counters.
pub struct Rig {
    pub pool: Arc<Mempool>,
    pub l2: L2Shared,
    pub learner: Learner,
    pub slow: SlowPath,
    pub counters: WorkerCounters,
    pub g: Graph,
}

impl Rig {
    /// A rig taking mbufs from `pool`, with a MAC table of `fdb` entries in which each of
    /// `bridges` (id, members) learns (limit 100, age 300 s), and a slow path whose punt
    /// and inject queues hold `slow.0` and `slow.1` packets.
    pub fn new(
        pool: &Arc<Mempool>,
        fdb: usize,
        bridges: &[(u16, Vec<u16>)],
        slow: (usize, usize),
    ) -> Rig {
        let fdb = Arc::new(Fdb::new(fdb));
        let clock = Arc::new(Clock::default());
        let mut learner = Learner::new(fdb.clone(), clock.clone());
        for (b, members) in bridges {
            learner.set_policy(
                *b,
                LearnPolicy {
                    learn: true,
                    limit: 100,
                    age: 300,
                },
            );
            learner.set_members(*b, members.clone());
        }
        Rig {
            pool: pool.clone(),
            l2: L2Shared {
                fdb,
                learn: Arc::new(LearnQueues::new(1)),
                clock,
            },
            learner,
            slow: SlowPath::new(1, slow.0, slow.1),
            counters: WorkerCounters::default(),
            g: Graph::new(0),
        }
    }

    /// An mbuf from the rig's pool holding `bytes`.
    pub fn mbuf(&self, bytes: &[u8]) -> Mbuf {
        Mbuf::from_bytes(&self.pool, bytes).unwrap()
    }

    /// Puts `m` in the input vector as received on `rx_if`, with metadata `meta`.
    pub fn push_meta(&mut self, m: Mbuf, meta: Meta) {
        assert!(self.g.input().push(m, meta).is_ok());
    }

    /// Puts `m` in the input vector as received on `rx_if`.
    pub fn push(&mut self, rx_if: u16, m: Mbuf) {
        self.push_meta(
            m,
            Meta {
                rx_if,
                ..Meta::default()
            },
        );
    }

    /// Runs the graph on the input vector (per-packet metadata), as a worker does (timed),
    /// then lets the learner learn.
    pub fn run(&mut self, plan: &ForwardingPlan) {
        let ctx = ctx(plan, &self.l2, &self.slow, &self.counters);
        self.g.run(&ctx, None, &mut Lap::new(true, 0));
        assert!(self.g.input().is_empty());
        self.learner.drain(&self.l2.learn);
    }

    /// Runs the graph on `frames`, each received on its interface.
    pub fn send_each(&mut self, plan: &ForwardingPlan, frames: &[(u16, Vec<u8>)]) {
        for (rx_if, f) in frames {
            let m = self.mbuf(f);
            self.push(*rx_if, m);
        }
        self.run(plan);
    }

    /// Runs the graph on `frames` received on `rx_if`, frame by frame.
    pub fn send(&mut self, plan: &ForwardingPlan, rx_if: u16, frames: &[Vec<u8>]) {
        for f in frames {
            let m = self.mbuf(f);
            self.push(rx_if, m);
        }
        self.run(plan);
    }

    /// Runs the graph on `frames` as one burst received on `rx_if` (the whole-vector
    /// path a worker takes), then lets the learner learn.
    pub fn send_burst(&mut self, plan: &ForwardingPlan, rx_if: u16, frames: &[Vec<u8>]) {
        let mbufs = frames.iter().map(|f| self.mbuf(f)).collect();
        self.send_burst_mbufs(plan, rx_if, mbufs);
    }

    /// [`Rig::send_burst`] of mbufs as they are (offload state and all).
    pub fn send_burst_mbufs(&mut self, plan: &ForwardingPlan, rx_if: u16, mbufs: Vec<Mbuf>) {
        for m in mbufs {
            self.g.input().burst_mut().push(m).unwrap();
        }
        let ctx = ctx(plan, &self.l2, &self.slow, &self.counters);
        let summary = self.g.input().burst_mut().summary();
        self.g
            .run(&ctx, Some((rx_if, summary)), &mut Lap::new(true, 0));
        assert!(self.g.input().is_empty());
        self.learner.drain(&self.l2.learn);
    }

    /// Takes what the slow path injected and runs it through the graph as a worker does;
    /// how many.
    pub fn injected(&mut self, plan: &ForwardingPlan) -> usize {
        let ctx = ctx(plan, &self.l2, &self.slow, &self.counters);
        let n = vswitch_dataplane::punt::inject(&ctx, &mut self.g);
        self.g.run(&ctx, None, &mut Lap::new(false, 0));
        n
    }

    /// Sends what the output queued, as a worker does after a burst (here no interface
    /// has a DPDK queue: each frame is dropped as no_tx_queue).
    pub fn flush(&mut self, plan: &ForwardingPlan) {
        let ctx = ctx(plan, &self.l2, &self.slow, &self.counters);
        self.g.flush(&ctx);
    }

    /// The frames queued for `iface` (left queued).
    pub fn out(&self, iface: u16) -> Vec<Vec<u8>> {
        match self.g.output().pending(iface) {
            Some(o) => (0..o.len()).map(|i| o.data(i).to_vec()).collect(),
            None => vec![],
        }
    }

    /// The frames queued for `iface`; everything queued is then dropped.
    pub fn take(&mut self, iface: u16) -> Vec<Vec<u8>> {
        let v = self.out(iface);
        self.clear();
        v
    }

    /// Drops (frees) everything queued on the output.
    pub fn clear(&mut self) {
        self.g.output_mut().clear();
    }

    /// The offload flags of the mbufs queued for `iface`.
    pub fn flags(&self, iface: u16) -> Vec<u64> {
        match self.g.output().pending(iface) {
            Some(o) => (0..o.len()).map(|i| o.offload(i).ol_flags).collect(),
            None => vec![],
        }
    }

    /// Packets `stage` dropped for `r`.
    pub fn drops(&self, stage: Stage, r: DropReason) -> u64 {
        self.counters.snapshot().stages[stage as usize].drops[r as usize]
    }

    /// Packets every stage dropped for `r`.
    pub fn dropped(&self, r: DropReason) -> u64 {
        self.counters.snapshot().dropped(r)
    }

    /// What was punted to the slow path, taken: (reason, interface, frame).
    pub fn punted(&self) -> Vec<(PuntReason, u16, Vec<u8>)> {
        let mut v = Vec::new();
        self.slow.receive(64, |_, p| {
            v.push((p.reason, p.iface, p.mbuf.data().to_vec()))
        });
        v
    }
}
