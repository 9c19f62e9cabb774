//! `vsctl tunnel add|del|list|show` and `vsctl tunnel fdb add|del|show`: tunnels (each an
//! interface: `iface list` shows them) and the MAC -> VTEP entries of vxlan / geneve ones.
//!
//! Only the syntax is checked here (known keys, numbers where numbers go); kinds, ranges,
//! addresses and what the switch has are vswitchd's to check, so gRPC users get the same.

use anyhow::{anyhow, bail};
use serde::Serialize;
use vswitch_proto::v1 as pb;

use crate::args::{Command, TunnelCommand, TunnelFdbCommand};
use crate::bridge::parse_options;
use crate::output::{self, or_dash, Align, Table};
use crate::rpc::{reply, Ctx};

/// The keys `tunnel add` takes (which kind takes which is vswitchd's to say).
const ADD_KEYS: [&str; 11] = [
    "vni", "local", "remote", "port", "key", "mode", "vrf", "ttl", "df", "mtu", "mac",
];

pub async fn run(command: TunnelCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        TunnelCommand::List => {
            let tunnels = reply(
                ctx.client()
                    .await?
                    .list_tunnels(pb::ListTunnelsRequest {})
                    .await,
            )?
            .tunnels;
            if ctx.json {
                output::json(&tunnels.iter().map(TunnelJson::from).collect::<Vec<_>>())
            } else {
                Ok(table(&tunnels))
            }
        }
        TunnelCommand::Show { name } => {
            let t = reply(
                ctx.client()
                    .await?
                    .get_tunnel(pb::GetTunnelRequest { name })
                    .await,
            )?;
            if ctx.json {
                output::json(&TunnelJson::from(&t))
            } else {
                Ok(table(std::slice::from_ref(&t)))
            }
        }
        TunnelCommand::Fdb(TunnelFdbCommand::Show { tunnel }) => {
            let entries = reply(
                ctx.client()
                    .await?
                    .list_tunnel_fdb(pb::ListTunnelFdbRequest { tunnel })
                    .await,
            )?
            .entries;
            if ctx.json {
                output::json(&entries.iter().map(VtepJson::from).collect::<Vec<_>>())
            } else {
                let mut t = Table::new(&[("MAC", Align::Left), ("REMOTE", Align::Left)]);
                for e in &entries {
                    t.row(vec![e.mac.clone(), e.remote.clone()]);
                }
                Ok(t.render())
            }
        }
        other => crate::change::run(Command::Tunnel(other), ctx).await,
    }
}

/// A number option: `key=N`.
fn number(key: &str, value: &str, what: &str) -> anyhow::Result<u32> {
    value
        .parse::<u32>()
        .map_err(|_| anyhow!("invalid argument \"{key}={value}\": {key} must be {what}"))
}

/// `tunnel add NAME KIND KEY=VALUE...` as a request.
pub fn add_request(
    name: String,
    kind: String,
    words: &[String],
) -> anyhow::Result<pb::AddTunnelRequest> {
    let o = parse_options(words, &ADD_KEYS)?;
    let num = |key: &str, what: &str| o.get(key).map(|v| number(key, v, what)).transpose();
    let df = match o.get("df").map(String::as_str) {
        None => None,
        Some("on") => Some(true),
        Some("off") => Some(false),
        Some(v) => bail!("invalid argument \"df={v}\": df must be on or off"),
    };
    let remotes = match o.get("remote") {
        None => vec![],
        Some(v) if v.is_empty() || v.split(',').any(str::is_empty) => {
            bail!("invalid argument \"remote={v}\": remote is IP[,IP...]")
        }
        Some(v) => v.split(',').map(str::to_string).collect(),
    };
    Ok(pb::AddTunnelRequest {
        name,
        kind,
        local: o.get("local").cloned().unwrap_or_default(),
        remotes,
        vni: num("vni", "a number from 0 to 16777215")?,
        key: num("key", "a number from 0 to 4294967295 (32 bits)")?,
        port: num("port", "a number from 1 to 65535")?,
        mode: o.get("mode").cloned().unwrap_or_default(),
        vrf: o
            .get("vrf")
            .map(|v| crate::vrf::vrf_id(v))
            .transpose()?
            .unwrap_or(0),
        ttl: num("ttl", "a number from 0 (inherit) to 255")?,
        df,
        mtu: num("mtu", "a number")?,
        mac: o.get("mac").cloned().unwrap_or_default(),
    })
}

/// `tunnel fdb add TUN MAC remote=IP` as a request.
pub fn fdb_add_request(
    tunnel: String,
    mac: String,
    words: &[String],
) -> anyhow::Result<pb::AddTunnelFdbRequest> {
    let o = parse_options(words, &["remote"])?;
    let remote = o
        .get("remote")
        .cloned()
        .ok_or_else(|| anyhow!("tunnel fdb add needs remote=IP"))?;
    Ok(pb::AddTunnelFdbRequest {
        tunnel,
        mac,
        remote,
    })
}

/// One tunnel in `--json` output (`tunnel list` elements, `tunnel show`, `tunnel add`):
/// CONTRACT's fields (`remote`: the remotes as given, comma-separated, "" if none; `vni`
/// and `key` null where the kind has none) and more.
#[derive(Debug, Serialize)]
pub(crate) struct TunnelJson<'a> {
    name: &'a str,
    kind: &'a str,
    local: &'a str,
    remote: String,
    remotes: &'a [String],
    vni: Option<u32>,
    key: Option<u32>,
    vrf: u32,
    port: Option<u32>,
    mode: Option<&'a str>,
    ttl: u32,
    df: bool,
    mtu: u32,
    mac: Option<&'a str>,
    index: u32,
    fdb_entries: u32,
}

impl<'a> From<&'a pb::Tunnel> for TunnelJson<'a> {
    fn from(t: &'a pb::Tunnel) -> Self {
        let some = |s: &'a str| Some(s).filter(|s| !s.is_empty());
        TunnelJson {
            name: &t.name,
            kind: &t.kind,
            local: &t.local,
            remote: t.remotes.join(","),
            remotes: &t.remotes,
            vni: t.vni,
            key: t.key,
            vrf: t.vrf,
            port: t.port,
            mode: some(&t.mode),
            ttl: t.ttl,
            df: t.df,
            mtu: t.mtu,
            mac: some(&t.mac),
            index: t.index,
            fdb_entries: t.fdb_entries,
        }
    }
}

/// One MAC -> VTEP entry in `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct VtepJson<'a> {
    tunnel: &'a str,
    mac: &'a str,
    remote: &'a str,
}

impl<'a> From<&'a pb::TunnelFdbEntry> for VtepJson<'a> {
    fn from(e: &'a pb::TunnelFdbEntry) -> Self {
        VtepJson {
            tunnel: &e.tunnel,
            mac: &e.mac,
            remote: &e.remote,
        }
    }
}

fn table(tunnels: &[pb::Tunnel]) -> String {
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("KIND", Align::Left),
        ("LOCAL", Align::Left),
        ("REMOTE", Align::Left),
        ("ID", Align::Left),
        ("VRF", Align::Right),
        ("MTU", Align::Right),
        ("TTL", Align::Right),
        ("DF", Align::Left),
    ]);
    for t in tunnels {
        // vni for vxlan / geneve (with the port), key (and mode) for gre.
        let id = match (t.vni, t.key, t.port) {
            (Some(v), _, Some(p)) => format!("vni {v}:{p}"),
            (Some(v), _, None) => format!("vni {v}"),
            (None, Some(k), _) => format!("key {k}"),
            _ => String::new(),
        };
        let kind = if t.mode.is_empty() {
            t.kind.clone()
        } else {
            format!("{} {}", t.kind, t.mode)
        };
        table.row(vec![
            t.name.clone(),
            kind,
            t.local.clone(),
            or_dash(&t.remotes.join(",")),
            or_dash(&id),
            t.vrf.to_string(),
            t.mtu.to_string(),
            if t.ttl == 0 {
                "inherit".to_string()
            } else {
                t.ttl.to_string()
            },
            if t.df { "on" } else { "off" }.to_string(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn add_options_become_the_request() {
        let r = add_request(
            "vx0".into(),
            "vxlan".into(),
            &words(&[
                "vni=42",
                "local=10.0.0.1",
                "remote=10.0.0.2,10.0.0.3",
                "port=8472",
                "ttl=0",
                "df=on",
                "vrf=3",
            ]),
        )
        .unwrap();
        assert_eq!(r.vni, Some(42));
        assert_eq!(r.remotes, ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(
            (r.port, r.ttl, r.df, r.vrf),
            (Some(8472), Some(0), Some(true), 3)
        );
        assert_eq!((r.key, r.mtu), (None, None));
        let gre = add_request(
            "g".into(),
            "gre".into(),
            &words(&["local=10.0.0.1", "remote=10.0.0.2", "key=7", "mode=teb"]),
        )
        .unwrap();
        assert_eq!((gre.key, gre.mode.as_str(), gre.df), (Some(7), "teb", None));
    }

    #[test]
    fn add_options_refuse_bad_words() {
        let err = |l: &[&str]| {
            add_request("t".into(), "vxlan".into(), &words(l))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&["vni=x"]),
            r#"invalid argument "vni=x": vni must be a number from 0 to 16777215"#
        );
        assert_eq!(
            err(&["key=4294967296"]),
            r#"invalid argument "key=4294967296": key must be a number from 0 to 4294967295 (32 bits)"#
        );
        assert_eq!(
            err(&["df=yes"]),
            r#"invalid argument "df=yes": df must be on or off"#
        );
        assert_eq!(
            err(&["remote=10.0.0.1,"]),
            r#"invalid argument "remote=10.0.0.1,": remote is IP[,IP...]"#
        );
        assert!(err(&["group=239.1.1.1"]).contains("unknown key \"group\""));
        let fdb = |l: &[&str]| fdb_add_request("t".into(), "02:00:00:00:00:01".into(), &words(l));
        assert_eq!(
            fdb(&[]).unwrap_err().to_string(),
            "tunnel fdb add needs remote=IP"
        );
        assert_eq!(fdb(&["remote=10.0.0.9"]).unwrap().remote, "10.0.0.9");
    }

    #[test]
    fn json_has_the_contract_fields() {
        let t = pb::Tunnel {
            name: "vx0".into(),
            kind: "vxlan".into(),
            local: "10.0.0.1".into(),
            remotes: vec!["10.0.0.2".into(), "10.0.0.3".into()],
            vni: Some(42),
            port: Some(4789),
            vrf: 0,
            ttl: 64,
            mtu: 1450,
            mac: "02:00:00:00:00:01".into(),
            ..Default::default()
        };
        let v = serde_json::to_value(TunnelJson::from(&t)).unwrap();
        for k in ["name", "kind", "local", "remote", "vni", "key", "vrf"] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
        assert_eq!(v["remote"], "10.0.0.2,10.0.0.3");
        assert_eq!(v["vni"], 42);
        assert!(v["key"].is_null());
        assert!(v["mode"].is_null());
        assert_eq!(
            table(&[t]),
            "NAME  KIND   LOCAL     REMOTE             ID           VRF   MTU  TTL  DF\n\
             vx0   vxlan  10.0.0.1  10.0.0.2,10.0.0.3  vni 42:4789    0  1450   64  off\n"
        );
    }
}
