//! ClassBench-like ACL rule sets and packet keys for classifier benchmarks
//! (`vswitch-aclbench`).
//!
//! A rule set is deterministic in (family, count, seed) and mixes the shapes ClassBench's
//! ACL and firewall seed files show (Taylor and Turner, "ClassBench: a packet
//! classification benchmark", INFOCOM 2005), rather than one shape repeated:
//!
//! - prefixes drawn from an address hierarchy (a few top-level blocks, a few sites under
//!   each, subnets under those), so rules nest and overlap as real ACLs do; lengths weighted
//!   like the ACL seeds: destinations mostly hosts (/32, IPv6 /128) and subnets (/24, /64),
//!   sources more often wildcards, some /16 (/48) and /8 (/32), a tenth of any length;
//! - protocols: TCP and UDP mostly, ICMP (ICMPv6) with a type and sometimes a code, some
//!   other protocols (GRE, ESP, OSPF) and some any-protocol rules;
//! - ports: source ports mostly any, else 1024-65535, a well-known port or a small range;
//!   destination ports mostly a well-known port, else any, 1024-65535, a small or a wide
//!   range;
//! - one rule in 20 (past the first 20) broadens an earlier rule (shorter prefixes, any
//!   source port), so some rules shadow or overlap others; no rule before the tail matches
//!   every packet (no "permit ip any any" in the body);
//! - the last twentieth are wildcard-heavy (one side any, protocol-only rules, and rules of
//!   both families such as "deny TCP any any port 23"), as ACLs end.
//!
//! Keys: 85% are drawn inside a random rule (its protocol, addresses inside its prefixes,
//! ports inside its ranges; that rule or an earlier one matches), 15% are random (addresses
//! half uniform, half from the rules' hierarchy; any protocol of the mix; random ports), so
//! some match nothing. No key is a later fragment.

use vswitch_dataplane::acl::rule::{Action, Family, Key, Net, Rule};

use crate::rng::SplitMix64;

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP: u8 = 1;
pub const ICMPV6: u8 = 58;
/// Protocols without ports in the mix: GRE, ESP, OSPF.
const OTHER_PROTOS: [u8; 3] = [47, 50, 89];

/// Destination ports of the exact-port rules (services ACLs name).
const WELL_KNOWN: [u16; 28] = [
    22, 23, 25, 53, 80, 110, 123, 143, 161, 179, 389, 443, 445, 465, 514, 587, 636, 993, 995, 1433,
    1521, 3306, 3389, 5060, 5432, 6379, 8080, 8443,
];

const ICMP_TYPES: [u16; 6] = [0, 3, 5, 8, 11, 13];
const ICMPV6_TYPES: [u16; 8] = [1, 2, 3, 4, 128, 129, 135, 136];

fn bits(family: Family) -> u8 {
    match family {
        Family::V4 => 32,
        Family::V6 => 128,
    }
}

fn icmp(family: Family) -> u8 {
    match family {
        Family::V4 => ICMP,
        Family::V6 => ICMPV6,
    }
}

/// The host-part mask of a /len in a `bits`-bit family.
fn host_mask(len: u8, bits: u8) -> u128 {
    let host = u32::from(bits - len.min(bits));
    match host {
        0 => 0,
        128.. => u128::MAX,
        h => (1u128 << h) - 1,
    }
}

/// Picks index i of `weights` with probability weights[i] / sum.
fn weighted(rng: &mut SplitMix64, weights: &[u64]) -> usize {
    let mut x = rng.below(weights.iter().sum());
    for (i, &w) in weights.iter().enumerate() {
        if x < w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// The address space rules and keys are drawn from: 8 top-level blocks, 16 sites in each,
/// 32 subnets in each site, hosts below (IPv4: /8, /16, /24, /32; IPv6: /32, /48, /64,
/// /128).
struct Hierarchy {
    family: Family,
    seed: u64,
}

impl Hierarchy {
    /// The (block, site, subnet) levels' lengths.
    fn levels(&self) -> [u8; 3] {
        match self.family {
            Family::V4 => [8, 16, 24],
            Family::V6 => [32, 48, 64],
        }
    }

    /// An address from the hierarchy: a random block, site, subnet and host.
    fn addr(&self, rng: &mut SplitMix64) -> u128 {
        let [l1, l2, l3] = self.levels();
        let b = bits(self.family);
        let block = rng.below(8);
        let site = rng.below(16);
        let subnet = rng.below(32);
        // Each level's value is a fixed random function of the path to it.
        let level = |stream: u64, width: u8| -> u128 {
            u128::from(crate::rng::keyed(
                self.seed,
                stream,
                block << 16 | site << 8 | subnet,
            )) & host_mask(128 - width, 128)
        };
        let top = match self.family {
            // Unicast-looking blocks: 1-223.
            Family::V4 => u128::from(1 + crate::rng::keyed(self.seed, 1, block) % 223),
            // Under 2000::/3.
            Family::V6 => {
                0x2000_0000
                    | u128::from(crate::rng::keyed(self.seed, 1, block) as u32 & 0x1fff_ffff)
            }
        };
        let site_bits = u128::from(crate::rng::keyed(self.seed, 2, block << 8 | site))
            & host_mask(128 - (l2 - l1), 128);
        let subnet_bits = level(3, l3 - l2);
        let host = random_bits(rng) & host_mask(l3, b);
        (top << (b - l1)) | (site_bits << (b - l2)) | (subnet_bits << (b - l3)) | host
    }
}

fn random_bits(rng: &mut SplitMix64) -> u128 {
    (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
}

/// A uniformly random address of the family.
fn uniform(rng: &mut SplitMix64, family: Family) -> u128 {
    random_bits(rng) & host_mask(0, bits(family))
}

/// A prefix length for a source (`src`) or destination, ClassBench-ACL-like.
fn prefix_len(rng: &mut SplitMix64, family: Family, src: bool) -> u8 {
    let b = bits(family);
    // any, /8 (/32), /16 (/48), /24 (/64), /28 (/96), host, any other length
    let lens = match family {
        Family::V4 => [0, 8, 16, 24, 28, 32],
        Family::V6 => [0, 32, 48, 64, 96, 128],
    };
    let weights: [u64; 7] = if src {
        [25, 3, 10, 25, 5, 22, 10]
    } else {
        [8, 2, 8, 30, 5, 37, 10]
    };
    match weighted(rng, &weights) {
        6 => 1 + rng.below(u64::from(b) - 1) as u8,
        i => lens[i],
    }
}

fn prefix(rng: &mut SplitMix64, h: &Hierarchy, len: u8) -> Net {
    let b = bits(h.family);
    Net {
        addr: h.addr(rng) & !host_mask(len, b),
        len,
    }
}

fn small_range(rng: &mut SplitMix64) -> (u16, u16) {
    let lo = rng.below(60_000) as u16;
    (lo, lo + 1 + rng.below(100) as u16)
}

fn source_ports(rng: &mut SplitMix64) -> (u16, u16) {
    match weighted(rng, &[80, 10, 5, 5]) {
        0 => Rule::ANY_PORT,
        1 => (1024, u16::MAX),
        2 => {
            let p = WELL_KNOWN[rng.below(WELL_KNOWN.len() as u64) as usize];
            (p, p)
        }
        _ => small_range(rng),
    }
}

fn destination_ports(rng: &mut SplitMix64) -> (u16, u16) {
    match weighted(rng, &[45, 25, 10, 15, 5]) {
        0 => {
            let p = WELL_KNOWN[rng.below(WELL_KNOWN.len() as u64) as usize];
            (p, p)
        }
        1 => Rule::ANY_PORT,
        2 => (1024, u16::MAX),
        3 => small_range(rng),
        _ => {
            let lo = rng.below(30_000) as u16;
            (lo, lo + 1000 + rng.below(30_000) as u16)
        }
    }
}

/// Protocol and port ranges (ICMP: type and code) of a body rule.
fn l4(rng: &mut SplitMix64, family: Family) -> (Option<u8>, (u16, u16), (u16, u16)) {
    match weighted(rng, &[55, 25, 7, 3, 10]) {
        0 => (Some(TCP), source_ports(rng), destination_ports(rng)),
        1 => (Some(UDP), source_ports(rng), destination_ports(rng)),
        2 => {
            let types: &[u16] = match family {
                Family::V4 => &ICMP_TYPES,
                Family::V6 => &ICMPV6_TYPES,
            };
            let t = types[rng.below(types.len() as u64) as usize];
            let code = if rng.below(5) == 0 {
                (0, 0)
            } else {
                Rule::ANY_PORT
            };
            let ty = if rng.below(7) == 0 {
                Rule::ANY_PORT
            } else {
                (t, t)
            };
            (Some(icmp(family)), ty, code)
        }
        3 => {
            let p = OTHER_PROTOS[rng.below(OTHER_PROTOS.len() as u64) as usize];
            (Some(p), Rule::ANY_PORT, Rule::ANY_PORT)
        }
        _ => (None, Rule::ANY_PORT, Rule::ANY_PORT),
    }
}

fn action(rng: &mut SplitMix64) -> Action {
    if rng.below(10) < 7 {
        Action::Permit
    } else {
        Action::Deny
    }
}

fn body_rule(rng: &mut SplitMix64, h: &Hierarchy) -> Rule {
    let (proto, sport, dport) = l4(rng, h.family);
    let src_len = prefix_len(rng, h.family, true);
    let mut dst_len = prefix_len(rng, h.family, false);
    if proto.is_none() && src_len == 0 && dst_len == 0 {
        // No "permit ip any any" in the body: it would end every search there.
        dst_len = h.levels()[2];
    }
    Rule {
        action: action(rng),
        family: Some(h.family),
        proto,
        src: prefix(rng, h, src_len),
        dst: prefix(rng, h, dst_len),
        sport,
        dport,
    }
}

/// A broader copy of `r`: both prefixes shortened by up to 8 bits (to no less than half
/// their length, so no prefix becomes a wildcard), any source port.
fn broaden(rng: &mut SplitMix64, r: &Rule, family: Family) -> Rule {
    let b = bits(family);
    let shorter = |rng: &mut SplitMix64, n: &Net| {
        let len = n.len.saturating_sub(rng.below(9) as u8).max(n.len / 2);
        Net {
            addr: n.addr & !host_mask(len, b),
            len,
        }
    };
    Rule {
        action: action(rng),
        src: shorter(rng, &r.src),
        dst: shorter(rng, &r.dst),
        sport: Rule::ANY_PORT,
        ..*r
    }
}

/// A wildcard-heavy rule of the tail.
fn tail_rule(rng: &mut SplitMix64, h: &Hierarchy) -> Rule {
    let [l1, l2, _] = h.levels();
    let wide = |rng: &mut SplitMix64| {
        let len = if rng.below(2) == 0 { l1 } else { l2 };
        prefix(rng, h, len)
    };
    let base = Rule {
        family: Some(h.family),
        ..Rule::any(action(rng))
    };
    match rng.below(4) {
        0 => Rule {
            proto: Some(if rng.below(2) == 0 { TCP } else { UDP }),
            dst: wide(rng),
            dport: if rng.below(2) == 0 {
                Rule::ANY_PORT
            } else {
                destination_ports(rng)
            },
            ..base
        },
        1 => Rule {
            src: wide(rng),
            ..base
        },
        2 => {
            // Both families: no prefixes.
            let p = WELL_KNOWN[rng.below(WELL_KNOWN.len() as u64) as usize];
            Rule {
                family: None,
                proto: Some(TCP),
                dport: (p, p),
                ..base
            }
        }
        _ => Rule {
            proto: Some(icmp(h.family)),
            ..base
        },
    }
}

/// `count` rules of `family`, in match order (see the module notes for their shapes).
pub fn rules(count: usize, family: Family, seed: u64) -> Vec<Rule> {
    let h = Hierarchy { family, seed };
    let mut rng = SplitMix64::new(seed ^ 0xac14 ^ u64::from(bits(family)));
    let tail = if count >= 20 { count / 20 } else { 0 };
    let mut out: Vec<Rule> = Vec::with_capacity(count);
    while out.len() < count - tail {
        let r = if out.len() >= 20 && rng.below(20) == 0 {
            let earlier = out[rng.below(out.len() as u64) as usize];
            broaden(&mut rng, &earlier, family)
        } else {
            body_rule(&mut rng, &h)
        };
        out.push(r);
    }
    while out.len() < count {
        out.push(tail_rule(&mut rng, &h));
    }
    out
}

/// A value inside the inclusive range.
fn within(rng: &mut SplitMix64, (lo, hi): (u16, u16)) -> u16 {
    lo + rng.below(u64::from(hi - lo) + 1) as u16
}

fn inside(rng: &mut SplitMix64, n: &Net, family: Family) -> u128 {
    let m = host_mask(n.len, bits(family));
    (n.addr & !m) | (uniform(rng, family) & m)
}

/// Whether packets of `proto` carry ports (or an ICMP type and code) in the key.
fn has_ports(proto: u8) -> bool {
    matches!(proto, TCP | UDP | ICMP | ICMPV6)
}

/// `count` packet keys of `family` for `rules` (see the module notes).
pub fn keys(rules: &[Rule], family: Family, count: usize, seed: u64) -> Vec<Key> {
    let h = Hierarchy { family, seed };
    let mut rng = SplitMix64::new(seed ^ 0x6b65_7973);
    (0..count)
        .map(|_| {
            if !rules.is_empty() && rng.below(100) < 85 {
                let r = &rules[rng.below(rules.len() as u64) as usize];
                let proto = r.proto.unwrap_or(match rng.below(3) {
                    0 => TCP,
                    1 => UDP,
                    _ => OTHER_PROTOS[rng.below(OTHER_PROTOS.len() as u64) as usize],
                });
                let (sport, dport) = if has_ports(proto) {
                    (within(&mut rng, r.sport), within(&mut rng, r.dport))
                } else {
                    (0, 0)
                };
                Key {
                    family,
                    proto,
                    src: inside(&mut rng, &r.src, family),
                    dst: inside(&mut rng, &r.dst, family),
                    sport,
                    dport,
                    later_fragment: false,
                }
            } else {
                let proto = match weighted(&mut rng, &[55, 25, 10, 10]) {
                    0 => TCP,
                    1 => UDP,
                    2 => icmp(family),
                    _ => OTHER_PROTOS[rng.below(OTHER_PROTOS.len() as u64) as usize],
                };
                let addr = |rng: &mut SplitMix64| {
                    if rng.below(2) == 0 {
                        uniform(rng, family)
                    } else {
                        h.addr(rng)
                    }
                };
                let (src, dst) = (addr(&mut rng), addr(&mut rng));
                let (sport, dport) = match proto {
                    TCP | UDP => (
                        1024 + rng.below(64_512) as u16,
                        if rng.below(2) == 0 {
                            WELL_KNOWN[rng.below(WELL_KNOWN.len() as u64) as usize]
                        } else {
                            rng.below(1 << 16) as u16
                        },
                    ),
                    ICMP | ICMPV6 => (rng.below(256) as u16, rng.below(16) as u16),
                    _ => (0, 0),
                };
                Key {
                    family,
                    proto,
                    src,
                    dst,
                    sport,
                    dport,
                    later_fragment: false,
                }
            }
        })
        .collect()
}

/// What a rule set is made of, for the report: shares of source and destination prefix
/// lengths (any, host, other), port kinds and protocols.
pub fn shape(rules: &[Rule], family: Family) -> String {
    let n = rules.len().max(1) as f64;
    let pct = |count: usize| format!("{:.0}%", 100.0 * count as f64 / n);
    let count = |f: &dyn Fn(&Rule) -> bool| rules.iter().filter(|r| f(r)).count();
    let b = bits(family);
    format!(
        "src any {} host {}; dst any {} host {}; TCP {} UDP {} ICMP {} other {} any-proto {}; \
         dport exact {} range {} any {}; both families {}",
        pct(count(&|r| r.src.len == 0)),
        pct(count(&|r| r.src.len == b)),
        pct(count(&|r| r.dst.len == 0)),
        pct(count(&|r| r.dst.len == b)),
        pct(count(&|r| r.proto == Some(TCP))),
        pct(count(&|r| r.proto == Some(UDP))),
        pct(count(&|r| r.proto == Some(icmp(family)))),
        pct(count(&|r| r
            .proto
            .is_some_and(|p| OTHER_PROTOS.contains(&p)))),
        pct(count(&|r| r.proto.is_none())),
        pct(count(&|r| r.dport.0 == r.dport.1)),
        pct(count(
            &|r| r.dport.0 != r.dport.1 && r.dport != Rule::ANY_PORT
        )),
        pct(count(&|r| r.dport == Rule::ANY_PORT)),
        pct(count(&|r| r.family.is_none())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use vswitch_dataplane::acl::rule::first_match;

    #[test]
    fn deterministic_and_of_the_family() {
        for family in [Family::V4, Family::V6] {
            let a = rules(1000, family, 7);
            assert_eq!(a, rules(1000, family, 7));
            assert_ne!(a, rules(1000, family, 8));
            assert_eq!(a.len(), 1000);
            let b = bits(family);
            for r in &a {
                assert!(r.family.is_none_or(|f| f == family));
                assert!(r.src.len <= b && r.dst.len <= b);
                assert_eq!(r.src.addr & host_mask(r.src.len, b), 0);
                assert_eq!(r.dst.addr & host_mask(r.dst.len, b), 0);
                assert!(r.sport.0 <= r.sport.1 && r.dport.0 <= r.dport.1);
            }
            assert_eq!(keys(&a, family, 100, 3), keys(&a, family, 100, 3));
        }
    }

    #[test]
    fn shapes_are_mixed() {
        for family in [Family::V4, Family::V6] {
            let r = rules(10_000, family, 1);
            let b = bits(family);
            let share =
                |f: &dyn Fn(&Rule) -> bool| r.iter().filter(|x| f(x)).count() * 100 / r.len();
            assert!((15..40).contains(&share(&|x| x.src.len == 0)));
            assert!((25..50).contains(&share(&|x| x.dst.len == b)));
            assert!((40..65).contains(&share(&|x| x.proto == Some(TCP))));
            assert!(share(&|x| x.proto.is_none()) >= 5);
            assert!(share(&|x| x.dport.0 != x.dport.1 && x.dport != Rule::ANY_PORT) >= 10);
            let lens: std::collections::HashSet<u8> = r.iter().map(|x| x.dst.len).collect();
            assert!(lens.len() > 20, "{} distinct lengths", lens.len());
        }
    }

    #[test]
    fn most_keys_match_and_some_do_not() {
        for family in [Family::V4, Family::V6] {
            let r = rules(1000, family, 5);
            let k = keys(&r, family, 10_000, 5);
            let hits = k.iter().filter(|k| first_match(&r, k).is_some()).count();
            assert!(hits > 8000 && hits < 10_000, "{hits} of 10000 match");
        }
    }
}
