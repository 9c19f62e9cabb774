//! The 802.1Q tag the kernel takes out of a received frame (into the skb's metadata) before a
//! packet socket sees it, and how it is put back so the switch sees the frame as it was on
//! the wire.
//!
//! The kernel reports the tag in the ring slot (`tp_vlan_tci` / `tp_vlan_tpid` with
//! `TP_STATUS_VLAN_VALID` / `TP_STATUS_VLAN_TPID_VALID`) and, for a frame read with
//! `recvmsg`, in the `PACKET_AUXDATA` control message (the same fields and bits).
//! IEEE 802.1Q-2018 §9.3: the tag (TPID, then TCI) follows the source MAC address.

/// `TP_STATUS_VLAN_VALID`: `tp_vlan_tci` holds the tag the kernel took out of the frame.
pub(crate) const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// `TP_STATUS_VLAN_TPID_VALID`: `tp_vlan_tpid` holds that tag's TPID.
pub(crate) const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
/// `ETH_P_8021Q`, the TPID assumed when the kernel does not give one.
const ETH_P_8021Q: u16 = 0x8100;
/// Bytes of a tag: TPID and TCI.
pub(crate) const VLAN_HLEN: usize = 4;
/// Destination and source MAC addresses, which the tag follows.
const ETH_ALEN2: usize = 12;

/// A tag taken out of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Vlan {
    pub tpid: u16,
    pub tci: u16,
}

impl Vlan {
    /// The tag a status word (`tp_status`) and its `tp_vlan_tci` / `tp_vlan_tpid` fields
    /// describe, if the kernel took one out. Without a valid TPID it is 802.1Q.
    pub(crate) fn from_status(status: u32, tci: u16, tpid: u16) -> Option<Vlan> {
        if status & TP_STATUS_VLAN_VALID == 0 {
            return None;
        }
        let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 && tpid != 0 {
            tpid
        } else {
            ETH_P_8021Q
        };
        Some(Vlan { tpid, tci })
    }
}

/// Puts `tag` back into the frame `buf[start..end]`: the MAC addresses move 4 bytes forward,
/// into `buf[start - 4..start]` (bytes the caller no longer needs), and the tag goes after
/// them. Returns where the tagged frame now is (`start - 4..end`), or None when there are
/// not 4 bytes in front of the frame, the frame is shorter than the two MAC addresses, or
/// the range is not inside `buf`. Touches no byte outside `buf[start - 4..end]`.
pub(crate) fn put_back(
    buf: &mut [u8],
    start: usize,
    end: usize,
    tag: Vlan,
) -> Option<core::ops::Range<usize>> {
    let tagged = start.checked_sub(VLAN_HLEN)?;
    if end > buf.len() || end < start || end - start < ETH_ALEN2 {
        return None;
    }
    buf.copy_within(start..start + ETH_ALEN2, tagged);
    let at = tagged + ETH_ALEN2;
    buf[at..at + 2].copy_from_slice(&tag.tpid.to_be_bytes());
    buf[at + 2..at + 4].copy_from_slice(&tag.tci.to_be_bytes());
    Some(tagged..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tpid_defaults_to_8021q() {
        assert_eq!(Vlan::from_status(0, 5, 0x88a8), None);
        let plain = Vlan::from_status(TP_STATUS_VLAN_VALID, 0x2064, 0x88a8);
        assert_eq!(
            plain,
            Some(Vlan {
                tpid: 0x8100,
                tci: 0x2064
            })
        );
        let both = TP_STATUS_VLAN_VALID | TP_STATUS_VLAN_TPID_VALID;
        assert_eq!(
            Vlan::from_status(both, 7, 0x88a8),
            Some(Vlan {
                tpid: 0x88a8,
                tci: 7
            })
        );
        assert_eq!(Vlan::from_status(both, 7, 0).map(|v| v.tpid), Some(0x8100));
    }

    #[test]
    fn tag_goes_after_the_macs() {
        let mut b: Vec<u8> = (0..30).collect();
        let tag = Vlan {
            tpid: 0x8100,
            tci: 0x2064,
        };
        let r = put_back(&mut b, 6, 30, tag).unwrap();
        assert_eq!(r, 2..30);
        let want: Vec<u8> = (6..18)
            .chain([0x81, 0x00, 0x20, 0x64])
            .chain(18..30)
            .collect();
        assert_eq!(&b[r], &want[..]);
        // Nothing in front of the tagged frame was touched.
        assert_eq!(&b[..2], &[0, 1]);
    }

    #[test]
    fn no_room_or_short_frames_are_refused() {
        let tag = Vlan { tpid: 1, tci: 2 };
        let mut b = vec![0u8; 40];
        assert_eq!(put_back(&mut b, 3, 30, tag), None);
        assert_eq!(put_back(&mut b, 4, 15, tag), None);
        assert_eq!(put_back(&mut b, 4, 41, tag), None);
        assert_eq!(put_back(&mut b, 20, 10, tag), None);
        assert_eq!(put_back(&mut b, 4, 16, tag), Some(0..16));
    }

    proptest! {
        /// Any range: either refused, or the result lies inside the buffer and holds the
        /// tag after the frame's first 12 bytes.
        #[test]
        fn never_escapes(len in 0usize..64, start in 0usize..80, end in 0usize..80,
                         tpid in any::<u16>(), tci in any::<u16>()) {
            let mut b: Vec<u8> = (0..len as u8).collect();
            let orig = b.clone();
            if let Some(r) = put_back(&mut b, start, end, Vlan { tpid, tci }) {
                prop_assert!(r.start + VLAN_HLEN == start && r.end == end && end <= len);
                prop_assert_eq!(&b[r.start..r.start + 12], &orig[start..start + 12]);
                prop_assert_eq!(&b[r.start + 12..r.start + 14], &tpid.to_be_bytes());
                prop_assert_eq!(&b[r.start + 14..r.start + 16], &tci.to_be_bytes());
                prop_assert_eq!(&b[r.start + 16..], &orig[start + 12..]);
            } else {
                prop_assert_eq!(b, orig);
            }
        }
    }
}
