//! Restoring the switch at start: the saved state (snapshot) becomes a list of changes,
//! each applied as its own transaction (an object that cannot be restored, say an
//! af_packet interface whose Linux interface is gone, is reported and skipped; the rest
//! is restored); then the journal's transactions are replayed as they were made.

use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::Switch;
use crate::state::{State, Store};

/// The changes that build `state` from an empty switch, in order, each with what it is
/// for error messages.
pub fn state_changes(state: &State) -> Vec<(String, C)> {
    let mut out = Vec::new();
    for i in &state.interfaces {
        out.push((
            format!("interface {:?}", i.name),
            C::AddInterface(pb::AddInterfaceRequest {
                name: i.name.clone(),
                r#type: i.type_name.clone(),
                args: i.args.clone().into_iter().collect(),
            }),
        ));
        if !i.admin_up {
            out.push((
                format!("interface {:?} admin state", i.name),
                C::SetInterface(pb::SetInterfaceRequest {
                    name: i.name.clone(),
                    admin_up: Some(false),
                    mtu: None,
                }),
            ));
        }
    }
    for x in &state.xconnects {
        out.push((
            format!("cross-connect {}-{}", x.iface_a, x.iface_b),
            C::AddXconnect(pb::AddXconnectRequest {
                iface_a: x.iface_a.clone(),
                iface_b: x.iface_b.clone(),
            }),
        ));
    }
    for b in &state.bridges {
        out.push((
            format!("bridge {:?}", b.name),
            C::AddBridge(pb::AddBridgeRequest {
                name: b.name.clone(),
                learn: Some(b.learn),
                age: Some(b.age),
                learn_limit: Some(b.learn_limit),
                flood: Some(b.flood),
            }),
        ));
        for m in &b.members {
            out.push((
                format!("bridge {:?} member {:?}", b.name, m.iface),
                C::AttachBridge(pb::AttachBridgeRequest {
                    bridge: b.name.clone(),
                    iface: m.iface.clone(),
                    vlan: m.vlan.map(u32::from),
                    trunk: m.trunk.iter().map(|v| u32::from(*v)).collect(),
                }),
            ));
        }
        for s in &b.static_macs {
            out.push((
                format!("bridge {:?} static MAC {}", b.name, s.mac),
                C::AddFdb(pb::AddFdbRequest {
                    bridge: b.name.clone(),
                    mac: s.mac.clone(),
                    iface: s.iface.clone(),
                    vlan: u32::from(s.vlan),
                }),
            ));
        }
    }
    out
}

impl Switch {
    /// Re-applies a saved state, then the journal's transactions after it. Returns what
    /// could not be restored. Writes one new snapshot at the end (the journal is then empty).
    pub fn restore(&mut self, state: Option<&State>, journal: &[Vec<pb::Change>]) -> Vec<String> {
        self.persist = false;
        let mut errors = Vec::new();
        for (what, c) in state.map(state_changes).unwrap_or_default() {
            let change = pb::Change { change: Some(c) };
            if let Err(e) = self.transaction(std::slice::from_ref(&change)) {
                errors.push(format!("{what}: {e}"));
            }
        }
        for (n, changes) in journal.iter().enumerate() {
            if let Err(e) = self.transaction(changes) {
                errors.push(format!("journal transaction {}: {e}", n + 1));
            }
        }
        self.persist = true;
        if !errors.is_empty() {
            // The new snapshot will lack what could not be restored: keep the old files.
            match self.store.as_ref().map(Store::keep_copy) {
                Some(Ok(copy)) => tracing::warn!(
                    copy = %copy.display(),
                    "some objects could not be restored; the state as it was is kept in the copy"
                ),
                Some(Err(e)) => tracing::error!("{e}"),
                None => {}
            }
        }
        self.snapshot();
        errors
    }
}
