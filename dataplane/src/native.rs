//! Native kernel-interface ports (`driver=native`): an interface of the switch backed by a
//! [`kport`] AF_PACKET socket or tap instead of a DPDK ethdev port, so it takes none of
//! DPDK's 32 port slots and carries each frame's offload state (partial checksums, GSO
//! super-frames) both ways in virtio-net headers.
//!
//! Who touches what (the reason this module holds `unsafe`): the rx side (the socket's rx
//! ring and its tx ring, or the tap's descriptor) belongs to one worker, the port's rx
//! worker, for the port's whole life; every other worker sends through a handle of its own
//! ([`kport::AfPacketTx`], a send-only socket, or [`kport::TapTx`], a second descriptor of
//! the tap: one system call per frame). So no lock and no shared mutable state: [`NativePort::rx`] and [`NativePort::tx`] are unsafe fns whose caller promises
//! that it is the thread of the worker id it passes (the engine runs one thread per id).
//! The control thread only reads the counters (atomics) and the kernel's drop count
//! (through a second descriptor of the rx socket, [`kport::DropCounter`]).
//!
//! rx: each frame is copied into an mbuf from the port's pool (a chain when it is longer
//! than one mbuf's data room: a 64 KiB TSO frame from a pod takes 32 standard mbufs), and
//! its virtio-net header becomes the mbuf's offload state, which ethernet-input reads into
//! the frame's metadata like any device's. tx: the mbuf's offload state (written by the
//! output stage from the metadata, see [`crate::output`]) becomes the frame's virtio-net
//! header, so a GSO super-frame leaves whole and the kernel (or the pod) segments it.

use std::cell::UnsafeCell;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::sync::Mutex;
use std::thread::JoinHandle;

use dpdk::offload::{
    RX_L4_CKSUM_GOOD, TX_IPV4, TX_IPV6, TX_REQUESTS, TX_TCP_CKSUM, TX_TCP_SEG, TX_UDP_CKSUM,
    TX_UDP_SEG,
};
use dpdk::{Burst, Mbuf, MbufOffload, Mempool};
use kport::{
    AfPacket, AfPacketConfig, AfPacketTx, DropCounter, Tap, TapConfig, TapTx, VnetHdr, MAX_PARTS,
    VNET_HDR_LEN,
};

use crate::cell::bump;
use crate::graph::{Csum, Gso, Meta};
use crate::wire::vnet;

/// Counters of a native port that the dataplane's per-interface counters do not hold.
/// Each is written by one thread (the rx worker).
#[derive(Debug, Default)]
pub struct NativeStats {
    /// Frames dropped on rx because the pool had no mbuf for them.
    pub rx_nombuf: AtomicU64,
    /// Frames dropped on rx because their virtio-net header made no sense (or asked for
    /// UFO, which the dataplane cannot carry out).
    pub rx_bad_offload: AtomicU64,
}

/// What [`NativePort::tx`] did with a burst.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxDone {
    /// Frames the kernel took, and their bytes.
    pub sent: usize,
    pub bytes: u64,
    /// Frames whose offload state could not be written as a virtio-net header (freed).
    pub bad_offload: usize,
    /// Frames the kernel did not take (device queue or ring full; freed).
    pub refused: usize,
}

/// The rx worker's side of a port. One per port, in place: boxing the larger variant
/// would add a pointer chase to every burst.
#[allow(clippy::large_enum_variant)]
enum Io {
    /// The socket with the rings: rx, and tx of the rx worker.
    AfPacket(AfPacket),
    /// The tap's descriptor (one read / writev per frame).
    Tap(Tap),
}

/// Another worker's way to send on a port.
enum Sender {
    AfPacket(AfPacketTx),
    Tap(TapTx),
}

impl Sender {
    #[inline]
    fn send(&mut self, h: &VnetHdr, parts: &[&[u8]]) -> bool {
        match self {
            Sender::AfPacket(s) => s.send(h, parts),
            Sender::Tap(s) => s.send(h, parts),
        }
    }
}

/// A kernel interface as a port of the switch. See the module documentation.
pub struct NativePort {
    ifname: String,
    rx_worker: usize,
    /// Where received frames are copied to.
    pool: Arc<Mempool>,
    /// Taken only in `drop` (handed to a closing thread).
    io: UnsafeCell<ManuallyDrop<Io>>,
    /// `io`'s descriptor, readable while frames wait (see [`NativePort::rx_fd`]).
    rx_fd: RawFd,
    /// Each worker's send handle, by worker id (None for the rx worker).
    senders: Box<[UnsafeCell<Option<Sender>>]>,
    /// The kernel's drop count of the ring socket (af_packet), read by the control thread.
    drops: Option<DropCounter>,
    ring_bytes: usize,
    stats: NativeStats,
    /// The kernel's rx drops summed over reads (control thread).
    kernel_drops: AtomicU64,
    /// A persistent tap is deleted when the port closes (the interface was removed), not
    /// kept for the next vswitchd (a shutdown).
    delete_tap: AtomicBool,
}

// SAFETY: `ring` is used only by the thread of worker `rx_worker`, and `senders[w]` only by
// the thread of worker `w` (the callers of the unsafe `rx` / `tx` promise it); everything
// else is immutable after `open` or atomic. Dropping runs on whichever thread lets go of
// the last reference, when no other thread holds one.
unsafe impl Sync for NativePort {}

impl std::fmt::Debug for NativePort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativePort")
            .field("ifname", &self.ifname)
            .field("rx_worker", &self.rx_worker)
            .finish()
    }
}

/// Sockets whose rings are made ahead ([`kport::Prepared`]): each ring's set-up waits for
/// an RCU grace period in the kernel (5-20 ms here, two per port), which used to be most of
/// the time an `iface add` (and a CNI ADD) took. A port takes a prepared socket and binds
/// it; a thread makes the next ones. At most [`prepared::AHEAD`] (8) wait, each holding its
/// rings (768 KiB with the switch's ring sizes) and one descriptor.
pub mod prepared {
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Mutex;

    use kport::{AfPacket, AfPacketConfig, Prepared};

    /// Sockets kept ready.
    pub const AHEAD: usize = 8;

    static POOL: Mutex<Vec<Prepared>> = Mutex::new(Vec::new());
    static FILLING: AtomicBool = AtomicBool::new(false);

    /// A prepared socket of configuration `cfg`: one made ahead if there is one, else one
    /// made now; either way the pool is topped up in the background. Call it in the network
    /// namespace the port's interface is in (the switch's own: the pool's are made there).
    pub fn take(cfg: &AfPacketConfig) -> kport::Result<Prepared> {
        let ready = {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            let at = pool.iter().position(|p| p.config() == cfg);
            at.map(|i| pool.swap_remove(i))
        };
        refill(cfg);
        match ready {
            Some(p) => Ok(p),
            None => AfPacket::prepare(cfg),
        }
    }

    /// Sockets of `cfg` waiting now.
    pub fn ready(cfg: &AfPacketConfig) -> usize {
        let pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        pool.iter().filter(|p| p.config() == cfg).count()
    }

    fn refill(cfg: &AfPacketConfig) {
        if FILLING.swap(true, SeqCst) {
            return;
        }
        let cfg = cfg.clone();
        let spawned = std::thread::Builder::new()
            .name("native-prepare".into())
            .spawn(move || {
                // A failure (out of memory, descriptors) leaves the pool short: ports
                // are then prepared when they are added, and say why if that fails.
                while ready(&cfg) < AHEAD {
                    match AfPacket::prepare(&cfg) {
                        Ok(p) => POOL.lock().unwrap_or_else(|e| e.into_inner()).push(p),
                        Err(_) => break,
                    }
                }
                FILLING.store(false, SeqCst);
            });
        if spawned.is_err() {
            FILLING.store(false, SeqCst);
        }
    }
}

impl NativePort {
    /// Opens interface `ifname` (in the caller's network namespace) for a dataplane of
    /// `workers` workers, received by worker `rx_worker` into mbufs of `pool`.
    pub fn open(
        ifname: &str,
        cfg: &AfPacketConfig,
        workers: usize,
        rx_worker: usize,
        pool: Arc<Mempool>,
    ) -> kport::Result<NativePort> {
        let ring = prepared::take(cfg)?.bind(ifname)?;
        let senders = senders(workers, rx_worker, || {
            AfPacketTx::open(ifname).map(Sender::AfPacket)
        })?;
        let drops = ring.drop_counter().map_err(|e| kport::Error::Kernel {
            ifname: ifname.to_string(),
            op: "dup of the ring socket",
            source: e,
        })?;
        Ok(NativePort {
            ifname: ifname.to_string(),
            rx_worker,
            pool,
            ring_bytes: ring.ring_bytes(),
            rx_fd: ring.as_raw_fd(),
            io: UnsafeCell::new(ManuallyDrop::new(Io::AfPacket(ring))),
            senders,
            drops: Some(drops),
            stats: NativeStats::default(),
            kernel_drops: AtomicU64::new(0),
            delete_tap: AtomicBool::new(false),
        })
    }

    /// Creates tap `ifname`, or attaches to the persistent tap of that name (one a
    /// previous vswitchd left), as `cfg` says (persistence, network namespace); otherwise
    /// as [`NativePort::open`].
    pub fn open_tap(
        ifname: &str,
        cfg: &TapConfig,
        workers: usize,
        rx_worker: usize,
        pool: Arc<Mempool>,
    ) -> kport::Result<NativePort> {
        let tap = Tap::open(ifname, cfg)?;
        let senders = senders(workers, rx_worker, || tap.sender().map(Sender::Tap))?;
        Ok(NativePort {
            ifname: tap.ifname().to_string(),
            rx_worker,
            pool,
            ring_bytes: 0,
            rx_fd: tap.as_raw_fd(),
            io: UnsafeCell::new(ManuallyDrop::new(Io::Tap(tap))),
            senders,
            drops: None,
            stats: NativeStats::default(),
            kernel_drops: AtomicU64::new(0),
            delete_tap: AtomicBool::new(false),
        })
    }

    /// Makes a persistent tap go with the port when it closes (its interface was
    /// removed); a port closed without this keeps its tap for the next vswitchd.
    pub fn delete_tap_on_close(&self) {
        self.delete_tap.store(true, Relaxed);
    }

    /// The Linux interface's name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The descriptor a sleeping rx worker polls for reading: the ring's socket (readable
    /// while a frame the kernel put in a slot is not given back) or the tap's (while a
    /// frame is queued). Open as long as the port is.
    pub fn rx_fd(&self) -> RawFd {
        self.rx_fd
    }

    /// The worker that receives from it.
    pub fn rx_worker(&self) -> usize {
        self.rx_worker
    }

    /// Bytes of kernel ring memory it maps.
    pub fn ring_bytes(&self) -> usize {
        self.ring_bytes
    }

    /// Its counters.
    pub fn stats(&self) -> &NativeStats {
        &self.stats
    }

    /// How many workers can send on it (every worker of the dataplane it was opened for).
    pub fn tx_paths(&self) -> usize {
        self.senders.len()
    }

    /// Frames the kernel dropped because the rx ring was full, since the port opened (one
    /// `getsockopt`; the last total if it fails). Control thread.
    pub fn kernel_drops_total(&self) -> u64 {
        let more = self.kernel_drops_since().unwrap_or(0);
        self.kernel_drops.fetch_add(more, Relaxed) + more
    }

    /// Frames the kernel dropped because the rx ring was full, since the previous read
    /// (the kernel resets its count on each read).
    fn kernel_drops_since(&self) -> std::io::Result<u64> {
        self.drops.as_ref().map_or(Ok(0), DropCounter::read)
    }

    /// Receives up to `max` frames into `burst` (appended); returns how many. Nothing
    /// unless `worker` is the port's rx worker.
    ///
    /// # Safety
    /// The caller is the thread of worker `worker`, the only thread that passes that id to
    /// this port's `rx` and `tx`.
    #[inline]
    pub unsafe fn rx(&self, worker: usize, burst: &mut Burst, max: usize) -> usize {
        if worker != self.rx_worker {
            return 0;
        }
        // SAFETY: `io` is used only by the rx worker's thread, which the caller is.
        let io: &mut Io = unsafe { &mut *self.io.get() };
        let (pool, stats) = (&*self.pool, &self.stats);
        let mut n = 0;
        let f = |h: VnetHdr, frame: &[u8]| {
            let Ok(offload) = mbuf_offload_of(&h) else {
                bump(&stats.rx_bad_offload, 1);
                return;
            };
            let Some(mut m) = Mbuf::from_frame(pool, frame) else {
                bump(&stats.rx_nombuf, 1);
                return;
            };
            if let Some(o) = offload {
                m.set_offload(&o);
            }
            if burst.push(m).is_ok() {
                n += 1;
            }
        };
        match io {
            Io::AfPacket(r) => r.rx_burst(max, f),
            Io::Tap(t) => t.rx_burst(max, f),
        };
        n
    }

    /// Sends every frame of `burst` (it is empty afterwards): the rx worker through the
    /// tx ring (one kick for the burst), the others through their send sockets.
    ///
    /// # Safety
    /// As for [`NativePort::rx`].
    #[inline]
    pub unsafe fn tx(&self, worker: usize, burst: &mut Burst) -> TxDone {
        let mut done = TxDone::default();
        if worker == self.rx_worker {
            // SAFETY: as in rx.
            match unsafe { &mut **self.io.get() } {
                Io::AfPacket(ring) => {
                    for m in burst.drain() {
                        send_one(&m, &mut done, |h, p| ring.tx_queue(h, p));
                    }
                    if done.sent > 0 {
                        // A failed kick (counted by the ring) leaves the frames queued in
                        // the ring for the next one; if it stays full, later frames are
                        // refused and counted.
                        let _ = ring.tx_flush();
                    }
                }
                Io::Tap(tap) => {
                    for m in burst.drain() {
                        send_one(&m, &mut done, |h, p| tap.tx(h, p));
                    }
                }
            }
        } else if let Some(cell) = self.senders.get(worker) {
            // SAFETY: senders[worker] is used only by that worker's thread, the caller.
            match unsafe { &mut *cell.get() } {
                Some(s) => {
                    for m in burst.drain() {
                        send_one(&m, &mut done, |h, p| s.send(h, p));
                    }
                }
                None => {
                    done.refused = burst.len();
                    burst.clear();
                }
            }
        } else {
            done.refused = burst.len();
            burst.clear();
        }
        done
    }
}

/// Threads closing ports' sockets ([`wait_closed`] joins them).
static CLOSING: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

impl Drop for NativePort {
    /// Closes the sockets on a thread of their own: the kernel waits for a network-wide
    /// grace period in the close of every packet socket (about 15 ms here, see
    /// `packet_release`), so 300 ports closed one after another would take 13 s (3
    /// sockets each with two workers), and a worker or the control thread would stall
    /// meanwhile. Closed side by side, their waits overlap.
    fn drop(&mut self) {
        // SAFETY: `io` is taken once, here, and never used again (self is being dropped).
        let mut io = unsafe { ManuallyDrop::take(self.io.get_mut()) };
        if let (Io::Tap(tap), true) = (&mut io, *self.delete_tap.get_mut()) {
            // The interface goes with its last descriptor (the senders' too, closed next).
            let _ = tap.set_persist(false);
        }
        let senders = std::mem::take(&mut self.senders);
        let fd = self.drops.take();
        let close = move || drop((io, senders, fd));
        let mut closing = CLOSING.lock().unwrap_or_else(|e| e.into_inner());
        closing.retain(|h| !h.is_finished());
        let spawned = std::thread::Builder::new()
            .name("port-close".into())
            .spawn(close);
        if let Ok(h) = spawned {
            closing.push(h);
        }
        // (If no thread could be made, the closure was dropped by spawn: closed here.)
    }
}

/// Waits until every port dropped so far has closed its sockets (before the process
/// exits: the kernel would otherwise close them one by one on the way out).
pub fn wait_closed() {
    let handles = std::mem::take(&mut *CLOSING.lock().unwrap_or_else(|e| e.into_inner()));
    for h in handles {
        let _ = h.join();
    }
}

/// Each worker's send handle (None for the rx worker), made by `open`.
fn senders(
    workers: usize,
    rx_worker: usize,
    mut open: impl FnMut() -> kport::Result<Sender>,
) -> kport::Result<Box<[UnsafeCell<Option<Sender>>]>> {
    (0..workers.max(rx_worker + 1))
        .map(|w| {
            Ok(UnsafeCell::new(
                (w != rx_worker).then(&mut open).transpose()?,
            ))
        })
        .collect()
}

/// Sends one frame through `send` (the ring or a send socket), counted in `done`.
#[inline]
fn send_one(m: &Mbuf, done: &mut TxDone, send: impl FnOnce(&VnetHdr, &[&[u8]]) -> bool) {
    let Some(h) = vnet_hdr_of(m) else {
        done.bad_offload += 1;
        return;
    };
    let mut parts: [&[u8]; MAX_PARTS] = [&[]; MAX_PARTS];
    let mut k = 0;
    for p in m.parts() {
        let Some(slot) = parts.get_mut(k) else {
            done.bad_offload += 1;
            return;
        };
        *slot = p;
        k += 1;
    }
    if send(&h, &parts[..k]) {
        done.sent += 1;
        done.bytes += m.len() as u64;
    } else {
        done.refused += 1;
    }
}

/// The mbuf offload state for a frame whose virtio-net header is `h`: None when it asks
/// for nothing; Err for a header that makes no sense, or asks for what the dataplane cannot
/// carry out (UFO), or whose checksum start lies past what an mbuf can record.
#[inline]
fn mbuf_offload_of(h: &VnetHdr) -> Result<Option<MbufOffload>, ()> {
    if h.flags == 0 && h.gso_type == 0 {
        return Ok(None);
    }
    let bytes = h.encode();
    let view = vnet::VnetHdr::new_checked(&bytes[..]).map_err(|_| ())?;
    let o = vnet::Repr::parse(&view)
        .ok()
        .and_then(|r| r.to_offload())
        .ok_or(())?;
    to_mbuf_offload(&o).map(Some).ok_or(())
}

/// The dataplane's offload state `o` as DPDK's mbuf fields (what a device would have
/// written; [`Meta::set_offload`] reads it back). None when the checksum start does not fit
/// the mbuf's header length fields (l2_len 7 bits + l3_len 9 bits).
pub fn to_mbuf_offload(o: &vnet::Offload) -> Option<MbufOffload> {
    let mut f = match o.csum {
        Csum::PartialTcp => TX_TCP_CKSUM,
        Csum::PartialUdp => TX_UDP_CKSUM,
        Csum::Complete => RX_L4_CKSUM_GOOD,
        Csum::Unknown => 0,
    };
    f |= match o.gso {
        Gso::None => 0,
        Gso::TcpV4 => TX_TCP_SEG | TX_IPV4,
        Gso::TcpV6 => TX_TCP_SEG | TX_IPV6,
        Gso::Udp => TX_UDP_SEG,
    };
    let start = if f & TX_REQUESTS != 0 {
        o.csum_start
    } else {
        0
    };
    let l2 = start.min(0x7f);
    let l3 = start - l2;
    if l3 > 0x1ff {
        return None;
    }
    Some(MbufOffload {
        ol_flags: f,
        l2_len: l2 as u8,
        l3_len: l3,
        tso_segsz: if o.gso == Gso::None { 0 } else { o.gso_size },
    })
}

/// The virtio-net header to send `m` with: what its offload requests ask of the kernel
/// (nothing asked: an all-zero header). None when they cannot be written as one (a GSO
/// kind without its partial checksum, headers not in the first segment).
#[inline]
fn vnet_hdr_of(m: &Mbuf) -> Option<VnetHdr> {
    let mo = m.offload();
    if mo.ol_flags & TX_REQUESTS == 0 {
        return Some(VnetHdr::default());
    }
    let mut meta = Meta::default();
    meta.set_offload(&mo);
    let o = vnet::Offload {
        csum: meta.csum,
        csum_start: meta.csum_start,
        gso: meta.gso,
        gso_size: meta.gso_size,
    };
    let r = vnet::Repr::from_offload(&o, m.data()).ok()?;
    let mut b = [0u8; VNET_HDR_LEN];
    r.emit(&mut b)?;
    Some(VnetHdr::decode(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any header a pod can write is refused or becomes offload state that reads back
        /// the same through the metadata; nothing panics.
        #[test]
        fn any_vnet_header_is_refused_or_read_back(b in proptest::array::uniform10(any::<u8>())) {
            let h = VnetHdr::decode(&b);
            if let Ok(Some(o)) = mbuf_offload_of(&h) {
                let mut meta = Meta::default();
                meta.set_offload(&o);
                if meta.csum.field_offset().is_some() {
                    prop_assert_eq!(meta.csum_start, h.csum_start);
                }
                if meta.gso != Gso::None {
                    prop_assert_eq!(meta.gso_size, h.gso_size);
                    prop_assert!(meta.needs_offload());
                }
            }
        }
    }

    fn hdr(flags: u8, gso_type: u8, gso_size: u16, start: u16, offset: u16) -> VnetHdr {
        VnetHdr {
            flags,
            gso_type,
            hdr_len: 0,
            gso_size,
            csum_start: start,
            csum_offset: offset,
        }
    }

    /// Every header the kernel writes for a pod's frames maps to the offload state a
    /// device would have set, and back through the metadata.
    #[test]
    fn vnet_headers_become_mbuf_offload_state() {
        assert_eq!(mbuf_offload_of(&VnetHdr::default()), Ok(None));
        // TSO over IPv4: partial TCP checksum from byte 34, 1448-byte segments.
        let o = mbuf_offload_of(&hdr(1, 1, 1448, 34, 16)).unwrap().unwrap();
        assert_eq!(o.ol_flags, TX_TCP_CKSUM | TX_TCP_SEG | TX_IPV4);
        assert_eq!((u16::from(o.l2_len) + o.l3_len, o.tso_segsz), (34, 1448));
        let mut meta = Meta::default();
        meta.set_offload(&o);
        assert_eq!(
            (meta.csum, meta.csum_start, meta.gso, meta.gso_size),
            (Csum::PartialTcp, 34, Gso::TcpV4, 1448)
        );
        // A partial UDP checksum over IPv6 behind a VLAN tag.
        let o = mbuf_offload_of(&hdr(1, 0, 0, 58, 6)).unwrap().unwrap();
        meta.set_offload(&o);
        assert_eq!((meta.csum, meta.csum_start), (Csum::PartialUdp, 58));
        assert_eq!(meta.gso, Gso::None);
        // USO.
        let o = mbuf_offload_of(&hdr(1, 5, 1200, 34, 6)).unwrap().unwrap();
        meta.set_offload(&o);
        assert_eq!((meta.gso, meta.gso_size), (Gso::Udp, 1200));
        // DATA_VALID alone: a verified checksum.
        let o = mbuf_offload_of(&hdr(2, 0, 0, 0, 0)).unwrap().unwrap();
        meta.set_offload(&o);
        assert_eq!((meta.csum, meta.needs_offload()), (Csum::Complete, false));
        // Refused: UFO, GSO without a partial checksum, unknown flags, a start past what
        // the mbuf records.
        assert!(mbuf_offload_of(&hdr(1, 3, 1400, 34, 6)).is_err());
        assert!(mbuf_offload_of(&hdr(0, 1, 1448, 34, 16)).is_err());
        assert!(mbuf_offload_of(&hdr(0x40, 0, 0, 0, 0)).is_err());
        assert!(mbuf_offload_of(&hdr(1, 0, 0, 700, 16)).is_err());
    }
}
