//! Tunnels as graph stages: what comes out of a tunnel (tunnel-decap) and what goes into
//! one (tunnel-encap). VXLAN over an IPv4 underlay is what they speak so far; the other
//! kinds the plan knows (geneve, gre, ipip) are left to the slow path on receipt (as
//! before: punted as local traffic) and dropped as `no_encap` on the way out.
//!
//! - [`decap`]: tunnel traffic to one of the router's addresses. ip4-forward's local path
//!   (a packet whose route is `local`) hands IPv4 packets here, out of its forwarding loop,
//!   when the plan has tunnels; what is no tunnel's goes on to the slow path as before.
//! - [`encap`]: frames a bridge or the router sends out of a tunnel interface, with the
//!   VTEP each goes to; their outer packets are routed in the tunnel's underlay VRF.
//!
//! The remote VTEP of a MAC behind a bridge's tunnel member lives in its MAC table entry
//! (see [`crate::l2::fdb::Remote`]): learned from the outer source of decapsulated frames,
//! or set by `fdb add BR MAC TUN remote=IP`.

pub mod decap;
pub mod encap;
