//! One EAL per test process, for the unit tests of this crate and of the crates above it
//! (the EAL can be initialised once per process).
//!
//! DPDK's EAL may not start for a non-root user (its runtime directory, /dev access,
//! locked memory, depending on the machine): every test that needs it begins with
//! [`require_eal!`], which skips the test with a message when the EAL did not start and
//! the process is not root, so that `cargo test` passes for a non-root user. As root, an
//! EAL that does not start fails the tests as before.

use std::sync::{Arc, OnceLock};

use crate::{Eal, Mempool};

static EAL: OnceLock<Result<Eal, String>> = OnceLock::new();

/// Returns from the calling test, saying so on stderr, if [`try_eal`] has no EAL.
#[cfg(test)]
macro_rules! require_eal {
    () => {
        if $crate::test_eal::try_eal().is_none() {
            return;
        }
    };
}
#[cfg(test)]
pub(crate) use require_eal;

/// Whether the process runs as root (effective uid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The test process's EAL (no hugepages, no PCI, its own file prefix), started on first
/// use. None, after printing why, when it did not start and the process is not root;
/// panics when it did not start as root.
pub fn try_eal() -> Option<&'static Eal> {
    let eal = EAL.get_or_init(|| {
        let args = crate::light_args("0", &format!("vsffi{}", std::process::id()));
        Eal::init(&args).map_err(|e| e.to_string())
    });
    match eal {
        Ok(eal) => Some(eal),
        Err(e) if !is_root() => {
            eprintln!("skipped: needs root for DPDK's EAL (as uid != 0 it failed: {e})");
            None
        }
        Err(e) => panic!("EAL init for tests: {e}"),
    }
}

/// The test process's EAL; call [`require_eal!`] first.
pub fn eal() -> &'static Eal {
    match try_eal() {
        Some(eal) => eal,
        None => panic!("no EAL: the test should have started with require_eal!()"),
    }
}

/// A fresh pool with no per-lcore cache, so in_use() is exact from any thread.
pub fn pool(name: &str, n: u32) -> Arc<Mempool> {
    Arc::new(Mempool::new(eal(), name, n, 0).expect("test mempool"))
}

/// [`pool`], or None (the test is then skipped, saying so) when there is no EAL.
pub fn try_pool(name: &str, n: u32) -> Option<Arc<Mempool>> {
    try_eal()?;
    Some(pool(name, n))
}
