//! The forwarding plan: what each worker polls, what each interface's frames do on input,
//! and how each worker transmits on each interface.
//!
//! Interfaces are named by their logical index ([`IfIndex`], below [`MAX_IFACES`]), which
//! the control plane gives each interface when it is added; the plan, the MAC table, the
//! counters and the output buffers all use it. Only an interface backed by a DPDK port has
//! a port id, and only where a DPDK queue is used ([`RxQueue::rxq`], [`Tx::Dpdk`]).
//!
//! Thread safety: a plan is immutable once published; the control thread builds a new one
//! for every change and the engine swaps it in (arc-swap). Workers load it once per poll.
//!
//! Queue ownership (the workers' `Burst::rx` / `tx` are sound only because of it, and
//! `Engine::publish` is unsafe because the plan's builder must keep it):
//! - an rx queue is in the `rx` list of at most one worker, and of the same worker in
//!   every plan published while its port is open ([`place_queues`] places a port's queues
//!   when it opens and never moves them), so two workers never poll one queue, not even
//!   while some still use the previous plan;
//! - worker `w` transmits only on tx queue `w` of any port ([`WorkerPlan::tx`]; a port with
//!   fewer tx queues is [`Tx::None`] there);
//! - a port named by a plan is open until every worker has finished a poll with a plan
//!   that no longer names it (`Engine::publish` returns true), or is never closed.

use std::net::IpAddr;
use std::sync::Arc;

use dpdk::PortQueue;

use crate::memif_port::MemifPort;
use crate::native::NativePort;
use crate::vhost_port::VhostPort;

use crate::counters::DropReason;
use crate::l3::{Fib4, Fib6, NextHops};
use crate::slowpath::PuntReason;
use crate::wire::ethernet::Mac;

/// A logical interface index.
pub type IfIndex = u16;

/// How many interfaces the dataplane can name (counters and tables are sized by it).
pub const MAX_IFACES: usize = 1024;

/// What the frames received on an interface do first (the ethernet-input stage's choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Out of this interface, unchanged (an L2 cross-connect).
    Xconnect(IfIndex),
    /// Into the bridge the interface is a member of ([`IfacePlan::l2`]).
    Bridge,
    /// Into the router, in the interface's VRF ([`IfacePlan::l3`]): IPv4 and IPv6 are
    /// forwarded, ARP goes to the slow path.
    Route,
    /// To the slow path (the control thread), for this reason.
    Punt(PuntReason),
    /// Dropped and counted under this reason.
    Drop(DropReason),
}

/// A native kernel-interface port as plans name it ([`crate::native`]): shared by the
/// plans that name it, so it stays open while a worker may still use one of them. Equal
/// when it is the same port.
#[derive(Debug, Clone)]
pub struct NativeRef(pub Arc<NativePort>);

impl PartialEq for NativeRef {
    fn eq(&self, other: &NativeRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for NativeRef {}

impl std::ops::Deref for NativeRef {
    type Target = NativePort;
    fn deref(&self) -> &NativePort {
        &self.0
    }
}

/// A vhost-user port as plans name it ([`crate::vhost_port`]): shared by the plans that
/// name it, so it stays registered while a worker may still use one of them. Equal when it
/// is the same port.
#[derive(Debug, Clone)]
pub struct VhostRef(pub Arc<VhostPort>);

impl PartialEq for VhostRef {
    fn eq(&self, other: &VhostRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for VhostRef {}

impl std::ops::Deref for VhostRef {
    type Target = VhostPort;
    fn deref(&self) -> &VhostPort {
        &self.0
    }
}

/// A native memif port as plans name it ([`crate::memif_port`]); equal when it is the
/// same port.
#[derive(Debug, Clone)]
pub struct MemifRef(pub Arc<MemifPort>);

impl PartialEq for MemifRef {
    fn eq(&self, other: &MemifRef) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for MemifRef {}

impl std::ops::Deref for MemifRef {
    type Target = MemifPort;
    fn deref(&self) -> &MemifPort {
        &self.0
    }
}

/// How a worker transmits on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Tx {
    /// It cannot (no tx queue for this worker, or no such interface): frames are dropped
    /// as `no_tx_queue`.
    #[default]
    None,
    /// Out of this DPDK tx queue (the worker's own queue of the interface's port).
    Dpdk(PortQueue),
    /// Out of this native kernel-interface port (which takes frames with their offload
    /// state: partial checksums and GSO super-frames go as they are).
    Native(NativeRef),
    /// Into this vhost-user port (a virtqueue of the guest's, through librte_vhost).
    Vhost(VhostRef),
    /// Into this native memif port (the peer's shared ring).
    Memif(MemifRef),
    /// Into the encapsulation of the tunnel that this interface is
    /// ([`ForwardingPlan::tunnel`]): the stages that send into a tunnel hand frames to
    /// tunnel-encap; a frame that reaches the output of a tunnel all the same (a MAC entry
    /// on the tunnel that names no VTEP) is dropped there as `no_encap`.
    Tunnel,
}

/// One interface as workers see it.
///
/// A bridge's routed interface (BVI, `bvi:BR`) is the one interface with both sides: `l2`
/// names its bridge (it sits in the bridge's VLAN 0, untagged, and is not among the
/// bridge's members: the bridge reaches it through [`BridgePlan::bvi`]) and `l3` its VRF
/// and MAC; its `input` is [`Input::Route`] (frames handled as received on it are routed)
/// and it has no DPDK port: what leaves through it enters its bridge (see
/// [`IfacePlan::bvi_bridge`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfacePlan {
    /// Administratively up (frames neither enter nor leave a down interface).
    pub up: bool,
    pub input: Input,
    /// Bridge membership, if it is in a bridge (or the bridge of a BVI).
    pub l2: Option<L2Port>,
    /// Its routed side, if it is an L3 interface.
    pub l3: Option<L3Port>,
    /// The longest frame it may send: its MTU plus the Ethernet header and two VLAN tags.
    pub max_frame: u32,
}

impl IfacePlan {
    /// `max_frame` of an interface with MTU `mtu`.
    pub const fn max_frame_of(mtu: u16) -> u32 {
        mtu as u32 + 14 + 8
    }

    /// The bridge whose routed interface (BVI) this is, if it is one: frames sent out of
    /// it go into that bridge, as received on the BVI.
    #[inline(always)]
    pub fn bvi_bridge(&self) -> Option<u16> {
        match (&self.l2, &self.l3) {
            (Some(l2), Some(_)) => Some(l2.bridge),
            _ => None,
        }
    }
}

/// A set of VLAN ids (1-4094), as a bitmap.
#[derive(Clone, PartialEq, Eq)]
pub struct VlanSet(Box<[u64; 64]>);

impl VlanSet {
    /// The set of `ids` (ids outside 1-4094 are ignored).
    pub fn new(ids: &[u16]) -> VlanSet {
        let mut bits = Box::new([0u64; 64]);
        for &v in ids.iter().filter(|v| (1..=4094).contains(*v)) {
            bits[usize::from(v / 64)] |= 1 << (v % 64);
        }
        VlanSet(bits)
    }

    #[inline(always)]
    pub fn contains(&self, v: u16) -> bool {
        self.0
            .get(usize::from(v / 64))
            .is_some_and(|w| w & (1 << (v % 64)) != 0)
    }
}

impl std::fmt::Debug for VlanSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set()
            .entries((1..=4094u16).filter(|v| self.contains(*v)))
            .finish()
    }
}

/// How a bridge member handles 802.1Q tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VlanMode {
    /// Untagged frames only; they belong to VLAN 0 of the bridge.
    Untagged,
    /// Untagged frames, belonging to this VLAN (tags pushed/popped at the other members).
    Access(u16),
    /// Tagged frames of these VLANs.
    Trunk(VlanSet),
}

impl VlanMode {
    /// The bridge VLAN of a frame arriving with `tag`, None if this member does not carry it.
    #[inline(always)]
    pub fn ingress(&self, tag: Option<u16>) -> Option<u16> {
        match (self, tag) {
            (VlanMode::Untagged, None) => Some(0),
            (VlanMode::Access(v), None) => Some(*v),
            (VlanMode::Trunk(set), Some(t)) if set.contains(t) => Some(t),
            _ => None,
        }
    }

    /// Whether frames of bridge VLAN `vlan` may leave through this member.
    #[inline(always)]
    pub fn carries(&self, vlan: u16) -> bool {
        match self {
            VlanMode::Untagged => vlan == 0,
            VlanMode::Access(v) => *v == vlan,
            VlanMode::Trunk(set) => set.contains(vlan),
        }
    }

    /// Whether frames leave this member tagged.
    #[inline(always)]
    pub fn tagged(&self) -> bool {
        matches!(self, VlanMode::Trunk(_))
    }
}

/// An interface's bridge membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct L2Port {
    pub bridge: u16,
    pub mode: VlanMode,
    /// Administratively up (frames neither enter nor leave a down member).
    pub up: bool,
}

/// An L3 interface's routed side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3Port {
    /// The VRF its packets are routed in.
    pub vrf: u16,
    /// The MAC it sends from (and answers ARP / ND with).
    pub mac: Mac,
}

/// One VRF's FIBs (updated in place by the control thread; the plan only points to them).
#[derive(Debug, Clone)]
pub struct VrfPlan {
    pub fib4: Arc<Fib4>,
    pub fib6: Arc<Fib6>,
}

impl PartialEq for VrfPlan {
    fn eq(&self, o: &VrfPlan) -> bool {
        Arc::ptr_eq(&self.fib4, &o.fib4) && Arc::ptr_eq(&self.fib6, &o.fib6)
    }
}

impl Eq for VrfPlan {}

/// The router's tables: the VRFs' FIBs by VRF id, and the next hops they name.
#[derive(Debug, Clone, Default)]
pub struct L3Plan {
    pub vrfs: Vec<Option<VrfPlan>>,
    pub nexthops: Option<Arc<NextHops>>,
}

impl PartialEq for L3Plan {
    fn eq(&self, o: &L3Plan) -> bool {
        self.vrfs == o.vrfs
            && match (&self.nexthops, &o.nexthops) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
    }
}

impl Eq for L3Plan {}

/// A bridge as workers see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgePlan {
    pub learn: bool,
    /// Flood unknown unicast (broadcast and multicast are always flooded).
    pub flood: bool,
    /// Member interfaces.
    pub members: Vec<IfIndex>,
    /// Its routed interface, while it routes (has addresses, proxy-ARP or routes through
    /// it); None: the bridge only switches.
    pub bvi: Option<BviPlan>,
}

/// A bridge's routed interface as its bridge sees it: frames of VLAN 0 to `mac` go to the
/// router as received on `iface`, group frames of VLAN 0 are flooded and also given to the
/// router, and `mac` is never learned on a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BviPlan {
    pub iface: IfIndex,
    pub mac: Mac,
}

impl BridgePlan {
    /// Whether `mac` is the bridge's routed interface's.
    #[inline(always)]
    pub fn is_bvi_mac(&self, mac: &Mac) -> bool {
        self.bvi.is_some_and(|b| b.mac == *mac)
    }
}

/// Where a worker receives from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rx {
    /// A DPDK rx queue.
    Dpdk(PortQueue),
    /// A native kernel-interface port whose rx worker this worker is.
    Native(NativeRef),
    /// Queue pair `.1` of a vhost-user port, which this worker alone polls.
    Vhost(VhostRef, u16),
    /// Queue `.1` of a native memif port, which this worker alone polls.
    Memif(MemifRef, u16),
}

/// One rx queue a worker polls, and the interface it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxQueue {
    pub rxq: Rx,
    pub iface: IfIndex,
}

/// Everything one worker does in a poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerPlan {
    pub rx: Vec<RxQueue>,
    /// How this worker transmits on each interface, by interface index.
    pub tx: Vec<Tx>,
}

/// The whole dataplane's plan. `version` is set by the engine when it is published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardingPlan {
    pub version: u64,
    pub workers: Vec<WorkerPlan>,
    /// Interfaces by index.
    pub ifaces: Vec<Option<IfacePlan>>,
    /// Bridges by bridge id.
    pub bridges: Vec<Option<BridgePlan>>,
    pub l3: L3Plan,
    /// Tunnels, by their interface's index (ascending).
    pub tunnels: Vec<TunnelPlan>,
    /// The ACLs bound to interfaces.
    pub acls: crate::acl::AclBindings,
    /// Services, port mappings and masquerade (None: nothing is translated).
    pub nat: Option<std::sync::Arc<crate::nat::NatPlan>>,
}

impl ForwardingPlan {
    /// Interface `i`.
    #[inline(always)]
    pub fn iface(&self, i: IfIndex) -> Option<&IfacePlan> {
        self.ifaces.get(usize::from(i)).and_then(Option::as_ref)
    }

    /// The bridge membership of interface `i`, if it is in a bridge.
    #[inline(always)]
    pub fn l2_port(&self, i: IfIndex) -> Option<&L2Port> {
        self.iface(i).and_then(|p| p.l2.as_ref())
    }

    /// Bridge `id`.
    #[inline(always)]
    pub fn bridge(&self, id: u16) -> Option<&BridgePlan> {
        self.bridges.get(usize::from(id)).and_then(Option::as_ref)
    }

    /// VRF `id`'s FIBs.
    #[inline(always)]
    pub fn vrf(&self, id: u16) -> Option<&VrfPlan> {
        self.l3.vrfs.get(usize::from(id)).and_then(Option::as_ref)
    }

    /// Whether interface `i` is a tunnel (cheap when there are none).
    #[inline(always)]
    pub fn is_tunnel(&self, i: IfIndex) -> bool {
        !self.tunnels.is_empty() && self.tunnel(i).is_some()
    }

    /// The tunnel that interface `i` is, if it is one.
    #[inline]
    pub fn tunnel(&self, i: IfIndex) -> Option<&TunnelPlan> {
        self.tunnels
            .binary_search_by_key(&i, |t| t.iface)
            .ok()
            .and_then(|x| self.tunnels.get(x))
    }
}

/// How a tunnel encapsulates, with what identifies its packets on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelEncap {
    /// Ethernet in UDP (RFC 7348): a 24-bit VNI, to a UDP port (IANA's 4789; Linux's
    /// default is 8472).
    Vxlan { vni: u32, port: u16 },
    /// Ethernet in UDP with options (RFC 8926): a 24-bit VNI, to a UDP port (6081). No
    /// options are sent.
    Geneve { vni: u32, port: u16 },
    /// GRE (RFC 2784, key RFC 2890): IP packets, or Ethernet frames (`teb`: transparent
    /// Ethernet bridging, protocol 0x6558), with an optional 32-bit key.
    Gre { key: Option<u32>, teb: bool },
    /// IP in IP (RFC 2003; IPv6 inside: RFC 4213).
    Ipip,
}

impl TunnelEncap {
    /// The kind's name in the API.
    pub const fn kind(&self) -> &'static str {
        match self {
            TunnelEncap::Vxlan { .. } => "vxlan",
            TunnelEncap::Geneve { .. } => "geneve",
            TunnelEncap::Gre { .. } => "gre",
            TunnelEncap::Ipip => "ipip",
        }
    }

    /// Whether it carries Ethernet frames (an L2 tunnel, which a bridge can take as a
    /// member) rather than IP packets.
    pub const fn carries_ethernet(&self) -> bool {
        match self {
            TunnelEncap::Vxlan { .. } | TunnelEncap::Geneve { .. } => true,
            TunnelEncap::Gre { teb, .. } => *teb,
            TunnelEncap::Ipip => false,
        }
    }

    /// Bytes it adds in front of the inner IP packet, over an IPv4 (`ipv6`: IPv6) underlay:
    /// the outer IP header (20 or 40), the tunnel's own headers, and the inner Ethernet
    /// header (14) of the kinds that carry frames. vxlan: 20 + UDP 8 + VXLAN 8 + 14 = 50;
    /// geneve (no options): the same 50; gre: 20 + GRE 4 (+ 4 with a key) = 24 or 28, and
    /// 14 more in teb mode; ipip: 20.
    pub const fn overhead(&self, ipv6: bool) -> u16 {
        let ip = if ipv6 { 40 } else { 20 };
        ip + match self {
            TunnelEncap::Vxlan { .. } | TunnelEncap::Geneve { .. } => 8 + 8 + 14,
            TunnelEncap::Gre { key, teb } => {
                4 + if key.is_some() { 4 } else { 0 } + if *teb { 14 } else { 0 }
            }
            TunnelEncap::Ipip => 0,
        }
    }
}

/// A tunnel as workers see it: a logical interface (`iface`, with its [`IfacePlan`]: a
/// bridge member for the kinds that carry Ethernet, or a routed interface) whose frames
/// leave encapsulated toward the underlay, in VRF `vrf`, from `local`.
///
/// Data only: tunnel-encap and tunnel-decap ([`crate::tunnel`]) read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelPlan {
    pub iface: IfIndex,
    pub encap: TunnelEncap,
    /// The underlay VRF: where the outer packets are routed and `local` is the router's.
    pub vrf: u16,
    pub local: IpAddr,
    /// Where its packets go: the one peer of a point-to-point tunnel; for vxlan and geneve
    /// the peers that broadcast, multicast and unknown unicast are copied to (head-end
    /// replication). Empty for a point-to-multipoint ipip tunnel (the outer destination is
    /// the route's next-hop) and for vxlan / geneve tunnels that send by `vteps` only.
    pub remotes: Vec<IpAddr>,
    /// The outer TTL (hop limit); 0: copied from the inner packet.
    pub ttl: u8,
    /// Sets Don't Fragment on IPv4 outer packets.
    pub df: bool,
    /// The tunnel interface's MTU (of the inner packets).
    pub mtu: u16,
    /// The tunnel's own MAC (the kinds that carry Ethernet: the source of the inner frames
    /// it routes).
    pub mac: Mac,
    /// Static inner MAC -> outer destination entries of an L3 vxlan / geneve tunnel
    /// (flannel's VTEP entries), by MAC (ascending).
    pub vteps: Vec<(Mac, IpAddr)>,
}

impl TunnelPlan {
    /// The outer destination configured for inner destination `mac`.
    #[inline]
    pub fn vtep(&self, mac: &Mac) -> Option<IpAddr> {
        self.vteps
            .binary_search_by(|(m, _)| m.cmp(mac))
            .ok()
            .and_then(|x| self.vteps.get(x))
            .map(|(_, ip)| *ip)
    }
}

/// Picks the worker for each of `queues` new rx queues: the least loaded first, given how
/// many queues each worker already polls (`load`, updated in place). Queues are never moved
/// once placed: two workers must never poll one queue, even for one poll.
pub fn place_queues(load: &mut [usize], queues: usize) -> Vec<usize> {
    (0..queues)
        .map(|_| {
            let (w, _) = load
                .iter()
                .enumerate()
                .min_by_key(|(i, n)| (**n, *i))
                .unwrap_or((0, &0));
            if let Some(n) = load.get_mut(w) {
                *n += 1;
            }
            w
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_on_least_loaded_worker_first() {
        let mut load = vec![2, 0, 1];
        assert_eq!(place_queues(&mut load, 4), vec![1, 1, 2, 0]);
        assert_eq!(load, vec![3, 2, 2]);
    }

    #[test]
    fn vlan_modes() {
        let trunk = VlanMode::Trunk(VlanSet::new(&[10, 20, 4094, 0, 4095]));
        assert_eq!(trunk.ingress(Some(10)), Some(10));
        assert_eq!(trunk.ingress(Some(30)), None);
        assert_eq!(trunk.ingress(None), None);
        assert!(trunk.carries(4094) && !trunk.carries(0) && !trunk.carries(4095));
        assert!(trunk.tagged());
        let access = VlanMode::Access(10);
        assert_eq!(access.ingress(None), Some(10));
        assert_eq!(access.ingress(Some(10)), None);
        assert!(access.carries(10) && !access.carries(20) && !access.tagged());
        assert_eq!(VlanMode::Untagged.ingress(None), Some(0));
        assert!(VlanMode::Untagged.carries(0) && !VlanMode::Untagged.carries(10));
        assert_eq!(format!("{:?}", VlanSet::new(&[3, 1])), "{1, 3}");
    }

    #[test]
    fn tunnel_overheads_and_lookups() {
        let vx = TunnelEncap::Vxlan { vni: 1, port: 4789 };
        assert_eq!((vx.overhead(false), vx.overhead(true)), (50, 70));
        let gre = |key, teb| TunnelEncap::Gre { key, teb };
        assert_eq!(gre(None, false).overhead(false), 24);
        assert_eq!(gre(Some(1), false).overhead(false), 28);
        assert_eq!(gre(Some(1), true).overhead(false), 42);
        assert_eq!(TunnelEncap::Ipip.overhead(false), 20);
        assert!(vx.carries_ethernet() && gre(None, true).carries_ethernet());
        assert!(!gre(None, false).carries_ethernet() && !TunnelEncap::Ipip.carries_ethernet());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let t = |iface| TunnelPlan {
            iface,
            encap: vx,
            vrf: 0,
            local: a,
            remotes: vec![],
            ttl: 64,
            df: false,
            mtu: 1450,
            mac: [2, 0, 0, 0, 0, 1],
            vteps: vec![([2, 0, 0, 0, 0, 5], a), ([2, 0, 0, 0, 0, 9], a)],
        };
        let plan = ForwardingPlan {
            tunnels: vec![t(3), t(7)],
            ..ForwardingPlan::default()
        };
        assert_eq!(plan.tunnel(7).map(|t| t.iface), Some(7));
        assert!(plan.tunnel(5).is_none());
        assert_eq!(t(3).vtep(&[2, 0, 0, 0, 0, 9]), Some(a));
        assert_eq!(t(3).vtep(&[2, 0, 0, 0, 0, 6]), None);
    }

    #[test]
    fn one_worker_takes_everything() {
        let mut load = vec![0];
        assert_eq!(place_queues(&mut load, 3), vec![0, 0, 0]);
    }

    #[test]
    fn no_workers_places_on_zero_without_panicking() {
        let mut load: Vec<usize> = vec![];
        assert_eq!(place_queues(&mut load, 2), vec![0, 0]);
    }
}
