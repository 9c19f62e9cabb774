//! The `vswitch.v1.Vswitch` gRPC service: decodes requests, runs them on the switch (one at
//! a time, off the async threads) and encodes replies and errors.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tonic::{Request, Response, Status};
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::vswitch_server::Vswitch;

use crate::error::{ApiError, ApiResult};
use crate::switch::Switch;

/// The gRPC service over the shared switch.
#[derive(Clone)]
pub struct Service {
    switch: Arc<Mutex<Option<Switch>>>,
}

impl Service {
    /// Serves `switch`; `None` inside means it has shut down.
    pub fn new(switch: Arc<Mutex<Option<Switch>>>) -> Service {
        Service { switch }
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

fn required(field: &str, value: &str) -> ApiResult<()> {
    if value.is_empty() {
        return Err(ApiError::invalid(format!("{field} is required")));
    }
    Ok(())
}

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
        required("name", &r.name)?;
        required("type", &r.r#type)?;
        let args: BTreeMap<String, String> = r.args.into_iter().collect();
        self.run(move |sw| sw.add_iface(&r.name, &r.r#type, &args))
            .await
    }

    async fn delete_interface(
        &self,
        req: Request<pb::DeleteInterfaceRequest>,
    ) -> Result<Response<pb::DeleteInterfaceReply>, Status> {
        let r = req.into_inner();
        required("name", &r.name)?;
        self.run(move |sw| sw.del_iface(&r.name).map(|_| pb::DeleteInterfaceReply {}))
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
        required("name", &r.name)?;
        self.run(move |sw| sw.set_iface(&r.name, r.admin_up, r.mtu))
            .await
    }

    async fn add_xconnect(
        &self,
        req: Request<pb::AddXconnectRequest>,
    ) -> Result<Response<pb::Xconnect>, Status> {
        let r = req.into_inner();
        required("iface_a", &r.iface_a)?;
        required("iface_b", &r.iface_b)?;
        self.run(move |sw| sw.add_xconnect(&r.iface_a, &r.iface_b))
            .await
    }

    async fn delete_xconnect(
        &self,
        req: Request<pb::DeleteXconnectRequest>,
    ) -> Result<Response<pb::DeleteXconnectReply>, Status> {
        let r = req.into_inner();
        required("iface_a", &r.iface_a)?;
        self.run(move |sw| {
            sw.del_xconnect(&r.iface_a)
                .map(|_| pb::DeleteXconnectReply {})
        })
        .await
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
        required("name", &r.name)?;
        self.run(move |sw| sw.add_bridge(&r)).await
    }

    async fn delete_bridge(
        &self,
        req: Request<pb::DeleteBridgeRequest>,
    ) -> Result<Response<pb::DeleteBridgeReply>, Status> {
        let r = req.into_inner();
        required("name", &r.name)?;
        self.run(move |sw| sw.del_bridge(&r.name).map(|_| pb::DeleteBridgeReply {}))
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
        required("bridge", &r.bridge)?;
        required("iface", &r.iface)?;
        self.run(move |sw| sw.attach(&r)).await
    }

    async fn detach_bridge(
        &self,
        req: Request<pb::DetachBridgeRequest>,
    ) -> Result<Response<pb::Bridge>, Status> {
        let r = req.into_inner();
        required("bridge", &r.bridge)?;
        required("iface", &r.iface)?;
        self.run(move |sw| sw.detach(&r.bridge, &r.iface)).await
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

    async fn add_fdb(
        &self,
        req: Request<pb::AddFdbRequest>,
    ) -> Result<Response<pb::FdbEntry>, Status> {
        let r = req.into_inner();
        required("bridge", &r.bridge)?;
        required("mac", &r.mac)?;
        required("iface", &r.iface)?;
        self.run(move |sw| sw.fdb_add(&r)).await
    }

    async fn delete_fdb(
        &self,
        req: Request<pb::DeleteFdbRequest>,
    ) -> Result<Response<pb::DeleteFdbReply>, Status> {
        let r = req.into_inner();
        required("bridge", &r.bridge)?;
        required("mac", &r.mac)?;
        self.run(move |sw| sw.fdb_del(&r).map(|_| pb::DeleteFdbReply {}))
            .await
    }

    async fn flush_fdb(
        &self,
        req: Request<pb::FlushFdbRequest>,
    ) -> Result<Response<pb::FlushFdbReply>, Status> {
        let r = req.into_inner();
        required("bridge", &r.bridge)?;
        self.run(move |sw| {
            sw.fdb_flush(&r.bridge, &r.iface)
                .map(|removed| pb::FlushFdbReply { removed })
        })
        .await
    }
}
