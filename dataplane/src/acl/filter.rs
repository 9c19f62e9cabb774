//! The ACL checks: ethernet-input checks each frame against its input interface's `in`
//! ACL before bridging or routing it (tunnel-decap does for the inner frames it hands to a
//! bridge), and the output checks each burst against its output interface's `out` ACL
//! before transmitting it (tunnel-encap each frame, before wrapping it). An interface without ACLs costs one
//! emptiness check of the plan's bindings per vector (none bound anywhere) or one lookup of
//! its binding per vector.
//!
//! Reads: each frame's headers ([`super::key`]), the ACL's classifier. Writes: the ACL's
//! hit counters (this worker's row). Drops: `acl_deny` (denied, or no rule matched),
//! `bad_header` (an IP packet whose headers are truncated: never let through unmatched).
//! ARP and IPv6 ND/RA pass unseen ([`super::key::Parsed::Exempt`]).

use dpdk::{Burst, MAX_BURST};

use super::key::{parse, Parsed};
use super::Acl;
use crate::counters::DropReason;
use crate::graph::{Ctx, Stage, Vector};
use crate::plan::IfIndex;

/// What `acl` says of frame `frame`: Ok to pass, or why it is dropped. Counts the hit.
#[inline(always)]
pub(crate) fn check(ctx: &Ctx, acl: &Acl, frame: &[u8]) -> Result<(), DropReason> {
    match parse(frame) {
        Parsed::Ip(k) => {
            let v = acl.verdict(&k);
            acl.count(ctx.worker, &v);
            if v.action.permits() {
                Ok(())
            } else {
                Err(DropReason::AclDeny)
            }
        }
        Parsed::Exempt => Ok(()),
        Parsed::Bad => Err(DropReason::BadHeader),
    }
}

/// Checks every packet of `v`, all of `iface` (received on it: `stage` is ethernet-input),
/// against `acl`; frees and counts the ones it drops. Returns how many it dropped.
#[inline(never)]
pub(crate) fn check_vector(
    ctx: &Ctx,
    stage: Stage,
    acl: &Acl,
    iface: IfIndex,
    v: &mut Vector,
) -> usize {
    let mut keep = [true; MAX_BURST];
    let mut dropped = false;
    for (i, k) in keep.iter_mut().enumerate().take(v.len()) {
        if let Err(reason) = check(ctx, acl, v.pkts.data(i)) {
            ctx.counters.drop_packets(stage, reason, iface, 1);
            *k = false;
            dropped = true;
        }
    }
    if dropped {
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
    match ctx.plan.acls.get(iface, super::Dir::Out) {
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
    match ctx.plan.acls.get(tif, super::Dir::Out) {
        Some(acl) => check(ctx, acl, m.data()),
        None => Ok(()),
    }
}

#[inline(never)]
fn check_burst(ctx: &Ctx, acl: &Acl, iface: IfIndex, burst: &mut Burst, bytes: u64) -> u64 {
    let mut keep = [true; MAX_BURST];
    let mut dropped = false;
    for (i, k) in keep.iter_mut().enumerate().take(burst.len()) {
        if let Err(reason) = check(ctx, acl, burst.data(i)) {
            ctx.counters.drop_packets(Stage::Output, reason, iface, 1);
            *k = false;
            dropped = true;
        }
    }
    if dropped {
        burst.retain(&keep);
        burst.bytes()
    } else {
        bytes
    }
}
