//! UDP headers (RFC 768).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          Source Port          |       Destination Port        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |            Length             |           Checksum            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Length counts the header and the data; the IP payload may be longer (RFC 768 leaves
//! the bytes after Length to no one). The checksum covers a pseudo-header, the UDP header
//! and the data ([`checksum::pseudo_header_v4`], [`checksum::pseudo_header_v6`]). Over
//! IPv4 a zero checksum means the sender computed none (RFC 768); over IPv6 a zero
//! checksum is invalid (RFC 8200 §8.1) except where RFC 6935 / RFC 6936 allow it for
//! tunnels, which is the caller's decision. A computed zero is sent as 0xffff.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use super::checksum;
use super::ipv4::PROTO_UDP;

/// Length of the header.
pub const HEADER_LEN: usize = field::HEADER;

/// Byte ranges of the header fields.
mod field {
    use std::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const CHECKSUM: Range<usize> = 6..8;
    pub const HEADER: usize = 8;
}

/// Why a datagram was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The buffer ends before 8 bytes or before Length.
    Truncated,
    /// Length is below 8, shorter than the header it counts.
    BadLength,
}

#[inline]
fn be16(b: &[u8], r: Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

/// A view of a UDP datagram whose Length is known to fit: `8 <= Length <= buffer length`.
/// Bytes after Length belong to no accessor.
#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Checks the header fits and Length lies between 8 and the buffer's length. `buf` is
    /// the IP payload.
    #[inline]
    pub fn new_checked(buf: T) -> Result<UdpPacket<T>, Malformed> {
        let b = buf.as_ref();
        if b.len() < field::HEADER {
            return Err(Malformed::Truncated);
        }
        let len = usize::from(be16(b, field::LENGTH));
        if len < field::HEADER {
            return Err(Malformed::BadLength);
        }
        if len > b.len() {
            return Err(Malformed::Truncated);
        }
        Ok(UdpPacket { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        be16(self.b(), field::SRC_PORT)
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        be16(self.b(), field::DST_PORT)
    }

    /// Length: header and data, in bytes (8 or more).
    #[inline]
    pub fn length(&self) -> u16 {
        be16(self.b(), field::LENGTH)
    }

    /// Checksum as carried (0: none computed, IPv4 only).
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM)
    }

    /// The data: from the end of the header to Length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.b()[field::HEADER..usize::from(self.length())]
    }

    /// Header and data, without what follows Length.
    #[inline]
    pub fn packet(&self) -> &[u8] {
        &self.b()[..usize::from(self.length())]
    }

    /// Whether the checksum verifies for a datagram carried over IPv4 from `src` to `dst`:
    /// true for a zero checksum (none computed, RFC 768), else the sum over pseudo-header,
    /// header and data is all ones.
    pub fn checksum_ok_v4(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        self.checksum() == 0 || {
            let p = checksum::pseudo_header_v4(src, dst, PROTO_UDP, self.length());
            checksum::sum(self.packet(), u32::from(p)) == 0xffff
        }
    }

    /// Whether the checksum verifies for a datagram carried over IPv6 from `src` to `dst`.
    /// A zero checksum does not (RFC 8200 §8.1); a tunnel endpoint that accepts zero
    /// checksums as RFC 6935 allows tests [`UdpPacket::checksum`] first.
    pub fn checksum_ok_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        self.checksum() != 0 && {
            let p = checksum::pseudo_header_v6(src, dst, PROTO_UDP, u32::from(self.length()));
            checksum::sum(self.packet(), u32::from(p)) == 0xffff
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    fn set_checksum(&mut self, c: u16) {
        self.buf.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    fn fill_checksum(&mut self, pseudo: u16) {
        self.set_checksum(0);
        let mut c = !checksum::sum(self.packet(), u32::from(pseudo));
        if c == 0 {
            c = 0xffff; // RFC 768: a computed zero is sent as all ones.
        }
        self.set_checksum(c);
    }

    /// Computes and writes the checksum for a datagram carried over IPv4.
    pub fn fill_checksum_v4(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        let p = checksum::pseudo_header_v4(src, dst, PROTO_UDP, self.length());
        self.fill_checksum(p);
    }

    /// Computes and writes the checksum for a datagram carried over IPv6.
    pub fn fill_checksum_v6(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) {
        let p = checksum::pseudo_header_v6(src, dst, PROTO_UDP, u32::from(self.length()));
        self.fill_checksum(p);
    }
}

/// The fields [`emit`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Bytes that follow the header; Length is 8 more.
    pub payload_len: usize,
}

/// Writes an 8-byte header for `repr` with a zero checksum at the start of `buf` and
/// returns 8 (fill the checksum later with [`UdpPacket::fill_checksum_v4`] or `_v6` once
/// the data is in place, or leave it zero over IPv4). None, and nothing written, when
/// `buf` is shorter than 8 bytes or Length would pass 65535.
#[inline]
pub fn emit(buf: &mut [u8], repr: &UdpRepr) -> Option<usize> {
    let len = u16::try_from(repr.payload_len.checked_add(HEADER_LEN)?).ok()?;
    let h = buf.get_mut(..HEADER_LEN)?;
    h[field::SRC_PORT].copy_from_slice(&repr.src_port.to_be_bytes());
    h[field::DST_PORT].copy_from_slice(&repr.dst_port.to_be_bytes());
    h[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    h[field::CHECKSUM].copy_from_slice(&[0, 0]);
    Some(HEADER_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// 10.0.0.1:1234 -> 10.0.0.2:5678, "hello"; the checksum is the one
    /// checksum.rs's kernel example gives (recomputed with Python, RFC 1071 sum: 0x8cff).
    const HELLO: [u8; 13] = [
        0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0d, 0x8c, 0xff, b'h', b'e', b'l', b'l', b'o',
    ];

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    #[test]
    fn parses_a_datagram() {
        let u = UdpPacket::new_checked(&HELLO[..]).unwrap();
        assert_eq!(u.src_port(), 1234);
        assert_eq!(u.dst_port(), 5678);
        assert_eq!(u.length(), 13);
        assert_eq!(u.checksum(), 0x8cff);
        assert_eq!(u.payload(), b"hello");
        assert_eq!(u.packet(), &HELLO[..]);
        assert!(u.checksum_ok_v4(v4(10, 0, 0, 1), v4(10, 0, 0, 2)));
        assert!(!u.checksum_ok_v4(v4(10, 0, 0, 1), v4(10, 0, 0, 3)));
    }

    #[test]
    fn fill_checksum_v4_gives_the_known_value() {
        let mut b = HELLO;
        b[6..8].copy_from_slice(&[0xaa, 0xbb]);
        let mut u = UdpPacket::new_checked(&mut b[..]).unwrap();
        u.fill_checksum_v4(v4(10, 0, 0, 1), v4(10, 0, 0, 2));
        assert_eq!(b, HELLO);
    }

    #[test]
    fn zero_checksum_means_none_over_ipv4_only() {
        let mut b = HELLO;
        b[6..8].copy_from_slice(&[0, 0]);
        let u = UdpPacket::new_checked(&b[..]).unwrap();
        assert!(u.checksum_ok_v4(v4(1, 1, 1, 1), v4(2, 2, 2, 2)));
        let a = Ipv6Addr::LOCALHOST;
        assert!(!u.checksum_ok_v6(&a, &a));
    }

    #[test]
    fn ipv6_checksum_round_trips() {
        let s: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut b = HELLO;
        let mut u = UdpPacket::new_checked(&mut b[..]).unwrap();
        u.fill_checksum_v6(&s, &d);
        assert!(u.checksum_ok_v6(&s, &d));
        assert!(!u.checksum_ok_v6(&d, &d));
    }

    #[test]
    fn ip_padding_after_length_is_not_data() {
        let mut b = HELLO.to_vec();
        b.extend_from_slice(&[0xee; 5]);
        let u = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(u.payload(), b"hello");
        assert!(u.checksum_ok_v4(v4(10, 0, 0, 1), v4(10, 0, 0, 2)));
    }

    #[test]
    fn refuses_each_malformation() {
        let check = |b: &[u8]| UdpPacket::new_checked(b).map(|_| ());
        assert_eq!(check(&HELLO[..7]), Err(Malformed::Truncated));
        assert_eq!(check(&HELLO[..12]), Err(Malformed::Truncated));
        let mut b = HELLO;
        b[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(check(&b), Err(Malformed::BadLength));
        b[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert_eq!(check(&b), Ok(()));
    }

    #[test]
    fn emit_writes_the_header() {
        let mut b = [0xffu8; 13];
        let repr = UdpRepr {
            src_port: 1234,
            dst_port: 5678,
            payload_len: 5,
        };
        assert_eq!(emit(&mut b, &repr), Some(8));
        assert_eq!(&b[..8], &[0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0d, 0, 0]);
        let mut short = [0u8; 7];
        assert_eq!(emit(&mut short, &repr), None);
        let long = UdpRepr {
            payload_len: 65528,
            ..repr
        };
        assert_eq!(emit(&mut b, &long), None);
        let max = UdpRepr {
            payload_len: 65527,
            ..repr
        };
        assert_eq!(emit(&mut b, &max), Some(8));
        let huge = UdpRepr {
            payload_len: usize::MAX,
            ..repr
        };
        assert_eq!(emit(&mut b, &huge), None);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(big in proptest::collection::vec(any::<u8>(), 0..100),
                                    cut in any::<prop::sample::Index>(), fix: bool) {
            // A slice cut from a bigger buffer: the view must stay inside it.
            let mut big = big;
            let n = cut.index(big.len() + 1);
            if fix && n >= 8 {
                big[4..6].copy_from_slice(&(n as u16).to_be_bytes());
            }
            let b = &big[..n];
            if let Ok(u) = UdpPacket::new_checked(b) {
                let len = usize::from(u.length());
                prop_assert!((8..=n).contains(&len));
                prop_assert_eq!(u.payload().len(), len - 8);
                prop_assert_eq!(u.packet().len(), len);
                let _ = (u.src_port(), u.dst_port(), u.checksum());
                let _ = u.checksum_ok_v4(v4(1, 2, 3, 4), v4(5, 6, 7, 8));
                let _ = u.checksum_ok_v6(&Ipv6Addr::LOCALHOST, &Ipv6Addr::UNSPECIFIED);
            }
        }

        #[test]
        fn emit_and_fill_round_trip(sp: u16, dp: u16,
                                    data in proptest::collection::vec(any::<u8>(), 0..64),
                                    s: [u8; 4], d: [u8; 4], s6: [u8; 16], d6: [u8; 16]) {
            let repr = UdpRepr { src_port: sp, dst_port: dp, payload_len: data.len() };
            let mut b = vec![0u8; 8 + data.len()];
            prop_assert_eq!(emit(&mut b, &repr), Some(8));
            b[8..].copy_from_slice(&data);
            for n in 0..b.len() {
                prop_assert_eq!(UdpPacket::new_checked(&b[..n]).err(), Some(Malformed::Truncated));
            }
            let mut u = UdpPacket::new_checked(&mut b[..]).unwrap();
            prop_assert_eq!((u.src_port(), u.dst_port()), (sp, dp));
            prop_assert_eq!(u.payload(), &data[..]);
            u.fill_checksum_v4(Ipv4Addr::from(s), Ipv4Addr::from(d));
            prop_assert!(u.checksum() != 0);
            prop_assert!(u.checksum_ok_v4(Ipv4Addr::from(s), Ipv4Addr::from(d)));
            let (s6, d6) = (Ipv6Addr::from(s6), Ipv6Addr::from(d6));
            u.fill_checksum_v6(&s6, &d6);
            prop_assert!(u.checksum_ok_v6(&s6, &d6));
        }
    }
}
