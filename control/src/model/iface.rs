//! Interfaces and their cross-connects: validation, staging, persisted form; and the L3
//! settings (VRF, proxy-ARP) of every L3 interface.
//!
//! An interface is its validated spec (`TYPE KEY=VALUE...`, see iface_spec.rs), its admin
//! state, and what it is part of: a cross-connect (both ways) or one bridge, never both.
//! Its port (DPDK) is the switch's; here only [`PortOp`]s are recorded for it.
//!
//! An interface is L2 (a bridge member, or cross-connected) or L3 (addresses, neighbours,
//! routes through it, proxy-ARP), never both: an interface with L3 configuration cannot
//! join a bridge or a cross-connect, and a member cannot take L3 configuration. A bridge
//! routes through its routed interface `bvi:BR`, which exists as long as bridge BR does
//! (it is not in the interface list), takes addresses, neighbours, routes, proxy-ARP and a
//! VRF (`iface set bvi:BR vrf=ID`, persisted with the bridge), and goes with the bridge.
//!
//! Every interface has a VRF (0 unless set). Moving an interface to another VRF is refused
//! while it has addresses, neighbours or routes: they belong to the VRF it is in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::{addr, neigh, route, vrf, Limits, Model, PortOp, Staged};
use crate::buffers::check_mtu_change;
use crate::error::{required, ApiError, ApiResult};
use crate::iface_spec::{IfaceSpec, Kind};
use crate::names::parse_mtu;

/// One interface as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Iface {
    pub spec: IfaceSpec,
    pub admin_up: bool,
    /// The interface it is cross-connected to.
    pub xconnect: Option<String>,
    /// The bridge it is a member of.
    pub bridge: Option<String>,
    pub l3: IfaceL3,
    /// The container it attaches (CNI), if a CNI plugin added it.
    pub attachment: Option<Attachment>,
}

/// A container's attachment (CNI): container id, its interface's name inside the
/// container, its netns (a path, empty if not known) and the CNI network's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub container_id: String,
    pub ifname: String,
    pub netns: String,
    pub network: String,
}

impl From<&pb::Attachment> for Attachment {
    fn from(a: &pb::Attachment) -> Self {
        Attachment {
            container_id: a.container_id.clone(),
            ifname: a.ifname.clone(),
            netns: a.netns.clone(),
            network: a.network.clone(),
        }
    }
}

impl From<&Attachment> for pb::Attachment {
    fn from(a: &Attachment) -> Self {
        pb::Attachment {
            container_id: a.container_id.clone(),
            ifname: a.ifname.clone(),
            netns: a.netns.clone(),
            network: a.network.clone(),
        }
    }
}

/// The L3 settings of an interface, or of a bridge's routed interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IfaceL3 {
    pub vrf: u16,
    /// Answers ARP requests for addresses routed through another interface.
    pub proxy_arp: bool,
}

/// The name prefix of a bridge's routed interface: `bvi:BR` is bridge BR's.
pub const BVI_PREFIX: &str = "bvi:";

/// The bridge whose routed interface `name` is, if it is one.
pub fn bvi_bridge(name: &str) -> Option<&str> {
    name.strip_prefix(BVI_PREFIX)
}

/// The VRF of `vrf=` in an interface's arguments, or of the request's field.
fn requested_vrf(r: &pb::AddInterfaceRequest) -> ApiResult<Option<u32>> {
    let arg = match r.args.get("vrf") {
        Some(v) => Some(v.parse::<u32>().map_err(|_| {
            ApiError::invalid(format!(
                "vrf must be a number from 0 to {}, not {v:?}",
                vrf::MAX_VRF
            ))
        })?),
        None => None,
    };
    match (r.vrf, arg) {
        (Some(a), Some(b)) if a != b => Err(ApiError::invalid(format!(
            "vrf is given twice, as {a} and as vrf={b}"
        ))),
        (f, a) => Ok(f.or(a)),
    }
}

/// `iface add NAME TYPE KEY=VALUE...`.
pub(super) fn add(
    s: &mut Staged,
    index: usize,
    r: &pb::AddInterfaceRequest,
    limits: &Limits,
) -> ApiResult<String> {
    required("name", &r.name)?;
    required("type", &r.r#type)?;
    if s.model.ifaces.contains_key(&r.name) {
        return Err(ApiError::exists(format!(
            "interface {:?} exists already",
            r.name
        )));
    }
    let vrf = match requested_vrf(r)? {
        Some(v) => vrf::existing(v)(&s.model)?,
        None => 0,
    };
    let args: BTreeMap<String, String> = r
        .args
        .iter()
        .filter(|(k, _)| k.as_str() != "vrf")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let spec = IfaceSpec::parse(&r.name, &r.r#type, &args, &limits.run_dir)?;
    check_shared_resources(&s.model, &spec)?;
    if let Some(a) = &r.attachment {
        check_attachment(&s.model, a)?;
    }
    touch_l3(s, &r.name);
    s.diff.ports.push(PortOp::Open {
        index,
        name: r.name.clone(),
        spec: Box::new(spec.clone()),
    });
    let iface = Iface {
        spec,
        admin_up: true,
        xconnect: None,
        bridge: None,
        l3: IfaceL3 {
            vrf,
            proxy_arp: false,
        },
        attachment: r.attachment.as_ref().map(Attachment::from),
    };
    s.model.ifaces.insert(r.name.clone(), Arc::new(iface));
    s.diff.plan = true;
    Ok(r.name.clone())
}

/// The longest container id taken (CNI gives no limit; runtimes use 64 hex digits).
const MAX_CONTAINER_ID: usize = 256;

/// An attachment names its container as CNI does (container id and network name of
/// `[A-Za-z0-9_.-]`, the id starting with an alphanumeric), an interface name that Linux
/// takes, and an absolute netns path; one container interface on one network is attached
/// once.
fn check_attachment(m: &Model, a: &pb::Attachment) -> ApiResult<()> {
    let cni_name = |what: &str, v: &str, max: usize| -> ApiResult<()> {
        let ok = !v.is_empty()
            && v.len() <= max
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if ok {
            Ok(())
        } else {
            Err(ApiError::invalid(format!(
                "attachment.{what} {v:?} must be 1-{max} characters of A-Z a-z 0-9 _ . - \
                 starting with a letter or digit"
            )))
        }
    };
    cni_name("container_id", &a.container_id, MAX_CONTAINER_ID)?;
    cni_name("network", &a.network, MAX_CONTAINER_ID)?;
    crate::names::check_ifname("attachment.ifname", &a.ifname).map_err(ApiError::invalid)?;
    if !a.netns.is_empty() && (!a.netns.starts_with('/') || a.netns.len() > 4096) {
        return Err(ApiError::invalid(format!(
            "attachment.netns {:?} must be an absolute path",
            a.netns
        )));
    }
    let same = |b: &Attachment| {
        b.container_id == a.container_id && b.ifname == a.ifname && b.network == a.network
    };
    if let Some((other, _)) = m
        .ifaces
        .iter()
        .find(|(_, i)| i.attachment.as_ref().is_some_and(same))
    {
        return Err(ApiError::exists(format!(
            "container {}'s {} on network {} is attached already, as interface {other:?}",
            a.container_id, a.ifname, a.network
        )));
    }
    Ok(())
}

/// Two interfaces may not drive one Linux interface or one socket.
fn check_shared_resources(m: &Model, spec: &IfaceSpec) -> ApiResult<()> {
    for (other, i) in &m.ifaces {
        let clash = match (&spec.kind, &i.spec.kind) {
            // One Linux interface: the same name in the same namespace (a tap's netns=).
            (
                Kind::AfPacket { iface: a } | Kind::Tap { iface: a },
                Kind::AfPacket { iface: b } | Kind::Tap { iface: b },
            ) => a == b && spec.netns == i.spec.netns,
            _ => spec.socket().is_some() && spec.socket() == i.spec.socket(),
        };
        if clash {
            return Err(ApiError::conflict(format!(
                "interface {other:?} already uses {}",
                match &spec.kind {
                    Kind::AfPacket { iface } | Kind::Tap { iface } =>
                        format!("Linux interface {iface}"),
                    _ => format!(
                        "socket {}",
                        spec.socket()
                            .map(|s| s.display().to_string())
                            .unwrap_or_default()
                    ),
                }
            )));
        }
    }
    Ok(())
}

/// `iface del NAME`: also leaves its cross-connect and its bridge (with its static MACs),
/// and takes its addresses and neighbours with it; refused while a route goes through it.
pub(super) fn delete(s: &mut Staged, r: &pb::DeleteInterfaceRequest) -> ApiResult<String> {
    required("name", &r.name)?;
    if s.model.iface(&r.name)?.spec.tunnel().is_some() {
        return Err(ApiError::conflict(format!(
            "interface {:?} is a tunnel: tunnel del {} deletes it",
            r.name, r.name
        )));
    }
    remove(s, &r.name)?;
    s.diff.ports.push(PortOp::Close {
        name: r.name.clone(),
    });
    Ok(r.name.clone())
}

/// Removes interface `name` from the model: it leaves its cross-connect and its bridge
/// (with its static MACs), its addresses, neighbours and ACL bindings go; refused while a
/// route goes through it. (Its port, if it has one, is the caller's.)
pub(super) fn remove(s: &mut Staged, name: &str) -> ApiResult<()> {
    let iface = s.model.iface(name)?.clone();
    forget_l3(s, name)?;
    if let Some(br) = &iface.bridge {
        super::bridge::remove_member(s, br, name);
    }
    if let Some(peer) = &iface.xconnect {
        edit(s, peer, |p| p.xconnect = None);
    }
    super::acl::forget_iface(s, name);
    s.model.ifaces.remove(name);
    s.diff.plan = true;
    Ok(())
}

/// `iface set NAME [up|down] [mtu=N] [vrf=ID]`; a bridge's routed interface takes only
/// vrf=.
pub(super) fn set(s: &mut Staged, index: usize, r: &pb::SetInterfaceRequest) -> ApiResult<String> {
    required("name", &r.name)?;
    if let Some(br) = bvi_bridge(&r.name) {
        s.model.bridge(br)?;
        if r.admin_up.is_some() || r.mtu.is_some_and(|m| m != 0) {
            return Err(ApiError::invalid(format!(
                "{} is bridge {br:?}'s routed interface: vrf= is the one setting it takes",
                r.name
            )));
        }
        if let Some(v) = r.vrf {
            set_vrf(s, &r.name, v)?;
        }
        return Ok(r.name.clone());
    }
    let current = s.model.iface(&r.name)?;
    let (current, tunnel) = (current.spec.mtu, current.spec.tunnel().is_some());
    let mtu = match r.mtu.filter(|m| *m != 0) {
        Some(m) => {
            let m = parse_mtu("mtu", &m.to_string()).map_err(ApiError::invalid)?;
            // The port keeps the buffers it was opened with (a tunnel has none).
            if !tunnel {
                check_mtu_change(&r.name, current, m).map_err(ApiError::invalid)?;
            }
            Some(m)
        }
        None => None,
    };
    if let Some(v) = r.vrf {
        set_vrf(s, &r.name, v)?;
    }
    if mtu.is_none() && r.admin_up.is_none() {
        return Ok(r.name.clone());
    }
    edit(s, &r.name, |i| {
        if let Some(m) = mtu {
            i.spec.mtu = Some(m);
            i.spec.args.insert("mtu".into(), m.to_string());
        }
        if let Some(up) = r.admin_up {
            i.admin_up = up;
        }
    });
    s.diff.ports.push(PortOp::Set {
        index,
        name: r.name.clone(),
        mtu,
        admin_up: r.admin_up,
    });
    s.diff.plan = true;
    Ok(r.name.clone())
}

/// `xconnect add A B`: both ways.
pub(super) fn add_xconnect(s: &mut Staged, r: &pb::AddXconnectRequest) -> ApiResult<String> {
    required("iface_a", &r.iface_a)?;
    required("iface_b", &r.iface_b)?;
    let (a, b) = (r.iface_a.as_str(), r.iface_b.as_str());
    let (ia, ib) = (s.model.iface(a)?, s.model.iface(b)?);
    if a == b {
        return Err(ApiError::invalid(format!(
            "cannot cross-connect {a:?} to itself"
        )));
    }
    for (n, i) in [(a, ia), (b, ib)] {
        if i.spec.tunnel().is_some() {
            return Err(ApiError::conflict(format!(
                "interface {n:?} is a tunnel: tunnels are not cross-connected (attach it to a \
                 bridge)"
            )));
        }
        if let Some(br) = &i.bridge {
            return Err(ApiError::conflict(format!(
                "interface {n:?} is a member of bridge {br:?}"
            )));
        }
        if let Some(u) = l3_use(&s.model, n) {
            return Err(ApiError::conflict(format!(
                "interface {n:?} has {u}: a cross-connected interface is L2 only; remove it first"
            )));
        }
        if let Some(p) = &i.xconnect {
            return Err(ApiError::conflict(format!(
                "interface {n:?} is already cross-connected to {p:?}"
            )));
        }
    }
    for (n, peer) in [(a, b), (b, a)] {
        edit(s, n, |i| i.xconnect = Some(peer.to_string()));
    }
    s.diff.plan = true;
    Ok(format!("{a}/{b}"))
}

/// `xconnect del A`: the cross-connect A belongs to.
pub(super) fn delete_xconnect(s: &mut Staged, r: &pb::DeleteXconnectRequest) -> ApiResult<String> {
    required("iface_a", &r.iface_a)?;
    let peer = xconnect_peer(&s.model, &r.iface_a)?;
    for n in [r.iface_a.as_str(), peer.as_str()] {
        edit(s, n, |i| i.xconnect = None);
    }
    s.diff.plan = true;
    Ok(r.iface_a.clone())
}

/// The interface `name` is cross-connected to.
pub fn xconnect_peer(m: &Model, name: &str) -> ApiResult<String> {
    m.iface(name)?
        .xconnect
        .clone()
        .ok_or_else(|| ApiError::not_found(format!("interface {name:?} is not cross-connected")))
}

/// Every cross-connect, each once (the smaller name first).
pub fn xconnects(m: &Model) -> Vec<pb::Xconnect> {
    m.ifaces
        .iter()
        .filter_map(|(n, i)| {
            i.xconnect
                .as_ref()
                .filter(|p| n.as_str() < p.as_str())
                .map(|p| pb::Xconnect {
                    iface_a: n.clone(),
                    iface_b: p.clone(),
                })
        })
        .collect()
}

/// Changes interface `name` of the staged model (copying it only if it is shared).
pub(super) fn edit(s: &mut Staged, name: &str, f: impl FnOnce(&mut Iface)) {
    if let Some(i) = s.model.ifaces.get_mut(name) {
        f(Arc::make_mut(i));
    }
}

/// The changes that re-create every interface (in its VRF) and cross-connect (tunnels
/// come later, with what they need: tunnel.rs).
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    for (name, i) in m.ifaces.iter().filter(|(_, i)| i.spec.tunnel().is_none()) {
        out.push(C::AddInterface(pb::AddInterfaceRequest {
            name: name.clone(),
            r#type: i.spec.type_name.clone(),
            args: i.spec.args.clone().into_iter().collect(),
            vrf: Some(u32::from(i.l3.vrf)).filter(|v| *v != 0),
            attachment: i.attachment.as_ref().map(pb::Attachment::from),
        }));
        if !i.admin_up {
            out.push(C::SetInterface(pb::SetInterfaceRequest {
                name: name.clone(),
                admin_up: Some(false),
                mtu: None,
                vrf: None,
            }));
        }
    }
    for x in xconnects(m) {
        out.push(C::AddXconnect(pb::AddXconnectRequest {
            iface_a: x.iface_a,
            iface_b: x.iface_b,
        }));
    }
}

/// The L3 settings of `name` (an interface or `bvi:BR`), None if it does not exist.
pub fn l3_get(m: &Model, name: &str) -> Option<IfaceL3> {
    match bvi_bridge(name) {
        Some(br) => m.bridges.get(br).map(|b| b.bvi),
        None => m.ifaces.get(name).map(|i| i.l3),
    }
}

/// The L3 settings of `name`; NOT_FOUND if it does not exist.
pub fn l3_of(m: &Model, name: &str) -> ApiResult<IfaceL3> {
    l3_get(m, name).ok_or_else(|| match bvi_bridge(name) {
        Some(br) => ApiError::not_found(format!(
            "bridge {br:?} not found ({name} is its routed interface)"
        )),
        None => ApiError::not_found(format!("interface {name:?} not found")),
    })
}

/// The L3 settings of `name`, which must be able to route: not a bridge member, not
/// cross-connected.
pub(super) fn routed(m: &Model, name: &str) -> ApiResult<IfaceL3> {
    required("iface", name)?;
    let l3 = l3_of(m, name)?;
    if let Some(i) = m.ifaces.get(name) {
        if let Some(br) = &i.bridge {
            return Err(ApiError::conflict(format!(
                "interface {name:?} is a member of bridge {br:?}, which makes it L2 only \
                 ({BVI_PREFIX}{br} is the bridge's routed interface)"
            )));
        }
        if let Some(p) = &i.xconnect {
            return Err(ApiError::conflict(format!(
                "interface {name:?} is cross-connected to {p:?}, which makes it L2 only"
            )));
        }
    }
    Ok(l3)
}

/// [`routed`], and in VRF `vrf`.
pub(super) fn routed_in(m: &Model, name: &str, vrf: u16) -> ApiResult<()> {
    let l3 = routed(m, name)?;
    if l3.vrf != vrf {
        return Err(ApiError::conflict(format!(
            "interface {name:?} is in vrf {}, not vrf {vrf}",
            l3.vrf
        )));
    }
    Ok(())
}

/// Records the L3 settings of `name` as they were before the transaction touched them.
pub(super) fn touch_l3(s: &mut Staged, name: &str) {
    if !s.track.ifaces.contains_key(name) {
        let before = l3_get(&s.model, name);
        s.track.ifaces.insert(Arc::from(name), before);
    }
}

/// Changes the L3 settings of `name` (an interface or `bvi:BR`).
fn edit_l3(s: &mut Staged, name: &str, f: impl FnOnce(&mut IfaceL3)) {
    touch_l3(s, name);
    match bvi_bridge(name) {
        Some(br) => {
            if let Some(b) = s.model.bridges.get_mut(br) {
                f(&mut Arc::make_mut(b).bvi);
            }
        }
        None => {
            if let Some(i) = s.model.ifaces.get_mut(name) {
                f(&mut Arc::make_mut(i).l3);
            }
        }
    }
}

/// The first address, neighbour or route that `name` has: what ties it to its VRF.
fn l3_objects(m: &Model, name: &str) -> Option<String> {
    if let Some(c) = addr::first(m, name) {
        return Some(format!("address {c}"));
    }
    if let Some(ip) = neigh::first(m, name) {
        return Some(format!("neighbour {ip}"));
    }
    route::first_through(m, name).map(|(vrf, p)| format!("route {p} (vrf {vrf}) through it"))
}

/// The first piece of L3 configuration `name` has (addresses, neighbours, routes,
/// proxy-ARP, masquerade, port mappings), for refusals of L2 roles.
pub(super) fn l3_use(m: &Model, name: &str) -> Option<String> {
    l3_objects(m, name)
        .or_else(|| {
            l3_get(m, name)
                .filter(|l| l.proxy_arp)
                .map(|_| "proxy-arp on".to_string())
        })
        .or_else(|| super::nat::use_of(m, name))
}

/// Moves `name` to VRF `v`: refused while it has addresses, neighbours or routes.
fn set_vrf(s: &mut Staged, name: &str, v: u32) -> ApiResult<()> {
    let id = vrf::existing(v)(&s.model)?;
    if l3_of(&s.model, name)?.vrf == id {
        return Ok(());
    }
    if let Some(u) = l3_objects(&s.model, name) {
        return Err(ApiError::conflict(format!(
            "interface {name:?} has {u}: delete its addresses, neighbours and routes before \
             moving it to vrf {id}"
        )));
    }
    edit_l3(s, name, |l| l.vrf = id);
    Ok(())
}

/// Removes the L3 configuration of `name`, which is going (an interface, or a bridge's
/// routed interface): its addresses, neighbours, masquerade and port mappings go with it;
/// refused while a route goes through it.
pub(super) fn forget_l3(s: &mut Staged, name: &str) -> ApiResult<()> {
    if let Some((vrf, p)) = route::first_through(&s.model, name) {
        return Err(ApiError::conflict(format!(
            "interface {name:?} is used by route {p} (vrf {vrf}); delete the route first"
        )));
    }
    neigh::remove_all(s, name);
    addr::remove_all(s, name)?;
    super::nat::forget_iface(s, name);
    touch_l3(s, name);
    s.track.deleted.insert(Arc::from(name));
    Ok(())
}

/// `proxy-arp IFACE on|off`.
pub(super) fn set_proxy_arp(s: &mut Staged, r: &pb::SetProxyArpRequest) -> ApiResult<String> {
    routed(&s.model, &r.iface)?;
    edit_l3(s, &r.iface, |l| l.proxy_arp = r.on);
    Ok(r.iface.clone())
}

/// The changes that turn proxy-ARP on where it is (after interfaces and bridges).
pub(super) fn persisted_proxy_arp(m: &Model, out: &mut Vec<C>) {
    let ifaces = m
        .ifaces
        .iter()
        .filter(|(_, i)| i.l3.proxy_arp)
        .map(|(n, _)| n.clone());
    let bvis = m
        .bridges
        .iter()
        .filter(|(_, b)| b.bvi.proxy_arp)
        .map(|(n, _)| format!("{BVI_PREFIX}{n}"));
    for iface in ifaces.chain(bvis) {
        out.push(C::SetProxyArp(pb::SetProxyArpRequest { iface, on: true }));
    }
}

/// The net changes of L3 interfaces' settings.
pub(super) fn l3_delta(
    m: &Model,
    touched: &BTreeMap<Arc<str>, Option<IfaceL3>>,
    deleted: &BTreeSet<Arc<str>>,
) -> Vec<(Arc<str>, Option<IfaceL3>)> {
    touched
        .iter()
        .filter_map(|(name, before)| {
            let now = l3_get(m, name);
            let reborn = now.is_some() && deleted.contains(name);
            (now != *before || reborn).then(|| (name.clone(), now))
        })
        .collect()
}
