//! The session table's settings and flushes without DPDK: every bad key and value refused
//! with INVALID_ARGUMENT and a message naming the key (the model unchanged), the diff of a
//! good change, flushes checked and not persisted, and the persisted form replayed (also
//! through the state file).

use super::session::{SessionSettings, MAX_LIMIT, MAX_TIMEOUT};
use super::tests::{ch, limits, null, persisted_round_trip};
use super::*;
use crate::error::Code;
use vswitch_proto::v1::change::Change as C;

fn stage(m: &Model, changes: Vec<C>) -> ApiResult<Staged> {
    m.stage(&changes.into_iter().map(ch).collect::<Vec<_>>(), &limits())
}

fn set(f: impl FnOnce(&mut pb::SetSessionConfigRequest)) -> C {
    let mut r = pb::SetSessionConfigRequest::default();
    f(&mut r);
    C::SetSessionConfig(r)
}

fn flush(iface: &str) -> C {
    C::FlushSessions(pb::FlushSessionsRequest {
        iface: iface.into(),
    })
}

fn base() -> Model {
    stage(&Model::new(), vec![null("a")]).unwrap().model
}

#[test]
fn bad_settings_are_refused_naming_the_key_and_change_nothing() {
    let m = base();
    let cases: Vec<(C, &str)> = vec![
        (set(|_| {}), "nothing to set: give limit, iface-limit"),
        (
            set(|r| r.limit = Some(0)),
            "limit must be from 1 to 458752, not 0",
        ),
        (
            set(|r| r.limit = Some(MAX_LIMIT + 1)),
            "limit must be from 1 to 458752, not 458753",
        ),
        (
            set(|r| r.iface_limit = Some(0)),
            "iface-limit must be from 1 to the limit (262144), not 0",
        ),
        (
            set(|r| {
                r.limit = Some(100);
                r.iface_limit = Some(101)
            }),
            "iface-limit must be from 1 to the limit (100), not 101",
        ),
        (
            set(|r| r.timeout_tcp = Some(0)),
            "timeout-tcp must be from 1 to 604800 seconds, not 0",
        ),
        (
            set(|r| r.timeout_tcp_transitory = Some(MAX_TIMEOUT + 1)),
            "timeout-tcp-transitory must be from 1 to 604800 seconds, not 604801",
        ),
        (
            set(|r| r.timeout_udp = Some(0)),
            "timeout-udp must be from 1 to 604800 seconds",
        ),
        (
            set(|r| r.timeout_icmp = Some(u32::MAX)),
            "timeout-icmp must be from 1 to 604800 seconds",
        ),
        // A good key beside a bad one: nothing is set.
        (
            set(|r| {
                r.timeout_udp = Some(60);
                r.timeout_icmp = Some(0)
            }),
            "timeout-icmp must be",
        ),
    ];
    for (c, want) in cases {
        let e = stage(&m, vec![c.clone()]).unwrap_err();
        assert_eq!(e.code, Code::Invalid, "{c:?}");
        assert!(e.message.starts_with(want), "{c:?}: {}", e.message);
        assert!(!e.message.contains('\n'));
    }
    // A limit lowered under a set iface-limit: the message says what to do.
    let m = stage(&m, vec![set(|r| r.iface_limit = Some(500))])
        .unwrap()
        .model;
    let e = stage(&m, vec![set(|r| r.limit = Some(100))]).unwrap_err();
    assert_eq!(
        e.message,
        "limit 100 is below iface-limit 500: lower iface-limit too"
    );
    assert_eq!(m.session_config.iface_limit, Some(500));
    assert_eq!(m.session_config.limit, session::DEFAULT_LIMIT);
}

#[test]
fn a_good_setting_is_in_the_diff_and_keeps_the_rest() {
    let m = base();
    let s = stage(&m, vec![set(|r| r.timeout_udp = Some(60))]).unwrap();
    assert!(s.diff.sessions && s.diff.persistent);
    assert_eq!(
        s.diff.events,
        vec![("set_session_config", "sessions".into())]
    );
    let c = s.model.session_config;
    assert_eq!(c.timeouts.udp, 60);
    assert_eq!(c.timeouts.tcp, SessionSettings::default().timeouts.tcp);
    // iface-limit follows the limit until it is set.
    let m = stage(&s.model, vec![set(|r| r.limit = Some(1000))])
        .unwrap()
        .model;
    assert_eq!(m.session_config.dataplane().iface_limit, 1000);
    let m = stage(&m, vec![set(|r| r.iface_limit = Some(10))])
        .unwrap()
        .model;
    let d = m.session_config.dataplane();
    assert_eq!((d.limit, d.iface_limit, d.timeouts.udp), (1000, 10, 60));
    let pb = session::config_pb(&m);
    assert!(pb.iface_limit_set && pb.iface_limit == 10 && pb.timeout_udp == 60);
}

#[test]
fn flushes_are_checked_and_not_persisted() {
    let m = base();
    let s = stage(&m, vec![flush(""), flush("a")]).unwrap();
    assert!(!s.diff.persistent && !s.diff.sessions);
    assert_eq!(
        s.diff.session_flushes,
        vec![(0, None), (1, Some("a".to_string()))]
    );
    assert_eq!(
        s.diff.events,
        vec![
            ("flush_sessions", "all".into()),
            ("flush_sessions", "a".into())
        ]
    );
    let e = stage(&m, vec![flush("nope")]).unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert_eq!(e.message, r#"interface "nope" not found"#);
    let e = stage(&m, vec![flush("bvi:br9")]).unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert!(is_action(&flush("a")) && !is_action(&set(|r| r.limit = Some(5))));
}

#[test]
fn the_persisted_form_restores_the_settings() {
    // Defaults: nothing persisted.
    assert!(base()
        .changes()
        .iter()
        .all(|c| !matches!(c, C::SetSessionConfig(_))));
    let m = stage(
        &base(),
        vec![
            set(|r| {
                r.limit = Some(5000);
                r.timeout_tcp = Some(3600)
            }),
            set(|r| r.timeout_icmp = Some(9)),
        ],
    )
    .unwrap()
    .model;
    let (changes, text) = persisted_round_trip(&m);
    assert!(text.contains("\"session_config\""));
    assert_eq!(
        changes
            .iter()
            .filter(|c| matches!(c, C::SetSessionConfig(_)))
            .count(),
        1
    );
    // iface-limit unset stays unset (it follows the limit after a restart too).
    assert_eq!(m.session_config.iface_limit, None);
    let m2 = stage(&m, vec![set(|r| r.iface_limit = Some(7))])
        .unwrap()
        .model;
    persisted_round_trip(&m2);
}
