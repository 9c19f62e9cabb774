//! Longest-prefix-match tables: DPDK's rte_lpm (IPv4, DIR-24-8), rte_lpm6 (IPv6, a 24-bit
//! first level then 8-bit levels), rte_fib (IPv4, DIR-24-8 over a RIB) and rte_fib6 (IPv6,
//! a trie over a RIB).
//!
//! Addresses are host-order `u32` for IPv4 (`0x0a000001` is 10.0.0.1) and network-order
//! bytes `[u8; 16]` for IPv6 (`Ipv6Addr::octets()`). Depths are prefix lengths; host bits of
//! a prefix are ignored. Adding a prefix that is already there replaces its next hop.
//!
//! Next-hop widths (a larger next hop is refused with an error, not truncated):
//! - [`Lpm4`]: 24 bits ([`Lpm4::MAX_NEXT_HOP`]; rte_lpm keeps it in a 24-bit field).
//! - [`Lpm6`]: 21 bits ([`Lpm6::MAX_NEXT_HOP`]; rte_lpm6's table entries hold 21).
//! - [`Fib4`] / [`Fib6`]: 31 bits ([`FIB_MAX_NEXT_HOP`]; 4-byte entries, one bit of which
//!   marks an extended entry).
//!
//! rte_lpm and rte_lpm6 refuse depth 0, so [`Lpm4`] and [`Lpm6`] keep a /0 route themselves
//! and answer it for every address the DPDK table misses. rte_fib and rte_fib6 take /0 as a
//! route like any other and answer their configured default next hop when nothing matches.
//!
//! Thread safety: each table has one owner. Adding and deleting take `&mut self`, lookups
//! `&self` and only read the table, so the types are `Send` and `Sync`: Rust's borrow rules
//! then allow many concurrent readers or one writer, never both. These wrappers add no RCU:
//! a dataplane that must keep looking up while the control plane writes needs its own
//! scheme on top (a new table published per change, or DPDK's RCU QSBR, which rte_lpm
//! supports through rte_lpm_rcu_qsbr_add).

use std::ffi::CString;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::ptr::NonNull;

use crate::error::{Error, Result};
use crate::Eal;

/// What [`Lpm4`] and [`Lpm6`] bulk lookups write for an address without a route; no valid
/// next hop of theirs has this value.
pub const NO_ROUTE: u32 = u32::MAX;

/// The largest next hop (and default next hop) of [`Fib4`] and [`Fib6`]: their entries are
/// 4 bytes and DPDK keeps one bit of each for itself.
pub const FIB_MAX_NEXT_HOP: u64 = (1 << 31) - 1;

/// Any NUMA socket (SOCKET_ID_ANY).
const SOCKET_ID_ANY: i32 = -1;

/// Addresses per rte_lpm_lookup_bulk call: it keeps an array of `n` indexes on the C stack.
const LPM_BULK_CHUNK: usize = 64;

/// Addresses per rte_fib / rte_fib6 / rte_lpm6 bulk call, whose count is a C int.
const BULK_CHUNK: usize = 1 << 16;

fn c_name(op: &str, name: &str) -> Result<CString> {
    CString::new(name).map_err(|_| Error::msg(op, "name contains a NUL byte"))
}

fn check_depth(op: &str, depth: u8, max: u8) -> Result<()> {
    if depth > max {
        return Err(Error::msg(
            op,
            format!("invalid depth {depth}: a prefix length is 0..={max}"),
        ));
    }
    Ok(())
}

fn check_next_hop(op: &str, next_hop: u64, max: u64) -> Result<()> {
    if next_hop > max {
        return Err(Error::msg(
            op,
            format!("next hop {next_hop} is over this table's maximum {max}"),
        ));
    }
    Ok(())
}

/// The error for an add or delete that DPDK refused with `ret` (a negative errno): what it
/// means here where DPDK's text does not say, then DPDK's text. `missing_errno` is what this
/// call returns for a route that is not there.
fn route_error(op: String, ret: i32, missing_errno: i32) -> Error {
    let mut e = Error::from_ret(op, ret);
    if e.errno == libc::ENOSPC {
        e.reason = format!(
            "the table's rules or tbl8 groups are used up ({})",
            e.reason
        );
    } else if e.errno == missing_errno {
        e.reason = format!("no such route ({})", e.reason);
    }
    e
}

/// The error for a create that returned NULL.
fn create_error(op: &str) -> Error {
    let mut e = Error::from_errno(op);
    if e.errno == libc::EEXIST {
        e.reason = format!("another table has this name ({})", e.reason);
    }
    e
}

fn no_such_route(op: String) -> Error {
    Error {
        op,
        errno: libc::ENOENT,
        reason: "no such route".to_string(),
    }
}

/// Bytes allocated from DPDK's heap (rte_malloc, all NUMA sockets). LPM and FIB tables
/// live there, so the difference across creating and filling one is its size.
pub fn heap_allocated(_eal: &Eal) -> u64 {
    let mut total = 0;
    // SAFETY: the EAL is initialised (&Eal); rte_socket_count only reads its config.
    let sockets = unsafe { dpdk_sys::rte_socket_count() };
    for idx in 0..sockets {
        let mut stats = dpdk_sys::rte_malloc_socket_stats::default();
        // SAFETY: the EAL is initialised; idx < rte_socket_count(); stats is a valid struct
        // for DPDK to fill.
        let ok = unsafe {
            let socket = dpdk_sys::rte_socket_id_by_idx(idx);
            socket >= 0 && dpdk_sys::rte_malloc_get_socket_stats(socket, &mut stats) == 0
        };
        if ok {
            total += stats.heap_allocsz_bytes as u64;
        }
    }
    total
}

/// An IPv4 longest-prefix-match table (rte_lpm, DIR-24-8: a 2^24-entry first level indexed
/// by the top 24 bits, and 256-entry "tbl8" groups for /25-/32 prefixes, one group per /24
/// that holds any). Next hops are 24 bits. See the module notes for /0 and threads.
#[derive(Debug)]
pub struct Lpm4 {
    raw: NonNull<dpdk_sys::rte_lpm>,
    name: String,
    /// The /0 route, which rte_lpm does not take: the answer for whatever it misses.
    default_route: Option<u32>,
}

// SAFETY: the table lives in DPDK's shared heap and has no tie to the creating thread.
unsafe impl Send for Lpm4 {}
// SAFETY: &self methods only read the table (rte_lpm lookups); writes need &mut self.
unsafe impl Sync for Lpm4 {}

impl Lpm4 {
    /// The largest next hop rte_lpm holds (24 bits).
    pub const MAX_NEXT_HOP: u32 = (1 << 24) - 1;

    /// Creates a table for up to `max_rules` prefixes of length 1-32 (a /0 is kept apart)
    /// with `number_tbl8s` tbl8 groups (each 1 KiB; one per /24 that holds a longer prefix).
    /// The first level alone is 64 MiB of DPDK heap. `name` must be unique in the process
    /// (DPDK compares the first 31 bytes).
    pub fn new(_eal: &Eal, name: &str, max_rules: u32, number_tbl8s: u32) -> Result<Lpm4> {
        let op = format!("rte_lpm_create({name}, {max_rules} rules, {number_tbl8s} tbl8s)");
        let cname = c_name(&op, name)?;
        let config = dpdk_sys::rte_lpm_config {
            max_rules,
            number_tbl8s,
            flags: 0,
        };
        // SAFETY: the EAL is initialised (&Eal); cname and config are valid for the call,
        // and DPDK copies what it keeps.
        let raw = unsafe { dpdk_sys::rte_lpm_create(cname.as_ptr(), SOCKET_ID_ANY, &config) };
        let raw = NonNull::new(raw).ok_or_else(|| create_error(&op))?;
        Ok(Lpm4 {
            raw,
            name: name.to_string(),
            default_route: None,
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds `ip/depth` (depth 0..=32) with `next_hop` (at most [`Lpm4::MAX_NEXT_HOP`]), or
    /// replaces the next hop of that prefix.
    pub fn add(&mut self, ip: u32, depth: u8, next_hop: u32) -> Result<()> {
        let op = format!("rte_lpm_add({}: {}/{depth})", self.name, Ipv4Addr::from(ip));
        check_depth(&op, depth, dpdk_sys::RTE_LPM_MAX_DEPTH as u8)?;
        check_next_hop(&op, next_hop.into(), Self::MAX_NEXT_HOP.into())?;
        if depth == 0 {
            self.default_route = Some(next_hop);
            return Ok(());
        }
        // SAFETY: raw is a live table that &mut self gives us alone; depth is 1..=32.
        let ret = unsafe { dpdk_sys::rte_lpm_add(self.raw.as_ptr(), ip, depth, next_hop) };
        if ret < 0 {
            return Err(route_error(op, ret, 0));
        }
        Ok(())
    }

    /// Deletes `ip/depth`; an error if there is no such route.
    pub fn delete(&mut self, ip: u32, depth: u8) -> Result<()> {
        let op = format!(
            "rte_lpm_delete({}: {}/{depth})",
            self.name,
            Ipv4Addr::from(ip)
        );
        check_depth(&op, depth, dpdk_sys::RTE_LPM_MAX_DEPTH as u8)?;
        if depth == 0 {
            return match self.default_route.take() {
                Some(_) => Ok(()),
                None => Err(no_such_route(op)),
            };
        }
        // SAFETY: raw is a live table that &mut self gives us alone; depth is 1..=32.
        let ret = unsafe { dpdk_sys::rte_lpm_delete(self.raw.as_ptr(), ip, depth) };
        if ret < 0 {
            // rte_lpm says EINVAL for a prefix it does not hold (the arguments are checked).
            return Err(route_error(op, ret, libc::EINVAL));
        }
        Ok(())
    }

    /// The next hop of the longest prefix holding `ip`.
    pub fn lookup(&self, ip: u32) -> Option<u32> {
        let mut next_hop = 0;
        // SAFETY: raw is a live table; lookups only read it; next_hop is a valid u32.
        let ret = unsafe { dpdk_sys::rte_lpm_lookup(self.raw.as_ptr(), ip, &mut next_hop) };
        if ret == 0 {
            Some(next_hop)
        } else {
            self.default_route
        }
    }

    /// Looks up `ips[i]` into `next_hops[i]` (for `i` below the shorter length): the next hop,
    /// or [`NO_ROUTE`].
    pub fn lookup_bulk(&self, ips: &[u32], next_hops: &mut [u32]) {
        let miss = self.default_route.unwrap_or(NO_ROUTE);
        let mask = Self::MAX_NEXT_HOP;
        for (ips, out) in ips
            .chunks(LPM_BULK_CHUNK)
            .zip(next_hops.chunks_mut(LPM_BULK_CHUNK))
        {
            let n = ips.len().min(out.len());
            // SAFETY: raw is a live table that lookups only read; ips and out hold at least
            // n elements; n <= LPM_BULK_CHUNK keeps DPDK's on-stack index array small.
            unsafe {
                dpdk_sys::rte_lpm_lookup_bulk_func(
                    self.raw.as_ptr(),
                    ips.as_ptr(),
                    out.as_mut_ptr(),
                    n as u32,
                );
            }
            // Each result is the raw table entry: a next hop in the low 24 bits, valid only
            // with RTE_LPM_LOOKUP_SUCCESS set.
            for v in &mut out[..n] {
                *v = if *v & dpdk_sys::RTE_LPM_LOOKUP_SUCCESS != 0 {
                    *v & mask
                } else {
                    miss
                };
            }
        }
    }

    /// Looks up four addresses at once (rte_lpm_lookupx4, SIMD): the next hops, or
    /// [`NO_ROUTE`].
    pub fn lookup_x4(&self, ips: [u32; 4]) -> [u32; 4] {
        let mut hops = [0u32; 4];
        let miss = self.default_route.unwrap_or(NO_ROUTE);
        // SAFETY: raw is a live table that lookups only read; ips and hops are 4 u32 each.
        unsafe {
            dpdk_sys::vs_lpm_lookupx4(self.raw.as_ptr(), ips.as_ptr(), hops.as_mut_ptr(), miss)
        };
        hops
    }
}

impl Drop for Lpm4 {
    fn drop(&mut self) {
        // SAFETY: raw came from rte_lpm_create and is freed once; nothing borrows it now.
        unsafe { dpdk_sys::rte_lpm_free(self.raw.as_ptr()) }
    }
}

/// An IPv6 longest-prefix-match table (rte_lpm6: a 2^24-entry first level for the top 24
/// bits, then 256-entry tbl8 groups, one per byte of prefix past 24 bits and per distinct
/// prefix of that length). Next hops are 21 bits. See the module notes for /0 and threads.
#[derive(Debug)]
pub struct Lpm6 {
    raw: NonNull<dpdk_sys::rte_lpm6>,
    name: String,
    /// The /0 route, which rte_lpm6 does not take: the answer for whatever it misses.
    default_route: Option<u32>,
}

// SAFETY: the table lives in DPDK's shared heap and has no tie to the creating thread.
unsafe impl Send for Lpm6 {}
// SAFETY: &self methods only read the table (rte_lpm6 lookups); writes need &mut self.
unsafe impl Sync for Lpm6 {}

impl Lpm6 {
    /// The largest next hop rte_lpm6 holds (21 bits).
    pub const MAX_NEXT_HOP: u32 = (1 << 21) - 1;

    /// Creates a table for up to `max_rules` prefixes of length 1-128 (a /0 is kept apart)
    /// with `number_tbl8s` tbl8 groups (1 KiB each). The first level alone is 64 MiB of
    /// DPDK heap. `name` must be unique in the process (DPDK compares the first 31 bytes).
    pub fn new(_eal: &Eal, name: &str, max_rules: u32, number_tbl8s: u32) -> Result<Lpm6> {
        let op = format!("rte_lpm6_create({name}, {max_rules} rules, {number_tbl8s} tbl8s)");
        let cname = c_name(&op, name)?;
        let config = dpdk_sys::rte_lpm6_config {
            max_rules,
            number_tbl8s,
            flags: 0,
        };
        // SAFETY: the EAL is initialised (&Eal); cname and config are valid for the call,
        // and DPDK copies what it keeps.
        let raw = unsafe { dpdk_sys::rte_lpm6_create(cname.as_ptr(), SOCKET_ID_ANY, &config) };
        let raw = NonNull::new(raw).ok_or_else(|| create_error(&op))?;
        Ok(Lpm6 {
            raw,
            name: name.to_string(),
            default_route: None,
        })
    }

    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds `ip/depth` (depth 0..=128) with `next_hop` (at most [`Lpm6::MAX_NEXT_HOP`]), or
    /// replaces the next hop of that prefix.
    pub fn add(&mut self, ip: [u8; 16], depth: u8, next_hop: u32) -> Result<()> {
        let op = format!(
            "rte_lpm6_add({}: {}/{depth})",
            self.name,
            Ipv6Addr::from(ip)
        );
        check_depth(&op, depth, dpdk_sys::RTE_LPM6_MAX_DEPTH as u8)?;
        check_next_hop(&op, next_hop.into(), Self::MAX_NEXT_HOP.into())?;
        if depth == 0 {
            self.default_route = Some(next_hop);
            return Ok(());
        }
        // SAFETY: raw is a live table that &mut self gives us alone; ip is 16 bytes;
        // depth is 1..=128.
        let ret =
            unsafe { dpdk_sys::rte_lpm6_add(self.raw.as_ptr(), ip.as_ptr(), depth, next_hop) };
        if ret < 0 {
            return Err(route_error(op, ret, 0));
        }
        Ok(())
    }

    /// Deletes `ip/depth`; an error if there is no such route.
    pub fn delete(&mut self, ip: [u8; 16], depth: u8) -> Result<()> {
        let op = format!(
            "rte_lpm6_delete({}: {}/{depth})",
            self.name,
            Ipv6Addr::from(ip)
        );
        check_depth(&op, depth, dpdk_sys::RTE_LPM6_MAX_DEPTH as u8)?;
        if depth == 0 {
            return match self.default_route.take() {
                Some(_) => Ok(()),
                None => Err(no_such_route(op)),
            };
        }
        // SAFETY: raw is a live table that &mut self gives us alone; ip is 16 bytes;
        // depth is 1..=128.
        let ret = unsafe { dpdk_sys::rte_lpm6_delete(self.raw.as_ptr(), ip.as_ptr(), depth) };
        if ret < 0 {
            return Err(route_error(op, ret, libc::ENOENT));
        }
        Ok(())
    }

    /// The next hop of the longest prefix holding `ip`.
    pub fn lookup(&self, ip: [u8; 16]) -> Option<u32> {
        let mut next_hop = 0;
        // SAFETY: raw is a live table; lookups only read it; ip is 16 bytes; next_hop is a
        // valid u32.
        let ret =
            unsafe { dpdk_sys::rte_lpm6_lookup(self.raw.as_ptr(), ip.as_ptr(), &mut next_hop) };
        if ret == 0 {
            Some(next_hop)
        } else {
            self.default_route
        }
    }

    /// Looks up `ips[i]` into `next_hops[i]` (for `i` below the shorter length): the next hop,
    /// or [`NO_ROUTE`].
    pub fn lookup_bulk(&self, ips: &[[u8; 16]], next_hops: &mut [u32]) {
        for (ips, out) in ips.chunks(BULK_CHUNK).zip(next_hops.chunks_mut(BULK_CHUNK)) {
            let n = ips.len().min(out.len());
            // SAFETY: raw is a live table that lookups only read; DPDK reads n 16-byte
            // addresses (its parameter is not const, but it does not write them) and writes
            // n i32s, which have u32's layout.
            unsafe {
                dpdk_sys::rte_lpm6_lookup_bulk_func(
                    self.raw.as_ptr(),
                    ips.as_ptr().cast_mut(),
                    out.as_mut_ptr().cast::<i32>(),
                    n as u32,
                );
            }
            // A miss is -1, which is NO_ROUTE as a u32.
            if let Some(default) = self.default_route {
                for v in &mut out[..n] {
                    if *v == NO_ROUTE {
                        *v = default;
                    }
                }
            }
        }
    }
}

impl Drop for Lpm6 {
    fn drop(&mut self) {
        // SAFETY: raw came from rte_lpm6_create and is freed once; nothing borrows it now.
        unsafe { dpdk_sys::rte_lpm6_free(self.raw.as_ptr()) }
    }
}

/// Sizes of a [`Fib4`] or [`Fib6`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FibConfig {
    /// Routes the RIB beside the lookup table can hold (at most 2^30 - 1).
    pub max_routes: u32,
    /// tbl8 groups (1 KiB each with 4-byte next hops). [`Fib4`]: one per /24 that holds a
    /// longer prefix. [`Fib6`]: reserved per added prefix longer than /24, one per byte
    /// past the covering route's length (or /24) that was not already reserved.
    pub number_tbl8s: u32,
    /// What a lookup answers when no route matches (at most [`FIB_MAX_NEXT_HOP`]).
    pub default_next_hop: u64,
}

fn fib_checks(op: &str, config: &FibConfig) -> Result<()> {
    // DPDK sizes the RIB as 2 * max_routes nodes in a C int.
    if config.max_routes > (i32::MAX / 2) as u32 {
        return Err(Error::msg(op, "max_routes is over 2^30 - 1"));
    }
    if config.number_tbl8s == 0 || u64::from(config.number_tbl8s) > FIB_MAX_NEXT_HOP {
        return Err(Error::msg(op, "number_tbl8s must be 1..=2^31-1"));
    }
    check_next_hop(op, config.default_next_hop, FIB_MAX_NEXT_HOP)
}

/// An IPv4 FIB (rte_fib of type DIR24_8 with 4-byte next hops): the same lookup structure as
/// [`Lpm4`], built from a RIB that also holds every route, and a default next hop for
/// misses. Next hops are 31 bits. See the module notes for threads.
#[derive(Debug)]
pub struct Fib4 {
    raw: NonNull<dpdk_sys::rte_fib>,
    name: String,
    default_next_hop: u64,
}

// SAFETY: the FIB lives in DPDK's shared heap and has no tie to the creating thread.
unsafe impl Send for Fib4 {}
// SAFETY: &self methods only read the FIB (rte_fib_lookup_bulk); writes need &mut self.
unsafe impl Sync for Fib4 {}

impl Fib4 {
    /// Creates a FIB. The first level alone is 64 MiB of DPDK heap, and the RIB a mempool of
    /// 2 * `max_routes` nodes. `name` must be unique in the process and at most 22 bytes
    /// (DPDK names the RIB's mempool after it).
    pub fn new(_eal: &Eal, name: &str, config: &FibConfig) -> Result<Fib4> {
        let op = format!("rte_fib_create({name}, {config:?})");
        let cname = c_name(&op, name)?;
        fib_checks(&op, config)?;
        let mut conf = dpdk_sys::rte_fib_conf {
            type_: dpdk_sys::rte_fib_type_RTE_FIB_DIR24_8,
            default_nh: config.default_next_hop,
            max_routes: config.max_routes as i32,
            rib_ext_sz: 0,
            ..Default::default()
        };
        conf.__bindgen_anon_1.dir24_8.nh_sz = dpdk_sys::rte_fib_dir24_8_nh_sz_RTE_FIB_DIR24_8_4B;
        conf.__bindgen_anon_1.dir24_8.num_tbl8 = config.number_tbl8s;
        // SAFETY: the EAL is initialised (&Eal); cname and conf are valid for the call, and
        // DPDK copies what it keeps.
        let raw = unsafe { dpdk_sys::rte_fib_create(cname.as_ptr(), SOCKET_ID_ANY, &mut conf) };
        let raw = NonNull::new(raw).ok_or_else(|| create_error(&op))?;
        Ok(Fib4 {
            raw,
            name: name.to_string(),
            default_next_hop: config.default_next_hop,
        })
    }

    /// The FIB's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What lookups answer when no route matches.
    pub fn default_next_hop(&self) -> u64 {
        self.default_next_hop
    }

    /// Adds `ip/depth` (depth 0..=32) with `next_hop` (at most [`FIB_MAX_NEXT_HOP`]), or
    /// replaces the next hop of that prefix.
    pub fn add(&mut self, ip: u32, depth: u8, next_hop: u64) -> Result<()> {
        let op = format!("rte_fib_add({}: {}/{depth})", self.name, Ipv4Addr::from(ip));
        check_depth(&op, depth, dpdk_sys::RTE_FIB_MAXDEPTH as u8)?;
        check_next_hop(&op, next_hop, FIB_MAX_NEXT_HOP)?;
        // SAFETY: raw is a live FIB that &mut self gives us alone; depth is 0..=32.
        let ret = unsafe { dpdk_sys::rte_fib_add(self.raw.as_ptr(), ip, depth, next_hop) };
        if ret < 0 {
            return Err(route_error(op, ret, 0));
        }
        Ok(())
    }

    /// Deletes `ip/depth`; an error if there is no such route.
    pub fn delete(&mut self, ip: u32, depth: u8) -> Result<()> {
        let op = format!(
            "rte_fib_delete({}: {}/{depth})",
            self.name,
            Ipv4Addr::from(ip)
        );
        check_depth(&op, depth, dpdk_sys::RTE_FIB_MAXDEPTH as u8)?;
        // SAFETY: raw is a live FIB that &mut self gives us alone; depth is 0..=32.
        let ret = unsafe { dpdk_sys::rte_fib_delete(self.raw.as_ptr(), ip, depth) };
        if ret < 0 {
            return Err(route_error(op, ret, libc::ENOENT));
        }
        Ok(())
    }

    /// The next hop of the longest prefix holding `ip`, or the default next hop.
    pub fn lookup(&self, ip: u32) -> u64 {
        let mut next_hop = [0u64];
        self.lookup_bulk(&[ip], &mut next_hop);
        next_hop[0]
    }

    /// Looks up `ips[i]` into `next_hops[i]` (for `i` below the shorter length): the next hop,
    /// or the default next hop.
    pub fn lookup_bulk(&self, ips: &[u32], next_hops: &mut [u64]) {
        for (ips, out) in ips.chunks(BULK_CHUNK).zip(next_hops.chunks_mut(BULK_CHUNK)) {
            let n = ips.len().min(out.len());
            // SAFETY: raw is a live FIB that lookups only read; DPDK reads n addresses (its
            // parameter is not const, but it does not write them) and writes n u64s;
            // n <= BULK_CHUNK fits a C int. It fails only for NULL arguments.
            unsafe {
                dpdk_sys::rte_fib_lookup_bulk(
                    self.raw.as_ptr(),
                    ips.as_ptr().cast_mut(),
                    out.as_mut_ptr(),
                    n as i32,
                );
            }
        }
    }
}

impl Drop for Fib4 {
    fn drop(&mut self) {
        // SAFETY: raw came from rte_fib_create and is freed once; nothing borrows it now.
        unsafe { dpdk_sys::rte_fib_free(self.raw.as_ptr()) }
    }
}

/// An IPv6 FIB (rte_fib6 of type TRIE with 4-byte next hops: a 2^24-entry first level, then
/// 8-bit levels, built from a RIB that also holds every route) with a default next hop for
/// misses. Next hops are 31 bits. See the module notes for threads.
#[derive(Debug)]
pub struct Fib6 {
    raw: NonNull<dpdk_sys::rte_fib6>,
    name: String,
    default_next_hop: u64,
}

// SAFETY: the FIB lives in DPDK's shared heap and has no tie to the creating thread.
unsafe impl Send for Fib6 {}
// SAFETY: &self methods only read the FIB (rte_fib6_lookup_bulk); writes need &mut self.
unsafe impl Sync for Fib6 {}

impl Fib6 {
    /// Creates a FIB. The first level alone is 64 MiB of DPDK heap, and the RIB a mempool of
    /// 2 * `max_routes` nodes. `name` must be unique in the process and at most 22 bytes
    /// (DPDK names the RIB's mempool after it).
    pub fn new(_eal: &Eal, name: &str, config: &FibConfig) -> Result<Fib6> {
        let op = format!("rte_fib6_create({name}, {config:?})");
        let cname = c_name(&op, name)?;
        fib_checks(&op, config)?;
        let mut conf = dpdk_sys::rte_fib6_conf {
            type_: dpdk_sys::rte_fib6_type_RTE_FIB6_TRIE,
            default_nh: config.default_next_hop,
            max_routes: config.max_routes as i32,
            rib_ext_sz: 0,
            ..Default::default()
        };
        conf.__bindgen_anon_1.trie.nh_sz = dpdk_sys::rte_fib_trie_nh_sz_RTE_FIB6_TRIE_4B;
        conf.__bindgen_anon_1.trie.num_tbl8 = config.number_tbl8s;
        // SAFETY: the EAL is initialised (&Eal); cname and conf are valid for the call, and
        // DPDK copies what it keeps.
        let raw = unsafe { dpdk_sys::rte_fib6_create(cname.as_ptr(), SOCKET_ID_ANY, &mut conf) };
        let raw = NonNull::new(raw).ok_or_else(|| create_error(&op))?;
        Ok(Fib6 {
            raw,
            name: name.to_string(),
            default_next_hop: config.default_next_hop,
        })
    }

    /// The FIB's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What lookups answer when no route matches.
    pub fn default_next_hop(&self) -> u64 {
        self.default_next_hop
    }

    /// Adds `ip/depth` (depth 0..=128) with `next_hop` (at most [`FIB_MAX_NEXT_HOP`]), or
    /// replaces the next hop of that prefix.
    pub fn add(&mut self, ip: [u8; 16], depth: u8, next_hop: u64) -> Result<()> {
        let op = format!(
            "rte_fib6_add({}: {}/{depth})",
            self.name,
            Ipv6Addr::from(ip)
        );
        check_depth(&op, depth, dpdk_sys::RTE_FIB6_MAXDEPTH as u8)?;
        check_next_hop(&op, next_hop, FIB_MAX_NEXT_HOP)?;
        // SAFETY: raw is a live FIB that &mut self gives us alone; ip is 16 bytes; depth is
        // 0..=128.
        let ret =
            unsafe { dpdk_sys::rte_fib6_add(self.raw.as_ptr(), ip.as_ptr(), depth, next_hop) };
        if ret < 0 {
            return Err(route_error(op, ret, 0));
        }
        Ok(())
    }

    /// Deletes `ip/depth`; an error if there is no such route.
    pub fn delete(&mut self, ip: [u8; 16], depth: u8) -> Result<()> {
        let op = format!(
            "rte_fib6_delete({}: {}/{depth})",
            self.name,
            Ipv6Addr::from(ip)
        );
        check_depth(&op, depth, dpdk_sys::RTE_FIB6_MAXDEPTH as u8)?;
        // SAFETY: raw is a live FIB that &mut self gives us alone; ip is 16 bytes; depth is
        // 0..=128.
        let ret = unsafe { dpdk_sys::rte_fib6_delete(self.raw.as_ptr(), ip.as_ptr(), depth) };
        if ret < 0 {
            return Err(route_error(op, ret, libc::ENOENT));
        }
        Ok(())
    }

    /// The next hop of the longest prefix holding `ip`, or the default next hop.
    pub fn lookup(&self, ip: [u8; 16]) -> u64 {
        let mut next_hop = [0u64];
        self.lookup_bulk(&[ip], &mut next_hop);
        next_hop[0]
    }

    /// Looks up `ips[i]` into `next_hops[i]` (for `i` below the shorter length): the next hop,
    /// or the default next hop.
    pub fn lookup_bulk(&self, ips: &[[u8; 16]], next_hops: &mut [u64]) {
        for (ips, out) in ips.chunks(BULK_CHUNK).zip(next_hops.chunks_mut(BULK_CHUNK)) {
            let n = ips.len().min(out.len());
            // SAFETY: raw is a live FIB that lookups only read; DPDK reads n 16-byte
            // addresses (its parameter is not const, but it does not write them) and writes
            // n u64s; n <= BULK_CHUNK fits a C int. It fails only for NULL arguments.
            unsafe {
                dpdk_sys::rte_fib6_lookup_bulk(
                    self.raw.as_ptr(),
                    ips.as_ptr().cast_mut(),
                    out.as_mut_ptr(),
                    n as i32,
                );
            }
        }
    }
}

impl Drop for Fib6 {
    fn drop(&mut self) {
        // SAFETY: raw came from rte_fib6_create and is freed once; nothing borrows it now.
        unsafe { dpdk_sys::rte_fib6_free(self.raw.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, MutexGuard};

    use super::*;
    use crate::test_eal::{eal, require_eal};

    /// Each table is 64 MiB or more of the test EAL's 256 MiB heap: one test at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    fn serial() -> MutexGuard<'static, ()> {
        ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn v4(s: &str) -> u32 {
        s.parse::<Ipv4Addr>().unwrap().into()
    }

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    /// Checks every lookup flavour of `lpm` against `want` (None: no route).
    fn check_lpm4(lpm: &Lpm4, want: &[(&str, Option<u32>)]) {
        let ips: Vec<u32> = want.iter().map(|(a, _)| v4(a)).collect();
        let mut bulk = vec![0; ips.len()];
        lpm.lookup_bulk(&ips, &mut bulk);
        for (i, (addr, nh)) in want.iter().enumerate() {
            assert_eq!(lpm.lookup(ips[i]), *nh, "lookup {addr}");
            assert_eq!(bulk[i], nh.unwrap_or(NO_ROUTE), "lookup_bulk {addr}");
            let x4 = lpm.lookup_x4([ips[i], v4("1.2.3.4"), ips[i], ips[i]]);
            assert_eq!(x4[0], nh.unwrap_or(NO_ROUTE), "lookup_x4 {addr}");
            assert_eq!((x4[2], x4[3]), (x4[0], x4[0]), "lookup_x4 {addr}");
        }
    }

    fn check_lpm6(lpm: &Lpm6, want: &[(&str, Option<u32>)]) {
        let ips: Vec<[u8; 16]> = want.iter().map(|(a, _)| v6(a)).collect();
        let mut bulk = vec![0; ips.len()];
        lpm.lookup_bulk(&ips, &mut bulk);
        for (i, (addr, nh)) in want.iter().enumerate() {
            assert_eq!(lpm.lookup(ips[i]), *nh, "lookup {addr}");
            assert_eq!(bulk[i], nh.unwrap_or(NO_ROUTE), "lookup_bulk {addr}");
        }
    }

    fn check_fib4(fib: &Fib4, want: &[(&str, u64)]) {
        let ips: Vec<u32> = want.iter().map(|(a, _)| v4(a)).collect();
        let mut bulk = vec![0; ips.len()];
        fib.lookup_bulk(&ips, &mut bulk);
        for (i, (addr, nh)) in want.iter().enumerate() {
            assert_eq!(fib.lookup(ips[i]), *nh, "lookup {addr}");
            assert_eq!(bulk[i], *nh, "lookup_bulk {addr}");
        }
    }

    fn check_fib6(fib: &Fib6, want: &[(&str, u64)]) {
        let ips: Vec<[u8; 16]> = want.iter().map(|(a, _)| v6(a)).collect();
        let mut bulk = vec![0; ips.len()];
        fib.lookup_bulk(&ips, &mut bulk);
        for (i, (addr, nh)) in want.iter().enumerate() {
            assert_eq!(fib.lookup(ips[i]), *nh, "lookup {addr}");
            assert_eq!(bulk[i], *nh, "lookup_bulk {addr}");
        }
    }

    /// The IPv4 routes of the overlapping-prefix tests: (prefix, depth, next hop).
    const ROUTES4: [(&str, u8, u32); 6] = [
        ("0.0.0.0", 0, 1),
        ("10.0.0.0", 8, 2),
        ("10.1.0.0", 16, 3),
        ("10.1.2.0", 24, 4),
        ("10.1.2.128", 25, 5),
        ("10.1.2.200", 32, 6),
    ];

    const ROUTES6: [(&str, u8, u32); 5] = [
        ("::", 0, 1),
        ("2001:db8::", 32, 2),
        ("2001:db8:1::", 48, 3),
        ("2001:db8:1:2::", 64, 4),
        ("2001:db8:1:2::1", 128, 5),
    ];

    #[test]
    fn lpm4_longest_prefix_wins_and_deletes_uncover() {
        require_eal!();
        let _one = serial();
        let mut lpm = Lpm4::new(eal(), "t_lpm4", 64, 16).unwrap();
        for (p, d, nh) in ROUTES4 {
            lpm.add(v4(p), d, nh).unwrap();
        }
        check_lpm4(
            &lpm,
            &[
                ("192.0.2.1", Some(1)),
                ("10.200.0.1", Some(2)),
                ("10.1.200.1", Some(3)),
                ("10.1.2.1", Some(4)),
                ("10.1.2.127", Some(4)),
                ("10.1.2.128", Some(5)),
                ("10.1.2.199", Some(5)),
                ("10.1.2.200", Some(6)),
                ("10.1.2.201", Some(5)),
            ],
        );
        lpm.delete(v4("10.1.2.128"), 25).unwrap();
        lpm.delete(v4("10.1.0.0"), 16).unwrap();
        lpm.delete(v4("0.0.0.0"), 0).unwrap();
        // Host bits of the prefix do not matter; adding again replaces the next hop.
        lpm.add(v4("10.1.2.77"), 24, 40).unwrap();
        check_lpm4(
            &lpm,
            &[
                ("192.0.2.1", None),
                ("10.200.0.1", Some(2)),
                ("10.1.200.1", Some(2)),
                ("10.1.2.1", Some(40)),
                ("10.1.2.130", Some(40)),
                ("10.1.2.200", Some(6)),
            ],
        );
        // A default route applies to bulk and x4 misses too.
        lpm.add(0, 0, 9).unwrap();
        check_lpm4(&lpm, &[("192.0.2.1", Some(9)), ("10.1.2.200", Some(6))]);

        let e = lpm.delete(v4("10.1.2.128"), 25).unwrap_err();
        assert!(e.to_string().contains("no such route"), "{e}");
        lpm.delete(0, 0).unwrap();
        let e = lpm.delete(0, 0).unwrap_err();
        assert!(e.to_string().contains("no such route"), "{e}");
    }

    #[test]
    fn lpm4_refuses_bad_depths_and_next_hops() {
        require_eal!();
        let _one = serial();
        let mut lpm = Lpm4::new(eal(), "t_lpm4_bad", 16, 4).unwrap();
        let e = lpm.add(v4("10.0.0.0"), 33, 1).unwrap_err();
        assert!(e.to_string().contains("invalid depth 33"), "{e}");
        let e = lpm.delete(v4("10.0.0.0"), 200).unwrap_err();
        assert!(e.to_string().contains("invalid depth 200"), "{e}");
        let e = lpm.add(v4("10.0.0.0"), 8, 1 << 24).unwrap_err();
        assert!(e.to_string().contains("maximum"), "{e}");
        lpm.add(v4("10.0.0.0"), 8, Lpm4::MAX_NEXT_HOP).unwrap();
        assert_eq!(lpm.lookup(v4("10.9.9.9")), Some(Lpm4::MAX_NEXT_HOP));
        // Slices of different lengths: the shorter length is looked up.
        let mut out = [7u32; 2];
        lpm.lookup_bulk(&[v4("10.1.1.1"), v4("11.1.1.1"), v4("10.2.2.2")], &mut out);
        assert_eq!(out, [Lpm4::MAX_NEXT_HOP, NO_ROUTE]);
        let mut out = [7u32; 3];
        lpm.lookup_bulk(&[v4("10.1.1.1")], &mut out);
        assert_eq!(out, [Lpm4::MAX_NEXT_HOP, 7, 7]);
    }

    #[test]
    fn lpm4_out_of_tbl8s_and_duplicate_names_are_errors() {
        require_eal!();
        let _one = serial();
        let mut lpm = Lpm4::new(eal(), "t_lpm4_small", 16, 1).unwrap();
        lpm.add(v4("10.0.0.128"), 25, 1).unwrap();
        // The same /24 shares the one tbl8 group; another /24 needs a second.
        lpm.add(v4("10.0.0.7"), 32, 2).unwrap();
        let e = lpm.add(v4("10.0.1.128"), 25, 3).unwrap_err();
        assert_eq!(e.errno, libc::ENOSPC, "{e}");
        assert!(e.to_string().contains("tbl8"), "{e}");
        assert_eq!(lpm.lookup(v4("10.0.1.130")), None);

        let e = Lpm4::new(eal(), "t_lpm4_small", 16, 1).unwrap_err();
        assert_eq!(e.errno, libc::EEXIST, "{e}");
        assert!(e.to_string().contains("another table has this name"), "{e}");
        let e = Lpm4::new(eal(), "t_lpm4\0", 16, 1).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }

    #[test]
    fn lpm6_longest_prefix_wins_and_deletes_uncover() {
        require_eal!();
        let _one = serial();
        let mut lpm = Lpm6::new(eal(), "t_lpm6", 64, 64).unwrap();
        for (p, d, nh) in ROUTES6 {
            lpm.add(v6(p), d, nh).unwrap();
        }
        check_lpm6(
            &lpm,
            &[
                ("2a00::1", Some(1)),
                ("2001:db8:ffff::1", Some(2)),
                ("2001:db8:1:ffff::1", Some(3)),
                ("2001:db8:1:2::2", Some(4)),
                ("2001:db8:1:2:ffff::", Some(4)),
                ("2001:db8:1:2::1", Some(5)),
            ],
        );
        lpm.delete(v6("2001:db8:1:2::"), 64).unwrap();
        lpm.delete(v6("::"), 0).unwrap();
        lpm.add(v6("2001:db8:1::99"), 48, 30).unwrap();
        check_lpm6(
            &lpm,
            &[
                ("2a00::1", None),
                ("2001:db8:ffff::1", Some(2)),
                ("2001:db8:1:2::2", Some(30)),
                ("2001:db8:1:2::1", Some(5)),
            ],
        );
        lpm.add([0; 16], 0, 8).unwrap();
        check_lpm6(&lpm, &[("2a00::1", Some(8)), ("2001:db8:1:2::1", Some(5))]);

        let e = lpm.delete(v6("2001:db8:1:2::"), 64).unwrap_err();
        assert!(e.to_string().contains("no such route"), "{e}");
        let e = lpm.add(v6("2001:db8::"), 129, 1).unwrap_err();
        assert!(e.to_string().contains("invalid depth 129"), "{e}");
        let e = lpm.add(v6("2001:db8::"), 32, 1 << 21).unwrap_err();
        assert!(e.to_string().contains("maximum"), "{e}");
    }

    #[test]
    fn fib4_longest_prefix_wins_and_misses_give_the_default() {
        require_eal!();
        let _one = serial();
        let config = FibConfig {
            max_routes: 64,
            number_tbl8s: 16,
            default_next_hop: 999,
        };
        let mut fib = Fib4::new(eal(), "t_fib4", &config).unwrap();
        assert_eq!(fib.lookup(v4("10.1.2.200")), 999);
        for (p, d, nh) in ROUTES4 {
            fib.add(v4(p), d, nh.into()).unwrap();
        }
        check_fib4(
            &fib,
            &[
                ("192.0.2.1", 1),
                ("10.200.0.1", 2),
                ("10.1.200.1", 3),
                ("10.1.2.1", 4),
                ("10.1.2.128", 5),
                ("10.1.2.200", 6),
                ("10.1.2.201", 5),
            ],
        );
        fib.delete(v4("10.1.2.128"), 25).unwrap();
        fib.delete(v4("10.1.0.0"), 16).unwrap();
        fib.delete(0, 0).unwrap();
        fib.add(v4("10.1.2.77"), 24, FIB_MAX_NEXT_HOP).unwrap();
        check_fib4(
            &fib,
            &[
                ("192.0.2.1", 999),
                ("10.1.200.1", 2),
                ("10.1.2.130", FIB_MAX_NEXT_HOP),
                ("10.1.2.200", 6),
            ],
        );

        let e = fib.delete(v4("10.1.2.128"), 25).unwrap_err();
        assert!(e.to_string().contains("no such route"), "{e}");
        let e = fib.add(v4("10.0.0.0"), 33, 1).unwrap_err();
        assert!(e.to_string().contains("invalid depth 33"), "{e}");
        let e = fib
            .add(v4("10.0.0.0"), 8, FIB_MAX_NEXT_HOP + 1)
            .unwrap_err();
        assert!(e.to_string().contains("maximum"), "{e}");
        let bad = FibConfig {
            default_next_hop: FIB_MAX_NEXT_HOP + 1,
            ..config
        };
        assert!(Fib4::new(eal(), "t_fib4_bad", &bad).is_err());
    }

    #[test]
    fn fib6_longest_prefix_wins_and_misses_give_the_default() {
        require_eal!();
        let _one = serial();
        let config = FibConfig {
            max_routes: 64,
            number_tbl8s: 64,
            default_next_hop: 999,
        };
        let mut fib = Fib6::new(eal(), "t_fib6", &config).unwrap();
        for (p, d, nh) in ROUTES6 {
            fib.add(v6(p), d, nh.into()).unwrap();
        }
        check_fib6(
            &fib,
            &[
                ("2a00::1", 1),
                ("2001:db8:ffff::1", 2),
                ("2001:db8:1:ffff::1", 3),
                ("2001:db8:1:2::2", 4),
                ("2001:db8:1:2::1", 5),
            ],
        );
        fib.delete(v6("2001:db8:1:2::"), 64).unwrap();
        fib.delete(v6("::"), 0).unwrap();
        check_fib6(
            &fib,
            &[
                ("2a00::1", 999),
                ("2001:db8:1:2::2", 3),
                ("2001:db8:1:2::1", 5),
            ],
        );
        let e = fib.delete(v6("2001:db8:1:2::"), 64).unwrap_err();
        assert!(e.to_string().contains("no such route"), "{e}");
        let e = fib.delete(v6("2001:db8::"), 129).unwrap_err();
        assert!(e.to_string().contains("invalid depth 129"), "{e}");
    }

    /// A small PRNG for the random cross-checks (SplitMix64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    fn mask128(depth: u8) -> u128 {
        u128::MAX.checked_shl(128 - u32::from(depth)).unwrap_or(0)
    }

    /// The longest match by brute force: (prefix, depth, next hop) with the longest depth
    /// that holds `addr`, where addresses are left-aligned in a u128.
    fn naive(routes: &[(u128, u8, u32)], addr: u128) -> Option<u32> {
        routes
            .iter()
            .filter(|(p, d, _)| addr & mask128(*d) == *p)
            .max_by_key(|(_, d, _)| *d)
            .map(|(_, _, nh)| *nh)
    }

    /// Random routes clustered under one /12 (so that they overlap), deduplicated, with
    /// depths up to `max_depth`, left-aligned in a u128.
    fn random_routes(rng: &mut Rng, n: usize, max_depth: u8) -> Vec<(u128, u8, u32)> {
        let mut routes: Vec<(u128, u8, u32)> = Vec::new();
        while routes.len() < n {
            let depth = (rng.next() % (u64::from(max_depth) + 1)) as u8;
            let bits = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 12;
            let prefix = (0xa00u128 << 116 | bits) & mask128(depth);
            if !routes.iter().any(|(p, d, _)| *p == prefix && *d == depth) {
                routes.push((prefix, depth, routes.len() as u32 + 1));
            }
        }
        routes
    }

    fn random_addrs(rng: &mut Rng, routes: &[(u128, u8, u32)], n: usize) -> Vec<u128> {
        (0..n)
            .map(|i| {
                let noise = u128::from(rng.next()) << 64 | u128::from(rng.next());
                if i % 4 == 0 {
                    noise // mostly outside every route but the short ones
                } else {
                    let (p, d, _) = routes[(rng.next() % routes.len() as u64) as usize];
                    p | (noise & !mask128(d))
                }
            })
            .collect()
    }

    #[test]
    fn ipv4_tables_agree_with_a_brute_force_longest_match() {
        require_eal!();
        let _one = serial();
        let mut rng = Rng(4);
        let routes = random_routes(&mut rng, 300, 32);
        let addrs = random_addrs(&mut rng, &routes, 5000);
        let ips: Vec<u32> = addrs.iter().map(|a| (a >> 96) as u32).collect();
        let want: Vec<u32> = addrs
            .iter()
            .map(|a| naive(&routes, a & mask128(32)).unwrap_or(NO_ROUTE))
            .collect();
        {
            let mut lpm = Lpm4::new(eal(), "t_lpm4_rand", 300, 300).unwrap();
            for (p, d, nh) in &routes {
                lpm.add((p >> 96) as u32, *d, *nh).unwrap();
            }
            let mut got = vec![0; ips.len()];
            lpm.lookup_bulk(&ips, &mut got);
            assert_eq!(got, want);
        }
        let config = FibConfig {
            max_routes: 300,
            number_tbl8s: 300,
            default_next_hop: u64::from(NO_ROUTE >> 1),
        };
        let mut fib = Fib4::new(eal(), "t_fib4_rand", &config).unwrap();
        for (p, d, nh) in &routes {
            fib.add((p >> 96) as u32, *d, (*nh).into()).unwrap();
        }
        let mut got = vec![0; ips.len()];
        fib.lookup_bulk(&ips, &mut got);
        let got: Vec<u32> = got
            .iter()
            .map(|&nh| {
                if nh == config.default_next_hop {
                    NO_ROUTE
                } else {
                    nh as u32
                }
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn ipv6_tables_agree_with_a_brute_force_longest_match() {
        require_eal!();
        let _one = serial();
        let mut rng = Rng(6);
        let routes = random_routes(&mut rng, 300, 128);
        let addrs = random_addrs(&mut rng, &routes, 5000);
        let ips: Vec<[u8; 16]> = addrs.iter().map(|a| a.to_be_bytes()).collect();
        let want: Vec<u32> = addrs
            .iter()
            .map(|a| naive(&routes, *a).unwrap_or(NO_ROUTE))
            .collect();
        // Enough tbl8 groups for any layout: a /128 needs at most 13.
        let tbl8s = 300 * 13;
        {
            let mut lpm = Lpm6::new(eal(), "t_lpm6_rand", 300, tbl8s).unwrap();
            for (p, d, nh) in &routes {
                lpm.add(p.to_be_bytes(), *d, *nh).unwrap();
            }
            let mut got = vec![0; ips.len()];
            lpm.lookup_bulk(&ips, &mut got);
            assert_eq!(got, want);
        }
        let config = FibConfig {
            max_routes: 300,
            number_tbl8s: tbl8s,
            default_next_hop: u64::from(NO_ROUTE >> 1),
        };
        let mut fib = Fib6::new(eal(), "t_fib6_rand", &config).unwrap();
        for (p, d, nh) in &routes {
            fib.add(p.to_be_bytes(), *d, (*nh).into()).unwrap();
        }
        let mut got = vec![0; ips.len()];
        fib.lookup_bulk(&ips, &mut got);
        let got: Vec<u32> = got
            .iter()
            .map(|&nh| {
                if nh == config.default_next_hop {
                    NO_ROUTE
                } else {
                    nh as u32
                }
            })
            .collect();
        assert_eq!(got, want);
    }
}
