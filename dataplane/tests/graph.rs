//! The packet graph on real mbufs, without ports: a vector mixing interfaces (a bridge
//! member, a cross-connected interface, one that punts), each frame going its own way; a
//! punted frame coming back as received on another interface, so that it visits
//! ethernet-input twice; the output's MTU check and its software offloads (a partial UDP
//! checksum completed, a TCP super-frame cut into segments, a malformed one refused);
//! per-stage counts; no mbuf leaks.

mod common;

use std::sync::Arc;

use common::{try_eal, Rig};
use dpdk::offload::{TX_IPV4, TX_TCP_CKSUM, TX_TCP_SEG, TX_UDP_CKSUM};
use dpdk::{MbufOffload, Mempool};
use vswitch_dataplane::graph::Meta;
use vswitch_dataplane::plan::{BridgePlan, ForwardingPlan, L2Port, VlanMode};
use vswitch_dataplane::slowpath::PuntReason;
use vswitch_dataplane::wire::checksum;
use vswitch_dataplane::{DropReason, IfacePlan, Input, Stage};

// Logical interfaces: A and B bridged (B with a small MTU), X cross-connected to Y, P punts.
const A: u16 = 3;
const B: u16 = 9;
const X: u16 = 20;
const Y: u16 = 21;
const P: u16 = 30;

fn plan() -> ForwardingPlan {
    let mut ifaces = vec![None; 32];
    let member = |mtu| IfacePlan {
        up: true,
        input: Input::Bridge,
        l2: Some(L2Port {
            bridge: 1,
            mode: VlanMode::Untagged,
            up: true,
        }),
        max_frame: IfacePlan::max_frame_of(mtu),
        l3: None,
    };
    let plain = |input| IfacePlan {
        up: true,
        input,
        l2: None,
        max_frame: IfacePlan::max_frame_of(1500),
        l3: None,
    };
    ifaces[A as usize] = Some(member(9000));
    ifaces[B as usize] = Some(member(1500));
    ifaces[X as usize] = Some(plain(Input::Xconnect(Y)));
    ifaces[Y as usize] = Some(plain(Input::Xconnect(X)));
    ifaces[P as usize] = Some(plain(Input::Punt(PuntReason::Test)));
    let mut bridges = vec![None; 2];
    bridges[1] = Some(BridgePlan {
        learn: false,
        flood: true,
        members: vec![A, B],
        bvi: None,
    });
    ForwardingPlan {
        ifaces,
        bridges,
        ..Default::default()
    }
}

/// A broadcast Ethernet frame of `len` bytes whose payload starts with `tag`.
fn frame(len: usize, tag: u8) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, tag]);
    f.extend_from_slice(&[0x08, 0x00]);
    f.push(tag);
    f.resize(len, 0);
    f
}

/// Ethernet + IPv4 + UDP to 10.0.0.2 from 10.0.0.1, payload "hello", with the checksum
/// field holding the pseudo-header sum (a sender's partial checksum).
fn partial_udp() -> (Vec<u8>, u16) {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x77]);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0, 0, 33, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    let pseudo = checksum::sum(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 13], 0);
    f.extend_from_slice(&[0x04, 0xd2, 0x16, 0x2e, 0x00, 0x0d]);
    f.extend_from_slice(&pseudo.to_be_bytes());
    f.extend_from_slice(b"hello");
    (f, pseudo)
}

/// Ethernet (broadcast) + IPv4 + TCP from 10.0.0.1 to 10.0.0.2 carrying `data`, the
/// checksum field holding the pseudo-header sum (as a guest hands a TSO super-frame over).
fn tcp_super_frame(data: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x78, 0x08, 0x00, 0x45, 0]);
    f.extend_from_slice(&((40 + data.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let c = !checksum::sum(&f[14..34], 0);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let pseudo = checksum::pseudo_header_v4(
        [10, 0, 0, 1].into(),
        [10, 0, 0, 2].into(),
        6,
        (20 + data.len()) as u16,
    );
    f.extend_from_slice(&[0x9c, 0x40, 0x14, 0x51, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18]);
    f.extend_from_slice(&[0xff, 0xff]);
    f.extend_from_slice(&pseudo.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(data);
    f
}

#[test]
fn graph_on_real_mbufs() {
    let args = dpdk::light_args("0", &format!("vsgr{}", std::process::id()));
    let Some(eal) = try_eal(&args) else {
        return;
    };
    let pool = Arc::new(Mempool::with_data_room(&eal, "gr_test", 512, 0, 9728 + 128).unwrap());
    let base = pool.in_use();
    let mut r = Rig::new(&pool, 64, &[], (8, 8));
    let p = plan();

    // 1. One vector, three interfaces: A's broadcast floods to B, X's frame goes to Y,
    //    P's is punted; a runt from A is dropped by ethernet-input.
    let (fa, fx, fp) = (frame(60, 0xa), frame(60, 0x1), frame(60, 0x9));
    let runt = r.mbuf(&[1, 2, 3]);
    for (i, f) in [(A, &fa), (X, &fx), (P, &fp)] {
        let m = r.mbuf(f);
        r.push(i, m);
    }
    r.push(A, runt);
    r.run(&p);
    assert_eq!(r.out(B), vec![fa.clone()]);
    assert_eq!(r.out(Y), vec![fx.clone()]);
    assert!(r.out(A).is_empty() && r.out(X).is_empty());
    assert_eq!(r.drops(Stage::EthernetInput, DropReason::BadHeader), 1);
    let mut punted = Vec::new();
    r.slow.receive(8, |w, p| punted.push((w, p)));
    assert_eq!(punted.len(), 1);
    let (_, pk) = punted.pop().unwrap();
    assert_eq!(
        (pk.iface, pk.reason, pk.mbuf.data()),
        (P, PuntReason::Test, &fp[..])
    );
    let s = r.counters.snapshot();
    let st = |x: Stage| s.stages[x as usize];
    assert_eq!(
        (
            st(Stage::EthernetInput).packets,
            st(Stage::EthernetInput).calls
        ),
        (4, 1)
    );
    assert_eq!(
        (st(Stage::L2Bridge).packets, st(Stage::Punt).packets),
        (1, 1)
    );
    r.g.output_mut().clear();

    // 2. The punted frame comes back as received on A: it visits ethernet-input a second
    //    time and is bridged to B.
    r.push(A, pk.mbuf);
    r.run(&p);
    assert_eq!(r.out(B), vec![fp.clone()]);
    assert_eq!(
        r.counters.snapshot().stages[Stage::EthernetInput as usize].packets,
        5
    );
    r.g.output_mut().clear();

    // 3. The output's checks: a 9000-byte frame from A (MTU 9000) is too long for B (MTU
    //    1500): mtu_exceeded; a partial UDP checksum is completed in software and the
    //    request cleared; a TCP super-frame is cut into segments that fit B; a TSO
    //    request on a frame that is no TCP segment is refused (bad_header).
    let jumbo = r.mbuf(&frame(9014, 0xb));
    r.push(A, jumbo);
    let (udp, pseudo) = partial_udp();
    let mut m = r.mbuf(&udp);
    m.set_offload(&MbufOffload {
        ol_flags: TX_UDP_CKSUM | TX_IPV4,
        l2_len: 14,
        l3_len: 20,
        tso_segsz: 0,
    });
    let mut meta = Meta {
        rx_if: A,
        ..Meta::default()
    };
    meta.set_offload(&m.offload());
    assert!(r.g.input().push(m, meta).is_ok());
    let data: Vec<u8> = (0..3 * 1448 + 100).map(|i| (i % 251) as u8).collect();
    for f in [tcp_super_frame(&data), frame(4000, 0xc)] {
        let mut tso = r.mbuf(&f);
        tso.set_offload(&MbufOffload {
            ol_flags: TX_TCP_SEG | TX_TCP_CKSUM | TX_IPV4,
            l2_len: 14,
            l3_len: 20,
            tso_segsz: 1448,
        });
        let mut meta = Meta {
            rx_if: A,
            ..Meta::default()
        };
        meta.set_offload(&tso.offload());
        assert!(r.g.input().push(tso, meta).is_ok());
    }
    r.run(&p);
    assert_eq!(r.drops(Stage::Output, DropReason::MtuExceeded), 1);
    assert_eq!(r.drops(Stage::Output, DropReason::BadHeader), 1);
    let sent = r.out(B);
    assert_eq!(sent.len(), 5, "the UDP frame and 4 segments reach B");
    let mut payload = Vec::new();
    for s in &sent[1..] {
        let pseudo = checksum::pseudo_header_v4(
            [10, 0, 0, 1].into(),
            [10, 0, 0, 2].into(),
            6,
            (s.len() - 34) as u16,
        );
        assert_eq!(checksum::sum(&s[14..34], 0), 0xffff, "IPv4 header checksum");
        assert_eq!(
            checksum::sum(&s[34..], u32::from(pseudo)),
            0xffff,
            "TCP checksum"
        );
        payload.extend_from_slice(&s[54..]);
    }
    assert_eq!(payload, data);
    assert_eq!(sent[1].len(), 1502);
    let udp_out = &sent[0][34..];
    assert_ne!(&udp_out[6..8], &udp[40..42], "the checksum was completed");
    assert_eq!(
        checksum::sum(udp_out, u32::from(pseudo)),
        0xffff,
        "and verifies"
    );
    assert_eq!(
        r.g.output().pending(B).map(|b| b.offload(0).ol_flags),
        Some(TX_IPV4),
        "the checksum request is cleared"
    );
    r.g.output_mut().clear();

    drop(r);
    assert_eq!(pool.in_use(), base, "no mbuf leaked");
    drop(pool);
    eal.cleanup();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/vsgr{}", std::process::id()));
}
