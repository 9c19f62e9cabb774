//! memif, the shared-memory packet interface of VPP and DPDK, in Rust, without DPDK: the
//! control protocol on a unix SOCK_SEQPACKET socket, the shared rings, both roles.
//!
//! - [`msg`]: the control messages (128-byte frames), parsed with full validation.
//! - [`Context`]: owns the control thread; [`Context::open`] adds an interface
//!   ([`Config`]: role, socket path, id, queues, ring and buffer sizes, secret).
//! - [`Interface`]: one memif interface: link state, per-queue [`Interface::rx_burst`] and
//!   [`Interface::tx_batch`], counters.
//!
//! # Threading contract
//!
//! - **Control thread** (one per [`Context`], named `memif-ctl`, for every interface of
//!   the context; [`Context::global`] is the process's): listens, accepts, connects and
//!   reconnects, runs every handshake, maps and unmaps shared memory, detects disconnects.
//!   It waits in `poll(2)` over all the sockets, so 100 interfaces cost one thread and one
//!   descriptor per socket plus, while connected, one eventfd per ring and one mapping.
//! - **Workers** call [`Interface::rx_burst`] and [`Interface::tx_batch`] for a queue from
//!   any thread. Each queue has a busy flag taken with one compare-and-swap per burst
//!   (never a wait: a queue in use by another thread gives 0 frames, or no batch); nothing
//!   is taken per packet and the data path makes no system call except the interrupt kick
//!   after a tx batch when the peer asked for interrupts. One thread per queue (per
//!   direction) is the intended use; a second caller is refused, not blocked.
//! - **Unmapping**: the control thread takes a queue's busy flag (waiting for the burst in
//!   progress) before it removes the queue's connection state, so a worker never touches
//!   a region after it is unmapped; the mapping goes with the last queue state holding it.
//! - **Link state**: [`Interface::is_up`] and [`Interface::link_events`] (a counter bumped
//!   on every up and down) are atomics readable from any thread; the owner polls the
//!   counter to report link changes.
//! - **Broken peers**: whatever a peer sends is checked (see [`Reason`] and
//!   [`QueueStats`]); refusals are logged through the context's logger, counted, and the
//!   peer gets a DISCONNECT with the reason. A worker that finds a ring broken stops using
//!   it and wakes the control thread, which disconnects.
//!
//! Copy mode: frames are copied between the caller's memory and the shared buffers.
//! Zero-copy, client only ([`Config::zero_copy`]): the caller's own buffers, in memory it
//! shares as a second region ([`ZcMemory`]), go on the rings by address: received frames
//! are handed over as buffers ([`Interface::rx_burst_zc`]), buffers to send are lent
//! ([`TxBatch::push_zc`]) and given back ([`ZcBuffers::free`]) once the server has read
//! them. The server can then write into every buffer of that region at any time, those
//! the caller is working on included: zero-copy is for a peer the caller trusts, as with
//! DPDK's and libmemif's own. Interrupt mode: after a tx batch the peer's ring eventfd is
//! written unless its ring flags mask interrupts; our rx rings mask them unless
//! [`Config::rx_interrupts`]. A worker that sleeps when idle arms its queues first
//! ([`Interface::rx_arm`]: unmasked while it sleeps, with a check for frames that came
//! before the peer saw the flag), waits on the eventfds and disarms them when it wakes.

pub mod msg;

mod conn;
mod ctl;
mod prefetch;
mod queue;
mod ring;
mod sys;

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub use conn::{MAX_REGIONS, MAX_REGION_SIZE};
pub use ctl::Context;
pub use queue::{QueueStats, TxBatch};

/// Memory a zero-copy client shares with its server as region 1: a memfd sealed against
/// shrinking (so the server can map it safely), mapped here.
#[derive(Debug)]
pub struct ZcMemory {
    pub(crate) fd: Arc<OwnedFd>,
    map: sys::Mapping,
    huge: bool,
}

/// The hugepage size [`ZcMemory::new`] tries first (the x86-64 default).
const HUGE_PAGE: usize = 2 << 20;

impl ZcMemory {
    /// At least `size` bytes of fresh shared memory (zeroed): on 2 MiB hugepages when the
    /// system has enough free (`size` rounded up to them; a peer then takes a TLB entry
    /// per 2 MiB of buffers, not per 4 KiB), else on ordinary pages.
    pub fn new(name: &str, size: usize) -> std::io::Result<ZcMemory> {
        let huge = size.div_ceil(HUGE_PAGE) * HUGE_PAGE;
        let on_huge = sys::memfd_huge(name, huge as u64)
            .and_then(|fd| sys::Mapping::map(&fd, huge).map(|m| (fd, m)));
        if let Ok((fd, map)) = on_huge {
            return Ok(ZcMemory {
                fd: Arc::new(fd),
                map,
                huge: true,
            });
        }
        let fd = sys::memfd(name, size as u64)?;
        let map = sys::Mapping::map(&fd, size)?;
        Ok(ZcMemory {
            fd: Arc::new(fd),
            map,
            huge: false,
        })
    }

    /// Whether it lies on hugepages.
    pub fn is_huge(&self) -> bool {
        self.huge
    }

    /// Where it is mapped in this process.
    pub fn ptr(&self) -> *mut u8 {
        self.map.ptr()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }
}

// SAFETY: the mapping is plain shared memory, valid until dropped; who writes which bytes
// is the users' protocol (see the crate documentation).
unsafe impl Send for ZcMemory {}
// SAFETY: as above.
unsafe impl Sync for ZcMemory {}

/// A zero-copy buffer: the caller's token for it, and where it lies in the
/// [`ZcBuffers::memory`] region (`offset`, and `len`: its room, or a frame's bytes in it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZcBuf {
    pub token: u64,
    pub offset: u32,
    pub len: u32,
}

/// The caller's buffers for a zero-copy client ([`Config::zero_copy`]).
pub trait ZcBuffers: Send + Sync {
    /// The memory every buffer lies in.
    fn memory(&self) -> &ZcMemory;
    /// Takes up to `out.len()` empty buffers (each with its room in `len`), filling `out`
    /// from the front; returns how many.
    fn alloc(&self, out: &mut [ZcBuf]) -> usize;
    /// Gives buffers back by token (those handed to the crate and no longer needed).
    fn free(&self, tokens: &[u64]);
}

impl std::fmt::Debug for dyn ZcBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZcBuffers")
            .field("memory", &self.memory().len())
            .finish()
    }
}
pub use ring::{COOKIE, MAX_LOG2_RING_SIZE, MIN_LOG2_RING_SIZE};

/// Which side of the protocol an interface takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Listens on the socket; maps the client's memory.
    Server,
    /// Connects (retrying until the server is there, reconnecting after it goes); makes
    /// the shared memory.
    Client,
}

/// An interface's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    /// A filesystem socket path (not abstract). A server creates it (mode
    /// [`Config::socket_mode`], replacing a stale socket file); several server interfaces
    /// may share one path with different ids.
    pub socket: PathBuf,
    pub id: u32,
    /// Queue pairs offered (server) or asked for (client), 1..=255.
    pub queues: u16,
    /// log2 of the ring size (10: 1024 descriptors).
    pub log2_ring_size: u8,
    /// Bytes of each shared buffer (a frame longer than one buffer takes a chain).
    pub buffer_size: u32,
    /// Optional shared secret (up to 24 bytes).
    pub secret: Option<String>,
    /// Our interface name (sent in CONNECT / CONNECTED).
    pub if_name: String,
    /// Our application name (sent in HELLO / INIT).
    pub app_name: String,
    /// Ask the peer to kick our rx rings' eventfds (for a worker that sleeps when idle).
    pub rx_interrupts: bool,
    /// The longest frame received (longer chains are dropped and counted).
    pub max_frame: usize,
    /// Mode of the server's socket file.
    pub socket_mode: u32,
    /// Client: how long between connection attempts.
    pub retry: std::time::Duration,
    /// Client: zero-copy with these buffers (see the crate documentation); None: copy.
    pub zero_copy: Option<Arc<dyn ZcBuffers>>,
}

impl Config {
    /// A configuration with the defaults: 1 queue, rings of 1024, buffers of 2048 bytes,
    /// frames up to 65535 bytes, socket mode 0660, client retry every 500 ms.
    pub fn new(role: Role, socket: impl Into<PathBuf>, id: u32) -> Config {
        Config {
            role,
            socket: socket.into(),
            id,
            queues: 1,
            log2_ring_size: 10,
            buffer_size: 2048,
            secret: None,
            if_name: format!("memif{id}"),
            app_name: "vswitch".into(),
            rx_interrupts: false,
            max_frame: 65535,
            socket_mode: 0o660,
            retry: std::time::Duration::from_millis(500),
            zero_copy: None,
        }
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |s: String| Err(Error::Config(s));
        if !(1..=255).contains(&self.queues) {
            return bad(format!("queues {} (1 to 255)", self.queues));
        }
        if !(MIN_LOG2_RING_SIZE..=MAX_LOG2_RING_SIZE).contains(&self.log2_ring_size) {
            return bad(format!(
                "log2 ring size {} ({MIN_LOG2_RING_SIZE} to {MAX_LOG2_RING_SIZE})",
                self.log2_ring_size
            ));
        }
        if !(64..=65536).contains(&self.buffer_size) {
            return bad(format!("buffer size {} (64 to 65536)", self.buffer_size));
        }
        let rings = 2 * self.queues as u64;
        let size = rings * ring::ring_bytes(self.log2_ring_size) as u64
            + rings * (1u64 << self.log2_ring_size) * self.buffer_size as u64;
        if size > u32::MAX as u64 {
            return bad(format!(
                "shared memory of {size} bytes (queues x ring x buffer) exceeds 4 GiB"
            ));
        }
        if self
            .secret
            .as_ref()
            .is_some_and(|s| s.len() > msg::SECRET_LEN)
        {
            return bad(format!("secret longer than {} bytes", msg::SECRET_LEN));
        }
        if let Some(z) = &self.zero_copy {
            if self.role != Role::Client {
                return bad("zero-copy needs the client role (the client owns the memory)".into());
            }
            if z.memory().len() as u64 > u32::MAX as u64 {
                return bad(format!(
                    "zero-copy memory of {} bytes exceeds 4 GiB",
                    z.memory().len()
                ));
            }
        }
        if self.max_frame == 0 || self.max_frame > 1 << 20 {
            return bad(format!("max frame {} (1 to 1 MiB)", self.max_frame));
        }
        if !self.socket.is_absolute() {
            return bad(format!(
                "socket path {} is not absolute",
                self.socket.display()
            ));
        }
        Ok(())
    }
}

/// Errors of [`Context::open`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("memif configuration: {0}")]
    Config(String),
    #[error("memif socket {path}: {source}")]
    Socket {
        path: String,
        source: std::io::Error,
    },
    #[error("memif socket {path}: id {id} already in use on it")]
    DuplicateId { path: String, id: u32 },
    #[error("memif control thread: {0}")]
    Control(String),
}

/// Why a peer was refused or a link dropped; each has a counter in [`PeerErrors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A message of the wrong length or type, or out of order.
    BadMessage,
    /// A protocol version we do not speak.
    BadVersion,
    /// The secret did not match.
    BadSecret,
    /// A region: no descriptor, size 0 or too big, larger than its file, not sealed,
    /// index out of order, or not mappable.
    BadRegion,
    /// A ring: outside its region, unaligned, unknown region, announced twice, or the
    /// ring sets do not match.
    BadRing,
    /// A ring without the memif cookie.
    BadCookie,
    /// A ring size out of range.
    BadLog2,
    /// More regions or rings than offered.
    TooMany,
    /// A ring found broken by the data path.
    RingBroken,
    /// The handshake did not finish in time (a peer that connects and stalls would
    /// otherwise hold the interface id).
    Timeout,
    /// Failure on our side (out of memory, descriptors).
    Local,
}

/// Counters of refused peers and dropped links, by reason (control thread writes).
#[derive(Debug, Default)]
pub struct PeerErrors {
    pub bad_message: AtomicU64,
    pub bad_version: AtomicU64,
    pub bad_secret: AtomicU64,
    pub bad_region: AtomicU64,
    pub bad_ring: AtomicU64,
    pub bad_cookie: AtomicU64,
    pub bad_log2: AtomicU64,
    pub too_many: AtomicU64,
    pub ring_broken: AtomicU64,
    pub timeout: AtomicU64,
    pub local: AtomicU64,
    /// DISCONNECT messages received from the peer.
    pub peer_disconnects: AtomicU64,
    /// Connections that ended without a DISCONNECT (socket closed or failed).
    pub socket_closed: AtomicU64,
}

impl PeerErrors {
    fn counter(&self, r: Reason) -> &AtomicU64 {
        match r {
            Reason::BadMessage => &self.bad_message,
            Reason::BadVersion => &self.bad_version,
            Reason::BadSecret => &self.bad_secret,
            Reason::BadRegion => &self.bad_region,
            Reason::BadRing => &self.bad_ring,
            Reason::BadCookie => &self.bad_cookie,
            Reason::BadLog2 => &self.bad_log2,
            Reason::TooMany => &self.too_many,
            Reason::RingBroken => &self.ring_broken,
            Reason::Timeout => &self.timeout,
            Reason::Local => &self.local,
        }
    }

    /// Every counter with its name.
    pub fn all(&self) -> [(&'static str, u64); 13] {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("bad_message", g(&self.bad_message)),
            ("bad_version", g(&self.bad_version)),
            ("bad_secret", g(&self.bad_secret)),
            ("bad_region", g(&self.bad_region)),
            ("bad_ring", g(&self.bad_ring)),
            ("bad_cookie", g(&self.bad_cookie)),
            ("bad_log2", g(&self.bad_log2)),
            ("too_many", g(&self.too_many)),
            ("ring_broken", g(&self.ring_broken)),
            ("timeout", g(&self.timeout)),
            ("local", g(&self.local)),
            ("peer_disconnects", g(&self.peer_disconnects)),
            ("socket_closed", g(&self.socket_closed)),
        ]
    }
}

/// What an interface shares between its owner, its workers and the control thread.
pub(crate) struct Shared {
    cfg: Config,
    rx: Box<[queue::QueueSlot]>,
    tx: Box<[queue::QueueSlot]>,
    notify: queue::Notify,
    up: AtomicBool,
    /// Tx queues of the connected link (0 while down).
    tx_up: AtomicUsize,
    link_events: AtomicU64,
    errors: PeerErrors,
    /// The last refusal or disconnect reason (control thread writes).
    last_error: Mutex<String>,
    /// The peer's names while connected.
    peer: Mutex<String>,
    /// Each rx queue's eventfd while connected.
    rx_fds: Mutex<Vec<Option<Arc<OwnedFd>>>>,
}

impl Shared {
    fn new(cfg: Config, wake: Arc<OwnedFd>) -> Shared {
        let q = cfg.queues as usize;
        let slots = |scratch| (0..q).map(|_| queue::QueueSlot::new(scratch)).collect();
        Shared {
            rx: slots(cfg.max_frame),
            tx: slots(0),
            notify: queue::Notify {
                broken: AtomicBool::new(false),
                wake,
            },
            up: AtomicBool::new(false),
            tx_up: AtomicUsize::new(0),
            link_events: AtomicU64::new(0),
            errors: PeerErrors::default(),
            last_error: Mutex::new(String::new()),
            peer: Mutex::new(String::new()),
            rx_fds: Mutex::new(vec![None; q]),
            cfg,
        }
    }
}

/// One memif interface. Dropping it removes the interface (the control thread disconnects
/// the peer and, for the last server interface on a socket, removes the socket file).
/// Every method takes `&self` and may be called from any thread; see the crate's
/// threading contract for the data path.
pub struct Interface {
    shared: Arc<Shared>,
    ctx: Arc<ctl::Inner>,
}

impl std::fmt::Debug for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interface")
            .field("socket", &self.shared.cfg.socket)
            .field("id", &self.shared.cfg.id)
            .field("up", &self.is_up())
            .finish()
    }
}

impl Interface {
    pub fn config(&self) -> &Config {
        &self.shared.cfg
    }

    /// Whether the link is connected.
    pub fn is_up(&self) -> bool {
        self.shared.up.load(Ordering::Acquire)
    }

    /// Link changes (up and down) so far.
    pub fn link_events(&self) -> u64 {
        self.shared.link_events.load(Ordering::Acquire)
    }

    /// Queue pairs configured (the connected link may use fewer: see [`Interface::rx_burst`]).
    pub fn queues(&self) -> usize {
        self.shared.cfg.queues as usize
    }

    /// Tx queues the connected link has (the peer may have agreed to fewer than
    /// configured); 0 while down. Spread senders over `0..tx_queues_up()`.
    #[inline]
    pub fn tx_queues_up(&self) -> usize {
        self.shared.tx_up.load(Ordering::Relaxed)
    }

    /// Receives up to `max` frames from queue `q`, each lent to `f` (a chained frame is put
    /// together first); returns how many. 0 when the link is down, the queue is in use by
    /// another thread, the connection has fewer queues, or `q` is out of range.
    #[inline]
    pub fn rx_burst(&self, q: usize, max: usize, mut f: impl FnMut(&[u8])) -> usize {
        let Some(s) = self.shared.rx.get(q) else {
            return 0;
        };
        let (notify, max_frame) = (&self.shared.notify, self.shared.cfg.max_frame);
        let Some(z) = &self.shared.cfg.zero_copy else {
            return s.rx_burst(notify, max, max_frame, f);
        };
        // Zero-copy: each frame copied out of the caller's buffers, which go back at once.
        let mem = z.memory();
        let mut frame = Vec::new();
        let mut tokens = Vec::new();
        s.rx_burst_zc(notify, max, max_frame, |segs| {
            frame.clear();
            tokens.clear();
            for b in segs {
                tokens.push(b.token);
                if b.offset as usize + b.len as usize <= mem.len() {
                    // SAFETY: offset + len lies inside the mapping of `mem` (checked),
                    // which lives as long as `z`.
                    let p = unsafe {
                        std::slice::from_raw_parts(mem.ptr().add(b.offset as usize), b.len as usize)
                    };
                    frame.extend_from_slice(p);
                }
            }
            f(&frame);
            z.free(&tokens);
        })
    }

    /// Zero-copy receive (a [`Config::zero_copy`] client) of up to `max` frames from queue
    /// `q`: each frame is lent to `f` as its buffers, in order (one unless chained), each
    /// with its frame bytes in `len`; the buffers are `f`'s from then on. Returns how many
    /// frames. On a copy-mode queue this receives nothing: use [`Interface::rx_burst`].
    #[inline]
    pub fn rx_burst_zc(&self, q: usize, max: usize, f: impl FnMut(&[ZcBuf])) -> usize {
        match self.shared.rx.get(q) {
            Some(s) => s.rx_burst_zc(&self.shared.notify, max, self.shared.cfg.max_frame, f),
            None => 0,
        }
    }

    /// Whether the interface runs zero-copy ([`Config::zero_copy`]).
    pub fn zero_copy(&self) -> bool {
        self.shared.cfg.zero_copy.is_some()
    }

    /// A tx batch on queue `q`: push frames into it, the ring advances when it is dropped.
    /// None (counted as `tx_busy` by the caller's choice) when the link is down, the queue
    /// is in use by another thread, or `q` is out of range.
    #[inline]
    pub fn tx_batch(&self, q: usize) -> Option<TxBatch<'_>> {
        self.shared.tx.get(q)?.tx_batch(&self.shared.notify)
    }

    /// Sends whole frames (one part each) on queue `q`; returns how many were sent.
    pub fn tx_burst(&self, q: usize, frames: &[&[u8]]) -> usize {
        let Some(mut b) = self.tx_batch(q) else {
            if let Some(s) = self.shared.tx.get(q) {
                queue_bump(&s.stats.tx_busy, frames.len() as u64);
            }
            return 0;
        };
        b.prefetch(frames.len());
        let mut n = 0;
        for f in frames {
            if !b.push([*f]) {
                break;
            }
            n += 1;
        }
        n
    }

    /// Interrupt mode for a reader about to sleep: unmasks rx queue `q`'s ring, so the
    /// peer kicks its eventfd after its next batch. Returns the eventfd to wait on, or None
    /// when frames are waiting already (do not sleep) or the queue cannot be armed (down,
    /// in use by another thread, out of range: poll it instead). After the wait,
    /// [`Interface::rx_disarm`] the queue and [`RxWake::ack`] the eventfd.
    pub fn rx_arm(&self, q: usize) -> Option<RxWake> {
        match self.shared.rx.get(q)?.rx_interrupt(false)? {
            (fd, false) => Some(RxWake(fd)),
            (_, true) => {
                self.rx_disarm(q);
                None
            }
        }
    }

    /// Masks rx queue `q`'s interrupts again (unless [`Config::rx_interrupts`] keeps
    /// them on): a polling reader does not want a kick per peer batch. Skipped when the
    /// queue is in use by another thread; a link that comes up starts masked.
    pub fn rx_disarm(&self, q: usize) {
        if let Some(s) = self.shared.rx.get(q) {
            s.rx_interrupt(!self.shared.cfg.rx_interrupts);
        }
    }

    /// The eventfd the peer kicks after sending on rx queue `q` (while connected, when
    /// [`Config::rx_interrupts`] is set). Wait for it to be readable, then read it.
    pub fn rx_eventfd(&self, q: usize) -> Option<Arc<OwnedFd>> {
        let fds = self.shared.rx_fds.lock().unwrap_or_else(|e| e.into_inner());
        fds.get(q).cloned().flatten()
    }

    /// Counters of rx queue `q`.
    pub fn rx_stats(&self, q: usize) -> Option<&QueueStats> {
        self.shared.rx.get(q).map(|s| &s.stats)
    }

    /// Counters of tx queue `q`.
    pub fn tx_stats(&self, q: usize) -> Option<&QueueStats> {
        self.shared.tx.get(q).map(|s| &s.stats)
    }

    /// Refusals and link drops by reason.
    pub fn errors(&self) -> &PeerErrors {
        &self.shared.errors
    }

    /// The last refusal or disconnect reason ("" if none).
    pub fn last_error(&self) -> String {
        self.shared
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The peer's interface and application names while connected.
    pub fn peer(&self) -> String {
        self.shared
            .peer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// An armed rx queue's eventfd ([`Interface::rx_arm`]); holds it open while waited on.
#[derive(Debug, Clone)]
pub struct RxWake(Arc<OwnedFd>);

impl RxWake {
    /// The descriptor to poll for reading.
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.0.as_raw_fd()
    }

    /// Resets the eventfd's counter (after a wake-up; it stays readable until then).
    /// Returns the kicks counted.
    pub fn ack(&self) -> u64 {
        sys::drain(self.fd())
    }
}

fn queue_bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Drop for Interface {
    /// Waits (up to 5 s) until the control thread has let the interface go: its queues'
    /// state, and a zero-copy client's buffers in them, are given back before this returns,
    /// so the caller may free what they came from (a DPDK pool) right after.
    fn drop(&mut self) {
        self.ctx.remove(&self.shared);
        let t = std::time::Instant::now();
        while Arc::strong_count(&self.shared) > 1 && t.elapsed() < std::time::Duration::from_secs(5)
        {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

#[cfg(test)]
mod malformed_tests;
