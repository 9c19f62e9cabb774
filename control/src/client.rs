//! A gRPC client of vswitchd over its unix socket.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use vswitch_proto::v1::vswitch_client::VswitchClient;

/// Largest message either side accepts: a Transaction of 100k MAC entries is ~5 MB, and
/// so is the reply listing them (gRPC's usual 4 MB limit is too small for tables).
pub const MAX_MESSAGE: usize = 256 << 20;

/// Where vswitchd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/vswitch/vswitchd.sock";

/// Connects to vswitchd's unix socket at `path`.
///
/// The error says which socket could not be reached and why.
pub async fn connect(path: &Path) -> anyhow::Result<VswitchClient<Channel>> {
    let socket: PathBuf = path.to_path_buf();
    // The URI is required by tonic but unused: the connector below dials the unix socket.
    let channel = Endpoint::try_from("http://[::]:50051")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { UnixStream::connect(&socket).await.map(TokioIo::new) }
        }))
        .await
        .map_err(|e| {
            let cause = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| e.to_string());
            anyhow::anyhow!("cannot connect to vswitchd at {}: {cause}", path.display())
        })?;
    Ok(VswitchClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}
