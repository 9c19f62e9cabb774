//! Next hops (adjacencies): what a FIB entry's next-hop id means, one 64-bit word each, so
//! that one writer (the control thread) changes a next hop in place (a neighbour resolved,
//! its MAC changed, an interface went away) with a single store while workers read it
//! without a lock, and every route through it follows at once.
//!
//! ```text
//! word (u64):  63..58 kind | 57..48 interface | 47..0 destination MAC
//!              (kind Ecmp: 47..24 first member id, 7..0 member count;
//!               kind Tunnel: 31..0 the outer destination, IPv4, 0 for none)
//! ```
//! The source MAC and the MTU come from the output interface's plan, not from here.
//!
//! A route to a connected subnet names a [`NextHop::Resolve`] next hop on its interface:
//! its packets go to the slow path, which resolves the destination (ARP / ND) and installs
//! a host route (/32, /128) through a [`NextHop::Forward`] next hop for it. A route via a
//! gateway names the gateway's next hop, `Resolve` until the gateway is resolved. An ECMP
//! route names a group: `count` consecutive member ids from `first`, one chosen per flow.
//! A route out of an L3 tunnel (gre mode=l3, ipip: no Ethernet, so no neighbour to
//! resolve) names a [`NextHop::Tunnel`] next hop, ready at once.

use std::net::Ipv4Addr;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Relaxed, Release};

use super::table::{AtomicTable, MapFailed};
use crate::plan::IfIndex;
use crate::wire::ethernet::Mac;

/// Most members of an ECMP group.
pub const MAX_ECMP: usize = 16;

/// What a next hop does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextHop {
    /// No such next hop (or one being torn down): the packet is dropped as `no_route`.
    Invalid,
    /// Out of `iface` to `mac`.
    Forward { iface: IfIndex, mac: Mac },
    /// Out of `iface` once the neighbour is resolved: to the slow path meanwhile.
    Resolve { iface: IfIndex },
    /// To the router itself (one of its addresses): to the slow path.
    Local,
    /// Dropped on purpose (a blackhole route), counted as `no_route`.
    Drop,
    /// One of `count` consecutive next hops from `first`, by flow hash.
    Ecmp { first: u32, count: u8 },
    /// Into L3 tunnel `iface` (gre l3, ipip), whose packets carry no Ethernet header:
    /// nothing to resolve. `remote`: the route's IPv4 next-hop address, the outer
    /// destination of a point-to-multipoint ipip tunnel (None: the inner destination);
    /// a point-to-point tunnel sends to its own remote whatever this says.
    Tunnel {
        iface: IfIndex,
        remote: Option<Ipv4Addr>,
    },
}

const KIND_SHIFT: u32 = 58;
const IFACE_SHIFT: u32 = 48;
const MAC_MASK: u64 = (1 << 48) - 1;

impl NextHop {
    /// The word of a next hop.
    pub fn encode(self) -> u64 {
        let (kind, iface, low): (u64, IfIndex, u64) = match self {
            NextHop::Invalid => (0, 0, 0),
            NextHop::Forward { iface, mac } => (1, iface, mac_word(&mac)),
            NextHop::Resolve { iface } => (2, iface, 0),
            NextHop::Local => (3, 0, 0),
            NextHop::Drop => (4, 0, 0),
            NextHop::Ecmp { first, count } => (
                5,
                0,
                (u64::from(first & 0xff_ffff) << 24) | u64::from(count),
            ),
            NextHop::Tunnel { iface, remote } => (6, iface, u64::from(remote.map_or(0, u32::from))),
        };
        (kind << KIND_SHIFT) | (u64::from(iface & 0x3ff) << IFACE_SHIFT) | (low & MAC_MASK)
    }

    /// The next hop of a word.
    #[inline(always)]
    pub fn decode(w: u64) -> NextHop {
        let iface = word_iface(w);
        match w >> KIND_SHIFT {
            1 => NextHop::Forward {
                iface,
                mac: word_mac(w),
            },
            2 => NextHop::Resolve { iface },
            3 => NextHop::Local,
            4 => NextHop::Drop,
            5 => NextHop::Ecmp {
                first: ((w >> 24) & 0xff_ffff) as u32,
                count: (w & 0xff) as u8,
            },
            6 => NextHop::Tunnel {
                iface,
                remote: Some(Ipv4Addr::from(w as u32)).filter(|a| !a.is_unspecified()),
            },
            _ => NextHop::Invalid,
        }
    }
}

/// The interface field of a next hop's word.
#[inline(always)]
fn word_iface(w: u64) -> IfIndex {
    ((w >> IFACE_SHIFT) & 0x3ff) as IfIndex
}

/// A MAC as the low 48 bits of a word, first byte highest (a next hop's form of it).
#[inline(always)]
pub fn mac_word(m: &Mac) -> u64 {
    u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]])
}

/// The MAC in the low 48 bits of a word ([`mac_word`]'s inverse).
#[inline(always)]
pub fn word_mac(w: u64) -> Mac {
    let b = w.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

/// The next-hop table workers read.
#[derive(Debug)]
pub struct NextHops {
    words: AtomicTable<AtomicU64>,
}

impl NextHops {
    /// A table of `capacity` next hops, all invalid.
    pub fn new(capacity: u32) -> Result<NextHops, MapFailed> {
        Ok(NextHops {
            words: AtomicTable::new(capacity.max(1) as usize)?,
        })
    }

    /// Number of ids.
    pub fn capacity(&self) -> u32 {
        self.words.len() as u32
    }

    /// Next hop `id` (Invalid past the table).
    #[inline(always)]
    pub fn get(&self, id: u32) -> NextHop {
        self.words
            .get(id as usize)
            .map_or(NextHop::Invalid, |w| NextHop::decode(w.load(Relaxed)))
    }

    /// The output interface and destination MAC ([`mac_word`]'s form) of next hop `id` if
    /// it is a [`NextHop::Forward`] one, read without building a [`Mac`]: the forwarding
    /// loop writes the MAC from the word, so that it never goes through memory in pieces
    /// (two-byte stores read back as a four-byte load stall the store buffer:
    /// perf/results/2026-12-05-ipv4-1M-perf-record.txt).
    #[inline(always)]
    pub fn forward_of(&self, id: u32) -> Option<(IfIndex, u64)> {
        let w = self.words.get(id as usize)?.load(Relaxed);
        (w >> KIND_SHIFT == 1).then_some((word_iface(w), w & MAC_MASK))
    }

    /// Next hop `id`, with an ECMP group resolved to one member by `hash` (a flow's packets
    /// give the same hash, so they keep their member).
    #[inline(always)]
    pub fn resolve(&self, id: u32, hash: u32) -> NextHop {
        match self.get(id) {
            NextHop::Ecmp { first, count } if count > 0 => {
                // Multiply-shift maps the hash onto 0..count without a division.
                let pick = ((u64::from(hash) * u64::from(count)) >> 32) as u32;
                match self.get(first.wrapping_add(pick)) {
                    // A group does not nest.
                    NextHop::Ecmp { .. } => NextHop::Invalid,
                    nh => nh,
                }
            }
            NextHop::Ecmp { .. } => NextHop::Invalid,
            nh => nh,
        }
    }

    /// Sets next hop `id` (control thread only: the single writer). False past the table.
    pub fn set(&self, id: u32, nh: NextHop) -> bool {
        match self.words.get(id as usize) {
            Some(w) => {
                w.store(nh.encode(), Release);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip() {
        for nh in [
            NextHop::Invalid,
            NextHop::Forward {
                iface: 1023,
                mac: [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee],
            },
            NextHop::Resolve { iface: 7 },
            NextHop::Local,
            NextHop::Drop,
            NextHop::Ecmp {
                first: 0xff_fff0,
                count: 16,
            },
            NextHop::Tunnel {
                iface: 1023,
                remote: Some(Ipv4Addr::new(255, 254, 253, 252)),
            },
            NextHop::Tunnel {
                iface: 5,
                remote: None,
            },
        ] {
            assert_eq!(NextHop::decode(nh.encode()), nh);
        }
        assert_eq!(NextHop::decode(0), NextHop::Invalid);
        assert_eq!(NextHop::decode(u64::MAX), NextHop::Invalid);
    }

    #[test]
    fn forward_of_reads_forward_next_hops_only() {
        let t = NextHops::new(8).unwrap();
        let mac = [0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee];
        t.set(1, NextHop::Forward { iface: 1023, mac });
        t.set(2, NextHop::Resolve { iface: 3 });
        t.set(3, NextHop::Ecmp { first: 1, count: 1 });
        let (iface, w) = t.forward_of(1).unwrap();
        assert_eq!((iface, word_mac(w)), (1023, mac));
        assert_eq!(mac_word(&mac), w);
        for id in [0, 2, 3, 4, 8, u32::MAX] {
            assert_eq!(t.forward_of(id), None, "id {id}");
        }
    }

    #[test]
    fn ecmp_spreads_flows_and_keeps_each_on_one_member() {
        let t = NextHops::new(64).unwrap();
        for i in 0..4u32 {
            t.set(
                10 + i,
                NextHop::Forward {
                    iface: i as IfIndex,
                    mac: [2, 0, 0, 0, 0, i as u8],
                },
            );
        }
        t.set(
            1,
            NextHop::Ecmp {
                first: 10,
                count: 4,
            },
        );
        let mut seen = [0u32; 4];
        for flow in 0..4000u32 {
            let h = flow.wrapping_mul(0x9e37_79b9);
            let NextHop::Forward { iface, .. } = t.resolve(1, h) else {
                panic!("not a forward next hop");
            };
            assert_eq!(t.resolve(1, h), t.resolve(1, h));
            seen[usize::from(iface)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "uneven spread {seen:?}");
        // A group pointing past the table, or at a group, gives Invalid.
        t.set(2, NextHop::Ecmp { first: 1, count: 1 });
        assert_eq!(t.resolve(2, 0), NextHop::Invalid);
        assert_eq!(t.get(64), NextHop::Invalid);
        assert!(!t.set(64, NextHop::Local));
    }
}
