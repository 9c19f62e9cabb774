//! punt and inject: the graph's two ends toward the slow path (the control thread).
//!
//! punt hands each packet of its vector to this worker's punt ring with its input
//! interface and reason; a full ring drops it (`punt_full`), never waits.
//! Reads: `meta.rx_if`, `meta.punt`. Drops: `punt_full`.
//!
//! inject takes what the slow path sent this worker (at most a vector per poll): a packet
//! for an interface's output is queued there; a packet to be handled as if received on an
//! interface enters ethernet-input (after which the graph runs as for a received burst).
//! A packet for the output of a bridge's routed interface (BVI) enters l2-bridge as
//! received on the BVI; one for the output of a tunnel enters tunnel-encap.
//! Writes: `meta.rx_if` (as received) or `tx_if` (to an output); for a BVI `rx_if`,
//! `bridge`, `vlan` as well.

use crate::counters::DropReason;
use crate::graph::{Ctx, Graph, Meta, Next, Stage};
use crate::plan::IfacePlan;
use crate::slowpath::{Injected, Punted};

/// Runs the punt stage on the graph's punt vector.
#[inline(never)]
pub(crate) fn run(ctx: &Ctx, g: &mut Graph) {
    let v = &mut *g.punt;
    for (m, meta) in v.pkts.drain().zip(v.meta.iter()) {
        let p = Punted {
            mbuf: m,
            iface: meta.rx_if,
            reason: meta.punt,
        };
        if let Err(p) = ctx.slow.punt(ctx.worker, p) {
            ctx.counters
                .drop_packets(Stage::Punt, DropReason::PuntFull, meta.rx_if, 1);
            drop(p);
        }
    }
}

/// Takes up to a vector of injected packets from this worker's ring into the graph.
/// Returns how many.
pub fn inject(ctx: &Ctx, g: &mut Graph) -> usize {
    ctx.slow
        .drain_injected(ctx.worker, dpdk::MAX_BURST, |i: Injected| {
            if i.as_received {
                crate::input::push_received(ctx, g, i.iface, i.mbuf);
            } else {
                let meta = Meta {
                    tx_if: i.iface,
                    ..Meta::default()
                };
                match ctx.plan.iface(i.iface).and_then(IfacePlan::bvi_bridge) {
                    None if ctx.plan.is_tunnel(i.iface) => {
                        crate::tunnel::encap::route_into(ctx, g, Stage::Inject, i.mbuf, meta)
                    }
                    None => g.output.queue(ctx, i.iface, i.mbuf, &meta),
                    Some(bridge) => {
                        let meta = crate::l2::bridge::from_bvi(i.iface, bridge, &meta);
                        g.hand_on(ctx, Stage::Inject, Next::L2Bridge, i.mbuf, meta)
                    }
                }
            }
        })
}
