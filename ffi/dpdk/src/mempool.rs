//! Packet-buffer pools (rte_pktmbuf_pool_create, or its steps with packed objects when the
//! EAL runs without hugepages: see [`Mempool::with_data_room`]).

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{Error, Result};

/// A pool of packet buffers.
///
/// Thread safety: DPDK mempools are multi-producer / multi-consumer; any thread may allocate
/// from or free to it. The pool is freed when the last owner drops it (keep it in an `Arc`
/// that every [`crate::Port`] using it holds a clone of).
pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
    name: String,
    capacity: u32,
    /// Bytes of packet data each mbuf holds after the headroom (data room - headroom).
    room: u16,
    /// A pool on external memory ([`Mempool::with_external`]): the area, kept alive until
    /// the pool is freed.
    area: Option<ExtArea>,
}

impl std::fmt::Debug for Mempool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mempool")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("room", &self.room)
            .field("external", &self.area.as_ref().map(|a| a.len))
            .finish()
    }
}

/// Memory given to a pool for its packet data ([`Mempool::with_external`]): `len` bytes at
/// `base`, readable and writable for as long as `keep` lives (a mapping, say).
pub struct ExtArea {
    pub base: *mut u8,
    pub len: usize,
    pub keep: Box<dyn Send + Sync>,
}

/// An empty mbuf taken by address ([`Mempool::alloc_tokens`]): its token, where its data
/// room starts (after the headroom) and how many bytes it holds.
#[derive(Debug, Clone, Copy)]
pub struct Token {
    pub token: u64,
    pub data: *mut u8,
    pub room: u32,
}

impl Default for Token {
    fn default() -> Token {
        Token {
            token: 0,
            data: std::ptr::null_mut(),
            room: 0,
        }
    }
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
        // SAFETY: the EAL is initialised (&Eal); the call only reads its configuration.
        let raw = if unsafe { dpdk_sys::rte_eal_has_hugepages() } != 0 {
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
            NonNull::new(raw).ok_or_else(|| Error::from_errno(&op))?
        } else {
            packed_pool(&op, &cname, capacity, cache, data_room)?
        };
        // SAFETY: raw is the pktmbuf pool just created; its private area records the room.
        let room =
            unsafe { dpdk_sys::rte_pktmbuf_data_room_size(raw.as_ptr()) }.saturating_sub(HEADROOM);
        Ok(Mempool {
            raw,
            name: name.to_string(),
            capacity,
            room,
            area: None,
        })
    }

    /// A pool of `capacity` mbufs whose packet data lives in `area` (one buffer of
    /// `data_room` bytes, headroom included, after another), the mbuf headers in DPDK's
    /// own memory: DPDK's pinned external buffers (rte_pktmbuf_pool_create_extbuf). For
    /// memory shared with another process (a memif peer's zero-copy region), which then
    /// sees packet data only, never an mbuf header. Refused when `area` holds fewer than
    /// `capacity` buffers.
    pub fn with_external(
        _eal: &crate::Eal,
        name: &str,
        capacity: u32,
        cache: u32,
        data_room: u16,
        area: ExtArea,
    ) -> Result<Mempool> {
        let op =
            format!("rte_pktmbuf_pool_create_extbuf({name}, {capacity}, data room {data_room})");
        if data_room <= HEADROOM {
            return Err(Error::msg(
                &op,
                format!("the data room must exceed the {HEADROOM}-byte headroom"),
            ));
        }
        if (area.len / usize::from(data_room)) < capacity as usize {
            return Err(Error::msg(
                &op,
                format!(
                    "{} bytes of memory hold fewer than {capacity} buffers",
                    area.len
                ),
            ));
        }
        let cname = CString::new(name).map_err(|_| Error::msg(&op, "name contains a NUL byte"))?;
        let ext = dpdk_sys::rte_pktmbuf_extmem {
            buf_ptr: area.base.cast(),
            // The virtual devices copy with the CPU and read no IOVA; IOVA-as-VA.
            buf_iova: area.base as u64,
            buf_len: area.len,
            elt_size: data_room,
        };
        // SAFETY: the EAL is initialised (&Eal); cname is a valid C string DPDK copies; ext
        // describes `area`, which stays mapped while the pool lives (kept in `area` below,
        // dropped after rte_mempool_free); data_room <= elt_size.
        let raw = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create_extbuf(
                cname.as_ptr(),
                capacity,
                cache,
                0,
                data_room,
                -1, // SOCKET_ID_ANY
                &ext,
                1,
            )
        };
        let raw = NonNull::new(raw).ok_or_else(|| Error::from_errno(&op))?;
        Ok(Mempool {
            raw,
            name: name.to_string(),
            capacity,
            room: data_room - HEADROOM,
            area: Some(area),
        })
    }

    /// Takes up to `out.len()` empty mbufs by address (see [`Token`]), filling `out` from
    /// the front; returns how many (fewer when the pool runs low). Each token is owned by
    /// the caller until it becomes an [`crate::Mbuf`] ([`crate::Mbuf::from_token`]) or is
    /// freed ([`crate::free_tokens`]).
    pub fn alloc_tokens(&self, out: &mut [Token]) -> usize {
        let mut raw = [std::ptr::null_mut::<dpdk_sys::rte_mbuf>(); 32];
        let mut done = 0;
        while done < out.len() {
            let n = (out.len() - done).min(raw.len());
            // SAFETY: raw has room for n pointers; on success DPDK writes n fresh mbufs
            // there, owned by the caller from then on; on failure it takes none.
            let rc = unsafe {
                dpdk_sys::rte_pktmbuf_alloc_bulk(self.raw.as_ptr(), raw.as_mut_ptr(), n as u32)
            };
            if rc != 0 {
                break;
            }
            for (t, &m) in out[done..done + n].iter_mut().zip(raw.iter()) {
                // SAFETY: m is a freshly reset mbuf we own: data_off is its headroom.
                *t = unsafe {
                    Token {
                        token: m as u64,
                        data: ((*m).buf_addr as *mut u8).add(usize::from((*m).data_off)),
                        room: u32::from((*m).buf_len - (*m).data_off),
                    }
                };
            }
            done += n;
        }
        done
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

/// A pktmbuf pool whose objects may cross 4 KiB pages (RTE_MEMPOOL_F_NO_IOVA_CONTIG), for an
/// EAL without hugepages: the steps of rte_pktmbuf_pool_create with that one flag added.
///
/// Without it, DPDK keeps every object within one page so that its IOVA is contiguous; with
/// 4 KiB pages that is one 2,368-byte mbuf per page, so every mbuf header (and every
/// packet's first bytes) sits at the same page offset: all map to one set of the 8-way L1
/// data cache, and a burst of 32 evicts its own headers before the next stage reads them.
/// Packed, they spread over the cache as they do in hugepages, and the pool takes 42% less
/// memory. IOVA contiguity is moot here: without hugepages there are no PCI devices
/// (vswitchd adds --no-pci), and the virtual devices (af_packet, tap, pcap, null, vhost-user,
/// memif) copy packets with the CPU.
fn packed_pool(
    op: &str,
    name: &CString,
    capacity: u32,
    cache: u32,
    data_room: u16,
) -> Result<NonNull<dpdk_sys::rte_mempool>> {
    let mbuf_size = std::mem::size_of::<dpdk_sys::rte_mbuf>() as u32;
    let private = std::mem::size_of::<dpdk_sys::rte_pktmbuf_pool_private>() as u32;
    // SAFETY: the EAL is initialised (the caller holds &Eal); name is a valid C string DPDK
    // copies; the sizes are those rte_pktmbuf_pool_create passes (no per-mbuf private area).
    let raw = unsafe {
        dpdk_sys::rte_mempool_create_empty(
            name.as_ptr(),
            capacity,
            mbuf_size + u32::from(data_room),
            cache,
            private,
            -1, // SOCKET_ID_ANY
            dpdk_sys::RTE_MEMPOOL_F_NO_IOVA_CONTIG,
        )
    };
    let raw = NonNull::new(raw).ok_or_else(|| Error::from_errno(op))?;
    let fail = |what: &str, rc: i32| {
        // SAFETY: raw is the empty or partly populated pool made above, used by nothing else.
        unsafe { dpdk_sys::rte_mempool_free(raw.as_ptr()) };
        Error::msg(op, format!("{what}: {}", crate::error::strerror(-rc)))
    };
    // SAFETY: raw is a pool without objects yet; the ops name is DPDK's own static string.
    let rc = unsafe {
        dpdk_sys::rte_mempool_set_ops_byname(
            raw.as_ptr(),
            dpdk_sys::rte_mbuf_best_mempool_ops(),
            std::ptr::null_mut(),
        )
    };
    if rc != 0 {
        return Err(fail("rte_mempool_set_ops_byname", rc));
    }
    let mut pool_private = dpdk_sys::rte_pktmbuf_pool_private {
        mbuf_data_room_size: data_room,
        mbuf_priv_size: 0,
        flags: 0,
    };
    // SAFETY: raw has a private area of sizeof(rte_pktmbuf_pool_private) (create_empty
    // above); pool_private outlives the call, which copies it.
    unsafe {
        dpdk_sys::rte_pktmbuf_pool_init(
            raw.as_ptr(),
            (&mut pool_private as *mut dpdk_sys::rte_pktmbuf_pool_private).cast(),
        )
    };
    // SAFETY: raw is initialised as a pktmbuf pool and not yet populated.
    let rc = unsafe { dpdk_sys::rte_mempool_populate_default(raw.as_ptr()) };
    if rc < 0 {
        return Err(fail("rte_mempool_populate_default", rc));
    }
    // SAFETY: every object of raw is an mbuf-sized element; rte_pktmbuf_init only reads the
    // pool's private area, set above, and writes the object it is given.
    unsafe {
        dpdk_sys::rte_mempool_obj_iter(
            raw.as_ptr(),
            Some(dpdk_sys::rte_pktmbuf_init),
            std::ptr::null_mut(),
        )
    };
    Ok(raw)
}

impl Drop for Mempool {
    fn drop(&mut self) {
        // SAFETY: the pool is no longer referenced: ports hold an Arc to it, and mbufs only
        // exist while a port or the dataplane (which outlives no port) holds them.
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
        // Then the external memory (if any), which no mbuf points into any more.
        drop(self.area.take());
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
    fn without_hugepages_mbufs_are_packed_across_pages() {
        require_eal!();
        // SAFETY: the test EAL is initialised (require_eal).
        if unsafe { dpdk_sys::rte_eal_has_hugepages() } != 0 {
            return;
        }
        let pool = Mempool::new(eal(), "t_packed", 1024, 0).unwrap();
        let mut held = Vec::new();
        while let Some(m) = crate::Mbuf::alloc(&pool) {
            held.push(m);
        }
        assert_eq!(held.len(), 1024);
        let mut at: Vec<usize> = held.iter().map(|m| m.data().as_ptr() as usize).collect();
        at.sort_unstable();
        let gaps: Vec<usize> = at.windows(2).map(|w| w[1] - w[0]).collect();
        // Back to back: the smallest step between two mbufs is one element, well under a
        // page (one mbuf per 4 KiB page is what rte_pktmbuf_pool_create makes here).
        let step = *gaps.iter().min().unwrap();
        assert!(step < 4096, "mbufs {step} bytes apart");
        // Their headers fall at many offsets within a page, not one.
        let offsets: std::collections::HashSet<usize> = at.iter().map(|a| a % 4096).collect();
        assert!(offsets.len() > 16, "{} page offsets", offsets.len());
        // And they work as mbufs of the standard room.
        let m = crate::Mbuf::from_bytes(&pool, &[0x5a; 2048]);
        assert!(m.is_none(), "every mbuf is held");
        drop(held);
        let m = crate::Mbuf::from_bytes(&pool, &[0x5a; 2048]).unwrap();
        assert_eq!(m.data(), &[0x5a; 2048][..]);
        drop(m);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn a_data_room_without_room_past_the_headroom_is_refused() {
        require_eal!();
        let err = Mempool::with_data_room(eal(), "t_room_none", 256, 0, HEADROOM).unwrap_err();
        assert!(err.to_string().contains("headroom"), "{err}");
    }
}
