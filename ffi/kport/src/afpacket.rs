//! An AF_PACKET port: one socket bound to an interface (veth, macvlan, NIC) with a
//! TPACKET_V2 rx ring and tx ring, both mmap'd, and virtio-net headers on every frame so
//! checksum-partial and GSO frames pass with their offload state.
//!
//! Why these choices:
//! - TPACKET_V2 rx (fixed-size slots, a status word per slot): each frame is user space's as
//!   soon as the kernel has written it, so a ping or a TCP request waits for no timer.
//!   (TPACKET_V3 packs frames into blocks and hands a block over only when it is full or
//!   its retire timer fires: jiffy granularity, 1 ms asked is up to 4 ms with HZ=250.)
//! - `PACKET_COPY_THRESH` for frames longer than a slot (GSO super-frames of up to 64 KiB
//!   with the default 2 KiB slots): the kernel queues the whole frame on the socket and
//!   marks the slot `TP_STATUS_COPY`; `rx_burst` reads it with one `recvmsg` into the
//!   port's copy buffer, in slot order (see `copy.rs`). Slots stay small, so the ring stays
//!   small, and the cost (a system call and a copy) falls on frames carrying ~44 segments.
//!   The whole frames wait in the socket's receive buffer, sized by
//!   [`AfPacketConfig::rx_copy_queue_bytes`]; when it is full the kernel only cuts the frame
//!   into the slot, and the port drops it (`rx_truncated`).
//! - `PACKET_VNET_HDR`: the kernel leaves GSO frames whole and checksums partial and says so
//!   in a `virtio_net_hdr` in front of the frame; without it it would segment and checksum
//!   in software before handing frames over.
//! - The tx ring is on the same socket, so it is a TPACKET_V2 ring too (the version is one
//!   per socket): fixed-size slots of `tx_frame_size` bytes, the frame at byte 32. This is
//!   what the V3 tx ring was already (V3 tx slots are fixed-size, with a 48-byte header);
//!   keeping one socket keeps the kick, `PACKET_QDISC_BYPASS`, `PACKET_IGNORE_OUTGOING` and
//!   the descriptor to poll exactly as they were, where a second socket for a V3 tx ring
//!   would have brought a second mapping and descriptor for no gain. A frame that does not
//!   fit a slot (a GSO frame, with the default 2 KiB slots) is sent at once through a
//!   second, ring-less AF_PACKET socket bound to the same interface with one `sendmsg`
//!   (after kicking what the ring holds, to keep order): a system call per ~44 segments of
//!   payload carried, where a ring of 64 KiB slots would cost 64 KiB per slot per port; with
//!   `tx_frame_size = 65536` every frame up to 65,494 bytes (every TCP TSO frame the kernel
//!   builds) goes through the ring instead.
//! - `PACKET_QDISC_BYPASS`: a switch port queues in its own rings, not in a qdisc.
//! - `PACKET_IGNORE_OUTGOING`: the rx ring does not see the port's own tx.
//! - `PACKET_LOSS`: a tx slot the kernel cannot parse is dropped and freed, instead of
//!   stopping the ring at that slot.
//!
//! Memory per port with the default [`AfPacketConfig`]: the rx ring, `rx_frame_count` slots
//! of `rx_frame_size` (512 * 2 KiB = 1 MiB), and the tx ring, `tx_frame_count` slots of
//! `tx_frame_size` (256 * 2 KiB = 512 KiB), each in blocks of at least 64 KiB: 1.5 MiB of
//! pinned kernel memory mapped into the process ([`AfPacketConfig::ring_bytes`] computes
//! it); the copy buffer, 65,549 bytes of heap (a 65,535-byte frame, its vnet header and room
//! for a tag); and, only while whole frames wait for the copy path, about
//! `rx_copy_queue_bytes` (4 MiB; the kernel queues a frame while less than that is charged,
//! so it may pass it by one frame) of kernel memory charged to the socket.
//!
//! Thread safety: an [`AfPacket`] is owned by one thread at a time for rx and tx, which take
//! `&mut self`. It is `Sync` for what takes `&self` (names, the descriptor,
//! [`AfPacket::kernel_drops`]): none of that touches the rings. The kernel is the other
//! party of the rings, through the status words only (acquire loads, release stores).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::copy::{self, CmsgBuf, Copied};
use crate::error::{kernel, Error, Result};
use crate::slot::{self, Slot, TP_STATUS_KERNEL, TP_STATUS_USER};
use crate::sys::{self, Mapping, PacketMreq, TpacketReq, TpacketStats};
use crate::vnet::{VnetHdr, VNET_HDR_LEN};

/// The smallest block of either ring: smaller slots are packed into blocks of this size.
const MIN_BLOCK: usize = 64 << 10;
/// The largest slot of either ring.
const MAX_FRAME: u32 = 4 << 20;
/// The smallest rx slot: the frame starts 76 bytes into its slot; below this nearly every
/// frame would take the copy path.
const MIN_RX_FRAME: u32 = 256;

/// tx slot status words (`tp_status` of a tx frame).
const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_SENDING: u32 = 1 << 1;

/// Ring sizes for [`AfPacket::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Bytes per rx slot, a multiple of 16 in 256..=4 MiB. A slot holds a frame of
    /// `rx_frame_size - 76` bytes (1972 for 2048: a 1500-MTU frame with an 802.1Q tag fits);
    /// longer frames take the copy path.
    pub rx_frame_size: u32,
    /// rx slots (rounded up to fill the last rx block).
    pub rx_frame_count: u32,
    /// The socket's receive buffer (`SO_RCVBUF`): how much kernel memory (the frames'
    /// truesize) whole frames waiting for the copy path may hold; a frame longer than a slot
    /// that finds it full is dropped (`rx_truncated`). Set with `SO_RCVBUFFORCE`, or, without
    /// CAP_NET_ADMIN, `SO_RCVBUF` (which the kernel caps at `net.core.rmem_max`). 0 keeps
    /// the system default (`net.core.rmem_default`, 208 KiB: about 3 GSO frames).
    pub rx_copy_queue_bytes: u32,
    /// Bytes per tx slot, a multiple of 16: holds the 32-byte frame header, the 10-byte vnet
    /// header and a frame of `tx_frame_size - 42` bytes.
    pub tx_frame_size: u32,
    /// tx slots (rounded up to fill the last tx block).
    pub tx_frame_count: u32,
    /// Put the interface in promiscuous mode (a switch port takes every frame).
    pub promisc: bool,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig {
            rx_frame_size: 2048,
            rx_frame_count: 512,
            rx_copy_queue_bytes: 4 << 20,
            tx_frame_size: 2048,
            tx_frame_count: 256,
            promisc: true,
        }
    }
}

impl AfPacketConfig {
    /// Bytes of ring memory a port with this configuration maps (rx and tx), exactly.
    pub fn ring_bytes(&self) -> Result<usize> {
        Ok(Geometry::new(self)?.total())
    }
}

/// One ring's layout: `frame_nr` slots of `frame_size` bytes in `block_nr` blocks of
/// `block_size`; a slot never crosses a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ring {
    block_size: usize,
    block_nr: usize,
    frame_size: usize,
    frames_per_block: usize,
    frame_nr: usize,
}

impl Ring {
    /// The smallest ring of at least `count` slots of `size` bytes (a multiple of 16, the
    /// kernel's TPACKET_ALIGNMENT) in blocks of a power of two (the kernel allocates them in
    /// powers of two pages), at least [`MIN_BLOCK`].
    fn new(what: &str, size: u32, count: u32, min: u32) -> Result<Ring> {
        if size % 16 != 0 || size < min || size > MAX_FRAME {
            return Err(Error::Config(format!(
                "{what}_frame_size {size} must be a multiple of 16 in {min}..={MAX_FRAME}"
            )));
        }
        if count == 0 {
            return Err(Error::Config(format!("{what}_frame_count must be >= 1")));
        }
        let frame_size = size as usize;
        let block_size = frame_size.next_power_of_two().max(MIN_BLOCK);
        let frames_per_block = block_size / frame_size;
        let block_nr = (count as usize).div_ceil(frames_per_block);
        Ok(Ring {
            block_size,
            block_nr,
            frame_size,
            frames_per_block,
            frame_nr: block_nr * frames_per_block,
        })
    }

    fn bytes(&self) -> Option<usize> {
        self.block_size.checked_mul(self.block_nr)
    }

    /// Offset of slot `i` from the ring's start.
    fn slot(&self, i: usize) -> usize {
        (i / self.frames_per_block) * self.block_size
            + (i % self.frames_per_block) * self.frame_size
    }

    fn req(&self) -> TpacketReq {
        TpacketReq {
            block_size: self.block_size as u32,
            block_nr: self.block_nr as u32,
            frame_size: self.frame_size as u32,
            frame_nr: self.frame_nr as u32,
        }
    }
}

/// Where the rings sit in the mapping: the rx ring, then the tx ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    rx: Ring,
    tx: Ring,
    /// Bytes of the rx ring: where the tx ring starts.
    rx_bytes: usize,
}

impl Geometry {
    fn new(c: &AfPacketConfig) -> Result<Geometry> {
        let rx = Ring::new("rx", c.rx_frame_size, c.rx_frame_count, MIN_RX_FRAME)?;
        let min_tx = (slot::HDR_LEN + VNET_HDR_LEN + 64).next_multiple_of(16) as u32;
        let tx = Ring::new("tx", c.tx_frame_size, c.tx_frame_count, min_tx)?;
        let fits = rx
            .bytes()
            .zip(tx.bytes())
            .and_then(|(r, t)| r.checked_add(t).map(|total| (r, total)))
            .filter(|&(_, total)| total <= u32::MAX as usize);
        let Some((rx_bytes, _)) = fits else {
            return Err(Error::Config("rings larger than 4 GiB".into()));
        };
        Ok(Geometry { rx, tx, rx_bytes })
    }

    fn total(&self) -> usize {
        self.rx_bytes + self.tx.block_size * self.tx.block_nr
    }

    /// Offset of rx slot `i` in the mapping.
    fn rx_slot(&self, i: usize) -> usize {
        self.rx.slot(i)
    }

    /// Offset of tx slot `i` in the mapping.
    fn tx_slot(&self, i: usize) -> usize {
        self.rx_bytes + self.tx.slot(i)
    }

    /// The largest frame (vnet header not counted) a tx slot holds.
    fn tx_capacity(&self) -> usize {
        self.tx.frame_size - slot::HDR_LEN - VNET_HDR_LEN
    }
}

/// Counters of an [`AfPacket`]. Plain numbers, written by the owning thread only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfPacketStats {
    /// Frames handed to the rx callback, and their bytes (VLAN tags included).
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Of `rx_packets`, frames longer than a slot read whole from the socket (copy path).
    pub rx_copied: u64,
    /// Frames the kernel cut to fit a slot and kept no whole copy of (the socket's receive
    /// buffer was full), or longer than the copy buffer: dropped.
    pub rx_truncated: u64,
    /// Slot headers pointing outside their slot: dropped.
    pub rx_malformed: u64,
    /// Copy-path slots whose frame the socket did not give (the read failed, or gave a
    /// frame of another length): dropped.
    pub rx_copy_errors: u64,
    /// Frames the kernel dropped because the ring was full (`tpacket_stats.tp_drops`),
    /// summed over every read ([`AfPacket::stats`] and [`AfPacket::kernel_drops`]).
    pub rx_kernel_drops: u64,
    /// Frames handed to the kernel (ring slots and side-socket sends), and their bytes.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames refused because the next slot was still the kernel's (or the side socket
    /// would block).
    pub tx_full: u64,
    /// Frames too big for a slot, sent through the side socket.
    pub tx_oversize: u64,
    /// Failed kicks and sends (other than "would block"), and frames of more than
    /// [`MAX_PARTS`](crate::MAX_PARTS) parts too big for a slot.
    pub tx_errors: u64,
}

/// The copy path's frame buffer ([`copy::BUF_LEN`] bytes) and control-message buffer.
struct CopyBuf {
    frame: Box<[u8]>,
    ctl: CmsgBuf,
}

impl std::fmt::Debug for CopyBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CopyBuf({} bytes)", self.frame.len())
    }
}

/// An AF_PACKET port with mmap'd TPACKET_V2 rings. See the module documentation.
#[derive(Debug)]
pub struct AfPacket {
    ifname: String,
    ifindex: u32,
    geo: Geometry,
    map: Mapping,
    fd: OwnedFd,
    /// A ring-less socket on the same interface for frames larger than a tx slot.
    side: AfPacketTx,
    /// The rx slot to read next.
    rx_head: usize,
    copy: CopyBuf,
    /// The tx slot to fill next; slots filled since the last kick.
    tx_head: usize,
    tx_pending: usize,
    stats: AfPacketStats,
    /// The kernel's ring drops summed over every `PACKET_STATISTICS` read (any thread).
    kernel_drops: AtomicU64,
}

// SAFETY: the mapping is memory owned by this value alone (the kernel is the only other
// party and synchronises through the status words); nothing in it is tied to a thread.
unsafe impl Send for AfPacket {}

// SAFETY: every method taking `&self` reads fields that never change after `open` (names,
// geometry, the descriptor), makes a system call on the descriptor, or updates the atomic
// `kernel_drops`; everything that reads or writes the rings or the plain counters takes
// `&mut self`, so shared references on several threads never race on them.
unsafe impl Sync for AfPacket {}

/// A nonblocking, close-on-exec AF_PACKET raw socket with no protocol yet (so it queues
/// nothing before it is bound).
fn packet_socket(ifname: &str) -> Result<OwnedFd> {
    // SAFETY: plain socket(2); the returned descriptor is checked and then owned.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(Error::last(ifname, "socket(AF_PACKET)"));
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: RawFd, ifname: &str, ifindex: u32, protocol: u16) -> Result<()> {
    // SAFETY: all-zero is a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: `sll` is a valid sockaddr_ll of the size passed.
    let r = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(Error::last(ifname, "bind"));
    }
    Ok(())
}

fn opt<T: Copy>(fd: RawFd, ifname: &str, op: &'static str, name: libc::c_int, v: &T) -> Result<()> {
    sys::setsockopt(fd, sys::SOL_PACKET, name, v).map_err(kernel(ifname, op))
}

/// Sizes the socket's receive buffer to `bytes` (the kernel doubles what it is given, for
/// its bookkeeping, so half is asked): `SO_RCVBUFFORCE`, or `SO_RCVBUF` without the right to.
fn set_rcvbuf(fd: RawFd, ifname: &str, bytes: u32) -> Result<()> {
    let half = libc::c_int::try_from(bytes / 2).unwrap_or(libc::c_int::MAX);
    let forced = sys::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &half);
    match forced {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            sys::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &half)
                .map_err(kernel(ifname, "SO_RCVBUF"))
        }
        r => r.map_err(kernel(ifname, "SO_RCVBUFFORCE")),
    }
}

/// The status word at byte `off` of the rings.
///
/// # Safety
/// `off` must be the offset of a slot of the rings `map` holds (slots are 16-aligned, so
/// the word is 4-aligned and inside the mapping).
unsafe fn status_word(map: &Mapping, off: usize) -> &AtomicU32 {
    // SAFETY: the caller guarantees `off` is a slot's start inside the mapping, 4-aligned;
    // the kernel accesses the word only as a whole (READ_ONCE / store after smp_wmb).
    unsafe { AtomicU32::from_ptr(map.ptr().add(off + slot::field::STATUS.start).cast()) }
}

/// A socket with its options and rings made but bound to no interface yet
/// ([`AfPacket::prepare`]): protocol 0, so it receives nothing. Setting up each ring waits
/// for a network RCU grace period in the kernel (`synchronize_net` in `packet_set_ring`: a
/// scheduler tick or more, 5-20 ms here), which [`Prepared::bind`] does not: a switch keeps
/// a few prepared ahead, so adding a port costs a bind.
#[derive(Debug)]
pub struct Prepared {
    cfg: AfPacketConfig,
    geo: Geometry,
    map: Mapping,
    fd: OwnedFd,
}

// SAFETY: as for AfPacket: the mapping is memory owned by this value alone (the socket is
// bound to nothing, so the kernel writes nothing into it yet); nothing is tied to a thread.
unsafe impl Send for Prepared {}

impl Prepared {
    /// The configuration it was prepared with.
    pub fn config(&self) -> &AfPacketConfig {
        &self.cfg
    }

    /// Binds it to interface `ifname` (in the network namespace the socket was made in):
    /// the port.
    pub fn bind(self, ifname: &str) -> Result<AfPacket> {
        let Prepared { cfg, geo, map, fd } = self;
        let ifindex = sys::ifindex(ifname)?;
        let raw = fd.as_raw_fd();
        bind(raw, ifname, ifindex, sys::ETH_P_ALL)?;
        if cfg.promisc {
            let mreq = PacketMreq {
                ifindex: ifindex as i32,
                kind: sys::PACKET_MR_PROMISC,
                ..PacketMreq::default()
            };
            opt(
                raw,
                ifname,
                "PACKET_ADD_MEMBERSHIP(PROMISC)",
                sys::PACKET_ADD_MEMBERSHIP,
                &mreq,
            )?;
        }

        // A send-only socket (protocol 0: it queues nothing) for frames too big for a slot.
        let side = AfPacketTx::open(ifname)?;

        Ok(AfPacket {
            ifname: ifname.to_string(),
            ifindex,
            geo,
            map,
            fd,
            side,
            rx_head: 0,
            copy: CopyBuf {
                frame: vec![0u8; copy::BUF_LEN].into_boxed_slice(),
                ctl: CmsgBuf([0; 64]),
            },
            tx_head: 0,
            tx_pending: 0,
            stats: AfPacketStats::default(),
            kernel_drops: AtomicU64::new(0),
        })
    }
}

impl AfPacket {
    /// Opens a port on interface `ifname` (in the calling thread's network namespace):
    /// [`AfPacket::prepare`] then [`Prepared::bind`].
    pub fn open(ifname: &str, cfg: &AfPacketConfig) -> Result<AfPacket> {
        Self::prepare(cfg)?.bind(ifname)
    }

    /// A socket with its options and rings, bound to no interface yet (in the calling
    /// thread's network namespace). Errors name no interface: "(unbound)".
    pub fn prepare(cfg: &AfPacketConfig) -> Result<Prepared> {
        let ifname = "(unbound)";
        let geo = Geometry::new(cfg)?;
        let fd = packet_socket(ifname)?;
        let raw = fd.as_raw_fd();
        let one: libc::c_int = 1;
        // Version and vnet header first: the kernel refuses both once a ring exists.
        opt(
            raw,
            ifname,
            "PACKET_VERSION=TPACKET_V2",
            sys::PACKET_VERSION,
            &sys::TPACKET_V2,
        )?;
        opt(raw, ifname, "PACKET_VNET_HDR", sys::PACKET_VNET_HDR, &one)?;
        opt(raw, ifname, "PACKET_LOSS", sys::PACKET_LOSS, &one)?;
        opt(
            raw,
            ifname,
            "PACKET_COPY_THRESH",
            sys::PACKET_COPY_THRESH,
            &one,
        )?;
        opt(raw, ifname, "PACKET_AUXDATA", sys::PACKET_AUXDATA, &one)?;
        opt(
            raw,
            ifname,
            "PACKET_QDISC_BYPASS",
            sys::PACKET_QDISC_BYPASS,
            &one,
        )?;
        opt(
            raw,
            ifname,
            "PACKET_IGNORE_OUTGOING",
            sys::PACKET_IGNORE_OUTGOING,
            &one,
        )?;
        if cfg.rx_copy_queue_bytes != 0 {
            set_rcvbuf(raw, ifname, cfg.rx_copy_queue_bytes)?;
        }
        opt(
            raw,
            ifname,
            "PACKET_RX_RING",
            sys::PACKET_RX_RING,
            &geo.rx.req(),
        )?;
        opt(
            raw,
            ifname,
            "PACKET_TX_RING",
            sys::PACKET_TX_RING,
            &geo.tx.req(),
        )?;
        let map = Mapping::new(raw, geo.total()).map_err(kernel(ifname, "mmap of the rings"))?;
        Ok(Prepared {
            cfg: cfg.clone(),
            geo,
            map,
            fd,
        })
    }

    /// The interface's name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface's index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The largest frame a tx slot holds; larger ones go through the side socket.
    pub fn tx_slot_capacity(&self) -> usize {
        self.geo.tx_capacity()
    }

    /// Bytes of ring memory this port maps.
    pub fn ring_bytes(&self) -> usize {
        self.map.len()
    }

    /// Hands up to `max` received frames to `f` as (offload header, frame bytes), the frame
    /// as it was on the wire (an 802.1Q tag the kernel took out is put back), in the order
    /// the kernel received them. Returns how many. Looks at `max` slots at most (a dropped
    /// frame uses one up). A frame in a ring slot is read in place, and the slot goes back
    /// to the kernel right after `f` returns: no system call, no allocation. A frame longer
    /// than a slot costs one `recvmsg` into the port's copy buffer.
    pub fn rx_burst(&mut self, max: usize, mut f: impl FnMut(VnetHdr, &[u8])) -> usize {
        let mut n = 0;
        for _ in 0..max {
            let i = self.rx_head;
            let off = self.geo.rx_slot(i);
            // SAFETY: `off` is rx slot `i`'s start.
            let status = unsafe { status_word(&self.map, off) };
            if status.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                break;
            }
            // SAFETY: the slot is user space's (TP_STATUS_USER seen with acquire), so the
            // kernel writes none of it until it is released below, after the last use of
            // the slice; `off + frame_size` is inside the rx ring.
            let bytes = unsafe { self.map.slice_mut(off, self.geo.rx.frame_size) };
            match slot::parse(bytes) {
                Slot::Frame(h, d) => {
                    n += 1;
                    self.stats.rx_packets += 1;
                    self.stats.rx_bytes += d.len() as u64;
                    f(h, d);
                }
                Slot::Copy { len, vlan } => {
                    let c = &mut self.copy;
                    let got = copy::recv(self.fd.as_raw_fd(), &mut c.frame, &mut c.ctl);
                    let res = match got {
                        Ok((got, trunc, ctl_len)) => {
                            let tag = copy::auxdata_vlan(&c.ctl.0[..ctl_len]).unwrap_or(vlan);
                            copy::frame(&mut c.frame, got, trunc, len, tag)
                        }
                        Err(_) => Copied::Mismatch,
                    };
                    match res {
                        Copied::Frame(h, r) => {
                            let d = &c.frame[r];
                            n += 1;
                            self.stats.rx_packets += 1;
                            self.stats.rx_copied += 1;
                            self.stats.rx_bytes += d.len() as u64;
                            f(h, d);
                        }
                        Copied::Truncated => self.stats.rx_truncated += 1,
                        Copied::Mismatch => self.stats.rx_copy_errors += 1,
                    }
                }
                Slot::Truncated => self.stats.rx_truncated += 1,
                Slot::Malformed => self.stats.rx_malformed += 1,
            }
            // SAFETY: as above.
            let status = unsafe { status_word(&self.map, off) };
            status.store(TP_STATUS_KERNEL, Ordering::Release);
            self.rx_head = (i + 1) % self.geo.rx.frame_nr;
        }
        n
    }

    /// Queues one frame, made of `frame_parts` in order, with offload header `hdr`: copies it
    /// into the next tx slot. Returns false (and counts `tx_full`) when that slot is still
    /// the kernel's. Nothing is sent before [`tx_flush`](Self::tx_flush).
    ///
    /// A frame larger than [`tx_slot_capacity`](Self::tx_slot_capacity) is sent at once
    /// through the side socket (after a kick of the queued frames, to keep their order):
    /// up to two system calls, counted in `tx_oversize`.
    pub fn tx_queue(&mut self, hdr: &VnetHdr, frame_parts: &[&[u8]]) -> bool {
        let len: usize = frame_parts.iter().map(|p| p.len()).sum();
        if len > self.geo.tx_capacity() {
            return self.tx_oversize(hdr, frame_parts);
        }
        let i = self.tx_head;
        let off = self.geo.tx_slot(i);
        // SAFETY: `off` is tx slot `i`'s start.
        let status = unsafe { status_word(&self.map, off) }.load(Ordering::Acquire);
        if status & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING) != 0 {
            self.stats.tx_full += 1;
            return false;
        }
        if status != TP_STATUS_AVAILABLE {
            // TP_STATUS_WRONG_FORMAT: a frame the kernel refused; the slot is ours again.
            self.stats.tx_errors += 1;
        }
        // SAFETY: the slot is available, so the kernel reads none of it but its status word
        // until we store SEND_REQUEST below, after the last use of the slice;
        // `off + frame_size` is inside the tx ring.
        let s = unsafe { self.map.slice_mut(off, self.geo.tx.frame_size) };
        // The data area [32, 32 + 10 + len) is inside the slot (len <= tx_capacity); the
        // header words written are apart from the status word.
        let data = &mut s[slot::HDR_LEN..slot::HDR_LEN + VNET_HDR_LEN + len];
        data[..VNET_HDR_LEN].copy_from_slice(&hdr.encode());
        let mut at = VNET_HDR_LEN;
        for p in frame_parts {
            data[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        let tp_len = ((VNET_HDR_LEN + len) as u32).to_ne_bytes();
        s[slot::field::LEN].copy_from_slice(&tp_len);
        s[slot::field::SNAPLEN].copy_from_slice(&tp_len);
        // SAFETY: as above.
        unsafe { status_word(&self.map, off) }.store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.tx_head = (i + 1) % self.geo.tx.frame_nr;
        self.tx_pending += 1;
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
        true
    }

    /// Sends a frame larger than a slot through the side socket.
    fn tx_oversize(&mut self, hdr: &VnetHdr, parts: &[&[u8]]) -> bool {
        if self.tx_flush().is_err() {
            self.stats.tx_errors += 1;
            return false;
        }
        let before = self.side.stats;
        let sent = self.side.send(hdr, parts);
        let after = self.side.stats;
        self.stats.tx_packets += after.tx_packets - before.tx_packets;
        self.stats.tx_bytes += after.tx_bytes - before.tx_bytes;
        self.stats.tx_oversize += after.tx_packets - before.tx_packets;
        self.stats.tx_full += after.tx_full - before.tx_full;
        self.stats.tx_errors += after.tx_errors - before.tx_errors;
        sent
    }

    /// Kicks the kernel to send every queued frame: one `sendto(MSG_DONTWAIT)`, none when
    /// nothing is queued. "Would block" (the device queue is full) is not an error: the
    /// frames stay queued for the next kick.
    pub fn tx_flush(&mut self) -> io::Result<()> {
        if self.tx_pending == 0 {
            return Ok(());
        }
        // SAFETY: sendto with no buffer and no address is the documented tx ring kick.
        let r = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                std::ptr::null(),
                0,
                libc::MSG_DONTWAIT,
                std::ptr::null(),
                0,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if would_block(&e) {
                return Ok(());
            }
            self.stats.tx_errors += 1;
            return Err(e);
        }
        self.tx_pending = 0;
        Ok(())
    }

    /// Frames the kernel dropped because the rx ring was full since the previous read (by
    /// this or [`stats`](Self::stats): the kernel zeroes its count on each read). One
    /// `getsockopt(PACKET_STATISTICS)`; takes `&self`, so a thread other than the one
    /// running rx may call it.
    pub fn kernel_drops(&self) -> io::Result<u64> {
        let drops = read_drops(self.fd.as_raw_fd())?;
        self.kernel_drops.fetch_add(drops, Ordering::Relaxed);
        Ok(drops)
    }

    /// A handle that reads the kernel's rx drop count of this socket (through a second
    /// descriptor of it), owned apart from the port: for a thread that must not share the
    /// port with the one running rx. Reads through it and through the port see the same
    /// count, each read taking what the kernel counted since the last.
    pub fn drop_counter(&self) -> io::Result<DropCounter> {
        Ok(DropCounter {
            fd: self.fd.try_clone()?,
        })
    }

    /// The counters, with the kernel's rx drop count brought up to date (one
    /// [`kernel_drops`](Self::kernel_drops) read).
    pub fn stats(&mut self) -> io::Result<AfPacketStats> {
        self.kernel_drops()?;
        self.stats.rx_kernel_drops = self.kernel_drops.load(Ordering::Relaxed);
        Ok(self.stats)
    }
}

/// A second descriptor of an [`AfPacket`]'s socket, to read its kernel drop count
/// ([`AfPacket::drop_counter`]).
#[derive(Debug)]
pub struct DropCounter {
    fd: OwnedFd,
}

impl DropCounter {
    /// Frames the kernel dropped since the previous read (of this socket, by any handle).
    pub fn read(&self) -> io::Result<u64> {
        read_drops(self.fd.as_raw_fd())
    }
}

/// One `getsockopt(PACKET_STATISTICS)` on packet socket `fd`: the drops since the previous
/// read (the kernel zeroes its counts on each read).
fn read_drops(fd: RawFd) -> io::Result<u64> {
    let mut st = TpacketStats::default();
    let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
    // SAFETY: `st` has room for `len` bytes, and `len` is a valid in/out length.
    let r = unsafe {
        libc::getsockopt(
            fd,
            sys::SOL_PACKET,
            sys::PACKET_STATISTICS,
            (&mut st as *mut TpacketStats).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(st.drops))
}

/// One `sendmsg(MSG_DONTWAIT)` of the frame `parts` behind its virtio-net header `hdr` on
/// the packet socket `fd` (bound, with `PACKET_VNET_HDR`); counted in `stats` (`tx_full`
/// when it would block, `tx_errors` for another refusal or more than [`MAX_PARTS`](crate::MAX_PARTS)
/// parts). True if the kernel took it.
fn send_counted(fd: RawFd, hdr: &VnetHdr, parts: &[&[u8]], stats: &mut AfPacketTxStats) -> bool {
    let vnet = hdr.encode();
    let Some(mut iov) = sys::FrameIovecs::new(&vnet, parts) else {
        stats.tx_errors += 1;
        return false;
    };
    let io = iov.as_mut_slice();
    // SAFETY: all-zero is a valid msghdr (no name, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = io.as_mut_ptr();
    msg.msg_iovlen = io.len();
    // SAFETY: `msg` points to iovecs over `vnet` and `parts`, live and readable for the
    // call; the kernel only reads them during it.
    let r = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT) };
    if r < 0 {
        if would_block(&io::Error::last_os_error()) {
            stats.tx_full += 1;
        } else {
            stats.tx_errors += 1;
        }
        return false;
    }
    stats.tx_packets += 1;
    stats.tx_bytes += iov.len as u64;
    true
}

/// Counters of an [`AfPacketTx`]. Plain numbers, written by the owning thread only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfPacketTxStats {
    /// Frames sent, and their bytes.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames the socket would have blocked on (the device queue full).
    pub tx_full: u64,
    /// Frames the kernel refused otherwise (or of more than [`MAX_PARTS`](crate::MAX_PARTS) parts).
    pub tx_errors: u64,
}

/// A send-only AF_PACKET socket on an interface, with virtio-net headers: bound with
/// protocol 0, it queues nothing it could receive. How a thread that does not own the
/// interface's [`AfPacket`] sends on it: one `sendmsg` per frame.
#[derive(Debug)]
pub struct AfPacketTx {
    ifname: String,
    fd: OwnedFd,
    stats: AfPacketTxStats,
}

impl AfPacketTx {
    /// Opens a send socket on interface `ifname`.
    pub fn open(ifname: &str) -> Result<AfPacketTx> {
        let ifindex = sys::ifindex(ifname)?;
        let fd = packet_socket(ifname)?;
        let raw = fd.as_raw_fd();
        let one: libc::c_int = 1;
        opt(raw, ifname, "PACKET_VNET_HDR", sys::PACKET_VNET_HDR, &one)?;
        opt(
            raw,
            ifname,
            "PACKET_QDISC_BYPASS",
            sys::PACKET_QDISC_BYPASS,
            &one,
        )?;
        bind(raw, ifname, ifindex, 0)?;
        Ok(AfPacketTx {
            ifname: ifname.to_string(),
            fd,
            stats: AfPacketTxStats::default(),
        })
    }

    /// Sends the frame `frame_parts` with offload state `hdr`; false (counted) if the
    /// kernel would not take it now.
    pub fn send(&mut self, hdr: &VnetHdr, frame_parts: &[&[u8]]) -> bool {
        send_counted(self.fd.as_raw_fd(), hdr, frame_parts, &mut self.stats)
    }

    /// Its counters.
    pub fn stats(&self) -> AfPacketTxStats {
        self.stats
    }

    /// The interface's name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::ENOBUFS))
}

/// The rx ring's socket: poll it for POLLIN to sleep until a frame is ready (interrupt
/// mode): the kernel wakes it for each frame it puts in a slot, and POLLIN holds while the
/// last slot it filled is not given back; the tx kick uses it too.
impl AsRawFd for AfPacket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for AfPacket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_geometry_and_memory() {
        let c = AfPacketConfig::default();
        let g = Geometry::new(&c).unwrap();
        assert_eq!(
            (g.rx.block_size, g.rx.frames_per_block, g.rx.block_nr),
            (65536, 32, 16)
        );
        assert_eq!((g.rx.frame_nr, g.rx_bytes), (512, 1 << 20));
        assert_eq!(
            (g.tx.block_size, g.tx.frames_per_block, g.tx.block_nr),
            (65536, 32, 8)
        );
        assert_eq!(g.tx.frame_nr, 256);
        assert_eq!(c.ring_bytes().unwrap(), (1 << 20) + (512 << 10));
        assert_eq!(g.tx_capacity(), 2048 - 42);
    }

    #[test]
    fn slots_do_not_cross_blocks() {
        let c = AfPacketConfig {
            rx_frame_size: 3008,
            rx_frame_count: 30,
            tx_frame_size: 3008,
            tx_frame_count: 50,
            ..AfPacketConfig::default()
        };
        let g = Geometry::new(&c).unwrap();
        // 4096 rounded up to the 64 KiB minimum block: 21 slots of 3008 bytes per block.
        assert_eq!((g.rx.block_size, g.rx.frames_per_block), (65536, 21));
        assert_eq!((g.rx.block_nr, g.rx.frame_nr), (2, 42));
        assert_eq!((g.tx.block_size, g.tx.frames_per_block), (65536, 21));
        assert_eq!((g.tx.block_nr, g.tx.frame_nr), (3, 63));
        let rx = g.rx_bytes;
        assert_eq!(rx, 2 * 65536);
        assert_eq!(g.rx_slot(20), 20 * 3008);
        assert_eq!(g.rx_slot(21), 65536);
        assert_eq!(g.tx_slot(0), rx);
        assert_eq!(g.tx_slot(20), rx + 20 * 3008);
        assert_eq!(g.tx_slot(21), rx + 65536);
        assert_eq!(g.tx_slot(62), rx + 2 * 65536 + 20 * 3008);
        for (ring, base, slot) in [
            (g.rx, 0, &(|i| g.rx_slot(i)) as &dyn Fn(usize) -> usize),
            (g.tx, rx, &|i| g.tx_slot(i)),
        ] {
            for i in 0..ring.frame_nr {
                let s = slot(i) - base;
                assert!(s % 16 == 0);
                assert_eq!(
                    s / ring.block_size,
                    (s + ring.frame_size - 1) / ring.block_size
                );
                assert!(slot(i) + ring.frame_size <= g.total());
            }
        }
        assert_eq!(c.ring_bytes().unwrap(), g.total());
        assert_eq!(g.total(), 5 * 65536);
    }

    #[test]
    fn a_64k_slot_holds_every_tso_frame() {
        let c = AfPacketConfig {
            tx_frame_size: 65536,
            tx_frame_count: 32,
            ..AfPacketConfig::default()
        };
        let g = Geometry::new(&c).unwrap();
        assert_eq!((g.tx.block_size, g.tx.frames_per_block), (65536, 1));
        assert_eq!(g.tx_capacity(), 65494);
        assert_eq!(g.total(), (1 << 20) + (2 << 20));
    }

    #[test]
    fn requests_are_whole_frames() {
        let g = Geometry::new(&AfPacketConfig::default()).unwrap();
        for r in [g.rx.req(), g.tx.req()] {
            assert_eq!(r.frame_nr, r.block_nr * (r.block_size / r.frame_size));
            assert_eq!(r.block_size % 4096, 0);
            assert_eq!(r.frame_size % 16, 0);
        }
        assert_eq!(
            g.rx.req(),
            TpacketReq {
                block_size: 65536,
                block_nr: 16,
                frame_size: 2048,
                frame_nr: 512
            }
        );
    }

    #[test]
    fn bad_configs_say_why() {
        let small = AfPacketConfig {
            rx_frame_size: 128,
            ..AfPacketConfig::default()
        };
        let e = Geometry::new(&small).unwrap_err().to_string();
        assert!(e.contains("rx_frame_size 128 must be"), "{e}");
        let odd = AfPacketConfig {
            tx_frame_size: 2050,
            ..AfPacketConfig::default()
        };
        assert!(Geometry::new(&odd).is_err());
        let none = AfPacketConfig {
            rx_frame_count: 0,
            ..AfPacketConfig::default()
        };
        let e = Geometry::new(&none).unwrap_err().to_string();
        assert!(e.contains("rx_frame_count must be >= 1"), "{e}");
        let huge = AfPacketConfig {
            rx_frame_size: 4 << 20,
            rx_frame_count: 1024,
            ..AfPacketConfig::default()
        };
        assert!(Geometry::new(&huge).is_err());
    }
}
