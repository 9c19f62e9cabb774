//! `vxlan`: VXLAN-encapsulated frames (RFC 7348), as a VTEP receives them for decapsulation:
//! outer Ethernet / IPv4 192.0.2.2 -> 192.0.2.1 / UDP -> 4789 / VXLAN (VNI `vni`) / the inner
//! frame of the `l2` profile (N source hosts to N destination hosts, N flows). The outer UDP
//! source port is a hash of the inner flow (entropy for ECMP and RSS, as RFC 7348 says); the
//! outer UDP checksum is zero (allowed for VXLAN over IPv4). `--size` is the outer frame's
//! size; the inner frame is 50 bytes shorter (never below 60 bytes before its FCS).

use super::addr::{FlowSet, MacPool, Udp4Flow};
use super::{frame, Params, Profile};
use crate::wire::ethernet::{self, Mac};
use crate::wire::{ipv4, udp};

pub const VXLAN_PORT: u16 = 4789;
/// Outer Ethernet + IPv4 + UDP + VXLAN headers.
pub const OVERHEAD: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + 8;
const REMOTE_VTEP: [u8; 4] = [192, 0, 2, 2];
const LOCAL_VTEP: [u8; 4] = [192, 0, 2, 1];

pub struct Vxlan {
    macs: u64,
    flows: u64,
    vni: u32,
    inner_src: MacPool,
    inner_dst: MacPool,
    flow_set: FlowSet,
    vtep_remote: Mac,
    vtep_local: Mac,
}

impl Vxlan {
    pub fn new(p: &Params) -> Self {
        Vxlan {
            macs: p.macs,
            flows: p.flows,
            vni: p.vni,
            inner_src: MacPool::new(p.seed, 0),
            inner_dst: MacPool::new(p.seed, 1),
            flow_set: FlowSet::new(p.seed),
            vtep_remote: MacPool::new(p.seed, 2).mac(0),
            vtep_local: MacPool::new(p.seed, 3).mac(0),
        }
    }
}

impl Profile for Vxlan {
    fn write_frame(&self, index: u64, frame_len: usize, buf: &mut Vec<u8>) {
        let src = index % self.macs;
        let dst = (src + index / self.macs) % self.macs;
        let flow = self.flow_set.flow(index % self.flows);
        let mut inner = Vec::with_capacity(frame_len);
        frame::udp4(
            &mut inner,
            self.inner_dst.mac(dst),
            self.inner_src.mac(src),
            &flow,
            index as u16,
            frame_len.saturating_sub(OVERHEAD),
        );
        let sport = 49152
            + (crate::rng::mix64(
                u64::from_be_bytes([
                    flow.src[0],
                    flow.src[1],
                    flow.src[2],
                    flow.src[3],
                    flow.dst[0],
                    flow.dst[1],
                    flow.dst[2],
                    flow.dst[3],
                ]) ^ u64::from(flow.src_port) << 16
                    ^ u64::from(flow.dst_port),
            ) % 16384) as u16;
        let outer = Udp4Flow {
            src: REMOTE_VTEP,
            dst: LOCAL_VTEP,
            src_port: sport,
            dst_port: VXLAN_PORT,
        };
        // The outer frame with room for VXLAN + inner frame as UDP payload.
        let udp_payload = 8 + inner.len();
        let len = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN + udp_payload;
        frame::udp4(
            buf,
            self.vtep_local,
            self.vtep_remote,
            &outer,
            index as u16,
            len + ethernet::FCS_LEN,
        );
        let at = ethernet::HEADER_LEN + ipv4::HEADER_LEN + udp::HEADER_LEN;
        // VXLAN header: flags (I bit), reserved, VNI, reserved.
        let vni = self.vni.to_be_bytes();
        buf[at..at + 8].copy_from_slice(&[0x08, 0, 0, 0, vni[1], vni[2], vni[3], 0]);
        buf[at + 8..at + 8 + inner.len()].copy_from_slice(&inner);
        // Zero UDP checksum (RFC 7348 section 5: SHOULD be zero for IPv4).
        buf[at - 2..at].copy_from_slice(&[0, 0]);
    }

    fn dst_macs(&self) -> Vec<Mac> {
        (0..self.macs).map(|m| self.inner_dst.mac(m)).collect()
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
}
