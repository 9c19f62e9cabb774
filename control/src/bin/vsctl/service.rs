//! `vsctl service add|set|del|list|show`: services, a virtual IP and port spread over
//! backends.
//!
//! Only the syntax is checked here (`IP:PORT`, `[IPv6]:PORT`, `*WEIGHT`, numbers, known
//! keys); what the values mean (ports 1 to 65535, protocols, families, reachability,
//! duplicates) is vswitchd's to check, so gRPC users get the same.
//!
//! `--json`: `service show` (and `service add`, `service set`) print `{name, vip, port,
//! proto, nodeport, affinity, vrf, backends: [{ip, port, weight, flows}]}`
//! (nodeport null when there is none; flows: new flows given to the backend, counted since
//! the backends were last set to something else); `service list` prints an array of them.

use anyhow::{anyhow, bail, Context};
use serde::Serialize;
use vswitch_proto::v1 as pb;

use crate::args::{Command, ServiceCommand};
use crate::kv::parse_key_values;
use crate::output::{self, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: ServiceCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        ServiceCommand::List => {
            let services = reply(
                ctx.client()
                    .await?
                    .list_services(pb::ListServicesRequest {})
                    .await,
            )?
            .services;
            if ctx.json {
                output::json(&services.iter().map(ServiceJson::from).collect::<Vec<_>>())
            } else {
                Ok(list_table(&services))
            }
        }
        ServiceCommand::Show { name } => {
            let s = reply(
                ctx.client()
                    .await?
                    .get_service(pb::GetServiceRequest { name })
                    .await,
            )?;
            if ctx.json {
                output::json(&ServiceJson::from(&s))
            } else {
                Ok(show_table(&s))
            }
        }
        other => crate::change::run(Command::Service(other), ctx).await,
    }
}

/// A port number as typed (its range is vswitchd's to check).
pub fn port(what: &str, s: &str) -> anyhow::Result<u32> {
    s.parse()
        .map_err(|_| anyhow!("invalid {what} {s:?}: expected a port number"))
}

/// `IP:PORT` or `[IPv6]:PORT`: (address text, port).
pub fn endpoint(what: &str, s: &str) -> anyhow::Result<(String, u32)> {
    let bad = || anyhow!("invalid {what} {s:?}: expected IP:PORT ([ADDR]:PORT for IPv6)");
    let (ip, p) = if let Some(rest) = s.strip_prefix('[') {
        let (ip, p) = rest.split_once("]:").ok_or_else(bad)?;
        (ip, p)
    } else {
        let (ip, p) = s.rsplit_once(':').ok_or_else(bad)?;
        if ip.contains(':') {
            return Err(bad());
        }
        (ip, p)
    };
    if ip.is_empty() || p.is_empty() {
        return Err(bad());
    }
    Ok((ip.to_string(), port(what, p)?))
}

/// `IP:PORT[*WEIGHT],...` (empty: no backends).
pub fn backends(s: &str) -> anyhow::Result<Vec<pb::Backend>> {
    s.split(',')
        .filter(|b| !b.is_empty())
        .map(|b| {
            let (ep, weight) = match b.split_once('*') {
                Some((ep, w)) => (
                    ep,
                    Some(w.parse::<u32>().map_err(|_| {
                        anyhow!("invalid backend {b:?}: the weight after * is a number")
                    })?),
                ),
                None => (b, None),
            };
            let (ip, port) = endpoint("backend", ep)?;
            Ok(pb::Backend { ip, port, weight })
        })
        .collect()
}

/// The request of `service add NAME IP:PORT KEY=VALUE...`.
pub fn add_request(
    name: String,
    vip: &str,
    args: &[String],
) -> anyhow::Result<pb::AddServiceRequest> {
    let (vip, port) = endpoint("vip", vip)?;
    let mut kv = parse_key_values(args)?;
    let proto = kv
        .remove("proto")
        .ok_or_else(|| anyhow!("proto=tcp|udp is required"))?;
    let backends = backends(
        &kv.remove("backends")
            .ok_or_else(|| anyhow!("backends=IP:PORT[*WEIGHT],... is required"))?,
    )?;
    let nodeport = kv
        .remove("nodeport")
        .map(|p| self::port("nodeport", &p))
        .transpose()?;
    let affinity = kv.remove("affinity").unwrap_or_default();
    let vrf = match kv.remove("vrf") {
        Some(v) => v
            .parse()
            .with_context(|| format!("invalid vrf {v:?}: expected a number"))?,
        None => 0,
    };
    if let Some(k) = kv.keys().min() {
        bail!("unknown key {k:?} (proto, backends, nodeport, affinity, vrf)");
    }
    Ok(pb::AddServiceRequest {
        name,
        vip,
        port,
        proto,
        backends,
        nodeport,
        affinity,
        vrf,
    })
}

/// The request of `service set NAME backends=...`.
pub fn set_request(name: String, args: &[String]) -> anyhow::Result<pb::SetServiceBackendsRequest> {
    let mut kv = parse_key_values(args)?;
    let b = kv
        .remove("backends")
        .ok_or_else(|| anyhow!("backends=IP:PORT[*WEIGHT],... is required"))?;
    if let Some(k) = kv.keys().min() {
        bail!("unknown key {k:?}: service set takes backends=");
    }
    Ok(pb::SetServiceBackendsRequest {
        name,
        backends: backends(&b)?,
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct BackendJson<'a> {
    ip: &'a str,
    port: u32,
    weight: u32,
    flows: u64,
}

/// A service in `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct ServiceJson<'a> {
    name: &'a str,
    vip: &'a str,
    port: u32,
    proto: &'a str,
    nodeport: Option<u32>,
    affinity: &'a str,
    vrf: u32,
    backends: Vec<BackendJson<'a>>,
}

impl<'a> From<&'a pb::Service> for ServiceJson<'a> {
    fn from(s: &'a pb::Service) -> Self {
        ServiceJson {
            name: &s.name,
            vip: &s.vip,
            port: s.port,
            proto: &s.proto,
            nodeport: Some(s.nodeport).filter(|&n| n != 0),
            affinity: &s.affinity,
            vrf: s.vrf,
            backends: s
                .backends
                .iter()
                .map(|b| BackendJson {
                    ip: &b.ip,
                    port: b.port,
                    weight: b.weight,
                    flows: b.flows,
                })
                .collect(),
        }
    }
}

/// `ip:port`, `[ip]:port` for IPv6.
fn ep(ip: &str, port: u32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

fn nodeport_text(s: &pb::Service) -> String {
    if s.nodeport == 0 {
        "-".to_string()
    } else {
        s.nodeport.to_string()
    }
}

fn list_table(services: &[pb::Service]) -> String {
    let mut t = Table::new(&[
        ("NAME", Align::Left),
        ("VIP", Align::Left),
        ("PROTO", Align::Left),
        ("NODEPORT", Align::Right),
        ("VRF", Align::Right),
        ("BACKENDS", Align::Right),
        ("AFFINITY", Align::Left),
    ]);
    for s in services {
        t.row(vec![
            s.name.clone(),
            ep(&s.vip, s.port),
            s.proto.clone(),
            nodeport_text(s),
            s.vrf.to_string(),
            s.backends.len().to_string(),
            s.affinity.clone(),
        ]);
    }
    t.render()
}

fn show_table(s: &pb::Service) -> String {
    let mut t = Table::new(&[
        ("BACKEND", Align::Left),
        ("WEIGHT", Align::Right),
        ("FLOWS", Align::Right),
    ]);
    for b in &s.backends {
        t.row(vec![
            ep(&b.ip, b.port),
            b.weight.to_string(),
            b.flows.to_string(),
        ]);
    }
    format!(
        "service {}: {} {}, nodeport {}, affinity {}, vrf {}\n{}",
        s.name,
        ep(&s.vip, s.port),
        s.proto,
        nodeport_text(s),
        s.affinity,
        s.vrf,
        t.render()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::words;

    #[test]
    fn endpoints_and_backends() {
        assert_eq!(
            endpoint("vip", "10.0.0.1:80").unwrap(),
            ("10.0.0.1".into(), 80)
        );
        assert_eq!(
            endpoint("vip", "[2001:db8::1]:443").unwrap(),
            ("2001:db8::1".into(), 443)
        );
        for bad in [
            "10.0.0.1",
            "2001:db8::1:80",
            "[2001:db8::1]",
            ":80",
            "10.0.0.1:x",
        ] {
            assert!(endpoint("vip", bad).is_err(), "{bad}");
        }
        // Out-of-range ports are vswitchd's to refuse (it names the field).
        assert_eq!(endpoint("vip", "10.0.0.1:0").unwrap().1, 0);
        let b = backends("10.1.0.5:8080*2,[2001:db8::5]:80*0,10.1.0.6:8080").unwrap();
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].weight, Some(2));
        assert_eq!(b[1].ip, "2001:db8::5");
        assert_eq!(b[1].weight, Some(0));
        assert_eq!(b[2].weight, None);
        assert!(backends("").unwrap().is_empty());
        assert!(backends("10.1.0.5:80*x").is_err());
    }

    #[test]
    fn add_and_set_requests() {
        let r = add_request(
            "web".into(),
            "10.96.0.10:80",
            &words(&[
                "proto=udp",
                "backends=10.1.0.5:53",
                "nodeport=30053",
                "affinity=client-ip",
                "vrf=3",
            ]),
        )
        .unwrap();
        assert_eq!((r.port, r.proto.as_str(), r.vrf), (80, "udp", 3));
        assert_eq!(r.nodeport, Some(30053));
        assert_eq!(r.affinity, "client-ip");
        assert!(add_request("w".into(), "10.0.0.1:80", &words(&["backends="])).is_err());
        assert!(add_request("w".into(), "10.0.0.1:80", &words(&["proto=tcp"])).is_err());
        assert!(add_request(
            "w".into(),
            "10.0.0.1:80",
            &words(&["proto=tcp", "backends=", "colour=red"])
        )
        .is_err());
        let s = set_request("web".into(), &words(&["backends=10.1.0.7:80*3"])).unwrap();
        assert_eq!(s.backends[0].weight, Some(3));
        assert!(set_request("web".into(), &words(&["nodeport=1"])).is_err());
    }

    fn service() -> pb::Service {
        pb::Service {
            name: "web".into(),
            vip: "10.96.0.10".into(),
            port: 80,
            proto: "tcp".into(),
            nodeport: 0,
            affinity: "none".into(),
            vrf: 0,
            backends: vec![pb::ServiceBackend {
                ip: "10.1.0.5".into(),
                port: 8080,
                weight: 1,
                flows: 3,
            }],
        }
    }

    #[test]
    fn json_has_the_contract_fields() {
        let s = service();
        let v = serde_json::to_value(ServiceJson::from(&s)).unwrap();
        for k in ["name", "vip", "port", "proto", "nodeport", "backends"] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
        assert!(v["nodeport"].is_null());
        assert_eq!(v["backends"][0]["ip"], "10.1.0.5");
        assert_eq!(v["backends"][0]["port"], 8080);
        assert_eq!(v["backends"][0]["weight"], 1);
        assert_eq!(v["backends"][0]["flows"], 3);
    }

    #[test]
    fn tables() {
        let s = service();
        assert_eq!(
            list_table(std::slice::from_ref(&s)),
            "NAME  VIP            PROTO  NODEPORT  VRF  BACKENDS  AFFINITY\n\
             web   10.96.0.10:80  tcp           -    0         1  none\n"
        );
        assert_eq!(
            show_table(&s),
            "service web: 10.96.0.10:80 tcp, nodeport -, affinity none, vrf 0\n\
             BACKEND        WEIGHT  FLOWS\n\
             10.1.0.5:8080       1      3\n"
        );
    }
}
