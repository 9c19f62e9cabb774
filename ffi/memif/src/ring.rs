//! Shared-memory layout: regions, rings and descriptors.
//!
//! A ring (memif 2.0, as DPDK's `memif.h` lays it out; x86 cache lines of 64 bytes):
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | cookie (0x3E31F20) |
//! | 4..6 | flags (bit 0: the receiver polls, send no interrupts) |
//! | 6..8 | head (u16, written by one side) |
//! | 64..66 | tail (u16, written by the other side) |
//! | 128.. | 2^log2 descriptors of 16 bytes |
//!
//! A descriptor: flags u16 @0 (bit 0: the frame continues in the next descriptor), region
//! u16 @2, length u32 @4, offset u32 @8, metadata u32 @12.
//!
//! Who writes what: on a client-to-server ring the client writes descriptors and `head`,
//! the server `tail`; on a server-to-client ring the client hands empty buffers over by
//! writing descriptors and `head`, the server fills them and writes `tail`. Head and tail
//! are free-running u16 counters; a slot is `counter & (size - 1)`.
//!
//! Everything here is raw-pointer access to memory another process writes at the same
//! time: head and tail through atomics (acquire / release), descriptor fields through
//! volatile reads and writes, never a Rust reference to shared bytes except the frame
//! slices lent to a receive callback (see `queue.rs`).

use std::sync::atomic::{AtomicU16, Ordering};

use crate::sys::Mapping;

/// The ring cookie.
pub const COOKIE: u32 = 0x3E31F20;
/// Ring flag: the receiver of this ring polls; the sender must not write its eventfd.
pub const RING_FLAG_MASK_INT: u16 = 1;
/// Descriptor flag: the frame continues in the next descriptor.
pub const DESC_FLAG_NEXT: u16 = 1;
/// Bytes of a ring's header (three cache lines' worth: cookie/flags/head, tail, padding).
pub const RING_HDR: usize = 128;
/// Bytes of a descriptor.
pub const DESC_LEN: usize = 16;
/// The largest ring accepted or offered (2^14 descriptors, DPDK's limit).
pub const MAX_LOG2_RING_SIZE: u8 = 14;
/// The smallest ring accepted.
pub const MIN_LOG2_RING_SIZE: u8 = 1;

const OFF_COOKIE: usize = 0;
const OFF_FLAGS: usize = 4;
const OFF_HEAD: usize = 6;
const OFF_TAIL: usize = 64;

/// Bytes a ring of 2^log2 descriptors takes.
pub const fn ring_bytes(log2: u8) -> usize {
    RING_HDR + DESC_LEN * (1usize << log2)
}

/// One descriptor's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Desc {
    pub flags: u16,
    pub region: u16,
    pub length: u32,
    pub offset: u32,
}

/// The mapped regions of one connection. Immutable once connected; shared (Arc) by the
/// connection and every queue using it, so the last of them to let go unmaps.
#[derive(Debug, Default)]
pub struct Regions {
    maps: Vec<Mapping>,
}

impl Regions {
    pub fn new(maps: Vec<Mapping>) -> Regions {
        Regions { maps }
    }

    /// A pointer to `len` bytes at `offset` of region `region`, if they lie wholly inside
    /// it.
    #[inline]
    pub fn bytes(&self, region: u16, offset: u32, len: u32) -> Option<*mut u8> {
        let m = self.maps.get(region as usize)?;
        let end = offset as u64 + len as u64;
        if end > m.len() as u64 {
            return None;
        }
        // SAFETY: offset <= end <= the mapping's length, so the result stays inside it.
        Some(unsafe { m.ptr().add(offset as usize) })
    }

    /// The ring at `offset` of `region` with 2^log2 descriptors, if it lies wholly inside
    /// the region and is 16-byte aligned.
    pub fn ring(&self, region: u16, offset: u32, log2: u8) -> Option<Ring> {
        if !(MIN_LOG2_RING_SIZE..=MAX_LOG2_RING_SIZE).contains(&log2) || offset % 16 != 0 {
            return None;
        }
        let p = self.bytes(region, offset, ring_bytes(log2) as u32)?;
        Some(Ring { base: p, log2 })
    }
}

/// A ring inside a mapped region. Valid only while the [`Regions`] it came from lives: its
/// holders keep an `Arc<Regions>` next to it.
#[derive(Debug, Clone, Copy)]
pub struct Ring {
    base: *mut u8,
    log2: u8,
}

// SAFETY: a pointer into a shared mapping; see the module documentation for who writes
// what, and `queue.rs` for which thread uses a ring.
unsafe impl Send for Ring {}

impl Ring {
    #[inline]
    pub fn size(&self) -> u16 {
        // log2 <= 14, so this fits.
        1u16 << self.log2
    }

    #[inline]
    pub fn mask(&self) -> u16 {
        self.size() - 1
    }

    pub fn cookie(&self) -> u32 {
        // SAFETY: base is inside a live mapping with at least RING_HDR bytes; 16-aligned.
        unsafe { std::ptr::read_volatile(self.base.add(OFF_COOKIE) as *const u32) }
    }

    pub fn set_cookie(&self, v: u32) {
        // SAFETY: as in cookie.
        unsafe { std::ptr::write_volatile(self.base.add(OFF_COOKIE) as *mut u32, v) }
    }

    #[inline]
    pub fn flags(&self) -> u16 {
        // SAFETY: as in cookie.
        unsafe { std::ptr::read_volatile(self.base.add(OFF_FLAGS) as *const u16) }
    }

    pub fn set_flags(&self, v: u16) {
        // SAFETY: as in cookie.
        unsafe { std::ptr::write_volatile(self.base.add(OFF_FLAGS) as *mut u16, v) }
    }

    #[inline]
    fn atomic(&self, off: usize) -> &AtomicU16 {
        // SAFETY: the offset is inside the header of a live mapping and 2-aligned; the
        // other process accesses the same word atomically (it is the memif head / tail).
        unsafe { &*(self.base.add(off) as *const AtomicU16) }
    }

    #[inline]
    pub fn head(&self) -> u16 {
        self.atomic(OFF_HEAD).load(Ordering::Acquire)
    }

    #[inline]
    pub fn set_head(&self, v: u16) {
        self.atomic(OFF_HEAD).store(v, Ordering::Release)
    }

    #[inline]
    pub fn tail(&self) -> u16 {
        self.atomic(OFF_TAIL).load(Ordering::Acquire)
    }

    #[inline]
    pub fn set_tail(&self, v: u16) {
        self.atomic(OFF_TAIL).store(v, Ordering::Release)
    }

    #[inline]
    fn desc_ptr(&self, slot: u16) -> *mut u8 {
        let i = (slot & self.mask()) as usize;
        // SAFETY: i < size, and the ring's descriptors lie inside the mapping (checked
        // by Regions::ring).
        unsafe { self.base.add(RING_HDR + i * DESC_LEN) }
    }

    /// Where the descriptor of `slot` (masked) lies, for a prefetch.
    #[inline]
    pub fn desc_addr(&self, slot: u16) -> *const u8 {
        self.desc_ptr(slot)
    }

    /// The descriptor of `slot` (masked).
    #[inline]
    pub fn desc(&self, slot: u16) -> Desc {
        let p = self.desc_ptr(slot);
        // SAFETY: p is a 16-byte descriptor inside the mapping, 16-aligned.
        unsafe {
            Desc {
                flags: std::ptr::read_volatile(p as *const u16),
                region: std::ptr::read_volatile(p.add(2) as *const u16),
                length: std::ptr::read_volatile(p.add(4) as *const u32),
                offset: std::ptr::read_volatile(p.add(8) as *const u32),
            }
        }
    }

    /// Writes the descriptor of `slot` (masked); metadata is zeroed.
    #[inline]
    pub fn set_desc(&self, slot: u16, d: Desc) {
        let p = self.desc_ptr(slot);
        // The 16 bytes as two little-endian words, two stores instead of five (the line
        // is shared with the peer: fewer stores waiting on it).
        let lo = u64::from(d.flags) | u64::from(d.region) << 16 | u64::from(d.length) << 32;
        let hi = u64::from(d.offset);
        // SAFETY: as in desc (16-aligned, so both words are aligned).
        unsafe {
            std::ptr::write_volatile(p as *mut u64, lo.to_le());
            std::ptr::write_volatile(p.add(8) as *mut u64, hi.to_le());
        }
    }

    /// Writes the length, flags and region of `slot`'s descriptor (its first 8 bytes, in
    /// one store; the offset is left as it is).
    #[inline]
    pub fn set_desc_head(&self, slot: u16, length: u32, flags: u16, region: u16) {
        let p = self.desc_ptr(slot);
        let w = u64::from(flags) | u64::from(region) << 16 | u64::from(length) << 32;
        // SAFETY: as in desc (16-aligned, so the word is aligned).
        unsafe { std::ptr::write_volatile(p as *mut u64, w.to_le()) }
    }
}
