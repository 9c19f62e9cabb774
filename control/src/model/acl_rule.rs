//! One ACL rule: its text form (the one parser and printer of `vsctl acl add NAME RULE...`
//! and of `vsctl transaction` lines), its validation (the wire form [`pb::AclRule`] to a
//! [`RuleSpec`]) and the dataplane's form ([`Rule`]).
//!
//! Text: `ACTION [proto=tcp|udp|icmp|icmp6|N] [src=CIDR] [dst=CIDR] [sport=A[-B]]
//! [dport=A[-B]] [icmp-type=N [icmp-code=N]]`, keys in any order, each at most once. The
//! text parser checks only the syntax (known keys, numbers where numbers go); what the
//! values mean (actions, ranges, prefixes, which key goes with which protocol) is checked
//! by [`check`], on the wire form, so gRPC clients get the same checks as vsctl.
//!
//! Prefixes with host bits set are refused (as route prefixes are), naming the network
//! meant: `10.0.0.1/8` is an error that suggests `10.0.0.0/8`. Ports go with tcp and udp
//! only; an ICMP type and code with icmp (IPv4) and icmp6 (IPv6), as VPP's ACL plugin holds
//! them: the type in the dataplane rule's source port range, the code in its destination
//! port range.

use std::net::IpAddr;

use vswitch_dataplane::acl::{Action, Family as DpFamily, Net, Rule};
use vswitch_proto::v1 as pb;

use super::ip::{Family, Prefix};
use crate::error::{ApiError, ApiResult};

/// IP protocol numbers (IANA) the text form names.
pub const ICMP: u8 = 1;
pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP6: u8 = 58;

/// The protocol names of the text form, with their numbers.
const PROTOCOLS: [(&str, u8); 4] = [("tcp", TCP), ("udp", UDP), ("icmp", ICMP), ("icmp6", ICMP6)];

/// The actions, as named in the API.
pub const ACTIONS: [&str; 3] = ["permit", "deny", "permit-reflect"];

/// The keys of the text form.
const KEYS: [&str; 7] = [
    "proto",
    "src",
    "dst",
    "sport",
    "dport",
    "icmp-type",
    "icmp-code",
];

/// A rule as validated: what was given, normalised (numbers, prefixes), `None` for any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleSpec {
    pub action: Action,
    pub proto: Option<u8>,
    pub src: Option<Prefix>,
    pub dst: Option<Prefix>,
    pub sport: Option<(u16, u16)>,
    pub dport: Option<(u16, u16)>,
    pub icmp_type: Option<u8>,
    pub icmp_code: Option<u8>,
}

/// The name of protocol `p` in the text form, if it has one.
pub fn proto_name(p: u8) -> Option<&'static str> {
    PROTOCOLS.iter().find(|(_, n)| *n == p).map(|(s, _)| *s)
}

/// Protocol `p` as the text form writes it: its name, else its number.
pub fn proto_text(p: u32) -> String {
    u8::try_from(p)
        .ok()
        .and_then(proto_name)
        .map_or_else(|| p.to_string(), str::to_string)
}

/// A port range as the text form writes it: `A`, or `A-B`.
pub fn range_text(r: &pb::PortRange) -> String {
    if r.first == r.last {
        r.first.to_string()
    } else {
        format!("{}-{}", r.first, r.last)
    }
}

/// Parses one rule's text into its wire form (syntax only: see [`check`]).
pub fn parse(text: &str) -> Result<pb::AclRule, String> {
    let mut words = text.split_whitespace();
    let Some(action) = words.next() else {
        return Err("a rule is ACTION [KEY=VALUE ...], and this one is empty".to_string());
    };
    if action.contains('=') {
        return Err(format!(
            "a rule starts with its action ({}), not {action:?}",
            ACTIONS.join(", ")
        ));
    }
    let mut r = pb::AclRule {
        action: action.to_string(),
        ..Default::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    for w in words {
        let Some((key, value)) = w.split_once('=') else {
            return Err(format!(
                "{w:?}: one action per rule, then KEY=VALUE words (keys: {})",
                KEYS.join(", ")
            ));
        };
        if !KEYS.contains(&key) {
            return Err(format!(
                "unknown key {key:?} in {w:?} (keys: {})",
                KEYS.join(", ")
            ));
        }
        if seen.contains(&key) {
            return Err(format!("{key} is given twice"));
        }
        seen.push(key);
        if value.is_empty() {
            return Err(format!("{key}= needs a value"));
        }
        let number = |what: &str| {
            value
                .parse::<u32>()
                .map_err(|_| format!("{w:?}: {key} must be {what}"))
        };
        match key {
            "proto" => {
                r.proto = Some(match PROTOCOLS.iter().find(|(n, _)| *n == value) {
                    Some((_, p)) => u32::from(*p),
                    None => number("tcp, udp, icmp, icmp6 or a protocol number (0 to 255)")?,
                })
            }
            "src" => r.src = value.to_string(),
            "dst" => r.dst = value.to_string(),
            "sport" | "dport" => {
                let range = match value.split_once('-') {
                    None => {
                        let p = number("a port or a range A-B (0 to 65535)")?;
                        (p, p)
                    }
                    Some((a, b)) => {
                        let bad = |_| format!("{w:?}: {key} must be a port or a range A-B");
                        (a.parse().map_err(bad)?, b.parse().map_err(bad)?)
                    }
                };
                let range = Some(pb::PortRange {
                    first: range.0,
                    last: range.1,
                });
                if key == "sport" {
                    r.sport = range;
                } else {
                    r.dport = range;
                }
            }
            "icmp-type" => r.icmp_type = Some(number("a number (0 to 255)")?),
            _ => r.icmp_code = Some(number("a number (0 to 255)")?),
        }
    }
    Ok(r)
}

/// Parses a list of rules: the words after `acl add NAME`, each a whole rule (`"permit
/// proto=tcp dport=80"`, one argument) or a part of one (a transaction line written without
/// quotes: `permit proto=tcp dport=80 deny`): every word that is not KEY=VALUE starts a rule.
pub fn parse_list<S: AsRef<str>>(words: &[S]) -> Result<Vec<pb::AclRule>, String> {
    let mut rules: Vec<String> = Vec::new();
    for w in words.iter().flat_map(|w| w.as_ref().split_whitespace()) {
        match rules.last_mut() {
            Some(r) if w.contains('=') => {
                r.push(' ');
                r.push_str(w);
            }
            None if w.contains('=') => {
                return Err(format!(
                    "a rule starts with its action ({}), not {w:?}",
                    ACTIONS.join(", ")
                ))
            }
            _ => rules.push(w.to_string()),
        }
    }
    if rules.is_empty() {
        return Err("an ACL needs at least one RULE".to_string());
    }
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| parse(r).map_err(|e| format!("rule {} ({r:?}): {e}", i + 1)))
        .collect()
}

/// A rule's text form, which [`parse`] reads back as the same rule.
pub fn format(r: &pb::AclRule) -> String {
    let mut s = r.action.clone();
    if let Some(p) = r.proto {
        s.push_str(&format!(" proto={}", proto_text(p)));
    }
    for (key, v) in [("src", &r.src), ("dst", &r.dst)] {
        if !v.is_empty() {
            s.push_str(&format!(" {key}={v}"));
        }
    }
    for (key, v) in [("sport", &r.sport), ("dport", &r.dport)] {
        if let Some(range) = v {
            s.push_str(&format!(" {key}={}", range_text(range)));
        }
    }
    for (key, v) in [("icmp-type", r.icmp_type), ("icmp-code", r.icmp_code)] {
        if let Some(n) = v {
            s.push_str(&format!(" {key}={n}"));
        }
    }
    s
}

/// An action by name.
fn action(s: &str) -> ApiResult<Action> {
    match s {
        "permit" => Ok(Action::Permit),
        "deny" => Ok(Action::Deny),
        "permit-reflect" => Ok(Action::PermitReflect),
        "" => Err(ApiError::invalid(format!(
            "action is required ({})",
            ACTIONS.join(", ")
        ))),
        a => Err(ApiError::invalid(format!(
            "action {a:?} is unknown ({})",
            ACTIONS.join(", ")
        ))),
    }
}

/// A port range of the request: 0 to 65535, first <= last.
fn ports(field: &str, r: &Option<pb::PortRange>) -> ApiResult<Option<(u16, u16)>> {
    let Some(r) = r else {
        return Ok(None);
    };
    let port = |p: u32| {
        u16::try_from(p)
            .map_err(|_| ApiError::invalid(format!("{field} {p} is not a port (0 to 65535)")))
    };
    let (a, b) = (port(r.first)?, port(r.last)?);
    if a > b {
        return Err(ApiError::invalid(format!(
            "{field} {a}-{b} is not a range: its first port is above its last"
        )));
    }
    Ok(Some((a, b)))
}

/// An ICMP type or code: 0 to 255.
fn icmp_value(field: &str, v: Option<u32>) -> ApiResult<Option<u8>> {
    v.map(|v| {
        u8::try_from(v)
            .map_err(|_| ApiError::invalid(format!("{field} {v} is out of range (0 to 255)")))
    })
    .transpose()
}

/// Validates a rule of the wire form (the messages name the field, as the text form
/// writes it).
pub fn check(r: &pb::AclRule) -> ApiResult<RuleSpec> {
    let action = action(&r.action)?;
    let proto = r
        .proto
        .map(|p| {
            u8::try_from(p).map_err(|_| {
                ApiError::invalid(format!("proto {p} is not an IP protocol number (0 to 255)"))
            })
        })
        .transpose()?;
    let prefix = |field: &str, s: &str| -> ApiResult<Option<Prefix>> {
        if s.is_empty() {
            return Ok(None);
        }
        if !s.contains('/') {
            return Err(ApiError::invalid(format!(
                "{field} {s:?} is not a CIDR (ADDRESS/LENGTH, e.g. 10.0.0.0/8 or 2001:db8::/32)"
            )));
        }
        Prefix::parse(field, s).map(Some)
    };
    let src = prefix("src", &r.src)?;
    let dst = prefix("dst", &r.dst)?;
    if let (Some(s), Some(d)) = (src, dst) {
        if s.family() != d.family() {
            return Err(ApiError::invalid(format!(
                "src {s} is {} but dst {d} is {}: a rule's prefixes are of one family",
                s.family().name(),
                d.family().name()
            )));
        }
    }
    let family = src.or(dst).map(|p| p.family());
    match (proto, family) {
        (Some(ICMP), Some(Family::V6)) => {
            return Err(ApiError::invalid(
                "proto icmp is IPv4's, and the rule's prefixes are IPv6: use proto=icmp6",
            ))
        }
        (Some(ICMP6), Some(Family::V4)) => {
            return Err(ApiError::invalid(
                "proto icmp6 is IPv6's, and the rule's prefixes are IPv4: use proto=icmp",
            ))
        }
        _ => {}
    }
    let sport = ports("sport", &r.sport)?;
    let dport = ports("dport", &r.dport)?;
    if (sport.is_some() || dport.is_some()) && !matches!(proto, Some(TCP | UDP)) {
        let field = if sport.is_some() { "sport" } else { "dport" };
        return Err(ApiError::invalid(format!(
            "{field} needs proto=tcp or proto=udp (ports are theirs), not {}",
            proto.map_or("a rule without proto=".to_string(), |p| format!(
                "proto={}",
                proto_text(u32::from(p))
            ))
        )));
    }
    let icmp_type = icmp_value("icmp-type", r.icmp_type)?;
    let icmp_code = icmp_value("icmp-code", r.icmp_code)?;
    if (icmp_type.is_some() || icmp_code.is_some()) && !matches!(proto, Some(ICMP | ICMP6)) {
        let field = if icmp_type.is_some() {
            "icmp-type"
        } else {
            "icmp-code"
        };
        return Err(ApiError::invalid(format!(
            "{field} needs proto=icmp or proto=icmp6"
        )));
    }
    if icmp_code.is_some() && icmp_type.is_none() {
        return Err(ApiError::invalid(
            "icmp-code needs icmp-type (a code is a type's)",
        ));
    }
    Ok(RuleSpec {
        action,
        proto,
        src,
        dst,
        sport,
        dport,
        icmp_type,
        icmp_code,
    })
}

impl RuleSpec {
    /// Its wire form, normalised (protocol as a number, prefixes as the switch prints
    /// them).
    pub fn to_pb(&self) -> pb::AclRule {
        let range = |r: Option<(u16, u16)>| {
            r.map(|(a, b)| pb::PortRange {
                first: u32::from(a),
                last: u32::from(b),
            })
        };
        let net = |p: Option<Prefix>| p.map(|p| p.to_string()).unwrap_or_default();
        pb::AclRule {
            action: self.action.name().to_string(),
            proto: self.proto.map(u32::from),
            src: net(self.src),
            dst: net(self.dst),
            sport: range(self.sport),
            dport: range(self.dport),
            icmp_type: self.icmp_type.map(u32::from),
            icmp_code: self.icmp_code.map(u32::from),
        }
    }

    /// The family it matches: its prefixes', else icmp's or icmp6's, else both (None).
    pub fn family(&self) -> Option<Family> {
        match (self.src.or(self.dst), self.proto) {
            (Some(p), _) => Some(p.family()),
            (None, Some(ICMP)) => Some(Family::V4),
            (None, Some(ICMP6)) => Some(Family::V6),
            _ => None,
        }
    }

    /// The dataplane's rule.
    pub fn to_rule(&self) -> Rule {
        let net = |p: Option<Prefix>| match p {
            None => Net::ANY,
            Some(p) => Net {
                addr: match p.addr() {
                    IpAddr::V4(a) => u128::from(u32::from(a)),
                    IpAddr::V6(a) => u128::from(a),
                },
                len: p.length(),
            },
        };
        let (sport, dport) = if self.icmp_type.is_some() {
            let one = |v: u8| (u16::from(v), u16::from(v));
            (
                self.icmp_type.map_or(Rule::ANY_PORT, one),
                self.icmp_code.map_or(Rule::ANY_PORT, one),
            )
        } else {
            (
                self.sport.unwrap_or(Rule::ANY_PORT),
                self.dport.unwrap_or(Rule::ANY_PORT),
            )
        };
        Rule {
            action: self.action,
            family: self.family().map(|f| match f {
                Family::V4 => DpFamily::V4,
                Family::V6 => DpFamily::V6,
            }),
            proto: self.proto,
            src: net(self.src),
            dst: net(self.dst),
            sport,
            dport,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rule(text: &str) -> ApiResult<RuleSpec> {
        check(&parse(text).map_err(ApiError::invalid)?)
    }

    #[test]
    fn text_becomes_the_wire_form() {
        let r = parse("permit proto=tcp src=10.0.0.0/8 dport=80").unwrap();
        assert_eq!(r.action, "permit");
        assert_eq!(r.proto, Some(6));
        assert_eq!(r.src, "10.0.0.0/8");
        assert_eq!(
            r.dport,
            Some(pb::PortRange {
                first: 80,
                last: 80
            })
        );
        assert_eq!(r.sport, None);
        let r = parse("deny  proto=icmp   icmp-type=3 icmp-code=4").unwrap();
        assert_eq!((r.icmp_type, r.icmp_code), (Some(3), Some(4)));
        assert_eq!(format(&r), "deny proto=icmp icmp-type=3 icmp-code=4");
        assert_eq!(
            parse("permit proto=47 sport=1024-65535").map(|r| format(&r)),
            Ok("permit proto=47 sport=1024-65535".to_string())
        );
    }

    #[test]
    fn bad_text_is_named() {
        for (text, what) in [
            ("", "empty"),
            ("proto=tcp", "starts with its action"),
            ("permit deny", "one action per rule"),
            ("permit colour=red", "unknown key \"colour\""),
            ("permit proto=tcp proto=udp", "proto is given twice"),
            (
                "permit proto=gre",
                "proto must be tcp, udp, icmp, icmp6 or a protocol number",
            ),
            ("permit proto=tcp dport=http", "dport must be a port"),
            (
                "permit proto=tcp dport=1-x",
                "dport must be a port or a range",
            ),
            ("permit src=", "src= needs a value"),
            ("permit icmp-type=-1", "icmp-type must be a number"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn lists_split_at_actions() {
        let one = parse_list(&["permit proto=tcp dport=80", "deny"]).unwrap();
        let words = parse_list(&["permit", "proto=tcp", "dport=80", "deny"]).unwrap();
        assert_eq!(one, words);
        assert_eq!(one.len(), 2);
        assert_eq!(one[1].action, "deny");
        assert!(parse_list::<&str>(&[])
            .unwrap_err()
            .contains("at least one RULE"));
        let e = parse_list(&["permit", "deny proto=tcp proto=udp"]).unwrap_err();
        assert!(
            e.starts_with("rule 2 (\"deny proto=tcp proto=udp\"): "),
            "{e}"
        );
        assert!(parse_list(&["dport=80 permit"])
            .unwrap_err()
            .contains("starts with"));
    }

    #[test]
    fn rules_are_checked() {
        for (text, what) in [
            (
                "allow",
                "action \"allow\" is unknown (permit, deny, permit-reflect)",
            ),
            (
                "permit proto=256",
                "proto 256 is not an IP protocol number (0 to 255)",
            ),
            ("permit src=10.0.0.0/33", "src 10.0.0.0/33"),
            ("permit src=10.0.0.300/8", "src"),
            ("permit dst=10.0.0.1", "dst \"10.0.0.1\" is not a CIDR"),
            (
                "permit src=10.0.0.1/8",
                "src 10.0.0.1/8 has host bits set: did you mean 10.0.0.0/8?",
            ),
            (
                "permit src=10.0.0.0/8 dst=2001:db8::/32",
                "a rule's prefixes are of one family",
            ),
            ("permit proto=icmp src=2001:db8::/32", "use proto=icmp6"),
            ("permit proto=icmp6 dst=10.0.0.0/8", "use proto=icmp"),
            (
                "permit proto=tcp dport=70000",
                "dport 70000 is not a port (0 to 65535)",
            ),
            ("permit proto=udp sport=90-80", "sport 90-80 is not a range"),
            ("permit dport=80", "dport needs proto=tcp or proto=udp"),
            (
                "permit proto=icmp sport=8",
                "sport needs proto=tcp or proto=udp (ports are theirs), not proto=icmp",
            ),
            (
                "permit icmp-type=8",
                "icmp-type needs proto=icmp or proto=icmp6",
            ),
            ("permit proto=tcp icmp-type=8", "icmp-type needs proto=icmp"),
            (
                "permit proto=icmp icmp-type=300",
                "icmp-type 300 is out of range (0 to 255)",
            ),
            ("permit proto=icmp icmp-code=1", "icmp-code needs icmp-type"),
        ] {
            let e = rule(text).unwrap_err();
            assert_eq!(e.code, crate::error::Code::Invalid, "{text}");
            assert!(e.message.contains(what), "{text:?}: {}", e.message);
        }
    }

    #[test]
    fn rules_become_dataplane_rules() {
        let r = rule("permit proto=tcp src=10.0.0.0/8 dport=80")
            .unwrap()
            .to_rule();
        assert_eq!(r.family, Some(DpFamily::V4));
        assert_eq!(
            r.src,
            Net {
                addr: 0x0a00_0000,
                len: 8
            }
        );
        assert_eq!(r.dst, Net::ANY);
        assert_eq!((r.sport, r.dport), (Rule::ANY_PORT, (80, 80)));
        let r = rule("deny proto=icmp icmp-type=8").unwrap().to_rule();
        assert_eq!((r.family, r.proto), (Some(DpFamily::V4), Some(1)));
        assert_eq!((r.sport, r.dport), ((8, 8), Rule::ANY_PORT));
        let r = rule("deny proto=icmp6 icmp-type=3 icmp-code=4")
            .unwrap()
            .to_rule();
        assert_eq!(
            (r.family, r.sport, r.dport),
            (Some(DpFamily::V6), (3, 3), (4, 4))
        );
        let r = rule("permit-reflect dst=2001:db8::/32").unwrap().to_rule();
        assert_eq!(r.action, Action::PermitReflect);
        assert_eq!(r.dst.addr, 0x2001_0db8 << 96);
        assert_eq!(rule("deny").unwrap().to_rule(), Rule::any(Action::Deny));
    }

    /// Words rules are made of: every key, good and bad values, stray words.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("permit".to_string()),
            Just("deny".to_string()),
            Just("permit-reflect".to_string()),
            "[a-z]{0,6}",
            prop::sample::select(KEYS.to_vec()).prop_flat_map(|k| {
                prop_oneof![
                    Just("tcp".to_string()),
                    Just("icmp6".to_string()),
                    "[0-9]{1,6}",
                    "[0-9]{1,5}-[0-9]{1,5}",
                    "10\\.[0-9]{1,3}\\.0\\.0/[0-9]{1,2}",
                    "2001:db8::/[0-9]{1,3}",
                    "[ -~]{0,8}",
                ]
                .prop_map(move |v| format!("{k}={v}"))
            }),
        ]
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::collection::vec(word(), 0..8).prop_map(|w| w.join(" ")),
            "\\PC{0,40}",
        ]
    }

    proptest! {
        /// Any text, and any cut of it: no panic; a rule parsed re-prints to text that
        /// parses to the same rule; a rule that checks out re-prints (normalised) to one
        /// that checks out the same.
        #[test]
        fn text_round_trips(t in text(), cut in 0usize..64) {
            let cuts = [t.clone(), t.chars().take(cut).collect::<String>()];
            for t in &cuts {
                let _ = parse_list(&[t]);
                let Ok(r) = parse(t) else { continue };
                prop_assert_eq!(parse(&format(&r)), Ok(r.clone()));
                if let Ok(spec) = check(&r) {
                    let again = parse(&format(&spec.to_pb())).map_err(ApiError::invalid);
                    prop_assert_eq!(again.and_then(|p| check(&p)), Ok(spec));
                    let _ = spec.to_rule();
                }
            }
        }
    }
}
