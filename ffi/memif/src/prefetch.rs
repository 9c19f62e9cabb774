//! Cache-line prefetch hints for memory shared with the peer. The peer's core touched a
//! ring's descriptors and buffers last, so each first access of ours is a transfer from
//! its cache; asked for a burst ahead, those transfers overlap instead of stalling each
//! copy in turn. A hint never faults and changes nothing the program sees.

use std::sync::OnceLock;

/// Whether the CPU has PREFETCHW (CPUID 8000_0001h ECX bit 8: every AMD64 CPU, Intel since
/// Broadwell). Without it a write prefetch is a read prefetch.
fn has_prefetchw() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            // `unsafe` until Rust 1.94 made the intrinsic safe (rust-version is older).
            #[allow(unused_unsafe)]
            // SAFETY: CPUID exists on every x86_64 CPU, and so does leaf 8000_0001h.
            let r = unsafe { core::arch::x86_64::__cpuid(0x8000_0001) };
            r.ecx & (1 << 8) != 0
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// How to prefetch lines about to be written: asked once per burst ([`Hint::new`]).
#[derive(Clone, Copy)]
pub(crate) struct Hint {
    write: bool,
}

impl Hint {
    #[inline]
    pub fn new() -> Hint {
        Hint {
            write: has_prefetchw(),
        }
    }

    /// The line at `p`, to be read.
    #[inline(always)]
    pub fn read(self, p: *const u8) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch never faults, whatever the address, and has no effect the
        // program can see.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
        }
    }

    /// The line at `p`, to be written: held exclusive, so that the store needs no second
    /// round trip to the peer's core for ownership.
    #[inline(always)]
    pub fn write(self, p: *const u8) {
        #[cfg(target_arch = "x86_64")]
        if self.write {
            // SAFETY: PREFETCHW exists on this CPU (checked by `has_prefetchw`), never
            // faults and has no effect the program can see.
            unsafe {
                core::arch::asm!("prefetchw [{}]", in(reg) p, options(nostack, preserves_flags, readonly));
            }
            return;
        }
        self.read(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_on_any_address_do_nothing_visible() {
        let h = Hint::new();
        let v = [7u8; 64];
        h.read(v.as_ptr());
        h.write(v.as_ptr());
        h.read(std::ptr::null());
        h.write(std::ptr::null());
        h.write(usize::MAX as *const u8);
        assert_eq!(v, [7u8; 64]);
    }
}
