//! ACLs: ordered rules bound to interfaces, in (as frames arrive) and out (as they leave).
//!
//! - [`rule`]: a rule and the packet fields it matches ([`rule::Key`]); the plain
//!   first-match definition every classifier is tested against.
//! - [`classify`]: the classifier the workers search (built by the control thread).
//! - [`key`]: where a frame's match fields are read (Ethernet, 802.1Q, IPv4, IPv6, L4).
//! - [`filter`]: the ACL checks of ethernet-input (in) and of the output (out).
//! - [`session`]: the session table `permit-reflect` fills, shared by the workers.
//!
//! An [`Acl`] is immutable once built: replacing an ACL's rules builds a new one and
//! publishes it in a new plan, so each packet sees the old rules or the new ones. Per-rule
//! hit counters live beside it, one row per worker.
//!
//! Thread safety: an `Acl` is shared read-only by every worker (through the plan, an
//! `Arc`); each worker writes only its own row of hit counters (relaxed load + store), and
//! the control thread sums the rows with relaxed loads.

pub mod classify;
pub mod filter;
pub mod key;
pub mod rule;
pub mod session;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

pub use classify::Classifier;
pub use rule::{Action, Family, Key, Net, Rule};
pub use session::{SessionConfig, Sessions, Timeouts};

use crate::cell::bump;
use crate::plan::IfIndex;

/// Which way an ACL sees an interface's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(usize)]
pub enum Dir {
    /// Frames received on the interface (before bridging or routing).
    In = 0,
    /// Frames leaving through it.
    Out = 1,
}

/// One worker's hit counters of an ACL: one per rule, then the default deny's.
#[repr(align(64))]
struct HitRow(Box<[AtomicU64]>);

/// Ids of built ACLs (sessions remember the ACL that created them).
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// A built ACL: its rules, their classifier and hit counters.
pub struct Acl {
    pub name: Arc<str>,
    /// Unique among the ACLs built by this process.
    pub id: u32,
    /// Whether a rule of it creates sessions (permit-reflect).
    pub reflects: bool,
    rules: Box<[Rule]>,
    classifier: Classifier,
    /// Actions by rule index, for the fast path (the rules' other fields stay cold).
    actions: Box<[Action]>,
    hits: Box<[HitRow]>,
}

impl std::fmt::Debug for Acl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acl")
            .field("name", &self.name)
            .field("rules", &self.rules.len())
            .finish()
    }
}

/// What an ACL says of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub action: Action,
    /// The rule that matched (None: no rule did, the default deny).
    pub rule: Option<u32>,
}

impl Acl {
    /// Builds the ACL `name` of `rules` (in match order) for `workers` workers. Runs on the
    /// control thread: its cost (the classifier's build) is never a worker's.
    /// With an EAL, large rule sets are searched by rte_acl ([`classify`]).
    pub fn new(name: &str, rules: Vec<Rule>, workers: usize, eal: Option<&dpdk::Eal>) -> Acl {
        let classifier = Classifier::build(&rules, eal);
        let actions = rules.iter().map(|r| r.action).collect();
        let hits = (0..workers.max(1))
            .map(|_| HitRow((0..=rules.len()).map(|_| AtomicU64::new(0)).collect()))
            .collect();
        Acl {
            name: name.into(),
            id: NEXT_ID.fetch_add(1, Relaxed),
            reflects: rules.iter().any(|r| r.action == Action::PermitReflect),
            rules: rules.into_boxed_slice(),
            classifier,
            actions,
            hits,
        }
    }

    /// Its rules, in match order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// What it says of `k`, without counting.
    #[inline]
    pub fn verdict(&self, k: &Key) -> Verdict {
        self.verdict_of(self.classifier.classify(k))
    }

    /// The verdict of a classifier's answer (the rule matched, if any).
    #[inline(always)]
    pub fn verdict_of(&self, rule: Option<u32>) -> Verdict {
        match rule.and_then(|r| Some((r, *self.actions.get(r as usize)?))) {
            Some((r, action)) => Verdict {
                action,
                rule: Some(r),
            },
            None => Verdict {
                action: Action::Deny,
                rule: None,
            },
        }
    }

    /// Its classifier.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Counts a hit of `v` by `worker`.
    #[inline(always)]
    pub fn count(&self, worker: usize, v: &Verdict) {
        if let Some(row) = self.hits.get(worker) {
            let i = v.rule.map_or(self.rules.len(), |r| r as usize);
            if let Some(c) = row.0.get(i) {
                bump(c, 1);
            }
        }
    }

    /// Hits per rule summed over the workers, then the default deny's.
    pub fn hits(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.rules.len() + 1];
        for row in self.hits.iter() {
            for (o, c) in out.iter_mut().zip(row.0.iter()) {
                *o += c.load(Relaxed);
            }
        }
        out
    }
}

/// The ACLs bound to interfaces, by interface index (in and out), and the session table
/// their `permit-reflect` rules fill. Empty when no ACL is bound anywhere: interfaces
/// without ACLs then cost one length check per vector.
#[derive(Debug, Clone, Default)]
pub struct AclBindings {
    by_iface: Vec<Bound>,
    sessions: Option<Arc<Sessions>>,
}

/// One interface's ACLs.
#[derive(Debug, Clone, Default)]
struct Bound {
    acls: [Option<Arc<Acl>>; 2],
    /// One of them creates sessions: packets are looked up in the session table first.
    stateful: bool,
}

impl PartialEq for AclBindings {
    fn eq(&self, o: &AclBindings) -> bool {
        let same = |a: &Option<Arc<Acl>>, b: &Option<Arc<Acl>>| match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        let same_table = match (&self.sessions, &o.sessions) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        same_table
            && self.by_iface.len() == o.by_iface.len()
            && self
                .by_iface
                .iter()
                .zip(&o.by_iface)
                .all(|(a, b)| same(&a.acls[0], &b.acls[0]) && same(&a.acls[1], &b.acls[1]))
    }
}

impl Eq for AclBindings {}

impl AclBindings {
    /// No ACL bound; sessions go to `sessions` (None: permit-reflect permits without
    /// creating sessions, as in tests that need none).
    pub fn new(sessions: Option<Arc<Sessions>>) -> AclBindings {
        AclBindings {
            by_iface: Vec::new(),
            sessions,
        }
    }

    /// Binds `acl` to interface `iface` in direction `dir` (replacing what was bound).
    pub fn bind(&mut self, iface: IfIndex, dir: Dir, acl: Arc<Acl>) {
        let i = usize::from(iface);
        if self.by_iface.len() <= i {
            self.by_iface.resize_with(i + 1, Default::default);
        }
        let b = &mut self.by_iface[i];
        b.acls[dir as usize] = Some(acl);
        b.stateful = b.acls.iter().flatten().any(|a| a.reflects);
    }

    /// The ACL bound to `iface` in direction `dir`, if any.
    #[inline(always)]
    pub fn get(&self, iface: IfIndex, dir: Dir) -> Option<&Acl> {
        self.by_iface
            .get(usize::from(iface))
            .and_then(|a| a.acls[dir as usize].as_deref())
    }

    /// The session table, if `iface`'s ACLs create sessions.
    #[inline(always)]
    pub fn sessions_of(&self, iface: IfIndex) -> Option<&Sessions> {
        match self.by_iface.get(usize::from(iface)) {
            Some(b) if b.stateful => self.sessions.as_deref(),
            _ => None,
        }
    }

    /// The session table.
    pub fn sessions(&self) -> Option<&Arc<Sessions>> {
        self.sessions.as_ref()
    }

    /// Whether no ACL is bound anywhere.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.by_iface.is_empty()
    }
}
