//! L3: the router's tables and stages.
//!
//! - [`fib`]: longest-prefix match per VRF and family (where a route is looked up), updated
//!   in place by one writer while workers read without locks.
//! - [`nexthop`]: what a route's next-hop id means (a neighbour's MAC and interface, the
//!   slow path, an ECMP group), changed in place with one store.
//! - [`forward`]: the forwarding loop both IP versions share (two passes over a vector).
//! - [`ip4`]: the ip4-forward stage: validates, looks up, rewrites (TTL, checksum, MACs).
//! - [`ip6`]: the ip6-forward stage: validates, looks up, rewrites (hop limit, MACs).
//! - [`table`]: the lazily committed atomic arrays the FIB is made of.

pub mod fib;
pub mod forward;
pub mod ip4;
pub mod ip6;
pub mod nexthop;
pub mod table;

pub use fib::{Fib4, Fib4Writer, Fib6, Fib6Writer, FibError, Match, MAX_NEXT_HOP, NO_ROUTE};
pub use nexthop::{NextHop, NextHops, MAX_ECMP};
