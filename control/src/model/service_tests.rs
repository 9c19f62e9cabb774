//! Services without DPDK: every bad input with its error code and one-line message (and
//! the model unchanged), add / set / delete and what the diff says, the persisted form
//! replayed (also through the state file), the plan's services (NatPlan lookups), and the
//! build cache (a spec unchanged is not built again).

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::tests::{ch, limits, null, persisted_round_trip};
use super::*;
use crate::error::Code;
use vswitch_dataplane::nat::{addr_bits, NatPlan, TCP, UDP};
use vswitch_proto::v1::change::Change as C;

fn backend(ip: &str, port: u32, weight: Option<u32>) -> pb::Backend {
    pb::Backend {
        ip: ip.into(),
        port,
        weight,
    }
}

fn add(
    name: &str,
    vip: &str,
    port: u32,
    proto: &str,
    backends: Vec<pb::Backend>,
) -> pb::AddServiceRequest {
    pb::AddServiceRequest {
        name: name.into(),
        vip: vip.into(),
        port,
        proto: proto.into(),
        backends,
        nodeport: None,
        affinity: String::new(),
        vrf: 0,
    }
}

fn web() -> pb::AddServiceRequest {
    add(
        "web",
        "10.96.0.10",
        80,
        "tcp",
        vec![
            backend("10.1.0.5", 8080, None),
            backend("10.1.0.6", 8080, Some(2)),
        ],
    )
}

fn stage(m: &Model, changes: Vec<C>) -> ApiResult<Staged> {
    m.stage(&changes.into_iter().map(ch).collect::<Vec<_>>(), &limits())
}

fn build_on(m: &Model, changes: Vec<C>) -> Model {
    stage(m, changes).unwrap().model
}

fn addr(iface: &str, cidr: &str) -> C {
    C::AddAddress(pb::AddAddressRequest {
        iface: iface.into(),
        address: cidr.into(),
    })
}

fn route(prefix: &str, via: &str, vrf: u32) -> C {
    C::AddRoute(pb::AddRouteRequest {
        prefix: prefix.into(),
        vrf,
        nexthops: vec![pb::NextHop {
            via: via.into(),
            iface: String::new(),
        }],
        onlink: false,
    })
}

/// Interface a (10.0.0.1/24, 2001:db8::1/64) with a route to 10.1.0.0/16 and one to
/// 2001:db8:1::/48, VRF 5 (empty), and service web (two backends).
pub(super) fn base() -> Model {
    build_on(
        &Model::new(),
        vec![
            null("a"),
            addr("a", "10.0.0.1/24"),
            addr("a", "2001:db8::1/64"),
            route("10.1.0.0/16", "10.0.0.254", 0),
            route("2001:db8:1::/48", "2001:db8::fe", 0),
            C::AddVrf(pb::AddVrfRequest { id: 5 }),
            C::AddService(web()),
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
fn bad_input_is_refused_and_changes_nothing() {
    let m = base();
    let b = || vec![backend("10.1.0.5", 80, None)];
    let with = |f: &dyn Fn(&mut pb::AddServiceRequest)| {
        let mut r = add("db", "10.96.0.11", 5432, "tcp", b());
        f(&mut r);
        C::AddService(r)
    };
    refused(
        &m,
        with(&|r| r.port = 0),
        Code::Invalid,
        "port must be from 1 to 65535, not 0",
    );
    refused(
        &m,
        with(&|r| r.port = 65536),
        Code::Invalid,
        "port must be from 1 to 65535, not 65536",
    );
    refused(
        &m,
        with(&|r| r.proto = "sctp".into()),
        Code::Invalid,
        "proto must be tcp or udp, not \"sctp\"",
    );
    refused(
        &m,
        with(&|r| r.proto = String::new()),
        Code::Invalid,
        "proto is required",
    );
    refused(
        &m,
        with(&|r| r.vip = "10.96.0".into()),
        Code::Invalid,
        "vip",
    );
    refused(
        &m,
        with(&|r| r.vip = "224.0.0.1".into()),
        Code::Invalid,
        "vip 224.0.0.1 is a multicast address",
    );
    refused(
        &m,
        with(&|r| r.name = "bad name".into()),
        Code::Invalid,
        "name",
    );
    refused(
        &m,
        with(&|r| r.affinity = "cookie".into()),
        Code::Invalid,
        "affinity must be client-ip or none",
    );
    refused(
        &m,
        with(&|r| r.nodeport = Some(0)),
        Code::Invalid,
        "nodeport must be from 1 to 65535, not 0",
    );
    refused(
        &m,
        with(&|r| r.nodeport = Some(70000)),
        Code::Invalid,
        "nodeport must be from 1 to 65535",
    );
    refused(&m, with(&|r| r.vrf = 7), Code::NotFound, "vrf 7 not found");
    // Families mixed.
    refused(
        &m,
        with(&|r| r.backends = vec![backend("2001:db8:1::5", 80, None)]),
        Code::Invalid,
        "backend 1 ([2001:db8:1::5]:80) is IPv6 but the vip 10.96.0.11 is IPv4",
    );
    // Backends: port, weight, duplicates, reachability.
    refused(
        &m,
        with(&|r| r.backends = vec![backend("10.1.0.5", 0, None)]),
        Code::Invalid,
        "backend 1 (10.1.0.5) port must be from 1 to 65535, not 0",
    );
    refused(
        &m,
        with(&|r| r.backends = vec![backend("10.1.0.5", 80, Some(70000))]),
        Code::Invalid,
        "backend 1 (10.1.0.5:80) weight must be from 0 to 65535",
    );
    refused(
        &m,
        with(&|r| {
            r.backends = vec![
                backend("10.1.0.5", 80, None),
                backend("10.1.0.5", 80, Some(3)),
            ]
        }),
        Code::Invalid,
        "backend 2 (10.1.0.5:80) is given twice",
    );
    refused(
        &m,
        with(&|r| {
            r.backends = vec![
                backend("10.1.0.5", 80, None),
                backend("172.16.0.9", 80, None),
            ]
        }),
        Code::Invalid,
        "backend 2 (172.16.0.9:80): 172.16.0.9 is outside every network vrf 0 reaches",
    );
    refused(
        &m,
        with(&|r| r.backends = vec![backend("nope", 80, None)]),
        Code::Invalid,
        "backend 1 ip \"nope\" is not an IP address",
    );
    // In VRF 5 nothing is reachable.
    refused(
        &m,
        with(&|r| r.vrf = 5),
        Code::Invalid,
        "outside every network vrf 5 reaches",
    );
    // Duplicates of another service.
    refused(
        &m,
        C::AddService(web()),
        Code::Exists,
        "service \"web\" exists already",
    );
    refused(
        &m,
        C::AddService(add("web2", "10.96.0.10", 80, "tcp", b())),
        Code::Exists,
        "vip 10.96.0.10:80 tcp in vrf 0 is service \"web\"'s already",
    );
    // The same VIP and port for UDP is another front.
    assert!(stage(
        &m,
        vec![C::AddService(add("web2", "10.96.0.10", 80, "udp", b()))]
    )
    .is_ok());
    let np = |name: &str, vip: &str| {
        let mut r = add(name, vip, 80, "tcp", b());
        r.nodeport = Some(30080);
        C::AddService(r)
    };
    let m2 = build_on(&m, vec![np("np1", "10.96.0.20")]);
    refused(
        &m2,
        np("np2", "10.96.0.21"),
        Code::Exists,
        "nodeport 30080 tcp in vrf 0 is service \"np1\"'s already",
    );
    // A batch: the error names the change, nothing applied.
    let e = stage(
        &m,
        vec![
            with(&|_| {}),
            with(&|r| {
                r.name = "db2".into();
                r.port = 0;
            }),
        ],
    )
    .unwrap_err();
    assert!(
        e.message.starts_with("change 2 of 2 (add_service): port"),
        "{}",
        e.message
    );
    // set and del of a service that is not there.
    refused(
        &m,
        C::SetServiceBackends(pb::SetServiceBackendsRequest {
            name: "nope".into(),
            backends: b(),
        }),
        Code::NotFound,
        "service \"nope\" not found",
    );
    refused(
        &m,
        C::SetServiceBackends(pb::SetServiceBackendsRequest {
            name: "web".into(),
            backends: vec![backend("192.168.9.9", 80, None)],
        }),
        Code::Invalid,
        "backend 1 (192.168.9.9:80): 192.168.9.9 is outside every network",
    );
    refused(
        &m,
        C::DeleteService(pb::DeleteServiceRequest {
            name: "nope".into(),
        }),
        Code::NotFound,
        "service \"nope\" not found",
    );
}

#[test]
fn a_default_route_or_a_connected_subnet_reaches_backends() {
    let m = base();
    // Connected subnet of a.
    let r = add(
        "c",
        "10.96.0.30",
        80,
        "tcp",
        vec![backend("10.0.0.9", 80, None)],
    );
    assert!(stage(&m, vec![C::AddService(r.clone())]).is_ok());
    let far = add(
        "far",
        "10.96.0.31",
        80,
        "tcp",
        vec![backend("198.51.100.7", 80, None)],
    );
    assert!(stage(&m, vec![C::AddService(far.clone())]).is_err());
    let m = build_on(&m, vec![route("0.0.0.0/0", "10.0.0.254", 0)]);
    assert!(stage(&m, vec![C::AddService(far)]).is_ok());
    // IPv6 and no backends at all.
    let v6 = add(
        "v6",
        "fd00::10",
        443,
        "tcp",
        vec![backend("2001:db8:1::5", 8443, None)],
    );
    let none = add("none", "10.96.0.32", 53, "udp", vec![]);
    let m = build_on(&m, vec![C::AddService(v6), C::AddService(none)]);
    assert!(m.services.get("none").unwrap().backends.is_empty());
    assert_eq!(m.services.get("v6").unwrap().backends[0].port, 8443);
}

#[test]
fn services_are_added_set_and_deleted() {
    let m = base();
    let spec = m.services.get("web").unwrap().clone();
    assert_eq!(spec.proto, TCP);
    assert_eq!(spec.port, 80);
    assert_eq!(spec.backends.len(), 2);
    assert_eq!(spec.backends[0].weight, 1, "weight defaults to 1");
    assert_eq!(spec.backends[1].weight, 2);
    let s = stage(
        &m,
        vec![C::SetServiceBackends(pb::SetServiceBackendsRequest {
            name: "web".into(),
            backends: vec![backend("10.1.0.7", 80, Some(0))],
        })],
    )
    .unwrap();
    assert!(s.diff.plan && s.diff.persistent);
    assert_eq!(s.diff.services, BTreeSet::from(["web".to_string()]));
    assert_eq!(s.diff.events, [("set_service_backends", "web".to_string())]);
    let after = s.model.services.get("web").unwrap();
    assert_eq!(after.backends.len(), 1);
    assert_eq!(after.backends[0].weight, 0, "0 drains");
    assert_eq!(
        (after.vip, after.port),
        (spec.vip, spec.port),
        "the front stays"
    );
    // Delete frees the front and the nodeport.
    let mut r = add("np", "10.96.0.20", 80, "tcp", vec![]);
    r.nodeport = Some(30080);
    let m = build_on(&m, vec![C::AddService(r.clone())]);
    let s = stage(
        &m,
        vec![
            C::DeleteService(pb::DeleteServiceRequest { name: "np".into() }),
            C::DeleteService(pb::DeleteServiceRequest { name: "web".into() }),
        ],
    )
    .unwrap();
    assert!(s.model.services.is_empty());
    assert!(s.model.service_fronts.is_empty() && s.model.service_nodeports.is_empty());
    let again = build_on(&s.model, vec![C::AddService(r), C::AddService(web())]);
    assert_eq!(again.services.len(), 2);
}

#[test]
fn the_persisted_form_replays() {
    let mut r = add(
        "dns",
        "fd00::53",
        53,
        "udp",
        vec![backend("2001:db8:1::53", 5353, Some(0))],
    );
    r.nodeport = Some(30053);
    r.affinity = "client-ip".into();
    let m = build_on(&base(), vec![C::AddService(r)]);
    let (changes, text) = persisted_round_trip(&m);
    assert!(changes
        .iter()
        .any(|c| matches!(c, C::AddService(r) if r.name == "dns" && r.nodeport == Some(30053))));
    assert!(text.contains("\"services\""), "{text}");
    let dns = m.services.get("dns").unwrap();
    assert!(dns.affinity);
    assert_eq!(dns.proto, UDP);
}

/// The services of `m`, built (or taken from `cache` when their spec is the same).
fn built(
    m: &Model,
    cache: &BTreeMap<String, Arc<vswitch_dataplane::nat::Service>>,
) -> BTreeMap<String, Arc<vswitch_dataplane::nat::Service>> {
    service::names(m)
        .filter_map(|n| Some((n.clone(), service::build(m, n, 2, cache.get(n))?)))
        .collect()
}

#[test]
fn the_plan_holds_every_service_by_vip_and_nodeport() {
    let mut r = add(
        "np",
        "10.96.0.20",
        8080,
        "udp",
        vec![backend("10.1.0.9", 80, None)],
    );
    r.nodeport = Some(30080);
    let m = build_on(&base(), vec![C::AddService(r)]);
    let b = built(&m, &BTreeMap::new());
    let services = service::plan(&m, &b);
    assert_eq!(services.len(), 2);
    let plan = NatPlan::new(services, vec![], vec![]);
    let ip = |s: &str| addr_bits(s.parse::<IpAddr>().unwrap());
    let web = plan
        .service(0, TCP, ip("10.96.0.10"), 80)
        .expect("web by its vip");
    assert_eq!(web.spec.name, "web");
    assert!(plan.service(0, UDP, ip("10.96.0.10"), 80).is_none());
    assert!(plan.service(5, TCP, ip("10.96.0.10"), 80).is_none());
    assert_eq!(plan.nodeport(0, UDP, 30080).unwrap().spec.name, "np");
    assert!(plan.nodeport(0, TCP, 30080).is_none());
    // Weights: backend 2 (weight 2) takes about twice backend 1's share.
    let sh = web.shares();
    assert!(sh[1] > sh[0] * 3 / 2, "{sh:?}");
    // The proto form, with counters.
    let p = service::to_pb(m.services.get("web").unwrap(), Some(web));
    assert_eq!(p.backends.len(), 2);
    assert_eq!((p.backends[1].weight, p.backends[1].flows), (2, 0));
    assert_eq!(p.affinity, "none");
}

#[test]
fn a_service_whose_spec_is_unchanged_is_not_built_again() {
    let m = build_on(
        &base(),
        vec![C::AddService(add(
            "other",
            "10.96.0.40",
            80,
            "tcp",
            vec![backend("10.1.0.8", 80, None)],
        ))],
    );
    let first = built(&m, &BTreeMap::new());
    let again = built(&m, &first);
    for (n, s) in &first {
        assert!(Arc::ptr_eq(s, &again[n]), "{n} was built again");
    }
    // Backends set to the same set: the same build; to another: a new one for that
    // service only.
    let same = build_on(
        &m,
        vec![C::SetServiceBackends(pb::SetServiceBackendsRequest {
            name: "web".into(),
            backends: web().backends,
        })],
    );
    let b = built(&same, &first);
    assert!(Arc::ptr_eq(&b["web"], &first["web"]));
    let changed = build_on(
        &m,
        vec![C::SetServiceBackends(pb::SetServiceBackendsRequest {
            name: "web".into(),
            backends: vec![backend("10.1.0.5", 8080, None)],
        })],
    );
    let b = built(&changed, &first);
    assert!(!Arc::ptr_eq(&b["web"], &first["web"]));
    assert!(Arc::ptr_eq(&b["other"], &first["other"]));
    assert_eq!(b["web"].spec.backends.len(), 1);
}
