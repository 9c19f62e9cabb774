//! Native memif ports: an interface of the switch backed by the
//! [`memif`] crate's own protocol code instead of DPDK's net_memif, so it takes none of
//! DPDK's 32 port slots (100 memif interfaces run on one control thread).
//!
//! Who touches what: the crate's control thread owns the sockets, the handshakes and the
//! shared memory; workers call [`MemifPort::rx`] and [`MemifPort::tx`]. Each rx queue is
//! polled by the one worker the control plane placed it on (the plan's queue ownership).
//! On tx, worker `w` uses queue `w % n`, n the tx queues of the connected link (the peer
//! may agree to fewer than configured): with more workers than queues two workers share
//! a queue, and the crate's per-queue busy flag (one compare-and-swap per burst, never a
//! wait) makes that safe; a worker that finds its queue busy (or the link down) frees the
//! burst and counts it in `tx_busy`. No lock per packet, no system call except the
//! interrupt kick when the peer asked for one. The control plane reads the counters
//! (atomics) and the link state ([`MemifPort::is_up`], [`MemifPort::link_events`]).
//!
//! rx: each frame is copied from the shared buffer into an mbuf of the port's pool (a chain
//! for a jumbo frame), like [`crate::native`]. tx: each mbuf's segments are copied into the
//! peer's buffers (a descriptor chain when longer than one buffer); the ring advances once
//! per burst. Frames carry no offload state across memif (the protocol has none): a frame
//! whose checksum is left to the device must be completed in software before it gets here.
//!
//! Zero-copy ([`MemifPort::open_zero_copy`], a client only: the client owns the shared
//! memory): the port receives into, and sends from, a pool whose packet data lies in memory
//! shared with the server ([`ZcPool`]; the mbuf headers stay in private memory, so the peer
//! sees packet bytes only). The switch gives all its zero-copy ports one pool, so a frame
//! received on one leaves another without a copy. rx: the server writes into the pool's
//! buffers and the frames become mbufs as they are. tx: a frame already in the pool is lent
//! to the server by address and freed once the server has read it; any other frame is
//! copied into a buffer of the pool first. Every zero-copy peer can write to every buffer
//! of the pool at any time, including those of frames the switch is working on or sends to
//! another peer: zero-copy is for peers the operator trusts (as with DPDK's own, which
//! shares all of DPDK's memory).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use dpdk::{Burst, Eal, ExtArea, Mbuf, Mempool, Token, MAX_BURST};
use memif::{Config, Context, Interface, ZcBuf, ZcBuffers, ZcMemory};

use crate::native::TxDone;

/// Counters of a memif port beyond the interface's own (see [`MemifPort::totals`]).
#[derive(Debug, Default)]
pub struct MemifStats {
    /// Frames dropped on rx because the pool had no mbuf for them.
    pub rx_nombuf: AtomicU64,
    /// Frames not sent because the worker's tx queue was in use by another worker or the
    /// link was down (freed).
    pub tx_busy: AtomicU64,
    /// Kicks the peer sent to rx queues armed for a sleeping worker (counted when it
    /// wakes).
    pub rx_kicks: AtomicU64,
}

/// A port's counters summed over its queues, for the control plane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemifTotals {
    pub rx_frames: u64,
    pub rx_bytes: u64,
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Frames not sent: the peer's ring was full.
    pub tx_no_room: u64,
    pub tx_busy: u64,
    pub rx_nombuf: u64,
    /// Frames dropped: descriptors outside the shared memory.
    pub bad_desc: u64,
    /// Frames dropped on rx: longer than the frame limit.
    pub too_long: u64,
    /// Rings the peer broke (each disconnected it).
    pub ring_broken: u64,
    /// Kicks from the peer while a worker slept on the rx queues.
    pub rx_kicks: u64,
}

/// What [`MemifPort::rx_arm`] found.
#[derive(Debug)]
pub enum RxArm {
    /// Armed: the peer kicks this eventfd after its next batch.
    Armed(memif::RxWake),
    /// The link is down: nothing to wait for on this queue (a link coming up is seen at
    /// the next poll after the sleep).
    Down,
    /// Frames are waiting, or the queue is in use: poll, do not sleep.
    Ready,
}

/// The buffers of a zero-copy port: a pool of pinned external buffers in shared memory.
pub struct ZcPool {
    pool: Mempool,
    mem: Arc<ZcMemory>,
}

impl ZcPool {
    /// A pool of `mbufs` buffers of [`dpdk::DEFAULT_DATA_ROOM`] in fresh shared memory.
    pub fn new(eal: &Eal, name: &str, mbufs: u32) -> Result<ZcPool, String> {
        let room = dpdk::DEFAULT_DATA_ROOM;
        let size = mbufs as usize * usize::from(room);
        let mem = ZcMemory::new(name, size)
            .map(Arc::new)
            .map_err(|e| format!("shared memory of {size} bytes: {e}"))?;
        let area = ExtArea {
            base: mem.ptr(),
            len: mem.len(),
            keep: Box::new(mem.clone()),
        };
        let pool =
            Mempool::with_external(eal, name, mbufs, 256, room, area).map_err(|e| e.to_string())?;
        Ok(ZcPool { pool, mem })
    }

    /// The pool (for counters).
    pub fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// Whether its shared memory lies on hugepages (see [`ZcMemory::new`]).
    pub fn on_hugepages(&self) -> bool {
        self.mem.is_huge()
    }

    fn area(&self) -> (*const u8, usize) {
        (self.mem.ptr(), self.mem.len())
    }
}

impl ZcBuffers for ZcPool {
    fn memory(&self) -> &ZcMemory {
        &self.mem
    }

    fn alloc(&self, out: &mut [ZcBuf]) -> usize {
        let base = self.mem.ptr() as usize;
        let mut tokens = [Token::default(); 64];
        let mut done = 0;
        while done < out.len() {
            let want = (out.len() - done).min(tokens.len());
            let got = self.pool.alloc_tokens(&mut tokens[..want]);
            for (o, t) in out[done..done + got].iter_mut().zip(&tokens) {
                // The pool's buffers all lie in `mem` (Mempool::with_external), < 4 GiB.
                *o = ZcBuf {
                    token: t.token,
                    offset: (t.data as usize - base) as u32,
                    len: t.room,
                };
            }
            done += got;
            if got < want {
                break;
            }
        }
        done
    }

    fn free(&self, tokens: &[u64]) {
        // SAFETY: the memif crate gives back only tokens this pool's `alloc` (or
        // `Mbuf::lend` in MemifPort::tx) handed it, each once.
        unsafe { dpdk::free_tokens(tokens) }
    }
}

/// A memif interface as a port of the switch. See the module documentation.
pub struct MemifPort {
    iface: Interface,
    workers: usize,
    pool: Arc<Mempool>,
    stats: MemifStats,
    /// Zero-copy: the port's own buffers (None: copy mode).
    zc: Option<Arc<ZcPool>>,
}

impl std::fmt::Debug for MemifPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemifPort")
            .field("iface", &self.iface)
            .finish()
    }
}

impl MemifPort {
    /// Opens memif interface `cfg` on the process's memif control thread, for a dataplane
    /// of `workers` workers (each may send), received into mbufs of `pool`. A server is
    /// listening when this returns; a client connects in the background (and reconnects).
    pub fn open(
        cfg: Config,
        workers: usize,
        pool: Arc<Mempool>,
    ) -> Result<MemifPort, memif::Error> {
        MemifPort::open_in(Context::global()?, cfg, workers, pool)
    }

    /// As [`MemifPort::open`], on the control thread of `ctx`.
    pub fn open_in(
        ctx: &Context,
        cfg: Config,
        workers: usize,
        pool: Arc<Mempool>,
    ) -> Result<MemifPort, memif::Error> {
        MemifPort::open_with(ctx, cfg, workers, pool, None)
    }

    fn open_with(
        ctx: &Context,
        cfg: Config,
        workers: usize,
        pool: Arc<Mempool>,
        zc: Option<Arc<ZcPool>>,
    ) -> Result<MemifPort, memif::Error> {
        let iface = ctx.open(cfg)?;
        Ok(MemifPort {
            iface,
            workers: workers.max(1),
            pool,
            stats: MemifStats::default(),
            zc,
        })
    }

    /// As [`MemifPort::open_in`] for a zero-copy client (see the module documentation):
    /// frames are received into, and sent from, the buffers of `zc`.
    pub fn open_zero_copy(
        ctx: &Context,
        mut cfg: Config,
        workers: usize,
        pool: Arc<Mempool>,
        zc: Arc<ZcPool>,
    ) -> Result<MemifPort, memif::Error> {
        cfg.zero_copy = Some(zc.clone());
        MemifPort::open_with(ctx, cfg, workers, pool, Some(zc))
    }

    /// The buffers of a zero-copy port (None in copy mode).
    pub fn zero_copy(&self) -> Option<&ZcPool> {
        self.zc.as_deref()
    }

    /// Whether the peer is connected.
    pub fn is_up(&self) -> bool {
        self.iface.is_up()
    }

    /// Link changes so far (compare with the last value read to report up / down).
    pub fn link_events(&self) -> u64 {
        self.iface.link_events()
    }

    /// The memif interface (configuration, peer name, refusal counters, last error).
    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// How many workers can send on it (every worker of the dataplane it was opened for).
    pub fn tx_paths(&self) -> usize {
        self.workers
    }

    /// Queue pairs configured (each rx queue is placed on a worker).
    pub fn queues(&self) -> usize {
        self.iface.queues()
    }

    /// The port's own counters.
    pub fn stats(&self) -> &MemifStats {
        &self.stats
    }

    /// Every counter summed over the queues (control thread).
    pub fn totals(&self) -> MemifTotals {
        let mut t = MemifTotals {
            rx_nombuf: self.stats.rx_nombuf.load(Relaxed),
            tx_busy: self.stats.tx_busy.load(Relaxed),
            rx_kicks: self.stats.rx_kicks.load(Relaxed),
            ..MemifTotals::default()
        };
        for q in 0..self.iface.queues() {
            for s in [self.iface.rx_stats(q), self.iface.tx_stats(q)]
                .into_iter()
                .flatten()
            {
                t.rx_frames += s.rx_frames.load(Relaxed);
                t.rx_bytes += s.rx_bytes.load(Relaxed);
                t.tx_frames += s.tx_frames.load(Relaxed);
                t.tx_bytes += s.tx_bytes.load(Relaxed);
                t.tx_no_room += s.tx_no_room.load(Relaxed);
                t.tx_busy += s.tx_busy.load(Relaxed);
                t.bad_desc += s.bad_desc.load(Relaxed);
                t.too_long += s.too_long.load(Relaxed);
                t.ring_broken += s.ring_broken.load(Relaxed);
            }
        }
        t
    }

    /// Interrupt mode for the worker rx queue `q` is placed on, about to sleep (see
    /// [`crate::poll::Sleeper`]): unmasks the queue's ring so the peer kicks its eventfd
    /// after its next batch. [`MemifPort::rx_disarm`] it when the worker wakes.
    pub fn rx_arm(&self, q: usize) -> RxArm {
        if !self.iface.is_up() {
            return RxArm::Down;
        }
        match self.iface.rx_arm(q) {
            Some(w) => RxArm::Armed(w),
            None => RxArm::Ready,
        }
    }

    /// Masks rx queue `q`'s interrupts again (the worker polls it) and resets the eventfd
    /// `w` of its arming.
    pub fn rx_disarm(&self, q: usize, w: &memif::RxWake) {
        self.iface.rx_disarm(q);
        let kicks = w.ack();
        if kicks > 0 {
            self.stats.rx_kicks.fetch_add(kicks, Relaxed);
        }
    }

    /// Receives up to `max` frames (bounded by the room left in `burst`) from rx queue
    /// `q`, appended to `burst`; returns how many. The plan places each rx queue on one
    /// worker, the only caller; were there two at once, the queue's busy flag would give
    /// the second nothing (never a wait).
    #[inline]
    pub fn rx(&self, q: usize, burst: &mut Burst, max: usize) -> usize {
        let room = max.min(MAX_BURST - burst.len());
        if room == 0 {
            return 0;
        }
        if self.zc.is_some() {
            return self.rx_zc(q, burst, room);
        }
        let mut n = 0;
        let stats = &self.stats;
        // mbufs come from the pool a chunk at a time (Burst::fill), not one per frame.
        let mut fill = burst.fill(&self.pool);
        self.iface.rx_burst(q, room, |frame| {
            if fill.frame(frame) {
                n += 1;
            } else {
                stats.rx_nombuf.fetch_add(1, Relaxed);
            }
        });
        n
    }

    /// Zero-copy receive: the frames the server wrote into the pool's buffers, as mbufs.
    #[inline]
    fn rx_zc(&self, q: usize, burst: &mut Burst, room: usize) -> usize {
        let mut n = 0;
        self.iface.rx_burst_zc(q, room, |segs| {
            let mut frame: Option<Mbuf> = None;
            for b in segs {
                // SAFETY: the crate hands over buffers of this port's pool (ZcPool::alloc
                // gave them), each once, with `len` checked against the room they had.
                let seg = unsafe { Mbuf::from_token(b.token, b.len) };
                match frame.as_mut() {
                    None => frame = Some(seg),
                    // Beyond DPDK's segment limit (never at the crate's chain limit):
                    // the segment is freed and the frame cut short is dropped below.
                    Some(head) => {
                        if head.chain(seg).is_err() {
                            frame = None;
                            break;
                        }
                    }
                }
            }
            match frame.map(|m| burst.push(m)) {
                Some(Ok(())) => n += 1,
                _ => {
                    self.stats.rx_nombuf.fetch_add(1, Relaxed);
                }
            }
        });
        n
    }

    /// Sends every frame of `burst` (it is empty afterwards; what was not sent is freed and
    /// counted in the result's `refused`).
    #[inline]
    pub fn tx(&self, worker: usize, burst: &mut Burst) -> TxDone {
        let mut done = TxDone::default();
        let q = worker % self.iface.tx_queues_up().max(1);
        let Some(mut batch) = self.iface.tx_batch(q) else {
            done.refused = burst.len();
            self.stats.tx_busy.fetch_add(burst.len() as u64, Relaxed);
            burst.clear();
            return done;
        };
        if let Some(zc) = &self.zc {
            tx_zc(zc, &mut batch, burst, &mut done);
            return done;
        }
        batch.prefetch(burst.len());
        for m in burst.mbufs() {
            if batch.push(m.parts()) {
                done.sent += 1;
                done.bytes += m.len() as u64;
            } else {
                done.refused += 1;
            }
        }
        drop(batch);
        // Every frame was copied (or refused): the mbufs go back to the pool in one call.
        burst.clear();
        done
    }
}

/// The most segments of a frame lent as it is (longer chains are copied).
const LEND_MAX_SEGS: usize = 64;

/// Zero-copy send of every frame of `burst` on `batch`: frames in `zc`'s memory are lent by
/// address, the others copied into its buffers (and freed together at the end).
#[inline]
fn tx_zc(zc: &ZcPool, batch: &mut memif::TxBatch<'_>, burst: &mut Burst, done: &mut TxDone) {
    let area = zc.area();
    let base = area.0 as usize;
    let mut segs = [ZcBuf::default(); LEND_MAX_SEGS];
    let mut copied = Burst::new();
    for m in burst.drain() {
        let bytes = m.len() as u64;
        let lent = if usize::from(m.segments()) <= LEND_MAX_SEGS {
            let mut k = 0;
            m.lend(area, |token, data, len| {
                segs[k] = ZcBuf {
                    token,
                    offset: (data as usize - base) as u32,
                    len,
                };
                k += 1;
            })
            .map(|()| k)
        } else {
            Err(m)
        };
        let ok = match lent {
            Ok(k) => {
                let sent = batch.push_zc(&segs[..k]);
                if !sent {
                    let mut tokens = [0u64; LEND_MAX_SEGS];
                    for (t, b) in tokens.iter_mut().zip(&segs[..k]) {
                        *t = b.token;
                    }
                    zc.free(&tokens[..k]);
                }
                sent
            }
            // Not in the pool's memory: copied into a buffer of it.
            Err(m) => {
                let sent = batch.push(m.parts());
                // The burst it came from had room for it, so this one does.
                let _ = copied.push(m);
                sent
            }
        };
        if ok {
            done.sent += 1;
            done.bytes += bytes;
        } else {
            done.refused += 1;
        }
    }
    copied.clear();
}
