//! `vsctl route add|del|show`: routes of VRFs. `route show` lists static routes and the
//! connected and local routes of addresses, each with its origin and its next-hops
//! resolved to interfaces.
//!
//! ```text
//! route add 10.2.0.0/16 via 10.0.0.254                      gateway in a connected subnet
//! route add 0.0.0.0/0 via 10.0.0.1,10.0.0.2 vrf=5           ECMP, in VRF 5
//! route add 10.244.1.0/24 via 10.244.1.0 dev flannel onlink gateway on the link of dev
//! route add 10.1.1.5/32 dev pod5                            straight out of pod5
//! ```
//! Adding a route for a prefix that has one replaces it (as `ip route replace`).

use anyhow::{anyhow, bail};
use serde::Serialize;
use vswitch_proto::v1::{AddRouteRequest, GetRoutesRequest, ListRoutesRequest, NextHop, Route};

use crate::args::{Command, RouteCommand};
use crate::output::{self, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: RouteCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        RouteCommand::Show { args } => {
            let request = ListRoutesRequest {
                vrf: crate::vrf::vrf_option(&args)?,
            };
            let routes = reply(ctx.client().await?.list_routes(request).await)?.routes;
            if ctx.json {
                output::json(&routes.iter().map(RouteJson::from).collect::<Vec<_>>())
            } else {
                Ok(table(&routes))
            }
        }
        RouteCommand::Get { addresses, args } => {
            if addresses.split(',').any(str::is_empty) {
                bail!("invalid argument {addresses:?}: an empty address in the list");
            }
            let request = GetRoutesRequest {
                addresses: addresses.split(',').map(str::to_owned).collect(),
                vrf: crate::vrf::vrf_option(&args)?.unwrap_or(0),
            };
            let asked = request.addresses.clone();
            let routes = reply(ctx.client().await?.get_routes(request).await)?.routes;
            if ctx.json {
                let mut items: Vec<RouteJson> = routes.iter().map(RouteJson::from).collect();
                match items.len() {
                    // One address: one object, as CONTRACT.md's `route get` form.
                    1 => output::json(&items.remove(0)),
                    _ => output::json(&items),
                }
            } else {
                let mut table = Table::new(&[
                    ("ADDRESS", Align::Left),
                    ("VRF", Align::Right),
                    ("PREFIX", Align::Left),
                    ("ORIGIN", Align::Left),
                    ("NEXTHOPS", Align::Left),
                ]);
                for (a, r) in asked.iter().zip(&routes) {
                    table.row(vec![
                        a.clone(),
                        r.vrf.to_string(),
                        r.prefix.clone(),
                        r.origin.clone(),
                        nexthops_text(r),
                    ]);
                }
                Ok(table.render())
            }
        }
        other => crate::change::run(Command::Route(other), ctx).await,
    }
}

/// The request of `route add PREFIX via NH[,NH...] [dev IFACE] [onlink] [vrf=ID]` or
/// `route add PREFIX dev IFACE [vrf=ID]`: `dev` applies to every gateway.
pub(crate) fn add_request(prefix: String, words: &[String]) -> anyhow::Result<AddRouteRequest> {
    let mut via: Option<Vec<String>> = None;
    let mut dev: Option<String> = None;
    let mut onlink = false;
    let mut vrf: Option<u32> = None;
    let mut it = words.iter();
    while let Some(word) = it.next() {
        match word.as_str() {
            "via" => {
                if via.is_some() {
                    bail!("invalid argument \"via\": given twice (ECMP next-hops: via NH,NH,...)");
                }
                let list = it
                    .next()
                    .ok_or_else(|| anyhow!("via needs a next-hop: via IP[,IP...]"))?;
                if list.split(',').any(str::is_empty) {
                    bail!("invalid argument \"via {list}\": empty next-hop in the list");
                }
                via = Some(list.split(',').map(str::to_owned).collect());
            }
            "dev" => {
                if dev.is_some() {
                    bail!("invalid argument \"dev\": given twice");
                }
                let name = it
                    .next()
                    .ok_or_else(|| anyhow!("dev needs an interface: dev IFACE"))?;
                dev = Some(name.clone());
            }
            "onlink" => {
                if onlink {
                    bail!("invalid argument \"onlink\": given twice");
                }
                onlink = true;
            }
            w if w.starts_with("vrf=") => {
                if vrf.is_some() {
                    bail!("invalid argument {word:?}: vrf given twice");
                }
                vrf = Some(crate::vrf::vrf_id(&w["vrf=".len()..])?);
            }
            _ => bail!(
                "invalid argument {word:?}: expected via NH[,NH...], dev IFACE, onlink or vrf=ID"
            ),
        }
    }
    let iface = dev.unwrap_or_default();
    let nexthops = match via {
        Some(list) => list
            .into_iter()
            .map(|via| NextHop {
                via,
                iface: iface.clone(),
            })
            .collect(),
        None if !iface.is_empty() => vec![NextHop {
            via: String::new(),
            iface,
        }],
        None => bail!("route add {prefix}: give via NH[,NH...] and/or dev IFACE"),
    };
    Ok(AddRouteRequest {
        prefix,
        vrf: vrf.unwrap_or(0),
        nexthops,
        onlink,
    })
}

/// One route in `--json` output: `route show` elements, and what `route add` prints.
#[derive(Debug, Serialize)]
pub(crate) struct RouteJson<'a> {
    prefix: &'a str,
    vrf: u32,
    nexthops: Vec<NextHopJson<'a>>,
    onlink: bool,
    /// static, connected or local.
    origin: &'a str,
}

#[derive(Debug, Serialize)]
struct NextHopJson<'a> {
    /// The gateway; null for a destination on the interface's link.
    via: Option<&'a str>,
    iface: &'a str,
}

impl<'a> From<&'a Route> for RouteJson<'a> {
    fn from(r: &'a Route) -> Self {
        RouteJson {
            prefix: &r.prefix,
            vrf: r.vrf,
            nexthops: r
                .nexthops
                .iter()
                .map(|n| NextHopJson {
                    via: Some(n.via.as_str()).filter(|v| !v.is_empty()),
                    iface: &n.iface,
                })
                .collect(),
            onlink: r.onlink,
            origin: &r.origin,
        }
    }
}

/// `via 10.0.0.1 dev a, via 10.0.0.2 dev b` (or `dev a`).
fn nexthops_text(r: &Route) -> String {
    r.nexthops
        .iter()
        .map(|n| match n.via.as_str() {
            "" if n.iface.is_empty() => "local".to_string(),
            "" => format!("dev {}", n.iface),
            via => format!("via {via} dev {}", n.iface),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn table(routes: &[Route]) -> String {
    let mut table = Table::new(&[
        ("VRF", Align::Right),
        ("PREFIX", Align::Left),
        ("ORIGIN", Align::Left),
        ("NEXTHOPS", Align::Left),
    ]);
    for r in routes {
        let mut hops = nexthops_text(r);
        if r.onlink {
            hops.push_str(" onlink");
        }
        table.row(vec![
            r.vrf.to_string(),
            r.prefix.clone(),
            r.origin.clone(),
            hops,
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(line: &str) -> anyhow::Result<AddRouteRequest> {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        add_request("10.2.0.0/16".into(), &words)
    }

    fn hop(via: &str, iface: &str) -> NextHop {
        NextHop {
            via: via.into(),
            iface: iface.into(),
        }
    }

    #[test]
    fn add_forms() {
        let r = add("via 10.0.0.1").unwrap();
        assert_eq!((r.vrf, r.onlink), (0, false));
        assert_eq!(r.nexthops, vec![hop("10.0.0.1", "")]);
        let r = add("via 10.0.0.1,10.0.0.2 dev bvi:br0 onlink vrf=5").unwrap();
        assert_eq!((r.vrf, r.onlink), (5, true));
        assert_eq!(
            r.nexthops,
            vec![hop("10.0.0.1", "bvi:br0"), hop("10.0.0.2", "bvi:br0")]
        );
        let r = add("dev pod5 vrf=0").unwrap();
        assert_eq!(r.nexthops, vec![hop("", "pod5")]);
    }

    #[test]
    fn add_refusals_are_one_line() {
        for (line, text) in [
            (
                "",
                "route add 10.2.0.0/16: give via NH[,NH...] and/or dev IFACE",
            ),
            ("onlink", "give via NH[,NH...] and/or dev IFACE"),
            ("via", "via needs a next-hop: via IP[,IP...]"),
            ("dev", "dev needs an interface: dev IFACE"),
            ("via 10.0.0.1,,10.0.0.2", "empty next-hop in the list"),
            (
                "via 10.0.0.1 via 10.0.0.2",
                "given twice (ECMP next-hops: via NH,NH,...)",
            ),
            ("dev a dev b", "\"dev\": given twice"),
            ("via 10.0.0.1 onlink onlink", "\"onlink\": given twice"),
            ("via 10.0.0.1 vrf=x", "vrf must be a number from 0 to 4095"),
            ("via 10.0.0.1 vrf=1 vrf=2", "vrf given twice"),
            (
                "gw 10.0.0.1",
                "expected via NH[,NH...], dev IFACE, onlink or vrf=ID",
            ),
        ] {
            let e = add(line).unwrap_err().to_string();
            assert!(e.contains(text), "{line:?}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    fn route(origin: &str, hops: Vec<NextHop>, onlink: bool) -> Route {
        Route {
            prefix: "10.2.0.0/16".into(),
            vrf: 0,
            nexthops: hops,
            onlink,
            origin: origin.into(),
        }
    }

    #[test]
    fn json_shape() {
        let r = route(
            "static",
            vec![hop("10.0.0.1", "a"), hop("10.0.0.2", "b")],
            false,
        );
        assert_eq!(
            serde_json::to_value(RouteJson::from(&r)).unwrap(),
            serde_json::json!({
                "prefix": "10.2.0.0/16", "vrf": 0, "onlink": false, "origin": "static",
                "nexthops": [{"via": "10.0.0.1", "iface": "a"}, {"via": "10.0.0.2", "iface": "b"}],
            })
        );
        let r = route("connected", vec![hop("", "a")], false);
        assert_eq!(
            serde_json::to_value(RouteJson::from(&r)).unwrap()["nexthops"],
            serde_json::json!([{"via": null, "iface": "a"}])
        );
    }

    #[test]
    fn table_rows() {
        assert_eq!(
            table(&[
                route("connected", vec![hop("", "a")], false),
                route(
                    "static",
                    vec![hop("10.0.0.1", "a"), hop("10.0.0.2", "b")],
                    true
                ),
            ]),
            "VRF  PREFIX       ORIGIN     NEXTHOPS\n  \
               0  10.2.0.0/16  connected  dev a\n  \
               0  10.2.0.0/16  static     via 10.0.0.1 dev a, via 10.0.0.2 dev b onlink\n"
        );
    }
}
