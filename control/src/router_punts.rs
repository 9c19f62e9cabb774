//! The router's slow path (IPv4 and IPv6): what workers punt from routed interfaces.
//!
//! - `arp`: requests for the interface's addresses (or any address, with proxy-ARP on) are
//!   answered with the interface's MAC; the sender of every request and reply on one of
//!   the interface's subnets is learned (gratuitous ARP included), which resolves the
//!   gateways and host routes through it at once and releases the packets waiting for it.
//! - Neighbor Discovery (RFC 4861, punted as `local`: solicited-node multicast and
//!   link-local destinations): solicitations for the interface's IPv6 addresses (its
//!   link-local one included, the configured one or else its MAC's EUI-64 one) are
//!   answered with an advertisement (router, solicited, override) and their source learned;
//!   advertisements, solicited or not, are learned like ARP replies.
//! - `resolve`: a packet whose next hop has no MAC yet waits (at most [`QUEUE`] per
//!   neighbour) while ARP requests or neighbour solicitations go out, one a second,
//!   [`TRIES`] times; then the waiting packets are dropped and their senders get ICMP host
//!   unreachable (ICMPv6 address unreachable).
//!   A packet punted for a next hop that is resolved by the time the slow path sees it
//!   (the answer came through another worker's ring first) goes round the graph once more;
//!   the same frame punted again within [`ROUND_AGAIN`] is dropped, so none can loop.
//! - `local`: ICMP and ICMPv6 echo requests to the router's addresses are answered; the
//!   rest dropped.
//! - `ttl_exceeded`, `frag_needed`: ICMP time exceeded, fragmentation needed (ICMPv6 time
//!   exceeded, packet too big), with the output interface's MTU.
//!
//! Replies leave through the interface the packet came in on, to the MAC it came from.
//! ICMP errors of both versions are rate-limited together ([`ICMP_RATE`] a second, bursts
//! of [`ICMP_BURST`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dpdk::{Mbuf, Mempool};
use vswitch_dataplane::slowpath::{Injected, PuntReason, Punted, SlowPath};
use vswitch_dataplane::wire::arp::{self, ArpPacket, Operation};
use vswitch_dataplane::wire::icmp::{
    emit_icmpv4_error, emit_icmpv6_error, emit_neighbor_advert, emit_neighbor_solicit,
    may_send_icmpv4_error, may_send_icmpv6_error, v4_type, v4_unreachable, v6_type, v6_unreachable,
    Icmpv4Error, Icmpv4Packet, Icmpv6Error, Icmpv6Packet, NaFlags, NeighborAdvert, NeighborSolicit,
    ICMPV6_ERROR_MAX, ND_HOP_LIMIT, TIME_EXCEEDED_IN_TRANSIT,
};
use vswitch_dataplane::wire::ipv4::{Ipv4Packet, PROTO_ICMP};
use vswitch_dataplane::wire::ipv6::{self, Ipv6Packet, Ipv6Repr, NEXT_ICMPV6};
use vswitch_dataplane::IfIndex;

use crate::router::{is_link_local, IfaceInfo, Router};
use crate::slowpath::PuntHandler;

/// Packets that wait for one neighbour.
pub const QUEUE: usize = 4;
/// ARP requests (neighbour solicitations) for a neighbour before it is given up.
pub const TRIES: u32 = 3;
const RETRY: Duration = Duration::from_secs(1);
/// How long a frame sent round again for resolution is remembered (a second punt of it
/// within this is dropped), and how many are remembered at most.
pub const ROUND_AGAIN: Duration = Duration::from_secs(1);
const ROUND_AGAIN_MAX: usize = 256;
/// ICMP errors a second, and the burst allowed.
pub const ICMP_RATE: f64 = 1000.0;
pub const ICMP_BURST: f64 = 100.0;
const ETH: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];
const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
/// The all-nodes group (RFC 4291 §2.7.1), where unsolicited advertisements go.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// An ICMP error, in either version's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IcmpError {
    /// Time exceeded in transit.
    TimeExceeded,
    /// The next hop never answered: host (address) unreachable.
    Unreachable,
    /// Over the next hop's MTU: fragmentation needed, packet too big.
    TooBig(u16),
    /// Nothing listens there: port unreachable (a service without backends).
    PortUnreachable,
}

/// Packets waiting for a neighbour.
struct Pending {
    /// (worker, packet as received, its input interface).
    packets: Vec<(usize, Mbuf, IfIndex)>,
    tries: u32,
    next_try: Instant,
}

/// The handler of the router's punts.
pub struct RouterPunts {
    router: Arc<Mutex<Router>>,
    pool: Arc<Mempool>,
    pending: HashMap<(IfIndex, IpAddr), Pending>,
    /// Frames sent round again after a late resolve punt: (digest, when), oldest first.
    rounds: std::collections::VecDeque<(u64, Instant)>,
    tokens: f64,
    refilled: Instant,
    ident: u16,
    last_tick: Instant,
    last_age: Instant,
}

/// An Ethernet frame to `dst` from `src` of `ethertype` with room for `len` bytes of
/// payload after the header.
fn new_frame(dst: &[u8], src: &[u8; 6], ethertype: [u8; 2], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; ETH + len];
    out[0..6].copy_from_slice(dst);
    out[6..12].copy_from_slice(src);
    out[12..14].copy_from_slice(&ethertype);
    out
}

impl RouterPunts {
    pub fn new(router: Arc<Mutex<Router>>, pool: Arc<Mempool>) -> RouterPunts {
        RouterPunts {
            router,
            pool,
            pending: HashMap::new(),
            rounds: std::collections::VecDeque::new(),
            tokens: ICMP_BURST,
            refilled: Instant::now(),
            ident: 0,
            last_tick: Instant::now(),
            last_age: Instant::now(),
        }
    }

    fn router(&self) -> std::sync::MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn iface(&self, i: IfIndex) -> Option<IfaceInfo> {
        self.router().iface(i).cloned()
    }

    /// Sends `frame` out of interface `iface` through `worker`.
    fn send(&self, sp: &SlowPath, worker: usize, iface: IfIndex, frame: &[u8]) {
        let Some(m) = Mbuf::from_bytes(&self.pool, frame) else {
            return;
        };
        let _ = sp.inject(
            worker,
            Injected {
                mbuf: m,
                iface,
                as_received: false,
            },
        );
    }

    /// Takes an ICMP error token (rate limit).
    fn icmp_allowed(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + dt * ICMP_RATE).min(ICMP_BURST);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Sends an ICMP (ICMPv6) `error` about `frame` (received on `rx`) back where it came
    /// from.
    fn icmp_error(
        &mut self,
        sp: &SlowPath,
        worker: usize,
        rx: IfIndex,
        frame: &[u8],
        error: IcmpError,
    ) {
        match frame.get(12..14) {
            Some(t) if t == ETHERTYPE_IPV4 => self.icmp4_error(sp, worker, rx, frame, error),
            Some(t) if t == ETHERTYPE_IPV6 => self.icmp6_error(sp, worker, rx, frame, error),
            _ => {}
        }
    }

    fn icmp4_error(
        &mut self,
        sp: &SlowPath,
        worker: usize,
        rx: IfIndex,
        frame: &[u8],
        error: IcmpError,
    ) {
        let Some(Ok(p)) = frame.get(ETH..).map(Ipv4Packet::new_checked) else {
            return;
        };
        if !may_send_icmpv4_error(&p) || !self.icmp_allowed() {
            return;
        }
        let Some((mac, src)) = ({
            let r = self.router();
            r.iface(rx)
                .and_then(|i| Some((i.mac, i.source_for(p.src()).or_else(|| r.any_v4(i.vrf))?)))
        }) else {
            return;
        };
        let error = match error {
            IcmpError::TimeExceeded => Icmpv4Error::TimeExceeded(TIME_EXCEEDED_IN_TRANSIT),
            IcmpError::Unreachable => Icmpv4Error::Unreachable(v4_unreachable::HOST),
            IcmpError::PortUnreachable => Icmpv4Error::Unreachable(v4_unreachable::PORT),
            IcmpError::TooBig(mtu) => Icmpv4Error::FragNeeded { mtu },
        };
        self.ident = self.ident.wrapping_add(1);
        let mut out = frame_to(frame, &mac, ETHERTYPE_IPV4, 576);
        let Some(n) = emit_icmpv4_error(&mut out[ETH..], error, src, self.ident, &p) else {
            return;
        };
        out.truncate(ETH + n);
        self.send(sp, worker, rx, &out);
    }

    fn icmp6_error(
        &mut self,
        sp: &SlowPath,
        worker: usize,
        rx: IfIndex,
        frame: &[u8],
        error: IcmpError,
    ) {
        let Some(Ok(p)) = frame.get(ETH..).map(Ipv6Packet::new_checked) else {
            return;
        };
        let error = match error {
            IcmpError::TimeExceeded => Icmpv6Error::TimeExceeded(TIME_EXCEEDED_IN_TRANSIT),
            IcmpError::Unreachable => Icmpv6Error::Unreachable(v6_unreachable::ADDRESS),
            IcmpError::PortUnreachable => Icmpv6Error::Unreachable(v6_unreachable::PORT),
            IcmpError::TooBig(mtu) => Icmpv6Error::PacketTooBig {
                mtu: u32::from(mtu),
            },
        };
        if !may_send_icmpv6_error(&p, error) || !self.icmp_allowed() {
            return;
        }
        let Some((mac, src)) = ({
            let r = self.router();
            r.iface(rx).map(|i| {
                let src = i.source_for6(p.src());
                // A link-local source cannot reach a sender off the link.
                let src = match r.any_v6(i.vrf) {
                    Some(g) if is_link_local(src) && !is_link_local(p.src()) => g,
                    _ => src,
                };
                (i.mac, src)
            })
        }) else {
            return;
        };
        let mut out = frame_to(frame, &mac, ETHERTYPE_IPV6, ICMPV6_ERROR_MAX);
        let Some(n) = emit_icmpv6_error(&mut out[ETH..], error, src, &p) else {
            return;
        };
        out.truncate(ETH + n);
        self.send(sp, worker, rx, &out);
    }

    fn arp(&mut self, sp: &SlowPath, worker: usize, rx: IfIndex, frame: &[u8]) {
        let Some(Ok(a)) = frame.get(ETH..).map(ArpPacket::new_checked) else {
            return;
        };
        let (sender, target) = (a.sender_ip(), a.target_ip());
        let Some(info) = self.iface(rx) else { return };
        // Learn the sender (a reply, a request, a gratuitous announcement).
        if !sender.is_unspecified() && !info.v4.iter().any(|&(x, _)| x == sender) {
            self.learn(sp, rx, IpAddr::V4(sender), a.sender_mac());
        }
        if a.op() != Operation::Request || a.is_gratuitous() || sender == target {
            return;
        }
        let ours = info.v4.iter().any(|&(x, _)| x == target);
        if !ours && !info.proxy_arp {
            return;
        }
        let mut out = new_frame(&a.sender_mac(), &info.mac, ETHERTYPE_ARP, arp::PACKET_LEN);
        if arp::emit_reply(&mut out[ETH..], &a, info.mac).is_some() {
            self.send(sp, worker, rx, &out);
        }
    }

    /// `ip` is at `mac` on `iface` (ARP, Neighbor Discovery): learned, and the packets
    /// waiting for it released.
    fn learn(&mut self, sp: &SlowPath, iface: IfIndex, ip: IpAddr, mac: [u8; 6]) {
        self.router().learn(iface, ip, mac);
        self.release(sp, iface, ip);
    }

    /// The packets waiting for `ip` on `iface` go through the graph again (as received on
    /// their input interfaces): their next hop is resolved now.
    fn release(&mut self, sp: &SlowPath, iface: IfIndex, ip: IpAddr) {
        if let Some(p) = self.pending.remove(&(iface, ip)) {
            for (worker, m, rx) in p.packets {
                again(sp, worker, rx, m);
            }
        }
    }

    /// Asks for `ip`'s MAC on `iface`: an ARP request (from the interface's address in
    /// that subnet, else one of the router's in the VRF, else 0.0.0.0: an interface
    /// without addresses, such as a Calico-style pod link; hosts answer such probes), or a
    /// neighbour solicitation to its solicited-node group (RFC 4861 §7.2.2).
    fn request(&self, sp: &SlowPath, worker: usize, iface: IfIndex, ip: IpAddr) {
        let r = self.router();
        let Some(i) = r.iface(iface) else { return };
        let out = match ip {
            IpAddr::V4(ip) => {
                let src = i
                    .source_for(ip)
                    .or_else(|| r.any_v4(i.vrf))
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                let mut out = new_frame(&[0xff; 6], &i.mac, ETHERTYPE_ARP, 46);
                arp::emit_request(&mut out[ETH..], i.mac, src, ip).map(|_| out)
            }
            IpAddr::V6(ip) => {
                let group = ipv6::solicited_node(&ip);
                let mut out = new_frame(&ipv6::multicast_mac(&group), &i.mac, ETHERTYPE_IPV6, 72);
                emit_neighbor_solicit(&mut out[ETH..], i.source_for6(ip), group, ip, Some(i.mac))
                    .map(|n| {
                        out.truncate(ETH + n);
                        out
                    })
            }
        };
        drop(r);
        if let Some(out) = out {
            self.send(sp, worker, iface, &out);
        }
    }

    /// Asks `ip`, last seen at `mac`, whether it is still there: a unicast ARP request
    /// (RFC 1122 §2.3.2.1) or neighbour solicitation to the target itself (RFC 4861
    /// §7.3.3, PROBE).
    fn probe(&self, sp: &SlowPath, iface: IfIndex, ip: IpAddr, mac: [u8; 6]) {
        let Some(i) = self.iface(iface) else { return };
        let out = match ip {
            IpAddr::V4(ip) => {
                let src = i.source_for(ip).unwrap_or(Ipv4Addr::UNSPECIFIED);
                let mut out = new_frame(&mac, &i.mac, ETHERTYPE_ARP, 46);
                arp::emit_request(&mut out[ETH..], i.mac, src, ip).map(|_| out)
            }
            IpAddr::V6(ip) => {
                let mut out = new_frame(&mac, &i.mac, ETHERTYPE_IPV6, 72);
                emit_neighbor_solicit(&mut out[ETH..], i.source_for6(ip), ip, ip, Some(i.mac)).map(
                    |n| {
                        out.truncate(ETH + n);
                        out
                    },
                )
            }
        };
        if let Some(out) = out {
            self.send(sp, 0, iface, &out);
        }
    }

    fn resolve(&mut self, sp: &SlowPath, worker: usize, rx: IfIndex, m: Mbuf) {
        let Some(dst) = destination(m.data()) else {
            return;
        };
        let wanted = {
            let r = self.router();
            let Some(vrf) = r.iface(rx).map(|i| i.vrf) else {
                return;
            };
            r.unresolved(vrf, dst)
        };
        let Some(&first) = wanted.first() else {
            // Nothing to resolve: the answer came first (through another worker's ring,
            // or while this packet was in flight), or a route changed. Sent round once
            // more; the same frame back here within ROUND_AGAIN is dropped, so that a next
            // hop still saying Resolve cannot loop it.
            self.round_again(sp, worker, rx, m);
            return;
        };
        let now = Instant::now();
        for &(i, ip) in &wanted {
            let p = self.pending.entry((i, ip)).or_insert_with(|| Pending {
                packets: Vec::new(),
                tries: 0,
                next_try: now,
            });
            if p.tries == 0 || (now >= p.next_try && p.tries < TRIES) {
                p.tries += 1;
                p.next_try = now + RETRY;
                self.request(sp, worker, i, ip);
            }
        }
        if let Some(p) = self.pending.get_mut(&first) {
            if p.packets.len() < QUEUE {
                p.packets.push((worker, m, rx));
            }
        }
    }

    /// Sends `m` through the graph again as received on `rx`, unless the same frame was
    /// sent round within [`ROUND_AGAIN`] (then it is dropped).
    fn round_again(&mut self, sp: &SlowPath, worker: usize, rx: IfIndex, m: Mbuf) {
        use std::hash::{Hash, Hasher};
        let now = Instant::now();
        while self
            .rounds
            .front()
            .is_some_and(|&(_, t)| now.saturating_duration_since(t) >= ROUND_AGAIN)
        {
            self.rounds.pop_front();
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (rx, m.data()).hash(&mut h);
        let digest = h.finish();
        if self.rounds.iter().any(|&(d, _)| d == digest) {
            return;
        }
        if self.rounds.len() >= ROUND_AGAIN_MAX {
            self.rounds.pop_front();
        }
        self.rounds.push_back((digest, now));
        again(sp, worker, rx, m);
    }

    fn local(&mut self, sp: &SlowPath, worker: usize, rx: IfIndex, frame: &[u8]) {
        match frame.get(12..14) {
            Some(t) if t == ETHERTYPE_IPV4 => self.local4(sp, worker, rx, frame),
            Some(t) if t == ETHERTYPE_IPV6 => self.local6(sp, worker, rx, frame),
            _ => {}
        }
    }

    fn local4(&mut self, sp: &SlowPath, worker: usize, rx: IfIndex, frame: &[u8]) {
        let Some(Ok(p)) = frame.get(ETH..).map(Ipv4Packet::new_checked) else {
            return;
        };
        if p.protocol() != PROTO_ICMP || p.is_fragment() {
            return;
        }
        let dst = p.dst();
        let Ok(req) = Icmpv4Packet::new_checked(p.payload()) else {
            return;
        };
        if req.msg_type() != v4_type::ECHO_REQUEST || req.code() != 0 {
            return;
        }
        let Some(info) = self.iface(rx) else { return };
        // The reply: the request with addresses swapped, type 0, checksums recomputed.
        let hl = p.header_len();
        let total = usize::from(p.total_len());
        let mut out = frame_to(frame, &info.mac, ETHERTYPE_IPV4, total);
        out[ETH..].copy_from_slice(&frame[ETH..ETH + total]);
        let ip = &mut out[ETH..];
        let src = [ip[12], ip[13], ip[14], ip[15]];
        ip[12..16].copy_from_slice(&dst.octets());
        ip[16..20].copy_from_slice(&src);
        ip[8] = 64;
        {
            let Ok(mut icmp) = Icmpv4Packet::new_checked(&mut ip[hl..total]) else {
                return;
            };
            if !icmp.echo_reply_in_place() {
                return;
            }
        }
        let Ok(mut hdr) = Ipv4Packet::new_checked(&mut ip[..total]) else {
            return;
        };
        hdr.fill_checksum();
        self.send(sp, worker, rx, &out);
    }

    /// ICMPv6 for the router: Neighbor Discovery and echo requests.
    fn local6(&mut self, sp: &SlowPath, worker: usize, rx: IfIndex, frame: &[u8]) {
        let Some(Ok(p)) = frame.get(ETH..).map(Ipv6Packet::new_checked) else {
            return;
        };
        let Ok(upper) = p.upper_layer() else { return };
        if upper.protocol != NEXT_ICMPV6 || upper.fragment.is_some() {
            return;
        }
        let (src, dst) = (p.src(), p.dst());
        let msg = &p.packet()[upper.offset..];
        let Ok(icmp) = Icmpv6Packet::new_checked(msg) else {
            return;
        };
        if !icmp.checksum_ok(&src, &dst) {
            return;
        }
        let Some(info) = self.iface(rx) else { return };
        match icmp.msg_type() {
            // RFC 4861 §7.1: Neighbor Discovery only from the link itself.
            v6_type::NEIGHBOR_SOLICIT if p.hop_limit() == ND_HOP_LIMIT => {
                let Ok(ns) = NeighborSolicit::new_checked(msg) else {
                    return;
                };
                let target = ns.target();
                if !info.owns6(target) {
                    return;
                }
                let dad = src.is_unspecified();
                if dad && ns.source_mac().is_some() {
                    return;
                }
                if let (false, Some(mac)) = (dad, ns.source_mac()) {
                    self.learn(sp, rx, IpAddr::V6(src), mac);
                }
                // To the solicitor (to all-nodes, for duplicate address detection).
                let (to, to_mac, solicited) = if dad {
                    (ALL_NODES, ipv6::multicast_mac(&ALL_NODES), false)
                } else {
                    let mac = ns.source_mac().unwrap_or_else(|| {
                        let mut m = [0u8; 6];
                        m.copy_from_slice(&frame[6..12]);
                        m
                    });
                    (src, mac, true)
                };
                let flags = NaFlags {
                    router: true,
                    solicited,
                    overrides: true,
                };
                let mut out = new_frame(&to_mac, &info.mac, ETHERTYPE_IPV6, 72);
                if let Some(n) =
                    emit_neighbor_advert(&mut out[ETH..], target, to, target, flags, Some(info.mac))
                {
                    out.truncate(ETH + n);
                    self.send(sp, worker, rx, &out);
                }
            }
            v6_type::NEIGHBOR_ADVERT if p.hop_limit() == ND_HOP_LIMIT => {
                let Ok(na) = NeighborAdvert::new_checked(msg) else {
                    return;
                };
                if dst.is_multicast() && na.flags().solicited {
                    return;
                }
                let target = na.target();
                if let (false, Some(mac)) = (info.owns6(target), na.target_mac()) {
                    self.learn(sp, rx, IpAddr::V6(target), mac);
                }
            }
            v6_type::ECHO_REQUEST if icmp.code() == 0 => {
                // To one of the router's addresses: a link-local one of this interface, or a
                // global one (the FIB's local route punted it). Not to groups.
                if dst.is_multicast() || (is_link_local(dst) && !info.owns6(dst)) {
                    return;
                }
                let len = msg.len();
                let mut out = frame_to(frame, &info.mac, ETHERTYPE_IPV6, ipv6::HEADER_LEN + len);
                let repr = Ipv6Repr {
                    src: dst,
                    dst: src,
                    next_header: NEXT_ICMPV6,
                    hop_limit: 64,
                    traffic_class: 0,
                    flow_label: 0,
                    payload_len: len as u16,
                };
                let Some(h) = ipv6::emit(&mut out[ETH..], &repr) else {
                    return;
                };
                out[ETH + h..].copy_from_slice(msg);
                let Ok(mut reply) = Icmpv6Packet::new_checked(&mut out[ETH + h..]) else {
                    return;
                };
                if reply.echo_reply_in_place() {
                    self.send(sp, worker, rx, &out);
                }
            }
            _ => {}
        }
    }

    /// Gives up on neighbours asked [`TRIES`] times without an answer: their packets are
    /// dropped, with ICMP host unreachable to their senders.
    fn expire(&mut self, sp: &SlowPath) {
        let now = Instant::now();
        let dead: Vec<(IfIndex, IpAddr)> = self
            .pending
            .iter()
            .filter(|(_, p)| p.tries >= TRIES && now >= p.next_try)
            .map(|(k, _)| *k)
            .collect();
        for k in dead {
            if let Some(p) = self.pending.remove(&k) {
                for (worker, m, rx) in p.packets {
                    let frame = m.data().to_vec();
                    drop(m);
                    self.icmp_error(sp, worker, rx, &frame, IcmpError::Unreachable);
                }
            }
        }
        // Retries for the ones still waiting (through the worker of their first packet).
        let due: Vec<(IfIndex, IpAddr, usize)> = self
            .pending
            .iter_mut()
            .filter(|(_, p)| p.tries < TRIES && now >= p.next_try)
            .map(|(k, p)| {
                p.tries += 1;
                p.next_try = now + RETRY;
                (k.0, k.1, p.packets.first().map_or(0, |x| x.0))
            })
            .collect();
        for (i, ip, w) in due {
            self.request(sp, w, i, ip);
        }
    }
}

/// Sends `m` through the graph again, through `worker`, as received on `rx` (dropped when
/// that worker's inject ring is full).
fn again(sp: &SlowPath, worker: usize, rx: IfIndex, m: Mbuf) {
    let _ = sp.inject(
        worker,
        Injected {
            mbuf: m,
            iface: rx,
            as_received: true,
        },
    );
}

/// A frame back to the sender of `received` (its source MAC), from `src`, with room for
/// `len` bytes of payload.
fn frame_to(received: &[u8], src: &[u8; 6], ethertype: [u8; 2], len: usize) -> Vec<u8> {
    new_frame(&received[6..12], src, ethertype, len)
}

/// The IPv4 or IPv6 destination of a routed frame.
fn destination(frame: &[u8]) -> Option<IpAddr> {
    let ip = frame.get(ETH..)?;
    match frame.get(12..14)? {
        t if t == ETHERTYPE_IPV4 => Ipv4Packet::new_checked(ip).ok().map(|p| p.dst().into()),
        t if t == ETHERTYPE_IPV6 => Ipv6Packet::new_checked(ip).ok().map(|p| p.dst().into()),
        _ => None,
    }
}

impl PuntHandler for RouterPunts {
    fn handle(&mut self, sp: &SlowPath, worker: usize, p: Punted) {
        let rx = p.iface;
        match p.reason {
            PuntReason::Arp => self.arp(sp, worker, rx, p.mbuf.data()),
            PuntReason::Resolve => self.resolve(sp, worker, rx, p.mbuf),
            PuntReason::Local => self.local(sp, worker, rx, p.mbuf.data()),
            PuntReason::TtlExceeded => {
                self.icmp_error(sp, worker, rx, p.mbuf.data(), IcmpError::TimeExceeded)
            }
            PuntReason::FragNeeded => {
                let frame = p.mbuf.data();
                let mtu = destination(frame)
                    .and_then(|dst| {
                        let r = self.router();
                        let vrf = r.iface(rx)?.vrf;
                        r.egress_mtu(vrf, dst)
                    })
                    .unwrap_or(if frame.get(12..14) == Some(&ETHERTYPE_IPV6) {
                        1280
                    } else {
                        576
                    });
                self.icmp_error(sp, worker, rx, frame, IcmpError::TooBig(mtu));
            }
            PuntReason::NoBackend => {
                self.icmp_error(sp, worker, rx, p.mbuf.data(), IcmpError::PortUnreachable)
            }
            PuntReason::Test => {}
        }
    }

    fn tick(&mut self, sp: &SlowPath) {
        if self.last_tick.elapsed() < Duration::from_millis(50) {
            return;
        }
        self.last_tick = Instant::now();
        if !self.pending.is_empty() {
            self.expire(sp);
        }
        if self.last_age.elapsed() >= Duration::from_secs(1) {
            self.last_age = Instant::now();
            let (probe, _) = self.router().age(self.last_age);
            for (iface, ip, mac) in probe {
                self.probe(sp, iface, ip, mac);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Limits, Model};
    use vswitch_proto::v1 as pb;
    use vswitch_proto::v1::change::Change as C;

    const A: IfIndex = 1;
    const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const MAC_HOST: [u8; 6] = [2, 0, 0, 0, 0, 7];

    /// A router with interface `a` (10.0.0.1/24, index [`A`]).
    fn router() -> Router {
        let changes: Vec<pb::Change> = vec![
            C::AddInterface(pb::AddInterfaceRequest {
                name: "a".into(),
                r#type: "null".into(),
                ..Default::default()
            }),
            C::AddAddress(pb::AddAddressRequest {
                iface: "a".into(),
                address: "10.0.0.1/24".into(),
            }),
        ]
        .into_iter()
        .map(|c| pb::Change { change: Some(c) })
        .collect();
        let limits = Limits {
            run_dir: std::env::temp_dir(),
            fdb_capacity: 64,
        };
        let s = Model::new().stage(&changes, &limits).unwrap();
        let mut r = Router::new().unwrap();
        assert!(r.apply(&s.diff.l3, |n| (n == "a").then_some(A)).is_empty());
        r.set_ifaces(HashMap::from([(
            A,
            IfaceInfo {
                vrf: 0,
                mac: MAC_A,
                mtu: 1500,
                v4: vec![(Ipv4Addr::new(10, 0, 0, 1), 24)],
                v6: vec![],
                proxy_arp: false,
                l3_tunnel: false,
            },
        )]));
        r
    }

    /// A UDP packet from 10.0.0.9 to 10.0.0.7 (IP ident `id`) as received on `a`.
    fn to_host(id: u8) -> Vec<u8> {
        let mut f = new_frame(&MAC_A, &[2, 0, 0, 0, 0, 9], ETHERTYPE_IPV4, 28);
        f[ETH..ETH + 12].copy_from_slice(&[0x45, 0, 0, 28, 0, id, 0, 0, 64, 17, 0, 0]);
        f[ETH + 12..ETH + 20].copy_from_slice(&[10, 0, 0, 9, 10, 0, 0, 7]);
        f
    }

    /// 10.0.0.7's ARP reply to the router.
    fn arp_reply() -> Vec<u8> {
        let mut f = new_frame(&MAC_A, &MAC_HOST, ETHERTYPE_ARP, 28);
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 2];
        a.extend_from_slice(&MAC_HOST);
        a.extend_from_slice(&[10, 0, 0, 7]);
        a.extend_from_slice(&MAC_A);
        a.extend_from_slice(&[10, 0, 0, 1]);
        f[ETH..].copy_from_slice(&a);
        f
    }

    fn punt(pool: &Mempool, frame: &[u8], reason: PuntReason) -> Punted {
        Punted {
            mbuf: Mbuf::from_bytes(pool, frame).unwrap(),
            iface: A,
            reason,
        }
    }

    /// What worker `w` was handed: (interface, as received, frame).
    fn drained(sp: &SlowPath, w: usize) -> Vec<(u16, bool, Vec<u8>)> {
        let mut got = Vec::new();
        sp.drain_injected(w, 16, |i| {
            got.push((i.iface, i.as_received, i.mbuf.data().to_vec()))
        });
        got
    }

    /// A packet punted for a next hop whose answer the slow path took first (it came
    /// through another worker's ring) goes round once more instead of being lost; the same
    /// frame punted again at once is dropped (no loop), and nothing leaks.
    #[test]
    fn a_packet_punted_after_its_neighbour_was_learned_goes_round_once() {
        let Some(pool) = dpdk::test_eal::try_pool("rp_late", 64) else {
            return;
        };
        let base = pool.in_use();
        let sp = SlowPath::new(2, 16, 16);
        let mut h = RouterPunts::new(Arc::new(Mutex::new(router())), pool.clone());

        // The first packet waits while 10.0.0.7 is asked for.
        h.handle(&sp, 0, punt(&pool, &to_host(1), PuntReason::Resolve));
        let asked = drained(&sp, 0);
        assert_eq!(asked.len(), 1);
        assert_eq!((asked[0].0, asked[0].1), (A, false));
        assert_eq!(&asked[0].2[12..14], &ETHERTYPE_ARP);

        // The answer (worker 1) releases it through the worker that punted it.
        h.handle(&sp, 1, punt(&pool, &arp_reply(), PuntReason::Arp));
        assert_eq!(drained(&sp, 0), [(A, true, to_host(1))]);

        // Worker 1 punted a second packet before it saw the answer; the slow path reads
        // it after: it goes round again, once.
        h.handle(&sp, 1, punt(&pool, &to_host(2), PuntReason::Resolve));
        assert_eq!(drained(&sp, 1), [(A, true, to_host(2))]);
        h.handle(&sp, 1, punt(&pool, &to_host(2), PuntReason::Resolve));
        assert!(drained(&sp, 1).is_empty());
        // Another frame still gets its round.
        h.handle(&sp, 1, punt(&pool, &to_host(3), PuntReason::Resolve));
        assert_eq!(drained(&sp, 1), [(A, true, to_host(3))]);
        assert_eq!(pool.in_use(), base);
    }
}
