//! The L3 resources without DPDK: every validation rule with its error code and one-line
//! message, what each change puts in the diff, the persisted form replayed, and random
//! sequences of changes that never leave the model inconsistent (checked against
//! invariants, against a replay, and against a mirror that follows only the diffs).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use proptest::prelude::*;

use super::*;
use crate::error::Code;
use vswitch_proto::v1::change::Change as C;

fn limits() -> Limits {
    Limits {
        run_dir: std::env::temp_dir().join("vs-l3-test"),
        fdb_capacity: 1024,
    }
}

fn ch(c: C) -> pb::Change {
    pb::Change { change: Some(c) }
}

fn null(name: &str) -> C {
    null_in(name, None)
}

fn null_in(name: &str, vrf: Option<u32>) -> C {
    C::AddInterface(pb::AddInterfaceRequest {
        name: name.into(),
        r#type: "null".into(),
        args: Default::default(),
        vrf,
        attachment: None,
    })
}

fn del_iface(name: &str) -> C {
    C::DeleteInterface(pb::DeleteInterfaceRequest { name: name.into() })
}

fn vrf(id: u32) -> C {
    C::AddVrf(pb::AddVrfRequest { id })
}

fn vrf_del(id: u32) -> C {
    C::DeleteVrf(pb::DeleteVrfRequest { id })
}

fn set_vrf(name: &str, vrf: u32) -> C {
    C::SetInterface(pb::SetInterfaceRequest {
        name: name.into(),
        admin_up: None,
        mtu: None,
        vrf: Some(vrf),
    })
}

fn addr(iface: &str, a: &str) -> C {
    C::AddAddress(pb::AddAddressRequest {
        iface: iface.into(),
        address: a.into(),
    })
}

fn addr_del(iface: &str, a: &str) -> C {
    C::DeleteAddress(pb::DeleteAddressRequest {
        iface: iface.into(),
        address: a.into(),
    })
}

/// `route add PREFIX via V1,V2.. [dev DEV] [onlink] vrf=VRF` (no vias: `dev DEV` alone).
fn route(prefix: &str, vias: &[&str], dev: &str, onlink: bool, vrf: u32) -> C {
    let nexthops = if vias.is_empty() {
        vec![pb::NextHop {
            via: String::new(),
            iface: dev.into(),
        }]
    } else {
        vias.iter()
            .map(|v| pb::NextHop {
                via: (*v).into(),
                iface: dev.into(),
            })
            .collect()
    };
    C::AddRoute(pb::AddRouteRequest {
        prefix: prefix.into(),
        vrf,
        nexthops,
        onlink,
    })
}

fn via(prefix: &str, gw: &str) -> C {
    route(prefix, &[gw], "", false, 0)
}

fn route_del(prefix: &str, vrf: u32) -> C {
    C::DeleteRoute(pb::DeleteRouteRequest {
        prefix: prefix.into(),
        vrf,
    })
}

fn neigh(iface: &str, ip: &str, mac: &str) -> C {
    C::AddNeighbor(pb::AddNeighborRequest {
        iface: iface.into(),
        ip: ip.into(),
        mac: mac.into(),
    })
}

fn neigh_del(iface: &str, ip: &str) -> C {
    C::DeleteNeighbor(pb::DeleteNeighborRequest {
        iface: iface.into(),
        ip: ip.into(),
    })
}

fn neigh_config(limit: Option<u32>, age: Option<u32>) -> C {
    C::SetNeighborConfig(pb::SetNeighborConfigRequest { limit, age })
}

fn proxy_arp(iface: &str, on: bool) -> C {
    C::SetProxyArp(pb::SetProxyArpRequest {
        iface: iface.into(),
        on,
    })
}

fn bridge(name: &str) -> C {
    C::AddBridge(pb::AddBridgeRequest {
        name: name.into(),
        ..Default::default()
    })
}

fn attach(br: &str, iface: &str) -> C {
    C::AttachBridge(pb::AttachBridgeRequest {
        bridge: br.into(),
        iface: iface.into(),
        vlan: None,
        trunk: vec![],
    })
}

fn xc(a: &str, b: &str) -> C {
    C::AddXconnect(pb::AddXconnectRequest {
        iface_a: a.into(),
        iface_b: b.into(),
    })
}

/// Applies each change as its own transaction, which must succeed.
fn build(changes: Vec<C>) -> Model {
    let mut m = Model::new();
    for c in changes {
        let desc = format!("{c:?}");
        m.replay(&[ch(c)], &limits())
            .unwrap_or_else(|e| panic!("{desc}: {e}"));
    }
    m
}

const MAC1: &str = "02:00:00:00:00:01";
const MAC2: &str = "02:00:00:00:00:02";

/// VRF 5; a (10.0.0.1/24, 2001:db8::1/64, fe80::1/64) and b (10.0.1.1/24) in VRF 0; c in
/// VRF 5 with a's IPv4 address; m a member of br0, whose routed interface has 10.9.0.1/24;
/// x1-x2 cross-connected; spare; a route 10.2.0.0/16 via 10.0.0.254 and a neighbour of a.
fn base() -> Model {
    build(vec![
        vrf(5),
        null("a"),
        null("b"),
        null_in("c", Some(5)),
        null("m"),
        null("x1"),
        null("x2"),
        null("spare"),
        bridge("br0"),
        attach("br0", "m"),
        xc("x1", "x2"),
        addr("a", "10.0.0.1/24"),
        addr("a", "2001:db8::1/64"),
        addr("a", "fe80::1/64"),
        addr("b", "10.0.1.1/24"),
        addr("c", "10.0.0.1/24"),
        addr("bvi:br0", "10.9.0.1/24"),
        via("10.2.0.0/16", "10.0.0.254"),
        neigh("a", "10.0.0.2", MAC1),
    ])
}

/// `c` on the base model is refused with `code` and a one-line message containing `text`,
/// and the model is unchanged.
fn refused(c: C, code: Code, text: &str) {
    refused_on(&base(), c, code, text);
}

fn refused_on(m: &Model, c: C, code: Code, text: &str) {
    let before = m.clone();
    let desc = format!("{c:?}");
    match m.stage(&[ch(c)], &limits()) {
        Ok(_) => panic!("{desc} was accepted"),
        Err(e) => {
            assert_eq!(e.code, code, "{desc}: {e}");
            assert!(e.message.contains(text), "{desc}: {e:?} lacks {text:?}");
            assert!(!e.message.contains('\n'), "{desc}: not one line: {e}");
        }
    }
    assert_eq!(*m, before);
}

/// `c` on the base model is accepted; the staged result.
fn accepted(m: &Model, changes: Vec<C>) -> Staged {
    let desc = format!("{changes:?}");
    m.stage(&changes.into_iter().map(ch).collect::<Vec<_>>(), &limits())
        .unwrap_or_else(|e| panic!("{desc}: {e}"))
}

fn p(s: &str) -> Prefix {
    Prefix::parse("prefix", s).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn route_of(m: &Model, vrf: u16, prefix: &str) -> Option<Arc<Route>> {
    m.routes.get(&(vrf, p(prefix))).cloned()
}

/// The next-hops of a route as (via, interface) strings.
fn hops(r: &Route) -> Vec<(String, String)> {
    r.nexthops
        .iter()
        .map(|n| {
            (
                n.via.map(|v| v.to_string()).unwrap_or_default(),
                n.iface.to_string(),
            )
        })
        .collect()
}

#[test]
fn vrfs_are_validated() {
    for (c, code, text) in [
        (vrf(0), Code::Exists, "vrf 0 always exists"),
        (vrf(5), Code::Exists, "vrf 5 exists already"),
        (
            vrf(4096),
            Code::Invalid,
            "vrf must be from 0 to 4095, not 4096",
        ),
        (
            vrf(70_000),
            Code::Invalid,
            "vrf must be from 0 to 4095, not 70000",
        ),
        (vrf_del(0), Code::Conflict, "vrf 0 cannot be deleted"),
        (
            vrf_del(7),
            Code::NotFound,
            "vrf 7 not found (vrf add 7 creates it)",
        ),
        (
            vrf_del(5000),
            Code::Invalid,
            "vrf must be from 0 to 4095, not 5000",
        ),
        (
            vrf_del(5),
            Code::Conflict,
            "vrf 5 is used by route 10.0.0.0/24 (connected); delete its routes and addresses first",
        ),
    ] {
        refused(c, code, text);
    }
    let m = build(vec![vrf(4095), vrf(6), null_in("v", Some(6))]);
    refused_on(
        &m,
        vrf_del(6),
        Code::Conflict,
        "vrf 6 is used by interface \"v\"; move it to another vrf first",
    );
    let m = build(vec![
        vrf(6),
        C::AddBridge(pb::AddBridgeRequest {
            name: "br6".into(),
            vrf: Some(6),
            ..Default::default()
        }),
    ]);
    refused_on(
        &m,
        vrf_del(6),
        Code::Conflict,
        "used by interface \"bvi:br6\"",
    );
    let s = accepted(&m, vec![set_vrf("bvi:br6", 0), vrf_del(6)]);
    assert_eq!(s.diff.l3.vrfs.removed, vec![6]);
    assert!(!vrf::exists(&s.model, 6) && vrf::exists(&s.model, 0));
    // A VRF that holds only a static route through an interface moved out later cannot
    // exist: routes need their interfaces in the VRF. Added and deleted at once: no diff.
    let s = accepted(&base(), vec![vrf(9), vrf_del(9)]);
    assert_eq!(s.diff.l3.vrfs, VrfDelta::default());
    assert_eq!(
        vrf::list(&base())
            .iter()
            .map(|v| (v.id, v.routes_v4, v.routes_v6, v.interfaces.clone()))
            .collect::<Vec<_>>(),
        vec![
            (
                0,
                7,
                2,
                vec![
                    "a".to_string(),
                    "b".into(),
                    "m".into(),
                    "spare".into(),
                    "x1".into(),
                    "x2".into(),
                    "bvi:br0".into()
                ]
            ),
            (5, 2, 0, vec!["c".to_string()]),
        ]
    );
}

#[test]
fn interface_vrfs_are_validated() {
    for (c, code, text) in [
        (null_in("v", Some(7)), Code::NotFound, "vrf 7 not found"),
        (
            null_in("v", Some(9999)),
            Code::Invalid,
            "vrf must be from 0 to 4095",
        ),
        (
            C::AddInterface(pb::AddInterfaceRequest {
                name: "v".into(),
                r#type: "null".into(),
                args: [("vrf".to_string(), "blue".to_string())].into(),
                vrf: None,
                attachment: None,
            }),
            Code::Invalid,
            "vrf must be a number from 0 to 4095, not \"blue\"",
        ),
        (
            C::AddInterface(pb::AddInterfaceRequest {
                name: "v".into(),
                r#type: "null".into(),
                args: [("vrf".to_string(), "5".to_string())].into(),
                vrf: Some(0),
                attachment: None,
            }),
            Code::Invalid,
            "vrf is given twice, as 0 and as vrf=5",
        ),
        (
            set_vrf("a", 5),
            Code::Conflict,
            "interface \"a\" has address 10.0.0.1/24: delete its addresses, neighbours and \
             routes before moving it to vrf 5",
        ),
        (set_vrf("spare", 8), Code::NotFound, "vrf 8 not found"),
        (
            set_vrf("nope", 5),
            Code::NotFound,
            "interface \"nope\" not found",
        ),
        (
            set_vrf("bvi:br0", 5),
            Code::Conflict,
            "interface \"bvi:br0\" has address 10.9.0.1/24",
        ),
        (
            set_vrf("bvi:nobr", 5),
            Code::NotFound,
            "bridge \"nobr\" not found",
        ),
        (
            C::SetInterface(pb::SetInterfaceRequest {
                name: "bvi:br0".into(),
                admin_up: Some(false),
                mtu: None,
                vrf: None,
            }),
            Code::Invalid,
            "bvi:br0 is bridge \"br0\"'s routed interface: vrf= is the one setting it takes",
        ),
    ] {
        refused(c, code, text);
    }
    // vrf= as an argument is the field; the interface's args do not keep it.
    let s = accepted(
        &base(),
        vec![C::AddInterface(pb::AddInterfaceRequest {
            name: "v".into(),
            r#type: "null".into(),
            args: [("vrf".to_string(), "5".to_string())].into(),
            vrf: None,
            attachment: None,
        })],
    );
    let v = s.model.iface("v").unwrap();
    assert_eq!(v.l3.vrf, 5);
    assert!(!v.spec.args.contains_key("vrf"));
    // Moving an interface without L3 objects; the set of a vrf alone is no port change.
    let s = accepted(&base(), vec![set_vrf("spare", 5)]);
    assert_eq!(s.model.iface("spare").unwrap().l3.vrf, 5);
    assert!(s.diff.ports.is_empty() && !s.diff.plan);
    assert_eq!(
        s.diff.l3.ifaces,
        vec![(
            Arc::from("spare"),
            Some(IfaceL3 {
                vrf: 5,
                proxy_arp: false
            })
        )]
    );
    // A neighbour alone (link-local) also ties an interface to its VRF.
    let m = build(vec![vrf(5), null("l"), neigh("l", "fe80::9", MAC1)]);
    refused_on(&m, set_vrf("l", 5), Code::Conflict, "has neighbour fe80::9");
    // A route through an interface, too.
    let m = build(vec![
        vrf(5),
        null("l"),
        route("10.5.0.0/16", &[], "l", false, 0),
    ]);
    refused_on(
        &m,
        set_vrf("l", 5),
        Code::Conflict,
        "has route 10.5.0.0/16 (vrf 0) through it",
    );
}

#[test]
fn addresses_are_validated() {
    for (c, code, text) in [
        (
            addr("m", "10.5.0.1/24"),
            Code::Conflict,
            "interface \"m\" is a member of bridge \"br0\", which makes it L2 only \
             (bvi:br0 is the bridge's routed interface)",
        ),
        (
            addr("x1", "10.5.0.1/24"),
            Code::Conflict,
            "interface \"x1\" is cross-connected to \"x2\", which makes it L2 only",
        ),
        (
            addr("nope", "10.5.0.1/24"),
            Code::NotFound,
            "interface \"nope\" not found",
        ),
        (
            addr("bvi:nobr", "10.5.0.1/24"),
            Code::NotFound,
            "bridge \"nobr\" not found (bvi:nobr is its routed interface)",
        ),
        (addr("", "10.5.0.1/24"), Code::Invalid, "iface is required"),
        (addr("spare", ""), Code::Invalid, "address is required"),
        (
            addr("spare", "10.5.0.1"),
            Code::Invalid,
            "address \"10.5.0.1\" is not ADDRESS/LENGTH (e.g. 10.0.0.0/24 or 2001:db8::/64)",
        ),
        (
            addr("spare", "10.5.0.1/33"),
            Code::Invalid,
            "address 10.5.0.1/33: the length of an IPv4 prefix is 0 to 32",
        ),
        (
            addr("spare", "10.5.0.1/0"),
            Code::Invalid,
            "an interface address needs a length of 1 to 32",
        ),
        (
            addr("spare", "224.0.0.5/24"),
            Code::Invalid,
            "is a multicast address",
        ),
        (
            addr("spare", "0.0.0.0/8"),
            Code::Invalid,
            "is the unspecified address",
        ),
        (
            addr("a", "10.0.0.1/24"),
            Code::Exists,
            "address 10.0.0.1/24 is already on interface \"a\"",
        ),
        (
            addr("b", "10.0.0.1/16"),
            Code::Exists,
            "address 10.0.0.1 is already on interface \"a\" in vrf 0",
        ),
        (
            addr("a", "fe80::1/10"),
            Code::Exists,
            "address fe80::1 is already on interface \"a\" (as fe80::1/64)",
        ),
        (
            addr("spare", "10.0.0.7/24"),
            Code::Conflict,
            "subnet 10.0.0.0/24 is already connected to interface \"a\" in vrf 0",
        ),
        (
            addr("spare", "10.0.0.254/32"),
            Code::Conflict,
            "10.0.0.254 is the gateway of route 10.2.0.0/16 in vrf 0: the router's own \
             address cannot be a gateway",
        ),
        (
            addr("spare", "10.2.0.1/16"),
            Code::Conflict,
            "route 10.2.0.0/16 (static) exists in vrf 0: delete it before adding an address \
             in that subnet",
        ),
        (
            addr_del("a", "10.0.0.1/16"),
            Code::NotFound,
            "address 10.0.0.1/16 is not on interface \"a\" (it has 10.0.0.1/24, \
             2001:db8::1/64, fe80::1/64)",
        ),
        (
            addr_del("spare", "10.0.0.1/24"),
            Code::NotFound,
            "is not on interface \"spare\" (it has none)",
        ),
        (
            addr_del("a", "10.0.0.1/24"),
            Code::Conflict,
            "address 10.0.0.1/24 of interface \"a\" is needed by route 10.2.0.0/16 (vrf 0, \
             via 10.0.0.254): delete or change the route first",
        ),
    ] {
        refused(c, code, text);
    }
    let m = build(vec![
        null("h"),
        null("k"),
        addr("k", "10.3.0.1/24"),
        route("10.3.0.9/32", &[], "k", false, 0),
    ]);
    refused_on(
        &m,
        addr("h", "10.3.0.9/24"),
        Code::Conflict,
        "route 10.3.0.9/32 (static) exists in vrf 0: delete it before adding address 10.3.0.9",
    );
}

#[test]
fn addresses_bring_connected_and_local_routes() {
    let m = base();
    let conn = route_of(&m, 0, "10.0.0.0/24").unwrap();
    assert_eq!(conn.origin, Origin::Connected);
    assert_eq!(hops(&conn), vec![(String::new(), "a".to_string())]);
    assert_eq!(
        route_of(&m, 0, "10.0.0.1/32").unwrap().origin,
        Origin::Local
    );
    assert_eq!(
        route_of(&m, 0, "2001:db8::/64").unwrap().origin,
        Origin::Connected
    );
    assert_eq!(
        route_of(&m, 0, "2001:db8::1/128").unwrap().origin,
        Origin::Local
    );
    // The same address in another VRF, with its own routes.
    assert_eq!(
        hops(&route_of(&m, 5, "10.0.0.0/24").unwrap()),
        vec![(String::new(), "c".to_string())]
    );
    // Link-local addresses add no route; the routed interface of a bridge does.
    assert!(m
        .routes
        .keys()
        .all(|(_, p)| !p.to_string().starts_with("fe80")));
    assert_eq!(
        hops(&route_of(&m, 0, "10.9.0.0/24").unwrap()),
        vec![(String::new(), "bvi:br0".to_string())]
    );
    // A host address has its local route only; an address shares its subnet's connected
    // route with another of the same interface, which stays when one goes.
    let s = accepted(
        &m,
        vec![addr("spare", "10.6.0.1/32"), addr("a", "10.0.0.3/24")],
    );
    assert!(route_of(&s.model, 0, "10.6.0.1/32").is_some());
    assert_eq!(
        s.model
            .routes
            .keys()
            .filter(|(_, p)| p.addr().to_string().starts_with("10.6."))
            .count(),
        1
    );
    assert_eq!(
        s.diff.l3.routes[&(0, Family::V4)]
            .added
            .iter()
            .map(|(p, r)| (p.to_string(), r.origin))
            .collect::<Vec<_>>(),
        vec![
            ("10.0.0.3/32".to_string(), Origin::Local),
            ("10.6.0.1/32".to_string(), Origin::Local)
        ]
    );
    let s = accepted(&s.model, vec![addr_del("a", "10.0.0.3/24")]);
    assert!(route_of(&s.model, 0, "10.0.0.0/24").is_some());
    assert_eq!(
        s.diff.l3.routes[&(0, Family::V4)].removed,
        vec![p("10.0.0.3/32")]
    );
    // The same subnet on one interface in two VRFs: each its own.
    let s = accepted(&base(), vec![addr("b", "2001:db8:1::1/64")]);
    assert_eq!(
        s.diff.l3.addresses.added,
        vec![AddrChange {
            iface: Arc::from("b"),
            vrf: 0,
            cidr: Cidr::parse("a", "2001:db8:1::1/64").unwrap()
        }]
    );
    // Another interface may share a link-local address.
    accepted(&base(), vec![addr("b", "fe80::1/64")]);
}

#[test]
fn routes_are_validated() {
    let sixteen: Vec<String> = (1..=17).map(|i| format!("10.0.0.{}", 100 + i)).collect();
    let seventeen: Vec<&str> = sixteen.iter().map(String::as_str).collect();
    for (c, code, text) in [
        (
            via("10.3.0.1/24", "10.0.0.254"),
            Code::Invalid,
            "prefix 10.3.0.1/24 has host bits set: did you mean 10.3.0.0/24?",
        ),
        (
            via("2001:db8:5::1/48", "2001:db8::fe"),
            Code::Invalid,
            "did you mean 2001:db8:5::/48?",
        ),
        (
            route("10.3.0.0/24", &seventeen, "", false, 0),
            Code::Invalid,
            "a route has at most 16 next-hops (ECMP), not 17",
        ),
        (
            C::AddRoute(pb::AddRouteRequest {
                prefix: "10.3.0.0/24".into(),
                ..Default::default()
            }),
            Code::Invalid,
            "a route needs a next-hop: via IP and/or dev IFACE",
        ),
        (
            route("10.3.0.0/24", &[], "", false, 0),
            Code::Invalid,
            "next-hop 1 has neither via nor dev",
        ),
        (
            via("10.3.0.0/24", "2001:db8::fe"),
            Code::Invalid,
            "next-hop 2001:db8::fe is IPv6 but prefix 10.3.0.0/24 is IPv4",
        ),
        (
            via("10.3.0.0/24", "10.0.0"),
            Code::Invalid,
            "next-hop \"10.0.0\" is not an IP address",
        ),
        (
            via("10.3.0.0/24", "0.0.0.0"),
            Code::Invalid,
            "next-hop 0.0.0.0 is the unspecified address",
        ),
        (
            route("10.3.0.0/24", &["10.0.0.9", "10.0.0.9"], "", false, 0),
            Code::Invalid,
            "next-hop via 10.0.0.9 is given twice",
        ),
        (
            via("10.3.0.0/24", "10.0.5.9"),
            Code::Conflict,
            "next-hop 10.0.5.9 is not in a connected subnet of vrf 0 (add an address in its \
             subnet, or give dev IFACE and onlink)",
        ),
        (
            route("10.3.0.0/24", &["10.0.0.9"], "b", false, 0),
            Code::Conflict,
            "next-hop 10.0.0.9 is not in a connected subnet of interface \"b\" (add an \
             address in its subnet, or use onlink)",
        ),
        (
            via("10.3.0.0/24", "10.0.0.1"),
            Code::Invalid,
            "next-hop 10.0.0.1 is the router's own address (on interface \"a\")",
        ),
        (
            route("10.3.0.0/24", &["169.254.1.1"], "", true, 0),
            Code::Invalid,
            "onlink next-hop 169.254.1.1 needs dev IFACE",
        ),
        (
            via("2001:db8:5::/48", "fe80::9"),
            Code::Invalid,
            "next-hop fe80::9 is IPv6 link-local: give dev IFACE",
        ),
        (
            route("10.3.0.0/24", &[], "c", false, 0),
            Code::Conflict,
            "interface \"c\" is in vrf 5, not vrf 0",
        ),
        (
            route("10.3.0.0/24", &[], "m", false, 0),
            Code::Conflict,
            "interface \"m\" is a member of bridge \"br0\", which makes it L2 only",
        ),
        (
            route("10.3.0.0/24", &[], "nope", false, 0),
            Code::NotFound,
            "interface \"nope\" not found",
        ),
        (
            route("10.3.0.0/24", &["10.0.0.9"], "", false, 8),
            Code::NotFound,
            "vrf 8 not found",
        ),
        (
            via("10.0.0.0/24", "10.0.1.9"),
            Code::Conflict,
            "10.0.0.0/24 in vrf 0 is the connected route of an address of interface \"a\"; a \
             static route cannot replace it",
        ),
        (
            via("10.0.0.1/32", "10.0.1.9"),
            Code::Conflict,
            "10.0.0.1/32 in vrf 0 is the local route of an address of interface \"a\"",
        ),
        (
            route_del("10.3.0.0/24", 0),
            Code::NotFound,
            "route 10.3.0.0/24 not found in vrf 0",
        ),
        (
            route_del("10.0.0.0/24", 0),
            Code::Conflict,
            "10.0.0.0/24 in vrf 0 is the connected route of an address of interface \"a\": \
             delete the address instead",
        ),
        (
            route_del("10.3.0.0/24", 9),
            Code::NotFound,
            "vrf 9 not found",
        ),
        (
            route_del("10.3.0.1/24", 0),
            Code::Invalid,
            "has host bits set: did you mean 10.3.0.0/24?",
        ),
        (
            del_iface("a"),
            Code::Conflict,
            "interface \"a\" is used by route 10.2.0.0/16 (vrf 0); delete the route first",
        ),
    ] {
        refused(c, code, text);
    }
}

#[test]
fn routes_resolve_their_next_hops() {
    let m = base();
    // The gateway's subnet names the interface.
    assert_eq!(
        hops(&route_of(&m, 0, "10.2.0.0/16").unwrap()),
        vec![("10.0.0.254".to_string(), "a".to_string())]
    );
    let s = accepted(
        &m,
        vec![
            // ECMP over two interfaces; a default route.
            route("0.0.0.0/0", &["10.0.0.254", "10.0.1.254"], "", false, 0),
            // Straight out of an interface, and onlink through a gateway of no subnet.
            route("10.8.0.5/32", &[], "spare", false, 0),
            route("10.244.1.0/24", &["10.244.1.0"], "spare", true, 0),
            // IPv6 through a link-local gateway; and in VRF 5.
            route("2001:db8:5::/48", &["fe80::9"], "a", false, 0),
            route("10.3.0.0/24", &["10.0.0.9"], "c", false, 5),
            // A bridge's routed interface.
            via("10.4.0.0/16", "10.9.0.7"),
        ],
    );
    let r = |prefix, vrf| hops(&route_of(&s.model, vrf, prefix).unwrap());
    let h = |v: &str, i: &str| (v.to_string(), i.to_string());
    assert_eq!(
        r("0.0.0.0/0", 0),
        vec![h("10.0.0.254", "a"), h("10.0.1.254", "b")]
    );
    assert_eq!(r("10.8.0.5/32", 0), vec![h("", "spare")]);
    assert_eq!(r("10.244.1.0/24", 0), vec![h("10.244.1.0", "spare")]);
    assert!(route_of(&s.model, 0, "10.244.1.0/24").unwrap().onlink);
    assert_eq!(r("2001:db8:5::/48", 0), vec![h("fe80::9", "a")]);
    assert_eq!(r("10.3.0.0/24", 5), vec![h("10.0.0.9", "c")]);
    assert_eq!(r("10.4.0.0/16", 0), vec![h("10.9.0.7", "bvi:br0")]);
    let v4 = &s.diff.l3.routes[&(0, Family::V4)];
    assert_eq!(v4.added.len(), 4);
    assert!(v4.replaced.is_empty() && v4.removed.is_empty());
    assert_eq!(s.diff.l3.routes[&(0, Family::V6)].added.len(), 1);
    assert_eq!(s.diff.l3.routes[&(5, Family::V4)].added.len(), 1);
    // A route added for a prefix that has one replaces it.
    let s = accepted(&s.model, vec![via("0.0.0.0/0", "10.0.1.254")]);
    assert_eq!(
        hops(&route_of(&s.model, 0, "0.0.0.0/0").unwrap()),
        vec![h("10.0.1.254", "b")]
    );
    let v4 = &s.diff.l3.routes[&(0, Family::V4)];
    assert_eq!(v4.replaced.len(), 1);
    assert!(v4.added.is_empty());
    // Now nothing goes through a's 10.0.0.0/24 but 10.2.0.0/16: deleting that route frees
    // the address.
    let s = accepted(
        &s.model,
        vec![route_del("10.2.0.0/16", 0), addr_del("a", "10.0.0.1/24")],
    );
    assert!(route_of(&s.model, 0, "10.0.0.0/24").is_none());
    assert_eq!(
        s.diff.l3.routes[&(0, Family::V4)]
            .removed
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>(),
        ["10.0.0.0/24", "10.0.0.1/32", "10.2.0.0/16"]
    );
}

/// Gateways go out of the longest connected subnet holding them, as subnets come and go;
/// a subnet whose going would leave a gateway unresolved is refused.
#[test]
fn gateways_resolve_again_when_subnets_change() {
    let m = build(vec![
        null("wide"),
        null("narrow"),
        addr("wide", "10.0.0.1/16"),
        via("10.5.0.0/16", "10.0.1.9"),
        route("10.6.0.0/16", &["10.0.1.9"], "wide", false, 0),
    ]);
    let s = accepted(&m, vec![addr("narrow", "10.0.1.1/24")]);
    let r5 = route_of(&s.model, 0, "10.5.0.0/16").unwrap();
    assert_eq!(&*r5.nexthops[0].iface, "narrow", "to the longer subnet");
    let r6 = route_of(&s.model, 0, "10.6.0.0/16").unwrap();
    assert_eq!(&*r6.nexthops[0].iface, "wide", "dev keeps its interface");
    let d = &s.diff.l3.routes[&(0, Family::V4)];
    assert_eq!(
        d.replaced
            .iter()
            .map(|(p, _)| p.to_string())
            .collect::<Vec<_>>(),
        ["10.5.0.0/16"]
    );
    assert_eq!(d.added.len(), 2, "narrow's connected and local routes");
    // Back to the shorter subnet when the longer goes.
    let s = accepted(&s.model, vec![addr_del("narrow", "10.0.1.1/24")]);
    assert_eq!(
        &*route_of(&s.model, 0, "10.5.0.0/16").unwrap().nexthops[0].iface,
        "wide"
    );
    // Both in one transaction: nothing changed for the FIB.
    let s = accepted(
        &m,
        vec![
            addr("narrow", "10.0.1.1/24"),
            addr_del("narrow", "10.0.1.1/24"),
        ],
    );
    assert!(s.diff.l3.is_empty(), "{:?}", s.diff.l3);
    assert_eq!(s.model, m);
    // The shorter subnet is the only one for 10.6.0.0/16 (dev wide).
    let m2 = accepted(&m, vec![addr("narrow", "10.0.1.1/24")]).model;
    refused_on(
        &m2,
        addr_del("wide", "10.0.0.1/16"),
        Code::Conflict,
        "address 10.0.0.1/16 of interface \"wide\" is needed by route 10.6.0.0/16 (vrf 0, \
         via 10.0.1.9)",
    );
}

/// A run of route changes updates the static-route indexes at its end and caches gateways:
/// the changes after it in the same transaction still see its routes, and a gateway is
/// resolved again after an address change.
#[test]
fn changes_after_routes_in_one_transaction_see_them() {
    let m = base();
    let stage = |cs: Vec<C>| m.stage(&cs.into_iter().map(ch).collect::<Vec<_>>(), &limits());
    let e = stage(vec![
        via("10.50.0.0/16", "10.0.1.254"),
        addr_del("b", "10.0.1.1/24"),
    ])
    .unwrap_err();
    assert!(e.message.contains("10.50.0.0/16"), "{e:?}");
    let e = stage(vec![via("10.50.0.0/16", "10.0.1.254"), del_iface("b")]).unwrap_err();
    assert!(e.message.contains("10.50.0.0/16"), "{e:?}");
    // Added and deleted again: b's address can go, and then its gateway resolves no more.
    let e = stage(vec![
        via("10.50.0.0/16", "10.0.1.254"),
        route_del("10.50.0.0/16", 0),
        addr_del("b", "10.0.1.1/24"),
        via("10.51.0.0/16", "10.0.1.254"),
    ])
    .unwrap_err();
    assert_eq!(e.code, Code::Conflict, "{e:?}");
    assert!(e.message.contains("not in a connected subnet"), "{e:?}");
    let s = stage(vec![
        via("10.50.0.0/16", "10.0.1.254"),
        via("10.51.0.0/16", "10.0.1.254"),
        route_del("10.50.0.0/16", 0),
        addr("spare", "10.7.0.1/24"),
        via("10.52.0.0/16", "10.7.0.254"),
    ])
    .unwrap();
    check_invariants(&s.model);
    assert_eq!(
        hops(&route_of(&s.model, 0, "10.52.0.0/16").unwrap()),
        [("10.7.0.254".to_string(), "spare".to_string())]
    );
    assert!(route_of(&s.model, 0, "10.50.0.0/16").is_none());
}

#[test]
fn neighbours_are_validated() {
    for (c, code, text) in [
        (
            neigh("a", "10.0.0.5", "03:00:00:00:00:01"),
            Code::Invalid,
            "mac 03:00:00:00:00:01 is a multicast address; a unicast address is needed",
        ),
        (
            neigh("a", "10.0.0.5", "00:00:00:00:00:00"),
            Code::Invalid,
            "all-zero",
        ),
        (
            neigh("a", "10.0.0.5", "zz"),
            Code::Invalid,
            "is not a MAC address",
        ),
        (
            neigh("a", "10.0.0.5/32", MAC1),
            Code::Invalid,
            "ip \"10.0.0.5/32\" is not an IP address",
        ),
        (
            neigh("a", "224.0.0.5", MAC1),
            Code::Invalid,
            "ip 224.0.0.5 is a multicast address",
        ),
        (
            neigh("a", "255.255.255.255", MAC1),
            Code::Invalid,
            "ip 255.255.255.255 is the broadcast address",
        ),
        (
            neigh("a", "ff02::1", MAC1),
            Code::Invalid,
            "ip ff02::1 is a multicast address",
        ),
        (
            neigh("a", "10.0.0.5", "ff:ff:ff:ff:ff:ff"),
            Code::Invalid,
            "multicast address",
        ),
        (neigh("m", "10.0.0.5", MAC1), Code::Conflict, "L2 only"),
        (neigh("x1", "10.0.0.5", MAC1), Code::Conflict, "L2 only"),
        (neigh("nope", "10.0.0.5", MAC1), Code::NotFound, "not found"),
        (neigh("a", "", MAC1), Code::Invalid, "ip is required"),
        (
            neigh_del("a", "10.0.0.9"),
            Code::NotFound,
            "neighbour 10.0.0.9 not found on interface \"a\"",
        ),
        (
            neigh_config(None, None),
            Code::Invalid,
            "nothing to set: give limit and/or age",
        ),
    ] {
        refused(c, code, text);
    }
    for (limit, ok) in [(0, false), (1, true), (1_000_000, true), (1_000_001, false)] {
        let c = neigh_config(Some(limit), None);
        if ok {
            accepted(&base(), vec![c]);
        } else {
            refused(
                c,
                Code::Invalid,
                &format!("limit must be from 1 to 1000000, not {limit}"),
            );
        }
    }
    for (age, ok) in [(0, false), (1, true), (86_400, true), (86_401, false)] {
        let c = neigh_config(None, Some(age));
        if ok {
            accepted(&base(), vec![c]);
        } else {
            refused(
                c,
                Code::Invalid,
                &format!("age must be from 1 to 86400 seconds, not {age}"),
            );
        }
    }
    assert_eq!(
        base().neigh_config,
        NeighConfig {
            limit: 65536,
            age: 300
        }
    );
    let s = accepted(
        &base(),
        vec![neigh_config(Some(10), None), neigh_config(None, Some(9))],
    );
    assert_eq!(s.model.neigh_config, NeighConfig { limit: 10, age: 9 });
    assert_eq!(
        s.diff.l3.neighbor_config,
        Some(NeighConfig { limit: 10, age: 9 })
    );
}

/// A static neighbour need not lie in a connected subnet of its interface (Linux's `ip
/// neigh add` takes it; flannel's onlink gateway is outside the /32 of its VXLAN device):
/// on an interface with no address, on one whose subnets do not hold it, in another
/// interface's subnet; it then serves an onlink route through it.
#[test]
fn neighbours_need_no_connected_subnet() {
    let s = accepted(
        &base(),
        vec![
            neigh("spare", "10.0.0.5", MAC1),
            neigh("a", "10.0.1.5", MAC2),
            neigh("b", "10.244.1.0", MAC1),
            neigh("spare", "2001:db8:9::9", MAC2),
            C::AddRoute(pb::AddRouteRequest {
                prefix: "10.244.1.0/24".into(),
                vrf: 0,
                nexthops: vec![pb::NextHop {
                    via: "10.244.1.0".into(),
                    iface: "b".into(),
                }],
                onlink: true,
            }),
        ],
    );
    check_invariants(&s.model);
    assert_eq!(s.diff.l3.neighbors.added.len(), 4);
    assert_eq!(
        s.model.neighbors.get(&(Arc::from("b"), ip("10.244.1.0"))),
        Some(&[2, 0, 0, 0, 0, 1])
    );
    // Outside every subnet it stays when an address of its interface goes; deleting it or
    // its interface takes it.
    let s = accepted(&s.model, vec![addr_del("b", "10.0.1.1/24")]);
    assert!(s.diff.l3.neighbors.removed.is_empty());
    assert!(s
        .model
        .neighbors
        .contains_key(&(Arc::from("b"), ip("10.244.1.0"))));
    let s = accepted(
        &s.model,
        vec![neigh_del("spare", "10.0.0.5"), del_iface("spare")],
    );
    assert_eq!(s.diff.l3.neighbors.removed.len(), 2);
    assert_eq!(s.model.neighbors.len(), 3);
}

#[test]
fn neighbours_follow_their_interface_and_subnet() {
    let m = base();
    // Link-local needs no subnet; an entry added again takes the new MAC.
    let s = accepted(
        &m,
        vec![
            neigh("spare", "fe80::9", MAC1),
            neigh("a", "10.0.0.2", MAC2),
            neigh("bvi:br0", "10.9.0.5", MAC2),
        ],
    );
    let n = &s.diff.l3.neighbors;
    assert_eq!(n.added.len(), 2);
    assert_eq!(
        n.replaced,
        vec![NeighborEntry {
            iface: Arc::from("a"),
            ip: ip("10.0.0.2"),
            mac: [2, 0, 0, 0, 0, 2]
        }]
    );
    // An address's subnet going takes its neighbours (those no other subnet holds).
    let m = build(vec![
        null("e"),
        addr("e", "10.1.0.1/24"),
        addr("e", "10.1.0.2/24"),
        addr("e", "10.1.1.1/24"),
        neigh("e", "10.1.0.9", MAC1),
        neigh("e", "10.1.1.9", MAC1),
        neigh("e", "fe80::9", MAC1),
    ]);
    let s = accepted(&m, vec![addr_del("e", "10.1.0.1/24")]);
    assert_eq!(
        s.model.neighbors.len(),
        3,
        "10.1.0.2/24 still holds the subnet"
    );
    let s = accepted(&s.model, vec![addr_del("e", "10.1.0.2/24")]);
    assert_eq!(
        s.diff.l3.neighbors.removed,
        vec![(Arc::from("e"), ip("10.1.0.9"))]
    );
    // The interface going takes everything it has; it cannot take a bridge then.
    let s = accepted(&m, vec![del_iface("e")]);
    assert!(s.model.neighbors.is_empty() && s.model.addrs.is_empty());
    assert!(s.model.routes.is_empty());
    assert_eq!(s.diff.l3.addresses.removed.len(), 3);
    assert_eq!(s.diff.l3.neighbors.removed.len(), 3);
    assert_eq!(s.diff.l3.ifaces, vec![(Arc::from("e"), None)]);
}

#[test]
fn l2_and_l3_roles_exclude_each_other() {
    for (c, text) in [
        (
            attach("br0", "a"),
            "interface \"a\" has address 10.0.0.1/24: a bridge member is L2 only (bvi:br0 is \
             the bridge's routed interface); remove it first",
        ),
        (
            xc("a", "spare"),
            "interface \"a\" has address 10.0.0.1/24: a cross-connected interface is L2 only",
        ),
        (
            proxy_arp("m", true),
            "interface \"m\" is a member of bridge \"br0\", which makes it L2 only",
        ),
    ] {
        refused(c, Code::Conflict, text);
    }
    let m = accepted(&base(), vec![proxy_arp("spare", true)]).model;
    refused_on(
        &m,
        attach("br0", "spare"),
        Code::Conflict,
        "interface \"spare\" has proxy-arp on",
    );
    let m = build(vec![null("l"), neigh("l", "fe80::2", MAC1)]);
    refused_on(&m, xc("l", "l"), Code::Invalid, "to itself");
    let m = build(vec![null("l"), null("k"), neigh("l", "fe80::2", MAC1)]);
    refused_on(
        &m,
        xc("k", "l"),
        Code::Conflict,
        "interface \"l\" has neighbour fe80::2",
    );
    // A bridge's routed interface goes with the bridge, unless a route needs it.
    let m = build(vec![
        bridge("br1"),
        addr("bvi:br1", "10.1.0.1/24"),
        via("10.5.0.0/16", "10.1.0.9"),
    ]);
    refused_on(
        &m,
        C::DeleteBridge(pb::DeleteBridgeRequest { name: "br1".into() }),
        Code::Conflict,
        "interface \"bvi:br1\" is used by route 10.5.0.0/16 (vrf 0); delete the route first",
    );
    let s = accepted(
        &m,
        vec![
            route_del("10.5.0.0/16", 0),
            proxy_arp("bvi:br1", true),
            C::DeleteBridge(pb::DeleteBridgeRequest { name: "br1".into() }),
        ],
    );
    assert!(s.model.routes.is_empty() && s.model.addrs.is_empty());
    assert_eq!(s.diff.l3.ifaces, vec![(Arc::from("bvi:br1"), None)]);
}

#[test]
fn proxy_arp_is_an_interface_setting() {
    let s = accepted(
        &base(),
        vec![proxy_arp("a", true), proxy_arp("bvi:br0", true)],
    );
    assert!(s.model.iface("a").unwrap().l3.proxy_arp);
    assert!(s.model.bridge("br0").unwrap().bvi.proxy_arp);
    assert_eq!(s.diff.l3.ifaces.len(), 2);
    let s = accepted(&s.model, vec![proxy_arp("a", false), proxy_arp("a", true)]);
    assert!(s.diff.l3.is_empty(), "off and on again: no change");
    refused(
        proxy_arp("nope", true),
        Code::NotFound,
        "interface \"nope\" not found",
    );
    refused(proxy_arp("", true), Code::Invalid, "iface is required");
}

/// An interface deleted and added again in one transaction is a new port: its L3 objects
/// are listed again, though they look the same.
#[test]
fn an_interface_re_created_in_a_transaction_is_listed_again() {
    let m = build(vec![
        null("r"),
        addr("r", "10.1.0.1/24"),
        neigh("r", "10.1.0.9", MAC1),
        route("10.5.0.0/16", &[], "r", false, 0),
    ]);
    let s = accepted(
        &m,
        vec![
            route_del("10.5.0.0/16", 0),
            del_iface("r"),
            null("r"),
            addr("r", "10.1.0.1/24"),
            neigh("r", "10.1.0.9", MAC1),
            route("10.5.0.0/16", &[], "r", false, 0),
        ],
    );
    let l3 = &s.diff.l3;
    assert_eq!(l3.ifaces.len(), 1);
    assert_eq!(
        (l3.addresses.added.len(), l3.addresses.removed.len()),
        (1, 1)
    );
    assert_eq!(l3.neighbors.replaced.len(), 1);
    assert_eq!(l3.routes[&(0, Family::V4)].replaced.len(), 3);
}

/// Every kind of L3 object persisted: the snapshot replayed (each change alone, as restore
/// does) and through the state file's JSON is the same model.
#[test]
fn the_l3_configuration_round_trips() {
    let mut changes = vec![
        vrf(4095),
        C::AddBridge(pb::AddBridgeRequest {
            name: "br5".into(),
            vrf: Some(5),
            ..Default::default()
        }),
        addr("bvi:br5", "10.50.0.1/24"),
        proxy_arp("bvi:br5", true),
        null_in("p5", Some(5)),
        addr("p5", "2001:db8:5::1/64"),
        route("2001:db8:55::/48", &["2001:db8:5::9"], "", false, 5),
        route("10.55.0.0/16", &["10.50.0.9", "10.50.0.10"], "", false, 5),
        neigh("p5", "2001:db8:5::9", MAC2),
        neigh_config(Some(1000), Some(60)),
        proxy_arp("spare", true),
        route("10.244.0.0/16", &["169.254.1.1"], "spare", true, 0),
    ];
    let mut all: Vec<C> = Vec::new();
    all.append(&mut base().changes());
    all.append(&mut changes);
    let m = build(all);
    let snapshot = m.changes();
    let mut replayed = Model::new();
    for c in &snapshot {
        replayed
            .replay(&[ch(c.clone())], &limits())
            .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    }
    assert_eq!(replayed, m);
    // One transaction, too, and its diff lists everything.
    let s = Model::new()
        .stage(
            &snapshot.iter().cloned().map(ch).collect::<Vec<_>>(),
            &limits(),
        )
        .unwrap();
    assert_eq!(s.model, m);
    let routes: usize = s.diff.l3.routes.values().map(|d| d.added.len()).sum();
    assert_eq!(routes, m.routes.len());
    assert_eq!(s.diff.l3.addresses.added.len(), m.addrs.len());
    assert_eq!(s.diff.l3.vrfs.added, vec![5, 4095]);
    // Through the state file's JSON.
    let text = crate::state::encode(&crate::state::Snapshot {
        seq: 1,
        changes: snapshot.clone(),
    })
    .unwrap();
    let back = crate::state::decode(&text).unwrap();
    let mut restored = Model::new();
    for c in back.changes {
        restored.replay(&[ch(c)], &limits()).unwrap();
    }
    assert_eq!(restored, m, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["vrfs"][0]["id"], 5);
    assert_eq!(v["bridges"][0]["name"], "br0");
    assert_eq!(v["bridges"][1]["vrf"], 5);
    assert_eq!(v["neighbor_config"][0]["limit"], 1000);
    assert!(v["routes"].as_array().unwrap().len() >= 3);
    // The persisted form keeps what was given (dev or not), not what it resolved to.
    let r = snapshot
        .iter()
        .find_map(|c| match c {
            C::AddRoute(r) if r.prefix == "10.2.0.0/16" => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(r.nexthops[0].iface, "");
}

// ---------------------------------------------------------------------------------------
// Random sequences of changes

/// Where random sequences start: VRFs 1 and 2, interfaces i0-i2 in VRF 0 and i3 in VRF
/// 1, bridges b0 (routed in VRF 0) and b1 (in VRF 1), no L3 object yet.
fn world() -> Model {
    build(vec![
        vrf(1),
        vrf(2),
        null("i0"),
        null("i1"),
        null("i2"),
        null_in("i3", Some(1)),
        bridge("b0"),
        C::AddBridge(pb::AddBridgeRequest {
            name: "b1".into(),
            vrf: Some(1),
            ..Default::default()
        }),
    ])
}

/// A change from a small world of names and addresses, so that changes meet: 4
/// interfaces, 2 bridges (and their routed interfaces), VRFs 0-2, overlapping subnets.
fn random_change(op: (u8, u8, u8, u8)) -> C {
    let (kind, a, b, c) = op;
    let ifaces = ["i0", "i1", "i2", "i3", "bvi:b0", "bvi:b1"];
    let iface = ifaces[a as usize % ifaces.len()];
    let plain = ifaces[a as usize % 4];
    let bridge_name = ["b0", "b1"][b as usize % 2];
    // Independent choices from c's bits: the VRF (mostly 0), dev given, onlink.
    let vrf_id = [0, 0, 1, 2][usize::from(c >> 4) & 3];
    let with_dev = c & 3 == 0;
    let onlink = (c >> 2) & 3 == 0;
    let cidrs = [
        "10.0.0.1/24",
        "10.0.0.2/24",
        "10.0.1.1/24",
        "10.0.0.1/16",
        "10.0.9.9/32",
        "2001:db8::1/64",
        "2001:db8:0:1::1/64",
        "fe80::1/64",
    ];
    let gateways4 = [
        "10.0.0.254",
        "10.0.1.254",
        "10.0.0.1",
        "10.0.9.9",
        "169.254.1.1",
        "10.0.0.2",
    ];
    let gateways6 = ["2001:db8::fe", "fe80::9", "2001:db8:0:1::9"];
    let gateways = [gateways4.as_slice(), gateways6.as_slice()].concat();
    let prefixes = [
        "10.5.0.0/16",
        "10.6.0.0/24",
        "0.0.0.0/0",
        "10.0.0.0/24",
        "10.0.9.9/32",
        "2001:db8:5::/48",
        "::/0",
    ];
    let pick = |list: &[&'static str], n: u8| list[n as usize % list.len()];
    match kind % 24 {
        0 => vrf(1 + u32::from(c % 3)),
        1 => vrf_del(u32::from(c % 4)),
        2 => null_in(plain, Some(vrf_id).filter(|v| *v != 0)),
        3 => del_iface(plain),
        4 => set_vrf(iface, vrf_id),
        5 => C::AddBridge(pb::AddBridgeRequest {
            name: bridge_name.into(),
            vrf: Some(vrf_id),
            ..Default::default()
        }),
        6 => C::DeleteBridge(pb::DeleteBridgeRequest {
            name: bridge_name.into(),
        }),
        7 => attach(bridge_name, plain),
        8 => xc(plain, ifaces[b as usize % 4]),
        9..=12 => addr(iface, pick(&cidrs, b)),
        13 | 14 => addr_del(iface, pick(&cidrs, b)),
        15..=19 => {
            let dev = if with_dev { iface } else { "" };
            let prefix = pick(&prefixes, b / 8);
            // Gateways of the prefix's family, but for one route in eight.
            let v6 = prefix.contains(':') != (b % 8 == 7);
            let gw = if v6 { &gateways6[..] } else { &gateways4[..] };
            let vias: Vec<&str> = match b % 8 {
                0 => vec![],
                1 => vec![pick(gw, c), pick(gw, c / 7)],
                _ => vec![pick(gw, c)],
            };
            route(prefix, &vias, dev, onlink, vrf_id)
        }
        20 | 21 => route_del(pick(&prefixes, b / 8), vrf_id),
        22 => neigh(iface, pick(&gateways, b), MAC1),
        _ => match b % 4 {
            0 => neigh_del(iface, pick(&gateways, c)),
            1 => proxy_arp(iface, c % 2 == 0),
            2 => neigh_config(Some(1 + u32::from(c)), None),
            _ => C::DetachBridge(pb::DetachBridgeRequest {
                bridge: bridge_name.into(),
                iface: plain.into(),
            }),
        },
    }
}

/// The L3 state as a dataplane keeps it, built only from diffs.
#[derive(Debug, Default, PartialEq)]
struct Mirror {
    vrfs: BTreeSet<u16>,
    ifaces: BTreeMap<Arc<str>, IfaceL3>,
    addrs: BTreeSet<(Arc<str>, u16, Cidr)>,
    routes: BTreeMap<RouteKey, Arc<Route>>,
    neighbors: BTreeMap<(Arc<str>, IpAddr), [u8; 6]>,
    config: Option<NeighConfig>,
}

impl Mirror {
    /// Applies a diff, checking that it adds only what is not there and removes or
    /// replaces only what is.
    fn apply(&mut self, d: &L3Diff) {
        for v in &d.vrfs.removed {
            assert!(self.vrfs.remove(v), "vrf {v} removed but not there");
        }
        for v in &d.vrfs.added {
            assert!(self.vrfs.insert(*v), "vrf {v} added twice");
        }
        for (n, l3) in &d.ifaces {
            match l3 {
                Some(l) => self.ifaces.insert(n.clone(), *l),
                None => self.ifaces.remove(n),
            };
        }
        for a in &d.addresses.removed {
            assert!(
                self.addrs.remove(&(a.iface.clone(), a.vrf, a.cidr)),
                "{a:?}"
            );
        }
        for a in &d.addresses.added {
            assert!(self.addrs.insert((a.iface.clone(), a.vrf, a.cidr)), "{a:?}");
        }
        for (&(vrf, f), rd) in &d.routes {
            for p in &rd.removed {
                assert_eq!(p.family(), f);
                assert!(self.routes.remove(&(vrf, *p)).is_some(), "{p} not there");
            }
            for (p, r) in &rd.added {
                assert!(
                    self.routes.insert((vrf, *p), r.clone()).is_none(),
                    "{p} there"
                );
            }
            for (p, r) in &rd.replaced {
                assert!(
                    self.routes.insert((vrf, *p), r.clone()).is_some(),
                    "{p} not there"
                );
            }
        }
        for k in &d.neighbors.removed {
            assert!(self.neighbors.remove(k).is_some());
        }
        for e in &d.neighbors.added {
            assert!(self
                .neighbors
                .insert((e.iface.clone(), e.ip), e.mac)
                .is_none());
        }
        for e in &d.neighbors.replaced {
            assert!(self
                .neighbors
                .insert((e.iface.clone(), e.ip), e.mac)
                .is_some());
        }
        if let Some(c) = d.neighbor_config {
            self.config = Some(c);
        }
    }

    /// What the mirror should hold for model `m`.
    fn of(m: &Model) -> Mirror {
        let mut ifaces: BTreeMap<Arc<str>, IfaceL3> = m
            .ifaces
            .iter()
            .map(|(n, i)| (Arc::from(n.as_str()), i.l3))
            .collect();
        for (n, b) in &m.bridges {
            ifaces.insert(Arc::from(format!("bvi:{n}").as_str()), b.bvi);
        }
        Mirror {
            vrfs: m.vrfs.iter().copied().collect(),
            addrs: m
                .addrs
                .iter()
                .map(|(n, c)| (n.clone(), ifaces[n].vrf, *c))
                .collect(),
            ifaces,
            routes: m.routes.iter().map(|(k, r)| (*k, r.clone())).collect(),
            neighbors: m.neighbors.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            config: Some(m.neigh_config),
        }
    }
}

/// The model's L3 invariants: every object where its rules allow it, the derived routes
/// and indexes exactly what the objects make, every gateway resolved as it would be now.
fn check_invariants(m: &Model) {
    let l3 = |n: &str| iface::l3_get(m, n).unwrap_or_else(|| panic!("{n} missing"));
    let is_l2 = |n: &str| {
        m.ifaces
            .get(n)
            .is_some_and(|i| i.bridge.is_some() || i.xconnect.is_some())
    };
    for i in m.ifaces.values() {
        assert!(vrf::exists(m, i.l3.vrf));
    }
    for b in m.bridges.values() {
        assert!(vrf::exists(m, b.bvi.vrf));
    }
    // Addresses, and the connected and local routes they make.
    let mut expected: BTreeMap<RouteKey, (Origin, Arc<str>)> = BTreeMap::new();
    for (n, c) in &m.addrs {
        assert!(!is_l2(n), "address {c} on L2 interface {n}");
        let vrf = l3(n).vrf;
        if ip::is_link_local_v6(&c.addr()) {
            continue;
        }
        expected.insert((vrf, Prefix::host(c.addr())), (Origin::Local, n.clone()));
        if !c.is_host() {
            let old = expected.insert((vrf, c.subnet()), (Origin::Connected, n.clone()));
            assert!(
                old.is_none_or(|(_, o)| o == *n),
                "subnet {} on two interfaces",
                c.subnet()
            );
        }
    }
    for (k, r) in &m.routes {
        if r.origin == Origin::Static {
            continue;
        }
        let (o, n) = expected
            .remove(k)
            .unwrap_or_else(|| panic!("{k:?} has no address"));
        assert_eq!((r.origin, &r.nexthops[0].iface), (o, &n), "{k:?}");
    }
    assert!(expected.is_empty(), "routes missing: {expected:?}");
    // Static routes: interfaces there, L3, in the VRF; gateways resolved as they would be.
    let (mut gw, mut by_if, mut lens) = (BTreeSet::new(), BTreeSet::new(), BTreeMap::new());
    for (&(vrf, p), r) in &m.routes {
        if r.origin == Origin::Connected {
            *lens.entry((vrf, p.family(), p.length())).or_insert(0u32) += 1;
        }
        if r.origin != Origin::Static {
            continue;
        }
        assert!(vrf::exists(m, vrf));
        assert!(!r.nexthops.is_empty() && r.nexthops.len() <= 16);
        for nh in &r.nexthops {
            assert!(!is_l2(&nh.iface), "route {p} through L2 {}", nh.iface);
            assert_eq!(l3(&nh.iface).vrf, vrf, "route {p} through {}", nh.iface);
            if let Some(v) = nh.via {
                assert_eq!(Family::of(&v), p.family());
                gw.insert((vrf, v, p));
                if !r.onlink && !ip::is_link_local_v6(&v) {
                    let now = route::gateway_iface(m, vrf, &v, nh.dev.as_deref());
                    assert_eq!(now.as_ref(), Some(&nh.iface), "route {p} via {v}");
                }
            }
            by_if.insert((nh.iface.clone(), vrf, p));
        }
    }
    assert_eq!(m.by_gateway.iter().cloned().collect::<BTreeSet<_>>(), gw);
    assert_eq!(m.by_iface.iter().cloned().collect::<BTreeSet<_>>(), by_if);
    assert_eq!(
        m.connected_lens
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect::<BTreeMap<_, _>>(),
        lens
    );
    // Neighbours: on L3 interfaces (in a connected subnet of theirs or not).
    for (n, a) in m.neighbors.keys() {
        assert!(!is_l2(n), "neighbour {a} on L2 interface {n}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random transactions of add/del changes, most refused: the model always keeps its
    /// invariants; a refused transaction changes nothing; the diffs alone rebuild the L3
    /// state; the journal of accepted transactions and the snapshot replay to the model.
    #[test]
    fn random_changes_keep_the_model_consistent(
        txns in proptest::collection::vec(
            prop_oneof![
                4 => proptest::collection::vec(any::<(u8, u8, u8, u8)>(), 1..=1),
                1 => proptest::collection::vec(any::<(u8, u8, u8, u8)>(), 2..=3),
            ],
            1..150,
        )
    ) {
        let mut live = world();
        let mut mirror = Mirror::of(&live);
        let mut journal: Vec<Vec<pb::Change>> = Vec::new();
        for ops in txns {
            let txn: Vec<pb::Change> = ops.into_iter().map(|o| ch(random_change(o))).collect();
            let before = live.clone();
            match live.stage(&txn, &limits()) {
                Ok(s) => {
                    check_invariants(&s.model);
                    mirror.apply(&s.diff.l3);
                    prop_assert_eq!(&mirror, &Mirror::of(&s.model));
                    live = s.model;
                    journal.push(txn);
                }
                Err(e) => {
                    prop_assert!(!e.message.contains('\n'));
                    prop_assert_eq!(&live, &before);
                }
            }
        }
        let mut replayed = world();
        for txn in &journal {
            replayed.replay(txn, &limits()).unwrap();
        }
        prop_assert_eq!(&replayed, &live);
        let mut restored = Model::new();
        for c in live.changes() {
            let desc = format!("{c:?}");
            restored.replay(&[ch(c)], &limits()).map_err(|e| {
                TestCaseError::fail(format!("{desc}: {e}"))
            })?;
        }
        // Bridge ids are allocated afresh by a replay: the same desired state, compared
        // as its changes.
        prop_assert_eq!(restored.changes(), live.changes());
    }
}
