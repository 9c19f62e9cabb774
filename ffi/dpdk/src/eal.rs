//! The DPDK Environment Abstraction Layer: initialised once per process.

use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Proof that the EAL is initialised. There is at most one per process.
///
/// Thread safety: `Eal` is a token; the EAL itself is process-global and DPDK documents
/// which of its calls are thread-safe. Cleanup is explicit ([`Eal::cleanup`]) because it
/// must come after every port is closed and every worker has returned.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

impl Eal {
    /// Initialises the EAL with `args` (without the program name, which is added).
    ///
    /// The calling thread's CPU affinity is restored afterwards: rte_eal_init pins the
    /// calling thread to the main lcore, and every thread it later creates (tokio's, say)
    /// would inherit that single CPU.
    pub fn init(args: &[String]) -> Result<Eal> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::msg(
                "rte_eal_init",
                "the EAL is already initialised in this process",
            ));
        }
        let mut owned = Vec::with_capacity(args.len() + 1);
        for a in std::iter::once("vswitch").chain(args.iter().map(String::as_str)) {
            match CString::new(a) {
                Ok(c) => owned.push(c),
                Err(_) => {
                    INITIALISED.store(false, Ordering::SeqCst);
                    return Err(Error::msg(
                        "rte_eal_init",
                        format!("argument {a:?} contains a NUL byte"),
                    ));
                }
            }
        }
        // DPDK may keep pointers into argv (it permutes it while parsing), so argv and its
        // strings live for the rest of the process.
        let argv: &'static mut [*mut c_char] = Box::leak(
            owned
                .into_iter()
                .map(CString::into_raw)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        // The mlx5 drivers (loaded with every PMD of the system's DPDK) call C's setenv on
        // this name while the EAL starts. A setenv that adds a name may move the
        // environment array under another thread's getenv (Rust's own env lock does not
        // cover C's setenv): seen as a crash of a test thread reading the environment. Set
        // here to the value they set, the name exists and their setenv only replaces it.
        if std::env::var_os("RDMAV_HUGEPAGES_SAFE").is_none() {
            std::env::set_var("RDMAV_HUGEPAGES_SAFE", "1");
        }
        let saved = affinity();
        // SAFETY: argv holds argc valid NUL-terminated strings that are never freed; the
        // INITIALISED flag makes this the only rte_eal_init call in the process.
        let ret = unsafe { dpdk_sys::rte_eal_init(argv.len() as i32, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(Error::from_ret("rte_eal_init", ret));
        }
        if let Some(set) = saved {
            set_affinity(&set);
        }
        Ok(Eal { _private: () })
    }

    /// Releases the EAL's resources. Call after every port is closed and workers returned.
    pub fn cleanup(self) {
        // SAFETY: self proves rte_eal_init succeeded; taking self by value makes this the
        // last EAL call made through this token.
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
    }

    /// The lcore ids of the worker lcores (every enabled lcore but the main one).
    pub fn worker_lcores(&self) -> Vec<u32> {
        let mut out = Vec::new();
        // SAFETY: the EAL is initialised (self); these calls only read its lcore config.
        unsafe {
            let mut l = dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0);
            while l < dpdk_sys::RTE_MAX_LCORE {
                out.push(l);
                l = dpdk_sys::rte_get_next_lcore(l, 1, 0);
            }
        }
        out
    }
}

/// EAL arguments for tests and small tools: no hugepages, no PCI scan, 256 MB, errors-only
/// logging, the given `--lcores` map (e.g. `0` or `0@0,1@0`) and DPDK file prefix.
pub fn light_args(lcores: &str, file_prefix: &str) -> Vec<String> {
    [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--log-level",
        "error",
        "--lcores",
        lcores,
        "--file-prefix",
        file_prefix,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) == 0)
            .then_some(set)
    }
}

fn set_affinity(set: &libc::cpu_set_t) {
    // SAFETY: set points to a valid cpu_set_t of the size given.
    unsafe {
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
    }
}
