//! Access logs (`[accesslog]`): one line per HTTP request and one per TCP connection, with the
//! client, the vserver, the member, the status, the bytes, the timings and why the exchange
//! ended, as HAProxy's `httplog`/`tcplog` and NetScaler's web log write them.
//!
//! The data plane never waits for the log. Each finished exchange becomes a [`Record`] that is
//! offered to a bounded channel (`bufferlines`); when the channel is full the line is dropped
//! and counted (`ballast_accesslog_dropped_lines_total{reason="buffer_full"}`), so a slow disk
//! or a log pipe nobody reads never slows a request. One thread of its own ([`sink`]) formats
//! the lines ([`format`]: `text` or `json`) and writes them in batches; SIGUSR1 asks it to
//! reopen the file (after logrotate renamed it).
//!
//! - [`record`]: what one line says, and the [`Trace`] a request fills on its way to a member;
//! - [`http`]: begins a request's line before it is served and finishes it when the client has
//!   the whole response (or went away);
//! - [`tcp`]: the same for an L4 connection;
//! - [`metrics`]: the lines written and dropped, for `/metrics`.
//!
//! The writer ([`crate::writer`]) keeps one [`AccessLog`] per distinct `[accesslog]` in
//! [`AccessLogs`] and puts it in each snapshot; a reload that changes the section starts a new
//! thread, and the old one finishes the lines of the connections that still use it.

pub mod format;
pub mod http;
pub mod metrics;
pub mod record;
pub mod sink;
pub mod tcp;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use record::{Record, Termination, Trace};

use crate::config::AccessLogSettings;

/// Lines written and dropped, for the life of the process (across reloads).
#[derive(Debug, Default)]
pub struct AccessLogStats {
    /// Lines written to the file or stdout.
    pub lines: AtomicU64,
    /// Lines dropped because `bufferlines` were already waiting.
    pub dropped_buffer_full: AtomicU64,
    /// Lines dropped because the file could not be opened or written.
    pub dropped_write_failed: AtomicU64,
}

/// A handle to one running access log: cheap to clone, never blocks.
#[derive(Debug, Clone)]
pub struct AccessLog {
    lines: SyncSender<Box<Record>>,
    shared: Arc<Shared>,
}

/// What the data plane and the log's thread share.
#[derive(Debug)]
struct Shared {
    stats: Arc<AccessLogStats>,
    /// Set by SIGUSR1; the thread reopens the file before its next write.
    reopen: AtomicBool,
    /// Set at shutdown: the thread writes what is waiting and ends.
    stop: AtomicBool,
    /// Answers once the thread has ended.
    stopped: Mutex<Option<Receiver<()>>>,
}

impl AccessLog {
    /// Starts the log's thread for `settings`. The file is opened by that thread (a named pipe
    /// would block the caller until a reader comes).
    pub fn start(
        settings: &AccessLogSettings,
        stats: Arc<AccessLogStats>,
    ) -> std::io::Result<AccessLog> {
        let (lines, receiver) = mpsc::sync_channel(settings.buffer_lines);
        let (done, stopped) = mpsc::sync_channel(1);
        let shared = Arc::new(Shared {
            stats,
            reopen: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            stopped: Mutex::new(Some(stopped)),
        });
        let sink = sink::Sink::new(settings, shared.clone());
        std::thread::Builder::new()
            .name("accesslog".into())
            .spawn(move || {
                sink.run(receiver);
                let _ = done.send(());
            })?;
        Ok(AccessLog { lines, shared })
    }

    /// Offers one line; if `bufferlines` are already waiting it is dropped and counted.
    pub fn log(&self, record: Record) {
        match self.lines.try_send(Box::new(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared
                    .stats
                    .dropped_buffer_full
                    .fetch_add(1, Ordering::Relaxed);
            }
            // The thread has ended (it could not start writing): counted as a write failure.
            Err(TrySendError::Disconnected(_)) => {
                self.shared
                    .stats
                    .dropped_write_failed
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Asks the thread to close and reopen the file (SIGUSR1, after logrotate moved it).
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::Release);
    }

    /// Asks the thread to write every waiting line and end; waits up to `timeout` for it (a
    /// file that cannot take the lines, a pipe nobody reads, must not hold up an exit).
    /// Returns whether it ended in time.
    pub async fn close(&self, timeout: Duration) -> bool {
        self.shared.stop.store(true, Ordering::Release);
        let stopped = self.shared.stopped.lock().map(|mut s| s.take());
        let Ok(Some(stopped)) = stopped else {
            return true;
        };
        tokio::task::spawn_blocking(move || stopped.recv_timeout(timeout).is_ok())
            .await
            .unwrap_or(false)
    }
}

/// The writer's running access log: one per distinct `[accesslog]`, with counters that
/// outlive them all.
#[derive(Debug, Default)]
pub struct AccessLogs {
    stats: Arc<AccessLogStats>,
    running: Option<(AccessLogSettings, AccessLog)>,
}

impl AccessLogs {
    /// The counters behind `/metrics`.
    pub fn stats(&self) -> Arc<AccessLogStats> {
        self.stats.clone()
    }

    /// The log a config with `settings` writes to: the running one if they did not change, a
    /// new one if they did, none if the section is absent or disabled.
    pub fn for_config(&mut self, settings: Option<&AccessLogSettings>) -> Option<AccessLog> {
        let Some(settings) = settings else {
            self.running = None;
            return None;
        };
        if let Some((running, log)) = &self.running
            && running == settings
        {
            return Some(log.clone());
        }
        match AccessLog::start(settings, self.stats.clone()) {
            Ok(log) => {
                self.running = Some((settings.clone(), log.clone()));
                Some(log)
            }
            Err(error) => {
                tracing::error!(%error, "cannot start the access log's thread; no access log");
                self.running = None;
                None
            }
        }
    }
}
