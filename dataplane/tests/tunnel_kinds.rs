//! GRE (teb with a key, l3), IPIP and Geneve on real mbufs, beside tests/vxlan.rs: a bridge
//! with a gre teb member and a geneve member, and addressed gre l3 / ipip tunnels in an
//! overlay VRF, over one routed underlay interface. What leaves is read back with the wire
//! parsers (outer IPv4, GRE key and Protocol Type, Geneve VNI and Protocol Type, IPIP
//! protocol, the inner frame or packet); what arrives is decapsulated and delivered; the
//! GRE remote is learned; no mbuf leaks.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use common::{try_eal, Rig};
use dpdk::Mempool;
use vswitch_dataplane::l2::fdb::FdbKey;
use vswitch_dataplane::l3::{Fib4Writer, Fib6Writer, NextHop, NextHops};
use vswitch_dataplane::plan::{
    BridgePlan, ForwardingPlan, L2Port, L3Plan, L3Port, TunnelEncap, TunnelPlan, VlanMode, VrfPlan,
    WorkerPlan,
};
use vswitch_dataplane::wire::geneve::GeneveHeader;
use vswitch_dataplane::wire::gre::{GrePacket, GreRepr};
use vswitch_dataplane::wire::ipv4::{self, Ipv4Packet, Ipv4Repr, PROTO_GRE, PROTO_UDP};
use vswitch_dataplane::wire::tunnel::{encap_gre_v4, encap_ipip_v4, Inner, OuterV4};
use vswitch_dataplane::wire::udp::UdpPacket;
use vswitch_dataplane::{DropReason, IfacePlan, Input, Stage, Tx};

const UL: u16 = 1;
const POD: u16 = 2;
/// gre teb, key 7, remote R2; geneve VNI 9, remotes R2 and R3 (bridge 1 with POD).
const G: u16 = 3;
const GV: u16 = 4;
/// VRF 1: NET (routed), GL3 (gre l3, key 5, remote R2), IP4 (ipip, remote R3).
const NET: u16 = 5;
const GL3: u16 = 6;
const IP4: u16 = 7;

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const R2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const R3: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
const MAC_UL: [u8; 6] = [2, 0, 0, 0, 0, 1];
const NH2: [u8; 6] = [2, 0xaa, 0, 0, 0, 2];
const NH3: [u8; 6] = [2, 0xaa, 0, 0, 0, 3];
const MAC_NET: [u8; 6] = [2, 0, 0, 0, 0, 5];
const HOST: [u8; 6] = [2, 0xdd, 0, 0, 0, 9];

fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0x10, n]
}

fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x88, 0xb5]);
    f.extend((0..len - 14).map(|i| i as u8));
    f
}

/// An IPv4 packet (no Ethernet) of `len` bytes from `src` to `dst`, TTL 64.
fn ip_packet(src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    ipv4::emit(
        &mut b,
        &Ipv4Repr {
            src,
            dst,
            protocol: PROTO_UDP,
            ttl: 64,
            dscp_ecn: 0,
            ident: 1,
            dont_fragment: false,
            payload_len: (len - 20) as u16,
        },
    )
    .unwrap();
    b
}

fn outer_v4(src: Ipv4Addr) -> OuterV4 {
    OuterV4 {
        src_mac: NH2,
        dst_mac: MAC_UL,
        src,
        dst: LOCAL,
        ttl: 64,
        dscp_ecn: 0,
        dont_fragment: false,
        ident: 3,
    }
}

/// A GRE packet from `src` to LOCAL around `inner` (Protocol Type `proto`, `key`).
fn gre_in(src: Ipv4Addr, key: Option<u32>, proto: u16, inner: &[u8]) -> Vec<u8> {
    let repr = GreRepr {
        protocol: proto,
        checksum: false,
        key,
        seq: None,
    };
    let mut b = vec![0u8; 64];
    let n = encap_gre_v4(&mut b, &outer_v4(src), &repr, inner.len()).unwrap();
    b.truncate(n);
    b.extend_from_slice(inner);
    b
}

fn tunnel(iface: u16, encap: TunnelEncap, remotes: &[Ipv4Addr]) -> TunnelPlan {
    TunnelPlan {
        iface,
        encap,
        vrf: 0,
        local: IpAddr::V4(LOCAL),
        remotes: remotes.iter().map(|r| IpAddr::V4(*r)).collect(),
        ttl: 64,
        df: false,
        mtu: 1450,
        mac: [2, 0, 0, 0, 0, 0x70],
        vteps: vec![],
    }
}

type Tables = (
    Fib4Writer,
    Fib6Writer,
    Fib4Writer,
    Fib6Writer,
    Arc<NextHops>,
);

fn plan() -> (ForwardingPlan, Tables) {
    let member = IfacePlan {
        up: true,
        input: Input::Bridge,
        l2: Some(L2Port {
            bridge: 1,
            mode: VlanMode::Untagged,
            up: true,
        }),
        max_frame: IfacePlan::max_frame_of(1500),
        l3: None,
    };
    let routed = |vrf, mac| IfacePlan {
        up: true,
        input: Input::Route,
        l2: None,
        max_frame: IfacePlan::max_frame_of(1500),
        l3: Some(L3Port { vrf, mac }),
    };
    let mut ifaces = vec![None; 8];
    ifaces[usize::from(UL)] = Some(routed(0, MAC_UL));
    for i in [POD, G, GV] {
        ifaces[usize::from(i)] = Some(member.clone());
    }
    ifaces[usize::from(NET)] = Some(routed(1, MAC_NET));
    ifaces[usize::from(GL3)] = Some(routed(1, [2, 0, 0, 0, 0, 6]));
    ifaces[usize::from(IP4)] = Some(routed(1, [2, 0, 0, 0, 0, 7]));
    let mut bridges = vec![None; 2];
    bridges[1] = Some(BridgePlan {
        learn: true,
        flood: true,
        members: vec![POD, G, GV],
        bvi: None,
    });
    let nhs = Arc::new(NextHops::new(64).unwrap());
    nhs.set(
        1,
        NextHop::Forward {
            iface: UL,
            mac: NH2,
        },
    );
    nhs.set(
        2,
        NextHop::Forward {
            iface: UL,
            mac: NH3,
        },
    );
    nhs.set(3, NextHop::Local);
    // Through the L3 tunnels: a neighbour entry of any MAC (nothing resolves on them).
    nhs.set(
        4,
        NextHop::Forward {
            iface: GL3,
            mac: [0; 6],
        },
    );
    nhs.set(
        5,
        NextHop::Forward {
            iface: IP4,
            mac: [0; 6],
        },
    );
    nhs.set(
        6,
        NextHop::Forward {
            iface: NET,
            mac: HOST,
        },
    );
    let mut u4 = Fib4Writer::new(16).unwrap();
    u4.insert(u32::from(R2), 32, 1).unwrap();
    u4.insert(u32::from(R3), 32, 2).unwrap();
    u4.insert(u32::from(LOCAL), 32, 3).unwrap();
    let mut o4 = Fib4Writer::new(16).unwrap();
    o4.insert(u32::from(Ipv4Addr::new(10, 5, 0, 0)), 16, 4)
        .unwrap();
    o4.insert(u32::from(Ipv4Addr::new(10, 7, 0, 0)), 16, 5)
        .unwrap();
    o4.insert(u32::from(Ipv4Addr::new(10, 244, 0, 0)), 24, 6)
        .unwrap();
    let (u6, o6) = (Fib6Writer::new(4).unwrap(), Fib6Writer::new(4).unwrap());
    let mut tx = vec![Tx::None; 8];
    for t in [G, GV, GL3, IP4] {
        tx[usize::from(t)] = Tx::Tunnel;
    }
    let plan = ForwardingPlan {
        ifaces,
        bridges,
        workers: vec![WorkerPlan { rx: vec![], tx }],
        l3: L3Plan {
            vrfs: vec![
                Some(VrfPlan {
                    fib4: u4.fib().clone(),
                    fib6: u6.fib().clone(),
                }),
                Some(VrfPlan {
                    fib4: o4.fib().clone(),
                    fib6: o6.fib().clone(),
                }),
            ],
            nexthops: Some(nhs.clone()),
        },
        tunnels: vec![
            tunnel(
                G,
                TunnelEncap::Gre {
                    key: Some(7),
                    teb: true,
                },
                &[R2],
            ),
            tunnel(GV, TunnelEncap::Geneve { vni: 9, port: 6081 }, &[R2, R3]),
            tunnel(
                GL3,
                TunnelEncap::Gre {
                    key: Some(5),
                    teb: false,
                },
                &[R2],
            ),
            tunnel(IP4, TunnelEncap::Ipip, &[R3]),
        ],
        ..Default::default()
    };
    (plan, (u4, u6, o4, o6, nhs))
}

/// The outer IPv4 header of `f` (checked: from LOCAL, MAC_UL, TTL 64, checksum) and what
/// follows it.
fn outer(f: &[u8]) -> (Ipv4Addr, u8, Vec<u8>) {
    assert_eq!(&f[6..12], &MAC_UL);
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert_eq!((ip.src(), ip.ttl()), (LOCAL, 64));
    assert!(ip.header_checksum_ok());
    assert_eq!(usize::from(ip.total_len()), f.len() - 14);
    (ip.dst(), ip.protocol(), ip.payload().to_vec())
}

#[test]
fn gre_geneve_and_ipip_on_real_mbufs() {
    let args = dpdk::light_args("0", &format!("vstk{}", std::process::id()));
    let Some(eal) = try_eal(&args) else {
        return;
    };
    let pool = Arc::new(Mempool::with_data_room(&eal, "tk_test", 512, 0, 2048 + 128).unwrap());
    let base = pool.in_use();
    let mut r = Rig::new(&pool, 1024, &[(1, vec![POD, G, GV])], (64, 8));
    let (plan, _tables) = plan();

    // A broadcast from POD: one GRE packet (key 7, 0x6558) to R2, Geneve (VNI 9, 0x6558)
    // to R2 and R3, each carrying the frame unchanged.
    let bcast = frame([0xff; 6], mac(1), 60);
    r.send(&plan, POD, std::slice::from_ref(&bcast));
    let out = r.take(UL);
    assert_eq!(out.len(), 3);
    let (dst, proto, gre) = outer(&out[0]);
    assert_eq!((dst, proto), (R2, PROTO_GRE));
    let g = GrePacket::new_checked(&gre[..]).unwrap();
    assert_eq!(
        (g.protocol(), g.key(), g.header_len()),
        (0x6558, Some(7), 8)
    );
    assert_eq!(g.payload(), &bcast[..]);
    for (f, want) in out[1..].iter().zip([R2, R3]) {
        let (dst, proto, udp) = outer(f);
        assert_eq!((dst, proto), (want, PROTO_UDP));
        let u = UdpPacket::new_checked(&udp[..]).unwrap();
        assert_eq!((u.dst_port(), u.checksum()), (6081, 0));
        let h = GeneveHeader::new_checked(u.payload()).unwrap();
        assert_eq!((h.vni(), h.protocol(), h.options_len()), (9, 0x6558, 0));
        assert_eq!(h.payload(), &bcast[..]);
    }

    // GRE teb from R2 with key 7 is delivered to POD and its source learned behind G (R2);
    // a reply goes back in GRE to R2 only. Another key is tunnel_unknown.
    let inner = frame(mac(1), mac(0x22), 60);
    r.send(
        &plan,
        UL,
        &[
            gre_in(R2, Some(7), 0x6558, &inner),
            gre_in(R2, Some(8), 0x6558, &inner),
        ],
    );
    assert_eq!(r.take(POD), vec![inner.clone()]);
    let hit =
        r.l2.fdb
            .lookup(&FdbKey {
                bridge: 1,
                vlan: 0,
                mac: mac(0x22),
            })
            .unwrap();
    assert_eq!((hit.entry.port, hit.remote), (G, u32::from(R2)));
    let s = r.counters.snapshot();
    assert_eq!(
        s.stages[Stage::TunnelDecap as usize].drops[DropReason::TunnelUnknown as usize],
        1
    );
    r.send(&plan, POD, &[frame(mac(0x22), mac(1), 60)]);
    let out = r.take(UL);
    assert_eq!(out.len(), 1);
    assert_eq!(outer(&out[0]).0, R2);

    // Routed into gre l3 (key 5) and ipip: the IP packet, TTL 63, in GRE 0x0800 to R2 and
    // in IPIP (protocol 4) to R3.
    let eth = |dst: [u8; 6], src: [u8; 6], ip: &[u8]| {
        let mut f = dst.to_vec();
        f.extend_from_slice(&src);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(ip);
        f
    };
    let host = Ipv4Addr::new(10, 244, 0, 5);
    let to_gre = ip_packet(host, Ipv4Addr::new(10, 5, 1, 1), 40);
    let to_ipip = ip_packet(host, Ipv4Addr::new(10, 7, 1, 1), 40);
    r.send(
        &plan,
        NET,
        &[eth(MAC_NET, HOST, &to_gre), eth(MAC_NET, HOST, &to_ipip)],
    );
    let out = r.take(UL);
    assert_eq!(out.len(), 2);
    let (dst, proto, gre) = outer(&out[0]);
    assert_eq!((dst, proto), (R2, PROTO_GRE));
    let g = GrePacket::new_checked(&gre[..]).unwrap();
    assert_eq!((g.protocol(), g.key()), (0x0800, Some(5)));
    let inner = Ipv4Packet::new_checked(g.payload()).unwrap();
    assert_eq!((inner.ttl(), inner.dst()), (63, Ipv4Addr::new(10, 5, 1, 1)));
    assert!(inner.header_checksum_ok());
    let (dst, proto, ipip) = outer(&out[1]);
    assert_eq!((dst, proto), (R3, 4));
    let inner = Ipv4Packet::new_checked(&ipip[..]).unwrap();
    assert_eq!((inner.ttl(), inner.dst()), (63, Ipv4Addr::new(10, 7, 1, 1)));

    // And back: gre l3 from R2 (key 5) and ipip from R3, routed to the host on NET.
    let back = ip_packet(Ipv4Addr::new(10, 5, 1, 1), host, 40);
    let mut ipip_in = vec![0u8; 34];
    encap_ipip_v4(&mut ipip_in, &outer_v4(R3), Inner::Ipv4, back.len()).unwrap();
    ipip_in.extend_from_slice(&back);
    r.send(&plan, UL, &[gre_in(R2, Some(5), 0x0800, &back), ipip_in]);
    let out = r.take(NET);
    assert_eq!(out.len(), 2);
    for f in &out {
        assert_eq!((&f[0..6], &f[6..12]), (&HOST[..], &MAC_NET[..]));
        let p = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!((p.ttl(), p.dst()), (63, host));
    }

    drop(r);
    assert_eq!(pool.in_use(), base, "no mbuf leaked");
    drop(pool);
    eal.cleanup();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/vstk{}", std::process::id()));
}
