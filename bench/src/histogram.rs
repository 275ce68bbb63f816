//! A log-bucketed latency histogram (the HdrHistogram layout, written out because the crate is
//! not in the workspace's lock file).
//!
//! Values are nanoseconds. Values below `2^SUB_BITS` get a bucket each; above that every power
//! of two is split into `2^(SUB_BITS-1)` equal buckets, so a reported percentile is never more
//! than 1/128 (0.8%) above the true value. Recording is an index computation and an increment;
//! the whole histogram is about 60 KiB whatever the number of samples.

use std::time::Duration;

const SUB_BITS: u32 = 8;
const HALF: u64 = 1 << (SUB_BITS - 1);
/// Enough buckets for every `u64`.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 2) << (SUB_BITS - 1);

#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("min", &self.min)
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The bucket a value falls in.
fn index(value: u64) -> usize {
    let msb = 63 - (value | 1).leading_zeros();
    let shift = (msb + 1).saturating_sub(SUB_BITS);
    ((u64::from(shift) * HALF) + (value >> shift)) as usize
}

/// The largest value that falls in bucket `index` (what a percentile reports).
fn highest_in(index: usize) -> u64 {
    let index = index as u64;
    if index < 2 * HALF {
        return index;
    }
    let shift = index / HALF - 1;
    let top = index - shift * HALF;
    // `top` is in HALF..2*HALF; the bucket covers [top << shift, (top + 1) << shift).
    (top << shift) + ((1 << shift) - 1)
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }

    pub fn record(&mut self, nanos: u64) {
        self.counts[index(nanos)] += 1;
        self.total += 1;
        self.sum += u128::from(nanos);
        self.min = self.min.min(nanos);
        self.max = self.max.max(nanos);
    }

    pub fn record_duration(&mut self, elapsed: Duration) {
        self.record(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at `quantile` (0.0..=1.0): the smallest recorded bucket that holds at least
    /// `ceil(quantile * count)` samples at or below it, reported as that bucket's highest value
    /// and never above the largest value recorded. 0 when empty.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return highest_in(i).min(self.max).max(self.min);
            }
        }
        self.max
    }

    /// [`Self::quantile`] in microseconds, for reports.
    pub fn quantile_us(&self, quantile: f64) -> f64 {
        self.quantile(quantile) as f64 / 1_000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_bounded() {
        // Every bucket's highest value maps back to it, and the next value starts the next one.
        for i in 0..BUCKETS - 1 {
            let high = highest_in(i);
            assert_eq!(index(high), i, "bucket {i}");
            assert_eq!(index(high + 1), i + 1, "bucket {i} + 1");
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn relative_error_is_below_one_percent() {
        let mut value = 1u64;
        while value < u64::MAX / 3 {
            let high = highest_in(index(value));
            assert!(high >= value);
            assert!(
                (high - value) as f64 <= value as f64 / HALF as f64,
                "{value} -> {high}"
            );
            value = value * 3 / 2 + 1;
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.9), 90);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn percentiles_of_large_values_are_within_precision() {
        // 1..=10_000 µs in ns: p50 = 5000 µs, p99 = 9900 µs.
        let mut h = Histogram::new();
        for us in 1..=10_000u64 {
            h.record(us * 1_000);
        }
        for (q, want) in [(0.5, 5_000_000u64), (0.9, 9_000_000), (0.99, 9_900_000)] {
            let got = h.quantile(q);
            assert!(got >= want, "q{q}: {got} < {want}");
            assert!(
                (got - want) as f64 <= want as f64 / 128.0,
                "q{q}: {got} vs {want}"
            );
        }
        assert_eq!(h.quantile(1.0), 10_000_000);
        assert_eq!(h.quantile_us(1.0), 10_000.0);
    }

    #[test]
    fn one_outlier_shows_only_at_the_top() {
        let mut h = Histogram::new();
        for _ in 0..999 {
            h.record(100_000);
        }
        h.record(50_000_000);
        assert!((100_000..101_000).contains(&h.quantile(0.5)));
        assert!((100_000..101_000).contains(&h.quantile(0.999)));
        assert_eq!(h.quantile(1.0), 50_000_000);
    }

    #[test]
    fn empty_is_zero() {
        assert_eq!(Histogram::new().quantile(0.5), 0);
        assert_eq!(Histogram::new().mean(), 0.0);
    }
}
