//! nat-translate: the per-packet part of NAT, run by ip4-forward and ip6-forward on each
//! packet of their vector before it is checked and looked up (the plan has NAT).
//!
//! A packet of a NAT session (its flow finds an entry of the session table, its way) is
//! rewritten to the entry's flow. An ICMP error about a session's packet finds the session
//! by the packet it quotes; the quote, and the error's own destination (and source, when
//! the quoted packet's destination sent it), are rewritten back. Any other packet of TCP,
//! UDP or an ICMP echo request is a new flow:
//!
//! 1. destination NAT: to a service's VIP and port, a NodePort on one of the router's own
//!    addresses (the FIB says `local`), or a port mapping's address and port. A service
//!    picks a backend by its Maglev table (the flow's hash, or with client-IP affinity the
//!    client's address); one with no backend taking new flows sends the packet to the slow
//!    path (`no_backend`: ICMP port unreachable, so clients fail fast). Hairpin: a client
//!    sent to itself is also source-translated to the service's address (with a port of
//!    its own), or it would drop its own address as a source;
//! 2. source NAT: the FIB's output interface for the (translated) destination masquerades:
//!    the source becomes that interface's address and a port of this worker's own.
//!
//! A translated new flow creates its NAT session (both entries) before it is rewritten; a
//! flow with nothing to translate gets no session, unless it came in through a
//! masquerading interface: then one untranslated entry (found both ways) keeps its replies
//! from being masqueraded on their way out. Ports (and echo identifiers) are
//! allocated without locks between workers: worker `w` of `n` takes only ports `p` with
//! `(p - 1024) % n == w` in 1024..=65535, starting from a hash of the flow's source
//! address and port (so one source endpoint gets the same port toward every destination
//! while it is free: endpoint-independent mapping, RFC 4787 §4.1), then stepping on while
//! the reply's flow is taken. Later fragments (no ports) are not translated.
//!
//! Checksums are updated incrementally (RFC 1624): the IPv4 header's; TCP's, UDP's and
//! ICMPv6's for the pseudo-header's addresses; TCP's, UDP's and ICMP's for ports and
//! identifiers. A UDP over IPv4 checksum of zero (none) stays zero. A frame whose L4
//! checksum is partial (offloaded: the field holds the pseudo-header sum, [`Csum`]) gets
//! the pseudo-header's change only. An ICMP error's checksum is computed again (its quote
//! changes in several places).
//!
//! Reads: `meta.rx_if`, `meta.csum`; the plan's NAT part, the input interface's VRF, its
//! FIB and next hops (new flows only); the session table. Writes: the packet's addresses,
//! ports, checksums; sessions (created, stamped). Drops: `session_limit` (a new flow the
//! table has no room for, or no free port). Punts: `no_backend`.

use std::net::IpAddr;

use super::{addr_bits, NatPlan, NAT_KEY};
use crate::acl::rule::Family as Fam;
use crate::acl::session::{Flow, NatHit, Refused, Sessions, LOOKUP_AHEAD};
use crate::counters::DropReason;
use crate::graph::{Csum, Ctx, Meta};
use crate::l3::forward::{Check, Family, L3};
use crate::l3::nexthop::NextHop;
use crate::slowpath::PuntReason;
use crate::wire::checksum::{pseudo_header_v6, sum};

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// What kind of packet a NAT sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// TCP or UDP (ports at the L4 header's start).
    Ports,
    /// An ICMP / ICMPv6 echo request (`true`) or reply; the identifier stands in both ports.
    Echo(bool),
    /// An ICMP / ICMPv6 error, its quoted IP header at this offset of the frame.
    Error(usize),
}

/// A packet's flow and where its headers are.
#[derive(Debug, Clone, Copy)]
struct Pkt {
    fam: Fam,
    proto: u8,
    src: u128,
    dst: u128,
    sport: u16,
    dport: u16,
    /// Offsets in the frame of the IP header, the L4 header, and the IP packet's end.
    ip: usize,
    l4: usize,
    end: usize,
    tcp_flags: u8,
    kind: Kind,
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

#[inline(always)]
fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[inline(always)]
fn be128(b: &[u8], at: usize) -> Option<u128> {
    Some(u128::from_be_bytes(b.get(at..at + 16)?.try_into().ok()?))
}

/// An IP header at offset `ip` of `frame` (IPv6 when `v6`): family, protocol, source,
/// destination, the L4 header's offset, the packet's end as its header says, and whether
/// it is a later fragment (IPv4). None when the header itself is not there or not one.
#[allow(clippy::type_complexity)]
fn ip_header(
    frame: &[u8],
    ip: usize,
    v6: bool,
) -> Option<(Fam, u8, u128, u128, usize, usize, bool)> {
    if v6 {
        if frame.get(ip)? >> 4 != 6 {
            return None;
        }
        let end = ip + 40 + usize::from(be16(frame, ip + 4)?);
        Some((
            Fam::V6,
            *frame.get(ip + 6)?,
            be128(frame, ip + 8)?,
            be128(frame, ip + 24)?,
            ip + 40,
            end,
            false,
        ))
    } else {
        let b0 = *frame.get(ip)?;
        let hl = usize::from(b0 & 0x0f) * 4;
        if b0 >> 4 != 4 || hl < 20 || ip + hl > frame.len() {
            return None;
        }
        let total = usize::from(be16(frame, ip + 2)?);
        Some((
            Fam::V4,
            *frame.get(ip + 9)?,
            u128::from(be32(frame, ip + 12)?),
            u128::from(be32(frame, ip + 16)?),
            ip + hl,
            ip + total.max(hl),
            be16(frame, ip + 6)? & 0x1fff != 0,
        ))
    }
}

/// Reads the IP packet at offset `ip` of `frame` (IPv6 when `v6`) as NAT sees it: None for
/// what NAT leaves alone (truncated or inconsistent headers, which the forwarding checks
/// then drop; later fragments; protocols without ports; IPv6 extension headers; ICMP
/// other than echoes and errors).
#[cfg(test)]
fn parse(frame: &[u8], ip: usize, v6: bool) -> Option<Pkt> {
    let mut p = Pkt::EMPTY;
    parse_into(frame, ip, v6, &mut p).map(|()| p)
}

/// Reads the packet as `parse` (above) says, into `out` (left as it was when None).
/// The fast path parses a vector's packets straight into its scratch array: a `Pkt`
/// returned and copied stalls store forwarding (written narrow, read back wide).
#[inline(always)]
fn parse_into(frame: &[u8], ip: usize, v6: bool, out: &mut Pkt) -> Option<()> {
    let (fam, proto, src, dst, l4, end, later) = ip_header(frame, ip, v6)?;
    if later || (!v6 && usize::from(be16(frame, ip + 2)?) < l4 - ip) {
        return None;
    }
    if end > frame.len() {
        return None;
    }
    let l4b = frame.get(l4..end)?;
    let (sport, dport, tcp_flags, kind) = match proto {
        TCP if l4b.len() >= 20 => (be16(l4b, 0)?, be16(l4b, 2)?, l4b[13], Kind::Ports),
        UDP if l4b.len() >= 8 => (be16(l4b, 0)?, be16(l4b, 2)?, 0, Kind::Ports),
        ICMP | ICMPV6 if (proto == ICMP) != v6 && l4b.len() >= 8 => {
            let t = l4b[0];
            let (request, reply, errors): (u8, u8, &[u8]) = if v6 {
                (128, 129, &[1, 2, 3, 4])
            } else {
                (8, 0, &[3, 4, 5, 11, 12])
            };
            if t == request || t == reply {
                let id = be16(l4b, 4)?;
                (id, id, 0, Kind::Echo(t == request))
            } else if errors.contains(&t) {
                (0, 0, 0, Kind::Error(l4 + 8))
            } else {
                return None;
            }
        }
        _ => return None,
    };
    *out = Pkt {
        fam,
        proto,
        src,
        dst,
        sport,
        dport,
        ip,
        l4,
        end,
        tcp_flags,
        kind,
    };
    Some(())
}

impl Pkt {
    /// A placeholder (a scratch array's free place).
    const EMPTY: Pkt = Pkt {
        fam: Fam::V4,
        proto: 0,
        src: 0,
        dst: 0,
        sport: 0,
        dport: 0,
        ip: 0,
        l4: 0,
        end: 0,
        tcp_flags: 0,
        kind: Kind::Ports,
    };

    fn flow(&self, vrf: u16) -> Flow {
        Flow {
            iface: NAT_KEY + (vrf & 0x7fff),
            family: self.fam,
            proto: self.proto,
            src: self.src,
            dst: self.dst,
            sport: self.sport,
            dport: self.dport,
        }
    }
}

/// A vector's packets as NAT parsed them: each its packet, and its VRF and its flow's hash
/// (None: nothing NAT looks at). Kept in the graph, room for a whole vector
/// ([`Scratch::with_room`]); the default is empty and allocates nothing, so that taking it
/// out of the graph for a vector costs nothing (taking it used to allocate and zero a new
/// one per vector, measured: about 6% of nat-snat's cycles).
#[derive(Default)]
pub(crate) struct Scratch {
    pkts: Vec<Pkt>,
    at: Vec<Option<(u16, u64)>>,
}

impl Scratch {
    /// Room for a whole vector, made once when the worker starts.
    pub(crate) fn with_room() -> Scratch {
        Scratch {
            pkts: vec![Pkt::EMPTY; dpdk::MAX_BURST],
            at: vec![None; dpdk::MAX_BURST],
        }
    }
}

/// Translates every packet of vector `v` NAT applies to, and pushes onto `checks` each
/// packet's check: forwarding's (on the translated packet), or a drop or punt of NAT's. In
/// two passes, so that the vector's session-table misses overlap: parse and prefetch each
/// flow's bucket; then look up and translate, each packet's entries (those its bucket's
/// matching tags name) prefetched [`LOOKUP_AHEAD`] packets before.
pub(crate) fn vector<F: Family>(
    ctx: &Ctx,
    nat: &NatPlan,
    t: &Sessions,
    v: &mut crate::graph::Vector,
    checks: &mut Vec<Check<F::Addr>>,
    scratch: &mut Scratch,
) {
    let n = v.len();
    if scratch.pkts.len() < n {
        scratch.pkts.resize(n, Pkt::EMPTY);
        scratch.at.resize(n, None);
    }
    let (pkts, at) = (&mut scratch.pkts[..n], &mut scratch.at[..n]);
    for i in 0..n {
        let rx_if = v.meta[i].rx_if;
        let vrf = ctx.plan.iface(rx_if).and_then(|p| p.l3).map(|l3| l3.vrf);
        at[i] = vrf.and_then(|vrf| {
            let p = &mut pkts[i];
            parse_into(v.pkts.data(i), L3, F::V6, p)?;
            // An ICMP error is found by its quote, later (cold).
            let h = if let Kind::Error(_) = p.kind {
                0
            } else {
                t.prefetch_bucket(&p.flow(vrf))
            };
            Some((vrf, h))
        });
    }
    // The entries a bucket names are asked for LOOKUP_AHEAD packets ahead of their lookup.
    for k in 0..n + LOOKUP_AHEAD {
        if let Some((_, h)) = at.get(k).copied().flatten() {
            t.prefetch_nat_slots(h);
        }
        let Some(i) = k.checked_sub(LOOKUP_AHEAD) else {
            continue;
        };
        let meta = v.meta[i];
        let frame = v.pkts.data_mut(i);
        let nat_check = match at[i] {
            Some((vrf, h)) => packet::<F>(ctx, nat, t, frame, &meta, &pkts[i], vrf, h),
            None => None,
        };
        checks.push(match (nat_check, v.pkts.data(i).get(L3..)) {
            (Some(c), _) => c,
            (None, Some(ip)) => F::check(ip),
            (None, None) => Check::Drop(DropReason::BadHeader),
        });
    }
}

/// Translates packet `p` (its flow in `vrf` hashing to `h`) in `frame`, received on
/// `meta.rx_if`, if NAT applies to it: None to go on with forwarding (rewritten or not),
/// or the check that replaces forwarding's (a drop, a punt).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn packet<F: Family>(
    ctx: &Ctx,
    nat: &NatPlan,
    t: &Sessions,
    frame: &mut [u8],
    meta: &Meta,
    p: &Pkt,
    vrf: u16,
    h: u64,
) -> Option<Check<F::Addr>> {
    if let Kind::Error(inner) = p.kind {
        translate_error(t, frame, p, inner, vrf);
        return None;
    }
    let orig = p.flow(vrf);
    if let Some(hit) = t.lookup_nat_hashed(&orig, h) {
        t.touch_nat(&hit, p.tcp_flags);
        if F::V6 {
            rewrite_as::<true>(frame, p, &hit.to, meta.csum);
        } else {
            rewrite_as::<false>(frame, p, &hit.to, meta.csum);
        }
        return None;
    }
    if p.kind == Kind::Echo(false) {
        return None;
    }
    match new_flow::<F>(ctx, nat, t, p, &orig, vrf, meta.rx_if) {
        Ok(Some(hit)) => {
            rewrite(frame, p, &hit.to, meta.csum);
            None
        }
        Ok(None) => None,
        Err(c) => Some(c),
    }
}

/// The output interface of `dst`'s route in `vrf`, or None for the router's own
/// addresses and where there is none: Some(None) for local.
fn route<F: Family>(ctx: &Ctx, vrf: u16, dst: u128, hash: u32) -> Option<Option<u16>> {
    let fib = F::fib(ctx.plan.vrf(vrf)?);
    let id = F::lookup(fib, F::addr(dst))?;
    let nhs = ctx.plan.l3.nexthops.as_deref()?;
    match nhs.resolve(id, hash) {
        NextHop::Forward { iface, .. }
        | NextHop::Resolve { iface }
        | NextHop::Tunnel { iface, .. } => Some(Some(iface)),
        NextHop::Local => Some(None),
        _ => None,
    }
}

/// A flow's hash (both ends, protocol), for backend choice and port allocation starts.
#[inline(always)]
fn mix(words: &[u64]) -> u64 {
    let mut h = 0x243f_6a88_85a3_08d3u64;
    for &w in words {
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
    h ^ (h >> 32)
}

/// The NAT session of new flow `orig` (packet `p`), if anything translates it; Err for a
/// packet that goes no further (the check to record).
#[inline(never)]
fn new_flow<F: Family>(
    ctx: &Ctx,
    nat: &NatPlan,
    t: &Sessions,
    p: &Pkt,
    orig: &Flow,
    vrf: u16,
    rx_if: u16,
) -> Result<Option<NatHit>, Check<F::Addr>> {
    let mut to = *orig;
    let hash = mix(&[
        orig.src as u64,
        (orig.src >> 64) as u64,
        orig.dst as u64,
        (orig.dst >> 64) as u64,
        u64::from(orig.sport) << 16 | u64::from(orig.dport) | u64::from(orig.proto) << 32,
    ]);
    let mut hairpin = false;
    if p.kind == Kind::Ports {
        let svc = nat.service(vrf, p.proto, p.dst, p.dport).or_else(|| {
            nat.nodeport(vrf, p.proto, p.dport)
                .filter(|_| route::<F>(ctx, vrf, p.dst, hash as u32) == Some(None))
        });
        if let Some(s) = svc {
            let h = if s.spec.affinity {
                mix(&[orig.src as u64, (orig.src >> 64) as u64])
            } else {
                hash
            };
            let Some((i, b)) = s.pick(h) else {
                return Err(Check::Punt(PuntReason::NoBackend));
            };
            s.count_flow(ctx.worker, i);
            to.dst = addr_bits(b.ip);
            to.dport = b.port;
            hairpin = to.dst == orig.src;
        } else if let Some((a, port)) = nat.portmap(vrf, p.proto, p.dst, p.dport) {
            to.dst = a;
            to.dport = port;
            hairpin = to.dst == orig.src;
        }
    }
    let mut alloc = false;
    if hairpin {
        // The client reaches itself: from the address it sent to, so that its replies
        // come back here.
        to.src = orig.dst;
        alloc = true;
    } else if let Some(Some(out)) = route::<F>(ctx, vrf, to.dst, hash as u32) {
        if let Some(m) = nat.masquerade(out) {
            let a = match p.fam {
                Fam::V4 => m.v4.map(IpAddr::V4),
                Fam::V6 => m.v6.map(IpAddr::V6),
            };
            if let Some(a) = a.map(addr_bits).filter(|&a| a != orig.src) {
                to.src = a;
                alloc = true;
            }
        }
    }
    if to == *orig {
        // A flow that came in through a masquerading interface (from outside, to an
        // address routed inside) is remembered untranslated, so that its replies, which
        // leave through that interface, are not masqueraded (conntrack's NEW-only NAT).
        if p.kind != Kind::Echo(false) && nat.masquerade(rx_if).is_some() {
            return match t.create_nat_untranslated(ctx.worker, orig, p.tcp_flags) {
                Ok(_) => Ok(None),
                Err(_) => Err(Check::Drop(DropReason::SessionLimit)),
            };
        }
        return Ok(None);
    }
    let workers = ctx.plan.workers.len().max(1);
    let w = ctx.worker % workers;
    let stripe = (65536 - 1024) / workers;
    let start = mix(&[
        orig.src as u64,
        (orig.src >> 64) as u64,
        u64::from(orig.sport),
    ]);
    let tries = if alloc { 16 } else { 1 };
    for k in 0..tries {
        if alloc {
            let i = (start.wrapping_add(k * 40_503) % stripe as u64) as usize;
            let port = (1024 + i * workers + w) as u16;
            to.sport = port;
            if p.kind == Kind::Echo(true) {
                // The identifier is both "ports" of an echo's flow.
                to.dport = port;
            }
        }
        match t.create_nat(ctx.worker, orig, &to, p.tcp_flags) {
            Ok(hit) => return Ok(Some(hit)),
            Err(Refused::Full) if alloc => continue,
            Err(_) => break,
        }
    }
    Err(Check::Drop(DropReason::SessionLimit))
}

/// Where the IP addresses are for `fam`, from the IP header's start: (src, dst, length).
#[inline(always)]
fn addr_at(fam: Fam) -> (usize, usize, usize) {
    match fam {
        Fam::V4 => (12, 16, 4),
        Fam::V6 => (8, 24, 16),
    }
}

/// The bytes of address `a` of family `fam` (the first 4 of the array for IPv4).
#[inline(always)]
fn bytes_of(fam: Fam, a: u128) -> [u8; 16] {
    match fam {
        Fam::V4 => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&(a as u32).to_be_bytes());
            b
        }
        Fam::V6 => a.to_be_bytes(),
    }
}

/// Rewrites packet `p` of `frame` to flow `to` (addresses, ports or echo identifier),
/// checksums updated.
fn rewrite(frame: &mut [u8], p: &Pkt, to: &Flow, csum: Csum) {
    match p.fam {
        Fam::V4 => rewrite_as::<false>(frame, p, to, csum),
        Fam::V6 => rewrite_as::<true>(frame, p, to, csum),
    }
}

/// [`rewrite`] of a packet of family `V6` (as `p.fam` says), inline in the fast path,
/// where the family is known when it is compiled: the address arithmetic of the other
/// family folds away (the generic body took about 8% of nat-snat's cycles, out of line).
#[inline(always)]
fn rewrite_as<const V6: bool>(frame: &mut [u8], p: &Pkt, to: &Flow, csum: Csum) {
    let fam = if V6 { Fam::V6 } else { Fam::V4 };
    debug_assert!(p.fam == fam);
    let (sa, da, alen) = addr_at(fam);
    let ip = p.ip;
    let (l4, proto) = (p.l4, p.proto);
    // The L4 checksum field, and whether it covers the pseudo-header.
    let (field, pseudo) = match proto {
        TCP => (Some(l4 + 16), true),
        UDP if fam == Fam::V4 && be16(frame, l4 + 6) == Some(0) => (None, true),
        UDP => (Some(l4 + 6), true),
        ICMP => (Some(l4 + 2), false),
        _ => (Some(l4 + 2), true),
    };
    let partial = matches!(
        (csum, proto),
        (Csum::PartialTcp, TCP) | (Csum::PartialUdp, UDP)
    );
    // The changes, as ones' complement sums to add (RFC 1624 eqn. 3: ~m + m' per word):
    // the addresses' (IPv4 header, pseudo-header) and the ports' (L4 header only).
    let mut d_addr = 0u32;
    for (at, old, new) in [(sa, p.src, to.src), (da, p.dst, to.dst)] {
        if old != new {
            d_addr += change(fam, old, new);
            frame[ip + at..ip + at + alen].copy_from_slice(&bytes_of(fam, new)[..alen]);
        }
    }
    let ports: &[(usize, u16, u16)] = match p.kind {
        Kind::Ports => &[(l4, p.sport, to.sport), (l4 + 2, p.dport, to.dport)],
        Kind::Echo(true) => &[(l4 + 4, p.sport, to.sport)],
        Kind::Echo(false) => &[(l4 + 4, p.dport, to.dport)],
        Kind::Error(_) => &[],
    };
    let mut d_ports = 0u32;
    for &(at, old, new) in ports {
        if old != new {
            d_ports += u32::from(!old) + u32::from(new);
            frame[at..at + 2].copy_from_slice(&new.to_be_bytes());
        }
    }
    if d_addr != 0 && fam == Fam::V4 {
        adjust(frame, ip + 10, d_addr, false);
    }
    if let Some(f) = field {
        let d = if pseudo { d_addr } else { 0 };
        if partial {
            // The field holds the pseudo-header sum; the ports are summed when the
            // checksum is completed.
            adjust(frame, f, d, true);
        } else if d + d_ports != 0 {
            adjust(frame, f, d + d_ports, false);
            if proto == UDP && be16(frame, f) == Some(0) {
                // RFC 768: a computed zero is sent as all ones.
                frame[f..f + 2].copy_from_slice(&[0xff, 0xff]);
            }
        }
    }
}

/// The ones' complement sum of `~old + new` over an address's 16-bit words.
#[inline(always)]
fn change(fam: Fam, old: u128, new: u128) -> u32 {
    let words =
        |a: u128, n: u32| -> u32 { (0..n).map(|i| ((a >> (16 * i)) & 0xffff) as u32).sum() };
    let n = match fam {
        Fam::V4 => 2,
        Fam::V6 => 8,
    };
    n * 0xffff - words(old, n) + words(new, n)
}

/// Adds `d` (a sum of changes, [`change`]) to the checksum at `at`: to its complement for
/// a checksum, to it for a `partial` one (a pseudo-header sum).
#[inline(always)]
fn adjust(frame: &mut [u8], at: usize, d: u32, partial: bool) {
    let Some(c) = be16(frame, at) else {
        return;
    };
    let n = if partial {
        sum(&[], u32::from(c) + d)
    } else {
        !sum(&[], u32::from(!c) + d)
    };
    frame[at..at + 2].copy_from_slice(&n.to_be_bytes());
}

/// Translates an ICMP error (packet `p`, its quote at `inner`) about a NAT session's
/// packet: the quote back to the packet as its sender sent it, the error's destination to
/// that sender, its source too when the quoted packet's destination sent the error; the
/// ICMP checksum computed again. Errors about no session are left alone.
#[cold]
fn translate_error(t: &Sessions, frame: &mut [u8], p: &Pkt, inner: usize, vrf: u16) {
    let v6 = p.fam == Fam::V6;
    // The error's bytes as its IP header counts them (padding after it is not its).
    let Some(msg) = frame.get_mut(..p.end) else {
        return;
    };
    // The quote: its IP header and at least the first 8 bytes of its L4 header.
    let Some(q) = parse_quote(msg, inner, v6) else {
        return;
    };
    // A reply to the quoted packet would be rewritten to `to`: the quote, reversed, is
    // that reply's reverse. The quote becomes `to` reversed (its checksums adjusted as far
    // as it holds them).
    let Some(hit) = t.lookup_nat(&q.flow(vrf).reversed()) else {
        return;
    };
    let qto = hit.to.reversed();
    rewrite(msg, &q, &qto, Csum::Unknown);
    // The error itself: to the quoted packet's (translated) sender; from the quoted
    // destination's translation when that host sent it.
    let new_dst = qto.src;
    let new_src = if p.src == q.dst { qto.dst } else { p.src };
    let (sa, da, alen) = addr_at(p.fam);
    let mut d = 0;
    for (at, old, new) in [(sa, p.src, new_src), (da, p.dst, new_dst)] {
        if old != new {
            d += change(p.fam, old, new);
            msg[p.ip + at..p.ip + at + alen].copy_from_slice(&bytes_of(p.fam, new)[..alen]);
        }
    }
    if !v6 && d != 0 {
        adjust(msg, p.ip + 10, d, false);
    }
    // The ICMP checksum over the whole message (the quote changed in several places), with
    // ICMPv6's pseudo-header.
    let l4 = p.l4;
    msg[l4 + 2..l4 + 4].copy_from_slice(&[0, 0]);
    let init = if v6 {
        let len = (msg.len() - l4) as u32;
        pseudo_header_v6(&new_src.into(), &new_dst.into(), ICMPV6, len)
    } else {
        0
    };
    let c = !sum(&msg[l4..], u32::from(init));
    msg[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
}

/// The quoted packet of an ICMP error (its IP header at `at`, as much of the rest as was
/// quoted): its flow, offsets and kind, if it has ports or an echo identifier.
fn parse_quote(frame: &[u8], at: usize, v6: bool) -> Option<Pkt> {
    let (fam, proto, src, dst, l4, _, _) = ip_header(frame, at, v6)?;
    let (sport, dport, kind) = match proto {
        TCP | UDP => (be16(frame, l4)?, be16(frame, l4 + 2)?, Kind::Ports),
        ICMP | ICMPV6 => {
            let t = *frame.get(l4)?;
            let id = be16(frame, l4 + 4)?;
            match (v6, t) {
                (false, 8) | (true, 128) => (id, id, Kind::Echo(true)),
                (false, 0) | (true, 129) => (id, id, Kind::Echo(false)),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(Pkt {
        fam,
        proto,
        src,
        dst,
        sport,
        dport,
        ip: at,
        l4,
        end: frame.len(),
        tcp_flags: 0,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::session::SessionConfig;
    use crate::wire::checksum::complete_partial;
    use proptest::prelude::*;

    const ETH: [u8; 14] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];

    fn v4(a: [u8; 4]) -> u128 {
        u128::from(u32::from_be_bytes(a))
    }

    /// The ones' complement sum of the L4 segment with its pseudo-header (0xffff: valid).
    fn l4_sum(frame: &[u8], p: &Pkt) -> u16 {
        let seg = &frame[p.l4..p.end];
        let init = match (p.fam, p.proto) {
            (Fam::V4, ICMP) => 0,
            (Fam::V4, _) => {
                u32::from(sum(&frame[L3 + 12..L3 + 20], 0)) + u32::from(p.proto) + seg.len() as u32
            }
            (Fam::V6, _) => {
                u32::from(sum(&frame[L3 + 8..L3 + 40], 0)) + u32::from(p.proto) + seg.len() as u32
            }
        };
        sum(seg, init)
    }

    /// An Ethernet frame of IPv4 `proto` from `src` to `dst` with L4 bytes `l4`, whose
    /// checksums (IP header, and the L4 one at `field` of `l4`, if any) are filled in.
    fn frame4(src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8], field: Option<usize>) -> Vec<u8> {
        let mut f = ETH.to_vec();
        let total = (20 + l4.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let c = !sum(&ip, 0);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        if let Some(at) = field {
            let p = parse(&f, L3, false).unwrap();
            let c = !l4_sum(&f, &p);
            f[34 + at..36 + at].copy_from_slice(&c.to_be_bytes());
        }
        f
    }

    fn frame6(src: u128, dst: u128, proto: u8, l4: &[u8], field: usize) -> Vec<u8> {
        let mut f = ETH.to_vec();
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        let mut ip = vec![0x60, 0, 0, 0, 0, 0, proto, 64];
        ip[4..6].copy_from_slice(&(l4.len() as u16).to_be_bytes());
        ip.extend_from_slice(&src.to_be_bytes());
        ip.extend_from_slice(&dst.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        let p = parse(&f, L3, true).unwrap();
        let c = !l4_sum(&f, &p);
        f[54 + field..56 + field].copy_from_slice(&c.to_be_bytes());
        f
    }

    fn tcp(sport: u16, dport: u16) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[12] = 0x50;
        t[13] = 0x02;
        t.extend_from_slice(b"hello, world");
        t
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = vec![0u8; 8];
        u[0..2].copy_from_slice(&sport.to_be_bytes());
        u[2..4].copy_from_slice(&dport.to_be_bytes());
        u[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(payload);
        u
    }

    fn echo(t: u8, id: u16) -> Vec<u8> {
        let mut e = vec![t, 0, 0, 0, 0, 0, 0, 7];
        e[4..6].copy_from_slice(&id.to_be_bytes());
        e.extend_from_slice(b"ping");
        e
    }

    fn check_valid(f: &[u8], v6: bool) -> Pkt {
        let p = parse(f, L3, v6).unwrap();
        if !v6 {
            assert_eq!(sum(&f[L3..L3 + 20], 0), 0xffff, "IPv4 header checksum");
        }
        let zero_udp = !v6 && p.proto == UDP && be16(f, p.l4 + 6) == Some(0);
        if !zero_udp {
            assert_eq!(l4_sum(f, &p), 0xffff, "L4 checksum of {p:?}");
        }
        p
    }

    fn to_flow(p: &Pkt, src: u128, sport: u16, dst: u128, dport: u16) -> Flow {
        Flow {
            src,
            dst,
            sport,
            dport,
            ..p.flow(0)
        }
    }

    #[test]
    fn rewrites_keep_checksums_valid() {
        let cases: Vec<(Vec<u8>, bool)> = vec![
            (
                frame4(
                    [10, 0, 0, 5],
                    [10, 96, 0, 10],
                    TCP,
                    &tcp(40000, 80),
                    Some(16),
                ),
                false,
            ),
            (
                frame4(
                    [10, 0, 0, 5],
                    [10, 96, 0, 10],
                    UDP,
                    &udp(40000, 53, b"query"),
                    Some(6),
                ),
                false,
            ),
            (
                frame4(
                    [10, 0, 0, 5],
                    [10, 96, 0, 10],
                    UDP,
                    &udp(40000, 53, b"odd"),
                    None,
                ),
                false,
            ),
            (
                frame4([10, 0, 0, 5], [8, 8, 8, 8], ICMP, &echo(8, 77), Some(2)),
                false,
            ),
            (
                frame4([8, 8, 8, 8], [10, 0, 0, 5], ICMP, &echo(0, 77), Some(2)),
                false,
            ),
            (
                frame6(
                    0xfd00 << 112 | 5,
                    0xfd00 << 112 | 0x10,
                    TCP,
                    &tcp(40000, 80),
                    16,
                ),
                true,
            ),
            (
                frame6(
                    0xfd00 << 112 | 5,
                    0xfd00 << 112 | 0x10,
                    UDP,
                    &udp(1, 53, b"q"),
                    6,
                ),
                true,
            ),
            (
                frame6(
                    0xfd00 << 112 | 5,
                    0x2001 << 112 | 1,
                    ICMPV6,
                    &echo(128, 9),
                    2,
                ),
                true,
            ),
        ];
        for (mut f, v6) in cases {
            let p = check_valid(&f, v6);
            let (ns, nd) = if v6 {
                (0xfd00 << 112 | 0xaa, 0xfd00 << 112 | 0xbb)
            } else {
                (v4([192, 0, 2, 1]), v4([10, 1, 0, 3]))
            };
            let to = to_flow(&p, ns, 61000, nd, 8080);
            rewrite(&mut f, &p, &to, Csum::Unknown);
            let q = check_valid(&f, v6);
            assert_eq!((q.src, q.dst), (ns, nd));
            match q.kind {
                Kind::Ports => assert_eq!((q.sport, q.dport), (61000, 8080)),
                Kind::Echo(true) => assert_eq!(q.sport, 61000),
                Kind::Echo(false) => assert_eq!(q.dport, 8080),
                Kind::Error(_) => unreachable!(),
            }
        }
    }

    #[test]
    fn a_partial_checksum_gets_the_pseudo_header_change_only() {
        for (proto, l4, field, kind) in [
            (TCP, tcp(40000, 80), 16, Csum::PartialTcp),
            (UDP, udp(40000, 53, b"abc"), 6, Csum::PartialUdp),
        ] {
            let mut f = frame4([10, 0, 0, 5], [10, 96, 0, 10], proto, &l4, None);
            // The sender's stack wrote the pseudo-header sum only.
            let p = parse(&f, L3, false).unwrap();
            let ph = crate::wire::checksum::pseudo_header_v4(
                [10, 0, 0, 5].into(),
                [10, 96, 0, 10].into(),
                proto,
                (p.end - p.l4) as u16,
            );
            f[p.l4 + field..p.l4 + field + 2].copy_from_slice(&ph.to_be_bytes());
            let to = to_flow(&p, v4([192, 0, 2, 1]), 61000, v4([10, 1, 0, 3]), 8080);
            rewrite(&mut f, &p, &to, kind);
            assert!(complete_partial(&mut f, p.l4, field, proto == UDP));
            check_valid(&f, false);
        }
    }

    fn table() -> Sessions {
        Sessions::new(
            1024,
            1,
            SessionConfig {
                limit: 100,
                iface_limit: 1,
                timeouts: Default::default(),
            },
        )
    }

    #[test]
    fn an_icmp_error_about_a_masqueraded_flow_goes_back_to_its_sender() {
        let t = table();
        // Pod 10.0.0.5:40000 -> 8.8.8.8:53, masqueraded as 192.0.2.1:61000.
        let out = frame4(
            [10, 0, 0, 5],
            [8, 8, 8, 8],
            UDP,
            &udp(40000, 53, b"q"),
            Some(6),
        );
        let p = parse(&out, L3, false).unwrap();
        let orig = p.flow(0);
        let to = to_flow(&p, v4([192, 0, 2, 1]), 61000, v4([8, 8, 8, 8]), 53);
        t.create_nat(0, &orig, &to, 0).unwrap();
        // 8.8.8.8 answers port unreachable, quoting the packet as it left.
        let mut left = out.clone();
        rewrite(&mut left, &p, &to, Csum::Unknown);
        let quote = left[L3..].to_vec();
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        icmp.extend_from_slice(&quote);
        let mut err = frame4([8, 8, 8, 8], [192, 0, 2, 1], ICMP, &icmp, Some(2));
        let e = parse(&err, L3, false).unwrap();
        let Kind::Error(inner) = e.kind else {
            panic!("not an error: {e:?}")
        };
        translate_error(&t, &mut err, &e, inner, 0);
        let e2 = check_valid(&err, false);
        assert_eq!((e2.src, e2.dst), (v4([8, 8, 8, 8]), v4([10, 0, 0, 5])));
        // The quote is the packet as the pod sent it (and its header checksum is valid).
        assert_eq!(&err[inner..inner + 20], &out[L3..L3 + 20]);
        assert_eq!(&err[inner + 20..inner + 28], &out[L3 + 20..L3 + 28]);
    }

    /// A client port reused towards another VIP whose backend is the same: the new flow's
    /// reply is an old pair's. A closed old pair (FIN both ways) gives way, counted as
    /// expired; a live one keeps its reply and the new flow is refused.
    #[test]
    fn a_closed_pair_gives_way_to_a_flow_with_its_reply() {
        let t = table();
        let f = frame4(
            [10, 0, 0, 5],
            [10, 96, 0, 10],
            TCP,
            &tcp(40000, 80),
            Some(16),
        );
        let p = parse(&f, L3, false).unwrap();
        let orig = p.flow(0);
        let to = to_flow(&p, orig.src, 40000, v4([10, 1, 0, 3]), 8080);
        let other = Flow {
            dst: v4([10, 96, 0, 11]),
            ..orig
        };
        let h = t.create_nat(0, &orig, &to, 0x02).unwrap();
        assert_eq!(t.create_nat(0, &other, &to, 0x02), Err(Refused::Full));
        t.touch_nat(&h, 0x11);
        let back = t.lookup_nat(&to.reversed()).unwrap();
        t.touch_nat(&back, 0x11);
        assert_eq!(t.create_nat(0, &other, &to, 0x02).map(|h| h.to), Ok(to));
        assert_eq!(t.lookup_nat(&orig), None);
        assert_eq!(t.lookup_nat(&other).map(|h| h.to), Some(to));
        assert_eq!(
            t.lookup_nat(&to.reversed()).map(|h| h.to),
            Some(other.reversed())
        );
        assert_eq!((t.stats().live, t.stats().expired), (2, 1));
    }

    #[test]
    fn nat_entries_pair_up() {
        let t = table();
        let f = frame4(
            [10, 0, 0, 5],
            [10, 96, 0, 10],
            TCP,
            &tcp(40000, 80),
            Some(16),
        );
        let p = parse(&f, L3, false).unwrap();
        let orig = p.flow(0);
        let to = to_flow(&p, orig.src, 40000, v4([10, 1, 0, 3]), 8080);
        let hit = t.create_nat(0, &orig, &to, 0x02).unwrap();
        assert_eq!(hit.to, to);
        assert_eq!(t.lookup_nat(&orig).map(|h| h.to), Some(to));
        let back = t.lookup_nat(&to.reversed()).unwrap();
        assert!(back.reply_entry);
        assert_eq!(back.to, orig.reversed());
        // The other way of an entry is no NAT packet.
        assert_eq!(t.lookup_nat(&orig.reversed()), None);
        // A second flow whose reply would be the same is refused.
        let other = Flow {
            sport: 40001,
            ..orig
        };
        assert_eq!(t.create_nat(0, &other, &to, 0x02), Err(Refused::Full));

        // Listed once, with its translation; the interface limit does not apply.
        let l = t.list(10);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].nat, Some(to));
        assert_eq!(t.stats().live, 2);
        // Idle while both are: a reply keeps the pair, and SYN both ways (one on each
        // entry) make it established.
        assert_eq!(t.expire(239), 0);
        t.set_clock(200);
        t.touch_nat(&back, 0x12);
        assert_eq!(
            t.expire(200 + 241),
            0,
            "established: not the transitory timeout"
        );
        assert_eq!(t.list(1)[0].state, "established");
        assert_eq!(t.expire(200 + 7201), 1);
        assert_eq!(t.lookup_nat(&to.reversed()), None);
        assert_eq!(t.stats().live, 0);
    }

    #[test]
    fn an_untranslated_flow_holds_its_replies_both_ways() {
        let t = table();
        let f = frame4([192, 0, 2, 2], [10, 0, 0, 5], TCP, &tcp(5555, 22), Some(16));
        let orig = parse(&f, L3, false).unwrap().flow(0);
        t.create_nat_untranslated(0, &orig, 0x02).unwrap();
        let fwd = t.lookup_nat(&orig).unwrap();
        assert_eq!(fwd.to, orig);
        let back = t.lookup_nat(&orig.reversed()).unwrap();
        assert!(back.reply_entry);
        assert_eq!(back.to, orig.reversed(), "replies go out as they are");
        // A translated entry is still found its way only.
        let g = Flow {
            sport: 5556,
            ..orig
        };
        let to = Flow {
            dst: v4([10, 0, 0, 6]),
            ..g
        };
        t.create_nat(0, &g, &to, 0x02).unwrap();
        assert_eq!(t.lookup_nat(&g.reversed()), None);
        assert_eq!(t.stats().live, 3);
    }

    #[test]
    fn a_full_bucket_makes_room_for_a_nat_session() {
        // One bucket: four half-open sessions (two entries each) fill it.
        let t = Sessions::new(
            crate::acl::session::WAYS,
            1,
            SessionConfig {
                limit: 100,
                iface_limit: 100,
                timeouts: Default::default(),
            },
        );
        let f = frame4([10, 0, 0, 5], [10, 96, 0, 10], TCP, &tcp(1, 80), Some(16));
        let p = parse(&f, L3, false).unwrap();
        for i in 0..5u16 {
            let orig = Flow {
                sport: 1000 + i,
                ..p.flow(0)
            };
            let to = Flow {
                dst: v4([10, 1, 0, 3]),
                ..orig
            };
            t.set_clock(u32::from(i) + 1);
            assert!(t.create_nat(0, &orig, &to, 0x02).is_ok(), "session {i}");
        }
        let st = t.stats();
        assert_eq!((st.live, st.evicted), (8, 1), "{st:?}");
        // The oldest went, as a pair.
        let first = Flow {
            sport: 1000,
            ..p.flow(0)
        };
        assert_eq!(t.lookup_nat(&first), None);
        assert_eq!(
            t.lookup_nat(
                &Flow {
                    dst: v4([10, 1, 0, 3]),
                    ..first
                }
                .reversed()
            ),
            None
        );
    }

    #[test]
    fn nat_sessions_stay_under_the_limit() {
        let t = Sessions::new(
            4096,
            1,
            SessionConfig {
                limit: 10,
                iface_limit: 10,
                timeouts: Default::default(),
            },
        );
        let f = frame4(
            [10, 0, 0, 5],
            [10, 96, 0, 10],
            UDP,
            &udp(1, 53, b""),
            Some(6),
        );
        let p = parse(&f, L3, false).unwrap();
        let mut ok = 0;
        for i in 0..20u16 {
            let orig = Flow {
                sport: 1000 + i,
                ..p.flow(0)
            };
            let to = Flow {
                dst: v4([10, 1, 0, 3]),
                ..orig
            };
            if t.create_nat(0, &orig, &to, 0).is_ok() {
                ok += 1;
            }
        }
        assert_eq!(ok, 5, "two entries a session");
        assert_eq!(t.stats().live, 10);
    }

    proptest! {
        #[test]
        fn any_translation_keeps_checksums_valid(src: u32, dst: u32, sport: u16, dport: u16,
                                                 s6: u128, d6: u128, payload in proptest::collection::vec(any::<u8>(), 0..40),
                                                 which in 0u8..5) {
            let (mut f, v6) = match which {
                0 => (frame4([10, 0, 0, 5], [10, 96, 0, 10], TCP, &[tcp(1, 2), payload.clone()].concat(), Some(16)), false),
                1 => (frame4([10, 0, 0, 5], [10, 96, 0, 10], UDP, &udp(1, 2, &payload), Some(6)), false),
                2 => (frame4([10, 0, 0, 5], [8, 8, 8, 8], ICMP, &[echo(8, 3), payload.clone()].concat(), Some(2)), false),
                3 => (frame6(1, 2, TCP, &[tcp(1, 2), payload.clone()].concat(), 16), true),
                _ => (frame6(1, 2, ICMPV6, &[echo(128, 3), payload.clone()].concat(), 2), true),
            };
            let p = check_valid(&f, v6);
            let (ns, nd) = if v6 { (s6, d6) } else { (u128::from(src), u128::from(dst)) };
            let to = to_flow(&p, ns, sport, nd, dport);
            rewrite(&mut f, &p, &to, Csum::Unknown);
            check_valid(&f, v6);
        }

        #[test]
        fn parsing_and_rewriting_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120),
                                             v6: bool, cut in 0usize..120, a: u128, port: u16) {
            let t = table();
            let mut f = b.clone();
            for frame in [&mut f] {
                if let Some(p) = parse(frame, L3, v6) {
                    let to = Flow { src: a, dport: port, ..p.flow(0) };
                    let _ = t.create_nat(0, &p.flow(0), &to, 0);
                    if let Kind::Error(inner) = p.kind {
                        translate_error(&t, frame, &p, inner, 0);
                    } else {
                        rewrite(frame, &p, &to, Csum::Unknown);
                    }
                }
            }
            // Valid packets cut short anywhere.
            let good = frame4([10, 0, 0, 5], [8, 8, 8, 8], UDP, &udp(40000, 53, b"q"), Some(6));
            let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
            icmp.extend_from_slice(&good[L3..]);
            let err = frame4([8, 8, 8, 8], [192, 0, 2, 1], ICMP, &icmp, Some(2));
            for whole in [good, err] {
                let mut c = whole[..cut.min(whole.len())].to_vec();
                if let Some(p) = parse(&c, L3, false) {
                    match p.kind {
                        Kind::Error(inner) => translate_error(&t, &mut c, &p, inner, 0),
                        _ => rewrite(&mut c, &p, &Flow { src: a, ..p.flow(0) }, Csum::Unknown),
                    }
                }
                // Truncating only the quote of an error keeps a parseable outer packet.
                let mut q = whole.clone();
                let keep = (L3 + 28 + cut).min(q.len());
                q.truncate(keep);
                let _ = parse(&q, L3, false);
            }
        }
    }
}
