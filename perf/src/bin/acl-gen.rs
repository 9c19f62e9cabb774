//! acl-gen: the ACL rule set of perf/run.sh's ipv4-acl-* profiles (`perf::aclemit::
//! permit_set`: ClassBench-like shapes, every rule permit, a catch-all permit last) in the
//! two forms the systems under test take:
//!
//! - `--vsctl-out FILE`: one rule per line in `vsctl acl add` syntax, in match order;
//! - `--openflow-out FILE`: the same rules as OpenFlow flows for `ovs-ofctl add-flows`, in
//!   table `--table` with descending priorities (the first rule highest), actions
//!   `--actions`; port ranges as value/mask pairs (one flow per pair, cross product of a
//!   rule's two ranges).
//!
//! It prints `acl-gen: N rules -> M OpenFlow flows` (and the set's shape) to stderr.
//!
//! Example: `acl-gen --rules 1000 --vsctl-out r.txt --openflow-out f.txt --actions 'resubmit(,1)'`

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use perf::{aclemit, aclrules};
use vswitch_dataplane::acl::rule::Family;

#[derive(Parser, Debug)]
#[command(about = "An all-permit ClassBench-like ACL as vsctl rules and OpenFlow flows")]
struct Args {
    /// Rules in the ACL, the catch-all included (1..=60000).
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// PRNG seed of the rule set.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the rules in `vsctl acl add` syntax, one per line.
    #[arg(long)]
    vsctl_out: Option<PathBuf>,
    /// Write the rules as OpenFlow flows, one per line.
    #[arg(long)]
    openflow_out: Option<PathBuf>,
    /// OpenFlow table of the flows.
    #[arg(long, default_value_t = 0)]
    table: u8,
    /// OpenFlow actions of a permit rule's flows.
    #[arg(long, default_value = "resubmit(,1)")]
    actions: String,
}

fn create(path: &PathBuf) -> anyhow::Result<BufWriter<File>> {
    Ok(BufWriter::new(
        File::create(path).with_context(|| format!("create {}", path.display()))?,
    ))
}

fn run(a: &Args) -> anyhow::Result<()> {
    if !(1..=60_000).contains(&a.rules) {
        anyhow::bail!("--rules must be 1..=60000, got {}", a.rules);
    }
    let rules = aclemit::permit_set(a.rules, a.seed);
    if let Some(p) = &a.vsctl_out {
        let mut f = create(p)?;
        for r in &rules {
            writeln!(f, "{}", aclemit::vsctl_text(r))?;
        }
        f.flush()?;
    }
    let mut flows = 0;
    let mut out = a.openflow_out.as_ref().map(create).transpose()?;
    for (i, r) in rules.iter().enumerate() {
        // The first rule highest; the catch-all at priority 1.
        let priority = rules.len() - i;
        for m in aclemit::openflow_matches(r) {
            flows += 1;
            if let Some(f) = out.as_mut() {
                writeln!(
                    f,
                    "table={},priority={priority},{m},actions={}",
                    a.table, a.actions
                )?;
            }
        }
    }
    if let Some(f) = out.as_mut() {
        f.flush()?;
    }
    eprintln!(
        "acl-gen: {} rules -> {flows} OpenFlow flows (seed {}; {})",
        rules.len(),
        a.seed,
        aclrules::shape(&rules, Family::V4)
    );
    Ok(())
}

fn main() -> ExitCode {
    perf::bench::exit_code("acl-gen", run(&Args::parse()))
}
