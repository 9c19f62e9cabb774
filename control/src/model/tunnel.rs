//! Tunnels (vxlan, geneve, gre, ipip): validation, staging, persisted form, proto form and
//! the dataplane's part (the plan's [`TunnelPlan`]).
//!
//! A tunnel is an interface (iface.rs): it is in the interface list (its type is its kind),
//! has a logical index, an admin state, an MTU and a VRF of its own (the overlay: `iface
//! set TUN up|down mtu=N vrf=ID`), and is either a bridge member (the kinds that carry
//! Ethernet: vxlan, geneve, gre mode=teb) or an L3 interface (any kind: addresses, routes
//! and neighbours through it, as flannel addresses its vxlan device). It has no port: it
//! is added by `tunnel add`, deleted by `tunnel del` (`iface del` refuses it), and cannot
//! be cross-connected.
//!
//! Its outer packets are routed in its underlay VRF (`vrf=`, 0 unless given), from
//! `local`, which must be an address the switch has in that VRF, on an interface that is
//! not itself a tunnel (no tunnel in a tunnel: replay re-creates tunnels after the
//! addresses of interfaces). That address cannot be deleted while a tunnel uses it (nor,
//! so, its interface or bridge). Remotes are unicast addresses of local's family, other
//! than local, each once.
//!
//! Decapsulation must find one tunnel per packet, so these are refused on one (underlay
//! VRF, local): two vxlan or geneve tunnels of one VNI on one UDP port, a vxlan and a
//! geneve tunnel on one UDP port, two gre tunnels of one remote and key (no key counts as
//! a key of its own), two ipip tunnels of one remote (or two without one). VNI 0 is
//! allowed, as Linux allows it (RFC 7348 reserves none).
//!
//! Defaults: outer TTL 64 (`ttl=0`: copied from the inner packet, as Linux's `ttl
//! inherit`), DF off, vxlan port 4789 (IANA's; Linux's default is 8472: give port=8472 to
//! talk to a Linux VTEP made without dstport), geneve port 6081, gre mode l3. The MTU is
//! 1500 minus the kind's overhead ([`TunnelEncap::overhead`]): an inner packet of that
//! MTU, once encapsulated, fits a 1500-byte underlay link. The MAC of the kinds that carry
//! Ethernet is made from the name ([`tunnel_mac`]) unless given.
//!
//! Static MAC -> VTEP entries (`tunnel fdb add TUN MAC remote=IP`, flannel's way): for a
//! vxlan or geneve tunnel that is not a bridge member (a member's entries are the bridge's
//! MAC entries, `fdb add BR MAC TUN remote=IP`): inner frames to MAC go to that outer
//! destination. They go with the tunnel; a tunnel with entries cannot join a bridge.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use vswitch_dataplane::plan::{TunnelEncap, TunnelPlan};
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use super::iface::{self, Iface, IfaceL3};
use super::ip::{check_unicast, parse_ip, Family, Prefix};
use super::route::Origin;
use super::{vrf, Model, Staged};
use crate::error::{required, ApiError, ApiResult};
use crate::iface_spec::{IfaceSpec, Kind};
use crate::names::{check_name, format_mac, parse_mac, parse_mtu};

/// The kinds, as named in the API.
pub const KINDS: [&str; 4] = ["vxlan", "geneve", "gre", "ipip"];
/// Default UDP ports: vxlan's (IANA, RFC 7348 §5) and geneve's (RFC 8926 §3.3).
pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;
/// Default outer TTL.
pub const DEFAULT_TTL: u8 = 64;
/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = (1 << 24) - 1;
/// Most remotes of one tunnel.
pub const MAX_REMOTES: usize = 256;
/// The underlay MTU the default tunnel MTU is computed for.
const UNDERLAY_MTU: u16 = 1500;

/// A tunnel's own settings (its interface settings are the [`Iface`]'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    pub encap: TunnelEncap,
    /// The underlay VRF.
    pub vrf: u16,
    pub local: IpAddr,
    pub remotes: Vec<IpAddr>,
    /// Outer TTL; 0: inherited.
    pub ttl: u8,
    pub df: bool,
}

impl Tunnel {
    /// The MTU it gets unless one is given.
    pub fn default_mtu(&self) -> u16 {
        UNDERLAY_MTU - self.encap.overhead(self.local.is_ipv6())
    }

    /// The UDP port of vxlan and geneve.
    fn udp_port(&self) -> Option<u16> {
        match self.encap {
            TunnelEncap::Vxlan { port, .. } | TunnelEncap::Geneve { port, .. } => Some(port),
            _ => None,
        }
    }

    fn vni(&self) -> Option<u32> {
        match self.encap {
            TunnelEncap::Vxlan { vni, .. } | TunnelEncap::Geneve { vni, .. } => Some(vni),
            _ => None,
        }
    }

    /// The mode of gre, "" for the other kinds.
    fn mode(&self) -> &'static str {
        match self.encap {
            TunnelEncap::Gre { teb: true, .. } => "teb",
            TunnelEncap::Gre { teb: false, .. } => "l3",
            _ => "",
        }
    }

    /// Whether it carries Ethernet frames inside with VNI-addressed peers (vxlan, geneve):
    /// the kinds that take MAC -> VTEP entries.
    fn has_vteps(&self) -> bool {
        matches!(
            self.encap,
            TunnelEncap::Vxlan { .. } | TunnelEncap::Geneve { .. }
        )
    }
}

/// The MAC of tunnel `name` unless one is given: locally administered unicast, the other
/// five bytes the top 40 bits of the 64-bit FNV-1a hash of `tunnel:` and the name. Stable
/// across restarts (the remote nodes' neighbour entries stay right), and apart from the
/// MACs of bridges' routed interfaces of the same name.
pub fn tunnel_mac(name: &str) -> [u8; 6] {
    super::bridge::bvi_mac(&format!("tunnel:{name}"))
}

/// The tunnel interface `name` is, if it is one.
pub fn get<'a>(m: &'a Model, name: &str) -> Option<(&'a Arc<Iface>, &'a Tunnel)> {
    let i = m.ifaces.get(name)?;
    Some((i, i.spec.tunnel()?))
}

/// Tunnel `name`, NOT_FOUND if there is none of that name.
pub fn existing<'a>(m: &'a Model, name: &str) -> ApiResult<(&'a Arc<Iface>, &'a Tunnel)> {
    get(m, name).ok_or_else(|| match m.ifaces.get(name) {
        Some(i) => ApiError::not_found(format!(
            "interface {name:?} is not a tunnel (it is {})",
            i.spec.type_name
        )),
        None => ApiError::not_found(format!("tunnel {name:?} not found")),
    })
}

/// A next hop of a `family` route out of interface `iface`: refused out of a
/// point-to-multipoint ipip tunnel for IPv6 (the outer destination is the next hop's
/// IPv4 address, which an IPv6 route does not have).
pub(super) fn check_route_out(m: &Model, iface: &str, family: Family) -> ApiResult<()> {
    match get(m, iface) {
        Some((_, t))
            if t.encap == TunnelEncap::Ipip && t.remotes.is_empty() && family == Family::V6 =>
        {
            Err(ApiError::invalid(format!(
                "tunnel {iface:?} is point-to-multipoint ipip (no remote): its outer \
                 destination is a route's IPv4 next hop, so it takes IPv4 routes only"
            )))
        }
        _ => Ok(()),
    }
}

/// An address of a request, unicast, of local's family and not local.
fn peer(field: &str, s: &str, local: &IpAddr) -> ApiResult<IpAddr> {
    let a = parse_ip(field, s)?;
    check_unicast(field, &a)?;
    if Family::of(&a) != Family::of(local) {
        return Err(ApiError::invalid(format!(
            "{field} {a} is {} but local {local} is {}: a tunnel's addresses are of one family",
            Family::of(&a).name(),
            Family::of(local).name()
        )));
    }
    if a == *local {
        return Err(ApiError::invalid(format!(
            "{field} {a} is the tunnel's local address"
        )));
    }
    Ok(a)
}

/// The checks of [`add`] that need only the request: the tunnel it describes, with its MTU
/// and MAC.
fn parse(r: &pb::AddTunnelRequest, vrf: u16) -> ApiResult<(Tunnel, u16, Option<[u8; 6]>)> {
    let kind = r.kind.as_str();
    let inv = |m: String| ApiError::invalid(m);
    let refuse = |field: &str, given: bool| -> ApiResult<()> {
        if given {
            Err(inv(format!("{field} is not a setting of {kind} tunnels")))
        } else {
            Ok(())
        }
    };
    required("local", &r.local)?;
    let local = parse_ip("local", &r.local)?;
    check_unicast("local", &local)?;
    let udp = |default: u16| -> ApiResult<(u32, u16)> {
        let vni = r
            .vni
            .ok_or_else(|| inv(format!("a {kind} tunnel needs vni=N (0 to {MAX_VNI})")))?;
        if vni > MAX_VNI {
            return Err(inv(format!(
                "vni must be from 0 to {MAX_VNI} (24 bits), not {vni}"
            )));
        }
        let port = match r.port {
            None => default,
            Some(p) => u16::try_from(p)
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| inv(format!("port must be from 1 to 65535, not {p}")))?,
        };
        Ok((vni, port))
    };
    let encap = match kind {
        "vxlan" | "geneve" => {
            refuse("key", r.key.is_some())?;
            refuse("mode", !r.mode.is_empty())?;
            let (vni, port) = udp(if kind == "vxlan" {
                VXLAN_PORT
            } else {
                GENEVE_PORT
            })?;
            if kind == "vxlan" {
                TunnelEncap::Vxlan { vni, port }
            } else {
                TunnelEncap::Geneve { vni, port }
            }
        }
        "gre" => {
            refuse("vni", r.vni.is_some())?;
            refuse("port", r.port.is_some())?;
            let teb = match r.mode.as_str() {
                "" | "l3" => false,
                "teb" => true,
                m => return Err(inv(format!("mode must be l3 or teb, not {m:?}"))),
            };
            if r.remotes.len() != 1 {
                return Err(inv(format!(
                    "a gre tunnel has exactly one remote=IP, not {}",
                    r.remotes.len()
                )));
            }
            TunnelEncap::Gre { key: r.key, teb }
        }
        "ipip" => {
            for (f, given) in [
                ("vni", r.vni.is_some()),
                ("port", r.port.is_some()),
                ("key", r.key.is_some()),
                ("mode", !r.mode.is_empty()),
            ] {
                refuse(f, given)?;
            }
            if r.remotes.len() > 1 {
                return Err(inv(format!(
                    "an ipip tunnel has one remote=IP, or none (point-to-multipoint), not {}",
                    r.remotes.len()
                )));
            }
            TunnelEncap::Ipip
        }
        k => {
            return Err(inv(format!(
                "kind {k:?} is unknown; kinds: {}",
                KINDS.join(", ")
            )))
        }
    };
    if r.remotes.len() > MAX_REMOTES {
        return Err(inv(format!(
            "a tunnel has at most {MAX_REMOTES} remotes, not {}",
            r.remotes.len()
        )));
    }
    let mut remotes = Vec::with_capacity(r.remotes.len());
    for s in &r.remotes {
        let a = peer("remote", s, &local)?;
        if remotes.contains(&a) {
            return Err(inv(format!("remote {a} is given twice")));
        }
        remotes.push(a);
    }
    let ttl = match r.ttl {
        None => DEFAULT_TTL,
        Some(t) => u8::try_from(t)
            .map_err(|_| inv(format!("ttl must be from 0 (inherit) to 255, not {t}")))?,
    };
    let t = Tunnel {
        encap,
        vrf,
        local,
        remotes,
        ttl,
        df: r.df.unwrap_or(false),
    };
    let mtu = match r.mtu {
        None => t.default_mtu(),
        Some(m) => parse_mtu("mtu", &m.to_string()).map_err(inv)?,
    };
    let mac = match r.mac.as_str() {
        "" => None,
        s if encap.carries_ethernet() => Some(parse_mac("mac", s).map_err(inv)?),
        _ => {
            return Err(inv(format!(
                "{} carries IP packets: it has no MAC to set",
                describe(&encap)
            )))
        }
    };
    Ok((t, mtu, mac))
}

/// `gre tunnel (mode l3)`, `ipip tunnel`, ...: for messages.
fn describe(e: &TunnelEncap) -> String {
    match e {
        TunnelEncap::Gre { teb, .. } => {
            format!("a gre tunnel (mode {})", if *teb { "teb" } else { "l3" })
        }
        TunnelEncap::Ipip => "an ipip tunnel".to_string(),
        e => format!("a {} tunnel", e.kind()),
    }
}

/// The interface that owns `local` in VRF `vrf` (its local route's).
fn local_owner(m: &Model, vrf: u16, local: &IpAddr) -> Option<String> {
    m.routes
        .get(&(vrf, Prefix::host(*local)))
        .filter(|r| r.origin == Origin::Local)
        .map(|r| r.iface().to_string())
}

/// Another tunnel on the same (underlay VRF, local) that would take `t`'s packets.
fn clash(m: &Model, t: &Tunnel) -> ApiResult<()> {
    for (_, _, other) in m.tunnel_locals.range(local_range(t.vrf, t.local)) {
        let Some((_, o)) = get(m, other) else {
            continue;
        };
        let on = format!("{} in vrf {}", t.local, t.vrf);
        let msg = match (&t.encap, &o.encap) {
            (TunnelEncap::Vxlan { vni: a, port: p }, TunnelEncap::Vxlan { vni: b, port: q })
            | (TunnelEncap::Geneve { vni: a, port: p }, TunnelEncap::Geneve { vni: b, port: q })
                if a == b && p == q =>
            {
                format!(
                    "tunnel {other:?} already has vni {a} on {on}, UDP port {p}: decapsulation \
                 would be ambiguous"
                )
            }
            (TunnelEncap::Vxlan { port: p, .. }, TunnelEncap::Geneve { port: q, .. })
            | (TunnelEncap::Geneve { port: p, .. }, TunnelEncap::Vxlan { port: q, .. })
                if p == q =>
            {
                format!(
                    "UDP port {p} on {on} is {} tunnel {other:?}'s: one port carries one kind",
                    o.encap.kind()
                )
            }
            (TunnelEncap::Gre { key: a, .. }, TunnelEncap::Gre { key: b, .. })
                if a == b && t.remotes == o.remotes =>
            {
                format!(
                    "gre tunnel {other:?} already joins {on} to {} with {}: decapsulation \
                     would be ambiguous",
                    o.remotes
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    a.map_or("no key".to_string(), |k| format!("key {k}"))
                )
            }
            (TunnelEncap::Ipip, TunnelEncap::Ipip) if t.remotes == o.remotes => {
                match o.remotes.first() {
                    Some(r) => format!(
                        "ipip tunnel {other:?} already joins {on} to {r}: decapsulation would \
                         be ambiguous"
                    ),
                    None => format!(
                        "ipip tunnel {other:?} is already the point-to-multipoint tunnel of {on}"
                    ),
                }
            }
            _ => continue,
        };
        return Err(ApiError::conflict(msg));
    }
    Ok(())
}

/// Every key of the tunnels of (VRF `vrf`, local `a`) lies in this range.
fn local_range(vrf: u16, a: IpAddr) -> std::ops::RangeInclusive<(u16, IpAddr, Arc<str>)> {
    (vrf, a, Arc::from(""))..=(vrf, a, Arc::from("\u{10ffff}"))
}

/// The request's values as `KEY=VALUE` arguments (what `iface show` prints).
fn args_of(t: &Tunnel) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert("local".to_string(), t.local.to_string());
    if !t.remotes.is_empty() {
        let r: Vec<String> = t.remotes.iter().map(ToString::to_string).collect();
        a.insert("remote".to_string(), r.join(","));
    }
    if let Some(v) = t.vni() {
        a.insert("vni".to_string(), v.to_string());
    }
    if let Some(p) = t.udp_port() {
        a.insert("port".to_string(), p.to_string());
    }
    if let TunnelEncap::Gre { key, .. } = t.encap {
        if let Some(k) = key {
            a.insert("key".to_string(), k.to_string());
        }
        a.insert("mode".to_string(), t.mode().to_string());
    }
    a.insert("vrf".to_string(), t.vrf.to_string());
    a.insert("ttl".to_string(), t.ttl.to_string());
    a.insert(
        "df".to_string(),
        if t.df { "on" } else { "off" }.to_string(),
    );
    a
}

/// `tunnel add NAME KIND local=IP [remote=IP,...] [vni=N] [port=N] [key=N] [mode=l3|teb]
/// [vrf=ID] [ttl=N] [df=on|off] [mtu=N] [mac=MAC]`.
pub(super) fn add(s: &mut Staged, r: &pb::AddTunnelRequest) -> ApiResult<String> {
    check_name("name", &r.name).map_err(ApiError::invalid)?;
    required("kind", &r.kind)?;
    if s.model.ifaces.contains_key(&r.name) {
        return Err(ApiError::exists(format!(
            "interface {:?} exists already",
            r.name
        )));
    }
    let vrf = vrf::existing(r.vrf)(&s.model)?;
    let (t, mtu, mac) = parse(r, vrf)?;
    match local_owner(&s.model, vrf, &t.local) {
        None => {
            return Err(ApiError::conflict(format!(
                "local {} is not an address of the switch in vrf {vrf} (add it to an \
                 interface of vrf {vrf} first: addr add IFACE {}/LEN)",
                t.local, t.local
            )))
        }
        Some(owner) if get(&s.model, &owner).is_some() => {
            return Err(ApiError::conflict(format!(
                "local {} is an address of tunnel {owner:?}: a tunnel's underlay cannot be \
                 another tunnel",
                t.local
            )))
        }
        Some(_) => {}
    }
    clash(&s.model, &t)?;
    let mut args = args_of(&t);
    if mtu != t.default_mtu() {
        args.insert("mtu".to_string(), mtu.to_string());
    }
    if let Some(m) = mac {
        args.insert("mac".to_string(), format_mac(m));
    }
    let mac = mac.or_else(|| t.encap.carries_ethernet().then(|| tunnel_mac(&r.name)));
    let name: Arc<str> = Arc::from(r.name.as_str());
    s.model.tunnel_locals.insert((vrf, t.local, name.clone()));
    let spec = IfaceSpec {
        name: r.name.clone(),
        type_name: t.encap.kind().to_string(),
        args,
        kind: Kind::Tunnel(Box::new(t)),
        mac,
        mtu: Some(mtu),
        driver: None,
        netns: None,
        socket_group: None,
    };
    iface::touch_l3(s, &r.name);
    s.model.ifaces.insert(
        r.name.clone(),
        Arc::new(Iface {
            spec,
            admin_up: true,
            xconnect: None,
            bridge: None,
            l3: IfaceL3::default(),
            attachment: None,
        }),
    );
    s.diff.plan = true;
    Ok(r.name.clone())
}

/// `tunnel del NAME`: as `iface del` does, it leaves its bridge (with its static MACs) and
/// takes its addresses, neighbours and MAC -> VTEP entries with it; refused while a route
/// goes through it.
pub(super) fn delete(s: &mut Staged, r: &pb::DeleteTunnelRequest) -> ApiResult<String> {
    required("name", &r.name)?;
    let (_, t) = existing(&s.model, &r.name)?;
    let key = (t.vrf, t.local, Arc::from(r.name.as_str()));
    iface::remove(s, &r.name)?;
    s.model.tunnel_locals.remove(&key);
    let gone: Vec<_> = s
        .model
        .vteps
        .range(vtep_range(&r.name))
        .map(|(k, _)| k.clone())
        .collect();
    for k in gone {
        s.model.vteps.remove(&k);
    }
    Ok(r.name.clone())
}

/// Every key of tunnel `name`'s MAC -> VTEP entries lies in this range.
fn vtep_range(name: &str) -> std::ops::RangeInclusive<(Arc<str>, [u8; 6])> {
    let n: Arc<str> = Arc::from(name);
    (n.clone(), [0; 6])..=(n, [0xff; 6])
}

/// Whether tunnel `name` has MAC -> VTEP entries (what keeps it out of bridges).
pub(super) fn has_vteps(m: &Model, name: &str) -> bool {
    m.vteps.range(vtep_range(name)).next().is_some()
}

/// `tunnel fdb add TUN MAC remote=IP`: adds the entry, or replaces its remote.
pub(super) fn add_fdb(s: &mut Staged, r: &pb::AddTunnelFdbRequest) -> ApiResult<String> {
    required("tunnel", &r.tunnel)?;
    required("mac", &r.mac)?;
    required("remote", &r.remote)?;
    let (i, t) = existing(&s.model, &r.tunnel)?;
    if !t.has_vteps() {
        return Err(ApiError::invalid(format!(
            "tunnel {:?} is {}: MAC -> VTEP entries are for vxlan and geneve tunnels",
            r.tunnel,
            describe(&t.encap)
        )));
    }
    if let Some(br) = &i.bridge {
        return Err(ApiError::conflict(format!(
            "tunnel {:?} is a member of bridge {br:?}: its entries are the bridge's (fdb add \
             {br} MAC {} remote=IP)",
            r.tunnel, r.tunnel
        )));
    }
    let mac = parse_mac("mac", &r.mac).map_err(ApiError::invalid)?;
    let remote = peer("remote", &r.remote, &t.local)?;
    s.model
        .vteps
        .insert((Arc::from(r.tunnel.as_str()), mac), remote);
    s.diff.plan = true;
    Ok(format!("{}/{}", r.tunnel, format_mac(mac)))
}

/// `tunnel fdb del TUN MAC`.
pub(super) fn delete_fdb(s: &mut Staged, r: &pb::DeleteTunnelFdbRequest) -> ApiResult<String> {
    required("tunnel", &r.tunnel)?;
    required("mac", &r.mac)?;
    existing(&s.model, &r.tunnel)?;
    let mac = parse_mac("mac", &r.mac).map_err(ApiError::invalid)?;
    if s.model
        .vteps
        .remove(&(Arc::from(r.tunnel.as_str()), mac))
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "tunnel {:?} has no entry for {}",
            r.tunnel,
            format_mac(mac)
        )));
    }
    s.diff.plan = true;
    Ok(format!("{}/{}", r.tunnel, format_mac(mac)))
}

/// The remote of a bridge MAC entry on `iface` (`fdb add BR MAC IFACE remote=IP`): only
/// for a vxlan or geneve tunnel; any unicast address of its family but its local one.
pub(super) fn entry_remote(m: &Model, iface: &str, remote: &str) -> ApiResult<Option<IpAddr>> {
    if remote.is_empty() {
        return Ok(None);
    }
    let Some((_, t)) = get(m, iface).filter(|(_, t)| t.has_vteps()) else {
        return Err(ApiError::invalid(format!(
            "remote is for entries behind a vxlan or geneve tunnel, and {iface:?} is not one"
        )));
    };
    peer("remote", remote, &t.local).map(Some)
}

/// The tunnel whose local address `a` (in VRF `vrf`) is, if one uses it.
pub(super) fn using_local(m: &Model, vrf: u16, a: &IpAddr) -> Option<Arc<str>> {
    m.tunnel_locals
        .range(local_range(vrf, *a))
        .next()
        .map(|(_, _, n)| n.clone())
}

/// A tunnel's proto form (`index`: its interface's logical index, the switch's).
pub fn to_pb(m: &Model, name: &str, i: &Iface, t: &Tunnel, index: u32) -> pb::Tunnel {
    let (vni, key) = match t.encap {
        TunnelEncap::Vxlan { vni, .. } | TunnelEncap::Geneve { vni, .. } => (Some(vni), None),
        TunnelEncap::Gre { key, .. } => (None, key),
        TunnelEncap::Ipip => (None, None),
    };
    pb::Tunnel {
        name: name.to_string(),
        kind: t.encap.kind().to_string(),
        local: t.local.to_string(),
        remotes: t.remotes.iter().map(ToString::to_string).collect(),
        vni,
        key,
        port: t.udp_port().map(u32::from),
        mode: t.mode().to_string(),
        vrf: u32::from(t.vrf),
        ttl: u32::from(t.ttl),
        df: t.df,
        mtu: u32::from(i.spec.mtu.unwrap_or_else(|| t.default_mtu())),
        mac: i.spec.mac.map(format_mac).unwrap_or_default(),
        index,
        fdb_entries: m.vteps.range(vtep_range(name)).count() as u32,
    }
}

/// Every tunnel, by name.
pub fn all(m: &Model) -> impl Iterator<Item = (&String, &Arc<Iface>, &Tunnel)> {
    m.ifaces
        .iter()
        .filter_map(|(n, i)| i.spec.tunnel().map(|t| (n, i, t)))
}

/// Tunnel `name`'s MAC -> VTEP entries in their proto form.
pub fn fdb_list(m: &Model, name: &str) -> ApiResult<Vec<pb::TunnelFdbEntry>> {
    existing(m, name)?;
    Ok(m.vteps
        .range(vtep_range(name))
        .map(|((_, mac), ip)| pb::TunnelFdbEntry {
            tunnel: name.to_string(),
            mac: format_mac(*mac),
            remote: ip.to_string(),
        })
        .collect())
}

/// One MAC -> VTEP entry.
pub fn fdb_get(m: &Model, name: &str, mac: &str) -> ApiResult<pb::TunnelFdbEntry> {
    existing(m, name)?;
    let mac = parse_mac("mac", mac).map_err(ApiError::invalid)?;
    m.vteps
        .get(&(Arc::from(name), mac))
        .map(|ip| pb::TunnelFdbEntry {
            tunnel: name.to_string(),
            mac: format_mac(mac),
            remote: ip.to_string(),
        })
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "tunnel {name:?} has no entry for {}",
                format_mac(mac)
            ))
        })
}

/// The plan's part of tunnel `name` (as interface `index`).
pub fn plan(m: &Model, name: &str, i: &Iface, t: &Tunnel, index: u16) -> TunnelPlan {
    TunnelPlan {
        iface: index,
        encap: t.encap,
        vrf: t.vrf,
        local: t.local,
        remotes: t.remotes.clone(),
        ttl: t.ttl,
        df: t.df,
        mtu: i.spec.mtu.unwrap_or_else(|| t.default_mtu()),
        mac: i.spec.mac.unwrap_or_else(|| tunnel_mac(name)),
        vteps: m
            .vteps
            .range(vtep_range(name))
            .map(|((_, mac), ip)| (*mac, *ip))
            .collect(),
    }
}

/// The request that re-creates tunnel `name`.
fn add_request(name: &str, i: &Iface, t: &Tunnel) -> pb::AddTunnelRequest {
    let p = to_pb(&Model::default(), name, i, t, 0);
    pb::AddTunnelRequest {
        name: p.name,
        kind: p.kind,
        local: p.local,
        remotes: p.remotes,
        vni: p.vni,
        key: p.key,
        port: p.port,
        mode: p.mode,
        vrf: p.vrf,
        ttl: Some(p.ttl),
        df: Some(p.df),
        mtu: i.spec.mtu.filter(|m| *m != t.default_mtu()).map(u32::from),
        mac: i.spec.args.get("mac").cloned().unwrap_or_default(),
    }
}

/// The changes that re-create every tunnel (after the addresses of interfaces, which hold
/// their local addresses) and what hangs on it: its interface settings, its bridge
/// membership and the bridge's static entries on it, its MAC -> VTEP entries, its
/// addresses. Routes, neighbours and proxy-ARP through it come with everyone's, after.
pub(super) fn persisted(m: &Model, out: &mut Vec<C>) {
    // Grouped by change, as the state file's sections are (state.rs): a snapshot read
    // back is the same list.
    for (name, i, t) in all(m) {
        out.push(C::AddTunnel(add_request(name, i, t)));
    }
    for (name, i, _) in all(m) {
        if !i.admin_up || i.l3.vrf != 0 {
            out.push(C::SetInterface(pb::SetInterfaceRequest {
                name: name.clone(),
                admin_up: (!i.admin_up).then_some(false),
                mtu: None,
                vrf: Some(u32::from(i.l3.vrf)).filter(|v| *v != 0),
            }));
        }
    }
    for (name, i, _) in all(m) {
        let Some(br) = &i.bridge else {
            continue;
        };
        if let Some(mem) = m.bridges.get(br).and_then(|b| b.members.get(name)) {
            out.push(C::AttachBridge(pb::AttachBridgeRequest {
                bridge: br.clone(),
                iface: name.clone(),
                vlan: mem.vlan.map(u32::from),
                trunk: mem.trunk.iter().map(|v| u32::from(*v)).collect(),
            }));
        }
    }
    let bridge_ids: BTreeMap<u16, &String> = m.bridges.iter().map(|(n, b)| (b.id, n)).collect();
    for (&(id, vlan, mac), e) in &m.statics {
        let (Some(bridge), Some(_)) = (bridge_ids.get(&id), get(m, &e.iface)) else {
            continue;
        };
        out.push(C::AddFdb(pb::AddFdbRequest {
            bridge: (*bridge).clone(),
            mac: format_mac(mac),
            iface: e.iface.to_string(),
            vlan: u32::from(vlan),
            remote: e.remote.map(|r| r.to_string()).unwrap_or_default(),
        }));
    }
    for ((name, mac), ip) in &m.vteps {
        out.push(C::AddTunnelFdb(pb::AddTunnelFdbRequest {
            tunnel: name.to_string(),
            mac: format_mac(*mac),
            remote: ip.to_string(),
        }));
    }
    for (name, _, _) in all(m) {
        for c in super::addr::of_iface(m, name) {
            out.push(C::AddAddress(pb::AddAddressRequest {
                iface: name.clone(),
                address: c.to_string(),
            }));
        }
    }
}
