//! ARP for IPv4 over Ethernet (RFC 826), the only kind a router on Ethernet speaks.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       Hardware type (1)       |     Protocol type (0x0800)    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |   HW len (6)  | Proto len (4) |   Operation (1 req, 2 reply)  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               Sender hardware address, bytes 0-3              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Sender hw address, 4-5    |  Sender protocol address, 0-1 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Sender protocol address, 2-3 |     Target hw address, 0-1    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               Target hardware address, bytes 2-5              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Target protocol address                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! 28 bytes at offsets 0 htype, 2 ptype, 4 hlen, 5 plen, 6 op, 8 sha, 14 spa, 18 tha,
//! 24 tpa. Hardware type 1 is Ethernet and the operation codes are IANA's "ARP
//! Parameters". A frame carrying ARP is padded to the Ethernet minimum, so the buffer may
//! be longer than 28 bytes. Gratuitous ARP and ARP probes: RFC 5227 §1.1, §2.1.1.

use std::net::Ipv4Addr;
use std::ops::Range;

use super::ethernet::Mac;

/// Ethertype of ARP (RFC 826; IEEE 802 numbers).
pub const ETHERTYPE_ARP: u16 = 0x0806;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = field::PACKET;

/// Hardware type of Ethernet (RFC 826; IANA "Hardware Types").
const HTYPE_ETHERNET: u16 = 1;
/// Protocol type of IPv4: its ethertype.
const PTYPE_IPV4: u16 = 0x0800;

/// Byte ranges of the fields (for hardware length 6 and protocol length 4).
mod field {
    use std::ops::Range;
    pub const HTYPE: Range<usize> = 0..2;
    pub const PTYPE: Range<usize> = 2..4;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: Range<usize> = 6..8;
    pub const SHA: Range<usize> = 8..14;
    pub const SPA: Range<usize> = 14..18;
    pub const THA: Range<usize> = 18..24;
    pub const TPA: Range<usize> = 24..28;
    pub const PACKET: usize = 28;
}

/// An ARP operation (RFC 826: request 1, reply 2; others, such as RARP's 3 and 4, RFC 903,
/// are carried as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Who has the target protocol address?
    Request,
    /// The sender has the sender protocol address.
    Reply,
    /// Any other code.
    Other(u16),
}

impl Operation {
    fn code(self) -> u16 {
        match self {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Other(c) => c,
        }
    }
}

/// Why a packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than 28 bytes.
    Truncated,
    /// Hardware type not Ethernet (1) or hardware length not 6.
    BadHardware,
    /// Protocol type not IPv4 (0x0800) or protocol length not 4.
    BadProtocol,
}

/// A view of an ARP packet known to be Ethernet/IPv4 and at least 28 bytes long.
#[derive(Debug, Clone, Copy)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buf: T,
}

#[inline]
fn be16(b: &[u8], r: Range<usize>) -> u16 {
    u16::from_be_bytes([b[r.start], b[r.start + 1]])
}

#[inline]
fn mac(b: &[u8], r: Range<usize>) -> Mac {
    let mut m = [0; 6];
    m.copy_from_slice(&b[r]);
    m
}

#[inline]
fn ip(b: &[u8], r: Range<usize>) -> Ipv4Addr {
    Ipv4Addr::new(b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3])
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Checks the length and that the packet maps IPv4 addresses to Ethernet addresses.
    pub fn new_checked(buf: T) -> Result<ArpPacket<T>, Malformed> {
        let b = buf.as_ref();
        if b.len() < field::PACKET {
            return Err(Malformed::Truncated);
        }
        if be16(b, field::HTYPE) != HTYPE_ETHERNET || b[field::HLEN] != 6 {
            return Err(Malformed::BadHardware);
        }
        if be16(b, field::PTYPE) != PTYPE_IPV4 || b[field::PLEN] != 4 {
            return Err(Malformed::BadProtocol);
        }
        Ok(ArpPacket { buf })
    }

    fn b(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// The operation.
    #[inline]
    pub fn op(&self) -> Operation {
        match be16(self.b(), field::OPER) {
            1 => Operation::Request,
            2 => Operation::Reply,
            c => Operation::Other(c),
        }
    }

    /// Sender hardware address.
    #[inline]
    pub fn sender_mac(&self) -> Mac {
        mac(self.b(), field::SHA)
    }

    /// Sender protocol address.
    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        ip(self.b(), field::SPA)
    }

    /// Target hardware address (in a request, zero or anything: RFC 826 leaves it open).
    #[inline]
    pub fn target_mac(&self) -> Mac {
        mac(self.b(), field::THA)
    }

    /// Target protocol address.
    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        ip(self.b(), field::TPA)
    }

    /// Whether this is a gratuitous ARP (an announcement, RFC 5227 §1.1 and §3): sender and
    /// target protocol addresses are the same, as a request or a reply.
    #[inline]
    pub fn is_gratuitous(&self) -> bool {
        self.b()[field::SPA] == self.b()[field::TPA]
    }

    /// Whether this is an ARP probe (RFC 5227 §2.1.1): a sender protocol address of
    /// 0.0.0.0, from a host checking that the target address is free. Nothing may be
    /// learned from it.
    #[inline]
    pub fn is_probe(&self) -> bool {
        self.sender_ip().is_unspecified()
    }
}

/// Writes the 28 bytes of an ARP packet and returns 28; None, and nothing written, when
/// `buf` is shorter.
fn emit(
    buf: &mut [u8],
    op: Operation,
    sender: (Mac, Ipv4Addr),
    target: (Mac, Ipv4Addr),
) -> Option<usize> {
    let b = buf.get_mut(..field::PACKET)?;
    b[field::HTYPE].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
    b[field::PTYPE].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
    b[field::HLEN] = 6;
    b[field::PLEN] = 4;
    b[field::OPER].copy_from_slice(&op.code().to_be_bytes());
    b[field::SHA].copy_from_slice(&sender.0);
    b[field::SPA].copy_from_slice(&sender.1.octets());
    b[field::THA].copy_from_slice(&target.0);
    b[field::TPA].copy_from_slice(&target.1.octets());
    Some(field::PACKET)
}

/// Writes a request asking who has `target_ip`, from `sender_mac` / `sender_ip`, with a
/// zero target hardware address (RFC 5227 §2.1.1 asks for zero), and returns 28. A
/// gratuitous request has `target_ip == sender_ip`. The Ethernet header (broadcast
/// destination) is the caller's. None, and nothing written, when `buf` is shorter than 28.
pub fn emit_request(
    buf: &mut [u8],
    sender_mac: Mac,
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
) -> Option<usize> {
    emit(
        buf,
        Operation::Request,
        (sender_mac, sender_ip),
        ([0; 6], target_ip),
    )
}

/// Writes the reply to `request` saying that its target protocol address is at
/// `our_mac` (RFC 826, "Packet Reception": the sender fields become the target fields),
/// and returns 28. Whether to answer (the address is ours, or proxied) is the caller's.
/// None, and nothing written, when `buf` is shorter than 28.
pub fn emit_reply<R: AsRef<[u8]>>(
    buf: &mut [u8],
    request: &ArpPacket<R>,
    our_mac: Mac,
) -> Option<usize> {
    emit(
        buf,
        Operation::Reply,
        (our_mac, request.target_ip()),
        (request.sender_mac(), request.sender_ip()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOST1: Mac = [0x02, 0, 0, 0, 0, 0x01];
    const HOST2: Mac = [0x02, 0, 0, 0, 0, 0x02];

    /// "Who has 10.0.0.2? Tell 10.0.0.1" from 02:00:00:00:00:01, target MAC zero, as
    /// Linux sends it.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // Ethernet, IPv4, 6, 4, request
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2, // target
    ];

    /// "10.0.0.2 is at 02:00:00:00:00:02", to 10.0.0.1.
    const REPLY: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // Ethernet, IPv4, 6, 4, reply
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 10, 0, 0, 2, // sender
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 10, 0, 0, 1, // target
    ];

    #[test]
    fn parses_a_request() {
        let a = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        assert_eq!(a.op(), Operation::Request);
        assert_eq!(a.sender_mac(), HOST1);
        assert_eq!(a.sender_ip(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(a.target_mac(), [0; 6]);
        assert_eq!(a.target_ip(), Ipv4Addr::new(10, 0, 0, 2));
        assert!(!a.is_gratuitous() && !a.is_probe());
    }

    #[test]
    fn accepts_ethernet_padding() {
        // In a minimum Ethernet frame, 18 bytes of padding follow the 28.
        let mut b = [0u8; 46];
        b[..28].copy_from_slice(&REQUEST);
        assert_eq!(
            ArpPacket::new_checked(&b[..]).unwrap().target_ip(),
            Ipv4Addr::new(10, 0, 0, 2)
        );
    }

    #[test]
    fn builds_the_request_and_its_reply() {
        let mut b = [0u8; 28];
        assert_eq!(
            emit_request(
                &mut b,
                HOST1,
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2)
            ),
            Some(28)
        );
        assert_eq!(b, REQUEST);
        let req = ArpPacket::new_checked(&REQUEST[..]).unwrap();
        let mut r = [0u8; 28];
        assert_eq!(emit_reply(&mut r, &req, HOST2), Some(28));
        assert_eq!(r, REPLY);
        let reply = ArpPacket::new_checked(&r[..]).unwrap();
        assert_eq!(reply.op(), Operation::Reply);
        assert_eq!(reply.sender_mac(), HOST2);
        // Too short a buffer: refused, nothing written.
        let mut short = [0u8; 27];
        assert_eq!(emit_reply(&mut short, &req, HOST2), None);
        assert_eq!(short, [0; 27]);
    }

    #[test]
    fn gratuitous_and_probe() {
        // An announcement of 10.0.0.1 (RFC 5227 §2.3): sender IP == target IP.
        let mut b = [0u8; 28];
        let me = Ipv4Addr::new(10, 0, 0, 1);
        emit_request(&mut b, HOST1, me, me).unwrap();
        assert!(ArpPacket::new_checked(&b[..]).unwrap().is_gratuitous());
        // A probe for 10.0.0.1 (RFC 5227 §2.1.1): sender IP 0.0.0.0.
        emit_request(&mut b, HOST1, Ipv4Addr::UNSPECIFIED, me).unwrap();
        let p = ArpPacket::new_checked(&b[..]).unwrap();
        assert!(p.is_probe() && !p.is_gratuitous());
    }

    #[test]
    fn refuses_other_kinds_and_short_packets() {
        let check = |b: &[u8]| ArpPacket::new_checked(b).map(|_| ());
        assert_eq!(check(&REQUEST[..27]), Err(Malformed::Truncated));
        let mut b = REQUEST;
        b[1] = 6; // IEEE 802 networks
        assert_eq!(check(&b), Err(Malformed::BadHardware));
        let mut b = REQUEST;
        b[4] = 8; // 8-byte hardware addresses
        assert_eq!(check(&b), Err(Malformed::BadHardware));
        let mut b = REQUEST;
        b[2..4].copy_from_slice(&[0x86, 0xdd]); // IPv6
        assert_eq!(check(&b), Err(Malformed::BadProtocol));
        let mut b = REQUEST;
        b[5] = 16;
        assert_eq!(check(&b), Err(Malformed::BadProtocol));
        // A RARP request (RFC 903, op 3) is still an Ethernet/IPv4 packet.
        let mut b = REQUEST;
        b[7] = 3;
        assert_eq!(
            ArpPacket::new_checked(&b[..]).unwrap().op(),
            Operation::Other(3)
        );
    }

    fn touch_all<T: AsRef<[u8]>>(a: &ArpPacket<T>) {
        let _ = (
            a.op(),
            a.sender_mac(),
            a.sender_ip(),
            a.target_mac(),
            a.target_ip(),
        );
        assert_eq!(a.is_gratuitous(), a.sender_ip() == a.target_ip());
        let _ = a.is_probe();
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(mut b in proptest::collection::vec(any::<u8>(), 0..64),
                                    fix: bool) {
            // Half the cases get a valid fixed part so the accessors run.
            if fix && b.len() >= 6 {
                b[..6].copy_from_slice(&REQUEST[..6]);
            }
            if let Ok(a) = ArpPacket::new_checked(&b[..]) {
                prop_assert!(b.len() >= PACKET_LEN);
                touch_all(&a);
            }
        }

        #[test]
        fn every_truncation_is_refused(pad in 0usize..32) {
            let mut b = REQUEST.to_vec();
            b.resize(28 + pad, 0);
            for n in 0..=b.len() {
                match ArpPacket::new_checked(&b[..n]) {
                    Ok(a) => {
                        prop_assert!(n >= PACKET_LEN);
                        touch_all(&a);
                    }
                    Err(e) => {
                        prop_assert!(n < PACKET_LEN);
                        prop_assert_eq!(e, Malformed::Truncated);
                    }
                }
            }
        }

        #[test]
        fn builders_round_trip(smac: Mac, sip: [u8; 4], tip: [u8; 4], our: Mac) {
            let (sip, tip) = (Ipv4Addr::from(sip), Ipv4Addr::from(tip));
            let mut q = [0u8; 28];
            prop_assert_eq!(emit_request(&mut q, smac, sip, tip), Some(28));
            let req = ArpPacket::new_checked(&q[..]).unwrap();
            prop_assert_eq!(req.op(), Operation::Request);
            prop_assert_eq!(req.sender_mac(), smac);
            prop_assert_eq!(req.sender_ip(), sip);
            prop_assert_eq!(req.target_mac(), [0; 6]);
            prop_assert_eq!(req.target_ip(), tip);
            prop_assert_eq!(req.is_gratuitous(), sip == tip);

            let mut r = [0u8; 28];
            prop_assert_eq!(emit_reply(&mut r, &req, our), Some(28));
            let rep = ArpPacket::new_checked(&r[..]).unwrap();
            prop_assert_eq!(rep.op(), Operation::Reply);
            prop_assert_eq!(rep.sender_mac(), our);
            prop_assert_eq!(rep.sender_ip(), tip);
            prop_assert_eq!(rep.target_mac(), smac);
            prop_assert_eq!(rep.target_ip(), sip);
        }
    }
}
