//! vhost-user ports through librte_vhost's own API (`driver=native`): a socket registered
//! with the library and the device a VM (QEMU) or a virtio-user peer sets up on it, used
//! with enqueue / dequeue bursts on its device id. No ethdev port, so none of DPDK's 32
//! port slots, and no ethdev layer between the worker and the virtqueues.
//!
//! Who touches what: librte_vhost's event thread calls [`VhostState`]'s handlers (device
//! up, device down, queue enabled); workers call [`VhostPort::rx`] / [`VhostPort::tx`]. A
//! device goes away under the workers' feet (the VM stops, the peer dies), and librte_vhost
//! unmaps its memory as soon as `destroy_device` returns, so the two sides meet at two
//! flags (Dekker's handshake, both sides sequentially consistent): a worker raises its own
//! `busy` flag, then reads `ready`, and uses the device only if it is set; the handler
//! clears `ready`, then waits until no worker's `busy` flag is raised. A worker pays one
//! atomic exchange per burst, never a lock or a wait. librte_vhost serialises the workers
//! that enqueue into one virtqueue (its per-queue lock).
//!
//! A guest's memory table is checked before its device is used: each region must lie
//! inside the file it is mapped from (librte_vhost maps what the frontend says; a region
//! longer than its file would fault on the first frame there), else the device is refused
//! and the reason logged.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dpdk::{Burst, MemRegion, Mempool, VhostDevice, VhostEvents, VhostQueue, VhostSocket};

use crate::cell::bump;
use crate::native::TxDone;

/// Most queue pairs a vhost-user port polls.
pub const MAX_QUEUES: u16 = 16;

/// A worker's busy flag, alone on its cache line (workers raise theirs every burst).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Busy(AtomicBool);

/// Counters and state of a vhost-user port, shared with librte_vhost's thread.
#[derive(Debug)]
pub struct VhostState {
    socket: PathBuf,
    /// The live device's id (-1: none). Read by workers only while `ready` is set.
    vid: AtomicI32,
    ready: AtomicBool,
    /// Queue pairs of the live device the switch uses (tx spreads over them).
    pairs: AtomicU16,
    /// Each worker's busy flag, by worker id.
    busy: Box<[Busy]>,
    /// Queue pairs the switch polls at most (the interface's `queues=`).
    queues: u16,
    pool: Arc<Mempool>,
    /// Devices the switch took / refused, and devices gone, since the port opened.
    pub connects: AtomicU64,
    pub refused: AtomicU64,
    pub disconnects: AtomicU64,
    /// Kicks that woke a sleeping worker (adaptive mode, see [`VhostPort::rx_arm`]).
    pub rx_kicks: AtomicU64,
    /// The live device's negotiated virtio features (0 when none).
    pub features: AtomicU64,
    /// Why the last device was refused (empty if none was).
    last_refusal: Mutex<String>,
    /// The guest memory librte_vhost mapped for the connection, guarded against the
    /// frontend shrinking its files ([`peermem`]).
    guards: Mutex<Vec<peermem::Guard>>,
    /// Set once a guarded region faulted: the device is dropped and not used again.
    faulted: AtomicBool,
}

impl VhostState {
    /// Raises worker `w`'s busy flag and returns the live device's id, or None (flag
    /// lowered again) when there is no device.
    #[inline]
    fn enter(&self, w: usize) -> Option<(i32, &Busy)> {
        let busy = self.busy.get(w)?;
        busy.0.store(true, Ordering::SeqCst);
        if self.ready.load(Ordering::SeqCst) {
            Some((self.vid.load(Ordering::Relaxed), busy))
        } else {
            busy.0.store(false, Ordering::Release);
            None
        }
    }

    /// Refuses the connection for reason `e`: counted, logged and kept for `last_refusal`.
    fn refuse(&self, vid: i32, e: String) -> String {
        bump(&self.refused, 1);
        tracing::warn!(socket = %self.socket.display(), vid, reason = %e,
            "vhost-user device refused");
        *self.last_refusal.lock().unwrap_or_else(|e| e.into_inner()) = e.clone();
        e
    }

    /// Drops the device if a guarded region of its memory faulted (its frontend shrank a
    /// file under it): the workers stop using it, as when it goes. Control thread.
    pub fn check_faults(&self) {
        let faulted = {
            let guards = self.guards.lock().unwrap_or_else(|e| e.into_inner());
            guards.iter().any(|g| g.faults() > 0)
        };
        if !faulted || self.faulted.swap(true, Ordering::SeqCst) {
            return;
        }
        self.stop_workers();
        let e = "the frontend shrank a file of its memory under the switch \
                 (the region now reads zeros); device dropped"
            .to_string();
        self.refuse(self.vid.load(Ordering::Relaxed), e);
    }

    /// Clears `ready` and waits until no worker is inside a burst on the device.
    fn stop_workers(&self) {
        self.ready.store(false, Ordering::SeqCst);
        for b in self.busy.iter() {
            while b.0.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
        }
    }

    /// Checks a memory table: every region inside its file.
    fn check_memory(regions: &[MemRegion]) -> Result<(), String> {
        if regions.is_empty() {
            return Err("the frontend gave no memory table".into());
        }
        for r in regions {
            let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: fstat writes a stat into st; r.fd is the region's descriptor, open
            // while the device lives (librte_vhost keeps it until it unmaps the region).
            let rc = unsafe { libc::fstat(r.fd, st.as_mut_ptr()) };
            if rc != 0 {
                return Err(format!(
                    "memory region at guest address {:#x}: fstat of its file failed",
                    r.guest_phys_addr
                ));
            }
            // SAFETY: fstat succeeded, so st is initialised.
            let st = unsafe { st.assume_init() };
            let file = u64::try_from(st.st_size).unwrap_or(0);
            let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
            region_fits(r, regular.then_some(file))?;
        }
        Ok(())
    }
}

/// Whether region `r` lies inside its file, of `file` bytes (None: not a regular file, such
/// as a hugetlbfs one, whose size fstat reports too, or a shared-memory object: only an
/// empty region is refused then).
fn region_fits(r: &MemRegion, file: Option<u64>) -> Result<(), String> {
    let short = file.is_some_and(|f| f < r.mmap_size);
    if r.size == 0 || r.mmap_size < r.size || short {
        return Err(format!(
            "memory region at guest address {:#x} maps {} bytes from a file of {} bytes",
            r.guest_phys_addr,
            r.mmap_size,
            file.map_or_else(|| "unknown".to_string(), |f| f.to_string())
        ));
    }
    Ok(())
}

impl VhostEvents for VhostState {
    fn new_device(&self, dev: &VhostDevice) -> Result<(), String> {
        let vrings = dev.vrings();
        if vrings < 2 {
            let e = format!("the frontend set up {vrings} virtqueues, fewer than 2");
            return Err(self.refuse(dev.vid(), e));
        }
        if self.faulted.load(Ordering::SeqCst) {
            let e = "its memory faulted before the device started".to_string();
            return Err(self.refuse(dev.vid(), e));
        }
        let pairs = (vrings / 2).clamp(1, self.queues);
        for v in 0..vrings {
            dev.disable_kicks(v);
        }
        let features = dev.negotiated_features();
        self.features.store(features, Ordering::Relaxed);
        self.pairs.store(pairs, Ordering::Relaxed);
        self.vid.store(dev.vid(), Ordering::Relaxed);
        self.ready.store(true, Ordering::SeqCst);
        bump(&self.connects, 1);
        tracing::info!(socket = %self.socket.display(), vid = dev.vid(),
            features = format_args!("{features:#x}"), virtqueues = vrings, pairs,
            mtu = dev.mtu().unwrap_or(0), "vhost-user device up");
        Ok(())
    }

    fn destroy_device(&self, vid: i32) {
        if self.vid.load(Ordering::Relaxed) != vid {
            return;
        }
        self.stop_workers();
        self.vid.store(-1, Ordering::Relaxed);
        self.features.store(0, Ordering::Relaxed);
        bump(&self.disconnects, 1);
        tracing::info!(socket = %self.socket.display(), vid, "vhost-user device down");
    }

    fn vring_state_changed(&self, vid: i32, vring: u16, enable: bool) {
        tracing::debug!(socket = %self.socket.display(), vid, vring, enable,
            "vhost-user virtqueue state");
    }

    fn memory_table(&self, vid: i32, regions: &[MemRegion]) -> Result<(), String> {
        Self::check_memory(regions).map_err(|e| self.refuse(vid, e))?;
        let mut guards = self.guards.lock().unwrap_or_else(|e| e.into_inner());
        guards.clear();
        guards.extend(
            regions
                .iter()
                .filter_map(|r| peermem::guard(r.mmap_addr, r.mmap_size as usize)),
        );
        self.faulted.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn memory_table_going(&self, _vid: i32) {
        self.guards
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// A vhost-user interface as a port of the switch. See the module documentation.
#[derive(Debug)]
pub struct VhostPort {
    state: Arc<VhostState>,
    /// Registered for the port's life; unregistered (destroying a live device through
    /// `state`) when the port is dropped.
    socket: Option<VhostSocket>,
    mtu: AtomicU16,
}

impl VhostPort {
    /// Registers socket `path` (client: the switch connects to the frontend's socket, and
    /// reconnects; else it listens) for a dataplane of `workers` workers, polling up to
    /// `queues` queue pairs, receiving into mbufs of `pool`.
    pub fn open(
        path: &Path,
        client: bool,
        queues: u16,
        workers: usize,
        pool: Arc<Mempool>,
    ) -> Result<VhostPort, String> {
        let queues = queues.clamp(1, MAX_QUEUES);
        let state = Arc::new(VhostState {
            socket: path.to_path_buf(),
            vid: AtomicI32::new(-1),
            ready: AtomicBool::new(false),
            pairs: AtomicU16::new(0),
            busy: (0..workers.max(1)).map(|_| Busy::default()).collect(),
            queues,
            pool,
            connects: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            rx_kicks: AtomicU64::new(0),
            features: AtomicU64::new(0),
            last_refusal: Mutex::new(String::new()),
            guards: Mutex::new(Vec::new()),
            faulted: AtomicBool::new(false),
        });
        let socket = VhostSocket::register(path, client, state.clone())
            .map_err(|e| format!("vhost-user socket {}: {e}", path.display()))?;
        Ok(VhostPort {
            state,
            socket: Some(socket),
            mtu: AtomicU16::new(1500),
        })
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.state.socket
    }

    /// Queue pairs it polls at most.
    pub fn queues(&self) -> u16 {
        self.state.queues
    }

    /// Whether a device is up on the socket (a device whose memory faulted is dropped
    /// here first: this is polled by the control thread).
    pub fn is_up(&self) -> bool {
        self.state.check_faults();
        self.state.ready.load(Ordering::Relaxed)
    }

    /// The MTU the switch uses for it (the guest learns its own from QEMU).
    pub fn mtu(&self) -> u16 {
        self.mtu.load(Ordering::Relaxed)
    }

    pub fn set_mtu(&self, mtu: u16) {
        self.mtu.store(mtu, Ordering::Relaxed);
    }

    /// How many workers can send on it.
    pub fn tx_paths(&self) -> usize {
        self.state.busy.len()
    }

    /// Its counters by name, since it opened: devices taken, devices gone, devices
    /// refused (or dropped when their memory faulted), guest kicks that woke a worker.
    /// Control thread.
    pub fn counters(&self) -> [(&'static str, u64); 4] {
        let s = &*self.state;
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("connects", g(&s.connects)),
            ("disconnects", g(&s.disconnects)),
            ("refused", g(&s.refused)),
            ("rx_kicks", g(&s.rx_kicks)),
        ]
    }

    /// Why the last device was refused ("" if none was).
    pub fn last_refusal(&self) -> String {
        self.state
            .last_refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Receives up to `max` frames the guest sent on queue pair `pair` into `burst`
    /// (appended); returns how many. Nothing while no device is up, or when the device has
    /// fewer pairs.
    ///
    /// # Safety
    /// The caller is the thread of worker `worker` (the only thread that passes that id to
    /// this port), and the only poller of `pair`.
    #[inline]
    pub unsafe fn rx(&self, worker: usize, pair: u16, burst: &mut Burst, max: usize) -> usize {
        let s = &*self.state;
        let Some((vid, busy)) = s.enter(worker) else {
            return 0;
        };
        let n = if pair < s.pairs.load(Ordering::Relaxed) {
            // SAFETY: the device is live while our busy flag is raised and `ready` was set
            // after it (destroy_device waits for the flag), and we are pair's only poller.
            unsafe { VhostQueue { vid, pair }.dequeue(&s.pool, burst, max) }
        } else {
            0
        };
        busy.0.store(false, Ordering::Release);
        n
    }

    /// Sends every frame of `burst` to the guest (it is empty afterwards), on queue pair
    /// `worker` modulo the device's pairs: what the guest has no room for is refused.
    ///
    /// # Safety
    /// As for [`VhostPort::rx`] (`worker` is the caller's own id).
    #[inline]
    pub unsafe fn tx(&self, worker: usize, burst: &mut Burst) -> TxDone {
        let s = &*self.state;
        let n = burst.len();
        let Some((vid, busy)) = s.enter(worker) else {
            burst.clear();
            return TxDone {
                refused: n,
                ..TxDone::default()
            };
        };
        let pairs = s.pairs.load(Ordering::Relaxed).max(1);
        let pair = (worker % usize::from(pairs)) as u16;
        // SAFETY: as in rx; librte_vhost serialises enqueuers of one virtqueue.
        let (sent, bytes) = unsafe { VhostQueue { vid, pair }.enqueue(burst) };
        busy.0.store(false, Ordering::Release);
        TxDone {
            sent,
            bytes,
            bad_offload: 0,
            refused: n - sent,
        }
    }
}

/// How a queue pair stands when a worker wants to sleep ([`VhostPort::rx_arm`]).
#[derive(Debug)]
pub enum VhostArm {
    /// The guest kicks the descriptor when it sends; disarm after the sleep.
    Armed(VhostWake),
    /// No device, or it has fewer pairs: nothing can arrive until the control plane
    /// notices a change, which a bounded sleep covers.
    Down,
    /// Frames are waiting: do not sleep.
    Ready,
    /// The frontend gave no kick descriptor: the pair must be polled.
    Polled,
}

/// An armed queue pair: the guest's kick descriptor (a duplicate of ours) and the device
/// it belongs to.
#[derive(Debug)]
pub struct VhostWake {
    fd: OwnedFd,
    vid: i32,
    pair: u16,
}

impl VhostWake {
    /// The descriptor to wait on (readable once the guest kicked).
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl VhostPort {
    /// Arms queue pair `pair` for a sleep of worker `worker`: the guest is asked to kick
    /// when it sends (librte_vhost writes the virtqueue's notification flag or event
    /// index), then the virtqueue is looked at once more, so a frame the guest added before
    /// it could see the request is found here instead of being slept on.
    ///
    /// # Safety
    /// As for [`VhostPort::rx`].
    pub unsafe fn rx_arm(&self, worker: usize, pair: u16) -> VhostArm {
        let s = &*self.state;
        let Some((vid, busy)) = s.enter(worker) else {
            return VhostArm::Down;
        };
        let arm = if pair >= s.pairs.load(Ordering::Relaxed) {
            VhostArm::Down
        } else {
            let q = VhostQueue { vid, pair };
            // SAFETY (these three calls): the device is live while our busy flag is raised
            // (see rx); we are pair's only poller.
            match unsafe { q.kick_fd() } {
                None => VhostArm::Polled,
                Some(fd) => {
                    unsafe { q.guest_kicks(true) };
                    // The request is stored before the ring's index is read (the guest
                    // stores its index, then reads the request): one of us sees the other.
                    fence(Ordering::SeqCst);
                    if unsafe { q.waiting() } > 0 {
                        unsafe { q.guest_kicks(false) };
                        VhostArm::Ready
                    } else {
                        VhostArm::Armed(VhostWake { fd, vid, pair })
                    }
                }
            }
        };
        busy.0.store(false, Ordering::Release);
        arm
    }

    /// Asks the guest not to kick pair `w` again (the worker polls now), if its device is
    /// still the one armed; `woken`: the descriptor polled readable, so it is read (reset)
    /// and counted.
    ///
    /// # Safety
    /// As for [`VhostPort::rx`].
    pub unsafe fn rx_disarm(&self, worker: usize, w: &VhostWake, woken: bool) {
        let s = &*self.state;
        if woken {
            let mut v: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from an eventfd that polled readable
            // (we are its only reader, so the read does not block).
            let n = unsafe { libc::read(w.fd(), (&mut v as *mut u64).cast(), 8) };
            if n == 8 {
                bump(&s.rx_kicks, 1);
            }
        }
        let Some((vid, busy)) = s.enter(worker) else {
            return;
        };
        if vid == w.vid && w.pair < s.pairs.load(Ordering::Relaxed) {
            // SAFETY: as in rx_arm.
            unsafe { VhostQueue { vid, pair: w.pair }.guest_kicks(false) };
        }
        busy.0.store(false, Ordering::Release);
    }
}

impl Drop for VhostPort {
    fn drop(&mut self) {
        // Unregistering destroys a live device (through `state`, waiting for the workers'
        // flags) before the socket goes.
        drop(self.socket.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(size: u64, mmap_size: u64) -> MemRegion {
        MemRegion {
            guest_phys_addr: 0x1000,
            size,
            mmap_addr: 0,
            mmap_size,
            fd: -1,
        }
    }

    /// A region inside its file is taken; one longer than its file, an empty one, or one
    /// whose mapping is shorter than the region is refused, and the reason names the sizes.
    #[test]
    fn regions_must_lie_inside_their_files() {
        assert!(region_fits(&region(1 << 20, 1 << 20), Some(1 << 20)).is_ok());
        // The mapping covers an offset before the region: the file must cover both.
        assert!(region_fits(&region(1 << 20, 2 << 20), Some(2 << 20)).is_ok());
        let e = region_fits(&region(16 << 20, 16 << 20), Some(1 << 20)).unwrap_err();
        assert!(
            e.contains("maps 16777216 bytes from a file of 1048576 bytes"),
            "{e}"
        );
        assert!(region_fits(&region(0, 0), Some(1 << 20)).is_err());
        assert!(region_fits(&region(2 << 20, 1 << 20), Some(4 << 20)).is_err());
        // Not a regular file: its size is not checked.
        assert!(region_fits(&region(16 << 20, 16 << 20), None).is_ok());
        assert!(region_fits(&region(0, 0), None).is_err());
    }
}
