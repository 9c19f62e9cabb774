//! Tunnels as graph stages: what comes out of a tunnel (tunnel-decap) and what goes into
//! one (tunnel-encap), for every kind the plan knows (vxlan, geneve, gre teb and l3, ipip)
//! over an IPv4 underlay (not yet IPv6 underlays). A point-to-multipoint ipip tunnel
//! (no remote, Calico's tunl0) sends to the IPv4 next hop of the route that sent the packet
//! in ([`crate::l3::NextHop::Tunnel`]) and takes IPIP from any remote.
//!
//! - [`decap`]: tunnel traffic to one of the router's addresses. ip4-forward's local path
//!   (a packet whose route is `local`) hands IPv4 packets here, out of its forwarding loop
//!   (a cold function, [`Family::local`](crate::l3::forward)), when the plan has tunnels;
//!   what is no tunnel's goes on to the slow path as before.
//! - [`encap`]: frames a bridge or the router sends out of a tunnel interface, with the
//!   VTEP each goes to; their outer packets are routed in the tunnel's underlay VRF.
//!
//! The remote VTEP of a MAC behind a bridge's tunnel member lives in its MAC table entry
//! (see [`crate::l2::fdb::Remote`]): learned from the outer source of decapsulated frames,
//! or set by `fdb add BR MAC TUN remote=IP`.

pub mod decap;
pub mod encap;
