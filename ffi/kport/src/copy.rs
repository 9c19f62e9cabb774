//! The rx ring's copy path: frames longer than a ring slot (GSO super-frames up to 64 KiB,
//! jumbo frames) read whole from the socket's receive queue.
//!
//! With `PACKET_COPY_THRESH` set, `tpacket_rcv` (net/packet/af_packet.c) meets a frame that
//! does not fit a TPACKET_V1/V2 slot by queueing a clone of it on the socket's ordinary
//! receive queue (if the socket's receive buffer, `SO_RCVBUF`, has room: the clone is
//! charged its truesize), writing a cut copy into the slot and setting `TP_STATUS_COPY` in
//! the slot's status. Slot and queue entry are made under the same lock, so the queue holds
//! the copied frames in slot order, and nothing else (the ring is set up before the
//! socket is bound, so no frame is queued the ordinary way): at each `TP_STATUS_COPY` slot,
//! one nonblocking `recvmsg` returns that slot's frame. With `PACKET_VNET_HDR` it starts with the 10-byte
//! `virtio_net_hdr`; with `PACKET_AUXDATA` a `struct tpacket_auxdata` control message says
//! which 802.1Q tag the kernel took out of it. (Its `tp_len` reads 0 for these clones,
//! checked on 6.18: the kernel keeps that length in the clone's address block, which it
//! zeroes; the read's length is checked against the slot's `tp_len` instead.)
//!
//! The frame is read into one buffer per port of [`BUF_LEN`] bytes: the vnet header at 0,
//! 4 spare bytes (room to put a tag back), the frame at [`FRAME_AT`].

use std::io;
use std::os::fd::RawFd;

use crate::sys;
use crate::vlan::{self, Vlan};
use crate::vnet::{VnetHdr, VNET_HDR_LEN};

/// The longest frame read whole (the largest IPv4 / non-jumbo IPv6 GSO frame the kernel
/// builds is shorter); a longer one is cut and counted as truncated.
pub(crate) const MAX_FRAME: usize = 65535;
/// Where the frame starts in the copy buffer: behind the vnet header and room for a tag.
pub(crate) const FRAME_AT: usize = VNET_HDR_LEN + vlan::VLAN_HLEN;
/// Bytes of the copy buffer: 65,549.
pub(crate) const BUF_LEN: usize = FRAME_AT + MAX_FRAME;

/// Byte ranges of `struct tpacket_auxdata` (host-endian words).
mod aux_field {
    use core::ops::Range;
    pub const STATUS: Range<usize> = 0..4;
    pub const VLAN_TCI: Range<usize> = 16..18;
    pub const VLAN_TPID: Range<usize> = 18..20;
}
/// Bytes of a `struct tpacket_auxdata`.
const AUXDATA_LEN: usize = 20;

/// A control-message buffer aligned for `struct cmsghdr`, with room for the auxdata
/// message (`CMSG_SPACE(20)` = 40 bytes on 64-bit Linux) and then some.
#[repr(C, align(8))]
pub(crate) struct CmsgBuf(pub [u8; 64]);

/// `CMSG_ALIGN`: control messages start at multiples of a `size_t`.
fn cmsg_align(n: usize) -> Option<usize> {
    let a = std::mem::size_of::<usize>();
    Some(n.checked_add(a - 1)? & !(a - 1))
}

/// The 802.1Q tag the `PACKET_AUXDATA` message among the control messages `ctl` (the
/// `msg_controllen` bytes `recvmsg` returned) reports: `Some(None)` for a frame the kernel
/// took no tag out of; None if there is no such message or the messages do not parse.
/// Reads nothing outside `ctl`.
pub(crate) fn auxdata_vlan(ctl: &[u8]) -> Option<Option<Vlan>> {
    let hdr = std::mem::size_of::<libc::cmsghdr>();
    let data_at = cmsg_align(hdr)?;
    let mut off = 0usize;
    while let Some(h) = ctl.get(off..off.checked_add(hdr)?) {
        // SAFETY: `h` holds `size_of::<cmsghdr>()` bytes; a cmsghdr is plain integers, so
        // any bytes are a valid one; read_unaligned takes any alignment.
        let c: libc::cmsghdr = unsafe { std::ptr::read_unaligned(h.as_ptr().cast()) };
        let len = c.cmsg_len as usize;
        let end = off.checked_add(len)?;
        let data = ctl.get(off.checked_add(data_at)?..end)?;
        if c.cmsg_level == sys::SOL_PACKET && c.cmsg_type == sys::PACKET_AUXDATA {
            let aux = data.get(..AUXDATA_LEN)?;
            let u16_at =
                |r: core::ops::Range<usize>| u16::from_ne_bytes([aux[r.start], aux[r.start + 1]]);
            let s = &aux[aux_field::STATUS];
            let status = u32::from_ne_bytes([s[0], s[1], s[2], s[3]]);
            return Some(Vlan::from_status(
                status,
                u16_at(aux_field::VLAN_TCI),
                u16_at(aux_field::VLAN_TPID),
            ));
        }
        off = off.checked_add(cmsg_align(len)?)?;
    }
    None
}

/// What one `recvmsg` of a copied frame gave.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Copied {
    /// The frame, at this range of the copy buffer (its tag back in place), and its offload
    /// header.
    Frame(VnetHdr, core::ops::Range<usize>),
    /// Longer than the buffer ([`MAX_FRAME`]): cut.
    Truncated,
    /// Not the frame the slot announced (another length, no vnet header, a tag that does
    /// not fit): dropped.
    Mismatch,
}

/// Reads the copy buffer `buf` after a `recvmsg` returned `got` bytes (vnet header and
/// frame), `truncated` if it set `MSG_TRUNC`, for a slot that announced a frame of
/// `slot_len` bytes; `tag` is the tag the kernel took out. Never reads or writes outside
/// `buf`.
pub(crate) fn frame(
    buf: &mut [u8],
    got: usize,
    truncated: bool,
    slot_len: u32,
    tag: Option<Vlan>,
) -> Copied {
    if truncated {
        return Copied::Truncated;
    }
    let Some(n) = got.checked_sub(VNET_HDR_LEN) else {
        return Copied::Mismatch;
    };
    let end = FRAME_AT + n;
    if n != slot_len as usize || end > buf.len() {
        return Copied::Mismatch;
    }
    let mut vnet = [0u8; VNET_HDR_LEN];
    vnet.copy_from_slice(&buf[..VNET_HDR_LEN]);
    let vnet = VnetHdr::decode(&vnet);
    match tag {
        None => Copied::Frame(vnet, FRAME_AT..end),
        Some(t) => match vlan::put_back(buf, FRAME_AT, end, t) {
            Some(r) => Copied::Frame(vnet.shifted(vlan::VLAN_HLEN as u16), r),
            None => Copied::Mismatch,
        },
    }
}

/// One nonblocking `recvmsg` on the packet socket `fd` into `buf` (laid out as the module
/// says; at least [`FRAME_AT`] bytes) with control messages into `ctl`. Returns the bytes
/// received (vnet header and frame), whether the frame was cut (`MSG_TRUNC`) and how many
/// control bytes came.
pub(crate) fn recv(
    fd: RawFd,
    buf: &mut [u8],
    ctl: &mut CmsgBuf,
) -> io::Result<(usize, bool, usize)> {
    let (hdr, rest) = buf.split_at_mut(VNET_HDR_LEN);
    let frame = rest.get_mut(vlan::VLAN_HLEN..).unwrap_or_default();
    let mut iov = [
        libc::iovec {
            iov_base: hdr.as_mut_ptr().cast(),
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: frame.as_mut_ptr().cast(),
            iov_len: frame.len(),
        },
    ];
    // SAFETY: all-zero is a valid msghdr (no name, no control yet).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr();
    msg.msg_iovlen = iov.len() as _;
    msg.msg_control = ctl.0.as_mut_ptr().cast();
    msg.msg_controllen = ctl.0.len() as _;
    // SAFETY: the iovecs cover `hdr` and `frame`, and the control buffer `ctl`, all
    // writable and borrowed mutably for the call; the kernel writes at most their lengths
    // and keeps no pointer after it returns.
    let r = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let ctl_len = (msg.msg_controllen as usize).min(ctl.0.len());
    Ok((r as usize, msg.msg_flags & libc::MSG_TRUNC != 0, ctl_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One control message as the kernel's put_cmsg lays it out.
    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let hdr = std::mem::size_of::<libc::cmsghdr>();
        // SAFETY: all-zero is a valid cmsghdr.
        let mut c: libc::cmsghdr = unsafe { std::mem::zeroed() };
        c.cmsg_len = (hdr + data.len()) as _;
        c.cmsg_level = level;
        c.cmsg_type = kind;
        let mut out = vec![0u8; hdr];
        // SAFETY: `out` has room for a cmsghdr; write_unaligned takes any alignment.
        unsafe { std::ptr::write_unaligned(out.as_mut_ptr().cast(), c) };
        out.extend_from_slice(data);
        out.resize(cmsg_align(out.len()).unwrap(), 0);
        out
    }

    fn aux(status: u32, tci: u16, tpid: u16) -> Vec<u8> {
        let mut a = vec![0u8; AUXDATA_LEN];
        a[0..4].copy_from_slice(&status.to_ne_bytes());
        a[4..8].copy_from_slice(&1514u32.to_ne_bytes());
        a[16..18].copy_from_slice(&tci.to_ne_bytes());
        a[18..20].copy_from_slice(&tpid.to_ne_bytes());
        a
    }

    #[test]
    fn sizes() {
        assert_eq!(BUF_LEN, 65549);
        assert_eq!(std::mem::size_of::<libc::cmsghdr>(), 16);
        // CMSG_SPACE(sizeof(struct tpacket_auxdata)) fits.
        assert!(cmsg(0, 0, &[0; AUXDATA_LEN]).len() <= std::mem::size_of::<CmsgBuf>());
    }

    #[test]
    fn auxdata_tag_is_found() {
        let vv = crate::vlan::TP_STATUS_VLAN_VALID | crate::vlan::TP_STATUS_VLAN_TPID_VALID;
        let ctl = cmsg(
            sys::SOL_PACKET,
            sys::PACKET_AUXDATA,
            &aux(1 | vv, 0x2064, 0x8100),
        );
        assert_eq!(
            auxdata_vlan(&ctl),
            Some(Some(Vlan {
                tpid: 0x8100,
                tci: 0x2064
            }))
        );
        // Untagged, after an unrelated message.
        let mut two = cmsg(libc::SOL_SOCKET, libc::SO_TIMESTAMP, &[9; 16]);
        two.extend(cmsg(sys::SOL_PACKET, sys::PACKET_AUXDATA, &aux(1, 0, 0)));
        assert_eq!(auxdata_vlan(&two), Some(None));
        // None at all, or cut short.
        assert_eq!(auxdata_vlan(&[]), None);
        assert_eq!(auxdata_vlan(&ctl[..30]), None);
    }

    #[test]
    fn frames_are_checked_against_their_slot() {
        let mut buf = vec![0u8; BUF_LEN];
        let vnet = VnetHdr {
            flags: crate::vnet::F_NEEDS_CSUM,
            gso_type: crate::vnet::GSO_TCPV4,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        buf[..VNET_HDR_LEN].copy_from_slice(&vnet.encode());
        for (i, b) in buf[FRAME_AT..FRAME_AT + 5000].iter_mut().enumerate() {
            *b = i as u8;
        }
        assert_eq!(
            frame(&mut buf, 5010, false, 5000, None),
            Copied::Frame(vnet, FRAME_AT..FRAME_AT + 5000)
        );
        assert_eq!(frame(&mut buf, 5010, true, 5000, None), Copied::Truncated);
        assert_eq!(frame(&mut buf, 5010, false, 4999, None), Copied::Mismatch);
        assert_eq!(frame(&mut buf, 3, false, 0, None), Copied::Mismatch);
        let tag = Vlan {
            tpid: 0x8100,
            tci: 7,
        };
        let Copied::Frame(h, r) = frame(&mut buf, 5010, false, 5000, Some(tag)) else {
            panic!("not a frame");
        };
        assert_eq!(r, FRAME_AT - 4..FRAME_AT + 5000);
        assert_eq!(h, vnet.shifted(4));
        let d = &buf[r];
        assert_eq!(&d[..12], &(0..12).collect::<Vec<u8>>()[..]);
        assert_eq!(&d[12..16], &[0x81, 0, 0, 7]);
        assert_eq!(d[16], 12);
    }

    proptest! {
        /// Any control bytes: the parse ends without panicking.
        #[test]
        fn random_control_bytes_parse(ctl in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = auxdata_vlan(&ctl);
        }

        /// Well-formed messages with random contents and lengths poked in: never panics;
        /// unpoked, the tag comes back.
        #[test]
        fn control_messages_round_trip(
            status in any::<u32>(), tci in any::<u16>(), tpid in any::<u16>(),
            before in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
            poke in proptest::option::of((0usize..64, any::<u8>())),
        ) {
            let mut ctl = Vec::new();
            if let Some(b) = &before {
                ctl.extend(cmsg(libc::SOL_SOCKET, 99, b));
            }
            ctl.extend(cmsg(sys::SOL_PACKET, sys::PACKET_AUXDATA, &aux(status, tci, tpid)));
            match poke {
                Some((at, v)) => {
                    let at = at % ctl.len();
                    ctl[at] = v;
                    let _ = auxdata_vlan(&ctl);
                }
                None => prop_assert_eq!(
                    auxdata_vlan(&ctl),
                    Some(Vlan::from_status(status, tci, tpid))
                ),
            }
        }

        /// Any receive result: a frame range inside the buffer, or a refusal.
        #[test]
        fn copied_frames_stay_inside(
            got in 0usize..BUF_LEN + 20, slot_len in any::<u32>(), trunc in any::<bool>(),
            tag in proptest::option::of((any::<u16>(), any::<u16>())),
        ) {
            let mut buf = vec![0u8; BUF_LEN];
            let slot_len = if slot_len % 2 == 0 { got.saturating_sub(10) as u32 } else { slot_len };
            let tag = tag.map(|(tpid, tci)| Vlan { tpid, tci });
            if let Copied::Frame(_, r) = frame(&mut buf, got, trunc, slot_len, tag) {
                prop_assert!(r.start >= VNET_HDR_LEN && r.end <= BUF_LEN && r.start <= r.end);
            }
        }
    }
}
