//! The control plane: vswitchd's gRPC service and configuration, and the client used by
//! vsctl and vswitch-cni.

pub mod client;
