//! `routes`: random destinations across a route table. `routes` distinct /24 prefixes (from
//! 1.0.0.0 up, scattered so consecutive prefixes are far apart in the table); each packet goes
//! to a random host in a random prefix (keyed by seed and index), from one host behind the
//! input port to the router's MAC (pool 1, MAC 0). The prefixes, one `A.B.C.0/24` per line,
//! are the profile's table (`--table-out`), for a benchmark to install as routes.

use super::addr::{FlowSet, MacPool, Udp4Flow};
use super::{frame, Params, Profile};
use crate::rng;
use crate::wire::ethernet::Mac;

/// Most prefixes (2^22 /24s: 1.0.0.0 - 64.255.255.0).
pub const MAX_ROUTES: u64 = 1 << 22;
const STREAM_PICK: u64 = 0x7a0;
const STREAM_HOST: u64 = 0x7a1;

pub struct Routes {
    routes: u64,
    seed: u64,
    src: Mac,
    router: Mac,
    flows: u64,
    flow_set: FlowSet,
    scatter: u64,
}

impl Routes {
    pub fn new(p: &Params) -> Self {
        Routes {
            routes: p.routes,
            seed: p.seed,
            src: MacPool::new(p.seed, 0).mac(0),
            router: MacPool::new(p.seed, 1).mac(0),
            flows: p.flows,
            flow_set: FlowSet::new(p.seed),
            scatter: rng::keyed(p.seed, STREAM_PICK, 99) | 1,
        }
    }

    /// Prefix number `j` as its first three octets (distinct for j < MAX_ROUTES).
    pub fn prefix(&self, j: u64) -> [u8; 3] {
        let n = (self.scatter.wrapping_mul(j) & (MAX_ROUTES - 1)) as u32 + (1 << 16);
        let b = n.to_be_bytes();
        [b[1], b[2], b[3]]
    }
}

impl Profile for Routes {
    fn write_frame(&self, index: u64, frame_len: usize, buf: &mut Vec<u8>) {
        let j = rng::below(rng::keyed(self.seed, STREAM_PICK, index), self.routes);
        let host = 1 + rng::below(rng::keyed(self.seed, STREAM_HOST, index), 254) as u8;
        let p = self.prefix(j);
        let f = self.flow_set.flow(index % self.flows);
        let flow = Udp4Flow {
            dst: [p[0], p[1], p[2], host],
            ..f
        };
        frame::udp4(buf, self.router, self.src, &flow, index as u16, frame_len);
    }

    fn dst_macs(&self) -> Vec<Mac> {
        vec![self.router]
    }

    fn table(&self) -> Option<String> {
        let mut s = String::with_capacity(self.routes as usize * 16);
        for j in 0..self.routes {
            let p = self.prefix(j);
            s.push_str(&format!("{}.{}.{}.0/24\n", p[0], p[1], p[2]));
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn prefixes_are_distinct_and_every_packet_hits_one() {
        let r = Routes::new(&Params {
            routes: 5000,
            flows: 16,
            ..Params::default()
        });
        let prefixes: HashSet<[u8; 3]> = (0..5000).map(|j| r.prefix(j)).collect();
        assert_eq!(prefixes.len(), 5000);
        assert!(prefixes.iter().all(|p| (1..=64).contains(&p[0])));
        let mut buf = Vec::new();
        let mut hit = HashSet::new();
        for i in 0..20_000 {
            r.write_frame(i, 64, &mut buf);
            let dst = [buf[30], buf[31], buf[32]];
            assert!(prefixes.contains(&dst), "packet {i} to {dst:?}");
            assert!((1..=254).contains(&buf[33]));
            hit.insert(dst);
        }
        assert!(
            hit.len() > 4500,
            "destinations spread over the table: {}",
            hit.len()
        );
        assert_eq!(r.table().unwrap().lines().count(), 5000);
    }
}
