//! The desired state, as a pure model: interfaces, cross-connects, bridges, static MAC
//! entries, and the L3 configuration (VRFs, addresses, routes, static neighbours,
//! proxy-ARP), with no EAL, port or engine in it. Everything that changes the switch is a list
//! of [`pb::Change`]s staged here first.
//!
//! A transaction is staged on a copy of the model ([`Model::stage`]). The collections are
//! persistent maps (imbl's B-trees with structural sharing), so the copy costs nothing and
//! each change costs a path of nodes: staging k changes on a model of n entries costs
//! O(k log n), not O(n). A change that fails drops the copy: the model is as it was. A
//! staged transaction carries its [`Diff`], what the switch must do to make the dataplane
//! follow (ports to open, close and set, MAC-table entries, learner policies, plan,
//! events, whether to journal); the switch (switch/txn.rs) does it, then keeps the copy.
//!
//! One definition per resource, each in its own file: [`iface`] (interfaces and their
//! cross-connects, the L3 settings of interfaces and of bridges' routed interfaces
//! `bvi:BR`), [`bridge`] (bridges and members), [`fdb`] (static MAC entries), [`vrf`]
//! (VRFs), [`addr`] (interface addresses and their connected and local routes), [`route`]
//! (static routes and next-hop resolution), [`neigh`] (static neighbours, the neighbour
//! table's limits), [`tunnel`] (tunnels, interfaces without a port, and their MAC -> VTEP
//! entries), [`acl`] (ACLs and their bindings to interfaces; one rule in [`acl_rule`]),
//! [`service`] (services: VIPs over backends, NodePorts), [`nat`] (masquerade, port
//! mappings).
//! Each holds the resource's validation and staging, its persisted form (the changes that
//! re-create it, [`Model::changes`]: the snapshot is the journal's schema, and restore is
//! replay) and its proto form.
//!
//! The L3 part of a diff ([`L3Diff`]) is net: what the transaction changed, as lists of
//! VRFs, addresses, routes (per VRF and family, with resolved next-hops), neighbours and
//! interface settings added, replaced or removed, comparing each object touched with what
//! it was before the transaction (recorded by [`Staged`] on first touch). A dataplane
//! applies exactly those lists; an object changed and changed back is not in them.
//!
//! Thread safety: a `Model` is plain data (Send + Sync); the switch owns one, under its
//! lock, and stages copies of it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use imbl::{OrdMap, OrdSet};
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use crate::error::{ApiError, ApiResult};
use crate::iface_spec::IfaceSpec;

pub mod acl;
pub mod acl_rule;
pub mod addr;
pub mod bridge;
pub mod fdb;
pub mod iface;
pub mod ip;
pub mod nat;
pub mod neigh;
pub mod route;
pub mod service;
pub mod session;
pub mod tunnel;
pub mod vrf;

pub use addr::{AddrChange, AddrDelta};
pub use bridge::{Bridge, Member};
pub use fdb::{StaticEntry, StaticKey};
pub use iface::{Iface, IfaceL3};
pub use ip::{Cidr, Family, Prefix};
pub use neigh::{NeighConfig, NeighborDelta, NeighborEntry};
pub use route::{NextHop, Origin, Route, RouteDelta, RouteKey};
pub use vrf::VrfDelta;

/// What validation needs to know of the switch it models.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Directory relative vhost-user / memif socket names resolve under.
    pub run_dir: PathBuf,
    /// Slots in the MAC table (a bridge's learn-limit is at most this).
    pub fdb_capacity: u32,
}

/// The desired state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub(crate) ifaces: OrdMap<String, Arc<Iface>>,
    pub(crate) bridges: OrdMap<String, Arc<Bridge>>,
    /// Static MAC entries: (bridge id, VLAN, MAC) -> interface (and VTEP).
    pub(crate) statics: OrdMap<StaticKey, StaticEntry>,
    /// VRFs created (VRF 0, which always exists, is not listed).
    pub(crate) vrfs: OrdSet<u16>,
    /// Interface addresses: (L3 interface, address).
    pub(crate) addrs: OrdSet<(Arc<str>, Cidr)>,
    /// The routes of every VRF: static ones, and the connected and local routes of
    /// addresses.
    pub(crate) routes: OrdMap<RouteKey, Arc<Route>>,
    /// Static routes by gateway: (VRF, via, prefix), to find the routes an address's
    /// subnet resolves.
    pub(crate) by_gateway: OrdSet<(u16, IpAddr, Prefix)>,
    /// Static routes by the interfaces their next-hops resolve to: (interface, VRF,
    /// prefix).
    pub(crate) by_iface: OrdSet<(Arc<str>, u16, Prefix)>,
    /// Connected routes per (VRF, family, length): the lengths a gateway lookup probes.
    pub(crate) connected_lens: OrdMap<(u16, Family, u8), u32>,
    /// Static neighbours: (interface, IP) -> MAC.
    pub(crate) neighbors: OrdMap<(Arc<str>, IpAddr), [u8; 6]>,
    pub(crate) neigh_config: NeighConfig,
    /// Tunnels by their underlay: (VRF, local address, tunnel).
    pub(crate) tunnel_locals: OrdSet<(u16, IpAddr, Arc<str>)>,
    /// Tunnels' MAC -> VTEP entries: (tunnel, inner MAC) -> outer destination.
    pub(crate) vteps: OrdMap<(Arc<str>, [u8; 6]), IpAddr>,
    /// ACLs by name: their rules, in match order.
    pub(crate) acls: OrdMap<String, Arc<[acl_rule::RuleSpec]>>,
    /// ACL bindings: (interface, direction) -> ACL.
    pub(crate) acl_bindings: OrdMap<(Arc<str>, acl::Direction), Arc<str>>,
    /// The session table's settings.
    pub(crate) session_config: session::SessionSettings,
    /// Services by name.
    pub(crate) services: OrdMap<String, Arc<vswitch_dataplane::nat::ServiceSpec>>,
    /// Services by front: (VRF, protocol, VIP, port) -> name.
    pub(crate) service_fronts: OrdMap<service::Front, Arc<str>>,
    /// Services by NodePort: (VRF, protocol, port) -> name.
    pub(crate) service_nodeports: OrdMap<(u16, u8, u16), Arc<str>>,
    /// Interfaces (or `bvi:BR`) whose egress traffic is masqueraded.
    pub(crate) masquerade: OrdSet<Arc<str>>,
    /// Port mappings: (interface, protocol, port) -> (address, port).
    pub(crate) portmaps: OrdMap<nat::PortMapKey, (IpAddr, u16)>,
}

/// What the switch does on an interface's port, in the order the changes asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortOp {
    /// Open the port of interface `name` (added by change `index`, as `spec`: a later
    /// change of the same transaction may delete it again).
    Open {
        index: usize,
        name: String,
        spec: Box<IfaceSpec>,
    },
    /// Close the port of interface `name` once no worker uses it.
    Close { name: String },
    /// Set the MTU and/or link of `name` (change `index`).
    Set {
        index: usize,
        name: String,
        mtu: Option<u16>,
        admin_up: Option<bool>,
    },
}

/// What a transaction changed in the L3 configuration, net of changes undone within it:
/// what a FIB and neighbour table must do to follow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct L3Diff {
    pub vrfs: VrfDelta,
    /// VRF and proxy-ARP of L3 interfaces (interfaces and bridges' `bvi:BR`): added or
    /// changed (`Some`: as they are now), or removed (`None`). An interface deleted and
    /// added again in one transaction is listed (it is a new port).
    pub ifaces: Vec<(Arc<str>, Option<IfaceL3>)>,
    pub addresses: AddrDelta,
    /// Routes per (VRF, family), next-hops resolved to interfaces.
    pub routes: BTreeMap<(u16, Family), RouteDelta>,
    pub neighbors: NeighborDelta,
    /// The neighbour table's settings, when they changed.
    pub neighbor_config: Option<NeighConfig>,
}

impl L3Diff {
    /// Whether nothing L3 changed.
    pub fn is_empty(&self) -> bool {
        *self == L3Diff::default()
    }
}

/// What a staged transaction changed, for the switch to carry out.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// Port operations, in change order.
    pub ports: Vec<PortOp>,
    /// Static MAC keys touched, each with the last change that touched it (the entry's
    /// state in the staged model is what the MAC table must get).
    pub statics: BTreeMap<StaticKey, usize>,
    /// Learned entries to remove: (change index, key), checked against the MAC table.
    pub learned_removes: Vec<(usize, StaticKey)>,
    /// Learned-entry flushes: (change index, bridge id, only this interface).
    pub flushes: Vec<(usize, u16, Option<String>)>,
    /// Bridges whose learner policy or member list may have changed, by name.
    pub bridges: BTreeSet<String>,
    /// Bridge ids deleted (their MAC entries go).
    pub bridges_removed: Vec<u16>,
    /// The forwarding plan must be rebuilt.
    pub plan: bool,
    /// The desired state changed (there is something to journal).
    pub persistent: bool,
    /// Config events on success: (change name, object).
    pub events: Vec<(&'static str, String)>,
    /// The L3 configuration's changes.
    pub l3: L3Diff,
    /// ACLs whose rules were added or replaced (the switch builds them again) or which
    /// were deleted (it drops them): those still in the model are to be built.
    pub acls: BTreeSet<String>,
    /// The session table's settings changed (the switch applies the model's).
    pub sessions: bool,
    /// Session flushes: (change index, only this interface).
    pub session_flushes: Vec<(usize, Option<String>)>,
    /// Services added, whose backends were set, or deleted: the switch builds those still
    /// in the model again (if their spec changed) and drops the others.
    pub services: BTreeSet<String>,
}

/// A transaction staged on a copy of the model.
#[derive(Debug, Clone)]
pub struct Staged {
    pub model: Model,
    pub diff: Diff,
    /// The L3 objects touched so far, as they were before the transaction.
    track: Track,
    /// Gateways resolved so far ([`route::Gateways`]); emptied by every change that is not
    /// a static route's.
    gateways: route::Gateways,
    /// Updates of the static-route indexes made by a run of route changes, applied at its
    /// end ([`route::Pending`]).
    pending: route::Pending,
}

/// The L3 objects a transaction touched, each as it was before its first touch (`None`:
/// it did not exist): the base the net [`L3Diff`] is computed against.
#[derive(Debug, Clone, Default)]
struct Track {
    vrfs: BTreeMap<u16, bool>,
    ifaces: BTreeMap<Arc<str>, Option<IfaceL3>>,
    addrs: BTreeMap<(Arc<str>, Cidr), Option<u16>>,
    /// Every route set, in order: (key, route before, route after). A log rather than a
    /// map: a million routes are pushed in ~10 ms, and sorted once at the end
    /// ([`route::delta`]), where a map would take ~1 s of cache misses.
    routes: Vec<route::RouteSet>,
    neighbors: BTreeMap<(Arc<str>, IpAddr), Option<[u8; 6]>>,
    neigh_config: Option<NeighConfig>,
    /// L3 interfaces deleted in the transaction: one added again under the same name is a
    /// new port, so what it holds is listed again even if it looks the same.
    deleted: BTreeSet<Arc<str>>,
}

/// The name a change goes by in errors and events.
pub fn change_name(c: &C) -> &'static str {
    match c {
        C::AddInterface(_) => "add_interface",
        C::DeleteInterface(_) => "delete_interface",
        C::SetInterface(_) => "set_interface",
        C::AddXconnect(_) => "add_xconnect",
        C::DeleteXconnect(_) => "delete_xconnect",
        C::AddBridge(_) => "add_bridge",
        C::DeleteBridge(_) => "delete_bridge",
        C::AttachBridge(_) => "attach_bridge",
        C::DetachBridge(_) => "detach_bridge",
        C::AddFdb(_) => "add_fdb",
        C::DeleteFdb(_) => "delete_fdb",
        C::FlushFdb(_) => "flush_fdb",
        C::AddVrf(_) => "add_vrf",
        C::DeleteVrf(_) => "delete_vrf",
        C::AddAddress(_) => "add_address",
        C::DeleteAddress(_) => "delete_address",
        C::AddRoute(_) => "add_route",
        C::DeleteRoute(_) => "delete_route",
        C::AddNeighbor(_) => "add_neighbor",
        C::DeleteNeighbor(_) => "delete_neighbor",
        C::SetProxyArp(_) => "set_proxy_arp",
        C::SetNeighborConfig(_) => "set_neighbor_config",
        C::AddTunnel(_) => "add_tunnel",
        C::DeleteTunnel(_) => "delete_tunnel",
        C::AddTunnelFdb(_) => "add_tunnel_fdb",
        C::DeleteTunnelFdb(_) => "delete_tunnel_fdb",
        C::AddAcl(_) => "add_acl",
        C::SetAcl(_) => "set_acl",
        C::DeleteAcl(_) => "delete_acl",
        C::BindAcl(_) => "bind_acl",
        C::UnbindAcl(_) => "unbind_acl",
        C::SetSessionConfig(_) => "set_session_config",
        C::FlushSessions(_) => "flush_sessions",
        C::AddService(_) => "add_service",
        C::SetServiceBackends(_) => "set_service_backends",
        C::DeleteService(_) => "delete_service",
        C::SetMasquerade(_) => "set_masquerade",
        C::AddPortMap(_) => "add_port_map",
        C::DeletePortMap(_) => "delete_port_map",
    }
}

/// Whether a change is an action on the dataplane's tables (a flush) rather than a change
/// of the desired state: it is neither journaled nor part of a snapshot.
pub fn is_action(c: &C) -> bool {
    matches!(c, C::FlushFdb(_) | C::FlushSessions(_))
}

/// Names the failing change of a batch in its error (single changes keep their message).
pub fn in_change(e: ApiError, index: usize, total: usize, c: Option<&C>) -> ApiError {
    if total <= 1 {
        return e;
    }
    let what = c.map(change_name).unwrap_or("change");
    ApiError {
        code: e.code,
        message: format!(
            "change {} of {total} ({what}): {}; nothing was applied",
            index + 1,
            e.message
        ),
    }
}

impl Model {
    /// An empty model.
    pub fn new() -> Model {
        Model::default()
    }

    /// Stages `changes` in order on a copy of the model, each seeing the ones before it.
    /// On error the model is untouched, and the error names the failing change (for
    /// batches of more than one).
    pub fn stage(&self, changes: &[pb::Change], limits: &Limits) -> ApiResult<Staged> {
        let mut staged = Staged {
            model: self.clone(),
            diff: Diff::default(),
            track: Track::default(),
            gateways: route::Gateways::default(),
            pending: route::Pending::default(),
        };
        for (i, change) in changes.iter().enumerate() {
            let r = match change.change.as_ref() {
                Some(c) => staged.apply(i, c, limits),
                None => Err(ApiError::invalid("change is empty (no operation set)")),
            };
            r.map_err(|e| in_change(e, i, changes.len(), change.change.as_ref()))?;
        }
        staged.finish();
        Ok(staged)
    }

    /// The changes that build this model from an empty one, in order: the persisted form
    /// of every resource (the snapshot), each after what it depends on: VRFs, interfaces,
    /// bridges (with their routed interfaces' VRFs), members, static MACs, addresses,
    /// tunnels (after the addresses they start from) with their settings, memberships,
    /// static MACs, MAC -> VTEP entries and addresses, routes, neighbours, proxy-ARP, the
    /// neighbour table's settings, ACLs, their bindings to interfaces, the session
    /// table's settings, services (after the routes their backends need), masquerading
    /// interfaces and port mappings.
    pub fn changes(&self) -> Vec<C> {
        let mut out = Vec::new();
        vrf::persisted(self, &mut out);
        iface::persisted(self, &mut out);
        bridge::persisted(self, &mut out);
        fdb::persisted(self, &mut out);
        addr::persisted(self, &mut out);
        tunnel::persisted(self, &mut out);
        route::persisted(self, &mut out);
        neigh::persisted(self, &mut out);
        iface::persisted_proxy_arp(self, &mut out);
        neigh::persisted_config(self, &mut out);
        acl::persisted(self, &mut out);
        session::persisted(self, &mut out);
        service::persisted(self, &mut out);
        nat::persisted(self, &mut out);
        out
    }

    /// Applies `changes` (one transaction) and keeps the result: replay of a journal record.
    pub fn replay(&mut self, changes: &[pb::Change], limits: &Limits) -> ApiResult<()> {
        *self = self.stage(changes, limits)?.model;
        Ok(())
    }

    /// An interface.
    pub fn iface(&self, name: &str) -> ApiResult<&Arc<Iface>> {
        self.ifaces
            .get(name)
            .ok_or_else(|| ApiError::not_found(format!("interface {name:?} not found")))
    }

    /// Every interface, by name.
    pub fn ifaces(&self) -> impl Iterator<Item = (&String, &Arc<Iface>)> {
        self.ifaces.iter()
    }

    /// A bridge.
    pub fn bridge(&self, name: &str) -> ApiResult<&Arc<Bridge>> {
        self.bridges
            .get(name)
            .ok_or_else(|| ApiError::not_found(format!("bridge {name:?} not found")))
    }

    /// Every bridge, by name.
    pub fn bridges(&self) -> impl Iterator<Item = (&String, &Arc<Bridge>)> {
        self.bridges.iter()
    }

    /// The interface a static MAC entry points at, if it is one.
    pub fn static_entry(&self, key: &StaticKey) -> Option<&str> {
        self.statics.get(key).map(|s| &*s.iface)
    }

    /// The VTEP of a static MAC entry behind a tunnel, if it has one.
    pub fn static_remote(&self, key: &StaticKey) -> Option<IpAddr> {
        self.statics.get(key).and_then(|s| s.remote)
    }

    /// Static MAC entries in all.
    pub fn statics_len(&self) -> usize {
        self.statics.len()
    }

    /// About how many objects the model holds (interfaces, bridges and their members,
    /// static MAC entries, VRFs, addresses, routes, neighbours, ACLs and their bindings):
    /// the size of its persisted
    /// form in changes, counted in O(bridges).
    pub fn objects(&self) -> usize {
        self.ifaces.len()
            + self
                .bridges
                .values()
                .map(|b| 1 + b.members.len())
                .sum::<usize>()
            + self.statics.len()
            + self.vrfs.len()
            + self.addrs.len()
            + self.routes.len()
            + self.neighbors.len()
            + self.vteps.len()
            + self.acls.len()
            + self.acl_bindings.len()
            + self.services.len()
            + self.masquerade.len()
            + self.portmaps.len()
    }

    /// Records the MAC a driver gave an interface added without one, so that it is
    /// persisted (and a replay re-creates the interface with it).
    pub fn record_mac(&mut self, name: &str, mac: [u8; 6]) {
        if let Some(i) = self.ifaces.get_mut(name) {
            Arc::make_mut(i).spec.record_mac(mac);
        }
    }
}

impl Staged {
    /// Validates one change and makes it on the staged model, recording its effects.
    fn apply(&mut self, index: usize, c: &C, limits: &Limits) -> ApiResult<()> {
        let routes_only = matches!(c, C::AddRoute(_) | C::DeleteRoute(_));
        if !routes_only {
            // What gateways resolve to may change (addresses, interfaces, VRFs), and the
            // change may read the indexes of static routes.
            self.gateways.clear();
            route::flush(self);
        }
        self.pending.on = routes_only;
        let object = match c {
            C::AddInterface(r) => iface::add(self, index, r, limits)?,
            C::DeleteInterface(r) => iface::delete(self, r)?,
            C::SetInterface(r) => iface::set(self, index, r)?,
            C::AddXconnect(r) => iface::add_xconnect(self, r)?,
            C::DeleteXconnect(r) => iface::delete_xconnect(self, r)?,
            C::AddBridge(r) => bridge::add(self, r, limits)?,
            C::DeleteBridge(r) => bridge::delete(self, r)?,
            C::AttachBridge(r) => bridge::attach(self, r)?,
            C::DetachBridge(r) => bridge::detach(self, r)?,
            C::AddFdb(r) => fdb::add(self, index, r)?,
            C::DeleteFdb(r) => fdb::delete(self, index, r)?,
            C::FlushFdb(r) => fdb::flush(self, index, r)?,
            C::AddVrf(r) => vrf::add(self, r)?,
            C::DeleteVrf(r) => vrf::delete(self, r)?,
            C::AddAddress(r) => addr::add(self, r)?,
            C::DeleteAddress(r) => addr::delete(self, r)?,
            C::AddRoute(r) => route::add(self, r)?,
            C::DeleteRoute(r) => route::delete(self, r)?,
            C::AddNeighbor(r) => neigh::add(self, r)?,
            C::DeleteNeighbor(r) => neigh::delete(self, r)?,
            C::SetProxyArp(r) => iface::set_proxy_arp(self, r)?,
            C::SetNeighborConfig(r) => neigh::set_config(self, r)?,
            C::AddTunnel(r) => tunnel::add(self, r)?,
            C::DeleteTunnel(r) => tunnel::delete(self, r)?,
            C::AddTunnelFdb(r) => tunnel::add_fdb(self, r)?,
            C::DeleteTunnelFdb(r) => tunnel::delete_fdb(self, r)?,
            C::AddAcl(r) => acl::add(self, r)?,
            C::SetAcl(r) => acl::set(self, r)?,
            C::DeleteAcl(r) => acl::delete(self, r)?,
            C::BindAcl(r) => acl::bind(self, r)?,
            C::UnbindAcl(r) => acl::unbind(self, r)?,
            C::SetSessionConfig(r) => session::set_config(self, r)?,
            C::FlushSessions(r) => session::flush(self, index, r)?,
            C::AddService(r) => service::add(self, r)?,
            C::SetServiceBackends(r) => service::set_backends(self, r)?,
            C::DeleteService(r) => service::delete(self, r)?,
            C::SetMasquerade(r) => nat::set_masquerade(self, r)?,
            C::AddPortMap(r) => nat::add_portmap(self, r)?,
            C::DeletePortMap(r) => nat::delete_portmap(self, r)?,
        };
        self.diff.events.push((change_name(c), object));
        if !is_action(c) {
            self.diff.persistent = true;
        }
        Ok(())
    }

    /// Computes the net L3 diff from what was touched.
    fn finish(&mut self) {
        route::flush(self);
        let t = std::mem::take(&mut self.track);
        let m = &self.model;
        self.diff.l3 = L3Diff {
            vrfs: vrf::delta(m, &t.vrfs),
            ifaces: iface::l3_delta(m, &t.ifaces, &t.deleted),
            addresses: addr::delta(m, &t.addrs, &t.deleted),
            routes: route::delta(t.routes, &t.deleted),
            neighbors: neigh::delta(m, &t.neighbors, &t.deleted),
            neighbor_config: t
                .neigh_config
                .filter(|c| *c != m.neigh_config)
                .map(|_| m.neigh_config),
        };
    }
}

#[cfg(test)]
mod acl_tests;
#[cfg(test)]
mod l3_tests;
#[cfg(test)]
mod nat_tests;
#[cfg(test)]
mod service_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tunnel_tests;
