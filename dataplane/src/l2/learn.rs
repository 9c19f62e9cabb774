//! MAC learning: workers ask, the learner decides.
//!
//! A worker that sees a source MAC the table lacks (or has on another port) pushes a
//! [`LearnRequest`] onto its own bounded queue (lock-free, never blocks: when full the
//! request is dropped and counted, and the next frame asks again a second later). The
//! learner, run by the control plane every millisecond under the FDB's write lock, applies
//! requests: it honours each bridge's `learn` switch and learn limit, never moves static
//! entries, counts moves, and ages entries once a second.
//!
//! Thread safety: `LearnQueues` is shared (one queue per worker: single producer, single
//! consumer); `Learner` is owned by the control plane behind a mutex; `Clock` is written by
//! the learner only and read by workers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

use super::fdb::{Fdb, FdbEntry, FdbKey, FdbWriter, InsertError, Inserted, Remote, NO_REMOTE};

/// Requests one worker may have outstanding.
const QUEUE_DEPTH: usize = 4096;

/// "MAC `key` was seen arriving on `port`" (from VTEP `remote` when `port` is a tunnel,
/// else [`NO_REMOTE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnRequest {
    pub key: FdbKey,
    pub port: u16,
    pub remote: Remote,
}

/// One request queue per worker.
#[derive(Debug)]
pub struct LearnQueues {
    queues: Box<[ArrayQueue<LearnRequest>]>,
    /// Requests dropped because a queue was full, per worker.
    overflow: Box<[AtomicU64]>,
}

impl LearnQueues {
    pub fn new(workers: usize) -> LearnQueues {
        LearnQueues {
            queues: (0..workers).map(|_| ArrayQueue::new(QUEUE_DEPTH)).collect(),
            overflow: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Queues a request from `worker`; never blocks.
    #[inline]
    pub fn request(&self, worker: usize, req: LearnRequest) {
        if let Some(q) = self.queues.get(worker) {
            if q.push(req).is_err() {
                crate::cell::bump(&self.overflow[worker], 1);
            }
        }
    }

    /// Requests dropped on full queues, all workers.
    pub fn overflowed(&self) -> u64 {
        self.overflow.iter().map(|c| c.load(Relaxed)).sum()
    }
}

/// The learner's clock in whole seconds, read by workers to stamp entries as seen.
#[derive(Debug, Default)]
pub struct Clock(AtomicU64);

impl Clock {
    #[inline(always)]
    pub fn now(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A bridge's learning settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnPolicy {
    pub learn: bool,
    /// Most dynamic entries the bridge may hold.
    pub limit: usize,
    /// Seconds an unseen dynamic entry lives.
    pub age: u64,
}

/// What happened to the table (for `Watch` and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdbEvent {
    Learned { key: FdbKey, port: u16 },
    Moved { key: FdbKey, from: u16, to: u16 },
    Aged { key: FdbKey, port: u16 },
}

/// Counters of the learner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LearnStats {
    pub learned: u64,
    pub moved: u64,
    pub aged: u64,
    /// New MACs refused because their bridge was at its learn limit.
    pub limit_refused: u64,
    /// New MACs refused because the table had no room near their slot.
    pub table_full: u64,
}

/// Applies learn requests and ages entries: the FDB's only writer.
#[derive(Debug)]
pub struct Learner {
    writer: FdbWriter,
    clock: Arc<Clock>,
    policies: HashMap<u16, LearnPolicy>,
    /// Member ports per bridge: requests for other ports (stale, from a worker still on an
    /// older plan) are ignored.
    members: HashMap<u16, Vec<u16>>,
    /// Dynamic entries per bridge.
    dynamic: HashMap<u16, usize>,
    stats: LearnStats,
    events: Vec<FdbEvent>,
}

impl Learner {
    pub fn new(fdb: Arc<Fdb>, clock: Arc<Clock>) -> Learner {
        Learner {
            writer: FdbWriter::new(fdb),
            clock,
            policies: HashMap::new(),
            members: HashMap::new(),
            dynamic: HashMap::new(),
            stats: LearnStats::default(),
            events: Vec::new(),
        }
    }

    /// The table.
    pub fn fdb(&self) -> &Arc<Fdb> {
        self.writer.fdb()
    }

    /// Counters so far.
    pub fn stats(&self) -> LearnStats {
        self.stats
    }

    /// Takes the events since the last call.
    pub fn take_events(&mut self) -> Vec<FdbEvent> {
        std::mem::take(&mut self.events)
    }

    /// Sets (or changes) a bridge's policy.
    pub fn set_policy(&mut self, bridge: u16, p: LearnPolicy) {
        self.policies.insert(bridge, p);
    }

    /// Sets a bridge's member ports; entries on ports that left are removed.
    pub fn set_members(&mut self, bridge: u16, ports: Vec<u16>) {
        let gone: Vec<u16> = self
            .members
            .get(&bridge)
            .map(|old| old.iter().copied().filter(|p| !ports.contains(p)).collect())
            .unwrap_or_default();
        self.members.insert(bridge, ports);
        for p in gone {
            self.flush(bridge, Some(p), true);
        }
    }

    /// Forgets a bridge and every entry in it.
    pub fn remove_bridge(&mut self, bridge: u16) {
        self.policies.remove(&bridge);
        self.members.remove(&bridge);
        self.flush(bridge, None, true);
        self.dynamic.remove(&bridge);
    }

    /// Applies every queued request.
    pub fn drain(&mut self, queues: &LearnQueues) -> usize {
        let mut n = 0;
        for q in queues.queues.iter() {
            while let Some(req) = q.pop() {
                self.apply(req);
                n += 1;
            }
        }
        n
    }

    fn apply(&mut self, req: LearnRequest) {
        let Some(policy) = self.policies.get(&req.key.bridge).copied() else {
            return; // the bridge is gone
        };
        if !policy.learn
            || !self
                .members
                .get(&req.key.bridge)
                .is_some_and(|m| m.contains(&req.port))
        {
            return;
        }
        let now = self.clock.now();
        if let Some(hit) = self.writer.fdb().lookup(&req.key) {
            if hit.entry.is_static || (hit.entry.port == req.port && hit.remote == req.remote) {
                self.writer.fdb().touch(&hit, now);
                return;
            }
        } else if self.dynamic.get(&req.key.bridge).copied().unwrap_or(0) >= policy.limit {
            self.stats.limit_refused += 1;
            return;
        }
        match self.writer.insert_to(
            &req.key,
            FdbEntry {
                port: req.port,
                is_static: false,
            },
            req.remote,
            now,
        ) {
            Ok(Inserted::New) => {
                *self.dynamic.entry(req.key.bridge).or_default() += 1;
                self.stats.learned += 1;
                self.events.push(FdbEvent::Learned {
                    key: req.key,
                    port: req.port,
                });
            }
            Ok(Inserted::Updated { old }) => {
                self.stats.moved += 1;
                self.events.push(FdbEvent::Moved {
                    key: req.key,
                    from: old.port,
                    to: req.port,
                });
            }
            Ok(Inserted::Same) => {}
            Err(InsertError::Full) => self.stats.table_full += 1,
        }
    }

    /// Advances the clock one second and removes dynamic entries unseen for longer than
    /// their bridge's age.
    pub fn tick(&mut self) {
        let now = self.clock.0.load(Relaxed) + 1;
        self.clock.0.store(now, Relaxed);
        let policies = &self.policies;
        let gone = self.writer.remove_where(|k, e, seen| {
            !e.is_static
                && policies
                    .get(&k.bridge)
                    .is_some_and(|p| now.saturating_sub(seen) > p.age)
        });
        for (key, e) in gone {
            self.uncount(key.bridge);
            self.stats.aged += 1;
            self.events.push(FdbEvent::Aged { key, port: e.port });
        }
    }

    fn uncount(&mut self, bridge: u16) {
        if let Some(n) = self.dynamic.get_mut(&bridge) {
            *n = n.saturating_sub(1);
        }
    }

    /// Adds or replaces a static entry.
    pub fn add_static(&mut self, key: FdbKey, port: u16) -> Result<(), InsertError> {
        self.add_static_to(key, port, NO_REMOTE)
    }

    /// Adds or replaces a static entry behind tunnel `port`, toward VTEP `remote` (or
    /// [`ALL_REMOTES`](super::fdb::ALL_REMOTES)).
    pub fn add_static_to(
        &mut self,
        key: FdbKey,
        port: u16,
        remote: Remote,
    ) -> Result<(), InsertError> {
        let now = self.clock.now();
        let was_dynamic = self
            .writer
            .fdb()
            .lookup(&key)
            .is_some_and(|h| !h.entry.is_static);
        self.writer.insert_to(
            &key,
            FdbEntry {
                port,
                is_static: true,
            },
            remote,
            now,
        )?;
        if was_dynamic {
            self.uncount(key.bridge);
        }
        Ok(())
    }

    /// Adds static entries all or nothing: if one does not fit, the ones added before it
    /// are taken back (entries they replaced are put back) and its key is returned.
    pub fn add_statics(&mut self, entries: &[(FdbKey, u16)]) -> Result<(), FdbKey> {
        let with: Vec<_> = entries.iter().map(|&(k, p)| (k, p, NO_REMOTE)).collect();
        self.add_statics_to(&with)
    }

    /// [`Learner::add_statics`] of entries that may be behind tunnels: (key, port, VTEP).
    pub fn add_statics_to(&mut self, entries: &[(FdbKey, u16, Remote)]) -> Result<(), FdbKey> {
        let mut undo: Vec<(FdbKey, Option<(FdbEntry, Remote)>)> = Vec::new();
        for &(key, port, remote) in entries {
            let before = self.writer.fdb().lookup(&key).map(|h| (h.entry, h.remote));
            if self.add_static_to(key, port, remote).is_err() {
                for (k, old) in undo.into_iter().rev() {
                    match old {
                        Some((e, r)) if e.is_static => {
                            let _ = self.add_static_to(k, e.port, r);
                        }
                        // A learned entry it replaced is simply learned again.
                        _ => {
                            self.remove(&k);
                        }
                    }
                }
                return Err(key);
            }
            undo.push((key, before));
        }
        Ok(())
    }

    /// A bridge's member ports, as last set.
    pub fn members(&self, bridge: u16) -> Option<&[u16]> {
        self.members.get(&bridge).map(|m| m.as_slice())
    }

    /// Removes one entry (static or dynamic); its entry, if it existed.
    pub fn remove(&mut self, key: &FdbKey) -> Option<FdbEntry> {
        let e = self.writer.remove(key)?;
        if !e.is_static {
            self.uncount(key.bridge);
        }
        Some(e)
    }

    /// Removes a bridge's dynamic entries (and its static ones if `statics`), only those
    /// on `port` if given. Returns how many went.
    pub fn flush(&mut self, bridge: u16, port: Option<u16>, statics: bool) -> usize {
        let gone = self.writer.remove_where(|k, e, _| {
            k.bridge == bridge && (statics || !e.is_static) && port.is_none_or(|p| e.port == p)
        });
        for (k, e) in &gone {
            if !e.is_static {
                self.uncount(k.bridge);
            }
        }
        gone.len()
    }

    /// A bridge's entries with their age in seconds.
    pub fn entries(&self, bridge: u16) -> Vec<(FdbKey, FdbEntry, u64)> {
        let now = self.clock.now();
        let mut v: Vec<_> = self
            .writer
            .entries()
            .into_iter()
            .filter(|(k, _, _)| k.bridge == bridge)
            .map(|(k, e, seen)| (k, e, now.saturating_sub(seen)))
            .collect();
        v.sort_by_key(|(k, _, _)| (k.vlan, k.mac));
        v
    }

    /// One entry and its age in seconds.
    pub fn entry(&self, key: &FdbKey) -> Option<(FdbEntry, u64)> {
        let now = self.clock.now();
        self.writer
            .get(key)
            .map(|(e, seen)| (e, now.saturating_sub(seen)))
    }

    /// Dynamic entries of a bridge.
    pub fn dynamic_len(&self, bridge: u16) -> usize {
        self.dynamic.get(&bridge).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> FdbKey {
        FdbKey {
            bridge: 1,
            vlan: 0,
            mac: [2, 0, 0, 0, 0, n],
        }
    }

    fn learner(limit: usize, age: u64) -> (Learner, LearnQueues) {
        let mut l = Learner::new(Arc::new(Fdb::new(1024)), Arc::new(Clock::default()));
        l.set_policy(
            1,
            LearnPolicy {
                learn: true,
                limit,
                age,
            },
        );
        l.set_members(1, (0..10).collect());
        (l, LearnQueues::new(2))
    }

    /// MACs behind a tunnel are learned with their VTEP; another VTEP is a move; a static
    /// entry keeps the VTEP it was given.
    #[test]
    fn learns_the_remote_vtep_of_tunnel_frames() {
        let (mut l, q) = learner(100, 300);
        let req = |n, remote| LearnRequest {
            key: key(n),
            port: 4,
            remote,
        };
        q.request(0, req(1, 0x0a00_0002));
        l.drain(&q);
        let hit = l.fdb().lookup(&key(1)).unwrap();
        assert_eq!((hit.entry.port, hit.remote), (4, 0x0a00_0002));
        q.request(0, req(1, 0x0a00_0002));
        l.drain(&q);
        assert_eq!(l.stats().moved, 0);
        q.request(0, req(1, 0x0a00_0003));
        l.drain(&q);
        assert_eq!(l.fdb().lookup(&key(1)).unwrap().remote, 0x0a00_0003);
        assert_eq!(l.stats().moved, 1);
        l.add_statics_to(&[(key(2), 4, super::super::fdb::ALL_REMOTES)])
            .unwrap();
        q.request(0, req(2, 0x0a00_0009));
        l.drain(&q);
        let hit = l.fdb().lookup(&key(2)).unwrap();
        assert!(hit.entry.is_static);
        assert_eq!(hit.remote, super::super::fdb::ALL_REMOTES);
    }

    #[test]
    fn learns_moves_and_respects_static_entries() {
        let (mut l, q) = learner(100, 300);
        q.request(
            0,
            LearnRequest {
                key: key(1),
                port: 3,
                remote: NO_REMOTE,
            },
        );
        q.request(
            1,
            LearnRequest {
                key: key(1),
                port: 3,
                remote: NO_REMOTE,
            },
        );
        assert_eq!(l.drain(&q), 2);
        assert_eq!(l.fdb().lookup(&key(1)).unwrap().entry.port, 3);
        q.request(
            0,
            LearnRequest {
                key: key(1),
                port: 4,
                remote: NO_REMOTE,
            },
        );
        l.drain(&q);
        assert_eq!(l.fdb().lookup(&key(1)).unwrap().entry.port, 4);
        assert_eq!(l.stats().moved, 1);
        l.add_static(key(2), 5).unwrap();
        q.request(
            0,
            LearnRequest {
                key: key(2),
                port: 6,
                remote: NO_REMOTE,
            },
        );
        l.drain(&q);
        assert_eq!(
            l.fdb().lookup(&key(2)).unwrap().entry,
            FdbEntry {
                port: 5,
                is_static: true
            }
        );
        let ev = l.take_events();
        assert!(matches!(ev[0], FdbEvent::Learned { port: 3, .. }));
        assert!(matches!(ev[1], FdbEvent::Moved { from: 3, to: 4, .. }));
        assert_eq!(ev.len(), 2);
    }

    #[test]
    fn learn_limit_stops_new_entries_but_not_known_ones() {
        let (mut l, q) = learner(3, 300);
        for n in 0..10 {
            q.request(
                0,
                LearnRequest {
                    key: key(n),
                    port: 1,
                    remote: NO_REMOTE,
                },
            );
        }
        l.drain(&q);
        assert_eq!(l.dynamic_len(1), 3);
        assert_eq!(l.stats().limit_refused, 7);
        // A known MAC still moves at the limit.
        q.request(
            0,
            LearnRequest {
                key: key(0),
                port: 2,
                remote: NO_REMOTE,
            },
        );
        l.drain(&q);
        assert_eq!(l.fdb().lookup(&key(0)).unwrap().entry.port, 2);
        // Static entries do not count against it.
        l.add_static(key(50), 1).unwrap();
        assert_eq!(l.dynamic_len(1), 3);
    }

    #[test]
    fn aging_spares_static_and_recently_seen_entries() {
        let (mut l, q) = learner(100, 2);
        q.request(
            0,
            LearnRequest {
                key: key(1),
                port: 1,
                remote: NO_REMOTE,
            },
        );
        q.request(
            0,
            LearnRequest {
                key: key(2),
                port: 1,
                remote: NO_REMOTE,
            },
        );
        l.drain(&q);
        l.add_static(key(3), 1).unwrap();
        for _ in 0..2 {
            l.tick();
            let hit = l.fdb().lookup(&key(2)).unwrap();
            l.fdb().touch(&hit, l.clock.now()); // key 2 keeps talking
        }
        l.tick();
        assert!(l.fdb().lookup(&key(1)).is_none(), "unseen entry aged out");
        assert!(l.fdb().lookup(&key(2)).is_some());
        assert!(l.fdb().lookup(&key(3)).is_some());
        assert_eq!(l.stats().aged, 1);
        assert_eq!(l.dynamic_len(1), 1);
    }

    #[test]
    fn requests_for_ports_that_left_are_ignored_and_their_entries_go() {
        let (mut l, q) = learner(100, 300);
        q.request(
            0,
            LearnRequest {
                key: key(1),
                port: 4,
                remote: NO_REMOTE,
            },
        );
        l.drain(&q);
        l.add_static(key(2), 4).unwrap();
        // Port 4 leaves: its entries (static too) go, and a late request for it is ignored.
        l.set_members(1, vec![1, 2, 3]);
        q.request(
            0,
            LearnRequest {
                key: key(3),
                port: 4,
                remote: NO_REMOTE,
            },
        );
        l.drain(&q);
        assert!(l.entries(1).is_empty());
        assert_eq!(l.dynamic_len(1), 0);
    }

    #[test]
    fn learning_off_flush_and_bridge_removal() {
        let (mut l, q) = learner(100, 300);
        l.set_policy(
            2,
            LearnPolicy {
                learn: false,
                limit: 100,
                age: 300,
            },
        );
        q.request(
            0,
            LearnRequest {
                key: FdbKey {
                    bridge: 2,
                    ..key(1)
                },
                port: 1,
                remote: NO_REMOTE,
            },
        );
        q.request(
            0,
            LearnRequest {
                key: FdbKey {
                    bridge: 9,
                    ..key(1)
                },
                port: 1,
                remote: NO_REMOTE,
            },
        );
        q.request(
            0,
            LearnRequest {
                key: key(1),
                port: 1,
                remote: NO_REMOTE,
            },
        );
        q.request(
            0,
            LearnRequest {
                key: key(2),
                port: 2,
                remote: NO_REMOTE,
            },
        );
        l.drain(&q);
        assert!(l
            .fdb()
            .lookup(&FdbKey {
                bridge: 2,
                ..key(1)
            })
            .is_none());
        assert!(l
            .fdb()
            .lookup(&FdbKey {
                bridge: 9,
                ..key(1)
            })
            .is_none());
        l.add_static(key(3), 2).unwrap();
        assert_eq!(l.flush(1, Some(2), false), 1);
        assert!(l.fdb().lookup(&key(3)).is_some());
        assert_eq!(l.entries(1).len(), 2);
        l.remove_bridge(1);
        assert!(l.entries(1).is_empty());
    }

    /// Several workers request learning and moves concurrently while the learner applies
    /// them and readers look up: every final entry is one some worker asked for last, no
    /// entry is torn, none is lost.
    #[test]
    fn concurrent_requests_from_workers() {
        use std::sync::atomic::AtomicBool;
        let mut l = Learner::new(Arc::new(Fdb::new(8192)), Arc::new(Clock::default()));
        l.set_policy(
            1,
            LearnPolicy {
                learn: true,
                limit: 100_000,
                age: 300,
            },
        );
        l.set_members(1, (0..40).collect());
        let fdb = l.fdb().clone();
        let q = Arc::new(LearnQueues::new(4));
        let done = Arc::new(AtomicBool::new(false));
        let learner = std::thread::spawn({
            let q = q.clone();
            let done = done.clone();
            move || {
                let mut l = l;
                while !done.load(Relaxed) {
                    l.drain(&q);
                }
                l.drain(&q);
                l
            }
        });
        let workers: Vec<_> = (0..4u16)
            .map(|w| {
                let q = q.clone();
                let fdb = fdb.clone();
                std::thread::spawn(move || {
                    for round in 0..50u16 {
                        for n in 0..500u16 {
                            let mac = [2, 0, 0, w as u8, (n >> 8) as u8, n as u8];
                            let key = FdbKey {
                                bridge: 1,
                                vlan: 0,
                                mac,
                            };
                            // Each worker's MACs move between two of its own ports.
                            q.request(
                                w as usize,
                                LearnRequest {
                                    key,
                                    port: w * 10 + round % 2,
                                    remote: NO_REMOTE,
                                },
                            );
                            if let Some(h) = fdb.lookup(&key) {
                                assert!(
                                    h.entry.port == w * 10 || h.entry.port == w * 10 + 1,
                                    "torn"
                                );
                            }
                        }
                        while q.queues[w as usize].len() > 1000 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, Relaxed);
        let l = learner.join().unwrap();
        assert_eq!(q.overflowed(), 0);
        assert_eq!(l.dynamic_len(1), 2000);
        for w in 0..4u16 {
            for n in 0..500u16 {
                let mac = [2, 0, 0, w as u8, (n >> 8) as u8, n as u8];
                let h = fdb
                    .lookup(&FdbKey {
                        bridge: 1,
                        vlan: 0,
                        mac,
                    })
                    .expect("entry lost");
                assert_eq!(h.entry.port, w * 10 + 1, "last request wins");
            }
        }
    }

    #[test]
    fn static_batches_are_all_or_nothing() {
        let fdb = Arc::new(crate::l2::fdb::Fdb::new(1024));
        let mut l = Learner::new(fdb.clone(), Arc::new(Clock::default()));
        let k = |n: u8| FdbKey {
            bridge: 1,
            vlan: 0,
            mac: [2, 0, 0, 0, 0, n],
        };
        l.add_static(k(1), 7).unwrap();
        l.add_statics(&[(k(1), 8), (k(2), 8)]).unwrap();
        assert_eq!(fdb.lookup(&k(1)).unwrap().entry.port, 8);
        // Fill the table so that a batch runs out of room half-way.
        let mut n = 0u32;
        let mut batch = vec![(k(1), 9), (k(3), 9)];
        while batch.len() < 1500 {
            n += 1;
            let b = n.to_be_bytes();
            batch.push((
                FdbKey {
                    bridge: 2,
                    vlan: 0,
                    mac: [4, 0, b[0], b[1], b[2], b[3]],
                },
                9,
            ));
        }
        assert!(l.add_statics(&batch).is_err());
        // Nothing of the failed batch stayed; what it replaced is back.
        assert_eq!(fdb.lookup(&k(1)).unwrap().entry.port, 8);
        assert!(fdb.lookup(&k(3)).is_none());
        assert_eq!(l.entries(2).len(), 0);
        assert_eq!(l.entries(1).len(), 2);
    }
}
