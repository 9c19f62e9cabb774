//! The bridge stage on real mbufs, through the graph (ethernet-input -> l2-bridge ->
//! output buffers): flooding with split horizon and VLAN isolation, tag push and pop
//! between access and trunk members, learning through the learner, known-unicast
//! forwarding, same-port filtering, flood=off, admin-down members, and no mbuf leaks.

mod common;

use std::sync::Arc;

use common::{try_eal, Rig};
use dpdk::offload::{TX_IPV4, TX_UDP_CKSUM};
use dpdk::{MbufOffload, Mempool};
use vswitch_dataplane::l2::fdb::FdbKey;
use vswitch_dataplane::plan::{BridgePlan, ForwardingPlan, L2Port, VlanMode, VlanSet};
use vswitch_dataplane::wire::checksum;
use vswitch_dataplane::{DropReason, IfacePlan, Input};

const A: u16 = 0; // access 10
const B: u16 = 1; // access 10
const C: u16 = 2; // trunk 10,20
const D: u16 = 3; // access 20
const E: u16 = 4; // untagged, on a second bridge

fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

fn frame(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(f.len() + 46, 0xab);
    f
}

fn plan(flood: bool, d_up: bool) -> ForwardingPlan {
    let mut ports: Vec<Option<L2Port>> = vec![None; 8];
    ports[A as usize] = Some(L2Port {
        bridge: 1,
        mode: VlanMode::Access(10),
        up: true,
    });
    ports[B as usize] = Some(L2Port {
        bridge: 1,
        mode: VlanMode::Access(10),
        up: true,
    });
    ports[C as usize] = Some(L2Port {
        bridge: 1,
        mode: VlanMode::Trunk(VlanSet::new(&[10, 20])),
        up: true,
    });
    ports[D as usize] = Some(L2Port {
        bridge: 1,
        mode: VlanMode::Access(20),
        up: d_up,
    });
    ports[E as usize] = Some(L2Port {
        bridge: 2,
        mode: VlanMode::Untagged,
        up: true,
    });
    let mut bridges = vec![None; 3];
    bridges[1] = Some(BridgePlan {
        learn: true,
        flood,
        members: vec![A, B, C, D],
        bvi: None,
    });
    bridges[2] = Some(BridgePlan {
        learn: true,
        flood,
        members: vec![E],
        bvi: None,
    });
    // Every member's frames go into its bridge; up or down as its membership.
    let ifaces = ports
        .into_iter()
        .map(|l2| {
            l2.map(|l2| IfacePlan {
                up: l2.up,
                input: Input::Bridge,
                l2: Some(l2),
                max_frame: IfacePlan::max_frame_of(1500),
                l3: None,
            })
        })
        .collect();
    ForwardingPlan {
        ifaces,
        bridges,
        ..Default::default()
    }
}

#[test]
fn bridge_stage() {
    let args = dpdk::light_args("0", &format!("vsbr{}", std::process::id()));
    let Some(eal) = try_eal(&args) else {
        return;
    };
    let pool = Arc::new(Mempool::new(&eal, "br_test", 1024, 0).unwrap());
    let base = pool.in_use();
    let mut r = Rig::new(&pool, 1024, &[(1, vec![A, B, C, D])], (4, 4));
    let p = plan(true, true);
    let bcast = [0xff; 6];

    // 1. Broadcast from A (VLAN 10): B gets it untagged, C tagged with 10, D (VLAN 20) and
    //    A itself (split horizon) and the other bridge get nothing.
    let f = frame(bcast, mac(0xa), None);
    r.send_burst(&p, A, std::slice::from_ref(&f));
    assert_eq!(r.out(B), vec![f.clone()]);
    assert_eq!(r.out(C), vec![frame(bcast, mac(0xa), Some(10))]);
    assert!(r.out(D).is_empty() && r.out(A).is_empty() && r.out(E).is_empty());
    r.g.output_mut().clear();
    // A's MAC was learned on VLAN 10.
    let hit =
        r.l2.fdb
            .lookup(&FdbKey {
                bridge: 1,
                vlan: 10,
                mac: mac(0xa),
            })
            .unwrap();
    assert_eq!(hit.entry.port, A);

    // 2. Tagged VLAN 20 from the trunk reaches D untagged and nobody else; the tag is popped.
    r.send_burst(&p, C, &[frame(bcast, mac(0xc), Some(20))]);
    assert_eq!(r.out(D), vec![frame(bcast, mac(0xc), None)]);
    assert!(r.out(A).is_empty() && r.out(B).is_empty());
    r.g.output_mut().clear();

    // 3. Known unicast: B -> A goes to A only; C (trunk) -> A pops the tag.
    r.send_burst(&p, B, &[frame(mac(0xa), mac(0xb), None)]);
    assert_eq!(r.out(A).len(), 1);
    assert!(r.out(C).is_empty());
    r.g.output_mut().clear();
    r.send_burst(&p, C, &[frame(mac(0xa), mac(0xc), Some(10))]);
    assert_eq!(r.out(A), vec![frame(mac(0xa), mac(0xc), None)]);
    r.g.output_mut().clear();

    // 4. Drops, each under its reason: VLAN 30 on the trunk, a tagged frame on an access
    //    member, a runt, a frame back to where its destination lives, unknown unicast with
    //    flood off, traffic into an admin-down member.
    r.send_burst(&p, C, &[frame(bcast, mac(0xc), Some(30))]);
    r.send_burst(&p, A, &[frame(bcast, mac(0xa), Some(10))]);
    assert_eq!(r.dropped(DropReason::VlanMismatch), 2);
    r.send_burst(&p, A, &[vec![0u8; 10]]);
    assert_eq!(r.dropped(DropReason::BadHeader), 1);
    r.send_burst(&p, A, &[frame(mac(0xa), mac(0x1a), None)]);
    assert_eq!(r.dropped(DropReason::SamePort), 1);
    let no_flood = plan(false, false);
    r.send_burst(&no_flood, A, &[frame(mac(0x77), mac(0xa), None)]);
    assert_eq!(r.dropped(DropReason::FloodOff), 1);
    r.send_burst(&no_flood, D, &[frame(bcast, mac(0xd), None)]);
    assert_eq!(r.dropped(DropReason::IfaceDown), 1);
    for port in [A, B, C, D, E] {
        assert!(
            r.out(port).is_empty(),
            "port {port} got a frame it should not"
        );
    }

    // 5. A station move: A's MAC now talks from B; the learner follows.
    r.send_burst(&p, B, &[frame(bcast, mac(0xa), None)]);
    assert_eq!(
        r.l2.fdb
            .lookup(&FdbKey {
                bridge: 1,
                vlan: 10,
                mac: mac(0xa)
            })
            .unwrap()
            .entry
            .port,
        B
    );
    assert_eq!(r.learner.stats().moved, 1);
    r.g.output_mut().clear();

    // 6. One burst mixing every case, from the trunk: each frame is handled as it would be
    //    alone (the burst is classified in one pass and switched in a second; a frame's
    //    result must not be another's): a runt, VLAN 30 (not carried), unicast to B on
    //    VLAN 10 (B has moved A's MAC, so use B's own: learned in step 3), a broadcast on
    //    VLAN 20, and a unicast to D's MAC on VLAN 20 (unknown: flooded to D).
    let (bad, vlan) = (
        r.dropped(DropReason::BadHeader),
        r.dropped(DropReason::VlanMismatch),
    );
    r.send(
        &p,
        C,
        &[
            vec![0u8; 10],
            frame(bcast, mac(0xc), Some(30)),
            frame(mac(0xb), mac(0xc), Some(10)),
            frame(bcast, mac(0xc), Some(20)),
            frame(mac(0xdd), mac(0xc), Some(20)),
        ],
    );
    assert_eq!(r.dropped(DropReason::BadHeader), bad + 1);
    assert_eq!(r.dropped(DropReason::VlanMismatch), vlan + 1);
    assert_eq!(r.out(B), vec![frame(mac(0xb), mac(0xc), None)]);
    assert_eq!(
        r.out(D),
        vec![
            frame(bcast, mac(0xc), None),
            frame(mac(0xdd), mac(0xc), None)
        ]
    );
    assert!(r.out(A).is_empty());
    r.g.output_mut().clear();

    // 7. Trains of one flow in a burst (ethernet-input and l2-bridge reuse the last frame's
    //    probes and verdict when its keys are the same): every frame goes where it would
    //    go alone. From the trunk: three to B on VLAN 10, the same addresses on VLAN 20 (B
    //    is not there: flooded to D), the first flow again, another source to B, three
    //    frames back to the trunk itself (C's own MAC: same_port each), a last one to B.
    let to_b = frame(mac(0xb), mac(0xc), Some(10));
    let to_b_20 = frame(mac(0xb), mac(0xc), Some(20));
    let other = frame(mac(0xb), mac(0xce), Some(10));
    let own = frame(mac(0xc), mac(0xce), Some(10));
    let same = r.dropped(DropReason::SamePort);
    for per_packet in [false, true] {
        let train = [
            to_b.clone(),
            to_b.clone(),
            to_b.clone(),
            to_b_20.clone(),
            to_b.clone(),
            to_b.clone(),
            other.clone(),
            own.clone(),
            own.clone(),
            own.clone(),
            to_b.clone(),
        ];
        if per_packet {
            r.send(&p, C, &train);
        } else {
            r.send_burst(&p, C, &train);
        }
        let b = frame(mac(0xb), mac(0xc), None);
        let b_other = frame(mac(0xb), mac(0xce), None);
        assert_eq!(
            r.out(B),
            vec![
                b.clone(),
                b.clone(),
                b.clone(),
                b.clone(),
                b.clone(),
                b_other,
                b
            ],
            "per packet: {per_packet}"
        );
        assert_eq!(r.out(D), vec![frame(mac(0xb), mac(0xc), None)]);
        assert!(r.out(A).is_empty() && r.out(C).is_empty());
        r.g.output_mut().clear();
        // The second source was learned on C in the first round (and the frames to it
        // went back to C's port: same_port).
        assert_eq!(
            r.dropped(DropReason::SamePort),
            same + if per_packet { 6 } else { 3 }
        );
    }
    let ce = r.l2.fdb.lookup(&FdbKey {
        bridge: 1,
        vlan: 10,
        mac: mac(0xce),
    });
    assert_eq!(ce.unwrap().entry.port, C);

    // 8. Bursts that are one train end to end (l2-bridge decides the first frame and, when
    //    it goes to one member with the frames' own tagging, queues the whole vector):
    //    every frame still goes where it would go alone. From A (access 10), a new source:
    //    three to B (access: the whole vector), two more while those are pending, then
    //    four with one over B's MTU (dropped by the output, the others sent); to C (trunk: a tag to push, frame by frame); to an
    //    unknown MAC (flooded to B and C); to A's own MAC (same_port each); and from D
    //    (access 20) to B, which is in VLAN 10 only (flooded in VLAN 20: C alone).
    let src = mac(0xa5);
    let to_b = frame(mac(0xb), src, None);
    let mut long = to_b.clone();
    long.resize(1600, 0xcd);
    r.send_burst(&p, A, &[to_b.clone(), to_b.clone(), to_b.clone()]);
    assert_eq!(r.out(B), vec![to_b.clone(), to_b.clone(), to_b.clone()]);
    assert!(r.out(A).is_empty() && r.out(C).is_empty() && r.out(D).is_empty());
    // Onto frames already pending for B: queued behind them, in order (the third frame of
    //    this train differs past byte 16 only).
    let mut to_b_late = to_b.clone();
    to_b_late[40] = 0x5a;
    r.send_burst(&p, A, &[to_b.clone(), to_b.clone(), to_b_late.clone()]);
    assert_eq!(r.out(B).len(), 6);
    assert_eq!(r.out(B)[5], to_b_late);
    r.g.output_mut().clear();
    let mtu = r.dropped(DropReason::MtuExceeded);
    r.send_burst(&p, A, &[to_b.clone(), to_b.clone(), long, to_b.clone()]);
    assert_eq!(r.out(B), vec![to_b.clone(), to_b.clone(), to_b.clone()]);
    assert!(r.out(A).is_empty() && r.out(C).is_empty() && r.out(D).is_empty());
    assert_eq!(r.dropped(DropReason::MtuExceeded), mtu + 1);
    r.g.output_mut().clear();
    // The train's source was learned on A.
    let a5 = r.l2.fdb.lookup(&FdbKey {
        bridge: 1,
        vlan: 10,
        mac: src,
    });
    assert_eq!(a5.unwrap().entry.port, A);
    let to_c = frame(mac(0xc), src, None);
    r.send_burst(&p, A, &[to_c.clone(), to_c.clone(), to_c.clone()]);
    let tagged = frame(mac(0xc), src, Some(10));
    assert_eq!(r.out(C), vec![tagged.clone(), tagged.clone(), tagged]);
    assert!(r.out(A).is_empty() && r.out(B).is_empty() && r.out(D).is_empty());
    r.g.output_mut().clear();
    let unknown = frame(mac(0x99), src, None);
    r.send_burst(&p, A, &[unknown.clone(), unknown.clone()]);
    assert_eq!(r.out(B), vec![unknown.clone(), unknown.clone()]);
    let unknown_tagged = frame(mac(0x99), src, Some(10));
    assert_eq!(r.out(C), vec![unknown_tagged.clone(), unknown_tagged]);
    assert!(r.out(A).is_empty() && r.out(D).is_empty());
    r.g.output_mut().clear();
    let same = r.dropped(DropReason::SamePort);
    let home = frame(src, mac(0xa6), None);
    r.send_burst(&p, A, &[home.clone(), home.clone(), home]);
    assert_eq!(r.dropped(DropReason::SamePort), same + 3);
    assert!([A, B, C, D].iter().all(|&i| r.out(i).is_empty()));
    // A train whose frames carry offload state (a partial UDP checksum): decided once,
    //    each frame queued with its own state (the output completes the checksum for B,
    //    which cannot take it); the frames differ past byte 16 (their ports).
    let udp = |sport: u8| {
        let mut f = frame(mac(0xb), src, None);
        f.truncate(14);
        f.extend_from_slice(&[0x45, 0, 0, 33, 0, 0, 0, 0, 64, 17, 0, 0]);
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2, 0x04, sport, 0x16, 0x2e, 0, 13]);
        let pseudo = checksum::sum(&[10, 0, 0, 1, 10, 0, 0, 2, 0, 17, 0, 13], 0);
        f.extend_from_slice(&pseudo.to_be_bytes());
        f.extend_from_slice(b"hello");
        f
    };
    let sent: Vec<Vec<u8>> = (1..=3).map(udp).collect();
    let mbufs = sent
        .iter()
        .map(|f| {
            let mut m = r.mbuf(f);
            m.set_offload(&MbufOffload {
                ol_flags: TX_UDP_CKSUM | TX_IPV4,
                l2_len: 14,
                l3_len: 20,
                tso_segsz: 0,
            });
            m
        })
        .collect();
    r.send_burst_mbufs(&p, A, mbufs);
    let got = r.out(B);
    assert_eq!(got.len(), 3);
    for (g, f) in got.iter().zip(&sent) {
        assert_eq!(g[..40], f[..40], "headers and ports as sent");
        assert_ne!(g[40..42], f[40..42], "the checksum was completed");
        let pseudo = checksum::pseudo_header_v4([10, 0, 0, 1].into(), [10, 0, 0, 2].into(), 17, 13);
        assert_eq!(checksum::sum(&g[34..], u32::from(pseudo)), 0xffff);
    }
    r.g.output_mut().clear();
    let from_d = frame(mac(0xb), mac(0xd5), None);
    r.send_burst(&p, D, &[from_d.clone(), from_d.clone()]);
    let d_tagged = frame(mac(0xb), mac(0xd5), Some(20));
    assert_eq!(r.out(C), vec![d_tagged.clone(), d_tagged]);
    assert!(r.out(A).is_empty() && r.out(B).is_empty() && r.out(D).is_empty());
    r.g.output_mut().clear();

    drop(r);
    assert_eq!(pool.in_use(), base, "no mbuf leaked");
    drop(pool);
    eal.cleanup();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/vsbr{}", std::process::id()));
}
