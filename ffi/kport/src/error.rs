//! Errors of opening and configuring kernel ports: what was asked of the kernel, for which
//! interface, and the kernel's own reason.

use std::io;

/// Why a kernel port could not be opened or configured.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No interface of that name in the namespace asked.
    #[error("interface {0} not found")]
    NotFound(String),
    /// A name the kernel cannot take (empty, too long, with a NUL or '/').
    #[error("invalid interface name {name:?}: {why}")]
    BadName { name: String, why: &'static str },
    /// Ring sizes the kernel would refuse or that cannot hold a 64 KiB frame.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A system call failed: `op` names it (`socket(AF_PACKET)`, `PACKET_VNET_HDR`, ...).
    #[error("{ifname}: kernel refused {op}: {source}")]
    Kernel {
        ifname: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Result with a kernel-port [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The kernel refused `op` on `ifname`; the reason is the calling thread's errno.
    pub(crate) fn last(ifname: &str, op: &'static str) -> Error {
        Error::Kernel {
            ifname: ifname.to_string(),
            op,
            source: io::Error::last_os_error(),
        }
    }
}

/// Maps an `io::Error` of `op` on `ifname` to an [`Error`] (for `map_err`).
pub(crate) fn kernel(ifname: &str, op: &'static str) -> impl FnOnce(io::Error) -> Error {
    let ifname = ifname.to_string();
    move |source| Error::Kernel { ifname, op, source }
}
