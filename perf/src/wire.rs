//! Header emission for the frames the generator writes: Ethernet II, IPv4, IPv6, UDP, TCP.
//!
//! Write-only on purpose: the dataplane crate owns parsing. Each header is a `Repr` with an
//! `emit` into a byte slice of exactly its length, as smoltcp's wire layer does; field offsets
//! and constants cite their RFC.

/// The Internet checksum (RFC 1071 §4.1): one's-complement of the one's-complement sum of
/// 16-bit big-endian words, an odd trailing byte padded with zero. `initial` carries a
/// partial sum (e.g. of a pseudo-header) in.
pub fn internet_checksum(initial: u32, data: &[u8]) -> u16 {
    let mut sum = u64::from(initial);
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub mod ethernet {
    /// Destination MAC, source MAC, EtherType (IEEE 802.3 clause 3.2).
    pub const HEADER_LEN: usize = 14;
    /// Frame check sequence: on the wire but not in a pcap capture.
    pub const FCS_LEN: usize = 4;
    /// Smallest frame on the wire, FCS included (IEEE 802.3 clause 4.4.2).
    pub const MIN_FRAME_LEN: usize = 64;
    /// EtherType of IPv4 (IEEE registry; RFC 894).
    pub const ETHERTYPE_IPV4: u16 = 0x0800;
    /// EtherType of IPv6 (IEEE registry; RFC 2464 §3).
    pub const ETHERTYPE_IPV6: u16 = 0x86dd;

    pub type Mac = [u8; 6];

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Repr {
        pub dst: Mac,
        pub src: Mac,
        pub ethertype: u16,
    }

    impl Repr {
        /// Writes the header into `buf[..HEADER_LEN]`.
        pub fn emit(&self, buf: &mut [u8]) {
            buf[0..6].copy_from_slice(&self.dst);
            buf[6..12].copy_from_slice(&self.src);
            buf[12..14].copy_from_slice(&self.ethertype.to_be_bytes());
        }
    }
}

pub mod ipv4 {
    use super::internet_checksum;

    /// Header without options (RFC 791 §3.1, IHL = 5).
    pub const HEADER_LEN: usize = 20;
    /// Protocol number of UDP (RFC 768; IANA protocol numbers).
    pub const PROTO_UDP: u8 = 17;
    /// Protocol number of TCP (RFC 9293; IANA protocol numbers).
    pub const PROTO_TCP: u8 = 6;
    /// "Don't Fragment" flag in the flags/fragment-offset word (RFC 791 §3.1).
    const FLAG_DF: u16 = 0x4000;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Repr {
        pub src: [u8; 4],
        pub dst: [u8; 4],
        pub protocol: u8,
        pub ttl: u8,
        pub ident: u16,
        /// Length of everything after this header.
        pub payload_len: u16,
    }

    impl Repr {
        /// Writes the header, checksum included, into `buf[..HEADER_LEN]`.
        pub fn emit(&self, buf: &mut [u8]) {
            let total_len = HEADER_LEN as u16 + self.payload_len;
            buf[0] = 0x45; // version 4, IHL 5 words
            buf[1] = 0; // DSCP 0 / ECN not-ECT
            buf[2..4].copy_from_slice(&total_len.to_be_bytes());
            buf[4..6].copy_from_slice(&self.ident.to_be_bytes());
            buf[6..8].copy_from_slice(&FLAG_DF.to_be_bytes());
            buf[8] = self.ttl;
            buf[9] = self.protocol;
            buf[10..12].copy_from_slice(&[0, 0]);
            buf[12..16].copy_from_slice(&self.src);
            buf[16..20].copy_from_slice(&self.dst);
            let sum = internet_checksum(0, &buf[..HEADER_LEN]);
            buf[10..12].copy_from_slice(&sum.to_be_bytes());
        }
    }
}

pub mod ipv6 {
    /// Fixed header (RFC 8200 §3).
    pub const HEADER_LEN: usize = 40;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Repr {
        pub src: [u8; 16],
        pub dst: [u8; 16],
        pub next_header: u8,
        pub hop_limit: u8,
        /// Length of everything after this header (no extension headers here).
        pub payload_len: u16,
    }

    impl Repr {
        /// Writes the header (traffic class 0, flow label 0) into `buf[..HEADER_LEN]`.
        pub fn emit(&self, buf: &mut [u8]) {
            buf[0..4].copy_from_slice(&0x6000_0000u32.to_be_bytes()); // version 6
            buf[4..6].copy_from_slice(&self.payload_len.to_be_bytes());
            buf[6] = self.next_header;
            buf[7] = self.hop_limit;
            buf[8..24].copy_from_slice(&self.src);
            buf[24..40].copy_from_slice(&self.dst);
        }
    }
}

pub mod udp {
    use super::{internet_checksum, ipv4};

    /// Source port, destination port, length, checksum (RFC 768).
    pub const HEADER_LEN: usize = 8;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Repr {
        pub src_port: u16,
        pub dst_port: u16,
    }

    impl Repr {
        /// Writes the header into `buf[..HEADER_LEN]`, where `buf` holds the whole datagram
        /// (header then payload, already written), and fills in the checksum over the IPv4
        /// pseudo-header (RFC 768, "Fields"). A computed zero is sent as 0xffff.
        pub fn emit(&self, buf: &mut [u8], src: [u8; 4], dst: [u8; 4]) {
            self.emit_with(buf, words(&src) + words(&dst));
        }

        /// [`Repr::emit`] over IPv6: the checksum covers the IPv6 pseudo-header (RFC 8200
        /// §8.1), where it is mandatory.
        pub fn emit6(&self, buf: &mut [u8], src: [u8; 16], dst: [u8; 16]) {
            self.emit_with(buf, words(&src) + words(&dst));
        }

        /// `addresses`: the pseudo-header's addresses summed as 16-bit words; the protocol
        /// and the UDP length (both pseudo-headers carry them, the sum is the same) are
        /// added here.
        fn emit_with(&self, buf: &mut [u8], addresses: u32) {
            let len = buf.len() as u16;
            buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
            buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
            buf[4..6].copy_from_slice(&len.to_be_bytes());
            buf[6..8].copy_from_slice(&[0, 0]);
            let pseudo = addresses + u32::from(ipv4::PROTO_UDP) + u32::from(len);
            let sum = match internet_checksum(pseudo, buf) {
                0 => 0xffff,
                s => s,
            };
            buf[6..8].copy_from_slice(&sum.to_be_bytes());
        }
    }

    /// An address summed as big-endian 16-bit words (no folding: at most 8 words).
    fn words(a: &[u8]) -> u32 {
        a.chunks_exact(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum()
    }
}

pub mod tcp {
    use super::{internet_checksum, ipv4};

    /// Header without options (RFC 9293 §3.1, data offset 5).
    pub const HEADER_LEN: usize = 20;
    /// The SYN control bit (RFC 9293 §3.1).
    pub const SYN: u8 = 0x02;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Repr {
        pub src_port: u16,
        pub dst_port: u16,
        pub seq: u32,
        /// Control bits (SYN, ACK, ...); the acknowledgment number is written as zero.
        pub flags: u8,
        pub window: u16,
    }

    impl Repr {
        /// Writes the header into `buf[..HEADER_LEN]`, where `buf` holds the whole segment
        /// (header then payload, already written), and fills in the checksum over the IPv4
        /// pseudo-header (RFC 9293 §3.1, "Checksum").
        pub fn emit(&self, buf: &mut [u8], src: [u8; 4], dst: [u8; 4]) {
            let len = buf.len() as u16;
            buf[0..2].copy_from_slice(&self.src_port.to_be_bytes());
            buf[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
            buf[4..8].copy_from_slice(&self.seq.to_be_bytes());
            buf[8..12].copy_from_slice(&[0; 4]);
            buf[12] = (HEADER_LEN as u8 / 4) << 4;
            buf[13] = self.flags;
            buf[14..16].copy_from_slice(&self.window.to_be_bytes());
            buf[16..20].copy_from_slice(&[0; 4]);
            let addresses: u32 = src
                .chunks_exact(2)
                .chain(dst.chunks_exact(2))
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum();
            let pseudo = addresses + u32::from(ipv4::PROTO_TCP) + u32::from(len);
            let sum = internet_checksum(pseudo, buf);
            buf[16..18].copy_from_slice(&sum.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook example header (192.168.0.1 -> 192.168.0.199, UDP, total length 0x73,
    /// DF, TTL 64); scapy 2.5 emits the same 20 bytes, checksum 0xb861.
    const GOLDEN_IPV4: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];

    #[test]
    fn ipv4_checksum_golden() {
        let mut hdr = GOLDEN_IPV4;
        hdr[10] = 0;
        hdr[11] = 0;
        assert_eq!(internet_checksum(0, &hdr), 0xb861);
        // A header with its checksum in place sums to zero.
        assert_eq!(internet_checksum(0, &GOLDEN_IPV4), 0);
    }

    #[test]
    fn ipv4_emit_golden() {
        let repr = ipv4::Repr {
            src: [192, 168, 0, 1],
            dst: [192, 168, 0, 199],
            protocol: ipv4::PROTO_UDP,
            ttl: 64,
            ident: 0,
            payload_len: 0x73 - 20,
        };
        let mut buf = [0u8; ipv4::HEADER_LEN];
        repr.emit(&mut buf);
        assert_eq!(buf, GOLDEN_IPV4);
    }

    #[test]
    fn checksum_odd_length() {
        // RFC 1071 §3 example words 0001 f203 f4f5 f6f7 sum to 0xddf2 (checksum 0x220d);
        // dropping the last byte pads 0xf7 -> 0xf700.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet_checksum(0, &data), !0xddf2);
        let odd = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6];
        assert_eq!(internet_checksum(0, &odd), !(0xddf2u16 - 0xf7));
    }

    #[test]
    fn udp_golden() {
        // 10.0.0.1:1234 -> 10.0.0.2:5678, payload "hi". Expected bytes from scapy 2.5
        // (`raw(IP(src=..,dst=..)/UDP(sport=1234,dport=5678)/b"hi")[20:]`): checksum 0x686e.
        let mut buf = [0u8, 0, 0, 0, 0, 0, 0, 0, b'h', b'i'];
        let repr = udp::Repr {
            src_port: 1234,
            dst_port: 5678,
        };
        repr.emit(&mut buf, [10, 0, 0, 1], [10, 0, 0, 2]);
        assert_eq!(
            buf,
            [0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0a, 0x68, 0x6e, b'h', b'i']
        );
    }

    #[test]
    fn udp6_checksum_covers_the_pseudo_header() {
        // fd00::a00:1:1234 -> 2001:db8::1:5678, payload "hi": the datagram with its pseudo-
        // header (RFC 8200 §8.1: source, destination, upper-layer length as 32 bits, three
        // zero bytes, next header 17) sums to 0xffff, i.e. its checksum is zero.
        let src = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 1];
        let dst = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let mut buf = [0u8, 0, 0, 0, 0, 0, 0, 0, b'h', b'i'];
        udp::Repr {
            src_port: 1234,
            dst_port: 5678,
        }
        .emit6(&mut buf, src, dst);
        let mut pseudo = Vec::new();
        pseudo.extend_from_slice(&src);
        pseudo.extend_from_slice(&dst);
        pseudo.extend_from_slice(&(buf.len() as u32).to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, ipv4::PROTO_UDP]);
        pseudo.extend_from_slice(&buf);
        assert_eq!(internet_checksum(0, &pseudo), 0);
        assert_eq!(&buf[4..6], &[0, 10]);
        assert_ne!(&buf[6..8], &[0, 0]);
    }

    #[test]
    fn ipv6_emit() {
        let mut buf = [0xffu8; ipv6::HEADER_LEN];
        ipv6::Repr {
            src: [1; 16],
            dst: [2; 16],
            next_header: 17,
            hop_limit: 64,
            payload_len: 8,
        }
        .emit(&mut buf);
        assert_eq!(&buf[..8], &[0x60, 0, 0, 0, 0, 8, 17, 64]);
        assert_eq!(&buf[8..24], &[1; 16]);
        assert_eq!(&buf[24..], &[2; 16]);
    }

    #[test]
    fn ethernet_emit() {
        let mut buf = [0u8; ethernet::HEADER_LEN];
        ethernet::Repr {
            dst: [2, 0, 0, 0, 0, 1],
            src: [2, 0, 0, 0, 0, 2],
            ethertype: ethernet::ETHERTYPE_IPV4,
        }
        .emit(&mut buf);
        assert_eq!(buf, [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
    }
}
