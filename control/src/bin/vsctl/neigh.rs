//! `vsctl neigh show|add|del|set|config`: static neighbours (ARP / ND entries) and the
//! settings of the neighbour table the dataplane fills itself.

use serde::Serialize;
use vswitch_proto::v1::{
    GetNeighborConfigRequest, ListNeighborsRequest, Neighbor, NeighborConfig,
    SetNeighborConfigRequest,
};

use crate::args::{Command, NeighCommand};
use crate::bridge::{number, parse_options};
use crate::output::{self, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: NeighCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        NeighCommand::Show { iface } => {
            let request = ListNeighborsRequest {
                iface: iface.unwrap_or_default(),
            };
            let neighbors = reply(ctx.client().await?.list_neighbors(request).await)?.neighbors;
            if ctx.json {
                output::json(&neighbors.iter().map(NeighborJson::from).collect::<Vec<_>>())
            } else {
                Ok(table(&neighbors))
            }
        }
        NeighCommand::Config => {
            let request = GetNeighborConfigRequest {};
            let c = reply(ctx.client().await?.get_neighbor_config(request).await)?;
            if ctx.json {
                output::json(&ConfigJson::from(&c))
            } else {
                Ok(output::key_values(&[
                    ("limit", c.limit.to_string()),
                    ("age", c.age.to_string()),
                ]))
            }
        }
        other => crate::change::run(Command::Neigh(other), ctx).await,
    }
}

/// The request of `neigh set [limit=N] [age=SECONDS]` (at least one).
pub(crate) fn set_request(words: &[String]) -> anyhow::Result<SetNeighborConfigRequest> {
    let mut options = parse_options(words, &["limit", "age"])?;
    let request = SetNeighborConfigRequest {
        limit: options
            .remove("limit")
            .map(|v| number("limit", &v))
            .transpose()?,
        age: options
            .remove("age")
            .map(|v| number("age", &v))
            .transpose()?,
    };
    if request.limit.is_none() && request.age.is_none() {
        anyhow::bail!("nothing to set: expected limit=N and/or age=SECONDS");
    }
    Ok(request)
}

/// One neighbour in `--json` output: `neigh show` elements, and what `neigh add` prints.
#[derive(Debug, Serialize)]
pub(crate) struct NeighborJson<'a> {
    iface: &'a str,
    ip: &'a str,
    mac: &'a str,
    /// permanent for a static entry.
    state: &'a str,
    #[serde(rename = "static")]
    is_static: bool,
}

impl<'a> From<&'a Neighbor> for NeighborJson<'a> {
    fn from(n: &'a Neighbor) -> Self {
        NeighborJson {
            iface: &n.iface,
            ip: &n.ip,
            mac: &n.mac,
            state: &n.state,
            is_static: n.r#static,
        }
    }
}

/// The neighbour table's settings in `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct ConfigJson {
    limit: u32,
    age: u32,
}

impl From<&NeighborConfig> for ConfigJson {
    fn from(c: &NeighborConfig) -> Self {
        ConfigJson {
            limit: c.limit,
            age: c.age,
        }
    }
}

fn table(neighbors: &[Neighbor]) -> String {
    let mut table = Table::new(&[
        ("IFACE", Align::Left),
        ("IP", Align::Left),
        ("MAC", Align::Left),
        ("STATE", Align::Left),
    ]);
    for n in neighbors {
        table.row(vec![
            n.iface.clone(),
            n.ip.clone(),
            n.mac.clone(),
            n.state.clone(),
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
    fn set_forms() {
        let r = set_request(&words(&["limit=1000"])).unwrap();
        assert_eq!((r.limit, r.age), (Some(1000), None));
        let r = set_request(&words(&["age=60", "limit=5"])).unwrap();
        assert_eq!((r.limit, r.age), (Some(5), Some(60)));
        let err = |l: &[&str]| set_request(&words(l)).unwrap_err().to_string();
        assert_eq!(
            err(&[]),
            "nothing to set: expected limit=N and/or age=SECONDS"
        );
        assert_eq!(
            err(&["size=5"]),
            r#"invalid argument "size=5": unknown key "size" (expected limit or age)"#
        );
        assert!(err(&["age=x"]).contains("age must be an integer"));
    }

    #[test]
    fn json_and_table() {
        let n = Neighbor {
            iface: "p1".into(),
            ip: "10.0.0.2".into(),
            mac: "02:00:00:00:00:02".into(),
            state: "permanent".into(),
            r#static: true,
        };
        assert_eq!(
            serde_json::to_value(NeighborJson::from(&n)).unwrap(),
            serde_json::json!({"iface": "p1", "ip": "10.0.0.2", "mac": "02:00:00:00:00:02",
                               "state": "permanent", "static": true})
        );
        assert_eq!(
            table(&[n]),
            "IFACE  IP        MAC                STATE\n\
             p1     10.0.0.2  02:00:00:00:00:02  permanent\n"
        );
    }
}
