//! Services (Kubernetes' ClusterIP and NodePort): validation, staging, persisted form,
//! proto form and the plan's part ([`build`], [`plan`]).
//!
//! A service is a name, a VRF, a protocol (TCP or UDP), a virtual IP and port, an optional
//! NodePort (the same service on that port of every address of the switch in its VRF),
//! client-IP affinity or none, and 0 to [`MAX_BACKENDS`] backends (IP, port, weight; weight
//! 0 drains one). Checks, each naming its field, nothing changed on error:
//! - ports 1 to 65535; protocol tcp or udp; the VRF exists;
//! - (VRF, protocol, VIP, port) and (VRF, protocol, NodePort) belong to one service
//!   (ALREADY_EXISTS names the other);
//! - every backend is of the VIP's family, given once (ip:port), and reachable: some route
//!   of the service's VRF (static, a default route included, connected or local) covers
//!   it. A route deleted later is not checked again: traffic to such a backend is then
//!   dropped as any unroutable packet is (no_route).
//!
//! `SetServiceBackends` replaces the backend set (the switch builds the service's Maglev
//! table again; established flows keep their backend through their sessions).
//!
//! Persisted form: every service, after routes and addresses (its backends' reachability
//! is checked against them on replay).

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use vswitch_dataplane::nat::{BackendSpec, Service as BuiltService, ServiceSpec, TCP, UDP};
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::ip::{check_unicast, parse_ip, Family, Prefix};
use super::{vrf, Model, Staged};
use crate::error::{required, ApiError, ApiResult};
use crate::names::check_name;

/// Most backends of one service.
pub const MAX_BACKENDS: usize = 10_000;
/// The largest weight of a backend.
pub const MAX_WEIGHT: u32 = 65_535;

/// A service's front: (VRF, protocol, VIP, port).
pub type Front = (u16, u8, IpAddr, u16);

/// `tcp` or `udp`, as the API names them, to the IP protocol number.
pub fn parse_proto(field: &str, s: &str) -> ApiResult<u8> {
    match s {
        "tcp" => Ok(TCP),
        "udp" => Ok(UDP),
        "" => Err(ApiError::invalid(format!(
            "{field} is required (tcp or udp)"
        ))),
        p => Err(ApiError::invalid(format!(
            "{field} must be tcp or udp, not {p:?}"
        ))),
    }
}

/// The API's name of protocol `p` (tcp or udp).
pub fn proto_name(p: u8) -> &'static str {
    if p == UDP {
        "udp"
    } else {
        "tcp"
    }
}

/// A port: 1 to 65535.
pub fn check_port(field: &str, v: u32) -> ApiResult<u16> {
    match u16::try_from(v) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(ApiError::invalid(format!(
            "{field} must be from 1 to 65535, not {v}"
        ))),
    }
}

/// `ip:port`, `[ip]:port` for IPv6.
pub fn endpoint(ip: &IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Whether some route of VRF `vrf` (static, default, connected or local) covers `a`.
/// Probes each prefix length from /0 up (a default route answers at once): O(bits log n).
pub fn reachable(m: &Model, vrf: u16, a: &IpAddr) -> bool {
    let bits = Family::of(a).bits();
    (0..=bits).any(|len| m.routes.contains_key(&(vrf, Prefix::of(*a, len))))
}

/// A target address (a backend's, a port mapping's) that VRF `vrf` must reach: INVALID_ARGUMENT
/// naming `what` otherwise.
pub(super) fn check_reachable(m: &Model, vrf: u16, what: &str, a: &IpAddr) -> ApiResult<()> {
    if reachable(m, vrf, a) {
        return Ok(());
    }
    Err(ApiError::invalid(format!(
        "{what}: {a} is outside every network vrf {vrf} reaches (no route or connected \
         subnet covers it; add an address or a route first)"
    )))
}

/// The backends of a request for a service at `vip` in `vrf`: each checked (errors name
/// the backend, from 1, and its address).
fn check_backends(
    m: &Model,
    vrf: u16,
    vip: &IpAddr,
    list: &[pb::Backend],
) -> ApiResult<Vec<BackendSpec>> {
    if list.len() > MAX_BACKENDS {
        return Err(ApiError::invalid(format!(
            "backends: a service has at most {MAX_BACKENDS} backends, not {}",
            list.len()
        )));
    }
    let mut seen = HashSet::with_capacity(list.len());
    let mut out = Vec::with_capacity(list.len());
    // Reachability, once per address (backends often share theirs).
    let mut reached: HashSet<IpAddr> = HashSet::new();
    for (i, b) in list.iter().enumerate() {
        let n = i + 1;
        let ip = parse_ip(&format!("backend {n} ip"), &b.ip)?;
        check_unicast(&format!("backend {n} ip"), &ip)?;
        let port = check_port(&format!("backend {n} ({ip}) port"), b.port)?;
        let name = endpoint(&ip, port);
        if Family::of(&ip) != Family::of(vip) {
            return Err(ApiError::invalid(format!(
                "backend {n} ({name}) is {} but the vip {vip} is {}: a service's backends are \
                 of its vip's family",
                Family::of(&ip).name(),
                Family::of(vip).name()
            )));
        }
        let weight = b.weight.unwrap_or(1);
        if weight > MAX_WEIGHT {
            return Err(ApiError::invalid(format!(
                "backend {n} ({name}) weight must be from 0 to {MAX_WEIGHT}, not {weight}"
            )));
        }
        if !seen.insert((ip, port)) {
            return Err(ApiError::invalid(format!(
                "backend {n} ({name}) is given twice"
            )));
        }
        if !reached.contains(&ip) {
            check_reachable(m, vrf, &format!("backend {n} ({name})"), &ip)?;
            reached.insert(ip);
        }
        out.push(BackendSpec { ip, port, weight });
    }
    Ok(out)
}

/// Service `name`, NOT_FOUND if there is none.
pub fn existing<'a>(m: &'a Model, name: &str) -> ApiResult<&'a Arc<ServiceSpec>> {
    m.services
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("service {name:?} not found")))
}

/// `service add NAME IP:PORT proto=tcp|udp backends=... [nodeport=N] [affinity=client-ip]
/// [vrf=ID]`.
pub(super) fn add(s: &mut Staged, r: &pb::AddServiceRequest) -> ApiResult<String> {
    check_name("name", &r.name).map_err(ApiError::invalid)?;
    if s.model.services.contains_key(r.name.as_str()) {
        return Err(ApiError::exists(format!(
            "service {:?} exists already (service set {} backends=... replaces its backends)",
            r.name, r.name
        )));
    }
    let port = check_port("port", r.port)?;
    let proto = parse_proto("proto", &r.proto)?;
    required("vip", &r.vip)?;
    let vip = parse_ip("vip", &r.vip)?;
    check_unicast("vip", &vip)?;
    let nodeport = r.nodeport.map(|p| check_port("nodeport", p)).transpose()?;
    let affinity = match r.affinity.as_str() {
        "" | "none" => false,
        "client-ip" => true,
        a => {
            return Err(ApiError::invalid(format!(
                "affinity must be client-ip or none, not {a:?}"
            )))
        }
    };
    let vrf = vrf::existing(r.vrf)(&s.model)?;
    let front = (vrf, proto, vip, port);
    if let Some(other) = s.model.service_fronts.get(&front) {
        return Err(ApiError::exists(format!(
            "vip {} {} in vrf {vrf} is service {other:?}'s already",
            endpoint(&vip, port),
            proto_name(proto)
        )));
    }
    if let Some(np) = nodeport {
        if let Some(other) = s.model.service_nodeports.get(&(vrf, proto, np)) {
            return Err(ApiError::exists(format!(
                "nodeport {np} {} in vrf {vrf} is service {other:?}'s already",
                proto_name(proto)
            )));
        }
    }
    let backends = check_backends(&s.model, vrf, &vip, &r.backends)?;
    let name: Arc<str> = Arc::from(r.name.as_str());
    s.model.service_fronts.insert(front, name.clone());
    if let Some(np) = nodeport {
        s.model.service_nodeports.insert((vrf, proto, np), name);
    }
    s.model.services.insert(
        r.name.clone(),
        Arc::new(ServiceSpec {
            name: r.name.clone(),
            vrf,
            proto,
            vip,
            port,
            nodeport,
            affinity,
            backends,
        }),
    );
    s.diff.services.insert(r.name.clone());
    s.diff.plan = true;
    Ok(r.name.clone())
}

/// `service set NAME backends=...`: the backend set replaced.
pub(super) fn set_backends(s: &mut Staged, r: &pb::SetServiceBackendsRequest) -> ApiResult<String> {
    required("name", &r.name)?;
    let old = existing(&s.model, &r.name)?.clone();
    let backends = check_backends(&s.model, old.vrf, &old.vip, &r.backends)?;
    let mut spec = (*old).clone();
    spec.backends = backends;
    s.model.services.insert(r.name.clone(), Arc::new(spec));
    s.diff.services.insert(r.name.clone());
    s.diff.plan = true;
    Ok(r.name.clone())
}

/// `service del NAME`.
pub(super) fn delete(s: &mut Staged, r: &pb::DeleteServiceRequest) -> ApiResult<String> {
    required("name", &r.name)?;
    let old = existing(&s.model, &r.name)?.clone();
    s.model
        .service_fronts
        .remove(&(old.vrf, old.proto, old.vip, old.port));
    if let Some(np) = old.nodeport {
        s.model.service_nodeports.remove(&(old.vrf, old.proto, np));
    }
    s.model.services.remove(r.name.as_str());
    s.diff.services.insert(r.name.clone());
    s.diff.plan = true;
    Ok(r.name.clone())
}

fn backends_pb(spec: &ServiceSpec) -> Vec<pb::Backend> {
    spec.backends
        .iter()
        .map(|b| pb::Backend {
            ip: b.ip.to_string(),
            port: u32::from(b.port),
            weight: Some(b.weight),
        })
        .collect()
}

/// A service's proto form, with the counters of its built form (`None`, or one built for
/// another spec: all 0).
pub fn to_pb(spec: &ServiceSpec, built: Option<&BuiltService>) -> pb::Service {
    let stats = built
        .filter(|b| b.spec == *spec)
        .map(BuiltService::stats)
        .unwrap_or_default();
    pb::Service {
        name: spec.name.clone(),
        vip: spec.vip.to_string(),
        port: u32::from(spec.port),
        proto: proto_name(spec.proto).to_string(),
        nodeport: spec.nodeport.map_or(0, u32::from),
        affinity: if spec.affinity { "client-ip" } else { "none" }.to_string(),
        vrf: u32::from(spec.vrf),
        backends: spec
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let st = stats.get(i).copied().unwrap_or_default();
                pb::ServiceBackend {
                    ip: b.ip.to_string(),
                    port: u32::from(b.port),
                    weight: b.weight,
                    flows: st.flows,
                }
            })
            .collect(),
    }
}

/// Every service's name, in order.
pub fn names(m: &Model) -> impl Iterator<Item = &String> {
    m.services.keys()
}

/// Services in all.
pub fn len(m: &Model) -> usize {
    m.services.len()
}

/// Service `name` built for the dataplane for `workers` workers (its Maglev table, on the
/// control thread), or `cached` again if it was built from the same spec (its counters
/// go on). None: there is no such service.
pub fn build(
    m: &Model,
    name: &str,
    workers: usize,
    cached: Option<&Arc<BuiltService>>,
) -> Option<Arc<BuiltService>> {
    let spec = m.services.get(name)?;
    match cached {
        Some(c) if c.spec == **spec => Some(c.clone()),
        _ => Some(BuiltService::build((**spec).clone(), workers)),
    }
}

/// The plan's part: every service of the model that is built, in name order.
pub fn plan(m: &Model, built: &BTreeMap<String, Arc<BuiltService>>) -> Vec<Arc<BuiltService>> {
    m.services
        .keys()
        .filter_map(|n| built.get(n).cloned())
        .collect()
}

/// The changes that re-create every service.
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    for spec in m.services.values() {
        out.push(C::AddService(pb::AddServiceRequest {
            name: spec.name.clone(),
            vip: spec.vip.to_string(),
            port: u32::from(spec.port),
            proto: proto_name(spec.proto).to_string(),
            backends: backends_pb(spec),
            nodeport: spec.nodeport.map(u32::from),
            affinity: if spec.affinity { "client-ip" } else { "" }.to_string(),
            vrf: u32::from(spec.vrf),
        }));
    }
}
