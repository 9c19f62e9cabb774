//! `vsctl transaction FILE`: applies a file of vsctl commands (one per line, as they would be
//! typed after `vsctl`; `#` starts a comment) as one all-or-nothing transaction. Only
//! commands that change something may appear; each line is checked before anything is sent.
//!
//! ```text
//! iface add a af_packet iface=veth0
//! bridge add br0 learn=on
//! bridge attach br0 a vlan=10
//! fdb add br0 02:00:00:00:00:01 a vlan=10
//! acl add web "permit proto=tcp dport=80" deny
//! acl bind a web in
//! service add web 10.96.0.10:80 proto=tcp backends=10.1.0.5:8080,10.1.0.6:8080*2
//! nat masquerade up0 on
//! ```
//!
//! Words are split at whitespace; quotes (`"..."` or `'...'`) around a whole word keep
//! its spaces, as a shell would (an ACL's RULE); there are no escapes.

use anyhow::{bail, Context};
use clap::{CommandFactory, FromArgMatches};
use serde::Serialize;
use vswitch_proto::v1::{Change, TransactionRequest};

use crate::args::{Cli, Command, RouteCommand};
use crate::rpc::{reply, Ctx};

pub async fn run(file: &str, ctx: &Ctx) -> anyhow::Result<String> {
    let text = if file == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?
    };
    let changes = parse(&text).map_err(|e| anyhow::anyhow!("{file}: {e:#}"))?;
    let n = changes.len();
    let applied = reply(
        ctx.client()
            .await?
            .transaction(TransactionRequest { changes })
            .await,
    )?
    .applied;
    if ctx.json {
        crate::output::json(&Applied { applied })
    } else {
        Ok(format!("applied {applied} of {n} changes\n"))
    }
}

#[derive(Serialize)]
struct Applied {
    applied: u32,
}

/// Every line's change, or the first bad line's error (naming the line).
///
/// The command line's definition is built once for the file, not per line (building it is
/// most of the cost of parsing a line: a file of a million routes parses ~10x faster).
/// Plain `route add` / `route del` lines, the bulk of large files, skip clap altogether
/// ([`plain_route`]): matching a line with clap still costs ~10 us, 10 s for a million.
pub fn parse(text: &str) -> anyhow::Result<Vec<Change>> {
    let mut changes = Vec::new();
    let mut command = Cli::command();
    let mut words: Vec<&str> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        words.clear();
        if line.contains(['"', '\'']) {
            split_quoted(line, &mut words).map_err(|e| anyhow::anyhow!("line {}: {e}", n + 1))?;
        } else {
            words.extend(line.split_whitespace());
        }
        let parsed = match plain_route(&words) {
            Some(c) => c,
            None => {
                command
                    .try_get_matches_from_mut(std::iter::once("vsctl").chain(words.iter().copied()))
                    .and_then(|m| Cli::from_arg_matches(&m))
                    .map_err(|e| {
                        let first = e.to_string();
                        let first = first
                            .lines()
                            .next()
                            .unwrap_or("")
                            .trim_start_matches("error: ")
                            .to_string();
                        anyhow::anyhow!("line {}: {first}", n + 1)
                    })?
                    .command
            }
        };
        let change = crate::change::of(parsed).with_context(|| format!("line {}", n + 1))?;
        changes.push(Change {
            change: Some(change),
        });
    }
    if changes.is_empty() {
        bail!("no commands: a transaction needs at least one");
    }
    Ok(changes)
}

/// The words of a line with quotes: split at whitespace, but a word in quotes (`"..."` or
/// `'...'`, around the whole word) is one word, without its quotes.
fn split_quoted<'a>(line: &'a str, out: &mut Vec<&'a str>) -> Result<(), String> {
    let mut rest = line.trim_start();
    while let Some(first) = rest.chars().next() {
        if first == '"' || first == '\'' {
            let body = &rest[1..];
            let Some(end) = body.find(first) else {
                return Err(format!("the quote {first} is not closed"));
            };
            let after = &body[end + 1..];
            if after.starts_with(|c: char| !c.is_whitespace()) {
                return Err(format!(
                    "quotes go around whole words: {:?}",
                    &rest[..rest.len() - after.len() + 1]
                ));
            }
            out.push(&body[..end]);
            rest = after.trim_start();
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let word = &rest[..end];
            if word.contains(['"', '\'']) {
                return Err(format!("quotes go around whole words: {word:?}"));
            }
            out.push(word);
            rest = rest[end..].trim_start();
        }
    }
    Ok(())
}

/// The command of a `route add PREFIX ARGS...` or `route del PREFIX ARGS...` line, as clap
/// makes it when no word starts with `-` (which clap could take for an option: such lines
/// go to clap). The arguments are checked afterwards as for any other line
/// ([`crate::change::of`]).
fn plain_route(words: &[&str]) -> Option<Command> {
    let ["route", verb @ ("add" | "del"), prefix, rest @ ..] = words else {
        return None;
    };
    if words.iter().any(|w| w.starts_with('-')) {
        return None;
    }
    let prefix = (*prefix).to_owned();
    let args = rest.iter().map(|w| (*w).to_owned()).collect();
    Some(Command::Route(if *verb == "add" {
        RouteCommand::Add { prefix, args }
    } else {
        RouteCommand::Del { prefix, args }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vswitch_proto::v1::change::Change as C;

    #[test]
    fn a_file_of_commands_becomes_one_batch() {
        let text = "# build a bridge\n\
                    iface add a null\n\
                    bridge add br0 learn=off   # no learning\n\
                    bridge attach br0 a vlan=10\n\
                    \n\
                    fdb add br0 02:00:00:00:00:01 a vlan=10\n\
                    xconnect del b\n";
        let changes = parse(text).unwrap();
        assert_eq!(changes.len(), 5);
        match &changes[3].change {
            Some(C::AddFdb(r)) => assert_eq!((r.bridge.as_str(), r.vlan), ("br0", 10)),
            other => panic!("unexpected {other:?}"),
        }
        match &changes[1].change {
            Some(C::AddBridge(r)) => assert_eq!(r.learn, Some(false)),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The names of the changes, in order.
    fn names(changes: &[Change]) -> Vec<&'static str> {
        changes
            .iter()
            .filter_map(|c| c.change.as_ref())
            .map(vswitch_control::model::change_name)
            .collect()
    }

    #[test]
    fn service_and_nat_lines_become_changes() {
        let text =
            "service add web 10.96.0.10:80 proto=tcp backends=10.1.0.5:8080*2 nodeport=30080\n\
                    service set web backends=10.1.0.6:8080\n\
                    service del web\n\
                    nat masquerade up0 on\n\
                    nat portmap add up0 udp 53 [2001:db8::53]:5353\n\
                    nat portmap del up0 udp 53\n";
        let changes = parse(text).unwrap();
        assert_eq!(
            names(&changes),
            [
                "add_service",
                "set_service_backends",
                "delete_service",
                "set_masquerade",
                "add_port_map",
                "delete_port_map"
            ]
        );
        match &changes[4].change {
            Some(C::AddPortMap(r)) => {
                assert_eq!((r.to_ip.as_str(), r.to_port), ("2001:db8::53", 5353))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(parse("service list\n").is_err());
        assert!(parse("nat show\n").is_err());
    }

    #[test]
    fn l3_lines_become_l3_changes() {
        let text = "vrf add 10\n\
                    iface add red null vrf=10\n\
                    iface set bvi:br0 vrf=10\n\
                    addr add red 10.0.0.1/24\n\
                    route add 0.0.0.0/0 via 10.0.0.254,10.0.0.253 vrf=10\n\
                    route add 10.1.1.5/32 dev red\n\
                    route del 10.2.0.0/16 vrf=10\n\
                    neigh add red 10.0.0.2 02:00:00:00:00:02\n\
                    neigh del red 10.0.0.2\n\
                    neigh set limit=100\n\
                    proxy-arp red on\n\
                    vrf del 10\n";
        let changes = parse(text).unwrap();
        assert_eq!(
            names(&changes),
            [
                "add_vrf",
                "add_interface",
                "set_interface",
                "add_address",
                "add_route",
                "add_route",
                "delete_route",
                "add_neighbor",
                "delete_neighbor",
                "set_neighbor_config",
                "set_proxy_arp",
                "delete_vrf"
            ]
        );
        match &changes[1].change {
            Some(C::AddInterface(r)) => {
                assert_eq!(r.vrf, Some(10));
                assert!(!r.args.contains_key("vrf"));
            }
            other => panic!("unexpected {other:?}"),
        }
        match &changes[4].change {
            Some(C::AddRoute(r)) => {
                assert_eq!((r.vrf, r.nexthops.len()), (10, 2));
            }
            other => panic!("unexpected {other:?}"),
        }
        let e = parse("route show\n").unwrap_err();
        assert!(format!("{e:#}").contains("changes nothing"), "{e:#}");
    }

    /// The lines taken without clap come out as clap would make them, errors included.
    #[test]
    fn plain_route_lines_are_parsed_as_clap_parses_them() {
        let mut command = Cli::command();
        for line in [
            "route add 10.0.0.0/8 via 10.0.0.254",
            "route add 10.0.0.0/8 via 10.0.0.254,10.0.0.253 dev up0 onlink vrf=7",
            "route add 2001:db8::/32 via fe80::1 dev up0",
            "route add 10.1.1.5/32 dev pod5",
            "route add 10.0.0.0/8",
            "route add 10.0.0.0/8 gw 10.0.0.1",
            "route add 10.0.0.0/8 via",
            "route add help",
            "route add 10.0.0.0/8 via 10.0.0.1 vrf=x",
            "route del 10.0.0.0/8",
            "route del 10.0.0.0/8 vrf=3",
            "route del 10.0.0.0/8 vrf=3 vrf=4",
            "route del 10.0.0.0/8 table=5",
        ] {
            let words: Vec<&str> = line.split_whitespace().collect();
            let quick = plain_route(&words).expect(line);
            let clap = command
                .try_get_matches_from_mut(std::iter::once("vsctl").chain(words.iter().copied()))
                .and_then(|m| Cli::from_arg_matches(&m))
                .expect(line)
                .command;
            assert_eq!(format!("{quick:?}"), format!("{clap:?}"), "{line}");
            let (a, b) = (crate::change::of(quick), crate::change::of(clap));
            match (a, b) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{line}"),
                (Err(a), Err(b)) => assert_eq!(format!("{a:#}"), format!("{b:#}"), "{line}"),
                (a, b) => panic!("{line}: {a:?} against clap's {b:?}"),
            }
        }
        for line in [
            "route show",
            "route get 10.0.0.1",
            "route add",
            "route add 10.0.0.0/8 --json via 10.0.0.1",
            "route del -h",
            "routes add 10.0.0.0/8 via 10.0.0.1",
        ] {
            let words: Vec<&str> = line.split_whitespace().collect();
            assert!(plain_route(&words).is_none(), "{line}");
        }
        let changes =
            parse("route add 10.0.0.0/8 via 10.0.0.1 # a comment\nroute del 10.0.0.0/8\n").unwrap();
        assert_eq!(changes.len(), 2);
        let e =
            parse("route add 10.0.0.0/8 via 10.0.0.1\nroute add 10.1.0.0/16 gw x\n").unwrap_err();
        assert!(format!("{e:#}").starts_with("line 2:"), "{e:#}");
    }

    #[test]
    fn acl_lines_take_quoted_and_bare_rules() {
        let text = "iface add a null\n\
                    acl add web \"permit proto=tcp dport=80\" 'deny proto=udp'  deny\n\
                    acl set web permit proto=tcp dport=443 deny\n\
                    acl bind a web in\n\
                    acl unbind a in\n\
                    acl del web\n";
        let changes = parse(text).unwrap();
        assert_eq!(
            names(&changes),
            [
                "add_interface",
                "add_acl",
                "set_acl",
                "bind_acl",
                "unbind_acl",
                "delete_acl"
            ]
        );
        match &changes[1].change {
            Some(C::AddAcl(r)) => {
                let t: Vec<String> = r
                    .rules
                    .iter()
                    .map(vswitch_control::model::acl_rule::format)
                    .collect();
                assert_eq!(t, ["permit proto=tcp dport=80", "deny proto=udp", "deny"]);
            }
            other => panic!("unexpected {other:?}"),
        }
        match &changes[2].change {
            Some(C::SetAcl(r)) => assert_eq!(r.rules.len(), 2),
            other => panic!("unexpected {other:?}"),
        }
        for (line, what) in [
            (
                "acl add web \"permit\n",
                "line 1: the quote \" is not closed",
            ),
            (
                "acl add web \"permit\"x\n",
                "line 1: quotes go around whole words",
            ),
            (
                "acl add web per\"mit\"\n",
                "line 1: quotes go around whole words",
            ),
            (
                "acl add web \"permit colour=red\"\n",
                "unknown key \"colour\"",
            ),
            ("acl show web\n", "changes nothing"),
        ] {
            let e = format!("{:#}", parse(line).unwrap_err());
            assert!(e.contains(what), "{line:?}: {e}");
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let e = parse("iface add a null\nbridge attach br0\n").unwrap_err();
        assert!(format!("{e:#}").starts_with("line 2:"), "{e:#}");
        let e = parse("iface add a null\niface list\n").unwrap_err();
        assert!(format!("{e:#}").contains("changes nothing"), "{e:#}");
        let e = parse("fdb add br0 02:00:00:00:00:01 a vlan=x\n").unwrap_err();
        assert!(format!("{e:#}").starts_with("line 1"), "{e:#}");
        assert!(parse("# nothing\n\n").is_err());
    }
}
