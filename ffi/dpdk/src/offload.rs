//! The offload state DPDK keeps in an mbuf (checksum flags, header lengths, TSO segment
//! size), read and cleared per packet.
//!
//! `ol_flags` sits in the mbuf's first cache line, which the driver has just written on rx;
//! the header lengths and segment size sit in the second, read only when a flag asks for
//! them.

use crate::mbuf::{Burst, Mbuf};

/// The `RTE_MBUF_F_*` flags the dataplane reads (rte_mbuf_core.h, DPDK 22.11).
pub mod flags {
    pub const RX_L4_CKSUM_MASK: u64 = dpdk_sys::RTE_MBUF_F_RX_L4_CKSUM_MASK as u64;
    pub const RX_L4_CKSUM_GOOD: u64 = dpdk_sys::RTE_MBUF_F_RX_L4_CKSUM_GOOD as u64;
    pub const RX_L4_CKSUM_BAD: u64 = dpdk_sys::RTE_MBUF_F_RX_L4_CKSUM_BAD as u64;
    pub const TX_TCP_SEG: u64 = dpdk_sys::RTE_MBUF_F_TX_TCP_SEG;
    pub const TX_UDP_SEG: u64 = 1 << 42;
    pub const TX_L4_MASK: u64 = 3 << 52;
    pub const TX_TCP_CKSUM: u64 = 1 << 52;
    pub const TX_UDP_CKSUM: u64 = 3 << 52;
    pub const TX_IPV4: u64 = 1 << 55;
    pub const TX_IPV6: u64 = 1 << 56;
    /// Every flag that asks the output device for work (what software must do instead
    /// when the frame leaves through a device that will not).
    pub const TX_REQUESTS: u64 = TX_TCP_SEG | TX_UDP_SEG | TX_L4_MASK | (1 << 54);
}
pub use flags::*;

/// An mbuf's offload state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MbufOffload {
    pub ol_flags: u64,
    /// Header lengths the input device parsed (0 unless it set a tx request).
    pub l2_len: u8,
    pub l3_len: u16,
    /// Payload bytes per segment of a TSO / GSO super-frame.
    pub tso_segsz: u16,
}

/// What [`Burst::summary`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BurstSummary {
    pub bytes: u64,
    /// The longest packet's length (0 for an empty burst).
    pub max_len: u32,
    /// Some mbuf asks the output device for work (checksums, segmentation).
    pub tx_requests: bool,
    /// Some mbuf has an offload flag set (rx or tx): false means every mbuf's offload
    /// state is the default one.
    pub any_flags: bool,
}

/// # Safety
/// `m` must point to a live mbuf the caller may read.
#[inline(always)]
unsafe fn read(m: *const dpdk_sys::rte_mbuf) -> MbufOffload {
    let ol_flags = (*m).ol_flags;
    if ol_flags & (TX_REQUESTS | (1 << 16)) == 0 {
        // Nothing asks for the second cache line.
        return MbufOffload {
            ol_flags,
            ..MbufOffload::default()
        };
    }
    // tx_offload: l2_len:7, l3_len:9, l4_len:8, tso_segsz:16, ... (rte_mbuf_core.h).
    let t = (*m).__bindgen_anon_3.tx_offload;
    MbufOffload {
        ol_flags,
        l2_len: (t & 0x7f) as u8,
        l3_len: ((t >> 7) & 0x1ff) as u16,
        tso_segsz: ((t >> 24) & 0xffff) as u16,
    }
}

impl Burst {
    /// Moves as many of `other`'s mbufs as fit to the end of this burst (pointer copies),
    /// keeping the rest in `other`, in order. Returns how many moved.
    #[inline]
    pub fn append(&mut self, other: &mut Burst) -> usize {
        let n = other.len.min(crate::MAX_BURST - self.len);
        self.pkts[self.len..self.len + n].copy_from_slice(&other.pkts[..n]);
        self.len += n;
        other.pkts.copy_within(n..other.len, 0);
        other.len -= n;
        n
    }

    /// Its bytes and whether any mbuf asks the output device for work, in one pass over
    /// the mbufs' first cache lines (which the driver has just written on rx).
    #[inline]
    pub fn summary(&self) -> BurstSummary {
        let (mut bytes, mut max_len, mut flags) = (0u64, 0u32, 0u64);
        for &m in &self.pkts[..self.len] {
            // SAFETY: pkts[..len] are owned live mbufs.
            let (len, f) = unsafe { ((*m).pkt_len, (*m).ol_flags) };
            bytes += u64::from(len);
            max_len = max_len.max(len);
            flags |= f;
        }
        BurstSummary {
            bytes,
            max_len,
            tx_requests: flags & TX_REQUESTS != 0,
            any_flags: flags != 0,
        }
    }

    /// The offload state of packet `i`. Panics if `i >= len()`, like slice indexing.
    #[inline(always)]
    pub fn offload(&self, i: usize) -> MbufOffload {
        assert!(i < self.len, "burst index {i} out of range {}", self.len);
        // SAFETY: pkts[i] is an owned live mbuf (i < len).
        unsafe { read(self.pkts[i]) }
    }
}

impl Mbuf {
    /// The packet's offload state.
    #[inline]
    pub fn offload(&self) -> MbufOffload {
        // SAFETY: self owns a live mbuf.
        unsafe { read(self.raw.as_ptr()) }
    }

    /// Clears every request to the output device (after software did the work).
    #[inline]
    pub fn clear_tx_requests(&mut self) {
        // SAFETY: self uniquely owns the mbuf.
        unsafe { (*self.raw.as_ptr()).ol_flags &= !TX_REQUESTS }
    }

    /// Sets the offload state (tests, and stages that hand a request on).
    pub fn set_offload(&mut self, o: &MbufOffload) {
        // SAFETY: self uniquely owns the mbuf; only the flag word and the length fields of
        // tx_offload are written.
        unsafe {
            let r = self.raw.as_ptr();
            (*r).ol_flags = o.ol_flags;
            let t = &mut (*r).__bindgen_anon_3.tx_offload;
            *t &= !((0x7f) | (0x1ff << 7) | (0xffff << 24));
            *t |= u64::from(o.l2_len & 0x7f)
                | (u64::from(o.l3_len & 0x1ff) << 7)
                | (u64::from(o.tso_segsz) << 24);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_eal::{pool, require_eal};

    #[test]
    fn offload_state_round_trips_and_clears() {
        require_eal!();
        let pool = pool("t_offload", 512);
        let mut m = Mbuf::from_bytes(&pool, &[0u8; 100]).unwrap();
        assert_eq!(m.offload(), MbufOffload::default());
        assert!(m.is_contiguous());
        let o = MbufOffload {
            ol_flags: TX_TCP_SEG | TX_TCP_CKSUM | TX_IPV4,
            l2_len: 14,
            l3_len: 20,
            tso_segsz: 1448,
        };
        m.set_offload(&o);
        assert_eq!(m.offload(), o);
        let mut b = Burst::new();
        b.push(m).unwrap();
        assert_eq!(b.offload(0), o);
        assert_eq!(
            b.summary(),
            BurstSummary {
                bytes: 100,
                max_len: 100,
                tx_requests: true,
                any_flags: true,
            }
        );
        // append moves what fits, in order.
        let mut full = Burst::new();
        for _ in 0..crate::MAX_BURST - 1 {
            full.push(Mbuf::alloc(&pool).unwrap()).unwrap();
        }
        assert!(!full.summary().tx_requests);
        let mut two = Burst::new();
        two.push(Mbuf::from_bytes(&pool, &[1]).unwrap()).unwrap();
        two.push(Mbuf::from_bytes(&pool, &[2]).unwrap()).unwrap();
        assert_eq!(full.append(&mut two), 1);
        assert_eq!((full.len(), two.len()), (crate::MAX_BURST, 1));
        assert_eq!(
            (full.data(crate::MAX_BURST - 1), two.data(0)),
            (&[1u8][..], &[2u8][..])
        );
        drop((full, two));
        let mut m = b.pop().unwrap();
        m.clear_tx_requests();
        assert_eq!(m.offload().ol_flags, TX_IPV4);
        // Rx flags alone do not read the second cache line.
        m.set_offload(&MbufOffload {
            ol_flags: RX_L4_CKSUM_GOOD,
            ..o
        });
        assert_eq!(
            m.offload(),
            MbufOffload {
                ol_flags: RX_L4_CKSUM_GOOD,
                ..MbufOffload::default()
            }
        );
    }
}
