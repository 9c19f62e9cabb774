//! The plugin's side of vswitchd's gRPC API: one short connection per call of the plugin,
//! every change made in one Transaction (all or nothing).

use std::path::Path;
use std::time::Duration;

use tonic::transport::Channel;
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;
use vswitch_proto::v1::vswitch_client::VswitchClient;

use crate::error::{code, CniError, CniResult};

/// The longest the plugin waits for one answer of vswitchd (a runtime kills a plugin that
/// hangs; this makes it say why first).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One call's answer, as the generated client returns it.
type Reply<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>>>;

/// A connection to vswitchd, driven on a current-thread runtime.
pub struct Switch {
    rt: tokio::runtime::Runtime,
    client: VswitchClient<Channel>,
    socket: String,
}

/// The error of a call vswitchd refused, with its message.
fn refused(what: &str, s: &tonic::Status) -> CniError {
    let c = match s.code() {
        tonic::Code::InvalidArgument | tonic::Code::NotFound | tonic::Code::AlreadyExists => {
            code::INVALID_CONFIG
        }
        tonic::Code::ResourceExhausted | tonic::Code::Unavailable => code::TRY_AGAIN,
        _ => code::IO,
    };
    CniError::new(c, format!("vswitchd refused {what}: {}", s.message()))
}

impl Switch {
    /// Connects; the error (code 11, try again later) says which socket did not answer.
    pub fn connect(socket: &Path) -> CniResult<Switch> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CniError::new(code::IO, format!("cannot start a runtime: {e}")))?;
        let client = rt
            .block_on(async {
                tokio::time::timeout(CALL_TIMEOUT, vswitch_control::client::connect(socket)).await
            })
            .map_err(|_| anyhow::anyhow!("timed out"))
            .and_then(|r| r)
            .map_err(|e| {
                CniError::new(
                    code::TRY_AGAIN,
                    format!("vswitchd does not answer at {}", socket.display()),
                )
                .with_details(format!("{e:#}"))
            })?;
        Ok(Switch {
            rt,
            client,
            socket: socket.display().to_string(),
        })
    }

    /// Runs one call; vswitchd's refusal comes back as its status (for callers that tell
    /// codes apart), a time-out as the plugin's error.
    fn try_call<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(VswitchClient<Channel>) -> Reply<T>,
    ) -> CniResult<Result<T, tonic::Status>> {
        let client = self.client.clone();
        match self
            .rt
            .block_on(async { tokio::time::timeout(CALL_TIMEOUT, f(client)).await })
        {
            Ok(r) => Ok(r.map(tonic::Response::into_inner)),
            Err(_) => Err(CniError::new(
                code::TRY_AGAIN,
                format!(
                    "vswitchd at {} did not answer {what} in {CALL_TIMEOUT:?}",
                    self.socket
                ),
            )),
        }
    }

    fn call<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(VswitchClient<Channel>) -> Reply<T>,
    ) -> CniResult<T> {
        self.try_call(what, f)?.map_err(|s| refused(what, &s))
    }

    /// Interface `name`, or None if the switch has none of that name.
    pub fn interface(&mut self, name: &str) -> CniResult<Option<pb::Interface>> {
        let req = pb::GetInterfaceRequest { name: name.into() };
        match self.try_call("get interface", |mut c| {
            Box::pin(async move { c.get_interface(req).await })
        })? {
            Ok(i) => Ok(Some(i)),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(refused("get interface", &s)),
        }
    }

    pub fn health(&mut self) -> CniResult<pb::HealthReply> {
        self.call("health", |mut c| {
            Box::pin(async move { c.health(pb::HealthRequest {}).await })
        })
    }

    /// Bridge `name`, or None if the switch has none of that name.
    pub fn bridge(&mut self, name: &str) -> CniResult<Option<pb::Bridge>> {
        let bridges = self.call("list bridges", |mut c| {
            Box::pin(async move { c.list_bridges(pb::ListBridgesRequest {}).await })
        })?;
        Ok(bridges.bridges.into_iter().find(|b| b.name == name))
    }

    pub fn interfaces(&mut self) -> CniResult<Vec<pb::Interface>> {
        Ok(self
            .call("list interfaces", |mut c| {
                Box::pin(async move { c.list_interfaces(pb::ListInterfacesRequest {}).await })
            })?
            .interfaces)
    }

    /// The routes of VRF `vrf`.
    pub fn routes(&mut self, vrf: u32) -> CniResult<Vec<pb::Route>> {
        let req = pb::ListRoutesRequest { vrf: Some(vrf) };
        Ok(self
            .call("list routes", |mut c| {
                Box::pin(async move { c.list_routes(req).await })
            })?
            .routes)
    }

    /// Applies `changes` all or nothing.
    pub fn transaction(&mut self, what: &str, changes: Vec<C>) -> CniResult<()> {
        let req = pb::TransactionRequest {
            changes: changes
                .into_iter()
                .map(|c| pb::Change { change: Some(c) })
                .collect(),
        };
        self.call(what, |mut c| {
            Box::pin(async move { c.transaction(req).await })
        })
        .map(|_| ())
    }
}
