//! vswitch-aclbench: the ACL classifier chosen by measurement (issue 14): vswitch's own
//! `Classifier` (dataplane/src/acl/classify.rs, through its public `build` / `classify`
//! API, so whatever it becomes is what is measured) against DPDK's rte_acl (`dpdk::acl`),
//! on ClassBench-like rule sets (`perf::aclrules`) of several sizes, IPv4 and IPv6.
//!
//! Per (family, rule count): generate the rules and `--keys` keys (85% inside a rule), take
//! the plain first match of every key (`first_match`, the reference), then per classifier:
//! build (time; memory: rte_acl's growth of DPDK's heap, the Classifier's growth of this
//! process's heap, counted by the allocator below), one untimed pass over every key whose
//! answers must all equal the reference (any difference is a hard error and no figure is
//! printed), then `--runs` timed passes (TSC cycles per key: the median, and the range).
//! The Classifier classifies one key at a time, 32 keys per batch; rte_acl gets batches of
//! each `--batches` size, with each classify algorithm this CPU allows (`--algs`).
//!
//! Example: `vswitch-aclbench --rules 1,100,1000,10000 --keys 1000000 --family v4,v6`
//! (as root; `perf/aclbench.sh` runs it on the worker core).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Parser;
use dpdk::acl::{rule_index, AclInput, NO_MATCH};
use dpdk::{Acl, Acl4Input, Acl6Input, AclAlgorithm, AclPrefix, AclRule, Eal};
use perf::{aclrules, bench};
use vswitch_dataplane::acl::rule::{first_match, Family, Key, Net, Rule};
use vswitch_dataplane::acl::Classifier;

/// The system allocator, counting the bytes live on this process's heap (so the
/// Classifier's memory is what its build left allocated).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes to the system allocator with the caller's arguments; the counter
// is only arithmetic beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout contract is passed on unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from this allocator (System) with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as alloc.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: ptr came from this allocator with layout; new_size is the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Relaxed);
            LIVE.fetch_add(new_size, Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[derive(Parser, Debug)]
#[command(about = "vswitch's ACL Classifier against DPDK's rte_acl on ClassBench-like rule sets")]
struct Args {
    /// Rule-set sizes (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000,10000")]
    rules: Vec<usize>,
    /// Keys classified per pass (each checked against the linear first match).
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
    /// PRNG seed for rules and keys.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Families (comma-separated): v4, v6.
    #[arg(long, value_delimiter = ',', default_value = "v4,v6")]
    family: Vec<String>,
    /// Timed passes per classifier; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// rte_acl batch sizes (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "32,64")]
    batches: Vec<usize>,
    /// rte_acl classify algorithms (comma-separated: scalar, sse, avx2, avx512x16,
    /// avx512x32), or "all" for every one this CPU and EAL allow.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    algs: Vec<String>,
    /// The EAL's max SIMD width (--force-max-simd-bitwidth): 512 lets rte_acl use AVX-512
    /// (DPDK's default, 256, stops at AVX2).
    #[arg(long, default_value_t = 512)]
    simd_bitwidth: u32,
    /// DPDK memory in MB (no hugepages).
    #[arg(long, default_value_t = 2048)]
    mem: u32,
    /// CPU to run on (the EAL's main lcore and the measuring thread).
    #[arg(long, default_value_t = 1)]
    cpu: usize,
    /// rte_acl's max_size in MiB (0: none, DPDK's default of small tries; a limit starts
    /// from larger tries, fewer per packet, and splits them while over it).
    #[arg(long, default_value_t = 0)]
    max_size_mb: usize,
    /// Print DPDK's summary of each rte_acl context (rte_acl_dump: tries, rules).
    #[arg(long)]
    dump: bool,
}

/// Keys per batch for the Classifier (one `classify` per key).
const OUR_BATCH: usize = 32;

/// One classifier's figures on one rule set.
struct Row {
    name: String,
    batch: usize,
    build_ms: f64,
    memory: u64,
    /// Median cycles per key, and the fastest and slowest run's.
    cycles: f64,
    range: (f64, f64),
    ns: f64,
}

/// The median, fastest and slowest of `passes` (TSC cycles per pass) per key.
fn per_key(mut passes: Vec<u64>, keys: usize) -> (f64, (f64, f64)) {
    passes.sort_unstable();
    let k = keys.max(1) as f64;
    (
        passes[passes.len() / 2] as f64 / k,
        (passes[0] as f64 / k, passes[passes.len() - 1] as f64 / k),
    )
}

/// `rule` for rte_acl: an error for a rule of the other family (the generator makes none).
fn acl_rule(rule: &Rule, family: Family) -> anyhow::Result<AclRule> {
    if rule.family.is_some_and(|f| f != family) {
        bail!("a rule of the other family: {rule:?}");
    }
    let prefix = |n: &Net| AclPrefix {
        addr: n.addr,
        len: n.len,
    };
    Ok(AclRule {
        proto: rule.proto,
        src: prefix(&rule.src),
        dst: prefix(&rule.dst),
        sport: rule.sport,
        dport: rule.dport,
    })
}

/// A key as rte_acl's input of one family.
trait Input: AclInput {
    fn of(key: &Key) -> Self;
}

impl Input for Acl4Input {
    fn of(k: &Key) -> Self {
        Acl4Input::new(k.proto, k.src as u32, k.dst as u32, k.sport, k.dport)
    }
}

impl Input for Acl6Input {
    fn of(k: &Key) -> Self {
        Acl6Input::new(k.proto, k.src, k.dst, k.sport, k.dport)
    }
}

/// Explains the first few keys whose answer differs from the reference.
fn differences(
    name: &str,
    keys: &[Key],
    got: impl Iterator<Item = Option<u32>>,
    want: &[Option<u32>],
) -> anyhow::Result<()> {
    let wrong: Vec<String> = got
        .zip(want)
        .enumerate()
        .filter(|(_, (g, w))| g != *w)
        .map(|(i, (g, w))| format!("key {:?}: got {g:?}, want {w:?}", keys[i]))
        .collect();
    if !wrong.is_empty() {
        bail!(
            "{name}: {} of {} keys differ from the linear first match, e.g. {}",
            wrong.len(),
            keys.len(),
            wrong[..wrong.len().min(3)].join("; ")
        );
    }
    Ok(())
}

fn ours(args: &Args, rules: &[Rule], keys: &[Key], want: &[Option<u32>]) -> anyhow::Result<Row> {
    let live = LIVE.load(Relaxed);
    let started = Instant::now();
    let cls = Classifier::build(rules, None);
    let build_ms = started.elapsed().as_secs_f64() * 1e3;
    let memory = (LIVE.load(Relaxed).saturating_sub(live) + size_of::<Classifier>()) as u64;

    differences(
        "Classifier",
        keys,
        keys.iter().map(|k| cls.classify(k)),
        want,
    )?;
    let mut out = [None; OUR_BATCH];
    let mut pass = || {
        let start = dpdk::rdtsc();
        for batch in keys.chunks(OUR_BATCH) {
            for (o, k) in out.iter_mut().zip(batch) {
                *o = cls.classify(k);
            }
            black_box(&out);
        }
        dpdk::rdtsc() - start
    };
    let passes: Vec<u64> = (0..args.runs.max(1)).map(|_| pass()).collect();
    let (cycles, range) = per_key(passes, keys.len());
    Ok(Row {
        name: "vswitch Classifier".into(),
        batch: OUR_BATCH,
        build_ms,
        memory,
        cycles,
        range,
        ns: cycles * 1e9 / dpdk::tsc_hz().max(1) as f64,
    })
}

/// The algorithms `--algs` names that this context takes (the others are reported as
/// skipped on stderr).
fn algorithms<I: AclInput>(args: &Args, acl: &mut Acl<I>) -> anyhow::Result<Vec<AclAlgorithm>> {
    let wanted: Vec<AclAlgorithm> = if args.algs.iter().any(|a| a == "all") {
        AclAlgorithm::PREFERENCE.to_vec()
    } else {
        args.algs
            .iter()
            .map(|a| AclAlgorithm::from_name(a).with_context(|| format!("unknown algorithm {a}")))
            .collect::<anyhow::Result<_>>()?
    };
    let default = acl.algorithm();
    let mut usable = Vec::new();
    for alg in wanted {
        match acl.set_algorithm(alg) {
            Ok(()) => usable.push(alg),
            // "all" tries every algorithm DPDK knows; those of other CPUs are no news.
            Err(_) if args.algs.iter().any(|a| a == "all") => {}
            Err(e) => eprintln!("skipped rte_acl {}: {e}", alg.name()),
        }
    }
    acl.set_algorithm(default)?;
    Ok(usable)
}

fn rte_acl<I: Input>(
    eal: &Eal,
    args: &Args,
    family: Family,
    rules: &[Rule],
    keys: &[Key],
    want: &[Option<u32>],
) -> anyhow::Result<(Vec<Row>, AclAlgorithm)> {
    let acl_rules = rules
        .iter()
        .map(|r| acl_rule(r, family))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut acl = Acl::<I>::build_with_max_size(eal, &acl_rules, args.max_size_mb << 20)?;
    if args.dump {
        acl.dump();
    }
    let build_ms = acl.build_time().as_secs_f64() * 1e3;
    let default = acl.algorithm();
    let inputs: Vec<I> = keys.iter().map(I::of).collect();
    let mut results = vec![NO_MATCH; keys.len()];
    let mut rows = Vec::new();
    for alg in algorithms(args, &mut acl)? {
        acl.set_algorithm(alg)?;
        for &batch in &args.batches {
            let batch = batch.max(1);
            let name = format!("rte_acl {}", alg.name());
            results.fill(u32::MAX);
            for (i, o) in inputs.chunks(batch).zip(results.chunks_mut(batch)) {
                acl.classify(i, o);
            }
            differences(&name, keys, results.iter().map(|&r| rule_index(r)), want)?;
            let mut out = vec![0u32; batch];
            let mut pass = || {
                let start = dpdk::rdtsc();
                for i in inputs.chunks(batch) {
                    acl.classify(i, &mut out);
                    black_box(&out);
                }
                dpdk::rdtsc() - start
            };
            let passes: Vec<u64> = (0..args.runs.max(1)).map(|_| pass()).collect();
            let (cycles, range) = per_key(passes, keys.len());
            rows.push(Row {
                name,
                batch,
                build_ms,
                memory: acl.memory(),
                cycles,
                range,
                ns: cycles * 1e9 / dpdk::tsc_hz().max(1) as f64,
            });
        }
    }
    Ok((rows, default))
}

/// One line of the summary: the Classifier's and rte_acl's best figure on one rule set.
struct Summary {
    family: &'static str,
    rules: usize,
    ours: f64,
    ours_build_ms: f64,
    ours_memory: u64,
    best: (String, usize, f64),
    acl_build_ms: f64,
    acl_memory: u64,
}

fn kib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

fn one(eal: &Eal, args: &Args, family: Family, count: usize) -> anyhow::Result<Summary> {
    let name = match family {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    };
    let rules = aclrules::rules(count, family, args.seed);
    let keys = aclrules::keys(&rules, family, args.keys, args.seed);
    let started = Instant::now();
    let want: Vec<Option<u32>> = keys
        .iter()
        .map(|k| first_match(&rules, k).map(|i| i as u32))
        .collect();
    let reference_s = started.elapsed().as_secs_f64();
    let matched = want.iter().filter(|w| w.is_some()).count();
    let mut rows = vec![ours(args, &rules, &keys, &want)?];
    let (acl_rows, default) = match family {
        Family::V4 => rte_acl::<Acl4Input>(eal, args, family, &rules, &keys, &want)?,
        Family::V6 => rte_acl::<Acl6Input>(eal, args, family, &rules, &keys, &want)?,
    };
    rows.extend(acl_rows);

    println!("\n### {name}, {count} rules\n");
    println!("Rules: {}.\n", aclrules::shape(&rules, family));
    println!(
        "{} keys, {:.1}% match a rule; every classifier's answer equals the linear first match \
         on every key (reference pass {:.1} s). Median of {} timed passes; rte_acl's default \
         algorithm here: {}.\n",
        keys.len(),
        100.0 * matched as f64 / keys.len().max(1) as f64,
        reference_s,
        args.runs.max(1),
        default.name()
    );
    println!("| classifier | batch | build ms | memory KiB | cycles/key | runs' range | ns/key |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {} | {:.1} | {:.1}-{:.1} | {:.2} |",
            r.name,
            r.batch,
            r.build_ms,
            kib(r.memory),
            r.cycles,
            r.range.0,
            r.range.1,
            r.ns
        );
    }
    let best = rows[1..]
        .iter()
        .min_by(|a, b| a.cycles.total_cmp(&b.cycles))
        .context("no rte_acl algorithm ran")?;
    Ok(Summary {
        family: name,
        rules: count,
        ours: rows[0].cycles,
        ours_build_ms: rows[0].build_ms,
        ours_memory: rows[0].memory,
        best: (best.name.clone(), best.batch, best.cycles),
        acl_build_ms: best.build_ms,
        acl_memory: best.memory,
    })
}

fn run(args: &Args) -> anyhow::Result<()> {
    let families: Vec<Family> = args
        .family
        .iter()
        .map(|f| match f.as_str() {
            "v4" => Ok(Family::V4),
            "v6" => Ok(Family::V6),
            other => bail!("unknown family {other} (v4 or v6)"),
        })
        .collect::<anyhow::Result<_>>()?;
    let mut eal_args = bench::eal_args("aclbench", args.mem, args.cpu, false);
    eal_args.push(format!("--force-max-simd-bitwidth={}", args.simd_bitwidth));
    let eal = Eal::init(&eal_args).context("EAL init (run as root)")?;
    bench::pin(args.cpu)?;
    println!(
        "# vswitch-aclbench: CPU {}, TSC {:.3} GHz, seed {}, {} keys, max SIMD width {}, \
         load average {}",
        args.cpu,
        dpdk::tsc_hz() as f64 / 1e9,
        args.seed,
        args.keys,
        args.simd_bitwidth,
        bench::load_average()
    );
    let mut summary = Vec::new();
    for &family in &families {
        for &count in &args.rules {
            summary.push(one(&eal, args, family, count)?);
        }
    }
    println!("\n### Summary: cycles per key, the Classifier against rte_acl's best\n");
    println!(
        "| family | rules | Classifier cycles/key | rte_acl best cycles/key (algorithm, batch) | \
         Classifier / rte_acl | build ms (ours / rte_acl) | memory KiB (ours / rte_acl) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for s in &summary {
        println!(
            "| {} | {} | {:.1} | {:.1} ({}, {}) | {:.2} | {:.2} / {:.2} | {} / {} |",
            s.family,
            s.rules,
            s.ours,
            s.best.2,
            s.best.0.trim_start_matches("rte_acl "),
            s.best.1,
            s.ours / s.best.2.max(f64::MIN_POSITIVE),
            s.ours_build_ms,
            s.acl_build_ms,
            kib(s.ours_memory),
            kib(s.acl_memory)
        );
    }
    eal.cleanup();
    Ok(())
}

fn main() -> ExitCode {
    perf::bench::exit_code("vswitch-aclbench", run(&Args::parse()))
}
