//! A memif peer made of this crate only (no DPDK), for interop tests.
//!
//! ```text
//! memif_peer server|client SOCKET ID QUEUES echo|count|send N [--size BYTES] [--pps N]
//!            [--secret S] [--for SECONDS]
//! ```
//! - `echo`: every frame received on a queue is sent back on that queue.
//! - `count`: frames received are counted.
//! - `send N`: N frames (0: without end) of `--size` bytes (default 64) are sent, spread
//!   over the queues at `--pps` frames per second (default 20000); frames received are
//!   counted.
//!
//! Twice a second it prints a status line on stdout:
//! `status up=1 links=1 rx=N tx=N tx_no_room=N bad_desc=N too_long=N ring_broken=N
//! refused=N last_error="..."`; the control thread's log goes to stderr. It runs until
//! killed (or `--for` seconds).

use std::io::Write;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use memif::{Config, Context, Interface, Role};

fn usage() -> ! {
    eprintln!(
        "usage: memif_peer server|client SOCKET ID QUEUES echo|count|send N \
         [--size BYTES] [--pps N] [--secret S] [--for SECONDS]"
    );
    std::process::exit(2)
}

enum Mode {
    Echo,
    Count,
    Send(u64),
}

fn num<T: std::str::FromStr>(s: Option<&String>) -> T {
    s.and_then(|s| s.parse().ok()).unwrap_or_else(|| usage())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        usage();
    }
    let role = match args[0].as_str() {
        "server" => Role::Server,
        "client" => Role::Client,
        _ => usage(),
    };
    let mut cfg = Config::new(role, &args[1], num(args.get(2)));
    cfg.queues = num(args.get(3));
    cfg.if_name = format!("memif_peer{}", cfg.id);
    cfg.app_name = "memif_peer".into();
    let (mode, mut rest) = match args[4].as_str() {
        "echo" => (Mode::Echo, 5),
        "count" => (Mode::Count, 5),
        "send" => (Mode::Send(num(args.get(5))), 6),
        _ => usage(),
    };
    let (mut size, mut pps, mut run_for) = (64usize, 20000u64, None);
    while rest < args.len() {
        let v = args.get(rest + 1);
        match args[rest].as_str() {
            "--size" => size = num(v),
            "--pps" => pps = num(v),
            "--secret" => cfg.secret = Some(v.cloned().unwrap_or_else(|| usage())),
            "--for" => run_for = Some(Duration::from_secs(num(v))),
            _ => usage(),
        }
        rest += 2;
    }
    let ctx = Context::new().unwrap_or_else(|e| {
        eprintln!("memif_peer: {e}");
        std::process::exit(1)
    });
    let iface = ctx.open(cfg).unwrap_or_else(|e| {
        eprintln!("memif_peer: {e}");
        std::process::exit(1)
    });
    run(&iface, mode, size.max(14), pps.max(1), run_for);
}

fn run(iface: &Interface, mode: Mode, size: usize, pps: u64, run_for: Option<Duration>) {
    let queues = iface.queues();
    let mut frame = vec![0u8; size];
    frame[0..6].copy_from_slice(&[0xff; 6]);
    frame[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x01]);
    frame[12..14].copy_from_slice(&[0x88, 0xb5]);
    let start = Instant::now();
    let (mut sent, mut next_status) = (0u64, Instant::now());
    let mut echo: Vec<Vec<u8>> = Vec::new();
    let mut send_start = None;
    loop {
        let mut busy = false;
        for q in 0..queues {
            match mode {
                Mode::Echo => {
                    echo.clear();
                    iface.rx_burst(q, 32, |f| echo.push(f.to_vec()));
                    if !echo.is_empty() {
                        busy = true;
                        if let Some(mut b) = iface.tx_batch(q) {
                            for f in &echo {
                                if !b.push([f.as_slice()]) {
                                    break;
                                }
                            }
                        }
                    }
                }
                Mode::Count | Mode::Send(_) => {
                    busy |= iface.rx_burst(q, 32, |_| {}) > 0;
                }
            }
        }
        if let Mode::Send(n) = mode {
            if iface.is_up() {
                let t0 = *send_start.get_or_insert_with(Instant::now);
                let due = (t0.elapsed().as_micros() as u64 * pps / 1_000_000).min(if n == 0 {
                    u64::MAX
                } else {
                    n
                });
                if sent < due {
                    let q = (sent % queues as u64) as usize;
                    let k = (due - sent).min(32) as usize;
                    let frames = vec![frame.as_slice(); k];
                    // A frame the ring had no room for is not retried (the status line
                    // counts it as tx_no_room): the rate stays what was asked.
                    iface.tx_burst(q, &frames);
                    sent += k as u64;
                    busy = true;
                }
            } else {
                send_start = None;
            }
        }
        if Instant::now() >= next_status {
            status(iface);
            next_status += Duration::from_millis(500);
            if run_for.is_some_and(|d| start.elapsed() >= d) {
                return;
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

fn status(iface: &Interface) {
    let (mut rx, mut tx, mut no_room, mut bad, mut long, mut broken) = (0, 0, 0, 0, 0, 0);
    for q in 0..iface.queues() {
        for s in [iface.rx_stats(q), iface.tx_stats(q)].into_iter().flatten() {
            rx += s.rx_frames.load(Relaxed);
            tx += s.tx_frames.load(Relaxed);
            no_room += s.tx_no_room.load(Relaxed);
            bad += s.bad_desc.load(Relaxed);
            long += s.too_long.load(Relaxed);
            broken += s.ring_broken.load(Relaxed);
        }
    }
    let refused: u64 = iface
        .errors()
        .all()
        .iter()
        .filter(|(n, _)| !matches!(*n, "peer_disconnects" | "socket_closed"))
        .map(|(_, v)| v)
        .sum();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "status up={} links={} rx={rx} tx={tx} tx_no_room={no_room} bad_desc={bad} too_long={long} \
         ring_broken={broken} refused={refused} last_error={:?}",
        iface.is_up() as u8,
        iface.link_events(),
        iface.last_error()
    );
    let _ = out.flush();
}
