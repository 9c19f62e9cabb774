//! The dataplane: poll-mode workers and the packet graph they run.
//!
//! Where things happen:
//! - [`worker`]: the per-lcore poll loop (rx burst -> graph -> output flush; inject).
//! - [`graph`]: the stages and how vectors of packets move between them; per-packet
//!   metadata ([`graph::Meta`]).
//! - [`input`]: ethernet-input, where a received frame is parsed and classified by its
//!   interface's configuration (cross-connect, bridge, punt).
//! - [`l2`]: the l2-bridge stage (`l2/bridge.rs`: where a MAC is learned and looked up),
//!   the MAC table (`l2/fdb.rs`) and the learner (`l2/learn.rs`).
//! - [`l3`]: the router: the FIB (`l3/fib.rs`: where a route is looked up).
//! - [`tunnel`]: tunnel-decap and tunnel-encap (vxlan, geneve, gre, ipip over IPv4).
//! - [`acl`]: ACL rules, the classifier, and the in / out checks (`acl/filter.rs`).
//! - [`output`]: per-interface output buffers and transmission; software offloads.
//! - [`native`]: kernel-interface ports without DPDK (`driver=native`: AF_PACKET with
//!   virtio-net headers), received and sent by the workers.
//! - [`memif_port`]: memif ports without DPDK (the [`memif`] crate's protocol code).
//! - [`punt`], [`slowpath`]: the rings to and from the control thread.
//! - [`plan`]: the forwarding plan workers read (logical interfaces, rx queues, tx paths,
//!   bridges); published by the control thread as immutable snapshots.
//! - [`engine`]: starts workers on lcores, publishes plans and waits until every worker has
//!   seen one (so a removed port is no longer touched), stops workers.
//! - [`counters`]: per-worker counters: per interface, per stage, drops by stage and reason.
//! - [`wire`]: header views over bytes (Ethernet, checksums).
//! - [`poll`]: busy or adaptive polling. [`latency`]: per-worker rx -> tx histograms.

pub mod acl;
mod cell;
pub mod counters;
pub mod engine;
pub mod graph;
pub mod huge;
pub mod input;
pub mod l2;
pub mod l3;
pub mod latency;
pub mod memif_port;
pub mod nat;
pub mod native;
pub mod output;
pub mod plan;
pub mod poll;
pub mod punt;
pub mod slowpath;
pub mod tunnel;
pub mod vhost_port;
pub mod wire;
pub mod worker;

pub use counters::{DropReason, PortTotals, StageStats, WorkerStats};
pub use engine::Engine;
pub use graph::Stage;
pub use plan::{
    ForwardingPlan, IfIndex, IfacePlan, Input, MemifRef, NativeRef, Rx, RxQueue, Tx, VhostRef,
    WorkerPlan, MAX_IFACES,
};
pub use poll::PollMode;
