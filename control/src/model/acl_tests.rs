//! ACLs without DPDK: every bad input with its error code and one-line message (and the
//! model unchanged), add / set / delete / bind / unbind and what the diff says, interfaces
//! deleted with their bindings, and the persisted form replayed (also through the state
//! file).

use super::tests::{ch, limits, null, persisted_round_trip};
use super::*;
use crate::error::Code;
use vswitch_proto::v1::change::Change as C;

fn rules(texts: &[&str]) -> Vec<pb::AclRule> {
    if texts.is_empty() {
        return vec![];
    }
    acl_rule::parse_list(texts).unwrap()
}

fn add(name: &str, texts: &[&str]) -> C {
    C::AddAcl(pb::AddAclRequest {
        name: name.into(),
        rules: rules(texts),
    })
}

fn set(name: &str, texts: &[&str]) -> C {
    C::SetAcl(pb::SetAclRequest {
        name: name.into(),
        rules: rules(texts),
    })
}

fn bind(iface: &str, acl: &str, d: &str) -> C {
    C::BindAcl(pb::BindAclRequest {
        iface: iface.into(),
        acl: acl.into(),
        direction: d.into(),
    })
}

fn unbind(iface: &str, d: &str) -> C {
    C::UnbindAcl(pb::UnbindAclRequest {
        iface: iface.into(),
        direction: d.into(),
    })
}

fn del(name: &str) -> C {
    C::DeleteAcl(pb::DeleteAclRequest { name: name.into() })
}

fn stage(m: &Model, changes: Vec<C>) -> ApiResult<Staged> {
    m.stage(&changes.into_iter().map(ch).collect::<Vec<_>>(), &limits())
}

fn build_on(m: &Model, changes: Vec<C>) -> Model {
    stage(m, changes).unwrap().model
}

/// Interfaces a and b, a bridge, ACL web (2 rules) bound to a in.
fn base() -> Model {
    build_on(
        &Model::new(),
        vec![
            null("a"),
            null("b"),
            C::AddBridge(pb::AddBridgeRequest {
                name: "br0".into(),
                ..Default::default()
            }),
            add("web", &["permit proto=tcp dport=80", "deny"]),
            add("spare", &["permit"]),
            bind("a", "web", "in"),
        ],
    )
}

/// `c` on `m` fails with `code` and a message containing `text`, and changes nothing.
fn refused(m: &Model, c: C, code: Code, text: &str) {
    let before = m.clone();
    let e = stage(m, vec![c]).unwrap_err();
    assert_eq!(e.code, code, "{}", e.message);
    assert!(e.message.contains(text), "{:?} lacks {text:?}", e.message);
    assert!(!e.message.contains('\n'));
    assert_eq!(*m, before);
}

#[test]
fn acls_are_added_set_bound_and_deleted() {
    let m = base();
    assert_eq!(m.acls.get("web").unwrap().len(), 2);
    assert_eq!(
        m.acl_bindings.get(&(Arc::from("a"), acl::Direction::In)),
        Some(&Arc::from("web"))
    );
    // Adding an ACL builds it, no plan (nothing binds it yet).
    let s = stage(&m, vec![add("new", &["deny"])]).unwrap();
    assert_eq!(s.diff.acls, BTreeSet::from(["new".to_string()]));
    assert!(!s.diff.plan && s.diff.persistent);
    assert_eq!(s.diff.events, [("add_acl", "new".to_string())]);
    // Setting a bound ACL's rules: built again, and a new plan.
    let s = stage(&m, vec![set("web", &["deny proto=udp", "permit"])]).unwrap();
    assert_eq!(s.diff.acls, BTreeSet::from(["web".to_string()]));
    assert!(s.diff.plan);
    assert_eq!(s.model.acls.get("web").unwrap().len(), 2);
    assert_eq!(
        s.model.acl_bindings.len(),
        1,
        "bindings stay when the rules are replaced"
    );
    // An unbound one: no plan.
    let s = stage(&m, vec![set("spare", &["deny"])]).unwrap();
    assert!(!s.diff.plan);
    // Bind and unbind: a plan, nothing built.
    let s = stage(&m, vec![bind("b", "web", "out"), unbind("a", "in")]).unwrap();
    assert!(s.diff.plan && s.diff.acls.is_empty());
    assert_eq!(
        s.diff.events,
        [
            ("bind_acl", "b/out".to_string()),
            ("unbind_acl", "a/in".to_string())
        ]
    );
    // Unbound, an ACL can go.
    let s = stage(&m, vec![unbind("a", "in"), del("web")]).unwrap();
    assert!(s.model.acls.get("web").is_none());
    assert!(s.diff.acls.contains("web"));
    // One ACL on two interfaces, both ways; and a tunnel takes one too.
    let m2 = build_on(&m, vec![bind("a", "web", "out"), bind("b", "web", "in")]);
    assert_eq!(acl::bindings_of(&m2, "web").count(), 3);
    let p = acl::to_pb(&m2, "web", None).unwrap();
    assert_eq!(p.hits, [0, 0]);
    assert_eq!(p.default_hits, 0);
    assert_eq!(p.rules[0].proto, Some(6));
    assert_eq!(
        p.bindings
            .iter()
            .map(|b| format!("{} {}", b.iface, b.direction))
            .collect::<Vec<_>>(),
        ["a in", "a out", "b in"]
    );
}

#[test]
fn bad_acls_are_refused_and_change_nothing() {
    let m = base();
    let bad = |texts: &[&str], text: &str| {
        refused(&m, add("x", texts), Code::Invalid, text);
        refused(&m, set("web", texts), Code::Invalid, text);
    };
    bad(
        &["permit proto=tcp dport=70000"],
        "rule 1: dport 70000 is not a port",
    );
    bad(
        &["deny", "permit proto=udp sport=9-8"],
        "rule 2: sport 9-8 is not a range",
    );
    bad(&["permit src=10.0.0.256/8"], "rule 1: src");
    bad(
        &["permit src=10.1.0.0/8"],
        "has host bits set: did you mean 10.0.0.0/8?",
    );
    bad(&["permit dst=nowhere"], "dst \"nowhere\" is not a CIDR");
    bad(&["allow"], "rule 1: action \"allow\" is unknown");
    bad(
        &["permit proto=300"],
        "proto 300 is not an IP protocol number",
    );
    bad(
        &["permit icmp-type=8"],
        "icmp-type needs proto=icmp or proto=icmp6",
    );
    bad(
        &["permit proto=icmp icmp-code=0"],
        "icmp-code needs icmp-type",
    );
    bad(&["permit dport=53"], "dport needs proto=tcp or proto=udp");
    bad(&["permit proto=icmp dst=2001:db8::/32"], "use proto=icmp6");
    bad(
        &["permit src=10.0.0.0/8 dst=2001:db8::/32"],
        "a rule's prefixes are of one family",
    );
    bad(&[], "an ACL needs at least one rule");
    let many = vec![
        pb::AclRule {
            action: "deny".into(),
            ..Default::default()
        };
        acl::MAX_RULES + 1
    ];
    let too_many = C::AddAcl(pb::AddAclRequest {
        name: "x".into(),
        rules: many,
    });
    for (c, code, text) in [
        (too_many, Code::Invalid, "at most 65535 rules"),
        (
            add("bad name", &["deny"]),
            Code::Invalid,
            "name \"bad name\"",
        ),
        (add("", &["deny"]), Code::Invalid, "name must not be empty"),
        (
            add("web", &["deny"]),
            Code::Exists,
            "acl \"web\" exists already",
        ),
        (
            set("nope", &["deny"]),
            Code::NotFound,
            "acl \"nope\" not found",
        ),
        (del("nope"), Code::NotFound, "acl \"nope\" not found"),
        (
            del("web"),
            Code::Conflict,
            "bound to a in (acl unbind a in first)",
        ),
    ] {
        refused(&m, c, code, text);
    }
}

#[test]
fn bad_bindings_are_refused_and_change_nothing() {
    let m = base();
    for (c, code, text) in [
        (
            bind("a", "nope", "out"),
            Code::NotFound,
            "acl \"nope\" not found",
        ),
        (
            bind("ghost", "web", "in"),
            Code::NotFound,
            "interface \"ghost\" not found",
        ),
        (
            bind("bvi:br0", "web", "in"),
            Code::Invalid,
            "not supported yet",
        ),
        (
            bind("a", "web", "sideways"),
            Code::Invalid,
            "not \"sideways\"",
        ),
        (bind("a", "web", ""), Code::Invalid, "direction is required"),
        (bind("", "web", "in"), Code::Invalid, "iface is required"),
        (bind("a", "", "in"), Code::Invalid, "acl is required"),
        (
            bind("a", "spare", "in"),
            Code::Exists,
            "a in has acl \"web\" already",
        ),
        (
            unbind("a", "out"),
            Code::NotFound,
            "no acl is bound to a out",
        ),
        (unbind("b", "in"), Code::NotFound, "no acl is bound to b in"),
        (
            unbind("ghost", "in"),
            Code::NotFound,
            "interface \"ghost\" not found",
        ),
    ] {
        refused(&m, c, code, text);
    }
    // In a batch, the failing change is named and nothing is applied.
    let before = m.clone();
    let e = stage(&m, vec![unbind("a", "in"), del("web"), del("web")]).unwrap_err();
    assert!(
        e.message
            .starts_with("change 3 of 3 (delete_acl): acl \"web\" not found"),
        "{}",
        e.message
    );
    assert_eq!(m, before);
}

#[test]
fn deleting_an_interface_drops_its_bindings() {
    let m = build_on(
        &base(),
        vec![bind("a", "spare", "out"), bind("b", "web", "out")],
    );
    let s = stage(
        &m,
        vec![C::DeleteInterface(pb::DeleteInterfaceRequest {
            name: "a".into(),
        })],
    )
    .unwrap();
    assert!(s.diff.plan);
    let left: Vec<_> = s.model.acl_bindings.keys().cloned().collect();
    assert_eq!(left, [(Arc::from("b"), acl::Direction::Out)]);
    // The ACLs stay, and web (no longer bound to a) can go once b lets it go.
    assert_eq!(s.model.acls.len(), 2);
    let m2 = build_on(&s.model, vec![unbind("b", "out"), del("web")]);
    assert!(m2.acl_bindings.is_empty());
    // Added again under the same name, the interface has no ACL.
    let m3 = build_on(&s.model, vec![null("a")]);
    assert_eq!(m3.acl_bindings.len(), 1);
}

/// ACLs and bindings persisted: replaying `changes()` gives the same model (bindings
/// after the ACLs and interfaces they need), and so does the state file's form; a journal
/// that deletes a bound interface replays too.
#[test]
fn the_persisted_form_restores_acls_and_bindings() {
    let m = build_on(
        &base(),
        vec![
            add(
                "mixed",
                &[
                    "permit-reflect proto=udp src=10.0.0.0/8 sport=1024-65535 dport=53",
                    "deny proto=icmp6 dst=2001:db8::/32 icmp-type=128 icmp-code=0",
                    "permit proto=47",
                    "deny",
                ],
            ),
            bind("b", "mixed", "out"),
            bind("a", "mixed", "out"),
        ],
    );
    assert_eq!(m.objects(), 3 + 3 + 3);
    let (changes, text) = persisted_round_trip(&m);
    assert!(text.contains("\"acls\"") && text.contains("\"acl_bindings\""));
    let names: Vec<&str> = changes.iter().map(change_name).collect();
    let first_bind = names.iter().position(|n| *n == "bind_acl").unwrap();
    let last_acl = names.iter().rposition(|n| *n == "add_acl").unwrap();
    assert!(last_acl < first_bind);
    assert_eq!(names.iter().filter(|n| **n == "bind_acl").count(), 3);
    // The rules are kept as the switch holds them.
    let mixed = changes
        .iter()
        .find_map(|c| match c {
            C::AddAcl(r) if r.name == "mixed" => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        mixed.rules.iter().map(acl_rule::format).collect::<Vec<_>>(),
        [
            "permit-reflect proto=udp src=10.0.0.0/8 sport=1024-65535 dport=53",
            "deny proto=icmp6 dst=2001:db8::/32 icmp-type=128 icmp-code=0",
            "permit proto=47",
            "deny",
        ]
    );
    // A journal: the snapshot, then a transaction that deletes a bound interface.
    let journal = [
        ch(C::DeleteInterface(pb::DeleteInterfaceRequest {
            name: "a".into(),
        })),
        ch(unbind("b", "out")),
    ];
    let mut replayed = Model::new();
    let snapshot: Vec<pb::Change> = changes.into_iter().map(ch).collect();
    replayed.replay(&snapshot, &limits()).unwrap();
    replayed.replay(&journal, &limits()).unwrap();
    let direct = build_on(
        &m,
        vec![
            C::DeleteInterface(pb::DeleteInterfaceRequest { name: "a".into() }),
            unbind("b", "out"),
        ],
    );
    assert_eq!(replayed, direct);
    assert!(replayed.acl_bindings.is_empty());
}
