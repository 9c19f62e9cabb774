//! output: frames queued per output interface during a poll and transmitted on each
//! interface's tx path ([`Tx`]) once the poll's stages are done.
//!
//! Up to [`SLOTS`] interfaces have frames pending at once (a slot each, found through a
//! per-interface index); a full slot, or a frame for one more interface when every slot is
//! taken, transmits early. A cross-connected burst is sent as it was received, from the
//! input vector (no copy), unless a frame of it needs work.
//!
//! Before a burst is transmitted, the output interface's `out` ACL checks it
//! ([`crate::acl::filter`]).
//!
//! Reads: the output interface (given by the stage that queues), the offload fields
//! (`flags` OFFLOAD, `csum`, `csum_start`, `gso`, `gso_size`);
//! the plan's output interface (`up`, `max_frame`) and the worker's tx paths. Writes: the
//! frame's L4 checksum (completing a partial one in software: no port is set up for
//! checksum offload yet), the mbuf's offload requests (cleared once done); this worker's
//! counters.
//! Drops (all counted in the output stage): `iface_down` (output interface down or gone),
//! `mtu_exceeded` (longer than the output interface's MTU allows), `tx_full` (the device
//! did not take the frame), `no_tx_queue` (no tx path for this worker), `no_encap` (a
//! frame for a tunnel interface that did not come through tunnel-encap),
//! `offload_unsupported` (a GSO super-frame, or a partial checksum in a chained frame:
//! segmentation and chained checksums come with the kernel-facing ports), `bad_header` (a
//! partial checksum whose field lies outside the frame); `acl_deny` (and `bad_header` for a
//! truncated IP packet) where an `out` ACL is bound.

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
const STAGE: Stage = Stage::Output;

/// Frames pending for one interface.
struct Slot {
    iface: IfIndex,
    /// The longest frame the interface may send (0: it may send none: down or gone).
    max_frame: u32,
    /// Bytes of the pending frames.
    bytes: u64,
    pkts: Burst,
}

/// One worker's output buffers.
pub struct Output {
    /// The slot of each interface with frames pending (NO_SLOT: none).
    slot_of: Box<[u8; MAX_IFACES]>,
    slots: Box<[Slot]>,
    /// Slots in use.
    used: usize,
    /// The slot last queued to (valid while `used > 0`).
    last: usize,
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
            slots: (0..SLOTS)
                .map(|_| Slot {
                    iface: 0,
                    max_frame: 0,
                    bytes: 0,
                    pkts: Burst::new(),
                })
                .collect(),
            used: 0,
            last: 0,
            queued: 0,
        }
    }

    /// The frames pending for `iface`, if any.
    pub fn pending(&self, iface: IfIndex) -> Option<&Burst> {
        let s = *self.slot_of.get(usize::from(iface))?;
        (s != NO_SLOT).then(|| &self.slots[usize::from(s)].pkts)
    }

    /// Frames queued since the last flush.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// Frees every pending frame.
    pub fn clear(&mut self) {
        for s in self.slots[..self.used].iter_mut() {
            s.pkts.clear();
            s.bytes = 0;
            self.slot_of[usize::from(s.iface)] = NO_SLOT;
        }
        self.used = 0;
        self.queued = 0;
    }

    /// [`Output::slot`], remembering the last interface asked for (frames of a vector
    /// mostly go to few interfaces).
    #[inline(always)]
    fn last_slot(&mut self, ctx: &Ctx, iface: IfIndex) -> Option<usize> {
        if self.used > 0 && self.slots[self.last].iface == iface {
            return Some(self.last);
        }
        let s = self.slot(ctx, iface)?;
        self.last = s;
        Some(s)
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
        let slot = &mut self.slots[s];
        slot.iface = iface;
        slot.max_frame = ctx
            .plan
            .iface(iface)
            .filter(|p| p.up)
            .map_or(0, |p| p.max_frame);
        Some(s)
    }

    /// Queues `m` for `iface` after resolving its offloads; drops and counts it if it
    /// cannot go.
    #[inline(always)]
    pub(crate) fn queue(&mut self, ctx: &Ctx, iface: IfIndex, mut m: Mbuf, meta: &Meta) {
        let Some(s) = self.last_slot(ctx, iface) else {
            ctx.counters
                .drop_packets(STAGE, DropReason::IfaceDown, iface, 1);
            return;
        };
        if meta.needs_offload() {
            if let Err(reason) = resolve_offload(&mut m, meta) {
                ctx.counters.drop_packets(STAGE, reason, iface, 1);
                return;
            }
        }
        let slot = &mut self.slots[s];
        let len = m.len() as u32;
        if len > slot.max_frame {
            too_long(ctx, iface, slot.max_frame);
            return;
        }
        self.queued += 1;
        slot.bytes += u64::from(len);
        if let Err(m) = slot.pkts.push(m) {
            full(ctx, slot, m);
        }
    }

    /// Sends a whole burst (`bytes` long) out of `iface` now, after what is pending for
    /// it (a cross-connect: frames pass as they are; the device refuses, and counts, what
    /// it cannot send). The burst is empty afterwards.
    #[inline]
    pub(crate) fn send_burst(&mut self, ctx: &Ctx, iface: IfIndex, burst: &mut Burst, bytes: u64) {
        if let Some(&s) = self.slot_of.get(usize::from(iface)) {
            if s != NO_SLOT {
                let slot = &mut self.slots[usize::from(s)];
                transmit(
                    ctx,
                    slot.iface,
                    &mut slot.pkts,
                    std::mem::take(&mut slot.bytes),
                );
            }
        }
        transmit(ctx, iface, burst, bytes);
    }

    /// Transmits every pending frame.
    pub fn flush(&mut self, ctx: &Ctx) {
        for s in self.slots[..self.used].iter_mut() {
            transmit(ctx, s.iface, &mut s.pkts, std::mem::take(&mut s.bytes));
            self.slot_of[usize::from(s.iface)] = NO_SLOT;
        }
        self.used = 0;
        self.queued = 0;
    }
}

/// Counts a frame too long for `iface` (or for an interface that sends nothing).
#[cold]
fn too_long(ctx: &Ctx, iface: IfIndex, max_frame: u32) {
    let reason = if max_frame == 0 {
        DropReason::IfaceDown
    } else {
        DropReason::MtuExceeded
    };
    ctx.counters.drop_packets(STAGE, reason, iface, 1);
}

/// A full slot: transmits it, then queues `m` (`slot.bytes` counts it already).
#[cold]
fn full(ctx: &Ctx, slot: &mut Slot, m: Mbuf) {
    let len = u64::from(m.len() as u32);
    transmit(ctx, slot.iface, &mut slot.pkts, slot.bytes - len);
    slot.bytes = len;
    // The burst is empty now (sent, or dropped and counted).
    if slot.pkts.push(m).is_err() {
        slot.bytes = 0;
        ctx.counters
            .drop_packets(STAGE, DropReason::TxFull, slot.iface, 1);
    }
}

/// Sends `burst` (`bytes` long) on `iface`'s tx path for this worker; what is not taken
/// is freed and counted. The burst is empty afterwards.
/// The output interface's `out` ACL, if it has one, sees the burst first.
#[inline]
fn transmit(ctx: &Ctx, iface: IfIndex, burst: &mut Burst, bytes: u64) {
    if burst.is_empty() {
        return;
    }
    let bytes = crate::acl::filter::check_out(ctx, iface, burst, bytes);
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
        Tx::Dpdk(q) => unsafe { transmit_dpdk(burst, bytes, q, iface, ctx.counters) },
        Tx::None => {
            ctx.counters
                .drop_packets(STAGE, DropReason::NoTxQueue, iface, burst.len() as u64);
            burst.clear();
        }
        Tx::Tunnel => {
            ctx.counters
                .drop_packets(STAGE, DropReason::NoEncap, iface, burst.len() as u64);
            burst.clear();
        }
    }
}

/// Sends the whole burst (`offered` bytes) out of `txq`, retrying while the device makes
/// progress; what it will not take is freed and counted as tx_full.
///
/// # Safety
/// As for [`Burst::tx`]: no other thread uses `txq` meanwhile and its port is open.
#[inline]
unsafe fn transmit_dpdk(
    burst: &mut Burst,
    offered: u64,
    txq: PortQueue,
    iface: IfIndex,
    c: &WorkerCounters,
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
    bump(&c.tx_packets, sent as u64);
    if burst.is_empty() {
        c.iface_tx(iface, sent, offered);
    } else {
        c.iface_tx(iface, sent, offered.saturating_sub(burst.bytes()));
        c.drop_packets(STAGE, DropReason::TxFull, iface, burst.len() as u64);
        burst.clear();
    }
}

/// Does in software what the frame's offload state still asks for, before it leaves.
#[inline(never)]
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
