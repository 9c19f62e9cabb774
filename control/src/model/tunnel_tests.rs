//! Tunnels without DPDK: every validation rule with its error code and one-line message
//! (and the model unchanged), add / delete round trips, tunnels as interfaces (bridge
//! members, addressed and routed into), their MAC -> VTEP entries, and the persisted form
//! replayed (also through the state file).

use std::net::IpAddr;

use super::*;
use crate::error::Code;
use vswitch_dataplane::plan::TunnelEncap;
use vswitch_proto::v1::change::Change as C;

fn limits() -> Limits {
    Limits {
        run_dir: std::env::temp_dir().join("vs-tunnel-test"),
        fdb_capacity: 1024,
    }
}

fn ch(c: C) -> pb::Change {
    pb::Change { change: Some(c) }
}

fn null(name: &str, vrf: Option<u32>) -> C {
    C::AddInterface(pb::AddInterfaceRequest {
        name: name.into(),
        r#type: "null".into(),
        args: Default::default(),
        vrf,
        attachment: None,
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

fn attach(br: &str, iface: &str) -> C {
    C::AttachBridge(pb::AttachBridgeRequest {
        bridge: br.into(),
        iface: iface.into(),
        vlan: None,
        trunk: vec![],
    })
}

fn route_dev(prefix: &str, dev: &str) -> C {
    C::AddRoute(pb::AddRouteRequest {
        prefix: prefix.into(),
        vrf: 0,
        nexthops: vec![pb::NextHop {
            via: String::new(),
            iface: dev.into(),
        }],
        onlink: false,
    })
}

/// A tunnel request with the given kind, local and remotes (everything else unset).
fn req(name: &str, kind: &str, local: &str, remotes: &[&str]) -> pb::AddTunnelRequest {
    pb::AddTunnelRequest {
        name: name.into(),
        kind: kind.into(),
        local: local.into(),
        remotes: remotes.iter().map(|r| r.to_string()).collect(),
        ..Default::default()
    }
}

fn vxlan(name: &str, vni: u32, remotes: &[&str]) -> pb::AddTunnelRequest {
    pb::AddTunnelRequest {
        vni: Some(vni),
        ..req(name, "vxlan", "192.0.2.1", remotes)
    }
}

fn add(r: pb::AddTunnelRequest) -> C {
    C::AddTunnel(r)
}

fn del(name: &str) -> C {
    C::DeleteTunnel(pb::DeleteTunnelRequest { name: name.into() })
}

fn vtep(t: &str, mac: &str, remote: &str) -> C {
    C::AddTunnelFdb(pb::AddTunnelFdbRequest {
        tunnel: t.into(),
        mac: mac.into(),
        remote: remote.into(),
    })
}

fn build(changes: Vec<C>) -> Model {
    let mut m = Model::new();
    for c in changes {
        let desc = format!("{c:?}");
        m.replay(&[ch(c)], &limits())
            .unwrap_or_else(|e| panic!("{desc}: {e}"));
    }
    m
}

/// VRF 5; u (192.0.2.1/24, 2001:db8::1/64) and u5 in VRF 5 (198.51.100.1/24); bridge br0
/// with member m, its routed interface 203.0.113.1/24.
fn underlay() -> Vec<C> {
    vec![
        C::AddVrf(pb::AddVrfRequest { id: 5 }),
        null("u", None),
        null("u5", Some(5)),
        null("m", None),
        C::AddBridge(pb::AddBridgeRequest {
            name: "br0".into(),
            ..Default::default()
        }),
        attach("br0", "m"),
        addr("u", "192.0.2.1/24"),
        addr("u", "2001:db8::1/64"),
        addr("u5", "198.51.100.1/24"),
        addr("bvi:br0", "203.0.113.1/24"),
    ]
}

/// The underlay and one tunnel of each kind: vx (vni 42, two remotes), gv (geneve vni 42),
/// gr (gre key 7 to 192.0.2.2), ip (ipip point-to-multipoint).
fn base() -> Model {
    let mut c = underlay();
    c.extend([
        add(vxlan("vx", 42, &["192.0.2.2", "192.0.2.3"])),
        add(pb::AddTunnelRequest {
            vni: Some(42),
            ..req("gv", "geneve", "192.0.2.1", &[])
        }),
        add(pb::AddTunnelRequest {
            key: Some(7),
            ..req("gr", "gre", "192.0.2.1", &["192.0.2.2"])
        }),
        add(req("ip", "ipip", "192.0.2.1", &[])),
    ]);
    build(c)
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

fn accepted(m: &Model, changes: Vec<C>) -> Staged {
    let desc = format!("{changes:?}");
    m.stage(&changes.into_iter().map(ch).collect::<Vec<_>>(), &limits())
        .unwrap_or_else(|e| panic!("{desc}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn each_kind_is_an_interface_with_its_defaults() {
    let m = base();
    let t = |n: &str| {
        tunnel::get(&m, n)
            .map(|(i, t)| (i.clone(), t.clone()))
            .unwrap()
    };
    let (i, vx) = t("vx");
    assert_eq!(i.spec.type_name, "vxlan");
    assert_eq!(
        vx.encap,
        TunnelEncap::Vxlan {
            vni: 42,
            port: 4789
        }
    );
    assert_eq!(vx.remotes, vec![ip("192.0.2.2"), ip("192.0.2.3")]);
    assert_eq!((vx.ttl, vx.df, vx.vrf), (64, false, 0));
    assert_eq!(i.spec.mtu, Some(1450), "1500 - 50");
    assert_eq!(i.spec.mac, Some(tunnel::tunnel_mac("vx")));
    assert!(i.admin_up);
    let (i, gv) = t("gv");
    assert_eq!(
        gv.encap,
        TunnelEncap::Geneve {
            vni: 42,
            port: 6081
        }
    );
    assert_eq!(i.spec.mtu, Some(1450));
    let (i, gr) = t("gr");
    assert_eq!(
        gr.encap,
        TunnelEncap::Gre {
            key: Some(7),
            teb: false
        }
    );
    assert_eq!(i.spec.mtu, Some(1472), "1500 - 28");
    assert_eq!(i.spec.mac, None, "gre l3 carries IP packets");
    let (i, ipip) = t("ip");
    assert_eq!((ipip.encap, ipip.remotes.len()), (TunnelEncap::Ipip, 0));
    assert_eq!(i.spec.mtu, Some(1480));
    // In the interface list, with their kind as type.
    let types: Vec<_> = m
        .ifaces()
        .filter(|(_, i)| i.spec.tunnel().is_some())
        .map(|(n, i)| (n.as_str(), i.spec.type_name.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("gr", "gre"),
            ("gv", "geneve"),
            ("ip", "ipip"),
            ("vx", "vxlan")
        ]
    );
    // Proto form: CONTRACT's fields.
    let (i, t) = tunnel::get(&m, "gr").unwrap();
    let p = tunnel::to_pb(&m, "gr", i, t, 9);
    assert_eq!(
        (
            p.kind.as_str(),
            p.local.as_str(),
            p.remotes.clone(),
            p.vni,
            p.key,
            p.vrf
        ),
        (
            "gre",
            "192.0.2.1",
            vec!["192.0.2.2".to_string()],
            None,
            Some(7),
            0
        )
    );
    assert_eq!((p.mode.as_str(), p.index, p.mtu), ("l3", 9, 1472));
    // IPv6 underlay: 20 more bytes of overhead; settings given.
    let s = accepted(
        &m,
        vec![add(pb::AddTunnelRequest {
            vni: Some(0),
            port: Some(8472),
            ttl: Some(0),
            df: Some(true),
            mac: "02:aa:00:00:00:01".into(),
            ..req("v6", "vxlan", "2001:db8::1", &["2001:db8::2"])
        })],
    );
    let (i, t) = tunnel::get(&s.model, "v6").unwrap();
    assert_eq!(i.spec.mtu, Some(1430));
    assert_eq!(t.encap, TunnelEncap::Vxlan { vni: 0, port: 8472 });
    assert_eq!((t.ttl, t.df), (0, true));
    assert_eq!(i.spec.mac, Some([2, 0xaa, 0, 0, 0, 1]));
    assert!(s.diff.plan && s.diff.persistent && s.diff.ports.is_empty());
    assert_eq!(s.diff.events, [("add_tunnel", "v6".to_string())]);
}

#[test]
fn every_validation_error_is_clear_and_changes_nothing() {
    let m = base();
    let cases: Vec<(C, Code, &str)> = vec![
        (add(vxlan("vx", 1, &[])), Code::Exists, "interface \"vx\" exists already"),
        (add(vxlan("u", 1, &[])), Code::Exists, "interface \"u\" exists already"),
        (add(vxlan("bad name", 1, &[])), Code::Invalid, "name"),
        (
            add(req("t", "mpls", "192.0.2.1", &[])),
            Code::Invalid,
            "kind \"mpls\" is unknown; kinds: vxlan, geneve, gre, ipip",
        ),
        (
            add(vxlan("t", 1 << 24, &[])),
            Code::Invalid,
            "vni must be from 0 to 16777215 (24 bits), not 16777216",
        ),
        (
            add(req("t", "vxlan", "192.0.2.1", &[])),
            Code::Invalid,
            "a vxlan tunnel needs vni=N",
        ),
        (
            add(pb::AddTunnelRequest {
                vni: Some(1),
                ..req("t", "vxlan", "192.0.2.9", &[])
            }),
            Code::Conflict,
            "local 192.0.2.9 is not an address of the switch in vrf 0",
        ),
        (
            add(pb::AddTunnelRequest {
                vni: Some(1),
                vrf: 5,
                ..req("t", "vxlan", "192.0.2.1", &[])
            }),
            Code::Conflict,
            "local 192.0.2.1 is not an address of the switch in vrf 5",
        ),
        (
            add(pb::AddTunnelRequest {
                vni: Some(1),
                vrf: 7,
                ..req("t", "vxlan", "192.0.2.1", &[])
            }),
            Code::NotFound,
            "vrf 7 not found",
        ),
        (
            add(vxlan("t", 1, &["192.0.2.1"])),
            Code::Invalid,
            "remote 192.0.2.1 is the tunnel's local address",
        ),
        (
            add(vxlan("t", 1, &["2001:db8::2"])),
            Code::Invalid,
            "remote 2001:db8::2 is IPv6 but local 192.0.2.1 is IPv4",
        ),
        (
            add(vxlan("t", 1, &["192.0.2.5", "192.0.2.5"])),
            Code::Invalid,
            "remote 192.0.2.5 is given twice",
        ),
        (
            add(vxlan("t", 1, &["224.0.0.5"])),
            Code::Invalid,
            "a unicast address is needed",
        ),
        (add(vxlan("t", 1, &["x"])), Code::Invalid, "remote \"x\" is not an IP address"),
        (
            add(vxlan("t", 42, &[])),
            Code::Conflict,
            "tunnel \"vx\" already has vni 42 on 192.0.2.1 in vrf 0, UDP port 4789",
        ),
        (
            add(pb::AddTunnelRequest {
                vni: Some(5),
                port: Some(6081),
                ..req("t", "vxlan", "192.0.2.1", &[])
            }),
            Code::Conflict,
            "UDP port 6081 on 192.0.2.1 in vrf 0 is geneve tunnel \"gv\"'s",
        ),
        (
            add(pb::AddTunnelRequest {
                vni: Some(5),
                port: Some(0),
                ..req("t", "vxlan", "192.0.2.1", &[])
            }),
            Code::Invalid,
            "port must be from 1 to 65535, not 0",
        ),
        (
            add(pb::AddTunnelRequest {
                key: Some(7),
                ..req("t", "gre", "192.0.2.1", &["192.0.2.2"])
            }),
            Code::Conflict,
            "gre tunnel \"gr\" already joins 192.0.2.1 in vrf 0 to 192.0.2.2 with key 7",
        ),
        (
            add(req("t", "gre", "192.0.2.1", &[])),
            Code::Invalid,
            "a gre tunnel has exactly one remote=IP, not 0",
        ),
        (
            add(pb::AddTunnelRequest {
                mode: "tap".into(),
                ..req("t", "gre", "192.0.2.1", &["192.0.2.2"])
            }),
            Code::Invalid,
            "mode must be l3 or teb, not \"tap\"",
        ),
        (
            add(pb::AddTunnelRequest {
                vni: Some(1),
                ..req("t", "gre", "192.0.2.1", &["192.0.2.2"])
            }),
            Code::Invalid,
            "vni is not a setting of gre tunnels",
        ),
        (
            add(pb::AddTunnelRequest {
                key: Some(1),
                ..vxlan("t", 1, &[])
            }),
            Code::Invalid,
            "key is not a setting of vxlan tunnels",
        ),
        (
            add(req("t", "ipip", "192.0.2.1", &[])),
            Code::Conflict,
            "ipip tunnel \"ip\" is already the point-to-multipoint tunnel of 192.0.2.1 in vrf 0",
        ),
        (
            add(req("t", "ipip", "192.0.2.1", &["192.0.2.2", "192.0.2.3"])),
            Code::Invalid,
            "an ipip tunnel has one remote=IP, or none",
        ),
        (
            add(pb::AddTunnelRequest {
                mac: "02:00:00:00:00:01".into(),
                ..req("t", "ipip", "192.0.2.1", &["192.0.2.9"])
            }),
            Code::Invalid,
            "an ipip tunnel carries IP packets: it has no MAC to set",
        ),
        (
            add(pb::AddTunnelRequest {
                mac: "01:00:5e:00:00:01".into(),
                ..vxlan("t", 1, &[])
            }),
            Code::Invalid,
            "a unicast address is needed",
        ),
        (
            add(pb::AddTunnelRequest {
                ttl: Some(256),
                ..vxlan("t", 1, &[])
            }),
            Code::Invalid,
            "ttl must be from 0 (inherit) to 255, not 256",
        ),
        (
            add(pb::AddTunnelRequest {
                mtu: Some(20),
                ..vxlan("t", 1, &[])
            }),
            Code::Invalid,
            "mtu must be a number from 68",
        ),
        // What uses a tunnel's local address, and tunnels as interfaces.
        (
            addr_del("u", "192.0.2.1/24"),
            Code::Conflict,
            "address 192.0.2.1/24 of interface \"u\" is the local address of tunnel",
        ),
        (
            C::DeleteInterface(pb::DeleteInterfaceRequest { name: "u".into() }),
            Code::Conflict,
            "is the local address of tunnel",
        ),
        (
            C::DeleteInterface(pb::DeleteInterfaceRequest { name: "vx".into() }),
            Code::Conflict,
            "interface \"vx\" is a tunnel: tunnel del vx deletes it",
        ),
        (del("u"), Code::NotFound, "interface \"u\" is not a tunnel (it is null)"),
        (del("nope"), Code::NotFound, "tunnel \"nope\" not found"),
        (
            attach("br0", "gr"),
            Code::Conflict,
            "tunnel \"gr\" (gre mode=l3) carries IP packets: a bridge takes tunnels that carry Ethernet",
        ),
        (
            attach("br0", "ip"),
            Code::Conflict,
            "tunnel \"ip\" (ipip) carries IP packets",
        ),
        (
            C::AddXconnect(pb::AddXconnectRequest {
                iface_a: "vx".into(),
                iface_b: "u5".into(),
            }),
            Code::Conflict,
            "interface \"vx\" is a tunnel: tunnels are not cross-connected",
        ),
        // MAC -> VTEP entries.
        (
            vtep("gr", "02:00:00:00:00:01", "192.0.2.2"),
            Code::Invalid,
            "tunnel \"gr\" is a gre tunnel (mode l3): MAC -> VTEP entries are for vxlan and geneve tunnels",
        ),
        (
            vtep("vx", "ff:ff:ff:ff:ff:ff", "192.0.2.2"),
            Code::Invalid,
            "a unicast address is needed",
        ),
        (
            vtep("vx", "02:00:00:00:00", "192.0.2.2"),
            Code::Invalid,
            "is not a MAC address",
        ),
        (
            vtep("vx", "02:00:00:00:00:01", "192.0.2.1"),
            Code::Invalid,
            "remote 192.0.2.1 is the tunnel's local address",
        ),
        (
            vtep("vx", "02:00:00:00:00:01", "2001:db8::5"),
            Code::Invalid,
            "is IPv6 but local 192.0.2.1 is IPv4",
        ),
        (vtep("nope", "02:00:00:00:00:01", "192.0.2.2"), Code::NotFound, "tunnel \"nope\" not found"),
        (
            C::DeleteTunnelFdb(pb::DeleteTunnelFdbRequest {
                tunnel: "vx".into(),
                mac: "02:00:00:00:00:01".into(),
            }),
            Code::NotFound,
            "tunnel \"vx\" has no entry for 02:00:00:00:00:01",
        ),
        // remote= of a bridge entry: only behind a vxlan / geneve member.
        (
            C::AddFdb(pb::AddFdbRequest {
                bridge: "br0".into(),
                mac: "02:00:00:00:00:01".into(),
                iface: "m".into(),
                vlan: 0,
                remote: "192.0.2.2".into(),
            }),
            Code::Invalid,
            "remote is for entries behind a vxlan or geneve tunnel, and \"m\" is not one",
        ),
    ];
    for (c, code, text) in cases {
        refused_on(&m, c, code, text);
    }
}

#[test]
fn add_then_delete_leaves_the_model_as_it_was() {
    let m = build(underlay());
    for r in [
        vxlan("t", 7, &["192.0.2.9"]),
        pb::AddTunnelRequest {
            key: None,
            mode: "teb".into(),
            ..req("t", "gre", "203.0.113.1", &["203.0.113.9"])
        },
        pb::AddTunnelRequest {
            vrf: 5,
            ..req("t", "ipip", "198.51.100.1", &["198.51.100.2"])
        },
    ] {
        let s = accepted(&m, vec![add(r.clone()), del("t")]);
        assert_eq!(s.model, m, "{r:?}");
        let added = build_on(&m, vec![add(r.clone())]);
        assert_ne!(added, m);
        let gone = build_on(&added, vec![del("t")]);
        assert_eq!(gone, m, "{r:?}");
        // Its local address is free again.
        build_on(&gone, vec![addr_del("u", "192.0.2.1/24")]);
    }
}

fn build_on(m: &Model, changes: Vec<C>) -> Model {
    let mut m = m.clone();
    for c in changes {
        let desc = format!("{c:?}");
        m.replay(&[ch(c)], &limits())
            .unwrap_or_else(|e| panic!("{desc}: {e}"));
    }
    m
}

#[test]
fn a_tunnel_is_a_bridge_member_or_an_l3_interface() {
    let m = base();
    // An L2 tunnel joins a bridge; its static entries may name a VTEP; it forwards (in the
    // plan) among the others. Then it cannot take MAC -> VTEP entries of its own.
    let s = build_on(
        &m,
        vec![
            attach("br0", "vx"),
            C::AddFdb(pb::AddFdbRequest {
                bridge: "br0".into(),
                mac: "02:00:00:00:00:05".into(),
                iface: "vx".into(),
                vlan: 0,
                remote: "192.0.2.7".into(),
            }),
        ],
    );
    let id = s.bridge("br0").unwrap().id;
    let key = (id, 0, [2, 0, 0, 0, 0, 5]);
    assert_eq!(s.static_entry(&key), Some("vx"));
    assert_eq!(s.static_remote(&key), Some(ip("192.0.2.7")));
    refused_on(
        &s,
        vtep("vx", "02:00:00:00:00:01", "192.0.2.2"),
        Code::Conflict,
        "tunnel \"vx\" is a member of bridge \"br0\": its entries are the bridge's",
    );
    refused_on(
        &s,
        addr("vx", "10.244.0.0/32"),
        Code::Conflict,
        "is a member of bridge \"br0\"",
    );
    // Deleting it takes its membership and entries with it.
    let gone = build_on(&s, vec![del("vx")]);
    assert_eq!(gone.statics_len(), 0);
    assert!(!gone.bridge("br0").unwrap().members.contains_key("vx"));
    // gre in teb mode is an L2 tunnel too.
    build_on(
        &m,
        vec![
            add(pb::AddTunnelRequest {
                mode: "teb".into(),
                ..req("gt", "gre", "192.0.2.1", &["192.0.2.2"])
            }),
            attach("br0", "gt"),
        ],
    );

    // flannel's way: an addressed vxlan tunnel (a /32 alone), a route onlink through it, a
    // static neighbour for the onlink gateway outside every subnet of the tunnel, and a
    // MAC -> VTEP entry for the remote node.
    let f = build_on(
        &m,
        vec![
            addr("vx", "10.244.0.0/32"),
            C::AddRoute(pb::AddRouteRequest {
                prefix: "10.245.1.0/24".into(),
                vrf: 0,
                nexthops: vec![pb::NextHop {
                    via: "10.244.1.0".into(),
                    iface: "vx".into(),
                }],
                onlink: true,
            }),
            C::AddNeighbor(pb::AddNeighborRequest {
                iface: "vx".into(),
                ip: "10.244.1.0".into(),
                mac: "02:00:00:00:01:01".into(),
            }),
            vtep("vx", "02:00:00:00:01:01", "192.0.2.20"),
            route_dev("10.9.0.0/16", "ip"),
            addr("gr", "10.8.0.1/30"),
        ],
    );
    assert_eq!(f.vteps.len(), 1);
    // A tunnel with entries stays out of bridges; one with a route through it cannot go.
    refused_on(
        &f,
        attach("br0", "vx"),
        Code::Conflict,
        "tunnel \"vx\" has MAC -> VTEP entries",
    );
    refused_on(
        &f,
        del("vx"),
        Code::Conflict,
        "interface \"vx\" is used by route 10.245.1.0/24 (vrf 0); delete the route first",
    );
    refused_on(
        &f,
        del("ip"),
        Code::Conflict,
        "is used by route 10.9.0.0/16",
    );
    // An addressed tunnel goes with its addresses (as an interface does).
    let g = build_on(&f, vec![del("gr")]);
    assert!(addr::first(&g, "gr").is_none());
    // Replacing an entry's remote, then deleting it.
    let r = build_on(
        &f,
        vec![
            vtep("vx", "02:00:00:00:01:01", "192.0.2.21"),
            C::DeleteTunnelFdb(pb::DeleteTunnelFdbRequest {
                tunnel: "vx".into(),
                mac: "02:00:00:00:01:01".into(),
            }),
        ],
    );
    assert!(r.vteps.is_empty());
    // Interface settings: MTU (no buffer class applies), down, another overlay VRF.
    let st = build_on(
        &m,
        vec![C::SetInterface(pb::SetInterfaceRequest {
            name: "vx".into(),
            admin_up: Some(false),
            mtu: Some(9000),
            vrf: Some(5),
        })],
    );
    let i = st.iface("vx").unwrap();
    assert_eq!((i.admin_up, i.spec.mtu, i.l3.vrf), (false, Some(9000), 5));
}

#[test]
fn a_tunnels_underlay_cannot_be_another_tunnel() {
    let m = build_on(&base(), vec![addr("gr", "10.8.0.1/30")]);
    refused_on(
        &m,
        add(pb::AddTunnelRequest {
            vni: Some(1),
            ..req("in", "vxlan", "10.8.0.1", &[])
        }),
        Code::Conflict,
        "local 10.8.0.1 is an address of tunnel \"gr\": a tunnel's underlay cannot be another tunnel",
    );
    // A routed interface of a bridge can be the underlay.
    build_on(
        &m,
        vec![add(pb::AddTunnelRequest {
            vni: Some(1),
            ..req("onbvi", "vxlan", "203.0.113.1", &[])
        })],
    );
}

/// Everything tunnels hold, persisted: replaying `changes()` gives the same model, and
/// so does the state file's form of it (its tunnel sections come after the addresses
/// the tunnels start from).
#[test]
fn the_persisted_form_restores_tunnels_and_what_hangs_on_them() {
    let m = build_on(
        &base(),
        vec![
            add(pb::AddTunnelRequest {
                mode: "teb".into(),
                mtu: Some(1400),
                ttl: Some(0),
                df: Some(true),
                ..req("gt", "gre", "203.0.113.1", &["203.0.113.9"])
            }),
            attach("br0", "gt"),
            C::AddFdb(pb::AddFdbRequest {
                bridge: "br0".into(),
                mac: "02:00:00:00:00:05".into(),
                iface: "gt".into(),
                vlan: 0,
                remote: String::new(),
            }),
            attach("br0", "gv"),
            C::AddFdb(pb::AddFdbRequest {
                bridge: "br0".into(),
                mac: "02:00:00:00:00:06".into(),
                iface: "gv".into(),
                vlan: 0,
                remote: "192.0.2.66".into(),
            }),
            addr("vx", "10.244.0.0/32"),
            vtep("vx", "02:00:00:00:01:01", "192.0.2.20"),
            route_dev("10.9.0.0/16", "ip"),
            C::SetInterface(pb::SetInterfaceRequest {
                name: "gr".into(),
                admin_up: Some(false),
                mtu: Some(1300),
                vrf: Some(5),
            }),
            addr("gr", "10.8.0.1/30"),
        ],
    );
    let changes = m.changes();
    let mut again = Model::new();
    again
        .replay(
            &changes.iter().cloned().map(ch).collect::<Vec<_>>(),
            &limits(),
        )
        .unwrap();
    assert_eq!(again, m);
    let snap = crate::state::Snapshot {
        seq: 3,
        changes: changes.clone(),
    };
    let text = crate::state::encode(&snap).unwrap();
    assert!(text.contains("\"tunnels\"") && text.contains("\"tunnel_addresses\""));
    let back = crate::state::decode(&text).unwrap();
    assert_eq!(back, snap, "the state file keeps the order");
    let mut restored = Model::new();
    restored
        .replay(
            &back.changes.into_iter().map(ch).collect::<Vec<_>>(),
            &limits(),
        )
        .unwrap();
    assert_eq!(restored, m);
    // The MTU given is kept; the default one is not written.
    let add_of = |n: &str| {
        changes.iter().find_map(|c| match c {
            C::AddTunnel(r) if r.name == n => Some(r.clone()),
            _ => None,
        })
    };
    assert_eq!(add_of("gt").unwrap().mtu, Some(1400));
    assert_eq!(add_of("vx").unwrap().mtu, None);
    assert_eq!(add_of("gr").unwrap().mtu, Some(1300));
}

/// A point-to-multipoint ipip tunnel sends to a route's IPv4 next hop, so it takes IPv4
/// routes only; a point-to-point one takes both families.
#[test]
fn a_point_to_multipoint_ipip_tunnel_takes_ipv4_routes_only() {
    let m = base();
    let onlink = |prefix: &str, via: &str, dev: &str| {
        C::AddRoute(pb::AddRouteRequest {
            prefix: prefix.into(),
            vrf: 0,
            nexthops: vec![pb::NextHop {
                via: via.into(),
                iface: dev.into(),
            }],
            onlink: true,
        })
    };
    accepted(
        &m,
        vec![
            onlink("10.250.1.0/24", "192.168.44.2", "ip"),
            route_dev("10.250.2.0/24", "ip"),
        ],
    );
    for c in [
        onlink("2001:db8:1::/64", "2001:db8:9::2", "ip"),
        route_dev("2001:db8:1::/64", "ip"),
    ] {
        refused_on(&m, c, Code::Invalid, "takes IPv4 routes only");
    }
    accepted(
        &m,
        vec![
            onlink("2001:db8:1::/64", "2001:db8:9::2", "gr"),
            route_dev("2001:db8:2::/64", "gr"),
        ],
    );
}
