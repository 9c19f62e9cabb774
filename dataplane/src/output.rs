//! output: frames queued per output interface during a poll and transmitted on each
//! interface's tx path ([`Tx`]) once the poll's stages are done.
//!
//! Up to [`SLOTS`] interfaces have frames pending at once (a slot each, found through a
//! per-interface index); a full slot, or a frame for one more interface when every slot is
//! taken, transmits early. A cross-connected burst is queued as a whole (pointer copies).
//!
//! Reads: `meta.tx_if` and the offload fields (`csum`, `csum_start`, `gso`, `gso_size`);
//! the worker's tx paths in the plan. Writes: the frame's L4 checksum (completing a partial
//! one in software: no port is set up for checksum offload yet), the mbuf's offload
//! requests (cleared once done); this worker's counters.
//! Drops: `tx_full` (the device did not take the frame), `no_tx_queue` (no tx path for
//! this worker), `offload_unsupported` (a GSO super-frame, or a partial checksum in a
//! chained frame: segmentation and chained checksums come with the kernel-facing ports).

use dpdk::{Burst, Mbuf, PortQueue};

use crate::counters::{bump, DropReason, WorkerCounters};
use crate::graph::{Csum, Ctx, Gso, Meta, Stage};
use crate::plan::{IfIndex, Tx, MAX_IFACES};
use crate::wire::checksum;

/// Interfaces that can have frames pending at once.
pub const SLOTS: usize = 64;
/// Tx attempts for one burst while the device keeps taking packets.
const TX_TRIES: usize = 8;
const NO_SLOT: u8 = u8::MAX;

/// One worker's output buffers.
pub struct Output {
    /// The slot of each interface with frames pending (NO_SLOT: none).
    slot_of: Box<[u8; MAX_IFACES]>,
    /// Pending frames: the interface and its frames, `used` of them in use.
    slots: Box<[(IfIndex, Burst)]>,
    used: usize,
    /// Frames queued since the last flush.
    queued: usize,
}

impl Default for Output {
    fn default() -> Self {
        Output::new()
    }
}

impl Output {
    /// Allocated once, when the worker starts.
    pub fn new() -> Output {
        Output {
            slot_of: Box::new([NO_SLOT; MAX_IFACES]),
            slots: (0..SLOTS).map(|_| (0, Burst::new())).collect(),
            used: 0,
            queued: 0,
        }
    }

    /// The frames pending for `iface`, if any.
    pub fn pending(&self, iface: IfIndex) -> Option<&Burst> {
        let s = *self.slot_of.get(usize::from(iface))?;
        self.slots.get(usize::from(s)).map(|(_, b)| b)
    }

    /// Frames queued since the last flush.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Frees every pending frame.
    pub fn clear(&mut self) {
        for (i, b) in self.slots[..self.used].iter_mut() {
            b.clear();
            self.slot_of[usize::from(*i)] = NO_SLOT;
        }
        self.used = 0;
        self.queued = 0;
    }

    /// The slot of `iface`, taking a free one (after transmitting everything, if none is
    /// free); None for an interface index out of range.
    #[inline(always)]
    fn slot(&mut self, ctx: &Ctx, iface: IfIndex) -> Option<usize> {
        let s = *self.slot_of.get(usize::from(iface))?;
        if s != NO_SLOT {
            return Some(usize::from(s));
        }
        if self.used == SLOTS {
            self.flush(ctx);
        }
        let s = self.used;
        self.used += 1;
        self.slot_of[usize::from(iface)] = s as u8;
        self.slots[s].0 = iface;
        Some(s)
    }

    /// Queues `m` for `iface` after resolving its offloads, counting a drop in `stage` if
    /// it cannot go.
    #[inline]
    pub(crate) fn queue(
        &mut self,
        ctx: &Ctx,
        stage: Stage,
        iface: IfIndex,
        mut m: Mbuf,
        meta: &Meta,
    ) {
        if meta.csum as u8 >= Csum::PartialTcp as u8 || meta.gso != Gso::None {
            if let Err(reason) = resolve_offload(&mut m, meta) {
                ctx.counters.drop_packets(stage, reason, iface, 1);
                return;
            }
        }
        let Some(s) = self.slot(ctx, iface) else {
            ctx.counters
                .drop_packets(stage, DropReason::NoTxQueue, iface, 1);
            return;
        };
        self.queued += 1;
        let (_, b) = &mut self.slots[s];
        if let Err(m) = b.push(m) {
            transmit(ctx, iface, b);
            // The burst is empty now (sent, or dropped and counted).
            if b.push(m).is_err() {
                ctx.counters
                    .drop_packets(stage, DropReason::TxFull, iface, 1);
            }
        }
    }

    /// Queues a whole burst for `iface` (a cross-connect); offload requests pass
    /// unchanged. The burst is empty afterwards.
    #[inline]
    pub(crate) fn queue_burst(
        &mut self,
        ctx: &Ctx,
        stage: Stage,
        iface: IfIndex,
        burst: &mut Burst,
    ) {
        let Some(s) = self.slot(ctx, iface) else {
            ctx.counters
                .drop_packets(stage, DropReason::NoTxQueue, iface, burst.len() as u64);
            burst.clear();
            return;
        };
        self.queued += burst.len();
        let (_, b) = &mut self.slots[s];
        b.append(burst);
        if !burst.is_empty() {
            transmit(ctx, iface, b);
            b.append(burst);
        }
    }

    /// Transmits every pending frame.
    pub fn flush(&mut self, ctx: &Ctx) {
        for (i, b) in self.slots[..self.used].iter_mut() {
            transmit(ctx, *i, b);
            self.slot_of[usize::from(*i)] = NO_SLOT;
        }
        self.used = 0;
        self.queued = 0;
    }
}

/// Sends `burst` on `iface`'s tx path for this worker; what is not taken is freed and
/// counted. The burst is empty afterwards.
#[inline]
fn transmit(ctx: &Ctx, iface: IfIndex, burst: &mut Burst) {
    if burst.is_empty() {
        return;
    }
    let tx = ctx
        .plan
        .workers
        .get(ctx.worker)
        .and_then(|w| w.tx.get(usize::from(iface)))
        .copied()
        .unwrap_or_default();
    match tx {
        // SAFETY: the plan gives worker `ctx.worker` only its own tx queue of each port,
        // open while this plan is in use (Engine::publish's contract, see plan.rs).
        Tx::Dpdk(q) => unsafe { transmit_dpdk(burst, q, iface, ctx.counters) },
        Tx::None => {
            ctx.counters.drop_packets(
                Stage::Output,
                DropReason::NoTxQueue,
                iface,
                burst.len() as u64,
            );
            burst.clear();
        }
    }
}

/// Sends the whole burst out of `txq`, retrying while the device makes progress; what it
/// will not take is freed and counted as tx_full.
///
/// # Safety
/// As for [`Burst::tx`]: no other thread uses `txq` meanwhile and its port is open.
#[inline]
unsafe fn transmit_dpdk(burst: &mut Burst, txq: PortQueue, iface: IfIndex, c: &WorkerCounters) {
    let offered = burst.bytes();
    let mut sent = 0;
    for _ in 0..TX_TRIES {
        // SAFETY: the caller's contract is Burst::tx's.
        let n = unsafe { burst.tx(txq) };
        sent += n;
        if burst.is_empty() || n == 0 {
            break;
        }
    }
    bump(&c.tx_packets, sent as u64);
    if burst.is_empty() {
        c.iface_tx(iface, sent, offered);
    } else {
        c.iface_tx(iface, sent, offered - burst.bytes());
        c.drop_packets(Stage::Output, DropReason::TxFull, iface, burst.len() as u64);
        burst.clear();
    }
}

/// Does in software what the frame's offload state still asks for, before it leaves.
fn resolve_offload(m: &mut Mbuf, meta: &Meta) -> Result<(), DropReason> {
    if meta.gso != Gso::None {
        // A super-frame longer than one segment needs segmenting.
        let payload = m.len().saturating_sub(usize::from(meta.csum_start));
        if payload > usize::from(meta.gso_size) + checksum::MAX_L4_HEADER {
            return Err(DropReason::OffloadUnsupported);
        }
    }
    if let Some(field) = meta.csum.field_offset() {
        if !m.is_contiguous() {
            return Err(DropReason::OffloadUnsupported);
        }
        let udp = meta.csum == Csum::PartialUdp;
        if !checksum::complete_partial(m.data_mut(), usize::from(meta.csum_start), field, udp) {
            return Err(DropReason::BadHeader);
        }
    }
    m.clear_tx_requests();
    Ok(())
}
