//! ip6-forward: routes IPv6 packets received on L3 interfaces: validates the header (RFC
//! 8200 §3; addresses per RFC 4291), looks the destination up in the input interface's VRF,
//! and forwards (hop limit decremented; IPv6 has no header checksum; MACs rewritten from the
//! next hop and the output interface), or hands the packet to the slow path: the router's
//! own addresses, multicast and link-local destinations (Neighbor Discovery arrives this
//! way), unresolved neighbours, hop limit expiry (ICMPv6 time exceeded) and packets over the
//! output MTU (ICMPv6 packet too big: routers never fragment IPv6, RFC 8200 §5). The loop
//! is [`forward`](crate::l3::forward)'s, shared with ip4-forward.
//!
//! Reads: what [`forward`](crate::l3::forward) reads; the frame's IPv6 header and, for an
//! ECMP route, the flow label and the L4 ports of a TCP or UDP packet without extension
//! headers.
//! Writes: the hop limit, the Ethernet destination and source; `meta.tx_if`; `meta.punt`.
//! Next: output, punt (`local`, `resolve`, `ttl_exceeded`, `frag_needed`).
//! Drops: `bad_header` (truncated, version not 6, Payload Length beyond the frame),
//! `martian` (source multicast, loopback or unspecified, destination loopback or
//! unspecified, a link-local source leaving its link), `no_route`, `iface_down`.

use dpdk::Mbuf;

use crate::counters::DropReason;
use crate::graph::{Ctx, Graph, Meta, Stage, Vector};
use crate::l3::fib::{Fib6, Walk};
use crate::l3::forward::{self, Check, Family, NotSent};
use crate::plan::VrfPlan;
use crate::slowpath::PuntReason;
use crate::wire::ethernet::Mac;
use crate::wire::ipv4::{PROTO_TCP, PROTO_UDP};
use crate::wire::ipv6::{Ipv6Packet, HEADER_LEN};

/// IPv6 as the shared forwarding loop sees it.
pub(crate) struct Ip6;

/// fe80::/10, the link-local unicast prefix: the top 10 bits.
const LINK_LOCAL: u128 = 0x3fa;

#[inline(always)]
fn is_link_local(a: u128) -> bool {
    a >> 118 == LINK_LOCAL
}

#[inline(always)]
fn is_multicast(a: u128) -> bool {
    a >> 120 == 0xff
}

impl Family for Ip6 {
    type Addr = u128;
    type Fib = Fib6;
    const STAGE: Stage = Stage::Ip6Forward;
    const V6: bool = true;

    #[inline(always)]
    fn addr(a: u128) -> Self::Addr {
        a
    }

    #[inline(always)]
    fn vector(g: &mut Graph) -> &mut Box<Vector> {
        &mut g.ip6
    }

    #[inline(always)]
    fn checks(g: &mut Graph) -> &mut Vec<Check<u128>> {
        &mut g.ip6_checks
    }

    #[inline(always)]
    fn fib(v: &VrfPlan) -> &Fib6 {
        &v.fib6
    }

    #[inline(always)]
    fn check(ip: &[u8]) -> Check<u128> {
        check(ip)
    }

    #[inline(always)]
    fn prefetch(f: &Fib6, a: u128) {
        f.prefetch(a)
    }

    const WALKS: bool = true;

    #[inline(always)]
    fn walk(f: &Fib6, a: u128) -> Walk {
        f.walk(a)
    }

    #[inline(always)]
    fn step(f: &Fib6, a: u128, w: &mut Walk) -> bool {
        f.step(a, w)
    }

    #[inline(always)]
    fn walked(f: &Fib6, _a: u128, w: Walk) -> Option<u32> {
        f.walked(w)
    }

    #[inline(always)]
    fn lookup(f: &Fib6, a: u128) -> Option<u32> {
        f.lookup(a)
    }

    #[inline(always)]
    fn flow_hash(ip: &[u8]) -> u32 {
        flow_hash(ip)
    }

    #[inline(always)]
    fn rewrite(ip: &mut [u8], max_ip: usize) -> Result<usize, NotSent> {
        let Ok(mut p) = Ipv6Packet::new_checked(ip) else {
            return Err(NotSent::Drop(DropReason::BadHeader));
        };
        // RFC 4291 §2.5.6: a packet from a link-local source never leaves its link.
        if is_link_local(u128::from(p.src())) {
            return Err(NotSent::Drop(DropReason::Martian));
        }
        let len = HEADER_LEN + usize::from(p.payload_len());
        if len > max_ip {
            return Err(NotSent::Punt(PuntReason::FragNeeded));
        }
        if !p.decrement_hop_limit() {
            return Err(NotSent::Punt(PuntReason::TtlExceeded));
        }
        Ok(len)
    }

    /// Routers never fragment IPv6 (RFC 8200 §5): `rewrite` never asks for it.
    fn fragment(ctx: &Ctx, _: &mut Graph, m: Mbuf, out: &Meta, _: (&Mac, &Mac), _: usize) {
        drop(m);
        ctx.counters
            .drop_packets(Self::STAGE, DropReason::MtuExceeded, out.tx_if, 1);
    }
}

/// Validates an IPv6 packet (the bytes after the Ethernet header) as a router must before
/// forwarding it.
#[inline(always)]
pub fn check(ip: &[u8]) -> Check<u128> {
    let Ok(p) = Ipv6Packet::new_checked(ip) else {
        return Check::Drop(DropReason::BadHeader);
    };
    let src = u128::from(p.src());
    let dst = u128::from(p.dst());
    // RFC 4291 §2.5.2-§2.5.3, §2.7: never forwarded from a multicast or loopback source, to
    // a loopback or the unspecified destination.
    if is_multicast(src) || src == 1 || dst == 1 || dst == 0 {
        return Check::Drop(DropReason::Martian);
    }
    // Multicast (Neighbor Discovery's solicited-node groups, all-nodes, all-routers) and
    // link-local destinations are the router's own business: there is no multicast routing.
    if is_multicast(dst) || is_link_local(dst) {
        return Check::Local;
    }
    // The unspecified source is only for Duplicate Address Detection, to multicast.
    if src == 0 {
        return Check::Drop(DropReason::Martian);
    }
    Check::Route(dst)
}

/// A hash of the packet's flow (addresses, next header, flow label, and the ports of a TCP
/// or UDP packet without extension headers), to pick one ECMP member per flow.
#[inline]
pub fn flow_hash(ip: &[u8]) -> u32 {
    let Ok(p) = Ipv6Packet::new_checked(ip) else {
        return 0;
    };
    let (s, d) = (u128::from(p.src()), u128::from(p.dst()));
    let a = s ^ d.rotate_left(64);
    let mut h = (a >> 64) as u64 ^ a as u64;
    h ^= u64::from(p.next_header()) << 56 ^ u64::from(p.flow_label()) << 20;
    if p.next_header() == PROTO_TCP || p.next_header() == PROTO_UDP {
        if let Some(ports) = p.payload().get(..4) {
            h ^= u64::from(u32::from_be_bytes([ports[0], ports[1], ports[2], ports[3]]));
        }
    }
    let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 32) as u32 ^ h as u32
}

/// Runs the stage on the graph's ip6 vector.
pub(crate) fn run(ctx: &Ctx, g: &mut Graph) {
    forward::run::<Ip6>(ctx, g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv6::{emit, Ipv6Repr};
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    fn packet(src: &str, dst: &str, hop_limit: u8) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        let n = emit(
            &mut b,
            &Ipv6Repr {
                src: src.parse().unwrap(),
                dst: dst.parse().unwrap(),
                next_header: PROTO_UDP,
                hop_limit,
                payload_len: 8,
                traffic_class: 0,
                flow_label: 0,
            },
        )
        .unwrap();
        b.truncate(n + 8);
        b
    }

    #[test]
    fn checks_a_router_makes() {
        let ok = packet("2001:db8::1", "2001:db8:1::1", 64);
        let dst = u128::from("2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(check(&ok), Check::Route(dst));
        assert_eq!(check(&ok[..39]), Check::Drop(DropReason::BadHeader));
        assert_eq!(check(&ok[..47]), Check::Drop(DropReason::BadHeader));
        let mut v4 = ok.clone();
        v4[0] = 0x45;
        assert_eq!(check(&v4), Check::Drop(DropReason::BadHeader));
        for (src, dst) in [
            ("ff02::1", "2001:db8::2"),
            ("::1", "2001:db8::2"),
            ("2001:db8::1", "::1"),
            ("2001:db8::1", "::"),
            ("::", "2001:db8::2"),
        ] {
            assert_eq!(
                check(&packet(src, dst, 64)),
                Check::Drop(DropReason::Martian),
                "{src} -> {dst}"
            );
        }
        for dst in ["ff02::1:ff00:1", "fe80::1", "ff02::2"] {
            assert_eq!(check(&packet("fe80::2", dst, 255)), Check::Local, "{dst}");
        }
        // DAD: from the unspecified address to a solicited-node group.
        assert_eq!(check(&packet("::", "ff02::1:ff00:1", 255)), Check::Local);
    }

    #[test]
    fn rewrite_decrements_checks_mtu_and_scope() {
        let mut p = packet("2001:db8::1", "2001:db8:1::1", 2);
        assert_eq!(Ip6::rewrite(&mut p, 1500), Ok(48));
        assert_eq!(p[7], 1);
        assert_eq!(
            Ip6::rewrite(&mut p, 1500),
            Err(NotSent::Punt(PuntReason::TtlExceeded))
        );
        assert_eq!(p[7], 1, "nothing written when the hop limit runs out");
        let mut p = packet("2001:db8::1", "2001:db8:1::1", 64);
        assert_eq!(
            Ip6::rewrite(&mut p, 47),
            Err(NotSent::Punt(PuntReason::FragNeeded))
        );
        let mut p = packet("fe80::1", "2001:db8:1::1", 64);
        assert_eq!(
            Ip6::rewrite(&mut p, 1500),
            Err(NotSent::Drop(DropReason::Martian))
        );
    }

    #[test]
    fn flow_hash_sees_ports_and_label() {
        let mut a = packet("2001:db8::1", "2001:db8:1::1", 64);
        let h1 = flow_hash(&a);
        a[40] = 0x12;
        let h2 = flow_hash(&a);
        assert_ne!(h2, h1, "the source port is part of the flow");
        a[3] = 0x55;
        assert_ne!(flow_hash(&a), h2, "the flow label is part of the flow");
        assert_eq!(flow_hash(&a[..10]), 0);
    }

    proptest! {
        #[test]
        fn check_hash_and_rewrite_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = check(&bytes);
            let _ = flow_hash(&bytes);
            let mut b = bytes.clone();
            let _ = Ip6::rewrite(&mut b, 1500);
            let good = packet("2001:db8::1", "2001:db8:1::1", 64);
            for n in 0..good.len() {
                let _ = check(&good[..n]);
                let _ = flow_hash(&good[..n]);
                let mut g = good[..n].to_vec();
                let _ = Ip6::rewrite(&mut g, 1500);
            }
        }
    }
}
