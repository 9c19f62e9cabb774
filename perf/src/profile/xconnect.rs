//! `xconnect`: the cross-connect profile. Packet `i` carries flow `i mod flows` and MAC pair
//! `i mod macs` (source pool 0, destination pool 1). A cross-connect forwards on the input
//! port alone, so the addresses only matter to the systems compared against it (OVS's
//! exact-match cache sees `flows` distinct entries).

use super::addr::{FlowSet, MacPool};
use super::{frame, Params, Profile};
use crate::wire::ethernet::Mac;

pub struct Xconnect {
    macs: u64,
    flows: u64,
    src_macs: MacPool,
    dst_macs: MacPool,
    flow_set: FlowSet,
}

impl Xconnect {
    pub fn new(p: &Params) -> Self {
        Xconnect {
            macs: p.macs,
            flows: p.flows,
            src_macs: MacPool::new(p.seed, 0),
            dst_macs: MacPool::new(p.seed, 1),
            flow_set: FlowSet::new(p.seed),
        }
    }
}

impl Profile for Xconnect {
    fn write_frame(&self, index: u64, frame_len: usize, buf: &mut Vec<u8>) {
        let m = index % self.macs;
        let flow = self.flow_set.flow(index % self.flows);
        frame::udp4(
            buf,
            self.dst_macs.mac(m),
            self.src_macs.mac(m),
            &flow,
            index as u16,
            frame_len,
        );
    }

    fn dst_macs(&self) -> Vec<Mac> {
        (0..self.macs).map(|m| self.dst_macs.mac(m)).collect()
    }
}
