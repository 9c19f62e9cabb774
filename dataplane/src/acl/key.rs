//! Where a frame's ACL match fields are read: Ethernet (with up to two 802.1Q / 802.1ad
//! tags, as bridged frames may carry), then IPv4 or IPv6 (walking IPv6 extension headers),
//! then the first bytes of TCP, UDP, SCTP (ports) or ICMP / ICMPv6 (type and code).
//!
//! Every read is bounds-checked against the bytes given: a frame too short for what its
//! headers announce is [`Parsed::Bad`] (dropped where an ACL is bound, never let through
//! unmatched). Frames that are not IP (ARP and others) and IPv6 neighbour discovery and
//! router discovery (ICMPv6 133-137) are [`Parsed::Exempt`]: ACLs do not see them, or
//! address resolution and every IPv6 link would break behind a default-deny policy.

use super::rule::{Family, Key};

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;

/// IP protocol numbers (IANA) whose first four L4 bytes are ports.
const TCP: u8 = 6;
const UDP: u8 = 17;
const SCTP: u8 = 132;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;
/// IPv6 extension headers walked to reach the L4 header (RFC 8200 §4).
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const DEST_OPTS: u8 = 60;
/// Most IPv6 extension headers walked.
const MAX_EXT: usize = 8;

/// What sessions need of a packet besides its match fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extra {
    /// TCP's flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// The identifier of an ICMP or ICMPv6 echo request or reply.
    pub echo: Option<u16>,
    /// The match fields of the packet an ICMP or ICMPv6 error quotes (the packet that
    /// caused it, as its sender sent it).
    pub quoted: Option<Key>,
}

/// TCP flags (RFC 9293 §3.1).
pub mod tcp {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// What a frame is to an ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// An IP packet, with its match fields and what sessions need.
    Ip(Key, Extra),
    /// Not subject to ACLs (not IP, or IPv6 neighbour / router discovery).
    Exempt,
    /// An IP packet whose headers are truncated or inconsistent.
    Bad,
}

/// What [`parse_into`] found (its match fields written where it was asked to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ip,
    Exempt,
    Bad,
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Reads the match fields of Ethernet frame `frame`.
#[inline]
pub fn parse(frame: &[u8]) -> Parsed {
    let mut k = Key::default();
    let mut x = Extra::default();
    match parse_into(frame, &mut k, &mut x) {
        Kind::Ip => Parsed::Ip(k, x),
        Kind::Exempt => Parsed::Exempt,
        Kind::Bad => Parsed::Bad,
    }
}

/// [`parse`] writing the match fields of an IP packet into `k` and `x` (left in an
/// unspecified state otherwise). The fast path parses a chunk of frames straight into its
/// key array this way: a `Parsed` built on the stack and copied costs a store-forwarding
/// stall per frame (its fields are written narrow and read back wide).
#[inline(always)]
pub fn parse_into(frame: &[u8], k: &mut Key, x: &mut Extra) -> Kind {
    let Some(mut ethertype) = be16(frame, 12) else {
        return Kind::Exempt;
    };
    let mut l3 = 14;
    for _ in 0..2 {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        let Some(t) = be16(frame, l3 + 2) else {
            return Kind::Exempt;
        };
        ethertype = t;
        l3 += 4;
    }
    let ip = frame.get(l3..).unwrap_or(&[]);
    match ethertype {
        ETHERTYPE_IPV4 => ipv4_at(ip, 0, k, x),
        ETHERTYPE_IPV6 => ipv6_at(ip, 0, k, x),
        _ => Kind::Exempt,
    }
}

/// An ICMP error's quote (the offending packet's headers) is read one level deep.
const QUOTE_DEPTH: u8 = 1;

#[inline(always)]
fn ipv4_at(p: &[u8], depth: u8, k: &mut Key, x: &mut Extra) -> Kind {
    let Some(h) = p.get(..20) else {
        return Kind::Bad;
    };
    let ihl = usize::from(h[0] & 0x0f) * 4;
    if h[0] >> 4 != 4 || ihl < 20 || p.len() < ihl {
        return Kind::Bad;
    }
    let frag = u16::from_be_bytes([h[6], h[7]]) & 0x1fff;
    *k = Key {
        family: Family::V4,
        proto: h[9],
        src: u128::from(u32::from_be_bytes([h[12], h[13], h[14], h[15]])),
        dst: u128::from(u32::from_be_bytes([h[16], h[17], h[18], h[19]])),
        sport: 0,
        dport: 0,
        later_fragment: frag != 0,
    };
    *x = Extra::default();
    if !k.later_fragment && !l4(k, x, &p[ihl..], ICMP, depth) {
        return Kind::Bad;
    }
    Kind::Ip
}

#[inline]
fn ipv6_at(p: &[u8], depth: u8, k: &mut Key, x: &mut Extra) -> Kind {
    let Some(h) = p.get(..40) else {
        return Kind::Bad;
    };
    if h[0] >> 4 != 6 {
        return Kind::Bad;
    }
    let addr = |at: usize| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[at..at + 16]);
        u128::from_be_bytes(a)
    };
    *k = Key {
        family: Family::V6,
        proto: h[6],
        src: addr(8),
        dst: addr(24),
        sport: 0,
        dport: 0,
        later_fragment: false,
    };
    *x = Extra::default();
    let mut at = 40;
    for _ in 0..MAX_EXT {
        match k.proto {
            HOP_BY_HOP | ROUTING | DEST_OPTS => {
                let (Some(&next), Some(&len)) = (p.get(at), p.get(at + 1)) else {
                    return Kind::Bad;
                };
                k.proto = next;
                at += (usize::from(len) + 1) * 8;
            }
            FRAGMENT => {
                let (Some(&next), Some(off)) = (p.get(at), be16(p, at + 2)) else {
                    return Kind::Bad;
                };
                k.proto = next;
                at += 8;
                if off >> 3 != 0 {
                    k.later_fragment = true;
                    return Kind::Ip;
                }
            }
            _ => break,
        }
    }
    if matches!(k.proto, HOP_BY_HOP | ROUTING | DEST_OPTS | FRAGMENT) {
        // More extension headers than walked: refuse rather than guess.
        return Kind::Bad;
    }
    let rest = p.get(at..).unwrap_or(&[]);
    if at > p.len() || !l4(k, x, rest, ICMPV6, depth) {
        return Kind::Bad;
    }
    if k.proto == ICMPV6 && (133..=137).contains(&k.sport) {
        return Kind::Exempt;
    }
    Kind::Ip
}

/// Reads the ports (or ICMP type and code) of `k`'s protocol from L4 header `l4`, and
/// what sessions need (TCP flags, an echo's identifier, an error's quote); false if it is
/// too short for the ports, type or code.
#[inline(always)]
fn l4(k: &mut Key, x: &mut Extra, l4: &[u8], icmp: u8, depth: u8) -> bool {
    match k.proto {
        TCP | UDP | SCTP => match (be16(l4, 0), be16(l4, 2)) {
            (Some(s), Some(d)) => {
                (k.sport, k.dport) = (s, d);
                if k.proto == TCP {
                    x.tcp_flags = l4.get(13).copied().unwrap_or(0);
                }
                true
            }
            _ => false,
        },
        p if p == icmp => match l4.get(..2) {
            Some(t) => {
                (k.sport, k.dport) = (t[0].into(), t[1].into());
                icmp_extra(x, t[0], l4, icmp == ICMPV6, depth);
                true
            }
            None => false,
        },
        _ => true,
    }
}

/// An echo's identifier, or an error's quoted packet (RFC 792; RFC 4443 §2.1, §3, §4).
#[cold]
fn icmp_extra(x: &mut Extra, kind: u8, msg: &[u8], v6: bool, depth: u8) {
    let (echo, error) = if v6 {
        (matches!(kind, 128 | 129), matches!(kind, 1..=4))
    } else {
        (matches!(kind, 0 | 8), matches!(kind, 3 | 4 | 5 | 11 | 12))
    };
    if echo {
        x.echo = be16(msg, 4);
    } else if error && depth < QUOTE_DEPTH {
        let quote = msg.get(8..).unwrap_or(&[]);
        let mut q = Key::default();
        let mut qx = Extra::default();
        let inner = if v6 {
            ipv6_at(quote, depth + 1, &mut q, &mut qx)
        } else {
            ipv4_at(quote, depth + 1, &mut q, &mut qx)
        };
        if inner == Kind::Ip {
            x.quoted = Some(q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eth(ethertype: u16, tags: &[u16]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        for &t in tags {
            f.extend_from_slice(&0x8100u16.to_be_bytes());
            f.extend_from_slice(&t.to_be_bytes());
        }
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn ipv4_udp(frag: u16) -> Vec<u8> {
        let mut p = vec![
            0x45,
            0,
            0,
            28,
            0,
            1,
            (frag >> 8) as u8,
            frag as u8,
            64,
            17,
            0,
            0,
        ];
        p.extend_from_slice(&[10, 0, 0, 1, 192, 0, 2, 9]);
        p.extend_from_slice(&[0x13, 0x88, 0x00, 0x35, 0, 8, 0, 0]);
        p
    }

    #[test]
    fn reads_a_tagged_udp_packet() {
        let mut f = eth(0x0800, &[100]);
        f.extend(ipv4_udp(0));
        let Parsed::Ip(k, _) = parse(&f) else {
            panic!("{:?}", parse(&f))
        };
        assert_eq!(
            (k.proto, k.src, k.dst, k.sport, k.dport),
            (17, 0x0a00_0001, 0xc000_0209, 5000, 53)
        );
        assert!(!k.later_fragment);
    }

    #[test]
    fn later_fragments_carry_no_ports() {
        let mut f = eth(0x0800, &[]);
        f.extend(ipv4_udp(0x2000 | 185));
        f.truncate(14 + 20);
        let Parsed::Ip(k, _) = parse(&f) else {
            panic!()
        };
        assert!(k.later_fragment);
        assert_eq!((k.sport, k.dport), (0, 0));
    }

    #[test]
    fn a_first_fragment_without_its_ports_is_bad() {
        let mut f = eth(0x0800, &[]);
        f.extend(ipv4_udp(0x2000));
        f.truncate(14 + 22);
        assert_eq!(parse(&f), Parsed::Bad);
    }

    #[test]
    fn arp_and_neighbour_discovery_are_exempt() {
        let mut arp = eth(0x0806, &[]);
        arp.extend([0u8; 28]);
        assert_eq!(parse(&arp), Parsed::Exempt);
        let mut ns = eth(0x86dd, &[]);
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
        ip6.extend([0u8; 32]);
        ip6.extend([135, 0, 0, 0]);
        ns.extend(ip6);
        assert_eq!(parse(&ns), Parsed::Exempt);
    }

    #[test]
    fn ipv6_extension_headers_are_walked() {
        let mut f = eth(0x86dd, &[]);
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 24, 0, 64];
        ip6.extend([0u8; 15]);
        ip6.push(1);
        ip6.extend([0u8; 15]);
        ip6.push(2);
        // Hop-by-hop (8 bytes) -> fragment (first) -> TCP.
        ip6.extend([44, 0, 0, 0, 0, 0, 0, 0]);
        ip6.extend([6, 0, 0, 1, 0, 0, 0, 7]);
        ip6.extend([0, 80, 0x1f, 0x90]);
        f.extend(ip6);
        let Parsed::Ip(k, x) = parse(&f) else {
            panic!("{:?}", parse(&f))
        };
        assert_eq!(x.tcp_flags, 0);
        assert_eq!((k.family, k.proto, k.src, k.dst), (Family::V6, 6, 1, 2));
        assert_eq!((k.sport, k.dport, k.later_fragment), (80, 8080, false));
    }

    #[test]
    fn echoes_give_their_identifier_and_errors_their_quote() {
        let mut ping = eth(0x0800, &[]);
        ping.extend([
            0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        ping.extend([8, 0, 0, 0, 0x12, 0x34, 0, 1]);
        let Parsed::Ip(k, x) = parse(&ping) else {
            panic!()
        };
        assert_eq!(
            (k.sport, k.dport, x.echo, x.quoted),
            (8, 0, Some(0x1234), None)
        );
        // Port unreachable quoting a UDP packet 192.0.2.9:53 -> 10.0.0.1:5000.
        let mut err = eth(0x0800, &[]);
        err.extend([
            0x45, 0, 0, 56, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        err.extend([3, 3, 0, 0, 0, 0, 0, 0]);
        err.extend([
            0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 9, 10, 0, 0, 1,
        ]);
        err.extend([0, 53, 0x13, 0x88, 0, 8, 0, 0]);
        let Parsed::Ip(k, x) = parse(&err) else {
            panic!()
        };
        let q = x.quoted.expect("quote");
        assert_eq!((k.sport, k.dport), (3, 3));
        assert_eq!(
            (q.proto, q.src, q.dst, q.sport, q.dport),
            (17, 0xc000_0209, 0x0a00_0001, 53, 5000)
        );
    }

    #[test]
    fn tcp_flags_are_read() {
        let mut f = eth(0x0800, &[]);
        f.extend([
            0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        f.extend([
            0x9c, 0x40, 0, 80, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x12, 0, 0, 0, 0, 0, 0,
        ]);
        let Parsed::Ip(_, x) = parse(&f) else {
            panic!()
        };
        assert_eq!(x.tcp_flags, tcp::SYN | tcp::ACK);
    }

    proptest! {
        /// Random and truncated frames: no panic, and a truncation of a frame never reads
        /// past its end (what it says of the prefix depends only on the prefix).
        #[test]
        fn never_panics_on_random_or_truncated_frames(
            body in proptest::collection::vec(any::<u8>(), 0..120),
            ethertype in prop_oneof![Just(0x0800u16), Just(0x86dd), Just(0x8100), any::<u16>()],
            cut in 0usize..140,
        ) {
            let mut f = eth(ethertype, &[]);
            f.extend(&body);
            let _ = parse(&f);
            let cut = cut.min(f.len());
            let prefix = f[..cut].to_vec();
            prop_assert_eq!(parse(&prefix), parse(&f[..cut]));
        }

        #[test]
        /// Cut before the end of its ports (14 + 20 + 4 bytes).
        fn a_valid_packet_cut_short_is_bad_or_exempt(cut in 0usize..38) {
            let mut f = eth(0x0800, &[]);
            f.extend(ipv4_udp(0));
            let p = parse(&f[..cut]);
            prop_assert!(matches!(p, Parsed::Bad | Parsed::Exempt), "{:?}", p);
        }
    }
}
