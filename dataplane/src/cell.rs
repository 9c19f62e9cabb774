//! The one way the dataplane adds to a counter: each counter has a single writer (a worker,
//! or the one thread that owns it), so an add is a relaxed load and store, no locked
//! instruction; readers on other threads use relaxed loads.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Adds `n` to a counter that only the calling thread writes.
#[inline(always)]
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
}
