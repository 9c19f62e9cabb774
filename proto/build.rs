//! Compiles proto/vswitch/v1/*.proto with protox (a protobuf compiler in Rust), so the build
//! needs no protoc binary, and writes the descriptor set that server reflection serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/vswitch/v1/vswitch.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("vswitch_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    // The changes (and their requests) also have a JSON form: the state file's snapshot is
    // a list of them, `{"add_bridge": {"name": "br0", ...}}`, the journal's schema in JSON.
    tonic_build::configure()
        .message_attribute(
            ".",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(default, deny_unknown_fields)]",
        )
        .enum_attribute(
            ".",
            "#[derive(serde::Serialize, serde::Deserialize)] #[serde(rename_all = \"snake_case\")]",
        )
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
