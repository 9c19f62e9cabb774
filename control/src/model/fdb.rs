//! Static MAC entries (the desired part of a bridge's MAC table; the learned part is the
//! dataplane's): validation, staging, persisted form. Deleting a learned entry and flushing
//! learned entries change no desired state: they are recorded for the switch to do.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::bridge::check_vlan;
use super::{Model, Staged};
use crate::error::{required, ApiError, ApiResult};
use crate::names::{format_mac, parse_mac};

/// A static MAC entry's key: bridge id, VLAN, MAC (ordered so that a bridge's entries are
/// one range).
pub type StaticKey = (u16, u16, [u8; 6]);

/// Where a static entry's frames go: out of `iface`, and for an entry behind a vxlan or
/// geneve tunnel member, to the outer destination `remote` (none: the tunnel's remotes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticEntry {
    pub iface: Arc<str>,
    pub remote: Option<IpAddr>,
}

/// Every key of bridge `id`'s entries lies in this range.
fn bridge_range(id: u16) -> std::ops::RangeInclusive<StaticKey> {
    (id, 0, [0; 6])..=(id, u16::MAX, [0xff; 6])
}

/// An entry's VLAN as the API takes it: 0 (untagged) or 1 to 4094.
pub fn entry_vlan(v: u32) -> ApiResult<u16> {
    if v == 0 {
        Ok(0)
    } else {
        check_vlan("vlan", v)
    }
}

/// `fdb add BR MAC IFACE [vlan=ID] [remote=IP]`: never aged, never moved by learning;
/// remote= only behind a vxlan or geneve tunnel (see tunnel.rs).
pub(super) fn add(s: &mut Staged, index: usize, r: &pb::AddFdbRequest) -> ApiResult<String> {
    required("bridge", &r.bridge)?;
    required("mac", &r.mac)?;
    required("iface", &r.iface)?;
    let b = s.model.bridge(&r.bridge)?;
    let mac = parse_mac("mac", &r.mac).map_err(ApiError::invalid)?;
    s.model.iface(&r.iface)?;
    let Some(member) = b.members.get(&r.iface) else {
        return Err(ApiError::conflict(format!(
            "interface {:?} is not a member of bridge {:?}",
            r.iface, r.bridge
        )));
    };
    let vlan = entry_vlan(r.vlan)?;
    if !member.mode().carries(vlan) {
        return Err(ApiError::invalid(format!(
            "interface {:?} does not carry VLAN {vlan} in bridge {:?}",
            r.iface, r.bridge
        )));
    }
    let remote = super::tunnel::entry_remote(&s.model, &r.iface, &r.remote)?;
    let key = (b.id, vlan, mac);
    let entry = StaticEntry {
        iface: Arc::from(r.iface.as_str()),
        remote,
    };
    s.model.statics.insert(key, entry);
    s.diff.statics.insert(key, index);
    Ok(format!("{}/{}", r.bridge, r.mac))
}

/// `fdb del BR MAC [vlan=ID]`: a static entry from the model, or a learned one from the
/// MAC table (whether it is there, the switch checks).
pub(super) fn delete(s: &mut Staged, index: usize, r: &pb::DeleteFdbRequest) -> ApiResult<String> {
    required("bridge", &r.bridge)?;
    required("mac", &r.mac)?;
    let id = s.model.bridge(&r.bridge)?.id;
    let mac = parse_mac("mac", &r.mac).map_err(ApiError::invalid)?;
    let vlan = entry_vlan(r.vlan)?;
    let key = (id, vlan, mac);
    if s.model.statics.remove(&key).is_some() {
        s.diff.statics.insert(key, index);
    } else {
        s.diff.learned_removes.push((index, key));
    }
    Ok(format!("{}/{}", r.bridge, r.mac))
}

/// `fdb flush BR [IFACE]`: learned entries, when the transaction is carried out.
pub(super) fn flush(s: &mut Staged, index: usize, r: &pb::FlushFdbRequest) -> ApiResult<String> {
    required("bridge", &r.bridge)?;
    let b = s.model.bridge(&r.bridge)?;
    let iface = if r.iface.is_empty() {
        None
    } else {
        if !b.members.contains_key(&r.iface) {
            return Err(ApiError::not_found(format!(
                "interface {:?} is not a member of bridge {:?}",
                r.iface, r.bridge
            )));
        }
        s.model.iface(&r.iface)?;
        Some(r.iface.clone())
    };
    s.diff.flushes.push((index, b.id, iface));
    Ok(r.bridge.clone())
}

/// Removes every static entry of bridge `id` (on `iface` only, if given).
pub(super) fn drop_statics(s: &mut Staged, id: u16, iface: Option<&str>) {
    let gone: Vec<StaticKey> = s
        .model
        .statics
        .range(bridge_range(id))
        .filter(|(_, e)| iface.is_none_or(|n| n == &*e.iface))
        .map(|(k, _)| *k)
        .collect();
    // The index of a key removed as a side effect: the change that removed it is not known
    // here and not needed (a removal cannot fail).
    for k in gone {
        s.model.statics.remove(&k);
        s.diff.statics.entry(k).or_insert(usize::MAX);
    }
}

/// The changes that re-create every static entry (after their bridges and members; those
/// on tunnels come with their tunnel, tunnel.rs).
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    let names: BTreeMap<u16, &String> = m.bridges.iter().map(|(n, b)| (b.id, n)).collect();
    for (&(id, vlan, mac), e) in &m.statics {
        let Some(bridge) = names.get(&id) else {
            continue;
        };
        if super::tunnel::get(m, &e.iface).is_some() {
            continue;
        }
        out.push(C::AddFdb(pb::AddFdbRequest {
            bridge: (*bridge).clone(),
            mac: format_mac(mac),
            iface: e.iface.to_string(),
            vlan: u32::from(vlan),
            remote: String::new(),
        }));
    }
}
