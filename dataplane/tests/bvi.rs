//! A bridge's routed interface (BVI) on real mbufs, without ports: bridge members A and B
//! (untagged, VLAN 0) and a routed interface OUT meet in the router through the bridge's
//! BVI. Bridge -> router (a frame to the BVI's MAC routed out of OUT, TTL decremented once;
//! an ARP broadcast flooded to B and punted as received on the BVI; a ping to the BVI's
//! address punted as local), router -> bridge (a packet routed out of the BVI leaves the
//! member its host was learned on, from the BVI's MAC; to an unknown host it is flooded),
//! the slow path's frames out of the BVI (injected, switched like the router's) and
//! released as received on it (routed); IPv6 both ways and a multicast Neighbor
//! Solicitation (flooded, and to the slow path on the BVI); the BVI's MAC is never learned;
//! no mbuf leaks.

mod common;

use std::net::Ipv4Addr;
use std::sync::Arc;

use common::{try_eal, Rig};
use dpdk::{Mbuf, Mempool};
use vswitch_dataplane::l2::fdb::FdbKey;
use vswitch_dataplane::l3::{Fib4Writer, Fib6Writer, NextHop, NextHops};
use vswitch_dataplane::plan::{
    BridgePlan, BviPlan, ForwardingPlan, L2Port, L3Plan, L3Port, VlanMode, VrfPlan,
};
use vswitch_dataplane::slowpath::{Injected, PuntReason};
use vswitch_dataplane::wire::arp;
use vswitch_dataplane::wire::ipv4::{emit, Ipv4Packet, Ipv4Repr, PROTO_UDP};
use vswitch_dataplane::wire::ipv6::{self, Ipv6Packet, Ipv6Repr};
use vswitch_dataplane::{DropReason, IfacePlan, Input, Stage};

const A: u16 = 1;
const B: u16 = 2;
const OUT: u16 = 3;
const BVI: u16 = 5;
const BRIDGE: u16 = 1;
const BVI_MAC: [u8; 6] = [2, 0xb1, 0, 0, 0, 1];
const MAC_OUT: [u8; 6] = [2, 0, 0, 0, 0, 3];
const HOST_A: [u8; 6] = [2, 0xaa, 0, 0, 0, 1];
const HOST_B: [u8; 6] = [2, 0xaa, 0, 0, 0, 2];
const HOST_OUT: [u8; 6] = [2, 0xcc, 0, 0, 0, 9];
const NOBODY: [u8; 6] = [2, 0xdd, 0, 0, 0, 9];

fn ip(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

fn plan() -> (ForwardingPlan, (Fib4Writer, Fib6Writer), Arc<NextHops>) {
    let mut ifaces = vec![None; 8];
    for i in [A, B] {
        ifaces[usize::from(i)] = Some(IfacePlan {
            up: true,
            input: Input::Bridge,
            l2: Some(L2Port {
                bridge: BRIDGE,
                mode: VlanMode::Untagged,
                up: true,
            }),
            max_frame: IfacePlan::max_frame_of(1500),
            l3: None,
        });
    }
    ifaces[usize::from(OUT)] = Some(IfacePlan {
        up: true,
        input: Input::Route,
        l2: None,
        max_frame: IfacePlan::max_frame_of(1500),
        l3: Some(L3Port {
            vrf: 0,
            mac: MAC_OUT,
        }),
    });
    // The BVI: both sides, no port.
    ifaces[usize::from(BVI)] = Some(IfacePlan {
        up: true,
        input: Input::Route,
        l2: Some(L2Port {
            bridge: BRIDGE,
            mode: VlanMode::Untagged,
            up: true,
        }),
        max_frame: IfacePlan::max_frame_of(1500),
        l3: Some(L3Port {
            vrf: 0,
            mac: BVI_MAC,
        }),
    });
    let mut bridges = vec![None; 2];
    bridges[usize::from(BRIDGE)] = Some(BridgePlan {
        learn: true,
        flood: true,
        members: vec![A, B],
        bvi: Some(BviPlan {
            iface: BVI,
            mac: BVI_MAC,
        }),
    });
    let nhs = Arc::new(NextHops::new(64).unwrap());
    nhs.set(
        1,
        NextHop::Forward {
            iface: OUT,
            mac: HOST_OUT,
        },
    );
    nhs.set(
        2,
        NextHop::Forward {
            iface: BVI,
            mac: HOST_A,
        },
    );
    nhs.set(
        3,
        NextHop::Forward {
            iface: BVI,
            mac: NOBODY,
        },
    );
    nhs.set(4, NextHop::Local);
    nhs.set(5, NextHop::Resolve { iface: BVI });
    let mut w = Fib4Writer::new(16).unwrap();
    w.insert(ip([10, 1, 0, 0]), 16, 1).unwrap();
    w.insert(ip([10, 9, 0, 0]), 24, 5).unwrap();
    w.insert(ip([10, 9, 0, 2]), 32, 2).unwrap();
    w.insert(ip([10, 9, 0, 3]), 32, 3).unwrap();
    w.insert(ip([10, 9, 0, 1]), 32, 4).unwrap();
    let mut w6 = Fib6Writer::new(16).unwrap();
    let v6 = |s: &str| u128::from(s.parse::<std::net::Ipv6Addr>().unwrap());
    w6.insert(v6("2001:db8:1::"), 48, 1).unwrap();
    w6.insert(v6("2001:db8:9::2"), 128, 2).unwrap();
    let plan = ForwardingPlan {
        ifaces,
        bridges,
        l3: L3Plan {
            vrfs: vec![Some(VrfPlan {
                fib4: w.fib().clone(),
                fib6: w6.fib().clone(),
            })],
            nexthops: Some(nhs.clone()),
        },
        ..Default::default()
    };
    (plan, (w, w6), nhs)
}

/// Ethernet + IPv4 + UDP from `src_mac` to `dst_mac`, 10.9.0.2 -> `dst`, TTL 64.
fn udp(dst_mac: [u8; 6], src_mac: [u8; 6], src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ipb = vec![0u8; 28];
    emit(
        &mut ipb,
        &Ipv4Repr {
            src: Ipv4Addr::from(src),
            dst: Ipv4Addr::from(dst),
            protocol: PROTO_UDP,
            ttl: 64,
            dscp_ecn: 0,
            ident: 7,
            dont_fragment: false,
            payload_len: 8,
        },
    )
    .unwrap();
    f.extend_from_slice(&ipb);
    f.resize(60, 0);
    f
}

/// Ethernet + IPv6 + UDP from `src_mac` to `dst_mac`, `src` -> `dst`, hop limit 64.
fn udp6(dst_mac: [u8; 6], src_mac: [u8; 6], src: &str, dst: &str) -> Vec<u8> {
    let mut f = dst_mac.to_vec();
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&[0x86, 0xdd]);
    let mut ipb = vec![0u8; 48];
    ipv6::emit(
        &mut ipb,
        &Ipv6Repr {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            next_header: PROTO_UDP,
            hop_limit: 64,
            traffic_class: 0,
            flow_label: 0,
            payload_len: 8,
        },
    )
    .unwrap();
    f.extend_from_slice(&ipb);
    f
}

fn arp_request(sender_mac: [u8; 6], sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&sender_mac);
    f.extend_from_slice(&[0x08, 0x06]);
    f.resize(60, 0);
    arp::emit_request(
        &mut f[14..],
        sender_mac,
        Ipv4Addr::from(sender),
        Ipv4Addr::from(target),
    )
    .unwrap();
    f
}

#[test]
fn bvi_on_real_mbufs() {
    let args = dpdk::light_args("0", &format!("vsbvi{}", std::process::id()));
    let Some(eal) = try_eal(&args) else {
        return;
    };
    let pool = Arc::new(Mempool::with_data_room(&eal, "bvi_test", 512, 0, 2048 + 128).unwrap());
    let base = pool.in_use();
    let mut r = Rig::new(&pool, 64, &[(BRIDGE, vec![A, B])], (64, 64));
    let (plan, _w, _nhs) = plan();

    // 1. Bridge -> router: from A to the BVI's MAC, routed out of OUT with TTL 63.
    let f = udp(BVI_MAC, HOST_A, [10, 9, 0, 2], [10, 1, 2, 3]);
    r.send_each(&plan, &[(A, f.clone())]);
    let out = r.out(OUT);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (&out[0][0..6], &out[0][6..12]),
        (&HOST_OUT[..], &MAC_OUT[..])
    );
    assert_eq!(Ipv4Packet::new_checked(&out[0][14..]).unwrap().ttl(), 63);
    assert!(r.out(A).is_empty() && r.out(B).is_empty(), "not bridged");
    r.g.output_mut().clear();
    // A was learned on its member (the learner took the request after the run).
    let key = |mac| FdbKey {
        bridge: BRIDGE,
        vlan: 0,
        mac,
    };
    assert_eq!(r.l2.fdb.lookup(&key(HOST_A)).map(|h| h.entry.port), Some(A));

    // 2. Router -> bridge: to 10.9.0.2 (HOST_A, learned on A) out of A only, from the BVI's
    //    MAC, TTL 63; to 10.9.0.3 (a MAC the bridge does not know) flooded to A and B.
    let to_a = udp(HOST_OUT, MAC_OUT, [10, 1, 2, 3], [10, 9, 0, 2]);
    let to_nobody = udp(HOST_OUT, MAC_OUT, [10, 1, 2, 3], [10, 9, 0, 3]);
    r.send_each(&plan, &[(OUT, to_a.clone()), (OUT, to_nobody)]);
    let (a, b) = (r.out(A), r.out(B));
    assert_eq!((a.len(), b.len()), (2, 1), "one to A, one flooded to both");
    assert_eq!((&a[0][0..6], &a[0][6..12]), (&HOST_A[..], &BVI_MAC[..]));
    assert_eq!(Ipv4Packet::new_checked(&a[0][14..]).unwrap().ttl(), 63);
    assert_eq!(
        a[0][14 + 12..14 + 20],
        to_a[14 + 12..14 + 20],
        "addresses kept"
    );
    assert_eq!((&b[0][0..6], &b[0][6..12]), (&NOBODY[..], &BVI_MAC[..]));
    r.g.output_mut().clear();

    // 3. An ARP request from A (broadcast): flooded to B, and to the slow path as
    //    received on the BVI. A ping to the BVI's address: punted as local, on the BVI.
    //    A frame to the BVI that is not IP or ARP: dropped (not_ip). Frames between
    //    members: bridged, TTL untouched.
    let req = arp_request(HOST_A, [10, 9, 0, 2], [10, 9, 0, 1]);
    let ping = udp(BVI_MAC, HOST_A, [10, 9, 0, 2], [10, 9, 0, 1]);
    let mut other = BVI_MAC.to_vec();
    other.extend_from_slice(&HOST_A);
    other.extend_from_slice(&[0x88, 0xb5]); // IEEE 802 local experimental ethertype
    other.resize(60, 0);
    let bridged = udp(HOST_B, HOST_A, [10, 9, 0, 2], [10, 9, 0, 4]);
    r.send_each(
        &plan,
        &[
            (A, req.clone()),
            (A, ping.clone()),
            (A, other),
            (A, bridged.clone()),
        ],
    );
    let b = r.out(B);
    assert_eq!(
        b.len(),
        2,
        "the ARP request flooded, the bridged frame (unknown)"
    );
    assert_eq!(b[0], req);
    assert_eq!(b[1], bridged, "bridged as it was: TTL 64");
    assert!(r.out(A).is_empty());
    let punted = r.punted();
    assert_eq!(
        punted.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(),
        vec![(PuntReason::Arp, BVI), (PuntReason::Local, BVI)]
    );
    assert_eq!(punted[0].2, req);
    assert_eq!(punted[1].2, ping);
    assert_eq!(r.drops(Stage::L2Bridge, DropReason::NotIp), 1);
    r.g.output_mut().clear();

    // 4. The slow path's frames: out of the BVI (an ARP reply to HOST_A) switched to A;
    //    an ARP request out of the BVI flooded to A and B; a packet released as received
    //    on the BVI routed out of OUT.
    let mut reply = HOST_A.to_vec();
    reply.extend_from_slice(&BVI_MAC);
    reply.extend_from_slice(&[0x08, 0x06]);
    reply.resize(60, 0);
    let request = {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&BVI_MAC);
        f.extend_from_slice(&[0x08, 0x06]);
        f.resize(60, 0);
        f
    };
    for (frame, as_received) in [(&reply, false), (&request, false), (&f, true)] {
        let m = Mbuf::from_bytes(&pool, frame).unwrap();
        r.slow
            .inject(
                0,
                Injected {
                    mbuf: m,
                    iface: BVI,
                    as_received,
                },
            )
            .unwrap();
    }
    assert_eq!(r.injected(&plan), 3);
    let (a, b, o) = (r.out(A), r.out(B), r.out(OUT));
    assert_eq!((a.len(), b.len(), o.len()), (2, 1, 1));
    assert_eq!((&a[0], &a[1], &b[0]), (&reply, &request, &request));
    assert_eq!(Ipv4Packet::new_checked(&o[0][14..]).unwrap().ttl(), 63);
    r.g.output_mut().clear();

    // 5. IPv6 alike: from A to the BVI's MAC routed out of OUT (hop limit 63); from OUT to
    //    a host behind the BVI out of A from the BVI's MAC; a multicast Neighbor
    //    Solicitation from A (to the solicited-node group) flooded to B and, as received on
    //    the BVI, to the slow path (local).
    let a6 = udp6(BVI_MAC, HOST_A, "2001:db8:9::2", "2001:db8:1::5");
    let c6 = udp6(MAC_OUT, HOST_OUT, "2001:db8:1::5", "2001:db8:9::2");
    let ns = udp6(
        [0x33, 0x33, 0xff, 0, 0, 1],
        HOST_A,
        "2001:db8:9::2",
        "ff02::1:ff00:1",
    );
    r.send_each(&plan, &[(A, a6), (OUT, c6), (A, ns.clone())]);
    let (a, b, o) = (r.out(A), r.out(B), r.out(OUT));
    assert_eq!((a.len(), b.len(), o.len()), (1, 1, 1));
    assert_eq!((&o[0][0..6], &o[0][6..12]), (&HOST_OUT[..], &MAC_OUT[..]));
    assert_eq!(
        Ipv6Packet::new_checked(&o[0][14..]).unwrap().hop_limit(),
        63
    );
    assert_eq!((&a[0][0..6], &a[0][6..12]), (&HOST_A[..], &BVI_MAC[..]));
    assert_eq!(
        Ipv6Packet::new_checked(&a[0][14..]).unwrap().hop_limit(),
        63
    );
    assert_eq!(b[0], ns);
    let punted = r.punted();
    assert_eq!(punted.len(), 1);
    assert_eq!((punted[0].0, punted[0].1), (PuntReason::Local, BVI));
    assert_eq!(punted[0].2, ns);
    r.g.output_mut().clear();

    // The BVI's MAC was never learned (the router's frames, from it, teach nothing).
    assert!(r.l2.fdb.lookup(&key(BVI_MAC)).is_none());
    assert!(r.punted().is_empty());

    drop(r);
    assert_eq!(pool.in_use(), base, "no mbuf leaked");
    drop(pool);
    eal.cleanup();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/vsbvi{}", std::process::id()));
}
