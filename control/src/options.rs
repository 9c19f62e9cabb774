//! vswitchd's command line, and the EAL arguments derived from it.

use std::path::PathBuf;

use clap::Parser;
use vswitch_dataplane::PollMode;

use crate::client::DEFAULT_SOCKET;

/// vswitchd: the vswitch daemon (DPDK dataplane + gRPC control API).
#[derive(Debug, Clone, Parser)]
#[command(name = "vswitchd", version, about, long_about = None)]
pub struct Options {
    /// Configuration applied at start when there is no state file (state-file format).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The gRPC unix socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// CPUs to use: the first for the main (control) thread, the rest for workers, e.g.
    /// `0,1` or `0-3`. Default: CPU 0 for main and the next CPUs for the workers.
    #[arg(long, value_name = "LIST")]
    pub lcores: Option<String>,
    /// Number of poll-mode workers (default: one per CPU after the first in --lcores, or 1).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Use ordinary memory instead of hugepages (CI, containers; slower).
    #[arg(long)]
    pub no_huge: bool,
    /// Memory for DPDK, in MB.
    #[arg(long, value_name = "MB", default_value_t = 512)]
    pub mem: u32,
    /// Poll mode: busy (spin, lowest latency) or adaptive (sleep when idle).
    #[arg(long, value_name = "MODE", default_value = "busy")]
    pub poll: PollMode,
    /// The desired state, saved after every change and restored at start.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/var/lib/vswitch/state.json"
    )]
    pub state_file: PathBuf,
    /// Start with an empty configuration, ignoring (and later overwriting) the state file.
    #[arg(long)]
    pub reset_state: bool,
    /// DPDK's --file-prefix: every DPDK process on a machine needs its own.
    #[arg(long, value_name = "P", default_value = "vswitch")]
    pub file_prefix: String,
    /// Directory for relative vhost-user / memif socket names.
    #[arg(long, value_name = "DIR", default_value = vswitch_vhost::DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    /// Mbufs in the packet-buffer pool (2048 bytes of packet each).
    #[arg(long, value_name = "N", default_value_t = 32767)]
    pub mbufs: u32,
    /// Mbufs in the jumbo pool (9728 bytes each, ~10 KiB of --mem per mbuf), made when the
    /// first interface with an MTU over 1960 is added.
    #[arg(long, value_name = "N", default_value_t = crate::switch::DEFAULT_JUMBO_MBUFS)]
    pub jumbo_mbufs: u32,
    /// Mbufs in the buffer pool that zero-copy memif clients share with their peers (2048
    /// bytes of packet each, in shared memory outside --mem), made when the first
    /// `zero-copy=on` interface is added.
    #[arg(long, value_name = "N", default_value_t = crate::switch::DEFAULT_ZC_MBUFS)]
    pub zc_mbufs: u32,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics.
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,
    /// Slots in the MAC table shared by all bridges (rounded up to a power of two).
    #[arg(long, value_name = "N", default_value_t = 262144)]
    pub fdb_size: usize,
    /// The most interfaces the switch holds at once: ports, bridges' routed interfaces
    /// (one per bridge) and tunnels, 1 to 1024. Interfaces backed by a DPDK port are also
    /// bounded by DPDK's build (RTE_MAX_ETHPORTS: 32 in Debian's DPDK).
    #[arg(long, value_name = "N", default_value_t = vswitch_dataplane::MAX_IFACES)]
    pub max_interfaces: usize,
    /// Group owning the gRPC unix socket (mode 0660): its members may use vsctl without
    /// being root. Default: the daemon's own group.
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,
    /// Also serve gRPC on this TCP address, with mutual TLS only (needs --tls-cert,
    /// --tls-key and --tls-client-ca; there is no unauthenticated network listener).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// The TCP listener's certificate chain (PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,
    /// The TCP listener's private key (PEM).
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that client certificates must chain to.
    #[arg(long, value_name = "PEM")]
    pub tls_client_ca: Option<PathBuf>,
    /// DPDK log level (error, warning, notice, info, debug).
    #[arg(long, value_name = "LEVEL", default_value = "warning")]
    pub dpdk_log_level: String,
    /// Widest SIMD that DPDK's libraries may use (its --force-max-simd-bitwidth): 128, 256
    /// or 512 bits, or auto: 512 (rte_acl's AVX-512 classify: 54 against AVX2's 67 cycles a
    /// key at 1,000 rules, 149 against 318 at 10,000, perf/results/2026-12-02-aclbench-crossover.md),
    /// except on Intel Skylake-SP / Cascade Lake, whose cores slow their clock for AVX-512
    /// (256 there, DPDK's own default). A CPU without AVX-512 never uses it either way.
    #[arg(long, value_name = "BITS", default_value = "auto")]
    pub max_simd_bitwidth: SimdWidth,
    /// Keep every CPU's idle exit latency at or below US microseconds while vswitchd runs
    /// (a PM QoS request on /dev/cpu_dma_latency; 0: idle CPUs poll instead of halting), so
    /// that a pod's application is woken in microseconds (see `cpu_latency`). Costs power.
    /// Unset: no request.
    #[arg(long, value_name = "US")]
    pub cpu_latency: Option<u32>,
}

/// `--max-simd-bitwidth`: a width in bits, or chosen from the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimdWidth {
    Auto,
    Bits(u16),
}

impl std::str::FromStr for SimdWidth {
    type Err = String;
    fn from_str(s: &str) -> Result<SimdWidth, String> {
        match s {
            "auto" => Ok(SimdWidth::Auto),
            "128" => Ok(SimdWidth::Bits(128)),
            "256" => Ok(SimdWidth::Bits(256)),
            "512" => Ok(SimdWidth::Bits(512)),
            _ => Err(format!("{s:?} is not auto, 128, 256 or 512")),
        }
    }
}

impl SimdWidth {
    /// The width in bits, `Auto` decided by the CPU described by `cpuinfo` (the text of
    /// /proc/cpuinfo).
    pub fn bits(self, cpuinfo: &str) -> u16 {
        match self {
            SimdWidth::Bits(b) => b,
            SimdWidth::Auto if avx512_downclocks(cpuinfo) => 256,
            SimdWidth::Auto => 512,
        }
    }
}

/// Whether the CPU is an Intel Skylake-SP / Cascade Lake / Cooper Lake (family 6, model
/// 85), whose cores lower their clock while running AVX-512 (later Intel cores and AMD's
/// much less).
fn avx512_downclocks(cpuinfo: &str) -> bool {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    field("vendor_id").as_deref() == Some("GenuineIntel")
        && field("cpu family").as_deref() == Some("6")
        && field("model").as_deref() == Some("85")
}

/// The CPU layout: main thread's CPU and one CPU per worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuLayout {
    pub main: usize,
    pub workers: Vec<usize>,
}

/// Parses a CPU list such as `0,1`, `0-3` or `0,2-3`.
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, String> {
    let bad = || format!("--lcores {s:?} is not a CPU list (e.g. 0,1 or 0-3)");
    let mut cpus = Vec::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (usize, usize) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if a > b || b >= 1024 {
            return Err(bad());
        }
        for c in a..=b {
            if cpus.contains(&c) {
                return Err(format!("--lcores {s:?} names CPU {c} twice"));
            }
            cpus.push(c);
        }
    }
    Ok(cpus)
}

impl Options {
    /// Where each thread runs. `online` is the set of CPUs this process may use.
    pub fn cpu_layout(&self, online: &[usize]) -> Result<CpuLayout, String> {
        let cpus = match &self.lcores {
            Some(l) => parse_cpu_list(l)?,
            None => {
                let n = self.workers.unwrap_or(1);
                online.iter().copied().cycle().take(n + 1).collect()
            }
        };
        if let Some(c) = cpus.iter().find(|c| !online.contains(c)) {
            return Err(format!(
                "--lcores: CPU {c} is not available (usable CPUs: {online:?})"
            ));
        }
        let (&main, rest) = cpus
            .split_first()
            .ok_or("--lcores must name at least one CPU")?;
        let n = self.workers.unwrap_or(rest.len().max(1));
        if n == 0 || n > 64 {
            return Err(format!("--workers must be from 1 to 64, not {n}"));
        }
        // Workers go on the listed CPUs after the main one, wrapping (sharing) if fewer.
        let pool: Vec<usize> = if rest.is_empty() {
            vec![main]
        } else {
            rest.to_vec()
        };
        let workers = (0..n).map(|i| pool[i % pool.len()]).collect();
        Ok(CpuLayout { main, workers })
    }

    /// The EAL arguments: lcore 0 is the main thread, lcores 1.. the workers, each mapped
    /// onto its CPU (`--lcores 0@C,1@C,...`).
    pub fn eal_args(&self, layout: &CpuLayout) -> Vec<String> {
        let map: Vec<String> = std::iter::once(layout.main)
            .chain(layout.workers.iter().copied())
            .enumerate()
            .map(|(lcore, cpu)| format!("{lcore}@{cpu}"))
            .collect();
        let mut args = vec![
            "--lcores".to_string(),
            map.join(","),
            "--main-lcore".into(),
            "0".into(),
            "--file-prefix".into(),
            self.file_prefix.clone(),
            "-m".into(),
            self.mem.to_string(),
            "--log-level".into(),
            self.dpdk_log_level.clone(),
            format!(
                "--force-max-simd-bitwidth={}",
                self.max_simd_bitwidth
                    .bits(&std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default())
            ),
        ];
        if self.no_huge {
            // PCI devices need DMA-able (hugepage) memory; without hugepages skip the PCI scan.
            args.extend(["--no-huge".to_string(), "--no-pci".to_string()]);
        }
        args
    }

    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        crate::names::check_name("--file-prefix", &self.file_prefix)?;
        if self.mem < 64 {
            return Err(format!("--mem must be at least 64 MB, not {}", self.mem));
        }
        if !(1..=vswitch_dataplane::MAX_IFACES).contains(&self.max_interfaces) {
            return Err(format!(
                "--max-interfaces must be from 1 to {}, not {}",
                vswitch_dataplane::MAX_IFACES,
                self.max_interfaces
            ));
        }
        if !(1024..=(1 << 24)).contains(&self.fdb_size) {
            return Err(format!(
                "--fdb-size must be from 1024 to 16777216, not {}",
                self.fdb_size
            ));
        }
        let tls = [&self.tls_cert, &self.tls_key, &self.tls_client_ca];
        match (self.listen, tls.iter().all(|t| t.is_some())) {
            (Some(addr), false) => {
                return Err(format!(
                    "--listen {addr} needs --tls-cert, --tls-key and --tls-client-ca: the TCP \
                     listener serves only clients with a certificate"
                ))
            }
            (None, _) if tls.iter().any(|t| t.is_some()) => return Err(
                "--tls-cert, --tls-key and --tls-client-ca are for --listen, which is not given"
                    .into(),
            ),
            _ => {}
        }
        if !(1024..=4_194_303).contains(&self.mbufs) {
            return Err(format!(
                "--mbufs must be from 1024 to 4194303, not {}",
                self.mbufs
            ));
        }
        if !(4096..=1_048_575).contains(&self.zc_mbufs) {
            return Err(format!(
                "--zc-mbufs must be from 4096 to 1048575, not {}",
                self.zc_mbufs
            ));
        }
        if let Some(us) = self.cpu_latency {
            crate::cpu_latency::check(us)?;
        }
        if !(512..=1_048_575).contains(&self.jumbo_mbufs) {
            return Err(format!(
                "--jumbo-mbufs must be from 512 to 1048575, not {}",
                self.jumbo_mbufs
            ));
        }
        Ok(())
    }
}

/// The CPUs this process may run on (its affinity, from /proc/self/status).
pub fn online_cpus() -> Vec<usize> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|l| parse_cpu_list(l.trim()).ok())
        })
        .unwrap_or_else(|| vec![0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("vswitchd").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn cpu_latency_is_optional_and_bounded() {
        assert_eq!(opts(&[]).cpu_latency, None);
        let o = opts(&["--cpu-latency", "0"]);
        assert_eq!(o.cpu_latency, Some(0));
        assert!(o.validate().is_ok());
        let e = opts(&["--cpu-latency", "1000001"]).validate().unwrap_err();
        assert!(e.contains("--cpu-latency must be from 0 to 1000000"), "{e}");
        for bad in ["-1", "ten", ""] {
            let r = Options::try_parse_from(["vswitchd", "--cpu-latency", bad]);
            assert!(r.is_err(), "--cpu-latency {bad:?} was taken");
        }
    }

    #[test]
    fn simd_width_auto_avoids_avx512_where_it_downclocks() {
        let intel = |model: u32| {
            format!("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: {model}\nmodel name\t: x\n")
        };
        assert_eq!(SimdWidth::Auto.bits(&intel(85)), 256);
        assert_eq!(SimdWidth::Auto.bits(&intel(106)), 512);
        assert_eq!(
            SimdWidth::Auto.bits("vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"),
            512
        );
        assert_eq!(SimdWidth::Auto.bits(""), 512);
        assert_eq!(SimdWidth::Bits(256).bits(&intel(106)), 256);
        assert_eq!(
            opts(&["--max-simd-bitwidth", "128"]).max_simd_bitwidth,
            SimdWidth::Bits(128)
        );
        assert_eq!(opts(&[]).max_simd_bitwidth, SimdWidth::Auto);
        let e = Options::try_parse_from(["vswitchd", "--max-simd-bitwidth", "1024"]).unwrap_err();
        assert!(e.to_string().contains("not auto, 128, 256 or 512"), "{e}");
    }

    #[test]
    fn tcp_listener_requires_mutual_tls() {
        let e = opts(&["--listen", "127.0.0.1:7000"])
            .validate()
            .unwrap_err();
        assert!(e.contains("--tls-client-ca"), "{e}");
        let e = opts(&[
            "--listen",
            "127.0.0.1:7000",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
        ])
        .validate()
        .unwrap_err();
        assert!(e.contains("--tls-client-ca"), "{e}");
        assert!(opts(&["--tls-cert", "c"]).validate().is_err());
        let all = [
            "--listen",
            "127.0.0.1:7000",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--tls-client-ca",
            "ca",
        ];
        assert_eq!(opts(&all).validate(), Ok(()));
    }

    #[test]
    fn defaults_match_the_contract() {
        let o = opts(&[]);
        assert_eq!(o.socket, PathBuf::from("/run/vswitch/vswitchd.sock"));
        assert_eq!(o.state_file, PathBuf::from("/var/lib/vswitch/state.json"));
        assert_eq!(o.poll, PollMode::Busy);
        assert_eq!(o.mem, 512);
        assert!(o.validate().is_ok());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0,1"), Ok(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4"), Ok(vec![0, 2, 3, 4]));
        assert!(parse_cpu_list("1-0").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("0,0").unwrap_err().contains("twice"));
    }

    #[test]
    fn layouts() {
        let online = [0, 1];
        let l = opts(&["--lcores", "0,1"]).cpu_layout(&online).unwrap();
        assert_eq!(
            l,
            CpuLayout {
                main: 0,
                workers: vec![1]
            }
        );
        let l = opts(&[]).cpu_layout(&online).unwrap();
        assert_eq!(
            l,
            CpuLayout {
                main: 0,
                workers: vec![1]
            }
        );
        // One CPU: the worker shares it.
        let l = opts(&["--lcores", "0"]).cpu_layout(&online).unwrap();
        assert_eq!(
            l,
            CpuLayout {
                main: 0,
                workers: vec![0]
            }
        );
        let l = opts(&["--lcores", "0,1", "--workers", "3"])
            .cpu_layout(&online)
            .unwrap();
        assert_eq!(l.workers, vec![1, 1, 1]);
        assert!(opts(&["--lcores", "0,7"])
            .cpu_layout(&online)
            .unwrap_err()
            .contains("CPU 7"));
        assert!(opts(&["--workers", "0"])
            .cpu_layout(&online)
            .unwrap_err()
            .contains("--workers"));
        // A single-CPU machine still gets a worker.
        assert_eq!(
            opts(&[]).cpu_layout(&[0]).unwrap(),
            CpuLayout {
                main: 0,
                workers: vec![0]
            }
        );
    }

    #[test]
    fn eal_arguments() {
        let o = opts(&[
            "--no-huge",
            "--mem",
            "256",
            "--file-prefix",
            "t1",
            "--poll",
            "adaptive",
        ]);
        let a = o.eal_args(&CpuLayout {
            main: 0,
            workers: vec![1],
        });
        let s = a.join(" ");
        assert!(s.contains("--lcores 0@0,1@1"), "{s}");
        assert!(s.contains("--file-prefix t1"));
        assert!(s.contains("-m 256"));
        assert!(s.contains("--no-huge --no-pci"));
        assert!(
            s.contains("--force-max-simd-bitwidth=512")
                || s.contains("--force-max-simd-bitwidth=256"),
            "{s}"
        );
        let o = opts(&["--max-simd-bitwidth", "128"]);
        let s = o
            .eal_args(&CpuLayout {
                main: 0,
                workers: vec![1],
            })
            .join(" ");
        assert!(s.contains("--force-max-simd-bitwidth=128"), "{s}");
    }

    #[test]
    fn bad_options_are_refused() {
        assert!(Options::try_parse_from(["vswitchd", "--poll", "fast"]).is_err());
        assert!(Options::try_parse_from(["vswitchd", "--mem", "x"]).is_err());
        assert!(opts(&["--mem", "8"])
            .validate()
            .unwrap_err()
            .contains("--mem"));
        assert!(opts(&["--file-prefix", "a/b"]).validate().is_err());
        assert!(opts(&["--jumbo-mbufs", "10"])
            .validate()
            .unwrap_err()
            .contains("--jumbo-mbufs"));
        assert!(opts(&["--mbufs", "10"])
            .validate()
            .unwrap_err()
            .contains("--mbufs"));
    }
}
