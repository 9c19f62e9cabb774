//! A tap port: `/dev/net/tun` with `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`, so every frame read
//! or written carries a 10-byte `virtio_net_hdr`, and with checksum and TSO offloads
//! announced (`TUNSETOFFLOAD`), so the kernel hands over GSO super-frames and partial
//! checksums instead of segmenting and checksumming in software.
//!
//! A tap has no ring: one `read` per received frame and one `writev` per sent frame. Without
//! vhost-net (which this machine's kernel lacks: there is no /dev/vhost-net) that is the
//! tap's interface; af_packet ports, with their mmap'd rings, have no per-frame system call.
//!
//! Persistence: a tap opened with `persist` outlives its file descriptor (and so a vswitchd
//! restart); opening the same name again re-attaches to it, also after it was moved into a
//! pod's network namespace (open it there: [`TapConfig::netns`]). [`Tap::delete`] clears
//! persistence, so the interface goes when its last descriptor closes.
//!
//! Thread safety: a [`Tap`] is owned by one thread at a time (`Send`, not `Sync`); rx and tx
//! take `&mut self`.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use crate::error::{kernel, Error, Result};
use crate::sys;
use crate::vnet::{VnetHdr, VNET_HDR_LEN};

/// `TUN_F_CSUM`: we take frames with partial checksums.
pub const TUN_F_CSUM: u32 = 0x01;
/// `TUN_F_TSO4`: we take TCP/IPv4 GSO frames.
pub const TUN_F_TSO4: u32 = 0x02;
/// `TUN_F_TSO6`: we take TCP/IPv6 GSO frames.
pub const TUN_F_TSO6: u32 = 0x04;
/// `TUN_F_USO4`: we take UDP/IPv4 GSO frames (kernel 6.2 and later).
pub const TUN_F_USO4: u32 = 0x20;
/// `TUN_F_USO6`: we take UDP/IPv6 GSO frames (kernel 6.2 and later).
pub const TUN_F_USO6: u32 = 0x40;

const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;

// _IOW('T', nr, int): direction 1 (write) << 30 | size 4 << 16 | 'T' << 8 | nr.
const fn iow_t(nr: u64) -> u64 {
    (1 << 30) | (4 << 16) | ((b'T' as u64) << 8) | nr
}
const TUNSETIFF: u64 = iow_t(202);
const TUNSETPERSIST: u64 = iow_t(203);
const TUNSETOWNER: u64 = iow_t(204);
const TUNSETOFFLOAD: u64 = iow_t(208);
const TUNSETVNETHDRSZ: u64 = iow_t(216);

/// The largest frame read: a 64 KiB GSO frame with a VLAN tag the kernel puts back.
const MAX_FRAME: usize = 65536 + 4;

/// `struct ifreq` as TUNSETIFF reads and writes it: a name and flags.
#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// How [`Tap::open`] opens a tap.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TapConfig {
    /// `IFF_MULTI_QUEUE`: more than one descriptor (queue) may attach. Must match how the
    /// tap was created when re-attaching.
    pub multi_queue: bool,
    /// Keep the interface after the descriptor closes (`TUNSETPERSIST 1`).
    pub persist: bool,
    /// Let this uid attach too (`TUNSETOWNER`).
    pub owner: Option<u32>,
    /// Open in this network namespace (a file such as /run/netns/NAME or
    /// /proc/PID/ns/net) instead of the caller's: where a persistent tap moved into a pod's
    /// namespace is found again. The descriptor works from any thread afterwards.
    pub netns: Option<PathBuf>,
}

/// Counters of a [`Tap`]. Plain numbers, written by the owning thread only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TapStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames larger than the read buffer, or shorter than a vnet header: dropped.
    pub rx_truncated: u64,
    /// Reads that failed other than with "would block".
    pub rx_errors: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Writes refused with "would block".
    pub tx_full: u64,
    /// Writes that failed otherwise (EIO: the interface is down), and frames of more than
    /// [`MAX_PARTS`](crate::MAX_PARTS) parts.
    pub tx_errors: u64,
}

/// An open tap. See the module documentation.
#[derive(Debug)]
pub struct Tap {
    ifname: String,
    fd: OwnedFd,
    offloads: u32,
    /// One frame's read buffer: vnet header and frame.
    rx_buf: Box<[u8]>,
    stats: TapStats,
}

fn ioctl_val(fd: RawFd, req: u64, val: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the TUNSET* ioctls called with this helper take their argument by value.
    let r = unsafe { libc::ioctl(fd, req as _, val) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Runs `f` on a thread of its own that first joins the network namespace at `path`.
fn in_netns<T: Send>(ifname: &str, path: &Path, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let ns = File::open(path).map_err(kernel(ifname, "open of the network namespace"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on this short-lived thread only changes this thread's network
            // namespace; `ns` is an open namespace file.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } < 0 {
                return Err(Error::last(ifname, "setns(CLONE_NEWNET)"));
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| {
            Err(Error::Kernel {
                ifname: ifname.to_string(),
                op: "open in the network namespace",
                source: io::Error::other("the opening thread panicked"),
            })
        })
    })
}

impl Tap {
    /// Creates tap `name`, or attaches to the existing tap of that name, in the calling
    /// thread's network namespace or in `cfg.netns`.
    pub fn open(name: &str, cfg: &TapConfig) -> Result<Tap> {
        sys::ifname(name)?;
        match &cfg.netns {
            Some(path) => in_netns(name, path, || Tap::open_here(name, cfg)),
            None => Tap::open_here(name, cfg),
        }
    }

    fn open_here(name: &str, cfg: &TapConfig) -> Result<Tap> {
        let dev = c"/dev/net/tun";
        // SAFETY: open(2) of a NUL-terminated path; the result is checked and then owned.
        let raw = unsafe {
            libc::open(
                dev.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(Error::last(name, "open(/dev/net/tun)"));
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        let mut req = IfReq {
            name: sys::ifname(name)?,
            flags: IFF_TAP | IFF_NO_PI | IFF_VNET_HDR,
            _pad: [0; 22],
        };
        if cfg.multi_queue {
            req.flags |= IFF_MULTI_QUEUE;
        }
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `req` is laid out as
        // (40 bytes), live for the call.
        if unsafe { libc::ioctl(raw, TUNSETIFF as _, &mut req as *mut IfReq) } < 0 {
            return Err(Error::last(
                name,
                "TUNSETIFF(IFF_TAP|IFF_NO_PI|IFF_VNET_HDR)",
            ));
        }
        let ifname: String = req
            .name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8 as char)
            .collect();

        let hdr_sz: libc::c_int = VNET_HDR_LEN as libc::c_int;
        // SAFETY: TUNSETVNETHDRSZ reads an int through the pointer, live for the call.
        if unsafe { libc::ioctl(raw, TUNSETVNETHDRSZ as _, &hdr_sz as *const libc::c_int) } < 0 {
            return Err(Error::last(name, "TUNSETVNETHDRSZ(10)"));
        }
        let base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
        let with_uso = base | TUN_F_USO4 | TUN_F_USO6;
        let offloads = match ioctl_val(raw, TUNSETOFFLOAD, with_uso as libc::c_ulong) {
            Ok(()) => with_uso,
            // Kernels before 6.2 know no USO and refuse the whole set.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                ioctl_val(raw, TUNSETOFFLOAD, base as libc::c_ulong)
                    .map_err(kernel(name, "TUNSETOFFLOAD(CSUM|TSO4|TSO6)"))?;
                base
            }
            Err(e) => return Err(kernel(name, "TUNSETOFFLOAD(CSUM|TSO4|TSO6|USO4|USO6)")(e)),
        };
        if let Some(uid) = cfg.owner {
            ioctl_val(raw, TUNSETOWNER, uid as libc::c_ulong)
                .map_err(kernel(name, "TUNSETOWNER"))?;
        }
        let mut tap = Tap {
            ifname,
            fd,
            offloads,
            rx_buf: vec![0u8; VNET_HDR_LEN + MAX_FRAME].into_boxed_slice(),
            stats: TapStats::default(),
        };
        if cfg.persist {
            tap.set_persist(true)?;
        }
        Ok(tap)
    }

    /// The interface's name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The `TUN_F_*` offloads the kernel accepted (USO only on kernels that know it).
    pub fn offloads(&self) -> u32 {
        self.offloads
    }

    /// Makes the interface outlive its descriptors (`true`) or not (`TUNSETPERSIST`).
    pub fn set_persist(&mut self, on: bool) -> Result<()> {
        ioctl_val(self.fd.as_raw_fd(), TUNSETPERSIST, on as libc::c_ulong)
            .map_err(kernel(&self.ifname, "TUNSETPERSIST"))
    }

    /// Clears persistence and closes: the interface is removed (once no other queue of it
    /// is open).
    pub fn delete(mut self) -> Result<()> {
        self.set_persist(false)
    }

    /// Reads up to `max` frames, one `read` each, and hands each to `f` as (offload header,
    /// frame bytes). Stops early when nothing is waiting. No allocation.
    pub fn rx_burst(&mut self, max: usize, mut f: impl FnMut(VnetHdr, &[u8])) -> usize {
        let mut n = 0;
        while n < max {
            // SAFETY: read(2) into `rx_buf`, which has `len` writable bytes.
            let r = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.rx_buf.as_mut_ptr().cast(),
                    self.rx_buf.len(),
                )
            };
            if r < 0 {
                if !would_block(&io::Error::last_os_error()) {
                    self.stats.rx_errors += 1;
                }
                break;
            }
            let got = r as usize;
            // The kernel returns the frame's whole length even when it copied less.
            if got < VNET_HDR_LEN || got > self.rx_buf.len() {
                self.stats.rx_truncated += 1;
                continue;
            }
            let mut h = [0u8; VNET_HDR_LEN];
            h.copy_from_slice(&self.rx_buf[..VNET_HDR_LEN]);
            let frame = &self.rx_buf[VNET_HDR_LEN..got];
            n += 1;
            self.stats.rx_packets += 1;
            self.stats.rx_bytes += frame.len() as u64;
            f(VnetHdr::decode(&h), frame);
        }
        n
    }

    /// Writes one frame, made of `frame_parts` in order, with offload header `hdr` (one
    /// `writev`). Returns false when it was not taken (counted in `tx_full` / `tx_errors`).
    pub fn tx(&mut self, hdr: &VnetHdr, frame_parts: &[&[u8]]) -> bool {
        write_frame(self.fd.as_raw_fd(), hdr, frame_parts, &mut self.stats)
    }

    /// A send handle for another thread: a second descriptor of the same queue (writes on
    /// a tap descriptor are whole frames, so threads writing through their own handles
    /// never interleave).
    pub fn sender(&self) -> Result<TapTx> {
        let fd = self
            .fd
            .try_clone()
            .map_err(kernel(&self.ifname, "dup of the tap descriptor"))?;
        Ok(TapTx {
            fd,
            stats: TapStats::default(),
        })
    }

    /// The counters.
    pub fn stats(&self) -> TapStats {
        self.stats
    }
}

/// A tap's send handle ([`Tap::sender`]), owned by one thread.
#[derive(Debug)]
pub struct TapTx {
    fd: OwnedFd,
    stats: TapStats,
}

impl TapTx {
    /// As [`Tap::tx`].
    pub fn send(&mut self, hdr: &VnetHdr, frame_parts: &[&[u8]]) -> bool {
        write_frame(self.fd.as_raw_fd(), hdr, frame_parts, &mut self.stats)
    }

    /// Its counters (tx only).
    pub fn stats(&self) -> TapStats {
        self.stats
    }
}

/// One `writev` of `parts` behind the encoded `hdr` on tap descriptor `fd`, counted.
fn write_frame(fd: RawFd, hdr: &VnetHdr, parts: &[&[u8]], stats: &mut TapStats) -> bool {
    let vnet = hdr.encode();
    let Some(mut iov) = crate::sys::FrameIovecs::new(&vnet, parts) else {
        stats.tx_errors += 1;
        return false;
    };
    let len = iov.len;
    let io = iov.as_mut_slice();
    // SAFETY: `io` holds iovecs over `vnet` and `parts`, live and readable for the call;
    // the kernel only reads them during it.
    let r = unsafe { libc::writev(fd, io.as_ptr(), io.len() as libc::c_int) };
    if r < 0 {
        if would_block(&io::Error::last_os_error()) {
            stats.tx_full += 1;
        } else {
            stats.tx_errors += 1;
        }
        return false;
    }
    stats.tx_packets += 1;
    stats.tx_bytes += len as u64;
    true
}

fn would_block(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EAGAIN)
}

/// The tap's descriptor: poll it for POLLIN to sleep until a frame is waiting.
impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for Tap {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_uapi() {
        assert_eq!(TUNSETIFF, 0x4004_54ca);
        assert_eq!(TUNSETPERSIST, 0x4004_54cb);
        assert_eq!(TUNSETOWNER, 0x4004_54cc);
        assert_eq!(TUNSETOFFLOAD, 0x4004_54d0);
        assert_eq!(TUNSETVNETHDRSZ, 0x4004_54d8);
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }
}
