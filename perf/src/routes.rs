//! Route sets and destination addresses for FIB benchmarks (`fib-bench`), and a plain
//! reference longest-prefix match to check the structures under test against.
//!
//! A route set is deterministic in (family, count, seed). Its prefix lengths follow a mix
//! shaped like a BGP full table (IPv4: about 62% /24, the rest over /8-/23, 3.5% /25-/32
//! so that DIR-24-8 tables need tbl8 groups; IPv6: mostly /32-/48, 4% /64, under 1% /128),
//! with no prefix twice and host bits cleared. IPv4 prefixes are spread over 1.0.0.0 -
//! 223.255.255.255; IPv6 ones under the regional registries' /12s of 2000::/3, so that they
//! share upper bits as real tables do. Route `i` has next hop `i % 2^20 + 1`, which fits
//! every table here (rte_lpm6's next hops are 21 bits) and makes distinct routes' answers
//! distinct up to a million routes.
//!
//! Addresses are handled as [`Addr`]s: `u32` (host order) for IPv4, `[u8; 16]` (network
//! order) for IPv6, both convertible to a left-aligned `u128` for the arithmetic.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::net::IpAddr;

use crate::rng::SplitMix64;

/// An address family's address: IPv4 `u32` or IPv6 `[u8; 16]`.
pub trait Addr: Copy + Eq + Debug {
    /// Address length in bits (32 or 128).
    const BITS: u8;
    /// The address left-aligned in a u128 (an IPv4 address in the top 32 bits).
    fn to_bits(self) -> u128;
    /// The address from the top `BITS` bits of `bits`.
    fn from_bits(bits: u128) -> Self;
    /// For messages.
    fn ip(self) -> IpAddr;
}

impl Addr for u32 {
    const BITS: u8 = 32;
    fn to_bits(self) -> u128 {
        u128::from(self) << 96
    }
    fn from_bits(bits: u128) -> Self {
        (bits >> 96) as u32
    }
    fn ip(self) -> IpAddr {
        IpAddr::V4(self.into())
    }
}

impl Addr for [u8; 16] {
    const BITS: u8 = 128;
    fn to_bits(self) -> u128 {
        u128::from_be_bytes(self)
    }
    fn from_bits(bits: u128) -> Self {
        bits.to_be_bytes()
    }
    fn ip(self) -> IpAddr {
        IpAddr::V6(self.into())
    }
}

/// A route: `prefix/len` (host bits clear) via `next_hop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route<A> {
    pub prefix: A,
    pub len: u8,
    pub next_hop: u32,
}

/// Distinct next hops the generator hands out (1..=NEXT_HOPS).
pub const NEXT_HOPS: u32 = 1 << 20;

/// IPv4 prefix lengths and their weights per thousand (a BGP full table's shape).
pub const V4_MIX: &[(u8, u32)] = &[
    (8, 1),
    (9, 1),
    (10, 2),
    (11, 3),
    (12, 5),
    (13, 7),
    (14, 10),
    (15, 12),
    (16, 25),
    (17, 15),
    (18, 20),
    (19, 30),
    (20, 30),
    (21, 40),
    (22, 70),
    (23, 75),
    (24, 619),
    (25, 6),
    (26, 6),
    (27, 5),
    (28, 5),
    (29, 5),
    (30, 3),
    (31, 2),
    (32, 3),
];

/// IPv6 prefix lengths and their weights per thousand.
pub const V6_MIX: &[(u8, u32)] = &[
    (16, 2),
    (19, 2),
    (20, 3),
    (24, 5),
    (28, 10),
    (29, 30),
    (30, 10),
    (31, 5),
    (32, 110),
    (33, 10),
    (34, 10),
    (35, 10),
    (36, 30),
    (37, 10),
    (38, 15),
    (39, 15),
    (40, 60),
    (41, 10),
    (42, 20),
    (43, 10),
    (44, 80),
    (45, 20),
    (46, 40),
    (47, 40),
    (48, 375),
    (56, 10),
    (60, 5),
    (64, 40),
    (96, 2),
    (112, 1),
    (127, 2),
    (128, 8),
];

/// The top 12 bits of the IPv6 blocks prefixes are drawn from (2000::/12, 2400::/12,
/// 2600::/12, 2800::/12, 2a00::/12, 2c00::/12).
const V6_BLOCKS: [u128; 6] = [0x200, 0x240, 0x260, 0x280, 0x2a0, 0x2c0];

/// The first `len` bits set, left-aligned.
pub fn mask(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

fn random_u128(rng: &mut SplitMix64) -> u128 {
    u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())
}

/// A random IPv4 unicast address (1.0.0.0 - 223.255.255.255), left-aligned.
fn v4_space(rng: &mut SplitMix64) -> u128 {
    let first = 1 << 24;
    let end = 224u64 << 24;
    (u128::from(first + rng.below(end - first))) << 96
}

/// A random IPv6 address under one of [`V6_BLOCKS`].
fn v6_space(rng: &mut SplitMix64) -> u128 {
    let block = V6_BLOCKS[rng.below(V6_BLOCKS.len() as u64) as usize];
    block << 116 | random_u128(rng) >> 12
}

fn generate<A: Addr>(
    mix: &[(u8, u32)],
    space: fn(&mut SplitMix64) -> u128,
    count: usize,
    seed: u64,
) -> Result<Vec<Route<A>>, String> {
    let total: u32 = mix.iter().map(|&(_, w)| w).sum();
    let mut rng = SplitMix64::new(seed);
    let mut seen = HashSet::with_capacity(count);
    let mut routes = Vec::with_capacity(count);
    // Short lengths run out of distinct prefixes first; a draw that repeats a prefix draws a
    // length again, and far too many repeats mean the count does not fit the space.
    let mut tries = 0usize;
    while routes.len() < count {
        tries += 1;
        if tries > 4 * count + 10_000 {
            return Err(format!(
                "only {} distinct prefixes found for {count} routes: too many for this mix",
                routes.len()
            ));
        }
        let mut pick = rng.below(u64::from(total)) as u32;
        let mut len = mix[0].0;
        for &(l, w) in mix {
            if pick < w {
                len = l;
                break;
            }
            pick -= w;
        }
        let prefix = space(&mut rng) & mask(len);
        if seen.insert((prefix, len)) {
            routes.push(Route {
                prefix: A::from_bits(prefix),
                len,
                next_hop: routes.len() as u32 % NEXT_HOPS + 1,
            });
        }
    }
    Ok(routes)
}

/// `count` distinct IPv4 routes with the [`V4_MIX`] of lengths, in random order.
pub fn v4_routes(count: usize, seed: u64) -> Result<Vec<Route<u32>>, String> {
    generate(V4_MIX, v4_space, count, seed)
}

/// `count` distinct IPv6 routes with the [`V6_MIX`] of lengths, in random order.
pub fn v6_routes(count: usize, seed: u64) -> Result<Vec<Route<[u8; 16]>>, String> {
    generate(V6_MIX, v6_space, count, seed)
}

/// `count` destinations, each a random address inside a route picked uniformly at random:
/// every one has a route, and lookups spread over the whole table (and over memory) the
/// way a FIB's traffic spreads over its routes. Empty without routes.
pub fn destinations<A: Addr>(routes: &[Route<A>], count: usize, seed: u64) -> Vec<A> {
    if routes.is_empty() {
        return Vec::new();
    }
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| {
            let r = &routes[rng.below(routes.len() as u64) as usize];
            let host = random_u128(&mut rng) & !mask(r.len) & mask(A::BITS);
            A::from_bits(r.prefix.to_bits() | host)
        })
        .collect()
}

/// `count` addresses drawn from the whole address space, most of them outside every route.
pub fn anywhere<A: Addr>(count: usize, seed: u64) -> Vec<A> {
    let mut rng = SplitMix64::new(seed);
    (0..count)
        .map(|_| A::from_bits(random_u128(&mut rng)))
        .collect()
}

/// The tbl8 groups a table with a 24-bit first level and 8-bit levels below it needs for
/// `routes` (rte_lpm, rte_fib DIR24_8, rte_lpm6): one per distinct (level, the prefix bits
/// above that level) among the routes longer than /24.
pub fn tbl8_groups<A: Addr>(routes: &[Route<A>]) -> usize {
    let mut groups = HashSet::new();
    for r in routes.iter().filter(|r| r.len > 24) {
        let bits = r.prefix.to_bits();
        for level in 0..(r.len - 24).div_ceil(8) {
            let above = 24 + 8 * level;
            groups.insert((above, bits & mask(above)));
        }
    }
    groups.len()
}

/// The most tbl8 groups rte_fib6's trie reserves for `routes`: it counts, per added route
/// longer than /24, one group per byte past the covering route (or /24), without knowing
/// which groups other routes already hold.
pub fn tbl8_reserve<A: Addr>(routes: &[Route<A>]) -> usize {
    routes
        .iter()
        .filter(|r| r.len > 24)
        .map(|r| usize::from((r.len - 24).div_ceil(8)))
        .sum()
}

/// A plain longest-prefix match (one hash map per prefix length, longest first), the
/// reference the structures under test are checked against.
#[derive(Debug)]
pub struct Reference {
    by_len: Vec<(u8, HashMap<u128, u32>)>,
}

impl Reference {
    pub fn new<A: Addr>(routes: &[Route<A>]) -> Self {
        let mut by_len: Vec<(u8, HashMap<u128, u32>)> = Vec::new();
        for r in routes {
            let at = match by_len.iter().position(|(l, _)| *l == r.len) {
                Some(at) => at,
                None => {
                    by_len.push((r.len, HashMap::new()));
                    by_len.len() - 1
                }
            };
            by_len[at].1.insert(r.prefix.to_bits(), r.next_hop);
        }
        by_len.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
        Reference { by_len }
    }

    /// The next hop of the longest route holding `addr`.
    pub fn lookup<A: Addr>(&self, addr: A) -> Option<u32> {
        let bits = addr.to_bits();
        self.by_len
            .iter()
            .find_map(|(len, routes)| routes.get(&(bits & mask(*len))).copied())
    }
}

/// Shares of a route set's prefix lengths, for a report: (label, percent).
pub fn length_shares<A: Addr>(routes: &[Route<A>]) -> Vec<(String, f64)> {
    let bands: &[(u8, u8)] = if A::BITS == 32 {
        &[(0, 23), (24, 24), (25, 32)]
    } else {
        &[(0, 31), (32, 48), (49, 63), (64, 64), (65, 127), (128, 128)]
    };
    let n = routes.len().max(1) as f64;
    bands
        .iter()
        .map(|&(lo, hi)| {
            let count = routes.iter().filter(|r| (lo..=hi).contains(&r.len)).count();
            let label = if lo == hi {
                format!("/{lo}")
            } else {
                format!("/{lo}-/{hi}")
            };
            (label, 100.0 * count as f64 / n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(routes: &[Route<u32>], lo: u8, hi: u8) -> f64 {
        let n = routes.iter().filter(|r| (lo..=hi).contains(&r.len)).count();
        n as f64 / routes.len() as f64
    }

    #[test]
    fn the_mixes_weigh_a_thousand() {
        assert_eq!(V4_MIX.iter().map(|&(_, w)| w).sum::<u32>(), 1000);
        assert_eq!(V6_MIX.iter().map(|&(_, w)| w).sum::<u32>(), 1000);
    }

    #[test]
    fn v4_routes_are_distinct_clean_deterministic_and_shaped_like_bgp() {
        let routes = v4_routes(50_000, 7).unwrap();
        assert_eq!(routes.len(), 50_000);
        assert_eq!(routes, v4_routes(50_000, 7).unwrap());
        assert_ne!(routes[..100], v4_routes(100, 8).unwrap()[..]);
        let distinct: HashSet<(u32, u8)> = routes.iter().map(|r| (r.prefix, r.len)).collect();
        assert_eq!(distinct.len(), routes.len());
        for r in &routes {
            assert_eq!(r.prefix.to_bits() & !mask(r.len), 0, "{r:?} has host bits");
            assert!((1..224).contains(&(r.prefix >> 24)), "{r:?}");
            assert!((1..=NEXT_HOPS).contains(&r.next_hop));
        }
        assert!((0.58..0.66).contains(&share(&routes, 24, 24)));
        assert!((0.02..0.05).contains(&share(&routes, 25, 32)));
        assert!(share(&routes, 8, 15) > 0.02);
        // Every /25-/32 sits in its own /24 or shares one: tbl8 groups are needed.
        let groups = tbl8_groups(&routes);
        assert!(groups > 1000 && groups <= tbl8_reserve(&routes), "{groups}");
    }

    #[test]
    fn v6_routes_are_distinct_clean_and_mostly_32_to_48() {
        let routes = v6_routes(20_000, 3).unwrap();
        let distinct: HashSet<([u8; 16], u8)> = routes.iter().map(|r| (r.prefix, r.len)).collect();
        assert_eq!(distinct.len(), routes.len());
        for r in &routes {
            assert_eq!(r.prefix.to_bits() & !mask(r.len), 0, "{r:?} has host bits");
            assert_eq!(r.prefix[0] >> 5, 1, "{r:?} is outside 2000::/3");
        }
        let shares = length_shares(&routes);
        let get = |label: &str| shares.iter().find(|(l, _)| l == label).unwrap().1;
        assert!(get("/32-/48") > 80.0, "{shares:?}");
        assert!((3.0..5.0).contains(&get("/64")), "{shares:?}");
        assert!((0.4..1.5).contains(&get("/128")), "{shares:?}");
    }

    #[test]
    fn a_count_beyond_the_space_is_an_error() {
        // Only 6 * 16 IPv6 /16s exist under the blocks, and the mix has few short lengths,
        // but the /24-/128 space is ample: a large count still works...
        assert!(v6_routes(100_000, 1).is_ok());
        // ...while the IPv4 unicast space has fewer than 2^32 prefixes of all lengths.
        assert!(generate::<u32>(&[(8, 1)], v4_space, 300, 1).is_err());
    }

    #[test]
    fn destinations_fall_inside_their_routes() {
        let routes = v4_routes(2_000, 5).unwrap();
        let reference = Reference::new(&routes);
        let dests = destinations(&routes, 10_000, 9);
        assert_eq!(dests.len(), 10_000);
        assert!(dests.iter().all(|&d| reference.lookup(d).is_some()));
        let routes6 = v6_routes(2_000, 5).unwrap();
        let reference6 = Reference::new(&routes6);
        assert!(destinations(&routes6, 10_000, 9)
            .iter()
            .all(|&d| reference6.lookup(d).is_some()));
        assert!(destinations::<u32>(&[], 10, 1).is_empty());
    }

    #[test]
    fn the_reference_finds_the_longest_match() {
        let r = |p: [u8; 4], len, next_hop| Route {
            prefix: u32::from_be_bytes(p),
            len,
            next_hop,
        };
        let routes = [
            r([0, 0, 0, 0], 0, 1),
            r([10, 0, 0, 0], 8, 2),
            r([10, 1, 2, 0], 24, 3),
            r([10, 1, 2, 128], 25, 4),
        ];
        let reference = Reference::new(&routes);
        let at = |a: [u8; 4]| reference.lookup(u32::from_be_bytes(a));
        assert_eq!(at([192, 0, 2, 1]), Some(1));
        assert_eq!(at([10, 9, 9, 9]), Some(2));
        assert_eq!(at([10, 1, 2, 3]), Some(3));
        assert_eq!(at([10, 1, 2, 200]), Some(4));
        assert_eq!(Reference::new(&routes[1..]).lookup(0xc000_0201u32), None);
    }

    #[test]
    fn tbl8_counts_share_groups_per_level() {
        let r = |bits: u128, len| Route {
            prefix: bits.to_be_bytes(),
            len,
            next_hop: 1,
        };
        let base = 0x2001_0db8u128 << 96;
        // Two /48s under one /32: one group at /24 (bits 24-31), one at /32, two at /40.
        let routes = [r(base, 48), r(base | 1 << 88, 48), r(base, 24)];
        assert_eq!(tbl8_groups(&routes), 4);
        assert_eq!(tbl8_reserve(&routes), 6);
        let v4 = [Route {
            prefix: 0x0a00_0080u32,
            len: 25,
            next_hop: 1,
        }];
        assert_eq!((tbl8_groups(&v4), tbl8_reserve(&v4)), (1, 1));
    }
}
