//! The forwarding loop that ip4-forward and ip6-forward share: a vector is routed in two
//! passes, the first validating every packet and prefetching its first-level FIB entry
//! (ethernet-input prefetched it already for a received burst), then, between the passes,
//! the entries of the levels below (IPv4: the second-level entries of those that need one,
//! prefetched; IPv6: the lookups walked level by level over the vector, a [`Walk`] per
//! packet, each level's entry prefetched by the level above), the second looking up (IPv4)
//! or reading the walk's end (IPv6), resolving the next hop, rewriting and handing on, so
//! the vector's FIB misses overlap. What differs between IPv4 and IPv6 (header checks, the
//! FIB, the hop rewrite, the flow hash) is a [`Family`].
//!
//! Reads: `meta.rx_if`; the plan's L3 port of the input interface (VRF) and of the output
//! interface (source MAC), the output interface's `max_frame` and `up`; the VRF's FIB; the
//! next hops. Writes: the Ethernet destination and source, what the family's `rewrite`
//! writes; `meta.tx_if`; `meta.punt` for punted packets; for packets out of a bridge's
//! routed interface (BVI) `rx_if`, `bridge`, `vlan` as l2-bridge's `from_bvi` says.
//! Next: output; l2-bridge (out of a BVI: the frame enters its bridge as received on the
//! BVI, see `hand_out`); tunnel-encap (out of a tunnel: an addressed Ethernet one by
//! `hand_out`, an L3 one, gre l3 or ipip, by [`NextHop::Tunnel`] out of line); punt.

use std::net::Ipv4Addr;

use dpdk::Mbuf;

use crate::counters::DropReason;
use crate::graph::{Ctx, Graph, Meta, Next, Stage, Vector};
use crate::l3::fib::Walk;
use crate::l3::nexthop::{mac_word, word_mac, NextHop};
use crate::plan::{IfIndex, VrfPlan};
use crate::slowpath::PuntReason;
use crate::wire::ethernet::Mac;

/// Where the IP header starts (routed interfaces take untagged frames only).
pub const L3: usize = 14;

/// What the first pass found out about a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check<A> {
    /// To be looked up: the destination.
    Route(A),
    /// For the router itself (multicast, broadcast, link-local destinations).
    Local,
    Drop(DropReason),
    /// To the slow path before any lookup (NAT's `no_backend`).
    Punt(PuntReason),
}

/// Why a packet cannot be rewritten for its hop out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    Punt(PuntReason),
    Drop(DropReason),
    /// Over the MTU, and may be fragmented: [`Family::fragment`] it.
    Fragment,
}

/// What one IP version's forwarding stage knows.
pub(crate) trait Family {
    /// A destination address as the FIB takes it.
    type Addr: Copy;
    type Fib: 'static;
    const STAGE: Stage;
    /// IPv6 (else IPv4).
    const V6: bool;
    /// An address as the session table holds it (IPv4 in the low 32 bits), as the FIB
    /// takes it.
    fn addr(a: u128) -> Self::Addr;
    /// The stage's pending vector in the graph.
    fn vector(g: &mut Graph) -> &mut Box<Vector>;
    /// The graph's room for the stage's first-pass results.
    fn checks(g: &mut Graph) -> &mut Vec<Check<Self::Addr>>;
    fn fib(v: &VrfPlan) -> &Self::Fib;
    /// Validates the packet (the bytes after the Ethernet header).
    fn check(ip: &[u8]) -> Check<Self::Addr>;
    fn prefetch(f: &Self::Fib, a: Self::Addr);
    /// The next hop of `a`'s route, in one go.
    fn lookup(f: &Self::Fib, a: Self::Addr) -> Option<u32>;
    /// Whether lookups are walked level by level over the vector between the passes
    /// ([`Walk`]: IPv6, up to 14 levels), or read in the second pass after
    /// [`Family::prefetch_below`] (IPv4: one level below the first, where a walk measured
    /// slower).
    const WALKS: bool = false;
    /// Prefetches the entry below `a`'s first-level one (that one prefetched), if any.
    #[inline(always)]
    fn prefetch_below(_f: &Self::Fib, _a: Self::Addr) {}
    /// Starts the walk of `a` (its first-level entry prefetched): the FIB's `walk`.
    #[inline(always)]
    fn walk(_f: &Self::Fib, _a: Self::Addr) -> Walk {
        Walk::NONE
    }
    /// One level down (prefetched by the call before): the FIB's `step`.
    #[inline(always)]
    fn step(_f: &Self::Fib, _a: Self::Addr, _w: &mut Walk) -> bool {
        false
    }
    /// The next hop of `a`'s finished walk `w` (without [`Family::WALKS`], its lookup).
    #[inline(always)]
    fn walked(f: &Self::Fib, a: Self::Addr, _w: Walk) -> Option<u32> {
        Self::lookup(f, a)
    }
    /// A hash of the packet's flow, to pick one ECMP member per flow.
    fn flow_hash(ip: &[u8]) -> u32;
    /// Rewrites the IP header for the hop (TTL or hop limit) if the packet, `max_ip` bytes
    /// at most, may leave; the IP packet's length (Ethernet padding excluded).
    fn rewrite(ip: &mut [u8], max_ip: usize) -> Result<usize, NotSent>;
    /// Sends `m` (not rewritten yet) out of `out.tx_if` to `mac.0` from `mac.1` in
    /// fragments of at most `max_ip` bytes, for a `rewrite` that said [`NotSent::Fragment`].
    fn fragment(ctx: &Ctx, g: &mut Graph, m: Mbuf, out: &Meta, mac: (&Mac, &Mac), max_ip: usize);
    /// A packet whose route is one of the router's own addresses: to the slow path (IPv4
    /// goes by tunnel-decap first when there are tunnels).
    #[cold]
    #[inline(never)]
    fn local(ctx: &Ctx, g: &mut Graph, m: Mbuf, meta: &Meta)
    where
        Self: Sized,
    {
        punt::<Self>(ctx, g, m, meta, PuntReason::Local)
    }
}

/// The FIB of the VRF of routed interface `rx_if`, remembered for the run of packets from
/// one interface (a vector's packets mostly come from one).
struct FibOf<'a, F: Family> {
    ctx: &'a Ctx<'a>,
    last: (u16, Option<&'a F::Fib>),
}

impl<'a, F: Family> FibOf<'a, F> {
    #[inline(always)]
    fn get(&mut self, rx_if: u16) -> Option<&'a F::Fib> {
        if self.last.0 != rx_if {
            let plan = self.ctx.plan;
            let fib = plan
                .iface(rx_if)
                .and_then(|p| p.l3)
                .and_then(|l3| plan.vrf(l3.vrf))
                .map(F::fib);
            self.last = (rx_if, fib);
        }
        self.last.1
    }
}

/// What forwarding needs of an output interface: its MAC, `max_frame`, the bridge whose
/// routed interface it is, whether it is a tunnel; None when it is down or not an L3
/// interface. Remembered for the run of packets out of one interface.
#[derive(Clone, Copy)]
struct Out {
    /// The interface's MAC, [`mac_word`]'s form.
    src_mac: u64,
    max_frame: u32,
    bvi: Option<u16>,
    tunnel: bool,
}

struct OutOf<'a> {
    ctx: &'a Ctx<'a>,
    last: (u16, Option<Out>),
}

impl OutOf<'_> {
    #[inline(always)]
    fn get(&mut self, tx_if: u16) -> Option<Out> {
        if self.last.0 != tx_if {
            let plan = self.ctx.plan;
            let out = plan.iface(tx_if).filter(|p| p.up).and_then(|p| {
                p.l3.map(|l3| Out {
                    src_mac: mac_word(&l3.mac),
                    max_frame: p.max_frame,
                    bvi: p.bvi_bridge(),
                    tunnel: plan.is_tunnel(tx_if),
                })
            });
            self.last = (tx_if, out);
        }
        self.last.1
    }
}

/// Where a packet goes after the lookup.
enum Verdict {
    /// Out of the interface to the MAC in the word ([`mac_word`]).
    Forward(IfIndex, u64),
    /// Into an L3 tunnel toward the route's next hop ([`NextHop::Tunnel`]).
    Tunnel(IfIndex, Option<Ipv4Addr>),
    /// To one of the router's own addresses ([`Family::local`]).
    Local,
    Punt(PuntReason),
    Drop(DropReason),
}

/// Runs family `F`'s stage on its vector.
#[inline(always)]
pub(crate) fn run<F: Family>(ctx: &Ctx, g: &mut Graph) {
    let Some(mut vector) = g.spare.take() else {
        return;
    };
    std::mem::swap(F::vector(g), &mut vector);
    let n = vector.len();
    let mut fibs = FibOf::<F> {
        ctx,
        last: (u16::MAX, None),
    };
    // First pass: validate, prefetch each destination's first-level FIB entry. The results
    // go to the graph's room for them (taken out while the graph is handed packets; it
    // holds MAX_BURST, so the pushes never allocate).
    let mut checks = std::mem::take(F::checks(g));
    debug_assert!(
        checks.capacity() >= dpdk::MAX_BURST,
        "the stage ran inside itself"
    );
    checks.clear();
    // NAT (when the plan has it) translates the vector before its checks and lookups.
    if let Some((plan, t)) = ctx.plan.nat.as_deref().zip(ctx.plan.acls.sessions()) {
        let mut scratch = std::mem::take(&mut g.nat_scratch);
        crate::nat::translate::vector::<F>(ctx, plan, t, &mut vector, &mut checks, &mut scratch);
        g.nat_scratch = scratch;
        for (c, meta) in checks.iter().zip(vector.meta.iter()) {
            if let (Check::Route(dst), Some(f)) = (*c, fibs.get(meta.rx_if)) {
                F::prefetch(f, dst);
            }
        }
    } else {
        for i in 0..n {
            let c = match vector.pkts.data(i).get(L3..) {
                Some(ip) => F::check(ip),
                None => Check::Drop(DropReason::BadHeader),
            };
            if let (Check::Route(dst), Some(f)) = (c, fibs.get(vector.meta[i].rx_if)) {
                F::prefetch(f, dst);
            }
            checks.push(c);
        }
    }
    // Between the passes, so that the vector's misses at each level overlap as well: IPv6's
    // lookups, level by level over the whole vector (a level per 8 bits below /24), each
    // packet's walk taken on from where it stopped and the entry below prefetched; IPv4's
    // second-level entries (prefixes longer than /24) prefetched.
    let mut walks = std::mem::take(&mut g.fib_walks);
    debug_assert!(
        walks.capacity() >= dpdk::MAX_BURST,
        "the stage ran inside itself"
    );
    walks.clear();
    if F::WALKS {
        let mut deeper = false;
        for (c, meta) in checks.iter().zip(vector.meta.iter()) {
            let w = match (*c, fibs.get(meta.rx_if)) {
                (Check::Route(dst), Some(f)) => F::walk(f, dst),
                _ => Walk::NONE,
            };
            deeper |= w.pending();
            walks.push(w);
        }
        while deeper {
            deeper = false;
            for ((c, meta), w) in checks.iter().zip(vector.meta.iter()).zip(walks.iter_mut()) {
                if let (Check::Route(dst), true, Some(f)) = (*c, w.pending(), fibs.get(meta.rx_if))
                {
                    deeper |= F::step(f, dst, w);
                }
            }
        }
    } else {
        for (c, meta) in checks.iter().zip(vector.meta.iter()) {
            if let (Check::Route(dst), Some(f)) = (*c, fibs.get(meta.rx_if)) {
                F::prefetch_below(f, dst);
            }
        }
    }
    // Second pass: look up, resolve, rewrite, hand on.
    let nexthops = ctx.plan.l3.nexthops.as_deref();
    let mut outs = OutOf {
        ctx,
        last: (u16::MAX, None),
    };
    let v = &mut *vector;
    for (i, ((m, meta), check)) in v
        .pkts
        .drain()
        .zip(v.meta.iter())
        .zip(checks.iter())
        .enumerate()
    {
        let verdict = match *check {
            Check::Drop(r) => Verdict::Drop(r),
            Check::Punt(r) => Verdict::Punt(r),
            Check::Local => Verdict::Punt(PuntReason::Local),
            Check::Route(dst) => {
                let walk = walks.get(i).copied().unwrap_or(Walk::NONE);
                let id = fibs.get(meta.rx_if).and_then(|f| F::walked(f, dst, walk));
                match (id, nexthops) {
                    (Some(id), Some(nhs)) => match nhs.forward_of(id) {
                        Some((iface, mac)) => Verdict::Forward(iface, mac),
                        None => match nhs.get(id) {
                            NextHop::Ecmp { .. } => decide(
                                nhs.resolve(id, F::flow_hash(m.data().get(L3..).unwrap_or(&[]))),
                            ),
                            nh => decide(nh),
                        },
                    },
                    _ => Verdict::Drop(DropReason::NoRoute),
                }
            }
        };
        match verdict {
            Verdict::Forward(tx_if, dst_mac) => {
                forward::<F>(ctx, g, m, meta, (tx_if, outs.get(tx_if)), dst_mac)
            }
            Verdict::Tunnel(tx_if, remote) => into_tunnel::<F>(ctx, g, m, meta, tx_if, remote),
            Verdict::Local => F::local(ctx, g, m, meta),
            Verdict::Punt(reason) => punt::<F>(ctx, g, m, meta, reason),
            Verdict::Drop(reason) => ctx.counters.drop_packets(F::STAGE, reason, meta.rx_if, 1),
        }
    }
    *F::checks(g) = checks;
    g.fib_walks = walks;
    g.spare = Some(vector);
}

/// Where a next hop sends a packet: out of an interface to a MAC, to the slow path, or
/// nowhere.
#[inline(always)]
fn decide(nh: NextHop) -> Verdict {
    match nh {
        NextHop::Forward { iface, mac } => Verdict::Forward(iface, mac_word(&mac)),
        NextHop::Tunnel { iface, remote } => Verdict::Tunnel(iface, remote),
        NextHop::Resolve { .. } => Verdict::Punt(PuntReason::Resolve),
        NextHop::Local => Verdict::Local,
        NextHop::Drop | NextHop::Invalid | NextHop::Ecmp { .. } => {
            Verdict::Drop(DropReason::NoRoute)
        }
    }
}

/// Rewrites `m` for the hop out of `tx_if` (`out`: what [`OutOf`] says of it) to
/// `dst_mac` and queues it; hop expiry and packets over the MTU that may not be fragmented
/// go to the slow path instead.
#[inline(always)]
fn forward<F: Family>(
    ctx: &Ctx,
    g: &mut Graph,
    mut m: Mbuf,
    meta: &Meta,
    (tx_if, out): (u16, Option<Out>),
    dst_mac: u64,
) {
    let Some(Out {
        src_mac,
        max_frame,
        bvi,
        tunnel,
    }) = out
    else {
        ctx.counters
            .drop_packets(F::STAGE, DropReason::IfaceDown, tx_if, 1);
        return;
    };
    let frame = m.data_mut();
    // max_frame counts two VLAN tags on top of the MTU; a routed frame carries none.
    let max_ip = (max_frame as usize).saturating_sub(8 + L3);
    let len = match F::rewrite(&mut frame[L3..], max_ip) {
        Ok(n) => L3 + n,
        Err(NotSent::Punt(reason)) => return punt::<F>(ctx, g, m, meta, reason),
        Err(NotSent::Fragment) => {
            let out = Meta { tx_if, ..*meta };
            let macs = (&word_mac(dst_mac), &word_mac(src_mac));
            return F::fragment(ctx, g, m, &out, macs, max_ip);
        }
        Err(NotSent::Drop(reason)) => {
            // Over the MTU is counted against the output interface, the rest the input.
            let at = if reason == DropReason::MtuExceeded {
                tx_if
            } else {
                meta.rx_if
            };
            return ctx.counters.drop_packets(F::STAGE, reason, at, 1);
        }
    };
    write_macs(frame, dst_mac, src_mac);
    if m.len() > len {
        m.trim((m.len() - len) as u16);
    }
    hand_out(ctx, g, F::STAGE, m, Meta { tx_if, ..*meta }, bvi, tunnel);
}

/// Writes the Ethernet destination and source (MACs in [`mac_word`]'s form) of `frame`
/// (14 bytes at least: `rewrite` saw its IP header) as one 8-byte and one 4-byte store
/// from registers.
#[inline(always)]
fn write_macs(frame: &mut [u8], dst: u64, src: u64) {
    let head = dst << 16 | (src >> 32) & 0xffff;
    frame[0..8].copy_from_slice(&head.to_be_bytes());
    frame[8..12].copy_from_slice(&(src as u32).to_be_bytes());
}

/// Rewrites `m` for the hop into L3 tunnel `tx_if` (gre l3, ipip) as [`forward`] does,
/// but for the Ethernet addresses (the tunnel carries the IP packet only), and hands it to
/// tunnel-encap toward `remote`, the route's next hop. Fragments of a packet over the
/// tunnel's MTU go by [`hand_out`], whose tunnel-encap finds the next hop again. Out of
/// line, so that the loop does not grow for it.
#[cold]
#[inline(never)]
fn into_tunnel<F: Family>(
    ctx: &Ctx,
    g: &mut Graph,
    mut m: Mbuf,
    meta: &Meta,
    tx_if: IfIndex,
    remote: Option<Ipv4Addr>,
) {
    let Some(max_frame) = ctx
        .plan
        .iface(tx_if)
        .filter(|p| p.up && p.l3.is_some())
        .map(|p| p.max_frame)
    else {
        ctx.counters
            .drop_packets(F::STAGE, DropReason::IfaceDown, tx_if, 1);
        return;
    };
    let out = Meta { tx_if, ..*meta };
    let max_ip = (max_frame as usize).saturating_sub(8 + L3);
    let rewritten = match m.data_mut().get_mut(L3..) {
        Some(ip) => F::rewrite(ip, max_ip),
        None => Err(NotSent::Drop(DropReason::BadHeader)),
    };
    let len = match rewritten {
        Ok(n) => L3 + n,
        Err(NotSent::Punt(reason)) => return punt::<F>(ctx, g, m, meta, reason),
        Err(NotSent::Fragment) => return F::fragment(ctx, g, m, &out, (&[0; 6], &[0; 6]), max_ip),
        Err(NotSent::Drop(reason)) => {
            let at = if reason == DropReason::MtuExceeded {
                tx_if
            } else {
                meta.rx_if
            };
            return ctx.counters.drop_packets(F::STAGE, reason, at, 1);
        }
    };
    if m.len() > len {
        m.trim((m.len() - len) as u16);
    }
    crate::tunnel::encap::route_to(ctx, g, F::STAGE, m, out, remote);
}

/// Hands a routed frame on out of `out.tx_if`: to the output, or, when that is the routed
/// interface of bridge `bvi` (the plan's [`IfacePlan::bvi_bridge`]), into l2-bridge as
/// received on it, or, when it is a `tunnel` ([`ForwardingPlan::is_tunnel`]), to
/// tunnel-encap.
///
/// [`IfacePlan::bvi_bridge`]: crate::plan::IfacePlan::bvi_bridge
/// [`ForwardingPlan::is_tunnel`]: crate::plan::ForwardingPlan::is_tunnel
#[inline(always)]
pub(crate) fn hand_out(
    ctx: &Ctx,
    g: &mut Graph,
    stage: Stage,
    m: Mbuf,
    out: Meta,
    bvi: Option<u16>,
    tunnel: bool,
) {
    match bvi {
        None if tunnel => crate::tunnel::encap::route_into(ctx, g, stage, m, out),
        None => g.hand_on(ctx, stage, Next::Output, m, out),
        Some(bridge) => {
            let out = crate::l2::bridge::from_bvi(out.tx_if, bridge, &out);
            g.hand_on(ctx, stage, Next::L2Bridge, m, out)
        }
    }
}

#[inline(always)]
pub(crate) fn punt<F: Family>(ctx: &Ctx, g: &mut Graph, m: Mbuf, meta: &Meta, reason: PuntReason) {
    let out = Meta {
        punt: reason,
        ..*meta
    };
    g.hand_on(ctx, F::STAGE, Next::Punt, m, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_macs_writes_both_addresses_and_nothing_else() {
        let dst = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
        let src = [0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54];
        let mut frame = [0xa5u8; 16];
        write_macs(&mut frame, mac_word(&dst), mac_word(&src));
        assert_eq!(frame[0..6], dst);
        assert_eq!(frame[6..12], src);
        assert_eq!(frame[12..], [0xa5; 4]);
    }
}
