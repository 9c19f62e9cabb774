//! `vsctl nat masquerade IFACE on|off`, `nat portmap add|del ...`, `nat show`.
//!
//! `--json`: `nat show` prints `{masquerade: [{iface, v4, v6}], portmaps: [{iface, proto,
//! port, to_ip, to_port}]}` (v4 / v6 null when the interface has no address of that
//! family); `nat portmap add` prints the mapping, `nat masquerade` `{iface, masquerade}`.

use serde::Serialize;
use vswitch_proto::v1 as pb;

use crate::args::{Command, NatCommand};
use crate::output::{self, or_dash, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: NatCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        NatCommand::Show => {
            let n = reply(ctx.client().await?.get_nat(pb::GetNatRequest {}).await)?;
            if ctx.json {
                output::json(&NatJson::from(&n))
            } else {
                Ok(show_table(&n))
            }
        }
        other => crate::change::run(Command::Nat(other), ctx).await,
    }
}

/// `on` or `off`.
pub fn on_off(value: &str) -> anyhow::Result<bool> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => anyhow::bail!("invalid argument {value:?}: masquerade is on or off"),
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct MasqueradeJson<'a> {
    pub iface: &'a str,
    pub masquerade: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct PortMapJson<'a> {
    iface: &'a str,
    proto: &'a str,
    port: u32,
    to_ip: &'a str,
    to_port: u32,
}

impl<'a> From<&'a pb::PortMap> for PortMapJson<'a> {
    fn from(p: &'a pb::PortMap) -> Self {
        PortMapJson {
            iface: &p.iface,
            proto: &p.proto,
            port: p.port,
            to_ip: &p.to_ip,
            to_port: p.to_port,
        }
    }
}

#[derive(Debug, Serialize)]
struct AddrsJson<'a> {
    iface: &'a str,
    v4: Option<&'a str>,
    v6: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct NatJson<'a> {
    masquerade: Vec<AddrsJson<'a>>,
    portmaps: Vec<PortMapJson<'a>>,
}

impl<'a> From<&'a pb::Nat> for NatJson<'a> {
    fn from(n: &'a pb::Nat) -> Self {
        let some = |s: &'a str| Some(s).filter(|s| !s.is_empty());
        NatJson {
            masquerade: n
                .masquerade
                .iter()
                .map(|m| AddrsJson {
                    iface: &m.iface,
                    v4: some(&m.v4),
                    v6: some(&m.v6),
                })
                .collect(),
            portmaps: n.portmaps.iter().map(PortMapJson::from).collect(),
        }
    }
}

fn show_table(n: &pb::Nat) -> String {
    let mut m = Table::new(&[
        ("MASQUERADE", Align::Left),
        ("IPV4", Align::Left),
        ("IPV6", Align::Left),
    ]);
    for x in &n.masquerade {
        m.row(vec![x.iface.clone(), or_dash(&x.v4), or_dash(&x.v6)]);
    }
    let mut p = Table::new(&[
        ("PORTMAP", Align::Left),
        ("PROTO", Align::Left),
        ("PORT", Align::Right),
        ("TO", Align::Left),
    ]);
    for x in &n.portmaps {
        let to = if x.to_ip.contains(':') {
            format!("[{}]:{}", x.to_ip, x.to_port)
        } else {
            format!("{}:{}", x.to_ip, x.to_port)
        };
        p.row(vec![
            x.iface.clone(),
            x.proto.clone(),
            x.port.to_string(),
            to,
        ]);
    }
    format!("{}\n{}", m.render(), p.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show() {
        let n = pb::Nat {
            masquerade: vec![pb::Masquerade {
                iface: "up0".into(),
                v4: "192.0.2.1".into(),
                v6: String::new(),
            }],
            portmaps: vec![pb::PortMap {
                iface: "up0".into(),
                proto: "tcp".into(),
                port: 8080,
                to_ip: "10.1.0.5".into(),
                to_port: 80,
            }],
        };
        assert_eq!(
            show_table(&n),
            "MASQUERADE  IPV4       IPV6\n\
             up0         192.0.2.1  -\n\
             \n\
             PORTMAP  PROTO  PORT  TO\n\
             up0      tcp    8080  10.1.0.5:80\n"
        );
        let v = serde_json::to_value(NatJson::from(&n)).unwrap();
        assert_eq!(v["masquerade"][0]["v4"], "192.0.2.1");
        assert!(v["masquerade"][0]["v6"].is_null());
        assert_eq!(v["portmaps"][0]["to_port"], 80);
        assert!(on_off("maybe").is_err());
    }
}
