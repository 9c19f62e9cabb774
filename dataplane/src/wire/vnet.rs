//! The virtio-net header (`struct virtio_net_hdr`, virtio 1.1 §5.1.6) that Linux puts
//! before every frame on a packet socket with `PACKET_VNET_HDR` and on a tap with
//! `IFF_VNET_HDR`: how the frame's checksum and segmentation offloads stand.
//!
//! ```text
//!  0               1               2               3
//! +---------------+---------------+-------------------------------+
//! |     flags     |   gso_type    |            hdr_len            |
//! +---------------+---------------+-------------------------------+
//! |            gso_size           |          csum_start           |
//! +-------------------------------+-------------------------------+
//! |          csum_offset          |   (10 bytes)
//! +-------------------------------+
//! ```
//!
//! Byte order: virtio 1.0 and later make the 16-bit fields little-endian; the legacy
//! header these kernel interfaces use carries them in the host's byte order (Linux's
//! `vio_le()` for packet sockets; tun's unless `TUNSETVNETLE` / `TUNSETVNETBE` says
//! otherwise). This module reads and writes native endian, which on the machines this
//! switch runs on (x86-64, arm64) is little-endian, i.e. both agree.
//!
//! - `flags`: NEEDS_CSUM (the L4 checksum is partial: the field `csum_offset` bytes after
//!   `csum_start` holds the pseudo-header sum, the rest is to be folded in), DATA_VALID
//!   (the checksum was verified: virtio 1.1 §5.1.6.4, what Linux sets for a received frame
//!   whose checksum is known good).
//! - `gso_type`: the segmentation a super-frame needs, with `gso_size` payload bytes per
//!   segment (the MSS); virtio 1.1 §5.1.6.2.1 requires NEEDS_CSUM with any of them.
//!   GSO_UDP_L4 (USO: separate UDP datagrams, each with its own header and checksum) is
//!   virtio 1.2's (§5.1.6, VIRTIO_NET_F_HOST_USO); GSO_UDP is the older UFO (one datagram
//!   cut into IP fragments), which the dataplane does not do.
//! - `hdr_len`: the length of the headers, L4 included; a hint only (virtio 1.1
//!   §5.1.6.2; Linux's packet sockets write `skb_headlen`, the length of the frame's
//!   linear part), so nothing here relies on it.
//!
//! [`VnetHdr`] views the ten bytes; [`Repr::parse`] checks them (what the header says must
//! make sense as a whole: the frame comes from a pod); [`Repr::to_offload`] and
//! [`Repr::from_offload`] translate to and from the dataplane's offload metadata.

use crate::graph::{Csum, Gso};

/// Length of the header.
pub const HEADER_LEN: usize = field::HEADER;

/// `flags`: the checksum is partial (VIRTIO_NET_HDR_F_NEEDS_CSUM, virtio 1.1 §5.1.6).
pub const FLAG_NEEDS_CSUM: u8 = 1;
/// `flags`: the checksum was verified (VIRTIO_NET_HDR_F_DATA_VALID, virtio 1.1 §5.1.6).
pub const FLAG_DATA_VALID: u8 = 2;

/// `gso_type`: not a super-frame (VIRTIO_NET_HDR_GSO_NONE, virtio 1.1 §5.1.6).
pub const GSO_NONE: u8 = 0;
/// `gso_type`: TCP over IPv4 (VIRTIO_NET_HDR_GSO_TCPV4).
pub const GSO_TCPV4: u8 = 1;
/// `gso_type`: UDP fragmentation, UFO (VIRTIO_NET_HDR_GSO_UDP).
pub const GSO_UDP: u8 = 3;
/// `gso_type`: TCP over IPv6 (VIRTIO_NET_HDR_GSO_TCPV6).
pub const GSO_TCPV6: u8 = 4;
/// `gso_type`: UDP segmentation, USO, over IPv4 or IPv6 (VIRTIO_NET_HDR_GSO_UDP_L4,
/// virtio 1.2 §5.1.6).
pub const GSO_UDP_L4: u8 = 5;
/// `gso_type` bit: the TCP super-frame has CWR set, to be kept on the first segment only
/// (VIRTIO_NET_HDR_GSO_ECN, virtio 1.1 §5.1.6; RFC 3168 §6.1.2).
pub const GSO_ECN: u8 = 0x80;

/// Offset of the TCP checksum field from the start of the TCP header (RFC 9293 §3.1).
const TCP_CSUM_OFFSET: u16 = 16;
/// Offset of the UDP checksum field from the start of the UDP header (RFC 768).
const UDP_CSUM_OFFSET: u16 = 6;
/// The shortest TCP header (RFC 9293 §3.1).
const TCP_MIN_HEADER: usize = 20;
/// The UDP header (RFC 768).
const UDP_HEADER: usize = 8;

/// Byte ranges of the header fields.
mod field {
    use std::ops::Range;
    pub const FLAGS: usize = 0;
    pub const GSO_TYPE: usize = 1;
    pub const HDR_LEN: Range<usize> = 2..4;
    pub const GSO_SIZE: Range<usize> = 4..6;
    pub const CSUM_START: Range<usize> = 6..8;
    pub const CSUM_OFFSET: Range<usize> = 8..10;
    pub const HEADER: usize = 10;
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than 10 bytes; for [`Repr::from_offload`], a frame that ends before the L4
    /// header its offload state points at.
    Truncated,
    /// A `flags` bit other than NEEDS_CSUM and DATA_VALID (RSC_INFO and later bits belong to
    /// header layouts these interfaces do not use).
    UnknownFlags,
    /// A `gso_type` other than the five known ones, ECN aside.
    UnknownGsoType,
    /// The ECN bit on a type that is not TCP.
    EcnWithoutTcp,
    /// A GSO type with `gso_size` 0.
    ZeroGsoSize,
    /// A GSO type without NEEDS_CSUM (virtio 1.1 §5.1.6.2.1 requires it).
    GsoWithoutCsum,
    /// NEEDS_CSUM with a `csum_offset` that is neither TCP's 16 nor UDP's 6, or that does
    /// not fit the GSO type (16 for TCP, 6 for UDP).
    BadCsumOffset,
}

/// The kind of super-frame `gso_type` announces, without the ECN bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoType {
    None,
    TcpV4,
    /// UFO: parsed, but the dataplane does not fragment UDP ([`Repr::to_offload`] refuses).
    Udp,
    TcpV6,
    UdpL4,
}

impl GsoType {
    fn from_wire(v: u8) -> Option<GsoType> {
        match v {
            GSO_NONE => Some(GsoType::None),
            GSO_TCPV4 => Some(GsoType::TcpV4),
            GSO_UDP => Some(GsoType::Udp),
            GSO_TCPV6 => Some(GsoType::TcpV6),
            GSO_UDP_L4 => Some(GsoType::UdpL4),
            _ => None,
        }
    }

    fn to_wire(self) -> u8 {
        match self {
            GsoType::None => GSO_NONE,
            GsoType::TcpV4 => GSO_TCPV4,
            GsoType::Udp => GSO_UDP,
            GsoType::TcpV6 => GSO_TCPV6,
            GsoType::UdpL4 => GSO_UDP_L4,
        }
    }

    fn is_tcp(self) -> bool {
        matches!(self, GsoType::TcpV4 | GsoType::TcpV6)
    }
}

/// A view of a virtio-net header: the buffer is known to hold 10 bytes, so no accessor
/// panics. Bytes after the tenth (the frame) belong to no accessor.
#[derive(Debug, Clone, Copy)]
pub struct VnetHdr<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> VnetHdr<T> {
    /// Checks that `buf` holds the 10 bytes of a header.
    #[inline]
    pub fn new_checked(buf: T) -> Result<VnetHdr<T>, Malformed> {
        if buf.as_ref().len() < field::HEADER {
            return Err(Malformed::Truncated);
        }
        Ok(VnetHdr { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        let b = self.b();
        u16::from_ne_bytes([b[r.start], b[r.start + 1]])
    }

    /// The `flags` byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.b()[field::FLAGS]
    }

    /// The `gso_type` byte, ECN bit included.
    #[inline]
    pub fn gso_type(&self) -> u8 {
        self.b()[field::GSO_TYPE]
    }

    /// `hdr_len`: the headers' length, a hint.
    #[inline]
    pub fn hdr_len(&self) -> u16 {
        self.u16_at(field::HDR_LEN)
    }

    /// `gso_size`: payload bytes per segment.
    #[inline]
    pub fn gso_size(&self) -> u16 {
        self.u16_at(field::GSO_SIZE)
    }

    /// `csum_start`: where the partial checksum's coverage starts, from the frame's first
    /// byte (the byte after this header).
    #[inline]
    pub fn csum_start(&self) -> u16 {
        self.u16_at(field::CSUM_START)
    }

    /// `csum_offset`: where the checksum field is, from `csum_start`.
    #[inline]
    pub fn csum_offset(&self) -> u16 {
        self.u16_at(field::CSUM_OFFSET)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VnetHdr<T> {
    fn set_u16(&mut self, r: std::ops::Range<usize>, v: u16) {
        self.buf.as_mut()[r].copy_from_slice(&v.to_ne_bytes());
    }

    /// Writes `flags`.
    #[inline]
    pub fn set_flags(&mut self, v: u8) {
        self.buf.as_mut()[field::FLAGS] = v;
    }

    /// Writes `gso_type`.
    #[inline]
    pub fn set_gso_type(&mut self, v: u8) {
        self.buf.as_mut()[field::GSO_TYPE] = v;
    }

    /// Writes `hdr_len`.
    #[inline]
    pub fn set_hdr_len(&mut self, v: u16) {
        self.set_u16(field::HDR_LEN, v);
    }

    /// Writes `gso_size`.
    #[inline]
    pub fn set_gso_size(&mut self, v: u16) {
        self.set_u16(field::GSO_SIZE, v);
    }

    /// Writes `csum_start`.
    #[inline]
    pub fn set_csum_start(&mut self, v: u16) {
        self.set_u16(field::CSUM_START, v);
    }

    /// Writes `csum_offset`.
    #[inline]
    pub fn set_csum_offset(&mut self, v: u16) {
        self.set_u16(field::CSUM_OFFSET, v);
    }
}

/// What a header says, checked.
///
/// `csum` is [`Csum::PartialTcp`] / [`Csum::PartialUdp`] for NEEDS_CSUM (which of the two
/// by `csum_offset`), [`Csum::Complete`] for DATA_VALID alone, [`Csum::Unknown`] for
/// neither. NEEDS_CSUM wins over DATA_VALID when both are set: a checksum still to be
/// computed cannot have been verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// The checksum state `flags` and `csum_offset` give.
    pub csum: Csum,
    /// `csum_start` as carried; it means something only for the partial kinds.
    pub csum_start: u16,
    /// The segmentation `gso_type` asks for.
    pub gso: GsoType,
    /// The ECN bit (TCP types only).
    pub ecn: bool,
    /// `gso_size` as carried; it means something only for a GSO type (then it is not 0).
    pub gso_size: u16,
    /// `hdr_len` as carried: a hint.
    pub hdr_len: u16,
}

/// The dataplane's offload state of a frame: the four offload fields of
/// [`crate::graph::Meta`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offload {
    pub csum: Csum,
    /// Offset of the L4 header from the frame's start for the partial kinds, else 0.
    pub csum_start: u16,
    pub gso: Gso,
    /// Payload bytes per segment for a GSO kind, else 0.
    pub gso_size: u16,
}

impl Repr {
    /// Checks what the header `h` says, on its own: `csum_start` is not checked against
    /// the frame here (the frame is not given); [`super::checksum::complete_partial`]
    /// and [`super::gso::plan`] check it where the frame is.
    pub fn parse<T: AsRef<[u8]>>(h: &VnetHdr<T>) -> Result<Repr, Malformed> {
        let flags = h.flags();
        if flags & !(FLAG_NEEDS_CSUM | FLAG_DATA_VALID) != 0 {
            return Err(Malformed::UnknownFlags);
        }
        let raw = h.gso_type();
        let ecn = raw & GSO_ECN != 0;
        let gso = GsoType::from_wire(raw & !GSO_ECN).ok_or(Malformed::UnknownGsoType)?;
        if ecn && !gso.is_tcp() {
            return Err(Malformed::EcnWithoutTcp);
        }
        let needs_csum = flags & FLAG_NEEDS_CSUM != 0;
        if gso != GsoType::None {
            if h.gso_size() == 0 {
                return Err(Malformed::ZeroGsoSize);
            }
            if !needs_csum {
                return Err(Malformed::GsoWithoutCsum);
            }
        }
        let csum = if needs_csum {
            match (h.csum_offset(), gso) {
                (TCP_CSUM_OFFSET, GsoType::None | GsoType::TcpV4 | GsoType::TcpV6) => {
                    Csum::PartialTcp
                }
                (UDP_CSUM_OFFSET, GsoType::None | GsoType::Udp | GsoType::UdpL4) => {
                    Csum::PartialUdp
                }
                _ => return Err(Malformed::BadCsumOffset),
            }
        } else if flags & FLAG_DATA_VALID != 0 {
            Csum::Complete
        } else {
            Csum::Unknown
        };
        Ok(Repr {
            csum,
            csum_start: h.csum_start(),
            gso,
            ecn,
            gso_size: h.gso_size(),
            hdr_len: h.hdr_len(),
        })
    }

    /// Writes the header into the first 10 bytes of `buf` and returns 10; None, and
    /// nothing written, when `buf` is shorter. `csum_offset` follows from `csum` (0 when
    /// the checksum is not partial).
    pub fn emit(&self, buf: &mut [u8]) -> Option<usize> {
        let mut h = VnetHdr::new_checked(buf.get_mut(..HEADER_LEN)?).ok()?;
        let (flags, offset) = match self.csum {
            Csum::PartialTcp => (FLAG_NEEDS_CSUM, TCP_CSUM_OFFSET),
            Csum::PartialUdp => (FLAG_NEEDS_CSUM, UDP_CSUM_OFFSET),
            Csum::Complete => (FLAG_DATA_VALID, 0),
            Csum::Unknown => (0, 0),
        };
        h.set_flags(flags);
        h.set_gso_type(self.gso.to_wire() | if self.ecn { GSO_ECN } else { 0 });
        h.set_hdr_len(self.hdr_len);
        h.set_gso_size(self.gso_size);
        h.set_csum_start(self.csum_start);
        h.set_csum_offset(offset);
        Some(HEADER_LEN)
    }

    /// The dataplane's offload state for the frame after this header. None for UFO
    /// ([`GsoType::Udp`]), which the dataplane cannot carry out (Linux's packet sockets
    /// never report it: they only write TCPV4, TCPV6 and UDP_L4). The ECN bit is not kept:
    /// software segmentation keeps CWR on the first segment only in any case
    /// ([`super::gso`]).
    pub fn to_offload(&self) -> Option<Offload> {
        let gso = match self.gso {
            GsoType::None => Gso::None,
            GsoType::TcpV4 => Gso::TcpV4,
            GsoType::TcpV6 => Gso::TcpV6,
            GsoType::UdpL4 => Gso::Udp,
            GsoType::Udp => return None,
        };
        let partial = self.csum.field_offset().is_some();
        Some(Offload {
            csum: self.csum,
            csum_start: if partial { self.csum_start } else { 0 },
            gso,
            gso_size: if gso == Gso::None { 0 } else { self.gso_size },
        })
    }

    /// The header to send `frame` with, whose offload state is `o`, into a kernel
    /// interface. `hdr_len` is the headers' length up to the end of the L4 header, and
    /// for TCP the ECN bit is CWR of the frame's TCP header (Linux sets them so), both read
    /// from `frame` when `o` is a GSO kind. Refused: a GSO kind without the matching
    /// partial checksum (virtio 1.1 §5.1.6.2.1), a zero `gso_size`, and a frame that ends
    /// before its L4 header.
    pub fn from_offload(o: &Offload, frame: &[u8]) -> Result<Repr, Malformed> {
        let gso = match (o.gso, o.csum) {
            (Gso::None, _) => GsoType::None,
            (Gso::TcpV4, Csum::PartialTcp) => GsoType::TcpV4,
            (Gso::TcpV6, Csum::PartialTcp) => GsoType::TcpV6,
            (Gso::Udp, Csum::PartialUdp) => GsoType::UdpL4,
            (_, Csum::Unknown | Csum::Complete) => return Err(Malformed::GsoWithoutCsum),
            (_, Csum::PartialTcp | Csum::PartialUdp) => return Err(Malformed::BadCsumOffset),
        };
        let partial = o.csum.field_offset().is_some();
        let csum_start = if partial { o.csum_start } else { 0 };
        let (hdr_len, ecn) = if gso == GsoType::None {
            (0, false)
        } else {
            if o.gso_size == 0 {
                return Err(Malformed::ZeroGsoSize);
            }
            let l4 = usize::from(o.csum_start);
            if gso.is_tcp() {
                // Data offset (upper nibble of byte 12) and CWR (bit 7 of byte 13).
                let t = frame
                    .get(l4..l4 + TCP_MIN_HEADER)
                    .ok_or(Malformed::Truncated)?;
                let len = usize::from(t[12] >> 4) * 4;
                (l4 + len.max(TCP_MIN_HEADER), t[13] & 0x80 != 0)
            } else {
                (l4 + UDP_HEADER, false)
            }
        };
        let hdr_len = u16::try_from(hdr_len).map_err(|_| Malformed::Truncated)?;
        if usize::from(hdr_len) > frame.len() {
            return Err(Malformed::Truncated);
        }
        Ok(Repr {
            csum: o.csum,
            csum_start,
            gso,
            ecn,
            gso_size: if gso == GsoType::None { 0 } else { o.gso_size },
            hdr_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parses the 10 bytes `b`.
    fn parse(b: &[u8]) -> Result<Repr, Malformed> {
        Repr::parse(&VnetHdr::new_checked(b)?)
    }

    // The golden headers are written little-endian, as on x86.
    /// A TSO super-frame from a pod, as a packet socket reports it: NEEDS_CSUM, TCPV4,
    /// hdr_len 66 (the linear part), gso_size 1448, csum_start 34, csum_offset 16.
    #[cfg(target_endian = "little")]
    const TSO4: [u8; 10] = [0x01, 0x01, 0x42, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00];

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_a_tso_header() {
        let h = VnetHdr::new_checked(&TSO4[..]).unwrap();
        assert_eq!((h.flags(), h.gso_type()), (FLAG_NEEDS_CSUM, GSO_TCPV4));
        assert_eq!((h.hdr_len(), h.gso_size()), (66, 1448));
        assert_eq!((h.csum_start(), h.csum_offset()), (34, 16));
        let r = Repr::parse(&h).unwrap();
        assert_eq!(
            r,
            Repr {
                csum: Csum::PartialTcp,
                csum_start: 34,
                gso: GsoType::TcpV4,
                ecn: false,
                gso_size: 1448,
                hdr_len: 66,
            }
        );
        assert_eq!(
            r.to_offload(),
            Some(Offload {
                csum: Csum::PartialTcp,
                csum_start: 34,
                gso: Gso::TcpV4,
                gso_size: 1448
            })
        );
        let mut out = [0xee; 12];
        assert_eq!(r.emit(&mut out), Some(10));
        assert_eq!(out[..10], TSO4);
        assert_eq!(out[10..], [0xee, 0xee]);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn parses_the_other_golden_headers() {
        // USO over IPv6 behind a VLAN tag: csum_start 14 + 4 + 40 = 58, offset 6.
        let uso = [0x01, 0x05, 0x42, 0x00, 0x78, 0x05, 0x3a, 0x00, 0x06, 0x00];
        let o = parse(&uso).unwrap().to_offload().unwrap();
        assert_eq!(
            (o.csum, o.csum_start, o.gso, o.gso_size),
            (Csum::PartialUdp, 58, Gso::Udp, 1400)
        );
        // TSO over IPv6 with CWR: TCPV6 | ECN.
        let tso6 = [0x01, 0x84, 0x56, 0x00, 0xa0, 0x05, 0x36, 0x00, 0x10, 0x00];
        let r = parse(&tso6).unwrap();
        assert_eq!((r.gso, r.ecn, r.gso_size), (GsoType::TcpV6, true, 1440));
        assert_eq!(r.to_offload().unwrap().gso, Gso::TcpV6);
        // A received frame whose checksum the kernel verified: DATA_VALID, no GSO.
        let valid = [0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let o = parse(&valid).unwrap().to_offload().unwrap();
        assert_eq!(
            o,
            Offload {
                csum: Csum::Complete,
                ..Offload::default()
            }
        );
        // Nothing at all: all zero.
        let o = parse(&[0; 10]).unwrap().to_offload().unwrap();
        assert_eq!(o, Offload::default());
        // A partial UDP checksum without GSO (csum_start 34, offset 6).
        let p = [0x01, 0x00, 0, 0, 0, 0, 0x22, 0x00, 0x06, 0x00];
        let o = parse(&p).unwrap().to_offload().unwrap();
        assert_eq!(
            (o.csum, o.csum_start, o.gso, o.gso_size),
            (Csum::PartialUdp, 34, Gso::None, 0)
        );
        // Both flags: the partial checksum wins.
        let both = [0x03, 0x00, 0, 0, 0, 0, 0x22, 0x00, 0x10, 0x00];
        assert_eq!(parse(&both).unwrap().csum, Csum::PartialTcp);
        // csum_start and gso_size without their flag / type mean nothing.
        let stale = [0x00, 0x00, 0x36, 0x00, 0xa8, 0x05, 0x22, 0x00, 0x10, 0x00];
        assert_eq!(
            parse(&stale).unwrap().to_offload(),
            Some(Offload::default())
        );
    }

    #[test]
    fn refuses_each_malformation() {
        let mut b = [0u8; 10];
        let mut with = |f: &dyn Fn(&mut [u8; 10])| {
            b = [0x01, GSO_TCPV4, 0, 0, 0, 0, 0, 0, 0, 0];
            b[4..6].copy_from_slice(&1448u16.to_ne_bytes());
            b[6..8].copy_from_slice(&34u16.to_ne_bytes());
            b[8..10].copy_from_slice(&16u16.to_ne_bytes());
            f(&mut b);
            parse(&b)
        };
        assert!(with(&|_| ()).is_ok());
        assert_eq!(with(&|b| b[0] |= 4), Err(Malformed::UnknownFlags));
        assert_eq!(with(&|b| b[0] |= 0x80), Err(Malformed::UnknownFlags));
        for t in [2, 6, 7, 0x20, 0x21, 0x40, 0x7f] {
            assert_eq!(with(&|b| b[1] = t), Err(Malformed::UnknownGsoType), "{t}");
        }
        assert_eq!(with(&|b| b[1] = 0x80), Err(Malformed::EcnWithoutTcp));
        assert_eq!(
            with(&|b| b[1] = GSO_UDP_L4 | GSO_ECN),
            Err(Malformed::EcnWithoutTcp)
        );
        assert!(with(&|b| b[1] = GSO_TCPV6 | GSO_ECN).is_ok());
        assert_eq!(with(&|b| b[4..6].fill(0)), Err(Malformed::ZeroGsoSize));
        assert_eq!(with(&|b| b[0] = 0), Err(Malformed::GsoWithoutCsum));
        assert_eq!(with(&|b| b[0] = 2), Err(Malformed::GsoWithoutCsum));
        for off in [0u16, 2, 4, 8, 17, 0x1000, 0xffff] {
            let r = with(&|b| b[8..10].copy_from_slice(&off.to_ne_bytes()));
            assert_eq!(r, Err(Malformed::BadCsumOffset), "{off}");
        }
        // The offset must fit the GSO type.
        let udp_off = |b: &mut [u8; 10]| b[8..10].copy_from_slice(&6u16.to_ne_bytes());
        assert_eq!(with(&udp_off), Err(Malformed::BadCsumOffset));
        assert_eq!(
            with(&|b| b[1] = GSO_UDP_L4),
            Err(Malformed::BadCsumOffset),
            "UDP_L4 with TCP's offset"
        );
        // Without GSO, either offset goes.
        assert!(with(&|b| {
            b[1] = 0;
            udp_off(b)
        })
        .is_ok());
        for n in 0..10 {
            assert_eq!(parse(&b[..n]), Err(Malformed::Truncated));
        }
    }

    #[test]
    fn ufo_parses_but_has_no_offload_state() {
        let mut b = [0x01, GSO_UDP, 0, 0, 0, 0, 0, 0, 0, 0];
        b[4..6].copy_from_slice(&1400u16.to_ne_bytes());
        b[8..10].copy_from_slice(&6u16.to_ne_bytes());
        let r = parse(&b).unwrap();
        assert_eq!(r.gso, GsoType::Udp);
        assert_eq!(r.to_offload(), None);
    }

    /// A TCP/IPv4 frame's first 54 bytes, data offset 8 (12 bytes of options), CWR set.
    fn tcp_frame() -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 32 + 10];
        f[34 + 12] = 8 << 4;
        f[34 + 13] = 0x80 | 0x10;
        f
    }

    #[test]
    fn from_offload_reads_hdr_len_and_cwr_from_the_frame() {
        let f = tcp_frame();
        let o = Offload {
            csum: Csum::PartialTcp,
            csum_start: 34,
            gso: Gso::TcpV4,
            gso_size: 1448,
        };
        let r = Repr::from_offload(&o, &f).unwrap();
        assert_eq!((r.hdr_len, r.ecn, r.gso), (66, true, GsoType::TcpV4));
        assert_eq!(r.to_offload(), Some(o));
        let u = Offload {
            csum: Csum::PartialUdp,
            gso: Gso::Udp,
            ..o
        };
        let r = Repr::from_offload(&u, &f).unwrap();
        assert_eq!((r.hdr_len, r.ecn, r.gso), (42, false, GsoType::UdpL4));
        assert_eq!(r.to_offload(), Some(u));
        // Not GSO: nothing is read from the frame.
        let c = Offload {
            csum: Csum::PartialTcp,
            csum_start: 34,
            ..Offload::default()
        };
        let r = Repr::from_offload(&c, &[]).unwrap();
        assert_eq!((r.hdr_len, r.gso, r.csum_start), (0, GsoType::None, 34));
        let done = Offload {
            csum: Csum::Complete,
            csum_start: 34,
            ..Offload::default()
        };
        let r = Repr::from_offload(&done, &[]).unwrap();
        assert_eq!((r.csum, r.csum_start), (Csum::Complete, 0));
        // Refusals.
        let bad = |o: Offload, f: &[u8]| Repr::from_offload(&o, f).err();
        let unknown = Offload {
            csum: Csum::Unknown,
            ..o
        };
        assert_eq!(bad(unknown, &f), Some(Malformed::GsoWithoutCsum));
        let udp_csum = Offload {
            csum: Csum::PartialUdp,
            ..o
        };
        assert_eq!(bad(udp_csum, &f), Some(Malformed::BadCsumOffset));
        assert_eq!(
            bad(Offload { gso_size: 0, ..o }, &f),
            Some(Malformed::ZeroGsoSize)
        );
        assert_eq!(bad(o, &f[..53]), Some(Malformed::Truncated));
        assert_eq!(bad(o, &f[..65]), Some(Malformed::Truncated));
        let far = Offload {
            csum_start: u16::MAX,
            ..o
        };
        assert_eq!(bad(far, &f), Some(Malformed::Truncated));
    }

    fn any_csum() -> impl Strategy<Value = Csum> {
        prop_oneof![
            Just(Csum::Unknown),
            Just(Csum::Complete),
            Just(Csum::PartialTcp),
            Just(Csum::PartialUdp)
        ]
    }

    fn any_gso() -> impl Strategy<Value = GsoType> {
        prop_oneof![
            Just(GsoType::None),
            Just(GsoType::TcpV4),
            Just(GsoType::Udp),
            Just(GsoType::TcpV6),
            Just(GsoType::UdpL4)
        ]
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(big in proptest::collection::vec(any::<u8>(), 0..24),
                                    cut in any::<prop::sample::Index>(), likely: bool) {
            // A slice cut from a bigger buffer: nothing past the cut is read (it would
            // panic), and what parses re-emits to the same meaning. Half the cases are
            // steered towards headers that could parse (known flags, types, offsets).
            let mut big = big;
            if likely && big.len() >= 10 {
                big[0] &= 3;
                big[1] = [0, 1, 3, 4, 5, 0x81, 0x84, 0x85][usize::from(big[1] & 7)];
                let offset = [6u16, 16][usize::from(big[8] & 1)];
                big[8..10].copy_from_slice(&offset.to_ne_bytes());
            }
            let n = cut.index(big.len() + 1);
            let b = &big[..n];
            match VnetHdr::new_checked(b) {
                Err(e) => prop_assert!(n < 10 && e == Malformed::Truncated),
                Ok(h) => {
                    prop_assert!(n >= 10);
                    if let Ok(r) = Repr::parse(&h) {
                        let mut out = [0u8; 10];
                        prop_assert_eq!(r.emit(&mut out), Some(10));
                        prop_assert_eq!(parse(&out), Ok(r));
                        let _ = r.to_offload();
                    }
                }
            }
        }

        #[test]
        fn emit_then_parse_round_trips(csum in any_csum(), gso in any_gso(), ecn: bool,
                                       csum_start: u16, gso_size: u16, hdr_len: u16) {
            let r = Repr { csum, csum_start, gso, ecn, gso_size, hdr_len };
            let mut out = [0u8; 10];
            prop_assert_eq!(r.emit(&mut out), Some(10));
            prop_assert_eq!(r.emit(&mut out[..9]), None);
            let valid = (!ecn || gso.is_tcp())
                && (gso == GsoType::None
                    || gso_size != 0 && match csum {
                        Csum::PartialTcp => gso.is_tcp(),
                        Csum::PartialUdp => matches!(gso, GsoType::Udp | GsoType::UdpL4),
                        Csum::Unknown | Csum::Complete => false,
                    });
            if valid {
                prop_assert_eq!(parse(&out), Ok(r));
            } else {
                prop_assert!(parse(&out).is_err());
            }
        }

        #[test]
        fn offload_round_trips(csum in any_csum(), gso in any_gso(), csum_start in 0u16..100,
                               gso_size: u16, frame in proptest::collection::vec(any::<u8>(), 0..200)) {
            let Some(o) = (Repr { csum, csum_start, gso, ecn: false, gso_size, hdr_len: 0 })
                .to_offload() else {
                prop_assert_eq!(gso, GsoType::Udp);
                return Ok(());
            };
            if let Ok(r) = Repr::from_offload(&o, &frame) {
                prop_assert_eq!(r.to_offload(), Some(o));
                prop_assert!(usize::from(r.hdr_len) <= frame.len());
                let mut out = [0u8; 10];
                r.emit(&mut out);
                prop_assert_eq!(parse(&out), Ok(r));
            }
        }
    }
}
