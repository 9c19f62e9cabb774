//! IPv4 headers (RFC 791 §3.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |    DSCP   |ECN|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |0|D|M|     Fragment Offset     |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |        Header Checksum        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Source Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                      Destination Address                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Options (IHL > 5, IHL*4 - 20 bytes)           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! IHL counts 32-bit words; Total Length counts bytes of header and payload, and may be
//! shorter than the frame (Ethernet pads to 60 bytes). DSCP and ECN: RFC 2474 §3, RFC 3168
//! §5. Flags and fragment offset: RFC 791 §3.2 (the offset counts 8-byte units). The
//! header checksum is the ones' complement of the ones' complement sum of the header
//! (RFC 791 §3.1, RFC 1071); a router that changes TTL or an address updates it from the
//! old value (RFC 1624; RFC 1812 §5.3.1 allows either way).

use std::net::Ipv4Addr;
use std::ops::Range;

use super::checksum;

/// ICMP (RFC 792). Protocol numbers are IANA's "Assigned Internet Protocol Numbers",
/// which IPv6's Next Header shares.
pub const PROTO_ICMP: u8 = 1;
/// TCP (RFC 9293).
pub const PROTO_TCP: u8 = 6;
/// UDP (RFC 768).
pub const PROTO_UDP: u8 = 17;
/// IPv4 in IPv4 (RFC 2003 §3: IP in IP encapsulation, "IPIP").
pub const PROTO_IPIP: u8 = 4;
/// IPv6 in IPv4 (RFC 4213 §3.5, "6in4" / SIT).
pub const PROTO_IPV6: u8 = 41;
/// GRE (RFC 2784 §2).
pub const PROTO_GRE: u8 = 47;

/// Length of a header without options (IHL 5).
pub const HEADER_LEN: usize = field::HEADER;

/// Byte ranges of the header fields.
mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLAGS_FRAG: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    /// TTL and Protocol, the 16-bit word the checksum sees when TTL changes.
    pub const TTL_PROTOCOL: Range<usize> = 8..10;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
    /// Header length without options.
    pub const HEADER: usize = 20;
}

/// Don't Fragment (RFC 791 §3.1, flags bit 1).
const FLAG_DF: u16 = 0x4000;
/// More Fragments (RFC 791 §3.1, flags bit 2).
const FLAG_MF: u16 = 0x2000;
/// Fragment offset, in 8-byte units (RFC 791 §3.1).
const FRAG_OFFSET: u16 = 0x1fff;

/// Why a packet was refused. The split follows Linux's `ip_rcv_core`: a packet the buffer
/// cuts short is `Truncated` (InTruncatedPkts), a header that contradicts itself is one of
/// the others (InHdrErrors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// The buffer ends before 20 bytes, before the header length IHL gives, or before
    /// Total Length.
    Truncated,
    /// Version is not 4.
    BadVersion,
    /// IHL is below 5 (RFC 791 §3.1: the minimum header is 5 words).
    BadIhl,
    /// Total Length is shorter than the header.
    BadTotalLength,
}

/// A view of an IPv4 packet whose header and Total Length are known to fit in the buffer:
/// `20 <= IHL*4 <= Total Length <= buffer length`. Bytes after Total Length (link padding)
/// belong to no accessor.
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

/// Reads the big-endian 16-bit word at `r` (two bytes).
#[inline]
fn be16(b: &[u8], r: Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

#[inline]
fn addr(b: &[u8], r: Range<usize>) -> Ipv4Addr {
    Ipv4Addr::new(b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3])
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Checks version, IHL and Total Length against each other and the buffer (RFC 1812
    /// §5.2.2 lists the same checks for a router).
    pub fn new_checked(buf: T) -> Result<Ipv4Packet<T>, Malformed> {
        let b = buf.as_ref();
        if b.len() < field::HEADER {
            return Err(Malformed::Truncated);
        }
        if b[field::VER_IHL] >> 4 != 4 {
            return Err(Malformed::BadVersion);
        }
        let header_len = usize::from(b[field::VER_IHL] & 0x0f) * 4;
        if header_len < field::HEADER {
            return Err(Malformed::BadIhl);
        }
        if header_len > b.len() {
            return Err(Malformed::Truncated);
        }
        let total = usize::from(be16(b, field::LENGTH));
        if total < header_len {
            return Err(Malformed::BadTotalLength);
        }
        if total > b.len() {
            return Err(Malformed::Truncated);
        }
        Ok(Ipv4Packet { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Internet Header Length, in 32-bit words (5 to 15).
    #[inline]
    pub fn ihl(&self) -> u8 {
        self.b()[field::VER_IHL] & 0x0f
    }

    /// Header length in bytes, options included (20 to 60).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.ihl()) * 4
    }

    /// The former Type of Service byte: DSCP in the upper six bits (RFC 2474 §3), ECN in
    /// the lower two (RFC 3168 §5).
    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.b()[field::DSCP_ECN]
    }

    /// Total Length: header and payload, in bytes.
    #[inline]
    pub fn total_len(&self) -> u16 {
        be16(self.b(), field::LENGTH)
    }

    /// Identification (RFC 791 §3.1; RFC 6864 on when it must be unique).
    #[inline]
    pub fn ident(&self) -> u16 {
        be16(self.b(), field::IDENT)
    }

    #[inline]
    fn flags_frag(&self) -> u16 {
        be16(self.b(), field::FLAGS_FRAG)
    }

    /// The Don't Fragment flag.
    #[inline]
    pub fn dont_fragment(&self) -> bool {
        self.flags_frag() & FLAG_DF != 0
    }

    /// The More Fragments flag.
    #[inline]
    pub fn more_fragments(&self) -> bool {
        self.flags_frag() & FLAG_MF != 0
    }

    /// Where this fragment's data sits in the original payload, in bytes (the field
    /// counts 8-byte units, so this is a multiple of 8, at most 65528).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag() & FRAG_OFFSET) * 8
    }

    /// Whether this is a fragment: More Fragments set or a nonzero offset (RFC 791 §3.2).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET) != 0
    }

    /// Time to Live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.b()[field::TTL]
    }

    /// Protocol of the payload ([`PROTO_ICMP`], [`PROTO_TCP`], [`PROTO_UDP`], ...).
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.b()[field::PROTOCOL]
    }

    /// Header Checksum as carried.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM)
    }

    /// Source address.
    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        addr(self.b(), field::SRC)
    }

    /// Destination address.
    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        addr(self.b(), field::DST)
    }

    /// Whether the header carries options (IHL > 5).
    #[inline]
    pub fn has_options(&self) -> bool {
        self.ihl() > 5
    }

    /// The options bytes (empty when IHL is 5).
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.b()[field::HEADER..self.header_len()]
    }

    /// Whether the header checksum verifies: the ones' complement sum of the header,
    /// checksum included, is all ones (RFC 1071 §1).
    #[inline]
    pub fn header_checksum_ok(&self) -> bool {
        let h = self.header();
        // Without options (nearly always): a sum of known length, unrolled.
        match <&[u8; HEADER_LEN]>::try_from(h) {
            Ok(h) => checksum::sum(h, 0) == 0xffff,
            Err(_) => checksum::sum(h, 0) == 0xffff,
        }
    }

    /// The header, options included.
    #[inline]
    pub fn header(&self) -> &[u8] {
        &self.b()[..self.header_len()]
    }

    /// The payload: from the end of the header to Total Length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.b()[self.header_len()..usize::from(self.total_len())]
    }

    /// Header and payload, without the link padding after Total Length.
    #[inline]
    pub fn packet(&self) -> &[u8] {
        &self.b()[..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    fn b_mut(&mut self) -> &mut [u8] {
        self.buf.as_mut()
    }

    fn set_checksum(&mut self, c: u16) {
        self.b_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    /// Decrements TTL as a router forwarding the packet does and updates the checksum
    /// incrementally (RFC 1624 eqn. 3). False, and nothing written, when TTL is 0 or 1: the
    /// packet must not be forwarded, and the router sends Time Exceeded instead (RFC 1812
    /// §5.3.1).
    #[inline(always)]
    pub fn decrement_ttl(&mut self) -> bool {
        let ttl = self.ttl();
        if ttl <= 1 {
            return false;
        }
        let old = be16(self.b(), field::TTL_PROTOCOL);
        let new = old - 0x0100;
        let c = checksum::update16(self.checksum(), old, new);
        self.b_mut()[field::TTL] = ttl - 1;
        self.set_checksum(c);
        true
    }

    /// Rewrites the source address, updating the header checksum incrementally. An L4
    /// checksum over the pseudo-header (TCP, UDP) is the caller's to update, with
    /// [`checksum::update_bytes`].
    #[inline]
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.set_addr(field::SRC, a);
    }

    /// Rewrites the destination address; as [`Ipv4Packet::set_src`].
    #[inline]
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.set_addr(field::DST, a);
    }

    fn set_addr(&mut self, r: Range<usize>, a: Ipv4Addr) {
        let old = addr(self.b(), r.clone()).octets();
        let new = a.octets();
        let c = checksum::update_bytes(self.checksum(), &old, &new);
        self.b_mut()[r].copy_from_slice(&new);
        self.set_checksum(c);
    }

    /// Computes the header checksum over the whole header and writes it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = !checksum::sum(self.header(), 0);
        self.set_checksum(c);
    }
}

/// The fields [`emit`] writes: a header without options, not a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Time to Live.
    pub ttl: u8,
    /// DSCP and ECN (the former TOS byte).
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_fragment: bool,
    /// Bytes that follow the header; Total Length is 20 more.
    pub payload_len: u16,
}

/// Writes a 20-byte header for `repr`, checksum included, at the start of `buf`, and
/// returns 20. The payload is the caller's to place after it. None, and nothing written,
/// when `buf` is shorter than 20 bytes or Total Length would pass 65535.
pub fn emit(buf: &mut [u8], repr: &Ipv4Repr) -> Option<usize> {
    let total = u16::try_from(HEADER_LEN + usize::from(repr.payload_len)).ok()?;
    let h = buf.get_mut(..HEADER_LEN)?;
    h[field::VER_IHL] = 0x45;
    h[field::DSCP_ECN] = repr.dscp_ecn;
    h[field::LENGTH].copy_from_slice(&total.to_be_bytes());
    h[field::IDENT].copy_from_slice(&repr.ident.to_be_bytes());
    let flags = if repr.dont_fragment { FLAG_DF } else { 0 };
    h[field::FLAGS_FRAG].copy_from_slice(&flags.to_be_bytes());
    h[field::TTL] = repr.ttl;
    h[field::PROTOCOL] = repr.protocol;
    h[field::CHECKSUM].copy_from_slice(&[0, 0]);
    h[field::SRC].copy_from_slice(&repr.src.octets());
    h[field::DST].copy_from_slice(&repr.dst.octets());
    let c = !checksum::sum(h, 0);
    h[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    Some(HEADER_LEN)
}

/// The most bytes an IPv4 header takes (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

/// Writes into `out` the header of one fragment of the packet whose header is `header`
/// (checked by [`Ipv4Packet::new_checked`]) and returns its length: a fragment carrying
/// `payload_len` bytes of the packet's payload from byte `offset` of it (a multiple of 8),
/// with More Fragments set if `more` or the packet itself had it. The first fragment
/// (`offset` 0) keeps every option, later ones only those with the copied flag (RFC 791
/// §3.1, §3.2; RFC 1812 §5.2.6), padded with End of Option List to a 4-byte multiple.
/// Don't Fragment is clear (only packets without it are fragmented); the checksum is
/// computed. None for an offset or length the fields cannot hold.
pub fn fragment_header(
    header: &[u8],
    offset: u16,
    more: bool,
    payload_len: usize,
    out: &mut [u8; MAX_HEADER_LEN],
) -> Option<usize> {
    let hl = header.len();
    if !(field::HEADER..=MAX_HEADER_LEN).contains(&hl) || offset % 8 != 0 {
        return None;
    }
    let len = if offset == 0 {
        out[..hl].copy_from_slice(header);
        hl
    } else {
        out[..field::HEADER].copy_from_slice(&header[..field::HEADER]);
        let opts = &header[field::HEADER..];
        let mut n = field::HEADER;
        let mut i = 0;
        while i < opts.len() {
            match opts[i] {
                0 => break,
                1 => i += 1,
                kind => {
                    let Some(&l) = opts.get(i + 1) else { break };
                    let l = usize::from(l);
                    if l < 2 || i + l > opts.len() {
                        break;
                    }
                    if kind & 0x80 != 0 {
                        out[n..n + l].copy_from_slice(&opts[i..i + l]);
                        n += l;
                    }
                    i += l;
                }
            }
        }
        let padded = n.div_ceil(4) * 4;
        out[n..padded].fill(0);
        padded
    };
    let total = u16::try_from(len + payload_len).ok()?;
    let orig = be16(header, field::FLAGS_FRAG);
    let start = (orig & FRAG_OFFSET) * 8;
    let at = start.checked_add(offset)?;
    let mf = if more || orig & FLAG_MF != 0 {
        FLAG_MF
    } else {
        0
    };
    let h = &mut out[..len];
    h[field::VER_IHL] = 0x40 | (len / 4) as u8;
    h[field::LENGTH].copy_from_slice(&total.to_be_bytes());
    h[field::FLAGS_FRAG].copy_from_slice(&(mf | (at / 8)).to_be_bytes());
    h[field::CHECKSUM].copy_from_slice(&[0, 0]);
    let c = !checksum::sum(h, 0);
    h[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A ping: 10.0.0.1 -> 10.0.0.2, ident 0x1c46, DF, TTL 64, ICMP; an echo request
    /// (type 8, id 0x1234, seq 1) with the 8 data bytes "abcdefgh". Total Length 36.
    /// Both checksums computed independently (Python, RFC 1071 sum).
    const PING: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x0a, 0x91, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, // IPv4 header
        0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, // ICMP echo request header
        b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h',
    ];

    #[test]
    fn parses_a_ping_request() {
        let p = Ipv4Packet::new_checked(&PING[..]).unwrap();
        assert_eq!(p.ihl(), 5);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.dscp_ecn(), 0);
        assert_eq!(p.total_len(), 36);
        assert_eq!(p.ident(), 0x1c46);
        assert!(p.dont_fragment() && !p.more_fragments());
        assert_eq!(p.frag_offset(), 0);
        assert!(!p.is_fragment());
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), PROTO_ICMP);
        assert_eq!(p.checksum(), 0x0a91);
        assert!(p.header_checksum_ok());
        assert_eq!(p.src(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(!p.has_options());
        assert!(p.options().is_empty());
        assert_eq!(p.payload(), &PING[20..]);
        assert_eq!(p.packet(), &PING[..]);
    }

    #[test]
    fn a_corrupted_header_fails_its_checksum() {
        let mut b = PING;
        b[15] ^= 0x01; // source 10.0.0.0
        assert!(!Ipv4Packet::new_checked(&b[..])
            .unwrap()
            .header_checksum_ok());
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        // Padded to the 46-byte minimum Ethernet payload (IEEE 802.3 §3.2.7).
        let mut b = [0xeeu8; 46];
        b[..36].copy_from_slice(&PING);
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload(), &PING[20..]);
        assert_eq!(p.packet(), &PING[..]);
    }

    #[test]
    fn refuses_each_malformation() {
        let check = |b: &[u8]| Ipv4Packet::new_checked(b).map(|_| ());
        assert_eq!(check(&PING[..19]), Err(Malformed::Truncated));
        assert_eq!(check(&[]), Err(Malformed::Truncated));
        let mut b = PING;
        b[0] = 0x65; // version 6
        assert_eq!(check(&b), Err(Malformed::BadVersion));
        b[0] = 0x44; // IHL 4
        assert_eq!(check(&b), Err(Malformed::BadIhl));
        b[0] = 0x4f; // IHL 15: 60 bytes of header in a 36-byte buffer
        assert_eq!(check(&b), Err(Malformed::Truncated));
        b[0] = 0x45;
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(check(&b), Err(Malformed::BadTotalLength));
        b[2..4].copy_from_slice(&37u16.to_be_bytes()); // one byte more than there is
        assert_eq!(check(&b), Err(Malformed::Truncated));
        b[2..4].copy_from_slice(&20u16.to_be_bytes()); // header only: fine
        assert_eq!(check(&b), Ok(()));
    }

    #[test]
    fn options_and_fragments() {
        // IHL 6 with a Router Alert option (RFC 2113: 0x94 0x04 0x0000), an 8-byte UDP
        // payload at fragment offset 185 (1480 bytes), More Fragments set.
        let mut b = [0u8; 32];
        b[0] = 0x46;
        b[2..4].copy_from_slice(&32u16.to_be_bytes());
        b[6..8].copy_from_slice(&(0x2000u16 | 185).to_be_bytes());
        b[8] = 1;
        b[9] = PROTO_UDP;
        b[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]);
        b[24..].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert!(p.header_checksum_ok());
        assert_eq!(p.header_len(), 24);
        assert!(p.has_options());
        assert_eq!(p.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(p.payload(), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(p.more_fragments() && !p.dont_fragment());
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
        // The last fragment: MF clear but offset nonzero, still a fragment.
        b[6..8].copy_from_slice(&185u16.to_be_bytes());
        assert!(Ipv4Packet::new_checked(&b[..]).unwrap().is_fragment());
    }

    #[test]
    fn decrement_ttl_updates_the_checksum() {
        let mut b = PING;
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.decrement_ttl());
        assert_eq!(p.ttl(), 63);
        // Recomputed independently: 0x0b91.
        assert_eq!(p.checksum(), 0x0b91);
        assert!(p.header_checksum_ok());
        assert_eq!(&b[20..], &PING[20..]);

        // TTL 1 and 0: not forwarded, nothing written.
        for ttl in [1, 0] {
            let mut b = PING;
            b[8] = ttl;
            let before = b;
            assert!(!Ipv4Packet::new_checked(&mut b[..]).unwrap().decrement_ttl());
            assert_eq!(b, before);
        }
    }

    #[test]
    fn set_src_and_dst_update_the_checksum() {
        let mut b = PING;
        let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
        p.set_src(Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(p.src(), Ipv4Addr::new(192, 168, 1, 1));
        // Recomputed independently: 0x52e8.
        assert_eq!(p.checksum(), 0x52e8);
        // Swapping the addresses back and forth leaves the sum alone.
        p.set_src(Ipv4Addr::new(10, 0, 0, 2));
        p.set_dst(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.checksum(), 0x0a91);
        assert!(p.header_checksum_ok());
    }

    #[test]
    fn emit_writes_the_ping_header() {
        let mut b = [0u8; 36];
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            protocol: PROTO_ICMP,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0x1c46,
            dont_fragment: true,
            payload_len: 16,
        };
        assert_eq!(emit(&mut b, &repr), Some(20));
        assert_eq!(&b[..20], &PING[..20]);
        // Too short a buffer, too long a payload: refused, nothing written.
        let mut short = [0u8; 19];
        assert_eq!(emit(&mut short, &repr), None);
        assert_eq!(short, [0; 19]);
        let long = Ipv4Repr {
            payload_len: 65516,
            ..repr
        };
        assert_eq!(emit(&mut b, &long), None);
        assert_eq!(
            emit(
                &mut b,
                &Ipv4Repr {
                    payload_len: 65515,
                    ..repr
                }
            ),
            Some(20)
        );
    }

    /// Calls every accessor of a view that `new_checked` accepted and checks the
    /// invariants its documentation promises.
    fn touch_all<T: AsRef<[u8]>>(p: &Ipv4Packet<T>, len: usize) {
        let total = usize::from(p.total_len());
        assert!(HEADER_LEN <= p.header_len() && p.header_len() <= total && total <= len);
        assert_eq!(p.header().len(), p.header_len());
        assert_eq!(p.options().len(), p.header_len() - HEADER_LEN);
        assert_eq!(p.has_options(), !p.options().is_empty());
        assert_eq!(p.payload().len(), total - p.header_len());
        assert_eq!(p.packet().len(), total);
        assert_eq!(p.frag_offset() % 8, 0);
        assert_eq!(p.is_fragment(), p.more_fragments() || p.frag_offset() != 0);
        let _ = (
            p.dscp_ecn(),
            p.ident(),
            p.dont_fragment(),
            p.ttl(),
            p.protocol(),
        );
        let _ = (p.checksum(), p.src(), p.dst(), p.header_checksum_ok());
    }

    /// A valid packet: random header fields, `ihl` words of header (random options),
    /// random payload, then random padding; the checksum is correct.
    fn packet() -> impl Strategy<Value = (Vec<u8>, usize)> {
        (
            5u8..=15,
            proptest::collection::vec(any::<u8>(), 60),
            proptest::collection::vec(any::<u8>(), 0..64),
            0usize..20,
        )
            .prop_map(|(ihl, header, payload, pad)| {
                let hl = usize::from(ihl) * 4;
                let total = hl + payload.len();
                let mut b = header[..hl].to_vec();
                b[0] = 0x40 | ihl;
                b[2..4].copy_from_slice(&(total as u16).to_be_bytes());
                b.extend_from_slice(&payload);
                b.resize(total + pad, 0xee);
                let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
                p.fill_checksum();
                (b, total)
            })
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..100),
                                    ver_ihl in 0x40u8..0x50, fix in any::<bool>()) {
            // Half the cases get version 4 so the later checks are reached.
            if fix && !b.is_empty() {
                b[0] = ver_ihl;
            }
            if let Ok(p) = Ipv4Packet::new_checked(&b[..]) {
                touch_all(&p, b.len());
            }
        }

        #[test]
        fn every_truncation_is_refused_as_truncated((b, total) in packet()) {
            for n in 0..=b.len() {
                match Ipv4Packet::new_checked(&b[..n]) {
                    Ok(p) => {
                        prop_assert!(n >= total);
                        touch_all(&p, n);
                        prop_assert!(p.header_checksum_ok());
                    }
                    Err(e) => {
                        prop_assert!(n < total);
                        prop_assert_eq!(e, Malformed::Truncated);
                    }
                }
            }
        }

        #[test]
        fn incremental_updates_equal_recomputation((b, _) in packet(), src: [u8; 4],
                                                    dst: [u8; 4]) {
            let mut b = b;
            let mut p = Ipv4Packet::new_checked(&mut b[..]).unwrap();
            let ttl = p.ttl();
            prop_assert_eq!(p.decrement_ttl(), ttl > 1);
            p.set_src(Ipv4Addr::from(src));
            p.set_dst(Ipv4Addr::from(dst));
            let incremental = p.checksum();
            p.fill_checksum();
            prop_assert_eq!(incremental, p.checksum());
            prop_assert_eq!(p.ttl(), if ttl > 1 { ttl - 1 } else { ttl });
            prop_assert_eq!(p.src(), Ipv4Addr::from(src));
            prop_assert_eq!(p.dst(), Ipv4Addr::from(dst));
        }

        #[test]
        fn emit_round_trips(src: [u8; 4], dst: [u8; 4], protocol: u8, ttl: u8, dscp_ecn: u8,
                            ident: u16, dont_fragment: bool, payload_len in 0u16..2000) {
            let repr = Ipv4Repr {
                src: Ipv4Addr::from(src),
                dst: Ipv4Addr::from(dst),
                protocol, ttl, dscp_ecn, ident, dont_fragment, payload_len,
            };
            let mut b = vec![0u8; HEADER_LEN + usize::from(payload_len)];
            prop_assert_eq!(emit(&mut b, &repr), Some(HEADER_LEN));
            let p = Ipv4Packet::new_checked(&b[..]).unwrap();
            prop_assert!(p.header_checksum_ok());
            prop_assert_eq!(p.header_len(), HEADER_LEN);
            prop_assert_eq!(usize::from(p.total_len()), b.len());
            prop_assert!(!p.is_fragment());
            let back = Ipv4Repr {
                src: p.src(),
                dst: p.dst(),
                protocol: p.protocol(),
                ttl: p.ttl(),
                dscp_ecn: p.dscp_ecn(),
                ident: p.ident(),
                dont_fragment: p.dont_fragment(),
                payload_len: p.payload().len() as u16,
            };
            prop_assert_eq!(back, repr);
        }
    }

    #[test]
    fn fragment_headers() {
        // A header with a copied option (loose source route, 131) after a NOP and a
        // not-copied one (record route, 7): later fragments keep only the copied one.
        let mut b = vec![0u8; 32 + 100];
        emit(
            &mut b,
            &Ipv4Repr {
                src: Ipv4Addr::new(10, 0, 0, 1),
                dst: Ipv4Addr::new(10, 0, 1, 1),
                protocol: PROTO_UDP,
                ttl: 9,
                dscp_ecn: 0,
                ident: 77,
                dont_fragment: false,
                payload_len: 100,
            },
        )
        .unwrap();
        let opts = [1, 131, 3, 9, 7, 7, 4, 0, 0, 0, 0, 0];
        b.copy_within(20..120, 32);
        b[20..32].copy_from_slice(&opts);
        b[0] = 0x48;
        b[2..4].copy_from_slice(&132u16.to_be_bytes());
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        let mut out = [0u8; MAX_HEADER_LEN];
        let n = fragment_header(p.header(), 0, true, 48, &mut out).unwrap();
        assert_eq!(n, 32);
        let f = Ipv4Packet::new_checked(&out[..n]).map(|_| ()).err();
        assert!(
            f.is_some(),
            "the header alone is shorter than its Total Length"
        );
        let mut frame = out[..n].to_vec();
        frame.resize(n + 48, 0);
        let f = Ipv4Packet::new_checked(&frame[..]).unwrap();
        assert!(f.more_fragments() && !f.dont_fragment() && f.frag_offset() == 0);
        assert!(f.header_checksum_ok());
        assert_eq!(f.options(), &opts);
        let n = fragment_header(p.header(), 48, false, 52, &mut out).unwrap();
        assert_eq!(n, 24, "20 + the 3-byte copied option, padded");
        let mut frame = out[..n].to_vec();
        frame.resize(n + 52, 0);
        let f = Ipv4Packet::new_checked(&frame[..]).unwrap();
        assert_eq!(f.options(), &[131, 3, 9, 0]);
        assert!(!f.more_fragments() && f.frag_offset() == 48 && f.total_len() == 76);
        assert!(f.header_checksum_ok());
        assert_eq!(
            (f.ident(), f.ttl(), f.src(), f.dst()),
            (77, 9, p.src(), p.dst())
        );
        // A fragment of a fragment keeps its place and its More Fragments flag.
        let mut g = b.clone();
        g[6..8].copy_from_slice(&(0x2000u16 | 10).to_be_bytes());
        let p = Ipv4Packet::new_checked(&g[..]).unwrap();
        fragment_header(p.header(), 16, false, 8, &mut out).unwrap();
        let f = u16::from_be_bytes([out[6], out[7]]);
        assert_eq!(f, 0x2000 | 12);
        assert_eq!(fragment_header(p.header(), 3, false, 8, &mut out), None);
    }

    proptest! {
        #[test]
        fn fragment_header_never_panics(
            header in proptest::collection::vec(any::<u8>(), 0..70),
            offset in any::<u16>(),
            more in any::<bool>(),
            len in 0usize..70000,
        ) {
            let mut out = [0u8; MAX_HEADER_LEN];
            if let Some(n) = fragment_header(&header, offset, more, len, &mut out) {
                prop_assert!(n <= MAX_HEADER_LEN && n % 4 == 0 && n >= 20);
            }
        }
    }
}
