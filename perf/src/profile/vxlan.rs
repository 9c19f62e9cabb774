//! `vxlan`: VXLAN-encapsulated frames (RFC 7348), as a VTEP receives them for decapsulation:
//! outer Ethernet / IPv4 192.0.2.2 -> 192.0.2.1 / UDP -> 4789 / VXLAN (VNI `vni`) / the inner
//! frame of the `l2` profile (N source hosts to N destination hosts, N flows). The outer UDP
//! source port is a hash of the inner flow (entropy for ECMP and RSS, as RFC 7348 says); the
//! outer UDP checksum is zero (allowed for VXLAN over IPv4). `--size` is the outer frame's
//! size; the inner frame is 50 bytes shorter (never below 60 bytes before its FCS). The outer
//! destination MAC is the receiving VTEP's: `--router-mac` (a benchmark gives the MAC of the
//! port that replays the pcap), else a seeded one.

use super::addr::{MacPool, Udp4Flow};
use super::l2::L2;
use super::{frame, Params, Profile};
use crate::wire::ethernet::{self, Mac};
use crate::wire::{ipv4, udp};

pub const VXLAN_PORT: u16 = 4789;
/// Outer Ethernet + IPv4 + UDP + VXLAN headers.
pub const OVERHEAD: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + 8;
const REMOTE_VTEP: [u8; 4] = [192, 0, 2, 2];
const LOCAL_VTEP: [u8; 4] = [192, 0, 2, 1];
/// Where the inner frame's IPv4 addresses and UDP ports are (the flow, for the entropy port).
const INNER_FLOW: std::ops::Range<usize> = 26..38;

pub struct Vxlan {
    /// The inner frames are the l2 profile's.
    inner: L2,
    vni: u32,
    vtep_remote: Mac,
    vtep_local: Mac,
}

impl Vxlan {
    pub fn new(p: &Params) -> Self {
        Vxlan {
            inner: L2::new(p),
            vni: p.vni,
            vtep_remote: MacPool::new(p.seed, 2).mac(0),
            vtep_local: p
                .router_mac
                .unwrap_or_else(|| MacPool::new(p.seed, 3).mac(0)),
        }
    }
}

impl Profile for Vxlan {
    fn write_frame(&self, index: u64, frame_len: usize, buf: &mut Vec<u8>) {
        let mut inner = Vec::with_capacity(frame_len);
        self.inner
            .write_frame(index, frame_len.saturating_sub(OVERHEAD), &mut inner);
        let flow = inner.get(INNER_FLOW).unwrap_or_default();
        let hash = flow
            .iter()
            .fold(0u64, |h, b| crate::rng::mix64(h ^ u64::from(*b)));
        let outer = Udp4Flow {
            src: REMOTE_VTEP,
            dst: LOCAL_VTEP,
            src_port: 49152 + (hash % 16384) as u16,
            dst_port: VXLAN_PORT,
        };
        // The outer frame, its UDP payload the VXLAN header and the inner frame.
        let len = OVERHEAD + inner.len();
        frame::udp4(
            buf,
            self.vtep_local,
            self.vtep_remote,
            &outer,
            index as u16,
            len + ethernet::FCS_LEN,
        );
        let at = OVERHEAD - 8;
        // VXLAN header: flags (I bit), reserved, VNI, reserved.
        let vni = self.vni.to_be_bytes();
        buf[at..at + 8].copy_from_slice(&[0x08, 0, 0, 0, vni[1], vni[2], vni[3], 0]);
        buf[OVERHEAD..].copy_from_slice(&inner);
        // Zero UDP checksum (RFC 7348 section 5: SHOULD be zero for IPv4).
        buf[at - 2..at].copy_from_slice(&[0, 0]);
    }

    fn dst_macs(&self) -> Vec<Mac> {
        self.inner.dst_macs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::internet_checksum;

    #[test]
    fn outer_headers_and_inner_frame() {
        let v = Vxlan::new(&Params {
            macs: 4,
            flows: 8,
            vni: 5001,
            ..Params::default()
        });
        let mut buf = Vec::new();
        v.write_frame(3, 128, &mut buf);
        assert_eq!(buf.len(), 124);
        assert_eq!(&buf[12..14], &[0x08, 0x00]);
        assert_eq!(internet_checksum(0, &buf[14..34]), 0, "outer IPv4 checksum");
        assert_eq!(&buf[26..30], &REMOTE_VTEP);
        assert_eq!(&buf[30..34], &LOCAL_VTEP);
        assert_eq!(u16::from_be_bytes([buf[36], buf[37]]), VXLAN_PORT);
        assert_eq!(
            u16::from_be_bytes([buf[38], buf[39]]) as usize,
            buf.len() - 34
        );
        assert_eq!(&buf[40..42], &[0, 0], "outer UDP checksum zero");
        assert_eq!(buf[42], 0x08);
        assert_eq!(u32::from_be_bytes([0, buf[46], buf[47], buf[48]]), 5001);
        // Inner: Ethernet to a pool-1 MAC, IPv4 with a valid checksum, 74 bytes.
        let inner = &buf[50..];
        assert_eq!(inner.len(), 74);
        assert_eq!(&inner[0..2], &[0x02, 1]);
        assert_eq!(
            internet_checksum(0, &inner[14..34]),
            0,
            "inner IPv4 checksum"
        );
        // 64-byte outer frames still carry a minimum-size inner frame.
        v.write_frame(0, 64, &mut buf);
        assert_eq!(buf.len() - OVERHEAD, 60);
    }

    #[test]
    fn the_receiving_vteps_mac_can_be_given() {
        let mac = [0x02, 0x70, 0x63, 0x61, 0x70, 0x00];
        let params = Params {
            macs: 4,
            flows: 8,
            ..Params::default()
        };
        let mut seeded = Vec::new();
        Vxlan::new(&params).write_frame(1, 128, &mut seeded);
        let mut given = Vec::new();
        Vxlan::new(&Params {
            router_mac: Some(mac),
            ..params
        })
        .write_frame(1, 128, &mut given);
        assert_eq!(&given[0..6], &mac, "outer destination");
        assert_ne!(&seeded[0..6], &mac);
        // Nothing else changes: the outer source, the headers and the inner frame.
        assert_eq!(&given[6..], &seeded[6..]);
    }
}
