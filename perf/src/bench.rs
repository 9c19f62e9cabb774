//! What the benchmark binaries share: the EAL arguments of a measuring run, pinning the
//! measuring thread, the load-average note, and the exit status of a tool.

use std::process::ExitCode;

use anyhow::bail;

/// EAL arguments for a benchmark on one core: `mem_mb` MB of memory (4 KiB pages unless
/// `huge`), no PCI scan, errors-only logging, the main lcore on `cpu`, and a file prefix of
/// `prefix` and the process id (every DPDK process needs its own).
pub fn eal_args(prefix: &str, mem_mb: u32, cpu: usize, huge: bool) -> Vec<String> {
    let mut args = vec![
        "-m".to_string(),
        mem_mb.to_string(),
        "--no-pci".into(),
        "--log-level".into(),
        "error".into(),
        "--lcores".into(),
        format!("0@{cpu}"),
        "--file-prefix".into(),
        format!("{prefix}{}", std::process::id()),
    ];
    if !huge {
        args.push("--no-huge".into());
    }
    args
}

/// Pins the calling thread to `cpu` (the EAL gives the main thread its affinity back).
pub fn pin(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET bounds-checks cpu against the set's size, and
    // sched_setaffinity reads a set of the size given.
    let ret = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if ret != 0 {
        bail!("pin to CPU {cpu}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// The machine's 1, 5 and 15 minute load averages, as /proc/loadavg gives them.
pub fn load_average() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    load.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A tool's exit status for what its run returned, the error (with its causes) on stderr
/// after the tool's name.
pub fn exit_code(tool: &str, result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{tool}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
