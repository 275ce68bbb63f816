//! Lock-free per-vserver counters, read by the admin API's `stat` and by Prometheus.
//!
//! The writer keeps one `Arc<VserverStats>` per vserver name across snapshot swaps, so counters
//! survive reloads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use crate::http::error::ExchangeError;
use crate::limits::sources::SourceCounts;

/// Counters of one vserver.
#[derive(Debug, Default)]
pub struct VserverStats {
    pub requests: AtomicU64,
    /// Responses by status class: index 0 is 1xx ... index 4 is 5xx.
    pub responses: [AtomicU64; 5],
    pub request_bytes: AtomicU64,
    pub response_bytes: AtomicU64,
    pub current_client_connections: AtomicU64,
    pub total_client_connections: AtomicU64,
    /// Response times (time to first byte from the member, counted from when it had the whole
    /// request).
    pub response_time: LatencyHistogram,
    /// Exchanges that ended without a member's response, by [`ExchangeError::index`].
    pub errors: [AtomicU64; ExchangeError::ALL.len()],
    /// Connections refused at a limit, indexed by [`crate::limits::Limit::index`].
    pub refused: [AtomicU64; 3],
    /// Open connections per client address (used with `maxclientpersource`).
    pub sources: Arc<SourceCounts>,
    /// Connections refused for their PROXY protocol header, indexed by
    /// [`crate::proxy_protocol::accept::Refusal::index`].
    pub proxy_protocol_refused: [AtomicU64; 4],
    /// `SOURCEIP` persistence entries (kept across snapshots like the counters).
    pub sessions: crate::persistence::table::SessionTable,
    /// Requests and connections that went to their persistent member.
    pub persistence_hits: AtomicU64,
    /// Requests (HTTP) or connections (TCP) passed to the backup vserver, by
    /// [`crate::backup::Diversion`] (`Down`, `Spillover`).
    pub backup: [AtomicU64; 2],
    /// `disableprimaryondown`: the vserver failed over to its backup and stays out of service
    /// until it is enabled again (runtime state: a reload keeps it).
    pub disabled_on_down: AtomicBool,
    /// A csvserver's policy hits, default hits and misses.
    pub switching: Arc<crate::content_switch::plan::SwitchStats>,
}

/// Upper bounds of the response-time buckets, in seconds.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A lock-free histogram with fixed buckets (one atomic increment per observation).
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Per-bucket counts (not cumulative); the last slot counts values above every bound.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, elapsed: std::time::Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[slot].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(elapsed.as_micros() as u64, Relaxed);
    }

    /// `(sum in seconds, count, (upper bound, count in this bucket))`, the last bound being
    /// `+Inf`: the per-bucket form `prometheus-client` sums into cumulative buckets itself.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let bounds = LATENCY_BUCKETS.iter().chain([f64::INFINITY].iter());
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&self.buckets)
            .map(|(bound, count)| (*bound, count.load(Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        (sum, count, buckets)
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    pub fn sum_us(&self) -> u64 {
        self.sum_us.load(Relaxed)
    }
}

impl VserverStats {
    pub fn responses_total(&self) -> u64 {
        self.responses.iter().map(|r| r.load(Relaxed)).sum()
    }

    /// Counts an exchange that ended with `error`.
    pub fn record_error(&self, error: ExchangeError) {
        self.errors[error.index()].fetch_add(1, Relaxed);
    }

    pub fn record_status(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }

    /// Counts a client connection until the guard drops, unless `max` are open already.
    pub fn try_client_connected(self: &Arc<Self>, max: Option<u32>) -> Option<ClientConnection> {
        let max = max.map_or(u64::MAX, u64::from);
        self.current_client_connections
            .fetch_update(Relaxed, Relaxed, |open| (open < max).then_some(open + 1))
            .ok()?;
        self.total_client_connections.fetch_add(1, Relaxed);
        Some(ClientConnection(self.clone()))
    }
}

/// An open client connection of a vserver.
#[derive(Debug)]
pub struct ClientConnection(Arc<VserverStats>);

impl Drop for ClientConnection {
    fn drop(&mut self) {
        self.0.current_client_connections.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn histogram_buckets_count_each_observation_once() {
        let histogram = LatencyHistogram::default();
        histogram.observe(Duration::from_micros(100));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(60));
        let (sum, count, buckets) = histogram.snapshot();
        assert_eq!(count, 3);
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 3);
        assert_eq!(buckets[0], (0.0005, 1));
        assert_eq!(buckets.last(), Some(&(f64::INFINITY, 1)));
        assert!((sum - 60.0031).abs() < 1e-9);
    }
}
