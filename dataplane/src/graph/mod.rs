//! The packet graph: the stages a worker's packets pass through, and how vectors of packets
//! move between them (VPP's shape: a vector in, a next stage per packet out, packets handed
//! on in groups).
//!
//! ```text
//!  rx queue ──> ethernet-input ──> l2-bridge ──> output ──> tx queue
//!                    │  │  └──> ip4-forward ──────>   ^
//!                    │  │  └──> ip6-forward ──────>   ^
//!                    │  └───────(xconnect)──────────>   ^
//!                    └──> punt ──> slow path ─> inject ┘ (or back into ethernet-input)
//!
//!  ip4-forward (to a local address) ──> tunnel-decap ──> l2-bridge | ethernet-input
//!  l2-bridge, ip4-forward, ip6-forward (out of a tunnel) ──> tunnel-encap ──> output
//! ```
//!
//! Tunnels (see [`crate::tunnel`]): tunnel traffic to one of the router's addresses leaves
//! ip4-forward's local path for tunnel-decap, whose inner frames enter the tunnel
//! interface's bridge (an L2 tunnel) or ethernet-input (an addressed one); frames that a
//! bridge or the router sends out of a tunnel interface go to tunnel-encap, whose outer
//! packets are routed in the underlay VRF and leave like any routed packet.
//!
//! A bridge's routed interface (BVI) joins l2-bridge and the router both ways: l2-bridge
//! hands frames to the BVI's MAC to ip4-forward / ip6-forward (ARP to punt) as received on
//! the BVI, and what the router or inject sends out of the BVI enters l2-bridge as received
//! on it (bridge -> ip4-forward -> bridge takes two rounds).
//!
//! Each stage is a module of its own whose top states its contract: the [`Meta`] fields
//! it reads and writes, the tables it reads, its drops. A stage takes its pending
//! [`Vector`] and hands each packet on to the next stage's vector (or queues it on the
//! output, or drops and counts it). [`Graph::run`] calls every stage with pending packets,
//! in graph order, until none are left, so a stage may send packets back to an earlier one
//! (after decapsulation, a frame visits ethernet-input again); a packet still moving after
//! [`MAX_ROUNDS`] is dropped as `graph_loop`. Dispatch is a fixed sequence of calls per
//! round and a `match` on the next stage per packet: no `dyn` per packet or per vector. A vector mixes interfaces freely: every stage
//! reads the input interface from each packet's metadata.
//!
//! Adding a stage: a module with its `run`, a [`Stage`] variant, its pending vector in
//! [`Graph`] and its call in [`Graph::run`].
//!
//! Thread safety: a `Graph` is one worker's own (no sharing); stages read the published
//! plan and the shared tables through [`Ctx`].

pub mod meta;

use dpdk::{rdtsc, Burst, BurstSummary, Mbuf, MAX_BURST};

pub use meta::{Csum, Gso, Meta};

use crate::counters::WorkerCounters;
use crate::l2::bridge::{BridgeScratch, L2Shared};
use crate::l3::forward::Check;
use crate::output::Output;
use crate::plan::{ForwardingPlan, IfIndex};
use crate::slowpath::SlowPath;
use crate::tunnel::encap::EncapVector;

/// Most times the graph's stages are run for one input vector.
pub const MAX_ROUNDS: usize = 4;

/// The stages, for counters and introspection (in graph order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Stage {
    /// Receiving bursts from DPDK rx queues.
    Rx = 0,
    EthernetInput = 1,
    L2Bridge = 2,
    Ip4Forward = 3,
    Ip6Forward = 4,
    /// Tunnel traffic to the router's own addresses, decapsulated.
    TunnelDecap = 5,
    /// Frames into tunnels, encapsulated and routed in the underlay.
    TunnelEncap = 6,
    Punt = 7,
    /// Packets the slow path sends, taken from this worker's inject ring.
    Inject = 8,
    /// Transmitting output buffers on tx paths.
    Output = 9,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::Rx,
        Stage::EthernetInput,
        Stage::L2Bridge,
        Stage::Ip4Forward,
        Stage::Ip6Forward,
        Stage::TunnelDecap,
        Stage::TunnelEncap,
        Stage::Punt,
        Stage::Inject,
        Stage::Output,
    ];

    /// The name `vsctl runtime` shows.
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Rx => "rx",
            Stage::EthernetInput => "ethernet-input",
            Stage::L2Bridge => "l2-bridge",
            Stage::Ip4Forward => "ip4-forward",
            Stage::Ip6Forward => "ip6-forward",
            Stage::TunnelDecap => "tunnel-decap",
            Stage::TunnelEncap => "tunnel-encap",
            Stage::Punt => "punt",
            Stage::Inject => "inject",
            Stage::Output => "output",
        }
    }
}

/// A vector of packets waiting for one stage, with their metadata (a parallel array).
pub struct Vector {
    pub(crate) pkts: Burst,
    pub(crate) meta: [Meta; MAX_BURST],
}

impl Default for Vector {
    fn default() -> Self {
        Vector {
            pkts: Burst::new(),
            meta: [Meta::default(); MAX_BURST],
        }
    }
}

impl Vector {
    /// A vector on the heap (vectors are swapped between stages by pointer).
    pub fn boxed() -> Box<Vector> {
        Box::default()
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.pkts.len()
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.pkts.is_empty()
    }

    /// Appends a packet; gives it back when the vector is full.
    #[inline(always)]
    pub fn push(&mut self, m: Mbuf, meta: Meta) -> Result<(), Mbuf> {
        let i = self.pkts.len();
        self.pkts.push(m)?;
        self.meta[i] = meta;
        Ok(())
    }

    /// The packets, for receiving into.
    #[inline(always)]
    pub fn burst_mut(&mut self) -> &mut Burst {
        &mut self.pkts
    }

    /// Keeps the packets whose `keep` entry is true (with their metadata), in order, and
    /// frees the others; returns how many were freed.
    pub fn retain(&mut self, keep: &[bool]) -> usize {
        let n = self.pkts.len();
        let mut kept = 0;
        for i in 0..n {
            if keep.get(i).copied().unwrap_or(true) {
                self.meta[kept] = self.meta[i];
                kept += 1;
            }
        }
        self.pkts.retain(keep)
    }

    /// Frees every packet.
    pub fn clear(&mut self) {
        self.pkts.clear();
    }
}

/// Where a stage hands a packet on to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Next {
    EthernetInput,
    L2Bridge,
    Ip4Forward,
    Ip6Forward,
    TunnelDecap,
    Punt,
    /// Out of `meta.tx_if`.
    Output,
}

/// What stages read besides their vectors: the plan, shared tables, this worker's counters.
pub struct Ctx<'a> {
    pub worker: usize,
    pub plan: &'a ForwardingPlan,
    pub l2: &'a L2Shared,
    pub slow: &'a SlowPath,
    pub counters: &'a WorkerCounters,
}

/// Counts a burst's stage calls and, for the bursts that are timed (one in
/// [`TIMED_EVERY`](crate::counters::TIMED_EVERY)), the cycles from one stage's end to the
/// next's.
pub struct Lap {
    on: bool,
    t: u64,
}

impl Lap {
    /// A burst that started at TSC `t` (when `on`: else `t` is not used).
    #[inline(always)]
    pub fn new(on: bool, t: u64) -> Lap {
        Lap { on, t }
    }

    /// `stage` was called with `packets` packets and has returned.
    #[inline(always)]
    pub fn done(&mut self, c: &WorkerCounters, stage: Stage, packets: usize) {
        c.stage(stage, packets);
        if self.on {
            let now = rdtsc();
            c.stage_cycles(stage, packets, now.wrapping_sub(self.t));
            self.t = now;
        }
    }

    /// The TSC at the last timed stage's end, if this burst is timed.
    #[inline(always)]
    pub fn last(&self) -> Option<u64> {
        self.on.then_some(self.t)
    }
}

/// One worker's graph: each stage's pending vector and per-worker state.
pub struct Graph {
    pub(crate) input: Box<Vector>,
    pub(crate) bridge: Box<Vector>,
    pub(crate) ip4: Box<Vector>,
    pub(crate) ip6: Box<Vector>,
    pub(crate) decap: Box<Vector>,
    /// Frames for tunnels, each with its VTEP; and an empty one tunnel-encap swaps in
    /// while it works.
    pub(crate) encap: Box<EncapVector>,
    pub(crate) encap_spare: Option<Box<EncapVector>>,
    /// The IPv4 Identification of this worker's next outer packet without DF.
    pub(crate) outer_ident: u16,
    pub(crate) punt: Box<Vector>,
    /// An empty vector a stage swaps with its pending one while it works (so that it can
    /// hand packets on through the graph meanwhile); None only during that time.
    pub(crate) spare: Option<Box<Vector>>,
    pub(crate) bridge_scratch: BridgeScratch,
    /// The bridge vector's probes were computed (and prefetched) by ethernet-input.
    pub(crate) bridge_probed: bool,
    /// Whether the bridge vector is one train (set by ethernet-input, taken by l2-bridge).
    pub(crate) bridge_train: Train,
    /// The input vector goes out of this interface whole (its bytes beside it): a
    /// cross-connected burst, sent by [`Graph::flush`].
    pub(crate) xconnect: Option<(IfIndex, u64)>,
    pub(crate) output: Output,
    /// ip4-forward's and ip6-forward's first-pass results, kept (with room for a whole
    /// vector) so that a vector does not start by filling a MAX_BURST-long array.
    pub(crate) ip4_checks: Vec<Check<u32>>,
    pub(crate) ip6_checks: Vec<Check<u128>>,
    /// ip4-forward's and ip6-forward's FIB lookups in progress (room for a whole vector).
    pub(crate) fib_walks: Vec<crate::l3::fib::Walk>,
    /// NAT's parsed packets of a vector (room for a whole one).
    pub(crate) nat_scratch: crate::nat::translate::Scratch,
}

/// Whether the bridge vector is one train: a received burst of one member whose frames
/// all have the first one's addresses and VLAN (ethernet-input tells), which l2-bridge
/// decides once, by its first frame (`send_train` in [`crate::l2::bridge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Train {
    #[default]
    No,
    /// One train; its frames may carry offload state (each is queued with its own).
    Frames,
    /// One train with no offload state anywhere: it may be sent as it is, a burst of
    /// `bytes` whose longest frame is `max_len` bytes.
    Burst { bytes: u64, max_len: u32 },
}

impl Graph {
    /// Allocated once, when the worker starts.
    pub fn new(worker: usize) -> Graph {
        Graph {
            input: Vector::boxed(),
            bridge: Vector::boxed(),
            ip4: Vector::boxed(),
            ip6: Vector::boxed(),
            decap: Vector::boxed(),
            encap: EncapVector::boxed(),
            encap_spare: Some(EncapVector::boxed()),
            outer_ident: 0,
            punt: Vector::boxed(),
            spare: Some(Vector::boxed()),
            bridge_scratch: BridgeScratch::new(worker),
            bridge_probed: false,
            bridge_train: Train::No,
            xconnect: None,
            output: Output::new(),
            ip4_checks: Vec::with_capacity(MAX_BURST),
            ip6_checks: Vec::with_capacity(MAX_BURST),
            fib_walks: Vec::with_capacity(MAX_BURST),
            nat_scratch: crate::nat::translate::Scratch::with_room(),
        }
    }

    /// The vector ethernet-input takes next (received packets go here).
    pub fn input(&mut self) -> &mut Vector {
        &mut self.input
    }

    /// The output buffers (frames queued and not yet transmitted).
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// The output buffers, to flush or clear.
    pub fn output_mut(&mut self) -> &mut Output {
        &mut self.output
    }

    /// Runs every stage with pending packets until none are left (at most [`MAX_ROUNDS`]
    /// rounds); frames end queued on the output, punted or dropped. `rx`: every packet of
    /// the input vector arrived on this interface, and this is the vector's summary (a
    /// received burst; their metadata is not filled in yet), or None when each packet's
    /// `meta.rx_if` says.
    pub fn run(&mut self, ctx: &Ctx, mut rx: Option<(IfIndex, BurstSummary)>, lap: &mut Lap) {
        for _ in 0..MAX_ROUNDS {
            if !self.input.is_empty() {
                let n = self.input.len();
                crate::input::run(ctx, self, rx.take());
                lap.done(ctx.counters, Stage::EthernetInput, n);
                if self.xconnect.is_some() {
                    // The input vector is the output's now; nothing else is pending.
                    return;
                }
            }
            if !self.bridge.is_empty() {
                let n = self.bridge.len();
                crate::l2::bridge::run(ctx, self);
                lap.done(ctx.counters, Stage::L2Bridge, n);
            }
            if !self.ip4.is_empty() {
                let n = self.ip4.len();
                crate::l3::ip4::run(ctx, self);
                lap.done(ctx.counters, Stage::Ip4Forward, n);
            }
            if !self.ip6.is_empty() {
                let n = self.ip6.len();
                crate::l3::ip6::run(ctx, self);
                lap.done(ctx.counters, Stage::Ip6Forward, n);
            }
            if !self.decap.is_empty() {
                let n = self.decap.len();
                crate::tunnel::decap::run(ctx, self);
                lap.done(ctx.counters, Stage::TunnelDecap, n);
            }
            if !self.encap.is_empty() {
                let n = self.encap.len();
                crate::tunnel::encap::run(ctx, self);
                lap.done(ctx.counters, Stage::TunnelEncap, n);
            }
            if !self.punt.is_empty() {
                let n = self.punt.len();
                crate::punt::run(ctx, self);
                lap.done(ctx.counters, Stage::Punt, n);
            }
            if self.input.is_empty()
                && self.bridge.is_empty()
                && self.ip4.is_empty()
                && self.ip6.is_empty()
                && self.decap.is_empty()
                && self.encap.is_empty()
                && self.punt.is_empty()
            {
                return;
            }
        }
        self.drop_leftovers(ctx);
    }

    /// Frames queued or set aside for the output since the last flush.
    pub fn queued(&self) -> usize {
        self.output.queued() + self.xconnect.map_or(0, |_| self.input.len())
    }

    /// The output stage: transmits what is queued, then a cross-connected input vector.
    pub fn flush(&mut self, ctx: &Ctx) {
        self.output.flush(ctx);
        if let Some((iface, bytes)) = self.xconnect.take() {
            self.output
                .send_burst(ctx, iface, &mut self.input.pkts, bytes);
        }
    }

    #[cold]
    fn drop_leftovers(&mut self, ctx: &Ctx) {
        use crate::counters::DropReason::GraphLoop;
        for v in [
            &mut self.input,
            &mut self.bridge,
            &mut self.ip4,
            &mut self.ip6,
            &mut self.decap,
            &mut self.encap.v,
            &mut self.punt,
        ] {
            for i in 0..v.len() {
                let m = v.meta[i];
                ctx.counters
                    .drop_packets(Stage::EthernetInput, GraphLoop, m.rx_if, 1);
            }
            v.clear();
        }
    }

    /// Hands packet `m` on to `next` (queued on the output when `next` is Output). A full
    /// vector drops it (`drop_reason` in `stage`): callers never produce more packets than
    /// a vector holds, so this happens only with flood copies beyond a vector.
    #[inline(always)]
    pub(crate) fn hand_on(&mut self, ctx: &Ctx, stage: Stage, next: Next, m: Mbuf, meta: Meta) {
        let v = match next {
            Next::EthernetInput => &mut self.input,
            Next::L2Bridge => {
                self.bridge_probed = false;
                self.bridge_train = Train::No;
                &mut self.bridge
            }
            Next::Ip4Forward => &mut self.ip4,
            Next::Ip6Forward => &mut self.ip6,
            Next::TunnelDecap => &mut self.decap,
            Next::Punt => &mut self.punt,
            Next::Output => {
                self.output.queue(ctx, meta.tx_if, m, &meta);
                return;
            }
        };
        if let Err(m) = v.push(m, meta) {
            ctx.counters
                .drop_packets(stage, crate::counters::DropReason::GraphLoop, meta.rx_if, 1);
            drop(m);
        }
    }
}
