//! NAT: masquerade (source NAT of traffic leaving an interface to its address) and port
//! mappings (Docker's `-p`: TCP/UDP to a port of an interface's addresses goes to
//! IP:PORT). Validation, staging, persisted form, proto form and the plan's part
//! ([`plan`]).
//!
//! Both are set on an L3 interface: an interface that is not a bridge member nor
//! cross-connected, or a bridge's routed interface `bvi:BR`. Masquerade translates to the
//! interface's first IPv4 and first IPv6 address, as they are at each publish (an interface
//! without an address of a family leaves that family alone). A port mapping is keyed by
//! (interface, protocol, port) and answers on every address of its interface, in the
//! interface's VRF; its target must be reachable there (some route covers it, as for a
//! service's backends). Deleting an interface (or a bridge) removes its masquerade and port
//! mappings with it, as it does its ACL bindings (so the journal replays to the same state).
//!
//! Persisted form: masquerading interfaces, then port mappings, after everything else.

use std::net::IpAddr;
use std::sync::Arc;

use vswitch_dataplane::nat::{Masquerade, PortMap};
use vswitch_dataplane::IfIndex;
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::ip::{check_unicast, parse_ip};
use super::service::{check_port, check_reachable, endpoint, parse_proto, proto_name};
use super::{addr, iface, Model, Staged};
use crate::error::{required, ApiError, ApiResult};

/// The plan's NAT inputs: masquerading interfaces (index, addresses) and port mappings
/// (VRF, mapping), as [`vswitch_dataplane::nat::NatPlan::new`] takes them.
pub type NatParts = (Vec<(IfIndex, Masquerade)>, Vec<(u16, PortMap)>);

/// A port mapping's key: (interface, protocol, port).
pub type PortMapKey = (Arc<str>, u8, u16);

/// `nat masquerade IFACE on|off`.
pub(super) fn set_masquerade(s: &mut Staged, r: &pb::SetMasqueradeRequest) -> ApiResult<String> {
    iface::routed(&s.model, &r.iface)?;
    let key: Arc<str> = Arc::from(r.iface.as_str());
    let changed = if r.on {
        s.model.masquerade.insert(key).is_none()
    } else {
        s.model.masquerade.remove(&key).is_some()
    };
    if changed {
        s.diff.plan = true;
    }
    Ok(r.iface.clone())
}

/// The key of a port mapping request.
fn key(iface: &str, proto: &str, port: u32) -> ApiResult<PortMapKey> {
    required("iface", iface)?;
    let proto = parse_proto("proto", proto)?;
    let port = check_port("port", port)?;
    Ok((Arc::from(iface), proto, port))
}

fn key_text((i, proto, port): &PortMapKey) -> String {
    format!("{i}/{}/{port}", proto_name(*proto))
}

/// `nat portmap add IFACE tcp|udp PORT IP:PORT`.
pub(super) fn add_portmap(s: &mut Staged, r: &pb::AddPortMapRequest) -> ApiResult<String> {
    let k = key(&r.iface, &r.proto, r.port)?;
    let l3 = iface::routed(&s.model, &r.iface)?;
    required("to_ip", &r.to_ip)?;
    let to = parse_ip("to_ip", &r.to_ip)?;
    check_unicast("to_ip", &to)?;
    let to_port = check_port("to_port", r.to_port)?;
    if let Some((ip, p)) = s.model.portmaps.get(&k) {
        return Err(ApiError::exists(format!(
            "{} {} {} is mapped to {} already (nat portmap del first)",
            r.iface,
            proto_name(k.1),
            k.2,
            endpoint(ip, *p)
        )));
    }
    check_reachable(&s.model, l3.vrf, "to_ip", &to)?;
    let text = key_text(&k);
    s.model.portmaps.insert(k, (to, to_port));
    s.diff.plan = true;
    Ok(text)
}

/// `nat portmap del IFACE tcp|udp PORT`.
pub(super) fn delete_portmap(s: &mut Staged, r: &pb::DeletePortMapRequest) -> ApiResult<String> {
    let k = key(&r.iface, &r.proto, r.port)?;
    if s.model.portmaps.remove(&k).is_none() {
        return Err(ApiError::not_found(format!(
            "no port mapping on {} {} {}",
            r.iface,
            proto_name(k.1),
            k.2
        )));
    }
    s.diff.plan = true;
    Ok(key_text(&k))
}

/// Drops the masquerade and port mappings of `name` (an interface or `bvi:BR` that is
/// going).
pub(super) fn forget_iface(s: &mut Staged, name: &str) {
    let n: Arc<str> = Arc::from(name);
    if s.model.masquerade.remove(&n).is_some() {
        s.diff.plan = true;
    }
    let keys: Vec<PortMapKey> = s
        .model
        .portmaps
        .range((n.clone(), 0, 0)..=(n, u8::MAX, u16::MAX))
        .map(|(k, _)| k.clone())
        .collect();
    for k in keys {
        s.model.portmaps.remove(&k);
        s.diff.plan = true;
    }
}

/// The NAT setting `name` has, if any (masquerade, a port mapping): refusals of L2 roles
/// name it.
pub(super) fn use_of(m: &Model, name: &str) -> Option<String> {
    let n: Arc<str> = Arc::from(name);
    if m.masquerade.contains(&n) {
        return Some("masquerade on".to_string());
    }
    m.portmaps
        .range((n.clone(), 0, 0)..=(n, u8::MAX, u16::MAX))
        .next()
        .map(|(k, _)| format!("port mapping {}", key_text(k)))
}

/// The addresses masquerade on `name` translates to: its first IPv4 and first IPv6.
pub fn masquerade_of(m: &Model, name: &str) -> Masquerade {
    let mut out = Masquerade::default();
    for c in addr::of_iface(m, name) {
        match c.addr() {
            IpAddr::V4(a) if out.v4.is_none() => out.v4 = Some(a),
            IpAddr::V6(a) if out.v6.is_none() => out.v6 = Some(a),
            _ => {}
        }
    }
    out
}

/// The proto form of every masquerading interface and port mapping.
pub fn to_pb(m: &Model) -> pb::Nat {
    pb::Nat {
        masquerade: m
            .masquerade
            .iter()
            .map(|i| {
                let a = masquerade_of(m, i);
                pb::Masquerade {
                    iface: i.to_string(),
                    v4: a.v4.map(|a| a.to_string()).unwrap_or_default(),
                    v6: a.v6.map(|a| a.to_string()).unwrap_or_default(),
                }
            })
            .collect(),
        portmaps: m.portmaps.iter().map(portmap_pb).collect(),
    }
}

fn portmap_pb(((i, proto, port), (ip, to_port)): (&PortMapKey, &(IpAddr, u16))) -> pb::PortMap {
    pb::PortMap {
        iface: i.to_string(),
        proto: proto_name(*proto).to_string(),
        port: u32::from(*port),
        to_ip: ip.to_string(),
        to_port: u32::from(*to_port),
    }
}

/// One port mapping's proto form.
pub fn portmap_get(m: &Model, iface: &str, proto: &str, port: u32) -> ApiResult<pb::PortMap> {
    let k = key(iface, proto, port)?;
    m.portmaps
        .get_key_value(&k)
        .map(portmap_pb)
        .ok_or_else(|| ApiError::not_found(format!("no port mapping on {}", key_text(&k))))
}

/// Masquerading interfaces and port mappings in all.
pub fn len(m: &Model) -> (usize, usize) {
    (m.masquerade.len(), m.portmaps.len())
}

/// The plan's part: masquerading interfaces with their addresses, and port mappings with
/// their interface's VRF and addresses; each of an interface with an index (`index`:
/// interfaces and `bvi:BR`).
pub fn plan(m: &Model, index: &dyn Fn(&str) -> Option<IfIndex>) -> NatParts {
    let masq = m
        .masquerade
        .iter()
        .filter_map(|i| Some((index(i)?, masquerade_of(m, i))))
        .collect();
    let mut maps = Vec::with_capacity(m.portmaps.len());
    for ((i, proto, port), (ip, to_port)) in &m.portmaps {
        let (Some(x), Some(l3)) = (index(i), iface::l3_get(m, i)) else {
            continue;
        };
        maps.push((
            l3.vrf,
            PortMap {
                iface: x,
                addrs: addr::of_iface(m, i).iter().map(|c| c.addr()).collect(),
                proto: *proto,
                port: *port,
                to: (*ip, *to_port),
            },
        ));
    }
    (masq, maps)
}

/// The changes that re-create every masquerading interface, then every port mapping.
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    for i in &m.masquerade {
        out.push(C::SetMasquerade(pb::SetMasqueradeRequest {
            iface: i.to_string(),
            on: true,
        }));
    }
    for e in &m.portmaps {
        let p = portmap_pb(e);
        out.push(C::AddPortMap(pb::AddPortMapRequest {
            iface: p.iface,
            proto: p.proto,
            port: p.port,
            to_ip: p.to_ip,
            to_port: p.to_port,
        }));
    }
}
