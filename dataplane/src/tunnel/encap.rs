//! tunnel-encap: frames sent out of a tunnel interface, each toward a VTEP, become outer
//! packets routed in the tunnel's underlay VRF. The kinds that carry Ethernet (vxlan,
//! geneve, gre teb) carry the frame; gre l3 and ipip carry its IP packet (the Ethernet
//! header the router wrote is dropped; ARP and other non-IP frames are dropped as
//! `not_ip`), to their one remote, or, for a point-to-multipoint ipip tunnel (no remote,
//! Calico's tunl0), to the IPv4 next hop of the route that sent the packet in ([`l3_remote`]).
//!
//! Frames come from l2-bridge (a tunnel member: known unicast toward the VTEP its MAC
//! entry names, flooded frames toward every remote of the tunnel) and from the router
//! (an addressed tunnel, flannel's way: the inner Ethernet header from the neighbour entry
//! on the tunnel, the VTEP from the tunnel's MAC -> VTEP entries, [`route_into`]; an L3
//! tunnel by its route's [`NextHop::Tunnel`], [`route_to`]; the slow path's packets and
//! fragments out of a point-to-multipoint tunnel by the route to their inner destination,
//! looked up again in the tunnel's VRF).
//!
//! For each VTEP (head-end replication copies the frame for all but the last remote): the
//! underlay route to the VTEP is looked up in the tunnel's VRF ([`Fib4::lookup`], the next
//! hop resolved by [`NextHops::resolve`] with ECMP by the inner flow hash, as ip4-forward
//! does); outer Ethernet / IPv4 / UDP / VXLAN (Geneve: no options, Protocol Type 0x6558;
//! GRE: Protocol Type 0x6558 and the tunnel's key, no checksum or sequence) are written
//! into the headroom in front of the frame ([`encap_vxlan_v4`], [`encap_geneve_v4`],
//! [`encap_gre_v4`]): from the underlay interface's MAC to the next hop's, from the
//! tunnel's local address, TTL from the plan (0: the inner IPv4 TTL), DF from the plan, UDP
//! source port from the inner flow hash ([`vxlan::source_port`], the kernel's choice), UDP
//! checksum zero (RFC 7348 §5). A next hop not resolved yet sends the outer packet to the
//! slow path, which resolves it and sends the packet on, as for routed packets. A partial
//! inner checksum stays partial (its offset moves with the frame) and is completed by the
//! output stage. A GSO super-frame (a pod's TSO or USO) is first cut into its segments,
//! complete checksums each ([`crate::output::Output::segments`]), and each is encapsulated.
//!
//! Reads: `meta.tx_if` (the tunnel), `csum`, `csum_start`, `gso`, `gso_size`, `flags`; each frame's VTEP
//! (this vector's `remotes`); the plan's tunnel, the underlay VRF's FIB, the next hops and
//! the underlay interface's plan (`up`, `l3` MAC, `max_frame`).
//! Writes: the outer headers; `meta.tx_if` (the underlay interface), `csum_start` (+50 for
//! a partial checksum), `flags` (TAGGED and TUNNEL cleared); for punted packets `rx_if`
//! (the underlay interface) and `punt` (resolve). Counts the inner frame as sent on the
//! tunnel interface.
//! Next: output; l2-bridge (an underlay through a bridge's routed interface); punt.
//! Drops: `tunnel_mtu_exceeded` (over the tunnel's MTU, or once encapsulated over the
//! underlay interface's), `tunnel_no_remote` (no VTEP to send to), `no_route` (no underlay
//! route, or one into a tunnel or to the router itself), `iface_down` (underlay interface
//! down), `no_mbuf` (no copy or no headroom), `no_encap` (a kind or underlay family not
//! encapsulated yet).

use std::net::{IpAddr, Ipv4Addr};

use dpdk::{Mbuf, MAX_BURST};

use crate::counters::DropReason;
use crate::graph::{Csum, Ctx, Graph, Gso, Meta, Next, Stage, Vector};
use crate::l2::fdb::{Remote, ALL_REMOTES, NO_REMOTE};
use crate::l3::fib::Fib4;
use crate::l3::forward::hand_out;
use crate::l3::forward::L3;
use crate::l3::nexthop::{NextHop, NextHops};
use crate::plan::{TunnelEncap, TunnelPlan};
use crate::slowpath::PuntReason;
use crate::wire::ethernet::{
    Mac, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_TEB, HEADER_LEN as ETH, VLAN_TAG_LEN,
};
use crate::wire::geneve::GeneveRepr;
use crate::wire::gre::GreRepr;
use crate::wire::tunnel::{
    encap_geneve_v4, encap_gre_v4, encap_ipip_v4, encap_vxlan_v4, gre_v4_outer_len, Inner,
    OuterTemplate, OuterV4, GENEVE_V4_OUTER_LEN, IPIP_V4_OUTER_LEN, VXLAN_V4_OUTER_LEN,
};
use crate::wire::vxlan;

const STAGE: Stage = Stage::TunnelEncap;

const _: () = assert!(GENEVE_V4_OUTER_LEN == VXLAN_V4_OUTER_LEN);

/// Frames waiting for tunnel-encap, each with its VTEP (an IPv4 address as a `u32`, or
/// [`ALL_REMOTES`]).
pub struct EncapVector {
    pub(crate) v: Vector,
    pub(crate) remotes: [Remote; MAX_BURST],
}

impl EncapVector {
    /// Allocated once, when the worker starts.
    pub fn boxed() -> Box<EncapVector> {
        Box::new(EncapVector {
            v: Vector::default(),
            remotes: [NO_REMOTE; MAX_BURST],
        })
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.v.len()
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.v.is_empty()
    }

    /// Appends a frame for tunnel `meta.tx_if` toward `remote`; gives it back when full.
    #[inline]
    pub(crate) fn push(&mut self, m: Mbuf, meta: Meta, remote: Remote) -> Result<(), Mbuf> {
        let i = self.v.len();
        self.v.push(m, meta)?;
        self.remotes[i] = remote;
        Ok(())
    }
}

/// A routed frame out of addressed tunnel `meta.tx_if` (ip4-forward, ip6-forward, or
/// injected by the slow path): to tunnel-encap toward the VTEP the tunnel's MAC -> VTEP
/// entries give for its destination MAC, else toward every remote of the tunnel (as
/// Linux's default destination); out of an L3 tunnel (gre l3, ipip) toward its remote,
/// or, point-to-multipoint, toward the next hop of the route to the inner destination
/// through it; else dropped (`tunnel_no_remote`).
#[cold]
#[inline(never)]
pub(crate) fn route_into(ctx: &Ctx, g: &mut Graph, stage: Stage, m: Mbuf, meta: Meta) {
    let Some(t) = ctx.plan.tunnel(meta.tx_if) else {
        ctx.counters
            .drop_packets(stage, DropReason::NoEncap, meta.tx_if, 1);
        return;
    };
    let mut dst = [0u8; 6];
    if let Some(d) = m.data().get(0..6) {
        dst.copy_from_slice(d);
    }
    let remote = match t.vtep(&dst) {
        Some(IpAddr::V4(a)) => Some(u32::from(a)),
        // Point-to-point: its one remote; point-to-multipoint: by the route through it to
        // the inner destination.
        _ if !t.encap.carries_ethernet() && !t.remotes.is_empty() => {
            l3_remote(t, None, &[]).map(u32::from)
        }
        _ if !t.encap.carries_ethernet() => match route_of_inner(ctx, t, m.data()) {
            Some(NextHop::Tunnel { iface, remote }) if iface == t.iface => {
                l3_remote(t, remote, m.data()).map(u32::from)
            }
            _ => None,
        },
        _ if !t.remotes.is_empty() => Some(ALL_REMOTES),
        _ => None,
    };
    push(ctx, g, stage, m, meta, remote);
}

/// A routed packet into L3 tunnel `meta.tx_if` (gre l3, ipip) whose route's next hop is
/// a [`NextHop::Tunnel`] with `next_hop` (ip4-forward, ip6-forward): to tunnel-encap
/// toward the outer destination [`l3_remote`] gives, else dropped (`tunnel_no_remote`).
#[cold]
#[inline(never)]
pub(crate) fn route_to(
    ctx: &Ctx,
    g: &mut Graph,
    stage: Stage,
    m: Mbuf,
    meta: Meta,
    next_hop: Option<Ipv4Addr>,
) {
    let remote = match ctx.plan.tunnel(meta.tx_if) {
        Some(t) if !t.encap.carries_ethernet() => l3_remote(t, next_hop, m.data()),
        Some(_) => return route_into(ctx, g, stage, m, meta),
        None => {
            ctx.counters
                .drop_packets(stage, DropReason::NoEncap, meta.tx_if, 1);
            return;
        }
    };
    push(ctx, g, stage, m, meta, remote.map(u32::from));
}

/// Queues `m` for tunnel-encap toward `remote`, or drops it (`tunnel_no_remote`).
#[inline]
fn push(ctx: &Ctx, g: &mut Graph, stage: Stage, m: Mbuf, meta: Meta, remote: Option<Remote>) {
    let Some(remote) = remote.filter(|r| *r != NO_REMOTE) else {
        ctx.counters
            .drop_packets(stage, DropReason::TunnelNoRemote, meta.tx_if, 1);
        return;
    };
    if let Err(m) = g.encap.push(m, meta, remote) {
        ctx.counters
            .drop_packets(stage, DropReason::GraphLoop, meta.tx_if, 1);
        drop(m);
    }
}

/// The outer destination of `frame` (Ethernet, then IP) into L3 tunnel `t` by a route
/// whose next hop is `next_hop`: the tunnel's remote (a point-to-point tunnel, as Linux
/// ignores the gateway there), else the next hop (point-to-multipoint, Calico's
/// `via NODE dev tunl0 onlink`), else the inner IPv4 destination (a route without a
/// gateway, as Linux's ipip does). Pure: unit-tested.
#[inline]
fn l3_remote(t: &TunnelPlan, next_hop: Option<Ipv4Addr>, frame: &[u8]) -> Option<Ipv4Addr> {
    match t.remotes.first() {
        Some(IpAddr::V4(a)) => Some(*a),
        Some(IpAddr::V6(_)) => None,
        None => next_hop.or_else(|| {
            let ip = frame.get(ETH..)?;
            let d = ip.get(16..20).filter(|_| is_ipv4(frame))?;
            Some(Ipv4Addr::new(d[0], d[1], d[2], d[3]))
        }),
    }
}

/// Whether `frame`'s EtherType is IPv4.
#[inline]
fn is_ipv4(frame: &[u8]) -> bool {
    frame.get(12..14) == Some(&ETHERTYPE_IPV4.to_be_bytes())
}

/// The next hop of the route to `frame`'s inner destination (IPv4 or IPv6) in the VRF of
/// tunnel `t`'s interface (the overlay), ECMP resolved by the inner flow hash.
fn route_of_inner(ctx: &Ctx, t: &TunnelPlan, frame: &[u8]) -> Option<NextHop> {
    let plan = ctx.plan;
    let vrf = plan.vrf(plan.iface(t.iface)?.l3?.vrf)?;
    let nhs = plan.l3.nexthops.as_deref()?;
    let ip = frame.get(L3..)?;
    let id = match u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]) {
        ETHERTYPE_IPV4 => {
            let d = ip.get(16..20)?;
            vrf.fib4
                .lookup(u32::from_be_bytes([d[0], d[1], d[2], d[3]]))?
        }
        ETHERTYPE_IPV6 => {
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            vrf.fib6.lookup(u128::from_be_bytes(d))?
        }
        _ => return None,
    };
    Some(nhs.resolve(id, inner_hash(frame)))
}

/// Runs the stage on the graph's encap vector.
pub(crate) fn run(ctx: &Ctx, g: &mut Graph) {
    let Some(mut work) = g.encap_spare.take() else {
        return;
    };
    std::mem::swap(&mut g.encap, &mut work);
    {
        let EncapVector { v, remotes } = &mut *work;
        let mut paths = PathCache::default();
        // The last frame's tunnel and its settings (a vector's frames mostly go into one).
        let mut last: Option<(u16, Option<(&TunnelPlan, Encap)>)> = None;
        for (i, (m, meta)) in v.pkts.drain().zip(v.meta.iter()).enumerate() {
            let tunnel = match last {
                Some((tif, tunnel)) if tif == meta.tx_if => tunnel,
                _ => {
                    let tunnel = ctx
                        .plan
                        .tunnel(meta.tx_if)
                        .and_then(|t| Some((t, encap_of(t)?)));
                    last = Some((meta.tx_if, tunnel));
                    tunnel
                }
            };
            if let Err(reason) = crate::acl::filter::check_tunnel_out(ctx, meta.tx_if, &m) {
                ctx.counters.drop_packets(STAGE, reason, meta.tx_if, 1);
                continue;
            }
            if meta.gso != Gso::None {
                segmented(ctx, g, &mut paths, m, meta, remotes[i], tunnel);
                continue;
            }
            one(ctx, g, &mut paths, m, meta, remotes[i], tunnel);
        }
    }
    g.encap_spare = Some(work);
}

/// What a tunnel this stage encapsulates for puts in front of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// VXLAN with this VNI to this UDP port.
    Vxlan { vni: u32, port: u16 },
    /// Geneve without options, Protocol Type 0x6558.
    Geneve { vni: u32, port: u16 },
    /// GRE with Protocol Type 0x6558 (transparent Ethernet bridging) and this key.
    GreTeb { key: Option<u32> },
    /// GRE carrying the frame's IP packet (its Ethernet header dropped) with this key.
    GreL3 { key: Option<u32> },
    /// IP in IPv4 (protocol 4 or 41) carrying the frame's IP packet.
    Ipip,
}

/// A tunnel this stage encapsulates for: its kind and its local IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Encap {
    kind: Kind,
    local: Ipv4Addr,
}

impl Encap {
    /// The GRE header for a payload of `protocol` with `key`.
    fn gre(protocol: u16, key: Option<u32>) -> GreRepr {
        GreRepr {
            protocol,
            checksum: false,
            key,
            seq: None,
        }
    }

    /// Whether it carries IP packets (the frame's Ethernet header is dropped).
    #[inline]
    fn carries_ip(&self) -> bool {
        matches!(self.kind, Kind::GreL3 { .. } | Kind::Ipip)
    }

    /// Bytes of outer headers, Ethernet included.
    #[inline]
    fn outer_len(&self) -> usize {
        match self.kind {
            Kind::Vxlan { .. } | Kind::Geneve { .. } => VXLAN_V4_OUTER_LEN,
            Kind::GreTeb { key } | Kind::GreL3 { key } => {
                gre_v4_outer_len(&Encap::gre(ETHERTYPE_TEB, key))
            }
            Kind::Ipip => IPIP_V4_OUTER_LEN,
        }
    }
}

/// The settings of tunnel `t` if this stage encapsulates for it: every kind over IPv4.
#[inline]
fn encap_of(t: &TunnelPlan) -> Option<Encap> {
    let IpAddr::V4(local) = t.local else {
        return None;
    };
    let kind = match t.encap {
        TunnelEncap::Vxlan { vni, port } => Kind::Vxlan { vni, port },
        TunnelEncap::Geneve { vni, port } => Kind::Geneve { vni, port },
        TunnelEncap::Gre { key, teb: true } => Kind::GreTeb { key },
        TunnelEncap::Gre { key, teb: false } => Kind::GreL3 { key },
        TunnelEncap::Ipip => Kind::Ipip,
    };
    Some(Encap { kind, local })
}

/// The longest inner frame tunnel `t` takes: its MTU, the Ethernet header, and a tag if
/// the frame carries one.
#[inline]
fn max_inner(t: &TunnelPlan, frame: &[u8]) -> usize {
    let tagged = frame.get(12..14) == Some(&[0x81, 0x00]);
    usize::from(t.mtu) + ETH + if tagged { VLAN_TAG_LEN } else { 0 }
}

#[inline(always)]
fn one(
    ctx: &Ctx,
    g: &mut Graph,
    paths: &mut PathCache,
    m: Mbuf,
    meta: &Meta,
    remote: Remote,
    tunnel: Option<(&TunnelPlan, Encap)>,
) {
    let tif = meta.tx_if;
    let Some((t, vx)) = tunnel else {
        ctx.counters
            .drop_packets(STAGE, DropReason::NoEncap, tif, 1);
        return;
    };
    if m.len() > max_inner(t, m.data()) {
        ctx.counters
            .drop_packets(STAGE, DropReason::TunnelMtuExceeded, tif, 1);
        return;
    }
    match remote {
        NO_REMOTE => ctx
            .counters
            .drop_packets(STAGE, DropReason::TunnelNoRemote, tif, 1),
        ALL_REMOTES => replicate(ctx, g, paths, m, meta, t, vx),
        r => to_vtep(ctx, g, paths, m, meta, t, vx, Ipv4Addr::from(r)),
    }
}

/// A pod's GSO super-frame into a tunnel: cut into its segments first (a virtio-net header,
/// or a DPDK port without tunnel TSO, could not say how to cut it once encapsulated), then
/// each encapsulated like any frame.
#[cold]
#[inline(never)]
fn segmented(
    ctx: &Ctx,
    g: &mut Graph,
    paths: &mut PathCache,
    m: Mbuf,
    meta: &Meta,
    remote: Remote,
    tunnel: Option<(&TunnelPlan, Encap)>,
) {
    let mut segs = match g.output.segments(&m, meta) {
        Ok(s) => s,
        Err(reason) => {
            ctx.counters.drop_packets(STAGE, reason, meta.tx_if, 1);
            return;
        }
    };
    drop(m);
    let seg_meta = Meta {
        csum: Csum::Complete,
        csum_start: 0,
        gso: Gso::None,
        gso_size: 0,
        flags: meta.flags & !Meta::OFFLOAD,
        ..*meta
    };
    for s in segs.drain() {
        one(ctx, g, paths, s, &seg_meta, remote, tunnel);
    }
}

/// Head-end replication: a copy toward each remote of `t` but the last, which gets `m`.
#[inline(never)]
fn replicate(
    ctx: &Ctx,
    g: &mut Graph,
    paths: &mut PathCache,
    m: Mbuf,
    meta: &Meta,
    t: &TunnelPlan,
    vx: Encap,
) {
    let mut last: Option<Ipv4Addr> = None;
    for r in &t.remotes {
        let IpAddr::V4(r) = *r else { continue };
        if let Some(prev) = last.replace(r) {
            match m.copy() {
                Some(c) => to_vtep(ctx, g, paths, c, meta, t, vx, prev),
                None => ctx
                    .counters
                    .drop_packets(STAGE, DropReason::NoMbuf, t.iface, 1),
            }
        }
    }
    match last {
        Some(r) => to_vtep(ctx, g, paths, m, meta, t, vx, r),
        None => ctx
            .counters
            .drop_packets(STAGE, DropReason::TunnelNoRemote, t.iface, 1),
    }
}

/// A hash of the inner frame's flow: its IPv4 addresses, protocol and ports (ip4-forward's
/// ECMP hash), else its MAC addresses.
#[inline(always)]
fn inner_hash(frame: &[u8]) -> u32 {
    if frame.get(12..14) == Some(&ETHERTYPE_IPV4.to_be_bytes()) {
        if let Some(ip) = frame.get(ETH..) {
            return crate::l3::ip4::flow_hash(ip);
        }
    }
    let Some(macs) = frame.get(0..12) else {
        return 0;
    };
    let a = u64::from_be_bytes([0, 0, macs[0], macs[1], macs[2], macs[3], macs[4], macs[5]]);
    let b = u64::from_be_bytes([0, 0, macs[6], macs[7], macs[8], macs[9], macs[10], macs[11]]);
    let h = (a ^ b.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 32) as u32 ^ h as u32
}

/// The outer TTL: the tunnel's, or (0: inherit) the inner IPv4 packet's, else 64.
#[inline]
fn outer_ttl(t: &TunnelPlan, frame: &[u8]) -> u8 {
    if t.ttl != 0 {
        return t.ttl;
    }
    match frame.get(12..14) {
        Some(e) if e == ETHERTYPE_IPV4.to_be_bytes() => frame.get(ETH + 8).copied().unwrap_or(64),
        _ => 64,
    }
}

/// Where the underlay sends packets to `remote` from VRF `vrf`: the next hop, resolved to
/// one ECMP member by `hash`, and whether that member depends on the hash.
#[inline]
fn underlay(
    fib: Option<&Fib4>,
    nhs: Option<&NextHops>,
    remote: Ipv4Addr,
    hash: u32,
) -> (NextHop, bool) {
    match (fib.and_then(|f| f.lookup(u32::from(remote))), nhs) {
        (Some(id), Some(nhs)) => {
            let ecmp = matches!(nhs.get(id), NextHop::Ecmp { .. });
            (nhs.resolve(id, hash), ecmp)
        }
        _ => (NextHop::Invalid, false),
    }
}

/// The underlay path of outer packets to one VTEP.
#[derive(Debug, Clone, Copy)]
struct Path {
    /// The underlay interface and its MAC, `max_frame`, and bridge if it is a BVI.
    oif: u16,
    src_mac: Mac,
    max_frame: u32,
    bvi: Option<u16>,
    /// The next hop's MAC, if resolved.
    dst_mac: Option<Mac>,
}

/// The last VTEP's path, kept for the rest of the vector (the plan does not change within
/// one), so that a vector's packets to one VTEP look the path up once: (tunnel interface,
/// VTEP), its path and, once the next hop is resolved, the outer headers of a tunnel that
/// carries Ethernet as a template. Paths through an ECMP group are not kept (the member
/// follows each packet's hash).
#[derive(Default)]
pub(crate) struct PathCache(Option<((u16, u32), Path, Option<OuterTemplate>)>);

impl PathCache {
    /// The kept path's template (by reference: a template is 70 bytes).
    #[inline(always)]
    fn template(&self) -> Option<&OuterTemplate> {
        self.0.as_ref().and_then(|(_, _, tm)| tm.as_ref())
    }
}

/// The underlay path from tunnel `t` to `remote` for a packet of flow hash `hash`, or the
/// drop reason and the interface to count it against.
#[inline(always)]
fn path(
    ctx: &Ctx,
    paths: &mut PathCache,
    t: &TunnelPlan,
    vx: Encap,
    remote: Ipv4Addr,
    hash: u32,
) -> Result<(Path, bool), (DropReason, u16)> {
    let key = (t.iface, u32::from(remote));
    if let Some((k, p, _)) = &paths.0 {
        if *k == key {
            return Ok((*p, true));
        }
    }
    find_path(ctx, paths, t, vx, remote, hash)
}

/// [`path`] when the kept one is not it: looked up (and kept unless ECMP).
#[inline(never)]
fn find_path(
    ctx: &Ctx,
    paths: &mut PathCache,
    t: &TunnelPlan,
    vx: Encap,
    remote: Ipv4Addr,
    hash: u32,
) -> Result<(Path, bool), (DropReason, u16)> {
    let key = (t.iface, u32::from(remote));
    let plan = ctx.plan;
    let fib = plan.vrf(t.vrf).map(|v| &*v.fib4);
    let (nh, ecmp) = underlay(fib, plan.l3.nexthops.as_deref(), remote, hash);
    let (oif, dst_mac) = match nh {
        NextHop::Forward { iface, mac } => (iface, Some(mac)),
        NextHop::Resolve { iface } => (iface, None),
        _ => return Err((DropReason::NoRoute, t.iface)),
    };
    let Some((src_mac, max_frame, bvi)) = plan
        .iface(oif)
        .filter(|p| p.up)
        .and_then(|p| p.l3.map(|l3| (l3.mac, p.max_frame, p.bvi_bridge())))
    else {
        return Err((DropReason::IfaceDown, oif));
    };
    if plan.is_tunnel(oif) {
        // No tunnel in a tunnel.
        return Err((DropReason::NoRoute, t.iface));
    }
    let p = Path {
        oif,
        src_mac,
        max_frame,
        bvi,
        dst_mac,
    };
    if ecmp {
        return Ok((p, false));
    }
    let tm = dst_mac.and_then(|dst_mac| template(t, vx, src_mac, dst_mac, remote));
    paths.0 = Some((key, p, tm));
    Ok((p, true))
}

/// The outer headers of tunnel `t`'s packets to `remote` from `src_mac` to `dst_mac`, as a
/// template, for the kinds that carry Ethernet (their headers do not depend on the frame).
#[inline(never)]
fn template(
    t: &TunnelPlan,
    vx: Encap,
    src_mac: Mac,
    dst_mac: Mac,
    remote: Ipv4Addr,
) -> Option<OuterTemplate> {
    if vx.carries_ip() {
        return None;
    }
    let outer = OuterV4 {
        src_mac,
        dst_mac,
        src: vx.local,
        dst: remote,
        ttl: 0,
        dscp_ecn: 0,
        dont_fragment: t.df,
        ident: 0,
    };
    let mut room = [0u8; 64];
    let h = room.get_mut(..vx.outer_len())?;
    emit(vx, h, &outer, 0, None, 0)?;
    OuterTemplate::new(h)
}

/// Writes `vx`'s outer headers (exactly `h`) for an `inner_len`-byte inner packet, from
/// UDP source port `sport`; an IP tunnel says what its packet is (`ip_inner`: the inner
/// kind and its ethertype). None when they cannot be written (see the `encap_*_v4`).
#[inline]
fn emit(
    vx: Encap,
    h: &mut [u8],
    outer: &OuterV4,
    sport: u16,
    ip_inner: Option<(Inner, u16)>,
    inner_len: usize,
) -> Option<usize> {
    match vx.kind {
        Kind::Vxlan { vni, port } => encap_vxlan_v4(h, outer, sport, port, vni, inner_len),
        Kind::Geneve { vni, port } => {
            let repr = GeneveRepr {
                control: false,
                protocol: ETHERTYPE_TEB,
                vni,
            };
            encap_geneve_v4(h, outer, sport, port, &repr, &[], inner_len)
        }
        Kind::GreTeb { key } => encap_gre_v4(h, outer, &Encap::gre(ETHERTYPE_TEB, key), inner_len),
        Kind::GreL3 { key } => {
            let protocol = ip_inner.map_or(ETHERTYPE_IPV4, |(_, e)| e);
            encap_gre_v4(h, outer, &Encap::gre(protocol, key), inner_len)
        }
        Kind::Ipip => {
            let inner = ip_inner.map_or(Inner::Ipv4, |(i, _)| i);
            encap_ipip_v4(h, outer, inner, inner_len)
        }
    }
}

/// Encapsulates `m` toward `remote` and hands the outer packet on.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn to_vtep(
    ctx: &Ctx,
    g: &mut Graph,
    paths: &mut PathCache,
    mut m: Mbuf,
    meta: &Meta,
    t: &TunnelPlan,
    vx: Encap,
    remote: Ipv4Addr,
) {
    let hash = inner_hash(m.data());
    let (
        Path {
            oif,
            src_mac,
            max_frame,
            bvi,
            dst_mac,
        },
        kept,
    ) = match path(ctx, paths, t, vx, remote, hash) {
        Ok(p) => p,
        Err((reason, at)) => return ctx.counters.drop_packets(STAGE, reason, at, 1),
    };
    let (dst_mac, resolved) = match dst_mac {
        Some(mac) => (mac, true),
        None => ([0; 6], false),
    };
    // An outer packet whose next hop is not resolved yet is routed again once it is (as
    // received on the underlay interface), which takes one off its TTL: one more now, so
    // that it leaves with the tunnel's.
    let ttl = outer_ttl(t, m.data()).saturating_add(u8::from(!resolved));
    // An IP tunnel carries the frame's IP packet: its Ethernet header goes.
    let ip_inner = if vx.carries_ip() {
        let ethertype = m
            .data()
            .get(12..14)
            .map(|e| u16::from_be_bytes([e[0], e[1]]));
        let inner = match ethertype {
            Some(ETHERTYPE_IPV4) => Inner::Ipv4,
            Some(ETHERTYPE_IPV6) => Inner::Ipv6,
            _ => {
                ctx.counters
                    .drop_packets(STAGE, DropReason::NotIp, t.iface, 1);
                return;
            }
        };
        m.adj(ETH as u16);
        Some((inner, ethertype.unwrap_or_default()))
    } else {
        None
    };
    let inner_len = m.len();
    // max_frame counts the Ethernet header and two tags on top of the MTU; the outer
    // packet is untagged.
    let mtu = (max_frame as usize).saturating_sub(ETH + 2 * VLAN_TAG_LEN);
    let outer_len = vx.outer_len();
    if inner_len + outer_len - ETH > mtu {
        ctx.counters
            .drop_packets(STAGE, DropReason::TunnelMtuExceeded, t.iface, 1);
        return;
    }
    let ident = if t.df {
        0
    } else {
        g.outer_ident = g.outer_ident.wrapping_add(1);
        g.outer_ident
    };
    if !m.prepend(outer_len as u16) {
        ctx.counters
            .drop_packets(STAGE, DropReason::NoMbuf, t.iface, 1);
        return;
    }
    // RFC 8926 §3.3 asks Geneve senders for the same kind of source port as VXLAN's.
    let sport = vxlan::source_port(hash);
    let Some(h) = m.data_mut().get_mut(..outer_len) else {
        ctx.counters
            .drop_packets(STAGE, DropReason::NoMbuf, t.iface, 1);
        return;
    };
    let tm = if kept { paths.template() } else { None };
    let written = match tm {
        // The path's template (its next hop is resolved, the frame goes whole).
        Some(tm) if resolved => tm
            .write(h, inner_len, ident, ttl, sport)
            .map(|()| outer_len),
        _ => {
            let outer = OuterV4 {
                src_mac,
                dst_mac,
                src: vx.local,
                dst: remote,
                ttl,
                dscp_ecn: 0,
                dont_fragment: t.df,
                ident,
            };
            emit(vx, h, &outer, sport, ip_inner, inner_len)
        }
    };
    if written.is_none() {
        ctx.counters
            .drop_packets(STAGE, DropReason::TunnelMtuExceeded, t.iface, 1);
        return;
    }
    ctx.counters.iface_tx(t.iface, 1, inner_len as u64);
    let mut out = Meta {
        tx_if: oif,
        flags: meta.flags & !(Meta::TAGGED | Meta::TUNNEL),
        ..*meta
    };
    if out.csum.field_offset().is_some() {
        let shift = if ip_inner.is_some() { ETH } else { 0 };
        out.csum_start = out.csum_start + outer_len as u16 - shift as u16;
    }
    if resolved {
        // path() refuses an underlay interface that is a tunnel.
        hand_out(ctx, g, STAGE, m, out, bvi, false);
    } else {
        // The slow path resolves the next hop and sends the packet on as received on the
        // underlay interface (routed again in its VRF, as a routed packet would be).
        let out = Meta {
            rx_if: oif,
            punt: PuntReason::Resolve,
            ..out
        };
        g.hand_on(ctx, STAGE, Next::Punt, m, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ttl: u8, mtu: u16) -> TunnelPlan {
        TunnelPlan {
            iface: 3,
            encap: TunnelEncap::Vxlan {
                vni: 42,
                port: 4789,
            },
            vrf: 0,
            local: "192.0.2.1".parse().unwrap(),
            remotes: vec![],
            ttl,
            df: false,
            mtu,
            mac: [2, 0, 0, 0, 0, 1],
            vteps: vec![],
        }
    }

    fn ipv4_frame(ttl: u8) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 28];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[14] = 0x45;
        f[14 + 3] = 28;
        f[14 + 8] = ttl;
        f[14 + 9] = 17;
        f
    }

    #[test]
    fn ttl_is_the_tunnels_or_the_inner_packets() {
        assert_eq!(outer_ttl(&t(64, 1450), &ipv4_frame(9)), 64);
        assert_eq!(outer_ttl(&t(0, 1450), &ipv4_frame(9)), 9);
        let mut arp = ipv4_frame(9);
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(outer_ttl(&t(0, 1450), &arp), 64);
    }

    #[test]
    fn the_tunnel_mtu_bounds_inner_frames() {
        let tun = t(64, 1450);
        let mut f = vec![0u8; 1464];
        assert_eq!(max_inner(&tun, &f), 1464);
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(max_inner(&tun, &f), 1468);
        let vx = encap_of(&tun).unwrap();
        assert_eq!(
            (vx.kind, vx.local, vx.outer_len()),
            (
                Kind::Vxlan {
                    vni: 42,
                    port: 4789
                },
                Ipv4Addr::new(192, 0, 2, 1),
                50
            )
        );
        let gre = |key, teb| TunnelPlan {
            encap: TunnelEncap::Gre { key, teb },
            ..t(64, 1450)
        };
        assert_eq!(encap_of(&gre(None, true)).map(|e| e.outer_len()), Some(38));
        assert_eq!(
            encap_of(&gre(Some(7), true)).map(|e| e.outer_len()),
            Some(42)
        );
        assert_eq!(
            encap_of(&gre(Some(7), false)).map(|e| e.outer_len()),
            Some(42)
        );
        let ipip = TunnelPlan {
            encap: TunnelEncap::Ipip,
            ..t(64, 1450)
        };
        assert_eq!(encap_of(&ipip).map(|e| e.outer_len()), Some(34));
        assert!(encap_of(&ipip).is_some_and(|e| e.carries_ip()));
    }

    #[test]
    fn l3_tunnels_send_to_their_remote_else_the_next_hop_else_the_inner_destination() {
        let ipip = |remotes: Vec<IpAddr>| TunnelPlan {
            encap: TunnelEncap::Ipip,
            remotes,
            ..t(64, 1480)
        };
        let mut f = ipv4_frame(9);
        f[14 + 16..14 + 20].copy_from_slice(&[10, 250, 1, 5]);
        let gw = Some(Ipv4Addr::new(192, 168, 44, 2));
        let p2p = ipip(vec!["192.0.2.7".parse().unwrap()]);
        // Point-to-point: the tunnel's remote whatever the route says.
        assert_eq!(l3_remote(&p2p, gw, &f), Some(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!(
            l3_remote(&p2p, None, &[]),
            Some(Ipv4Addr::new(192, 0, 2, 7))
        );
        // Point-to-multipoint: the route's next hop, else the inner destination.
        let p2mp = ipip(vec![]);
        assert_eq!(l3_remote(&p2mp, gw, &f), gw);
        assert_eq!(
            l3_remote(&p2mp, None, &f),
            Some(Ipv4Addr::new(10, 250, 1, 5))
        );
        // No next hop and no IPv4 inside (IPv6, a cut frame): nowhere to send.
        let mut v6 = f.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(l3_remote(&p2mp, None, &v6), None);
        assert_eq!(l3_remote(&p2mp, None, &f[..30]), None);
        assert_eq!(l3_remote(&p2mp, gw, &v6), gw);
    }

    #[test]
    fn inner_hash_follows_the_flow() {
        let a = ipv4_frame(64);
        let mut b = a.clone();
        b[14 + 12] = 10; // another source address
        assert_ne!(inner_hash(&a), inner_hash(&b));
        let mut l2 = vec![0u8; 60];
        l2[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        let mut l2b = l2.clone();
        l2b[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        assert_ne!(inner_hash(&l2), inner_hash(&l2b));
        assert_eq!(inner_hash(&[]), 0);
    }
}
