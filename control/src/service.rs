//! The `vswitch.v1.Vswitch` gRPC service: decodes requests, runs them on the switch (one at
//! a time, off the async threads) and encodes replies and errors. Every call that changes
//! something is a transaction of one change (see switch/txn.rs); `Transaction` runs many.

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;
use vswitch_proto::v1::vswitch_server::Vswitch;

use crate::error::{required, ApiError, ApiResult};
use crate::events::{self, Events};
use crate::switch::Switch;

/// Most changes in one Transaction.
pub const MAX_CHANGES: usize = 1_000_000;

/// The gRPC service over the shared switch.
#[derive(Clone)]
pub struct Service {
    switch: Arc<Mutex<Option<Switch>>>,
    events: Arc<Events>,
}

impl Service {
    /// Serves `switch`; `None` inside means it has shut down.
    pub fn new(switch: Arc<Mutex<Option<Switch>>>, events: Arc<Events>) -> Service {
        Service { switch, events }
    }

    /// Applies one change, then builds the reply from the switch as it is after it.
    async fn change<T, F>(&self, change: C, reply: F) -> Result<Response<T>, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut Switch, crate::switch::TxnOutcome) -> ApiResult<T> + Send + 'static,
    {
        self.run(move |sw| {
            let outcome = sw.transaction(&[pb::Change {
                change: Some(change),
            }])?;
            reply(sw, outcome)
        })
        .await
    }

    /// Runs `f` on the switch on a blocking thread (DPDK control calls can take
    /// milliseconds) with the switch's lock held.
    async fn run<T, F>(&self, f: F) -> Result<Response<T>, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut Switch) -> ApiResult<T> + Send + 'static,
    {
        let switch = self.switch.clone();
        let result: ApiResult<T> = tokio::task::spawn_blocking(move || {
            let mut guard = switch
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match guard.as_mut() {
                Some(sw) => f(sw),
                None => Err(ApiError::unavailable("vswitchd is shutting down")),
            }
        })
        .await
        .map_err(|e| Status::internal(format!("control task failed: {e}")))?;
        result.map(Response::new).map_err(Status::from)
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::Event, Status>> + Send>>;

#[tonic::async_trait]
impl Vswitch for Service {
    async fn health(
        &self,
        _: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthReply>, Status> {
        self.run(|sw| Ok(sw.health())).await
    }

    async fn add_interface(
        &self,
        req: Request<pb::AddInterfaceRequest>,
    ) -> Result<Response<pb::Interface>, Status> {
        let r = req.into_inner();
        let name = r.name.clone();
        self.change(C::AddInterface(r), move |sw, _| sw.get_iface(&name))
            .await
    }

    async fn delete_interface(
        &self,
        req: Request<pb::DeleteInterfaceRequest>,
    ) -> Result<Response<pb::DeleteInterfaceReply>, Status> {
        self.change(C::DeleteInterface(req.into_inner()), |_, _| {
            Ok(pb::DeleteInterfaceReply {})
        })
        .await
    }

    async fn get_interface(
        &self,
        req: Request<pb::GetInterfaceRequest>,
    ) -> Result<Response<pb::Interface>, Status> {
        let r = req.into_inner();
        required("name", &r.name)?;
        self.run(move |sw| sw.get_iface(&r.name)).await
    }

    async fn list_interfaces(
        &self,
        _: Request<pb::ListInterfacesRequest>,
    ) -> Result<Response<pb::ListInterfacesReply>, Status> {
        self.run(|sw| {
            Ok(pb::ListInterfacesReply {
                interfaces: sw.list_ifaces(),
            })
        })
        .await
    }

    async fn set_interface(
        &self,
        req: Request<pb::SetInterfaceRequest>,
    ) -> Result<Response<pb::Interface>, Status> {
        let r = req.into_inner();
        let name = r.name.clone();
        self.change(C::SetInterface(r), move |sw, _| sw.get_iface(&name))
            .await
    }

    async fn add_xconnect(
        &self,
        req: Request<pb::AddXconnectRequest>,
    ) -> Result<Response<pb::Xconnect>, Status> {
        let r = req.into_inner();
        let reply = pb::Xconnect {
            iface_a: r.iface_a.clone(),
            iface_b: r.iface_b.clone(),
        };
        self.change(C::AddXconnect(r), move |_, _| Ok(reply)).await
    }

    async fn delete_xconnect(
        &self,
        req: Request<pb::DeleteXconnectRequest>,
    ) -> Result<Response<pb::DeleteXconnectReply>, Status> {
        self.change(C::DeleteXconnect(req.into_inner()), |_, _| {
            Ok(pb::DeleteXconnectReply {})
        })
        .await
    }

    async fn get_xconnect(
        &self,
        req: Request<pb::GetXconnectRequest>,
    ) -> Result<Response<pb::Xconnect>, Status> {
        let r = req.into_inner();
        required("iface", &r.iface)?;
        self.run(move |sw| sw.get_xconnect(&r.iface)).await
    }

    async fn list_xconnects(
        &self,
        _: Request<pb::ListXconnectsRequest>,
    ) -> Result<Response<pb::ListXconnectsReply>, Status> {
        self.run(|sw| {
            Ok(pb::ListXconnectsReply {
                xconnects: sw.xconnects(),
            })
        })
        .await
    }

    async fn list_workers(
        &self,
        _: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersReply>, Status> {
        self.run(|sw| {
            Ok(pb::ListWorkersReply {
                workers: sw.workers(),
            })
        })
        .await
    }

    async fn get_drops(
        &self,
        _: Request<pb::GetDropsRequest>,
    ) -> Result<Response<pb::GetDropsReply>, Status> {
        self.run(|sw| {
            Ok(pb::GetDropsReply {
                drops: sw.drops().into_iter().collect(),
            })
        })
        .await
    }

    async fn list_mempools(
        &self,
        _: Request<pb::ListMempoolsRequest>,
    ) -> Result<Response<pb::ListMempoolsReply>, Status> {
        self.run(|sw| {
            Ok(pb::ListMempoolsReply {
                mempools: sw.mempools(),
            })
        })
        .await
    }

    async fn add_bridge(
        &self,
        req: Request<pb::AddBridgeRequest>,
    ) -> Result<Response<pb::Bridge>, Status> {
        let r = req.into_inner();
        let name = r.name.clone();
        self.change(C::AddBridge(r), move |sw, _| sw.get_bridge(&name))
            .await
    }

    async fn delete_bridge(
        &self,
        req: Request<pb::DeleteBridgeRequest>,
    ) -> Result<Response<pb::DeleteBridgeReply>, Status> {
        self.change(C::DeleteBridge(req.into_inner()), |_, _| {
            Ok(pb::DeleteBridgeReply {})
        })
        .await
    }

    async fn get_bridge(
        &self,
        req: Request<pb::GetBridgeRequest>,
    ) -> Result<Response<pb::Bridge>, Status> {
        let r = req.into_inner();
        required("name", &r.name)?;
        self.run(move |sw| sw.get_bridge(&r.name)).await
    }

    async fn list_bridges(
        &self,
        _: Request<pb::ListBridgesRequest>,
    ) -> Result<Response<pb::ListBridgesReply>, Status> {
        self.run(|sw| {
            Ok(pb::ListBridgesReply {
                bridges: sw.list_bridges(),
            })
        })
        .await
    }

    async fn attach_bridge(
        &self,
        req: Request<pb::AttachBridgeRequest>,
    ) -> Result<Response<pb::Bridge>, Status> {
        let r = req.into_inner();
        let name = r.bridge.clone();
        self.change(C::AttachBridge(r), move |sw, _| sw.get_bridge(&name))
            .await
    }

    async fn detach_bridge(
        &self,
        req: Request<pb::DetachBridgeRequest>,
    ) -> Result<Response<pb::Bridge>, Status> {
        let r = req.into_inner();
        let name = r.bridge.clone();
        self.change(C::DetachBridge(r), move |sw, _| sw.get_bridge(&name))
            .await
    }

    async fn list_fdb(
        &self,
        req: Request<pb::ListFdbRequest>,
    ) -> Result<Response<pb::ListFdbReply>, Status> {
        let r = req.into_inner();
        required("bridge", &r.bridge)?;
        self.run(move |sw| {
            sw.fdb_list(&r.bridge)
                .map(|entries| pb::ListFdbReply { entries })
        })
        .await
    }

    async fn get_fdb(
        &self,
        req: Request<pb::GetFdbRequest>,
    ) -> Result<Response<pb::FdbEntry>, Status> {
        let r = req.into_inner();
        required("bridge", &r.bridge)?;
        required("mac", &r.mac)?;
        self.run(move |sw| sw.fdb_get(&r)).await
    }

    async fn add_fdb(
        &self,
        req: Request<pb::AddFdbRequest>,
    ) -> Result<Response<pb::FdbEntry>, Status> {
        let r = req.into_inner();
        let get = pb::GetFdbRequest {
            bridge: r.bridge.clone(),
            mac: r.mac.clone(),
            vlan: r.vlan,
        };
        self.change(C::AddFdb(r), move |sw, _| sw.fdb_get(&get))
            .await
    }

    async fn delete_fdb(
        &self,
        req: Request<pb::DeleteFdbRequest>,
    ) -> Result<Response<pb::DeleteFdbReply>, Status> {
        self.change(C::DeleteFdb(req.into_inner()), |_, _| {
            Ok(pb::DeleteFdbReply {})
        })
        .await
    }

    async fn flush_fdb(
        &self,
        req: Request<pb::FlushFdbRequest>,
    ) -> Result<Response<pb::FlushFdbReply>, Status> {
        self.change(C::FlushFdb(req.into_inner()), |_, o| {
            Ok(pb::FlushFdbReply {
                removed: o.flushed.values().sum(),
            })
        })
        .await
    }

    async fn transaction(
        &self,
        req: Request<pb::TransactionRequest>,
    ) -> Result<Response<pb::TransactionReply>, Status> {
        let r = req.into_inner();
        if r.changes.is_empty() {
            return Err(
                ApiError::invalid("changes: a transaction needs at least one change").into(),
            );
        }
        if r.changes.len() > MAX_CHANGES {
            return Err(ApiError::invalid(format!(
                "changes: at most {MAX_CHANGES} in one transaction, not {}",
                r.changes.len()
            ))
            .into());
        }
        let n = r.changes.len() as u32;
        self.run(move |sw| {
            sw.transaction(&r.changes)
                .map(|_| pb::TransactionReply { applied: n })
        })
        .await
    }

    type WatchStream = EventStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<EventStream>, Status> {
        let kinds = req.into_inner().kinds;
        for k in &kinds {
            if !["link", "fdb", "config"].contains(&k.as_str()) {
                return Err(ApiError::invalid(format!(
                    "kinds: unknown event kind {k:?} (link, fdb, config)"
                ))
                .into());
            }
        }
        let rx = self.events.subscribe();
        let stream =
            tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |r| match r {
                Ok(e) if kinds.is_empty() || kinds.iter().any(|k| k == events::kind(&e)) => {
                    Some(Ok(e))
                }
                Ok(_) => None,
                Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(n)) => {
                    Some(Ok(pb::Event {
                        lost: n,
                        ..pb::Event::default()
                    }))
                }
            });
        Ok(Response::new(Box::pin(stream)))
    }
}
