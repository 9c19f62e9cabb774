//! `vsctl session set|show` (the session table of stateful ACLs: its settings and
//! counters) and `vsctl sessions [IFACE] [--max N]` / `vsctl sessions flush [IFACE]` (its
//! sessions, listed or removed).

use serde::Serialize;
use vswitch_proto::v1::{
    FlushSessionsRequest, GetSessionConfigRequest, ListSessionsRequest, Session, SessionConfig,
    SetSessionConfigRequest,
};

use crate::args::{Command, SessionCommand};
use crate::bridge::{number, parse_options};
use crate::output::{self, Align, Table};
use crate::rpc::{reply, Ctx};

/// The keys of `session set`.
const KEYS: [&str; 6] = [
    "limit",
    "iface-limit",
    "timeout-tcp",
    "timeout-tcp-transitory",
    "timeout-udp",
    "timeout-icmp",
];

pub async fn run(command: SessionCommand, ctx: &Ctx) -> anyhow::Result<String> {
    match command {
        SessionCommand::Show => {
            let c = reply(
                ctx.client()
                    .await?
                    .get_session_config(GetSessionConfigRequest {})
                    .await,
            )?;
            show(&c, ctx)
        }
        other => crate::change::run(Command::Session(other), ctx).await,
    }
}

/// The settings and counters, as `session show` (and `session set`) print them.
pub(crate) fn show(c: &SessionConfig, ctx: &Ctx) -> anyhow::Result<String> {
    if ctx.json {
        return output::json(&ConfigJson::from(c));
    }
    let iface_limit = if c.iface_limit_set {
        c.iface_limit.to_string()
    } else {
        format!("{} (the limit)", c.iface_limit)
    };
    Ok(output::key_values(&[
        ("limit", c.limit.to_string()),
        ("iface-limit", iface_limit),
        ("timeout-tcp", format!("{}s", c.timeout_tcp)),
        (
            "timeout-tcp-transitory",
            format!("{}s", c.timeout_tcp_transitory),
        ),
        ("timeout-udp", format!("{}s", c.timeout_udp)),
        ("timeout-icmp", format!("{}s", c.timeout_icmp)),
        ("live", c.live.to_string()),
        ("created", c.created.to_string()),
        ("evicted", c.evicted.to_string()),
        ("refused", c.refused.to_string()),
        ("expired", c.expired.to_string()),
        ("capacity", c.capacity.to_string()),
    ]))
}

/// `sessions [IFACE] [--max N]` and `sessions flush [IFACE]`.
pub async fn sessions(words: Vec<String>, max: u32, ctx: &Ctx) -> anyhow::Result<String> {
    let iface = match words.as_slice() {
        [first, ..] if first == "flush" => {
            return crate::change::run(Command::Sessions { words, max }, ctx).await;
        }
        [] => String::new(),
        [iface] => iface.clone(),
        [_, extra, ..] => anyhow::bail!(
            "unexpected argument {extra:?}: sessions [IFACE] [--max N] | sessions flush [IFACE]"
        ),
    };
    let request = ListSessionsRequest { iface, max };
    let r = reply(ctx.client().await?.list_sessions(request).await)?;
    if r.truncated {
        // stdout stays one document (or one table); the note goes to stderr.
        eprintln!(
            "vsctl: showing {} of {} sessions (--max N shows more)",
            r.sessions.len(),
            r.live
        );
    }
    if ctx.json {
        output::json(&r.sessions.iter().map(SessionJson::from).collect::<Vec<_>>())
    } else {
        Ok(table(&r.sessions))
    }
}

/// The request of `sessions flush [IFACE]`.
pub(crate) fn flush_request(words: &[String]) -> anyhow::Result<FlushSessionsRequest> {
    match words {
        [_] => Ok(FlushSessionsRequest::default()),
        [_, iface] => Ok(FlushSessionsRequest {
            iface: iface.clone(),
        }),
        [_, _, extra, ..] => anyhow::bail!("unexpected argument {extra:?}: sessions flush [IFACE]"),
        [] => anyhow::bail!("sessions flush [IFACE]"),
    }
}

/// The request of `session set KEY=VALUE...` (at least one key).
pub(crate) fn set_request(words: &[String]) -> anyhow::Result<SetSessionConfigRequest> {
    let mut o = parse_options(words, &KEYS)?;
    let mut get = |k: &str| o.remove(k).map(|v| number(k, &v)).transpose();
    let request = SetSessionConfigRequest {
        limit: get("limit")?,
        iface_limit: get("iface-limit")?,
        timeout_tcp: get("timeout-tcp")?,
        timeout_tcp_transitory: get("timeout-tcp-transitory")?,
        timeout_udp: get("timeout-udp")?,
        timeout_icmp: get("timeout-icmp")?,
    };
    if words.is_empty() {
        anyhow::bail!(
            "nothing to set: expected limit=N, iface-limit=N, timeout-tcp=S, \
             timeout-tcp-transitory=S, timeout-udp=S and/or timeout-icmp=S"
        );
    }
    Ok(request)
}

/// The settings and counters in `--json` output.
#[derive(Debug, Serialize)]
pub(crate) struct ConfigJson {
    limit: u32,
    iface_limit: u32,
    timeout_tcp: u32,
    timeout_tcp_transitory: u32,
    timeout_udp: u32,
    timeout_icmp: u32,
    live: u64,
    created: u64,
    evicted: u64,
    refused: u64,
    expired: u64,
    capacity: u64,
}

impl From<&SessionConfig> for ConfigJson {
    fn from(c: &SessionConfig) -> Self {
        ConfigJson {
            limit: c.limit,
            iface_limit: c.iface_limit,
            timeout_tcp: c.timeout_tcp,
            timeout_tcp_transitory: c.timeout_tcp_transitory,
            timeout_udp: c.timeout_udp,
            timeout_icmp: c.timeout_icmp,
            live: c.live,
            created: c.created,
            evicted: c.evicted,
            refused: c.refused,
            expired: c.expired,
            capacity: c.capacity,
        }
    }
}

/// One session in `sessions --json` (CONTRACT: proto, src, dst, sport, dport, state,
/// age_seconds; and iface, direction, idle_seconds).
#[derive(Debug, Serialize)]
pub(crate) struct SessionJson<'a> {
    iface: &'a str,
    direction: &'a str,
    proto: &'a str,
    src: &'a str,
    dst: &'a str,
    sport: u32,
    dport: u32,
    state: &'a str,
    age_seconds: u64,
    idle_seconds: u64,
    /// NAT sessions: the flow as it leaves (translated).
    #[serde(skip_serializing_if = "Option::is_none")]
    nat: Option<NatJson<'a>>,
}

/// A NAT session's translated flow in `sessions --json`.
#[derive(Debug, Serialize)]
pub(crate) struct NatJson<'a> {
    src: &'a str,
    dst: &'a str,
    sport: u32,
    dport: u32,
    vrf: u32,
}

impl<'a> From<&'a Session> for SessionJson<'a> {
    fn from(s: &'a Session) -> Self {
        SessionJson {
            iface: &s.iface,
            direction: &s.direction,
            proto: &s.proto,
            src: &s.src,
            dst: &s.dst,
            sport: s.sport,
            dport: s.dport,
            state: &s.state,
            age_seconds: s.age_seconds,
            idle_seconds: s.idle_seconds,
            nat: (!s.nat_src.is_empty()).then_some(NatJson {
                src: &s.nat_src,
                dst: &s.nat_dst,
                sport: s.nat_sport,
                dport: s.nat_dport,
                vrf: s.vrf,
            }),
        }
    }
}

/// What `sessions flush` prints: `{"removed": N}` with --json, else a line.
pub(crate) fn flushed(removed: u32, ctx: &Ctx) -> anyhow::Result<String> {
    if ctx.json {
        output::json(&serde_json::json!({ "removed": removed }))
    } else {
        Ok(format!("{removed} sessions removed\n"))
    }
}

fn table(sessions: &[Session]) -> String {
    let mut t = Table::new(&[
        ("IFACE", Align::Left),
        ("DIR", Align::Left),
        ("PROTO", Align::Left),
        ("SRC", Align::Left),
        ("SPORT", Align::Right),
        ("DST", Align::Left),
        ("DPORT", Align::Right),
        ("STATE", Align::Left),
        ("AGE", Align::Right),
        ("IDLE", Align::Right),
        ("TRANSLATED", Align::Left),
    ]);
    for s in sessions {
        let translated = if s.nat_src.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{} {} -> {} {}",
                s.nat_src, s.nat_sport, s.nat_dst, s.nat_dport
            )
        };
        t.row(vec![
            s.iface.clone(),
            s.direction.clone(),
            s.proto.clone(),
            s.src.clone(),
            s.sport.to_string(),
            s.dst.clone(),
            s.dport.to_string(),
            s.state.clone(),
            s.age_seconds.to_string(),
            s.idle_seconds.to_string(),
            translated,
        ]);
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::words;

    #[test]
    fn set_forms() {
        let r = set_request(&words(&["limit=1000", "timeout-udp=60"])).unwrap();
        assert_eq!(
            (r.limit, r.timeout_udp, r.timeout_tcp),
            (Some(1000), Some(60), None)
        );
        let r = set_request(&words(&["iface-limit=5", "timeout-tcp-transitory=9"])).unwrap();
        assert_eq!(
            (r.iface_limit, r.timeout_tcp_transitory),
            (Some(5), Some(9))
        );
        let err = |l: &[&str]| set_request(&words(l)).unwrap_err().to_string();
        assert!(err(&[]).starts_with("nothing to set"));
        assert!(err(&["size=5"]).contains(r#"unknown key "size""#));
        assert!(err(&["timeout-icmp=x"]).contains("timeout-icmp must be an integer"));
        assert!(err(&["limit=1", "limit=2"]).contains("limit"));
    }

    #[test]
    fn flush_forms() {
        assert_eq!(flush_request(&words(&["flush"])).unwrap().iface, "");
        assert_eq!(flush_request(&words(&["flush", "a"])).unwrap().iface, "a");
        assert!(flush_request(&words(&["flush", "a", "b"])).is_err());
    }

    #[test]
    fn json_and_table() {
        let s = Session {
            iface: "a".into(),
            direction: "out".into(),
            proto: "tcp".into(),
            src: "10.0.0.1".into(),
            dst: "192.0.2.1".into(),
            sport: 40000,
            dport: 80,
            state: "established".into(),
            age_seconds: 12,
            nat_src: String::new(),
            nat_dst: String::new(),
            nat_sport: 0,
            nat_dport: 0,
            vrf: 0,
            idle_seconds: 3,
        };
        assert_eq!(
            serde_json::to_value(SessionJson::from(&s)).unwrap(),
            serde_json::json!({"iface": "a", "direction": "out", "proto": "tcp",
                "src": "10.0.0.1", "dst": "192.0.2.1", "sport": 40000, "dport": 80,
                "state": "established", "age_seconds": 12, "idle_seconds": 3})
        );
        assert_eq!(
            table(std::slice::from_ref(&s)),
            "IFACE  DIR  PROTO  SRC       SPORT  DST        DPORT  STATE        AGE  IDLE  TRANSLATED\n\
             a      out  tcp    10.0.0.1  40000  192.0.2.1     80  established   12     3  -\n"
        );
        // A NAT session: its translation in --json and in the table.
        let n = Session {
            iface: "nat".into(),
            direction: "nat".into(),
            dst: "10.96.0.10".into(),
            nat_src: "10.0.0.1".into(),
            nat_dst: "10.1.0.5".into(),
            nat_sport: 40000,
            nat_dport: 8080,
            ..s
        };
        let j = serde_json::to_value(SessionJson::from(&n)).unwrap();
        assert_eq!(
            j["nat"],
            serde_json::json!({"src": "10.0.0.1", "dst": "10.1.0.5", "sport": 40000,
                "dport": 8080, "vrf": 0})
        );
        assert!(table(&[n]).contains("10.0.0.1 40000 -> 10.1.0.5 8080"));
    }
}
