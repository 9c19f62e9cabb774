//! The worker loop on real DPDK ports (net_ring: each queue is a ring that tx writes and rx
//! reads, so a test thread can inject into and drain a port): packets cross the worker, are
//! counted, and a port removed by publishing a new plan is no longer touched.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::try_eal;
use dpdk::{Burst, Eal, Mbuf, Mempool, Port, PortConfig};
use vswitch_dataplane::l2::bridge::L2Shared;
use vswitch_dataplane::l2::fdb::Fdb;
use vswitch_dataplane::l2::learn::{Clock, LearnQueues};
use vswitch_dataplane::plan::Output;
use vswitch_dataplane::{DropReason, Engine, ForwardingPlan, PollMode, RxAssignment, WorkerPlan};

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
    let mut engine = Engine::start(&eal, &lcores, PollMode::Adaptive, l2).unwrap();

    // a -> b; c is polled but not connected.
    let plan = ForwardingPlan {
        workers: vec![WorkerPlan {
            tx: vec![],
            rx: vec![
                RxAssignment {
                    rxq: a.rx_queue(0).unwrap(),
                    out: Output::Port(b.tx_queue(0).unwrap()),
                },
                RxAssignment {
                    rxq: c.rx_queue(0).unwrap(),
                    out: Output::Drop(DropReason::Unconnected),
                },
            ],
        }],
        ..Default::default()
    };
    // SAFETY: one worker; it alone polls a and c and transmits on b's tx queue, which this
    // thread never uses (it injects on a's and c's tx queues and drains b's rx queue); the
    // ports stay open until the engine stops.
    assert!(unsafe { engine.publish(plan) });

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
    let mut got = Vec::new();
    wait_for("500 frames on b", || {
        let mut burst = Burst::new();
        // SAFETY: the worker never polls b.
        unsafe { burst.rx(b.rx_queue(0).unwrap(), 64) };
        for i in 0..burst.len() {
            let d = burst.data(i);
            got.push(u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
        }
        got.len() >= 500
    });
    assert_eq!(got, (0..500).collect::<Vec<u32>>());
    wait_for("counters", || engine.stats(0).unwrap().rx_packets == 505);
    let s = engine.stats(0).unwrap();
    assert_eq!(s.tx_packets, 500);
    assert_eq!(s.dropped(DropReason::Unconnected), 5);
    assert_eq!(engine.port_totals(a.id()).rx_packets, 500);
    assert_eq!(engine.port_totals(a.id()).rx_bytes, 500 * 64);
    assert_eq!(engine.port_totals(b.id()).tx_packets, 500);
    assert_eq!(engine.port_totals(c.id()).drops, 5);
    assert!(s.cycles_per_packet() > 0.0);

    // Remove a and c from the plan: once publish returns, the worker no longer polls them,
    // so frames injected now stay in a's ring.
    // SAFETY: an empty plan names no queue.
    assert!(unsafe {
        engine.publish(ForwardingPlan {
            workers: vec![WorkerPlan::default()],
            ..Default::default()
        })
    });
    inject(&a, 10);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(engine.stats(0).unwrap().rx_packets, 505);
    let mut left = Burst::new();
    // SAFETY: publish returned true: the worker no longer polls a.
    assert_eq!(unsafe { left.rx(a.rx_queue(0).unwrap(), 64) }, 10);
    drop(left);

    engine.stop(&eal);
    a.close();
    b.close();
    c.close();
    assert_eq!(pool.in_use(), base, "every mbuf is back in the pool");
    drop(pool);
    eal.cleanup();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/vsdp{}", std::process::id()));
}
