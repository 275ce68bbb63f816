//! What became of each config change, by where it came from: a file (the config at start and
//! every SIGHUP), the admin API, or the autoscaler's member operations. `/metrics` reads these
//! as `ballast_config_reloads_total{source,result}`, so a rejected API request never shows as a
//! failed file reload.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Where a config change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSource {
    /// The config file: at start and on SIGHUP.
    File,
    /// An edit through the admin API.
    Api,
    /// A member operation of the autoscaler (bind, drain, unbind).
    Autoscaler,
}

impl ChangeSource {
    pub const ALL: [ChangeSource; 3] = [
        ChangeSource::File,
        ChangeSource::Api,
        ChangeSource::Autoscaler,
    ];

    /// The `source` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::File => "file",
            ChangeSource::Api => "api",
            ChangeSource::Autoscaler => "autoscaler",
        }
    }
}

/// Applied and rejected changes of one source.
#[derive(Debug, Default)]
pub struct Outcome {
    pub applied: AtomicU64,
    pub rejected: AtomicU64,
}

/// Outcomes of config changes by source, for metrics.
#[derive(Debug, Default)]
pub struct WriterOutcomes {
    file: Outcome,
    api: Outcome,
    autoscaler: Outcome,
}

impl WriterOutcomes {
    pub fn of(&self, source: ChangeSource) -> &Outcome {
        match source {
            ChangeSource::File => &self.file,
            ChangeSource::Api => &self.api,
            ChangeSource::Autoscaler => &self.autoscaler,
        }
    }

    pub(crate) fn count(&self, source: ChangeSource, applied: bool) {
        let outcome = self.of(source);
        let counter = if applied {
            &outcome.applied
        } else {
            &outcome.rejected
        };
        counter.fetch_add(1, Relaxed);
    }
}
