//! Exponential back-off: the waits between retries of a call and between async-job polls.

use std::time::Duration;

/// Waits `first`, then ×`factor` each time, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration, factor: f64) -> Self {
        Self { first, max, factor }
    }

    /// The wait before attempt `attempt + 1` (`attempt` 0 → `first`).
    pub fn delay(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt.min(64)).unwrap_or(64);
        let seconds = self.first.as_secs_f64() * self.factor.max(1.0).powi(exponent);
        Duration::try_from_secs_f64(seconds)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

impl Default for Backoff {
    /// 200 ms, doubling, at most 5 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(200), Duration::from_secs(5), 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500), 2.0);
        let waits: Vec<u128> = (0..5).map(|i| b.delay(i).as_millis()).collect();
        assert_eq!(waits, vec![100, 200, 400, 500, 500]);
        assert_eq!(b.delay(u32::MAX), Duration::from_millis(500));
    }
}
