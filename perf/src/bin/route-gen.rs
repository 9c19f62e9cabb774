//! route-gen: writes a route set (`perf::routes`, shaped like a BGP table: mixed lengths, no
//! prefix twice) as command files for `perf/route-load.sh`. The lines are the same for
//! `vsctl transaction FILE` and for `ip -batch FILE`:
//!
//! - `add.txt`: `route add PREFIX via GW`, one per route;
//! - `del.txt`: `route del PREFIX`, the same routes in another order;
//! - `probes.txt`: `ADDR PREFIX`, random addresses inside random routes with the longest
//!   prefix that holds each (the answer `vsctl route get ADDR` and `ip route get fibmatch
//!   ADDR` must give).
//!
//! Prefixes that overlap the gateway's connected subnet at its length or longer (IPv4
//! 10.255.0.0/24, IPv6 fd00:255::/64, where the gateway GW is .2 / ::2) are left out, so
//! that no route shadows the connected or local routes the gateway resolves through.
//!
//! Example: `route-gen --count 1000000 --out DIR` (add `--v6` for IPv6).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use perf::routes::{self, mask, Addr, Reference, Route};

#[derive(Parser, Debug)]
#[command(about = "Route-set command files for vsctl transaction and ip -batch")]
struct Args {
    /// Routes to write.
    #[arg(long, default_value_t = 1_000_000)]
    count: usize,
    /// IPv6 routes instead of IPv4.
    #[arg(long)]
    v6: bool,
    /// PRNG seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Probe addresses to write.
    #[arg(long, default_value_t = 200)]
    probes: usize,
    /// Directory for add.txt, del.txt and probes.txt (created if missing).
    #[arg(long)]
    out: PathBuf,
}

/// The gateway's connected subnet (left-aligned bits, length) and the gateway.
fn connected(v6: bool) -> (u128, u8, &'static str) {
    if v6 {
        (0xfd00_0255u128 << 96, 64, "fd00:255::2")
    } else {
        (0x0aff_0000u128 << 96, 24, "10.255.0.2")
    }
}

fn prefix_text<A: Addr>(r: &Route<A>) -> String {
    format!("{}/{}", r.prefix.ip(), r.len)
}

fn write<A: Addr>(
    all: Vec<Route<A>>,
    args: &Args,
    (subnet, sublen, gw): (u128, u8, &str),
) -> anyhow::Result<()> {
    // At the subnet's length or longer and inside it: left out.
    let mut kept: Vec<Route<A>> = all
        .into_iter()
        .filter(|r| !(r.len >= sublen && r.prefix.to_bits() & mask(sublen) == subnet))
        .take(args.count)
        .collect();
    anyhow::ensure!(
        kept.len() == args.count,
        "only {} routes outside the gateway's subnet",
        kept.len()
    );
    // Next hop = position + 1: the reference then names the route an address matches.
    for (i, r) in kept.iter_mut().enumerate() {
        r.next_hop = i as u32 + 1;
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("{}", args.out.display()))?;
    let file = |name: &str| -> anyhow::Result<BufWriter<File>> {
        let p: &Path = &args.out.join(name);
        Ok(BufWriter::new(
            File::create(p).with_context(|| format!("{}", p.display()))?,
        ))
    };
    let mut add = file("add.txt")?;
    for r in &kept {
        writeln!(add, "route add {} via {gw}", prefix_text(r))?;
    }
    add.flush()?;
    // Deleted in another order than added: every 7th route first, and so on.
    let mut del = file("del.txt")?;
    for start in 0..7 {
        for r in kept.iter().skip(start).step_by(7) {
            writeln!(del, "route del {}", prefix_text(r))?;
        }
    }
    del.flush()?;
    let reference = Reference::new(&kept);
    let mut probes = file("probes.txt")?;
    for addr in routes::destinations(&kept, args.probes, args.seed ^ 0x5eed) {
        let hop = reference
            .lookup(addr)
            .context("a probe inside a route has no route")?;
        let r = &kept[hop as usize - 1];
        let ip: IpAddr = addr.ip();
        writeln!(probes, "{ip} {}", prefix_text(r))?;
    }
    probes.flush()?;
    Ok(())
}

fn run(args: &Args) -> anyhow::Result<()> {
    // A few more than asked for, to make up for those left out.
    let extra = args.count / 50 + 100;
    if args.v6 {
        let all = routes::v6_routes(args.count + extra, args.seed).map_err(anyhow::Error::msg)?;
        write(all, args, connected(true))
    } else {
        let all = routes::v4_routes(args.count + extra, args.seed).map_err(anyhow::Error::msg)?;
        write(all, args, connected(false))
    }
}

fn main() -> ExitCode {
    perf::bench::exit_code("route-gen", run(&Args::parse()))
}
