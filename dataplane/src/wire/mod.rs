//! Packet headers as views over bytes (parse and emit), in the style of smoltcp's wire
//! layer: `new_checked` validates lengths once, after which no accessor can panic.
//!
//! - [`ethernet`]: Ethernet II and 802.1Q tags.
//! - [`arp`]: ARP for IPv4 over Ethernet (RFC 826).
//! - [`ipv4`]: IPv4 (RFC 791); TTL and address rewrites with incremental checksums.
//! - [`ipv6`]: IPv6 (RFC 8200) and the walk over its extension headers.
//! - [`icmp`]: ICMPv4 (RFC 792), ICMPv6 (RFC 4443), echo replies, the errors a router
//!   sends, and Neighbor Solicitation / Advertisement (RFC 4861).
//! - [`udp`]: UDP (RFC 768) and its checksum over the IPv4 / IPv6 pseudo-header.
//! - [`vxlan`]: VXLAN (RFC 7348) and the flow-hashed UDP source port.
//! - [`geneve`]: Geneve (RFC 8926) and its option TLVs.
//! - [`gre`]: GRE (RFC 2784) with keys and sequence numbers (RFC 2890).
//! - [`tunnel`]: outer headers for VXLAN, Geneve, GRE and IPIP (RFC 2003) over IPv4, and
//!   the classification of a received tunnel packet with named drop reasons.
//! - [`checksum`]: the Internet checksum (RFC 1071), incremental updates (RFC 1624),
//!   pseudo-header sums.
//! - [`vnet`]: the virtio-net header (virtio 1.1 §5.1.6) of packet sockets and taps, and
//!   its translation to and from the dataplane's offload state.
//! - [`gso`]: software segmentation of TCP (TSO) and UDP (USO) super-frames.
//!
//! Each view is `Name<T: AsRef<[u8]>>`, read-only; mutators exist where `T` is also
//! `AsMut<[u8]>` and never change a length the view checked. Builders write into a
//! `&mut [u8]` and return the bytes written, or None when the buffer is too short. Nothing
//! here allocates.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod geneve;
pub mod gre;
pub mod gso;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tunnel;
pub mod udp;
pub mod vnet;
pub mod vxlan;
