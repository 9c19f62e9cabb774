//! Frame builders shared by the profiles.

use crate::profile::addr::Udp4Flow;
use crate::wire::{ethernet, ipv4, ipv6, tcp, udp};

/// Headers in an Ethernet/IPv4/UDP frame.
pub const UDP4_HEADERS_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN;
/// Headers in an Ethernet/IPv6/UDP frame (62 bytes: the smallest such frame is 66 B on the
/// wire with its FCS, more than Ethernet's 64 B minimum).
pub const UDP6_HEADERS_LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + udp::HEADER_LEN;

/// Replaces `buf` with an Ethernet/IPv4/UDP frame of `frame_len` bytes on the wire (FCS
/// included; `frame_len - 4` bytes written, never less than the 60-byte minimum), TTL 64, DF
/// set, IP identification `ident`, zero payload, valid IPv4 and UDP checksums.
pub fn udp4(
    buf: &mut Vec<u8>,
    dst: ethernet::Mac,
    src: ethernet::Mac,
    flow: &Udp4Flow,
    ident: u16,
    frame_len: usize,
) {
    let len = frame_len.max(ethernet::MIN_FRAME_LEN) - ethernet::FCS_LEN;
    buf.clear();
    buf.resize(len, 0);
    ethernet::Repr {
        dst,
        src,
        ethertype: ethernet::ETHERTYPE_IPV4,
    }
    .emit(&mut buf[..ethernet::HEADER_LEN]);
    let ip = &mut buf[ethernet::HEADER_LEN..];
    ipv4::Repr {
        src: flow.src,
        dst: flow.dst,
        protocol: ipv4::PROTO_UDP,
        ttl: 64,
        ident,
        payload_len: (ip.len() - ipv4::HEADER_LEN) as u16,
    }
    .emit(&mut ip[..ipv4::HEADER_LEN]);
    udp::Repr {
        src_port: flow.src_port,
        dst_port: flow.dst_port,
    }
    .emit(&mut ip[ipv4::HEADER_LEN..], flow.src, flow.dst);
}

/// Replaces `buf` with an Ethernet/IPv6/UDP frame of `frame_len` bytes on the wire (FCS
/// included; `frame_len - 4` bytes written, but never less than the headers: a 64 B request
/// gives the smallest IPv6/UDP frame, 66 B on the wire, 62 captured), hop limit 64, zero
/// payload, valid UDP checksum.
pub fn udp6(
    buf: &mut Vec<u8>,
    dst: ethernet::Mac,
    src: ethernet::Mac,
    addrs: ([u8; 16], [u8; 16]),
    ports: (u16, u16),
    frame_len: usize,
) {
    let len = (frame_len.max(ethernet::MIN_FRAME_LEN) - ethernet::FCS_LEN).max(UDP6_HEADERS_LEN);
    buf.clear();
    buf.resize(len, 0);
    ethernet::Repr {
        dst,
        src,
        ethertype: ethernet::ETHERTYPE_IPV6,
    }
    .emit(&mut buf[..ethernet::HEADER_LEN]);
    let ip = &mut buf[ethernet::HEADER_LEN..];
    ipv6::Repr {
        src: addrs.0,
        dst: addrs.1,
        next_header: ipv4::PROTO_UDP,
        hop_limit: 64,
        payload_len: (ip.len() - ipv6::HEADER_LEN) as u16,
    }
    .emit(&mut ip[..ipv6::HEADER_LEN]);
    udp::Repr {
        src_port: ports.0,
        dst_port: ports.1,
    }
    .emit6(&mut ip[ipv6::HEADER_LEN..], addrs.0, addrs.1);
}

/// Replaces `buf` with an Ethernet/IPv4/TCP SYN of `frame_len` bytes on the wire (FCS
/// included; at least the 60-byte minimum): no TCP payload (IPv4 total length 40, what is
/// left of the frame is Ethernet padding), sequence number `seq`, window 65535, TTL 64, DF
/// set, IP identification `ident`, valid IPv4 and TCP checksums.
pub fn tcp4_syn(
    buf: &mut Vec<u8>,
    dst: ethernet::Mac,
    src: ethernet::Mac,
    flow: &Udp4Flow,
    ident: u16,
    seq: u32,
    frame_len: usize,
) {
    let len = frame_len.max(ethernet::MIN_FRAME_LEN) - ethernet::FCS_LEN;
    buf.clear();
    buf.resize(len, 0);
    ethernet::Repr {
        dst,
        src,
        ethertype: ethernet::ETHERTYPE_IPV4,
    }
    .emit(&mut buf[..ethernet::HEADER_LEN]);
    let ip =
        &mut buf[ethernet::HEADER_LEN..ethernet::HEADER_LEN + ipv4::HEADER_LEN + tcp::HEADER_LEN];
    ipv4::Repr {
        src: flow.src,
        dst: flow.dst,
        protocol: ipv4::PROTO_TCP,
        ttl: 64,
        ident,
        payload_len: tcp::HEADER_LEN as u16,
    }
    .emit(&mut ip[..ipv4::HEADER_LEN]);
    tcp::Repr {
        src_port: flow.src_port,
        dst_port: flow.dst_port,
        seq,
        flags: tcp::SYN,
        window: u16::MAX,
    }
    .emit(&mut ip[ipv4::HEADER_LEN..], flow.src, flow.dst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::internet_checksum;

    #[test]
    fn udp4_64b_golden() {
        let flow = Udp4Flow {
            src: [10, 0, 0, 1],
            dst: [198, 18, 0, 1],
            src_port: 1024,
            dst_port: 4000,
        };
        let mut buf = Vec::new();
        udp4(
            &mut buf,
            [2, 1, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 1],
            &flow,
            7,
            64,
        );
        assert_eq!(buf.len(), 60);
        // Expected bytes from scapy 2.5:
        // Ether(dst="02:01:00:00:00:01", src="02:00:00:00:00:01")/IP(src="10.0.0.1",
        //   dst="198.18.0.1", id=7, flags="DF", ttl=64)/UDP(sport=1024, dport=4000)/bytes(18)
        let golden = concat!(
            "0201000000010200000000010800",             // Ethernet
            "4500002e0007400040116aa40a000001c6120001", // IPv4, checksum 0x6aa4
            "04000fa0001a1c06",                         // UDP, checksum 0x1c06
            "000000000000000000000000000000000000",     // 18 bytes of payload
        );
        assert_eq!(hex(&buf), golden);
        assert_eq!(internet_checksum(0, &buf[14..34]), 0);
    }

    #[test]
    fn udp6_is_at_least_its_headers() {
        let addrs = ([0xfd; 16], [0x20; 16]);
        let mut buf = Vec::new();
        udp6(
            &mut buf,
            [2, 1, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 1],
            addrs,
            (1, 2),
            64,
        );
        assert_eq!(buf.len(), UDP6_HEADERS_LEN);
        assert_eq!(&buf[12..14], &[0x86, 0xdd]);
        assert_eq!(
            &buf[18..20],
            &[0, 8],
            "payload length: the UDP header alone"
        );
        udp6(
            &mut buf,
            [2, 1, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 1],
            addrs,
            (1, 2),
            128,
        );
        assert_eq!(buf.len(), 124);
        assert_eq!(&buf[18..20], &[0, 70]);
    }

    #[test]
    fn tcp4_syn_64b_golden() {
        let flow = Udp4Flow {
            src: [10, 0, 0, 1],
            dst: [198, 18, 0, 1],
            src_port: 1024,
            dst_port: 80,
        };
        let mut buf = Vec::new();
        tcp4_syn(
            &mut buf,
            [2, 1, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 1],
            &flow,
            7,
            1,
            64,
        );
        assert_eq!(buf.len(), 60);
        assert_eq!(internet_checksum(0, &buf[14..34]), 0);
        // TCP checksum: the segment (20 bytes) with the pseudo-header sums to zero.
        let pseudo: u32 = [0x0a00u32, 0x0001, 0xc612, 0x0001, 6, 20].iter().sum();
        assert_eq!(internet_checksum(pseudo, &buf[34..54]), 0);
        let golden = concat!(
            "0201000000010200000000010800",             // Ethernet
            "450000280007400040066ab50a000001c6120001", // IPv4, total length 40, TCP
            "0400005000000001000000005002ffffdb7d0000", // TCP: seq 1, SYN, checksum 0xdb7d
        );
        assert_eq!(hex(&buf[..golden.len() / 2]), golden);
        assert_eq!(&buf[54..], &[0; 6], "Ethernet padding");
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
