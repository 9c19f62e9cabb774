//! The FIB: longest-prefix match for IPv4 and IPv6, one table per VRF and family.
//!
//! Shape: a multibit trie with a 24-bit first stride and 8-bit strides below it (DIR-24-8
//! for IPv4; the same with up to 13 more levels for IPv6). The first level has an entry per
//! /24 (2^24 entries, 64 MiB of address space, committed only where routes are written);
//! a prefix longer than the level it ends in hangs a group of 256 entries under its entry.
//! An IPv4 lookup is one load, or two for a destination under a prefix longer than /24.
//!
//! ```text
//! entry (u32):  31 EXT | 30 VALID | 29..22 depth (prefix length) | 21..0 next hop / group
//! ```
//! `EXT` entries point to the group below; `VALID` entries hold the next hop of the
//! longest prefix covering them and that prefix's length, so that a lookup also tells
//! which prefix matched (`route get`); zero is "no route" and falls back to the default
//! route, kept apart so that a `/0` writes nothing. Next-hop ids are below 2^22.
//!
//! Updates are made in place by one writer ([`FibWriter`]) while workers look up
//! ([`Fib4::lookup`], [`Fib6::lookup`]) without any lock: every entry is an atomic, a new
//! group is filled before the entry above it is swung to it (release), and a group emptied
//! of longer prefixes is folded back into its parent entry and then only retired: it is
//! reused once the caller has seen every reader pass a quiescent point
//! ([`FibWriter::begin_grace`] / [`FibWriter::end_grace`]). A reader sees, per entry,
//! the route before a change or the one after it; destinations under other prefixes are not
//! touched at all. The writer keeps the routes per prefix length, to find the route a
//! deleted prefix uncovers (the longest shorter prefix covering it).
//!
//! Memory: per VRF and family 64 MiB of address space for the first level, committed in
//! 2 MiB huge pages (or 4 KiB ones) where routes are written, plus 1 KiB per group (a group
//! per /24, or deeper 8-bit span, that holds a longer prefix), from a pool of `max_groups`
//! reserved up front.

use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;

use super::table::{AtomicTable, MapFailed};

const EXT: u32 = 1 << 31;
const VALID: u32 = 1 << 30;
const DEPTH_SHIFT: u32 = 22;
const VALUE: u32 = (1 << DEPTH_SHIFT) - 1;
/// Largest next-hop id a route may carry.
pub const MAX_NEXT_HOP: u32 = VALUE;
/// Bits of the first level.
const TOP: u32 = 24;
const GROUP: usize = 256;

#[inline(always)]
const fn route_entry(len: u8, nh: u32) -> u32 {
    VALID | ((len as u32) << DEPTH_SHIFT) | nh
}

/// The prefix length an entry holds (0 for none; meaningless for EXT entries).
#[inline(always)]
const fn depth(e: u32) -> u32 {
    if e & VALID != 0 {
        (e >> DEPTH_SHIFT) & 0xff
    } else {
        0
    }
}

/// Last bit (exclusive) a level covers: 24, 32, 40, ...
#[inline(always)]
const fn level_end(level: u32) -> u32 {
    TOP + 8 * level
}

/// Why a route change was refused (nothing was changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FibError {
    /// Prefix length beyond the family's address length.
    BadLength(u8),
    /// Address bits set beyond the prefix length.
    HostBits,
    /// Next-hop id above [`MAX_NEXT_HOP`].
    BadNextHop(u32),
    /// No such route (delete).
    NotFound,
    /// The pool of groups for prefixes longer than /24 is used up.
    Full { max_groups: u32 },
}

impl std::fmt::Display for FibError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FibError::BadLength(l) => write!(f, "prefix length {l} is too long"),
            FibError::HostBits => write!(f, "address has bits set past the prefix length"),
            FibError::BadNextHop(n) => write!(f, "next-hop id {n} above {MAX_NEXT_HOP}"),
            FibError::NotFound => write!(f, "no such route"),
            FibError::Full { max_groups } => write!(
                f,
                "route table full: all {max_groups} groups for prefixes longer than /24 in use"
            ),
        }
    }
}

impl std::error::Error for FibError {}

/// The tables readers look up in, for addresses of `BITS` bits (32 or 128).
#[derive(Debug)]
pub struct Trie<const BITS: u32> {
    tbl24: AtomicTable,
    /// Groups of 256 entries, group g at `g * 256`.
    tbl8: AtomicTable,
    /// The default route's entry (0: none).
    default: AtomicU32,
}

/// An IPv4 FIB (DIR-24-8).
pub type Fib4 = Trie<32>;
/// An IPv6 FIB (24-bit first level, then 8-bit levels).
pub type Fib6 = Trie<128>;

impl<const BITS: u32> Trie<BITS> {
    /// Tables with room for `max_groups` groups (prefixes longer than the level above).
    fn new(max_groups: u32) -> Result<Trie<BITS>, MapFailed> {
        Ok(Trie {
            tbl24: AtomicTable::new(1 << TOP)?,
            tbl8: AtomicTable::new(max_groups.max(1) as usize * GROUP)?,
            default: AtomicU32::new(0),
        })
    }

    /// The entry of a miss at every level: the default route's.
    #[inline(always)]
    fn or_default(&self, e: u32) -> u32 {
        if e & VALID != 0 {
            e
        } else {
            self.default.load(Relaxed)
        }
    }
}

/// What a lookup found: the next hop and the length of the prefix that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub next_hop: u32,
    pub len: u8,
}

#[inline(always)]
fn to_match(e: u32) -> Option<Match> {
    (e & VALID != 0).then_some(Match {
        next_hop: e & VALUE,
        len: depth(e) as u8,
    })
}

/// An IPv6 lookup in progress, one level at a time: the entry reached and the shift of the
/// address bits that index the level below it. The forwarding loop walks a whole vector
/// level by level ([`Fib6::walk`], [`Fib6::step`], [`Fib6::walked`]), each packet from
/// where it stopped, so that the vector's misses at each level overlap and no level is
/// read twice (IPv4's one level below the first needs no walk: [`Fib4::prefetch_second`]).
/// A walk lives within one poll of a worker: a group it reached is not reused before the
/// worker's next quiescent point.
#[derive(Debug, Clone, Copy)]
pub struct Walk {
    e: u32,
    shift: u32,
}

/// A walk's `shift` once no level is left to step to.
const WALKED: u32 = u32::MAX;

impl Walk {
    /// Nothing to look up (a packet that is not routed).
    pub const NONE: Walk = Walk {
        e: 0,
        shift: WALKED,
    };

    /// Whether the walk has a level left to take by [`Fib6::step`].
    #[inline(always)]
    pub fn pending(&self) -> bool {
        self.e & EXT != 0 && self.shift != WALKED
    }
}

impl Trie<32> {
    /// The entry for `ip` (host order).
    #[inline(always)]
    fn entry(&self, ip: u32) -> u32 {
        let e = self.tbl24[(ip >> 8) as usize].load(Acquire);
        let e = if e & EXT != 0 {
            let i = ((e & VALUE) as usize) << 8 | (ip & 0xff) as usize;
            self.tbl8.get(i).map_or(0, |x| x.load(Relaxed))
        } else {
            e
        };
        self.or_default(e)
    }

    /// The next hop of the longest prefix covering `ip` (host order).
    #[inline(always)]
    pub fn lookup(&self, ip: u32) -> Option<u32> {
        let e = self.entry(ip);
        (e & VALID != 0).then_some(e & VALUE)
    }

    /// The next hop and matched prefix length for `ip`.
    pub fn lookup_match(&self, ip: u32) -> Option<Match> {
        to_match(self.entry(ip))
    }

    /// Prefetches the first-level entry of `ip` (before a [`Fib4::lookup`] of it).
    #[inline(always)]
    pub fn prefetch(&self, ip: u32) {
        prefetch(&self.tbl24[(ip >> 8) as usize]);
    }

    /// Prefetches the second-level entry of `ip` if its first-level one (prefetched a
    /// while before) says there is one, so that a vector's second-level misses overlap
    /// too.
    #[inline(always)]
    pub fn prefetch_second(&self, ip: u32) {
        let e = self.tbl24[(ip >> 8) as usize].load(Relaxed);
        if e & EXT != 0 {
            let i = ((e & VALUE) as usize) << 8 | (ip & 0xff) as usize;
            if let Some(x) = self.tbl8.get(i) {
                prefetch(x);
            }
        }
    }

    /// Looks up every address of `ips` into `out` (`NO_ROUTE` where none), prefetching the
    /// first-level entries of the whole batch before reading any.
    #[inline]
    pub fn lookup_bulk(&self, ips: &[u32], out: &mut [u32]) {
        for &ip in ips {
            prefetch(&self.tbl24[(ip >> 8) as usize]);
        }
        for (o, &ip) in out.iter_mut().zip(ips) {
            let e = self.entry(ip);
            *o = if e & VALID != 0 { e & VALUE } else { NO_ROUTE };
        }
    }
}

/// What [`Fib4::lookup_bulk`] writes for an address without a route.
pub const NO_ROUTE: u32 = u32::MAX;

impl Trie<128> {
    /// Starts a walk for `a` (its first-level entry prefetched a while before): reads that
    /// entry and prefetches the one below if there is one.
    #[inline(always)]
    pub fn walk(&self, a: u128) -> Walk {
        let w = Walk {
            e: self.tbl24[(a >> 104) as usize].load(Acquire),
            shift: 96,
        };
        self.prefetch_below(a, w);
        w
    }

    /// Takes walk `w` of `a` one level down if it points there (the entry prefetched by
    /// the call before) and prefetches the entry below that; whether a level is left below.
    /// As [`Fib6::lookup`] does, the last level (bits 7..0) ends the walk.
    #[inline(always)]
    pub fn step(&self, a: u128, w: &mut Walk) -> bool {
        if !w.pending() {
            return false;
        }
        let i = ((w.e & VALUE) as usize) << 8 | ((a >> w.shift) & 0xff) as usize;
        w.e = self.tbl8.get(i).map_or(0, |x| x.load(Acquire));
        if w.shift == 0 {
            w.shift = WALKED;
            return false;
        }
        w.shift -= 8;
        self.prefetch_below(a, *w)
    }

    /// Prefetches the entry below walk `w` of `a`, if it points to one; whether it does.
    #[inline(always)]
    fn prefetch_below(&self, a: u128, w: Walk) -> bool {
        if w.e & EXT == 0 {
            return false;
        }
        let i = ((w.e & VALUE) as usize) << 8 | ((a >> w.shift) & 0xff) as usize;
        if let Some(x) = self.tbl8.get(i) {
            prefetch(x);
        }
        true
    }

    /// The next hop a finished walk found: what [`Fib6::lookup`] gives.
    #[inline(always)]
    pub fn walked(&self, w: Walk) -> Option<u32> {
        let e = self.or_default(w.e & !EXT);
        (e & VALID != 0).then_some(e & VALUE)
    }

    #[inline(always)]
    fn entry(&self, a: u128) -> u32 {
        let mut e = self.tbl24[(a >> 104) as usize].load(Acquire);
        let mut shift = 96u32;
        while e & EXT != 0 {
            let i = ((e & VALUE) as usize) << 8 | ((a >> shift) & 0xff) as usize;
            e = self.tbl8.get(i).map_or(0, |x| x.load(Acquire));
            // Entries of the last level are never EXT; stop anyway rather than shift past.
            if shift == 0 {
                break;
            }
            shift -= 8;
        }
        self.or_default(e & !EXT)
    }

    /// The next hop of the longest prefix covering `a` (the address as a big-endian u128).
    #[inline(always)]
    pub fn lookup(&self, a: u128) -> Option<u32> {
        let e = self.entry(a);
        (e & VALID != 0).then_some(e & VALUE)
    }

    /// The next hop and matched prefix length for `a`.
    pub fn lookup_match(&self, a: u128) -> Option<Match> {
        to_match(self.entry(a))
    }

    /// Prefetches the first-level entry of `a` (before a [`Fib6::lookup`] of it).
    #[inline(always)]
    pub fn prefetch(&self, a: u128) {
        prefetch(&self.tbl24[(a >> 104) as usize]);
    }

    /// Looks up every address of `addrs` into `out` (`NO_ROUTE` where none).
    #[inline]
    pub fn lookup_bulk(&self, addrs: &[u128], out: &mut [u32]) {
        for &a in addrs {
            prefetch(&self.tbl24[(a >> 104) as usize]);
        }
        for (o, &a) in out.iter_mut().zip(addrs) {
            let e = self.entry(a);
            *o = if e & VALID != 0 { e & VALUE } else { NO_ROUTE };
        }
    }
}

#[inline(always)]
fn prefetch(x: &AtomicU32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults and reads nothing into the program.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
            (x as *const AtomicU32).cast::<i8>(),
        )
    }
}

/// Groups retired before a [`Grace`] began may be reused once it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Grace(u64);

/// The single writer of a FIB: route adds and deletes, group allocation and reclamation.
/// Not shared: the control thread owns it.
#[derive(Debug)]
pub struct FibWriter<const BITS: u32> {
    fib: Arc<Trie<BITS>>,
    /// The routes by prefix length: key (the prefix, left-aligned in a u128) -> next hop.
    routes: Vec<HashMap<u128, u32>>,
    max_groups: u32,
    /// Groups never used yet start here.
    fresh: u32,
    free: Vec<u32>,
    /// Groups folded back into their parent, with the generation they were retired in.
    retired: Vec<(u32, u64)>,
    generation: u64,
    in_use: u32,
}

/// The writer of an IPv4 FIB.
pub type Fib4Writer = FibWriter<32>;
/// The writer of an IPv6 FIB.
pub type Fib6Writer = FibWriter<128>;

/// Where an entry lives: the first level, or a group's slot.
#[derive(Debug, Clone, Copy)]
enum At {
    Top(usize),
    Group(u32, usize),
}

impl<const BITS: u32> FibWriter<BITS> {
    /// An empty FIB with room for `max_groups` groups, and its writer.
    pub fn new(max_groups: u32) -> Result<FibWriter<BITS>, MapFailed> {
        Ok(FibWriter {
            fib: Arc::new(Trie::new(max_groups)?),
            routes: (0..=BITS).map(|_| HashMap::new()).collect(),
            max_groups: max_groups.max(1),
            fresh: 0,
            free: Vec::new(),
            retired: Vec::new(),
            generation: 0,
            in_use: 0,
        })
    }

    /// The tables, for readers.
    pub fn fib(&self) -> &Arc<Trie<BITS>> {
        &self.fib
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.routes.iter().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Groups in use (each 1 KiB), and retired ones waiting for a grace period.
    pub fn groups(&self) -> (u32, usize) {
        (self.in_use, self.retired.len())
    }

    fn slot(&self, at: At) -> &AtomicU32 {
        match at {
            At::Top(i) => &self.fib.tbl24[i],
            At::Group(g, i) => &self.fib.tbl8[g as usize * GROUP + i],
        }
    }

    /// Index of `key`'s entry at `level`.
    fn index(key: u128, level: u32) -> usize {
        let end = level_end(level);
        let width = if level == 0 { TOP } else { 8 };
        ((key >> (128 - end)) & ((1u128 << width) - 1)) as usize
    }

    fn check(&self, key: u128, len: u8) -> Result<(), FibError> {
        if u32::from(len) > BITS {
            return Err(FibError::BadLength(len));
        }
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        };
        if key & !mask != 0 {
            return Err(FibError::HostBits);
        }
        Ok(())
    }

    fn alloc_group(&mut self) -> Result<u32, FibError> {
        let g = match self.free.pop() {
            Some(g) => g,
            None if self.fresh < self.max_groups => {
                self.fresh += 1;
                self.fresh - 1
            }
            None => {
                return Err(FibError::Full {
                    max_groups: self.max_groups,
                })
            }
        };
        self.in_use += 1;
        Ok(g)
    }

    /// The level `len` ends in, and the group holding `key`'s entries there (None at the
    /// first level), creating groups on the way when `create`.
    fn descend(
        &mut self,
        key: u128,
        len: u8,
        create: bool,
    ) -> Result<(u32, Option<u32>), FibError> {
        let mut level = 0;
        let mut group = None;
        while level_end(level) < u32::from(len) {
            let i = Self::index(key, level);
            let at = match group {
                None => At::Top(i),
                Some(g) => At::Group(g, i),
            };
            let e = self.slot(at).load(Relaxed);
            let child = if e & EXT != 0 {
                e & VALUE
            } else if create {
                let g = self.alloc_group()?;
                // The new group starts as the entry it replaces, then is published.
                for j in 0..GROUP {
                    self.slot(At::Group(g, j)).store(e, Relaxed);
                }
                self.slot(at).store(EXT | g, Release);
                g
            } else {
                return Err(FibError::NotFound);
            };
            group = Some(child);
            level += 1;
        }
        Ok((level, group))
    }

    /// Adds or replaces the route `prefix/len` (the prefix left-aligned in a u128).
    fn add(&mut self, key: u128, len: u8, nh: u32) -> Result<(), FibError> {
        self.check(key, len)?;
        if nh > MAX_NEXT_HOP {
            return Err(FibError::BadNextHop(nh));
        }
        if len == 0 {
            self.routes[0].insert(0, nh);
            self.fib.default.store(route_entry(0, nh), Release);
            return Ok(());
        }
        let (level, group) = match self.descend(key, len, true) {
            Ok(x) => x,
            Err(e) => {
                // Groups made on the way hold nothing new: fold them back.
                self.fold_path(key, len);
                return Err(e);
            }
        };
        self.routes[usize::from(len)].insert(key, nh);
        let v = route_entry(len, nh);
        let first = Self::index(key, level);
        let count = 1usize << (level_end(level) - u32::from(len));
        for i in first..first + count {
            let at = match group {
                None => At::Top(i),
                Some(g) => At::Group(g, i),
            };
            self.fill(at, u32::from(len), v);
        }
        Ok(())
    }

    /// Writes `v` (a route of length `len`) over every entry under `at` held by a shorter
    /// or equal prefix.
    fn fill(&self, at: At, len: u32, v: u32) {
        let e = self.slot(at).load(Relaxed);
        if e & EXT != 0 {
            let g = e & VALUE;
            for j in 0..GROUP {
                self.fill(At::Group(g, j), len, v);
            }
        } else if depth(e) <= len {
            self.slot(at).store(v, Release);
        }
    }

    /// The entry that the deletion of `key/len` uncovers: the longest shorter route covering
    /// it (0 where only the default or nothing does).
    fn covering(&self, key: u128, len: u8) -> u32 {
        for k in (1..len).rev() {
            let mask = u128::MAX << (128 - u32::from(k));
            if let Some(&nh) = self.routes[usize::from(k)].get(&(key & mask)) {
                return route_entry(k, nh);
            }
        }
        0
    }

    /// Deletes the route `prefix/len`.
    fn del(&mut self, key: u128, len: u8) -> Result<(), FibError> {
        self.check(key, len)?;
        if self.routes[usize::from(len)].remove(&key).is_none() {
            return Err(FibError::NotFound);
        }
        if len == 0 {
            self.fib.default.store(0, Release);
            return Ok(());
        }
        let r = self.covering(key, len);
        let (level, group) = self.descend(key, len, false)?;
        let first = Self::index(key, level);
        let count = 1usize << (level_end(level) - u32::from(len));
        for i in first..first + count {
            let at = match group {
                None => At::Top(i),
                Some(g) => At::Group(g, i),
            };
            self.replace(at, level, u32::from(len), r);
        }
        self.fold_path(key, len);
        Ok(())
    }

    /// Writes `r` over every entry under `at` (at `level`) held by the route of length
    /// `len` being deleted, folding groups that become uniform.
    fn replace(&mut self, at: At, level: u32, len: u32, r: u32) {
        let e = self.slot(at).load(Relaxed);
        if e & EXT != 0 {
            let g = e & VALUE;
            for j in 0..GROUP {
                self.replace(At::Group(g, j), level + 1, len, r);
            }
            self.try_fold(at, g, level + 1);
        } else if depth(e) == len {
            self.slot(at).store(r, Release);
        }
    }

    /// Folds group `g` (at `level`, under the entry `parent`) back into `parent` when all
    /// its entries are one route no longer than the level above (or none).
    fn try_fold(&mut self, parent: At, g: u32, level: u32) -> bool {
        let first = self.slot(At::Group(g, 0)).load(Relaxed);
        if first & EXT != 0 || depth(first) > level_end(level - 1) {
            return false;
        }
        if (1..GROUP).any(|j| self.slot(At::Group(g, j)).load(Relaxed) != first) {
            return false;
        }
        self.slot(parent).store(first, Release);
        self.in_use -= 1;
        self.retired.push((g, self.generation));
        true
    }

    /// Folds the groups on `key`'s path down to the level `len` ends in, deepest first, as
    /// long as they fold.
    fn fold_path(&mut self, key: u128, len: u8) {
        // The path: (entry pointing to the group, group, group's level).
        let mut path: Vec<(At, u32, u32)> = Vec::new();
        let mut level = 0;
        let mut group = None;
        while level_end(level) < u32::from(len) {
            let i = Self::index(key, level);
            let at = match group {
                None => At::Top(i),
                Some(g) => At::Group(g, i),
            };
            let e = self.slot(at).load(Relaxed);
            if e & EXT == 0 {
                break;
            }
            path.push((at, e & VALUE, level + 1));
            group = Some(e & VALUE);
            level += 1;
        }
        while let Some((at, g, lvl)) = path.pop() {
            if !self.try_fold(at, g, lvl) {
                break;
            }
        }
    }

    /// Starts a grace period: groups retired so far may be reused once every reader has
    /// passed a quiescent point after this call and [`FibWriter::end_grace`] is called.
    pub fn begin_grace(&mut self) -> Grace {
        self.generation += 1;
        Grace(self.generation - 1)
    }

    /// Ends a grace period: the groups retired before it began become free.
    pub fn end_grace(&mut self, g: Grace) {
        let free = &mut self.free;
        self.retired.retain(|&(group, gen)| {
            if gen <= g.0 {
                free.push(group);
                false
            } else {
                true
            }
        });
    }
}

impl FibWriter<32> {
    /// Adds or replaces the route `prefix/len` (host order) to next hop `nh`.
    pub fn insert(&mut self, prefix: u32, len: u8, nh: u32) -> Result<(), FibError> {
        self.add(u128::from(prefix) << 96, len, nh)
    }

    /// Deletes the route `prefix/len`.
    pub fn remove(&mut self, prefix: u32, len: u8) -> Result<(), FibError> {
        self.del(u128::from(prefix) << 96, len)
    }
}

impl FibWriter<128> {
    /// Adds or replaces the route `prefix/len` to next hop `nh`.
    pub fn insert(&mut self, prefix: u128, len: u8, nh: u32) -> Result<(), FibError> {
        self.add(prefix, len, nh)
    }

    /// Deletes the route `prefix/len`.
    pub fn remove(&mut self, prefix: u128, len: u8) -> Result<(), FibError> {
        self.del(prefix, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference: a linear scan for the longest match.
    fn naive(routes: &HashMap<(u128, u8), u32>, a: u128) -> Option<Match> {
        routes
            .iter()
            .filter(|(&(p, l), _)| l == 0 || (a ^ p) >> (128 - u32::from(l)) == 0)
            .max_by_key(|(&(_, l), _)| l)
            .map(|(&(_, l), &nh)| Match {
                next_hop: nh,
                len: l,
            })
    }

    fn v4(a: [u8; 4]) -> u32 {
        u32::from_be_bytes(a)
    }

    #[test]
    fn v4_longest_match_across_levels() {
        let mut w = Fib4Writer::new(64).unwrap();
        let f = w.fib().clone();
        assert_eq!(f.lookup(v4([10, 0, 0, 1])), None);
        w.insert(v4([10, 0, 0, 0]), 8, 1).unwrap();
        w.insert(v4([10, 1, 0, 0]), 16, 2).unwrap();
        w.insert(v4([10, 1, 2, 0]), 24, 3).unwrap();
        w.insert(v4([10, 1, 2, 128]), 25, 4).unwrap();
        w.insert(v4([10, 1, 2, 200]), 32, 5).unwrap();
        w.insert(0, 0, 9).unwrap();
        let m = |a| f.lookup_match(v4(a)).map(|m| (m.next_hop, m.len));
        assert_eq!(m([10, 9, 9, 9]), Some((1, 8)));
        assert_eq!(m([10, 1, 9, 9]), Some((2, 16)));
        assert_eq!(m([10, 1, 2, 1]), Some((3, 24)));
        assert_eq!(m([10, 1, 2, 129]), Some((4, 25)));
        assert_eq!(m([10, 1, 2, 200]), Some((5, 32)));
        assert_eq!(m([11, 0, 0, 0]), Some((9, 0)));
        assert_eq!(w.groups(), (1, 0));
        // Deleting the /24 under the /25 and /32 leaves the group, now with the /16 below.
        w.remove(v4([10, 1, 2, 0]), 24).unwrap();
        assert_eq!(m([10, 1, 2, 1]), Some((2, 16)));
        assert_eq!(m([10, 1, 2, 129]), Some((4, 25)));
        // Removing the longer ones folds the group back and retires it.
        w.remove(v4([10, 1, 2, 128]), 25).unwrap();
        w.remove(v4([10, 1, 2, 200]), 32).unwrap();
        assert_eq!(w.groups(), (0, 1));
        assert_eq!(m([10, 1, 2, 200]), Some((2, 16)));
        // The group is reused only after a grace period.
        let g = w.begin_grace();
        w.end_grace(g);
        assert_eq!(w.groups(), (0, 0));
        w.insert(v4([10, 1, 3, 7]), 32, 6).unwrap();
        assert_eq!(w.fresh, 1, "the retired group was reused");
        assert_eq!(m([10, 1, 3, 7]), Some((6, 32)));
        w.remove(0, 0).unwrap();
        assert_eq!(m([11, 0, 0, 0]), None);
    }

    #[test]
    fn bad_routes_are_refused_and_change_nothing() {
        let mut w = Fib4Writer::new(1).unwrap();
        assert_eq!(w.insert(v4([10, 0, 0, 1]), 24, 1), Err(FibError::HostBits));
        assert_eq!(w.insert(0, 33, 1), Err(FibError::BadLength(33)));
        assert_eq!(
            w.insert(0, 8, MAX_NEXT_HOP + 1),
            Err(FibError::BadNextHop(MAX_NEXT_HOP + 1))
        );
        assert_eq!(w.remove(v4([10, 0, 0, 0]), 8), Err(FibError::NotFound));
        w.insert(v4([10, 0, 0, 0]), 32, 1).unwrap();
        // One group only: a second /32 under another /24 does not fit.
        assert_eq!(
            w.insert(v4([11, 0, 0, 0]), 32, 2),
            Err(FibError::Full { max_groups: 1 })
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w.fib().lookup(v4([11, 0, 0, 0])), None);
        assert_eq!(w.fib().lookup(v4([10, 0, 0, 0])), Some(1));
        // A /128 hangs a group under each of its 13 levels below the first.
        let mut w6 = Fib6Writer::new(15).unwrap();
        assert_eq!(w6.insert(1, 128, 1).map(|_| w6.len()), Ok(1));
        assert_eq!(w6.groups(), (13, 0));
        // Another /128 parting from it below bit 64 needs 8 more groups: 2 are made, then
        // the pool is out; the 2 are folded back (and retired), the route is not added.
        assert_eq!(
            w6.insert(2 << 64, 128, 1),
            Err(FibError::Full { max_groups: 15 })
        );
        assert_eq!(w6.groups(), (13, 2));
        assert_eq!(w6.len(), 1);
        assert_eq!(w6.fib().lookup(2 << 64), None);
        assert_eq!(w6.fib().lookup(1), Some(1));
        assert_eq!(w6.insert(0, 129, 1), Err(FibError::BadLength(129)));
    }

    #[test]
    fn v6_deep_prefixes() {
        let mut w = Fib6Writer::new(64).unwrap();
        let f = w.fib().clone();
        let a: u128 = 0x2001_0db8_0000_0000_0000_0000_0000_0000;
        w.insert(a, 32, 1).unwrap();
        w.insert(a | 0x1_0000 << 64, 48, 2).unwrap();
        w.insert(a | 0x1_0000 << 64 | 5 << 64, 64, 3).unwrap();
        w.insert(a | 0x1_0000 << 64 | 5 << 64 | 1, 128, 4).unwrap();
        let m = |x: u128| f.lookup_match(x).map(|m| (m.next_hop, m.len));
        assert_eq!(m(a | 7), Some((1, 32)));
        assert_eq!(m(a | 0x1_0000 << 64 | 9 << 64), Some((2, 48)));
        assert_eq!(m(a | 0x1_0000 << 64 | 5 << 64 | 2), Some((3, 64)));
        assert_eq!(m(a | 0x1_0000 << 64 | 5 << 64 | 1), Some((4, 128)));
        assert_eq!(m(1), None);
        // A walk goes as deep as the lookup: a /128 takes the first level and 13 below it,
        // an address without a route only the first; it finds what the lookup finds.
        let host = a | 0x1_0000 << 64 | 5 << 64 | 1;
        let mut walk = f.walk(host);
        let mut levels = 0;
        while walk.pending() {
            levels += 1;
            f.step(host, &mut walk);
        }
        assert_eq!(levels, 13);
        assert_eq!(f.walked(walk), Some(4));
        assert!(!f.walk(1).pending());
        assert_eq!(f.walked(f.walk(1)), None);
        w.remove(a | 0x1_0000 << 64 | 5 << 64 | 1, 128).unwrap();
        w.remove(a | 0x1_0000 << 64 | 5 << 64, 64).unwrap();
        w.remove(a | 0x1_0000 << 64, 48).unwrap();
        assert_eq!(m(a | 0x1_0000 << 64 | 5 << 64 | 1), Some((1, 32)));
        w.remove(a, 32).unwrap();
        assert_eq!(w.groups().0, 0, "every group folded back");
        assert_eq!(m(a), None);
    }

    /// A random prefix of a length drawn from `lens`, within a few /8s so routes overlap.
    fn prefix(bits: u32) -> impl Strategy<Value = (u128, u8)> {
        (0u8..=bits as u8, any::<u128>(), 0u8..4).prop_map(move |(len, r, top)| {
            let a = (r & (u128::MAX >> 8)) | (u128::from(top) << 120);
            let key = if len == 0 {
                0
            } else {
                a & (u128::MAX << (128 - u32::from(len)))
            };
            let key = if bits == 32 {
                key & (u128::from(u32::MAX) << 96)
            } else {
                key
            };
            (key, len)
        })
    }

    /// Adds and deletes random overlapping routes; after every step each probe address
    /// (route prefixes, their neighbours and random addresses) matches the linear scan.
    fn check_against_naive<const BITS: u32>(
        ops: Vec<(bool, (u128, u8), u32)>,
        probes: Vec<u128>,
        lookup: impl Fn(&Trie<BITS>, u128) -> Option<Match>,
        mut add: impl FnMut(&mut FibWriter<BITS>, u128, u8, u32) -> Result<(), FibError>,
        mut del: impl FnMut(&mut FibWriter<BITS>, u128, u8) -> Result<(), FibError>,
    ) -> Result<(), TestCaseError> {
        let mut w = FibWriter::<BITS>::new(4096).unwrap();
        let mut reference: HashMap<(u128, u8), u32> = HashMap::new();
        let shift = 128 - BITS;
        for (is_add, (key, len), nh) in ops {
            if is_add {
                add(&mut w, key, len, nh).unwrap();
                reference.insert((key, len), nh);
            } else {
                let r = del(&mut w, key, len);
                prop_assert_eq!(r.is_ok(), reference.remove(&(key, len)).is_some());
            }
            let mut addrs: Vec<u128> = probes.clone();
            for &(p, l) in reference.keys() {
                addrs.push(p);
                if l > 0 {
                    addrs.push(p | u128::MAX.checked_shr(u32::from(l)).unwrap_or(0));
                    addrs.push(p.wrapping_sub(1 << shift));
                }
            }
            for a in addrs {
                let a = (a >> shift) << shift;
                prop_assert_eq!(
                    lookup(w.fib(), a >> shift),
                    naive(&reference, a),
                    "at {:x}",
                    a
                );
            }
        }
        prop_assert_eq!(w.len(), reference.len());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn v4_matches_a_linear_scan(
            ops in proptest::collection::vec((prop::bool::weighted(0.7), prefix(32), 0u32..1000), 1..40),
            probes in proptest::collection::vec(any::<u128>(), 8),
        ) {
            check_against_naive::<32>(
                ops,
                probes,
                |f, a| f.lookup_match(a as u32),
                |w, k, l, nh| w.insert((k >> 96) as u32, l, nh),
                |w, k, l| w.remove((k >> 96) as u32, l),
            )?;
        }

        #[test]
        fn v6_matches_a_linear_scan(
            ops in proptest::collection::vec((prop::bool::weighted(0.7), prefix(128), 0u32..1000), 1..40),
            probes in proptest::collection::vec(any::<u128>(), 8),
        ) {
            check_against_naive::<128>(
                ops,
                probes,
                |f, a| {
                    let mut w = f.walk(a);
                    while f.step(a, &mut w) {}
                    assert_eq!(f.walked(w), f.lookup(a), "walk of {a:x}");
                    f.lookup_match(a)
                },
                |w, k, l, nh| w.insert(k, l, nh),
                |w, k, l| w.remove(k, l),
            )?;
        }
    }

    #[test]
    fn readers_see_old_or_new_during_changes() {
        // A reader thread looks up an unaffected address while the writer adds and deletes
        // routes around it: it must always see its own route.
        let mut w = Fib4Writer::new(1 << 12).unwrap();
        w.insert(v4([192, 168, 1, 0]), 24, 7).unwrap();
        let f = w.fib().clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let looked = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let reader = {
            let (f, stop, looked) = (f.clone(), stop.clone(), looked.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    assert_eq!(f.lookup(v4([192, 168, 1, 77])), Some(7));
                    n += 1;
                    looked.store(n, Relaxed);
                }
                n
            })
        };
        // The changes start once the reader runs (on a loaded machine it may start late).
        while looked.load(Relaxed) == 0 {
            std::thread::yield_now();
        }
        for round in 0..20u32 {
            for i in 0..500u32 {
                let p = v4([10, (i >> 8) as u8, i as u8, 0]) | (round & 0x7f) << 1;
                w.insert(p & !1, 31, i).unwrap();
            }
            for i in 0..500u32 {
                let p = v4([10, (i >> 8) as u8, i as u8, 0]) | (round & 0x7f) << 1;
                w.remove(p & !1, 31).unwrap();
            }
            let g = w.begin_grace();
            w.end_grace(g);
        }
        stop.store(true, Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert_eq!(w.groups().0, 0);
    }
}
