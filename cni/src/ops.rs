//! The CNI verbs. ADD makes the pod's side, then the switch's in one Transaction; any
//! failure undoes what was made (veth, socket directory, IPAM lease) before it answers.
//! DEL, and GC for each attachment it drops, undo all of it and succeed on what is gone.

use std::path::{Path, PathBuf};

use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use crate::conf::{Env, IfType, Mode, NetConf};
use crate::error::{code, invalid, CniError, CniResult};
use crate::ipam::Ipam;
use crate::pod::{self, PodConfig};
use crate::result::{Cidr, CniOutput, Interface};
use crate::switch::Switch;

/// The switch interface (and host veth end) of a container's interface: `vs` and 12 hex
/// digits of a hash of container id and ifname, 14 characters (Linux takes 15).
pub fn host_name(container_id: &str, ifname: &str) -> String {
    // FNV-1a, 64 bits: stable across builds and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in container_id.bytes().chain([0]).chain(ifname.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("vs{:012x}", h >> 16)
}

/// Where IPAM plugins' VERSION answers are kept (ipam.rs).
fn ipam_cache(conf: &NetConf) -> PathBuf {
    conf.socket_dir.join(".ipam-versions")
}

/// The socket a memif / vhost-user pod mounts: `socketDir/<container id>/<ifname>.sock`.
fn socket_path(conf: &NetConf, env: &Env) -> PathBuf {
    conf.socket_dir
        .join(&env.container_id)
        .join(format!("{}.sock", env.ifname))
}

fn attachment(conf: &NetConf, env: &Env) -> pb::Attachment {
    pb::Attachment {
        container_id: env.container_id.clone(),
        ifname: env.ifname.clone(),
        netns: env.netns.clone(),
        network: conf.name.clone(),
    }
}

/// The switch interface of `env`'s attachment on this network, if there is one: the one
/// of its name (no listing: one call, whatever the number of pods).
fn find_attached(sw: &mut Switch, conf: &NetConf, env: &Env) -> CniResult<Option<pb::Interface>> {
    let name = host_name(&env.container_id, &env.ifname);
    Ok(sw.interface(&name)?.filter(|i| {
        i.attachment.as_ref().is_some_and(|a| {
            a.container_id == env.container_id && a.ifname == env.ifname && a.network == conf.name
        })
    }))
}

/// `VSWITCH_CNI_TRACE=1`: the time each step of a call took, on stderr (where a runtime
/// logs a plugin's stderr), to see where an ADD's milliseconds go.
fn trace(step: &str) {
    use std::sync::OnceLock;
    static START: OnceLock<Option<std::time::Instant>> = OnceLock::new();
    let start = START
        .get_or_init(|| std::env::var_os("VSWITCH_CNI_TRACE").map(|_| std::time::Instant::now()));
    if let Some(t) = start {
        eprintln!(
            "vswitch-cni: {:8.3} ms {step}",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
}

/// What ADD has made so far, undone in reverse if it fails.
#[derive(Default)]
struct Made {
    host_routes: Vec<Cidr>,
    /// The IPAM plugin was asked for a lease (it may hold one even if it then failed).
    lease: bool,
    host_veth: Option<String>,
    socket_dir: Option<PathBuf>,
    switch_iface: Option<String>,
}

fn undo(made: &Made, sw: &mut Switch, ipam: Option<&Ipam>, conf: &NetConf, env: &Env) {
    // Best effort: the ADD's own error is what the runtime is told.
    if let Some(h) = &conf.host_interface {
        for r in &made.host_routes {
            let _ = pod::del_host_route(h, *r);
        }
    }
    if let Some(name) = &made.switch_iface {
        let _ = sw.transaction(
            "delete interface",
            vec![C::DeleteInterface(pb::DeleteInterfaceRequest {
                name: name.clone(),
            })],
        );
    }
    if let Some(host) = &made.host_veth {
        let _ = pod::del_host(host);
    }
    if let Some(dir) = &made.socket_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    if let (true, Some(ipam)) = (made.lease, ipam) {
        let _ = ipam.del(conf, env);
    }
}

pub fn add(conf: &NetConf, env: &Env) -> CniResult<CniOutput> {
    trace("start");
    let mut sw = Switch::connect(&conf.socket)?;
    trace("connected");
    if let Some(br) = &conf.bridge {
        if conf.mode == Mode::Bridge && sw.bridge(br)?.is_none() {
            return Err(invalid(format!(
                "bridge {br:?} does not exist in the switch"
            )));
        }
    }
    if let Some(i) = find_attached(&mut sw, conf, env)? {
        return Err(CniError::new(
            code::INVALID_ENV,
            format!(
                "container {} has {} on network {} already (switch interface {})",
                env.container_id, env.ifname, conf.name, i.name
            ),
        ));
    }
    trace("checked bridge and attachment");
    let netns = pod::open_netns(&env.netns)?;
    let ipam = conf
        .ipam
        .as_deref()
        .map(|t| Ipam::find(t, env, &ipam_cache(conf)))
        .transpose()?;
    let mut made = Made::default();
    let r = add_steps(conf, env, &mut sw, ipam.as_ref(), &netns, &mut made);
    if r.is_err() {
        undo(&made, &mut sw, ipam.as_ref(), conf, env);
    }
    r
}

fn add_steps(
    conf: &NetConf,
    env: &Env,
    sw: &mut Switch,
    ipam: Option<&Ipam>,
    netns: &std::fs::File,
    made: &mut Made,
) -> CniResult<CniOutput> {
    let mut out = match ipam {
        Some(ipam) => {
            trace("ipam found");
            let r = ipam.add(conf, env);
            trace("ipam add");
            // host-local may have taken a lease even when it then failed; DEL is idempotent.
            made.lease = true;
            r?
        }
        None => CniOutput::default(),
    };
    let name = host_name(&env.container_id, &env.ifname);
    let routed = conf.mode == Mode::Routed;
    let mut args: Vec<(String, String)> = Vec::new();
    let type_name = match conf.interface {
        IfType::Veth => {
            pod::add_veth(&name, &env.ifname, netns, conf.mtu)?;
            trace("veth made");
            made.host_veth = Some(name.clone());
            args.push(("iface".into(), name.clone()));
            if let Some(mtu) = conf.mtu {
                args.push(("mtu".into(), mtu.to_string()));
            }
            "af_packet"
        }
        IfType::Tap => {
            args.push(("iface".into(), env.ifname.clone()));
            args.push(("netns".into(), env.netns.clone()));
            "tap"
        }
        IfType::Memif | IfType::VhostUser => {
            let sock = socket_path(conf, env);
            let dir = sock.parent().unwrap_or(Path::new("/")).to_path_buf();
            std::fs::create_dir_all(&dir).map_err(|e| {
                CniError::new(code::IO, format!("cannot create {}: {e}", dir.display()))
            })?;
            made.socket_dir = Some(dir);
            args.push(("socket".into(), sock.display().to_string()));
            if let Some(mtu) = conf.mtu {
                args.push(("mtu".into(), mtu.to_string()));
            }
            if conf.interface == IfType::Memif {
                args.push(("role".into(), "server".into()));
                "memif"
            } else {
                args.push(("mode".into(), "server".into()));
                "vhost-user"
            }
        }
    };
    let mut changes = vec![C::AddInterface(pb::AddInterfaceRequest {
        name: name.clone(),
        r#type: type_name.into(),
        args: args.into_iter().collect(),
        vrf: None,
        attachment: Some(attachment(conf, env)),
    })];
    match conf.mode {
        Mode::Bridge => changes.push(C::AttachBridge(pb::AttachBridgeRequest {
            bridge: conf.bridge.clone().unwrap_or_default(),
            iface: name.clone(),
            vlan: conf.vlan.map(u32::from),
            trunk: vec![],
        })),
        Mode::Routed => {
            changes.push(C::SetProxyArp(pb::SetProxyArpRequest {
                iface: name.clone(),
                on: true,
            }));
            for ip in &out.ips {
                changes.push(C::AddRoute(pb::AddRouteRequest {
                    prefix: Cidr::host(ip.address.addr).to_string(),
                    vrf: 0,
                    nexthops: vec![pb::NextHop {
                        via: String::new(),
                        iface: name.clone(),
                    }],
                    onlink: false,
                }));
            }
        }
    }
    sw.transaction("the attachment", changes)?;
    trace("transaction");
    made.switch_iface = Some(name.clone());

    let mut interfaces = Vec::new();
    match conf.interface {
        IfType::Veth | IfType::Tap => {
            let host_mac = if conf.interface == IfType::Veth {
                Some(pod::host_up(&name)?)
            } else {
                None
            };
            let mac = pod::configure(
                &env.netns,
                &PodConfig {
                    ifname: &env.ifname,
                    mtu: conf.mtu,
                    ips: &out.ips,
                    routes: &out.routes,
                    routed,
                    mac: conf.mac.or(env.mac()?),
                },
            )?;
            if let Some(host_mac) = host_mac {
                interfaces.push(Interface {
                    name: name.clone(),
                    mac: host_mac,
                    mtu: conf.mtu,
                    ..Interface::default()
                });
            }
            interfaces.push(Interface {
                name: env.ifname.clone(),
                mac,
                mtu: conf.mtu,
                sandbox: env.netns.clone(),
                socket_path: String::new(),
            });
        }
        IfType::Memif | IfType::VhostUser => {
            let sock = socket_path(conf, env);
            if let Some(file) = &conf.device_info_file {
                write_device_info(file, conf.interface, &sock)?;
            }
            interfaces.push(Interface {
                name: env.ifname.clone(),
                mtu: conf.mtu,
                socket_path: sock.display().to_string(),
                ..Interface::default()
            });
        }
    }
    if let Some(h) = &conf.host_interface {
        for ip in &out.ips {
            if routed {
                pod::host_route(h, Cidr::host(ip.address.addr))?;
                made.host_routes.push(Cidr::host(ip.address.addr));
            } else if let Some(gw) = ip.gateway {
                pod::host_gateway(
                    h,
                    Cidr {
                        addr: gw,
                        len: ip.address.len,
                    },
                )?;
            }
        }
    }
    trace("pod configured");
    let pod_index = interfaces.len() - 1;
    for ip in &mut out.ips {
        ip.interface = Some(pod_index);
        if routed && ip.address.addr.is_ipv4() {
            ip.address = Cidr::host(ip.address.addr);
            ip.gateway = Some(pod::ROUTED_GATEWAY.into());
        }
    }
    out.interfaces = interfaces;
    Ok(out)
}

/// The device-info file (k8snetworkplumbingwg device-info spec 1.1.0) of a socket
/// attachment: the pod's side is the client.
fn write_device_info(file: &Path, t: IfType, sock: &Path) -> CniResult<()> {
    let path = sock.display().to_string();
    let v = match t {
        IfType::Memif => serde_json::json!({
            "type": "memif", "version": "1.1.0",
            "memif": {"role": "client", "mode": "ethernet", "path": path}
        }),
        _ => serde_json::json!({
            "type": "vhost-user", "version": "1.1.0",
            "vhost-user": {"mode": "client", "path": path}
        }),
    };
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(file, serde_json::to_vec_pretty(&v).unwrap_or_default()).map_err(|e| {
        CniError::new(
            code::IO,
            format!("cannot write the device-info file {}: {e}", file.display()),
        )
    })
}

/// Removes one attachment: its switch interface (with its routes), its veth, its socket
/// directory, its lease. Whatever is gone already is fine.
fn remove(
    sw: &mut Switch,
    conf: &NetConf,
    ipam: Option<&Ipam>,
    env: &Env,
    iface: Option<&pb::Interface>,
) -> CniResult<()> {
    let name = host_name(&env.container_id, &env.ifname);
    if let Some(i) = iface {
        let mut changes = Vec::new();
        // Routed mode's /32 routes go first: an interface with routes is not deleted. The
        // node's routes to the pod go with them.
        if i.proxy_arp {
            for prefix in routes_via(sw, i)? {
                if let (Some(h), Some(c)) = (&conf.host_interface, Cidr::parse(&prefix)) {
                    pod::del_host_route(h, c)?;
                }
                changes.push(C::DeleteRoute(pb::DeleteRouteRequest {
                    prefix,
                    vrf: i.vrf,
                }));
            }
        }
        changes.push(C::DeleteInterface(pb::DeleteInterfaceRequest {
            name: i.name.clone(),
        }));
        sw.transaction("the detachment", changes)?;
    }
    // The veth: its host end takes the pod's end with it.
    let host = iface.map_or(name, |i| i.name.clone());
    if conf.interface == IfType::Veth || iface.is_some_and(|i| i.r#type == "af_packet") {
        pod::del_host(&host)?;
    }
    if conf.interface.is_socket() {
        let dir = conf.socket_dir.join(&env.container_id);
        if dir.exists() {
            let _ = std::fs::remove_file(socket_path(conf, env));
            // Only if empty: the container's other attachments keep theirs.
            let _ = std::fs::remove_dir(&dir);
        }
    }
    if let Some(ipam) = ipam {
        ipam.del(conf, env)?;
    }
    Ok(())
}

/// The static routes through interface `i` (routed mode's pod routes), in its VRF.
fn routes_via(sw: &mut Switch, i: &pb::Interface) -> CniResult<Vec<String>> {
    Ok(sw
        .routes(i.vrf)?
        .into_iter()
        .filter(|r| r.origin == "static" && r.nexthops.iter().any(|n| n.iface == i.name))
        .map(|r| r.prefix)
        .collect())
}

pub fn del(conf: &NetConf, env: &Env) -> CniResult<()> {
    let mut sw = Switch::connect(&conf.socket)?;
    let ipam = match conf.ipam.as_deref() {
        Some(t) => Some(Ipam::find(t, env, &ipam_cache(conf))?),
        None => None,
    };
    let iface = find_attached(&mut sw, conf, env)?;
    remove(&mut sw, conf, ipam.as_ref(), env, iface.as_ref())
}

pub fn check(conf: &NetConf, env: &Env) -> CniResult<()> {
    let prev = match conf.raw.get("prevResult") {
        Some(v) if !v.is_null() => CniOutput::from_value(v)?,
        _ => return Err(invalid("CHECK needs prevResult")),
    };
    let mut sw = Switch::connect(&conf.socket)?;
    let iface = find_attached(&mut sw, conf, env)?.ok_or_else(|| {
        CniError::new(
            code::IO,
            format!(
                "the switch has no attachment of container {} {} on network {}",
                env.container_id, env.ifname, conf.name
            ),
        )
    })?;
    if !iface.admin_up {
        return Err(CniError::new(
            code::IO,
            format!("switch interface {} is down", iface.name),
        ));
    }
    if let (Mode::Bridge, Some(br)) = (conf.mode, &conf.bridge) {
        let b = sw
            .bridge(br)?
            .ok_or_else(|| invalid(format!("bridge {br:?} does not exist in the switch")))?;
        let m = b
            .members
            .iter()
            .find(|m| m.iface == iface.name)
            .ok_or_else(|| {
                CniError::new(
                    code::IO,
                    format!("{} is not a member of bridge {br}", iface.name),
                )
            })?;
        if m.vlan != conf.vlan.map_or(0, u32::from) {
            return Err(CniError::new(
                code::IO,
                format!(
                    "{} is in VLAN {} of bridge {br}, not {:?}",
                    iface.name, m.vlan, conf.vlan
                ),
            ));
        }
    }
    if !conf.interface.is_socket() {
        let ips: Vec<_> = prev
            .ips
            .iter()
            .filter(|ip| {
                ip.interface
                    .and_then(|i| prev.interfaces.get(i))
                    .is_none_or(|i| i.name == env.ifname)
            })
            .cloned()
            .collect();
        pod::check(&env.netns, &env.ifname, &ips, conf.mode == Mode::Routed)?;
    }
    if let Some(t) = conf.ipam.as_deref() {
        Ipam::find(t, env, &ipam_cache(conf))?.check(conf, env, &prev)?;
    }
    Ok(())
}

/// GC: every attachment of this network the runtime no longer lists is removed with its
/// lease; an IPAM plugin that speaks 1.1.0 then gets GC itself.
pub fn gc(conf: &NetConf, env: &Env) -> CniResult<()> {
    let keep = conf.valid_attachments.clone().unwrap_or_default();
    let mut sw = Switch::connect(&conf.socket)?;
    let ipam = match conf.ipam.as_deref() {
        Some(t) => Some(Ipam::find(t, env, &ipam_cache(conf))?),
        None => None,
    };
    let mut first_error = None;
    for i in sw.interfaces()? {
        let Some(a) = i.attachment.clone() else {
            continue;
        };
        if a.network != conf.name
            || keep
                .iter()
                .any(|(c, n)| *c == a.container_id && *n == a.ifname)
        {
            continue;
        }
        let its = Env {
            container_id: a.container_id.clone(),
            netns: a.netns.clone(),
            ifname: a.ifname.clone(),
            args: String::new(),
            path: env.path.clone(),
        };
        if let Err(e) = remove(&mut sw, conf, ipam.as_ref(), &its, Some(&i)) {
            first_error.get_or_insert(e);
        }
    }
    if let Some(ipam) = ipam.as_ref().filter(|i| i.speaks_1_1()) {
        ipam.gc(conf, env)?;
    }
    first_error.map_or(Ok(()), Err)
}

/// STATUS: 51 when vswitchd does not answer, 50 when it is at its interface limit.
pub fn status(conf: &NetConf, env: &Env) -> CniResult<()> {
    let h = Switch::connect(&conf.socket)
        .and_then(|mut sw| sw.health())
        .map_err(|e| {
            CniError::new(
                code::NOT_AVAILABLE_EXISTING_LOST,
                format!("vswitchd does not answer at {}", conf.socket.display()),
            )
            .with_details(if e.details.is_empty() {
                e.msg
            } else {
                e.details
            })
        })?;
    if h.max_interfaces > 0 && h.interfaces >= h.max_interfaces {
        return Err(CniError::new(
            code::NOT_AVAILABLE,
            format!(
                "the switch is at its limit of {} interfaces (vswitchd --max-interfaces)",
                h.max_interfaces
            ),
        ));
    }
    if let Some(t) = conf.ipam.as_deref() {
        let ipam = Ipam::find(t, env, &ipam_cache(conf))?;
        if ipam.speaks_1_1() {
            ipam.status(conf, env)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_stable_short_and_distinct() {
        let a = host_name("c0ffee", "eth0");
        assert_eq!(a, host_name("c0ffee", "eth0"));
        assert_eq!(a.len(), 14);
        assert!(crate::conf::is_ifname(&a));
        assert_ne!(a, host_name("c0ffee", "net1"));
        assert_ne!(a, host_name("c0ffe", "eeth0"));
    }
}
