//! Per-worker counters: traffic per interface, drops by stage and named reason, and each
//! stage's calls, packets and cycles (`vsctl runtime`, VPP's `show runtime`).
//!
//! Thread safety: each [`WorkerCounters`] is written by its own worker only, with relaxed
//! load + store (a plain add, no locked instruction); the control thread reads them with
//! relaxed loads and sums across workers. Each worker's block is cache-line aligned so
//! workers never share a line.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub(crate) use crate::cell::bump;
use crate::graph::Stage;
use crate::plan::{IfIndex, MAX_IFACES};

/// Why the dataplane dropped a packet. Every drop is counted under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum DropReason {
    /// The output device's tx queue did not take the packet.
    TxFull = 0,
    /// The input interface has nowhere to send its packets (not cross-connected).
    Unconnected = 1,
    /// The input or output interface is administratively down.
    IfaceDown = 2,
    /// The output device has no tx queue for this worker (e.g. a pcap file, which has one).
    NoTxQueue = 3,
    /// A frame too short for its Ethernet (or 802.1Q) header.
    BadHeader = 4,
    /// A frame of a VLAN the bridge member does not carry (or tagged on an access member).
    VlanMismatch = 5,
    /// A frame whose destination sits on the port it came from (filtered, as bridges do).
    SamePort = 6,
    /// Unknown unicast on a bridge with flooding off.
    FloodOff = 7,
    /// No mbuf for a flooded copy, a VLAN tag or a segment of a GSO super-frame.
    NoMbuf = 8,
    /// The slow path's punt ring of this worker was full.
    PuntFull = 9,
    /// A frame needing an offload that the output interface cannot do and software does
    /// not (yet): the partial checksum of a chained frame without GSO, or a GSO segment
    /// longer than one mbuf of the super-frame's pool holds.
    OffloadUnsupported = 10,
    /// A frame still moving between stages after the graph's last round (a loop).
    GraphLoop = 11,
    /// A frame longer than its output interface's MTU allows (bridges do not fragment).
    MtuExceeded = 12,
    /// No route to the destination (or a blackhole route, or a next hop being removed).
    NoRoute = 13,
    /// An IPv4 header whose checksum is wrong.
    BadChecksum = 14,
    /// A source or destination address a router must not forward (RFC 1812 §5.3.7).
    Martian = 15,
    /// A frame on a routed interface that is neither IPv4, IPv6 nor ARP (or is tagged).
    NotIp = 16,
    /// A frame that reached a tunnel interface's output without tunnel-encap (a MAC entry on
    /// the tunnel that names no VTEP), or of a kind or family tunnel-encap does not do.
    NoEncap = 17,
    // Tunnel decapsulation (tunnel-decap): the reasons of `wire::tunnel::TunnelDrop`,
    // in its order, then the decapsulator's own.
    /// The outer IPv4 header of tunnel traffic is truncated or contradicts itself.
    OuterBadHeader = 18,
    /// An outer fragment of tunnel traffic (nothing reassembles).
    OuterFragment = 19,
    /// A UDP header truncated, or its Length below 8 or past the IPv4 payload.
    UdpBadLength = 20,
    /// A VXLAN header shorter than 8 bytes.
    VxlanShort = 21,
    /// A VXLAN header without the I flag (RFC 7348 §5).
    VxlanNoIFlag = 22,
    /// A Geneve header shorter than 8 bytes or than its options.
    GeneveShort = 23,
    /// A Geneve version other than 0.
    GeneveVersion = 24,
    /// A Geneve control packet (O bit).
    GeneveControl = 25,
    /// A critical Geneve option this endpoint does not know (RFC 8926 §3.5).
    GeneveCriticalOption = 26,
    /// A Geneve Protocol Type other than Ethernet, IPv4 or IPv6.
    GeneveProto = 27,
    /// A GRE header shorter than its flags announce.
    GreShort = 28,
    /// A GRE version other than 0.
    GreVersion = 29,
    /// GRE bits a receiver must refuse (RFC 2784 §2.3).
    GreReservedBits = 30,
    /// A GRE checksum that does not verify.
    GreChecksum = 31,
    /// A GRE Protocol Type other than Ethernet, IPv4 or IPv6.
    GreProto = 32,
    /// An inner packet shorter than an Ethernet header or a minimal IP header.
    InnerTooShort = 33,
    /// VXLAN to a local tunnel endpoint and port with a VNI no tunnel there has.
    VxlanUnknownVni = 34,
    /// UDP to a local tunnel endpoint address on a port no tunnel there listens on.
    UdpNoTunnel = 35,
    /// A frame for a tunnel too long for it: over the tunnel's MTU, or once encapsulated
    /// over the underlay interface's (bridged frames cannot be told so: counted here).
    TunnelMtuExceeded = 36,
    /// A frame for a tunnel that has no VTEP to send it to (no remote, no MAC entry).
    TunnelNoRemote = 37,
    /// Geneve to a local tunnel endpoint and port with a VNI no tunnel there has.
    GeneveUnknownVni = 38,
    /// GRE or IP in IP to a local gre / ipip tunnel endpoint that no tunnel there takes
    /// (another remote, another key, another payload kind).
    TunnelUnknown = 39,
    /// An IP packet an ACL bound to its input or output interface denies (a deny rule, or
    /// no rule matching).
    AclDeny = 40,
    /// A new flow a `permit-reflect` rule lets through that gets no session: the session
    /// table is at its global or the interface's limit with nothing to evict, or the
    /// flow's bucket is full (dropped, as conntrack does when full).
    SessionLimit = 41,
}

impl From<crate::wire::tunnel::TunnelDrop> for DropReason {
    /// The counter of a reason [`classify_ipv4`](crate::wire::tunnel::classify_ipv4) gives.
    #[inline]
    fn from(d: crate::wire::tunnel::TunnelDrop) -> DropReason {
        // TunnelDrop's discriminants are its index in TunnelDrop::ALL, and the reasons
        // follow each other here in that order from OuterBadHeader on (a test checks).
        DropReason::ALL[DropReason::OuterBadHeader as usize + d as usize]
    }
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 42] = [
        DropReason::TxFull,
        DropReason::Unconnected,
        DropReason::IfaceDown,
        DropReason::NoTxQueue,
        DropReason::BadHeader,
        DropReason::VlanMismatch,
        DropReason::SamePort,
        DropReason::FloodOff,
        DropReason::NoMbuf,
        DropReason::PuntFull,
        DropReason::OffloadUnsupported,
        DropReason::GraphLoop,
        DropReason::MtuExceeded,
        DropReason::NoRoute,
        DropReason::BadChecksum,
        DropReason::Martian,
        DropReason::NotIp,
        DropReason::NoEncap,
        DropReason::OuterBadHeader,
        DropReason::OuterFragment,
        DropReason::UdpBadLength,
        DropReason::VxlanShort,
        DropReason::VxlanNoIFlag,
        DropReason::GeneveShort,
        DropReason::GeneveVersion,
        DropReason::GeneveControl,
        DropReason::GeneveCriticalOption,
        DropReason::GeneveProto,
        DropReason::GreShort,
        DropReason::GreVersion,
        DropReason::GreReservedBits,
        DropReason::GreChecksum,
        DropReason::GreProto,
        DropReason::InnerTooShort,
        DropReason::VxlanUnknownVni,
        DropReason::UdpNoTunnel,
        DropReason::TunnelMtuExceeded,
        DropReason::TunnelNoRemote,
        DropReason::GeneveUnknownVni,
        DropReason::TunnelUnknown,
        DropReason::AclDeny,
        DropReason::SessionLimit,
    ];

    /// The name shown by `vsctl drops` and in metrics.
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::TxFull => "tx_full",
            DropReason::Unconnected => "unconnected",
            DropReason::IfaceDown => "iface_down",
            DropReason::NoTxQueue => "no_tx_queue",
            DropReason::BadHeader => "bad_header",
            DropReason::VlanMismatch => "vlan_mismatch",
            DropReason::SamePort => "same_port",
            DropReason::FloodOff => "flood_off",
            DropReason::NoMbuf => "no_mbuf",
            DropReason::PuntFull => "punt_full",
            DropReason::OffloadUnsupported => "offload_unsupported",
            DropReason::GraphLoop => "graph_loop",
            DropReason::MtuExceeded => "mtu_exceeded",
            DropReason::NoRoute => "no_route",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::Martian => "martian",
            DropReason::NotIp => "not_ip",
            DropReason::NoEncap => "no_encap",
            DropReason::OuterBadHeader
            | DropReason::OuterFragment
            | DropReason::UdpBadLength
            | DropReason::VxlanShort
            | DropReason::VxlanNoIFlag
            | DropReason::GeneveShort
            | DropReason::GeneveVersion
            | DropReason::GeneveControl
            | DropReason::GeneveCriticalOption
            | DropReason::GeneveProto
            | DropReason::GreShort
            | DropReason::GreVersion
            | DropReason::GreReservedBits
            | DropReason::GreChecksum
            | DropReason::GreProto
            | DropReason::InnerTooShort => {
                let i = self as usize - DropReason::OuterBadHeader as usize;
                crate::wire::tunnel::TunnelDrop::ALL[i].name()
            }
            DropReason::VxlanUnknownVni => "vxlan_unknown_vni",
            DropReason::UdpNoTunnel => "udp_no_tunnel",
            DropReason::TunnelMtuExceeded => "tunnel_mtu_exceeded",
            DropReason::TunnelNoRemote => "tunnel_no_remote",
            DropReason::GeneveUnknownVni => "geneve_unknown_vni",
            DropReason::TunnelUnknown => "tunnel_unknown",
            DropReason::AclDeny => "acl_deny",
            DropReason::SessionLimit => "session_limit",
        }
    }
}

const N_REASONS: usize = DropReason::ALL.len();
const N_STAGES: usize = Stage::ALL.len();

/// One stage's work on one worker. Calls and packets count every call; cycles are
/// measured on one burst in [`TIMED_EVERY`] (two TSC reads a stage would cost more than a
/// cheap stage does), with the packets of those calls beside them.
#[derive(Debug)]
pub struct StageCounters {
    /// Vectors it was called with.
    pub(crate) calls: AtomicU64,
    pub(crate) packets: AtomicU64,
    /// TSC cycles spent in it, in the timed calls.
    pub(crate) cycles: AtomicU64,
    /// Packets of the timed calls.
    pub(crate) timed_packets: AtomicU64,
    /// Drops in it, by reason.
    pub(crate) drops: [AtomicU64; N_REASONS],
}

impl Default for StageCounters {
    fn default() -> Self {
        StageCounters {
            calls: AtomicU64::new(0),
            packets: AtomicU64::new(0),
            cycles: AtomicU64::new(0),
            timed_packets: AtomicU64::new(0),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// A burst in this many has its stages timed.
pub const TIMED_EVERY: u64 = 8;

/// A copy of one stage's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageStats {
    pub calls: u64,
    pub packets: u64,
    /// Cycles of the timed calls, and their packets.
    pub cycles: u64,
    pub timed_packets: u64,
    pub drops: [u64; N_REASONS],
}

impl Default for StageStats {
    fn default() -> Self {
        StageStats {
            calls: 0,
            packets: 0,
            cycles: 0,
            timed_packets: 0,
            drops: [0; N_REASONS],
        }
    }
}

impl StageStats {
    /// Field-wise sum.
    pub fn plus(mut self, o: &StageStats) -> StageStats {
        self.calls += o.calls;
        self.packets += o.packets;
        self.cycles += o.cycles;
        self.timed_packets += o.timed_packets;
        for (a, b) in self.drops.iter_mut().zip(o.drops) {
            *a += b;
        }
        self
    }

    /// Cycles per packet, over the timed calls (0 before the first).
    pub fn cycles_per_packet(&self) -> f64 {
        if self.timed_packets == 0 {
            0.0
        } else {
            self.cycles as f64 / self.timed_packets as f64
        }
    }

    /// Packets per call: how full its vectors were.
    pub fn vector_size(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.packets as f64 / self.calls as f64
        }
    }
}

/// One worker's counters, written by that worker alone.
#[repr(align(128))]
#[derive(Debug)]
pub struct WorkerCounters {
    pub(crate) rx_packets: AtomicU64,
    pub(crate) tx_packets: AtomicU64,
    /// TSC cycles of polls that received packets.
    pub(crate) busy_cycles: AtomicU64,
    /// TSC when the worker started.
    pub(crate) start_tsc: AtomicU64,
    /// TSC at the end of the worker's last poll.
    pub(crate) last_tsc: AtomicU64,
    /// The plan version this worker last finished a poll with (see Engine::publish).
    pub(crate) seen_version: AtomicU64,
    /// Idle sleeps (adaptive polling), and those a descriptor ended before their time-out
    /// (a queue's peer, the slow path or a new plan; see [`crate::poll::Sleeper`]).
    pub(crate) sleeps: AtomicU64,
    pub(crate) wakeups: AtomicU64,
    /// Each stage's work and drops.
    pub(crate) stages: [StageCounters; N_STAGES],
    /// What this worker received from, sent to and dropped on each interface (by index).
    pub(crate) ifaces: Box<[IfaceCounters]>,
    /// rx -> tx cycles of forwarded packets.
    pub(crate) latency: crate::latency::LatencyHistogram,
}

/// One worker's traffic on one interface. Drops count against the input interface
/// (unconnected, iface_down) or the output interface (tx_full, no_tx_queue).
#[derive(Debug, Default)]
pub struct IfaceCounters {
    pub(crate) rx_packets: AtomicU64,
    pub(crate) rx_bytes: AtomicU64,
    pub(crate) tx_packets: AtomicU64,
    pub(crate) tx_bytes: AtomicU64,
    pub(crate) drops: AtomicU64,
}

impl IfaceCounters {
    pub(crate) fn snapshot(&self) -> PortTotals {
        PortTotals {
            rx_packets: self.rx_packets.load(Relaxed),
            rx_bytes: self.rx_bytes.load(Relaxed),
            tx_packets: self.tx_packets.load(Relaxed),
            tx_bytes: self.tx_bytes.load(Relaxed),
            drops: self.drops.load(Relaxed),
        }
    }
}

/// Traffic on one interface, as counted by the dataplane (exact for every driver, unlike
/// the drivers' own statistics, some of which do not count tx).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortTotals {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub drops: u64,
}

impl PortTotals {
    /// Field-wise sum.
    pub fn plus(self, o: PortTotals) -> PortTotals {
        PortTotals {
            rx_packets: self.rx_packets + o.rx_packets,
            rx_bytes: self.rx_bytes + o.rx_bytes,
            tx_packets: self.tx_packets + o.tx_packets,
            tx_bytes: self.tx_bytes + o.tx_bytes,
            drops: self.drops + o.drops,
        }
    }

    /// Field-wise difference (never below zero): counts since `base` was taken.
    pub fn since(self, base: PortTotals) -> PortTotals {
        PortTotals {
            rx_packets: self.rx_packets.saturating_sub(base.rx_packets),
            rx_bytes: self.rx_bytes.saturating_sub(base.rx_bytes),
            tx_packets: self.tx_packets.saturating_sub(base.tx_packets),
            tx_bytes: self.tx_bytes.saturating_sub(base.tx_bytes),
            drops: self.drops.saturating_sub(base.drops),
        }
    }
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            rx_packets: AtomicU64::new(0),
            tx_packets: AtomicU64::new(0),
            busy_cycles: AtomicU64::new(0),
            start_tsc: AtomicU64::new(0),
            last_tsc: AtomicU64::new(0),
            seen_version: AtomicU64::new(0),
            sleeps: AtomicU64::new(0),
            wakeups: AtomicU64::new(0),
            stages: Default::default(),
            ifaces: (0..MAX_IFACES).map(|_| IfaceCounters::default()).collect(),
            latency: Default::default(),
        }
    }
}

impl WorkerCounters {
    /// Counts `n` packets dropped by `stage` for `reason`, against interface `iface`. Out
    /// of line: the stages' forwarding code stays small.
    #[cold]
    #[inline(never)]
    pub fn drop_packets(&self, stage: Stage, reason: DropReason, iface: IfIndex, n: u64) {
        bump(&self.stages[stage as usize].drops[reason as usize], n);
        if let Some(c) = self.ifaces.get(usize::from(iface)) {
            bump(&c.drops, n);
        }
    }

    /// Counts one call of `stage` with `packets` packets.
    #[inline(always)]
    pub(crate) fn stage(&self, stage: Stage, packets: usize) {
        let c = &self.stages[stage as usize];
        bump(&c.calls, 1);
        bump(&c.packets, packets as u64);
    }

    /// Counts `cycles` of a timed call of `stage` with `packets` packets.
    #[inline(always)]
    pub(crate) fn stage_cycles(&self, stage: Stage, packets: usize, cycles: u64) {
        let c = &self.stages[stage as usize];
        bump(&c.cycles, cycles);
        bump(&c.timed_packets, packets as u64);
    }

    #[inline(always)]
    pub(crate) fn iface_rx(&self, iface: IfIndex, packets: usize, bytes: u64) {
        if let Some(c) = self.ifaces.get(usize::from(iface)) {
            bump(&c.rx_packets, packets as u64);
            bump(&c.rx_bytes, bytes);
        }
    }

    #[inline(always)]
    pub(crate) fn iface_tx(&self, iface: IfIndex, packets: usize, bytes: u64) {
        if let Some(c) = self.ifaces.get(usize::from(iface)) {
            bump(&c.tx_packets, packets as u64);
            bump(&c.tx_bytes, bytes);
        }
    }

    /// Traffic on interface `iface`.
    pub fn iface(&self, iface: IfIndex) -> PortTotals {
        self.ifaces
            .get(usize::from(iface))
            .map(IfaceCounters::snapshot)
            .unwrap_or_default()
    }

    /// A consistent-enough copy for introspection.
    pub fn snapshot(&self) -> WorkerStats {
        let start = self.start_tsc.load(Relaxed);
        let last = self.last_tsc.load(Relaxed);
        WorkerStats {
            rx_packets: self.rx_packets.load(Relaxed),
            tx_packets: self.tx_packets.load(Relaxed),
            busy_cycles: self.busy_cycles.load(Relaxed),
            total_cycles: last.saturating_sub(start),
            sleeps: self.sleeps.load(Relaxed),
            wakeups: self.wakeups.load(Relaxed),
            stages: std::array::from_fn(|i| {
                let c = &self.stages[i];
                StageStats {
                    calls: c.calls.load(Relaxed),
                    packets: c.packets.load(Relaxed),
                    cycles: c.cycles.load(Relaxed),
                    timed_packets: c.timed_packets.load(Relaxed),
                    drops: std::array::from_fn(|r| c.drops[r].load(Relaxed)),
                }
            }),
        }
    }
}

/// A copy of one worker's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub busy_cycles: u64,
    pub total_cycles: u64,
    /// Idle sleeps, and those ended by a descriptor (a peer, the slow path, a new plan)
    /// rather than their time-out.
    pub sleeps: u64,
    pub wakeups: u64,
    /// Each stage's counters, in [`Stage::ALL`] order.
    pub stages: [StageStats; N_STAGES],
}

impl WorkerStats {
    /// Busy cycles per received packet (0 before the first packet).
    pub fn cycles_per_packet(&self) -> f64 {
        if self.rx_packets == 0 {
            0.0
        } else {
            self.busy_cycles as f64 / self.rx_packets as f64
        }
    }

    /// Percentage of cycles spent on polls that found packets.
    pub fn busy_pct(&self) -> f64 {
        if self.total_cycles == 0 {
            0.0
        } else {
            100.0 * self.busy_cycles as f64 / self.total_cycles as f64
        }
    }

    /// Drops under `reason`, in every stage.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.stages.iter().map(|s| s.drops[reason as usize]).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_names_are_unique_snake_case() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        assert!(names
            .iter()
            .all(|n| n.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
        }
    }

    #[test]
    fn tunnel_drops_map_to_their_own_counters() {
        use crate::wire::tunnel::TunnelDrop;
        for d in TunnelDrop::ALL {
            assert_eq!(DropReason::from(d).name(), d.name());
        }
        assert_eq!(
            DropReason::from(TunnelDrop::VxlanNoIFlag),
            DropReason::VxlanNoIFlag
        );
        assert_eq!(
            DropReason::from(TunnelDrop::InnerTooShort),
            DropReason::InnerTooShort
        );
    }

    #[test]
    fn counters_add_up_and_derive_rates() {
        let c = WorkerCounters::default();
        bump(&c.rx_packets, 10);
        bump(&c.rx_packets, 30);
        bump(&c.busy_cycles, 4000);
        c.start_tsc.store(1000, Relaxed);
        c.last_tsc.store(9000, Relaxed);
        c.drop_packets(Stage::Output, DropReason::TxFull, 3, 2);
        // An out-of-range interface counts globally only.
        c.drop_packets(Stage::Output, DropReason::TxFull, 9999, 1);
        c.drop_packets(Stage::EthernetInput, DropReason::BadHeader, 3, 1);
        c.stage(Stage::EthernetInput, 32);
        c.stage(Stage::EthernetInput, 16);
        c.stage_cycles(Stage::EthernetInput, 16, 320);
        let s = c.snapshot();
        assert_eq!(s.rx_packets, 40);
        assert_eq!(s.cycles_per_packet(), 100.0);
        assert_eq!(s.busy_pct(), 50.0);
        assert_eq!(s.dropped(DropReason::TxFull), 3);
        assert_eq!(s.dropped(DropReason::BadHeader), 1);
        let eth = s.stages[Stage::EthernetInput as usize];
        assert_eq!((eth.calls, eth.packets, eth.cycles), (2, 48, 320));
        assert_eq!((eth.cycles_per_packet(), eth.vector_size()), (20.0, 24.0));
        assert_eq!(eth.drops[DropReason::BadHeader as usize], 1);
        assert_eq!(c.iface(3).drops, 3);
        c.iface_rx(3, 4, 256);
        c.iface_tx(3, 2, 128);
        c.iface_tx(MAX_IFACES as u16, 2, 128); // out of range: ignored
        let p = c.iface(3);
        assert_eq!(
            (p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes),
            (4, 256, 2, 128)
        );
        assert_eq!(
            p.since(PortTotals {
                rx_packets: 1,
                drops: 5,
                ..p
            })
            .rx_packets,
            3
        );
        assert_eq!(p.since(PortTotals { drops: 5, ..p }).drops, 0);
        assert_eq!(std::mem::align_of::<WorkerCounters>(), 128);
    }
}
