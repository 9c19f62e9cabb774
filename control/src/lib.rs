//! The control plane: vswitchd's configuration model and gRPC service, and the client used
//! by vsctl.
//!
//! - [`options`]: vswitchd's command line and the EAL arguments derived from it.
//! - [`iface_spec`]: `TYPE KEY=VALUE...` validated into a port's devargs and queues.
//! - [`buffers`]: the classes of packet buffers (standard, jumbo) and the MTUs they carry.
//! - [`model`]: the desired state as a pure model; every change is staged on a copy of it.
//! - [`switch`]: the running switch: ports, plan, MAC table, carrying out what the model
//!   says.
//! - [`learner`]: the thread that applies MAC learning and ages MAC tables.
//! - [`slowpath`]: the thread that handles packets workers punt and injects replies.
//! - [`metrics`]: Prometheus text at `/metrics` (`--metrics ADDR:PORT`).
//! - [`state`]: the desired state (snapshot + fsync'd journal, restore at start).
//! - [`sessions`]: the session table's reaper; [`session_file`]: its sessions saved across
//!   a graceful restart.
//! - [`events`]: the event hub behind Watch (link, MAC learning, configuration changes).
//! - [`service`]: the gRPC service over the switch; [`client`]: the client side.

pub mod buffers;
pub mod client;
pub mod cpu_latency;
pub mod error;
pub mod events;
pub mod heap;
pub mod iface_spec;
pub mod learner;
pub mod metrics;
pub mod model;
pub mod names;
pub mod options;
pub mod router;
pub mod router_punts;
pub mod service;
pub mod session_file;
pub mod sessions;
pub mod slowpath;
pub mod state;
mod state_v1;
pub mod switch;
