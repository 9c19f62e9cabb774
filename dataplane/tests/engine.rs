//! The worker loop on real DPDK ports (net_ring: each queue is a ring that tx writes and rx
//! reads, so a test thread can inject into and drain a port): packets cross the worker, are
//! counted (per interface, per stage), and a port removed by publishing a new plan is no
//! longer touched. The slow path end to end: frames punted by ethernet-input reach this
//! thread through the punt ring, are injected back as received on another interface (so
//! they visit ethernet-input twice) and leave through a real port; a full punt ring is
//! counted and never stalls the worker.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::try_eal;
use dpdk::{Burst, Eal, Mbuf, Mempool, Port, PortConfig};
use vswitch_dataplane::l2::bridge::L2Shared;
use vswitch_dataplane::l2::fdb::Fdb;
use vswitch_dataplane::l2::learn::{Clock, LearnQueues};
use vswitch_dataplane::slowpath::{Injected, PuntReason, SlowPath};
use vswitch_dataplane::{
    DropReason, Engine, ForwardingPlan, IfacePlan, Input, PollMode, Rx, RxQueue, Stage, Tx,
    WorkerPlan,
};

// Logical interface indices (not the ports' DPDK ids).
const IA: u16 = 10;
const IB: u16 = 11;
const IC: u16 = 12;

fn iface(input: Input) -> Option<IfacePlan> {
    Some(IfacePlan {
        up: true,
        input,
        l2: None,
        max_frame: IfacePlan::max_frame_of(1500),
        l3: None,
    })
}

/// a -> b (cross-connect); c: `c_input`; the worker polls a and c and sends on b.
fn plan(a: &Port, b: &Port, c: &Port, c_input: Input) -> ForwardingPlan {
    let mut ifaces = vec![None; 16];
    ifaces[IA as usize] = iface(Input::Xconnect(IB));
    ifaces[IB as usize] = iface(Input::Drop(DropReason::Unconnected));
    ifaces[IC as usize] = iface(c_input);
    let mut tx = vec![Tx::None; 16];
    tx[IB as usize] = Tx::Dpdk(b.tx_queue(0).unwrap());
    ForwardingPlan {
        workers: vec![WorkerPlan {
            tx,
            rx: vec![
                RxQueue {
                    rxq: Rx::Dpdk(a.rx_queue(0).unwrap()),
                    iface: IA,
                },
                RxQueue {
                    rxq: Rx::Dpdk(c.rx_queue(0).unwrap()),
                    iface: IC,
                },
            ],
        }],
        ifaces,
        ..Default::default()
    }
}

fn eal() -> Option<Eal> {
    let args = dpdk::light_args("0@0,1@0", &format!("vsdp{}", std::process::id()));
    try_eal(&args)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// One test function: the EAL can be initialised once per process.
#[test]
fn worker_forwards_counts_and_lets_go_of_removed_ports() {
    let Some(eal) = eal() else {
        return;
    };
    let pool = Arc::new(Mempool::new(&eal, "dp_test", 4096, 0).unwrap());
    let base = pool.in_use();
    let a = Port::open(&eal, "net_ring_a", pool.clone(), PortConfig::default()).unwrap();
    let b = Port::open(&eal, "net_ring_b", pool.clone(), PortConfig::default()).unwrap();
    let c = Port::open(&eal, "net_ring_c", pool.clone(), PortConfig::default()).unwrap();
    let lcores = eal.worker_lcores();
    assert_eq!(lcores, vec![1]);
    let l2 = L2Shared {
        fdb: Arc::new(Fdb::new(1024)),
        learn: Arc::new(LearnQueues::new(1)),
        clock: Arc::new(Clock::default()),
    };
    // A punt ring of 4: the full-ring case below needs it small.
    let slow = Arc::new(SlowPath::new(1, 4, 64));
    let mut engine = Engine::start(&eal, &lcores, PollMode::Adaptive, l2, slow.clone()).unwrap();

    // a -> b; c is polled but not connected.
    // SAFETY: one worker; it alone polls a and c and transmits on b's tx queue, which this
    // thread never uses (it injects on a's and c's tx queues and drains b's rx queue); the
    // ports stay open until the engine stops.
    assert!(unsafe { engine.publish(plan(&a, &b, &c, Input::Drop(DropReason::Unconnected))) });

    // Inject 500 numbered frames into a (its ring), 5 into c.
    let inject = |port: &Port, n: usize| {
        for chunk in 0..n.div_ceil(100) {
            let mut burst = Burst::new();
            for i in chunk * 100..((chunk + 1) * 100).min(n) {
                let mut frame = vec![0u8; 64];
                frame[..4].copy_from_slice(&(i as u32).to_be_bytes());
                burst
                    .push(Mbuf::from_bytes(&pool, &frame).unwrap())
                    .unwrap();
            }
            let len = burst.len();
            // SAFETY: the worker never transmits on a or c (see the plan above).
            assert_eq!(unsafe { burst.tx(port.tx_queue(0).unwrap()) }, len);
        }
    };
    inject(&a, 500);
    inject(&c, 5);

    // Everything arrives on b, in order.
    let drain_b = |want: usize| {
        let mut got = Vec::new();
        wait_for(&format!("{want} frames on b"), || {
            let mut burst = Burst::new();
            // SAFETY: the worker never polls b.
            unsafe { burst.rx(b.rx_queue(0).unwrap(), 64) };
            for i in 0..burst.len() {
                let d = burst.data(i);
                got.push(u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
            }
            got.len() >= want
        });
        got
    };
    assert_eq!(drain_b(500), (0..500).collect::<Vec<u32>>());
    wait_for("counters", || engine.stats(0).unwrap().rx_packets == 505);
    let s = engine.stats(0).unwrap();
    assert_eq!(s.tx_packets, 500);
    assert_eq!(s.dropped(DropReason::Unconnected), 5);
    assert_eq!(engine.iface_totals(IA).rx_packets, 500);
    assert_eq!(engine.iface_totals(IA).rx_bytes, 500 * 64);
    assert_eq!(engine.iface_totals(IB).tx_packets, 500);
    assert_eq!(engine.iface_totals(IC).drops, 5);
    assert!(s.cycles_per_packet() > 0.0);
    // Per stage: every received packet passed rx and ethernet-input; the 500 forwarded
    // ones passed output; the 5 drops are ethernet-input's.
    let st = |x: Stage| s.stages[x as usize];
    assert_eq!(st(Stage::Rx).packets, 505);
    assert_eq!(st(Stage::EthernetInput).packets, 505);
    assert_eq!(st(Stage::Output).packets, 500);
    assert_eq!(
        st(Stage::EthernetInput).drops[DropReason::Unconnected as usize],
        5
    );
    assert!(st(Stage::EthernetInput).cycles > 0 && st(Stage::Output).cycles > 0);
    assert_eq!(st(Stage::L2Bridge).packets, 0);

    // The slow path: c's frames are punted; this thread takes them from the punt ring and
    // injects each back as received on a, so it visits ethernet-input a second time (a is
    // cross-connected) and leaves through b.
    // SAFETY: as above.
    assert!(unsafe { engine.publish(plan(&a, &b, &c, Input::Punt(PuntReason::Test))) });
    inject(&c, 3);
    let mut punted = Vec::new();
    wait_for("3 punted frames", || {
        slow.receive(64, |w, p| punted.push((w, p)));
        punted.len() >= 3
    });
    for (w, p) in punted {
        assert_eq!((w, p.iface, p.reason), (0, IC, PuntReason::Test));
        let i = Injected {
            mbuf: p.mbuf,
            iface: IA,
            as_received: true,
        };
        assert!(slow.inject(w, i).is_ok());
    }
    assert_eq!(drain_b(3), vec![0, 1, 2]);
    wait_for("inject counted", || {
        engine.stats(0).unwrap().stages[Stage::Inject as usize].packets == 3
    });
    let s = engine.stats(0).unwrap();
    assert_eq!(s.stages[Stage::Punt as usize].packets, 3);
    assert_eq!(s.stages[Stage::EthernetInput as usize].packets, 505 + 3 + 3);

    // Nobody reads the punt ring now: 4 fit, the rest are dropped as punt_full while a's
    // traffic still flows (the worker never waits on the ring).
    inject(&c, 20);
    inject(&a, 7);
    assert_eq!(drain_b(7), (0..7).collect::<Vec<u32>>());
    wait_for("punt_full", || {
        engine.stats(0).unwrap().dropped(DropReason::PuntFull) == 16
    });
    let mut left = 0;
    slow.receive(64, |_, _| left += 1);
    assert_eq!(left, 4);

    // Remove a and c from the plan: once publish returns, the worker no longer polls them,
    // so frames injected now stay in a's ring.
    // SAFETY: an empty plan names no queue.
    assert!(unsafe {
        engine.publish(ForwardingPlan {
            workers: vec![WorkerPlan::default()],
            ..Default::default()
        })
    });
    let before = engine.stats(0).unwrap().rx_packets;
    inject(&a, 10);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(engine.stats(0).unwrap().rx_packets, before);
    let mut left = Burst::new();
    // SAFETY: publish returned true: the worker no longer polls a.
    assert_eq!(unsafe { left.rx(a.rx_queue(0).unwrap(), 64) }, 10);
    drop(left);

    engine.stop(&eal);
    drop(slow);
    a.close();
    b.close();
    c.close();
    assert_eq!(pool.in_use(), base, "every mbuf is back in the pool");
    drop(pool);
    eal.cleanup();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/vsdp{}", std::process::id()));
}
