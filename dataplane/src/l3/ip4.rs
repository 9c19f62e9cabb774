//! ip4-forward: routes IPv4 packets received on L3 interfaces: validates the header (RFC
//! 1812 §5.2.2), looks the destination up in the input interface's VRF, and forwards
//! (TTL decremented with an incremental checksum update, RFC 1624; MACs rewritten from the
//! next hop and the output interface), or hands the packet to the slow path (the router's
//! own addresses, unresolved neighbours, TTL expiry, DF packets over the MTU).
//!
//! A vector is routed in two passes: the first validates every packet and prefetches its
//! first-level FIB entry, the second looks up, resolves the next hop and rewrites, so the
//! vector's FIB misses overlap.
//!
//! Reads: `meta.rx_if`; the plan's L3 port of the input interface (VRF) and of the output
//! interface (source MAC), the output interface's `max_frame` and `up`; the VRF's FIB;
//! the next hops; the frame's Ethernet and IPv4 headers (the frame is untagged: ethernet-input
//! sends only untagged frames here) and, for an ECMP route, its L4 ports.
//! Writes: the IPv4 TTL and header checksum, the Ethernet destination and source;
//! `meta.tx_if`; `meta.punt` for punted packets; for packets out of a bridge's routed
//! interface (BVI) `rx_if`, `bridge`, `vlan` as l2-bridge's `from_bvi` says.
//! Next: output; l2-bridge (out of a BVI: the frame enters its bridge as received on the
//! BVI); punt (`local`, `resolve`, `ttl_exceeded`, `frag_needed`).
//! Drops: `bad_header` (truncated, bad version, IHL or total length), `bad_checksum`,
//! `martian` (source multicast, broadcast or loopback, destination loopback), `no_route`
//! (no route, a blackhole route, an invalid next hop, no VRF), `iface_down` (output
//! interface down or not an L3 interface), `mtu_exceeded` (longer than the output MTU and
//! may be fragmented: fragmentation is not done yet).

use dpdk::Mbuf;

use crate::counters::DropReason;
use crate::graph::{Ctx, Graph, Meta, Next, Stage};
use crate::l3::fib::Fib4;
use crate::l3::nexthop::NextHop;
use crate::slowpath::PuntReason;
use crate::wire::ethernet;
use crate::wire::ipv4::{Ipv4Packet, PROTO_TCP, PROTO_UDP};

const STAGE: Stage = Stage::Ip4Forward;
/// Where the IPv4 header starts (untagged frames only).
const L3: usize = 14;

/// What the first pass found out about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// To be looked up: the destination (host order).
    Route(u32),
    /// For the router itself (limited broadcast, multicast: no multicast routing).
    Local,
    Drop(DropReason),
}

/// Validates an IPv4 packet (the bytes after the Ethernet header) as a router must before
/// forwarding it.
#[inline(always)]
pub fn check(ip: &[u8]) -> Check {
    let Ok(p) = Ipv4Packet::new_checked(ip) else {
        return Check::Drop(DropReason::BadHeader);
    };
    if !p.header_checksum_ok() {
        return Check::Drop(DropReason::BadChecksum);
    }
    let src = u32::from(p.src());
    let dst = u32::from(p.dst());
    // RFC 1812 §5.3.7: no forwarding of packets from a multicast, broadcast or loopback
    // source, or to a loopback destination.
    if src >> 28 == 0xe || src == u32::MAX || src >> 24 == 127 || dst >> 24 == 127 {
        return Check::Drop(DropReason::Martian);
    }
    if dst >> 28 == 0xe || dst == u32::MAX {
        return Check::Local;
    }
    Check::Route(dst)
}

/// A hash of the packet's flow (addresses, protocol, and TCP/UDP ports of a first or only
/// fragment), to pick one ECMP member per flow.
#[inline]
pub fn flow_hash(ip: &[u8]) -> u32 {
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

/// The FIB of the VRF of routed interface `rx_if`, remembered for the run of packets from
/// one interface (a vector's packets mostly come from one).
struct FibOf<'a> {
    ctx: &'a Ctx<'a>,
    last: (u16, Option<&'a Fib4>),
}

impl<'a> FibOf<'a> {
    #[inline(always)]
    fn get(&mut self, rx_if: u16) -> Option<&'a Fib4> {
        if self.last.0 != rx_if {
            let plan = self.ctx.plan;
            let fib = plan
                .iface(rx_if)
                .and_then(|p| p.l3)
                .and_then(|l3| plan.vrf(l3.vrf))
                .map(|v| &*v.fib4);
            self.last = (rx_if, fib);
        }
        self.last.1
    }
}

/// Where a packet goes after the lookup.
enum Verdict {
    Forward(crate::plan::IfIndex, ethernet::Mac),
    Punt(PuntReason),
    Drop(DropReason),
}

/// Runs the stage on the graph's ip4 vector.
pub(crate) fn run(ctx: &Ctx, g: &mut Graph) {
    let Some(mut vector) = g.spare.take() else {
        return;
    };
    std::mem::swap(&mut g.ip4, &mut vector);
    let n = vector.len();
    let mut fibs = FibOf {
        ctx,
        last: (u16::MAX, None),
    };
    // First pass: validate, prefetch each destination's first-level FIB entry.
    let mut checks = [Check::Local; dpdk::MAX_BURST];
    for (i, c) in checks.iter_mut().enumerate().take(n) {
        *c = match vector.pkts.data(i).get(L3..) {
            Some(ip) => check(ip),
            None => Check::Drop(DropReason::BadHeader),
        };
        if let (Check::Route(dst), Some(f)) = (*c, fibs.get(vector.meta[i].rx_if)) {
            f.prefetch(dst);
        }
    }
    // Second pass: look up, resolve, rewrite, hand on.
    let nexthops = ctx.plan.l3.nexthops.as_deref();
    let v = &mut *vector;
    for (i, (m, meta)) in v.pkts.drain().zip(v.meta.iter()).enumerate() {
        let verdict = match checks[i] {
            Check::Drop(r) => Verdict::Drop(r),
            Check::Local => Verdict::Punt(PuntReason::Local),
            Check::Route(dst) => {
                let id = fibs.get(meta.rx_if).and_then(|f| f.lookup(dst));
                match (id, nexthops) {
                    (Some(id), Some(nhs)) => match nhs.get(id) {
                        NextHop::Ecmp { .. } => {
                            decide(nhs.resolve(id, flow_hash(m.data().get(L3..).unwrap_or(&[]))))
                        }
                        nh => decide(nh),
                    },
                    _ => Verdict::Drop(DropReason::NoRoute),
                }
            }
        };
        match verdict {
            Verdict::Forward(tx_if, dst_mac) => forward(ctx, g, m, meta, tx_if, &dst_mac),
            Verdict::Punt(reason) => punt(ctx, g, m, meta, reason),
            Verdict::Drop(reason) => ctx.counters.drop_packets(STAGE, reason, meta.rx_if, 1),
        }
    }
    g.spare = Some(vector);
}

/// Where a next hop sends a packet: out of an interface to a MAC, to the slow path, or
/// nowhere.
#[inline(always)]
fn decide(nh: NextHop) -> Verdict {
    match nh {
        NextHop::Forward { iface, mac } => Verdict::Forward(iface, mac),
        NextHop::Resolve { .. } => Verdict::Punt(PuntReason::Resolve),
        NextHop::Local => Verdict::Punt(PuntReason::Local),
        NextHop::Drop | NextHop::Invalid | NextHop::Ecmp { .. } => {
            Verdict::Drop(DropReason::NoRoute)
        }
    }
}

/// Rewrites `m` for the hop out of `tx_if` to `dst_mac` and queues it; TTL expiry and DF
/// packets over the MTU go to the slow path instead.
#[inline(always)]
fn forward(
    ctx: &Ctx,
    g: &mut Graph,
    mut m: Mbuf,
    meta: &Meta,
    tx_if: u16,
    dst_mac: &ethernet::Mac,
) {
    let Some((src_mac, max_frame, bvi_bridge)) = ctx
        .plan
        .iface(tx_if)
        .filter(|p| p.up)
        .and_then(|p| p.l3.map(|l3| (l3.mac, p.max_frame, p.bvi_bridge())))
    else {
        ctx.counters
            .drop_packets(STAGE, DropReason::IfaceDown, tx_if, 1);
        return;
    };
    let frame = m.data_mut();
    let Ok(mut ip) = Ipv4Packet::new_checked(&mut frame[L3..]) else {
        ctx.counters
            .drop_packets(STAGE, DropReason::BadHeader, meta.rx_if, 1);
        return;
    };
    // The frame as sent: Ethernet header and the IPv4 packet (Ethernet padding dropped).
    let len = L3 + usize::from(ip.total_len());
    // max_frame counts two VLAN tags on top of the MTU; a routed frame carries none.
    if len as u32 > max_frame - 8 {
        if ip.dont_fragment() {
            return punt(ctx, g, m, meta, PuntReason::FragNeeded);
        }
        ctx.counters
            .drop_packets(STAGE, DropReason::MtuExceeded, tx_if, 1);
        return;
    }
    if !ip.decrement_ttl() {
        return punt(ctx, g, m, meta, PuntReason::TtlExceeded);
    }
    frame[0..6].copy_from_slice(dst_mac);
    frame[6..12].copy_from_slice(&src_mac);
    if m.len() > len {
        m.trim((m.len() - len) as u16);
    }
    match bvi_bridge {
        None => g.hand_on(ctx, STAGE, Next::Output, m, Meta { tx_if, ..*meta }),
        // Out of a bridge's routed interface: into the bridge, as received on it.
        Some(bridge) => {
            let out = crate::l2::bridge::from_bvi(tx_if, bridge, meta);
            g.hand_on(ctx, STAGE, Next::L2Bridge, m, out)
        }
    }
}

#[inline(always)]
fn punt(ctx: &Ctx, g: &mut Graph, m: Mbuf, meta: &Meta, reason: PuntReason) {
    let out = Meta {
        punt: reason,
        ..*meta
    };
    g.hand_on(ctx, STAGE, Next::Punt, m, out);
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

    proptest! {
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
