//! `vsctl vrf add|del|list`: VRFs, and the `vrf=ID` option other nouns take.
//!
//! Only "is it a number" is checked here; the range (0 to 4095) and whether the VRF exists
//! are vswitchd's to check.

use serde::Serialize;
use vswitch_proto::v1::{ListVrfsRequest, Vrf};

use crate::args::{Command, VrfCommand};
use crate::bridge::parse_options;
use crate::output::{self, or_dash, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: VrfCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        VrfCommand::List => {
            let vrfs = reply(ctx.client().await?.list_vrfs(ListVrfsRequest {}).await)?.vrfs;
            if ctx.json {
                output::json(&vrfs.iter().map(VrfJson::from).collect::<Vec<_>>())
            } else {
                Ok(table(&vrfs))
            }
        }
        other => crate::change::run(Command::Vrf(other), ctx).await,
    }
}

/// The value of a `vrf=` option.
pub fn vrf_id(value: &str) -> anyhow::Result<u32> {
    value.parse::<u32>().map_err(|_| {
        anyhow::anyhow!("invalid argument \"vrf={value}\": vrf must be a number from 0 to 4095")
    })
}

/// The ID of `vrf add|del ID`.
pub fn id_arg(value: &str) -> anyhow::Result<u32> {
    value.parse::<u32>().map_err(|_| {
        anyhow::anyhow!("invalid VRF id {value:?}: a VRF id is a number from 0 to 4095")
    })
}

/// `[vrf=ID]`: the only option of a verb.
pub fn vrf_option(words: &[String]) -> anyhow::Result<Option<u32>> {
    parse_options(words, &["vrf"])?
        .get("vrf")
        .map(|v| vrf_id(v))
        .transpose()
}

/// One VRF in `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct VrfJson<'a> {
    id: u32,
    interfaces: &'a [String],
    routes_v4: u32,
    routes_v6: u32,
}

impl<'a> From<&'a Vrf> for VrfJson<'a> {
    fn from(v: &'a Vrf) -> Self {
        VrfJson {
            id: v.id,
            interfaces: &v.interfaces,
            routes_v4: v.routes_v4,
            routes_v6: v.routes_v6,
        }
    }
}

fn table(vrfs: &[Vrf]) -> String {
    let mut table = Table::new(&[
        ("VRF", Align::Right),
        ("ROUTES_V4", Align::Right),
        ("ROUTES_V6", Align::Right),
        ("INTERFACES", Align::Left),
    ]);
    for v in vrfs {
        table.row(vec![
            v.id.to_string(),
            v.routes_v4.to_string(),
            v.routes_v6.to_string(),
            or_dash(&v.interfaces.join(",")),
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
    fn vrf_options() {
        assert_eq!(vrf_option(&[]).unwrap(), None);
        assert_eq!(vrf_option(&words(&["vrf=7"])).unwrap(), Some(7));
        let err = |l: &[&str]| vrf_option(&words(l)).unwrap_err().to_string();
        assert_eq!(
            err(&["vrf=x"]),
            r#"invalid argument "vrf=x": vrf must be a number from 0 to 4095"#
        );
        assert_eq!(
            err(&["table=5"]),
            r#"invalid argument "table=5": unknown key "table" (expected vrf)"#
        );
        assert_eq!(
            id_arg("blue").unwrap_err().to_string(),
            r#"invalid VRF id "blue": a VRF id is a number from 0 to 4095"#
        );
    }

    #[test]
    fn json_and_table() {
        let v = Vrf {
            id: 5,
            interfaces: vec!["a".into(), "bvi:br0".into()],
            routes_v4: 3,
            routes_v6: 1,
        };
        assert_eq!(
            serde_json::to_value(VrfJson::from(&v)).unwrap(),
            serde_json::json!({"id": 5, "interfaces": ["a", "bvi:br0"], "routes_v4": 3, "routes_v6": 1})
        );
        let empty = Vrf {
            id: 0,
            ..Vrf::default()
        };
        assert_eq!(
            table(&[empty, v]),
            "VRF  ROUTES_V4  ROUTES_V6  INTERFACES\n  \
               0          0          0  -\n  \
               5          3          1  a,bvi:br0\n"
        );
    }
}
