//! Packet-buffer classes: which mbuf pool a port receives into, and the MTUs each carries.
//!
//! A frame must fit in one mbuf: the dataplane reads a packet as one contiguous segment,
//! and DPDK 22.11's af_packet driver cannot chain mbufs at all (it copies each frame into a
//! single mbuf). Two classes of buffer exist:
//! - [`BufferClass::Standard`]: the switch's main pool (`--mbufs`, 2048 bytes of packet per
//!   mbuf), for every port whose MTU is at most [`STANDARD_MAX_MTU`];
//! - [`BufferClass::Jumbo`]: a second pool (`--jumbo-mbufs`, [`JUMBO_ROOM`] bytes per
//!   mbuf), created the first time a port with a larger MTU (up to [`MAX_MTU`]) is added.
//!
//! A port's class is that of the MTU it is added with (`mtu=`, default 1500) and is fixed
//! for its life: `iface set mtu=` may move within the class, not above it (the model refuses
//! that: see [`check_mtu_change`]); the interface is added again with the new MTU instead.
//!
//! af_packet (DPDK 22.11, drivers/net/af_packet/rte_eth_af_packet.c) adds its own ring
//! geometry, from its devargs framesz (default 2048), blocksz (default the page size) and
//! framecnt (default 512):
//! - rx queue setup refuses a pool unless framesz - (TPACKET2_HDRLEN - sizeof(sockaddr_ll))
//!   = framesz - 32 fits the mbuf's data room less headroom (eth_rx_queue_setup);
//! - frames sit back to back in the mmap'd ring (rd[i] = map + i * framesz), so framesz must
//!   divide blocksz, and framecnt be a multiple of blocksz / framesz (the kernel wants
//!   tp_frame_nr = frames per block * blocks); blocksz is a multiple of the page size and
//!   framesz of 16 (TPACKET_ALIGNMENT) (the kernel's packet_set_ring);
//! - the kernel stores a received frame at TPACKET_ALIGN(TPACKET2_HDRLEN + 16) - 14 = 66
//!   bytes into its ring frame and cuts what does not fit (tpacket_rcv), so a ring frame
//!   carries frames of up to framesz - 66 bytes;
//! - ethdev caps the MTU at 1500 (the driver reports max_rx_pktlen = RTE_ETHER_MAX_LEN, so
//!   rte_eth_dev_set_mtu refuses more, whatever framesz is): the switch sets an af_packet
//!   port's MTU on its Linux interface itself, as the driver's mtu_set would (SIOCSIFMTU).
//!
//! Everything here is pure arithmetic, checked by the tests below.

/// Bytes DPDK keeps in front of every mbuf's packet data (RTE_PKTMBUF_HEADROOM).
pub const HEADROOM: u16 = dpdk::HEADROOM;

/// What a frame adds to its MTU in an mbuf: the Ethernet header (14) and two VLAN tags (a
/// QinQ frame, 8). DPDK strips the FCS.
pub const FRAME_OVERHEAD: u16 = 14 + 2 * 4;

/// Packet bytes per mbuf of the standard pool (DPDK's default, RTE_MBUF_DEFAULT_DATAROOM).
pub const STANDARD_ROOM: u16 = 2048;

/// Packet bytes per mbuf of the jumbo pool: one af_packet ring frame of
/// [`JUMBO_AF_PACKET_RING`] (9728 = 19 * 512: eight fill 19 pages exactly).
pub const JUMBO_ROOM: u16 = 9728;

/// The largest MTU the switch takes (the jumbo class carries it; see the tests).
pub const MAX_MTU: u16 = 9600;

/// The smallest MTU (RFC 791's minimum datagram size).
pub const MIN_MTU: u16 = 68;

/// The largest MTU the standard buffers carry on every kind of port (af_packet's default
/// 2048-byte ring frame is the tighter bound: 2048 - 66 - 22 = 1960).
pub const STANDARD_MAX_MTU: u16 = BufferClass::Standard.max_mtu();

/// Where a kernel stores a received frame in an af_packet (TPACKET_V2) ring frame:
/// TPACKET_ALIGN(TPACKET2_HDRLEN (52) + 16) - ETH_HLEN (14).
const AF_PACKET_RX_OFFSET: u16 = 80 - 14;

/// An af_packet port's ring geometry (its framesz, blocksz and framecnt devargs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfPacketRing {
    pub framesz: u32,
    pub blocksz: u32,
    pub framecnt: u32,
}

/// The driver's defaults (framesz 2048, blocksz one 4 KiB page, framecnt 512).
const STANDARD_AF_PACKET_RING: AfPacketRing = AfPacketRing {
    framesz: 2048,
    blocksz: 4096,
    framecnt: 512,
};

/// Jumbo rings: 9728-byte frames, eight to a 19-page block, 512 of them (64 blocks, 4.75 MiB
/// per ring; each queue pair has an rx and a tx ring).
pub const JUMBO_AF_PACKET_RING: AfPacketRing = AfPacketRing {
    framesz: JUMBO_ROOM as u32,
    blocksz: 8 * JUMBO_ROOM as u32,
    framecnt: 512,
};

/// A class of packet buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BufferClass {
    Standard,
    Jumbo,
}

impl BufferClass {
    /// The class an MTU needs (None: the MTU is larger than any buffer carries). No MTU
    /// given means the default, 1500.
    pub fn for_mtu(mtu: Option<u16>) -> Option<BufferClass> {
        let mtu = mtu.unwrap_or(1500);
        [BufferClass::Standard, BufferClass::Jumbo]
            .into_iter()
            .find(|c| mtu <= c.max_mtu())
    }

    /// Packet bytes per mbuf (the pool's data room less headroom).
    pub const fn room(self) -> u16 {
        match self {
            BufferClass::Standard => STANDARD_ROOM,
            BufferClass::Jumbo => JUMBO_ROOM,
        }
    }

    /// The pool's data room as DPDK takes it (headroom included).
    pub const fn data_room(self) -> u16 {
        self.room() + HEADROOM
    }

    /// The af_packet ring an af_packet port of this class uses.
    pub const fn af_packet_ring(self) -> AfPacketRing {
        match self {
            BufferClass::Standard => STANDARD_AF_PACKET_RING,
            BufferClass::Jumbo => JUMBO_AF_PACKET_RING,
        }
    }

    /// The largest frame (bytes, with up to two VLAN tags) every kind of port of this class
    /// receives whole: the mbuf room, or af_packet's ring frame if that is smaller.
    pub const fn max_frame(self) -> u16 {
        let ring = self.af_packet_ring().framesz as u16 - AF_PACKET_RX_OFFSET;
        if ring < self.room() {
            ring
        } else {
            self.room()
        }
    }

    /// The largest MTU of the class.
    pub const fn max_mtu(self) -> u16 {
        self.max_frame() - FRAME_OVERHEAD
    }

    /// The class's name, as messages say it.
    pub const fn name(self) -> &'static str {
        match self {
            BufferClass::Standard => "standard",
            BufferClass::Jumbo => "jumbo",
        }
    }
}

/// The devargs an af_packet port of `class` adds to its device string: none for the
/// standard class (the driver's defaults), the ring geometry for jumbo.
pub fn af_packet_devargs(class: BufferClass) -> String {
    match class {
        BufferClass::Standard => String::new(),
        BufferClass::Jumbo => {
            let r = class.af_packet_ring();
            format!(
                ",framesz={},blocksz={},framecnt={}",
                r.framesz, r.blocksz, r.framecnt
            )
        }
    }
}

/// `iface set NAME mtu=NEW` on an interface configured with `current` (None: the default):
/// refused when NEW needs a larger class of buffers than the port was opened with.
pub fn check_mtu_change(name: &str, current: Option<u16>, new: u16) -> Result<(), String> {
    let (Some(have), Some(need)) = (
        BufferClass::for_mtu(current),
        BufferClass::for_mtu(Some(new)),
    ) else {
        return Err(format!(
            "mtu must be a number from {MIN_MTU} to {MAX_MTU}, not \"{new}\""
        ));
    };
    if need <= have {
        return Ok(());
    }
    Err(format!(
        "mtu={new} does not fit interface {name:?}: its port has {} buffers, which carry \
         MTUs up to {} (frames of {} bytes); for mtu={new} ({} buffers) delete the interface \
         and add it again with mtu={new}",
        have.name(),
        have.max_mtu(),
        have.max_frame(),
        need.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u32 = 4096;
    /// What af_packet's rx queue setup requires of the mbuf room, and its tx path of a
    /// frame: framesz less TPACKET2_HDRLEN - sizeof(struct sockaddr_ll) = 52 - 20.
    const AF_PACKET_DATA_OFFSET: u16 = 32;

    #[test]
    fn the_classes_carry_these_mtus() {
        assert_eq!(STANDARD_MAX_MTU, 1960);
        assert_eq!(BufferClass::Jumbo.max_mtu(), 9640);
        assert!(MAX_MTU <= BufferClass::Jumbo.max_mtu());
        assert_eq!(BufferClass::for_mtu(None), Some(BufferClass::Standard));
        assert_eq!(
            BufferClass::for_mtu(Some(1960)),
            Some(BufferClass::Standard)
        );
        assert_eq!(BufferClass::for_mtu(Some(1961)), Some(BufferClass::Jumbo));
        assert_eq!(BufferClass::for_mtu(Some(9000)), Some(BufferClass::Jumbo));
        assert_eq!(BufferClass::for_mtu(Some(9640)), Some(BufferClass::Jumbo));
        assert_eq!(BufferClass::for_mtu(Some(9641)), None);
        assert_eq!(BufferClass::Standard.data_room(), 2048 + 128);
        assert_eq!(BufferClass::Jumbo.data_room(), 9728 + 128);
    }

    /// What DPDK 22.11's af_packet driver and the kernel require of each class's ring.
    #[test]
    fn af_packet_rings_fit_their_buffers_and_the_kernel() {
        for class in [BufferClass::Standard, BufferClass::Jumbo] {
            let r = class.af_packet_ring();
            // eth_rx_queue_setup: framesz - 32 <= data room - headroom.
            assert!(r.framesz - u32::from(AF_PACKET_DATA_OFFSET) <= u32::from(class.room()));
            // packet_set_ring: framesz a multiple of 16, blocksz of the page size; frames
            // fill blocks exactly (the driver addresses frame i at i * framesz); framecnt a
            // multiple of the frames per block.
            assert_eq!(r.framesz % 16, 0, "{class:?}");
            assert_eq!(r.blocksz % PAGE, 0, "{class:?}");
            assert_eq!(r.blocksz % r.framesz, 0, "{class:?}");
            assert_eq!(r.framecnt % (r.blocksz / r.framesz), 0, "{class:?}");
            // Received whole: a QinQ frame at the class's largest MTU.
            let frame = u32::from(class.max_mtu() + FRAME_OVERHEAD);
            assert!(
                frame + u32::from(AF_PACKET_RX_OFFSET) <= r.framesz,
                "{class:?}"
            );
            // Sent whole: the driver drops frames over framesz - 32.
            assert!(frame <= r.framesz - u32::from(AF_PACKET_DATA_OFFSET));
        }
        assert_eq!(af_packet_devargs(BufferClass::Standard), "");
        assert_eq!(
            af_packet_devargs(BufferClass::Jumbo),
            ",framesz=9728,blocksz=77824,framecnt=512"
        );
    }

    #[test]
    fn mtu_changes_stay_within_the_class() {
        assert!(check_mtu_change("a", None, 1400).is_ok());
        assert!(check_mtu_change("a", None, 1960).is_ok());
        assert!(check_mtu_change("a", Some(9000), 1500).is_ok());
        assert!(check_mtu_change("a", Some(9000), 9600).is_ok());
        let e = check_mtu_change("a", Some(1500), 9000).unwrap_err();
        assert_eq!(
            e,
            "mtu=9000 does not fit interface \"a\": its port has standard buffers, which carry \
             MTUs up to 1960 (frames of 1982 bytes); for mtu=9000 (jumbo buffers) delete the \
             interface and add it again with mtu=9000"
        );
        assert!(check_mtu_change("a", None, 1961).is_err());
        assert!(check_mtu_change("a", Some(9000), 9700)
            .unwrap_err()
            .starts_with("mtu must be a number from 68 to 9600"));
    }
}
