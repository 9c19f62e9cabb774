//! `vsctl fdb show|add|del|flush`: the MAC table (forwarding database) of a bridge.
//!
//! An entry's VLAN is a bridge VLAN; 0 is the VLAN of the untagged members, and is what
//! `add` and `del` use when no `vlan=` is given.

use serde::Serialize;
use vswitch_proto::v1::{FdbEntry, GetFdbRequest, ListFdbRequest};

use crate::args::{Command, FdbCommand};
use crate::bridge::{parse_options, vlan_id};
use crate::output::{self, or_dash, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: FdbCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        FdbCommand::Show { bridge } => {
            let request = ListFdbRequest { bridge };
            let mut entries = reply(ctx.client().await?.list_fdb(request).await)?.entries;
            entries.sort_by(|a, b| (a.vlan, &a.mac).cmp(&(b.vlan, &b.mac)));
            if ctx.json {
                output::json(&entries.iter().map(FdbEntryJson::from).collect::<Vec<_>>())
            } else {
                Ok(table(&entries))
            }
        }
        FdbCommand::Get { bridge, mac, args } => {
            let request = GetFdbRequest {
                bridge,
                mac,
                vlan: vlan_option(&args)?,
            };
            let entry = reply(ctx.client().await?.get_fdb(request).await)?;
            if ctx.json {
                output::json(&FdbEntryJson::from(&entry))
            } else {
                Ok(table(std::slice::from_ref(&entry)))
            }
        }
        // The verbs that change something: built and sent in one place.
        other => crate::change::run(Command::Fdb(other), ctx).await,
    }
}

/// `fdb add`'s `[vlan=ID] [remote=IP]`: the VLAN (0 if not given) and the remote ("" if
/// not given).
pub(crate) fn add_options(words: &[String]) -> anyhow::Result<(u32, String)> {
    let options = parse_options(words, &["vlan", "remote"])?;
    let vlan = options.get("vlan").map_or(Ok(0), |value| vlan_id(value))?;
    Ok((vlan, options.get("remote").cloned().unwrap_or_default()))
}

/// `[vlan=ID]`: the VLAN, 0 (the untagged members' VLAN) if not given.
pub(crate) fn vlan_option(words: &[String]) -> anyhow::Result<u32> {
    let options = parse_options(words, &["vlan"])?;
    options.get("vlan").map_or(Ok(0), |value| vlan_id(value))
}

/// One entry in `--json` output: `fdb show` elements, and what `fdb add` prints.
#[derive(Debug, Serialize)]
pub(crate) struct FdbEntryJson<'a> {
    mac: &'a str,
    vlan: u32,
    iface: &'a str,
    #[serde(rename = "static")]
    is_static: bool,
    age_seconds: u64,
    /// The VTEP of an entry behind a tunnel; absent otherwise.
    #[serde(skip_serializing_if = "str::is_empty")]
    remote: &'a str,
}

impl<'a> From<&'a FdbEntry> for FdbEntryJson<'a> {
    fn from(e: &'a FdbEntry) -> Self {
        FdbEntryJson {
            mac: &e.mac,
            vlan: e.vlan,
            iface: &e.iface,
            is_static: e.r#static,
            age_seconds: e.age_seconds,
            remote: &e.remote,
        }
    }
}

/// What `fdb flush --json` prints.
#[derive(Debug, Serialize)]
pub(crate) struct FlushJson {
    pub(crate) removed: u32,
}

fn table(entries: &[FdbEntry]) -> String {
    // A REMOTE column (the VTEP behind a tunnel member) when some entry has one.
    let remotes = entries.iter().any(|e| !e.remote.is_empty());
    let mut columns = vec![
        ("MAC", Align::Left),
        ("VLAN", Align::Right),
        ("IFACE", Align::Left),
        ("STATIC", Align::Left),
        ("AGE", Align::Right),
    ];
    if remotes {
        columns.push(("REMOTE", Align::Left));
    }
    let mut table = Table::new(&columns);
    for e in entries {
        let mut row = vec![
            e.mac.clone(),
            if e.vlan == 0 {
                "-".to_owned()
            } else {
                e.vlan.to_string()
            },
            // Empty if the daemon no longer knows the port.
            or_dash(&e.iface),
            if e.r#static { "yes" } else { "no" }.to_owned(),
            // Static entries do not age.
            if e.r#static {
                "-".to_owned()
            } else {
                e.age_seconds.to_string()
            },
        ];
        if remotes {
            row.push(or_dash(&e.remote));
        }
        table.row(row);
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
    fn vlan_defaults_to_zero() {
        assert_eq!(vlan_option(&[]).expect("valid"), 0);
        assert_eq!(vlan_option(&words(&["vlan=10"])).expect("valid"), 10);
        assert_eq!(vlan_option(&words(&["vlan=0"])).expect("valid"), 0);
    }

    #[test]
    fn vlan_option_rejects_bad_words() {
        let err = |list: &[&str]| vlan_option(&words(list)).unwrap_err().to_string();
        assert_eq!(
            err(&["vlan=x"]),
            r#"invalid argument "vlan=x": vlan must be a number from 1 to 4094"#
        );
        assert_eq!(
            err(&["vlan="]),
            r#"invalid argument "vlan=": vlan must be a number from 1 to 4094"#
        );
        assert_eq!(
            err(&["iface=p0"]),
            r#"invalid argument "iface=p0": unknown key "iface" (expected vlan)"#
        );
        assert_eq!(
            err(&["vlan=1", "vlan=2"]),
            r#"invalid argument "vlan=2": key "vlan" given twice"#
        );
        assert_eq!(err(&["10"]), r#"invalid argument "10": expected KEY=VALUE"#);
    }

    fn entry(mac: &str, vlan: u32, iface: &str, is_static: bool, age: u64) -> FdbEntry {
        FdbEntry {
            mac: mac.into(),
            vlan,
            iface: iface.into(),
            r#static: is_static,
            age_seconds: age,
            remote: String::new(),
        }
    }

    #[test]
    fn entry_json_shape() {
        let e = entry("02:00:00:00:00:01", 10, "vm1", false, 42);
        let value = serde_json::to_value(FdbEntryJson::from(&e)).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({
                "mac": "02:00:00:00:00:01",
                "vlan": 10,
                "iface": "vm1",
                "static": false,
                "age_seconds": 42,
            })
        );
        let e = entry("02:00:00:00:00:02", 0, "uplink", true, 0);
        let value = serde_json::to_value(FdbEntryJson::from(&e)).expect("serializes");
        assert_eq!(value["static"], true);
        assert_eq!(value["vlan"], 0);
    }

    #[test]
    fn entries_behind_a_tunnel_carry_their_remote() {
        let mut e = entry("02:00:00:00:00:03", 0, "vx0", true, 0);
        e.remote = "192.0.2.7".into();
        let value = serde_json::to_value(FdbEntryJson::from(&e)).expect("serializes");
        assert_eq!(value["remote"], "192.0.2.7");
        let (vlan, remote) = add_options(&words(&["remote=192.0.2.7", "vlan=5"])).expect("valid");
        assert_eq!((vlan, remote.as_str()), (5, "192.0.2.7"));
        assert_eq!(add_options(&[]).expect("valid"), (0, String::new()));
    }

    #[test]
    fn flush_json_shape() {
        let value = serde_json::to_value(FlushJson { removed: 7 }).expect("serializes");
        assert_eq!(value, serde_json::json!({"removed": 7}));
    }

    #[test]
    fn table_rows() {
        assert_eq!(
            table(&[
                entry("02:00:00:00:00:01", 0, "vm1", false, 42),
                entry("02:00:00:00:00:02", 100, "uplink", true, 0),
                entry("02:00:00:00:00:03", 7, "", false, 5),
            ]),
            "MAC                VLAN  IFACE   STATIC  AGE\n\
             02:00:00:00:00:01     -  vm1     no       42\n\
             02:00:00:00:00:02   100  uplink  yes       -\n\
             02:00:00:00:00:03     7  -       no        5\n"
        );
    }

    #[test]
    fn entries_behind_a_tunnel_show_their_remote() {
        let mut behind = entry("02:00:00:00:00:09", 0, "vx42", false, 3);
        behind.remote = "10.44.0.2".into();
        assert_eq!(
            table(&[entry("02:00:00:00:00:01", 0, "pod1", false, 1), behind]),
            "MAC                VLAN  IFACE  STATIC  AGE  REMOTE\n\
             02:00:00:00:00:01     -  pod1   no        1  -\n\
             02:00:00:00:00:09     -  vx42   no        3  10.44.0.2\n"
        );
    }

    #[test]
    fn empty_table_prints_its_header() {
        assert_eq!(table(&[]), "MAC  VLAN  IFACE  STATIC  AGE\n");
    }
}
