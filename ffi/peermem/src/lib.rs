//! Memory that a peer shares with the switch by passing a file descriptor (a VM's guest
//! memory over vhost-user, a memif peer's regions), guarded against the peer.
//!
//! A shared mapping of a file faults with SIGBUS wherever it lies past the file's end: a
//! peer that announces a region longer than its file, or shrinks the file (`ftruncate`)
//! while the switch uses it, would kill the switch at the next access from a worker or
//! from librte_vhost. Sizes are checked when a region is announced, but a shrink can come
//! at any time. So every mapping of peer memory is registered here ([`guard`]) for as long
//! as it is mapped, and a SIGBUS handler ([`install`]) that finds the faulting address
//! inside a registered range maps anonymous zero pages over the whole range (MAP_FIXED:
//! the mapping's owner still unmaps it as before) and returns: the access that faulted is
//! retried and reads zeros, and the range's fault count tells its owner to drop the peer.
//! A SIGBUS anywhere else takes the default action (the process dies, as without this).
//!
//! Threads: the ranges are a fixed table of atomics, so the handler (on whichever thread
//! faulted) reads it without a lock; [`guard`] and dropping a [`Guard`] (control threads)
//! claim and release slots with atomic operations.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Once;

/// Ranges that can be guarded at once (a VM has up to 8 regions, a memif peer up to 255).
pub const SLOTS: usize = 4096;

struct Slot {
    /// 1 while a guard holds the slot (claimed by compare-exchange).
    taken: AtomicUsize,
    start: AtomicUsize,
    /// 0 while the slot holds no range the handler may match.
    len: AtomicUsize,
    faults: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const EMPTY: Slot = Slot {
    taken: AtomicUsize::new(0),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    faults: AtomicU64::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
static INSTALL: Once = Once::new();
/// Faults repaired, over all ranges, since the process started.
static REPAIRED: AtomicU64 = AtomicU64::new(0);

/// A registered range; unregistered when dropped (before its memory is unmapped).
#[derive(Debug)]
pub struct Guard {
    slot: usize,
}

impl Guard {
    /// SIGBUS faults repaired in this range since it was registered.
    pub fn faults(&self) -> u64 {
        TABLE[self.slot].faults.load(Ordering::Relaxed)
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let s = &TABLE[self.slot];
        s.len.store(0, Ordering::Release);
        s.start.store(0, Ordering::Release);
        s.taken.store(0, Ordering::Release);
    }
}

/// Registers `len` bytes of peer memory mapped at `start` (installing the handler first if
/// no one has). None when every slot is taken or the range is empty: the memory is then
/// used unguarded.
pub fn guard(start: usize, len: usize) -> Option<Guard> {
    if len == 0 || start == 0 {
        return None;
    }
    install();
    for (i, s) in TABLE.iter().enumerate() {
        if s.taken
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            s.faults.store(0, Ordering::Relaxed);
            s.start.store(start, Ordering::Release);
            s.len.store(len, Ordering::Release);
            return Some(Guard { slot: i });
        }
    }
    None
}

/// SIGBUS faults repaired since the process started.
pub fn repaired() -> u64 {
    REPAIRED.load(Ordering::Relaxed)
}

/// Installs the SIGBUS handler (once per process).
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; we set the
        // handler and flags before passing it to sigaction, which copies it.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_sigbus;
            sa.sa_sigaction = handler as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
        }
    });
}

/// The handler: async-signal-safe (atomics and two system calls, mmap and signal).
extern "C" fn on_sigbus(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; si_addr is the
    // faulting address for SIGBUS.
    let addr = unsafe { (*info).si_addr() } as usize;
    for s in TABLE.iter() {
        let len = s.len.load(Ordering::Acquire);
        let start = s.start.load(Ordering::Acquire);
        if len == 0 || addr < start || addr - start >= len {
            continue;
        }
        // SAFETY: [start, start+len) is a mapping of peer memory its owner registered and
        // has not unregistered (it unregisters before unmapping); replacing it with private
        // anonymous memory keeps the addresses valid for every thread using them.
        let p = unsafe {
            libc::mmap(
                start as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            s.faults.fetch_add(1, Ordering::Relaxed);
            REPAIRED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        break;
    }
    // Not peer memory (or it could not be replaced): the default action, when the access
    // is retried on return.
    // SAFETY: resetting a signal's disposition is async-signal-safe.
    unsafe { libc::signal(libc::SIGBUS, libc::SIG_DFL) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shared mapping of a file that is then shrunk: reading past the new end would
    /// raise SIGBUS; guarded, it reads zeros and the fault is counted.
    #[test]
    fn a_shrunk_file_reads_zeros_instead_of_killing() {
        let len = 64 * 1024;
        // SAFETY: plain system calls on a descriptor and a mapping this test owns; the
        // mapping is read only while mapped and unmapped after the guard is dropped.
        unsafe {
            let fd = libc::memfd_create(c"peermem-test".as_ptr(), 0);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            let b = p as *mut u8;
            b.add(len - 1).write_volatile(7);
            let g = guard(p as usize, len).unwrap();
            assert_eq!(libc::ftruncate(fd, 0), 0);
            assert_eq!(b.add(len - 1).read_volatile(), 0);
            assert_eq!(g.faults(), 1);
            assert!(repaired() >= 1);
            drop(g);
            libc::munmap(p, len);
            libc::close(fd);
        }
    }
}
