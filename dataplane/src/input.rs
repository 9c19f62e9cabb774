//! ethernet-input: the first stage of every frame a worker receives (and of frames the
//! slow path injects as if received). It applies the input interface's configuration:
//! cross-connected frames go straight to the output, bridge members' frames are parsed and
//! classified into their bridge VLAN, others are punted or dropped.
//!
//! Reads: `meta.rx_if` (or the whole vector's interface, for a received burst); the plan's
//! [`IfacePlan`](crate::plan::IfacePlan) of that interface (`up`, `input`, `l2`); each
//! bridged frame's Ethernet header and the mbuf's offload flags.
//! Writes: `meta.rx_if`; for bridged frames `bridge`, `vlan`, `flags` (TAGGED) and the
//! offload fields (`flags` OFFLOAD, `csum`, `csum_start`, `gso`, `gso_size`); `tx_if` for
//! cross-connected frames (on the per-packet path); `punt` for punted frames.
//! For a received burst handed on whole to l2-bridge it also does the bridge's first pass
//! (the frames' MAC table probes, prefetched; a frame with the addresses of the frame
//! before it takes its probes), while the headers are at hand, and says whether the burst
//! is one train (every frame with the first one's addresses and VLAN: l2-bridge decides
//! it once); a cross-connected burst is set aside whole for the output
//! (`Graph::xconnect`).
//! Frames of routed interfaces go by ethertype: IPv4 to ip4-forward (whole, when a burst is
//! all IPv4), IPv6 to ip6-forward (likewise), ARP to the slow path; each IP destination's
//! first-level FIB entry (the input interface's VRF) is prefetched on the way; VXLAN to
//! one of the VRF's VTEPs goes straight to tunnel-decap (the VXLAN bypass,
//! [`decap::Bypass`], which says what it takes).
//! Before any of that, the input interface's `in` ACL (if one is bound) checks every frame
//! ([`crate::acl::filter`]): denied frames are dropped here.
//! Next: l2-bridge, ip4-forward, ip6-forward, tunnel-decap, punt, output.
//! Drops: `iface_down` (input interface down), `unconnected` (nowhere to go),
//! `bad_header` (shorter than its Ethernet header), `vlan_mismatch` (a VLAN the bridge
//! member does not carry), `not_ip` (a routed interface's frame that is not IPv4, IPv6 or ARP, or
//! is tagged), `acl_deny` (and `bad_header` for a truncated IP packet) where an `in` ACL is
//! bound.

use dpdk::{BurstSummary, Mbuf};

use crate::acl::{filter, Acl, Dir};
use crate::counters::DropReason;
use crate::graph::{Ctx, Graph, Meta, Next, Stage, Train};
use crate::l2::bridge;
use crate::plan::{IfIndex, IfacePlan, Input, VrfPlan};
use crate::slowpath::PuntReason;
use crate::tunnel::decap;
use crate::wire::ethernet::Frame;

const STAGE: Stage = Stage::EthernetInput;

/// Runs the stage on the graph's input vector. `rx`: every packet arrived on this
/// interface (their metadata is not filled in yet), and the vector's summary.
pub(crate) fn run(ctx: &Ctx, g: &mut Graph, rx: Option<(IfIndex, BurstSummary)>) {
    match rx {
        Some((i, summary)) => whole_vector(ctx, g, i, &summary),
        None => per_packet(ctx, g),
    }
}

/// A received burst: one interface, one decision for all but bridged frames.
fn whole_vector(ctx: &Ctx, g: &mut Graph, rx_if: IfIndex, summary: &BurstSummary) {
    let Some(p) = ctx.plan.iface(rx_if).filter(|p| p.up) else {
        let reason = match ctx.plan.iface(rx_if) {
            Some(_) => DropReason::IfaceDown,
            None => DropReason::Unconnected,
        };
        ctx.counters
            .drop_packets(STAGE, reason, rx_if, g.input.len() as u64);
        g.input.clear();
        return;
    };
    let filtered;
    let summary = match in_acl(ctx, rx_if) {
        None => summary,
        Some(acl) => {
            if filter::check_vector(ctx, STAGE, acl, rx_if, &mut g.input) == 0 {
                summary
            } else if g.input.is_empty() {
                return;
            } else {
                filtered = g.input.pkts.summary();
                &filtered
            }
        }
    };
    let n = g.input.len();
    match p.input {
        // Sent whole, from this vector, when the output runs (Graph::flush).
        Input::Xconnect(peer) if !summary.tx_requests => g.xconnect = Some((peer, summary.bytes)),
        Input::Xconnect(peer) => xconnect_each(ctx, g, rx_if, peer),
        Input::Drop(reason) => {
            ctx.counters.drop_packets(STAGE, reason, rx_if, n as u64);
            g.input.clear();
        }
        Input::Punt(reason) => {
            for m in &mut g.input.meta[..n] {
                *m = Meta {
                    rx_if,
                    punt: reason,
                    ..Meta::default()
                };
            }
            hand_on_all(ctx, g, Next::Punt);
        }
        Input::Bridge if g.bridge.is_empty() => {
            // The bridge's first pass is done here, while the headers are at hand: each
            // frame's probes are computed and their table slots prefetched.
            let learn =
                p.l2.as_ref()
                    .and_then(|l2| ctx.plan.bridge(l2.bridge))
                    .is_some_and(|b| b.learn);
            let whole = Train::Burst {
                bytes: summary.bytes,
                max_len: summary.max_len,
            };
            if !summary.any_flags && one_train(&g.input.pkts) {
                // Every frame has the first one's first 16 bytes (addresses, tag or
                // ethertype) and the length a tagged header needs: the first one's
                // classification is every frame's.
                if let Ok((m, f)) = parse_bridged(p, rx_if, g.input.pkts.data(0)) {
                    let pr = bridge::probes_of(learn, &m, &f);
                    ctx.l2.fdb.prefetch(&pr[0]);
                    ctx.l2.fdb.prefetch(&pr[1]);
                    g.bridge_scratch.probes[0] = pr;
                    g.input.meta[..n].fill(m);
                    std::mem::swap(&mut g.input, &mut g.bridge);
                    g.bridge_probed = true;
                    g.bridge_train = whole;
                    return;
                }
            }
            let mut all_ok = true;
            let offloads = summary.any_flags;
            let v = &mut *g.input;
            // The last frame's addresses and bridge VLAN: a frame with the same (a flow's
            // frames come in trains) takes that frame's probes, hashed and prefetched.
            let mut prev: Option<((u64, u32), u16)> = None;
            // Whether every frame so far had the first one's addresses and VLAN.
            let mut train = true;
            for i in 0..n {
                match parse_bridged(p, rx_if, v.pkts.data(i)) {
                    Ok((mut m, f)) => {
                        let macs = f.macs();
                        let probes = &mut g.bridge_scratch.probes;
                        if prev == Some((macs, m.vlan)) {
                            probes[i] = probes[i - 1];
                        } else {
                            train &= i == 0;
                            let pr = bridge::probes_of(learn, &m, &f);
                            ctx.l2.fdb.prefetch(&pr[0]);
                            ctx.l2.fdb.prefetch(&pr[1]);
                            probes[i] = pr;
                            prev = Some((macs, m.vlan));
                        }
                        if offloads {
                            m.set_offload(&v.pkts.offload(i));
                        }
                        v.meta[i] = m;
                    }
                    Err(_) => {
                        all_ok = false;
                        prev = None;
                    }
                }
            }
            if all_ok {
                std::mem::swap(&mut g.input, &mut g.bridge);
                g.bridge_probed = true;
                g.bridge_train = match (train, offloads) {
                    (false, _) => Train::No,
                    (true, false) => whole,
                    (true, true) => Train::Frames,
                };
            } else {
                sort_out(ctx, g, p, rx_if);
            }
        }
        Input::Bridge => sort_out(ctx, g, p, rx_if),
        Input::Route => route(ctx, g, rx_if),
    }
}

/// Whether every frame of `b` (two or more) has the first one's first 16 bytes (its
/// addresses and its tag or ethertype) and the 18 bytes a tagged header takes: then the
/// first frame's classification is every frame's.
#[inline(always)]
fn one_train(b: &dpdk::Burst) -> bool {
    #[inline(always)]
    fn head(frame: &[u8]) -> Option<(u64, u64)> {
        let h = frame.get(..18)?;
        let w = |i: usize| {
            u64::from_ne_bytes([
                h[i],
                h[i + 1],
                h[i + 2],
                h[i + 3],
                h[i + 4],
                h[i + 5],
                h[i + 6],
                h[i + 7],
            ])
        };
        Some((w(0), w(8)))
    }
    let n = b.len();
    if n < 2 {
        return false;
    }
    let Some(first) = head(b.data(0)) else {
        return false;
    };
    (1..n).all(|i| head(b.data(i)) == Some(first))
}

/// Ethertypes on routed interfaces.
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;

/// The stage the router takes an untagged frame of `ethertype` in: ip4-forward,
/// ip6-forward, or the slow path (ARP; the caller sets `meta.punt`); None for what it does
/// not route. Used for routed interfaces' frames and for the frames a bridge hands to its
/// routed interface (l2-bridge).
#[inline(always)]
pub(crate) fn l3_next(ethertype: u16) -> Option<Next> {
    match ethertype {
        ETHERTYPE_IPV4 => Some(Next::Ip4Forward),
        ETHERTYPE_IPV6 => Some(Next::Ip6Forward),
        ETHERTYPE_ARP => Some(Next::Punt),
        _ => None,
    }
}

/// Where a frame received on a routed interface goes ([`l3_next`]). Routed interfaces
/// take untagged frames only.
#[inline(always)]
pub(crate) fn routed(frame: &[u8]) -> Result<Next, DropReason> {
    let Ok(f) = Frame::new_checked(frame) else {
        return Err(DropReason::BadHeader);
    };
    if f.vlan().is_some() {
        return Err(DropReason::NotIp);
    }
    l3_next(f.ethertype()).ok_or(DropReason::NotIp)
}

/// A received burst of a routed interface: to ip4-forward (ip6-forward) whole when every
/// frame is IPv4 (IPv6) and nothing is pending there, else frame by frame.
fn route(ctx: &Ctx, g: &mut Graph, rx_if: IfIndex) {
    let n = g.input.len();
    let mut all_ip4 = true;
    let mut all_ip6 = true;
    let mut all_vxlan = true;
    // The input VRF's FIB: each destination's first-level entry is prefetched here, while
    // the header is at hand, a whole stage before ip4-forward (ip6-forward) reads it.
    let vrf_id = ctx.plan.iface(rx_if).and_then(|p| p.l3).map(|l3| l3.vrf);
    let vrf = vrf_id.and_then(|id| ctx.plan.vrf(id));
    // VXLAN to one of this VRF's VTEPs goes straight to tunnel-decap.
    let mut bypass = vrf_id.and_then(|id| decap::Bypass::of(ctx.plan, id));
    for i in 0..n {
        let frame = g.input.pkts.data(i);
        let next = routed_or_bypass(frame, &mut bypass);
        if let Some(v) = vrf {
            prefetch_route(v, next, frame);
        }
        all_ip4 &= next == Ok(Next::Ip4Forward);
        all_ip6 &= next == Ok(Next::Ip6Forward);
        all_vxlan &= next == Ok(Next::TunnelDecap);
        g.input.meta[i] = Meta {
            rx_if,
            punt: PuntReason::Arp,
            ..Meta::default()
        };
    }
    if all_vxlan {
        return hand_on_all(ctx, g, Next::TunnelDecap);
    }
    if all_ip4 {
        return hand_on_all(ctx, g, Next::Ip4Forward);
    }
    if all_ip6 {
        return hand_on_all(ctx, g, Next::Ip6Forward);
    }
    route_mixed(ctx, g, rx_if, vrf_id);
}

/// [`routed`], with IPv4 frames that the VXLAN bypass takes to tunnel-decap.
#[inline(always)]
fn routed_or_bypass(frame: &[u8], bypass: &mut Option<decap::Bypass>) -> Result<Next, DropReason> {
    let next = routed(frame);
    if next == Ok(Next::Ip4Forward) && bypass.as_mut().is_some_and(|b| b.takes(frame)) {
        return Ok(Next::TunnelDecap);
    }
    next
}

/// Prefetches the first-level FIB entry of `frame`'s destination in `vrf`'s FIB of the
/// family `next` names.
#[inline(always)]
fn prefetch_route(vrf: &VrfPlan, next: Result<Next, DropReason>, frame: &[u8]) {
    match next {
        Ok(Next::Ip4Forward) => {
            if let Some(d) = frame.get(30..34) {
                vrf.fib4
                    .prefetch(u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
            }
        }
        Ok(Next::Ip6Forward) => {
            if let Some(d) = frame.get(38..54) {
                let mut a = [0u8; 16];
                a.copy_from_slice(d);
                vrf.fib6.prefetch(u128::from_be_bytes(a));
            }
        }
        _ => {}
    }
}

/// A routed burst of mixed kinds (IPv4 and IPv6, ARP, what is not routed): each frame to
/// its own stage. Out of line, with its own verdicts, so that the common burst does not
/// fill a MAX_BURST-long array first (that cost ethernet-input 16 stores per packet).
#[cold]
#[inline(never)]
fn route_mixed(ctx: &Ctx, g: &mut Graph, rx_if: IfIndex, vrf: Option<u16>) {
    let n = g.input.len();
    let mut bypass = vrf.and_then(|id| decap::Bypass::of(ctx.plan, id));
    let mut nexts = [Err(DropReason::NotIp); dpdk::MAX_BURST];
    for (i, next) in nexts.iter_mut().enumerate().take(n) {
        *next = routed_or_bypass(g.input.pkts.data(i), &mut bypass);
    }
    let mut i = 0;
    move_each(ctx, g, |_| {
        let next = nexts[i];
        i += 1;
        match next {
            Ok(next) => Some(next),
            Err(reason) => {
                ctx.counters.drop_packets(STAGE, reason, rx_if, 1);
                None
            }
        }
    });
}

/// A cross-connected burst with some frame that still needs a checksum or segmentation:
/// queued frame by frame, with its offload state.
#[cold]
fn xconnect_each(ctx: &Ctx, g: &mut Graph, rx_if: IfIndex, peer: IfIndex) {
    let mut input = std::mem::take(&mut g.input.pkts);
    for m in input.drain() {
        let mut meta = Meta {
            rx_if,
            tx_if: peer,
            ..Meta::default()
        };
        meta.set_offload(&m.offload());
        g.output.queue(ctx, peer, m, &meta);
    }
}

/// Fills in packet `i`'s metadata as a frame of bridge member `p`; the drop reason if it
/// cannot enter the bridge.
#[inline(always)]
fn classify(p: &IfacePlan, rx_if: IfIndex, g: &mut Graph, i: usize) -> Result<(), DropReason> {
    let v = &mut g.input;
    let mut m = bridged(p, rx_if, v.pkts.data(i))?;
    m.set_offload(&v.pkts.offload(i));
    v.meta[i] = m;
    Ok(())
}

/// The metadata of `frame`, received on `rx_if` (interface `p`), as a frame of the bridge
/// `p` is a member of (offload fields left unknown); the drop reason if it cannot enter.
#[inline(always)]
pub fn bridged(p: &IfacePlan, rx_if: IfIndex, frame: &[u8]) -> Result<Meta, DropReason> {
    parse_bridged(p, rx_if, frame).map(|(m, _)| m)
}

/// [`bridged`], with the parsed header.
#[inline(always)]
fn parse_bridged<'a>(
    p: &IfacePlan,
    rx_if: IfIndex,
    frame: &'a [u8],
) -> Result<(Meta, Frame<&'a [u8]>), DropReason> {
    let Some(member) = &p.l2 else {
        return Err(DropReason::Unconnected);
    };
    let Ok(f) = Frame::new_checked(frame) else {
        return Err(DropReason::BadHeader);
    };
    let tag = f.vlan();
    let Some(vlan) = member.mode.ingress(tag) else {
        return Err(DropReason::VlanMismatch);
    };
    let m = Meta {
        rx_if,
        bridge: member.bridge,
        vlan,
        flags: if tag.is_some() { Meta::TAGGED } else { 0 },
        ..Meta::default()
    };
    Ok((m, f))
}

/// Moves the whole input vector to `next`: by pointer when that stage has nothing
/// pending, else packet by packet.
fn hand_on_all(ctx: &Ctx, g: &mut Graph, next: Next) {
    let target = match next {
        Next::L2Bridge => &mut g.bridge,
        Next::Punt => &mut g.punt,
        Next::Ip4Forward => &mut g.ip4,
        Next::Ip6Forward => &mut g.ip6,
        Next::TunnelDecap => &mut g.decap,
        Next::EthernetInput | Next::Output => return move_each(ctx, g, |_| Some(next)),
    };
    if target.is_empty() {
        std::mem::swap(&mut g.input, target);
    } else {
        move_each(ctx, g, |_| Some(next));
    }
}

/// Moves every input packet to the stage `next_of` gives its metadata (None: it was
/// dropped and counted already).
fn move_each(ctx: &Ctx, g: &mut Graph, mut next_of: impl FnMut(&Meta) -> Option<Next>) {
    // Taken out (an empty spare takes its place), so that packets sent back to
    // ethernet-input land in a fresh vector.
    let Some(mut input) = g.spare.take() else {
        return;
    };
    std::mem::swap(&mut g.input, &mut input);
    let v = &mut *input;
    for (m, meta) in v.pkts.drain().zip(v.meta.iter()) {
        match next_of(meta) {
            Some(next) => g.hand_on(ctx, STAGE, next, m, *meta),
            None => drop(m),
        }
    }
    g.spare = Some(input);
}

/// A received bridged burst with some frames that cannot enter (or a bridge stage with
/// frames pending already): classify again, and hand on per frame.
#[cold]
fn sort_out(ctx: &Ctx, g: &mut Graph, p: &IfacePlan, rx_if: IfIndex) {
    let mut verdicts = [None; dpdk::MAX_BURST];
    for (i, v) in verdicts.iter_mut().enumerate().take(g.input.len()) {
        *v = classify(p, rx_if, g, i).err();
    }
    let mut i = 0;
    move_each(ctx, g, |_| {
        let v = verdicts[i];
        i += 1;
        match v {
            None => Some(Next::L2Bridge),
            Some(reason) => {
                ctx.counters.drop_packets(STAGE, reason, rx_if, 1);
                None
            }
        }
    });
}

/// Packets with their own `meta.rx_if` (injected as received, or back from a later stage).
#[inline(never)]
fn per_packet(ctx: &Ctx, g: &mut Graph) {
    let n = g.input.len();
    let mut nexts = [None; dpdk::MAX_BURST];
    for (i, next) in nexts.iter_mut().enumerate().take(n) {
        let rx_if = g.input.meta[i].rx_if;
        let verdict = match ctx.plan.iface(rx_if) {
            None => Err(DropReason::Unconnected),
            Some(p) if !p.up => Err(DropReason::IfaceDown),
            Some(p) => match admit(ctx, rx_if, g.input.pkts.data(i)).map(|()| p.input) {
                Err(reason) => Err(reason),
                Ok(input) => match input {
                    Input::Xconnect(peer) => {
                        g.input.meta[i].tx_if = peer;
                        Ok(Next::Output)
                    }
                    Input::Drop(reason) => Err(reason),
                    Input::Punt(reason) => {
                        g.input.meta[i].punt = reason;
                        Ok(Next::Punt)
                    }
                    Input::Bridge => classify(p, rx_if, g, i).map(|()| Next::L2Bridge),
                    Input::Route => {
                        g.input.meta[i].punt = PuntReason::Arp;
                        routed(g.input.pkts.data(i))
                    }
                },
            },
        };
        *next = match verdict {
            Ok(next) => Some(next),
            Err(reason) => {
                ctx.counters.drop_packets(STAGE, reason, rx_if, 1);
                None
            }
        };
    }
    let mut i = 0;
    move_each(ctx, g, |_| {
        let v = nexts[i];
        i += 1;
        v
    });
}

/// The `in` ACL of interface `rx_if`, if one is bound.
#[inline(always)]
fn in_acl<'a>(ctx: &Ctx<'a>, rx_if: IfIndex) -> Option<&'a Acl> {
    if ctx.plan.acls.is_empty() {
        return None;
    }
    ctx.plan.acls.get(rx_if, Dir::In)
}

/// Whether `rx_if`'s `in` ACL (if any) lets `frame` in; why not otherwise.
#[inline(always)]
pub(crate) fn admit(ctx: &Ctx, rx_if: IfIndex, frame: &[u8]) -> Result<(), DropReason> {
    match in_acl(ctx, rx_if) {
        Some(acl) => filter::check(ctx, acl, rx_if, Dir::In, frame),
        None => Ok(()),
    }
}

/// Puts `m` in the input vector as received on `rx_if` (for the inject stage).
pub(crate) fn push_received(ctx: &Ctx, g: &mut Graph, rx_if: IfIndex, m: Mbuf) {
    let meta = Meta {
        rx_if,
        ..Meta::default()
    };
    g.hand_on(ctx, Stage::Inject, Next::EthernetInput, m, meta);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{L2Port, VlanMode, VlanSet};

    fn member(mode: VlanMode) -> IfacePlan {
        IfacePlan {
            up: true,
            input: Input::Bridge,
            l2: Some(L2Port {
                bridge: 7,
                mode,
                up: true,
            }),
            max_frame: IfacePlan::max_frame_of(1500),
            l3: None,
        }
    }

    fn frame(tag: Option<u16>) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        if let Some(v) = tag {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.resize(f.len() + 46, 0);
        f
    }

    #[test]
    fn classifies_frames_into_their_bridge_vlan() {
        let access = member(VlanMode::Access(10));
        let m = bridged(&access, 3, &frame(None)).unwrap();
        assert_eq!((m.rx_if, m.bridge, m.vlan, m.tagged()), (3, 7, 10, false));
        assert_eq!(
            bridged(&access, 3, &frame(Some(10))),
            Err(DropReason::VlanMismatch)
        );
        let trunk = member(VlanMode::Trunk(VlanSet::new(&[20, 30])));
        let m = bridged(&trunk, 4, &frame(Some(30))).unwrap();
        assert_eq!((m.vlan, m.tagged()), (30, true));
        assert_eq!(
            bridged(&trunk, 4, &frame(Some(40))),
            Err(DropReason::VlanMismatch)
        );
        assert_eq!(
            bridged(&trunk, 4, &frame(None)),
            Err(DropReason::VlanMismatch)
        );
        let untagged = member(VlanMode::Untagged);
        assert_eq!(bridged(&untagged, 5, &frame(None)).unwrap().vlan, 0);
    }

    #[test]
    fn short_frames_and_non_members_are_refused() {
        let p = member(VlanMode::Untagged);
        assert_eq!(bridged(&p, 1, &[0u8; 13]), Err(DropReason::BadHeader));
        // A tag announced but cut off.
        let mut f = frame(Some(5));
        f.truncate(16);
        assert_eq!(
            bridged(&member(VlanMode::Access(5)), 1, &f),
            Err(DropReason::BadHeader)
        );
        let not_member = IfacePlan { l2: None, ..p };
        assert_eq!(
            bridged(&not_member, 1, &frame(None)),
            Err(DropReason::Unconnected)
        );
    }

    proptest::proptest! {
        /// Any bytes, any length: classification never panics and never reads past the
        /// frame (a tagged verdict needs the whole tagged header).
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)) {
            let p = member(VlanMode::Trunk(VlanSet::new(&[1, 2, 3, 4094])));
            if let Ok(m) = bridged(&p, 0, &bytes) {
                let header = if m.tagged() { 18 } else { 14 };
                proptest::prop_assert!(bytes.len() >= header);
            }
        }
    }
}
