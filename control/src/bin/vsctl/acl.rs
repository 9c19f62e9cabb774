//! `vsctl acl add|set|del|list|show|bind|unbind`: ACLs and their bindings to interfaces.
//!
//! A RULE's text is read by the one parser of the rule syntax
//! (`vswitch_control::model::acl_rule`), which checks only its syntax; what the values mean
//! (actions, ranges, prefixes, which key goes with which protocol) is vswitchd's to check,
//! so gRPC users get the same.
//!
//! `--json`: `acl show` (and `acl add`, `acl set`) print `{name, rules: [{action, proto,
//! src, dst, sport, dport, icmp_type, icmp_code, hits}], default_hits, bound: [{iface,
//! direction}]}`, null for "any" (proto a name or a number as a string, ports `"A"` or
//! `"A-B"`); `acl list` prints an array of `{name, rules, bound}` where `rules` is the
//! number of rules. Hits count since the ACL's rules were last set (`acl set` starts them
//! at 0).

use serde::Serialize;
use vswitch_control::model::acl_rule;
use vswitch_proto::v1 as pb;

use crate::args::{AclCommand, Command};
use crate::output::{self, or_dash, Align, Table};
use crate::rpc::{reply, Ctx};

pub async fn run(command: AclCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        AclCommand::List => {
            let acls = reply(ctx.client().await?.list_acls(pb::ListAclsRequest {}).await)?.acls;
            if ctx.json {
                output::json(&acls.iter().map(AclSummaryJson::from).collect::<Vec<_>>())
            } else {
                Ok(list_table(&acls))
            }
        }
        AclCommand::Show { name } => {
            let a = reply(
                ctx.client()
                    .await?
                    .get_acl(pb::GetAclRequest { name })
                    .await,
            )?;
            if ctx.json {
                output::json(&AclJson::from(&a))
            } else {
                Ok(show_table(&a))
            }
        }
        other => crate::change::run(Command::Acl(other), ctx).await,
    }
}

/// The rules of `acl add NAME RULE...` / `acl set NAME RULE...`.
pub fn rules(words: &[String]) -> anyhow::Result<Vec<pb::AclRule>> {
    acl_rule::parse_list(words).map_err(anyhow::Error::msg)
}

/// Where an ACL is bound, in `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct BoundJson<'a> {
    iface: &'a str,
    direction: &'a str,
}

fn bound(a: &pb::Acl) -> Vec<BoundJson<'_>> {
    a.bindings
        .iter()
        .map(|b| BoundJson {
            iface: &b.iface,
            direction: &b.direction,
        })
        .collect()
}

/// One rule in `--json` output: null where it matches anything.
#[derive(Debug, Serialize)]
pub(crate) struct RuleJson<'a> {
    action: &'a str,
    proto: Option<String>,
    src: Option<&'a str>,
    dst: Option<&'a str>,
    sport: Option<String>,
    dport: Option<String>,
    icmp_type: Option<u32>,
    icmp_code: Option<u32>,
    hits: u64,
}

/// An ACL in `--json` output (`acl show`, `acl add`, `acl set`).
#[derive(Debug, Serialize)]
pub(crate) struct AclJson<'a> {
    name: &'a str,
    rules: Vec<RuleJson<'a>>,
    default_hits: u64,
    bound: Vec<BoundJson<'a>>,
}

impl<'a> From<&'a pb::Acl> for AclJson<'a> {
    fn from(a: &'a pb::Acl) -> Self {
        let some = |s: &'a str| Some(s).filter(|s| !s.is_empty());
        AclJson {
            name: &a.name,
            rules: a
                .rules
                .iter()
                .enumerate()
                .map(|(i, r)| RuleJson {
                    action: &r.action,
                    proto: r.proto.map(acl_rule::proto_text),
                    src: some(&r.src),
                    dst: some(&r.dst),
                    sport: r.sport.as_ref().map(acl_rule::range_text),
                    dport: r.dport.as_ref().map(acl_rule::range_text),
                    icmp_type: r.icmp_type,
                    icmp_code: r.icmp_code,
                    hits: a.hits.get(i).copied().unwrap_or_default(),
                })
                .collect(),
            default_hits: a.default_hits,
            bound: bound(a),
        }
    }
}

/// An element of `acl list --json`: `rules` is how many.
#[derive(Debug, Serialize)]
pub(crate) struct AclSummaryJson<'a> {
    name: &'a str,
    rules: usize,
    bound: Vec<BoundJson<'a>>,
}

impl<'a> From<&'a pb::Acl> for AclSummaryJson<'a> {
    fn from(a: &'a pb::Acl) -> Self {
        AclSummaryJson {
            name: &a.name,
            rules: a.rules.len(),
            bound: bound(a),
        }
    }
}

/// A binding in `--json` output (`acl bind`).
#[derive(Debug, Serialize)]
pub(crate) struct BindingJson<'a> {
    iface: &'a str,
    acl: &'a str,
    direction: &'a str,
}

impl<'a> From<&'a pb::AclBinding> for BindingJson<'a> {
    fn from(b: &'a pb::AclBinding) -> Self {
        BindingJson {
            iface: &b.iface,
            acl: &b.acl,
            direction: &b.direction,
        }
    }
}

/// `a in, b out`.
fn bound_text(a: &pb::Acl) -> String {
    let v: Vec<String> = a
        .bindings
        .iter()
        .map(|b| format!("{} {}", b.iface, b.direction))
        .collect();
    v.join(", ")
}

fn list_table(acls: &[pb::Acl]) -> String {
    let mut t = Table::new(&[
        ("NAME", Align::Left),
        ("RULES", Align::Right),
        ("BOUND", Align::Left),
    ]);
    for a in acls {
        t.row(vec![
            a.name.clone(),
            a.rules.len().to_string(),
            or_dash(&bound_text(a)),
        ]);
    }
    t.render()
}

/// The rules, numbered from 1 (as errors and metrics number them), then the default deny,
/// then where the ACL is bound.
fn show_table(a: &pb::Acl) -> String {
    let mut t = Table::new(&[
        ("#", Align::Right),
        ("ACTION", Align::Left),
        ("PROTO", Align::Left),
        ("SRC", Align::Left),
        ("DST", Align::Left),
        ("SPORT", Align::Left),
        ("DPORT", Align::Left),
        ("ICMP", Align::Left),
        ("HITS", Align::Right),
    ]);
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
    for (i, r) in a.rules.iter().enumerate() {
        let icmp = match (r.icmp_type, r.icmp_code) {
            (Some(t), Some(c)) => format!("{t}/{c}"),
            (Some(t), None) => t.to_string(),
            _ => "-".to_string(),
        };
        t.row(vec![
            (i + 1).to_string(),
            r.action.clone(),
            opt(r.proto.map(acl_rule::proto_text)),
            or_dash(&r.src),
            or_dash(&r.dst),
            opt(r.sport.as_ref().map(acl_rule::range_text)),
            opt(r.dport.as_ref().map(acl_rule::range_text)),
            icmp,
            a.hits.get(i).copied().unwrap_or_default().to_string(),
        ]);
    }
    t.row(vec![
        "*".to_string(),
        "deny".to_string(),
        "-".to_string(),
        "-".to_string(),
        "-".to_string(),
        "-".to_string(),
        "-".to_string(),
        "-".to_string(),
        a.default_hits.to_string(),
    ]);
    format!(
        "acl {}, bound: {}\n{}",
        a.name,
        or_dash(&bound_text(a)),
        t.render()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl() -> pb::Acl {
        pb::Acl {
            name: "web".into(),
            rules: rules(&["permit proto=tcp src=10.0.0.0/8 dport=80".to_string()])
                .unwrap()
                .into_iter()
                .chain(rules(&["deny proto=icmp icmp-type=3 icmp-code=4".to_string()]).unwrap())
                .collect(),
            hits: vec![5, 0],
            default_hits: 2,
            bindings: vec![pb::AclBinding {
                iface: "a".into(),
                acl: "web".into(),
                direction: "in".into(),
            }],
        }
    }

    #[test]
    fn json_has_the_contract_fields() {
        let a = acl();
        let v = serde_json::to_value(AclJson::from(&a)).unwrap();
        assert_eq!(v["name"], "web");
        let r = &v["rules"][0];
        for k in ["action", "proto", "src", "dst", "sport", "dport", "hits"] {
            assert!(r.get(k).is_some(), "{k} missing: {v}");
        }
        assert_eq!(r["proto"], "tcp");
        assert_eq!(r["src"], "10.0.0.0/8");
        assert!(r["dst"].is_null() && r["sport"].is_null() && r["icmp_type"].is_null());
        assert_eq!(r["dport"], "80");
        assert_eq!(r["hits"], 5);
        assert_eq!(v["rules"][1]["icmp_code"], 4);
        assert_eq!(v["default_hits"], 2);
        assert_eq!(v["bound"][0]["iface"], "a");
        assert_eq!(v["bound"][0]["direction"], "in");
        let s = serde_json::to_value(AclSummaryJson::from(&a)).unwrap();
        assert_eq!(s["rules"], 2);
        assert_eq!(s["bound"][0]["direction"], "in");
    }

    #[test]
    fn tables() {
        let a = acl();
        assert_eq!(
            list_table(std::slice::from_ref(&a)),
            "NAME  RULES  BOUND\nweb       2  a in\n"
        );
        assert_eq!(
            show_table(&a),
            "acl web, bound: a in\n\
             #  ACTION  PROTO  SRC         DST  SPORT  DPORT  ICMP  HITS\n\
             1  permit  tcp    10.0.0.0/8  -    -      80     -        5\n\
             2  deny    icmp   -           -    -      -      3/4      0\n\
             *  deny    -      -           -    -      -      -        2\n"
        );
    }
}
