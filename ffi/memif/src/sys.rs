//! The system calls memif needs, each wrapped once: SEQPACKET sockets with one descriptor
//! passed as SCM_RIGHTS, memfd regions sealed against shrinking, eventfds, shared mappings.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::msg::MSG_LEN;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all zeros is a valid value.
    let mut a: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    a.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let b = path.as_os_str().as_bytes();
    if b.is_empty() || b.len() >= a.sun_path.len() || b.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path empty, too long (107 bytes at most) or holding a NUL",
        ));
    }
    for (d, s) in a.sun_path.iter_mut().zip(b) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + b.len() + 1;
    Ok((a, len as libc::socklen_t))
}

fn seqpacket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let fd = cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A listening SEQPACKET socket bound at `path` (a filesystem socket) with mode `mode`.
pub fn listen(path: &Path, mode: u32) -> io::Result<OwnedFd> {
    let fd = seqpacket()?;
    let (a, len) = sockaddr(path)?;
    // SAFETY: `a` is a valid sockaddr_un of `len` bytes.
    cvt(unsafe { libc::bind(fd.as_raw_fd(), &a as *const _ as *const libc::sockaddr, len) })?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    // SAFETY: plain listen(2) on a socket we own.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 64) })?;
    Ok(fd)
}

/// Accepts one connection (non-blocking); None when there is none waiting.
pub fn accept(l: &OwnedFd) -> io::Result<Option<OwnedFd>> {
    // SAFETY: accept4 with no address buffer.
    let r = unsafe {
        libc::accept4(
            l.as_raw_fd(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: r is a fresh descriptor.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(r) }))
}

/// Connects to the listener at `path` (the connect itself completes at once for unix
/// sockets, or fails: no listener, refused, backlog full).
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let fd = seqpacket()?;
    let (a, len) = sockaddr(path)?;
    // SAFETY: `a` is a valid sockaddr_un of `len` bytes.
    cvt(unsafe { libc::connect(fd.as_raw_fd(), &a as *const _ as *const libc::sockaddr, len) })?;
    Ok(fd)
}

/// Sends one message, with `fd` as SCM_RIGHTS if given.
pub fn send_msg(sock: &OwnedFd, msg: &[u8; MSG_LEN], fd: Option<RawFd>) -> io::Result<()> {
    let mut iov = libc::iovec {
        iov_base: msg.as_ptr() as *mut libc::c_void,
        iov_len: MSG_LEN,
    };
    // u64 words keep the control buffer aligned for cmsghdr.
    let mut ctl = [0u64; 4];
    // SAFETY: msghdr is plain old data; all zeros is valid.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    if let Some(fd) = fd {
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
        mh.msg_control = ctl.as_mut_ptr() as *mut libc::c_void;
        mh.msg_controllen = space;
        // SAFETY: the control buffer (32 bytes) holds one cmsghdr with one int (24 bytes);
        // CMSG_FIRSTHDR / CMSG_DATA point inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&mh);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, fd);
        }
    }
    // SAFETY: mh points at live buffers of the stated lengths.
    let n = unsafe {
        libc::sendmsg(
            sock.as_raw_fd(),
            &mh,
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize != MSG_LEN {
        return Err(io::Error::other("short send"));
    }
    Ok(())
}

/// What one receive gave.
pub enum Received {
    /// A message of exactly [`MSG_LEN`] bytes and the descriptors that came with it (all
    /// of them owned, so extras are closed).
    Msg(Box<[u8; MSG_LEN]>, Vec<OwnedFd>),
    /// A message of another length (or truncated).
    BadLength(usize),
    /// Nothing waiting.
    Empty,
    /// The peer closed the connection.
    Closed,
}

/// Receives one message (non-blocking).
pub fn recv_msg(sock: &OwnedFd) -> io::Result<Received> {
    let mut buf = Box::new([0u8; MSG_LEN]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: MSG_LEN,
    };
    // Room for a few descriptors: a peer sending more than one has them closed.
    let mut ctl = [0u64; 16];
    // SAFETY: msghdr is plain old data; all zeros is valid.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl.as_mut_ptr() as *mut libc::c_void;
    mh.msg_controllen = std::mem::size_of_val(&ctl);
    // SAFETY: mh points at live buffers of the stated lengths.
    let n = unsafe {
        libc::recvmsg(
            sock.as_raw_fd(),
            &mut mh,
            libc::MSG_CMSG_CLOEXEC | libc::MSG_DONTWAIT,
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(Received::Empty),
            _ => Err(e),
        };
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control messages the kernel wrote into `ctl`, within
    // msg_controllen; each SCM_RIGHTS payload is an array of ints, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c);
                let bytes = (*c).cmsg_len - (data as usize - c as usize);
                let k = bytes / std::mem::size_of::<RawFd>();
                for i in 0..k {
                    let fd = std::ptr::read_unaligned((data as *const RawFd).add(i));
                    if fd >= 0 {
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    if n == 0 {
        return Ok(Received::Closed);
    }
    if n as usize != MSG_LEN || mh.msg_flags & libc::MSG_TRUNC != 0 {
        return Ok(Received::BadLength(n as usize));
    }
    Ok(Received::Msg(buf, fds))
}

/// A memfd of `size` bytes sealed against shrinking (and against further seals), as the
/// memif client makes its regions.
pub fn memfd(name: &str, size: u64) -> io::Result<OwnedFd> {
    memfd_with(name, size, 0)
}

/// [`memfd`] on the default hugepage size (MFD_HUGETLB; `size` a multiple of it), when the
/// system has hugepages free.
pub fn memfd_huge(name: &str, size: u64) -> io::Result<OwnedFd> {
    memfd_with(name, size, libc::MFD_HUGETLB)
}

fn memfd_with(name: &str, size: u64, flags: libc::c_uint) -> io::Result<OwnedFd> {
    let cname = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: memfd_create with a NUL-terminated name.
    let fd = cvt(unsafe {
        libc::memfd_create(
            cname.as_ptr(),
            libc::MFD_ALLOW_SEALING | libc::MFD_CLOEXEC | flags,
        )
    })?;
    // SAFETY: fd is fresh.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ftruncate / fcntl on a descriptor we own.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), size as libc::off_t) })?;
    // SAFETY: as above.
    cvt(unsafe {
        libc::fcntl(
            fd.as_raw_fd(),
            libc::F_ADD_SEALS,
            libc::F_SEAL_SHRINK | libc::F_SEAL_SEAL,
        )
    })?;
    Ok(fd)
}

/// The size of the file behind `fd` and whether it is sealed against shrinking.
pub fn file_size_and_sealed(fd: &OwnedFd) -> io::Result<(u64, bool)> {
    // SAFETY: stat is plain old data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat on a descriptor we own into a live struct.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    // SAFETY: F_GET_SEALS reads only; -1 (EINVAL) for files that cannot be sealed.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    let sealed = seals >= 0 && seals & libc::F_SEAL_SHRINK != 0;
    Ok((st.st_size.max(0) as u64, sealed))
}

/// A non-blocking eventfd.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain eventfd(2).
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) })?;
    // SAFETY: fd is fresh.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Adds 1 to an eventfd (a kick). Errors (the counter full) are ignored: the reader wakes
/// anyway.
#[inline]
pub fn kick(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64.
    let _ = unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
}

/// Reads (and so resets) an eventfd's counter; 0 if it was 0.
#[inline]
pub fn drain(fd: RawFd) -> u64 {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64.
    let n = unsafe { libc::read(fd, &mut v as *mut u64 as *mut libc::c_void, 8) };
    if n == 8 {
        v
    } else {
        0
    }
}

/// A shared read-write mapping of a whole region; unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access goes through raw pointers whose
// users (the rings and queues) state their own rules.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` from offset 0, shared, read-write.
    pub fn map(fd: &OwnedFd, len: usize) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty region"));
        }
        // SAFETY: a fresh shared mapping chosen by the kernel; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            ptr: p as *mut u8,
            len,
        })
    }

    pub fn ptr(&self) -> *mut u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `map` mapped; nobody uses it any more (its owners
        // hold it in an Arc that is being dropped).
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

/// poll(2) over `fds` for up to `timeout_ms`; EINTR counts as nothing ready.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> io::Result<usize> {
    // SAFETY: fds is a live array of pollfd of the given length.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(e);
    }
    Ok(r as usize)
}
