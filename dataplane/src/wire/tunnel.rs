//! Tunnels over IPv4: the outer headers a sender prepends (VXLAN, Geneve, GRE, IPIP) and
//! the classification of a received packet addressed to a tunnel endpoint.
//!
//! Sending: a caller holding the inner packet (in an mbuf, with headroom in front) knows
//! its length and the outer header length ([`VXLAN_V4_OUTER_LEN`] and the like, or
//! [`geneve_v4_outer_len`], [`gre_v4_outer_len`]); it makes that much room and passes
//! exactly that slice to the matching `encap_*_v4`, which writes Ethernet, IPv4 (header
//! checksum computed), UDP or GRE, and the tunnel header, and returns the bytes written.
//! Nothing is written when an argument is refused. The UDP checksum is sent as zero,
//! which RFC 768 allows over IPv4 and RFC 7348 §5 recommends for VXLAN; Geneve over IPv4
//! sends zero too (RFC 8926 §3.3 has the conditions for that; a caller that wants a
//! checksum fills it with [`UdpPacket::fill_checksum_v4`] once the inner packet is in
//! place). The outer header carries no VLAN tag; a caller on a tagged underlay makes 4
//! bytes more room and adds one with [`ethernet::emit_tag_into_room`].
//!
//! Receiving: [`classify_ipv4`] takes the packet from its outer IPv4 header on and finds
//! the tunnel, the outer addresses, the VNI or key, and where the inner packet is, or a
//! named reason to drop it ([`TunnelDrop::name`]).
//!
//! ```text
//! VXLAN    | Ethernet 14 | IPv4 20 | UDP 8 | VXLAN 8            | inner Ethernet
//! Geneve   | Ethernet 14 | IPv4 20 | UDP 8 | Geneve 8 + options | inner (Protocol Type)
//! GRE      | Ethernet 14 | IPv4 20 | GRE 4 (+4 C, +4 K, +4 S)   | inner (Protocol Type)
//! IPIP     | Ethernet 14 | IPv4 20 (protocol 4 / 41)            | inner IPv4 / IPv6
//! ```

use std::net::Ipv4Addr;

use super::ethernet::{self, Mac};
use super::geneve::{self, GeneveHeader, GeneveRepr};
use super::gre::{self, GrePacket, GreRepr};
use super::ipv4::{self, Ipv4Packet, Ipv4Repr, PROTO_GRE, PROTO_IPIP, PROTO_IPV6, PROTO_UDP};
use super::ipv6;
use super::udp::{self, UdpPacket, UdpRepr};
use super::vxlan::{self, VxlanHeader};

/// Ethernet and IPv4 (no options): where every outer header starts its own part.
pub const ETH_IPV4_LEN: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN;
/// Outer headers of VXLAN over IPv4: 14 + 20 + 8 + 8.
pub const VXLAN_V4_OUTER_LEN: usize = ETH_IPV4_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;
/// Outer headers of Geneve over IPv4 without options: 14 + 20 + 8 + 8.
pub const GENEVE_V4_OUTER_LEN: usize = ETH_IPV4_LEN + udp::HEADER_LEN + geneve::HEADER_LEN;
/// Outer headers of GRE over IPv4 with no optional field: 14 + 20 + 4.
pub const GRE_V4_OUTER_LEN: usize = ETH_IPV4_LEN + gre::BASE_HEADER_LEN;
/// Outer headers of IPIP (RFC 2003) or IPv6-in-IPv4: 14 + 20.
pub const IPIP_V4_OUTER_LEN: usize = ETH_IPV4_LEN;

/// Outer headers of Geneve over IPv4 carrying `options_len` bytes of options.
#[inline]
pub const fn geneve_v4_outer_len(options_len: usize) -> usize {
    GENEVE_V4_OUTER_LEN + options_len
}

/// Outer headers of GRE over IPv4 with the fields `repr` asks for.
#[inline]
pub fn gre_v4_outer_len(repr: &GreRepr) -> usize {
    ETH_IPV4_LEN + repr.header_len()
}

/// The outer Ethernet and IPv4 fields of a tunnel's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OuterV4 {
    /// Source MAC: the underlay interface's.
    pub src_mac: Mac,
    /// Destination MAC: the underlay next hop's.
    pub dst_mac: Mac,
    /// Source address: the local tunnel endpoint.
    pub src: Ipv4Addr,
    /// Destination address: the remote tunnel endpoint.
    pub dst: Ipv4Addr,
    /// Time to Live.
    pub ttl: u8,
    /// DSCP and ECN (the former TOS byte); RFC 6040 §4.1 for what to copy from the inner.
    pub dscp_ecn: u8,
    /// Don't Fragment.
    pub dont_fragment: bool,
    /// Identification (RFC 6864: with DF set it may be anything, such as 0; without it,
    /// a per-worker counter).
    pub ident: u16,
}

/// What the tunnel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner {
    /// An Ethernet frame (VXLAN; Geneve and GRE with Protocol Type 0x6558).
    Ethernet,
    /// An IPv4 packet.
    Ipv4,
    /// An IPv6 packet.
    Ipv6,
}

impl Inner {
    /// The smallest inner packet that can be valid: an Ethernet header, or an IP header
    /// without options.
    #[inline]
    const fn min_len(self) -> usize {
        match self {
            Inner::Ethernet => ethernet::HEADER_LEN,
            Inner::Ipv4 => ipv4::HEADER_LEN,
            Inner::Ipv6 => ipv6::HEADER_LEN,
        }
    }

    /// The inner kind an ethertype (Geneve's or GRE's Protocol Type) names.
    #[inline]
    fn from_ethertype(t: u16) -> Option<Inner> {
        match t {
            ethernet::ETHERTYPE_TEB => Some(Inner::Ethernet),
            ethernet::ETHERTYPE_IPV4 => Some(Inner::Ipv4),
            ethernet::ETHERTYPE_IPV6 => Some(Inner::Ipv6),
            _ => None,
        }
    }
}

/// Writes Ethernet and IPv4 headers for `payload_len` bytes of `protocol` after them.
/// The caller has checked that `buf` holds [`ETH_IPV4_LEN`] bytes and the total fits.
#[inline]
fn emit_eth_ipv4(buf: &mut [u8], o: &OuterV4, protocol: u8, payload_len: u16) -> Option<usize> {
    let n = ethernet::emit(buf, &o.dst_mac, &o.src_mac, ethernet::ETHERTYPE_IPV4)?;
    let repr = Ipv4Repr {
        src: o.src,
        dst: o.dst,
        protocol,
        ttl: o.ttl,
        dscp_ecn: o.dscp_ecn,
        ident: o.ident,
        dont_fragment: o.dont_fragment,
        payload_len,
    };
    Some(n + ipv4::emit(&mut buf[n..], &repr)?)
}

/// The IPv4 payload length for `headers` bytes of tunnel headers after the IPv4 header
/// and `inner_len` bytes of inner packet, if the Total Length can hold it.
#[inline]
fn ip_payload_len(headers: usize, inner_len: usize) -> Option<u16> {
    let total = inner_len.checked_add(headers + ipv4::HEADER_LEN)?;
    u16::try_from(total).ok()?;
    Some((total - ipv4::HEADER_LEN) as u16)
}

/// Writes Ethernet, IPv4 and UDP, the tunnel header being `tunnel_len` bytes after.
#[inline]
fn emit_udp_outer(
    buf: &mut [u8],
    o: &OuterV4,
    src_port: u16,
    dst_port: u16,
    tunnel_len: usize,
    inner_len: usize,
) -> Option<usize> {
    let ip_payload = ip_payload_len(udp::HEADER_LEN + tunnel_len, inner_len)?;
    let n = emit_eth_ipv4(buf, o, PROTO_UDP, ip_payload)?;
    let repr = UdpRepr {
        src_port,
        dst_port,
        payload_len: usize::from(ip_payload) - udp::HEADER_LEN,
    };
    Some(n + udp::emit(&mut buf[n..], &repr)?)
}

/// Writes the [`VXLAN_V4_OUTER_LEN`] bytes of outer headers of a VXLAN packet carrying an
/// `inner_len`-byte Ethernet frame with `vni`, from `src_port` (see
/// [`vxlan::source_port`]) to `dst_port` ([`vxlan::PORT_IANA`] or the tunnel's), and
/// returns 50. None, and nothing written, when `buf` is shorter, `vni` passes 24 bits, or
/// the packet would pass 65535 bytes of IPv4.
pub fn encap_vxlan_v4(
    buf: &mut [u8],
    outer: &OuterV4,
    src_port: u16,
    dst_port: u16,
    vni: u32,
    inner_len: usize,
) -> Option<usize> {
    let h = buf.get_mut(..VXLAN_V4_OUTER_LEN)?;
    if vni > vxlan::MAX_VNI {
        return None;
    }
    let n = emit_udp_outer(h, outer, src_port, dst_port, vxlan::HEADER_LEN, inner_len)?;
    Some(n + vxlan::emit(&mut h[n..], vni)?)
}

/// Writes the [`geneve_v4_outer_len`]`(options.len())` bytes of outer headers of a Geneve
/// packet (header from `repr`, then `options` as [`geneve::emit`] takes them) carrying
/// `inner_len` bytes, and returns their length. None, and nothing written, when `buf` is
/// shorter, [`geneve::emit`] refuses `repr` or `options`, or the packet would pass 65535
/// bytes of IPv4.
pub fn encap_geneve_v4(
    buf: &mut [u8],
    outer: &OuterV4,
    src_port: u16,
    dst_port: u16,
    repr: &GeneveRepr,
    options: &[u8],
    inner_len: usize,
) -> Option<usize> {
    let len = geneve_v4_outer_len(options.len());
    let h = buf.get_mut(..len)?;
    let tunnel_len = geneve::HEADER_LEN + options.len();
    ip_payload_len(udp::HEADER_LEN + tunnel_len, inner_len)?;
    // The Geneve header first: it is the one part that can still refuse.
    let at = ETH_IPV4_LEN + udp::HEADER_LEN;
    geneve::emit(&mut h[at..], repr, options)?;
    emit_udp_outer(h, outer, src_port, dst_port, tunnel_len, inner_len)?;
    Some(len)
}

/// Writes the [`gre_v4_outer_len`]`(repr)` bytes of outer headers of a GRE packet
/// (IPv4 protocol 47) carrying `inner_len` bytes, and returns their length. A checksum,
/// if `repr` asks for one, is left zero: once the inner packet is behind the header the
/// caller fills it with [`gre::fill_checksum`] on `buf[ETH_IPV4_LEN..]` and the inner
/// bytes. None, and nothing written, when `buf` is shorter or the packet would pass
/// 65535 bytes of IPv4.
pub fn encap_gre_v4(
    buf: &mut [u8],
    outer: &OuterV4,
    repr: &GreRepr,
    inner_len: usize,
) -> Option<usize> {
    let len = gre_v4_outer_len(repr);
    let h = buf.get_mut(..len)?;
    let ip_payload = ip_payload_len(repr.header_len(), inner_len)?;
    let n = emit_eth_ipv4(h, outer, PROTO_GRE, ip_payload)?;
    Some(n + gre::emit(&mut h[n..], repr)?)
}

/// Writes the [`IPIP_V4_OUTER_LEN`] bytes of outer headers of an IP-in-IPv4 packet
/// carrying an `inner_len`-byte `inner` packet (IPv4: protocol 4, RFC 2003 §3; IPv6:
/// protocol 41, RFC 4213 §3.5) and returns 34. None, and nothing written, when `buf` is
/// shorter, `inner` is Ethernet, or the packet would pass 65535 bytes of IPv4.
pub fn encap_ipip_v4(
    buf: &mut [u8],
    outer: &OuterV4,
    inner: Inner,
    inner_len: usize,
) -> Option<usize> {
    let protocol = match inner {
        Inner::Ipv4 => PROTO_IPIP,
        Inner::Ipv6 => PROTO_IPV6,
        Inner::Ethernet => return None,
    };
    let h = buf.get_mut(..IPIP_V4_OUTER_LEN)?;
    let ip_payload = ip_payload_len(0, inner_len)?;
    emit_eth_ipv4(h, outer, protocol, ip_payload)
}

/// What a UDP destination port is, as the caller's configuration says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpTunnel {
    /// VXLAN (RFC 7348).
    Vxlan,
    /// Geneve (RFC 8926).
    Geneve,
}

/// The tunnel a received packet came through, with its identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// VXLAN and its 24-bit VNI.
    Vxlan {
        /// VXLAN Network Identifier.
        vni: u32,
    },
    /// Geneve and its 24-bit VNI.
    Geneve {
        /// Virtual Network Identifier.
        vni: u32,
    },
    /// GRE and its key, if the packet has one (RFC 2890 §2.1). Sequence numbers are not
    /// acted on (RFC 2890 §2.2 lets a receiver that does not keep order pass packets on).
    Gre {
        /// Key.
        key: Option<u32>,
    },
    /// IP in IPv4 (protocol 4 or 41).
    Ipip,
}

/// A packet [`classify_ipv4`] found to come through a tunnel. Offsets count from the
/// start of the outer IPv4 header, and `inner_offset + inner_len` is within the slice it
/// was given (and within the outer Total Length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelRx {
    /// The tunnel and its VNI or key.
    pub kind: TunnelKind,
    /// Outer source: the remote tunnel endpoint.
    pub src: Ipv4Addr,
    /// Outer destination: the local tunnel endpoint.
    pub dst: Ipv4Addr,
    /// Outer DSCP and ECN, for the decapsulator's ECN rules (RFC 6040 §4.2).
    pub dscp_ecn: u8,
    /// What the tunnel carries.
    pub inner: Inner,
    /// Where the inner packet starts.
    pub inner_offset: usize,
    /// How long it is (at least an Ethernet header or a minimal IP header).
    pub inner_len: usize,
}

/// Why [`classify_ipv4`] dropped a packet. Each has a counter; the discriminant is its
/// index in [`TunnelDrop::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelDrop {
    /// The outer IPv4 header is truncated or contradicts itself (see [`ipv4::Malformed`]).
    OuterBadHeader = 0,
    /// The outer packet is a fragment of tunnel traffic: nothing here reassembles.
    OuterFragment = 1,
    /// The UDP header is truncated or its Length is below 8 or past the IPv4 payload.
    UdpBadLength = 2,
    /// A VXLAN header shorter than 8 bytes.
    VxlanShort = 3,
    /// A VXLAN header without the I flag (RFC 7348 §5).
    VxlanNoIFlag = 4,
    /// A Geneve header shorter than 8 bytes or than its options.
    GeneveShort = 5,
    /// A Geneve version other than 0 (RFC 8926 §3.4).
    GeneveVersion = 6,
    /// A Geneve control packet (O bit): its payload is not forwarded (RFC 8926 §3.4), and
    /// no control protocol is spoken here.
    GeneveControl = 7,
    /// A critical Geneve option this endpoint does not know (RFC 8926 §3.5).
    GeneveCriticalOption = 8,
    /// A Geneve Protocol Type other than Ethernet, IPv4 or IPv6.
    GeneveProto = 9,
    /// A GRE header shorter than its flags announce.
    GreShort = 10,
    /// A GRE version other than 0.
    GreVersion = 11,
    /// GRE bits RFC 2784 §2.3 has a receiver refuse (RFC 1701 routing, strict source
    /// route, recursion control).
    GreReservedBits = 12,
    /// A GRE checksum that does not verify.
    GreChecksum = 13,
    /// A GRE Protocol Type other than Ethernet (0x6558), IPv4 or IPv6.
    GreProto = 14,
    /// An inner packet shorter than an Ethernet header or a minimal IP header.
    InnerTooShort = 15,
}

impl TunnelDrop {
    /// Every reason, in counter order.
    pub const ALL: [TunnelDrop; 16] = [
        TunnelDrop::OuterBadHeader,
        TunnelDrop::OuterFragment,
        TunnelDrop::UdpBadLength,
        TunnelDrop::VxlanShort,
        TunnelDrop::VxlanNoIFlag,
        TunnelDrop::GeneveShort,
        TunnelDrop::GeneveVersion,
        TunnelDrop::GeneveControl,
        TunnelDrop::GeneveCriticalOption,
        TunnelDrop::GeneveProto,
        TunnelDrop::GreShort,
        TunnelDrop::GreVersion,
        TunnelDrop::GreReservedBits,
        TunnelDrop::GreChecksum,
        TunnelDrop::GreProto,
        TunnelDrop::InnerTooShort,
    ];

    /// The name shown by `vsctl drops` and in metrics.
    pub const fn name(self) -> &'static str {
        match self {
            TunnelDrop::OuterBadHeader => "outer_bad_header",
            TunnelDrop::OuterFragment => "outer_fragment",
            TunnelDrop::UdpBadLength => "udp_bad_length",
            TunnelDrop::VxlanShort => "vxlan_short",
            TunnelDrop::VxlanNoIFlag => "vxlan_no_i_flag",
            TunnelDrop::GeneveShort => "geneve_short",
            TunnelDrop::GeneveVersion => "geneve_version",
            TunnelDrop::GeneveControl => "geneve_control",
            TunnelDrop::GeneveCriticalOption => "geneve_critical_option",
            TunnelDrop::GeneveProto => "geneve_proto",
            TunnelDrop::GreShort => "gre_short",
            TunnelDrop::GreVersion => "gre_version",
            TunnelDrop::GreReservedBits => "gre_reserved_bits",
            TunnelDrop::GreChecksum => "gre_checksum",
            TunnelDrop::GreProto => "gre_proto",
            TunnelDrop::InnerTooShort => "inner_too_short",
        }
    }
}

/// The destination port of a UDP header, if the bytes reach that far (a first fragment
/// or a truncated datagram may hold no more).
#[inline]
fn udp_dst_port(udp: &[u8]) -> Option<u16> {
    let p = udp.get(2..4)?;
    Some(u16::from_be_bytes([p[0], p[1]]))
}

/// Classifies a packet addressed to this host, given from its outer IPv4 header on (link
/// padding after Total Length may follow; it is ignored).
///
/// Ok(Some) for tunnel traffic that passes every check; Ok(None) for traffic that is no
/// tunnel's: another protocol, or UDP to a port `udp_port` does not name (or too short to
/// show a port); Err with the reason for tunnel traffic that must be dropped, and for an
/// outer IPv4 header that is malformed.
///
/// - `udp_port(dst_port)` says which UDP destination ports are VXLAN or Geneve
///   endpoints ([`vxlan::PORT_IANA`], [`vxlan::PORT_LINUX`], [`geneve::PORT`], or as
///   configured).
/// - `geneve_known(class, type)` says which critical Geneve options this endpoint
///   implements (none yet: pass `|_, _| false`).
///
/// Not checked here, because the caller is better placed to: the outer header checksum
/// (the IPv4 input stage that decided the packet is for this host verifies it, or the
/// NIC did) and a non-zero UDP checksum (the NIC's verdict usually exists;
/// [`UdpPacket::checksum_ok_v4`] covers the rest; RFC 7348 §5 lets a VXLAN receiver skip
/// it, RFC 8926 §3.3 is Geneve's rule). The GRE checksum, when present, is verified: GRE
/// has no other integrity check and NIC offloads rarely cover it.
///
/// Outer IPv4 options are allowed (skipped). Outer fragments of GRE or IPIP, and first
/// fragments of UDP to a tunnel port, are dropped as [`TunnelDrop::OuterFragment`]:
/// nothing in the dataplane reassembles, and a tunnel endpoint sets DF or keeps its
/// packets under the path MTU. Later UDP fragments carry no port to tell a tunnel by and
/// are Ok(None), left to whatever handles this host's other traffic.
#[inline]
pub fn classify_ipv4<P, K>(
    packet: &[u8],
    udp_port: P,
    geneve_known: K,
) -> Result<Option<TunnelRx>, TunnelDrop>
where
    P: Fn(u16) -> Option<UdpTunnel>,
    K: Fn(u16, u8) -> bool,
{
    let ip = Ipv4Packet::new_checked(packet).map_err(|_| TunnelDrop::OuterBadHeader)?;
    let protocol = ip.protocol();
    let ip_hl = ip.header_len();
    let payload = ip.payload();
    if ip.is_fragment() {
        let tunnel = match protocol {
            PROTO_IPIP | PROTO_IPV6 | PROTO_GRE => true,
            PROTO_UDP => {
                ip.frag_offset() == 0 && udp_dst_port(payload).and_then(&udp_port).is_some()
            }
            _ => false,
        };
        return if tunnel {
            Err(TunnelDrop::OuterFragment)
        } else {
            Ok(None)
        };
    }
    // (kind, inner, offset of the inner packet within `payload`, end of it there)
    let (kind, inner, start, end) = match protocol {
        PROTO_UDP => {
            let Some(tunnel) = udp_dst_port(payload).and_then(&udp_port) else {
                return Ok(None);
            };
            let u = UdpPacket::new_checked(payload).map_err(|_| TunnelDrop::UdpBadLength)?;
            let end = usize::from(u.length());
            let at = udp::HEADER_LEN;
            match tunnel {
                UdpTunnel::Vxlan => {
                    let v = VxlanHeader::new_checked(u.payload()).map_err(|e| match e {
                        vxlan::Malformed::Truncated => TunnelDrop::VxlanShort,
                        vxlan::Malformed::NoIFlag => TunnelDrop::VxlanNoIFlag,
                    })?;
                    let kind = TunnelKind::Vxlan { vni: v.vni() };
                    (kind, Inner::Ethernet, at + vxlan::HEADER_LEN, end)
                }
                UdpTunnel::Geneve => {
                    let g = GeneveHeader::new_checked(u.payload()).map_err(|e| match e {
                        geneve::Malformed::BadVersion => TunnelDrop::GeneveVersion,
                        _ => TunnelDrop::GeneveShort,
                    })?;
                    if g.control() {
                        return Err(TunnelDrop::GeneveControl);
                    }
                    if g.has_unknown_critical(&geneve_known) {
                        return Err(TunnelDrop::GeneveCriticalOption);
                    }
                    let inner =
                        Inner::from_ethertype(g.protocol()).ok_or(TunnelDrop::GeneveProto)?;
                    let kind = TunnelKind::Geneve { vni: g.vni() };
                    (kind, inner, at + g.header_len(), end)
                }
            }
        }
        PROTO_GRE => {
            let g = GrePacket::new_checked(payload).map_err(|e| match e {
                gre::Malformed::Truncated => TunnelDrop::GreShort,
                gre::Malformed::BadVersion => TunnelDrop::GreVersion,
                gre::Malformed::ReservedBits => TunnelDrop::GreReservedBits,
            })?;
            if !g.checksum_ok() {
                return Err(TunnelDrop::GreChecksum);
            }
            let inner = Inner::from_ethertype(g.protocol()).ok_or(TunnelDrop::GreProto)?;
            let kind = TunnelKind::Gre { key: g.key() };
            (kind, inner, g.header_len(), payload.len())
        }
        PROTO_IPIP => (TunnelKind::Ipip, Inner::Ipv4, 0, payload.len()),
        PROTO_IPV6 => (TunnelKind::Ipip, Inner::Ipv6, 0, payload.len()),
        _ => return Ok(None),
    };
    // Every parser above keeps start <= end <= payload.len().
    let inner_len = end - start;
    if inner_len < inner.min_len() {
        return Err(TunnelDrop::InnerTooShort);
    }
    Ok(Some(TunnelRx {
        kind,
        src: ip.src(),
        dst: ip.dst(),
        dscp_ecn: ip.dscp_ecn(),
        inner,
        inner_offset: ip_hl + start,
        inner_len,
    }))
}

/// The common VXLAN packet, told apart in a few loads: [`classify_ipv4`]'s answer for a
/// packet whose UDP destination port is a VXLAN tunnel's, when the outer IPv4 header has
/// no options and is not a fragment, and the packet is complete (UDP and VXLAN headers
/// and an inner Ethernet header inside the Total Length). The UDP destination port comes
/// with it: the caller still has to know it is a VXLAN port. None for everything else,
/// which [`classify_ipv4`] then takes (the two agree wherever this answers: tested). The
/// VNI comes out too (it is in the answer's `kind`).
#[inline(always)]
pub fn vxlan_v4_fast(packet: &[u8]) -> Option<(u16, u32, TunnelRx)> {
    // IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14.
    const MIN: usize = ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN + 14;
    const AT: usize = ipv4::HEADER_LEN + udp::HEADER_LEN + vxlan::HEADER_LEN;
    let p: &[u8; MIN] = packet.get(..MIN)?.try_into().ok()?;
    let be16 = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
    let total = usize::from(be16(2));
    // Version 4 and IHL 5; UDP; neither More Fragments nor an offset (DF may be set).
    if p[0] != 0x45 || p[9] != PROTO_UDP || be16(6) & 0x3fff != 0 {
        return None;
    }
    let udp_len = usize::from(be16(24));
    let ip_payload = total.checked_sub(ipv4::HEADER_LEN)?;
    if total > packet.len() || udp_len > ip_payload || udp_len < MIN - ipv4::HEADER_LEN {
        return None;
    }
    // The I flag (the reserved bits are ignored, RFC 7348 §5).
    if p[28] & 0x08 == 0 {
        return None;
    }
    let addr = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
    let vni = u32::from_be_bytes([p[32], p[33], p[34], p[35]]) >> 8;
    Some((
        be16(22),
        vni,
        TunnelRx {
            kind: TunnelKind::Vxlan { vni },
            src: addr(12),
            dst: addr(16),
            dscp_ecn: p[1],
            inner: Inner::Ethernet,
            inner_offset: AT,
            inner_len: udp_len - udp::HEADER_LEN - vxlan::HEADER_LEN,
        },
    ))
}

/// Room for a template's headers: Ethernet, IPv4 and the longest tunnel header sent.
const TEMPLATE_ROOM: usize = 64;

/// The outer headers of one tunnel's packets to one VTEP over one path, made once and
/// written in front of each packet with its lengths, Identification, TTL and UDP source
/// port put in and the IPv4 header checksum updated from a sum kept with the template.
/// What the `encap_*_v4` functions write, without writing it field by field per packet.
#[derive(Debug, Clone, Copy)]
pub struct OuterTemplate {
    bytes: [u8; TEMPLATE_ROOM],
    len: u8,
    /// UDP (VXLAN, Geneve): its Length and source port are the packet's.
    udp: bool,
    /// The IPv4 header's ones' complement sum without Total Length, Identification, TTL
    /// and the checksum.
    base: u16,
}

impl OuterTemplate {
    /// From `headers`: outer headers an `encap_*_v4` function wrote for an empty inner
    /// packet (`inner_len` 0; any Identification, TTL and UDP source port). None when they
    /// are not Ethernet and an option-less IPv4 header with a tunnel header after it that
    /// fits the template, or GRE asks for a checksum (it covers the inner packet).
    pub fn new(headers: &[u8]) -> Option<OuterTemplate> {
        if headers.len() > TEMPLATE_ROOM || headers.len() < ETH_IPV4_LEN {
            return None;
        }
        let ip = &headers[ethernet::HEADER_LEN..ETH_IPV4_LEN];
        let payload = usize::from(u16::from_be_bytes([ip[2], ip[3]])).checked_sub(20)?;
        if ip[0] != 0x45 || payload != headers.len() - ETH_IPV4_LEN {
            return None;
        }
        let udp = ip[9] == PROTO_UDP;
        if udp && payload < udp::HEADER_LEN {
            return None;
        }
        if ip[9] == PROTO_GRE && headers.get(ETH_IPV4_LEN)? & 0x80 != 0 {
            return None;
        }
        let mut bytes = [0u8; TEMPLATE_ROOM];
        bytes[..headers.len()].copy_from_slice(headers);
        let mut h = [0u8; ipv4::HEADER_LEN];
        h.copy_from_slice(ip);
        // Total Length, Identification, TTL, checksum: the packet's.
        for i in [2, 3, 4, 5, 8, 10, 11] {
            h[i] = 0;
        }
        Some(OuterTemplate {
            bytes,
            len: headers.len() as u8,
            udp,
            base: super::checksum::sum(&h, 0),
        })
    }

    /// Bytes of outer headers, Ethernet included.
    #[inline(always)]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Never: a template holds Ethernet and IPv4 at least.
    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Writes the headers into `buf` (exactly [`OuterTemplate::len`] bytes) for an
    /// `inner_len`-byte inner packet with `ident`, `ttl` and UDP source port `src_port`:
    /// the bytes the template's `encap_*_v4` would write with those. None, and nothing
    /// written, when `buf` is another length or the packet would pass 65535 bytes of IPv4.
    #[inline(always)]
    pub fn write(
        &self,
        buf: &mut [u8],
        inner_len: usize,
        ident: u16,
        ttl: u8,
        src_port: u16,
    ) -> Option<()> {
        let n = self.len();
        if buf.len() != n {
            return None;
        }
        let total = u16::try_from(inner_len.checked_add(n - ethernet::HEADER_LEN)?).ok()?;
        // VXLAN's and Geneve's 50 bytes as a copy of known length, inline; other lengths
        // (GRE) out of line, so that the compiler cannot merge the two into one call to
        // memcpy of a variable length (it did: a call per packet).
        match <&mut [u8; VXLAN_V4_OUTER_LEN]>::try_from(&mut *buf) {
            Ok(b) => {
                let (head, _) = self.bytes.split_first_chunk::<VXLAN_V4_OUTER_LEN>()?;
                *b = *head;
            }
            Err(_) => copy_headers(buf, &self.bytes[..n]),
        }
        let ip = &mut buf[ethernet::HEADER_LEN..];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&ident.to_be_bytes());
        ip[8] = ttl;
        let mut s =
            u32::from(self.base) + u32::from(total) + u32::from(ident) + (u32::from(ttl) << 8);
        s = (s & 0xffff) + (s >> 16);
        s = (s & 0xffff) + (s >> 16);
        ip[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
        if self.udp {
            let u = &mut ip[ipv4::HEADER_LEN..];
            u[0..2].copy_from_slice(&src_port.to_be_bytes());
            u[4..6].copy_from_slice(&(total - ipv4::HEADER_LEN as u16).to_be_bytes());
        }
        Some(())
    }
}

/// A template of another length than VXLAN's into `buf` (of its length).
#[inline(never)]
fn copy_headers(buf: &mut [u8], headers: &[u8]) {
    buf.copy_from_slice(headers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC_MAC: Mac = [0x02, 0, 0, 0, 0, 0x01];
    const DST_MAC: Mac = [0x02, 0, 0, 0, 0, 0x02];

    fn outer() -> OuterV4 {
        OuterV4 {
            src_mac: SRC_MAC,
            dst_mac: DST_MAC,
            src: Ipv4Addr::new(192, 0, 2, 1),
            dst: Ipv4Addr::new(192, 0, 2, 2),
            ttl: 64,
            dscp_ecn: 0,
            dont_fragment: true,
            ident: 0,
        }
    }

    /// The ports of a switch that listens for VXLAN on both usual ports and Geneve on its.
    fn ports(p: u16) -> Option<UdpTunnel> {
        match p {
            vxlan::PORT_IANA | vxlan::PORT_LINUX => Some(UdpTunnel::Vxlan),
            geneve::PORT => Some(UdpTunnel::Geneve),
            _ => None,
        }
    }

    fn none_known(_: u16, _: u8) -> bool {
        false
    }

    /// The outer headers of a VXLAN packet, laid out by hand from RFC 7348 §5 with
    /// [`outer`], 49152 -> 4789, VNI 42 and a 60-byte inner frame: IPv4 Total Length 96,
    /// UDP Length 76, header checksum 0xb689 (Python, RFC 1071 sum).
    const VXLAN_OUTER: [u8; 50] = [
        0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00, // Ethernet
        0x45, 0x00, 0x00, 0x60, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb6, 0x89, // IPv4
        192, 0, 2, 1, 192, 0, 2, 2, // addresses
        0xc0, 0x00, 0x12, 0xb5, 0x00, 0x4c, 0x00, 0x00, // UDP
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, 0x00, // VXLAN
    ];

    /// A 60-byte inner Ethernet frame.
    fn inner_frame() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[0x02, 0xaa, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[0x02, 0xaa, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&[0x08, 0x06]);
        f
    }

    #[test]
    fn vxlan_outer_is_byte_exact() {
        let mut b = [0xffu8; VXLAN_V4_OUTER_LEN];
        assert_eq!(VXLAN_V4_OUTER_LEN, 50);
        assert_eq!(
            encap_vxlan_v4(&mut b, &outer(), 49152, vxlan::PORT_IANA, 42, 60),
            Some(50)
        );
        assert_eq!(b, VXLAN_OUTER);
    }

    #[test]
    fn vxlan_round_trips_through_classify() {
        let mut pkt = VXLAN_OUTER.to_vec();
        pkt.extend_from_slice(&inner_frame());
        let rx = classify_ipv4(&pkt[14..], ports, none_known)
            .unwrap()
            .unwrap();
        assert_eq!(
            rx,
            TunnelRx {
                kind: TunnelKind::Vxlan { vni: 42 },
                src: Ipv4Addr::new(192, 0, 2, 1),
                dst: Ipv4Addr::new(192, 0, 2, 2),
                dscp_ecn: 0,
                inner: Inner::Ethernet,
                inner_offset: 36,
                inner_len: 60,
            }
        );
        assert_eq!(&pkt[14 + 36..], &inner_frame()[..]);
        // The Linux port works the same; another port is not a tunnel's.
        pkt[36..38].copy_from_slice(&vxlan::PORT_LINUX.to_be_bytes());
        assert!(classify_ipv4(&pkt[14..], ports, none_known)
            .unwrap()
            .is_some());
        pkt[36..38].copy_from_slice(&53u16.to_be_bytes());
        assert_eq!(classify_ipv4(&pkt[14..], ports, none_known), Ok(None));
    }

    #[test]
    fn vxlan_drops() {
        let mut pkt = VXLAN_OUTER.to_vec();
        pkt.extend_from_slice(&inner_frame());
        let c = |p: &[u8]| classify_ipv4(&p[14..], ports, none_known);
        let mut b = pkt.clone();
        b[42] = 0x00; // no I flag
        assert_eq!(c(&b), Err(TunnelDrop::VxlanNoIFlag));
        // UDP Length covering only 4 bytes of VXLAN header.
        let mut b = pkt.clone();
        b[38..40].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(c(&b), Err(TunnelDrop::VxlanShort));
        // UDP Length 20: the VXLAN header and 4 bytes of inner frame.
        b[38..40].copy_from_slice(&20u16.to_be_bytes());
        assert_eq!(c(&b), Err(TunnelDrop::InnerTooShort));
        // UDP Length past the IPv4 payload, or below 8.
        b[38..40].copy_from_slice(&77u16.to_be_bytes());
        assert_eq!(c(&b), Err(TunnelDrop::UdpBadLength));
        b[38..40].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(c(&b), Err(TunnelDrop::UdpBadLength));
        // The same to a port that is no tunnel's is not ours to drop.
        b[36..38].copy_from_slice(&53u16.to_be_bytes());
        assert_eq!(c(&b), Ok(None));
        // Four bytes of UDP: a tunnel port and no Length (Total Length 24); three: no port.
        let mut b = pkt.clone();
        b[16..18].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(c(&b), Err(TunnelDrop::UdpBadLength));
        b[16..18].copy_from_slice(&23u16.to_be_bytes());
        assert_eq!(c(&b), Ok(None));
        // Truncated outer packet.
        assert_eq!(c(&pkt[..pkt.len() - 1]), Err(TunnelDrop::OuterBadHeader));
        // A first fragment: More Fragments set (header checksum not checked here).
        let mut b = pkt.clone();
        b[20] |= 0x20;
        assert_eq!(c(&b), Err(TunnelDrop::OuterFragment));
        // The same to a port that is no tunnel's: not ours to drop.
        b[36..38].copy_from_slice(&53u16.to_be_bytes());
        assert_eq!(c(&b), Ok(None));
        // A later fragment: no port to look at.
        let mut b = pkt.clone();
        b[20..22].copy_from_slice(&0x0010u16.to_be_bytes());
        assert_eq!(c(&b), Ok(None));
    }

    #[test]
    fn link_padding_is_not_inner() {
        let mut pkt = VXLAN_OUTER.to_vec();
        pkt.extend_from_slice(&inner_frame());
        pkt.extend_from_slice(&[0xee; 8]);
        let rx = classify_ipv4(&pkt[14..], ports, none_known)
            .unwrap()
            .unwrap();
        assert_eq!((rx.inner_offset, rx.inner_len), (36, 60));
    }

    #[test]
    fn geneve_with_options_round_trips() {
        let mut opts = [0u8; 12];
        geneve::emit_option(&mut opts, 0x0102, 0x03, &[1, 2, 3, 4]).unwrap();
        geneve::emit_option(&mut opts[8..], 0xffff, 0x85, &[]).unwrap();
        let repr = GeneveRepr {
            control: false,
            protocol: ethernet::ETHERTYPE_IPV4,
            vni: 0xabcdef,
        };
        let len = geneve_v4_outer_len(opts.len());
        assert_eq!(len, 62);
        let mut inner = vec![0u8; 20];
        inner[0] = 0x45;
        let mut pkt = vec![0u8; len];
        assert_eq!(
            encap_geneve_v4(&mut pkt, &outer(), 40000, geneve::PORT, &repr, &opts, 20),
            Some(62)
        );
        // The UDP and Geneve parts byte by byte; the rest as for VXLAN.
        assert_eq!(
            pkt[34..50],
            [
                0x9c, 0x40, 0x17, 0xc1, 0x00, 0x30, 0x00, 0x00, // UDP, Length 8+8+12+20
                0x03, 0x40, 0x08, 0x00, 0xab, 0xcd, 0xef, 0x00, // Geneve, C set
            ]
        );
        assert_eq!(pkt[50..62], opts);
        pkt.extend_from_slice(&inner);
        let ip = Ipv4Packet::new_checked(&pkt[14..]).unwrap();
        assert!(ip.header_checksum_ok() && ip.total_len() == 68);
        let c = |p: &[u8], known: fn(u16, u8) -> bool| classify_ipv4(&p[14..], ports, known);
        // The critical option must be known.
        assert_eq!(c(&pkt, none_known), Err(TunnelDrop::GeneveCriticalOption));
        let known = |c: u16, t: u8| (c, t) == (0xffff, 0x85);
        let rx = c(&pkt, known).unwrap().unwrap();
        assert_eq!(rx.kind, TunnelKind::Geneve { vni: 0xabcdef });
        assert_eq!(
            (rx.inner, rx.inner_offset, rx.inner_len),
            (Inner::Ipv4, 48, 20)
        );
        // Control packets, other versions, unknown protocols, cut options.
        let mut b = pkt.clone();
        b[43] |= 0x80;
        assert_eq!(c(&b, known), Err(TunnelDrop::GeneveControl));
        let mut b = pkt.clone();
        b[42] |= 0x40;
        assert_eq!(c(&b, known), Err(TunnelDrop::GeneveVersion));
        let mut b = pkt.clone();
        b[44..46].copy_from_slice(&0x88ccu16.to_be_bytes());
        assert_eq!(c(&b, known), Err(TunnelDrop::GeneveProto));
        let mut b = pkt.clone();
        b[42] = 0x3f; // 252 bytes of options in a 60-byte UDP payload
        assert_eq!(c(&b, known), Err(TunnelDrop::GeneveShort));
        // Refused options leave the buffer alone.
        let mut z = vec![0u8; len];
        assert_eq!(
            encap_geneve_v4(
                &mut z,
                &outer(),
                1,
                2,
                &repr,
                &[0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
                20
            ),
            None
        );
        assert!(z.iter().all(|&b| b == 0));
    }

    #[test]
    fn gre_with_key_and_checksum_is_byte_exact() {
        let o = OuterV4 {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            ttl: 255,
            dscp_ecn: 0xb8,
            dont_fragment: false,
            ident: 0x1234,
            ..outer()
        };
        let repr = GreRepr {
            protocol: ethernet::ETHERTYPE_IPV6,
            checksum: true,
            key: Some(0xdeadbeef),
            seq: None,
        };
        let len = gre_v4_outer_len(&repr);
        assert_eq!(len, 46);
        let mut inner = vec![0u8; 40];
        inner[0] = 0x60;
        let mut pkt = vec![0u8; len];
        assert_eq!(encap_gre_v4(&mut pkt, &o, &repr, 40), Some(46));
        pkt.extend_from_slice(&inner);
        let (h, i) = pkt.split_at_mut(len);
        assert!(gre::fill_checksum(&mut h[ETH_IPV4_LEN..], i));
        // IPv4: TOS 0xb8, Total Length 72, ident 0x1234, no DF, TTL 255, GRE, checksum
        // 0x9498; GRE: C and K, IPv6, checksum 0xdb83 over the GRE header and the inner
        // packet, key. Both checksums computed independently (Python, RFC 1071 sum).
        assert_eq!(
            pkt[14..46],
            [
                0x45, 0xb8, 0x00, 0x48, 0x12, 0x34, 0x00, 0x00, 0xff, 0x2f, 0x94, 0x98, 10, 0, 0,
                1, 10, 0, 0, 2, // IPv4
                0xa0, 0x00, 0x86, 0xdd, 0xdb, 0x83, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef, // GRE
            ]
        );
        let rx = classify_ipv4(&pkt[14..], ports, none_known)
            .unwrap()
            .unwrap();
        assert_eq!(
            rx.kind,
            TunnelKind::Gre {
                key: Some(0xdeadbeef)
            }
        );
        assert_eq!(
            (rx.inner, rx.inner_offset, rx.inner_len),
            (Inner::Ipv6, 32, 40)
        );
        assert_eq!(rx.dscp_ecn, 0xb8);
        // GRE's checksum and header rules.
        let c = |p: &[u8]| classify_ipv4(&p[14..], ports, none_known);
        let mut b = pkt.clone();
        b[len] ^= 0x01;
        assert_eq!(c(&b), Err(TunnelDrop::GreChecksum));
        let mut b = pkt.clone();
        b[35] |= 0x01;
        assert_eq!(c(&b), Err(TunnelDrop::GreVersion));
        let mut b = pkt.clone();
        b[34] |= 0x40;
        assert_eq!(c(&b), Err(TunnelDrop::GreReservedBits));
        // Protocol and sequence changes break the checksum first; without C, they show.
        let mut b = pkt.clone();
        b[34] = 0x20;
        b[36..38].copy_from_slice(&0x0806u16.to_be_bytes());
        assert_eq!(c(&b), Err(TunnelDrop::GreProto));
        b[34] = 0x30; // K and S: a 12-byte header, the key read from where the checksum was
        b[36..38].copy_from_slice(&0x86ddu16.to_be_bytes());
        let rx = c(&b).unwrap().unwrap();
        assert_eq!(
            rx.kind,
            TunnelKind::Gre {
                key: Some(0xdb83_0000)
            }
        );
        assert_eq!((rx.inner_offset, rx.inner_len), (32, 40));
        b[16..18].copy_from_slice(&71u16.to_be_bytes()); // 39 bytes of IPv6: too short
        assert_eq!(c(&b), Err(TunnelDrop::InnerTooShort));
        // Total Length covering 2 bytes of the GRE header only.
        let mut b = pkt.clone();
        b[16..18].copy_from_slice(&22u16.to_be_bytes());
        assert_eq!(c(&b), Err(TunnelDrop::GreShort));
        let mut b = pkt.clone();
        b[20..22].copy_from_slice(&0x0001u16.to_be_bytes()); // a later fragment
        assert_eq!(c(&b), Err(TunnelDrop::OuterFragment));
    }

    #[test]
    fn keyless_teb_gre() {
        let repr = GreRepr {
            protocol: ethernet::ETHERTYPE_TEB,
            checksum: false,
            key: None,
            seq: None,
        };
        assert_eq!(gre_v4_outer_len(&repr), GRE_V4_OUTER_LEN);
        let mut pkt = vec![0u8; GRE_V4_OUTER_LEN];
        assert_eq!(encap_gre_v4(&mut pkt, &outer(), &repr, 60), Some(38));
        assert_eq!(pkt[34..38], [0x00, 0x00, 0x65, 0x58]);
        pkt.extend_from_slice(&inner_frame());
        let rx = classify_ipv4(&pkt[14..], ports, none_known)
            .unwrap()
            .unwrap();
        assert_eq!(rx.kind, TunnelKind::Gre { key: None });
        assert_eq!(
            (rx.inner, rx.inner_offset, rx.inner_len),
            (Inner::Ethernet, 24, 60)
        );
    }

    #[test]
    fn ipip_and_6in4() {
        let mut inner4 = vec![0u8; 20];
        inner4[0] = 0x45;
        let mut pkt = vec![0u8; IPIP_V4_OUTER_LEN];
        assert_eq!(encap_ipip_v4(&mut pkt, &outer(), Inner::Ipv4, 20), Some(34));
        assert_eq!(pkt[23], 4);
        pkt.extend_from_slice(&inner4);
        let rx = classify_ipv4(&pkt[14..], ports, none_known)
            .unwrap()
            .unwrap();
        assert_eq!(
            (rx.kind, rx.inner, rx.inner_offset, rx.inner_len),
            (TunnelKind::Ipip, Inner::Ipv4, 20, 20)
        );
        let mut pkt = vec![0u8; IPIP_V4_OUTER_LEN];
        assert_eq!(encap_ipip_v4(&mut pkt, &outer(), Inner::Ipv6, 39), Some(34));
        assert_eq!(pkt[23], 41);
        pkt.extend_from_slice(&[0x60; 39]);
        assert_eq!(
            classify_ipv4(&pkt[14..], ports, none_known),
            Err(TunnelDrop::InnerTooShort)
        );
        assert_eq!(encap_ipip_v4(&mut pkt, &outer(), Inner::Ethernet, 20), None);
        // Other protocols are no tunnel's.
        let mut b = pkt.clone();
        b[23] = 6;
        assert_eq!(classify_ipv4(&b[14..], ports, none_known), Ok(None));
    }

    #[test]
    fn encap_refuses_without_writing() {
        let o = outer();
        let mut b = [0u8; 64];
        assert_eq!(encap_vxlan_v4(&mut b[..49], &o, 1, 2, 3, 60), None);
        assert_eq!(
            encap_vxlan_v4(&mut b, &o, 1, 2, vxlan::MAX_VNI + 1, 60),
            None
        );
        // 65535 bytes of IPv4 at most: 20 + 8 + 8 + 65499.
        assert_eq!(encap_vxlan_v4(&mut b, &o, 1, 2, 3, 65500), None);
        assert_eq!(encap_vxlan_v4(&mut b, &o, 1, 2, 3, usize::MAX), None);
        assert_eq!(encap_ipip_v4(&mut b, &o, Inner::Ipv4, 65516), None);
        let gre = GreRepr {
            protocol: 0x0800,
            checksum: false,
            key: Some(1),
            seq: None,
        };
        assert_eq!(encap_gre_v4(&mut b[..41], &o, &gre, 20), None);
        assert_eq!(encap_gre_v4(&mut b, &o, &gre, 65508), None);
        assert!(b.iter().all(|&x| x == 0));
        assert_eq!(encap_vxlan_v4(&mut b, &o, 1, 2, 3, 65499), Some(50));
        assert_eq!(encap_gre_v4(&mut b, &o, &gre, 65507), Some(42));
    }

    #[test]
    fn drop_names_are_distinct_snake_case() {
        for (i, d) in TunnelDrop::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
            let n = d.name();
            assert!(
                n.bytes().all(|c| c.is_ascii_lowercase() || c == b'_'),
                "{n}"
            );
            assert!(TunnelDrop::ALL[..i].iter().all(|e| e.name() != n));
        }
    }

    /// Checks what classify promises about offsets, whatever the input.
    fn check_bounds(b: &[u8]) -> Result<(), TestCaseError> {
        let known = |c: u16, _: u8| c & 1 == 0;
        if let Ok(Some(rx)) = classify_ipv4(b, ports, known) {
            let ip = Ipv4Packet::new_checked(b).unwrap();
            let end = rx.inner_offset + rx.inner_len;
            prop_assert!(end <= usize::from(ip.total_len()) && end <= b.len());
            prop_assert!(rx.inner_offset >= ip.header_len());
            prop_assert!(rx.inner_len >= rx.inner.min_len());
        }
        Ok(())
    }

    /// A valid tunnel packet of each kind (from the outer IPv4 header on), with random
    /// fields, options and inner bytes.
    fn tunnel_packet() -> impl Strategy<Value = Vec<u8>> {
        (
            0u8..4,
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 40..120),
            0usize..4,
            any::<bool>(),
        )
            .prop_map(|(kind, id, inner, words, flag)| {
                let o = outer();
                let n = inner.len();
                let mut h = vec![0u8; 200];
                let len = match kind {
                    0 => encap_vxlan_v4(&mut h, &o, 5, vxlan::PORT_LINUX, id >> 8, n),
                    1 => {
                        let mut opts = [0u8; 16];
                        let ol =
                            geneve::emit_option(&mut opts, 2, 0x80, &[7; 12][..words * 4]).unwrap();
                        let repr = GeneveRepr {
                            control: false,
                            protocol: ethernet::ETHERTYPE_TEB,
                            vni: id & 0xffffff,
                        };
                        encap_geneve_v4(&mut h, &o, 5, geneve::PORT, &repr, &opts[..ol], n)
                    }
                    2 => {
                        let repr = GreRepr {
                            protocol: ethernet::ETHERTYPE_TEB,
                            checksum: flag,
                            key: Some(id),
                            seq: (!flag).then_some(id),
                        };
                        let l = encap_gre_v4(&mut h, &o, &repr, n).unwrap();
                        if flag {
                            gre::fill_checksum(&mut h[ETH_IPV4_LEN..l], &inner);
                        }
                        Some(l)
                    }
                    _ => encap_ipip_v4(&mut h, &o, Inner::Ipv4, n),
                }
                .unwrap();
                let mut p = h[ethernet::HEADER_LEN..len].to_vec();
                p.extend_from_slice(&inner);
                p
            })
    }

    proptest! {
        #[test]
        fn valid_packets_classify(p in tunnel_packet()) {
            let rx = classify_ipv4(&p, ports, |c, _| c == 2).unwrap().unwrap();
            prop_assert_eq!(rx.inner_offset + rx.inner_len, p.len());
            check_bounds(&p)?;
        }

        #[test]
        fn every_truncation_stays_inside(p in tunnel_packet()) {
            for n in 0..p.len() {
                // Cut from the bigger buffer: nothing past n may be referenced.
                prop_assert_eq!(classify_ipv4(&p[..n], ports, |c, _| c == 2),
                                Err(TunnelDrop::OuterBadHeader));
            }
        }

        #[test]
        fn every_total_length_stays_inside(p in tunnel_packet()) {
            // The outer header consistent with a shorter packet: the inner checks, not
            // the outer one, must catch what is missing.
            for n in 0..=p.len() {
                let mut b = p.clone();
                b[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                check_bounds(&b)?;
                if n < 20 {
                    prop_assert_eq!(classify_ipv4(&b, ports, |_, _| true),
                                    Err(TunnelDrop::OuterBadHeader));
                }
            }
        }

        #[test]
        fn bit_flips_never_panic(p in tunnel_packet(), bits in
                                 proptest::collection::vec(any::<prop::sample::Index>(), 1..4),
                                 cut in any::<prop::sample::Index>()) {
            let mut p = p;
            for b in bits {
                let i = b.index(p.len() * 8);
                p[i / 8] ^= 0x80 >> (i % 8);
            }
            let n = cut.index(p.len() + 1);
            check_bounds(&p)?;
            check_bounds(&p[..n])?;
        }

        #[test]
        fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..160),
                                    proto in prop::sample::select(vec![4u8, 17, 41, 47, 6]),
                                    dport in prop::sample::select(vec![4789u16, 8472, 6081, 53]),
                                    fix: bool) {
            let mut b = b;
            if fix && b.len() >= 28 {
                // A plausible outer header so the tunnel parsers are reached.
                b[0] = 0x45;
                let l = b.len() as u16;
                b[2..4].copy_from_slice(&l.to_be_bytes());
                b[6] &= 0x40;
                b[7] = 0;
                b[9] = proto;
                b[22..24].copy_from_slice(&dport.to_be_bytes());
            }
            check_bounds(&b)?;
        }
    }

    /// Outer headers of `kind` (0 VXLAN, 1 Geneve, 2 GRE TEB with `key`, 3 GRE TEB without,
    /// 4 IPIP) for `inner_len` bytes, as the `encap_*_v4` functions write them.
    fn encap_any(kind: u8, o: &OuterV4, sport: u16, id: u32, inner_len: usize) -> Option<Vec<u8>> {
        let mut h = vec![0u8; 64];
        let gre = |key| GreRepr {
            protocol: ethernet::ETHERTYPE_TEB,
            checksum: false,
            key,
            seq: None,
        };
        let n = match kind {
            0 => encap_vxlan_v4(&mut h, o, sport, 4789, id & 0xff_ffff, inner_len),
            1 => {
                let repr = GeneveRepr {
                    control: false,
                    protocol: ethernet::ETHERTYPE_TEB,
                    vni: id & 0xff_ffff,
                };
                encap_geneve_v4(&mut h, o, sport, geneve::PORT, &repr, &[], inner_len)
            }
            2 => encap_gre_v4(&mut h, o, &gre(Some(id)), inner_len),
            3 => encap_gre_v4(&mut h, o, &gre(None), inner_len),
            _ => encap_ipip_v4(&mut h, o, Inner::Ipv4, inner_len),
        }?;
        h.truncate(n);
        Some(h)
    }

    #[test]
    fn vxlan_fast_reads_the_common_packet() {
        let mut p = VXLAN_OUTER[ethernet::HEADER_LEN..].to_vec();
        p.extend_from_slice(&[0xab; 60]);
        let (port, vni, rx) = vxlan_v4_fast(&p).unwrap();
        assert_eq!((port, vni), (4789, 42));
        assert_eq!(rx.kind, TunnelKind::Vxlan { vni: 42 });
        assert_eq!((rx.inner_offset, rx.inner_len), (36, 60));
        assert_eq!(Ok(Some(rx)), classify_ipv4(&p, ports, none_known));
        // Options, a fragment, another protocol, no I flag: left to classify_ipv4.
        for (at, v) in [(0, 0x46), (6, 0x20), (9, 6), (28, 0)] {
            let mut b = p.clone();
            b[at] = v;
            assert_eq!(vxlan_v4_fast(&b), None, "byte {at} = {v:#x}");
        }
    }

    proptest! {
        #[test]
        fn vxlan_fast_agrees_with_classify(p in tunnel_packet(),
                                           bits in proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
                                           total in any::<prop::sample::Index>(),
                                           cut in any::<prop::sample::Index>(), whole: bool) {
            let mut p = p;
            for b in bits {
                let i = b.index(p.len() * 8);
                p[i / 8] ^= 0x80 >> (i % 8);
            }
            if total.index(4) == 0 {
                let t = total.index(p.len() + 8) as u16;
                p[2..4].copy_from_slice(&t.to_be_bytes());
            }
            let keep = if whole { p.len() } else { cut.index(p.len() + 1) };
            let p = &p[..keep];
            if let Some((port, vni, rx)) = vxlan_v4_fast(p) {
                prop_assert_eq!(rx.kind, TunnelKind::Vxlan { vni });
                let vx = |q: u16| (q == port).then_some(UdpTunnel::Vxlan);
                prop_assert_eq!(classify_ipv4(p, vx, none_known), Ok(Some(rx)));
            }
        }

        #[test]
        fn templates_write_what_encap_writes(kind in 0u8..5, id: u32, sport: u16, ident: u16,
                                             ttl: u8, df: bool, inner_len in 0usize..66000,
                                             t_ident: u16, t_ttl: u8, t_sport: u16) {
            let o = OuterV4 { ttl: t_ttl, ident: t_ident, dont_fragment: df, dscp_ecn: (id >> 24) as u8, ..outer() };
            let t = OuterTemplate::new(&encap_any(kind, &o, t_sport, id, 0).unwrap()).unwrap();
            let want = encap_any(kind, &OuterV4 { ttl, ident, ..o }, sport, id, inner_len);
            let mut got = vec![0u8; t.len()];
            match t.write(&mut got, inner_len, ident, ttl, sport) {
                Some(()) => prop_assert_eq!(Some(got), want),
                None => prop_assert_eq!(None, want),
            }
        }
    }
}
