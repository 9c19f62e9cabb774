//! fib-bench: how fast FIB structures take a route set and look up addresses in it, on one
//! core, side by side: DPDK's rte_lpm and rte_fib (IPv4), rte_lpm6 and rte_fib6 (IPv6), and
//! vswitch's own FIB (`dataplane/src/l3/fib.rs`), which the router uses.
//!
//! Per route-set size it generates a deterministic set shaped like a BGP table
//! (`perf::routes`) and destinations spread over it, then, one structure at a time: inserts
//! the whole set (routes/s), checks a sample of lookups against a plain reference longest
//! match (any difference is a hard error, so all structures give the same answers), and
//! times bulk lookups of `--burst` addresses over all destinations `--runs` times after one
//! untimed pass (TSC cycles and ns per lookup: the median, and the runs' range). Memory is
//! what the structure took from DPDK's heap plus what it reports of its own.
//!
//! Adding a structure: implement [`Fib`] for it (a few lines over its own API) and add one
//! `bench.run(...)` line to `v4` or `v6` below.
//!
//! Example: `fib-bench --v4 1000,1000000 --v6 10000` (as root; DPDK's EAL runs with no
//! hugepages unless `--huge`, `--mem` MB of memory, on `--cpu`). Run it on an otherwise idle
//! machine: the first line gives the load average at the start.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use dpdk::lpm::{FIB_MAX_NEXT_HOP, NO_ROUTE};
use dpdk::{Eal, Fib4, Fib6, FibConfig, Lpm4, Lpm6};
use perf::bench;
use perf::routes::{self, Addr, Reference, Route};

#[derive(Parser, Debug)]
#[command(about = "Insert and lookup speed of FIB structures (DPDK rte_lpm/rte_fib and others)")]
struct Args {
    /// IPv4 route-set sizes (comma-separated; 0 for none).
    #[arg(long, value_delimiter = ',', default_value = "1000,1000000")]
    v4: Vec<usize>,
    /// IPv6 route-set sizes (comma-separated; 0 for none).
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    v6: Vec<usize>,
    /// Destination addresses looked up per run (precomputed; enough not to sit in cache).
    #[arg(long, default_value_t = 4_000_000)]
    lookups: usize,
    /// Addresses per bulk lookup.
    #[arg(long, default_value_t = 32)]
    burst: usize,
    /// Timed runs per structure; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Destinations checked against the reference (plus a quarter as many random addresses,
    /// most without a route).
    #[arg(long, default_value_t = 100_000)]
    check: usize,
    /// PRNG seed for routes and destinations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// DPDK memory in MB (no hugepages). A 1M-route IPv4 structure takes ~100-250 MB; one
    /// structure exists at a time.
    #[arg(long, default_value_t = 1024)]
    mem: u32,
    /// CPU to run on (the EAL's main lcore and the measuring thread).
    #[arg(long, default_value_t = 1)]
    cpu: usize,
    /// Use hugepages (the machine must have them reserved and hugetlbfs mounted) instead of
    /// --no-huge's 4 KiB pages, whose TLB misses a random lookup in a 64 MiB table pays.
    #[arg(long)]
    huge: bool,
}

/// A longest-prefix-match structure under test.
trait Fib {
    type Addr: Addr;
    /// What the table shows in the Structure column.
    fn name(&self) -> String;
    /// Adds `prefix/len` (host bits clear) via `next_hop` (at most 2^20).
    fn insert(&mut self, prefix: Self::Addr, len: u8, next_hop: u32) -> anyhow::Result<()>;
    /// `next_hops[i]` = the next hop of `addrs[i]`, or [`NO_ROUTE`]; the slices are the same
    /// length.
    fn lookup_bulk(&self, addrs: &[Self::Addr], next_hops: &mut [u32]);
    /// Bytes the structure holds outside DPDK's heap, if it can tell.
    fn own_memory(&self) -> Option<u64> {
        None
    }
}

/// Route capacity for a set of `n` routes: the set and a little room.
fn capacity(n: usize) -> u32 {
    (n + 64).min(u32::MAX as usize) as u32
}

/// tbl8 groups to configure where `n` are needed: a quarter spare for a table that changes.
fn tbl8s(n: usize) -> u32 {
    (n + n / 4 + 64).min(u32::MAX as usize) as u32
}

struct BenchLpm4(Lpm4);

impl BenchLpm4 {
    fn new(eal: &Eal, routes: &[Route<u32>]) -> anyhow::Result<Self> {
        let tbl8s = tbl8s(routes::tbl8_groups(routes));
        Ok(BenchLpm4(Lpm4::new(
            eal,
            "bench_lpm4",
            capacity(routes.len()),
            tbl8s,
        )?))
    }
}

impl Fib for BenchLpm4 {
    type Addr = u32;
    fn name(&self) -> String {
        "rte_lpm".into()
    }
    fn insert(&mut self, prefix: u32, len: u8, next_hop: u32) -> anyhow::Result<()> {
        Ok(self.0.add(prefix, len, next_hop)?)
    }
    fn lookup_bulk(&self, addrs: &[u32], next_hops: &mut [u32]) {
        self.0.lookup_bulk(addrs, next_hops)
    }
}

/// rte_fib's default next hop, standing for "no route" (routes' next hops are far below).
const FIB_MISS: u64 = FIB_MAX_NEXT_HOP;

/// rte_fib / rte_fib6 results (u64) as the bench's (u32, [`NO_ROUTE`] for a miss).
fn fib_results(raw: &[u64], next_hops: &mut [u32]) {
    for (o, &v) in next_hops.iter_mut().zip(raw) {
        *o = if v == FIB_MISS { NO_ROUTE } else { v as u32 };
    }
}

/// Results converted per this many addresses (a stack buffer of u64s).
const FIB_CHUNK: usize = 64;

struct BenchFib4(Fib4);

impl BenchFib4 {
    fn new(eal: &Eal, routes: &[Route<u32>]) -> anyhow::Result<Self> {
        let config = FibConfig {
            max_routes: capacity(routes.len()),
            number_tbl8s: tbl8s(routes::tbl8_groups(routes)),
            default_next_hop: FIB_MISS,
        };
        Ok(BenchFib4(Fib4::new(eal, "bench_fib4", &config)?))
    }
}

impl Fib for BenchFib4 {
    type Addr = u32;
    fn name(&self) -> String {
        "rte_fib DIR24_8 (4 B)".into()
    }
    fn insert(&mut self, prefix: u32, len: u8, next_hop: u32) -> anyhow::Result<()> {
        Ok(self.0.add(prefix, len, next_hop.into())?)
    }
    fn lookup_bulk(&self, addrs: &[u32], next_hops: &mut [u32]) {
        let mut raw = [0u64; FIB_CHUNK];
        for (a, o) in addrs.chunks(FIB_CHUNK).zip(next_hops.chunks_mut(FIB_CHUNK)) {
            self.0.lookup_bulk(a, &mut raw[..a.len()]);
            fib_results(&raw[..a.len()], o);
        }
    }
}

struct BenchLpm6(Lpm6);

impl BenchLpm6 {
    fn new(eal: &Eal, routes: &[Route<[u8; 16]>]) -> anyhow::Result<Self> {
        let tbl8s = tbl8s(routes::tbl8_groups(routes));
        Ok(BenchLpm6(Lpm6::new(
            eal,
            "bench_lpm6",
            capacity(routes.len()),
            tbl8s,
        )?))
    }
}

impl Fib for BenchLpm6 {
    type Addr = [u8; 16];
    fn name(&self) -> String {
        "rte_lpm6".into()
    }
    fn insert(&mut self, prefix: [u8; 16], len: u8, next_hop: u32) -> anyhow::Result<()> {
        Ok(self.0.add(prefix, len, next_hop)?)
    }
    fn lookup_bulk(&self, addrs: &[[u8; 16]], next_hops: &mut [u32]) {
        self.0.lookup_bulk(addrs, next_hops)
    }
}

struct BenchFib6(Fib6);

impl BenchFib6 {
    fn new(eal: &Eal, routes: &[Route<[u8; 16]>]) -> anyhow::Result<Self> {
        let config = FibConfig {
            max_routes: capacity(routes.len()),
            // The trie reserves groups more coarsely than it uses them.
            number_tbl8s: tbl8s(routes::tbl8_reserve(routes)),
            default_next_hop: FIB_MISS,
        };
        Ok(BenchFib6(Fib6::new(eal, "bench_fib6", &config)?))
    }
}

impl Fib for BenchFib6 {
    type Addr = [u8; 16];
    fn name(&self) -> String {
        "rte_fib6 TRIE (4 B)".into()
    }
    fn insert(&mut self, prefix: [u8; 16], len: u8, next_hop: u32) -> anyhow::Result<()> {
        Ok(self.0.add(prefix, len, next_hop.into())?)
    }
    fn lookup_bulk(&self, addrs: &[[u8; 16]], next_hops: &mut [u32]) {
        let mut raw = [0u64; FIB_CHUNK];
        for (a, o) in addrs.chunks(FIB_CHUNK).zip(next_hops.chunks_mut(FIB_CHUNK)) {
            self.0.lookup_bulk(a, &mut raw[..a.len()]);
            fib_results(&raw[..a.len()], o);
        }
    }
}

/// One line of the results table.
struct Row {
    name: String,
    routes: usize,
    insert_per_s: f64,
    /// Median cycles per lookup, and the fastest and slowest run's.
    cycles: f64,
    cycles_range: (f64, f64),
    ns: f64,
    memory: Option<u64>,
}

/// One route set, its destinations and its check sample, run through each structure.
struct Bench<'a, A: Addr> {
    eal: &'a Eal,
    args: &'a Args,
    routes: Vec<Route<A>>,
    destinations: Vec<A>,
    sample: Vec<A>,
    expected: Vec<u32>,
    tsc_hz: u64,
}

impl<'a, A: Addr> Bench<'a, A> {
    fn new(eal: &'a Eal, args: &'a Args, routes: Vec<Route<A>>) -> Self {
        let destinations = routes::destinations(&routes, args.lookups, args.seed ^ 0xd057);
        let mut sample: Vec<A> = destinations[..args.check.min(destinations.len())].to_vec();
        sample.extend(routes::anywhere::<A>(args.check / 4, args.seed ^ 0xa11));
        let reference = Reference::new(&routes);
        let expected = sample
            .iter()
            .map(|&a| reference.lookup(a).unwrap_or(NO_ROUTE))
            .collect();
        Bench {
            eal,
            args,
            routes,
            destinations,
            sample,
            expected,
            tsc_hz: dpdk::tsc_hz(),
        }
    }

    /// Builds a structure with `make`, fills it, checks it and times its lookups; the
    /// structure is dropped (its memory freed) before the next one is built.
    fn run<F: Fib<Addr = A>>(
        &self,
        make: impl FnOnce(&Eal, &[Route<A>]) -> anyhow::Result<F>,
    ) -> anyhow::Result<Row> {
        let heap_before = dpdk::heap_allocated(self.eal);
        let mut fib = make(self.eal, &self.routes)?;
        let name = fib.name();
        let started = Instant::now();
        for r in &self.routes {
            fib.insert(r.prefix, r.len, r.next_hop)
                .with_context(|| format!("{name}: insert {}/{}", r.prefix.ip(), r.len))?;
        }
        let insert_s = started.elapsed().as_secs_f64();
        let heap = dpdk::heap_allocated(self.eal).saturating_sub(heap_before);
        let memory = match (heap, fib.own_memory()) {
            (0, None) => None,
            (heap, own) => Some(heap + own.unwrap_or(0)),
        };

        self.check(&fib)?;

        let burst = self.args.burst.max(1);
        let mut out = vec![0u32; burst];
        let mut pass = || {
            let start = dpdk::rdtsc();
            for chunk in self.destinations.chunks(burst) {
                let out = &mut out[..chunk.len()];
                fib.lookup_bulk(chunk, out);
                black_box(&out);
            }
            dpdk::rdtsc() - start
        };
        pass(); // warm-up: caches and TLBs as the timed runs find them
        let mut cycles: Vec<u64> = (0..self.args.runs.max(1)).map(|_| pass()).collect();
        cycles.sort_unstable();
        let lookups = self.destinations.len().max(1) as f64;
        let per_lookup = cycles[cycles.len() / 2] as f64 / lookups;
        let fastest = cycles[0] as f64 / lookups;
        let slowest = cycles[cycles.len() - 1] as f64 / lookups;
        Ok(Row {
            name,
            routes: self.routes.len(),
            insert_per_s: self.routes.len() as f64 / insert_s.max(1e-9),
            cycles: per_lookup,
            cycles_range: (fastest, slowest),
            ns: per_lookup * 1e9 / self.tsc_hz.max(1) as f64,
            memory,
        })
    }

    /// Looks the sample up in bursts and compares with the reference: a hard error, with the
    /// first differences, if any answer differs.
    fn check<F: Fib<Addr = A>>(&self, fib: &F) -> anyhow::Result<()> {
        let burst = self.args.burst.max(1);
        let mut got = vec![0u32; self.sample.len()];
        for (a, o) in self.sample.chunks(burst).zip(got.chunks_mut(burst)) {
            fib.lookup_bulk(a, o);
        }
        let wrong: Vec<String> = self
            .sample
            .iter()
            .zip(got.iter().zip(&self.expected))
            .filter(|(_, (g, e))| g != e)
            .map(|(a, (g, e))| format!("{}: got {}, want {}", a.ip(), show(*g), show(*e)))
            .collect();
        if !wrong.is_empty() {
            bail!(
                "{}: {} of {} sampled lookups differ from the reference longest match, e.g. {}",
                fib.name(),
                wrong.len(),
                self.sample.len(),
                wrong[..wrong.len().min(5)].join("; ")
            );
        }
        Ok(())
    }

    fn print(&self, family: &str, rows: &[Row]) {
        let shares: Vec<String> = routes::length_shares(&self.routes)
            .iter()
            .map(|(band, pct)| format!("{band} {pct:.1}%"))
            .collect();
        println!(
            "\n### {family}, {} routes ({}), {} tbl8 groups needed\n",
            self.routes.len(),
            shares.join(", "),
            routes::tbl8_groups(&self.routes)
        );
        println!(
            "{} lookups per run in bursts of {}, median of {} runs; {} sampled lookups agree \
             with the reference.\n",
            self.destinations.len(),
            self.args.burst,
            self.args.runs,
            self.sample.len()
        );
        println!(
            "| structure | routes | insert routes/s | cycles/lookup | runs' range | ns/lookup \
             | memory MiB |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for r in rows {
            let memory = r.memory.map_or("?".to_string(), |m| {
                format!("{:.1}", m as f64 / (1 << 20) as f64)
            });
            println!(
                "| {} | {} | {:.0} | {:.1} | {:.1}-{:.1} | {:.2} | {} |",
                r.name,
                r.routes,
                r.insert_per_s,
                r.cycles,
                r.cycles_range.0,
                r.cycles_range.1,
                r.ns,
                memory
            );
        }
    }
}

/// Resident memory of this process, in bytes (Linux /proc/self/statm).
fn resident() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// vswitch's own FIB (vswitch_dataplane::l3): memory is the resident growth since it was
/// made (its tables are committed as routes touch them).
struct VsFib4(vswitch_dataplane::l3::Fib4Writer, u64);

impl VsFib4 {
    fn new(_: &Eal, routes: &[Route<u32>]) -> anyhow::Result<Self> {
        let groups = tbl8s(routes::tbl8_groups(routes));
        let before = resident();
        Ok(VsFib4(
            vswitch_dataplane::l3::Fib4Writer::new(groups).map_err(anyhow::Error::msg)?,
            before,
        ))
    }
}

impl Fib for VsFib4 {
    type Addr = u32;
    fn name(&self) -> String {
        "vswitch Fib4 (24-8)".into()
    }
    fn insert(&mut self, prefix: u32, len: u8, next_hop: u32) -> anyhow::Result<()> {
        Ok(self.0.insert(prefix, len, next_hop)?)
    }
    fn lookup_bulk(&self, addrs: &[u32], next_hops: &mut [u32]) {
        self.0.fib().lookup_bulk(addrs, next_hops)
    }
    fn own_memory(&self) -> Option<u64> {
        Some(resident().saturating_sub(self.1))
    }
}

struct VsFib6(vswitch_dataplane::l3::Fib6Writer, u64);

impl VsFib6 {
    fn new(_: &Eal, _routes: &[Route<[u8; 16]>]) -> anyhow::Result<Self> {
        let before = resident();
        Ok(VsFib6(
            vswitch_dataplane::l3::Fib6Writer::new(1 << 20).map_err(anyhow::Error::msg)?,
            before,
        ))
    }
}

impl Fib for VsFib6 {
    type Addr = [u8; 16];
    fn name(&self) -> String {
        "vswitch Fib6 (24-8-8...)".into()
    }
    fn insert(&mut self, prefix: [u8; 16], len: u8, next_hop: u32) -> anyhow::Result<()> {
        Ok(self.0.insert(u128::from_be_bytes(prefix), len, next_hop)?)
    }
    fn lookup_bulk(&self, addrs: &[[u8; 16]], next_hops: &mut [u32]) {
        let mut a = [0u128; 64];
        for (c, o) in addrs.chunks(64).zip(next_hops.chunks_mut(64)) {
            for (x, y) in a.iter_mut().zip(c) {
                *x = u128::from_be_bytes(*y);
            }
            self.0.fib().lookup_bulk(&a[..c.len()], o);
        }
    }
    fn own_memory(&self) -> Option<u64> {
        Some(resident().saturating_sub(self.1))
    }
}

fn show(next_hop: u32) -> String {
    if next_hop == NO_ROUTE {
        "no route".to_string()
    } else {
        next_hop.to_string()
    }
}

fn v4(eal: &Eal, args: &Args, count: usize) -> anyhow::Result<()> {
    let routes = routes::v4_routes(count, args.seed).map_err(anyhow::Error::msg)?;
    let bench = Bench::new(eal, args, routes);
    let rows = vec![
        bench.run(BenchLpm4::new)?,
        bench.run(BenchFib4::new)?,
        bench.run(VsFib4::new)?,
    ];
    bench.print("IPv4", &rows);
    Ok(())
}

fn v6(eal: &Eal, args: &Args, count: usize) -> anyhow::Result<()> {
    let routes = routes::v6_routes(count, args.seed).map_err(anyhow::Error::msg)?;
    let bench = Bench::new(eal, args, routes);
    let rows = vec![
        bench.run(BenchLpm6::new)?,
        bench.run(BenchFib6::new)?,
        bench.run(VsFib6::new)?,
    ];
    bench.print("IPv6", &rows);
    Ok(())
}

fn run(args: &Args) -> anyhow::Result<()> {
    let eal_args = bench::eal_args("fibbench", args.mem, args.cpu, args.huge);
    let eal = Eal::init(&eal_args).context("EAL init (run as root)")?;
    bench::pin(args.cpu)?;
    println!(
        "# fib-bench: CPU {}, TSC {:.3} GHz, {}, seed {}, load average {}",
        args.cpu,
        dpdk::tsc_hz() as f64 / 1e9,
        if args.huge {
            "hugepages"
        } else {
            "4 KiB pages (--no-huge)"
        },
        args.seed,
        bench::load_average()
    );
    for &count in args.v4.iter().filter(|&&n| n > 0) {
        v4(&eal, args, count)?;
    }
    for &count in args.v6.iter().filter(|&&n| n > 0) {
        v6(&eal, args, count)?;
    }
    eal.cleanup();
    Ok(())
}

fn main() -> ExitCode {
    perf::bench::exit_code("fib-bench", run(&Args::parse()))
}
