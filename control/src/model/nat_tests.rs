//! NAT without DPDK: masquerade and port mappings, their bad input (model unchanged), what
//! goes with a deleted interface or bridge, the persisted form replayed, and the plan's
//! part (NatPlan lookups).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::service_tests::base;
use super::tests::{ch, limits, null, persisted_round_trip};
use super::*;
use crate::error::Code;
use vswitch_dataplane::nat::{addr_bits, NatPlan, TCP, UDP};
use vswitch_proto::v1::change::Change as C;

fn stage(m: &Model, changes: Vec<C>) -> ApiResult<Staged> {
    m.stage(&changes.into_iter().map(ch).collect::<Vec<_>>(), &limits())
}

fn build_on(m: &Model, changes: Vec<C>) -> Model {
    stage(m, changes).unwrap().model
}

fn masq(iface: &str, on: bool) -> C {
    C::SetMasquerade(pb::SetMasqueradeRequest {
        iface: iface.into(),
        on,
    })
}

fn pmap(iface: &str, proto: &str, port: u32, to_ip: &str, to_port: u32) -> C {
    C::AddPortMap(pb::AddPortMapRequest {
        iface: iface.into(),
        proto: proto.into(),
        port,
        to_ip: to_ip.into(),
        to_port,
    })
}

fn pdel(iface: &str, proto: &str, port: u32) -> C {
    C::DeletePortMap(pb::DeletePortMapRequest {
        iface: iface.into(),
        proto: proto.into(),
        port,
    })
}

fn refused(m: &Model, c: C, code: Code, text: &str) {
    let before = m.clone();
    let e = stage(m, vec![c]).unwrap_err();
    assert_eq!(e.code, code, "{}", e.message);
    assert!(e.message.contains(text), "{:?} lacks {text:?}", e.message);
    assert!(!e.message.contains('\n'));
    assert_eq!(*m, before);
}

/// base(), with bridge br0 (bvi:br0 10.2.0.1/24) and member m, masquerade on a, a port
/// mapping on a.
fn nat_base() -> Model {
    build_on(
        &base(),
        vec![
            C::AddBridge(pb::AddBridgeRequest {
                name: "br0".into(),
                ..Default::default()
            }),
            null("m"),
            C::AttachBridge(pb::AttachBridgeRequest {
                bridge: "br0".into(),
                iface: "m".into(),
                vlan: None,
                trunk: vec![],
            }),
            C::AddAddress(pb::AddAddressRequest {
                iface: "bvi:br0".into(),
                address: "10.2.0.1/24".into(),
            }),
            masq("a", true),
            pmap("a", "tcp", 8080, "10.2.0.5", 80),
        ],
    )
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let m = nat_base();
    refused(
        &m,
        masq("nope", true),
        Code::NotFound,
        "interface \"nope\" not found",
    );
    refused(
        &m,
        masq("bvi:nobr", true),
        Code::NotFound,
        "bridge \"nobr\" not found",
    );
    refused(&m, masq("m", true), Code::Conflict, "member of bridge");
    refused(
        &m,
        pmap("a", "tcp", 8080, "10.2.0.6", 80),
        Code::Exists,
        "a tcp 8080 is mapped to 10.2.0.5:80 already",
    );
    refused(
        &m,
        pmap("a", "icmp", 1, "10.2.0.6", 80),
        Code::Invalid,
        "proto must be tcp or udp, not \"icmp\"",
    );
    refused(
        &m,
        pmap("a", "tcp", 0, "10.2.0.6", 80),
        Code::Invalid,
        "port must be from 1 to 65535, not 0",
    );
    refused(
        &m,
        pmap("a", "tcp", 80, "10.2.0.6", 65536),
        Code::Invalid,
        "to_port must be from 1 to 65535, not 65536",
    );
    refused(
        &m,
        pmap("a", "tcp", 80, "203.0.113.9", 80),
        Code::Invalid,
        "to_ip: 203.0.113.9 is outside every network vrf 0 reaches",
    );
    refused(
        &m,
        pmap("a", "tcp", 80, "x", 80),
        Code::Invalid,
        "to_ip \"x\" is not an IP address",
    );
    refused(
        &m,
        pmap("nope", "tcp", 80, "10.2.0.6", 80),
        Code::NotFound,
        "interface \"nope\" not found",
    );
    refused(
        &m,
        pdel("a", "udp", 8080),
        Code::NotFound,
        "no port mapping on a udp 8080",
    );
    // A member with NAT settings cannot join a bridge (they would mean nothing there).
    refused(
        &m,
        C::AttachBridge(pb::AttachBridgeRequest {
            bridge: "br0".into(),
            iface: "a".into(),
            vlan: None,
            trunk: vec![],
        }),
        Code::Conflict,
        "address",
    );
}

#[test]
fn masquerade_and_portmaps_are_set_and_deleted() {
    let m = nat_base();
    assert!(m.masquerade.contains(&Arc::from("a")));
    let s = stage(
        &m,
        vec![
            masq("a", false),
            masq("bvi:br0", true),
            pdel("a", "tcp", 8080),
            pmap("bvi:br0", "udp", 53, "10.1.0.53", 5353),
        ],
    )
    .unwrap();
    assert!(s.diff.plan && s.diff.persistent);
    assert_eq!(
        s.diff.events,
        [
            ("set_masquerade", "a".to_string()),
            ("set_masquerade", "bvi:br0".to_string()),
            ("delete_port_map", "a/tcp/8080".to_string()),
            ("add_port_map", "bvi:br0/udp/53".to_string()),
        ]
    );
    let n = nat::to_pb(&s.model);
    assert_eq!(n.masquerade.len(), 1);
    assert_eq!(
        (n.masquerade[0].iface.as_str(), n.masquerade[0].v4.as_str()),
        ("bvi:br0", "10.2.0.1")
    );
    assert_eq!(n.masquerade[0].v6, "");
    assert_eq!(n.portmaps.len(), 1);
    assert_eq!(
        (n.portmaps[0].to_ip.as_str(), n.portmaps[0].to_port),
        ("10.1.0.53", 5353)
    );
    // Masquerade on twice, off when off: no error.
    assert!(stage(&m, vec![masq("a", true), masq("bvi:br0", false)]).is_ok());
}

#[test]
fn nat_settings_go_with_their_interface_or_bridge() {
    let m = build_on(
        &nat_base(),
        vec![
            masq("bvi:br0", true),
            pmap("bvi:br0", "udp", 53, "10.1.0.53", 53),
        ],
    );
    // a has a route through it: deleting it is refused (and nothing changes).
    let routes_gone = build_on(
        &m,
        vec![
            C::DeleteRoute(pb::DeleteRouteRequest {
                prefix: "10.1.0.0/16".into(),
                vrf: 0,
            }),
            C::DeleteRoute(pb::DeleteRouteRequest {
                prefix: "2001:db8:1::/48".into(),
                vrf: 0,
            }),
        ],
    );
    let s = stage(
        &routes_gone,
        vec![C::DeleteInterface(pb::DeleteInterfaceRequest {
            name: "a".into(),
        })],
    )
    .unwrap();
    assert!(!s.model.masquerade.contains(&Arc::from("a")));
    assert!(s.model.portmaps.keys().all(|(i, _, _)| &**i != "a"));
    assert!(s.diff.plan);
    let s = stage(
        &m,
        vec![C::DeleteBridge(pb::DeleteBridgeRequest {
            name: "br0".into(),
        })],
    )
    .unwrap();
    assert!(!s.model.masquerade.contains(&Arc::from("bvi:br0")));
    assert_eq!(s.model.portmaps.len(), 1, "a's mapping stays");
}

#[test]
fn the_persisted_form_replays() {
    let m = build_on(
        &nat_base(),
        vec![
            masq("bvi:br0", true),
            pmap("a", "udp", 53, "2001:db8:1::53", 53),
        ],
    );
    let (changes, text) = persisted_round_trip(&m);
    assert_eq!(
        changes
            .iter()
            .filter(|c| matches!(c, C::SetMasquerade(_)))
            .count(),
        2
    );
    assert_eq!(
        changes
            .iter()
            .filter(|c| matches!(c, C::AddPortMap(_)))
            .count(),
        2
    );
    assert!(
        text.contains("\"masquerade\"") && text.contains("\"portmaps\""),
        "{text}"
    );
}

#[test]
fn the_plan_has_masquerade_addresses_and_portmaps_by_vrf() {
    let m = build_on(&nat_base(), vec![masq("bvi:br0", true)]);
    let index = |n: &str| match n {
        "a" => Some(1),
        "bvi:br0" => Some(7),
        _ => None,
    };
    let (masquerade, portmaps) = nat::plan(&m, &index);
    assert_eq!(masquerade.len(), 2);
    let plan = NatPlan::new(vec![], masquerade, portmaps);
    let a = plan.masquerade(1).expect("a masquerades");
    assert_eq!(a.v4, Some(Ipv4Addr::new(10, 0, 0, 1)));
    assert_eq!(a.v6, Some("2001:db8::1".parse::<Ipv6Addr>().unwrap()));
    let b = plan.masquerade(7).expect("bvi:br0 masquerades");
    assert_eq!((b.v4, b.v6), (Some(Ipv4Addr::new(10, 2, 0, 1)), None));
    assert!(plan.masquerade(2).is_none());
    let ip = |s: &str| addr_bits(s.parse::<IpAddr>().unwrap());
    // The mapping answers on each of a's addresses, in a's VRF.
    assert_eq!(
        plan.portmap(0, TCP, ip("10.0.0.1"), 8080),
        Some((ip("10.2.0.5"), 80))
    );
    assert_eq!(
        plan.portmap(0, TCP, ip("2001:db8::1"), 8080),
        Some((ip("10.2.0.5"), 80))
    );
    assert_eq!(plan.portmap(0, UDP, ip("10.0.0.1"), 8080), None);
    assert_eq!(plan.portmap(5, TCP, ip("10.0.0.1"), 8080), None);
    assert_eq!(plan.portmap(0, TCP, ip("10.2.0.1"), 8080), None);
}

#[test]
fn portmaps_follow_their_interface_into_its_vrf() {
    let m = build_on(
        &base(),
        vec![
            C::AddInterface(pb::AddInterfaceRequest {
                name: "v".into(),
                r#type: "null".into(),
                args: Default::default(),
                vrf: Some(5),
                attachment: None,
            }),
            C::AddAddress(pb::AddAddressRequest {
                iface: "v".into(),
                address: "192.168.5.1/24".into(),
            }),
        ],
    );
    // 10.2.0.5 is reachable in VRF 0, not in v's VRF 5.
    refused(
        &m,
        pmap("v", "tcp", 80, "10.1.0.5", 80),
        Code::Invalid,
        "vrf 5",
    );
    let m = build_on(&m, vec![pmap("v", "tcp", 80, "192.168.5.7", 8080)]);
    let (_, portmaps) = nat::plan(&m, &|n| (n == "v").then_some(3));
    assert_eq!(portmaps.len(), 1);
    assert_eq!(portmaps[0].0, 5);
    assert_eq!(portmaps[0].1.iface, 3);
}
