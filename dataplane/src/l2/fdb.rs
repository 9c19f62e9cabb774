//! The MAC table (FDB): (bridge, VLAN, MAC) -> output port, shared by every worker.
//!
//! Thread safety: one writer at a time (the control plane's learner, which holds the
//! [`FdbWriter`] behind a mutex), any number of lock-free readers (workers). Each slot is a
//! seqlock: the writer makes its sequence odd, writes key and value, makes it even again;
//! a reader retries while the sequence is odd or changed under it, so it never sees a torn
//! entry. Workers also refresh an entry's `seen` stamp (a relaxed store of the learner's
//! current second, at most once a second per entry), which needs no seqlock: a stale stamp
//! only delays aging.
//!
//! Workers never insert: a miss or a move becomes a learn request (see `learn`), applied by
//! the writer, which enforces each bridge's learn limit and never moves static entries.

use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering::*};

use crate::wire::ethernet::Mac;

/// Slots looked at, from a key's home slot on, before giving up.
const MAX_PROBE: usize = 32;
/// key_hi of a slot that was never used: ends a probe chain.
const EMPTY: u32 = 0;
/// key_hi of a deleted slot: probing goes on past it; inserts may reuse it.
const TOMBSTONE: u32 = 1;
/// Marks a live key_hi (so it can never equal EMPTY or TOMBSTONE).
const LIVE: u32 = 1 << 31;

/// What the table is indexed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FdbKey {
    pub bridge: u16,
    pub vlan: u16,
    pub mac: Mac,
}

impl FdbKey {
    #[inline(always)]
    fn words(&self) -> (u32, u64) {
        let m = &self.mac;
        let lo = u64::from_be_bytes([0, 0, m[0], m[1], m[2], m[3], m[4], m[5]]);
        (
            // Bridge ids and VLANs are below 4096: 12 bits each.
            LIVE | (u32::from(self.bridge & 0xfff) << 12) | u32::from(self.vlan & 0xfff),
            lo,
        )
    }

    fn from_words(hi: u32, lo: u64) -> FdbKey {
        let b = lo.to_be_bytes();
        FdbKey {
            bridge: ((hi >> 12) & 0xfff) as u16,
            vlan: (hi & 0xfff) as u16,
            mac: [b[2], b[3], b[4], b[5], b[6], b[7]],
        }
    }

    #[inline(always)]
    fn hash(&self) -> u64 {
        let (hi, lo) = self.words();
        // A multiply-xorshift mix (fast, and enough to spread MACs that differ in a byte).
        let mut h = (u64::from(hi) ^ lo.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 32;
        h.wrapping_mul(0xd6e8_feb8_6659_fd93) ^ (h >> 29)
    }
}

/// Where a MAC lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdbEntry {
    /// DPDK port id of the member interface.
    pub port: u16,
    /// Added by the operator: never aged, never moved by learning.
    pub is_static: bool,
}

impl FdbEntry {
    #[inline(always)]
    fn word(&self) -> u32 {
        u32::from(self.port) | (u32::from(self.is_static) << 16)
    }

    #[inline(always)]
    fn from_word(w: u32) -> FdbEntry {
        FdbEntry {
            port: w as u16,
            is_static: (w >> 16) & 1 == 1,
        }
    }
}

/// One entry: 24 bytes in a 32-byte slot, two to a cache line, so the table stays dense
/// (fewer cache and TLB misses per lookup).
#[derive(Debug)]
#[repr(C, align(32))]
struct Slot {
    key_lo: AtomicU64,
    seq: AtomicU32,
    key_hi: AtomicU32,
    value: AtomicU32,
    /// The learner's clock (seconds) when last seen; wraps after 136 years.
    seen: AtomicU32,
}

/// The shared table; readers use it through `&Fdb`.
#[derive(Debug)]
pub struct Fdb {
    slots: Slots,
    mask: usize,
}

/// The slot array, in memory the kernel is asked to back with transparent huge pages: the
/// table is megabytes and every lookup lands on a random line, so with 4 KiB pages nearly
/// every lookup also misses the TLB (perf annotate of l2-1k: the two slot loads were ~27% of
/// the worker's samples; huge pages took l2-1k from 10.82 to 11.47 Mpps). Aligned to 2 MiB so
/// whole huge pages fit.
struct Slots {
    ptr: std::ptr::NonNull<Slot>,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: Slots owns its allocation and hands out only shared references to `Slot`s, whose
// fields are atomics; sharing and sending it is as safe as for `Box<[Slot]>`.
unsafe impl Send for Slots {}
// SAFETY: as above.
unsafe impl Sync for Slots {}

const HUGE_PAGE: usize = 2 << 20;

impl Slots {
    fn new(n: usize) -> Slots {
        // n is a power of two of at most 2^24 (vswitchd checks --fdb-size): 512 MiB at most.
        let array = std::alloc::Layout::array::<Slot>(n).expect("MAC table size overflows");
        let size = array.size();
        let align = if size >= HUGE_PAGE {
            HUGE_PAGE
        } else {
            array.align()
        };
        let layout = array.align_to(align).expect("2 MiB is a valid alignment");
        // SAFETY: the layout has a non-zero size (n >= 64).
        let raw = unsafe { std::alloc::alloc(layout) }.cast::<Slot>();
        let Some(ptr) = std::ptr::NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        if align == HUGE_PAGE {
            // Advice only: before the first touch, so the pages are faulted in huge. A
            // kernel without THP (or with it off) ignores it and 4 KiB pages are used.
            // SAFETY: the range is our own fresh allocation.
            unsafe { libc::madvise(raw.cast(), size, libc::MADV_HUGEPAGE) };
        }
        // SAFETY: `raw` is valid for `n` slots; all-zero bytes are a valid (empty) Slot:
        // every field is an atomic integer.
        unsafe { std::ptr::write_bytes(raw, 0, n) };
        Slots {
            ptr,
            len: n,
            layout,
        }
    }
}

impl std::ops::Deref for Slots {
    type Target = [Slot];
    fn deref(&self) -> &[Slot] {
        // SAFETY: ptr/len describe our initialised allocation, alive as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Slots {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; Slot has no drop glue.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) };
    }
}

impl std::fmt::Debug for Slots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Slots({})", self.len)
    }
}

/// A key hashed and encoded for lookup.
#[derive(Debug, Clone, Copy, Default)]
struct Probe {
    hi: u32,
    lo: u64,
    home: usize,
}

impl Probe {
    #[inline(always)]
    fn new(key: &FdbKey) -> Probe {
        let (hi, lo) = key.words();
        Probe {
            hi,
            lo,
            home: key.hash() as usize,
        }
    }
}

/// A lookup hit: the entry and its slot (for refreshing `seen`).
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    pub entry: FdbEntry,
    slot: usize,
}

impl Fdb {
    /// A table of `capacity` slots (rounded up to a power of two, at least 64).
    pub fn new(capacity: usize) -> Fdb {
        let n = capacity.max(64).next_power_of_two();
        Fdb {
            slots: Slots::new(n),
            mask: n - 1,
        }
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Reads slot `i` consistently: (key_hi, key_lo, value).
    #[inline(always)]
    fn read(&self, i: usize) -> (u32, u64, u32) {
        let s = &self.slots[i & self.mask];
        loop {
            let v1 = s.seq.load(Acquire);
            if v1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let hi = s.key_hi.load(Relaxed);
            let lo = s.key_lo.load(Relaxed);
            let val = s.value.load(Relaxed);
            fence(Acquire);
            if s.seq.load(Relaxed) == v1 {
                return (hi, lo, val);
            }
        }
    }

    /// Looks a key up. Lock-free; safe from any thread.
    #[inline]
    pub fn lookup(&self, key: &FdbKey) -> Option<Hit> {
        self.lookup_probe(&Probe::new(key))
    }

    /// Probes from the key's home slot, up to MAX_PROBE slots, stopping at a never-used one.
    #[inline]
    fn lookup_probe(&self, probe: &Probe) -> Option<Hit> {
        for p in 0..MAX_PROBE {
            let i = (probe.home + p) & self.mask;
            let (hi, lo, val) = self.read(i);
            if hi == EMPTY {
                return None;
            }
            if hi == probe.hi && lo == probe.lo {
                return Some(Hit {
                    entry: FdbEntry::from_word(val),
                    slot: i,
                });
            }
        }
        None
    }

    /// Marks a hit entry as seen at `now` (the writer's clock). Stores only when the stamp
    /// changes, so an active entry costs one store a second.
    #[inline]
    pub fn touch(&self, hit: &Hit, now: u64) {
        let s = &self.slots[hit.slot & self.mask];
        let now = now as u32;
        if s.seen.load(Relaxed) != now {
            s.seen.store(now, Relaxed);
        }
    }
}

/// Why an insert did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertError {
    /// No free slot within the probe window of the key's home slot.
    Full,
}

/// The outcome of an insert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new entry.
    New,
    /// An existing entry now points elsewhere (a station move) or changed its static flag.
    Updated { old: FdbEntry },
    /// It was there already, unchanged.
    Same,
}

/// The single writer of an [`Fdb`]. Holding `&mut FdbWriter` is holding the write side.
#[derive(Debug)]
pub struct FdbWriter {
    fdb: std::sync::Arc<Fdb>,
    len: usize,
}

impl FdbWriter {
    /// The writer of `fdb`. Create exactly one per table.
    pub fn new(fdb: std::sync::Arc<Fdb>) -> FdbWriter {
        FdbWriter { fdb, len: 0 }
    }

    /// The table it writes.
    pub fn fdb(&self) -> &std::sync::Arc<Fdb> {
        &self.fdb
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn write(&mut self, i: usize, hi: u32, lo: u64, val: u32, seen: Option<u64>) {
        let s = &self.fdb.slots[i & self.fdb.mask];
        let v = s.seq.load(Relaxed);
        s.seq.store(v.wrapping_add(1), Relaxed);
        fence(Release);
        s.key_hi.store(hi, Relaxed);
        s.key_lo.store(lo, Relaxed);
        s.value.store(val, Relaxed);
        if let Some(t) = seen {
            s.seen.store(t as u32, Relaxed);
        }
        s.seq.store(v.wrapping_add(2), Release);
    }

    /// Inserts or updates `key` (seen at `now`).
    pub fn insert(
        &mut self,
        key: &FdbKey,
        entry: FdbEntry,
        now: u64,
    ) -> Result<Inserted, InsertError> {
        let (khi, klo) = key.words();
        let home = key.hash() as usize;
        let mut free = None;
        for p in 0..MAX_PROBE {
            let i = (home + p) & self.fdb.mask;
            let (hi, lo, val) = self.fdb.read(i);
            if hi == khi && lo == klo {
                let old = FdbEntry::from_word(val);
                if old == entry {
                    self.fdb.slots[i].seen.store(now as u32, Relaxed);
                    return Ok(Inserted::Same);
                }
                self.write(i, khi, klo, entry.word(), Some(now));
                return Ok(Inserted::Updated { old });
            }
            if hi == TOMBSTONE && free.is_none() {
                free = Some(i);
            }
            if hi == EMPTY {
                free.get_or_insert(i);
                break;
            }
        }
        let i = free.ok_or(InsertError::Full)?;
        self.write(i, khi, klo, entry.word(), Some(now));
        self.len += 1;
        Ok(Inserted::New)
    }

    /// `key`'s entry and when it was last seen (clock ticks).
    pub fn get(&self, key: &FdbKey) -> Option<(FdbEntry, u64)> {
        let hit = self.fdb.lookup(key)?;
        let seen = u64::from(self.fdb.slots[hit.slot & self.fdb.mask].seen.load(Relaxed));
        Some((hit.entry, seen))
    }

    /// Removes `key`; returns the entry it had.
    pub fn remove(&mut self, key: &FdbKey) -> Option<FdbEntry> {
        let hit = self.fdb.lookup(key)?;
        self.write(hit.slot, TOMBSTONE, 0, 0, None);
        self.len -= 1;
        Some(hit.entry)
    }

    /// Removes every entry `drop_it` says to; returns the removed ones.
    pub fn remove_where(
        &mut self,
        mut drop_it: impl FnMut(&FdbKey, &FdbEntry, u64) -> bool,
    ) -> Vec<(FdbKey, FdbEntry)> {
        let mut gone = Vec::new();
        for i in 0..self.fdb.slots.len() {
            let (hi, lo, val) = self.fdb.read(i);
            if hi & LIVE == 0 {
                continue;
            }
            let key = FdbKey::from_words(hi, lo);
            let entry = FdbEntry::from_word(val);
            let seen = u64::from(self.fdb.slots[i].seen.load(Relaxed));
            if drop_it(&key, &entry, seen) {
                self.write(i, TOMBSTONE, 0, 0, None);
                self.len -= 1;
                gone.push((key, entry));
            }
        }
        gone
    }

    /// Every live entry with its `seen` stamp.
    pub fn entries(&self) -> Vec<(FdbKey, FdbEntry, u64)> {
        (0..self.fdb.slots.len())
            .filter_map(|i| {
                let (hi, lo, val) = self.fdb.read(i);
                (hi & LIVE != 0).then(|| {
                    (
                        FdbKey::from_words(hi, lo),
                        FdbEntry::from_word(val),
                        u64::from(self.fdb.slots[i].seen.load(Relaxed)),
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Mutex};

    fn key(bridge: u16, vlan: u16, n: u32) -> FdbKey {
        let b = n.to_be_bytes();
        FdbKey {
            bridge,
            vlan,
            mac: [2, 0, b[0], b[1], b[2], b[3]],
        }
    }

    fn dynamic(port: u16) -> FdbEntry {
        FdbEntry {
            port,
            is_static: false,
        }
    }

    #[test]
    fn insert_lookup_update_remove() {
        let mut w = FdbWriter::new(Arc::new(Fdb::new(1024)));
        let k = key(1, 10, 7);
        assert!(w.fdb().lookup(&k).is_none());
        assert_eq!(w.insert(&k, dynamic(3), 5), Ok(Inserted::New));
        assert_eq!(w.fdb().lookup(&k).unwrap().entry, dynamic(3));
        // Same MAC on another VLAN or bridge is another entry.
        assert!(w.fdb().lookup(&key(1, 20, 7)).is_none());
        assert!(w.fdb().lookup(&key(2, 10, 7)).is_none());
        assert_eq!(w.insert(&k, dynamic(3), 6), Ok(Inserted::Same));
        assert_eq!(
            w.insert(&k, dynamic(4), 6),
            Ok(Inserted::Updated { old: dynamic(3) })
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w.entries(), vec![(k, dynamic(4), 6)]);
        assert_eq!(w.remove(&k), Some(dynamic(4)));
        assert!(w.fdb().lookup(&k).is_none());
        assert_eq!(w.remove(&k), None);
        assert!(w.is_empty());
    }

    #[test]
    fn keys_round_trip_through_words() {
        let k = FdbKey {
            bridge: 4095,
            vlan: 4094,
            mac: [0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54],
        };
        let (hi, lo) = k.words();
        assert_eq!(FdbKey::from_words(hi, lo), k);
    }

    #[test]
    fn tombstones_keep_chains_intact_and_are_reused() {
        let mut w = FdbWriter::new(Arc::new(Fdb::new(64)));
        for n in 0..40 {
            w.insert(&key(0, 0, n), dynamic(n as u16), 0).unwrap();
        }
        for n in (0..40).step_by(2) {
            assert!(w.remove(&key(0, 0, n)).is_some());
        }
        for n in (1..40).step_by(2) {
            assert_eq!(
                w.fdb().lookup(&key(0, 0, n)).unwrap().entry.port,
                n as u16,
                "{n}"
            );
        }
        for n in 100..120 {
            w.insert(&key(0, 0, n), dynamic(1), 0).unwrap();
        }
        assert_eq!(w.len(), 40);
        // The table is full now: a further insert fails rather than looping.
        let mut full = 0;
        for n in 200..300 {
            if w.insert(&key(0, 0, n), dynamic(1), 0) == Err(InsertError::Full) {
                full += 1;
            }
        }
        assert!(full > 0);
        assert!(w.len() <= 64);
    }

    #[test]
    fn aging_removes_by_predicate() {
        let mut w = FdbWriter::new(Arc::new(Fdb::new(256)));
        w.insert(&key(0, 0, 1), dynamic(1), 10).unwrap();
        w.insert(&key(0, 0, 2), dynamic(1), 20).unwrap();
        w.insert(
            &key(0, 0, 3),
            FdbEntry {
                port: 1,
                is_static: true,
            },
            0,
        )
        .unwrap();
        let hit = w.fdb().lookup(&key(0, 0, 1)).unwrap();
        w.fdb().touch(&hit, 25);
        let gone = w.remove_where(|_, e, seen| !e.is_static && seen + 5 < 26);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, key(0, 0, 2));
        assert_eq!(w.len(), 2);
    }

    /// Writers (one at a time, as the learner is) insert, move and remove entries whose
    /// value encodes their key, while readers look up continuously: a reader must never
    /// see a key with a value that was not written for it (a torn entry), and at the end
    /// every entry the writers kept is there with its last value (nothing lost).
    #[test]
    fn concurrent_writers_and_readers_see_no_torn_or_lost_entries() {
        const KEYS: u32 = 2000;
        let fdb = Arc::new(Fdb::new(8192));
        let writer = Arc::new(Mutex::new(FdbWriter::new(fdb.clone())));
        let stop = Arc::new(AtomicBool::new(false));
        // The port of key n is always n % 1000 + 1000 * generation, so its low part is
        // checkable whatever the generation.
        let readers: Vec<_> = (0..3)
            .map(|r| {
                let fdb = fdb.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut hits = 0u64;
                    let mut n = r;
                    while !stop.load(Relaxed) {
                        n = (n + 7) % KEYS;
                        if let Some(h) = fdb.lookup(&key(1, 5, n)) {
                            assert_eq!(
                                u32::from(h.entry.port) % 1000,
                                n % 1000,
                                "torn entry for key {n}"
                            );
                            hits += 1;
                        }
                    }
                    hits
                })
            })
            .collect();
        let writers: Vec<_> = (0..4u32)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    let mut last = HashMap::new();
                    for round in 0..20u32 {
                        for n in (t..KEYS).step_by(4) {
                            let generation = (round % 60) as u16;
                            let port = (n % 1000) as u16 + 1000 * (generation % 60);
                            let mut w = writer.lock().unwrap();
                            if round % 5 == 4 && n % 3 == 0 {
                                w.remove(&key(1, 5, n));
                                last.remove(&n);
                            } else {
                                w.insert(&key(1, 5, n), dynamic(port), u64::from(round))
                                    .unwrap();
                                last.insert(n, port);
                            }
                        }
                    }
                    last
                })
            })
            .collect();
        let mut expected = HashMap::new();
        for w in writers {
            expected.extend(w.join().unwrap());
        }
        stop.store(true, Relaxed);
        let hits: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(hits > 0);
        let w = writer.lock().unwrap();
        assert_eq!(w.len(), expected.len());
        for (n, port) in expected {
            assert_eq!(
                fdb.lookup(&key(1, 5, n)).map(|h| h.entry.port),
                Some(port),
                "key {n}"
            );
        }
    }

    #[test]
    fn big_tables_are_huge_page_aligned_and_start_empty() {
        let f = Fdb::new(1 << 17); // 4 MiB of slots
        assert_eq!(f.slots.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(f
            .slots
            .iter()
            .all(|s| s.seq.load(Relaxed) == 0 && s.key_hi.load(Relaxed) == EMPTY));
        let mut w = FdbWriter::new(std::sync::Arc::new(f));
        let k = key(1, 0, 7);
        w.insert(&k, dynamic(3), 0).unwrap();
        assert_eq!(w.fdb().lookup(&k).unwrap().entry.port, 3);
        let small = Fdb::new(64);
        assert_eq!(small.capacity(), 64);
        assert!(small.lookup(&k).is_none());
    }
}
