//! How vsctl talks to vswitchd: the connection, and gRPC errors turned into one-line messages.

use std::path::PathBuf;

use tonic::transport::Channel;
use tonic::{Response, Status};
use vswitch_control::client;
use vswitch_proto::v1::vswitch_client::VswitchClient;

use crate::output;

/// What every command needs: where vswitchd is and how to print.
pub struct Ctx {
    pub socket: PathBuf,
    pub json: bool,
}

impl Ctx {
    /// Connects to vswitchd. Commands parse their arguments first, so usage errors never
    /// depend on the daemon.
    pub async fn client(&self) -> anyhow::Result<VswitchClient<Channel>> {
        client::connect(&self.socket).await
    }

    /// What a mutating verb prints: the resulting object with `--json`, else nothing.
    pub fn changed<T: serde::Serialize>(&self, object: &T) -> anyhow::Result<String> {
        if self.json {
            output::json(object)
        } else {
            Ok(String::new())
        }
    }

    /// What a delete prints: `{}` with `--json`, else nothing.
    pub fn deleted(&self) -> String {
        if self.json {
            "{}\n".to_owned()
        } else {
            String::new()
        }
    }
}

/// The reply of a call, or an error whose message is the server's (which names the field).
pub fn reply<T>(result: Result<Response<T>, Status>) -> anyhow::Result<T> {
    result.map(Response::into_inner).map_err(status_error)
}

pub fn status_error(status: Status) -> anyhow::Error {
    if status.message().is_empty() {
        anyhow::anyhow!("{}", status.code().description())
    } else {
        anyhow::anyhow!("{}", status.message())
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn status_message_is_the_error() {
        let result: Result<Response<()>, Status> =
            Err(Status::not_found(r#"interface "x" not found"#));
        let err = reply(result).unwrap_err();
        assert_eq!(err.to_string(), r#"interface "x" not found"#);
    }

    #[test]
    fn empty_status_message_falls_back_to_the_code() {
        let err = status_error(Status::new(Code::Unavailable, ""));
        assert_eq!(err.to_string(), Code::Unavailable.description());
    }
}
