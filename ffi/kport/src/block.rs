//! A TPACKET_V3 rx block, read as bytes: the walk over its frames as a pure function of a
//! `&mut [u8]`, so that everything the kernel writes into the ring is bounds-checked here
//! and nowhere else, and the walk is tested without a socket.
//!
//! Layout (include/uapi/linux/if_packet.h, Documentation/networking/packet_mmap.rst):
//! a block starts with a `struct tpacket_block_desc` (version, offset_to_priv, then a
//! `tpacket_hdr_v1`: block_status, num_pkts, offset_to_first_pkt, blk_len, seq_num, two
//! timestamps). Frames follow, each a `struct tpacket3_hdr` at a 16-byte aligned offset,
//! chained by `tp_next_offset` (relative to the frame). With `PACKET_VNET_HDR` the kernel
//! writes the `virtio_net_hdr` in the 10 bytes right before the MAC header at `tp_mac`
//! (net/packet/af_packet.c, tpacket_rcv). If the kernel took the 802.1Q tag out of the frame
//! (`TP_STATUS_VLAN_VALID`), the walk puts it back in place, in the 4 bytes in front of the
//! MAC header (which belong to the already-read vnet header), so the caller sees the frame
//! as it was on the wire.

use crate::vnet::{VnetHdr, VNET_HDR_LEN};

/// Bytes of a `struct tpacket_block_desc` (with its `tpacket_hdr_v1`).
pub(crate) const BLOCK_DESC_LEN: usize = 48;
/// Bytes of a `struct tpacket3_hdr`.
pub(crate) const FRAME_HDR_LEN: usize = 48;

/// Byte ranges of `struct tpacket_block_desc` (little-endian host words).
pub(crate) mod block_field {
    use core::ops::Range;
    pub const STATUS: Range<usize> = 8..12;
    pub const NUM_PKTS: Range<usize> = 12..16;
    pub const OFFSET_TO_FIRST_PKT: Range<usize> = 16..20;
    pub const BLK_LEN: Range<usize> = 20..24;
}

/// Byte ranges of `struct tpacket3_hdr`.
pub(crate) mod frame_field {
    use core::ops::Range;
    pub const NEXT_OFFSET: Range<usize> = 0..4;
    pub const SNAPLEN: Range<usize> = 12..16;
    pub const LEN: Range<usize> = 16..20;
    pub const STATUS: Range<usize> = 20..24;
    pub const MAC: Range<usize> = 24..26;
    /// `hv1.tp_vlan_tci` (a u32 holding the 16-bit TCI).
    pub const VLAN_TCI: Range<usize> = 32..36;
    pub const VLAN_TPID: Range<usize> = 36..38;
}

/// `TP_STATUS_USER`: the block (rx) belongs to user space.
pub(crate) const TP_STATUS_USER: u32 = 1;
/// `TP_STATUS_COPY`: the frame was cut to fit (V1/V2; checked anyway).
pub(crate) const TP_STATUS_COPY: u32 = 1 << 1;
/// `TP_STATUS_VLAN_VALID`: `tp_vlan_tci` holds the tag the kernel took out of the frame.
pub(crate) const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// `TP_STATUS_VLAN_TPID_VALID`: `tp_vlan_tpid` holds that tag's TPID.
pub(crate) const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;

const ETH_P_8021Q: u16 = 0x8100;
/// An 802.1Q tag: TPID and TCI.
const VLAN_HLEN: usize = 4;
/// Destination and source MAC addresses, which the tag follows.
const ETH_ALEN2: usize = 12;

fn u32_at(b: &[u8], r: core::ops::Range<usize>) -> Option<u32> {
    let s = b.get(r)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn u16_at(b: &[u8], r: core::ops::Range<usize>) -> Option<u16> {
    let s = b.get(r)?;
    Some(u16::from_ne_bytes([s[0], s[1]]))
}

/// Where the walk over one block stands: kept across rx bursts, so a block can be consumed
/// over several of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Offset of the next frame header in the block.
    offset: usize,
    /// Frames the block header says are left.
    remaining: u32,
    /// The end of the valid bytes: `blk_len`, never past the block.
    limit: usize,
}

impl Cursor {
    /// A walk from the block's first frame, as its header describes it. A header that does
    /// not fit the block makes an empty walk.
    pub(crate) fn start(block: &[u8]) -> Cursor {
        let read = || -> Option<Cursor> {
            if block.len() < BLOCK_DESC_LEN {
                return None;
            }
            let remaining = u32_at(block, block_field::NUM_PKTS)?;
            let offset = u32_at(block, block_field::OFFSET_TO_FIRST_PKT)? as usize;
            let blk_len = u32_at(block, block_field::BLK_LEN)? as usize;
            Some(Cursor {
                offset,
                remaining,
                limit: blk_len.min(block.len()),
            })
        };
        read().unwrap_or(Cursor {
            offset: 0,
            remaining: 0,
            limit: 0,
        })
    }

    /// No frame is left.
    pub(crate) fn done(&self) -> bool {
        self.remaining == 0
    }
}

/// One step of the walk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step<'a> {
    /// A whole frame: its offload header and bytes (the VLAN tag, if any, back in place).
    Frame(VnetHdr, &'a [u8]),
    /// The kernel cut the frame to fit the block (`tp_snaplen < tp_len`): skipped.
    Truncated,
    /// A frame header that points outside the block or runs backwards: the rest of the block
    /// is skipped.
    Malformed,
    /// No frame is left in the block.
    End,
}

/// The next frame of `block` from `cur`, advancing `cur`. Never reads or writes outside
/// `block` (nor past the block's `blk_len`), whatever the bytes; each step moves forward by
/// at least a frame header, so a walk ends after at most `block.len() / 48 + 1` steps.
pub(crate) fn next_frame<'a>(block: &'a mut [u8], cur: &mut Cursor) -> Step<'a> {
    if cur.remaining == 0 {
        return Step::End;
    }
    let off = cur.offset;
    let limit = cur.limit.min(block.len());
    let valid = &block[..limit];
    let hdr = match off
        .checked_add(FRAME_HDR_LEN)
        .and_then(|end| valid.get(off..end))
    {
        Some(h) => h,
        None => return malformed(cur),
    };
    let fields = (|| {
        Some((
            u32_at(hdr, frame_field::NEXT_OFFSET)? as usize,
            u32_at(hdr, frame_field::SNAPLEN)? as usize,
            u32_at(hdr, frame_field::LEN)? as usize,
            u32_at(hdr, frame_field::STATUS)?,
            u16_at(hdr, frame_field::MAC)? as usize,
            u32_at(hdr, frame_field::VLAN_TCI)? as u16,
            u16_at(hdr, frame_field::VLAN_TPID)?,
        ))
    })();
    let Some((next, snaplen, len, status, mac, tci, tpid)) = fields else {
        return malformed(cur);
    };

    // Advance first: every later return has consumed this frame.
    cur.remaining -= 1;
    if cur.remaining > 0 {
        match off.checked_add(next) {
            Some(n) if next >= FRAME_HDR_LEN => cur.offset = n,
            // Not forward: the next step reports it.
            _ => cur.offset = usize::MAX,
        }
    }

    // The vnet header sits between the frame header and the MAC header.
    if mac < FRAME_HDR_LEN + VNET_HDR_LEN {
        return Step::Malformed;
    }
    let Some(start) = off.checked_add(mac) else {
        return Step::Malformed;
    };
    let Some(end) = start.checked_add(snaplen) else {
        return Step::Malformed;
    };
    if end > limit {
        return Step::Malformed;
    }
    if snaplen < len || status & TP_STATUS_COPY != 0 {
        return Step::Truncated;
    }
    let mut vnet = [0u8; VNET_HDR_LEN];
    vnet.copy_from_slice(&block[start - VNET_HDR_LEN..start]);
    let vnet = VnetHdr::decode(&vnet);

    if status & TP_STATUS_VLAN_VALID == 0 {
        return Step::Frame(vnet, &block[start..end]);
    }
    if snaplen < ETH_ALEN2 {
        return Step::Malformed;
    }
    let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 {
        tpid
    } else {
        ETH_P_8021Q
    };
    // Move the MAC addresses 4 bytes forward into the vnet header's place and put the tag
    // after them; `mac >= 58` keeps all of it behind the frame header.
    let tagged = start - VLAN_HLEN;
    block.copy_within(start..start + ETH_ALEN2, tagged);
    block[tagged + ETH_ALEN2..tagged + ETH_ALEN2 + 2].copy_from_slice(&tpid.to_be_bytes());
    block[tagged + ETH_ALEN2 + 2..start + ETH_ALEN2].copy_from_slice(&tci.to_be_bytes());
    Step::Frame(vnet.shifted(VLAN_HLEN as u16), &block[tagged..end])
}

fn malformed<'a>(cur: &mut Cursor) -> Step<'a> {
    cur.remaining = 0;
    Step::Malformed
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One frame for [`build_block`]: what the kernel would write.
    #[derive(Debug, Clone)]
    pub struct TestFrame {
        pub vnet: VnetHdr,
        pub data: Vec<u8>,
        pub vlan: Option<u16>,
        pub cut: bool,
    }

    fn put32(b: &mut [u8], r: core::ops::Range<usize>, v: u32) {
        b[r].copy_from_slice(&v.to_ne_bytes());
    }

    /// A block laid out as tpacket_rcv lays it out: frame headers 16-byte aligned, the MAC
    /// header at TPACKET_ALIGN(68 + 16) + 10 - 14 past the frame start for Ethernet, the
    /// vnet header right before it.
    pub fn build_block(size: usize, frames: &[TestFrame]) -> Vec<u8> {
        let mut b = vec![0u8; size];
        let first = 48usize;
        let mut off = first;
        for (i, f) in frames.iter().enumerate() {
            let netoff = (68usize + 16).div_ceil(16) * 16 + VNET_HDR_LEN;
            let mac = netoff - 14;
            let h = &mut b[off..off + FRAME_HDR_LEN];
            let len = f.data.len() as u32;
            let snaplen = if f.cut { len / 2 } else { len };
            let next = (mac + f.data.len()).div_ceil(16) * 16;
            put32(h, frame_field::SNAPLEN, snaplen);
            put32(h, frame_field::LEN, len);
            let mut status = 0;
            if let Some(tci) = f.vlan {
                status |= TP_STATUS_VLAN_VALID;
                put32(h, frame_field::VLAN_TCI, tci as u32);
            }
            put32(h, frame_field::STATUS, status);
            h[frame_field::MAC].copy_from_slice(&(mac as u16).to_ne_bytes());
            let last = i + 1 == frames.len();
            put32(
                h,
                frame_field::NEXT_OFFSET,
                if last { 0 } else { next as u32 },
            );
            b[off + mac - VNET_HDR_LEN..off + mac].copy_from_slice(&f.vnet.encode());
            b[off + mac..off + mac + snaplen as usize].copy_from_slice(&f.data[..snaplen as usize]);
            off += next;
        }
        put32(&mut b, block_field::STATUS, TP_STATUS_USER);
        put32(&mut b, block_field::NUM_PKTS, frames.len() as u32);
        put32(&mut b, block_field::OFFSET_TO_FIRST_PKT, first as u32);
        put32(&mut b, block_field::BLK_LEN, off as u32);
        b
    }

    fn frame(data: &[u8]) -> TestFrame {
        TestFrame {
            vnet: VnetHdr::default(),
            data: data.to_vec(),
            vlan: None,
            cut: false,
        }
    }

    fn walk(block: &mut [u8]) -> Vec<Result<(VnetHdr, Vec<u8>), &'static str>> {
        let mut cur = Cursor::start(block);
        let mut out = Vec::new();
        loop {
            match next_frame(block, &mut cur) {
                Step::Frame(h, d) => out.push(Ok((h, d.to_vec()))),
                Step::Truncated => out.push(Err("truncated")),
                Step::Malformed => out.push(Err("malformed")),
                Step::End => return out,
            }
        }
    }

    #[test]
    fn walks_frames_in_order() {
        let mut b = build_block(4096, &[frame(&[1; 60]), frame(&[2; 100]), frame(&[3; 14])]);
        let got = walk(&mut b);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].as_ref().unwrap().1, vec![1; 60]);
        assert_eq!(got[1].as_ref().unwrap().1, vec![2; 100]);
        assert_eq!(got[2].as_ref().unwrap().1, vec![3; 14]);
    }

    #[test]
    fn a_block_walked_in_pieces_resumes() {
        let mut b = build_block(4096, &[frame(&[1; 60]), frame(&[2; 70])]);
        let mut cur = Cursor::start(&b);
        assert!(matches!(next_frame(&mut b, &mut cur), Step::Frame(_, d) if d == [1; 60]));
        // The port keeps the cursor between bursts.
        let mut resumed = cur;
        assert!(!resumed.done());
        assert!(matches!(next_frame(&mut b, &mut resumed), Step::Frame(_, d) if d == [2; 70]));
        assert!(resumed.done());
        assert_eq!(next_frame(&mut b, &mut resumed), Step::End);
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
        let mut b = build_block(
            4096,
            &[TestFrame {
                vnet,
                data: data.clone(),
                vlan: Some(0x2064),
                cut: false,
            }],
        );
        let got = walk(&mut b);
        let (h, d) = got[0].as_ref().unwrap();
        assert_eq!(d.len(), 64);
        assert_eq!(&d[..12], &data[..12]);
        assert_eq!(&d[12..16], &[0x81, 0x00, 0x20, 0x64]);
        assert_eq!(&d[16..], &data[12..]);
        assert_eq!((h.csum_start, h.csum_offset), (38, 6));
    }

    #[test]
    fn truncated_frames_are_reported_not_passed() {
        let mut cut = frame(&[7; 200]);
        cut.cut = true;
        let mut b = build_block(4096, &[cut, frame(&[8; 64])]);
        let got = walk(&mut b);
        assert_eq!(got[0], Err("truncated"));
        assert_eq!(got[1].as_ref().unwrap().1, vec![8; 64]);
    }

    #[test]
    fn a_frame_past_the_block_is_malformed() {
        let mut b = build_block(4096, &[frame(&[1; 60])]);
        // snaplen and len far past the block.
        put32(&mut b[48..96], frame_field::SNAPLEN, 1 << 20);
        put32(&mut b[48..96], frame_field::LEN, 1 << 20);
        assert_eq!(walk(&mut b), vec![Err("malformed")]);
    }

    #[test]
    fn a_backwards_next_offset_stops_the_walk() {
        let mut b = build_block(4096, &[frame(&[1; 60]), frame(&[2; 60])]);
        put32(&mut b[48..96], frame_field::NEXT_OFFSET, 0);
        let got = walk(&mut b);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert_eq!(got[1], Err("malformed"));
    }

    #[test]
    fn a_short_block_is_empty() {
        let mut b = vec![0xffu8; 20];
        assert_eq!(walk(&mut b), vec![]);
    }

    fn arb_frame() -> impl Strategy<Value = TestFrame> {
        (
            proptest::collection::vec(any::<u8>(), 14..600),
            any::<[u8; 10]>(),
            proptest::option::of(any::<u16>()),
            any::<bool>(),
        )
            .prop_map(|(data, vnet, vlan, cut)| TestFrame {
                vnet: VnetHdr::decode(&vnet),
                data,
                vlan,
                cut,
            })
    }

    proptest! {
        /// Whatever the bytes, the walk stays inside the block, ends, and yields slices of it.
        #[test]
        fn random_bytes_never_escape(mut b in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let range = b.as_ptr_range();
            let (lo, hi) = (range.start as usize, range.end as usize);
            let bound = b.len() / FRAME_HDR_LEN + 2;
            let mut cur = Cursor::start(&b);
            let mut steps = 0;
            loop {
                match next_frame(&mut b, &mut cur) {
                    Step::End => break,
                    Step::Frame(_, d) => {
                        let r = d.as_ptr_range();
                        prop_assert!(r.start as usize >= lo && r.end as usize <= hi);
                    }
                    Step::Truncated | Step::Malformed => {}
                }
                steps += 1;
                prop_assert!(steps <= bound);
            }
        }

        /// A well-formed block with random header words overwritten at random places (the
        /// fields the walk trusts: offsets, lengths, counts) never escapes either.
        #[test]
        fn corrupted_headers_never_escape(
            frames in proptest::collection::vec(arb_frame(), 0..8),
            pokes in proptest::collection::vec((0usize..4096, any::<u32>()), 0..8),
        ) {
            let mut b = build_block(8192, &frames);
            for (at, v) in pokes {
                let at = at & !3;
                b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            }
            let range = b.as_ptr_range();
            let (lo, hi) = (range.start as usize, range.end as usize);
            let mut cur = Cursor::start(&b);
            let mut steps = 0;
            loop {
                match next_frame(&mut b, &mut cur) {
                    Step::End => break,
                    Step::Frame(_, d) => {
                        let r = d.as_ptr_range();
                        prop_assert!(r.start as usize >= lo && r.end as usize <= hi);
                    }
                    Step::Truncated | Step::Malformed => {}
                }
                steps += 1;
                prop_assert!(steps <= 8192 / FRAME_HDR_LEN + 2);
            }
        }

        /// What the kernel writes comes back: data, offload header, VLAN tag re-inserted.
        #[test]
        fn well_formed_blocks_round_trip(frames in proptest::collection::vec(arb_frame(), 0..8)) {
            let mut b = build_block(8192, &frames);
            let got = walk(&mut b);
            prop_assert_eq!(got.len(), frames.len());
            for (f, g) in frames.iter().zip(got) {
                if f.cut {
                    prop_assert_eq!(g, Err("truncated"));
                    continue;
                }
                let (h, d) = g.unwrap();
                match f.vlan {
                    None => {
                        prop_assert_eq!(&d, &f.data);
                        prop_assert_eq!(h, f.vnet);
                    }
                    Some(tci) => {
                        let mut want = f.data[..12].to_vec();
                        want.extend_from_slice(&[0x81, 0x00]);
                        want.extend_from_slice(&tci.to_be_bytes());
                        want.extend_from_slice(&f.data[12..]);
                        prop_assert_eq!(&d, &want);
                        prop_assert_eq!(h, f.vnet.shifted(4));
                    }
                }
            }
        }
    }
}
