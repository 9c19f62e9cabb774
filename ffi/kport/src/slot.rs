//! A TPACKET_V2 ring slot, read as bytes: the parse of one rx slot as a pure function of a
//! `&mut [u8]`, so that everything the kernel writes into the rx ring is bounds-checked here
//! and nowhere else, and the parse is tested without a socket.
//!
//! Layout (include/uapi/linux/if_packet.h, Documentation/networking/packet_mmap.rst,
//! net/packet/af_packet.c `tpacket_rcv`): a slot starts with a `struct tpacket2_hdr`
//! (32 bytes: status, len, snaplen, mac, net, sec, nsec, vlan_tci, vlan_tpid, 4 bytes of
//! padding), then the `struct sockaddr_ll` (20 bytes; `TPACKET2_HDRLEN` = 52 is both). The
//! frame starts at `tp_mac` from the slot start; with `PACKET_VNET_HDR` the kernel writes the
//! `virtio_net_hdr` in the 10 bytes right before it. For Ethernet (a 14-byte MAC header)
//! `tp_net` = TPACKET_ALIGN(52 + 16) + 10 = 90 and `tp_mac` = 76, so a slot of `S` bytes
//! holds a frame of `S - 76` bytes (1972 for 2 KiB slots: a 1500-byte-MTU frame with an
//! 802.1Q tag, 1518 bytes, fits with room to spare).
//!
//! A frame longer than that is cut to fit (`tp_snaplen < tp_len`). If the socket has
//! `PACKET_COPY_THRESH` and room in its receive buffer, the kernel also queues the whole
//! frame on the socket's receive queue and sets `TP_STATUS_COPY` in the slot: the caller
//! reads it with `recvmsg` (see `copy.rs`).
//!
//! If the kernel took an 802.1Q tag out of the frame (`TP_STATUS_VLAN_VALID`), the parse
//! puts it back in place, in the 4 bytes in front of the MAC header (which belong to the
//! already-read vnet header), so the caller sees the frame as it was on the wire.

use crate::vlan::{self, Vlan};
use crate::vnet::{VnetHdr, VNET_HDR_LEN};

/// Bytes of a `struct tpacket2_hdr` (TPACKET_ALIGN'd): where a tx slot's data starts
/// (`tp_hdrlen - sizeof(struct sockaddr_ll)`).
pub(crate) const HDR_LEN: usize = 32;
/// `TPACKET2_HDRLEN`: the frame header and the `sockaddr_ll` after it.
const TPACKET2_HDRLEN: usize = HDR_LEN + 20;
/// The smallest `tp_mac` of a slot with a vnet header: nothing of the frame or its vnet
/// header may overlap the frame header or the `sockaddr_ll`.
const MIN_MAC: usize = TPACKET2_HDRLEN + VNET_HDR_LEN;

/// Byte ranges of `struct tpacket2_hdr` (host-endian words).
pub(crate) mod field {
    use core::ops::Range;
    pub const STATUS: Range<usize> = 0..4;
    pub const LEN: Range<usize> = 4..8;
    pub const SNAPLEN: Range<usize> = 8..12;
    pub const MAC: Range<usize> = 12..14;
    pub const VLAN_TCI: Range<usize> = 24..26;
    pub const VLAN_TPID: Range<usize> = 26..28;
}

/// `TP_STATUS_KERNEL`: the slot is the kernel's (rx: free to fill).
pub(crate) const TP_STATUS_KERNEL: u32 = 0;
/// `TP_STATUS_USER`: the slot (rx) holds a frame for user space.
pub(crate) const TP_STATUS_USER: u32 = 1;
/// `TP_STATUS_COPY`: the frame was cut to fit the slot and queued whole on the socket.
pub(crate) const TP_STATUS_COPY: u32 = 1 << 1;

fn u32_at(b: &[u8], r: core::ops::Range<usize>) -> Option<u32> {
    let s = b.get(r)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u16_at(b: &[u8], r: core::ops::Range<usize>) -> Option<u16> {
    let s = b.get(r)?;
    Some(u16::from_ne_bytes([s[0], s[1]]))
}

/// What an rx slot holds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Slot<'a> {
    /// A whole frame: its offload header and bytes (the VLAN tag, if any, back in place).
    Frame(VnetHdr, &'a [u8]),
    /// The frame did not fit; the kernel queued it whole on the socket (`TP_STATUS_COPY`):
    /// `len` bytes (a tag taken out not counted), and the tag the slot reports.
    Copy { len: u32, vlan: Option<Vlan> },
    /// The kernel cut the frame to fit and kept no whole copy (`tp_snaplen < tp_len`).
    Truncated,
    /// A header that points outside the slot.
    Malformed,
}

/// Reads the rx slot `slot` (the whole `frame_size` bytes of it, status word included).
/// Never reads or writes outside `slot`, whatever its bytes; a returned frame is a part of
/// `slot` behind its first 52 bytes.
pub(crate) fn parse(slot: &mut [u8]) -> Slot<'_> {
    let fields = (|| {
        Some((
            u32_at(slot, field::STATUS)?,
            u32_at(slot, field::LEN)?,
            u32_at(slot, field::SNAPLEN)? as usize,
            u16_at(slot, field::MAC)? as usize,
            u16_at(slot, field::VLAN_TCI)?,
            u16_at(slot, field::VLAN_TPID)?,
        ))
    })();
    let Some((status, len, snaplen, mac, tci, tpid)) = fields else {
        return Slot::Malformed;
    };
    let vlan = Vlan::from_status(status, tci, tpid);
    if status & TP_STATUS_COPY != 0 {
        return Slot::Copy { len, vlan };
    }
    if mac < MIN_MAC {
        return Slot::Malformed;
    }
    // mac < 2^16 and snaplen < 2^32: no overflow in a usize of 64 bits; checked anyway.
    let Some(end) = mac.checked_add(snaplen) else {
        return Slot::Malformed;
    };
    if end > slot.len() {
        return Slot::Malformed;
    }
    if snaplen < len as usize {
        return Slot::Truncated;
    }
    let mut vnet = [0u8; VNET_HDR_LEN];
    vnet.copy_from_slice(&slot[mac - VNET_HDR_LEN..mac]);
    let vnet = VnetHdr::decode(&vnet);
    let Some(tag) = vlan else {
        return Slot::Frame(vnet, &slot[mac..end]);
    };
    // The tag overwrites the last 4 bytes of the vnet header, already decoded; mac >= 62
    // keeps it clear of the sockaddr_ll.
    match vlan::put_back(slot, mac, end, tag) {
        Some(r) => Slot::Frame(vnet.shifted(vlan::VLAN_HLEN as u16), &slot[r]),
        None => Slot::Malformed,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::vlan::TP_STATUS_VLAN_VALID;
    use proptest::prelude::*;

    /// What the kernel would write into one slot.
    #[derive(Debug, Clone)]
    pub struct TestFrame {
        pub vnet: VnetHdr,
        pub data: Vec<u8>,
        pub vlan: Option<u16>,
        /// Cut to fit (snaplen < len) ...
        pub cut: bool,
        /// ... and queued whole on the socket.
        pub copy: bool,
    }

    fn put32(b: &mut [u8], r: core::ops::Range<usize>, v: u32) {
        b[r].copy_from_slice(&v.to_ne_bytes());
    }

    /// Where tpacket_rcv puts an Ethernet frame: TPACKET_ALIGN(52 + 16) + 10 - 14.
    pub const ETH_MAC: usize = 76;

    /// A slot of `size` bytes laid out as tpacket_rcv lays it out for a socket with a vnet
    /// header, its status word already user space's.
    pub fn build_slot(size: usize, f: &TestFrame) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let len = f.data.len();
        let snaplen = if f.cut || f.copy {
            len.min(size - ETH_MAC) / 2
        } else {
            len
        };
        let mut status = TP_STATUS_USER;
        if let Some(tci) = f.vlan {
            status |= TP_STATUS_VLAN_VALID;
            b[field::VLAN_TCI].copy_from_slice(&tci.to_ne_bytes());
        }
        if f.copy {
            status |= TP_STATUS_COPY;
        }
        put32(&mut b, field::STATUS, status);
        put32(&mut b, field::LEN, len as u32);
        put32(&mut b, field::SNAPLEN, snaplen as u32);
        b[field::MAC].copy_from_slice(&(ETH_MAC as u16).to_ne_bytes());
        b[ETH_MAC - VNET_HDR_LEN..ETH_MAC].copy_from_slice(&f.vnet.encode());
        b[ETH_MAC..ETH_MAC + snaplen].copy_from_slice(&f.data[..snaplen]);
        b
    }

    fn frame(data: &[u8]) -> TestFrame {
        TestFrame {
            vnet: VnetHdr::default(),
            data: data.to_vec(),
            vlan: None,
            cut: false,
            copy: false,
        }
    }

    #[test]
    fn a_frame_is_read_in_place() {
        let vnet = VnetHdr {
            flags: crate::vnet::F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let mut f = frame(&[7; 1514]);
        f.vnet = vnet;
        let mut b = build_slot(2048, &f);
        let base = b.as_ptr() as usize;
        match parse(&mut b) {
            Slot::Frame(h, d) => {
                assert_eq!(h, vnet);
                assert_eq!(d, &[7; 1514][..]);
                assert_eq!(d.as_ptr() as usize - base, ETH_MAC);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_largest_frame_fits_a_2k_slot() {
        // 2048 - 76: a 1500-MTU frame with a tag (1518) fits with 454 bytes to spare.
        let mut b = build_slot(2048, &frame(&[1; 1972]));
        assert!(matches!(parse(&mut b), Slot::Frame(_, d) if d.len() == 1972));
    }

    #[test]
    fn vlan_tag_goes_back_after_the_macs() {
        let mut data = vec![0u8; 60];
        data[..12].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        data[12..14].copy_from_slice(&[0x08, 0x00]);
        let vnet = VnetHdr {
            flags: crate::vnet::F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 6,
            ..VnetHdr::default()
        };
        let mut f = frame(&data);
        f.vnet = vnet;
        f.vlan = Some(0x2064);
        let mut b = build_slot(2048, &f);
        let Slot::Frame(h, d) = parse(&mut b) else {
            panic!("not a frame")
        };
        assert_eq!(d.len(), 64);
        assert_eq!(&d[..12], &data[..12]);
        assert_eq!(&d[12..16], &[0x81, 0x00, 0x20, 0x64]);
        assert_eq!(&d[16..], &data[12..]);
        assert_eq!((h.csum_start, h.csum_offset), (38, 6));
    }

    #[test]
    fn cut_frames_are_truncated_or_copied() {
        let mut cut = frame(&[7; 3000]);
        cut.cut = true;
        assert_eq!(parse(&mut build_slot(2048, &cut)), Slot::Truncated);
        let mut copied = cut.clone();
        copied.copy = true;
        copied.vlan = Some(5);
        assert_eq!(
            parse(&mut build_slot(2048, &copied)),
            Slot::Copy {
                len: 3000,
                vlan: Some(Vlan {
                    tpid: 0x8100,
                    tci: 5
                })
            }
        );
    }

    #[test]
    fn headers_pointing_outside_are_malformed() {
        let mut b = build_slot(2048, &frame(&[1; 60]));
        put32(&mut b, field::SNAPLEN, 2048);
        put32(&mut b, field::LEN, 2048);
        assert_eq!(parse(&mut b), Slot::Malformed);
        let mut b = build_slot(2048, &frame(&[1; 60]));
        b[field::MAC].copy_from_slice(&61u16.to_ne_bytes());
        assert_eq!(parse(&mut b), Slot::Malformed);
        b[field::MAC].copy_from_slice(&u16::MAX.to_ne_bytes());
        assert_eq!(parse(&mut b), Slot::Malformed);
        assert_eq!(parse(&mut [0xff; 20]), Slot::Malformed);
        // A tag on a frame shorter than its MAC addresses.
        let mut short = frame(&[1; 11]);
        short.vlan = Some(1);
        assert_eq!(parse(&mut build_slot(2048, &short)), Slot::Malformed);
    }

    fn arb_frame() -> impl Strategy<Value = TestFrame> {
        (
            proptest::collection::vec(any::<u8>(), 12..1200),
            any::<[u8; 10]>(),
            proptest::option::of(any::<u16>()),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(data, vnet, vlan, cut, copy)| TestFrame {
                vnet: VnetHdr::decode(&vnet),
                data,
                vlan,
                cut,
                copy,
            })
    }

    /// `d` lies in the slot `s` behind the frame header and the sockaddr_ll.
    fn inside(s: core::ops::Range<*const u8>, d: &[u8]) -> bool {
        let r = d.as_ptr_range();
        r.start as usize >= s.start as usize + TPACKET2_HDRLEN && r.end <= s.end
    }

    proptest! {
        /// Whatever the bytes, the parse returns a part of the slot behind its headers.
        #[test]
        fn random_bytes_never_escape(mut b in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let range = b.as_ptr_range();
            if let Slot::Frame(_, d) = parse(&mut b) {
                prop_assert!(inside(range, d));
            }
        }

        /// A well-formed slot with random words overwritten at random places (the fields
        /// the parse trusts: lengths, offsets, status), or cut short, never escapes either.
        #[test]
        fn corrupted_or_short_slots_never_escape(
            f in arb_frame(),
            size in (8usize..128).prop_map(|n| n * 16),
            pokes in proptest::collection::vec((0usize..64, any::<u32>()), 0..6),
            keep in any::<proptest::sample::Index>(),
        ) {
            let mut f = f;
            f.data.truncate(size.saturating_sub(ETH_MAC));
            if f.data.len() < 12 {
                f.vlan = None;
            }
            let mut b = build_slot(size, &f);
            for (at, v) in pokes {
                let at = (at * 4) % (size - 3);
                b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            }
            let cut = keep.index(b.len() + 1);
            let s = &mut b[..cut];
            let range = s.as_ptr_range();
            if let Slot::Frame(_, d) = parse(s) {
                prop_assert!(inside(range, d));
            }
        }

        /// What the kernel writes comes back: data, offload header, VLAN tag re-inserted.
        #[test]
        fn well_formed_slots_round_trip(f in arb_frame()) {
            let mut b = build_slot(2048, &f);
            let got = parse(&mut b);
            if f.copy {
                prop_assert_eq!(got, Slot::Copy {
                    len: f.data.len() as u32,
                    vlan: f.vlan.map(|tci| Vlan { tpid: 0x8100, tci }),
                });
                return Ok(());
            }
            if f.cut {
                prop_assert_eq!(got, Slot::Truncated);
                return Ok(());
            }
            let Slot::Frame(h, d) = got else {
                return Err(TestCaseError::fail(format!("{got:?}")));
            };
            match f.vlan {
                None => {
                    prop_assert_eq!(d, &f.data[..]);
                    prop_assert_eq!(h, f.vnet);
                }
                Some(tci) => {
                    let mut want = f.data[..12].to_vec();
                    want.extend_from_slice(&[0x81, 0x00]);
                    want.extend_from_slice(&tci.to_be_bytes());
                    want.extend_from_slice(&f.data[12..]);
                    prop_assert_eq!(d, &want[..]);
                    prop_assert_eq!(h, f.vnet.shifted(4));
                }
            }
        }
    }
}
