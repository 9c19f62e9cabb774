//! Interface addresses: validation, staging, persisted form, proto form.
//!
//! An L3 interface (or a bridge's routed interface `bvi:BR`) holds any number of IPv4 and
//! IPv6 addresses, each with its subnet's length and its host bits (`10.0.0.1/24`). An
//! address is unique in its interface's VRF. Each address puts two routes in that VRF,
//! which go with it:
//! - the **connected** route of its subnet (10.0.0.0/24 through the interface), shared by
//!   the addresses of one interface in one subnet; a subnet is connected to one interface
//!   of a VRF only. A /32 (/128) address has none.
//! - the **local** route of the address itself (10.0.0.1/32: delivered to the router).
//!
//! IPv6 link-local addresses (fe80::/10) belong to their link: unique on their interface,
//! they add no route to the VRF.
//!
//! An address is refused where a static route holds the prefix of its connected or local
//! route, or where it is the gateway of a static route. Deleting an address whose subnet a
//! static route's gateway needs is refused, naming the route (no route is left
//! unresolved); neighbours no longer in a connected subnet of their interface go with it.
//! Gateways of static routes resolve to the longest connected subnet holding them: adding
//! or deleting a subnet resolves the gateways in it again.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;
use std::sync::Arc;

use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::iface::{self, l3_get};
use super::ip::{is_link_local_v6, Cidr, Prefix};
use super::route::{self, NextHop, Origin, Route};
use super::{neigh, Model, Staged};
use crate::error::{required, ApiError, ApiResult};

/// An address added or removed, in the VRF its interface was in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrChange {
    pub iface: Arc<str>,
    pub vrf: u16,
    pub cidr: Cidr,
}

/// The addresses a transaction added and removed (net).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddrDelta {
    pub added: Vec<AddrChange>,
    pub removed: Vec<AddrChange>,
}

/// Every key of interface `name`'s addresses lies in this range.
fn iface_range(name: &str) -> RangeInclusive<(Arc<str>, Cidr)> {
    let n: Arc<str> = Arc::from(name);
    (n.clone(), Cidr::MIN)..=(n, Cidr::MAX)
}

/// The addresses of interface `name`, in order.
pub fn of_iface(m: &Model, name: &str) -> Vec<Cidr> {
    m.addrs.range(iface_range(name)).map(|(_, c)| *c).collect()
}

/// The first address of interface `name`.
pub fn first(m: &Model, name: &str) -> Option<Cidr> {
    m.addrs.range(iface_range(name)).next().map(|(_, c)| *c)
}

/// Whether `c` adds routes to its VRF (all but IPv6 link-local addresses do).
fn routed(c: &Cidr) -> bool {
    !is_link_local_v6(&c.addr())
}

/// `addr add IFACE CIDR`.
pub(super) fn add(s: &mut Staged, r: &pb::AddAddressRequest) -> ApiResult<String> {
    required("iface", &r.iface)?;
    required("address", &r.address)?;
    let vrf = iface::routed(&s.model, &r.iface)?.vrf;
    let cidr = Cidr::parse("address", &r.address)?;
    let name: Arc<str> = Arc::from(r.iface.as_str());
    let a = cidr.addr();
    if s.model.addrs.contains(&(name.clone(), cidr)) {
        return Err(ApiError::exists(format!(
            "address {cidr} is already on interface {:?}",
            r.iface
        )));
    }
    if !routed(&cidr) {
        if let Some(c) = of_iface(&s.model, &r.iface)
            .into_iter()
            .find(|c| c.addr() == a)
        {
            return Err(ApiError::exists(format!(
                "address {a} is already on interface {:?} (as {c})",
                r.iface
            )));
        }
        set(s, &name, cidr, Some(vrf));
        return Ok(format!("{}/{cidr}", r.iface));
    }
    let host = Prefix::host(a);
    if let Some(existing) = s.model.routes.get(&(vrf, host)) {
        return Err(match existing.origin {
            Origin::Local => ApiError::exists(format!(
                "address {a} is already on interface {:?} in vrf {vrf}",
                existing.iface()
            )),
            _ => ApiError::conflict(format!(
                "route {host} ({}) exists in vrf {vrf}: delete it before adding address {a}",
                existing.origin.name()
            )),
        });
    }
    if let Some(p) = route::first_via_gateway(&s.model, vrf, &a) {
        return Err(ApiError::conflict(format!(
            "{a} is the gateway of route {p} in vrf {vrf}: the router's own address cannot \
             be a gateway"
        )));
    }
    let through = |origin| {
        Some(Arc::new(Route {
            origin,
            onlink: false,
            nexthops: vec![NextHop {
                via: None,
                dev: None,
                iface: name.clone(),
            }],
        }))
    };
    if !cidr.is_host() {
        let subnet = cidr.subnet();
        match s.model.routes.get(&(vrf, subnet)) {
            Some(e) if e.origin == Origin::Connected && e.iface() == &*name => {}
            Some(e) if e.origin == Origin::Connected => {
                return Err(ApiError::conflict(format!(
                    "subnet {subnet} is already connected to interface {:?} in vrf {vrf}",
                    e.iface()
                )))
            }
            Some(e) => {
                return Err(ApiError::conflict(format!(
                    "route {subnet} ({}) exists in vrf {vrf}: delete it before adding an \
                     address in that subnet",
                    e.origin.name()
                )))
            }
            None => {
                route::set(s, (vrf, subnet), through(Origin::Connected));
                // A longer subnet may now hold gateways that resolved elsewhere.
                route::resolve_again(s, vrf, subnet).map_err(|(p, via)| {
                    ApiError::internal(format!(
                        "route {p} lost gateway {via} when subnet {subnet} was added"
                    ))
                })?;
            }
        }
    }
    route::set(s, (vrf, host), through(Origin::Local));
    set(s, &name, cidr, Some(vrf));
    Ok(format!("{}/{cidr}", r.iface))
}

/// `addr del IFACE CIDR`.
pub(super) fn delete(s: &mut Staged, r: &pb::DeleteAddressRequest) -> ApiResult<String> {
    required("iface", &r.iface)?;
    required("address", &r.address)?;
    iface::l3_of(&s.model, &r.iface)?;
    let cidr = Cidr::parse("address", &r.address)?;
    let name: Arc<str> = Arc::from(r.iface.as_str());
    if !s.model.addrs.contains(&(name.clone(), cidr)) {
        let on: Vec<String> = of_iface(&s.model, &r.iface)
            .iter()
            .map(|c| c.to_string())
            .collect();
        return Err(ApiError::not_found(format!(
            "address {cidr} is not on interface {:?} (it has {})",
            r.iface,
            if on.is_empty() {
                "none".to_string()
            } else {
                on.join(", ")
            }
        )));
    }
    remove(s, &name, cidr)?;
    Ok(format!("{}/{cidr}", r.iface))
}

/// Removes address `cidr` of `name` with its routes; refused if a static route's gateway
/// needs its subnet.
fn remove(s: &mut Staged, name: &Arc<str>, cidr: Cidr) -> ApiResult<()> {
    let vrf = iface::l3_of(&s.model, name)?.vrf;
    if let Some(t) = super::tunnel::using_local(&s.model, vrf, &cidr.addr()) {
        return Err(ApiError::conflict(format!(
            "address {cidr} of interface {:?} is the local address of tunnel {:?}: delete \
             the tunnel first",
            &**name, &*t
        )));
    }
    set(s, name, cidr, None);
    if !routed(&cidr) {
        return Ok(());
    }
    route::set(s, (vrf, Prefix::host(cidr.addr())), None);
    if cidr.is_host() {
        return Ok(());
    }
    let subnet = cidr.subnet();
    let shared = of_iface(&s.model, name)
        .iter()
        .any(|c| routed(c) && !c.is_host() && c.subnet() == subnet);
    if shared {
        return Ok(());
    }
    route::set(s, (vrf, subnet), None);
    route::resolve_again(s, vrf, subnet).map_err(|(p, via)| {
        ApiError::conflict(format!(
            "address {cidr} of interface {:?} is needed by route {p} (vrf {vrf}, via {via}): \
             delete or change the route first",
            &**name
        ))
    })?;
    neigh::drop_unreachable(s, name, vrf, subnet);
    Ok(())
}

/// Removes every address of `name` (which is going).
pub(super) fn remove_all(s: &mut Staged, name: &str) -> ApiResult<()> {
    let n: Arc<str> = Arc::from(name);
    for c in of_iface(&s.model, name) {
        remove(s, &n, c)?;
    }
    Ok(())
}

/// Adds (`Some(vrf)`) or removes address `cidr` of `name`, recording it as it was.
fn set(s: &mut Staged, name: &Arc<str>, cidr: Cidr, vrf: Option<u16>) {
    let key = (name.clone(), cidr);
    if !s.track.addrs.contains_key(&key) {
        let before = s
            .model
            .addrs
            .contains(&key)
            .then(|| l3_get(&s.model, name).map(|l| l.vrf))
            .flatten();
        s.track.addrs.insert(key.clone(), before);
    }
    match vrf {
        Some(_) => s.model.addrs.insert(key),
        None => s.model.addrs.remove(&key),
    };
}

/// The addresses (of interface `iface` only, if given) in their proto form.
pub fn list(m: &Model, iface: Option<&str>) -> ApiResult<Vec<pb::Address>> {
    let entries: Vec<(Arc<str>, Cidr)> = match iface {
        Some(n) => {
            iface::l3_of(m, n)?;
            m.addrs.range(iface_range(n)).cloned().collect()
        }
        None => m.addrs.iter().cloned().collect(),
    };
    Ok(entries
        .into_iter()
        .map(|(n, c)| pb::Address {
            vrf: l3_get(m, &n).map_or(0, |l| u32::from(l.vrf)),
            iface: n.to_string(),
            address: c.to_string(),
        })
        .collect())
}

/// One address of an interface.
pub fn get(m: &Model, iface: &str, address: &str) -> ApiResult<pb::Address> {
    let l3 = iface::l3_of(m, iface)?;
    let c = Cidr::parse("address", address)?;
    if !m.addrs.contains(&(Arc::from(iface), c)) {
        return Err(ApiError::not_found(format!(
            "address {c} is not on interface {iface:?}"
        )));
    }
    Ok(pb::Address {
        iface: iface.to_string(),
        address: c.to_string(),
        vrf: u32::from(l3.vrf),
    })
}

/// The changes that re-create every address (after interfaces and bridges; tunnels'
/// come with their tunnel, tunnel.rs).
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    let tunnel = |n: &str| super::tunnel::get(m, n).is_some();
    for (iface, c) in m.addrs.iter().filter(|(i, _)| !tunnel(i)) {
        out.push(C::AddAddress(pb::AddAddressRequest {
            iface: iface.to_string(),
            address: c.to_string(),
        }));
    }
}

/// The net address changes of a transaction.
pub(super) fn delta(
    m: &Model,
    touched: &BTreeMap<(Arc<str>, Cidr), Option<u16>>,
    deleted: &BTreeSet<Arc<str>>,
) -> AddrDelta {
    let mut d = AddrDelta::default();
    for ((iface, cidr), before) in touched {
        let now = m
            .addrs
            .contains(&(iface.clone(), *cidr))
            .then(|| l3_get(m, iface).map(|l| l.vrf))
            .flatten();
        if now == *before && !(now.is_some() && deleted.contains(iface)) {
            continue;
        }
        let change = |vrf| AddrChange {
            iface: iface.clone(),
            vrf,
            cidr: *cidr,
        };
        if let Some(v) = *before {
            d.removed.push(change(v));
        }
        if let Some(v) = now {
            d.added.push(change(v));
        }
    }
    d
}
