//! VXLAN headers (RFC 7348 §5), carried in UDP after the outer IP header and followed by
//! the inner Ethernet frame.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|R|R|                  Reserved                     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           VXLAN Network Identifier (VNI)      |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The I flag must be set for the VNI to be valid; every R bit and both Reserved fields
//! are sent as zero and ignored on receipt (RFC 7348 §5), so a receiver checks I and
//! nothing else. Extensions that give R bits a meaning (VXLAN-GPE, Group Based Policy) are
//! not spoken here: their bits are ignored like any reserved bit.

use std::ops::Range;

/// Length of the header.
pub const HEADER_LEN: usize = field::HEADER;

/// The IANA-assigned VXLAN port (RFC 7348 §5).
pub const PORT_IANA: u16 = 4789;
/// The port Linux's vxlan driver uses when none is configured (it predates the IANA
/// assignment); flannel's vxlan backend uses it too.
pub const PORT_LINUX: u16 = 8472;

/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = 0x00ff_ffff;

/// The I flag: "VNI valid" (RFC 7348 §5).
const FLAG_I: u8 = 0x08;

/// The bottom of Linux's default local port range (`net.ipv4.ip_local_port_range`).
const SRC_PORT_MIN: u16 = 32768;
/// The top of that range, inclusive for sockets; [`source_port`] stays below it.
const SRC_PORT_MAX: u16 = 60999;

/// Byte ranges of the header fields.
mod field {
    use std::ops::Range;
    pub const FLAGS: usize = 0;
    /// VNI (three bytes) and the reserved byte after it.
    pub const VNI_RSVD: Range<usize> = 4..8;
    pub const HEADER: usize = 8;
}

/// Why a header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than 8 bytes.
    Truncated,
    /// The I flag is clear: the VNI is not valid (RFC 7348 §5).
    NoIFlag,
}

#[inline]
fn be32(b: &[u8], r: Range<usize>) -> u32 {
    u32::from_be_bytes([b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3]])
}

/// A view of a VXLAN header (the UDP payload) that is 8 bytes or longer and has the I flag.
#[derive(Debug, Clone, Copy)]
pub struct VxlanHeader<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> VxlanHeader<T> {
    /// Checks the length and the I flag; the reserved bits are not looked at.
    #[inline]
    pub fn new_checked(buf: T) -> Result<VxlanHeader<T>, Malformed> {
        let b = buf.as_ref();
        if b.len() < field::HEADER {
            return Err(Malformed::Truncated);
        }
        if b[field::FLAGS] & FLAG_I == 0 {
            return Err(Malformed::NoIFlag);
        }
        Ok(VxlanHeader { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The flags byte as carried (I and the reserved bits).
    #[inline]
    pub fn flags(&self) -> u8 {
        self.b()[field::FLAGS]
    }

    /// The 24-bit VXLAN Network Identifier.
    #[inline]
    pub fn vni(&self) -> u32 {
        be32(self.b(), field::VNI_RSVD) >> 8
    }

    /// The inner Ethernet frame: everything after the 8-byte header.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.b()[field::HEADER..]
    }
}

/// Writes a header for `vni` (I flag set, every reserved bit zero) at the start of `buf`
/// and returns 8. None, and nothing written, when `buf` is shorter than 8 bytes or `vni`
/// does not fit 24 bits.
#[inline]
pub fn emit(buf: &mut [u8], vni: u32) -> Option<usize> {
    if vni > MAX_VNI {
        return None;
    }
    let h = buf.get_mut(..HEADER_LEN)?;
    h[..4].copy_from_slice(&[FLAG_I, 0, 0, 0]);
    h[field::VNI_RSVD].copy_from_slice(&(vni << 8).to_be_bytes());
    Some(HEADER_LEN)
}

/// The UDP source port for a packet whose inner flow hashes to `flow_hash` (RFC 7348 §5:
/// derived from a hash of the inner headers, so the underlay's ECMP and the receiver's
/// RSS spread flows while each flow keeps one path).
///
/// This is what Linux's vxlan driver sends when no port range is configured:
/// `udp_flow_src_port` (include/net/udp.h) takes the default local port range from
/// `inet_get_local_port_range` (32768 to 60999), folds the hash as `h ^ (h << 16)` and
/// scales it into the range by `((h as u64 * (max - min)) >> 32) + min`. The result is
/// therefore in 32768..=60998: the multiply never reaches `max` itself. RFC 7348 only
/// recommends the dynamic range 49152-65535; the kernel's range is used here so a mixed
/// deployment of this switch and kernel VTEPs looks the same on the wire. The caller
/// supplies the hash (the NIC's RSS hash, or one of the inner addresses and ports), and 0
/// when it has none, as the kernel would have hashed the inner MACs instead.
#[inline]
pub fn source_port(flow_hash: u32) -> u16 {
    let h = flow_hash ^ (flow_hash << 16);
    let span = u64::from(SRC_PORT_MAX - SRC_PORT_MIN);
    // (h * span) >> 32 < span <= u16::MAX, so the sum fits a u16.
    SRC_PORT_MIN + ((u64::from(h) * span) >> 32) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// VNI 0x123456, I flag, reserved zero (the layout of RFC 7348 §5 byte by byte).
    const HDR: [u8; 8] = [0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x00];

    #[test]
    fn parses_a_header() {
        let mut b = HDR.to_vec();
        b.extend_from_slice(&[0xaa; 14]);
        let h = VxlanHeader::new_checked(&b[..]).unwrap();
        assert_eq!(h.vni(), 0x123456);
        assert_eq!(h.flags(), 0x08);
        assert_eq!(h.payload(), &[0xaa; 14]);
    }

    #[test]
    fn reserved_bits_are_ignored_and_i_is_required() {
        let mut b = HDR;
        // Every reserved bit set: still VNI 0x123456.
        b[0] = 0xff;
        b[1..4].copy_from_slice(&[0xff; 3]);
        b[7] = 0xff;
        assert_eq!(VxlanHeader::new_checked(&b[..]).unwrap().vni(), 0x123456);
        b[0] = 0xf7; // everything but I
        assert_eq!(
            VxlanHeader::new_checked(&b[..]).err(),
            Some(Malformed::NoIFlag)
        );
        assert_eq!(
            VxlanHeader::new_checked(&HDR[..7]).err(),
            Some(Malformed::Truncated)
        );
    }

    #[test]
    fn emit_writes_the_header() {
        let mut b = [0xffu8; 8];
        assert_eq!(emit(&mut b, 0x123456), Some(8));
        assert_eq!(b, HDR);
        assert_eq!(emit(&mut b, MAX_VNI + 1), None);
        assert_eq!(emit(&mut b[..7], 1), None);
        assert_eq!(emit(&mut b, MAX_VNI), Some(8));
        assert_eq!(b, [0x08, 0, 0, 0, 0xff, 0xff, 0xff, 0]);
    }

    #[test]
    fn source_port_matches_the_kernel_formula() {
        // Worked by hand: h = 0 gives min; h = 0x0001_0000 folds to 0x0001_0000 and
        // scales to (0x10000 * 28231) >> 32 = 0; h = 0x0000_ffff folds to 0xffff_ffff, the top.
        assert_eq!(source_port(0), 32768);
        assert_eq!(source_port(0x0001_0000), 32768);
        assert_eq!(source_port(0x0000_ffff), 32768 + 28230);
        // 0x8000 folds to 0x8000_8000: (0x8000_8000 * 28231) >> 32 = 14115.
        assert_eq!(source_port(0x8000), 32768 + 14115);
    }

    proptest! {
        #[test]
        fn source_port_stays_in_the_kernel_range(h: u32) {
            let p = source_port(h);
            prop_assert!((32768..=60998).contains(&p));
        }

        #[test]
        fn never_panics_and_stays_inside(big in proptest::collection::vec(any::<u8>(), 0..32),
                                         cut in any::<prop::sample::Index>()) {
            let n = cut.index(big.len() + 1);
            let b = &big[..n];
            match VxlanHeader::new_checked(b) {
                Ok(h) => {
                    prop_assert!(n >= 8 && b[0] & 0x08 != 0);
                    prop_assert!(h.vni() <= MAX_VNI);
                    prop_assert_eq!(h.payload().len(), n - 8);
                    let _ = h.flags();
                }
                Err(Malformed::Truncated) => prop_assert!(n < 8),
                Err(Malformed::NoIFlag) => prop_assert!(b[0] & 0x08 == 0),
            }
        }

        #[test]
        fn emit_round_trips(vni in 0..=MAX_VNI, bit in 0usize..64) {
            let mut b = [0u8; 8];
            prop_assert_eq!(emit(&mut b, vni), Some(8));
            prop_assert_eq!(VxlanHeader::new_checked(&b[..]).unwrap().vni(), vni);
            // Flipping any bit but I or the VNI's changes nothing a receiver sees.
            let mut f = b;
            f[bit / 8] ^= 0x80 >> (bit % 8);
            let in_vni = (32..56).contains(&bit);
            match VxlanHeader::new_checked(&f[..]) {
                Ok(h) => prop_assert_eq!(h.vni() == vni, !in_vni),
                Err(e) => prop_assert!(bit == 4 && e == Malformed::NoIFlag),
            }
        }
    }
}
