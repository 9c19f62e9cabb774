//! Lcores (DPDK's pinned worker threads) and the TSC.

use std::ffi::{c_int, c_void};

/// Why a function could not be launched on an lcore.
#[derive(Debug, thiserror::Error)]
#[error("cannot launch on lcore {lcore}: {reason}")]
pub struct LaunchError {
    pub lcore: u32,
    pub reason: String,
}

/// Runs `f` on worker lcore `lcore` (an EAL thread pinned to its CPU). The lcore must be
/// idle; [`wait_lcore`] waits for `f` to return.
pub fn launch<F: FnOnce() + Send + 'static>(
    _eal: &crate::Eal,
    lcore: u32,
    f: F,
) -> Result<(), LaunchError> {
    extern "C" fn trampoline(arg: *mut c_void) -> c_int {
        // SAFETY: arg is the Box<Box<dyn FnOnce>> leaked by launch, handed to exactly one
        // trampoline call, so it is reclaimed exactly once.
        let f = unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() + Send>) };
        f();
        0
    }
    let boxed: Box<Box<dyn FnOnce() + Send>> = Box::new(Box::new(f));
    let arg = Box::into_raw(boxed) as *mut c_void;
    // SAFETY: the EAL is initialised (the &Eal); trampoline has the lcore_function_t ABI and
    // takes ownership of arg when launched.
    let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if ret != 0 {
        // SAFETY: the launch failed, so trampoline never runs and arg is still ours.
        drop(unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() + Send>) });
        return Err(LaunchError {
            lcore,
            reason: crate::error::strerror(ret.abs()),
        });
    }
    Ok(())
}

/// Waits for the function launched on `lcore` to return.
pub fn wait_lcore(_eal: &crate::Eal, lcore: u32) {
    // SAFETY: the EAL is initialised; waiting on an idle lcore returns at once.
    unsafe {
        dpdk_sys::rte_eal_wait_lcore(lcore);
    }
}

/// The calling thread's lcore id (u32::MAX for a thread DPDK does not know).
#[inline]
pub fn lcore_id() -> u32 {
    // SAFETY: reads a thread-local variable.
    unsafe { dpdk_sys::rte_lcore_id() }
}

/// The time-stamp counter (inlined: no FFI call on the fast path).
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC only reads the CPU's time-stamp counter; no memory is touched.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: reads the CPU's cycle counter through DPDK; no memory is touched.
    unsafe {
        dpdk_sys::rte_rdtsc()
    }
}

/// TSC ticks per second, as measured by the EAL.
pub fn tsc_hz() -> u64 {
    // SAFETY: reads a value the EAL computed at init (0 before init).
    unsafe { dpdk_sys::rte_get_tsc_hz() }
}
