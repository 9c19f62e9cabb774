//! The session table: flows that a `permit-reflect` rule let through, so that their
//! replies (and their later packets) pass the ACLs of the interface that saw them without
//! a rule search. One table, shared by every worker: a flow's replies may arrive on
//! another worker than its first packet (another port, another rx queue), and find its
//! session all the same.
//!
//! A session is keyed by its interface and its flow as first seen ([`Flow`]: family,
//! protocol, addresses, ports; an ICMP echo's identifier stands in both ports). Both
//! directions hash alike (the endpoints are ordered before hashing), so a lookup finds a
//! packet's session whichever way it goes and says which way that is.
//!
//! Layout: a small index of buckets, [`WAYS`] control words each (one cache line), and a
//! dense pool of entries (two lines each: the slot, with the key, last-seen second, TCP
//! state and the ACL that created it; and a NAT entry's translation). A live control word
//! holds a 22-bit tag of the hash, the index of its entry in the pool and the entry's
//! generation (which every allocation of the entry increments). A lookup reads the
//! bucket's line, and the entry of a live word whose tag matches; then reads the word
//! again: if it changed (the entry was freed, or freed and taken again, meanwhile) the
//! read is discarded (a miss). So readers never lock and never see a torn key.
//!
//! Why a pool: a lookup lands on a random bucket, and a table sized for its limit is tens
//! of megabytes. In a VM whose huge pages the host backs with small ones, the TLB reaches
//! about 8 MiB (`perf/results/2026-12-04-table-reach.md`): buckets with their slots inside
//! them (this table's earlier layout, 71 MiB) made every lookup a nested page walk, even
//! with 10,000 sessions. The index is 64 bytes per 8 slots (4 MiB at the default size),
//! and the pool hands out recently freed entries first and never-used ones in order, so
//! the lines a lookup reads lie in a few megabytes: those the live sessions use.
//!
//! Writers: workers create sessions (an entry taken from the pool's lock-free free list is
//! written, then published by a compare-and-swap of a free control word: two workers
//! never take one way) and stamp the ones they see (last-seen second, TCP flags: plain
//! stores, only when they change; a stamp landing on an entry just freed and reused only
//! delays that session's expiry). The control thread expires sessions (compare-and-swap
//! from live to free, then the entry back to the pool) and moves the clock. The only
//! read-modify-writes shared between workers are per new session (the session counts, the
//! free list), never per packet.
//!
//! Limits: a global limit and one per interface. At a limit, a worker evicts the oldest
//! half-open TCP session it created (from its own FIFO of half-open sessions; entries that
//! completed or went meanwhile are skipped), counted as an eviction; with none to evict,
//! the new flow is refused (its packet dropped as `session_limit`, as conntrack does when
//! full). A SYN flood so fills at most the limit, and established sessions stay.
//!
//! NAT sessions ([`crate::nat`]) are pairs of entries in the same table: one keyed by the
//! flow as it arrived, one by the reply of the flow as it leaves, each with the flow its
//! packets are rewritten to (a [`NatSlot`] beside the slot) and its partner's slot. Their
//! flows' interface is [`crate::nat::NAT_KEY`] plus the VRF, so ACLs never find them; they
//! count against the global limit only, and go (expire, evicted, flushed) as a pair: a
//! pair is idle while both entries are, and its TCP state is both entries' together.
//!
//! TCP state: enough for timeouts. SYN seen both ways (or a flow picked up mid-way, whose
//! first packet was no SYN) is established (`timeout-tcp`); before that, and after a RST or
//! a FIN each way, transitory (`timeout-tcp-transitory`). UDP and other protocols time out
//! after `timeout-udp`, ICMP echoes after `timeout-icmp`.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

use super::key::{tcp, Extra};
use super::rule::{Family, Key};
use super::Dir;
use crate::huge::{HugeArray, Zeroed};
use crate::plan::MAX_IFACES;

/// Slots per bucket (one cache line of control words).
pub const WAYS: usize = 8;

/// How many packets ahead of its lookup a packet's entries are asked for
/// ([`Sessions::prefetch_slots`], [`Sessions::prefetch_nat_slots`]), by the vector loops
/// that look sessions up (the stateful ACL check, NAT): a lookup reads the bucket (asked
/// for first) and then the entries it names, so asking for all a vector's entries and
/// then looking up left the first lookups waiting.
pub const LOOKUP_AHEAD: usize = 8;

/// Slot states in a control word (all-zero: free).
const FREE: u64 = 0;
const LIVE: u64 = 2;

/// A control word: the entry's index in the pool (bits 0-19), the state (20-21), the low
/// 20 bits of the entry's generation (22-41), the hash's tag (42-63: its top 22 bits).
const INDEX_BITS: u32 = 20;
/// The most entries a table has (the index's room in a control word).
pub const MAX_SLOTS: usize = 1 << INDEX_BITS;
const GEN_BITS: u32 = 20;
const TAG_SHIFT: u32 = INDEX_BITS + 2 + GEN_BITS;

#[inline(always)]
fn word(h: u64, state: u64, gen: u32, index: usize) -> u64 {
    index as u64
        | (state << INDEX_BITS)
        | ((u64::from(gen) & ((1 << GEN_BITS) - 1)) << (INDEX_BITS + 2))
        | (h >> TAG_SHIFT << TAG_SHIFT)
}

#[inline(always)]
fn state_of(c: u64) -> u64 {
    (c >> INDEX_BITS) & 3
}

/// Whether control word `c` is live with hash `h`'s tag.
#[inline(always)]
fn live_with_tag(c: u64, h: u64) -> bool {
    state_of(c) == LIVE && (c ^ h) >> TAG_SHIFT == 0
}

/// The pool index control word `c` names.
#[inline(always)]
fn index_of(c: u64) -> usize {
    (c & ((1 << INDEX_BITS) - 1)) as usize
}

/// TCP state bits (per session).
mod st {
    pub const FWD_SYN: u32 = 1;
    pub const REV_SYN: u32 = 2;
    pub const FWD_FIN: u32 = 4;
    pub const REV_FIN: u32 = 8;
    pub const RST: u32 = 16;
    /// Established: SYN seen both ways, or picked up mid-flow.
    pub const EST: u32 = 32;
    /// A reply was seen.
    pub const REPLIED: u32 = 64;
}

const TCP: u8 = 6;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// A session's flow as first seen, on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub iface: u16,
    pub family: Family,
    pub proto: u8,
    pub src: u128,
    pub dst: u128,
    pub sport: u16,
    pub dport: u16,
}

impl Flow {
    /// The flow of a packet with match fields `k` (and `x`) on `iface`; None for what
    /// has no session of its own (ICMP other than echoes, later fragments).
    #[inline]
    pub fn of(iface: u16, k: &Key, x: &Extra) -> Option<Flow> {
        if k.later_fragment {
            return None;
        }
        let (sport, dport) = match k.proto {
            ICMP | ICMPV6 => {
                let id = x.echo?;
                (id, id)
            }
            _ => (k.sport, k.dport),
        };
        Some(Flow {
            iface,
            family: k.family,
            proto: k.proto,
            src: k.src,
            dst: k.dst,
            sport,
            dport,
        })
    }

    /// The same flow the other way.
    #[inline(always)]
    pub fn reversed(&self) -> Flow {
        Flow {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
            ..*self
        }
    }

    #[inline(always)]
    fn words(&self) -> [u64; 5] {
        let fam = match self.family {
            Family::V4 => 0u64,
            Family::V6 => 1,
        };
        [
            self.src as u64,
            (self.src >> 64) as u64,
            self.dst as u64,
            (self.dst >> 64) as u64,
            u64::from(self.sport)
                | (u64::from(self.dport) << 16)
                | (u64::from(self.proto) << 32)
                | (fam << 40)
                | (u64::from(self.iface) << 48),
        ]
    }

    #[inline(always)]
    fn from_words(w: &[u64; 5]) -> Flow {
        Flow {
            src: u128::from(w[0]) | (u128::from(w[1]) << 64),
            dst: u128::from(w[2]) | (u128::from(w[3]) << 64),
            sport: w[4] as u16,
            dport: (w[4] >> 16) as u16,
            proto: (w[4] >> 32) as u8,
            family: if (w[4] >> 40) & 1 == 1 {
                Family::V6
            } else {
                Family::V4
            },
            iface: (w[4] >> 48) as u16,
        }
    }

    /// A hash both directions share (what [`Sessions::prefetch_bucket`] returns, and the
    /// `*_hashed` lookups take so that a flow is hashed once).
    #[inline(always)]
    pub fn hash(&self) -> u64 {
        let a = (self.src, self.sport);
        let b = (self.dst, self.dport);
        let ((x, xp), (y, yp)) = if a <= b { (a, b) } else { (b, a) };
        let mut h = u64::from(self.iface) | (u64::from(self.proto) << 16);
        for v in [
            x as u64,
            (x >> 64) as u64,
            y as u64,
            (y >> 64) as u64,
            u64::from(xp) | (u64::from(yp) << 16),
        ] {
            h = (h ^ v).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(27);
        }
        h ^ (h >> 29)
    }
}

/// Whether two flows' words ([`Flow::words`]) are equal: five xors or-ed together and one
/// branch (`==` on the arrays compiles to a call of libc's bcmp, 8% of a worker's time in
/// acl-stateful-10k).
#[inline(always)]
fn same_words(a: &[u64; 5], b: &[u64; 5]) -> bool {
    ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4])) == 0
}

/// Timeouts, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub tcp: u32,
    pub tcp_transitory: u32,
    pub udp: u32,
    pub icmp: u32,
}

impl Default for Timeouts {
    /// VPP's ACL plugin's defaults for TCP (established: 24 h is conntrack's 5 days cut
    /// down; transitory 240 s) and UDP; ICMP as echoes are.
    fn default() -> Timeouts {
        Timeouts {
            tcp: 7200,
            tcp_transitory: 240,
            udp: 600,
            icmp: 30,
        }
    }
}

/// The table's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionConfig {
    /// Most sessions in all.
    pub limit: u32,
    /// Most sessions on one interface.
    pub iface_limit: u32,
    pub timeouts: Timeouts,
}

// SAFETY: a Bucket is atomic integers only: all-zero bytes are every control word FREE.
unsafe impl Zeroed for Bucket {}
// SAFETY: a Way is atomic integers only (its Slot and NatSlot): all-zero bytes are an
// entry never used (generation 0, no translation, no partner, home way 0).
unsafe impl Zeroed for Way {}

/// A slot's `dir` word: an ACL's direction (0 in, 1 out), or one of a NAT pair's entries.
const DIR_NAT_FWD: u32 = 2;
const DIR_NAT_REPLY: u32 = 3;

/// The per-interface count NAT sessions go to (beyond every interface's).
const NAT_COUNT: usize = MAX_IFACES;

/// The per-interface count index of a flow's interface field.
#[inline(always)]
fn count_index(iface: u16) -> usize {
    if iface >= crate::nat::NAT_KEY {
        NAT_COUNT
    } else {
        usize::from(iface) % MAX_IFACES
    }
}

/// What a NAT entry rewrites its packets to, and its partner (beside its [`Slot`], same
/// index; read only for NAT entries); and, for every entry, where it is live and its
/// generation (written when it is taken from the pool).
#[repr(align(64))]
struct NatSlot {
    /// The flow its packets become (as [`Flow::words`]).
    to: [AtomicU64; 5],
    /// The pair's other entry, as [`Sessions::link`] names it (0: none yet).
    partner: AtomicU64,
    /// The way that names it: bucket * WAYS + way.
    home: AtomicU32,
    /// How many times it was taken from the pool (what a control word's generation bits
    /// and a link's low 32 bits hold).
    gen: AtomicU32,
}

/// A NAT entry found for a packet: the packet goes the entry's way (an entry's reverse
/// direction is no NAT session's packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NatHit {
    pub slot: u32,
    /// The entry of the replies (rewritten back to the original flow's reply).
    pub reply_entry: bool,
    /// The flow the packet is rewritten to.
    pub to: Flow,
}

#[repr(align(64))]
struct Bucket {
    ctl: [AtomicU64; WAYS],
}

/// An entry of the pool: its slot and, on the next line, a NAT entry's translation (the
/// two lines a NAT lookup reads, side by side).
#[repr(C, align(64))]
struct Way {
    slot: Slot,
    nat: NatSlot,
}

const _: () = assert!(std::mem::size_of::<Way>() == 128 && std::mem::size_of::<Bucket>() == 64);

#[repr(align(64))]
struct Slot {
    key: [AtomicU64; 5],
    /// Last second (on the table's clock) a packet of it was seen.
    seen: AtomicU32,
    /// TCP state bits ([`st`]).
    state: AtomicU32,
    /// The id of the ACL that created it.
    acl: AtomicU32,
    /// The second it was created.
    born: AtomicU32,
    /// The direction of the ACL that created it (0 in, 1 out).
    dir: AtomicU32,
}

/// One worker's FIFO of the half-open sessions it created (slot and generation), oldest
/// first: where it looks for a session to evict at a limit. Written by its worker only.
#[repr(align(64))]
struct HalfOpen {
    head: AtomicU32,
    tail: AtomicU32,
    ring: Box<[AtomicU64]>,
}

/// How far ahead in its FIFO of half-open sessions a worker prefetches the next victim's
/// lines (one eviction per new flow at a limit: a few new flows' time).
const EVICT_AHEAD: u32 = 4;

/// Entries in each worker's FIFO of half-open sessions (older ones are forgotten: the
/// FIFO is a hint, expiry still removes them).
const HALF_OPEN_RING: usize = 1 << 18;

/// A session found for a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub slot: u32,
    /// The packet goes the other way from the session's first one.
    pub reply: bool,
    /// The id of the ACL that created it and that ACL's direction.
    pub acl: u32,
    pub dir: Dir,
}

/// Why a session was not created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// At the global or the interface's limit, with nothing to evict.
    Limit,
    /// Every slot of the flow's bucket is taken.
    Full,
}

/// A session as `vsctl sessions` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    pub flow: Flow,
    /// For a NAT session: the flow as it leaves (translated).
    pub nat: Option<Flow>,
    pub state: &'static str,
    pub age: u32,
    pub idle: u32,
    pub dir: Dir,
}

/// A session as saved across a restart (`Sessions::saved`) and put back
/// (`Sessions::restore`): its flow, the direction of the ACL that created it, its state
/// bits (opaque outside this module), and its age and idle time in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedSession {
    pub flow: Flow,
    pub dir: Dir,
    pub state: u32,
    pub age: u32,
    pub idle: u32,
}

/// Every state name a session can have (`vsctl sessions`, the metrics' labels).
pub const STATE_NAMES: [&str; 8] = [
    "new",
    "active",
    "syn-sent",
    "syn-received",
    "established",
    "closing",
    "closed",
    "reset",
];

/// Counters of the table, summed over workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub live: u64,
    pub created: u64,
    pub evicted: u64,
    pub refused: u64,
    pub expired: u64,
}

/// The session table.
pub struct Sessions {
    /// The index: a lookup lands on a random one (in huge-page memory).
    buckets: HugeArray<Bucket>,
    mask: u64,
    /// The entries, as many as the buckets have ways (in huge-page memory, touched as
    /// they are first used).
    pool: HugeArray<Way>,
    /// The pool's free list (a stack): a tag counting its changes << 32 | the top entry's
    /// index + 1 (0: empty).
    free_head: AtomicU64,
    /// Under each entry on the free list, the next one's index + 1 (0: the bottom).
    free_next: Box<[AtomicU32]>,
    /// Entries never used yet: those from here on.
    fresh: AtomicUsize,
    count: AtomicU64,
    per_iface: Box<[AtomicU32]>,
    half_open: Box<[HalfOpen]>,
    now: AtomicU32,
    limit: AtomicU32,
    iface_limit: AtomicU32,
    timeouts: [AtomicU32; 4],
    created: AtomicU64,
    evicted: AtomicU64,
    refused: AtomicU64,
    expired: AtomicU64,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("slots", &self.capacity())
            .field("live", &self.count.load(Relaxed))
            .finish()
    }
}

impl Sessions {
    /// A table of at least `capacity` slots (rounded up to a power of two buckets; at
    /// most [`MAX_SLOTS`]) for `workers` workers.
    pub fn new(capacity: usize, workers: usize, config: SessionConfig) -> Sessions {
        let buckets = capacity
            .min(MAX_SLOTS)
            .div_ceil(WAYS)
            .next_power_of_two()
            .max(1);
        let t = Sessions {
            buckets: HugeArray::new(buckets),
            mask: buckets as u64 - 1,
            pool: HugeArray::new(buckets * WAYS),
            free_head: AtomicU64::new(0),
            free_next: (0..buckets * WAYS).map(|_| AtomicU32::new(0)).collect(),
            fresh: AtomicUsize::new(0),
            count: AtomicU64::new(0),
            per_iface: (0..=NAT_COUNT).map(|_| AtomicU32::new(0)).collect(),
            half_open: (0..workers.max(1))
                .map(|_| HalfOpen {
                    head: AtomicU32::new(0),
                    tail: AtomicU32::new(0),
                    ring: (0..HALF_OPEN_RING).map(|_| AtomicU64::new(0)).collect(),
                })
                .collect(),
            now: AtomicU32::new(1),
            limit: AtomicU32::new(0),
            iface_limit: AtomicU32::new(0),
            timeouts: Default::default(),
            created: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            expired: AtomicU64::new(0),
        };
        t.configure(&config);
        t
    }

    /// Slots in all.
    pub fn capacity(&self) -> usize {
        self.pool.len()
    }

    /// Applies new limits and timeouts (sessions over a lowered limit stay until they
    /// expire; new ones wait for room).
    pub fn configure(&self, c: &SessionConfig) {
        self.limit.store(c.limit, Relaxed);
        self.iface_limit.store(c.iface_limit, Relaxed);
        let t = &c.timeouts;
        for (a, v) in self
            .timeouts
            .iter()
            .zip([t.tcp, t.tcp_transitory, t.udp, t.icmp])
        {
            a.store(v, Relaxed);
        }
    }

    /// The current settings.
    pub fn config(&self) -> SessionConfig {
        let t = |i: usize| self.timeouts[i].load(Relaxed);
        SessionConfig {
            limit: self.limit.load(Relaxed),
            iface_limit: self.iface_limit.load(Relaxed),
            timeouts: Timeouts {
                tcp: t(0),
                tcp_transitory: t(1),
                udp: t(2),
                icmp: t(3),
            },
        }
    }

    /// Sets the table's clock (seconds; the control thread's, once a second).
    pub fn set_clock(&self, now: u32) {
        self.now.store(now.max(1), Relaxed);
    }

    #[inline(always)]
    fn bucket(&self, h: u64) -> &Bucket {
        // mask < buckets.len(): the index is in range.
        &self.buckets[(h & self.mask) as usize]
    }

    /// The control word of the way entry `i` was last made live in (it names `i` only
    /// while `i` is live there: callers compare the index it holds).
    #[inline(always)]
    fn ctl(&self, i: usize) -> Option<&AtomicU64> {
        let home = self.pool.get(i)?.nat.home.load(Relaxed) as usize;
        Some(&self.buckets.get(home / WAYS)?.ctl[home % WAYS])
    }

    /// Entry `i`'s slot.
    #[inline(always)]
    fn slot(&self, i: usize) -> Option<&Slot> {
        Some(&self.pool.get(i)?.slot)
    }

    /// Entry `i`'s translation.
    #[inline(always)]
    fn nat(&self, i: usize) -> Option<&NatSlot> {
        Some(&self.pool.get(i)?.nat)
    }

    /// Entry `i`'s slot, `i` from a control word of this table (in range).
    #[inline(always)]
    fn slot_at(&self, i: usize) -> &Slot {
        &self.pool[i].slot
    }

    /// Entry `i`'s control word ([`Sessions::ctl`]), `i` in range as for
    /// [`Sessions::slot_at`] (a home is always a way of this table).
    #[inline(always)]
    fn ctl_at(&self, i: usize) -> &AtomicU64 {
        let home = self.pool[i].nat.home.load(Relaxed) as usize;
        &self.buckets[home / WAYS].ctl[home % WAYS]
    }

    /// Entry `i` as links name it (a NAT partner, a half-open FIFO's entry): its index
    /// << 32 | its generation.
    #[inline(always)]
    fn link(&self, i: usize) -> u64 {
        ((i as u64) << 32) | u64::from(self.pool[i].nat.gen.load(Relaxed))
    }

    /// The control word of entry `i` named by a link of generation `gen`, if `i` is live
    /// with that generation.
    fn linked(&self, i: usize, gen: u32) -> Option<u64> {
        if self.nat(i)?.gen.load(Relaxed) != gen {
            return None;
        }
        let c = self.ctl(i)?.load(Acquire);
        let same_gen = (c >> (INDEX_BITS + 2)) & ((1 << GEN_BITS) - 1)
            == u64::from(gen) & ((1 << GEN_BITS) - 1);
        (state_of(c) == LIVE && index_of(c) == i && same_gen).then_some(c)
    }

    /// Takes an entry from the pool: the one freed last, else the first never used.
    fn alloc(&self) -> Option<usize> {
        let mut h = self.free_head.load(Acquire);
        loop {
            let top = (h & 0xffff_ffff) as usize;
            let Some(i) = top.checked_sub(1) else {
                break;
            };
            let next = self.free_next[i].load(Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | u64::from(next);
            // The tag changes with every push and pop: a stale `next` (the entry taken
            // and given back meanwhile) fails the exchange.
            match self
                .free_head
                .compare_exchange_weak(h, new, Acquire, Acquire)
            {
                Ok(_) => return Some(i),
                Err(x) => h = x,
            }
        }
        let n = self.pool.len();
        self.fresh
            .fetch_update(Relaxed, Relaxed, |i| (i < n).then_some(i + 1))
            .ok()
    }

    /// Gives entry `i` back to the pool (no control word names it any more).
    fn dealloc(&self, i: usize) {
        let mut h = self.free_head.load(Relaxed);
        loop {
            self.free_next[i].store(h as u32, Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | (i as u64 + 1);
            match self
                .free_head
                .compare_exchange_weak(h, new, Release, Relaxed)
            {
                Ok(_) => return,
                Err(x) => h = x,
            }
        }
    }

    /// Prefetches the bucket `f` hashes to (its hash is returned, for
    /// [`Sessions::prefetch_slots`]): a chunk of packets' buckets are asked for before any
    /// is read.
    #[inline(always)]
    pub fn prefetch_bucket(&self, f: &Flow) -> u64 {
        let h = f.hash();
        prefetch(self.bucket(h) as *const Bucket);
        h
    }

    /// Prefetches the slot of the bucket of hash `h` whose tag matches first (the bucket's
    /// line, prefetched before, is read here). Only the first: another live flow of the bucket
    /// shares the 22-bit tag in at most 7 of 2^22 lookups (a full bucket), and stopping at
    /// the match spares the hit (nearly always way 0 of a bucket) the other seven words.
    #[inline(always)]
    pub fn prefetch_slots(&self, h: u64) {
        if let Some(i) = self.first_with_tag(h) {
            if let Some(s) = self.slot(i) {
                prefetch(s as *const Slot);
            }
        }
    }

    /// [`Sessions::prefetch_slots`] for NAT: every matching slot and its translation (the
    /// first match only measured no faster here: nat-dnat-10 0.97x paired over 3 runs,
    /// perf/results/2026-12-04-acl-first-tag-ab.md).
    #[inline(always)]
    pub fn prefetch_nat_slots(&self, h: u64) {
        for c in &self.bucket(h).ctl {
            let c1 = c.load(Relaxed);
            if live_with_tag(c1, h) {
                let i = index_of(c1);
                if let (Some(s), Some(n)) = (self.slot(i), self.nat(i)) {
                    prefetch(s as *const Slot);
                    prefetch(n as *const NatSlot);
                }
            }
        }
    }

    /// The entry that the first live way of `h`'s bucket with `h`'s tag names.
    #[inline(always)]
    fn first_with_tag(&self, h: u64) -> Option<usize> {
        self.bucket(h)
            .ctl
            .iter()
            .map(|c| c.load(Relaxed))
            .find(|&c| live_with_tag(c, h))
            .map(index_of)
    }

    /// The session of `f` (either way), if there is one.
    #[inline]
    pub fn lookup(&self, f: &Flow) -> Option<Found> {
        self.lookup_hashed(f, f.hash())
    }

    /// [`Sessions::lookup`] of `f` whose hash `h` ([`Flow::hash`]) the caller has.
    #[inline]
    pub fn lookup_hashed(&self, f: &Flow, h: u64) -> Option<Found> {
        let (slot, _, reply, acl, dir) = self.find_hashed(f, h)?;
        Some(Found {
            slot: slot as u32,
            reply,
            acl,
            dir: if dir == 0 { Dir::In } else { Dir::Out },
        })
    }

    /// The NAT entry of `f` (its way only; both ways for an untranslated flow's single
    /// entry), if there is one.
    #[inline]
    pub fn lookup_nat(&self, f: &Flow) -> Option<NatHit> {
        self.lookup_nat_hashed(f, f.hash())
    }

    /// [`Sessions::lookup_nat`] of `f` whose hash `h` ([`Flow::hash`]) the caller has.
    #[inline(always)]
    pub fn lookup_nat_hashed(&self, f: &Flow, h: u64) -> Option<NatHit> {
        let (slot, c1, reply, _, dir) = self.find_hashed(f, h)?;
        if dir < DIR_NAT_FWD || (reply && dir != DIR_NAT_FWD) {
            return None;
        }
        let n = self.nat(slot)?;
        let w: [u64; 5] = std::array::from_fn(|i| n.to[i].load(Relaxed));
        std::sync::atomic::fence(Acquire);
        if self.ctl_at(slot).load(Relaxed) != c1 {
            return None;
        }
        let to = Flow::from_words(&w);
        if reply {
            // Only an untranslated flow's entry (to itself) holds its replies too.
            return same_words(&w, &f.reversed().words()).then_some(NatHit {
                slot: slot as u32,
                reply_entry: true,
                to: *f,
            });
        }
        Some(NatHit {
            slot: slot as u32,
            reply_entry: dir == DIR_NAT_REPLY,
            to,
        })
    }

    /// Records flow `orig` as one NAT leaves untranslated (a flow that came in through a
    /// masquerading interface: its replies must not be masqueraded): a single entry that
    /// rewrites nothing, found both ways. Limits as [`Sessions::create_nat`].
    pub fn create_nat_untranslated(
        &self,
        worker: usize,
        orig: &Flow,
        tcp_flags: u8,
    ) -> Result<NatHit, Refused> {
        if !self.reserve(worker, NAT_COUNT) {
            self.refused.fetch_add(1, Relaxed);
            return Err(Refused::Limit);
        }
        let now = self.now.load(Relaxed);
        let state = first_state(orig.proto, tcp_flags);
        let Some((slot, _)) = self.claim(orig, [now, now, state, 0, DIR_NAT_FWD], Some(orig))
        else {
            self.release(NAT_COUNT);
            self.refused.fetch_add(1, Relaxed);
            return Err(Refused::Full);
        };
        self.created.fetch_add(1, Relaxed);
        if orig.proto == TCP && state & st::EST == 0 {
            self.remember_half_open(worker, slot);
        }
        Ok(NatHit {
            slot: slot as u32,
            reply_entry: false,
            to: *orig,
        })
    }

    /// Stamps NAT entry `hit` with a packet of it.
    #[inline]
    pub fn touch_nat(&self, hit: &NatHit, tcp_flags: u8) {
        self.touch(
            &Found {
                slot: hit.slot,
                reply: hit.reply_entry,
                acl: 0,
                dir: Dir::In,
            },
            tcp_flags,
        )
    }

    /// The live slot holding `f` (either way): its index, control word, whether `f` is
    /// its reverse, its ACL id and raw direction word.
    #[inline(always)]
    fn find(&self, f: &Flow) -> Option<(usize, u64, bool, u32, u32)> {
        self.find_hashed(f, f.hash())
    }

    /// [`Sessions::find`] with `f`'s hash.
    #[inline(always)]
    fn find_hashed(&self, f: &Flow, h: u64) -> Option<(usize, u64, bool, u32, u32)> {
        let fwd = f.words();
        for c in &self.bucket(h).ctl {
            let c1 = c.load(Acquire);
            if !live_with_tag(c1, h) {
                continue;
            }
            let slot = index_of(c1);
            let s = self.slot_at(slot);
            let w = [
                s.key[0].load(Relaxed),
                s.key[1].load(Relaxed),
                s.key[2].load(Relaxed),
                s.key[3].load(Relaxed),
                s.key[4].load(Relaxed),
            ];
            let (acl, dir) = (s.acl.load(Relaxed), s.dir.load(Relaxed));
            std::sync::atomic::fence(Acquire);
            if c.load(Relaxed) != c1 {
                continue;
            }
            let reply = if same_words(&w, &fwd) {
                false
            } else if same_words(&w, &f.reversed().words()) {
                true
            } else {
                continue;
            };
            return Some((slot, c1, reply, acl, dir));
        }
        None
    }

    /// Stamps session `found` with a packet of it (last seen, TCP flags).
    #[inline]
    pub fn touch(&self, found: &Found, tcp_flags: u8) {
        let Some(s) = self.slot(found.slot as usize) else {
            return;
        };
        let now = self.now.load(Relaxed);
        if s.seen.load(Relaxed) != now {
            s.seen.store(now, Relaxed);
        }
        let old = s.state.load(Relaxed);
        let new = old | bits(tcp_flags, found.reply, old);
        if new != old {
            s.state.store(new, Relaxed);
        }
    }

    /// Creates the session of `f` (first seen going `dir` through the ACL `acl`) from
    /// worker `worker`; if `f` has a session already (either way), stamps and returns it.
    pub fn create(
        &self,
        worker: usize,
        f: &Flow,
        dir: Dir,
        acl: u32,
        tcp_flags: u8,
    ) -> Result<Found, Refused> {
        // Packets of one new flow classified in one chunk (filter.rs's check_all looks
        // sessions up for the whole chunk first) each come here: the first creates the
        // session, the others find it (either way) and are stamped as its packets.
        if let Some(found) = self.lookup(f) {
            self.touch(&found, tcp_flags);
            return Ok(found);
        }
        let iface = count_index(f.iface);
        if !self.reserve(worker, iface) {
            self.refused.fetch_add(1, Relaxed);
            return Err(Refused::Limit);
        }
        let now = self.now.load(Relaxed);
        let state = first_state(f.proto, tcp_flags);
        let fields = [now, now, state, acl, dir as u32];
        let Some((slot, _)) = self.claim(f, fields, None) else {
            self.release(iface);
            self.refused.fetch_add(1, Relaxed);
            return Err(Refused::Full);
        };
        self.created.fetch_add(1, Relaxed);
        if f.proto == TCP && state & st::EST == 0 {
            self.remember_half_open(worker, slot);
        }
        Ok(Found {
            slot: slot as u32,
            reply: false,
            acl,
            dir,
        })
    }

    /// Creates the NAT session of `orig` (a packet's flow as it arrived, with `tcp_flags`)
    /// rewritten to `to`, from worker `worker`: its two entries (`orig` -> `to`, and the
    /// reply of `to` -> the reply of `orig`). Refused at the global limit (evicting a
    /// half-open session this worker created first, as [`Sessions::create`]), or when
    /// either entry's bucket is full or the reply's flow has an entry already (the caller
    /// picked a translation in use: `Full`).
    pub fn create_nat(
        &self,
        worker: usize,
        orig: &Flow,
        to: &Flow,
        tcp_flags: u8,
    ) -> Result<NatHit, Refused> {
        let back = to.reversed();
        if let Some((slot, c0, ..)) = self.find(&back) {
            // Another flow's translation has the same reply (a client port reused towards
            // another service's VIP that picked the same backend). A session that is over
            // (TCP closed, or idle past its timeout and not yet swept) gives way, as
            // conntrack lets a closed connection's tuple be reused; a live one keeps it.
            if !self.is_over(slot) {
                return Err(Refused::Full);
            }
            self.free(slot, c0);
            if self.find(&back).is_some() {
                return Err(Refused::Full);
            }
            // Counted with the sessions the sweep removes: it was over.
            self.expired.fetch_add(1, Relaxed);
        }
        if !self.reserve(worker, NAT_COUNT) {
            self.refused.fetch_add(1, Relaxed);
            return Err(Refused::Limit);
        }
        if !self.reserve(worker, NAT_COUNT) {
            self.release(NAT_COUNT);
            self.refused.fetch_add(1, Relaxed);
            return Err(Refused::Limit);
        }
        let now = self.now.load(Relaxed);
        let state = first_state(orig.proto, tcp_flags);
        let fwd = [now, now, state, 0, DIR_NAT_FWD];
        let Some((s1, live1)) = self.claim(orig, fwd, Some(to)) else {
            self.release(NAT_COUNT);
            self.release(NAT_COUNT);
            self.refused.fetch_add(1, Relaxed);
            return Err(Refused::Full);
        };
        let rev = [now, now, state & st::EST, 0, DIR_NAT_REPLY];
        let Some((s2, live2)) = self.claim(&back, rev, Some(&orig.reversed())) else {
            self.free(s1, live1);
            self.release(NAT_COUNT);
            self.refused.fetch_add(1, Relaxed);
            return Err(Refused::Full);
        };
        if self.ctl_at(s1).load(Acquire) != live1 {
            // Making room for the reply's entry evicted the first (one bucket, both new).
            self.free(s2, live2);
            self.refused.fetch_add(1, Relaxed);
            return Err(Refused::Full);
        }
        if let (Some(n1), Some(n2)) = (self.nat(s1), self.nat(s2)) {
            n1.partner.store(self.link(s2), Relaxed);
            n2.partner.store(self.link(s1), Relaxed);
        }
        self.created.fetch_add(1, Relaxed);
        if orig.proto == TCP && state & st::EST == 0 {
            self.remember_half_open(worker, s1);
        }
        Ok(NatHit {
            slot: s1 as u32,
            reply_entry: false,
            to: *to,
        })
    }

    /// The live partner of NAT entry `slot` (its slot and control word), if it has one.
    fn partner(&self, slot: usize) -> Option<(usize, u64)> {
        let p = self.nat(slot)?.partner.load(Relaxed);
        if p == 0 {
            return None;
        }
        let ps = (p >> 32) as usize;
        Some((ps, self.linked(ps, p as u32)?))
    }

    /// Whether `slot` holds a NAT entry (read while it is live).
    #[inline(always)]
    fn is_nat(&self, slot: usize) -> bool {
        self.slot_at(slot).dir.load(Relaxed) >= DIR_NAT_FWD
    }

    /// Whether the session in `slot` is over: TCP closed (a reset, or FIN both ways), or
    /// idle past its timeout (the sweep has not removed it yet).
    fn is_over(&self, slot: usize) -> bool {
        let (state, seen) = self.pair_state(slot);
        let proto = (self.slot_at(slot).key[4].load(Relaxed) >> 32) as u8;
        let closed = proto == TCP
            && (state & st::RST != 0
                || state & (st::FWD_FIN | st::REV_FIN) == st::FWD_FIN | st::REV_FIN);
        closed || self.now.load(Relaxed).saturating_sub(seen) > self.timeout(proto, state)
    }

    /// A slot's (state, last seen): for a NAT entry, its pair's together.
    fn pair_state(&self, slot: usize) -> (u32, u32) {
        let s = self.slot_at(slot);
        let (mut state, mut seen) = (s.state.load(Relaxed), s.seen.load(Relaxed));
        if self.is_nat(slot) {
            if let Some((p, _)) = self.partner(slot) {
                let ps = self.slot_at(p);
                state |= ps.state.load(Relaxed);
                seen = seen.max(ps.seen.load(Relaxed));
                if state & (st::FWD_SYN | st::REV_SYN) == st::FWD_SYN | st::REV_SYN {
                    state |= st::EST;
                }
            }
        }
        (state, seen)
    }

    /// Takes an entry from the pool and makes it `f`'s live session with `fields` (seen,
    /// born, state, acl, dir) in a free way of `f`'s bucket. Returns the entry and its live
    /// control word; None if the bucket is full. The room under the limits is the caller's to have reserved.
    #[inline]
    fn insert(&self, f: &Flow, fields: [u32; 5]) -> Option<(usize, u64)> {
        self.insert_with(f, fields, None)
    }

    /// [`Sessions::insert_with`] for a new session: a full bucket makes room by evicting
    /// its oldest half-open TCP session, if any (counted).
    #[inline]
    fn claim(&self, f: &Flow, fields: [u32; 5], to: Option<&Flow>) -> Option<(usize, u64)> {
        self.insert_with(f, fields, to).or_else(|| {
            self.evict_in_bucket(f)
                .then(|| self.insert_with(f, fields, to))?
        })
    }

    /// [`Sessions::insert`], with the flow a NAT entry rewrites to (written before the
    /// entry goes live).
    #[inline]
    fn insert_with(&self, f: &Flow, fields: [u32; 5], to: Option<&Flow>) -> Option<(usize, u64)> {
        let h = f.hash();
        let b = (h & self.mask) as usize;
        let bucket = self.bucket(h);
        // A full bucket takes no entry from the pool.
        if bucket.ctl.iter().all(|c| state_of(c.load(Relaxed)) != FREE) {
            return None;
        }
        // The entry is this call's alone until a control word names it: written first,
        // then published by the exchange (Release) that readers' loads (Acquire) pair with.
        let slot = self.alloc()?;
        let e = &self.pool[slot];
        let s = &e.slot;
        for (k, v) in s.key.iter().zip(f.words()) {
            k.store(v, Relaxed);
        }
        let [seen, born, state, acl, dir] = fields;
        s.seen.store(seen, Relaxed);
        s.born.store(born, Relaxed);
        s.state.store(state, Relaxed);
        s.acl.store(acl, Relaxed);
        s.dir.store(dir, Relaxed);
        if let Some(to) = to {
            for (k, v) in e.nat.to.iter().zip(to.words()) {
                k.store(v, Relaxed);
            }
            e.nat.partner.store(0, Relaxed);
        }
        let gen = e.nat.gen.load(Relaxed).wrapping_add(1);
        e.nat.gen.store(gen, Relaxed);
        for (way, c) in bucket.ctl.iter().enumerate() {
            let c0 = c.load(Relaxed);
            if state_of(c0) != FREE {
                continue;
            }
            e.nat.home.store((b * WAYS + way) as u32, Relaxed);
            let live = word(h, LIVE, gen, slot);
            if c.compare_exchange(c0, live, Release, Relaxed).is_ok() {
                return Some((slot, live));
            }
        }
        // Other workers took the free ways meanwhile.
        self.dealloc(slot);
        None
    }

    /// Evicts the oldest half-open TCP session of `f`'s bucket (counted); false if it has
    /// none.
    #[cold]
    fn evict_in_bucket(&self, f: &Flow) -> bool {
        let h = f.hash();
        let mut oldest: Option<(u32, usize, u64)> = None;
        for c in &self.bucket(h).ctl {
            let c0 = c.load(Acquire);
            let slot = index_of(c0);
            let s = self.slot_at(slot);
            let tcp = (s.key[4].load(Relaxed) >> 32) as u8 == TCP;
            let half_open = s.state.load(Relaxed) & (st::EST | st::RST | st::FWD_FIN) == 0;
            if state_of(c0) != LIVE || !tcp || !half_open {
                continue;
            }
            let seen = s.seen.load(Relaxed);
            if oldest.is_none_or(|(o, _, _)| seen < o) {
                oldest = Some((seen, slot, c0));
            }
        }
        match oldest {
            Some((_, slot, c0)) if self.free(slot, c0) => {
                self.evicted.fetch_add(1, Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Takes room for one session on `iface` under both limits, evicting a half-open
    /// session this worker created if needed; false if there is no room.
    fn reserve(&self, worker: usize, iface: usize) -> bool {
        for _ in 0..4 {
            let (limit, il) = (
                u64::from(self.limit.load(Relaxed)),
                self.iface_limit.load(Relaxed),
            );
            // At a limit (seen without writing: under a flood of new flows every one of them
            // is), the new session takes the place of the oldest half-open one: the global
            // count stays, and only an interface change moves the per-interface counts.
            let iface_full = iface != NAT_COUNT && self.per_iface[iface].load(Relaxed) >= il;
            if iface_full || self.count.load(Relaxed) >= limit {
                return match self.evict_half_open(worker, iface_full.then_some(iface)) {
                    Some(victim) => {
                        if victim != iface {
                            self.per_iface[victim].fetch_sub(1, Relaxed);
                            self.per_iface[iface].fetch_add(1, Relaxed);
                        }
                        true
                    }
                    None => false,
                };
            }
            let n = self.count.fetch_add(1, Relaxed);
            let ni = self.per_iface[iface].fetch_add(1, Relaxed);
            if n < limit && (ni < il || iface == NAT_COUNT) {
                return true;
            }
            // Another worker took the last place meanwhile: give it back, look again.
            self.release(iface);
        }
        false
    }

    fn release(&self, iface: usize) {
        self.count.fetch_sub(1, Relaxed);
        self.per_iface[iface].fetch_sub(1, Relaxed);
    }

    fn remember_half_open(&self, worker: usize, slot: usize) {
        let Some(q) = self.half_open.get(worker) else {
            return;
        };
        let (head, tail) = (q.head.load(Relaxed), q.tail.load(Relaxed));
        if tail.wrapping_sub(head) as usize == HALF_OPEN_RING {
            q.head.store(head.wrapping_add(1), Relaxed);
        }
        let i = tail as usize % HALF_OPEN_RING;
        q.ring[i].store(self.link(slot), Relaxed);
        q.tail.store(tail.wrapping_add(1), Relaxed);
    }

    /// Evicts the oldest session still half-open among those worker `worker` created (on
    /// `iface` only, if given), leaving the counts to the caller (a new session takes its
    /// place): the interface it was on, None if it found none.
    fn evict_half_open(&self, worker: usize, iface: Option<usize>) -> Option<usize> {
        let q = self.half_open.get(worker)?;
        let mut head = q.head.load(Relaxed);
        let tail = q.tail.load(Relaxed);
        let mut evicted = None;
        while head != tail && evicted.is_none() {
            // The FIFO names the next victims in advance: ask for the lines of the one
            // EVICT_AHEAD places on (its slot, and its generation and home), so that they
            // have arrived when a later new flow evicts it.
            let ahead = head.wrapping_add(EVICT_AHEAD);
            if tail.wrapping_sub(ahead) as i32 > 0 {
                let a = q.ring[ahead as usize % HALF_OPEN_RING].load(Relaxed);
                let slot = (a >> 32) as usize;
                if let (Some(s), Some(n)) = (self.slot(slot), self.nat(slot)) {
                    prefetch(s as *const Slot);
                    prefetch(n as *const NatSlot);
                }
            }
            let e = q.ring[head as usize % HALF_OPEN_RING].load(Relaxed);
            head = head.wrapping_add(1);
            let slot = (e >> 32) as usize;
            let (Some(s), Some(c0)) = (self.slot(slot), self.linked(slot, e as u32)) else {
                continue;
            };
            let half_open = s.state.load(Relaxed) & (st::EST | st::RST | st::FWD_FIN) == 0;
            let on_iface =
                iface.is_none_or(|i| count_index((s.key[4].load(Relaxed) >> 48) as u16) == i);
            if !half_open {
                continue;
            }
            if !on_iface {
                // Another interface's: keep it for later (it stays oldest).
                continue;
            }
            evicted = self.unlink(slot, c0);
            if evicted.is_some() {
                self.evicted.fetch_add(1, Relaxed);
            }
        }
        q.head.store(head, Relaxed);
        evicted
    }

    /// Frees `slot` if its control word is still `c0`; true if this call freed it.
    fn free(&self, slot: usize, c0: u64) -> bool {
        match self.unlink(slot, c0) {
            Some(iface) => {
                self.release(iface);
                true
            }
            None => false,
        }
    }

    /// Frees `slot` if its control word is still `c0`, leaving the counts as they are (the
    /// caller hands its place on); the interface it was on, if it was freed.
    fn unlink(&self, slot: usize, c0: u64) -> Option<usize> {
        let c = self.ctl_at(slot);
        let iface = count_index((self.slot_at(slot).key[4].load(Relaxed) >> 48) as u16);
        let partner = if self.is_nat(slot) {
            self.partner(slot)
        } else {
            None
        };
        let freed = c.compare_exchange(c0, FREE, AcqRel, Relaxed).is_ok();
        if freed {
            self.dealloc(slot);
            // A NAT pair goes whole: the partner's place is given back here.
            if let Some((p, pc)) = partner {
                let pctl = self.ctl_at(p);
                if pctl.compare_exchange(pc, FREE, AcqRel, Relaxed).is_ok() {
                    self.dealloc(p);
                    self.release(NAT_COUNT);
                }
            }
        }
        freed.then_some(iface)
    }

    /// Removes the session in `found.slot` (a session a replaced ACL no longer permits).
    pub fn remove(&self, found: &Found) -> bool {
        let slot = found.slot as usize;
        let Some(c) = self.ctl(slot) else {
            return false;
        };
        let c0 = c.load(Acquire);
        state_of(c0) == LIVE && index_of(c0) == slot && self.free(slot, c0)
    }

    /// Re-keys the session in `found.slot` to ACL `acl` (a replacement that still permits it).
    pub fn adopt(&self, found: &Found, acl: u32) {
        if let Some(s) = self.slot(found.slot as usize) {
            s.acl.store(acl, Relaxed);
        }
    }

    fn timeout(&self, proto: u8, state: u32) -> u32 {
        let t = |i: usize| self.timeouts[i].load(Relaxed);
        match proto {
            TCP => {
                let closed = state & st::RST != 0
                    || state & (st::FWD_FIN | st::REV_FIN) == st::FWD_FIN | st::REV_FIN;
                if state & st::EST != 0 && !closed {
                    t(0)
                } else {
                    t(1)
                }
            }
            ICMP | ICMPV6 => t(3),
            _ => t(2),
        }
    }

    /// Removes every session idle longer than its timeout at second `now` (and sets the
    /// clock to `now`). Returns how many went.
    pub fn expire(&self, now: u32) -> usize {
        self.set_clock(now);
        self.sweep(
            |slot, w4| {
                let (state, seen) = self.pair_state(slot);
                let idle = now.saturating_sub(seen);
                idle > self.timeout((w4 >> 32) as u8, state)
            },
            true,
        )
    }

    /// Removes every session (of interface `iface` only, if given). Returns how many went.
    pub fn flush(&self, iface: Option<u16>) -> usize {
        self.sweep(|_, w4| iface.is_none_or(|i| (w4 >> 48) as u16 == i), false)
    }

    fn sweep(&self, mut gone: impl FnMut(usize, u64) -> bool, expiry: bool) -> usize {
        let mut n = 0;
        for c in self.buckets.iter().flat_map(|b| &b.ctl) {
            let c0 = c.load(Acquire);
            if state_of(c0) != LIVE {
                continue;
            }
            let slot = index_of(c0);
            if gone(slot, self.slot_at(slot).key[4].load(Relaxed)) && self.free(slot, c0) {
                n += 1;
            }
        }
        if expiry {
            self.expired.fetch_add(n as u64, Relaxed);
        }
        n
    }

    /// Every live session (at most `max`).
    pub fn list(&self, max: usize) -> Vec<SessionInfo> {
        self.live_entries()
            .filter(|(_, nat, _)| *nat != Some(DIR_NAT_REPLY))
            .take(max)
            .map(|(x, nat, slot)| SessionInfo {
                flow: x.flow,
                nat: nat.and_then(|_| self.nat_to(slot)),
                state: state_name(x.flow.proto, x.state),
                age: x.age,
                idle: x.idle,
                dir: x.dir,
            })
            .collect()
    }

    /// Every live session as saved across a restart (call it with the workers stopped
    /// for a consistent picture; a session changing meanwhile is read as it was or
    /// skipped).
    pub fn saved(&self) -> Vec<SavedSession> {
        self.live().collect()
    }

    /// The flow NAT entry `slot` rewrites to.
    fn nat_to(&self, slot: usize) -> Option<Flow> {
        let n = self.nat(slot)?;
        Some(Flow::from_words(&std::array::from_fn(|i| {
            n.to[i].load(Relaxed)
        })))
    }

    /// The live sessions but NAT entries (what is saved across a restart: a NAT session
    /// starts again with the flow's next packet).
    fn live(&self) -> impl Iterator<Item = SavedSession> + '_ {
        self.live_entries()
            .filter(|(_, nat, _)| nat.is_none())
            .map(|(x, _, _)| x)
    }

    /// The live entries, slot by slot, each read whole (a slot freed or claimed while it
    /// is read is skipped), with the NAT entry kind (None: an ACL's session) and the slot.
    /// A NAT entry has its pair's state and idle time.
    fn live_entries(&self) -> impl Iterator<Item = (SavedSession, Option<u32>, usize)> + '_ {
        let now = self.now.load(Relaxed);
        let ways = self.buckets.iter().flat_map(|b| &b.ctl);
        ways.filter_map(move |c| {
            let c0 = c.load(Acquire);
            if state_of(c0) != LIVE {
                return None;
            }
            let slot = index_of(c0);
            let s = self.slot_at(slot);
            let w: [u64; 5] = std::array::from_fn(|i| s.key[i].load(Relaxed));
            let (mut state, born, mut seen, dir) = (
                s.state.load(Relaxed),
                s.born.load(Relaxed),
                s.seen.load(Relaxed),
                s.dir.load(Relaxed),
            );
            if dir >= DIR_NAT_FWD {
                (state, seen) = self.pair_state(slot);
            }
            if c.load(Acquire) != c0 {
                return None;
            }
            let saved = SavedSession {
                flow: Flow::from_words(&w),
                dir: if dir == 0 { Dir::In } else { Dir::Out },
                state,
                age: now.saturating_sub(born),
                idle: now.saturating_sub(seen),
            };
            Some((saved, (dir >= DIR_NAT_FWD).then_some(dir), slot))
        })
    }

    /// Puts back a session saved before a restart (its flow's interface being this
    /// switch's index of the interface it was on), as created by ACL id 0: the packet path
    /// checks it against the ACL bound where it is on its next packet (no ACL has id 0),
    /// and keeps it only if that ACL permits its first packet. False when it is not put
    /// back: idle past its timeout, a limit reached (nothing is evicted for it), its bucket
    /// full, or the flow already has a session. Counted neither as created nor refused.
    pub fn restore(&self, saved: &SavedSession) -> bool {
        let f = &saved.flow;
        let state = saved.state & ((st::REPLIED << 1) - 1);
        if saved.idle > self.timeout(f.proto, state) || self.lookup(f).is_some() {
            return false;
        }
        let iface = count_index(f.iface);
        let n = self.count.fetch_add(1, Relaxed);
        let ni = self.per_iface[iface].fetch_add(1, Relaxed);
        if n >= u64::from(self.limit.load(Relaxed)) || ni >= self.iface_limit.load(Relaxed) {
            self.release(iface);
            return false;
        }
        let now = self.now.load(Relaxed);
        let seen = now.saturating_sub(saved.idle).max(1);
        let born = now.saturating_sub(saved.age.max(saved.idle)).max(1);
        let fields = [seen, born, state, 0, saved.dir as u32];
        if self.insert(f, fields).is_none() {
            self.release(iface);
            return false;
        }
        true
    }

    /// Live sessions by state name, every name of [`STATE_NAMES`] listed.
    pub fn count_states(&self) -> [(&'static str, u64); STATE_NAMES.len()] {
        let mut out = STATE_NAMES.map(|n| (n, 0u64));
        let entries = self.live_entries();
        for (x, _, _) in entries.filter(|(_, nat, _)| *nat != Some(DIR_NAT_REPLY)) {
            let name = state_name(x.flow.proto, x.state);
            if let Some(e) = out.iter_mut().find(|(n, _)| *n == name) {
                e.1 += 1;
            }
        }
        out
    }

    /// The table's counters.
    pub fn stats(&self) -> SessionStats {
        SessionStats {
            live: self.count.load(Relaxed),
            created: self.created.load(Relaxed),
            evicted: self.evicted.load(Relaxed),
            refused: self.refused.load(Relaxed),
            expired: self.expired.load(Relaxed),
        }
    }
}

/// The state of a session created by a packet of `proto` with TCP flags `flags`: a TCP
/// flow picked up mid-way (no SYN) is established at once.
#[inline(always)]
fn first_state(proto: u8, flags: u8) -> u32 {
    let state = bits(flags, false, 0);
    if proto == TCP && flags & tcp::SYN == 0 {
        state | st::EST
    } else {
        state
    }
}

/// The state bits a packet with TCP flags `flags` going one way (`reply`) adds to `old`.
#[inline(always)]
fn bits(flags: u8, reply: bool, old: u32) -> u32 {
    let mut b = if reply { st::REPLIED } else { 0 };
    if flags & tcp::SYN != 0 {
        b |= if reply { st::REV_SYN } else { st::FWD_SYN };
    }
    if flags & tcp::FIN != 0 {
        b |= if reply { st::REV_FIN } else { st::FWD_FIN };
    }
    if flags & tcp::RST != 0 {
        b |= st::RST;
    }
    let all = old | b;
    if all & (st::FWD_SYN | st::REV_SYN) == st::FWD_SYN | st::REV_SYN {
        b |= st::EST;
    }
    b
}

/// The name of a session's state, as `vsctl sessions` shows it.
fn state_name(proto: u8, s: u32) -> &'static str {
    if proto != TCP {
        return if s & st::REPLIED != 0 {
            "active"
        } else {
            "new"
        };
    }
    if s & st::RST != 0 {
        "reset"
    } else if s & (st::FWD_FIN | st::REV_FIN) == st::FWD_FIN | st::REV_FIN {
        "closed"
    } else if s & (st::FWD_FIN | st::REV_FIN) != 0 {
        "closing"
    } else if s & st::EST != 0 {
        "established"
    } else if s & st::REV_SYN != 0 {
        "syn-received"
    } else {
        "syn-sent"
    }
}

#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults and reads nothing into the program.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_words_tells_every_field_apart() {
        let f = Flow {
            iface: 3,
            family: Family::V6,
            proto: 17,
            src: 0x2001_0db8 << 96 | 5,
            dst: 0x2001_0db8 << 96 | 9,
            sport: 1000,
            dport: 53,
        };
        assert!(same_words(&f.words(), &f.words()));
        assert!(same_words(
            &Flow::from_words(&f.words()).words(),
            &f.words()
        ));
        let others = [
            Flow { iface: 4, ..f },
            Flow {
                family: Family::V4,
                ..f
            },
            Flow { proto: 6, ..f },
            Flow { sport: 1001, ..f },
            Flow { dport: 54, ..f },
            f.reversed(),
        ];
        // One bit of an address, in its low and in its high word.
        let flipped = [1u128, 1 << 70, 1 << 100].into_iter().flat_map(|bit| {
            [
                Flow {
                    src: f.src ^ bit,
                    ..f
                },
                Flow {
                    dst: f.dst ^ bit,
                    ..f
                },
            ]
        });
        for o in others.into_iter().chain(flipped) {
            assert!(!same_words(&o.words(), &f.words()), "{o:?}");
            assert_eq!(same_words(&o.words(), &f.words()), o == f);
        }
    }

    fn config(limit: u32) -> SessionConfig {
        SessionConfig {
            limit,
            iface_limit: limit,
            timeouts: Timeouts {
                tcp: 100,
                tcp_transitory: 10,
                udp: 20,
                icmp: 5,
            },
        }
    }

    fn flow(i: u32, proto: u8) -> Flow {
        Flow {
            iface: 3,
            family: Family::V4,
            proto,
            src: u128::from(0x0a00_0000 + i),
            dst: 0xc000_0201,
            sport: 1024 + (i % 50000) as u16,
            dport: 80,
        }
    }

    #[test]
    fn a_session_is_found_both_ways_and_only_on_its_interface() {
        let t = Sessions::new(1024, 1, config(100));
        let f = flow(1, 6);
        assert_eq!(t.lookup(&f), None);
        let c = t.create(0, &f, Dir::Out, 7, tcp::SYN).unwrap();
        let fwd = t.lookup(&f).unwrap();
        let rev = t.lookup(&f.reversed()).unwrap();
        assert_eq!(
            (fwd.slot, fwd.reply, fwd.acl, fwd.dir),
            (c.slot, false, 7, Dir::Out)
        );
        assert_eq!((rev.slot, rev.reply), (c.slot, true));
        assert_eq!(t.lookup(&Flow { iface: 4, ..f }), None);
        assert_eq!(t.lookup(&Flow { dport: 81, ..f }), None);
        let v6 = Flow {
            family: Family::V6,
            ..f
        };
        assert_eq!(t.lookup(&v6), None);
        assert_eq!(t.stats().live, 1);
    }

    #[test]
    fn tcp_state_decides_the_timeout() {
        let t = Sessions::new(1024, 1, config(100));
        t.set_clock(1000);
        let f = flow(1, 6);
        let s = t.create(0, &f, Dir::In, 1, tcp::SYN).unwrap();
        assert_eq!(t.list(10)[0].state, "syn-sent");
        // Half-open: transitory (10 s).
        assert_eq!(t.expire(1010), 0);
        let r = t.lookup(&f.reversed()).unwrap();
        t.touch(&r, tcp::SYN | tcp::ACK);
        assert_eq!(t.list(10)[0].state, "established");
        // Established: 100 s.
        assert_eq!(t.expire(1050), 0);
        t.touch(&s, tcp::ACK);
        assert_eq!(t.expire(1100), 0);
        // FIN both ways: closed, transitory again.
        t.set_clock(1100);
        t.touch(&s, tcp::FIN | tcp::ACK);
        t.touch(&r, tcp::FIN | tcp::ACK);
        assert_eq!(t.list(10)[0].state, "closed");
        assert_eq!(t.expire(1111), 1);
        assert_eq!(t.lookup(&f), None);
        assert_eq!(t.stats().live, 0);
        // UDP: 20 s idle; a packet restarts the count.
        let u = flow(2, 17);
        t.set_clock(2000);
        let us = t.create(0, &u, Dir::In, 1, 0).unwrap();
        t.set_clock(2015);
        t.touch(&us, 0);
        assert_eq!(t.expire(2030), 0);
        assert_eq!(t.expire(2036), 1);
    }

    #[test]
    fn creating_a_flow_with_a_session_finds_it() {
        let t = Sessions::new(1024, 1, config(100));
        let f = flow(1, 17);
        let first = t.create(0, &f, Dir::In, 1, 0).unwrap();
        for _ in 0..3 {
            assert_eq!(t.create(0, &f, Dir::In, 1, 0), Ok(first));
        }
        let back = t.create(0, &f.reversed(), Dir::In, 1, 0).unwrap();
        assert_eq!((back.slot, back.reply), (first.slot, true));
        let s = t.stats();
        assert_eq!((s.live, s.created), (1, 1));
        assert_eq!(t.list(10)[0].state, "active");
    }

    #[test]
    fn a_flow_picked_up_mid_way_is_established() {
        let t = Sessions::new(64, 1, config(10));
        t.create(0, &flow(1, 6), Dir::In, 1, tcp::ACK).unwrap();
        assert_eq!(t.list(10)[0].state, "established");
    }

    #[test]
    fn at_the_limit_the_oldest_half_open_session_goes_first() {
        let t = Sessions::new(4096, 1, config(10));
        // Two established sessions, then a flood of SYNs.
        for i in 0..2 {
            t.create(0, &flow(i, 6), Dir::In, 1, tcp::ACK).unwrap();
        }
        for i in 2..1000 {
            t.create(0, &flow(i, 6), Dir::In, 1, tcp::SYN).unwrap();
            assert!(t.stats().live <= 10);
        }
        let s = t.stats();
        assert_eq!((s.live, s.evicted), (10, 1000 - 10));
        // The established ones stayed, and so did the newest SYNs.
        assert!(t.lookup(&flow(0, 6)).is_some() && t.lookup(&flow(1, 6)).is_some());
        assert!(t.lookup(&flow(999, 6)).is_some() && t.lookup(&flow(2, 6)).is_none());
        // With nothing half-open left to evict, a new flow is refused.
        let t = Sessions::new(4096, 1, config(2));
        for i in 0..2 {
            t.create(0, &flow(i, 17), Dir::In, 1, 0).unwrap();
        }
        assert_eq!(
            t.create(0, &flow(5, 17), Dir::In, 1, 0),
            Err(Refused::Limit)
        );
        assert_eq!(t.stats().refused, 1);
    }

    #[test]
    fn the_interface_limit_holds_apart_from_the_global_one() {
        let mut c = config(100);
        c.iface_limit = 3;
        let t = Sessions::new(4096, 1, c);
        for i in 0..3 {
            t.create(0, &flow(i, 17), Dir::In, 1, 0).unwrap();
        }
        assert_eq!(
            t.create(0, &flow(9, 17), Dir::In, 1, 0),
            Err(Refused::Limit)
        );
        let other = Flow {
            iface: 4,
            ..flow(9, 17)
        };
        assert!(t.create(0, &other, Dir::In, 1, 0).is_ok());
        assert_eq!(t.flush(Some(3)), 3);
        assert_eq!(t.stats().live, 1);
        assert!(t.create(0, &flow(9, 17), Dir::In, 1, 0).is_ok());
    }

    #[test]
    fn a_full_bucket_makes_room_by_evicting_its_oldest_half_open_session() {
        let t = Sessions::new(WAYS, 1, config(100));
        t.set_clock(10);
        for i in 0..WAYS as u32 {
            t.set_clock(10 + i);
            t.create(0, &flow(i, 6), Dir::In, 1, tcp::SYN).unwrap();
        }
        // The oldest (flow 0) goes; the count stays at the bucket's size.
        assert!(t.create(0, &flow(99, 6), Dir::In, 1, tcp::SYN).is_ok());
        assert!(t.lookup(&flow(0, 6)).is_none() && t.lookup(&flow(99, 6)).is_some());
        let s = t.stats();
        assert_eq!((s.live, s.evicted, s.refused), (WAYS as u64, 1, 0));
    }

    #[test]
    fn a_full_bucket_refuses() {
        // One bucket: the ninth session has no slot.
        let t = Sessions::new(WAYS, 1, config(100));
        for i in 0..WAYS as u32 {
            t.create(0, &flow(i, 17), Dir::In, 1, 0).unwrap();
        }
        assert_eq!(
            t.create(0, &flow(99, 17), Dir::In, 1, 0),
            Err(Refused::Full)
        );
        assert_eq!(t.stats().live, WAYS as u64);
    }

    #[test]
    fn saved_sessions_come_back_with_acl_zero_and_their_times() {
        let a = Sessions::new(1024, 1, config(100));
        a.set_clock(1000);
        let tcp_flow = flow(1, 6);
        a.create(0, &tcp_flow, Dir::Out, 7, tcp::SYN).unwrap();
        let r = a.lookup(&tcp_flow.reversed()).unwrap();
        a.touch(&r, tcp::SYN | tcp::ACK);
        a.create(0, &flow(2, 17), Dir::In, 7, 0).unwrap();
        a.set_clock(1004);
        let saved = a.saved();
        assert_eq!(saved.len(), 2);
        assert!(saved.iter().all(|s| s.age == 4 && s.idle == 4));

        let b = Sessions::new(1024, 1, config(100));
        b.set_clock(5000);
        for s in &saved {
            assert!(b.restore(s));
        }
        // A flow with a session already is not restored twice.
        assert!(!b.restore(&saved[0]));
        let found = b.lookup(&tcp_flow).unwrap();
        assert_eq!((found.acl, found.dir, found.reply), (0, Dir::Out, false));
        let mut listed = b.list(10);
        listed.sort_by_key(|i| i.flow.proto);
        assert_eq!(listed[0].state, "established");
        assert_eq!((listed[0].age, listed[0].idle), (4, 4));
        assert_eq!(listed[1].state, "new");
        let s = b.stats();
        assert_eq!((s.live, s.created), (2, 0));
        let states = b.count_states();
        assert!(states.contains(&("established", 1)) && states.contains(&("new", 1)));
        assert_eq!(states.iter().map(|x| x.1).sum::<u64>(), 2);
        // Idle past its timeout (udp: 20 s here): not restored.
        let c = Sessions::new(1024, 1, config(100));
        c.set_clock(5000);
        let stale = SavedSession {
            idle: 21,
            ..saved.iter().find(|s| s.flow.proto == 17).copied().unwrap()
        };
        assert!(!c.restore(&stale));
        // At the limit: not restored, nothing evicted.
        let d = Sessions::new(1024, 1, config(1));
        d.set_clock(5000);
        assert!(d.restore(&saved[0]));
        assert!(!d.restore(&saved[1]));
        assert_eq!(d.stats().live, 1);
    }

    #[test]
    fn the_pool_hands_out_entries_densely_and_takes_every_one_back() {
        // 64 slots: eight times as many sessions come and go, by flush, expiry and
        // removal, as NAT pairs too; no entry is lost (each round fills the table as far
        // as its buckets let it), and the entries in use stay the first ones.
        let t = Sessions::new(64, 1, config(1000));
        assert_eq!(t.capacity(), 64);
        let mut now = 10;
        for round in 0..8u32 {
            let mut made = Vec::new();
            for i in 0..24 {
                let f = flow(round * 1000 + i, 17);
                if round % 2 == 0 {
                    if let Ok(found) = t.create(0, &f, Dir::In, 1, 0) {
                        made.push(found.slot);
                    }
                } else {
                    // NAT entries are keyed out of every interface's range.
                    let f = Flow {
                        iface: crate::nat::NAT_KEY,
                        ..f
                    };
                    let to = Flow {
                        dst: 0xc0a8_0001 + u128::from(i),
                        ..f
                    };
                    if let Ok(hit) = t.create_nat(0, &f, &to, 0) {
                        made.push(hit.slot);
                        assert!(t.lookup_nat(&to.reversed()).is_some());
                    }
                }
            }
            // Three buckets' worth at least: a random 24 of 8 buckets of 8 never fill one.
            assert!(made.len() >= 20, "round {round}: {}", made.len());
            assert!(made.iter().all(|&s| (s as usize) < t.fresh.load(Relaxed)));
            match round % 4 {
                0 | 1 => assert_eq!(t.flush(None), made.len()),
                2 => {
                    for s in &made {
                        let c = t.ctl(*s as usize).unwrap().load(Relaxed);
                        assert!(t.free(*s as usize, c));
                    }
                }
                _ => {
                    now += 1000;
                    assert_eq!(t.expire(now), made.len());
                }
            }
            assert_eq!(t.stats().live, 0);
            assert!(t.list(usize::MAX).is_empty());
        }
        // Fresh entries were taken only while the free list was empty: never past the
        // most in use at once (24 pairs), and one more taken by a pair refused half-way.
        assert!(
            t.fresh.load(Relaxed) <= 2 * 24 + 1,
            "{}",
            t.fresh.load(Relaxed)
        );
    }

    #[test]
    fn a_full_bucket_keeps_no_entry_and_a_freed_way_names_nothing() {
        let t = Sessions::new(WAYS, 1, config(100));
        for i in 0..WAYS as u32 {
            t.create(0, &flow(i, 17), Dir::In, 1, 0).unwrap();
        }
        for i in 0..100 {
            assert_eq!(
                t.create(0, &flow(100 + i, 17), Dir::In, 1, 0),
                Err(Refused::Full)
            );
        }
        assert_eq!(t.fresh.load(Relaxed), WAYS);
        let gone = t.lookup(&flow(3, 17)).unwrap();
        assert!(t.remove(&gone));
        // Removed twice: the way is free, and then another session's.
        assert!(!t.remove(&gone));
        let again = t.create(0, &flow(200, 17), Dir::In, 1, 0).unwrap();
        assert_eq!(again.slot, gone.slot, "the entry freed last is taken first");
        // A slot out of the pool's range names nothing.
        assert!(!t.remove(&Found {
            slot: gone.slot + 1000,
            ..gone
        }));
        assert!(t.lookup(&flow(3, 17)).is_none() && t.lookup(&flow(200, 17)).is_some());
        assert_eq!(t.stats().live, WAYS as u64);
    }

    /// Two workers create sessions while a third thread expires and re-creates them:
    /// a lookup never answers for another flow, and every session created and not
    /// expired is found.
    #[test]
    fn concurrent_workers_and_expiry() {
        use std::sync::Arc;
        let t = Arc::new(Sessions::new(1 << 14, 2, config(1 << 13)));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sweeper = {
            let (t, stop) = (t.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut now = 10;
                while !stop.load(Relaxed) {
                    now += 1;
                    t.expire(now);
                }
            })
        };
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let t = t.clone();
                std::thread::spawn(move || {
                    for round in 0..20u32 {
                        for i in 0..2000u32 {
                            let f = flow(w * 100_000 + i, 17);
                            if t.lookup(&f).is_none() {
                                let _ = t.create(w as usize, &f, Dir::In, round, 0);
                            }
                            if let Some(found) = t.lookup(&f.reversed()) {
                                assert!(found.reply);
                            }
                            // Another worker's flows are never this one's.
                            let other = flow((1 - w) * 100_000 + i, 17);
                            if let Some(found) = t.lookup(&other) {
                                assert!(!found.reply);
                            }
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, Relaxed);
        sweeper.join().unwrap();
        // What is left is consistent: every listed session is found, as itself.
        for s in t.list(usize::MAX) {
            let found = t.lookup(&s.flow).unwrap();
            assert!(!found.reply);
        }
        let live = t.list(usize::MAX).len() as u64;
        assert_eq!(t.stats().live, live);
    }
}
