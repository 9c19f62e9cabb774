//! A safe layer over the system DPDK (`dpdk-sys`).
//!
//! Ownership rules, which the types enforce:
//! - [`Eal`] is initialised once per process; everything else needs it.
//! - An [`Mbuf`] is owned by exactly one holder and freed when dropped.
//! - A [`Burst`] holds up to [`MAX_BURST`] mbufs; `rx` fills it, `tx` hands the sent ones to
//!   the device and keeps the rest, and dropping it frees whatever it still holds in bulk.
//! - An LPM or FIB table ([`Lpm4`], [`Lpm6`], [`Fib4`], [`Fib6`]) has one owner, which
//!   alone adds and deletes (`&mut self`); lookups take `&self`.
//! - An ACL context ([`Acl4`], [`Acl6`]: rte_acl) is built whole from its rules and then
//!   only read: classifying takes `&self`, from any number of threads.
//! - A [`Port`] is configured, started, stopped and closed by the control thread; workers use
//!   only [`PortQueue`]s, `Copy` names of a queue. What the types cannot enforce (one
//!   thread per queue, the port open meanwhile) is the `# Safety` contract of the unsafe
//!   [`Burst::rx`] / [`Burst::tx`].
//!
//! Every `unsafe` block here carries a `// SAFETY:` note. Unsafe is not confined to `ffi/`:
//! the dataplane calls the unsafe [`Burst::rx`] / [`Burst::tx`] (and publishes the plans
//! that make those calls sound), allocates its MAC table itself and makes a few libc
//! calls, each with its own `// SAFETY:` note.

pub mod acl;
mod eal;
mod error;
mod lcore;
pub mod lpm;
mod mbuf;
mod mempool;
pub mod offload;
mod port;
pub mod vhost;

pub use acl::{Acl, Acl4, Acl4Input, Acl6, Acl6Input, AclAlgorithm, AclPrefix, AclRule, AclTuple};
pub use eal::{light_args, Eal};
pub use error::{Error, Result};
pub use lcore::{launch, lcore_id, rdtsc, tsc_hz, wait_lcore, LaunchError};
pub use lpm::{heap_allocated, Fib4, Fib6, FibConfig, Lpm4, Lpm6};
pub use mbuf::{free_tokens, Burst, Drain, Fill, Mbuf, Parts, FILL_CHUNK, MAX_BURST};
pub use mempool::{ExtArea, Mempool, Token, DEFAULT_DATA_ROOM, HEADROOM};
pub use offload::{BurstSummary, MbufOffload};
pub use port::{LinkStatus, Port, PortConfig, PortQueue, PortStats, MAX_PORTS};
pub use vhost::{MemRegion, VhostDevice, VhostEvents, VhostQueue, VhostSocket};

pub mod test_eal;
