//! Arrays of shared table slots in memory the kernel is asked to back with transparent huge
//! pages. Tables of megabytes whose lookups land on random lines (the MAC table, the session
//! table) otherwise miss the TLB on nearly every lookup as well as the cache (measured on
//! the MAC table: see `l2/fdb.rs`). Arrays of 2 MiB or more are aligned to 2 MiB so that
//! whole huge pages fit; a kernel without THP (or with it off) ignores the advice and
//! 4 KiB pages are used.

/// Types whose all-zero bytes are a valid value (tables of atomic integers), so that a
/// [`HugeArray`] can be made by zeroing its memory.
///
/// # Safety
/// An implementer must be valid when all its bytes are zero and have no drop glue.
pub unsafe trait Zeroed {}

/// The size of a huge page here (x86-64's 2 MiB).
pub const HUGE_PAGE: usize = 2 << 20;

/// A fixed-size array of `T`, zeroed, in huge-page-advised memory.
pub struct HugeArray<T: Zeroed> {
    ptr: std::ptr::NonNull<T>,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: a HugeArray owns its allocation and hands out only shared references to its `T`s
// (Deref to a slice); sending and sharing it is as safe as for `Box<[T]>`.
unsafe impl<T: Zeroed + Send> Send for HugeArray<T> {}
// SAFETY: as above.
unsafe impl<T: Zeroed + Sync> Sync for HugeArray<T> {}

impl<T: Zeroed> HugeArray<T> {
    /// `n` zeroed elements (`n` > 0 and `T` not zero-sized). Panics if the size overflows
    /// (callers bound `n`).
    pub fn new(n: usize) -> HugeArray<T> {
        let array = std::alloc::Layout::array::<T>(n.max(1)).expect("table size overflows");
        let size = array.size();
        let align = if size >= HUGE_PAGE {
            HUGE_PAGE
        } else {
            array.align()
        };
        let layout = array.align_to(align).expect("2 MiB is a valid alignment");
        // SAFETY: the layout has a non-zero size (n >= 1, T not zero-sized: its users are
        // slots of atomics).
        let raw = unsafe { std::alloc::alloc(layout) }.cast::<T>();
        let Some(ptr) = std::ptr::NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        if align == HUGE_PAGE {
            // Advice only: before the first touch, so the pages are faulted in huge.
            // SAFETY: the range is our own fresh allocation.
            unsafe { libc::madvise(raw.cast(), size, libc::MADV_HUGEPAGE) };
        }
        // SAFETY: `raw` is valid for `n` elements; all-zero bytes are a valid T (Zeroed).
        unsafe { std::ptr::write_bytes(raw, 0, n.max(1)) };
        HugeArray {
            ptr,
            len: n.max(1),
            layout,
        }
    }
}

impl<T: Zeroed> std::ops::Deref for HugeArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: ptr/len describe our initialised allocation, alive as long as self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Zeroed> Drop for HugeArray<T> {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; T has no drop glue (Zeroed).
        unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) };
    }
}

impl<T: Zeroed> std::fmt::Debug for HugeArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeArray({})", self.len)
    }
}
