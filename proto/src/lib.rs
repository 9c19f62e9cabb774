//! The `vswitch.v1` gRPC API shared by vswitchd and vsctl.

/// Generated messages, client and server for package `vswitch.v1`.
pub mod v1 {
    tonic::include_proto!("vswitch.v1");

    /// The encoded FileDescriptorSet of this package, for gRPC server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/vswitch_descriptor.bin"));
}
