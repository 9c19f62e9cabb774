//! ICMP for IPv4 (RFC 792) and IPv6 (RFC 4443), and the Neighbor Solicitation and
//! Advertisement messages of IPv6 Neighbor Discovery (RFC 4861).
//!
//! ```text
//! Every ICMP message (RFC 792; RFC 4443 §2.1):
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |     Code      |           Checksum            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                        Rest of header                         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   Data: an echo's data, or for an error as much of the packet |
//! |   that caused it as fits, from its IP header on               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Rest of header, by type:
//!   echo: v4 8 / 0, v6 128 / 129     Identifier (16) | Sequence Number (16)
//!   v4 Destination Unreachable 3     unused (16) | Next-Hop MTU (16; code 4, RFC 1191 §4)
//!   v4 Time Exceeded 11              unused (32)
//!   v6 Destination Unreachable 1     unused (32)
//!   v6 Packet Too Big 2              MTU (32)
//!   v6 Time Exceeded 3               unused (32)
//!
//! Neighbor Solicitation 135 and Advertisement 136 (RFC 4861 §4.3, §4.4):
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Type      |   Code (0)    |           Checksum            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|S|O|          Reserved (in a solicitation, all 32 bits)      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                   Target Address (16 bytes)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Option Type  |Length (8B, >0)|           Value ...           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//! Source (1) / Target (2) Link-Layer Address option on Ethernet (RFC 4861 §4.6.1,
//! RFC 2464 §6): Type, Length 1, then the 6-byte MAC.
//! ```
//!
//! Checksums: ICMPv4's covers the message (RFC 792); ICMPv6's covers the message and the
//! IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1). The views here take the ICMP message
//! alone: from its Type to the end of the IP payload, without link padding.
//!
//! The error builders write a whole IP packet (header, ICMP header, quote) that quotes as
//! much of the offending packet as keeps the error within 576 bytes for IPv4 (RFC 1812
//! §4.3.2.3) and 1280 for IPv6 (RFC 4443 §2.4(c)). Whether to send one at all (never about
//! an ICMP error, a broadcast, ...) is [`may_send_icmpv4_error`] and
//! [`may_send_icmpv6_error`]; rate limiting (RFC 1812 §4.3.2.8, RFC 4443 §2.4(f)) is the
//! caller's.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use super::checksum;
use super::ethernet::Mac;
use super::ipv4::{self, Ipv4Packet, Ipv4Repr};
use super::ipv6::{self, Ipv6Packet, Ipv6Repr};

/// ICMPv4 message types (RFC 792; IANA "ICMP Type Numbers").
pub mod v4_type {
    /// Echo Reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination Unreachable.
    pub const DEST_UNREACHABLE: u8 = 3;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo (request).
    pub const ECHO_REQUEST: u8 = 8;
    /// Time Exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter Problem.
    pub const PARAMETER_PROBLEM: u8 = 12;
}

/// Codes of ICMPv4 Destination Unreachable (RFC 792; RFC 1812 §5.2.7.1).
pub mod v4_unreachable {
    /// Network unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set; carries the next-hop MTU (RFC 1191 §4).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited (RFC 1812 §5.2.7.1).
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// ICMPv6 message types (RFC 4443 §2.1, RFC 4861 §4; IANA "ICMPv6 Parameters"). Errors
/// are below 128, informational messages 128 and above.
pub mod v6_type {
    /// Destination Unreachable (RFC 4443 §3.1).
    pub const DEST_UNREACHABLE: u8 = 1;
    /// Packet Too Big (RFC 4443 §3.2).
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time Exceeded (RFC 4443 §3.3).
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter Problem (RFC 4443 §3.4).
    pub const PARAMETER_PROBLEM: u8 = 4;
    /// Echo Request (RFC 4443 §4.1).
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo Reply (RFC 4443 §4.2).
    pub const ECHO_REPLY: u8 = 129;
    /// Neighbor Solicitation (RFC 4861 §4.3).
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbor Advertisement (RFC 4861 §4.4).
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect (RFC 4861 §4.5).
    pub const REDIRECT: u8 = 137;
}

/// Codes of ICMPv6 Destination Unreachable (RFC 4443 §3.1).
pub mod v6_unreachable {
    /// No route to destination.
    pub const NO_ROUTE: u8 = 0;
    /// Communication with destination administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Beyond scope of source address.
    pub const BEYOND_SCOPE: u8 = 2;
    /// Address unreachable.
    pub const ADDRESS: u8 = 3;
    /// Port unreachable.
    pub const PORT: u8 = 4;
}

/// Time Exceeded code: TTL or Hop Limit exceeded in transit (RFC 792; RFC 4443 §3.3).
pub const TIME_EXCEEDED_IN_TRANSIT: u8 = 0;
/// Time Exceeded code: fragment reassembly time exceeded (RFC 792; RFC 4443 §3.3).
pub const TIME_EXCEEDED_REASSEMBLY: u8 = 1;

/// Neighbor Discovery option: Source Link-Layer Address (RFC 4861 §4.6.1).
pub const OPT_SOURCE_LL_ADDR: u8 = 1;
/// Neighbor Discovery option: Target Link-Layer Address (RFC 4861 §4.6.1).
pub const OPT_TARGET_LL_ADDR: u8 = 2;

/// The Hop Limit Neighbor Discovery messages are sent with; a receiver drops any with
/// another (RFC 4861 §7.1.1, §7.1.2), so it checks the IPv6 header against this.
pub const ND_HOP_LIMIT: u8 = 255;

/// The most bytes an ICMPv4 error's IP packet may have (RFC 1812 §4.3.2.3).
pub const ICMPV4_ERROR_MAX: usize = 576;
/// The most bytes an ICMPv6 error's IP packet may have: the IPv6 minimum MTU (RFC 4443
/// §2.4(c), RFC 8200 §5).
pub const ICMPV6_ERROR_MAX: usize = 1280;
/// TTL and Hop Limit of the errors built here: IANA's recommended default ("IP
/// Parameters", after RFC 1700).
pub const ERROR_TTL: u8 = 64;
/// DSCP of ICMPv4 errors: precedence 6, Internetwork Control (RFC 1812 §4.3.2.5), CS6.
const ERROR_TOS: u8 = 0xc0;

/// Length of the fixed ICMP header (Type, Code, Checksum, Rest of header).
pub const HEADER_LEN: usize = field::HEADER;

/// Byte ranges of the fields.
mod field {
    use std::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    /// Type and Code, the 16-bit word the checksum sees when the type changes.
    pub const TYPE_CODE: Range<usize> = 0..2;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const REST: Range<usize> = 4..8;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQ: Range<usize> = 6..8;
    /// ICMPv4 Destination Unreachable code 4 (RFC 1191 §4).
    pub const V4_NEXT_HOP_MTU: Range<usize> = 6..8;
    /// ICMPv6 Packet Too Big (RFC 4443 §3.2).
    pub const V6_MTU: Range<usize> = 4..8;
    pub const HEADER: usize = 8;

    /// Neighbor Solicitation and Advertisement (RFC 4861 §4.3, §4.4).
    pub const ND_FLAGS: usize = 4;
    pub const ND_TARGET: Range<usize> = 8..24;
    pub const ND_OPTIONS: usize = 24;
    /// In an option (RFC 4861 §4.6).
    pub const OPT_TYPE: usize = 0;
    pub const OPT_LEN: usize = 1;
    pub const OPT_VALUE: usize = 2;
    /// Option lengths count these.
    pub const OPT_UNIT: usize = 8;
}

/// Neighbor Advertisement flags (RFC 4861 §4.4), in the byte after the checksum.
const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the message's fixed part (8 bytes; 24 for a solicitation or
    /// advertisement).
    Truncated,
    /// A Neighbor Discovery view was given another message type.
    BadType,
    /// A Neighbor Discovery message with a code other than 0 (RFC 4861 §7.1.1).
    BadCode,
    /// A solicitation or advertisement for a multicast target (RFC 4861 §7.1.1, §7.1.2).
    MulticastTarget,
    /// An option with length 0, or running past the message (RFC 4861 §4.6, §7.1.1).
    BadOptionLength,
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
fn rest_of_header(b: &[u8]) -> [u8; 4] {
    [b[4], b[5], b[6], b[7]]
}

/// A view of an ICMPv4 message at least 8 bytes long.
#[derive(Debug, Clone, Copy)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Checks that `buf`, the IPv4 payload, holds the 8-byte header.
    pub fn new_checked(buf: T) -> Result<Icmpv4Packet<T>, Malformed> {
        if buf.as_ref().len() < field::HEADER {
            return Err(Malformed::Truncated);
        }
        Ok(Icmpv4Packet { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Type (see [`v4_type`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.b()[field::TYPE]
    }

    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.b()[field::CODE]
    }

    /// Checksum as carried.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM)
    }

    /// The four bytes after the checksum, whatever the type makes of them.
    #[inline]
    pub fn rest_of_header(&self) -> [u8; 4] {
        rest_of_header(self.b())
    }

    /// Identifier of an echo request or reply (RFC 792, "Echo or Echo Reply Message").
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.b(), field::ECHO_IDENT)
    }

    /// Sequence Number of an echo request or reply.
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        be16(self.b(), field::ECHO_SEQ)
    }

    /// Next-Hop MTU of a Destination Unreachable, code 4 (RFC 1191 §4; 0 from routers
    /// older than it).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        be16(self.b(), field::V4_NEXT_HOP_MTU)
    }

    /// What follows the 8-byte header: an echo's data, or an error's quote.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.b()[field::HEADER..]
    }

    /// Whether the checksum over the message verifies (RFC 792, RFC 1071).
    #[inline]
    pub fn checksum_ok(&self) -> bool {
        checksum::sum(self.b(), 0) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    fn set_checksum(&mut self, c: u16) {
        self.buf.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    /// Turns an echo request into its reply in place: the type becomes Echo Reply and
    /// the checksum is updated from the old one (RFC 1624), so identifier, sequence and
    /// data are echoed as RFC 792 asks. The IPv4 header is the caller's: swapping its
    /// addresses leaves its checksum as it is. Verify the request's checksum first, since
    /// an update carries an error along. False, and nothing written, for any other type.
    pub fn echo_reply_in_place(&mut self) -> bool {
        if self.msg_type() != v4_type::ECHO_REQUEST {
            return false;
        }
        let old = be16(self.b(), field::TYPE_CODE);
        let new = u16::from_be_bytes([v4_type::ECHO_REPLY, self.code()]);
        let c = checksum::update16(self.checksum(), old, new);
        self.buf.as_mut()[field::TYPE] = v4_type::ECHO_REPLY;
        if c == 0 {
            // 0x0000 may be checksum::update16's one exception, a reply that is all zero
            // (identifier, sequence and data 0), whose checksum is 0xffff. Rare: sum it.
            self.fill_checksum();
        } else {
            self.set_checksum(c);
        }
        true
    }

    /// Computes the checksum over the whole message and writes it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = !checksum::sum(self.b(), 0);
        self.set_checksum(c);
    }
}

/// A view of an ICMPv6 message at least 8 bytes long (every message RFC 4443 and RFC 4861
/// define is).
#[derive(Debug, Clone, Copy)]
pub struct Icmpv6Packet<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    /// Checks that `buf`, the upper-layer part of an IPv6 payload, holds an 8-byte header.
    pub fn new_checked(buf: T) -> Result<Icmpv6Packet<T>, Malformed> {
        if buf.as_ref().len() < field::HEADER {
            return Err(Malformed::Truncated);
        }
        Ok(Icmpv6Packet { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Type (see [`v6_type`]).
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.b()[field::TYPE]
    }

    /// Code.
    #[inline]
    pub fn code(&self) -> u8 {
        self.b()[field::CODE]
    }

    /// Checksum as carried.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM)
    }

    /// The four bytes after the checksum, whatever the type makes of them.
    #[inline]
    pub fn rest_of_header(&self) -> [u8; 4] {
        rest_of_header(self.b())
    }

    /// Identifier of an echo request or reply (RFC 4443 §4.1).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        be16(self.b(), field::ECHO_IDENT)
    }

    /// Sequence Number of an echo request or reply.
    #[inline]
    pub fn echo_seq(&self) -> u16 {
        be16(self.b(), field::ECHO_SEQ)
    }

    /// MTU of a Packet Too Big (RFC 4443 §3.2).
    #[inline]
    pub fn mtu(&self) -> u32 {
        be32(self.b(), field::V6_MTU)
    }

    /// What follows the 8-byte header: an echo's data, an error's quote, or the rest of a
    /// Neighbor Discovery message.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.b()[field::HEADER..]
    }

    /// Whether the checksum over the IPv6 pseudo-header of `src` and `dst` (the packet's
    /// addresses) and the message verifies (RFC 4443 §2.3).
    pub fn checksum_ok(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let b = self.b();
        let Ok(len) = u32::try_from(b.len()) else {
            return false;
        };
        let pseudo = checksum::pseudo_header_v6(src, dst, ipv6::NEXT_ICMPV6, len);
        checksum::sum(b, u32::from(pseudo)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    fn set_checksum(&mut self, c: u16) {
        self.buf.as_mut()[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }

    /// Turns an echo request into its reply in place: the type becomes Echo Reply and
    /// the checksum is updated from the old one (RFC 1624; exact, as the pseudo-header is
    /// never zero). Correct when the reply's addresses are the request's swapped, which
    /// leaves the pseudo-header sum as it is; a reply from another address (to a request
    /// sent to a multicast group, RFC 4443 §4.2) needs [`Icmpv6Packet::fill_checksum`].
    /// Verify the request's checksum first. False, and nothing written, for any other type.
    pub fn echo_reply_in_place(&mut self) -> bool {
        if self.msg_type() != v6_type::ECHO_REQUEST {
            return false;
        }
        let old = be16(self.b(), field::TYPE_CODE);
        let new = u16::from_be_bytes([v6_type::ECHO_REPLY, self.code()]);
        let c = checksum::update16(self.checksum(), old, new);
        self.buf.as_mut()[field::TYPE] = v6_type::ECHO_REPLY;
        self.set_checksum(c);
        true
    }

    /// Computes the checksum over the pseudo-header of `src` and `dst` and the whole
    /// message, and writes it. False, and nothing written, for a message longer than
    /// 2^32 - 1 bytes.
    pub fn fill_checksum(&mut self, src: &Ipv6Addr, dst: &Ipv6Addr) -> bool {
        let Ok(len) = u32::try_from(self.b().len()) else {
            return false;
        };
        self.set_checksum(0);
        let pseudo = checksum::pseudo_header_v6(src, dst, ipv6::NEXT_ICMPV6, len);
        let c = !checksum::sum(self.b(), u32::from(pseudo));
        self.set_checksum(c);
        true
    }
}

/// An ICMPv4 error for [`emit_icmpv4_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv4Error {
    /// Destination Unreachable with a code from [`v4_unreachable`] (for code 4, use
    /// `FragNeeded`, which carries the MTU).
    Unreachable(u8),
    /// Destination Unreachable, fragmentation needed and DF set (code 4), with the MTU of
    /// the next hop (RFC 1191 §4).
    FragNeeded {
        /// The next hop's MTU.
        mtu: u16,
    },
    /// Time Exceeded with [`TIME_EXCEEDED_IN_TRANSIT`] or [`TIME_EXCEEDED_REASSEMBLY`].
    TimeExceeded(u8),
}

/// Writes the IPv4 packet of an ICMPv4 `error` about `offending`, from `src` (an address of
/// the interface the offending packet came in on, RFC 1812 §4.3.2.4) back to the offending
/// packet's source, and returns its length. The IPv4 header has TTL [`ERROR_TTL`],
/// precedence 6 (RFC 1812 §4.3.2.5), no options and Identification `ident` (unique per
/// source, destination and protocol while in flight, RFC 6864 §4.1: the caller's
/// counter). The quote is as much of the offending packet (up to its Total Length) as fits
/// in [`ICMPV4_ERROR_MAX`] bytes and in `buf`. None, and nothing written, when `buf`
/// cannot hold at least its IP header and 8 bytes of its payload (RFC 792's minimum).
pub fn emit_icmpv4_error<R: AsRef<[u8]>>(
    buf: &mut [u8],
    error: Icmpv4Error,
    src: Ipv4Addr,
    ident: u16,
    offending: &Ipv4Packet<R>,
) -> Option<usize> {
    const HEADERS: usize = ipv4::HEADER_LEN + field::HEADER;
    let quote = offending.packet();
    let least = quote.len().min(offending.header_len() + 8);
    let room = buf.len().min(ICMPV4_ERROR_MAX).checked_sub(HEADERS)?;
    if room < least {
        return None;
    }
    let quoted = quote.len().min(room);
    let total = HEADERS + quoted;
    let (msg_type, code, rest) = match error {
        Icmpv4Error::Unreachable(code) => (v4_type::DEST_UNREACHABLE, code, [0; 4]),
        Icmpv4Error::FragNeeded { mtu } => {
            let m = mtu.to_be_bytes();
            (
                v4_type::DEST_UNREACHABLE,
                v4_unreachable::FRAG_NEEDED,
                [0, 0, m[0], m[1]],
            )
        }
        Icmpv4Error::TimeExceeded(code) => (v4_type::TIME_EXCEEDED, code, [0; 4]),
    };
    let icmp = &mut buf[ipv4::HEADER_LEN..total];
    icmp[field::TYPE] = msg_type;
    icmp[field::CODE] = code;
    icmp[field::CHECKSUM].copy_from_slice(&[0, 0]);
    icmp[field::REST].copy_from_slice(&rest);
    icmp[field::HEADER..].copy_from_slice(&quote[..quoted]);
    let c = !checksum::sum(icmp, 0);
    icmp[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    let repr = Ipv4Repr {
        src,
        dst: offending.src(),
        protocol: ipv4::PROTO_ICMP,
        ttl: ERROR_TTL,
        dscp_ecn: ERROR_TOS,
        ident,
        dont_fragment: false,
        payload_len: u16::try_from(total - ipv4::HEADER_LEN).ok()?,
    };
    ipv4::emit(buf, &repr)?;
    Some(total)
}

/// An ICMPv6 error for [`emit_icmpv6_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Icmpv6Error {
    /// Destination Unreachable with a code from [`v6_unreachable`].
    Unreachable(u8),
    /// Packet Too Big, with the MTU of the next hop (RFC 4443 §3.2).
    PacketTooBig {
        /// The next hop's MTU.
        mtu: u32,
    },
    /// Time Exceeded with [`TIME_EXCEEDED_IN_TRANSIT`] or [`TIME_EXCEEDED_REASSEMBLY`].
    TimeExceeded(u8),
}

/// Writes the IPv6 packet of an ICMPv6 `error` about `offending`, from `src` back to the
/// offending packet's source, and returns its length. The IPv6 header has Hop Limit
/// [`ERROR_TTL`], traffic class and flow label 0 and no extension headers. The quote is as
/// much of the offending packet (up to its Payload Length) as fits in
/// [`ICMPV6_ERROR_MAX`] bytes and in `buf`. None, and nothing written, when `buf` cannot
/// hold at least its IPv6 header and 8 bytes after it.
pub fn emit_icmpv6_error<R: AsRef<[u8]>>(
    buf: &mut [u8],
    error: Icmpv6Error,
    src: Ipv6Addr,
    offending: &Ipv6Packet<R>,
) -> Option<usize> {
    const HEADERS: usize = ipv6::HEADER_LEN + field::HEADER;
    let quote = offending.packet();
    let least = quote.len().min(ipv6::HEADER_LEN + 8);
    let room = buf.len().min(ICMPV6_ERROR_MAX).checked_sub(HEADERS)?;
    if room < least {
        return None;
    }
    let quoted = quote.len().min(room);
    let total = HEADERS + quoted;
    let len = u16::try_from(total - ipv6::HEADER_LEN).ok()?;
    let (msg_type, code, rest) = match error {
        Icmpv6Error::Unreachable(code) => (v6_type::DEST_UNREACHABLE, code, [0; 4]),
        Icmpv6Error::PacketTooBig { mtu } => (v6_type::PACKET_TOO_BIG, 0, mtu.to_be_bytes()),
        Icmpv6Error::TimeExceeded(code) => (v6_type::TIME_EXCEEDED, code, [0; 4]),
    };
    let dst = offending.src();
    let icmp = &mut buf[ipv6::HEADER_LEN..total];
    icmp[field::TYPE] = msg_type;
    icmp[field::CODE] = code;
    icmp[field::CHECKSUM].copy_from_slice(&[0, 0]);
    icmp[field::REST].copy_from_slice(&rest);
    icmp[field::HEADER..].copy_from_slice(&quote[..quoted]);
    let pseudo = checksum::pseudo_header_v6(&src, &dst, ipv6::NEXT_ICMPV6, u32::from(len));
    let c = !checksum::sum(icmp, u32::from(pseudo));
    icmp[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    let repr = Ipv6Repr {
        src,
        dst,
        next_header: ipv6::NEXT_ICMPV6,
        hop_limit: ERROR_TTL,
        traffic_class: 0,
        flow_label: 0,
        payload_len: len,
    };
    ipv6::emit(buf, &repr)?;
    Some(total)
}

/// Whether an ICMPv4 error about `offending` may be sent (RFC 1812 §4.3.2.7): not when its
/// source is not a single host (0/8, 127/8, multicast, 240/4 and broadcast), its
/// destination is multicast or the limited broadcast, it is a fragment other than the
/// first, or it is an ICMP message other than a query (an error, or a type this cannot
/// read or does not know, as Linux decides). A directed broadcast destination and a
/// link-layer broadcast are the caller's to check, knowing the interface.
pub fn may_send_icmpv4_error<R: AsRef<[u8]>>(offending: &Ipv4Packet<R>) -> bool {
    let src = offending.src().octets()[0];
    if src == 0 || src == 127 || src >= 224 {
        return false;
    }
    let dst = offending.dst();
    if dst.is_multicast() || dst.is_broadcast() || offending.frag_offset() != 0 {
        return false;
    }
    if offending.protocol() != ipv4::PROTO_ICMP {
        return true;
    }
    // Queries: echo 0/8, router advertisement/solicitation 9/10 (RFC 1256), timestamp
    // 13/14, information 15/16, address mask 17/18 (RFC 950).
    matches!(
        offending.payload().first(),
        Some(0 | 8 | 9 | 10 | 13 | 14 | 15 | 16 | 17 | 18)
    )
}

/// Whether `error` about `offending` may be sent (RFC 4443 §2.4(e)): not when its source
/// is unspecified or multicast, its destination is multicast (except for Packet Too Big),
/// it is an ICMPv6 error or Redirect, or its extension headers cannot be walked to tell.
/// A non-first fragment of an ICMPv6 message does not show its type and may have an
/// error. Link-layer multicast or broadcast and anycast sources are the caller's to check.
pub fn may_send_icmpv6_error<R: AsRef<[u8]>>(
    offending: &Ipv6Packet<R>,
    error: Icmpv6Error,
) -> bool {
    let src = offending.src();
    if src.is_unspecified() || src.is_multicast() {
        return false;
    }
    if offending.dst().is_multicast() && !matches!(error, Icmpv6Error::PacketTooBig { .. }) {
        return false;
    }
    let Ok(upper) = offending.upper_layer() else {
        return false;
    };
    if upper.protocol != ipv6::NEXT_ICMPV6 || upper.fragment.is_some_and(|f| f.offset != 0) {
        return true;
    }
    matches!(
        offending.packet().get(upper.offset),
        Some(&t) if t >= v6_type::ECHO_REQUEST && t != v6_type::REDIRECT
    )
}

/// Neighbor Discovery options, as an iterator over a message whose option lengths
/// `new_checked` has verified.
#[derive(Debug, Clone)]
pub struct NdOptions<'a> {
    rest: &'a [u8],
}

/// One Neighbor Discovery option (RFC 4861 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdOption<'a> {
    /// Type ([`OPT_SOURCE_LL_ADDR`], [`OPT_TARGET_LL_ADDR`], ...).
    pub kind: u8,
    /// The bytes after Type and Length: Length * 8 - 2 of them.
    pub value: &'a [u8],
}

impl<'a> Iterator for NdOptions<'a> {
    type Item = NdOption<'a>;

    fn next(&mut self) -> Option<NdOption<'a>> {
        let len = usize::from(*self.rest.get(field::OPT_LEN)?) * field::OPT_UNIT;
        if len == 0 || len > self.rest.len() {
            // new_checked refused such messages; stop rather than trust the bytes.
            self.rest = &[];
            return None;
        }
        let (opt, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(NdOption {
            kind: opt[field::OPT_TYPE],
            value: &opt[field::OPT_VALUE..],
        })
    }
}

impl NdOptions<'_> {
    /// The link-layer address of the first option of `kind` that holds an Ethernet address
    /// (Length 1, RFC 2464 §6); others are ignored as RFC 4861 §4.6 has receivers do with
    /// what they do not understand.
    fn mac(self, kind: u8) -> Option<Mac> {
        self.filter(|o| o.kind == kind)
            .find_map(|o| Mac::try_from(o.value).ok())
    }
}

/// Checks the parts of a Neighbor Solicitation or Advertisement that the message itself
/// can show (RFC 4861 §7.1.1, §7.1.2): length, type, code 0, a target that is not
/// multicast, options of nonzero length that end with the message. The IPv6 Hop Limit
/// ([`ND_HOP_LIMIT`]), the checksum ([`Icmpv6Packet::checksum_ok`]) and the rules that need
/// the IPv6 addresses are the caller's.
fn check_nd(b: &[u8], msg_type: u8) -> Result<(), Malformed> {
    if b.len() < field::ND_OPTIONS {
        return Err(Malformed::Truncated);
    }
    if b[field::TYPE] != msg_type {
        return Err(Malformed::BadType);
    }
    if b[field::CODE] != 0 {
        return Err(Malformed::BadCode);
    }
    if b[field::ND_TARGET.start] == 0xff {
        return Err(Malformed::MulticastTarget);
    }
    let mut rest = &b[field::ND_OPTIONS..];
    while !rest.is_empty() {
        let len = rest.get(field::OPT_LEN).map_or(0, |&l| usize::from(l)) * field::OPT_UNIT;
        if len == 0 || len > rest.len() {
            return Err(Malformed::BadOptionLength);
        }
        rest = &rest[len..];
    }
    Ok(())
}

fn target(b: &[u8]) -> Ipv6Addr {
    let mut a = [0; 16];
    a.copy_from_slice(&b[field::ND_TARGET]);
    Ipv6Addr::from(a)
}

/// A view of a Neighbor Solicitation (RFC 4861 §4.3) whose length, code, target and
/// option lengths are checked.
#[derive(Debug, Clone, Copy)]
pub struct NeighborSolicit<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> NeighborSolicit<T> {
    /// Checks `buf`, the ICMPv6 message, as described at [`NeighborSolicit`]. A
    /// solicitation from the unspecified address (duplicate address detection) must carry
    /// no Source Link-Layer Address option (RFC 4861 §7.1.1): the caller checks that,
    /// knowing the source.
    pub fn new_checked(buf: T) -> Result<NeighborSolicit<T>, Malformed> {
        check_nd(buf.as_ref(), v6_type::NEIGHBOR_SOLICIT)?;
        Ok(NeighborSolicit { buf })
    }

    /// The address whose link-layer address is asked for.
    #[inline]
    pub fn target(&self) -> Ipv6Addr {
        target(self.buf.as_ref())
    }

    /// The options.
    #[inline]
    pub fn options(&self) -> NdOptions<'_> {
        NdOptions {
            rest: &self.buf.as_ref()[field::ND_OPTIONS..],
        }
    }

    /// The sender's MAC from the Source Link-Layer Address option, if any.
    #[inline]
    pub fn source_mac(&self) -> Option<Mac> {
        self.options().mac(OPT_SOURCE_LL_ADDR)
    }
}

/// The flags of a Neighbor Advertisement (RFC 4861 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NaFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in response to a solicitation.
    pub solicited: bool,
    /// O: the advertisement overrides an existing cache entry.
    pub overrides: bool,
}

/// A view of a Neighbor Advertisement (RFC 4861 §4.4) whose length, code, target and
/// option lengths are checked.
#[derive(Debug, Clone, Copy)]
pub struct NeighborAdvert<T: AsRef<[u8]>> {
    buf: T,
}

impl<T: AsRef<[u8]>> NeighborAdvert<T> {
    /// Checks `buf`, the ICMPv6 message, as described at [`NeighborAdvert`]. An
    /// advertisement sent to a multicast address must not have S set (RFC 4861 §7.1.2): the
    /// caller checks that, knowing the destination.
    pub fn new_checked(buf: T) -> Result<NeighborAdvert<T>, Malformed> {
        check_nd(buf.as_ref(), v6_type::NEIGHBOR_ADVERT)?;
        Ok(NeighborAdvert { buf })
    }

    /// The address whose link-layer address is advertised.
    #[inline]
    pub fn target(&self) -> Ipv6Addr {
        target(self.buf.as_ref())
    }

    /// The R, S and O flags.
    #[inline]
    pub fn flags(&self) -> NaFlags {
        let f = self.buf.as_ref()[field::ND_FLAGS];
        NaFlags {
            router: f & NA_ROUTER != 0,
            solicited: f & NA_SOLICITED != 0,
            overrides: f & NA_OVERRIDE != 0,
        }
    }

    /// The options.
    #[inline]
    pub fn options(&self) -> NdOptions<'_> {
        NdOptions {
            rest: &self.buf.as_ref()[field::ND_OPTIONS..],
        }
    }

    /// The target's MAC from the Target Link-Layer Address option, if any.
    #[inline]
    pub fn target_mac(&self) -> Option<Mac> {
        self.options().mac(OPT_TARGET_LL_ADDR)
    }
}

/// Writes an IPv6 packet carrying a solicitation or advertisement with at most one
/// link-layer address option; returns its length.
fn emit_nd(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    msg_type: u8,
    flags: u8,
    target: Ipv6Addr,
    option: Option<(u8, Mac)>,
) -> Option<usize> {
    let len = field::ND_OPTIONS + option.map_or(0, |_| field::OPT_UNIT);
    let total = ipv6::HEADER_LEN + len;
    let b = buf.get_mut(..total)?;
    let msg = &mut b[ipv6::HEADER_LEN..];
    msg[field::TYPE] = msg_type;
    msg[field::CODE] = 0;
    msg[field::CHECKSUM].copy_from_slice(&[0, 0]);
    msg[field::REST].copy_from_slice(&[flags, 0, 0, 0]);
    msg[field::ND_TARGET].copy_from_slice(&target.octets());
    if let Some((kind, mac)) = option {
        let o = &mut msg[field::ND_OPTIONS..];
        o[field::OPT_TYPE] = kind;
        o[field::OPT_LEN] = 1;
        o[field::OPT_VALUE..].copy_from_slice(&mac);
    }
    // len is 24 or 32.
    let pseudo = checksum::pseudo_header_v6(&src, &dst, ipv6::NEXT_ICMPV6, len as u32);
    let c = !checksum::sum(msg, u32::from(pseudo));
    msg[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    let repr = Ipv6Repr {
        src,
        dst,
        next_header: ipv6::NEXT_ICMPV6,
        hop_limit: ND_HOP_LIMIT,
        traffic_class: 0,
        flow_label: 0,
        payload_len: len as u16,
    };
    ipv6::emit(b, &repr)?;
    Some(total)
}

/// Writes an IPv6 packet with a Neighbor Solicitation for `target` (RFC 4861 §4.3) and
/// returns its length (72, or 64 without the option). `dst` is the target's
/// solicited-node address ([`ipv6::solicited_node`]) to resolve it, or the target itself
/// to check it is still reachable (RFC 4861 §7.2.2, §7.3.1). `source_mac`, the sender's
/// MAC, goes in a Source Link-Layer Address option; it must be None when `src` is
/// unspecified (duplicate address detection, RFC 4861 §4.3). None, and nothing written,
/// when it is not, or `buf` is too short.
pub fn emit_neighbor_solicit(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    source_mac: Option<Mac>,
) -> Option<usize> {
    if src.is_unspecified() && source_mac.is_some() {
        return None;
    }
    let option = source_mac.map(|m| (OPT_SOURCE_LL_ADDR, m));
    emit_nd(buf, src, dst, v6_type::NEIGHBOR_SOLICIT, 0, target, option)
}

/// Writes an IPv6 packet with a Neighbor Advertisement for `target` (RFC 4861 §4.4) and
/// returns its length (72, or 64 without the option). In answer to a solicitation, `dst`
/// is its source and `flags.solicited` is set; unsolicited, `dst` is all-nodes (ff02::1)
/// and S is clear (RFC 4861 §7.2.4, §7.2.6). `target_mac` goes in a Target Link-Layer
/// Address option. None, and nothing written, when `buf` is too short.
pub fn emit_neighbor_advert(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    target: Ipv6Addr,
    flags: NaFlags,
    target_mac: Option<Mac>,
) -> Option<usize> {
    let mut f = 0;
    if flags.router {
        f |= NA_ROUTER;
    }
    if flags.solicited {
        f |= NA_SOLICITED;
    }
    if flags.overrides {
        f |= NA_OVERRIDE;
    }
    let option = target_mac.map(|m| (OPT_TARGET_LL_ADDR, m));
    emit_nd(buf, src, dst, v6_type::NEIGHBOR_ADVERT, f, target, option)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    const HOST1: Mac = [0x02, 0, 0, 0, 0, 0x01];
    const HOST2: Mac = [0x02, 0, 0, 0, 0, 0x02];

    /// 10.0.0.1 pings 10.0.0.2 (the golden packet of ipv4.rs): IPv4 header, then an echo
    /// request with id 0x1234, seq 1, data "abcdefgh"; checksums computed independently.
    const PING: [u8; 36] = [
        0x45, 0x00, 0x00, 0x24, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x01, 0x0a, 0x91, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, // IPv4 header
        0x08, 0x00, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, // echo request, checksum 0x5435
        b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h',
    ];

    /// fe80::1 pings fe80::2: an ICMPv6 echo request, id 0xabcd, seq 7, data "ping";
    /// checksum 0xf80e over the pseudo-header, computed independently.
    const PING6: [u8; 12] = [
        0x80, 0x00, 0xf8, 0x0e, 0xab, 0xcd, 0x00, 0x07, b'p', b'i', b'n', b'g',
    ];

    /// fe80::1 (02:00:00:00:00:01) asks who has fe80::2: IPv6 header to the solicited-node
    /// address ff02::1:ff00:2, Hop Limit 255, then the solicitation with a Source
    /// Link-Layer Address option. Checksum 0x7a97, computed independently.
    fn ns_golden() -> Vec<u8> {
        let mut b = vec![0x60, 0, 0, 0, 0x00, 0x20, 58, 255];
        b.extend_from_slice(&ip6("fe80::1").octets());
        b.extend_from_slice(&ip6("ff02::1:ff00:2").octets());
        b.extend_from_slice(&[135, 0, 0x7a, 0x97, 0, 0, 0, 0]);
        b.extend_from_slice(&ip6("fe80::2").octets());
        b.extend_from_slice(&[1, 1, 0x02, 0, 0, 0, 0, 0x01]);
        b
    }

    /// fe80::2 answers: an advertisement to fe80::1 with S and O set and a Target
    /// Link-Layer Address option 02:00:00:00:00:02. Checksum 0x181a, computed
    /// independently.
    fn na_golden() -> Vec<u8> {
        let mut b = vec![0x60, 0, 0, 0, 0x00, 0x20, 58, 255];
        b.extend_from_slice(&ip6("fe80::2").octets());
        b.extend_from_slice(&ip6("fe80::1").octets());
        b.extend_from_slice(&[136, 0, 0x18, 0x1a, 0x60, 0, 0, 0]);
        b.extend_from_slice(&ip6("fe80::2").octets());
        b.extend_from_slice(&[2, 1, 0x02, 0, 0, 0, 0, 0x02]);
        b
    }

    #[test]
    fn parses_and_answers_a_ping() {
        let mut msg = PING[20..].to_vec();
        let mut m = Icmpv4Packet::new_checked(&mut msg[..]).unwrap();
        assert_eq!(m.msg_type(), v4_type::ECHO_REQUEST);
        assert_eq!(m.code(), 0);
        assert_eq!(m.checksum(), 0x5435);
        assert_eq!((m.echo_ident(), m.echo_seq()), (0x1234, 1));
        assert_eq!(m.rest_of_header(), [0x12, 0x34, 0x00, 0x01]);
        assert_eq!(m.data(), b"abcdefgh");
        assert!(m.checksum_ok());
        assert!(m.echo_reply_in_place());
        assert_eq!(m.msg_type(), v4_type::ECHO_REPLY);
        // Recomputed independently: 0x5c35.
        assert_eq!(m.checksum(), 0x5c35);
        assert!(m.checksum_ok());
        // A reply is not a request.
        assert!(!m.echo_reply_in_place());
        assert_eq!(msg[4..], PING[24..]);
    }

    #[test]
    fn an_all_zero_reply_gets_the_other_zero() {
        // An echo request with id 0, seq 0 and no data: its reply is all zero but the
        // checksum, which must be 0xffff (a receiver sums to 0x0000 otherwise).
        let mut msg = [8, 0, 0xf7, 0xff, 0, 0, 0, 0];
        let mut m = Icmpv4Packet::new_checked(&mut msg[..]).unwrap();
        assert!(m.checksum_ok());
        assert!(m.echo_reply_in_place());
        assert_eq!(m.checksum(), 0xffff);
        assert!(m.checksum_ok());
    }

    #[test]
    fn icmpv6_echo_checksum_and_reply() {
        let (a, b) = (ip6("fe80::1"), ip6("fe80::2"));
        let mut msg = PING6;
        let mut m = Icmpv6Packet::new_checked(&mut msg[..]).unwrap();
        assert_eq!(m.msg_type(), v6_type::ECHO_REQUEST);
        assert_eq!((m.echo_ident(), m.echo_seq()), (0xabcd, 7));
        assert_eq!(m.data(), b"ping");
        assert!(m.checksum_ok(&a, &b));
        assert!(!m.checksum_ok(&a, &ip6("fe80::3")));
        assert!(m.echo_reply_in_place());
        // Recomputed independently, with the addresses swapped: 0xf70e.
        assert_eq!(m.checksum(), 0xf70e);
        assert!(m.checksum_ok(&b, &a));
        // Refilled from a third address.
        assert!(m.fill_checksum(&ip6("fe80::3"), &a));
        assert!(m.checksum_ok(&ip6("fe80::3"), &a));
    }

    #[test]
    fn short_messages_are_refused() {
        assert_eq!(
            Icmpv4Packet::new_checked(&PING[20..27]).unwrap_err(),
            Malformed::Truncated
        );
        assert_eq!(
            Icmpv6Packet::new_checked(&PING6[..7]).unwrap_err(),
            Malformed::Truncated
        );
        assert!(Icmpv6Packet::new_checked(&PING6[..8]).is_ok());
    }

    #[test]
    fn time_exceeded_quotes_a_small_packet_whole() {
        let ping = Ipv4Packet::new_checked(&PING[..]).unwrap();
        let router = Ipv4Addr::new(10, 0, 0, 254);
        let mut buf = [0u8; 600];
        let err = Icmpv4Error::TimeExceeded(TIME_EXCEEDED_IN_TRANSIT);
        assert_eq!(emit_icmpv4_error(&mut buf, err, router, 0, &ping), Some(64));
        let ip = Ipv4Packet::new_checked(&buf[..64]).unwrap();
        assert_eq!(ip.src(), router);
        assert_eq!(ip.dst(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(ip.protocol(), ipv4::PROTO_ICMP);
        assert_eq!((ip.ttl(), ip.dscp_ecn(), ip.total_len()), (64, 0xc0, 64));
        // Both checksums, computed independently: 0x64ff and 0xf4ff.
        assert_eq!(ip.checksum(), 0x64ff);
        let m = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert_eq!((m.msg_type(), m.code()), (v4_type::TIME_EXCEEDED, 0));
        assert_eq!(m.checksum(), 0xf4ff);
        assert_eq!(m.rest_of_header(), [0; 4]);
        assert_eq!(m.data(), &PING[..]);
    }

    /// A 1500-byte IPv4 UDP packet from 192.0.2.1 with DF set, its payload counting up.
    fn big_v4() -> Vec<u8> {
        let mut b: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(198, 51, 100, 1),
            protocol: ipv4::PROTO_UDP,
            ttl: 10,
            dscp_ecn: 0,
            ident: 7,
            dont_fragment: true,
            payload_len: 1480,
        };
        ipv4::emit(&mut b, &repr).unwrap();
        b
    }

    #[test]
    fn frag_needed_quotes_up_to_576_bytes() {
        let big = big_v4();
        let p = Ipv4Packet::new_checked(&big[..]).unwrap();
        let mut buf = [0u8; 2000];
        let err = Icmpv4Error::FragNeeded { mtu: 1400 };
        let router = Ipv4Addr::new(192, 0, 2, 254);
        assert_eq!(emit_icmpv4_error(&mut buf, err, router, 9, &p), Some(576));
        let ip = Ipv4Packet::new_checked(&buf[..576]).unwrap();
        assert!(ip.header_checksum_ok());
        assert_eq!((ip.dst(), ip.ident()), (Ipv4Addr::new(192, 0, 2, 1), 9));
        let m = Icmpv4Packet::new_checked(ip.payload()).unwrap();
        assert!(m.checksum_ok());
        assert_eq!((m.msg_type(), m.code()), (3, 4));
        assert_eq!(m.next_hop_mtu(), 1400);
        assert_eq!(m.data(), &big[..548]);
        // A smaller buffer quotes less; one without room for header + 8 bytes, nothing.
        assert_eq!(
            emit_icmpv4_error(&mut buf[..100], err, router, 9, &p),
            Some(100)
        );
        let mut small = [0u8; 55];
        assert_eq!(emit_icmpv4_error(&mut small, err, router, 9, &p), None);
        assert_eq!(small, [0; 55]);
        assert_eq!(
            emit_icmpv4_error(&mut buf[..56], err, router, 9, &p),
            Some(56)
        );
        // Port unreachable carries no MTU.
        let err = Icmpv4Error::Unreachable(v4_unreachable::PORT);
        emit_icmpv4_error(&mut buf, err, router, 9, &p).unwrap();
        assert_eq!(&buf[20..28], &[3, 3, buf[22], buf[23], 0, 0, 0, 0]);
    }

    /// A 1500-byte IPv6 UDP packet from 2001:db8::1, its payload counting up.
    fn big_v6() -> Vec<u8> {
        let mut b: Vec<u8> = (0..1500u32).map(|i| i as u8).collect();
        let repr = Ipv6Repr {
            src: ip6("2001:db8::1"),
            dst: ip6("2001:db8:1::1"),
            next_header: ipv4::PROTO_UDP,
            hop_limit: 10,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 1460,
        };
        ipv6::emit(&mut b, &repr).unwrap();
        b
    }

    #[test]
    fn packet_too_big_quotes_up_to_1280_bytes() {
        let big = big_v6();
        let p = Ipv6Packet::new_checked(&big[..]).unwrap();
        let router = ip6("2001:db8::ff");
        let mut buf = [0u8; 2000];
        let err = Icmpv6Error::PacketTooBig { mtu: 1400 };
        assert_eq!(emit_icmpv6_error(&mut buf, err, router, &p), Some(1280));
        let ip = Ipv6Packet::new_checked(&buf[..1280]).unwrap();
        assert_eq!((ip.src(), ip.dst()), (router, ip6("2001:db8::1")));
        assert_eq!((ip.next_header(), ip.hop_limit()), (58, 64));
        let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(m.checksum_ok(&router, &ip6("2001:db8::1")));
        assert_eq!((m.msg_type(), m.code(), m.mtu()), (2, 0, 1400));
        assert_eq!(m.data(), &big[..1232]);

        let err = Icmpv6Error::TimeExceeded(TIME_EXCEEDED_IN_TRANSIT);
        assert_eq!(
            emit_icmpv6_error(&mut buf[..200], err, router, &p),
            Some(200)
        );
        let m = Icmpv6Packet::new_checked(&buf[40..200]).unwrap();
        assert_eq!((m.msg_type(), m.code(), m.mtu()), (3, 0, 0));
        assert!(m.checksum_ok(&router, &ip6("2001:db8::1")));
        let mut small = [0u8; 95];
        assert_eq!(emit_icmpv6_error(&mut small, err, router, &p), None);
        assert_eq!(small, [0; 95]);
    }

    #[test]
    fn icmpv4_error_policy() {
        let ping = Ipv4Packet::new_checked(&PING[..]).unwrap();
        assert!(may_send_icmpv4_error(&ping));
        // About an ICMP error: never.
        let mut buf = [0u8; 100];
        let router = Ipv4Addr::new(10, 0, 0, 254);
        let err = Icmpv4Error::TimeExceeded(0);
        let n = emit_icmpv4_error(&mut buf, err, router, 0, &ping).unwrap();
        assert!(!may_send_icmpv4_error(
            &Ipv4Packet::new_checked(&buf[..n]).unwrap()
        ));
        // A non-first fragment, odd sources and destinations: never.
        let with = |at: usize, bytes: &[u8]| {
            let mut b = PING;
            b[at..at + bytes.len()].copy_from_slice(bytes);
            may_send_icmpv4_error(&Ipv4Packet::new_checked(&b[..]).unwrap())
        };
        assert!(!with(6, &[0x00, 0x10]));
        assert!(with(6, &[0x20, 0x00])); // the first fragment is fine
        for src in [[0, 0, 0, 0], [127, 0, 0, 1], [224, 0, 0, 1], [255; 4]] {
            assert!(!with(12, &src));
        }
        for dst in [[224, 0, 0, 5], [255; 4]] {
            assert!(!with(16, &dst));
        }
        // An ICMP payload too short to show its type counts as an error.
        let mut b = PING;
        b[2..4].copy_from_slice(&20u16.to_be_bytes());
        assert!(!may_send_icmpv4_error(
            &Ipv4Packet::new_checked(&b[..]).unwrap()
        ));
    }

    #[test]
    fn icmpv6_error_policy() {
        let te = Icmpv6Error::TimeExceeded(0);
        let ptb = Icmpv6Error::PacketTooBig { mtu: 1280 };
        let big = big_v6();
        let p = Ipv6Packet::new_checked(&big[..]).unwrap();
        assert!(may_send_icmpv6_error(&p, te));
        // Multicast destination: only Packet Too Big.
        let mut mc = big.clone();
        mc[24..40].copy_from_slice(&ip6("ff05::1:3").octets());
        let m = Ipv6Packet::new_checked(&mc[..]).unwrap();
        assert!(!may_send_icmpv6_error(&m, te));
        assert!(may_send_icmpv6_error(&m, ptb));
        // Unspecified source.
        let mut un = big.clone();
        un[8..24].copy_from_slice(&[0; 16]);
        assert!(!may_send_icmpv6_error(
            &Ipv6Packet::new_checked(&un[..]).unwrap(),
            ptb
        ));
        // ICMPv6: fine about an echo request or a solicitation, never about an error or a
        // redirect.
        let mut icmp = big.clone();
        icmp[6] = ipv6::NEXT_ICMPV6;
        for (t, ok) in [
            (128, true),
            (135, true),
            (1, false),
            (3, false),
            (137, false),
        ] {
            icmp[40] = t;
            let q = Ipv6Packet::new_checked(&icmp[..]).unwrap();
            assert_eq!(may_send_icmpv6_error(&q, te), ok, "type {t}");
        }
        // A chain that cannot be walked.
        let mut bad = big.clone();
        bad[6] = ipv6::NEXT_HOP_BY_HOP;
        bad[41] = 255; // 2048 bytes of options
        assert!(!may_send_icmpv6_error(
            &Ipv6Packet::new_checked(&bad[..]).unwrap(),
            te
        ));
    }

    #[test]
    fn parses_and_builds_a_solicitation() {
        let golden = ns_golden();
        let ip = Ipv6Packet::new_checked(&golden[..]).unwrap();
        assert_eq!(ip.hop_limit(), ND_HOP_LIMIT);
        let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(m.checksum_ok(&ip.src(), &ip.dst()));
        let ns = NeighborSolicit::new_checked(ip.payload()).unwrap();
        assert_eq!(ns.target(), ip6("fe80::2"));
        assert_eq!(ns.source_mac(), Some(HOST1));
        assert_eq!(
            ns.options().collect::<Vec<_>>(),
            vec![NdOption {
                kind: OPT_SOURCE_LL_ADDR,
                value: &HOST1
            }]
        );
        let target = ip6("fe80::2");
        let dst = ipv6::solicited_node(&target);
        let mut buf = [0u8; 100];
        let n = emit_neighbor_solicit(&mut buf, ip6("fe80::1"), dst, target, Some(HOST1));
        assert_eq!(n, Some(72));
        assert_eq!(&buf[..72], &golden[..]);
        // Duplicate address detection: from ::, no option.
        let n = emit_neighbor_solicit(&mut buf, Ipv6Addr::UNSPECIFIED, dst, target, None);
        assert_eq!(n, Some(64));
        let ns = NeighborSolicit::new_checked(&buf[40..64]).unwrap();
        assert_eq!(ns.source_mac(), None);
        assert_eq!(
            emit_neighbor_solicit(&mut buf, Ipv6Addr::UNSPECIFIED, dst, target, Some(HOST1)),
            None
        );
        assert_eq!(
            emit_neighbor_solicit(&mut buf[..71], ip6("fe80::1"), dst, target, Some(HOST1)),
            None
        );
    }

    #[test]
    fn parses_and_builds_an_advertisement() {
        let golden = na_golden();
        let ip = Ipv6Packet::new_checked(&golden[..]).unwrap();
        let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(m.checksum_ok(&ip.src(), &ip.dst()));
        let na = NeighborAdvert::new_checked(ip.payload()).unwrap();
        assert_eq!(na.target(), ip6("fe80::2"));
        let flags = NaFlags {
            router: false,
            solicited: true,
            overrides: true,
        };
        assert_eq!(na.flags(), flags);
        assert_eq!(na.target_mac(), Some(HOST2));
        let mut buf = [0u8; 72];
        let n = emit_neighbor_advert(
            &mut buf,
            ip6("fe80::2"),
            ip6("fe80::1"),
            ip6("fe80::2"),
            flags,
            Some(HOST2),
        );
        assert_eq!(n, Some(72));
        assert_eq!(&buf[..], &golden[..]);
        // A solicitation is not an advertisement, and the other way round.
        assert_eq!(
            NeighborSolicit::new_checked(ip.payload()).unwrap_err(),
            Malformed::BadType
        );
        assert_eq!(
            NeighborAdvert::new_checked(&ns_golden()[40..]).unwrap_err(),
            Malformed::BadType
        );
    }

    #[test]
    fn nd_options_are_walked_and_checked() {
        let golden = ns_golden();
        let msg = &golden[40..];
        let check = |b: &[u8]| NeighborSolicit::new_checked(b).map(|_| ());
        // Option length 0: malformed (RFC 4861 §7.1.1).
        let mut zero = msg.to_vec();
        zero[25] = 0;
        assert_eq!(check(&zero), Err(Malformed::BadOptionLength));
        // Length 2 where 8 bytes remain.
        let mut long = msg.to_vec();
        long[25] = 2;
        assert_eq!(check(&long), Err(Malformed::BadOptionLength));
        // A partial option after a whole one.
        let mut tail = msg.to_vec();
        tail.extend_from_slice(&[1, 1, 0]);
        assert_eq!(check(&tail), Err(Malformed::BadOptionLength));
        // Code, target, length.
        let mut code = msg.to_vec();
        code[1] = 1;
        assert_eq!(check(&code), Err(Malformed::BadCode));
        let mut mc = msg.to_vec();
        mc[8..24].copy_from_slice(&ip6("ff02::1").octets());
        assert_eq!(check(&mc), Err(Malformed::MulticastTarget));
        assert_eq!(check(&msg[..23]), Err(Malformed::Truncated));
        // An unknown option (a nonce, RFC 3971 type 14, length 1), then the address: the
        // MAC is still found, and a 16-byte link-layer option is not taken for Ethernet.
        let mut more = msg[..24].to_vec();
        more.extend_from_slice(&[14, 1, 1, 2, 3, 4, 5, 6]);
        more.extend_from_slice(&[1, 2, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]);
        more.extend_from_slice(&msg[24..]);
        let ns = NeighborSolicit::new_checked(&more[..]).unwrap();
        assert_eq!(ns.options().count(), 3);
        assert_eq!(ns.source_mac(), Some(HOST1));
    }

    /// Calls every accessor of the views that accept `b`, walking the options.
    fn touch_all(b: &[u8]) {
        if let Ok(m) = Icmpv4Packet::new_checked(b) {
            let _ = (m.msg_type(), m.code(), m.checksum(), m.rest_of_header());
            let _ = (
                m.echo_ident(),
                m.echo_seq(),
                m.next_hop_mtu(),
                m.checksum_ok(),
            );
            assert_eq!(m.data().len(), b.len() - HEADER_LEN);
        }
        if let Ok(m) = Icmpv6Packet::new_checked(b) {
            let _ = (m.msg_type(), m.code(), m.checksum(), m.rest_of_header());
            let _ = (m.echo_ident(), m.echo_seq(), m.mtu());
            let _ = m.checksum_ok(&Ipv6Addr::LOCALHOST, &Ipv6Addr::LOCALHOST);
            assert_eq!(m.data().len(), b.len() - HEADER_LEN);
        }
        let option_bytes = |o: NdOptions| o.map(|o| o.value.len() + 2).sum::<usize>();
        if let Ok(ns) = NeighborSolicit::new_checked(b) {
            assert!(!ns.target().is_multicast());
            let _ = ns.source_mac();
            assert_eq!(option_bytes(ns.options()), b.len() - 24);
        }
        if let Ok(na) = NeighborAdvert::new_checked(b) {
            let _ = (na.target(), na.flags(), na.target_mac());
            assert_eq!(option_bytes(na.options()), b.len() - 24);
        }
    }

    /// A solicitation with random target and options (kind, length 1-3, random value),
    /// and the offsets where an option ends (where a truncation is a whole message).
    fn solicitation() -> impl Strategy<Value = (Vec<u8>, Vec<usize>)> {
        let option = (any::<u8>(), 1u8..4, any::<u8>());
        (any::<[u8; 16]>(), proptest::collection::vec(option, 0..5)).prop_map(|(t, opts)| {
            let mut b = vec![135, 0, 0, 0, 0, 0, 0, 0];
            b.extend_from_slice(&t);
            b[8] &= 0x7f; // not multicast
            let mut ends = vec![b.len()];
            for (kind, len, fill) in opts {
                b.extend_from_slice(&[kind, len]);
                b.resize(b.len() + 8 * usize::from(len) - 2, fill);
                ends.push(b.len());
            }
            (b, ends)
        })
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..80),
                                    nd in prop::sample::select(vec![0u8, 135, 136])) {
            // Two thirds of the cases look like a solicitation or advertisement.
            if nd != 0 && b.len() >= 9 {
                b[0] = nd;
                b[1] = 0;
                b[8] &= 0x7f;
            }
            touch_all(&b);
        }

        #[test]
        fn every_truncation_of_a_solicitation((b, ends) in solicitation()) {
            for n in 0..=b.len() {
                touch_all(&b[..n]);
                let r = NeighborSolicit::new_checked(&b[..n]).map(|_| ());
                if n < 24 {
                    prop_assert_eq!(r, Err(Malformed::Truncated));
                } else if ends.contains(&n) {
                    prop_assert_eq!(r, Ok(()));
                } else {
                    prop_assert_eq!(r, Err(Malformed::BadOptionLength));
                }
            }
        }

        #[test]
        fn echo_reply_updates_equal_recomputation(ident: u16, seq: u16,
                                                  data in proptest::collection::vec(any::<u8>(), 0..64),
                                                  code in 0u8..2,
                                                  src: [u8; 16], dst: [u8; 16]) {
            // ICMPv4 (the all-zero reply, which these strategies reach only by chance, has
            // its own unit test).
            let mut msg = vec![8, code, 0, 0];
            msg.extend_from_slice(&ident.to_be_bytes());
            msg.extend_from_slice(&seq.to_be_bytes());
            msg.extend_from_slice(&data);
            let mut m = Icmpv4Packet::new_checked(&mut msg[..]).unwrap();
            m.fill_checksum();
            prop_assert!(m.echo_reply_in_place());
            let updated = m.checksum();
            m.fill_checksum();
            prop_assert_eq!(updated, m.checksum());

            // ICMPv6, the reply going back the other way.
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            msg[0] = v6_type::ECHO_REQUEST;
            let mut m = Icmpv6Packet::new_checked(&mut msg[..]).unwrap();
            prop_assert!(m.fill_checksum(&src, &dst));
            prop_assert!(m.echo_reply_in_place());
            prop_assert_eq!(m.msg_type(), v6_type::ECHO_REPLY);
            let updated = m.checksum();
            prop_assert!(m.fill_checksum(&dst, &src));
            prop_assert_eq!(updated, m.checksum());
        }

        #[test]
        fn icmpv4_errors_quote_what_fits(payload in 0usize..1600, ihl in 5u8..16,
                                         buf_len in 0usize..700, ttl_or_mtu: u16,
                                         kind in 0u8..3) {
            // An offending packet with `ihl` words of header (options zero), payload
            // counting up, 4 bytes of link padding.
            let hl = usize::from(ihl) * 4;
            let mut off: Vec<u8> = (0..hl + payload + 4).map(|i| i as u8).collect();
            let repr = Ipv4Repr {
                src: Ipv4Addr::new(192, 0, 2, 1),
                dst: Ipv4Addr::new(198, 51, 100, 7),
                protocol: ipv4::PROTO_UDP,
                ttl: 1,
                dscp_ecn: 0,
                ident: 1,
                dont_fragment: true,
                payload_len: 0,
            };
            ipv4::emit(&mut off, &repr).unwrap();
            off[0] = 0x40 | ihl;
            off[2..4].copy_from_slice(&((hl + payload) as u16).to_be_bytes());
            let mut p = Ipv4Packet::new_checked(&mut off[..]).unwrap();
            p.fill_checksum();
            let p = Ipv4Packet::new_checked(&off[..]).unwrap();
            let error = match kind {
                0 => Icmpv4Error::TimeExceeded(0),
                1 => Icmpv4Error::FragNeeded { mtu: ttl_or_mtu },
                _ => Icmpv4Error::Unreachable(v4_unreachable::HOST),
            };
            let router = Ipv4Addr::new(192, 0, 2, 254);
            let mut buf = vec![0u8; buf_len];
            let packet_len = hl + payload;
            match emit_icmpv4_error(&mut buf, error, router, 5, &p) {
                None => {
                    prop_assert!(buf_len < 28 + packet_len.min(hl + 8));
                    prop_assert!(buf.iter().all(|&b| b == 0));
                }
                Some(n) => {
                    let quoted = packet_len.min(548).min(buf_len - 28);
                    prop_assert_eq!(n, 28 + quoted);
                    let ip = Ipv4Packet::new_checked(&buf[..n]).unwrap();
                    prop_assert!(ip.header_checksum_ok());
                    prop_assert_eq!((ip.src(), ip.dst()), (router, repr.src));
                    prop_assert_eq!(usize::from(ip.total_len()), n);
                    let m = Icmpv4Packet::new_checked(ip.payload()).unwrap();
                    prop_assert!(m.checksum_ok());
                    prop_assert_eq!(m.data(), &off[..quoted]);
                    let (t, c, mtu) = match error {
                        Icmpv4Error::TimeExceeded(c) => (11, c, 0),
                        Icmpv4Error::FragNeeded { mtu } => (3, 4, mtu),
                        Icmpv4Error::Unreachable(c) => (3, c, 0),
                    };
                    prop_assert_eq!((m.msg_type(), m.code(), m.next_hop_mtu()), (t, c, mtu));
                }
            }
        }

        #[test]
        fn icmpv6_errors_quote_what_fits(payload in 0usize..1600, buf_len in 0usize..1400,
                                         mtu: u32, kind in 0u8..3) {
            let mut off: Vec<u8> = (0..40 + payload + 4).map(|i| i as u8).collect();
            let repr = Ipv6Repr {
                src: ip6("2001:db8::1"),
                dst: ip6("2001:db8:1::7"),
                next_header: ipv4::PROTO_UDP,
                hop_limit: 1,
                traffic_class: 0,
                flow_label: 0,
                payload_len: payload as u16,
            };
            ipv6::emit(&mut off, &repr).unwrap();
            let p = Ipv6Packet::new_checked(&off[..]).unwrap();
            let error = match kind {
                0 => Icmpv6Error::TimeExceeded(0),
                1 => Icmpv6Error::PacketTooBig { mtu },
                _ => Icmpv6Error::Unreachable(v6_unreachable::ADDRESS),
            };
            let router = ip6("2001:db8::ff");
            let mut buf = vec![0u8; buf_len];
            let packet_len = 40 + payload;
            match emit_icmpv6_error(&mut buf, error, router, &p) {
                None => {
                    prop_assert!(buf_len < 48 + packet_len.min(48));
                    prop_assert!(buf.iter().all(|&b| b == 0));
                }
                Some(n) => {
                    let quoted = packet_len.min(1232).min(buf_len - 48);
                    prop_assert_eq!(n, 48 + quoted);
                    let ip = Ipv6Packet::new_checked(&buf[..n]).unwrap();
                    prop_assert_eq!((ip.src(), ip.dst()), (router, repr.src));
                    prop_assert_eq!(usize::from(ip.payload_len()) + 40, n);
                    let m = Icmpv6Packet::new_checked(ip.payload()).unwrap();
                    prop_assert!(m.checksum_ok(&router, &repr.src));
                    prop_assert_eq!(m.data(), &off[..quoted]);
                    let (t, c, rest) = match error {
                        Icmpv6Error::TimeExceeded(c) => (3, c, 0),
                        Icmpv6Error::PacketTooBig { mtu } => (2, 0, mtu),
                        Icmpv6Error::Unreachable(c) => (1, c, 0),
                    };
                    prop_assert_eq!((m.msg_type(), m.code(), m.mtu()), (t, c, rest));
                }
            }
        }

        #[test]
        fn nd_builders_round_trip(src: [u8; 16], dst: [u8; 16], target: [u8; 16],
                                  mac: Option<Mac>, router: bool, solicited: bool,
                                  overrides: bool) {
            let (src, dst) = (Ipv6Addr::from(src), Ipv6Addr::from(dst));
            let mut target = target;
            target[0] &= 0x7f;
            let target = Ipv6Addr::from(target);
            let mut buf = [0u8; 80];

            let n = emit_neighbor_solicit(&mut buf, src, dst, target, mac);
            if src.is_unspecified() && mac.is_some() {
                prop_assert_eq!(n, None);
            } else {
                let n = n.unwrap();
                prop_assert_eq!(n, if mac.is_some() { 72 } else { 64 });
                let ip = Ipv6Packet::new_checked(&buf[..n]).unwrap();
                prop_assert_eq!((ip.src(), ip.dst(), ip.hop_limit()), (src, dst, 255));
                prop_assert!(Icmpv6Packet::new_checked(ip.payload()).unwrap().checksum_ok(&src, &dst));
                let ns = NeighborSolicit::new_checked(ip.payload()).unwrap();
                prop_assert_eq!(ns.target(), target);
                prop_assert_eq!(ns.source_mac(), mac);
            }

            let flags = NaFlags { router, solicited, overrides };
            let n = emit_neighbor_advert(&mut buf, src, dst, target, flags, mac).unwrap();
            let ip = Ipv6Packet::new_checked(&buf[..n]).unwrap();
            prop_assert_eq!((ip.src(), ip.dst(), ip.hop_limit()), (src, dst, 255));
            prop_assert!(Icmpv6Packet::new_checked(ip.payload()).unwrap().checksum_ok(&src, &dst));
            let na = NeighborAdvert::new_checked(ip.payload()).unwrap();
            prop_assert_eq!(na.target(), target);
            prop_assert_eq!(na.flags(), flags);
            prop_assert_eq!(na.target_mac(), mac);
        }
    }
}
