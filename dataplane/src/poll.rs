//! Poll modes: `busy` spins (production, lowest latency); `adaptive` backs off into sleeps
//! after a run of empty polls (shared or CI cores), like OVS's pmd-sleep-max, and a sleep
//! ends as soon as one of the worker's queues has a frame, where the queue's backend says
//! so on a descriptor ([`Sleeper`]: af_packet rings, taps, memif rings in interrupt mode),
//! or the control plane gives the worker something to do ([`Doorbell`]).

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::time::Duration;

use crate::memif_port::RxArm;
use crate::plan::{MemifRef, Rx, RxQueue, VhostRef};
use crate::vhost_port::{VhostArm, VhostWake};

/// How a worker polls when its queues are empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PollMode {
    #[default]
    Busy,
    Adaptive,
}

impl std::str::FromStr for PollMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "busy" => Ok(PollMode::Busy),
            "adaptive" => Ok(PollMode::Adaptive),
            other => Err(format!("poll mode must be busy or adaptive, not {other:?}")),
        }
    }
}

/// Empty polls before an adaptive worker starts sleeping.
const IDLE_POLLS: u32 = 256;
/// The longest an adaptive worker sleeps between polls.
const MAX_SLEEP: Duration = Duration::from_micros(200);

/// Decides when an idle worker sleeps and for how long.
#[derive(Debug, Default)]
pub struct Backoff {
    empty_polls: u32,
    sleep: Duration,
}

impl Backoff {
    /// Records a poll that moved `packets`; returns how long to sleep before the next one.
    #[inline]
    pub fn after_poll(&mut self, mode: PollMode, packets: usize) -> Option<Duration> {
        if packets > 0 || mode == PollMode::Busy {
            self.empty_polls = 0;
            self.sleep = Duration::ZERO;
            return None;
        }
        self.empty_polls = self.empty_polls.saturating_add(1);
        if self.empty_polls < IDLE_POLLS {
            return None;
        }
        self.sleep = (self.sleep * 2).clamp(Duration::from_micros(1), MAX_SLEEP);
        Some(self.sleep)
    }
}

/// The longest an adaptive worker sleeps when every one of its queues can wake it (a
/// bound on what only a poll notices: a memif link that came up, a kick lost to a peer
/// that checks our ring's flag before its index store is visible).
pub const WAKEABLE_MAX_SLEEP: Duration = Duration::from_millis(10);

/// A worker's doorbell: an eventfd it waits on while it sleeps, rung by whoever hands it
/// work (the slow path injecting a packet, the engine publishing a plan or stopping).
/// Ringing costs one atomic load while the worker is awake; a write(2) only while it
/// sleeps.
#[derive(Debug)]
pub struct Doorbell {
    /// None if the eventfd could not be made: the worker then sleeps with time-outs only.
    fd: Option<OwnedFd>,
    sleeping: AtomicBool,
}

impl Default for Doorbell {
    fn default() -> Doorbell {
        // SAFETY: plain eventfd(2); the descriptor is checked, then owned.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        Doorbell {
            // SAFETY: fd is a fresh descriptor of ours.
            fd: (fd >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }),
            sleeping: AtomicBool::new(false),
        }
    }
}

impl Doorbell {
    /// Wakes the worker if it sleeps. Call it after the work is visible (pushed, stored):
    /// the fence orders that before the load of the worker's flag, and the worker sets its
    /// flag before it looks for work, so one of the two sees the other.
    pub fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            if let Some(fd) = &self.fd {
                let one: u64 = 1;
                // SAFETY: writes 8 bytes from a live u64 to our eventfd.
                let _ = unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
            }
        }
    }

    /// The worker is about to sleep (look for work after this): the descriptor to wait on.
    fn enter(&self) -> Option<RawFd> {
        let fd = self.fd.as_ref()?.as_raw_fd();
        self.sleeping.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        Some(fd)
    }

    /// The worker is awake again; resets the eventfd.
    fn leave(&self) {
        self.sleeping.store(false, Ordering::Relaxed);
        if let Some(fd) = &self.fd {
            let mut v: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from our non-blocking eventfd.
            let _ = unsafe { libc::read(fd.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
        }
    }
}

/// How a sleep ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slept {
    /// Not slept: a queue had frames waiting, or there was work.
    Skipped,
    /// The time-out passed.
    TimedOut,
    /// A descriptor woke the worker first.
    Woken,
}

/// How an idle adaptive worker sleeps: in ppoll(2) on the descriptors that say its queues
/// have frames and on its [`Doorbell`]. Native af_packet and tap ports give theirs as they
/// are; memif rx queues and vhost-user queue pairs are armed for the sleep (the peer kicks
/// an eventfd; masked again on waking, so a busy peer makes no system call per batch while
/// the worker polls). With a descriptor for every queue the time-out is
/// [`WAKEABLE_MAX_SLEEP`]; a queue without one (a DPDK ethdev queue, a vhost frontend with
/// no kick descriptor) keeps it at the backoff's. Allocates only while its lists grow to
/// the worker's queue count.
#[derive(Debug, Default)]
pub struct Sleeper {
    fds: Vec<libc::pollfd>,
    armed: Vec<(MemifRef, usize, memif::RxWake)>,
    /// Armed vhost-user pairs, with their descriptor's index in `fds`.
    vhost: Vec<(VhostRef, usize, VhostWake)>,
}

impl Sleeper {
    /// Sleeps worker `worker` (whose rx queues are `rx`) for up to `backoff`, or up to
    /// [`WAKEABLE_MAX_SLEEP`] when every queue can wake it; `work` says whether there is
    /// work for it after all (looked at once the doorbell is armed).
    pub fn sleep(
        &mut self,
        rx: &[RxQueue],
        worker: usize,
        bell: Option<&Doorbell>,
        backoff: Duration,
        work: impl FnOnce() -> bool,
    ) -> Slept {
        self.fds.clear();
        let mut every = true;
        let mut ready = false;
        for a in rx {
            match &a.rxq {
                Rx::Native(p) if p.rx_worker() == worker => push(&mut self.fds, p.rx_fd()),
                Rx::Native(_) => {}
                Rx::Memif(p, q) => match p.rx_arm(usize::from(*q)) {
                    RxArm::Armed(w) => {
                        push(&mut self.fds, w.fd());
                        self.armed.push((p.clone(), usize::from(*q), w));
                    }
                    RxArm::Down => {}
                    RxArm::Ready => {
                        ready = true;
                        break;
                    }
                },
                // SAFETY: this is worker `worker`, the pair's only poller (the plan gives
                // each rx queue to one worker).
                Rx::Vhost(p, pair) => match unsafe { p.rx_arm(worker, *pair) } {
                    VhostArm::Armed(w) => {
                        self.vhost.push((p.clone(), self.fds.len(), w));
                        let fd = self.vhost.last().map_or(-1, |v| v.2.fd());
                        push(&mut self.fds, fd);
                    }
                    VhostArm::Down => {}
                    VhostArm::Polled => every = false,
                    VhostArm::Ready => {
                        ready = true;
                        break;
                    }
                },
                Rx::Dpdk(_) => every = false,
            }
        }
        let slept = if ready {
            Slept::Skipped
        } else {
            let rung = bell.and_then(Doorbell::enter);
            match rung {
                Some(fd) => push(&mut self.fds, fd),
                None => every = false,
            }
            let slept = if work() {
                Slept::Skipped
            } else {
                let t = if every { WAKEABLE_MAX_SLEEP } else { backoff };
                let ts = libc::timespec {
                    tv_sec: t.as_secs() as libc::time_t,
                    tv_nsec: t.subsec_nanos() as libc::c_long,
                };
                // SAFETY: fds is a live array of len pollfds; ts a live timespec; no
                // signal mask.
                let r = unsafe {
                    libc::ppoll(
                        self.fds.as_mut_ptr(),
                        self.fds.len() as libc::nfds_t,
                        &ts,
                        std::ptr::null(),
                    )
                };
                if r > 0 {
                    Slept::Woken
                } else {
                    Slept::TimedOut
                }
            };
            if rung.is_some() {
                if let Some(b) = bell {
                    b.leave();
                }
            }
            slept
        };
        for (p, q, w) in self.armed.drain(..) {
            p.rx_disarm(q, &w);
        }
        for (p, i, w) in self.vhost.drain(..) {
            let woken = self
                .fds
                .get(i)
                .is_some_and(|f| f.revents & libc::POLLIN != 0);
            // SAFETY: as for rx_arm above.
            unsafe { p.rx_disarm(worker, &w, woken) };
        }
        slept
    }
}

fn push(fds: &mut Vec<libc::pollfd>, fd: RawFd) {
    fds.push(libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_never_sleeps() {
        let mut b = Backoff::default();
        assert!((0..10_000).all(|_| b.after_poll(PollMode::Busy, 0).is_none()));
    }

    #[test]
    fn adaptive_sleeps_after_idle_run_and_grows_to_a_cap() {
        let mut b = Backoff::default();
        for _ in 0..IDLE_POLLS - 1 {
            assert_eq!(b.after_poll(PollMode::Adaptive, 0), None);
        }
        let first = b.after_poll(PollMode::Adaptive, 0).unwrap();
        let second = b.after_poll(PollMode::Adaptive, 0).unwrap();
        assert!(second > first);
        let last = (0..64)
            .filter_map(|_| b.after_poll(PollMode::Adaptive, 0))
            .last()
            .unwrap();
        assert_eq!(last, MAX_SLEEP);
        // Traffic resets it at once.
        assert_eq!(b.after_poll(PollMode::Adaptive, 5), None);
        assert_eq!(b.after_poll(PollMode::Adaptive, 0), None);
    }

    #[test]
    fn parses_modes() {
        assert_eq!("busy".parse::<PollMode>(), Ok(PollMode::Busy));
        assert_eq!("adaptive".parse::<PollMode>(), Ok(PollMode::Adaptive));
        assert!("fast"
            .parse::<PollMode>()
            .unwrap_err()
            .contains("busy or adaptive"));
    }
}
