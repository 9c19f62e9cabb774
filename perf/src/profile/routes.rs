//! `routes` (IPv4) and `routes6` (IPv6): random destinations across a route table.
//!
//! The table is [`crate::routes`]' BGP-shaped route set for the seed (the one `fib-bench`
//! measures: IPv4 mostly /24 with /8-/23 and some /25-/32, IPv6 mostly /32-/48 with some
//! /64 and /128), of `--routes` prefixes, less every prefix that overlaps the benchmark's own
//! ranges ([`RESERVED_V4`], [`RESERVED_V6`]: the router's interface subnets, the packets'
//! sources, loopback), drawn further until `--routes` remain. The destinations are
//! [`crate::routes::destinations`] over that table: `--flows` of them, a random address in a
//! random route each, so every packet has a route and the lookups spread over the whole table.
//! Packet `i` is flow `i mod flows`: its source address and ports are [`FlowSet`]'s (IPv6:
//! the IPv4 source as the low 32 bits of fd00::/64), its destination the flow's. Frames go from
//! one host behind the input port (pool 0, MAC 0) to the router's MAC (`--router-mac`, by
//! default pool 1's MAC 0; the only destination MAC: `--dst-macs-out`). The table, one `PREFIX/LEN` per line, is the profile's
//! `--table-out`, for a benchmark to install as routes (all through one gateway: the per-packet
//! work is the same whichever route matches).
//!
//! `routes-syn`: the IPv4 table and destinations of `routes`, but every frame a TCP SYN
//! (no payload) of its flow's 5-tuple, for a benchmark of new connections: with `--count`
//! equal to `--flows`, every SYN in the file is a distinct 5-tuple (distinct sources).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::addr::{FlowSet, MacPool, Udp4Flow};
use super::{frame, Params, Profile};
use crate::rng;
use crate::routes::{self, mask, Addr, Route};
use crate::wire::ethernet::Mac;

/// Most routes in a table (either family).
pub const MAX_ROUTES: u64 = 1 << 21;
const STREAM_DEST: u64 = 0x7a2;

/// IPv4 ranges no route of the table overlaps (left-aligned prefix, length): 10.0.0.0/8 holds
/// the router's interface subnets and the packets' sources ([`FlowSet`]), 127.0.0.0/8 is
/// loopback, which a router drops (RFC 1812 §5.3.7).
pub const RESERVED_V4: &[(u128, u8)] = &[(0x0a << 120, 8), (0x7f << 120, 8)];
/// IPv6 ranges no route of the table overlaps: fd00::/8 holds the router's interface subnets
/// and the packets' sources (the table is drawn from 2000::/3 anyway).
pub const RESERVED_V6: &[(u128, u8)] = &[(0xfd << 120, 8)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

pub struct Routes {
    family: Family,
    /// The table, left-aligned (as [`Addr::to_bits`]).
    table: Vec<(u128, u8)>,
    /// One destination per flow, left-aligned.
    dests: Vec<u128>,
    src: Mac,
    router: Mac,
    flow_set: FlowSet,
    /// TCP SYNs instead of UDP datagrams (IPv4 only).
    syn: bool,
}

/// A route-set generator of [`crate::routes`]: `(count, seed) -> routes`.
type Draw<A> = fn(usize, u64) -> Result<Vec<Route<A>>, String>;

/// Whether two prefixes share an address (one holds the other).
fn overlaps(a: u128, a_len: u8, b: u128, b_len: u8) -> bool {
    (a ^ b) & mask(a_len.min(b_len)) == 0
}

/// `count` routes of `draw`'s set for `seed` that overlap none of `reserved`: the first
/// `count` such of a longer draw (a set's first n routes are the same whatever its size).
fn table<A: Addr>(
    draw: Draw<A>,
    count: usize,
    seed: u64,
    reserved: &[(u128, u8)],
) -> Vec<Route<A>> {
    let mut extra = count / 32 + 64;
    loop {
        let all = draw(count + extra, seed).unwrap_or_else(|e| panic!("route table: {e}"));
        let kept: Vec<Route<A>> = all
            .into_iter()
            .filter(|r| {
                !reserved
                    .iter()
                    .any(|&(p, l)| overlaps(r.prefix.to_bits(), r.len, p, l))
            })
            .take(count)
            .collect();
        if kept.len() == count {
            return kept;
        }
        extra *= 4;
    }
}

fn build<A: Addr>(
    draw: Draw<A>,
    p: &Params,
    reserved: &[(u128, u8)],
) -> (Vec<(u128, u8)>, Vec<u128>) {
    let t = table(draw, p.routes as usize, p.seed, reserved);
    let dests = routes::destinations(&t, p.flows as usize, rng::keyed(p.seed, STREAM_DEST, 0));
    (
        t.iter().map(|r| (r.prefix.to_bits(), r.len)).collect(),
        dests.into_iter().map(Addr::to_bits).collect(),
    )
}

impl Routes {
    pub fn new(p: &Params, family: Family) -> Self {
        let (table, dests) = match family {
            Family::V4 => build(routes::v4_routes, p, RESERVED_V4),
            Family::V6 => build(routes::v6_routes, p, RESERVED_V6),
        };
        Routes {
            family,
            table,
            dests,
            src: MacPool::new(p.seed, 0).mac(0),
            router: p
                .router_mac
                .unwrap_or_else(|| MacPool::new(p.seed, 1).mac(0)),
            flow_set: FlowSet::new(p.seed),
            syn: false,
        }
    }

    /// `routes-syn`: IPv4, every frame a TCP SYN.
    pub fn syn(p: &Params) -> Self {
        Routes {
            syn: true,
            ..Routes::new(p, Family::V4)
        }
    }

    fn ip(&self, bits: u128) -> IpAddr {
        match self.family {
            Family::V4 => IpAddr::V4(Ipv4Addr::from(u32::from_bits(bits))),
            Family::V6 => IpAddr::V6(Ipv6Addr::from(bits)),
        }
    }
}

/// The IPv6 source of a flow: fd00::/64 with the flow's IPv4 source as its low 32 bits.
fn source6(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[12..].copy_from_slice(&v4);
    a
}

impl Profile for Routes {
    fn write_frame(&self, index: u64, frame_len: usize, buf: &mut Vec<u8>) {
        let j = index % self.dests.len() as u64;
        let f = self.flow_set.flow(j);
        let dst = self.dests[j as usize];
        match self.family {
            Family::V4 => {
                let flow = Udp4Flow {
                    dst: u32::from_bits(dst).to_be_bytes(),
                    ..f
                };
                if self.syn {
                    let seq = rng::keyed(0, STREAM_DEST, index) as u32;
                    frame::tcp4_syn(
                        buf,
                        self.router,
                        self.src,
                        &flow,
                        index as u16,
                        seq,
                        frame_len,
                    );
                } else {
                    frame::udp4(buf, self.router, self.src, &flow, index as u16, frame_len);
                }
            }
            Family::V6 => frame::udp6(
                buf,
                self.router,
                self.src,
                (source6(f.src), dst.to_be_bytes()),
                (f.src_port, f.dst_port),
                frame_len,
            ),
        }
    }

    fn dst_macs(&self) -> Vec<Mac> {
        vec![self.router]
    }

    fn table(&self) -> Option<String> {
        let mut s = String::with_capacity(self.table.len() * 20);
        for &(prefix, len) in &self.table {
            s.push_str(&format!("{}/{len}\n", self.ip(prefix)));
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::Reference;
    use std::collections::HashSet;

    fn parse(line: &str) -> (u128, u8) {
        let (a, l) = line.split_once('/').unwrap();
        let bits = match a.parse::<IpAddr>().unwrap() {
            IpAddr::V4(a) => u32::from(a).to_bits(),
            IpAddr::V6(a) => u128::from(a),
        };
        (bits, l.parse().unwrap())
    }

    #[test]
    fn every_packet_has_a_route_of_the_table_and_none_is_reserved() {
        let p = Params {
            routes: 5000,
            flows: 20_000,
            ..Params::default()
        };
        for family in [Family::V4, Family::V6] {
            let r = Routes::new(&p, family);
            let table: Vec<(u128, u8)> = r.table().unwrap().lines().map(parse).collect();
            assert_eq!(table, r.table, "{family:?}: the text is the table");
            assert_eq!(table.len(), 5000);
            assert_eq!(table.iter().collect::<HashSet<_>>().len(), 5000);
            let reserved = match family {
                Family::V4 => RESERVED_V4,
                Family::V6 => RESERVED_V6,
            };
            assert!(table
                .iter()
                .all(|&(a, l)| reserved.iter().all(|&(p, pl)| !overlaps(a, l, p, pl))));
            let lens: HashSet<u8> = table.iter().map(|&(_, l)| l).collect();
            assert!(lens.len() > 10, "{family:?}: mixed lengths {lens:?}");
            let routes: Vec<Route<[u8; 16]>> = table
                .iter()
                .map(|&(prefix, len)| Route {
                    prefix: prefix.to_be_bytes(),
                    len,
                    next_hop: 1,
                })
                .collect();
            let reference = Reference::new(&routes);
            let mut buf = Vec::new();
            let mut dsts = HashSet::new();
            for i in 0..20_000 {
                r.write_frame(i, 64, &mut buf);
                assert_eq!(&buf[..6], &r.router);
                let dst = match family {
                    Family::V4 => {
                        assert_eq!((&buf[12..14], buf.len()), (&[8u8, 0][..], 60));
                        u32::from_be_bytes(buf[30..34].try_into().unwrap()).to_bits()
                    }
                    Family::V6 => {
                        assert_eq!((&buf[12..14], buf.len()), (&[0x86u8, 0xdd][..], 62));
                        assert_eq!(buf[22], 0xfd, "source in fd00::/8");
                        u128::from_be_bytes(buf[38..54].try_into().unwrap())
                    }
                };
                assert!(
                    reference.lookup(dst.to_be_bytes()).is_some(),
                    "{family:?} packet {i} to {dst:x} has no route"
                );
                dsts.insert(dst);
            }
            assert!(
                dsts.len() > 19_000,
                "{family:?}: {} destinations",
                dsts.len()
            );
        }
    }

    #[test]
    fn syn_frames_are_distinct_tcp_syns_with_routes() {
        let p = Params {
            routes: 1000,
            flows: 50_000,
            ..Params::default()
        };
        let r = Routes::syn(&p);
        let udp = Routes::new(&p, Family::V4);
        let mut buf = Vec::new();
        let mut ubuf = Vec::new();
        let mut tuples = HashSet::new();
        for i in 0..50_000 {
            r.write_frame(i, 64, &mut buf);
            udp.write_frame(i, 64, &mut ubuf);
            assert_eq!(buf.len(), 60);
            assert_eq!((buf[23], buf[47]), (6, 0x02), "TCP, SYN only");
            assert_eq!(&buf[16..18], &[0, 40], "IPv4 total length: no payload");
            assert_eq!(&buf[26..38], &ubuf[26..38], "routes' addresses and ports");
            tuples.insert(buf[26..38].to_vec());
        }
        assert_eq!(tuples.len(), 50_000, "every SYN its own 5-tuple");
    }

    #[test]
    fn the_router_mac_can_be_given() {
        let mac = [2, 0x70, 0x63, 0x61, 0x70, 0];
        let p = Params {
            routes: 10,
            flows: 10,
            router_mac: Some(mac),
            ..Params::default()
        };
        let r = Routes::new(&p, Family::V6);
        assert_eq!(r.dst_macs(), vec![mac]);
        let mut buf = Vec::new();
        r.write_frame(3, 64, &mut buf);
        assert_eq!(&buf[..6], &mac);
    }

    #[test]
    fn the_table_is_the_route_set_less_the_reserved_ranges() {
        let p = Params {
            routes: 3000,
            flows: 10,
            ..Params::default()
        };
        let r = Routes::new(&p, Family::V4);
        let set = routes::v4_routes(4000, p.seed).unwrap();
        let expect: Vec<(u128, u8)> = set
            .iter()
            .map(|r| (r.prefix.to_bits(), r.len))
            .filter(|&(a, l)| RESERVED_V4.iter().all(|&(p, pl)| !overlaps(a, l, p, pl)))
            .take(3000)
            .collect();
        assert_eq!(r.table, expect);
        assert!(overlaps(0x0a << 120, 8, 0x0a01 << 112, 16));
        assert!(overlaps(0x08 << 120, 6, 0x0a01 << 112, 16));
        assert!(!overlaps(0x0b << 120, 8, 0x0a01 << 112, 16));
    }
}
