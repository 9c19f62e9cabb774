//! `vswitchd --cpu-latency US`: a PM QoS request on `/dev/cpu_dma_latency`, held while the
//! daemon runs. The kernel keeps every CPU out of idle states whose exit latency is above
//! the request; at 0 an idle CPU polls instead of halting.
//!
//! Why a switch wants it: a frame the worker hands to a pod's interface wakes the pod's
//! application, usually on another CPU. Waking a halted CPU is slow, and slower in a VM
//! (an inter-processor interrupt through the hypervisor): on the 2-CPU VM of the
//! benchmarks, two applications on a Linux bridge took 56.0-62.7 µs p50 a TCP round trip
//! on different CPUs, and 15.3-20.1 µs with idle CPUs polling (`perf/bridge-rr-cpus.sh
//! --runs 2` without and with `--cpu-latency 0`, twice each:
//! `perf/results/2026-12-04-bridge-rr-cpus-{halt,poll}{,-2}.md`). The price is power:
//! idle CPUs spin.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// The kernel's interface for it.
pub const DEVICE: &str = "/dev/cpu_dma_latency";

/// The largest request accepted (one second; the kernel's own default, "no constraint",
/// is 2,000 seconds).
pub const MAX_US: u32 = 1_000_000;

/// A held request: the kernel drops it when this is dropped (the file closed), or when the
/// process exits however it exits.
#[derive(Debug)]
pub struct CpuLatency {
    _file: File,
    us: u32,
}

impl CpuLatency {
    /// Asks the kernel to keep every CPU's idle exit latency at or below `us` microseconds.
    pub fn hold(us: u32) -> Result<CpuLatency, String> {
        hold_at(Path::new(DEVICE), us)
    }

    /// The request, in microseconds.
    pub fn us(&self) -> u32 {
        self.us
    }
}

/// Whether `us` is a request `--cpu-latency` takes; the error names the range.
pub fn check(us: u32) -> Result<(), String> {
    if us > MAX_US {
        return Err(format!(
            "--cpu-latency must be from 0 to {MAX_US} µs, not {us}"
        ));
    }
    Ok(())
}

fn hold_at(path: &Path, us: u32) -> Result<CpuLatency, String> {
    check(us)?;
    let mut file = File::options()
        .write(true)
        .open(path)
        .map_err(|e| format!("--cpu-latency: cannot open {}: {e}", path.display()))?;
    // The kernel takes a binary s32 when exactly four bytes are written (`us` <= MAX_US
    // fits one).
    file.write_all(&(us as i32).to_ne_bytes())
        .map_err(|e| format!("--cpu-latency: cannot write {}: {e}", path.display()))?;
    Ok(CpuLatency { _file: file, us })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// The latency the kernel enforces now (the smallest request any process holds), µs.
    fn current() -> std::io::Result<i32> {
        let mut b = [0u8; 4];
        File::open(DEVICE)?.read_exact(&mut b)?;
        Ok(i32::from_ne_bytes(b))
    }

    #[test]
    fn writes_the_request_as_four_bytes_and_refuses_out_of_range() {
        let dir = std::env::temp_dir().join(format!("vs-cpulat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("dev");
        std::fs::write(&f, b"").unwrap();
        let held = hold_at(&f, 7).unwrap();
        assert_eq!(held.us(), 7);
        assert_eq!(std::fs::read(&f).unwrap(), 7i32.to_ne_bytes());
        let e = hold_at(&f, MAX_US + 1).unwrap_err();
        assert!(e.contains("from 0 to 1000000"), "{e}");
        let e = hold_at(&dir.join("missing"), 0).unwrap_err();
        assert!(e.contains("cannot open"), "{e}");
        drop(held);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// On the real device (root, Linux with PM QoS): the request takes effect while held.
    #[test]
    fn the_kernel_enforces_the_request_while_it_is_held() {
        if !Path::new(DEVICE).exists() || can_write_device().is_none() {
            eprintln!("skipped: no {DEVICE} or not root");
            return;
        }
        let held = CpuLatency::hold(3).unwrap();
        let now = current().unwrap();
        assert!(
            now <= 3,
            "the kernel enforces {now} µs with a request of 3 held"
        );
        drop(held);
    }

    /// Some(()) when this process can open the device for writing (root).
    fn can_write_device() -> Option<()> {
        File::options().write(true).open(DEVICE).ok().map(|_| ())
    }
}
