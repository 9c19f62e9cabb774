//! The pod's side: the veth pair (its host end in the switch's namespace, its other end
//! CNI_IFNAME in the pod's), and the pod interface's MTU, addresses and routes, made over
//! rtnetlink (kport::netlink) without entering the namespace on this thread.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::Path;

use kport::{Netlink, VethEnd};

use crate::error::{code, CniError, CniResult};
use crate::result::{Cidr, Ip, Route};

/// The gateway of routed mode, answered by proxy-ARP on the pod's interface (Calico's).
pub const ROUTED_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

fn os(what: String, e: io::Error) -> CniError {
    CniError::new(code::IO, what).with_details(e.to_string())
}

/// Opens the pod's network namespace; one that does not exist is code 3 (container
/// unknown), as the spec says.
pub fn open_netns(path: &str) -> CniResult<File> {
    let f = File::open(path).map_err(|e| {
        let c = if e.kind() == io::ErrorKind::NotFound {
            code::UNKNOWN_CONTAINER
        } else {
            code::IO
        };
        CniError::new(c, format!("CNI_NETNS {path} cannot be opened: {e}"))
    })?;
    Ok(f)
}

/// A netlink socket in the pod's namespace.
pub fn netlink_in(netns: &str) -> CniResult<Netlink> {
    Netlink::open_in(Path::new(netns)).map_err(|e| {
        let c = match e.kind() {
            io::ErrorKind::NotFound => code::UNKNOWN_CONTAINER,
            io::ErrorKind::InvalidInput => code::INVALID_ENV,
            _ => code::IO,
        };
        CniError::new(c, format!("CNI_NETNS {netns}: {e}"))
    })
}

pub fn host_netlink() -> CniResult<Netlink> {
    Netlink::open().map_err(|e| os("cannot open rtnetlink".into(), e))
}

/// Creates the veth pair: `host` here, `ifname` in the pod's namespace (both MTU `mtu`).
pub fn add_veth(host: &str, ifname: &str, netns: &File, mtu: Option<u32>) -> CniResult<()> {
    let mut nl = host_netlink()?;
    let end = |name: &str| VethEnd {
        name: name.into(),
        mtu,
        mac: None,
    };
    nl.add_veth(&end(host), &end(ifname), Some(netns.as_fd()))
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                if matches!(nl.link(host), Ok(Some(_))) {
                    return CniError::new(
                        code::IO,
                        format!(
                            "host interface {host} exists already (left by an earlier ADD \
                             of this container and interface: DEL it first)"
                        ),
                    );
                }
                return CniError::new(
                    code::INVALID_ENV,
                    format!("CNI_IFNAME {ifname} exists already in the container"),
                );
            }
            os(format!("cannot create veth {host}/{ifname}"), e)
        })
}

/// Brings the host end up; its MAC, for the result.
pub fn host_up(host: &str) -> CniResult<String> {
    let mut nl = host_netlink()?;
    let link = nl
        .link(host)
        .map_err(|e| os(format!("cannot read {host}"), e))?
        .ok_or_else(|| CniError::new(code::IO, format!("host interface {host} vanished")))?;
    nl.set_up(link.index)
        .map_err(|e| os(format!("cannot bring {host} up"), e))?;
    Ok(link.mac.map(format_mac).unwrap_or_default())
}

/// Deletes the host end (and so the pair); false if it was not there.
pub fn del_host(host: &str) -> CniResult<bool> {
    host_netlink()?
        .del_link(host)
        .map_err(|e| os(format!("cannot delete {host}"), e))
}

pub fn format_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// What the pod's interface gets.
pub struct PodConfig<'a> {
    pub ifname: &'a str,
    pub mtu: Option<u32>,
    pub ips: &'a [Ip],
    pub routes: &'a [Route],
    /// Routed mode: addresses as /32 (/128), every route via 169.254.1.1 on the link.
    pub routed: bool,
    /// The MAC the runtime asked for (else the kernel's random one stays).
    pub mac: Option<[u8; 6]>,
}

/// Configures the pod's interface in its namespace; its MAC.
pub fn configure(netns: &str, c: &PodConfig) -> CniResult<String> {
    let mut nl = netlink_in(netns)?;
    let link = nl
        .link(c.ifname)
        .map_err(|e| os(format!("cannot read {} in {netns}", c.ifname), e))?
        .ok_or_else(|| CniError::new(code::IO, format!("{} is not in {netns}", c.ifname)))?;
    let err = |what: String| move |e: io::Error| os(what, e);
    if let Some(mtu) = c.mtu {
        if link.mtu != mtu {
            nl.set_mtu(link.index, mtu)
                .map_err(err(format!("cannot set the MTU of {} to {mtu}", c.ifname)))?;
        }
    }
    let mut mac = link.mac;
    if let Some(m) = c.mac {
        nl.set_mac(link.index, m).map_err(err(format!(
            "cannot set the MAC of {} to {}",
            c.ifname,
            format_mac(m)
        )))?;
        mac = Some(m);
    }
    // Up first: the kernel refuses a gateway route over a link that is down.
    nl.set_up(link.index)
        .map_err(err(format!("cannot bring {} up", c.ifname)))?;
    for ip in c.ips {
        let a = if c.routed {
            Cidr::host(ip.address.addr)
        } else {
            ip.address
        };
        nl.add_addr(link.index, a.addr, a.len)
            .map_err(err(format!("cannot add {a} to {}", c.ifname)))?;
    }
    let route = |dst: Cidr, gateway: Option<IpAddr>, onlink: bool| kport::Route {
        dst: dst.addr,
        prefix_len: dst.len,
        gateway,
        dev: Some(link.index),
        onlink,
    };
    let mut routes = Vec::new();
    if c.routed && c.ips.iter().any(|i| i.address.addr.is_ipv4()) {
        // The gateway on the link, then every route through it.
        routes.push(route(Cidr::host(ROUTED_GATEWAY.into()), None, false));
    }
    for r in c.routes {
        let gw = if c.routed && r.dst.addr.is_ipv4() {
            Some(IpAddr::V4(ROUTED_GATEWAY))
        } else {
            r.gw.or_else(|| {
                c.ips
                    .iter()
                    .find(|i| i.address.addr.is_ipv4() == r.dst.addr.is_ipv4())
                    .and_then(|i| i.gateway)
            })
        };
        routes.push(route(r.dst, gw, c.routed));
    }
    for r in &routes {
        nl.add_route(r).map_err(|e| {
            let dst = Cidr {
                addr: r.dst,
                len: r.prefix_len,
            };
            os(format!("cannot add the route to {dst} in {netns}"), e)
        })?;
    }
    Ok(mac.map(format_mac).unwrap_or_default())
}

/// The node's side (`hostInterface`): the index of that interface in the host namespace.
fn host_iface(nl: &mut Netlink, name: &str) -> CniResult<u32> {
    Ok(nl
        .link(name)
        .map_err(|e| os(format!("cannot read hostInterface {name}"), e))?
        .ok_or_else(|| {
            CniError::new(
                code::INVALID_CONFIG,
                format!("hostInterface {name} does not exist"),
            )
        })?
        .index)
}

/// Bridge mode: the pods' gateway address on the node's interface (once: an address
/// already there is fine).
pub fn host_gateway(name: &str, gateway: Cidr) -> CniResult<()> {
    let mut nl = host_netlink()?;
    let index = host_iface(&mut nl, name)?;
    match nl.add_addr(index, gateway.addr, gateway.len) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            Err(os(format!("cannot add {gateway} to {name}"), e))
        }
        _ => Ok(()),
    }
}

/// Routed mode: the node's route to a pod, out of its interface (replacing one left over).
pub fn host_route(name: &str, pod: Cidr) -> CniResult<()> {
    let mut nl = host_netlink()?;
    let index = host_iface(&mut nl, name)?;
    let _ = nl.del_route(pod.addr, pod.len, Some(index));
    nl.add_route(&kport::Route {
        dst: pod.addr,
        prefix_len: pod.len,
        gateway: None,
        dev: Some(index),
        onlink: false,
    })
    .map_err(|e| {
        os(
            format!("cannot add the node's route to {pod} via {name}"),
            e,
        )
    })
}

/// Removes the node's route to a pod; gone already (or the interface gone) is fine.
pub fn del_host_route(name: &str, pod: Cidr) -> CniResult<()> {
    let mut nl = host_netlink()?;
    let Ok(index) = host_iface(&mut nl, name) else {
        return Ok(());
    };
    nl.del_route(pod.addr, pod.len, Some(index))
        .map(|_| ())
        .map_err(|e| os(format!("cannot delete the node's route to {pod}"), e))
}

/// CHECK: CNI_IFNAME exists in the pod's namespace, is up, and has `ips`.
pub fn check(netns: &str, ifname: &str, ips: &[Ip], routed: bool) -> CniResult<()> {
    let mut nl = netlink_in(netns)?;
    let link = nl
        .link(ifname)
        .map_err(|e| os(format!("cannot read {ifname}"), e))?
        .ok_or_else(|| CniError::new(code::IO, format!("{ifname} is not in {netns}")))?;
    if !link.up {
        return Err(CniError::new(
            code::IO,
            format!("{ifname} in {netns} is down"),
        ));
    }
    let have = nl
        .addrs(link.index)
        .map_err(|e| os(format!("cannot read the addresses of {ifname}"), e))?;
    for ip in ips {
        let want = if routed {
            Cidr::host(ip.address.addr)
        } else {
            ip.address
        };
        if !have.contains(&(want.addr, want.len)) {
            return Err(CniError::new(
                code::IO,
                format!("{ifname} in {netns} lacks its address {want}"),
            ));
        }
    }
    Ok(())
}
