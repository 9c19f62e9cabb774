//! The dataplane: poll-mode workers and what they forward by.
//!
//! - [`plan`]: the forwarding plan workers read (which rx queues each polls, where each
//!   port's packets go); published by the control thread as immutable snapshots.
//! - [`worker`]: the per-lcore poll loop (rx burst -> stage -> tx burst).
//! - [`engine`]: starts workers on lcores, publishes plans and waits until every worker has
//!   seen one (so a removed port is no longer touched), stops workers.
//! - [`counters`]: per-worker counters and the named drop reasons.
//! - [`poll`]: busy or adaptive polling.
//! - [`latency`]: per-worker rx -> tx latency histograms.

pub mod counters;
pub mod engine;
pub mod l2;
pub mod latency;
pub mod plan;
pub mod poll;
pub mod wire;
pub mod worker;

pub use counters::{DropReason, PortTotals, WorkerStats};
pub use engine::Engine;
pub use plan::{ForwardingPlan, RxAssignment, WorkerPlan};
pub use poll::PollMode;
