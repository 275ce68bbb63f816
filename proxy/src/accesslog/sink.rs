//! The access log's own thread: takes lines off the channel, formats them, and writes them in
//! batches to the file (opened for appending, created if missing) or to stdout.
//!
//! It wakes at least every [`TICK`] to see whether SIGUSR1 asked for a reopen (the new file
//! is created then, even with no traffic, so logrotate finds it) or a shutdown asked it to end.
//! A file that cannot be opened or written loses the lines of that batch (counted as
//! `write_failed`, logged once per episode) and is opened again for the next one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::Shared;
use super::format::write_line;
use super::record::Record;
use crate::config::{AccessLogFormat, AccessLogSettings, AccessLogTarget};

/// How often the thread looks at its flags when no line comes.
const TICK: Duration = Duration::from_millis(100);
/// A batch is written once it holds this many bytes (or the channel is empty).
const BATCH_BYTES: usize = 64 * 1024;

/// The thread's state: where lines go and how they look.
#[derive(Debug)]
pub(super) struct Sink {
    output: Output,
    format: AccessLogFormat,
    shared: Arc<Shared>,
    /// Whether the last write failed (so the failure is logged once, not per batch).
    failing: bool,
}

#[derive(Debug)]
enum Output {
    Stdout,
    File { path: PathBuf, file: Option<File> },
}

impl Sink {
    pub(super) fn new(settings: &AccessLogSettings, shared: Arc<Shared>) -> Sink {
        let output = match &settings.target {
            AccessLogTarget::Stdout => Output::Stdout,
            AccessLogTarget::File(path) => Output::File {
                path: path.clone(),
                file: None,
            },
        };
        Sink {
            output,
            format: settings.format,
            shared,
            failing: false,
        }
    }

    /// Runs until every sender is gone or a shutdown asked it to end, writing what is waiting
    /// first either way.
    pub(super) fn run(mut self, lines: Receiver<Box<Record>>) {
        let mut batch = String::with_capacity(BATCH_BYTES + 1024);
        loop {
            let first = match lines.recv_timeout(TICK) {
                Ok(record) => Some(record),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            if self.shared.reopen.swap(false, Ordering::AcqRel) {
                self.reopen();
            }
            let mut count = 0;
            for record in first
                .into_iter()
                .chain(std::iter::from_fn(|| lines.try_recv().ok()))
            {
                write_line(&record, self.format, &mut batch);
                count += 1;
                if batch.len() >= BATCH_BYTES {
                    self.write(&mut batch, count);
                    count = 0;
                }
            }
            self.write(&mut batch, count);
            if self.shared.stop.load(Ordering::Acquire) {
                break;
            }
        }
        if let Output::File {
            file: Some(file), ..
        } = &mut self.output
        {
            let _ = file.sync_data();
        }
    }

    /// Writes `count` lines held in `batch`, and empties it.
    fn write(&mut self, batch: &mut String, count: u64) {
        if count == 0 {
            return;
        }
        let stats = &self.shared.stats;
        match self.output.write_all(batch.as_bytes()) {
            Ok(()) => {
                stats.lines.fetch_add(count, Ordering::Relaxed);
                if self.failing {
                    self.failing = false;
                    tracing::info!(path = %self.output, "access log written again");
                }
            }
            Err(error) => {
                stats
                    .dropped_write_failed
                    .fetch_add(count, Ordering::Relaxed);
                if !self.failing {
                    self.failing = true;
                    tracing::error!(path = %self.output, %error, "cannot write the access log; its lines are dropped until it can");
                }
                self.output.close();
            }
        }
        batch.clear();
    }

    /// Closes the file and opens the path again.
    fn reopen(&mut self) {
        if let Output::File { .. } = self.output {
            self.output.close();
            match self.output.open() {
                Ok(()) => tracing::info!(path = %self.output, "access log reopened"),
                Err(error) => {
                    tracing::error!(path = %self.output, %error, "cannot reopen the access log");
                }
            }
        }
    }
}

impl Output {
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout => {
                let mut stdout = io::stdout().lock();
                stdout.write_all(bytes)?;
                stdout.flush()
            }
            Output::File { path, file } => {
                if file.is_none() {
                    *file = Some(open_append(path)?);
                }
                match file {
                    Some(file) => file.write_all(bytes),
                    None => Ok(()),
                }
            }
        }
    }

    /// Opens the file if it is not open.
    fn open(&mut self) -> io::Result<()> {
        if let Output::File { path, file } = self
            && file.is_none()
        {
            *file = Some(open_append(path)?);
        }
        Ok(())
    }

    fn close(&mut self) {
        if let Output::File { file, .. } = self {
            *file = None;
        }
    }
}

/// Opens `path` for appending, creating it (mode 0640) if it is missing.
fn open_append(path: &std::path::Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Output::Stdout => f.write_str("stdout"),
            Output::File { path, .. } => write!(f, "{}", path.display()),
        }
    }
}
