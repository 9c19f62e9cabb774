//! A bridge with a tunnel member whose underlay is missing (no VRF, no route to the
//! remote): the bridge still switches among its other members (flooding, learning, known
//! unicast); flooded copies for the tunnel reach tunnel-encap and are dropped there as
//! `no_route`, frames to an entry on the tunnel that names no VTEP are dropped at output
//! as `no_encap`, both counted on the tunnel's interface, and nothing leaks or panics.
//! (tests/vxlan.rs has the tunnel working.)

mod common;

use std::sync::Arc;

use common::{try_eal, Rig};
use dpdk::Mempool;
use vswitch_dataplane::l2::fdb::FdbKey;
use vswitch_dataplane::plan::{
    BridgePlan, ForwardingPlan, L2Port, TunnelEncap, TunnelPlan, VlanMode, WorkerPlan,
};
use vswitch_dataplane::{DropReason, IfacePlan, Input, Tx};

const A: u16 = 0;
const B: u16 = 1;
/// The vxlan tunnel member.
const T: u16 = 2;

fn mac(n: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, n]
}

fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[0x08, 0x00]);
    f.resize(f.len() + 46, 0xab);
    f
}

fn plan() -> ForwardingPlan {
    let member = |_| IfacePlan {
        up: true,
        input: Input::Bridge,
        l2: Some(L2Port {
            bridge: 1,
            mode: VlanMode::Untagged,
            up: true,
        }),
        max_frame: IfacePlan::max_frame_of(1450),
        l3: None,
    };
    let ifaces = (0..4).map(|i| (i < 3).then(|| member(i))).collect();
    let mut bridges = vec![None; 2];
    bridges[1] = Some(BridgePlan {
        learn: true,
        flood: true,
        members: vec![A, B, T],
        bvi: None,
    });
    // A and B have no DPDK queue here (Tx::None: dropped as no_tx_queue at flush), the
    // tunnel's tx path is the encapsulation no stage does yet.
    let mut tx = vec![Tx::None; 4];
    tx[usize::from(T)] = Tx::Tunnel;
    ForwardingPlan {
        ifaces,
        bridges,
        workers: vec![WorkerPlan { rx: vec![], tx }],
        tunnels: vec![TunnelPlan {
            iface: T,
            encap: TunnelEncap::Vxlan {
                vni: 42,
                port: 4789,
            },
            vrf: 0,
            local: "192.0.2.1".parse().unwrap(),
            remotes: vec!["192.0.2.2".parse().unwrap()],
            ttl: 64,
            df: false,
            mtu: 1450,
            mac: mac(0x70),
            vteps: vec![],
        }],
        ..Default::default()
    }
}

#[test]
fn a_bridge_with_a_tunnel_member_switches_the_others_and_counts_what_goes_to_the_tunnel() {
    let args = dpdk::light_args("0", &format!("vstun{}", std::process::id()));
    let Some(eal) = try_eal(&args) else {
        return;
    };
    let pool = Arc::new(Mempool::new(&eal, "tun_test", 512, 0).unwrap());
    let base = pool.in_use();
    let mut r = Rig::new(&pool, 1024, &[(1, vec![A, B, T])], (4, 4));
    let p = plan();
    assert_eq!(p.tunnel(T).map(|t| t.mtu), Some(1450));
    let out = |r: &Rig, port: u16| r.out(port).len();

    // A broadcast from A floods to B and to the tunnel, whose underlay has no route.
    r.send_burst(&p, A, &[frame([0xff; 6], mac(0xa))]);
    assert_eq!((out(&r, B), out(&r, T), out(&r, A)), (1, 0, 0));
    r.flush(&p);
    let s = r.counters.snapshot();
    assert_eq!(s.dropped(DropReason::NoRoute), 1, "the tunnel's copy");
    assert_eq!(
        s.dropped(DropReason::NoTxQueue),
        1,
        "B's copy (no DPDK queue here)"
    );
    assert_eq!(
        r.counters.iface(T).drops,
        1,
        "counted on the tunnel's interface"
    );

    // B -> A is known unicast (A was learned): A only, nothing toward the tunnel.
    r.send_burst(&p, B, &[frame(mac(0xa), mac(0xb))]);
    assert_eq!((out(&r, A), out(&r, T)), (1, 0));
    r.flush(&p);
    // A -> a MAC set on the tunnel without a VTEP (the dataplane entry has none): to the
    // tunnel's output, which nothing encapsulates.
    r.learner
        .add_statics(&[(
            FdbKey {
                bridge: 1,
                vlan: 0,
                mac: mac(0xe),
            },
            T,
        )])
        .unwrap();
    r.send_burst(&p, A, &[frame(mac(0xe), mac(0xa))]);
    assert_eq!((out(&r, T), out(&r, B)), (1, 0));
    r.flush(&p);
    assert_eq!(r.counters.snapshot().dropped(DropReason::NoEncap), 1);
    assert_eq!(r.counters.iface(T).drops, 2);

    drop(r);
    assert_eq!(pool.in_use(), base, "no mbuf leaked");
    drop(pool);
    eal.cleanup();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/vstun{}", std::process::id()));
}
