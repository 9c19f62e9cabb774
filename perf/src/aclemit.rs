//! ACL rule sets as the systems under test take them: `vsctl acl add` rule text for
//! vswitch, OpenFlow flows for OVS (`acl-gen`, used by perf/run.sh's ipv4-acl-* profiles).
//!
//! [`permit_set`] is the benchmark's rule set: `count` rules, the first `count - 1` of
//! [`crate::aclrules::rules`] (ClassBench-like shapes, deterministic by seed), every one with
//! action permit, then one catch-all `permit`. So every packet is permitted by some rule
//! (the classifier does its whole search; nothing is lost to the ACL), and the per-rule hit
//! counts of the switch add up to the packets.
//!
//! OpenFlow has no port ranges: a range becomes value/mask pairs ([`port_masks`]), and a
//! rule with both a source and a destination range becomes their cross product, one flow
//! per pair. A rule without prefixes matches both families in vswitch: it becomes an IPv4
//! flow and an IPv6 one.

use std::net::Ipv4Addr;

use vswitch_dataplane::acl::rule::{Action, Family, Rule};

use crate::aclrules::{self, ICMP, TCP, UDP};

/// The benchmark's rule set of `count` (>= 1) IPv4 rules: every rule permit, the last a
/// catch-all (see the module notes).
pub fn permit_set(count: usize, seed: u64) -> Vec<Rule> {
    let body = count.saturating_sub(1);
    let mut out: Vec<Rule> = if body == 0 {
        Vec::new()
    } else {
        aclrules::rules(body, Family::V4, seed)
            .into_iter()
            .map(normalise)
            .collect()
    };
    out.push(Rule::any(Action::Permit));
    out
}

/// `r` as permit, in a form both `vsctl` and OpenFlow can state: an ICMP code only with
/// an ICMP type (vsctl takes `icmp-code` only after `icmp-type`), else any code.
fn normalise(r: Rule) -> Rule {
    let mut r = Rule {
        action: Action::Permit,
        ..r
    };
    if r.proto == Some(ICMP) && r.sport == Rule::ANY_PORT {
        r.dport = Rule::ANY_PORT;
    }
    r
}

fn v4(addr: u128) -> Ipv4Addr {
    Ipv4Addr::from(addr as u32)
}

fn exact(range: (u16, u16)) -> Option<u16> {
    (range.0 == range.1).then_some(range.0)
}

/// The rule's `vsctl acl add` text, e.g. `permit proto=udp src=10.0.0.0/8 dport=53`.
pub fn vsctl_text(r: &Rule) -> String {
    let mut s = r.action.name().to_string();
    match r.proto {
        Some(TCP) => s.push_str(" proto=tcp"),
        Some(UDP) => s.push_str(" proto=udp"),
        Some(ICMP) => s.push_str(" proto=icmp"),
        Some(p) => s.push_str(&format!(" proto={p}")),
        None => {}
    }
    for (key, n) in [("src", &r.src), ("dst", &r.dst)] {
        if n.len > 0 {
            s.push_str(&format!(" {key}={}/{}", v4(n.addr), n.len));
        }
    }
    let range = |(a, b): (u16, u16)| {
        if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        }
    };
    match r.proto {
        Some(TCP | UDP) => {
            for (key, p) in [("sport", r.sport), ("dport", r.dport)] {
                if p != Rule::ANY_PORT {
                    s.push_str(&format!(" {key}={}", range(p)));
                }
            }
        }
        Some(ICMP) => {
            if let Some(t) = exact(r.sport) {
                s.push_str(&format!(" icmp-type={t}"));
                if let Some(c) = exact(r.dport) {
                    s.push_str(&format!(" icmp-code={c}"));
                }
            }
        }
        _ => {}
    }
    s
}

/// The inclusive port range `lo..=hi` as the fewest (value, mask) pairs that cover exactly
/// it (aligned power-of-two blocks; mask 0 matches any port). At most 30 pairs.
pub fn port_masks(lo: u16, hi: u16) -> Vec<(u16, u16)> {
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    let mut out = Vec::new();
    while lo <= hi {
        // The largest block that starts at lo (aligned) and ends within hi.
        let mut k = if lo == 0 {
            16
        } else {
            lo.trailing_zeros().min(16)
        };
        while lo + (1 << k) - 1 > hi {
            k -= 1;
        }
        out.push((lo as u16, (!((1u32 << k) - 1) & 0xffff) as u16));
        lo += 1 << k;
    }
    out
}

/// `field=value/mask` for a port pair, nothing for any port.
fn port_match(field: &str, (v, m): (u16, u16)) -> Option<String> {
    match m {
        0 => None,
        0xffff => Some(format!("{field}={v}")),
        _ => Some(format!("{field}={v:#x}/{m:#x}")),
    }
}

/// The OpenFlow matches (`ovs-ofctl` syntax, no priority or actions) that together match
/// what `r` matches (see the module notes).
pub fn openflow_matches(r: &Rule) -> Vec<String> {
    let both = r.src.len == 0 && r.dst.len == 0;
    let families: &[bool] = if both { &[false, true] } else { &[false] };
    let mut out = Vec::new();
    for &six in families {
        let mut base = match (r.proto, six) {
            (Some(TCP), false) => "tcp".to_string(),
            (Some(TCP), true) => "tcp6".to_string(),
            (Some(UDP), false) => "udp".to_string(),
            (Some(UDP), true) => "udp6".to_string(),
            (Some(ICMP), false) => "icmp".to_string(),
            // ICMP (v4) has no IPv6 twin: a rule with proto=icmp matches IPv4 only.
            (Some(ICMP), true) => continue,
            (Some(p), false) => format!("ip,nw_proto={p}"),
            (Some(p), true) => format!("ipv6,nw_proto={p}"),
            (None, false) => "ip".to_string(),
            (None, true) => "ipv6".to_string(),
        };
        for (key, n) in [("nw_src", &r.src), ("nw_dst", &r.dst)] {
            if n.len > 0 {
                base.push_str(&format!(",{key}={}/{}", v4(n.addr), n.len));
            }
        }
        match r.proto {
            Some(TCP | UDP) => {
                for s in port_masks(r.sport.0, r.sport.1) {
                    for d in port_masks(r.dport.0, r.dport.1) {
                        let mut m = base.clone();
                        for p in [port_match("tp_src", s), port_match("tp_dst", d)]
                            .into_iter()
                            .flatten()
                        {
                            m.push(',');
                            m.push_str(&p);
                        }
                        out.push(m);
                    }
                }
            }
            Some(ICMP) => {
                if let Some(t) = exact(r.sport) {
                    base.push_str(&format!(",icmp_type={t}"));
                    if let Some(c) = exact(r.dport) {
                        base.push_str(&format!(",icmp_code={c}"));
                    }
                }
                out.push(base);
            }
            _ => out.push(base),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;
    use vswitch_dataplane::acl::rule::Net;

    fn covers(pairs: &[(u16, u16)], p: u16) -> usize {
        pairs.iter().filter(|&&(v, m)| p & m == v).count()
    }

    #[test]
    fn port_masks_cover_exactly_the_range() {
        assert_eq!(port_masks(0, 65535), vec![(0, 0)]);
        assert_eq!(port_masks(80, 80), vec![(80, 0xffff)]);
        assert_eq!(
            port_masks(1024, 65535),
            vec![
                (1024, 0xfc00),
                (2048, 0xf800),
                (4096, 0xf000),
                (8192, 0xe000),
                (16384, 0xc000),
                (32768, 0x8000)
            ]
        );
        // 1000-1007, 1008-1023, 1024-1535, 1536-1791, 1792-1919, 1920-1983, 1984-1999.
        assert_eq!(port_masks(1000, 1999).len(), 7);
        // The worst case: 1..=65534 needs 2 x 15 blocks.
        assert_eq!(port_masks(1, 65534).len(), 30);
        let mut rng = SplitMix64::new(14);
        for _ in 0..300 {
            let a = rng.below(65536) as u16;
            let b = rng.below(65536) as u16;
            let (lo, hi) = (a.min(b), a.max(b));
            let pairs = port_masks(lo, hi);
            assert!(pairs.len() <= 30, "{lo}-{hi}: {}", pairs.len());
            for &(v, m) in &pairs {
                assert_eq!(v & !m, 0, "value {v:#x} has bits outside its mask {m:#x}");
            }
            for p in 0..=u16::MAX {
                let want = usize::from((lo..=hi).contains(&p));
                assert_eq!(covers(&pairs, p), want, "{lo}-{hi}: port {p}");
            }
        }
    }

    #[test]
    fn permit_set_is_permit_and_ends_with_a_catch_all() {
        assert_eq!(permit_set(1, 1), vec![Rule::any(Action::Permit)]);
        let r = permit_set(1000, 1);
        assert_eq!(r.len(), 1000);
        assert!(r.iter().all(|x| x.action == Action::Permit));
        assert_eq!(r[999], Rule::any(Action::Permit));
        assert_eq!(r, permit_set(1000, 1), "deterministic");
        // Varied shapes, as aclrules makes them.
        assert!(r
            .iter()
            .any(|x| x.proto == Some(TCP) && x.dport.0 != x.dport.1));
        assert!(r.iter().any(|x| x.proto == Some(ICMP)));
        assert!(r.iter().any(|x| x.proto.is_none()));
    }

    #[test]
    fn text_forms() {
        let r = Rule {
            action: Action::Permit,
            family: Some(Family::V4),
            proto: Some(UDP),
            src: Net {
                addr: 0x0a00_0000,
                len: 8,
            },
            dst: Net::ANY,
            sport: Rule::ANY_PORT,
            dport: (1000, 1999),
        };
        assert_eq!(
            vsctl_text(&r),
            "permit proto=udp src=10.0.0.0/8 dport=1000-1999"
        );
        let of = openflow_matches(&r);
        assert_eq!(of.len(), 7);
        assert_eq!(of[0], "udp,nw_src=10.0.0.0/8,tp_dst=0x3e8/0xfff8");
        let icmp = Rule {
            proto: Some(ICMP),
            src: Net::ANY,
            sport: (8, 8),
            dport: (0, 0),
            ..r
        };
        assert_eq!(
            vsctl_text(&icmp),
            "permit proto=icmp icmp-type=8 icmp-code=0"
        );
        assert_eq!(
            openflow_matches(&icmp),
            vec!["icmp,icmp_type=8,icmp_code=0"]
        );
        let telnet = Rule {
            family: None,
            proto: Some(TCP),
            dport: (23, 23),
            ..Rule::any(Action::Permit)
        };
        assert_eq!(vsctl_text(&telnet), "permit proto=tcp dport=23");
        assert_eq!(
            openflow_matches(&telnet),
            vec!["tcp,tp_dst=23", "tcp6,tp_dst=23"]
        );
        assert_eq!(vsctl_text(&Rule::any(Action::Permit)), "permit");
        assert_eq!(
            openflow_matches(&Rule::any(Action::Permit)),
            vec!["ip", "ipv6"]
        );
        // An ICMP code without a type is dropped (the rule matches any code).
        let n = normalise(Rule {
            sport: Rule::ANY_PORT,
            ..icmp
        });
        assert_eq!(n.dport, Rule::ANY_PORT);
    }
}
