//! A service: a virtual IP and port spread over backends, and the Maglev table (Eisenbud
//! et al., NSDI 2016, §3.4) that picks a backend for each new flow.
//!
//! The table has `M` entries (a prime well above 100 times the backends, so that shares
//! differ by at most about 1%); each backend fills the entries of its own permutation of
//! `0..M` in turn, weighted backends taking more turns, until every entry names one. A
//! flow's hash picks an entry. Adding or removing one backend changes few entries beyond
//! those that must move (the paper's table 1: about 1-2% more than the minimum), so flows
//! that are not in a session yet mostly keep their backend. Established flows never move:
//! their session holds the backend they got.
//!
//! Thread safety: a built [`Service`] is immutable and shared by the workers through the
//! plan; per-backend counters are one row per worker (plain relaxed stores by their worker).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::cell::bump;

/// TCP and UDP, the protocols a service balances.
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;

/// A backend as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BackendSpec {
    pub ip: IpAddr,
    pub port: u16,
    /// 0: drained (no new flows; established ones stay).
    pub weight: u32,
}

/// A service as configured (validated by the control plane: the VIP's family is every
/// backend's, ports are 1..=65535, `proto` is [`TCP`] or [`UDP`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceSpec {
    pub name: String,
    pub vrf: u16,
    pub proto: u8,
    pub vip: IpAddr,
    pub port: u16,
    /// Also reachable on this port of every address of the switch (the router's own
    /// addresses) in `vrf`.
    pub nodeport: Option<u16>,
    /// New flows of one client address go to one backend (Kubernetes' `ClientIP`
    /// affinity), while the backend set stays.
    pub affinity: bool,
    pub backends: Vec<BackendSpec>,
}

/// Maglev table sizes: the smallest prime of this list at least 100 times the number of
/// backends (the last for more).
const SIZES: [usize; 7] = [251, 1021, 4093, 16381, 65521, 262139, 1048573];

/// One worker's counters of a service: new flows per backend.
#[repr(align(64))]
struct Row(Box<[AtomicU64]>);

/// A built service.
pub struct Service {
    pub spec: ServiceSpec,
    /// Backend index per table entry (empty when no backend takes new flows).
    table: Box<[u16]>,
    /// Per worker: new flows per backend.
    rows: Box<[Row]>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.spec.name)
            .field("backends", &self.spec.backends.len())
            .field("table", &self.table.len())
            .finish()
    }
}

/// Counters of one backend, summed over workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// New flows it was given.
    pub flows: u64,
}

impl Service {
    /// Builds `spec`'s table for `workers` workers (on the control thread).
    pub fn build(spec: ServiceSpec, workers: usize) -> Arc<Service> {
        let table = maglev(&spec.backends);
        let n = spec.backends.len();
        let rows = (0..workers.max(1))
            .map(|_| Row((0..n).map(|_| AtomicU64::new(0)).collect()))
            .collect();
        Arc::new(Service { spec, table, rows })
    }

    /// Whether no backend takes new flows (all drained, or none).
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The backend a new flow of hash `h` goes to (None: none takes new flows).
    #[inline(always)]
    pub fn pick(&self, h: u64) -> Option<(u16, &BackendSpec)> {
        let n = self.table.len() as u64;
        if n == 0 {
            return None;
        }
        let i = *self.table.get((h % n) as usize)?;
        Some((i, self.spec.backends.get(usize::from(i))?))
    }

    /// Counts a new flow of worker `w` to backend `i`.
    #[inline(always)]
    pub fn count_flow(&self, w: usize, i: u16) {
        if let Some(c) = self.rows.get(w).and_then(|r| r.0.get(usize::from(i))) {
            bump(c, 1);
        }
    }

    /// The table's entries per backend (tests, `service show`).
    pub fn shares(&self) -> Vec<usize> {
        let mut out = vec![0; self.spec.backends.len()];
        for &i in self.table.iter() {
            if let Some(o) = out.get_mut(usize::from(i)) {
                *o += 1;
            }
        }
        out
    }

    /// Counters per backend, summed over workers.
    pub fn stats(&self) -> Vec<BackendStats> {
        let n = self.spec.backends.len();
        let mut out = vec![BackendStats::default(); n];
        for r in self.rows.iter() {
            for (i, o) in out.iter_mut().enumerate() {
                o.flows += r.0.get(i).map_or(0, |c| c.load(Relaxed));
            }
        }
        out
    }
}

/// A 64-bit hash of a backend's identity (its address and port), seeded.
fn backend_hash(b: &BackendSpec, seed: u64) -> u64 {
    let ip = match b.ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    };
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for v in [ip as u64, (ip >> 64) as u64, u64::from(b.port)] {
        h = (h ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
    }
    h.wrapping_mul(0xc4ce_b9fe_1a85_ec53) ^ (h >> 29)
}

/// The Maglev lookup table of `backends` (weights as turns per round; weight 0 takes
/// none): entry -> backend index. Empty when no backend has weight.
pub fn maglev(backends: &[BackendSpec]) -> Box<[u16]> {
    let live: Vec<usize> = (0..backends.len().min(usize::from(u16::MAX)))
        .filter(|&i| backends[i].weight > 0)
        .collect();
    if live.is_empty() {
        return Box::new([]);
    }
    let m = SIZES
        .iter()
        .copied()
        .find(|&m| m >= 100 * live.len())
        .unwrap_or(SIZES[SIZES.len() - 1]);
    let mw = live.iter().map(|&i| backends[i].weight).max().unwrap_or(1);
    // Each backend's permutation: offset + j * skip (mod m), skip in 1..m.
    let perm: Vec<(u64, u64)> = live
        .iter()
        .map(|&i| {
            let b = &backends[i];
            let offset = backend_hash(b, 1) % m as u64;
            let skip = backend_hash(b, 2) % (m as u64 - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; live.len()];
    let mut table = vec![u16::MAX; m];
    let mut filled = 0;
    // Weighted turns: in each round of `mw` turns a backend of weight w takes w of them.
    'fill: for round in 0u64.. {
        for (k, &i) in live.iter().enumerate() {
            let w = backends[i].weight;
            if round % u64::from(mw) >= u64::from(w) {
                continue;
            }
            let (offset, skip) = perm[k];
            loop {
                let c = ((offset + next[k] * skip) % m as u64) as usize;
                next[k] += 1;
                if table[c] == u16::MAX {
                    table[c] = i as u16;
                    filled += 1;
                    break;
                }
            }
            if filled == m {
                break 'fill;
            }
        }
    }
    table.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn backends(n: u8) -> Vec<BackendSpec> {
        (1..=n)
            .map(|i| BackendSpec {
                ip: IpAddr::V4(Ipv4Addr::new(10, 1, 0, i)),
                port: 8080,
                weight: 1,
            })
            .collect()
    }

    fn spec(b: Vec<BackendSpec>) -> ServiceSpec {
        ServiceSpec {
            name: "web".into(),
            vrf: 0,
            proto: TCP,
            vip: IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10)),
            port: 80,
            nodeport: None,
            affinity: false,
            backends: b,
        }
    }

    #[test]
    fn shares_are_even() {
        let s = Service::build(spec(backends(3)), 1);
        let sh = s.shares();
        let m: usize = sh.iter().sum();
        assert_eq!(m, 1021);
        for x in sh {
            assert!((x as f64 - m as f64 / 3.0).abs() < m as f64 * 0.02, "{x}");
        }
    }

    #[test]
    fn weights_and_drain() {
        let mut b = backends(3);
        b[0].weight = 2;
        b[2].weight = 0;
        let s = Service::build(spec(b.clone()), 1);
        let sh = s.shares();
        assert_eq!(sh[2], 0, "a drained backend takes no new flows");
        let ratio = sh[0] as f64 / sh[1] as f64;
        assert!((1.8..2.2).contains(&ratio), "{sh:?}");
        b.iter_mut().for_each(|x| x.weight = 0);
        let s = Service::build(spec(b), 1);
        assert!(s.is_empty());
        assert_eq!(s.pick(7), None);
    }

    #[test]
    fn removing_one_moves_little_more_than_its_share() {
        let all = maglev(&backends(10));
        let mut fewer = backends(10);
        fewer[4].weight = 0;
        let after = maglev(&fewer);
        let must = all.iter().filter(|&&i| i == 4).count();
        let moved = all.iter().zip(after.iter()).filter(|(a, b)| a != b).count();
        assert!(moved >= must);
        assert!(
            moved - must <= all.len() / 20,
            "moved {moved}, of which {must} had to"
        );
        // Adding one back: about a tenth moves.
        let moved_back = after.iter().zip(all.iter()).filter(|(a, b)| a != b).count();
        assert!(moved_back < all.len() / 10 + all.len() / 20);
    }

    #[test]
    fn big_backend_sets_build() {
        let b: Vec<_> = (0..1000u32)
            .map(|i| BackendSpec {
                ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)),
                port: 80,
                weight: 1,
            })
            .collect();
        let t = maglev(&b);
        assert_eq!(t.len(), 262139);
        assert!(t.iter().all(|&i| usize::from(i) < 1000));
    }
}
