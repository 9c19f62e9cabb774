//! `l2`: bridging with known destinations. `macs` source hosts (pool 0) sit behind the input
//! port and `macs` destination hosts (pool 1) behind the output port. Within each run of
//! `macs` packets every source and every destination appears once; destination = source
//! index + run number (mod macs), so the pairing rotates from one run to the next and a
//! learning bridge sees every source refreshed while lookups spread over all destinations.
//! Flows cycle independently (`i mod flows`).

use super::addr::{FlowSet, MacPool};
use super::{frame, Params, Profile};
use crate::wire::ethernet::Mac;

pub struct L2 {
    macs: u64,
    flows: u64,
    src_macs: MacPool,
    dst_macs: MacPool,
    flow_set: FlowSet,
}

impl L2 {
    pub fn new(p: &Params) -> Self {
        L2 {
            macs: p.macs,
            flows: p.flows,
            src_macs: MacPool::new(p.seed, 0),
            dst_macs: MacPool::new(p.seed, 1),
            flow_set: FlowSet::new(p.seed),
        }
    }

    fn pair(&self, index: u64) -> (u64, u64) {
        let src = index % self.macs;
        let run = index / self.macs;
        (src, (src + run) % self.macs)
    }

    /// Packet `index`'s source and destination MACs.
    pub fn macs_of(&self, index: u64) -> (Mac, Mac) {
        let (s, d) = self.pair(index);
        (self.src_macs.mac(s), self.dst_macs.mac(d))
    }

    /// Source MAC `j` (of `macs`).
    pub fn src_mac(&self, j: u64) -> Mac {
        self.src_macs.mac(j)
    }
}

impl Profile for L2 {
    fn write_frame(&self, index: u64, frame_len: usize, buf: &mut Vec<u8>) {
        let (s, d) = self.pair(index);
        let flow = self.flow_set.flow(index % self.flows);
        frame::udp4(
            buf,
            self.dst_macs.mac(d),
            self.src_macs.mac(s),
            &flow,
            index as u16,
            frame_len,
        );
    }

    fn dst_macs(&self) -> Vec<Mac> {
        (0..self.macs).map(|m| self.dst_macs.mac(m)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_run_covers_all_macs_and_pairs_rotate() {
        let l2 = L2::new(&Params {
            macs: 8,
            flows: 1,
            ..Params::default()
        });
        for run in 0..3u64 {
            let pairs: Vec<(u64, u64)> = (run * 8..run * 8 + 8).map(|i| l2.pair(i)).collect();
            let srcs: HashSet<u64> = pairs.iter().map(|p| p.0).collect();
            let dsts: HashSet<u64> = pairs.iter().map(|p| p.1).collect();
            assert_eq!((srcs.len(), dsts.len()), (8, 8));
            assert_eq!(pairs[0], (0, run));
        }
    }
}
