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
        let changes = snapshot.map(|s| s.changes.as_slice()).unwrap_or_default();
        // Services come as one run: applied as one transaction (one plan published, not one
        // per service: 10k services restore in about a second, not in 15); if the run
        // fails, again one by one, so that only what cannot be restored is skipped.
        let mut at = 0;
        while at < changes.len() {
            let run = changes[at..]
                .iter()
                .take_while(|c| matches!(c, pb::change::Change::AddService(_)))
                .count();
            if run > 1 {
                let batch: Vec<pb::Change> = changes[at..at + run]
                    .iter()
                    .map(|c| pb::Change {
                        change: Some(c.clone()),
                    })
                    .collect();
                if self.transaction(&batch).is_ok() {
                    at += run;
                    continue;
                }
            }
            for c in &changes[at..at + run.max(1)] {
                let change = pb::Change {
                    change: Some(c.clone()),
                };
                if let Err(e) = self.transaction(std::slice::from_ref(&change)) {
                    errors.push(format!("{}: {e}", describe(c)));
                }
            }
            at += run.max(1);
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
