//! `vsctl iface add|del|list|show|set`: interfaces, and the JSON shape of one interface
//! (also used by `stats`).

use std::collections::{BTreeMap, HashMap};

use anyhow::bail;
use serde::Serialize;
use vswitch_proto::v1::{GetInterfaceRequest, Interface, ListInterfacesRequest};

use crate::args::{Command, IfaceCommand};
use crate::output::{self, or_dash, up_down, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: IfaceCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        IfaceCommand::List => {
            let ifaces = list(ctx).await?;
            if ctx.json {
                output::json(&ifaces.iter().map(InterfaceJson::from).collect::<Vec<_>>())
            } else {
                Ok(list_table(&ifaces))
            }
        }
        IfaceCommand::Show { name } => {
            let iface = get(ctx, name).await?;
            if ctx.json {
                output::json(&InterfaceJson::from(&iface))
            } else {
                Ok(show_text(&iface))
            }
        }
        // The verbs that change something: built and sent in one place.
        other => crate::change::run(Command::Iface(other), ctx).await,
    }
}

/// Every interface, sorted by name.
/// pcap files are opened by the daemon, whose working directory is not ours: make relative
/// ones absolute here, as the user meant them. (Relative vhost-user / memif socket names
/// are a feature: they go under the daemon's run directory.)
pub(crate) fn absolutize_files(
    kind: &str,
    args: &mut HashMap<String, String>,
) -> anyhow::Result<()> {
    if kind != "pcap" {
        return Ok(());
    }
    for key in ["rx", "tx"] {
        if let Some(v) = args.get_mut(key) {
            if !v.is_empty() && !v.starts_with('/') {
                let cwd = std::env::current_dir()?;
                *v = cwd.join(&*v).to_string_lossy().into_owned();
            }
        }
    }
    Ok(())
}

pub async fn list(ctx: &Ctx) -> anyhow::Result<Vec<Interface>> {
    let request = ListInterfacesRequest {};
    let mut ifaces = reply(ctx.client().await?.list_interfaces(request).await)?.interfaces;
    ifaces.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ifaces)
}

pub async fn get(ctx: &Ctx, name: String) -> anyhow::Result<Interface> {
    let request = GetInterfaceRequest { name };
    reply(ctx.client().await?.get_interface(request).await)
}

/// One interface in `--json` output: an element of `iface list`, `iface show`, `stats IFACE`.
#[derive(Debug, Serialize)]
pub struct InterfaceJson<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    admin_up: bool,
    link_up: bool,
    mac: &'a str,
    mtu: u32,
    rx_packets: u64,
    tx_packets: u64,
    rx_bytes: u64,
    tx_bytes: u64,
    drops: u64,
    /// The logical index in the dataplane.
    index: u32,
    port_id: u32,
    devargs: &'a str,
    rx_queues: u32,
    tx_queues: u32,
    /// The cross-connected interface, null if none.
    xconnect: Option<&'a str>,
    args: BTreeMap<&'a str, &'a str>,
    vrf: u32,
    proxy_arp: bool,
    /// Its addresses (CIDR, host bits kept).
    addresses: &'a [String],
    /// The container it attaches (CNI), null if none.
    attachment: Option<AttachmentJson<'a>>,
    /// The port's own counters by name (every one it keeps, zeros included).
    port_counters: BTreeMap<&'a str, u64>,
    /// The connected peer's name, empty if unknown.
    peer: &'a str,
    /// Why the last peer was refused or the last link dropped, empty if none was.
    last_error: &'a str,
}

/// A container's attachment in `--json` output.
#[derive(Debug, Serialize)]
pub struct AttachmentJson<'a> {
    container_id: &'a str,
    ifname: &'a str,
    netns: &'a str,
    network: &'a str,
}

impl<'a> From<&'a Interface> for InterfaceJson<'a> {
    fn from(i: &'a Interface) -> Self {
        InterfaceJson {
            name: &i.name,
            kind: &i.r#type,
            admin_up: i.admin_up,
            link_up: i.link_up,
            mac: &i.mac,
            mtu: i.mtu,
            rx_packets: i.rx_packets,
            tx_packets: i.tx_packets,
            rx_bytes: i.rx_bytes,
            tx_bytes: i.tx_bytes,
            drops: i.drops,
            index: i.index,
            port_id: i.port_id,
            devargs: &i.devargs,
            rx_queues: i.rx_queues,
            tx_queues: i.tx_queues,
            xconnect: Some(i.xconnect.as_str()).filter(|x| !x.is_empty()),
            args: i
                .args
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            vrf: i.vrf,
            proxy_arp: i.proxy_arp,
            addresses: &i.addresses,
            attachment: i.attachment.as_ref().map(|a| AttachmentJson {
                container_id: &a.container_id,
                ifname: &a.ifname,
                netns: &a.netns,
                network: &a.network,
            }),
            port_counters: i
                .port_counters
                .iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect(),
            peer: &i.peer,
            last_error: &i.last_error,
        }
    }
}

fn list_table(ifaces: &[Interface]) -> String {
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("TYPE", Align::Left),
        ("ADMIN", Align::Left),
        ("LINK", Align::Left),
        ("MAC", Align::Left),
        ("MTU", Align::Right),
        ("RX_PACKETS", Align::Right),
        ("TX_PACKETS", Align::Right),
        ("RX_BYTES", Align::Right),
        ("TX_BYTES", Align::Right),
        ("DROPS", Align::Right),
    ]);
    for i in ifaces {
        table.row(vec![
            i.name.clone(),
            i.r#type.clone(),
            up_down(i.admin_up),
            up_down(i.link_up),
            or_dash(&i.mac),
            i.mtu.to_string(),
            i.rx_packets.to_string(),
            i.tx_packets.to_string(),
            i.rx_bytes.to_string(),
            i.tx_bytes.to_string(),
            i.drops.to_string(),
        ]);
    }
    table.render()
}

fn show_text(i: &Interface) -> String {
    let args: BTreeMap<&String, &String> = i.args.iter().collect();
    let args: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    output::key_values(&[
        ("name", i.name.clone()),
        ("type", i.r#type.clone()),
        ("args", or_dash(&args.join(" "))),
        ("admin", up_down(i.admin_up)),
        ("link", up_down(i.link_up)),
        ("mac", or_dash(&i.mac)),
        ("mtu", i.mtu.to_string()),
        ("index", i.index.to_string()),
        (
            "port_id",
            if i.port_id == u32::MAX {
                "-".to_owned()
            } else {
                i.port_id.to_string()
            },
        ),
        ("devargs", or_dash(&i.devargs)),
        ("rx_queues", i.rx_queues.to_string()),
        ("tx_queues", i.tx_queues.to_string()),
        ("xconnect", or_dash(&i.xconnect)),
        ("vrf", i.vrf.to_string()),
        (
            "proxy_arp",
            if i.proxy_arp { "on" } else { "off" }.to_owned(),
        ),
        ("addresses", or_dash(&i.addresses.join(" "))),
        (
            "attachment",
            i.attachment.as_ref().map_or("-".to_owned(), |a| {
                format!(
                    "container={} ifname={} netns={} network={}",
                    a.container_id,
                    a.ifname,
                    or_dash(&a.netns),
                    a.network
                )
            }),
        ),
        ("rx_packets", i.rx_packets.to_string()),
        ("tx_packets", i.tx_packets.to_string()),
        ("rx_bytes", i.rx_bytes.to_string()),
        ("tx_bytes", i.tx_bytes.to_string()),
        ("drops", i.drops.to_string()),
    ])
}

/// What `iface set NAME up|down [mtu=N] [vrf=ID]` changes; `None` leaves it as it is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    pub admin_up: Option<bool>,
    pub mtu: Option<u32>,
    pub vrf: Option<u32>,
}

/// Parses the words after `iface set NAME`: at most one of `up`/`down`, at most one `mtu=N`
/// (N > 0: the API reads 0 as "unchanged"), at most one `vrf=ID`, at least one of them.
pub(crate) fn parse_settings(words: &[String]) -> anyhow::Result<Settings> {
    let mut settings = Settings {
        admin_up: None,
        mtu: None,
        vrf: None,
    };
    for word in words {
        match (word.as_str(), word.split_once('=')) {
            ("up" | "down", _) => {
                if settings.admin_up.is_some() {
                    bail!("invalid argument {word:?}: up or down given twice");
                }
                settings.admin_up = Some(word == "up");
            }
            (_, Some(("mtu", value))) => {
                if settings.mtu.is_some() {
                    bail!("invalid argument {word:?}: mtu given twice");
                }
                match value.parse::<u32>() {
                    Ok(mtu) if mtu > 0 => settings.mtu = Some(mtu),
                    _ => bail!("invalid argument {word:?}: mtu must be a positive integer"),
                }
            }
            (_, Some(("vrf", value))) => {
                if settings.vrf.is_some() {
                    bail!("invalid argument {word:?}: vrf given twice");
                }
                settings.vrf = Some(crate::vrf::vrf_id(value)?);
            }
            _ => bail!("invalid argument {word:?}: expected up, down, mtu=N or vrf=ID"),
        }
    }
    if settings
        == (Settings {
            admin_up: None,
            mtu: None,
            vrf: None,
        })
    {
        bail!("nothing to set: expected up, down, mtu=N or vrf=ID");
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn settings(list: &[&str]) -> anyhow::Result<Settings> {
        parse_settings(&words(list))
    }

    #[test]
    fn set_up_down_and_mtu() {
        assert_eq!(
            settings(&["up"]).expect("valid"),
            Settings {
                admin_up: Some(true),
                mtu: None,
                vrf: None
            }
        );
        assert_eq!(
            settings(&["down", "mtu=9000"]).expect("valid"),
            Settings {
                admin_up: Some(false),
                mtu: Some(9000),
                vrf: None
            }
        );
        assert_eq!(
            settings(&["mtu=1500"]).expect("valid"),
            Settings {
                admin_up: None,
                mtu: Some(1500),
                vrf: None
            }
        );
        assert_eq!(
            settings(&["vrf=5"]).expect("valid"),
            Settings {
                admin_up: None,
                mtu: None,
                vrf: Some(5)
            }
        );
    }

    #[test]
    fn set_rejects_bad_words() {
        let err = |list: &[&str]| settings(list).unwrap_err().to_string();
        assert_eq!(
            err(&["up", "down"]),
            r#"invalid argument "down": up or down given twice"#
        );
        assert_eq!(
            err(&["mtu=1500", "mtu=9000"]),
            r#"invalid argument "mtu=9000": mtu given twice"#
        );
        assert_eq!(
            err(&["mtu=big"]),
            r#"invalid argument "mtu=big": mtu must be a positive integer"#
        );
        assert_eq!(
            err(&["mtu=0"]),
            r#"invalid argument "mtu=0": mtu must be a positive integer"#
        );
        assert_eq!(
            err(&["mtu=-1"]),
            r#"invalid argument "mtu=-1": mtu must be a positive integer"#
        );
        assert_eq!(
            err(&["UP"]),
            r#"invalid argument "UP": expected up, down, mtu=N or vrf=ID"#
        );
        assert_eq!(
            err(&["mac=02:00:00:00:00:01"]),
            r#"invalid argument "mac=02:00:00:00:00:01": expected up, down, mtu=N or vrf=ID"#
        );
        assert_eq!(
            err(&["vrf=x"]),
            r#"invalid argument "vrf=x": vrf must be a number from 0 to 4095"#
        );
        assert_eq!(
            err(&["vrf=1", "vrf=2"]),
            r#"invalid argument "vrf=2": vrf given twice"#
        );
        assert_eq!(
            err(&[]),
            "nothing to set: expected up, down, mtu=N or vrf=ID"
        );
    }

    fn sample() -> Interface {
        Interface {
            name: "vm1".into(),
            r#type: "vhost-user".into(),
            args: HashMap::from([
                ("socket".to_owned(), "/run/vm1.sock".to_owned()),
                ("mode".to_owned(), "server".to_owned()),
            ]),
            admin_up: true,
            link_up: false,
            mac: "02:00:00:00:00:01".into(),
            mtu: 1500,
            rx_packets: 10,
            tx_packets: 20,
            rx_bytes: 640,
            tx_bytes: 1280,
            drops: 3,
            index: 5,
            port_id: 2,
            devargs: "net_vhost0,iface=/run/vm1.sock".into(),
            rx_queues: 1,
            tx_queues: 2,
            xconnect: String::new(),
            vrf: 0,
            proxy_arp: false,
            addresses: vec!["10.0.0.1/24".into()],
            attachment: None,
            port_counters: HashMap::from([
                ("connects".to_owned(), 2),
                ("disconnects".to_owned(), 1),
                ("refused".to_owned(), 0),
            ]),
            peer: String::new(),
            last_error: "the frontend gave no memory table".into(),
        }
    }

    #[test]
    fn interface_json_shape() {
        let iface = sample();
        let value = serde_json::to_value(InterfaceJson::from(&iface)).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({
                "name": "vm1",
                "type": "vhost-user",
                "admin_up": true,
                "link_up": false,
                "mac": "02:00:00:00:00:01",
                "mtu": 1500,
                "rx_packets": 10,
                "tx_packets": 20,
                "rx_bytes": 640,
                "tx_bytes": 1280,
                "drops": 3,
                "index": 5,
                "port_id": 2,
                "devargs": "net_vhost0,iface=/run/vm1.sock",
                "rx_queues": 1,
                "tx_queues": 2,
                "xconnect": null,
                "args": {"mode": "server", "socket": "/run/vm1.sock"},
                "vrf": 0,
                "proxy_arp": false,
                "addresses": ["10.0.0.1/24"],
                "attachment": null,
                "port_counters": {"connects": 2, "disconnects": 1, "refused": 0},
                "peer": "",
                "last_error": "the frontend gave no memory table",
            })
        );
    }

    #[test]
    fn an_attachment_is_shown_in_json_and_text() {
        let iface = Interface {
            attachment: Some(vswitch_proto::v1::Attachment {
                container_id: "c0ffee".into(),
                ifname: "eth0".into(),
                netns: String::new(),
                network: "pods".into(),
            }),
            ..sample()
        };
        let value = serde_json::to_value(InterfaceJson::from(&iface)).expect("serializes");
        assert_eq!(
            value["attachment"],
            serde_json::json!({
                "container_id": "c0ffee", "ifname": "eth0", "netns": "", "network": "pods"
            })
        );
        assert!(show_text(&iface)
            .contains("attachment: container=c0ffee ifname=eth0 netns=- network=pods\n"));
    }

    #[test]
    fn interface_json_names_the_xconnect_peer() {
        let iface = Interface {
            xconnect: "vm2".into(),
            ..sample()
        };
        let value = serde_json::to_value(InterfaceJson::from(&iface)).expect("serializes");
        assert_eq!(value["xconnect"], "vm2");
    }

    #[test]
    fn list_table_has_a_row_per_interface() {
        let text = list_table(&[sample()]);
        assert_eq!(
            text,
            "NAME  TYPE        ADMIN  LINK  MAC                 MTU  RX_PACKETS  TX_PACKETS  RX_BYTES  TX_BYTES  DROPS\n\
             vm1   vhost-user  up     down  02:00:00:00:00:01  1500          10          20       640      1280      3\n"
        );
    }

    #[test]
    fn show_text_lists_every_field() {
        let text = show_text(&sample());
        assert!(text.starts_with("name:       vm1\ntype:       vhost-user\n"));
        assert!(text.contains("args:       mode=server socket=/run/vm1.sock\n"));
        assert!(text.contains("xconnect:   -\n"));
        assert!(text.ends_with("drops:      3\n"));
    }
}
