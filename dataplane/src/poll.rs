//! Poll modes: `busy` spins (production, lowest latency); `adaptive` backs off into short
//! sleeps after a run of empty polls (shared or CI cores), like OVS's pmd-sleep-max.

use std::time::Duration;

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
