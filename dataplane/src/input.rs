//! ethernet-input: the first stage of every frame a worker receives (and of frames the
//! slow path injects as if received). It applies the input interface's configuration:
//! cross-connected frames go straight to the output, bridge members' frames are parsed and
//! classified into their bridge VLAN, others are punted or dropped.
//!
//! Reads: `meta.rx_if` (or the whole vector's interface, for a received burst); the plan's
//! [`IfacePlan`](crate::plan::IfacePlan) of that interface (`up`, `input`, `l2`); each
//! bridged frame's Ethernet header and the mbuf's offload flags.
//! Writes: `meta.rx_if`; for bridged frames `bridge`, `vlan`, `flags` (TAGGED) and the
//! offload fields (`csum`, `csum_start`, `gso`, `gso_size`); `tx_if` for cross-connected
//! frames (on the per-packet path); `punt` for punted frames.
//! Next: l2-bridge, punt, output.
//! Drops: `iface_down` (input interface down), `unconnected` (nowhere to go),
//! `bad_header` (shorter than its Ethernet header), `vlan_mismatch` (a VLAN the bridge
//! member does not carry).

use dpdk::{BurstSummary, Mbuf};

use crate::counters::DropReason;
use crate::graph::{Ctx, Graph, Meta, Next, Stage};
use crate::plan::{IfIndex, IfacePlan, Input};
use crate::wire::ethernet::Frame;

const STAGE: Stage = Stage::EthernetInput;

/// Runs the stage on the graph's input vector. `rx`: every packet arrived on this
/// interface (their metadata is not filled in yet), and the vector's summary.
pub(crate) fn run(ctx: &Ctx, g: &mut Graph, rx: Option<(IfIndex, BurstSummary)>) {
    match rx {
        Some((i, summary)) => whole_vector(ctx, g, i, &summary),
        None => per_packet(ctx, g),
    }
}

/// A received burst: one interface, one decision for all but bridged frames.
fn whole_vector(ctx: &Ctx, g: &mut Graph, rx_if: IfIndex, summary: &BurstSummary) {
    let n = g.input.len();
    let Some(p) = ctx.plan.iface(rx_if).filter(|p| p.up) else {
        let reason = match ctx.plan.iface(rx_if) {
            Some(_) => DropReason::IfaceDown,
            None => DropReason::Unconnected,
        };
        ctx.counters.drop_packets(STAGE, reason, rx_if, n as u64);
        g.input.clear();
        return;
    };
    match p.input {
        Input::Xconnect(peer) => g.output.queue_burst(ctx, peer, &mut g.input.pkts, summary),
        Input::Drop(reason) => {
            ctx.counters.drop_packets(STAGE, reason, rx_if, n as u64);
            g.input.clear();
        }
        Input::Punt(reason) => {
            for m in &mut g.input.meta[..n] {
                *m = Meta {
                    rx_if,
                    punt: reason,
                    ..Meta::default()
                };
            }
            hand_on_all(ctx, g, Next::Punt);
        }
        Input::Bridge => {
            let mut all_ok = true;
            for i in 0..n {
                let ok = classify(p, rx_if, g, i).is_ok();
                all_ok &= ok;
            }
            if all_ok {
                hand_on_all(ctx, g, Next::L2Bridge);
            } else {
                sort_out(ctx, g, p, rx_if);
            }
        }
    }
}

/// Fills in packet `i`'s metadata as a frame of bridge member `p`; the drop reason if it
/// cannot enter the bridge.
#[inline(always)]
fn classify(p: &IfacePlan, rx_if: IfIndex, g: &mut Graph, i: usize) -> Result<(), DropReason> {
    let v = &mut g.input;
    let Some(member) = &p.l2 else {
        return Err(DropReason::Unconnected);
    };
    let Ok(f) = Frame::new_checked(v.pkts.data(i)) else {
        return Err(DropReason::BadHeader);
    };
    let tag = f.vlan();
    let Some(vlan) = member.mode.ingress(tag) else {
        return Err(DropReason::VlanMismatch);
    };
    let mut m = Meta {
        rx_if,
        bridge: member.bridge,
        vlan,
        flags: if tag.is_some() { Meta::TAGGED } else { 0 },
        ..Meta::default()
    };
    m.set_offload(&v.pkts.offload(i));
    v.meta[i] = m;
    Ok(())
}

/// Moves the whole input vector to `next`: by pointer when that stage has nothing
/// pending, else packet by packet.
fn hand_on_all(ctx: &Ctx, g: &mut Graph, next: Next) {
    let target = match next {
        Next::L2Bridge => &mut g.bridge,
        Next::Punt => &mut g.punt,
        Next::EthernetInput | Next::Output => return move_each(ctx, g, |_| Some(next)),
    };
    if target.is_empty() {
        std::mem::swap(&mut g.input, target);
    } else {
        move_each(ctx, g, |_| Some(next));
    }
}

/// Moves every input packet to the stage `next_of` gives its metadata (None: it was
/// dropped and counted already).
fn move_each(ctx: &Ctx, g: &mut Graph, mut next_of: impl FnMut(&Meta) -> Option<Next>) {
    // Taken out (an empty spare takes its place), so that packets sent back to
    // ethernet-input land in a fresh vector.
    let Some(mut input) = g.spare.take() else {
        return;
    };
    std::mem::swap(&mut g.input, &mut input);
    let v = &mut *input;
    for (m, meta) in v.pkts.drain().zip(v.meta.iter()) {
        match next_of(meta) {
            Some(next) => g.hand_on(ctx, STAGE, next, m, *meta),
            None => drop(m),
        }
    }
    g.spare = Some(input);
}

/// A received bridged burst with some frames that cannot enter: classify again, per frame.
#[cold]
fn sort_out(ctx: &Ctx, g: &mut Graph, p: &IfacePlan, rx_if: IfIndex) {
    let mut verdicts = [None; dpdk::MAX_BURST];
    for (i, v) in verdicts.iter_mut().enumerate().take(g.input.len()) {
        *v = classify(p, rx_if, g, i).err();
    }
    let mut i = 0;
    move_each(ctx, g, |_| {
        let v = verdicts[i];
        i += 1;
        match v {
            None => Some(Next::L2Bridge),
            Some(reason) => {
                ctx.counters.drop_packets(STAGE, reason, rx_if, 1);
                None
            }
        }
    });
}

/// Packets with their own `meta.rx_if` (injected as received, or back from a later stage).
fn per_packet(ctx: &Ctx, g: &mut Graph) {
    let n = g.input.len();
    let mut nexts = [None; dpdk::MAX_BURST];
    for (i, next) in nexts.iter_mut().enumerate().take(n) {
        let rx_if = g.input.meta[i].rx_if;
        let verdict = match ctx.plan.iface(rx_if) {
            None => Err(DropReason::Unconnected),
            Some(p) if !p.up => Err(DropReason::IfaceDown),
            Some(p) => match p.input {
                Input::Xconnect(peer) => {
                    g.input.meta[i].tx_if = peer;
                    Ok(Next::Output)
                }
                Input::Drop(reason) => Err(reason),
                Input::Punt(reason) => {
                    g.input.meta[i].punt = reason;
                    Ok(Next::Punt)
                }
                Input::Bridge => classify(p, rx_if, g, i).map(|()| Next::L2Bridge),
            },
        };
        *next = match verdict {
            Ok(next) => Some(next),
            Err(reason) => {
                ctx.counters.drop_packets(STAGE, reason, rx_if, 1);
                None
            }
        };
    }
    let mut i = 0;
    move_each(ctx, g, |_| {
        let v = nexts[i];
        i += 1;
        v
    });
}

/// Puts `m` in the input vector as received on `rx_if` (for the inject stage).
pub(crate) fn push_received(ctx: &Ctx, g: &mut Graph, rx_if: IfIndex, m: Mbuf) {
    let meta = Meta {
        rx_if,
        ..Meta::default()
    };
    g.hand_on(ctx, Stage::Inject, Next::EthernetInput, m, meta);
}
