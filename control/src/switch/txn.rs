//! Transactions: every change to the switch goes through here, a single call being a
//! transaction of one change.
//!
//! A transaction runs in four steps:
//! 1. **stage**: each change is validated and made on the control plane's model of the
//!    switch (interfaces, bridges, static MACs), in order, each seeing the ones before it.
//!    New ports are opened, and MTU and link changes made on the ports, here (DPDK is the
//!    only judge of a device and of an MTU), but nothing is published to the workers and
//!    the MAC table is not touched. Enough is recorded to undo every step.
//! 2. **write ahead**: the changes are appended to the journal and fsync'd, before any of
//!    them reaches the dataplane (with the MACs that ports opened without `mac=` got, so a
//!    replay makes the same interfaces). A write that fails (a full disk) fails the
//!    transaction: it is rolled back (step 4) and the journal is left as it was.
//! 3. **finish**: the MAC table is brought in line with the model (static entries first:
//!    the one step that can still fail, and that undoes itself when it does; the journal
//!    record is then taken back and the transaction rolled back), then the new forwarding
//!    plan is published once, ports removed by the transaction are closed after every
//!    worker has moved to the plan without them, and events are sent. Only then is the
//!    caller answered (and the journal compacted, if it has grown enough).
//! 4. or **rollback**, if a step fails: the model is put back as it was, ports opened by
//!    the transaction are closed, ports it removed are kept, MTU and link changes are
//!    undone. The workers never saw any of it, and no event was sent.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use vswitch_dataplane::l2::fdb::FdbKey;
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::bridge::{policy, Bridge, StaticKey};
use super::{Iface, Switch};
use crate::error::{required, ApiError, ApiResult};
use crate::iface_spec::IfaceSpec;
use crate::names::format_mac;

/// An interface's control-plane fields, as they were before the transaction.
struct IfaceBefore {
    spec: IfaceSpec,
    admin_up: bool,
    xconnect: Option<String>,
    bridge: Option<String>,
    rx_workers: Vec<usize>,
}

/// What a transaction in progress has done, so that it can be finished or undone.
#[derive(Default)]
pub(super) struct Txn {
    ifaces_before: BTreeMap<String, IfaceBefore>,
    bridges_before: BTreeMap<String, Bridge>,
    queue_load_before: Vec<usize>,
    next_index_before: u32,
    /// Interfaces opened by this transaction.
    added: Vec<String>,
    /// Interfaces it deleted: their ports stay open until the workers have let go.
    removed: Vec<(String, Iface)>,
    /// MTU and admin state changes made on ports: (interface, MTU before, admin before).
    port_changes: Vec<(String, u16, bool)>,
    /// Static MAC entries changed: key and the interface it had before (undo log).
    statics_undo: Vec<(StaticKey, Option<String>)>,
    /// Learned entries to remove.
    dynamic_removes: Vec<FdbKey>,
    /// Bridge ids deleted (never reused within the transaction).
    removed_bridges: Vec<u16>,
    /// Learned-entry flushes: bridge id, port, and the index of the FlushFdb change.
    flushes: Vec<(u16, Option<u16>, usize)>,
    /// Whether the forwarding plan changed.
    plan_dirty: bool,
    /// Whether the desired state changed (else there is nothing to journal).
    persistent: bool,
    /// Config events to emit on success: (change, object).
    events: Vec<(&'static str, String)>,
    /// MACs that interfaces added without mac= got from their driver: (index of the
    /// AddInterface change, MAC), added to the journaled change.
    recorded_macs: Vec<(usize, String)>,
}

impl Txn {
    pub(super) fn removed_bridge(&self, id: u16) -> bool {
        self.removed_bridges.contains(&id)
    }
}

/// What a finished transaction reports.
#[derive(Debug, Default)]
pub struct TxnOutcome {
    /// Learned entries removed, per FlushFdb change (by index).
    pub flushed: BTreeMap<usize, u32>,
}

/// The name a change goes by in errors and events.
pub fn change_name(c: &C) -> &'static str {
    match c {
        C::AddInterface(_) => "add_interface",
        C::DeleteInterface(_) => "delete_interface",
        C::SetInterface(_) => "set_interface",
        C::AddXconnect(_) => "add_xconnect",
        C::DeleteXconnect(_) => "delete_xconnect",
        C::AddBridge(_) => "add_bridge",
        C::DeleteBridge(_) => "delete_bridge",
        C::AttachBridge(_) => "attach_bridge",
        C::DetachBridge(_) => "detach_bridge",
        C::AddFdb(_) => "add_fdb",
        C::DeleteFdb(_) => "delete_fdb",
        C::FlushFdb(_) => "flush_fdb",
    }
}

impl Switch {
    /// Applies `changes` all or nothing. On error nothing has changed, and the error says
    /// which change failed (for batches of more than one).
    pub fn transaction(&mut self, changes: &[pb::Change]) -> ApiResult<TxnOutcome> {
        if self.eal.is_none() {
            return Err(ApiError::unavailable("vswitchd is shutting down"));
        }
        self.begin();
        for (i, change) in changes.iter().enumerate() {
            let r = match change.change.as_ref() {
                Some(c) => self.stage(i, c),
                None => Err(ApiError::invalid("change is empty (no operation set)")),
            };
            if let Err(e) = r {
                self.rollback();
                return Err(in_change(e, i, changes.len(), change.change.as_ref()));
            }
        }
        let journaled = match self.write_ahead(changes) {
            Ok(j) => j,
            Err(e) => {
                self.rollback();
                return Err(e);
            }
        };
        match self.finish() {
            Ok(outcome) => {
                self.compact();
                Ok(outcome)
            }
            Err(e) => {
                if journaled {
                    self.retract();
                }
                self.rollback();
                Err(e)
            }
        }
    }

    /// Appends the staged transaction to the journal (fsync'd) if it changes the desired
    /// state. Returns whether a record was written. On error the journal is as it was.
    fn write_ahead(&mut self, changes: &[pb::Change]) -> ApiResult<bool> {
        let persistent = self.txn.as_ref().is_some_and(|t| t.persistent);
        if !persistent || !self.persist {
            return Ok(false);
        }
        // Only the journal record needs them: taken, not copied.
        let recorded = self
            .txn
            .as_mut()
            .map(|t| std::mem::take(&mut t.recorded_macs))
            .unwrap_or_default();
        let Some(store) = self.store.as_mut() else {
            return Ok(false);
        };
        store
            .append(&with_recorded_macs(changes, recorded))
            .map_err(|e| {
                tracing::warn!("transaction refused: {e}");
                ApiError::unavailable(format!("{e}; nothing was applied"))
            })
    }

    fn begin(&mut self) {
        let ifaces_before = self
            .ifaces
            .iter()
            .map(|(n, i)| {
                (
                    n.clone(),
                    IfaceBefore {
                        spec: i.spec.clone(),
                        admin_up: i.admin_up,
                        xconnect: i.xconnect.clone(),
                        bridge: i.bridge.clone(),
                        rx_workers: i.rx_workers.clone(),
                    },
                )
            })
            .collect();
        self.txn = Some(Txn {
            ifaces_before,
            bridges_before: self.bridges.clone(),
            queue_load_before: self.queue_load.clone(),
            next_index_before: self.next_index,
            ..Txn::default()
        });
    }

    /// The transaction in progress (every staging step runs inside one).
    pub(super) fn txn(&mut self) -> &mut Txn {
        self.txn.get_or_insert_with(Txn::default)
    }

    /// Validates and makes one change on the model.
    fn stage(&mut self, index: usize, c: &C) -> ApiResult<()> {
        let name = change_name(c);
        let object = match c {
            C::AddInterface(r) => {
                required("name", &r.name)?;
                required("type", &r.r#type)?;
                let args: BTreeMap<String, String> =
                    r.args.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                self.add_iface(&r.name, &r.r#type, &args)?;
                let recorded = self
                    .ifaces
                    .get(&r.name)
                    .and_then(|i| i.spec.args.get("mac"));
                if let (None, Some(mac)) = (args.get("mac"), recorded) {
                    let mac = mac.clone();
                    self.txn().recorded_macs.push((index, mac));
                }
                r.name.clone()
            }
            C::DeleteInterface(r) => {
                required("name", &r.name)?;
                self.del_iface(&r.name)?;
                r.name.clone()
            }
            C::SetInterface(r) => {
                required("name", &r.name)?;
                self.set_iface(&r.name, r.admin_up, r.mtu)?;
                r.name.clone()
            }
            C::AddXconnect(r) => {
                required("iface_a", &r.iface_a)?;
                required("iface_b", &r.iface_b)?;
                self.add_xconnect(&r.iface_a, &r.iface_b)?;
                format!("{}/{}", r.iface_a, r.iface_b)
            }
            C::DeleteXconnect(r) => {
                required("iface_a", &r.iface_a)?;
                self.del_xconnect(&r.iface_a)?;
                r.iface_a.clone()
            }
            C::AddBridge(r) => {
                self.add_bridge(r)?;
                r.name.clone()
            }
            C::DeleteBridge(r) => {
                required("name", &r.name)?;
                self.del_bridge(&r.name)?;
                r.name.clone()
            }
            C::AttachBridge(r) => {
                required("bridge", &r.bridge)?;
                required("iface", &r.iface)?;
                self.attach(r)?;
                format!("{}/{}", r.bridge, r.iface)
            }
            C::DetachBridge(r) => {
                required("bridge", &r.bridge)?;
                required("iface", &r.iface)?;
                self.detach(&r.bridge, &r.iface)?;
                format!("{}/{}", r.bridge, r.iface)
            }
            C::AddFdb(r) => {
                required("bridge", &r.bridge)?;
                required("mac", &r.mac)?;
                required("iface", &r.iface)?;
                self.fdb_add(r)?;
                format!("{}/{}", r.bridge, r.mac)
            }
            C::DeleteFdb(r) => {
                required("bridge", &r.bridge)?;
                required("mac", &r.mac)?;
                self.fdb_del(r)?;
                format!("{}/{}", r.bridge, r.mac)
            }
            C::FlushFdb(r) => {
                required("bridge", &r.bridge)?;
                self.fdb_flush(&r.bridge, &r.iface, index)?;
                r.bridge.clone()
            }
        };
        let txn = self.txn();
        txn.events.push((name, object));
        if !matches!(c, C::FlushFdb(_)) {
            txn.persistent = true;
        }
        Ok(())
    }

    /// Records that the forwarding plan must be republished.
    pub(super) fn plan_changed(&mut self) {
        self.txn().plan_dirty = true;
    }

    /// Records a port-level change (MTU, link) made while staging.
    pub(super) fn port_changed(&mut self, name: &str, mtu_before: u16, admin_before: bool) {
        self.txn()
            .port_changes
            .push((name.to_string(), mtu_before, admin_before));
    }

    /// Records an interface opened while staging.
    pub(super) fn iface_opened(&mut self, name: &str) {
        let t = self.txn();
        t.added.push(name.to_string());
        t.plan_dirty = true;
    }

    /// Keeps a deleted interface's port open until the transaction is finished.
    pub(super) fn iface_removed(&mut self, name: &str, iface: Iface) {
        let t = self.txn();
        t.removed.push((name.to_string(), iface));
        t.plan_dirty = true;
    }

    /// Sets (Some) or removes (None) a static MAC entry on the model, with its undo record.
    pub(super) fn set_static(&mut self, key: StaticKey, iface: Option<String>) {
        let before = match iface {
            Some(i) => self.statics.insert(key, i),
            None => self.statics.remove(&key),
        };
        self.txn().statics_undo.push((key, before));
    }

    /// Removes every static entry of `bridge` (on `iface` only, if given) from the model.
    pub(super) fn drop_statics(&mut self, bridge: u16, iface: Option<&str>) {
        let gone: Vec<StaticKey> = self
            .statics
            .range((bridge, 0, [0; 6])..=(bridge, u16::MAX, [0xff; 6]))
            .filter(|(_, i)| iface.is_none_or(|n| n == i.as_str()))
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            self.set_static(k, None);
        }
    }

    pub(super) fn remove_learned(&mut self, key: FdbKey) {
        self.txn().dynamic_removes.push(key);
    }

    pub(super) fn bridge_removed(&mut self, id: u16) {
        let t = self.txn();
        t.removed_bridges.push(id);
        t.plan_dirty = true;
    }

    pub(super) fn flush_later(&mut self, bridge: u16, port: Option<u16>, index: usize) {
        self.txn().flushes.push((bridge, port, index));
    }

    /// Makes the staged changes real: MAC table, forwarding plan, closing removed ports.
    fn finish(&mut self) -> ApiResult<TxnOutcome> {
        let Some(txn) = self.txn.as_ref() else {
            return Ok(TxnOutcome::default());
        };
        let mut outcome = TxnOutcome::default();
        // The MAC table. Static entries the transaction touched, as they are now.
        let touched: BTreeSet<StaticKey> = txn.statics_undo.iter().map(|(k, _)| *k).collect();
        let mut adds = Vec::new();
        let mut removes = Vec::new();
        for k in &touched {
            let key = FdbKey {
                bridge: k.0,
                vlan: k.1,
                mac: k.2,
            };
            match self.statics.get(k).and_then(|n| self.ifaces.get(n)) {
                Some(i) => adds.push((key, i.port.id())),
                None => removes.push(key),
            }
        }
        {
            let mut learner = self.l2.learner.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(key) = learner.add_statics(&adds) {
                return Err(ApiError::conflict(format!(
                    "the MAC table has no room for {} (VLAN {}); raise --fdb-size",
                    format_mac(key.mac),
                    key.vlan
                )));
            }
            for key in removes.iter().chain(&txn.dynamic_removes) {
                learner.remove(key);
            }
            for &id in &txn.removed_bridges {
                learner.remove_bridge(id);
            }
            for b in self.bridges.values() {
                learner.set_policy(b.id, policy(b));
                let ports: Vec<u16> = b
                    .members
                    .keys()
                    .filter_map(|m| self.ifaces.get(m))
                    .map(|i| i.port.id())
                    .collect();
                if learner.members(b.id) != Some(ports.as_slice()) {
                    learner.set_members(b.id, ports);
                }
            }
            for &(bridge, port, index) in &txn.flushes {
                let n = learner.flush(bridge, port, false) as u32;
                *outcome.flushed.entry(index).or_default() += n;
            }
        }
        let Some(txn) = self.txn.take() else {
            return Ok(outcome);
        };
        if txn.plan_dirty {
            let quiet = self.publish();
            if !quiet {
                tracing::warn!("a dataplane worker took over 2 s to pick up the new configuration");
            }
            for (name, iface) in txn.removed {
                close_removed(&name, iface, quiet);
            }
            self.update_names();
        }
        for (change, object) in txn.events {
            self.events.config(change, &object);
        }
        Ok(outcome)
    }

    /// Puts the model back as it was before the transaction.
    fn rollback(&mut self) {
        let Some(txn) = self.txn.take() else {
            return;
        };
        if !txn.events.is_empty() || !txn.added.is_empty() {
            tracing::info!(
                undone = txn.events.len(),
                "transaction failed; the changes staged before the failing one were undone"
            );
        }
        for (key, before) in txn.statics_undo.into_iter().rev() {
            match before {
                Some(i) => self.statics.insert(key, i),
                None => self.statics.remove(&key),
            };
        }
        for name in txn.added.iter().rev() {
            if let Some(i) = self.ifaces.remove(name) {
                // Never published: no worker has seen the port.
                close_removed(name, i, true);
            }
        }
        for (name, iface) in txn.removed {
            self.ifaces.insert(name, iface);
        }
        for (name, mtu, admin) in txn.port_changes.into_iter().rev() {
            if let Some(i) = self.ifaces.get(&name) {
                if i.port.mtu() != mtu {
                    let _ = i.port.set_mtu(mtu);
                }
                let _ = i.port.set_link(admin);
            }
        }
        for (name, b) in txn.ifaces_before {
            if let Some(i) = self.ifaces.get_mut(&name) {
                i.spec = b.spec;
                i.admin_up = b.admin_up;
                i.xconnect = b.xconnect;
                i.bridge = b.bridge;
                i.rx_workers = b.rx_workers;
            }
        }
        self.bridges = txn.bridges_before;
        self.queue_load = txn.queue_load_before;
        self.next_index = txn.next_index_before;
    }
}

/// Closes the port of an interface that left the plan (kept open, leaked, if a worker
/// might still use it) and removes its server socket.
fn close_removed(name: &str, iface: Iface, quiet: bool) {
    if quiet {
        let server_socket = iface.spec.server_socket().map(PathBuf::from);
        iface.port.close();
        if let Some(sock) = server_socket {
            let _ = std::fs::remove_file(sock);
        }
    } else {
        // A worker did not acknowledge the new plan; closing the port under it could
        // crash it. Keep the port open (leaked) rather than risk that.
        tracing::error!(
            iface = name,
            "a worker did not confirm the new plan; port left open"
        );
        std::mem::forget(iface.port);
    }
}

/// The changes to journal: `changes` as applied, with the MACs that interfaces added
/// without mac= got from their driver written in, so that replaying the journal re-creates
/// them with the same MAC. Copies only when there is something to write in.
fn with_recorded_macs(
    changes: &[pb::Change],
    recorded: Vec<(usize, String)>,
) -> Cow<'_, [pb::Change]> {
    if recorded.is_empty() {
        return Cow::Borrowed(changes);
    }
    let mut out = changes.to_vec();
    for (index, mac) in recorded {
        if let Some(C::AddInterface(r)) = out.get_mut(index).and_then(|c| c.change.as_mut()) {
            r.args.insert("mac".to_string(), mac);
        }
    }
    Cow::Owned(out)
}

/// Names the failing change of a batch in its error (single calls keep their message).
fn in_change(e: ApiError, index: usize, total: usize, c: Option<&C>) -> ApiError {
    if total <= 1 {
        return e;
    }
    let what = c.map(change_name).unwrap_or("change");
    ApiError {
        code: e.code,
        message: format!(
            "change {} of {total} ({what}): {}; nothing was applied",
            index + 1,
            e.message
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(name: &str) -> pb::Change {
        pb::Change {
            change: Some(C::AddInterface(pb::AddInterfaceRequest {
                name: name.into(),
                r#type: "null".into(),
                args: Default::default(),
            })),
        }
    }

    #[test]
    fn recorded_macs_are_written_into_the_journaled_changes() {
        let changes = vec![add("n1"), add("n2")];
        assert!(matches!(
            with_recorded_macs(&changes, vec![]),
            Cow::Borrowed(_)
        ));
        let out = with_recorded_macs(&changes, vec![(1, "02:00:00:00:00:09".into())]);
        let mac = |c: &pb::Change| match &c.change {
            Some(C::AddInterface(r)) => r.args.get("mac").cloned(),
            _ => None,
        };
        assert_eq!(mac(&out[0]), None);
        assert_eq!(mac(&out[1]).as_deref(), Some("02:00:00:00:00:09"));
        assert_eq!(
            mac(&changes[1]),
            None,
            "the caller's changes are left as they were"
        );
    }
}
