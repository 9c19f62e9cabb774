//! Software segmentation of a GSO super-frame: a TCP segment (TSO) or a run of UDP
//! datagrams (USO) longer than the path allows, which a pod handed over whole with
//! `gso_size` payload bytes per segment (see [`super::vnet`]), cut into the frames its
//! stack would have sent, for an egress that cannot take it whole (a DPDK port without
//! TSO, a tunnel).
//!
//! [`plan`] checks the super-frame (it comes from a pod: every length and offset is
//! checked against the frame, and `l4_start` against the IP header) and
//! [`Plan::write`] writes one segment into a buffer the caller provides, so the caller
//! can allocate one mbuf per segment; nothing here allocates. Each segment is the
//! super-frame's headers (Ethernet, 802.1Q tag, IP, L4) and the next `gso_size` bytes of
//! its payload (the last one what is left), with, as Linux's segmentation does
//! (`inet_gso_segment`, `tcp_gso_segment`, `__udp_gso_segment`):
//!
//! - IPv4: Total Length of the segment; Identification that of the super-frame plus the
//!   segment's index (modulo 2^16); the header checksum computed (RFC 791 §3.1).
//! - IPv6: Payload Length of the segment (RFC 8200 §3).
//! - TCP: Sequence Number advanced by the payload before the segment (modulo 2^32); FIN
//!   and PSH kept on the last segment only, CWR on the first only (RFC 3168 §6.1.2: the
//!   window is reduced once); the checksum computed in full over the pseudo-header,
//!   header and payload (RFC 9293 §3.1).
//! - UDP (USO): Length and checksum of each datagram (RFC 768); a computed zero is sent
//!   as 0xffff.
//!
//! The checksums are complete afterwards: a segment needs no checksum offload. The
//! super-frame's own L4 checksum field (the pseudo-header sum of a partial checksum) and
//! UDP Length are not read. A frame whose checksum is only partial, without GSO, is
//! completed by [`checksum::complete_partial`], which the segments' checksums reuse too.
//!
//! Refused (see [`GsoError`]): IPv4 fragments, IPv6 extension headers (a stack's TSO and
//! USO frames have none, and a Routing header would change the pseudo-header's
//! destination, RFC 8200 §8.1), SYN, RST and URG in a TCP super-frame (a segmenter could
//! not repeat them correctly), stacked VLAN tags.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::checksum;
use super::ethernet::{self, ETHERTYPE_IPV4, ETHERTYPE_IPV6, VLAN_TAG_LEN};
use super::ipv4::{self, Ipv4Packet, PROTO_TCP, PROTO_UDP};
use super::ipv6::{self, Ipv6Packet};
use crate::graph::Gso;

/// Byte offsets of the fields a segment rewrites, from the start of their header.
mod field {
    use std::ops::Range;
    /// IPv4 (RFC 791 §3.1).
    pub const IP4_LENGTH: Range<usize> = 2..4;
    pub const IP4_IDENT: Range<usize> = 4..6;
    pub const IP4_CHECKSUM: Range<usize> = 10..12;
    /// IPv6 (RFC 8200 §3).
    pub const IP6_PAYLOAD_LEN: Range<usize> = 4..6;
    /// TCP (RFC 9293 §3.1).
    pub const TCP_SEQ: Range<usize> = 4..8;
    pub const TCP_DATA_OFFSET: usize = 12;
    pub const TCP_FLAGS: usize = 13;
    pub const TCP_CHECKSUM: usize = 16;
    pub const TCP_HEADER: usize = 20;
    /// UDP (RFC 768).
    pub const UDP_LENGTH: Range<usize> = 4..6;
    pub const UDP_CHECKSUM: usize = 6;
    pub const UDP_HEADER: usize = 8;
}

/// TCP flags (RFC 9293 §3.1; ECE and CWR: RFC 3168 §6.1).
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_RST: u8 = 0x04;
const TCP_PSH: u8 = 0x08;
const TCP_URG: u8 = 0x20;
const TCP_CWR: u8 = 0x80;

/// Why a super-frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsoError {
    /// The offload state asks for no segmentation ([`Gso::None`]).
    NotGso,
    /// `gso_size` is 0.
    ZeroGsoSize,
    /// The frame ends before a header, or before the IP length.
    Truncated,
    /// Neither IPv4 nor IPv6 after the Ethernet header (and one tag), or not the IP version
    /// the GSO kind names.
    BadEthertype,
    /// An IPv4 or IPv6 header that contradicts itself (version, IHL, Total Length).
    BadIpHeader,
    /// An IPv4 fragment.
    Fragment,
    /// An IPv6 extension header between the IPv6 and L4 headers.
    Ipv6ExtHeaders,
    /// The IP protocol is not the one the GSO kind names (TCP, UDP).
    BadProtocol,
    /// `l4_start` (the offload state's `csum_start`) is not where the IP header ends.
    L4StartMismatch,
    /// A TCP data offset below 5 words.
    BadTcpHeader,
    /// SYN, RST or URG on a TCP super-frame.
    BadTcpFlags,
}

/// The network layer of a super-frame.
#[derive(Debug, Clone, Copy)]
enum Net {
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ident: u16,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
    },
}

/// A checked super-frame and how it is cut: `count` segments, the `i`-th carrying the
/// payload bytes from `i * gso_size` on.
#[derive(Debug, Clone, Copy)]
pub struct Plan<'a> {
    frame: &'a [u8],
    net: Net,
    tcp: bool,
    /// Offsets in `frame`: the IP header, the L4 header, the end of the L4 header (where
    /// the payload starts), the end of the IP packet (bytes after it are not sent).
    l3: usize,
    l4: usize,
    payload: usize,
    end: usize,
    gso_size: usize,
    count: usize,
}

/// Checks the super-frame `frame` (from its Ethernet header, with at most one 802.1Q tag)
/// for segmentation as `gso`, with its L4 header at `l4_start` (the offload state's
/// `csum_start`) and `gso_size` payload bytes per segment. The IP length says where the
/// packet ends: bytes after it in `frame` are in no segment.
pub fn plan(
    frame: &[u8],
    gso: Gso,
    l4_start: usize,
    gso_size: usize,
) -> Result<Plan<'_>, GsoError> {
    let (tcp, v4, v6) = match gso {
        Gso::None => return Err(GsoError::NotGso),
        Gso::TcpV4 => (true, true, false),
        Gso::TcpV6 => (true, false, true),
        Gso::Udp => (false, true, true),
    };
    if gso_size == 0 {
        return Err(GsoError::ZeroGsoSize);
    }
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| GsoError::Truncated)?;
    let l3 = match eth.vlan() {
        Some(_) => ethernet::HEADER_LEN + VLAN_TAG_LEN,
        None => ethernet::HEADER_LEN,
    };
    let ip = frame.get(l3..).ok_or(GsoError::Truncated)?;
    let want = if tcp { PROTO_TCP } else { PROTO_UDP };
    let (net, l4, end) = match eth.ethertype() {
        ETHERTYPE_IPV4 if v4 => {
            let p = Ipv4Packet::new_checked(ip).map_err(|e| match e {
                ipv4::Malformed::Truncated => GsoError::Truncated,
                _ => GsoError::BadIpHeader,
            })?;
            if p.is_fragment() {
                return Err(GsoError::Fragment);
            }
            if p.protocol() != want {
                return Err(GsoError::BadProtocol);
            }
            let net = Net::V4 {
                src: p.src(),
                dst: p.dst(),
                ident: p.ident(),
            };
            (net, l3 + p.header_len(), l3 + usize::from(p.total_len()))
        }
        ETHERTYPE_IPV6 if v6 => {
            let p = Ipv6Packet::new_checked(ip).map_err(|e| match e {
                ipv6::Malformed::Truncated => GsoError::Truncated,
                _ => GsoError::BadIpHeader,
            })?;
            match p.next_header() {
                n if n == want => {}
                ipv6::NEXT_HOP_BY_HOP
                | ipv6::NEXT_ROUTING
                | ipv6::NEXT_FRAGMENT
                | ipv6::NEXT_DEST_OPTS => return Err(GsoError::Ipv6ExtHeaders),
                _ => return Err(GsoError::BadProtocol),
            }
            let net = Net::V6 {
                src: p.src(),
                dst: p.dst(),
            };
            let l4 = l3 + ipv6::HEADER_LEN;
            (net, l4, l4 + usize::from(p.payload_len()))
        }
        _ => return Err(GsoError::BadEthertype),
    };
    if l4_start != l4 {
        return Err(GsoError::L4StartMismatch);
    }
    let payload = if tcp {
        let th = frame
            .get(l4..l4 + field::TCP_HEADER)
            .filter(|_| l4 + field::TCP_HEADER <= end)
            .ok_or(GsoError::Truncated)?;
        let len = usize::from(th[field::TCP_DATA_OFFSET] >> 4) * 4;
        if len < field::TCP_HEADER {
            return Err(GsoError::BadTcpHeader);
        }
        if th[field::TCP_FLAGS] & (TCP_SYN | TCP_RST | TCP_URG) != 0 {
            return Err(GsoError::BadTcpFlags);
        }
        l4 + len
    } else {
        l4 + field::UDP_HEADER
    };
    if payload > end {
        return Err(GsoError::Truncated);
    }
    Ok(Plan {
        frame,
        net,
        tcp,
        l3,
        l4,
        payload,
        end,
        gso_size,
        count: (end - payload).div_ceil(gso_size).max(1),
    })
}

#[inline]
fn put16(b: &mut [u8], r: std::ops::Range<usize>, v: u16) {
    b[r].copy_from_slice(&v.to_be_bytes());
}

impl Plan<'_> {
    /// How many segments the super-frame makes: at least 1 (a super-frame that carries no
    /// more than `gso_size` bytes, or none, is sent as one segment, its fields fixed up
    /// as for any other). At most 65535, IP's lengths being 16-bit; a caller with a
    /// smaller budget checks it.
    #[inline]
    pub fn count(&self) -> usize {
        self.count
    }

    /// The range of the super-frame's payload that segment `i` carries.
    fn slice(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.count {
            return None;
        }
        // i < count, so i * gso_size < the payload's length (or is 0).
        let from = self.payload + i * self.gso_size;
        Some((from, self.gso_size.min(self.end - from)))
    }

    /// The length of segment `i` (None past the last). The first segment is the longest.
    #[inline]
    pub fn segment_len(&self, i: usize) -> Option<usize> {
        self.slice(i).map(|(_, len)| self.payload + len)
    }

    /// Writes segment `i` into the start of `out` and returns its length; None, and
    /// nothing written, past the last segment or when `out` is shorter than
    /// [`Plan::segment_len`].
    pub fn write(&self, i: usize, out: &mut [u8]) -> Option<usize> {
        let (from, len) = self.slice(i)?;
        let n = self.payload + len;
        let out = out.get_mut(..n)?;
        let (l3, l4, f) = (self.l3, self.l4, self.frame);
        // Every length below is at most the super-frame's (checked against a 16-bit IP
        // length), so none of the conversions fails.
        let l4_len = u16::try_from(n - l4).ok()?;
        let l3_len = u16::try_from(n - l3).ok()?;
        out[..self.payload].copy_from_slice(&f[..self.payload]);
        out[self.payload..].copy_from_slice(&f[from..from + len]);

        let proto = if self.tcp { PROTO_TCP } else { PROTO_UDP };
        let ip = &mut out[l3..l4];
        let pseudo = match self.net {
            Net::V4 { src, dst, ident } => {
                put16(ip, field::IP4_LENGTH, l3_len);
                put16(ip, field::IP4_IDENT, ident.wrapping_add(i as u16));
                put16(ip, field::IP4_CHECKSUM, 0);
                let c = !checksum::sum(ip, 0);
                put16(ip, field::IP4_CHECKSUM, c);
                checksum::pseudo_header_v4(src, dst, proto, l4_len)
            }
            Net::V6 { src, dst } => {
                put16(ip, field::IP6_PAYLOAD_LEN, l4_len);
                checksum::pseudo_header_v6(&src, &dst, proto, u32::from(l4_len))
            }
        };

        // The checksum field takes the pseudo-header sum, then the partial checksum is
        // completed over the segment's L4 header and payload.
        let th = &mut out[l4..];
        let at = if self.tcp {
            let s = &th[field::TCP_SEQ];
            let seq = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
            // The payload before this segment: below 2^16.
            let seq = seq.wrapping_add((from - self.payload) as u32);
            th[field::TCP_SEQ].copy_from_slice(&seq.to_be_bytes());
            if i + 1 < self.count {
                th[field::TCP_FLAGS] &= !(TCP_FIN | TCP_PSH);
            }
            if i > 0 {
                th[field::TCP_FLAGS] &= !TCP_CWR;
            }
            field::TCP_CHECKSUM
        } else {
            put16(th, field::UDP_LENGTH, l4_len);
            field::UDP_CHECKSUM
        };
        put16(th, at..at + 2, pseudo);
        checksum::complete_partial(out, l4, at, !self.tcp);
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::udp::UdpPacket;
    use proptest::prelude::*;

    const SRC4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST4: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

    /// A super-frame as a pod's stack hands it over.
    #[derive(Debug, Clone)]
    struct Spec {
        v6: bool,
        tcp: bool,
        tagged: bool,
        /// IPv4 options, in 4-byte words (0 to 10).
        ip_opt_words: usize,
        /// TCP options, in 4-byte words (0 to 10).
        tcp_opt_words: usize,
        flags: u8,
        seq: u32,
        ident: u16,
        payload: Vec<u8>,
    }

    fn spec(v6: bool, tcp: bool, payload_len: usize) -> Spec {
        Spec {
            v6,
            tcp,
            tagged: false,
            ip_opt_words: 0,
            tcp_opt_words: 0,
            flags: 0x10 | TCP_PSH,
            seq: 0x1000_0000,
            ident: 0x1234,
            payload: (0..payload_len).map(|i| (i * 7 + i / 251) as u8).collect(),
        }
    }

    impl Spec {
        fn gso(&self) -> Gso {
            match (self.tcp, self.v6) {
                (true, false) => Gso::TcpV4,
                (true, true) => Gso::TcpV6,
                (false, _) => Gso::Udp,
            }
        }

        fn l3(&self) -> usize {
            if self.tagged {
                18
            } else {
                14
            }
        }

        fn l4(&self) -> usize {
            self.l3()
                + if self.v6 {
                    40
                } else {
                    20 + 4 * self.ip_opt_words
                }
        }

        fn l4_header(&self) -> usize {
            if self.tcp {
                20 + 4 * self.tcp_opt_words
            } else {
                8
            }
        }

        /// The frame, with the L4 checksum field holding the pseudo-header sum (a partial
        /// checksum, as NEEDS_CSUM leaves it) and the super-frame's lengths.
        fn build(&self) -> Vec<u8> {
            let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
            if self.tagged {
                f.extend_from_slice(&[0x81, 0x00, 0x20, 0x64]);
            }
            let ethertype: u16 = if self.v6 { 0x86dd } else { 0x0800 };
            f.extend_from_slice(&ethertype.to_be_bytes());
            let l4_len = self.l4_header() + self.payload.len();
            let proto = if self.tcp { PROTO_TCP } else { PROTO_UDP };
            let pseudo = if self.v6 {
                f.extend_from_slice(&[0x60, 0x01, 0x23, 0x45]);
                f.extend_from_slice(&(l4_len as u16).to_be_bytes());
                f.extend_from_slice(&[proto, 64]);
                f.extend_from_slice(&SRC6.octets());
                f.extend_from_slice(&DST6.octets());
                checksum::pseudo_header_v6(&SRC6, &DST6, proto, l4_len as u32)
            } else {
                let hl = 20 + 4 * self.ip_opt_words;
                let start = f.len();
                f.push(0x40 | (hl / 4) as u8);
                f.push(0x02); // ECT(0)
                f.extend_from_slice(&((hl + l4_len) as u16).to_be_bytes());
                f.extend_from_slice(&self.ident.to_be_bytes());
                f.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
                f.extend_from_slice(&SRC4.octets());
                f.extend_from_slice(&DST4.octets());
                f.resize(start + hl, 1); // NOP options
                let c = !checksum::sum(&f[start..], 0);
                f[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
                checksum::pseudo_header_v4(SRC4, DST4, proto, l4_len as u16)
            };
            if self.tcp {
                f.extend_from_slice(&[0x9c, 0x40, 0x14, 0x51]);
                f.extend_from_slice(&self.seq.to_be_bytes());
                f.extend_from_slice(&0xa0b0_c0d0u32.to_be_bytes());
                f.push(((5 + self.tcp_opt_words) << 4) as u8);
                f.push(self.flags);
                f.extend_from_slice(&[0x01, 0xf5]);
                f.extend_from_slice(&pseudo.to_be_bytes());
                f.extend_from_slice(&[0, 0]);
                f.extend(std::iter::repeat_n(1u8, 4 * self.tcp_opt_words));
            } else {
                f.extend_from_slice(&[0x9c, 0x40, 0x14, 0x51]);
                f.extend_from_slice(&(l4_len as u16).to_be_bytes());
                f.extend_from_slice(&pseudo.to_be_bytes());
            }
            f.extend_from_slice(&self.payload);
            f
        }
    }

    /// Segments `s`'s super-frame with `gso_size` and checks every segment; returns them.
    fn segment_and_check(s: &Spec, gso_size: usize) -> Vec<Vec<u8>> {
        let f = s.build();
        let (l3, l4) = (s.l3(), s.l4());
        let hdr = l4 + s.l4_header();
        let p = plan(&f, s.gso(), l4, gso_size).unwrap();
        let want = s.payload.len().div_ceil(gso_size).max(1);
        assert_eq!(p.count(), want);
        let mut segs = Vec::new();
        let mut payload = Vec::new();
        for i in 0..p.count() {
            let n = p.segment_len(i).unwrap();
            assert!(n <= p.segment_len(0).unwrap());
            // Guard bytes after the segment must stay untouched.
            let mut out = vec![0xa5u8; n + 16];
            assert_eq!(p.write(i, &mut out[..n - 1]), None, "short buffer");
            assert!(out.iter().all(|&b| b == 0xa5), "nothing written");
            assert_eq!(p.write(i, &mut out), Some(n));
            assert!(out[n..].iter().all(|&b| b == 0xa5));
            out.truncate(n);
            let seg_payload = &out[hdr..];
            let last = i + 1 == p.count();
            if !last {
                assert_eq!(seg_payload.len(), gso_size);
            } else {
                assert!(seg_payload.len() <= gso_size);
            }
            // Ethernet and tag unchanged.
            assert_eq!(out[..l3], f[..l3]);
            let l4_len = n - l4;
            if s.v6 {
                let ip = Ipv6Packet::new_checked(&out[l3..]).unwrap();
                assert_eq!(usize::from(ip.payload_len()), l4_len);
                assert_eq!(out[l3..l3 + 4], f[l3..l3 + 4]);
                assert_eq!(out[l3 + 6..l4], f[l3 + 6..l4]);
            } else {
                let ip = Ipv4Packet::new_checked(&out[l3..]).unwrap();
                assert_eq!(usize::from(ip.total_len()), n - l3);
                assert_eq!(ip.ident(), s.ident.wrapping_add(i as u16));
                assert!(ip.header_checksum_ok(), "segment {i}: IPv4 checksum");
                assert_eq!(ip.options(), &f[l3 + 20..l4]);
                assert_eq!(out[l3 + 6..l3 + 10], f[l3 + 6..l3 + 10]);
                assert_eq!(out[l3 + 12..l4], f[l3 + 12..l4]);
            }
            let proto = if s.tcp { PROTO_TCP } else { PROTO_UDP };
            if s.tcp {
                let th = &out[l4..hdr];
                let seq = u32::from_be_bytes([th[4], th[5], th[6], th[7]]);
                assert_eq!(seq, s.seq.wrapping_add((i * gso_size) as u32));
                let mut flags = s.flags;
                if !last {
                    flags &= !(TCP_FIN | TCP_PSH);
                }
                if i > 0 {
                    flags &= !TCP_CWR;
                }
                assert_eq!(th[13], flags, "segment {i}: flags");
                // Ports, ack, data offset, window, urgent pointer, options unchanged.
                assert_eq!(th[..4], f[l4..l4 + 4]);
                assert_eq!(th[8..13], f[l4 + 8..l4 + 13]);
                assert_eq!(th[14..16], f[l4 + 14..l4 + 16]);
                assert_eq!(th[18..], f[l4 + 18..hdr]);
                let pseudo = if s.v6 {
                    checksum::pseudo_header_v6(&SRC6, &DST6, proto, l4_len as u32)
                } else {
                    checksum::pseudo_header_v4(SRC4, DST4, proto, l4_len as u16)
                };
                assert_eq!(
                    checksum::sum(&out[l4..], u32::from(pseudo)),
                    0xffff,
                    "segment {i}: TCP checksum"
                );
            } else {
                let u = UdpPacket::new_checked(&out[l4..]).unwrap();
                assert_eq!(usize::from(u.length()), l4_len);
                assert_eq!(u.packet().len(), l4_len);
                assert_eq!((u.src_port(), u.dst_port()), (40000, 5201));
                let ok = if s.v6 {
                    u.checksum_ok_v6(&SRC6, &DST6)
                } else {
                    u.checksum() != 0 && u.checksum_ok_v4(SRC4, DST4)
                };
                assert!(ok, "segment {i}: UDP checksum");
            }
            payload.extend_from_slice(seg_payload);
            segs.push(out);
        }
        assert_eq!(payload, s.payload);
        assert_eq!(p.segment_len(p.count()), None);
        assert_eq!(p.write(p.count(), &mut [0u8; 70000]), None);
        segs
    }

    #[test]
    fn tcp_ipv4_three_full_segments_and_a_tail() {
        let mut s = spec(false, true, 3 * 1448 + 100);
        s.flags = 0x10 | TCP_PSH | TCP_FIN | TCP_CWR | 0x40;
        // Sequence number and Identification both wrap inside the run.
        s.seq = 0xffff_f000;
        s.ident = 0xfffe;
        let segs = segment_and_check(&s, 1448);
        assert_eq!(segs.len(), 4);
        assert_eq!(
            segs.iter().map(Vec::len).collect::<Vec<_>>(),
            [1502, 1502, 1502, 154]
        );
        // The tail: Identification 0xfffe + 3 wraps to 1, FIN and PSH, no CWR.
        let tail = &segs[3];
        assert_eq!(tail[14 + 4..14 + 6], [0x00, 0x01]);
        assert_eq!(tail[34 + 13], 0x10 | TCP_PSH | TCP_FIN | 0x40);
        assert_eq!(segs[0][34 + 13], 0x10 | TCP_CWR | 0x40);
        assert_eq!(segs[1][34 + 13], 0x10 | 0x40);
        assert_eq!(
            u32::from_be_bytes([tail[38], tail[39], tail[40], tail[41]]),
            0xffff_f000u32.wrapping_add(3 * 1448)
        );
    }

    #[test]
    fn tcp_ipv6_tagged() {
        let mut s = spec(true, true, 3 * 1428 + 7);
        s.tagged = true;
        s.tcp_opt_words = 3; // timestamps, as Linux sends them
        let segs = segment_and_check(&s, 1428);
        assert_eq!(
            segs.iter().map(Vec::len).collect::<Vec<_>>(),
            [1518, 1518, 1518, 18 + 40 + 32 + 7]
        );
    }

    #[test]
    fn udp_ipv4_and_ipv6() {
        for v6 in [false, true] {
            let s = spec(v6, false, 3 * 1400 + 1);
            let segs = segment_and_check(&s, 1400);
            assert_eq!(segs.len(), 4);
            assert_eq!(segs[3].len(), s.l4() + 8 + 1);
        }
        // Tagged, IPv4 with options.
        let mut s = spec(false, false, 5000);
        s.tagged = true;
        s.ip_opt_words = 10;
        segment_and_check(&s, 1000);
    }

    #[test]
    fn ipv4_and_tcp_options_are_copied_into_every_segment() {
        let mut s = spec(false, true, 4000);
        s.ip_opt_words = 2;
        s.tcp_opt_words = 10;
        segment_and_check(&s, 1000);
    }

    #[test]
    fn a_super_frame_that_fits_one_segment_is_one_segment() {
        for (v6, tcp) in [(false, true), (true, true), (false, false), (true, false)] {
            let mut s = spec(v6, tcp, 1000);
            s.flags = 0x10 | TCP_FIN | TCP_CWR;
            assert_eq!(segment_and_check(&s, 1448).len(), 1);
            assert_eq!(segment_and_check(&s, 1000).len(), 1);
            assert_eq!(segment_and_check(&s, 999).len(), 2);
            let empty = spec(v6, tcp, 0);
            let segs = segment_and_check(&empty, 1448);
            assert_eq!(segs[0].len(), empty.l4() + empty.l4_header());
        }
    }

    /// The largest super-frame IPv4 carries, cut as a 1500-byte MTU path needs: a plain
    /// test (not a benchmark) that the arithmetic holds at the top of the range.
    #[test]
    fn segments_a_64k_super_frame() {
        let s = spec(false, true, 65535 - 20 - 20);
        let segs = segment_and_check(&s, 1460);
        assert_eq!(segs.len(), 45);
        assert_eq!(segs[44].len(), 54 + (65495 - 44 * 1460));
        let s = spec(true, false, 65535 - 8);
        assert_eq!(segment_and_check(&s, 1452).len(), 46);
    }

    #[test]
    fn refuses_each_malformation() {
        let s = spec(false, true, 3000);
        let f = s.build();
        let refuse = |f: &[u8], gso, l4, size| plan(f, gso, l4, size).err();
        assert_eq!(refuse(&f, Gso::TcpV4, 34, 1448), None);
        assert_eq!(refuse(&f, Gso::None, 34, 1448), Some(GsoError::NotGso));
        assert_eq!(refuse(&f, Gso::TcpV4, 34, 0), Some(GsoError::ZeroGsoSize));
        assert_eq!(
            refuse(&f, Gso::TcpV6, 34, 1448),
            Some(GsoError::BadEthertype)
        );
        assert_eq!(refuse(&f, Gso::Udp, 34, 1448), Some(GsoError::BadProtocol));
        for l4 in [0, 14, 33, 35, 54, usize::MAX] {
            let r = refuse(&f, Gso::TcpV4, l4, 1448);
            assert_eq!(r, Some(GsoError::L4StartMismatch), "{l4}");
        }
        // Cut anywhere before the end of the IP packet: the Ethernet or IP header, or the
        // packet Total Length gives.
        for n in 0..f.len() {
            let r = refuse(&f[..n], Gso::TcpV4, 34, 1448);
            assert_eq!(r, Some(GsoError::Truncated), "{n}");
        }
        // Bytes after the IP packet are not sent.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0xee; 9]);
        let p = plan(&padded, Gso::TcpV4, 34, 1448).unwrap();
        assert_eq!(p.count(), 3);
        assert_eq!(p.segment_len(2), Some(54 + 3000 - 2 * 1448));

        let with = |at: usize, v: &[u8]| {
            let mut g = f.clone();
            g[at..at + v.len()].copy_from_slice(v);
            plan(&g, Gso::TcpV4, 34, 1448).err()
        };
        assert_eq!(with(12, &[0x88, 0xa8]), Some(GsoError::BadEthertype));
        assert_eq!(with(12, &[0x08, 0x06]), Some(GsoError::BadEthertype));
        assert_eq!(with(14, &[0x65]), Some(GsoError::BadIpHeader));
        assert_eq!(with(14, &[0x44]), Some(GsoError::BadIpHeader));
        assert_eq!(with(14 + 2, &[0, 19]), Some(GsoError::BadIpHeader));
        assert_eq!(with(14 + 2, &[0xff, 0xff]), Some(GsoError::Truncated));
        assert_eq!(with(14 + 6, &[0x20, 0]), Some(GsoError::Fragment));
        assert_eq!(with(14 + 6, &[0x00, 1]), Some(GsoError::Fragment));
        assert_eq!(with(14 + 9, &[PROTO_UDP]), Some(GsoError::BadProtocol));
        // Total Length ends inside the TCP header, or inside its options.
        assert_eq!(with(14 + 2, &[0, 20 + 19]), Some(GsoError::Truncated));
        assert_eq!(with(14 + 2, &[0, 20 + 20]), None);
        let mut g = f.clone();
        g[14 + 2..14 + 4].copy_from_slice(&[0, 20 + 23]);
        g[34 + 12] = 6 << 4;
        assert_eq!(
            plan(&g, Gso::TcpV4, 34, 1448).err(),
            Some(GsoError::Truncated)
        );
        assert_eq!(with(34 + 12, &[0xf0]), None);
        assert_eq!(with(34 + 12, &[0x40]), Some(GsoError::BadTcpHeader));
        for flag in [TCP_SYN, TCP_RST, TCP_URG] {
            assert_eq!(with(34 + 13, &[0x10 | flag]), Some(GsoError::BadTcpFlags));
        }
        // Stacked tags.
        let mut q = spec(false, true, 100);
        q.tagged = true;
        let mut g = q.build();
        g[16..18].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(
            plan(&g, Gso::TcpV4, 38, 1448).err(),
            Some(GsoError::BadEthertype)
        );

        // IPv6: extension headers, a wrong version, a cut payload.
        let s6 = spec(true, false, 3000);
        let f6 = s6.build();
        assert!(plan(&f6, Gso::Udp, 54, 1400).is_ok());
        assert_eq!(
            plan(&f6, Gso::TcpV4, 54, 1400).err(),
            Some(GsoError::BadEthertype)
        );
        let with6 = |at: usize, v: &[u8]| {
            let mut g = f6.clone();
            g[at..at + v.len()].copy_from_slice(v);
            plan(&g, Gso::Udp, 54, 1400).err()
        };
        for next in [0, 43, 44, 60] {
            assert_eq!(with6(20, &[next]), Some(GsoError::Ipv6ExtHeaders));
        }
        assert_eq!(with6(20, &[PROTO_TCP]), Some(GsoError::BadProtocol));
        assert_eq!(with6(14, &[0x40]), Some(GsoError::BadIpHeader));
        assert_eq!(with6(18, &[0xff, 0xff]), Some(GsoError::Truncated));
        assert_eq!(with6(18, &[0, 7]), Some(GsoError::Truncated));
        assert_eq!(with6(18, &[0, 8]), None);
    }

    /// Checks what [`plan`] and [`Plan::write`] do with `frame`, whatever it holds: no
    /// panic, nothing written past the buffer given or past the segment's length, and
    /// the lengths agree.
    fn never_misbehaves(
        frame: &[u8],
        gso: Gso,
        l4: usize,
        gso_size: usize,
    ) -> Result<(), TestCaseError> {
        let Ok(p) = plan(frame, gso, l4, gso_size) else {
            return Ok(());
        };
        prop_assert!(p.count() >= 1);
        let mut total = 0;
        let mut out = vec![0u8; 70000];
        // The last segment, the first few and a few in between (a small gso_size makes
        // thousands of segments).
        let step = (p.count() / 8).max(1);
        let mut i = 0;
        while i <= p.count() {
            let Some(n) = p.segment_len(i) else {
                prop_assert_eq!(i, p.count());
                prop_assert_eq!(p.write(i, &mut out), None);
                break;
            };
            prop_assert!(n <= frame.len());
            prop_assert!(n <= p.segment_len(0).unwrap_or(0));
            out[..n + 8].fill(0x5a);
            prop_assert_eq!(p.write(i, &mut out[..n - 1]), None);
            prop_assert_eq!(p.write(i, &mut out[..n + 8]), Some(n));
            prop_assert!(out[n..n + 8].iter().all(|&b| b == 0x5a));
            total += 1;
            i = if i + step >= p.count() && i + 1 < p.count() {
                p.count() - 1
            } else {
                i + step
            };
        }
        prop_assert!(total >= 1);
        Ok(())
    }

    fn any_gso() -> impl Strategy<Value = Gso> {
        prop_oneof![
            Just(Gso::None),
            Just(Gso::TcpV4),
            Just(Gso::TcpV6),
            Just(Gso::Udp)
        ]
    }

    fn any_spec() -> impl Strategy<Value = Spec> {
        (
            (any::<bool>(), any::<bool>(), any::<bool>()),
            (0usize..=10, 0usize..=10),
            any::<u8>(),
            any::<u32>(),
            any::<u16>(),
            proptest::collection::vec(any::<u8>(), 0..6000),
        )
            .prop_map(
                |((v6, tcp, tagged), (ipo, tcpo), flags, seq, ident, payload)| Spec {
                    v6,
                    tcp,
                    tagged,
                    ip_opt_words: if v6 { 0 } else { ipo },
                    tcp_opt_words: tcpo,
                    flags: flags & !(TCP_SYN | TCP_RST | TCP_URG),
                    seq,
                    ident,
                    payload,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        #[test]
        fn valid_super_frames_reassemble_with_valid_checksums(s in any_spec(),
                                                              gso_size in 1usize..3000) {
            // Keep the segment count (and the test's time) bounded.
            let gso_size = gso_size.max(s.payload.len() / 200);
            segment_and_check(&s, gso_size.max(1));
        }

        #[test]
        fn random_bytes_never_misbehave(big in proptest::collection::vec(any::<u8>(), 0..200),
                                        cut in any::<prop::sample::Index>(), gso in any_gso(),
                                        l4 in 0usize..120, gso_size in 0usize..100) {
            let n = cut.index(big.len() + 1);
            never_misbehaves(&big[..n], gso, l4, gso_size)?;
        }

        #[test]
        fn damaged_super_frames_never_misbehave(s in any_spec(),
                                                hits in proptest::collection::vec(
                                                    (any::<prop::sample::Index>(), any::<u8>()), 0..4),
                                                cut in any::<prop::sample::Index>(),
                                                gso in any_gso(), l4_delta in -2isize..=2,
                                                gso_size in 0usize..2000, twist in 0u8..8) {
            // A valid frame with a few bytes changed (mostly in the headers: the hits
            // index into the first 100 bytes), and, as `twist`'s bits say, cut at a
            // random length, planned as a random GSO kind, with an L4 offset a little
            // off; else with the right parameters, so that some plans succeed and their
            // segments are written.
            let mut f = s.build();
            for (at, v) in hits {
                let i = at.index(f.len().min(100));
                f[i] = v;
            }
            let n = if twist & 1 != 0 { f.len() - cut.index(f.len() + 1) / 4 } else { f.len() };
            let gso = if twist & 2 != 0 { gso } else { s.gso() };
            let l4 = if twist & 4 != 0 { s.l4().saturating_add_signed(l4_delta) } else { s.l4() };
            never_misbehaves(&f[..n], gso, l4, gso_size)?;
        }
    }
}
