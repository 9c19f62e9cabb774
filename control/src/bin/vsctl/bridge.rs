//! `vsctl bridge add|del|list|show|attach|detach`: bridges (L2 domains with MAC learning and
//! VLANs) and their members; also the `KEY=VALUE` option parsing `fdb` shares.
//!
//! Options are checked here for syntax (known key, given once, on/off, a number) so a typo is
//! one `vsctl:` line; ranges (VLAN 1-4094, age limits, ...) are vswitchd's to check.

use std::collections::HashMap;

use anyhow::bail;
use serde::Serialize;
use vswitch_proto::v1::{
    AddBridgeRequest, AttachBridgeRequest, Bridge, BridgeMember, GetBridgeRequest,
    ListBridgesRequest,
};

use crate::args::{BridgeCommand, Command};
use crate::kv::parse_key_values;
use crate::output::{self, or_dash, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: BridgeCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        BridgeCommand::List => {
            let request = ListBridgesRequest {};
            let mut bridges = reply(ctx.client().await?.list_bridges(request).await)?.bridges;
            bridges.sort_by(|a, b| a.name.cmp(&b.name));
            if ctx.json {
                output::json(&bridges.iter().map(BridgeJson::from).collect::<Vec<_>>())
            } else {
                Ok(list_table(&bridges))
            }
        }
        BridgeCommand::Show { name } => {
            let request = GetBridgeRequest { name };
            let bridge = reply(ctx.client().await?.get_bridge(request).await)?;
            if ctx.json {
                output::json(&BridgeJson::from(&bridge))
            } else {
                Ok(show_text(&bridge))
            }
        }
        // The verbs that change something: built and sent in one place.
        other => crate::change::run(Command::Bridge(other), ctx).await,
    }
}

/// `bridge add BR [learn=on|off] [age=SECONDS] [learn-limit=N] [flood=on|off] [vrf=ID]`
/// (vrf: of its routed interface bvi:BR): keys not given stay unset, for the server's
/// defaults.
pub(crate) fn add_request(name: String, words: &[String]) -> anyhow::Result<AddBridgeRequest> {
    let mut options = parse_options(words, &["learn", "age", "learn-limit", "flood", "vrf"])?;
    Ok(AddBridgeRequest {
        name,
        learn: options
            .remove("learn")
            .map(|v| on_off("learn", &v))
            .transpose()?,
        age: options
            .remove("age")
            .map(|v| number("age", &v))
            .transpose()?,
        learn_limit: options
            .remove("learn-limit")
            .map(|v| number("learn-limit", &v))
            .transpose()?,
        flood: options
            .remove("flood")
            .map(|v| on_off("flood", &v))
            .transpose()?,
        vrf: options
            .remove("vrf")
            .map(|v| crate::vrf::vrf_id(&v))
            .transpose()?,
    })
}

/// `bridge attach BR IFACE [vlan=ID | trunk=ID,ID,...]`. `vlan=0` is sent as given, for the
/// server to reject with its own message.
pub(crate) fn attach_request(
    bridge: String,
    iface: String,
    words: &[String],
) -> anyhow::Result<AttachBridgeRequest> {
    let mut options = parse_options(words, &["vlan", "trunk"])?;
    let vlan = options.remove("vlan");
    let trunk = options.remove("trunk");
    if vlan.is_some() && trunk.is_some() {
        bail!(
            "vlan= and trunk= exclude each other: a member is either an access member of one \
             VLAN or a trunk"
        );
    }
    Ok(AttachBridgeRequest {
        bridge,
        iface,
        vlan: vlan.map(|v| vlan_id(&v)).transpose()?,
        trunk: trunk
            .map(|v| trunk_vlans(&v))
            .transpose()?
            .unwrap_or_default(),
    })
}

/// `KEY=VALUE` words of a verb that takes only `keys`, each at most once.
pub fn parse_options(words: &[String], keys: &[&str]) -> anyhow::Result<HashMap<String, String>> {
    let map = parse_key_values(words)?;
    // In word order, so that the first unknown key is the one reported.
    for word in words {
        let key = word.split_once('=').map_or(word.as_str(), |(k, _)| k);
        if !keys.contains(&key) {
            bail!(
                "invalid argument {word:?}: unknown key {key:?} (expected {})",
                one_of(keys)
            );
        }
    }
    Ok(map)
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(keys: &[&str]) -> String {
    match keys {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

fn on_off(key: &str, value: &str) -> anyhow::Result<bool> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => bail!("invalid argument \"{key}={value}\": {key} must be on or off"),
    }
}

/// A u32 option value; its range is the server's to check.
pub fn number(key: &str, value: &str) -> anyhow::Result<u32> {
    value.parse::<u32>().map_err(|_| {
        anyhow::anyhow!(
            "invalid argument \"{key}={value}\": {key} must be an integer from 0 to {}",
            u32::MAX
        )
    })
}

/// A `vlan=` value. Only "is it a number" is checked here; the range (and what 0 means: an
/// untagged entry for `fdb add`, refused by `bridge attach`) is the server's to check, but
/// the message names the range a VLAN ID has, not u32's.
pub fn vlan_id(value: &str) -> anyhow::Result<u32> {
    value.parse::<u32>().map_err(|_| {
        anyhow::anyhow!("invalid argument \"vlan={value}\": vlan must be a number from 1 to 4094")
    })
}

/// `ID,ID,...`: at least one, each a number.
fn trunk_vlans(value: &str) -> anyhow::Result<Vec<u32>> {
    if value.is_empty() {
        bail!("invalid argument \"trunk={value}\": empty VLAN list");
    }
    value
        .split(',')
        .map(|id| {
            if id.is_empty() {
                bail!("invalid argument \"trunk={value}\": empty VLAN ID in the list");
            }
            id.parse::<u32>().map_err(|_| {
                anyhow::anyhow!("invalid argument \"trunk={value}\": VLAN {id:?} is not a number")
            })
        })
        .collect()
}

/// One bridge in `--json` output: `bridge list` elements, `bridge show`, and what `add`,
/// `attach` and `detach` print.
#[derive(Debug, Serialize)]
pub(crate) struct BridgeJson<'a> {
    name: &'a str,
    learn: bool,
    age: u32,
    learn_limit: u32,
    flood: bool,
    learned: u32,
    members: Vec<MemberJson<'a>>,
    /// The VRF of its routed interface bvi:NAME.
    vrf: u32,
}

#[derive(Debug, Serialize)]
struct MemberJson<'a> {
    iface: &'a str,
    /// The access VLAN; null for an untagged or trunk member.
    vlan: Option<u32>,
    /// The VLANs of a trunk member; empty otherwise.
    trunk: &'a [u32],
}

impl<'a> From<&'a Bridge> for BridgeJson<'a> {
    fn from(b: &'a Bridge) -> Self {
        BridgeJson {
            name: &b.name,
            learn: b.learn,
            age: b.age,
            learn_limit: b.learn_limit,
            flood: b.flood,
            learned: b.learned,
            members: sorted_members(b)
                .into_iter()
                .map(|m| MemberJson {
                    iface: &m.iface,
                    vlan: Some(m.vlan).filter(|&v| v != 0),
                    trunk: &m.trunk,
                })
                .collect(),
            vrf: b.vrf,
        }
    }
}

fn sorted_members(b: &Bridge) -> Vec<&BridgeMember> {
    let mut members: Vec<&BridgeMember> = b.members.iter().collect();
    members.sort_by(|x, y| x.iface.cmp(&y.iface));
    members
}

fn on_off_text(on: bool) -> String {
    if on { "on" } else { "off" }.to_owned()
}

fn list_table(bridges: &[Bridge]) -> String {
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("LEARN", Align::Left),
        ("AGE", Align::Right),
        ("LEARN_LIMIT", Align::Right),
        ("FLOOD", Align::Left),
        ("LEARNED", Align::Right),
        ("MEMBERS", Align::Left),
    ]);
    for b in bridges {
        let members: Vec<&str> = sorted_members(b).iter().map(|m| m.iface.as_str()).collect();
        table.row(vec![
            b.name.clone(),
            on_off_text(b.learn),
            b.age.to_string(),
            b.learn_limit.to_string(),
            on_off_text(b.flood),
            b.learned.to_string(),
            or_dash(&members.join(",")),
        ]);
    }
    table.render()
}

fn show_text(b: &Bridge) -> String {
    let mut text = output::key_values(&[
        ("name", b.name.clone()),
        ("learn", on_off_text(b.learn)),
        ("age", b.age.to_string()),
        ("learn_limit", b.learn_limit.to_string()),
        ("flood", on_off_text(b.flood)),
        ("learned", b.learned.to_string()),
        ("members", b.members.len().to_string()),
    ]);
    if !b.members.is_empty() {
        let mut table = Table::new(&[
            ("IFACE", Align::Left),
            ("VLAN", Align::Right),
            ("TRUNK", Align::Left),
        ]);
        for m in sorted_members(b) {
            let trunk: Vec<String> = m.trunk.iter().map(u32::to_string).collect();
            table.row(vec![
                m.iface.clone(),
                if m.vlan == 0 {
                    "-".to_owned()
                } else {
                    m.vlan.to_string()
                },
                or_dash(&trunk.join(",")),
            ]);
        }
        text.push('\n');
        text.push_str(&table.render());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn add(list: &[&str]) -> anyhow::Result<AddBridgeRequest> {
        add_request("br0".into(), &words(list))
    }

    fn attach(list: &[&str]) -> anyhow::Result<AttachBridgeRequest> {
        attach_request("br0".into(), "p0".into(), &words(list))
    }

    #[test]
    fn add_without_options_leaves_everything_unset() {
        assert_eq!(
            add(&[]).expect("valid"),
            AddBridgeRequest {
                name: "br0".into(),
                learn: None,
                age: None,
                learn_limit: None,
                flood: None,
                vrf: None,
            }
        );
    }

    #[test]
    fn add_with_every_option() {
        assert_eq!(
            add(&[
                "learn=off",
                "age=60",
                "learn-limit=100",
                "flood=on",
                "vrf=7"
            ])
            .expect("valid"),
            AddBridgeRequest {
                name: "br0".into(),
                learn: Some(false),
                age: Some(60),
                learn_limit: Some(100),
                flood: Some(true),
                vrf: Some(7),
            }
        );
        // Zero is the server's to judge.
        let request = add(&["age=0", "flood=off"]).expect("valid");
        assert_eq!(request.age, Some(0));
        assert_eq!(request.flood, Some(false));
        assert_eq!(request.learn, None);
    }

    #[test]
    fn add_rejects_bad_options() {
        let err = |list: &[&str]| add(list).unwrap_err().to_string();
        assert_eq!(
            err(&["learn=yes"]),
            r#"invalid argument "learn=yes": learn must be on or off"#
        );
        assert_eq!(
            err(&["flood="]),
            r#"invalid argument "flood=": flood must be on or off"#
        );
        assert_eq!(
            err(&["age=-1"]),
            r#"invalid argument "age=-1": age must be an integer from 0 to 4294967295"#
        );
        assert_eq!(
            err(&["learn-limit=4294967296"]),
            r#"invalid argument "learn-limit=4294967296": learn-limit must be an integer from 0 to 4294967295"#
        );
        assert_eq!(
            err(&["age=5m"]),
            r#"invalid argument "age=5m": age must be an integer from 0 to 4294967295"#
        );
        assert_eq!(
            err(&["age=60", "color=red", "size=1"]),
            r#"invalid argument "color=red": unknown key "color" (expected learn, age, learn-limit, flood or vrf)"#
        );
        assert_eq!(
            err(&["learn_limit=5"]),
            r#"invalid argument "learn_limit=5": unknown key "learn_limit" (expected learn, age, learn-limit, flood or vrf)"#
        );
        assert_eq!(
            err(&["age=60", "age=90"]),
            r#"invalid argument "age=90": key "age" given twice"#
        );
        assert_eq!(
            err(&["learn"]),
            r#"invalid argument "learn": expected KEY=VALUE"#
        );
    }

    #[test]
    fn attach_untagged_access_and_trunk() {
        assert_eq!(
            attach(&[]).expect("valid"),
            AttachBridgeRequest {
                bridge: "br0".into(),
                iface: "p0".into(),
                vlan: None,
                trunk: vec![],
            }
        );
        let request = attach(&["vlan=10"]).expect("valid");
        assert_eq!(request.vlan, Some(10));
        assert!(request.trunk.is_empty());
        let request = attach(&["trunk=10,20,4094"]).expect("valid");
        assert_eq!(request.vlan, None);
        assert_eq!(request.trunk, [10, 20, 4094]);
        // The server rejects VLAN 0 with its own message.
        assert_eq!(attach(&["vlan=0"]).expect("valid").vlan, Some(0));
    }

    #[test]
    fn attach_rejects_bad_options() {
        let err = |list: &[&str]| attach(list).unwrap_err().to_string();
        assert_eq!(
            err(&["vlan=10", "trunk=20"]),
            "vlan= and trunk= exclude each other: a member is either an access member of one \
             VLAN or a trunk"
        );
        assert_eq!(
            err(&["vid=10"]),
            r#"invalid argument "vid=10": unknown key "vid" (expected vlan or trunk)"#
        );
        assert_eq!(
            err(&["vlan=ten"]),
            r#"invalid argument "vlan=ten": vlan must be a number from 1 to 4094"#
        );
        assert_eq!(
            err(&["trunk=10,x"]),
            r#"invalid argument "trunk=10,x": VLAN "x" is not a number"#
        );
        assert_eq!(
            err(&["trunk="]),
            r#"invalid argument "trunk=": empty VLAN list"#
        );
        assert_eq!(
            err(&["trunk=10,,20"]),
            r#"invalid argument "trunk=10,,20": empty VLAN ID in the list"#
        );
        assert_eq!(
            err(&["trunk=10,"]),
            r#"invalid argument "trunk=10,": empty VLAN ID in the list"#
        );
        assert_eq!(
            err(&["vlan=10", "vlan=20"]),
            r#"invalid argument "vlan=20": key "vlan" given twice"#
        );
    }

    #[test]
    fn one_of_lists_keys() {
        assert_eq!(one_of(&["vlan"]), "vlan");
        assert_eq!(one_of(&["vlan", "trunk"]), "vlan or trunk");
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }

    fn member(iface: &str, vlan: u32, trunk: &[u32]) -> BridgeMember {
        BridgeMember {
            iface: iface.into(),
            vlan,
            trunk: trunk.to_vec(),
        }
    }

    fn sample() -> Bridge {
        Bridge {
            name: "br0".into(),
            learn: true,
            age: 300,
            learn_limit: 65536,
            flood: false,
            members: vec![
                member("vm2", 10, &[]),
                member("uplink", 0, &[10, 20]),
                member("vm1", 0, &[]),
            ],
            learned: 3,
            vrf: 0,
        }
    }

    #[test]
    fn bridge_json_shape() {
        let bridge = sample();
        let value = serde_json::to_value(BridgeJson::from(&bridge)).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({
                "name": "br0",
                "learn": true,
                "age": 300,
                "learn_limit": 65536,
                "flood": false,
                "learned": 3,
                "members": [
                    {"iface": "uplink", "vlan": null, "trunk": [10, 20]},
                    {"iface": "vm1", "vlan": null, "trunk": []},
                    {"iface": "vm2", "vlan": 10, "trunk": []},
                ],
                "vrf": 0,
            })
        );
    }

    #[test]
    fn empty_bridge_json_has_empty_members() {
        let bridge = Bridge {
            members: vec![],
            ..sample()
        };
        let value = serde_json::to_value(BridgeJson::from(&bridge)).expect("serializes");
        assert_eq!(value["members"], serde_json::json!([]));
    }

    #[test]
    fn list_table_rows() {
        let empty = Bridge {
            name: "br1".into(),
            learn: false,
            flood: true,
            members: vec![],
            learned: 0,
            ..sample()
        };
        assert_eq!(
            list_table(&[sample(), empty]),
            "NAME  LEARN  AGE  LEARN_LIMIT  FLOOD  LEARNED  MEMBERS\n\
             br0   on     300        65536  off          3  uplink,vm1,vm2\n\
             br1   off    300        65536  on           0  -\n"
        );
    }

    #[test]
    fn empty_list_table_prints_its_header() {
        assert_eq!(
            list_table(&[]),
            "NAME  LEARN  AGE  LEARN_LIMIT  FLOOD  LEARNED  MEMBERS\n"
        );
    }

    #[test]
    fn show_text_has_settings_and_members() {
        assert_eq!(
            show_text(&sample()),
            "name:        br0\n\
             learn:       on\n\
             age:         300\n\
             learn_limit: 65536\n\
             flood:       off\n\
             learned:     3\n\
             members:     3\n\
             \n\
             IFACE   VLAN  TRUNK\n\
             uplink     -  10,20\n\
             vm1        -  -\n\
             vm2       10  -\n"
        );
    }

    #[test]
    fn show_text_without_members_has_no_table() {
        let bridge = Bridge {
            members: vec![],
            ..sample()
        };
        let text = show_text(&bridge);
        assert!(text.ends_with("members:     0\n"), "{text}");
        assert!(!text.contains("IFACE"));
    }
}
