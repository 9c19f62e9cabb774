//! State files of version 1 (vswitchd before the model): one section per resource, each in
//! a shape of its own. Read only, converted to the changes that re-create what they hold;
//! the first snapshot written after a start replaces the file with version 2.

use std::collections::BTreeMap;

use serde::Deserialize;
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use crate::state::Snapshot;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    #[allow(dead_code)]
    version: u32,
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    interfaces: Vec<Iface>,
    #[serde(default)]
    xconnects: Vec<Xconnect>,
    #[serde(default)]
    bridges: Vec<Bridge>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Iface {
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    args: BTreeMap<String, String>,
    #[serde(default = "yes")]
    admin_up: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Xconnect {
    iface_a: String,
    iface_b: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bridge {
    name: String,
    learn: bool,
    age: u32,
    learn_limit: u32,
    flood: bool,
    #[serde(default)]
    members: Vec<Member>,
    #[serde(default)]
    static_macs: Vec<StaticMac>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Member {
    iface: String,
    #[serde(default)]
    vlan: Option<u16>,
    #[serde(default)]
    trunk: Vec<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StaticMac {
    mac: String,
    vlan: u16,
    iface: String,
}

/// The changes a version 1 state file's text builds, in replay order.
pub fn convert(text: &str) -> Result<Snapshot, String> {
    let s: State = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut changes = Vec::new();
    for i in &s.interfaces {
        changes.push(C::AddInterface(pb::AddInterfaceRequest {
            name: i.name.clone(),
            r#type: i.type_name.clone(),
            args: i.args.clone().into_iter().collect(),
            vrf: None,
            attachment: None,
        }));
        if !i.admin_up {
            changes.push(C::SetInterface(pb::SetInterfaceRequest {
                name: i.name.clone(),
                admin_up: Some(false),
                mtu: None,
                vrf: None,
            }));
        }
    }
    for x in &s.xconnects {
        changes.push(C::AddXconnect(pb::AddXconnectRequest {
            iface_a: x.iface_a.clone(),
            iface_b: x.iface_b.clone(),
        }));
    }
    for b in &s.bridges {
        changes.push(C::AddBridge(pb::AddBridgeRequest {
            name: b.name.clone(),
            learn: Some(b.learn),
            age: Some(b.age),
            learn_limit: Some(b.learn_limit),
            flood: Some(b.flood),
            vrf: None,
        }));
        for m in &b.members {
            changes.push(C::AttachBridge(pb::AttachBridgeRequest {
                bridge: b.name.clone(),
                iface: m.iface.clone(),
                vlan: m.vlan.map(u32::from),
                trunk: m.trunk.iter().map(|v| u32::from(*v)).collect(),
            }));
        }
        for m in &b.static_macs {
            changes.push(C::AddFdb(pb::AddFdbRequest {
                bridge: b.name.clone(),
                mac: m.mac.clone(),
                iface: m.iface.clone(),
                vlan: u32::from(m.vlan),
                remote: String::new(),
            }));
        }
    }
    Ok(Snapshot {
        seq: s.seq,
        changes,
    })
}
