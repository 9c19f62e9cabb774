//! `vsctl xconnect add|del|list`: L2 cross-connects between two interfaces.

use serde::Serialize;
use vswitch_proto::v1::{GetXconnectRequest, ListXconnectsRequest, Xconnect};

use crate::args::{Command, XconnectCommand};
use crate::output::{self, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: XconnectCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        XconnectCommand::Show { iface } => {
            let x = reply(
                ctx.client()
                    .await?
                    .get_xconnect(GetXconnectRequest { iface })
                    .await,
            )?;
            if ctx.json {
                output::json(&XconnectJson::from(&x))
            } else {
                Ok(table(std::slice::from_ref(&x)))
            }
        }
        XconnectCommand::List => {
            let request = ListXconnectsRequest {};
            let mut list = reply(ctx.client().await?.list_xconnects(request).await)?.xconnects;
            list.sort_by(|a, b| a.iface_a.cmp(&b.iface_a));
            if ctx.json {
                output::json(&list.iter().map(XconnectJson::from).collect::<Vec<_>>())
            } else {
                Ok(table(&list))
            }
        }
        // The verbs that change something: built and sent in one place.
        other => crate::change::run(Command::Xconnect(other), ctx).await,
    }
}

/// One cross-connect in `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct XconnectJson<'a> {
    iface_a: &'a str,
    iface_b: &'a str,
}

impl<'a> From<&'a Xconnect> for XconnectJson<'a> {
    fn from(x: &'a Xconnect) -> Self {
        XconnectJson {
            iface_a: &x.iface_a,
            iface_b: &x.iface_b,
        }
    }
}

fn table(list: &[Xconnect]) -> String {
    let mut table = Table::new(&[("IFACE_A", Align::Left), ("IFACE_B", Align::Left)]);
    for x in list {
        table.row(vec![x.iface_a.clone(), x.iface_b.clone()]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Xconnect {
        Xconnect {
            iface_a: "vm1".into(),
            iface_b: "uplink0".into(),
        }
    }

    #[test]
    fn json_shape() {
        let x = sample();
        let value = serde_json::to_value(XconnectJson::from(&x)).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({"iface_a": "vm1", "iface_b": "uplink0"})
        );
    }

    #[test]
    fn table_rows() {
        assert_eq!(table(&[sample()]), "IFACE_A  IFACE_B\nvm1      uplink0\n");
    }
}
