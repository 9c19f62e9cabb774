//! ip4-forward: routes IPv4 packets received on L3 interfaces: validates the header (RFC
//! 1812 §5.2.2), looks the destination up in the input interface's VRF, and forwards
//! (TTL decremented with an incremental checksum update, RFC 1624; MACs rewritten from the
//! next hop and the output interface), or hands the packet to the slow path (the router's
//! own addresses, unresolved neighbours, TTL expiry, DF packets over the MTU). The loop
//! itself is [`forward`](crate::l3::forward)'s, shared with ip6-forward.
//!
//! Reads: what [`forward`](crate::l3::forward) reads; the frame's Ethernet and IPv4
//! headers (the frame is untagged: ethernet-input sends only untagged frames here) and, for
//! an ECMP route, its L4 ports.
//! Writes: the IPv4 TTL and header checksum, the Ethernet destination and source;
//! `meta.tx_if`; `meta.punt` for punted packets.
//! Next: output, or l2-bridge out of a bridge's routed interface (BVI), or tunnel-encap
//! out of a tunnel; tunnel-decap (to a local address while the plan has tunnels: out of
//! the loop, [`Family::local`]); punt (`local`, `resolve`, `ttl_exceeded`, `frag_needed`).
//! Drops: `bad_header` (truncated, bad version, IHL or total length), `bad_checksum`,
//! `martian` (source multicast, broadcast or loopback, destination loopback), `no_route`
//! (no route, a blackhole route, an invalid next hop, no VRF), `iface_down` (output
//! interface down or not an L3 interface), `mtu_exceeded` (an MTU too small to fragment
//! for), `no_mbuf` (no buffer for a fragment).
//!
//! Packets over the output MTU without Don't Fragment are fragmented here (out of line:
//! each fragment a copy of its part of the packet from the packet's pool, with its own
//! header; the first keeps every option, later ones the copied ones).

use dpdk::Mbuf;

use crate::counters::DropReason;
use crate::graph::{Ctx, Graph, Meta, Stage, Vector};
use crate::l3::fib::Fib4;
use crate::l3::forward::{self, Family, NotSent, L3};
use crate::plan::VrfPlan;
use crate::slowpath::PuntReason;
use crate::wire::ethernet::Mac;
use crate::wire::ipv4::{fragment_header, Ipv4Packet, MAX_HEADER_LEN, PROTO_TCP, PROTO_UDP};

const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];

pub use crate::l3::forward::Check;

/// IPv4 as the shared forwarding loop sees it.
pub(crate) struct Ip4;

impl Family for Ip4 {
    type Addr = u32;
    type Fib = Fib4;
    const STAGE: Stage = Stage::Ip4Forward;
    const V6: bool = false;

    #[inline(always)]
    fn addr(a: u128) -> Self::Addr {
        a as u32
    }

    #[inline(always)]
    fn vector(g: &mut Graph) -> &mut Box<Vector> {
        &mut g.ip4
    }

    #[inline(always)]
    fn checks(g: &mut Graph) -> &mut Vec<Check<u32>> {
        &mut g.ip4_checks
    }

    #[inline(always)]
    fn fib(v: &VrfPlan) -> &Fib4 {
        &v.fib4
    }

    #[inline(always)]
    fn check(ip: &[u8]) -> Check<u32> {
        check(ip)
    }

    #[inline(always)]
    fn prefetch(f: &Fib4, a: u32) {
        f.prefetch(a)
    }

    #[inline(always)]
    fn prefetch_below(f: &Fib4, a: u32) {
        // DIR-24-8: one level below the first, nothing deeper.
        f.prefetch_second(a)
    }

    #[inline(always)]
    fn lookup(f: &Fib4, a: u32) -> Option<u32> {
        f.lookup(a)
    }

    #[inline(always)]
    fn flow_hash(ip: &[u8]) -> u32 {
        flow_hash(ip)
    }

    #[inline(always)]
    fn rewrite(ip: &mut [u8], max_ip: usize) -> Result<usize, NotSent> {
        let Ok(mut p) = Ipv4Packet::new_checked(ip) else {
            return Err(NotSent::Drop(DropReason::BadHeader));
        };
        let len = usize::from(p.total_len());
        if len > max_ip {
            return Err(if p.dont_fragment() {
                NotSent::Punt(PuntReason::FragNeeded)
            } else {
                NotSent::Fragment
            });
        }
        if !p.decrement_ttl() {
            return Err(NotSent::Punt(PuntReason::TtlExceeded));
        }
        Ok(len)
    }

    #[cold]
    #[inline(never)]
    fn fragment(ctx: &Ctx, g: &mut Graph, m: Mbuf, out: &Meta, mac: (&Mac, &Mac), max_ip: usize) {
        if let Err((reason, at)) = fragment(ctx, g, m, out, mac, max_ip) {
            ctx.counters.drop_packets(Self::STAGE, reason, at, 1);
        }
    }

    /// Tunnel traffic to the router's addresses is tunnel-decap's to tell apart (not cold:
    /// a VTEP's whole traffic comes this way).
    #[inline]
    fn local(ctx: &Ctx, g: &mut Graph, m: Mbuf, meta: &Meta) {
        if ctx.plan.tunnels.is_empty() {
            forward::punt::<Ip4>(ctx, g, m, meta, PuntReason::Local)
        } else {
            g.hand_on(ctx, Self::STAGE, crate::graph::Next::TunnelDecap, m, *meta)
        }
    }
}

/// Fragments IPv4 packet `m` (RFC 791 §3.2, RFC 1812 §5.2.6) into packets of at most
/// `max_ip` bytes, each with the Ethernet header for the hop, and queues them on the
/// output. The fragments are copies from `m`'s pool; the drop reason (and the interface
/// to count it against) when it cannot be done.
fn fragment(
    ctx: &Ctx,
    g: &mut Graph,
    mut m: Mbuf,
    out: &Meta,
    (dst_mac, src_mac): (&Mac, &Mac),
    max_ip: usize,
) -> Result<(), (DropReason, u16)> {
    let frame = m.data_mut();
    let Ok(mut p) = Ipv4Packet::new_checked(&mut frame[L3..]) else {
        return Err((DropReason::BadHeader, out.rx_if));
    };
    if !p.decrement_ttl() {
        forward::punt::<Ip4>(ctx, g, m, out, PuntReason::TtlExceeded);
        return Ok(());
    }
    let hl = p.header_len();
    let payload = usize::from(p.total_len()) - hl;
    let bvi = ctx
        .plan
        .iface(out.tx_if)
        .and_then(crate::plan::IfacePlan::bvi_bridge);
    let mut header = [0u8; MAX_HEADER_LEN];
    header[..hl].copy_from_slice(p.header());
    let header = &header[..hl];
    let mut h = [0u8; MAX_HEADER_LEN];
    let mut off = 0;
    while off < payload {
        let too_big = (DropReason::MtuExceeded, out.tx_if);
        let n = fragment_header(header, off as u16, true, 0, &mut h).ok_or(too_big)?;
        let room = max_ip.saturating_sub(n) / 8 * 8;
        if room == 0 {
            return Err(too_big);
        }
        let chunk = room.min(payload - off);
        let more = off + chunk < payload;
        let n = fragment_header(header, off as u16, more, chunk, &mut h).ok_or(too_big)?;
        let no_mbuf = (DropReason::NoMbuf, out.tx_if);
        let mut f = m
            .copy_range((L3 + hl + off) as u32, chunk as u32)
            .ok_or(no_mbuf)?;
        if !f.prepend((L3 + n) as u16) {
            return Err(no_mbuf);
        }
        let d = f.data_mut();
        d[0..6].copy_from_slice(dst_mac);
        d[6..12].copy_from_slice(src_mac);
        d[12..14].copy_from_slice(&ETHERTYPE_IPV4);
        d[L3..L3 + n].copy_from_slice(&h[..n]);
        let tunnel = ctx.plan.is_tunnel(out.tx_if);
        forward::hand_out(ctx, g, Ip4::STAGE, f, *out, bvi, tunnel);
        off += chunk;
    }
    Ok(())
}

/// RFC 1812 §5.3.7: no forwarding of packets from a multicast, broadcast or loopback
/// source (nor to a loopback destination: [`check`]).
#[inline(always)]
pub fn martian_source(src: u32) -> bool {
    src >> 28 == 0xe || src == u32::MAX || src >> 24 == 127
}

/// Validates an IPv4 packet (the bytes after the Ethernet header) as a router must before
/// forwarding it.
#[inline(always)]
pub fn check(ip: &[u8]) -> Check<u32> {
    let Ok(p) = Ipv4Packet::new_checked(ip) else {
        return Check::Drop(DropReason::BadHeader);
    };
    if !p.header_checksum_ok() {
        return Check::Drop(DropReason::BadChecksum);
    }
    let src = u32::from(p.src());
    let dst = u32::from(p.dst());
    if martian_source(src) || dst >> 24 == 127 {
        return Check::Drop(DropReason::Martian);
    }
    if dst >> 28 == 0xe || dst == u32::MAX {
        return Check::Local;
    }
    Check::Route(dst)
}

/// A hash of the packet's flow (addresses, protocol, and TCP/UDP ports of a first or only
/// fragment), to pick one ECMP member per flow; 0 for what is not a valid IPv4 header
/// (the checks of [`Ipv4Packet::new_checked`], read here at fixed offsets: tunnel-encap
/// hashes every frame it sends).
#[inline(always)]
pub fn flow_hash(ip: &[u8]) -> u32 {
    let Some(h) = ip.get(..20) else {
        return 0;
    };
    let hl = usize::from(h[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if h[0] >> 4 != 4 || hl < 20 || hl > total || total > ip.len() {
        return 0;
    }
    let src = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
    let dst = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
    let protocol = h[9];
    let mut x = u64::from(src) << 32 | u64::from(dst);
    x ^= u64::from(protocol) << 56;
    let first = u16::from_be_bytes([h[6], h[7]]) & 0x1fff == 0;
    if (protocol == PROTO_TCP || protocol == PROTO_UDP) && first && total - hl >= 4 {
        let p = &ip[hl..hl + 4];
        x ^= u64::from(u32::from_be_bytes([p[0], p[1], p[2], p[3]])) << 8;
    }
    let x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (x >> 32) as u32 ^ x as u32
}

/// Runs the stage on the graph's ip4 vector.
pub(crate) fn run(ctx: &Ctx, g: &mut Graph) {
    forward::run::<Ip4>(ctx, g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ipv4::{emit, Ipv4Repr};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn packet(src: [u8; 4], dst: [u8; 4], ttl: u8) -> Vec<u8> {
        let mut b = vec![0u8; 28];
        let n = emit(
            &mut b,
            &Ipv4Repr {
                src: Ipv4Addr::from(src),
                dst: Ipv4Addr::from(dst),
                protocol: PROTO_UDP,
                ttl,
                payload_len: 8,
                dscp_ecn: 0,
                ident: 1,
                dont_fragment: false,
            },
        )
        .unwrap();
        b.truncate(n + 8);
        b
    }

    #[test]
    fn checks_a_router_makes() {
        let ok = packet([10, 0, 0, 1], [10, 0, 1, 1], 64);
        assert_eq!(check(&ok), Check::Route(0x0a00_0101));
        assert_eq!(check(&ok[..19]), Check::Drop(DropReason::BadHeader));
        let mut bad = ok.clone();
        bad[10] ^= 1;
        assert_eq!(check(&bad), Check::Drop(DropReason::BadChecksum));
        for (src, dst) in [
            ([224, 0, 0, 1], [10, 0, 0, 1]),
            ([255, 255, 255, 255], [10, 0, 0, 1]),
            ([127, 0, 0, 1], [10, 0, 0, 1]),
            ([10, 0, 0, 1], [127, 0, 0, 1]),
        ] {
            assert_eq!(
                check(&packet(src, dst, 64)),
                Check::Drop(DropReason::Martian)
            );
        }
        assert_eq!(
            check(&packet([10, 0, 0, 1], [224, 0, 0, 5], 1)),
            Check::Local
        );
        assert_eq!(check(&packet([10, 0, 0, 1], [255; 4], 1)), Check::Local);
    }

    #[test]
    fn flow_hash_sees_ports() {
        let mut a = packet([10, 0, 0, 1], [10, 0, 1, 1], 64);
        let h1 = flow_hash(&a);
        a[20] = 0x12;
        assert_ne!(flow_hash(&a), h1, "the source port is part of the flow");
        assert_eq!(flow_hash(&a), flow_hash(&a));
        assert_eq!(flow_hash(&a[..10]), 0);
    }

    /// The flow hash as the packet's accessors read it.
    fn flow_hash_by_accessors(ip: &[u8]) -> u32 {
        let Ok(p) = Ipv4Packet::new_checked(ip) else {
            return 0;
        };
        let mut h = u64::from(u32::from(p.src())) << 32 | u64::from(u32::from(p.dst()));
        h ^= u64::from(p.protocol()) << 56;
        if (p.protocol() == PROTO_TCP || p.protocol() == PROTO_UDP) && p.frag_offset() == 0 {
            if let Some(ports) = p.payload().get(..4) {
                h ^= u64::from(u32::from_be_bytes([ports[0], ports[1], ports[2], ports[3]])) << 8;
            }
        }
        let h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 32) as u32 ^ h as u32
    }

    proptest! {
        #[test]
        fn flow_hash_reads_what_the_accessors_read(b in proptest::collection::vec(any::<u8>(), 0..64),
                                                   fix: bool, ihl in 5u8..8, frag: bool) {
            let mut b = b;
            if fix && b.len() >= 20 {
                b[0] = 0x40 | ihl;
                let l = b.len() as u16;
                b[2..4].copy_from_slice(&l.to_be_bytes());
                b[6] &= if frag { 0xff } else { 0xe0 };
                b[7] = if frag { b[7] } else { 0 };
                b[9] = [PROTO_TCP, PROTO_UDP][usize::from(b[9] & 1)];
            }
            prop_assert_eq!(flow_hash(&b), flow_hash_by_accessors(&b));
        }

        #[test]
        fn check_and_hash_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = check(&bytes);
            let _ = flow_hash(&bytes);
            let good = packet([10, 0, 0, 1], [10, 0, 1, 1], 64);
            for n in 0..good.len() {
                let _ = check(&good[..n]);
                let _ = flow_hash(&good[..n]);
            }
        }
    }
}
