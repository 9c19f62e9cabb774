//! VRFs: routing tables of their own, by id (0 to 4095). VRF 0 always exists and cannot be
//! deleted; every L3 interface (an interface, or a bridge's routed interface `bvi:BR`) is
//! in exactly one VRF, 0 unless set. Validation, staging, persisted form, proto form.

use std::collections::BTreeMap;
use std::sync::Arc;

use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::ip::{Family, Prefix};
use super::{Model, Route, RouteKey, Staged};
use crate::error::{ApiError, ApiResult};

/// The highest VRF id.
pub const MAX_VRF: u16 = 4095;

/// VRFs created and deleted by a transaction (net).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VrfDelta {
    pub added: Vec<u16>,
    pub removed: Vec<u16>,
}

/// A VRF id as the API takes it: 0 to 4095.
pub fn check_id(v: u32) -> ApiResult<u16> {
    match u16::try_from(v) {
        Ok(id) if id <= MAX_VRF => Ok(id),
        _ => Err(ApiError::invalid(format!(
            "vrf must be from 0 to {MAX_VRF}, not {v}"
        ))),
    }
}

/// Whether VRF `id` exists.
pub fn exists(m: &Model, id: u16) -> bool {
    id == 0 || m.vrfs.contains(&id)
}

/// A VRF that must exist, from the API's number.
pub(super) fn existing(v: u32) -> impl Fn(&Model) -> ApiResult<u16> {
    move |m| {
        let id = check_id(v)?;
        if exists(m, id) {
            Ok(id)
        } else {
            Err(ApiError::not_found(format!(
                "vrf {id} not found (vrf add {id} creates it)"
            )))
        }
    }
}

/// `vrf add ID`.
pub(super) fn add(s: &mut Staged, r: &pb::AddVrfRequest) -> ApiResult<String> {
    let id = check_id(r.id)?;
    if id == 0 {
        return Err(ApiError::exists("vrf 0 always exists"));
    }
    if s.model.vrfs.contains(&id) {
        return Err(ApiError::exists(format!("vrf {id} exists already")));
    }
    touch(s, id);
    s.model.vrfs.insert(id);
    Ok(id.to_string())
}

/// `vrf del ID`: refused while an interface or a route is in it.
pub(super) fn delete(s: &mut Staged, r: &pb::DeleteVrfRequest) -> ApiResult<String> {
    let id = check_id(r.id)?;
    if id == 0 {
        return Err(ApiError::conflict("vrf 0 cannot be deleted"));
    }
    let id = existing(r.id)(&s.model)?;
    if let Some(((_, p), r)) = routes_of(&s.model, id).next() {
        return Err(ApiError::conflict(format!(
            "vrf {id} is used by route {p} ({}); delete its routes and addresses first",
            r.origin.name()
        )));
    }
    if let Some(name) = members(&s.model, id).into_iter().next() {
        return Err(ApiError::conflict(format!(
            "vrf {id} is used by interface {name:?}; move it to another vrf first"
        )));
    }
    touch(s, id);
    s.model.vrfs.remove(&id);
    Ok(id.to_string())
}

/// Records VRF `id` as it was before the transaction touched it.
fn touch(s: &mut Staged, id: u16) {
    let before = exists(&s.model, id);
    s.track.vrfs.entry(id).or_insert(before);
}

/// The interfaces in VRF `id`, by name (interfaces, then routed interfaces of bridges).
pub fn members(m: &Model, id: u16) -> Vec<String> {
    let ifaces = m
        .ifaces
        .iter()
        .filter(|(_, i)| i.l3.vrf == id)
        .map(|(n, _)| n.clone());
    let bvis = m
        .bridges
        .iter()
        .filter(|(_, b)| b.bvi.vrf == id)
        .map(|(n, _)| format!("{}{n}", super::iface::BVI_PREFIX));
    ifaces.chain(bvis).collect()
}

/// The routes of VRF `id`, in prefix order (IPv4 first).
fn routes_of(m: &Model, id: u16) -> impl Iterator<Item = (&RouteKey, &Arc<Route>)> + '_ {
    let (lo, _) = Prefix::family_span(Family::V4);
    let (_, hi) = Prefix::family_span(Family::V6);
    m.routes.range((id, lo)..=(id, hi))
}

/// Every VRF in its proto form.
pub fn list(m: &Model) -> Vec<pb::Vrf> {
    std::iter::once(0)
        .chain(m.vrfs.iter().copied())
        .map(|id| to_pb(m, id))
        .collect()
}

/// One VRF's proto form.
pub fn to_pb(m: &Model, id: u16) -> pb::Vrf {
    let mut v4 = 0;
    let mut v6 = 0;
    for ((_, p), _) in routes_of(m, id) {
        match p.family() {
            Family::V4 => v4 += 1,
            Family::V6 => v6 += 1,
        }
    }
    pb::Vrf {
        id: u32::from(id),
        interfaces: members(m, id),
        routes_v4: v4,
        routes_v6: v6,
    }
}

/// The changes that re-create every VRF (before anything is put in them).
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    for &id in &m.vrfs {
        out.push(C::AddVrf(pb::AddVrfRequest { id: u32::from(id) }));
    }
}

/// The net VRF changes of a transaction.
pub(super) fn delta(m: &Model, touched: &BTreeMap<u16, bool>) -> VrfDelta {
    let mut d = VrfDelta::default();
    for (&id, &before) in touched {
        match (before, exists(m, id)) {
            (false, true) => d.added.push(id),
            (true, false) => d.removed.push(id),
            _ => {}
        }
    }
    d
}
