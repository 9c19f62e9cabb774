//! The kernel ABI both ports use: interface names, socket options, a shared mapping.
//! Constants are the uapi values (include/uapi/linux/if_packet.h, if_tun.h), spelled here so
//! the crate does not hang on which libc release exports which of them.

use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

use crate::error::{Error, Result};

pub(crate) const SOL_PACKET: libc::c_int = 263;
pub(crate) const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
pub(crate) const PACKET_RX_RING: libc::c_int = 5;
pub(crate) const PACKET_STATISTICS: libc::c_int = 6;
pub(crate) const PACKET_COPY_THRESH: libc::c_int = 7;
pub(crate) const PACKET_AUXDATA: libc::c_int = 8;
pub(crate) const PACKET_VERSION: libc::c_int = 10;
pub(crate) const PACKET_TX_RING: libc::c_int = 13;
pub(crate) const PACKET_LOSS: libc::c_int = 14;
pub(crate) const PACKET_VNET_HDR: libc::c_int = 15;
pub(crate) const PACKET_QDISC_BYPASS: libc::c_int = 20;
pub(crate) const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
pub(crate) const PACKET_MR_PROMISC: libc::c_ushort = 1;
pub(crate) const TPACKET_V2: libc::c_int = 1;
pub(crate) const ETH_P_ALL: u16 = 0x0003;

/// `struct tpacket_req` (the ring request of TPACKET_V1 / V2).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TpacketReq {
    pub block_size: u32,
    pub block_nr: u32,
    pub frame_size: u32,
    pub frame_nr: u32,
}

/// `struct tpacket_stats` (what `PACKET_STATISTICS` returns for TPACKET_V1 / V2; the kernel
/// zeroes its counts on each read).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TpacketStats {
    pub packets: u32,
    pub drops: u32,
}

/// `struct packet_mreq`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PacketMreq {
    pub ifindex: libc::c_int,
    pub kind: libc::c_ushort,
    pub alen: libc::c_ushort,
    pub address: [u8; 8],
}

/// An interface name as the kernel takes it: 1..=15 bytes, no NUL, '/' or whitespace.
pub(crate) fn ifname(name: &str) -> Result<[libc::c_char; libc::IFNAMSIZ]> {
    let bad = |why| Error::BadName {
        name: name.to_string(),
        why,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() >= libc::IFNAMSIZ {
        return Err(bad("longer than 15 bytes"));
    }
    if name
        .bytes()
        .any(|b| b == 0 || b == b'/' || b == b':' || b.is_ascii_whitespace())
    {
        return Err(bad("contains NUL, '/', ':' or whitespace"));
    }
    let mut out = [0 as libc::c_char; libc::IFNAMSIZ];
    for (o, b) in out.iter_mut().zip(name.bytes()) {
        *o = b as libc::c_char;
    }
    Ok(out)
}

/// The index of interface `name` in the calling thread's network namespace.
pub(crate) fn ifindex(name: &str) -> Result<u32> {
    ifname(name)?;
    let c = CString::new(name).map_err(|_| Error::BadName {
        name: name.to_string(),
        why: "contains NUL",
    })?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        return Err(Error::NotFound(name.to_string()));
    }
    Ok(idx)
}

/// `setsockopt(fd, level, opt, &v, sizeof v)` for a plain-data `v`.
pub(crate) fn setsockopt<T: Copy>(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    v: &T,
) -> io::Result<()> {
    // SAFETY: `v` points to `size_of::<T>()` readable bytes for the duration of the call;
    // the kernel copies them and keeps no pointer.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A shared read-write mapping of a file descriptor, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `fd` from offset 0, shared and writable.
    pub(crate) fn new(fd: RawFd, len: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh mapping chosen by the kernel (addr NULL): it aliases no Rust object.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Mapping { ptr, len })
    }

    /// The mapping's first byte.
    pub(crate) fn ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The `len` bytes of the mapping from `off`.
    ///
    /// # Safety
    /// `off + len` must not pass the mapping's end, and nothing else (the kernel included)
    /// may write those bytes while the slice lives.
    pub(crate) unsafe fn slice_mut(&mut self, off: usize, len: usize) -> &mut [u8] {
        debug_assert!(off.checked_add(len).is_some_and(|end| end <= self.len));
        // SAFETY: inside the mapping (the caller's guarantee), which lives as long as `self`
        // and is borrowed mutably for the slice's life; the caller guarantees no other writer.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(off), len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no reference into the
        // mapping outlives its owner (borrows of it are tied to `&mut` of the port).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// The iovecs of one frame handed to `sendmsg` / `writev`: its virtio-net header, then its
/// parts. They point into `vnet` and `parts`, which must stay alive (and unmoved) until the
/// system call that reads them returns.
pub(crate) struct FrameIovecs {
    iov: [libc::iovec; crate::MAX_PARTS + 1],
    n: usize,
    /// The frame's length (the parts', without the header).
    pub(crate) len: usize,
}

impl FrameIovecs {
    /// None for more than [`MAX_PARTS`](crate::MAX_PARTS) parts.
    pub(crate) fn new(vnet: &[u8; crate::VNET_HDR_LEN], parts: &[&[u8]]) -> Option<FrameIovecs> {
        if parts.len() > crate::MAX_PARTS {
            return None;
        }
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut iov = [empty; crate::MAX_PARTS + 1];
        iov[0] = libc::iovec {
            iov_base: vnet.as_ptr() as *mut libc::c_void,
            iov_len: vnet.len(),
        };
        let mut len = 0;
        for (v, p) in iov[1..].iter_mut().zip(parts) {
            *v = libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            };
            len += p.len();
        }
        Some(FrameIovecs {
            iov,
            n: parts.len() + 1,
            len,
        })
    }

    /// The iovecs in use.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [libc::iovec] {
        &mut self.iov[..self.n]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_sizes_match_the_uapi() {
        assert_eq!(std::mem::size_of::<TpacketReq>(), 16);
        assert_eq!(std::mem::size_of::<TpacketStats>(), 8);
        assert_eq!(std::mem::size_of::<PacketMreq>(), 16);
    }

    #[test]
    fn names() {
        assert!(ifname("veth0").is_ok());
        assert!(ifname("").is_err());
        assert!(ifname("a-very-long-name").is_err());
        assert!(ifname("a/b").is_err());
        assert!(matches!(
            ifindex("no-such-if-xyz"),
            Err(Error::NotFound(n)) if n == "no-such-if-xyz"
        ));
        assert_eq!(
            ifindex("nope0").unwrap_err().to_string(),
            "interface nope0 not found"
        );
    }
}
