//! Seeded address pools: distinct MACs and distinct IPv4/UDP flows, each computed directly
//! from its index (no tables), so a pool of 16M entries costs nothing until it is used.
//!
//! Distinctness comes from an affine map `j -> a*j + b mod 2^bits` with `a` odd, which is a
//! bijection on `bits`-bit integers; `a` and `b` come from the seed, which scatters the
//! addresses so that consecutive indices do not land in neighbouring hash buckets.

use crate::rng;
use crate::wire::ethernet::Mac;

/// Largest pool: 2^24 entries (the host part of 10.0.0.0/8).
pub const MAX_POOL: u64 = 1 << 24;

/// Seeded bijection on `bits`-bit integers.
#[derive(Debug, Clone, Copy)]
struct Scatter {
    a: u64,
    b: u64,
    mask: u64,
}

impl Scatter {
    fn new(seed: u64, stream: u64, bits: u32) -> Self {
        Scatter {
            a: rng::keyed(seed, stream, 0) | 1,
            b: rng::keyed(seed, stream, 1),
            mask: (1u64 << bits) - 1,
        }
    }

    fn map(&self, j: u64) -> u64 {
        self.a.wrapping_mul(j).wrapping_add(self.b) & self.mask
    }
}

/// Distinct locally administered unicast MACs `02:PP:xx:xx:xx:xx` (IEEE 802 U/L bit set,
/// I/G bit clear); `PP` names the pool so two pools never share an address.
#[derive(Debug, Clone, Copy)]
pub struct MacPool {
    pool: u8,
    scatter: Scatter,
}

impl MacPool {
    pub fn new(seed: u64, pool: u8) -> Self {
        MacPool {
            pool,
            scatter: Scatter::new(seed, 0x3ac0 + u64::from(pool), 32),
        }
    }

    /// MAC number `j` (distinct for `j < 2^32`).
    pub fn mac(&self, j: u64) -> Mac {
        let host = (self.scatter.map(j) as u32).to_be_bytes();
        [0x02, self.pool, host[0], host[1], host[2], host[3]]
    }
}

/// One IPv4/UDP 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Udp4Flow {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
}

/// Distinct flows: source in 10.0.0.0/8 (RFC 1918), scattered and distinct per flow;
/// destination in 198.18.0.0/15 (RFC 2544 benchmarking range) and both ports in 1024..=65535,
/// random per flow.
#[derive(Debug, Clone, Copy)]
pub struct FlowSet {
    seed: u64,
    src: Scatter,
}

const STREAM_FLOW_SRC: u64 = 0xf10;
const STREAM_FLOW_DST: u64 = 0xf11;
const STREAM_FLOW_SPORT: u64 = 0xf12;
const STREAM_FLOW_DPORT: u64 = 0xf13;

impl FlowSet {
    pub fn new(seed: u64) -> Self {
        FlowSet {
            seed,
            src: Scatter::new(seed, STREAM_FLOW_SRC, 24),
        }
    }

    /// Flow number `j` (distinct for `j < MAX_POOL`).
    pub fn flow(&self, j: u64) -> Udp4Flow {
        let s = self.src.map(j) as u32 | 0x0a00_0000;
        let d = rng::below(rng::keyed(self.seed, STREAM_FLOW_DST, j), 1 << 17) as u32 | 0xc612_0000;
        let port =
            |stream| 1024 + rng::below(rng::keyed(self.seed, stream, j), 65536 - 1024) as u16;
        Udp4Flow {
            src: s.to_be_bytes(),
            dst: d.to_be_bytes(),
            src_port: port(STREAM_FLOW_SPORT),
            dst_port: port(STREAM_FLOW_DPORT),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn macs_distinct_unicast_local() {
        let p = MacPool::new(42, 1);
        let macs: HashSet<Mac> = (0..100_000).map(|j| p.mac(j)).collect();
        assert_eq!(macs.len(), 100_000);
        for m in &macs {
            assert_eq!(m[0] & 0x01, 0, "unicast");
            assert_eq!(m[0] & 0x02, 0x02, "locally administered");
            assert_eq!(m[1], 1);
        }
    }

    #[test]
    fn flows_distinct_and_in_range() {
        let f = FlowSet::new(42);
        let flows: HashSet<Udp4Flow> = (0..100_000).map(|j| f.flow(j)).collect();
        assert_eq!(flows.len(), 100_000);
        // Every field is spread, not just the one that makes flows distinct.
        let spread = |f: fn(&Udp4Flow) -> u64| flows.iter().map(f).collect::<HashSet<_>>().len();
        assert!(spread(|f| u64::from(f.src_port)) > 50_000);
        assert!(spread(|f| u64::from(f.dst_port)) > 50_000);
        assert!(spread(|f| u64::from(u32::from_be_bytes(f.dst))) > 50_000);
        for fl in &flows {
            assert_eq!(fl.src[0], 10);
            assert_eq!(fl.dst[0], 198);
            assert!(fl.dst[1] == 18 || fl.dst[1] == 19);
            assert!(fl.src_port >= 1024 && fl.dst_port >= 1024);
        }
    }

    #[test]
    fn seed_changes_addresses() {
        assert_ne!(FlowSet::new(1).flow(0), FlowSet::new(2).flow(0));
        assert_ne!(MacPool::new(1, 0).mac(0), MacPool::new(2, 0).mac(0));
    }
}
