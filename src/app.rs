//! [`App`]: starts every part for a validated config and holds the handles that `main` needs
//! (apply a new config, shut down): the embedded local cloud, the one config writer and the
//! data plane it publishes, the autoscale engine, the admin API and `/metrics`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use ballast_proxy::accesslog::metrics::AccessLogCollector;
use ballast_proxy::api::AdminApi;
use ballast_proxy::api::auth::Auth;
use ballast_proxy::config::Config;
use ballast_proxy::member::MemberStatus;
use ballast_proxy::metrics::Metrics;
use ballast_proxy::snapshot::Snapshot;
use ballast_proxy::writer::{ApplyError, ConfigWriter};
use cloudstack::localcloud::LocalCloud;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::autoscale::Autoscale;
use crate::autoscale::metrics::AutoscaleCollector;
use crate::config::AppConfig;

/// How long an exit waits for the access log to write the lines still waiting.
const ACCESS_LOG_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A running Ballast.
#[derive(Debug)]
pub struct App {
    /// `[localcloud]`, when this process runs one.
    local_cloud: Option<LocalCloud>,
    writer: ConfigWriter,
    snapshot: Arc<ArcSwap<Snapshot>>,
    autoscale: Autoscale,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

impl App {
    /// Starts the local cloud (if `[localcloud]`), binds every vserver of `config` (loaded
    /// from `config_path`) and starts serving, with the admin API and `/metrics` if the config
    /// asks for them.
    pub async fn start(config: AppConfig, config_path: &Path) -> anyhow::Result<App> {
        let AppConfig {
            proxy: config,
            local_cloud,
        } = config;
        let base_dir = config_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let admin = config.admin.clone();
        let local_cloud = match local_cloud {
            Some(cloud) => Some(
                LocalCloud::start(cloud)
                    .await
                    .context("cannot start the local cloud")?,
            ),
            None => None,
        };
        let metrics = config.metrics.clone();
        raise_descriptor_limit(config.settings.max_conn);
        // Made after the raise: the snapshot's connection count reads the new limit.
        let snapshot = Arc::new(ArcSwap::from_pointee(Snapshot::empty()));
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let writer = ConfigWriter::start(
            snapshot.clone(),
            base_dir,
            tracker.clone(),
            shutdown.clone(),
        );
        let first_probe = config
            .monitors
            .iter()
            .map(|m| m.resp_timeout)
            .max()
            .unwrap_or_default();
        writer.apply(config).await?;
        wait_for_first_probes(&snapshot, first_probe).await;
        tokio::spawn(ballast_proxy::health::expire_passive_downs(
            snapshot.clone(),
        ));
        tokio::spawn(ballast_proxy::http::pool::sweep_idle_connections(
            snapshot.clone(),
        ));
        let autoscale = Autoscale::start(writer.clone(), snapshot.clone(), shutdown.child_token());

        if let Some(settings) = metrics {
            let listener = ballast_proxy::listener::bind(settings.listen)
                .with_context(|| format!("metrics cannot listen on {}", settings.listen))?;
            let mut registry = Metrics::new(
                snapshot.clone(),
                writer.outcomes.clone(),
                writer.snmp_stats.clone(),
            );
            registry.register(Box::new(AutoscaleCollector::new(
                autoscale.history().clone(),
            )));
            registry.register(Box::new(AccessLogCollector::new(
                writer.access_log_stats.clone(),
            )));
            let registry = Arc::new(registry);
            tokio::spawn(ballast_proxy::metrics::serve(
                listener,
                registry,
                shutdown.child_token(),
            ));
            tracing::info!(address = %settings.listen, "metrics listening");
        }
        if let Some(settings) = admin {
            let auth = Auth::load(&settings).map_err(anyhow::Error::msg)?;
            let listener = ballast_proxy::listener::bind(settings.listen)
                .with_context(|| format!("admin API cannot listen on {}", settings.listen))?;
            let save_path = settings
                .save_path
                .clone()
                .unwrap_or_else(|| config_path.to_path_buf());
            let api = Arc::new(
                AdminApi::new(writer.clone(), snapshot.clone(), auth, save_path)
                    .with_autoscale(Arc::new(autoscale.clone())),
            );
            tokio::spawn(ballast_proxy::api::serve(
                listener,
                api,
                shutdown.child_token(),
            ));
            tracing::info!(address = %settings.listen, user = settings.user, "admin API listening");
        }
        Ok(App {
            local_cloud,
            writer,
            snapshot,
            autoscale,
            tracker,
            shutdown,
        })
    }

    /// Applies a new validated config through the one writer.
    pub async fn apply(&self, config: Config) -> Result<(), ApplyError> {
        self.writer.apply(config).await
    }

    /// The one config writer (SIGHUP reloads count their rejections on it).
    pub fn writer(&self) -> &ConfigWriter {
        &self.writer
    }

    /// The autoscale engine (its history: events and each group's status).
    pub fn autoscale(&self) -> &Autoscale {
        &self.autoscale
    }

    /// SIGUSR1: the access log closes its file and opens the configured path again (after
    /// logrotate renamed it).
    pub fn reopen_access_log(&self) {
        match &self.snapshot.load().access_log {
            Some(log) => log.reopen(),
            None => tracing::info!("SIGUSR1: no access log is configured; nothing to reopen"),
        }
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
        let finished = tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok();
        if let Some(log) = &self.snapshot.load().access_log
            && !log.close(ACCESS_LOG_CLOSE_TIMEOUT).await
        {
            tracing::warn!(timeout = ?ACCESS_LOG_CLOSE_TIMEOUT, "the access log could not write its last lines in time");
        }
        if let Some(cloud) = self.local_cloud {
            cloud.shutdown().await;
        }
        finished
    }
}

/// Raises the soft file descriptor limit to the hard one (as HAProxy does) and logs it with the
/// `maxconn` it gives.
fn raise_descriptor_limit(configured_max_conn: Option<u64>) {
    use ballast_proxy::limits::fds;
    match fds::raise_nofile_limit() {
        Ok(limit) => {
            let maxconn = configured_max_conn.unwrap_or_else(|| fds::default_max_conn(limit.now));
            let source = if configured_max_conn.is_some() {
                "[ballast] maxconn"
            } else {
                "(limit - 256) / 3"
            };
            tracing::info!(
                before = limit.before,
                now = limit.now,
                maxconn,
                maxconn_from = source,
                "file descriptor limit"
            );
        }
        Err(error) => tracing::warn!(%error, "cannot raise the file descriptor limit"),
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
            .all(|m| m.status() != MemberStatus::Down)
    };
    while !all_up() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
