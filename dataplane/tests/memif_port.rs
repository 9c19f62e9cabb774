//! Two memif ports of the switch (a server and a client, in one process) exchange mbufs:
//! small and jumbo frames, several queues and workers, and nothing leaks from the pool when
//! a port goes away under traffic.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::try_eal;
use dpdk::{Burst, Mbuf, Mempool};
use memif::{Config, Context, Role};
use vswitch_dataplane::memif_port::{MemifPort, ZcPool};

/// Ports are shared by workers (`Arc<MemifPort>` in the plan).
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<MemifPort>();
};

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_add(seed)).collect()
}

fn bytes_of(m: &Mbuf) -> Vec<u8> {
    m.parts().flat_map(|p| p.iter().copied()).collect()
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn memif_ports_exchange_mbufs() {
    let args = dpdk::light_args("0", &format!("vsmif{}", std::process::id()));
    let Some(eal) = try_eal(&args) else {
        return;
    };
    let pool = Arc::new(Mempool::new(&eal, "memif_test", 4096, 0).unwrap());
    let base = pool.in_use();
    let ctx = Context::with_logger(|_| {}).unwrap();
    let path = std::env::temp_dir().join(format!("vs-memif-port-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut sc = Config::new(Role::Server, &path, 1);
    sc.queues = 2;
    let mut cc = Config::new(Role::Client, &path, 1);
    cc.queues = 3;
    cc.retry = Duration::from_millis(20);
    // Three workers; the client asks for 3 queue pairs, the server offers 2.
    let s = MemifPort::open_in(&ctx, sc, 3, pool.clone()).unwrap();
    let c = MemifPort::open_in(&ctx, cc, 3, pool.clone()).unwrap();
    wait("link up", || s.is_up() && c.is_up());
    assert_eq!((s.queues(), c.queues()), (2, 3));
    assert_eq!(
        (s.interface().tx_queues_up(), c.interface().tx_queues_up()),
        (2, 2),
        "the link has the 2 queue pairs the server offers"
    );

    // Client worker 1 sends on tx queue 1 (small and 9000-byte frames, the latter chains
    // of mbufs and of descriptors); the server receives them on queue 1 only.
    let frames: Vec<Vec<u8>> = (0..40)
        .map(|i| frame(if i % 4 == 0 { 9000 } else { 60 + i }, i as u8))
        .collect();
    let mut b = Burst::new();
    for f in &frames {
        b.push(Mbuf::from_frame(&pool, f).unwrap()).unwrap();
    }
    let done = c.tx(1, &mut b);
    assert_eq!((done.sent, done.refused), (40, 0));
    assert_eq!(b.len(), 0);
    let mut got = Vec::new();
    let mut rb = Burst::new();
    wait("40 frames", || {
        assert_eq!(s.rx(0, &mut rb, 32), 0, "queue 0 got nothing");
        s.rx(1, &mut rb, 32);
        got.extend(rb.drain().map(|m| bytes_of(&m)));
        got.len() >= 40
    });
    assert_eq!(got, frames);
    // Client worker 2 has no queue 2 on this link: it sends on queue 0 (2 % 2).
    let mut b = Burst::new();
    b.push(Mbuf::from_frame(&pool, &frames[1]).unwrap())
        .unwrap();
    assert_eq!(c.tx(2, &mut b).sent, 1);
    let mut got = Vec::new();
    wait("a frame on queue 0", || {
        s.rx(0, &mut rb, 32);
        got.extend(rb.drain().map(|m| bytes_of(&m)));
        !got.is_empty()
    });
    assert_eq!(got, vec![frames[1].clone()]);
    // And back, server worker 0 on tx queue 0, client worker 0 receives queue 0.
    let mut b = Burst::new();
    for f in &frames[..10] {
        b.push(Mbuf::from_frame(&pool, f).unwrap()).unwrap();
    }
    assert_eq!(s.tx(0, &mut b).sent, 10);
    let mut got = Vec::new();
    wait("10 frames back", || {
        c.rx(0, &mut rb, 32);
        got.extend(rb.drain().map(|m| bytes_of(&m)));
        got.len() >= 10
    });
    assert_eq!(got, frames[..10].to_vec());
    let t = c.totals();
    assert_eq!((t.tx_frames, t.rx_frames, t.bad_desc), (41, 10, 0));

    // Fill the server's rx ring, then drop the client under traffic: nothing leaks.
    let mut b = Burst::new();
    for _ in 0..64 {
        b.push(Mbuf::from_frame(&pool, &frame(100, 1)).unwrap())
            .unwrap();
    }
    c.tx(0, &mut b);
    drop(c);
    wait("link down", || !s.is_up());
    assert_eq!(s.interface().tx_queues_up(), 0);
    let mut b = Burst::new();
    b.push(Mbuf::from_frame(&pool, &frame(100, 2)).unwrap())
        .unwrap();
    let done = s.tx(0, &mut b);
    assert_eq!((done.sent, done.refused), (0, 1));
    assert_eq!(
        s.stats().tx_busy.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    drop(rb);
    drop(s);
    assert_eq!(pool.in_use(), base, "mbufs leaked");

    zero_copy_client(&eal, &ctx, &pool);
}

/// A zero-copy client port against a copy-mode server port: frames from another pool are
/// copied into the client's shared buffers, frames the server sends arrive in them as
/// mbufs, and those are sent on again by lending the very buffers; every buffer of both
/// pools is back when the ports go.
fn zero_copy_client(eal: &dpdk::Eal, ctx: &Context, pool: &Arc<Mempool>) {
    let base = pool.in_use();
    let zc = Arc::new(ZcPool::new(eal, "memif_zc_test", 3000).unwrap());
    let path = std::env::temp_dir().join(format!("vs-memif-zc-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let sc = Config::new(Role::Server, &path, 2);
    let mut cc = Config::new(Role::Client, &path, 2);
    cc.retry = Duration::from_millis(20);
    let s = MemifPort::open_in(ctx, sc, 1, pool.clone()).unwrap();
    let c = MemifPort::open_zero_copy(ctx, cc, 1, pool.clone(), zc.clone()).unwrap();
    wait("zero-copy link up", || s.is_up() && c.is_up());
    assert!(c.interface().zero_copy());
    // The server holds a ring (1024) of the client's buffers to receive into.
    wait("rx ring given", || zc.pool().in_use() == 1024);
    let frames: Vec<Vec<u8>> = (0..100)
        .map(|i| frame(if i % 5 == 0 { 9000 } else { 60 + i * 7 }, i as u8))
        .collect();
    // Copied: mbufs of the ordinary pool.
    let mut b = Burst::new();
    for f in &frames {
        b.push(Mbuf::from_frame(pool, f).unwrap()).unwrap();
    }
    assert_eq!(c.tx(0, &mut b).sent, 100);
    let mut rb = Burst::new();
    let mut got = Vec::new();
    wait("100 copied frames", || {
        s.rx(0, &mut rb, 32);
        got.extend(rb.drain().map(|m| bytes_of(&m)));
        got.len() >= 100
    });
    assert_eq!(got, frames);
    // Received in place: the server writes into the client's buffers.
    let mut b = Burst::new();
    for f in &frames {
        b.push(Mbuf::from_frame(pool, f).unwrap()).unwrap();
    }
    assert_eq!(s.tx(0, &mut b).sent, 100);
    let mut held = Burst::new();
    wait("100 frames into the shared buffers", || {
        c.rx(0, &mut held, 32);
        held.len() >= 100
    });
    let got: Vec<Vec<u8>> = held.mbufs().iter().map(bytes_of).collect();
    assert_eq!(got, frames);
    // 1024 given to the server again, the 100 frames held (9000-byte ones in 5 buffers),
    // and as many lent by the copying send (given back at the client's next send).
    let segs: usize = held.mbufs().iter().map(|m| usize::from(m.segments())).sum();
    assert_eq!(segs, 80 + 20 * 5);
    assert_eq!(zc.pool().in_use() as usize, 1024 + 2 * segs);
    // Lent: the same buffers go to the server by address, and come back once it read them.
    assert_eq!(c.tx(0, &mut held).sent, 100);
    let mut got = Vec::new();
    wait("100 lent frames", || {
        s.rx(0, &mut rb, 32);
        got.extend(rb.drain().map(|m| bytes_of(&m)));
        got.len() >= 100
    });
    assert_eq!(got, frames);
    let t = c.totals();
    assert_eq!(
        (t.tx_frames, t.rx_frames, t.bad_desc, t.rx_nombuf),
        (200, 100, 0, 0)
    );
    // The next batch gives the read ones back (an empty burst starts none: send one).
    let mut b = Burst::new();
    b.push(Mbuf::from_frame(pool, &frames[1]).unwrap()).unwrap();
    assert_eq!(c.tx(0, &mut b).sent, 1);
    assert_eq!(zc.pool().in_use(), 1024 + 1, "lent buffers given back");
    drop(c);
    wait("zero-copy link down", || !s.is_up());
    drop(rb);
    drop(s);
    assert_eq!(zc.pool().in_use(), 0, "zero-copy buffers leaked");
    assert_eq!(pool.in_use(), base, "mbufs leaked");
}
