//! Bridge domains and their members: validation, staging, persisted form, proto form and
//! the dataplane's part (the plan's bridges and ports, the learner's policy). A bridge
//! routes through its routed interface `bvi:BR` (see iface.rs), whose VRF is persisted
//! with the bridge.

use std::sync::Arc;

use imbl::OrdMap;
use vswitch_dataplane::l2::learn::LearnPolicy;
use vswitch_dataplane::plan::{BridgePlan, L2Port, VlanMode, VlanSet};
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::iface::{IfaceL3, BVI_PREFIX};
use super::{iface, vrf, Limits, Model, Staged};
use crate::error::{required, ApiError, ApiResult};
use crate::names::check_name;

/// Default seconds an unseen learned MAC lives.
pub const DEFAULT_AGE: u32 = 300;
/// Default most learned MACs per bridge.
pub const DEFAULT_LEARN_LIMIT: u32 = 65536;
/// Bridge ids are 1..=MAX_BRIDGES.
const MAX_BRIDGES: u16 = 4095;

/// One bridge domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bridge {
    /// Its id in the dataplane (the MAC table's key, the plan's index).
    pub id: u16,
    pub learn: bool,
    pub age: u32,
    pub learn_limit: u32,
    pub flood: bool,
    /// Member interface -> its VLAN mode.
    pub members: OrdMap<String, Member>,
    /// The L3 settings of its routed interface `bvi:NAME`.
    pub bvi: IfaceL3,
}

/// How a member handles VLANs: untagged (neither), access (`vlan`) or trunk (`trunk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub vlan: Option<u16>,
    pub trunk: Vec<u16>,
}

impl Member {
    /// The member's VLAN mode in the dataplane's terms.
    pub fn mode(&self) -> VlanMode {
        match (self.vlan, self.trunk.is_empty()) {
            (Some(v), _) => VlanMode::Access(v),
            (None, false) => VlanMode::Trunk(VlanSet::new(&self.trunk)),
            (None, true) => VlanMode::Untagged,
        }
    }
}

/// A VLAN id as the API takes it: 1 to 4094.
pub(super) fn check_vlan(field: &str, v: u32) -> ApiResult<u16> {
    if (1..=4094).contains(&v) {
        Ok(v as u16)
    } else {
        Err(ApiError::invalid(format!(
            "{field} must be from 1 to 4094, not {v}"
        )))
    }
}

/// `bridge add BR [learn=on|off] [age=S] [learn-limit=N] [flood=on|off]`.
pub(super) fn add(s: &mut Staged, r: &pb::AddBridgeRequest, limits: &Limits) -> ApiResult<String> {
    check_name("bridge name", &r.name).map_err(ApiError::invalid)?;
    if s.model.bridges.contains_key(&r.name) {
        return Err(ApiError::exists(format!(
            "bridge {:?} exists already",
            r.name
        )));
    }
    let age = r.age.unwrap_or(DEFAULT_AGE);
    if !(1..=1_000_000).contains(&age) {
        return Err(ApiError::invalid(format!(
            "age must be from 1 to 1000000 seconds, not {age}"
        )));
    }
    let capacity = limits.fdb_capacity;
    let learn_limit = r
        .learn_limit
        .unwrap_or(DEFAULT_LEARN_LIMIT.min(capacity / 2));
    if !(1..=capacity).contains(&learn_limit) {
        return Err(ApiError::invalid(format!(
            "learn-limit must be from 1 to {capacity} (the MAC table's size), not {learn_limit}"
        )));
    }
    let bvi_vrf = match r.vrf {
        Some(v) => vrf::existing(v)(&s.model)?,
        None => 0,
    };
    // An id freed by this same transaction is not reused: the MAC table still holds that
    // bridge's entries until the transaction is carried out.
    let used: Vec<u16> = s.model.bridges.values().map(|b| b.id).collect();
    let id = (1..=MAX_BRIDGES)
        .find(|i| !used.contains(i) && !s.diff.bridges_removed.contains(i))
        .ok_or_else(|| ApiError::conflict(format!("at most {MAX_BRIDGES} bridges")))?;
    let b = Bridge {
        id,
        learn: r.learn.unwrap_or(true),
        age,
        learn_limit,
        flood: r.flood.unwrap_or(true),
        members: OrdMap::new(),
        bvi: IfaceL3 {
            vrf: bvi_vrf,
            proxy_arp: false,
        },
    };
    iface::touch_l3(s, &format!("{BVI_PREFIX}{}", r.name));
    s.model.bridges.insert(r.name.clone(), Arc::new(b));
    s.diff.bridges.insert(r.name.clone());
    s.diff.plan = true;
    Ok(r.name.clone())
}

/// `bridge del BR`: its members are detached and its MAC table emptied; its routed
/// interface goes with its addresses and neighbours (refused while a route goes through
/// it).
pub(super) fn delete(s: &mut Staged, r: &pb::DeleteBridgeRequest) -> ApiResult<String> {
    required("name", &r.name)?;
    let b = s.model.bridge(&r.name)?.clone();
    iface::forget_l3(s, &format!("{BVI_PREFIX}{}", r.name))?;
    for m in b.members.keys() {
        iface::edit(s, m, |i| i.bridge = None);
    }
    s.model.bridges.remove(&r.name);
    super::fdb::drop_statics(s, b.id, None);
    s.diff.bridges.remove(&r.name);
    s.diff.bridges_removed.push(b.id);
    s.diff.plan = true;
    Ok(r.name.clone())
}

/// `bridge attach BR IFACE [vlan=ID | trunk=ID,...]`.
pub(super) fn attach(s: &mut Staged, r: &pb::AttachBridgeRequest) -> ApiResult<String> {
    required("bridge", &r.bridge)?;
    required("iface", &r.iface)?;
    s.model.bridge(&r.bridge)?;
    let iface = s.model.iface(&r.iface)?;
    if let Some(other) = &iface.bridge {
        return Err(ApiError::conflict(format!(
            "interface {:?} is already a member of bridge {other:?}",
            r.iface
        )));
    }
    if let Some(peer) = &iface.xconnect {
        return Err(ApiError::conflict(format!(
            "interface {:?} is cross-connected to {peer:?}; remove the cross-connect first",
            r.iface
        )));
    }
    if let Some(t) = iface.spec.tunnel() {
        if !t.encap.carries_ethernet() {
            return Err(ApiError::conflict(format!(
                "tunnel {:?} ({}{}) carries IP packets: a bridge takes tunnels that carry \
                 Ethernet (vxlan, geneve, gre mode=teb); address it and route into it instead",
                r.iface,
                t.encap.kind(),
                if t.encap.kind() == "gre" {
                    " mode=l3"
                } else {
                    ""
                }
            )));
        }
        if super::tunnel::has_vteps(&s.model, &r.iface) {
            return Err(ApiError::conflict(format!(
                "tunnel {:?} has MAC -> VTEP entries (tunnel fdb), which a bridge member does \
                 not take: delete them first (in a bridge: fdb add {} MAC {} remote=IP)",
                r.iface, r.bridge, r.iface
            )));
        }
    }
    if let Some(u) = iface::l3_use(&s.model, &r.iface) {
        return Err(ApiError::conflict(format!(
            "interface {:?} has {u}: a bridge member is L2 only ({BVI_PREFIX}{} is the \
             bridge's routed interface); remove it first",
            r.iface, r.bridge
        )));
    }
    if r.vlan.is_some() && !r.trunk.is_empty() {
        return Err(ApiError::invalid(
            "give vlan (access member) or trunk, not both",
        ));
    }
    let vlan = r.vlan.map(|v| check_vlan("vlan", v)).transpose()?;
    let mut trunk = Vec::with_capacity(r.trunk.len());
    for &v in &r.trunk {
        let v = check_vlan("trunk VLAN", v)?;
        if trunk.contains(&v) {
            return Err(ApiError::invalid(format!("trunk lists VLAN {v} twice")));
        }
        trunk.push(v);
    }
    trunk.sort_unstable();
    if let Some(b) = s.model.bridges.get_mut(&r.bridge) {
        Arc::make_mut(b)
            .members
            .insert(r.iface.clone(), Member { vlan, trunk });
    }
    iface::edit(s, &r.iface, |i| i.bridge = Some(r.bridge.clone()));
    s.diff.bridges.insert(r.bridge.clone());
    s.diff.plan = true;
    Ok(format!("{}/{}", r.bridge, r.iface))
}

/// `bridge detach BR IFACE`: with every static MAC entry that points at it.
pub(super) fn detach(s: &mut Staged, r: &pb::DetachBridgeRequest) -> ApiResult<String> {
    required("bridge", &r.bridge)?;
    required("iface", &r.iface)?;
    let b = s.model.bridge(&r.bridge)?;
    s.model.iface(&r.iface)?;
    if !b.members.contains_key(&r.iface) {
        return Err(ApiError::not_found(format!(
            "interface {:?} is not a member of bridge {:?}",
            r.iface, r.bridge
        )));
    }
    remove_member(s, &r.bridge, &r.iface);
    Ok(format!("{}/{}", r.bridge, r.iface))
}

/// Takes `iface` out of `bridge` with its static entries. When the transaction is carried
/// out, the learner forgets the port: its entries go, and requests still queued for it are
/// ignored.
pub(super) fn remove_member(s: &mut Staged, bridge: &str, iface: &str) {
    let mut id = None;
    if let Some(b) = s.model.bridges.get_mut(bridge) {
        let b = Arc::make_mut(b);
        b.members.remove(iface);
        id = Some(b.id);
    }
    iface::edit(s, iface, |i| i.bridge = None);
    if let Some(id) = id {
        super::fdb::drop_statics(s, id, Some(iface));
    }
    s.diff.bridges.insert(bridge.to_string());
    s.diff.plan = true;
}

/// The MAC of bridge `name`'s routed interface `bvi:NAME`: locally administered unicast
/// (first byte 0x02), the other five bytes the top 40 bits of the 64-bit FNV-1a hash of the
/// bridge's name. Derived from the name alone, so it stays the same across restarts (hosts'
/// ARP caches stay right) and is the same on every node for a bridge of the same name (one
/// gateway MAC for a subnet spread over nodes, as an anycast gateway).
pub fn bvi_mac(name: &str) -> [u8; 6] {
    // FNV-1a, 64 bits (offset basis and prime of draft-eastlake-fnv).
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let b = h.to_be_bytes();
    [0x02, b[0], b[1], b[2], b[3], b[4]]
}

/// The bridge's learner policy.
pub fn policy(b: &Bridge) -> LearnPolicy {
    LearnPolicy {
        learn: b.learn,
        limit: b.learn_limit as usize,
        age: u64::from(b.age),
    }
}

/// The bridge's proto form (`learned`: its learned entries, which the MAC table knows).
pub fn to_pb(name: &str, b: &Bridge, learned: u32) -> pb::Bridge {
    pb::Bridge {
        name: name.to_string(),
        learn: b.learn,
        age: b.age,
        learn_limit: b.learn_limit,
        flood: b.flood,
        members: b
            .members
            .iter()
            .map(|(iface, m)| pb::BridgeMember {
                iface: iface.clone(),
                vlan: m.vlan.map_or(0, u32::from),
                trunk: m.trunk.iter().map(|v| u32::from(*v)).collect(),
            })
            .collect(),
        learned,
        vrf: u32::from(b.bvi.vrf),
    }
}

/// Member interfaces of the bridge (by `port_of`, the switch's interface -> logical index).
pub fn member_ports(b: &Bridge, port_of: &dyn Fn(&str) -> Option<u16>) -> Vec<u16> {
    b.members.keys().filter_map(|m| port_of(m)).collect()
}

/// The forwarding plan's bridge part: membership by port id, and bridges by id.
pub fn plan(
    m: &Model,
    ports_total: usize,
    port_of: &dyn Fn(&str) -> Option<u16>,
) -> (Vec<Option<L2Port>>, Vec<Option<BridgePlan>>) {
    let mut ports = vec![None; ports_total];
    let top = m.bridges.values().map(|b| b.id).max().unwrap_or(0);
    let mut bridges = vec![None; usize::from(top) + 1];
    for b in m.bridges.values() {
        let mut members = Vec::with_capacity(b.members.len());
        for (name, mem) in &b.members {
            let (Some(i), Some(id)) = (m.ifaces.get(name), port_of(name)) else {
                continue;
            };
            members.push(id);
            if let Some(slot) = ports.get_mut(usize::from(id)) {
                *slot = Some(L2Port {
                    bridge: b.id,
                    mode: mem.mode(),
                    up: i.admin_up,
                });
            }
        }
        if let Some(slot) = bridges.get_mut(usize::from(b.id)) {
            *slot = Some(BridgePlan {
                learn: b.learn,
                flood: b.flood,
                members,
                bvi: None,
            });
        }
    }
    (ports, bridges)
}

/// The changes that re-create every bridge and its members.
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    for (name, b) in &m.bridges {
        out.push(C::AddBridge(pb::AddBridgeRequest {
            name: name.clone(),
            learn: Some(b.learn),
            age: Some(b.age),
            learn_limit: Some(b.learn_limit),
            flood: Some(b.flood),
            vrf: Some(u32::from(b.bvi.vrf)).filter(|v| *v != 0),
        }));
        // Tunnels join with their tunnel (tunnel.rs).
        let ports = b
            .members
            .iter()
            .filter(|(i, _)| super::tunnel::get(m, i).is_none());
        for (iface, mem) in ports {
            out.push(C::AttachBridge(pb::AttachBridgeRequest {
                bridge: name.clone(),
                iface: iface.clone(),
                vlan: mem.vlan.map(u32::from),
                trunk: mem.trunk.iter().map(|v| u32::from(*v)).collect(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bvi_macs_are_local_unicast_stable_and_per_name() {
        let m = bvi_mac("br0");
        assert_eq!(m[0], 0x02, "locally administered, unicast");
        assert_eq!(m, bvi_mac("br0"), "the same every time");
        assert_ne!(m, bvi_mac("br1"));
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (the reference vector).
        assert_eq!(bvi_mac("a"), [0x02, 0xaf, 0x63, 0xdc, 0x4c, 0x86]);
    }
}
