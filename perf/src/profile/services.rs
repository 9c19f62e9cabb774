//! `services` and `services-syn`: traffic to load-balanced services (virtual IPs), for the
//! NAT profiles (issue 18).
//!
//! There are `--services` services: service `i` has the virtual IP [`vip`]`(i)` (in
//! 172.16.0.0/14, the VIPs' range) and port
//! [`VIP_PORT`], and `--backends` backends [`backend`]`(i, j)` (in 100.64.0.0/10, the
//! backends' network, which a benchmark routes out of its sink port) on port
//! [`BACKEND_PORT`]. Packet `i` is flow `i mod flows`, and flow `j` goes to service `j mod
//! services`: its source address and port are [`FlowSet`]'s (10.0.0.0/8, scattered and
//! distinct per flow), its destination the service's VIP and port. `services` sends UDP
//! datagrams; `services-syn` TCP SYNs (with `--count` equal to `--flows`, every SYN a
//! distinct 5-tuple: new connections through the services). Frames go from one host behind
//! the input port (pool 0, MAC 0) to the router's MAC (`--router-mac`).
//!
//! The table (`--table-out`) is the services as `vsctl transaction` lines, one per service:
//! `service add s<i> VIP:80 proto=udp|tcp backends=B1:8080,...`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::addr::{FlowSet, MacPool, Udp4Flow};
use super::{frame, Params, Profile};
use crate::rng;
use crate::wire::ethernet::Mac;

/// Most services (VIPs under 172.16.0.0/14; 16 backend addresses each fill 100.64.0.0/10).
pub const MAX_SERVICES: u64 = 1 << 18;
/// Most backends per service (each service has 16 addresses of the backends' network).
pub const MAX_BACKENDS: u64 = 15;
/// The services' port.
pub const VIP_PORT: u16 = 80;
/// The backends' port.
pub const BACKEND_PORT: u16 = 8080;
const STREAM_SEQ: u64 = 0x5e7;

/// Service `i`'s virtual IP: 172.16.0.0 + i.
pub fn vip(i: u64) -> Ipv4Addr {
    Ipv4Addr::from(0xac10_0000 + i as u32)
}

/// Backend `j` of service `i`: 100.64.0.0 + 16 i + j + 1.
pub fn backend(i: u64, j: u64) -> Ipv4Addr {
    Ipv4Addr::from(0x6440_0000 + (16 * i + j + 1) as u32)
}

pub struct Services {
    services: u64,
    backends: u64,
    flows: u64,
    src: Mac,
    router: Mac,
    flow_set: FlowSet,
    /// TCP SYNs instead of UDP datagrams.
    syn: bool,
}

impl Services {
    pub fn new(p: &Params, syn: bool) -> Self {
        Services {
            services: p.services,
            backends: p.backends,
            flows: p.flows,
            src: MacPool::new(p.seed, 0).mac(0),
            router: p
                .router_mac
                .unwrap_or_else(|| MacPool::new(p.seed, 1).mac(0)),
            flow_set: FlowSet::new(p.seed),
            syn,
        }
    }

    /// Flow `j`: FlowSet's source and source port, to its service's VIP and port.
    fn flow(&self, j: u64) -> Udp4Flow {
        Udp4Flow {
            dst: vip(j % self.services).octets(),
            dst_port: VIP_PORT,
            ..self.flow_set.flow(j)
        }
    }
}

impl Profile for Services {
    fn write_frame(&self, index: u64, frame_len: usize, buf: &mut Vec<u8>) {
        let flow = self.flow(index % self.flows);
        if self.syn {
            let seq = rng::keyed(0, STREAM_SEQ, index) as u32;
            frame::tcp4_syn(
                buf,
                self.router,
                self.src,
                &flow,
                index as u16,
                seq,
                frame_len,
            );
        } else {
            frame::udp4(buf, self.router, self.src, &flow, index as u16, frame_len);
        }
    }

    fn dst_macs(&self) -> Vec<Mac> {
        vec![self.router]
    }

    fn table(&self) -> Option<String> {
        let proto = if self.syn { "tcp" } else { "udp" };
        let mut s =
            String::with_capacity(self.services as usize * (48 + 20 * self.backends as usize));
        for i in 0..self.services {
            let _ = write!(
                s,
                "service add s{i} {}:{VIP_PORT} proto={proto} backends=",
                vip(i)
            );
            for j in 0..self.backends {
                let sep = if j == 0 { "" } else { "," };
                let _ = write!(s, "{sep}{}:{BACKEND_PORT}", backend(i, j));
            }
            s.push('\n');
        }
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn params(services: u64, flows: u64) -> Params {
        Params {
            services,
            backends: 10,
            flows,
            ..Params::default()
        }
    }

    #[test]
    fn flows_spread_over_the_services_vips() {
        let s = Services::new(&params(10, 10_000), false);
        let mut buf = Vec::new();
        let mut per_vip: HashMap<[u8; 4], HashSet<Vec<u8>>> = HashMap::new();
        for i in 0..20_000 {
            s.write_frame(i, 64, &mut buf);
            assert_eq!(buf.len(), 60);
            assert_eq!(buf[23], 17, "UDP");
            let dst: [u8; 4] = buf[30..34].try_into().unwrap();
            assert_eq!(&buf[36..38], &VIP_PORT.to_be_bytes());
            assert_eq!(buf[26], 10, "source in 10.0.0.0/8");
            per_vip.entry(dst).or_default().insert(buf[26..38].to_vec());
        }
        assert_eq!(per_vip.len(), 10);
        assert!(
            per_vip.values().all(|f| f.len() == 1000),
            "1000 flows per VIP"
        );
        for i in 0..10 {
            assert!(per_vip.contains_key(&vip(i).octets()));
        }
    }

    #[test]
    fn syn_frames_are_distinct_tcp_syns() {
        let s = Services::new(&params(1, 50_000), true);
        let mut buf = Vec::new();
        let mut tuples = HashSet::new();
        for i in 0..50_000 {
            s.write_frame(i, 64, &mut buf);
            assert_eq!((buf[23], buf[47]), (6, 0x02), "TCP, SYN only");
            assert_eq!(&buf[30..34], &vip(0).octets());
            tuples.insert(buf[26..38].to_vec());
        }
        assert_eq!(tuples.len(), 50_000, "every SYN its own 5-tuple");
    }

    #[test]
    fn the_table_is_one_service_add_per_service() {
        let s = Services::new(&params(3, 10), false);
        let t = s.table().unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[1],
            "service add s1 172.16.0.1:80 proto=udp backends=100.64.0.17:8080,100.64.0.18:8080,\
             100.64.0.19:8080,100.64.0.20:8080,100.64.0.21:8080,100.64.0.22:8080,\
             100.64.0.23:8080,100.64.0.24:8080,100.64.0.25:8080,100.64.0.26:8080"
        );
        let all: HashSet<Ipv4Addr> = (0..3000)
            .flat_map(|i| (0..MAX_BACKENDS).map(move |j| backend(i, j)))
            .collect();
        assert_eq!(all.len(), 3000 * MAX_BACKENDS as usize, "backends distinct");
        assert!(all
            .iter()
            .all(|a| a.octets()[0] == 100 && a.octets()[1] & 0xc0 == 64));
        assert_eq!(vip(MAX_SERVICES - 1), Ipv4Addr::new(172, 19, 255, 255));
        assert_eq!(
            backend(MAX_SERVICES - 1, MAX_BACKENDS - 1),
            Ipv4Addr::new(100, 127, 255, 255)
        );
    }
}
