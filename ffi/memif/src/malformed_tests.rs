//! A hand-driven client speaking the raw protocol to a server of this crate: each malformed
//! thing it sends is refused (DISCONNECT with a reason, a counter bumped), the process goes
//! on, and a correct client can connect afterwards.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use crate::msg::{self, AddRing, Init, Msg, Text};
use crate::ring::{self, Desc, Regions, COOKIE};
use crate::sys::{self, Mapping, Received};
use crate::{Config, Context, Interface, Role};

const LOG2: u8 = 4;
const BUF: u32 = 2048;

fn server(name: &str) -> (Context, Interface, PathBuf) {
    let ctx = Context::with_logger(|_| {}).unwrap();
    let path = std::env::temp_dir().join(format!("memif-bad-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let s = ctx.open(Config::new(Role::Server, &path, 0)).unwrap();
    (ctx, s, path)
}

fn recv(sock: &OwnedFd) -> Option<Msg> {
    let t = Instant::now();
    loop {
        match sys::recv_msg(sock).unwrap() {
            Received::Msg(b, _) => return Msg::parse(&b[..]).ok(),
            Received::Empty => {
                assert!(t.elapsed() < Duration::from_secs(5), "no answer");
                std::thread::sleep(Duration::from_millis(1));
            }
            _ => return None,
        }
    }
}

fn send(sock: &OwnedFd, m: Msg, fd: Option<&OwnedFd>) {
    sys::send_msg(sock, &m.emit(), fd.map(|f| f.as_raw_fd())).unwrap();
}

/// Connects and gets past INIT.
fn hello_init(path: &Path) -> OwnedFd {
    let sock = sys::connect(path).unwrap();
    assert!(matches!(recv(&sock), Some(Msg::Hello(_))));
    let init = Init {
        version: msg::VERSION,
        id: 0,
        mode: msg::MODE_ETHERNET,
        secret: Text::default(),
        name: Text::new("bad-peer"),
    };
    send(&sock, Msg::Init(init), None);
    assert_eq!(recv(&sock), Some(Msg::Ack));
    sock
}

/// A correct region: two rings (c2s at 0, s2c after it), then their buffers.
fn region() -> (OwnedFd, Mapping, u64) {
    let rb = ring::ring_bytes(LOG2) as u64;
    let size = 2 * rb + 2 * (1 << LOG2) * BUF as u64;
    let fd = sys::memfd("bad", size).unwrap();
    let map = Mapping::map(&fd, size as usize).unwrap();
    (fd, map, size)
}

fn ring_msg(c2s: bool, offset: u32, log2: u8, index: u16) -> Msg {
    Msg::AddRing(AddRing {
        flags: if c2s { msg::ADD_RING_FLAG_C2S } else { 0 },
        index,
        region: 0,
        offset,
        log2_ring_size: log2,
        private_hdr_size: 0,
    })
}

fn expect_refused(sock: &OwnedFd, s: &Interface, what: &str) {
    match recv(sock) {
        Some(Msg::Disconnect { reason, .. }) => {
            assert!(
                reason.as_str().contains(what),
                "{:?} lacks {what:?}",
                reason.as_str()
            )
        }
        other => panic!("expected DISCONNECT ({what}), got {other:?}"),
    }
    assert!(!s.is_up());
    assert!(s.last_error().contains(what), "{}", s.last_error());
}

#[test]
fn bad_regions_are_refused() {
    let (_ctx, s, path) = server("region");
    let (fd, _map, size) = region();
    let cases: [(u64, &str); 3] = [
        (0, "size 0"),
        (size + 4096, "its file holds"),
        (1 << 40, "size 1099511627776"),
    ];
    for (declared, what) in cases {
        let sock = hello_init(&path);
        send(
            &sock,
            Msg::AddRegion {
                index: 0,
                size: declared,
            },
            Some(&fd),
        );
        expect_refused(&sock, &s, what);
    }
    // A memfd that can still shrink (not sealed).
    let sock = hello_init(&path);
    let raw = {
        let name = std::ffi::CString::new("unsealed").unwrap();
        // SAFETY: memfd_create with a NUL-terminated name; checked below.
        let r = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        assert!(r >= 0);
        // SAFETY: r is a fresh descriptor.
        let fd: OwnedFd = unsafe { std::os::fd::FromRawFd::from_raw_fd(r) };
        // SAFETY: ftruncate on our own descriptor.
        assert_eq!(unsafe { libc::ftruncate(fd.as_raw_fd(), 65536) }, 0);
        fd
    };
    send(
        &sock,
        Msg::AddRegion {
            index: 0,
            size: 65536,
        },
        Some(&raw),
    );
    expect_refused(&sock, &s, "not sealed");
    // No descriptor at all, and an index out of order.
    let sock = hello_init(&path);
    send(&sock, Msg::AddRegion { index: 0, size }, None);
    expect_refused(&sock, &s, "without a descriptor");
    let sock = hello_init(&path);
    send(&sock, Msg::AddRegion { index: 3, size }, Some(&fd));
    expect_refused(&sock, &s, "out of order");
    assert_eq!(s.errors().bad_region.load(Relaxed), 6);
}

#[test]
fn bad_rings_are_refused() {
    let (_ctx, s, path) = server("ring");
    let (fd, map, size) = region();
    let efd = sys::eventfd().unwrap();
    let with_region = || {
        let sock = hello_init(&path);
        send(&sock, Msg::AddRegion { index: 0, size }, Some(&fd));
        assert_eq!(recv(&sock), Some(Msg::Ack));
        sock
    };
    let sock = with_region();
    send(&sock, ring_msg(true, size as u32 - 64, LOG2, 0), Some(&efd));
    expect_refused(&sock, &s, "outside region");
    let sock = with_region();
    send(&sock, ring_msg(true, 0, 20, 0), Some(&efd));
    expect_refused(&sock, &s, "log2 size 20");
    let sock = with_region();
    send(&sock, ring_msg(true, 0, LOG2, 7), Some(&efd));
    expect_refused(&sock, &s, "beyond the 1 queues");
    let sock = with_region();
    send(&sock, ring_msg(true, 8, LOG2, 0), Some(&efd));
    expect_refused(&sock, &s, "unaligned");
    // A ring whose cookie is wrong, found at CONNECT.
    let sock = with_region();
    send(&sock, ring_msg(true, 0, LOG2, 0), Some(&efd));
    assert_eq!(recv(&sock), Some(Msg::Ack));
    send(
        &sock,
        ring_msg(false, ring::ring_bytes(LOG2) as u32, LOG2, 0),
        Some(&efd),
    );
    assert_eq!(recv(&sock), Some(Msg::Ack));
    send(
        &sock,
        Msg::Connect {
            if_name: Text::new("x"),
        },
        None,
    );
    expect_refused(&sock, &s, "cookie");
    let _ = map;
    assert_eq!(s.errors().bad_ring.load(Relaxed), 2);
    assert_eq!(s.errors().bad_log2.load(Relaxed), 1);
    assert_eq!(s.errors().too_many.load(Relaxed), 1);
    assert_eq!(s.errors().bad_cookie.load(Relaxed), 1);
    // A message of the wrong length.
    let sock = sys::connect(&path).unwrap();
    assert!(matches!(recv(&sock), Some(Msg::Hello(_))));
    // SAFETY: send(2) of 10 bytes from a live buffer.
    unsafe {
        libc::send(
            sock.as_raw_fd(),
            [3u8; 10].as_ptr() as *const libc::c_void,
            10,
            0,
        )
    };
    match recv(&sock) {
        Some(Msg::Disconnect { reason, .. }) => assert!(reason.as_str().contains("10 bytes")),
        other => panic!("{other:?}"),
    }
}

/// A connected fake client: the server's rx ring is `c2s`, its tx ring `s2c`.
struct Fake {
    _sock: OwnedFd,
    regions: Regions,
    _efds: [OwnedFd; 2],
}

fn connect_fake(path: &Path) -> Fake {
    let sock = hello_init(path);
    let (fd, map, size) = region();
    let regions = Regions::new(vec![map]);
    let rb = ring::ring_bytes(LOG2) as u32;
    for off in [0, rb] {
        let r = regions.ring(0, off, LOG2).unwrap();
        r.set_cookie(COOKIE);
    }
    send(&sock, Msg::AddRegion { index: 0, size }, Some(&fd));
    assert_eq!(recv(&sock), Some(Msg::Ack));
    let efds = [sys::eventfd().unwrap(), sys::eventfd().unwrap()];
    send(&sock, ring_msg(true, 0, LOG2, 0), Some(&efds[0]));
    assert_eq!(recv(&sock), Some(Msg::Ack));
    send(&sock, ring_msg(false, rb, LOG2, 0), Some(&efds[1]));
    assert_eq!(recv(&sock), Some(Msg::Ack));
    send(
        &sock,
        Msg::Connect {
            if_name: Text::new("fake"),
        },
        None,
    );
    assert!(matches!(recv(&sock), Some(Msg::Connected { .. })));
    Fake {
        _sock: sock,
        regions,
        _efds: efds,
    }
}

#[test]
fn bad_descriptors_are_dropped_and_counted() {
    let (_ctx, s, path) = server("desc");
    let fake = connect_fake(&path);
    let t = Instant::now();
    while !s.is_up() {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    let c2s = fake.regions.ring(0, 0, LOG2).unwrap();
    let buf0 = 2 * ring::ring_bytes(LOG2) as u32;
    let descs = [
        Desc {
            flags: 0,
            region: 0,
            length: 60,
            offset: buf0,
        },
        Desc {
            flags: 0,
            region: 0,
            length: 60,
            offset: u32::MAX - 10,
        },
        Desc {
            flags: 0,
            region: 5,
            length: 60,
            offset: buf0,
        },
        Desc {
            flags: 0,
            region: 0,
            length: u32::MAX,
            offset: buf0,
        },
        Desc {
            flags: 0,
            region: 0,
            length: 64,
            offset: buf0 + BUF,
        },
    ];
    for (i, d) in descs.iter().enumerate() {
        c2s.set_desc(i as u16, *d);
    }
    c2s.set_head(descs.len() as u16);
    let mut got = Vec::new();
    let n = s.rx_burst(0, 32, |f| got.push(f.len()));
    assert_eq!((n, got), (2, vec![60, 64]));
    assert_eq!(s.rx_stats(0).unwrap().bad_desc.load(Relaxed), 3);
    assert_eq!(c2s.tail(), 5, "the bad slots are consumed too");
    // Head moved by more than the ring size: the link goes down.
    c2s.set_head(5 + (1 << LOG2) + 1);
    assert_eq!(s.rx_burst(0, 32, |_| {}), 0);
    assert_eq!(s.rx_stats(0).unwrap().ring_broken.load(Relaxed), 1);
    let t = Instant::now();
    while s.is_up() {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(s.last_error().contains("ring broken"));
    // Server tx into a buffer the client placed outside the region: refused, not written.
    let fake = connect_fake(&path);
    let t = Instant::now();
    while !s.is_up() {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1));
    }
    let s2c = fake
        .regions
        .ring(0, ring::ring_bytes(LOG2) as u32, LOG2)
        .unwrap();
    s2c.set_desc(
        0,
        Desc {
            flags: 0,
            region: 0,
            length: 2048,
            offset: u32::MAX - 100,
        },
    );
    s2c.set_head(1);
    assert_eq!(s.tx_burst(0, &[&[0u8; 64]]), 0);
    assert_eq!(s.tx_stats(0).unwrap().bad_desc.load(Relaxed), 1);
}

#[test]
fn a_stalled_handshake_frees_the_id() {
    let (ctx, s, path) = server("stall");
    // INIT, then nothing: the id is taken until the handshake times out.
    let stalled = hello_init(&path);
    let mut cc = Config::new(Role::Client, &path, 0);
    cc.retry = Duration::from_millis(100);
    let c = ctx.open(cc).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!c.is_up(), "the id is held by the stalled peer");
    let t = Instant::now();
    while !c.is_up() {
        assert!(t.elapsed() < crate::ctl::HANDSHAKE_TIMEOUT + Duration::from_secs(3));
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(s.errors().timeout.load(Relaxed), 1);
    match recv(&stalled) {
        Some(Msg::Disconnect { reason, .. }) => assert!(reason.as_str().contains("handshake")),
        other => panic!("{other:?}"),
    }
}

#[path = "../tests/common/slot_pool.rs"]
mod slot_pool;
use crate::{ZcBuf, ZcBuffers, ZcMemory};
use slot_pool::SlotPool as TestBufs;

#[path = "../tests/common/wait.rs"]
mod wait;
use wait::wait as wait_for;

/// A fake server's side of a connection with a zero-copy client: the socket, the
/// client's regions (0: rings, 1: its buffers) and its client-to-server and
/// server-to-client rings.
struct FakeServer {
    _sock: OwnedFd,
    regions: Regions,
    c2s: ring::Ring,
    s2c: ring::Ring,
}

/// Accepts the client's next connection on `listener` and runs the handshake by hand.
fn fake_server(listener: &OwnedFd) -> FakeServer {
    let mut sock = None;
    wait_for("the client's connection", || {
        sock = sys::accept(listener).unwrap();
        sock.is_some()
    });
    let sock = sock.unwrap();
    send(
        &sock,
        Msg::Hello(msg::Hello {
            name: Text::new("liar"),
            min_version: msg::VERSION,
            max_version: msg::VERSION,
            max_region: 3,
            max_s2c_ring: 0,
            max_c2s_ring: 0,
            max_log2_ring_size: LOG2,
        }),
        None,
    );
    // INIT, two regions (rings; the client's buffers), two rings, CONNECT.
    let mut maps = Vec::new();
    let mut rings = Vec::new();
    loop {
        let (b, mut fds) = loop {
            match sys::recv_msg(&sock).unwrap() {
                Received::Msg(b, fds) => break (b, fds),
                Received::Empty => std::thread::sleep(Duration::from_millis(1)),
                _ => panic!("the client went away during the handshake"),
            }
        };
        match Msg::parse(&b[..]).unwrap() {
            Msg::Init(_) => send(&sock, Msg::Ack, None),
            Msg::AddRegion { size, .. } => {
                maps.push(Mapping::map(&fds.pop().unwrap(), size as usize).unwrap());
                send(&sock, Msg::Ack, None);
            }
            Msg::AddRing(r) => {
                rings.push((r.is_c2s(), r.offset));
                send(&sock, Msg::Ack, None);
            }
            Msg::Connect { .. } => {
                let if_name = Text::new("liar");
                send(&sock, Msg::Connected { if_name }, None);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(maps.len(), 2, "rings and the client's buffers");
    let regions = Regions::new(maps);
    let ring_at = |c2s: bool| {
        let off = rings.iter().find(|r| r.0 == c2s).unwrap().1;
        regions.ring(0, off, LOG2).unwrap()
    };
    let (c2s, s2c) = (ring_at(true), ring_at(false));
    FakeServer {
        _sock: sock,
        regions,
        c2s,
        s2c,
    }
}

/// A zero-copy client of this crate (64 buffers) connected to a fake server on socket
/// `name`, up, its rx ring handed over: the listener (for the next connection), the
/// context, the buffers, the client and the server's side.
fn zc_client_and_fake(
    name: &str,
) -> (
    OwnedFd,
    Context,
    std::sync::Arc<TestBufs>,
    Interface,
    FakeServer,
) {
    let path = std::env::temp_dir().join(format!("memif-bad-{}-{name}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let listener = sys::listen(&path, 0o600).unwrap();
    let ctx = Context::with_logger(|_| {}).unwrap();
    let bufs = TestBufs::new(64);
    let mut cfg = Config::new(Role::Client, &path, 0);
    cfg.zero_copy = Some(bufs.clone());
    cfg.retry = Duration::from_millis(10);
    let c = ctx.open(cfg).unwrap();
    let f = fake_server(&listener);
    wait_for("link up", || c.is_up());
    // The client handed the server a ring of its buffers (region 1) to fill.
    wait_for("the rx ring filled", || f.s2c.head() == 1 << LOG2);
    (listener, ctx, bufs, c, f)
}

/// A hand-driven server against a zero-copy client of this crate: a frame longer than the
/// buffer it was given is dropped (bad_desc) and its buffer comes back, good frames
/// around it arrive; a tail that runs past what the client handed over breaks the ring and
/// drops the link; on the next connection a tx tail run past what was lent does too; every
/// buffer is back at the end, none twice.
#[test]
fn a_zero_copy_client_survives_a_lying_server() {
    let (listener, _ctx, bufs, c, f) = zc_client_and_fake("zc");
    assert_eq!(bufs.outstanding(), 1 << LOG2);
    // Slot 0: longer than its buffer. Slot 1: a good 100-byte frame.
    let d0 = f.s2c.desc(0);
    assert_eq!((d0.region, d0.length), (1, BUF));
    f.s2c.set_desc(
        0,
        Desc {
            length: BUF + 1,
            ..d0
        },
    );
    let d1 = f.s2c.desc(1);
    let p = f.regions.bytes(1, d1.offset, 100).unwrap();
    // SAFETY: p..p+100 lies in the mapped region 1 (checked by Regions::bytes).
    unsafe { std::ptr::write_bytes(p, 0x5a, 100) };
    f.s2c.set_desc(1, Desc { length: 100, ..d1 });
    f.s2c.set_tail(2);
    let mut got = Vec::new();
    let n = c.rx_burst(0, 32, |fr| got.push(fr.to_vec()));
    assert_eq!((n, got), (1, vec![vec![0x5a; 100]]));
    assert_eq!(c.rx_stats(0).unwrap().bad_desc.load(Relaxed), 1);
    assert_eq!(
        bufs.outstanding(),
        1 << LOG2,
        "both buffers back, the ring refilled"
    );
    // Rx: a tail beyond what the client handed over.
    f.s2c.set_tail(2 + (1 << LOG2) + 1);
    assert_eq!(
        c.rx_burst(0, 32, |_| panic!("no frame from a broken ring")),
        0
    );
    assert_eq!(c.rx_stats(0).unwrap().ring_broken.load(Relaxed), 1);
    wait_for("link down", || !c.is_up());
    assert!(c.last_error().contains("ring broken"), "{}", c.last_error());
    wait_for("every buffer back", || bufs.outstanding() == 0);
    drop(f);
    // Tx, on the next connection: a frame lent, then a tail that claims more was read
    // than was lent.
    let f = fake_server(&listener);
    wait_for("link up again", || c.is_up());
    assert_eq!(c.tx_burst(0, &[&[1u8; 64]]), 1);
    wait_for("rx ring and the lent frame", || {
        bufs.outstanding() == (1 << LOG2) + 1
    });
    f.c2s.set_tail(2);
    assert!(
        c.tx_batch(0).is_none(),
        "a tail past what was lent breaks the ring"
    );
    assert_eq!(c.tx_stats(0).unwrap().ring_broken.load(Relaxed), 1);
    wait_for("link down again", || !c.is_up());
    wait_for("every buffer back again", || bufs.outstanding() == 0);
    drop(c);
}

mod zero_copy_props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Whatever a server writes into the descriptors it fills (flags, region, length,
        /// offset) and however far it moves the tail within what it was handed, a zero-copy
        /// client never panics, lends out only buffers of its own with at most their room,
        /// and gets every buffer back: the rest of the ring refilled, the lent ones freed
        /// once, none lost when the link goes.
        #[test]
        fn any_descriptors_from_the_server(
            descs in proptest::collection::vec((any::<u16>(), any::<u16>(), any::<u32>(), any::<u32>()), 16),
            filled in 0u16..=16,
        ) {
            let (_listener, _ctx, bufs, c, f) =
                zc_client_and_fake(&format!("zcprop-{}", rand_suffix()));
            for (i, (flags, region, length, offset)) in descs.iter().enumerate() {
                f.s2c.set_desc(i as u16, Desc { flags: *flags, region: *region, length: *length, offset: *offset });
            }
            f.s2c.set_tail(filled);
            let mut lent = Vec::new();
            let n = c.rx_burst_zc(0, 32, |segs| {
                for b in segs {
                    assert!(b.len <= BUF, "a buffer lent with {} bytes", b.len);
                    assert_eq!(b.offset, b.token as u32 * BUF, "not the buffer given");
                    lent.push(b.token);
                }
            });
            prop_assert!(n <= usize::from(filled));
            // Lent buffers are the caller's; the ring holds a full set again (unless the
            // server broke it: a full ring of one unfinished chain).
            if c.rx_stats(0).unwrap().ring_broken.load(Relaxed) == 0 {
                prop_assert_eq!(bufs.outstanding(), lent.len() + (1 << LOG2));
            }
            ZcBuffers::free(&*bufs, &lent);
            drop(c);
            drop(f);
            prop_assert_eq!(bufs.outstanding(), 0, "buffers lost");
        }
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    }
}
