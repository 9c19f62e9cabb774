//! ip4-forward and ip6-forward on real mbufs, without ports: routed interfaces in a VRF,
//! FIBs and next hops; forwarding (TTL / hop limit, checksum, MACs, Ethernet padding), the
//! slow path's reasons (the router's own address, unresolved next hop, TTL expiry, over
//! the MTU, ARP, Neighbor Discovery), the drops (no route, blackhole, bad checksum,
//! martian, not IP, MTU), ECMP spreading flows and keeping each on one member; no mbuf
//! leaks.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use common::{try_eal, Rig};
use dpdk::Mempool;
use vswitch_dataplane::l3::{Fib4Writer, Fib6Writer, NextHop, NextHops};
use vswitch_dataplane::plan::{ForwardingPlan, L3Plan, L3Port, VrfPlan};
use vswitch_dataplane::slowpath::PuntReason;
use vswitch_dataplane::wire::ipv4::{emit, Ipv4Packet, Ipv4Repr, PROTO_UDP};
use vswitch_dataplane::wire::ipv6::{self, Ipv6Packet, Ipv6Repr};
use vswitch_dataplane::{DropReason, IfacePlan, Input, Stage};

// Routed interfaces: packets come in on IN; OUT has MTU 1500; ALT is the second ECMP way.
const IN: u16 = 1;
const OUT: u16 = 2;
const ALT: u16 = 3;
const MAC_IN: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_OUT: [u8; 6] = [2, 0, 0, 0, 0, 2];
const MAC_ALT: [u8; 6] = [2, 0, 0, 0, 0, 3];
const HOST: [u8; 6] = [2, 0xaa, 0, 0, 0, 9];
const HOST_ALT: [u8; 6] = [2, 0xbb, 0, 0, 0, 9];

fn ip(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

/// The plan, with the FIB and next hops the routes of the test name.
fn setup() -> (ForwardingPlan, (Fib4Writer, Fib6Writer), Arc<NextHops>) {
    let mut ifaces = vec![None; 8];
    for (i, mac) in [(IN, MAC_IN), (OUT, MAC_OUT), (ALT, MAC_ALT)] {
        ifaces[usize::from(i)] = Some(IfacePlan {
            up: true,
            input: Input::Route,
            l2: None,
            max_frame: IfacePlan::max_frame_of(1500),
            l3: Some(L3Port { vrf: 0, mac }),
        });
    }
    let nhs = Arc::new(NextHops::new(64).unwrap());
    nhs.set(
        1,
        NextHop::Forward {
            iface: OUT,
            mac: HOST,
        },
    );
    nhs.set(2, NextHop::Resolve { iface: OUT });
    nhs.set(3, NextHop::Local);
    nhs.set(
        4,
        NextHop::Ecmp {
            first: 10,
            count: 2,
        },
    );
    nhs.set(5, NextHop::Drop);
    nhs.set(
        10,
        NextHop::Forward {
            iface: OUT,
            mac: HOST,
        },
    );
    nhs.set(
        11,
        NextHop::Forward {
            iface: ALT,
            mac: HOST_ALT,
        },
    );
    let mut w = Fib4Writer::new(16).unwrap();
    w.insert(ip([10, 1, 0, 0]), 16, 1).unwrap();
    w.insert(ip([10, 2, 0, 0]), 24, 2).unwrap();
    w.insert(ip([10, 0, 0, 1]), 32, 3).unwrap();
    w.insert(ip([10, 3, 0, 0]), 16, 4).unwrap();
    w.insert(ip([10, 4, 0, 0]), 16, 5).unwrap();
    let mut w6 = Fib6Writer::new(16).unwrap();
    for (p, len, nh) in [
        ("2001:db8:1::", 48, 1),
        ("2001:db8:2::", 64, 2),
        ("2001:db8::1", 128, 3),
        ("2001:db8:3::", 48, 4),
        ("2001:db8:4::", 48, 5),
    ] {
        w6.insert(ip6(p), len, nh).unwrap();
    }
    let plan = ForwardingPlan {
        ifaces,
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

fn ip6(a: &str) -> u128 {
    u128::from(a.parse::<Ipv6Addr>().unwrap())
}

/// An Ethernet + IPv6 + UDP frame to the router's IN MAC, `len` bytes of IP packet.
fn udp6(src: &str, dst: &str, sport: u16, hop_limit: u8, len: usize) -> Vec<u8> {
    let mut f = MAC_IN.to_vec();
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x77]);
    f.extend_from_slice(&[0x86, 0xdd]);
    let mut ipb = vec![0u8; len];
    ipv6::emit(
        &mut ipb,
        &Ipv6Repr {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            next_header: PROTO_UDP,
            hop_limit,
            traffic_class: 0,
            flow_label: 0,
            payload_len: (len - 40) as u16,
        },
    )
    .unwrap();
    ipb[40..42].copy_from_slice(&sport.to_be_bytes());
    ipb[42..44].copy_from_slice(&53u16.to_be_bytes());
    f.extend_from_slice(&ipb);
    f.resize(f.len().max(60), 0);
    f
}

/// An Ethernet + IPv4 + UDP frame to the router's IN MAC, `len` bytes of IP packet, padded
/// to at least 60 bytes as Ethernet does.
fn udp(dst: [u8; 4], sport: u16, ttl: u8, len: usize, df: bool) -> Vec<u8> {
    let mut f = MAC_IN.to_vec();
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x77]);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ipb = vec![0u8; len];
    emit(
        &mut ipb,
        &Ipv4Repr {
            src: Ipv4Addr::new(10, 9, 0, 1),
            dst: Ipv4Addr::from(dst),
            protocol: PROTO_UDP,
            ttl,
            dscp_ecn: 0,
            ident: 7,
            dont_fragment: df,
            payload_len: (len - 20) as u16,
        },
    )
    .unwrap();
    ipb[20..22].copy_from_slice(&sport.to_be_bytes());
    ipb[22..24].copy_from_slice(&53u16.to_be_bytes());
    f.extend_from_slice(&ipb);
    f.resize(f.len().max(60), 0);
    f
}

#[test]
fn ip4_forward_on_real_mbufs() {
    let args = dpdk::light_args("0", &format!("vsrt{}", std::process::id()));
    let Some(eal) = try_eal(&args) else {
        return;
    };
    let pool = Arc::new(Mempool::with_data_room(&eal, "rt_test", 512, 0, 4096 + 128).unwrap());
    let base = pool.in_use();
    let mut r = Rig::new(&pool, 64, &[], (64, 8));
    let (plan, _w, _nhs) = setup();

    // 1. A routed burst (all IPv4): forwarded with TTL - 1, a valid checksum, new MACs and
    //    the Ethernet padding dropped (a 28-byte IP packet in a 60-byte frame).
    let f = udp([10, 1, 2, 3], 1000, 64, 28, false);
    assert_eq!(f.len(), 60);
    r.send(&plan, IN, &[f.clone(), f.clone()]);
    let out = r.out(OUT);
    assert_eq!(out.len(), 2);
    let o = &out[0];
    assert_eq!(o.len(), 14 + 28, "padding dropped");
    assert_eq!((&o[0..6], &o[6..12]), (&HOST[..], &MAC_OUT[..]));
    let p = Ipv4Packet::new_checked(&o[14..]).unwrap();
    assert_eq!(p.ttl(), 63);
    assert!(p.header_checksum_ok());
    assert_eq!(
        o[14 + 12..],
        f[14 + 12..14 + 28],
        "addresses and payload unchanged"
    );
    r.g.output_mut().clear();

    // 2. The slow path's share, and the drops, in one mixed burst.
    let mut arp = MAC_IN.to_vec();
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 0x77, 0x08, 0x06]);
    arp.resize(60, 0);
    let mut lldp = MAC_IN.to_vec();
    lldp.extend_from_slice(&[2, 0, 0, 0, 0, 0x77, 0x88, 0xcc]);
    lldp.resize(80, 0);
    let mut bad_sum = udp([10, 1, 2, 3], 1, 64, 28, false);
    bad_sum[14 + 10] ^= 0xff;
    let frames = [
        udp([10, 2, 0, 5], 1, 64, 28, false),    // resolve
        udp([10, 0, 0, 1], 1, 64, 28, false),    // local
        udp([10, 1, 2, 3], 1, 1, 28, false),     // ttl_exceeded
        udp([10, 1, 2, 3], 1, 64, 1600, true),   // frag_needed (MTU 1500, DF)
        udp([192, 168, 0, 1], 1, 64, 28, false), // no_route
        udp([10, 4, 0, 1], 1, 64, 28, false),    // no_route (blackhole)
        bad_sum,                                 // bad_checksum
        udp([127, 0, 0, 1], 1, 64, 28, false),   // martian
        arp.clone(),                             // arp
        lldp,                                    // not_ip
    ];
    r.send(&plan, IN, &frames);
    let punted = r.punted();
    let reasons: Vec<PuntReason> = punted.iter().map(|p| p.0).collect();
    // ARP leaves from ethernet-input, before ip4-forward runs.
    assert_eq!(
        reasons,
        vec![
            PuntReason::Arp,
            PuntReason::Resolve,
            PuntReason::Local,
            PuntReason::TtlExceeded,
            PuntReason::FragNeeded,
        ]
    );
    assert_eq!(punted[3].2, frames[2], "a punted packet is as received");
    assert_eq!((punted[0].1, &punted[0].2), (IN, &arp));
    assert!(r.out(OUT).is_empty());
    for (reason, n) in [
        (DropReason::NoRoute, 2),
        (DropReason::BadChecksum, 1),
        (DropReason::Martian, 1),
        (DropReason::NotIp, 1),
    ] {
        assert_eq!(r.dropped(reason), n, "{}", reason.name());
    }

    // 3. ECMP: 64 flows to 10.3/16 take both ways; each flow keeps its way.
    let flows: Vec<Vec<u8>> = (0..64u16)
        .map(|s| udp([10, 3, 0, 9], 2000 + s, 64, 28, false))
        .collect();
    r.send(&plan, IN, &flows);
    let (a, b) = (r.out(OUT), r.out(ALT));
    assert_eq!(a.len() + b.len(), 64);
    assert!(
        a.len() >= 16 && b.len() >= 16,
        "spread {} / {}",
        a.len(),
        b.len()
    );
    assert!(b.iter().all(|f| f[0..6] == HOST_ALT && f[6..12] == MAC_ALT));
    let way = |f: &Vec<u8>| a.iter().any(|x| x[34..36] == f[34..36]);
    r.g.output_mut().clear();
    r.send(&plan, IN, &flows);
    let again = r.out(OUT);
    assert!(flows
        .iter()
        .all(|f| way(f) == again.iter().any(|x| x[34..36] == f[34..36])));
    r.g.output_mut().clear();

    let s = r.counters.snapshot();
    assert_eq!(s.stages[Stage::Ip4Forward as usize].packets, 2 + 8 + 128);

    // 3b. Over the MTU without DF: fragmented (1500-byte packets: 1480 bytes of payload
    //     then the rest), TTL - 1 in each, offsets and MF right, the payload reassembles.
    let mut big = udp([10, 1, 2, 3], 1, 64, 3100, false);
    for (i, b) in big[14 + 28..].iter_mut().enumerate() {
        *b = i as u8;
    }
    r.send(&plan, IN, &[big.clone()]);
    let frags = r.out(OUT);
    assert_eq!(frags.len(), 3);
    let mut data = Vec::new();
    for (k, f) in frags.iter().enumerate() {
        assert_eq!((&f[0..6], &f[6..12]), (&HOST[..], &MAC_OUT[..]));
        let p = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert!(p.header_checksum_ok());
        assert_eq!(p.ttl(), 63);
        assert_eq!(usize::from(p.frag_offset()), data.len());
        assert_eq!(p.more_fragments(), k < 2);
        assert!(usize::from(p.total_len()) <= 1500 && f.len() == 14 + usize::from(p.total_len()));
        data.extend_from_slice(p.payload());
    }
    assert_eq!(
        data,
        big[14 + 20..14 + 3100],
        "the payload, whole and in order"
    );
    r.g.output_mut().clear();
    assert_eq!(r.dropped(DropReason::MtuExceeded), 0);

    // 4. IPv6: forwarded with the hop limit - 1 and new MACs, the padding of a short
    //    packet dropped.
    let f = udp6("2001:db8:9::1", "2001:db8:1::5", 1000, 64, 48);
    assert_eq!(f.len(), 62);
    r.send(&plan, IN, &[f.clone(), f.clone()]);
    let out = r.out(OUT);
    assert_eq!(out.len(), 2);
    let o = &out[0];
    assert_eq!((&o[0..6], &o[6..12]), (&HOST[..], &MAC_OUT[..]));
    let p = Ipv6Packet::new_checked(&o[14..]).unwrap();
    assert_eq!(p.hop_limit(), 63);
    assert_eq!(
        o[14 + 8..],
        f[14 + 8..14 + 48],
        "addresses and payload unchanged"
    );
    r.g.output_mut().clear();

    // 5. IPv6's slow path and drops in one mixed burst.
    let drops_before = |r: &Rig, d| r.dropped(d);
    let (nr0, m0, bh0) = (
        drops_before(&r, DropReason::NoRoute),
        drops_before(&r, DropReason::Martian),
        drops_before(&r, DropReason::BadHeader),
    );
    let mut short = udp6("2001:db8:9::1", "2001:db8:1::5", 1, 64, 48);
    short[14 + 5] = 200; // Payload Length beyond the frame
    let frames = [
        udp6("2001:db8:9::1", "2001:db8:2::5", 1, 64, 48), // resolve
        udp6("2001:db8:9::1", "2001:db8::1", 1, 64, 48),   // local (the router's address)
        udp6("fe80::9", "ff02::1:ff00:1", 1, 255, 48),     // local (Neighbor Discovery)
        udp6("2001:db8:9::1", "2001:db8:1::5", 1, 1, 48),  // ttl_exceeded
        udp6("2001:db8:9::1", "2001:db8:1::5", 1, 64, 1600), // frag_needed (packet too big)
        udp6("2001:db8:9::1", "2001:db9::1", 1, 64, 48),   // no_route
        udp6("2001:db8:9::1", "2001:db8:4::1", 1, 64, 48), // no_route (blackhole)
        udp6("::1", "2001:db8:1::5", 1, 64, 48),           // martian (loopback source)
        udp6("fe80::9", "2001:db8:1::5", 1, 64, 48),       // martian (link-local leaving)
        short,                                             // bad_header
    ];
    r.send(&plan, IN, &frames);
    let punted = r.punted();
    let reasons: Vec<PuntReason> = punted.iter().map(|p| p.0).collect();
    assert_eq!(
        reasons,
        vec![
            PuntReason::Resolve,
            PuntReason::Local,
            PuntReason::Local,
            PuntReason::TtlExceeded,
            PuntReason::FragNeeded,
        ]
    );
    assert_eq!(punted[3].2, frames[3], "a punted packet is as received");
    assert!(r.out(OUT).is_empty());
    assert_eq!(r.dropped(DropReason::NoRoute) - nr0, 2);
    assert_eq!(r.dropped(DropReason::Martian) - m0, 2);
    assert_eq!(r.dropped(DropReason::BadHeader) - bh0, 1);

    // 6. IPv6 ECMP: 64 flows to 2001:db8:3::/48 take both ways, each flow keeps its way.
    let flows: Vec<Vec<u8>> = (0..64u16)
        .map(|s| udp6("2001:db8:9::1", "2001:db8:3::9", 2000 + s, 64, 48))
        .collect();
    r.send(&plan, IN, &flows);
    let (a, b) = (r.out(OUT), r.out(ALT));
    assert_eq!(a.len() + b.len(), 64);
    assert!(
        a.len() >= 16 && b.len() >= 16,
        "spread {} / {}",
        a.len(),
        b.len()
    );
    let port = |f: &Vec<u8>| f[54..56].to_vec();
    let first: Vec<Vec<u8>> = a.iter().map(port).collect();
    r.g.output_mut().clear();
    r.send(&plan, IN, &flows);
    let again: Vec<Vec<u8>> = r.out(OUT).iter().map(port).collect();
    assert_eq!(first, again, "every flow keeps its way");
    r.g.output_mut().clear();
    let s = r.counters.snapshot();
    assert_eq!(s.stages[Stage::Ip6Forward as usize].packets, 2 + 10 + 128);
    assert_eq!(r.dropped(DropReason::MtuExceeded), 0);
    drop(r);
    assert_eq!(pool.in_use(), base, "no mbuf leaked");
    drop(pool);
    eal.cleanup();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/vsrt{}", std::process::id()));
}
