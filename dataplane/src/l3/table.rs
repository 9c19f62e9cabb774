//! A large array of atomics (`AtomicU32`, `AtomicU64`) in its own anonymous mapping: zero-filled, committed page by
//! page as it is written (a FIB's 64 MiB first level costs only the pages its routes touch),
//! never moved (readers index it while the writer writes), and advised to the kernel for
//! transparent huge pages, because FIB lookups land on random entries of tens of megabytes
//! and with 4 KiB pages nearly every one would also miss the TLB.

use std::sync::atomic::{AtomicU32, AtomicU64};

mod sealed {
    pub trait Sealed {}
}

/// Atomic integers, for which all-zero bytes are a valid value (zero). Sealed: only the
/// types here can be table entries.
pub trait Zeroable: sealed::Sealed + Sized {}
impl sealed::Sealed for AtomicU32 {}
impl Zeroable for AtomicU32 {}
impl sealed::Sealed for AtomicU64 {}
impl Zeroable for AtomicU64 {}

/// A fixed-length array of atomics backed by its own mapping.
pub struct AtomicTable<T: Zeroable = AtomicU32> {
    ptr: std::ptr::NonNull<T>,
    len: usize,
    bytes: usize,
}

// SAFETY: the table owns its mapping and hands out only shared references to atomics, so
// sending or sharing it is as safe as for a `Box<[AtomicU32]>`.
unsafe impl<T: Zeroable + Send + Sync> Send for AtomicTable<T> {}
// SAFETY: as above.
unsafe impl<T: Zeroable + Send + Sync> Sync for AtomicTable<T> {}

/// Why a table could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapFailed {
    pub bytes: usize,
    pub errno: i32,
}

impl std::fmt::Display for MapFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot map {} bytes for a route table: {}",
            self.bytes,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

impl std::error::Error for MapFailed {}

impl<T: Zeroable> AtomicTable<T> {
    /// A table of `len` zeroed entries (`len` > 0). Address space is reserved, memory is
    /// committed on first write.
    pub fn new(len: usize) -> Result<AtomicTable<T>, MapFailed> {
        let bytes = len.max(1) * std::mem::size_of::<T>();
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing; no
        // existing memory is affected. MAP_NORESERVE: pages are committed when touched.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return Err(MapFailed {
                bytes,
                errno: std::io::Error::last_os_error().raw_os_error().unwrap_or(0),
            });
        }
        // Advice only (a kernel without THP ignores it).
        // SAFETY: the range is the mapping just made.
        unsafe { libc::madvise(raw, bytes, libc::MADV_HUGEPAGE) };
        let Some(ptr) = std::ptr::NonNull::new(raw.cast::<T>()) else {
            return Err(MapFailed { bytes, errno: 0 });
        };
        Ok(AtomicTable {
            ptr,
            len: len.max(1),
            bytes,
        })
    }

    /// Bytes of address space the table spans.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl<T: Zeroable> std::ops::Deref for AtomicTable<T> {
    type Target = [T];
    #[inline(always)]
    fn deref(&self) -> &[T] {
        // SAFETY: ptr/len describe our mapping, zero-filled by the kernel (all-zero bytes
        // are a valid T: `Zeroable`), alive as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroable> Drop for AtomicTable<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, with its length; nothing borrows it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.bytes) };
    }
}

impl<T: Zeroable> std::fmt::Debug for AtomicTable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AtomicTable({})", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn zeroed_writable_and_lazily_committed() {
        // 256 MiB of address space: only the pages written are committed.
        let t = AtomicTable::<AtomicU32>::new(1 << 26).unwrap();
        assert_eq!(t.len(), 1 << 26);
        assert_eq!(t[12345].load(Relaxed), 0);
        t[(1 << 26) - 1].store(7, Relaxed);
        assert_eq!(t[(1 << 26) - 1].load(Relaxed), 7);
        let w = AtomicTable::<AtomicU64>::new(3).unwrap();
        w[2].store(u64::MAX, Relaxed);
        assert_eq!((w[1].load(Relaxed), w[2].load(Relaxed)), (0, u64::MAX));
    }
}
