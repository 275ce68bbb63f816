//! Poll counters and the latency histogram: plain atomics, written by the poller task and read
//! lock-free by `/metrics` and NITRO `stat`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::sample::ResultClass;

/// Why a received datagram was dropped without ending a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a decodable SNMP message.
    Malformed,
    /// Larger than [`crate::PollerConfig::max_datagram`].
    Oversized,
    /// No poll is waiting for its request id (late reply after a timeout, or a guess).
    UnknownRequest,
    /// Right request id, but from another address or onto another socket than the request.
    WrongSource,
    /// A v1/v2c reply whose community is not the monitor's.
    BadCommunity,
    /// A v3 reply that fails its HMAC, is not protected as the user requires, or does not
    /// decrypt.
    BadAuth,
    /// A valid message that is not a reply to our request (wrong PDU type or version).
    Unexpected,
}

impl DropReason {
    pub const ALL: [DropReason; 7] = [
        DropReason::Malformed,
        DropReason::Oversized,
        DropReason::UnknownRequest,
        DropReason::WrongSource,
        DropReason::BadCommunity,
        DropReason::BadAuth,
        DropReason::Unexpected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Oversized => "oversized",
            DropReason::UnknownRequest => "unknown_request",
            DropReason::WrongSource => "wrong_source",
            DropReason::BadCommunity => "bad_community",
            DropReason::BadAuth => "bad_auth",
            DropReason::Unexpected => "unexpected",
        }
    }
}

/// Upper bounds (seconds) of the poll latency histogram buckets, Prometheus style.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Counters of one [`crate::Poller`].
#[derive(Debug, Default)]
pub struct PollStats {
    polls: [AtomicU64; 6],
    requests_sent: AtomicU64,
    retransmits: AtomicU64,
    dropped: [AtomicU64; 7],
    samples_dropped: AtomicU64,
    missed_intervals: AtomicU64,
    agents: AtomicU64,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    latency_sum_micros: AtomicU64,
    latency_count: AtomicU64,
}

impl PollStats {
    pub(crate) fn poll_finished(&self, class: ResultClass, latency: Option<Duration>) {
        self.polls[class.index()].fetch_add(1, Relaxed);
        if let Some(latency) = latency {
            let seconds = latency.as_secs_f64();
            if let Some(i) = LATENCY_BUCKETS.iter().position(|&le| seconds <= le) {
                self.latency_buckets[i].fetch_add(1, Relaxed);
            }
            let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
            self.latency_sum_micros.fetch_add(micros, Relaxed);
            self.latency_count.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn sent(&self, retransmit: bool) {
        self.requests_sent.fetch_add(1, Relaxed);
        if retransmit {
            self.retransmits.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn dropped(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Relaxed);
    }

    pub(crate) fn sample_dropped(&self) {
        self.samples_dropped.fetch_add(1, Relaxed);
    }

    pub(crate) fn missed_intervals(&self, count: u64) {
        self.missed_intervals.fetch_add(count, Relaxed);
    }

    pub(crate) fn set_agents(&self, count: usize) {
        self.agents.store(count as u64, Relaxed);
    }

    /// Polls that ended with `class`.
    pub fn polls(&self, class: ResultClass) -> u64 {
        self.polls[class.index()].load(Relaxed)
    }

    /// Datagrams dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.dropped[reason as usize].load(Relaxed)
    }

    /// A consistent-enough copy of every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        let mut cumulative = 0;
        let latency_buckets = std::array::from_fn(|i| {
            cumulative += self.latency_buckets[i].load(Relaxed);
            (LATENCY_BUCKETS[i], cumulative)
        });
        StatsSnapshot {
            polls: ResultClass::ALL.map(|c| (c, self.polls(c))),
            requests_sent: self.requests_sent.load(Relaxed),
            retransmits: self.retransmits.load(Relaxed),
            dropped: DropReason::ALL.map(|r| (r, self.drops(r))),
            samples_dropped: self.samples_dropped.load(Relaxed),
            missed_intervals: self.missed_intervals.load(Relaxed),
            agents: self.agents.load(Relaxed),
            latency_buckets,
            latency_sum: Duration::from_micros(self.latency_sum_micros.load(Relaxed)),
            latency_count: self.latency_count.load(Relaxed),
        }
    }
}

/// A copy of [`PollStats`], shaped for Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSnapshot {
    /// `ballast_snmp_polls_total{result}`.
    pub polls: [(ResultClass, u64); 6],
    pub requests_sent: u64,
    pub retransmits: u64,
    /// `ballast_snmp_replies_dropped_total{reason}`.
    pub dropped: [(DropReason, u64); 7],
    /// Samples lost because the channel was full.
    pub samples_dropped: u64,
    /// Poll intervals skipped because a poll (with its retries) ran past the next one.
    pub missed_intervals: u64,
    /// Members being polled.
    pub agents: u64,
    /// Cumulative `(le seconds, count)` buckets of `ballast_snmp_poll_latency_seconds`; the
    /// `+Inf` bucket is `latency_count`.
    pub latency_buckets: [(f64, u64); LATENCY_BUCKETS.len()],
    pub latency_sum: Duration,
    pub latency_count: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let stats = PollStats::default();
        stats.poll_finished(ResultClass::Ok, Some(Duration::from_micros(300)));
        stats.poll_finished(ResultClass::Ok, Some(Duration::from_millis(20)));
        stats.poll_finished(ResultClass::Timeout, None);
        let snap = stats.snapshot();
        assert_eq!(snap.polls[0], (ResultClass::Ok, 2));
        assert_eq!(snap.polls[1], (ResultClass::Timeout, 1));
        assert_eq!(snap.latency_buckets[0], (0.0005, 1));
        assert_eq!(snap.latency_buckets[5], (0.025, 2));
        assert_eq!(snap.latency_count, 2);
        assert_eq!(snap.latency_sum, Duration::from_micros(20_300));
    }
}
