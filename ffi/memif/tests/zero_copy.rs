//! A zero-copy client of this crate against a copy-mode server of this crate, in one
//! process: frames both ways (the copy API and the buffer API), chains, and every buffer
//! given back, none twice, when the link goes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memif::{Config, Context, Interface, Role, ZcBuf, ZcBuffers, ZcMemory};

#[path = "common/slot_pool.rs"]
mod slot_pool;
use slot_pool::{SlotPool as Pool, ROOM};

fn sock(name: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("memif-zc-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[path = "common/wait.rs"]
mod wait;
use wait::wait;

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

fn open(ctx: &Context, path: &PathBuf, pool: &Arc<Pool>, queues: u16) -> (Interface, Interface) {
    let mut sc = Config::new(Role::Server, path, 1);
    sc.queues = queues;
    let mut cc = Config::new(Role::Client, path, 1);
    cc.queues = queues;
    cc.retry = Duration::from_millis(20);
    cc.zero_copy = Some(pool.clone());
    let s = ctx.open(sc).unwrap();
    let c = ctx.open(cc).unwrap();
    wait("link up", || s.is_up() && c.is_up());
    assert!(c.zero_copy() && !s.zero_copy());
    (s, c)
}

/// Sends `frames` with `send` until all went, receiving them with `recv` into a list.
fn exchange(
    frames: &[Vec<u8>],
    mut send: impl FnMut(&[Vec<u8>]) -> usize,
    mut recv: impl FnMut(&mut Vec<Vec<u8>>),
) {
    let (mut sent, mut got) = (0, Vec::new());
    let t = Instant::now();
    while got.len() < frames.len() {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{} of {} frames",
            got.len(),
            frames.len()
        );
        if sent < frames.len() {
            sent += send(&frames[sent..frames.len().min(sent + 32)]);
        }
        recv(&mut got);
    }
    assert_eq!(got.len(), frames.len());
    for (i, (a, b)) in got.iter().zip(frames).enumerate() {
        assert!(
            a == b,
            "frame {i} differs ({} and {} bytes)",
            a.len(),
            b.len()
        );
    }
}

/// Sends frames with the copy API (what went).
fn send(i: &Interface, q: usize, f: &[Vec<u8>]) -> usize {
    let refs: Vec<&[u8]> = f.iter().map(Vec::as_slice).collect();
    i.tx_burst(q, &refs)
}

/// Receives frames with the copy API.
fn recv(i: &Interface, q: usize, got: &mut Vec<Vec<u8>>) {
    i.rx_burst(q, 32, |f| got.push(f.to_vec()));
}

#[test]
fn zero_copy_client_against_a_copy_server() {
    let ctx = Context::new().unwrap();
    let path = sock("both");
    let pool = Pool::new(8192);
    let (s, c) = open(&ctx, &path, &pool, 2);
    // The server's rx rings hold buffers from the pool: ring size (1024) per queue.
    wait("rx rings filled", || pool.outstanding() == 2 * 1024);
    let frames: Vec<Vec<u8>> = (0..3000)
        .map(|i| frame(if i % 7 == 0 { 9000 } else { 60 + i % 1400 }, i as u8))
        .collect();
    for q in 0..2 {
        // The copy API on the zero-copy client: copied into pool buffers, then lent.
        exchange(&frames, |f| send(&c, q, f), |got| recv(&s, q, got));
        exchange(&frames, |f| send(&s, q, f), |got| recv(&c, q, got));
        // The buffer API: frames written into buffers of our own and lent, received as
        // buffers (chains for the long ones).
        exchange(
            &frames,
            |f| {
                let Some(mut batch) = c.tx_batch(q) else {
                    return 0;
                };
                let mut n = 0;
                for fr in f {
                    let mut segs = Vec::new();
                    for part in fr.chunks(ROOM as usize) {
                        let mut b = [ZcBuf::default()];
                        assert_eq!(pool.alloc(&mut b), 1, "pool dry");
                        pool.write(&b[0], part);
                        segs.push(ZcBuf {
                            len: part.len() as u32,
                            ..b[0]
                        });
                    }
                    if !batch.push_zc(&segs) {
                        let tokens: Vec<u64> = segs.iter().map(|b| b.token).collect();
                        pool.free(&tokens);
                        break;
                    }
                    n += 1;
                }
                n
            },
            |got| recv(&s, q, got),
        );
        exchange(
            &frames,
            |f| send(&s, q, f),
            |got| {
                c.rx_burst_zc(q, 32, |segs| {
                    let mut whole = Vec::new();
                    for b in segs {
                        whole.extend(pool.bytes(b));
                    }
                    got.push(whole);
                    let tokens: Vec<u64> = segs.iter().map(|b| b.token).collect();
                    pool.free(&tokens);
                });
            },
        );
    }
    // Everything sent was read by the server: one more batch gives the lent buffers back.
    drop(c.tx_batch(0));
    drop(c.tx_batch(1));
    assert_eq!(
        pool.outstanding(),
        2 * 1024,
        "only the rx rings' buffers are out"
    );
    // The link goes: the rx rings' buffers come back too, none twice (the pool checks).
    drop(s);
    wait("link down", || !c.is_up());
    wait("every buffer back", || pool.outstanding() == 0);
    // And the client reconnects to a new server with fresh buffers.
    let mut sc = Config::new(Role::Server, &path, 1);
    sc.queues = 2;
    let s = ctx.open(sc).unwrap();
    wait("link up again", || s.is_up() && c.is_up());
    let few: Vec<Vec<u8>> = (0..100).map(|i| frame(100, i as u8)).collect();
    exchange(&few, |f| send(&s, 0, f), |got| recv(&c, 0, got));
    drop(c);
    wait("every buffer back after removal", || {
        pool.outstanding() == 0
    });
}

#[test]
fn a_dry_pool_fills_what_it_can_and_refuses_the_rest() {
    let ctx = Context::new().unwrap();
    let path = sock("dry");
    // Fewer buffers than one rx ring: the server gets what there is.
    let pool = Pool::new(100);
    let (s, c) = open(&ctx, &path, &pool, 1);
    wait("rx ring partly filled", || pool.outstanding() == 100);
    // Nothing left to copy into: the client's sends are refused and counted.
    assert_eq!(c.tx_burst(0, &[&[1u8; 64]]), 0);
    let no_room = c
        .tx_stats(0)
        .unwrap()
        .tx_no_room
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(no_room, 1);
    // The server can fill the 100 buffers it has; the client takes them and hands them
    // back, so traffic goes on.
    let frames: Vec<Vec<u8>> = (0..500).map(|i| frame(64, i as u8)).collect();
    exchange(&frames, |f| send(&s, 0, f), |got| recv(&c, 0, got));
}

#[test]
fn zero_copy_is_for_clients_only() {
    let ctx = Context::new().unwrap();
    let mut sc = Config::new(Role::Server, sock("role"), 0);
    sc.zero_copy = Some(Pool::new(16));
    let e = ctx.open(sc).unwrap_err();
    assert!(e.to_string().contains("client role"), "{e}");
}
