//! The bridge stage: for each frame from a bridge member, classify its VLAN, learn its
//! source, look its destination up and queue it (or flooded copies) on the output ports'
//! buffers, pushing or popping 802.1Q tags per output member.
//!
//! A burst is switched in two passes: the first computes every frame's source and
//! destination probes (key hashes) and prefetches their home slots; the second classifies,
//! learns, looks up with those probes and queues. The burst's table misses (two per frame in
//! a big table) overlap instead of each lookup waiting for its own.
//!
//! Reads: the plan's membership (`ports`, `bridges`), the FDB, the learner's clock.
//! Writes: learn requests (this worker's queue), `seen` stamps of FDB hits, this worker's
//! counters and output buffers. No locks, no allocation (copies come from the mempool).

use dpdk::{Burst, Mbuf, MAX_PORTS};

use crate::counters::{DropReason, WorkerCounters};
use crate::l2::fdb::{Fdb, FdbKey, Probe};
use crate::l2::learn::{Clock, LearnQueues, LearnRequest};
use crate::plan::{ForwardingPlan, VlanMode};
use crate::wire::ethernet::{self, Frame, VLAN_TAG_LEN};

/// What workers share for L2: the table, the learn queues and the learner's clock.
#[derive(Debug, Clone)]
pub struct L2Shared {
    pub fdb: std::sync::Arc<Fdb>,
    pub learn: std::sync::Arc<LearnQueues>,
    pub clock: std::sync::Arc<Clock>,
}

/// Size of the per-worker filter that keeps a worker from asking the learner about the
/// same MAC more than once a second.
const RECENT: usize = 256;

/// A worker's own L2 state: output buffers (one per port) and the learn-request filter.
pub struct L2Worker {
    pub(crate) id: usize,
    pub(crate) outs: Vec<Burst>,
    /// Ports whose buffer is not empty, in the order they filled.
    pub(crate) dirty: Vec<u16>,
    recent: [u64; RECENT],
    /// The source and destination probes of each packet of the burst being switched, from
    /// the first pass (reused; default where a frame needs no lookup).
    probes: Vec<[Probe; 2]>,
}

impl L2Worker {
    /// Allocated once, when the worker starts.
    pub fn new(id: usize) -> L2Worker {
        L2Worker {
            id,
            outs: (0..MAX_PORTS).map(|_| Burst::new()).collect(),
            dirty: Vec::with_capacity(MAX_PORTS),
            recent: [u64::MAX; RECENT],
            probes: Vec::with_capacity(dpdk::MAX_BURST),
        }
    }

    /// The frames queued for `port` and not yet flushed.
    pub fn output(&self, port: u16) -> Option<&Burst> {
        self.outs.get(usize::from(port))
    }

    /// Frees every queued frame.
    pub fn clear_outputs(&mut self) {
        for p in self.dirty.drain(..) {
            if let Some(o) = self.outs.get_mut(usize::from(p)) {
                o.clear();
            }
        }
    }

    #[inline]
    fn queue(&mut self, port: u16, m: Mbuf, counters: &WorkerCounters) {
        let Some(out) = self.outs.get_mut(usize::from(port)) else {
            return;
        };
        if out.is_empty() {
            self.dirty.push(port);
        }
        if let Err(m) = out.push(m) {
            counters.drop_packets(DropReason::TxFull, port, 1);
            drop(m);
        }
    }

    /// Asks the learner to learn `key` on `port`, at most once a second per key.
    #[inline]
    fn request_learn(&mut self, l2: &L2Shared, key: FdbKey, port: u16, now: u64) {
        let tag = u64::from_be_bytes([
            0, 0, key.mac[0], key.mac[1], key.mac[2], key.mac[3], key.mac[4], key.mac[5],
        ]) ^ (u64::from(key.vlan) << 48)
            ^ (u64::from(key.bridge) << 36)
            ^ (u64::from(port) << 60);
        let stamp = tag.rotate_left(7) ^ now;
        let slot = (tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % RECENT;
        if self.recent[slot] != stamp {
            self.recent[slot] = stamp;
            l2.learn.request(self.id, LearnRequest { key, port });
        }
    }
}

/// Makes `m`'s tag fit the output member: pops it, pushes one for `vlan`, or leaves it.
/// False when there is no headroom for a tag (the caller drops the frame).
#[inline]
fn retag(m: &mut Mbuf, tagged_in: bool, out: &VlanMode, vlan: u16) -> bool {
    match (tagged_in, out.tagged()) {
        (true, true) | (false, false) => true,
        (true, false) => {
            ethernet::strip_tag_in_place(m.data_mut());
            m.adj(VLAN_TAG_LEN as u16)
        }
        (false, true) => {
            if !m.prepend(VLAN_TAG_LEN as u16) {
                return false;
            }
            ethernet::emit_tag_into_room(m.data_mut(), vlan);
            true
        }
    }
}

/// Sends every non-empty output buffer out of this worker's tx queue of its port.
///
/// # Safety
/// As for [`dpdk::Burst::tx`], for every queue in `tx`: no other thread uses it meanwhile
/// and its port is open.
#[inline]
pub unsafe fn flush(w: &mut L2Worker, tx: &[Option<dpdk::PortQueue>], counters: &WorkerCounters) {
    let L2Worker { outs, dirty, .. } = w;
    for p in dirty.drain(..) {
        let Some(out) = outs.get_mut(usize::from(p)) else {
            continue;
        };
        match tx.get(usize::from(p)).copied().flatten() {
            Some(txq) => {
                let bytes = out.bytes();
                // SAFETY: txq is in `tx`, whose queues the caller vouches for.
                unsafe { crate::worker::transmit(out, txq, bytes, counters) }
            }
            None => {
                counters.drop_packets(DropReason::NoTxQueue, p, out.len() as u64);
                out.clear();
            }
        }
    }
}

/// Switches a burst received on `rx_port`. Frames end up in `w.outs` or dropped and
/// counted; the burst is empty afterwards.
pub fn switch_burst(
    burst: &mut Burst,
    rx_port: u16,
    plan: &ForwardingPlan,
    l2: &L2Shared,
    w: &mut L2Worker,
    counters: &WorkerCounters,
) {
    let Some(member) = plan.l2_port(rx_port) else {
        counters.drop_packets(DropReason::Unconnected, rx_port, burst.len() as u64);
        burst.clear();
        return;
    };
    let Some(bridge) = plan.bridge(member.bridge) else {
        counters.drop_packets(DropReason::Unconnected, rx_port, burst.len() as u64);
        burst.clear();
        return;
    };
    if !member.up {
        counters.drop_packets(DropReason::IfaceDown, rx_port, burst.len() as u64);
        burst.clear();
        return;
    }
    let now = l2.clock.now();
    // First pass: the home slots of every frame's source and destination keys are
    // prefetched, so that the burst's table misses overlap instead of each lookup waiting
    // for its own. The second pass classifies the frame again (its header is in L1 now) and
    // uses the probes where it looks up.
    let mut probes = std::mem::take(&mut w.probes);
    probes.clear();
    for i in 0..burst.len() {
        let mut p = [Probe::default(); 2];
        if let Ok(f) = Frame::new_checked(burst.data(i)) {
            if let Some(vlan) = member.mode.ingress(f.vlan()) {
                let key = |mac| FdbKey {
                    bridge: member.bridge,
                    vlan,
                    mac,
                };
                if bridge.learn && !ethernet::is_group(&f.src()) {
                    p[0] = Probe::new(&key(f.src()));
                    l2.fdb.prefetch(&p[0]);
                }
                if !ethernet::is_group(&f.dst()) {
                    p[1] = Probe::new(&key(f.dst()));
                    l2.fdb.prefetch(&p[1]);
                }
            }
        }
        probes.push(p);
    }
    // Second pass: learn, look up, queue.
    for (mut m, [src_probe, dst_probe]) in burst.drain().zip(probes.iter()) {
        let (src, dst, tag) = match Frame::new_checked(m.data()) {
            Ok(f) => (f.src(), f.dst(), f.vlan()),
            Err(_) => {
                counters.drop_packets(DropReason::BadHeader, rx_port, 1);
                continue;
            }
        };
        let Some(vlan) = member.mode.ingress(tag) else {
            counters.drop_packets(DropReason::VlanMismatch, rx_port, 1);
            continue;
        };
        let tagged_in = tag.is_some();

        if bridge.learn && !ethernet::is_group(&src) {
            match l2.fdb.lookup_probe(src_probe) {
                Some(hit) if hit.entry.port == rx_port || hit.entry.is_static => {
                    l2.fdb.touch(&hit, now)
                }
                _ => {
                    let key = FdbKey {
                        bridge: member.bridge,
                        vlan,
                        mac: src,
                    };
                    w.request_learn(l2, key, rx_port, now)
                }
            }
        }

        if !ethernet::is_group(&dst) {
            if let Some(hit) = l2.fdb.lookup_probe(dst_probe) {
                let out = hit.entry.port;
                match plan.l2_port(out) {
                    _ if out == rx_port => counters.drop_packets(DropReason::SamePort, rx_port, 1),
                    Some(o) if o.bridge == member.bridge && o.up && o.mode.carries(vlan) => {
                        if retag(&mut m, tagged_in, &o.mode, vlan) {
                            w.queue(out, m, counters);
                        } else {
                            counters.drop_packets(DropReason::NoMbuf, out, 1);
                        }
                    }
                    Some(o) if !o.up => counters.drop_packets(DropReason::IfaceDown, out, 1),
                    _ => counters.drop_packets(DropReason::VlanMismatch, out, 1),
                }
                continue;
            }
            if !bridge.flood {
                counters.drop_packets(DropReason::FloodOff, rx_port, 1);
                continue;
            }
        }

        // Flood: every other up member carrying the VLAN gets a copy; the last one gets
        // the original.
        let mut last: Option<(u16, &VlanMode)> = None;
        for &p in &bridge.members {
            if p == rx_port {
                continue;
            }
            let Some(o) = plan.l2_port(p) else { continue };
            if !o.up || !o.mode.carries(vlan) {
                continue;
            }
            if let Some((lp, lmode)) = last.replace((p, &o.mode)) {
                match m.copy() {
                    Some(mut c) => {
                        if retag(&mut c, tagged_in, lmode, vlan) {
                            w.queue(lp, c, counters);
                        } else {
                            counters.drop_packets(DropReason::NoMbuf, lp, 1);
                        }
                    }
                    None => counters.drop_packets(DropReason::NoMbuf, lp, 1),
                }
            }
        }
        match last {
            Some((lp, lmode)) => {
                if retag(&mut m, tagged_in, lmode, vlan) {
                    w.queue(lp, m, counters);
                } else {
                    counters.drop_packets(DropReason::NoMbuf, lp, 1);
                }
            }
            // No other member carries this VLAN.
            None => counters.drop_packets(DropReason::Unconnected, rx_port, 1),
        }
    }
    w.probes = probes;
}
