//! The commands that change something: the one place where a command line becomes a
//! change (`vsctl NOUN VERB ...` and a line of `vsctl transaction FILE` alike, so the two
//! can never differ), and where a single change is sent as its own call and its reply
//! printed.

use anyhow::bail;
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use crate::acl::{AclJson, BindingJson};
use crate::addr::AddressJson;
use crate::args::{
    AclCommand, AddrCommand, BridgeCommand, Command, FdbCommand, IfaceCommand, NatCommand,
    NeighCommand, PortmapCommand, RouteCommand, ServiceCommand, SessionCommand, TunnelCommand,
    TunnelFdbCommand, VrfCommand, XconnectCommand,
};
use crate::bridge::BridgeJson;
use crate::fdb::{FdbEntryJson, FlushJson};
use crate::iface::{absolutize_files, parse_settings, InterfaceJson};
use crate::kv::parse_key_values;
use crate::nat::{MasqueradeJson, PortMapJson};
use crate::neigh::{ConfigJson, NeighborJson};
use crate::proxy_arp::ProxyArpJson;
use crate::route::RouteJson;
use crate::rpc::{reply, Ctx};
use crate::service::ServiceJson;
use crate::tunnel::{TunnelJson, VtepJson};
use crate::vrf::VrfJson;
use crate::xconnect::XconnectJson;

/// Runs a command that changes something: one call, its reply printed (with `--json`, the
/// object as it is after the change; `{}` after a delete).
pub async fn run(command: Command, ctx: &Ctx) -> anyhow::Result<String> {
    // The command is checked before vswitchd is asked anything: a typo is reported as such,
    // also when vswitchd is not running.
    let change = of(command)?;
    let mut client = ctx.client().await?;
    match change {
        C::AddInterface(r) => {
            ctx.changed(&InterfaceJson::from(&reply(client.add_interface(r).await)?))
        }
        C::SetInterface(r) => {
            ctx.changed(&InterfaceJson::from(&reply(client.set_interface(r).await)?))
        }
        C::DeleteInterface(r) => reply(client.delete_interface(r).await).map(|_| ctx.deleted()),
        C::AddXconnect(r) => {
            ctx.changed(&XconnectJson::from(&reply(client.add_xconnect(r).await)?))
        }
        C::DeleteXconnect(r) => reply(client.delete_xconnect(r).await).map(|_| ctx.deleted()),
        C::AddBridge(r) => ctx.changed(&BridgeJson::from(&reply(client.add_bridge(r).await)?)),
        C::DeleteBridge(r) => reply(client.delete_bridge(r).await).map(|_| ctx.deleted()),
        C::AttachBridge(r) => {
            ctx.changed(&BridgeJson::from(&reply(client.attach_bridge(r).await)?))
        }
        C::DetachBridge(r) => {
            ctx.changed(&BridgeJson::from(&reply(client.detach_bridge(r).await)?))
        }
        C::AddFdb(r) => ctx.changed(&FdbEntryJson::from(&reply(client.add_fdb(r).await)?)),
        C::DeleteFdb(r) => reply(client.delete_fdb(r).await).map(|_| ctx.deleted()),
        C::FlushFdb(r) => {
            let removed = reply(client.flush_fdb(r).await)?.removed;
            ctx.changed(&FlushJson { removed })
        }
        C::AddVrf(r) => ctx.changed(&VrfJson::from(&reply(client.add_vrf(r).await)?)),
        C::DeleteVrf(r) => reply(client.delete_vrf(r).await).map(|_| ctx.deleted()),
        C::AddAddress(r) => ctx.changed(&AddressJson::from(&reply(client.add_address(r).await)?)),
        C::DeleteAddress(r) => reply(client.delete_address(r).await).map(|_| ctx.deleted()),
        C::AddRoute(r) => ctx.changed(&RouteJson::from(&reply(client.add_route(r).await)?)),
        C::DeleteRoute(r) => reply(client.delete_route(r).await).map(|_| ctx.deleted()),
        C::AddNeighbor(r) => {
            ctx.changed(&NeighborJson::from(&reply(client.add_neighbor(r).await)?))
        }
        C::DeleteNeighbor(r) => reply(client.delete_neighbor(r).await).map(|_| ctx.deleted()),
        C::SetNeighborConfig(r) => ctx.changed(&ConfigJson::from(&reply(
            client.set_neighbor_config(r).await,
        )?)),
        C::SetProxyArp(r) => {
            ctx.changed(&ProxyArpJson::from(&reply(client.set_proxy_arp(r).await)?))
        }
        C::AddTunnel(r) => ctx.changed(&TunnelJson::from(&reply(client.add_tunnel(r).await)?)),
        C::DeleteTunnel(r) => reply(client.delete_tunnel(r).await).map(|_| ctx.deleted()),
        C::AddTunnelFdb(r) => ctx.changed(&VtepJson::from(&reply(client.add_tunnel_fdb(r).await)?)),
        C::DeleteTunnelFdb(r) => reply(client.delete_tunnel_fdb(r).await).map(|_| ctx.deleted()),
        C::AddAcl(r) => ctx.changed(&AclJson::from(&reply(client.add_acl(r).await)?)),
        C::SetAcl(r) => ctx.changed(&AclJson::from(&reply(client.set_acl(r).await)?)),
        C::DeleteAcl(r) => reply(client.delete_acl(r).await).map(|_| ctx.deleted()),
        C::BindAcl(r) => ctx.changed(&BindingJson::from(&reply(client.bind_acl(r).await)?)),
        C::UnbindAcl(r) => reply(client.unbind_acl(r).await).map(|_| ctx.deleted()),
        C::SetSessionConfig(r) => {
            let c = reply(client.set_session_config(r).await)?;
            if ctx.json {
                crate::session::show(&c, ctx)
            } else {
                Ok(String::new())
            }
        }
        C::FlushSessions(r) => {
            crate::session::flushed(reply(client.flush_sessions(r).await)?.removed, ctx)
        }
        C::AddService(r) => ctx.changed(&ServiceJson::from(&reply(client.add_service(r).await)?)),
        C::SetServiceBackends(r) => ctx.changed(&ServiceJson::from(&reply(
            client.set_service_backends(r).await,
        )?)),
        C::DeleteService(r) => reply(client.delete_service(r).await).map(|_| ctx.deleted()),
        C::SetMasquerade(r) => {
            let (iface, on) = (r.iface.clone(), r.on);
            reply(client.set_masquerade(r).await)?;
            ctx.changed(&MasqueradeJson {
                iface: &iface,
                masquerade: on,
            })
        }
        C::AddPortMap(r) => ctx.changed(&PortMapJson::from(&reply(client.add_port_map(r).await)?)),
        C::DeletePortMap(r) => reply(client.delete_port_map(r).await).map(|_| ctx.deleted()),
    }
}

/// The change a (mutating) command makes; an error for a command that changes nothing.
pub fn of(command: Command) -> anyhow::Result<C> {
    Ok(match command {
        Command::Iface(IfaceCommand::Add { name, kind, args }) => {
            let mut args = parse_key_values(&args)?;
            absolutize_files(&kind, &mut args)?;
            let vrf = args
                .remove("vrf")
                .map(|v| crate::vrf::vrf_id(&v))
                .transpose()?;
            C::AddInterface(pb::AddInterfaceRequest {
                name,
                r#type: kind,
                args,
                vrf,
                attachment: None,
            })
        }
        Command::Iface(IfaceCommand::Del { name }) => {
            C::DeleteInterface(pb::DeleteInterfaceRequest { name })
        }
        Command::Iface(IfaceCommand::Set { name, settings }) => {
            let s = parse_settings(&settings)?;
            C::SetInterface(pb::SetInterfaceRequest {
                name,
                admin_up: s.admin_up,
                mtu: s.mtu,
                vrf: s.vrf,
            })
        }
        Command::Bridge(BridgeCommand::Add { name, args }) => {
            C::AddBridge(crate::bridge::add_request(name, &args)?)
        }
        Command::Bridge(BridgeCommand::Del { name }) => {
            C::DeleteBridge(pb::DeleteBridgeRequest { name })
        }
        Command::Bridge(BridgeCommand::Attach {
            bridge,
            iface,
            args,
        }) => C::AttachBridge(crate::bridge::attach_request(bridge, iface, &args)?),
        Command::Bridge(BridgeCommand::Detach { bridge, iface }) => {
            C::DetachBridge(pb::DetachBridgeRequest { bridge, iface })
        }
        Command::Fdb(FdbCommand::Add {
            bridge,
            mac,
            iface,
            args,
        }) => {
            let (vlan, remote) = crate::fdb::add_options(&args)?;
            C::AddFdb(pb::AddFdbRequest {
                bridge,
                mac,
                iface,
                vlan,
                remote,
            })
        }
        Command::Fdb(FdbCommand::Del { bridge, mac, args }) => C::DeleteFdb(pb::DeleteFdbRequest {
            bridge,
            mac,
            vlan: crate::fdb::vlan_option(&args)?,
        }),
        Command::Fdb(FdbCommand::Flush { bridge, iface }) => C::FlushFdb(pb::FlushFdbRequest {
            bridge,
            iface: iface.unwrap_or_default(),
        }),
        Command::Xconnect(XconnectCommand::Add { iface_a, iface_b }) => {
            C::AddXconnect(pb::AddXconnectRequest { iface_a, iface_b })
        }
        Command::Xconnect(XconnectCommand::Del { iface_a }) => {
            C::DeleteXconnect(pb::DeleteXconnectRequest { iface_a })
        }
        Command::Vrf(VrfCommand::Add { id }) => C::AddVrf(pb::AddVrfRequest {
            id: crate::vrf::id_arg(&id)?,
        }),
        Command::Vrf(VrfCommand::Del { id }) => C::DeleteVrf(pb::DeleteVrfRequest {
            id: crate::vrf::id_arg(&id)?,
        }),
        Command::Addr(AddrCommand::Add { iface, cidr }) => C::AddAddress(pb::AddAddressRequest {
            iface,
            address: cidr,
        }),
        Command::Addr(AddrCommand::Del { iface, cidr }) => {
            C::DeleteAddress(pb::DeleteAddressRequest {
                iface,
                address: cidr,
            })
        }
        Command::Route(RouteCommand::Add { prefix, args }) => {
            C::AddRoute(crate::route::add_request(prefix, &args)?)
        }
        Command::Route(RouteCommand::Del { prefix, args }) => {
            C::DeleteRoute(pb::DeleteRouteRequest {
                prefix,
                vrf: crate::vrf::vrf_option(&args)?.unwrap_or(0),
            })
        }
        Command::Neigh(NeighCommand::Add { iface, ip, mac }) => {
            C::AddNeighbor(pb::AddNeighborRequest { iface, ip, mac })
        }
        Command::Neigh(NeighCommand::Del { iface, ip }) => {
            C::DeleteNeighbor(pb::DeleteNeighborRequest { iface, ip })
        }
        Command::Neigh(NeighCommand::Set { args }) => {
            C::SetNeighborConfig(crate::neigh::set_request(&args)?)
        }
        Command::Tunnel(TunnelCommand::Add { name, kind, args }) => {
            C::AddTunnel(crate::tunnel::add_request(name, kind, &args)?)
        }
        Command::Tunnel(TunnelCommand::Del { name }) => {
            C::DeleteTunnel(pb::DeleteTunnelRequest { name })
        }
        Command::Tunnel(TunnelCommand::Fdb(TunnelFdbCommand::Add { tunnel, mac, args })) => {
            C::AddTunnelFdb(crate::tunnel::fdb_add_request(tunnel, mac, &args)?)
        }
        Command::Tunnel(TunnelCommand::Fdb(TunnelFdbCommand::Del { tunnel, mac })) => {
            C::DeleteTunnelFdb(pb::DeleteTunnelFdbRequest { tunnel, mac })
        }
        Command::Acl(AclCommand::Add { name, rules }) => C::AddAcl(pb::AddAclRequest {
            name,
            rules: crate::acl::rules(&rules)?,
        }),
        Command::Acl(AclCommand::Set { name, rules }) => C::SetAcl(pb::SetAclRequest {
            name,
            rules: crate::acl::rules(&rules)?,
        }),
        Command::Acl(AclCommand::Del { name }) => C::DeleteAcl(pb::DeleteAclRequest { name }),
        Command::Acl(AclCommand::Bind {
            iface,
            acl,
            direction,
        }) => C::BindAcl(pb::BindAclRequest {
            iface,
            acl,
            direction,
        }),
        Command::Acl(AclCommand::Unbind { iface, direction }) => {
            C::UnbindAcl(pb::UnbindAclRequest { iface, direction })
        }
        Command::Session(SessionCommand::Set { args }) => {
            C::SetSessionConfig(crate::session::set_request(&args)?)
        }
        Command::Sessions { words, .. } if words.first().is_some_and(|w| w == "flush") => {
            C::FlushSessions(crate::session::flush_request(&words)?)
        }
        Command::Service(ServiceCommand::Add { name, vip, args }) => {
            C::AddService(crate::service::add_request(name, &vip, &args)?)
        }
        Command::Service(ServiceCommand::Set { name, args }) => {
            C::SetServiceBackends(crate::service::set_request(name, &args)?)
        }
        Command::Service(ServiceCommand::Del { name }) => {
            C::DeleteService(pb::DeleteServiceRequest { name })
        }
        Command::Nat(NatCommand::Masquerade { iface, state }) => {
            C::SetMasquerade(pb::SetMasqueradeRequest {
                iface,
                on: crate::nat::on_off(&state)?,
            })
        }
        Command::Nat(NatCommand::Portmap(PortmapCommand::Add {
            iface,
            proto,
            port,
            to,
        })) => {
            let (to_ip, to_port) = crate::service::endpoint("target", &to)?;
            C::AddPortMap(pb::AddPortMapRequest {
                iface,
                proto,
                port: crate::service::port("port", &port)?,
                to_ip,
                to_port,
            })
        }
        Command::Nat(NatCommand::Portmap(PortmapCommand::Del { iface, proto, port })) => {
            C::DeletePortMap(pb::DeletePortMapRequest {
                iface,
                proto,
                port: crate::service::port("port", &port)?,
            })
        }
        Command::ProxyArp { iface, state } => C::SetProxyArp(pb::SetProxyArpRequest {
            iface,
            on: crate::proxy_arp::on_off(&state)?,
        }),
        other => bail!(
            "{} changes nothing; a transaction holds only changes",
            describe(&other)
        ),
    })
}

fn describe(c: &Command) -> String {
    let s = format!("{c:?}");
    let noun = s.split(['(', ' ', '{']).next().unwrap_or("command");
    format!("`{}`", noun.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A bad argument is reported as such, before any connection is tried (no vswitchd
    /// listens at this socket).
    #[test]
    fn a_bad_command_is_reported_before_vswitchd_is_asked() {
        let ctx = Ctx {
            socket: "/nonexistent/vswitchd.sock".into(),
            json: false,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for line in [
            "vsctl fdb add br0 02:00:00:00:00:01 a vlan=x",
            "vsctl bridge add br0 learn=maybe",
            "vsctl iface set a mtu=big",
            "vsctl iface add a null vrf=red",
            "vsctl vrf add blue",
            "vsctl route add 10.0.0.0/8 gw 10.0.0.1",
            "vsctl route del 10.0.0.0/8 vrf=x",
            "vsctl neigh set",
            "vsctl proxy-arp a maybe",
            "vsctl tunnel add t vxlan vni=x local=10.0.0.1",
            "vsctl tunnel add t gre df=maybe",
            "vsctl tunnel fdb add t 02:00:00:00:00:01",
            "vsctl fdb add br0 02:00:00:00:00:01 t remote=10.0.0.1 colour=red",
            "vsctl acl add web permit colour=red",
            "vsctl acl set web dport=80",
            "vsctl session set",
            "vsctl session set limit=x",
            "vsctl session set colour=red",
            "vsctl service add web 10.0.0.1 proto=tcp backends=",
            "vsctl service add web 10.0.0.1:80 backends=10.1.0.1:80",
            "vsctl service add web 10.0.0.1:80 proto=tcp backends=10.1.0.1",
            "vsctl service set web backends=10.1.0.1:80*x",
            "vsctl nat masquerade up0 maybe",
            "vsctl nat portmap add up0 tcp x 10.1.0.1:80",
            "vsctl nat portmap add up0 tcp 80 10.1.0.1",
        ] {
            let cli = crate::args::Cli::try_parse_from(line.split(' ')).unwrap();
            let e = format!("{:#}", rt.block_on(run(cli.command, &ctx)).unwrap_err());
            assert!(
                !e.contains("nonexistent"),
                "{line}: asked vswitchd first: {e}"
            );
        }
    }
}
