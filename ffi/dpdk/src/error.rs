//! DPDK errors: the operation, DPDK's errno and its text.

use std::ffi::CStr;

/// An error from a DPDK call: which operation failed and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {reason}")]
pub struct Error {
    /// What was being done, e.g. `rte_dev_probe(net_af_packet0,iface=x)`.
    pub op: String,
    /// DPDK's (positive) errno value, 0 when there is none.
    pub errno: i32,
    /// A human-readable reason.
    pub reason: String,
}

/// Result with a DPDK [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error with a reason of our own (no DPDK errno).
    pub fn msg(op: impl Into<String>, reason: impl Into<String>) -> Self {
        Error {
            op: op.into(),
            errno: 0,
            reason: reason.into(),
        }
    }

    /// An error for a DPDK call that returned `ret` (negative errno, or -1 with rte_errno set).
    pub fn from_ret(op: impl Into<String>, ret: i32) -> Self {
        let errno = if ret == -1 || ret == 0 {
            current_errno()
        } else {
            ret.abs()
        };
        Error {
            op: op.into(),
            errno,
            reason: strerror(errno),
        }
    }

    /// An error for a DPDK call that reported failure through rte_errno (e.g. returned NULL).
    pub fn from_errno(op: impl Into<String>) -> Self {
        let errno = current_errno();
        Error {
            op: op.into(),
            errno,
            reason: strerror(errno),
        }
    }
}

/// The calling thread's rte_errno.
pub(crate) fn current_errno() -> i32 {
    // SAFETY: reads a thread-local integer; no preconditions.
    unsafe { dpdk_sys::vs_rte_errno() }
}

/// DPDK's text for an errno value (DPDK's own codes and libc's).
pub(crate) fn strerror(errno: i32) -> String {
    if errno == 0 {
        return "failed (DPDK's log says why)".to_string();
    }
    // SAFETY: rte_strerror returns a pointer to a NUL-terminated string that is static or
    // thread-local and valid until the next call on this thread; we copy it at once.
    let text = unsafe { CStr::from_ptr(dpdk_sys::rte_strerror(errno)) };
    text.to_string_lossy().into_owned()
}
