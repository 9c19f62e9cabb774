//! The router's slow path (IPv4): what workers punt from routed interfaces.
//!
//! - `arp`: requests for the interface's addresses (or any address, with proxy-ARP on) are
//!   answered with the interface's MAC; the sender of every request and reply on one of
//!   the interface's subnets is learned (gratuitous ARP included), which resolves the
//!   gateways and host routes through it at once and releases the packets waiting for it.
//! - `resolve`: a packet whose next hop has no MAC yet waits (at most [`QUEUE`] per
//!   neighbour) while ARP requests go out, one a second, [`TRIES`] times; then the waiting
//!   packets are dropped and their senders get ICMP host unreachable.
//! - `local`: ICMP echo requests to the router's addresses are answered; the rest dropped.
//! - `ttl_exceeded`, `frag_needed`: ICMP time exceeded, fragmentation needed (with the
//!   output interface's MTU).
//!
//! Replies leave through the interface the packet came in on, to the MAC it came from.
//! ICMP errors are rate-limited ([`ICMP_RATE`] a second, bursts of [`ICMP_BURST`]).
//! IPv6 (ND, ICMPv6) comes with IPv6 forwarding.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dpdk::{Mbuf, Mempool};
use vswitch_dataplane::slowpath::{Injected, PuntReason, Punted, SlowPath};
use vswitch_dataplane::wire::arp::{self, ArpPacket, Operation};
use vswitch_dataplane::wire::icmp::{
    emit_icmpv4_error, may_send_icmpv4_error, v4_type, v4_unreachable, Icmpv4Error, Icmpv4Packet,
    TIME_EXCEEDED_IN_TRANSIT,
};
use vswitch_dataplane::wire::ipv4::{Ipv4Packet, PROTO_ICMP};
use vswitch_dataplane::IfIndex;

use crate::router::Router;
use crate::slowpath::PuntHandler;

/// Packets that wait for one neighbour.
pub const QUEUE: usize = 4;
/// ARP requests for a neighbour before it is given up.
pub const TRIES: u32 = 3;
const RETRY: Duration = Duration::from_secs(1);
/// ICMP errors a second, and the burst allowed.
pub const ICMP_RATE: f64 = 1000.0;
pub const ICMP_BURST: f64 = 100.0;
const ETH: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];

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
    pending: HashMap<(IfIndex, Ipv4Addr), Pending>,
    tokens: f64,
    refilled: Instant,
    ident: u16,
    last_tick: Instant,
    last_age: Instant,
}

impl RouterPunts {
    pub fn new(router: Arc<Mutex<Router>>, pool: Arc<Mempool>) -> RouterPunts {
        RouterPunts {
            router,
            pool,
            pending: HashMap::new(),
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

    /// Sends an ICMP `error` about `frame` (received on `rx`) back where it came from.
    fn icmp_error(
        &mut self,
        sp: &SlowPath,
        worker: usize,
        rx: IfIndex,
        frame: &[u8],
        error: Icmpv4Error,
    ) {
        let Some(ip) = frame.get(ETH..) else { return };
        let Ok(p) = Ipv4Packet::new_checked(ip) else {
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
        self.ident = self.ident.wrapping_add(1);
        let mut out = vec![0u8; ETH + 576];
        let Some(n) = emit_icmpv4_error(&mut out[ETH..], error, src, self.ident, &p) else {
            return;
        };
        out.truncate(ETH + n);
        out[0..6].copy_from_slice(&frame[6..12]);
        out[6..12].copy_from_slice(&mac);
        out[12..14].copy_from_slice(&ETHERTYPE_IPV4);
        self.send(sp, worker, rx, &out);
    }

    fn arp(&mut self, sp: &SlowPath, worker: usize, rx: IfIndex, frame: &[u8]) {
        let Some(Ok(a)) = frame.get(ETH..).map(ArpPacket::new_checked) else {
            return;
        };
        let (sender, target) = (a.sender_ip(), a.target_ip());
        let info = self.router().iface(rx).cloned();
        let Some(info) = info else { return };
        // Learn the sender (a reply, a request, a gratuitous announcement).
        if !sender.is_unspecified() && !info.v4.iter().any(|&(x, _)| x == sender) {
            self.router().learn(rx, IpAddr::V4(sender), a.sender_mac());
            self.release(sp, rx, sender);
        }
        if a.op() != Operation::Request || a.is_gratuitous() || sender == target {
            return;
        }
        let ours = info.v4.iter().any(|&(x, _)| x == target);
        if !ours && !info.proxy_arp {
            return;
        }
        let mut out = vec![0u8; ETH + arp::PACKET_LEN];
        out[0..6].copy_from_slice(&a.sender_mac());
        out[6..12].copy_from_slice(&info.mac);
        out[12..14].copy_from_slice(&ETHERTYPE_ARP);
        if arp::emit_reply(&mut out[ETH..], &a, info.mac).is_some() {
            self.send(sp, worker, rx, &out);
        }
    }

    /// The packets waiting for `ip` on `iface` go through the graph again (as received on
    /// their input interfaces): their next hop is resolved now.
    fn release(&mut self, sp: &SlowPath, iface: IfIndex, ip: Ipv4Addr) {
        if let Some(p) = self.pending.remove(&(iface, ip)) {
            for (worker, m, rx) in p.packets {
                let _ = sp.inject(
                    worker,
                    Injected {
                        mbuf: m,
                        iface: rx,
                        as_received: true,
                    },
                );
            }
        }
    }

    /// Sends an ARP request for `ip` out of `iface`, from the interface's address in that
    /// subnet, else one of the router's in the VRF, else 0.0.0.0 (an interface without
    /// addresses, such as a Calico-style pod link; hosts answer such probes).
    fn request(&self, sp: &SlowPath, worker: usize, iface: IfIndex, ip: Ipv4Addr) {
        let Some((mac, src)) = ({
            let r = self.router();
            r.iface(iface).map(|i| {
                let src = i
                    .source_for(ip)
                    .or_else(|| r.any_v4(i.vrf))
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                (i.mac, src)
            })
        }) else {
            return;
        };
        let mut out = vec![0u8; 60];
        out[0..6].copy_from_slice(&[0xff; 6]);
        out[6..12].copy_from_slice(&mac);
        out[12..14].copy_from_slice(&ETHERTYPE_ARP);
        if arp::emit_request(&mut out[ETH..], mac, src, ip).is_some() {
            self.send(sp, worker, iface, &out);
        }
    }

    fn resolve(&mut self, sp: &SlowPath, worker: usize, rx: IfIndex, m: Mbuf) {
        let dst = match m.data().get(ETH..).map(Ipv4Packet::new_checked) {
            Some(Ok(p)) => p.dst(),
            _ => return,
        };
        let wanted = {
            let r = self.router();
            let Some(vrf) = r.iface(rx).map(|i| i.vrf) else {
                return;
            };
            r.unresolved(vrf, IpAddr::V4(dst))
        };
        let Some(&(iface, IpAddr::V4(first))) = wanted.first() else {
            // Nothing to resolve (resolved meanwhile, or a route changed): dropped, never
            // sent round again (a next hop still saying Resolve would loop it).
            return;
        };
        let now = Instant::now();
        for &(i, ip) in &wanted {
            let IpAddr::V4(ip) = ip else { continue };
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
        if let Some(p) = self.pending.get_mut(&(iface, first)) {
            if p.packets.len() < QUEUE {
                p.packets.push((worker, m, rx));
            }
        }
    }

    fn local(&mut self, sp: &SlowPath, worker: usize, rx: IfIndex, frame: &[u8]) {
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
        let mac = {
            let r = self.router();
            match r.iface(rx) {
                Some(i) => i.mac,
                None => return,
            }
        };
        // The reply: the request with addresses swapped, type 0, checksums recomputed.
        let hl = p.header_len();
        let total = usize::from(p.total_len());
        let mut out = frame[..ETH + total].to_vec();
        out[0..6].copy_from_slice(&frame[6..12]);
        out[6..12].copy_from_slice(&mac);
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

    /// Gives up on neighbours asked [`TRIES`] times without an answer: their packets are
    /// dropped, with ICMP host unreachable to their senders.
    fn expire(&mut self, sp: &SlowPath) {
        let now = Instant::now();
        let dead: Vec<(IfIndex, Ipv4Addr)> = self
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
                    self.icmp_error(
                        sp,
                        worker,
                        rx,
                        &frame,
                        Icmpv4Error::Unreachable(v4_unreachable::HOST),
                    );
                }
            }
        }
        // Retries for the ones still waiting (through the worker of their first packet).
        let due: Vec<(IfIndex, Ipv4Addr, usize)> = self
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

impl PuntHandler for RouterPunts {
    fn handle(&mut self, sp: &SlowPath, worker: usize, p: Punted) {
        let rx = p.iface;
        match p.reason {
            PuntReason::Arp => self.arp(sp, worker, rx, p.mbuf.data()),
            PuntReason::Resolve => self.resolve(sp, worker, rx, p.mbuf),
            PuntReason::Local => self.local(sp, worker, rx, p.mbuf.data()),
            PuntReason::TtlExceeded => self.icmp_error(
                sp,
                worker,
                rx,
                p.mbuf.data(),
                Icmpv4Error::TimeExceeded(TIME_EXCEEDED_IN_TRANSIT),
            ),
            PuntReason::FragNeeded => {
                let frame = p.mbuf.data();
                let mtu = frame
                    .get(ETH..)
                    .and_then(|b| Ipv4Packet::new_checked(b).ok())
                    .and_then(|ip| {
                        let r = self.router();
                        let vrf = r.iface(rx)?.vrf;
                        r.egress_mtu(vrf, IpAddr::V4(ip.dst()))
                    })
                    .unwrap_or(576);
                self.icmp_error(sp, worker, rx, frame, Icmpv4Error::FragNeeded { mtu });
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
            self.router().age(self.last_age);
        }
    }
}
