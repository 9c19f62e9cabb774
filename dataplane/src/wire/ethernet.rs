//! Ethernet II frames with an optional IEEE 802.1Q tag.
//!
//! ```text
//! 0       6       12      14 (untagged: ethertype)  /  12 TPID 0x8100, 14 TCI, 16 ethertype
//! | dst   | src   | type  | payload...
//! ```

/// A MAC address.
pub type Mac = [u8; 6];

/// Ethertype of an 802.1Q tag (IEEE 802.1Q-2018 §9.5, TPID).
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Ethertype of IPv4 (RFC 894).
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6 (RFC 2464 §3).
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Transparent Ethernet Bridging: an Ethernet frame carried as the payload of GRE
/// (RFC 1701 §3.3's table) or Geneve (RFC 8926 §3.4).
pub const ETHERTYPE_TEB: u16 = 0x6558;

/// Length of an untagged header.
pub const HEADER_LEN: usize = field::HEADER;

/// Byte ranges of the header fields.
mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const TYPE: Range<usize> = 12..14;
    pub const TCI: Range<usize> = 14..16;
    pub const INNER_TYPE: Range<usize> = 16..18;
    /// Untagged header length.
    pub const HEADER: usize = 14;
    /// Tagged header length.
    pub const TAGGED_HEADER: usize = 18;
}

/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// Why a frame was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than its Ethernet (and tag) header.
    Truncated,
}

/// A read-only view of an Ethernet frame whose header is known to be complete.
#[derive(Debug, Clone, Copy)]
pub struct Frame<T: AsRef<[u8]>> {
    buf: T,
    tagged: bool,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks that `buf` holds a whole Ethernet header (and 802.1Q tag, if it says so).
    pub fn new_checked(buf: T) -> Result<Frame<T>, Malformed> {
        let b = buf.as_ref();
        if b.len() < field::HEADER {
            return Err(Malformed::Truncated);
        }
        let tagged = u16::from_be_bytes([b[12], b[13]]) == ETHERTYPE_VLAN;
        if tagged && b.len() < field::TAGGED_HEADER {
            return Err(Malformed::Truncated);
        }
        Ok(Frame { buf, tagged })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Destination MAC.
    #[inline]
    pub fn dst(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.b()[field::DST]);
        m
    }

    /// Source MAC.
    #[inline]
    pub fn src(&self) -> Mac {
        let mut m = [0; 6];
        m.copy_from_slice(&self.b()[field::SRC]);
        m
    }

    /// Both MAC addresses (destination, then source) as two words, bytes 0-7 and 8-11,
    /// for comparing two frames' addresses at once (loaded straight from the frame).
    #[inline(always)]
    pub fn macs(&self) -> (u64, u32) {
        let b = self.b();
        let mut lo = [0; 8];
        lo.copy_from_slice(&b[0..8]);
        let mut hi = [0; 4];
        hi.copy_from_slice(&b[8..12]);
        (u64::from_le_bytes(lo), u32::from_le_bytes(hi))
    }

    /// The 802.1Q VLAN id (12 bits), None for an untagged frame.
    #[inline]
    pub fn vlan(&self) -> Option<u16> {
        self.tagged.then(|| {
            let t = &self.b()[field::TCI];
            u16::from_be_bytes([t[0], t[1]]) & 0x0fff
        })
    }

    /// The ethertype of the payload (after the tag, if any).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        let r = if self.tagged {
            field::INNER_TYPE
        } else {
            field::TYPE
        };
        let t = &self.b()[r];
        u16::from_be_bytes([t[0], t[1]])
    }
}

/// Whether a MAC is a group (broadcast or multicast) address (IEEE 802-2014 §8.2, I/G bit).
#[inline]
pub fn is_group(mac: &Mac) -> bool {
    mac[0] & 1 == 1
}

/// Writes an untagged header (`dst`, `src`, `ethertype`) at the start of `buf` and
/// returns 14. None, and nothing written, when `buf` is shorter than 14 bytes.
#[inline]
pub fn emit(buf: &mut [u8], dst: &Mac, src: &Mac, ethertype: u16) -> Option<usize> {
    let h = buf.get_mut(..field::HEADER)?;
    h[field::DST].copy_from_slice(dst);
    h[field::SRC].copy_from_slice(src);
    h[field::TYPE].copy_from_slice(&ethertype.to_be_bytes());
    Some(field::HEADER)
}

/// Inserts an 802.1Q tag with `vlan` (priority 0) into `frame`, whose first
/// `VLAN_TAG_LEN` bytes are free room just made for it (the old header starts at byte 4).
/// `frame` must be at least 18 bytes long.
pub fn emit_tag_into_room(frame: &mut [u8], vlan: u16) {
    frame.copy_within(VLAN_TAG_LEN..VLAN_TAG_LEN + 12, 0);
    frame[12..14].copy_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
    frame[14..16].copy_from_slice(&(vlan & 0x0fff).to_be_bytes());
}

/// Removes the 802.1Q tag of a tagged `frame` by moving the MAC addresses 4 bytes on; the
/// caller then drops the first `VLAN_TAG_LEN` bytes.
pub fn strip_tag_in_place(frame: &mut [u8]) {
    frame.copy_within(0..12, VLAN_TAG_LEN);
}

#[cfg(test)]
mod tests {
    use super::*;

    // An ARP request from 02:00:00:00:00:01, untagged (golden bytes).
    const UNTAGGED: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x06, 0x00, 0x01,
    ];
    // The same on VLAN 10 (TCI 0x000a).
    const TAGGED: [u8; 20] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01, 0x81, 0x00, 0x00, 0x0a, 0x08,
        0x06, 0x00, 0x01,
    ];

    #[test]
    fn parses_untagged_and_tagged() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.dst(), [0xff; 6]);
        assert_eq!(f.src(), [2, 0, 0, 0, 0, 1]);
        assert_eq!(f.vlan(), None);
        assert_eq!(f.ethertype(), 0x0806);
        assert!(is_group(&f.dst()) && !is_group(&f.src()));
        let t = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(t.vlan(), Some(10));
        assert_eq!(t.ethertype(), 0x0806);
        assert_eq!(t.src(), [2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn macs_are_both_addresses_and_nothing_else() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(f.macs(), (0x0002_ffff_ffff_ffff, 0x0100_0000));
        // The tag, the ethertype and the payload are not part of it; each address byte is.
        let t = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(t.macs(), f.macs());
        for i in 0..12 {
            let mut b = UNTAGGED;
            b[i] ^= 1;
            assert_ne!(
                Frame::new_checked(&b[..]).unwrap().macs(),
                f.macs(),
                "byte {i}"
            );
        }
    }

    #[test]
    fn refuses_truncated_headers() {
        assert_eq!(
            Frame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            Malformed::Truncated
        );
        assert_eq!(
            Frame::new_checked(&TAGGED[..17]).unwrap_err(),
            Malformed::Truncated
        );
        assert!(Frame::new_checked(&TAGGED[..18]).is_ok());
        assert!(Frame::new_checked(&[][..]).is_err());
    }

    #[test]
    fn tag_push_and_pop_are_inverse() {
        // Push: make 4 bytes of room in front, then emit.
        let mut buf = vec![0u8; 4];
        buf.extend_from_slice(&UNTAGGED);
        emit_tag_into_room(&mut buf, 10);
        assert_eq!(buf, TAGGED);
        // Pop.
        strip_tag_in_place(&mut buf);
        assert_eq!(&buf[4..], &UNTAGGED[..]);
    }

    #[test]
    fn emit_writes_an_untagged_header() {
        let mut b = [0u8; 16];
        b[14..].copy_from_slice(&[0x00, 0x01]);
        assert_eq!(
            emit(&mut b, &[0xff; 6], &[2, 0, 0, 0, 0, 1], 0x0806),
            Some(14)
        );
        assert_eq!(b, UNTAGGED);
        assert_eq!(emit(&mut b[..13], &[0; 6], &[0; 6], 0x0800), None);
        assert_eq!(b, UNTAGGED);
    }

    #[test]
    fn vlan_priority_bits_are_ignored() {
        let mut t = TAGGED;
        t[14] = 0xe0; // PCP 7
        assert_eq!(Frame::new_checked(&t[..]).unwrap().vlan(), Some(10));
    }
}
