//! Traffic profiles. A profile is an address plan: given a packet's index and its frame size
//! it writes that frame. The size mix, the count and the pcap container are the generator's
//! business (see [`crate::generate`]), so a new profile (random destinations across a route
//! table, VXLAN-encapsulated, ACL rule sets, services: all exist) is one new file here plus one arm in
//! [`ProfileKind`]; the address building blocks live in [`addr`] and [`frame`].

pub mod acl;
pub mod addr;
pub mod frame;
pub mod l2;
pub mod routes;
pub mod services;
pub mod vxlan;
mod xconnect;

use clap::ValueEnum;

use crate::wire::ethernet::Mac;

/// Knobs common to all profiles; a profile may ignore those it has no use for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Distinct source MACs and distinct destination MACs.
    pub macs: u64,
    /// Distinct IPv4/UDP 5-tuples.
    pub flows: u64,
    pub seed: u64,
    /// Prefixes in the route table (`routes`, `routes6`).
    pub routes: u64,
    /// Rules in the ACL (`acl`).
    pub rules: u64,
    /// VXLAN network identifier (`vxlan`).
    pub vni: u32,
    /// Services (virtual IPs) and backends per service (`services`, `services-syn`).
    pub services: u64,
    pub backends: u64,
    /// The router's MAC, the frames' destination (`routes`, `routes6`; default: pool 1's
    /// first MAC; `vxlan`: the outer frames', the receiving VTEP's, default pool 3's first
    /// MAC). A benchmark sets it to the MAC of the port that receives them.
    pub router_mac: Option<Mac>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            macs: 1,
            flows: 1,
            seed: 1,
            routes: 1024,
            rules: 1000,
            vni: 100,
            services: 10,
            backends: 10,
            router_mac: None,
        }
    }
}

pub trait Profile {
    /// Replaces `buf`'s contents with frame number `index`, `frame_len` bytes on the wire
    /// (FCS included, so `frame_len - 4` bytes are written).
    fn write_frame(&self, index: u64, frame_len: usize, buf: &mut Vec<u8>);

    /// Every destination MAC the profile's frames carry, so a benchmark can install them as
    /// known destinations (static FDB entries) before it replays the pcap.
    fn dst_macs(&self) -> Vec<Mac>;

    /// The table the traffic is meant for, as text a benchmark installs: the route
    /// prefixes (`routes`, `routes6`), the ACL rules (`acl`); None for the others.
    fn table(&self) -> Option<String> {
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProfileKind {
    /// L2 cross-connect: N flows, N src/dst MAC pairs fixed per packet slot (default 1 pair);
    /// the switch looks at nothing but the input port.
    Xconnect,
    /// Bridging: N source hosts behind the input port send to N destination hosts behind
    /// the output port (default 1024 each); every source and every destination appears in
    /// each run of N packets, the src/dst pairing rotates from one run to the next.
    L2,
    /// IPv4 routing: --flows random destinations across a BGP-shaped table of --routes
    /// prefixes (perf::routes, as fib-bench), to the router's MAC (--table-out writes the
    /// prefixes).
    Routes,
    /// IPv6 routing: as routes, over an IPv6 table (frames at least 66 B on the wire).
    Routes6,
    /// IPv4 routing of TCP SYNs: as routes, every frame a SYN of its flow (with --count =
    /// --flows, every SYN a distinct 5-tuple): new connections for a stateful ACL.
    RoutesSyn,
    /// Traffic to load-balanced services: --flows IPv4/UDP flows to --services virtual IPs
    /// (flow j to service j mod services), each with --backends backends (--table-out
    /// writes the services as `vsctl transaction` lines).
    Services,
    /// As services, every frame a TCP SYN of its flow (with --count = --flows, every SYN a
    /// distinct 5-tuple): new connections through the services.
    ServicesSyn,
    /// VXLAN-encapsulated l2 traffic (outer IPv4/UDP 4789, VNI --vni), for decapsulation.
    Vxlan,
    /// Packets for an ACL of --rules rules, spread over all of them, 1 in 8 matching none
    /// (--table-out writes the rules).
    Acl,
}

impl ProfileKind {
    /// `--macs` when not given.
    pub fn default_macs(self) -> u64 {
        match self {
            ProfileKind::L2 | ProfileKind::Vxlan => 1024,
            ProfileKind::Xconnect
            | ProfileKind::Routes
            | ProfileKind::Routes6
            | ProfileKind::RoutesSyn
            | ProfileKind::Services
            | ProfileKind::ServicesSyn
            | ProfileKind::Acl => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ProfileKind::Xconnect => "xconnect",
            ProfileKind::L2 => "l2",
            ProfileKind::Routes => "routes",
            ProfileKind::Routes6 => "routes6",
            ProfileKind::RoutesSyn => "routes-syn",
            ProfileKind::Services => "services",
            ProfileKind::ServicesSyn => "services-syn",
            ProfileKind::Vxlan => "vxlan",
            ProfileKind::Acl => "acl",
        }
    }

    pub fn build(self, params: &Params) -> Box<dyn Profile> {
        match self {
            ProfileKind::Xconnect => Box::new(xconnect::Xconnect::new(params)),
            ProfileKind::L2 => Box::new(l2::L2::new(params)),
            ProfileKind::Routes => Box::new(routes::Routes::new(params, routes::Family::V4)),
            ProfileKind::Routes6 => Box::new(routes::Routes::new(params, routes::Family::V6)),
            ProfileKind::RoutesSyn => Box::new(routes::Routes::syn(params)),
            ProfileKind::Services => Box::new(services::Services::new(params, false)),
            ProfileKind::ServicesSyn => Box::new(services::Services::new(params, true)),
            ProfileKind::Vxlan => Box::new(vxlan::Vxlan::new(params)),
            ProfileKind::Acl => Box::new(acl::Acl::new(params)),
        }
    }
}
