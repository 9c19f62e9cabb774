//! Owned packet buffers and bursts of them.
//!
//! Ownership: an [`Mbuf`] or a slot of a [`Burst`] owns its rte_mbuf. Handing mbufs to a
//! device (`tx`) transfers ownership of exactly those the device accepted; whatever a burst
//! still holds when it is cleared or dropped goes back to its pool in one bulk call.

use std::ptr::NonNull;

use dpdk_sys::rte_mbuf;

use crate::mempool::Mempool;
use crate::port::PortQueue;

/// The largest burst the dataplane moves at once.
pub const MAX_BURST: usize = 256;

/// One owned packet buffer: a chain of one or more segments (rte_mbufs). [`Mbuf::len`] is
/// the whole packet; [`Mbuf::data`] sees the first segment only, which is the whole packet
/// when [`Mbuf::is_contiguous`] (every frame the switch's ports receive: their pools' data
/// room holds the largest frame of their MTU, and no port enables scattered rx).
#[derive(Debug)]
#[repr(transparent)]
pub struct Mbuf {
    pub(crate) raw: NonNull<rte_mbuf>,
}

// SAFETY: an Mbuf is the unique owner of its rte_mbuf; moving it to another thread moves
// that ownership, and mempools accept frees from any thread.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes one mbuf from `pool`; None when the pool is empty.
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: pool is a live pktmbuf pool.
        let raw = unsafe { dpdk_sys::rte_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(raw).map(|raw| Mbuf { raw })
    }

    /// Takes one mbuf from the pool this one came from (for frames made from it: the
    /// segments of a super-frame); None when that pool is empty.
    pub fn alloc_like(&self) -> Option<Mbuf> {
        // SAFETY: self owns a live mbuf, whose `pool` is the live pktmbuf pool it came from
        // (a pool outlives its mbufs).
        let raw = unsafe { dpdk_sys::rte_pktmbuf_alloc((*self.raw.as_ptr()).pool) };
        NonNull::new(raw).map(|raw| Mbuf { raw })
    }

    /// An mbuf holding a copy of `bytes`; None when the pool is empty or `bytes` does not fit.
    pub fn from_bytes(pool: &Mempool, bytes: &[u8]) -> Option<Mbuf> {
        let m = Mbuf::alloc(pool)?;
        let len = u16::try_from(bytes.len()).ok()?;
        // SAFETY: m owns a freshly reset mbuf: buf_addr + data_off starts its data room,
        // which we check holds len bytes before writing them.
        unsafe {
            let r = m.raw.as_ptr();
            if (*r).buf_len < (*r).data_off.saturating_add(len) {
                return None;
            }
            let dst = ((*r).buf_addr as *mut u8).add((*r).data_off as usize);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len());
            (*r).data_len = len;
            (*r).pkt_len = len as u32;
        }
        Some(m)
    }

    /// The packet's bytes (first segment).
    pub fn data(&self) -> &[u8] {
        // SAFETY: self owns the mbuf, whose first segment holds data_len valid bytes.
        unsafe { seg_data(self.raw.as_ptr()) }
    }

    /// The packet's bytes (first segment), writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        // SAFETY: self uniquely owns the mbuf, whose first segment holds data_len bytes.
        unsafe {
            let r = self.raw.as_ptr();
            let base = ((*r).buf_addr as *mut u8).add((*r).data_off as usize);
            std::slice::from_raw_parts_mut(base, (*r).data_len as usize)
        }
    }

    /// Grows a single-segment packet by `len` bytes at the end (taken from the tailroom)
    /// and returns them, for the caller to fill (they hold whatever the buffer held). None,
    /// and nothing changed, if the packet is chained or the tailroom is too small.
    pub fn append(&mut self, len: usize) -> Option<&mut [u8]> {
        let n = u16::try_from(len).ok()?;
        // SAFETY: self uniquely owns the mbuf; the new bytes lie between the end of its
        // data and the end of its buffer (checked), and the returned slice borrows self.
        unsafe {
            let r = self.raw.as_ptr();
            let end = u32::from((*r).data_off) + u32::from((*r).data_len);
            if (*r).nb_segs != 1 || end + u32::from(n) > u32::from((*r).buf_len) {
                return None;
            }
            let at = ((*r).buf_addr as *mut u8).add(end as usize);
            (*r).data_len += n;
            (*r).pkt_len += u32::from(n);
            Some(std::slice::from_raw_parts_mut(at, len))
        }
    }

    /// Copies the packet's first bytes, across its segments, into `out`; returns how many
    /// (the packet's length or `out`'s, whichever is less).
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        let mut done = 0;
        let mut seg: *const rte_mbuf = self.raw.as_ptr();
        while !seg.is_null() && done < out.len() {
            // SAFETY: seg is self's first segment or a `next` link of its chain, all owned
            // by self and live while &self is.
            let (data, next) = unsafe { (seg_data(seg), (*seg).next as *const rte_mbuf) };
            let n = data.len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&data[..n]);
            done += n;
            seg = next;
        }
        done
    }

    /// A packet holding a copy of `bytes`, in as many segments from `pool` as it takes (a
    /// frame longer than the pool's data room, such as a 64 KiB GSO super-frame from a
    /// kernel interface, is chained). None when the pool runs dry or the chain would
    /// exceed DPDK's segment limit: the segments taken go back to the pool.
    pub fn from_frame(pool: &Mempool, bytes: &[u8]) -> Option<Mbuf> {
        Mbuf::alloc(pool)?.fill_frame(pool, bytes)
    }

    /// Copies `bytes` into this fresh (empty, one-segment) mbuf, chaining more segments
    /// from `pool` when they do not fit; as [`Mbuf::from_frame`].
    #[inline]
    fn fill_frame(self, pool: &Mempool, bytes: &[u8]) -> Option<Mbuf> {
        let mut head = self;
        let n = bytes.len().min(head.tailroom());
        head.append(n)?.copy_from_slice(&bytes[..n]);
        let mut rest = &bytes[n..];
        while !rest.is_empty() {
            let mut seg = Mbuf::alloc(pool)?;
            let n = rest.len().min(seg.tailroom());
            if n == 0 {
                return None;
            }
            seg.append(n)?.copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            head.chain(seg).ok()?;
        }
        Some(head)
    }

    /// Bytes free after the data of a single-segment packet: what [`Mbuf::append`] can
    /// still take (0 for a chained packet).
    #[inline]
    pub fn tailroom(&self) -> usize {
        // SAFETY: self owns a live mbuf; only its lengths are read.
        unsafe {
            let r = self.raw.as_ptr();
            if (*r).nb_segs != 1 {
                return 0;
            }
            let end = usize::from((*r).data_off) + usize::from((*r).data_len);
            usize::from((*r).buf_len).saturating_sub(end)
        }
    }

    /// The packet's bytes, segment by segment, in order (one slice for a contiguous
    /// packet).
    pub fn parts(&self) -> Parts<'_> {
        Parts {
            seg: self.raw.as_ptr(),
            // SAFETY: raw is a live mbuf we own; nb_segs is in its first cache line.
            left: unsafe { (*self.raw.as_ptr()).nb_segs },
            _owner: std::marker::PhantomData,
        }
    }

    /// Appends `tail`'s segments to this packet's chain (the packet grows by `tail.len()`);
    /// gives `tail` back if the chain would exceed DPDK's segment limit.
    pub fn chain(&mut self, tail: Mbuf) -> Result<(), Mbuf> {
        // SAFETY: both are live mbufs we own, distinct (tail is moved in); on success
        // rte_pktmbuf_chain links tail's chain after self's and tail's first segment is
        // owned by self's chain from then on (so it is forgotten, not freed); on failure
        // nothing changed.
        let rc = unsafe { dpdk_sys::rte_pktmbuf_chain(self.raw.as_ptr(), tail.raw.as_ptr()) };
        if rc != 0 {
            return Err(tail);
        }
        std::mem::forget(tail);
        Ok(())
    }

    /// Packet length in bytes, over every segment (pkt_len; `data().len()` is the first
    /// segment's).
    #[inline]
    pub fn len(&self) -> usize {
        // SAFETY: self owns a live mbuf.
        unsafe { (*self.raw.as_ptr()).pkt_len as usize }
    }

    /// How many segments (chained rte_mbufs) hold the packet (nb_segs; 1 for most).
    #[inline]
    pub fn segments(&self) -> u16 {
        // SAFETY: self owns a live mbuf; nb_segs is kept by DPDK on the first segment.
        unsafe { (*self.raw.as_ptr()).nb_segs }
    }

    /// Whether the whole packet is in the first segment, so that [`Mbuf::data`] is all of it.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        // SAFETY: self owns a live mbuf; rte_pktmbuf_is_contiguous only reads nb_segs.
        unsafe { dpdk_sys::rte_pktmbuf_is_contiguous(self.raw.as_ptr()) != 0 }
    }

    /// Whether the packet is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Grows the packet by `n` bytes at the front (taken from the headroom, left as they
    /// were). False, and nothing changed, if the headroom is too small.
    #[inline]
    pub fn prepend(&mut self, n: u16) -> bool {
        // SAFETY: self uniquely owns the mbuf; we only move data_off within the buffer.
        unsafe {
            let r = self.raw.as_ptr();
            if (*r).data_off < n {
                return false;
            }
            (*r).data_off -= n;
            (*r).data_len += n;
            (*r).pkt_len += u32::from(n);
        }
        true
    }

    /// Drops `n` bytes from the front of the packet. False, and nothing changed, if the
    /// first segment is shorter than that.
    #[inline]
    pub fn adj(&mut self, n: u16) -> bool {
        // SAFETY: as in prepend; data_off stays within the first segment's data.
        unsafe {
            let r = self.raw.as_ptr();
            if (*r).data_len < n {
                return false;
            }
            (*r).data_off += n;
            (*r).data_len -= n;
            (*r).pkt_len -= u32::from(n);
        }
        true
    }

    /// Drops `n` bytes from the end of a single-segment packet (Ethernet padding after an
    /// IP packet). False, and nothing changed, if the packet is chained or shorter.
    #[inline]
    pub fn trim(&mut self, n: u16) -> bool {
        // SAFETY: self uniquely owns the mbuf; only the lengths of its one segment shrink.
        unsafe {
            let r = self.raw.as_ptr();
            if (*r).nb_segs != 1 || (*r).data_len < n {
                return false;
            }
            (*r).data_len -= n;
            (*r).pkt_len -= u32::from(n);
        }
        true
    }

    /// A deep copy from the same pool (for flooding); None when the pool is empty.
    pub fn copy(&self) -> Option<Mbuf> {
        // SAFETY: self is a live mbuf; rte_pktmbuf_copy allocates a new chain from `pool`
        // and copies the whole packet, leaving self untouched.
        let raw = unsafe {
            let r = self.raw.as_ptr();
            dpdk_sys::rte_pktmbuf_copy(r, (*r).pool, 0, u32::MAX)
        };
        NonNull::new(raw).map(|raw| Mbuf { raw })
    }

    /// A copy of `len` bytes from byte `off` of the packet, in a new mbuf from the same
    /// pool (with the pool's headroom in front, for headers); None when the pool is empty
    /// or the range is not within the packet.
    pub fn copy_range(&self, off: u32, len: u32) -> Option<Mbuf> {
        if u64::from(off) + u64::from(len) > self.len() as u64 {
            return None;
        }
        // SAFETY: self is a live mbuf and off + len is within it; rte_pktmbuf_copy
        // allocates a new chain from `pool` and copies that range, leaving self untouched.
        let raw = unsafe {
            let r = self.raw.as_ptr();
            dpdk_sys::rte_pktmbuf_copy(r, (*r).pool, off, len)
        };
        NonNull::new(raw).map(|raw| Mbuf { raw })
    }

    /// Lends the packet's segments out by address (zero-copy transmit into shared memory):
    /// `f(token, data, len)` for each segment in order, if every segment's data lies
    /// within `area` (base address and length) and the packet is one segment or owned
    /// alone (every segment's reference count 1, so each can be freed by itself). The
    /// tokens then own the segments, to be freed with [`free_tokens`] once the borrower
    /// is done; otherwise the packet is given back untouched.
    pub fn lend(
        self,
        area: (*const u8, usize),
        mut f: impl FnMut(u64, *const u8, u32),
    ) -> Result<(), Mbuf> {
        let (base, size) = (area.0 as usize, area.1);
        let inside = |seg: *const rte_mbuf| -> bool {
            // SAFETY: seg is a segment of the packet self owns.
            let (p, n) = unsafe {
                let d = seg_data(seg);
                (d.as_ptr() as usize, d.len())
            };
            p >= base && p - base + n <= size
        };
        let head = self.raw.as_ptr();
        // SAFETY: self owns a live chain of nb_segs segments linked by `next`.
        let segs = unsafe { (*head).nb_segs };
        let mut seg: *const rte_mbuf = head;
        for _ in 0..segs {
            // SAFETY: as above.
            let alone = segs == 1 || unsafe { dpdk_sys::rte_mbuf_refcnt_read(seg) } == 1;
            if !alone || !inside(seg) {
                return Err(self);
            }
            // SAFETY: as above.
            seg = unsafe { (*seg).next };
        }
        let mut seg = self.into_raw();
        for _ in 0..segs {
            // SAFETY: seg is a live segment whose ownership now goes to its token; its
            // `next` is read before the token is handed out.
            let (d, next) = unsafe { (seg_data(seg), (*seg).next) };
            f(seg as u64, d.as_ptr(), d.len() as u32);
            seg = next;
        }
        Ok(())
    }

    /// The one-segment packet of `len` bytes in the mbuf of token `t` (from
    /// [`Mempool::alloc_tokens`], whose buffer a peer filled).
    ///
    /// # Safety
    /// `t` is a token of [`Mempool::alloc_tokens`] owned by the caller (not freed nor
    /// turned into an `Mbuf` before), and `len` is at most the room that call reported.
    pub unsafe fn from_token(t: u64, len: u32) -> Mbuf {
        let r = t as *mut rte_mbuf;
        (*r).data_len = len as u16;
        (*r).pkt_len = len;
        Mbuf {
            raw: NonNull::new_unchecked(r),
        }
    }

    fn into_raw(self) -> *mut rte_mbuf {
        let p = self.raw.as_ptr();
        std::mem::forget(self);
        p
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: self is the unique owner; the mbuf goes back to its pool once.
        unsafe { dpdk_sys::rte_pktmbuf_free(self.raw.as_ptr()) }
    }
}

/// Frees the segments of tokens from [`Mbuf::lend`] or [`Mempool::alloc_tokens`].
///
/// # Safety
/// Each token is owned by the caller and freed once, here.
pub unsafe fn free_tokens(tokens: &[u64]) {
    for &t in tokens {
        dpdk_sys::rte_pktmbuf_free_seg(t as *mut rte_mbuf);
    }
}

/// # Safety
/// `m` must point to a live mbuf the caller may read for the returned lifetime.
unsafe fn seg_data<'a>(m: *const rte_mbuf) -> &'a [u8] {
    let base = ((*m).buf_addr as *const u8).add((*m).data_off as usize);
    std::slice::from_raw_parts(base, (*m).data_len as usize)
}

/// The segments of an [`Mbuf`], as byte slices ([`Mbuf::parts`]).
pub struct Parts<'a> {
    seg: *const rte_mbuf,
    /// Segments not yet given, from the head's `nb_segs`: the last one's `next` link (in
    /// the mbuf's second cache line) is never read, so a one-segment packet costs no
    /// second cache line.
    left: u16,
    _owner: std::marker::PhantomData<&'a Mbuf>,
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.seg.is_null() || self.left == 0 {
            return None;
        }
        self.left -= 1;
        // SAFETY: seg is the first segment of the Mbuf borrowed for 'a or a `next` link of
        // its chain, all owned by it and live while it is borrowed.
        let data = unsafe { seg_data(self.seg) };
        self.seg = if self.left == 0 {
            std::ptr::null()
        } else {
            // SAFETY: as above; a chain of nb_segs segments has a next link here.
            unsafe { (*self.seg).next as *const rte_mbuf }
        };
        Some(data)
    }
}

/// Up to [`MAX_BURST`] owned mbufs, received or to be sent together.
pub struct Burst {
    pub(crate) len: usize,
    pub(crate) pkts: [*mut rte_mbuf; MAX_BURST],
}

// SAFETY: a Burst uniquely owns the mbufs in pkts[..len] (see Mbuf's Send).
unsafe impl Send for Burst {}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    /// An empty burst.
    pub const fn new() -> Burst {
        Burst {
            len: 0,
            pkts: [std::ptr::null_mut(); MAX_BURST],
        }
    }

    /// How many mbufs it holds.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Receives up to `max` packets (capped by the free room) from `q`, appending them.
    /// Returns how many arrived.
    ///
    /// This is an `unsafe fn` rather than a safe one taking a move-only queue handle:
    /// [`PortQueue`]s live in forwarding plans that are rebuilt and published as a whole for
    /// every change, so the same queue is named by several plans at once; which thread uses
    /// which queue is decided by whoever builds the plans, and that is where the guarantee
    /// has to be given (see `vswitch_dataplane::Engine::publish`).
    ///
    /// # Safety
    /// DPDK's rx queues are not thread-safe and its fast path checks nothing. For the whole
    /// call:
    /// - no other thread receives from the same queue (`q.port()`, `q.queue()`): the caller
    ///   is its only poller;
    /// - the [`Port`](crate::Port) `q` came from is open: not being stopped or closed by
    ///   another thread, and not closed before (its port id may then name another device,
    ///   with fewer queues or polled by another thread).
    #[inline]
    pub unsafe fn rx(&mut self, q: PortQueue, max: usize) -> usize {
        let room = (MAX_BURST - self.len).min(max) as u16;
        // SAFETY: pkts[len..len+room] is inside the array; rx_burst writes at most `room`
        // pointers there and we take ownership of exactly the `n` it reports. q names a
        // configured queue of an open port (PortQueue invariant and the caller's contract)
        // that this thread alone polls (caller's contract).
        let n = unsafe {
            dpdk_sys::rte_eth_rx_burst(q.port, q.queue, self.pkts.as_mut_ptr().add(self.len), room)
        } as usize;
        self.len += n;
        n
    }

    /// Offers every packet to `q`. The ones the device took are gone from the burst; the
    /// rest stay (in order, at the front) for the caller to retry or drop. Returns how many
    /// were sent. (Why an `unsafe fn`: see [`Burst::rx`].)
    ///
    /// # Safety
    /// DPDK's tx queues are not thread-safe and its fast path checks nothing. For the whole
    /// call:
    /// - no other thread transmits on the same queue (`q.port()`, `q.queue()`);
    /// - the [`Port`](crate::Port) `q` came from is open: not being stopped or closed by
    ///   another thread, and not closed before.
    #[inline]
    pub unsafe fn tx(&mut self, q: PortQueue) -> usize {
        if self.len == 0 {
            return 0;
        }
        // SAFETY: pkts[..len] are owned mbufs; tx_burst takes ownership of the first `sent`
        // of them. q names a configured tx queue of an open port (PortQueue invariant and
        // the caller's contract) that only this thread uses (caller's contract).
        let sent = unsafe {
            dpdk_sys::rte_eth_tx_burst(q.port, q.queue, self.pkts.as_mut_ptr(), self.len as u16)
        } as usize;
        self.forget_front(sent);
        sent
    }

    /// Drops the first `n` slots without freeing them (their ownership went elsewhere).
    fn forget_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.pkts.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Appends an mbuf; gives it back when the burst is full.
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == MAX_BURST {
            return Err(m);
        }
        self.pkts[self.len] = m.into_raw();
        self.len += 1;
        Ok(())
    }

    /// Takes every mbuf out, in order (the burst is empty afterwards, even if the iterator
    /// is dropped early: the rest are freed then).
    pub fn drain(&mut self) -> Drain<'_> {
        let len = std::mem::replace(&mut self.len, 0);
        Drain {
            burst: self,
            next: 0,
            len,
        }
    }

    /// Keeps the mbufs whose `keep` entry is true, in order, and frees the others; returns
    /// how many were freed. Entries past `keep`'s end count as kept.
    pub fn retain(&mut self, keep: &[bool]) -> usize {
        let mut kept = 0;
        for i in 0..self.len {
            let p = self.pkts[i];
            if keep.get(i).copied().unwrap_or(true) {
                self.pkts[kept] = p;
                kept += 1;
            } else if let Some(raw) = NonNull::new(p) {
                drop(Mbuf { raw });
            }
        }
        let freed = self.len - kept;
        self.len = kept;
        freed
    }

    /// Removes and returns the last mbuf.
    pub fn pop(&mut self) -> Option<Mbuf> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        NonNull::new(self.pkts[self.len]).map(|raw| Mbuf { raw })
    }

    /// The bytes of packet `i` (first segment). Panics if `i >= len()`, like slice indexing.
    #[inline]
    pub fn data(&self, i: usize) -> &[u8] {
        assert!(i < self.len, "burst index {i} out of range {}", self.len);
        // SAFETY: pkts[i] is an owned live mbuf (i < len), readable while &self lives.
        unsafe { seg_data(self.pkts[i]) }
    }

    /// The bytes of packet `i` (first segment), writable. Panics if `i >= len()`.
    #[inline]
    pub fn data_mut(&mut self, i: usize) -> &mut [u8] {
        assert!(i < self.len, "burst index {i} out of range {}", self.len);
        // SAFETY: pkts[i] is an owned live mbuf (i < len), which the burst alone refers to:
        // writable while &mut self lives.
        unsafe {
            let r = self.pkts[i];
            let base = ((*r).buf_addr as *mut u8).add((*r).data_off as usize);
            std::slice::from_raw_parts_mut(base, (*r).data_len as usize)
        }
    }

    /// Total length of its packets, in bytes, every segment counted (pkt_len; reads each
    /// mbuf's first cache line, which the driver has just written on rx).
    #[inline]
    pub fn bytes(&self) -> u64 {
        self.pkts[..self.len]
            .iter()
            // SAFETY: pkts[..len] are owned live mbufs.
            .map(|&m| u64::from(unsafe { (*m).pkt_len }))
            .sum()
    }

    /// The mbufs it holds, borrowed in order (to send copies of them, then [`Burst::clear`]
    /// frees them all in one bulk call).
    #[inline]
    pub fn mbufs(&self) -> &[Mbuf] {
        // SAFETY: Mbuf is repr(transparent) over NonNull<rte_mbuf>, which has the layout
        // of *mut rte_mbuf; pkts[..len] are owned live mbufs, none null; the slice borrows
        // self, so none is freed or moved out while it lives.
        unsafe { std::slice::from_raw_parts(self.pkts.as_ptr().cast::<Mbuf>(), self.len) }
    }

    /// Frees every mbuf it holds, in one bulk call.
    #[inline]
    pub fn clear(&mut self) {
        if self.len > 0 {
            // SAFETY: pkts[..len] are owned mbufs, each freed exactly once here.
            unsafe { dpdk_sys::rte_pktmbuf_free_bulk(self.pkts.as_mut_ptr(), self.len as u32) };
            self.len = 0;
        }
    }
}

/// Frames copied into a [`Burst`] ([`Burst::fill`]): mbufs are taken from the pool in bulk,
/// [`FILL_CHUNK`] at a time, past the burst's packets; each frame given to
/// [`Fill::frame`] is copied into the next one, which then belongs to the burst. The ones
/// left over go back to the pool in one bulk call when the `Fill` is dropped.
pub struct Fill<'a> {
    burst: &'a mut Burst,
    pool: &'a Mempool,
    /// pkts[burst.len..spare_end] are allocated, empty mbufs owned by this Fill.
    spare_end: usize,
}

/// How many mbufs [`Fill`] takes from the pool at a time: a few frames' worth, so a queue
/// that has one frame frees few unused ones.
pub const FILL_CHUNK: usize = 8;

impl Burst {
    /// Starts copying frames into this burst (see [`Fill`]).
    #[inline]
    pub fn fill<'a>(&'a mut self, pool: &'a Mempool) -> Fill<'a> {
        let spare_end = self.len;
        Fill {
            burst: self,
            pool,
            spare_end,
        }
    }
}

impl Fill<'_> {
    /// Appends a packet holding a copy of `frame` (chained when longer than a segment).
    /// False when the burst is full or the pool is dry (nothing is kept of the frame).
    #[inline]
    pub fn frame(&mut self, frame: &[u8]) -> bool {
        let len = self.burst.len;
        if len == MAX_BURST {
            return false;
        }
        if self.spare_end <= len {
            self.spare_end = len;
            let n = FILL_CHUNK.min(MAX_BURST - len);
            // SAFETY: pkts[len..len+n] is inside the array and holds no owned mbuf (len ==
            // spare_end); on success rte_pktmbuf_alloc_bulk writes n fresh mbufs there,
            // owned by this Fill from then on; on failure it takes none.
            let rc = unsafe {
                dpdk_sys::rte_pktmbuf_alloc_bulk(
                    self.pool.as_ptr(),
                    self.burst.pkts.as_mut_ptr().add(len),
                    n as u32,
                )
            };
            if rc == 0 {
                self.spare_end = len + n;
            }
        }
        let head = if self.spare_end > len {
            // SAFETY: pkts[len] is an allocated empty mbuf this Fill owns (len < spare_end),
            // taken out here: the slot is refilled below or the range shrinks past it.
            NonNull::new(self.burst.pkts[len]).map(|raw| Mbuf { raw })
        } else {
            // The pool could not give a chunk: one at a time.
            Mbuf::alloc(self.pool)
        };
        let Some(head) = head else {
            return false;
        };
        let from_spare = self.spare_end > len;
        match head.fill_frame(self.pool, frame) {
            Some(m) => {
                self.burst.pkts[len] = m.into_raw();
                self.burst.len = len + 1;
                true
            }
            None => {
                // fill_frame freed the head: its slot no longer holds a spare mbuf.
                if from_spare {
                    let rest = self.spare_end - len - 1;
                    self.burst.pkts.copy_within(len + 1..self.spare_end, len);
                    self.spare_end = len + rest;
                }
                false
            }
        }
    }
}

impl Drop for Fill<'_> {
    fn drop(&mut self) {
        let (from, to) = (self.burst.len, self.spare_end);
        if to > from {
            // SAFETY: pkts[from..to] are allocated mbufs owned by this Fill, each freed
            // exactly once here.
            unsafe {
                dpdk_sys::rte_pktmbuf_free_bulk(
                    self.burst.pkts.as_mut_ptr().add(from),
                    (to - from) as u32,
                )
            };
        }
    }
}

/// Iterator of [`Burst::drain`].
pub struct Drain<'a> {
    burst: &'a mut Burst,
    next: usize,
    len: usize,
}

impl Iterator for Drain<'_> {
    type Item = Mbuf;

    #[inline]
    fn next(&mut self) -> Option<Mbuf> {
        if self.next == self.len {
            return None;
        }
        let p = self.burst.pkts[self.next];
        self.next += 1;
        NonNull::new(p).map(|raw| Mbuf { raw })
    }
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        for m in self.by_ref() {
            drop(m);
        }
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}

impl std::fmt::Debug for Burst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Burst").field("len", &self.len).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_eal::{eal, pool, require_eal};

    #[test]
    fn dropping_a_burst_frees_every_mbuf() {
        require_eal!();
        let pool = pool("t_drop", 512);
        let base = pool.in_use();
        {
            let mut b = Burst::new();
            for i in 0..200u8 {
                assert!(b.push(Mbuf::from_bytes(&pool, &[i; 60]).unwrap()).is_ok());
            }
            assert_eq!(pool.in_use(), base + 200);
            assert_eq!(b.data(7), &[7u8; 60][..]);
            assert_eq!(b.bytes(), 200 * 60);
            let keep: Vec<bool> = (0..200).map(|i| i % 3 == 0).collect();
            assert_eq!(b.retain(&keep), 133);
            assert_eq!(pool.in_use(), base + 67);
            assert_eq!((b.len(), b.data(1)), (67, &[3u8; 60][..]));
        }
        assert_eq!(pool.in_use(), base);
    }

    #[test]
    fn push_beyond_capacity_gives_the_mbuf_back() {
        require_eal!();
        let pool = pool("t_full", 512);
        let base = pool.in_use();
        let mut b = Burst::new();
        for _ in 0..MAX_BURST {
            assert!(b.push(Mbuf::alloc(&pool).unwrap()).is_ok());
        }
        let extra = Mbuf::alloc(&pool).unwrap();
        let back = b.push(extra).unwrap_err();
        drop(back);
        b.clear();
        assert!(b.is_empty());
        assert_eq!(pool.in_use(), base);
    }

    #[test]
    fn forget_front_keeps_the_rest_in_order() {
        require_eal!();
        let pool = pool("t_front", 64);
        let base = pool.in_use();
        let mut b = Burst::new();
        let mut sent = Vec::new();
        for i in 0..10u8 {
            b.push(Mbuf::from_bytes(&pool, &[i; 20]).unwrap()).unwrap();
        }
        // Pretend a device took the first 4: keep their pointers to free them as it would.
        for i in 0..4 {
            sent.push(b.pkts[i]);
        }
        b.forget_front(4);
        assert_eq!(b.len(), 6);
        assert_eq!(b.data(0)[0], 4);
        assert_eq!(b.data(5)[0], 9);
        for p in sent {
            drop(Mbuf {
                raw: NonNull::new(p).unwrap(),
            });
        }
        drop(b);
        assert_eq!(pool.in_use(), base);
        let _ = eal();
    }

    /// Fill copies frames into the burst, chunk after chunk, chains a jumbo one, and gives
    /// back what it took and did not use; a dry pool refuses frames without leaking.
    #[test]
    fn fill_copies_frames_and_returns_spares() {
        require_eal!();
        let pool = pool("t_fill", 128);
        let base = pool.in_use();
        let mut b = Burst::new();
        b.push(Mbuf::from_bytes(&pool, &[9; 20]).unwrap()).unwrap();
        let frames: Vec<Vec<u8>> = (0..19u8)
            .map(|i| vec![i; if i == 5 { 5000 } else { 60 + usize::from(i) }])
            .collect();
        {
            let mut f = b.fill(&pool);
            for fr in &frames {
                assert!(f.frame(fr));
            }
        }
        assert_eq!(b.len(), 20);
        assert_eq!(b.mbufs()[0].data(), &[9; 20]);
        for (m, fr) in b.mbufs()[1..].iter().zip(&frames) {
            assert_eq!(m.parts().flatten().copied().collect::<Vec<u8>>(), *fr);
        }
        // 19 frames, one of them 3 segments: 22 mbufs plus the first packet.
        assert_eq!(pool.in_use(), base + 22);
        b.clear();
        assert_eq!(pool.in_use(), base);

        // Take all but 3 mbufs: the chunk cannot be had, frames come one at a time, and
        // the fourth is refused.
        let mut hold = Vec::new();
        while let Some(m) = Mbuf::alloc(&pool) {
            hold.push(m);
        }
        for _ in 0..3 {
            hold.pop();
        }
        {
            let mut f = b.fill(&pool);
            for i in 0..3u8 {
                assert!(f.frame(&[i; 64]));
            }
            assert!(!f.frame(&[3; 64]));
        }
        assert_eq!(b.len(), 3);
        b.clear();
        drop(hold);
        assert_eq!(pool.in_use(), base);
    }

    /// mbufs() lends the packets in order without taking them; clear() then frees them.
    #[test]
    fn mbufs_lends_in_order_and_clear_frees() {
        require_eal!();
        let pool = pool("t_mbufs", 64);
        let base = pool.in_use();
        let mut b = Burst::new();
        assert!(b.mbufs().is_empty());
        for i in 0..5u8 {
            b.push(Mbuf::from_bytes(&pool, &[i; 40]).unwrap()).unwrap();
        }
        let firsts: Vec<u8> = b.mbufs().iter().map(|m| m.data()[0]).collect();
        assert_eq!(firsts, vec![0, 1, 2, 3, 4]);
        assert_eq!(b.mbufs()[4].len(), 40);
        assert_eq!((b.len(), pool.in_use()), (5, base + 5));
        b.clear();
        assert_eq!((b.len(), pool.in_use()), (0, base));
    }

    #[test]
    fn drain_moves_every_mbuf_and_frees_the_rest() {
        require_eal!();
        let pool = pool("t_drain", 64);
        let base = pool.in_use();
        let mut b = Burst::new();
        for i in 0..10u8 {
            b.push(Mbuf::from_bytes(&pool, &[i; 30]).unwrap()).unwrap();
        }
        let mut it = b.drain();
        let first = it.next().unwrap();
        assert_eq!(first.data()[0], 0);
        drop(it); // the other 9 are freed here
        assert_eq!(pool.in_use(), base + 1);
        assert!(b.is_empty());
        drop(first);
        assert_eq!(pool.in_use(), base);
    }

    #[test]
    fn prepend_adj_and_copy() {
        require_eal!();
        let pool = pool("t_edit", 64);
        let base = pool.in_use();
        let mut m = Mbuf::from_bytes(&pool, &[7u8; 60]).unwrap();
        assert!(m.prepend(4));
        assert_eq!(m.len(), 64);
        m.data_mut()[..4].copy_from_slice(&[1, 2, 3, 4]);
        let c = m.copy().unwrap();
        assert_eq!(c.data(), m.data());
        assert!(m.adj(4));
        assert_eq!(m.data(), &[7u8; 60][..]);
        assert!(!m.adj(61));
        assert!(!m.prepend(10_000));
        assert_eq!(m.len(), 60);
        assert_eq!(&c.data()[..4], &[1, 2, 3, 4]);
        drop((m, c));
        assert_eq!(pool.in_use(), base);
    }

    /// A packet of two segments: len() and Burst::bytes() count both, data() is the first.
    #[test]
    fn chained_segments_are_counted_whole() {
        require_eal!();
        let pool = pool("t_chain", 64);
        let base = pool.in_use();
        let head = Mbuf::from_bytes(&pool, &[1u8; 1500]).unwrap();
        let tail = Mbuf::from_bytes(&pool, &[2u8; 700]).unwrap();
        assert_eq!((head.segments(), head.is_contiguous()), (1, true));
        let mut head = head;
        assert!(head.chain(tail).is_ok());
        assert_eq!(head.segments(), 2);
        assert!(!head.is_contiguous());
        assert_eq!(head.len(), 2200);
        assert_eq!(head.data(), &[1u8; 1500][..]);
        let mut b = Burst::new();
        b.push(head).unwrap();
        assert_eq!(b.bytes(), 2200);
        drop(b);
        assert_eq!(
            pool.in_use(),
            base,
            "freeing the head frees the whole chain"
        );
    }

    /// copy_to reads across segments; append grows a single segment within its buffer;
    /// alloc_like takes from the same pool.
    #[test]
    fn copy_out_of_a_chain_append_and_alloc_like() {
        require_eal!();
        let pool = pool("t_copyto", 64);
        let base = pool.in_use();
        let mut m = Mbuf::from_bytes(&pool, &[1u8; 2048]).unwrap();
        assert!(m
            .chain(Mbuf::from_bytes(&pool, &[2u8; 2048]).unwrap())
            .is_ok());
        assert!(m
            .chain(Mbuf::from_bytes(&pool, &[3u8; 10]).unwrap())
            .is_ok());
        assert_eq!((m.len(), m.segments()), (4106, 3));
        let mut out = vec![0u8; 5000];
        assert_eq!(m.copy_to(&mut out), 4106);
        assert_eq!(out[2047..2049], [1, 2]);
        assert_eq!(out[4095..4107], [2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0]);
        assert_eq!(m.copy_to(&mut out[..2050]), 2050);
        assert!(m.append(1).is_none(), "chained");

        let mut n = m.alloc_like().unwrap();
        assert_eq!(pool.in_use(), base + 4);
        assert!(n.append(2049).is_none(), "past the buffer");
        assert_eq!(n.len(), 0);
        n.append(3).unwrap().copy_from_slice(&[7, 8, 9]);
        n.append(2045).unwrap().fill(1);
        assert!(n.append(1).is_none());
        assert_eq!((n.len(), &n.data()[..4]), (2048, &[7, 8, 9, 1][..]));
        drop((m, n));
        assert_eq!(pool.in_use(), base);
    }

    /// from_frame chains what does not fit one segment; parts gives the segments back in
    /// order; a pool that runs dry keeps nothing.
    #[test]
    fn frames_are_copied_into_chains_and_read_back_by_parts() {
        require_eal!();
        let pool = pool("t_frame", 64);
        let base = pool.in_use();
        let bytes: Vec<u8> = (0..65_000u32).map(|i| (i % 251) as u8).collect();
        let m = Mbuf::from_frame(&pool, &bytes).unwrap();
        assert_eq!(m.len(), bytes.len());
        assert_eq!(usize::from(m.segments()), bytes.len().div_ceil(2048));
        assert_eq!(m.parts().count(), usize::from(m.segments()));
        assert_eq!(m.parts().flatten().copied().collect::<Vec<u8>>(), bytes);
        let small = Mbuf::from_frame(&pool, &bytes[..60]).unwrap();
        assert!(small.is_contiguous());
        assert_eq!(small.parts().collect::<Vec<_>>(), vec![&bytes[..60]]);
        let empty = Mbuf::from_frame(&pool, &[]).unwrap();
        assert_eq!((empty.len(), empty.parts().count()), (0, 1));
        // 32 + 1 + 1 mbufs in use out of 64: a second 65,000-byte frame does not fit, and
        // the segments it took go back.
        assert!(Mbuf::from_frame(&pool, &bytes).is_none());
        assert_eq!(pool.in_use(), base + u32::from(m.segments()) + 2);
        drop((m, small, empty));
        assert_eq!(pool.in_use(), base);
    }

    #[test]
    fn oversized_copy_is_refused() {
        require_eal!();
        let pool = pool("t_big", 64);
        let base = pool.in_use();
        assert!(Mbuf::from_bytes(&pool, &vec![0u8; 70_000]).is_none());
        assert!(Mbuf::from_bytes(&pool, &[0u8; 4000]).is_none());
        assert_eq!(pool.in_use(), base);
    }
}
