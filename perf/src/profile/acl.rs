//! `acl`: packets for an ACL rule set. Rule j (of `rules`) permits UDP from its own /24
//! (10.x.y.0/24, distinct per rule) to 198.18.0.0/15, destination ports 1000-1999; rules match
//! in order, and every packet's source lies in exactly one rule's /24, so each packet matches
//! rule j (spread evenly over all rules) and the classifier must search the whole set. One
//! packet in 8 comes from 172.16.0.0/12, which no rule permits (the default: deny). The
//! rules, one per line in `vsctl acl add` syntax, are the profile's table (`--table-out`).

use super::addr::{MacPool, Udp4Flow};
use super::{frame, Params, Profile};
use crate::rng;
use crate::wire::ethernet::Mac;

/// Most rules (distinct /24s under 10.0.0.0/8).
pub const MAX_RULES: u64 = 1 << 16;
const STREAM_RULE: u64 = 0xac0;
const STREAM_HOST: u64 = 0xac1;

pub struct Acl {
    rules: u64,
    seed: u64,
    src: Mac,
    dst: Mac,
}

impl Acl {
    pub fn new(p: &Params) -> Self {
        Acl {
            rules: p.rules,
            seed: p.seed,
            src: MacPool::new(p.seed, 0).mac(0),
            dst: MacPool::new(p.seed, 1).mac(0),
        }
    }

    fn rule_net(j: u64) -> [u8; 3] {
        [10, (j >> 8) as u8, j as u8]
    }
}

impl Profile for Acl {
    fn write_frame(&self, index: u64, frame_len: usize, buf: &mut Vec<u8>) {
        let r = rng::keyed(self.seed, STREAM_RULE, index);
        let h = rng::keyed(self.seed, STREAM_HOST, index);
        let host = 1 + rng::below(h, 254) as u8;
        let src = if index % 8 == 7 {
            [172, 16 + rng::below(r, 16) as u8, (r >> 20) as u8, host]
        } else {
            let n = Self::rule_net(rng::below(r, self.rules));
            [n[0], n[1], n[2], host]
        };
        let flow = Udp4Flow {
            src,
            dst: [
                198,
                18 + (h >> 40) as u8 % 2,
                (h >> 32) as u8,
                (h >> 24) as u8,
            ],
            src_port: 1024 + rng::below(h >> 8, 60000) as u16,
            dst_port: 1000 + rng::below(r >> 16, 1000) as u16,
        };
        frame::udp4(buf, self.dst, self.src, &flow, index as u16, frame_len);
    }

    fn dst_macs(&self) -> Vec<Mac> {
        vec![self.dst]
    }

    fn table(&self) -> Option<String> {
        let mut s = String::new();
        for j in 0..self.rules {
            let n = Self::rule_net(j);
            s.push_str(&format!(
                "permit proto=udp src={}.{}.{}.0/24 dst=198.18.0.0/15 dport=1000-1999\n",
                n[0], n[1], n[2]
            ));
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn packets_spread_over_the_rules_and_some_match_none() {
        let a = Acl::new(&Params {
            rules: 1000,
            ..Params::default()
        });
        let mut buf = Vec::new();
        let (mut misses, mut rules) = (0, HashSet::new());
        for i in 0..16_000 {
            a.write_frame(i, 64, &mut buf);
            let (src, dport) = (&buf[26..30], u16::from_be_bytes([buf[36], buf[37]]));
            assert!((1000..2000).contains(&dport));
            assert!(buf[30] == 198 && (18..=19).contains(&buf[31]));
            match src[0] {
                10 => {
                    let j = u64::from(src[1]) << 8 | u64::from(src[2]);
                    assert!(j < 1000);
                    rules.insert(j);
                }
                172 => misses += 1,
                other => panic!("source {other}"),
            }
        }
        assert_eq!(misses, 2000);
        assert!(rules.len() > 990, "rules hit: {}", rules.len());
        let table = a.table().unwrap();
        assert_eq!(table.lines().count(), 1000);
        assert!(table.starts_with("permit proto=udp src=10.0.0.0/24 dst=198.18.0.0/15"));
    }
}
