//! The commands that change something: the one place where a command line becomes a
//! change (`vsctl NOUN VERB ...` and a line of `vsctl transaction FILE` alike, so the two
//! can never differ), and where a single change is sent as its own call and its reply
//! printed.

use anyhow::bail;
use vswitch_proto::v1 as pb;
use vswitch_proto::v1::change::Change as C;

use crate::args::{BridgeCommand, Command, FdbCommand, IfaceCommand, XconnectCommand};
use crate::bridge::BridgeJson;
use crate::fdb::{FdbEntryJson, FlushJson};
use crate::iface::{absolutize_files, parse_settings, InterfaceJson};
use crate::kv::parse_key_values;
use crate::rpc::{reply, Ctx};
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
    }
}

/// The change a (mutating) command makes; an error for a command that changes nothing.
pub fn of(command: Command) -> anyhow::Result<C> {
    Ok(match command {
        Command::Iface(IfaceCommand::Add { name, kind, args }) => {
            let mut args = parse_key_values(&args)?;
            absolutize_files(&kind, &mut args)?;
            C::AddInterface(pb::AddInterfaceRequest {
                name,
                r#type: kind,
                args,
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
        }) => C::AddFdb(pb::AddFdbRequest {
            bridge,
            mac,
            iface,
            vlan: crate::fdb::vlan_option(&args)?,
        }),
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
