//! vhost-user through librte_vhost's own API: a socket registered with the library
//! ([`VhostSocket`]), the devices it reports through callbacks ([`VhostEvents`]), and
//! enqueue / dequeue bursts on a device id ([`VhostQueue`]); no ethdev port per socket, so
//! none of DPDK's 32 port slots.
//!
//! Threads: librte_vhost runs the vhost-user protocol on a thread of its own (its "vhost-
//! events" thread), which calls [`VhostEvents`]. A device's queues may be used from the
//! moment `new_device` returns `Ok` until `destroy_device` returns: the handler must make
//! sure that no thread is inside [`VhostQueue::enqueue`] / [`VhostQueue::dequeue`] for that
//! device when its `destroy_device` returns (librte_vhost unmaps the guest's memory right
//! after). librte_vhost serialises the threads that use one virtqueue (its per-queue access
//! lock), so several workers may enqueue into one queue.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, CStr, CString};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::{Burst, Error, Mempool, Result, MAX_BURST};

/// virtio-net features the switch turns off: checksum and segmentation offloads (the
/// frames a VM sends then carry complete checksums and are at most its MTU, as with
/// DPDK's net_vhost without `tso=1`), and ECN / UFO that go with them.
pub const DISABLED_FEATURES: u64 = (1 << 0) // VIRTIO_NET_F_CSUM
    | (1 << 1) // VIRTIO_NET_F_GUEST_CSUM
    | (1 << 7) // VIRTIO_NET_F_GUEST_TSO4
    | (1 << 8) // VIRTIO_NET_F_GUEST_TSO6
    | (1 << 9) // VIRTIO_NET_F_GUEST_ECN
    | (1 << 10) // VIRTIO_NET_F_GUEST_UFO
    | (1 << 11) // VIRTIO_NET_F_HOST_TSO4
    | (1 << 12) // VIRTIO_NET_F_HOST_TSO6
    | (1 << 13) // VIRTIO_NET_F_HOST_ECN
    | (1 << 14); // VIRTIO_NET_F_HOST_UFO

/// What a registered socket's owner hears from librte_vhost (on its thread).
pub trait VhostEvents: Send + Sync {
    /// A frontend finished setting up device `dev`. `Err` refuses it (logged by the
    /// caller; the frontend's connection is then closed by librte_vhost).
    fn new_device(&self, dev: &VhostDevice) -> std::result::Result<(), String>;
    /// Device `vid` is going: no thread may use its queues once this returns.
    fn destroy_device(&self, vid: i32);
    /// Virtqueue `vring` (2q: the guest's rx of queue pair q, 2q+1: its tx) of `vid` was
    /// enabled or disabled by the frontend.
    fn vring_state_changed(&self, vid: i32, vring: u16, enable: bool);
    /// The frontend's memory table for `vid` was just mapped (before any ring in it is
    /// read). `Err` refuses it: librte_vhost closes the connection.
    fn memory_table(&self, vid: i32, regions: &[MemRegion]) -> std::result::Result<(), String>;
    /// The memory table of `vid` is about to be unmapped (a new table replaces it, or the
    /// connection closes).
    fn memory_table_going(&self, vid: i32);
}

/// The handlers of the sockets registered in this process, by socket path (librte_vhost's
/// callbacks name only a device id, whose socket path `rte_vhost_get_ifname` gives).
static HANDLERS: Mutex<Option<HashMap<CString, Arc<dyn VhostEvents>>>> = Mutex::new(None);

fn handler_of(vid: c_int) -> Option<Arc<dyn VhostEvents>> {
    let path = ifname(vid)?;
    let handlers = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
    handlers.as_ref()?.get(&path).cloned()
}

fn ifname(vid: c_int) -> Option<CString> {
    let mut buf = [0 as c_char; 256];
    // SAFETY: buf is writable for its length, which we pass; the library NUL-terminates.
    let rc = unsafe { dpdk_sys::rte_vhost_get_ifname(vid, buf.as_mut_ptr(), buf.len()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: NUL-terminated within buf (above).
    Some(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_owned())
}

unsafe extern "C" fn on_new_device(vid: c_int) -> c_int {
    let Some(h) = handler_of(vid) else {
        return -1;
    };
    match h.new_device(&VhostDevice { vid }) {
        Ok(()) => 0,
        Err(_) => -1,
    }
}

unsafe extern "C" fn on_destroy_device(vid: c_int) {
    if let Some(h) = handler_of(vid) {
        h.destroy_device(vid);
    }
}

unsafe extern "C" fn on_new_connection(vid: c_int) -> c_int {
    // SAFETY: EXTERN_OPS is a static the library may keep a pointer to; no context.
    let rc = unsafe {
        dpdk_sys::rte_vhost_extern_callback_register(vid, &EXTERN_OPS.0, std::ptr::null_mut())
    };
    if rc == 0 {
        0
    } else {
        -1
    }
}

unsafe extern "C" fn on_destroy_connection(vid: c_int) {
    if let Some(h) = handler_of(vid) {
        h.memory_table_going(vid);
    }
}

/// vhost-user's SET_MEM_TABLE request (the spec's number).
const SET_MEM_TABLE: u32 = 5;

/// The request number of a message librte_vhost passes to extern handlers: the first
/// field of its message (a u32).
///
/// # Safety
/// `msg` points to a message as librte_vhost passes it (at least 4 readable bytes).
unsafe fn request_of(msg: *mut std::ffi::c_void) -> u32 {
    // SAFETY: caller's contract; read unaligned to make no assumption on its alignment.
    unsafe { std::ptr::read_unaligned(msg.cast::<u32>()) }
}

unsafe extern "C" fn on_pre_msg(
    vid: c_int,
    msg: *mut std::ffi::c_void,
) -> dpdk_sys::rte_vhost_msg_result {
    // SAFETY: librte_vhost passes its message.
    if unsafe { request_of(msg) } == SET_MEM_TABLE {
        if let Some(h) = handler_of(vid) {
            h.memory_table_going(vid);
        }
    }
    dpdk_sys::rte_vhost_msg_result_RTE_VHOST_MSG_RESULT_NOT_HANDLED
}

unsafe extern "C" fn on_post_msg(
    vid: c_int,
    msg: *mut std::ffi::c_void,
) -> dpdk_sys::rte_vhost_msg_result {
    // SAFETY: librte_vhost passes its message.
    if unsafe { request_of(msg) } == SET_MEM_TABLE {
        if let Some(h) = handler_of(vid) {
            let regions = VhostDevice { vid }.mem_regions();
            if h.memory_table(vid, &regions).is_err() {
                return dpdk_sys::rte_vhost_msg_result_RTE_VHOST_MSG_RESULT_ERR;
            }
        }
    }
    dpdk_sys::rte_vhost_msg_result_RTE_VHOST_MSG_RESULT_NOT_HANDLED
}

/// The per-message hooks, registered for each connection.
struct ExternOps(dpdk_sys::rte_vhost_user_extern_ops);

// SAFETY: never written after initialisation; function pointers only.
unsafe impl Sync for ExternOps {}

static EXTERN_OPS: ExternOps = ExternOps(dpdk_sys::rte_vhost_user_extern_ops {
    pre_msg_handle: Some(on_pre_msg),
    post_msg_handle: Some(on_post_msg),
});

unsafe extern "C" fn on_vring_state_changed(vid: c_int, vring: u16, enable: c_int) -> c_int {
    if let Some(h) = handler_of(vid) {
        h.vring_state_changed(vid, vring, enable != 0);
    }
    0
}

/// The callbacks, in a static the library may point to forever.
struct Ops(dpdk_sys::rte_vhost_device_ops);

// SAFETY: never written after initialisation; its only pointer field (reserved) is null.
unsafe impl Sync for Ops {}

static OPS: Ops = Ops(dpdk_sys::rte_vhost_device_ops {
    new_device: Some(on_new_device),
    destroy_device: Some(on_destroy_device),
    vring_state_changed: Some(on_vring_state_changed),
    features_changed: None,
    new_connection: Some(on_new_connection),
    destroy_connection: Some(on_destroy_connection),
    guest_notified: None,
    reserved: [std::ptr::null_mut(); 1],
});

/// A device a frontend set up, as `new_device` sees it.
#[derive(Debug)]
pub struct VhostDevice {
    vid: c_int,
}

/// One region of a guest's memory table, as librte_vhost mapped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemRegion {
    pub guest_phys_addr: u64,
    pub size: u64,
    /// Where librte_vhost mapped it in the switch's address space (the mapping's start).
    pub mmap_addr: usize,
    /// Bytes mapped from `fd` (the region and the offset into the file before it).
    pub mmap_size: u64,
    pub fd: c_int,
}

impl VhostDevice {
    /// The device id.
    pub fn vid(&self) -> i32 {
        self.vid
    }

    /// The features the frontend and the switch agreed.
    pub fn negotiated_features(&self) -> u64 {
        let mut f = 0u64;
        // SAFETY: f is a valid out-pointer; an unknown vid returns an error, f stays 0.
        unsafe { dpdk_sys::rte_vhost_get_negotiated_features(self.vid, &mut f) };
        f
    }

    /// Virtqueues the frontend set up (two per queue pair).
    pub fn vrings(&self) -> u16 {
        // SAFETY: plain query by id.
        unsafe { dpdk_sys::rte_vhost_get_vring_num(self.vid) }
    }

    /// The MTU the frontend announced (VIRTIO_NET_F_MTU), if any.
    pub fn mtu(&self) -> Option<u16> {
        let mut mtu = 0u16;
        // SAFETY: mtu is a valid out-pointer.
        let rc = unsafe { dpdk_sys::rte_vhost_get_mtu(self.vid, &mut mtu) };
        (rc == 0).then_some(mtu)
    }

    /// The guest memory table librte_vhost mapped for the device.
    pub fn mem_regions(&self) -> Vec<MemRegion> {
        let mut mem: *mut dpdk_sys::rte_vhost_memory = std::ptr::null_mut();
        // SAFETY: mem is a valid out-pointer; on success the library mallocs a copy that we
        // read and free below.
        let rc = unsafe { dpdk_sys::rte_vhost_get_mem_table(self.vid, &mut mem) };
        if rc != 0 || mem.is_null() {
            return Vec::new();
        }
        // SAFETY: mem points to an rte_vhost_memory followed by nregions regions (its
        // flexible array member), as the library wrote it.
        let regions = unsafe {
            let n = (*mem).nregions as usize;
            std::slice::from_raw_parts((*mem).regions.as_ptr(), n)
                .iter()
                .map(|r| MemRegion {
                    guest_phys_addr: r.guest_phys_addr,
                    size: r.size,
                    mmap_addr: r.mmap_addr as usize,
                    mmap_size: r.mmap_size,
                    fd: r.fd,
                })
                .collect()
        };
        // SAFETY: the copy was malloc'ed by rte_vhost_get_mem_table for the caller to free.
        unsafe { libc::free(mem.cast()) };
        regions
    }

    /// Asks the frontend not to notify (kick) the switch when it adds to `vring`: the
    /// switch polls.
    pub fn disable_kicks(&self, vring: u16) {
        // SAFETY: plain call by id; an unknown queue returns an error, which is harmless.
        unsafe { dpdk_sys::rte_vhost_enable_guest_notification(self.vid, vring, 0) };
    }
}

/// A vhost-user socket registered with librte_vhost: the switch listens on it (server) or
/// connects to it, and reconnects when the frontend goes (client). Unregistered (which
/// destroys a connected device first, through its handler) when dropped.
#[derive(Debug)]
pub struct VhostSocket {
    path: CString,
}

impl VhostSocket {
    /// Registers `path` (server: the library creates and listens on it; client: it
    /// connects, and reconnects after the frontend goes) with `events` as its handler.
    /// Needs an initialised EAL.
    pub fn register(
        path: &Path,
        client: bool,
        events: Arc<dyn VhostEvents>,
    ) -> Result<VhostSocket> {
        let cpath = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            Error::msg(
                "vhost-user socket",
                format!("path {} has a NUL", path.display()),
            )
        })?;
        {
            let mut h = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
            let map = h.get_or_insert_with(HashMap::new);
            if map.contains_key(&cpath) {
                return Err(Error::msg(
                    format!("vhost-user socket {}", path.display()),
                    "registered already",
                ));
            }
            map.insert(cpath.clone(), events);
        }
        let sock = VhostSocket { path: cpath };
        let flags = if client {
            u64::from(dpdk_sys::RTE_VHOST_USER_CLIENT)
        } else {
            0
        };
        // SAFETY: a NUL-terminated path the library copies.
        let rc = unsafe { dpdk_sys::rte_vhost_driver_register(sock.path.as_ptr(), flags) };
        if rc != 0 {
            sock.forget_handler();
            return Err(Error::msg(
                format!("rte_vhost_driver_register({})", path.display()),
                "refused (see the log)",
            ));
        }
        let fail = |what: &str| {
            // SAFETY: registered above.
            unsafe { dpdk_sys::rte_vhost_driver_unregister(sock.path.as_ptr()) };
            sock.forget_handler();
            Error::msg(
                format!("vhost-user socket {}", path.display()),
                format!("{what} failed"),
            )
        };
        // SAFETY: a registered path; plain calls.
        if unsafe {
            dpdk_sys::rte_vhost_driver_disable_features(sock.path.as_ptr(), DISABLED_FEATURES)
        } != 0
        {
            return Err(fail("disabling offload features"));
        }
        // SAFETY: OPS is a static the library may keep a pointer to forever.
        if unsafe { dpdk_sys::rte_vhost_driver_callback_register(sock.path.as_ptr(), &OPS.0) } != 0
        {
            return Err(fail("registering callbacks"));
        }
        // SAFETY: as above. In server mode this binds and listens (an error if the path is
        // taken); in client mode it starts connecting.
        if unsafe { dpdk_sys::rte_vhost_driver_start(sock.path.as_ptr()) } != 0 {
            return Err(fail("starting (bind or listen)"));
        }
        Ok(sock)
    }

    fn forget_handler(&self) {
        let mut h = HANDLERS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = h.as_mut() {
            map.remove(&self.path);
        }
    }
}

impl Drop for VhostSocket {
    fn drop(&mut self) {
        // SAFETY: registered in `register`. The library destroys a connected device first
        // (calling destroy_device on its handler, still in HANDLERS) and retries while its
        // event thread holds the connection.
        unsafe { dpdk_sys::rte_vhost_driver_unregister(self.path.as_ptr()) };
        self.forget_handler();
    }
}

/// One virtqueue pair of a device, as the data path names it: `Copy`, checked by nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VhostQueue {
    pub vid: i32,
    /// The queue pair: the guest's rx virtqueue is 2q, its tx 2q+1.
    pub pair: u16,
}

impl VhostQueue {
    /// Copies up to `max` frames the guest sent into mbufs of `pool`, appended to `burst`;
    /// returns how many.
    ///
    /// # Safety
    /// The device is live: its `new_device` returned `Ok` and its `destroy_device` has not
    /// returned, for the whole call (the handler's contract, see the module documentation).
    #[inline]
    pub unsafe fn dequeue(self, pool: &Mempool, burst: &mut Burst, max: usize) -> usize {
        let room = (MAX_BURST - burst.len).min(max) as u16;
        // SAFETY: pkts[len..len+room] is the burst's free room; the library writes at most
        // room mbuf pointers there (owned mbufs of `pool`) and we take exactly the n it
        // reports. The device is live (caller's contract).
        let n = unsafe {
            dpdk_sys::rte_vhost_dequeue_burst(
                self.vid,
                self.pair * 2 + 1,
                pool.as_ptr(),
                burst.pkts.as_mut_ptr().add(burst.len),
                room,
            )
        } as usize;
        burst.len += n;
        n
    }

    /// Lets the guest kick the switch when it adds frames to this pair's tx virtqueue
    /// (`on`), or asks it not to (the switch polls; the default, see `new_device`).
    ///
    /// # Safety
    /// As for [`VhostQueue::dequeue`].
    pub unsafe fn guest_kicks(self, on: bool) {
        // SAFETY: plain call on a live device (caller's contract); the library takes the
        // virtqueue's lock.
        unsafe {
            dpdk_sys::rte_vhost_enable_guest_notification(
                self.vid,
                self.pair * 2 + 1,
                c_int::from(on),
            )
        };
    }

    /// Frames the guest has made available on this pair's tx virtqueue that the switch has
    /// not taken yet (0 while the virtqueue is not set up).
    ///
    /// # Safety
    /// As for [`VhostQueue::dequeue`].
    pub unsafe fn waiting(self) -> u32 {
        // SAFETY: plain call on a live device (caller's contract), odd (guest tx) queue.
        unsafe { dpdk_sys::rte_vhost_rx_queue_count(self.vid, self.pair * 2 + 1) }
    }

    /// A duplicate of the eventfd the guest kicks for this pair's tx virtqueue (None if
    /// the frontend gave none). The caller reads it only when it polled readable: the
    /// descriptor is the frontend's, in whatever blocking mode it chose.
    ///
    /// # Safety
    /// As for [`VhostQueue::dequeue`].
    pub unsafe fn kick_fd(self) -> Option<OwnedFd> {
        let mut v = std::mem::MaybeUninit::<dpdk_sys::rte_vhost_vring>::zeroed();
        // SAFETY: v is a valid out-pointer the library fills on success; the device is
        // live (caller's contract).
        let rc = unsafe {
            dpdk_sys::rte_vhost_get_vhost_vring(self.vid, self.pair * 2 + 1, v.as_mut_ptr())
        };
        if rc != 0 {
            return None;
        }
        // SAFETY: zeroed, then written by the library: every field is plain data.
        let kick = unsafe { v.assume_init() }.kickfd;
        if kick < 0 {
            return None;
        }
        // SAFETY: kick is the library's open descriptor (the device is live); F_DUPFD_CLOEXEC
        // makes a new one of ours, checked before it is owned.
        let fd = unsafe { libc::fcntl(kick, libc::F_DUPFD_CLOEXEC, 0) };
        // SAFETY: fd is a fresh descriptor of ours.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Copies every frame of `burst` into the guest's buffers and frees the burst; returns
    /// how many the guest took (the rest found no room) and, when it did not take them all,
    /// the bytes of those it took (0 when it took every frame).
    ///
    /// # Safety
    /// As for [`VhostQueue::dequeue`].
    #[inline]
    pub unsafe fn enqueue(self, burst: &mut Burst) -> (usize, u64) {
        let mut sent = 0;
        let (ptr, len) = (burst.pkts.as_mut_ptr(), burst.len);
        let mut at = 0;
        while at < len {
            // librte_vhost takes at most 32 a call.
            let chunk = (len - at).min(32) as u16;
            // SAFETY: ptr[at..at+chunk] are owned mbufs; the library copies from them and
            // takes no ownership. The device is live (caller's contract).
            let n = unsafe {
                dpdk_sys::rte_vhost_enqueue_burst(self.vid, self.pair * 2, ptr.add(at), chunk)
            };
            sent += n as usize;
            if n < chunk {
                break;
            }
            at += usize::from(chunk);
        }
        let bytes = if sent < len {
            burst.pkts[..sent]
                .iter()
                // SAFETY: pkts[..len] are owned live mbufs (the library only copied them).
                .map(|&m| u64::from(unsafe { (*m).pkt_len }))
                .sum()
        } else {
            0
        };
        burst.clear();
        (sent, bytes)
    }
}
