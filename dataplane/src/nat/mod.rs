//! NAT and service load balancing: Kubernetes Services (a virtual IP and port over
//! backends, NodePorts), Docker-style port mappings, and masquerade (source NAT to an
//! interface's address).
//!
//! - [`service`]: a service, its backends and the Maglev table that spreads new flows.
//! - [`translate`]: the per-packet part, run by ip4-forward and ip6-forward on each vector
//!   before their FIB lookups (where NAT sits in the graph, below).
//!
//! A NAT session is a flow as it arrived (its *original* tuple) and as it leaves (its
//! *translated* tuple). It takes two entries of the session table the stateful ACLs use
//! ([`crate::acl::session`]): one keyed by the original tuple, which rewrites packets to
//! the translated one, and one keyed by the reply of the translated tuple, which rewrites
//! replies back to the reply of the original. Both live in the table's NAT key space
//! (their flows' interface is [`NAT_KEY`] plus the VRF), so they never meet an ACL's
//! sessions, and they share its limits, timeouts, eviction and `vsctl sessions`.
//!
//! Where NAT sits: destination NAT (services, NodePorts, port mappings) is decided before
//! the FIB lookup, so the packet is routed to its backend; source NAT (masquerade) is
//! decided from the FIB's answer for the destination (the output interface's masquerade
//! setting), so it applies after routing as Linux's POSTROUTING does; both rewrite the
//! packet before ip4-forward / ip6-forward route it, and the output ACLs (and the input
//! ACLs of the next hop) see translated addresses, as NetworkPolicy expects.
//!
//! Thread safety: a [`NatPlan`] is immutable and shared by the workers through the plan;
//! the session table is the ACLs' (see its contract).

pub mod service;
pub mod translate;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

pub use service::{BackendSpec, BackendStats, Service, ServiceSpec, TCP, UDP};

use crate::plan::IfIndex;

/// The interface field of NAT sessions' flows: this plus the VRF (above every
/// interface index, [`crate::plan::MAX_IFACES`]).
pub const NAT_KEY: u16 = 0x8000;

/// A port mapping as configured: `proto` traffic to `port` of any of `addrs` (the
/// addresses of the interface it was configured on) goes to `to`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortMap {
    pub iface: IfIndex,
    pub addrs: Vec<IpAddr>,
    pub proto: u8,
    pub port: u16,
    pub to: (IpAddr, u16),
}

/// An interface whose egress traffic is masqueraded, with the addresses it takes (its
/// first IPv4 and first IPv6 address; a family it has no address of is not translated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Masquerade {
    pub v4: Option<std::net::Ipv4Addr>,
    pub v6: Option<std::net::Ipv6Addr>,
}

/// A small, fast hasher for the plan's maps (keys are a few integers).
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline(always)]
    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 31)
    }
    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u8(*b);
        }
    }
    #[inline(always)]
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    #[inline(always)]
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    #[inline(always)]
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    #[inline(always)]
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(23) ^ i).wrapping_mul(0xff51_afd7_ed55_8ccd);
    }
    #[inline(always)]
    fn write_u128(&mut self, i: u128) {
        self.write_u64(i as u64);
        self.write_u64((i >> 64) as u64);
    }
    #[inline(always)]
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// An address as the session table and the maps hold it (IPv4 in the low 32 bits).
#[inline(always)]
pub fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// (vrf, proto, address, port): a service's front or a port mapping's.
type Front = (u16, u8, u128, u16);

/// What the workers read to translate: services by VIP and port, NodePorts, port
/// mappings, masquerading interfaces. Built by the control thread for each plan that has
/// any of them.
#[derive(Debug, Default)]
pub struct NatPlan {
    services: Map<Front, Arc<Service>>,
    /// (vrf, proto, port) -> service, for the router's own addresses.
    nodeports: Map<(u16, u8, u16), Arc<Service>>,
    /// Port mappings by (vrf, proto, address, port), to (address, port).
    portmaps: Map<Front, (u128, u16)>,
    /// By interface index.
    masquerade: Vec<Masquerade>,
}

/// Plans compare by identity (each publish that changes NAT builds a new one).
impl PartialEq for NatPlan {
    fn eq(&self, o: &NatPlan) -> bool {
        std::ptr::eq(self, o)
    }
}

impl Eq for NatPlan {}

impl NatPlan {
    /// The plan of `services`, masquerading interfaces (`masquerade`, with the VRF of
    /// each) and port mappings (each with the VRF of its interface).
    pub fn new(
        services: Vec<Arc<Service>>,
        masquerade: Vec<(IfIndex, Masquerade)>,
        portmaps: Vec<(u16, PortMap)>,
    ) -> NatPlan {
        let mut p = NatPlan::default();
        for s in &services {
            let sp = &s.spec;
            p.services
                .insert((sp.vrf, sp.proto, addr_bits(sp.vip), sp.port), s.clone());
            if let Some(np) = sp.nodeport {
                p.nodeports.insert((sp.vrf, sp.proto, np), s.clone());
            }
        }
        for (vrf, m) in portmaps {
            for a in &m.addrs {
                p.portmaps.insert(
                    (vrf, m.proto, addr_bits(*a), m.port),
                    (addr_bits(m.to.0), m.to.1),
                );
            }
        }
        for (i, m) in masquerade {
            let i = usize::from(i);
            if p.masquerade.len() <= i {
                p.masquerade.resize(i + 1, Masquerade::default());
            }
            p.masquerade[i] = m;
        }
        p
    }

    /// The service at `vip`:`port` for `proto` in `vrf`.
    #[inline(always)]
    pub fn service(&self, vrf: u16, proto: u8, vip: u128, port: u16) -> Option<&Arc<Service>> {
        if self.services.is_empty() {
            return None;
        }
        self.services.get(&(vrf, proto, vip, port))
    }

    /// The service whose NodePort is `port` for `proto` in `vrf`.
    #[inline(always)]
    pub fn nodeport(&self, vrf: u16, proto: u8, port: u16) -> Option<&Arc<Service>> {
        if self.nodeports.is_empty() {
            return None;
        }
        self.nodeports.get(&(vrf, proto, port))
    }

    /// Where a port mapping sends `proto` traffic to `addr`:`port` in `vrf`.
    #[inline(always)]
    pub fn portmap(&self, vrf: u16, proto: u8, addr: u128, port: u16) -> Option<(u128, u16)> {
        if self.portmaps.is_empty() {
            return None;
        }
        self.portmaps.get(&(vrf, proto, addr, port)).copied()
    }

    /// The masquerade addresses of interface `i`, if it masquerades.
    #[inline(always)]
    pub fn masquerade(&self, i: IfIndex) -> Option<&Masquerade> {
        self.masquerade
            .get(usize::from(i))
            .filter(|m| m.v4.is_some() || m.v6.is_some())
    }
}
