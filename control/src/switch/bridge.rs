//! Bridge domains and their MAC tables, as the control plane manages them.

use std::collections::BTreeMap;

use vswitch_dataplane::l2::fdb::FdbKey;
use vswitch_dataplane::l2::learn::LearnPolicy;
use vswitch_dataplane::plan::{BridgePlan, L2Port, VlanMode, VlanSet};
use vswitch_proto::v1 as pb;

use super::Switch;
use crate::error::{ApiError, ApiResult};
use crate::names::{check_name, format_mac, parse_mac};
use crate::state::{BridgeState, MemberState, StaticMacState};

/// Default seconds an unseen learned MAC lives.
pub const DEFAULT_AGE: u32 = 300;
/// Default most learned MACs per bridge.
pub const DEFAULT_LEARN_LIMIT: u32 = 65536;
/// Bridge ids are 1..=MAX_BRIDGES.
const MAX_BRIDGES: u16 = 4095;

/// A static MAC entry's key in the desired state: bridge id, VLAN, MAC (ordered so that a
/// bridge's entries are one range).
pub(super) type StaticKey = (u16, u16, [u8; 6]);

/// One bridge domain.
#[derive(Debug, Clone)]
pub(super) struct Bridge {
    pub id: u16,
    pub learn: bool,
    pub age: u32,
    pub learn_limit: u32,
    pub flood: bool,
    /// Member interface -> its VLAN mode.
    pub members: BTreeMap<String, Member>,
}

/// How a member handles VLANs: untagged (neither), access (`vlan`) or trunk (`trunk`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Member {
    pub vlan: Option<u16>,
    pub trunk: Vec<u16>,
}

impl Member {
    fn mode(&self) -> VlanMode {
        match (self.vlan, self.trunk.is_empty()) {
            (Some(v), _) => VlanMode::Access(v),
            (None, false) => VlanMode::Trunk(VlanSet::new(&self.trunk)),
            (None, true) => VlanMode::Untagged,
        }
    }
}

fn check_vlan(field: &str, v: u32) -> ApiResult<u16> {
    if (1..=4094).contains(&v) {
        Ok(v as u16)
    } else {
        Err(ApiError::invalid(format!(
            "{field} must be from 1 to 4094, not {v}"
        )))
    }
}

impl Switch {
    fn bridge(&self, name: &str) -> ApiResult<&Bridge> {
        self.bridges
            .get(name)
            .ok_or_else(|| ApiError::not_found(format!("bridge {name:?} not found")))
    }

    /// Creates a bridge domain.
    pub(super) fn add_bridge(&mut self, r: &pb::AddBridgeRequest) -> ApiResult<()> {
        check_name("bridge name", &r.name).map_err(ApiError::invalid)?;
        if self.bridges.contains_key(&r.name) {
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
        let capacity = self.l2.shared.fdb.capacity() as u32;
        let learn_limit = r
            .learn_limit
            .unwrap_or(DEFAULT_LEARN_LIMIT.min(capacity / 2));
        if !(1..=capacity).contains(&learn_limit) {
            return Err(ApiError::invalid(format!(
                "learn-limit must be from 1 to {capacity} (the MAC table's size), not {learn_limit}"
            )));
        }
        // An id freed by this same transaction is not reused: the MAC table still holds
        // that bridge's entries until the transaction finishes.
        let used: Vec<u16> = self.bridges.values().map(|b| b.id).collect();
        let txn = self.txn();
        let id = (1..=MAX_BRIDGES)
            .find(|i| !used.contains(i) && !txn.removed_bridge(*i))
            .ok_or_else(|| ApiError::conflict(format!("at most {MAX_BRIDGES} bridges")))?;
        let b = Bridge {
            id,
            learn: r.learn.unwrap_or(true),
            age,
            learn_limit,
            flood: r.flood.unwrap_or(true),
            members: BTreeMap::new(),
        };
        self.bridges.insert(r.name.clone(), b);
        self.plan_changed();
        tracing::info!(bridge = %r.name, id, "bridge added");
        Ok(())
    }

    /// Deletes a bridge: its members are detached and its MAC table emptied.
    pub(super) fn del_bridge(&mut self, name: &str) -> ApiResult<()> {
        let id = self.bridge(name)?.id;
        let Some(b) = self.bridges.remove(name) else {
            return Err(ApiError::not_found(format!("bridge {name:?} not found")));
        };
        for m in b.members.keys() {
            if let Some(i) = self.ifaces.get_mut(m) {
                i.bridge = None;
            }
        }
        self.drop_statics(id, None);
        self.bridge_removed(id);
        tracing::info!(bridge = name, "bridge deleted");
        Ok(())
    }

    /// One bridge.
    pub fn get_bridge(&self, name: &str) -> ApiResult<pb::Bridge> {
        let b = self.bridge(name)?;
        Ok(pb::Bridge {
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
            learned: self.learner().dynamic_len(b.id) as u32,
        })
    }

    /// Every bridge.
    pub fn list_bridges(&self) -> Vec<pb::Bridge> {
        self.bridges
            .keys()
            .filter_map(|n| self.get_bridge(n).ok())
            .collect()
    }

    /// Makes an interface a member of a bridge (untagged, access or trunk).
    pub(super) fn attach(&mut self, r: &pb::AttachBridgeRequest) -> ApiResult<()> {
        self.bridge(&r.bridge)?;
        let iface = self.iface(&r.iface)?;
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
        if let Some(b) = self.bridges.get_mut(&r.bridge) {
            b.members.insert(r.iface.clone(), Member { vlan, trunk });
        }
        if let Some(i) = self.ifaces.get_mut(&r.iface) {
            i.bridge = Some(r.bridge.clone());
        }
        self.plan_changed();
        tracing::info!(bridge = %r.bridge, iface = %r.iface, "member attached");
        Ok(())
    }

    /// Removes a member from its bridge, with every MAC entry that points at it.
    pub(super) fn detach(&mut self, bridge: &str, iface: &str) -> ApiResult<()> {
        self.bridge(bridge)?;
        self.iface(iface)?;
        if !self.bridge(bridge)?.members.contains_key(iface) {
            return Err(ApiError::not_found(format!(
                "interface {iface:?} is not a member of bridge {bridge:?}"
            )));
        }
        self.remove_member(bridge, iface);
        tracing::info!(bridge, iface, "member detached");
        Ok(())
    }

    /// Takes `iface` out of `bridge` with its static entries. When the transaction
    /// finishes, the learner forgets the port: its entries go, and requests still queued
    /// for it are ignored.
    pub(super) fn remove_member(&mut self, bridge: &str, iface: &str) {
        let mut id = None;
        if let Some(b) = self.bridges.get_mut(bridge) {
            b.members.remove(iface);
            id = Some(b.id);
        }
        if let Some(i) = self.ifaces.get_mut(iface) {
            i.bridge = None;
        }
        if let Some(id) = id {
            self.drop_statics(id, Some(iface));
        }
        self.plan_changed();
    }

    /// A bridge's MAC table.
    pub fn fdb_list(&self, bridge: &str) -> ApiResult<Vec<pb::FdbEntry>> {
        let id = self.bridge(bridge)?.id;
        let names: BTreeMap<u16, &str> = self
            .ifaces
            .iter()
            .map(|(n, i)| (i.port.id(), n.as_str()))
            .collect();
        Ok(self
            .learner()
            .entries(id)
            .into_iter()
            .map(|(k, e, age)| pb::FdbEntry {
                mac: format_mac(k.mac),
                vlan: u32::from(k.vlan),
                iface: names
                    .get(&e.port)
                    .map(|n| n.to_string())
                    .unwrap_or_default(),
                r#static: e.is_static,
                age_seconds: if e.is_static { 0 } else { age },
            })
            .collect())
    }

    /// One entry of a bridge's MAC table.
    pub fn fdb_get(&self, r: &pb::GetFdbRequest) -> ApiResult<pb::FdbEntry> {
        let id = self.bridge(&r.bridge)?.id;
        let mac = parse_mac("mac", &r.mac).map_err(ApiError::invalid)?;
        let vlan = if r.vlan == 0 {
            0
        } else {
            check_vlan("vlan", r.vlan)?
        };
        let key = FdbKey {
            bridge: id,
            vlan,
            mac,
        };
        let (entry, age) = self.learner().entry(&key).ok_or_else(|| {
            ApiError::not_found(format!(
                "{} (VLAN {vlan}) is not in bridge {:?}",
                r.mac, r.bridge
            ))
        })?;
        let iface = self
            .ifaces
            .iter()
            .find(|(_, i)| i.port.id() == entry.port)
            .map(|(n, _)| n.clone())
            .unwrap_or_default();
        Ok(pb::FdbEntry {
            mac: format_mac(mac),
            vlan: u32::from(vlan),
            iface,
            r#static: entry.is_static,
            age_seconds: if entry.is_static { 0 } else { age },
        })
    }

    /// Adds a static entry: never aged, never moved by learning.
    pub(super) fn fdb_add(&mut self, r: &pb::AddFdbRequest) -> ApiResult<()> {
        let b = self.bridge(&r.bridge)?;
        let mac = parse_mac("mac", &r.mac).map_err(ApiError::invalid)?;
        self.iface(&r.iface)?;
        let Some(member) = b.members.get(&r.iface) else {
            return Err(ApiError::conflict(format!(
                "interface {:?} is not a member of bridge {:?}",
                r.iface, r.bridge
            )));
        };
        let vlan = if r.vlan == 0 {
            0
        } else {
            check_vlan("vlan", r.vlan)?
        };
        if !member.mode().carries(vlan) {
            return Err(ApiError::invalid(format!(
                "interface {:?} does not carry VLAN {vlan} in bridge {:?}",
                r.iface, r.bridge
            )));
        }
        let key = (b.id, vlan, mac);
        self.set_static(key, Some(r.iface.clone()));
        Ok(())
    }

    /// Removes one entry.
    pub(super) fn fdb_del(&mut self, r: &pb::DeleteFdbRequest) -> ApiResult<()> {
        let id = self.bridge(&r.bridge)?.id;
        let mac = parse_mac("mac", &r.mac).map_err(ApiError::invalid)?;
        let vlan = if r.vlan == 0 {
            0
        } else {
            check_vlan("vlan", r.vlan)?
        };
        if self.statics.contains_key(&(id, vlan, mac)) {
            self.set_static((id, vlan, mac), None);
            return Ok(());
        }
        let key = FdbKey {
            bridge: id,
            vlan,
            mac,
        };
        let learned = self
            .learner()
            .fdb()
            .lookup(&key)
            .is_some_and(|h| !h.entry.is_static);
        if !learned {
            return Err(ApiError::not_found(format!(
                "{} (VLAN {vlan}) is not in bridge {:?}",
                r.mac, r.bridge
            )));
        }
        self.remove_learned(key);
        Ok(())
    }

    /// Removes learned entries of a bridge, or only those on one interface (when the
    /// transaction finishes; change `index` gets the count).
    pub(super) fn fdb_flush(&mut self, bridge: &str, iface: &str, index: usize) -> ApiResult<()> {
        let id = self.bridge(bridge)?.id;
        let port = if iface.is_empty() {
            None
        } else {
            if !self.bridge(bridge)?.members.contains_key(iface) {
                return Err(ApiError::not_found(format!(
                    "interface {iface:?} is not a member of bridge {bridge:?}"
                )));
            }
            Some(self.iface(iface)?.port.id())
        };
        self.flush_later(id, port, index);
        Ok(())
    }

    /// Bridge membership by port id, and bridges by id, for the forwarding plan.
    pub(super) fn l2_plan(&self) -> (Vec<Option<L2Port>>, Vec<Option<BridgePlan>>) {
        let mut ports = vec![None; dpdk::MAX_PORTS];
        let top = self.bridges.values().map(|b| b.id).max().unwrap_or(0);
        let mut bridges = vec![None; usize::from(top) + 1];
        for b in self.bridges.values() {
            let mut members = Vec::with_capacity(b.members.len());
            for (name, m) in &b.members {
                let Some(i) = self.ifaces.get(name) else {
                    continue;
                };
                let id = i.port.id();
                members.push(id);
                if let Some(slot) = ports.get_mut(usize::from(id)) {
                    *slot = Some(L2Port {
                        bridge: b.id,
                        mode: m.mode(),
                        up: i.admin_up,
                    });
                }
            }
            if let Some(slot) = bridges.get_mut(usize::from(b.id)) {
                *slot = Some(BridgePlan {
                    learn: b.learn,
                    flood: b.flood,
                    members,
                });
            }
        }
        (ports, bridges)
    }

    /// Bridges for the state file.
    pub(super) fn bridge_states(&self) -> Vec<BridgeState> {
        self.bridges
            .iter()
            .map(|(name, b)| BridgeState {
                name: name.clone(),
                learn: b.learn,
                age: b.age,
                learn_limit: b.learn_limit,
                flood: b.flood,
                members: b
                    .members
                    .iter()
                    .map(|(iface, m)| MemberState {
                        iface: iface.clone(),
                        vlan: m.vlan,
                        trunk: m.trunk.clone(),
                    })
                    .collect(),
                static_macs: self
                    .statics
                    .range((b.id, 0, [0; 6])..=(b.id, u16::MAX, [0xff; 6]))
                    .map(|(&(_, vlan, mac), iface)| StaticMacState {
                        mac: format_mac(mac),
                        vlan,
                        iface: iface.clone(),
                    })
                    .collect(),
            })
            .collect()
    }
}

pub(super) fn policy(b: &Bridge) -> LearnPolicy {
    LearnPolicy {
        learn: b.learn,
        limit: b.learn_limit as usize,
        age: u64::from(b.age),
    }
}
