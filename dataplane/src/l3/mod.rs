//! L3: the router's tables and stages.
//!
//! - [`fib`]: longest-prefix match per VRF and family (where a route is looked up), updated
//!   in place by one writer while workers read without locks.
//! - [`table`]: the lazily committed atomic arrays the FIB is made of.

pub mod fib;
pub mod table;

pub use fib::{Fib4, Fib4Writer, Fib6, Fib6Writer, FibError, Match, MAX_NEXT_HOP, NO_ROUTE};
