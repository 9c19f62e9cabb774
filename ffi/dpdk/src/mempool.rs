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
    /// Bytes of packet data each mbuf holds after the headroom (data room - headroom).
    room: u16,
}

// SAFETY: rte_mempool is designed for concurrent use from many threads (ring-based ops).
unsafe impl Send for Mempool {}
// SAFETY: as above; all &self methods are thread-safe DPDK calls.
unsafe impl Sync for Mempool {}

/// Space DPDK leaves in front of the packet data of every mbuf (RTE_PKTMBUF_HEADROOM), for
/// headers pushed in front (VLAN tags, tunnel headers).
pub const HEADROOM: u16 = dpdk_sys::RTE_PKTMBUF_HEADROOM as u16;

/// Default space for packet data in each mbuf (2048 + headroom), as DPDK's
/// RTE_MBUF_DEFAULT_BUF_SIZE.
pub const DEFAULT_DATA_ROOM: u16 = 2048 + HEADROOM;

impl Mempool {
    /// Creates a pool of `capacity` mbufs of [`DEFAULT_DATA_ROOM`] with a per-lcore cache of
    /// `cache` (0..=512).
    pub fn new(eal: &crate::Eal, name: &str, capacity: u32, cache: u32) -> Result<Mempool> {
        Mempool::with_data_room(eal, name, capacity, cache, DEFAULT_DATA_ROOM)
    }

    /// Creates a pool of `capacity` mbufs whose buffers are `data_room` bytes, headroom
    /// included (DPDK's `data_room_size`): each mbuf then holds [`Mempool::data_room`] =
    /// `data_room - HEADROOM` bytes of packet in one segment. Refused if `data_room` does
    /// not exceed the headroom.
    pub fn with_data_room(
        _eal: &crate::Eal,
        name: &str,
        capacity: u32,
        cache: u32,
        data_room: u16,
    ) -> Result<Mempool> {
        let op = format!("rte_pktmbuf_pool_create({name}, {capacity}, data room {data_room})");
        if data_room <= HEADROOM {
            return Err(Error::msg(
                &op,
                format!("the data room must exceed the {HEADROOM}-byte headroom"),
            ));
        }
        let cname = CString::new(name).map_err(|_| Error::msg(&op, "name contains a NUL byte"))?;
        // SAFETY: the EAL is initialised (&Eal); cname is a valid C string DPDK copies;
        // priv_size 0 and data_room > headroom are valid pktmbuf pool parameters.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                capacity,
                cache,
                0,
                data_room,
                -1, // SOCKET_ID_ANY
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| Error::from_errno(&op))?;
        // SAFETY: raw is the pktmbuf pool just created; its private area records the room.
        let room =
            unsafe { dpdk_sys::rte_pktmbuf_data_room_size(raw.as_ptr()) }.saturating_sub(HEADROOM);
        Ok(Mempool {
            raw,
            name: name.to_string(),
            capacity,
            room,
        })
    }

    /// Bytes of packet one mbuf of this pool holds in one segment: the data room less the
    /// headroom (2048 for [`Mempool::new`]). A driver that cannot chain mbufs (af_packet)
    /// receives no frame longer than this.
    pub fn data_room(&self) -> u16 {
        self.room
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_eal::{eal, require_eal};

    #[test]
    fn data_room_is_the_room_less_the_headroom() {
        require_eal!();
        let std = Mempool::new(eal(), "t_room_std", 1024, 0).unwrap();
        assert_eq!(std.data_room(), 2048);
        let jumbo = Mempool::with_data_room(eal(), "t_room_jumbo", 256, 0, 9728 + HEADROOM);
        let jumbo = jumbo.unwrap();
        assert_eq!(jumbo.data_room(), 9728);
        assert_eq!(jumbo.capacity(), 256);
        // A 9000-byte frame fits one mbuf of it, not one of the standard pool.
        let m = crate::Mbuf::from_bytes(&jumbo, &[0x5a; 9000]).unwrap();
        assert_eq!((m.len(), m.segments(), m.is_contiguous()), (9000, 1, true));
        assert!(crate::Mbuf::from_bytes(&std, &[0x5a; 9000]).is_none());
        drop(m);
        assert_eq!(jumbo.in_use(), 0);
    }

    #[test]
    fn a_data_room_without_room_past_the_headroom_is_refused() {
        require_eal!();
        let err = Mempool::with_data_room(eal(), "t_room_none", 256, 0, HEADROOM).unwrap_err();
        assert!(err.to_string().contains("headroom"), "{err}");
    }
}
