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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dpdk::{Burst, Mempool, VhostDevice, VhostEvents, VhostQueue, VhostSocket};

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
    /// The live device's negotiated virtio features (0 when none).
    pub features: AtomicU64,
    /// Why the last device was refused (empty if none was).
    last_refusal: Mutex<String>,
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

    /// Checks device `dev`'s memory table: every region inside its file.
    fn check_memory(dev: &VhostDevice) -> Result<(), String> {
        let regions = dev.mem_regions();
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
            if r.size == 0 || (regular && file < r.mmap_size) {
                return Err(format!(
                    "memory region at guest address {:#x} maps {} bytes from a file of {} bytes",
                    r.guest_phys_addr, r.mmap_size, file
                ));
            }
        }
        Ok(())
    }
}

impl VhostEvents for VhostState {
    fn new_device(&self, dev: &VhostDevice) -> Result<(), String> {
        let checked = Self::check_memory(dev).and_then(|()| {
            let vrings = dev.vrings();
            if vrings < 2 {
                return Err(format!(
                    "the frontend set up {vrings} virtqueues, fewer than 2"
                ));
            }
            Ok(vrings)
        });
        let vrings = match checked {
            Ok(v) => v,
            Err(e) => {
                bump(&self.refused, 1);
                tracing::warn!(socket = %self.socket.display(), vid = dev.vid(), reason = %e,
                    "vhost-user device refused");
                *self.last_refusal.lock().unwrap_or_else(|e| e.into_inner()) = e.clone();
                return Err(e);
            }
        };
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
        if self.vid.load(Ordering::Relaxed) != vid || !self.ready.load(Ordering::SeqCst) {
            return;
        }
        self.ready.store(false, Ordering::SeqCst);
        for b in self.busy.iter() {
            while b.0.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
        }
        self.vid.store(-1, Ordering::Relaxed);
        self.features.store(0, Ordering::Relaxed);
        bump(&self.disconnects, 1);
        tracing::info!(socket = %self.socket.display(), vid, "vhost-user device down");
    }

    fn vring_state_changed(&self, vid: i32, vring: u16, enable: bool) {
        tracing::debug!(socket = %self.socket.display(), vid, vring, enable,
            "vhost-user virtqueue state");
    }
}

/// A vhost-user interface as a port of the switch. See the module documentation.
#[derive(Debug)]
pub struct VhostPort {
    state: Arc<VhostState>,
    client: bool,
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
            features: AtomicU64::new(0),
            last_refusal: Mutex::new(String::new()),
        });
        let socket = VhostSocket::register(path, client, state.clone())
            .map_err(|e| format!("vhost-user socket {}: {e}", path.display()))?;
        Ok(VhostPort {
            state,
            client,
            socket: Some(socket),
            mtu: AtomicU16::new(1500),
        })
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.state.socket
    }

    /// Whether the switch connects to the frontend's socket.
    pub fn is_client(&self) -> bool {
        self.client
    }

    /// Queue pairs it polls at most.
    pub fn queues(&self) -> u16 {
        self.state.queues
    }

    /// Whether a device is up on the socket.
    pub fn is_up(&self) -> bool {
        self.state.ready.load(Ordering::Relaxed)
    }

    /// Its counters and device state.
    pub fn state(&self) -> &VhostState {
        &self.state
    }

    /// Why the last device was refused (empty if none was).
    pub fn last_refusal(&self) -> String {
        self.state
            .last_refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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

impl Drop for VhostPort {
    fn drop(&mut self) {
        // Unregistering destroys a live device (through `state`, waiting for the workers'
        // flags) before the socket goes.
        drop(self.socket.take());
    }
}
