//! Miss cost of the MAC table over a long churn (issue 10): the learner's worst case, a new
//! source MAC per frame aged after `--age` ticks, run on the [`Fdb`] directly for many
//! table-generations (one generation = as many keys learned and aged as the table has
//! slots). At intervals it prints what a lookup of an absent key costs (ns and TSC cycles,
//! measured) and how many slots such a lookup walks (computed, see below), next to the same
//! figures for a fresh table holding as many keys: both must stay flat.
//!
//! ```text
//! cargo run --release -p perf --example fdb_churn -- [--keys mix40|pktgen] [--slots N]
//!     [--rate R] [--age A] [--generations G] [--every E] [--lookups L]
//! ```
//!
//! Each tick inserts `--rate` new keys (seen = the tick) and then removes those unseen for
//! more than `--age` ticks, as `Learner::tick` does, so the table holds between `rate *
//! (age + 1)` and `rate * (age + 2)` keys; the defaults (262,144 slots, 27,000 a tick, age
//! 5) keep it between 62% and 72% full. Samples are taken at the top of the cycle (after a
//! tick's inserts, before its aging).
//!
//! Slots walked: the table does not expose its layout, so it is computed from the live
//! keys' home slots (`FdbKey::hash`, the table's own, in `home` below) as linear probing places
//! them: which slots are occupied depends only on the multiset of homes, not on the order of
//! inserts and removals. Each sample checks that this model is the table: `entries()` (in
//! slot order) must list the keys in Robin Hood order of their computed homes (a layout
//! other than this model breaks that order at once), no key may sit `MAX_PROBE` or more slots from
//! home, and every live key must be found by `lookup` (an EMPTY slot left on some key's path
//! would lose it). The measured ns / cycles are the table's own, whatever the model says.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use perf::profile::addr::MacPool;
use vswitch_dataplane::l2::fdb::{Fdb, FdbEntry, FdbKey, FdbWriter, Inserted};

/// The table's probe window (dataplane/src/l2/fdb.rs `MAX_PROBE`).
const MAX_PROBE: usize = 32;

/// A key's home slot (the table's own hash). Checked against the table at every sample
/// (module docs).
fn home(key: &FdbKey, mask: usize) -> usize {
    key.hash() as usize & mask
}

/// A bijection on 40-bit integers that scatters consecutive ones.
fn mix40(mut x: u64) -> u64 {
    const M: u64 = (1 << 40) - 1;
    x &= M;
    x = x.wrapping_mul(0x9e37_79b9_7f4b) & M; // odd: invertible mod 2^40
    x ^= x >> 19;
    x = x.wrapping_mul(0xc2b2_ae3d_27d5) & M;
    x ^= x >> 23;
    x
}

fn mac40(x: u64) -> [u8; 6] {
    let b = x.to_be_bytes();
    [0x02, b[3], b[4], b[5], b[6], b[7]]
}

/// Which MACs the churn learns.
#[derive(Clone, Copy)]
enum Keys {
    /// 40 scattered bits: 02:xx:xx:xx:xx:xx, all distinct.
    Mix40,
    /// The MACs of perf/fdb-churn.sh's pcap: vswitch-pktgen's source pool (seed 1, pool 0:
    /// 02:00 + a 32-bit affine scatter of the index), index = key number mod 1M (the pcap's
    /// MACs, looped).
    Pktgen(MacPool),
}

/// The `n`th MAC learned by the churn (all distinct for n < 2^40 with `Mix40`; for
/// `Pktgen`, MAC n is MAC n + 1M again, as in the looped pcap).
fn churn_key(keys: Keys, n: u64) -> FdbKey {
    let mac = match keys {
        Keys::Mix40 => mac40(mix40(n)),
        Keys::Pktgen(pool) => pool.mac(n % 1_000_000),
    };
    FdbKey {
        bridge: 1,
        vlan: 0,
        mac,
    }
}

/// The `n`th key looked up and never inserted (another bridge).
fn absent_key(n: u64) -> FdbKey {
    FdbKey {
        bridge: 2,
        vlan: 0,
        mac: mac40(mix40(n ^ 0x005a_5a5a_5a5a)),
    }
}

const PORT: FdbEntry = FdbEntry {
    port: 1,
    is_static: false,
};

struct Args {
    keys: Keys,
    slots: usize,
    rate: u64,
    age: u64,
    generations: u64,
    every: u64,
    lookups: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        keys: Keys::Mix40,
        slots: 262_144,
        rate: 27_000,
        age: 5,
        generations: 500,
        every: 25,
        lookups: 1 << 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        if flag == "--keys" {
            a.keys = match v.as_str() {
                "mix40" => Keys::Mix40,
                "pktgen" => Keys::Pktgen(MacPool::new(1, 0)),
                _ => return Err(format!("--keys: mix40 or pktgen, not {v}")),
            };
            continue;
        }
        let n: u64 = v
            .parse()
            .map_err(|_| format!("{flag}: not a number: {v}"))?;
        match flag.as_str() {
            "--slots" => a.slots = n as usize,
            "--rate" => a.rate = n,
            "--age" => a.age = n,
            "--generations" => a.generations = n,
            "--every" => a.every = n,
            "--lookups" => a.lookups = n as usize,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if !a.slots.is_power_of_two() || a.slots < 1024 {
        return Err("--slots must be a power of two >= 1024".into());
    }
    if a.rate * (a.age + 2) >= a.slots as u64 {
        return Err("--rate * (--age + 2) must be below --slots".into());
    }
    if a.rate == 0 || a.every == 0 || a.lookups == 0 {
        return Err("--rate, --every and --lookups must be > 0".into());
    }
    Ok(a)
}

/// The layout linear probing gives the live keys: per slot, whether it is occupied.
/// Also checks the table's own slot order against it and returns the Robin Hood
/// displacement figures (mean, max) of the live keys.
struct Layout {
    occupied: Vec<bool>,
    mean_disp: f64,
    max_disp: usize,
}

fn layout(w: &FdbWriter) -> Result<Layout, String> {
    let n = w.fdb().capacity();
    let mask = n - 1;
    let entries = w.entries();
    let homes: Vec<usize> = entries.iter().map(|(k, _, _)| home(k, mask)).collect();
    // The table's slot order must be its keys sorted by home (cyclically: entries that
    // wrapped past the table's end come first), i.e. at most one descent.
    let descents = homes.windows(2).filter(|p| p[1] < p[0]).count();
    if descents > 1 {
        return Err(format!(
            "entries() are not in Robin Hood order of the computed homes ({descents} \
             descents in {} entries): the table's layout is not the model's",
            homes.len()
        ));
    }
    let mut count = vec![0u32; n];
    for &h in &homes {
        count[h] += 1;
    }
    // Which slots are occupied: two passes round the table, the first placing keys from
    // their homes on, the second the ones that ran past the table's end.
    let mut occupied = vec![false; n];
    let mut carry = 0u32;
    for pass in 0..2 {
        for (i, slot) in occupied.iter_mut().enumerate() {
            if pass == 0 {
                carry += count[i];
            }
            if !*slot && carry > 0 {
                *slot = true;
                carry -= 1;
            }
        }
    }
    // Each key's distance from home, Robin Hood order (the earliest home first), in one
    // pass from just after an EMPTY slot, where no chain runs in: a FIFO of (home, keys).
    let start = occupied.iter().position(|o| !o).ok_or("no EMPTY slot")? + 1;
    let mut waiting: VecDeque<(usize, u32)> = VecDeque::new();
    let (mut total_disp, mut max_disp, mut placed) = (0u64, 0usize, 0usize);
    for i in start..start + n {
        if count[i % n] > 0 {
            waiting.push_back((i, count[i % n]));
        }
        if let Some(front) = waiting.front_mut() {
            if !occupied[i % n] {
                return Err(format!("slot {} EMPTY with keys waiting", i % n));
            }
            let d = i - front.0;
            total_disp += d as u64;
            max_disp = max_disp.max(d);
            placed += 1;
            front.1 -= 1;
            if front.1 == 0 {
                waiting.pop_front();
            }
        } else if occupied[i % n] {
            return Err(format!("slot {} occupied with no key waiting", i % n));
        }
    }
    if placed != entries.len() || placed != w.len() {
        return Err(format!(
            "placed {placed} keys, entries() has {}, len() {}",
            entries.len(),
            w.len()
        ));
    }
    if max_disp >= MAX_PROBE {
        return Err(format!("a key sits {max_disp} slots from home"));
    }
    Ok(Layout {
        occupied,
        mean_disp: total_disp as f64 / placed.max(1) as f64,
        max_disp,
    })
}

impl Layout {
    /// Slots a lookup of an absent key with home `h` walks: up to and including the first
    /// EMPTY slot, at most MAX_PROBE.
    fn miss_walk(&self, h: usize) -> usize {
        let n = self.occupied.len();
        (0..MAX_PROBE)
            .position(|p| !self.occupied[(h + p) % n])
            .map_or(MAX_PROBE, |p| p + 1)
    }

    /// Mean and longest walk of a miss, over every home slot (the exact expectation for a
    /// uniformly hashed absent key).
    fn miss_walks(&self) -> (f64, usize) {
        let n = self.occupied.len();
        let (mut sum, mut max) = (0usize, 0usize);
        for h in 0..n {
            let s = self.miss_walk(h);
            sum += s;
            max = max.max(s);
        }
        (sum as f64 / n as f64, max)
    }
}

/// Cost of one lookup of each key in `keys` (all absent): the median of three passes, in
/// ns and TSC cycles.
fn miss_cost(fdb: &Fdb, keys: &[FdbKey]) -> Result<(f64, f64), String> {
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let c = dpdk::rdtsc();
        let mut hits = 0usize;
        for k in keys {
            hits += usize::from(black_box(fdb.lookup(black_box(k))).is_some());
        }
        let cycles = dpdk::rdtsc() - c;
        let ns = t.elapsed().as_nanos();
        if hits != 0 {
            return Err(format!("{hits} absent keys were found"));
        }
        runs.push((
            ns as f64 / keys.len() as f64,
            cycles as f64 / keys.len() as f64,
        ));
    }
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(runs[1])
}

/// A fresh table of `slots` offered `live` new keys (numbered from `first`), and how many
/// of them it refused.
fn fresh(keys: Keys, slots: usize, live: u64, first: u64) -> (FdbWriter, u64) {
    let mut w = FdbWriter::new(Arc::new(Fdb::new(slots)));
    let mut refused = 0;
    for n in first..first + live {
        if w.insert(&churn_key(keys, n), PORT, 0).is_err() {
            refused += 1;
        }
    }
    (w, refused)
}

fn run(a: &Args) -> Result<(), String> {
    let slots = a.slots as u64;
    let ticks = a.generations * slots / a.rate;
    let absent: Vec<FdbKey> = (0..a.lookups as u64).map(absent_key).collect();
    println!(
        "fdb churn ({} keys): {} slots, {} new keys a tick, age {} ticks (live {} to {}, {:.1}% to \
         {:.1}%), {} ticks = {} generations, sample every {} generations at the top of the \
         cycle, {} absent-key lookups x3 per figure (median pass)",
        match a.keys {
            Keys::Mix40 => "mix40",
            Keys::Pktgen(_) => "pktgen",
        },
        a.slots,
        a.rate,
        a.age,
        a.rate * (a.age + 1),
        a.rate * (a.age + 2),
        100.0 * (a.rate * (a.age + 1)) as f64 / slots as f64,
        100.0 * (a.rate * (a.age + 2)) as f64 / slots as f64,
        ticks,
        a.generations,
        a.every,
        a.lookups
    );
    println!(
        "{:>6} {:>9} {:>7} {:>6} | {:>7} {:>7} {:>6} {:>3} {:>5} {:>3} | {:>7} {:>7} {:>6} {:>3} {:>5} | {:>5}",
        "gen",
        "learned",
        "live",
        "fill%",
        "miss_ns",
        "miss_cy",
        "walk",
        "max",
        "disp",
        "max",
        "frsh_ns",
        "frsh_cy",
        "walk",
        "max",
        "full",
        "full"
    );
    let mut w = FdbWriter::new(Arc::new(Fdb::new(a.slots)));
    // First key id learned at each tick still live.
    let mut tick_start: VecDeque<(u64, u64)> = VecDeque::new();
    let (mut next, mut full, mut next_sample) = (0u64, 0u64, 0u64);
    // Keys whose insert was refused (not in the table, not to be looked for or aged).
    let mut refused = std::collections::HashSet::new();
    let mut first_last: Vec<(f64, f64, f64)> = Vec::new();
    let started = Instant::now();
    for now in 0..=ticks {
        tick_start.push_back((now, next));
        for _ in 0..a.rate {
            match w.insert(&churn_key(a.keys, next), PORT, now) {
                Ok(Inserted::New) => {}
                Ok(other) => return Err(format!("key {next} was not new: {other:?}")),
                Err(_) => {
                    full += 1;
                    refused.insert(next);
                }
            }
            next += 1;
        }
        let generation = next / slots;
        // Sample once the table is in its steady cycle (past the first aging), then every
        // `every` generations, and at the end.
        if now > a.age + 1 && (generation >= next_sample || now == ticks) {
            next_sample = generation + a.every;
            let live_from = tick_start.front().map_or(0, |t| t.1);
            for n in live_from..next {
                if !refused.contains(&n) && w.fdb().lookup(&churn_key(a.keys, n)).is_none() {
                    return Err(format!("live key {n} not found at tick {now}"));
                }
            }
            let l = layout(&w)?;
            let walks = l.miss_walks();
            let cost = miss_cost(w.fdb(), &absent)?;
            let live = w.len() as u64;
            // The same number of keys in a fresh table (keys never used by the churn).
            let (f, f_refused) = fresh(a.keys, a.slots, live, 1 << 39);
            let fl = layout(&f)?;
            let fwalks = fl.miss_walks();
            let fcost = miss_cost(f.fdb(), &absent)?;
            drop(f);
            println!(
                "{:>6.1} {:>9} {:>7} {:>6.1} | {:>7.1} {:>7.1} {:>6.2} {:>3} {:>5.2} {:>3} | {:>7.1} {:>7.1} {:>6.2} {:>3} {:>5} | {:>5}",
                next as f64 / slots as f64,
                next,
                live,
                100.0 * live as f64 / slots as f64,
                cost.0,
                cost.1,
                walks.0,
                walks.1,
                l.mean_disp,
                l.max_disp,
                fcost.0,
                fcost.1,
                fwalks.0,
                fwalks.1,
                f_refused,
                full
            );
            first_last.push((cost.0, walks.0, fcost.0));
        }
        // Age: as Learner::tick, entries unseen for more than `age` ticks go.
        let gone = w.remove_where(|_, _, seen| now.saturating_sub(seen) > a.age);
        let mut expect = 0u64;
        while let Some(&(t, first)) = tick_start.front() {
            if now.saturating_sub(t) <= a.age {
                break;
            }
            tick_start.pop_front();
            let end = tick_start.front().map_or(next, |t| t.1);
            expect += end - first;
            expect -= refused.iter().filter(|&&n| n >= first && n < end).count() as u64;
            refused.retain(|&n| n >= end);
        }
        if gone.len() as u64 != expect {
            return Err(format!(
                "tick {now}: aging removed {}, expected {expect}",
                gone.len()
            ));
        }
    }
    let (Some(first), Some(last)) = (first_last.first(), first_last.last()) else {
        return Err("no samples: run more generations".into());
    };
    println!(
        "summary: {} keys learned and aged ({:.1} generations) in {:.1} s; inserts refused \
         (table full): {}; absent-key lookup {:.1} ns at the first sample, {:.1} ns at the \
         last ({:+.1}%), fresh table at the same fill {:.1} -> {:.1} ns; slots walked per \
         miss {:.2} -> {:.2}",
        next,
        next as f64 / slots as f64,
        started.elapsed().as_secs_f64(),
        full,
        first.0,
        last.0,
        100.0 * (last.0 / first.0 - 1.0),
        first.2,
        last.2,
        first.1,
        last.1
    );
    if full > 0 {
        return Err(format!("{full} inserts refused"));
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fdb_churn: {e}");
            }
            eprintln!(
                "usage: fdb_churn [--keys mix40|pktgen] [--slots N] [--rate R] [--age A] [--generations G] \
                 [--every E] [--lookups L]"
            );
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&args) {
        eprintln!("fdb_churn: FAILED: {e}");
        std::process::exit(1);
    }
}
