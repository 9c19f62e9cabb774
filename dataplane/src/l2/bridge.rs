//! l2-bridge: for each frame of a bridge domain, learn its source, look its destination up
//! and hand it (or flooded copies) to the output of the member(s) it leaves through,
//! pushing or popping 802.1Q tags per output member.
//!
//! A vector is switched in two passes: the first computes every frame's source and
//! destination probes (key hashes) and prefetches their home slots; the second learns,
//! looks up with those probes and hands on. The vector's table misses (two per frame in a
//! big table) overlap instead of each lookup waiting for its own. When ethernet-input
//! hands a received burst on whole, it has done the first pass already, while it parsed
//! the frames (the prefetches are then spread over its parsing, as here over the hashing).
//! Frames of one flow come in trains (between two VMs or pods a burst is often one flow):
//! a frame with the keys of the frame before it (same addresses, bridge, VLAN, input
//! member and VTEP) takes that frame's probes in the first pass and, if that frame went to
//! one member or VTEP, its verdict in the second, without hashing, learning or looking up
//! again; other frames pay a compare. A received burst that is one train from end to end
//! (ethernet-input says so) is decided once, by its first frame: when that goes to one
//! member that takes the frames' tagging as it is, the whole vector is queued on it
//! (`send_train`).
//!
//! A bridge whose routed interface (BVI, `bvi:BR`) routes ([`BridgePlan::bvi`]) is where
//! the bridge domain and the router meet. The BVI sits in the bridge's VLAN 0 (the
//! untagged domain: untagged members; access and trunk members' VLANs do not reach it):
//! - bridge -> router: a frame of VLAN 0 to the BVI's MAC goes to the router as received
//!   on the BVI (ethernet-input's `l3_next` of its ethertype: IPv4 to ip4-forward, IPv6 to
//!   ip6-forward, ARP to the slow path); a group frame of VLAN 0 (an ARP request, a
//!   Neighbor Solicitation) is flooded and a copy goes to the router the same way. A frame
//!   to the BVI's MAC in another VLAN is dropped (`vlan_mismatch`).
//! - router -> bridge: what the router sends out of the BVI (ip4-forward, ip6-forward, the
//!   slow path's injected frames) enters this stage as received on the BVI (`from_bvi`):
//!   looked up in the FDB, flooded if unknown.
//! - the BVI's MAC is never learned (not from the router's frames, not from a member's
//!   frame that claims it).
//!
//! For a bridge without a routing BVI, the cost is one test of `bvi` per frame.
//!
//! Tunnel members (vxlan): a frame tunnel-decap hands in (`meta.flags` TUNNEL) has its
//! remote VTEP (the outer source) beside it in the scratch's `remotes`, and its source is
//! learned with it: the MAC entry names the tunnel member and the VTEP (an entry that moves
//! between VTEPs of one tunnel is a move). A frame whose destination entry names a VTEP
//! goes to tunnel-encap toward it; a frame flooded to a tunnel member goes to tunnel-encap
//! toward every remote of the tunnel (head-end replication). Frames from a tunnel are never
//! sent back into it (split horizon, as for any member). For frames of other members the
//! cost is a test of the TUNNEL flag and a compare of the entry's VTEP (in the same word
//! as its port).
//!
//! Reads: `meta.rx_if`, `bridge`, `vlan`, `flags` (TAGGED), set by ethernet-input (a
//! vector may mix interfaces and bridges); the frame's MAC addresses; the plan's bridges
//! and members; the FDB; the learner's clock.
//! Writes: the frame's tag (pushed or popped); learn requests (this worker's queue);
//! `seen` stamps of FDB hits; for frames to the router `meta.rx_if` (the BVI), `flags`
//! (TAGGED cleared) and `punt` (ARP).
//! Next: output (the member's interface); tunnel-encap (a tunnel member); to the router:
//! ip4-forward, ip6-forward, punt.
//! Drops: `same_port` (destination on the input member), `flood_off` (unknown unicast,
//! flooding off), `vlan_mismatch` (destination member does not carry the VLAN, or the
//! BVI's MAC outside VLAN 0), `iface_down` (destination member down), `unconnected` (no
//! other member carries the VLAN or the bridge is gone), `no_mbuf` (no mbuf for a copy or
//! a tag), `not_ip` (a frame to the BVI that the router does not take).
//! No locks, no allocation (copies come from the mempool).

use dpdk::Mbuf;

use crate::counters::DropReason;
use crate::graph::{Ctx, Graph, Meta, Next, Stage, Train, Vector};
use crate::l2::fdb::{Fdb, FdbKey, Probe, Remote, ALL_REMOTES, NO_REMOTE};
use crate::l2::learn::{Clock, LearnQueues, LearnRequest};
use crate::output::Output;
use crate::plan::{BridgePlan, ForwardingPlan, IfIndex, L2Port, VlanMode};
use crate::slowpath::PuntReason;
use crate::tunnel::encap::EncapVector;
use crate::wire::ethernet::{self, Frame, VLAN_TAG_LEN};

const STAGE: Stage = Stage::L2Bridge;

/// What workers share for L2: the table, the learn queues and the learner's clock.
#[derive(Debug, Clone)]
pub struct L2Shared {
    pub fdb: std::sync::Arc<Fdb>,
    pub learn: std::sync::Arc<LearnQueues>,
    pub clock: std::sync::Arc<Clock>,
}

/// Size of the per-worker filter that keeps a worker from asking the learner about the
/// same MAC more than once a second.
const RECENT: usize = 256;

/// A worker's own bridge state: the learn-request filter and the first pass's probes.
pub struct BridgeScratch {
    pub(crate) filter: LearnFilter,
    /// The source and destination probes of each packet of the vector being switched
    /// (default where a frame needs no lookup): from ethernet-input when it handed the
    /// vector on whole ([`Graph`]'s `bridge_probed`), else from the first pass.
    pub(crate) probes: Box<[[Probe; 2]; dpdk::MAX_BURST]>,
    /// The remote VTEP (outer IPv4 source) of each frame of the bridge vector that came
    /// from a tunnel (`meta.flags` TUNNEL), written by tunnel-decap as it hands it in.
    pub(crate) remotes: Box<[Remote; dpdk::MAX_BURST]>,
}

impl BridgeScratch {
    /// Allocated once, when the worker starts.
    pub fn new(worker: usize) -> BridgeScratch {
        BridgeScratch {
            filter: LearnFilter {
                worker,
                recent: [u64::MAX; RECENT],
            },
            probes: Box::new([[Probe::default(); 2]; dpdk::MAX_BURST]),
            remotes: Box::new([NO_REMOTE; dpdk::MAX_BURST]),
        }
    }
}

/// Keeps a worker from asking the learner about the same MAC more than once a second.
pub struct LearnFilter {
    worker: usize,
    recent: [u64; RECENT],
}

impl LearnFilter {
    /// Asks the learner to learn `key` on `iface` (behind VTEP `remote`), at most once a
    /// second per key.
    #[inline]
    fn request_learn(
        &mut self,
        l2: &L2Shared,
        key: FdbKey,
        iface: IfIndex,
        remote: Remote,
        now: u64,
    ) {
        let tag = u64::from_be_bytes([
            0, 0, key.mac[0], key.mac[1], key.mac[2], key.mac[3], key.mac[4], key.mac[5],
        ]) ^ (u64::from(key.vlan) << 48)
            ^ (u64::from(key.bridge) << 36)
            ^ (u64::from(iface) << 54)
            ^ u64::from(remote);
        let stamp = tag.rotate_left(7) ^ now;
        let slot = (tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % RECENT;
        if self.recent[slot] != stamp {
            self.recent[slot] = stamp;
            l2.learn.request(
                self.worker,
                LearnRequest {
                    key,
                    port: iface,
                    remote,
                },
            );
        }
    }
}

/// Makes `m`'s tag fit the output member: pops it, pushes one for `vlan`, or leaves it.
/// False when there is no headroom for a tag (the caller drops the frame).
#[inline]
fn retag(m: &mut Mbuf, tagged_in: bool, out: &VlanMode, vlan: u16) -> bool {
    match (tagged_in, out.tagged()) {
        (true, true) | (false, false) => true,
        (true, false) => {
            ethernet::strip_tag_in_place(m.data_mut());
            m.adj(VLAN_TAG_LEN as u16)
        }
        (false, true) => {
            if !m.prepend(VLAN_TAG_LEN as u16) {
                return false;
            }
            ethernet::emit_tag_into_room(m.data_mut(), vlan);
            true
        }
    }
}

/// Hands `m` to the output of member `out` (mode `mode`), retagged.
#[inline(always)]
fn send(ctx: &Ctx, output: &mut Output, mut m: Mbuf, meta: &Meta, out: IfIndex, mode: &VlanMode) {
    if retag(&mut m, meta.tagged(), mode, meta.vlan) {
        if meta.needs_offload() && meta.tagged() != mode.tagged() {
            output.queue(ctx, out, m, &retagged(meta, mode.tagged()));
        } else {
            output.queue(ctx, out, m, meta);
        }
    } else {
        ctx.counters.drop_packets(STAGE, DropReason::NoMbuf, out, 1);
    }
}

/// The offload state of a frame whose tag was popped (`tagged` false) or pushed: the
/// partial checksum's start moves with the L3 header.
#[cold]
fn retagged(meta: &Meta, tagged: bool) -> Meta {
    let mut m = *meta;
    if m.csum.field_offset().is_some() {
        let tag = VLAN_TAG_LEN as u16;
        m.csum_start = if tagged {
            m.csum_start + tag
        } else {
            m.csum_start.saturating_sub(tag)
        };
    }
    m
}

/// Hands `m` to tunnel-encap for tunnel member `out` (mode `mode`), retagged, toward
/// `remote` (a VTEP, or [`ALL_REMOTES`]).
#[inline]
fn send_tunnel(
    ctx: &Ctx,
    encap: &mut EncapVector,
    mut m: Mbuf,
    meta: &Meta,
    out: IfIndex,
    mode: &VlanMode,
    remote: Remote,
) {
    if !retag(&mut m, meta.tagged(), mode, meta.vlan) {
        ctx.counters.drop_packets(STAGE, DropReason::NoMbuf, out, 1);
        return;
    }
    let meta = Meta {
        tx_if: out,
        flags: (meta.flags & !(Meta::TAGGED | Meta::TUNNEL))
            | if mode.tagged() { Meta::TAGGED } else { 0 },
        ..*meta
    };
    if let Err(m) = encap.push(m, meta, remote) {
        ctx.counters
            .drop_packets(STAGE, DropReason::GraphLoop, out, 1);
        drop(m);
    }
}

/// Where a bridged frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// To this member (with its membership).
    To(IfIndex, &'a L2Port),
    /// To this tunnel member (with its membership), toward this VTEP (or every remote of
    /// the tunnel: [`ALL_REMOTES`]).
    Tunnel(IfIndex, &'a L2Port, Remote),
    /// To every other member carrying the frame's VLAN.
    Flood,
    /// To the router, as received on this routed interface (the bridge's BVI).
    Route(IfIndex),
    /// Flooded, and a copy to the router as received on this routed interface.
    FloodRoute(IfIndex),
    /// Dropped for this reason, counted against this interface.
    Drop(DropReason, IfIndex),
}

/// The source and destination probes of a frame of a bridge that learns or not (default
/// where it needs no lookup).
#[inline(always)]
pub fn probes(learn: bool, meta: &Meta, frame: &[u8]) -> [Probe; 2] {
    match Frame::new_checked(frame) {
        Ok(f) => probes_of(learn, meta, &f),
        Err(_) => [Probe::default(); 2],
    }
}

/// [`probes`] of a parsed frame.
#[inline(always)]
pub fn probes_of(learn: bool, meta: &Meta, f: &Frame<&[u8]>) -> [Probe; 2] {
    let mut p = [Probe::default(); 2];
    let key = |mac| FdbKey {
        bridge: meta.bridge,
        vlan: meta.vlan,
        mac,
    };
    if learn && !ethernet::is_group(&f.src()) {
        p[0] = Probe::new(&key(f.src()));
    }
    if !ethernet::is_group(&f.dst()) {
        p[1] = Probe::new(&key(f.dst()));
    }
    p
}

/// Learns `frame`'s source (asks the learner, or refreshes the entry) and decides where
/// the frame goes, from the plan, its bridge (`meta.bridge`, None if gone) and the MAC
/// table. `probes` are the frame's from [`probes`]; `remote` the VTEP it came from out of
/// a tunnel member ([`NO_REMOTE`] for other members); `now` is the learner's clock.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub fn decide<'a>(
    plan: &'a ForwardingPlan,
    bridge: Option<&BridgePlan>,
    l2: &L2Shared,
    filter: &mut LearnFilter,
    meta: &Meta,
    frame: &[u8],
    [src_probe, dst_probe]: &[Probe; 2],
    remote: Remote,
    now: u64,
) -> Verdict<'a> {
    let rx_if = meta.rx_if;
    let Some(bridge) = bridge else {
        return Verdict::Drop(DropReason::Unconnected, rx_if);
    };
    let Ok(f) = Frame::new_checked(frame) else {
        return Verdict::Drop(DropReason::BadHeader, rx_if);
    };
    let (src, dst) = (f.src(), f.dst());
    // The BVI's MAC is the router's, never a member's: frames the router sends (and a
    // member's frame that claims it) teach nothing.
    if bridge.learn && !ethernet::is_group(&src) && !bridge.is_bvi_mac(&src) {
        match l2.fdb.lookup_probe(src_probe) {
            Some(hit)
                if (hit.entry.port == rx_if && hit.remote == remote) || hit.entry.is_static =>
            {
                l2.fdb.touch(&hit, now)
            }
            _ => {
                let key = FdbKey {
                    bridge: meta.bridge,
                    vlan: meta.vlan,
                    mac: src,
                };
                filter.request_learn(l2, key, rx_if, remote, now)
            }
        }
    }
    if let Some(bvi) = &bridge.bvi {
        if let Some(v) = to_bvi(bvi, meta, &dst) {
            return v;
        }
    }
    if ethernet::is_group(&dst) {
        return Verdict::Flood;
    }
    if let Some(hit) = l2.fdb.lookup_probe(dst_probe) {
        let out = hit.entry.port;
        return match plan.l2_port(out) {
            _ if out == rx_if => Verdict::Drop(DropReason::SamePort, rx_if),
            Some(o) if o.bridge == meta.bridge && o.up && o.mode.carries(meta.vlan) => {
                match hit.remote {
                    NO_REMOTE => Verdict::To(out, o),
                    r => Verdict::Tunnel(out, o, r),
                }
            }
            Some(o) if !o.up => Verdict::Drop(DropReason::IfaceDown, out),
            _ => Verdict::Drop(DropReason::VlanMismatch, out),
        };
    }
    if bridge.flood {
        Verdict::Flood
    } else {
        Verdict::Drop(DropReason::FloodOff, rx_if)
    }
}

/// Runs the stage on the graph's bridge vector.
pub(crate) fn run(ctx: &Ctx, g: &mut Graph) {
    let l2 = ctx.l2;
    let now = l2.clock.now();
    let probed = std::mem::take(&mut g.bridge_probed);
    let train = std::mem::take(&mut g.bridge_train);
    // The stage hands packets on to the output and to the router's stages, never to
    // itself, so it reads its vector in place.
    let Graph {
        bridge: vector,
        bridge_scratch: s,
        output,
        encap,
        ip4,
        ip6,
        punt,
        ..
    } = g;
    // A vector's frames are mostly of one bridge: its plan is looked up once per run of them.
    let mut cached: (u16, Option<&BridgePlan>) = (u16::MAX, None);
    let mut bridge_of = |id: u16| {
        if cached.0 != id {
            cached = (id, ctx.plan.bridge(id));
        }
        cached.1
    };
    // First pass (unless ethernet-input did it): the home slots of every frame's source and
    // destination keys are prefetched, so that the vector's table misses overlap instead of
    // each lookup waiting for its own.
    if !probed {
        for i in 0..vector.len() {
            let meta = &vector.meta[i];
            let learn = bridge_of(meta.bridge).is_some_and(|b| b.learn);
            let p = probes(learn, meta, vector.pkts.data(i));
            l2.fdb.prefetch(&p[0]);
            l2.fdb.prefetch(&p[1]);
            s.probes[i] = p;
        }
    }
    // Second pass: learn, look up, hand on. A frame with the keys of the frame before it
    // (a flow's frames come in trains: a burst between two VMs or pods is often one flow)
    // goes where that one went, if that was one member (or one VTEP), undecided: its
    // source was learned or refreshed by the first (a refresh of the same second, or a
    // request the filter would hold back) and its destination looked up a moment ago, as
    // good as a lookup now. `last`: the member and VTEP (NO_REMOTE: none) frame i - 1 went
    // to, if one; `prev`: its input member and VTEP. The memo's hit sends and moves on, so
    // that decide's verdicts still lead straight to their arms. Frames that never hit pay
    // the compare: l2-bridge 1-10 cycles a frame more on l2-1k and 7-8 on vxlan-encap, run
    // by run (perf/results/2026-12-05-l2-train-ab.md; carrying the verdict through a
    // variable instead, -v3-ab.md, measured no better).
    let v = &mut **vector;
    if train != Train::No {
        let filter = &mut s.filter;
        if send_train(
            ctx,
            train,
            filter,
            &s.probes[0],
            v,
            output,
            &mut bridge_of,
            now,
        ) {
            if g.input.is_empty() {
                std::mem::swap(&mut g.input, &mut g.bridge);
            }
            return;
        }
        // ethernet-input may have left the first frame's probes alone for the train.
        let (first, n) = (s.probes[0], v.len());
        if let Some(rest) = s.probes.get_mut(1..n) {
            rest.fill(first);
        }
    }
    let mut last: Option<(IfIndex, &L2Port, Remote)> = None;
    let mut prev: (IfIndex, Remote) = (0, NO_REMOTE);
    for (i, (m, meta)) in v.pkts.drain().zip(v.meta.iter()).enumerate() {
        let remote = if meta.flags & Meta::TUNNEL != 0 {
            s.remotes[i]
        } else {
            NO_REMOTE
        };
        let probes = &s.probes[i];
        if let Some((out, o, r)) = last {
            if Probe::same_keys(probes, &s.probes[i - 1]) && prev == (meta.rx_if, remote) {
                match r {
                    NO_REMOTE => send(ctx, output, m, meta, out, &o.mode),
                    r => send_tunnel(ctx, encap, m, meta, out, &o.mode, r),
                }
                continue;
            }
        }
        last = None;
        prev = (meta.rx_if, remote);
        let bridge = bridge_of(meta.bridge);
        match decide(
            ctx.plan,
            bridge,
            l2,
            &mut s.filter,
            meta,
            m.data(),
            probes,
            remote,
            now,
        ) {
            Verdict::To(out, o) => {
                last = Some((out, o, NO_REMOTE));
                send(ctx, output, m, meta, out, &o.mode)
            }
            Verdict::Tunnel(out, o, r) => {
                last = Some((out, o, r));
                send_tunnel(ctx, encap, m, meta, out, &o.mode, r)
            }
            Verdict::Flood => flood(ctx, (output, encap), m, meta, bridge, false),
            Verdict::Route(bvi) => to_router(ctx, [&mut *ip4, &mut *ip6, &mut *punt], m, meta, bvi),
            Verdict::FloodRoute(bvi) => flood_route(
                ctx,
                [&mut *ip4, &mut *ip6, &mut *punt],
                (output, encap),
                m,
                meta,
                bridge,
                bvi,
            ),
            Verdict::Drop(reason, iface) => ctx.counters.drop_packets(STAGE, reason, iface, 1),
        }
    }
    // A received burst handed on whole came in the input's vector: give it back, so that
    // every burst is received into the same memory.
    if g.input.is_empty() {
        std::mem::swap(&mut g.input, &mut g.bridge);
    }
}

/// A vector that is one train (`train`, from ethernet-input: a received burst of one
/// member, every frame with the first one's addresses and VLAN, `probes` the first one's),
/// decided once, by its first frame: when that goes to one member whose tagging is the
/// frames' own (no tag to push or pop), the vector is queued on it and true is returned:
/// as one burst when no frame has offload state ([`Train::Burst`]: the output takes it
/// whole when it fits the member's MTU and nothing else is pending there), else each
/// frame with its own (the output checks each against the MTU). Otherwise nothing is
/// sent, false: the caller switches the vector frame by frame, and the first frame's
/// learning (a refresh, or a request the filter then holds back) is done again, to the
/// same effect.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn send_train<'a>(
    ctx: &Ctx<'a>,
    train: Train,
    filter: &mut LearnFilter,
    probes: &[Probe; 2],
    v: &mut Vector,
    output: &mut Output,
    bridge_of: &mut impl FnMut(u16) -> Option<&'a BridgePlan>,
    now: u64,
) -> bool {
    if v.is_empty() {
        return false;
    }
    let meta = v.meta[0];
    let bridge = bridge_of(meta.bridge);
    let verdict = decide(
        ctx.plan,
        bridge,
        ctx.l2,
        filter,
        &meta,
        v.pkts.data(0),
        probes,
        NO_REMOTE,
        now,
    );
    let Verdict::To(out, o) = verdict else {
        return false;
    };
    if o.mode.tagged() != meta.tagged() {
        return false;
    }
    if let Train::Burst { bytes, max_len } = train {
        output.queue_burst(ctx, out, &mut v.pkts, bytes, max_len);
        return true;
    }
    for (m, meta) in v.pkts.drain().zip(v.meta.iter()) {
        output.queue(ctx, out, m, meta);
    }
    true
}

/// The metadata of a frame the router sends out of `bvi`, the routed interface of
/// `bridge`: it enters the bridge as received on the BVI, untagged in VLAN 0, with its
/// offload state.
#[inline(always)]
pub(crate) fn from_bvi(bvi: IfIndex, bridge: u16, meta: &Meta) -> Meta {
    Meta {
        rx_if: bvi,
        tx_if: bvi,
        bridge,
        vlan: 0,
        flags: meta.flags & !Meta::TAGGED,
        ..*meta
    }
}

/// Where a member's frame to `dst` goes when the bridge's routed interface is `bvi`: to the
/// router (to its MAC in VLAN 0), flooded and to the router (a group address in VLAN 0),
/// dropped (to its MAC in another VLAN), or None: switched as usual (the router's own frames
/// too). Out of line: bridges without a routing BVI never call it.
#[cold]
#[inline(never)]
fn to_bvi<'a>(bvi: &crate::plan::BviPlan, meta: &Meta, dst: &ethernet::Mac) -> Option<Verdict<'a>> {
    if meta.rx_if == bvi.iface {
        return None;
    }
    if *dst == bvi.mac {
        return Some(match meta.vlan {
            0 => Verdict::Route(bvi.iface),
            _ => Verdict::Drop(DropReason::VlanMismatch, meta.rx_if),
        });
    }
    (meta.vlan == 0 && ethernet::is_group(dst)).then_some(Verdict::FloodRoute(bvi.iface))
}

/// A group frame of VLAN 0 in a bridge whose BVI routes: a copy to the router (if it takes
/// the ethertype), the frame flooded.
#[cold]
#[inline(never)]
fn flood_route(
    ctx: &Ctx,
    router: [&mut Box<Vector>; 3],
    output: (&mut Output, &mut EncapVector),
    m: Mbuf,
    meta: &Meta,
    bridge: Option<&BridgePlan>,
    bvi: IfIndex,
) {
    if l3_of(&m).is_some() {
        match m.copy() {
            Some(c) => to_router(ctx, router, c, meta, bvi),
            None => ctx.counters.drop_packets(STAGE, DropReason::NoMbuf, bvi, 1),
        }
    }
    flood(ctx, output, m, meta, bridge, true)
}

/// The router's stage for an untagged frame (VLAN 0 frames are untagged), if it takes it.
#[inline(always)]
fn l3_of(m: &Mbuf) -> Option<Next> {
    let t = m.data().get(12..14)?;
    crate::input::l3_next(u16::from_be_bytes([t[0], t[1]]))
}

/// Hands `m` (a frame of VLAN 0) to the router as received on `bvi`: to the stage
/// [`l3_next`](crate::input::l3_next) names for its ethertype, whose vector is one of
/// `[ip4, ip6, punt]`; frames it does not take are dropped (`not_ip`).
#[cold]
#[inline(never)]
fn to_router(
    ctx: &Ctx,
    [ip4, ip6, punt]: [&mut Box<Vector>; 3],
    m: Mbuf,
    meta: &Meta,
    bvi: IfIndex,
) {
    let v = match l3_of(&m) {
        Some(Next::Ip4Forward) => ip4,
        Some(Next::Ip6Forward) => ip6,
        Some(Next::Punt) => punt,
        _ => {
            ctx.counters.drop_packets(STAGE, DropReason::NotIp, bvi, 1);
            return;
        }
    };
    let meta = Meta {
        rx_if: bvi,
        punt: PuntReason::Arp,
        flags: meta.flags & !(Meta::TAGGED | Meta::TUNNEL),
        ..*meta
    };
    if let Err(m) = v.push(m, meta) {
        ctx.counters
            .drop_packets(STAGE, DropReason::GraphLoop, bvi, 1);
        drop(m);
    }
}

/// Every other up member carrying the VLAN gets a copy; the last one gets the original.
/// A tunnel member's copy goes to tunnel-encap for every remote of the tunnel.
/// `delivered`: the router has a copy already, so no member to flood to is no drop.
#[inline(never)]
fn flood(
    ctx: &Ctx,
    (output, encap): (&mut Output, &mut EncapVector),
    m: Mbuf,
    meta: &Meta,
    bridge: Option<&BridgePlan>,
    delivered: bool,
) {
    let mut deliver = |m: Mbuf, out: IfIndex, mode: &VlanMode| {
        if ctx.plan.is_tunnel(out) {
            send_tunnel(ctx, encap, m, meta, out, mode, ALL_REMOTES)
        } else {
            send(ctx, output, m, meta, out, mode)
        }
    };
    let Some(bridge) = bridge else {
        ctx.counters
            .drop_packets(STAGE, DropReason::Unconnected, meta.rx_if, 1);
        return;
    };
    let mut last: Option<(IfIndex, &VlanMode)> = None;
    for &p in &bridge.members {
        if p == meta.rx_if {
            continue;
        }
        let Some(o) = ctx.plan.l2_port(p) else {
            continue;
        };
        if !o.up || !o.mode.carries(meta.vlan) {
            continue;
        }
        if let Some((lp, lmode)) = last.replace((p, &o.mode)) {
            match m.copy() {
                Some(c) => deliver(c, lp, lmode),
                None => ctx.counters.drop_packets(STAGE, DropReason::NoMbuf, lp, 1),
            }
        }
    }
    match last {
        Some((lp, lmode)) => deliver(m, lp, lmode),
        None if delivered => drop(m),
        // No other member carries this VLAN.
        None => ctx
            .counters
            .drop_packets(STAGE, DropReason::Unconnected, meta.rx_if, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l2::learn::{LearnPolicy, Learner};
    use crate::plan::{IfacePlan, Input, VlanSet};
    use std::sync::Arc;

    const A: IfIndex = 1; // access 10
    const B: IfIndex = 2; // access 10
    const T: IfIndex = 3; // trunk 10,20
    const D: IfIndex = 4; // access 10, down

    fn plan(flood: bool) -> ForwardingPlan {
        let mut ifaces = vec![None; 8];
        for (i, mode, up) in [
            (A, VlanMode::Access(10), true),
            (B, VlanMode::Access(10), true),
            (T, VlanMode::Trunk(VlanSet::new(&[10, 20])), true),
            (D, VlanMode::Access(10), false),
        ] {
            ifaces[usize::from(i)] = Some(IfacePlan {
                up,
                input: Input::Bridge,
                l2: Some(L2Port {
                    bridge: 1,
                    mode,
                    up,
                }),
                max_frame: IfacePlan::max_frame_of(1500),
                l3: None,
            });
        }
        let mut bridges = vec![None; 2];
        bridges[1] = Some(BridgePlan {
            learn: true,
            flood,
            members: vec![A, B, T, D],
            bvi: None,
        });
        ForwardingPlan {
            ifaces,
            bridges,
            ..Default::default()
        }
    }

    fn mac(n: u8) -> [u8; 6] {
        [2, 0, 0, 0, 0, n]
    }

    fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.resize(60, 0);
        f
    }

    fn meta(rx_if: IfIndex, vlan: u16) -> Meta {
        Meta {
            rx_if,
            bridge: 1,
            vlan,
            ..Meta::default()
        }
    }

    struct Rig {
        plan: ForwardingPlan,
        l2: L2Shared,
        learner: Learner,
        filter: LearnFilter,
    }

    impl Rig {
        fn new(flood: bool) -> Rig {
            let fdb = Arc::new(Fdb::new(64));
            let clock = Arc::new(Clock::default());
            let mut learner = Learner::new(fdb.clone(), clock.clone());
            learner.set_policy(
                1,
                LearnPolicy {
                    learn: true,
                    limit: 100,
                    age: 300,
                },
            );
            learner.set_members(1, vec![A, B, T, D]);
            Rig {
                plan: plan(flood),
                l2: L2Shared {
                    fdb,
                    learn: Arc::new(LearnQueues::new(1)),
                    clock,
                },
                learner,
                filter: BridgeScratch::new(0).filter,
            }
        }

        fn decide(&mut self, m: &Meta, f: &[u8]) -> Verdict<'_> {
            let bridge = self.plan.bridge(m.bridge);
            let learn = bridge.is_some_and(|b| b.learn);
            let p = probes(learn, m, f);
            decide(
                &self.plan,
                bridge,
                &self.l2,
                &mut self.filter,
                m,
                f,
                &p,
                NO_REMOTE,
                0,
            )
        }

        fn key(vlan: u16, n: u8) -> FdbKey {
            FdbKey {
                bridge: 1,
                vlan,
                mac: mac(n),
            }
        }
    }

    /// The bridge's decisions on byte arrays, with a real MAC table and learn queue.
    #[test]
    fn decides_on_bytes() {
        let mut r = Rig::new(false);
        r.learner.add_static(Rig::key(10, 0xb), B).unwrap();
        r.learner.add_static(Rig::key(20, 0xb), T).unwrap();
        r.learner.add_static(Rig::key(10, 0xd), D).unwrap();
        r.learner.add_static(Rig::key(10, 0xa), A).unwrap();
        // Known unicast goes to its member; broadcast floods.
        let v = r.decide(&meta(A, 10), &frame(mac(0xb), mac(0x1)));
        assert!(matches!(v, Verdict::To(B, o) if o.mode == VlanMode::Access(10)));
        assert_eq!(
            r.decide(&meta(A, 10), &frame([0xff; 6], mac(0x1))),
            Verdict::Flood
        );
        // The same MAC in another VLAN is another entry: from the trunk in VLAN 10 it is
        // B, in VLAN 20 it is the trunk itself.
        assert!(matches!(
            r.decide(&meta(T, 10), &frame(mac(0xb), mac(0x2))),
            Verdict::To(B, _)
        ));
        assert_eq!(
            r.decide(&meta(T, 20), &frame(mac(0xb), mac(0x2))),
            Verdict::Drop(DropReason::SamePort, T)
        );
        // Back to its own port, to a down member, unknown with flooding off, a runt.
        assert_eq!(
            r.decide(&meta(A, 10), &frame(mac(0xa), mac(0x1))),
            Verdict::Drop(DropReason::SamePort, A)
        );
        assert_eq!(
            r.decide(&meta(A, 10), &frame(mac(0xd), mac(0x1))),
            Verdict::Drop(DropReason::IfaceDown, D)
        );
        assert_eq!(
            r.decide(&meta(A, 10), &frame(mac(0x77), mac(0x1))),
            Verdict::Drop(DropReason::FloodOff, A)
        );
        assert_eq!(
            r.decide(&meta(A, 10), &[0u8; 10]),
            Verdict::Drop(DropReason::BadHeader, A)
        );
        // A bridge that is gone.
        let gone = Meta {
            bridge: 9,
            ..meta(A, 10)
        };
        assert_eq!(
            r.decide(&gone, &frame(mac(0xb), mac(0x1))),
            Verdict::Drop(DropReason::Unconnected, A)
        );
        // Unknown sources were asked about: 0x1 from A in VLAN 10, 0x2 from T in VLANs 10
        // and 20; the learner learns them.
        r.learner.drain(&r.l2.learn);
        let on = |vlan, n| r.l2.fdb.lookup(&Rig::key(vlan, n)).map(|h| h.entry.port);
        assert_eq!(
            (on(10, 0x1), on(10, 0x2), on(20, 0x2)),
            (Some(A), Some(T), Some(T))
        );
    }

    /// A bridge whose routed interface routes: frames of VLAN 0 to its MAC go to the
    /// router, group frames of VLAN 0 are flooded with a copy to the router, the router's
    /// own frames are switched, and the BVI's MAC is never learned.
    /// A partial checksum's start moves with the L3 header when a tag is popped or pushed;
    /// other offload state stays.
    #[test]
    fn retagging_moves_a_partial_checksums_start() {
        let tagged = Meta {
            csum: crate::graph::Csum::PartialTcp,
            csum_start: 38,
            gso: crate::graph::Gso::TcpV4,
            gso_size: 1448,
            ..Meta::default()
        };
        let popped = retagged(&tagged, false);
        assert_eq!((popped.csum_start, popped.gso_size), (34, 1448));
        assert_eq!(retagged(&popped, true).csum_start, 38);
        // A verified checksum has no start to move.
        let done = Meta {
            csum: crate::graph::Csum::Complete,
            ..Meta::default()
        };
        assert_eq!(retagged(&done, true), done);
    }

    #[test]
    fn a_routed_interface_meets_its_bridge_in_vlan_0() {
        const BVI: IfIndex = 6;
        let bvi_mac = [2, 0xbb, 0, 0, 0, 1];
        let mut r = Rig::new(false);
        if let Some(Some(b)) = r.plan.bridges.get_mut(1) {
            b.bvi = Some(crate::plan::BviPlan {
                iface: BVI,
                mac: bvi_mac,
            });
        }
        // B is an untagged member: VLAN 0, where the BVI is.
        if let Some(Some(p)) = r.plan.ifaces.get_mut(usize::from(B)) {
            p.l2 = Some(L2Port {
                bridge: 1,
                mode: VlanMode::Untagged,
                up: true,
            });
        }
        r.learner.add_static(Rig::key(0, 0xb), B).unwrap();
        // Members' frames: to the BVI's MAC in VLAN 0 routed, in another VLAN dropped;
        // broadcast of VLAN 0 flooded and routed, of another VLAN only flooded.
        assert_eq!(
            r.decide(&meta(A, 0), &frame(bvi_mac, mac(0x1))),
            Verdict::Route(BVI)
        );
        assert_eq!(
            r.decide(&meta(A, 10), &frame(bvi_mac, mac(0x1))),
            Verdict::Drop(DropReason::VlanMismatch, A)
        );
        assert_eq!(
            r.decide(&meta(A, 0), &frame([0xff; 6], mac(0x1))),
            Verdict::FloodRoute(BVI)
        );
        assert_eq!(
            r.decide(&meta(A, 10), &frame([0xff; 6], mac(0x1))),
            Verdict::Flood
        );
        // The router's frames (as received on the BVI): looked up, flooded, never routed
        // back; unknown unicast follows the bridge's flood setting.
        assert!(matches!(
            r.decide(&meta(BVI, 0), &frame(mac(0xb), bvi_mac)),
            Verdict::To(B, _)
        ));
        assert_eq!(
            r.decide(&meta(BVI, 0), &frame([0xff; 6], bvi_mac)),
            Verdict::Flood
        );
        assert_eq!(
            r.decide(&meta(BVI, 0), &frame(mac(0x55), bvi_mac)),
            Verdict::Drop(DropReason::FloodOff, BVI)
        );
        // A member's frame claiming the BVI's MAC is switched but teaches nothing.
        assert!(matches!(
            r.decide(&meta(A, 0), &frame(mac(0xb), bvi_mac)),
            Verdict::To(B, _)
        ));
        r.learner.drain(&r.l2.learn);
        let on = |vlan, m| {
            r.l2.fdb.lookup(&FdbKey {
                bridge: 1,
                vlan,
                mac: m,
            })
        };
        assert!(on(0, bvi_mac).is_none(), "the BVI's MAC is never learned");
        assert_eq!(on(0, mac(0x1)).map(|h| h.entry.port), Some(A));
        // Without a BVI, VLAN 0 broadcast is only flooded.
        if let Some(Some(b)) = r.plan.bridges.get_mut(1) {
            b.bvi = None;
        }
        assert_eq!(
            r.decide(&meta(A, 0), &frame([0xff; 6], mac(0x1))),
            Verdict::Flood
        );
    }

    /// A member behind a tunnel (here T): its frames teach the VTEP they came from, a move
    /// between VTEPs is learned again, and frames to such an entry go toward its VTEP;
    /// entries without one are switched as before.
    #[test]
    fn entries_behind_a_tunnel_name_their_vtep() {
        let mut r = Rig::new(false);
        let decide_from = |r: &mut Rig, m: &Meta, f: &[u8], remote| {
            let bridge = r.plan.bridge(m.bridge);
            let p = probes(true, m, f);
            let _ = decide(&r.plan, bridge, &r.l2, &mut r.filter, m, f, &p, remote, 0);
        };
        // From T (VTEP 10.0.0.2): learned with it.
        let f = frame(mac(0x1), mac(0x77));
        decide_from(&mut r, &meta(T, 10), &f, 0x0a00_0002);
        r.learner.drain(&r.l2.learn);
        let hit = r.l2.fdb.lookup(&Rig::key(10, 0x77)).unwrap();
        assert_eq!((hit.entry.port, hit.remote), (T, 0x0a00_0002));
        // To it: toward that VTEP.
        assert!(matches!(
            r.decide(&meta(A, 10), &frame(mac(0x77), mac(0x1))),
            Verdict::Tunnel(T, _, 0x0a00_0002)
        ));
        // The same MAC behind another VTEP of T: a move.
        decide_from(&mut r, &meta(T, 10), &f, 0x0a00_0003);
        r.learner.drain(&r.l2.learn);
        assert_eq!(
            r.l2.fdb.lookup(&Rig::key(10, 0x77)).unwrap().remote,
            0x0a00_0003
        );
        // Plain members' entries carry no VTEP and are switched as before.
        decide_from(&mut r, &meta(B, 10), &frame(mac(0x1), mac(0xb)), NO_REMOTE);
        r.learner.drain(&r.l2.learn);
        assert!(matches!(
            r.decide(&meta(A, 10), &frame(mac(0xb), mac(0x1))),
            Verdict::To(B, _)
        ));
    }

    #[test]
    fn unknown_unicast_floods_when_flooding_is_on() {
        let mut r = Rig::new(true);
        assert_eq!(
            r.decide(&meta(B, 10), &frame(mac(0x99), mac(0x3))),
            Verdict::Flood
        );
    }

    #[test]
    fn probes_skip_group_addresses_and_learning_off() {
        let m = meta(A, 10);
        let none = Probe::default();
        let [s, d] = probes(true, &m, &frame([0xff; 6], mac(1)));
        assert!(s != none && d == none);
        let [s, d] = probes(false, &m, &frame(mac(2), mac(1)));
        assert!(s == none && d != none);
        assert_eq!(probes(true, &m, &[0u8; 5]), [none, none]);
    }
}
