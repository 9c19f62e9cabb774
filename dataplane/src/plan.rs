//! The forwarding plan: what each worker polls and where each input's packets go.
//!
//! Thread safety: a plan is immutable once published; the control thread builds a new one
//! for every change and the engine swaps it in (arc-swap). Workers load it once per poll.

use dpdk::PortQueue;

use crate::counters::DropReason;

/// Where the packets received on one rx queue go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Out of this tx queue (the worker's own queue of the output port).
    Port(PortQueue),
    /// Dropped and counted under this reason.
    Drop(DropReason),
}

/// One rx queue a worker polls, and its stage's decision for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxAssignment {
    pub rxq: PortQueue,
    pub out: Output,
}

/// Everything one worker does in a poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerPlan {
    pub rx: Vec<RxAssignment>,
}

/// The whole dataplane's plan. `version` is set by the engine when it is published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardingPlan {
    pub version: u64,
    pub workers: Vec<WorkerPlan>,
}

/// Picks the worker for each of `queues` new rx queues: the least loaded first, given how
/// many queues each worker already polls (`load`, updated in place). Queues are never moved
/// once placed: two workers must never poll one queue, even for one poll.
pub fn place_queues(load: &mut [usize], queues: usize) -> Vec<usize> {
    (0..queues)
        .map(|_| {
            let (w, _) = load
                .iter()
                .enumerate()
                .min_by_key(|(i, n)| (**n, *i))
                .unwrap_or((0, &0));
            if let Some(n) = load.get_mut(w) {
                *n += 1;
            }
            w
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_on_least_loaded_worker_first() {
        let mut load = vec![2, 0, 1];
        assert_eq!(place_queues(&mut load, 4), vec![1, 1, 2, 0]);
        assert_eq!(load, vec![3, 2, 2]);
    }

    #[test]
    fn one_worker_takes_everything() {
        let mut load = vec![0];
        assert_eq!(place_queues(&mut load, 3), vec![0, 0, 0]);
    }

    #[test]
    fn no_workers_places_on_zero_without_panicking() {
        let mut load: Vec<usize> = vec![];
        assert_eq!(place_queues(&mut load, 2), vec![0, 0]);
    }
}
