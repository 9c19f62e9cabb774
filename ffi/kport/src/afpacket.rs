//! An AF_PACKET port: one socket bound to an interface (veth, macvlan, NIC) with a
//! TPACKET_V3 rx ring and a tx ring, both mmap'd, and virtio-net headers on every frame so
//! checksum-partial and GSO frames pass with their offload state.
//!
//! Why these choices:
//! - TPACKET_V3 rx: frames are packed into blocks at their own length, so a 64 KiB GSO
//!   super-frame and a 60-byte ACK share one ring without every slot being 64 KiB. A block
//!   goes to user space when it is full or when its retire timer (`rx_block_timeout_ms`)
//!   fires: at a low packet rate a frame waits up to that long (1 ms by default).
//! - `PACKET_VNET_HDR`: the kernel leaves GSO frames whole and checksums partial and says so
//!   in a `virtio_net_hdr` in front of the frame; without it it would segment and checksum
//!   in software before handing frames over.
//! - The tx ring (a TPACKET_V3 tx ring has fixed-size slots, `tp_next_offset` must be 0):
//!   slots are `tx_frame_size` bytes. A frame that does not fit a slot (a GSO frame, with the
//!   default 2 KiB slots) is sent at once through a second, ring-less AF_PACKET socket
//!   bound to the same interface with one `sendmsg` (after kicking what the ring holds, to
//!   keep order): a system call per ~44 segments of payload carried, where a ring of 64 KiB
//!   slots would cost 64 KiB per slot per port; with `tx_frame_size = 65536` every frame up to 65,478
//!   bytes (every TCP TSO frame the kernel builds) goes through the ring instead.
//! - `PACKET_QDISC_BYPASS`: a switch port queues in its own rings, not in a qdisc.
//! - `PACKET_IGNORE_OUTGOING`: the rx ring does not see the port's own tx.
//! - `PACKET_LOSS`: a tx slot the kernel cannot parse is dropped and freed, instead of
//!   stopping the ring at that slot.
//!
//! Memory per port: `rx_block_size * rx_block_count` (default 256 KiB * 4 = 1 MiB: a block
//! holds 3 GSO frames of 64 KiB where a 128 KiB one, the minimum, holds 1 and leaves the
//! rest of it unused, since a frame never spans blocks) plus the
//! tx ring `tx_frame_count` slots of `tx_frame_size` in blocks of at least 64 KiB (default
//! 256 * 2 KiB = 512 KiB): 1.5 MiB, all of it pinned kernel memory mapped into the process.
//! [`AfPacketConfig::ring_bytes`] computes it.
//!
//! Thread safety: an [`AfPacket`] is owned by one thread at a time (it is `Send`, not
//! `Sync`); rx and tx take `&mut self`. The kernel is the other party of the rings, through
//! the status words only (acquire loads, release stores).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::block::{self, Cursor, Step, FRAME_HDR_LEN, TP_STATUS_USER};
use crate::error::{kernel, Error, Result};
use crate::sys::{self, Mapping, PacketMreq, TpacketReq3, TpacketStatsV3};
use crate::vnet::{VnetHdr, VNET_HDR_LEN};

/// The smallest rx block: a 64 KiB GSO frame with its headers (frame header, sockaddr_ll,
/// vnet header, alignment) and the block header needs more than 64 KiB, and the kernel
/// allocates blocks in powers of two pages.
pub const MIN_RX_BLOCK: u32 = 128 << 10;
/// The smallest tx block: smaller slots are packed into blocks of this size.
const MIN_TX_BLOCK: usize = 64 << 10;
/// The largest tx slot.
const MAX_TX_FRAME: u32 = 4 << 20;

/// tx slot status words (`tp_status` of a tx frame).
const TP_STATUS_AVAILABLE: u32 = 0;
const TP_STATUS_SEND_REQUEST: u32 = 1;
const TP_STATUS_SENDING: u32 = 1 << 1;
/// The frame size asked of the kernel for the rx ring: V3 packs frames at their own length,
/// but the request must still describe a whole number of frames per block.
const RX_REQ_FRAME: u32 = 2048;

/// Ring sizes for [`AfPacket::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Bytes per rx block: a power of two, at least [`MIN_RX_BLOCK`].
    pub rx_block_size: u32,
    /// rx blocks: at least 2 (one being filled while one is read).
    pub rx_block_count: u32,
    /// How long the kernel fills a block before handing it over anyway (0: kernel's pick).
    pub rx_block_timeout_ms: u32,
    /// Bytes per tx slot, a multiple of 16: holds the 48-byte frame header, the 10-byte vnet
    /// header and a frame of `tx_frame_size - 58` bytes.
    pub tx_frame_size: u32,
    /// tx slots (rounded up to fill the last tx block).
    pub tx_frame_count: u32,
    /// Put the interface in promiscuous mode (a switch port takes every frame).
    pub promisc: bool,
}

impl Default for AfPacketConfig {
    fn default() -> Self {
        AfPacketConfig {
            rx_block_size: 256 << 10,
            rx_block_count: 4,
            rx_block_timeout_ms: 1,
            tx_frame_size: 2048,
            tx_frame_count: 256,
            promisc: true,
        }
    }
}

impl AfPacketConfig {
    /// Bytes of ring memory a port with this configuration maps (rx and tx).
    pub fn ring_bytes(&self) -> Result<usize> {
        Ok(Geometry::new(self)?.total())
    }
}

/// Where the rings sit in the mapping: the rx blocks, then the tx blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geometry {
    rx_block_size: usize,
    rx_block_nr: usize,
    tx_block_size: usize,
    tx_block_nr: usize,
    tx_frame_size: usize,
    tx_frames_per_block: usize,
    tx_frame_nr: usize,
}

impl Geometry {
    fn new(c: &AfPacketConfig) -> Result<Geometry> {
        let bad = |s: String| Err(Error::Config(s));
        if !c.rx_block_size.is_power_of_two() || c.rx_block_size < MIN_RX_BLOCK {
            return bad(format!(
                "rx_block_size {} must be a power of two >= {MIN_RX_BLOCK} (a 64 KiB GSO frame must fit)",
                c.rx_block_size
            ));
        }
        if c.rx_block_count < 2 {
            return bad(format!("rx_block_count {} must be >= 2", c.rx_block_count));
        }
        let min_slot = (FRAME_HDR_LEN + VNET_HDR_LEN + 64) as u32;
        if c.tx_frame_size % 16 != 0 || c.tx_frame_size < min_slot || c.tx_frame_size > MAX_TX_FRAME
        {
            return bad(format!(
                "tx_frame_size {} must be a multiple of 16 in {min_slot}..={MAX_TX_FRAME}",
                c.tx_frame_size
            ));
        }
        if c.tx_frame_count == 0 {
            return bad("tx_frame_count must be >= 1".into());
        }
        let tx_frame_size = c.tx_frame_size as usize;
        let tx_block_size = tx_frame_size.next_power_of_two().max(MIN_TX_BLOCK);
        let tx_frames_per_block = tx_block_size / tx_frame_size;
        let tx_block_nr = (c.tx_frame_count as usize).div_ceil(tx_frames_per_block);
        let g = Geometry {
            rx_block_size: c.rx_block_size as usize,
            rx_block_nr: c.rx_block_count as usize,
            tx_block_size,
            tx_block_nr,
            tx_frame_size,
            tx_frames_per_block,
            tx_frame_nr: tx_block_nr * tx_frames_per_block,
        };
        let fits = g
            .rx_block_size
            .checked_mul(g.rx_block_nr)
            .zip(g.tx_block_size.checked_mul(g.tx_block_nr))
            .and_then(|(r, t)| r.checked_add(t))
            .is_some_and(|t| t <= u32::MAX as usize);
        if !fits {
            return bad("rings larger than 4 GiB".into());
        }
        Ok(g)
    }

    fn rx_bytes(&self) -> usize {
        self.rx_block_size * self.rx_block_nr
    }

    fn total(&self) -> usize {
        self.rx_bytes() + self.tx_block_size * self.tx_block_nr
    }

    /// Offset of rx block `i` in the mapping.
    fn rx_block(&self, i: usize) -> usize {
        i * self.rx_block_size
    }

    /// Offset of tx slot `i` in the mapping (slots do not cross blocks).
    fn tx_slot(&self, i: usize) -> usize {
        self.rx_bytes()
            + (i / self.tx_frames_per_block) * self.tx_block_size
            + (i % self.tx_frames_per_block) * self.tx_frame_size
    }

    /// The largest frame (vnet header not counted) a tx slot holds.
    fn tx_capacity(&self) -> usize {
        self.tx_frame_size - FRAME_HDR_LEN - VNET_HDR_LEN
    }

    fn rx_req(&self, timeout_ms: u32) -> TpacketReq3 {
        TpacketReq3 {
            block_size: self.rx_block_size as u32,
            block_nr: self.rx_block_nr as u32,
            frame_size: RX_REQ_FRAME,
            frame_nr: (self.rx_block_size / RX_REQ_FRAME as usize * self.rx_block_nr) as u32,
            retire_blk_tov: timeout_ms,
            sizeof_priv: 0,
            feature_req_word: 0,
        }
    }

    fn tx_req(&self) -> TpacketReq3 {
        TpacketReq3 {
            block_size: self.tx_block_size as u32,
            block_nr: self.tx_block_nr as u32,
            frame_size: self.tx_frame_size as u32,
            frame_nr: self.tx_frame_nr as u32,
            ..TpacketReq3::default()
        }
    }
}

/// Counters of an [`AfPacket`]. Plain numbers, written by the owning thread only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfPacketStats {
    /// Frames handed to the rx callback, and their bytes (VLAN tags included).
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames the kernel cut to fit a block (`tp_snaplen < tp_len`): dropped.
    pub rx_truncated: u64,
    /// Frame headers pointing outside their block: dropped (the rest of the block too).
    pub rx_malformed: u64,
    /// Frames the kernel dropped because the ring was full (`tpacket_stats_v3.tp_drops`,
    /// summed over [`AfPacket::stats`] calls).
    pub rx_kernel_drops: u64,
    /// Times the kernel found the ring full and froze it (`tp_freeze_q_cnt`).
    pub rx_ring_freezes: u64,
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

/// An AF_PACKET port with mmap'd TPACKET_V3 rings. See the module documentation.
#[derive(Debug)]
pub struct AfPacket {
    ifname: String,
    ifindex: u32,
    geo: Geometry,
    map: Mapping,
    fd: OwnedFd,
    /// A ring-less socket on the same interface for frames larger than a tx slot.
    side: AfPacketTx,
    /// The rx block to read next, and where its walk stands if it is under way.
    rx_block: usize,
    rx_cursor: Option<Cursor>,
    /// The tx slot to fill next; slots filled since the last kick.
    tx_head: usize,
    tx_pending: usize,
    stats: AfPacketStats,
}

// SAFETY: the mapping is memory owned by this value alone (the kernel is the only other
// party and synchronises through the status words); nothing in it is tied to a thread.
unsafe impl Send for AfPacket {}

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

impl AfPacket {
    /// Opens a port on interface `ifname` (in the calling thread's network namespace).
    pub fn open(ifname: &str, cfg: &AfPacketConfig) -> Result<AfPacket> {
        let geo = Geometry::new(cfg)?;
        let ifindex = sys::ifindex(ifname)?;
        let fd = packet_socket(ifname)?;
        let raw = fd.as_raw_fd();
        let one: libc::c_int = 1;
        // Version and vnet header first: the kernel refuses both once a ring exists.
        opt(
            raw,
            ifname,
            "PACKET_VERSION=TPACKET_V3",
            sys::PACKET_VERSION,
            &sys::TPACKET_V3,
        )?;
        opt(raw, ifname, "PACKET_VNET_HDR", sys::PACKET_VNET_HDR, &one)?;
        opt(raw, ifname, "PACKET_LOSS", sys::PACKET_LOSS, &one)?;
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
        let rx = geo.rx_req(cfg.rx_block_timeout_ms);
        opt(raw, ifname, "PACKET_RX_RING", sys::PACKET_RX_RING, &rx)?;
        let tx = geo.tx_req();
        opt(raw, ifname, "PACKET_TX_RING", sys::PACKET_TX_RING, &tx)?;
        let map = Mapping::new(raw, geo.total()).map_err(kernel(ifname, "mmap of the rings"))?;
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
            rx_block: 0,
            rx_cursor: None,
            tx_head: 0,
            tx_pending: 0,
            stats: AfPacketStats::default(),
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

    /// The status word of rx block `i`.
    fn rx_status(&self, i: usize) -> &AtomicU32 {
        let off = self.geo.rx_block(i) + block::block_field::STATUS.start;
        // SAFETY: `off + 4 <= rx_bytes <= map.len()`; blocks are page aligned so the word is
        // 4-aligned; the kernel accesses it only atomically (READ_ONCE / smp_wmb + store).
        unsafe { AtomicU32::from_ptr(self.map.ptr().add(off).cast()) }
    }

    /// Gives rx block `i` back to the kernel.
    fn rx_release(&mut self, i: usize) {
        self.rx_status(i).store(0, Ordering::Release);
        self.rx_cursor = None;
        self.rx_block = (i + 1) % self.geo.rx_block_nr;
    }

    /// Hands up to `max` received frames to `f` as (offload header, frame bytes), the frame
    /// as it was on the wire (an 802.1Q tag the kernel took out is put back). Returns how
    /// many. No system call, no allocation: frames are read in place in the ring, and a
    /// block goes back to the kernel as soon as its last frame was read; a block read in
    /// part is resumed by the next call.
    pub fn rx_burst(&mut self, max: usize, mut f: impl FnMut(VnetHdr, &[u8])) -> usize {
        let mut n = 0;
        while n < max {
            let i = self.rx_block;
            let mut cur = match self.rx_cursor {
                Some(c) => c,
                None => {
                    if self.rx_status(i).load(Ordering::Acquire) & TP_STATUS_USER == 0 {
                        break;
                    }
                    // SAFETY: the block is user space's (TP_STATUS_USER seen with acquire),
                    // so the kernel writes none of it until `rx_release`.
                    let b = unsafe { rx_block_bytes(self.map.ptr(), &self.geo, i) };
                    Cursor::start(b)
                }
            };
            // SAFETY: as above: the block is ours until `rx_release`; the slice lives only
            // for this step.
            let b = unsafe { rx_block_bytes(self.map.ptr(), &self.geo, i) };
            match block::next_frame(b, &mut cur) {
                Step::Frame(h, d) => {
                    n += 1;
                    self.stats.rx_packets += 1;
                    self.stats.rx_bytes += d.len() as u64;
                    f(h, d);
                }
                Step::Truncated => self.stats.rx_truncated += 1,
                Step::Malformed => self.stats.rx_malformed += 1,
                Step::End => {}
            }
            if cur.done() {
                self.rx_release(i);
            } else {
                self.rx_cursor = Some(cur);
            }
        }
        n
    }

    /// The status word of tx slot `i`.
    fn tx_status(&self, i: usize) -> &AtomicU32 {
        let off = self.geo.tx_slot(i) + block::frame_field::STATUS.start;
        // SAFETY: the slot lies inside the mapping; slots are 16-aligned so the word is
        // 4-aligned; the kernel accesses it only atomically.
        unsafe { AtomicU32::from_ptr(self.map.ptr().add(off).cast()) }
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
        let status = self.tx_status(i).load(Ordering::Acquire);
        if status & (TP_STATUS_SEND_REQUEST | TP_STATUS_SENDING) != 0 {
            self.stats.tx_full += 1;
            return false;
        }
        if status != TP_STATUS_AVAILABLE {
            // TP_STATUS_WRONG_FORMAT: a frame the kernel refused; the slot is ours again.
            self.stats.tx_errors += 1;
        }
        let slot = self.geo.tx_slot(i);
        // SAFETY: the slot is available, so the kernel reads none of it but its status word
        // until we store SEND_REQUEST below; the data area [48, 48 + 10 + len) is inside the
        // slot (len <= tx_capacity), and the header words written are inside its first 48
        // bytes and apart from the status word.
        unsafe {
            let base = self.map.ptr().add(slot);
            let data = std::slice::from_raw_parts_mut(base.add(FRAME_HDR_LEN), VNET_HDR_LEN + len);
            data[..VNET_HDR_LEN].copy_from_slice(&hdr.encode());
            let mut at = VNET_HDR_LEN;
            for p in frame_parts {
                data[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
            let tp_len = (VNET_HDR_LEN + len) as u32;
            base.add(block::frame_field::NEXT_OFFSET.start)
                .cast::<u32>()
                .write(0);
            base.add(block::frame_field::SNAPLEN.start)
                .cast::<u32>()
                .write(tp_len);
            base.add(block::frame_field::LEN.start)
                .cast::<u32>()
                .write(tp_len);
        }
        self.tx_status(i)
            .store(TP_STATUS_SEND_REQUEST, Ordering::Release);
        self.tx_head = (i + 1) % self.geo.tx_frame_nr;
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

    /// The counters, with the kernel's rx drop counts brought up to date (one getsockopt;
    /// the kernel resets its counts on each read, so they are summed here).
    pub fn stats(&mut self) -> io::Result<AfPacketStats> {
        let mut st = TpacketStatsV3::default();
        let mut len = std::mem::size_of::<TpacketStatsV3>() as libc::socklen_t;
        // SAFETY: `st` has room for `len` bytes, and `len` is a valid in/out length.
        let r = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                sys::SOL_PACKET,
                sys::PACKET_STATISTICS,
                (&mut st as *mut TpacketStatsV3).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        self.stats.rx_kernel_drops += st.drops as u64;
        self.stats.rx_ring_freezes += st.freeze_q_cnt as u64;
        Ok(self.stats)
    }
}

/// The bytes of rx block `i` of the rings mapped at `base`.
///
/// # Safety
/// `base` must be the mapping of rings laid out as `geo` says, alive for `'a`; the block
/// must be user space's (its status had `TP_STATUS_USER`, read with acquire, and it was not
/// released since), and no other reference into it may be live during `'a`.
unsafe fn rx_block_bytes<'a>(base: *mut u8, geo: &Geometry, i: usize) -> &'a mut [u8] {
    // SAFETY: block `i < rx_block_nr` lies inside the mapping; the caller guarantees it is
    // alive and exclusively ours.
    unsafe { std::slice::from_raw_parts_mut(base.add(geo.rx_block(i)), geo.rx_block_size) }
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

/// The rx ring's socket: poll it for POLLIN to sleep until a block is handed over
/// (interrupt mode); the tx kick uses it too.
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
        assert_eq!(g.rx_bytes(), 1 << 20);
        assert_eq!(
            (g.tx_block_size, g.tx_frames_per_block, g.tx_block_nr),
            (65536, 32, 8)
        );
        assert_eq!(g.tx_frame_nr, 256);
        assert_eq!(c.ring_bytes().unwrap(), (1 << 20) + (512 << 10));
        assert_eq!(g.tx_capacity(), 2048 - 58);
    }

    #[test]
    fn tx_slots_do_not_cross_blocks() {
        let c = AfPacketConfig {
            tx_frame_size: 3008,
            tx_frame_count: 50,
            ..AfPacketConfig::default()
        };
        let g = Geometry::new(&c).unwrap();
        // 4096 rounded up to the 64 KiB minimum block: 21 slots of 3008 bytes per block.
        assert_eq!((g.tx_block_size, g.tx_frames_per_block), (65536, 21));
        assert_eq!((g.tx_block_nr, g.tx_frame_nr), (3, 63));
        let rx = g.rx_bytes();
        assert_eq!(g.tx_slot(0), rx);
        assert_eq!(g.tx_slot(20), rx + 20 * 3008);
        assert_eq!(g.tx_slot(21), rx + 65536);
        assert_eq!(g.tx_slot(62), rx + 2 * 65536 + 20 * 3008);
        for i in 0..g.tx_frame_nr {
            let s = g.tx_slot(i) - rx;
            assert!(s % 16 == 0);
            assert_eq!(
                s / g.tx_block_size,
                (s + g.tx_frame_size - 1) / g.tx_block_size
            );
            assert!(g.tx_slot(i) + g.tx_frame_size <= g.total());
        }
    }

    #[test]
    fn a_64k_slot_holds_every_tso_frame() {
        let c = AfPacketConfig {
            tx_frame_size: 65536,
            tx_frame_count: 32,
            ..AfPacketConfig::default()
        };
        let g = Geometry::new(&c).unwrap();
        assert_eq!((g.tx_block_size, g.tx_frames_per_block), (65536, 1));
        assert_eq!(g.tx_capacity(), 65478);
        assert_eq!(g.total(), (1 << 20) + (2 << 20));
    }

    #[test]
    fn rx_request_is_whole_frames() {
        let g = Geometry::new(&AfPacketConfig::default()).unwrap();
        let r = g.rx_req(1);
        assert_eq!(r.frame_nr * r.frame_size, r.block_nr * r.block_size);
        let t = g.tx_req();
        assert_eq!(t.frame_nr, t.block_nr * (t.block_size / t.frame_size));
        assert_eq!(
            (t.retire_blk_tov, t.sizeof_priv, t.feature_req_word),
            (0, 0, 0)
        );
    }

    #[test]
    fn bad_configs_say_why() {
        let small = AfPacketConfig {
            rx_block_size: 65536,
            ..AfPacketConfig::default()
        };
        let e = Geometry::new(&small).unwrap_err().to_string();
        assert!(e.contains("64 KiB GSO frame must fit"), "{e}");
        let odd = AfPacketConfig {
            tx_frame_size: 2050,
            ..AfPacketConfig::default()
        };
        assert!(Geometry::new(&odd).is_err());
        let one = AfPacketConfig {
            rx_block_count: 1,
            ..AfPacketConfig::default()
        };
        assert!(Geometry::new(&one).is_err());
    }
}
