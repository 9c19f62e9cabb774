//! Kernel-interface ports that take no DPDK port: an AF_PACKET socket with mmap'd
//! TPACKET_V2 rings ([`AfPacket`], for veth and other existing interfaces) and a tap
//! ([`Tap`], /dev/net/tun). Both carry each frame's offload state in a [`VnetHdr`], so pods
//! keep their default offloads (partial checksums, TSO super-frames up to 64 KiB).
//!
//! Made for a poll-mode worker: once per poll per port it calls `rx_burst` (up to a burst of
//! frames, each lent to a callback to copy into an mbuf) and queues its output with
//! `tx_queue` / `tx` and, for af_packet, kicks it with one `tx_flush`. The af_packet rx path
//! hands each frame over as soon as the kernel has written it; it makes no system call and
//! no allocation for frames that fit a ring slot, and one `recvmsg` per frame that does not
//! (a GSO frame, with the default 2 KiB slots). Its tx path makes one system call per burst
//! (the kick), plus one `sendmsg` per frame too big for a tx slot (a GSO frame with the
//! default 2 KiB slots; none with 64 KiB slots, see [`AfPacketConfig`]). A tap costs one
//! `read` / `writev` per frame (it has no ring without vhost-net).
//!
//! Memory per af_packet port with the default [`AfPacketConfig`]: 1 MiB of rx ring
//! (512 slots of 2 KiB), 512 KiB of tx ring (256 slots of 2 KiB), a 64 KiB copy buffer for
//! frames longer than an rx slot, and up to 4 MiB of kernel memory while such frames wait
//! to be read; a tap port: one 64 KiB read buffer.
//!
//! Ownership: each port has one owner thread at a time (`Send`); rx and tx take `&mut self`.
//! Counters are plain `u64`s in the port; the owner reads them with `stats`. An
//! [`AfPacket`] is also `Sync`: its `&self` methods (names, descriptor, the kernel's drop
//! count) touch no ring.
//!
//! Every `unsafe` block carries a `// SAFETY:` note; everything the kernel writes into the
//! rx ring is read through the bounds-checked parse of `slot.rs`, and every frame read from
//! the socket through that of `copy.rs`.
//!
//! [`Netlink`] is a small rtnetlink client for wiring a pod's interface: a veth pair with
//! one end created straight in the pod's network namespace, its MTU, MAC, addresses and
//! routes.

mod afpacket;
mod copy;
mod error;
pub mod netlink;
mod slot;
mod sys;
mod tap;
mod vlan;
pub mod vnet;

pub use afpacket::{
    AfPacket, AfPacketConfig, AfPacketStats, AfPacketTx, AfPacketTxStats, DropCounter, Prepared,
};
pub use error::{Error, Result};
pub use netlink::{Link, Netlink, NetlinkError, Route, VethEnd};
pub use tap::{
    Tap, TapConfig, TapStats, TapTx, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6,
};
pub use vnet::{VnetHdr, VNET_HDR_LEN};

/// The most parts a frame handed to a system call (`Tap::tx`, an af_packet frame too big for
/// a tx slot) may have: they go in an iovec array on the stack.
pub const MAX_PARTS: usize = 63;

/// Raises the process's limit of open descriptors (RLIMIT_NOFILE) to its hard limit: each
/// kernel port holds a few sockets (and each worker one more per af_packet port), so a
/// node's hundreds of pods pass the usual soft limit of 1024. Returns the limit now in
/// force.
pub fn raise_fd_limit() -> std::io::Result<u64> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into `l`, which is valid for writes.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if l.rlim_cur < l.rlim_max {
        l.rlim_cur = l.rlim_max;
        // SAFETY: setrlimit reads one valid rlimit; raising the soft limit up to the hard
        // one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(l.rlim_cur)
}
