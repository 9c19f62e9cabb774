//! Per-packet metadata: what stages tell each other about a packet, kept in a parallel
//! array beside the vector's mbuf pointers (16 bytes a packet, four to a cache line), and
//! the offload state a frame carries through the graph.
//!
//! Offload state comes from the mbuf's flags where the input device set them (a vhost-user
//! guest's partial checksums and TSO super-frames arrive as DPDK tx-offload requests, a
//! NIC's verified checksums as rx flags) and is resolved by the output stage for the
//! interface the frame leaves through.

use dpdk::MbufOffload;

use crate::plan::IfIndex;
use crate::slowpath::PuntReason;

/// Checksum state of a frame's L4 checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Csum {
    /// Nobody checked it: it is whatever the sender wrote.
    #[default]
    Unknown = 0,
    /// The input device verified it (or the sender's stack guaranteed it).
    Complete = 1,
    /// A TCP checksum not yet computed: the 16-bit field 16 bytes after `csum_start`
    /// holds the pseudo-header sum, and the ones' complement sum of the bytes from
    /// `csum_start` to the end must be folded in before the frame leaves (Linux's
    /// CHECKSUM_PARTIAL, virtio's NEEDS_CSUM).
    PartialTcp = 2,
    /// The same for UDP (the field is 6 bytes after `csum_start`).
    PartialUdp = 3,
}

impl Csum {
    /// Offset of the checksum field from `csum_start` for the partial kinds.
    pub fn field_offset(self) -> Option<usize> {
        match self {
            Csum::PartialTcp => Some(16),
            Csum::PartialUdp => Some(6),
            Csum::Unknown | Csum::Complete => None,
        }
    }
}

/// Kind of segmentation a GSO super-frame needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(u8)]
pub enum Gso {
    #[default]
    None = 0,
    TcpV4 = 1,
    TcpV6 = 2,
    Udp = 3,
}

/// Per-packet metadata. Stages document which fields they read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Meta {
    /// The interface the frame arrived on (set by ethernet-input).
    pub rx_if: IfIndex,
    /// The interface the frame leaves through (set by the stage that decides it).
    pub tx_if: IfIndex,
    /// The bridge domain and bridge VLAN of the frame (set by ethernet-input for bridged
    /// interfaces).
    pub bridge: u16,
    pub vlan: u16,
    /// Offset of the first byte the partial checksum covers, from the frame's start.
    pub csum_start: u16,
    /// Payload bytes per segment of a GSO super-frame (0: not one).
    pub gso_size: u16,
    pub csum: Csum,
    pub gso: Gso,
    /// Why the frame goes to the slow path (read by the punt stage).
    pub punt: PuntReason,
    /// `TAGGED`: the frame arrived with an 802.1Q tag; `OFFLOAD`; `TUNNEL`.
    pub flags: u8,
}

impl Default for Meta {
    fn default() -> Meta {
        Meta {
            rx_if: 0,
            tx_if: 0,
            bridge: 0,
            vlan: 0,
            csum_start: 0,
            gso_size: 0,
            csum: Csum::Unknown,
            gso: Gso::None,
            punt: PuntReason::Test,
            flags: 0,
        }
    }
}

impl Meta {
    /// The frame arrived with an 802.1Q tag.
    pub const TAGGED: u8 = 1;
    /// The frame's offload state asks for work before it leaves (a partial checksum, a
    /// GSO super-frame): set by [`Meta::set_offload`].
    pub const OFFLOAD: u8 = 2;
    /// The frame came out of a tunnel into a bridge (tunnel-decap): the bridge's scratch
    /// holds its outer source (the remote VTEP) at the frame's place in its vector.
    pub const TUNNEL: u8 = 4;

    /// Whether the frame arrived tagged.
    #[inline(always)]
    pub fn tagged(&self) -> bool {
        self.flags & Meta::TAGGED != 0
    }

    /// Whether the offload state asks for work before the frame leaves.
    #[inline(always)]
    pub fn needs_offload(&self) -> bool {
        self.flags & Meta::OFFLOAD != 0
    }

    /// Sets the offload fields from what the input device wrote in the mbuf.
    #[inline]
    pub fn set_offload(&mut self, o: &MbufOffload) {
        use dpdk::offload::*;
        if o.ol_flags & (TX_REQUESTS | RX_L4_CKSUM_MASK) == 0 {
            // The usual case (no device verified or asked for anything): nothing to record.
            (self.csum, self.csum_start, self.gso, self.gso_size) =
                (Csum::Unknown, 0, Gso::None, 0);
            return;
        }
        let tx_l4 = o.ol_flags & TX_L4_MASK;
        let rx_l4 = o.ol_flags & RX_L4_CKSUM_MASK;
        let start = u16::from(o.l2_len) + o.l3_len;
        (self.csum, self.csum_start) = if tx_l4 == TX_TCP_CKSUM || o.ol_flags & TX_TCP_SEG != 0 {
            (Csum::PartialTcp, start)
        } else if tx_l4 == TX_UDP_CKSUM {
            (Csum::PartialUdp, start)
        } else if rx_l4 == RX_L4_CKSUM_GOOD {
            (Csum::Complete, 0)
        } else {
            (Csum::Unknown, 0)
        };
        (self.gso, self.gso_size) = if o.ol_flags & TX_TCP_SEG != 0 {
            let v6 = o.ol_flags & TX_IPV6 != 0;
            (if v6 { Gso::TcpV6 } else { Gso::TcpV4 }, o.tso_segsz)
        } else if o.ol_flags & TX_UDP_SEG != 0 {
            (Gso::Udp, o.tso_segsz)
        } else {
            (Gso::None, 0)
        };
        let work = self.gso != Gso::None || self.csum.field_offset().is_some();
        self.flags = (self.flags & !Meta::OFFLOAD) | if work { Meta::OFFLOAD } else { 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpdk::offload::*;

    fn off(ol_flags: u64, l2: u8, l3: u16, seg: u16) -> MbufOffload {
        MbufOffload {
            ol_flags,
            l2_len: l2,
            l3_len: l3,
            tso_segsz: seg,
        }
    }

    #[test]
    fn metadata_fits_four_to_a_cache_line() {
        assert_eq!(std::mem::size_of::<Meta>(), 16);
    }

    #[test]
    fn offload_state_from_device_flags() {
        let mut m = Meta::default();
        m.set_offload(&off(0, 0, 0, 0));
        assert_eq!(
            (m.csum, m.gso, m.needs_offload()),
            (Csum::Unknown, Gso::None, false)
        );
        m.set_offload(&off(RX_L4_CKSUM_GOOD, 14, 20, 0));
        assert_eq!((m.csum, m.needs_offload()), (Csum::Complete, false));
        // A guest's partial TCP checksum (vhost's legacy flags): start after IP.
        m.set_offload(&off(TX_TCP_CKSUM | TX_IPV4, 14, 20, 0));
        assert_eq!((m.csum, m.csum_start), (Csum::PartialTcp, 34));
        assert_eq!(m.csum.field_offset(), Some(16));
        assert!(m.needs_offload());
        m.set_offload(&off(TX_UDP_CKSUM | TX_IPV6, 14, 40, 0));
        assert_eq!((m.csum, m.csum_start), (Csum::PartialUdp, 54));
        assert_eq!(m.csum.field_offset(), Some(6));
        // TSO: segmentation implies a partial TCP checksum.
        m.set_offload(&off(TX_TCP_SEG | TX_IPV6, 14, 40, 1440));
        assert_eq!(
            (m.gso, m.gso_size, m.csum),
            (Gso::TcpV6, 1440, Csum::PartialTcp)
        );
        m.set_offload(&off(TX_TCP_SEG | TX_TCP_CKSUM | TX_IPV4, 18, 20, 8948));
        assert_eq!((m.gso, m.gso_size, m.csum_start), (Gso::TcpV4, 8948, 38));
        m.set_offload(&off(TX_UDP_SEG | TX_UDP_CKSUM, 14, 20, 1400));
        assert_eq!((m.gso, m.csum), (Gso::Udp, Csum::PartialUdp));
        // A bad checksum the device saw is not trusted.
        m.set_offload(&off(RX_L4_CKSUM_BAD, 14, 20, 0));
        assert_eq!(
            (m.csum, m.gso, m.needs_offload()),
            (Csum::Unknown, Gso::None, false)
        );
    }
}
