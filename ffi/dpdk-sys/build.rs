//! Generates bindings to the system DPDK with bindgen and compiles the C wrappers for DPDK's
//! static inline functions (rx/tx burst, mbuf alloc/free, LPM lookups, ...), so Rust can call
//! them.

use std::path::PathBuf;

const PACKAGES: &str = "libdpdk-dev (DPDK headers and libraries), pkg-config, clang and \
                        libclang-dev: apt-get install libdpdk-dev pkg-config clang libclang-dev \
                        (or run ci/setup.sh)";

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-changed=build.rs");

    let dpdk = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!("error: DPDK >= 22.11 not found by pkg-config ({e}).\nInstall {PACKAGES}.");
            std::process::exit(1);
        }
    };

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let wrappers = out.join("static_wrappers");
    let mut clang_args: Vec<String> = dpdk
        .include_paths
        .iter()
        .map(|p| format!("-I{}", p.display()))
        .collect();
    clang_args.push("-DALLOW_EXPERIMENTAL_API".into());
    clang_args.push("-march=corei7".into());

    let builder = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&clang_args)
        .wrap_static_fns(true)
        .wrap_static_fns_path(&wrappers)
        .allowlist_function("rte_(eal|lcore|eth|pktmbuf|mbuf|mempool|dev|vdev|get_tsc|rdtsc|socket|strerror|version|thread|pause|delay|get_main|get_next|exit)_?.*")
        .allowlist_function("rte_(lpm|lpm6|fib|fib6|acl)_.*")
        .allowlist_function("rte_malloc_get_socket_stats")
        .allowlist_function("rte_vhost_(driver_register|driver_unregister|driver_start|driver_callback_register|driver_disable_features|driver_get_features|get_negotiated_features|get_vring_num|get_ifname|enqueue_burst|dequeue_burst|get_mem_table|enable_guest_notification|get_mtu|extern_callback_register|get_vhost_vring|rx_queue_count)")
        .allowlist_function("vs_.*")
        .allowlist_type("rte_(eth|mbuf|mempool|ether|pktmbuf).*")
        .allowlist_type("rte_(lpm|lpm6|fib|fib6|acl)_.*")
        .allowlist_var("RTE_(ETH|MBUF|PKTMBUF|MAX|ETHER|MEMPOOL_F).*")
        .allowlist_var("RTE_(LPM|LPM6|FIB|FIB6|ACL)_.*")
        .allowlist_var("RTE_VHOST_USER_.*")
        .allowlist_type("rte_vhost_(device_ops|memory|mem_region|user_extern_ops|msg_result|vring)")
        .blocklist_function("rte_.*_trace.*")
        // Takes an xmm_t by value, which Rust cannot pass through extern "C"; shim.c's
        // vs_lpm_lookupx4 calls it with the addresses from memory.
        .blocklist_function("rte_lpm_lookupx4")
        .derive_default(true)
        .layout_tests(false)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    // bindgen panics (inside clang-sys) when libclang cannot be loaded: turn that into the same
    // install hint as a missing DPDK.
    let bindings =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate())) {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                eprintln!("error: bindgen failed on the DPDK headers: {e}\nInstall {PACKAGES}.");
                std::process::exit(1);
            }
            Err(_) => {
                eprintln!("error: libclang could not be loaded for bindgen.\nInstall {PACKAGES}.");
                std::process::exit(1);
            }
        };
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("write bindings.rs to OUT_DIR");

    let mut cc = cc::Build::new();
    cc.file(wrappers.with_extension("c"))
        .file("shim.c")
        .include(env!("CARGO_MANIFEST_DIR"))
        .define("ALLOW_EXPERIMENTAL_API", None)
        .flag("-march=corei7")
        .flag("-O3")
        .warnings(false);
    for p in &dpdk.include_paths {
        cc.include(p);
    }
    cc.compile("dpdk_wrappers");
}
