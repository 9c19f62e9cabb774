//! Giving the heap's free memory back to the system after a large operation.
//!
//! glibc keeps memory freed in its arenas for reuse; after a transaction of a million
//! changes (applied or refused: the request, the staged copy and its diff are freed at once)
//! the daemon's RSS stayed hundreds of MB above what it holds (174 MB before a refused
//! 1M-change transaction, 582 MB after it: perf/results/2026-12-01-commit-cost.log).

/// Transactions of at least this many changes are followed by [`release_free_memory`].
pub const LARGE: usize = 10_000;

/// Returns free heap memory to the kernel (glibc's malloc_trim); a no-op elsewhere. Takes
/// milliseconds: call it after large operations only, off the async threads.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions: it takes glibc's arena locks itself and only
    // releases memory that no allocation holds.
    unsafe {
        libc::malloc_trim(0);
    }
}
