//! A server and a client of this crate in one process exchange frames.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use memif::{Config, Context, Interface, Role};

fn sock(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("memif-test-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[path = "common/wait.rs"]
mod wait;
use wait::wait;

fn pair(name: &str, queues: u16) -> (Context, Interface, Interface, PathBuf) {
    let ctx = Context::new().unwrap();
    let path = sock(name);
    let mut sc = Config::new(Role::Server, &path, 3);
    sc.queues = queues;
    let mut cc = Config::new(Role::Client, &path, 3);
    cc.queues = queues;
    cc.retry = Duration::from_millis(20);
    let s = ctx.open(sc).unwrap();
    let c = ctx.open(cc).unwrap();
    wait("link up", || s.is_up() && c.is_up());
    (ctx, s, c, path)
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// Sends `frames` on `from` queue `q` and receives them all on `to`, in order.
fn exchange(from: &Interface, to: &Interface, q: usize, frames: &[Vec<u8>]) {
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut sent = 0;
    let t = Instant::now();
    while got.len() < frames.len() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "exchange timed out: {} of {}",
            got.len(),
            frames.len()
        );
        if sent < frames.len() {
            let refs: Vec<&[u8]> = frames[sent..]
                .iter()
                .take(32)
                .map(|f| f.as_slice())
                .collect();
            sent += from.tx_burst(q, &refs);
        }
        to.rx_burst(q, 32, |f| got.push(f.to_vec()));
    }
    assert_eq!(got.len(), frames.len());
    for (i, (a, b)) in got.iter().zip(frames).enumerate() {
        assert_eq!(a.len(), b.len(), "frame {i} length");
        assert!(a == b, "frame {i} contents differ");
    }
}

#[test]
fn one_queue_both_ways() {
    let (_ctx, s, c, path) = pair("one", 1);
    assert_eq!(
        std::fs::metadata(&path)
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap(),
        0o660
    );
    let frames: Vec<Vec<u8>> = (0..5000).map(|i| frame(60 + i % 1400, i as u8)).collect();
    exchange(&c, &s, 0, &frames);
    exchange(&s, &c, 0, &frames);
    assert_eq!(
        s.rx_stats(0)
            .unwrap()
            .rx_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        5000
    );
    assert_eq!(
        c.tx_stats(0)
            .unwrap()
            .tx_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        5000
    );
    assert!(s.peer().contains("memif3"), "{}", s.peer());
    assert_eq!(s.link_events(), 1);
}

#[test]
fn several_queues_and_jumbo_chains() {
    let (_ctx, s, c, _path) = pair("multi", 4);
    for q in 0..4 {
        let frames: Vec<Vec<u8>> = (0..300)
            .map(|i| frame(if i % 3 == 0 { 9000 } else { 64 + q * 100 }, i as u8))
            .collect();
        exchange(&c, &s, q, &frames);
        exchange(&s, &c, q, &frames);
    }
    // A frame of several parts, longer than a buffer, as one chain.
    let a = frame(3000, 1);
    let b = frame(5000, 2);
    let mut whole = a.clone();
    whole.extend_from_slice(&b);
    {
        let mut batch = c.tx_batch(1).unwrap();
        assert!(batch.push([a.as_slice(), b.as_slice()]));
    }
    let mut got = Vec::new();
    wait("the chained frame", || {
        s.rx_burst(1, 32, |f| got.push(f.to_vec()));
        !got.is_empty()
    });
    assert_eq!(got, vec![whole]);
}

#[test]
fn full_ring_refuses_then_drains() {
    let (_ctx, s, c, _path) = pair("full", 1);
    let f = frame(100, 9);
    let mut n = 0;
    while c.tx_burst(0, &[&f]) == 1 {
        n += 1;
        assert!(n <= 1024);
    }
    assert_eq!(n, 1024, "a ring of 1024 takes 1024 frames");
    assert!(
        c.tx_stats(0)
            .unwrap()
            .tx_no_room
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    let mut got = 0;
    while got < 1024 {
        got += s.rx_burst(0, 256, |_| {});
    }
    assert_eq!(c.tx_burst(0, &[&f]), 1);
}

#[test]
fn client_reconnects_after_server_goes_and_comes_back() {
    let ctx = Context::new().unwrap();
    let path = sock("reconnect");
    let mut cc = Config::new(Role::Client, &path, 0);
    cc.retry = Duration::from_millis(20);
    // The client comes first and waits for the server.
    let c = ctx.open(cc).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(!c.is_up());
    let s = ctx.open(Config::new(Role::Server, &path, 0)).unwrap();
    wait("link up", || c.is_up() && s.is_up());
    exchange(&c, &s, 0, &[frame(64, 1)]);
    drop(s);
    wait("link down", || !c.is_up());
    assert!(
        !path.exists(),
        "the last server interface removes its socket file"
    );
    let s = ctx.open(Config::new(Role::Server, &path, 0)).unwrap();
    wait("link up again", || c.is_up() && s.is_up());
    exchange(&s, &c, 0, &[frame(1500, 2)]);
    assert!(c.link_events() >= 3);
}

#[test]
fn ids_share_a_socket_and_wrong_ids_are_refused() {
    let ctx = Context::new().unwrap();
    let path = sock("ids");
    let s1 = ctx.open(Config::new(Role::Server, &path, 1)).unwrap();
    let s2 = ctx.open(Config::new(Role::Server, &path, 2)).unwrap();
    assert!(matches!(
        ctx.open(Config::new(Role::Server, &path, 2)),
        Err(memif::Error::DuplicateId { .. })
    ));
    let mut c2 = Config::new(Role::Client, &path, 2);
    c2.retry = Duration::from_millis(20);
    let c2 = ctx.open(c2).unwrap();
    let mut c9 = Config::new(Role::Client, &path, 9);
    c9.retry = Duration::from_millis(20);
    let c9 = ctx.open(c9).unwrap();
    wait("id 2 up", || c2.is_up() && s2.is_up());
    assert!(!s1.is_up());
    wait("id 9 refused", || c9.last_error().contains("ID not found"));
    assert!(!c9.is_up());
    exchange(&c2, &s2, 0, &[frame(64, 3)]);
}

#[test]
fn secret_must_match() {
    let ctx = Context::new().unwrap();
    let path = sock("secret");
    let mut sc = Config::new(Role::Server, &path, 0);
    sc.secret = Some("open sesame".into());
    let s = ctx.open(sc).unwrap();
    let mut cc = Config::new(Role::Client, &path, 0);
    cc.retry = Duration::from_millis(20);
    cc.secret = Some("wrong".into());
    let c = ctx.open(cc).unwrap();
    wait("refusal", || {
        s.errors()
            .bad_secret
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    });
    assert!(!s.is_up());
    drop(c);
    let mut cc = Config::new(Role::Client, &path, 0);
    cc.secret = Some("open sesame".into());
    let c = ctx.open(cc).unwrap();
    wait("link up", || c.is_up() && s.is_up());
}

#[test]
fn hundred_interfaces_one_thread() {
    let ctx = Context::new().unwrap();
    let path = sock("hundred");
    let mut servers = Vec::new();
    let mut clients = Vec::new();
    for id in 0..100 {
        let mut sc = Config::new(Role::Server, &path, id);
        sc.log2_ring_size = 6;
        servers.push(ctx.open(sc).unwrap());
        let mut cc = Config::new(Role::Client, &path, id);
        cc.log2_ring_size = 6;
        cc.retry = Duration::from_millis(20);
        clients.push(ctx.open(cc).unwrap());
    }
    wait("100 links up", || {
        servers.iter().chain(&clients).all(|i| i.is_up())
    });
    for (k, (s, c)) in servers.iter().zip(&clients).enumerate() {
        exchange(c, s, 0, &[frame(64 + k, k as u8)]);
    }
    let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
    assert!(threads < 40, "{threads} threads");
    // Per connected pair: two sockets and, on each side, one eventfd per ring (2); the
    // memfd is closed once mapped. 100 pairs: about 600, plus the listener.
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    assert!(fds < 700, "{fds} descriptors open");
    eprintln!("100 memif pairs: {threads} threads, {fds} descriptors");
}

#[test]
fn interrupts_kick_the_receivers_eventfd() {
    let ctx = Context::new().unwrap();
    let path = sock("intr");
    let s = ctx.open(Config::new(Role::Server, &path, 0)).unwrap();
    let mut cc = Config::new(Role::Client, &path, 0);
    cc.rx_interrupts = true;
    let c = ctx.open(cc).unwrap();
    wait("link up", || c.is_up() && s.is_up());
    let efd = c.rx_eventfd(0).expect("an rx eventfd while connected");
    let read = || {
        let mut v = 0u64;
        // SAFETY: reads 8 bytes into a live u64 from a non-blocking eventfd.
        let n = unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&*efd),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            )
        };
        if n == 8 {
            v
        } else {
            0
        }
    };
    assert_eq!(read(), 0);
    assert_eq!(s.tx_burst(0, &[&[1u8; 64], &[2u8; 64]]), 2);
    assert_eq!(read(), 1, "one kick per batch");
    // The server's rx ring is masked (polling): the client sends without kicking it.
    let sfd = s.rx_eventfd(0).unwrap();
    assert_eq!(c.tx_burst(0, &[&[3u8; 64]]), 1);
    let mut v = 0u64;
    // SAFETY: as above.
    let n = unsafe {
        libc::read(
            std::os::fd::AsRawFd::as_raw_fd(&*sfd),
            &mut v as *mut u64 as *mut libc::c_void,
            8,
        )
    };
    assert!(n < 0, "no kick for a ring that masks interrupts");
}

/// A sleeping reader arms its queue: the peer's next batch kicks the eventfd once; frames
/// already waiting refuse the arming (no sleep); disarmed, the peer sends without a kick.
/// Both roles (the client reads a server-to-client ring, the server a client-to-server one).
#[test]
fn armed_rx_queues_are_kicked_disarmed_are_not() {
    let (_ctx, s, c, _path) = pair("arm", 2);
    for (rx, tx) in [(&c, &s), (&s, &c)] {
        for q in 0..2 {
            let w = rx.rx_arm(q).expect("an idle connected queue arms");
            assert_eq!(w.ack(), 0, "no kick before the peer sends");
            assert_eq!(tx.tx_burst(q, &[&[1u8; 64], &[2u8; 64]]), 2);
            assert_eq!(w.ack(), 1, "one kick for the batch");
            assert!(rx.rx_arm(q).is_none(), "frames waiting: not armed");
            assert_eq!(rx.rx_burst(q, 32, |_| {}), 2);
            rx.rx_disarm(q);
            assert_eq!(tx.tx_burst(q, &[&[3u8; 64]]), 1);
            assert_eq!(w.ack(), 0, "disarmed: no kick");
            assert_eq!(rx.rx_burst(q, 32, |_| {}), 1);
        }
    }
    assert!(c.rx_arm(2).is_none(), "no queue 2");
    assert!(c.tx_stats(0).is_some());
    drop(s);
    wait("link down", || !c.is_up());
    assert!(c.rx_arm(0).is_none(), "a link that is down does not arm");
}

/// Workers keep bursting on both sides while the server interface is removed and added
/// again and again: every unmapping waits for the burst in progress, so nothing crashes,
/// and traffic flows after each reconnect.
#[test]
fn bursts_survive_disconnects_under_traffic() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::Arc;
    let ctx = Arc::new(Context::new().unwrap());
    let path = sock("churn");
    let mut cc = Config::new(Role::Client, &path, 0);
    cc.queues = 2;
    cc.retry = Duration::from_millis(5);
    let c = Arc::new(ctx.open(cc).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|q| {
            let (c, stop) = (c.clone(), stop.clone());
            std::thread::spawn(move || {
                let f = frame(3000, q as u8);
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    c.tx_burst(q, &[&f, &f, &f]);
                    n += c.rx_burst(q, 32, |_| {}) as u64;
                }
                n
            })
        })
        .collect();
    for round in 0..20 {
        let mut sc = Config::new(Role::Server, &path, 0);
        sc.queues = 2;
        let s = ctx.open(sc).unwrap();
        wait("link up", || s.is_up() && c.is_up());
        let mut got = 0;
        wait("frames from the client", || {
            got += s.rx_burst(round % 2, 32, |f| assert_eq!(f.len(), 3000));
            s.tx_burst(round % 2, &[&[7u8; 100]]);
            got > 0
        });
        drop(s);
        wait("link down", || !c.is_up());
    }
    stop.store(true, Relaxed);
    let received: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(
        received > 0,
        "the client received frames between reconnects"
    );
}

#[test]
fn a_stale_socket_file_is_replaced_a_live_one_is_not() {
    let path = sock("stale");
    // A socket file nobody listens on any more (its process died).
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(l);
    assert!(path.exists());
    let ctx = Context::new().unwrap();
    let s = ctx.open(Config::new(Role::Server, &path, 0)).unwrap();
    // A second context (another process, as far as the socket is concerned) must not
    // steal a live socket.
    let other = Context::new().unwrap();
    assert!(matches!(
        other.open(Config::new(Role::Server, &path, 0)),
        Err(memif::Error::Socket { .. })
    ));
    let mut cc = Config::new(Role::Client, &path, 0);
    cc.retry = Duration::from_millis(20);
    let c = ctx.open(cc).unwrap();
    wait("link up", || c.is_up() && s.is_up());
}
