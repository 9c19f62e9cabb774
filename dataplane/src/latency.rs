//! Per-worker latency histograms in TSC cycles, HDR-style (log-linear buckets: exact below
//! 64, then 32 buckets per power of two, so any recorded value is within 1/32 ≈ 3%).
//!
//! What is measured: for every rx burst, the cycles from the start of the poll that received
//! it to the return of its tx call, recorded once per packet of the burst. This is the
//! switch's own residence time (rx -> tx, including the polls of queues before it in the same
//! round); time spent in device queues before the poll is not included.
//!
//! Thread safety: written by its worker only (relaxed load + store, no locked instruction),
//! read by the control thread with relaxed loads.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::cell::bump;

const LINEAR: u64 = 64;
const SUB_BITS: u32 = 5; // 32 sub-buckets per power of two
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two above the linear range that are tracked (up to 2^46 cycles, hours).
const OCTAVES: usize = 40;
const BUCKETS: usize = LINEAR as usize + OCTAVES * SUB as usize;

/// Bucket index of a value.
#[inline(always)]
fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    // v >= 64: its top bit is at position >= 6.
    let top = 63 - v.leading_zeros();
    let shift = top - SUB_BITS; // >= 1
    let sub = (v >> shift) - SUB; // 0..32
    let octave = (shift - 1) as usize;
    (LINEAR as usize + octave * SUB as usize + sub as usize).min(BUCKETS - 1)
}

/// The largest value that falls in bucket `i`.
fn upper(i: usize) -> u64 {
    if i < LINEAR as usize {
        return i as u64;
    }
    let octave = ((i - LINEAR as usize) / SUB as usize) as u32;
    let sub = ((i - LINEAR as usize) % SUB as usize) as u64;
    let shift = octave + 1;
    (((SUB + sub) << shift) | ((1 << shift) - 1)).max(LINEAR)
}

/// A histogram one worker records into.
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl LatencyHistogram {
    /// Records `count` samples of `cycles`. Owner thread only.
    #[inline(always)]
    pub(crate) fn record(&self, cycles: u64, count: u64) {
        if let Some(b) = self.buckets.get(index(cycles)) {
            bump(b, count);
        }
    }

    /// A copy of the counts.
    pub fn snapshot(&self) -> LatencySnapshot {
        LatencySnapshot {
            counts: self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
        }
    }
}

/// Counts copied out of one or more histograms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencySnapshot {
    counts: Vec<u64>,
}

impl Default for LatencySnapshot {
    fn default() -> Self {
        LatencySnapshot {
            counts: vec![0; BUCKETS],
        }
    }
}

impl LatencySnapshot {
    /// Adds another snapshot's counts (e.g. across workers).
    pub fn merge(&mut self, other: &LatencySnapshot) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Number of samples.
    pub fn samples(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The value at quantile `q` (0..=1), in cycles, rounded up to its bucket's top; 0 if
    /// there are no samples.
    pub fn quantile(&self, q: f64) -> u64 {
        let total = self.samples();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper(i);
            }
        }
        upper(BUCKETS - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_tight() {
        let mut last = 0;
        for v in (0..100_000u64).chain([1 << 20, (1 << 30) + 12345, (1 << 45) + 7]) {
            let i = index(v);
            assert!(i >= last || v > 100_000, "index not monotonic at {v}");
            last = i;
            let top = upper(i);
            assert!(top >= v, "bucket top {top} below value {v}");
            // Within 1/32 of the value (exact below 64).
            assert!(top - v <= v / 32, "bucket of {v} too wide: top {top}");
        }
        // Beyond the range: the last bucket, never out of bounds.
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(index(63), 63);
        assert_eq!(index(64), 64);
        assert_eq!(upper(64), 65);
    }

    #[test]
    fn quantiles() {
        let h = LatencyHistogram::default();
        assert_eq!(h.snapshot().quantile(0.5), 0);
        for v in 1..=1000u64 {
            h.record(v, 1);
        }
        h.record(1_000_000, 10);
        let s = h.snapshot();
        assert_eq!(s.samples(), 1010);
        let p50 = s.quantile(0.5);
        assert!((490..=530).contains(&p50), "p50 {p50}");
        let p99 = s.quantile(0.99);
        assert!((970..=1100).contains(&p99), "p99 {p99}");
        let p999 = s.quantile(0.999);
        assert!((1_000_000..=1_031_250).contains(&p999), "p99.9 {p999}");
        let mut m = LatencySnapshot::default();
        m.merge(&s);
        m.merge(&s);
        assert_eq!(m.samples(), 2020);
        assert_eq!(m.quantile(0.5), p50);
    }
}
