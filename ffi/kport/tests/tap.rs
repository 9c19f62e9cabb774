//! Tap ports against real kernels in network namespaces (root only).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use kport::{AfPacket, AfPacketConfig, Tap, TapConfig, VnetHdr};

const OUR_MAC: [u8; 6] = [0x02, 0, 0, 0x77, 5, 1];

/// Sends an ARP request for `peer` from `me` through the tap and waits for the reply the
/// namespace's kernel sends back: a frame each way.
fn arp_round_trip(tap: &mut Tap, me: [u8; 4], peer: [u8; 4]) -> bool {
    let req = arp(1, [0xff; 6], OUR_MAC, me, [0; 6], peer);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        assert!(tap.tx(&VnetHdr::default(), &[&req[..14], &req[14..]]));
        let mut got = false;
        for _ in 0..100 {
            tap.rx_burst(32, |_, d| {
                if d.len() >= 42
                    && d[0..6] == OUR_MAC
                    && d[12..14] == [8, 6]
                    && d[20..22] == [0, 2]
                    && d[28..32] == peer
                    && d[38..42] == me
                {
                    got = true;
                }
            });
            if got {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    false
}

/// Attaching to an interface that is not a tap fails with the kernel's reason.
#[test]
fn open_of_a_non_tap_says_why() {
    if !root_or_skip("open_of_a_non_tap_says_why") {
        return;
    }
    let e = Tap::open("lo", &TapConfig::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "lo: kernel refused TUNSETIFF(IFF_TAP|IFF_NO_PI|IFF_VNET_HDR): Invalid argument (os error 22)"
    );
}

fn link_exists(ns: &str, name: &str) -> bool {
    sh(&format!("ip -n {ns} link show {name}")).0
}

/// A persistent tap moved into a namespace exchanges frames both ways, survives its
/// descriptor's close, is found again inside the namespace, and goes on delete.
#[test]
fn persistent_tap_survives_and_reattaches() {
    if !root_or_skip("persistent_tap_survives_and_reattaches") {
        return;
    }
    let pid = std::process::id();
    let name = format!("kt{pid}");
    let ns = format!("kport-t-{pid}");
    let mut c = Cleanup::default();
    c.netns.push(ns.clone());
    c.taps.push(name.clone());
    must(&format!("ip netns add {ns}"));
    must(&format!(
        "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
    ));
    must(&format!(
        "ip netns exec {ns} sysctl -qw net.ipv6.conf.default.disable_ipv6=1"
    ));

    let cfg = TapConfig {
        persist: true,
        ..TapConfig::default()
    };
    let mut tap = Tap::open(&name, &cfg).unwrap();
    assert_eq!(tap.ifname(), name);
    let off = tap.offloads();
    eprintln!(
        "tap offloads accepted: {off:#x} (USO {})",
        off & kport::TUN_F_USO4 != 0
    );
    assert_eq!(
        off & (kport::TUN_F_CSUM | kport::TUN_F_TSO4 | kport::TUN_F_TSO6),
        kport::TUN_F_CSUM | kport::TUN_F_TSO4 | kport::TUN_F_TSO6
    );
    must(&format!("ip link set {name} netns {ns}"));
    must(&format!("ip -n {ns} addr add 10.77.7.2/24 dev {name}"));
    must(&format!("ip -n {ns} link set {name} up"));
    let (me, peer) = (ip4("10.77.7.1"), ip4("10.77.7.2"));
    assert!(
        arp_round_trip(&mut tap, me, peer),
        "no ARP reply via the tap"
    );
    let st = tap.stats();
    assert!(st.tx_packets >= 1 && st.rx_packets >= 1, "{st:?}");
    drop(tap);

    assert!(link_exists(&ns, &name), "persistent tap gone after close");
    // From our namespace the name is not there: it moved.
    assert!(matches!(
        AfPacket::open(&name, &AfPacketConfig::default()),
        Err(kport::Error::NotFound(_))
    ));
    let again = TapConfig {
        netns: Some(format!("/run/netns/{ns}").into()),
        ..TapConfig::default()
    };
    let mut tap = Tap::open(&name, &again).unwrap();
    assert!(
        arp_round_trip(&mut tap, me, peer),
        "no ARP reply after re-attach"
    );
    tap.delete().unwrap();
    let start = Instant::now();
    while link_exists(&ns, &name) && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!link_exists(&ns, &name), "tap still there after delete");
}

/// A TCP transfer each way between a namespace behind an af_packet port and one behind a
/// tap, switched by the test: the tap hands over GSO frames (TUNSETOFFLOAD TSO4) and takes
/// the af_packet side's GSO frames, all with default offloads on.
#[test]
fn tcp_gso_between_tap_and_af_packet() {
    if !root_or_skip("tcp_gso_between_tap_and_af_packet") {
        return;
    }
    let pid = std::process::id();
    let mut c = Cleanup::default();
    let v = veth(&mut c, "x", "10.77.8.1");
    let name = format!("kx{pid}");
    let ns = format!("kport-y-{pid}");
    c.netns.push(ns.clone());
    c.taps.push(name.clone());
    must(&format!("ip netns add {ns}"));
    must(&format!(
        "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1"
    ));
    let mut tap = Tap::open(&name, &TapConfig::default()).unwrap();
    must(&format!("ip link set {name} netns {ns}"));
    must(&format!("ip -n {ns} addr add 10.77.8.2/24 dev {name}"));
    must(&format!("ip -n {ns} link set lo up"));
    must(&format!("ip -n {ns} link set {name} up"));
    let feats = must(&format!(
        "ip netns exec {ns} ethtool -k {name} | grep -E '^(tx-checksumming|tcp-segmentation-offload):'"
    ));
    eprintln!("tap offloads in the pod: {}", feats.replace('\n', "; "));
    let mut port = AfPacket::open(&v.host, &AfPacketConfig::default()).unwrap();
    let stop = AtomicBool::new(false);
    let ((to_tap, from_tap), r1, r2) = std::thread::scope(|s| {
        let sw = s.spawn(|| switch(&mut port, &mut tap, &stop));
        let r1 = tcp_transfer(&v.ns, &ns, "10.77.8.2", 16);
        let r2 = tcp_transfer(&ns, &v.ns, "10.77.8.1", 16);
        stop.store(true, Ordering::Relaxed);
        (sw.join().unwrap(), r1, r2)
    });
    eprintln!("af_packet->tap {to_tap:?}\ntap->af_packet {from_tap:?}");
    eprintln!("tap {:?}\nport {:?}", tap.stats(), port.stats().unwrap());
    assert_eq!(r1.0, r1.1, "veth -> tap bytes differ");
    assert_eq!(r2.0, r2.1, "tap -> veth bytes differ");
    assert!(
        to_tap.gso_tcpv4 > 0,
        "no GSO frame written to the tap: {to_tap:?}"
    );
    assert!(
        from_tap.gso_tcpv4 > 0 && from_tap.needs_csum > 0,
        "no GSO / partial-checksum frame read from the tap: {from_tap:?}"
    );
    assert!(from_tap.gso_sizes.contains(&1448), "{from_tap:?}");
    assert_eq!(tap.stats().tx_errors, 0);
}
