//! Lock-free per-vserver counters, read by the admin API's `stat` and by Prometheus.
//!
//! The writer keeps one `Arc<VserverStats>` per vserver name across snapshot swaps, so counters
//! survive reloads.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
    /// Sum of response times (time to first byte) in microseconds, for an average.
    pub response_time_us_total: AtomicU64,
}

impl VserverStats {
    pub fn record_status(&self, status: u16) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.responses[class].fetch_add(1, Relaxed);
    }

    /// Counts a client connection until the guard drops.
    pub fn client_connected(self: &std::sync::Arc<Self>) -> ClientConnection {
        self.current_client_connections.fetch_add(1, Relaxed);
        self.total_client_connections.fetch_add(1, Relaxed);
        ClientConnection(self.clone())
    }
}

/// An open client connection of a vserver.
#[derive(Debug)]
pub struct ClientConnection(std::sync::Arc<VserverStats>);

impl Drop for ClientConnection {
    fn drop(&mut self) {
        self.0.current_client_connections.fetch_sub(1, Relaxed);
    }
}
