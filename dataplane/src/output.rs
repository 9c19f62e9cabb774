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
//! A GSO super-frame (a guest's or a pod's TCP or UDP segment longer than its MSS) is cut
//! in software into the segments its sender's stack would have sent ([`gso`]: each with its
//! own headers and full checksums), since no output interface is set up to take one whole
//! (no port has TSO); see [`Output::queue`]. The segments are new mbufs from the
//! super-frame's pool, queued in its place, in order; the super-frame is freed. One that
//! fits one segment goes as it is, its partial checksum completed.
//!
//! Reads: the output interface (given by the stage that queues), the offload fields
//! (`flags` OFFLOAD, `csum`, `csum_start`, `gso`, `gso_size`);
//! the plan's output interface (`up`, `max_frame`) and the worker's tx paths. Writes: the
//! frame's L4 checksum (completing a partial one in software: no port is set up for
//! checksum offload yet), the mbuf's offload requests (cleared once done); the segments of
//! a super-frame (new frames, the super-frame freed); this worker's counters.
//! Drops (all counted in the output stage): `iface_down` (output interface down or gone),
//! `mtu_exceeded` (longer than the output interface's MTU allows; for a super-frame, its
//! first, longest segment), `tx_full` (the device did not take the frame), `no_tx_queue`
//! (no tx path for this worker), `no_encap` (a frame for a tunnel interface that did not
//! come through tunnel-encap), `no_mbuf` (the super-frame's pool ran dry while it was being
//! cut: the segments made are freed with it), `offload_unsupported` (a partial checksum in
//! a chained frame without GSO, or a segment longer than one mbuf of the super-frame's pool
//! holds), `bad_header` (a partial checksum whose field lies outside the frame, or a
//! super-frame [`gso::plan`] refuses); `acl_deny` (and `bad_header` for a truncated IP
//! packet) where an `out` ACL is bound.

use dpdk::{Burst, Mbuf, PortQueue, MAX_BURST};

use crate::counters::{bump, DropReason, WorkerCounters};
use crate::graph::{Csum, Ctx, Gso, Meta, Stage};
use crate::native::TxDone;
use crate::plan::{IfIndex, Tx, MAX_IFACES};
use crate::wire::{checksum, ethernet, gso, vnet};

/// Interfaces that can have frames pending at once.
pub const SLOTS: usize = 64;
/// Tx attempts for one burst while the device keeps taking packets.
const TX_TRIES: usize = 8;
const NO_SLOT: u8 = u8::MAX;
const STAGE: Stage = Stage::Output;
/// The longest super-frame [`gso::plan`] can cut: an IP packet of 65535 bytes (its lengths
/// are 16-bit) behind an Ethernet header and one 802.1Q tag. A chained super-frame is
/// copied into a buffer this long; bytes past it lie past any IP length and are sent in no
/// segment.
const LINEAR: usize = 65_535 + ethernet::HEADER_LEN + ethernet::VLAN_TAG_LEN;

/// Frames pending for one interface.
struct Slot {
    iface: IfIndex,
    /// The longest frame the interface may send (0: it may send none: down or gone).
    max_frame: u32,
    /// Its tx path takes frames with their offload state (partial checksums, GSO
    /// super-frames) as they are: a native kernel-interface port.
    offloads: bool,
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
    /// A chained super-frame, copied into one piece to be cut ([`LINEAR`] bytes).
    linear: Box<[u8]>,
    /// The segments of the super-frame being cut, until they are all made (empty between
    /// frames).
    segs: Burst,
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
                    offloads: false,
                    bytes: 0,
                    pkts: Burst::new(),
                })
                .collect(),
            used: 0,
            last: 0,
            queued: 0,
            linear: vec![0; LINEAR].into_boxed_slice(),
            segs: Burst::new(),
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
        slot.offloads = matches!(tx_of(ctx, iface), Some(Tx::Native(_)));
        Some(s)
    }

    /// Queues `m` for `iface` after resolving its offloads (a GSO super-frame: its
    /// segments, see [`Output::queue_gso`]); drops and counts it if it cannot go.
    #[inline(always)]
    pub(crate) fn queue(&mut self, ctx: &Ctx, iface: IfIndex, mut m: Mbuf, meta: &Meta) {
        let Some(s) = self.last_slot(ctx, iface) else {
            ctx.counters
                .drop_packets(STAGE, DropReason::IfaceDown, iface, 1);
            return;
        };
        if meta.needs_offload() {
            if self.slots[s].offloads {
                self.queue_offloaded(ctx, s, m, meta);
                return;
            }
            if meta.gso != Gso::None {
                self.queue_gso(ctx, s, m, meta);
                return;
            }
            if let Err(reason) = resolve_offload(&mut m, meta) {
                ctx.counters.drop_packets(STAGE, reason, iface, 1);
                return;
            }
        }
        enqueue(ctx, &mut self.slots[s], &mut self.queued, m);
    }

    /// Queues every frame of `burst` (`bytes` in all, none longer than `max_len`, none with
    /// offload state) for `iface`, in order; the burst is empty afterwards. When `iface`
    /// has nothing pending the burst becomes its pending one whole; frames that cannot go
    /// are dropped and counted as [`Output::queue`] would.
    #[inline]
    pub(crate) fn queue_burst(
        &mut self,
        ctx: &Ctx,
        iface: IfIndex,
        burst: &mut Burst,
        bytes: u64,
        max_len: u32,
    ) {
        let n = burst.len();
        let Some(s) = self.last_slot(ctx, iface) else {
            ctx.counters
                .drop_packets(STAGE, DropReason::IfaceDown, iface, n as u64);
            burst.clear();
            return;
        };
        let slot = &mut self.slots[s];
        if slot.pkts.is_empty() && max_len <= slot.max_frame {
            std::mem::swap(&mut slot.pkts, burst);
            slot.bytes = bytes;
            self.queued += n;
            return;
        }
        for m in burst.drain() {
            enqueue(ctx, slot, &mut self.queued, m);
        }
    }

    /// Queues the GSO super-frame `m` on slot `s`: cut into segments ([`cut`]), queued in
    /// its place in order, or, if it fits one segment and is contiguous, as it is with its
    /// partial checksum completed. Drops and counts it (once, whatever its segment count)
    /// if it cannot go.
    #[cold]
    #[inline(never)]
    fn queue_gso(&mut self, ctx: &Ctx, s: usize, mut m: Mbuf, meta: &Meta) {
        let Output {
            slots,
            queued,
            linear,
            segs,
            ..
        } = self;
        let slot = &mut slots[s];
        match cut(ctx, slot, queued, &m, meta, linear, segs) {
            Ok(Cut::Whole) => match resolve_offload(&mut m, meta) {
                Ok(()) => enqueue(ctx, slot, queued, m),
                Err(reason) => ctx.counters.drop_packets(STAGE, reason, slot.iface, 1),
            },
            // `m` is freed on return.
            Ok(Cut::Segments) => enqueue_all(ctx, slot, queued, segs),
            Err(reason) => {
                segs.clear();
                ctx.counters.drop_packets(STAGE, reason, slot.iface, 1);
            }
        }
    }

    /// Queues `m`, whose offload state is `meta`'s, on slot `s` of an interface that takes
    /// it as it is (the output device finishes the checksum, the receiver's stack or the
    /// kernel segments): the state is written into the mbuf for the device, and a
    /// super-frame is checked against the MTU by its first, longest segment. A frame whose
    /// offload is about an inner packet (a tunnel's: a virtio-net header cannot say so)
    /// takes the software path instead.
    #[inline(never)]
    fn queue_offloaded(&mut self, ctx: &Ctx, s: usize, mut m: Mbuf, meta: &Meta) {
        if outer_l4(m.data()) != Some(usize::from(meta.csum_start)) {
            if meta.gso != Gso::None {
                self.queue_gso(ctx, s, m, meta);
            } else if let Err(reason) = resolve_offload(&mut m, meta) {
                ctx.counters
                    .drop_packets(STAGE, reason, self.slots[s].iface, 1);
            } else {
                enqueue(ctx, &mut self.slots[s], &mut self.queued, m);
            }
            return;
        }
        let slot = &mut self.slots[s];
        let o = vnet::Offload {
            csum: meta.csum,
            csum_start: meta.csum_start,
            gso: meta.gso,
            gso_size: meta.gso_size,
        };
        let (Ok(r), Some(state)) = (
            vnet::Repr::from_offload(&o, m.data()),
            crate::native::to_mbuf_offload(&o),
        ) else {
            ctx.counters
                .drop_packets(STAGE, DropReason::OffloadUnsupported, slot.iface, 1);
            return;
        };
        let longest = if meta.gso == Gso::None {
            m.len() as u32
        } else {
            (u32::from(r.hdr_len) + u32::from(r.gso_size)).min(m.len() as u32)
        };
        if longest > slot.max_frame {
            too_long(ctx, slot.iface, slot.max_frame);
            return;
        }
        m.set_offload(&state);
        push(ctx, slot, &mut self.queued, m);
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

/// Where the L4 header of `frame`'s outermost IP packet starts (behind an Ethernet header
/// and at most one 802.1Q tag: IPv4 by its header length, IPv6 when TCP or UDP follows the
/// fixed header); None for anything else or a frame too short to tell.
fn outer_l4(frame: &[u8]) -> Option<usize> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    let l3 = if eth.vlan().is_some() {
        ethernet::HEADER_LEN + ethernet::VLAN_TAG_LEN
    } else {
        ethernet::HEADER_LEN
    };
    match eth.ethertype() {
        ethernet::ETHERTYPE_IPV4 => {
            let ihl = usize::from(frame.get(l3)? & 0x0f) * 4;
            (ihl >= 20 && frame.len() >= l3 + ihl).then_some(l3 + ihl)
        }
        ethernet::ETHERTYPE_IPV6 => {
            let next = *frame.get(l3 + 6)?;
            (matches!(next, 6 | 17) && frame.len() >= l3 + 40).then_some(l3 + 40)
        }
        _ => None,
    }
}

/// Queues `m` on `slot` (transmitting the slot first if it is full), or drops and counts
/// it if it is too long for the interface.
#[inline(always)]
fn enqueue(ctx: &Ctx, slot: &mut Slot, queued: &mut usize, m: Mbuf) {
    if m.len() as u32 > slot.max_frame {
        too_long(ctx, slot.iface, slot.max_frame);
        return;
    }
    push(ctx, slot, queued, m);
}

/// Queues `m` on `slot` (transmitting the slot first if it is full); the caller checked
/// its length.
#[inline(always)]
fn push(ctx: &Ctx, slot: &mut Slot, queued: &mut usize, m: Mbuf) {
    let len = m.len() as u32;
    *queued += 1;
    slot.bytes += u64::from(len);
    if let Err(m) = slot.pkts.push(m) {
        full(ctx, slot, m);
    }
}

/// Queues every frame of `frames` on `slot`, in order (the burst is empty afterwards).
#[inline(never)]
fn enqueue_all(ctx: &Ctx, slot: &mut Slot, queued: &mut usize, frames: &mut Burst) {
    for m in frames.drain() {
        enqueue(ctx, slot, queued, m);
    }
}

/// The drop reason of a frame longer than `max_frame`: `iface_down` for an interface that
/// sends nothing (`max_frame` 0), else `mtu_exceeded`.
fn too_long_reason(max_frame: u32) -> DropReason {
    if max_frame == 0 {
        DropReason::IfaceDown
    } else {
        DropReason::MtuExceeded
    }
}

/// Counts a frame too long for `iface` (or for an interface that sends nothing).
#[cold]
fn too_long(ctx: &Ctx, iface: IfIndex, max_frame: u32) {
    ctx.counters
        .drop_packets(STAGE, too_long_reason(max_frame), iface, 1);
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
    let n_before = burst.len();
    match tx_of(ctx, iface) {
        // SAFETY: the plan gives worker `ctx.worker` only its own tx queue of each port,
        // open while this plan is in use (Engine::publish's contract, see plan.rs).
        Some(Tx::Dpdk(q)) => unsafe { transmit_dpdk(burst, bytes, *q, iface, ctx.counters) },
        Some(Tx::Native(p)) => {
            // SAFETY: this is worker `ctx.worker`'s thread, the only one the engine runs
            // with that id.
            let done = unsafe { p.tx(ctx.worker, burst) };
            count_tx(ctx, done, n_before, bytes, iface);
        }
        Some(Tx::Vhost(p)) => {
            // SAFETY: as for Native.
            let done = unsafe { p.tx(ctx.worker, burst) };
            count_tx(ctx, done, n_before, bytes, iface);
        }
        Some(Tx::Memif(p)) => {
            let done = p.tx(ctx.worker, burst);
            count_tx(ctx, done, n_before, bytes, iface);
        }
        None | Some(Tx::None) => {
            ctx.counters
                .drop_packets(STAGE, DropReason::NoTxQueue, iface, burst.len() as u64);
            burst.clear();
        }
        Some(Tx::Tunnel) => {
            ctx.counters
                .drop_packets(STAGE, DropReason::NoEncap, iface, burst.len() as u64);
            burst.clear();
        }
    }
}

/// This worker's tx path on `iface`.
#[inline(always)]
fn tx_of<'a>(ctx: &Ctx<'a>, iface: IfIndex) -> Option<&'a Tx> {
    ctx.plan
        .workers
        .get(ctx.worker)
        .and_then(|w| w.tx.get(usize::from(iface)))
}

/// Counts what a native or vhost-user port did with a burst of `n` frames (`offered`
/// bytes): what it did not take was freed and is counted as tx_full, what could not be
/// described to it as offload_unsupported.
#[inline]
fn count_tx(ctx: &Ctx, done: TxDone, n: usize, offered: u64, iface: IfIndex) {
    let c = ctx.counters;
    bump(&c.tx_packets, done.sent as u64);
    c.iface_tx(
        iface,
        done.sent,
        if done.sent == n { offered } else { done.bytes },
    );
    if done.refused > 0 {
        c.drop_packets(STAGE, DropReason::TxFull, iface, done.refused as u64);
    }
    if done.bad_offload > 0 {
        c.drop_packets(
            STAGE,
            DropReason::OffloadUnsupported,
            iface,
            done.bad_offload as u64,
        );
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

/// Completes in software the partial checksum the frame's offload state asks for (GSO is
/// [`cut`]'s), and clears the mbuf's offload requests.
#[inline(never)]
fn resolve_offload(m: &mut Mbuf, meta: &Meta) -> Result<(), DropReason> {
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

/// What [`cut`] made of a super-frame.
#[derive(Debug, PartialEq, Eq)]
enum Cut {
    /// Nothing: the frame fits one segment and is contiguous, to be sent as it is.
    Whole,
    /// Its segments, in `segs` (the rest of them, when there were more than a burst holds).
    Segments,
}

/// Cuts the GSO super-frame `m` (`meta` its offload state) for `slot`'s interface into
/// segments ([`gso`]), each a new mbuf from `m`'s pool, into `segs` (empty before). A
/// chained frame is first copied whole into `linear`.
///
/// Segments are made all before any is queued, so a pool that runs dry costs the frame and
/// nothing else (the caller frees `segs` on an error); only a super-frame of more than
/// [`MAX_BURST`] segments (a `gso_size` below 256 bytes for 64 KiB) has each full burst of
/// segments queued on `slot` as it is made.
///
/// Errors: `bad_header` (refused by [`gso::plan`]), `mtu_exceeded` or `iface_down` (the
/// first, longest segment is longer than the interface allows), `no_mbuf` (the pool ran
/// dry), `offload_unsupported` (a segment does not fit one mbuf of the pool).
fn cut(
    ctx: &Ctx,
    slot: &mut Slot,
    queued: &mut usize,
    m: &Mbuf,
    meta: &Meta,
    linear: &mut [u8],
    segs: &mut Burst,
) -> Result<Cut, DropReason> {
    let plan = plan_of(m, meta, linear)?;
    if plan.count() == 1 && m.is_contiguous() {
        return Ok(Cut::Whole);
    }
    if plan.segment_len(0).unwrap_or(usize::MAX) > slot.max_frame as usize {
        return Err(too_long_reason(slot.max_frame));
    }
    let mut i = 0;
    while let Some(len) = plan.segment_len(i) {
        if segs.len() == MAX_BURST {
            enqueue_all(ctx, slot, queued, segs);
        }
        // The burst has room (emptied above when full).
        segs.push(segment(m, &plan, i, len)?)
            .map_err(|_| DropReason::NoMbuf)?;
        i += 1;
    }
    Ok(Cut::Segments)
}

/// How the super-frame `m` (`meta` its offload state) is cut ([`gso::plan`]), read in place
/// if it is contiguous, else from its copy in `linear`; `bad_header` if it is refused.
fn plan_of<'a>(
    m: &'a Mbuf,
    meta: &Meta,
    linear: &'a mut [u8],
) -> Result<gso::Plan<'a>, DropReason> {
    let frame: &[u8] = if m.is_contiguous() {
        m.data()
    } else {
        let n = m.copy_to(linear);
        &linear[..n]
    };
    gso::plan(
        frame,
        meta.gso,
        usize::from(meta.csum_start),
        usize::from(meta.gso_size),
    )
    .map_err(|_| DropReason::BadHeader)
}

/// Segment `i` (`len` bytes) of `plan`, cut from `m`, in a new mbuf from `m`'s pool.
fn segment(m: &Mbuf, plan: &gso::Plan, i: usize, len: usize) -> Result<Mbuf, DropReason> {
    let mut seg = m.alloc_like().ok_or(DropReason::NoMbuf)?;
    let out = seg.append(len).ok_or(DropReason::OffloadUnsupported)?;
    plan.write(i, out).ok_or(DropReason::OffloadUnsupported)?;
    Ok(seg)
}

impl Output {
    /// The GSO super-frame `m` (`meta` its offload state) cut into the segments its sender
    /// would have sent, each a new mbuf from `m`'s pool with complete checksums, for a
    /// stage that must handle them one by one (tunnel-encap: a tunnel carries no
    /// super-frame). Errors: `bad_header` (refused by [`gso::plan`], or more segments than
    /// a burst holds: a `gso_size` under ~256 bytes), `no_mbuf`, `offload_unsupported`
    /// (a segment longer than one mbuf of the pool).
    pub(crate) fn segments(&mut self, m: &Mbuf, meta: &Meta) -> Result<Burst, DropReason> {
        let plan = plan_of(m, meta, &mut self.linear)?;
        if plan.count() > MAX_BURST {
            return Err(DropReason::BadHeader);
        }
        let mut segs = Burst::new();
        let mut i = 0;
        while let Some(len) = plan.segment_len(i) {
            segs.push(segment(m, &plan, i, len)?)
                .map_err(|_| DropReason::NoMbuf)?;
            i += 1;
        }
        Ok(segs)
    }
}

#[cfg(test)]
mod outer_l4_tests {
    use super::outer_l4;
    use proptest::prelude::*;

    fn frame(tag: bool, ethertype: u16, l3: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        if tag {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x0a]);
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(l3);
        f
    }

    #[test]
    fn the_outermost_l4_header_is_found() {
        let mut v4 = vec![0u8; 60];
        v4[0] = 0x45;
        assert_eq!(outer_l4(&frame(false, 0x0800, &v4)), Some(34));
        assert_eq!(outer_l4(&frame(true, 0x0800, &v4)), Some(38));
        v4[0] = 0x46; // 4 bytes of options
        assert_eq!(outer_l4(&frame(false, 0x0800, &v4)), Some(38));
        v4[0] = 0x44; // an IHL below 5
        assert_eq!(outer_l4(&frame(false, 0x0800, &v4)), None);
        let mut v6 = vec![0u8; 60];
        v6[6] = 6;
        assert_eq!(outer_l4(&frame(false, 0x86dd, &v6)), Some(54));
        v6[6] = 0; // a hop-by-hop header first
        assert_eq!(outer_l4(&frame(false, 0x86dd, &v6)), None);
        assert_eq!(outer_l4(&frame(false, 0x0806, &v4)), None);
        assert_eq!(outer_l4(&frame(false, 0x0800, &[0x45; 10])), None);
    }

    proptest! {
        /// Any bytes: no panic, and an offset inside the frame.
        #[test]
        fn any_frame_gives_an_offset_inside_it_or_none(b in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Some(o) = outer_l4(&b) {
                prop_assert!(o <= b.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    use dpdk::offload::{TX_IPV4, TX_IPV6, TX_TCP_CKSUM, TX_TCP_SEG};
    use dpdk::{MbufOffload, Mempool, HEADROOM};

    use super::*;
    use crate::l2::bridge::L2Shared;
    use crate::l2::fdb::Fdb;
    use crate::l2::learn::{Clock, LearnQueues};
    use crate::plan::{ForwardingPlan, IfacePlan, Input};
    use crate::slowpath::SlowPath;

    const OUT: IfIndex = 1;
    /// An interface with a small MTU.
    const NARROW: IfIndex = 2;
    const MSS: usize = 1448;
    const SRC4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const SEQ: u32 = 0x0102_0304;

    /// What the output stage needs around it: a plan with OUT (MTU 1500) and NARROW (MTU
    /// 1000), no tx paths (frames stay pending until flushed), and counters.
    struct Env {
        plan: ForwardingPlan,
        l2: L2Shared,
        slow: SlowPath,
        counters: WorkerCounters,
    }

    impl Env {
        fn new() -> Env {
            let iface = |mtu| IfacePlan {
                up: true,
                input: Input::Drop(DropReason::Unconnected),
                l2: None,
                l3: None,
                max_frame: IfacePlan::max_frame_of(mtu),
            };
            let mut ifaces = vec![None; 4];
            ifaces[usize::from(OUT)] = Some(iface(1500));
            ifaces[usize::from(NARROW)] = Some(iface(1000));
            Env {
                plan: ForwardingPlan {
                    ifaces,
                    ..Default::default()
                },
                l2: L2Shared {
                    fdb: Arc::new(Fdb::new(16)),
                    learn: Arc::new(LearnQueues::new(1)),
                    clock: Arc::new(Clock::default()),
                },
                slow: SlowPath::new(1, 4, 4),
                counters: WorkerCounters::default(),
            }
        }

        fn ctx(&self) -> Ctx<'_> {
            Ctx {
                worker: 0,
                plan: &self.plan,
                l2: &self.l2,
                slow: &self.slow,
                counters: &self.counters,
            }
        }

        fn drops(&self, r: DropReason) -> u64 {
            self.counters.snapshot().stages[STAGE as usize].drops[r as usize]
        }
    }

    /// A pool whose mbufs hold `room` bytes of packet each, or None (test skipped) without
    /// an EAL.
    fn pool(name: &str, n: u32, room: u16) -> Option<Arc<Mempool>> {
        let eal = dpdk::test_eal::try_eal()?;
        let p = Mempool::with_data_room(eal, name, n, 0, room + HEADROOM);
        Some(Arc::new(p.expect("test mempool")))
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 253) as u8).collect()
    }

    /// A TCP super-frame from SRC to DST carrying `data`, its checksum field holding the
    /// pseudo-header sum (a partial checksum, as a guest leaves it), with ACK, PSH and FIN.
    fn super_frame(v6: bool, data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
        let tcp_len = 20 + data.len();
        let pseudo = if v6 {
            f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            f.extend_from_slice(&[6, 64]);
            f.extend_from_slice(&SRC6.octets());
            f.extend_from_slice(&DST6.octets());
            checksum::pseudo_header_v6(&SRC6, &DST6, 6, tcp_len as u32)
        } else {
            f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
            f.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            f.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, 6, 0, 0]);
            f.extend_from_slice(&SRC4.octets());
            f.extend_from_slice(&DST4.octets());
            let c = !checksum::sum(&f[14..34], 0);
            f[24..26].copy_from_slice(&c.to_be_bytes());
            checksum::pseudo_header_v4(SRC4, DST4, 6, tcp_len as u16)
        };
        f.extend_from_slice(&[0x9c, 0x40, 0x14, 0x51]);
        f.extend_from_slice(&SEQ.to_be_bytes());
        f.extend_from_slice(&[0, 0, 0, 1, 0x50, 0x19, 0xff, 0xff]);
        f.extend_from_slice(&pseudo.to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(data);
        f
    }

    /// `bytes` in one mbuf, or (with `chunk`) in a chain of mbufs of `chunk` bytes each.
    fn mbuf(pool: &Mempool, bytes: &[u8], chunk: Option<usize>) -> Mbuf {
        let Some(chunk) = chunk else {
            return Mbuf::from_bytes(pool, bytes).unwrap();
        };
        let mut parts = bytes.chunks(chunk);
        let mut head = Mbuf::from_bytes(pool, parts.next().unwrap()).unwrap();
        for p in parts {
            head.chain(Mbuf::from_bytes(pool, p).unwrap()).unwrap();
        }
        head
    }

    /// `m` marked as a TSO super-frame (MSS `mss`) by its input device, and its metadata
    /// as the input stage sets it.
    fn tso(mut m: Mbuf, v6: bool, mss: usize) -> (Mbuf, Meta) {
        let (ip, l3) = if v6 { (TX_IPV6, 40) } else { (TX_IPV4, 20) };
        m.set_offload(&MbufOffload {
            ol_flags: TX_TCP_SEG | TX_TCP_CKSUM | ip,
            l2_len: 14,
            l3_len: l3,
            tso_segsz: mss as u16,
        });
        let mut meta = Meta::default();
        meta.set_offload(&m.offload());
        assert!(meta.needs_offload());
        (m, meta)
    }

    /// Checks the segments pending on OUT against the super-frame of `data`: lengths,
    /// checksums, sequence numbers, flags, and the payload in order.
    fn check_segments(out: &Output, v6: bool, data: &[u8]) {
        let segs = out.pending(OUT).expect("segments pending");
        let l4 = if v6 { 54 } else { 34 };
        let want = data.len().div_ceil(MSS);
        assert_eq!(segs.len(), want);
        let mut got = Vec::new();
        for i in 0..segs.len() {
            let s = segs.data(i);
            let last = i + 1 == want;
            let n = if last { data.len() - i * MSS } else { MSS };
            assert_eq!(s.len(), l4 + 20 + n, "segment {i}: length");
            let tcp_len = s.len() - l4;
            let pseudo = if v6 {
                assert_eq!(usize::from(u16::from_be_bytes([s[18], s[19]])), tcp_len);
                checksum::pseudo_header_v6(&SRC6, &DST6, 6, tcp_len as u32)
            } else {
                assert_eq!(
                    usize::from(u16::from_be_bytes([s[16], s[17]])),
                    s.len() - 14
                );
                assert_eq!(checksum::sum(&s[14..34], 0), 0xffff, "segment {i}: IPv4");
                assert_eq!(u16::from_be_bytes([s[18], s[19]]), 0x1234 + i as u16);
                checksum::pseudo_header_v4(SRC4, DST4, 6, tcp_len as u16)
            };
            assert_eq!(
                checksum::sum(&s[l4..], u32::from(pseudo)),
                0xffff,
                "segment {i}: TCP checksum"
            );
            let seq = u32::from_be_bytes([s[l4 + 4], s[l4 + 5], s[l4 + 6], s[l4 + 7]]);
            assert_eq!(seq, SEQ + (i * MSS) as u32);
            let flags = if last { 0x19 } else { 0x10 };
            assert_eq!(s[l4 + 13], flags, "segment {i}: flags");
            got.extend_from_slice(&s[l4 + 20..]);
        }
        assert_eq!(got, data, "the payload, in order");
        for i in 0..segs.len() {
            assert_eq!(segs.offload(i).ol_flags, 0, "no offload requested");
        }
    }

    /// A TCP/IPv4 and a TCP/IPv6 super-frame of 3 x 1448 + 100 bytes, in one mbuf and in
    /// a chain of 2 KiB mbufs, leave as 4 checked segments; nothing leaks.
    #[test]
    fn super_frames_leave_as_segments() {
        let Some(pool) = pool("t_out_gso", 64, 8192) else {
            return;
        };
        let env = Env::new();
        let ctx = env.ctx();
        let mut out = Output::new();
        let data = payload(3 * MSS + 100);
        for v6 in [false, true] {
            for chunk in [None, Some(2048)] {
                let before = pool.available();
                let f = super_frame(v6, &data);
                let m = mbuf(&pool, &f, chunk);
                assert_eq!(m.is_contiguous(), chunk.is_none());
                let (m, meta) = tso(m, v6, MSS);
                out.queue(&ctx, OUT, m, &meta);
                check_segments(&out, v6, &data);
                assert_eq!(out.queued(), 4);
                assert_eq!(
                    pool.available(),
                    before - 4,
                    "the super-frame was freed ({v6} {chunk:?})"
                );
                out.clear();
                assert_eq!(pool.available(), before);
            }
        }
        assert_eq!(
            env.counters.snapshot().stages[STAGE as usize].drops,
            [0; DropReason::ALL.len()]
        );
    }

    /// A super-frame that fits one segment leaves whole, its checksum completed.
    #[test]
    fn a_super_frame_of_one_segment_is_sent_as_it_is() {
        let Some(pool) = pool("t_out_gso1", 8, 2048) else {
            return;
        };
        let env = Env::new();
        let mut out = Output::new();
        let data = payload(1000);
        let (m, meta) = tso(mbuf(&pool, &super_frame(false, &data), None), false, MSS);
        out.queue(&env.ctx(), OUT, m, &meta);
        let sent = out.pending(OUT).unwrap();
        assert_eq!(sent.len(), 1);
        let s = sent.data(0);
        let pseudo = checksum::pseudo_header_v4(SRC4, DST4, 6, 1020);
        assert_eq!(checksum::sum(&s[34..], u32::from(pseudo)), 0xffff);
        assert_eq!(sent.offload(0).ol_flags, TX_IPV4, "requests cleared");
        out.clear();
        assert_eq!(pool.in_use(), 0);
    }

    /// Drops: a pool that runs dry part-way (no_mbuf), a segment too long for the
    /// interface (mtu_exceeded), a frame gso::plan refuses (bad_header), a segment longer
    /// than an mbuf (offload_unsupported); nothing queued, nothing leaked.
    #[test]
    fn super_frames_that_cannot_be_cut_are_dropped_without_leaks() {
        let Some(pool) = pool("t_out_gso_dry", 5, 2048) else {
            return;
        };
        let env = Env::new();
        let ctx = env.ctx();
        let mut out = Output::new();
        let data = payload(3 * MSS + 100);
        let f = super_frame(false, &data);
        // 3 mbufs hold the chain, 2 are left: the third segment finds none.
        let (m, meta) = tso(mbuf(&pool, &f, Some(2048)), false, MSS);
        assert_eq!(pool.available(), 2);
        out.queue(&ctx, OUT, m, &meta);
        assert_eq!(env.drops(DropReason::NoMbuf), 1);
        assert!(out.pending(OUT).is_none_or(|b| b.is_empty()));
        assert_eq!(pool.available(), 5);

        let (m, meta) = tso(mbuf(&pool, &f, Some(2048)), false, MSS);
        out.queue(&ctx, NARROW, m, &meta);
        assert_eq!(env.drops(DropReason::MtuExceeded), 1);

        let mut bad = f.clone();
        bad[47] |= 0x02; // SYN
        let (m, meta) = tso(mbuf(&pool, &bad, Some(2048)), false, MSS);
        out.queue(&ctx, OUT, m, &meta);
        assert_eq!(env.drops(DropReason::BadHeader), 1);

        let jumbo = payload(2 * 3000);
        let (m, meta) = tso(
            mbuf(&pool, &super_frame(false, &jumbo), Some(2048)),
            false,
            3000,
        );
        let wide = ForwardingPlan {
            ifaces: vec![
                None,
                Some(IfacePlan {
                    max_frame: IfacePlan::max_frame_of(9000),
                    ..env.plan.iface(OUT).unwrap().clone()
                }),
            ],
            ..Default::default()
        };
        let ctx9 = Ctx {
            plan: &wide,
            ..env.ctx()
        };
        // A slot keeps its interface's max_frame until flushed: start afresh.
        out.clear();
        out.queue(&ctx9, OUT, m, &meta);
        assert_eq!(env.drops(DropReason::OffloadUnsupported), 1);

        assert_eq!(out.queued(), 0);
        assert_eq!(pool.available(), 5);
    }

    /// A super-frame of more segments than a burst holds: each full burst goes to the tx
    /// path (here none: counted as no_tx_queue) and the rest stays pending; every segment
    /// is accounted for.
    #[test]
    fn many_segments_are_sent_a_burst_at_a_time() {
        let Some(pool) = pool("t_out_gso_many", 1024, 2048) else {
            return;
        };
        let env = Env::new();
        let mut out = Output::new();
        let data = payload(600 * 100);
        let (m, meta) = tso(
            mbuf(&pool, &super_frame(true, &data), Some(2048)),
            true,
            100,
        );
        out.queue(&env.ctx(), OUT, m, &meta);
        let pending = out.pending(OUT).map_or(0, Burst::len);
        assert_eq!(env.drops(DropReason::NoTxQueue) + pending as u64, 600);
        assert!(env.drops(DropReason::NoTxQueue) >= MAX_BURST as u64);
        out.clear();
        assert_eq!(pool.in_use(), 0);
    }
}
