//! Routes: static routes (validation, next-hop resolution, staging, persisted form) and the
//! routing table of every VRF they share with the connected and local routes of
//! addresses (addr.rs), in proto form.
//!
//! A VRF holds one route per prefix. A static route has 1 to 16 next-hops (ECMP), each a
//! gateway (`via`, of the prefix's family) and/or an interface (`dev`):
//! - `dev IFACE` alone: the destination is on IFACE's link;
//! - `via IP`: IP must lie in a connected subnet of the VRF (on IFACE, if `dev` is given),
//!   and the next-hop goes out of that subnet's interface (the longest subnet holding it);
//! - `via IP dev IFACE onlink`: IP is on IFACE's link whatever its subnets (flannel's and
//!   Calico's way); onlink needs `dev` for every gateway;
//! - an IPv6 link-local gateway (fe80::/10) needs `dev` (it means something only on a link).
//!
//! Every interface a route names must be an L3 interface in the route's VRF. Adding a
//! static route for a prefix that has one replaces it (as `ip route replace`); the
//! prefix of a connected or local route cannot be taken by a static one. A gateway cannot
//! be one of the router's own addresses.
//!
//! Interfaces resolved: a next-hop carries the interface it goes out of, resolved again
//! whenever a connected subnet holding its gateway comes or goes (addr.rs), so a FIB can
//! install routes as they are.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::ops::Bound;
use std::sync::Arc;

use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::ip::{check_unicast, is_link_local_v6, parse_ip, Family, Prefix};
use super::{iface, vrf, Model, Staged};
use crate::error::{required, ApiError, ApiResult};

/// A route's key: (VRF, prefix).
pub type RouteKey = (u16, Prefix);

/// A route set in a transaction: (key, route before, route after).
pub(super) type RouteSet = (RouteKey, Option<Arc<Route>>, Option<Arc<Route>>);

/// An entry of the index of static routes by interface: (interface, VRF, prefix).
type ByIface = (Arc<str>, u16, Prefix);

/// Most next-hops of one route.
pub const MAX_NEXTHOPS: usize = 16;

/// Where a route comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// Configured (`route add`).
    Static,
    /// The subnet of an interface address.
    Connected,
    /// An interface address itself: delivered to the router.
    Local,
}

impl Origin {
    pub fn name(self) -> &'static str {
        match self {
            Origin::Static => "static",
            Origin::Connected => "connected",
            Origin::Local => "local",
        }
    }
}

/// One next-hop of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// The gateway; `None`: the destination is on the interface's link.
    pub via: Option<IpAddr>,
    /// The interface as the route was given it (`dev`), if it was.
    pub dev: Option<Arc<str>>,
    /// The interface it goes out of: `dev`, or the interface of the connected subnet
    /// holding the gateway.
    pub iface: Arc<str>,
}

/// A route of a VRF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub origin: Origin,
    pub onlink: bool,
    pub nexthops: Vec<NextHop>,
}

impl Route {
    /// The interface of its first next-hop: the interface of a connected or local route
    /// (which have one).
    pub fn iface(&self) -> &str {
        self.nexthops.first().map_or("", |n| &n.iface)
    }
}

/// What a transaction did to the routes of one VRF and family (net).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDelta {
    /// Prefixes that had no route before.
    pub added: Vec<(Prefix, Arc<Route>)>,
    /// Prefixes whose route changed (next-hops, their interfaces, origin, or an interface
    /// re-created under the same name): install these over the old ones.
    pub replaced: Vec<(Prefix, Arc<Route>)>,
    /// Prefixes that have no route now.
    pub removed: Vec<Prefix>,
}

/// `route add PREFIX via NH[,NH...] [dev IFACE] [onlink] [vrf=ID]` and `route add PREFIX dev
/// IFACE [vrf=ID]`: adds the static route, or replaces the static route of the prefix.
pub(super) fn add(s: &mut Staged, r: &pb::AddRouteRequest) -> ApiResult<String> {
    required("prefix", &r.prefix)?;
    let vrf = vrf::existing(r.vrf)(&s.model)?;
    let prefix = Prefix::parse("prefix", &r.prefix)?;
    if r.nexthops.is_empty() {
        return Err(ApiError::invalid(
            "a route needs a next-hop: via IP and/or dev IFACE",
        ));
    }
    if r.nexthops.len() > MAX_NEXTHOPS {
        return Err(ApiError::invalid(format!(
            "a route has at most {MAX_NEXTHOPS} next-hops (ECMP), not {}",
            r.nexthops.len()
        )));
    }
    let mut nexthops: Vec<NextHop> = Vec::with_capacity(r.nexthops.len());
    for (i, nh) in r.nexthops.iter().enumerate() {
        let via = match nh.via.as_str() {
            "" => None,
            v => Some(parse_ip("next-hop", v)?),
        };
        let dev: Option<Arc<str>> = Some(nh.iface.as_str())
            .filter(|d| !d.is_empty())
            .map(Arc::from);
        if let Some(v) = &via {
            if Family::of(v) != prefix.family() {
                return Err(ApiError::invalid(format!(
                    "next-hop {v} is {} but prefix {prefix} is {}",
                    Family::of(v).name(),
                    prefix.family().name()
                )));
            }
            check_unicast("next-hop", v)?;
        } else if dev.is_none() {
            return Err(ApiError::invalid(format!(
                "next-hop {} has neither via nor dev",
                i + 1
            )));
        }
        if nexthops.iter().any(|n| n.via == via && n.dev == dev) {
            return Err(ApiError::invalid(format!(
                "next-hop {} is given twice",
                describe(&via, dev.as_deref())
            )));
        }
        let iface = dev.clone().unwrap_or_else(|| Arc::from(""));
        nexthops.push(NextHop { via, dev, iface });
    }
    if let Some(e) = s.model.routes.get(&(vrf, prefix)) {
        if e.origin != Origin::Static {
            return Err(ApiError::conflict(format!(
                "{prefix} in vrf {vrf} is the {} route of an address of interface {:?}; a \
                 static route cannot replace it",
                e.origin.name(),
                e.iface()
            )));
        }
    }
    resolve(&s.model, &mut s.gateways, vrf, r.onlink, &mut nexthops)?;
    for nh in &nexthops {
        super::tunnel::check_route_out(&s.model, &nh.iface, prefix.family())?;
    }
    let route = Route {
        origin: Origin::Static,
        onlink: r.onlink,
        nexthops,
    };
    set(s, (vrf, prefix), Some(Arc::new(route)));
    Ok(format!("{vrf}/{prefix}"))
}

/// A next-hop for messages: `via IP dev IFACE`.
fn describe(via: &Option<IpAddr>, dev: Option<&str>) -> String {
    match (via, dev) {
        (Some(v), Some(d)) => format!("via {v} dev {d}"),
        (Some(v), None) => format!("via {v}"),
        (None, Some(d)) => format!("dev {d}"),
        (None, None) => "(none)".into(),
    }
}

/// Gateways resolved within a transaction: (VRF, gateway, dev, onlink) -> the interface
/// the next-hop goes out of. What a gateway resolves to depends on the connected and local
/// routes and the interfaces only, which static routes do not change: a bulk load of routes
/// through a few gateways resolves each once. Emptied by any other change, and whenever a
/// connected or local route is set.
pub(super) type Gateways = HashMap<(u16, IpAddr, Option<Arc<str>>, bool), Arc<str>>;

/// Checks each next-hop's interface and resolves the interface it goes out of.
fn resolve(
    m: &Model,
    seen: &mut Gateways,
    vrf: u16,
    onlink: bool,
    nexthops: &mut [NextHop],
) -> ApiResult<()> {
    for nh in nexthops.iter_mut() {
        if let Some(d) = &nh.dev {
            iface::routed_in(m, d, vrf)?;
        }
        let Some(v) = nh.via else {
            continue;
        };
        let key = (vrf, v, nh.dev.clone(), onlink);
        if let Some(i) = seen.get(&key) {
            nh.iface = i.clone();
            continue;
        }
        if let Some(owner) = local_owner(m, vrf, &v) {
            return Err(ApiError::invalid(format!(
                "next-hop {v} is the router's own address (on interface {owner:?})"
            )));
        }
        nh.iface = if onlink || is_link_local_v6(&v) {
            nh.dev.clone().ok_or_else(|| {
                ApiError::invalid(if onlink {
                    format!("onlink next-hop {v} needs dev IFACE")
                } else {
                    format!("next-hop {v} is IPv6 link-local: give dev IFACE")
                })
            })?
        } else {
            gateway_iface(m, vrf, &v, nh.dev.as_deref()).ok_or_else(|| {
                ApiError::conflict(match &nh.dev {
                    Some(d) => format!(
                        "next-hop {v} is not in a connected subnet of interface {:?} (add an \
                         address in its subnet, or use onlink)",
                        &**d
                    ),
                    None => format!(
                        "next-hop {v} is not in a connected subnet of vrf {vrf} (add an \
                         address in its subnet, or give dev IFACE and onlink)"
                    ),
                })
            })?
        };
        seen.insert(key, nh.iface.clone());
    }
    Ok(())
}

/// The interface whose address `a` is in VRF `vrf`, if it is the router's.
fn local_owner(m: &Model, vrf: u16, a: &IpAddr) -> Option<Arc<str>> {
    m.routes
        .get(&(vrf, Prefix::host(*a)))
        .filter(|r| r.origin == Origin::Local)
        .map(|r| Arc::from(r.iface()))
}

/// The interface of the longest connected subnet of `vrf` holding `a` (on interface `dev`
/// only, if given).
pub(super) fn gateway_iface(
    m: &Model,
    vrf: u16,
    a: &IpAddr,
    dev: Option<&str>,
) -> Option<Arc<str>> {
    let f = Family::of(a);
    let lens: Vec<u8> = m
        .connected_lens
        .range((vrf, f, 0)..=(vrf, f, f.bits()))
        .map(|((_, _, len), _)| *len)
        .collect();
    lens.into_iter().rev().find_map(|len| {
        let r = m.routes.get(&(vrf, Prefix::of(*a, len)))?;
        let i = &r.nexthops.first()?.iface;
        (r.origin == Origin::Connected && dev.is_none_or(|d| d == &**i)).then(|| i.clone())
    })
}

/// Resolves again the gateways of static routes of `vrf` inside `subnet` (a connected
/// subnet that came or went). Err: a route whose gateway no longer resolves, and which.
///
/// Walks the gateway index one entry at a time (a step is O(log n)), so a refusal stops at
/// the first route it finds: the index's keys do not change as routes are resolved again
/// (their gateways stay).
pub(super) fn resolve_again(
    s: &mut Staged,
    vrf: u16,
    subnet: Prefix,
) -> Result<(), (Prefix, IpAddr)> {
    let (lo, hi) = subnet.span();
    let last = (vrf, hi, Prefix::MAX);
    let mut from = Bound::Included((vrf, lo, Prefix::MIN));
    // Gateways resolve the same for every route ((gateway, dev) -> interface): once each.
    type Resolved = BTreeMap<(IpAddr, Option<Arc<str>>), Option<Arc<str>>>;
    let mut seen = Resolved::new();
    while let Some(&key) = s
        .model
        .by_gateway
        .range((from, Bound::Included(last)))
        .next()
    {
        from = Bound::Excluded(key);
        let p = key.2;
        let Some(old) = s.model.routes.get(&(vrf, p)).cloned() else {
            continue;
        };
        if old.onlink {
            continue;
        }
        let mut nexthops = old.nexthops.clone();
        let mut changed = false;
        for nh in &mut nexthops {
            let Some(v) = nh.via.filter(|v| !is_link_local_v6(v)) else {
                continue;
            };
            let now = seen
                .entry((v, nh.dev.clone()))
                .or_insert_with(|| gateway_iface(&s.model, vrf, &v, nh.dev.as_deref()))
                .clone()
                .ok_or((p, v))?;
            if now != nh.iface {
                nh.iface = now;
                changed = true;
            }
        }
        if changed {
            let route = Route {
                nexthops,
                ..(*old).clone()
            };
            set(s, (vrf, p), Some(Arc::new(route)));
        }
    }
    Ok(())
}

/// `route del PREFIX [vrf=ID]`: a static route.
pub(super) fn delete(s: &mut Staged, r: &pb::DeleteRouteRequest) -> ApiResult<String> {
    required("prefix", &r.prefix)?;
    let vrf = vrf::existing(r.vrf)(&s.model)?;
    let prefix = Prefix::parse("prefix", &r.prefix)?;
    match s.model.routes.get(&(vrf, prefix)) {
        None => {
            return Err(ApiError::not_found(format!(
                "route {prefix} not found in vrf {vrf}"
            )))
        }
        Some(e) if e.origin != Origin::Static => {
            return Err(ApiError::conflict(format!(
                "{prefix} in vrf {vrf} is the {} route of an address of interface {:?}: \
                 delete the address instead",
                e.origin.name(),
                e.iface()
            )))
        }
        Some(_) => {}
    }
    set(s, (vrf, prefix), None);
    Ok(format!("{vrf}/{prefix}"))
}

/// Sets (`Some`) or removes the route of `key`, keeping the indexes and recording the
/// route as it was before the transaction.
pub(super) fn set(s: &mut Staged, key: RouteKey, route: Option<Arc<Route>>) {
    let m = &mut s.model;
    let old = match &route {
        Some(r) => m.routes.insert(key, r.clone()),
        None => m.routes.remove(&key),
    };
    if let Some(o) = &old {
        index(m, &mut s.pending, key, o, false);
    }
    if let Some(r) = &route {
        index(m, &mut s.pending, key, r, true);
    }
    let not_static =
        |r: &Option<Arc<Route>>| r.as_ref().is_some_and(|r| r.origin != Origin::Static);
    if not_static(&old) || not_static(&route) {
        s.gateways.clear();
    }
    s.track.routes.push((key, old, route));
}

/// Updates of the indexes of static routes (`by_gateway`, `by_iface`), held while a run of
/// route changes is staged (`on`) and applied in key order at its end ([`flush`]). Route
/// changes never read these indexes; other changes, which do, flush first. A million random
/// inserts into an index of a million entries each miss the cache at every level of its
/// tree (~1 s per index); the same inserts sorted walk it in order (~10x less).
#[derive(Debug, Clone, Default)]
pub(super) struct Pending {
    pub on: bool,
    gateway: Vec<((u16, IpAddr, Prefix), bool)>,
    iface: Vec<(ByIface, bool)>,
}

/// Applies the pending index updates: per key, the last one decides (a set's membership is
/// that of the last insert or remove).
pub(super) fn flush(s: &mut Staged) {
    fn apply<K: Ord + Clone>(ops: &mut Vec<(K, bool)>, set: &mut imbl::OrdSet<K>) {
        // Stable: one key's updates stay in the order they were made.
        ops.sort_by(|a, b| a.0.cmp(&b.0));
        for (i, (k, add)) in ops.iter().enumerate() {
            if ops.get(i + 1).is_some_and(|next| next.0 == *k) {
                continue;
            }
            if *add {
                set.insert(k.clone());
            } else {
                set.remove(k);
            }
        }
        ops.clear();
    }
    apply(&mut s.pending.gateway, &mut s.model.by_gateway);
    apply(&mut s.pending.iface, &mut s.model.by_iface);
}

/// Adds (`add`) or removes a route's entries in the model's indexes (or queues that, while
/// `pending.on`).
fn index(m: &mut Model, pending: &mut Pending, (vrf, p): RouteKey, r: &Route, add: bool) {
    match r.origin {
        Origin::Static => {
            for nh in &r.nexthops {
                if let Some(v) = nh.via {
                    if pending.on {
                        pending.gateway.push(((vrf, v, p), add));
                    } else if add {
                        m.by_gateway.insert((vrf, v, p));
                    } else {
                        m.by_gateway.remove(&(vrf, v, p));
                    }
                }
                let k = (nh.iface.clone(), vrf, p);
                if pending.on {
                    pending.iface.push((k, add));
                } else if add {
                    m.by_iface.insert(k);
                } else {
                    m.by_iface.remove(&k);
                }
            }
        }
        Origin::Connected => {
            let k = (vrf, p.family(), p.length());
            let n = m.connected_lens.get(&k).copied().unwrap_or(0);
            match (add, n) {
                (true, _) => {
                    m.connected_lens.insert(k, n + 1);
                }
                (false, 0 | 1) => {
                    m.connected_lens.remove(&k);
                }
                (false, _) => {
                    m.connected_lens.insert(k, n - 1);
                }
            }
        }
        Origin::Local => {}
    }
}

/// The first static route going through interface `name`: (VRF, prefix).
pub fn first_through(m: &Model, name: &str) -> Option<(u16, Prefix)> {
    let n: Arc<str> = Arc::from(name);
    m.by_iface
        .range((n.clone(), 0, Prefix::MIN)..=(n, u16::MAX, Prefix::MAX))
        .next()
        .map(|(_, v, p)| (*v, *p))
}

/// The first static route of `vrf` with gateway `a`.
pub(super) fn first_via_gateway(m: &Model, vrf: u16, a: &IpAddr) -> Option<Prefix> {
    m.by_gateway
        .range((vrf, *a, Prefix::MIN)..=(vrf, *a, Prefix::MAX))
        .next()
        .map(|(_, _, p)| *p)
}

/// A route's proto form.
/// The route of `prefix` in VRF `vrf`, if there is one.
pub fn of(m: &Model, vrf: u16, prefix: &Prefix) -> Option<Arc<Route>> {
    m.routes.get(&(vrf, *prefix)).cloned()
}

pub fn to_pb(vrf: u16, p: &Prefix, r: &Route) -> pb::Route {
    pb::Route {
        prefix: p.to_string(),
        vrf: u32::from(vrf),
        nexthops: r
            .nexthops
            .iter()
            .map(|nh| pb::NextHop {
                via: nh.via.map(|v| v.to_string()).unwrap_or_default(),
                iface: nh.iface.to_string(),
            })
            .collect(),
        onlink: r.onlink,
        origin: r.origin.name().to_string(),
    }
}

/// The routes of VRF `vrf` (of every VRF if `None`), by VRF and prefix.
pub fn list(m: &Model, vrf: Option<u32>) -> ApiResult<Vec<pb::Route>> {
    let range = match vrf {
        Some(v) => {
            let id = vrf::existing(v)(m)?;
            (id, Prefix::MIN)..=(id, Prefix::MAX)
        }
        None => (0, Prefix::MIN)..=(u16::MAX, Prefix::MAX),
    };
    Ok(m.routes
        .range(range)
        .map(|((v, p), r)| to_pb(*v, p, r))
        .collect())
}

/// One route.
pub fn get(m: &Model, vrf: u32, prefix: &str) -> ApiResult<pb::Route> {
    let id = vrf::existing(vrf)(m)?;
    let p = Prefix::parse("prefix", prefix)?;
    m.routes
        .get(&(id, p))
        .map(|r| to_pb(id, &p, r))
        .ok_or_else(|| ApiError::not_found(format!("route {p} not found in vrf {id}")))
}

/// The changes that re-create every static route (after the addresses their gateways
/// need).
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    for ((vrf, p), r) in &m.routes {
        if r.origin != Origin::Static {
            continue;
        }
        out.push(C::AddRoute(pb::AddRouteRequest {
            prefix: p.to_string(),
            vrf: u32::from(*vrf),
            nexthops: r
                .nexthops
                .iter()
                .map(|nh| pb::NextHop {
                    via: nh.via.map(|v| v.to_string()).unwrap_or_default(),
                    iface: nh.dev.as_deref().unwrap_or_default().to_string(),
                })
                .collect(),
            onlink: r.onlink,
        }));
    }
}

/// The net route changes of a transaction, per VRF and family, from the log of routes set
/// (each key's first `before` and last `after` count), in key order.
pub(super) fn delta(
    mut log: Vec<RouteSet>,
    deleted: &BTreeSet<Arc<str>>,
) -> BTreeMap<(u16, Family), RouteDelta> {
    // Stable: the entries of one key stay in the order they were set.
    log.sort_by_key(|e| e.0);
    let mut out: BTreeMap<(u16, Family), RouteDelta> = BTreeMap::new();
    let mut i = 0;
    while i < log.len() {
        let key = log[i].0;
        let mut j = i + 1;
        while j < log.len() && log[j].0 == key {
            j += 1;
        }
        let (before, now) = (&log[i].1, log[j - 1].2.as_ref());
        i = j;
        let (vrf, p) = key;
        let part = || (vrf, p.family());
        match (before, now) {
            (None, None) => {}
            (Some(_), None) => out.entry(part()).or_default().removed.push(p),
            (None, Some(r)) => out.entry(part()).or_default().added.push((p, r.clone())),
            (Some(b), Some(r)) => {
                let same = Arc::ptr_eq(b, r) || b == r;
                let reborn = r.nexthops.iter().any(|n| deleted.contains(&n.iface));
                if !same || reborn {
                    out.entry(part()).or_default().replaced.push((p, r.clone()));
                }
            }
        }
    }
    out
}
