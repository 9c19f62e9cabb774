//! tunnel-decap: IPv4 packets to one of the router's own addresses that ip4-forward's local
//! path handed over (the plan has tunnels), and the VXLAN packets to a VTEP that
//! ethernet-input sent straight here ([`Bypass`]). A packet that is a tunnel's is decapsulated
//! and its inner frame goes on as received on the tunnel interface; a packet that is no
//! tunnel's goes to the slow path as local traffic, as it did before tunnels; a packet that
//! claims to be a tunnel's and is not right is dropped under a named reason.
//!
//! Which tunnel (RFC 7348 §4.1, as Linux's vxlan device; Geneve, RFC 8926, the same way):
//! a vxlan (geneve) tunnel whose underlay VRF is the VRF of the interface the packet arrived
//! on, whose local address is the outer destination, whose UDP port is the outer
//! destination port, and whose VNI is the packet's. Geneve options are skipped; a critical
//! one is unknown here, so a packet with one is dropped (RFC 8926 §3.5); only Ethernet is
//! taken inside Geneve. GRE (RFC 2784 / 2890): a gre tunnel whose remote is the outer
//! source, with the packet's key (or none), teb for Ethernet inside, l3 for IP. IPIP (RFC
//! 2003, 4213): an ipip tunnel whose remote is the outer source, else one without a remote
//! (point-to-multipoint). GRE and IPIP are looked at only when sent to the local address of
//! a gre or ipip tunnel. Outer UDP checksums are not checked (RFC 7348 §5 lets a receiver skip them; a
//! sender usually sends zero); the outer header checksum was checked by ip4-forward.
//!
//! Reads: `meta.rx_if` (its VRF is the underlay's); the outer headers; the plan's tunnels
//! and the tunnel interface's plan (its bridge membership or routed side).
//! Writes: strips the outer headers (Ethernet, IPv4, UDP, VXLAN or Geneve with its
//! options) and link padding; clears the mbuf's offload requests (they were the outer's). Into a
//! bridge (the tunnel is a member): the metadata ethernet-input gives a member's frame
//! (`rx_if` the tunnel, `bridge`, `vlan`, `flags` TAGGED) plus `flags` TUNNEL, and the
//! outer source (the remote VTEP, for learning) in the bridge scratch's `remotes`, and the
//! frame's MAC table probes (prefetched) in its `probes`, at the frame's place in the bridge
//! vector. An addressed tunnel: `rx_if` the tunnel. No tunnel's:
//! `punt` (local). Counts the inner frame as received on the tunnel interface.
//! Next: l2-bridge (a bridge member), ethernet-input (an addressed tunnel), punt.
//! Drops: every [`TunnelDrop`](crate::wire::tunnel::TunnelDrop) name (for UDP to a port a
//! tunnel of that VRF listens on), `vxlan_unknown_vni` / `geneve_unknown_vni` (to a local
//! tunnel endpoint and port, no tunnel there has the VNI), `geneve_proto` (Geneve carrying
//! other than Ethernet), `udp_no_tunnel` (UDP to a local tunnel endpoint on a
//! port no tunnel there listens on), `outer_bad_header` (outer source 0.0.0.0), `iface_down`
//! (the tunnel interface is down), `unconnected` (neither in a bridge nor addressed),
//! `bad_header` / `vlan_mismatch` (an inner frame the tunnel's bridge membership refuses),
//! `tunnel_unknown` (GRE or IPIP to a gre / ipip endpoint that no tunnel there takes),
//! `no_mbuf` (no room for the Ethernet header of an IP payload).
//! An IP payload (gre l3, ipip) gets an Ethernet header to the tunnel interface's MAC.

use std::net::{IpAddr, Ipv4Addr};

use dpdk::Mbuf;

use crate::counters::DropReason;
use crate::graph::{Ctx, Graph, Meta, Next, Stage};
use crate::l3::forward::L3;
use crate::plan::{ForwardingPlan, IfacePlan, Input, TunnelEncap, TunnelPlan};
use crate::slowpath::PuntReason;
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, HEADER_LEN as ETH};
use crate::wire::ipv4::{PROTO_GRE, PROTO_IPIP, PROTO_IPV6, PROTO_UDP};
use crate::wire::tunnel::{classify_ipv4, vxlan_v4_fast, Inner, TunnelKind, TunnelRx, UdpTunnel};

const STAGE: Stage = Stage::TunnelDecap;

/// What becomes of a packet to a local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decap<'a> {
    /// No tunnel's: to the slow path as local traffic.
    NotTunnel,
    /// Dropped under this reason.
    Drop(DropReason),
    /// Tunnel `tunnel`'s: the inner packet is where `rx` says.
    Deliver {
        tunnel: &'a TunnelPlan,
        rx: TunnelRx,
    },
}

/// Offset of the protocol byte in an IPv4 header, and of the destination address.
const IP_PROTO: usize = 9;
const IP_DST: std::ops::Range<usize> = 16..20;

/// What tunnel `t` of underlay VRF `vrf` makes of UDP port `port`: VXLAN or Geneve if it
/// listens there.
#[inline]
fn udp_kind(t: &TunnelPlan, vrf: u16, port: u16) -> Option<UdpTunnel> {
    if t.vrf != vrf {
        return None;
    }
    match t.encap {
        TunnelEncap::Vxlan { port: p, .. } if p == port => Some(UdpTunnel::Vxlan),
        TunnelEncap::Geneve { port: p, .. } if p == port => Some(UdpTunnel::Geneve),
        _ => None,
    }
}

/// Whether some vxlan or geneve tunnel of VRF `vrf` has local address `a`.
#[inline]
fn udp_endpoint(plan: &ForwardingPlan, vrf: u16, a: Ipv4Addr) -> bool {
    plan.tunnels.iter().any(|t| {
        t.vrf == vrf
            && t.local == IpAddr::V4(a)
            && matches!(
                t.encap,
                TunnelEncap::Vxlan { .. } | TunnelEncap::Geneve { .. }
            )
    })
}

/// The UDP destination port of IPv4 packet `ip` (its header length from IHL).
#[inline]
fn udp_dst_port(ip: &[u8]) -> Option<u16> {
    let at = usize::from(ip.first()? & 0x0f) * 4 + 2;
    let p = ip.get(at..at + 2)?;
    Some(u16::from_be_bytes([p[0], p[1]]))
}

/// Whether some gre or ipip tunnel of VRF `vrf` has local address `a`.
#[inline]
fn ip_endpoint(plan: &ForwardingPlan, vrf: u16, a: Ipv4Addr) -> bool {
    plan.tunnels.iter().any(|t| {
        t.vrf == vrf
            && t.local == IpAddr::V4(a)
            && matches!(t.encap, TunnelEncap::Gre { .. } | TunnelEncap::Ipip)
    })
}

/// The destination address of IPv4 packet `ip`.
#[inline]
fn ip_dst(ip: &[u8]) -> Option<Ipv4Addr> {
    ip.get(IP_DST)
        .map(|d| Ipv4Addr::new(d[0], d[1], d[2], d[3]))
}

/// Decides what becomes of `ip`, an IPv4 packet (from its header on) that arrived in VRF
/// `vrf` for one of the router's addresses. Pure: unit-tested on bytes.
#[inline]
pub fn decide<'a>(plan: &'a ForwardingPlan, vrf: u16, ip: &[u8]) -> Decap<'a> {
    match ip.get(IP_PROTO) {
        Some(&PROTO_UDP) => {}
        // GRE and IP in IP are looked at only when sent to a gre or ipip tunnel's address.
        Some(&(PROTO_GRE | PROTO_IPIP | PROTO_IPV6))
            if ip_dst(ip).is_some_and(|d| ip_endpoint(plan, vrf, d)) => {}
        _ => return Decap::NotTunnel,
    }
    let tunnels = &plan.tunnels;
    let kind = |port: u16| tunnels.iter().find_map(|t| udp_kind(t, vrf, port));
    let rx = match classify_ipv4(ip, kind, |_, _| false) {
        Err(d) => return Decap::Drop(d.into()),
        Ok(None) => {
            // UDP on a port no tunnel of this VRF listens on: a tunnel endpoint's is
            // counted (nothing else of the router takes UDP), the rest goes on as before.
            let udp = ip.get(IP_PROTO) == Some(&PROTO_UDP);
            return match ip_dst(ip) {
                Some(d) if udp && udp_endpoint(plan, vrf, d) => {
                    Decap::Drop(DropReason::UdpNoTunnel)
                }
                _ => Decap::NotTunnel,
            };
        }
        Ok(Some(rx)) => rx,
    };
    let local = IpAddr::V4(rx.dst);
    let remote = IpAddr::V4(rx.src);
    let here = |t: &&TunnelPlan| t.vrf == vrf && t.local == local;
    let (found, unknown) = match rx.kind {
        TunnelKind::Vxlan { vni } | TunnelKind::Geneve { vni } => {
            // classify_ipv4 found a UDP header, so the port is there.
            let Some(port) = udp_dst_port(ip) else {
                return Decap::Drop(DropReason::UdpBadLength);
            };
            let (want, unknown) = match rx.kind {
                TunnelKind::Vxlan { .. } => (
                    TunnelEncap::Vxlan { vni, port },
                    DropReason::VxlanUnknownVni,
                ),
                // Geneve tunnels are Ethernet segments here (a bridge member or an
                // addressed interface): other Protocol Types are not theirs.
                _ if rx.inner != Inner::Ethernet => return Decap::Drop(DropReason::GeneveProto),
                _ => (
                    TunnelEncap::Geneve { vni, port },
                    DropReason::GeneveUnknownVni,
                ),
            };
            match tunnels.iter().filter(here).find(|t| t.encap == want) {
                Some(t) => (Some(t), None),
                None => (None, udp_endpoint(plan, vrf, rx.dst).then_some(unknown)),
            }
        }
        // A gre tunnel takes what comes from its remote with its key (no key: only keyless
        // packets); Ethernet inside for a teb one, IP for an l3 one.
        TunnelKind::Gre { key } => {
            let teb = rx.inner == Inner::Ethernet;
            let t = tunnels.iter().filter(here).find(|t| {
                t.encap == TunnelEncap::Gre { key, teb } && t.remotes.first() == Some(&remote)
            });
            (t, Some(DropReason::TunnelUnknown))
        }
        // An ipip tunnel with the packet's source as its remote, else one without a remote
        // (point-to-multipoint).
        TunnelKind::Ipip => {
            let ipip = || {
                tunnels
                    .iter()
                    .filter(here)
                    .filter(|t| t.encap == TunnelEncap::Ipip)
            };
            let t = ipip()
                .find(|t| t.remotes.first() == Some(&remote))
                .or_else(|| ipip().find(|t| t.remotes.is_empty()));
            (t, Some(DropReason::TunnelUnknown))
        }
    };
    match (found, unknown) {
        (Some(_), _) if rx.src.is_unspecified() => Decap::Drop(DropReason::OuterBadHeader),
        (Some(tunnel), _) => Decap::Deliver { tunnel, rx },
        (None, Some(reason)) => Decap::Drop(reason),
        (None, None) => Decap::NotTunnel,
    }
}

/// What the stage remembers through a vector (the plan does not change within one): the
/// VRF of the last input interface, and the VXLAN tunnel the last common packet
/// ([`vxlan_v4_fast`]) went to, by what [`decide`] chose it by (VRF, local address, UDP
/// port, VNI), with its interface's side of delivery. A vector's packets mostly come from
/// one VTEP to one tunnel: they skip [`decide`] and the plan's lookups.
#[derive(Default)]
struct Recent<'a> {
    vrf: Option<(u16, Option<u16>)>,
    vxlan: Option<(VxlanKey, &'a TunnelPlan, Option<Delivery<'a>>)>,
}

/// What [`decide`] finds a VXLAN tunnel by: the VRF, the local address, the UDP port and
/// the VNI.
type VxlanKey = (u16, u32, u16, u32);

/// A tunnel interface as the inner frames enter it: its plan (the interface is up), and
/// whether its bridge, if it is a member of one, learns.
#[derive(Clone, Copy)]
struct Delivery<'a> {
    tif: u16,
    p: &'a IfacePlan,
    learn: bool,
}

impl<'a> Delivery<'a> {
    /// Tunnel `t`'s interface, if it is up.
    #[inline]
    fn of(plan: &'a ForwardingPlan, t: &TunnelPlan) -> Option<Delivery<'a>> {
        let p = plan.iface(t.iface).filter(|p| p.up)?;
        let learn =
            p.l2.as_ref()
                .and_then(|m| plan.bridge(m.bridge))
                .is_some_and(|b| b.learn);
        Some(Delivery {
            tif: t.iface,
            p,
            learn,
        })
    }
}

impl<'a> Recent<'a> {
    /// The underlay VRF of input interface `rx_if` (its L3 side's).
    #[inline(always)]
    fn vrf(&mut self, plan: &ForwardingPlan, rx_if: u16) -> Option<u16> {
        match self.vrf {
            Some((i, vrf)) if i == rx_if => vrf,
            _ => {
                let vrf = plan.iface(rx_if).and_then(|p| p.l3).map(|l3| l3.vrf);
                self.vrf = Some((rx_if, vrf));
                vrf
            }
        }
    }

    /// [`decide`], and where its tunnel's frames go, through the remembered VXLAN tunnel
    /// when `ip` is a common VXLAN packet with its key (what `decide` would answer then:
    /// the same tunnel, unless the outer source is 0.0.0.0).
    #[inline(always)]
    fn decide(
        &mut self,
        plan: &'a ForwardingPlan,
        vrf: u16,
        ip: &[u8],
    ) -> (Decap<'a>, Option<Delivery<'a>>) {
        let Some((port, vni, rx)) = vxlan_v4_fast(ip) else {
            return with_delivery(plan, decide(plan, vrf, ip));
        };
        let key = (vrf, u32::from(rx.dst), port, vni);
        match self.vxlan {
            Some((k, tunnel, delivery)) if k == key && !rx.src.is_unspecified() => {
                (Decap::Deliver { tunnel, rx }, delivery)
            }
            _ => {
                let (d, delivery) = with_delivery(plan, decide(plan, vrf, ip));
                if let Decap::Deliver { tunnel, rx: r } = d {
                    // classify_ipv4 read the packet as the fast path did: VXLAN on this port.
                    if r == rx {
                        self.vxlan = Some((key, tunnel, delivery));
                    }
                }
                (d, delivery)
            }
        }
    }
}

/// `d`, with where its tunnel's frames go if it delivers.
#[inline]
fn with_delivery<'a>(plan: &'a ForwardingPlan, d: Decap<'a>) -> (Decap<'a>, Option<Delivery<'a>>) {
    let delivery = match d {
        Decap::Deliver { tunnel, .. } => Delivery::of(plan, tunnel),
        _ => None,
    };
    (d, delivery)
}

/// The VXLAN bypass (as VPP's `ip4-vxlan-bypass`): what ethernet-input sends from a routed
/// interface straight to this stage, past ip4-forward, whose lookup of a VTEP's own
/// address can only answer "local" (a tunnel's local address is one of the router's in
/// its VRF, and the model refuses to delete it while the tunnel is there). Only packets
/// ip4-forward would have handed here unchanged: a common VXLAN packet ([`vxlan_v4_fast`])
/// with a good header checksum and a source address the router accepts (RFC 1812 §5.3.7),
/// to the local address and UDP port of a vxlan tunnel of the input interface's VRF. Off
/// while the plan translates addresses (NAT sees a vector before ip4-forward's lookup).
/// Everything else goes to ip4-forward as before, malformed packets included, and is
/// dropped or delivered there under the same names.
pub(crate) struct Bypass<'a> {
    plan: &'a ForwardingPlan,
    vrf: u16,
    /// The last (local address, port) asked about and whether a tunnel listens there.
    last: Option<(u32, u16, bool)>,
}

impl<'a> Bypass<'a> {
    /// The bypass of a routed interface in VRF `vrf`, if the plan has a vxlan tunnel in it
    /// and translates nothing.
    #[inline]
    pub(crate) fn of(plan: &'a ForwardingPlan, vrf: u16) -> Option<Bypass<'a>> {
        let vxlan = |t: &TunnelPlan| t.vrf == vrf && matches!(t.encap, TunnelEncap::Vxlan { .. });
        (plan.nat.is_none() && plan.tunnels.iter().any(vxlan)).then_some(Bypass {
            plan,
            vrf,
            last: None,
        })
    }

    /// Whether `frame` (untagged IPv4, as ethernet-input found it) goes straight to
    /// tunnel-decap.
    #[inline(always)]
    pub(crate) fn takes(&mut self, frame: &[u8]) -> bool {
        let Some(ip) = frame.get(L3..) else {
            return false;
        };
        let Some((port, _, rx)) = vxlan_v4_fast(ip) else {
            return false;
        };
        // vxlan_v4_fast read 20 header bytes (IHL 5) and more; a sum of known length is
        // unrolled.
        let Some(h) = ip.get(..20).and_then(|h| <&[u8; 20]>::try_from(h).ok()) else {
            return false;
        };
        if crate::wire::checksum::sum(h, 0) != 0xffff
            || crate::l3::ip4::martian_source(u32::from(rx.src))
        {
            return false;
        }
        let dst = u32::from(rx.dst);
        match self.last {
            Some((d, p, yes)) if d == dst && p == port => yes,
            _ => {
                let local = IpAddr::V4(rx.dst);
                let yes = self.plan.tunnels.iter().any(|t| {
                    t.vrf == self.vrf
                        && t.local == local
                        && matches!(t.encap, TunnelEncap::Vxlan { port: p, .. } if p == port)
                });
                self.last = Some((dst, port, yes));
                yes
            }
        }
    }
}

/// Runs the stage on the graph's decap vector.
pub(crate) fn run(ctx: &Ctx, g: &mut Graph) {
    let Some(mut v) = g.spare.take() else {
        return;
    };
    std::mem::swap(&mut g.decap, &mut v);
    // Inner frames into a bridge come with their MAC table probes computed and prefetched
    // (as ethernet-input does for a received burst), so that l2-bridge skips its first
    // pass and its lookups find the slots in cache: the bridge vector stays probed if it
    // was (or was empty).
    let probed = g.bridge_probed || g.bridge.is_empty();
    {
        let mut recent = Recent::default();
        let w = &mut *v;
        for (m, meta) in w.pkts.drain().zip(w.meta.iter()) {
            one(ctx, g, &mut recent, m, meta);
        }
    }
    g.bridge_probed = probed;
    g.bridge_train = crate::graph::Train::No;
    g.spare = Some(v);
}

#[inline(always)]
fn one<'a>(ctx: &Ctx<'a>, g: &mut Graph, recent: &mut Recent<'a>, m: Mbuf, meta: &Meta) {
    let vrf = recent.vrf(ctx.plan, meta.rx_if);
    let (d, delivery) = match (vrf, m.data().get(L3..)) {
        (Some(vrf), Some(ip)) => recent.decide(ctx.plan, vrf, ip),
        _ => (Decap::NotTunnel, None),
    };
    match d {
        Decap::NotTunnel => {
            let out = Meta {
                punt: PuntReason::Local,
                ..*meta
            };
            g.hand_on(ctx, STAGE, Next::Punt, m, out);
        }
        Decap::Drop(reason) => ctx.counters.drop_packets(STAGE, reason, meta.rx_if, 1),
        Decap::Deliver { tunnel, rx } => match delivery {
            Some(to) => deliver(ctx, g, m, to, &rx),
            None => ctx
                .counters
                .drop_packets(STAGE, DropReason::IfaceDown, tunnel.iface, 1),
        },
    }
}

/// Strips `m`'s outer headers and hands the inner frame on as received on the tunnel's
/// interface.
#[inline(always)]
fn deliver(ctx: &Ctx, g: &mut Graph, mut m: Mbuf, delivery: Delivery, rx: &TunnelRx) {
    let Delivery { tif, p, learn } = delivery;
    // inner_offset + inner_len lies within the packet (classify_ipv4's promise), so both
    // fit a u16 and the trim leaves exactly the inner frame.
    if !m.adj((L3 + rx.inner_offset) as u16) {
        ctx.counters
            .drop_packets(STAGE, DropReason::BadHeader, tif, 1);
        return;
    }
    if let Some(extra) = m.len().checked_sub(rx.inner_len).filter(|e| *e > 0) {
        m.trim(extra as u16);
    }
    // What the device that sent the outer packet asked of its output (a VM VTEP's
    // partial outer UDP checksum) was about headers that are gone: no device may act on
    // it at the inner frame's offsets. The inner frame's metadata starts afresh below.
    m.clear_tx_requests();
    // An IP packet (gre l3, ipip) gets the Ethernet header of a frame to the tunnel
    // interface's MAC, in the room the outer headers left.
    if rx.inner != Inner::Ethernet && !add_ethernet(&mut m, p, rx.inner) {
        ctx.counters.drop_packets(STAGE, DropReason::NoMbuf, tif, 1);
        return;
    }
    ctx.counters.iface_rx(tif, 1, m.len() as u64);
    match p.input {
        // The tunnel interface's `in` ACL sees the inner frame (an addressed tunnel's
        // frames meet it in ethernet-input).
        Input::Bridge => match crate::input::admit(ctx, tif, m.data())
            .and_then(|()| crate::input::bridged(p, tif, m.data()))
        {
            Ok(mut meta) => {
                meta.flags |= Meta::TUNNEL;
                let probes = crate::l2::bridge::probes(learn, &meta, m.data());
                ctx.l2.fdb.prefetch(&probes[0]);
                ctx.l2.fdb.prefetch(&probes[1]);
                let at = g.bridge.len();
                match g.bridge.push(m, meta) {
                    Ok(()) => {
                        g.bridge_scratch.remotes[at] = u32::from(rx.src);
                        g.bridge_scratch.probes[at] = probes;
                    }
                    Err(m) => {
                        ctx.counters
                            .drop_packets(STAGE, DropReason::GraphLoop, tif, 1);
                        drop(m);
                    }
                }
            }
            Err(reason) => ctx.counters.drop_packets(STAGE, reason, tif, 1),
        },
        Input::Route => {
            let meta = Meta {
                rx_if: tif,
                ..Meta::default()
            };
            g.hand_on(ctx, STAGE, Next::EthernetInput, m, meta);
        }
        _ => ctx
            .counters
            .drop_packets(STAGE, DropReason::Unconnected, tif, 1),
    }
}

/// Puts an Ethernet header to tunnel interface `p`'s MAC in front of IP packet `m` (gre
/// l3, ipip); false when there is no room.
#[cold]
#[inline(never)]
fn add_ethernet(m: &mut Mbuf, p: &IfacePlan, inner: Inner) -> bool {
    let ethertype = if inner == Inner::Ipv6 {
        ETHERTYPE_IPV6
    } else {
        ETHERTYPE_IPV4
    };
    let mac = p.l3.map_or([0; 6], |l3| l3.mac);
    if !m.prepend(ETH as u16) {
        return false;
    }
    let d = m.data_mut();
    d[0..6].copy_from_slice(&mac);
    d[6..12].copy_from_slice(&[0; 6]);
    d[12..14].copy_from_slice(&ethertype.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::geneve::{self, GeneveRepr};
    use crate::wire::gre::GreRepr;
    use crate::wire::tunnel::{
        encap_geneve_v4, encap_gre_v4, encap_ipip_v4, encap_vxlan_v4, geneve_v4_outer_len, OuterV4,
        VXLAN_V4_OUTER_LEN,
    };

    const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    fn tunnel(iface: u16, vni: u32, port: u16, vrf: u16) -> TunnelPlan {
        TunnelPlan {
            iface,
            encap: TunnelEncap::Vxlan { vni, port },
            vrf,
            local: IpAddr::V4(LOCAL),
            remotes: vec![IpAddr::V4(REMOTE)],
            ttl: 64,
            df: false,
            mtu: 1450,
            mac: [2, 0, 0, 0, 0, 0x70],
            vteps: vec![],
        }
    }

    fn plan() -> ForwardingPlan {
        let geneve = TunnelPlan {
            encap: TunnelEncap::Geneve {
                vni: 7,
                port: geneve::PORT,
            },
            ..tunnel(8, 0, 0, 0)
        };
        ForwardingPlan {
            tunnels: vec![tunnel(5, 42, 4789, 0), tunnel(6, 43, 4789, 0), geneve],
            ..ForwardingPlan::default()
        }
    }

    /// A Geneve packet from REMOTE to LOCAL with `vni`, Protocol Type `proto` and
    /// `options`, around a 60-byte frame, from its IPv4 header on.
    fn geneve_packet(vni: u32, proto: u16, options: &[u8]) -> Vec<u8> {
        let len = geneve_v4_outer_len(options.len());
        let mut b = vec![0u8; len + 60];
        let outer = OuterV4 {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: REMOTE,
            dst: LOCAL,
            ttl: 64,
            dscp_ecn: 0,
            dont_fragment: false,
            ident: 0,
        };
        let repr = GeneveRepr {
            control: false,
            protocol: proto,
            vni,
        };
        encap_geneve_v4(&mut b, &outer, 50000, geneve::PORT, &repr, options, 60).unwrap();
        b[len + 12..len + 14].copy_from_slice(&[0x08, 0x00]);
        b[len + 14] = 0x45;
        b.split_off(14)
    }

    #[test]
    fn geneve_by_vni_with_options_skipped_and_critical_ones_refused() {
        let p = plan();
        match decide(&p, 0, &geneve_packet(7, 0x6558, &[])) {
            Decap::Deliver { tunnel, rx } => {
                assert_eq!((tunnel.iface, rx.inner_offset, rx.inner_len), (8, 36, 60))
            }
            d => panic!("{d:?}"),
        }
        let mut opt = [0u8; 8];
        let n = geneve::emit_option(&mut opt, 0x0102, 0x03, &[1, 2, 3, 4]).unwrap();
        match decide(&p, 0, &geneve_packet(7, 0x6558, &opt[..n])) {
            Decap::Deliver { rx, .. } => assert_eq!(rx.inner_offset, 36 + n),
            d => panic!("{d:?}"),
        }
        let n = geneve::emit_option(&mut opt, 0x0102, 0x83, &[1, 2, 3, 4]).unwrap();
        assert_eq!(
            decide(&p, 0, &geneve_packet(7, 0x6558, &opt[..n])),
            Decap::Drop(DropReason::GeneveCriticalOption)
        );
        assert_eq!(
            decide(&p, 0, &geneve_packet(8, 0x6558, &[])),
            Decap::Drop(DropReason::GeneveUnknownVni)
        );
        assert_eq!(
            decide(&p, 0, &geneve_packet(7, 0x0800, &[])),
            Decap::Drop(DropReason::GeneveProto)
        );
    }

    /// A VXLAN packet from REMOTE to `dst`:`port` with `vni` around a 60-byte frame, from
    /// its IPv4 header on.
    fn packet(dst: Ipv4Addr, port: u16, vni: u32) -> Vec<u8> {
        let mut b = vec![0u8; VXLAN_V4_OUTER_LEN + 60];
        let outer = OuterV4 {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src: REMOTE,
            dst,
            ttl: 64,
            dscp_ecn: 0,
            dont_fragment: false,
            ident: 0,
        };
        encap_vxlan_v4(&mut b, &outer, 50000, port, vni, 60).unwrap();
        b[VXLAN_V4_OUTER_LEN..VXLAN_V4_OUTER_LEN + 6].copy_from_slice(&[0xff; 6]);
        b.split_off(14)
    }

    #[test]
    fn finds_the_tunnel_by_vrf_address_port_and_vni() {
        let p = plan();
        match decide(&p, 0, &packet(LOCAL, 4789, 43)) {
            Decap::Deliver { tunnel, rx } => {
                assert_eq!(tunnel.iface, 6);
                assert_eq!((rx.src, rx.inner_offset, rx.inner_len), (REMOTE, 36, 60));
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(
            decide(&p, 0, &packet(LOCAL, 4789, 44)),
            Decap::Drop(DropReason::VxlanUnknownVni)
        );
        // Another port on the tunnels' address: counted; elsewhere: not ours.
        assert_eq!(
            decide(&p, 0, &packet(LOCAL, 4790, 42)),
            Decap::Drop(DropReason::UdpNoTunnel)
        );
        let other = Ipv4Addr::new(192, 0, 2, 9);
        assert_eq!(decide(&p, 0, &packet(other, 4790, 42)), Decap::NotTunnel);
        assert_eq!(decide(&p, 0, &packet(other, 4789, 42)), Decap::NotTunnel);
        // Another VRF has no tunnel.
        assert_eq!(decide(&p, 1, &packet(LOCAL, 4789, 42)), Decap::NotTunnel);
    }

    #[test]
    fn malformed_vxlan_is_dropped_by_name() {
        let p = plan();
        let mut no_i = packet(LOCAL, 4789, 42);
        no_i[28] = 0;
        assert_eq!(decide(&p, 0, &no_i), Decap::Drop(DropReason::VxlanNoIFlag));
        // UDP length 12: four bytes of VXLAN header.
        let mut short = packet(LOCAL, 4789, 42);
        short.truncate(32);
        short[2..4].copy_from_slice(&32u16.to_be_bytes());
        short[24..26].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(decide(&p, 0, &short), Decap::Drop(DropReason::VxlanShort));
        let mut zero_src = packet(LOCAL, 4789, 42);
        zero_src[12..16].copy_from_slice(&[0; 4]);
        assert_eq!(
            decide(&p, 0, &zero_src),
            Decap::Drop(DropReason::OuterBadHeader)
        );
        // Not UDP: not looked at.
        let mut icmp = packet(LOCAL, 4789, 42);
        icmp[9] = 1;
        assert_eq!(decide(&p, 0, &icmp), Decap::NotTunnel);
    }

    /// A GRE (`key`, Protocol Type `proto`) or IPIP (`proto` None) packet from `src` to
    /// LOCAL around 40 bytes of inner packet, from its IPv4 header on.
    fn ip_packet(src: Ipv4Addr, key: Option<u32>, proto: Option<u16>) -> Vec<u8> {
        let outer = OuterV4 {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src,
            dst: LOCAL,
            ttl: 64,
            dscp_ecn: 0,
            dont_fragment: false,
            ident: 0,
        };
        let mut b = vec![0u8; 60 + 40];
        let n = match proto {
            Some(protocol) => {
                let repr = GreRepr {
                    protocol,
                    checksum: false,
                    key,
                    seq: None,
                };
                encap_gre_v4(&mut b, &outer, &repr, 40).unwrap()
            }
            None => encap_ipip_v4(&mut b, &outer, Inner::Ipv4, 40).unwrap(),
        };
        b.truncate(n + 40);
        b[n] = 0x45;
        b.split_off(14)
    }

    #[test]
    fn gre_by_remote_and_key_ipip_by_remote() {
        let gre = |iface, key, teb| TunnelPlan {
            encap: TunnelEncap::Gre { key, teb },
            ..tunnel(iface, 0, 0, 0)
        };
        let ipip = |iface, remotes: Vec<IpAddr>| TunnelPlan {
            encap: TunnelEncap::Ipip,
            remotes,
            ..tunnel(iface, 0, 0, 0)
        };
        let p = ForwardingPlan {
            tunnels: vec![
                gre(10, None, true),
                gre(11, Some(5), false),
                ipip(12, vec![IpAddr::V4(REMOTE)]),
                ipip(13, vec![]),
            ],
            ..ForwardingPlan::default()
        };
        let deliver = |d: Decap| match d {
            Decap::Deliver { tunnel, rx } => (tunnel.iface, rx.inner),
            d => panic!("{d:?}"),
        };
        assert_eq!(
            deliver(decide(&p, 0, &ip_packet(REMOTE, None, Some(0x6558)))),
            (10, Inner::Ethernet)
        );
        assert_eq!(
            deliver(decide(&p, 0, &ip_packet(REMOTE, Some(5), Some(0x0800)))),
            (11, Inner::Ipv4)
        );
        // Another key, another remote, no key where one is needed.
        for (src, key) in [(REMOTE, Some(6)), (Ipv4Addr::new(192, 0, 2, 7), None)] {
            assert_eq!(
                decide(&p, 0, &ip_packet(src, key, Some(0x6558))),
                Decap::Drop(DropReason::TunnelUnknown)
            );
        }
        assert_eq!(
            decide(&p, 0, &ip_packet(REMOTE, None, Some(0x0800))),
            Decap::Drop(DropReason::TunnelUnknown)
        );
        // IPIP: the tunnel of the remote, else the point-to-multipoint one.
        assert_eq!(deliver(decide(&p, 0, &ip_packet(REMOTE, None, None))).0, 12);
        let other = Ipv4Addr::new(192, 0, 2, 9);
        assert_eq!(deliver(decide(&p, 0, &ip_packet(other, None, None))).0, 13);
        // GRE to an address no gre tunnel has is not looked at.
        let mut elsewhere = ip_packet(REMOTE, None, Some(0x6558));
        elsewhere[19] = 77;
        assert_eq!(decide(&p, 0, &elsewhere), Decap::NotTunnel);
    }

    #[test]
    fn the_remembered_vxlan_tunnel_answers_as_decide_does() {
        let p = plan();
        let mut zero_src = packet(LOCAL, 4789, 42);
        zero_src[12..16].copy_from_slice(&[0; 4]);
        let mut options = packet(LOCAL, 4789, 42);
        options[0] = 0x46;
        let other = Ipv4Addr::new(192, 0, 2, 9);
        let cases = [
            packet(LOCAL, 4789, 42),
            packet(LOCAL, 4789, 42),
            zero_src,
            packet(LOCAL, 4789, 43),
            packet(LOCAL, 4789, 44),
            packet(LOCAL, 4790, 42),
            packet(other, 4789, 42),
            options,
            packet(LOCAL, 4789, 42),
        ];
        // Tunnel 5 is up (an addressed one), 6 is down, 8 has no interface.
        let mut p = p;
        let iface = |up| IfacePlan {
            up,
            input: Input::Route,
            l2: None,
            l3: None,
            max_frame: 1522,
        };
        p.ifaces = vec![None; 7];
        p.ifaces[5] = Some(iface(true));
        p.ifaces[6] = Some(iface(false));
        let mut recent = Recent::default();
        for vrf in [0, 1, 0] {
            for b in &cases {
                let (d, to) = recent.decide(&p, vrf, b);
                assert_eq!(d, decide(&p, vrf, b));
                let up = match d {
                    Decap::Deliver { tunnel, .. } => p.iface(tunnel.iface).filter(|i| i.up),
                    _ => None,
                };
                assert_eq!(to.map(|t| t.p), up);
            }
        }
    }

    /// `ip` behind an Ethernet header, as ethernet-input sees it.
    fn framed(ip: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; L3];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(ip);
        f
    }

    /// Whether the bypass takes `ip` (from VRF `vrf` of plan `p`); if it does, it is
    /// what ip4-forward would have handed to this stage (a header it accepts, routed, to
    /// a tunnel's local address) and what this stage takes as a tunnel's.
    fn bypassed(p: &ForwardingPlan, vrf: u16, ip: &[u8]) -> bool {
        let takes = Bypass::of(p, vrf).is_some_and(|mut b| b.takes(&framed(ip)));
        if takes {
            assert_eq!(
                crate::l3::ip4::check(ip),
                crate::l3::forward::Check::Route(u32::from(LOCAL))
            );
            // Delivered, or dropped by name (an unknown VNI, source 0.0.0.0): a tunnel's.
            assert_ne!(decide(p, vrf, ip), Decap::NotTunnel);
        }
        takes
    }

    #[test]
    fn the_vxlan_bypass_takes_only_what_ip4_forward_would_hand_here() {
        let p = plan();
        assert!(bypassed(&p, 0, &packet(LOCAL, 4789, 42)));
        // The VNI is tunnel-decap's to check: a VNI no tunnel has is dropped there by name.
        assert!(Bypass::of(&p, 0).is_some_and(|mut b| b.takes(&framed(&packet(LOCAL, 4789, 44)))));
        let mut bad_sum = packet(LOCAL, 4789, 42);
        bad_sum[10] ^= 0x40;
        let mut martian = packet(LOCAL, 4789, 42);
        martian[12] = 127;
        let mut options = packet(LOCAL, 4789, 42);
        options[0] = 0x46;
        let mut no_i = packet(LOCAL, 4789, 42);
        no_i[28] = 0;
        let mut fragment = packet(LOCAL, 4789, 42);
        fragment[6] = 0x20;
        for (what, b) in [
            ("bad checksum", bad_sum),
            ("martian source", martian),
            ("options", options),
            ("no I flag", no_i),
            ("a fragment", fragment),
            ("a port no tunnel takes", packet(LOCAL, 4790, 42)),
            (
                "another address",
                packet(Ipv4Addr::new(192, 0, 2, 9), 4789, 42),
            ),
            ("geneve's port", packet(LOCAL, geneve::PORT, 7)),
        ] {
            assert!(!bypassed(&p, 0, &b), "{what}");
        }
        // Not in a VRF without vxlan tunnels; not while the plan translates addresses.
        assert!(Bypass::of(&p, 1).is_none());
        let nat = ForwardingPlan {
            nat: Some(std::sync::Arc::new(crate::nat::NatPlan::default())),
            ..plan()
        };
        assert!(Bypass::of(&nat, 0).is_none());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120)) {
            let p = plan();
            let _ = decide(&p, 0, &bytes);
            let _ = bypassed(&p, 0, &bytes);
            let good = packet(LOCAL, 4789, 42);
            for n in 0..good.len() {
                let _ = decide(&p, 0, &good[..n]);
                let _ = bypassed(&p, 0, &good[..n]);
            }
        }

        /// A good packet with any byte changed: the bypass takes it only if ip4-forward and
        /// this stage would deliver it (`bypassed` checks).
        #[test]
        fn the_bypass_agrees_with_ip4_forward(at in 0usize..110, value in proptest::prelude::any::<u8>(),
                                              cut in 0usize..120, fix in proptest::prelude::any::<bool>()) {
            let p = plan();
            let mut b = packet(LOCAL, 4789, 42);
            if let Some(x) = b.get_mut(at) {
                *x = value;
            }
            if fix && at >= 12 {
                // A header that still sums right, so that the change itself is judged.
                b[10..12].copy_from_slice(&[0, 0]);
                let sum = !crate::wire::checksum::sum(&b[..20], 0);
                b[10..12].copy_from_slice(&sum.to_be_bytes());
            }
            b.truncate(cut.max(1));
            let _ = bypassed(&p, 0, &b);
        }
    }
}
