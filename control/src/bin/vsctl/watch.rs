//! `vsctl watch [KIND...] [--count N]`: prints the switch's events as they happen, one per
//! line (with `--json`, one JSON object per line): link up/down, MAC learned / moved / aged,
//! neighbours learned / changed / forgotten, configuration changes.

use serde::Serialize;
use vswitch_proto::v1::event::Event as E;
use vswitch_proto::v1::{Event, WatchRequest};

use crate::rpc::{reply, status_error, Ctx};

pub async fn run(kinds: Vec<String>, count: Option<u64>, ctx: &Ctx) -> anyhow::Result<String> {
    use std::io::Write;
    let mut stream = reply(ctx.client().await?.watch(WatchRequest { kinds }).await)?;
    let mut seen = 0;
    while count.is_none_or(|c| seen < c) {
        let Some(event) = stream.message().await.map_err(status_error)? else {
            anyhow::bail!("vswitchd ended the stream (stopping?)");
        };
        let line = if ctx.json {
            serde_json::to_string(&EventJson::from(&event))?
        } else {
            text(&event)
        };
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break; // the reader went away
        }
        seen += 1;
    }
    Ok(String::new())
}

fn text(e: &Event) -> String {
    let body = match &e.event {
        Some(E::Link(l)) => format!("link {} {}", l.iface, if l.up { "up" } else { "down" }),
        Some(E::Fdb(f)) if f.kind == "moved" => format!(
            "fdb moved {} vlan {} bridge {} {} -> {}",
            f.mac, f.vlan, f.bridge, f.from_iface, f.iface
        ),
        Some(E::Fdb(f)) => format!(
            "fdb {} {} vlan {} bridge {} iface {}",
            f.kind, f.mac, f.vlan, f.bridge, f.iface
        ),
        Some(E::Config(c)) => format!("config {} {}", c.change, c.name),
        Some(E::Neighbor(n)) => format!("neighbor {} {} {} iface {}", n.kind, n.ip, n.mac, n.iface),
        None if e.lost > 0 => format!("lost {} events (too slow); re-read the state", e.lost),
        None => "unknown event".to_string(),
    };
    format!("{} {body}", e.seq)
}

#[derive(Serialize)]
struct EventJson<'a> {
    seq: u64,
    unix_nanos: u64,
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<LinkJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fdb: Option<FdbJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<ConfigJson<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    neighbor: Option<NeighborJson<'a>>,
    #[serde(skip_serializing_if = "is_zero")]
    lost: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Serialize)]
struct LinkJson<'a> {
    iface: &'a str,
    up: bool,
}

#[derive(Serialize)]
struct FdbJson<'a> {
    kind: &'a str,
    bridge: &'a str,
    mac: &'a str,
    vlan: u32,
    iface: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    from_iface: &'a str,
}

#[derive(Serialize)]
struct NeighborJson<'a> {
    kind: &'a str,
    iface: &'a str,
    ip: &'a str,
    mac: &'a str,
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    change: &'a str,
    name: &'a str,
}

impl<'a> From<&'a Event> for EventJson<'a> {
    fn from(e: &'a Event) -> Self {
        let mut j = EventJson {
            seq: e.seq,
            unix_nanos: e.unix_nanos,
            kind: "lost",
            link: None,
            fdb: None,
            config: None,
            neighbor: None,
            lost: e.lost,
        };
        match &e.event {
            Some(E::Link(l)) => {
                j.kind = "link";
                j.link = Some(LinkJson {
                    iface: &l.iface,
                    up: l.up,
                });
            }
            Some(E::Fdb(f)) => {
                j.kind = "fdb";
                j.fdb = Some(FdbJson {
                    kind: &f.kind,
                    bridge: &f.bridge,
                    mac: &f.mac,
                    vlan: f.vlan,
                    iface: &f.iface,
                    from_iface: &f.from_iface,
                });
            }
            Some(E::Config(c)) => {
                j.kind = "config";
                j.config = Some(ConfigJson {
                    change: &c.change,
                    name: &c.name,
                });
            }
            Some(E::Neighbor(n)) => {
                j.kind = "neighbor";
                j.neighbor = Some(NeighborJson {
                    kind: &n.kind,
                    iface: &n.iface,
                    ip: &n.ip,
                    mac: &n.mac,
                });
            }
            None => {}
        }
        j
    }
}
