//! VXLAN end to end on real mbufs, without ports: a bridge extended by a vxlan tunnel
//! member (two remotes), a second VNI in another bridge, and an addressed vxlan tunnel
//! (flannel's way), over one routed underlay interface.
//!
//! Checked byte by byte with the wire parsers: encapsulation (outer Ethernet from the
//! underlay interface to the next hop, IPv4 from the local address to the VTEP with TTL,
//! DF, protocol and checksum, UDP ports and length with checksum zero, VXLAN flags and VNI,
//! the inner frame unchanged), head-end replication of flooded frames to every remote,
//! decapsulation (the inner frame delivered as sent), learning of the remote VTEP and
//! unicast back to it, static entries with and without a VTEP, VNI isolation, routed
//! traffic into and out of an addressed tunnel, every drop reason of both stages, the slow
//! path's share (not tunnel traffic, an unresolved underlay next hop), offload state
//! through both stages (a pod's partial inner UDP checksum completed at its new offset
//! after encapsulation; no stale request of the outer packet left on a decapsulated
//! frame), and no mbuf leaks.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use common::{try_eal, Rig};
use dpdk::offload::{TX_IPV4, TX_REQUESTS, TX_UDP_CKSUM};
use dpdk::{MbufOffload, Mempool};
use vswitch_dataplane::graph::Meta;
use vswitch_dataplane::l2::fdb::{FdbKey, ALL_REMOTES};
use vswitch_dataplane::l3::{Fib4Writer, Fib6Writer, NextHop, NextHops};
use vswitch_dataplane::plan::{
    BridgePlan, ForwardingPlan, L2Port, L3Plan, L3Port, TunnelEncap, TunnelPlan, VlanMode, VrfPlan,
    WorkerPlan,
};
use vswitch_dataplane::slowpath::PuntReason;
use vswitch_dataplane::wire::checksum;
use vswitch_dataplane::wire::ethernet::Frame;
use vswitch_dataplane::wire::ipv4::{self, Ipv4Packet, Ipv4Repr, PROTO_ICMP, PROTO_UDP};
use vswitch_dataplane::wire::tunnel::{encap_vxlan_v4, OuterV4, VXLAN_V4_OUTER_LEN};
use vswitch_dataplane::wire::udp::UdpPacket;
use vswitch_dataplane::wire::vxlan::{self, VxlanHeader};
use vswitch_dataplane::{DropReason, IfacePlan, Input, Stage, Tx};

/// The underlay's routed interface (VRF 0), address LOCAL.
const UL: u16 = 1;
/// Bridge 1: POD and the vxlan tunnel T (VNI 42, port 4789, remotes R2 and R3).
const POD: u16 = 2;
const T: u16 = 3;
/// Bridge 2: POD2 and the vxlan tunnel T2 (VNI 43, same port, remote R2).
const POD2: u16 = 4;
const T2: u16 = 5;
/// VRF 1 (the overlay of the addressed tunnel): NET, a routed interface, and TF, the
/// addressed vxlan tunnel (VNI 1, port 8472), flannel's way.
const NET: u16 = 6;
const TF: u16 = 7;

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const R2: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const R3: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 3);
/// A VTEP whose underlay neighbour is not resolved.
const R4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 4);

const MAC_UL: [u8; 6] = [2, 0, 0, 0, 0, 1];
const NH2: [u8; 6] = [2, 0xaa, 0, 0, 0, 2];
const NH3: [u8; 6] = [2, 0xaa, 0, 0, 0, 3];
const MAC_NET: [u8; 6] = [2, 0, 0, 0, 0, 6];
const MAC_TF: [u8; 6] = [2, 0, 0, 0, 0, 7];
/// The remote node's tunnel device (flannel's VTEP MAC) and a host behind NET.
const VTEP_MAC: [u8; 6] = [2, 0xcc, 0, 0, 0, 2];
const HOST: [u8; 6] = [2, 0xdd, 0, 0, 0, 9];

fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0x10, n]
}

fn ip(a: Ipv4Addr) -> u32 {
    u32::from(a)
}

/// An untagged frame, `len` bytes, with an IPv4 ethertype and a recognisable payload.
fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend((0..len - 14).map(|i| i as u8));
    f
}

/// An Ethernet + IPv4 frame from `src` to `dst` with `len` bytes of IP packet of `proto`.
fn ip_frame(
    eth: ([u8; 6], [u8; 6]),
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    len: usize,
) -> Vec<u8> {
    let mut f = eth.0.to_vec();
    f.extend_from_slice(&eth.1);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut b = vec![0u8; len];
    ipv4::emit(
        &mut b,
        &Ipv4Repr {
            src,
            dst,
            protocol: proto,
            ttl: 64,
            dscp_ecn: 0,
            ident: 1,
            dont_fragment: false,
            payload_len: (len - 20) as u16,
        },
    )
    .unwrap();
    b[20..22].copy_from_slice(&1234u16.to_be_bytes());
    b[22..24].copy_from_slice(&80u16.to_be_bytes());
    f.extend_from_slice(&b);
    f
}

/// A VXLAN packet from VTEP `src` to LOCAL (UDP `port`, `vni`) around `inner`, as the
/// underlay delivers it to UL.
fn vxlan_in(src: Ipv4Addr, port: u16, vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; VXLAN_V4_OUTER_LEN];
    let outer = OuterV4 {
        src_mac: NH2,
        dst_mac: MAC_UL,
        src,
        dst: LOCAL,
        ttl: 64,
        dscp_ecn: 0,
        dont_fragment: false,
        ident: 5,
    };
    encap_vxlan_v4(&mut b, &outer, 40000, port, vni, inner.len()).unwrap();
    b.extend_from_slice(inner);
    b
}

fn tunnel(iface: u16, vni: u32, port: u16, remotes: &[Ipv4Addr]) -> TunnelPlan {
    TunnelPlan {
        iface,
        encap: TunnelEncap::Vxlan { vni, port },
        vrf: 0,
        local: IpAddr::V4(LOCAL),
        remotes: remotes.iter().map(|r| IpAddr::V4(*r)).collect(),
        ttl: 64,
        df: false,
        mtu: 1450,
        mac: MAC_TF,
        vteps: vec![],
    }
}

struct Tables {
    _fib: (Fib4Writer, Fib6Writer, Fib4Writer, Fib6Writer),
    _nhs: Arc<NextHops>,
}

fn plan() -> (ForwardingPlan, Tables) {
    let member = |bridge| IfacePlan {
        up: true,
        input: Input::Bridge,
        l2: Some(L2Port {
            bridge,
            mode: VlanMode::Untagged,
            up: true,
        }),
        max_frame: IfacePlan::max_frame_of(1500),
        l3: None,
    };
    let routed = |vrf, mac, mtu| IfacePlan {
        up: true,
        input: Input::Route,
        l2: None,
        max_frame: IfacePlan::max_frame_of(mtu),
        l3: Some(L3Port { vrf, mac }),
    };
    let mut ifaces = vec![None; 8];
    ifaces[usize::from(UL)] = Some(routed(0, MAC_UL, 1500));
    for (i, b) in [(POD, 1), (T, 1), (POD2, 2), (T2, 2)] {
        ifaces[usize::from(i)] = Some(member(b));
    }
    ifaces[usize::from(NET)] = Some(routed(1, MAC_NET, 1500));
    ifaces[usize::from(TF)] = Some(routed(1, MAC_TF, 1450));
    let mut bridges = vec![None; 3];
    bridges[1] = Some(BridgePlan {
        learn: true,
        flood: true,
        members: vec![POD, T],
        bvi: None,
    });
    bridges[2] = Some(BridgePlan {
        learn: true,
        flood: true,
        members: vec![POD2, T2],
        bvi: None,
    });
    // Underlay (VRF 0): the VTEPs R2 and R3 resolved, R4 not, LOCAL the router's.
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
    nhs.set(4, NextHop::Resolve { iface: UL });
    // Overlay (VRF 1): the remote node's pod subnet through the tunnel to its VTEP MAC
    // (a static neighbour), the local pod subnet on NET.
    nhs.set(
        5,
        NextHop::Forward {
            iface: TF,
            mac: VTEP_MAC,
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
    u4.insert(ip(R2), 32, 1).unwrap();
    u4.insert(ip(R3), 32, 2).unwrap();
    u4.insert(ip(LOCAL), 32, 3).unwrap();
    u4.insert(ip(R4), 32, 4).unwrap();
    let mut o4 = Fib4Writer::new(16).unwrap();
    o4.insert(ip(Ipv4Addr::new(10, 244, 1, 0)), 24, 5).unwrap();
    o4.insert(ip(Ipv4Addr::new(10, 244, 0, 0)), 24, 6).unwrap();
    let u6 = Fib6Writer::new(4).unwrap();
    let o6 = Fib6Writer::new(4).unwrap();
    let mut tf = tunnel(TF, 1, vxlan::PORT_LINUX, &[]);
    tf.vteps = vec![(VTEP_MAC, IpAddr::V4(R2))];
    let mut tx = vec![Tx::None; 8];
    for t in [T, T2, TF] {
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
            tunnel(T, 42, vxlan::PORT_IANA, &[R2, R3]),
            tunnel(T2, 43, vxlan::PORT_IANA, &[R2]),
            tf,
        ],
        ..Default::default()
    };
    (
        plan,
        Tables {
            _fib: (u4, u6, o4, o6),
            _nhs: nhs,
        },
    )
}

/// What one outer packet says, checked against the rules as it is read.
#[derive(Debug, PartialEq, Eq)]
struct Outer {
    eth_dst: [u8; 6],
    dst: Ipv4Addr,
    sport: u16,
    vni: u32,
    inner: Vec<u8>,
}

/// Parses an encapsulated frame with the wire views, checking every field that does not
/// vary (source MAC, addresses, TTL, DF, protocol, header checksum, lengths, UDP checksum
/// zero, VXLAN flags), and returns the ones that do.
fn outer(f: &[u8], port: u16) -> Outer {
    let eth = Frame::new_checked(f).unwrap();
    assert_eq!(eth.src(), MAC_UL, "from the underlay interface");
    assert_eq!(eth.ethertype(), 0x0800);
    let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
    assert_eq!(ip.src(), LOCAL);
    assert_eq!(
        (ip.ttl(), ip.dont_fragment(), ip.protocol()),
        (64, false, 17)
    );
    assert!(ip.header_checksum_ok());
    assert!(!ip.has_options());
    assert_eq!(usize::from(ip.total_len()), f.len() - 14);
    let udp = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(udp.dst_port(), port);
    assert!(
        (32768..=60998).contains(&udp.src_port()),
        "the kernel's range"
    );
    assert_eq!(usize::from(udp.length()), f.len() - 34);
    assert_eq!(udp.checksum(), 0, "RFC 7348 §5: zero over IPv4");
    let vx = VxlanHeader::new_checked(udp.payload()).unwrap();
    assert_eq!(vx.flags(), 0x08, "I set, reserved bits clear");
    assert_eq!(&udp.payload()[1..4], &[0, 0, 0]);
    assert_eq!(udp.payload()[7], 0);
    Outer {
        eth_dst: eth.dst(),
        dst: ip.dst(),
        sport: udp.src_port(),
        vni: vx.vni(),
        inner: vx.payload().to_vec(),
    }
}

/// Runs the graph on one frame received on `rx` whose mbuf carries offload state `o` (as a
/// device that verified or asked for checksums leaves it).
fn send_offload(r: &mut Rig, plan: &ForwardingPlan, rx: u16, f: &[u8], o: &MbufOffload) {
    let mut m = r.mbuf(f);
    m.set_offload(o);
    let mut meta = Meta {
        rx_if: rx,
        ..Meta::default()
    };
    meta.set_offload(&m.offload());
    r.push_meta(m, meta);
    r.run(plan);
}

#[test]
fn vxlan_encap_and_decap_on_real_mbufs() {
    let args = dpdk::light_args("0", &format!("vsvx{}", std::process::id()));
    let Some(eal) = try_eal(&args) else {
        return;
    };
    let pool = Arc::new(Mempool::with_data_room(&eal, "vx_test", 1024, 0, 2048 + 128).unwrap());
    let base = pool.in_use();
    let mut r = Rig::new(
        &pool,
        1024,
        &[(1, vec![POD, T]), (2, vec![POD2, T2])],
        (64, 8),
    );
    let (plan, _tables) = plan();
    let key = |bridge, m| FdbKey {
        bridge,
        vlan: 0,
        mac: m,
    };

    // 1. A broadcast from POD: flooded into the tunnel by head-end replication, one outer
    //    packet per remote, each to its next hop's MAC, the inner frame unchanged.
    let bcast = frame([0xff; 6], mac(1), 60);
    r.send(&plan, POD, std::slice::from_ref(&bcast));
    let out = r.out(UL);
    assert_eq!(out.len(), 2, "one copy per remote");
    let (a, b) = (outer(&out[0], 4789), outer(&out[1], 4789));
    assert_eq!((a.eth_dst, a.dst, a.vni), (NH2, R2, 42));
    assert_eq!((b.eth_dst, b.dst, b.vni), (NH3, R3, 42));
    assert_eq!(a.inner, bcast);
    assert_eq!(b.inner, bcast);
    assert_eq!(a.sport, b.sport, "one flow, one source port");
    assert_eq!(out[0].len(), bcast.len() + 50);
    assert!(r.out(POD).is_empty(), "never back to the sender");
    assert_eq!(r.counters.iface(T).tx_packets, 2);
    r.clear();

    // 2. Decapsulation: a frame from R2's side arrives on UL and is delivered to POD as
    //    sent; its source is learned behind T with R2 as its VTEP.
    let from_r2 = frame(mac(1), mac(0x22), 64);
    r.send(&plan, UL, &[vxlan_in(R2, 4789, 42, &from_r2)]);
    assert_eq!(r.out(POD), vec![from_r2.clone()]);
    let hit = r.l2.fdb.lookup(&key(1, mac(0x22))).expect("learned");
    assert_eq!((hit.entry.port, hit.remote), (T, ip(R2)));
    assert!(!hit.entry.is_static);
    assert_eq!(r.counters.iface(T).rx_packets, 1);
    r.clear();

    // 3. Unicast back goes to R2 only; another flow gets its own source port.
    let to_r2 = ip_frame(
        (mac(0x22), mac(1)),
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        PROTO_UDP,
        100,
    );
    let mut other_flow = to_r2.clone();
    other_flow[14 + 20] = 0x77; // another source port
    let sent_before = r.counters.iface(T);
    r.send(&plan, POD, &[to_r2.clone(), other_flow.clone()]);
    let out = r.out(UL);
    assert_eq!(out.len(), 2);
    // Both inner frames counted on the tunnel interface (a vector's run is tallied once).
    let sent = r.counters.iface(T);
    assert_eq!(
        (
            sent.tx_packets - sent_before.tx_packets,
            sent.tx_bytes - sent_before.tx_bytes
        ),
        (2, (to_r2.len() + other_flow.len()) as u64)
    );
    let (o1, o2) = (outer(&out[0], 4789), outer(&out[1], 4789));
    assert_eq!((o1.eth_dst, o1.dst, o1.inner), (NH2, R2, to_r2.clone()));
    assert_eq!(o2.inner, other_flow);
    assert_ne!(o1.sport, o2.sport, "the source port follows the inner flow");
    r.clear();
    // The same as one received burst, a train of one MAC pair (l2-bridge decides it once):
    // every frame to R2, each with its own inner frame.
    let train = [to_r2.clone(), other_flow.clone(), to_r2.clone()];
    r.send_burst(&plan, POD, &train);
    let out = r.out(UL);
    assert_eq!(out.len(), 3);
    for (o, inner) in out.iter().zip(&train) {
        let o = outer(o, 4789);
        assert_eq!((o.dst, &o.inner), (R2, inner));
    }
    r.clear();

    // 4. The same MAC seen from R3 now: a move to R3 (same tunnel, another VTEP), in one
    //    vector after a frame from R2 with the same inner addresses (a frame from another
    //    VTEP is not the train of the one before it).
    r.send(
        &plan,
        UL,
        &[
            vxlan_in(R2, 4789, 42, &from_r2),
            vxlan_in(R3, 4789, 42, &from_r2),
        ],
    );
    assert_eq!(r.out(POD).len(), 2);
    r.clear();
    assert_eq!(r.l2.fdb.lookup(&key(1, mac(0x22))).unwrap().remote, ip(R3));
    r.send(&plan, POD, std::slice::from_ref(&to_r2));
    let out = r.out(UL);
    assert_eq!(out.len(), 1);
    assert_eq!(outer(&out[0], 4789).dst, R3);
    r.clear();

    // 5. Static entries: with a VTEP, to it; without (every remote), to both.
    r.learner
        .add_statics_to(&[
            (key(1, mac(0x33)), T, ip(R3)),
            (key(1, mac(0x44)), T, ALL_REMOTES),
        ])
        .unwrap();
    r.send(
        &plan,
        POD,
        &[frame(mac(0x33), mac(1), 60), frame(mac(0x44), mac(1), 60)],
    );
    let out = r.out(UL);
    let dsts: Vec<Ipv4Addr> = out.iter().map(|f| outer(f, 4789).dst).collect();
    assert_eq!(dsts, vec![R3, R2, R3]);
    r.clear();

    // 6. VNIs stay apart: VNI 43 reaches bridge 2 only, and is learned there.
    let other_vni = frame([0xff; 6], mac(0x55), 60);
    r.send(&plan, UL, &[vxlan_in(R2, 4789, 43, &other_vni)]);
    assert_eq!(r.out(POD2), vec![other_vni]);
    assert!(r.out(POD).is_empty());
    assert!(r.l2.fdb.lookup(&key(1, mac(0x55))).is_none());
    assert_eq!(r.l2.fdb.lookup(&key(2, mac(0x55))).unwrap().entry.port, T2);
    r.clear();

    // 7. Malformed tunnel traffic among good traffic: each dropped under its name, the
    //    good frames delivered, nothing else moves.
    let good = frame(mac(1), mac(0x22), 60);
    let mut no_i = vxlan_in(R2, 4789, 42, &good);
    no_i[42] = 0x00;
    let mut short = vxlan_in(R2, 4789, 42, &good);
    short.truncate(14 + 20 + 8 + 4);
    short[16..18].copy_from_slice(&32u16.to_be_bytes());
    short[38..40].copy_from_slice(&12u16.to_be_bytes());
    let ipb = &mut short[14..34];
    ipb[10..12].copy_from_slice(&[0, 0]);
    let sum = !vswitch_dataplane::wire::checksum::sum(ipb, 0);
    ipb[10..12].copy_from_slice(&sum.to_be_bytes());
    let short_inner = vxlan_in(R2, 4789, 42, &good[..10]);
    let frames = vec![
        vxlan_in(R2, 4789, 42, &good),
        no_i,
        short,
        vxlan_in(R2, 4789, 99, &good), // unknown VNI
        vxlan_in(R2, 4790, 42, &good), // a port no tunnel listens on
        short_inner,                   // inner shorter than Ethernet
        vxlan_in(R2, 4789, 42, &good),
    ];
    r.send(&plan, UL, &frames);
    assert_eq!(r.out(POD), vec![good.clone(), good.clone()]);
    let d = Stage::TunnelDecap;
    for (reason, n) in [
        (DropReason::VxlanNoIFlag, 1),
        (DropReason::VxlanShort, 1),
        (DropReason::VxlanUnknownVni, 1),
        (DropReason::UdpNoTunnel, 1),
        (DropReason::InnerTooShort, 1),
    ] {
        assert_eq!(r.drops(d, reason), n, "{}", reason.name());
    }
    assert!(r.punted().is_empty());
    r.clear();

    // 8. Over the tunnel's MTU (1450 + 14): dropped and counted; at the MTU: sent.
    r.send(
        &plan,
        POD,
        &[
            frame(mac(0x22), mac(1), 1465),
            frame(mac(0x22), mac(1), 1464),
        ],
    );
    assert_eq!(
        r.drops(Stage::TunnelEncap, DropReason::TunnelMtuExceeded),
        1
    );
    let out = r.out(UL);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].len(), 1464 + 50, "1500 bytes of outer IPv4");
    r.clear();

    // 9. The slow path's share: ICMP to the tunnel endpoint is the router's (local); a
    //    VTEP whose underlay neighbour is unresolved gets its outer packet punted for
    //    resolution, as received on the underlay interface.
    let ping = ip_frame((MAC_UL, NH2), R2, LOCAL, PROTO_ICMP, 28);
    r.send(&plan, UL, std::slice::from_ref(&ping));
    r.learner
        .add_statics_to(&[(key(1, mac(0x66)), T, ip(R4))])
        .unwrap();
    r.send(&plan, POD, &[frame(mac(0x66), mac(1), 60)]);
    let punted = r.punted();
    assert_eq!(punted.len(), 2);
    assert_eq!((punted[0].0, punted[0].1), (PuntReason::Local, UL));
    assert_eq!(punted[0].2, ping);
    assert_eq!((punted[1].0, punted[1].1), (PuntReason::Resolve, UL));
    // Its TTL is one more than the tunnel's: the slow path routes it again once the
    // neighbour is resolved, which takes one off.
    let mut p = punted[1].2.clone();
    let ip = Ipv4Packet::new_checked(&p[14..]).unwrap();
    assert_eq!(ip.ttl(), 65);
    assert!(ip.header_checksum_ok());
    let mut ip = Ipv4Packet::new_checked(&mut p[14..]).unwrap();
    assert!(ip.decrement_ttl(), "as the router will");
    let o = outer(&p, 4789);
    assert_eq!((o.dst, o.eth_dst), (R4, [0; 6]));
    r.clear();

    // 10. flannel's way: routed from NET to the remote pod subnet out of the addressed
    //     tunnel TF: inner Ethernet from the neighbour entry (VTEP_MAC, from TF's MAC),
    //     TTL decremented, outer to the VTEP the MAC -> VTEP entry names, VNI 1, port 8472.
    let pkt = ip_frame(
        (MAC_NET, HOST),
        Ipv4Addr::new(10, 244, 0, 5),
        Ipv4Addr::new(10, 244, 1, 7),
        PROTO_UDP,
        60,
    );
    r.send(&plan, NET, std::slice::from_ref(&pkt));
    let out = r.out(UL);
    assert_eq!(out.len(), 1);
    let o = outer(&out[0], vxlan::PORT_LINUX);
    assert_eq!((o.dst, o.vni), (R2, 1));
    let inner = Frame::new_checked(&o.inner[..]).unwrap();
    assert_eq!((inner.dst(), inner.src()), (VTEP_MAC, MAC_TF));
    let ip_in = Ipv4Packet::new_checked(&o.inner[14..]).unwrap();
    assert_eq!(ip_in.ttl(), 63);
    assert!(ip_in.header_checksum_ok());
    assert_eq!(o.inner[14 + 12..], pkt[14 + 12..], "addresses and payload");
    r.clear();
    //     And back: decapsulated on TF, routed to the host on NET.
    let reply = ip_frame(
        (MAC_TF, VTEP_MAC),
        Ipv4Addr::new(10, 244, 1, 7),
        Ipv4Addr::new(10, 244, 0, 5),
        PROTO_UDP,
        60,
    );
    r.send(&plan, UL, &[vxlan_in(R2, vxlan::PORT_LINUX, 1, &reply)]);
    let out = r.out(NET);
    assert_eq!(out.len(), 1);
    assert_eq!((&out[0][0..6], &out[0][6..12]), (&HOST[..], &MAC_NET[..]));
    assert_eq!(Ipv4Packet::new_checked(&out[0][14..]).unwrap().ttl(), 63);
    r.clear();

    // 11. Offload state through encap: a pod's frame whose UDP checksum is left partial
    //     (the pseudo-header sum, TX_UDP_CKSUM) is encapsulated; the request moves with
    //     the inner header (50 bytes on) and is completed there before the frame leaves,
    //     the outer UDP checksum stays zero, and no request is left on the mbuf.
    let mut partial = ip_frame(
        (mac(0x22), mac(1)),
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        PROTO_UDP,
        20 + 8 + 5,
    );
    partial[14 + 24..14 + 26].copy_from_slice(&13u16.to_be_bytes());
    partial[14 + 28..].copy_from_slice(b"hello");
    let pseudo = checksum::sum(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 13], 0);
    partial[14 + 26..14 + 28].copy_from_slice(&pseudo.to_be_bytes());
    let request = MbufOffload {
        ol_flags: TX_UDP_CKSUM | TX_IPV4,
        l2_len: 14,
        l3_len: 20,
        tso_segsz: 0,
    };
    send_offload(&mut r, &plan, POD, &partial, &request);
    let out = r.out(UL);
    assert_eq!(out.len(), 1);
    let o = outer(&out[0], 4789);
    let udp_in = &o.inner[14 + 20..];
    assert_ne!(
        &udp_in[6..8],
        &pseudo.to_be_bytes(),
        "the checksum was completed"
    );
    assert_eq!(
        checksum::sum(udp_in, u32::from(pseudo)),
        0xffff,
        "and verifies"
    );
    assert_eq!(
        &o.inner[..14 + 26],
        &partial[..14 + 26],
        "nothing else changed"
    );
    assert!(
        r.flags(UL).iter().all(|f| f & TX_REQUESTS == 0),
        "request done"
    );
    r.clear();
    //     And decap: an outer packet still carrying a device's request (a VM VTEP's
    //     partial outer UDP checksum) is delivered without it: the request was about the
    //     outer headers, which are gone.
    let good = frame(mac(1), mac(0x22), 60);
    let stale = MbufOffload {
        ol_flags: TX_UDP_CKSUM | TX_IPV4,
        l2_len: 14,
        l3_len: 20,
        tso_segsz: 0,
    };
    send_offload(&mut r, &plan, UL, &vxlan_in(R2, 4789, 42, &good), &stale);
    assert_eq!(r.out(POD), vec![good]);
    assert_eq!(r.flags(POD).len(), 1);
    assert!(
        r.flags(POD).iter().all(|f| f & TX_REQUESTS == 0),
        "no stale request: {:x?}",
        r.flags(POD)
    );
    r.clear();

    // 12. The VXLAN bypass: a received burst of VXLAN to the VTEP goes from
    //     ethernet-input straight to tunnel-decap (ip4-forward never sees it), delivered
    //     and learned as through ip4-forward. What the bypass does not take goes by
    //     ip4-forward as before, in a mixed burst too, under the same names: a bad header
    //     checksum, a martian source, a port no tunnel listens on, a ping to the VTEP.
    let stage = |r: &Rig, s: Stage| r.counters.snapshot().stages[s as usize].packets;
    let (ip4_0, decap_0) = (stage(&r, Stage::Ip4Forward), stage(&r, Stage::TunnelDecap));
    let inner: Vec<Vec<u8>> = (0..4u8)
        .map(|i| frame(mac(1), mac(0x70 + i), 60 + usize::from(i)))
        .collect();
    let burst: Vec<Vec<u8>> = inner.iter().map(|f| vxlan_in(R2, 4789, 42, f)).collect();
    r.send_burst(&plan, UL, &burst);
    assert_eq!(r.out(POD), inner);
    assert_eq!(stage(&r, Stage::Ip4Forward), ip4_0, "ip4-forward bypassed");
    assert_eq!(stage(&r, Stage::TunnelDecap), decap_0 + 4);
    let hit = r.l2.fdb.lookup(&key(1, mac(0x73))).expect("learned");
    assert_eq!((hit.entry.port, hit.remote), (T, u32::from(R2)));
    r.clear();

    let mut bad_sum = vxlan_in(R2, 4789, 42, &inner[0]);
    bad_sum[24] ^= 0x01; // the header checksum's low byte
    let martian = vxlan_in(Ipv4Addr::new(127, 0, 0, 1), 4789, 42, &inner[1]);
    let no_port = vxlan_in(R2, 4790, 42, &inner[2]);
    let ping = ip_frame((MAC_UL, NH2), R2, LOCAL, PROTO_ICMP, 28);
    let mixed = vec![
        vxlan_in(R2, 4789, 42, &inner[3]),
        bad_sum,
        martian,
        no_port,
        ping.clone(),
        vxlan_in(R2, 4789, 42, &inner[0]),
    ];
    let drops_0 = (
        r.drops(Stage::Ip4Forward, DropReason::BadChecksum),
        r.drops(Stage::Ip4Forward, DropReason::Martian),
        r.drops(Stage::TunnelDecap, DropReason::UdpNoTunnel),
    );
    r.send_burst(&plan, UL, &mixed);
    assert_eq!(r.out(POD), vec![inner[3].clone(), inner[0].clone()]);
    assert_eq!(
        (
            r.drops(Stage::Ip4Forward, DropReason::BadChecksum),
            r.drops(Stage::Ip4Forward, DropReason::Martian),
            r.drops(Stage::TunnelDecap, DropReason::UdpNoTunnel),
        ),
        (drops_0.0 + 1, drops_0.1 + 1, drops_0.2 + 1)
    );
    let punted = r.punted();
    assert_eq!(punted.len(), 1);
    assert_eq!((punted[0].0, punted[0].1), (PuntReason::Local, UL));
    assert_eq!(punted[0].2, ping);
    assert_eq!(
        stage(&r, Stage::Ip4Forward),
        ip4_0 + 4,
        "what the bypass left"
    );
    r.clear();

    drop(r);
    assert_eq!(pool.in_use(), base, "no mbuf leaked");
    drop(pool);
    eal.cleanup();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/vsvx{}", std::process::id()));
}
