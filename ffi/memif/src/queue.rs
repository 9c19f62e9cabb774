//! The data path: one queue's rx (frames lent to a callback) and tx (frames copied into the
//! peer's buffers), copy mode.
//!
//! Each queue has a slot ([`QueueSlot`]) with a busy flag. A burst takes the flag with one
//! compare-and-swap (never waiting: a busy queue gives 0 frames / refuses the batch) and
//! drops it at the end, so a queue is used by one thread at a time whoever calls, and the
//! control thread, which takes the same flag (waiting, a burst lasts microseconds) to
//! install or remove a connection's state, never unmaps memory a burst is reading.
//!
//! Everything the peer writes is checked before use: head / tail moving by more than the
//! ring size marks the ring broken (the queue stops and the control thread disconnects),
//! a descriptor whose region / offset / length is outside a mapped region drops its frame
//! (rx) or breaks the ring (tx: the buffer we were given is not one we can write), each
//! counted.

use std::cell::UnsafeCell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::prefetch::Hint;
use crate::ring::{Desc, Regions, Ring, DESC_FLAG_NEXT, DESC_LEN, RING_FLAG_MASK_INT};
use crate::sys;
use crate::{ZcBuf, ZcBuffers};

/// The region a zero-copy client's buffers are in (region 0 holds the rings).
pub(crate) const ZC_REGION: u16 = 1;

/// The longest chain a zero-copy frame may take (longer ones are dropped as too long).
const ZC_MAX_CHAIN: usize = 64;

/// A zero-copy client queue's buffers.
pub(crate) struct Zc {
    pub bufs: Arc<dyn ZcBuffers>,
    /// Each slot's buffer while it is out: rx, handed to the server (slots `next..given`);
    /// tx, lent to the server and not yet given back (`done..next`).
    pub slots: Box<[ZcBuf]>,
    /// Tx: the slots before this one are given back.
    pub done: u16,
}

impl Zc {
    pub fn new(bufs: Arc<dyn ZcBuffers>, ring_size: usize) -> Zc {
        Zc {
            bufs,
            slots: vec![ZcBuf::default(); ring_size].into_boxed_slice(),
            done: 0,
        }
    }

    /// Gives the buffers of slots `from..to` back to their owner.
    fn give_back(&self, mask: u16, from: u16, to: u16) {
        let mut tokens = [0u64; 64];
        let mut s = from;
        while s != to {
            let n = usize::from(to.wrapping_sub(s)).min(tokens.len());
            for (i, t) in tokens[..n].iter_mut().enumerate() {
                *t = self.slots[usize::from(s.wrapping_add(i as u16) & mask)].token;
            }
            self.bufs.free(&tokens[..n]);
            s = s.wrapping_add(n as u16);
        }
    }
}

/// Which end of which ring a queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// Server receiving on a client-to-server ring: reads head, writes tail.
    ServerRx,
    /// Client receiving on a server-to-client ring: reads tail, writes descriptors + head.
    ClientRx,
    /// Client sending on a client-to-server ring: writes descriptors + head, reads tail.
    ClientTx,
    /// Server sending on a server-to-client ring: reads descriptors + head, writes tail.
    ServerTx,
}

/// A connected queue's state; lives in its slot while the link is up.
pub(crate) struct Active {
    pub regions: Arc<Regions>,
    pub ring: Ring,
    pub side: Side,
    /// rx: the next slot to read; tx: the next slot to fill.
    pub next: u16,
    /// Client rx: the head last handed to the server.
    pub given: u16,
    /// The ring's eventfd (ours to kick on tx; the peer's kicks on rx).
    pub eventfd: Arc<OwnedFd>,
    /// Client-owned rings: slot i's buffer is at region 0, `buf_base + i * buffer_size`.
    pub buf_base: u32,
    pub buffer_size: u32,
    pub broken: bool,
    /// A zero-copy client queue's buffers (None: copy mode).
    pub zc: Option<Zc>,
}

impl Drop for Active {
    /// A zero-copy queue going away gives back the buffers still out.
    fn drop(&mut self) {
        if let Some(zc) = &self.zc {
            let mask = self.ring.mask();
            match self.side {
                Side::ClientRx => zc.give_back(mask, self.next, self.given),
                Side::ClientTx => zc.give_back(mask, zc.done, self.next),
                Side::ServerRx | Side::ServerTx => {}
            }
        }
    }
}

/// Counters of one queue (written under the queue's busy flag, read by anyone).
#[derive(Debug, Default)]
pub struct QueueStats {
    pub rx_frames: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub tx_frames: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// Frames not sent: the ring had no room.
    pub tx_no_room: AtomicU64,
    /// Frames not sent: the queue was in use by another thread, or down.
    pub tx_busy: AtomicU64,
    /// Frames dropped: a descriptor outside the mapped regions.
    pub bad_desc: AtomicU64,
    /// Frames dropped on rx: longer than the frame limit.
    pub too_long: AtomicU64,
    /// Rings found broken (head / tail moved by more than the ring size, a full ring
    /// that never ends a frame, an unusable tx buffer): each disconnects the peer.
    pub ring_broken: AtomicU64,
}

#[inline]
fn bump(c: &AtomicU64, n: u64) {
    // One writer at a time (the holder of the busy flag): no read-modify-write needed.
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// What a broken ring tells the control thread.
pub(crate) struct Notify {
    /// Some queue of the interface found its ring broken.
    pub broken: AtomicBool,
    /// The control thread's wake-up eventfd.
    pub wake: Arc<OwnedFd>,
}

impl Notify {
    fn ring_broken(&self) {
        if !self.broken.swap(true, Ordering::SeqCst) {
            sys::kick(self.wake.as_raw_fd());
        }
    }
}

/// One queue (one direction) of an interface.
#[repr(align(64))]
pub(crate) struct QueueSlot {
    busy: AtomicBool,
    state: UnsafeCell<Option<Active>>,
    /// Rx: where a chained frame is put together (allocated once, at the frame limit).
    scratch: UnsafeCell<Vec<u8>>,
    pub stats: QueueStats,
}

// SAFETY: `state` and `scratch` are touched only by the holder of `busy` (a Guard); the
// rest is atomic.
unsafe impl Sync for QueueSlot {}

pub(crate) struct Guard<'a>(&'a QueueSlot);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

impl Guard<'_> {
    pub fn state(&mut self) -> &mut Option<Active> {
        // SAFETY: the guard holds the busy flag: no other thread touches `state`.
        unsafe { &mut *self.0.state.get() }
    }

    fn scratch(&mut self) -> &mut Vec<u8> {
        // SAFETY: as in state.
        unsafe { &mut *self.0.scratch.get() }
    }
}

impl QueueSlot {
    pub fn new(scratch: usize) -> QueueSlot {
        QueueSlot {
            busy: AtomicBool::new(false),
            state: UnsafeCell::new(None),
            scratch: UnsafeCell::new(Vec::with_capacity(scratch)),
            stats: QueueStats::default(),
        }
    }

    #[inline]
    pub fn try_lock(&self) -> Option<Guard<'_>> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Guard(self))
    }

    /// Takes the flag, waiting for a burst in progress to end (control thread only).
    pub fn lock(&self) -> Guard<'_> {
        loop {
            if let Some(g) = self.try_lock() {
                return g;
            }
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
    }

    /// Receives up to `max` frames, each lent to `f`; returns how many.
    #[inline]
    pub fn rx_burst(
        &self,
        notify: &Notify,
        max: usize,
        max_frame: usize,
        mut f: impl FnMut(&[u8]),
    ) -> usize {
        let Some(mut g) = self.try_lock() else {
            return 0;
        };
        let scratch: *mut Vec<u8> = g.scratch();
        let Some(a) = g.state().as_mut() else {
            return 0;
        };
        if a.broken || a.zc.is_some() {
            return 0;
        }
        let stats = &self.stats;
        let ring = a.ring;
        let size = ring.size();
        let avail = match a.side {
            Side::ServerRx => ring.head().wrapping_sub(a.next),
            Side::ClientRx => {
                let n = ring.tail().wrapping_sub(a.next);
                if n > a.given.wrapping_sub(a.next) {
                    size + 1
                } else {
                    n
                }
            }
            Side::ClientTx | Side::ServerTx => return 0,
        };
        if avail > size {
            a.broken = true;
            bump(&stats.ring_broken, 1);
            notify.ring_broken();
            return 0;
        }
        let (mut frames, mut bytes, mut cur, end) =
            (0usize, 0u64, a.next, a.next.wrapping_add(avail));
        prefetch_slots(a, cur, usize::from(avail).min(max), false);
        while frames < max && cur != end {
            let d = ring.desc(cur);
            if d.flags & DESC_FLAG_NEXT == 0 {
                cur = cur.wrapping_add(1);
                match a.regions.bytes(d.region, d.offset, d.length) {
                    Some(p) if (d.length as usize) <= max_frame => {
                        // SAFETY: p..p+length lies inside a mapping that lives as long as
                        // `a.regions` (held). The peer may still write these bytes while we
                        // read them (it should not: it gave the slot to us); the worst it
                        // can do is change the frame's contents.
                        let s = unsafe { std::slice::from_raw_parts(p, d.length as usize) };
                        f(s);
                        frames += 1;
                        bytes += d.length as u64;
                    }
                    Some(_) => bump(&stats.too_long, 1),
                    None => bump(&stats.bad_desc, 1),
                }
                continue;
            }
            // A chain: find its end within what is available.
            let Some(k) = frame_descs(ring, cur, end) else {
                // Not ended yet: wait for the rest, unless the ring is full of it.
                if avail == size {
                    a.broken = true;
                    bump(&stats.ring_broken, 1);
                    notify.ring_broken();
                }
                break;
            };
            // SAFETY: the scratch buffer is ours while the guard is held (see Guard);
            // the pointer was taken from the guard above and `g` is still alive.
            let buf = unsafe { &mut *scratch };
            buf.clear();
            let mut ok = true;
            for i in 0..k {
                let d: Desc = ring.desc(cur.wrapping_add(i));
                let Some(p) = a.regions.bytes(d.region, d.offset, d.length) else {
                    bump(&stats.bad_desc, 1);
                    ok = false;
                    break;
                };
                if buf.len() + d.length as usize > max_frame {
                    bump(&stats.too_long, 1);
                    ok = false;
                    break;
                }
                // SAFETY: p..p+length is inside a live mapping (checked above).
                let s = unsafe { std::slice::from_raw_parts(p, d.length as usize) };
                buf.extend_from_slice(s);
            }
            cur = cur.wrapping_add(k);
            if ok {
                f(buf);
                frames += 1;
                bytes += buf.len() as u64;
            }
        }
        let moved = a.next != cur;
        a.next = cur;
        match a.side {
            Side::ServerRx if moved => ring.set_tail(cur),
            Side::ServerRx => {}
            _ => refill(a),
        }
        bump(&stats.rx_frames, frames as u64);
        bump(&stats.rx_bytes, bytes);
        frames
    }

    /// Zero-copy receive on a client's rx queue: up to `max` frames, each lent to `f` as
    /// its buffers (frame bytes in `len`), which are `f`'s from then on; the slots read
    /// get fresh buffers. Returns how many frames.
    #[inline]
    pub fn rx_burst_zc(
        &self,
        notify: &Notify,
        max: usize,
        max_frame: usize,
        mut f: impl FnMut(&[ZcBuf]),
    ) -> usize {
        let Some(mut g) = self.try_lock() else {
            return 0;
        };
        let Some(a) = g.state().as_mut() else {
            return 0;
        };
        if a.broken || a.side != Side::ClientRx {
            return 0;
        }
        let Some(zc) = a.zc.as_ref() else {
            return 0;
        };
        let stats = &self.stats;
        let ring = a.ring;
        let (size, mask) = (ring.size(), ring.mask());
        let avail = ring.tail().wrapping_sub(a.next);
        if avail > a.given.wrapping_sub(a.next) {
            a.broken = true;
            bump(&stats.ring_broken, 1);
            notify.ring_broken();
            return 0;
        }
        let mut segs = [ZcBuf::default(); ZC_MAX_CHAIN];
        let (mut frames, mut bytes, mut cur, end) =
            (0usize, 0u64, a.next, a.next.wrapping_add(avail));
        while frames < max && cur != end {
            // The frame's descriptors: one, or a chain ending within what is available
            // (else wait for the rest, unless the ring is full of it).
            let Some(k) = frame_descs(ring, cur, end) else {
                if avail == size {
                    a.broken = true;
                    bump(&stats.ring_broken, 1);
                    notify.ring_broken();
                }
                break;
            };
            let (mut total, mut ok) = (0u64, usize::from(k) <= ZC_MAX_CHAIN);
            let mut tokens = [0u64; ZC_MAX_CHAIN];
            for i in 0..usize::from(k).min(ZC_MAX_CHAIN) {
                let slot = cur.wrapping_add(i as u16);
                let b = zc.slots[usize::from(slot & mask)];
                let len = ring.desc(slot).length;
                tokens[i] = b.token;
                if len > b.len {
                    // Longer than the buffer we gave: the server wrote past it.
                    bump(&stats.bad_desc, 1);
                    ok = false;
                }
                total += u64::from(len);
                segs[i] = ZcBuf { len, ..b };
            }
            if ok && total > max_frame as u64 {
                bump(&stats.too_long, 1);
                ok = false;
            }
            if ok {
                f(&segs[..usize::from(k)]);
                frames += 1;
                bytes += total;
            } else if usize::from(k) <= ZC_MAX_CHAIN {
                zc.bufs.free(&tokens[..usize::from(k)]);
            } else {
                bump(&stats.too_long, 1);
                zc.give_back(mask, cur, cur.wrapping_add(k));
            }
            cur = cur.wrapping_add(k);
        }
        a.next = cur;
        refill_zc(a);
        bump(&stats.rx_frames, frames as u64);
        bump(&stats.rx_bytes, bytes);
        frames
    }

    /// Interrupt mode of an rx queue: `mask` false lets the peer kick the ring's eventfd
    /// after its next batch, true asks it not to. Returns the eventfd and whether frames
    /// are waiting already, read after the flag is set (a batch the peer finished before
    /// it could see the flag brings no kick: the caller must not sleep then). None when the
    /// queue is busy, down, broken or not an rx queue.
    pub fn rx_interrupt(&self, mask: bool) -> Option<(Arc<OwnedFd>, bool)> {
        let mut g = self.try_lock()?;
        let a = g.state().as_mut()?;
        if a.broken {
            return None;
        }
        let ring = a.ring;
        ring.set_flags(if mask { RING_FLAG_MASK_INT } else { 0 });
        // The flag store before the index load (the peer stores its index, then loads
        // the flag): one of the two sides sees the other's write.
        std::sync::atomic::fence(Ordering::SeqCst);
        let waiting = match a.side {
            Side::ServerRx => ring.head() != a.next,
            Side::ClientRx => ring.tail() != a.next,
            Side::ClientTx | Side::ServerTx => return None,
        };
        Some((a.eventfd.clone(), waiting))
    }

    /// Starts a tx batch, or None when the queue is busy, down or broken.
    #[inline]
    pub fn tx_batch<'a>(&'a self, notify: &'a Notify) -> Option<TxBatch<'a>> {
        let mut g = self.try_lock()?;
        let a = g.state().as_mut()?;
        if a.broken {
            return None;
        }
        let ring = a.ring;
        let size = ring.size();
        let free = match a.side {
            Side::ClientTx => {
                let used = a.next.wrapping_sub(ring.tail());
                size.checked_sub(used)
            }
            Side::ServerTx => {
                let f = ring.head().wrapping_sub(a.next);
                (f <= size).then_some(f)
            }
            Side::ClientRx | Side::ServerRx => return None,
        };
        // A zero-copy queue: the server can only have read what was lent.
        let back = a.zc.as_ref().map(|zc| {
            let t = ring.tail();
            (
                zc.done,
                t,
                t.wrapping_sub(zc.done) <= a.next.wrapping_sub(zc.done),
            )
        });
        let Some(free) = free.filter(|_| back.is_none_or(|(_, _, ok)| ok)) else {
            a.broken = true;
            bump(&self.stats.ring_broken, 1);
            notify.ring_broken();
            return None;
        };
        if let (Some(zc), Some((from, to, _))) = (a.zc.as_mut(), back) {
            zc.give_back(ring.mask(), from, to);
            zc.done = to;
        }
        let start = a.next;
        Some(TxBatch {
            g,
            notify,
            stats: &self.stats,
            free,
            start,
            frames: 0,
            bytes: 0,
            no_room: 0,
        })
    }
}

/// How many descriptors from slot `cur` make one frame (the chain up to the first without
/// the NEXT flag), if it ends before slot `end`.
#[inline]
fn frame_descs(ring: Ring, cur: u16, end: u16) -> Option<u16> {
    let left = end.wrapping_sub(cur);
    let mut k: u16 = 1;
    while k < left && ring.desc(cur.wrapping_add(k - 1)).flags & DESC_FLAG_NEXT != 0 {
        k += 1;
    }
    (ring.desc(cur.wrapping_add(k - 1)).flags & DESC_FLAG_NEXT == 0).then_some(k)
}

/// Client rx: hands every slot read so far back to the server as an empty buffer.
fn refill(a: &mut Active) {
    let ring = a.ring;
    let target = a.next.wrapping_add(ring.size());
    let mut s = a.given;
    while s != target {
        ring.set_desc(s, client_desc(a, s));
        s = s.wrapping_add(1);
    }
    if a.given != target {
        ring.set_head(target);
        a.given = target;
    }
}

/// Zero-copy client rx: hands fresh buffers to the server for every slot read so far (as
/// many as the caller's pool gives).
fn refill_zc(a: &mut Active) {
    let ring = a.ring;
    let mask = ring.mask();
    let target = a.next.wrapping_add(ring.size());
    let Some(zc) = a.zc.as_mut() else {
        return;
    };
    let mut bufs = [ZcBuf::default(); 64];
    let mut s = a.given;
    while s != target {
        let n = usize::from(target.wrapping_sub(s)).min(bufs.len());
        let got = zc.bufs.alloc(&mut bufs[..n]).min(n);
        for (i, b) in bufs[..got].iter().enumerate() {
            let slot = s.wrapping_add(i as u16);
            ring.set_desc(
                slot,
                Desc {
                    flags: 0,
                    region: ZC_REGION,
                    length: b.len,
                    offset: b.offset,
                },
            );
            zc.slots[usize::from(slot & mask)] = *b;
        }
        s = s.wrapping_add(got as u16);
        if got < n {
            break;
        }
    }
    if a.given != s {
        ring.set_head(s);
        a.given = s;
    }
}

/// Descriptors in one cache line.
const DESCS_PER_LINE: u16 = (64 / DESC_LEN) as u16;

/// The most slots asked for ahead of one burst: a burst's worth (the fast path's bursts are
/// 32), and never so many that the first lines are evicted before they are used.
const PREFETCH_MAX: usize = 64;

/// A client's own descriptor of `slot`: its buffer of the slot, whole (region 0,
/// `buf_base + i * buffer_size`; the layout was checked against the region when it was
/// made).
#[inline]
fn client_desc(a: &Active, slot: u16) -> Desc {
    let i = u32::from(slot & a.ring.mask());
    Desc {
        flags: 0,
        region: 0,
        length: a.buffer_size,
        offset: a.buf_base + i * a.buffer_size,
    }
}

/// Asks for the lines a burst over the `n` slots from `start` touches: their descriptors,
/// then the first line of each buffer (a client's tx buffers are its own; every other
/// side's are where the peer's descriptor says), all touched last by the peer's core, so
/// that those transfers overlap instead of each copy waiting for its own. `write`: the
/// burst writes them (tx). A hint: nothing changes.
#[inline]
fn prefetch_slots(a: &Active, start: u16, n: usize, write: bool) {
    let n = n.min(PREFETCH_MAX) as u16;
    let (ring, hint) = (a.ring, Hint::new());
    let ask = |p: *const u8| {
        if write {
            hint.write(p)
        } else {
            hint.read(p)
        }
    };
    for i in 0..n {
        let slot = start.wrapping_add(i);
        if i == 0 || slot % DESCS_PER_LINE == 0 {
            ask(ring.desc_addr(slot));
        }
    }
    for i in 0..n {
        let slot = start.wrapping_add(i);
        let d = match a.side {
            Side::ClientTx => client_desc(a, slot),
            _ => ring.desc(slot),
        };
        if let Some(p) = a.regions.bytes(d.region, d.offset, 1) {
            ask(p);
        }
    }
}

/// Prepares a freshly connected queue: head and tail to 0 and, for a client's rx ring,
/// every buffer handed to the server. `mask_int` sets the ring's flags for our rx rings.
pub(crate) fn activate(a: &mut Active, mask_int: bool) {
    let ring = a.ring;
    a.next = 0;
    a.given = 0;
    match a.side {
        Side::ServerRx | Side::ClientRx => {
            ring.set_flags(if mask_int { RING_FLAG_MASK_INT } else { 0 });
        }
        Side::ClientTx | Side::ServerTx => {}
    }
    if matches!(a.side, Side::ClientRx | Side::ClientTx) {
        ring.set_head(0);
        ring.set_tail(0);
    }
    if let Some(zc) = a.zc.as_mut() {
        zc.done = 0;
    }
    if a.side == Side::ClientRx {
        if a.zc.is_some() {
            refill_zc(a);
        } else {
            refill(a);
        }
    }
}

/// A tx batch: frames pushed are copied into the ring; the ring advances (and the peer is
/// kicked, unless it masks interrupts) once, when the batch is dropped.
pub struct TxBatch<'a> {
    g: Guard<'a>,
    notify: &'a Notify,
    stats: &'a QueueStats,
    free: u16,
    start: u16,
    frames: u64,
    bytes: u64,
    no_room: u64,
}

impl TxBatch<'_> {
    /// Asks for the lines the next `frames` pushes of frames that fit one buffer will
    /// write: their descriptors, then the first line of each buffer (a server reads the
    /// buffer's place from the descriptor the client wrote). Without it, each push waits
    /// for its descriptor and its buffer to come from the peer's core in turn. A hint:
    /// nothing changes.
    #[inline]
    pub fn prefetch(&mut self, frames: usize) {
        let Some(a) = self.g.state().as_ref() else {
            return;
        };
        if a.broken || a.zc.is_some() {
            return;
        }
        prefetch_slots(a, a.next, frames.min(usize::from(self.free)), true);
    }

    /// Copies one frame, given as its parts in order, into free buffers (a chain of
    /// descriptors when it is longer than one buffer). False when it did not fit (counted
    /// as `tx_no_room`) or the ring broke; the ring is then as before this frame.
    #[inline]
    pub fn push<'p>(&mut self, parts: impl IntoIterator<Item = &'p [u8]>) -> bool {
        let notify = self.notify;
        let stats = self.stats;
        let Some(a) = self.g.state().as_mut() else {
            return false;
        };
        if a.broken {
            return false;
        }
        if a.zc.is_some() {
            return self.push_copy_zc(parts);
        }
        let ring = a.ring;
        let side = a.side;
        let mut used: u16 = 0;
        let mut slot = a.next;
        let mut total = 0u64;
        let mut open = |slot: u16, used: &mut u16| -> Option<(*mut u8, u32, Desc)> {
            if *used >= self.free {
                return None;
            }
            *used += 1;
            let d = match side {
                Side::ClientTx => client_desc(a, slot),
                _ => ring.desc(slot),
            };
            match a.regions.bytes(d.region, d.offset, d.length) {
                Some(p) if d.length > 0 => Some((p, d.length, d)),
                _ => {
                    bump(&stats.bad_desc, 1);
                    a.broken = true;
                    bump(&stats.ring_broken, 1);
                    notify.ring_broken();
                    None
                }
            }
        };
        // The descriptor being filled: its buffer, capacity and fill.
        let (mut dst, mut cap, mut desc) = match open(slot, &mut used) {
            Some(x) => x,
            None => {
                self.no_room += 1;
                return false;
            }
        };
        let mut fill = 0u32;
        for part in parts {
            let mut src = part;
            while !src.is_empty() {
                if fill == cap {
                    finish(ring, side, slot, desc, fill, DESC_FLAG_NEXT);
                    slot = slot.wrapping_add(1);
                    match open(slot, &mut used) {
                        Some((p, c, d)) => (dst, cap, desc, fill) = (p, c, d, 0),
                        None => {
                            self.no_room += 1;
                            return false;
                        }
                    }
                }
                let n = (cap - fill).min(src.len() as u32);
                // SAFETY: dst..dst+cap lies inside a live mapping (checked by
                // Regions::bytes in `open`); fill + n <= cap; src has n bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), dst.add(fill as usize), n as usize)
                };
                fill += n;
                total += n as u64;
                src = &src[n as usize..];
            }
        }
        finish(ring, side, slot, desc, fill, 0);
        let Some(a) = self.g.state().as_mut() else {
            return false;
        };
        a.next = slot.wrapping_add(1);
        self.free -= used;
        self.frames += 1;
        self.bytes += total;
        true
    }

    /// Zero-copy send (a [`crate::Config::zero_copy`] client): lends the buffers of one
    /// frame, in order, each with the frame's bytes in it (`len`); they are given back
    /// through [`ZcBuffers::free`] once the server has read them. False, and the buffers
    /// still the caller's, when the ring has no room for them (counted as `tx_no_room`), the
    /// queue is not zero-copy, or the ring broke.
    #[inline]
    pub fn push_zc(&mut self, segs: &[ZcBuf]) -> bool {
        let Some(a) = self.g.state().as_mut() else {
            return false;
        };
        if a.broken || segs.is_empty() {
            return false;
        }
        let ring = a.ring;
        let mask = ring.mask();
        let Some(zc) = a.zc.as_mut() else {
            return false;
        };
        if segs.len() > usize::from(self.free) {
            self.no_room += 1;
            return false;
        }
        let mut total = 0u64;
        for (i, b) in segs.iter().enumerate() {
            let slot = a.next.wrapping_add(i as u16);
            let more = i + 1 < segs.len();
            ring.set_desc(
                slot,
                Desc {
                    flags: if more { DESC_FLAG_NEXT } else { 0 },
                    region: ZC_REGION,
                    length: b.len,
                    offset: b.offset,
                },
            );
            zc.slots[usize::from(slot & mask)] = *b;
            total += u64::from(b.len);
        }
        let n = segs.len() as u16;
        a.next = a.next.wrapping_add(n);
        self.free -= n;
        self.frames += 1;
        self.bytes += total;
        true
    }

    /// [`TxBatch::push`] on a zero-copy queue: the frame is copied into buffers taken from
    /// the caller's pool, then lent.
    fn push_copy_zc<'p>(&mut self, parts: impl IntoIterator<Item = &'p [u8]>) -> bool {
        let mut segs = [ZcBuf::default(); ZC_MAX_CHAIN];
        let n = match self.g.state().as_ref().and_then(|a| a.zc.as_ref()) {
            Some(zc) => copy_into(&*zc.bufs, parts, &mut segs),
            None => return false,
        };
        let Some(n) = n else {
            self.no_room += 1;
            return false;
        };
        if n == 0 {
            return false;
        }
        if self.push_zc(&segs[..n]) {
            return true;
        }
        if let Some(zc) = self.g.state().as_ref().and_then(|a| a.zc.as_ref()) {
            free_all(&*zc.bufs, &segs[..n]);
        }
        false
    }

    /// Frames pushed so far.
    pub fn sent(&self) -> u64 {
        self.frames
    }
}

/// Copies a frame, given as its parts, into buffers taken from `bufs`, filling `segs` from
/// the front (each with the bytes written into it); how many, or None (the buffers taken
/// given back) when the pool ran dry or the frame needs more than `segs` holds.
fn copy_into<'p>(
    bufs: &dyn ZcBuffers,
    parts: impl IntoIterator<Item = &'p [u8]>,
    segs: &mut [ZcBuf; ZC_MAX_CHAIN],
) -> Option<usize> {
    let mem = bufs.memory();
    let (base, size) = (mem.ptr(), mem.len());
    let mut n = 0usize;
    let mut fill = 0u32;
    for part in parts {
        let mut src = part;
        while !src.is_empty() {
            if n == 0 || fill == segs[n - 1].len {
                let ok = n < ZC_MAX_CHAIN && bufs.alloc(&mut segs[n..=n]) == 1;
                let b = segs[n.min(ZC_MAX_CHAIN - 1)];
                if !ok || b.len == 0 || b.offset as usize + b.len as usize > size {
                    free_all(bufs, &segs[..n + usize::from(ok)]);
                    return None;
                }
                n += 1;
                fill = 0;
            }
            let cur = &mut segs[n - 1];
            let k = (cur.len - fill).min(src.len() as u32);
            // SAFETY: offset + len lies inside the caller's shared memory (checked above),
            // which lives while `bufs` does; fill + k <= len; src has k bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src.as_ptr(),
                    base.add(cur.offset as usize + fill as usize),
                    k as usize,
                )
            };
            fill += k;
            src = &src[k as usize..];
        }
    }
    if n > 0 {
        // Each buffer carries what was written into it: all full but the last.
        segs[n - 1].len = fill;
    }
    Some(n)
}

/// Gives the buffers of `segs` back (at most [`ZC_MAX_CHAIN`], no allocation).
fn free_all(bufs: &dyn ZcBuffers, segs: &[ZcBuf]) {
    let mut tokens = [0u64; ZC_MAX_CHAIN];
    let n = segs.len().min(ZC_MAX_CHAIN);
    for (t, b) in tokens.iter_mut().zip(&segs[..n]) {
        *t = b.token;
    }
    bufs.free(&tokens[..n]);
}

/// Writes a filled descriptor.
#[inline]
fn finish(ring: Ring, side: Side, slot: u16, d: Desc, fill: u32, flags: u16) {
    match side {
        Side::ClientTx => ring.set_desc(
            slot,
            Desc {
                flags,
                length: fill,
                ..d
            },
        ),
        // The server fills the client's buffer: the region read with it stays.
        _ => ring.set_desc_head(slot, fill, flags, d.region),
    }
}

impl Drop for TxBatch<'_> {
    fn drop(&mut self) {
        let (frames, bytes, no_room) = (self.frames, self.bytes, self.no_room);
        let start = self.start;
        if let Some(a) = self.g.state().as_mut() {
            if a.next != start && !a.broken {
                match a.side {
                    Side::ClientTx => a.ring.set_head(a.next),
                    _ => a.ring.set_tail(a.next),
                }
                if a.ring.flags() & RING_FLAG_MASK_INT == 0 {
                    sys::kick(a.eventfd.as_raw_fd());
                }
            }
        }
        bump(&self.stats.tx_frames, frames);
        bump(&self.stats.tx_bytes, bytes);
        bump(&self.stats.tx_no_room, no_room);
    }
}
