//! Neighbours: static entries (interface, IP -> MAC) and the settings of the table the
//! dataplane fills by ARP / ND itself. Validation, staging, persisted form, proto form.
//!
//! A static neighbour is a unicast IP on an L3 interface, in a connected subnet of it or
//! not (as Linux's `ip neigh add`: flannel's onlink gateway lies outside the /32 of its
//! VXLAN device); its MAC is unicast. Adding an entry that exists replaces its MAC (as `ip
//! neigh replace`). Entries go with their interface, and one in a connected subnet with
//! that subnet when its last address is deleted. The table's `limit` (1 to 1000000,
//! default 65536) and `age` (1 to 86400 s, default 300) apply to resolved entries; static
//! ones are neither counted nor aged.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;

use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::ip::{check_unicast, is_link_local_v6, parse_ip, Prefix, IP_MAX, IP_MIN};
use super::{iface, route, Model, Staged};
use crate::error::{required, ApiError, ApiResult};
use crate::names::{format_mac, parse_mac};

/// Default most resolved neighbours.
pub const DEFAULT_LIMIT: u32 = 65536;
/// Default seconds an unconfirmed resolved neighbour lives.
pub const DEFAULT_AGE: u32 = 300;
const MAX_LIMIT: u32 = 1_000_000;
const MAX_AGE: u32 = 86_400;

/// The neighbour table's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighConfig {
    pub limit: u32,
    pub age: u32,
}

impl Default for NeighConfig {
    fn default() -> Self {
        NeighConfig {
            limit: DEFAULT_LIMIT,
            age: DEFAULT_AGE,
        }
    }
}

/// A static neighbour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborEntry {
    pub iface: Arc<str>,
    pub ip: IpAddr,
    pub mac: [u8; 6],
}

/// The static neighbours a transaction added, changed and removed (net).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NeighborDelta {
    pub added: Vec<NeighborEntry>,
    /// Entries whose MAC changed, or whose interface was re-created.
    pub replaced: Vec<NeighborEntry>,
    pub removed: Vec<(Arc<str>, IpAddr)>,
}

/// The keys of interface `name`'s entries with IPs from `lo` to `hi`.
fn range(name: &str, lo: IpAddr, hi: IpAddr) -> RangeInclusive<(Arc<str>, IpAddr)> {
    let n: Arc<str> = Arc::from(name);
    (n.clone(), lo)..=(n, hi)
}

/// `neigh add IFACE IP MAC`: adds the entry or replaces its MAC.
pub(super) fn add(s: &mut Staged, r: &pb::AddNeighborRequest) -> ApiResult<String> {
    required("iface", &r.iface)?;
    required("ip", &r.ip)?;
    required("mac", &r.mac)?;
    iface::routed(&s.model, &r.iface)?;
    let ip = parse_ip("ip", &r.ip)?;
    check_unicast("ip", &ip)?;
    let mac = parse_mac("mac", &r.mac).map_err(ApiError::invalid)?;
    set(s, Arc::from(r.iface.as_str()), ip, Some(mac));
    Ok(format!("{}/{ip}", r.iface))
}

/// `neigh del IFACE IP`.
pub(super) fn delete(s: &mut Staged, r: &pb::DeleteNeighborRequest) -> ApiResult<String> {
    required("iface", &r.iface)?;
    required("ip", &r.ip)?;
    iface::l3_of(&s.model, &r.iface)?;
    let ip = parse_ip("ip", &r.ip)?;
    let name: Arc<str> = Arc::from(r.iface.as_str());
    if !s.model.neighbors.contains_key(&(name.clone(), ip)) {
        return Err(ApiError::not_found(format!(
            "neighbour {ip} not found on interface {:?}",
            r.iface
        )));
    }
    set(s, name, ip, None);
    Ok(format!("{}/{ip}", r.iface))
}

/// `neigh set [limit=N] [age=SECONDS]`.
pub(super) fn set_config(s: &mut Staged, r: &pb::SetNeighborConfigRequest) -> ApiResult<String> {
    if r.limit.is_none() && r.age.is_none() {
        return Err(ApiError::invalid("nothing to set: give limit and/or age"));
    }
    if let Some(l) = r.limit.filter(|l| !(1..=MAX_LIMIT).contains(l)) {
        return Err(ApiError::invalid(format!(
            "limit must be from 1 to {MAX_LIMIT}, not {l}"
        )));
    }
    if let Some(a) = r.age.filter(|a| !(1..=MAX_AGE).contains(a)) {
        return Err(ApiError::invalid(format!(
            "age must be from 1 to {MAX_AGE} seconds, not {a}"
        )));
    }
    let before = s.model.neigh_config;
    s.track.neigh_config.get_or_insert(before);
    let c = &mut s.model.neigh_config;
    c.limit = r.limit.unwrap_or(c.limit);
    c.age = r.age.unwrap_or(c.age);
    Ok("neighbor".to_string())
}

/// Sets (`Some`) or removes an entry, recording it as it was.
fn set(s: &mut Staged, iface: Arc<str>, ip: IpAddr, mac: Option<[u8; 6]>) {
    let key = (iface, ip);
    let old = match mac {
        Some(m) => s.model.neighbors.insert(key.clone(), m),
        None => s.model.neighbors.remove(&key),
    };
    s.track.neighbors.entry(key).or_insert(old);
}

/// The IP of the first entry of interface `name`.
pub(super) fn first(m: &Model, name: &str) -> Option<IpAddr> {
    m.neighbors
        .range(range(name, IP_MIN, IP_MAX))
        .next()
        .map(|((_, ip), _)| *ip)
}

/// Removes every entry of `name` (which is going).
pub(super) fn remove_all(s: &mut Staged, name: &str) {
    let keys: Vec<_> = s
        .model
        .neighbors
        .range(range(name, IP_MIN, IP_MAX))
        .map(|(k, _)| k.clone())
        .collect();
    for (n, ip) in keys {
        set(s, n, ip, None);
    }
}

/// Removes the entries of `name` in `subnet` that no connected subnet of `name` holds any
/// more (the subnet's last address went).
pub(super) fn drop_unreachable(s: &mut Staged, name: &str, vrf: u16, subnet: Prefix) {
    let (lo, hi) = subnet.span();
    let gone: Vec<_> = s
        .model
        .neighbors
        .range(range(name, lo, hi))
        .map(|(k, _)| k.clone())
        .filter(|(_, ip)| {
            !is_link_local_v6(ip) && route::gateway_iface(&s.model, vrf, ip, Some(name)).is_none()
        })
        .collect();
    for (n, ip) in gone {
        set(s, n, ip, None);
    }
}

/// The static entries (of interface `iface` only, if given) in their proto form.
pub fn list(m: &Model, iface: Option<&str>) -> ApiResult<Vec<pb::Neighbor>> {
    let to_pb = |((n, ip), mac): (&(Arc<str>, IpAddr), &[u8; 6])| entry_pb(n, ip, *mac);
    Ok(match iface {
        Some(n) => {
            iface::l3_of(m, n)?;
            m.neighbors
                .range(range(n, IP_MIN, IP_MAX))
                .map(to_pb)
                .collect()
        }
        None => m.neighbors.iter().map(to_pb).collect(),
    })
}

/// One static entry.
pub fn get(m: &Model, iface: &str, ip: &str) -> ApiResult<pb::Neighbor> {
    let a = parse_ip("ip", ip)?;
    let key = (Arc::from(iface), a);
    m.neighbors
        .get(&key)
        .map(|mac| entry_pb(&key.0, &a, *mac))
        .ok_or_else(|| {
            ApiError::not_found(format!("neighbour {a} not found on interface {iface:?}"))
        })
}

fn entry_pb(iface: &str, ip: &IpAddr, mac: [u8; 6]) -> pb::Neighbor {
    pb::Neighbor {
        iface: iface.to_string(),
        ip: ip.to_string(),
        mac: format_mac(mac),
        state: "permanent".to_string(),
        r#static: true,
    }
}

/// The table's settings in their proto form.
pub fn config_pb(m: &Model) -> pb::NeighborConfig {
    pb::NeighborConfig {
        limit: m.neigh_config.limit,
        age: m.neigh_config.age,
    }
}

/// The changes that re-create every static entry (after the addresses they need).
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    for ((iface, ip), mac) in &m.neighbors {
        out.push(C::AddNeighbor(pb::AddNeighborRequest {
            iface: iface.to_string(),
            ip: ip.to_string(),
            mac: format_mac(*mac),
        }));
    }
}

/// The change that re-creates the table's settings, if they are not the defaults.
pub(super) fn persisted_config(m: &Model, out: &mut Vec<C>) {
    if m.neigh_config != NeighConfig::default() {
        out.push(C::SetNeighborConfig(pb::SetNeighborConfigRequest {
            limit: Some(m.neigh_config.limit),
            age: Some(m.neigh_config.age),
        }));
    }
}

/// The net neighbour changes of a transaction.
pub(super) fn delta(
    m: &Model,
    touched: &BTreeMap<(Arc<str>, IpAddr), Option<[u8; 6]>>,
    deleted: &BTreeSet<Arc<str>>,
) -> NeighborDelta {
    let mut d = NeighborDelta::default();
    for (key, before) in touched {
        let now = m.neighbors.get(key).copied();
        let entry = |mac| NeighborEntry {
            iface: key.0.clone(),
            ip: key.1,
            mac,
        };
        match (before, now) {
            (None, None) => {}
            (Some(_), None) => d.removed.push(key.clone()),
            (None, Some(mac)) => d.added.push(entry(mac)),
            (Some(b), Some(mac)) => {
                if *b != mac || deleted.contains(&key.0) {
                    d.replaced.push(entry(mac));
                }
            }
        }
    }
    d
}
