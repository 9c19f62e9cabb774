//! What the dataplane's integration tests share.

use dpdk::Eal;

/// The EAL, or None when it did not start and the process is not root (DPDK's EAL may
/// need root): the test is then skipped, saying so. As root, a failure fails the test.
pub fn try_eal(args: &[String]) -> Option<Eal> {
    match Eal::init(args) {
        Ok(eal) => Some(eal),
        // SAFETY: geteuid has no preconditions and cannot fail.
        Err(e) if unsafe { libc::geteuid() } != 0 => {
            eprintln!("skipped: needs root for DPDK's EAL (as uid != 0 it failed: {e})");
            None
        }
        Err(e) => panic!("EAL init: {e}"),
    }
}
