//! GRE headers (RFC 2784) with the Key and Sequence Number extensions (RFC 2890).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C| |K|S| Reserved0       | Ver |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Checksum (if C)          |       Reserved1 (if C)        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Key (if K)                            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Sequence Number (if S)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The header is 4 bytes, plus 4 for each of C, K and S, in that order (RFC 2890 §2).
//! Protocol Type is the ethertype of the payload (RFC 2784 §2.4): 0x0800 IPv4, 0x86DD
//! IPv6, 0x6558 an Ethernet frame (Transparent Ethernet Bridging). The checksum is the
//! Internet checksum over the GRE header and payload with the field zero while computing
//! (RFC 2784 §2.5).
//!
//! Receive rules for the first word (RFC 2784 §2.3, §2.3.1): bits 1 to 5 must be zero
//! unless the receiver implements RFC 1701, whose Routing Present (bit 1), Strict Source
//! Route (bit 4) and Recursion Control (bits 5 to 7) they were. This receiver implements
//! RFC 2890 (bits 2 and 3 are K and S) but not RFC 1701's routing, so it refuses bits 1, 4
//! and 5: a packet carrying them has a layout (a routing field) this parser would read
//! wrong. Bits 6 to 12 are ignored as RFC 2784 says (Linux's `gre_parse_header` does the
//! same with everything but Routing and Version). Ver must be 0; version 1 is PPTP's
//! enhanced GRE (RFC 2637), not spoken here.

use std::ops::Range;

use super::checksum;

/// Length of the header with no optional field.
pub const BASE_HEADER_LEN: usize = field::BASE;
/// The longest header: checksum, key and sequence number all present.
pub const MAX_HEADER_LEN: usize = field::BASE + 12;

/// Checksum Present (RFC 2784 §2.1).
const FLAG_C: u16 = 0x8000;
/// Key Present (RFC 2890 §2).
const FLAG_K: u16 = 0x2000;
/// Sequence Number Present (RFC 2890 §2).
const FLAG_S: u16 = 0x1000;
/// Bits 1, 4 and 5: RFC 1701's Routing Present, Strict Source Route and the top bit of
/// Recursion Control, which RFC 2784 §2.3 has a receiver refuse.
const MUST_BE_ZERO: u16 = 0x4000 | 0x0800 | 0x0400;
/// The version, bits 13 to 15.
const VERSION: u16 = 0x0007;

/// Byte ranges of the fields; the optional ones move up when those before are absent.
mod field {
    use std::ops::Range;
    pub const FLAGS_VER: Range<usize> = 0..2;
    pub const PROTOCOL: Range<usize> = 2..4;
    pub const BASE: usize = 4;
    /// Each optional field (checksum with Reserved1, key, sequence number).
    pub const OPTIONAL: usize = 4;
}

/// Why a packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than 4 bytes or than the header its flags announce.
    Truncated,
    /// Ver is not 0.
    BadVersion,
    /// Bit 1, 4 or 5 of the first word is set (RFC 2784 §2.3).
    ReservedBits,
}

#[inline]
fn be16(b: &[u8], r: Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

#[inline]
fn be32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Header length from the first word: 4, plus 4 for each of C, K, S.
#[inline]
fn header_len(flags: u16) -> usize {
    field::BASE
        + field::OPTIONAL
            * ((flags & FLAG_C != 0) as usize
                + (flags & FLAG_K != 0) as usize
                + (flags & FLAG_S != 0) as usize)
}

/// A view of a GRE packet (the IP payload: header and the packet it carries) of version 0
/// whose header, with every field its flags announce, fits in the buffer. The payload is
/// everything after the header, so the buffer should end where the IP packet does (at
/// Total Length, not the link's padding) for the checksum to verify.
#[derive(Debug, Clone, Copy)]
pub struct GrePacket<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> GrePacket<T> {
    /// Checks the version, the bits RFC 2784 §2.3 has a receiver refuse, and that the
    /// header fits.
    #[inline]
    pub fn new_checked(buf: T) -> Result<GrePacket<T>, Malformed> {
        let b = buf.as_ref();
        if b.len() < field::BASE {
            return Err(Malformed::Truncated);
        }
        let flags = be16(b, field::FLAGS_VER);
        if flags & VERSION != 0 {
            return Err(Malformed::BadVersion);
        }
        if flags & MUST_BE_ZERO != 0 {
            return Err(Malformed::ReservedBits);
        }
        if header_len(flags) > b.len() {
            return Err(Malformed::Truncated);
        }
        Ok(GrePacket { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    #[inline]
    fn flags(&self) -> u16 {
        be16(self.b(), field::FLAGS_VER)
    }

    /// Header length: 4 to 16 bytes; where the payload starts.
    #[inline]
    pub fn header_len(&self) -> usize {
        header_len(self.flags())
    }

    /// Protocol Type: the ethertype of the payload.
    #[inline]
    pub fn protocol(&self) -> u16 {
        be16(self.b(), field::PROTOCOL)
    }

    /// The C bit: a checksum is present.
    #[inline]
    pub fn checksum_present(&self) -> bool {
        self.flags() & FLAG_C != 0
    }

    /// The checksum, if present.
    #[inline]
    pub fn checksum(&self) -> Option<u16> {
        self.checksum_present()
            .then(|| be16(self.b(), field::BASE..field::BASE + 2))
    }

    /// The key (RFC 2890 §2.1), if present.
    #[inline]
    pub fn key(&self) -> Option<u32> {
        let f = self.flags();
        (f & FLAG_K != 0).then(|| {
            let at = field::BASE + if f & FLAG_C != 0 { field::OPTIONAL } else { 0 };
            be32_at(self.b(), at)
        })
    }

    /// The sequence number (RFC 2890 §2.2), if present: the last 4 bytes of the header.
    #[inline]
    pub fn seq(&self) -> Option<u32> {
        (self.flags() & FLAG_S != 0).then(|| be32_at(self.b(), self.header_len() - field::OPTIONAL))
    }

    /// Whether the checksum verifies over header and payload (RFC 2784 §2.5); true when
    /// there is none.
    #[inline]
    pub fn checksum_ok(&self) -> bool {
        !self.checksum_present() || checksum::sum(self.b(), 0) == 0xffff
    }

    /// The carried packet: everything after the header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..]
    }
}

/// The fields [`emit`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreRepr {
    /// Protocol Type of the payload.
    pub protocol: u16,
    /// Whether to carry a checksum (written as zero; see [`fill_checksum`]).
    pub checksum: bool,
    /// The key, if any.
    pub key: Option<u32>,
    /// The sequence number, if any.
    pub seq: Option<u32>,
}

impl GreRepr {
    /// Length of the header this writes: 4, plus 4 for each optional field.
    #[inline]
    pub fn header_len(&self) -> usize {
        header_len(self.flags())
    }

    #[inline]
    fn flags(&self) -> u16 {
        (if self.checksum { FLAG_C } else { 0 })
            | (if self.key.is_some() { FLAG_K } else { 0 })
            | (if self.seq.is_some() { FLAG_S } else { 0 })
    }
}

/// Writes the header for `repr` (version 0, reserved bits zero; a checksum field, if
/// asked for, zero) at the start of `buf` and returns its length. Once the payload is
/// known, [`fill_checksum`] writes the checksum. None, and nothing written, when `buf` is
/// too short.
#[inline]
pub fn emit(buf: &mut [u8], repr: &GreRepr) -> Option<usize> {
    let flags = repr.flags();
    let len = header_len(flags);
    let h = buf.get_mut(..len)?;
    h[field::FLAGS_VER].copy_from_slice(&flags.to_be_bytes());
    h[field::PROTOCOL].copy_from_slice(&repr.protocol.to_be_bytes());
    let mut at = field::BASE;
    if repr.checksum {
        h[at..at + 4].copy_from_slice(&[0; 4]);
        at += field::OPTIONAL;
    }
    if let Some(k) = repr.key {
        h[at..at + 4].copy_from_slice(&k.to_be_bytes());
        at += field::OPTIONAL;
    }
    if let Some(s) = repr.seq {
        h[at..at + 4].copy_from_slice(&s.to_be_bytes());
    }
    Some(len)
}

/// Computes the checksum of the GRE header at the start of `header` (as [`emit`] wrote it,
/// checksum present) followed by `payload`, and writes it into the header. The two may be
/// apart, as when the header is prepended in front of a packet in place. False, and
/// nothing written, when `header` does not start with a checksum-carrying version-0
/// header it holds whole.
pub fn fill_checksum(header: &mut [u8], payload: &[u8]) -> bool {
    let Ok(g) = GrePacket::new_checked(&*header) else {
        return false;
    };
    if !g.checksum_present() {
        return false;
    }
    let hl = g.header_len();
    let sum_at = field::BASE..field::BASE + 2;
    header[sum_at.clone()].copy_from_slice(&[0, 0]);
    // The header is a whole number of 16-bit words, so summing it then the payload
    // equals summing the two laid end to end.
    let c = !checksum::sum(payload, u32::from(checksum::sum(&header[..hl], 0)));
    header[sum_at].copy_from_slice(&c.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// C, K and S set, Protocol Type IPv4, key 0x01020304, sequence 7, then a 4-byte
    /// payload. The checksum (0xfedd) is computed independently (Python, RFC 1071 sum
    /// over the 16 header bytes with the field zero and the payload).
    const PKT: [u8; 20] = [
        0xb0, 0x00, 0x08, 0x00, // C K S, version 0, IPv4
        0xfe, 0xdd, 0x00, 0x00, // checksum, Reserved1
        0x01, 0x02, 0x03, 0x04, // key
        0x00, 0x00, 0x00, 0x07, // sequence number
        0x45, 0x00, 0x00, 0x14, // payload
    ];

    #[test]
    fn parses_every_field() {
        let g = GrePacket::new_checked(&PKT[..]).unwrap();
        assert_eq!(g.header_len(), 16);
        assert_eq!(g.protocol(), 0x0800);
        assert!(g.checksum_present());
        assert_eq!(g.checksum(), Some(0xfedd));
        assert_eq!(g.key(), Some(0x01020304));
        assert_eq!(g.seq(), Some(7));
        assert!(g.checksum_ok());
        assert_eq!(g.payload(), &PKT[16..]);
    }

    #[test]
    fn optional_fields_move_up() {
        // K alone: key right after the base header.
        let b = [0x20, 0x00, 0x65, 0x58, 0, 0, 0, 42, 0xaa];
        let g = GrePacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            (g.header_len(), g.key(), g.seq(), g.checksum()),
            (8, Some(42), None, None)
        );
        assert!(g.checksum_ok());
        assert_eq!(g.payload(), &[0xaa]);
        // S alone.
        let b = [0x10, 0x00, 0x86, 0xdd, 0, 0, 1, 0];
        let g = GrePacket::new_checked(&b[..]).unwrap();
        assert_eq!((g.header_len(), g.key(), g.seq()), (8, None, Some(256)));
        // None: 4 bytes.
        let b = [0x00, 0x00, 0x08, 0x00];
        let g = GrePacket::new_checked(&b[..]).unwrap();
        assert_eq!((g.header_len(), g.key(), g.seq()), (4, None, None));
        assert!(g.payload().is_empty());
    }

    #[test]
    fn a_corrupted_packet_fails_its_checksum() {
        let mut b = PKT;
        b[19] ^= 1;
        assert!(!GrePacket::new_checked(&b[..]).unwrap().checksum_ok());
    }

    #[test]
    fn refuses_each_malformation() {
        let check = |b: &[u8]| GrePacket::new_checked(b).map(|_| ());
        assert_eq!(check(&PKT[..3]), Err(Malformed::Truncated));
        assert_eq!(check(&PKT[..15]), Err(Malformed::Truncated));
        assert_eq!(check(&PKT[..16]), Ok(()));
        let mut b = PKT;
        b[1] = 0x01; // version 1 (PPTP)
        assert_eq!(check(&b), Err(Malformed::BadVersion));
        for bit in [0x40u8, 0x08, 0x04] {
            let mut b = PKT;
            b[0] |= bit;
            assert_eq!(check(&b), Err(Malformed::ReservedBits));
        }
        // Bits 6 to 12 are ignored.
        let mut b = PKT;
        b[0] |= 0x03;
        b[1] |= 0xf8;
        let g = GrePacket::new_checked(&b[..]).unwrap();
        assert_eq!((g.header_len(), g.key()), (16, Some(0x01020304)));
    }

    #[test]
    fn emit_and_fill_checksum_write_the_packet() {
        let repr = GreRepr {
            protocol: 0x0800,
            checksum: true,
            key: Some(0x01020304),
            seq: Some(7),
        };
        assert_eq!(repr.header_len(), 16);
        let mut b = [0xffu8; 20];
        b[16..].copy_from_slice(&PKT[16..]);
        assert_eq!(emit(&mut b, &repr), Some(16));
        assert_eq!(b[4..6], [0, 0]);
        let (h, p) = b.split_at_mut(16);
        assert!(fill_checksum(h, p));
        assert_eq!(b, PKT);
        // Short buffer: nothing written.
        let mut s = [0u8; 15];
        assert_eq!(emit(&mut s, &repr), None);
        assert_eq!(s, [0; 15]);
        // No checksum field: fill_checksum refuses.
        let mut k = [0u8; 8];
        let keyed = GreRepr {
            protocol: 0x6558,
            checksum: false,
            key: Some(5),
            seq: None,
        };
        assert_eq!(emit(&mut k, &keyed), Some(8));
        assert_eq!(k, [0x20, 0x00, 0x65, 0x58, 0, 0, 0, 5]);
        assert!(!fill_checksum(&mut k, &[]));
        assert!(!fill_checksum(&mut [0x80, 0, 8, 0], &[]));
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_inside(big in proptest::collection::vec(any::<u8>(), 0..40),
                                         cut in any::<prop::sample::Index>(), fix: bool) {
            let mut big = big;
            let n = cut.index(big.len() + 1);
            if fix && n >= 2 {
                big[0] &= !0x4c; // no refused bits
                big[1] &= !0x07; // version 0
            }
            let b = &big[..n];
            if let Ok(g) = GrePacket::new_checked(b) {
                prop_assert!(g.header_len() <= n && g.header_len() % 4 == 0);
                prop_assert_eq!(g.payload().len(), n - g.header_len());
                let _ = (g.protocol(), g.checksum(), g.key(), g.seq(), g.checksum_ok());
            }
        }

        #[test]
        fn emit_round_trips(protocol: u16, csum: bool, key: Option<u32>, seq: Option<u32>,
                            payload in proptest::collection::vec(any::<u8>(), 0..64),
                            flip in any::<prop::sample::Index>()) {
            let repr = GreRepr { protocol, checksum: csum, key, seq };
            let hl = repr.header_len();
            let mut b = vec![0u8; hl + payload.len()];
            prop_assert_eq!(emit(&mut b, &repr), Some(hl));
            b[hl..].copy_from_slice(&payload);
            if csum {
                let (h, p) = b.split_at_mut(hl);
                prop_assert!(fill_checksum(h, p));
            }
            for cut in 0..hl {
                let e = GrePacket::new_checked(&b[..cut]).err();
                prop_assert_eq!(e, Some(Malformed::Truncated));
            }
            let g = GrePacket::new_checked(&b[..]).unwrap();
            prop_assert_eq!(g.protocol(), protocol);
            prop_assert_eq!(g.checksum_present(), csum);
            prop_assert_eq!((g.key(), g.seq()), (key, seq));
            prop_assert!(g.checksum_ok());
            prop_assert_eq!(g.payload(), &payload[..]);
            // With a checksum, flipping one bit of the payload is caught.
            if csum && !payload.is_empty() {
                let i = hl + flip.index(payload.len());
                b[i] ^= 1;
                prop_assert!(!GrePacket::new_checked(&b[..]).unwrap().checksum_ok());
            }
        }
    }
}
