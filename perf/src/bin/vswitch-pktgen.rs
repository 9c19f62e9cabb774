//! vswitch-pktgen: writes a deterministic traffic profile as a classic pcap file.
//!
//! Example: `vswitch-pktgen --profile xconnect --size 64 --flows 1024 --out x.pcap`

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use perf::generate::Spec;
use perf::profile::{Params, ProfileKind};
use perf::size::SizeMix;
use perf::wire::ethernet::Mac;

/// `aa:bb:cc:dd:ee:ff`.
fn parse_mac(s: &str) -> Result<Mac, String> {
    let bytes: Vec<u8> = s
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).map_err(|e| format!("{s}: {e}")))
        .collect::<Result<_, _>>()?;
    bytes
        .try_into()
        .map_err(|_| format!("{s}: a MAC is six bytes, aa:bb:cc:dd:ee:ff"))
}

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Write a deterministic traffic profile as a pcap file"
)]
struct Args {
    /// Traffic profile (address plan).
    #[arg(long, value_enum, default_value = "xconnect")]
    profile: ProfileKind,
    /// Frame size on the wire, FCS included (64..=1522), or `imix` (7:4:1 of 64/576/1500).
    #[arg(long, default_value = "64", value_parser = SizeMix::parse)]
    size: SizeMix,
    /// Distinct source and distinct destination MACs [default: 1 for xconnect, 1024 for l2].
    #[arg(long)]
    macs: Option<u64>,
    /// Distinct IPv4/UDP 5-tuples (routes, routes6: also distinct destinations, one per flow).
    #[arg(long, default_value_t = 1024)]
    flows: u64,
    /// Packets in the file (at least max(macs, flows)). net_pcap's infinite_rx holds the whole
    /// file in mbufs, so keep it well below the replaying process's mbuf pool.
    #[arg(long, default_value_t = 4096)]
    count: u64,
    /// PRNG seed: same seed and options, same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Prefixes in the route table (profiles routes, routes6; up to 2M).
    #[arg(long, default_value_t = 1024)]
    routes: u64,
    /// Rules in the ACL (profile acl).
    #[arg(long, default_value_t = 1000)]
    rules: u64,
    /// VXLAN network identifier (profile vxlan).
    #[arg(long, default_value_t = 100)]
    vni: u32,
    /// Services, virtual IPs the flows are spread over (profiles services, services-syn).
    #[arg(long, default_value_t = 10)]
    services: u64,
    /// Backends per service (profiles services, services-syn; up to 15).
    #[arg(long, default_value_t = 10)]
    backends: u64,
    /// The router's MAC, the frames' destination (routes, routes6; vxlan: the outer frames',
    /// the receiving VTEP's), e.g. the MAC of the switch port that replays the pcap
    /// [default: a seeded one; routes, routes6: as --dst-macs-out lists].
    #[arg(long, value_parser = parse_mac)]
    router_mac: Option<Mac>,
    /// Output pcap file.
    #[arg(long)]
    out: PathBuf,
    /// Also write the profile's table (routes, routes6: prefixes; acl: `vsctl acl add` rules;
    /// services, services-syn: `vsctl transaction` lines adding the services), one per line,
    /// to this file.
    #[arg(long)]
    table_out: Option<PathBuf>,
    /// Also write the profile's destination MACs, one per line, to this file.
    #[arg(long)]
    dst_macs_out: Option<PathBuf>,
}

fn run(args: &Args) -> anyhow::Result<()> {
    let spec = Spec {
        profile: args.profile,
        size: args.size,
        params: Params {
            macs: args.macs.unwrap_or(args.profile.default_macs()),
            flows: args.flows,
            seed: args.seed,
            routes: args.routes,
            rules: args.rules,
            vni: args.vni,
            services: args.services,
            backends: args.backends,
            router_mac: args.router_mac,
        },
        count: args.count,
    };
    spec.validate().map_err(anyhow::Error::msg)?;
    let file = File::create(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    let summary = spec
        .write_pcap(BufWriter::new(file))
        .with_context(|| format!("write {}", args.out.display()))?;
    if let Some(path) = &args.dst_macs_out {
        let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        spec.write_dst_macs(BufWriter::new(file))
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let Some(path) = &args.table_out {
        let file = File::create(path).with_context(|| format!("create {}", path.display()))?;
        if !spec
            .write_table(BufWriter::new(file))
            .with_context(|| format!("write {}", path.display()))?
        {
            anyhow::bail!(
                "profile {} has no table (--table-out is for routes, routes6, acl, services and services-syn)",
                spec.profile.name()
            );
        }
    }
    eprintln!(
        "vswitch-pktgen: {} packets, {} frame bytes (avg {:.1} B captured), profile={} size={} macs={} flows={} seed={} -> {}",
        summary.packets,
        summary.frame_bytes,
        summary.frame_bytes as f64 / summary.packets as f64,
        spec.profile.name(),
        spec.size,
        spec.params.macs,
        spec.params.flows,
        spec.params.seed,
        args.out.display()
    );
    Ok(())
}

fn main() -> ExitCode {
    perf::bench::exit_code("vswitch-pktgen", run(&Args::parse()))
}
