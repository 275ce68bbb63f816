//! The access log's families in `/metrics`:
//!
//! - `ballast_accesslog_lines_total`: lines written;
//! - `ballast_accesslog_dropped_lines_total{reason}`: lines lost, `buffer_full` (`bufferlines`
//!   were already waiting: the writer cannot keep up, or the file blocks) or `write_failed`
//!   (the file could not be opened or written).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use super::AccessLogStats;

/// Reads the access log's counters at each scrape.
#[derive(Debug)]
pub struct AccessLogCollector {
    stats: Arc<AccessLogStats>,
}

impl AccessLogCollector {
    pub fn new(stats: Arc<AccessLogStats>) -> AccessLogCollector {
        AccessLogCollector { stats }
    }
}

impl Collector for AccessLogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let lines = encoder.encode_descriptor(
            "accesslog_lines",
            "Access log lines written.",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.stats.lines.load(Relaxed)).encode(lines)?;
        let mut dropped = encoder.encode_descriptor(
            "accesslog_dropped_lines",
            "Access log lines lost: buffer_full (bufferlines already waiting), write_failed (the file could not be opened or written).",
            None,
            MetricType::Counter,
        )?;
        for (reason, count) in [
            ("buffer_full", &self.stats.dropped_buffer_full),
            ("write_failed", &self.stats.dropped_write_failed),
        ] {
            let labels = [("reason", reason)];
            ConstCounter::new(count.load(Relaxed)).encode(dropped.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
