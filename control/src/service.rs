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
use crate::model;
use crate::switch::Switch;

/// Most changes in one Transaction.
pub const MAX_CHANGES: usize = 1_000_000;

/// The gRPC service over the shared switch.
#[derive(Clone)]
pub struct Service {
    switch: Arc<Mutex<Option<Switch>>>,
    events: Arc<Events>,
    /// Turns true when the daemon stops: Watch streams end then (the server waits for open
    /// streams before it returns).
    stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl Service {
    /// Serves `switch`; `None` inside means it has shut down.
    pub fn new(switch: Arc<Mutex<Option<Switch>>>, events: Arc<Events>) -> Service {
        Service {
            switch,
            events,
            stop: None,
        }
    }

    /// Ends every Watch stream when `stop` turns true.
    pub fn with_stop(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Service {
        self.stop = Some(stop);
        self
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

/// The service, with every RPC of one shape written once:
/// - `change`: the request is one change (`C::Variant(request)`), run as a transaction;
///   the reply is built from the switch after it (`|sw, request, outcome| reply`);
/// - `read`: the reply is read from the switch (`|sw, request| reply`);
///
/// and the RPCs of their own shape (Transaction, Watch) after them as they are.
macro_rules! service {
    (
        change { $( $cm:ident($creq:ident) -> $crep:ident = $variant:ident,
                    |$csw:ident, $cr:ident, $co:pat_param| $cbody:expr; )* }
        read { $( $rm:ident($rreq:ident) -> $rrep:ident, |$rsw:ident, $rr:pat_param| $rbody:expr; )* }
        $($rest:tt)*
    ) => {
        #[tonic::async_trait]
        impl Vswitch for Service {
            $(
                async fn $cm(
                    &self,
                    req: Request<pb::$creq>,
                ) -> Result<Response<pb::$crep>, Status> {
                    let $cr = req.into_inner();
                    let change = C::$variant($cr.clone());
                    self.change(change, move |$csw, $co| $cbody).await
                }
            )*
            $(
                async fn $rm(
                    &self,
                    req: Request<pb::$rreq>,
                ) -> Result<Response<pb::$rrep>, Status> {
                    let $rr = req.into_inner();
                    self.run(move |$rsw| $rbody).await
                }
            )*
            $($rest)*
        }
    };
}

service! {
    change {
        add_interface(AddInterfaceRequest) -> Interface = AddInterface,
            |sw, r, _| sw.get_iface(&r.name);
        delete_interface(DeleteInterfaceRequest) -> DeleteInterfaceReply = DeleteInterface,
            |_sw, _r, _| Ok(pb::DeleteInterfaceReply {});
        set_interface(SetInterfaceRequest) -> Interface = SetInterface,
            |sw, r, _| sw.get_iface(&r.name);
        add_xconnect(AddXconnectRequest) -> Xconnect = AddXconnect,
            |_sw, r, _| Ok(pb::Xconnect { iface_a: r.iface_a, iface_b: r.iface_b });
        delete_xconnect(DeleteXconnectRequest) -> DeleteXconnectReply = DeleteXconnect,
            |_sw, _r, _| Ok(pb::DeleteXconnectReply {});
        add_bridge(AddBridgeRequest) -> Bridge = AddBridge,
            |sw, r, _| sw.get_bridge(&r.name);
        delete_bridge(DeleteBridgeRequest) -> DeleteBridgeReply = DeleteBridge,
            |_sw, _r, _| Ok(pb::DeleteBridgeReply {});
        attach_bridge(AttachBridgeRequest) -> Bridge = AttachBridge,
            |sw, r, _| sw.get_bridge(&r.bridge);
        detach_bridge(DetachBridgeRequest) -> Bridge = DetachBridge,
            |sw, r, _| sw.get_bridge(&r.bridge);
        add_fdb(AddFdbRequest) -> FdbEntry = AddFdb,
            |sw, r, _| sw.fdb_get(&pb::GetFdbRequest { bridge: r.bridge, mac: r.mac, vlan: r.vlan });
        delete_fdb(DeleteFdbRequest) -> DeleteFdbReply = DeleteFdb,
            |_sw, _r, _| Ok(pb::DeleteFdbReply {});
        flush_fdb(FlushFdbRequest) -> FlushFdbReply = FlushFdb,
            |_sw, _r, o| Ok(pb::FlushFdbReply { removed: o.flushed.values().sum() });
        add_vrf(AddVrfRequest) -> Vrf = AddVrf,
            |sw, r, _| model::vrf::check_id(r.id).map(|id| model::vrf::to_pb(sw.model(), id));
        delete_vrf(DeleteVrfRequest) -> DeleteVrfReply = DeleteVrf,
            |_sw, _r, _| Ok(pb::DeleteVrfReply {});
        add_address(AddAddressRequest) -> Address = AddAddress,
            |sw, r, _| model::addr::get(sw.model(), &r.iface, &r.address);
        delete_address(DeleteAddressRequest) -> DeleteAddressReply = DeleteAddress,
            |_sw, _r, _| Ok(pb::DeleteAddressReply {});
        add_route(AddRouteRequest) -> Route = AddRoute,
            |sw, r, _| model::route::get(sw.model(), r.vrf, &r.prefix);
        delete_route(DeleteRouteRequest) -> DeleteRouteReply = DeleteRoute,
            |_sw, _r, _| Ok(pb::DeleteRouteReply {});
        add_neighbor(AddNeighborRequest) -> Neighbor = AddNeighbor,
            |sw, r, _| model::neigh::get(sw.model(), &r.iface, &r.ip);
        delete_neighbor(DeleteNeighborRequest) -> DeleteNeighborReply = DeleteNeighbor,
            |_sw, _r, _| Ok(pb::DeleteNeighborReply {});
        set_neighbor_config(SetNeighborConfigRequest) -> NeighborConfig = SetNeighborConfig,
            |sw, _r, _| Ok(model::neigh::config_pb(sw.model()));
        set_proxy_arp(SetProxyArpRequest) -> SetProxyArpReply = SetProxyArp,
            |_sw, r, _| Ok(pb::SetProxyArpReply { iface: r.iface, on: r.on });
        add_tunnel(AddTunnelRequest) -> Tunnel = AddTunnel,
            |sw, r, _| sw.get_tunnel(&r.name);
        delete_tunnel(DeleteTunnelRequest) -> DeleteTunnelReply = DeleteTunnel,
            |_sw, _r, _| Ok(pb::DeleteTunnelReply {});
        add_tunnel_fdb(AddTunnelFdbRequest) -> TunnelFdbEntry = AddTunnelFdb,
            |sw, r, _| model::tunnel::fdb_get(sw.model(), &r.tunnel, &r.mac);
        delete_tunnel_fdb(DeleteTunnelFdbRequest) -> DeleteTunnelFdbReply = DeleteTunnelFdb,
            |_sw, _r, _| Ok(pb::DeleteTunnelFdbReply {});
        add_acl(AddAclRequest) -> Acl = AddAcl, |sw, r, _| sw.get_acl(&r.name);
        set_acl(SetAclRequest) -> Acl = SetAcl, |sw, r, _| sw.get_acl(&r.name);
        delete_acl(DeleteAclRequest) -> DeleteAclReply = DeleteAcl,
            |_sw, _r, _| Ok(pb::DeleteAclReply {});
        bind_acl(BindAclRequest) -> AclBinding = BindAcl,
            |_sw, r, _| Ok(pb::AclBinding { iface: r.iface, acl: r.acl, direction: r.direction });
        unbind_acl(UnbindAclRequest) -> UnbindAclReply = UnbindAcl,
            |_sw, _r, _| Ok(pb::UnbindAclReply {});
        set_session_config(SetSessionConfigRequest) -> SessionConfig = SetSessionConfig,
            |sw, _r, _| Ok(sw.session_config());
        flush_sessions(FlushSessionsRequest) -> FlushSessionsReply = FlushSessions,
            |_sw, _r, o| Ok(pb::FlushSessionsReply { removed: o.sessions_flushed.values().sum() });
        add_service(AddServiceRequest) -> Service = AddService, |sw, r, _| sw.get_service(&r.name);
        set_service_backends(SetServiceBackendsRequest) -> Service = SetServiceBackends,
            |sw, r, _| sw.get_service(&r.name);
        delete_service(DeleteServiceRequest) -> DeleteServiceReply = DeleteService,
            |_sw, _r, _| Ok(pb::DeleteServiceReply {});
        set_masquerade(SetMasqueradeRequest) -> SetMasqueradeReply = SetMasquerade,
            |_sw, _r, _| Ok(pb::SetMasqueradeReply {});
        add_port_map(AddPortMapRequest) -> PortMap = AddPortMap,
            |sw, r, _| model::nat::portmap_get(sw.model(), &r.iface, &r.proto, r.port);
        delete_port_map(DeletePortMapRequest) -> DeletePortMapReply = DeletePortMap,
            |_sw, _r, _| Ok(pb::DeletePortMapReply {});
    }
    read {
        health(HealthRequest) -> HealthReply, |sw, _| Ok(sw.health());
        get_interface(GetInterfaceRequest) -> Interface,
            |sw, r| required("name", &r.name).and_then(|()| sw.get_iface(&r.name));
        list_interfaces(ListInterfacesRequest) -> ListInterfacesReply,
            |sw, _| Ok(pb::ListInterfacesReply { interfaces: sw.list_ifaces() });
        get_xconnect(GetXconnectRequest) -> Xconnect,
            |sw, r| required("iface", &r.iface).and_then(|()| sw.get_xconnect(&r.iface));
        list_xconnects(ListXconnectsRequest) -> ListXconnectsReply,
            |sw, _| Ok(pb::ListXconnectsReply { xconnects: sw.xconnects() });
        list_workers(ListWorkersRequest) -> ListWorkersReply,
            |sw, _| Ok(pb::ListWorkersReply { workers: sw.workers() });
        get_drops(GetDropsRequest) -> GetDropsReply,
            |sw, _| Ok(pb::GetDropsReply { drops: sw.drops().into_iter().collect() });
        list_mempools(ListMempoolsRequest) -> ListMempoolsReply,
            |sw, _| Ok(pb::ListMempoolsReply { mempools: sw.mempools() });
        get_runtime(GetRuntimeRequest) -> GetRuntimeReply, |sw, _| Ok(sw.runtime());
        get_bridge(GetBridgeRequest) -> Bridge,
            |sw, r| required("name", &r.name).and_then(|()| sw.get_bridge(&r.name));
        list_bridges(ListBridgesRequest) -> ListBridgesReply,
            |sw, _| Ok(pb::ListBridgesReply { bridges: sw.list_bridges() });
        list_fdb(ListFdbRequest) -> ListFdbReply,
            |sw, r| required("bridge", &r.bridge)
                .and_then(|()| sw.fdb_list(&r.bridge))
                .map(|entries| pb::ListFdbReply { entries });
        get_fdb(GetFdbRequest) -> FdbEntry,
            |sw, r| required("bridge", &r.bridge)
                .and_then(|()| required("mac", &r.mac))
                .and_then(|()| sw.fdb_get(&r));
        list_vrfs(ListVrfsRequest) -> ListVrfsReply,
            |sw, _| Ok(pb::ListVrfsReply { vrfs: model::vrf::list(sw.model()) });
        list_addresses(ListAddressesRequest) -> ListAddressesReply,
            |sw, r| model::addr::list(sw.model(), Some(r.iface.as_str()).filter(|i| !i.is_empty()))
                .map(|addresses| pb::ListAddressesReply { addresses });
        list_routes(ListRoutesRequest) -> ListRoutesReply,
            |sw, r| model::route::list(sw.model(), r.vrf)
                .map(|routes| pb::ListRoutesReply { routes });
        get_routes(GetRoutesRequest) -> GetRoutesReply,
            |sw, r| sw.route_get(&r).map(|routes| pb::GetRoutesReply { routes });
        list_neighbors(ListNeighborsRequest) -> ListNeighborsReply,
            |sw, r| model::neigh::list(sw.model(), Some(r.iface.as_str()).filter(|i| !i.is_empty()))
                .map(|mut neighbors| {
                    neighbors.extend(sw.learned_neighbors(Some(r.iface.as_str()).filter(|i| !i.is_empty())));
                    pb::ListNeighborsReply { neighbors }
                });
        get_neighbor_config(GetNeighborConfigRequest) -> NeighborConfig,
            |sw, _| Ok(model::neigh::config_pb(sw.model()));
        get_tunnel(GetTunnelRequest) -> Tunnel,
            |sw, r| required("name", &r.name).and_then(|()| sw.get_tunnel(&r.name));
        list_tunnels(ListTunnelsRequest) -> ListTunnelsReply,
            |sw, _| Ok(pb::ListTunnelsReply { tunnels: sw.list_tunnels() });
        list_tunnel_fdb(ListTunnelFdbRequest) -> ListTunnelFdbReply,
            |sw, r| required("tunnel", &r.tunnel)
                .and_then(|()| model::tunnel::fdb_list(sw.model(), &r.tunnel))
                .map(|entries| pb::ListTunnelFdbReply { entries });
        get_acl(GetAclRequest) -> Acl,
            |sw, r| required("name", &r.name).and_then(|()| sw.get_acl(&r.name));
        list_acls(ListAclsRequest) -> ListAclsReply,
            |sw, _| Ok(pb::ListAclsReply { acls: sw.list_acls() });
        get_session_config(GetSessionConfigRequest) -> SessionConfig,
            |sw, _| Ok(sw.session_config());
        list_sessions(ListSessionsRequest) -> ListSessionsReply, |sw, r| sw.list_sessions(&r);
        get_service(GetServiceRequest) -> Service,
            |sw, r| required("name", &r.name).and_then(|()| sw.get_service(&r.name));
        list_services(ListServicesRequest) -> ListServicesReply,
            |sw, _| Ok(pb::ListServicesReply { services: sw.list_services() });
        get_nat(GetNatRequest) -> Nat, |sw, _| Ok(sw.get_nat());
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
            let large = r.changes.len() >= crate::heap::LARGE;
            let result = sw
                .transaction(&r.changes)
                .map(|_| pb::TransactionReply { applied: n });
            if large {
                // The staged model and its diff are freed by now; the request (a million
                // changes take ~1 s to free) is freed after the answer, off the switch's
                // lock, and the heap trimmed then.
                tokio::task::spawn_blocking(move || {
                    drop(r);
                    crate::heap::release_free_memory();
                });
            }
            result
        })
        .await
    }

    type WatchStream = EventStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<EventStream>, Status> {
        let kinds = req.into_inner().kinds;
        for k in &kinds {
            if !["link", "fdb", "neighbor", "config"].contains(&k.as_str()) {
                return Err(ApiError::invalid(format!(
                    "kinds: unknown event kind {k:?} (link, fdb, neighbor, config)"
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
        let Some(stop) = self.stop.clone() else {
            return Ok(Response::new(Box::pin(stream)));
        };
        // The events, until the daemon stops (a None from the stop side ends the stream).
        let stopping = tokio_stream::wrappers::WatchStream::new(stop)
            .filter(|stopped| *stopped)
            .map(|_| None);
        let stream = stream
            .map(Some)
            .merge(stopping)
            .take_while(Option::is_some)
            .filter_map(|e| e);
        Ok(Response::new(Box::pin(stream)))
    }
}
