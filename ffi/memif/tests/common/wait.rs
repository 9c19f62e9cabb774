//! Waiting on a condition in tests: polled every millisecond, a failure after 10 s naming
//! what was awaited. Included by the integration tests and by the crate's own
//! `malformed_tests`.

use std::time::{Duration, Instant};

/// Returns once `f` holds; panics with `what` after 10 s.
pub fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}
