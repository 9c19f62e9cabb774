//! IPv6 headers (RFC 8200 §3) and the extension headers between them and the upper layer
//! (RFC 8200 §4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |              Flow Label               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                    Source Address (16 bytes)                  +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! +                 Destination Address (16 bytes)                +
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Hop-by-Hop Options (0), Routing (43), Destination Options (60), RFC 8200 §4.3-4.6:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Header  |  Hdr Ext Len  |  (Hdr Ext Len + 1) * 8 bytes  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Fragment (44), RFC 8200 §4.5, always 8 bytes:
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Identification                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Payload Length counts the bytes after the fixed header, extension headers included; the
//! buffer may hold link padding after them. Jumbograms (Payload Length 0 with a Jumbo
//! Payload option, RFC 2675) are not supported: Payload Length 0 is an empty payload.
//! There is no header checksum; upper layers cover the addresses through a pseudo-header
//! (RFC 8200 §8.1, [`super::checksum::pseudo_header_v6`]).

use std::net::Ipv6Addr;
use std::ops::Range;

use super::ethernet::Mac;

/// Next Header of Hop-by-Hop Options (RFC 8200 §4.3). The Next Header values are IANA's
/// "Assigned Internet Protocol Numbers", the same as IPv4's Protocol.
pub const NEXT_HOP_BY_HOP: u8 = 0;
/// Routing (RFC 8200 §4.4).
pub const NEXT_ROUTING: u8 = 43;
/// Fragment (RFC 8200 §4.5).
pub const NEXT_FRAGMENT: u8 = 44;
/// ICMPv6 (RFC 4443).
pub const NEXT_ICMPV6: u8 = 58;
/// No Next Header (RFC 8200 §4.7).
pub const NEXT_NONE: u8 = 59;
/// Destination Options (RFC 8200 §4.6).
pub const NEXT_DEST_OPTS: u8 = 60;

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::HEADER;

/// The most extension headers [`Ipv6Packet::upper_layer`] walks. RFC 8200 §4.1 allows
/// each header once (Destination Options twice), so a legitimate chain of the four kinds
/// walked here has at most 5; 8 leaves room and bounds the work per packet.
pub const MAX_EXT_HEADERS: usize = 8;

/// Byte ranges of the header fields.
mod field {
    use std::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
    /// Fixed header length.
    pub const HEADER: usize = 40;

    /// In an extension header.
    pub const EXT_NEXT: usize = 0;
    pub const EXT_LEN: usize = 1;
    /// Every extension header walked is a multiple of this, and at least this long.
    pub const EXT_UNIT: usize = 8;
    /// In a Fragment header.
    pub const FRAG_OFFSET_M: Range<usize> = 2..4;
    pub const FRAG_IDENT: Range<usize> = 4..8;
}

/// Why a packet was refused ([`Ipv6Packet::new_checked`]) or its extension headers were
/// ([`Ipv6Packet::upper_layer`]; RFC 8200 §4 leaves what to drop to the node, these are
/// what this walk cannot follow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The buffer ends before 40 bytes or before 40 + Payload Length.
    Truncated,
    /// Version is not 6.
    BadVersion,
    /// An extension header runs past Payload Length.
    ExtTruncated,
    /// More than [`MAX_EXT_HEADERS`] extension headers.
    TooManyExtHeaders,
    /// Hop-by-Hop Options not directly after the IPv6 header (RFC 8200 §4.3), or a second
    /// Fragment header (RFC 8200 §4.1: each at most once).
    ExtOrder,
}

/// A view of an IPv6 packet whose fixed header and payload are known to fit in the
/// buffer: `40 + Payload Length <= buffer length`.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T: AsRef<[u8]>> {
    buf: T,
}

/// A Fragment header (RFC 8200 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader {
    /// The Next Header of the fragmentable part.
    pub next_header: u8,
    /// Where this fragment's data sits in the fragmentable part, in bytes (a multiple of
    /// 8; the field counts 8-byte units).
    pub offset: u16,
    /// The M flag: more fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// The end of the extension header chain, found by [`Ipv6Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The last Next Header: the upper-layer protocol (6 TCP, 17 UDP, 58 ICMPv6, 59 none,
    /// or a header this walk does not open, such as ESP 50 or AH 51).
    pub protocol: u8,
    /// Its offset from the start of the IPv6 header: at least 40, at most
    /// 40 + Payload Length. When `fragment` has a nonzero offset, the bytes here are the
    /// middle of the fragmentable part, not a header (the walk stops at the Fragment
    /// header).
    pub offset: usize,
    /// The Fragment header, if the chain has one.
    pub fragment: Option<FragmentHeader>,
}

#[inline]
fn be16(b: &[u8], r: Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

#[inline]
fn be32(b: &[u8], r: Range<usize>) -> u32 {
    u32::from_be_bytes([b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3]])
}

#[inline]
fn addr(b: &[u8], r: Range<usize>) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[r]);
    Ipv6Addr::from(a)
}

/// Whether [`Ipv6Packet::upper_layer`] walks over a header of this Next Header value.
#[inline]
fn is_walked(next: u8) -> bool {
    matches!(
        next,
        NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_FRAGMENT | NEXT_DEST_OPTS
    )
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    /// Checks the version and that Payload Length fits in the buffer.
    pub fn new_checked(buf: T) -> Result<Ipv6Packet<T>, Malformed> {
        let b = buf.as_ref();
        if b.len() < field::HEADER {
            return Err(Malformed::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Malformed::BadVersion);
        }
        if field::HEADER + usize::from(be16(b, field::PAYLOAD_LEN)) > b.len() {
            return Err(Malformed::Truncated);
        }
        Ok(Ipv6Packet { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Traffic Class: DSCP in the upper six bits (RFC 2474 §3), ECN in the lower two
    /// (RFC 3168 §5).
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (be32(self.b(), field::VER_TC_FLOW) >> 20) as u8
    }

    /// Flow Label (20 bits, RFC 6437).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        be32(self.b(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// Payload Length: bytes after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        be16(self.b(), field::PAYLOAD_LEN)
    }

    /// Next Header: the first extension header or the upper-layer protocol.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.b()[field::NEXT_HEADER]
    }

    /// Hop Limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.b()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv6Addr {
        addr(self.b(), field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv6Addr {
        addr(self.b(), field::DST)
    }

    /// The payload: Payload Length bytes after the fixed header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.b()[field::HEADER..self.end()]
    }

    /// Header and payload, without the link padding after them.
    #[inline]
    pub fn packet(&self) -> &[u8] {
        &self.b()[..self.end()]
    }

    #[inline]
    fn end(&self) -> usize {
        field::HEADER + usize::from(self.payload_len())
    }

    /// Walks the Hop-by-Hop, Routing, Fragment and Destination Options headers (at most
    /// [`MAX_EXT_HEADERS`], each checked to lie within Payload Length) to the upper layer.
    /// The walk stops at a Fragment header with a nonzero offset, since what follows it is
    /// not a header (RFC 8200 §4.5).
    pub fn upper_layer(&self) -> Result<UpperLayer, Malformed> {
        let b = self.packet();
        let mut next = self.next_header();
        let mut at = field::HEADER;
        let mut fragment = None;
        for walked in 0..MAX_EXT_HEADERS {
            if !is_walked(next) {
                return Ok(UpperLayer {
                    protocol: next,
                    offset: at,
                    fragment,
                });
            }
            if next == NEXT_HOP_BY_HOP && walked != 0 {
                return Err(Malformed::ExtOrder);
            }
            let h = b
                .get(at..at + field::EXT_UNIT)
                .ok_or(Malformed::ExtTruncated)?;
            let len = if next == NEXT_FRAGMENT {
                field::EXT_UNIT
            } else {
                (usize::from(h[field::EXT_LEN]) + 1) * field::EXT_UNIT
            };
            if at + len > b.len() {
                return Err(Malformed::ExtTruncated);
            }
            if next == NEXT_FRAGMENT {
                if fragment.is_some() {
                    return Err(Malformed::ExtOrder);
                }
                let offset_m = be16(h, field::FRAG_OFFSET_M);
                let f = FragmentHeader {
                    next_header: h[field::EXT_NEXT],
                    offset: offset_m & 0xfff8,
                    more: offset_m & 1 != 0,
                    ident: be32(h, field::FRAG_IDENT),
                };
                fragment = Some(f);
                if f.offset != 0 {
                    return Ok(UpperLayer {
                        protocol: f.next_header,
                        offset: at + len,
                        fragment,
                    });
                }
            }
            next = h[field::EXT_NEXT];
            at += len;
        }
        if is_walked(next) {
            return Err(Malformed::TooManyExtHeaders);
        }
        Ok(UpperLayer {
            protocol: next,
            offset: at,
            fragment,
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    /// Decrements Hop Limit as a router forwarding the packet does. False, and nothing
    /// written, when it is 0 or 1: the packet must not be forwarded, and the router sends
    /// Time Exceeded instead (RFC 8200 §3, RFC 4443 §3.3).
    #[inline]
    pub fn decrement_hop_limit(&mut self) -> bool {
        let h = self.hop_limit();
        if h <= 1 {
            return false;
        }
        self.buf.as_mut()[field::HOP_LIMIT] = h - 1;
        true
    }
}

/// The fields [`emit`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Next Header.
    pub next_header: u8,
    /// Hop Limit.
    pub hop_limit: u8,
    /// Traffic Class.
    pub traffic_class: u8,
    /// Flow Label; only the low 20 bits are written.
    pub flow_label: u32,
    /// Bytes that follow the fixed header.
    pub payload_len: u16,
}

/// Writes the 40-byte fixed header for `repr` at the start of `buf` and returns 40. The
/// payload is the caller's to place after it. None, and nothing written, when `buf` is
/// shorter than 40 bytes.
pub fn emit(buf: &mut [u8], repr: &Ipv6Repr) -> Option<usize> {
    let h = buf.get_mut(..HEADER_LEN)?;
    let first = (6u32 << 28) | (u32::from(repr.traffic_class) << 20) | (repr.flow_label & 0xf_ffff);
    h[field::VER_TC_FLOW].copy_from_slice(&first.to_be_bytes());
    h[field::PAYLOAD_LEN].copy_from_slice(&repr.payload_len.to_be_bytes());
    h[field::NEXT_HEADER] = repr.next_header;
    h[field::HOP_LIMIT] = repr.hop_limit;
    h[field::SRC].copy_from_slice(&repr.src.octets());
    h[field::DST].copy_from_slice(&repr.dst.octets());
    Some(HEADER_LEN)
}

/// The solicited-node multicast address of `a`, `ff02::1:ff00:0/104` with the low 24 bits
/// of `a` (RFC 4291 §2.7.1), where Neighbor Solicitations for `a` go (RFC 4861 §7.2.2).
pub fn solicited_node(a: &Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    let mut m = [0u8; 16];
    m[..2].copy_from_slice(&[0xff, 0x02]);
    m[11..13].copy_from_slice(&[0x01, 0xff]);
    m[13..].copy_from_slice(&o[13..]);
    Ipv6Addr::from(m)
}

/// The Ethernet address a multicast IPv6 address maps to: 33:33 and its last four bytes
/// (RFC 2464 §7).
pub fn multicast_mac(a: &Ipv6Addr) -> Mac {
    let o = a.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// A UDP datagram 2001:db8::1 -> 2001:db8::2 behind Hop-by-Hop Options (8 bytes: a
    /// Router Alert option, RFC 2711, and a PadN), a Routing header (Hdr Ext Len 2: 24
    /// bytes, a type 0 header carrying one address), a Fragment header (first fragment, M
    /// set, ident 0xdeadbeef) and Destination Options (8 bytes of PadN), then an 8-byte UDP
    /// header. Traffic class 0xb8 (EF), flow label 0x12345, hop limit 64.
    fn chain() -> Vec<u8> {
        let mut b = vec![
            0x6b,
            0x81,
            0x23,
            0x45, // version 6, TC 0xb8, flow 0x12345
            0x00,
            0x38,
            NEXT_HOP_BY_HOP,
            64, // payload length 56
        ];
        b.extend_from_slice(&ip("2001:db8::1").octets());
        b.extend_from_slice(&ip("2001:db8::2").octets());
        // Hop-by-Hop: next Routing, len 0; Router Alert (5, 2, 0x0000); PadN (1, 0).
        b.extend_from_slice(&[NEXT_ROUTING, 0, 5, 2, 0, 0, 1, 0]);
        // Routing: next Fragment, len 2, type 0, segments left 1, reserved, one address.
        b.extend_from_slice(&[NEXT_FRAGMENT, 2, 0, 1, 0, 0, 0, 0]);
        b.extend_from_slice(&ip("2001:db8::3").octets());
        // Fragment: next Destination Options, offset 0, M set, ident 0xdeadbeef.
        b.extend_from_slice(&[NEXT_DEST_OPTS, 0, 0x00, 0x01, 0xde, 0xad, 0xbe, 0xef]);
        // Destination Options: next UDP, len 0, PadN of 4 bytes.
        b.extend_from_slice(&[17, 0, 1, 4, 0, 0, 0, 0]);
        // UDP: 1234 -> 5678, length 8, checksum left 0 here.
        b.extend_from_slice(&[0x04, 0xd2, 0x16, 0x2e, 0x00, 0x08, 0x00, 0x00]);
        assert_eq!(b.len(), 40 + 56);
        b
    }

    #[test]
    fn parses_the_fixed_header() {
        let b = chain();
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.traffic_class(), 0xb8);
        assert_eq!(p.flow_label(), 0x12345);
        assert_eq!(p.payload_len(), 56);
        assert_eq!(p.next_header(), NEXT_HOP_BY_HOP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src(), ip("2001:db8::1"));
        assert_eq!(p.dst(), ip("2001:db8::2"));
        assert_eq!(p.payload(), &b[40..]);
    }

    #[test]
    fn refuses_truncated_and_wrong_version() {
        let b = chain();
        let check = |b: &[u8]| Ipv6Packet::new_checked(b).map(|_| ());
        assert_eq!(check(&b[..39]), Err(Malformed::Truncated));
        assert_eq!(check(&b[..95]), Err(Malformed::Truncated));
        assert_eq!(check(&b), Ok(()));
        let mut v4 = b.clone();
        v4[0] = 0x4b;
        assert_eq!(check(&v4), Err(Malformed::BadVersion));
        // Padding after the payload is not payload.
        let mut padded = b.clone();
        padded.extend_from_slice(&[0xee; 6]);
        let p = Ipv6Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(p.payload(), &b[40..]);
        assert_eq!(p.packet(), &b[..]);
    }

    #[test]
    fn walks_the_extension_headers_to_udp() {
        let b = chain();
        let u = Ipv6Packet::new_checked(&b[..]).unwrap().upper_layer();
        assert_eq!(
            u,
            Ok(UpperLayer {
                protocol: 17,
                offset: 40 + 8 + 24 + 8 + 8,
                fragment: Some(FragmentHeader {
                    next_header: NEXT_DEST_OPTS,
                    offset: 0,
                    more: true,
                    ident: 0xdead_beef,
                }),
            })
        );
    }

    #[test]
    fn stops_at_a_later_fragment() {
        // Offset 1448 bytes (181 units), M clear: the last fragment. What follows the
        // Fragment header is data, even though its first byte would read as a header.
        let mut b = chain();
        b[74..76].copy_from_slice(&(181u16 << 3).to_be_bytes());
        let u = Ipv6Packet::new_checked(&b[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(u.protocol, NEXT_DEST_OPTS);
        assert_eq!(u.offset, 40 + 8 + 24 + 8);
        let f = u.fragment.unwrap();
        assert_eq!((f.offset, f.more), (1448, false));
    }

    #[test]
    fn no_extension_headers() {
        let mut b = vec![0x60, 0, 0, 0, 0, 0, NEXT_NONE, 1];
        b.resize(40, 0);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert!(p.payload().is_empty());
        assert_eq!(
            p.upper_layer(),
            Ok(UpperLayer {
                protocol: NEXT_NONE,
                offset: 40,
                fragment: None
            })
        );
    }

    #[test]
    fn refuses_bad_chains() {
        let walk = |b: &[u8]| Ipv6Packet::new_checked(b).unwrap().upper_layer();
        // Layout: Hop-by-Hop at 40, Routing at 48, Fragment at 72, Destination Options at
        // 80, UDP at 88, end at 96.
        let b = chain();
        let mut long = b.clone();
        long[49] = 10; // Routing Hdr Ext Len 10: 88 bytes, past Payload Length
        assert_eq!(walk(&long), Err(Malformed::ExtTruncated));
        // Payload Length cut to end inside the Destination Options header.
        let mut cut = b.clone();
        cut[4..6].copy_from_slice(&44u16.to_be_bytes());
        assert_eq!(walk(&cut), Err(Malformed::ExtTruncated));
        // Payload Length ends after the Hop-by-Hop header's first 4 bytes.
        let mut cut = b.clone();
        cut[4..6].copy_from_slice(&4u16.to_be_bytes());
        assert_eq!(walk(&cut), Err(Malformed::ExtTruncated));
        // Hop-by-Hop after Routing.
        let mut hbh = b.clone();
        hbh[48] = NEXT_HOP_BY_HOP;
        assert_eq!(walk(&hbh), Err(Malformed::ExtOrder));
        // The Fragment header's next is another Fragment header.
        let mut two = b.clone();
        two[72] = NEXT_FRAGMENT;
        assert_eq!(walk(&two), Err(Malformed::ExtOrder));
    }

    /// A packet whose chain is `n` Destination Options headers, then No Next Header.
    fn dest_opts(n: usize) -> Vec<u8> {
        let mut b = vec![0x60, 0, 0, 0];
        b.extend_from_slice(&((8 * n) as u16).to_be_bytes());
        b.extend_from_slice(&[if n == 0 { NEXT_NONE } else { NEXT_DEST_OPTS }, 64]);
        b.resize(40, 0);
        for i in 0..n {
            let next = if i + 1 == n {
                NEXT_NONE
            } else {
                NEXT_DEST_OPTS
            };
            b.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        b
    }

    #[test]
    fn walks_at_most_eight_headers() {
        let walk = |b: &[u8]| Ipv6Packet::new_checked(b).unwrap().upper_layer();
        assert_eq!(walk(&dest_opts(8)).unwrap().offset, 40 + 64);
        assert_eq!(walk(&dest_opts(9)), Err(Malformed::TooManyExtHeaders));
    }

    #[test]
    fn hop_limit() {
        let mut b = chain();
        let mut p = Ipv6Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.decrement_hop_limit());
        assert_eq!(p.hop_limit(), 63);
        for h in [1, 0] {
            let mut b = chain();
            b[7] = h;
            assert!(!Ipv6Packet::new_checked(&mut b[..])
                .unwrap()
                .decrement_hop_limit());
            assert_eq!(b[7], h);
        }
    }

    #[test]
    fn emit_writes_the_fixed_header() {
        let b = chain();
        let repr = Ipv6Repr {
            src: ip("2001:db8::1"),
            dst: ip("2001:db8::2"),
            next_header: NEXT_HOP_BY_HOP,
            hop_limit: 64,
            traffic_class: 0xb8,
            flow_label: 0x12345,
            payload_len: 56,
        };
        let mut out = [0u8; 40];
        assert_eq!(emit(&mut out, &repr), Some(40));
        assert_eq!(&out[..], &b[..40]);
        assert_eq!(emit(&mut out[..39], &repr), None);
    }

    #[test]
    fn multicast_addresses() {
        // RFC 4291 §2.7.1's example: 4037::01:800:200E:8C6C -> FF02::1:FF0E:8C6C.
        assert_eq!(
            solicited_node(&ip("4037::1:800:200e:8c6c")),
            ip("ff02::1:ff0e:8c6c")
        );
        // RFC 2464 §7: FF02::1 -> 33-33-00-00-00-01.
        assert_eq!(multicast_mac(&ip("ff02::1")), [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(
            multicast_mac(&ip("ff02::1:ff0e:8c6c")),
            [0x33, 0x33, 0xff, 0x0e, 0x8c, 0x6c]
        );
    }

    /// Calls every accessor and the walker and checks the promised bounds.
    fn touch_all<T: AsRef<[u8]>>(p: &Ipv6Packet<T>, len: usize) {
        let end = HEADER_LEN + usize::from(p.payload_len());
        assert!(end <= len);
        assert_eq!(p.payload().len(), usize::from(p.payload_len()));
        assert_eq!(p.packet().len(), end);
        assert!(p.flow_label() <= 0xf_ffff);
        let _ = (
            p.traffic_class(),
            p.next_header(),
            p.hop_limit(),
            p.src(),
            p.dst(),
        );
        if let Ok(u) = p.upper_layer() {
            assert!(HEADER_LEN <= u.offset && u.offset <= end);
            if let Some(f) = u.fragment {
                assert_eq!(f.offset % 8, 0);
            }
        }
    }

    /// An extension header to build: kind, Hdr Ext Len (not for Fragment), and the
    /// Fragment header's offset/M word.
    type Ext = (u8, u8, u16);

    /// A valid packet with a random chain of up to 10 extension headers (random kinds and
    /// lengths, lengths consistent), a random upper-layer protocol and payload, and random
    /// padding. Returns the bytes, 40 + Payload Length, the chain and the upper layer.
    fn packet() -> impl Strategy<Value = (Vec<u8>, usize, Vec<Ext>, u8)> {
        let ext = (
            prop::sample::select(vec![
                NEXT_HOP_BY_HOP,
                NEXT_ROUTING,
                NEXT_FRAGMENT,
                NEXT_DEST_OPTS,
            ]),
            0u8..4,
            any::<u16>(),
        );
        let upper = any::<u8>().prop_filter("not a header the walk opens", |p| {
            ![NEXT_HOP_BY_HOP, NEXT_ROUTING, NEXT_FRAGMENT, NEXT_DEST_OPTS].contains(p)
        });
        (
            proptest::collection::vec(ext, 0..10),
            upper,
            proptest::collection::vec(any::<u8>(), 0..40),
            0usize..8,
            any::<[u8; 40]>(),
        )
            .prop_map(|(exts, upper, data, pad, header)| {
                let mut b = header.to_vec();
                b[0] = 0x60 | (b[0] & 0x0f);
                b[6] = exts.first().map_or(upper, |e| e.0);
                for (i, &(kind, len, frag)) in exts.iter().enumerate() {
                    let next = exts.get(i + 1).map_or(upper, |e| e.0);
                    if kind == NEXT_FRAGMENT {
                        b.push(next);
                        b.push(0);
                        b.extend_from_slice(&frag.to_be_bytes());
                        b.extend_from_slice(&[1, 2, 3, 4]);
                    } else {
                        b.push(next);
                        b.push(len);
                        b.resize(b.len() + 6 + 8 * usize::from(len), 0x01);
                    }
                }
                b.extend_from_slice(&data);
                let end = b.len();
                b[4..6].copy_from_slice(&((end - 40) as u16).to_be_bytes());
                b.resize(end + pad, 0xee);
                (b, end, exts, upper)
            })
    }

    /// What the walk must find in a packet built from `exts` and `upper`, from the rules
    /// (RFC 8200 §4) rather than the bytes.
    fn expected(exts: &[Ext], upper: u8) -> Result<(u8, usize), Malformed> {
        let mut at = HEADER_LEN;
        let mut frag_seen = false;
        for (i, &(kind, len, frag)) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map_or(upper, |e| e.0);
            if i == MAX_EXT_HEADERS {
                return Err(Malformed::TooManyExtHeaders);
            }
            if kind == NEXT_HOP_BY_HOP && i > 0 {
                return Err(Malformed::ExtOrder);
            }
            if kind == NEXT_FRAGMENT {
                if frag_seen {
                    return Err(Malformed::ExtOrder);
                }
                frag_seen = true;
                at += 8;
                if frag >> 3 != 0 {
                    return Ok((next, at));
                }
            } else {
                at += 8 * (usize::from(len) + 1);
            }
        }
        Ok((upper, at))
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..160),
                                    fix in any::<bool>(), next: u8) {
            // Half the cases get version 6 and a Payload Length that fits, so the walk runs.
            if fix && b.len() >= 40 {
                b[0] = 0x60;
                let payload_len = (b.len() - 40) as u16;
                b[4..6].copy_from_slice(&payload_len.to_be_bytes());
                b[6] = next;
            }
            if let Ok(p) = Ipv6Packet::new_checked(&b[..]) {
                touch_all(&p, b.len());
            }
        }

        #[test]
        fn every_truncation_is_refused((b, end, _, _) in packet()) {
            for n in 0..=b.len() {
                match Ipv6Packet::new_checked(&b[..n]) {
                    Ok(p) => {
                        prop_assert!(n >= end);
                        touch_all(&p, n);
                    }
                    Err(e) => {
                        prop_assert!(n < end);
                        prop_assert_eq!(e, Malformed::Truncated);
                    }
                }
            }
        }

        #[test]
        fn walk_finds_what_was_built((b, _, exts, upper) in packet()) {
            let p = Ipv6Packet::new_checked(&b[..]).unwrap();
            let got = p.upper_layer().map(|u| (u.protocol, u.offset));
            prop_assert_eq!(got, expected(&exts, upper));
        }

        #[test]
        fn a_shortened_payload_length_never_walks_past_it((b, end, _, _) in packet(),
                                                           cut in any::<prop::sample::Index>()) {
            // Payload Length lowered to any value: the buffer still holds the old bytes,
            // but the walk must stay within the new length.
            let mut b = b;
            let new_end = HEADER_LEN + cut.index(end - HEADER_LEN + 1);
            b[4..6].copy_from_slice(&((new_end - HEADER_LEN) as u16).to_be_bytes());
            let p = Ipv6Packet::new_checked(&b[..]).unwrap();
            if let Ok(u) = p.upper_layer() {
                prop_assert!(u.offset <= new_end);
            }
        }

        #[test]
        fn emit_round_trips(src: [u8; 16], dst: [u8; 16], next_header: u8, hop_limit: u8,
                            traffic_class: u8, flow_label in 0u32..0x10_0000,
                            payload_len in 0u16..1500) {
            let repr = Ipv6Repr {
                src: Ipv6Addr::from(src),
                dst: Ipv6Addr::from(dst),
                next_header, hop_limit, traffic_class, flow_label, payload_len,
            };
            let mut b = vec![0u8; HEADER_LEN + usize::from(payload_len)];
            prop_assert_eq!(emit(&mut b, &repr), Some(HEADER_LEN));
            let p = Ipv6Packet::new_checked(&b[..]).unwrap();
            let back = Ipv6Repr {
                src: p.src(),
                dst: p.dst(),
                next_header: p.next_header(),
                hop_limit: p.hop_limit(),
                traffic_class: p.traffic_class(),
                flow_label: p.flow_label(),
                payload_len: p.payload_len(),
            };
            prop_assert_eq!(back, repr);
        }
    }
}
