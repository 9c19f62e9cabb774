//! Interfaces and their cross-connects: validation, staging, persisted form.
//!
//! An interface is its validated spec (`TYPE KEY=VALUE...`, see iface_spec.rs), its admin
//! state, and what it is part of: a cross-connect (both ways) or one bridge, never both.
//! Its port (DPDK) is the switch's; here only [`PortOp`]s are recorded for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::{Limits, Model, PortOp, Staged};
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
    let args: BTreeMap<String, String> =
        r.args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let spec = IfaceSpec::parse(&r.name, &r.r#type, &args, &limits.run_dir)?;
    check_shared_resources(&s.model, &spec)?;
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
    };
    s.model.ifaces.insert(r.name.clone(), Arc::new(iface));
    s.diff.plan = true;
    Ok(r.name.clone())
}

/// Two interfaces may not drive one Linux interface or one socket.
fn check_shared_resources(m: &Model, spec: &IfaceSpec) -> ApiResult<()> {
    for (other, i) in &m.ifaces {
        let clash = match (&spec.kind, &i.spec.kind) {
            (
                Kind::AfPacket { iface: a } | Kind::Tap { iface: a },
                Kind::AfPacket { iface: b } | Kind::Tap { iface: b },
            ) => a == b,
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

/// `iface del NAME`: also leaves its cross-connect and its bridge (with its static MACs).
pub(super) fn delete(s: &mut Staged, r: &pb::DeleteInterfaceRequest) -> ApiResult<String> {
    required("name", &r.name)?;
    let iface = s.model.iface(&r.name)?.clone();
    if let Some(br) = &iface.bridge {
        super::bridge::remove_member(s, br, &r.name);
    }
    if let Some(peer) = &iface.xconnect {
        edit(s, peer, |p| p.xconnect = None);
    }
    s.model.ifaces.remove(&r.name);
    s.diff.ports.push(PortOp::Close {
        name: r.name.clone(),
    });
    s.diff.plan = true;
    Ok(r.name.clone())
}

/// `iface set NAME [up|down] [mtu=N]`.
pub(super) fn set(s: &mut Staged, index: usize, r: &pb::SetInterfaceRequest) -> ApiResult<String> {
    required("name", &r.name)?;
    let current = s.model.iface(&r.name)?.spec.mtu;
    let mtu = match r.mtu.filter(|m| *m != 0) {
        Some(m) => {
            let m = parse_mtu("mtu", &m.to_string()).map_err(ApiError::invalid)?;
            // The port keeps the buffers it was opened with.
            check_mtu_change(&r.name, current, m).map_err(ApiError::invalid)?;
            Some(m)
        }
        None => None,
    };
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
        if let Some(br) = &i.bridge {
            return Err(ApiError::conflict(format!(
                "interface {n:?} is a member of bridge {br:?}"
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

/// The changes that re-create every interface and cross-connect.
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    for (name, i) in &m.ifaces {
        out.push(C::AddInterface(pb::AddInterfaceRequest {
            name: name.clone(),
            r#type: i.spec.type_name.clone(),
            args: i.spec.args.clone().into_iter().collect(),
        }));
        if !i.admin_up {
            out.push(C::SetInterface(pb::SetInterfaceRequest {
                name: name.clone(),
                admin_up: Some(false),
                mtu: None,
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
