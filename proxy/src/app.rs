//! The composition root's helper: starts the data plane for a config and holds the handles
//! that `main` needs (apply a new config, shut down).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::snapshot::Snapshot;
use crate::writer::{ApplyError, ConfigWriter};

/// A running Ballast.
#[derive(Debug)]
pub struct App {
    writer: ConfigWriter,
    snapshot: Arc<ArcSwap<Snapshot>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl App {
    /// Binds every vserver of `config` and starts serving.
    pub async fn start(config: Config) -> Result<App, ApplyError> {
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let writer = ConfigWriter::start(snapshot.clone(), tracker.clone(), shutdown.clone());
        let first_probe = config
            .monitors
            .iter()
            .map(|m| m.resp_timeout)
            .max()
            .unwrap_or_default();
        writer.apply(config).await?;
        wait_for_first_probes(&snapshot, first_probe).await;
        tokio::spawn(crate::health::expire_passive_downs(snapshot.clone()));
        Ok(App {
            writer,
            snapshot,
            tracker,
            shutdown,
        })
    }

    /// Applies a new validated config through the one writer.
    pub async fn apply(&self, config: Config) -> Result<(), ApplyError> {
        self.writer.apply(config).await
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Connections currently open (HTTP and TCP, all vservers).
    pub fn in_flight(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.snapshot
            .load()
            .vservers
            .values()
            .map(|v| v.stats.current_client_connections.load(Relaxed))
            .sum()
    }

    /// Stops accepting, asks every connection to finish its current work, and waits for them
    /// up to `timeout`. Returns false if some were still running at the deadline.
    pub async fn shutdown(self, timeout: Duration) -> bool {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok()
    }
}

/// New monitored members start DOWN; give their first probes (at most one `resptimeout`) the
/// chance to bring them UP before the caller announces that Ballast is ready.
async fn wait_for_first_probes(snapshot: &ArcSwap<Snapshot>, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit + Duration::from_millis(50);
    let all_up = || {
        let current = snapshot.load();
        current
            .groups
            .values()
            .flat_map(|g| &g.members)
            .all(|m| m.status() != crate::member::MemberStatus::Down)
    };
    while !all_up() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
