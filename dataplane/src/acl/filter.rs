//! The ACL checks: ethernet-input checks each frame against its input interface's `in`
//! ACL before bridging or routing it (tunnel-decap does for the inner frames it hands to a
//! bridge), and the output checks each burst against its output interface's `out` ACL
//! before transmitting it (tunnel-encap each frame, before wrapping it). An interface without ACLs costs one
//! emptiness check of the plan's bindings per vector (none bound anywhere) or one lookup of
//! its binding per vector.
//!
//! Where an interface's ACLs have `permit-reflect` rules, each packet is looked up in the
//! session table first (either way): a session's packets pass without a rule search.
//!
//! Reads: each frame's headers ([`super::key`]), the session table, the ACL's classifier.
//! Writes: the ACL's hit counters (this worker's row), sessions (created by
//! `permit-reflect`, stamped by their packets; one a replaced ACL no longer permits is
//! removed). Drops: `acl_deny` (denied, or no rule matched), `session_limit` (a new flow
//! the session table has no room for),
//! `bad_header` (an IP packet whose headers are truncated: never let through unmatched).
//! ARP and IPv6 ND/RA pass unseen ([`super::key::Parsed::Exempt`]).

use dpdk::{Burst, MAX_BURST};

use super::key::{parse, parse_into, Extra, Kind, Parsed};
use super::session::{Flow, Found, Sessions, LOOKUP_AHEAD};
use super::{Acl, Action, Dir, Key};
use crate::counters::DropReason;
use crate::graph::{Ctx, Stage, Vector};
use crate::plan::IfIndex;

/// What `acl`, bound to `iface` in direction `dir`, says of frame `frame`: Ok to pass, or
/// why it is dropped. A packet of a session (either way) passes without a rule search; an
/// ICMP error about a session's packet passes too; a `permit-reflect` rule's packet
/// creates its session. Counts the rule's hit.
#[inline(always)]
pub(crate) fn check(
    ctx: &Ctx,
    acl: &Acl,
    iface: IfIndex,
    dir: Dir,
    frame: &[u8],
) -> Result<(), DropReason> {
    match parse(frame) {
        Parsed::Ip(k, x) => {
            let table = ctx.plan.acls.sessions_of(iface);
            let flow = Flow::of(iface, &k, &x);
            if let Some(t) = table {
                let f = flow.as_ref().map(|f| (f, f.hash()));
                if session_passes(ctx, t, (acl, dir), iface, f, &x) {
                    return Ok(());
                }
            }
            let rule = acl.classifier().classify(&k);
            decide(ctx, acl, table, iface, dir, &k, &x, rule)
        }
        Parsed::Exempt => Ok(()),
        Parsed::Bad => Err(DropReason::BadHeader),
    }
}

/// Whether a session lets the packet of `flow` through (stamping it), or, for an ICMP
/// error, the session of the packet it quotes; `checking` is the ACL being checked and
/// its direction.
#[inline(always)]
fn session_passes(
    ctx: &Ctx,
    t: &Sessions,
    checking: (&Acl, Dir),
    iface: IfIndex,
    flow: Option<(&Flow, u64)>,
    x: &Extra,
) -> bool {
    match flow {
        Some((f, h)) => match t.lookup_hashed(f, h) {
            Some(found) if still_permitted(ctx, t, checking, iface, f, &found) => {
                t.touch(&found, x.tcp_flags);
                true
            }
            _ => false,
        },
        None => x
            .quoted
            .and_then(|q| Flow::of(iface, &q, &Extra::default()))
            .is_some_and(|q| t.lookup(&q).is_some()),
    }
}

/// Whether session `found` (of `f`, seen now) still stands: the ACL that created it is
/// still bound where it was, or its replacement still permits the session's first packet
/// (then the session is the replacement's now); else the session is removed. A session
/// that the ACL being checked (`checking`) created, in the same direction, stands without
/// a look at what is bound: that ACL is (the common case, a flow's own packets).
#[inline(always)]
fn still_permitted(
    ctx: &Ctx,
    t: &Sessions,
    checking: (&Acl, Dir),
    iface: IfIndex,
    f: &Flow,
    found: &Found,
) -> bool {
    let (acl, dir) = checking;
    if found.acl == acl.id && found.dir == dir {
        return true;
    }
    match ctx.plan.acls.get(iface, found.dir) {
        Some(cur) if cur.id != found.acl => recheck(t, cur, f, found),
        // The same ACL, or none bound there any more (nothing to check against).
        _ => true,
    }
}

#[cold]
fn recheck(t: &Sessions, cur: &Acl, f: &Flow, found: &Found) -> bool {
    let first = if found.reply { f.reversed() } else { *f };
    let (sport, dport) = match first.proto {
        // An echo session's first packet was a request (type 8 / 128, code 0).
        1 => (8, 0),
        58 => (128, 0),
        _ => (first.sport, first.dport),
    };
    let k = Key {
        family: first.family,
        proto: first.proto,
        src: first.src,
        dst: first.dst,
        sport,
        dport,
        later_fragment: false,
    };
    if cur.verdict(&k).action.permits() {
        t.adopt(found, cur.id);
        true
    } else {
        t.remove(found);
        false
    }
}

/// Packets classified together (rte_acl's batch).
const CHUNK: usize = 32;

/// Checks every frame of `burst`, all through `iface` in direction `dir`, against `acl`:
/// like [`check`] frame by frame, with the rule searches of a chunk of frames done in one
/// classifier call. Counts the drops (in `stage`) and clears `keep[i]` for each frame
/// dropped; true if any was.
#[inline(never)]
fn check_all(
    ctx: &Ctx,
    stage: Stage,
    acl: &Acl,
    iface: IfIndex,
    dir: Dir,
    burst: &Burst,
    keep: &mut [bool; MAX_BURST],
) -> bool {
    let table = ctx.plan.acls.sessions_of(iface);
    if table.is_none() {
        return check_stateless(ctx, stage, acl, iface, burst, keep);
    }
    let mut dropped = false;
    let mut drop = |i: usize, reason: DropReason, keep: &mut [bool; MAX_BURST]| {
        ctx.counters.drop_packets(stage, reason, iface, 1);
        keep[i] = false;
        dropped = true;
    };
    let n = burst.len();
    let mut at = 0;
    // Each frame is parsed straight into its place in the chunk's arrays (as
    // check_stateless does): a `Parsed` built per frame and copied stalls store forwarding.
    let mut keys = [Key::default(); CHUNK];
    let mut xs = [Extra::default(); CHUNK];
    let mut flows: [Option<Flow>; CHUNK] = [None; CHUNK];
    let mut index = [0usize; CHUNK];
    let mut hashes = [0u64; CHUNK];
    while at < n {
        // Pass 1: parse; ask for the session buckets of the chunk's flows.
        let mut len = 0;
        while at < n && len < CHUNK {
            match parse_into(burst.data(at), &mut keys[len], &mut xs[len]) {
                Kind::Ip => {
                    flows[len] = Flow::of(iface, &keys[len], &xs[len]);
                    if let (Some(t), Some(f)) = (table, &flows[len]) {
                        hashes[len] = t.prefetch_bucket(f);
                    }
                    index[len] = at;
                    len += 1;
                }
                Kind::Exempt => {}
                Kind::Bad => drop(at, DropReason::BadHeader, keep),
            }
            at += 1;
        }
        // Pass 2: sessions, each packet's slots (those its bucket names) asked for
        // LOOKUP_AHEAD packets before; what remains is moved to the front (below the
        // packets still to be asked for) and searched together.
        let mut m = 0;
        for k in 0..len + LOOKUP_AHEAD {
            if let (Some(t), Some(Some(_))) = (table, flows[..len].get(k)) {
                t.prefetch_slots(hashes[k]);
            }
            let Some(j) = k.checked_sub(LOOKUP_AHEAD) else {
                continue;
            };
            let f = flows[j].as_ref().map(|f| (f, hashes[j]));
            let held = table.is_some_and(|t| session_passes(ctx, t, (acl, dir), iface, f, &xs[j]));
            if !held {
                if m != j {
                    keys[m] = keys[j];
                    xs[m] = xs[j];
                    index[m] = index[j];
                }
                m += 1;
            }
        }
        let mut rules = [None; CHUNK];
        acl.classifier().classify_many(&keys[..m], &mut rules[..m]);
        for j in 0..m {
            if let Err(reason) = decide(ctx, acl, table, iface, dir, &keys[j], &xs[j], rules[j]) {
                drop(index[j], reason, keep);
            }
        }
    }
    dropped
}

/// [`check_all`] where the interface's ACLs create no sessions: no session lookup, and
/// only the match fields are kept (parsed straight into the chunk's key array).
#[inline(always)]
fn check_stateless(
    ctx: &Ctx,
    stage: Stage,
    acl: &Acl,
    iface: IfIndex,
    burst: &Burst,
    keep: &mut [bool; MAX_BURST],
) -> bool {
    let mut dropped = false;
    let n = burst.len();
    let mut at = 0;
    let mut keys = [Key::default(); CHUNK];
    let mut extra = Extra::default();
    let mut index = [0u16; CHUNK];
    let mut rules = [None; CHUNK];
    while at < n {
        let mut m = 0;
        while at < n && m < CHUNK {
            match parse_into(burst.data(at), &mut keys[m], &mut extra) {
                Kind::Ip => {
                    index[m] = at as u16;
                    m += 1;
                }
                Kind::Exempt => {}
                Kind::Bad => {
                    ctx.counters
                        .drop_packets(stage, DropReason::BadHeader, iface, 1);
                    keep[at] = false;
                    dropped = true;
                }
            }
            at += 1;
        }
        acl.classifier().classify_many(&keys[..m], &mut rules[..m]);
        for (j, rule) in rules[..m].iter().enumerate() {
            let v = acl.verdict_of(*rule);
            acl.count(ctx.worker, &v);
            if !v.action.permits() {
                ctx.counters
                    .drop_packets(stage, DropReason::AclDeny, iface, 1);
                keep[usize::from(index[j])] = false;
                dropped = true;
            }
        }
    }
    dropped
}

/// What a packet's rule search (`rule`) means: counts the hit, and creates the session of a
/// `permit-reflect` rule's packet.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn decide(
    ctx: &Ctx,
    acl: &Acl,
    table: Option<&Sessions>,
    iface: IfIndex,
    dir: Dir,
    k: &Key,
    x: &Extra,
    rule: Option<u32>,
) -> Result<(), DropReason> {
    let v = acl.verdict_of(rule);
    acl.count(ctx.worker, &v);
    match (v.action, table) {
        (Action::Deny, _) => Err(DropReason::AclDeny),
        (Action::PermitReflect, Some(t)) => match Flow::of(iface, k, x) {
            Some(f) => t
                .create(ctx.worker, &f, dir, acl.id, x.tcp_flags)
                .map(|_| ())
                .map_err(|_| DropReason::SessionLimit),
            // What has no session of its own (a later fragment, ICMP other than echoes).
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Checks every packet of `v`, all received on `iface` (`stage` is ethernet-input),
/// against its `in` ACL `acl`; frees and counts the ones it drops. Returns how many it
/// dropped.
#[inline(never)]
pub(crate) fn check_vector(
    ctx: &Ctx,
    stage: Stage,
    acl: &Acl,
    iface: IfIndex,
    v: &mut Vector,
) -> usize {
    let mut keep = [true; MAX_BURST];
    if check_all(ctx, stage, acl, iface, Dir::In, &v.pkts, &mut keep) {
        v.retain(&keep)
    } else {
        0
    }
}

/// Checks a burst leaving `iface` against its `out` ACL, if it has one; frees and counts
/// the frames it drops. Returns the burst's bytes afterwards (`bytes` if none dropped).
#[inline(always)]
pub(crate) fn check_out(ctx: &Ctx, iface: IfIndex, burst: &mut Burst, bytes: u64) -> u64 {
    if ctx.plan.acls.is_empty() {
        return bytes;
    }
    match ctx.plan.acls.get(iface, Dir::Out) {
        Some(acl) => check_burst(ctx, acl, iface, burst, bytes),
        None => bytes,
    }
}

/// What the `out` ACL of tunnel interface `tif` (if it has one) says of inner frame `m`,
/// before tunnel-encap wraps it.
#[inline(always)]
pub(crate) fn check_tunnel_out(ctx: &Ctx, tif: IfIndex, m: &dpdk::Mbuf) -> Result<(), DropReason> {
    if ctx.plan.acls.is_empty() {
        return Ok(());
    }
    match ctx.plan.acls.get(tif, Dir::Out) {
        Some(acl) => check(ctx, acl, tif, Dir::Out, m.data()),
        None => Ok(()),
    }
}

#[inline(never)]
fn check_burst(ctx: &Ctx, acl: &Acl, iface: IfIndex, burst: &mut Burst, bytes: u64) -> u64 {
    let mut keep = [true; MAX_BURST];
    if check_all(ctx, Stage::Output, acl, iface, Dir::Out, burst, &mut keep) {
        burst.retain(&keep);
        burst.bytes()
    } else {
        bytes
    }
}
