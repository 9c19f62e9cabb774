//! Packet-buffer pools (rte_pktmbuf_pool_create).

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{Error, Result};

/// A pool of packet buffers.
///
/// Thread safety: DPDK mempools are multi-producer / multi-consumer; any thread may allocate
/// from or free to it. The pool is freed when the last owner drops it (keep it in an `Arc`
/// that every [`crate::Port`] using it holds a clone of).
#[derive(Debug)]
pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
    name: String,
    capacity: u32,
}

// SAFETY: rte_mempool is designed for concurrent use from many threads (ring-based ops).
unsafe impl Send for Mempool {}
// SAFETY: as above; all &self methods are thread-safe DPDK calls.
unsafe impl Sync for Mempool {}

/// Default space for packet data in each mbuf (2048 + headroom), as DPDK's
/// RTE_MBUF_DEFAULT_BUF_SIZE.
pub const DEFAULT_DATA_ROOM: u16 = 2048 + 128;

impl Mempool {
    /// Creates a pool of `capacity` mbufs with a per-lcore cache of `cache` (0..=512).
    pub fn new(_eal: &crate::Eal, name: &str, capacity: u32, cache: u32) -> Result<Mempool> {
        let op = format!("rte_pktmbuf_pool_create({name}, {capacity})");
        let cname = CString::new(name).map_err(|_| Error::msg(&op, "name contains a NUL byte"))?;
        // SAFETY: the EAL is initialised (&Eal); cname is a valid C string DPDK copies.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                capacity,
                cache,
                0,
                DEFAULT_DATA_ROOM,
                -1, // SOCKET_ID_ANY
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| Error::from_errno(&op))?;
        Ok(Mempool {
            raw,
            name: name.to_string(),
            capacity,
        })
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many mbufs the pool was created with.
    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    /// Mbufs free in the pool, including those in per-lcore caches.
    pub fn available(&self) -> u32 {
        // SAFETY: raw is a live pool; the count is read without side effects.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Mbufs currently allocated (held by devices, queues, the dataplane, or leaked).
    pub fn in_use(&self) -> u32 {
        // SAFETY: as in available().
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.raw.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the pool is no longer referenced: ports hold an Arc to it, and mbufs only
        // exist while a port or the dataplane (which outlives no port) holds them.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
