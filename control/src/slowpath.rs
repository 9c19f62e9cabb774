//! The slow-path thread: takes the packets workers punt (see
//! [`vswitch_dataplane::slowpath`]), hands each to a [`PuntHandler`], which may inject
//! packets back for a worker to send.
//!
//! It polls the punt rings in bursts, keeps polling for a short while after the last packet
//! (a reply's latency is then a few microseconds), then sleeps, doubling the sleep up to
//! [`MAX_SLEEP`] while idle, so an idle switch costs about a thousand wake-ups a second and
//! no spinning core. Stopping wakes it at once.
//!
//! Thread safety: the thread is the [`SlowPath`]'s only control-side caller (`receive`,
//! `inject`); start one per `SlowPath`. Its handler runs on it alone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use vswitch_dataplane::slowpath::{Injected, Punted, SlowPath};

/// Punted packets taken per poll.
const BURST: usize = 64;
/// Empty polls after traffic before the thread starts sleeping.
const IDLE_POLLS: u32 = 512;
/// The first sleep of an idle run; each next one doubles, up to [`MAX_SLEEP`].
const MIN_SLEEP: Duration = Duration::from_micros(8);
/// The longest the thread sleeps between polls (a first punt after idling waits this long).
pub const MAX_SLEEP: Duration = Duration::from_millis(1);

/// What the slow path does with a punted packet.
pub trait PuntHandler: Send + 'static {
    /// Handles `p`, punted by worker `worker`: consumes it, or builds packets from it and
    /// injects them through `sp` (a packet `inject` refuses is counted there, and freed when
    /// the handler drops it).
    fn handle(&mut self, sp: &SlowPath, worker: usize, p: Punted);

    /// Called after every poll of the rings, packets or not (timers: retries, expiry).
    fn tick(&mut self, _sp: &SlowPath) {}
}

/// Sends every punted packet back out of the interface it came in on, through the worker
/// that punted it (tests and bring-up).
#[derive(Debug, Default, Clone, Copy)]
pub struct Reflect;

impl PuntHandler for Reflect {
    fn handle(&mut self, sp: &SlowPath, worker: usize, p: Punted) {
        // A full inject ring is counted by inject (inject_full); the packet is dropped here.
        let _ = sp.inject(
            worker,
            Injected {
                mbuf: p.mbuf,
                iface: p.iface,
                as_received: false,
            },
        );
    }
}

/// Frees every punted packet (counted as received by the slow path): what the daemon does
/// with punts no handler claims.
#[derive(Debug, Default, Clone, Copy)]
pub struct Discard;

impl PuntHandler for Discard {
    fn handle(&mut self, _sp: &SlowPath, _worker: usize, p: Punted) {
        drop(p);
    }
}

/// The running slow-path thread; stopped (and joined) by [`SlowPathThread::stop`] or drop.
#[derive(Debug)]
pub struct SlowPathThread {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SlowPathThread {
    /// Starts the thread polling `sp`'s punt rings and handing packets to `handler`.
    pub fn start<H: PuntHandler>(sp: Arc<SlowPath>, mut handler: H) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("vs-slowpath".into())
            .spawn(move || {
                let mut idle = Idle::default();
                while !flag.load(Ordering::Acquire) {
                    let n = sp.receive(BURST, |w, p| handler.handle(&sp, w, p));
                    handler.tick(&sp);
                    match idle.after_poll(n) {
                        Some(d) => std::thread::park_timeout(d),
                        None => std::hint::spin_loop(),
                    }
                }
            })?;
        Ok(SlowPathThread {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread and waits for it. Packets still in the rings stay there (and are
    /// freed with the [`SlowPath`]).
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        let Some(t) = self.thread.take() else { return };
        self.stop.store(true, Ordering::Release);
        t.thread().unpark();
        if t.join().is_err() {
            tracing::error!("the slow-path thread panicked");
        }
    }
}

impl Drop for SlowPathThread {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// When an idle slow-path thread sleeps and for how long.
#[derive(Debug, Default)]
struct Idle {
    empty_polls: u32,
    sleep: Duration,
}

impl Idle {
    /// Records a poll that took `packets`; returns how long to sleep before the next one.
    fn after_poll(&mut self, packets: usize) -> Option<Duration> {
        if packets > 0 {
            self.empty_polls = 0;
            self.sleep = Duration::ZERO;
            return None;
        }
        if self.empty_polls < IDLE_POLLS {
            self.empty_polls += 1;
            return None;
        }
        self.sleep = (self.sleep * 2).clamp(MIN_SLEEP, MAX_SLEEP);
        Some(self.sleep)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use dpdk::{Mbuf, Mempool};
    use vswitch_dataplane::slowpath::PuntReason;

    use super::*;

    /// The test process's shared EAL's pool, or None when the test is to be skipped.
    fn pool(name: &str, n: u32) -> Option<Arc<Mempool>> {
        dpdk::test_eal::try_pool(name, n)
    }

    fn punted(pool: &Mempool, seq: u32, iface: u16) -> Punted {
        let mut b = [0u8; 60];
        b[..4].copy_from_slice(&seq.to_le_bytes());
        Punted {
            mbuf: Mbuf::from_bytes(pool, &b).unwrap(),
            iface,
            reason: PuntReason::Test,
        }
    }

    fn seq(m: &Mbuf) -> u32 {
        u32::from_le_bytes(m.data()[..4].try_into().unwrap())
    }

    /// Waits (up to 10 s) until `done` holds.
    fn wait_for(mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    #[test]
    fn idle_spins_then_sleeps_longer_up_to_a_cap() {
        let mut i = Idle::default();
        assert!((0..IDLE_POLLS).all(|_| i.after_poll(0).is_none()));
        assert_eq!(i.after_poll(0), Some(MIN_SLEEP));
        assert_eq!(i.after_poll(0), Some(MIN_SLEEP * 2));
        let last = (0..32).filter_map(|_| i.after_poll(0)).last();
        assert_eq!(last, Some(MAX_SLEEP));
        // Traffic makes it busy again at once.
        assert_eq!(i.after_poll(3), None);
        assert_eq!(i.after_poll(0), None);
    }

    /// Two fake workers punt while draining their inject rings: each gets back exactly
    /// what it punted, in order, on the interface it came in on.
    #[test]
    fn reflect_returns_every_packet_to_its_worker_and_interface() {
        const N: u32 = 5_000;
        let Some(pool) = pool("ct_reflect", 1024) else {
            return;
        };
        let base = pool.in_use();
        // At most IN_FLIGHT packets out per worker, and an inject ring that holds them all:
        // no ring refuses one (a refusal is the other test's case), so none is lost.
        const IN_FLIGHT: u32 = 256;
        let sp = Arc::new(SlowPath::new(2, 64, IN_FLIGHT as usize));
        let thread = SlowPathThread::start(sp.clone(), Reflect).unwrap();
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (sp, pool) = (sp.clone(), pool.clone());
                std::thread::spawn(move || {
                    let iface = 10 + w as u16;
                    let (mut sent, mut back) = (0, 0);
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while back < N {
                        assert!(Instant::now() < deadline, "worker {w} timed out");
                        if sent < N && sent - back < IN_FLIGHT {
                            match sp.punt(w, punted(&pool, sent, iface)) {
                                Ok(()) => sent += 1,
                                Err(p) => drop(p),
                            }
                        }
                        sp.drain_injected(w, 32, |i| {
                            assert_eq!((i.iface, seq(&i.mbuf)), (iface, back));
                            back += 1;
                        });
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        thread.stop();
        let t = sp.stats().total();
        assert_eq!(
            (t.punted_total(), t.received, t.injected, t.drained),
            (2 * N as u64, 2 * N as u64, 2 * N as u64, 2 * N as u64)
        );
        assert_eq!((t.inject_full, t.punt_depth, t.inject_depth), (0, 0, 0));
        assert_eq!(pool.in_use(), base);
    }

    /// With an inject ring of 2 and a worker not draining, 8 of 10 reflected packets are
    /// refused, counted and freed.
    #[test]
    fn a_full_inject_ring_is_counted_and_leaks_nothing() {
        let Some(pool) = pool("ct_full", 64) else {
            return;
        };
        let base = pool.in_use();
        let sp = Arc::new(SlowPath::new(1, 16, 2));
        for s in 0..10 {
            sp.punt(0, punted(&pool, s, 3)).unwrap();
        }
        let thread = SlowPathThread::start(sp.clone(), Reflect).unwrap();
        // (received counts a packet before the handler has it: wait for the handler's work.)
        wait_for(|| {
            let t = sp.stats().total();
            t.injected + t.inject_full == 10
        });
        let t = sp.stats().total();
        assert_eq!(t.received, 10);
        assert_eq!((t.injected, t.inject_full, t.inject_depth), (2, 8, 2));
        assert_eq!(pool.in_use(), base + 2);
        let mut got = Vec::new();
        sp.drain_injected(0, 10, |i| got.push((i.iface, seq(&i.mbuf))));
        assert_eq!(got, [(3, 0), (3, 1)]);
        assert_eq!(pool.in_use(), base);
        drop(thread);
    }

    /// An idle thread (sleeping) stops promptly, and a punt after idling is still handled.
    #[test]
    fn an_idle_thread_wakes_for_traffic_and_stops_promptly() {
        let Some(pool) = pool("ct_idle", 64) else {
            return;
        };
        let sp = Arc::new(SlowPath::new(1, 4, 4));
        let thread = SlowPathThread::start(sp.clone(), Reflect).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        sp.punt(0, punted(&pool, 42, 1)).unwrap();
        wait_for(|| sp.stats().total().injected == 1);
        let t0 = Instant::now();
        thread.stop();
        assert!(
            t0.elapsed() < Duration::from_millis(500),
            "{:?}",
            t0.elapsed()
        );
        let mut got = Vec::new();
        sp.drain_injected(0, 4, |i| got.push(seq(&i.mbuf)));
        assert_eq!(got, [42]);
    }
}
