//! Restoring the switch at start: replay. The snapshot's changes are applied one by one,
//! each as its own transaction (an object that cannot be restored, say an af_packet
//! interface whose Linux interface is gone, is reported and skipped, with what depends on
//! it; the rest is restored); then the journal's transactions are replayed as they were
//! made.

use vswitch_proto::v1 as pb;

use super::Switch;
use crate::model::change_name;
use crate::state::{Snapshot, Store};

/// A change for messages: its JSON form, as in the state file.
fn describe(c: &pb::change::Change) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| change_name(c).to_string())
}

impl Switch {
    /// Re-applies a saved state, then the journal's transactions after it. Returns what
    /// could not be restored. Writes one new snapshot at the end (the journal is then empty).
    pub fn restore(
        &mut self,
        snapshot: Option<&Snapshot>,
        journal: &[Vec<pb::Change>],
    ) -> Vec<String> {
        self.persist = false;
        let mut errors = Vec::new();
        for c in snapshot.map(|s| s.changes.as_slice()).unwrap_or_default() {
            let change = pb::Change {
                change: Some(c.clone()),
            };
            if let Err(e) = self.transaction(std::slice::from_ref(&change)) {
                errors.push(format!("{}: {e}", describe(c)));
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
