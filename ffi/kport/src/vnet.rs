//! The virtio-net header (`struct virtio_net_hdr`, include/uapi/linux/virtio_net.h) that the
//! kernel puts in front of every frame on a socket with `PACKET_VNET_HDR` and on a tap with
//! `IFF_VNET_HDR`: the frame's offload state (checksum partial / valid, GSO type and size).
//!
//! On the wire of the ring / the tap file it is 10 bytes, multi-byte fields little-endian
//! (the kernel's `vio_le()` on a little-endian host; virtio 1.0 headers are always LE):
//!
//! | bytes | field |
//! | --- | --- |
//! | 0 | flags (`NEEDS_CSUM`, `DATA_VALID`) |
//! | 1 | gso_type (`GSO_NONE`, `GSO_TCPV4`, ...; `GSO_ECN` or'd in) |
//! | 2..4 | hdr_len: bytes of headers (L2 included) in front of the GSO payload |
//! | 4..6 | gso_size: payload bytes per segment |
//! | 6..8 | csum_start: where the checksummed data starts, from the frame's first byte |
//! | 8..10 | csum_offset: where the checksum goes, from csum_start |

/// Bytes of a `struct virtio_net_hdr` in front of a frame.
pub const VNET_HDR_LEN: usize = 10;

/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the L4 checksum is partial (pseudo-header sum at
/// csum_start + csum_offset); whoever sends the frame onto a wire must finish it.
pub const F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`: the checksum was verified (or is known good).
pub const F_DATA_VALID: u8 = 2;

/// `VIRTIO_NET_HDR_GSO_NONE`.
pub const GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`: a TCP/IPv4 super-frame to cut into gso_size segments.
pub const GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_UDP`: IPv4 UDP fragmentation offload (UFO).
pub const GSO_UDP: u8 = 3;
/// `VIRTIO_NET_HDR_GSO_TCPV6`.
pub const GSO_TCPV6: u8 = 4;
/// `VIRTIO_NET_HDR_GSO_UDP_L4`: UDP segmentation (USO), IPv4 or IPv6.
pub const GSO_UDP_L4: u8 = 5;
/// `VIRTIO_NET_HDR_GSO_ECN`: or'd into gso_type when the TCP super-frame carries CWR.
pub const GSO_ECN: u8 = 0x80;

mod field {
    use core::ops::Range;
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    pub const HDR_LEN: Range<usize> = 2..4;
    pub const GSO_SIZE: Range<usize> = 4..6;
    pub const CSUM_START: Range<usize> = 6..8;
    pub const CSUM_OFFSET: Range<usize> = 8..10;
}

/// A frame's offload state, as a `struct virtio_net_hdr` carries it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Decodes the 10 header bytes.
    #[inline]
    pub fn decode(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let le = |r: core::ops::Range<usize>| u16::from_le_bytes([b[r.start], b[r.start + 1]]);
        VnetHdr {
            flags: b[field::FLAGS],
            gso_type: b[field::GSO_TYPE],
            hdr_len: le(field::HDR_LEN),
            gso_size: le(field::GSO_SIZE),
            csum_start: le(field::CSUM_START),
            csum_offset: le(field::CSUM_OFFSET),
        }
    }

    /// The 10 header bytes.
    #[inline]
    pub fn encode(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[field::FLAGS] = self.flags;
        b[field::GSO_TYPE] = self.gso_type;
        b[field::HDR_LEN].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[field::GSO_SIZE].copy_from_slice(&self.gso_size.to_le_bytes());
        b[field::CSUM_START].copy_from_slice(&self.csum_start.to_le_bytes());
        b[field::CSUM_OFFSET].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// The checksum is partial and must be finished downstream.
    #[inline]
    pub fn needs_csum(&self) -> bool {
        self.flags & F_NEEDS_CSUM != 0
    }

    /// A GSO super-frame (the GSO type without the ECN bit is not `GSO_NONE`).
    #[inline]
    pub fn is_gso(&self) -> bool {
        self.gso_type & !GSO_ECN != GSO_NONE
    }

    /// The header after `n` bytes were inserted in front of the L3 header (a VLAN tag put
    /// back into the frame): the offsets counted from the frame's first byte move by `n`.
    #[inline]
    pub fn shifted(mut self, n: u16) -> VnetHdr {
        if self.needs_csum() {
            self.csum_start = self.csum_start.saturating_add(n);
        }
        if self.hdr_len != 0 {
            self.hdr_len = self.hdr_len.saturating_add(n);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TSO frame as the kernel hands it over for TCP/IPv4 without options:
    /// NEEDS_CSUM, GSO_TCPV4, hdr_len 66, gso_size 1448, csum_start 34, csum_offset 16.
    const GOLDEN: [u8; 10] = [0x01, 0x01, 66, 0, 0xa8, 0x05, 34, 0, 16, 0];

    #[test]
    fn decode_golden() {
        let h = VnetHdr::decode(&GOLDEN);
        assert_eq!(
            h,
            VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_TCPV4,
                hdr_len: 66,
                gso_size: 1448,
                csum_start: 34,
                csum_offset: 16,
            }
        );
        assert!(h.needs_csum() && h.is_gso());
        assert_eq!(h.encode(), GOLDEN);
    }

    #[test]
    fn default_is_all_zero() {
        assert_eq!(VnetHdr::default().encode(), [0; 10]);
        assert!(!VnetHdr::default().is_gso());
    }

    #[test]
    fn ecn_alone_is_not_gso() {
        let h = VnetHdr {
            gso_type: GSO_ECN,
            ..VnetHdr::default()
        };
        assert!(!h.is_gso());
    }

    #[test]
    fn shift_moves_offsets_from_frame_start() {
        let h = VnetHdr::decode(&GOLDEN).shifted(4);
        assert_eq!((h.hdr_len, h.csum_start, h.csum_offset), (70, 38, 16));
        let plain = VnetHdr::default().shifted(4);
        assert_eq!(plain, VnetHdr::default());
    }
}
